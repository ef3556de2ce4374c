//! Rebuilding read models from the event log: empty them, then replay the whole log with the
//! exactly-once projector. The log is the outbox, or on an event-store database
//! (`event-sourced`) the event store itself.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::ProjectorError;
use super::event_source::EventLog;
use super::event_source::EventSource;
use super::projector::{Projector, ProjectorConfig};
use super::read_store::ReadStore;
use super::read_store::SameDatabase;
use super::ProjectionName;
use crate::db::state::DbState;
use crate::db::Db;

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
    let state = DbState::read(db).await?;
    let config = ProjectorConfig {
        batch_size,
        ..ProjectorConfig::default()
    };
    if state.has_event_store() {
        let projector = Projector::over(
            EventLog::event_store(db.clone()),
            SameDatabase::new(db.clone()),
            config,
        );
        return rebuild_with(projector.with_projections(projections), projections).await;
    }
    if !state.has_event_log() {
        return Err(ProjectorError::NoEventLog(db.url.redacted()));
    }
    let projector = Projector::new(db.clone(), config).with_projections(projections);
    rebuild_with(projector, projections).await
}

/// Rebuilds the read models of a separate read store (`--read-db`) from the event log of its
/// write database, as `rebuild` does within one database.
pub async fn rebuild_into(
    write: &Db,
    read: &Db,
    projections: &[ProjectionName],
    batch_size: i64,
) -> Result<RebuildReport, ProjectorError> {
    if !DbState::read(write).await?.has_event_log() {
        return Err(ProjectorError::NoEventLog(write.url.redacted()));
    }
    let config = ProjectorConfig {
        batch_size,
        ..ProjectorConfig::default()
    };
    let projector = Projector::over(
        EventLog::outbox(write.clone()),
        SameDatabase::new(read.clone()),
        config,
    );
    rebuild_with(projector.with_projections(projections), projections).await
}

/// Rebuilds the search index from the event log (the outbox, or the event store): empties it
/// with its checkpoint at the start, in one commit, then replays the whole log into it.
pub async fn rebuild_search(
    db: &Db,
    index: std::sync::Arc<super::search::SearchIndex>,
    batch_size: i64,
) -> Result<RebuildReport, ProjectorError> {
    let state = DbState::read(db).await?;
    let config = ProjectorConfig {
        batch_size,
        ..ProjectorConfig::default()
    };
    let only = [ProjectionName::ProductSearch];
    let store = super::search::SearchStore::new(index);
    if state.has_event_store() {
        let projector = Projector::over(EventLog::event_store(db.clone()), store, config);
        return rebuild_with(projector.with_projections(&only), &only).await;
    }
    if !state.has_event_log() {
        return Err(ProjectorError::NoEventLog(db.url.redacted()));
    }
    let projector = Projector::over(EventLog::outbox(db.clone()), store, config);
    rebuild_with(projector.with_projections(&only), &only).await
}

async fn rebuild_with<S: EventSource, R: ReadStore>(
    projector: Projector<S, R>,
    projections: &[ProjectionName],
) -> Result<RebuildReport, ProjectorError> {
    let started = Instant::now();
    projector.store().reset(projections).await?;
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
