//! Read-your-writes probes at the scenario's think times, through the driver. The target is a
//! fake on purpose: the claims are about when the driver looks and how it counts, not about a
//! database. Its read side shows a write a fixed time after the commit, so every expected
//! count follows from that time and the think times by hand; nothing asserts how fast
//! anything ran (a late look only ever sees more, and the cases are chosen so that it cannot
//! change a count).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_bench::backend::{ExecError, Receipt};
use cqrs_bench::dataset::DatasetSpec;
use cqrs_bench::domain::{Command, CommandKind, Query};
use cqrs_bench::metrics::{Recorder, RunMetrics};
use cqrs_bench::workload::driver::{drive, DriverConfig, Lane, Pace, Progress, Target};
use cqrs_bench::workload::mix::{MixSpec, OpStream};

/// A read side that shows each write `visible_after` its commit, noting for every write the
/// latest look, measured from the commit.
struct LaggingTarget {
    visible_after: Duration,
    latest_look: Mutex<HashMap<Instant, Duration>>,
}

impl Target for LaggingTarget {
    type Session = ();
    type Ops = OpStream;

    fn session(&self, _writes: bool) {}

    async fn execute(&self, _: &mut (), _cmd: &Command) -> Result<Receipt, ExecError> {
        Ok(Receipt {
            committed_at: Some(Instant::now()),
            ..Receipt::default()
        })
    }

    async fn query(&self, _: &mut (), _q: &Query) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn is_visible(&self, _: &mut (), r: &Receipt) -> Result<bool, sqlx::Error> {
        let committed = r.committed_at.expect("a commit time");
        let since = committed.elapsed();
        let mut looks = self.latest_look.lock().unwrap();
        let latest = looks.entry(committed).or_default();
        *latest = (*latest).max(since);
        Ok(since >= self.visible_after)
    }
}

/// Probes every write of a short write lane against a read side `visible_after` behind.
async fn probe_all(
    visible_after: Duration,
    think_times: Vec<Duration>,
    timeout: Duration,
) -> (RunMetrics, Vec<Duration>) {
    let target = Arc::new(LaggingTarget {
        visible_after,
        latest_look: Mutex::new(HashMap::new()),
    });
    let mix = MixSpec {
        writes: [(CommandKind::Restock, 1.0)].into_iter().collect(),
        reads: Default::default(),
        write_interval_us: 1_000,
        ..MixSpec::default()
    };
    let stream = Arc::new(OpStream::new(5, &DatasetSpec::default(), &mix));
    let start = Instant::now() + Duration::from_millis(50);
    let recorder = Arc::new(Mutex::new(Recorder::new(
        start,
        Duration::ZERO,
        Duration::from_secs(1),
    )));
    let duration = Duration::from_millis(500);
    let cfg = DriverConfig {
        duration,
        writes: Lane {
            pace: Pace::PerSecond(20.0),
            workers: 2,
        },
        reads: Lane::idle(),
        ryw_share: 1.0,
        ryw_timeout: timeout,
        ryw_think_times: think_times,
        seed: 5,
        segment: cqrs_bench::workload::segment::Segment::WHOLE,
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        drive(
            target.clone(),
            stream,
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
    let looks = target
        .latest_look
        .lock()
        .unwrap()
        .values()
        .copied()
        .collect::<Vec<Duration>>();
    (metrics, looks)
}

/// Visible 300 ms after the commit, looked for at once and after 1 s: the second look sees
/// every write (however late it came, the write was visible by then), and every first look
/// that missed timed the write as visible no earlier than 300 ms after its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_think_time_sees_what_the_first_look_missed() {
    let (m, looks) = probe_all(
        Duration::from_millis(300),
        vec![Duration::ZERO, Duration::from_secs(1)],
        Duration::from_secs(5),
    )
    .await;
    let ryw = &m.ryw;
    assert!(ryw.probes > 0, "{ryw:?}");
    assert!(!looks.is_empty());
    let by: Vec<(f64, u64)> = ryw
        .by_think_time
        .iter()
        .map(|t| (t.think_ms, t.probes))
        .collect();
    assert_eq!(by, [(0.0, ryw.probes), (1000.0, ryw.probes)], "{ryw:?}");
    assert_eq!(ryw.by_think_time[0].misses, ryw.misses);
    assert_eq!(ryw.by_think_time[1].misses, 0, "{ryw:?}");
    assert_eq!(ryw.by_think_time[1].miss_share, 0.0);
    assert_eq!(ryw.never_visible, 0);
    assert_eq!(ryw.time_to_visible.count, ryw.misses);
    if ryw.misses > 0 {
        assert!(ryw.time_to_visible.min_us >= 300_000, "{ryw:?}");
    }
    assert_eq!(ryw.skipped, 0);
}

/// A read side that never shows the write: every look at every think time misses, the
/// probe looks at the last think time at the earliest before it gives up, and never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_never_visible_misses_at_every_think_time() {
    let (m, looks) = probe_all(
        Duration::from_secs(3600),
        vec![Duration::from_millis(100), Duration::from_millis(400)],
        Duration::from_millis(200),
    )
    .await;
    let ryw = &m.ryw;
    assert!(ryw.probes > 0, "{ryw:?}");
    assert_eq!(ryw.misses, ryw.probes);
    assert_eq!(ryw.miss_share, 1.0);
    for t in &ryw.by_think_time {
        assert_eq!((t.probes, t.misses), (ryw.probes, ryw.probes), "{ryw:?}");
    }
    let thinks: Vec<f64> = ryw.by_think_time.iter().map(|t| t.think_ms).collect();
    assert_eq!(thinks, [100.0, 400.0]);
    assert_eq!(ryw.never_visible, ryw.probes);
    assert_eq!(ryw.time_to_visible.count, 0);
    for latest in looks {
        assert!(latest >= Duration::from_millis(400), "{latest:?}");
    }
}
