//! Hand-built runs for the findings' unit tests: the committed sample's runs (normalized,
//! cqrs-sync and cqrs-async at one read level, every run sound), with the figures a test is
//! about set by hand, so each expected value follows from the test's own numbers.

use crate::metrics::{LatencyStats, MetricKey};
use crate::results::{BackendRun, Results};

/// The committed sample, nothing saturated.
pub fn sample() -> Results {
    let mut r: Results =
        serde_json::from_str(include_str!("../../../reports/sample/results.json")).unwrap();
    for run in &mut r.runs {
        run.metrics.saturated = false;
        run.metrics.driver_behind = false;
    }
    r
}

/// The run of backend `name`.
pub fn run<'a>(r: &'a mut Results, name: &str) -> &'a mut BackendRun {
    r.runs
        .iter_mut()
        .find(|x| x.backend.name() == name)
        .unwrap_or_else(|| panic!("no {name} run"))
}

fn latency(run: &mut BackendRun, key: MetricKey) -> &mut LatencyStats {
    &mut run
        .metrics
        .ops
        .get_mut(&key.to_string())
        .unwrap_or_else(|| panic!("no {key} ops"))
        .latency
}

/// Sets the whole run's p50 and p99 of `key` (µs), and every full interval's p50 and p99 of
/// its lane to the same values plus `spread` on every other interval (so a t-test sees noise).
pub fn set(run: &mut BackendRun, key: MetricKey, p50: u64, p99: u64, spread: u64) {
    let l = latency(run, key);
    l.p50_us = p50;
    l.p99_us = p99;
    for (i, iv) in run.metrics.intervals.iter_mut().enumerate() {
        let extra = if i % 2 == 0 { 0 } else { spread };
        if key.is_write() {
            iv.write_p50_us = p50 + extra;
            iv.write_p99_us = p99 + extra;
        } else {
            iv.read_p50_us = p50 + extra;
            iv.read_p99_us = p99 + extra;
        }
    }
}

/// Sets the run's floor of a lane at p50 and p99 (µs).
pub fn set_floor(run: &mut BackendRun, is_write: bool, p50: u64, p99: u64) {
    let floor = run.floor.as_mut().expect("the sample calibrated its floor");
    let lane = if is_write {
        &mut floor.write
    } else {
        &mut floor.read
    };
    let l = lane.as_mut().expect("a calibrated lane");
    l.p50_us = p50;
    l.p99_us = p99;
}
