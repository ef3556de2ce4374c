//! The three interchangeable backends behind one type: they share the write model (`write`)
//! and differ in what else the write transaction does and where queries read.
//!
//! | backend      | write transaction also…                   | queries read     |
//! |--------------|-------------------------------------------|------------------|
//! | `normalized` | nothing                                   | normalized joins |
//! | `cqrs-sync`  | applies the events to the read models     | read models      |
//! | `cqrs-async` | appends the events to the outbox          | read models, kept up by the projector |

pub mod queries;
pub mod session;
pub mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use tokio::sync::{watch, Notify};

use crate::db::sql::{bind_all, multi_row_query, values_for, Param};
use crate::db::{Db, DbError};
use crate::domain::{Command, DomainError, Event, Query, QueryAnswer};
use crate::projection::projector::{
    notify_channel, LagTracker, Projector, ProjectorConfig, ProjectorError,
};
use crate::projection::sql::{apply_batch, Delivered, Guard};
use crate::projection::ProjectionName;
use queries::ReadSide;
pub use session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BackendKind {
    #[serde(rename = "normalized")]
    Normalized,
    #[serde(rename = "cqrs-sync")]
    CqrsSync,
    #[serde(rename = "cqrs-async")]
    CqrsAsync,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [
        BackendKind::Normalized,
        BackendKind::CqrsSync,
        BackendKind::CqrsAsync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Normalized => "normalized",
            BackendKind::CqrsSync => "cqrs-sync",
            BackendKind::CqrsAsync => "cqrs-async",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A name usable in file and schema names.
    pub fn ident(self) -> &'static str {
        match self {
            BackendKind::Normalized => "normalized",
            BackendKind::CqrsSync => "cqrs_sync",
            BackendKind::CqrsAsync => "cqrs_async",
        }
    }

    pub fn has_read_models(self) -> bool {
        self != BackendKind::Normalized
    }

    pub fn has_event_log(self) -> bool {
        self == BackendKind::CqrsAsync
    }

    pub fn seed_options(self) -> crate::db::load::SeedOptions {
        crate::db::load::SeedOptions {
            read_models: self.has_read_models(),
            event_log: self.has_event_log(),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The domain refused it (counted, not a failure).
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<DbError> for ExecError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Sql(e) => ExecError::Db(e),
            other => ExecError::Db(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

/// What a committed command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    pub events: Vec<Event>,
    /// Outbox positions of the events (async backend only).
    pub seqs: Vec<i64>,
    pub committed_at: Option<Instant>,
}

#[derive(Debug, Clone)]
pub struct BackendOptions {
    pub projector: ProjectorConfig,
    /// Run the async projector inside this process (tests may drive it by hand instead).
    pub run_projector: bool,
    pub lag: Option<Arc<LagTracker>>,
    /// Give each driver worker a connection of its own on PostgreSQL (see `session`); the
    /// caller sets it only when the pool has room for every worker and the projector.
    pub dedicated_sessions: bool,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            projector: ProjectorConfig::default(),
            run_projector: true,
            lag: None,
            dedicated_sessions: false,
        }
    }
}

struct AsyncParts {
    wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    projector: Arc<Projector>,
    channel: String,
}

pub struct Backend {
    pub kind: BackendKind,
    pub db: Db,
    async_parts: Option<AsyncParts>,
    lag: Option<Arc<LagTracker>>,
    dedicated_sessions: bool,
}

impl Backend {
    /// Opens a backend on a seeded database; for `cqrs-async`, starts its projector unless
    /// told not to.
    pub async fn open(kind: BackendKind, db: Db, opts: BackendOptions) -> Result<Self, DbError> {
        crate::db::schema::require_ours(&db).await?;
        let async_parts = if kind == BackendKind::CqrsAsync {
            let wake = Arc::new(Notify::new());
            let (shutdown, shutdown_rx) = watch::channel(false);
            let mut projector = Projector::new(db.clone(), opts.projector.clone());
            if let Some(lag) = &opts.lag {
                projector = projector.with_lag(lag.clone());
            }
            let projector = Arc::new(projector);
            let task = if opts.run_projector {
                Some(tokio::spawn(
                    projector.clone().run(wake.clone(), shutdown_rx),
                ))
            } else {
                None
            };
            Some(AsyncParts {
                channel: notify_channel(&db),
                wake,
                shutdown,
                task,
                projector,
            })
        } else {
            None
        };
        Ok(Backend {
            kind,
            db,
            async_parts,
            lag: opts.lag,
            dedicated_sessions: opts.dedicated_sessions,
        })
    }

    /// A driver worker's session for the write lane (`writes`) or the read lane: dedicated
    /// when the backend was opened with room for it, except on a single shared writer
    /// connection (SQLite's, which the other writers and the projector need too).
    pub fn session(&self, writes: bool) -> Session {
        if self.dedicated_sessions && !(writes && self.db.single_writer()) {
            Session::dedicated()
        } else {
            Session::shared()
        }
    }

    /// Executes one command in one transaction, on a connection checked out of the pool.
    pub async fn execute(&self, cmd: &Command) -> Result<Receipt, ExecError> {
        self.execute_in(&mut Session::shared(), cmd).await
    }

    /// Executes one command in one transaction, on the session's connection.
    pub async fn execute_in(
        &self,
        session: &mut Session,
        cmd: &Command,
    ) -> Result<Receipt, ExecError> {
        let mut conn = session.take(&self.db.write).await.map_err(DbError::from)?;
        let result = self.execute_on(&mut conn, cmd).await;
        session.give_back(conn, !matches!(result, Err(ExecError::Db(_))));
        result
    }

    async fn execute_on(
        &self,
        conn: &mut AnyConnection,
        cmd: &Command,
    ) -> Result<Receipt, ExecError> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let events = write::execute(&mut tx, self.db.is_pg(), cmd).await?;
        let mut seqs = Vec::new();
        match self.kind {
            BackendKind::Normalized => {}
            BackendKind::CqrsSync => {
                let delivered: Vec<Delivered> = events
                    .iter()
                    .map(|e| Delivered {
                        seq: 0,
                        event: e.clone(),
                    })
                    .collect();
                apply_batch(
                    &mut tx,
                    &delivered,
                    &ProjectionName::ALL,
                    Guard::InWriteTransaction,
                )
                .await?;
            }
            BackendKind::CqrsAsync => {
                seqs = append_events(&mut tx, &events).await?;
                if let (true, Some(parts)) = (self.db.is_pg(), &self.async_parts) {
                    sqlx::query("SELECT pg_notify($1, '')")
                        .bind(&parts.channel)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        let committed_at = Instant::now();
        if let Some(parts) = &self.async_parts {
            if let Some(lag) = &self.lag {
                lag.committed(&seqs, committed_at);
            }
            parts.wake.notify_one();
        }
        Ok(Receipt {
            events,
            seqs,
            committed_at: Some(committed_at),
        })
    }

    pub async fn query(&self, q: &Query) -> Result<QueryAnswer, sqlx::Error> {
        self.query_in(&mut Session::shared(), q).await
    }

    pub async fn query_in(
        &self,
        session: &mut Session,
        q: &Query,
    ) -> Result<QueryAnswer, sqlx::Error> {
        let side = if self.kind.has_read_models() {
            ReadSide::ReadModels
        } else {
            ReadSide::Normalized
        };
        let mut conn = session.take(&self.db.read).await?;
        let result = queries::run(&mut conn, side, q).await;
        session.give_back(conn, result.is_ok());
        result
    }

    /// The projector of the async backend (for driving it by hand and for its counters).
    pub fn projector(&self) -> Option<&Arc<Projector>> {
        self.async_parts.as_ref().map(|p| &p.projector)
    }

    /// Waits until every committed event is in the read models (async backend; immediate for
    /// the others).
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<(), ProjectorError> {
        let Some(parts) = &self.async_parts else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        loop {
            if parts.task.is_none() {
                parts.projector.catch_up().await?;
            }
            if parts.projector.backlog().await? == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProjectorError::Timeout(timeout));
            }
            parts.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether the read models already show the effect of `receipt` (read-your-writes).
    pub async fn is_visible(&self, receipt: &Receipt) -> Result<bool, sqlx::Error> {
        self.is_visible_in(&mut Session::shared(), receipt).await
    }

    pub async fn is_visible_in(
        &self,
        session: &mut Session,
        receipt: &Receipt,
    ) -> Result<bool, sqlx::Error> {
        let Some(&seq) = receipt.seqs.iter().max() else {
            return Ok(true);
        };
        let mut conn = session.take(&self.db.read).await?;
        let result = Self::covers(&mut conn, seq).await;
        session.give_back(conn, result.is_ok());
        result
    }

    async fn covers(conn: &mut AnyConnection, seq: i64) -> Result<bool, sqlx::Error> {
        // The checkpoint commits with the read-model rows, so "checkpoint covers the event"
        // and "the read model shows it" are the same fact.
        let row = sqlx::query(
            "SELECT COUNT(*) FROM projection_checkpoints c, events e \
             WHERE e.seq = $1 AND (c.xid, c.seq) >= (e.xid, e.seq)",
        )
        .bind(seq)
        .fetch_one(&mut *conn)
        .await?;
        let covered: i64 = row.try_get(0)?;
        Ok(covered as usize >= ProjectionName::ALL.len())
    }

    /// Stops the projector task, if any.
    pub async fn shutdown(mut self) {
        if let Some(parts) = self.async_parts.as_mut() {
            let _ = parts.shutdown.send(true);
            if let Some(task) = parts.task.take() {
                let _ = task.await;
            }
        }
    }
}

/// Appends events to the outbox; returns their seqs.
pub async fn append_events(
    conn: &mut AnyConnection,
    events: &[Event],
) -> Result<Vec<i64>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let params: Vec<Param> = events
        .iter()
        .flat_map(|e| [e.stream().into(), e.kind().into(), e.to_json().into()])
        .collect();
    let sql = format!(
        "INSERT INTO events (stream, kind, payload) VALUES {} RETURNING seq",
        values_for(conn, events.len(), 3)
    );
    let rows = bind_all(multi_row_query(&sql, events.len()), &params)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.try_get::<i64, _>(0)).collect()
}

/// Opens `url` (schema `schema` on PostgreSQL), seeds the dataset for `kind` and returns the
/// database, ready for `Backend::open`.
pub async fn prepare(
    url: &crate::db::DbUrl,
    schema: &str,
    kind: BackendKind,
    seed: u64,
    spec: &crate::dataset::DatasetSpec,
    pool_size: u32,
) -> Result<(Db, crate::db::load::SeedReport), DbError> {
    let db = Db::open(url, schema, pool_size).await?;
    let ds = crate::dataset::Dataset::generate(seed, spec);
    let report = crate::db::load::seed(&db, &ds, kind.seed_options()).await?;
    Ok((db, report))
}
