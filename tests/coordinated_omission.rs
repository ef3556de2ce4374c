//! No coordinated omission: a single 500 ms stall of the database, at 100 writes/s with one
//! worker, must show up as user-visible latency for the ~50 ops that were due during the stall
//! (measured from their intended start), not as missing samples. Every assertion on time is a
//! lower bound the stall guarantees (a busy machine only adds to it): none asserts that
//! anything was fast, or that the driver kept up, which a loaded CI machine can break. The
//! same run without the stall is the control: nothing stalled, and every due op was still
//! sent.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{open_backend, small_dataset, sqlite_url};
use cqrs_bench::backend::normalized;
use cqrs_bench::backend::{Backend, ExecError, Receipt};
use cqrs_bench::db::DEFAULT_SCHEMA;
use cqrs_bench::domain::{Command, Query};
use cqrs_bench::metrics::{LatencyStats, Recorder, RunMetrics};
use cqrs_bench::workload::driver::{drive, DriverConfig, Lane, Pace, Progress, Target};
use cqrs_bench::workload::mix::{MixSpec, OpStream};

const RATE: f64 = 100.0;
const RUN: Duration = Duration::from_secs(10);
const STALL_AT: Duration = Duration::from_secs(3);
const STALL: Duration = Duration::from_millis(500);
const MS: u64 = 1_000;

/// A real backend whose `execute` stalls once, on the first call made `STALL_AT` or more after
/// `start`. It also notes when every call finished (one worker: call k is op k).
struct StallingTarget {
    inner: Backend,
    start: Instant,
    stall: bool,
    stalled: AtomicBool,
    finished: Mutex<Vec<Instant>>,
}

impl Target for StallingTarget {
    type Session = ();
    type Ops = OpStream;

    fn session(&self, _writes: bool) {}

    async fn execute(&self, _: &mut (), cmd: &Command) -> Result<Receipt, ExecError> {
        if self.stall
            && Instant::now() >= self.start + STALL_AT
            && !self.stalled.swap(true, Ordering::SeqCst)
        {
            tokio::time::sleep(STALL).await;
        }
        let r = self.inner.execute(cmd).await;
        self.finished.lock().unwrap().push(Instant::now());
        r
    }

    async fn query(&self, _: &mut (), q: &Query) -> Result<(), sqlx::Error> {
        self.inner.query(q).await.map(|_| ())
    }

    async fn is_visible(&self, _: &mut (), r: &Receipt) -> Result<bool, sqlx::Error> {
        self.inner.is_visible(r).await
    }
}

struct Outcome {
    metrics: RunMetrics,
    /// Intended-start latency of each op, computed here from the finish times.
    latencies: Vec<Duration>,
    stalled: bool,
}

async fn run(stall: bool) -> Outcome {
    let (_dir, url) = sqlite_url(if stall { "stall" } else { "control" });
    let spec = small_dataset();
    let seed = 11;
    let backend = open_backend(&url, DEFAULT_SCHEMA, normalized::KIND, seed, &spec, false).await;

    let mix = MixSpec {
        reads: Default::default(),
        write_interval_us: (1e6 / RATE) as i64,
        ..MixSpec::default()
    };
    let stream = Arc::new(OpStream::new(seed, &spec, &mix));
    let start = Instant::now() + Duration::from_millis(100);
    let target = Arc::new(StallingTarget {
        inner: backend,
        start,
        stall,
        stalled: AtomicBool::new(false),
        finished: Mutex::new(Vec::new()),
    });
    let recorder = Arc::new(Mutex::new(Recorder::new(
        start,
        Duration::ZERO,
        Duration::from_secs(1),
    )));
    let cfg = DriverConfig {
        duration: RUN,
        writes: Lane {
            pace: Pace::PerSecond(RATE),
            workers: 1,
        },
        reads: Lane::idle(),
        ryw_share: 0.0,
        ryw_timeout: Duration::from_secs(1),
        ryw_think_times: vec![Duration::ZERO],
        seed,
        segment: cqrs_bench::workload::segment::Segment::WHOLE,
    };
    drive(
        target.clone(),
        stream,
        cfg,
        start,
        recorder.clone(),
        Arc::new(Progress::default()),
    )
    .await;
    let end = Instant::now();
    let metrics = Arc::try_unwrap(recorder)
        .expect("the driver is done with the recorder")
        .into_inner()
        .unwrap()
        .finish(end);
    let finished = target.finished.lock().unwrap().clone();
    let latencies = finished
        .iter()
        .enumerate()
        .map(|(k, f)| f.saturating_duration_since(start + Duration::from_secs_f64(k as f64 / RATE)))
        .collect();
    Outcome {
        metrics,
        latencies,
        stalled: target.stalled.load(Ordering::SeqCst),
    }
}

/// A lower bound of how many samples are above `threshold_us`, from the spectrum: a point
/// `(q, v)` is the first histogram bucket where the cumulative share reaches `q`, so fewer than
/// `q %` of the samples lie below v's bucket, i.e. more than `(100 - q) %` lie at or above it.
/// Buckets are 0.1 % wide, so only points with `v > threshold * 1.002` count.
fn at_least_above(stats: &LatencyStats, threshold_us: u64) -> u64 {
    let limit = threshold_us as f64 * 1.002;
    stats
        .spectrum
        .iter()
        .find(|(_, v)| *v as f64 > limit)
        .map(|(q, _)| ((100.0 - q) / 100.0 * stats.count as f64).floor() as u64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_up_as_latency_not_as_missing_samples() {
    // One after the other, not concurrently: on a 2-core CI machine two runs in one process
    // would disturb each other's service times.
    let stalled = run(true).await;
    let control = run(false).await;

    // --- the stalled run ---
    assert!(stalled.stalled, "the stall was never triggered");
    let w = &stalled.metrics.ops["write"];
    let expected = (RUN.as_secs_f64() * RATE) as u64;
    assert!(
        w.count + 2 >= expected && w.count <= expected,
        "open loop: every due op is still sent despite the stall ({} of {expected})",
        w.count
    );
    assert_eq!(w.errors, 0, "no write may fail");
    assert!(
        w.latency.p999_us >= 450 * MS,
        "intended-start p99.9 must include the stall: {} µs",
        w.latency.p999_us
    );
    assert!(
        w.latency.max_us >= 480 * MS,
        "max latency {} µs",
        w.latency.max_us
    );
    // ~50 ops were due during the 500 ms stall; their latencies fall from 500 ms towards 0,
    // so about 40 of them exceed 100 ms.
    let above = at_least_above(&w.latency, 100 * MS);
    assert!(
        above >= 20,
        "at least 20 ops must exceed 100 ms (spectrum proves only {above}): {:?}",
        w.latency.spectrum
    );
    // Cross-check, independent of the recorder: latencies from the finish times.
    let counted = stalled
        .latencies
        .iter()
        .filter(|l| **l > Duration::from_millis(100))
        .count();
    assert!(
        counted >= 20,
        "finish times show only {counted} ops over 100 ms"
    );
    assert!(
        (counted as u64) >= above,
        "the spectrum bound ({above}) cannot exceed the true count ({counted})"
    );
    assert!(
        w.service.max_us >= 480 * MS,
        "the stalled op's own service time includes the stall: {} µs",
        w.service.max_us
    );
    assert!(
        stalled.metrics.lateness.max_us >= 400 * MS,
        "the driver started ops late: lateness max {} µs",
        stalled.metrics.lateness.max_us
    );
    // The worker was busy with the stalled op: the ops behind it waited for the system.
    assert!(
        stalled.metrics.saturated,
        "a 500 ms stall of the database is the system falling behind"
    );
    assert!(stalled.metrics.queue_wait.max_us >= 400 * MS);
    // The stall began STALL_AT in: the interval the stalled op was due in holds it (the
    // latency is placed by intended start).
    let stall_interval = stalled
        .metrics
        .intervals
        .iter()
        .find(|iv| iv.t_s <= STALL_AT.as_secs_f64() && STALL_AT.as_secs_f64() < iv.t_s + 1.0)
        .expect("an interval around the stall");
    assert!(
        stall_interval.write_max_us >= 450 * MS,
        "the interval of the stall does not hold it: {stall_interval:?}"
    );

    // --- the control ---
    let c = &control.metrics.ops["write"];
    assert!(!control.stalled);
    assert!(c.count + 2 >= expected && c.count <= expected);
    assert_eq!(c.errors, 0);
}
