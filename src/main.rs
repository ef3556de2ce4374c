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
use cqrs_bench::check;
use cqrs_bench::db::{Db, DbError, DbUrl, OpenMode, DEFAULT_SCHEMA};
use cqrs_bench::projection::dead_letter;
use cqrs_bench::projection::projector::{
    pinning_sessions, rebuild, Projector, ProjectorConfig, ProjectorError, ProjectorMode,
};
use cqrs_bench::projection::ProjectionName;
use cqrs_bench::report::{self, table};
use cqrs_bench::results::Results;
use cqrs_bench::scenario::{parse_duration, Rate, Scenario};
use cqrs_bench::verify::{verify, VerifyError};
use cqrs_bench::workload::runner::{default_out_dir, run_scenario, RunError, RunOptions};
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
    /// Write report.md, report.html and plots/*.svg from a saved results.json.
    Report(ReportArgs),
    /// Compare two runs of the same scenario, metric by metric, with Welch's t-test.
    Compare(CompareArgs),
    /// The CI gate: run a scenario, verify, evaluate its thresholds; exit 1 when any fails.
    Check(CheckArgs),
    /// Rebuild read models from the event log (a cqrs-async database).
    Rebuild(RebuildArgs),
    /// List the dead-lettered events of a cqrs-async database, or replay them.
    DeadLetters(DeadLetterArgs),
    /// Run the async projector as its own process, as a team would deploy it.
    Projector(ProjectorArgs),
    /// Drop what the tool created in a database (refuses anything it did not create).
    Drop(DbArgs),
}

#[derive(clap::Args)]
struct ProjectorArgs {
    #[command(flatten)]
    db: DbArgs,
    #[arg(long, default_value_t = 500)]
    batch_size: i64,
    /// Idle poll interval, e.g. 50ms.
    #[arg(long, default_value = "50ms")]
    poll_interval: String,
    /// Exit once every committed event is applied (instead of running until stopped).
    #[arg(long)]
    until_idle: bool,
    /// Fault drills: hold each batch's transaction open this long before commit, e.g. 50ms.
    #[arg(long)]
    hold_before_commit: Option<String>,
}

#[derive(clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Also write the outcome as JUnit XML.
    #[arg(long)]
    junit: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RebuildArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Only this read model (product_catalog, order_summary, daily_sales, product_sales).
    #[arg(long)]
    projection: Option<String>,
    /// Events per transaction; a rebuild moves the whole log, so batches are large.
    #[arg(long, default_value_t = 10_000)]
    batch_size: i64,
}

#[derive(clap::Args)]
struct DeadLetterArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Apply the parked events again (after the fault is fixed).
    #[arg(long)]
    replay: bool,
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
    /// Write rate in ops/s, or "max" for closed loop (overrides the scenario).
    #[arg(long)]
    write_rate: Option<String>,
    /// Concurrent writers (overrides the scenario).
    #[arg(long)]
    write_workers: Option<u32>,
    /// Concurrent readers (overrides the scenario; a `readers` sweep sets its own).
    #[arg(long)]
    read_workers: Option<u32>,
    /// Output folder (default reports/<scenario>-<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the databases after the run and say where they are.
    #[arg(long)]
    keep_db: bool,
    /// Projector: exactly-once (default) or naive (the negative control).
    #[arg(long, default_value = "exactly-once")]
    projector: String,
    /// Connections per pool [default: one per worker plus two, at least 8]. With fewer than
    /// that, workers share the pool instead of keeping a connection each.
    #[arg(long)]
    pool_size: Option<u32>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Threads of the async runtime that drives the load. 1 (the default) runs every worker on
    /// one thread, which measured best on 2 cores (see BENCHMARKS.md, "Harness floor"); more
    /// helps a machine with cores to spare for the driver.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
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

#[derive(clap::Args)]
struct ReportArgs {
    /// A results.json written by `run`.
    results: PathBuf,
    /// Where to write the report (default: the folder holding the results file).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// The results.json to compare against.
    base: PathBuf,
    /// The results.json being judged.
    new: PathBuf,
    /// Exit with 1 when a significant regression is larger than PCT percent.
    #[arg(long, value_name = "PCT")]
    fail_on_regression: Option<f64>,
    /// Compare even when the scenarios or op streams differ.
    #[arg(long)]
    force: bool,
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

/// The scenario with the command line's overrides, and where and how to run it.
fn plan_run(args: &RunArgs) -> Result<(Scenario, RunOptions), Failure> {
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
                "--duration: {} must be longer than the scenario's warm-up ({})",
                cqrs_bench::scenario::format_duration(d),
                cqrs_bench::scenario::format_duration(scenario.warmup)
            )));
        }
        scenario.duration = d;
    }
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if let Some(rate) = &args.write_rate {
        scenario.writes.rate = match rate.trim() {
            "max" => Rate::Max,
            r => match r.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Rate::PerSecond(v),
                _ => {
                    return Err(bad_input(anyhow::anyhow!(
                        "--write-rate: expected ops per second > 0 or \"max\", got \"{r}\""
                    )))
                }
            },
        };
        if scenario.writes.mix.is_empty() {
            return Err(bad_input(anyhow::anyhow!(
                "--write-rate: the scenario has no write mix"
            )));
        }
    }
    if let Some(n) = args.write_workers {
        if n == 0 {
            return Err(bad_input(anyhow::anyhow!("--write-workers: must be >= 1")));
        }
        scenario.writes.workers = n;
    }
    if let Some(n) = args.read_workers {
        if n == 0 {
            return Err(bad_input(anyhow::anyhow!("--read-workers: must be >= 1")));
        }
        scenario.reads.workers = n;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&scenario));
    let mut opts = RunOptions::defaults(out);
    if let Some(db) = &args.db {
        opts.db = parse_url(db)?;
    }
    cqrs_bench::db::validate_schema_name(&args.schema).map_err(bad_input)?;
    opts.schema = args.schema.clone();
    opts.keep_db = args.keep_db;
    opts.projector_mode = parse_projector(&args.projector)?;
    opts.pool_size = args.pool_size.map(|n| n.max(1));
    opts.show_progress = !args.quiet;
    opts.threads = usize::from(args.threads);
    Ok((scenario, opts))
}

async fn execute_run(scenario: &Scenario, opts: &RunOptions) -> Result<Results, Failure> {
    if opts.show_progress {
        eprintln!(
            "running {} ({}) on {} for {} per backend",
            scenario.name,
            scenario.description,
            opts.db.engine().name(),
            cqrs_bench::scenario::format_duration(scenario.duration)
        );
    }
    let results = run_scenario(scenario, opts).await.map_err(|e| match e {
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
    println!("results: {}", opts.out_dir.join("results.json").display());
    Ok(results)
}

async fn cmd_run(args: RunArgs) -> Result<(), Failure> {
    let (scenario, opts) = plan_run(&args)?;
    let results = execute_run(&scenario, &opts).await?;
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

async fn cmd_check(args: CheckArgs) -> Result<(), Failure> {
    let (scenario, opts) = plan_run(&args.run)?;
    // Thresholds are input: a bad one stops the check before anything runs.
    let thresholds = check::parse_all(&scenario.thresholds).map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|(path, msg)| format!("{}: {path}: {msg}", args.run.scenario.display()))
            .collect();
        bad_input(anyhow::anyhow!(lines.join("\n")))
    })?;
    let results = execute_run(&scenario, &opts).await?;
    let lines = check::evaluate(&results, &thresholds);
    println!();
    for l in &lines {
        println!(
            "{} {:<24} {:<48} {}",
            if l.passed { "PASS" } else { "FAIL" },
            l.run,
            l.name,
            l.measured
        );
        if !l.passed {
            for d in &l.detail {
                println!("       {d}");
            }
        }
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, check::junit(&scenario.name, &lines))
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(bad_input)?;
    }
    let failed = lines.iter().filter(|l| !l.passed).count();
    if failed > 0 {
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!("check: {failed} of {} checks failed", lines.len()),
        });
    }
    println!("check: all {} checks passed", lines.len());
    Ok(())
}

fn parse_projection(name: &Option<String>) -> Result<Vec<ProjectionName>, Failure> {
    match name {
        None => Ok(ProjectionName::ALL.to_vec()),
        Some(n) => ProjectionName::from_name(n).map(|p| vec![p]).ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "--projection: unknown read model \"{n}\" (expected product_catalog, order_summary, daily_sales or product_sales)"
            ))
        }),
    }
}

async fn open_ours(args: &DbArgs) -> Result<Db, Failure> {
    open_ours_with(args, 2).await
}

async fn open_ours_with(args: &DbArgs, pool_size: u32) -> Result<Db, Failure> {
    let url = parse_url(&args.db)?;
    let db = Db::open_with(&url, &args.schema, pool_size, OpenMode::Existing)
        .await
        .map_err(classify_db)?;
    cqrs_bench::db::schema::require_ours(&db)
        .await
        .map_err(classify_db)?;
    Ok(db)
}

fn projector_failure(e: ProjectorError) -> Failure {
    match e {
        ProjectorError::Db(e) => classify_db(e),
        ProjectorError::NoEventLog(_) => bad_input(e),
        other => Failure {
            code: 3,
            error: other.into(),
        },
    }
}

async fn cmd_rebuild(args: RebuildArgs) -> Result<(), Failure> {
    let projections = parse_projection(&args.projection)?;
    // A connection per read model: on PostgreSQL they are rebuilt concurrently.
    let db = open_ours_with(&args.db, projections.len() as u32 + 1).await?;
    let report = rebuild(&db, &projections, args.batch_size.max(1))
        .await
        .map_err(projector_failure)?;
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    println!(
        "rebuilt {} from {} events in {:.2}s ({:.0} events/s)",
        names.join(", "),
        report.events,
        report.seconds,
        report.events_per_second
    );
    db.close().await;
    Ok(())
}

async fn cmd_projector(args: ProjectorArgs) -> Result<(), Failure> {
    let duration = |flag: &str, v: &str| {
        parse_duration(v).map_err(|e| bad_input(anyhow::anyhow!("--{flag}: {e}")))
    };
    let config = ProjectorConfig {
        batch_size: args.batch_size.max(1),
        poll_interval: duration("poll-interval", &args.poll_interval)?,
        hold_before_commit: match &args.hold_before_commit {
            Some(v) => duration("hold-before-commit", v)?,
            None => Duration::ZERO,
        },
        ..ProjectorConfig::default()
    };
    let db = open_ours(&args.db).await?;
    let state = cqrs_bench::db::schema::meta_get(&db, "state")
        .await
        .map_err(classify_db)?
        .unwrap_or_default();
    if !state.contains("event_log") {
        return Err(bad_input(anyhow::anyhow!(
            "{} has no event log (only a cqrs-async dataset has one)",
            db.url.redacted()
        )));
    }
    let projector = Arc::new(Projector::new(db.clone(), config));
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(projector.clone().run(wake, stopped));
    eprintln!(
        "projector running on {} (Ctrl-C or SIGTERM stops it)",
        db.url.redacted()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")
        .map_err(bad_input)?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = tick.tick() => {
                let backlog = projector.backlog().await.unwrap_or(-1);
                let events = projector.stats.events.load(Ordering::Relaxed);
                let errors = projector.stats.errors.load(Ordering::Relaxed);
                println!("applied {events} events · backlog {backlog} · errors {errors}");
                if backlog > 0 && projector.stats.horizon_waits.load(Ordering::Relaxed) > 0 {
                    let pins = pinning_sessions(&db).await.unwrap_or_default();
                    if !pins.is_empty() {
                        println!(
                            "lag, not loss: committed events wait behind open transactions: {}",
                            pins.join(", ")
                        );
                    }
                }
                if args.until_idle && backlog == 0 {
                    break;
                }
            }
        }
    }
    let _ = stop.send(true);
    let _ = task.await;
    db.close().await;
    Ok(())
}

async fn cmd_drop(args: DbArgs) -> Result<(), Failure> {
    let url = parse_url(&args.db)?;
    let db = Db::open_with(&url, &args.schema, 1, OpenMode::Existing)
        .await
        .map_err(classify_db)?;
    cqrs_bench::db::schema::drop_all(&db)
        .await
        .map_err(classify_db)?;
    db.close().await;
    println!("dropped the tool's tables from {}", url.redacted());
    Ok(())
}

async fn cmd_dead_letters(args: DeadLetterArgs) -> Result<(), Failure> {
    let db = open_ours(&args.db).await?;
    let sql_failure = |e: sqlx::Error| classify_db(DbError::Sql(e));
    if args.replay {
        let r = dead_letter::replay(&db, &ProjectionName::ALL)
            .await
            .map_err(sql_failure)?;
        println!(
            "replayed {} dead letters; {} still failing",
            r.replayed, r.still_failing
        );
    }
    let letters = dead_letter::list(&db).await.map_err(sql_failure)?;
    for d in &letters {
        println!(
            "{:<16} seq {:<8} {:<14} attempts {} · {}",
            d.projection, d.seq, d.stream, d.attempts, d.error
        );
    }
    println!("{} dead letters", letters.len());
    db.close().await;
    if args.replay && !letters.is_empty() {
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!("{} events still dead-lettered", letters.len()),
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
        None => (1, cqrs_bench::dataset::DatasetSpec::default()),
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
    let db = open_ours(&args).await?;
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

fn load_results(path: &std::path::Path) -> Result<cqrs_bench::results::Results, Failure> {
    cqrs_bench::results::Results::load(path).map_err(bad_input)
}

async fn cmd_report(args: ReportArgs) -> Result<(), Failure> {
    let results = load_results(&args.results)?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.results
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default()
    });
    let written = report::write_report(&results, &out).map_err(bad_input)?;
    println!("{}", report::verdict::verdict(&results).plain_headline());
    println!("report: {}", written.html.display());
    println!("        {}", written.markdown.display());
    println!(
        "plots:  {} in {}",
        written.plots.len(),
        out.join("plots").display()
    );
    Ok(())
}

async fn cmd_compare(args: CompareArgs) -> Result<(), Failure> {
    if let Some(p) = args.fail_on_regression {
        if !(p.is_finite() && p >= 0.0) {
            return Err(bad_input(anyhow::anyhow!(
                "--fail-on-regression: expected a percentage >= 0, got {p}"
            )));
        }
    }
    let base = load_results(&args.base)?;
    let new = load_results(&args.new)?;
    let comparison = report::compare::compare(&base, &new, args.force).map_err(bad_input)?;
    print!("{}", comparison.render());
    if let Some(pct) = args.fail_on_regression {
        let over = comparison.regressions_over(pct);
        if !over.is_empty() {
            return Err(Failure {
                code: 1,
                error: anyhow::anyhow!(
                    "{} significant regressions larger than {pct}%: {}",
                    over.len(),
                    over.iter()
                        .map(|c| format!("{} {}", c.run, c.metric))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // By default one thread drives every worker: the work is waiting on the database, and
    // hopping between runtime threads costs more CPU (context switches) than it saves on 2
    // cores. `--threads N` gives the load N.
    let threads = match &cli.command {
        Cmd::Run(a) => a.threads,
        Cmd::Check(a) => a.run.threads,
        _ => 1,
    };
    let mut builder = if threads > 1 {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(usize::from(threads));
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
    {
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
            Cmd::Report(a) => cmd_report(a).await,
            Cmd::Compare(a) => cmd_compare(a).await,
            Cmd::Check(a) => cmd_check(a).await,
            Cmd::Rebuild(a) => cmd_rebuild(a).await,
            Cmd::DeadLetters(a) => cmd_dead_letters(a).await,
            Cmd::Projector(a) => cmd_projector(a).await,
            Cmd::Drop(a) => cmd_drop(a).await,
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
