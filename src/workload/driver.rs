//! The driver: one loop for every mode. Each lane (writes, reads) has `workers` tasks that
//! take the next op index from a shared counter. In open loop, op *i* is due at
//! `start + i / rate`; a worker sleeps until then, and latency is measured from that intended
//! start, so a stalled database shows up as latency rather than as fewer samples (no
//! coordinated omission). Service time from the actual start is kept beside it. In closed loop
//! (`rate = "max"`) an op is due the moment a worker is free, so both times coincide.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{Backend, ExecError, Receipt, Session};
use crate::domain::{Command, Query, QueryAnswer};
use crate::metrics::{OpKey, Outcome, Recorder};
use crate::workload::mix::OpStream;
use crate::workload::rng::Rng;

/// What the driver talks to. `Backend` implements it; tests wrap it to inject faults. Each
/// worker opens one session and runs all its ops in it.
pub trait Target: Send + Sync + 'static {
    type Session: Send;
    fn session(&self) -> Self::Session;
    fn execute(
        &self,
        s: &mut Self::Session,
        cmd: &Command,
    ) -> impl Future<Output = Result<Receipt, ExecError>> + Send;
    fn query(
        &self,
        s: &mut Self::Session,
        q: &Query,
    ) -> impl Future<Output = Result<QueryAnswer, sqlx::Error>> + Send;
    /// Whether the effect of a committed write is visible to readers yet.
    fn is_visible(
        &self,
        s: &mut Self::Session,
        r: &Receipt,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
}

impl Target for Backend {
    type Session = Session;
    fn session(&self) -> Session {
        Backend::session(self)
    }
    fn execute(
        &self,
        s: &mut Session,
        cmd: &Command,
    ) -> impl Future<Output = Result<Receipt, ExecError>> + Send {
        Backend::execute_in(self, s, cmd)
    }
    fn query(
        &self,
        s: &mut Session,
        q: &Query,
    ) -> impl Future<Output = Result<QueryAnswer, sqlx::Error>> + Send {
        Backend::query_in(self, s, q)
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
    /// How long a probe waits for a write to become visible before calling it never seen.
    pub ryw_timeout: Duration,
    pub seed: u64,
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub writes_done: AtomicU64,
    pub reads_done: AtomicU64,
}

const RYW_STREAM: u64 = 3;

/// Drives `target` with the op stream until the configured duration has passed, recording
/// into `recorder`. Returns when every worker has finished its last op.
pub async fn drive<T: Target>(
    target: Arc<T>,
    stream: Arc<OpStream>,
    cfg: DriverConfig,
    start: Instant,
    recorder: Arc<Mutex<Recorder>>,
    progress: Arc<Progress>,
) {
    let end = start + cfg.duration;
    let mut tasks = Vec::new();
    for (is_write, lane) in [(true, cfg.writes), (false, cfg.reads)] {
        if !lane.active() {
            continue;
        }
        let next = Arc::new(AtomicU64::new(0));
        for _ in 0..lane.workers {
            let worker = Worker {
                target: target.clone(),
                stream: stream.clone(),
                recorder: recorder.clone(),
                progress: progress.clone(),
                next: next.clone(),
                lane,
                is_write,
                start,
                end,
                ryw_share: cfg.ryw_share,
                ryw_timeout: cfg.ryw_timeout,
                seed: cfg.seed,
            };
            tasks.push(tokio::spawn(worker.run()));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

struct Worker<T> {
    target: Arc<T>,
    stream: Arc<OpStream>,
    recorder: Arc<Mutex<Recorder>>,
    progress: Arc<Progress>,
    next: Arc<AtomicU64>,
    lane: Lane,
    is_write: bool,
    start: Instant,
    end: Instant,
    ryw_share: f64,
    ryw_timeout: Duration,
    seed: u64,
}

impl<T: Target> Worker<T> {
    async fn run(self) {
        let mut session = self.target.session();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let intended = match self.lane.pace {
                Pace::PerSecond(rate) => self.start + Duration::from_secs_f64(i as f64 / rate),
                Pace::Max => Instant::now(),
            };
            if intended >= self.end {
                return;
            }
            tokio::time::sleep_until(intended.into()).await;
            let started = Instant::now();
            let lateness = started.saturating_duration_since(intended);
            if self.is_write {
                self.write(&mut session, i, intended, started, lateness)
                    .await;
            } else {
                self.read(&mut session, i, intended, started, lateness)
                    .await;
            }
        }
    }

    fn record(
        &self,
        key: OpKey,
        intended: Instant,
        started: Instant,
        lateness: Duration,
        outcome: Outcome,
    ) {
        let finished = Instant::now();
        let mut rec = self.recorder.lock().expect("recorder lock");
        rec.record_lateness(intended, lateness);
        rec.record_op(key, intended, started, finished, outcome);
    }

    async fn write(
        &self,
        session: &mut T::Session,
        i: u64,
        intended: Instant,
        started: Instant,
        lateness: Duration,
    ) {
        let Some(cmd) = self.stream.write_op(i) else {
            return;
        };
        let key = OpKey::Write(cmd.kind());
        let result = self.target.execute(session, &cmd).await;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(ExecError::Domain(e)) => Outcome::Rejected(e.label()),
            Err(ExecError::Db(_)) => Outcome::Error("db_error"),
        };
        self.record(key, intended, started, lateness, outcome);
        self.progress.writes_done.fetch_add(1, Ordering::Relaxed);
        if let Ok(receipt) = result {
            let mut rng = Rng::derive(self.seed, RYW_STREAM, i);
            if self.ryw_share > 0.0 && rng.chance(self.ryw_share) {
                self.probe(session, &receipt).await;
            }
        }
    }

    /// Reads right after the write returned; if the write is not visible yet, polls until it
    /// is (or the timeout passes) and records how long that took.
    async fn probe(&self, session: &mut T::Session, receipt: &Receipt) {
        let committed = receipt.committed_at.unwrap_or_else(Instant::now);
        let at = Instant::now();
        match self.target.is_visible(session, receipt).await {
            Ok(true) => {
                self.recorder.lock().expect("recorder lock").record_ryw(
                    at,
                    true,
                    Some(Duration::ZERO),
                );
            }
            Ok(false) => {
                let deadline = at + self.ryw_timeout;
                let mut seen = None;
                while Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    if let Ok(true) = self.target.is_visible(session, receipt).await {
                        seen = Some(Instant::now().saturating_duration_since(committed));
                        break;
                    }
                }
                self.recorder
                    .lock()
                    .expect("recorder lock")
                    .record_ryw(at, false, seen);
            }
            Err(_) => {}
        }
    }

    async fn read(
        &self,
        session: &mut T::Session,
        j: u64,
        intended: Instant,
        started: Instant,
        lateness: Duration,
    ) {
        let Some(q) = self.stream.read_op(j) else {
            return;
        };
        let key = OpKey::Read(q.kind());
        let outcome = match self.target.query(session, &q).await {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Error("db_error"),
        };
        self.record(key, intended, started, lateness, outcome);
        self.progress.reads_done.fetch_add(1, Ordering::Relaxed);
    }
}
