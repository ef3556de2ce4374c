//! Bytes on disk of the tool's table groups (write model, read models, event log), measured
//! from the database itself, indexes included:
//!
//! - PostgreSQL: `pg_total_relation_size` of each table (heap, indexes, TOAST).
//! - SQLite: the `dbstat` virtual table (`SUM(pgsize)` over each table and its indexes). The
//!   SQLite bundled with the tool is built with `SQLITE_ENABLE_DBSTAT_VTAB`; should a build
//!   lack it (probed with `SELECT 1 FROM dbstat LIMIT 1`), storage is not measured (`None`),
//!   because SQLite has no other per-table size.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::schema::{LOG_TABLES, READ_TABLES, WRITE_TABLES};
use super::{Db, DbResult, Engine};

/// Bytes on disk of each group of tables, measured from the database.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Storage {
    pub write_tables_bytes: u64,
    pub read_tables_bytes: u64,
    pub event_log_bytes: u64,
}

/// Measures the three table groups; `Ok(None)` when the engine cannot tell (SQLite without
/// `dbstat`).
pub async fn measure(db: &Db) -> DbResult<Option<Storage>> {
    measure_groups(db, WRITE_TABLES, READ_TABLES, LOG_TABLES).await
}

/// Measures three groups of tables named by the caller (a pack's, whose tables are its own).
pub async fn measure_groups<S: AsRef<str>>(
    db: &Db,
    write: &[S],
    read: &[S],
    log: &[S],
) -> DbResult<Option<Storage>> {
    let names = |g: &[S]| g.iter().map(|t| t.as_ref().to_string()).collect::<Vec<_>>();
    let (write, read, log) = (names(write), names(read), names(log));
    match db.engine() {
        Engine::Postgres => {
            let schema = db.schema.clone().unwrap_or_default();
            Ok(Some(Storage {
                write_tables_bytes: pg_bytes(db, &schema, &write).await?,
                read_tables_bytes: pg_bytes(db, &schema, &read).await?,
                event_log_bytes: pg_bytes(db, &schema, &log).await?,
            }))
        }
        Engine::Sqlite => {
            if sqlx::query("SELECT 1 FROM dbstat LIMIT 1")
                .fetch_optional(&db.read)
                .await
                .is_err()
            {
                return Ok(None);
            }
            Ok(Some(Storage {
                write_tables_bytes: sqlite_bytes(db, &write).await?,
                read_tables_bytes: sqlite_bytes(db, &read).await?,
                event_log_bytes: sqlite_bytes(db, &log).await?,
            }))
        }
    }
}

async fn pg_bytes(db: &Db, schema: &str, tables: &[String]) -> DbResult<u64> {
    let mut total = 0u64;
    for t in tables {
        // to_regclass gives NULL for a missing table, so a group with a table not created
        // counts as 0 bytes for it instead of failing.
        let row = sqlx::query(
            "SELECT CAST(COALESCE(pg_total_relation_size(to_regclass($1)), 0) AS BIGINT)",
        )
        .bind(format!("{schema}.{t}"))
        .fetch_one(&db.read)
        .await?;
        total += row.try_get::<i64, _>(0)?.max(0) as u64;
    }
    Ok(total)
}

async fn sqlite_bytes(db: &Db, tables: &[String]) -> DbResult<u64> {
    let mut total = 0u64;
    for t in tables {
        // A table's b-tree and those of its indexes (automatic ones included).
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(d.pgsize), 0) AS INTEGER) FROM dbstat d \
             JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name = $1",
        )
        .bind(t.as_str())
        .fetch_one(&db.read)
        .await?;
        total += row.try_get::<i64, _>(0)?.max(0) as u64;
    }
    Ok(total)
}
