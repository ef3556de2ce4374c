//! A scratch place to try SQL in, which leaves nothing behind: an in-memory SQLite database, or
//! on a PostgreSQL server a schema of its own inside one transaction that is rolled back (so
//! whatever the SQL tried to create, even outside that schema, is gone with it, and an
//! interrupted check leaves nothing either). `pack check` applies a pack's DDL here and
//! prepares every statement, so a pack the engine cannot run is refused before any run.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnection, PgTypeInfo};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Column as _, ConnectOptions as _, Connection as _, Executor as _, Statement as _};

use super::dialect::Dialect;
use super::sql::ParamKind;
use super::{DbError, DbResult, DbUrl, Engine, OpenMode};

enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// One connection to a throwaway place. Close it with [`Scratch::close`].
pub struct Scratch {
    conn: Conn,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The statements, run inside the scratch's transaction on PostgreSQL, that create a schema
/// of its own (`cqrs_bench_check_<pid>_<n>`) and make it the transaction's search path.
fn own_schema() -> [String; 2] {
    let schema = format!(
        "cqrs_bench_check_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    [
        format!("CREATE SCHEMA {schema}"),
        format!("SET LOCAL search_path TO {schema}"),
    ]
}

/// The savepoint each try runs under on PostgreSQL, so one failure does not abort the
/// transaction the rest of the tries run in.
const SAVEPOINT: &str = "cqrs_bench_try";

/// The message of a database error, without sqlx's prefix.
fn message(e: &sqlx::Error) -> String {
    match e.as_database_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    }
}

impl Scratch {
    /// A scratch on `url`'s engine: a PostgreSQL URL gives a schema of its own on that server
    /// (named `cqrs_bench_check_<pid>_<n>`, inside a transaction never committed); a SQLite URL
    /// or none gives an in-memory SQLite database (the file is never opened).
    pub async fn open(url: Option<&DbUrl>) -> DbResult<Scratch> {
        match url.filter(|u| u.engine() == Engine::Postgres) {
            None => {
                let conn = SqliteConnectOptions::from_str("sqlite::memory:")?
                    .connect()
                    .await?;
                Ok(Scratch {
                    conn: Conn::Sqlite(conn),
                })
            }
            Some(url) => {
                let mut conn = PgConnection::connect(&url.connect_string(OpenMode::Existing))
                    .await
                    .map_err(|source| DbError::Connect {
                        url: url.redacted(),
                        source,
                    })?;
                conn.execute("BEGIN").await?;
                for statement in own_schema() {
                    conn.execute(statement.as_str()).await?;
                }
                Ok(Scratch {
                    conn: Conn::Postgres(conn),
                })
            }
        }
    }

    /// The same scratch place as one connection of the `Any` driver (the pool's only one),
    /// inside the transaction that leaves nothing behind (roll it back, or drop it): for
    /// running a pack there, not only preparing its statements (`check-projections`). Nested
    /// transactions on it are savepoints. See [`settle`] for what was set up in it.
    pub async fn transaction(
        url: Option<&DbUrl>,
    ) -> DbResult<(sqlx::AnyPool, sqlx::Transaction<'static, sqlx::Any>)> {
        sqlx::any::install_default_drivers();
        let (connect, shown) = match url.filter(|u| u.engine() == Engine::Postgres) {
            Some(u) => (u.connect_string(OpenMode::Existing), u.redacted()),
            None => ("sqlite::memory:".to_string(), "sqlite::memory:".to_string()),
        };
        // One connection, held for the whole transaction (an in-memory database lives as
        // long as it).
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect(&connect)
            .await
            .map_err(|source| DbError::Connect { url: shown, source })?;
        let mut tx = pool.begin().await?;
        if url.is_some_and(|u| u.engine() == Engine::Postgres) {
            for statement in own_schema() {
                tx.execute(statement.as_str()).await?;
            }
        }
        Ok((pool, tx))
    }

    /// What was set up in a [`Scratch::transaction`] made part of the place, where that
    /// leaves nothing behind: in-memory SQLite commits it and starts a new transaction, so a
    /// savepoint rolled back later replays only its own changes (SQLite rolls a savepoint
    /// back through a journal that would otherwise hold the whole setup); PostgreSQL keeps
    /// the one transaction, whose savepoints cost nothing of the kind.
    pub async fn settle(
        pool: &sqlx::AnyPool,
        tx: sqlx::Transaction<'static, sqlx::Any>,
    ) -> DbResult<sqlx::Transaction<'static, sqlx::Any>> {
        if Dialect::of_connection(&tx) == Dialect::of(Engine::Postgres) {
            return Ok(tx);
        }
        tx.commit().await?;
        Ok(pool.begin().await?)
    }

    pub fn engine(&self) -> Engine {
        match self.conn {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Postgres(_) => Engine::Postgres,
        }
    }

    pub fn dialect(&self) -> Dialect {
        Dialect::of(self.engine())
    }

    /// Runs a script of one or more statements without parameters (DDL). `Err`: the engine's
    /// message; the scratch stays usable.
    pub async fn run_script(&mut self, script: &str) -> Result<(), String> {
        match &mut self.conn {
            Conn::Sqlite(conn) => sqlx::raw_sql(script)
                .execute(&mut *conn)
                .await
                .map(|_| ())
                .map_err(|e| message(&e)),
            Conn::Postgres(conn) => {
                savepoint(conn).await?;
                let outcome = sqlx::raw_sql(script).execute(&mut *conn).await;
                settle(conn, outcome).await.map(|_| ())
            }
        }
    }

    /// Prepares one statement whose parameters will be bound with `kinds` (in the order of
    /// their numbers) and returns the names of the columns it yields. `Err`: the engine's
    /// message (an unknown table or column, a syntax error, a type it cannot infer).
    pub async fn prepare(&mut self, sql: &str, kinds: &[ParamKind]) -> Result<Vec<String>, String> {
        match &mut self.conn {
            Conn::Sqlite(conn) => {
                let statement = conn.prepare(sql).await.map_err(|e| message(&e))?;
                Ok(statement
                    .columns()
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect())
            }
            Conn::Postgres(conn) => {
                // Typed as the run binds them (sqlx sends int8 and text); the type of a value
                // not known yet is left to the server to infer (OID 0: unspecified).
                let types: Vec<PgTypeInfo> = kinds
                    .iter()
                    .map(|k| match k {
                        ParamKind::Int => <i64 as sqlx::Type<sqlx::Postgres>>::type_info(),
                        ParamKind::Text => <String as sqlx::Type<sqlx::Postgres>>::type_info(),
                        ParamKind::Inferred => PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0)),
                    })
                    .collect();
                savepoint(conn).await?;
                let outcome = conn.prepare_with(sql, &types).await.map(|statement| {
                    statement
                        .columns()
                        .iter()
                        .map(|c| c.name().to_string())
                        .collect()
                });
                settle(conn, outcome).await
            }
        }
    }

    /// Closes the connection; on PostgreSQL after rolling back everything the scratch held.
    pub async fn close(self) {
        match self.conn {
            Conn::Sqlite(conn) => {
                let _ = conn.close().await;
            }
            Conn::Postgres(mut conn) => {
                let _ = conn.execute("ROLLBACK").await;
                let _ = conn.close().await;
            }
        }
    }
}

/// Starts a savepoint on PostgreSQL: each try runs under one, so a failed statement does not
/// abort the transaction the other tries run in.
async fn savepoint(conn: &mut PgConnection) -> Result<(), String> {
    conn.execute(format!("SAVEPOINT {SAVEPOINT}").as_str())
        .await
        .map(|_| ())
        .map_err(|e| message(&e))
}

/// Ends the savepoint of a try: released when it succeeded, rolled back to when it failed.
async fn settle<T>(conn: &mut PgConnection, outcome: Result<T, sqlx::Error>) -> Result<T, String> {
    let end = match outcome {
        Ok(_) => format!("RELEASE SAVEPOINT {SAVEPOINT}"),
        Err(_) => format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"),
    };
    conn.execute(end.as_str()).await.map_err(|e| message(&e))?;
    outcome.map_err(|e| message(&e))
}
