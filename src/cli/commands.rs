//! One handler per subcommand: each turns its arguments into library calls and prints what
//! they return.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context};

use super::{
    CheckArgs, CheckProjectionsArgs, Cmd, CompareArgs, DbArgs, DeadLetterArgs, Failure, MergeArgs,
    PackCheckArgs, PackCmd, ProjectorArgs, RebuildArgs, ReportArgs, RunArgs, SeedArgs, VerifyArgs,
};
use crate::backend::{prepare, BackendKind};
use crate::check;
use crate::db::lock::{Locks, Place};
use crate::db::{schema, state, validate_schema_name, Db, DbError, DbUrl, OpenMode};
use crate::format::one_of;
use crate::pack::backend::PACK_KEY;
use crate::pack::exec::CompiledPack;
use crate::pack::Pack;
use crate::projection::projector::{ProjectorConfig, ProjectorError};
use crate::projection::rebuild::{rebuild, rebuild_into, rebuild_search};
use crate::projection::{dead_letter, search, ProjectionName};
use crate::report::{self, table};
use crate::results::Results;
use crate::run::projector::run_projector;
use crate::run::{default_out_dir, run_scenario, RunOptions, StopSignal, INTERRUPTED_EXIT};
use crate::scenario::{format_duration, parse_duration, Scenario};
use crate::verify::{verify, verify_pack, verify_read_store};

/// Runs the subcommand.
pub async fn dispatch(command: Cmd) -> Result<(), Failure> {
    match command {
        Cmd::Run(a) => cmd_run(a).await,
        Cmd::Seed(a) => cmd_seed(a).await,
        Cmd::Verify(a) => cmd_verify(a).await,
        Cmd::Report(a) => cmd_report(a),
        Cmd::Compare(a) => cmd_compare(a),
        Cmd::Check(a) => cmd_check(a).await,
        Cmd::Rebuild(a) => cmd_rebuild(a).await,
        Cmd::DeadLetters(a) => cmd_dead_letters(a).await,
        Cmd::Projector(a) => cmd_projector(a).await,
        Cmd::Drop(a) => cmd_drop(a).await,
        Cmd::Merge(a) => cmd_merge(a),
        Cmd::Pack(PackCmd::Check(a)) => cmd_pack_check(a).await,
        Cmd::CheckProjections(a) => cmd_check_projections(a).await,
    }
}

/// `pack check DIR [--db URL]`: the pack loaded and checked on the engine; every problem at
/// once (exit 2), or what it holds.
async fn cmd_pack_check(args: PackCheckArgs) -> Result<(), Failure> {
    let url = args.db.as_deref().map(parse_url).transpose()?;
    let pack = crate::pack::check(&args.dir, url.as_ref()).await?;
    println!("ok: {}", pack.summary());
    Ok(())
}

/// `NAME=VALUE` of `--size`.
fn parse_size(text: &str) -> Result<(String, i64), Failure> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| Failure::bad_input(anyhow!("--size {text}: expected NAME=VALUE")))?;
    let value: i64 = value
        .trim()
        .parse()
        .map_err(|_| Failure::bad_input(anyhow!("--size {text}: {value:?} is not an integer")))?;
    if !(0..=crate::pack::MAX_SIZE).contains(&value) {
        return Err(Failure::bad_input(anyhow!(
            "--size {text}: must be 0 to {}",
            crate::pack::MAX_SIZE
        )));
    }
    Ok((name.trim().to_string(), value))
}

async fn cmd_check_projections(args: CheckProjectionsArgs) -> Result<(), Failure> {
    use crate::convergence::{self, file::ReplayFile, history::Bounds, CheckOptions};
    let url = args.db.as_deref().map(parse_url).transpose()?;
    let saved = match &args.replay {
        Some(path) => Some(ReplayFile::read(path).map_err(|e| Failure::bad_input(anyhow!(e)))?),
        None => None,
    };
    let dir = match (&args.dir, &saved) {
        (Some(d), _) => d.clone(),
        (None, Some(f)) => PathBuf::from(&f.pack_dir),
        (None, None) => {
            return Err(Failure::bad_input(anyhow!(
                "check-projections: give the pack's folder (or --replay FILE)"
            )))
        }
    };
    if args.histories == 0 || args.max_commands == 0 || args.max_batch == 0 {
        return Err(Failure::bad_input(anyhow!(
            "--histories, --max-commands and --max-batch must be at least 1"
        )));
    }
    let pack = crate::pack::check(&dir, url.as_ref()).await?;
    if let Some(saved) = saved {
        let path = args.replay.clone().unwrap_or_default();
        let found = tokio::task::spawn_blocking(move || {
            convergence::replay(pack, url.as_ref(), &saved).map(|c| (c, saved))
        })
        .await
        .map_err(|e| Failure::bad_input(anyhow!("the check stopped: {e}")))??;
        return match found {
            (Some(c), saved) => {
                outln!(
                    "DIVERGED {} ({}), replayed from {}",
                    saved.guarantee,
                    saved.pack,
                    path.display()
                );
                print_counterexample(&c);
                Err(Failure::check_failed(anyhow!(
                    "check-projections: the replayed history diverges"
                )))
            }
            (None, saved) => {
                outln!(
                    "converges: the replayed history ({}, {}) shows no divergence here",
                    saved.guarantee,
                    saved.pack
                );
                Ok(())
            }
        };
    }
    let options = CheckOptions {
        histories: args.histories,
        seed: args.seed,
        bounds: Bounds {
            max_ops: args.max_commands,
            max_batch: args.max_batch,
        },
        sizes: args
            .sizes
            .iter()
            .map(|s| parse_size(s))
            .collect::<Result<_, _>>()?,
        require_at_least_once: args.require_at_least_once,
    };
    let report = tokio::task::spawn_blocking(move || {
        convergence::check_projections(pack, url.as_ref(), &options)
    })
    .await
    .map_err(|e| Failure::bad_input(anyhow!("the check stopped: {e}")))??;
    outln!(
        "check-projections {} on {} · seed {} · {} histories in {:.1} s ({:.0} a minute)",
        report.pack,
        report.engine.display_name(),
        report.seed,
        report.histories,
        report.seconds,
        report.histories as f64 * 60.0 / report.seconds.max(1e-9)
    );
    for f in &report.findings {
        let mark = match (&f.counterexample, f.required) {
            (None, _) => "PASS",
            (Some(_), true) => "FAIL",
            (Some(_), false) => "NOTE",
        };
        let what = match (&f.guarantee, &f.counterexample) {
            (convergence::Guarantee::Idempotent(_), None) => "idempotent on its own".to_string(),
            (convergence::Guarantee::Idempotent(_), Some(_)) => {
                "NOT idempotent on its own: applied twice, it changes the read models".to_string()
            }
            (_, None) => format!("{} histories converged", f.histories),
            (_, Some(_)) => "diverged".to_string(),
        };
        outln!("{mark} {:<40} {what}", f.guarantee.name());
        if let Some(c) = &f.counterexample {
            print_counterexample(c);
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("cannot create {}", args.out.display()))
                .map_err(Failure::bad_input)?;
            let name = f.guarantee.name().replace(':', "-");
            let path = args
                .out
                .join(format!("{}-{name}-seed{}.json", report.pack, report.seed));
            ReplayFile::new(&report, f, c)
                .write(&path)
                .with_context(|| format!("cannot write {}", path.display()))
                .map_err(Failure::bad_input)?;
            outln!(
                "       replay: cqrs-bench check-projections --replay {}",
                path.display()
            );
        }
    }
    if let Some(path) = &args.junit {
        let suite = format!("check-projections {}", report.pack);
        std::fs::write(path, check::junit(&suite, &report.lines()))
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::bad_input)?;
    }
    if !report.passed() {
        return Err(Failure::check_failed(anyhow!(
            "check-projections: a required guarantee diverged"
        )));
    }
    Ok(())
}

/// A shrunk counterexample, as a person reads it.
fn print_counterexample(c: &crate::convergence::Counterexample) {
    outln!("       seed {} · {}", c.seed, c.history.rates);
    outln!("       commands, in order:");
    for op in &c.commands {
        outln!("         {op}");
    }
    outln!("       events, in log order:");
    for e in &c.events {
        outln!("         {e}");
    }
    if c.faults.is_empty() {
        outln!("       faults: none (each event delivered once, in order)");
    }
    for f in &c.faults {
        outln!("       fault: {f}");
    }
    outln!(
        "       delivered (batches of {}): {:?}",
        c.history.batch_size,
        c.deliveries
    );
    for line in c.divergence.to_string().lines() {
        outln!("       {line}");
    }
}

fn parse_url(s: &str) -> Result<DbUrl, Failure> {
    DbUrl::parse(s).map_err(Failure::bad_input)
}

fn parse_backend(name: &str) -> Result<BackendKind, Failure> {
    BackendKind::from_name(name).ok_or_else(|| {
        let names = crate::backend::registry::names();
        Failure::bad_input(anyhow!(
            "unknown backend \"{name}\" (expected {})",
            one_of(&names)
        ))
    })
}

/// The scenario with the command line's overrides, and where and how to run it.
fn plan_run(args: &RunArgs) -> Result<(Scenario, RunOptions), Failure> {
    let scenario =
        Scenario::load_with(&args.scenario, &args.overrides()).map_err(Failure::bad_input)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&scenario));
    let mut opts = RunOptions::defaults(out);
    if let Some(db) = &args.db {
        opts.db = parse_url(db)?;
    }
    scenario
        .refuse_on(opts.db.engine(), &args.scenario)
        .map_err(Failure::bad_input)?;
    if let Some(standby) = &args.replica_db {
        let standby = parse_url(standby)?;
        if standby.engine() != crate::db::Engine::Postgres {
            return Err(Failure::bad_input(anyhow!(
                "--replica-db: {} is not a PostgreSQL URL (a hot standby of --db)",
                standby.redacted()
            )));
        }
        opts.replica_db = Some(standby);
    }
    let needs_replica: Vec<&str> = scenario
        .backends
        .iter()
        .filter(|b| crate::backend::registry::entry(**b).needs_replica)
        .map(|b| b.name())
        .collect();
    if !needs_replica.is_empty() && opts.replica_db.is_none() {
        return Err(Failure::bad_input(anyhow!(
            "{}: backends: {} reads from a hot standby: give its URL with --replica-db",
            args.scenario.display(),
            needs_replica.join(", ")
        )));
    }
    validate_schema_name(&args.schema).map_err(Failure::bad_input)?;
    opts.schema = args.schema.clone();
    if let Some(read) = &args.read_db {
        opts.read_db = Some(plan_read_store(&args.scenario, &scenario, &opts, read)?);
    }
    opts.keep_db = args.keep_db;
    opts.projector_mode = args.projector;
    opts.pool_size = args.pool_size.map(|n| n.max(1));
    opts.show_progress = !args.quiet;
    opts.threads = usize::from(args.threads);
    opts.broker.url = args.nats.clone();
    opts.broker.replicas = usize::from(args.nats_replicas);
    opts.scale_out = crate::run::scale_out::ScaleOut {
        segment: args
            .segment
            .as_deref()
            .map(crate::workload::segment::Segment::parse)
            .transpose()
            .map_err(Failure::bad_input)?,
        start_at: args
            .start_at
            .as_deref()
            .map(crate::run::scale_out::parse_start_at)
            .transpose()
            .map_err(Failure::bad_input)?,
        seed_only: args.seed_only,
    };
    if opts.scale_out.shares_db() && args.db.is_none() {
        return Err(Failure::bad_input(anyhow!(
            "--segment {} shares one database between the processes: give it with --db",
            opts.scale_out.segment()
        )));
    }
    Ok((scenario, opts))
}

/// The separate read store of a run (`--read-db`): the same engine as --db, somewhere else,
/// and only for backends whose read models a projector feeds.
fn plan_read_store(
    file: &Path,
    scenario: &Scenario,
    opts: &RunOptions,
    read: &str,
) -> Result<DbUrl, Failure> {
    let read = parse_url(read)?;
    if read.engine() != opts.db.engine() {
        return Err(Failure::bad_input(anyhow!(
            "--read-db: {} is {}, --db is {}: the read store uses the same engine",
            read.redacted(),
            read.engine().display_name(),
            opts.db.engine().display_name()
        )));
    }
    if read.same_database(&opts.db) {
        return Err(Failure::bad_input(anyhow!(
            "--read-db: {} is the database of --db; give another database or file",
            read.redacted()
        )));
    }
    let refused: Vec<&str> = scenario
        .backends
        .iter()
        .filter(|b| !crate::backend::read_db::supported(**b))
        .map(|b| b.name())
        .collect();
    if !refused.is_empty() {
        return Err(Failure::bad_input(anyhow!(
            "{}: backends: {} keep no read models apart from the write model; with --read-db \
             run {}",
            file.display(),
            refused.join(", "),
            crate::backend::registry::with_separate_read_store()
        )));
    }
    Ok(read)
}

/// Runs the scenario, writes its report, and prints the summary.
async fn execute_run(scenario: &Scenario, opts: &RunOptions) -> Result<Results, Failure> {
    if opts.show_progress {
        eprintln!(
            "running {} ({}) on {} for {} per backend",
            scenario.name,
            scenario.description,
            opts.db.engine().name(),
            format_duration(scenario.duration)
        );
    }
    if crate::backend::registry::any_needs_broker(&scenario.backends) {
        // Like the database's: one connection attempt before anything is seeded, so an
        // unreachable broker is a one-line error in seconds.
        crate::broker::connect(&opts.broker.url)
            .await
            .map_err(Failure::bad_input)?;
    }
    let results = run_scenario(scenario, opts).await?;
    if results.interrupted {
        // Partial numbers: kept, marked, never reported on or decided on.
        for run in &results.runs {
            if let Some(kept) = &run.kept_database {
                eprintln!("kept {} database: {kept}", run.backend);
            }
        }
        return Err(Failure {
            code: INTERRUPTED_EXIT,
            error: anyhow!(
                "interrupted: what was measured until the stop is in {} (marked interrupted)",
                opts.out_dir.join("results.json").display()
            ),
        });
    }
    report::write_report(&results, &opts.out_dir).map_err(Failure::bad_input)?;
    outln!("{}", table::summary(&results));
    for run in &results.runs {
        if let Some(kept) = &run.kept_database {
            outln!("kept {} database: {kept}", run.backend);
        }
    }
    outln!("results: {}", opts.out_dir.join("results.json").display());
    Ok(results)
}

/// Listens for SIGINT and SIGTERM: the first asks the command to stop (it says so and
/// finishes what it must), a second exits at once.
fn stop_on_signals() -> StopSignal {
    use tokio::signal::unix::{signal, SignalKind};
    let (request, stop) = StopSignal::channel();
    // Registered here, before the command goes on: a signal that comes before the listening
    // task first runs is still seen.
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return stop;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("interrupted: stopping (a second Ctrl-C quits at once)");
        request.request();
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("interrupted again: quitting at once");
        std::process::exit(i32::from(INTERRUPTED_EXIT));
    });
    stop
}

/// The decision, printed last by `run` and `check`: a few plain lines.
fn print_decision(results: &Results) {
    outln!();
    for l in report::decide(results).terminal_lines() {
        outln!("{l}");
    }
}

async fn cmd_run(args: RunArgs) -> Result<(), Failure> {
    let (scenario, mut opts) = plan_run(&args)?;
    opts.stop = stop_on_signals();
    if opts.scale_out.seed_only {
        for (kind, report, location) in crate::run::seed_for_segments(&scenario, &opts).await? {
            outln!(
                "seeded {location} for {kind}: {} rows, {} events",
                report.rows,
                report.events
            );
        }
        return Ok(());
    }
    let results = execute_run(&scenario, &opts).await?;
    print_decision(&results);
    if results
        .runs
        .iter()
        .any(|r| r.verify.as_ref().is_some_and(|v| !v.ok()))
    {
        return Err(Failure::check_failed(anyhow!(
            "verify found read models that differ from the truth"
        )));
    }
    Ok(())
}

async fn cmd_check(args: CheckArgs) -> Result<(), Failure> {
    // Thresholds are input: the scenario parser has refused a bad one before anything runs.
    let (scenario, mut opts) = plan_run(&args.run)?;
    opts.command = "check";
    opts.stop = stop_on_signals();
    let results = execute_run(&scenario, &opts).await?;
    let lines = check::evaluate(&results, &scenario.thresholds, &scenario.budgets);
    outln!();
    for l in &lines {
        outln!(
            "{} {:<24} {:<48} {}",
            if l.passed { "PASS" } else { "FAIL" },
            l.run,
            l.name,
            l.measured
        );
        if !l.passed {
            for d in &l.detail {
                outln!("       {d}");
            }
        }
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, check::junit(&scenario.name, &lines))
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::bad_input)?;
    }
    // Thresholds on backends `--backends` left out: listed, so none vanishes from the output.
    for t in scenario.thresholds.iter() {
        if let Some(b) = t.backend.filter(|b| !scenario.backends.contains(b)) {
            outln!(
                "SKIP {:<24} threshold {} {}: not checked, {b} is not run (--backends)",
                b.name(),
                t.name,
                t.condition
            );
        }
    }
    let failed = lines.iter().filter(|l| !l.passed).count();
    print_decision(&results);
    if failed > 0 {
        return Err(Failure::check_failed(anyhow!(
            "check: {failed} of {} checks failed",
            lines.len()
        )));
    }
    outln!("check: all {} checks passed", lines.len());
    Ok(())
}

fn parse_projection(name: &Option<String>) -> Result<Vec<ProjectionName>, Failure> {
    match name {
        None => Ok(ProjectionName::ALL.to_vec()),
        Some(n) => ProjectionName::from_name(n)
            .map(|p| vec![p])
            .ok_or_else(|| {
                let names: Vec<&str> = ProjectionName::ALL.iter().map(|p| p.name()).collect();
                Failure::bad_input(anyhow!(
                    "--projection: unknown read model \"{n}\" (expected {})",
                    one_of(&names)
                ))
            }),
    }
}

/// Opens a database the tool seeded, with `pool_size` connections.
async fn open_ours(args: &DbArgs, pool_size: u32) -> Result<Db, Failure> {
    let url = parse_url(&args.db)?;
    let db = Db::open_with(&url, &args.schema, pool_size, OpenMode::Existing).await?;
    state::require_seeded(&db).await?;
    Ok(db)
}

/// Takes the database of `args` (and `also`) for `command` until the returned locks drop.
async fn lock(args: &DbArgs, also: Option<&str>, command: &str) -> Result<Locks, Failure> {
    let mut places = vec![Place::database(&parse_url(&args.db)?, &args.schema)];
    if let Some(other) = also {
        places.push(Place::database(&parse_url(other)?, &args.schema));
    }
    Ok(Locks::take(&places, command).await.map_err(DbError::from)?)
}

/// A separate read store named on the command line (`--read-db`), with the schema of --db.
async fn open_read_store(url: &str, schema: &str) -> Result<Db, Failure> {
    let url = parse_url(url)?;
    let db = Db::open_with(&url, schema, 2, OpenMode::Existing).await?;
    state::require_seeded(&db).await?;
    Ok(db)
}

async fn cmd_rebuild(args: RebuildArgs) -> Result<(), Failure> {
    if let Some(dir) = &args.pack {
        return cmd_rebuild_pack(&args, dir).await;
    }
    let search_only = args.projection.as_deref() == Some(ProjectionName::ProductSearch.name());
    let projections = if search_only {
        Vec::new()
    } else {
        parse_projection(&args.projection)?
    };
    let _locks = lock(&args.db, args.read_db.as_deref(), "rebuild").await?;
    // A connection per read model: on PostgreSQL they are rebuilt concurrently.
    let db = open_ours(&args.db, projections.len() as u32 + 1).await?;
    if let Some(p) = schema::meta_get(&db, PACK_KEY).await? {
        return Err(Failure::bad_input(anyhow!(
            "{} holds workload pack {p}, whose read models only the pack knows: rebuild it \
             with --pack DIR (the pack's folder, e.g. workloads/{p})",
            db.location()
        )));
    }
    if !projections.is_empty() {
        let report = match &args.read_db {
            None => {
                rebuild(
                    &db,
                    &projections,
                    args.batch_size.unwrap_or(SHOP_REBUILD_BATCH).max(1),
                )
                .await?
            }
            Some(read) => {
                let read = open_read_store(read, &args.db.schema).await?;
                crate::backend::read_db::require_read_store(&read).await?;
                let report = rebuild_into(
                    &db,
                    &read,
                    &projections,
                    args.batch_size.unwrap_or(SHOP_REBUILD_BATCH).max(1),
                )
                .await?;
                read.close().await;
                report
            }
        };
        let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
        outln!(
            "rebuilt {} from {} events in {:.2}s ({:.0} events/s)",
            names.join(", "),
            report.events,
            report.seconds,
            report.events_per_second
        );
    }
    // A run with a separate read store keeps no search index.
    let dir = search::index_dir(&db, args.search_dir.as_deref());
    if args.read_db.is_none()
        && (search_only || (args.projection.is_none() && search::SearchIndex::exists(&dir)))
    {
        let index = search::SearchIndex::open(&dir).map_err(ProjectorError::from)?;
        let report = rebuild_search(
            &db,
            index.clone(),
            args.batch_size.unwrap_or(SHOP_REBUILD_BATCH).max(1),
        )
        .await?;
        let documents = index.searcher().num_docs();
        outln!(
            "rebuilt product_search ({documents} documents) from {} events in {:.2}s \
             ({:.0} events/s, {:.0} documents/s)",
            report.events,
            report.seconds,
            report.events_per_second,
            documents as f64 / report.seconds.max(1e-9)
        );
    }
    db.close().await;
    Ok(())
}

/// Events per transaction of the shop's rebuild: it moves the whole log, so batches are large.
const SHOP_REBUILD_BATCH: i64 = 10_000;

/// `rebuild --pack DIR`: a pack's read models on its `cqrs-async` dataset, from its outbox.
async fn cmd_rebuild_pack(args: &RebuildArgs, dir: &Path) -> Result<(), Failure> {
    let shop_only = [
        ("--read-db", args.read_db.is_some()),
        ("--projection", args.projection.is_some()),
        ("--search-dir", args.search_dir.is_some()),
    ];
    if let Some((flag, _)) = shop_only.iter().find(|(_, given)| *given) {
        return Err(Failure::bad_input(anyhow!(
            "--pack and {flag}: a pack's read models are rebuilt all together, beside its \
             write model; rebuild it without {flag}"
        )));
    }
    let pack = Pack::load(dir)?;
    let _locks = lock(&args.db, None, "rebuild").await?;
    let db = open_ours(&args.db, 2).await?;
    let names: Vec<String> = pack.read_models.keys().cloned().collect();
    let compiled = std::sync::Arc::new(CompiledPack::new(pack, db.engine(), &BTreeMap::new()));
    let batch_size = args
        .batch_size
        .unwrap_or_else(|| crate::pack::rebuild::default_batch_size(db.engine()));
    let report = crate::pack::rebuild::rebuild(&db, compiled, batch_size.max(1)).await;
    db.close().await;
    let report = report?;
    outln!(
        "rebuilt {} from {} events in {:.2}s ({:.0} events/s)",
        names.join(", "),
        report.events,
        report.seconds,
        report.events_per_second
    );
    Ok(())
}

async fn cmd_projector(args: ProjectorArgs) -> Result<(), Failure> {
    let duration = |flag: &str, v: &str| {
        parse_duration(v).map_err(|e| Failure::bad_input(anyhow!("--{flag}: {e}")))
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
    let _locks = lock(&args.db, None, "projector").await?;
    let db = open_ours(&args.db, 2).await?;
    let started = || {
        eprintln!(
            "projector running on {} (Ctrl-C or SIGTERM stops it)",
            db.url.redacted()
        )
    };
    let search = if args.search {
        let dir = search::index_dir(&db, args.search_dir.as_deref());
        Some(search::SearchIndex::open(&dir).map_err(ProjectorError::from)?)
    } else {
        None
    };
    let outcome = run_projector(&db, config, args.until_idle, search, started, |line| {
        outln!("{line}")
    })
    .await;
    db.close().await;
    Ok(outcome?)
}

/// Drops what the tool created under `--schema`, with the meaning `run` gives it: the schema
/// itself and every backend's `<schema>_<backend>` (on SQLite, the file and every backend's
/// `<stem>.<backend>.db` beside it). Names each one dropped; refuses the lot, dropping nothing,
/// when one of them is someone else's.
async fn cmd_drop(args: DbArgs) -> Result<(), Failure> {
    let url = parse_url(&args.db)?;
    validate_schema_name(&args.schema).map_err(Failure::bad_input)?;
    let mut targets = vec![(url.clone(), args.schema.clone())];
    targets.extend(
        crate::backend::registry::BACKENDS
            .iter()
            .map(|e| Db::backend_location(&url, &args.schema, e.ident)),
    );
    // A SQLite file that is not there holds nothing (and gets no lock file beside it).
    targets.retain(|(u, _)| u.sqlite_path().is_none_or(|p| p.exists()));
    let places: Vec<Place> = targets
        .iter()
        .map(|(u, schema)| Place::database(u, schema))
        .collect();
    let _locks = Locks::take(&places, "drop").await.map_err(DbError::from)?;
    let mut ours = Vec::new();
    let mut foreign = Vec::new();
    for (u, schema_name) in &targets {
        let db = match Db::open_with(u, schema_name, 1, OpenMode::Existing).await {
            Ok(db) => db,
            Err(e @ DbError::ForeignSqliteFile { .. }) => {
                foreign.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let owned = match schema::ownership(&db).await {
            Ok(schema::Ownership::Ours) => schema::no_foreign_triggers(&db).await.map(|_| true),
            Ok(schema::Ownership::Empty) => Ok(false),
            Err(e) => Err(e),
        };
        match owned {
            Ok(true) => ours.push(db),
            Ok(false) => db.close().await,
            Err(e @ DbError::Sql(_)) => return Err(e.into()),
            Err(e) => {
                foreign.push(e.to_string());
                db.close().await;
            }
        }
    }
    if !foreign.is_empty() {
        for db in &ours {
            db.close().await;
        }
        return Err(Failure::bad_input(anyhow!(
            "dropped nothing: {}",
            foreign.join("; ")
        )));
    }
    if ours.is_empty() {
        return Err(Failure::check_failed(anyhow!(
            "nothing of the tool's here: no database of cqrs-bench named {} in {}",
            match url.sqlite_path() {
                Some(_) => "by the file or its backends' files beside it".to_string(),
                None => format!("\"{0}\" or \"{0}_<backend>\"", args.schema),
            },
            url.redacted()
        )));
    }
    for db in ours {
        let location = db.location();
        // The search index kept beside it describes data that is gone.
        search::discard(&db, None).map_err(|e| {
            ProjectorError::from(search::SearchError::Io(search::index_dir(&db, None), e))
        })?;
        match db.url.sqlite_path() {
            // The file holds only the tool's tables: it goes, with its WAL.
            Some(_) => db.discard().await,
            None => {
                schema::drop_all(&db).await?;
                db.close().await;
            }
        }
        outln!("dropped {location}");
    }
    Ok(())
}

async fn cmd_dead_letters(args: DeadLetterArgs) -> Result<(), Failure> {
    // Listing only reads; a replay writes the read models.
    let _locks = match args.replay {
        true => Some(lock(&args.db, None, "dead-letters").await?),
        false => None,
    };
    let db = open_ours(&args.db, 2).await?;
    if args.replay {
        let r = dead_letter::replay(&db, &ProjectionName::ALL)
            .await
            .map_err(DbError::Sql)?;
        outln!(
            "replayed {} dead letters; {} still failing",
            r.replayed,
            r.still_failing
        );
    }
    let letters = dead_letter::list(&db).await.map_err(DbError::Sql)?;
    for d in &letters {
        outln!(
            "{:<16} seq {:<8} {:<14} attempts {} · {}",
            d.projection,
            d.seq,
            d.stream,
            d.attempts,
            d.error
        );
    }
    outln!("{} dead letters", letters.len());
    db.close().await;
    if args.replay && !letters.is_empty() {
        return Err(Failure::check_failed(anyhow!(
            "{} events still dead-lettered",
            letters.len()
        )));
    }
    Ok(())
}

async fn cmd_seed(args: SeedArgs) -> Result<(), Failure> {
    let url = parse_url(&args.db.db)?;
    let kind = parse_backend(&args.backend)?;
    let (mut seed, spec) = match &args.scenario {
        Some(p) => {
            let s = Scenario::load(p).map_err(Failure::bad_input)?;
            (s.seed, s.dataset)
        }
        None => (1, crate::dataset::DatasetSpec::default()),
    };
    if let Some(s) = args.seed {
        seed = s;
    }
    // A bad name is refused before anything is locked or announced.
    validate_schema_name(&args.db.schema).map_err(Failure::bad_input)?;
    let _locks = lock(&args.db, None, "seed").await?;
    let stop = stop_on_signals();
    let place = place_text(&url, &args.db.schema);
    eprintln!("seeding {place} for {kind}");
    let seeding = prepare(&url, &args.db.schema, kind, seed, &spec, 4);
    let seeded = tokio::select! {
        seeded = seeding => Some(seeded),
        _ = stop.wait() => None,
    };
    let Some(seeded) = seeded else {
        // The tables say `seeding` (marked before the first row): run, verify and rebuild
        // refuse them until they are seeded again or dropped.
        return Err(Failure {
            code: INTERRUPTED_EXIT,
            error: anyhow!("interrupted during seed: {place} is half-seeded; reseed or drop it"),
        });
    };
    let (db, report) = seeded?;
    db.close().await;
    outln!(
        "seeded {} for {kind}: {} rows, {} events in {:.2}s ({:.0} rows/s)",
        url.redacted(),
        report.rows,
        report.events,
        report.seconds,
        report.rows_per_second
    );
    Ok(())
}

/// A database for messages before it is open: the SQLite file, or the URL and schema.
fn place_text(url: &DbUrl, schema: &str) -> String {
    match url.sqlite_path() {
        Some(_) => url.redacted(),
        None => format!("{} (schema {schema})", url.redacted()),
    }
}

async fn cmd_verify(args: VerifyArgs) -> Result<(), Failure> {
    let db = open_ours(&args.db, 2).await?;
    let prepared = schema::meta_get(&db, PACK_KEY).await?;
    let report = match (&args.pack, prepared, &args.read_db) {
        (Some(_), _, Some(_)) => {
            return Err(Failure::bad_input(anyhow!(
                "--pack and --read-db: a pack's read models live beside its write model; \
                 verify it without --read-db"
            )))
        }
        (Some(dir), prepared, None) => {
            let pack = Pack::load(dir)?;
            if prepared.as_deref() != Some(pack.name.as_str()) {
                let holds = match prepared {
                    Some(p) => format!("workload pack {p}"),
                    None => "the built-in shop's dataset (verify it without --pack)".to_string(),
                };
                return Err(Failure::bad_input(anyhow!(
                    "{} holds {holds}, not workload pack {} (--pack {})",
                    db.location(),
                    pack.name,
                    dir.display()
                )));
            }
            let compiled = CompiledPack::new(pack, db.engine(), &BTreeMap::new());
            verify_pack(&db, &compiled).await?
        }
        (None, Some(p), _) => {
            return Err(Failure::bad_input(anyhow!(
                "{} holds workload pack {p}, whose read models only the pack knows: verify it \
                 with --pack DIR (the pack's folder, e.g. workloads/{p})",
                db.location()
            )))
        }
        (None, None, None) => verify(&db).await?,
        (None, None, Some(read)) => {
            let read = open_read_store(read, &args.db.schema).await?;
            let report = verify_read_store(&db, &read).await?;
            read.close().await;
            report
        }
    };
    for m in &report.models {
        outln!(
            "{:<16} {:>8} rows expected {:>8} found {:>6} mismatches",
            m.read_model.name(),
            m.rows_expected,
            m.rows_actual,
            m.mismatches
        );
        for d in &m.first_diffs {
            outln!("    {d}");
        }
    }
    db.close().await;
    if report.ok() {
        outln!("verify: ok");
        Ok(())
    } else {
        Err(Failure::check_failed(anyhow!(
            "verify: {} mismatches",
            report.mismatches
        )))
    }
}

fn load_results(path: &Path) -> Result<Results, Failure> {
    let results = Results::load(path).map_err(Failure::bad_input)?;
    if results.interrupted {
        // Partial numbers decide nothing: neither a report's verdict nor a comparison.
        return Err(Failure::bad_input(anyhow!(
            "{}: the results of an interrupted run (\"interrupted\": true); its numbers are \
             partial, so they are not reported on or compared",
            path.display()
        )));
    }
    Ok(results)
}

fn cmd_report(args: ReportArgs) -> Result<(), Failure> {
    let results = load_results(&args.results)?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.results
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default()
    });
    let written = report::write_report(&results, &out).map_err(Failure::bad_input)?;
    let verdict = report::verdict::verdict(&results);
    for l in verdict.decision.terminal_lines() {
        outln!("{l}");
    }
    if let Some(answer) = verdict.plain_answer() {
        outln!("{answer}");
    }
    outln!("{}", verdict.plain_headline());
    outln!("report: {}", written.html.display());
    outln!("        {}", written.markdown.display());
    outln!(
        "plots:  {} in {}",
        written.plots.len(),
        out.join("plots").display()
    );
    Ok(())
}

fn cmd_compare(args: CompareArgs) -> Result<(), Failure> {
    if let Some(p) = args.fail_on_regression {
        if !(p.is_finite() && p >= 0.0) {
            return Err(Failure::bad_input(anyhow!(
                "--fail-on-regression: expected a percentage >= 0, got {p}"
            )));
        }
    }
    let base = load_results(&args.base)?;
    let new = load_results(&args.new)?;
    let comparison =
        report::compare::compare(&base, &new, args.force).map_err(Failure::bad_input)?;
    out!("{}", comparison.render());
    if let Some(pct) = args.fail_on_regression {
        if comparison.tested() == 0 {
            return Err(Failure {
                code: super::NOTHING_TESTED,
                error: anyhow!(
                    "--fail-on-regression: nothing could be tested ({} metrics had fewer than 2 \
                     intervals in a run): a gate that tests nothing cannot pass",
                    comparison.untested()
                ),
            });
        }
        let over = comparison.regressions_over(pct);
        if !over.is_empty() {
            return Err(Failure::check_failed(anyhow!(
                "{} significant regressions larger than {pct}%: {}",
                over.len(),
                over.iter()
                    .map(|c| format!("{} {}", c.run, c.metric))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

fn cmd_merge(args: MergeArgs) -> Result<(), Failure> {
    let parts = args
        .parts
        .iter()
        .map(|file| {
            load_results(file).map(|results| report::merge::Part {
                file: file.clone(),
                results,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let merged = report::merge::merge(parts).map_err(Failure::bad_input)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&merged.scenario));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create {}", out.display()))
        .map_err(Failure::bad_input)?;
    let path = out.join("results.json");
    std::fs::write(&path, report::results_json(&merged))
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(Failure::bad_input)?;
    let written = report::write_report(&merged, &out).map_err(Failure::bad_input)?;
    outln!("{}", table::summary(&merged));
    outln!(
        "merged {} segments: {}",
        merged.merged.as_ref().map_or(0, |m| m.segments),
        path.display()
    );
    outln!("report: {}", written.html.display());
    Ok(())
}
