//! A team's own database, opened only to read from it: the source a pack's dataset is copied
//! from (`[dataset] copy_from`). Nothing the tool runs there can write: SQLite opens the file
//! read-only (`mode=ro`, so a missing file is an error, not a new one), and PostgreSQL
//! makes every transaction of the session read-only before anything else runs. A copy reads
//! in one snapshot ([`snapshot_begin`]), so its tables and sizes agree with each other.

use sqlx::{AnyConnection, Connection as _, Executor as _};

use super::{DbError, DbResult, DbUrl, Engine};

/// A read-only connection to `url`; on PostgreSQL with `schema` (if given) first on the
/// search path, so the source's tables are named as the team names them.
pub async fn connect(url: &DbUrl, schema: Option<&str>) -> DbResult<AnyConnection> {
    sqlx::any::install_default_drivers();
    let connect_err = |source| DbError::Connect {
        url: url.redacted(),
        source,
    };
    match url.engine() {
        Engine::Sqlite => {
            let raw = url.raw_for_connect();
            let path = raw.split('?').next().unwrap_or(&raw);
            AnyConnection::connect(&format!("{path}?mode=ro"))
                .await
                .map_err(connect_err)
        }
        Engine::Postgres => {
            let mut conn = AnyConnection::connect(&url.raw_for_connect())
                .await
                .map_err(connect_err)?;
            conn.execute("SET default_transaction_read_only = on")
                .await?;
            if let Some(schema) = schema {
                super::validate_schema_name(schema)?;
                conn.execute(format!("SET search_path TO {schema}").as_str())
                    .await?;
            }
            Ok(conn)
        }
    }
}

/// Begins the one snapshot a copy reads in: a repeatable-read, read-only transaction on
/// PostgreSQL; on SQLite a read transaction holds its snapshot from its first read.
pub fn snapshot_begin(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "BEGIN",
        Engine::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    }
}
