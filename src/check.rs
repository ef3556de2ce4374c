//! The CI gate: a scenario's thresholds, evaluated against a run's results, plus the verify
//! outcome of every read model.
//!
//! Thresholds are parsed, typed, with the scenario ([`crate::scenario::thresholds`]).
//!
//! Every run (backend and sweep point) is checked against every matching threshold; one line
//! each, with the measured value.

use serde::{Deserialize, Serialize};

use crate::format::{fmt_bytes, fmt_us};
use crate::metrics::{MetricKey, Stat};
use crate::results::{BackendRun, Results};
use crate::scenario::thresholds::{Budgets, Metric, Threshold, Thresholds, Unit};

/// Commit → visible to a reader at `stat`, µs: 0 for a backend whose reads see every committed
/// write by construction (its registry entry says its read side never lags); otherwise the
/// larger of its lag and its read-your-writes visible time, at least 1 µs (such a read side
/// is never fresh by construction), `None` when neither was measured.
pub fn staleness(run: &BackendRun, stat: Stat) -> Option<f64> {
    if !crate::backend::registry::entry(run.backend).read_side_lags {
        return Some(0.0);
    }
    let m = &run.metrics;
    let lag = stat.of(&m.lag);
    let ryw = stat.of(&m.ryw.time_to_visible);
    match (lag, ryw) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0).max(b.unwrap_or(0.0)).max(1.0)),
    }
}

/// How many samples a staleness figure rests on (lag samples and probes that saw the write).
pub fn staleness_samples(run: &BackendRun) -> u64 {
    if !crate::backend::registry::entry(run.backend).read_side_lags {
        return u64::MAX;
    }
    run.metrics
        .lag
        .count
        .max(run.metrics.ryw.time_to_visible.count)
}

/// Bytes of the write tables, read models and event log, when the engine could tell.
pub fn storage_bytes(run: &BackendRun) -> Option<f64> {
    run.storage
        .as_ref()
        .map(|s| (s.write_tables_bytes + s.read_tables_bytes + s.event_log_bytes) as f64)
}

/// The measured value of `metric` in `run`, if the run has it.
pub fn measure(run: &BackendRun, metric: &Metric) -> Option<f64> {
    let m = &run.metrics;
    match metric {
        Metric::Latency { key, stat } => stat.of(&m.op(*key)?.latency),
        Metric::Lag { stat } => stat.of(&m.lag),
        Metric::RywMiss => (m.ryw.probes > 0).then_some(m.ryw.miss_share),
        Metric::Errors => Some(m.errors() as f64),
        Metric::Rejected => Some(m.op(MetricKey::Writes).map_or(0.0, |o| o.rejected as f64)),
        Metric::DeadLetters => run.projector.as_ref().map(|p| p.dead_letters as f64),
        Metric::Mismatches => run.verify.as_ref().map(|v| v.mismatches as f64),
        Metric::Throughput { side } => Some(if side == "write" {
            run.rates.write_achieved
        } else {
            run.rates.read_achieved
        }),
        Metric::Staleness { stat } => staleness(run, *stat),
        Metric::Storage => storage_bytes(run),
    }
}

/// A measured value in its unit (`12.3ms`, `5.00%`, `1.2 GiB`).
pub fn show(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Micros => fmt_us(value.round() as u64),
        Unit::Share => format!("{:.2}%", value * 100.0),
        Unit::Count => format!("{value}"),
        Unit::PerSecond => format!("{value:.1}/s"),
        Unit::Bytes => fmt_bytes(value.round() as u64),
    }
}

/// One line of a check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckLine {
    /// e.g. `threshold cqrs-async.lag.p99 <= 250ms` or `verify cqrs-sync product_catalog`.
    pub name: String,
    /// The run it is about (`cqrs-async`, `cqrs-async @ reads 200/s`).
    pub run: String,
    pub passed: bool,
    pub measured: String,
    pub detail: Vec<String>,
}

/// Evaluates thresholds and budgets (`*` thresholds, named `budget <key> <= <value>`) against
/// every run, and lists every read model's verify outcome.
pub fn evaluate(results: &Results, thresholds: &Thresholds, budgets: &Budgets) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let all: Vec<(String, &Threshold)> = thresholds
        .iter()
        .map(|t| (format!("threshold {} {}", t.name, t.condition), t))
        .chain(
            budgets
                .iter()
                .map(|(key, _, t)| (format!("budget {key} {}", t.condition), t)),
        )
        .collect();
    for run in &results.runs {
        for (name, t) in &all {
            let name = name.clone();
            if t.backend.is_some_and(|b| b != run.backend) {
                continue;
            }
            let measured = measure(run, &t.metric);
            match measured {
                Some(v) => lines.push(CheckLine {
                    name,
                    run: run.label(),
                    passed: t.cmp.holds(v, t.limit),
                    measured: show(v, t.metric.unit()),
                    detail: Vec::new(),
                }),
                // A wildcard skips runs without the metric; a named backend must have it.
                None if t.backend.is_none() => {}
                None => lines.push(CheckLine {
                    name,
                    run: run.label(),
                    passed: false,
                    measured: "not measured".into(),
                    detail: vec![format!("{} did not measure this (no samples)", run.backend)],
                }),
            }
        }
        if let Some(v) = &run.verify {
            for m in &v.models {
                lines.push(CheckLine {
                    name: format!("verify {}", m.read_model.name()),
                    run: run.label(),
                    passed: m.mismatches == 0,
                    measured: format!("{} mismatches in {} rows", m.mismatches, m.rows_expected),
                    detail: m.first_diffs.clone(),
                });
            }
        }
    }
    lines
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The same lines as JUnit XML (one test case per line, a failure element when it failed).
pub fn junit(suite: &str, lines: &[CheckLine]) -> String {
    let failures = lines.iter().filter(|l| !l.passed).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        xml_escape(suite),
        lines.len()
    );
    for l in lines {
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\">",
            xml_escape(&l.run),
            xml_escape(&l.name)
        ));
        if l.passed {
            out.push_str("</testcase>\n");
        } else {
            let mut text = format!("measured {}", l.measured);
            for d in &l.detail {
                text.push('\n');
                text.push_str(d);
            }
            out.push_str(&format!(
                "\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml_escape(&format!("measured {}", l.measured)),
                xml_escape(&text)
            ));
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_marks_failures() {
        let lines = vec![
            CheckLine {
                name: "threshold *.errors == 0".into(),
                run: "normalized".into(),
                passed: true,
                measured: "0".into(),
                detail: vec![],
            },
            CheckLine {
                name: "verify daily_sales".into(),
                run: "cqrs-async".into(),
                passed: false,
                measured: "2 mismatches in 30 rows".into(),
                detail: vec!["daily_sales[20454]: has <x>".into()],
            },
        ];
        let x = junit("ci", &lines);
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert!(x.contains("<failure message=\"measured 2 mismatches in 30 rows\">"));
        assert!(x.contains("&lt;x&gt;"));
    }
}
