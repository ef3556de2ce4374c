//! Whether the numbers count: every read model against its truth after each run (verify),
//! and the ops that failed with database errors.

use crate::results::Results;

/// One run's problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Its read models differ from the truth in this many rows: its numbers do not count.
    WrongReadModels { run: String, mismatches: usize },
    /// Ops failed: how many, and per error kind (`error.timeout 3`).
    Errors {
        run: String,
        count: u64,
        kinds: Vec<(String, u64)>,
    },
}

/// The correctness finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correctness {
    /// Runs whose read models were verified.
    pub verified: usize,
    pub problems: Vec<Problem>,
}

/// Verify outcomes and errors of every run.
pub fn correctness(results: &Results) -> Correctness {
    let mut problems = Vec::new();
    for run in &results.runs {
        if let Some(v) = run.verify.as_ref().filter(|v| !v.ok()) {
            problems.push(Problem::WrongReadModels {
                run: run.label(),
                mismatches: v.mismatches,
            });
        }
        let count = run.metrics.errors();
        if count > 0 {
            problems.push(Problem::Errors {
                run: run.label(),
                count,
                kinds: run
                    .metrics
                    .errors
                    .iter()
                    .filter(|(k, _)| k.starts_with("error."))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            });
        }
    }
    Correctness {
        verified: results.runs.iter().filter(|r| r.verify.is_some()).count(),
        problems,
    }
}

impl Correctness {
    /// Every verified read model matched its truth.
    pub fn read_models_right(&self) -> bool {
        !self
            .problems
            .iter()
            .any(|p| matches!(p, Problem::WrongReadModels { .. }))
    }

    /// The section's lines: what held first (when every read model matched), then each
    /// problem.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.read_models_right() {
            out.push(if self.verified > 0 {
                format!(
                    "every read model matched the truth after every run ({} runs verified)",
                    self.verified
                )
            } else {
                "no read models to verify (normalized only)".into()
            });
        }
        for p in &self.problems {
            out.push(match p {
                Problem::WrongReadModels { run, mismatches } => format!(
                    "**{run}: read models differ from the truth** ({mismatches} mismatching rows) — its numbers do not count"
                ),
                Problem::Errors { run, count, kinds } => format!(
                    "{run}: {count} ops failed ({})",
                    kinds
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, sample};
    use super::*;
    use crate::metrics::MetricKey;

    #[test]
    fn a_wrong_read_model_and_failed_ops_are_named_per_run() {
        let mut r = sample();
        let verified = r.runs.iter().filter(|x| x.verify.is_some()).count();
        let sync = run(&mut r, "cqrs-sync");
        sync.verify
            .as_mut()
            .expect("the sample verified cqrs-sync")
            .mismatches = 3;
        let async_ = run(&mut r, "cqrs-async");
        async_
            .metrics
            .ops
            .get_mut(&MetricKey::Writes.to_string())
            .unwrap()
            .errors = 2;
        async_.metrics.errors.insert("error.timeout".into(), 2);
        let c = correctness(&r);
        assert_eq!(c.verified, verified);
        assert!(!c.read_models_right());
        let lines = c.lines();
        // No "every read model matched" line once one did not.
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].starts_with("**cqrs-sync"), "{}", lines[0]);
        assert!(lines[0].contains("read models differ from the truth** (3 mismatching rows)"));
        assert!(lines[1].contains(": 2 ops failed ("), "{}", lines[1]);
        assert!(lines[1].contains("error.timeout 2"), "{}", lines[1]);
    }
}
