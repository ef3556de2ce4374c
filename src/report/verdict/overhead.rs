//! What a backend's writes cost over the baseline's (normalized) at one read level: the gap at
//! p50 and p99, each either beyond the harness's floor (a signed difference) or below it, and
//! a judgement from the per-second p50s — a gap below the p50 floor is no overhead the harness
//! can resolve, whatever the t-test would say.

use super::{below_floor, below_resolution, by_backend, floor_of, fmt_p, interval_values};
use super::{join_and, p50, p99, pct, saturated_in, signed_ms, Level};
use crate::backend::{registry, BackendKind};
use crate::format::fmt_ms;
use crate::metrics::{MetricKey, Stat};
use crate::report::stats::{welch, Sample};

/// One statistic of the writes of a backend and of the baseline, with the floor between them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    pub stat: Stat,
    pub backend_us: u64,
    pub baseline_us: u64,
    /// The larger of the two runs' floors at `stat`, µs.
    pub floor_us: Option<u64>,
}

impl Gap {
    /// Whether the two differ by less than the floor (and so cannot be compared).
    pub fn below_floor(&self) -> bool {
        below_floor(self.backend_us, self.baseline_us, self.floor_us)
    }

    /// `p50 920µs vs 1.0ms: below the harness's resolution (floor p50 108µs)` or
    /// `p99 -5.5ms (-28%)`.
    fn describe(&self) -> String {
        let (n, b) = (self.backend_us, self.baseline_us);
        if self.below_floor() {
            format!(
                "{} {} vs {}: {}",
                self.stat,
                fmt_ms(n as f64),
                fmt_ms(b as f64),
                below_resolution(self.stat, self.floor_us.unwrap_or_default())
            )
        } else {
            format!(
                "{} {} ({})",
                self.stat,
                signed_ms(n as f64 - b as f64),
                pct(n as f64, b as f64)
            )
        }
    }
}

/// What the per-second p50s say about the gap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judgement {
    /// The p50 gap is below the harness's floor: nothing to resolve.
    BelowFloor,
    /// Significantly slower than the baseline (p-value).
    Overhead(f64),
    /// Significantly faster than the baseline (p-value).
    Faster(f64),
    /// Within noise (p-value).
    WithinNoise(f64),
    /// Too few full intervals for a t-test.
    TooFewIntervals,
}

/// A backend's write overhead over the baseline at one level.
#[derive(Debug, Clone, PartialEq)]
pub struct Overhead {
    pub backend: BackendKind,
    pub baseline: BackendKind,
    pub p50: Gap,
    pub p99: Gap,
    pub judgement: Judgement,
    /// Which of the two saturated their writes (their latencies include waiting for a worker).
    pub saturated: Vec<BackendKind>,
}

/// The overhead of `kind`'s writes over the baseline's at `level`, when both ran with writes.
pub fn overhead(level: &Level, kind: BackendKind) -> Option<Overhead> {
    let runs = by_backend(level);
    let baseline = registry::baseline();
    let base = runs.get(&baseline)?;
    let run = runs.get(&kind)?;
    let gap = |stat: Stat, of: fn(&crate::results::BackendRun, MetricKey) -> Option<u64>| {
        Some(Gap {
            stat,
            backend_us: of(run, MetricKey::Writes)?,
            baseline_us: of(base, MetricKey::Writes)?,
            floor_us: floor_of(base, run, true, stat),
        })
    };
    let (g50, g99) = (gap(Stat::P50, p50)?, gap(Stat::P99, p99)?);
    let judgement = if g50.below_floor() {
        Judgement::BelowFloor
    } else {
        let p50s = |r: &crate::results::BackendRun| {
            Sample::of(&interval_values(r, |i| {
                (i.writes > 0).then_some(i.write_p50_us as f64)
            }))
        };
        match welch(&p50s(base), &p50s(run)) {
            Some(w) if w.significant() && w.diff > 0.0 => Judgement::Overhead(w.p),
            Some(w) if w.significant() => Judgement::Faster(w.p),
            Some(w) => Judgement::WithinNoise(w.p),
            None => Judgement::TooFewIntervals,
        }
    };
    let saturated = [*base, *run]
        .into_iter()
        .filter(|r| saturated_in(r, MetricKey::Writes))
        .map(|r| r.backend)
        .collect();
    Some(Overhead {
        backend: kind,
        baseline,
        p50: g50,
        p99: g99,
        judgement,
        saturated,
    })
}

impl Overhead {
    /// The verdict's line.
    pub fn line(&self) -> String {
        let judgement = match self.judgement {
            Judgement::BelowFloor => {
                "no overhead the harness can resolve (the p50 gap is below its floor)".to_string()
            }
            // The p99 gap below the floor is not an overhead: say which statistic has one.
            Judgement::Overhead(p) if self.p99.below_floor() => format!(
                "a measurable overhead at p50 (per-second p50s, {}), none the harness can \
                 resolve at p99",
                fmt_p(p)
            ),
            Judgement::Overhead(p) => {
                format!("a measurable overhead (per-second p50s, {})", fmt_p(p))
            }
            Judgement::Faster(p) => format!(
                "faster than {} in this run (per-second p50s, {}): its extra work is \
                 outweighed by something else, e.g. {}'s heavier join reads competing for \
                 the same CPU and database",
                self.baseline,
                fmt_p(p),
                self.baseline
            ),
            Judgement::WithinNoise(p) => format!(
                "no measurable overhead (per-second p50s within noise, {})",
                fmt_p(p)
            ),
            Judgement::TooFewIntervals => "too few intervals to judge".into(),
        };
        let sat_note = if self.saturated.is_empty() {
            String::new()
        } else {
            let sat: Vec<String> = self.saturated.iter().map(|k| k.to_string()).collect();
            format!(
                "; {} saturated here, so {} write latencies include waiting for a worker",
                join_and(&sat),
                if sat.len() == 1 { "its" } else { "their" }
            )
        };
        format!(
            "**{}** writes vs {} (extra work: {}): {}, {} — {judgement}{sat_note}",
            self.backend,
            self.baseline,
            self.backend.write_also(),
            self.p50.describe(),
            self.p99.describe(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, sample, set, set_floor};
    use super::*;
    use crate::report::levels;

    fn sync() -> BackendKind {
        BackendKind::from_name("cqrs-sync").unwrap()
    }

    #[test]
    fn a_p50_gap_below_the_floor_is_no_overhead_whatever_the_p99() {
        let mut r = sample();
        // p50 1.00ms vs 1.04ms under a 100µs floor; p99 10ms vs 14ms over a 300µs floor.
        set(
            run(&mut r, "normalized"),
            MetricKey::Writes,
            1_000,
            10_000,
            10,
        );
        set(
            run(&mut r, "cqrs-sync"),
            MetricKey::Writes,
            1_040,
            14_000,
            10,
        );
        for name in ["normalized", "cqrs-sync"] {
            set_floor(run(&mut r, name), true, 100, 300);
        }
        let ls = levels(&r);
        let o = overhead(&ls[0], sync()).unwrap();
        assert!(o.p50.below_floor());
        assert!(!o.p99.below_floor());
        assert_eq!(o.judgement, Judgement::BelowFloor);
        let line = o.line();
        assert!(
            line.starts_with("**cqrs-sync** writes vs normalized (extra work: "),
            "{line}"
        );
        assert!(
            line.contains("p50 1.0ms vs 1.0ms: below the harness's resolution (floor p50 100µs), p99 +4.0ms (+40%) — no overhead the harness can resolve"),
            "{line}"
        );
    }

    #[test]
    fn a_steady_gap_beyond_the_floor_is_a_measurable_overhead() {
        let mut r = sample();
        set(
            run(&mut r, "normalized"),
            MetricKey::Writes,
            1_000,
            10_000,
            20,
        );
        set(
            run(&mut r, "cqrs-sync"),
            MetricKey::Writes,
            2_000,
            12_000,
            20,
        );
        for name in ["normalized", "cqrs-sync"] {
            set_floor(run(&mut r, name), true, 100, 300);
        }
        let ls = levels(&r);
        let o = overhead(&ls[0], sync()).unwrap();
        assert!(matches!(o.judgement, Judgement::Overhead(p) if p < 0.05));
        assert!(o.line().contains("p50 +1.0ms (+100%)"), "{}", o.line());
        assert!(
            o.line()
                .ends_with("— a measurable overhead (per-second p50s, p < 0.001)"),
            "{}",
            o.line()
        );
    }

    #[test]
    fn an_overhead_at_p50_with_a_p99_gap_below_the_floor_says_so() {
        // p50 1.0ms → 2.0ms (steady: an overhead); p99 6.2ms → 10.5ms under a 5ms floor.
        let mut r = sample();
        set(
            run(&mut r, "normalized"),
            MetricKey::Writes,
            1_000,
            6_200,
            20,
        );
        set(
            run(&mut r, "cqrs-sync"),
            MetricKey::Writes,
            2_000,
            10_500,
            20,
        );
        for name in ["normalized", "cqrs-sync"] {
            set_floor(run(&mut r, name), true, 100, 5_000);
        }
        let ls = levels(&r);
        let line = overhead(&ls[0], sync()).unwrap().line();
        assert!(
            line.contains("p99 10.5ms vs 6.2ms: below the harness's resolution (floor p99 5.0ms) — a measurable overhead at p50 (per-second p50s, p < 0.001), none the harness can resolve at p99"),
            "{line}"
        );
    }
}
