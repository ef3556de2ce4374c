//! The asynchronous projector: reads the event log in batches and applies them to the read
//! models, storing each read model's checkpoint in the same transaction as the rows it changed
//! (exactly-once effect: a crash loses the whole batch or none of it).
//!
//! **Not skipping late commits on PostgreSQL.** A `bigserial` is taken at insert and becomes
//! visible at commit, so event 41 can appear after event 42 was read; tailing `seq >
//! checkpoint` would lose 41 for ever. Every event row is stamped with the writing
//! transaction's id (`pg_current_xact_id()`), and the projector reads, in one statement,
//! `WHERE (xid, seq) > checkpoint AND xid < pg_snapshot_xmin(pg_current_snapshot())
//! ORDER BY xid, seq`: every transaction below that horizon has finished, so nothing can
//! appear below it later. Cost: a long-running or idle-in-transaction session holds the
//! horizon back, which shows up as lag (never as loss), and delivery follows xid order rather
//! than commit order, which the read models absorb through per-row versions and ledgers.
//! On SQLite one writer commits at a time, so seq order is commit order and `seq > checkpoint`
//! is safe.
//!
//! It wakes on an in-process signal and, on PostgreSQL, on LISTEN/NOTIFY (so a projector in
//! another process wakes too), and polls on a timer in case a wake-up is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use tokio::sync::{mpsc, watch, Notify};

use super::dead_letter::{apply_guarded, Fetched};
use super::sql::{apply_batch, Delivered, Guard};
use super::ProjectionName;
use crate::db::dialect::Dialect;
use crate::db::sql::{bind_all, Param};
use crate::db::{Db, DbError};
use crate::domain::Event;
use crate::workload::rng::Rng;

/// Which projector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProjectorMode {
    /// Checkpoint in the read-model transaction, guarded handlers, horizon-safe reads.
    #[default]
    ExactlyOnce,
    /// The negative control: unguarded handlers, `seq > checkpoint` tailing, checkpoint saved
    /// in its own transaction after applying.
    Naive,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectorConfig {
    pub batch_size: i64,
    pub poll_interval: Duration,
    pub mode: ProjectorMode,
    /// Fault injection: share of events delivered a second time (with the next batch). The
    /// guarded projector must absorb it; the naive one shows the damage.
    #[serde(default)]
    pub redeliver: f64,
    /// Fault drills: keep each batch's transaction open this long before committing, so a
    /// `kill -9` lands mid-batch. Zero in normal runs.
    #[serde(default)]
    pub hold_before_commit: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            batch_size: 500,
            poll_interval: Duration::from_millis(50),
            mode: ProjectorMode::ExactlyOnce,
            redeliver: 0.0,
            hold_before_commit: Duration::ZERO,
        }
    }
}

/// A position in the log: `(xid, seq)` on PostgreSQL, `(0, seq)` on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Position {
    pub xid: i64,
    pub seq: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database error in projector: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("event {seq} has an unreadable payload: {message}")]
    Payload { seq: i64, message: String },
    #[error("{0} has no event log (only a cqrs-async dataset has one); nothing to rebuild from")]
    NoEventLog(String),
    #[error("projector did not catch up within {0:?}")]
    Timeout(Duration),
}

/// Counters the projector keeps while it runs.
#[derive(Debug, Default)]
pub struct ProjectorStats {
    pub batches: AtomicU64,
    pub events: AtomicU64,
    pub duplicates: AtomicU64,
    pub errors: AtomicU64,
    /// Events delivered a second time by fault injection.
    pub redelivered: AtomicU64,
    /// Idle polls that found committed events waiting behind an open transaction (PostgreSQL):
    /// lag caused by a pinned horizon, not loss.
    pub horizon_waits: AtomicU64,
}

/// Measures projection lag: from the writer's observed commit of an event to the projector's
/// observed commit of the batch that applied it. Lags go out on a channel to whoever records
/// them; entries are removed as soon as both ends are known, so memory is bounded by events in
/// flight.
#[derive(Debug)]
pub struct LagTracker {
    inner: Mutex<LagMaps>,
    sink: mpsc::UnboundedSender<LagSample>,
}

#[derive(Debug, Default)]
struct LagMaps {
    committed: HashMap<i64, Instant>,
    applied_first: HashMap<i64, Instant>,
}

/// One measured lag, stamped with when the projector applied it.
#[derive(Debug, Clone, Copy)]
pub struct LagSample {
    pub applied_at: Instant,
    pub lag: Duration,
}

impl LagTracker {
    pub fn new() -> (Arc<LagTracker>, mpsc::UnboundedReceiver<LagSample>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(LagTracker {
                inner: Mutex::new(LagMaps::default()),
                sink: tx,
            }),
            rx,
        )
    }

    /// The writer saw its commit of `seqs` at `at`.
    pub fn committed(&self, seqs: &[i64], at: Instant) {
        self.meet(seqs, at, true);
    }

    /// The projector saw its commit of a batch holding `seqs` at `at`.
    pub fn applied(&self, seqs: &[i64], at: Instant) {
        self.meet(seqs, at, false);
    }

    /// Pairs each seq with the other side's observation, or waits for it. When the
    /// projector's commit is seen first, the lag rounds to zero.
    fn meet(&self, seqs: &[i64], at: Instant, writer: bool) {
        let mut guard = self.inner.lock().expect("lag tracker lock");
        let LagMaps {
            committed,
            applied_first,
        } = &mut *guard;
        let (mine, theirs) = if writer {
            (committed, applied_first)
        } else {
            (applied_first, committed)
        };
        for &s in seqs {
            match theirs.remove(&s) {
                Some(other) => {
                    let (commit, applied) = if writer { (at, other) } else { (other, at) };
                    let _ = self.sink.send(LagSample {
                        applied_at: applied,
                        lag: applied.saturating_duration_since(commit),
                    });
                }
                None => {
                    mine.insert(s, at);
                }
            }
        }
    }

    /// Forgets events applied before any writer of this process registered them (seed
    /// events, other processes' events), so the map does not grow.
    pub fn forget_unmatched(&self) {
        let mut m = self.inner.lock().expect("lag tracker lock");
        m.applied_first.clear();
    }
}

/// The channel name for wake-ups on PostgreSQL, per schema.
pub fn notify_channel(db: &Db) -> String {
    format!(
        "cqrs_bench_events_{}",
        db.schema.as_deref().unwrap_or("main")
    )
}

pub struct Projector {
    db: Db,
    config: ProjectorConfig,
    projections: Vec<ProjectionName>,
    pub stats: Arc<ProjectorStats>,
    lag: Option<Arc<LagTracker>>,
    redelivery: Mutex<Vec<Fetched>>,
    rng: Mutex<Rng>,
}

impl Projector {
    pub fn new(db: Db, config: ProjectorConfig) -> Self {
        Projector {
            db,
            config,
            projections: ProjectionName::ALL.to_vec(),
            stats: Arc::new(ProjectorStats::default()),
            lag: None,
            redelivery: Mutex::new(Vec::new()),
            rng: Mutex::new(Rng::new(0x5EED_DE11)),
        }
    }

    pub fn with_lag(mut self, lag: Arc<LagTracker>) -> Self {
        self.lag = Some(lag);
        self
    }

    /// Restricts the projector to some read models (a rebuild of one leaves the others alone).
    pub fn with_projections(mut self, projections: &[ProjectionName]) -> Self {
        self.projections = projections.to_vec();
        self
    }

    /// Where reading resumes: the oldest checkpoint among this projector's read models.
    fn oldest(&self, checkpoints: &HashMap<ProjectionName, Position>) -> Position {
        self.projections
            .iter()
            .map(|p| checkpoints.get(p).copied().unwrap_or_default())
            .min()
            .unwrap_or_default()
    }

    pub fn config(&self) -> &ProjectorConfig {
        &self.config
    }

    /// Applies at most one batch. Returns how many events it delivered.
    pub async fn step(&self) -> Result<usize, ProjectorError> {
        match self.config.mode {
            ProjectorMode::ExactlyOnce => self.step_exactly_once().await,
            ProjectorMode::Naive => self.step_naive().await,
        }
    }

    async fn step_exactly_once(&self) -> Result<usize, ProjectorError> {
        let mut conn = self.db.write.acquire().await.map_err(DbError::from)?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        // Locking the checkpoints serializes projectors of the same read models.
        let checkpoints = lock_checkpoints(&mut tx, self.db.dialect(), &self.projections).await?;
        let from = self.oldest(&checkpoints);
        let batch = fetch(
            &mut tx,
            self.db.dialect(),
            from,
            self.config.batch_size,
            true,
        )
        .await?;
        let redelivered = std::mem::take(&mut *self.redelivery.lock().expect("redelivery lock"));
        if batch.is_empty() && redelivered.is_empty() {
            if self.db.dialect().commits_out_of_order() && committed_beyond(&mut tx, from).await? {
                self.stats.horizon_waits.fetch_add(1, Ordering::Relaxed);
            }
            tx.rollback().await?;
            return Ok(0);
        }
        let last = batch.last().map(|f| f.pos).unwrap_or(from);
        let mut duplicates = 0;
        for &p in &self.projections {
            let cp = checkpoints.get(&p).copied().unwrap_or_default();
            duplicates += apply_to(&mut tx, p, cp, last, &batch, &redelivered).await?;
        }
        if !self.config.hold_before_commit.is_zero() {
            tokio::time::sleep(self.config.hold_before_commit).await;
        }
        tx.commit().await?;
        let committed_at = Instant::now();
        self.after_commit(&batch, duplicates, committed_at);
        Ok(batch.len() + redelivered.len())
    }

    /// Applies the log from the checkpoints to its end as fast as the database allows, for
    /// rebuilds: the next batch is read (on a connection of its own) while the current one is
    /// applied, and on PostgreSQL each batch goes to the read models concurrently, one
    /// transaction and connection each, so the server's cores share the work. The live
    /// projector keeps `step`: one transaction per batch for every read model, so lag is one
    /// commit. Returns the events applied.
    pub async fn replay_log(&self) -> Result<u64, ProjectorError> {
        let mut from = {
            let mut conn = self.db.read.acquire().await.map_err(DbError::from)?;
            self.oldest(&read_checkpoints(&mut conn).await?)
        };
        let mut batch = self.read_batch(from).await?;
        let mut total = 0;
        while let Some(last) = batch.last().map(|f| f.pos) {
            let (applied, next) =
                tokio::join!(self.apply_each(from, &batch), self.read_batch(last));
            self.after_commit(&batch, applied?, Instant::now());
            total += batch.len() as u64;
            (from, batch) = (last, next?);
        }
        Ok(total)
    }

    /// The committed events after `from`, read outside any write transaction.
    async fn read_batch(&self, from: Position) -> Result<Vec<Fetched>, ProjectorError> {
        let mut conn = self.db.read.acquire().await.map_err(DbError::from)?;
        fetch(
            &mut conn,
            self.db.dialect(),
            from,
            self.config.batch_size,
            true,
        )
        .await
    }

    /// Applies `batch` (read from `from`) to every read model: on PostgreSQL one transaction
    /// per read model, all at once; on SQLite, with its single writer, one transaction. Each
    /// transaction locks only its read models' checkpoints; a read model reset since the batch
    /// was read (checkpoint before `from`) is left for the next pass. Returns the duplicates.
    async fn apply_each(&self, from: Position, batch: &[Fetched]) -> Result<u64, ProjectorError> {
        let dialect = self.db.dialect();
        let groups: Vec<Vec<ProjectionName>> = if self.db.single_writer() {
            vec![self.projections.clone()]
        } else {
            self.projections.iter().map(|&p| vec![p]).collect()
        };
        let last = batch.last().map(|f| f.pos).unwrap_or(from);
        let duplicates = futures::future::try_join_all(groups.iter().map(|group| async move {
            let mut conn = self.db.write.acquire().await.map_err(DbError::from)?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let checkpoints = lock_checkpoints(&mut tx, dialect, group).await?;
            let mut duplicates = 0;
            for &p in group {
                let cp = checkpoints.get(&p).copied().unwrap_or_default();
                if cp >= from {
                    duplicates += apply_to(&mut tx, p, cp, last, batch, &[]).await?;
                }
            }
            tx.commit().await?;
            Ok::<u64, ProjectorError>(duplicates)
        }))
        .await?;
        Ok(duplicates.iter().sum())
    }

    async fn step_naive(&self) -> Result<usize, ProjectorError> {
        let mut conn = self.db.write.acquire().await.map_err(DbError::from)?;
        let checkpoints = read_checkpoints(&mut conn).await?;
        let from = checkpoints
            .get(&ProjectionName::ProductCatalog)
            .copied()
            .unwrap_or_default();
        // Tails seq alone, ignoring the transaction horizon.
        let batch = fetch(
            &mut conn,
            self.db.dialect(),
            Position {
                xid: 0,
                seq: from.seq,
            },
            self.config.batch_size,
            false,
        )
        .await?;
        let redelivered = std::mem::take(&mut *self.redelivery.lock().expect("redelivery lock"));
        if batch.is_empty() && redelivered.is_empty() {
            return Ok(0);
        }
        let last = batch.last().map(|f| f.pos).unwrap_or(from);
        let mut due: Vec<&Delivered> = Vec::with_capacity(batch.len() + redelivered.len());
        for f in redelivered.iter().chain(batch.iter()) {
            match f.delivered() {
                Some(d) => due.push(d),
                None => {
                    return Err(ProjectorError::Payload {
                        seq: f.seq,
                        message: f.event.clone().err().unwrap_or_default(),
                    })
                }
            }
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        apply_batch(&mut tx, &due, &self.projections, Guard::Naive).await?;
        tx.commit().await?;
        let committed_at = Instant::now();
        // The checkpoint, in its own transaction, after the fact.
        for p in &self.projections {
            save_checkpoint(
                &mut conn,
                *p,
                Position {
                    xid: from.xid,
                    seq: last.seq.max(from.seq),
                },
                batch.len() as i64,
                0,
            )
            .await?;
        }
        self.after_commit(&batch, 0, committed_at);
        Ok(batch.len() + redelivered.len())
    }

    fn after_commit(&self, batch: &[Fetched], duplicates: u64, at: Instant) {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .events
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.stats
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        if let Some(lag) = &self.lag {
            let seqs: Vec<i64> = batch.iter().map(|f| f.seq).collect();
            lag.applied(&seqs, at);
        }
        // Fault injection: deliver a share of this batch again with the next one.
        if self.config.redeliver > 0.0 {
            let mut rng = self.rng.lock().expect("rng lock");
            let again: Vec<Fetched> = batch
                .iter()
                .filter(|_| rng.chance(self.config.redeliver))
                .cloned()
                .collect();
            self.stats
                .redelivered
                .fetch_add(again.len() as u64, Ordering::Relaxed);
            self.redelivery
                .lock()
                .expect("redelivery lock")
                .extend(again);
        }
    }

    /// Events not yet applied to every read model (committed ones only).
    pub async fn backlog(&self) -> Result<i64, ProjectorError> {
        let mut conn = self.db.read.acquire().await.map_err(DbError::from)?;
        let checkpoints = read_checkpoints(&mut conn).await?;
        let from = self.oldest(&checkpoints);
        let n: i64 = match self.config.mode {
            ProjectorMode::ExactlyOnce => {
                sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE (xid, seq) > ($1, $2)")
                    .bind(from.xid)
                    .bind(from.seq)
                    .fetch_one(&mut *conn)
                    .await?
            }
            ProjectorMode::Naive => {
                sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE seq > $1")
                    .bind(from.seq)
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
        Ok(n)
    }

    /// Applies batches until the log holds nothing more for this projector.
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

    /// Runs until `shutdown` turns true: applies batches while there are events, otherwise
    /// waits for a wake-up or the poll timer. Database errors are counted and retried with
    /// back-off; the projector never stops on them.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let listener = self
            .db
            .listen(notify_channel(&self.db), wake.clone(), shutdown.clone());
        let mut backoff = Duration::from_millis(10);
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.step().await {
                Ok(n) if n > 0 => {
                    backoff = Duration::from_millis(10);
                    continue;
                }
                Ok(_) => {
                    backoff = Duration::from_millis(10);
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(_) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        if let Some(h) = listener {
            h.abort();
        }
    }
}

/// Every read model's checkpoint, without locking.
pub async fn read_checkpoints(
    conn: &mut AnyConnection,
) -> Result<HashMap<ProjectionName, Position>, sqlx::Error> {
    let rows = sqlx::query("SELECT projection, xid, seq FROM projection_checkpoints")
        .fetch_all(&mut *conn)
        .await?;
    checkpoints_from(&rows)
}

fn checkpoints_from(
    rows: &[sqlx::any::AnyRow],
) -> Result<HashMap<ProjectionName, Position>, sqlx::Error> {
    let mut out = HashMap::new();
    for row in rows {
        let name: String = row.try_get(0)?;
        if let Some(p) = ProjectionName::from_name(&name) {
            out.insert(
                p,
                Position {
                    xid: row.try_get(1)?,
                    seq: row.try_get(2)?,
                },
            );
        }
    }
    Ok(out)
}

/// Reads and locks the checkpoints of `projections` (in name order, so two projectors
/// cannot deadlock).
async fn lock_checkpoints(
    conn: &mut AnyConnection,
    dialect: Dialect,
    projections: &[ProjectionName],
) -> Result<HashMap<ProjectionName, Position>, sqlx::Error> {
    let names: Vec<Param> = projections.iter().map(|p| p.name().into()).collect();
    let sql = format!(
        "SELECT projection, xid, seq FROM projection_checkpoints \
         WHERE projection IN ({}) ORDER BY projection{}",
        dialect.values_list(names.len(), 1),
        dialect.for_update()
    );
    let rows = bind_all(sqlx::query(&sql), &names)
        .fetch_all(&mut *conn)
        .await?;
    checkpoints_from(&rows)
}

/// Applies to read model `p`, whose checkpoint is `cp`, the redelivered events and the batch's
/// events beyond `cp`, and moves its checkpoint to `last`. Returns the duplicates skipped.
async fn apply_to(
    conn: &mut AnyConnection,
    p: ProjectionName,
    cp: Position,
    last: Position,
    batch: &[Fetched],
    redelivered: &[Fetched],
) -> Result<u64, ProjectorError> {
    let new: Vec<&Fetched> = batch.iter().filter(|f| f.pos > cp).collect();
    let due: Vec<&Fetched> = redelivered.iter().chain(new.iter().copied()).collect();
    if due.is_empty() {
        return Ok(0);
    }
    let stats = apply_guarded(conn, p, &due).await?;
    save_checkpoint(
        conn,
        p,
        cp.max(last),
        new.len() as i64,
        stats.duplicates as i64,
    )
    .await?;
    Ok(stats.duplicates)
}

pub async fn save_checkpoint(
    conn: &mut AnyConnection,
    p: ProjectionName,
    pos: Position,
    applied: i64,
    duplicates: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (projection, xid, seq, applied, duplicates) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (projection) DO UPDATE SET \
         xid = excluded.xid, seq = excluded.seq, \
         applied = projection_checkpoints.applied + excluded.applied, \
         duplicates = projection_checkpoints.duplicates + excluded.duplicates",
    )
    .bind(p.name())
    .bind(pos.xid)
    .bind(pos.seq)
    .bind(applied)
    .bind(duplicates)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Reads the next events after `from`. With `horizon` on PostgreSQL, only events of finished
/// transactions (see the module comment); in one statement, so the horizon and the rows come
/// from the same snapshot. An unreadable payload is returned as such, to be dead-lettered.
async fn fetch(
    conn: &mut AnyConnection,
    dialect: Dialect,
    from: Position,
    limit: i64,
    horizon: bool,
) -> Result<Vec<Fetched>, ProjectorError> {
    let rows = sqlx::query(dialect.outbox_batch(horizon))
        .bind(from.xid)
        .bind(from.seq)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let xid: i64 = row.try_get(0)?;
        let seq: i64 = row.try_get(1)?;
        let stream: String = row.try_get(2)?;
        let payload: String = row.try_get(3)?;
        out.push(Fetched {
            pos: Position { xid, seq },
            seq,
            stream,
            event: Event::from_json(&payload)
                .map(|event| Delivered { seq, event })
                .map_err(|e| e.to_string()),
        });
    }
    Ok(out)
}

/// Whether committed events exist beyond `from` that the horizon still holds back.
async fn committed_beyond(conn: &mut AnyConnection, from: Position) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 FROM events WHERE (xid, seq) > ($1, $2) LIMIT 1")
        .bind(from.xid)
        .bind(from.seq)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
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

/// Empties the given read models (rows, ledgers, dead letters) and sets their checkpoints
/// back to the start of the log, in one transaction; the projector then rebuilds them from
/// the log. Other read models are left as they are.
pub async fn reset_read_models(
    db: &Db,
    projections: &[ProjectionName],
) -> Result<(), ProjectorError> {
    let mut conn = db.write.acquire().await.map_err(DbError::from)?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied().chain(p.ledger()))
        .collect();
    for stmt in db.dialect().empty_tables(&tables) {
        sqlx::query(&stmt).execute(&mut *tx).await?;
    }
    for p in projections {
        sqlx::query("DELETE FROM dead_letters WHERE projection = $1")
            .bind(p.name())
            .execute(&mut *tx)
            .await?;
        save_checkpoint_absolute(&mut tx, *p, Position::default()).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn save_checkpoint_absolute(
    conn: &mut AnyConnection,
    p: ProjectionName,
    pos: Position,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM projection_checkpoints WHERE projection = $1")
        .bind(p.name())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO projection_checkpoints (projection, xid, seq, applied, duplicates) \
         VALUES ($1, $2, $3, 0, 0)",
    )
    .bind(p.name())
    .bind(pos.xid)
    .bind(pos.seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Per read model: events applied and duplicates skipped since its last reset.
pub async fn checkpoint_counts(db: &Db) -> Result<Vec<(String, i64, i64)>, ProjectorError> {
    let rows = sqlx::query(
        "SELECT projection, applied, duplicates FROM projection_checkpoints ORDER BY projection",
    )
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_pairs_writer_and_projector_commits() {
        let (tracker, mut rx) = LagTracker::new();
        let t0 = Instant::now();
        tracker.committed(&[1, 2], t0);
        tracker.applied(&[1], t0 + Duration::from_millis(30));
        let s = rx.try_recv().expect("a lag for seq 1");
        assert_eq!(s.lag, Duration::from_millis(30));
        // The projector's commit came back before the writer's: zero, not negative.
        tracker.applied(&[3], t0);
        tracker.committed(&[3], t0 + Duration::from_millis(5));
        assert_eq!(rx.try_recv().expect("a lag for seq 3").lag, Duration::ZERO);
        // Seq 2 is still in flight: nothing more.
        assert!(rx.try_recv().is_err());
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RebuildReport {
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Rebuilds read models from the event log: empties them (one transaction), then applies the
/// whole log with the exactly-once projector. Other read models are not touched. An empty log
/// rebuilds to empty read models and returns at once.
pub async fn rebuild(
    db: &Db,
    projections: &[ProjectionName],
    batch_size: i64,
) -> Result<RebuildReport, ProjectorError> {
    if !crate::db::state::DbState::read(db).await?.has_event_log() {
        return Err(ProjectorError::NoEventLog(db.url.redacted()));
    }
    let started = Instant::now();
    reset_read_models(db, projections).await?;
    let projector = Projector::new(
        db.clone(),
        ProjectorConfig {
            batch_size,
            ..ProjectorConfig::default()
        },
    )
    .with_projections(projections);
    loop {
        projector.replay_log().await?;
        // Transactions still open elsewhere can hold the horizon back: wait, don't stop short.
        if projector.backlog().await? == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let events = projector.stats.events.load(Ordering::Relaxed);
    Ok(RebuildReport {
        events,
        seconds,
        events_per_second: events as f64 / seconds.max(1e-9),
    })
}
