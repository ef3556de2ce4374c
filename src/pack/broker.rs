//! A workload pack on `cqrs-broker` ([`super::backend::PackMode::Broker`]): the command's
//! transaction appends the pack's events to the pack's outbox (as on `cqrs-async`), the
//! shop's relay (`projection::relay`, reading the pack's outbox) publishes them to a NATS
//! JetStream stream, and the pack's projector ([`super::projector`], `with_broker`) consumes
//! the stream through the shop's durable consumer (`projection::jetstream`).
//!
//! The stream and consumer are named after the database as the shop's are
//! (`backend::cqrs_broker::names_of`), created when a freshly prepared dataset is first opened
//! (recorded in the dataset's `broker_relay` table, with the projector's checkpoint at the
//! stream's start, in one transaction), and deleted at shutdown unless kept — only streams
//! the tool created (`broker::stream`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use sqlx::{AnyConnection, Connection as _};
use tokio::sync::Notify;

use super::projector::{checkpoint_reset, CHECKPOINT, CHECKPOINT_ROW, OUTBOX};
use crate::backend::cqrs_broker::names_of;
use crate::broker::{self, BrokerOptions, Names};
use crate::db::{Db, DbError};
use crate::projection::event_source::{EventLog, Position};
use crate::projection::jetstream::JetStreamSource;
use crate::projection::projector::ProjectorError;
use crate::projection::relay::{self, Relay};

/// The relay side of a pack on the broker, and what a reader needs to know of it.
pub struct PackBroker {
    js: jetstream::Context,
    names: Names,
    keep: bool,
    /// The shop's relay, over the pack's outbox.
    pub relay: Arc<Relay>,
    /// Outbox seq → stream seq of published events, until a reader saw them applied.
    published: Arc<Mutex<HashMap<i64, u64>>>,
    /// Woken after each published batch: the projector's wake-up.
    pub projector_wake: Arc<Notify>,
}

impl PackBroker {
    /// Connects to the broker of `opts`; on a dataset opened for the first time, creates the
    /// stream and the consumer afresh and records them. Returns the broker side and the
    /// consumer the projector reads.
    pub async fn connect(
        db: &Db,
        opts: &BrokerOptions,
        batch_size: i64,
        poll_interval: Duration,
    ) -> Result<(PackBroker, JetStreamSource), ProjectorError> {
        let names = names_of(db);
        let js = broker::connect(&opts.url).await?;
        if !relay::is_recorded(db, &names).await? {
            broker::stream::create_fresh(&js, &names, opts).await?;
            record_fresh(db, &names).await?;
        }
        let published = Arc::new(Mutex::new(HashMap::new()));
        let projector_wake = Arc::new(Notify::new());
        let (seen, wake) = (published.clone(), projector_wake.clone());
        let relay = Relay::new(
            db.clone(),
            js.clone(),
            names.clone(),
            batch_size,
            poll_interval,
        )
        .with_log(EventLog::of_table(db.clone(), OUTBOX))
        .with_on_published(Arc::new(move |pairs, _| {
            seen.lock()
                .expect("published lock")
                .extend(pairs.iter().copied());
            wake.notify_one();
        }));
        let consumer = JetStreamSource::open(
            js.clone(),
            names.clone(),
            &opts.url,
            EventLog::of_table(db.clone(), OUTBOX),
            poll_interval,
        )
        .await?;
        Ok((
            PackBroker {
                js,
                names,
                keep: opts.keep,
                relay: Arc::new(relay),
                published,
                projector_wake,
            },
            consumer,
        ))
    }

    /// The stream's and consumer's names.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Whether the events at outbox `seqs` are in the read models: published, and the
    /// projector's checkpoint (a stream seq, committed with the rows) at or past them.
    /// Events are remembered from their publication until the read models pass them; one
    /// not remembered was either not published yet or passed already, which the relay's
    /// position tells apart.
    pub async fn is_visible(
        &self,
        conn: &mut AnyConnection,
        seqs: &[i64],
    ) -> Result<bool, sqlx::Error> {
        let (needed, unknown) = {
            let published = self.published.lock().expect("published lock");
            let mut needed = 0u64;
            let mut unknown = Vec::new();
            for s in seqs {
                match published.get(s) {
                    Some(&stream_seq) => needed = needed.max(stream_seq),
                    None => unknown.push(*s),
                }
            }
            (needed, unknown)
        };
        let mut needed = needed;
        if !unknown.is_empty() {
            if !self.passed(conn, &unknown).await? {
                return Ok(false);
            }
            // Published meanwhile (remembered before the relay's position moves): its stream
            // seq counts; still not remembered, it was passed.
            let published = self.published.lock().expect("published lock");
            for s in &unknown {
                if let Some(&stream_seq) = published.get(s) {
                    needed = needed.max(stream_seq);
                }
            }
        }
        let reached: i64 =
            sqlx::query_scalar(&format!("SELECT seq FROM {CHECKPOINT} WHERE name = $1"))
                .bind(CHECKPOINT_ROW)
                .fetch_one(&mut *conn)
                .await?;
        let visible = reached >= needed as i64;
        if visible {
            // Events the read models have passed are visible for good: forget them.
            let mut published = self.published.lock().expect("published lock");
            published.retain(|_, s| *s as i64 > reached);
        }
        Ok(visible)
    }

    /// Whether the relay published every event at outbox `seqs` (none of them remembered):
    /// then the read models passed them, as only that forgets an event.
    async fn passed(&self, conn: &mut AnyConnection, seqs: &[i64]) -> Result<bool, sqlx::Error> {
        let to = self
            .relay
            .published_to()
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        let list: Vec<String> = (3..seqs.len() + 3).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM {OUTBOX} WHERE (xid, seq) <= ($1, $2) AND seq IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(to.xid).bind(to.seq);
        for s in seqs {
            q = q.bind(*s);
        }
        Ok(q.fetch_one(&mut *conn).await? as usize == seqs.len())
    }

    /// Deletes the stream and its consumer, if the tool created them and the run does not
    /// keep them.
    pub async fn remove_stream(&self) {
        if !self.keep {
            let _ = broker::stream::delete_ours(&self.js, &self.names).await;
        }
    }
}

/// Records a freshly created stream: the relay publishes the pack's outbox from its start,
/// and the projector's checkpoint is at the stream's start, in one transaction.
async fn record_fresh(db: &Db, names: &Names) -> Result<(), ProjectorError> {
    let mut conn = db.write.acquire().await.map_err(DbError::from)?;
    let mut tx = conn.begin().await?;
    relay::record_stream(&mut tx, names, Position::default()).await?;
    checkpoint_reset(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}
