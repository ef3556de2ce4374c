//! A counterexample kept as a file that `check-projections --replay FILE` runs again: the
//! pack's name, the seed its parameters are drawn from, the dataset's sizes, the guarantee,
//! the shrunk history (ops and faults), and what it showed when found. JSON, so a person can
//! read and trim it; nothing in it depends on the engine it was found on.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::history::History;
use super::{ConvergenceReport, Counterexample, Finding};

/// The format this build writes and reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayFile {
    pub format: u32,
    pub pack: String,
    /// The pack's folder as the check was given it (`--replay` without one uses it).
    pub pack_dir: String,
    pub seed: u64,
    pub sizes: BTreeMap<String, i64>,
    /// `exactly-once`, `at-least-once` or `idempotent:PROJECTION`.
    pub guarantee: String,
    pub history: History,
    /// The engine it was found on, and what it showed there (for the reader; a replay
    /// compares nothing with it).
    pub found_on: String,
    pub showed: Vec<String>,
}

impl ReplayFile {
    pub fn new(report: &ConvergenceReport, finding: &Finding, c: &Counterexample) -> ReplayFile {
        ReplayFile {
            format: FORMAT,
            pack: report.pack.clone(),
            pack_dir: report.pack_dir.clone(),
            seed: c.seed,
            sizes: report.sizes.clone(),
            guarantee: finding.guarantee.name(),
            history: c.history.clone(),
            found_on: report.engine.display_name().to_string(),
            showed: c.divergence.to_string().lines().map(String::from).collect(),
        }
    }

    /// Reads `path`. `Err`: the file and what is wrong with it, in a sentence.
    pub fn read(path: &Path) -> Result<ReplayFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let file: ReplayFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a replay file: {e}", path.display()))?;
        if file.format != FORMAT {
            return Err(format!(
                "{}: format: {} is not {FORMAT}, the format this build reads",
                path.display(),
                file.format
            ));
        }
        if file.history.batch_size == 0 {
            return Err(format!(
                "{}: history.batch_size: must be at least 1",
                path.display()
            ));
        }
        Ok(file)
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}
