//! `results.json`: everything a run measured, with the scenario as run and the environment,
//! so a report can be regenerated and two runs compared from the files alone. Its fields are
//! documented in `docs/results.schema.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::db::load::SeedReport;
// Measured by the database layer, recorded here as part of results.json.
pub use crate::db::storage::Storage;
use crate::metrics::{DriverCpu, Floor, RunMetrics};
use crate::projection::projector::ProjectorMode;
use crate::scenario::Scenario;
use crate::verify::VerifyReport;

/// Version of results.json. 2: the dataset and the op stream are drawn with the `rand` crates
/// (ChaCha8, `rand_distr::Zipf`) instead of the hand-written SplitMix and Zipf table, so the
/// same seed gives other values (and another `stream_hash`) than in version 1; the fields are
/// unchanged. See docs/results.schema.json.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub format_version: u32,
    pub tool: ToolInfo,
    pub scenario: Scenario,
    pub seed: u64,
    /// Identifies the op stream (independent of timing): equal hashes, equal streams.
    pub stream_hash: String,
    pub started_at: String,
    pub environment: Environment,
    pub runs: Vec<BackendRun>,
    /// The run was stopped (SIGINT/SIGTERM) before it finished: `runs` holds what was measured
    /// until then. Such results are never compared or decided on. Absent when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The share of the op stream this process drove (`run --segment I/N`); absent for a
    /// whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentInfo>,
    /// The segments `merge` added into these results; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
}

/// A segment of a scale-out run: which share, when the N processes started, and how many of
/// the stream's ops were this process's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// 1-based.
    pub index: u32,
    pub count: u32,
    /// The start the N processes lined up on (`--start-at`), RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// This segment's ops: those that started (warm-up included) and those that came due and
    /// never started. With a fixed rate, exactly this segment's share of the ops due in the
    /// duration; the segments' counts add up to the single process's.
    pub ops: u64,
}

/// What `merge` added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// N of the segments `1/N` … `N/N`.
    pub segments: u32,
    /// The parts' files, in segment order.
    pub files: Vec<String>,
}

/// When a run measured, in wall-clock time (Unix seconds), so that parts run by different
/// processes can be checked to overlap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeasuredWindow {
    pub from_unix_s: f64,
    pub to_unix_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub engine: String,
    /// The database URL with any password removed.
    pub database: String,
    pub server_version: String,
    pub settings: Vec<(String, String)>,
    pub pool_size: u32,
    pub cpus: usize,
    pub os: String,
    pub projector_mode: ProjectorMode,
    /// Threads of the async runtime that ran the driver (`--threads`; 1 = one thread).
    #[serde(default = "one")]
    pub threads: usize,
}

fn one() -> usize {
    1
}

/// The point of a sweep a run belongs to: a read load, or the dataset's order count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepPoint {
    ReadRate(f64),
    Readers(u32),
    Orders(i64),
    /// A pack's dataset with `size` at `value`.
    Size {
        size: String,
        value: i64,
    },
}

impl SweepPoint {
    pub fn label(&self) -> String {
        match self {
            SweepPoint::ReadRate(r) => format!("reads {r}/s"),
            SweepPoint::Readers(1) => "1 reader".to_string(),
            SweepPoint::Readers(n) => format!("{n} readers"),
            SweepPoint::Orders(1) => "1 order".to_string(),
            SweepPoint::Orders(n) => format!("{n} orders"),
            SweepPoint::Size { size, value } => format!("{size} = {value}"),
        }
    }

    /// A number to put on a plot's x axis.
    pub fn x(&self) -> f64 {
        match self {
            SweepPoint::ReadRate(r) => *r,
            SweepPoint::Readers(n) => *n as f64,
            SweepPoint::Orders(n) => *n as f64,
            SweepPoint::Size { value, .. } => *value as f64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rates {
    /// Ops per second asked for; `None` for closed loop ("max") or none.
    pub write_target: Option<f64>,
    pub read_target: Option<f64>,
    pub write_achieved: f64,
    pub read_achieved: f64,
}

impl Rates {
    /// The targets as given, and what `metrics` achieved: completed ops (done or refused) per
    /// measured second, writes and reads.
    pub fn achieved(
        write_target: Option<f64>,
        read_target: Option<f64>,
        metrics: &crate::metrics::RunMetrics,
    ) -> Rates {
        let measured = metrics.measured_seconds.max(1e-9);
        let achieved = |key: &str| {
            metrics
                .ops
                .get(key)
                .map(|o| (o.ok + o.rejected) as f64 / measured)
                .unwrap_or(0.0)
        };
        Rates {
            write_target,
            read_target,
            write_achieved: achieved("write"),
            read_achieved: achieved("read"),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProjectorReport {
    pub events: u64,
    pub batches: u64,
    pub duplicates: u64,
    pub errors: u64,
    /// Time from the end of the load until every event was applied.
    pub catch_up_seconds: f64,
    /// Events delivered a second time by fault injection.
    pub redelivered: u64,
    /// Events parked in the dead-letter table at the end of the run.
    pub dead_letters: u64,
    /// Idle polls that found committed events held back by an open transaction.
    pub horizon_waits: u64,
}

/// Operations that failed with database errors, and when (1 s resolution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    pub failed_ops: u64,
    pub from_s: f64,
    pub to_s: f64,
}

impl Outage {
    /// From the interval series: the span of intervals with database errors.
    pub fn from_metrics(m: &RunMetrics) -> Option<Outage> {
        let failing: Vec<_> = m.intervals.iter().filter(|i| i.errors > 0).collect();
        let first = failing.first()?;
        let last = failing.last()?;
        Some(Outage {
            failed_ops: failing.iter().map(|i| i.errors).sum(),
            from_s: first.t_s,
            to_s: last.t_s + last.duration_s,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendRun {
    pub backend: BackendKind,
    pub sweep_point: Option<SweepPoint>,
    pub rates: Rates,
    /// Whether the system or the driver fell behind is in `metrics` (`saturated`,
    /// `driver_behind`).
    pub metrics: RunMetrics,
    /// The harness's floor, calibrated before the load at the run's rates and concurrency.
    #[serde(default)]
    pub floor: Option<Floor>,
    /// CPU time of the tool's own threads during the load.
    #[serde(default)]
    pub cpu: Option<DriverCpu>,
    pub seed: SeedReport,
    pub verify: Option<VerifyReport>,
    pub projector: Option<ProjectorReport>,
    pub storage: Option<Storage>,
    /// Where the database was kept (`--keep-db`), password removed.
    pub kept_database: Option<String>,
    /// When operations failed with database errors; `None` when none did.
    #[serde(default)]
    pub outage: Option<Outage>,
    /// Optimistic-concurrency counters per command type (`event-sourced`: version conflicts,
    /// retries on fresh state, commands that gave up); absent for the other backends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrency: Vec<crate::backend::ConcurrencyCounts>,
    /// Per materialized view (`matview`): its refreshes, how long they took and the server
    /// CPU they cost; absent for the other backends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refreshes: Vec<crate::backend::matview::RefreshReport>,
    /// What rehydrating streams and appending cost (`event-sourced`; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_store: Option<crate::metrics::event_store::EventStoreStats>,
    /// The lag in parts (`cqrs-broker`: commit → published, published → applied, commit →
    /// applied, every event of the run); absent for the other backends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lag_parts: Vec<crate::projection::lag_parts::LagPart>,
    /// Where the read models were, when they had a database of their own (`--read-db`),
    /// password removed; absent when they were in the write database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_store: Option<String>,
    /// What readers of one product's order lines saw while price changes rewrote the
    /// lines' copies (`denormalized`: read latency, and reads that saw a product
    /// half-rewritten); absent for the other backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite_reads: Option<crate::metrics::rewrite_reads::RewriteReads>,
    /// When the measured window was (a segment of a scale-out run); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_window: Option<MeasuredWindow>,
}

impl BackendRun {
    /// Every op of the run: started (warm-up included) or due and never started.
    pub fn ops_total(&self) -> u64 {
        let m = &self.metrics;
        let measured: u64 = ["write", "read"]
            .iter()
            .filter_map(|k| m.ops.get(*k))
            .map(|o| o.count)
            .sum();
        m.warmup.ops + measured + m.unstarted.total()
    }

    /// `cqrs-async`, or `cqrs-async @ reads 200/s` for a sweep point.
    pub fn label(&self) -> String {
        match &self.sweep_point {
            Some(p) => format!("{} @ {}", self.backend, p.label()),
            None => self.backend.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a cqrs-bench results file: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Results {
    pub fn load(path: &Path) -> Result<Results, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ResultsError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialize")
    }
}

pub use crate::format::utc_timestamp;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_798_761_599), "2026-12-31T23:59:59Z");
    }
}
