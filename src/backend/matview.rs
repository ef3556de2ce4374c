//! `matview` (PostgreSQL): the read models as materialized views of their truth over the
//! normalized tables (`projection::truth`), refreshed on a schedule with
//! `REFRESH MATERIALIZED VIEW CONCURRENTLY`, so readers keep reading the old contents while a
//! refresh runs. The write path is the normalized one and nothing else; queries read the
//! views with the read models' SQL.
//!
//! **Staleness is lag.** A refresh computes its view from a snapshot taken when it starts,
//! so it shows every write committed before that moment. A write's lag runs from its commit
//! to the end of the first refresh that started after it, of every view it changes; a
//! reader sees the write (read-your-writes) once each of those views has finished such a
//! refresh. Each view has a refresher of its own, on a connection of its own (outside the
//! pool the writers use), that records how long each refresh took and what CPU the server
//! process spent on it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use sqlx::Executor;
use tokio::sync::watch;

use super::entry::{Entry, PackMode, PackSupport, Role, VerifiedAgainst};
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions, Receipt, Session, Written};
use crate::db::state::Provisions;
use crate::db::{Db, Engine};
use crate::metrics::cpu::server_process_ns;
use crate::metrics::{duration_us, new_histogram, record_us, LatencyStats};
use crate::projection::projector::{LagTracker, ProjectorError};
use crate::projection::truth::{read_model_names, read_models_changed_by};

pub const KIND: BackendKind = BackendKind::new("matview");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "matview",
    help: "read models as materialized views of the write tables, refreshed on a schedule (PostgreSQL)",
    provisions: Provisions::MATVIEWS,
    verified_against: VerifiedAgainst::WriteModel,
    write_also: "none: the views are refreshed apart from the writes",
    read_side_lags: true,
    requires: Some(Engine::Postgres),
    in_default_set: false,
    lag_name: "view staleness",
    operations: "one PostgreSQL database and a refresh schedule; every refresh recomputes its whole view",
    alternative_to_cqrs: Some("materialized views"),
    needs_replica: false,
    needs_broker: false,
    measured_against: None,
    separate_read_store: false,
    role: Role::Alternative,
    simplicity: 2,
    pack: PackSupport::Runs(PackMode::Views),
    open,
};

/// How often each view is refreshed: one interval for all, and overrides per view.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshSchedule {
    pub every: Duration,
    pub per_view: BTreeMap<String, Duration>,
}

impl Default for RefreshSchedule {
    fn default() -> Self {
        RefreshSchedule {
            every: Duration::from_secs(1),
            per_view: BTreeMap::new(),
        }
    }
}

impl RefreshSchedule {
    pub fn interval(&self, view: &str) -> Duration {
        self.per_view.get(view).copied().unwrap_or(self.every)
    }

    /// The views that can be refreshed (for validating per-view overrides).
    pub fn views() -> Vec<&'static str> {
        read_model_names().collect()
    }
}

/// One view's refreshes during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshReport {
    pub view: String,
    pub interval_ms: u64,
    pub refreshes: u64,
    pub failed: u64,
    /// How long each refresh took (µs).
    pub duration: LatencyStats,
    /// CPU seconds the server process spent refreshing; absent when the server is not on
    /// this machine.
    pub server_cpu_seconds: Option<f64>,
    /// The first error, if any refresh failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A write waiting to be seen: how many of the views it changes have still to finish a
/// refresh that started after its commit.
struct Pending {
    committed: Instant,
    views_left: AtomicUsize,
}

struct ViewState {
    /// Writes committed since the last refresh started.
    waiting: Vec<Arc<Pending>>,
    /// When the latest finished refresh started: the view shows every write committed
    /// before that.
    shows_until: Option<Instant>,
    durations: Histogram<u64>,
    refreshes: u64,
    failed: u64,
    cpu_ns: Option<u64>,
    error: Option<String>,
}

struct View {
    name: String,
    interval: Duration,
    statement: String,
    state: Mutex<ViewState>,
    /// One refresh at a time per view (the scheduled ones and a forced final one).
    running: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
}

impl View {
    /// Refreshes the view once on its own connection, then tells the writes it covers.
    async fn refresh(&self, db: &Db, lag: Option<&LagTracker>) -> Result<(), ProjectorError> {
        let mut conn = self.running.lock().await;
        if conn.is_none() {
            *conn = Some(db.pg_connection().await?);
        }
        let c = conn.as_mut().expect("connected above");
        let pid: Option<i32> = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *c)
            .await
            .ok();
        let cpu_before = pid.and_then(|p| server_process_ns(p as u32));
        let started = Instant::now();
        let covered = std::mem::take(&mut self.state.lock().expect("view lock").waiting);
        let result = c.execute(self.statement.as_str()).await;
        let ended = Instant::now();
        let cpu = cpu_before
            .zip(pid.and_then(|p| server_process_ns(p as u32)))
            .map(|(a, b)| b.saturating_sub(a));
        let mut st = self.state.lock().expect("view lock");
        match result {
            Ok(_) => {
                st.refreshes += 1;
                record_us(
                    &mut st.durations,
                    duration_us(ended.duration_since(started)),
                );
                st.cpu_ns = match (st.cpu_ns, cpu) {
                    (Some(total), Some(ns)) => Some(total + ns),
                    (None, Some(ns)) if st.refreshes == 1 => Some(ns),
                    _ => None,
                };
                st.shows_until = Some(st.shows_until.map_or(started, |s| s.max(started)));
                drop(st);
                for p in covered {
                    if p.views_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        if let Some(lag) = lag {
                            lag.observed(p.committed, ended);
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                st.failed += 1;
                st.error.get_or_insert_with(|| e.to_string());
                // Not refreshed: these writes wait for the next one.
                let mut rest = covered;
                rest.append(&mut st.waiting);
                st.waiting = rest;
                drop(st);
                // A broken connection is replaced on the next refresh.
                *conn = None;
                Err(ProjectorError::Sql(e))
            }
        }
    }

    fn report(&self) -> RefreshReport {
        let st = self.state.lock().expect("view lock");
        RefreshReport {
            view: self.name.clone(),
            interval_ms: duration_us(self.interval) / 1000,
            refreshes: st.refreshes,
            failed: st.failed,
            duration: LatencyStats::from_histogram(&st.durations),
            server_cpu_seconds: st.cpu_ns.map(|ns| ns as f64 / 1e9),
            error: st.error.clone(),
        }
    }
}

/// The views of a dataset, each refreshed on its own schedule on a connection of its own,
/// with what each write waits for: the shop's read models here, a pack's elsewhere
/// (`pack::backend`), which say by name which views a write changes.
pub struct Refreshers {
    db: Db,
    views: Vec<Arc<View>>,
    lag: Option<Arc<LagTracker>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Refreshers {
    /// The views `names` of `db`, refreshed by `schedule` (when `run`; otherwise only by
    /// [`Refreshers::refresh_all`]); each write's lag goes to `lag`. Empty where the engine
    /// has no materialized views.
    pub fn start(
        db: &Db,
        names: impl IntoIterator<Item = String>,
        schedule: &RefreshSchedule,
        lag: Option<Arc<LagTracker>>,
        run: bool,
    ) -> Refreshers {
        let dialect = db.dialect();
        let views: Vec<Arc<View>> = names
            .into_iter()
            .filter_map(|name| {
                Some(Arc::new(View {
                    interval: schedule.interval(&name),
                    statement: dialect.refresh_materialized_view(&name)?,
                    name,
                    state: Mutex::new(ViewState {
                        waiting: Vec::new(),
                        shows_until: None,
                        durations: new_histogram(),
                        refreshes: 0,
                        failed: 0,
                        cpu_ns: None,
                        error: None,
                    }),
                    running: tokio::sync::Mutex::new(None),
                }))
            })
            .collect();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let tasks = if run {
            views
                .iter()
                .map(|v| {
                    tokio::spawn(refresh_on_schedule(
                        v.clone(),
                        db.clone(),
                        lag.clone(),
                        shutdown_rx.clone(),
                    ))
                })
                .collect()
        } else {
            Vec::new()
        };
        Refreshers {
            db: db.clone(),
            views,
            lag,
            shutdown,
            tasks,
        }
    }

    /// A write committed at `at` that changes the views `changes` says yes to: its lag ends
    /// when the last of them finishes a refresh that started after it.
    pub fn committed(&self, at: Instant, changes: impl Fn(&str) -> bool) {
        let views: Vec<&Arc<View>> = self.views.iter().filter(|v| changes(&v.name)).collect();
        if views.is_empty() {
            return;
        }
        let pending = Arc::new(Pending {
            committed: at,
            views_left: AtomicUsize::new(views.len()),
        });
        for v in views {
            v.state
                .lock()
                .expect("view lock")
                .waiting
                .push(pending.clone());
        }
    }

    /// Whether every view `changes` says yes to has finished a refresh that started after
    /// `committed`: known here, without asking the database.
    pub fn show(&self, committed: Instant, changes: impl Fn(&str) -> bool) -> bool {
        self.views.iter().filter(|v| changes(&v.name)).all(|v| {
            v.state
                .lock()
                .expect("view lock")
                .shows_until
                .is_some_and(|s| s > committed)
        })
    }

    /// Refreshes every view once more, now: afterwards each shows every committed write.
    pub async fn refresh_all(&self, timeout: Duration) -> Result<(), ProjectorError> {
        let all = async {
            for v in &self.views {
                v.refresh(&self.db, self.lag.as_deref()).await?;
            }
            Ok(())
        };
        match tokio::time::timeout(timeout, all).await {
            Ok(result) => result,
            Err(_) => Err(ProjectorError::Timeout(timeout)),
        }
    }

    /// Each view's refreshes so far.
    pub fn reports(&self) -> Vec<RefreshReport> {
        self.views.iter().map(|v| v.report()).collect()
    }

    /// Stops the scheduled refreshes.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn open(db: &Db, opts: &BackendOptions) -> Box<dyn Architecture> {
    Box::new(Matview {
        refreshers: Refreshers::start(
            db,
            read_model_names().map(str::to_string),
            &opts.matview,
            opts.lag.clone(),
            opts.run_projector,
        ),
    })
}

/// Refreshes `view` every interval (measured from the end of the previous refresh, so a
/// refresh longer than the interval does not queue up more) until shut down.
async fn refresh_on_schedule(
    view: Arc<View>,
    db: Db,
    lag: Option<Arc<LagTracker>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(view.interval) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        // A failure is counted in the view's report; the next interval tries again.
        let _ = view.refresh(&db, lag.as_deref()).await;
    }
}

pub struct Matview {
    refreshers: Refreshers,
}

/// Whether one of `events` changes read model `view`.
fn changes(events: &[crate::domain::Event], view: &str) -> bool {
    events
        .iter()
        .any(|e| read_models_changed_by(e).contains(&view))
}

impl Architecture for Matview {
    fn after_commit(&self, written: &Written, at: Instant) {
        self.refreshers
            .committed(at, |view| changes(&written.events, view));
    }

    fn read_side(&self) -> ReadSide {
        ReadSide::ReadModels
    }

    /// Seen once every view the write changes has finished a refresh that started after the
    /// commit.
    fn is_visible<'a>(
        &'a self,
        _db: &'a Db,
        _session: &'a mut Session,
        receipt: &'a Receipt,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let Some(committed) = receipt.committed_at else {
                return Ok(true);
            };
            Ok(self
                .refreshers
                .show(committed, |view| changes(&receipt.events, view)))
        })
    }

    /// Refreshes every view once more, now: afterwards each shows every committed write.
    fn wait_caught_up(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(self.refreshers.refresh_all(timeout))
    }

    fn refreshes(&self) -> Vec<RefreshReport> {
        self.refreshers.reports()
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.refreshers.shutdown())
    }
}
