//! A read side kept up by a projector over an event log in the write model's database, as
//! `cqrs-async` (the outbox) and `event-sourced` (the event store) have it: the projector's
//! start-up, the wake-ups (in-process after a commit, and a notification statement for
//! projectors in other processes where the engine has one), the read-your-writes check, the
//! wait for catching up, and the shutdown. The backends differ only in which log it reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Row};
use tokio::sync::{watch, Notify};

use super::{BackendOptions, Receipt, Session};
use crate::db::Db;
use crate::projection::event_source::Position;
use crate::projection::event_source::{notify_channel, EventLog};
use crate::projection::projector::{LagTracker, Projector, ProjectorError};
use crate::projection::read_store::{read_checkpoints, SameDatabase};
use crate::projection::ProjectionName;

pub struct Projected {
    /// The statement that wakes projectors in other processes, where the engine has one.
    notify: Option<&'static str>,
    channel: String,
    /// The log's table (`events` or `es_events`).
    table: &'static str,
    wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    projector: Arc<Projector>,
    lag: Option<Arc<LagTracker>>,
    /// The read models' own database (`--read-db`), when they are not in the log's.
    read_store: Option<Db>,
}

impl Projected {
    /// A projector from `log` into the read models of `db`, or of the separate read store
    /// `opts` name, started unless `opts` say not to (tests may drive it by hand instead).
    pub fn start(db: &Db, log: EventLog, opts: &BackendOptions) -> Self {
        let wake = Arc::new(Notify::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let table = log.table();
        let store = opts.read_store.as_ref().unwrap_or(db);
        let mut projector = Projector::over(
            log,
            SameDatabase::new(store.clone()),
            opts.projector.clone(),
        );
        if let Some(lag) = &opts.lag {
            projector = projector.with_lag(lag.clone());
        }
        let projector = Arc::new(projector);
        let task = opts
            .run_projector
            .then(|| tokio::spawn(projector.clone().run(wake.clone(), shutdown_rx)));
        Projected {
            notify: db.dialect().notify(),
            channel: notify_channel(db),
            table,
            wake,
            shutdown,
            task,
            projector,
            lag: opts.lag.clone(),
            read_store: opts.read_store.clone(),
        }
    }

    /// Where the read models are: the separate read store, if any, else `db`.
    pub fn reads_from<'a>(&'a self, db: &'a Db) -> &'a Db {
        self.read_store.as_ref().unwrap_or(db)
    }

    pub fn projector(&self) -> &Arc<Projector> {
        &self.projector
    }

    /// Wakes projectors in other processes once `tx` commits (nothing where the engine has
    /// no notifications).
    pub async fn notify_in(&self, tx: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if let Some(notify) = self.notify {
            sqlx::query(notify)
                .bind(&self.channel)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// After a commit of `seqs` at `at`: starts their lag clocks and wakes the projector.
    pub fn after_commit(&self, seqs: &[i64], at: Instant) {
        if let Some(lag) = &self.lag {
            lag.committed(seqs, at);
        }
        self.wake.notify_one();
    }

    /// Whether every read model's checkpoint covers the receipt's last event.
    pub async fn is_visible(
        &self,
        db: &Db,
        session: &mut Session,
        receipt: &Receipt,
    ) -> Result<bool, sqlx::Error> {
        let Some(&seq) = receipt.seqs.iter().max() else {
            return Ok(true);
        };
        let Some(store) = &self.read_store else {
            let mut conn = session.take(&db.read).await?;
            let result = covers(&mut conn, self.table, seq).await;
            session.give_back(conn, result.is_ok());
            return result;
        };
        // The event's position is in the log's database, the checkpoints in the read store's.
        let Some(pos) = position_of(&db.read, self.table, seq).await? else {
            return Ok(false);
        };
        let mut conn = session.take(&store.read).await?;
        let result = read_checkpoints(&mut conn).await;
        session.give_back(conn, result.is_ok());
        let checkpoints = result?;
        Ok(ProjectionName::ALL
            .iter()
            .all(|p| checkpoints.get(p).is_some_and(|c| *c >= pos)))
    }

    /// Waits until the projector has applied every committed event (driving it here when
    /// its task was not started).
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<(), ProjectorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.task.is_none() {
                self.projector.catch_up().await?;
            }
            if self.projector.backlog().await? == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProjectorError::Timeout(timeout));
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the projector task, if it runs.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The position of event `seq` in `table`, if it is there.
async fn position_of(
    pool: &sqlx::AnyPool,
    table: &str,
    seq: i64,
) -> Result<Option<Position>, sqlx::Error> {
    let sql = format!("SELECT xid, seq FROM {table} WHERE seq = $1");
    let row = sqlx::query(&sql).bind(seq).fetch_optional(pool).await?;
    row.map(|r| {
        Ok(Position {
            xid: r.try_get(0)?,
            seq: r.try_get(1)?,
        })
    })
    .transpose()
}

/// Whether every read model's checkpoint covers event `seq` of `table`. The checkpoint
/// commits with the read-model rows, so "checkpoint covers the event" and "the read model
/// shows it" are the same fact.
async fn covers(conn: &mut AnyConnection, table: &str, seq: i64) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "SELECT COUNT(*) FROM projection_checkpoints c, {table} e \
         WHERE e.seq = $1 AND (c.xid, c.seq) >= (e.xid, e.seq)"
    );
    let row = sqlx::query(&sql).bind(seq).fetch_one(&mut *conn).await?;
    let covered: i64 = row.try_get(0)?;
    Ok(covered as usize >= ProjectionName::ALL.len())
}
