//! Adds the metrics of the parts of one run (the segments of a scale-out run, each with its
//! histograms) into the metrics of the whole: counts add, histograms add (totals and interval
//! by interval), and every percentile is recomputed from the sums — never averaged.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::histograms::{add_encoded, encode, DecodeError, IntervalHistograms, RunHistograms};
use super::latency::{new_histogram, p50_p99_max, round_to};
use super::skew::SkewStats;
use super::{fell_behind, IntervalStats, LatencyStats, MetricKey, OpStats, RunMetrics, RywStats};

/// Why parts' metrics cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum MergeMetricsError {
    #[error("part {part} carries no histograms (run it with --segment I/N)")]
    NoHistograms { part: usize },
    #[error("part {part}: histograms.{field}: {source}")]
    Decode {
        part: usize,
        field: String,
        #[source]
        source: DecodeError,
    },
    #[error("interval_seconds: {first} in part 1, {other} in part {part}")]
    Interval { first: f64, other: f64, part: usize },
    #[error("part {part} has {histograms} interval histograms for {intervals} intervals")]
    Intervals {
        part: usize,
        histograms: usize,
        intervals: usize,
    },
}

/// A histogram summed over the parts, field by field.
struct Sum<'a> {
    parts: &'a [(&'a RunMetrics, &'a RunHistograms)],
}

impl Sum<'_> {
    fn of(
        &self,
        field: &str,
        get: impl Fn(&RunHistograms) -> Option<&String>,
    ) -> Result<Histogram<u64>, MergeMetricsError> {
        let mut h = new_histogram();
        for (i, (_, hs)) in self.parts.iter().enumerate() {
            if let Some(text) = get(hs) {
                add_encoded(&mut h, text).map_err(|source| MergeMetricsError::Decode {
                    part: i + 1,
                    field: field.to_string(),
                    source,
                })?;
            }
        }
        Ok(h)
    }
}

/// The metrics of the whole run from its parts' (in any order; at least one).
pub fn merge_metrics(parts: &[&RunMetrics]) -> Result<RunMetrics, MergeMetricsError> {
    let with: Vec<(&RunMetrics, &RunHistograms)> = parts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.histograms
                .as_ref()
                .map(|h| (*m, h))
                .ok_or(MergeMetricsError::NoHistograms { part: i + 1 })
        })
        .collect::<Result<_, _>>()?;
    let first = with[0].0;
    for (i, (m, h)) in with.iter().enumerate() {
        if m.interval_seconds != first.interval_seconds {
            return Err(MergeMetricsError::Interval {
                first: first.interval_seconds,
                other: m.interval_seconds,
                part: i + 1,
            });
        }
        if h.intervals.len() < m.intervals.len() {
            return Err(MergeMetricsError::Intervals {
                part: i + 1,
                histograms: h.intervals.len(),
                intervals: m.intervals.len(),
            });
        }
    }
    let sum = Sum { parts: &with };
    // The window the parts measured together; their starts are lined up (`--start-at`).
    let measured_seconds = with
        .iter()
        .map(|(m, _)| m.measured_seconds)
        .fold(0.0, f64::max);

    let mut ops = BTreeMap::new();
    let kinds: std::collections::BTreeSet<&String> =
        with.iter().flat_map(|(_, h)| h.ops.keys()).collect();
    let mut classes = [
        (
            MetricKey::Writes,
            OpStats::default(),
            new_histogram(),
            new_histogram(),
        ),
        (
            MetricKey::Reads,
            OpStats::default(),
            new_histogram(),
            new_histogram(),
        ),
    ];
    for kind in kinds {
        let latency = sum.of(&format!("ops.{kind}.latency"), |h| {
            h.ops.get(kind).map(|o| &o.latency)
        })?;
        let service = sum.of(&format!("ops.{kind}.service"), |h| {
            h.ops.get(kind).map(|o| &o.service)
        })?;
        let mut stats = OpStats::default();
        for (m, _) in &with {
            if let Some(o) = m.ops.get(kind) {
                stats.count += o.count;
                stats.ok += o.ok;
                stats.rejected += o.rejected;
                stats.errors += o.errors;
            }
        }
        let is_write = kind
            .parse::<MetricKey>()
            .map(|k| k.is_write())
            .unwrap_or_else(|_| kind.starts_with("write"));
        let class = &mut classes[usize::from(!is_write)];
        class.1.count += stats.count;
        class.1.ok += stats.ok;
        class.1.rejected += stats.rejected;
        class.1.errors += stats.errors;
        let _ = class.2.add(&latency);
        let _ = class.3.add(&service);
        ops.insert(
            kind.clone(),
            op_stats(stats, &latency, &service, measured_seconds),
        );
    }
    for (key, stats, latency, service) in classes {
        ops.insert(
            key.to_string(),
            op_stats(stats, &latency, &service, measured_seconds),
        );
    }

    let stats = |field: &str, get: fn(&RunHistograms) -> &String| {
        sum.of(field, |h| Some(get(h)))
            .map(|h| LatencyStats::from_histogram(&h))
    };
    let queue_wait = stats("queue_wait", |h| &h.queue_wait)?;
    let dispatch = stats("dispatch", |h| &h.dispatch)?;
    let ryw_probes: u64 = with.iter().map(|(m, _)| m.ryw.probes).sum();
    let ryw_misses: u64 = with.iter().map(|(m, _)| m.ryw.misses).sum();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for (m, _) in &with {
        for (label, n) in &m.errors {
            *errors.entry(label.clone()).or_default() += n;
        }
    }
    let mut unstarted = super::Unstarted::default();
    for (m, _) in &with {
        unstarted.writes += m.unstarted.writes;
        unstarted.reads += m.unstarted.reads;
    }
    let mut warmup = first.warmup.clone();
    for (m, _) in &with[1..] {
        warmup.ops += m.warmup.ops;
        warmup.errors += m.warmup.errors;
        warmup.lag_samples += m.warmup.lag_samples;
        warmup.ryw_probes += m.warmup.ryw_probes;
    }
    let (intervals, interval_histograms) = merge_intervals(&with)?;
    let histograms = RunHistograms {
        ops: with
            .iter()
            .flat_map(|(_, h)| h.ops.keys())
            .map(|kind| {
                let add = |latency: bool| {
                    sum.of(kind, |h| {
                        h.ops
                            .get(kind)
                            .map(|o| if latency { &o.latency } else { &o.service })
                    })
                    .map(|h| encode(&h))
                };
                Ok((
                    kind.clone(),
                    super::histograms::OpHistograms {
                        latency: add(true)?,
                        service: add(false)?,
                    },
                ))
            })
            .collect::<Result<_, MergeMetricsError>>()?,
        lag: encode(&sum.of("lag", |h| Some(&h.lag))?),
        search_freshness: encode(&sum.of("search_freshness", |h| Some(&h.search_freshness))?),
        ryw_time_to_visible: encode(
            &sum.of("ryw_time_to_visible", |h| Some(&h.ryw_time_to_visible))?,
        ),
        lateness: encode(&sum.of("lateness", |h| Some(&h.lateness))?),
        queue_wait: encode(&sum.of("queue_wait", |h| Some(&h.queue_wait))?),
        dispatch: encode(&sum.of("dispatch", |h| Some(&h.dispatch))?),
        intervals: interval_histograms,
    };
    Ok(RunMetrics {
        measured_seconds,
        interval_seconds: first.interval_seconds,
        ops,
        lag: stats("lag", |h| &h.lag)?,
        search_freshness: stats("search_freshness", |h| &h.search_freshness)?,
        search_skew: merge_skew(with.iter().map(|(m, _)| &m.search_skew)),
        ryw: RywStats {
            probes: ryw_probes,
            misses: ryw_misses,
            miss_share: if ryw_probes > 0 {
                round_to(ryw_misses as f64 / ryw_probes as f64, 1e12)
            } else {
                0.0
            },
            time_to_visible: stats("ryw_time_to_visible", |h| &h.ryw_time_to_visible)?,
            never_visible: with.iter().map(|(m, _)| m.ryw.never_visible).sum(),
            by_think_time: {
                let mut acc = super::ryw::ThinkTimeAcc::default();
                for (m, _) in &with {
                    acc.merge(&super::ryw::ThinkTimeAcc::from_stats(&m.ryw.by_think_time));
                }
                acc.stats()
            },
            skipped: with.iter().map(|(m, _)| m.ryw.skipped).sum(),
        },
        errors,
        lateness: stats("lateness", |h| &h.lateness)?,
        // A part that fell behind makes the whole fall behind.
        saturated: with.iter().any(|(m, _)| m.saturated)
            || unstarted.total() > 0
            || fell_behind(&queue_wait),
        driver_behind: with.iter().any(|(m, _)| m.driver_behind) || fell_behind(&dispatch),
        queue_wait,
        dispatch,
        waited_for_worker: with.iter().map(|(m, _)| m.waited_for_worker).sum(),
        unstarted,
        warmup,
        intervals,
        histograms: Some(histograms),
    })
}

fn op_stats(
    mut stats: OpStats,
    latency: &Histogram<u64>,
    service: &Histogram<u64>,
    measured_seconds: f64,
) -> OpStats {
    let completed = (stats.ok + stats.rejected) as f64;
    stats.ops_per_sec = if measured_seconds > 0.0 {
        round_to(completed / measured_seconds, 1e6)
    } else {
        0.0
    };
    stats.latency = LatencyStats::from_histogram(latency);
    stats.service = LatencyStats::from_histogram(service);
    stats
}

/// Interval `i` of the whole is interval `i` of every part (their starts are lined up): counts
/// add, maxima take the largest, p50/p99 come from the summed histograms.
fn merge_intervals(
    with: &[(&RunMetrics, &RunHistograms)],
) -> Result<(Vec<IntervalStats>, Vec<IntervalHistograms>), MergeMetricsError> {
    let n = with
        .iter()
        .map(|(m, _)| m.intervals.len())
        .max()
        .unwrap_or(0);
    let mut stats = Vec::with_capacity(n);
    let mut encoded = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = IntervalStats::default();
        let (mut write, mut read, mut lag) = (new_histogram(), new_histogram(), new_histogram());
        for (part, (m, h)) in with.iter().enumerate() {
            let Some(iv) = m.intervals.get(i) else {
                continue;
            };
            s.t_s = iv.t_s;
            s.duration_s = s.duration_s.max(iv.duration_s);
            s.writes += iv.writes;
            s.reads += iv.reads;
            s.errors += iv.errors;
            s.rejected += iv.rejected;
            s.lag_count += iv.lag_count;
            s.write_max_us = s.write_max_us.max(iv.write_max_us);
            s.read_max_us = s.read_max_us.max(iv.read_max_us);
            s.lag_max_us = s.lag_max_us.max(iv.lag_max_us);
            let e = &h.intervals[i];
            for (into, text, what) in [
                (&mut write, &e.write, "write"),
                (&mut read, &e.read, "read"),
                (&mut lag, &e.lag, "lag"),
            ] {
                add_encoded(into, text).map_err(|source| MergeMetricsError::Decode {
                    part: part + 1,
                    field: format!("intervals[{i}].{what}"),
                    source,
                })?;
            }
        }
        (s.write_p50_us, s.write_p99_us, _) = p50_p99_max(&write);
        (s.read_p50_us, s.read_p99_us, _) = p50_p99_max(&read);
        (s.lag_p50_us, s.lag_p99_us, _) = p50_p99_max(&lag);
        stats.push(s);
        encoded.push(IntervalHistograms::of(&write, &read, &lag));
    }
    Ok((stats, encoded))
}

/// Skew is sampled by the one part that keeps the search index; should several, the
/// extremes hold and the p99 is the largest part's (an upper bound).
fn merge_skew<'a>(parts: impl Iterator<Item = &'a SkewStats>) -> SkewStats {
    let mut out = SkewStats::default();
    for s in parts.filter(|s| s.samples > 0) {
        if out.samples == 0 {
            (out.max_events, out.min_events) = (s.max_events, s.min_events);
        }
        out.samples += s.samples;
        out.apart += s.apart;
        out.max_events = out.max_events.max(s.max_events);
        out.min_events = out.min_events.min(s.min_events);
        out.p99_abs_events = out.p99_abs_events.max(s.p99_abs_events);
    }
    out
}
