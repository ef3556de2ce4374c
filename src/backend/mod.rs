//! The backends: one module each (`normalized`, `cqrs_sync`, `cqrs_async`, …), listed once in
//! `registry`. They share the write model (`write`), the queries (`queries`) and the driver's
//! sessions (`session`), and differ in what else the write transaction does, where queries
//! read and what "visible to a reader" means; each says so through `Architecture`.
//!
//! | backend      | write transaction also…                   | queries read     |
//! |--------------|-------------------------------------------|------------------|
//! | `normalized` | nothing                                   | normalized joins |
//! | `cqrs-sync`  | applies the events to the read models     | read models      |
//! | `cqrs-async` | appends the events to the outbox          | read models, kept up by the projector |
//! | `cqrs-broker` | appends the events to the outbox; a relay publishes them to NATS JetStream | read models, kept up by a projector consuming the stream |
//! | `event-sourced` | *is* the write: decides on state rebuilt from the event store and appends to it (`Architecture::write`) | read models, projected from the store |
//! | `triggers`   | nothing in the application: the database's triggers update the read models | read models |
//! | `matview`    | nothing: materialized views of the write tables are refreshed on a schedule | the views |
//! | `replica`    | nothing: a hot standby replays the primary's WAL | normalized joins, on the standby (`Architecture::reads_from`) |
//! | `denormalized` | copies the product's name and price into the order's lines; a price change rewrites every line of the product | the normalized tables, product details from the lines |
//!
//! A trait object rather than an enum over the backends: a new backend is a file and a
//! registry entry, with no match arm to add anywhere; the box costs one allocation per
//! command, next to a database round trip.

pub mod backoff;
pub mod cqrs_async;
pub mod cqrs_broker;
pub mod cqrs_sync;
pub mod denormalized;
pub mod entry;
pub mod event_sourced;
pub mod matview;
pub mod normalized;
pub mod projected;
pub mod queries;
pub mod read_db;
pub mod registry;
pub mod rehydrate;
pub mod replica;
pub mod session;
pub mod triggers;
pub mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlx::AnyConnection;

use crate::db::state::Provisions;
use crate::db::{Db, DbError};
use crate::domain::{Command, DomainError, Event, Query, QueryAnswer};
use crate::metrics::event_store::EventStoreStats;
use crate::projection::lag_parts::LagPart;
use crate::projection::projector::{
    LagTracker, Projector, ProjectorConfig, ProjectorError, ProjectorStats,
};
use crate::projection::ProjectionName;
pub use cqrs_async::append_events;
use queries::ReadSide;
pub use registry::VerifiedAgainst;
pub use session::Session;

/// Which backend: a registered backend's name, the stable key results are stored under.
/// Only the backend files make one (each its `KIND`, carried by its registry entry); everyone
/// else finds them through `registry`, in whose order they sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendKind(&'static str);

impl BackendKind {
    /// A backend file's own kind.
    const fn new(name: &'static str) -> Self {
        BackendKind(name)
    }

    /// Every registered backend, in registration order.
    pub fn all() -> Vec<BackendKind> {
        registry::BACKENDS.iter().map(|e| e.kind).collect()
    }

    /// What a scenario that names no backends runs: the registered ones marked for it.
    pub fn default_set() -> Vec<BackendKind> {
        registry::BACKENDS
            .iter()
            .filter(|e| e.in_default_set)
            .map(|e| e.kind)
            .collect()
    }

    /// The name in scenarios, on the command line and in reports.
    pub fn name(self) -> &'static str {
        self.0
    }

    pub fn from_name(name: &str) -> Option<Self> {
        registry::by_name(name).map(|e| e.kind)
    }

    /// Its place in the registry (for stable orders and colours).
    pub fn index(self) -> usize {
        registry::BACKENDS
            .iter()
            .position(|e| e.kind == self)
            .expect("every BackendKind is registered")
    }

    /// A name usable in file and schema names.
    pub fn ident(self) -> &'static str {
        registry::entry(self).ident
    }

    /// What its dataset holds besides the write model.
    pub fn provisions(self) -> Provisions {
        registry::entry(self).provisions
    }

    pub fn has_read_models(self) -> bool {
        self.provisions().read_models
    }

    pub fn has_event_log(self) -> bool {
        self.provisions().event_log
    }

    /// What verify compares its data with.
    pub fn verified_against(self) -> VerifiedAgainst {
        registry::entry(self).verified_against
    }

    /// What its write transaction does beyond the normalized write path, in words (empty if
    /// nothing).
    pub fn write_also(self) -> &'static str {
        registry::entry(self).write_also
    }

    /// What its read side's lag is called (empty if it never lags).
    pub fn lag_name(self) -> &'static str {
        registry::entry(self).lag_name
    }

    /// What it takes to run, in plain words.
    pub fn operations(self) -> &'static str {
        registry::entry(self).operations
    }

    /// What it is called as a simpler alternative to CQRS, if it is one.
    pub fn alternative_to_cqrs(self) -> Option<&'static str> {
        registry::entry(self).alternative_to_cqrs
    }

    /// Whether a reader can miss a committed write for a while (its read side lags).
    pub fn read_side_lags(self) -> bool {
        registry::entry(self).read_side_lags
    }

    /// What it is to the decision: baseline, an alternative tried first, CQRS, a story's.
    pub fn role(self) -> registry::Role {
        registry::entry(self).role
    }

    /// Why it cannot run a team's pack, if it cannot (`None`: it runs packs).
    pub fn pack_refusal(self) -> Option<&'static str> {
        match registry::entry(self).pack {
            entry::PackSupport::Runs(_) => None,
            entry::PackSupport::Refused(why) => Some(why),
        }
    }

    /// Its rank from simplest to run (0, normalized) up.
    pub fn simplicity(self) -> u8 {
        registry::entry(self).simplicity
    }
}

impl Ord for BackendKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.index().cmp(&other.index())
    }
}

impl PartialOrd for BackendKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for BackendKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for BackendKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        BackendKind::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown backend {name:?} (expected {})",
                registry::names_in_prose()
            ))
        })
    }
}

/// What makes one backend different from another. By default a command's write transaction
/// runs the normalized write path, then `in_write_transaction` (`write`); a backend with a
/// write model of its own replaces `write` whole. Everything else is the backend's own.
pub trait Architecture: Send + Sync {
    /// A command's whole write path on `conn`: its transaction (or, with retries, its
    /// transactions), up to and including the commit. Returns the events committed and their
    /// positions in the backend's log. By default the normalized write path, then
    /// `in_write_transaction`, in one transaction.
    fn write<'a>(
        &'a self,
        db: &'a Db,
        conn: &'a mut AnyConnection,
        cmd: &'a Command,
    ) -> BoxFuture<'a, Result<Written, ExecError>> {
        Box::pin(async move {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let events = write::execute(&mut tx, db.dialect(), cmd).await?;
            let seqs = self.in_write_transaction(&mut tx, &events).await?;
            tx.commit().await?;
            Ok(Written { events, seqs })
        })
    }

    /// The backend's part of a command's transaction, given the events the write path
    /// produced; returns their positions in the backend's log (none if it keeps no log).
    /// Nothing, unless the backend keeps more than the write model.
    fn in_write_transaction<'a>(
        &'a self,
        _tx: &'a mut AnyConnection,
        _events: &'a [Event],
    ) -> BoxFuture<'a, Result<Vec<i64>, sqlx::Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Told after the transaction committed (at `at`), with what it wrote.
    fn after_commit(&self, _written: &Written, _at: Instant) {}

    /// Connects and starts what the backend needs beyond its database (a broker), once,
    /// before the first command. Nothing by default.
    fn start(&self) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(async { Ok(()) })
    }

    /// Where queries read.
    fn read_side(&self) -> ReadSide;

    /// The database queries and read-your-writes probes read from: the backend's own,
    /// unless it reads a standby of it.
    fn reads_from<'a>(&'a self, db: &'a Db) -> &'a Db {
        db
    }

    /// Whether a reader already sees what `receipt` wrote (read-your-writes). Immediate
    /// unless the read side lags the write.
    fn is_visible<'a>(
        &'a self,
        _db: &'a Db,
        _session: &'a mut Session,
        _receipt: &'a Receipt,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async { Ok(true) })
    }

    /// The projector keeping the read side up, if there is one.
    fn projector(&self) -> Option<&Arc<Projector>> {
        None
    }

    /// The search index `text_search` reads, if the backend keeps one (else it is answered
    /// with SQL like every query).
    fn search(&self) -> Option<&projected::SearchSide> {
        None
    }

    /// The counters of the projector keeping the read side up, whatever it reads from.
    fn projector_stats(&self) -> Option<Arc<ProjectorStats>> {
        self.projector().map(|p| p.stats.clone())
    }

    /// The lag in parts, for a backend whose events pass through more than one hop (empty
    /// for the others).
    fn lag_parts(&self) -> Vec<LagPart> {
        Vec::new()
    }

    /// Waits until the read side shows every committed write.
    fn wait_caught_up(&self, _timeout: Duration) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(async { Ok(()) })
    }

    /// Optimistic-concurrency counters per command type, for backends that retry on
    /// version conflicts (empty for the others).
    fn concurrency(&self) -> Vec<ConcurrencyCounts> {
        Vec::new()
    }

    /// What refreshing the read side cost, per view (`matview`; empty for the others).
    fn refreshes(&self) -> Vec<matview::RefreshReport> {
        Vec::new()
    }

    /// What rehydration and appends cost, for backends with an event store as write model.
    fn event_store(&self) -> Option<EventStoreStats> {
        None
    }

    /// Stops whatever the backend runs in the background.
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// What a command's write path committed: its events and their positions in the backend's
/// log (none if it keeps no log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub events: Vec<Event>,
    pub seqs: Vec<i64>,
}

/// Version conflicts of one command type: how many attempts lost a race on a stream version,
/// how many were retried on fresh state, and how many commands gave up after the last retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyCounts {
    pub command: crate::domain::CommandKind,
    pub conflicts: u64,
    pub retries: u64,
    pub gave_up: u64,
}

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The domain refused it (counted, not a failure).
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Every attempt lost a race on a stream version (optimistic concurrency, `event-sourced`):
    /// the command did not take effect and was not refused either.
    #[error("{command}: gave up after {attempts} version conflicts")]
    GaveUp {
        command: &'static str,
        attempts: u32,
    },
}

impl From<DbError> for ExecError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Sql(e) => ExecError::Db(e),
            other => ExecError::Db(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

/// Why a backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Start(#[from] ProjectorError),
}

impl OpenError {
    pub fn exit_code(&self) -> u8 {
        match self {
            OpenError::Db(e) => e.exit_code(),
            OpenError::Start(e) => e.exit_code(),
        }
    }
}

/// What a committed command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    pub events: Vec<Event>,
    /// Outbox positions of the events (async backend only).
    pub seqs: Vec<i64>,
    pub committed_at: Option<Instant>,
    /// The command that wrote it (`None`: unknown, and a probe waits for every read model).
    pub command: Option<crate::domain::CommandKind>,
}

impl Receipt {
    /// The read models a read-your-writes probe of this write waits for: those the query
    /// its writer would read it back with reads ([`CommandKind::seen_in`]), not every read
    /// side the backend keeps (a search index no such query reads must not delay it).
    ///
    /// [`CommandKind::seen_in`]: crate::domain::CommandKind::seen_in
    pub fn read_models(&self) -> &'static [ProjectionName] {
        match self.command {
            Some(c) => ProjectionName::read_by(c.seen_in()),
            None => &ProjectionName::ALL,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BackendOptions {
    pub projector: ProjectorConfig,
    /// Run the async projector inside this process (tests may drive it by hand instead).
    pub run_projector: bool,
    pub lag: Option<Arc<LagTracker>>,
    /// The broker of `cqrs-broker` (ignored by the other backends).
    pub broker: crate::broker::BrokerOptions,
    /// Give each driver worker a connection of its own on PostgreSQL (see `session`); the
    /// caller sets it only when the pool has room for every worker and the projector.
    pub dedicated_sessions: bool,
    /// When `matview` refreshes its views.
    pub matview: matview::RefreshSchedule,
    /// The hot standby `replica` reads from (opened on the same schema).
    pub replica: Option<Db>,
    /// `event-sourced`: snapshot a stream every this many versions (0: no snapshots).
    pub snapshot_every: u32,
    /// A separate read store (`--read-db`, made by `read_db::prepare`) that the projector
    /// feeds and queries read, instead of the write database's own read tables.
    pub read_store: Option<Db>,
    /// `cqrs-async` and `event-sourced`: keep the product search index beside the SQL read
    /// models. Off by default: a run asks for it (`run_one`); a caller that drives the SQL
    /// projector by hand would otherwise leave an index behind that nothing fed.
    pub search: bool,
    /// Where the search index lives (default: `search::index_dir`).
    pub search_dir: Option<std::path::PathBuf>,
    /// Told of every write's commit and of every search-index commit: search freshness.
    pub search_lag: Option<Arc<LagTracker>>,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            matview: matview::RefreshSchedule::default(),
            replica: None,
            projector: ProjectorConfig::default(),
            run_projector: true,
            lag: None,
            broker: crate::broker::BrokerOptions::default(),
            dedicated_sessions: false,
            snapshot_every: 0,
            read_store: None,
            search: false,
            search_dir: None,
            search_lag: None,
        }
    }
}

pub struct Backend {
    pub kind: BackendKind,
    pub db: Db,
    architecture: Box<dyn Architecture>,
    dedicated_sessions: bool,
}

impl Backend {
    /// Opens a backend on a seeded database (for `cqrs-async`, starting its projector unless
    /// told not to; for `cqrs-broker`, connecting to its broker first).
    pub async fn open(kind: BackendKind, db: Db, opts: BackendOptions) -> Result<Self, OpenError> {
        crate::db::schema::require_ours(&db).await?;
        crate::db::schema::no_foreign_triggers(&db).await?;
        if registry::entry(kind).needs_replica && opts.replica.is_none() {
            return Err(DbError::NoReplica(kind.name()).into());
        }
        if let Some(read) = &opts.read_store {
            if !read_db::supported(kind) {
                return Err(DbError::NoSeparateReadStore {
                    backend: kind.name(),
                    supported: registry::with_separate_read_store(),
                }
                .into());
            }
            read_db::require_read_store(read).await?;
        }
        let architecture = (registry::entry(kind).open)(&db, &opts);
        architecture.start().await?;
        Ok(Backend {
            kind,
            db,
            architecture,
            dedicated_sessions: opts.dedicated_sessions,
        })
    }

    /// A driver worker's session for the write lane (`writes`) or the read lane: dedicated
    /// when the backend was opened with room for it, except on a single shared writer
    /// connection (SQLite's, which the other writers and the projector need too).
    pub fn session(&self, writes: bool) -> Session {
        Session::for_lane(&self.db, self.dedicated_sessions, writes)
    }

    /// Whether its workers' sessions keep their connections (the pool has room for them).
    pub fn dedicated_sessions(&self) -> bool {
        self.dedicated_sessions
    }

    /// Executes one command in one transaction, on a connection checked out of the pool.
    pub async fn execute(&self, cmd: &Command) -> Result<Receipt, ExecError> {
        self.execute_in(&mut Session::shared(), cmd).await
    }

    /// Executes one command in one transaction, on the session's connection.
    pub async fn execute_in(
        &self,
        session: &mut Session,
        cmd: &Command,
    ) -> Result<Receipt, ExecError> {
        let mut conn = session.take(&self.db.write).await.map_err(DbError::from)?;
        let result = self.execute_on(&mut conn, cmd).await;
        session.give_back(conn, !matches!(result, Err(ExecError::Db(_))));
        result
    }

    async fn execute_on(
        &self,
        conn: &mut AnyConnection,
        cmd: &Command,
    ) -> Result<Receipt, ExecError> {
        let written = self.architecture.write(&self.db, conn, cmd).await?;
        let committed_at = Instant::now();
        self.architecture.after_commit(&written, committed_at);
        let Written { events, seqs } = written;
        Ok(Receipt {
            events,
            seqs,
            committed_at: Some(committed_at),
            command: Some(cmd.kind()),
        })
    }

    pub async fn query(&self, q: &Query) -> Result<QueryAnswer, sqlx::Error> {
        self.query_in(&mut Session::shared(), q).await
    }

    pub async fn query_in(
        &self,
        session: &mut Session,
        q: &Query,
    ) -> Result<QueryAnswer, sqlx::Error> {
        if let (Query::TextSearch { .. }, Some(search)) = (q, self.architecture.search()) {
            return text_search_in(search.index.clone(), q.clone()).await;
        }
        let reader = self.architecture.reads_from(&self.db);
        let mut conn = session.take(&reader.read).await?;
        let result = queries::run(&mut conn, self.architecture.read_side(), q).await;
        session.give_back(conn, result.is_ok());
        result
    }

    /// The projector of the async backend (for driving it by hand and for its counters).
    pub fn projector(&self) -> Option<&Arc<Projector>> {
        self.architecture.projector()
    }

    /// The search index's read side (`cqrs-async`, `event-sourced`; `None` otherwise).
    pub fn search(&self) -> Option<&projected::SearchSide> {
        self.architecture.search()
    }

    /// How many events of the log the search index is behind the SQL product catalog right
    /// now (negative: ahead); `None` without an index or when the database cannot tell.
    pub async fn search_skew(&self) -> Option<i64> {
        let search = self.architecture.search()?;
        search.skew().await.ok()
    }

    /// The counters of the projector keeping the read side up, if any.
    pub fn projector_stats(&self) -> Option<Arc<ProjectorStats>> {
        self.architecture.projector_stats()
    }

    /// The lag in parts (`cqrs-broker`; empty otherwise).
    pub fn lag_parts(&self) -> Vec<LagPart> {
        self.architecture.lag_parts()
    }

    /// Waits until every committed event is in the read models (async backend; immediate for
    /// the others).
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<(), ProjectorError> {
        self.architecture.wait_caught_up(timeout).await
    }

    /// Whether the read models already show the effect of `receipt` (read-your-writes).
    pub async fn is_visible(&self, receipt: &Receipt) -> Result<bool, sqlx::Error> {
        self.is_visible_in(&mut Session::shared(), receipt).await
    }

    pub async fn is_visible_in(
        &self,
        session: &mut Session,
        receipt: &Receipt,
    ) -> Result<bool, sqlx::Error> {
        self.architecture
            .is_visible(&self.db, session, receipt)
            .await
    }

    /// Optimistic-concurrency counters per command type (`event-sourced`; empty otherwise).
    pub fn concurrency(&self) -> Vec<ConcurrencyCounts> {
        self.architecture.concurrency()
    }

    /// What refreshing the read side cost, per view (`matview`; empty otherwise).
    pub fn refreshes(&self) -> Vec<matview::RefreshReport> {
        self.architecture.refreshes()
    }

    /// Rehydration and append costs (`event-sourced`; `None` otherwise).
    pub fn event_store(&self) -> Option<EventStoreStats> {
        self.architecture.event_store()
    }

    /// Stops the projector task, if any.
    pub async fn shutdown(self) {
        self.architecture.shutdown().await;
    }
}

/// `text_search` answered from the search index, on a blocking thread (tantivy's reads are
/// synchronous). Its errors travel as the query's database errors, as every read's do.
async fn text_search_in(
    index: Arc<crate::projection::search::SearchIndex>,
    q: Query,
) -> Result<QueryAnswer, sqlx::Error> {
    let Query::TextSearch {
        terms,
        category_id,
        min_cents,
        max_cents,
        min_rating,
        in_stock,
        sort,
        limit,
    } = q
    else {
        unreachable!("only text_search reads the index")
    };
    let words = queries::search_words(&terms)?;
    tokio::task::spawn_blocking(move || {
        crate::projection::search::query::text_search(
            &index,
            &crate::projection::search::query::TextQuery {
                words: &words,
                category_id,
                min_cents,
                max_cents,
                min_rating,
                in_stock,
                sort,
                limit,
            },
        )
    })
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("search task: {e}")))?
    .map(QueryAnswer::TextSearch)
    .map_err(|e| sqlx::Error::Protocol(e.to_string()))
}

/// Opens `url` (schema `schema` on PostgreSQL), seeds the dataset for `kind` and returns the
/// database, ready for `Backend::open`.
pub async fn prepare(
    url: &crate::db::DbUrl,
    schema: &str,
    kind: BackendKind,
    seed: u64,
    spec: &crate::dataset::DatasetSpec,
    pool_size: u32,
) -> Result<(Db, crate::db::load::SeedReport), DbError> {
    prepare_provisioned(url, schema, kind.provisions(), seed, spec, pool_size).await
}

/// Like `prepare`, with what the dataset holds besides the write model given.
pub async fn prepare_provisioned(
    url: &crate::db::DbUrl,
    schema: &str,
    provisions: Provisions,
    seed: u64,
    spec: &crate::dataset::DatasetSpec,
    pool_size: u32,
) -> Result<(Db, crate::db::load::SeedReport), DbError> {
    let db = Db::open(url, schema, pool_size).await?;
    // A search index left beside an earlier dataset of this name describes other data.
    crate::projection::search::discard(&db, None).map_err(|e| DbError::from(sqlx::Error::Io(e)))?;
    let ds = crate::dataset::Dataset::generate(seed, spec);
    let report = crate::db::load::seed_with(
        &db,
        &ds,
        provisions,
        &crate::projection::seed_statements(provisions, db.dialect()),
        provisions
            .event_store
            .then_some(crate::projection::apply_seed_batch as crate::db::load::ProjectBatch),
    )
    .await?;
    Ok((db, report))
}
