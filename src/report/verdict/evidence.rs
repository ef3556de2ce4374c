//! What a run's figures say, shared by the findings: a statistic of a lane, its per-second
//! series, the harness's floor between two runs, whether a lane saturated, a level's runs by
//! backend.

use std::collections::BTreeMap;

use super::Level;
use crate::backend::BackendKind;
use crate::metrics::{IntervalStats, MetricKey, Stat};
use crate::results::BackendRun;

/// Per-interval values of one field over the full intervals in which the op class ran.
pub fn interval_values(
    run: &BackendRun,
    field: impl Fn(&IntervalStats) -> Option<f64>,
) -> Vec<f64> {
    let full = run.metrics.interval_seconds * 0.5;
    run.metrics
        .intervals
        .iter()
        .filter(|i| i.duration_s >= full)
        .filter_map(field)
        .collect()
}

/// The per-second write p99s of a run.
pub(super) fn write_p99s(run: &BackendRun) -> Vec<f64> {
    interval_values(run, |i| (i.writes > 0).then_some(i.write_p99_us as f64))
}

/// The per-second read p99s of a run.
pub(super) fn read_p99s(run: &BackendRun) -> Vec<f64> {
    interval_values(run, |i| (i.reads > 0).then_some(i.read_p99_us as f64))
}

/// The whole run's p99 of `key`, µs, when it measured any.
pub(super) fn p99(run: &BackendRun, key: MetricKey) -> Option<u64> {
    run.metrics
        .op(key)
        .filter(|o| o.latency.count > 0)
        .map(|o| o.latency.p99_us)
}

/// The whole run's p50 of `key`, µs, when it measured any.
pub(super) fn p50(run: &BackendRun, key: MetricKey) -> Option<u64> {
    run.metrics
        .op(key)
        .filter(|o| o.latency.count > 0)
        .map(|o| o.latency.p50_us)
}

/// The harness's floor for a comparison of `a` and `b` at one statistic of one lane: the
/// larger of the two runs' floors, µs; `None` when neither run measured one.
pub(super) fn floor_of(a: &BackendRun, b: &BackendRun, is_write: bool, stat: Stat) -> Option<u64> {
    [a, b]
        .iter()
        .filter_map(|r| r.floor.as_ref()?.resolution_us(is_write, stat))
        .max()
}

/// Whether `x` and `y` differ by less than the floor (and so cannot be ranked).
pub(super) fn below_floor(x: u64, y: u64, floor: Option<u64>) -> bool {
    floor.is_some_and(|f| x.abs_diff(y) < f)
}

/// Whether the run's lane for `key` (writes or reads) was driven open loop (had a target
/// rate), so that it could saturate.
fn open_loop(run: &BackendRun, key: MetricKey) -> bool {
    if key.is_write() {
        run.rates.write_target.is_some()
    } else {
        run.rates.read_target.is_some()
    }
}

/// The run saturated under an open-loop load of this lane.
pub(super) fn saturated_in(run: &BackendRun, key: MetricKey) -> bool {
    run.metrics.saturated && open_loop(run, key)
}

/// A level's runs by backend, in the registry's order.
pub(super) fn by_backend<'a>(level: &Level<'a>) -> BTreeMap<BackendKind, &'a BackendRun> {
    level.runs.iter().map(|r| (r.backend, *r)).collect()
}
