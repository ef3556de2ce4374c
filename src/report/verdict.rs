//! The verdict: what the numbers say, computed from them.
//!
//! - **Who is fastest** at each read level, for writes and reads (p99). A backend is only
//!   called the lowest when Welch's t-test over the per-second p99s says the gap to every other
//!   backend is significant *and* the gap is at least the harness's floor at that statistic
//!   (the larger of the two runs' `floor`); otherwise the tied ones are named together, and a
//!   gap under the floor is reported as "below the harness's resolution", never as a ranking.
//!   When some backends saturate at a level and others do not, the ones that kept up win it.
//! - **What CQRS costs here**: the write overhead of `cqrs-sync` and `cqrs-async` over
//!   `normalized`, the async projection lag, the read-your-writes miss share, and storage
//!   (bytes of read models and event log next to the write tables, measured from the database).
//! - **What CQRS buys here**: read p99 per query, join vs read model.
//! - **Do reads hurt writes?**: the crossover along the read-load sweep, the first level at
//!   which CQRS writes are significantly better than normalized's (above the floor) or
//!   normalized saturates while a CQRS backend keeps up, and what each CQRS backend does there.
//! - **Event sourcing vs `cqrs-async`** (when both ran): what keeping events as the write
//!   model costs (write latency ratio, version conflicts, give-ups, rehydration) and buys
//!   (no normalized write tables, the full history as the truth, no locks while deciding).
//! - **Thresholds** (evaluated by [`crate::check`]) and correctness (verify, errors).
//! - For a story scenario (`story = "…"`), the **answer** to its question in one sentence
//!   ([`story`]), which opens the report.
//!
//! Two ways a run can fall behind its open-loop load are told apart:
//! - the **system saturated** (`metrics.saturated`: ops came due while every worker was busy,
//!   or never started). That is a valid measurement of an overloaded system and a finding: the
//!   saturated runs are listed, judged with the others, and lose to backends that kept up.
//! - the **driver fell behind** (`metrics.driver_behind`: a worker was free but the op started
//!   late). Then the harness, not the backend, set the numbers: the run is invalid and the
//!   verdict names no winner.

mod alternatives;
pub mod decision;
pub mod soundness;
pub mod story;

use std::collections::BTreeMap;

use super::event_sourcing::versus_async;
use super::stats::{welch, Sample, ALPHA};
use super::{fmt_bytes, fmt_ms, level_label, levels, Level};
use crate::backend::registry::{self, Role};
use crate::backend::BackendKind;
use crate::domain::QueryKind;
use crate::metrics::{IntervalStats, MetricKey, Stat};
use crate::results::{BackendRun, Results};

/// One titled group of verdict lines. Lines use `**bold**` and `` `code` `` only.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// No run's driver fell behind, so every run is a valid measurement and a winner may be
    /// named (saturated runs are valid: saturation is a finding).
    pub fair: bool,
    /// The simplest architecture that meets the scenario's budgets (it opens the report).
    pub decision: decision::Decision,
    /// For a story scenario, the one-sentence answer to its question (it opens the report).
    pub answer: Option<story::Answer>,
    /// The short answer, one or two sentences.
    pub headline: String,
    pub sections: Vec<Section>,
}

impl Verdict {
    /// The verdict as a document: its heading, the headline, a titled list per section.
    pub fn document(&self) -> Vec<super::document::Block> {
        use super::document::{Block, Inline};
        let mut out = vec![
            Block::Heading(2, "Verdict".into()),
            Block::Paragraph(Inline::parse(&self.headline)),
        ];
        for s in &self.sections {
            out.push(Block::Heading(3, s.title.clone()));
            out.push(Block::Bullets(
                s.lines.iter().map(|l| Inline::parse(l)).collect(),
            ));
        }
        out
    }

    /// A story's answer without markup, for a terminal.
    pub fn plain_answer(&self) -> Option<String> {
        self.answer
            .as_ref()
            .map(|a| a.sentence.replace("**", "").replace('`', ""))
    }

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

fn p99(run: &BackendRun, key: MetricKey) -> Option<u64> {
    run.metrics
        .op(key)
        .filter(|o| o.latency.count > 0)
        .map(|o| o.latency.p99_us)
}

fn p50(run: &BackendRun, key: MetricKey) -> Option<u64> {
    run.metrics
        .op(key)
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

/// The harness's floor for a comparison of `a` and `b` at one statistic of one lane: the
/// larger of the two runs' floors, µs; `None` when neither run measured one.
fn floor_of(a: &BackendRun, b: &BackendRun, is_write: bool, stat: Stat) -> Option<u64> {
    [a, b]
        .iter()
        .filter_map(|r| r.floor.as_ref()?.resolution_us(is_write, stat))
        .max()
}

/// Whether `x` and `y` differ by less than the floor (and so cannot be ranked).
fn below_floor(x: u64, y: u64, floor: Option<u64>) -> bool {
    floor.is_some_and(|f| x.abs_diff(y) < f)
}

/// `below the harness's resolution (floor p99 1.2ms)`.
fn below_resolution(stat: Stat, floor: u64) -> String {
    format!(
        "below the harness's resolution (floor {stat} {})",
        fmt_ms(floor as f64)
    )
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
fn saturated_in(run: &BackendRun, key: MetricKey) -> bool {
    run.metrics.saturated && open_loop(run, key)
}

/// What saturated in a run, from its numbers: `writes waited for workers (queue wait p99 …,
/// max …; 12 ops waited), 3 ops never started (3 writes, 0 reads)`.
pub fn saturation_detail(run: &BackendRun) -> String {
    let m = &run.metrics;
    let who = match (run.rates.write_target, run.rates.read_target) {
        (Some(_), None) => "writes",
        (None, Some(_)) => "reads",
        _ => "ops",
    };
    let mut parts = Vec::new();
    if m.waited_for_worker > 0 {
        parts.push(format!(
            "{who} waited for workers (queue wait p99 {}, max {}; {} ops waited for a worker)",
            fmt_ms(m.queue_wait.p99_us as f64),
            fmt_ms(m.queue_wait.max_us as f64),
            m.waited_for_worker
        ));
    }
    let un = m.unstarted.total();
    if un > 0 {
        parts.push(format!(
            "{un} ops came due and never started ({} writes, {} reads)",
            m.unstarted.writes, m.unstarted.reads
        ));
    }
    if parts.is_empty() {
        parts.push("it fell behind its target rate".into());
    }
    join_and(&parts)
}

/// `achieved 93 writes/s and 200 reads/s of 100 and 200 asked`.
fn achieved(run: &BackendRun) -> String {
    format!(
        "achieved {:.0} writes/s and {:.0} reads/s{}",
        run.rates.write_achieved,
        run.rates.read_achieved,
        match (run.rates.write_target, run.rates.read_target) {
            (Some(w), Some(rd)) => format!(" of {w:.0} and {rd:.0} asked"),
            (Some(w), None) => format!(" ({w:.0} writes/s asked)"),
            (None, Some(rd)) => format!(" ({rd:.0} reads/s asked)"),
            (None, None) => String::new(),
        }
    )
}

/// Ranking of one metric among a level's backends.
struct Ranking {
    /// `(backend, whole-run p99 µs)`, lowest first.
    order: Vec<(BackendKind, u64)>,
    /// Backends that saturated while others at the level kept up: they cannot win it.
    saturated: Vec<BackendKind>,
    /// Every backend of the level saturated (then they are ranked among themselves).
    all_saturated: bool,
    /// Backends not significantly above the lowest of those that can win (the lowest
    /// included), or apart from it by less than the floor.
    tied: Vec<BackendKind>,
    /// For each other backend that can win: Welch p-value of its per-second p99s against the
    /// lowest's.
    p_vs_best: BTreeMap<BackendKind, Option<f64>>,
    /// Backends whose gap to the lowest is below the harness's floor, with that floor (µs).
    below_floor: BTreeMap<BackendKind, u64>,
}

impl Ranking {
    /// The backends that can win (kept up, or every one saturated), lowest first.
    fn contenders(&self) -> Vec<BackendKind> {
        self.order
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !self.saturated.contains(k))
            .collect()
    }
}

fn rank(level: &Level, key: MetricKey, series: fn(&BackendRun) -> Vec<f64>) -> Option<Ranking> {
    let is_write = key.is_write();
    let mut order: Vec<(BackendKind, u64, &BackendRun)> = level
        .runs
        .iter()
        .filter_map(|r| p99(r, key).map(|v| (r.backend, v, *r)))
        .collect();
    if order.is_empty() {
        return None;
    }
    order.sort_by_key(|(k, v, _)| (*v, *k));
    let sat: Vec<BackendKind> = order
        .iter()
        .filter(|(_, _, r)| saturated_in(r, key))
        .map(|(k, _, _)| *k)
        .collect();
    let all_saturated = sat.len() == order.len();
    let saturated = if all_saturated { Vec::new() } else { sat };
    let contenders: Vec<&(BackendKind, u64, &BackendRun)> = order
        .iter()
        .filter(|(k, _, _)| !saturated.contains(k))
        .collect();
    let (best_kind, best_v, best_run) = *contenders[0];
    let best = Sample::of(&series(best_run));
    let mut tied = vec![best_kind];
    let mut p_vs_best = BTreeMap::new();
    let mut below = BTreeMap::new();
    for (kind, v, run) in contenders.iter().skip(1) {
        let floor = floor_of(best_run, run, is_write, Stat::P99);
        if below_floor(*v, best_v, floor) {
            // Never ranked: the gap is smaller than what the harness adds by itself.
            tied.push(*kind);
            below.insert(*kind, floor.unwrap_or_default());
            continue;
        }
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
        saturated,
        all_saturated,
        tied,
        p_vs_best,
        below_floor: below,
    })
}

fn bold_list(kinds: &[BackendKind]) -> String {
    join_and(&kinds.iter().map(|k| format!("**{k}**")).collect::<Vec<_>>())
}

fn rank_line(side: &str, r: &Ranking, fair: bool) -> String {
    let all = r
        .order
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {}{}",
                fmt_ms(*v as f64),
                if r.saturated.contains(k) || r.all_saturated {
                    " (saturated)"
                } else {
                    ""
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if !fair {
        return format!(
            "{side} p99: {all} (no ranking: the driver fell behind in at least one run)"
        );
    }
    if r.order.len() == 1 {
        return format!("{side} p99: {all}");
    }
    let contenders = r.contenders();
    // Who saturated and who kept up decides first.
    let mut s = format!("{side} p99: {all}");
    if !r.saturated.is_empty() {
        let sat: Vec<String> = r.saturated.iter().map(|k| k.to_string()).collect();
        s.push_str(&format!(
            "; {} saturated and {} kept up, so the ones that kept up win",
            join_and(&sat),
            bold_list(&contenders)
        ));
        if contenders.len() == 1 {
            return s;
        }
        s.push_str(" — among them: ");
    } else if r.all_saturated {
        s.push_str("; every backend saturated here, so they are ranked by latency from intended start (which includes the wait): ");
    } else {
        s.push_str("; ");
    }
    let ps = |k: &BackendKind| {
        if let Some(f) = r.below_floor.get(k) {
            return format!("{k} {}", below_resolution(Stat::P99, *f));
        }
        format!(
            "{k} {}",
            r.p_vs_best
                .get(k)
                .copied()
                .flatten()
                .map(fmt_p)
                .unwrap_or_else(|| "too few intervals to test".into())
        )
    };
    if r.tied.len() == 1 {
        let others = contenders
            .iter()
            .skip(1)
            .map(ps)
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "lowest is **{}**; significantly lower than each other backend ({others})",
            contenders[0]
        ));
    } else if r.below_floor.len() + 1 == contenders.len() {
        // Every gap is under the floor: no ranking at all.
        let floor = r.below_floor.values().copied().max().unwrap_or_default();
        s.push_str(&format!(
            "the gaps between {} are {}: not ranked",
            bold_list(&contenders),
            below_resolution(Stat::P99, floor)
        ));
    } else {
        let tied_ps = r.tied.iter().skip(1).map(ps).collect::<Vec<_>>().join(", ");
        let rest: Vec<String> = contenders
            .iter()
            .filter(|k| !r.tied.contains(k))
            .map(ps)
            .collect();
        s.push_str(&format!(
            "{} tied ({tied_ps} against the lowest)",
            bold_list(&r.tied)
        ));
        if !rest.is_empty() {
            s.push_str(&format!("; significantly higher: {}", rest.join(", ")));
        }
    }
    s
}

fn by_backend<'a>(level: &Level<'a>) -> BTreeMap<BackendKind, &'a BackendRun> {
    level.runs.iter().map(|r| (r.backend, *r)).collect()
}

/// Overhead of `kind`'s writes over `normalized` at one level, if both ran.
fn overhead_line(level: &Level, kind: BackendKind) -> Option<String> {
    let runs = by_backend(level);
    let base = runs.get(&registry::baseline())?;
    let run = runs.get(&kind)?;
    let (b50, b99) = (p50(base, MetricKey::Writes)?, p99(base, MetricKey::Writes)?);
    let (n50, n99) = (p50(run, MetricKey::Writes)?, p99(run, MetricKey::Writes)?);
    let (f50, f99) = (
        floor_of(base, run, true, Stat::P50),
        floor_of(base, run, true, Stat::P99),
    );
    let part = |stat: Stat, n: u64, b: u64, floor: Option<u64>| {
        if below_floor(n, b, floor) {
            format!(
                "{stat} {} vs {}: {}",
                fmt_ms(n as f64),
                fmt_ms(b as f64),
                below_resolution(stat, floor.unwrap_or_default())
            )
        } else {
            format!(
                "{stat} {} ({})",
                signed_ms(n as f64 - b as f64),
                pct(n as f64, b as f64)
            )
        }
    };
    let judgement = if below_floor(n50, b50, f50) {
        "no overhead the harness can resolve (the p50 gap is below its floor)".to_string()
    } else {
        let judged = welch(
            &Sample::of(&interval_values(base, |i| {
                (i.writes > 0).then_some(i.write_p50_us as f64)
            })),
            &Sample::of(&interval_values(run, |i| {
                (i.writes > 0).then_some(i.write_p50_us as f64)
            })),
        );
        match judged {
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
        }
    };
    let what = kind.write_also();
    let mut sat = Vec::new();
    for r in [*base, *run] {
        if saturated_in(r, MetricKey::Writes) {
            sat.push(r.backend.to_string());
        }
    }
    let sat_note = if sat.is_empty() {
        String::new()
    } else {
        format!(
            "; {} saturated here, so {} write latencies include waiting for a worker",
            join_and(&sat),
            if sat.len() == 1 { "its" } else { "their" }
        )
    };
    Some(format!(
        "**{kind}** writes vs normalized (extra work: {what}): {}, {} — {judgement}{sat_note}",
        part(Stat::P50, n50, b50, f50),
        part(Stat::P99, n99, b99, f99),
    ))
}

/// The sentence comparing event-sourced with `cqrs-async` at one level, if both ran.
fn event_sourcing_line(level: &Level) -> Option<String> {
    let v = versus_async(&level.runs)?;
    let against = v.against;
    let f = &v.figures;
    let runs = by_backend(level);
    let floor = match (runs.get(&v.es), runs.get(&v.against)) {
        (Some(a), Some(b)) => floor_of(a, b, true, Stat::P99),
        _ => None,
    };
    let latency = if below_floor(v.es_write_p99_us, v.async_write_p99_us, floor) {
        format!(
            "write p99 {} vs {}: {}",
            fmt_ms(v.es_write_p99_us as f64),
            fmt_ms(v.async_write_p99_us as f64),
            below_resolution(Stat::P99, floor.unwrap_or_default())
        )
    } else {
        format!(
            "writes take {:.2}× as long at p50 ({} vs {}) and {:.2}× at p99 ({} vs {})",
            v.p50_ratio,
            fmt_ms(v.es_write_p50_us as f64),
            fmt_ms(v.async_write_p50_us as f64),
            v.p99_ratio,
            fmt_ms(v.es_write_p99_us as f64),
            fmt_ms(v.async_write_p99_us as f64),
        )
    };
    let snapshots = if f.snapshot_every > 0 {
        format!(
            "snapshots every {} versions, {:.0}% of loads from one",
            f.snapshot_every,
            f.from_snapshot_share * 100.0
        )
    } else {
        "no snapshots".to_string()
    };
    let conflicts = if f.conflicts == 0 {
        "no version conflicts".to_string()
    } else {
        format!(
            "{:.1}% of attempts lost a race on a stream version and were retried{}",
            f.conflict_rate * 100.0,
            if f.gave_up > 0 {
                format!(", **{} commands gave up**", f.gave_up)
            } else {
                ", none gave up".to_string()
            }
        )
    };
    let storage = match (v.es_total_bytes, v.async_total_bytes, f.store_bytes) {
        (Some(e), Some(a), Some(store)) => format!(
            "; it keeps {} in all ({} of it the event store, its only write model) against {} for {}",
            fmt_bytes(e),
            fmt_bytes(store),
            fmt_bytes(a),
            v.against
        ),
        _ => String::new(),
    };
    Some(format!(
        "**{}** vs **{against}** (same events, but {against} decides on normalized rows): {latency}; \
         it pays for rebuilding each stream it touches (rehydration p50 {} / p99 {}, {} / {} events read; {snapshots}) \
         and for optimistic concurrency ({conflicts}); append p50 {} / p99 {}. \
         It buys a write model that is the history itself: every change kept as an event, no \
         normalized tables to keep in step with the log, no locks held while deciding{storage}",
        v.es,
        fmt_ms(f.rehydration_p50_us as f64),
        fmt_ms(f.rehydration_p99_us as f64),
        f.events_read_p50,
        f.events_read_p99,
        fmt_ms(f.append_p50_us as f64),
        fmt_ms(f.append_p99_us as f64),
    ))
}

/// The query whose p99 the read models improve most at this level, counting only gaps above
/// the harness's floor: `(query, ratio, backend)`.
fn max_read_gain(level: &Level) -> Option<(QueryKind, f64, BackendKind)> {
    let runs = by_backend(level);
    let base = runs.get(&registry::baseline())?;
    QueryKind::ALL
        .into_iter()
        .filter_map(|q| {
            let key = MetricKey::read(q);
            let b = p99(base, key)?;
            let (k, v, run) = runs
                .iter()
                .filter(|(k, _)| k.has_read_models())
                .filter_map(|(k, r)| p99(r, key).map(|v| (*k, v, *r)))
                .min_by_key(|(_, v, _)| *v)?;
            if below_floor(b, v, floor_of(base, run, false, Stat::P99)) {
                return None;
            }
            Some((q, b as f64 / (v as f64).max(1.0), k))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn lag_lines(level: &Level) -> Vec<String> {
    let mut out = Vec::new();
    for run in &level.runs {
        let m = &run.metrics;
        if m.lag.count > 0 {
            out.push(format!(
                "**{}** {}: p50 {}, p99 {}, max {} over {} {}{}",
                run.backend,
                run.backend.lag_name(),
                fmt_ms(m.lag.p50_us as f64),
                fmt_ms(m.lag.p99_us as f64),
                fmt_ms(m.lag.max_us as f64),
                m.lag.count,
                // A projector measures each event; a refreshed view each write.
                if run.projector.is_some() {
                    "events"
                } else {
                    "writes"
                },
                run.projector
                    .as_ref()
                    .map(|p| format!(
                        "; caught up {:.2} s after the load ended",
                        p.catch_up_seconds
                    ))
                    .unwrap_or_default()
            ));
        }
        if m.ryw.probes > 0 && (m.ryw.misses > 0 || run.backend.read_side_lags()) {
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
                "**{}** read-your-writes: {:.1}% of probes ({} of {}) did not see their own write on the first read{}{visible}{}",
                run.backend,
                m.ryw.miss_share * 100.0,
                m.ryw.misses,
                m.ryw.probes,
                ryw_later_looks(&m.ryw),
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

/// The first look's think time when it is not zero, and the share still missing at each
/// later think time: ` (200ms after the commit); still missed after 1s: 0.4%`.
fn ryw_later_looks(ryw: &crate::metrics::RywStats) -> String {
    let think = |ms: f64| {
        crate::scenario::format_duration(std::time::Duration::from_nanos((ms * 1e6).round() as u64))
    };
    let mut s = String::new();
    if let Some(first) = ryw.by_think_time.first().filter(|t| t.think_ms > 0.0) {
        s.push_str(&format!(" ({} after the commit)", think(first.think_ms)));
    }
    let later: Vec<String> = ryw
        .by_think_time
        .iter()
        .skip(1)
        .map(|t| format!("after {}: {:.1}%", think(t.think_ms), t.miss_share * 100.0))
        .collect();
    if !later.is_empty() {
        s.push_str(&format!("; still missed {}", later.join(", ")));
    }
    s
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
        if kind.role() == Role::Baseline {
            out.push(format!(
                "**{kind}** stores {} of write tables (its read-model and event-log tables stay empty: {} + {})",
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
    let Some(base) = runs.get(&registry::baseline()) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    for q in QueryKind::ALL {
        let key = MetricKey::read(q);
        let Some(b) = p99(base, key) else { continue };
        let best = runs
            .iter()
            .filter(|(k, _)| k.has_read_models())
            .filter_map(|(k, r)| p99(r, key).map(|v| (*k, v, *r)))
            .min_by_key(|(_, v, _)| *v);
        if let Some((k, v, run)) = best {
            let floor = floor_of(base, run, false, Stat::P99);
            let how = if below_floor(b, v, floor) {
                format!(
                    " ({k}): {}",
                    below_resolution(Stat::P99, floor.unwrap_or_default())
                )
            } else {
                let ratio = b as f64 / (v as f64).max(1.0);
                if ratio >= 1.0 {
                    format!(" ({k}, {ratio:.1}× faster)")
                } else {
                    format!(" ({k}, {:.1}× slower)", 1.0 / ratio)
                }
            };
            parts.push(format!(
                "`{}` {} → {}{how}",
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

/// `normalized 1.2ms, cqrs-sync 900µs (saturated)` for one level's write p99s.
fn write_p99_list(level: &Level) -> String {
    level
        .runs
        .iter()
        .filter_map(|r| {
            p99(r, MetricKey::Writes).map(|v| {
                format!(
                    "{} {}{}",
                    r.backend,
                    fmt_ms(v as f64),
                    if r.metrics.driver_behind {
                        " (invalid: driver behind)"
                    } else if saturated_in(r, MetricKey::Writes) {
                        " (saturated)"
                    } else {
                        ""
                    }
                )
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a CQRS backend does at a level: `cqrs-sync kept up with write p99 1.1ms`.
fn kept_up_or_not(run: &BackendRun) -> String {
    let p = p99(run, MetricKey::Writes)
        .map(|v| format!("write p99 {}", fmt_ms(v as f64)))
        .unwrap_or_else(|| "no writes".into());
    if saturated_in(run, MetricKey::Writes) {
        format!(
            "**{}** saturated too ({p}; {})",
            run.backend,
            saturation_detail(run)
        )
    } else {
        format!("**{}** kept up with {p}", run.backend)
    }
}

/// How each backend's writes move from the lowest to the highest read level.
fn write_trend(levels: &[Level]) -> Option<String> {
    let (first, last) = (levels.first()?, levels.last()?);
    if levels.len() < 2 {
        return None;
    }
    let (a, b) = (by_backend(first), by_backend(last));
    let parts: Vec<String> = a
        .iter()
        .filter_map(|(k, ra)| {
            let rb = b.get(k)?;
            let (va, vb) = (p99(ra, MetricKey::Writes)?, p99(rb, MetricKey::Writes)?);
            let floor = floor_of(ra, rb, true, Stat::P99);
            let judged = if below_floor(va, vb, floor) {
                below_resolution(Stat::P99, floor.unwrap_or_default())
            } else {
                match welch(&Sample::of(&write_p99s(ra)), &Sample::of(&write_p99s(rb))) {
                    Some(w) if w.significant() && w.diff > 0.0 => {
                        format!("**worse**, {}", fmt_p(w.p))
                    }
                    Some(w) if w.significant() => format!("better, {}", fmt_p(w.p)),
                    Some(w) => format!("within noise, {}", fmt_p(w.p)),
                    None => "too few intervals to test".into(),
                }
            };
            let sat = if saturated_in(rb, MetricKey::Writes) && !saturated_in(ra, MetricKey::Writes)
            {
                format!("; saturated at {}", level_label(last))
            } else {
                String::new()
            };
            Some(format!(
                "{k} {} → {} ({}; {judged}{sat})",
                fmt_ms(va as f64),
                fmt_ms(vb as f64),
                pct(vb as f64, va as f64)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "write p99 from {} to {}: {}",
            level_label(first),
            level_label(last),
            parts.join("; ")
        )
    })
}

/// The "Do reads hurt writes?" section, and a headline part when normalized writes fall
/// behind CQRS in a sweep. Saturated runs are evidence here, not excluded.
fn crossover(results: &Results, levels: &[Level], fair: bool) -> (Vec<String>, Option<String>) {
    let per_level = || {
        levels
            .iter()
            .map(|l| format!("{}: {}", level_label(l), write_p99_list(l)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !fair {
        return (
            vec![format!(
                "not judged, because the driver fell behind in at least one run; write p99 per read level — {}",
                per_level()
            )],
            None,
        );
    }
    let cqrs: Vec<BackendKind> = results
        .scenario
        .backends
        .iter()
        .copied()
        .filter(|k| k.role() == Role::Cqrs)
        .collect();
    let baseline = registry::baseline();
    if !results.scenario.backends.contains(&baseline) || cqrs.is_empty() {
        return (
            vec!["needs normalized and at least one CQRS backend in the run".into()],
            None,
        );
    }
    /// What one level says.
    struct State<'a> {
        label: String,
        n99: u64,
        norm: &'a BackendRun,
        best: BackendKind,
        c99: u64,
        p: Option<f64>,
        floor: Option<u64>,
        /// Normalized saturated while at least one CQRS backend kept up.
        norm_saturated: bool,
        /// Normalized's writes are significantly slower than the best CQRS backend's, by more
        /// than the floor.
        significant: bool,
        cqrs_runs: Vec<&'a BackendRun>,
    }
    let mut crossed: Option<State> = None;
    let mut last: Option<State> = None;
    let mut all_saturated_at: Option<String> = None;
    for level in levels {
        let runs = by_backend(level);
        let Some(norm) = runs.get(&baseline) else {
            continue;
        };
        let Some(n99) = p99(norm, MetricKey::Writes) else {
            continue;
        };
        let cqrs_runs: Vec<&BackendRun> =
            cqrs.iter().filter_map(|k| runs.get(k).copied()).collect();
        // The best CQRS backend: the lowest write p99 of those that kept up, else of all.
        let best = cqrs_runs
            .iter()
            .filter_map(|r| {
                p99(r, MetricKey::Writes)
                    .map(|v| (r.backend, v, *r, saturated_in(r, MetricKey::Writes)))
            })
            .min_by_key(|(_, v, _, sat)| (*sat, *v));
        let Some((k, c99, crun, c_sat)) = best else {
            continue;
        };
        let w = welch(
            &Sample::of(&write_p99s(crun)),
            &Sample::of(&write_p99s(norm)),
        );
        let floor = floor_of(norm, crun, true, Stat::P99);
        let n_sat = saturated_in(norm, MetricKey::Writes);
        let significant = n99 > c99
            && !below_floor(n99, c99, floor)
            && w.is_some_and(|w| w.significant() && w.diff > 0.0);
        let norm_saturated = n_sat && !c_sat;
        if n_sat && c_sat && all_saturated_at.is_none() {
            all_saturated_at = Some(level_label(level));
        }
        let state = State {
            label: level_label(level),
            n99,
            norm,
            best: k,
            c99,
            p: w.map(|w| w.p),
            floor,
            norm_saturated,
            significant,
            cqrs_runs,
        };
        if (norm_saturated || significant) && crossed.is_none() {
            crossed = Some(state);
        } else {
            last = Some(state);
        }
    }
    let single = levels.len() <= 1;
    let mut lines = Vec::new();
    let mut headline = None;
    match (crossed, last) {
        (Some(s), _) => {
            let where_ = if single {
                format!("at this read level ({})", s.label)
            } else if levels.first().map(level_label).as_deref() == Some(s.label.as_str()) {
                format!("already at the lowest read level (**{}**)", s.label)
            } else {
                format!("from **{}** on", s.label)
            };
            let why = if s.norm_saturated {
                format!(
                    "normalized saturated at {}: {}; its write p99 {}{}",
                    s.label,
                    saturation_detail(s.norm),
                    fmt_ms(s.n99 as f64),
                    if s.significant {
                        format!(
                            " vs {} {} (per-second p99s, {})",
                            s.best,
                            fmt_ms(s.c99 as f64),
                            s.p.map(fmt_p).unwrap_or_default()
                        )
                    } else {
                        String::new()
                    }
                )
            } else {
                format!(
                    "write p99 {} vs {} {} (per-second p99s, {}; floor p99 {})",
                    fmt_ms(s.n99 as f64),
                    s.best,
                    fmt_ms(s.c99 as f64),
                    s.p.map(fmt_p).unwrap_or_default(),
                    s.floor
                        .map(|f| fmt_ms(f as f64))
                        .unwrap_or_else(|| "not measured".into())
                )
            };
            let there = s
                .cqrs_runs
                .iter()
                .map(|r| kept_up_or_not(r))
                .collect::<Vec<_>>();
            lines.push(format!(
                "**crossover**: normalized writes fall behind CQRS {where_} — {why}. There, {}",
                join_and(&there)
            ));
            if !single {
                headline = Some(format!(
                    "normalized writes fall behind CQRS from {} on ({})",
                    s.label,
                    if s.norm_saturated {
                        let kept: Vec<String> = s
                            .cqrs_runs
                            .iter()
                            .filter(|r| !saturated_in(r, MetricKey::Writes))
                            .map(|r| r.backend.to_string())
                            .collect();
                        format!(
                            "normalized saturates while {} {}",
                            join_and(&kept),
                            if kept.len() == 1 {
                                "keeps up"
                            } else {
                                "keep up"
                            }
                        )
                    } else {
                        format!("significantly slower than {}", s.best)
                    }
                ));
            }
        }
        (None, Some(s)) => {
            let judged = if below_floor(s.n99, s.c99, s.floor) {
                format!(
                    " — the gap is {}",
                    below_resolution(Stat::P99, s.floor.unwrap_or_default())
                )
            } else {
                s.p.map(|p| format!(" — no significant gap ({})", fmt_p(p)))
                    .unwrap_or_default()
            };
            if single {
                lines.push(format!(
                    "only one read level ran ({}): normalized write p99 {} vs best CQRS ({}) {}{judged}; normalized writes do not fall behind here. Add a `[sweep]` to find the read load where they would",
                    s.label,
                    fmt_ms(s.n99 as f64),
                    s.best,
                    fmt_ms(s.c99 as f64)
                ));
            } else {
                lines.push(format!(
                    "no crossover: normalized writes do not fall significantly behind CQRS (nor saturate while CQRS keeps up) at any read level tried, up to {} (there: {} vs {} {}{judged})",
                    s.label,
                    fmt_ms(s.n99 as f64),
                    s.best,
                    fmt_ms(s.c99 as f64)
                ));
            }
            if let Some(l) = all_saturated_at {
                lines.push(format!(
                    "at {l} normalized and every CQRS backend saturated: reads hurt every backend's writes there"
                ));
            }
        }
        (None, None) => lines.push("no write latencies to compare".into()),
    }
    if let Some(t) = write_trend(levels) {
        lines.push(t);
    }
    if !single {
        lines.push(format!("write p99 per read level — {}", per_level()));
    }
    (lines, headline)
}

fn threshold_lines(results: &Results) -> (Vec<String>, Option<bool>) {
    if results.scenario.thresholds.is_empty() {
        return (vec!["the scenario sets no thresholds".into()], None);
    }
    let lines: Vec<_> = crate::check::evaluate(
        results,
        &results.scenario.thresholds,
        &results.scenario.budgets,
    )
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

fn correctness_lines(results: &Results) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut ok = true;
    for run in &results.runs {
        if let Some(v) = &run.verify {
            if !v.ok() {
                ok = false;
                out.push(format!(
                    "**{}: read models differ from the truth** ({} mismatching rows) — its numbers do not count",
                    run.label(),
                    v.mismatches
                ));
            }
        }
        let errors = run.metrics.errors();
        if errors > 0 {
            out.push(format!(
                "{}: {errors} ops failed ({})",
                run.label(),
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

/// Lines about saturated runs (findings) and runs whose driver fell behind (invalid).
fn load_sections(levels: &[Level], invalid: &[&BackendRun]) -> Vec<Section> {
    let mut out = Vec::new();
    let mut sat_lines = Vec::new();
    for level in levels {
        let saturated: Vec<&BackendRun> = level
            .runs
            .iter()
            .copied()
            .filter(|r| r.metrics.saturated && !r.metrics.driver_behind)
            .collect();
        if saturated.is_empty() {
            continue;
        }
        for r in &saturated {
            sat_lines.push(format!(
                "**{}** saturated: {}; {}",
                r.label(),
                saturation_detail(r),
                achieved(r)
            ));
        }
        let kept: Vec<String> = level
            .runs
            .iter()
            .filter(|r| !r.metrics.saturated && !r.metrics.driver_behind)
            .map(|r| {
                format!(
                    "**{}** kept up with write p99 {}",
                    r.backend,
                    p99(r, MetricKey::Writes)
                        .map(|v| fmt_ms(v as f64))
                        .unwrap_or_else(|| "-".into())
                )
            })
            .collect();
        if !kept.is_empty() {
            sat_lines.push(format!(
                "at {}: {}{}",
                level_label(level),
                join_and(&kept),
                match (invalid.is_empty(), kept.len()) {
                    (false, _) => "",
                    (true, 1) => ", so it wins the level",
                    (true, _) => ", so they win the level",
                }
            ));
        }
    }
    if !sat_lines.is_empty() {
        sat_lines.push(
            "saturation is a finding, not a fault: the system fell behind its load while the driver kept time, every op is still timed from its intended start, so these runs count and a backend that kept up beats one that saturated at the same level".into(),
        );
        out.push(Section {
            title: "Saturation".into(),
            lines: sat_lines,
        });
    }
    if !invalid.is_empty() {
        let behind: Vec<&&BackendRun> =
            invalid.iter().filter(|r| r.metrics.driver_behind).collect();
        let short = invalid
            .iter()
            .filter(|r| !r.metrics.driver_behind)
            .map(|r| {
                format!(
                    "**{}** is too short to decide: {}; {}",
                    r.label(),
                    soundness::unsound(r)
                        .iter()
                        .map(|u| u.why())
                        .collect::<Vec<_>>()
                        .join("; "),
                    soundness::Unsound::WindowTooShort {
                        measured_seconds: 0.0,
                        needed_seconds: 0.0
                    }
                    .remedy()
                )
            });
        let lines = behind
            .iter()
            .map(|r| {
                format!(
                    "**{}** is invalid: the driver fell behind — free workers started ops up to {} late (dispatch p99 {}){}; {}",
                    r.label(),
                    fmt_ms(r.metrics.dispatch.max_us as f64),
                    fmt_ms(r.metrics.dispatch.p99_us as f64),
                    r.cpu
                        .as_ref()
                        .map(|c| format!(
                            "; the tool's threads used {} of CPU per op",
                            fmt_ms(c.driver_us_per_op)
                        ))
                        .unwrap_or_default(),
                    achieved(r)
                )
            })
            .chain((!behind.is_empty()).then(||
                "the harness, not the backend, set these numbers, so **no winner is named**: lower the rates, give the tool fewer runtime threads (`--threads`) or a quieter machine, and run again".to_string(),
            ))
            .chain(short)
            .collect();
        out.push(Section {
            title: "Invalid runs".into(),
            lines,
        });
    }
    out
}

/// Computes the verdict.
pub fn verdict(results: &Results) -> Verdict {
    let levels = levels(results);
    // Runs that cannot decide: the driver fell behind, or the window was too short.
    let invalid: Vec<&BackendRun> = results
        .runs
        .iter()
        .filter(|r| !soundness::is_sound(r))
        .collect();
    let fair = invalid.is_empty();
    let mut sections = load_sections(&levels, &invalid);

    let mut headline_parts: Vec<String> = Vec::new();
    let mut fastest = Vec::new();
    for level in &levels {
        let label = level_label(level);
        let prefix = if levels.len() > 1 {
            format!("at {label}: ")
        } else {
            String::new()
        };
        let w = rank(level, MetricKey::Writes, write_p99s);
        let r = rank(level, MetricKey::Reads, read_p99s);
        if let Some(w) = &w {
            fastest.push(format!("{prefix}{}", rank_line("write", w, fair)));
        }
        if let Some(r) = &r {
            fastest.push(format!("{prefix}{}", rank_line("read", r, fair)));
        }
        // The headline speaks about the last (highest) read level.
        if std::ptr::eq(level, levels.last().expect("non-empty")) && fair {
            let name = |r: &Ranking| {
                let mut s = bold_list(&r.tied);
                if r.tied.len() > 1 {
                    let by_noise = r.tied.len() - 1 > r.below_floor.len();
                    s.push_str(if by_noise {
                        " (tied)"
                    } else {
                        " (apart by less than the harness's resolution)"
                    });
                }
                if !r.saturated.is_empty() {
                    let sat: Vec<String> = r.saturated.iter().map(|k| k.to_string()).collect();
                    s.push_str(&format!(", {} saturated", join_and(&sat)));
                }
                s
            };
            let at = if levels.len() > 1 {
                format!(" at the highest read level ({label})")
            } else {
                String::new()
            };
            if let Some(w) = &w {
                headline_parts.push(format!("lowest write p99{at}: {}", name(w)));
            }
            if let Some(r) = &r {
                headline_parts.push(format!("lowest read p99: {}", name(r)));
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
                    "{} pays with a {} of p99 {}{}",
                    run.backend,
                    run.backend.lag_name(),
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
            title: format!(
                "Fastest (p99; Welch's t-test over per-second p99s, α = {ALPHA}; gaps under the harness's floor are not ranked)"
            ),
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
        for kind in BackendKind::all()
            .into_iter()
            .filter(|k| k.role() != Role::Baseline)
        {
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

    if let Some(section) = alternatives::section(&levels) {
        sections.push(section);
    }
    let mut es = Vec::new();
    for level in &levels {
        if let Some(l) = event_sourcing_line(level) {
            let prefix = if levels.len() > 1 {
                format!("at {}: ", level_label(level))
            } else {
                String::new()
            };
            es.push(format!("{prefix}{l}"));
        }
    }
    if !es.is_empty() {
        sections.push(Section {
            title: "Event sourcing vs cqrs-async".into(),
            lines: es,
        });
    }

    let (cross_lines, cross_headline) = crossover(results, &levels, fair);
    if let Some(h) = cross_headline {
        headline_parts.insert(0, h);
    }
    sections.push(Section {
        title: "Do reads hurt writes?".into(),
        lines: cross_lines,
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
        let behind: Vec<String> = invalid
            .iter()
            .filter(|r| r.metrics.driver_behind)
            .map(|r| r.label())
            .collect();
        let short: Vec<String> = invalid
            .iter()
            .filter(|r| r.metrics.measured_seconds < soundness::MIN_MEASURED_SECONDS)
            .map(|r| r.label())
            .collect();
        let mut why = Vec::new();
        if !behind.is_empty() {
            why.push(format!(
                "the driver fell behind in {} of {} runs ({}), so their numbers describe the harness, not the backends",
                behind.len(),
                results.runs.len(),
                join_and(&behind)
            ));
        }
        if !short.is_empty() {
            why.push(format!(
                "{} of {} runs measured under {:.0} s ({}), too short to decide",
                short.len(),
                results.runs.len(),
                soundness::MIN_MEASURED_SECONDS,
                join_and(&short)
            ));
        }
        format!("**No winner**: {}.", why.join("; "))
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
        decision: decision::decide(results, &levels),
        answer: story::answer(results, &levels),
        headline,
        sections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::event_sourcing::sample_with_event_sourced;

    #[test]
    fn the_verdict_says_what_event_sourcing_costs_and_buys() {
        let v = verdict(&sample_with_event_sourced());
        let section = v
            .sections
            .iter()
            .find(|s| s.title == "Event sourcing vs cqrs-async")
            .unwrap_or_else(|| panic!("no event-sourcing section: {v:#?}"));
        assert_eq!(section.lines.len(), 1);
        let line = &section.lines[0];
        for needle in [
            "**event-sourced** vs **cqrs-async**",
            "writes take 2.00× as long at p50",
            "2.00× at p99",
            "3.0% of attempts lost a race on a stream version",
            "**2 commands gave up**",
            "snapshots every 10 versions, 25% of loads from one",
            "3 / 9 events read",
            "It buys a write model that is the history itself",
            "4.00 MiB of it the event store",
        ] {
            assert!(line.contains(needle), "{needle:?} not in: {line}");
        }
        assert!(
            !line.contains("  "),
            "one sentence, no runs of spaces: {line}"
        );
        // The sample alone has no event-sourced run: no such section.
        let plain: Results =
            serde_json::from_str(include_str!("../../reports/sample/results.json")).unwrap();
        assert!(verdict(&plain)
            .sections
            .iter()
            .all(|s| s.title != "Event sourcing vs cqrs-async"));
    }
}
