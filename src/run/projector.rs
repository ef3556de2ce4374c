//! The async projector as its own process: runs it on a seeded database until a signal (or,
//! with `until_idle`, until every committed event is applied), reporting progress once a second.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::db::state::DbState;
use crate::db::{Db, DbError};
use crate::projection::event_source::EventLog;
use crate::projection::event_source::{pinning_sessions, EventSource};
use crate::projection::projector::{Projector, ProjectorConfig, ProjectorError};
use crate::projection::read_store::{ReadStore, SameDatabase};
use crate::projection::search::{SearchIndex, SearchStore};
use crate::projection::ProjectionName;

/// Why the projector process could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorProcessError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Projector(#[from] ProjectorError),
    #[error("{0} has no event log (only cqrs-async and event-sourced datasets have one)")]
    NoEventLog(String),
    #[error("cannot listen for SIGTERM: {0}")]
    Signal(#[source] std::io::Error),
}

impl ProjectorProcessError {
    /// 2 for input the process cannot use (no event log, no signal handler), else the
    /// underlying error's code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ProjectorProcessError::Db(e) => e.exit_code(),
            ProjectorProcessError::Projector(e) => e.exit_code(),
            ProjectorProcessError::NoEventLog(_) | ProjectorProcessError::Signal(_) => 2,
        }
    }
}

/// Runs the projector on `db` until Ctrl-C or SIGTERM, or with `until_idle` until the backlog
/// is empty; into the SQL read models, or with `search` into that search index instead. `started` is called once the projector runs; `status` receives one progress line
/// a second (applied events, backlog, errors, and which sessions hold back committed events).
pub async fn run_projector(
    db: &Db,
    config: ProjectorConfig,
    until_idle: bool,
    search: Option<Arc<SearchIndex>>,
    started: impl FnOnce(),
    status: impl FnMut(&str),
) -> Result<(), ProjectorProcessError> {
    let state = DbState::read(db).await?;
    if let Some(index) = search {
        let log = if state.has_event_store() {
            EventLog::event_store(db.clone())
        } else if state.has_event_log() {
            EventLog::outbox(db.clone())
        } else {
            return Err(ProjectorProcessError::NoEventLog(db.url.redacted()));
        };
        let projector = Projector::over(log, SearchStore::new(index), config)
            .with_projections(&[ProjectionName::ProductSearch]);
        return run_with(db, Arc::new(projector), until_idle, started, status).await;
    }
    if state.has_event_store() {
        // An event-sourced database: the projector reads the event store.
        let projector = Projector::over(
            EventLog::event_store(db.clone()),
            SameDatabase::new(db.clone()),
            config,
        );
        return run_with(db, Arc::new(projector), until_idle, started, status).await;
    }
    if !state.has_event_log() {
        return Err(ProjectorProcessError::NoEventLog(db.url.redacted()));
    }
    let projector = Arc::new(Projector::new(db.clone(), config));
    run_with(db, projector, until_idle, started, status).await
}

async fn run_with<S: EventSource, R: ReadStore>(
    db: &Db,
    projector: Arc<Projector<S, R>>,
    until_idle: bool,
    started: impl FnOnce(),
    mut status: impl FnMut(&str),
) -> Result<(), ProjectorProcessError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(ProjectorProcessError::Signal)?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(projector.clone().run(wake, stopped));
    started();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = tick.tick() => {
                let backlog = projector.backlog().await.unwrap_or(-1);
                let events = projector.stats.events.load(Ordering::Relaxed);
                let errors = projector.stats.errors.load(Ordering::Relaxed);
                status(&format!("applied {events} events · backlog {backlog} · errors {errors}"));
                if backlog > 0 && projector.stats.horizon_waits.load(Ordering::Relaxed) > 0 {
                    let pins = pinning_sessions(db).await.unwrap_or_default();
                    if !pins.is_empty() {
                        status(&format!(
                            "lag, not loss: committed events wait behind open transactions: {}",
                            pins.join(", ")
                        ));
                    }
                }
                if until_idle && backlog == 0 {
                    break;
                }
            }
        }
    }
    let _ = stop.send(true);
    let _ = task.await;
    Ok(())
}
