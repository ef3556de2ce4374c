//! Run metrics: histograms per op, intervals, lag, read-your-writes.
//!
//! The [`Recorder`] collects one run's samples and [`Recorder::finish`] turns them into
//! [`RunMetrics`], the serializable block that goes into `results.json`.
//!
//! Principles (see DESIGN.md, "Open-loop load" and "Histograms, not sample lists"):
//! - **No coordinated omission.** An op's latency runs from its *intended* start (given by the
//!   target rate) to its finish, so a stall that makes the driver start ops late shows up as
//!   latency. The service time (actual start to finish) is kept beside it; the gap between the
//!   two is what a closed-loop tool would have hidden.
//! - **Bounded memory.** HdrHistograms (1 µs .. 1 h, 3 significant digits), never sample lists.
//!   Totals are one histogram pair per op kind seen; the per-interval series keeps histograms
//!   only for the last [`INTERVAL_GRACE`]` + 1` intervals and reduces each older interval to a
//!   small [`IntervalStats`] (p50/p99/max and counts). A 10-minute run therefore holds 600 small
//!   structs, not 600 histograms ([`Recorder::live_histograms`] is bounded by
//!   [`MAX_LIVE_HISTOGRAMS`]).
//! - **Warm-up reported apart.** Everything whose time (intended start, applied-at, probe
//!   time) lies before `start + warmup` only bumps the [`WarmupStats`] counters.
//!
//! Samples are placed in the interval of their *intended* start (ops), their applied-at time
//! (lag) — not the time they were recorded. Samples may arrive out of order (an op that stalled
//! is recorded after ops that were intended later):
//! - the totals (`ops`, `lag`, `errors`, …) always take every measured sample, however late;
//! - an interval's histograms stay open while it is one of the newest `INTERVAL_GRACE + 1`
//!   intervals a sample has reached, so a sample up to two intervals late is counted exactly;
//! - a sample for an interval that is already closed still adds to that interval's counts
//!   (`writes`, `reads`, `errors`, `rejected`, `lag_count`) and maxima, so the series' counts
//!   always add up to the totals, but it no longer moves that interval's p50/p99.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::domain::{CommandKind, QueryKind};

pub mod cpu;
pub mod event_store;
pub mod histograms;
mod latency;
pub mod merge;
pub mod rewrite_reads;
pub mod ryw;
pub mod skew;
mod stat;

pub use cpu::{CpuSnapshot, DriverCpu};
use latency::{add_histogram, p50_p99_max, round_to};
pub use latency::{
    duration_us, new_histogram, record_us, LatencyStats, HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS,
    SPECTRUM_MAX_POINTS, SPECTRUM_TICKS_PER_HALF_DISTANCE,
};
pub use stat::Stat;

/// A run fell behind when the p99 of a start delay exceeds this (µs): 10 ms. Applied to the
/// time ops waited for a busy worker it marks the *system* saturated (a finding); applied to
/// the delay of free workers it marks the *driver* starved (an invalid run). Values are
/// compared as the histogram reports them (0.1 % resolution).
pub const FELL_BEHIND_P99_LATENESS_US: u64 = 10_000;
/// A run fell behind when the maximum of a start delay exceeds this (µs): 100 ms.
pub const FELL_BEHIND_MAX_LATENESS_US: u64 = 100_000;
/// How many intervals *before* the newest one keep their histograms open for late samples.
/// With 2, a sample for the previous-but-one interval is still counted exactly.
pub const INTERVAL_GRACE: usize = 2;
/// Shortest interval accepted by [`Recorder::new`]; shorter ones are raised to this.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Upper bound on the interval series length (a guard against absurd timestamps: about 11.5
/// days of 1 s intervals). Samples beyond it are put in the last interval.
pub const MAX_INTERVALS: usize = 1_000_000;
/// Upper bound of [`Recorder::live_histograms`]: latency + service per op kind, lag,
/// read-your-writes time-to-visible, lateness, queue wait, dispatch, search freshness and skew,
/// and write/read/lag for each
/// open interval.
pub const MAX_LIVE_HISTOGRAMS: usize =
    2 * (CommandKind::ALL.len() + QueryKind::ALL.len()) + 7 + 3 * (INTERVAL_GRACE + 1);

/// The name of an op kind: a shop command or query (`place_order`), or a pack's
/// (`transfer`). Interned, so keys stay `Copy` and cheap to compare: a process meets a handful
/// of names (the shop's and its pack's), each stored once however often it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpName(&'static str);

impl OpName {
    /// A name known at compile time (the shop's kinds).
    pub const fn fixed(name: &'static str) -> OpName {
        OpName(name)
    }

    /// The interned name for `name`.
    pub fn intern(name: &str) -> OpName {
        use std::collections::BTreeSet;
        use std::sync::{Mutex, OnceLock};
        static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
        let mut names = NAMES
            .get_or_init(|| Mutex::new(BTreeSet::new()))
            .lock()
            .expect("op names lock");
        if let Some(known) = names.get(name) {
            return OpName(known);
        }
        let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
        names.insert(leaked);
        OpName(leaked)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl Serialize for OpName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl fmt::Display for OpName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl From<CommandKind> for OpName {
    fn from(k: CommandKind) -> OpName {
        OpName(k.name())
    }
}

impl From<QueryKind> for OpName {
    fn from(k: QueryKind) -> OpName {
        OpName(k.name())
    }
}

/// What was executed: a command (write) or a query (read), by name: the shop's kinds and a
/// pack's commands and queries are recorded alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKey {
    Write(OpName),
    Read(OpName),
}

impl OpKey {
    /// `true` for commands.
    pub fn is_write(self) -> bool {
        matches!(self, OpKey::Write(_))
    }

    /// All writes or all reads: the aggregate this op counts in.
    pub fn class(self) -> MetricKey {
        match self {
            OpKey::Write(_) => MetricKey::Writes,
            OpKey::Read(_) => MetricKey::Reads,
        }
    }

    /// The key in [`RunMetrics::ops`], e.g. `"write.place_order"`, `"read.product_page"`.
    pub fn name(self) -> String {
        MetricKey::Op(self).to_string()
    }

    /// The op's own name (`place_order`).
    pub fn op_name(self) -> OpName {
        match self {
            OpKey::Write(n) | OpKey::Read(n) => n,
        }
    }
}

/// A key of [`RunMetrics::ops`]: every write, every read, or one kind of op. Displays as (and
/// parses from) the key `results.json` uses: `write`, `read`, `write.place_order`,
/// `read.product_page`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKey {
    Writes,
    Reads,
    Op(OpKey),
}

impl MetricKey {
    pub fn write(kind: CommandKind) -> MetricKey {
        MetricKey::Op(OpKey::Write(kind.into()))
    }

    pub fn read(kind: QueryKind) -> MetricKey {
        MetricKey::Op(OpKey::Read(kind.into()))
    }

    /// The key of a read op by name (a shop query or a pack's).
    pub fn read_named(name: OpName) -> MetricKey {
        MetricKey::Op(OpKey::Read(name))
    }

    /// Whether the key is about writes (all of them, or one command).
    pub fn is_write(self) -> bool {
        match self {
            MetricKey::Writes => true,
            MetricKey::Reads => false,
            MetricKey::Op(op) => op.is_write(),
        }
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricKey::Writes => f.write_str("write"),
            MetricKey::Reads => f.write_str("read"),
            MetricKey::Op(OpKey::Write(k)) => write!(f, "write.{k}"),
            MetricKey::Op(OpKey::Read(k)) => write!(f, "read.{k}"),
        }
    }
}

impl std::str::FromStr for MetricKey {
    type Err = String;

    fn from_str(s: &str) -> Result<MetricKey, String> {
        match s.split_once('.') {
            None if s == "write" => Ok(MetricKey::Writes),
            None if s == "read" => Ok(MetricKey::Reads),
            // Any op name parses: whether the workload has that command or query is the
            // scenario's to say (the shop's kinds, or a pack's names).
            Some(("write", c)) if is_op_name(c) => {
                Ok(MetricKey::Op(OpKey::Write(OpName::intern(c))))
            }
            Some(("read", q)) if is_op_name(q) => Ok(MetricKey::Op(OpKey::Read(OpName::intern(q)))),
            _ => Err(format!("unknown metric \"{s}\"")),
        }
    }
}

/// The queries that ran in any of `runs`, each once: the shop's in their canonical order,
/// then a pack's by name.
pub fn queries_run<'a>(runs: impl IntoIterator<Item = &'a RunMetrics>) -> Vec<OpName> {
    let mut names: Vec<OpName> = Vec::new();
    for m in runs {
        for n in m.read_names() {
            let n = OpName::intern(n);
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let rank = |n: &OpName| {
        QueryKind::ALL
            .iter()
            .position(|q| q.name() == n.as_str())
            .unwrap_or(QueryKind::ALL.len())
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    names
}

/// Whether `s` can name an op: a letter or `_`, then letters, digits and `_` (the names of
/// the shop's kinds and a pack's SQL identifiers).
fn is_op_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How an op ended. Rejections and errors are answers too: their latency is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused by the domain (e.g. `"out_of_stock"`); counted as completed work.
    Rejected(&'static str),
    /// Failed (e.g. `"db_error"`, `"timeout"`); not counted as completed work.
    Error(&'static str),
}

/// Everything measured in one run (after warm-up). Goes into `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// Length of the measured window in seconds: `end - (start + warmup)`, 0 if negative.
    pub measured_seconds: f64,
    /// Length of one entry of `intervals`, in seconds.
    pub interval_seconds: f64,
    /// Per op kind (`"write.place_order"`, `"read.product_page"`, … for each kind that ran)
    /// plus the aggregates `"write"` (all commands) and `"read"` (all queries), which are
    /// always present.
    pub ops: BTreeMap<String, OpStats>,
    /// Projection lag (async backend): writer's commit to the projector's commit of the batch
    /// that applied the event. `count == 0` when the backend has no lag.
    pub lag: LatencyStats,
    /// Search freshness (`cqrs-async`, `event-sourced`): writer's commit to the search
    /// index's commit of the batch holding the event, reloaded and searchable. `count == 0`
    /// when the backend keeps no search index.
    #[serde(default)]
    pub search_freshness: LatencyStats,
    /// How far the search index and the SQL read models are apart during the run.
    #[serde(default)]
    pub search_skew: skew::SkewStats,
    /// Read-your-writes probes (a read right after a write).
    pub ryw: RywStats,
    /// Measured rejections and errors by label: `"rejected.out_of_stock"`, `"error.db_error"`.
    pub errors: BTreeMap<String, u64>,
    /// How late open-loop ops started relative to their intended start: `queue_wait` plus
    /// `dispatch`, op by op.
    pub lateness: LatencyStats,
    /// The part of an op's lateness spent waiting for a worker: it came due while every worker
    /// of its lane was busy with earlier ops (the system falling behind). Every open-loop op is
    /// recorded (one that did not wait as 1 µs), so its p99 is that of all ops.
    #[serde(default)]
    pub queue_wait: LatencyStats,
    /// The part of an op's lateness after a worker was free for it: the pacer's and the
    /// runtime's own delay (the driver falling behind). Every open-loop op is recorded.
    #[serde(default)]
    pub dispatch: LatencyStats,
    /// Open-loop ops that came due while every worker of their lane was busy.
    #[serde(default)]
    pub waited_for_worker: u64,
    /// Ops that came due before the end of the run but never started (the run ends on time).
    #[serde(default)]
    pub unstarted: Unstarted,
    /// The system fell behind its target rate: ops waited for busy workers (queue wait p99
    /// above [`FELL_BEHIND_P99_LATENESS_US`] or max above [`FELL_BEHIND_MAX_LATENESS_US`]) or
    /// came due and never started. A valid measurement of an overloaded system; every op is
    /// still timed from its intended start.
    #[serde(default)]
    pub saturated: bool,
    /// The driver fell behind: free workers started ops late (dispatch p99 or max above the
    /// same limits). The harness was starved, so the run's numbers do not describe the
    /// backend and no winner is named from them.
    #[serde(default)]
    pub driver_behind: bool,
    /// What happened during warm-up (excluded from everything else).
    pub warmup: WarmupStats,
    /// One entry per interval of measured time, from `start + warmup` to the load's end, with
    /// no gaps (empty intervals appear with zeros). The last one may be partial (see
    /// `duration_s`). Lag applied after the load's end (catching up) is in `lag`, in no interval.
    pub intervals: Vec<IntervalStats>,
    /// The histograms behind these numbers, serialized (a segment of a scale-out run keeps
    /// them so that `merge` can add the parts); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<histograms::RunHistograms>,
}

impl RunMetrics {
    /// The counts and latency of `key`'s ops, when any ran.
    pub fn op(&self, key: MetricKey) -> Option<&OpStats> {
        self.ops.get(&key.to_string())
    }

    /// The names of the reads that ran (with samples).
    fn read_names(&self) -> impl Iterator<Item = &str> {
        self.ops
            .iter()
            .filter(|(_, o)| o.count > 0)
            .filter_map(|(k, _)| k.strip_prefix("read."))
    }

    /// Ops that failed with a database error, writes and reads together.
    pub fn errors(&self) -> u64 {
        [MetricKey::Writes, MetricKey::Reads]
            .into_iter()
            .filter_map(|k| self.op(k))
            .map(|o| o.errors)
            .sum()
    }
}

/// Counts and latencies of one op kind (or of all writes / all reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpStats {
    /// Ops recorded (`ok + rejected + errors`).
    pub count: u64,
    /// Ops that succeeded.
    pub ok: u64,
    /// Ops refused by the domain (an answer, not a failure).
    pub rejected: u64,
    /// Ops that failed (database error, timeout, …).
    pub errors: u64,
    /// Completed ops (`ok + rejected`) per measured second.
    pub ops_per_sec: f64,
    /// Intended start -> finish (the user-visible latency, including time spent waiting for a
    /// late driver). Includes rejections and errors.
    pub latency: LatencyStats,
    /// Actual start -> finish (the time the backend took). Includes rejections and errors.
    pub service: LatencyStats,
}

/// Read-your-writes probes: a read issued right after a write, looking for that write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RywStats {
    /// Probes made.
    pub probes: u64,
    /// Probes whose first read did not see the write.
    pub misses: u64,
    /// `misses / probes` (0 when there were no probes).
    pub miss_share: f64,
    /// For misses that became visible: time from the write's commit until it was seen.
    pub time_to_visible: LatencyStats,
    /// Misses that were never seen before the probe gave up.
    pub never_visible: u64,
    /// The probes' looks at every think time the scenario gives, ascending (the first is the
    /// look `probes` and `misses` count). Absent in results written before think times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_think_time: Vec<ryw::RywAtThinkTime>,
    /// Writes that were to be probed but found the most probes already waiting (the
    /// driver's bound): not probed, so not in `probes`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Samples that fell in the warm-up window (before `start + warmup`), counted apart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmupStats {
    /// Length of the warm-up window in seconds.
    pub seconds: f64,
    /// Ops whose intended start was in the warm-up window.
    pub ops: u64,
    /// Of those, ops that failed ([`Outcome::Error`]).
    pub errors: u64,
    /// Projection lag samples applied during warm-up.
    pub lag_samples: u64,
    /// Read-your-writes probes made during warm-up.
    pub ryw_probes: u64,
}

/// One interval of the time series. Latency percentiles are intended start -> finish, µs.
/// Ops belong to the interval of their intended start, lag samples to that of their
/// applied-at time. Counts include samples that arrived after the interval was closed;
/// p50/p99 do not (see the module docs); maxima do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalStats {
    /// Interval start, seconds since the start of measurement (`start + warmup`).
    pub t_s: f64,
    /// Interval length in seconds (the run's interval; less for a partial last one).
    pub duration_s: f64,
    /// Writes (commands) with any outcome.
    pub writes: u64,
    /// Reads (queries) with any outcome.
    pub reads: u64,
    /// Ops that failed ([`Outcome::Error`]), writes and reads.
    pub errors: u64,
    /// Ops refused by the domain ([`Outcome::Rejected`]), writes and reads.
    pub rejected: u64,
    pub write_p50_us: u64,
    pub write_p99_us: u64,
    pub write_max_us: u64,
    pub read_p50_us: u64,
    pub read_p99_us: u64,
    pub read_max_us: u64,
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    pub lag_max_us: u64,
    /// Projection lag samples applied in this interval.
    pub lag_count: u64,
}

impl IntervalStats {
    fn empty(index: usize, interval_s: f64) -> Self {
        IntervalStats {
            t_s: round_to(index as f64 * interval_s, 1e9),
            duration_s: interval_s,
            ..Default::default()
        }
    }

    /// Folds `o` (the same interval, seen elsewhere) into `self`: counts add, maxima take the
    /// larger. Percentiles take the larger too, which is an upper bound of the percentile of
    /// the union (if at most 1 % of each part lies above x, at most 1 % of the union does).
    fn absorb(&mut self, o: &IntervalStats) {
        self.writes += o.writes;
        self.reads += o.reads;
        self.errors += o.errors;
        self.rejected += o.rejected;
        self.lag_count += o.lag_count;
        for (a, b) in [
            (&mut self.write_p50_us, o.write_p50_us),
            (&mut self.write_p99_us, o.write_p99_us),
            (&mut self.write_max_us, o.write_max_us),
            (&mut self.read_p50_us, o.read_p50_us),
            (&mut self.read_p99_us, o.read_p99_us),
            (&mut self.read_max_us, o.read_max_us),
            (&mut self.lag_p50_us, o.lag_p50_us),
            (&mut self.lag_p99_us, o.lag_p99_us),
            (&mut self.lag_max_us, o.lag_max_us),
        ] {
            *a = (*a).max(b);
        }
    }

    fn count_op(&mut self, key: OpKey, outcome: Outcome) {
        if key.is_write() {
            self.writes += 1;
        } else {
            self.reads += 1;
        }
        match outcome {
            Outcome::Ok => {}
            Outcome::Rejected(_) => self.rejected += 1,
            Outcome::Error(_) => self.errors += 1,
        }
    }
}

/// The harness's floor: the run's lanes (same rates, same workers, same sessions, same op
/// stream) driven for a short while with a trivial statement instead of the backend's. It is
/// what the tool adds to every op by itself; differences smaller than it are below the
/// harness's resolution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// The statement each op ran (`SELECT 1`).
    pub statement: String,
    /// How long the calibration ran.
    pub seconds: f64,
    /// Latency from the intended start of the write lane's ops (`None` without writes).
    pub write: Option<LatencyStats>,
    /// The same for the read lane.
    pub read: Option<LatencyStats>,
    /// How late free workers started ops (the pacer's and the runtime's delay).
    pub dispatch: LatencyStats,
    /// CPU of the tool's threads per op while calibrating.
    pub cpu: Option<DriverCpu>,
}

impl Floor {
    /// The floor of a lane's latency at a statistic, µs: the smallest difference of that
    /// statistic the harness can resolve. The p50, p90 and mean are their own; the higher
    /// percentiles and the max take the p99 (a short calibration does not resolve them).
    pub fn resolution_us(&self, is_write: bool, stat: Stat) -> Option<u64> {
        let lane = if is_write { &self.write } else { &self.read };
        let l = lane.as_ref().filter(|l| l.count > 0)?;
        Some(match stat {
            Stat::P50 => l.p50_us,
            Stat::P90 => l.p90_us,
            Stat::Mean => l.mean_us.round() as u64,
            Stat::P99 | Stat::P999 | Stat::P9999 | Stat::Max => l.p99_us,
        })
    }
}

/// Ops that came due before the end of the run and never started, per lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unstarted {
    pub writes: u64,
    pub reads: u64,
}

impl Unstarted {
    pub fn total(&self) -> u64 {
        self.writes.saturating_add(self.reads)
    }
}

/// Whether a start-delay summary exceeds the limits (see [`RunMetrics::saturated`] and
/// [`RunMetrics::driver_behind`]).
pub fn fell_behind(lateness: &LatencyStats) -> bool {
    lateness.p99_us > FELL_BEHIND_P99_LATENESS_US || lateness.max_us > FELL_BEHIND_MAX_LATENESS_US
}

/// Running totals of one op kind.
#[derive(Debug)]
struct OpAcc {
    count: u64,
    ok: u64,
    rejected: u64,
    errors: u64,
    latency: Histogram<u64>,
    service: Histogram<u64>,
}

impl OpAcc {
    fn new() -> Self {
        OpAcc {
            count: 0,
            ok: 0,
            rejected: 0,
            errors: 0,
            latency: new_histogram(),
            service: new_histogram(),
        }
    }

    fn absorb(&mut self, o: &OpAcc) {
        self.count += o.count;
        self.ok += o.ok;
        self.rejected += o.rejected;
        self.errors += o.errors;
        add_histogram(&mut self.latency, &o.latency);
        add_histogram(&mut self.service, &o.service);
    }

    fn stats(&self, measured_seconds: f64) -> OpStats {
        let completed = (self.ok + self.rejected) as f64;
        OpStats {
            count: self.count,
            ok: self.ok,
            rejected: self.rejected,
            errors: self.errors,
            ops_per_sec: if measured_seconds > 0.0 {
                round_to(completed / measured_seconds, 1e6)
            } else {
                0.0
            },
            latency: LatencyStats::from_histogram(&self.latency),
            service: LatencyStats::from_histogram(&self.service),
        }
    }
}

/// An interval whose histograms are still open. `stats` holds its counts (and, after a
/// merge, percentile bounds from the other recorder); percentiles are filled at close.
#[derive(Debug)]
struct OpenInterval {
    index: usize,
    write: Histogram<u64>,
    read: Histogram<u64>,
    lag: Histogram<u64>,
    stats: IntervalStats,
}

impl OpenInterval {
    fn new(index: usize, interval_s: f64) -> Self {
        OpenInterval {
            index,
            write: new_histogram(),
            read: new_histogram(),
            lag: new_histogram(),
            stats: IntervalStats::empty(index, interval_s),
        }
    }

    /// Reduces the interval to its small summary (the histograms are dropped).
    fn close(self) -> IntervalStats {
        let mut s = self.stats;
        let mut closed = IntervalStats {
            t_s: s.t_s,
            duration_s: s.duration_s,
            ..Default::default()
        };
        (
            closed.write_p50_us,
            closed.write_p99_us,
            closed.write_max_us,
        ) = p50_p99_max(&self.write);
        (closed.read_p50_us, closed.read_p99_us, closed.read_max_us) = p50_p99_max(&self.read);
        (closed.lag_p50_us, closed.lag_p99_us, closed.lag_max_us) = p50_p99_max(&self.lag);
        s.absorb(&closed);
        s
    }
}

/// Where a sample for a given interval goes.
enum Slot<'a> {
    Open(&'a mut OpenInterval),
    Closed(&'a mut IntervalStats),
}

/// Records one run. Single-threaded (`&mut self`); give each worker its own recorder
/// ([`Recorder::fork`]) and [`Recorder::merge`] them, or share one behind a mutex.
#[derive(Debug)]
pub struct Recorder {
    warmup: Duration,
    start: Instant,
    measure_start: Instant,
    interval: Duration,
    interval_s: f64,
    ops: BTreeMap<OpKey, OpAcc>,
    /// Keyed by (`"rejected"` | `"error"`, label); turned into strings at finish.
    errors: BTreeMap<(&'static str, &'static str), u64>,
    lag: Histogram<u64>,
    search_lag: Histogram<u64>,
    skew: skew::SkewAcc,
    ryw_probes: u64,
    ryw_misses: u64,
    ryw_never: u64,
    ryw_ttv: Histogram<u64>,
    ryw_by_think: ryw::ThinkTimeAcc,
    ryw_skipped: u64,
    lateness: Histogram<u64>,
    queue_wait: Histogram<u64>,
    dispatch: Histogram<u64>,
    waited_for_worker: u64,
    unstarted: Unstarted,
    warmup_stats: WarmupStats,
    /// Summaries of intervals `0..closed.len()`.
    closed: Vec<IntervalStats>,
    /// Intervals `closed.len()..`, contiguous, at most `INTERVAL_GRACE + 1` of them.
    open: VecDeque<OpenInterval>,
    /// The histograms of `closed`, encoded as each interval closed, when the run keeps them
    /// ([`keeping_histograms`](Self::keeping_histograms)).
    closed_histograms: Option<Vec<histograms::IntervalHistograms>>,
}

impl Recorder {
    /// `start`: time zero of the run (intended time of op 0); ops whose intended start is
    /// before `start + warmup` count as warm-up. `interval`: length of one entry of the time
    /// series (raised to [`MIN_INTERVAL`] if shorter).
    pub fn new(start: Instant, warmup: Duration, interval: Duration) -> Self {
        let interval = interval.max(MIN_INTERVAL);
        Recorder {
            warmup,
            start,
            // An unrepresentable start + warmup (absurd warm-up) degrades to no warm-up.
            measure_start: start.checked_add(warmup).unwrap_or(start),
            interval,
            interval_s: round_to(interval.as_secs_f64(), 1e9),
            ops: BTreeMap::new(),
            errors: BTreeMap::new(),
            lag: new_histogram(),
            search_lag: new_histogram(),
            skew: skew::SkewAcc::default(),
            ryw_probes: 0,
            ryw_misses: 0,
            ryw_never: 0,
            ryw_ttv: new_histogram(),
            ryw_by_think: ryw::ThinkTimeAcc::default(),
            ryw_skipped: 0,
            lateness: new_histogram(),
            queue_wait: new_histogram(),
            dispatch: new_histogram(),
            waited_for_worker: 0,
            unstarted: Unstarted::default(),
            warmup_stats: WarmupStats {
                seconds: round_to(warmup.as_secs_f64(), 1e9),
                ..Default::default()
            },
            closed: Vec::new(),
            open: VecDeque::new(),
            closed_histograms: None,
        }
    }

    /// Also keeps every histogram, serialized, for `RunMetrics::histograms` (a segment of a
    /// scale-out run). An interval's histograms are encoded when it closes, so memory stays
    /// a few hundred bytes per interval.
    pub fn keeping_histograms(mut self) -> Self {
        self.closed_histograms = Some(Vec::new());
        self
    }

    /// Closes the oldest open interval.
    fn close_oldest(&mut self) {
        if let Some(iv) = self.open.pop_front() {
            if let Some(kept) = &mut self.closed_histograms {
                kept.push(histograms::IntervalHistograms::of(
                    &iv.write, &iv.read, &iv.lag,
                ));
            }
            self.closed.push(iv.close());
        }
    }

    /// Closes the next interval, which nothing reached.
    fn close_empty(&mut self) {
        if let Some(kept) = &mut self.closed_histograms {
            kept.push(histograms::IntervalHistograms::empty());
        }
        self.closed
            .push(IntervalStats::empty(self.closed.len(), self.interval_s));
    }

    /// Adds encoded histograms from another recorder into interval `idx`, already closed
    /// here.
    fn add_closed_histograms(&mut self, idx: usize, other: &histograms::IntervalHistograms) {
        if let Some(mine) = self.closed_histograms.as_mut().and_then(|v| v.get_mut(idx)) {
            // Both sides encoded them; they decode.
            let _ = mine.add(other);
        }
    }

    /// An empty recorder with the same start, warm-up and interval (for a worker whose
    /// samples are [`merge`](Self::merge)d back later).
    pub fn fork(&self) -> Self {
        let fork = Recorder::new(self.start, self.warmup, self.interval);
        if self.closed_histograms.is_some() {
            fork.keeping_histograms()
        } else {
            fork
        }
    }

    /// Records one op. Latency = `finished - intended`, service time = `finished - started`
    /// (negative differences count as 0, recorded as 1 µs). Rejections and errors are
    /// recorded in the latency histograms and counted apart.
    pub fn record_op(
        &mut self,
        key: OpKey,
        intended: Instant,
        started: Instant,
        finished: Instant,
        outcome: Outcome,
    ) {
        let Some(idx) = self.interval_index(intended) else {
            self.warmup_stats.ops += 1;
            if matches!(outcome, Outcome::Error(_)) {
                self.warmup_stats.errors += 1;
            }
            return;
        };
        let latency = duration_us(finished.saturating_duration_since(intended));
        let service = duration_us(finished.saturating_duration_since(started));

        let acc = self.ops.entry(key).or_insert_with(OpAcc::new);
        acc.count += 1;
        match outcome {
            Outcome::Ok => acc.ok += 1,
            Outcome::Rejected(label) => {
                acc.rejected += 1;
                *self.errors.entry(("rejected", label)).or_default() += 1;
            }
            Outcome::Error(label) => {
                acc.errors += 1;
                *self.errors.entry(("error", label)).or_default() += 1;
            }
        }
        record_us(&mut acc.latency, latency);
        record_us(&mut acc.service, service);

        match self.slot(idx) {
            Slot::Open(iv) => {
                iv.stats.count_op(key, outcome);
                let h = if key.is_write() {
                    &mut iv.write
                } else {
                    &mut iv.read
                };
                record_us(h, latency);
            }
            Slot::Closed(s) => {
                s.count_op(key, outcome);
                let max = if key.is_write() {
                    &mut s.write_max_us
                } else {
                    &mut s.read_max_us
                };
                *max = (*max).max(latency);
            }
        }
    }

    /// Projection lag sample (async backend): when the projector applied it, and the lag.
    pub fn record_lag(&mut self, applied_at: Instant, lag: Duration) {
        let Some(idx) = self.interval_index(applied_at) else {
            self.warmup_stats.lag_samples += 1;
            return;
        };
        let us = duration_us(lag);
        record_us(&mut self.lag, us);
        match self.slot(idx) {
            Slot::Open(iv) => {
                iv.stats.lag_count += 1;
                record_us(&mut iv.lag, us);
            }
            Slot::Closed(s) => {
                s.lag_count += 1;
                s.lag_max_us = s.lag_max_us.max(us);
            }
        }
    }

    /// Search freshness sample: when the index made the event searchable, and how long after
    /// the writer's commit. Warm-up samples are left out.
    pub fn record_search_lag(&mut self, searchable_at: Instant, lag: Duration) {
        if self.interval_index(searchable_at).is_some() {
            record_us(&mut self.search_lag, duration_us(lag));
        }
    }

    /// Skew sample taken at `at`: the search index is `behind` events behind the SQL read
    /// models. Warm-up samples are left out.
    pub fn record_skew(&mut self, at: Instant, behind: i64) {
        if self.interval_index(at).is_some() {
            self.skew.record(behind);
        }
    }

    /// Read-your-writes probe after a write: visible on first read or not; if not, time until
    /// visible (`None` = never seen before giving up). `time_to_visible` is ignored when
    /// `visible_at_once`.
    pub fn record_ryw(
        &mut self,
        at: Instant,
        visible_at_once: bool,
        time_to_visible: Option<Duration>,
    ) {
        let look = ryw::RywLook {
            think: Duration::ZERO,
            visible: visible_at_once,
        };
        self.record_ryw_looks(at, &[look], time_to_visible);
    }

    /// A write that was to be probed found every probe slot taken (the driver's bound on
    /// probes waiting at once): it was not probed.
    pub fn record_ryw_skipped(&mut self, at: Instant) {
        if self.interval_index(at).is_some() {
            self.ryw_skipped += 1;
        }
    }

    /// Read-your-writes probe that looked at each think time of `looks` (ascending; the
    /// first is the probe's first look, which `probes`/`misses` count). `time_to_visible`:
    /// from the commit until the write was seen, for a probe whose first look missed (`None`
    /// = never seen before giving up); ignored when the first look saw it.
    pub fn record_ryw_looks(
        &mut self,
        at: Instant,
        looks: &[ryw::RywLook],
        time_to_visible: Option<Duration>,
    ) {
        let Some(first) = looks.first() else {
            return;
        };
        if self.interval_index(at).is_none() {
            self.warmup_stats.ryw_probes += 1;
            return;
        }
        self.ryw_probes += 1;
        self.ryw_by_think.record(looks);
        if first.visible {
            return;
        }
        self.ryw_misses += 1;
        match time_to_visible {
            Some(d) => record_us(&mut self.ryw_ttv, duration_us(d)),
            None => self.ryw_never += 1,
        }
    }

    /// How late an open-loop op started, split at the moment a worker was free for it
    /// (`ready`: the later of its intended time and the time its worker finished the previous
    /// op): before it the op waited for a busy worker (`queue_wait`), after it the driver was
    /// slow to start it (`dispatch`). Warm-up ops are ignored (`record_op` counts them).
    pub fn record_start(&mut self, intended: Instant, ready: Instant, started: Instant) {
        if self.interval_index(intended).is_none() {
            return;
        }
        let waited = ready.saturating_duration_since(intended);
        let lateness = started.saturating_duration_since(intended);
        record_us(&mut self.lateness, duration_us(lateness));
        record_us(
            &mut self.dispatch,
            duration_us(started.saturating_duration_since(ready)),
        );
        // Every op is recorded (no wait as the histogram's lowest value), so the percentiles
        // describe the run, not only its unlucky ops.
        record_us(&mut self.queue_wait, duration_us(waited));
        if !waited.is_zero() {
            self.waited_for_worker += 1;
        }
    }

    /// Ops of a lane that came due before the end and never started.
    pub fn record_unstarted(&mut self, is_write: bool, n: u64) {
        let lane = if is_write {
            &mut self.unstarted.writes
        } else {
            &mut self.unstarted.reads
        };
        *lane = lane.saturating_add(n);
    }

    /// Number of histograms currently held (memory is proportional to it). Bounded by
    /// [`MAX_LIVE_HISTOGRAMS`] however long the run.
    pub fn live_histograms(&self) -> usize {
        // The five run-wide ones, search freshness and skew.
        2 * self.ops.len() + 7 + 3 * self.open.len()
    }

    /// Folds a recorder of the same run (same `start`, `warmup` and `interval`, e.g. from
    /// [`fork`](Self::fork)) into this one. Totals, counts and maxima merge exactly; the
    /// interval histograms still open in both merge exactly too. For an interval that one side
    /// has already reduced to a summary, the merged p50/p99 is the larger of the two sides',
    /// an upper bound of the true value.
    pub fn merge(&mut self, other: Recorder) {
        for (key, acc) in &other.ops {
            self.ops.entry(*key).or_insert_with(OpAcc::new).absorb(acc);
        }
        for (k, n) in &other.errors {
            *self.errors.entry(*k).or_default() += n;
        }
        add_histogram(&mut self.lag, &other.lag);
        add_histogram(&mut self.search_lag, &other.search_lag);
        self.skew.merge(&other.skew);
        add_histogram(&mut self.ryw_ttv, &other.ryw_ttv);
        self.ryw_by_think.merge(&other.ryw_by_think);
        self.ryw_skipped += other.ryw_skipped;
        add_histogram(&mut self.lateness, &other.lateness);
        add_histogram(&mut self.queue_wait, &other.queue_wait);
        add_histogram(&mut self.dispatch, &other.dispatch);
        self.waited_for_worker += other.waited_for_worker;
        self.unstarted.writes = self.unstarted.writes.saturating_add(other.unstarted.writes);
        self.unstarted.reads = self.unstarted.reads.saturating_add(other.unstarted.reads);
        self.ryw_probes += other.ryw_probes;
        self.ryw_misses += other.ryw_misses;
        self.ryw_never += other.ryw_never;
        self.warmup_stats.ops += other.warmup_stats.ops;
        self.warmup_stats.errors += other.warmup_stats.errors;
        self.warmup_stats.lag_samples += other.warmup_stats.lag_samples;
        self.warmup_stats.ryw_probes += other.warmup_stats.ryw_probes;

        // Bring self up to other's newest interval, so every interval of other is either
        // closed or open here.
        let other_newest = match other.open.back() {
            Some(iv) => Some(iv.index),
            None => other.closed.len().checked_sub(1),
        };
        let Some(other_newest) = other_newest else {
            return;
        };
        if other_newest >= self.closed.len() {
            self.ensure_open(other_newest);
        }
        let other_histograms = other.closed_histograms.unwrap_or_default();
        for (i, s) in other.closed.iter().enumerate() {
            let encoded = other_histograms.get(i);
            match self.slot(i) {
                Slot::Open(iv) => {
                    iv.stats.absorb(s);
                    if let Some(e) = encoded {
                        let _ = histograms::add_encoded(&mut iv.write, &e.write);
                        let _ = histograms::add_encoded(&mut iv.read, &e.read);
                        let _ = histograms::add_encoded(&mut iv.lag, &e.lag);
                    }
                }
                Slot::Closed(mine) => {
                    mine.absorb(s);
                    if let Some(e) = encoded {
                        self.add_closed_histograms(i, e);
                    }
                }
            }
        }
        for iv in other.open {
            match self.slot(iv.index) {
                Slot::Open(mine) => {
                    mine.stats.absorb(&iv.stats);
                    add_histogram(&mut mine.write, &iv.write);
                    add_histogram(&mut mine.read, &iv.read);
                    add_histogram(&mut mine.lag, &iv.lag);
                }
                Slot::Closed(mine) => {
                    let index = iv.index;
                    let encoded = histograms::IntervalHistograms::of(&iv.write, &iv.read, &iv.lag);
                    mine.absorb(&iv.close());
                    self.add_closed_histograms(index, &encoded);
                }
            }
        }
    }

    /// [`finish`](Self::finish) for a recorder shared with the driver's tasks once they are
    /// done. Should a clone still be alive, its samples are taken out (it is left empty).
    pub fn finish_shared(
        recorder: std::sync::Arc<std::sync::Mutex<Recorder>>,
        end: Instant,
    ) -> RunMetrics {
        let recorder = match std::sync::Arc::try_unwrap(recorder) {
            Ok(m) => m
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            Err(shared) => {
                let mut guard = shared
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let empty = guard.fork();
                std::mem::replace(&mut *guard, empty)
            }
        };
        recorder.finish(end)
    }

    /// Closes the run at `end` (the end of measured time) and summarizes it.
    pub fn finish(mut self, end: Instant) -> RunMetrics {
        let measured = end.saturating_duration_since(self.measure_start);
        let measured_seconds = round_to(measured.as_secs_f64(), 1e9);

        while !self.open.is_empty() {
            self.close_oldest();
        }
        let measured_ns = measured.as_nanos();
        let interval_ns = self.interval.as_nanos();
        let n = usize::try_from(measured_ns.div_ceil(interval_ns))
            .unwrap_or(usize::MAX)
            .min(MAX_INTERVALS);
        while self.closed.len() < n {
            self.close_empty();
        }
        // Intervals after the load's end hold only lag applied while catching up: an interval
        // of no ops there reads as a drop to zero (plots) and a sample (compare's t-tests).
        // That lag stays in the totals.
        self.closed.truncate(n);
        // The last interval inside the measured window may be partial.
        for (i, s) in self.closed.iter_mut().enumerate() {
            let begin_ns = i as u128 * interval_ns;
            if begin_ns < measured_ns && measured_ns < begin_ns + interval_ns {
                s.duration_s = round_to((measured_ns - begin_ns) as f64 / 1e9, 1e9);
            }
        }

        let mut ops = BTreeMap::new();
        let mut writes = OpAcc::new();
        let mut reads = OpAcc::new();
        for (key, acc) in &self.ops {
            ops.insert(key.name(), acc.stats(measured_seconds));
            if key.is_write() {
                writes.absorb(acc);
            } else {
                reads.absorb(acc);
            }
        }
        ops.insert(
            MetricKey::Writes.to_string(),
            writes.stats(measured_seconds),
        );
        ops.insert(MetricKey::Reads.to_string(), reads.stats(measured_seconds));

        let errors = self
            .errors
            .iter()
            .map(|((class, label), n)| (format!("{class}.{label}"), *n))
            .collect();

        let queue_wait = LatencyStats::from_histogram(&self.queue_wait);
        let dispatch = LatencyStats::from_histogram(&self.dispatch);
        let histograms = self.closed_histograms.take().map(|intervals| {
            use histograms::encode;
            histograms::RunHistograms {
                ops: self
                    .ops
                    .iter()
                    .map(|(key, acc)| {
                        (
                            key.name(),
                            histograms::OpHistograms {
                                latency: encode(&acc.latency),
                                service: encode(&acc.service),
                            },
                        )
                    })
                    .collect(),
                lag: encode(&self.lag),
                search_freshness: encode(&self.search_lag),
                ryw_time_to_visible: encode(&self.ryw_ttv),
                lateness: encode(&self.lateness),
                queue_wait: encode(&self.queue_wait),
                dispatch: encode(&self.dispatch),
                intervals,
            }
        });
        RunMetrics {
            measured_seconds,
            interval_seconds: self.interval_s,
            ops,
            lag: LatencyStats::from_histogram(&self.lag),
            search_freshness: LatencyStats::from_histogram(&self.search_lag),
            search_skew: self.skew.stats(),
            ryw: RywStats {
                probes: self.ryw_probes,
                misses: self.ryw_misses,
                miss_share: if self.ryw_probes > 0 {
                    round_to(self.ryw_misses as f64 / self.ryw_probes as f64, 1e12)
                } else {
                    0.0
                },
                time_to_visible: LatencyStats::from_histogram(&self.ryw_ttv),
                never_visible: self.ryw_never,
                by_think_time: self.ryw_by_think.stats(),
                skipped: self.ryw_skipped,
            },
            errors,
            lateness: LatencyStats::from_histogram(&self.lateness),
            saturated: self.unstarted.total() > 0 || fell_behind(&queue_wait),
            driver_behind: fell_behind(&dispatch),
            queue_wait,
            dispatch,
            waited_for_worker: self.waited_for_worker,
            unstarted: self.unstarted,
            warmup: self.warmup_stats,
            intervals: self.closed,
            histograms,
        }
    }

    /// The interval a measured time falls in, or `None` during warm-up.
    fn interval_index(&self, t: Instant) -> Option<usize> {
        let d = t.checked_duration_since(self.measure_start)?;
        let idx = d.as_nanos() / self.interval.as_nanos();
        Some(
            usize::try_from(idx)
                .unwrap_or(usize::MAX)
                .min(MAX_INTERVALS - 1),
        )
    }

    /// Opens intervals up to `idx` (which is at least `closed.len()`), closing those that fall
    /// more than [`INTERVAL_GRACE`] behind it. Does nothing if `idx` is already open.
    fn ensure_open(&mut self, idx: usize) {
        let oldest_kept = idx.saturating_sub(INTERVAL_GRACE);
        while self.open.front().is_some_and(|iv| iv.index < oldest_kept) {
            self.close_oldest();
        }
        if self.open.is_empty() {
            // Skipped-over intervals that nothing ever reached: summaries of nothing.
            while self.closed.len() < oldest_kept {
                self.close_empty();
            }
        }
        let mut next = self
            .open
            .back()
            .map_or(self.closed.len(), |iv| iv.index + 1);
        while next <= idx {
            self.open
                .push_back(OpenInterval::new(next, self.interval_s));
            next += 1;
        }
    }

    /// The open interval or closed summary for interval `idx`, opening it if needed.
    fn slot(&mut self, idx: usize) -> Slot<'_> {
        if idx < self.closed.len() {
            return Slot::Closed(&mut self.closed[idx]);
        }
        self.ensure_open(idx);
        let pos = idx - self.closed.len();
        Slot::Open(&mut self.open[pos])
    }
}

#[cfg(test)]
mod tests;
