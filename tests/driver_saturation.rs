//! Who fell behind, and the run's end. The driver must tell a system that cannot keep up
//! (every worker busy when an op comes due: a finding) from a driver starved of time (a free
//! worker starts ops late: an invalid run), and must end on time however high the rate.
//! Targets here are fakes on purpose: the claims are about the driver, not a database.
//! No assertion is about how fast anything ran; each compares the two cases' classification.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_bench::backend::{ExecError, Receipt};
use cqrs_bench::dataset::DatasetSpec;
use cqrs_bench::domain::{Command, CommandKind, Query};
use cqrs_bench::metrics::{Recorder, RunMetrics};
use cqrs_bench::workload::driver::{drive, DriverConfig, Lane, Pace, Progress, Target};
use cqrs_bench::workload::mix::{MixSpec, OpStream};

/// Each op holds its worker for `busy` (awaiting, as a database call does) and notes when the
/// last op started.
struct FakeTarget {
    busy: Duration,
    started: AtomicU64,
    last_start: Mutex<Option<Instant>>,
}

impl FakeTarget {
    fn new(busy: Duration) -> Arc<Self> {
        Arc::new(FakeTarget {
            busy,
            started: AtomicU64::new(0),
            last_start: Mutex::new(None),
        })
    }
}

impl Target for FakeTarget {
    type Session = ();
    type Ops = OpStream;

    fn session(&self, _writes: bool) {}

    async fn execute(&self, _: &mut (), _cmd: &Command) -> Result<Receipt, ExecError> {
        self.started.fetch_add(1, Ordering::Relaxed);
        *self.last_start.lock().unwrap() = Some(Instant::now());
        if !self.busy.is_zero() {
            tokio::time::sleep(self.busy).await;
        }
        Ok(Receipt::default())
    }

    async fn query(&self, _: &mut (), _q: &Query) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn is_visible(&self, _: &mut (), _r: &Receipt) -> Result<bool, sqlx::Error> {
        Ok(true)
    }
}

fn stream() -> Arc<OpStream> {
    let mix = MixSpec {
        writes: [(CommandKind::Restock, 1.0)].into_iter().collect(),
        reads: Default::default(),
        write_interval_us: 1_000,
        ..MixSpec::default()
    };
    Arc::new(OpStream::new(3, &DatasetSpec::default(), &mix))
}

/// Drives `target` with one write lane and returns the metrics and when the load began and
/// was due to end.
async fn run(
    target: Arc<FakeTarget>,
    rate: f64,
    workers: u32,
    duration: Duration,
) -> (RunMetrics, Instant) {
    let start = Instant::now() + Duration::from_millis(50);
    let recorder = Arc::new(Mutex::new(Recorder::new(
        start,
        Duration::ZERO,
        Duration::from_secs(1),
    )));
    let cfg = DriverConfig {
        duration,
        writes: Lane {
            pace: Pace::PerSecond(rate),
            workers,
        },
        reads: Lane::idle(),
        ryw_share: 0.0,
        ryw_timeout: Duration::from_secs(1),
        ryw_think_times: vec![Duration::ZERO],
        seed: 3,
        segment: cqrs_bench::workload::segment::Segment::WHOLE,
    };
    // A driver that never returns fails here instead of hanging the suite.
    tokio::time::timeout(
        duration + Duration::from_secs(30),
        drive(
            target,
            stream(),
            cfg,
            start,
            recorder.clone(),
            Arc::new(Progress::default()),
        ),
    )
    .await
    .expect("the driver ends");
    let metrics = Arc::try_unwrap(recorder)
        .expect("the driver is done with the recorder")
        .into_inner()
        .unwrap()
        .finish(Instant::now());
    (metrics, start + duration)
}

#[tokio::test(flavor = "current_thread")]
async fn busy_workers_are_the_system_falling_behind() {
    // 2 workers, each op holds its worker 40 ms: capacity 50 ops/s against 200 asked for.
    let target = FakeTarget::new(Duration::from_millis(40));
    let (m, _) = run(target.clone(), 200.0, 2, Duration::from_secs(1)).await;
    assert!(m.saturated, "every worker was busy: saturated ({m:?})");
    // Whether the driver also fell behind depends on how busy the machine is: not asserted.
    assert!(m.waited_for_worker > 0);
    // Ops waited for a worker at least as long as one op holds it, less the pacing gap.
    assert!(m.queue_wait.max_us >= 30_000, "{:?}", m.queue_wait);
    // Ops that came due and never started are counted, and every due op is either started or
    // counted: 200 due in 1 s.
    let started = target.started.load(Ordering::Relaxed);
    assert!(m.unstarted.writes > 0);
    assert_eq!(started + m.unstarted.writes, 200);

    // The control: the same rate with room to spare is neither.
    let (m, _) = run(
        FakeTarget::new(Duration::ZERO),
        200.0,
        2,
        Duration::from_secs(1),
    )
    .await;
    assert!(!m.saturated, "{m:?}");
    assert_eq!(m.unstarted.total(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_starved_driver_is_not_the_systems_fault() {
    // Ops cost nothing, but a task hogs the driver's only thread 150 ms at a time: free
    // workers cannot start their ops when they come due.
    let hog = tokio::spawn(async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let (m, _) = run(
        FakeTarget::new(Duration::ZERO),
        200.0,
        2,
        Duration::from_secs(1),
    )
    .await;
    hog.await.unwrap();
    assert!(
        m.driver_behind,
        "free workers started late: dispatch {:?}",
        m.dispatch
    );
    assert!(m.dispatch.max_us >= 100_000, "{:?}", m.dispatch);
}

#[tokio::test(flavor = "current_thread")]
async fn a_run_ends_on_time_whatever_the_rate() {
    // 10^12 ops/s for half a second: the backlog is endless, the run is not.
    let target = FakeTarget::new(Duration::ZERO);
    let duration = Duration::from_millis(500);
    let (m, _end) = run(target.clone(), 1e12, 2, duration).await;
    let started = target.started.load(Ordering::Relaxed);
    // The driver returned: `run`'s timeout fails one that does not. (When the last op
    // started is a wall-clock matter a busy machine can stretch: not asserted.)
    assert!(
        target.last_start.lock().unwrap().is_some(),
        "some ops started"
    );
    assert!(m.saturated);
    // Every op due in the half second is either started or counted as never started (op
    // times are whole nanoseconds: at 10^12/s the last 1,000 share the end's nanosecond).
    let accounted = started + m.unstarted.writes;
    assert!(
        accounted.abs_diff(500_000_000_000) <= 1_000,
        "{started} started + {} unstarted",
        m.unstarted.writes
    );
    assert!(started < 100_000_000, "{started} ops cannot all have run");
}
