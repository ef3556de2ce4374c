//! `cqrs-bench compare BASE.json NEW.json`: per run (backend and sweep point) and metric, the
//! change from BASE to NEW with a statistical judgement.
//!
//! Each metric is a series of per-interval values (1 s each by default: write p50/p99, read
//! p50/p99, lag p50/p99, achieved writes/s and reads/s, failed ops/s), so a run of N measured
//! seconds gives about N values. Welch's t-test (unequal variances) compares the two series'
//! means; a change is *significant* when the two-sided p-value is below [`ALPHA`]. Partial
//! intervals (shorter than half an interval) and intervals without samples of the metric are
//! left out. Caveats worth knowing: neighbouring intervals are not fully independent
//! (autocorrelation makes the test somewhat optimistic), and with many metrics a few
//! significant changes at α = 0.05 are expected by chance — look at the size of the change too.
//!
//! Two runs are only comparable when they replayed the same thing: same scenario (name and
//! settings) and the same op stream hash. Otherwise `compare` refuses unless forced.

use std::fmt::Write;

use super::fmt_ms;
use super::stats::{welch, Sample, Welch, ALPHA};
use super::verdict::{fmt_p, interval_values, saturation_detail};
use crate::metrics::IntervalStats;
use crate::results::{BackendRun, Results};

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// A metric compared between the two runs.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub unit: Unit,
    pub better: Better,
    field: fn(&IntervalStats) -> Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Micros,
    PerSecond,
}

fn per_s(n: u64, i: &IntervalStats) -> Option<f64> {
    (i.duration_s > 0.0).then(|| n as f64 / i.duration_s)
}

/// The metrics `compare` judges, in output order.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: "write p50",
        unit: Unit::Micros,
        better: Better::Lower,
        field: |i| (i.writes > 0).then_some(i.write_p50_us as f64),
    },
    MetricDef {
        name: "write p99",
        unit: Unit::Micros,
        better: Better::Lower,
        field: |i| (i.writes > 0).then_some(i.write_p99_us as f64),
    },
    MetricDef {
        name: "read p50",
        unit: Unit::Micros,
        better: Better::Lower,
        field: |i| (i.reads > 0).then_some(i.read_p50_us as f64),
    },
    MetricDef {
        name: "read p99",
        unit: Unit::Micros,
        better: Better::Lower,
        field: |i| (i.reads > 0).then_some(i.read_p99_us as f64),
    },
    MetricDef {
        name: "lag p50",
        unit: Unit::Micros,
        better: Better::Lower,
        field: |i| (i.lag_count > 0).then_some(i.lag_p50_us as f64),
    },
    MetricDef {
        name: "lag p99",
        unit: Unit::Micros,
        better: Better::Lower,
        field: |i| (i.lag_count > 0).then_some(i.lag_p99_us as f64),
    },
    MetricDef {
        name: "writes/s",
        unit: Unit::PerSecond,
        better: Better::Higher,
        field: |i| per_s(i.writes, i),
    },
    MetricDef {
        name: "reads/s",
        unit: Unit::PerSecond,
        better: Better::Higher,
        field: |i| per_s(i.reads, i),
    },
    MetricDef {
        name: "failed ops/s",
        unit: Unit::PerSecond,
        better: Better::Lower,
        field: |i| per_s(i.errors, i),
    },
];

/// How a metric moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Significant change for the worse.
    Regression,
    /// Significant change for the better.
    Improvement,
    /// No significant change.
    NoChange,
    /// Too few intervals in one of the runs to test.
    Untested,
}

#[derive(Debug, Clone)]
pub struct Change {
    /// Run label: `cqrs-async`, `cqrs-async @ reads 200/s`.
    pub run: String,
    pub metric: &'static str,
    pub unit: Unit,
    pub base: Sample,
    pub new: Sample,
    /// `(new - base) / base` in percent of the means; `None` when the base mean is 0.
    pub change_pct: Option<f64>,
    pub welch: Option<Welch>,
    pub judgement: Judgement,
}

impl Change {
    pub fn is_regression(&self) -> bool {
        self.judgement == Judgement::Regression
    }

    /// Size of the change for the worse in percent (0 for a change for the better); an
    /// appearance from a zero base counts as infinite.
    pub fn worse_pct(&self, better: Better) -> f64 {
        match self.change_pct {
            Some(p) => match better {
                Better::Lower => p.max(0.0),
                Better::Higher => (-p).max(0.0),
            },
            None if self.new.mean > 0.0 && better == Better::Lower => f64::INFINITY,
            None => 0.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub base_label: String,
    pub new_label: String,
    /// Things that differ between the runs and were accepted (`--force`), or that do not
    /// stop a comparison (engine, machine).
    pub notes: Vec<String>,
    pub changes: Vec<Change>,
    /// Runs present in only one of the files.
    pub unmatched: Vec<String>,
}

/// Why two result files were not compared.
#[derive(Debug, thiserror::Error)]
#[error("refusing to compare runs that did not replay the same workload (use --force to compare anyway):\n  {}", .0.join("\n  "))]
pub struct Refusal(pub Vec<String>);

/// What differs in the scenarios, field by field (top-level keys of the scenario as run).
pub(crate) fn scenario_diffs(base: &Results, new: &Results) -> Vec<String> {
    let a = serde_json::to_value(&base.scenario).unwrap_or_default();
    let b = serde_json::to_value(&new.scenario).unwrap_or_default();
    let mut out = Vec::new();
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return out;
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        // Thresholds are the gate, not the workload: they may differ.
        if k == "thresholds" || k == "description" {
            continue;
        }
        let (va, vb) = (a.get(k), b.get(k));
        if va != vb {
            let show = |v: Option<&serde_json::Value>| {
                let s = v.map(|v| v.to_string()).unwrap_or_else(|| "absent".into());
                if s.chars().count() > 80 {
                    format!("{}…", s.chars().take(80).collect::<String>())
                } else {
                    s
                }
            };
            out.push(format!("scenario.{k}: {} vs {}", show(va), show(vb)));
        }
    }
    out
}

/// Compares NEW against BASE. Refuses runs of different scenarios or op streams unless
/// `force`; then the differences become notes.
pub fn compare(base: &Results, new: &Results, force: bool) -> Result<Comparison, Refusal> {
    let mut problems = Vec::new();
    if base.scenario.name != new.scenario.name {
        problems.push(format!(
            "different scenarios: {} vs {}",
            base.scenario.name, new.scenario.name
        ));
    }
    if base.stream_hash != new.stream_hash {
        problems.push(format!(
            "different op streams: stream hash {} vs {}",
            base.stream_hash, new.stream_hash
        ));
    }
    problems.extend(scenario_diffs(base, new));
    if !problems.is_empty() && !force {
        return Err(Refusal(problems));
    }
    let mut notes: Vec<String> = problems
        .into_iter()
        .map(|p| format!("{p} (compared anyway: --force)"))
        .collect();
    let env = |r: &Results| {
        format!(
            "{} {} on {} CPUs ({})",
            r.environment.engine,
            r.environment.server_version,
            r.environment.cpus,
            r.environment.os
        )
    };
    if env(base) != env(new) {
        notes.push(format!(
            "different environments: {} vs {}",
            env(base),
            env(new)
        ));
    }
    if base.environment.projector_mode != new.environment.projector_mode {
        notes.push(format!(
            "different projectors: {:?} vs {:?}",
            base.environment.projector_mode, new.environment.projector_mode
        ));
    }
    for (side, r) in [("base", base), ("new", new)] {
        for run in &r.runs {
            let m = &run.metrics;
            if m.driver_behind {
                notes.push(format!(
                    "{side}: {} is invalid: the driver fell behind (free workers started ops late: dispatch p99 {}, max {}), so its numbers describe the harness, not the backend; changes in it say nothing about the backend",
                    run.label(),
                    fmt_ms(m.dispatch.p99_us as f64),
                    fmt_ms(m.dispatch.max_us as f64)
                ));
            } else if m.saturated {
                notes.push(format!(
                    "{side}: {} saturated — {}; a valid measurement of an overloaded system, but its latencies include that wait",
                    run.label(),
                    saturation_detail(run)
                ));
            }
        }
    }

    let mut changes = Vec::new();
    let mut unmatched = Vec::new();
    for b in &base.runs {
        let Some(n) = new
            .runs
            .iter()
            .find(|n| n.backend == b.backend && n.sweep_point == b.sweep_point)
        else {
            unmatched.push(format!("{} (only in base)", b.label()));
            continue;
        };
        for m in METRICS {
            if let Some(c) = change(b, n, m) {
                changes.push(c);
            }
        }
    }
    for n in &new.runs {
        if !base
            .runs
            .iter()
            .any(|b| n.backend == b.backend && n.sweep_point == b.sweep_point)
        {
            unmatched.push(format!("{} (only in new)", n.label()));
        }
    }
    Ok(Comparison {
        base_label: format!("{} ({})", base.started_at, base.stream_hash),
        new_label: format!("{} ({})", new.started_at, new.stream_hash),
        notes,
        changes,
        unmatched,
    })
}

fn change(base: &BackendRun, new: &BackendRun, m: &MetricDef) -> Option<Change> {
    let a = Sample::of(&interval_values(base, m.field));
    let b = Sample::of(&interval_values(new, m.field));
    if a.n == 0 && b.n == 0 {
        return None;
    }
    let w = welch(&a, &b);
    let change_pct = (a.mean != 0.0).then(|| (b.mean - a.mean) / a.mean * 100.0);
    let judgement = match w {
        None => Judgement::Untested,
        Some(w) if !w.significant() => Judgement::NoChange,
        Some(w) => {
            let worse = match m.better {
                Better::Lower => w.diff > 0.0,
                Better::Higher => w.diff < 0.0,
            };
            if worse {
                Judgement::Regression
            } else {
                Judgement::Improvement
            }
        }
    };
    Some(Change {
        run: base.label(),
        metric: m.name,
        unit: m.unit,
        base: a,
        new: b,
        change_pct,
        welch: w,
        judgement,
    })
}

fn better_of(metric: &str) -> Better {
    METRICS
        .iter()
        .find(|m| m.name == metric)
        .map(|m| m.better)
        .unwrap_or(Better::Lower)
}

impl Comparison {
    /// Significant regressions whose size exceeds `pct` percent.
    pub fn regressions_over(&self, pct: f64) -> Vec<&Change> {
        self.changes
            .iter()
            .filter(|c| c.is_regression() && c.worse_pct(better_of(c.metric)) > pct)
            .collect()
    }

    pub fn regressions(&self) -> usize {
        self.changes.iter().filter(|c| c.is_regression()).count()
    }

    pub fn improvements(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.judgement == Judgement::Improvement)
            .count()
    }

    /// Metrics present in the runs that could not be tested (fewer than two intervals on a
    /// side, e.g. a run of one interval).
    pub fn untested(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.judgement == Judgement::Untested)
            .count()
    }

    /// Metrics the t-test judged.
    pub fn tested(&self) -> usize {
        self.changes.len() - self.untested()
    }

    /// The comparison as a text table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "base: {}", self.base_label);
        let _ = writeln!(out, "new:  {}", self.new_label);
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for u in &self.unmatched {
            let _ = writeln!(out, "not compared: {u}");
        }
        let _ = writeln!(
            out,
            "\nbase and new: mean ± standard error of the per-interval values; p: Welch's t-test"
        );
        let _ = writeln!(
            out,
            "{:<28} {:<13} {:>17} {:>17} {:>8} {:>10}  judgement",
            "run", "metric", "base mean±se", "new mean±se", "change", "p"
        );
        for c in &self.changes {
            let v = |s: &Sample| match c.unit {
                Unit::Micros => format!("{}±{}", fmt_ms(s.mean), fmt_ms(s.std_err())),
                Unit::PerSecond => format!("{:.1}±{:.1}", s.mean, s.std_err()),
            };
            let change = match c.change_pct {
                Some(p) => format!("{p:+.1}%"),
                None if c.new.mean == 0.0 => "0".into(),
                None => "new".into(),
            };
            let p = c
                .welch
                .map(|w| {
                    fmt_p(w.p)
                        .trim_start_matches("p ")
                        .replace("= ", "")
                        .to_string()
                })
                .unwrap_or_else(|| "-".into());
            let j = match c.judgement {
                Judgement::Regression => "REGRESSION".to_string(),
                Judgement::Improvement => "improvement".to_string(),
                Judgement::NoChange => "no significant change".to_string(),
                Judgement::Untested => {
                    format!("not tested (n = {}/{}, need 2 each)", c.base.n, c.new.n)
                }
            };
            let _ = writeln!(
                out,
                "{:<28} {:<13} {:>17} {:>17} {:>8} {:>10}  {j}",
                c.run,
                c.metric,
                v(&c.base),
                v(&c.new),
                change,
                p
            );
        }
        let _ = writeln!(
            out,
            "\n{} significant regressions, {} significant improvements, {} metrics without significant change, \
             {} metrics not tested (fewer than 2 intervals in a run) \
             (Welch's t-test over per-interval values, two-sided, α = {ALPHA}; no correction for multiple comparisons)",
            self.regressions(),
            self.improvements(),
            self.changes
                .iter()
                .filter(|c| c.judgement == Judgement::NoChange)
                .count(),
            self.untested()
        );
        out
    }
}
