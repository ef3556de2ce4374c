//! The driver: one loop for every mode. Each lane (writes, reads) has `workers` tasks that
//! take the next op index from a shared counter. In open loop, op *i* is due at
//! `start + i / rate`; a worker prepares it, waits on the [`Pacer`] until then, and latency is
//! measured from that intended start, so a stalled database shows up as latency rather than as
//! fewer samples (no coordinated omission). Service time from the actual start is kept beside
//! it. In closed loop (`rate = "max"`) an op is due the moment a worker is free and no timer
//! runs between ops.
//!
//! **Who fell behind.** An op whose worker was still busy with an earlier op when it came due
//! waited for the *system* (queue wait: the database is the bottleneck, a finding); the delay
//! after its worker was free is the *driver's* (dispatch: the harness was starved, which makes
//! a run invalid). Ops are claimed in order, so a worker that claims op *i* after it came due
//! means every worker was busy at that moment.
//!
//! **One of N processes.** With a [`Segment`] `I/N` (`run --segment`), the lane's `k`-th op is
//! stream op `k * N + I - 1`, due when it is due in the full-rate schedule: each process runs
//! 1/N of the rate and the N processes together run the single stream.
//!
//! **The run ends on time.** Ops due at or after the end never start; an op that came due
//! before the end but could not start by the end plus [`END_GRACE`] is not started either and
//! counts as unstarted (the lane was saturated), so a rate far above capacity cannot stretch the
//! run by its backlog.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{Backend, ExecError, Receipt, Session};
use crate::domain::{Command, Query};
use crate::metrics::ryw::RywLook;
use crate::metrics::{CpuSnapshot, DriverCpu, Outcome, Recorder};
use crate::workload::mix::OpStream;
use crate::workload::pacer::Pacer;
use crate::workload::rng::Rng;
use crate::workload::segment::Segment;
pub use crate::workload::source::OpSource;

/// A write op of target `T`'s op source.
pub type WriteOf<T> = <<T as Target>::Ops as OpSource>::Write;
/// A read op of target `T`'s op source.
pub type ReadOf<T> = <<T as Target>::Ops as OpSource>::Read;

/// What the driver talks to. `Backend` implements it for the shop's op stream, a pack's
/// backend for its pack's; tests wrap it to inject faults. Each worker opens one session and
/// runs all its ops in it.
pub trait Target: Send + Sync + 'static {
    type Session: Send;
    /// The op stream it runs.
    type Ops: OpSource;
    /// A session for a worker of the write lane (`writes`) or of the read lane.
    fn session(&self, writes: bool) -> Self::Session;
    /// A session for a read-your-writes probe that outlives the write's worker.
    fn probe_session(&self) -> Self::Session {
        self.session(false)
    }
    fn execute(
        &self,
        s: &mut Self::Session,
        cmd: &WriteOf<Self>,
    ) -> impl Future<Output = Result<Receipt, ExecError>> + Send;
    /// Runs a read; its answer is not the driver's concern.
    fn query(
        &self,
        s: &mut Self::Session,
        q: &ReadOf<Self>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Whether the effect of a committed write is visible to readers yet.
    fn is_visible(
        &self,
        s: &mut Self::Session,
        r: &Receipt,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
}

impl Target for Backend {
    type Session = Session;
    type Ops = OpStream;
    fn session(&self, writes: bool) -> Session {
        Backend::session(self, writes)
    }
    /// Checks a connection out per look: probes come and go, and must not each hold one.
    fn probe_session(&self) -> Session {
        Session::shared()
    }
    fn execute(
        &self,
        s: &mut Session,
        cmd: &Command,
    ) -> impl Future<Output = Result<Receipt, ExecError>> + Send {
        Backend::execute_in(self, s, cmd)
    }
    async fn query(&self, s: &mut Session, q: &Query) -> Result<(), sqlx::Error> {
        Backend::query_in(self, s, q).await.map(|_| ())
    }
    fn is_visible(
        &self,
        s: &mut Session,
        r: &Receipt,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send {
        Backend::is_visible_in(self, s, r)
    }
}

/// Ops per second, or as fast as the workers go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    PerSecond(f64),
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lane {
    pub pace: Pace,
    pub workers: u32,
}

impl Lane {
    pub fn idle() -> Self {
        Lane {
            pace: Pace::PerSecond(0.0),
            workers: 0,
        }
    }

    pub fn active(&self) -> bool {
        self.workers > 0 && !matches!(self.pace, Pace::PerSecond(r) if r <= 0.0)
    }
}

#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Measured time plus warm-up: the whole run.
    pub duration: Duration,
    pub writes: Lane,
    pub reads: Lane,
    /// Share of successful writes followed by a read-your-writes probe.
    pub ryw_share: f64,
    /// How long a probe waits for a write to become visible, after its last look, before
    /// calling it never seen.
    pub ryw_timeout: Duration,
    /// When a probe looks, after the write's commit (ascending, at least one; the scenario's
    /// `ryw_think_times`).
    pub ryw_think_times: Vec<Duration>,
    pub seed: u64,
    /// The share of the stream this process drives (`--segment`); the whole stream by default.
    pub segment: Segment,
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub writes_done: AtomicU64,
    pub reads_done: AtomicU64,
    /// Set to end the load early (a run interrupted by a signal): workers start no more ops.
    stopped: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// Ends the load early: each worker returns before its next op.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Writes and reads done so far.
    pub fn ops(&self) -> u64 {
        self.writes_done.load(Ordering::Relaxed) + self.reads_done.load(Ordering::Relaxed)
    }
}

const RYW_STREAM: u64 = 3;

/// How long after the end of the run an op that came due before the end may still start.
pub const END_GRACE: Duration = Duration::from_millis(250);
/// How often a read-your-writes probe looks again: every millisecond at first, then every
/// 1/50 of the time waited so far (so the time it took is known within 2 %), at most every
/// 20 ms: a read side a second behind is not asked a thousand times a second per probe.
const RYW_POLL: Duration = Duration::from_millis(1);
const RYW_POLL_MAX: Duration = Duration::from_millis(20);
/// The most read-your-writes probes waiting at once: a probe waits out its think times off
/// the write lane, and a long think time at a high write rate must not pile up tasks without
/// bound. A write that finds every slot taken is not probed (counted as `ryw.skipped`).
const RYW_MAX_IN_FLIGHT: usize = 512;

fn ryw_poll_after(waited: Duration) -> Duration {
    (waited / 50).clamp(RYW_POLL, RYW_POLL_MAX)
}

/// When op `i` of a lane at `rate` ops/s is due.
fn due_at(start: Instant, i: u64, rate: f64) -> Instant {
    // Capped at ~31 years so a vanishing rate cannot overflow a Duration: every such op is
    // due long after any run's end.
    start + Duration::from_secs_f64((i as f64 / rate).min(1e9))
}

/// How many ops of a lane at `rate` come due before `duration` has passed: the first `i` with
/// `due_at(i) >= end`, found with the same arithmetic the workers use.
fn due_before_end(start: Instant, duration: Duration, rate: f64) -> u64 {
    let end = start + duration;
    let estimate = duration.as_secs_f64() * rate;
    if estimate >= u64::MAX as f64 / 2.0 {
        return u64::MAX;
    }
    let mut n = estimate.floor() as u64;
    while n > 0 && due_at(start, n - 1, rate) >= end {
        n -= 1;
    }
    while due_at(start, n, rate) < end {
        n += 1;
    }
    n
}

/// [`drive`], and what the tool's threads spent on it: returns when the load ended and the CPU
/// of the tool's threads per op in between.
pub async fn drive_measured<T: Target>(
    target: Arc<T>,
    stream: Arc<T::Ops>,
    cfg: DriverConfig,
    start: Instant,
    recorder: Arc<Mutex<Recorder>>,
    progress: Arc<Progress>,
) -> (Instant, Option<DriverCpu>) {
    let before = CpuSnapshot::take();
    let end = drive(target, stream, cfg, start, recorder, progress.clone()).await;
    (end, before.until(&CpuSnapshot::take(), progress.ops()))
}

/// Drives `target` with the op stream until the configured duration has passed, recording
/// into `recorder`. Returns when every worker has finished its last op and every
/// read-your-writes probe its last look, with the end of the load: the scheduled end, or the
/// moment the workers finished if later (or if the load was stopped); probes still waiting do
/// not stretch it.
pub async fn drive<T: Target>(
    target: Arc<T>,
    stream: Arc<T::Ops>,
    cfg: DriverConfig,
    start: Instant,
    recorder: Arc<Mutex<Recorder>>,
    progress: Arc<Progress>,
) -> Instant {
    let end = start + cfg.duration;
    // Without its thread the pacer cannot be precise; the run would still be correct, so a
    // machine that refuses a thread gets the runtime's own timer rather than no run.
    let pacer = Pacer::shared();
    let mut tasks = Vec::new();
    let mut lanes = Vec::new();
    let probes = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
    let probe_slots = Arc::new(tokio::sync::Semaphore::new(RYW_MAX_IN_FLIGHT));
    let think_times: Arc<[Duration]> = if cfg.ryw_think_times.is_empty() {
        Arc::new([Duration::ZERO])
    } else {
        cfg.ryw_think_times.clone().into()
    };
    for (is_write, lane) in [(true, cfg.writes), (false, cfg.reads)] {
        if !lane.active() {
            continue;
        }
        let next = Arc::new(AtomicU64::new(0));
        let started = Arc::new(AtomicU64::new(0));
        lanes.push((is_write, lane, started.clone()));
        for _ in 0..lane.workers {
            let worker = Worker {
                target: target.clone(),
                stream: stream.clone(),
                recorder: recorder.clone(),
                progress: progress.clone(),
                next: next.clone(),
                started: started.clone(),
                pacer,
                lane,
                is_write,
                start,
                end,
                ryw_share: cfg.ryw_share,
                ryw_timeout: cfg.ryw_timeout,
                ryw_think_times: think_times.clone(),
                seed: cfg.seed,
                segment: cfg.segment,
                probes: probes.clone(),
                probe_slots: probe_slots.clone(),
            };
            tasks.push(tokio::spawn(worker.run()));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let workers_done = Instant::now();
    // Probes still waiting for their write (each ends by its timeout at the latest).
    let mut waiting = std::mem::take(&mut *probes.lock().expect("probes lock"));
    while waiting.join_next().await.is_some() {}
    // A load stopped early was due only until it stopped.
    let ran_for = if progress.is_stopped() {
        workers_done
            .saturating_duration_since(start)
            .min(cfg.duration)
    } else {
        cfg.duration
    };
    let mut rec = recorder.lock().expect("recorder lock");
    for (is_write, lane, started) in lanes {
        if let Pace::PerSecond(rate) = lane.pace {
            let due = cfg.segment.share_of(due_before_end(start, ran_for, rate));
            rec.record_unstarted(
                is_write,
                due.saturating_sub(started.load(Ordering::Relaxed)),
            );
        }
    }
    // A load that ran its course covers its whole schedule, even when the last worker
    // returned before the end because its next op was due after it (at a low rate, up to one
    // op's interval early): the window measured is the one asked for.
    if progress.is_stopped() {
        workers_done
    } else {
        workers_done.max(end)
    }
}

enum Op<W, R> {
    Write(W),
    Read(R),
}

/// When an op was due, when its worker was free for it, and when it started.
#[derive(Clone, Copy)]
struct Timing {
    intended: Instant,
    ready: Instant,
    started: Instant,
    /// Open loop: the op had a due time of its own (closed-loop ops are due when started).
    scheduled: bool,
}

struct Worker<T: Target> {
    target: Arc<T>,
    stream: Arc<T::Ops>,
    recorder: Arc<Mutex<Recorder>>,
    progress: Arc<Progress>,
    next: Arc<AtomicU64>,
    /// Ops of this lane that started.
    started: Arc<AtomicU64>,
    pacer: Option<&'static Pacer>,
    lane: Lane,
    is_write: bool,
    start: Instant,
    end: Instant,
    ryw_share: f64,
    ryw_timeout: Duration,
    ryw_think_times: Arc<[Duration]>,
    seed: u64,
    segment: Segment,
    /// Read-your-writes probes polling off the lane (see `probe`).
    probes: Arc<Mutex<tokio::task::JoinSet<()>>>,
    /// Room for more probes (at most `RYW_MAX_IN_FLIGHT` at once).
    probe_slots: Arc<tokio::sync::Semaphore>,
}

impl<T: Target> Worker<T> {
    async fn run(self) {
        let mut session = self.target.session(self.is_write);
        let last_start = self.end + END_GRACE;
        loop {
            // This process's ops are every `count`-th of the stream, each keeping its due time
            // in the full-rate schedule.
            let i = self
                .segment
                .global(self.next.fetch_add(1, Ordering::Relaxed));
            let claimed = Instant::now();
            let intended = match self.lane.pace {
                Pace::PerSecond(rate) => due_at(self.start, i, rate),
                Pace::Max => claimed,
            };
            if intended >= self.end || claimed >= last_start || self.progress.is_stopped() {
                return;
            }
            // Prepared before the wait, so building it is not part of the op's time.
            let op = if self.is_write {
                self.stream.write_op(i).map(Op::Write)
            } else {
                self.stream.read_op(i).map(Op::Read)
            };
            if intended > claimed {
                self.sleep_until(intended).await;
            }
            let started = Instant::now();
            if started >= last_start || self.progress.is_stopped() {
                return;
            }
            self.started.fetch_add(1, Ordering::Relaxed);
            // The worker was free for this op from whichever came later: its due time or the
            // moment the worker claimed it (having finished its previous op).
            let ready = intended.max(claimed);
            let timing = Timing {
                intended,
                ready,
                started,
                scheduled: matches!(self.lane.pace, Pace::PerSecond(_)),
            };
            match op {
                Some(Op::Write(cmd)) => self.write(&mut session, i, &cmd, timing).await,
                Some(Op::Read(q)) => self.read(&mut session, &q, timing).await,
                None => {}
            }
        }
    }

    async fn sleep_until(&self, at: Instant) {
        match self.pacer {
            Some(p) => p.sleep_until(at).await,
            None => tokio::time::sleep_until(at.into()).await,
        }
    }

    fn record(&self, key: crate::metrics::OpKey, t: Timing, outcome: Outcome) {
        let finished = Instant::now();
        let mut rec = self.recorder.lock().expect("recorder lock");
        if t.scheduled {
            rec.record_start(t.intended, t.ready, t.started);
        }
        rec.record_op(key, t.intended, t.started, finished, outcome);
    }

    async fn write(&self, session: &mut T::Session, i: u64, cmd: &WriteOf<T>, t: Timing) {
        let key = T::Ops::write_key(cmd);
        let result = self.target.execute(session, cmd).await;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(ExecError::Domain(e)) => Outcome::Rejected(e.label()),
            Err(ExecError::Db(_)) => Outcome::Error("db_error"),
            Err(ExecError::GaveUp { .. }) => Outcome::Error("gave_up"),
        };
        self.record(key, t, outcome);
        self.progress.writes_done.fetch_add(1, Ordering::Relaxed);
        if let Ok(receipt) = result {
            let mut rng = Rng::derive(self.seed, RYW_STREAM, i);
            if self.ryw_share > 0.0 && rng.chance(self.ryw_share) {
                self.probe(&receipt);
            }
        }
    }

    /// Looks for the write once it has been committed for each think time; if the first
    /// look missed, polls until the write is visible (or the timeout after the last look
    /// passes) and records how long after the commit that was. The probe runs in a task of
    /// its own, on a session of its own, holding no connection while it waits: a worker of
    /// the write lane waiting out a user's pause, or for a read side that lags by a second,
    /// or for a standby that is down, would start its next writes late.
    fn probe(&self, receipt: &Receipt) {
        let Ok(slot) = self.probe_slots.clone().try_acquire_owned() else {
            self.recorder
                .lock()
                .expect("recorder lock")
                .record_ryw_skipped(receipt.committed_at.unwrap_or_else(Instant::now));
            return;
        };
        let target = self.target.clone();
        let recorder = self.recorder.clone();
        let pacer = self.pacer;
        let receipt = receipt.clone();
        let timeout = self.ryw_timeout;
        let think_times = self.ryw_think_times.clone();
        let probe = async move {
            let _slot = slot;
            let committed = receipt.committed_at.unwrap_or_else(Instant::now);
            let mut session = target.probe_session();
            let sleep_until = |at: Instant| async move {
                match pacer {
                    Some(p) => p.sleep_until(at).await,
                    None => tokio::time::sleep_until(at.into()).await,
                }
            };
            let last = think_times.last().copied().unwrap_or_default();
            let deadline = committed + last + timeout;
            let mut looks: Vec<RywLook> = Vec::with_capacity(think_times.len());
            // Set once the first look missed: from then on the probe also polls between looks,
            // to time when the write became visible.
            let mut polling_since: Option<Instant> = None;
            let mut seen = None;
            loop {
                let look_due = think_times.get(looks.len()).map(|t| committed + *t);
                let poll_due =
                    polling_since.map(|since| Instant::now() + ryw_poll_after(since.elapsed()));
                let next = match (look_due, poll_due) {
                    (Some(l), Some(p)) => l.min(p),
                    (Some(l), None) => l,
                    (None, Some(p)) if p < deadline => p,
                    _ => break,
                };
                if next > Instant::now() {
                    sleep_until(next).await;
                }
                let visible = match target.is_visible(&mut session, &receipt).await {
                    Ok(v) => v,
                    // The read side could not be asked (a standby down): no probe to count.
                    Err(_) if looks.is_empty() => return,
                    Err(_) => false,
                };
                let now = Instant::now();
                if visible && polling_since.is_some() {
                    seen = Some(now.saturating_duration_since(committed));
                }
                if look_due.is_some_and(|due| due <= now) {
                    looks.push(RywLook {
                        think: think_times[looks.len()],
                        visible,
                    });
                    if looks.len() == 1 && !visible {
                        polling_since = Some(now);
                    }
                }
                if visible {
                    // A read side never goes back: every later look would see it too.
                    looks.extend(think_times[looks.len()..].iter().map(|&think| RywLook {
                        think,
                        visible: true,
                    }));
                    break;
                }
            }
            recorder
                .lock()
                .expect("recorder lock")
                .record_ryw_looks(committed, &looks, seen);
        };
        let mut probes = self.probes.lock().expect("probes lock");
        // Finished probes are reaped as new ones start, so the set stays small.
        while probes.try_join_next().is_some() {}
        probes.spawn(probe);
    }

    async fn read(&self, session: &mut T::Session, q: &ReadOf<T>, t: Timing) {
        let key = T::Ops::read_key(q);
        let outcome = match self.target.query(session, q).await {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Error("db_error"),
        };
        self.record(key, t, outcome);
        self.progress.reads_done.fetch_add(1, Ordering::Relaxed);
    }
}
