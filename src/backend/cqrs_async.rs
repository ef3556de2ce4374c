//! `cqrs-async`: the write transaction appends its events to the outbox (and, where the engine
//! has notifications, wakes projectors in other processes); the projector applies them to the
//! read models later, and queries read the read models. A reader sees a write once every read
//! model's checkpoint covers its events. Verify compares the read models with the truth from
//! the write model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::{AnyConnection, Row};
use tokio::sync::{watch, Notify};

use super::entry::{Entry, VerifiedAgainst};
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions, Receipt, Session, Written};
use crate::db::sql::{bind_all, multi_row_query, values_for, Param};
use crate::db::state::Provisions;
use crate::db::Db;
use crate::domain::Event;
use crate::projection::event_source::notify_channel;
use crate::projection::projector::{LagTracker, Projector, ProjectorError};
use crate::projection::ProjectionName;

pub const KIND: BackendKind = BackendKind::new("cqrs-async");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "cqrs_async",
    help:
        "events appended to an outbox in the write transaction; a projector updates the read models",
    provisions: Provisions::READ_MODELS_AND_LOG,
    verified_against: VerifiedAgainst::WriteModel,
    write_also: "appending the outbox event",
    read_side_lags: true,
    requires: None,
    in_default_set: true,
    lag_name: "projection lag",
    operations: "one database, plus a projector to run and watch (checkpoints, dead letters, rebuilds); readers must tolerate its lag",
    alternative_to_cqrs: None,
    needs_replica: false,
    open,
};

/// Starts the projector unless told not to (tests may drive it by hand instead).
fn open(db: &Db, opts: &BackendOptions) -> Box<dyn Architecture> {
    let wake = Arc::new(Notify::new());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut projector = Projector::new(db.clone(), opts.projector.clone());
    if let Some(lag) = &opts.lag {
        projector = projector.with_lag(lag.clone());
    }
    let projector = Arc::new(projector);
    let task = opts
        .run_projector
        .then(|| tokio::spawn(projector.clone().run(wake.clone(), shutdown_rx)));
    Box::new(CqrsAsync {
        notify: db.dialect().notify(),
        channel: notify_channel(db),
        wake,
        shutdown,
        task,
        projector,
        lag: opts.lag.clone(),
    })
}

pub struct CqrsAsync {
    /// The statement that wakes projectors in other processes, where the engine has one.
    notify: Option<&'static str>,
    channel: String,
    wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    projector: Arc<Projector>,
    lag: Option<Arc<LagTracker>>,
}

impl Architecture for CqrsAsync {
    fn in_write_transaction<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<Vec<i64>, sqlx::Error>> {
        Box::pin(async move {
            let seqs = append_events(tx, events).await?;
            if let Some(notify) = self.notify {
                sqlx::query(notify)
                    .bind(&self.channel)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(seqs)
        })
    }

    fn after_commit(&self, written: &Written, at: Instant) {
        if let Some(lag) = &self.lag {
            lag.committed(&written.seqs, at);
        }
        self.wake.notify_one();
    }

    fn read_side(&self) -> ReadSide {
        ReadSide::ReadModels
    }

    fn is_visible<'a>(
        &'a self,
        db: &'a Db,
        session: &'a mut Session,
        receipt: &'a Receipt,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let Some(&seq) = receipt.seqs.iter().max() else {
                return Ok(true);
            };
            let mut conn = session.take(&db.read).await?;
            let result = covers(&mut conn, seq).await;
            session.give_back(conn, result.is_ok());
            result
        })
    }

    fn projector(&self) -> Option<&Arc<Projector>> {
        Some(&self.projector)
    }

    fn wait_caught_up(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(async move {
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
        })
    }

    fn shutdown(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.shutdown.send(true);
            if let Some(task) = self.task.take() {
                let _ = task.await;
            }
        })
    }
}

/// Whether every read model's checkpoint covers event `seq`. The checkpoint commits with the
/// read-model rows, so "checkpoint covers the event" and "the read model shows it" are the
/// same fact.
async fn covers(conn: &mut AnyConnection, seq: i64) -> Result<bool, sqlx::Error> {
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
