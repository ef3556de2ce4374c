//! The CI gate: a scenario's thresholds, evaluated against a run's results, plus the verify
//! outcome of every read model.
//!
//! Threshold syntax, in a scenario's `[thresholds]` table: `"<backend>.<metric>" = "<op> <value>"`.
//! - `<backend>`: `normalized`, `cqrs-sync`, `cqrs-async`, or `*` for every backend that has the
//!   metric (a wildcard skips backends without it, e.g. lag on `normalized`).
//! - `<metric>`: `write.<stat>` and `read.<stat>` (all writes / all reads), `write.<command>.<stat>`,
//!   `read.<query>.<stat>`, `lag.<stat>` (stat: `p50 p90 p99 p999 p9999 max mean`; values are
//!   durations: `250ms`, `1s`, `800us`); `ryw_miss` (share of read-your-writes probes that missed:
//!   `5%` or `0.05`); `errors` (database errors), `rejected` (domain rejections),
//!   `dead_letters`, `verify.mismatches` (counts); `throughput.write`, `throughput.read` (ops/s).
//! - `<op>`: `<=`, `<`, `>=`, `>`, `==`, `!=`.
//!
//! Every run (backend and sweep point) is checked against every matching threshold; one line
//! each, with the measured value.

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::domain::{CommandKind, QueryKind};
use crate::metrics::LatencyStats;
use crate::results::{BackendRun, Results};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    Le,
    Lt,
    Ge,
    Gt,
    Eq,
    Ne,
}

impl Cmp {
    fn holds(self, measured: f64, limit: f64) -> bool {
        let eps = 1e-9 * limit.abs().max(1.0);
        match self {
            Cmp::Le => measured <= limit + eps,
            Cmp::Lt => measured < limit,
            Cmp::Ge => measured + eps >= limit,
            Cmp::Gt => measured > limit,
            Cmp::Eq => (measured - limit).abs() <= eps,
            Cmp::Ne => (measured - limit).abs() > eps,
        }
    }
}

/// What a metric measures, which decides the units its limit is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Micros,
    Share,
    Count,
    PerSecond,
}

#[derive(Debug, Clone, PartialEq)]
enum Metric {
    Latency { key: String, stat: String },
    Lag { stat: String },
    RywMiss,
    Errors,
    Rejected,
    DeadLetters,
    Mismatches,
    Throughput { side: String },
}

impl Metric {
    fn unit(&self) -> Unit {
        match self {
            Metric::Latency { .. } | Metric::Lag { .. } => Unit::Micros,
            Metric::RywMiss => Unit::Share,
            Metric::Throughput { .. } => Unit::PerSecond,
            _ => Unit::Count,
        }
    }
}

const STATS: [&str; 7] = ["p50", "p90", "p99", "p999", "p9999", "max", "mean"];

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub name: String,
    pub condition: String,
    backend: Option<BackendKind>,
    metric: Metric,
    cmp: Cmp,
    limit: f64,
}

fn parse_stat(s: &str) -> Result<String, String> {
    if STATS.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown statistic \"{s}\" (expected one of {})",
            STATS.join(", ")
        ))
    }
}

fn parse_metric(parts: &[&str]) -> Result<Metric, String> {
    Ok(match parts {
        ["write" | "read", stat] => Metric::Latency {
            key: parts[0].to_string(),
            stat: parse_stat(stat)?,
        },
        ["write", cmd, stat] => {
            CommandKind::from_name(cmd).ok_or_else(|| format!("unknown command \"{cmd}\""))?;
            Metric::Latency {
                key: format!("write.{cmd}"),
                stat: parse_stat(stat)?,
            }
        }
        ["read", q, stat] => {
            QueryKind::from_name(q).ok_or_else(|| format!("unknown query \"{q}\""))?;
            Metric::Latency {
                key: format!("read.{q}"),
                stat: parse_stat(stat)?,
            }
        }
        ["lag", stat] => Metric::Lag {
            stat: parse_stat(stat)?,
        },
        ["ryw_miss"] => Metric::RywMiss,
        ["errors"] => Metric::Errors,
        ["rejected"] => Metric::Rejected,
        ["dead_letters"] => Metric::DeadLetters,
        ["verify", "mismatches"] => Metric::Mismatches,
        ["throughput", side @ ("write" | "read")] => Metric::Throughput {
            side: side.to_string(),
        },
        _ => {
            return Err(format!(
                "unknown metric \"{}\" (see `check` in the README)",
                parts.join(".")
            ))
        }
    })
}

fn parse_value(text: &str, unit: Unit) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("\"{t}\" does not start with a number"))?;
    let suffix = suffix.trim();
    match (unit, suffix) {
        (Unit::Micros, "us" | "µs") => Ok(n),
        (Unit::Micros, "ms") => Ok(n * 1e3),
        (Unit::Micros, "s") => Ok(n * 1e6),
        (Unit::Micros, _) => Err(format!(
            "\"{t}\": a latency limit needs a unit (us, ms or s)"
        )),
        (Unit::Share, "%") => Ok(n / 100.0),
        (Unit::Share, "") => Ok(n),
        (Unit::Count | Unit::PerSecond, "") => Ok(n),
        (Unit::PerSecond, "/s") => Ok(n),
        (_, s) => Err(format!("\"{t}\": unexpected unit \"{s}\"")),
    }
}

/// Parses one threshold; the error says what is wrong with it.
pub fn parse_threshold(name: &str, condition: &str) -> Result<Threshold, String> {
    let (backend, rest) = name
        .split_once('.')
        .ok_or_else(|| format!("\"{name}\": expected <backend>.<metric>"))?;
    let backend = match backend {
        "*" => None,
        b => Some(BackendKind::from_name(b).ok_or_else(|| {
            format!("unknown backend \"{b}\" (expected normalized, cqrs-sync, cqrs-async or *)")
        })?),
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let metric = parse_metric(&parts)?;
    let c = condition.trim();
    let (cmp, value) = [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ]
    .iter()
    .find_map(|(sym, cmp)| c.strip_prefix(sym).map(|v| (*cmp, v)))
    .ok_or_else(|| format!("\"{c}\": expected <op> <value>, e.g. \"<= 250ms\""))?;
    let limit = parse_value(value, metric.unit())?;
    Ok(Threshold {
        name: name.to_string(),
        condition: c.to_string(),
        backend,
        metric,
        cmp,
        limit,
    })
}

/// Parses every threshold of a scenario; `Err` lists `(field path, problem)` pairs.
pub fn parse_all(
    thresholds: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Threshold>, Vec<(String, String)>> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (name, cond) in thresholds {
        match parse_threshold(name, cond) {
            Ok(t) => ok.push(t),
            Err(e) => bad.push((format!("thresholds.\"{name}\""), e)),
        }
    }
    if bad.is_empty() {
        Ok(ok)
    } else {
        Err(bad)
    }
}

fn stat_of(l: &LatencyStats, stat: &str) -> Option<f64> {
    if l.count == 0 {
        return None;
    }
    Some(match stat {
        "p50" => l.p50_us as f64,
        "p90" => l.p90_us as f64,
        "p99" => l.p99_us as f64,
        "p999" => l.p999_us as f64,
        "p9999" => l.p9999_us as f64,
        "max" => l.max_us as f64,
        _ => l.mean_us,
    })
}

/// The measured value of `metric` in `run`, if the run has it.
fn measure(run: &BackendRun, metric: &Metric) -> Option<f64> {
    let m = &run.metrics;
    match metric {
        Metric::Latency { key, stat } => stat_of(&m.ops.get(key)?.latency, stat),
        Metric::Lag { stat } => stat_of(&m.lag, stat),
        Metric::RywMiss => (m.ryw.probes > 0).then_some(m.ryw.miss_share),
        Metric::Errors => Some(
            ["write", "read"]
                .iter()
                .filter_map(|k| m.ops.get(*k))
                .map(|o| o.errors as f64)
                .sum(),
        ),
        Metric::Rejected => Some(m.ops.get("write").map_or(0.0, |o| o.rejected as f64)),
        Metric::DeadLetters => run.projector.as_ref().map(|p| p.dead_letters as f64),
        Metric::Mismatches => run.verify.as_ref().map(|v| v.mismatches as f64),
        Metric::Throughput { side } => Some(if side == "write" {
            run.rates.write_achieved
        } else {
            run.rates.read_achieved
        }),
    }
}

fn show(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Micros => crate::report::table::fmt_us(value.round() as u64),
        Unit::Share => format!("{:.2}%", value * 100.0),
        Unit::Count => format!("{value}"),
        Unit::PerSecond => format!("{value:.1}/s"),
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

fn run_label(run: &BackendRun) -> String {
    match &run.sweep_point {
        Some(p) => format!("{} @ {}", run.backend, p.label()),
        None => run.backend.to_string(),
    }
}

/// Evaluates thresholds against every run, and lists every read model's verify outcome.
pub fn evaluate(results: &Results, thresholds: &[Threshold]) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    for run in &results.runs {
        for t in thresholds {
            if t.backend.is_some_and(|b| b != run.backend) {
                continue;
            }
            let measured = measure(run, &t.metric);
            let name = format!("threshold {} {}", t.name, t.condition);
            match measured {
                Some(v) => lines.push(CheckLine {
                    name,
                    run: run_label(run),
                    passed: t.cmp.holds(v, t.limit),
                    measured: show(v, t.metric.unit()),
                    detail: Vec::new(),
                }),
                // A wildcard skips runs without the metric; a named backend must have it.
                None if t.backend.is_none() => {}
                None => lines.push(CheckLine {
                    name,
                    run: run_label(run),
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
                    run: run_label(run),
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
    fn parses_thresholds() {
        let t = parse_threshold("cqrs-async.lag.p99", "<= 250ms").unwrap();
        assert_eq!(t.backend, Some(BackendKind::CqrsAsync));
        assert_eq!(t.limit, 250_000.0);
        assert_eq!(t.cmp, Cmp::Le);
        assert_eq!(parse_threshold("*.ryw_miss", "<= 5%").unwrap().limit, 0.05);
        assert_eq!(parse_threshold("*.errors", "== 0").unwrap().cmp, Cmp::Eq);
        assert!(parse_threshold("*.write.place_order.p999", "< 1s").is_ok());
        assert!(parse_threshold("*.read.search.p99", "< 20ms").is_ok());
        assert!(parse_threshold("*.throughput.write", ">= 90").is_ok());
    }

    #[test]
    fn rejects_bad_thresholds() {
        for (name, cond, needle) in [
            ("mysql.errors", "== 0", "unknown backend"),
            ("*.lag.p42", "<= 1s", "unknown statistic"),
            ("*.write.p99", "<= 50", "needs a unit"),
            ("*.write.refund.p99", "<= 5ms", "unknown command"),
            ("*.latency", "<= 5ms", "unknown metric"),
            ("*.errors", "about 0", "expected <op> <value>"),
            ("errors", "== 0", "expected <backend>.<metric>"),
        ] {
            let e = parse_threshold(name, cond).unwrap_err();
            assert!(e.contains(needle), "{name} {cond}: {e}");
        }
    }

    #[test]
    fn comparisons_hold_as_written() {
        assert!(Cmp::Le.holds(250_000.0, 250_000.0));
        assert!(!Cmp::Lt.holds(250_000.0, 250_000.0));
        assert!(Cmp::Eq.holds(0.0, 0.0));
        assert!(!Cmp::Eq.holds(1.0, 0.0));
        assert!(Cmp::Gt.holds(2.0, 1.0));
    }

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
