//! The decision: which is the simplest architecture that meets every budget the team gave
//! (`[budgets]`), and what it costs against the normalized model.
//!
//! Every backend at every sweep point is judged budget by budget (met, missed, or not judged:
//! not measured, too few samples, a budget below the harness's floor) from sound runs only
//! ([`super::soundness`]). The answer is the simplest backend (by its registry entry's
//! `simplicity`; a story's backend never answers) that meets every budget at every point.
//! When that is `normalized`, CQRS does not pay off, and the decision says what CQRS would have
//! cost. Along a sweep it names the point at which the simplest answer changes. When no backend
//! meets every budget, it names the budgets out of reach and who comes closest.

use serde::Serialize;

use super::soundness::{self, Unsound};
use crate::backend::registry::Role;
use crate::backend::BackendKind;
use crate::check::{measure, show, staleness, staleness_samples, storage_bytes};
use crate::format::{fmt_bytes, fmt_ms};
use crate::metrics::{MetricKey, Stat};
use crate::report::document::{self, Block, Inline};
use crate::report::{level_label, Level};
use crate::results::{BackendRun, Results, SweepPoint};
use crate::scenario::thresholds::{Cmp, Metric, Threshold};

/// A budget as the scenario wrote it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// `write.p99`, `read.user_orders.p99`, `staleness.p99`, `storage`.
    pub key: String,
    /// `<= 50ms`.
    pub condition: String,
}

/// How a run fares against one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    Met,
    Missed,
    /// The figure cannot decide (see [`BudgetFit::why`]).
    NotJudged,
    /// No op the budget is about ran at this point (reads at 0 readers): it does not apply.
    NotExercised,
}

impl Fit {
    /// Met, or nothing to meet here.
    fn holds(self) -> bool {
        matches!(self, Fit::Met | Fit::NotExercised)
    }
}

/// One budget on one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetFit {
    pub key: String,
    pub fit: Fit,
    /// The measured value in the budget's unit (µs, bytes), when there is one.
    pub measured: Option<f64>,
    /// The measured value as shown (`12.3ms`).
    pub shown: String,
    /// Why it was not judged, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// One backend at one point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendFit {
    pub backend: BackendKind,
    pub role: Role,
    /// Why the whole run cannot decide; empty when it is sound.
    pub unsound: Vec<Unsound>,
    pub budgets: Vec<BudgetFit>,
}

impl BackendFit {
    /// Sound, and every budget met.
    pub fn meets_all(&self) -> bool {
        self.unsound.is_empty() && self.budgets.iter().all(|b| b.fit.holds())
    }

    /// Sound, every budget judged, and at least one missed.
    fn judged(&self) -> bool {
        self.unsound.is_empty() && self.budgets.iter().all(|b| b.fit != Fit::NotJudged)
    }

    fn missed(&self) -> impl Iterator<Item = &BudgetFit> {
        self.budgets.iter().filter(|b| b.fit == Fit::Missed)
    }
}

/// Every backend at one sweep point (or the only point), and the simplest that meets every
/// budget there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointFit {
    pub point: Option<SweepPoint>,
    pub label: String,
    pub backends: Vec<BackendFit>,
    /// The simplest backend that meets every budget here (`None` when none does).
    pub simplest: Option<BackendKind>,
}

impl PointFit {
    /// Whether any run here (a story's aside) is sound evidence.
    pub fn has_sound_run(&self) -> bool {
        self.backends
            .iter()
            .any(|b| b.unsound.is_empty() && b.role != Role::Story)
    }
}

/// What a backend costs against normalized (at the highest point both ran soundly).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    pub backend: BackendKind,
    pub at: String,
    /// `(normalized, backend)`, µs.
    pub write_p50_us: Option<(u64, u64)>,
    pub write_p99_us: Option<(u64, u64)>,
    /// `(normalized, backend)`, bytes.
    pub storage_bytes: Option<(u64, u64)>,
    /// The backend's staleness at p99, µs (0: its reads see every write by construction).
    pub staleness_p99_us: Option<u64>,
    /// What it takes to run.
    pub operations: String,
}

/// A point along the sweep where the simplest answer changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The first point with the new answer.
    pub at: String,
    pub from: Option<BackendKind>,
    pub to: Option<BackendKind>,
    /// Budgets the former answer misses there, with the figure (`read.p99 120ms`).
    pub because: Vec<String>,
}

/// What was left out of the decision, why, and what to change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOut {
    /// The run (`normalized @ 4 readers`) or the budget (`budget write.p99`).
    pub what: String,
    pub why: String,
    pub remedy: String,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// The scenario gave no `[budgets]`: nothing decides; `costs` says what each costs.
    NoBudgets,
    /// Normalized meets every budget at every point: CQRS does not pay off here.
    CqrsDoesNotPayOff,
    /// `backend` is the simplest architecture that meets every budget at every point.
    Simplest { backend: BackendKind, role: Role },
    /// No backend meets every budget at every point.
    NoneMeets {
        /// Budgets every sound run that judged them missed, at some point.
        out_of_reach: Vec<String>,
        /// Budgets no sound run could judge at some point (too few samples, below the
        /// harness's floor, not measured).
        not_judged: Vec<String>,
        /// The backend with the fewest misses (then the smallest overshoot).
        closest: Option<BackendKind>,
        /// Its misses, with the figures.
        closest_misses: Vec<String>,
        /// Points of the sweep where no run is sound evidence: nothing could meet a budget
        /// there, which says nothing of the backends.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        no_evidence_at: Vec<String>,
    },
    /// No run was sound: nothing can decide.
    NoSoundEvidence,
}

/// The decision, as `results.json` stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub budgets: Vec<Budget>,
    pub answer: Answer,
    /// Against normalized: the answer's cost, or (when CQRS does not pay off) what each CQRS
    /// backend would have cost, or (without budgets) what each backend costs.
    pub costs: Vec<Cost>,
    pub changes: Vec<Change>,
    pub points: Vec<PointFit>,
    pub left_out: Vec<LeftOut>,
}

/// The key a budget was written under (`write.p99`) from its threshold name (`*.write.p99`).
fn budget_key(t: &Threshold) -> String {
    t.name.trim_start_matches("*.").to_string()
}

/// Whether `unstarted` ops (of a side, came due, never started) decide a latency statistic
/// over `completed` measured ops: they are the slowest of all, so a percentile falls among
/// them once they are more than its tail (1% for p99); the max and the mean by any of them.
fn unstarted_decide(stat: Stat, completed: u64, unstarted: u64) -> bool {
    if unstarted == 0 {
        return false;
    }
    unstarted as f64 / (completed + unstarted) as f64 > stat.tail()
}

/// How `run` fares against budget `t`.
fn judge(run: &BackendRun, t: &Threshold) -> BudgetFit {
    let key = budget_key(t);
    let not_judged = |measured: Option<f64>, why: String| BudgetFit {
        key: key.clone(),
        fit: Fit::NotJudged,
        measured,
        shown: measured.map_or("not measured".into(), |v| show(v, t.metric.unit())),
        why: Some(why),
    };
    if let Metric::Latency { key: mk, stat } = &t.metric {
        let completed = run.metrics.op(*mk).map_or(0, |o| o.latency.count);
        // Ops that came due and never started have no latency, but took longer than anything
        // measured: when they reach the statistic's share, the budget is missed, not unmeasured.
        let unstarted = if mk.is_write() {
            run.metrics.unstarted.writes
        } else {
            run.metrics.unstarted.reads
        };
        if unstarted_decide(*stat, completed, unstarted) {
            return BudgetFit {
                key,
                fit: Fit::Missed,
                measured: None,
                shown: format!("{unstarted} ops never started"),
                why: None,
            };
        }
        if completed == 0 {
            return BudgetFit {
                key,
                fit: Fit::NotExercised,
                measured: None,
                shown: "–".into(),
                why: None,
            };
        }
    }
    let Some(value) = measure(run, &t.metric) else {
        return not_judged(None, format!("{} did not measure it", run.backend));
    };
    // Enough samples for the statistic compared, and a limit the harness can resolve.
    match &t.metric {
        Metric::Latency { key: mk, stat } => {
            let samples = run.metrics.op(*mk).map_or(0, |o| o.latency.count);
            let needed = stat.min_samples();
            if samples < needed {
                if let Some((lower, v)) = run
                    .metrics
                    .op(*mk)
                    .and_then(|o| lower_stat_over(&o.latency, *stat, t))
                {
                    return BudgetFit {
                        key,
                        fit: Fit::Missed,
                        measured: Some(v),
                        shown: format!(
                            "{lower} {} (from {samples} samples)",
                            show(v, t.metric.unit())
                        ),
                        why: None,
                    };
                }
                return not_judged(
                    Some(value),
                    format!("{stat} from {samples} samples (it needs at least {needed})"),
                );
            }
            if let Some(floor) = run
                .floor
                .as_ref()
                .and_then(|f| f.resolution_us(mk.is_write(), *stat))
            {
                if t.limit < floor as f64 {
                    return not_judged(
                        Some(value),
                        format!(
                            "the budget is below the harness's floor ({} at {stat})",
                            fmt_ms(floor as f64)
                        ),
                    );
                }
            }
        }
        Metric::Staleness { stat } if run.backend.read_side_lags() => {
            let samples = staleness_samples(run);
            let needed = stat.min_samples();
            // A budget of 0 is missed by construction, whatever the samples.
            if samples < needed && t.limit > 0.0 {
                return not_judged(
                    Some(value),
                    format!("{stat} from {samples} samples (it needs at least {needed})"),
                );
            }
        }
        _ => {}
    }
    BudgetFit {
        key,
        fit: if t.cmp.holds(value, t.limit) {
            Fit::Met
        } else {
            Fit::Missed
        },
        measured: Some(value),
        shown: show(value, t.metric.unit()),
        why: None,
    }
}

/// A lower percentile, with samples enough of its own, already over an upper-bound budget
/// on `stat`: then `stat` is over it too (p99 ≥ p90 ≥ p50), however few samples it has, and
/// the budget is missed rather than unjudged. `None` when no such percentile shows it.
fn lower_stat_over(
    latency: &crate::metrics::LatencyStats,
    stat: Stat,
    t: &Threshold,
) -> Option<(Stat, f64)> {
    if !matches!(t.cmp, Cmp::Le | Cmp::Lt) || stat == Stat::Mean {
        return None;
    }
    [Stat::P9999, Stat::P999, Stat::P99, Stat::P90, Stat::P50]
        .into_iter()
        .filter(|s| *s < stat && latency.count >= s.min_samples())
        .find_map(|s| {
            s.of(latency)
                .filter(|v| !t.cmp.holds(*v, t.limit))
                .map(|v| (s, v))
        })
}

fn point_fit(results: &Results, level: &Level) -> PointFit {
    let budgets: Vec<&Threshold> = results.scenario.budgets.thresholds().collect();
    let backends: Vec<BackendFit> = level
        .runs
        .iter()
        .map(|run| BackendFit {
            backend: run.backend,
            role: run.backend.role(),
            unsound: soundness::unsound(run),
            budgets: budgets.iter().map(|t| judge(run, t)).collect(),
        })
        .collect();
    let simplest = backends
        .iter()
        .filter(|b| b.role != Role::Story && b.meets_all())
        .min_by_key(|b| b.backend.simplicity())
        .map(|b| b.backend);
    PointFit {
        point: level.point.clone(),
        label: level_label(level),
        backends,
        simplest,
    }
}

fn stat_u64(run: &BackendRun, key: MetricKey, stat: Stat) -> Option<u64> {
    stat.of(&run.metrics.op(key)?.latency)
        .map(|v| v.round() as u64)
}

/// What `kind` costs against normalized at the highest point where both ran soundly.
fn cost(levels: &[Level], kind: BackendKind) -> Option<Cost> {
    levels.iter().rev().find_map(|level| {
        let run = level
            .runs
            .iter()
            .find(|r| r.backend == kind && soundness::is_sound(r))?;
        let base = level
            .runs
            .iter()
            .find(|r| r.backend.role() == Role::Baseline && soundness::is_sound(r))?;
        let pair = |stat| {
            Some((
                stat_u64(base, MetricKey::Writes, stat)?,
                stat_u64(run, MetricKey::Writes, stat)?,
            ))
        };
        Some(Cost {
            backend: kind,
            at: level_label(level),
            write_p50_us: pair(Stat::P50),
            write_p99_us: pair(Stat::P99),
            storage_bytes: storage_bytes(base)
                .zip(storage_bytes(run))
                .map(|(a, b)| (a as u64, b as u64)),
            staleness_p99_us: staleness(run, Stat::P99).map(|v| v.round() as u64),
            operations: kind.operations().to_string(),
        })
    })
}

/// Computes the decision from the results and the scenario's budgets.
pub fn decide(results: &Results, levels: &[Level]) -> Decision {
    let budgets: Vec<Budget> = results
        .scenario
        .budgets
        .iter()
        .map(|(key, _, t)| Budget {
            key: key.to_string(),
            condition: t.condition.clone(),
        })
        .collect();
    let mut left_out = Vec::new();
    for run in &results.runs {
        for u in soundness::unsound(run) {
            left_out.push(LeftOut {
                what: run.label(),
                why: u.why(),
                remedy: u.remedy().into(),
            });
        }
    }
    let others = || {
        let mut kinds: Vec<BackendKind> = results
            .scenario
            .backends
            .iter()
            .copied()
            .filter(|k| k.role() != Role::Baseline)
            .collect();
        kinds.sort_by_key(|k| k.simplicity());
        kinds
    };
    if budgets.is_empty() {
        return Decision {
            budgets,
            answer: Answer::NoBudgets,
            costs: others()
                .into_iter()
                .filter_map(|k| cost(levels, k))
                .collect(),
            changes: Vec::new(),
            points: Vec::new(),
            left_out,
        };
    }
    let points: Vec<PointFit> = levels.iter().map(|l| point_fit(results, l)).collect();
    // Figures that cannot decide, once per run and budget, for the answer to say.
    for p in &points {
        for b in p.backends.iter().filter(|b| b.unsound.is_empty()) {
            for f in b.budgets.iter().filter(|f| f.fit == Fit::NotJudged) {
                let why = f.why.clone().unwrap_or_default();
                let remedy = if why.contains("samples") {
                    "give a longer duration or a higher rate"
                } else if why.contains("floor") {
                    "raise the budget above the floor, or measure on a quieter machine"
                } else {
                    "run a workload that measures it"
                };
                left_out.push(LeftOut {
                    what: format!("{} {} at {}", b.backend, f.key, p.label),
                    why,
                    remedy: remedy.into(),
                });
            }
        }
    }

    // The simplest backend that meets every budget at every point.
    let mut candidates: Vec<BackendKind> = results
        .scenario
        .backends
        .iter()
        .copied()
        .filter(|k| k.role() != Role::Story)
        .filter(|k| {
            let mut fits = points
                .iter()
                .flat_map(|p| p.backends.iter().filter(move |b| b.backend == *k))
                .peekable();
            fits.peek().is_some() && fits.all(|b| b.meets_all())
        })
        .collect();
    candidates.sort_by_key(|k| k.simplicity());

    let mut changes = Vec::new();
    for w in points.windows(2) {
        if w[0].simplest != w[1].simplest {
            let because = w[0]
                .simplest
                .and_then(|k| w[1].backends.iter().find(|b| b.backend == k))
                .map(|b| {
                    let mut v: Vec<String> = b
                        .missed()
                        .map(|f| format!("{} {}", f.key, f.shown))
                        .collect();
                    v.extend(b.unsound.iter().map(|u| u.why()));
                    v
                })
                .unwrap_or_default();
            changes.push(Change {
                at: w[1].label.clone(),
                from: w[0].simplest,
                to: w[1].simplest,
                because,
            });
        }
    }

    let any_sound = points
        .iter()
        .any(|p| p.backends.iter().any(|b| b.unsound.is_empty()));
    let (answer, costs) = match candidates.first() {
        _ if !any_sound => (Answer::NoSoundEvidence, Vec::new()),
        Some(&k) if k.role() == Role::Baseline => (
            Answer::CqrsDoesNotPayOff,
            others()
                .into_iter()
                .filter(|k| k.role() == Role::Cqrs)
                .filter_map(|k| cost(levels, k))
                .collect(),
        ),
        Some(&k) => (
            Answer::Simplest {
                backend: k,
                role: k.role(),
            },
            cost(levels, k).into_iter().collect(),
        ),
        None => {
            let mut out_of_reach: Vec<String> = Vec::new();
            let mut not_judged: Vec<String> = Vec::new();
            for (i, b) in budgets.iter().enumerate() {
                let fits_at = |p: &PointFit| -> Vec<Fit> {
                    p.backends
                        .iter()
                        .filter(|f| f.unsound.is_empty() && f.role != Role::Story)
                        .map(|f| f.budgets[i].fit)
                        .collect()
                };
                let name = format!("{} {}", b.key, b.condition);
                if points.iter().any(|p| {
                    let fits = fits_at(p);
                    !fits.is_empty() && fits.iter().all(|f| *f == Fit::NotJudged)
                }) {
                    not_judged.push(name);
                } else if points.iter().any(|p| {
                    let fits = fits_at(p);
                    fits.contains(&Fit::Missed) && !fits.contains(&Fit::Met)
                }) {
                    out_of_reach.push(name);
                }
            }
            // Closest: fewest misses over every point, then the smallest overshoot.
            let closest = results
                .scenario
                .backends
                .iter()
                .copied()
                .filter(|k| k.role() != Role::Story)
                .filter_map(|k| {
                    let fits: Vec<&BackendFit> = points
                        .iter()
                        .flat_map(|p| p.backends.iter().filter(move |b| b.backend == k))
                        .collect();
                    if fits.is_empty() || !fits.iter().all(|f| f.judged()) {
                        return None;
                    }
                    let misses = fits.iter().map(|f| f.missed().count()).sum::<usize>();
                    let overshoot: f64 = fits
                        .iter()
                        .flat_map(|f| f.budgets.iter().zip(budgets_thresholds(results)))
                        .filter(|(f, _)| f.fit == Fit::Missed)
                        .map(|(f, t)| f.measured.unwrap_or(0.0) / t.limit.max(1.0))
                        .sum();
                    Some((k, misses, overshoot))
                })
                .min_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)));
            let closest_misses = closest
                .map(|(k, _, _)| {
                    points
                        .iter()
                        .flat_map(|p| {
                            p.backends
                                .iter()
                                .filter(move |b| b.backend == k)
                                .flat_map(move |b| {
                                    b.missed().map(move |f| {
                                        format!("{} {} at {}", f.key, f.shown, p.label)
                                    })
                                })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let no_evidence_at = points
                .iter()
                .filter(|p| !p.has_sound_run())
                .map(|p| p.label.clone())
                .collect();
            (
                Answer::NoneMeets {
                    out_of_reach,
                    not_judged,
                    closest: closest.map(|c| c.0),
                    closest_misses,
                    no_evidence_at,
                },
                Vec::new(),
            )
        }
    };
    Decision {
        budgets,
        answer,
        costs,
        changes,
        points,
        left_out,
    }
}

fn budgets_thresholds(results: &Results) -> impl Iterator<Item = &Threshold> {
    results.scenario.budgets.thresholds()
}

fn arrow_ms(pair: (u64, u64)) -> String {
    format!("{} → {}", fmt_ms(pair.0 as f64), fmt_ms(pair.1 as f64))
}

impl Cost {
    /// `write p50 1.2ms → 1.5ms, p99 …, storage 10 MiB → 14 MiB, staleness p99 40ms`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.write_p50_us {
            parts.push(format!("write p50 {}", arrow_ms(p)));
        }
        if let Some(p) = self.write_p99_us {
            parts.push(format!("write p99 {}", arrow_ms(p)));
        }
        if let Some((a, b)) = self.storage_bytes {
            parts.push(format!("storage {} → {}", fmt_bytes(a), fmt_bytes(b)));
        }
        match self.staleness_p99_us {
            Some(0) => parts.push("no staleness (reads see every write)".into()),
            Some(s) => parts.push(format!("staleness p99 {}", fmt_ms(s as f64))),
            None => {}
        }
        format!(
            "**{}** against normalized (at {}): {}; it takes {}",
            self.backend,
            self.at,
            parts.join(", "),
            self.operations
        )
    }
}

impl Decision {
    /// The answer in one or two sentences, with `**bold**` and `` `code` `` markup.
    pub fn headline(&self) -> String {
        let budgets = self
            .budgets
            .iter()
            .map(|b| format!("`{} {}`", b.key, b.condition))
            .collect::<Vec<_>>()
            .join(", ");
        let every_point = if self.points.len() > 1 {
            " at every point of the sweep"
        } else {
            ""
        };
        match &self.answer {
            Answer::NoBudgets => {
                "**No budgets were given** (`[budgets]` in the scenario: write p99, read p99, \
                 staleness p99, storage), so nothing is decided; what each backend costs against \
                 normalized follows."
                    .into()
            }
            Answer::CqrsDoesNotPayOff => format!(
                "**CQRS does not pay off here**: **normalized** meets every budget ({budgets}){every_point}."
            ),
            Answer::Simplest { backend, role } => format!(
                "**{backend}** ({}) is the simplest architecture that meets every budget \
                 ({budgets}){every_point}.",
                role.name()
            ),
            Answer::NoneMeets {
                out_of_reach,
                not_judged,
                closest,
                closest_misses,
                no_evidence_at,
            } => {
                let code = |v: &[String]| {
                    v.iter()
                        .map(|b| format!("`{b}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut s = "**No architecture meets every budget**".to_string();
                if !out_of_reach.is_empty() {
                    s.push_str(&format!(
                        "; out of reach for every backend that ran: {}",
                        code(out_of_reach)
                    ));
                }
                if !not_judged.is_empty() {
                    s.push_str(&format!(
                        "; the runs cannot judge {} (see what was left out)",
                        code(not_judged)
                    ));
                }
                if !no_evidence_at.is_empty() {
                    s.push_str(&format!(
                        "; at {} no run is sound evidence (see what was left out)",
                        no_evidence_at.join(", ")
                    ));
                }
                s.push('.');
                if let Some(c) = closest {
                    s.push_str(&format!(
                        " Closest: **{c}** (misses {}).",
                        closest_misses.join(", ")
                    ));
                }
                s
            }
            Answer::NoSoundEvidence => {
                "**No decision**: no run is sound evidence (see what was left out).".into()
            }
        }
    }

    /// The lines after the headline: where the answer changes, what it costs, what was left
    /// out. Markup as in [`Decision::headline`].
    pub fn details(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.changes {
            // No answer at a point where no run is sound is the want of evidence, not of a
            // backend that meets the budgets.
            let unsound_at = |label: &str| {
                self.points
                    .iter()
                    .any(|p| p.label == label && !p.has_sound_run())
            };
            let from_label = self
                .points
                .iter()
                .position(|p| p.label == c.at)
                .and_then(|i| i.checked_sub(1))
                .map(|i| self.points[i].label.clone())
                .unwrap_or_default();
            let name = |k: &Option<BackendKind>, label: &str| match k {
                Some(k) => format!("**{k}**"),
                None if unsound_at(label) => "no sound evidence".to_string(),
                None => "no backend".to_string(),
            };
            let because = if c.because.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} misses {})",
                    name(&c.from, &from_label),
                    c.because.join(", ")
                )
            };
            out.push(format!(
                "The answer changes at **{}**: from {} to {}{because}.",
                c.at,
                name(&c.from, &from_label),
                name(&c.to, &c.at)
            ));
        }
        let lead = match self.answer {
            Answer::CqrsDoesNotPayOff => "What CQRS would have cost: ",
            Answer::NoBudgets => "Costs: ",
            _ => "Cost: ",
        };
        for c in &self.costs {
            out.push(format!("{lead}{}.", c.describe()));
        }
        if !self.left_out.is_empty() {
            let shown: Vec<String> = self
                .left_out
                .iter()
                .take(4)
                .map(|l| format!("{}: {} — {}", l.what, l.why, l.remedy))
                .collect();
            let more = self.left_out.len().saturating_sub(shown.len());
            out.push(format!(
                "Left out of the decision: {}{}.",
                shown.join("; "),
                if more > 0 {
                    format!("; and {more} more (see results.json `decision.left_out`)")
                } else {
                    String::new()
                }
            ));
        }
        out
    }

    /// One row per backend and point: the figure against each budget (`12.0ms ✓`, `120ms ✗`,
    /// `– (why)`), for the report's table. Header first.
    pub fn table(&self) -> Vec<Vec<String>> {
        if self.budgets.is_empty() {
            return Vec::new();
        }
        let mut rows = Vec::new();
        let mut header = vec!["backend".to_string()];
        let sweep = self.points.len() > 1;
        if sweep {
            header.push("at".into());
        }
        header.extend(
            self.budgets
                .iter()
                .map(|b| format!("{} {}", b.key, b.condition)),
        );
        header.push("meets all".into());
        rows.push(header);
        for p in &self.points {
            for b in &p.backends {
                let mut row = vec![b.backend.to_string()];
                if sweep {
                    row.push(p.label.clone());
                }
                for f in &b.budgets {
                    row.push(match f.fit {
                        Fit::Met => format!("{} ✓", f.shown),
                        Fit::Missed => format!("{} ✗", f.shown),
                        Fit::NotJudged => format!("{} (not judged)", f.shown),
                        Fit::NotExercised => "–".into(),
                    });
                }
                row.push(if !b.unsound.is_empty() {
                    "left out".into()
                } else if b.meets_all() {
                    "yes".into()
                } else {
                    "no".into()
                });
                rows.push(row);
            }
        }
        rows
    }

    /// The decision as a document: its heading, the answer, the details, the table.
    pub fn document(&self) -> Vec<Block> {
        let mut out = vec![
            Block::Heading(2, "Decision".into()),
            Block::Paragraph(Inline::parse(&self.headline())),
        ];
        let details = self.details();
        if !details.is_empty() {
            out.push(Block::Bullets(
                details.iter().map(|d| Inline::parse(d)).collect(),
            ));
        }
        let mut rows = self.table().into_iter();
        if let Some(head) = rows.next() {
            out.push(Block::Table {
                head,
                rows: rows.collect(),
                kind: document::TableKind::Plain,
            });
        }
        out
    }

    /// A few plain lines for the terminal: the answer and the details.
    pub fn terminal_lines(&self) -> Vec<String> {
        document::terminal(&self.document())
    }
}

#[cfg(test)]
mod tests;
