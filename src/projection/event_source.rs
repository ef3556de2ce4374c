//! Where a projector reads events: the `EventSource` seam. A source delivers batches after a
//! position, counts its backlog, takes acknowledgements and wakes the projector when events
//! arrive. Positions are the source's own: the projector only compares them, stores them as
//! checkpoints and hands them back.
//!
//! The first source is the outbox (`events`) in the write model's database.
//!
//! **Not skipping late commits on PostgreSQL.** A `bigserial` is taken at insert and becomes
//! visible at commit, so event 41 can appear after event 42 was read; tailing `seq >
//! checkpoint` would lose 41 for ever. Every event row is stamped with the writing
//! transaction's id (`pg_current_xact_id()`), and the outbox is read, in one statement,
//! `WHERE (xid, seq) > checkpoint AND xid < pg_snapshot_xmin(pg_current_snapshot())
//! ORDER BY xid, seq`: every transaction below that horizon has finished, so nothing can
//! appear below it later. Cost: a long-running or idle-in-transaction session holds the
//! horizon back, which shows up as lag (never as loss), and delivery follows xid order rather
//! than commit order, which the read models absorb through per-row versions and ledgers.
//! On SQLite one writer commits at a time, so seq order is commit order and `seq > checkpoint`
//! is safe. (The statements are the dialect's: `Dialect::log_batch`.)

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use tokio::sync::{watch, Notify};

use super::error::ProjectorError;
use super::sql::Delivered;
use crate::db::sql::{bind_all, multi_row_query, rows_per_statement, values_for, Param};
use crate::db::{Db, DbError};
use crate::domain::Event;

/// A position in the outbox: `(xid, seq)` on PostgreSQL, `(0, seq)` on SQLite. Only the
/// source reads inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Position {
    pub xid: i64,
    pub seq: i64,
}

impl Position {
    /// Where a reader that trusts seq order alone (the naive projector) resumes.
    pub fn by_seq(self) -> Position {
        Position {
            xid: 0,
            seq: self.seq,
        }
    }

    /// Where such a reader stands after reading up to `last`.
    pub fn by_seq_through(self, last: Position) -> Position {
        Position {
            xid: self.xid,
            seq: last.seq.max(self.seq),
        }
    }
}

/// An event as read from a source: decoded, or the reason it could not be.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub pos: Position,
    pub seq: i64,
    pub stream: String,
    pub event: Result<Delivered, String>,
}

impl Fetched {
    pub fn delivered(&self) -> Option<&Delivered> {
        self.event.as_ref().ok()
    }
}

/// In what order a source may deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Only events nothing can appear before later: no late commit is ever skipped.
    Safe,
    /// Position order alone, horizon ignored: the naive projector's negative control.
    Tail,
}

/// Where a projector reads events.
pub trait EventSource: Send + Sync + 'static {
    /// Up to `limit` committed events after `from`, in delivery order.
    fn fetch(
        &self,
        from: Position,
        limit: i64,
        delivery: Delivery,
    ) -> impl Future<Output = Result<Vec<Fetched>, ProjectorError>> + Send;

    /// How many committed events lie after `from` (held-back ones included).
    fn backlog(
        &self,
        from: Position,
        delivery: Delivery,
    ) -> impl Future<Output = Result<i64, ProjectorError>> + Send;

    /// Whether committed events after `from` exist that a safe `fetch` still holds back
    /// (lag behind an open transaction, not loss).
    fn held_back(
        &self,
        from: Position,
    ) -> impl Future<Output = Result<bool, ProjectorError>> + Send;

    /// The events numbered `seqs`, in seq order (for replaying dead letters); unknown ones
    /// are left out.
    fn events_at(
        &self,
        seqs: &[i64],
    ) -> impl Future<Output = Result<Vec<Fetched>, ProjectorError>> + Send;

    /// Tells the source everything up to `pos` is applied. The outbox keeps its events (a
    /// rebuild replays them) and the read store's checkpoint is the acknowledgement, so it
    /// has nothing to do; a broker would ack its messages here.
    fn ack(&self, _pos: Position) -> impl Future<Output = Result<(), ProjectorError>> + Send {
        async { Ok(()) }
    }

    /// Starts forwarding wake-ups for events committed elsewhere (other processes) into
    /// `wake`, until `shutdown` turns true; `None` if the source has none (the projector also
    /// polls on a timer).
    fn wake_ups(
        &self,
        wake: Arc<Notify>,
        shutdown: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>>;
}

/// The channel name for wake-ups on PostgreSQL, per schema.
pub fn notify_channel(db: &Db) -> String {
    format!(
        "cqrs_bench_events_{}",
        db.schema.as_deref().unwrap_or("main")
    )
}

/// An event log table in the write model's database, read by position: the outbox
/// (`events`) or the event-sourced backend's store (`es_events`, see `event_store`), which
/// share their reading columns and their late-commit argument.
#[derive(Clone)]
pub struct EventLog {
    db: Db,
    table: &'static str,
}

impl EventLog {
    /// The outbox of the CQRS backends.
    pub fn outbox(db: Db) -> Self {
        EventLog {
            db,
            table: "events",
        }
    }

    /// The event store of the `event-sourced` backend.
    pub fn event_store(db: Db) -> Self {
        EventLog {
            db,
            table: "es_events",
        }
    }

    /// Another log with the outbox's columns (`Dialect::outbox_ddl`): a workload pack's.
    pub fn of_table(db: Db, table: &'static str) -> Self {
        EventLog { db, table }
    }

    /// The table it reads.
    pub fn table(&self) -> &'static str {
        self.table
    }

    async fn read_connection(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, ProjectorError> {
        Ok(self.db.read.acquire().await.map_err(DbError::from)?)
    }
}

impl EventLog {
    /// Up to `limit` committed rows after `from`, in delivery order, as stored: what
    /// [`EventSource::fetch`] decodes, and what the broker's relay publishes unchanged
    /// (whatever the payload's format: the shop's events or a pack's).
    pub async fn fetch_stored(
        &self,
        from: Position,
        limit: i64,
        delivery: Delivery,
    ) -> Result<Vec<Stored>, ProjectorError> {
        let mut conn = self.read_connection().await?;
        let sql = self
            .db
            .dialect()
            .log_batch(self.table, delivery == Delivery::Safe);
        let rows = sqlx::query(&sql)
            .bind(from.xid)
            .bind(from.seq)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(stored_from).collect()
    }
}

/// A log row as stored: its position, seq, aggregate stream and payload text.
#[derive(Debug, Clone)]
pub struct Stored {
    pub pos: Position,
    pub seq: i64,
    pub stream: String,
    pub payload: String,
}

impl Stored {
    /// The row decoded as one of the shop's events (an unreadable payload kept as such).
    pub fn decoded(self) -> Fetched {
        let seq = self.seq;
        Fetched {
            pos: self.pos,
            seq,
            stream: self.stream,
            event: Event::from_json(&self.payload)
                .map(|event| Delivered { seq, event })
                .map_err(|e| e.to_string()),
        }
    }
}

impl EventSource for EventLog {
    async fn fetch(
        &self,
        from: Position,
        limit: i64,
        delivery: Delivery,
    ) -> Result<Vec<Fetched>, ProjectorError> {
        let rows = self.fetch_stored(from, limit, delivery).await?;
        Ok(rows.into_iter().map(Stored::decoded).collect())
    }

    async fn backlog(&self, from: Position, delivery: Delivery) -> Result<i64, ProjectorError> {
        let mut conn = self.read_connection().await?;
        let table = self.table;
        let n: i64 = match delivery {
            Delivery::Safe => {
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE (xid, seq) > ($1, $2)");
                sqlx::query_scalar(&sql)
                    .bind(from.xid)
                    .bind(from.seq)
                    .fetch_one(&mut *conn)
                    .await?
            }
            Delivery::Tail => {
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE seq > $1");
                sqlx::query_scalar(&sql)
                    .bind(from.seq)
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
        Ok(n)
    }

    async fn held_back(&self, from: Position) -> Result<bool, ProjectorError> {
        if !self.db.dialect().commits_out_of_order() {
            return Ok(false);
        }
        let mut conn = self.read_connection().await?;
        let sql = format!(
            "SELECT 1 FROM {} WHERE (xid, seq) > ($1, $2) LIMIT 1",
            self.table
        );
        let row = sqlx::query(&sql)
            .bind(from.xid)
            .bind(from.seq)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.is_some())
    }

    async fn events_at(&self, seqs: &[i64]) -> Result<Vec<Fetched>, ProjectorError> {
        let mut conn = self.read_connection().await?;
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(rows_per_statement(1)) {
            out.extend(events_numbered(&mut conn, self.table, chunk).await?);
        }
        out.sort_by_key(|f| f.seq);
        Ok(out)
    }

    fn wake_ups(
        &self,
        wake: Arc<Notify>,
        shutdown: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.db.listen(notify_channel(&self.db), wake, shutdown)
    }
}

async fn events_numbered(
    conn: &mut AnyConnection,
    table: &str,
    seqs: &[i64],
) -> Result<Vec<Fetched>, ProjectorError> {
    let params: Vec<Param> = seqs.iter().map(|s| Param::Int(*s)).collect();
    let sql = format!(
        "SELECT xid, seq, stream, payload FROM {table} WHERE seq IN ({})",
        values_for(conn, seqs.len(), 1)
    );
    let rows = bind_all(multi_row_query(&sql, seqs.len()), &params)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(fetched_from).collect()
}

/// An outbox row `xid, seq, stream, payload`; an unreadable payload is returned as such, to
/// be dead-lettered.
pub(super) fn fetched_from(row: &sqlx::any::AnyRow) -> Result<Fetched, ProjectorError> {
    Ok(stored_from(row)?.decoded())
}

/// An outbox row `xid, seq, stream, payload`, as stored.
fn stored_from(row: &sqlx::any::AnyRow) -> Result<Stored, ProjectorError> {
    let xid: i64 = row.try_get(0)?;
    let seq: i64 = row.try_get(1)?;
    Ok(Stored {
        pos: Position { xid, seq },
        seq,
        stream: row.try_get(2)?,
        payload: row.try_get(3)?,
    })
}

/// Sessions that hold the PostgreSQL horizon back: open transactions with a transaction id,
/// oldest first, described as `pid 123 (idle in transaction, open 12.3s)`. Empty on SQLite.
pub async fn pinning_sessions(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let Some(sql) = db.dialect().horizon_pinners() else {
        return Ok(Vec::new());
    };
    let rows = sqlx::query(sql).fetch_all(&db.read).await?;
    rows.iter()
        .map(|r| {
            let pid: i64 = r.try_get(0)?;
            let state: String = r.try_get(1)?;
            let ms: i64 = r.try_get(2)?;
            Ok(format!(
                "pid {pid} ({state}, open {:.1}s)",
                ms as f64 / 1000.0
            ))
        })
        .collect()
}

/// Reads the whole committed log in seq order (for oracles and checks).
pub async fn read_log(db: &Db) -> Result<Vec<Delivered>, ProjectorError> {
    let rows = sqlx::query("SELECT seq, payload FROM events ORDER BY seq")
        .fetch_all(&db.read)
        .await?;
    rows.into_iter()
        .map(|row| {
            let seq: i64 = row.try_get(0)?;
            let payload: String = row.try_get(1)?;
            let event = Event::from_json(&payload).map_err(|e| ProjectorError::Payload {
                seq,
                message: e.to_string(),
            })?;
            Ok(Delivered { seq, event })
        })
        .collect()
}
