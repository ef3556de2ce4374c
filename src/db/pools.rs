//! Connection pools: opening a database (a write pool and a read pool), the SQLite pragmas and
//! the PostgreSQL schema the tool works in.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use super::{dialect, schema, sql, DbError, DbResult, DbUrl, Engine, OpenMode};

/// Reads the file's table list on a plain connection: a file that is not SQLite fails here at
/// once, and one holding someone else's tables is refused before any pragma changes it.
async fn sqlite_precheck(conn: &mut sqlx::AnyConnection, url: &DbUrl) -> DbResult<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|source| DbError::Connect {
        url: url.redacted(),
        source,
    })?;
    if tables.is_empty() {
        return Ok(());
    }
    let marked = tables.iter().any(|t| t == schema::META_TABLE)
        && matches!(
            sqlx::query_scalar::<_, String>(&format!(
                "SELECT value FROM {} WHERE key = 'owner'",
                schema::META_TABLE
            ))
            .fetch_optional(&mut *conn)
            .await,
            Ok(Some(owner)) if owner == schema::OWNER_MARK
        );
    if marked {
        return Ok(());
    }
    let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
    Err(DbError::ForeignSqliteFile {
        path: url.redacted(),
        tables: if tables.len() > 5 {
            format!("{} and {} more", shown.join(", "), tables.len() - 5)
        } else {
            shown.join(", ")
        },
    })
}

/// Connection settings the run reports alongside its numbers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DbSettings {
    pub engine: Engine,
    pub url: String,
    pub schema: Option<String>,
    pub server_version: String,
    pub pool_size: u32,
    pub settings: Vec<(String, String)>,
}

/// An open database: a pool for writers and one for readers (the same pool on PostgreSQL).
/// SQLite allows one writer at a time, so its write pool has a single connection; that keeps
/// writers queueing in the tool instead of failing with SQLITE_BUSY.
#[derive(Clone)]
pub struct Db {
    pub url: DbUrl,
    /// PostgreSQL schema holding every table; `None` on SQLite.
    pub schema: Option<String>,
    pub write: AnyPool,
    pub read: AnyPool,
    pub pool_size: u32,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("location", &self.location())
            .finish()
    }
}

/// Pragmas set on every SQLite connection (and reported with each run).
pub const SQLITE_PRAGMAS: &[(&str, &str)] = &[
    ("journal_mode", "WAL"),
    ("synchronous", "NORMAL"),
    ("busy_timeout", "10000"),
    ("foreign_keys", "ON"),
    ("cache_size", "-2048"),
    ("temp_store", "FILE"),
];

pub const DEFAULT_SCHEMA: &str = "cqrs_bench";

pub fn validate_schema_name(name: &str) -> DbResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(DbError::InvalidSchemaName(name.to_string()))
    }
}

/// Connections idle at least this long are checked before use.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// sqlx checks every connection it hands out with a round trip to the server, one more per
/// transaction than pgbench pays. Only a connection that sat idle a while is checked: one in
/// steady use shows a dead server by failing its next statement, which the caller counts.
fn pool_options() -> AnyPoolOptions {
    AnyPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Db {
    /// Opens pools. Creates nothing except, on SQLite, the empty file.
    pub async fn open(url: &DbUrl, schema: &str, pool_size: u32) -> DbResult<Db> {
        Db::open_with(url, schema, pool_size, OpenMode::CreateIfMissing).await
    }

    /// Opens pools; with `OpenMode::Existing` a missing SQLite file is an error rather than a
    /// new empty file. A SQLite file that holds tables the tool did not create is refused
    /// before anything (pragmas included) touches it.
    pub async fn open_with(
        url: &DbUrl,
        schema: &str,
        pool_size: u32,
        mode: OpenMode,
    ) -> DbResult<Db> {
        Db::open_waiting(url, schema, pool_size, mode, Duration::from_secs(10)).await
    }

    /// [`Db::open_with`], with how long a PostgreSQL connection may take to come from the
    /// pool (reconnects to a server that went away are retried for that long).
    async fn open_waiting(
        url: &DbUrl,
        schema: &str,
        pool_size: u32,
        mode: OpenMode,
        acquire_timeout: Duration,
    ) -> DbResult<Db> {
        sqlx::any::install_default_drivers();
        validate_schema_name(schema)?;
        let opts = AnyConnectOptions::from_str(&url.connect_string(mode)).map_err(|e| {
            DbError::InvalidUrl {
                url: url.redacted(),
                reason: e.to_string(),
            }
        })?;
        // Verify walks two result sets side by side: at least two connections.
        let pool_size = pool_size.max(2);
        let connect_err = |source| DbError::Connect {
            url: url.redacted(),
            source,
        };
        // One direct attempt first, so an unreachable server or a wrong URL fails within
        // seconds with the driver's own reason, not after the pool's acquire timeout.
        match tokio::time::timeout(
            Duration::from_secs(5),
            <sqlx::AnyConnection as sqlx::Connection>::connect_with(&opts),
        )
        .await
        {
            Ok(Ok(mut conn)) => {
                let checked = match url.engine() {
                    Engine::Sqlite => sqlite_precheck(&mut conn, url).await,
                    Engine::Postgres => Ok(()),
                };
                let _ = sqlx::Connection::close(conn).await;
                checked?;
            }
            Ok(Err(source)) => return Err(connect_err(source)),
            Err(_) => {
                return Err(connect_err(sqlx::Error::Protocol(
                    "no answer within 5 s".into(),
                )))
            }
        }
        match url.engine() {
            Engine::Sqlite => {
                let build = |max: u32| {
                    pool_options()
                        .max_connections(max)
                        .acquire_timeout(Duration::from_secs(30))
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                for (k, v) in SQLITE_PRAGMAS {
                                    conn.execute(format!("PRAGMA {k} = {v}").as_str()).await?;
                                }
                                Ok(())
                            })
                        })
                };
                let write = build(1)
                    .connect_with(opts.clone())
                    .await
                    .map_err(connect_err)?;
                let read = build(pool_size)
                    .connect_with(opts)
                    .await
                    .map_err(connect_err)?;
                Ok(Db {
                    url: url.clone(),
                    schema: None,
                    write,
                    read,
                    pool_size,
                })
            }
            Engine::Postgres => {
                let set_path = format!("SET search_path TO {schema}");
                let pool = pool_options()
                    .max_connections(pool_size)
                    .acquire_timeout(acquire_timeout)
                    .after_connect(move |conn, _| {
                        let set_path = set_path.clone();
                        Box::pin(async move {
                            conn.execute(set_path.as_str()).await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await
                    .map_err(connect_err)?;
                Ok(Db {
                    url: url.clone(),
                    schema: Some(schema.to_string()),
                    write: pool.clone(),
                    read: pool,
                    pool_size,
                })
            }
        }
    }

    /// Opens a hot standby of a database just seeded on its primary: refuses a server that is
    /// not in recovery, then waits (up to `wait`) until the seeded schema has been replayed
    /// there, ready.
    pub async fn open_standby(
        url: &DbUrl,
        schema: &str,
        pool_size: u32,
        wait: Duration,
    ) -> DbResult<Db> {
        // Reads of a standby that went away fail within a second and are counted, rather
        // than wait for it as long as writers wait for the primary.
        let db = Db::open_waiting(
            url,
            schema,
            pool_size,
            OpenMode::Existing,
            Duration::from_secs(1),
        )
        .await?;
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&db.read)
            .await?;
        if !in_recovery {
            db.close().await;
            return Err(DbError::NotAStandby {
                url: url.redacted(),
            });
        }
        let deadline = std::time::Instant::now() + wait;
        loop {
            let ready = matches!(schema::ownership(&db).await, Ok(schema::Ownership::Ours))
                && matches!(
                    super::state::DbState::read(&db).await,
                    Ok(super::state::DbState::Ready(_))
                );
            if ready {
                return Ok(db);
            }
            if std::time::Instant::now() >= deadline {
                db.close().await;
                return Err(DbError::StandbyBehind {
                    url: url.redacted(),
                    schema: schema.to_string(),
                    seconds: wait.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether writes go through one connection that every writer shares (SQLite: one writer
    /// at a time, queued in the tool rather than failing with `SQLITE_BUSY`). Such a connection
    /// must never be held by one worker.
    pub fn single_writer(&self) -> bool {
        self.engine() == Engine::Sqlite
    }

    pub fn engine(&self) -> Engine {
        self.url.engine()
    }

    pub fn is_pg(&self) -> bool {
        self.engine() == Engine::Postgres
    }

    /// The SQL dialect to build statements in.
    pub fn dialect(&self) -> dialect::Dialect {
        dialect::Dialect::of(self.engine())
    }

    /// Starts forwarding notifications on `channel` into `wake`, until `shutdown` turns true,
    /// where the engine has them (PostgreSQL's LISTEN, on a connection of the concrete driver
    /// that `PgListener` reconnects by itself); `None` elsewhere.
    pub fn listen(
        &self,
        channel: String,
        wake: std::sync::Arc<tokio::sync::Notify>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.dialect().notify()?;
        let raw = self.url.raw_for_connect();
        Some(tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let Ok(mut listener) = sqlx::postgres::PgListener::connect(&raw).await else {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                };
                if listener.listen(&channel).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                while listener.recv().await.is_ok() {
                    wake.notify_one();
                }
            }
        }))
    }

    /// Where a backend of the run named `ident` keeps its data: on SQLite a file of its own
    /// next to `url`'s, on PostgreSQL a schema of its own (`{schema}_{ident}`) in the same
    /// database. Returns the URL and the schema name.
    pub fn backend_location(url: &DbUrl, schema: &str, ident: &str) -> (DbUrl, String) {
        match url.engine() {
            Engine::Sqlite => (url.with_file_suffix(ident), schema.to_string()),
            Engine::Postgres => (url.clone(), format!("{schema}_{ident}")),
        }
    }

    /// Where this database lives, for messages: the URL, and the schema on PostgreSQL.
    pub fn location(&self) -> String {
        match &self.schema {
            None => self.url.redacted(),
            Some(schema) => format!("{} (schema {schema})", self.url.redacted()),
        }
    }

    /// Removes a run's database, best effort: the tool's tables (and schema) on PostgreSQL,
    /// the file and its WAL on SQLite. Closes the pools.
    pub async fn discard(&self) {
        match self.url.sqlite_path() {
            None => {
                let _ = schema::drop_all(self).await;
            }
            Some(path) => {
                self.close().await;
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(PathBuf::from(p));
                }
            }
        }
    }

    /// A PostgreSQL connection of the concrete driver (for COPY and LISTEN), with the search
    /// path set to this database's schema.
    pub async fn pg_connection(&self) -> DbResult<sqlx::PgConnection> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url.connect_string(OpenMode::Existing))
            .await
            .map_err(|source| DbError::Connect {
                url: self.url.redacted(),
                source,
            })?;
        if let Some(schema) = &self.schema {
            conn.execute(format!("SET search_path TO {schema}").as_str())
                .await?;
        }
        Ok(conn)
    }

    /// Server version and the settings that shape the numbers.
    pub async fn settings(&self) -> DbResult<DbSettings> {
        let mut settings = Vec::new();
        let server_version: String;
        match self.engine() {
            Engine::Sqlite => {
                server_version = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(&self.read)
                    .await?;
                for (k, _) in SQLITE_PRAGMAS {
                    let row = sqlx::query(&format!("PRAGMA {k}"))
                        .fetch_one(&self.read)
                        .await?;
                    settings.push((k.to_string(), sql::any_to_string(&row, 0)));
                }
                settings.push(("write_connections".into(), "1".into()));
            }
            Engine::Postgres => {
                server_version = sqlx::query_scalar("SHOW server_version")
                    .fetch_one(&self.read)
                    .await?;
                for k in [
                    "shared_buffers",
                    "synchronous_commit",
                    "fsync",
                    "max_connections",
                    "default_transaction_isolation",
                ] {
                    let v: String = sqlx::query_scalar(&format!("SHOW {k}"))
                        .fetch_one(&self.read)
                        .await?;
                    settings.push((k.to_string(), v));
                }
            }
        }
        Ok(DbSettings {
            engine: self.engine(),
            url: self.url.redacted(),
            schema: self.schema.clone(),
            server_version,
            pool_size: self.pool_size,
            settings,
        })
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}
