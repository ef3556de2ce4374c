//! Which evidence may decide. A run where the driver fell behind measured the harness, not the
//! backend; a window shorter than [`MIN_MEASURED_SECONDS`] holds too few intervals to tell a
//! backend's steady state from a stall; a percentile from fewer samples than
//! [`Stat::min_samples`](crate::metrics::Stat::min_samples) is the maximum of a handful. Such evidence never feeds the decision, a
//! ranking or a story's answer, and the answer says what was left out, why and what to change.

use serde::Serialize;

use crate::results::BackendRun;

/// The shortest measured window (after warm-up) that decides: five 1-second intervals, enough
/// to see whether a backend holds its rate or stalls once.
pub const MIN_MEASURED_SECONDS: f64 = 5.0;

/// Why a whole run cannot decide.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unsound {
    /// A worker was free but ops started late: the harness set the numbers.
    DriverBehind,
    /// The measured window was shorter than [`MIN_MEASURED_SECONDS`].
    WindowTooShort {
        measured_seconds: f64,
        needed_seconds: f64,
    },
}

impl Unsound {
    /// Why, in words.
    pub fn why(&self) -> String {
        match self {
            Unsound::DriverBehind => {
                "the driver fell behind (ops started late while a worker was free), so the \
                 numbers describe the harness"
                    .into()
            }
            Unsound::WindowTooShort {
                measured_seconds,
                needed_seconds,
            } => format!(
                "it measured {measured_seconds:.1} s after warm-up, under the {needed_seconds:.0} s \
                 a decision needs"
            ),
        }
    }

    /// What to change.
    pub fn remedy(&self) -> &'static str {
        match self {
            Unsound::DriverBehind => "run with fewer workers or on a quieter machine",
            Unsound::WindowTooShort { .. } => "give a longer duration (or a shorter warm-up)",
        }
    }
}

/// Everything that keeps `run` from deciding; empty when it is sound.
pub fn unsound(run: &BackendRun) -> Vec<Unsound> {
    let mut out = Vec::new();
    if run.metrics.driver_behind {
        out.push(Unsound::DriverBehind);
    }
    if run.metrics.measured_seconds < MIN_MEASURED_SECONDS {
        out.push(Unsound::WindowTooShort {
            measured_seconds: run.metrics.measured_seconds,
            needed_seconds: MIN_MEASURED_SECONDS,
        });
    }
    out
}

/// Whether `run` may decide.
pub fn is_sound(run: &BackendRun) -> bool {
    unsound(run).is_empty()
}
