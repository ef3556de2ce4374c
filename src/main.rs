//! The `cqrs-bench` command line: parses arguments and dispatches; the work is in the library.
//!
//! Exit codes: 0 success · 1 a check failed (verify found mismatches) · 2 bad input or an
//! unusable database (usage, scenario file, URL, connection, a schema the tool does not own) ·
//! 3 the run itself failed (a database error mid-run).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cqrs_bench::backend::{prepare, BackendKind};
use cqrs_bench::db::{Db, DbError, DbUrl, DEFAULT_SCHEMA};
use cqrs_bench::projection::projector::ProjectorMode;
use cqrs_bench::report::table;
use cqrs_bench::scenario::{parse_duration, Scenario};
use cqrs_bench::verify::{verify, VerifyError};
use cqrs_bench::workload::runner::{default_out_dir, run_scenario, RunError, RunOptions};

#[derive(Parser)]
#[command(
    name = "cqrs-bench",
    version,
    about = "Does CQRS pay off for your workload? Replays it against a normalized model and two CQRS variants and measures."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario against its backends and write results.json and a summary.
    Run(RunArgs),
    /// Create the tool's tables in a database and load a scenario's dataset.
    Seed(SeedArgs),
    /// Compare every read model with the truth computed from the normalized tables.
    Verify(DbArgs),
}

#[derive(clap::Args)]
struct DbArgs {
    /// sqlite://PATH or postgres://USER@HOST:PORT/DB
    #[arg(long)]
    db: String,
    /// PostgreSQL schema holding the tool's tables.
    #[arg(long, default_value = DEFAULT_SCHEMA)]
    schema: String,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario file (see scenarios/).
    scenario: PathBuf,
    /// Database: sqlite://PATH (default: files in the output folder) or postgres://…
    #[arg(long)]
    db: Option<String>,
    /// Schema prefix on PostgreSQL (each backend gets <prefix>_<backend>).
    #[arg(long, default_value = DEFAULT_SCHEMA)]
    schema: String,
    /// Backends to run, comma-separated (overrides the scenario).
    #[arg(long, value_delimiter = ',')]
    backends: Option<Vec<String>>,
    /// Run duration including warm-up, e.g. 30s (overrides the scenario).
    #[arg(long)]
    duration: Option<String>,
    /// Seed for the dataset and the op stream (overrides the scenario).
    #[arg(long)]
    seed: Option<u64>,
    /// Output folder (default reports/<scenario>-<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the databases after the run and say where they are.
    #[arg(long)]
    keep_db: bool,
    /// Projector: exactly-once (default) or naive (the negative control).
    #[arg(long, default_value = "exactly-once")]
    projector: String,
    /// Connections per pool.
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct SeedArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Which backend's dataset (decides read models and event log).
    #[arg(long, default_value = "cqrs-async")]
    backend: String,
    /// Take the dataset sizes and seed from this scenario (default sizes otherwise).
    #[arg(long)]
    scenario: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
}

/// An error with the exit code it should produce.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

fn classify_db(e: DbError) -> Failure {
    match e {
        DbError::Sql(_) => Failure {
            code: 3,
            error: e.into(),
        },
        other => bad_input(other),
    }
}

fn parse_backend(name: &str) -> Result<BackendKind, Failure> {
    BackendKind::from_name(name).ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "unknown backend \"{name}\" (expected normalized, cqrs-sync or cqrs-async)"
        ))
    })
}

fn parse_projector(name: &str) -> Result<ProjectorMode, Failure> {
    match name {
        "exactly-once" => Ok(ProjectorMode::ExactlyOnce),
        "naive" => Ok(ProjectorMode::Naive),
        other => Err(bad_input(anyhow::anyhow!(
            "unknown projector \"{other}\" (expected exactly-once or naive)"
        ))),
    }
}

fn parse_url(s: &str) -> Result<DbUrl, Failure> {
    DbUrl::parse(s).map_err(bad_input)
}

fn load_scenario(path: &std::path::Path) -> Result<Scenario, Failure> {
    Scenario::load(path).map_err(bad_input)
}

async fn cmd_run(args: RunArgs) -> Result<(), Failure> {
    let mut scenario = load_scenario(&args.scenario)?;
    if let Some(names) = &args.backends {
        scenario.backends = names
            .iter()
            .map(|n| parse_backend(n.trim()))
            .collect::<Result<_, _>>()?;
        if scenario.backends.is_empty() {
            return Err(bad_input(anyhow::anyhow!(
                "--backends: give at least one backend"
            )));
        }
    }
    if let Some(d) = &args.duration {
        let d = parse_duration(d).map_err(|e| bad_input(anyhow::anyhow!("--duration: {e}")))?;
        if d <= scenario.warmup {
            return Err(bad_input(anyhow::anyhow!(
                "--duration: {d:?} must be longer than the scenario's warm-up ({:?})",
                scenario.warmup
            )));
        }
        scenario.duration = d;
    }
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&scenario));
    let mut opts = RunOptions::defaults(out.clone());
    if let Some(db) = &args.db {
        opts.db = parse_url(db)?;
    }
    cqrs_bench::db::validate_schema_name(&args.schema).map_err(bad_input)?;
    opts.schema = args.schema.clone();
    opts.keep_db = args.keep_db;
    opts.projector_mode = parse_projector(&args.projector)?;
    opts.pool_size = args.pool_size.max(1);
    opts.show_progress = !args.quiet;
    eprintln!(
        "running {} ({}) on {} for {:?} per backend",
        scenario.name,
        scenario.description,
        opts.db.engine().name(),
        scenario.duration
    );
    let results = run_scenario(&scenario, &opts).await.map_err(|e| match e {
        RunError::Db(e) => classify_db(e),
        RunError::Io { .. } => bad_input(e),
        other => Failure {
            code: 3,
            error: other.into(),
        },
    })?;
    println!("{}", table::summary(&results));
    for run in &results.runs {
        if let Some(kept) = &run.kept_database {
            println!("kept {} database: {kept}", run.backend);
        }
    }
    println!("results: {}", out.join("results.json").display());
    if results
        .runs
        .iter()
        .any(|r| r.verify.as_ref().is_some_and(|v| !v.ok()))
    {
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!("verify found read models that differ from the truth"),
        });
    }
    Ok(())
}

async fn cmd_seed(args: SeedArgs) -> Result<(), Failure> {
    let url = parse_url(&args.db.db)?;
    let kind = parse_backend(&args.backend)?;
    let (mut seed, spec) = match &args.scenario {
        Some(p) => {
            let s = load_scenario(p)?;
            (s.seed, s.dataset)
        }
        None => (1, cqrs_bench::db::seed::DatasetSpec::default()),
    };
    if let Some(s) = args.seed {
        seed = s;
    }
    let (db, report) = prepare(&url, &args.db.schema, kind, seed, &spec, 4)
        .await
        .map_err(classify_db)?;
    db.close().await;
    println!(
        "seeded {} for {kind}: {} rows, {} events in {:.2}s ({:.0} rows/s)",
        url.redacted(),
        report.rows,
        report.events,
        report.seconds,
        report.rows_per_second
    );
    Ok(())
}

async fn cmd_verify(args: DbArgs) -> Result<(), Failure> {
    let url = parse_url(&args.db)?;
    let db = Db::open(&url, &args.schema, 2).await.map_err(classify_db)?;
    let report = verify(&db).await.map_err(|e| match e {
        VerifyError::Db(e) => classify_db(e),
        other => bad_input(other),
    })?;
    for m in &report.models {
        println!(
            "{:<16} {:>8} rows expected {:>8} found {:>6} mismatches",
            m.read_model.name(),
            m.rows_expected,
            m.rows_actual,
            m.mismatches
        );
        for d in &m.first_diffs {
            println!("    {d}");
        }
    }
    db.close().await;
    if report.ok() {
        println!("verify: ok");
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            error: anyhow::anyhow!("verify: {} mismatches", report.mismatches),
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new().context("cannot start the async runtime") {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(3);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Cmd::Run(a) => cmd_run(a).await,
            Cmd::Seed(a) => cmd_seed(a).await,
            Cmd::Verify(a) => cmd_verify(a).await,
        }
    });
    // Give pools a moment to close cleanly without hanging on them.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.error);
            ExitCode::from(f.code)
        }
    }
}
