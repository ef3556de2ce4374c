//! `replica` (PostgreSQL): what "scale reads independently" means without CQRS. Writes go to
//! the primary, the normalized join queries to a hot standby fed by streaming replication
//! (`--replica-db`). The write path is the normalized one and nothing else.
//!
//! **Replication lag is lag.** A poller reads the primary's WAL flush position and then the
//! standby's replay position, about once a millisecond. A write committed before a primary
//! read is in the WAL below that position; once the standby has replayed past it, the write
//! is visible there, and its lag is the time from its commit to that moment, so the figure
//! errs high by at most one poll (the same bound as a projector's poll). Read-your-writes
//! probes ask the standby itself for the written row.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::{AnyConnection, PgConnection};
use tokio::sync::watch;

use super::entry::{Entry, PackMode, PackSupport, Role, VerifiedAgainst};
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions, Receipt, Session, Written};
use crate::db::state::Provisions;
use crate::db::{Db, Engine};
use crate::domain::Event;
use crate::projection::projector::{LagTracker, ProjectorError};

pub const KIND: BackendKind = BackendKind::new("replica");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "replica",
    help: "writes to the primary, normalized join queries to a hot standby (--replica-db, PostgreSQL)",
    provisions: Provisions::WRITE_MODEL,
    verified_against: VerifiedAgainst::Nothing,
    write_also: "none: the standby replays the primary's WAL",
    read_side_lags: true,
    requires: Some(Engine::Postgres),
    in_default_set: false,
    lag_name: "replication lag",
    operations: "a primary and a hot standby with streaming replication: a second server to run, watch and fail over, and an application that sends each query to the right one",
    alternative_to_cqrs: Some("a read replica"),
    needs_replica: true,
    needs_broker: false,
    measured_against: None,
    separate_read_store: false,
    role: Role::Alternative,
    simplicity: 3,
    pack: PackSupport::Runs(PackMode::Standby),
    open,
};

/// How often the poller compares the primary's WAL position with the standby's.
const POLL: Duration = Duration::from_millis(1);
/// How long the poller waits before reconnecting after an error (a standby restarting).
const RECONNECT: Duration = Duration::from_millis(100);

/// A committed write, and the primary's WAL position it is known to lie below.
struct Pending {
    committed: Instant,
    below: Option<i64>,
}

struct Replication {
    /// In commit order.
    pending: Mutex<VecDeque<Pending>>,
    /// The latest commit seen replayed: every write that returned from its commit before
    /// then is on the standby (it lies below the same WAL position, read after it).
    shows_until: Mutex<Option<Instant>>,
}

/// Watches a standby replay a primary's writes: told of each commit, it polls both servers'
/// WAL positions (when `run`), tells the lag tracker when each write reached the standby, and
/// answers whether one has and when all have. The shop's `replica` and a pack's on the same
/// backend (`pack::backend`) keep their writes' replication this way.
pub struct ReplayWatcher {
    replication: Arc<Replication>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ReplayWatcher {
    pub fn start(primary: &Db, standby: &Db, lag: Option<Arc<LagTracker>>, run: bool) -> Self {
        let replication = Arc::new(Replication {
            pending: Mutex::new(VecDeque::new()),
            shows_until: Mutex::new(None),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = run.then(|| {
            tokio::spawn(poll_replay(
                replication.clone(),
                primary.clone(),
                standby.clone(),
                lag,
                shutdown_rx,
            ))
        });
        ReplayWatcher {
            replication,
            shutdown,
            task,
        }
    }

    /// A write whose commit returned at `at`.
    pub fn committed(&self, at: Instant) {
        self.replication
            .pending
            .lock()
            .expect("replication lock")
            .push_back(Pending {
                committed: at,
                below: None,
            });
    }

    /// Whether the write whose commit returned at `committed` has been seen replayed on the
    /// standby (by the poller, so at most one poll late).
    pub fn shows(&self, committed: Instant) -> bool {
        self.replication
            .shows_until
            .lock()
            .expect("replication lock")
            .is_some_and(|s| s >= committed)
    }

    /// Waits until the standby has replayed every committed write.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<(), ProjectorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .replication
                .pending
                .lock()
                .expect("replication lock")
                .is_empty()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProjectorError::Timeout(timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops the poller.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task {
            let _ = t.await;
        }
    }
}

fn open(db: &Db, opts: &BackendOptions) -> Box<dyn Architecture> {
    // `Backend::open` refuses to open this backend without a standby.
    let standby = opts.replica.clone().unwrap_or_else(|| db.clone());
    let watcher = ReplayWatcher::start(db, &standby, opts.lag.clone(), opts.run_projector);
    Box::new(Replica { standby, watcher })
}

/// The primary's WAL flush position, or the standby's replay position, in bytes. (A commit
/// returns once its WAL is flushed, so a write committed before the primary was asked lies
/// below its flush position; the insert position can run ahead with WAL of transactions
/// still open, which the standby sees only when it is flushed.)
async fn wal_position(conn: &mut PgConnection, standby: bool) -> Result<i64, sqlx::Error> {
    let sql = if standby {
        "SELECT CAST(pg_last_wal_replay_lsn() - '0/0'::pg_lsn AS BIGINT)"
    } else {
        "SELECT CAST(pg_current_wal_flush_lsn() - '0/0'::pg_lsn AS BIGINT)"
    };
    sqlx::query_scalar(sql).fetch_one(conn).await
}

async fn poll_replay(
    replication: Arc<Replication>,
    primary: Db,
    standby: Db,
    lag: Option<Arc<LagTracker>>,
    shutdown: watch::Receiver<bool>,
) {
    let mut conns: Option<(PgConnection, PgConnection)> = None;
    while !*shutdown.borrow() {
        if conns.is_none() {
            match (primary.pg_connection().await, standby.pg_connection().await) {
                (Ok(p), Ok(s)) => conns = Some((p, s)),
                _ => {
                    tokio::time::sleep(RECONNECT).await;
                    continue;
                }
            }
        }
        let (p, s) = conns.as_mut().expect("connected above");
        let asked = Instant::now();
        let step = async {
            let inserted = wal_position(p, false).await?;
            {
                let mut pending = replication.pending.lock().expect("replication lock");
                for w in pending.iter_mut().filter(|w| w.below.is_none()) {
                    if w.committed <= asked {
                        w.below = Some(inserted);
                    }
                }
            }
            let replayed = wal_position(s, true).await?;
            let seen = Instant::now();
            let mut pending = replication.pending.lock().expect("replication lock");
            while let Some(w) = pending.front() {
                match w.below {
                    Some(pos) if pos <= replayed => {
                        if let Some(lag) = &lag {
                            lag.observed(w.committed, seen);
                        }
                        let mut shows = replication.shows_until.lock().expect("replication lock");
                        *shows = Some(shows.map_or(w.committed, |s| s.max(w.committed)));
                        drop(shows);
                        pending.pop_front();
                    }
                    _ => break,
                }
            }
            Ok::<(), sqlx::Error>(())
        };
        match step.await {
            Ok(()) => tokio::time::sleep(POLL).await,
            Err(_) => {
                // A server went away (a standby restarting): the writes keep waiting, and
                // their lag includes the outage.
                conns = None;
                tokio::time::sleep(RECONNECT).await;
            }
        }
    }
}

pub struct Replica {
    standby: Db,
    watcher: ReplayWatcher,
}

/// The statement (and its two arguments) that finds the row a write's first event left,
/// at its version or later; all of a command's rows commit together, so one is enough.
fn visibility_check(e: &Event) -> (&'static str, i64, i64) {
    match e {
        Event::OrderPlaced { order_id, .. } => (
            "SELECT COUNT(*) FROM orders WHERE id = $1 AND version >= $2",
            *order_id,
            1,
        ),
        Event::OrderPaid {
            order_id, version, ..
        }
        | Event::OrderShipped {
            order_id, version, ..
        }
        | Event::OrderCancelled {
            order_id, version, ..
        } => (
            "SELECT COUNT(*) FROM orders WHERE id = $1 AND version >= $2",
            *order_id,
            *version,
        ),
        Event::ReviewAdded { review_id, .. } => (
            "SELECT COUNT(*) FROM reviews WHERE id = $1 AND $2 > 0",
            *review_id,
            1,
        ),
        Event::PriceChanged { change_id, .. } => (
            "SELECT COUNT(*) FROM price_history WHERE id = $1 AND $2 > 0",
            *change_id,
            1,
        ),
        Event::StockAdjusted { product, .. } => (
            "SELECT COUNT(*) FROM products WHERE id = $1 AND version >= $2",
            product.product_id,
            product.version,
        ),
        Event::ProductAdded {
            product_id, state, ..
        } => (
            "SELECT COUNT(*) FROM products WHERE id = $1 AND version >= $2",
            *product_id,
            state.version,
        ),
    }
}

async fn visible(conn: &mut AnyConnection, e: &Event) -> Result<bool, sqlx::Error> {
    let (sql, id, version) = visibility_check(e);
    let n: i64 = sqlx::query_scalar(sql)
        .bind(id)
        .bind(version)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

impl Architecture for Replica {
    fn after_commit(&self, _written: &Written, at: Instant) {
        self.watcher.committed(at);
    }

    fn read_side(&self) -> ReadSide {
        ReadSide::Normalized
    }

    fn reads_from<'a>(&'a self, _primary: &'a Db) -> &'a Db {
        &self.standby
    }

    fn is_visible<'a>(
        &'a self,
        _db: &'a Db,
        _session: &'a mut Session,
        receipt: &'a Receipt,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        // On a connection of the standby's pool, not the session's: a write lane's session
        // may hold a connection to the primary, which always sees the write.
        Box::pin(async move {
            let Some(first) = receipt.events.first() else {
                return Ok(true);
            };
            let mut conn = self.standby.read.acquire().await?;
            visible(&mut conn, first).await
        })
    }

    /// Waits until the standby has replayed every committed write.
    fn wait_caught_up(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(self.watcher.wait_caught_up(timeout))
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.watcher.shutdown())
    }
}
