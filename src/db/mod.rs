//! Database engines: URL parsing, connection pools, the schema the tool owns, and seeding.
//!
//! All SQL goes through sqlx's `Any` driver with `$N` placeholders (SQLite accepts them too),
//! so one statement serves both engines unless the dialects really differ. Only PostgreSQL's
//! COPY and LISTEN use the concrete driver.

pub mod dialect;
pub mod load;
pub mod schema;
pub mod sql;
pub mod state;
pub mod storage;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("schema \"{schema}\" exists in {url} but was not created by cqrs-bench; refusing to touch it (choose another schema)")]
    ForeignSchema { schema: String, url: String },
    #[error("{path} holds tables cqrs-bench did not create ({tables}); refusing to touch it (choose another file)")]
    ForeignSqliteFile { path: String, tables: String },
    #[error("{url} has no cqrs-bench data (schema \"{schema}\" not found); seed it first")]
    NotSeeded { url: String, schema: String },
    #[error("invalid schema name \"{0}\": use lower-case letters, digits and _")]
    InvalidSchemaName(String),
    #[error(transparent)]
    DatasetTooLarge(#[from] crate::dataset::spec::TooLargeForDisk),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

impl DbError {
    /// 3 when the database failed mid-work (an SQL error); 2 for input the tool cannot use
    /// (URL, connection, a schema it does not own, nothing seeded).
    pub fn exit_code(&self) -> u8 {
        match self {
            DbError::Sql(_) => 3,
            _ => 2,
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// A parsed database URL. Its `Display` never shows a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    engine: Engine,
    raw: String,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for DbUrl {
    type Err = DbError;
    fn from_str(s: &str) -> DbResult<Self> {
        DbUrl::parse(s)
    }
}

impl DbUrl {
    pub fn parse(s: &str) -> DbResult<Self> {
        let invalid = |reason: &str| DbError::InvalidUrl {
            url: redact_url(s),
            reason: reason.to_string(),
        };
        if let Some(path) = s.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(invalid("give a file path, e.g. sqlite://bench.db"));
            }
            Ok(DbUrl {
                engine: Engine::Sqlite,
                raw: s.to_string(),
            })
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            if s.split("://").nth(1).is_none_or(|rest| rest.is_empty()) {
                return Err(invalid("missing host"));
            }
            Ok(DbUrl {
                engine: Engine::Postgres,
                raw: s.to_string(),
            })
        } else {
            Err(invalid(
                "expected sqlite://PATH or postgres://USER@HOST:PORT/DB",
            ))
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL with any password replaced by `***`: the only form that is ever printed.
    pub fn redacted(&self) -> String {
        redact_url(&self.raw)
    }

    /// The URL as given, password included: for connecting only, never for printing.
    pub fn raw_for_connect(&self) -> String {
        self.raw.clone()
    }

    /// The SQLite file path.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.raw.strip_prefix("sqlite://")?;
        Some(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
    }

    /// For SQLite: the same URL with the file name suffixed (`bench.db` → `bench.SUFFIX.db`),
    /// so each backend gets its own file. PostgreSQL URLs are returned unchanged (backends get
    /// their own schema instead).
    pub fn with_file_suffix(&self, suffix: &str) -> DbUrl {
        match self.sqlite_path() {
            Some(path) => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "bench".into());
                let ext = path
                    .extension()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "db".into());
                let file = path.with_file_name(format!("{stem}.{suffix}.{ext}"));
                DbUrl {
                    engine: Engine::Sqlite,
                    raw: format!("sqlite://{}", file.display()),
                }
            }
            None => self.clone(),
        }
    }

    fn connect_string(&self, mode: OpenMode) -> String {
        match self.engine {
            // mode=rwc creates the file when missing, mode=rw does not.
            Engine::Sqlite => {
                if self.raw.contains('?') {
                    self.raw.clone()
                } else {
                    match mode {
                        OpenMode::CreateIfMissing => format!("{}?mode=rwc", self.raw),
                        OpenMode::Existing => format!("{}?mode=rw", self.raw),
                    }
                }
            }
            Engine::Postgres => self.raw.clone(),
        }
    }
}

/// Replaces the password in `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***{host}{tail}"),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    // libpq also accepts ?password=… in the query string.
    if let Some(q) = out.find("password=") {
        let end = out[q..].find('&').map(|e| q + e).unwrap_or(out.len());
        out.replace_range(q + "password=".len()..end, "***");
    }
    out
}

/// Whether opening a SQLite URL may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    CreateIfMissing,
    Existing,
}

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
                    .acquire_timeout(Duration::from_secs(10))
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
        let mut conn = sqlx::PgConnection::connect(&self.url.raw)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(
            redact_url("postgres://bob@db/x?password=s3cret&sslmode=off"),
            "postgres://bob@db/x?password=***&sslmode=off"
        );
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
        let url = DbUrl::parse("postgres://u:pw@h/d").unwrap();
        assert!(!format!("{url} {url:?}").contains("pw@"));
    }

    #[test]
    fn rejects_unknown_schemes() {
        assert!(DbUrl::parse("mysql://x").is_err());
        assert!(DbUrl::parse("sqlite://").is_err());
        assert!(DbUrl::parse("sqlite://a.db").is_ok());
    }

    #[test]
    fn suffixes_sqlite_files() {
        let url = DbUrl::parse("sqlite://out/bench.db").unwrap();
        assert_eq!(
            url.with_file_suffix("normalized").sqlite_path().unwrap(),
            PathBuf::from("out/bench.normalized.db")
        );
    }
}
