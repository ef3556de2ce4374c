//! The command line: its arguments (clap), the errors it exits with, and one handler per
//! subcommand (`commands`). `main.rs` only parses, dispatches and exits.

#[macro_use]
mod output;
mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::db::DEFAULT_SCHEMA;
use crate::projection::projector::ProjectorMode;

pub use commands::dispatch;

#[derive(Parser)]
#[command(
    name = "cqrs-bench",
    version,
    about = "Does CQRS pay off for your workload? Replays it against a normalized model, CQRS variants and their alternatives, and measures."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run a scenario against its backends and write results.json and a summary.
    Run(RunArgs),
    /// Create the tool's tables in a database and load a scenario's dataset.
    Seed(SeedArgs),
    /// Compare every read model with the truth computed from the normalized tables (on an
    /// event-sourced database: with a fold over the event store).
    Verify(VerifyArgs),
    /// Write report.md, report.html and plots/*.svg from a saved results.json.
    Report(ReportArgs),
    /// Compare two runs of the same scenario, metric by metric, with Welch's t-test.
    Compare(CompareArgs),
    /// The CI gate: run a scenario, verify, evaluate its thresholds; exit 1 when any fails.
    Check(CheckArgs),
    /// Rebuild read models from the event log (a cqrs-async database) or the event store (an
    /// event-sourced one); with --pack, a workload pack's from its outbox.
    Rebuild(RebuildArgs),
    /// List the dead-lettered events of a cqrs-async database, or replay them.
    DeadLetters(DeadLetterArgs),
    /// Run the async projector as its own process, as a team would deploy it.
    Projector(ProjectorArgs),
    /// Drop what the tool created under --schema, as `run` uses it: the schema and every
    /// <schema>_<backend> (on SQLite, the file and its backends' files beside it). Names each
    /// one dropped; refuses anything it did not create.
    Drop(DbArgs),
    /// Add the results.json of the segments of a scale-out run (`run --segment I/N`) into one
    /// results.json and one report.
    Merge(MergeArgs),
    /// Prove a workload pack's projections converge: command histories from its op stream,
    /// their events delivered into fresh read models under faults (duplicates, a crash before
    /// the checkpoint commits, reordering across stream keys, a rebuild mid-history), through
    /// the tool's exactly-once projector and through plain at-least-once delivery, compared
    /// with the truth queries and a single in-order delivery. A divergence is shrunk, printed
    /// and saved as a replay file; exit 1 when a required guarantee diverges.
    CheckProjections(CheckProjectionsArgs),
    /// Workload packs (workloads/NAME: a team's own schema, commands, events, read models,
    /// projections and queries).
    #[command(subcommand)]
    Pack(PackCmd),
}

#[derive(Subcommand)]
pub enum PackCmd {
    /// Validate a pack: its manifest and SQL files, then — on the engine — its DDL applied and
    /// every statement prepared (SQLite in memory by default; with --db postgres://… a scratch
    /// schema inside a transaction that is rolled back). Prints every problem at once as
    /// FILE: path: message and exits 2, or prints what the pack holds.
    Check(PackCheckArgs),
}

#[derive(clap::Args)]
pub struct PackCheckArgs {
    /// The pack's folder (holding pack.toml), e.g. workloads/ledger.
    pub dir: PathBuf,
    /// Check on this engine: postgres://… (nothing is left behind there) or sqlite://… (the
    /// file is never opened: an in-memory database stands in). Default: SQLite.
    #[arg(long)]
    pub db: Option<String>,
}

#[derive(clap::Args)]
pub struct CheckProjectionsArgs {
    /// The pack's folder (holding pack.toml). With --replay, the file's pack folder when not
    /// given.
    pub dir: Option<PathBuf>,
    /// Histories per guarantee (each small: up to --max-commands commands).
    #[arg(long, default_value_t = 200)]
    pub histories: u32,
    /// Seeds the histories, their faults and the commands' parameters: the same seed checks
    /// the same histories.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Check on this engine: postgres://… (a scratch schema inside one transaction, rolled
    /// back) or sqlite://… (the file is never opened: an in-memory database stands in).
    /// Default: SQLite.
    #[arg(long)]
    pub db: Option<String>,
    /// A dataset size instead of the pack's default, NAME=VALUE (repeatable).
    #[arg(long = "size", value_name = "NAME=VALUE")]
    pub sizes: Vec<String>,
    /// Also fail (exit 1) when plain at-least-once delivery diverges or a projection is not
    /// idempotent on its own: for a team that will run its statements behind a broker
    /// without transactions. Exactly-once always decides.
    #[arg(long)]
    pub require_at_least_once: bool,
    /// Run one replay file's history again (on --db's engine) instead of generating.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Where counterexamples are saved as replay files.
    #[arg(long, default_value = "reports/check-projections")]
    pub out: PathBuf,
    /// Also write each guarantee as a JUnit test case.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// The most commands in one history.
    #[arg(long, default_value_t = 20)]
    pub max_commands: usize,
    /// The largest batch a consumer receives.
    #[arg(long, default_value_t = 4)]
    pub max_batch: usize,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The segments' results.json files, one per segment 1..N, in any order.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// Where to write results.json and the report (default reports/<scenario>-<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ProjectorArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long, default_value_t = 500)]
    pub batch_size: i64,
    /// Idle poll interval, e.g. 50ms.
    #[arg(long, default_value = "50ms")]
    pub poll_interval: String,
    /// Exit once every committed event is applied (instead of running until stopped).
    #[arg(long)]
    pub until_idle: bool,
    /// Fault drills: hold each batch's transaction open this long before commit, e.g. 50ms.
    #[arg(long)]
    pub hold_before_commit: Option<String>,
    /// Keep the product search index instead of the SQL read models.
    #[arg(long)]
    pub search: bool,
    /// Where the search index lives (default: beside a SQLite file; on PostgreSQL in the
    /// temporary directory under the schema's name).
    #[arg(long)]
    pub search_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Also write the outcome as JUnit XML.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The separate read store of --db (a run's --read-db, same schema name), whose read
    /// models are compared with the truth from --db.
    #[arg(long)]
    pub read_db: Option<String>,
    /// The workload pack's folder, for a dataset a pack scenario's run kept (`run --keep-db`):
    /// each of the pack's read models is compared with its truth query.
    #[arg(long, value_name = "DIR")]
    pub pack: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Rebuild the read models of this separate read store of --db (same schema name) from
    /// --db's event log.
    #[arg(long)]
    pub read_db: Option<String>,
    /// Only this read model (product_catalog, order_summary, daily_sales, product_sales,
    /// monthly_sales, product_search). Without it, every SQL read model, and the search index if there is one.
    #[arg(long)]
    pub projection: Option<String>,
    /// Where the search index lives (default: beside a SQLite file; on PostgreSQL in the
    /// temporary directory under the schema's name).
    #[arg(long)]
    pub search_dir: Option<PathBuf>,
    /// Events per transaction; a rebuild moves the whole log, so batches are large (default
    /// 10,000; for a pack on PostgreSQL 1,000, see `pack::rebuild::default_batch_size`).
    #[arg(long)]
    pub batch_size: Option<i64>,
    /// The workload pack's folder, for a pack's cqrs-async dataset (a pack scenario's
    /// `run --keep-db`): its read models are put back as the seed left them and the whole
    /// outbox is applied again by the pack's projector.
    #[arg(long, value_name = "DIR")]
    pub pack: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct DeadLetterArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Apply the parked events again (after the fault is fixed).
    #[arg(long)]
    pub replay: bool,
}

#[derive(clap::Args)]
pub struct DbArgs {
    /// sqlite://PATH or postgres://USER@HOST:PORT/DB
    #[arg(long)]
    pub db: String,
    /// PostgreSQL schema holding the tool's tables.
    #[arg(long, default_value = DEFAULT_SCHEMA)]
    pub schema: String,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario file (see scenarios/).
    pub scenario: PathBuf,
    /// Database: sqlite://PATH (default: files in the output folder) or postgres://…
    #[arg(long)]
    pub db: Option<String>,
    /// A hot standby of --db (postgres://…), which the `replica` backend reads from.
    #[arg(long)]
    pub replica_db: Option<String>,
    /// A separate read store for the async backends' read models (sqlite://PATH or
    /// postgres://…, the same engine as --db; one file or schema per backend, like --db).
    #[arg(long)]
    pub read_db: Option<String>,
    /// Schema prefix on PostgreSQL (each backend gets <prefix>_<backend>).
    #[arg(long, default_value = DEFAULT_SCHEMA)]
    pub schema: String,
    /// Backends to run, comma-separated (overrides the scenario).
    #[arg(long, value_delimiter = ',', long_help = backends_help("Backends to run, comma-separated (overrides the scenario)."))]
    pub backends: Option<Vec<String>>,
    /// Run duration including warm-up, e.g. 30s (overrides the scenario).
    #[arg(long)]
    pub duration: Option<String>,
    /// Seed for the dataset and the op stream (overrides the scenario).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write rate in ops/s, or "max" for closed loop (overrides the scenario).
    #[arg(long)]
    pub write_rate: Option<String>,
    /// Read rate in ops/s, or "max" for closed loop (overrides the scenario).
    #[arg(long)]
    pub read_rate: Option<String>,
    /// Warm-up, e.g. 5s, excluded from the measurements (overrides the scenario).
    #[arg(long)]
    pub warmup: Option<String>,
    /// Concurrent writers (overrides the scenario).
    #[arg(long)]
    pub write_workers: Option<u32>,
    /// Concurrent readers (overrides the scenario; a `readers` sweep sets its own).
    #[arg(long)]
    pub read_workers: Option<u32>,
    /// Output folder (default reports/<scenario>-<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep the databases after the run and say where they are.
    #[arg(long)]
    pub keep_db: bool,
    /// Projector: exactly-once or naive (the negative control).
    #[arg(long, value_enum, default_value_t = ProjectorMode::ExactlyOnce)]
    pub projector: ProjectorMode,
    /// Connections per pool [default: one per worker plus two, at least 8]. With fewer than
    /// that, workers share the pool instead of keeping a connection each.
    #[arg(long)]
    pub pool_size: Option<u32>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Threads of the async runtime that drives the load. 1 (the default) runs every worker on
    /// one thread, which measured best on 2 cores (see BENCHMARKS.md, "Harness floor"); more
    /// helps a machine with cores to spare for the driver.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// NATS server of cqrs-broker (comma-separated for a cluster); JetStream must be enabled.
    #[arg(long, default_value = crate::broker::DEFAULT_URL)]
    pub nats: String,
    /// Copies of cqrs-broker's stream a JetStream cluster keeps (1 on a single server).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,
    /// Drive the I-th of N shares of the op stream, one process of N (README "Scale out"):
    /// op i is segment (i mod N) + 1's, at its time in the full-rate schedule.
    #[arg(long, value_name = "I/N")]
    pub segment: Option<String>,
    /// When every segment starts its load: RFC 3339 (2026-12-06T10:00:00Z) or Unix seconds.
    /// Segments other than 1 wait for the seeded database until then.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
    /// Seed the database the segments share and stop (before starting them).
    #[arg(long)]
    pub seed_only: bool,
}

#[derive(clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Which backend's dataset (decides read models and event log).
    #[arg(long, default_value = "cqrs-async", long_help = backends_help("Which backend's dataset (decides read models and event log)."))]
    pub backend: String,
    /// Take the dataset sizes and seed from this scenario (default sizes otherwise).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// A results.json written by `run`.
    pub results: PathBuf,
    /// Where to write the report (default: the folder holding the results file).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The results.json to compare against.
    pub base: PathBuf,
    /// The results.json being judged.
    pub new: PathBuf,
    /// Exit with 1 when a significant regression is larger than PCT percent.
    #[arg(long, value_name = "PCT")]
    pub fail_on_regression: Option<f64>,
    /// Compare even when the scenarios or op streams differ.
    #[arg(long)]
    pub force: bool,
}

impl RunArgs {
    /// The scenario values the command line replaces.
    fn overrides(&self) -> crate::scenario::Overrides {
        crate::scenario::Overrides {
            backends: self.backends.clone(),
            duration: self.duration.clone(),
            seed: self.seed,
            write_rate: self.write_rate.clone(),
            read_rate: self.read_rate.clone(),
            warmup: self.warmup.clone(),
            write_workers: self.write_workers,
            read_workers: self.read_workers,
        }
    }
}

impl Cmd {
    /// Threads of the async runtime: `--threads` for the commands that drive load, else one.
    pub fn threads(&self) -> usize {
        match self {
            Cmd::Run(a) => usize::from(a.threads),
            Cmd::Check(a) => usize::from(a.run.threads),
            _ => 1,
        }
    }
}

impl ValueEnum for ProjectorMode {
    fn value_variants<'a>() -> &'a [Self] {
        &[ProjectorMode::ExactlyOnce, ProjectorMode::Naive]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            ProjectorMode::ExactlyOnce => "exactly-once",
            ProjectorMode::Naive => "naive",
        }))
    }
}

/// Exit code of `compare --fail-on-regression` when no metric could be tested: the gate
/// could not judge, which is neither a pass (0) nor a regression (1).
pub const NOTHING_TESTED: u8 = 4;

/// A command that did not succeed: what to say, and the exit code (README "Exit codes":
/// 1 a check failed, 2 bad input or an unusable database, 3 the run itself failed).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// Exit 1: the command ran, and what it checked failed.
    fn check_failed(error: anyhow::Error) -> Failure {
        Failure { code: 1, error }
    }

    /// Exit 2: input the tool cannot use.
    fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 2,
            error: error.into(),
        }
    }
}

/// Errors that know their exit code.
macro_rules! failure_from {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Failure {
                Failure { code: e.exit_code(), error: e.into() }
            }
        }
    )*};
}

failure_from!(
    crate::db::DbError,
    crate::run::RunError,
    crate::run::projector::ProjectorProcessError,
    crate::projection::projector::ProjectorError,
    crate::verify::VerifyError,
    crate::pack::PackError,
    crate::pack::rebuild::PackRebuildError,
    crate::convergence::ConvergenceError,
);

/// `first` followed by the registered backends, one per line.
fn backends_help(first: &str) -> String {
    format!("{first}\n\n{}", crate::backend::registry::help())
}
