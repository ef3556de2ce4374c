//! The event store (`es_events`) of the `event-sourced` backend. Projectors read it by
//! global position through `event_source::EventLog::event_store`, the outbox's reader on
//! another table, with the same argument for not skipping late commits on PostgreSQL: every
//! store row is stamped with its transaction's id and a safe read takes only rows below
//! `pg_snapshot_xmin` of its own snapshot, ordered by `(xid, seq)`, so no row can later
//! appear below a checkpoint (see `event_source`); on SQLite one writer commits at a time
//! and seq order is commit order.
//! A stream's own order (its versions) is commit order on both engines: the unique
//! `(stream, version)` key lets only one writer take each version.

use sqlx::Row;

use super::error::ProjectorError;
use super::sql::Delivered;
use crate::db::Db;
use crate::domain::Event;

/// The whole committed store in global-position order (for verify's fold and for checks).
pub async fn read_store(db: &Db) -> Result<Vec<Delivered>, ProjectorError> {
    let rows = sqlx::query("SELECT seq, payload FROM es_events ORDER BY seq")
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
