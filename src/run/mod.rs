//! Runs a scenario: for every backend and sweep point, a fresh copy of the dataset, the op
//! stream through the driver, projections caught up, verify, and the numbers collected into
//! `Results`.

mod pack;
pub mod projector;
pub mod rewrite_probe;
pub mod scale_out;
pub mod stop;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::backend::{
    prepare, prepare_provisioned, read_db, Backend, BackendKind, BackendOptions, OpenError,
    VerifiedAgainst,
};
use crate::broker::BrokerOptions;
use crate::db::lock::{Locks, Place};
use crate::db::{Db, DbError, DbUrl, OpenMode, DEFAULT_SCHEMA};
use crate::metrics::Recorder;
use crate::projection::projector::{LagTracker, ProjectorError, ProjectorMode};
use crate::results::{
    utc_timestamp, BackendRun, Environment, MeasuredWindow, ProjectorReport, Rates, Results,
    SegmentInfo, SweepPoint, ToolInfo, FORMAT_VERSION,
};
use crate::scenario::{Rate, Scenario, Sweep};
use crate::verify::{verify_read_store, verify_with, VerifyError};
use crate::workload::driver::{drive_measured, DriverConfig, Lane, Pace, Progress};
use crate::workload::floor::calibrate;
use crate::workload::mix::{stream_hash, OpStream, HASHED_OPS};
pub use stop::{StopRequest, StopSignal};

/// How often the skew between the search index and the SQL read models is sampled.
const SKEW_SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the databases go: a SQLite path (each backend gets its own file next to it) or a
    /// PostgreSQL URL (each backend gets its own schema, `<schema>_<backend>`).
    pub db: DbUrl,
    pub schema: String,
    pub out_dir: PathBuf,
    pub keep_db: bool,
    pub projector_mode: ProjectorMode,
    /// Connections per pool; `None` sizes the pool to the scenario (see `pool_size_for`).
    pub pool_size: Option<u32>,
    pub show_progress: bool,
    /// How long to wait for projections to catch up after the load.
    pub catch_up_timeout: Duration,
    /// Threads of the async runtime the run is driven on (recorded; the caller builds it).
    pub threads: usize,
    /// A hot standby of `db`, which `replica` reads from.
    pub replica_db: Option<DbUrl>,
    /// The broker of `cqrs-broker` (`--nats`).
    pub broker: BrokerOptions,
    /// Where the async backends' read models go instead of their write database
    /// (`--read-db`): like `db`, a SQLite path or a PostgreSQL URL, one file or schema per
    /// backend.
    pub read_db: Option<DbUrl>,
    /// The command the run belongs to (`run`, `check`), named in the locks it holds.
    pub command: &'static str,
    /// Set when the run should stop early (SIGINT/SIGTERM).
    pub stop: StopSignal,
    /// How this process takes part in a scale-out run (`--segment`, `--start-at`).
    pub scale_out: scale_out::ScaleOut,
}

impl RunOptions {
    /// Defaults for a scenario: SQLite files in the output folder.
    pub fn defaults(out_dir: PathBuf) -> Self {
        let db = DbUrl::parse(&format!("sqlite://{}", out_dir.join("bench.db").display()))
            .expect("a sqlite path is a valid URL");
        RunOptions {
            db,
            schema: DEFAULT_SCHEMA.to_string(),
            out_dir,
            keep_db: false,
            projector_mode: ProjectorMode::ExactlyOnce,
            pool_size: None,
            show_progress: true,
            catch_up_timeout: Duration::from_secs(300),
            threads: 1,
            replica_db: None,
            broker: BrokerOptions::default(),
            read_db: None,
            command: "run",
            stop: StopSignal::never(),
            scale_out: scale_out::ScaleOut::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Projector(#[from] ProjectorError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("interrupted before any load was measured; nothing was written")]
    Interrupted,
    /// A pack the run cannot use: every problem, one line each (`FILE: path: message`).
    #[error("{0}")]
    Pack(String),
    #[error(transparent)]
    ScaleOut(#[from] scale_out::ScaleOutError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// 2 for input (the database as given, an output folder that cannot be written); 3 when
    /// the run itself failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Db(e) => e.exit_code(),
            RunError::Io { .. } | RunError::Pack(_) => 2,
            RunError::Open(e) => e.exit_code(),
            RunError::ScaleOut(e) => e.exit_code(),
            RunError::Projector(_) | RunError::Verify(_) => 3,
            RunError::Interrupted => INTERRUPTED_EXIT,
        }
    }
}

/// The exit code of a run stopped by a signal (128 + SIGINT, as shells report it).
pub const INTERRUPTED_EXIT: u8 = 130;

/// The default output folder: `reports/<scenario>-<UTC timestamp>`.
pub fn default_out_dir(scenario: &Scenario) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = utc_timestamp(secs).replace([':', '-'], "");
    PathBuf::from("reports").join(format!("{}-{}", scenario.name, stamp.trim_end_matches('Z')))
}

fn lane(rate: Rate, workers: u32) -> Lane {
    Lane {
        pace: match rate {
            Rate::PerSecond(r) => Pace::PerSecond(r),
            Rate::Max => Pace::Max,
        },
        workers,
    }
}

/// The sweep points (one `None` point without a sweep) and the read lane at each.
fn points(s: &Scenario) -> Vec<(Option<SweepPoint>, Lane)> {
    match &s.sweep {
        None => vec![(None, lane(s.reads.rate, s.reads.workers))],
        Some(Sweep::Orders(counts)) => counts
            .iter()
            .map(|n| {
                (
                    Some(SweepPoint::Orders(*n)),
                    lane(s.reads.rate, s.reads.workers),
                )
            })
            .collect(),
        Some(Sweep::Size { size, values }) => values
            .iter()
            .map(|n| {
                (
                    Some(SweepPoint::Size {
                        size: size.clone(),
                        value: *n,
                    }),
                    lane(s.reads.rate, s.reads.workers),
                )
            })
            .collect(),
        Some(Sweep::ReadRates(rates)) => rates
            .iter()
            .map(|r| {
                (
                    Some(SweepPoint::ReadRate(*r)),
                    lane(Rate::PerSecond(*r), s.reads.workers.max(1)),
                )
            })
            .collect(),
        Some(Sweep::Readers(ns)) => ns
            .iter()
            .map(|n| (Some(SweepPoint::Readers(*n)), lane(Rate::Max, *n)))
            .collect(),
    }
}

/// The database a backend runs on.
pub fn backend_target(opts: &RunOptions, kind: BackendKind) -> (DbUrl, String) {
    Db::backend_location(&opts.db, &opts.schema, kind.ident())
}

/// Where a backend's separate read store goes (`--read-db`), if there is one.
pub fn read_store_target(opts: &RunOptions, kind: BackendKind) -> Option<(DbUrl, String)> {
    opts.read_db
        .as_ref()
        .map(|url| Db::backend_location(url, &opts.schema, kind.ident()))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Runs every backend at every sweep point and writes `results.json` into the output folder;
/// the report is the caller's to write (`report::write_report`).
pub async fn run_scenario(s: &Scenario, opts: &RunOptions) -> Result<Results, RunError> {
    std::fs::create_dir_all(&opts.out_dir).map_err(io_err(&opts.out_dir))?;
    // Every place the run writes is its own until it ends: another run, seed or drop there
    // is refused at once, and so is this run if another holds one.
    // The processes of a scale-out run share their database (segment 1 seeds it while the
    // others wait for it to be marked ready, so they do not refuse it as half-seeded).
    let _locks = if opts.scale_out.shares_db() {
        Locks::take_sharing_databases(&places(s, opts), opts.command).await
    } else {
        Locks::take(&places(s, opts), opts.command).await
    }
    .map_err(DbError::from)?;
    if !opts.scale_out.shares_db() {
        for &kind in &s.backends {
            let (url, schema_name) = backend_target(opts, kind);
            refuse_half_seeded_at(&url, &schema_name).await?;
        }
    }
    let started_at = utc_timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    let (hash, runs, environment) = match &s.workload {
        Some(wl) => {
            let p = pack::run_all(s, wl, opts).await?;
            (p.hash, p.runs, p.environment)
        }
        None => run_shop(s, opts).await?,
    };
    let interrupted = opts.stop.is_set();
    if interrupted && runs.is_empty() {
        return Err(RunError::Interrupted);
    }
    let results = Results {
        format_version: FORMAT_VERSION,
        tool: ToolInfo {
            name: "cqrs-bench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        scenario: s.clone(),
        seed: s.seed,
        stream_hash: hash,
        started_at,
        environment: environment.unwrap_or_else(|| Environment {
            engine: opts.db.engine().name().into(),
            database: opts.db.redacted(),
            server_version: String::new(),
            settings: Vec::new(),
            pool_size: opts.pool_size.unwrap_or(MIN_POOL),
            cpus: cpus(),
            os: std::env::consts::OS.into(),
            projector_mode: opts.projector_mode,
            threads: opts.threads,
        }),
        segment: opts.scale_out.segment.map(|seg| SegmentInfo {
            index: seg.index,
            count: seg.count,
            start_at: opts.scale_out.start_at_text(),
            ops: runs.iter().map(BackendRun::ops_total).sum(),
        }),
        merged: None,
        runs,
        interrupted,
    };
    let path = opts.out_dir.join("results.json");
    std::fs::write(&path, crate::report::results_json(&results)).map_err(io_err(&path))?;
    Ok(results)
}

/// Every backend of the shop's scenario at every point: the stream's hash, the runs, the
/// environment.
async fn run_shop(
    s: &Scenario,
    opts: &RunOptions,
) -> Result<(String, Vec<BackendRun>, Option<Environment>), RunError> {
    let mix = s.mix_spec();
    let stream = Arc::new(OpStream::new(s.seed, &s.dataset, &mix));
    let hash = stream_hash(&*stream, HASHED_OPS, HASHED_OPS);
    opts.scale_out.check(
        s,
        s.backends.len() * points(s).len(),
        opts.read_db.is_some(),
    )?;
    let mut runs = Vec::new();
    let mut environment = None;
    for &kind in &s.backends {
        for (point, reads) in points(s) {
            // A point of an orders sweep is the scenario with that dataset, and the op
            // stream over it (whose new orders' ids follow the seeded ones).
            let (at, stream) = match &point {
                Some(SweepPoint::Orders(n)) => {
                    let mut at = s.clone();
                    at.dataset.orders = *n;
                    let stream = Arc::new(OpStream::new(at.seed, &at.dataset, &mix));
                    (std::borrow::Cow::Owned(at), stream)
                }
                _ => (std::borrow::Cow::Borrowed(s), stream.clone()),
            };
            if opts.stop.is_set() {
                break;
            }
            match run_one(&at, opts, kind, point, reads, stream, &hash).await {
                Ok((run, env)) => {
                    environment.get_or_insert(env);
                    runs.push(run);
                }
                // Stopped before this backend's load: the earlier ones' results stand.
                Err(RunError::Interrupted) if !runs.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok((hash, runs, environment))
}

/// The places a run writes: its output folder, each backend's database and read store.
fn places(s: &Scenario, opts: &RunOptions) -> Vec<Place> {
    let mut places = vec![Place::Folder(opts.out_dir.clone())];
    for &kind in &s.backends {
        let (url, schema_name) = backend_target(opts, kind);
        places.push(Place::database(&url, &schema_name));
        if let Some((url, schema_name)) = read_store_target(opts, kind) {
            places.push(Place::database(&url, &schema_name));
        }
    }
    places
}

/// Refuses the database at `url` (schema `schema_name` on PostgreSQL) when it is the tool's
/// and half-seeded; a missing file or schema, or one that is not the tool's, is left to the
/// seed's own checks.
async fn refuse_half_seeded_at(url: &DbUrl, schema_name: &str) -> Result<(), DbError> {
    if url.sqlite_path().is_some_and(|p| !p.exists()) {
        return Ok(());
    }
    let Ok(db) = Db::open_with(url, schema_name, 1, OpenMode::Existing).await else {
        return Ok(());
    };
    let outcome = match crate::db::schema::ownership(&db).await {
        Ok(crate::db::schema::Ownership::Ours) => crate::db::state::refuse_half_seeded(&db).await,
        _ => Ok(()),
    };
    db.close().await;
    outcome
}

/// Drops what an interrupted run created at a backend's place (unless `--keep-db`, when it is
/// named instead): only a database the tool owns.
async fn abandon(opts: &RunOptions, url: &DbUrl, schema_name: &str) {
    let Ok(db) = Db::open_with(url, schema_name, 1, OpenMode::Existing).await else {
        return;
    };
    if !matches!(
        crate::db::schema::ownership(&db).await,
        Ok(crate::db::schema::Ownership::Ours)
    ) {
        db.close().await;
        return;
    }
    if opts.keep_db {
        eprintln!("kept {}", db.location());
        db.close().await;
        return;
    }
    let _ = crate::projection::search::discard(&db, None);
    db.discard().await;
    db.close().await;
}

/// `run --seed-only`: seeds the database each backend's segments share, marks it for their
/// run, and stops; segment 1 then finds it seeded. Returns what was seeded, per backend.
pub async fn seed_for_segments(
    s: &Scenario,
    opts: &RunOptions,
) -> Result<Vec<(BackendKind, crate::db::load::SeedReport, String)>, RunError> {
    opts.scale_out.check(
        s,
        s.backends.len() * points(s).len(),
        opts.read_db.is_some(),
    )?;
    // Shared like the segments' own runs: they may already be waiting for this seed.
    let places: Vec<Place> = s
        .backends
        .iter()
        .map(|&kind| {
            let (url, schema_name) = backend_target(opts, kind);
            Place::database(&url, &schema_name)
        })
        .collect();
    let _locks = Locks::take_sharing_databases(&places, "seed-only")
        .await
        .map_err(DbError::from)?;
    let stream = OpStream::new(s.seed, &s.dataset, &s.mix_spec());
    let hash = stream_hash(&stream, HASHED_OPS, HASHED_OPS);
    let mut seeded = Vec::new();
    for &kind in &s.backends {
        let (url, schema_name) = backend_target(opts, kind);
        let (db, report) = opts
            .scale_out
            .seed_or_wait(&url, &schema_name, kind, s, &hash, MIN_POOL)
            .await?;
        seeded.push((kind, report, db.location()));
        db.close().await;
    }
    Ok(seeded)
}

/// The smallest pool a run opens by default.
const MIN_POOL: u32 = 8;

/// Connections for `workers` driver workers to keep one each, plus one for the projector and
/// one spare (backlog checks, settings); at least `MIN_POOL`.
/// How long a standby may take to replay a freshly seeded dataset.
const STANDBY_WAIT: Duration = Duration::from_secs(300);

fn pool_size_for(workers: u32) -> u32 {
    (workers + 2).max(MIN_POOL)
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

async fn run_one(
    s: &Scenario,
    opts: &RunOptions,
    kind: BackendKind,
    point: Option<SweepPoint>,
    reads: Lane,
    stream: Arc<OpStream>,
    stream_hash: &str,
) -> Result<(BackendRun, Environment), RunError> {
    let (url, schema_name) = backend_target(opts, kind);
    let scale_out = &opts.scale_out;
    // Segments share the database; only the first runs the background work on it.
    let shared = scale_out.shares_db();
    let first = scale_out.is_first();
    let workers = s.writes.workers + if reads.active() { reads.workers } else { 0 };
    // Room for every worker to keep a connection; an explicit smaller pool is shared instead.
    let pool_for_workers = pool_size_for(workers);
    let pool_size = opts.pool_size.unwrap_or(pool_for_workers);
    let read_target = read_store_target(opts, kind);
    if opts.show_progress {
        eprintln!("seeding {kind} ({})", place_name(&url, &schema_name));
    }
    let seeding = async {
        let (db, seed_report) = match &read_target {
            None if shared => {
                scale_out
                    .seed_or_wait(&url, &schema_name, kind, s, stream_hash, pool_size)
                    .await?
            }
            None => prepare(&url, &schema_name, kind, s.seed, &s.dataset, pool_size).await?,
            Some(_) => {
                let provisions = read_db::write_side_provisions(kind);
                prepare_provisioned(
                    &url,
                    &schema_name,
                    provisions,
                    s.seed,
                    &s.dataset,
                    pool_size,
                )
                .await?
            }
        };
        let read_store = match &read_target {
            Some((read_url, read_schema)) => Some(
                read_db::prepare(&db, read_url, read_schema, pool_size)
                    .await?
                    .0,
            ),
            None => None,
        };
        Ok::<_, RunError>((db, seed_report, read_store))
    };
    // A stop during the seed drops the seed where it stands (its transaction rolls back; the
    // tables say `seeding`), then what it created.
    let seeded = tokio::select! {
        seeded = seeding => Some(seeded),
        _ = opts.stop.wait() => None,
    };
    let Some(seeded) = seeded else {
        eprintln!("interrupted during the seed of {kind}");
        abandon(opts, &url, &schema_name).await;
        if let Some((read_url, read_schema)) = &read_target {
            abandon(opts, read_url, read_schema).await;
        }
        return Err(RunError::Interrupted);
    };
    let (db, seed_report, read_store) = seeded?;
    let replica = match (
        &opts.replica_db,
        crate::backend::registry::entry(kind).needs_replica,
    ) {
        (Some(standby), true) => {
            Some(Db::open_standby(standby, &schema_name, pool_size, STANDBY_WAIT).await?)
        }
        _ => None,
    };
    let settings = db.settings().await?;
    let environment = environment(&settings, opts);
    // The search index is kept only when the read mix queries it: otherwise its projector
    // and skew sampler would be work nobody asked for, charged to the run's figures. It
    // lives beside a SQLite file (in the output folder too, by default); for a PostgreSQL
    // schema, in the run's output folder.
    let search = s.reads_text_search();
    let search_dir = db
        .is_pg()
        .then(|| opts.out_dir.join(format!("{schema_name}.search")));
    let (lag, lag_rx) = LagTracker::new();
    let (search_lag, search_lag_rx) = LagTracker::new();
    let mut projector = s.projector_config();
    projector.mode = opts.projector_mode;
    let backend = Arc::new(
        Backend::open(
            kind,
            db.clone(),
            BackendOptions {
                projector,
                run_projector: first,
                // Lag is matched in the process that applies the events.
                lag: first.then(|| lag.clone()),
                broker: BrokerOptions {
                    keep: opts.keep_db,
                    ..opts.broker.clone()
                },
                dedicated_sessions: pool_size >= pool_for_workers,
                matview: s.refresh_schedule(),
                replica,
                snapshot_every: s.event_sourcing.snapshot_every,
                read_store: read_store.clone(),
                search: search && first,
                search_dir: search_dir.clone(),
                search_lag: first.then(|| search_lag.clone()),
            },
        )
        .await?,
    );
    // Events of the seed were applied before this process registered anything.
    lag.forget_unmatched();
    search_lag.forget_unmatched();

    let cfg = DriverConfig {
        duration: s.duration,
        writes: lane(s.writes.rate, s.writes.workers),
        reads,
        ryw_share: s.ryw_share,
        ryw_timeout: Duration::from_secs(5),
        ryw_think_times: s.ryw_think_times.clone(),
        seed: s.seed,
        segment: scale_out.segment(),
    };
    let floor = calibrate(
        backend.db.clone(),
        backend.dedicated_sessions(),
        stream.clone(),
        &cfg,
    )
    .await;
    if opts.stop.is_set() {
        // Stopped before the load began: nothing measured to keep.
        if let Ok(b) = Arc::try_unwrap(backend) {
            b.shutdown().await;
        }
        db.close().await;
        abandon(opts, &url, &schema_name).await;
        if let (Some(store), Some((read_url, read_schema))) = (&read_store, &read_target) {
            store.close().await;
            abandon(opts, read_url, read_schema).await;
        }
        return Err(RunError::Interrupted);
    }

    let lead = Duration::from_millis(200);
    let start = scale_out.start(lead)?;
    let lead = start.saturating_duration_since(Instant::now());
    let recorder = Recorder::new(start, s.warmup, Duration::from_secs(1));
    // A segment keeps its histograms for `merge`.
    let recorder = Arc::new(Mutex::new(match scale_out.segment {
        Some(_) => recorder.keeping_histograms(),
        None => recorder,
    }));
    let progress = Arc::new(Progress::default());
    let lag_recording = LagRecording::start(recorder.clone(), lag_rx, Some(search_lag_rx));
    // Skew between the search index and the SQL read models, sampled while the load runs.
    let skew_task = backend.search().is_some().then(|| {
        let backend = backend.clone();
        let recorder = recorder.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SKEW_SAMPLE_EVERY).await;
                if let Some(behind) = backend.search_skew().await {
                    recorder
                        .lock()
                        .expect("recorder lock")
                        .record_skew(Instant::now(), behind);
                }
            }
        })
    });
    let label = format!(
        "{}{}",
        kind.name(),
        point
            .as_ref()
            .map(|p| format!(" @ {}", p.label()))
            .unwrap_or_default()
    );
    let bar = opts
        .show_progress
        .then(|| progress_bar(&label, s.duration + lead));
    let ticker = bar.clone().map(|bar| {
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let elapsed = start.elapsed().as_secs_f64().max(0.001);
                let w = progress.writes_done.load(Ordering::Relaxed);
                let r = progress.reads_done.load(Ordering::Relaxed);
                bar.set_position(
                    (Instant::now().saturating_duration_since(start - lead)).as_millis() as u64,
                );
                bar.set_message(format!(
                    "{:.0} writes/s, {:.0} reads/s",
                    w as f64 / elapsed,
                    r as f64 / elapsed
                ));
            }
        })
    });

    // What readers of the rewritten order lines see, beside the load.
    let rewrite_reads = kind.provisions().product_copies.then(|| {
        let recorder = Arc::new(Mutex::new(
            crate::metrics::rewrite_reads::RewriteReadsRecorder::default(),
        ));
        let task = rewrite_probe::spawn(db.clone(), s, start + s.warmup, recorder.clone());
        (task, recorder)
    });
    if opts.show_progress {
        eprintln!(
            "measuring {kind} for {}",
            crate::scenario::format_duration(s.duration)
        );
    }
    // A stop ends the load where it stands: the workers start no further op.
    let stopper = stop_load_on_signal(opts, &progress);
    let (load_end, cpu) = drive_measured(
        backend.clone(),
        stream,
        cfg,
        start,
        recorder.clone(),
        progress.clone(),
    )
    .await;
    stopper.abort();
    let interrupted = opts.stop.is_set();
    if interrupted {
        eprintln!(
            "interrupted: stopped {kind}'s load after {:.1}s",
            load_end.saturating_duration_since(start).as_secs_f64()
        );
    }
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(t) = skew_task {
        t.abort();
    }
    let rewrite_reads = match rewrite_reads {
        Some((task, recorder)) => {
            task.abort();
            let _ = task.await;
            let seen = recorder.lock().expect("rewrite reads lock").finish();
            Some(seen)
        }
        None => None,
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    let measured_window = scale_out.segment.map(|_| {
        let wall = |at: Instant| {
            let now = (Instant::now(), SystemTime::now());
            scale_out::unix_seconds(now.1 - now.0.saturating_duration_since(at))
        };
        MeasuredWindow {
            from_unix_s: wall(start + s.warmup),
            to_unix_s: wall(load_end),
        }
    });
    // An interrupted run does not wait for the read side, nor verify it; another
    // segment's process applies the events (and waits for them).
    if !interrupted && first {
        backend.wait_caught_up(opts.catch_up_timeout).await?;
    }
    let catch_up_seconds = load_end.elapsed().as_secs_f64();
    // Every event is applied now, so every lag sample is in the channel.
    lag_recording.finish().await;
    let metrics = Recorder::finish_shared(recorder, load_end);

    let projector_stats = backend.projector_stats();
    let lag_parts = backend.lag_parts();
    let concurrency = backend.concurrency();
    let refreshes = backend.refreshes();
    let event_store = backend.event_store();
    if let Ok(b) = Arc::try_unwrap(backend) {
        b.shutdown().await;
    }
    // The checks run on a small pool of their own, opened after the load's pools are closed:
    // the load's connections (and SQLite's page caches in them) are gone first, so checking a
    // larger database at the end of a longer run does not raise the run's memory peak.
    db.close().await;
    let db = Db::open_with(&url, &schema_name, 2, OpenMode::Existing).await?;
    let read_store = match (read_store, &read_target) {
        (Some(store), Some((read_url, read_schema))) => {
            store.close().await;
            Some(Db::open_with(read_url, read_schema, 2, OpenMode::Existing).await?)
        }
        _ => None,
    };
    let verify_report = match &read_store {
        _ if interrupted => None,
        // Other segments may still be writing: verify after the last one.
        _ if shared => None,
        Some(store) => Some(verify_read_store(&db, store).await?),
        None if kind.verified_against() != VerifiedAgainst::Nothing => {
            Some(verify_with(&db, search_dir.as_deref()).await?)
        }
        None => None,
    };
    // Table sizes while the database still exists (None when the engine cannot tell).
    // With a read store, the read tables' size is the store's.
    let storage = match (&read_store, crate::db::storage::measure(&db).await?) {
        (Some(store), Some(write)) => {
            crate::db::storage::measure(store)
                .await?
                .map(|read| crate::db::storage::Storage {
                    read_tables_bytes: read.read_tables_bytes,
                    ..write
                })
        }
        (_, storage) => storage,
    };
    let dead_letters = if kind.has_event_log() || kind.provisions().event_store {
        crate::projection::dead_letter::list(read_store.as_ref().unwrap_or(&db))
            .await
            .map_err(DbError::from)?
            .len() as u64
    } else {
        0
    };
    let projector_report =
        projector_stats.map(|stats| projector_report(&stats, catch_up_seconds, dead_letters));
    // A segment drives 1/N of every rate: its target is its share, so the N parts' targets
    // add up to the scenario's rate when merged.
    let rates = rates(s, reads, scale_out.segment().count, &metrics);
    let outage = crate::results::Outage::from_metrics(&metrics);
    let read_store_location = read_store.as_ref().map(|store| store.location());
    let kept_database = if opts.keep_db || shared {
        Some(match &read_store {
            Some(store) => format!("{}, read store {}", db.location(), store.location()),
            None => db.location(),
        })
    } else {
        // The search index goes with the database it describes.
        let _ = crate::projection::search::discard(&db, search_dir.as_deref());
        db.discard().await;
        if let Some(store) = &read_store {
            store.discard().await;
        }
        None
    };
    db.close().await;
    if let Some(store) = &read_store {
        store.close().await;
    }
    Ok((
        BackendRun {
            backend: kind,
            sweep_point: point,
            rates,
            metrics,
            floor: Some(floor),
            cpu,
            seed: seed_report,
            verify: verify_report,
            projector: projector_report,
            storage,
            kept_database,
            concurrency,
            refreshes,
            event_store,
            outage,
            lag_parts,
            read_store: read_store_location,
            rewrite_reads,
            measured_window,
        },
        environment,
    ))
}

/// Records the lag samples the trackers send (projection lag, and search freshness where
/// there is an index) into the run's recorder while the load runs.
struct LagRecording {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

type LagSamples = tokio::sync::mpsc::UnboundedReceiver<crate::projection::projector::LagSample>;

impl LagRecording {
    fn start(
        recorder: Arc<Mutex<Recorder>>,
        mut lag_rx: LagSamples,
        mut search_lag_rx: Option<LagSamples>,
    ) -> LagRecording {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let record = |sample: crate::projection::projector::LagSample| {
                recorder
                    .lock()
                    .expect("recorder lock")
                    .record_lag(sample.applied_at, sample.lag);
            };
            let record_search = |sample: crate::projection::projector::LagSample| {
                recorder
                    .lock()
                    .expect("recorder lock")
                    .record_search_lag(sample.applied_at, sample.lag);
            };
            loop {
                tokio::select! {
                    Some(sample) = lag_rx.recv() => record(sample),
                    Some(sample) = next_sample(&mut search_lag_rx) => record_search(sample),
                    _ = &mut stopped => {
                        while let Ok(sample) = lag_rx.try_recv() {
                            record(sample);
                        }
                        while let Some(Ok(sample)) = search_lag_rx.as_mut().map(|rx| rx.try_recv()) {
                            record_search(sample);
                        }
                        return;
                    }
                }
            }
        });
        LagRecording { stop, task }
    }

    /// Records what is still queued and ends; call it once every event is applied, so every
    /// sample is in the channels.
    async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The next sample of `rx`; never, without one.
async fn next_sample(
    rx: &mut Option<LagSamples>,
) -> Option<crate::projection::projector::LagSample> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The engine and machine a run measured on.
fn environment(settings: &crate::db::DbSettings, opts: &RunOptions) -> Environment {
    Environment {
        engine: settings.engine.name().into(),
        database: opts.db.redacted(),
        server_version: settings.server_version.clone(),
        settings: settings.settings.clone(),
        pool_size: settings.pool_size,
        cpus: cpus(),
        os: std::env::consts::OS.into(),
        projector_mode: opts.projector_mode,
        threads: opts.threads,
    }
}

/// A stop (a signal) ends the load where it stands: the workers start no further op.
fn stop_load_on_signal(opts: &RunOptions, progress: &Arc<Progress>) -> tokio::task::JoinHandle<()> {
    let stop = opts.stop.clone();
    let progress = progress.clone();
    tokio::spawn(async move {
        stop.wait().await;
        progress.stop();
    })
}

/// What a projector did, from its counters.
fn projector_report(
    stats: &crate::projection::projector::ProjectorStats,
    catch_up_seconds: f64,
    dead_letters: u64,
) -> ProjectorReport {
    ProjectorReport {
        events: stats.events.load(Ordering::Relaxed),
        batches: stats.batches.load(Ordering::Relaxed),
        duplicates: stats.duplicates.load(Ordering::Relaxed),
        errors: stats.errors.load(Ordering::Relaxed),
        catch_up_seconds,
        redelivered: stats.redelivered.load(Ordering::Relaxed),
        dead_letters,
        horizon_waits: stats.horizon_waits.load(Ordering::Relaxed),
    }
}

/// The scenario's targets, each this process's share of `count` segments, and what `metrics`
/// achieved.
fn rates(s: &Scenario, reads: Lane, count: u32, metrics: &crate::metrics::RunMetrics) -> Rates {
    let share = f64::from(count);
    let read_target = match reads.pace {
        Pace::PerSecond(r) => Some(r / share),
        Pace::Max => None,
    };
    Rates::achieved(
        cfg_rate(s.writes.rate).map(|r| r / share),
        read_target,
        metrics,
    )
}

/// A backend's database for messages before it is open: the file, or the schema.
fn place_name(url: &DbUrl, schema_name: &str) -> String {
    match url.sqlite_path() {
        Some(_) => url.redacted(),
        None => format!("{} (schema {schema_name})", url.redacted()),
    }
}

fn cfg_rate(rate: Rate) -> Option<f64> {
    match rate {
        Rate::PerSecond(r) if r > 0.0 => Some(r),
        _ => None,
    }
}

fn progress_bar(label: &str, total: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>28} [{bar:30}] {elapsed:>4} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}
