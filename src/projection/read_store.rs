//! Where read models live: the `ReadStore` seam. A store applies a batch of events to read
//! models together with their checkpoints (a crash loses the whole batch or none of it, so
//! the effect is exactly once), reads the checkpoints, and empties read models for a rebuild.
//!
//! The first store is the write model's own database: read tables, duplicate-guard ledgers,
//! `projection_checkpoints` and `dead_letters`, all changed in one transaction per batch.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use sqlx::{AnyConnection, Row};

use super::dead_letter::apply_guarded;
use super::error::ProjectorError;
use super::event_source::{Fetched, Position};
use super::sql::{apply_batch, Delivered, Guard};
use super::ProjectionName;
use crate::db::dialect::Dialect;
use crate::db::sql::{bind_all, Param};
use crate::db::{Db, DbError};

/// Where read models live.
pub trait ReadStore: Send + Sync + 'static {
    /// Every read model's checkpoint, without locking.
    fn checkpoints(
        &self,
    ) -> impl Future<Output = Result<HashMap<ProjectionName, Position>, ProjectorError>> + Send;

    /// In one atomic unit per call: locks the checkpoints of `projections` (one applier at a
    /// time per read model), applies to each the `redelivered` events and the batch's events
    /// beyond its checkpoint, and moves its checkpoint to the batch's end. A read model whose
    /// checkpoint is before `from`, where the batch was read from (reset since), is left for
    /// the next pass. Waits `hold` before committing (fault drills). Returns the duplicates
    /// skipped.
    fn apply(
        &self,
        projections: &[ProjectionName],
        from: Position,
        batch: &[Fetched],
        redelivered: &[Fetched],
        hold: Duration,
    ) -> impl Future<Output = Result<u64, ProjectorError>> + Send;

    /// The negative control: applies `due` unguarded and commits, then saves `checkpoint` for
    /// every read model in `projections` after the fact, in a transaction of its own.
    fn apply_naive(
        &self,
        projections: &[ProjectionName],
        due: &[&Delivered],
        checkpoint: Position,
        applied: i64,
    ) -> impl Future<Output = Result<(), ProjectorError>> + Send;

    /// Empties `projections` (rows, ledgers, dead letters) and sets their checkpoints back to
    /// the start, atomically; other read models are left as they are.
    fn reset(
        &self,
        projections: &[ProjectionName],
    ) -> impl Future<Output = Result<(), ProjectorError>> + Send;

    /// Whether batches for different read models can commit side by side (separate
    /// transactions at once), which a rebuild uses to share the work.
    fn parallel_read_models(&self) -> bool;
}

/// Read models in the write model's database.
#[derive(Clone)]
pub struct SameDatabase {
    db: Db,
}

impl SameDatabase {
    pub fn new(db: Db) -> Self {
        SameDatabase { db }
    }
}

impl ReadStore for SameDatabase {
    async fn checkpoints(&self) -> Result<HashMap<ProjectionName, Position>, ProjectorError> {
        let mut conn = self.db.read.acquire().await.map_err(DbError::from)?;
        Ok(read_checkpoints(&mut conn).await?)
    }

    async fn apply(
        &self,
        projections: &[ProjectionName],
        from: Position,
        batch: &[Fetched],
        redelivered: &[Fetched],
        hold: Duration,
    ) -> Result<u64, ProjectorError> {
        let mut conn = self.db.write.acquire().await.map_err(DbError::from)?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let checkpoints = lock_checkpoints(&mut tx, self.db.dialect(), projections).await?;
        let last = batch.last().map(|f| f.pos).unwrap_or(from);
        let mut duplicates = 0;
        for &p in projections {
            let cp = checkpoints.get(&p).copied().unwrap_or_default();
            if cp >= from {
                duplicates += apply_to(&mut tx, p, cp, last, batch, redelivered).await?;
            }
        }
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        tx.commit().await?;
        Ok(duplicates)
    }

    async fn apply_naive(
        &self,
        projections: &[ProjectionName],
        due: &[&Delivered],
        checkpoint: Position,
        applied: i64,
    ) -> Result<(), ProjectorError> {
        let mut conn = self.db.write.acquire().await.map_err(DbError::from)?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        apply_batch(&mut tx, due, projections, Guard::Naive).await?;
        tx.commit().await?;
        for &p in projections {
            save_checkpoint(&mut conn, p, checkpoint, applied, 0).await?;
        }
        Ok(())
    }

    async fn reset(&self, projections: &[ProjectionName]) -> Result<(), ProjectorError> {
        let mut conn = self.db.write.acquire().await.map_err(DbError::from)?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let tables: Vec<&str> = projections
            .iter()
            .flat_map(|p| p.tables().iter().copied().chain(p.ledger()))
            .collect();
        for stmt in self.db.dialect().empty_tables(&tables) {
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

    fn parallel_read_models(&self) -> bool {
        !self.db.single_writer()
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

/// Reads and locks the checkpoints of `projections` (in name order, so two appliers cannot
/// deadlock).
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

/// Empties the given read models (rows, ledgers, dead letters) and sets their checkpoints
/// back to the start of the log, in one transaction; the projector then rebuilds them from
/// the log. Other read models are left as they are.
pub async fn reset_read_models(
    db: &Db,
    projections: &[ProjectionName],
) -> Result<(), ProjectorError> {
    SameDatabase::new(db.clone()).reset(projections).await
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
