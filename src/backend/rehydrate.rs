//! Rehydration for the `event-sourced` backend: an aggregate rebuilt from its stream in the
//! event store (`es_events`), and the snapshots (`es_snapshots`) that shorten it.
//!
//! With snapshots on, a stream is loaded as its latest snapshot (state and version) plus the
//! events after that version; without, every event from version 1. A snapshot is a stream's
//! state serialized at one version, written in the transaction that appended that version
//! (so it commits, or rolls back, with the events it summarizes) once the stream has grown
//! `snapshot_every` versions past its previous snapshot. Snapshots are a cache: the events
//! stay the truth, and a stream loaded without its snapshot gives the same state (a test
//! checks it on both engines).

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::ExecError;
use crate::domain::Event;

/// A stream as read: its rebuilt aggregate, its last version (0: empty) and what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    pub state: A,
    pub version: i64,
    /// The version of the snapshot it started from (0: none).
    pub snapshot_version: i64,
    /// Events read and folded (after the snapshot, if any).
    pub events_read: u64,
    pub took: Duration,
}

/// Whether a stream that had a snapshot at `snapshot_version` and now stands at `version`
/// is due a new one.
pub fn snapshot_due(snapshot_every: u32, snapshot_version: i64, version: i64) -> bool {
    snapshot_every > 0 && version - snapshot_version >= i64::from(snapshot_every)
}

fn unreadable(stream: &str, what: String) -> ExecError {
    ExecError::Db(sqlx::Error::Protocol(format!(
        "event store: {stream}: {what}"
    )))
}

/// Loads `stream`: from its latest snapshot plus the tail when `use_snapshots`, else from its
/// first event.
pub async fn load<A: DeserializeOwned>(
    conn: &mut AnyConnection,
    stream: &str,
    init: A,
    evolve: fn(A, &Event) -> A,
    use_snapshots: bool,
) -> Result<Loaded<A>, ExecError> {
    let started = Instant::now();
    let mut loaded = Loaded {
        state: init,
        version: 0,
        snapshot_version: 0,
        events_read: 0,
        took: Duration::ZERO,
    };
    if use_snapshots {
        let row = sqlx::query("SELECT version, state FROM es_snapshots WHERE stream = $1")
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            let version: i64 = row.try_get(0)?;
            let state: String = row.try_get(1)?;
            loaded.state = serde_json::from_str(&state).map_err(|e| {
                unreadable(stream, format!("snapshot at {version}: unreadable: {e}"))
            })?;
            loaded.version = version;
            loaded.snapshot_version = version;
        }
    }
    let rows = sqlx::query(
        "SELECT version, payload FROM es_events WHERE stream = $1 AND version > $2 \
         ORDER BY version",
    )
    .bind(stream)
    .bind(loaded.version)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let version: i64 = row.try_get(0)?;
        let payload: String = row.try_get(1)?;
        let event = Event::from_json(&payload).map_err(|e| {
            unreadable(
                stream,
                format!("version {version}: unreadable payload: {e}"),
            )
        })?;
        loaded.state = evolve(loaded.state, &event);
        loaded.version = version;
        loaded.events_read += 1;
    }
    loaded.took = started.elapsed();
    Ok(loaded)
}

/// Stores `state` as `stream`'s snapshot at `version`, replacing an older one (never a
/// newer one).
pub async fn save_snapshot<A: Serialize>(
    conn: &mut AnyConnection,
    stream: &str,
    version: i64,
    state: &A,
) -> Result<(), sqlx::Error> {
    let json = serde_json::to_string(state)
        .map_err(|e| sqlx::Error::Protocol(format!("snapshot of {stream}: {e}")))?;
    sqlx::query(
        "INSERT INTO es_snapshots (stream, version, state) VALUES ($1, $2, $3) \
         ON CONFLICT (stream) DO UPDATE SET version = excluded.version, state = excluded.state \
         WHERE excluded.version > es_snapshots.version",
    )
    .bind(stream)
    .bind(version)
    .bind(json)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_every_n_versions_past_the_last() {
        assert!(!snapshot_due(0, 0, 1_000), "0 is off");
        assert!(!snapshot_due(10, 0, 9));
        assert!(snapshot_due(10, 0, 10));
        assert!(
            snapshot_due(10, 0, 1_000),
            "a long seeded stream gets its first"
        );
        assert!(!snapshot_due(10, 1_000, 1_009));
        assert!(snapshot_due(10, 1_000, 1_010));
        assert!(snapshot_due(1, 5, 6));
    }
}
