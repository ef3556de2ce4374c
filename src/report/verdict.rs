//! The verdict: what the numbers say, computed from them.
//!
//! - **Who is fastest** at each read level, for writes and reads (p99). A backend is only
//!   called the lowest when Welch's t-test over the per-second p99s says the gap to every other
//!   backend is significant; otherwise the tied ones are named together.
//! - **What CQRS costs here**: the write overhead of `cqrs-sync` and `cqrs-async` over
//!   `normalized`, the async projection lag, the read-your-writes miss share, and storage
//!   (bytes of read models and event log next to the write tables, measured from the database).
//! - **What CQRS buys here**: read p99 per query, join vs read model.
//! - **Where normalized writes fall behind CQRS** along the read-load sweep, if they do.
//! - **Thresholds** (evaluated by [`crate::check`]) and correctness (verify, errors).
//!
//! When any run did not keep up with its target rate, its numbers describe an overloaded
//! driver or database rather than the backend: the verdict says so and names no winner.

use std::collections::BTreeMap;

use super::stats::{welch, Sample, ALPHA};
use super::{fmt_bytes, fmt_ms, level_label, levels, run_label, Level};
use crate::backend::BackendKind;
use crate::domain::QueryKind;
use crate::metrics::IntervalStats;
use crate::results::{BackendRun, Results};

/// One titled group of verdict lines. Lines use `**bold**` and `` `code` `` only.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Every run kept up with its target rate, so the comparison is fair.
    pub fair: bool,
    /// The short answer, one or two sentences.
    pub headline: String,
    pub sections: Vec<Section>,
}

impl Verdict {
    /// The headline without markup, for a terminal.
    pub fn plain_headline(&self) -> String {
        self.headline.replace("**", "").replace('`', "")
    }
}

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

fn write_p99s(run: &BackendRun) -> Vec<f64> {
    interval_values(run, |i| (i.writes > 0).then_some(i.write_p99_us as f64))
}

fn read_p99s(run: &BackendRun) -> Vec<f64> {
    interval_values(run, |i| (i.reads > 0).then_some(i.read_p99_us as f64))
}

fn p99(run: &BackendRun, key: &str) -> Option<u64> {
    run.metrics
        .ops
        .get(key)
        .filter(|o| o.latency.count > 0)
        .map(|o| o.latency.p99_us)
}

fn p50(run: &BackendRun, key: &str) -> Option<u64> {
    run.metrics
        .ops
        .get(key)
        .filter(|o| o.latency.count > 0)
        .map(|o| o.latency.p50_us)
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `p = 0.012` / `p < 0.001`.
pub fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

fn pct(new: f64, base: f64) -> String {
    if base <= 0.0 {
        return "n/a".into();
    }
    format!("{:+.0}%", (new - base) / base * 100.0)
}

fn signed_ms(us: f64) -> String {
    let sign = if us < 0.0 { "-" } else { "+" };
    format!("{sign}{}", fmt_ms(us.abs()))
}

/// Ranking of one metric among a level's backends.
struct Ranking {
    /// `(backend, whole-run p99 µs)`, lowest first.
    order: Vec<(BackendKind, u64)>,
    /// Backends not significantly above the lowest (the lowest included).
    tied: Vec<BackendKind>,
    /// For each other backend: Welch p-value of its per-second p99s against the lowest's.
    p_vs_best: BTreeMap<BackendKind, Option<f64>>,
}

fn rank(level: &Level, key: &str, series: fn(&BackendRun) -> Vec<f64>) -> Option<Ranking> {
    let mut order: Vec<(BackendKind, u64, &BackendRun)> = level
        .runs
        .iter()
        .filter_map(|r| p99(r, key).map(|v| (r.backend, v, *r)))
        .collect();
    if order.is_empty() {
        return None;
    }
    order.sort_by_key(|(k, v, _)| (*v, *k));
    let best = Sample::of(&series(order[0].2));
    let mut tied = vec![order[0].0];
    let mut p_vs_best = BTreeMap::new();
    for (kind, _, run) in order.iter().skip(1) {
        let w = welch(&best, &Sample::of(&series(run)));
        let p = w.map(|w| w.p);
        // Without enough intervals to judge, a backend counts as tied (no claim either way).
        if !w.is_some_and(|w| w.significant() && w.diff > 0.0) {
            tied.push(*kind);
        }
        p_vs_best.insert(*kind, p);
    }
    Some(Ranking {
        order: order.into_iter().map(|(k, v, _)| (k, v)).collect(),
        tied,
        p_vs_best,
    })
}

fn rank_line(side: &str, r: &Ranking, fair: bool) -> String {
    let all = r
        .order
        .iter()
        .map(|(k, v)| format!("{k} {}", fmt_ms(*v as f64)))
        .collect::<Vec<_>>()
        .join(", ");
    if !fair {
        return format!("{side} p99: {all} (no ranking: not every run kept up)");
    }
    if r.order.len() == 1 {
        return format!("{side} p99: {all}");
    }
    let ps = |k: &BackendKind| {
        r.p_vs_best
            .get(k)
            .copied()
            .flatten()
            .map(fmt_p)
            .unwrap_or_else(|| "too few intervals to test".into())
    };
    if r.tied.len() == 1 {
        let others = r
            .order
            .iter()
            .skip(1)
            .map(|(k, _)| format!("{k} {}", ps(k)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{side} p99: lowest is **{}** ({all}); significantly lower than each other backend ({others})",
            r.order[0].0
        )
    } else {
        let tied: Vec<String> = r.tied.iter().map(|k| format!("**{k}**")).collect();
        let tied_ps = r
            .tied
            .iter()
            .skip(1)
            .map(|k| format!("{k} {}", ps(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let rest: Vec<String> = r
            .order
            .iter()
            .filter(|(k, _)| !r.tied.contains(k))
            .map(|(k, _)| format!("{k} ({})", ps(k)))
            .collect();
        let mut s = format!(
            "{side} p99: {all}; {} tied within noise ({tied_ps} against the lowest)",
            join_and(&tied)
        );
        if !rest.is_empty() {
            s.push_str(&format!("; significantly higher: {}", rest.join(", ")));
        }
        s
    }
}

fn by_backend<'a>(level: &Level<'a>) -> BTreeMap<BackendKind, &'a BackendRun> {
    level.runs.iter().map(|r| (r.backend, *r)).collect()
}

/// Overhead of `kind`'s writes over `normalized` at one level, if both ran.
fn overhead_line(level: &Level, kind: BackendKind) -> Option<String> {
    let runs = by_backend(level);
    let base = runs.get(&BackendKind::Normalized)?;
    let run = runs.get(&kind)?;
    let (b50, b99) = (p50(base, "write")? as f64, p99(base, "write")? as f64);
    let (n50, n99) = (p50(run, "write")? as f64, p99(run, "write")? as f64);
    let judged = welch(
        &Sample::of(&interval_values(base, |i| {
            (i.writes > 0).then_some(i.write_p50_us as f64)
        })),
        &Sample::of(&interval_values(run, |i| {
            (i.writes > 0).then_some(i.write_p50_us as f64)
        })),
    );
    let judgement = match judged {
        Some(w) if w.significant() && w.diff > 0.0 => {
            format!("a measurable overhead (per-second p50s, {})", fmt_p(w.p))
        }
        Some(w) if w.significant() => format!(
            "faster than normalized in this run (per-second p50s, {}): its extra work is \
             outweighed by something else, e.g. normalized's heavier join reads competing for \
             the same CPU and database",
            fmt_p(w.p)
        ),
        Some(w) => format!(
            "no measurable overhead (per-second p50s within noise, {})",
            fmt_p(w.p)
        ),
        None => "too few intervals to judge".into(),
    };
    let what = match kind {
        BackendKind::CqrsSync => "updating the read models in the write transaction",
        BackendKind::CqrsAsync => "appending the outbox event",
        BackendKind::Normalized => "",
    };
    Some(format!(
        "**{kind}** writes vs normalized (extra work: {what}): p50 {} ({}), p99 {} ({}) — {judgement}",
        signed_ms(n50 - b50),
        pct(n50, b50),
        signed_ms(n99 - b99),
        pct(n99, b99),
    ))
}

/// The query whose p99 the read models improve most at this level: `(query, ratio, backend)`.
fn max_read_gain(level: &Level) -> Option<(QueryKind, f64, BackendKind)> {
    let runs = by_backend(level);
    let base = runs.get(&BackendKind::Normalized)?;
    QueryKind::ALL
        .into_iter()
        .filter_map(|q| {
            let key = format!("read.{}", q.name());
            let b = p99(base, &key)? as f64;
            let (k, v) = runs
                .iter()
                .filter(|(k, _)| k.has_read_models())
                .filter_map(|(k, r)| p99(r, &key).map(|v| (*k, v)))
                .min_by_key(|(_, v)| *v)?;
            Some((q, b / (v as f64).max(1.0), k))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn lag_lines(level: &Level) -> Vec<String> {
    let mut out = Vec::new();
    for run in &level.runs {
        let m = &run.metrics;
        if m.lag.count > 0 {
            out.push(format!(
                "**{}** projection lag: p50 {}, p99 {}, max {} over {} events{}",
                run.backend,
                fmt_ms(m.lag.p50_us as f64),
                fmt_ms(m.lag.p99_us as f64),
                fmt_ms(m.lag.max_us as f64),
                m.lag.count,
                run.projector
                    .as_ref()
                    .map(|p| format!(
                        "; caught up {:.2} s after the load ended",
                        p.catch_up_seconds
                    ))
                    .unwrap_or_default()
            ));
        }
        if m.ryw.probes > 0 && (m.ryw.misses > 0 || run.backend == BackendKind::CqrsAsync) {
            let visible = if m.ryw.time_to_visible.count > 0 {
                format!(
                    "; a missed write became visible after p50 {} / p99 {}",
                    fmt_ms(m.ryw.time_to_visible.p50_us as f64),
                    fmt_ms(m.ryw.time_to_visible.p99_us as f64)
                )
            } else {
                String::new()
            };
            out.push(format!(
                "**{}** read-your-writes: {:.1}% of probes ({} of {}) did not see their own write on the first read{visible}{}",
                run.backend,
                m.ryw.miss_share * 100.0,
                m.ryw.misses,
                m.ryw.probes,
                if m.ryw.never_visible > 0 {
                    format!("; **{} never became visible** before the probe gave up", m.ryw.never_visible)
                } else {
                    String::new()
                }
            ));
        }
    }
    out
}

fn storage_lines(level: &Level) -> Vec<String> {
    let runs = by_backend(level);
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (kind, run) in &runs {
        let Some(s) = &run.storage else {
            missing.push(kind.to_string());
            continue;
        };
        if *kind == BackendKind::Normalized {
            out.push(format!(
                "**normalized** stores {} of write tables (its read-model and event-log tables stay empty: {} + {})",
                fmt_bytes(s.write_tables_bytes),
                fmt_bytes(s.read_tables_bytes),
                fmt_bytes(s.event_log_bytes)
            ));
        } else {
            let extra = s.read_tables_bytes + s.event_log_bytes;
            out.push(format!(
                "**{kind}** stores {} of write tables plus {} of read models and {} of event log: {} extra ({} of the write model)",
                fmt_bytes(s.write_tables_bytes),
                fmt_bytes(s.read_tables_bytes),
                fmt_bytes(s.event_log_bytes),
                fmt_bytes(extra),
                pct(
                    (s.write_tables_bytes + extra) as f64,
                    s.write_tables_bytes as f64
                )
            ));
        }
    }
    if !missing.is_empty() {
        out.push(format!(
            "storage not measured for {} (the engine could not report table sizes)",
            missing.join(", ")
        ));
    }
    out
}

fn read_gain_lines(level: &Level) -> Vec<String> {
    let runs = by_backend(level);
    let Some(base) = runs.get(&BackendKind::Normalized) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    for q in QueryKind::ALL {
        let key = format!("read.{}", q.name());
        let Some(b) = p99(base, &key) else { continue };
        let best = runs
            .iter()
            .filter(|(k, _)| k.has_read_models())
            .filter_map(|(k, r)| p99(r, &key).map(|v| (*k, v)))
            .min_by_key(|(_, v)| *v);
        if let Some((k, v)) = best {
            let ratio = b as f64 / (v as f64).max(1.0);
            let how = if ratio >= 1.0 {
                format!("{ratio:.1}× faster")
            } else {
                format!("{:.1}× slower", 1.0 / ratio)
            };
            parts.push(format!(
                "`{}` {} → {} ({k}, {how})",
                q.name(),
                fmt_ms(b as f64),
                fmt_ms(v as f64)
            ));
        }
    }
    if parts.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "read p99 per query, join (normalized) → best read model: {}",
            parts.join("; ")
        )]
    }
}

/// Where normalized writes fall behind CQRS along the sweep.
fn crossover(results: &Results, levels: &[Level], fair: bool) -> Vec<String> {
    if !fair {
        let per_level: Vec<String> = levels
            .iter()
            .map(|l| {
                let runs = l
                    .runs
                    .iter()
                    .filter_map(|r| {
                        p99(r, "write").map(|v| format!("{} {}", r.backend, fmt_ms(v as f64)))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{}: {runs}", level_label(l))
            })
            .collect();
        return vec![format!(
            "not judged, because not every run kept up; write p99 per read level — {}",
            per_level.join("; ")
        )];
    }
    let cqrs: Vec<BackendKind> = results
        .scenario
        .backends
        .iter()
        .copied()
        .filter(|k| k.has_read_models())
        .collect();
    if !results.scenario.backends.contains(&BackendKind::Normalized) || cqrs.is_empty() {
        return vec!["needs normalized and at least one CQRS backend in the run".into()];
    }
    let mut behind_at = None;
    let mut last_state = None;
    for level in levels {
        let runs = by_backend(level);
        let Some(norm) = runs.get(&BackendKind::Normalized) else {
            continue;
        };
        let Some(n99) = p99(norm, "write") else {
            continue;
        };
        let best = cqrs
            .iter()
            .filter_map(|k| {
                runs.get(k)
                    .and_then(|r| p99(r, "write").map(|v| (*k, v, *r)))
            })
            .min_by_key(|(_, v, _)| *v);
        let Some((k, c99, crun)) = best else { continue };
        let w = welch(
            &Sample::of(&write_p99s(crun)),
            &Sample::of(&write_p99s(norm)),
        );
        let behind = n99 > c99 && w.is_some_and(|w| w.significant() && w.diff > 0.0);
        let label = level_label(level);
        last_state = Some((label.clone(), n99, k, c99, w.map(|w| w.p)));
        if behind && behind_at.is_none() {
            behind_at = Some((label, n99, k, c99, w.map(|w| w.p)));
        }
    }
    let single = levels.len() <= 1;
    match (behind_at, last_state) {
        (Some((label, n99, k, c99, p)), _) => {
            let where_ = if single {
                format!("at this read level ({label})")
            } else if levels.first().map(level_label).as_deref() == Some(label.as_str()) {
                format!("already at the lowest read level ({label})")
            } else {
                format!("from **{label}** on")
            };
            vec![format!(
                "normalized writes fall behind CQRS {where_}: write p99 {} vs {k} {} (per-second p99s, {})",
                fmt_ms(n99 as f64),
                fmt_ms(c99 as f64),
                p.map(fmt_p).unwrap_or_default()
            )]
        }
        (None, Some((label, n99, k, c99, p))) => {
            let judged = p
                .map(|p| format!(" — no significant gap ({})", fmt_p(p)))
                .unwrap_or_default();
            if single {
                vec![format!(
                    "only one read level ran ({label}): normalized write p99 {} vs best CQRS ({k}) {}{judged}; normalized writes do not fall behind here. Add a `[sweep]` to find the read load where they would",
                    fmt_ms(n99 as f64),
                    fmt_ms(c99 as f64)
                )]
            } else {
                vec![format!(
                    "normalized writes do not fall significantly behind CQRS at any read level tried, up to {label} (there: {} vs {k} {}{judged})",
                    fmt_ms(n99 as f64),
                    fmt_ms(c99 as f64)
                )]
            }
        }
        (None, None) => vec!["no write latencies to compare".into()],
    }
}

fn threshold_lines(results: &Results) -> (Vec<String>, Option<bool>) {
    if results.scenario.thresholds.is_empty() {
        return (vec!["the scenario sets no thresholds".into()], None);
    }
    match crate::check::parse_all(&results.scenario.thresholds) {
        Err(bad) => (
            bad.into_iter()
                .map(|(path, e)| format!("{path}: {e} (not evaluated)"))
                .collect(),
            Some(false),
        ),
        Ok(ts) => {
            let lines: Vec<_> = crate::check::evaluate(results, &ts)
                .into_iter()
                .filter(|l| l.name.starts_with("threshold"))
                .collect();
            let failed = lines.iter().filter(|l| !l.passed).count();
            let mut out = vec![format!(
                "{} of {} threshold checks met{}",
                lines.len() - failed,
                lines.len(),
                if failed > 0 { " — **missed**:" } else { "" }
            )];
            for l in lines.iter().filter(|l| !l.passed) {
                out.push(format!(
                    "**missed** `{}` on {}: measured {}",
                    l.name.trim_start_matches("threshold ").trim(),
                    l.run,
                    l.measured
                ));
            }
            // Met thresholds, one line each, with the runs they were checked on.
            let mut met: Vec<(String, Vec<String>)> = Vec::new();
            for l in lines.iter().filter(|l| l.passed) {
                let name = l.name.trim_start_matches("threshold ").trim().to_string();
                let entry = format!("{} {}", l.run, l.measured);
                match met.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, runs)) => runs.push(entry),
                    None => met.push((name, vec![entry])),
                }
            }
            for (name, runs) in met {
                out.push(format!("met `{name}`: {}", runs.join(", ")));
            }
            (out, Some(failed == 0))
        }
    }
}

fn correctness_lines(results: &Results) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut ok = true;
    for run in &results.runs {
        if let Some(v) = &run.verify {
            if !v.ok() {
                ok = false;
                out.push(format!(
                    "**{}: read models differ from the truth** ({} mismatching rows) — its numbers do not count",
                    run_label(run),
                    v.mismatches
                ));
            }
        }
        let errors: u64 = ["write", "read"]
            .iter()
            .filter_map(|k| run.metrics.ops.get(*k))
            .map(|o| o.errors)
            .sum();
        if errors > 0 {
            out.push(format!(
                "{}: {errors} ops failed ({})",
                run_label(run),
                run.metrics
                    .errors
                    .iter()
                    .filter(|(k, _)| k.starts_with("error."))
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let verified = results.runs.iter().filter(|r| r.verify.is_some()).count();
    if ok {
        out.insert(
            0,
            if verified > 0 {
                format!(
                    "every read model matched the truth after every run ({verified} runs verified)"
                )
            } else {
                "no read models to verify (normalized only)".into()
            },
        );
    }
    (out, ok)
}

/// Computes the verdict.
pub fn verdict(results: &Results) -> Verdict {
    let levels = levels(results);
    let behind: Vec<&BackendRun> = results
        .runs
        .iter()
        .filter(|r| r.metrics.driver_behind)
        .collect();
    let fair = behind.is_empty();
    let mut sections = Vec::new();

    if !fair {
        let lines = behind
            .iter()
            .map(|r| {
                format!(
                    "**{}** did not keep up: the driver started ops up to {} late (p99 {}); achieved {:.0} writes/s and {:.0} reads/s{}",
                    run_label(r),
                    fmt_ms(r.metrics.lateness.max_us as f64),
                    fmt_ms(r.metrics.lateness.p99_us as f64),
                    r.rates.write_achieved,
                    r.rates.read_achieved,
                    match (r.rates.write_target, r.rates.read_target) {
                        (Some(w), Some(rd)) => format!(" of {w:.0} and {rd:.0} asked"),
                        (Some(w), None) => format!(" ({w:.0} writes/s asked)"),
                        _ => String::new(),
                    }
                )
            })
            .chain(std::iter::once(
                "these numbers describe an overloaded system, so **no winner is named**: lower the rates, add workers, or use a faster machine, and run again".to_string(),
            ))
            .collect();
        sections.push(Section {
            title: "Did not keep up".into(),
            lines,
        });
    }

    let mut headline_parts: Vec<String> = Vec::new();
    let mut fastest = Vec::new();
    for level in &levels {
        let label = level_label(level);
        let prefix = if levels.len() > 1 {
            format!("at {label}: ")
        } else {
            String::new()
        };
        let w = rank(level, "write", write_p99s);
        let r = rank(level, "read", read_p99s);
        if let Some(w) = &w {
            fastest.push(format!("{prefix}{}", rank_line("write", w, fair)));
        }
        if let Some(r) = &r {
            fastest.push(format!("{prefix}{}", rank_line("read", r, fair)));
        }
        // The headline speaks about the last (highest) read level.
        if std::ptr::eq(level, levels.last().expect("non-empty")) && fair {
            let name = |r: &Ranking| {
                join_and(
                    &r.tied
                        .iter()
                        .map(|k| format!("**{k}**"))
                        .collect::<Vec<_>>(),
                )
            };
            let at = if levels.len() > 1 {
                format!(" at the highest read level ({label})")
            } else {
                String::new()
            };
            if let Some(w) = &w {
                let tie = if w.tied.len() > 1 { " (tied)" } else { "" };
                headline_parts.push(format!("lowest write p99{at}: {}{tie}", name(w)));
            }
            if let Some(r) = &r {
                let tie = if r.tied.len() > 1 { " (tied)" } else { "" };
                headline_parts.push(format!("lowest read p99: {}{tie}", name(r)));
            }
            if let Some((q, ratio, k)) = max_read_gain(level) {
                if ratio >= 1.5 {
                    headline_parts.push(format!(
                        "read models cut `{}` p99 {ratio:.1}× ({k} vs normalized)",
                        q.name()
                    ));
                } else if ratio < 1.0 / 1.5 {
                    headline_parts.push(format!(
                        "read models make `{}` p99 {:.1}× slower ({k} vs normalized)",
                        q.name(),
                        1.0 / ratio
                    ));
                }
            }
            for run in level.runs.iter().filter(|r| r.metrics.lag.count > 0) {
                headline_parts.push(format!(
                    "{} pays with a projection lag of p99 {}{}",
                    run.backend,
                    fmt_ms(run.metrics.lag.p99_us as f64),
                    if run.metrics.ryw.probes > 0 {
                        format!(
                            " and {:.0}% of reads right after a write not seeing it yet",
                            run.metrics.ryw.miss_share * 100.0
                        )
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }
    if !fastest.is_empty() {
        sections.push(Section {
            title: format!("Fastest (p99; Welch's t-test over per-second p99s, α = {ALPHA})"),
            lines: fastest,
        });
    }

    let mut costs = Vec::new();
    for level in &levels {
        let prefix = if levels.len() > 1 {
            format!("at {}: ", level_label(level))
        } else {
            String::new()
        };
        for kind in [BackendKind::CqrsSync, BackendKind::CqrsAsync] {
            if let Some(l) = overhead_line(level, kind) {
                costs.push(format!("{prefix}{l}"));
            }
        }
        for l in lag_lines(level) {
            costs.push(format!("{prefix}{l}"));
        }
    }
    if let Some(first) = levels.first() {
        costs.extend(storage_lines(first));
    }
    if !costs.is_empty() {
        sections.push(Section {
            title: "What CQRS costs here".into(),
            lines: costs,
        });
    }

    let mut gains = Vec::new();
    for level in &levels {
        let prefix = if levels.len() > 1 {
            format!("at {}: ", level_label(level))
        } else {
            String::new()
        };
        for l in read_gain_lines(level) {
            gains.push(format!("{prefix}{l}"));
        }
        // Closed-loop reads: how many reads each backend served in the same time.
        if level.runs.iter().all(|r| r.rates.read_target.is_none())
            && level.runs.iter().any(|r| r.rates.read_achieved > 0.0)
        {
            gains.push(format!(
                "{prefix}read throughput (closed loop, same readers): {}",
                level
                    .runs
                    .iter()
                    .map(|r| format!("{} {:.0} reads/s", r.backend, r.rates.read_achieved))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if !gains.is_empty() {
        sections.push(Section {
            title: "What CQRS buys here".into(),
            lines: gains,
        });
    }

    sections.push(Section {
        title: "Do reads hurt writes?".into(),
        lines: crossover(results, &levels, fair),
    });

    let (tlines, thresholds_ok) = threshold_lines(results);
    sections.push(Section {
        title: "Thresholds".into(),
        lines: tlines,
    });
    let (clines, correct) = correctness_lines(results);
    sections.push(Section {
        title: "Correctness".into(),
        lines: clines,
    });

    let mut headline = if fair {
        if headline_parts.is_empty() {
            "No latencies were measured.".to_string()
        } else {
            let mut s = headline_parts.join("; ");
            if let Some(first) = s.get(..1) {
                s = first.to_uppercase() + &s[1..];
            }
            s + "."
        }
    } else {
        format!(
            "**No winner**: {} of {} runs did not keep up with the target rate, so the comparison is not fair.",
            behind.len(),
            results.runs.len()
        )
    };
    if !correct {
        headline.push_str(" **Some read models are wrong** (see Correctness).");
    }
    match thresholds_ok {
        Some(true) => headline.push_str(" Every threshold met."),
        Some(false) => headline.push_str(" **Thresholds missed** (see Thresholds)."),
        None => {}
    }
    Verdict {
        fair,
        headline,
        sections,
    }
}
