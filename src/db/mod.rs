//! Database engines: URLs (`url`), connection pools (`pools`), the SQL dialects, the schema
//! the tool owns, its state, and seeding.
//!
//! All SQL goes through sqlx's `Any` driver with `$N` placeholders (SQLite accepts them too),
//! so one statement serves both engines unless the dialects really differ. Only PostgreSQL's
//! COPY and LISTEN use the concrete driver.

pub mod copies;
pub mod dialect;
pub mod load;
pub mod lock;
pub mod pools;
pub mod read_only;
pub mod row_fold;
pub mod row_triggers;
pub mod schema;
pub mod scratch;
pub mod sql;
pub mod state;
pub mod storage;
pub mod triggers;
pub mod url;

pub use pools::{validate_schema_name, Db, DbSettings, DEFAULT_SCHEMA, SQLITE_PRAGMAS};
pub use url::{redact_url, DbUrl, OpenMode};

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

    /// The engine's name in prose.
    pub fn display_name(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
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
    #[error("{place} has triggers cqrs-bench did not create ({triggers}); refusing to touch it (drop them or choose another)")]
    ForeignTriggers { place: String, triggers: String },
    #[error("{0} reads from a hot standby: give its URL with --replica-db")]
    NoReplica(&'static str),
    #[error("--replica-db {url} is not a hot standby (pg_is_in_recovery() is false there)")]
    NotAStandby { url: String },
    #[error("the standby {url} did not show schema \"{schema}\" within {seconds} s of seeding the primary: is it a standby of --db?")]
    StandbyBehind {
        url: String,
        schema: String,
        seconds: u64,
    },
    #[error(
        "{0} is not a read store of cqrs-bench's (--read-db): it holds a seeded dataset, or none"
    )]
    NotReadStore(String),
    #[error("{0} is not the write side of a split pair (seeded with --read-db): it keeps read models of its own, or no event log")]
    NotSplitWriteSide(String),
    #[error(
        "{backend} keeps no read models apart from its write model; --read-db is for {supported}"
    )]
    NoSeparateReadStore {
        backend: &'static str,
        supported: String,
    },
    #[error("{backend} cannot run a workload pack: {reason} (packs run on {supported})")]
    NoPackMode {
        backend: &'static str,
        reason: &'static str,
        supported: String,
    },
    /// `refusal`: the registry's reason (`matview needs PostgreSQL`).
    #[error("{refusal}: a workload pack runs on it there only")]
    PackNeedsEngine { refusal: String },
    #[error("{place} does not hold workload pack {pack} prepared for {backend}; prepare it first")]
    NotPackDataset {
        place: String,
        pack: String,
        backend: &'static str,
    },
    #[error("{url} has no cqrs-bench data (schema \"{schema}\" not found); seed it first")]
    NotSeeded { url: String, schema: String },
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("{0} is half-seeded: interrupted during seed; reseed or drop it")]
    HalfSeeded(String),
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
