//! A separate read store (`--read-db`): an async backend's read models in a database of their
//! own, as teams run them when reads are to scale apart from writes. The write database keeps
//! the write model and the event log, and no read tables; the read store keeps the read
//! tables, their ledgers, checkpoints and dead letters. The projector applies to the read
//! store as it would to its own database (`SameDatabase` over the read store's `Db`), and
//! queries and read-your-writes probes read there.
//!
//! The read store is filled once, after the seed, by projecting the seed's history from the
//! log: the same path as `rebuild`, so what a run starts from is what the projector makes.

use super::{BackendKind, OpenError};
use crate::db::state::{DbState, Provisions};
use crate::db::{schema, Db, DbError, DbUrl};
use crate::projection::rebuild::{rebuild_into, RebuildReport};
use crate::projection::ProjectionName;

/// Batch size of the initial projection (as `rebuild`'s default).
const FILL_BATCH: i64 = 1000;

/// Whether `kind` can keep its read models in a database of their own.
pub fn supported(kind: BackendKind) -> bool {
    super::registry::entry(kind).separate_read_store
}

/// What a write database of `kind` holds when its read models live elsewhere: the write
/// model and the log they are projected from.
pub fn write_side_provisions(kind: BackendKind) -> Provisions {
    Provisions {
        read_models: false,
        ..kind.provisions()
    }
}

/// Creates the read store at `url` (schema `schema` on PostgreSQL) for the seeded write
/// database `write`, and fills it from `write`'s log. Refuses a database the tool did not
/// create, like seeding does. The store is marked ready only once it is full.
pub async fn prepare(
    write: &Db,
    url: &DbUrl,
    schema: &str,
    pool_size: u32,
) -> Result<(Db, RebuildReport), OpenError> {
    let read = Db::open(url, schema, pool_size).await?;
    schema::recreate(&read).await?;
    {
        let mut conn = read.write.acquire().await.map_err(DbError::from)?;
        for stmt in schema::ddl(read.engine()).after_read_models {
            sqlx::query(&stmt)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
        }
    }
    let filled = rebuild_into(write, &read, &ProjectionName::ALL, FILL_BATCH).await?;
    let mut conn = read.write.acquire().await.map_err(DbError::from)?;
    for stmt in read.dialect().analyze(schema::READ_TABLES) {
        sqlx::query(&stmt)
            .execute(&mut *conn)
            .await
            .map_err(DbError::from)?;
    }
    schema::meta_set(
        &mut conn,
        DbState::KEY,
        &DbState::Ready(Provisions::READ_STORE).to_string(),
    )
    .await?;
    drop(conn);
    Ok((read, filled))
}

/// Checks that `read` is a read store the tool made, before a backend reads from it.
pub async fn require_read_store(read: &Db) -> Result<(), DbError> {
    schema::require_ours(read).await?;
    schema::no_foreign_triggers(read).await?;
    if !DbState::read(read).await?.is_read_store() {
        return Err(DbError::NotReadStore(read.location()));
    }
    Ok(())
}
