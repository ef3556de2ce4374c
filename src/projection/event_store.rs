//! The second `EventSource`: the event store (`es_events`) of the `event-sourced` backend,
//! read by global position. It is the outbox's reader on another table, with the same
//! argument for not skipping late commits on PostgreSQL: every store row is stamped with its
//! transaction's id and a safe read takes only rows below `pg_snapshot_xmin` of its own
//! snapshot, ordered by `(xid, seq)`, so no row can later appear below a checkpoint (see
//! `event_source`); on SQLite one writer commits at a time and seq order is commit order.
//! A stream's own order (its versions) is commit order on both engines: the unique
//! `(stream, version)` key lets only one writer take each version.

use std::sync::Arc;

use sqlx::Row;
use tokio::sync::{watch, Notify};

use super::error::ProjectorError;
use super::event_source::{fetched_from, notify_channel, Delivery, EventSource, Fetched, Position};
use super::sql::Delivered;
use crate::db::sql::{bind_all, multi_row_query, rows_per_statement, values_for, Param};
use crate::db::{Db, DbError};
use crate::domain::Event;

/// The event store as a projector's source.
#[derive(Clone)]
pub struct EventStore {
    db: Db,
}

impl EventStore {
    pub fn new(db: Db) -> Self {
        EventStore { db }
    }

    async fn read_connection(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, ProjectorError> {
        Ok(self.db.read.acquire().await.map_err(DbError::from)?)
    }
}

impl EventSource for EventStore {
    async fn fetch(
        &self,
        from: Position,
        limit: i64,
        delivery: Delivery,
    ) -> Result<Vec<Fetched>, ProjectorError> {
        let mut conn = self.read_connection().await?;
        let sql = self
            .db
            .dialect()
            .event_store_batch(delivery == Delivery::Safe);
        let rows = sqlx::query(sql)
            .bind(from.xid)
            .bind(from.seq)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(fetched_from).collect()
    }

    async fn backlog(&self, from: Position, delivery: Delivery) -> Result<i64, ProjectorError> {
        let mut conn = self.read_connection().await?;
        let n: i64 = match delivery {
            Delivery::Safe => {
                sqlx::query_scalar("SELECT COUNT(*) FROM es_events WHERE (xid, seq) > ($1, $2)")
                    .bind(from.xid)
                    .bind(from.seq)
                    .fetch_one(&mut *conn)
                    .await?
            }
            Delivery::Tail => {
                sqlx::query_scalar("SELECT COUNT(*) FROM es_events WHERE seq > $1")
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
        let row = sqlx::query("SELECT 1 FROM es_events WHERE (xid, seq) > ($1, $2) LIMIT 1")
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
            let params: Vec<Param> = chunk.iter().map(|s| Param::Int(*s)).collect();
            let sql = format!(
                "SELECT xid, seq, stream, payload FROM es_events WHERE seq IN ({})",
                values_for(&conn, chunk.len(), 1)
            );
            let rows = bind_all(multi_row_query(&sql, chunk.len()), &params)
                .fetch_all(&mut *conn)
                .await?;
            for row in &rows {
                out.push(fetched_from(row)?);
            }
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
