//! The projector of a workload pack on `cqrs-async` ([`super::backend::PackMode::Outbox`]):
//! reads the pack's outbox in batches and applies each event's projection statements to the
//! read models. On `cqrs-broker` ([`super::backend::PackMode::Broker`], `with_broker`) it
//! reads the same events from the NATS JetStream stream the relay published the outbox to,
//! and applies them the same way, its checkpoint then the stream sequence (`xid` 0).
//!
//! **Exactly-once effect.** One transaction per batch: it locks the checkpoint row, runs the
//! projection statements of every event of the batch and moves the checkpoint past them, and
//! commits all of it together. A crash loses the whole batch or none of it; a second projector
//! of the same database waits on the checkpoint's lock and then starts after what the first
//! applied (a batch read before the lock is used only if the checkpoint it was read from is
//! still the locked one, else it is read again).
//!
//! **No late commit skipped on PostgreSQL.** The outbox has the shop's columns (`xid`, the
//! writing transaction's id, beside `seq`) and is read as the shop's is (`Dialect::log_batch`,
//! see `projection::event_source`): only below the oldest running transaction, in `(xid,
//! seq)` order, so nothing can appear below the checkpoint later. A session that keeps a
//! transaction open holds the horizon back: lag (counted in `horizon_waits`), never loss.
//! On SQLite one writer commits at a time (the write pool's single connection, which this
//! projector takes for each batch like every writer), so seq order is commit order.
//!
//! **Order.** Events are applied in `(xid, seq)` order: the order in which their commands
//! first wrote, which is commit order for commands that conflict on their first write, but not
//! always for two commands that meet only in a later statement. Projection statements that
//! add and count (the ledger's) do not care; one that overwrites a value with the event's
//! (crud's profile update) can, in that race, leave the older value — verify then shows the
//! row. The shop absorbs this with per-row versions; a pack can do the same in its SQL
//! (`WHERE version < :version`).
//!
//! **Exactly once from the broker.** The consumer hands messages over only as a run without
//! gaps from the checkpoint (`JetStreamSource`); the batch's transaction locks the
//! checkpoint and applies only the messages past it, and the messages are acknowledged
//! after the commit. A message the server delivers again (an ack lost, a consumer restarted,
//! the ack-wait passed) is at or below the checkpoint: acknowledged, counted as a duplicate,
//! not applied. A relay that published and died before recording republishes with the same
//! `Nats-Msg-Id`, which the stream drops.
//!
//! An event whose payload cannot be read stops the projector at it (counted as an error and
//! retried, with back-off): packs have no dead letters yet.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection as _, Row as _};
use tokio::sync::{watch, Notify};

use super::exec::{CompiledPack, PackEvent};
use crate::db::dialect::Dialect;
use crate::db::sql::Param;
use crate::db::{Db, DbError};
use crate::projection::event_source::{Delivery, EventSource, Position};
use crate::projection::jetstream::JetStreamSource;
use crate::projection::projector::{LagTracker, ProjectorError, ProjectorStats};

/// The outbox of a pack's `cqrs-async` dataset.
pub const OUTBOX: &str = "cqrs_bench_pack_outbox";
/// The projector's checkpoint: one row, [`CHECKPOINT_ROW`], at `(xid, seq)`.
pub const CHECKPOINT: &str = "cqrs_bench_pack_checkpoint";
pub const CHECKPOINT_ROW: &str = "projector";

/// The checkpoint table's DDL (both engines).
pub fn checkpoint_ddl() -> String {
    format!(
        "CREATE TABLE {CHECKPOINT} (name TEXT PRIMARY KEY, xid BIGINT NOT NULL, seq BIGINT NOT NULL)"
    )
}

/// The statement that puts the checkpoint at the start of the outbox.
pub fn checkpoint_start() -> String {
    format!("INSERT INTO {CHECKPOINT} (name, xid, seq) VALUES ('{CHECKPOINT_ROW}', 0, 0)")
}

/// Puts the checkpoint back at the start of the events (the outbox's, or the broker's
/// stream's), in the caller's transaction: a rebuild's start, a fresh stream's.
pub async fn checkpoint_reset(tx: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {CHECKPOINT} SET xid = 0, seq = 0 WHERE name = $1"
    ))
    .bind(CHECKPOINT_ROW)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The table holding read model `name` as the seed left it, which no event describes:
/// where a rebuild (`super::rebuild`) starts before it applies the outbox again.
pub fn baseline_table(name: &str) -> String {
    format!("cqrs_bench_pack_seed_{name}")
}

/// The statements that keep a copy of each of `pack`'s read models as they are (run by
/// `super::backend::prepare` right after the read models are filled from their truth).
pub fn baseline_statements(pack: &CompiledPack) -> Vec<String> {
    pack.pack
        .read_models
        .keys()
        .map(|name| {
            format!(
                "CREATE TABLE {} AS SELECT * FROM {name}",
                baseline_table(name)
            )
        })
        .collect()
}

/// An event as the outbox stores it: `{"event": TYPE, "fields": {NAME: VALUE}}`, values as
/// JSON integers, strings or null.
pub fn event_json(e: &PackEvent) -> String {
    let fields: serde_json::Map<String, serde_json::Value> = e
        .fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Param::Int(n) => serde_json::Value::from(*n),
                Param::Text(t) => serde_json::Value::from(t.as_str()),
                Param::Null => serde_json::Value::Null,
            };
            (k.clone(), v)
        })
        .collect();
    serde_json::json!({ "event": e.event, "fields": fields }).to_string()
}

/// The event [`event_json`] wrote.
pub fn event_from_json(text: &str) -> Result<PackEvent, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let event = v
        .get("event")
        .and_then(|e| e.as_str())
        .ok_or("no event type")?
        .to_string();
    let mut fields = BTreeMap::new();
    for (k, v) in v
        .get("fields")
        .and_then(|f| f.as_object())
        .ok_or("no fields")?
    {
        let p = match v {
            serde_json::Value::Null => Param::Null,
            serde_json::Value::String(s) => Param::Text(s.clone()),
            serde_json::Value::Number(n) => {
                Param::Int(n.as_i64().ok_or(format!("field {k}: not an integer"))?)
            }
            other => return Err(format!("field {k}: {other} is neither integer nor text")),
        };
        fields.insert(k.clone(), p);
    }
    Ok(PackEvent { event, fields })
}

/// The checkpoint, `(xid, seq)`; with `lock`, locked until the transaction on `conn` ends.
pub async fn read_checkpoint(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    lock: bool,
) -> Result<(i64, i64), sqlx::Error> {
    let suffix = if lock { dialect.for_update() } else { "" };
    let sql = format!("SELECT xid, seq FROM {CHECKPOINT} WHERE name = $1{suffix}");
    let row = sqlx::query(&sql)
        .bind(CHECKPOINT_ROW)
        .fetch_one(&mut *conn)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// The exactly-once step, in the caller's transaction (which holds the checkpoint's lock and
/// has left out every event at or below it): applies `events` to the read models and moves
/// the checkpoint to `last`, so both commit together or neither does. `check-projections`
/// drives the same step under delivery faults (`crate::convergence`).
pub async fn apply_and_advance(
    tx: &mut sqlx::AnyConnection,
    pack: &CompiledPack,
    events: &[PackEvent],
    last: (i64, i64),
) -> Result<(), sqlx::Error> {
    pack.project(tx, events).await?;
    sqlx::query(&format!(
        "UPDATE {CHECKPOINT} SET xid = $1, seq = $2 WHERE name = $3"
    ))
    .bind(last.0)
    .bind(last.1)
    .bind(CHECKPOINT_ROW)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One event as read: its position (the outbox's `(xid, seq)`, or `(0, stream seq)`), its
/// outbox seq (the lag's key) and payload.
struct Row {
    xid: i64,
    seq: i64,
    event_seq: i64,
    payload: String,
}

/// Where the projector reads the pack's events.
enum Source {
    /// The outbox in the same database.
    Outbox,
    /// The stream the broker's relay publishes the outbox to.
    Broker(Box<JetStreamSource>),
}

/// The projector of a pack's outbox into the read models of the same database.
pub struct PackProjector {
    db: Db,
    pack: Arc<CompiledPack>,
    batch_size: i64,
    poll_interval: Duration,
    pub stats: Arc<ProjectorStats>,
    lag: Option<Arc<LagTracker>>,
    source: Source,
}

impl PackProjector {
    /// A projector applying at most `batch_size` events per transaction, polling every
    /// `poll_interval` when no wake-up comes, telling `lag` when each event was applied.
    pub fn new(
        db: Db,
        pack: Arc<CompiledPack>,
        batch_size: i64,
        poll_interval: Duration,
        lag: Option<Arc<LagTracker>>,
    ) -> Self {
        PackProjector {
            db,
            pack,
            batch_size: batch_size.max(1),
            poll_interval,
            stats: Arc::new(ProjectorStats::default()),
            lag,
            source: Source::Outbox,
        }
    }

    /// Reads the events from the broker's stream through `consumer` instead of the outbox
    /// (`cqrs-broker`); the checkpoint is then the stream sequence.
    pub fn with_broker(mut self, consumer: JetStreamSource) -> Self {
        self.source = Source::Broker(Box::new(consumer));
        self
    }

    /// The broker's consumer, if it reads one.
    pub fn consumer(&self) -> Option<&JetStreamSource> {
        match &self.source {
            Source::Broker(c) => Some(c),
            Source::Outbox => None,
        }
    }

    async fn checkpoint(
        &self,
        conn: &mut sqlx::AnyConnection,
        lock: bool,
    ) -> Result<(i64, i64), sqlx::Error> {
        read_checkpoint(conn, self.db.dialect(), lock).await
    }

    async fn batch(
        &self,
        conn: &mut sqlx::AnyConnection,
        from: (i64, i64),
    ) -> Result<Vec<Row>, sqlx::Error> {
        let sql = self.db.dialect().log_batch(OUTBOX, true);
        let rows = sqlx::query(&sql)
            .bind(from.0)
            .bind(from.1)
            .bind(self.batch_size)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|r| {
                let seq = r.try_get(1)?;
                Ok(Row {
                    xid: r.try_get(0)?,
                    seq,
                    event_seq: seq,
                    payload: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// What the broker delivered after `from` (and at or below it: delivered again, to be
    /// acknowledged only), in stream order.
    async fn received(
        &self,
        consumer: &JetStreamSource,
        from: (i64, i64),
    ) -> Result<Vec<Row>, ProjectorError> {
        let from = Position {
            xid: from.0,
            seq: from.1,
        };
        let messages = consumer.fetch_payloads(from, self.batch_size).await?;
        Ok(messages
            .into_iter()
            .map(|(f, payload)| Row {
                xid: f.pos.xid,
                seq: f.pos.seq,
                event_seq: f.seq,
                payload,
            })
            .collect())
    }

    /// Applies at most one batch; returns how many events it applied (on the broker, also
    /// how many it received again and only acknowledged).
    pub async fn step(&self) -> Result<usize, ProjectorError> {
        // Read without a transaction first: an idle poll costs one read, no lock.
        let (from, rows) = {
            let mut conn = self.db.read.acquire().await.map_err(DbError::from)?;
            let from = self.checkpoint(&mut conn, false).await?;
            let rows = match &self.source {
                Source::Outbox => {
                    let rows = self.batch(&mut conn, from).await?;
                    if rows.is_empty() && self.held_back(&mut conn, from).await? {
                        self.stats.horizon_waits.fetch_add(1, Ordering::Relaxed);
                    }
                    rows
                }
                Source::Broker(consumer) => {
                    drop(conn);
                    self.received(consumer, from).await?
                }
            };
            (from, rows)
        };
        let Some(received) = rows.last().map(|r| (r.xid, r.seq)) else {
            return Ok(0);
        };
        let handed = rows.len();
        let mut conn = self.db.write.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await?;
        let locked = self.checkpoint(&mut tx, true).await?;
        let rows = match &self.source {
            Source::Outbox if locked != from => {
                // Another projector moved on meanwhile: start after what it applied.
                self.batch(&mut tx, locked).await?
            }
            Source::Outbox => rows,
            // Only what the checkpoint does not cover: the rest was applied already.
            Source::Broker(_) => rows
                .into_iter()
                .filter(|r| (r.xid, r.seq) > locked)
                .collect(),
        };
        let covered = match &self.source {
            Source::Broker(_) => (handed - rows.len()) as u64,
            Source::Outbox => 0,
        };
        let Some(last) = rows.last().map(|r| (r.xid, r.seq)) else {
            tx.rollback().await?;
            return self.acknowledged(received, covered).await;
        };
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            events.push(event_from_json(&r.payload).map_err(|message| {
                ProjectorError::Payload {
                    seq: r.event_seq,
                    message,
                }
            })?);
        }
        apply_and_advance(&mut tx, &self.pack, &events, last).await?;
        tx.commit().await?;
        let at = Instant::now();
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .events
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        if let Some(lag) = &self.lag {
            let seqs: Vec<i64> = rows.iter().map(|r| r.event_seq).collect();
            lag.applied(&seqs, at);
        }
        self.acknowledged(received, covered).await?;
        Ok(rows.len() + covered as usize)
    }

    /// After the commit: tells the broker everything received up to `received` is done
    /// (applied, or covered by the checkpoint already: `covered` duplicates). Returns
    /// `covered`, the events handled without applying.
    async fn acknowledged(
        &self,
        received: (i64, i64),
        covered: u64,
    ) -> Result<usize, ProjectorError> {
        self.stats.duplicates.fetch_add(covered, Ordering::Relaxed);
        if let Source::Broker(consumer) = &self.source {
            consumer
                .ack(Position {
                    xid: received.0,
                    seq: received.1,
                })
                .await?;
        }
        Ok(covered as usize)
    }

    /// Whether committed events after `from` wait behind an open transaction (PostgreSQL).
    async fn held_back(
        &self,
        conn: &mut sqlx::AnyConnection,
        from: (i64, i64),
    ) -> Result<bool, sqlx::Error> {
        if !self.db.dialect().commits_out_of_order() {
            return Ok(false);
        }
        let sql = format!("SELECT 1 FROM {OUTBOX} WHERE (xid, seq) > ($1, $2) LIMIT 1");
        let row = sqlx::query(&sql)
            .bind(from.0)
            .bind(from.1)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.is_some())
    }

    /// Committed events not yet applied (held-back ones included); on the broker, events in
    /// the stream past the checkpoint.
    pub async fn backlog(&self) -> Result<i64, ProjectorError> {
        let mut conn = self.db.read.acquire().await.map_err(DbError::from)?;
        let from = self.checkpoint(&mut conn, false).await?;
        if let Source::Broker(consumer) = &self.source {
            let from = Position {
                xid: from.0,
                seq: from.1,
            };
            return consumer.backlog(from, Delivery::Safe).await;
        }
        let sql = format!("SELECT COUNT(*) FROM {OUTBOX} WHERE (xid, seq) > ($1, $2)");
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(from.0)
            .bind(from.1)
            .fetch_one(&mut *conn)
            .await?;
        Ok(n)
    }

    /// Applies batches until the outbox holds nothing more it may read.
    pub async fn catch_up(&self) -> Result<u64, ProjectorError> {
        let mut total = 0;
        loop {
            let n = self.step().await?;
            total += n as u64;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs until `shutdown` turns true: batches while there are events, else waits for a
    /// wake-up (in-process after a commit, or `listen`'s from other processes) or the poll
    /// timer. Errors are counted and retried with back-off; it never stops on them.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_outbox_json() {
        let e = PackEvent {
            event: "MoneyTransferred".into(),
            fields: BTreeMap::from([
                ("amount".to_string(), Param::Int(-42)),
                ("memo".to_string(), Param::Text("a \"quoted\" note".into())),
                ("none".to_string(), Param::Null),
            ]),
        };
        assert_eq!(event_from_json(&event_json(&e)).unwrap(), e);
        assert!(event_from_json("{\"event\": \"X\", \"fields\": {\"f\": 1.5}}").is_err());
        assert!(event_from_json("{\"fields\": {}}").is_err());
    }
}
