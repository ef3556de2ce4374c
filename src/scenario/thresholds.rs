//! A scenario's `[thresholds]`, parsed once into typed limits that `check` evaluates.
//!
//! Syntax: `"<backend>.<metric>" = "<op> <value>"`.
//! - `<backend>`: a backend's name, or `*` for every backend that has the metric (a wildcard
//!   skips backends without it, e.g. lag on `normalized`).
//! - `<metric>`: `write.<stat>` and `read.<stat>` (all writes / all reads), `write.<command>.<stat>`,
//!   `read.<query>.<stat>`, `lag.<stat>` (stat: `p50 p90 p99 p999 p9999 max mean`; values are
//!   durations: `250ms`, `1s`, `800us`); `ryw_miss` (share of read-your-writes probes that missed:
//!   `5%` or `0.05`); `errors` (database errors), `rejected` (domain rejections),
//!   `dead_letters`, `verify.mismatches` (counts); `throughput.write`, `throughput.read` (ops/s).
//! - `<op>`: `<=`, `<`, `>=`, `>`, `==`, `!=`.
//!
//! [`Thresholds`] serializes as the table it was written as (name → condition), so
//! `results.json` holds the thresholds exactly as the scenario file did.

use std::collections::BTreeMap;
use std::ops::Index;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backend::BackendKind;
use crate::format::one_of;
use crate::metrics::MetricKey;

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
    /// Whether `measured` meets `limit`; `<=`, `>=` and `==` allow for float rounding.
    pub fn holds(self, measured: f64, limit: f64) -> bool {
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
pub enum Unit {
    Micros,
    Share,
    Count,
    PerSecond,
}

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    Latency { key: MetricKey, stat: String },
    Lag { stat: String },
    RywMiss,
    Errors,
    Rejected,
    DeadLetters,
    Mismatches,
    Throughput { side: String },
}

impl Metric {
    pub fn unit(&self) -> Unit {
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
    /// As written: `cqrs-async.lag.p99`.
    pub name: String,
    /// As written, trimmed: `<= 250ms`.
    pub condition: String,
    /// `None` for `*`: every backend that has the metric.
    pub backend: Option<BackendKind>,
    pub metric: Metric,
    pub cmp: Cmp,
    /// In the metric's unit: µs, a share, a count or ops/s.
    pub limit: f64,
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
        // `write.p99`, `read.search.p99`: the key is everything before the statistic.
        ["write" | "read", kind @ .., stat] if kind.len() <= 1 => Metric::Latency {
            key: parts[..parts.len() - 1].join(".").parse()?,
            stat: parse_stat(stat)?,
        },
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
            let mut names = crate::backend::registry::names();
            names.push("*");
            format!("unknown backend \"{b}\" (expected {})", one_of(&names))
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

impl Threshold {
    /// Why this threshold would never be checked: it names a backend the run leaves out.
    /// `backends`: the backends that run.
    pub fn not_run(&self, backends: &[BackendKind]) -> Option<String> {
        let b = self.backend.filter(|b| !backends.contains(b))?;
        let run: Vec<&str> = backends.iter().map(|b| b.name()).collect();
        Some(format!(
            "{b} is not run by this scenario (backends: {}), so this threshold would never be \
             checked; add {b} to backends or drop the threshold",
            run.join(", ")
        ))
    }

    /// Why this threshold is no gate, if it is not: a limit outside what the metric can
    /// measure (a share outside [0, 100%], a negative duration, count or rate), or a
    /// condition every measurement meets (`<= 100%` on a share, `>= 0` on anything).
    pub fn refusal(&self) -> Option<String> {
        let unit = self.metric.unit();
        if unit == Unit::Share && !(0.0..=1.0).contains(&self.limit) {
            return Some(format!(
                "\"{}\": a share is between 0 and 100%, got {}%",
                self.condition,
                self.limit * 100.0
            ));
        }
        if self.limit < 0.0 {
            let what = match unit {
                Unit::Micros => "a duration",
                Unit::Share => "a share",
                Unit::Count => "a count",
                Unit::PerSecond => "a rate",
            };
            return Some(format!("\"{}\": {what} is never negative", self.condition));
        }
        if self.is_vacuous() {
            return Some(format!(
                "\"{}\" cannot fail: every measured value meets it; give a limit a bad run \
                 would cross",
                self.condition
            ));
        }
        None
    }

    /// True when no measurement can fail this threshold: every metric is >= 0, and a share
    /// is at most 100%.
    pub fn is_vacuous(&self) -> bool {
        let (l, share) = (self.limit, self.metric.unit() == Unit::Share);
        match self.cmp {
            Cmp::Ge => l <= 0.0,
            Cmp::Gt => l < 0.0,
            Cmp::Le => share && l >= 1.0,
            Cmp::Lt => share && l > 1.0,
            Cmp::Ne => l < 0.0 || (share && l > 1.0),
            Cmp::Eq => false,
        }
    }
}

/// Every threshold of a scenario, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds(BTreeMap<String, Threshold>);

impl Thresholds {
    /// Adds a parsed threshold (the scenario parser reports the ones that do not parse).
    pub fn insert(&mut self, threshold: Threshold) {
        self.0.insert(threshold.name.clone(), threshold);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// In name order.
    pub fn iter(&self) -> impl Iterator<Item = &Threshold> {
        self.0.values()
    }

    /// Name → condition, as written in the scenario.
    pub fn as_written(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(name, t)| (name.clone(), t.condition.clone()))
            .collect()
    }
}

/// A threshold's condition by name: `thresholds["*.errors"] == "== 0"`.
impl Index<&str> for Thresholds {
    type Output = String;

    fn index(&self, name: &str) -> &String {
        &self.0[name].condition
    }
}

impl Serialize for Thresholds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_written().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Thresholds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = BTreeMap::<String, String>::deserialize(d)?;
        let mut out = Thresholds::default();
        for (name, condition) in &written {
            let t = parse_threshold(name, condition)
                .map_err(|e| serde::de::Error::custom(format!("thresholds.\"{name}\": {e}")))?;
            out.insert(t);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cqrs_async;

    #[test]
    fn parses_thresholds() {
        let t = parse_threshold("cqrs-async.lag.p99", "<= 250ms").unwrap();
        assert_eq!(t.backend, Some(cqrs_async::KIND));
        assert_eq!(t.limit, 250_000.0);
        assert_eq!(t.cmp, Cmp::Le);
        assert_eq!(parse_threshold("*.ryw_miss", "<= 5%").unwrap().limit, 0.05);
        assert_eq!(parse_threshold("*.errors", "== 0").unwrap().cmp, Cmp::Eq);
        assert!(parse_threshold("*.write.place_order.p999", "< 1s").is_ok());
        assert!(parse_threshold("*.read.search.p99", "< 20ms").is_ok());
        assert!(parse_threshold("*.throughput.write", ">= 90").is_ok());
        // The alternatives' staleness is lag like any other.
        let mv = parse_threshold("matview.lag.p99", "<= 2s").unwrap();
        assert_eq!(mv.backend, Some(crate::backend::matview::KIND));
        assert_eq!(mv.limit, 2_000_000.0);
        let rep = parse_threshold("replica.ryw_miss", "<= 10%").unwrap();
        assert_eq!(rep.backend, Some(crate::backend::replica::KIND));
        assert_eq!(rep.limit, 0.1);
        assert!(parse_threshold("triggers.write.p99", "<= 50ms").is_ok());
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
    fn refuses_thresholds_that_cannot_fail_or_cannot_be_checked() {
        use crate::backend::{cqrs_sync, normalized};
        let run = [normalized::KIND, cqrs_sync::KIND];
        let refusal = |name: &str, cond: &str| {
            let t = parse_threshold(name, cond).unwrap();
            t.not_run(&run).or_else(|| t.refusal())
        };
        for (name, cond, needle) in [
            (
                "*.ryw_miss",
                "<= 150%",
                "a share is between 0 and 100%, got 150%",
            ),
            ("*.ryw_miss", "<= -1%", "a share is between 0 and 100%"),
            ("*.ryw_miss", "<= 100%", "cannot fail"),
            ("*.ryw_miss", "<= 1", "cannot fail"),
            ("*.ryw_miss", ">= 0%", "cannot fail"),
            ("*.write.p99", "<= -5ms", "a duration is never negative"),
            ("*.lag.max", "> -1ms", "a duration is never negative"),
            ("*.errors", ">= 0", "cannot fail"),
            ("*.errors", "<= -1", "a count is never negative"),
            ("*.throughput.write", ">= 0", "cannot fail"),
            ("*.throughput.read", "> -2", "a rate is never negative"),
            (
                "cqrs-broker.lag.p99",
                "<= 250ms",
                "cqrs-broker is not run by this scenario",
            ),
        ] {
            let e = refusal(name, cond).unwrap_or_else(|| panic!("{name} {cond} accepted"));
            assert!(e.contains(needle), "{name} {cond}: {e}");
        }
        // Gates a bad run can fail are accepted.
        for (name, cond) in [
            ("*.ryw_miss", "<= 99%"),
            ("*.ryw_miss", "< 100%"),
            ("*.ryw_miss", "== 0"),
            ("*.ryw_miss", ">= 1%"),
            ("*.errors", "== 0"),
            ("*.errors", "> 0"),
            ("*.write.p99", "<= 0ms"),
            ("*.throughput.write", ">= 1"),
            ("cqrs-sync.write.p99", "<= 50ms"),
        ] {
            assert_eq!(refusal(name, cond), None, "{name} {cond}");
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
    fn serializes_as_written() {
        let mut ts = Thresholds::default();
        ts.insert(parse_threshold("*.errors", " == 0 ").unwrap());
        ts.insert(parse_threshold("cqrs-async.lag.p99", "<= 250ms").unwrap());
        let json = serde_json::to_string(&ts).unwrap();
        assert_eq!(
            json,
            r#"{"*.errors":"== 0","cqrs-async.lag.p99":"<= 250ms"}"#
        );
        assert_eq!(serde_json::from_str::<Thresholds>(&json).unwrap(), ts);
        assert!(serde_json::from_str::<Thresholds>(r#"{"*.lag.p42":"<= 1s"}"#).is_err());
    }
}
