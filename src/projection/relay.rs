//! The relay of `cqrs-broker`: reads the outbox in delivery order (the same horizon-safe read
//! as the projector's, `EventLog`) and publishes each event, its payload as stored, to the
//! JetStream stream (the shop's outbox, or a workload pack's: `with_log`), then
//! records how far it got in its own table (`broker_relay`). Every message carries
//! `Nats-Msg-Id` = the event's outbox seq (and `Cqrs-Seq`, the same), so a relay that published and died before
//! recording (and so publishes the same events again) is deduplicated by the stream: each
//! event is in the stream once.
//!
//! That deduplication is also why the relay records its position lazily: at most every
//! `MARK_EVERY` while busy, and whenever it runs out of events. A relay that dies republishes
//! what it published since its last record, and the stream drops those copies; recording
//! after every batch would put one more write per batch on the database's writer (SQLite's
//! single connection, which the commands and the projector need).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use sqlx::Row;
use tokio::sync::{watch, Mutex, Notify};

use super::error::ProjectorError;
use super::event_source::{Delivery, EventLog, EventSource, Position, Stored};
use crate::broker::{BrokerError, Names};
use crate::db::{Db, DbError};

/// The header naming the aggregate stream an event belongs to (dead letters use it).
pub const STREAM_HEADER: &str = "Cqrs-Stream";
/// The header carrying the event's outbox seq (the ledgers' key). `Nats-Msg-Id` carries it
/// too, but only for the stream's deduplication: a copy published outside the duplicate
/// window is still the same event.
pub const SEQ_HEADER: &str = "Cqrs-Seq";

/// Told after each published batch: `(outbox seq, stream seq)` of each event, and when.
pub type OnPublished = Arc<dyn Fn(&[(i64, u64)], Instant) + Send + Sync>;

/// How often a busy relay records its position.
pub const MARK_EVERY: Duration = Duration::from_millis(100);

/// Where the relay stands: published up to `pos`, of which `unmarked` events are not yet
/// recorded, last recorded at `marked_at`.
struct Standing {
    pos: Position,
    unmarked: usize,
    marked_at: Instant,
}

/// Counters the relay keeps.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Events the stream acknowledged (duplicates included).
    pub published: AtomicU64,
    /// Acknowledgements that said "duplicate": republished events the stream already held.
    pub duplicates: AtomicU64,
    pub batches: AtomicU64,
    pub errors: AtomicU64,
}

pub struct Relay {
    db: Db,
    log: EventLog,
    js: jetstream::Context,
    names: Names,
    batch_size: i64,
    poll_interval: Duration,
    on_published: Option<OnPublished>,
    standing: Mutex<Option<Standing>>,
    pub stats: Arc<RelayStats>,
}

impl Relay {
    pub fn new(
        db: Db,
        js: jetstream::Context,
        names: Names,
        batch_size: i64,
        poll_interval: Duration,
    ) -> Self {
        Relay {
            log: EventLog::outbox(db.clone()),
            db,
            js,
            names,
            batch_size,
            poll_interval,
            on_published: None,
            standing: Mutex::new(None),
            stats: Arc::new(RelayStats::default()),
        }
    }

    /// Publishes `log` (a log with the outbox's columns) instead of the shop's outbox.
    pub fn with_log(mut self, log: EventLog) -> Self {
        self.log = log;
        self
    }

    pub fn with_on_published(mut self, f: OnPublished) -> Self {
        self.on_published = Some(f);
        self
    }

    /// The outbox position published up to, as recorded.
    pub async fn checkpoint(&self) -> Result<Position, ProjectorError> {
        checkpoint(&self.db, &self.names).await
    }

    /// The outbox position published up to (recorded or not).
    pub async fn published_to(&self) -> Result<Position, ProjectorError> {
        match &*self.standing.lock().await {
            Some(s) => Ok(s.pos),
            None => self.checkpoint().await,
        }
    }

    /// Events committed to the outbox and not yet published.
    pub async fn backlog(&self) -> Result<i64, ProjectorError> {
        let from = self.published_to().await?;
        self.log.backlog(from, Delivery::Safe).await
    }

    /// Publishes one batch; records the position when `MARK_EVERY` has passed since the
    /// last record, or when there was nothing to publish. Returns the events published.
    pub async fn step(&self) -> Result<usize, ProjectorError> {
        let mut standing = self.standing.lock().await;
        if standing.is_none() {
            *standing = Some(Standing {
                pos: self.checkpoint().await?,
                unmarked: 0,
                marked_at: Instant::now(),
            });
        }
        let s = standing.as_mut().expect("just set");
        let (batch, _) = self.publish_batch(s.pos).await?;
        if let Some(last) = batch.last() {
            s.pos = last.pos;
            s.unmarked += batch.len();
        }
        if s.unmarked > 0 && (batch.is_empty() || s.marked_at.elapsed() >= MARK_EVERY) {
            self.mark(s.pos, s.unmarked).await?;
            s.unmarked = 0;
            s.marked_at = Instant::now();
        }
        Ok(batch.len())
    }

    /// Fault drill: publishes one batch after the recorded position and stops before
    /// recording it, as a relay killed between the two would. Returns the stream's
    /// acknowledgements (stream seq, duplicate).
    pub async fn step_without_marking(&self) -> Result<Vec<(u64, bool)>, ProjectorError> {
        let from = self.checkpoint().await?;
        Ok(self.publish_batch(from).await?.1)
    }

    /// Reads the next batch after `from` and publishes it: every message sent, then every
    /// acknowledgement awaited, in order.
    async fn publish_batch(
        &self,
        from: Position,
    ) -> Result<(Vec<Stored>, Vec<(u64, bool)>), ProjectorError> {
        let batch = self
            .log
            .fetch_stored(from, self.batch_size, Delivery::Safe)
            .await?;
        if batch.is_empty() {
            return Ok((batch, Vec::new()));
        }
        let mut pending = Vec::with_capacity(batch.len());
        for f in &batch {
            // An unreadable outbox row travels as it is too, to be dead-lettered by the
            // projector like any poison event.
            let payload = f.payload.clone();
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                f.seq.to_string().as_str(),
            );
            headers.insert(SEQ_HEADER, f.seq.to_string().as_str());
            headers.insert(STREAM_HEADER, f.stream.as_str());
            let ack = self
                .js
                .publish_with_headers(self.names.subject.clone(), headers, payload.into())
                .await
                .map_err(BrokerError::js)?;
            pending.push(ack);
        }
        let mut acks = Vec::with_capacity(pending.len());
        for ack in pending {
            let ack = ack.await.map_err(BrokerError::js)?;
            acks.push((ack.sequence, ack.duplicate));
        }
        let at = Instant::now();
        let dups = acks.iter().filter(|(_, d)| *d).count() as u64;
        self.stats
            .published
            .fetch_add(acks.len() as u64, Ordering::Relaxed);
        self.stats.duplicates.fetch_add(dups, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = &self.on_published {
            let pairs: Vec<(i64, u64)> = batch
                .iter()
                .zip(&acks)
                .map(|(e, (s, _))| (e.seq, *s))
                .collect();
            f(&pairs, at);
        }
        Ok((batch, acks))
    }

    async fn mark(&self, last: Position, n: usize) -> Result<(), ProjectorError> {
        let mut conn = self.db.write.acquire().await.map_err(DbError::from)?;
        sqlx::query(
            "UPDATE broker_relay SET xid = $1, seq = $2, published = published + $3 \
             WHERE stream = $4",
        )
        .bind(last.xid)
        .bind(last.seq)
        .bind(n as i64)
        .bind(&self.names.stream)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Runs until `shutdown` turns true: publishes while the outbox has events, otherwise
    /// waits for a wake-up or the poll timer; errors (NATS or the database away) are counted
    /// and retried with back-off.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let this = &*self;
        crate::projection::step_loop::run_steps(
            || this.step(),
            &wake,
            &mut shutdown,
            this.poll_interval,
            &this.stats.errors,
        )
        .await;
    }
}

/// The relay's recorded position for stream `names.stream`.
pub async fn checkpoint(db: &Db, names: &Names) -> Result<Position, ProjectorError> {
    let row = sqlx::query("SELECT xid, seq FROM broker_relay WHERE stream = $1")
        .bind(&names.stream)
        .fetch_optional(&db.read)
        .await?;
    match row {
        Some(r) => Ok(Position {
            xid: r.try_get(0)?,
            seq: r.try_get(1)?,
        }),
        None => Ok(Position::default()),
    }
}

/// Whether the database records a stream for the relay (set up by an earlier open).
pub async fn is_recorded(db: &Db, names: &Names) -> Result<bool, ProjectorError> {
    let row = sqlx::query("SELECT 1 FROM broker_relay WHERE stream = $1")
        .bind(&names.stream)
        .fetch_optional(&db.read)
        .await?;
    Ok(row.is_some())
}

/// Records a freshly created stream and its consumer: the relay starts after the seed's
/// history (already in the read models) and the read models' checkpoints at the stream's
/// start, in one transaction. With the read models in a database of their own
/// (`read_store`), their checkpoints are set first, in a transaction there: until the stream
/// is recorded here, opening the backend again starts over.
pub async fn record_fresh(
    db: &Db,
    read_store: Option<&Db>,
    names: &Names,
) -> Result<(), ProjectorError> {
    const AT_STREAM_START: &str = "UPDATE projection_checkpoints SET xid = 0, seq = 0";
    if let Some(read) = read_store {
        sqlx::query(AT_STREAM_START).execute(&read.write).await?;
    }
    let mut conn = db.write.acquire().await.map_err(DbError::from)?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let end = sqlx::query("SELECT xid, seq FROM events ORDER BY xid DESC, seq DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    let end = match end {
        Some(r) => Position {
            xid: r.try_get(0)?,
            seq: r.try_get(1)?,
        },
        None => Position::default(),
    };
    record_stream(&mut tx, names, end).await?;
    if read_store.is_none() {
        sqlx::query(AT_STREAM_START).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Records `names` as the relay's stream (replacing any stream recorded before), the relay
/// publishing the log after `from`, on `conn` (in the caller's transaction, with the read
/// models' checkpoints at the stream's start). The table is `db::schema::BROKER_RELAY_DDL`'s.
pub async fn record_stream(
    conn: &mut sqlx::AnyConnection,
    names: &Names,
    from: Position,
) -> Result<(), ProjectorError> {
    sqlx::query("DELETE FROM broker_relay")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO broker_relay (stream, consumer, xid, seq, published) \
         VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(&names.stream)
    .bind(&names.consumer)
    .bind(from.xid)
    .bind(from.seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
