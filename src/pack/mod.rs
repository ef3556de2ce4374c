//! Workload packs: a team's own workload as a folder `workloads/NAME/` holding a manifest
//! (`pack.toml`) and SQL files, declarative, with no scripting language in the hot path.
//!
//! Loading reads and validates everything that needs no database ([`Pack::load`]);
//! [`check`] then applies the DDL in a scratch database of the engine (SQLite in memory, or a
//! PostgreSQL schema inside a transaction that is rolled back) and prepares every statement.
//! A bad pack is refused whole: every problem at once, one line each, as
//! `FILE: path: message` (`pack.toml: commands.transfer.statements[1]: …`), exit 2.
//! [`exec`] runs a pack on a database: seeding, a command's statements in the caller's
//! transaction, projections, queries, and each read model's truth for verify.
//! [`backend`] runs a pack on the backends that can (`normalized`, `cqrs-sync`, `cqrs-async`
//! with [`projector`], `cqrs-broker` with [`broker`] and [`projector`], `matview`, `replica`)
//! and verifies its read models; [`rebuild`] rebuilds a kept `cqrs-async` dataset's read
//! models from its outbox.
//!
//! # Files
//!
//! - `pack.toml`: the manifest (below).
//! - `schema.sql`, or per engine `schema.sqlite.sql` / `schema.postgres.sql` (the engine's own
//!   file wins): the write model's DDL, any number of statements.
//! - `dataset.sql`, or per engine `dataset.sqlite.sql` / `dataset.postgres.sql` (optional):
//!   statements separated by `;` that generate the rows from the dataset sizes, which they
//!   name as parameters (`:accounts`): `generate_series` on PostgreSQL, a recursive CTE on
//!   SQLite.
//!
//! # Manifest
//!
//! SQL everywhere names its parameters `:name` (never `?` or `$1`); each statement is compiled
//! once into the engine's numbered placeholders. Names are SQL identifiers (a letter or `_`,
//! then letters, digits, `_`); sizes, parameters and returned values share one namespace.
//!
//! ```toml
//! description = "Accounts and transfers"   # optional
//!
//! [dataset]                 # sizes: name -> default (integer, 0 to 10^10); a scenario may
//! accounts = 1000           # override them; SQL uses them as :accounts
//!
//! [parameters]              # drawn per op, a pure function of (seed, op index, name)
//! from = { kind = "zipf", range = "1..=accounts", exponent = 1.1 }   # exponent > 0
//! to = { kind = "uniform", range = "1..=accounts" }  # range: LO..=HI, integers or sizes
//! hot = { kind = "hotspot", range = "1..=accounts", hot_keys = 0.1, hot_ops = 0.9 }
//!                           # hot_keys in (0, 1): share of keys that are hot; hot_ops in
//!                           # (0, 1]: their share of draws (as the scenario's [keys])
//! status = { kind = "choice", values = ["open", "closed"] }  # all integers or all strings
//! name = { kind = "words", count = 2 }     # count in 1..=64 words of the shop's vocabulary
//!
//! [events.MoneyTransferred]  # the events commands emit; payload fields
//! fields = ["transfer", "from", "to", "amount"]
//! stream_key = "from"        # optional: the field naming the stream (a broker's partition
//!                            # key) the event belongs to: events whose key holds the same
//!                            # value, of any type, are one stream, delivered in order;
//!                            # events of different streams may be reordered
//!
//! [commands.transfer]        # statements run in order in one transaction
//! statements = [
//!   # require_rows = N (exactly) or ">= N": otherwise the command is a domain refusal
//!   # (counted as rejected, rolled back)
//!   { sql = "UPDATE accounts SET balance = balance - :amount WHERE id = :from AND balance >= :amount", require_rows = 1 },
//!   # returns: names for the columns of the one row the statement yields (like pgbench's
//!   # \gset), usable by the statements after it and by emit
//!   { sql = "INSERT INTO transfers (from_id, to_id, amount) VALUES (:from, :to, :amount) RETURNING id", returns = ["transfer_id"] },
//! ]
//! emit = [ { event = "MoneyTransferred", fields = { transfer = "transfer_id", from = "from", to = "to", amount = "amount" } } ]
//!                            # every field of the event, each from a parameter, a size or
//!                            # a returned value
//!
//! [read_models.account_balance]
//! ddl = "CREATE TABLE account_balance (account_id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)"
//! key = ["account_id"]       # columns that identify a row (verify orders by them)
//! truth = "SELECT id AS account_id, balance FROM accounts"   # over the write tables: exactly
//!                            # the rows the read model must hold, with its columns
//!
//! [projections.balances]     # applies one event type to the read models
//! event = "MoneyTransferred"
//! statements = ["UPDATE account_balance SET balance = balance - :amount WHERE account_id = :from"]
//!                            # parameters: the event's fields
//!
//! [queries.balance]          # the same answer from both sides; parameters as in commands
//! write_sql = "SELECT balance FROM accounts WHERE id = :account"
//! read_sql = "SELECT balance FROM account_balance WHERE account_id = :account"
//!
//! [copy]                     # optional: the rows copied from a team's database instead
//!                            # (a scenario's `[dataset] copy_from = "URL"`), read-only
//! tables = ["accounts"]      # filled in this order, by default from the source's table of
//!                            # the same name and the pack table's columns
//! select = { accounts = "SELECT id, balance FROM app_accounts" }  # or from this query
//! sizes = { accounts = "SELECT count(*) FROM app_accounts" }      # a size measured on the
//!                            # source (one integer) instead of given
//! ```
//!
//! Unknown keys are problems at every level. The engine check also requires each read
//! model's DDL to create a table of its name whose columns are exactly the truth query's,
//! each key to be one of them, a statement with `returns` to yield that many columns, and a
//! query's two sides to yield as many columns as each other.

pub mod backend;
pub mod broker;
pub mod copy;
pub mod exec;
pub mod footprint;
mod manifest;
pub mod ops;
pub use manifest::MAX_SIZE;
pub mod params;
mod prepare;
pub mod projector;
pub mod rebuild;
pub mod sql;
pub mod target;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::db::{DbError, DbUrl, Engine};
use params::ParamSpec;
use sql::NamedSql;

/// How many rows a statement must touch or return for its command to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRequirement {
    Exactly(u64),
    AtLeast(u64),
}

impl RowRequirement {
    pub fn holds(self, rows: u64) -> bool {
        match self {
            RowRequirement::Exactly(n) => rows == n,
            RowRequirement::AtLeast(n) => rows >= n,
        }
    }
}

/// One statement of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandStatement {
    pub sql: NamedSql,
    pub require_rows: Option<RowRequirement>,
    /// Names for the columns of the one row it yields.
    pub returns: Vec<String>,
}

/// An event a command emits: payload field -> the name of the value it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Emit {
    pub event: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandDef {
    pub statements: Vec<CommandStatement>,
    pub emit: Vec<Emit>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadModelDef {
    pub ddl: String,
    pub key: Vec<String>,
    pub truth: NamedSql,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionDef {
    pub event: String,
    pub statements: Vec<NamedSql>,
}

/// `[copy]`: the write model's rows copied from a team's own database (the scenario's
/// `[dataset] copy_from`) instead of generated by the dataset SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyDef {
    /// The tables filled, in this order (parents before children), each with the SELECT on
    /// the source that yields its rows (columns named as the table's); `None`: the table's
    /// own columns from the source's table of the same name.
    pub tables: Vec<(String, Option<String>)>,
    /// Size -> a query on the source that yields it (one integer): the sizes the pack's
    /// parameters draw from follow the copied data.
    pub sizes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryDef {
    pub write_sql: NamedSql,
    pub read_sql: NamedSql,
}

/// A SQL file of the pack: the write model's DDL or the dataset's statements.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFile {
    /// The path as problems name it (the pack's folder joined with the file name).
    pub file: String,
    /// The engine it is for; `None`: every engine without a file of its own.
    pub engine: Option<Engine>,
    pub text: String,
    /// The dataset's statements (empty for a schema file, which runs as one script).
    pub statements: Vec<NamedSql>,
}

/// A validated pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    /// The folder's name.
    pub name: String,
    pub dir: PathBuf,
    pub description: String,
    /// Dataset sizes and their defaults.
    pub sizes: BTreeMap<String, i64>,
    pub parameters: BTreeMap<String, ParamSpec>,
    /// Event type -> its payload fields.
    pub events: BTreeMap<String, Vec<String>>,
    /// Event type -> the field naming the stream it belongs to (`stream_key`), for the
    /// event types that declare one: events whose key holds the same value (of any type) are
    /// one stream, delivered in order; events of different streams may be reordered.
    pub stream_keys: BTreeMap<String, String>,
    pub commands: BTreeMap<String, CommandDef>,
    pub read_models: BTreeMap<String, ReadModelDef>,
    pub projections: BTreeMap<String, ProjectionDef>,
    pub queries: BTreeMap<String, QueryDef>,
    pub schemas: Vec<SqlFile>,
    pub datasets: Vec<SqlFile>,
    /// How to copy the dataset from a team's database, if the pack says.
    pub copy: Option<CopyDef>,
}

/// The engine's own file, else the shared one.
fn for_engine(files: &[SqlFile], engine: Engine) -> Option<&SqlFile> {
    files
        .iter()
        .find(|f| f.engine == Some(engine))
        .or_else(|| files.iter().find(|f| f.engine.is_none()))
}

impl Pack {
    /// Reads and validates `dir`'s manifest and SQL files (everything that needs no
    /// database). `Err`: every problem found.
    pub fn load(dir: &Path) -> Result<Pack, PackError> {
        let (pack, problems) = manifest::read(dir);
        if problems.is_empty() {
            Ok(pack)
        } else {
            Err(PackError::Invalid(problems))
        }
    }

    /// The write model's DDL on `engine`.
    pub fn schema(&self, engine: Engine) -> Option<&SqlFile> {
        for_engine(&self.schemas, engine)
    }

    /// The dataset's statements on `engine` (`None`: the pack starts empty there).
    pub fn dataset(&self, engine: Engine) -> Option<&SqlFile> {
        for_engine(&self.datasets, engine)
    }

    /// "N commands, M queries, K read models, P projections".
    pub fn summary(&self) -> String {
        let n = |count: usize, one: &str, many: &str| {
            format!("{count} {}", if count == 1 { one } else { many })
        };
        format!(
            "{}, {}, {}, {}",
            n(self.commands.len(), "command", "commands"),
            n(self.queries.len(), "query", "queries"),
            n(self.read_models.len(), "read model", "read models"),
            n(self.projections.len(), "projection", "projections"),
        )
    }
}

/// Loads `dir` and checks it on the engine of `db` (a scratch PostgreSQL schema, rolled
/// back) or, without one or for a SQLite URL, on an in-memory SQLite database. `Err`: every
/// problem of both passes, or the database that could not be opened.
pub async fn check(dir: &Path, db: Option<&DbUrl>) -> Result<Pack, PackError> {
    let (pack, mut problems) = manifest::read(dir);
    problems.extend(prepare::on_engine(&pack, db).await?);
    if problems.is_empty() {
        Ok(pack)
    } else {
        Err(PackError::Invalid(problems))
    }
}

/// One thing wrong with a pack: the file, the dotted path inside it (`commands.transfer.
/// statements[1]`; empty for the file as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackProblem {
    pub file: String,
    pub path: String,
    pub message: String,
}

impl fmt::Display for PackProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Displays one line per problem.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<PackProblem>),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl PackError {
    /// 2: a pack the tool cannot use, or a database it cannot open for the check (a database
    /// failing mid-check: the database's own code).
    pub fn exit_code(&self) -> u8 {
        match self {
            PackError::Invalid(_) => 2,
            PackError::Db(e) => e.exit_code(),
        }
    }

    /// The problems, when the pack itself is at fault.
    pub fn problems(&self) -> &[PackProblem] {
        match self {
            PackError::Invalid(p) => p,
            PackError::Db(_) => &[],
        }
    }
}
