//! The scenario's thresholds (evaluated by [`crate::check`]) against every run: how many were
//! met, each one missed with its figure, and each one met with the runs it was checked on.

use crate::results::Results;

/// A threshold missed on one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    /// As written: `*.write.p99 <= 100ms`.
    pub threshold: String,
    pub run: String,
    pub measured: String,
}

/// The thresholds' outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThresholdFinding {
    /// The scenario sets none.
    NoneSet,
    Checked {
        /// Checks made (one per threshold and run it applies to).
        checks: usize,
        missed: Vec<Missed>,
        /// Each threshold met somewhere, in the scenario's order, with `run figure` per run.
        met: Vec<(String, Vec<String>)>,
    },
}

/// Evaluates the scenario's thresholds (not its budgets, which the decision judges).
pub fn thresholds(results: &Results) -> ThresholdFinding {
    if results.scenario.thresholds.is_empty() {
        return ThresholdFinding::NoneSet;
    }
    let lines: Vec<_> = crate::check::evaluate(
        results,
        &results.scenario.thresholds,
        &results.scenario.budgets,
    )
    .into_iter()
    .filter(|l| l.name.starts_with("threshold"))
    .collect();
    let name = |n: &str| n.trim_start_matches("threshold ").trim().to_string();
    let missed = lines
        .iter()
        .filter(|l| !l.passed)
        .map(|l| Missed {
            threshold: name(&l.name),
            run: l.run.clone(),
            measured: l.measured.clone(),
        })
        .collect();
    let mut met: Vec<(String, Vec<String>)> = Vec::new();
    for l in lines.iter().filter(|l| l.passed) {
        let entry = format!("{} {}", l.run, l.measured);
        let n = name(&l.name);
        match met.iter_mut().find(|(m, _)| *m == n) {
            Some((_, runs)) => runs.push(entry),
            None => met.push((n, vec![entry])),
        }
    }
    ThresholdFinding::Checked {
        checks: lines.len(),
        missed,
        met,
    }
}

impl ThresholdFinding {
    /// Every threshold met (`None` when the scenario sets none).
    pub fn all_met(&self) -> Option<bool> {
        match self {
            ThresholdFinding::NoneSet => None,
            ThresholdFinding::Checked { missed, .. } => Some(missed.is_empty()),
        }
    }

    /// The section's lines.
    pub fn lines(&self) -> Vec<String> {
        let ThresholdFinding::Checked {
            checks,
            missed,
            met,
        } = self
        else {
            return vec!["the scenario sets no thresholds".into()];
        };
        let mut out = vec![format!(
            "{} of {checks} threshold checks met{}",
            checks - missed.len(),
            if missed.is_empty() {
                ""
            } else {
                " — **missed**:"
            }
        )];
        for m in missed {
            out.push(format!(
                "**missed** `{}` on {}: measured {}",
                m.threshold, m.run, m.measured
            ));
        }
        for (name, runs) in met {
            out.push(format!("met `{name}`: {}", runs.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_come_first_and_met_thresholds_gather_their_runs() {
        let f = ThresholdFinding::Checked {
            checks: 3,
            missed: vec![Missed {
                threshold: "*.write.p99 <= 10ms".into(),
                run: "normalized".into(),
                measured: "19.4ms".into(),
            }],
            met: vec![(
                "*.write.p99 <= 10ms".into(),
                vec!["cqrs-sync 8.0ms".into(), "cqrs-async 9.0ms".into()],
            )],
        };
        assert_eq!(f.all_met(), Some(false));
        assert_eq!(
            f.lines(),
            [
                "2 of 3 threshold checks met — **missed**:",
                "**missed** `*.write.p99 <= 10ms` on normalized: measured 19.4ms",
                "met `*.write.p99 <= 10ms`: cqrs-sync 8.0ms, cqrs-async 9.0ms",
            ]
        );
        assert_eq!(ThresholdFinding::NoneSet.all_met(), None);
    }
}
