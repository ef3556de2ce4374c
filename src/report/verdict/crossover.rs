//! Do reads hurt writes? Along the read-load sweep, the **crossover**: the first level at which
//! the baseline's (normalized) writes are significantly slower than the best CQRS backend's
//! (Welch over per-second p99s, and by more than the harness's floor), or the baseline
//! saturates while a CQRS backend keeps up — and what each CQRS backend does there. Saturated
//! runs are evidence here, not excluded. Beside it: how each backend's write p99 moves from the
//! lowest to the highest level, and every level's write p99s.

use super::{below_floor, below_resolution, by_backend, floor_of, fmt_p, join_and, p99, pct};
use super::{saturated_in, saturation_detail, write_p99s, Level};
use crate::backend::registry::{self, Role};
use crate::backend::BackendKind;
use crate::format::fmt_ms;
use crate::metrics::{MetricKey, Stat};
use crate::report::level_label;
use crate::report::stats::{welch, Sample};
use crate::results::{BackendRun, Results};

/// What one level says about the baseline's writes against the best CQRS backend's.
#[derive(Debug, Clone)]
pub struct LevelState<'a> {
    pub label: String,
    pub baseline_p99_us: u64,
    pub baseline: &'a BackendRun,
    /// The best CQRS backend: the lowest write p99 of those that kept up, else of all.
    pub best: BackendKind,
    pub best_p99_us: u64,
    /// Welch's p of the best's per-second write p99s against the baseline's.
    pub p: Option<f64>,
    pub floor_us: Option<u64>,
    /// The baseline saturated while the best CQRS backend kept up.
    pub baseline_saturated: bool,
    /// The baseline's writes are significantly slower than the best's, by more than the floor.
    pub significant: bool,
    pub cqrs_runs: Vec<&'a BackendRun>,
}

/// The crossover along the sweep.
#[derive(Debug, Clone)]
pub enum Crossing<'a> {
    /// The driver fell behind in at least one run: nothing is judged.
    NotJudged,
    /// The run lacks the baseline or every CQRS backend.
    NothingToCompare,
    /// The first level at which the baseline's writes fall behind CQRS.
    Crossed(LevelState<'a>),
    /// They never do; the figures at the last level compared, and the first level at which
    /// the baseline and every CQRS backend saturated, if one did.
    NotCrossed {
        last: LevelState<'a>,
        all_saturated_at: Option<String>,
    },
    /// No level had write latencies of both.
    NoWrites,
}

/// How one backend's write p99 moved from the lowest to the highest level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Movement {
    /// By less than the floor (µs).
    BelowFloor(u64),
    /// Significantly worse (p).
    Worse(f64),
    /// Significantly better (p).
    Better(f64),
    /// Within noise (p).
    WithinNoise(f64),
    TooFewIntervals,
}

/// One backend's write p99 at the lowest and the highest level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub backend: BackendKind,
    pub from_us: u64,
    pub to_us: u64,
    pub movement: Movement,
    /// It saturated at the highest level and not at the lowest.
    pub saturated_at_last: bool,
}

/// One backend's write p99 at a level, and how its run held its load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelWrite {
    pub backend: BackendKind,
    pub p99_us: u64,
    pub driver_behind: bool,
    pub saturated: bool,
}

/// The "Do reads hurt writes?" finding.
#[derive(Debug, Clone)]
pub struct Crossover<'a> {
    pub crossing: Crossing<'a>,
    /// Only one read level ran.
    pub single: bool,
    /// The lowest and highest level's labels.
    pub first_label: Option<String>,
    pub last_label: Option<String>,
    pub trends: Vec<Trend>,
    /// Each level's label and write p99s.
    pub per_level: Vec<(String, Vec<LevelWrite>)>,
}

fn state<'a>(
    level: &Level<'a>,
    baseline: BackendKind,
    cqrs: &[BackendKind],
) -> Option<LevelState<'a>> {
    let runs = by_backend(level);
    let norm = *runs.get(&baseline)?;
    let n99 = p99(norm, MetricKey::Writes)?;
    let cqrs_runs: Vec<&BackendRun> = cqrs.iter().filter_map(|k| runs.get(k).copied()).collect();
    let (best, c99, crun, c_sat) = cqrs_runs
        .iter()
        .filter_map(|r| {
            p99(r, MetricKey::Writes)
                .map(|v| (r.backend, v, *r, saturated_in(r, MetricKey::Writes)))
        })
        .min_by_key(|(_, v, _, sat)| (*sat, *v))?;
    let w = welch(
        &Sample::of(&write_p99s(crun)),
        &Sample::of(&write_p99s(norm)),
    );
    let floor = floor_of(norm, crun, true, Stat::P99);
    let n_sat = saturated_in(norm, MetricKey::Writes);
    Some(LevelState {
        label: level_label(level),
        baseline_p99_us: n99,
        baseline: norm,
        best,
        best_p99_us: c99,
        p: w.map(|w| w.p),
        floor_us: floor,
        baseline_saturated: n_sat && !c_sat,
        significant: n99 > c99
            && !below_floor(n99, c99, floor)
            && w.is_some_and(|w| w.significant() && w.diff > 0.0),
        cqrs_runs,
    })
}

fn trends(levels: &[Level]) -> Vec<Trend> {
    let (Some(first), Some(last)) = (levels.first(), levels.last()) else {
        return Vec::new();
    };
    if levels.len() < 2 {
        return Vec::new();
    }
    let (a, b) = (by_backend(first), by_backend(last));
    a.iter()
        .filter_map(|(k, ra)| {
            let rb = b.get(k)?;
            let (va, vb) = (p99(ra, MetricKey::Writes)?, p99(rb, MetricKey::Writes)?);
            let floor = floor_of(ra, rb, true, Stat::P99);
            let movement = if below_floor(va, vb, floor) {
                Movement::BelowFloor(floor.unwrap_or_default())
            } else {
                match welch(&Sample::of(&write_p99s(ra)), &Sample::of(&write_p99s(rb))) {
                    Some(w) if w.significant() && w.diff > 0.0 => Movement::Worse(w.p),
                    Some(w) if w.significant() => Movement::Better(w.p),
                    Some(w) => Movement::WithinNoise(w.p),
                    None => Movement::TooFewIntervals,
                }
            };
            Some(Trend {
                backend: *k,
                from_us: va,
                to_us: vb,
                movement,
                saturated_at_last: saturated_in(rb, MetricKey::Writes)
                    && !saturated_in(ra, MetricKey::Writes),
            })
        })
        .collect()
}

/// The crossover of `results` along `levels`; `fair` is false when a run's driver fell behind.
pub fn crossover<'a>(results: &Results, levels: &[Level<'a>], fair: bool) -> Crossover<'a> {
    let per_level: Vec<(String, Vec<LevelWrite>)> = levels
        .iter()
        .map(|l| {
            let writes: Vec<LevelWrite> = l
                .runs
                .iter()
                .filter_map(|r| {
                    p99(r, MetricKey::Writes).map(|v| LevelWrite {
                        backend: r.backend,
                        p99_us: v,
                        driver_behind: r.metrics.driver_behind,
                        saturated: saturated_in(r, MetricKey::Writes),
                    })
                })
                .collect();
            (level_label(l), writes)
        })
        .collect();
    let mut out = Crossover {
        crossing: Crossing::NoWrites,
        single: levels.len() <= 1,
        first_label: levels.first().map(level_label),
        last_label: levels.last().map(level_label),
        trends: Vec::new(),
        per_level,
    };
    if !fair {
        out.crossing = Crossing::NotJudged;
        return out;
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
        out.crossing = Crossing::NothingToCompare;
        return out;
    }
    let mut crossed = None;
    let mut last = None;
    let mut all_saturated_at = None;
    for level in levels {
        let Some(s) = state(level, baseline, &cqrs) else {
            continue;
        };
        let best_saturated = s
            .cqrs_runs
            .iter()
            .any(|r| r.backend == s.best && saturated_in(r, MetricKey::Writes));
        if saturated_in(s.baseline, MetricKey::Writes)
            && best_saturated
            && all_saturated_at.is_none()
        {
            all_saturated_at = Some(s.label.clone());
        }
        if (s.baseline_saturated || s.significant) && crossed.is_none() {
            crossed = Some(s);
        } else {
            last = Some(s);
        }
    }
    out.crossing = match (crossed, last) {
        (Some(s), _) => Crossing::Crossed(s),
        (None, Some(s)) => Crossing::NotCrossed {
            last: s,
            all_saturated_at,
        },
        (None, None) => Crossing::NoWrites,
    };
    out.trends = trends(levels);
    out
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

impl Crossover<'_> {
    /// `1 reader: normalized 1.2ms, cqrs-sync 900µs (saturated); 2 readers: …`.
    fn per_level_text(&self) -> String {
        self.per_level
            .iter()
            .map(|(label, writes)| {
                let list = writes
                    .iter()
                    .map(|w| {
                        format!(
                            "{} {}{}",
                            w.backend,
                            fmt_ms(w.p99_us as f64),
                            if w.driver_behind {
                                " (invalid: driver behind)"
                            } else if w.saturated {
                                " (saturated)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{label}: {list}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `write p99 from 0 readers to 4 readers: normalized 1.0ms → 3.0ms (+200%; **worse**, …)`.
    fn trend_line(&self) -> Option<String> {
        if self.trends.is_empty() {
            return None;
        }
        let last = self.last_label.clone().unwrap_or_default();
        let parts: Vec<String> = self
            .trends
            .iter()
            .map(|t| {
                let judged = match t.movement {
                    Movement::BelowFloor(f) => below_resolution(Stat::P99, f),
                    Movement::Worse(p) => format!("**worse**, {}", fmt_p(p)),
                    Movement::Better(p) => format!("better, {}", fmt_p(p)),
                    Movement::WithinNoise(p) => format!("within noise, {}", fmt_p(p)),
                    Movement::TooFewIntervals => "too few intervals to test".into(),
                };
                let sat = if t.saturated_at_last {
                    format!("; saturated at {last}")
                } else {
                    String::new()
                };
                format!(
                    "{} {} → {} ({}; {judged}{sat})",
                    t.backend,
                    fmt_ms(t.from_us as f64),
                    fmt_ms(t.to_us as f64),
                    pct(t.to_us as f64, t.from_us as f64)
                )
            })
            .collect();
        Some(format!(
            "write p99 from {} to {last}: {}",
            self.first_label.clone().unwrap_or_default(),
            parts.join("; ")
        ))
    }

    /// The headline's part when the baseline's writes fall behind CQRS along a sweep.
    pub fn headline(&self) -> Option<String> {
        let Crossing::Crossed(s) = &self.crossing else {
            return None;
        };
        if self.single {
            return None;
        }
        Some(format!(
            "{} writes fall behind CQRS from {} on ({})",
            s.baseline.backend,
            s.label,
            if s.baseline_saturated {
                let kept: Vec<String> = s
                    .cqrs_runs
                    .iter()
                    .filter(|r| !saturated_in(r, MetricKey::Writes))
                    .map(|r| r.backend.to_string())
                    .collect();
                format!(
                    "{} saturates while {} {}",
                    s.baseline.backend,
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
        ))
    }

    /// The section's lines.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.crossing {
            Crossing::NotJudged => {
                return vec![format!(
                    "not judged, because the driver fell behind in at least one run; write p99 per read level — {}",
                    self.per_level_text()
                )];
            }
            Crossing::NothingToCompare => {
                return vec![format!(
                    "needs {} and at least one CQRS backend in the run",
                    registry::baseline()
                )];
            }
            Crossing::Crossed(s) => {
                let where_ = if self.single {
                    format!("at this read level ({})", s.label)
                } else if self.first_label.as_deref() == Some(s.label.as_str()) {
                    format!("already at the lowest read level (**{}**)", s.label)
                } else {
                    format!("from **{}** on", s.label)
                };
                let why = if s.baseline_saturated {
                    format!(
                        "{} saturated at {}: {}; its write p99 {}{}",
                        s.baseline.backend,
                        s.label,
                        saturation_detail(s.baseline),
                        fmt_ms(s.baseline_p99_us as f64),
                        if s.significant {
                            format!(
                                " vs {} {} (per-second p99s, {})",
                                s.best,
                                fmt_ms(s.best_p99_us as f64),
                                s.p.map(fmt_p).unwrap_or_default()
                            )
                        } else {
                            String::new()
                        }
                    )
                } else {
                    format!(
                        "write p99 {} vs {} {} (per-second p99s, {}; floor p99 {})",
                        fmt_ms(s.baseline_p99_us as f64),
                        s.best,
                        fmt_ms(s.best_p99_us as f64),
                        s.p.map(fmt_p).unwrap_or_default(),
                        s.floor_us
                            .map(|f| fmt_ms(f as f64))
                            .unwrap_or_else(|| "not measured".into())
                    )
                };
                let there: Vec<String> = s.cqrs_runs.iter().map(|r| kept_up_or_not(r)).collect();
                lines.push(format!(
                    "**crossover**: {} writes fall behind CQRS {where_} — {why}. There, {}",
                    s.baseline.backend,
                    join_and(&there)
                ));
            }
            Crossing::NotCrossed {
                last: s,
                all_saturated_at,
            } => {
                let judged = if below_floor(s.baseline_p99_us, s.best_p99_us, s.floor_us) {
                    format!(
                        " — the gap is {}",
                        below_resolution(Stat::P99, s.floor_us.unwrap_or_default())
                    )
                } else {
                    s.p.map(|p| format!(" — no significant gap ({})", fmt_p(p)))
                        .unwrap_or_default()
                };
                let base = s.baseline.backend;
                if self.single {
                    lines.push(format!(
                        "only one read level ran ({}): {base} write p99 {} vs best CQRS ({}) {}{judged}; {base} writes do not fall behind here. Add a `[sweep]` to find the read load where they would",
                        s.label,
                        fmt_ms(s.baseline_p99_us as f64),
                        s.best,
                        fmt_ms(s.best_p99_us as f64)
                    ));
                } else {
                    lines.push(format!(
                        "no crossover: {base} writes do not fall significantly behind CQRS (nor saturate while CQRS keeps up) at any read level tried, up to {} (there: {} vs {} {}{judged})",
                        s.label,
                        fmt_ms(s.baseline_p99_us as f64),
                        s.best,
                        fmt_ms(s.best_p99_us as f64)
                    ));
                }
                if let Some(l) = all_saturated_at {
                    lines.push(format!(
                        "at {l} {base} and every CQRS backend saturated: reads hurt every backend's writes there"
                    ));
                }
            }
            Crossing::NoWrites => lines.push("no write latencies to compare".into()),
        }
        if let Some(t) = self.trend_line() {
            lines.push(t);
        }
        if !self.single {
            lines.push(format!(
                "write p99 per read level — {}",
                self.per_level_text()
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, sample, set, set_floor};
    use super::*;
    use crate::report::levels;
    use crate::results::SweepPoint;

    /// The sample's three runs at 1, 2 and 4 readers, with write p99s per level (µs) for
    /// normalized and cqrs-sync (cqrs-async left out), steady within ±50µs, floors 300µs.
    fn sweep(normalized: [u64; 3], sync: [u64; 3]) -> Results {
        let mut base = sample();
        base.runs.retain(|r| r.backend.name() != "cqrs-async");
        base.scenario.backends.retain(|k| k.name() != "cqrs-async");
        let mut runs = Vec::new();
        for (i, readers) in [1u32, 2, 4].into_iter().enumerate() {
            let mut level = base.clone();
            set(
                run(&mut level, "normalized"),
                MetricKey::Writes,
                1_000,
                normalized[i],
                50,
            );
            set(
                run(&mut level, "cqrs-sync"),
                MetricKey::Writes,
                1_000,
                sync[i],
                50,
            );
            for r in &mut level.runs {
                set_floor(r, true, 100, 300);
                r.sweep_point = Some(SweepPoint::Readers(readers));
            }
            runs.extend(level.runs);
        }
        base.runs = runs;
        base
    }

    #[test]
    fn the_crossover_is_the_first_level_where_the_baseline_falls_significantly_behind() {
        // 1 reader: 200µs apart (under the floor); 2 readers: 10ms apart; 4 readers: 20ms.
        let r = sweep([10_200, 20_000, 30_000], [10_000, 10_000, 10_000]);
        let ls = levels(&r);
        let c = crossover(&r, &ls, true);
        let Crossing::Crossed(s) = &c.crossing else {
            panic!("no crossover: {c:#?}");
        };
        assert_eq!(s.label, "2 readers");
        assert_eq!((s.baseline_p99_us, s.best_p99_us), (20_000, 10_000));
        assert!(s.significant && !s.baseline_saturated);
        assert_eq!(
            c.headline().as_deref(),
            Some("normalized writes fall behind CQRS from 2 readers on (significantly slower than cqrs-sync)")
        );
        assert!(c.lines()[0].starts_with(
            "**crossover**: normalized writes fall behind CQRS from **2 readers** on — write p99 20.0ms vs cqrs-sync 10.0ms"
        ));
    }

    #[test]
    fn saturating_while_cqrs_keeps_up_crosses_even_without_a_gap() {
        let mut r = sweep([10_000, 10_000, 10_000], [10_000, 10_000, 10_000]);
        // normalized saturates at 4 readers (the third level's runs are the last two).
        let n = r.runs.len();
        r.runs[n - 2].metrics.saturated = true;
        assert_eq!(r.runs[n - 2].backend.name(), "normalized");
        let ls = levels(&r);
        let c = crossover(&r, &ls, true);
        let Crossing::Crossed(s) = &c.crossing else {
            panic!("no crossover: {c:#?}");
        };
        assert_eq!(s.label, "4 readers");
        assert!(s.baseline_saturated && !s.significant);
    }

    #[test]
    fn gaps_under_the_floor_never_cross() {
        let r = sweep([10_200, 10_250, 10_100], [10_000, 10_000, 10_000]);
        let ls = levels(&r);
        let c = crossover(&r, &ls, true);
        assert!(
            matches!(&c.crossing, Crossing::NotCrossed { last, .. } if last.label == "4 readers"),
            "{c:#?}"
        );
        assert_eq!(c.headline(), None);
        let lines = c.lines();
        assert!(
            lines[0].starts_with("no crossover: normalized writes do not fall"),
            "{lines:#?}"
        );
        assert!(lines[0].contains("the gap is below the harness's resolution (floor p99 300µs)"));
        // Without a fair run nothing is judged.
        let c = crossover(&r, &ls, false);
        assert!(matches!(c.crossing, Crossing::NotJudged));
        assert!(c.lines()[0].starts_with("not judged, because the driver fell behind"));
    }
}
