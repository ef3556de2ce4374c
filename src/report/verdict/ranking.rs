//! Who is fastest at one read level, for writes or reads (p99). A backend is only called the
//! lowest when Welch's t-test over the per-second p99s says the gap to every other backend is
//! significant *and* the gap is at least the harness's floor at p99 (the larger of the two
//! runs' floors); otherwise the tied ones are named together, and a gap under the floor is
//! reported as below the harness's resolution, never as a ranking. When some backends
//! saturate and others do not, the ones that kept up win.

use std::collections::BTreeMap;

use super::{below_floor, below_resolution, bold_list, floor_of, fmt_p, join_and, p99};
use super::{saturated_in, Level};
use crate::backend::BackendKind;
use crate::format::fmt_ms;
use crate::metrics::{MetricKey, Stat};
use crate::report::stats::{welch, Sample};
use crate::results::BackendRun;

/// Ranking of one metric among a level's backends.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// `(backend, whole-run p99 µs)`, lowest first.
    pub order: Vec<(BackendKind, u64)>,
    /// Backends that saturated while others at the level kept up: they cannot win it.
    pub saturated: Vec<BackendKind>,
    /// Every backend of the level saturated (then they are ranked among themselves).
    pub all_saturated: bool,
    /// Backends not significantly above the lowest of those that can win (the lowest
    /// included), or apart from it by less than the floor.
    pub tied: Vec<BackendKind>,
    /// For each other backend that can win: Welch p-value of its per-second p99s against the
    /// lowest's.
    pub p_vs_best: BTreeMap<BackendKind, Option<f64>>,
    /// Backends whose gap to the lowest is below the harness's floor, with that floor (µs).
    pub below_floor: BTreeMap<BackendKind, u64>,
}

/// Ranks the level's backends by their whole-run p99 of `key`, judging gaps on `series` (the
/// per-second p99s of the same lane); `None` when no backend measured `key`.
pub fn rank(level: &Level, key: MetricKey, series: fn(&BackendRun) -> Vec<f64>) -> Option<Ranking> {
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

impl Ranking {
    /// The backends that can win (kept up, or every one saturated), lowest first.
    pub fn contenders(&self) -> Vec<BackendKind> {
        self.order
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !self.saturated.contains(k))
            .collect()
    }

    /// Who is lowest, for the headline: `**a**`, `**a** and **b** (tied)`, `…, c saturated`.
    pub fn named(&self) -> String {
        let mut s = bold_list(&self.tied);
        if self.tied.len() > 1 {
            let by_noise = self.tied.len() - 1 > self.below_floor.len();
            s.push_str(if by_noise {
                " (tied)"
            } else {
                " (apart by less than the harness's resolution)"
            });
        }
        if !self.saturated.is_empty() {
            let sat: Vec<String> = self.saturated.iter().map(|k| k.to_string()).collect();
            s.push_str(&format!(", {} saturated", join_and(&sat)));
        }
        s
    }

    /// The ranking line of one side (`write`, `read`); without a fair run, the figures only.
    pub fn line(&self, side: &str, fair: bool) -> String {
        let all = self
            .order
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} {}{}",
                    fmt_ms(*v as f64),
                    if self.saturated.contains(k) || self.all_saturated {
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
                "{side} p99: {all} (no ranking: at least one run is not sound evidence — its \
                 driver fell behind or its window was too short; see what was left out)"
            );
        }
        if self.order.len() == 1 {
            return format!("{side} p99: {all}");
        }
        let contenders = self.contenders();
        // Who saturated and who kept up decides first.
        let mut s = format!("{side} p99: {all}");
        if !self.saturated.is_empty() {
            let sat: Vec<String> = self.saturated.iter().map(|k| k.to_string()).collect();
            s.push_str(&format!(
                "; {} saturated and {} kept up, so the ones that kept up win",
                join_and(&sat),
                bold_list(&contenders)
            ));
            if contenders.len() == 1 {
                return s;
            }
            s.push_str(" — among them: ");
        } else if self.all_saturated {
            s.push_str("; every backend saturated here, so they are ranked by latency from intended start (which includes the wait): ");
        } else {
            s.push_str("; ");
        }
        let ps = |k: &BackendKind| {
            if let Some(f) = self.below_floor.get(k) {
                return format!("{k} {}", below_resolution(Stat::P99, *f));
            }
            format!(
                "{k} {}",
                self.p_vs_best
                    .get(k)
                    .copied()
                    .flatten()
                    .map(fmt_p)
                    .unwrap_or_else(|| "too few intervals to test".into())
            )
        };
        if self.tied.len() == 1 {
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
        } else if self.below_floor.len() + 1 == contenders.len() {
            // Every gap is under the floor: no ranking at all.
            let floor = self.below_floor.values().copied().max().unwrap_or_default();
            s.push_str(&format!(
                "the gaps between {} are {}: not ranked",
                bold_list(&contenders),
                below_resolution(Stat::P99, floor)
            ));
        } else {
            let tied_ps = self
                .tied
                .iter()
                .skip(1)
                .map(ps)
                .collect::<Vec<_>>()
                .join(", ");
            let rest: Vec<String> = contenders
                .iter()
                .filter(|k| !self.tied.contains(k))
                .map(ps)
                .collect();
            s.push_str(&format!(
                "{} tied ({tied_ps} against the lowest)",
                bold_list(&self.tied)
            ));
            if !rest.is_empty() {
                s.push_str(&format!("; significantly higher: {}", rest.join(", ")));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, sample, set, set_floor};
    use super::super::write_p99s;
    use super::*;
    use crate::report::levels;

    fn kinds(names: &[&str]) -> Vec<BackendKind> {
        names
            .iter()
            .map(|n| BackendKind::from_name(n).unwrap())
            .collect()
    }

    /// Write p99s 10.0ms (normalized), 10.2ms (cqrs-sync), 20.0ms (cqrs-async), each steady
    /// within ±50µs over its intervals; write floors at p99 of 300µs.
    fn three() -> crate::results::Results {
        let mut r = sample();
        for (name, p99) in [
            ("normalized", 10_000),
            ("cqrs-sync", 10_200),
            ("cqrs-async", 20_000),
        ] {
            let x = run(&mut r, name);
            set(x, MetricKey::Writes, 1_000, p99, 50);
            set_floor(x, true, 100, 300);
        }
        r
    }

    #[test]
    fn a_gap_below_the_floor_is_not_ranked_and_a_clear_one_is() {
        let r = three();
        let ls = levels(&r);
        let w = rank(&ls[0], MetricKey::Writes, write_p99s).unwrap();
        assert_eq!(
            w.order.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            kinds(&["normalized", "cqrs-sync", "cqrs-async"])
        );
        // 200µs apart is under the 300µs floor: tied, never tested.
        assert_eq!(w.tied, kinds(&["normalized", "cqrs-sync"]));
        assert_eq!(w.below_floor.get(&kinds(&["cqrs-sync"])[0]), Some(&300));
        // 10ms apart, steady intervals: significantly higher.
        let p = w.p_vs_best[&kinds(&["cqrs-async"])[0]].unwrap();
        assert!(p < 0.05, "{p}");
        let line = w.line("write", true);
        assert!(
            line.contains("**normalized** and **cqrs-sync** tied (cqrs-sync below the harness's resolution (floor p99 300µs) against the lowest); significantly higher: cqrs-async"),
            "{line}"
        );
        assert_eq!(
            w.named(),
            "**normalized** and **cqrs-sync** (apart by less than the harness's resolution)"
        );
    }

    #[test]
    fn a_backend_that_saturated_cannot_win_against_one_that_kept_up() {
        let mut r = three();
        run(&mut r, "normalized").metrics.saturated = true;
        let ls = levels(&r);
        let w = rank(&ls[0], MetricKey::Writes, write_p99s).unwrap();
        assert_eq!(w.saturated, kinds(&["normalized"]));
        assert_eq!(w.contenders(), kinds(&["cqrs-sync", "cqrs-async"]));
        assert_eq!(w.tied, kinds(&["cqrs-sync"]));
        let line = w.line("write", true);
        assert!(line.contains("normalized 10.0ms (saturated)"), "{line}");
        assert!(line.contains("lowest is **cqrs-sync**"), "{line}");
    }

    #[test]
    fn without_a_fair_run_nothing_is_ranked() {
        let r = three();
        let ls = levels(&r);
        let w = rank(&ls[0], MetricKey::Writes, write_p99s).unwrap();
        let line = w.line("write", false);
        assert!(
            line.ends_with(
                "(no ranking: at least one run is not sound evidence — its driver fell behind \
                 or its window was too short; see what was left out)"
            ),
            "{line}"
        );
        assert!(!line.contains("lowest"), "{line}");
    }
}
