//! A run of a team's pack: every backend that runs packs at every sweep point, through the
//! same phases as the shop's (`run_one`) and the same parts — the driver, the floor, the
//! recorder, lag matching, verify's row comparison and `BackendRun` — with the pack's
//! database, backend and op stream in place of the shop's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    abandon, backend_target, environment, lane, points, pool_size_for, projector_report, rates,
    stop_load_on_signal, LagRecording, RunError, RunOptions, STANDBY_WAIT,
};
use crate::backend::BackendKind;
use crate::db::DbUrl;
use crate::metrics::Recorder;
use crate::pack::backend::{PackBackend, PackBackendOptions};
use crate::pack::copy::CopySource;
use crate::pack::exec::CompiledPack;
use crate::pack::ops::PackStream;
use crate::pack::target::PackTarget;
use crate::pack::Pack;
use crate::projection::projector::LagTracker;
use crate::results::{BackendRun, Environment, SweepPoint};
use crate::scenario::{PackWorkload, Scenario};
use crate::workload::driver::{drive_measured, DriverConfig, Lane, Progress};
use crate::workload::floor::calibrate;
use crate::workload::mix::{stream_hash, HASHED_OPS};

/// What a pack's runs gave: the stream's hash, each backend's run, the environment.
pub(super) struct PackRuns {
    pub hash: String,
    pub runs: Vec<BackendRun>,
    pub environment: Option<Environment>,
}

/// The pack compiled for the run's engine and sizes (`point`'s size in place of the
/// scenario's at a point of a size sweep), and its op stream.
async fn compile(
    s: &Scenario,
    wl: &PackWorkload,
    opts: &RunOptions,
    point: Option<&SweepPoint>,
) -> Result<(Arc<CompiledPack>, Arc<PackStream>), RunError> {
    let pack = Pack::load(&wl.dir).map_err(|e| RunError::Pack(e.to_string()))?;
    let mut sizes = wl.sizes.clone();
    if let Some(SweepPoint::Size { size, value }) = point {
        sizes.insert(size.clone(), *value);
    }
    // A copied dataset's sizes are the source's, read before the op stream is built on them.
    let source = match (&wl.copy_from, &pack.copy) {
        (Some(from), Some(def)) => {
            let source = CopySource {
                url: DbUrl::parse(&from.url)?,
                schema: from.schema.clone(),
            };
            let measured = crate::pack::copy::measure_sizes(def, &source)
                .await
                .map_err(|e| RunError::Pack(format!("{}: {e}", wl.dir.display())))?;
            sizes.extend(measured);
            Some(source)
        }
        _ => None,
    };
    let mut compiled = CompiledPack::new(pack, opts.db.engine(), &sizes);
    if let Some(source) = source {
        compiled = compiled.copying_from(source);
    }
    let params = PackStream::params(s.seed, &compiled.pack, compiled.sizes()).map_err(|p| {
        RunError::Pack(
            p.iter()
                .map(|(name, why)| format!("{}: parameters.{name}: {why}", wl.dir.display()))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let stream = PackStream::new(s.seed, &writes_of(s, wl), &reads_of(s, wl), params);
    Ok((Arc::new(compiled), Arc::new(stream)))
}

/// The write mix, empty when the scenario sends no writes.
fn writes_of(s: &Scenario, wl: &PackWorkload) -> std::collections::BTreeMap<String, f64> {
    if s.writes.rate.is_zero() {
        Default::default()
    } else {
        wl.writes.clone()
    }
}

/// The read mix, empty when the scenario sends no reads.
fn reads_of(s: &Scenario, wl: &PackWorkload) -> std::collections::BTreeMap<String, f64> {
    let swept = s
        .sweep
        .as_ref()
        .is_some_and(crate::scenario::Sweep::loads_reads);
    if s.reads.rate.is_zero() && !swept {
        Default::default()
    } else {
        wl.reads.clone()
    }
}

/// Runs the pack on every backend of the scenario at every point.
pub(super) async fn run_all(
    s: &Scenario,
    wl: &PackWorkload,
    opts: &RunOptions,
) -> Result<PackRuns, RunError> {
    if opts.scale_out.segment.is_some() || opts.read_db.is_some() {
        return Err(RunError::Pack(format!(
            "{}: a pack runs in one process on one database for now (no --segment, --read-db)",
            wl.dir.display()
        )));
    }
    // Every statement prepared on the engine before anything is seeded.
    crate::pack::check(&wl.dir, Some(&opts.db))
        .await
        .map_err(|e| RunError::Pack(e.to_string()))?;
    let (compiled, stream) = compile(s, wl, opts, None).await?;
    let hash = stream_hash(&*stream, HASHED_OPS, HASHED_OPS);
    // A point of a size sweep is the pack with that size, and the op stream over it (whose
    // parameters' ranges may follow the size): compiled once, for every backend.
    let mut at_points = Vec::new();
    for (point, reads) in points(s) {
        let (compiled, stream) = match &point {
            Some(p @ SweepPoint::Size { .. }) => compile(s, wl, opts, Some(p)).await?,
            _ => (compiled.clone(), stream.clone()),
        };
        at_points.push((point, reads, compiled, stream));
    }
    let mut runs = Vec::new();
    let mut environment = None;
    for &kind in &s.backends {
        for (point, reads, compiled, stream) in &at_points {
            if opts.stop.is_set() {
                break;
            }
            match run_one(s, opts, kind, point.clone(), *reads, compiled, stream).await {
                Ok((run, env)) => {
                    environment.get_or_insert(env);
                    runs.push(run);
                }
                Err(RunError::Interrupted) if !runs.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(PackRuns {
        hash,
        runs,
        environment,
    })
}

async fn run_one(
    s: &Scenario,
    opts: &RunOptions,
    kind: BackendKind,
    point: Option<SweepPoint>,
    reads: Lane,
    compiled: &Arc<CompiledPack>,
    stream: &Arc<PackStream>,
) -> Result<(BackendRun, Environment), RunError> {
    let (url, schema_name) = backend_target(opts, kind);
    let workers = s.writes.workers + if reads.active() { reads.workers } else { 0 };
    let pool_for_workers = pool_size_for(workers);
    let pool_size = opts.pool_size.unwrap_or(pool_for_workers);
    if opts.show_progress {
        eprintln!("seeding {kind} with pack {}", compiled.pack.name);
    }
    let seed_started = Instant::now();
    let seeded = tokio::select! {
        seeded = crate::pack::backend::prepare(&url, &schema_name, kind, compiled, pool_size) => Some(seeded),
        _ = opts.stop.wait() => None,
    };
    let Some(seeded) = seeded else {
        eprintln!("interrupted during the seed of {kind}");
        abandon(opts, &url, &schema_name).await;
        return Err(RunError::Interrupted);
    };
    let db = seeded?;
    let seconds = seed_started.elapsed().as_secs_f64();
    // The rows the seed left in the write model (its SQL or the copy made them, uncounted).
    let rows = crate::pack::footprint::write_rows(&db, compiled).await?;
    let seed_report = crate::db::load::SeedReport {
        rows,
        events: 0,
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
    };
    // `replica` reads a hot standby of the database, once it shows the seeded pack (the
    // CLI refuses a scenario naming it without `--replica-db`; `PackBackend::open` too).
    let standby = match (
        &opts.replica_db,
        crate::backend::registry::entry(kind).needs_replica,
    ) {
        (Some(url), true) => {
            Some(crate::db::Db::open_standby(url, &schema_name, pool_size, STANDBY_WAIT).await?)
        }
        _ => None,
    };
    let settings = db.settings().await?;
    let environment = environment(&settings, opts);
    let (lag, lag_rx) = LagTracker::new();
    let dedicated_sessions = pool_size >= pool_for_workers;
    let projector = s.projector_config();
    let backend = PackBackend::open(
        kind,
        db.clone(),
        compiled.clone(),
        PackBackendOptions {
            run_projector: true,
            lag: Some(lag.clone()),
            batch_size: projector.batch_size,
            poll_interval: projector.poll_interval,
            dedicated_sessions,
            refresh: s.refresh_schedule(),
            standby: standby.clone(),
            // As the shop's run passes it (`run_one`): the stream is the run's, kept with
            // the database.
            broker: crate::broker::BrokerOptions {
                keep: opts.keep_db,
                ..opts.broker.clone()
            },
        },
    )
    .await?;
    lag.forget_unmatched();
    let target = Arc::new(PackTarget::new(backend, stream.clone()));
    let cfg = DriverConfig {
        duration: s.duration,
        writes: lane(s.writes.rate, s.writes.workers),
        reads,
        ryw_share: s.ryw_share,
        ryw_timeout: Duration::from_secs(5),
        ryw_think_times: s.ryw_think_times.clone(),
        seed: s.seed,
        segment: Default::default(),
    };
    let floor = calibrate(db.clone(), dedicated_sessions, stream.clone(), &cfg).await;
    let start = Instant::now() + Duration::from_millis(200);
    let recorder = Arc::new(Mutex::new(Recorder::new(
        start,
        s.warmup,
        Duration::from_secs(1),
    )));
    let progress = Arc::new(Progress::default());
    // A pack keeps no search index: projection lag only.
    let lag_recording = LagRecording::start(recorder.clone(), lag_rx, None);
    if opts.show_progress {
        eprintln!(
            "measuring {kind} for {}",
            crate::scenario::format_duration(s.duration)
        );
    }
    let stopper = stop_load_on_signal(opts, &progress);
    let (load_end, cpu) = drive_measured(
        target.clone(),
        stream.clone(),
        cfg,
        start,
        recorder.clone(),
        progress.clone(),
    )
    .await;
    stopper.abort();
    let interrupted = opts.stop.is_set();
    if !interrupted {
        target
            .backend()
            .wait_caught_up(opts.catch_up_timeout)
            .await?;
    }
    let catch_up_seconds = load_end.elapsed().as_secs_f64();
    // Every event is applied now, so every lag sample is in the channel.
    lag_recording.finish().await;
    let projector_stats = target.backend().projector_stats();
    let refreshes = target.backend().refreshes();
    if let Ok(t) = Arc::try_unwrap(target) {
        t.into_backend().shutdown().await;
    }
    if let Some(standby) = standby {
        standby.close().await;
    }
    let metrics = Recorder::finish_shared(recorder, load_end);
    let verify = if interrupted {
        None
    } else {
        Some(crate::verify::verify_pack(&db, compiled).await?)
    };
    // The pack projector parks nothing: an event it cannot apply stops it (no dead letters).
    let projector = projector_stats.map(|stats| projector_report(&stats, catch_up_seconds, 0));
    let rates = rates(s, reads, 1, &metrics);
    let outage = crate::results::Outage::from_metrics(&metrics);
    let storage = crate::pack::footprint::storage(&db, compiled).await?;
    let kept_database = if opts.keep_db {
        Some(db.location())
    } else {
        db.discard().await;
        None
    };
    db.close().await;
    Ok((
        BackendRun {
            backend: kind,
            sweep_point: point,
            rates,
            metrics,
            floor: Some(floor),
            cpu,
            seed: seed_report,
            verify,
            projector,
            storage,
            kept_database,
            concurrency: Vec::new(),
            refreshes,
            event_store: None,
            outage,
            lag_parts: Vec::new(),
            read_store: None,
            rewrite_reads: None,
            measured_window: None,
        },
        environment,
    ))
}
