//! A workload pack on a real backend: its dataset prepared for the backend ([`prepare`]),
//! its commands and queries run the way the backend runs the shop's ([`PackBackend`]), and
//! its read models verified against their truth ([`verify`]).
//!
//! Each backend's registry entry says whether and how it runs a pack ([`PackSupport`]):
//!
//! | backend      | [`PackMode`]      | a command's transaction also…              | queries read |
//! |--------------|-------------------|---------------------------------------------|--------------|
//! | `normalized` | `WriteModel`      | nothing                                     | `write_sql`  |
//! | `cqrs-sync`  | `InTransaction`   | runs the events' projection statements      | `read_sql`   |
//! | `cqrs-async` | `Outbox`          | appends the events to the pack's outbox; a projector ([`super::projector`]) applies them later | `read_sql` |
//! | `cqrs-broker`| `Broker`          | appends the events to the pack's outbox; a relay publishes them to NATS JetStream ([`super::broker`]) and the projector consumes the stream | `read_sql` |
//! | `matview`    | `Views`           | nothing: each read model is a materialized view of its truth query, refreshed on a schedule | `read_sql`, from the views |
//! | `replica`    | `Standby`         | nothing: a hot standby replays the primary's WAL | `write_sql`, on the standby |
//!
//! The others refuse a pack before anything is created, with the reason in their entry.
//!
//! A pack's dataset is one of the tool's datasets: the meta table with the owner mark, its
//! state (`seeding` until the seed commits, then ready with the mode's provisions) and the
//! list of tables the pack created (`schema::PACK_TABLES_KEY`), so the ownership check, `drop`,
//! the locks and the half-seeded refusal treat it as they treat the shop's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Connection as _, Executor as _};
use tokio::sync::{watch, Notify};

use super::broker::PackBroker;
use super::exec::{Applied, CompiledPack, PackEvent, Side};
use super::params::Params;
use super::projector::{
    baseline_statements, checkpoint_ddl, checkpoint_start, event_json, PackProjector, CHECKPOINT,
    OUTBOX,
};
use crate::backend::matview::{RefreshReport, RefreshSchedule, Refreshers};
use crate::backend::replica::ReplayWatcher;
use crate::backend::{registry, BackendKind, ExecError, OpenError, Receipt, Session};
use crate::broker::BrokerOptions;
use crate::db::sql::Param;
use crate::db::state::{self, DbState};
use crate::db::{schema, Db, DbError, DbUrl};
use crate::domain::DomainError;
use crate::projection::projector::{LagTracker, ProjectorError, ProjectorStats};

/// The meta key naming the pack a dataset was prepared with.
pub const PACK_KEY: &str = "pack";

pub use crate::backend::entry::{PackMode, PackSupport};

/// The side of a query `mode` answers from: the write model's SQL for `normalized`, the read
/// models' for the others.
fn side_of(mode: PackMode) -> Side {
    match mode {
        PackMode::WriteModel | PackMode::Standby => Side::Write,
        PackMode::InTransaction | PackMode::Outbox | PackMode::Broker | PackMode::Views => {
            Side::Read
        }
    }
}

/// How `kind` runs a pack, or the error that refuses it.
pub fn mode_of(kind: BackendKind) -> Result<PackMode, DbError> {
    match registry::entry(kind).pack {
        PackSupport::Runs(mode) => Ok(mode),
        PackSupport::Refused(reason) => Err(DbError::NoPackMode {
            backend: kind.name(),
            reason,
            supported: registry::running_packs(),
        }),
    }
}

/// Refuses `kind` on `engine` where its entry needs another engine (`matview` and `replica`
/// need PostgreSQL), as the shop's scenarios are refused.
fn require_engine(kind: BackendKind, engine: crate::db::Engine) -> Result<(), DbError> {
    match registry::refusal(kind, engine) {
        Some(refusal) => Err(DbError::PackNeedsEngine { refusal }),
        None => Ok(()),
    }
}

/// Seeds `pack` at `url` (schema `schema` on PostgreSQL) for `kind`, replacing a dataset of
/// the tool's there (a place the tool does not own is refused). A kind that runs no pack is
/// refused before anything is opened or created.
///
/// The meta table with the owner mark and state `seeding` is committed first; then, in one
/// transaction, the write model and dataset, the read models (filled from their truth) where
/// the mode has them, the outbox, the projector's checkpoint and a copy of the seeded read
/// models (`super::projector::baseline_table`) for `Outbox` and `Broker` (with the relay's
/// record for `Broker`), the list of the
/// pack's tables, and the ready state. A seed that fails leaves the meta table saying
/// `seeding` and nothing of the pack's.
pub async fn prepare(
    url: &DbUrl,
    schema: &str,
    kind: BackendKind,
    pack: &CompiledPack,
    pool_size: u32,
) -> Result<Db, DbError> {
    let mode = mode_of(kind)?;
    require_engine(kind, url.engine())?;
    let db = Db::open(url, schema, pool_size).await?;
    schema::recreate_empty(&db).await?;
    let mut conn = db.write.acquire().await?;
    let mut tx = conn.begin().await?;
    pack.seed_write_model(&mut tx).await?;
    if mode == PackMode::Views {
        let views = pack.seed_views(&mut tx).await?;
        schema::meta_set(&mut tx, schema::PACK_VIEWS_KEY, &views.join(",")).await?;
    } else if mode.has_read_models() {
        pack.seed_read_models(&mut tx).await?;
    }
    if mode.has_outbox() {
        sqlx::raw_sql(&db.dialect().outbox_ddl(OUTBOX))
            .execute(&mut *tx)
            .await?;
        tx.execute(checkpoint_ddl().as_str()).await?;
        tx.execute(checkpoint_start().as_str()).await?;
        // The read models as the seed left them, which no event describes: where a rebuild
        // starts before it applies the outbox again.
        for statement in baseline_statements(pack) {
            tx.execute(statement.as_str()).await?;
        }
    }
    if mode == PackMode::Broker {
        tx.execute(schema::BROKER_RELAY_DDL).await?;
    }
    let tables = schema::tables_on(&mut tx, db.engine()).await?;
    schema::meta_set(&mut tx, schema::PACK_TABLES_KEY, &tables.join(",")).await?;
    schema::meta_set(&mut tx, PACK_KEY, &pack.pack.name).await?;
    let ready = DbState::Ready(mode.provisions()).to_string();
    schema::meta_set(&mut tx, DbState::KEY, &ready).await?;
    tx.commit().await?;
    Ok(db)
}

/// How a [`PackBackend`] runs.
#[derive(Debug, Clone)]
pub struct PackBackendOptions {
    /// Run the projector (`Outbox`, `Broker`: and the relay) in this process; without it,
    /// `wait_caught_up` applies the outbox by hand.
    pub run_projector: bool,
    /// Told of every event's commit and of its application: the projection lag.
    pub lag: Option<Arc<LagTracker>>,
    /// Events per projector transaction.
    pub batch_size: i64,
    /// How often an idle projector looks for events no wake-up announced.
    pub poll_interval: Duration,
    /// Give each driver worker a connection of its own (see `backend::session`); set only
    /// when the pool has room for every worker and the projector.
    pub dedicated_sessions: bool,
    /// How often each view is refreshed (`Views`).
    pub refresh: RefreshSchedule,
    /// The hot standby of the database that queries read (`Standby`, which cannot open
    /// without one).
    pub standby: Option<Db>,
    /// The broker `Broker` publishes to and consumes from (`--nats`, `--keep-db`).
    pub broker: BrokerOptions,
}

impl Default for PackBackendOptions {
    fn default() -> Self {
        PackBackendOptions {
            run_projector: true,
            lag: None,
            batch_size: 500,
            poll_interval: Duration::from_millis(50),
            dedicated_sessions: false,
            refresh: RefreshSchedule::default(),
            standby: None,
            broker: BrokerOptions::default(),
        }
    }
}

/// The projector side of an `Outbox` or `Broker` backend.
struct Outbox {
    projector: Arc<PackProjector>,
    /// Woken after a commit: the projector's (`Outbox`) or the relay's (`Broker`).
    wake: Arc<Notify>,
    /// The relay and the stream (`Broker`).
    broker: Option<PackBroker>,
    relay_task: Option<tokio::task::JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    listener: Option<tokio::task::JoinHandle<()>>,
    lag: Option<Arc<LagTracker>>,
    notify: Option<&'static str>,
    channel: String,
}

/// A pack running on a backend: commands in one transaction each, queries from the side the
/// mode reads, read-your-writes and catching up as the mode has them.
pub struct PackBackend {
    pub kind: BackendKind,
    pub mode: PackMode,
    pub db: Db,
    pack: Arc<CompiledPack>,
    dedicated_sessions: bool,
    outbox: Option<Outbox>,
    /// The views' refreshers (`Views`).
    views: Option<Refreshers>,
    /// The standby queries read, and its replication watched (`Standby`).
    standby: Option<(Db, ReplayWatcher)>,
}

/// Channel of wake-ups for a pack's projectors in other processes (PostgreSQL).
fn notify_channel(db: &Db) -> String {
    format!("cqrs_bench_pack_{}", db.schema.as_deref().unwrap_or("main"))
}

impl PackBackend {
    /// Opens `kind` on a database [`prepare`]d for it with this pack (refused otherwise:
    /// not the tool's, half-seeded, another pack or another mode's dataset), starting the
    /// projector for `Outbox` (and `Broker`, with the relay, after connecting to the broker)
    /// unless told not to.
    pub async fn open(
        kind: BackendKind,
        db: Db,
        pack: Arc<CompiledPack>,
        opts: PackBackendOptions,
    ) -> Result<PackBackend, OpenError> {
        let mode = mode_of(kind)?;
        require_engine(kind, db.engine())?;
        if mode == PackMode::Standby && opts.standby.is_none() {
            return Err(DbError::NoReplica(kind.name()).into());
        }
        state::require_seeded(&db).await?;
        let prepared = schema::meta_get(&db, PACK_KEY).await?;
        let st = DbState::read(&db).await?;
        if prepared.as_deref() != Some(pack.pack.name.as_str())
            || st != DbState::Ready(mode.provisions())
            || pack.engine() != db.engine()
        {
            return Err(DbError::NotPackDataset {
                place: db.location(),
                pack: pack.pack.name.clone(),
                backend: kind.name(),
            }
            .into());
        }
        let broker = match mode {
            PackMode::Broker => Some(
                PackBroker::connect(&db, &opts.broker, opts.batch_size, opts.poll_interval).await?,
            ),
            _ => None,
        };
        let outbox = mode.has_outbox().then(|| {
            let projector = PackProjector::new(
                db.clone(),
                pack.clone(),
                opts.batch_size,
                opts.poll_interval,
                opts.lag.clone(),
            );
            let (projector, broker) = match broker {
                Some((broker, consumer)) => (projector.with_broker(consumer), Some(broker)),
                None => (projector, None),
            };
            let projector = Arc::new(projector);
            let wake = Arc::new(Notify::new());
            let (shutdown, rx) = watch::channel(false);
            let channel = notify_channel(&db);
            // On the broker the commits wake the relay, and the relay the projector.
            let projector_wake = broker
                .as_ref()
                .map_or(wake.clone(), |b| b.projector_wake.clone());
            let (task, relay_task, listener) = if opts.run_projector {
                (
                    Some(tokio::spawn(
                        projector.clone().run(projector_wake, rx.clone()),
                    )),
                    broker
                        .as_ref()
                        .map(|b| tokio::spawn(b.relay.clone().run(wake.clone(), rx.clone()))),
                    db.listen(channel.clone(), wake.clone(), rx),
                )
            } else {
                (None, None, None)
            };
            Outbox {
                projector,
                wake,
                broker,
                relay_task,
                shutdown,
                task,
                listener,
                lag: opts.lag.clone(),
                notify: db.dialect().notify(),
                channel,
            }
        });
        // A pack does not say which read models a command changes: every view counts as
        // changed by every command (a write's lag and visibility wait for all of them).
        let views = (mode == PackMode::Views).then(|| {
            Refreshers::start(
                &db,
                pack.pack.read_models.keys().cloned(),
                &opts.refresh,
                opts.lag.clone(),
                opts.run_projector,
            )
        });
        let standby = match (mode, opts.standby) {
            (PackMode::Standby, Some(standby)) => {
                // Always watched: the standby's visibility is known from the poller only.
                let watcher = ReplayWatcher::start(&db, &standby, opts.lag.clone(), true);
                Some((standby, watcher))
            }
            _ => None,
        };
        Ok(PackBackend {
            kind,
            mode,
            db,
            pack,
            dedicated_sessions: opts.dedicated_sessions,
            outbox,
            views,
            standby,
        })
    }

    /// The pack it runs.
    pub fn pack(&self) -> &Arc<CompiledPack> {
        &self.pack
    }

    /// A driver worker's session for the write lane (`writes`) or the read lane, by the rule
    /// every backend's sessions follow (`Session::for_lane`).
    pub fn session(&self, writes: bool) -> Session {
        Session::for_lane(&self.db, self.dedicated_sessions, writes)
    }

    /// Runs `command` of op `index` in one transaction on the session's connection. A row
    /// requirement that fails rolls it back and is `ExecError::Domain(DomainError::Refused)`
    /// (label `refused`). The receipt carries the events' outbox positions (`Outbox`) and
    /// when the commit was seen.
    pub async fn execute_in(
        &self,
        s: &mut Session,
        params: &Params,
        index: u64,
        command: &str,
    ) -> Result<Receipt, ExecError> {
        let mut conn = s.take(&self.db.write).await.map_err(DbError::from)?;
        let result = self.execute_on(&mut conn, params, index, command).await;
        s.give_back(conn, !matches!(result, Err(ExecError::Db(_))));
        result
    }

    async fn execute_on(
        &self,
        conn: &mut AnyConnection,
        params: &Params,
        index: u64,
        command: &str,
    ) -> Result<Receipt, ExecError> {
        let mut tx = conn.begin().await?;
        let events = match self.pack.execute(&mut tx, params, index, command).await? {
            Applied::Committed(events) => events,
            Applied::Refused { statement, rows } => {
                tx.rollback().await?;
                return Err(DomainError::Refused {
                    command: command.to_string(),
                    statement,
                    rows,
                }
                .into());
            }
        };
        let mut seqs = Vec::new();
        match (self.mode, &self.outbox) {
            // The write model alone: the views are refreshed and the standby replays apart
            // from the writes.
            (PackMode::WriteModel | PackMode::Views | PackMode::Standby, _) => {}
            (PackMode::InTransaction, _) => self.pack.project(&mut tx, &events).await?,
            (PackMode::Outbox | PackMode::Broker, Some(o)) => {
                seqs = append(&mut tx, command, &events).await?;
                if let Some(notify) = o.notify {
                    sqlx::query(notify)
                        .bind(&o.channel)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            (PackMode::Outbox | PackMode::Broker, None) => {
                unreachable!("an outbox backend has its projector")
            }
        }
        tx.commit().await?;
        let committed_at = Instant::now();
        if let Some(o) = &self.outbox {
            if let Some(lag) = &o.lag {
                lag.committed(&seqs, committed_at);
            }
            o.wake.notify_one();
        }
        if let Some(views) = &self.views {
            views.committed(committed_at, |_| true);
        }
        if let Some((_, watcher)) = &self.standby {
            watcher.committed(committed_at);
        }
        Ok(Receipt {
            seqs,
            committed_at: Some(committed_at),
            ..Receipt::default()
        })
    }

    /// Answers `query` of op `index` on the session's connection, from the side the mode
    /// reads.
    pub async fn query_in(
        &self,
        s: &mut Session,
        params: &Params,
        index: u64,
        query: &str,
    ) -> Result<Vec<Vec<Param>>, sqlx::Error> {
        let reader = self
            .standby
            .as_ref()
            .map_or(&self.db, |(standby, _)| standby);
        let mut conn = s.take(&reader.read).await?;
        let result = self
            .pack
            .query(&mut conn, params, index, query, side_of(self.mode))
            .await;
        s.give_back(conn, result.is_ok());
        result
    }

    /// Whether a reader already sees what `r` wrote: at once on `WriteModel` and
    /// `InTransaction`; on `Outbox` and `Broker` once the checkpoint covers every event of the
    /// receipt (it commits with the rows it applied, so covering is showing; on the broker,
    /// the stream seqs the events were published at); on `Views` once every view has finished
    /// a refresh that started after the commit; on `Standby` once the standby has been seen to
    /// replay past the commit (by the replication poller, at most a poll late: a pack does not
    /// say which row a command wrote for a probe to ask for).
    pub async fn is_visible_in(&self, s: &mut Session, r: &Receipt) -> Result<bool, sqlx::Error> {
        if let (Some(views), Some(at)) = (&self.views, r.committed_at) {
            return Ok(views.show(at, |_| true));
        }
        if let (Some((_, watcher)), Some(at)) = (&self.standby, r.committed_at) {
            return Ok(watcher.shows(at));
        }
        let Some(o) = &self.outbox else {
            return Ok(true);
        };
        if r.seqs.is_empty() {
            return Ok(true);
        }
        if let Some(broker) = &o.broker {
            let mut conn = s.take(&self.db.read).await?;
            let result = broker.is_visible(&mut conn, &r.seqs).await;
            s.give_back(conn, result.is_ok());
            return result;
        }
        let list: Vec<String> = (1..=r.seqs.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM {CHECKPOINT} c, {OUTBOX} e WHERE e.seq IN ({}) \
             AND (c.xid, c.seq) >= (e.xid, e.seq)",
            list.join(", ")
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for seq in &r.seqs {
            q = q.bind(*seq);
        }
        let mut conn = s.take(&self.db.read).await?;
        let result = q.fetch_one(&mut *conn).await;
        s.give_back(conn, result.is_ok());
        Ok(result? as usize == r.seqs.len())
    }

    /// Waits until the read side shows every committed write: the projector has applied
    /// every event (`Outbox`, `Broker`; without a running projector, the outbox is applied
    /// here, on the broker relayed first), every view is refreshed once more (`Views`), the
    /// standby has replayed every commit (`Standby`); at once for the others.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<(), ProjectorError> {
        if let Some(views) = &self.views {
            return views.refresh_all(timeout).await;
        }
        if let Some((_, watcher)) = &self.standby {
            return watcher.wait_caught_up(timeout).await;
        }
        let Some(o) = &self.outbox else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        loop {
            if o.task.is_none() {
                if let Some(b) = &o.broker {
                    while b.relay.step().await? > 0 {}
                }
                o.projector.catch_up().await?;
            }
            let unpublished = match &o.broker {
                Some(b) => b.relay.backlog().await?,
                None => 0,
            };
            if unpublished + o.projector.backlog().await? == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProjectorError::Timeout(timeout));
            }
            o.wake.notify_one();
            if let Some(b) = &o.broker {
                b.projector_wake.notify_one();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The relay and stream (`Broker`), for driving the relay by hand.
    pub fn broker(&self) -> Option<&PackBroker> {
        self.outbox.as_ref().and_then(|o| o.broker.as_ref())
    }

    /// The projector (`Outbox`, `Broker`), for driving it by hand.
    pub fn projector(&self) -> Option<&Arc<PackProjector>> {
        self.outbox.as_ref().map(|o| &o.projector)
    }

    /// The projector's counters (`Outbox`, `Broker`; `None` otherwise).
    pub fn projector_stats(&self) -> Option<Arc<ProjectorStats>> {
        self.outbox.as_ref().map(|o| o.projector.stats.clone())
    }

    /// Each view's refreshes (`Views`; empty otherwise).
    pub fn refreshes(&self) -> Vec<RefreshReport> {
        self.views
            .as_ref()
            .map(Refreshers::reports)
            .unwrap_or_default()
    }

    /// Stops the projector (and the relay), the refreshers or the replication poller,
    /// whichever runs; removes the stream the run created (`Broker`, unless kept).
    pub async fn shutdown(mut self) {
        if let Some(views) = self.views.take() {
            views.shutdown().await;
        }
        // The standby's pools are the caller's, who opened them.
        if let Some((_, watcher)) = self.standby.take() {
            watcher.shutdown().await;
        }
        if let Some(mut o) = self.outbox.take() {
            let _ = o.shutdown.send(true);
            if let Some(task) = o.task.take() {
                let _ = task.await;
            }
            if let Some(task) = o.relay_task.take() {
                let _ = task.await;
            }
            if let Some(listener) = o.listener.take() {
                listener.abort();
            }
            if let Some(b) = &o.broker {
                b.remove_stream().await;
            }
        }
    }
}

/// Appends `events` of `command` to the outbox; returns their seqs.
async fn append(
    tx: &mut AnyConnection,
    command: &str,
    events: &[PackEvent],
) -> Result<Vec<i64>, sqlx::Error> {
    let sql =
        format!("INSERT INTO {OUTBOX} (stream, kind, payload) VALUES ($1, $2, $3) RETURNING seq");
    let mut seqs = Vec::with_capacity(events.len());
    for e in events {
        let seq: i64 = sqlx::query_scalar(&sql)
            .bind(command)
            .bind(&e.event)
            .bind(event_json(e))
            .fetch_one(&mut *tx)
            .await?;
        seqs.push(seq);
    }
    Ok(seqs)
}
