//! How the runs held their load. Two ways a run can fall behind its open-loop load are told
//! apart: the **system saturated** (ops came due while every worker was busy, or never
//! started) — a valid measurement and a finding: a backend that kept up beats one that
//! saturated at the same level; and the **driver fell behind** (a worker was free but the op
//! started late), or the measured window was too short — then the run cannot decide.

use super::{achieved, join_and, p99, saturation_detail, soundness, Level, Section};
use crate::backend::BackendKind;
use crate::format::fmt_ms;
use crate::metrics::MetricKey;
use crate::report::level_label;
use crate::results::BackendRun;

/// A level at which some run saturated.
#[derive(Debug, Clone)]
pub struct SaturatedLevel<'a> {
    pub label: String,
    /// The runs that saturated (their driver kept time).
    pub saturated: Vec<&'a BackendRun>,
    /// The backends that kept up, with their write p99 (µs).
    pub kept_up: Vec<(BackendKind, Option<u64>)>,
}

/// The load finding.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    pub saturated: Vec<SaturatedLevel<'a>>,
    /// Runs whose driver fell behind.
    pub driver_behind: Vec<&'a BackendRun>,
    /// Runs too short (or otherwise unsound) with a driver that kept time.
    pub too_short: Vec<&'a BackendRun>,
}

/// Saturation per level, and the runs that cannot decide (`invalid`).
pub fn load<'a>(levels: &[Level<'a>], invalid: &[&'a BackendRun]) -> Load<'a> {
    let saturated = levels
        .iter()
        .filter_map(|level| {
            let saturated: Vec<&BackendRun> = level
                .runs
                .iter()
                .copied()
                .filter(|r| r.metrics.saturated && !r.metrics.driver_behind)
                .collect();
            if saturated.is_empty() {
                return None;
            }
            let kept_up = level
                .runs
                .iter()
                .filter(|r| !r.metrics.saturated && !r.metrics.driver_behind)
                .map(|r| (r.backend, p99(r, MetricKey::Writes)))
                .collect();
            Some(SaturatedLevel {
                label: level_label(level),
                saturated,
                kept_up,
            })
        })
        .collect();
    Load {
        saturated,
        driver_behind: invalid
            .iter()
            .copied()
            .filter(|r| r.metrics.driver_behind)
            .collect(),
        too_short: invalid
            .iter()
            .copied()
            .filter(|r| !r.metrics.driver_behind)
            .collect(),
    }
}

impl Load<'_> {
    fn fair(&self) -> bool {
        self.driver_behind.is_empty() && self.too_short.is_empty()
    }

    /// The "Saturation" and "Invalid runs" sections, each when it has something to say.
    pub fn sections(&self) -> Vec<Section> {
        let mut out = Vec::new();
        let mut sat_lines = Vec::new();
        for level in &self.saturated {
            for r in &level.saturated {
                sat_lines.push(format!(
                    "**{}** saturated: {}; {}",
                    r.label(),
                    saturation_detail(r),
                    achieved(r)
                ));
            }
            let kept: Vec<String> = level
                .kept_up
                .iter()
                .map(|(k, p)| {
                    format!(
                        "**{k}** kept up with write p99 {}",
                        p.map(|v| fmt_ms(v as f64)).unwrap_or_else(|| "-".into())
                    )
                })
                .collect();
            if !kept.is_empty() {
                sat_lines.push(format!(
                    "at {}: {}{}",
                    level.label,
                    join_and(&kept),
                    match (self.fair(), kept.len()) {
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
        if self.fair() {
            return out;
        }
        let short = self.too_short.iter().map(|r| {
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
        let lines = self
            .driver_behind
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
            .chain((!self.driver_behind.is_empty()).then(||
                "the harness, not the backend, set these numbers, so **no winner is named**: lower the rates, give the tool fewer runtime threads (`--threads`) or a quieter machine, and run again".to_string(),
            ))
            .chain(short)
            .collect();
        out.push(Section {
            title: "Invalid runs".into(),
            lines,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, sample};
    use super::*;
    use crate::report::levels;

    #[test]
    fn the_ones_that_kept_up_win_a_level_only_when_every_run_counts() {
        let mut r = sample();
        run(&mut r, "normalized").metrics.saturated = true;
        let ls = levels(&r);
        let l = load(&ls, &[]);
        assert_eq!(l.saturated.len(), 1);
        let kept: Vec<&str> = l.saturated[0]
            .kept_up
            .iter()
            .map(|(k, _)| k.name())
            .collect();
        assert_eq!(kept, ["cqrs-sync", "cqrs-async"]);
        let s = l.sections();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].title, "Saturation");
        assert!(
            s[0].lines[0].starts_with("**normalized** saturated: "),
            "{:#?}",
            s[0].lines
        );
        assert!(
            s[0].lines[1].ends_with(", so they win the level"),
            "{}",
            s[0].lines[1]
        );

        // cqrs-async's driver fell behind: it is invalid, not a winner, and nobody wins.
        let mut r = sample();
        run(&mut r, "normalized").metrics.saturated = true;
        run(&mut r, "cqrs-async").metrics.driver_behind = true;
        let ls = levels(&r);
        let invalid: Vec<&BackendRun> = r.runs.iter().filter(|x| x.metrics.driver_behind).collect();
        let s = load(&ls, &invalid).sections();
        assert_eq!(s.len(), 2);
        assert!(
            s[0].lines[1].starts_with("at ") && s[0].lines[1].contains("**cqrs-sync** kept up")
        );
        assert!(!s[0].lines[1].contains("wins"), "{}", s[0].lines[1]);
        assert_eq!(s[1].title, "Invalid runs");
        assert!(s[1].lines[0].starts_with("**cqrs-async** is invalid: the driver fell behind"));
        assert!(s[1].lines[1].contains("**no winner is named**"));
    }
}
