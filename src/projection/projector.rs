//! The asynchronous projector: reads the event log in batches and applies them to the read
//! models, storing each read model's checkpoint in the same transaction as the rows it changed
//! (exactly-once effect: a crash loses the whole batch or none of it).
//!
//! It reads through an `EventSource` (where events come from, and what a position is) and
//! writes through a `ReadStore` (where read models live, and how a batch commits with its
//! checkpoints); today's outbox and same-database store are the defaults.
//!
//! It wakes on an in-process signal and on the source's wake-ups (so a projector in another
//! process wakes too), and polls on a timer in case a wake-up is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Notify};

pub use super::error::ProjectorError;
use super::event_source::{Delivery, EventLog, EventSource, Fetched, Position};
use super::read_store::{ReadStore, SameDatabase};
use super::sql::Delivered;
use super::ProjectionName;
use crate::db::Db;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which projector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProjectorMode {
    /// Checkpoint in the read-model transaction, guarded handlers, horizon-safe reads.
    #[default]
    ExactlyOnce,
    /// The negative control: unguarded handlers, `seq > checkpoint` tailing, checkpoint saved
    /// in its own transaction after applying.
    Naive,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectorConfig {
    pub batch_size: i64,
    pub poll_interval: Duration,
    pub mode: ProjectorMode,
    /// Fault injection: share of events delivered a second time (with the next batch). The
    /// guarded projector must absorb it; the naive one shows the damage.
    #[serde(default)]
    pub redeliver: f64,
    /// Fault drills: keep each batch's transaction open this long before committing, so a
    /// `kill -9` lands mid-batch. Zero in normal runs.
    #[serde(default)]
    pub hold_before_commit: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            batch_size: 500,
            poll_interval: Duration::from_millis(50),
            mode: ProjectorMode::ExactlyOnce,
            redeliver: 0.0,
            hold_before_commit: Duration::ZERO,
        }
    }
}

/// Counters the projector keeps while it runs.
#[derive(Debug, Default)]
pub struct ProjectorStats {
    pub batches: AtomicU64,
    pub events: AtomicU64,
    pub duplicates: AtomicU64,
    pub errors: AtomicU64,
    /// Events delivered a second time by fault injection.
    pub redelivered: AtomicU64,
    /// Idle polls that found committed events waiting behind an open transaction (PostgreSQL):
    /// lag caused by a pinned horizon, not loss.
    pub horizon_waits: AtomicU64,
}

/// Measures projection lag: from the writer's observed commit of an event to the projector's
/// observed commit of the batch that applied it. Lags go out on a channel to whoever records
/// them; entries are removed as soon as both ends are known, so memory is bounded by events in
/// flight.
#[derive(Debug)]
pub struct LagTracker {
    inner: Mutex<LagMaps>,
    sink: mpsc::UnboundedSender<LagSample>,
}

#[derive(Debug, Default)]
struct LagMaps {
    committed: HashMap<i64, Instant>,
    applied_first: HashMap<i64, Instant>,
}

/// One measured lag, stamped with when the projector applied it.
#[derive(Debug, Clone, Copy)]
pub struct LagSample {
    pub applied_at: Instant,
    pub lag: Duration,
}

impl LagTracker {
    pub fn new() -> (Arc<LagTracker>, mpsc::UnboundedReceiver<LagSample>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(LagTracker {
                inner: Mutex::new(LagMaps::default()),
                sink: tx,
            }),
            rx,
        )
    }

    /// The writer saw its commit of `seqs` at `at`.
    pub fn committed(&self, seqs: &[i64], at: Instant) {
        self.meet(seqs, at, true);
    }

    /// The projector saw its commit of a batch holding `seqs` at `at`.
    pub fn applied(&self, seqs: &[i64], at: Instant) {
        self.meet(seqs, at, false);
    }

    /// Pairs each seq with the other side's observation, or waits for it. When the
    /// projector's commit is seen first, the lag rounds to zero.
    fn meet(&self, seqs: &[i64], at: Instant, writer: bool) {
        let mut guard = self.inner.lock().expect("lag tracker lock");
        let LagMaps {
            committed,
            applied_first,
        } = &mut *guard;
        let (mine, theirs) = if writer {
            (committed, applied_first)
        } else {
            (applied_first, committed)
        };
        for &s in seqs {
            match theirs.remove(&s) {
                Some(other) => {
                    let (commit, applied) = if writer { (at, other) } else { (other, at) };
                    let _ = self.sink.send(LagSample {
                        applied_at: applied,
                        lag: applied.saturating_duration_since(commit),
                    });
                }
                None => {
                    mine.insert(s, at);
                }
            }
        }
    }

    /// A write committed at `committed` became visible to readers at `visible`, measured by
    /// a read side without positions (a refreshed view).
    pub fn observed(&self, committed: Instant, visible: Instant) {
        let _ = self.sink.send(LagSample {
            applied_at: visible,
            lag: visible.saturating_duration_since(committed),
        });
    }

    /// Forgets events applied before any writer of this process registered them (seed
    /// events, other processes' events), so the map does not grow.
    pub fn forget_unmatched(&self) {
        let mut m = self.inner.lock().expect("lag tracker lock");
        m.applied_first.clear();
    }
}

/// The projector over event source `S` and read store `R` (by default the outbox and the
/// read tables of the same database).
pub struct Projector<S = EventLog, R = SameDatabase> {
    source: S,
    store: R,
    config: ProjectorConfig,
    projections: Vec<ProjectionName>,
    pub stats: Arc<ProjectorStats>,
    /// Told of every committed batch (the run's lag, and a broker's lag in parts).
    lag: Vec<Arc<LagTracker>>,
    redelivery: Mutex<Vec<Fetched>>,
    rng: Mutex<ChaCha8Rng>,
}

impl Projector {
    /// The projector of a database's outbox into its own read tables.
    pub fn new(db: Db, config: ProjectorConfig) -> Self {
        Projector::over(EventLog::outbox(db.clone()), SameDatabase::new(db), config)
    }
}

impl<S: EventSource, R: ReadStore> Projector<S, R> {
    /// A projector reading `source` into `store`.
    pub fn over(source: S, store: R, config: ProjectorConfig) -> Self {
        Projector {
            source,
            store,
            config,
            projections: ProjectionName::ALL.to_vec(),
            stats: Arc::new(ProjectorStats::default()),
            lag: Vec::new(),
            redelivery: Mutex::new(Vec::new()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(0x5EED_DE11)),
        }
    }

    pub fn with_lag(mut self, lag: Arc<LagTracker>) -> Self {
        self.lag.push(lag);
        self
    }

    /// Restricts the projector to some read models (a rebuild of one leaves the others alone).
    pub fn with_projections(mut self, projections: &[ProjectionName]) -> Self {
        self.projections = projections.to_vec();
        self
    }

    /// Where it writes.
    pub fn store(&self) -> &R {
        &self.store
    }

    /// Where reading resumes: the oldest checkpoint among this projector's read models.
    fn oldest(&self, checkpoints: &HashMap<ProjectionName, Position>) -> Position {
        self.projections
            .iter()
            .map(|p| checkpoints.get(p).copied().unwrap_or_default())
            .min()
            .unwrap_or_default()
    }

    pub fn config(&self) -> &ProjectorConfig {
        &self.config
    }

    /// How this projector's mode reads the source.
    fn delivery(&self) -> Delivery {
        match self.config.mode {
            ProjectorMode::ExactlyOnce => Delivery::Safe,
            // Tails seq alone, ignoring the transaction horizon.
            ProjectorMode::Naive => Delivery::Tail,
        }
    }

    /// Applies at most one batch. Returns how many events it delivered.
    pub async fn step(&self) -> Result<usize, ProjectorError> {
        match self.config.mode {
            ProjectorMode::ExactlyOnce => self.step_exactly_once().await,
            ProjectorMode::Naive => self.step_naive().await,
        }
    }

    /// Reads a batch after the oldest checkpoint, then has the store apply it with the
    /// checkpoints in one atomic unit. The store locks the checkpoints before applying, which
    /// serializes projectors of the same read models; one that moved on meanwhile only skips
    /// what it already has.
    async fn step_exactly_once(&self) -> Result<usize, ProjectorError> {
        let from = self.oldest(&self.store.checkpoints().await?);
        let batch = self
            .source
            .fetch(from, self.config.batch_size, Delivery::Safe)
            .await?;
        let redelivered = std::mem::take(&mut *self.redelivery.lock().expect("redelivery lock"));
        if batch.is_empty() && redelivered.is_empty() {
            if self.source.held_back(from).await? {
                self.stats.horizon_waits.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(0);
        }
        let duplicates = self
            .store
            .apply(
                &self.projections,
                from,
                &batch,
                &redelivered,
                self.config.hold_before_commit,
            )
            .await?;
        let committed_at = Instant::now();
        self.after_commit(&batch, duplicates, committed_at).await?;
        Ok(batch.len() + redelivered.len())
    }

    /// Applies the log from the checkpoints to its end as fast as the store allows, for
    /// rebuilds: the next batch is read while the current one is applied, and where the store
    /// commits read models side by side each batch goes to them concurrently, one transaction
    /// each, so the server's cores share the work. The live projector keeps `step`: one
    /// transaction per batch for every read model, so lag is one commit. Returns the events
    /// applied.
    pub async fn replay_log(&self) -> Result<u64, ProjectorError> {
        let mut from = self.oldest(&self.store.checkpoints().await?);
        let mut batch = self.read_batch(from).await?;
        let mut total = 0;
        while let Some(last) = batch.last().map(|f| f.pos) {
            let (applied, next) =
                tokio::join!(self.apply_each(from, &batch), self.read_batch(last));
            self.after_commit(&batch, applied?, Instant::now()).await?;
            total += batch.len() as u64;
            (from, batch) = (last, next?);
        }
        Ok(total)
    }

    async fn read_batch(&self, from: Position) -> Result<Vec<Fetched>, ProjectorError> {
        self.source
            .fetch(from, self.config.batch_size, Delivery::Safe)
            .await
    }

    /// Applies `batch` (read from `from`) to every read model: one atomic unit per read model,
    /// all at once, where the store allows it, else one for all. Returns the duplicates.
    async fn apply_each(&self, from: Position, batch: &[Fetched]) -> Result<u64, ProjectorError> {
        let groups: Vec<Vec<ProjectionName>> = if self.store.parallel_read_models() {
            self.projections.iter().map(|&p| vec![p]).collect()
        } else {
            vec![self.projections.clone()]
        };
        let duplicates = futures::future::try_join_all(
            groups
                .iter()
                .map(|group| self.store.apply(group, from, batch, &[], Duration::ZERO)),
        )
        .await?;
        Ok(duplicates.iter().sum())
    }

    async fn step_naive(&self) -> Result<usize, ProjectorError> {
        let checkpoints = self.store.checkpoints().await?;
        let from = checkpoints
            .get(&ProjectionName::ProductCatalog)
            .copied()
            .unwrap_or_default();
        let batch = self
            .source
            .fetch(from.by_seq(), self.config.batch_size, Delivery::Tail)
            .await?;
        let redelivered = std::mem::take(&mut *self.redelivery.lock().expect("redelivery lock"));
        if batch.is_empty() && redelivered.is_empty() {
            return Ok(0);
        }
        let last = batch.last().map(|f| f.pos).unwrap_or(from);
        let mut due: Vec<&Delivered> = Vec::with_capacity(batch.len() + redelivered.len());
        for f in redelivered.iter().chain(batch.iter()) {
            match f.delivered() {
                Some(d) => due.push(d),
                None => {
                    return Err(ProjectorError::Payload {
                        seq: f.seq,
                        message: f.event.clone().err().unwrap_or_default(),
                    })
                }
            }
        }
        self.store
            .apply_naive(
                &self.projections,
                &due,
                from.by_seq_through(last),
                batch.len() as i64,
            )
            .await?;
        self.after_commit(&batch, 0, Instant::now()).await?;
        Ok(batch.len() + redelivered.len())
    }

    /// After a batch committed at `at`: counters, lag, the source's acknowledgement, and the
    /// fault injection's redelivery.
    async fn after_commit(
        &self,
        batch: &[Fetched],
        duplicates: u64,
        at: Instant,
    ) -> Result<(), ProjectorError> {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .events
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.stats
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        if !self.lag.is_empty() {
            let seqs: Vec<i64> = batch.iter().map(|f| f.seq).collect();
            for lag in &self.lag {
                lag.applied(&seqs, at);
            }
        }
        if let Some(last) = batch.last() {
            self.source.ack(last.pos).await?;
        }
        // Fault injection: deliver a share of this batch again with the next one.
        if self.config.redeliver > 0.0 {
            let again: Vec<Fetched> = {
                let mut rng = self.rng.lock().expect("rng lock");
                batch
                    .iter()
                    .filter(|_| rng.gen_bool(self.config.redeliver.clamp(0.0, 1.0)))
                    .cloned()
                    .collect()
            };
            self.stats
                .redelivered
                .fetch_add(again.len() as u64, Ordering::Relaxed);
            self.redelivery
                .lock()
                .expect("redelivery lock")
                .extend(again);
        }
        Ok(())
    }

    /// Events not yet applied to every read model (committed ones only).
    pub async fn backlog(&self) -> Result<i64, ProjectorError> {
        let from = self.oldest(&self.store.checkpoints().await?);
        self.source.backlog(from, self.delivery()).await
    }

    /// Applies batches until the log holds nothing more for this projector.
    pub async fn catch_up(&self) -> Result<u64, ProjectorError> {
        let mut total = 0;
        loop {
            let n = self.step().await?;
            total += n as u64;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs until `shutdown` turns true: applies batches while there are events, otherwise
    /// waits for a wake-up or the poll timer. Database errors are counted and retried with
    /// back-off; the projector never stops on them.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let listener = self.source.wake_ups(wake.clone(), shutdown.clone());
        let this = &*self;
        crate::projection::step_loop::run_steps(
            || this.step(),
            &wake,
            &mut shutdown,
            this.config.poll_interval,
            &this.stats.errors,
        )
        .await;
        if let Some(h) = listener {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_pairs_writer_and_projector_commits() {
        let (tracker, mut rx) = LagTracker::new();
        let t0 = Instant::now();
        tracker.committed(&[1, 2], t0);
        tracker.applied(&[1], t0 + Duration::from_millis(30));
        let s = rx.try_recv().expect("a lag for seq 1");
        assert_eq!(s.lag, Duration::from_millis(30));
        // The projector's commit came back before the writer's: zero, not negative.
        tracker.applied(&[3], t0);
        tracker.committed(&[3], t0 + Duration::from_millis(5));
        assert_eq!(rx.try_recv().expect("a lag for seq 3").lag, Duration::ZERO);
        // Seq 2 is still in flight: nothing more.
        assert!(rx.try_recv().is_err());
    }
}
