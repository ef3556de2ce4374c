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
//!   `staleness.<stat>` (commit → visible to the reader that needs it: the read side's lag and
//!   the read-your-writes visible time, the larger; 0 for a backend whose reads see every
//!   committed write by construction); `storage` (bytes of write tables, read models and event
//!   log: `2GiB`, `500MB`, `800KiB`).
//! - `<op>`: `<=`, `<`, `>=`, `>`, `==`, `!=`.
//!
//! A scenario's `[budgets]` (what the team needs, e.g. `write.p99 = "50ms"`) are thresholds of
//! the same kind for every backend (`*`), always `<=` ([`parse_budget`]); `check` evaluates
//! them like the others and the decision reads them ([`Budgets`]).
//!
//! [`Thresholds`] serializes as the table it was written as (name → condition), so
//! `results.json` holds the thresholds exactly as the scenario file did.

use std::collections::BTreeMap;
use std::ops::Index;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backend::BackendKind;
use crate::format::one_of;
use crate::metrics::{MetricKey, Stat};

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
    Bytes,
}

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    Latency {
        key: MetricKey,
        stat: Stat,
    },
    Lag {
        stat: Stat,
    },
    RywMiss,
    Errors,
    Rejected,
    DeadLetters,
    Mismatches,
    Throughput {
        side: String,
    },
    /// Commit → visible to a reader: the larger of the lag and the read-your-writes visible
    /// time at `stat`; 0 where the read side never lags.
    Staleness {
        stat: Stat,
    },
    /// Bytes of the write tables, read models and event log at the end of the run.
    Storage,
}

impl Metric {
    pub fn unit(&self) -> Unit {
        match self {
            Metric::Latency { .. } | Metric::Lag { .. } | Metric::Staleness { .. } => Unit::Micros,
            Metric::RywMiss => Unit::Share,
            Metric::Storage => Unit::Bytes,
            Metric::Throughput { .. } => Unit::PerSecond,
            _ => Unit::Count,
        }
    }
}

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

fn parse_stat(s: &str) -> Result<Stat, String> {
    Stat::from_name(s).ok_or_else(|| {
        format!(
            "unknown statistic \"{s}\" (expected one of {})",
            Stat::ALL.map(Stat::name).join(", ")
        )
    })
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
        ["staleness", stat] => Metric::Staleness {
            stat: parse_stat(stat)?,
        },
        ["storage"] => Metric::Storage,
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
        (Unit::Bytes, _) => match suffix {
            "" | "B" => Ok(n),
            "KB" => Ok(n * 1e3),
            "MB" => Ok(n * 1e6),
            "GB" => Ok(n * 1e9),
            "TB" => Ok(n * 1e12),
            "KiB" => Ok(n * 1024.0),
            "MiB" => Ok(n * 1024.0 * 1024.0),
            "GiB" => Ok(n * 1024.0 * 1024.0 * 1024.0),
            "TiB" => Ok(n * 1024.0 * 1024.0 * 1024.0 * 1024.0),
            s => Err(format!(
                "\"{t}\": unknown size unit \"{s}\" (expected B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            )),
        },
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

/// Parses one entry of `[budgets]`: `key` is a metric (`write.p99`, `read.user_orders.p99`,
/// `staleness.p99`, `storage`), `value` its limit (`50ms`, `0ms`, `2GiB`), optionally written
/// with `<=` or `<`. The budget is a threshold named `*.<key>` for every backend.
pub fn parse_budget(key: &str, value: &str) -> Result<Threshold, String> {
    let parts: Vec<&str> = key.split('.').collect();
    let metric = parse_metric(&parts).map_err(|e| e.replace("see `check`", "see [budgets]"))?;
    if !matches!(
        metric,
        Metric::Latency { .. } | Metric::Staleness { .. } | Metric::Storage
    ) {
        return Err(format!(
            "\"{key}\" is not a budget (a budget is write.<stat>, write.<command>.<stat>, \
             read.<stat>, read.<query>.<stat>, staleness.<stat> or storage); put other limits \
             in [thresholds]"
        ));
    }
    let v = value.trim();
    let (cmp, rest) = if let Some(r) = v.strip_prefix("<=") {
        (Cmp::Le, r)
    } else if let Some(r) = v.strip_prefix('<') {
        (Cmp::Lt, r)
    } else if v.starts_with(['>', '=', '!']) {
        return Err(format!(
            "\"{v}\": a budget is an upper limit; write the value alone (\"50ms\") or with <= or <"
        ));
    } else {
        (Cmp::Le, v)
    };
    let limit = parse_value(rest, metric.unit())?;
    if limit < 0.0 {
        return Err(format!("\"{v}\": a budget must not be negative"));
    }
    let sym = if cmp == Cmp::Lt { "<" } else { "<=" };
    Ok(Threshold {
        name: format!("*.{key}"),
        condition: format!("{sym} {}", rest.trim()),
        backend: None,
        metric,
        cmp,
        limit,
    })
}

/// A scenario's `[budgets]`: what the team needs, by key as written (`write.p99`). Each is a
/// `*` threshold; serializes as the table it was written as (key → value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budgets(BTreeMap<String, (String, Threshold)>);

impl Budgets {
    /// Adds a parsed budget under its key, with its value as written.
    pub fn insert(&mut self, key: &str, written: &str, threshold: Threshold) {
        self.0
            .insert(key.to_string(), (written.trim().to_string(), threshold));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `(key, value as written, threshold)` in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Threshold)> {
        self.0.iter().map(|(k, (w, t))| (k.as_str(), w.as_str(), t))
    }

    /// The budgets as thresholds, for `check`.
    pub fn thresholds(&self) -> impl Iterator<Item = &Threshold> {
        self.0.values().map(|(_, t)| t)
    }
}

impl Serialize for Budgets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let written: BTreeMap<&str, &str> = self.iter().map(|(k, w, _)| (k, w)).collect();
        written.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Budgets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = BTreeMap::<String, String>::deserialize(d)?;
        let mut out = Budgets::default();
        for (key, value) in &written {
            let t = parse_budget(key, value)
                .map_err(|e| serde::de::Error::custom(format!("budgets.{key}: {e}")))?;
            out.insert(key, value, t);
        }
        Ok(out)
    }
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
                Unit::Bytes => "a size",
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
            ("*.write.re-fund.p99", "<= 5ms", "unknown metric"),
            ("*.latency", "<= 5ms", "unknown metric"),
            ("*.errors", "about 0", "expected <op> <value>"),
            ("errors", "== 0", "expected <backend>.<metric>"),
        ] {
            let e = parse_threshold(name, cond).unwrap_err();
            assert!(e.contains(needle), "{name} {cond}: {e}");
        }
    }

    #[test]
    fn parses_budgets_as_star_thresholds() {
        let w = parse_budget("write.p99", "50ms").unwrap();
        assert_eq!(w.name, "*.write.p99");
        assert_eq!(w.backend, None);
        assert_eq!(w.cmp, Cmp::Le);
        assert_eq!(w.limit, 50_000.0);
        assert_eq!(w.condition, "<= 50ms");
        let s = parse_budget("staleness.p99", "0ms").unwrap();
        assert_eq!(s.metric, Metric::Staleness { stat: Stat::P99 });
        assert_eq!(s.limit, 0.0);
        let st = parse_budget("storage", "2GiB").unwrap();
        assert_eq!(st.metric, Metric::Storage);
        assert_eq!(st.limit, 2.0 * 1024.0 * 1024.0 * 1024.0);
        assert_eq!(parse_budget("storage", "500MB").unwrap().limit, 5e8);
        let q = parse_budget("read.user_orders.p99", "< 20ms").unwrap();
        assert_eq!(q.cmp, Cmp::Lt);
        assert_eq!(q.limit, 20_000.0);
        // The same metrics are thresholds too.
        assert!(parse_threshold("*.staleness.p99", "<= 1s").is_ok());
        assert!(parse_threshold("cqrs-async.storage", "<= 1GB").is_ok());
    }

    #[test]
    fn rejects_bad_budgets() {
        for (key, value, needle) in [
            ("write.p99", "50", "needs a unit"),
            ("write.p42", "50ms", "unknown statistic"),
            ("errors", "0", "not a budget"),
            ("ryw_miss", "5%", "not a budget"),
            ("latency", "5ms", "unknown metric"),
            ("storage", "2 parsecs", "unknown size unit"),
            ("write.p99", ">= 5ms", "upper limit"),
            ("staleness.p99", "-1ms", "negative"),
            ("read.re-funds.p99", "5ms", "unknown metric"),
        ] {
            let e = parse_budget(key, value).unwrap_err();
            assert!(e.contains(needle), "{key} {value}: {e}");
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
    fn budgets_round_trip_as_written() {
        let mut b = Budgets::default();
        b.insert(
            "write.p99",
            "50ms",
            parse_budget("write.p99", "50ms").unwrap(),
        );
        b.insert("storage", "2GiB", parse_budget("storage", "2GiB").unwrap());
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, r#"{"storage":"2GiB","write.p99":"50ms"}"#);
        assert_eq!(serde_json::from_str::<Budgets>(&json).unwrap(), b);
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
