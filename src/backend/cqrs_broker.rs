//! `cqrs-broker`: the write transaction appends its events to the outbox, as in `cqrs-async`;
//! a relay publishes them in order to a NATS JetStream stream (`Nats-Msg-Id` = outbox seq, so
//! a republish is deduplicated), and the projector consumes the stream through a durable pull
//! consumer, storing the stream sequence as its checkpoint in the read models' transaction and
//! acking after the commit. Queries read the read models; a reader sees a write once every
//! read model's checkpoint covers the stream sequence its events were published at. Verify
//! compares the read models with the truth from the write model.
//!
//! The stream and consumer are named after the database (`broker::Names`), created when the
//! freshly seeded database is first opened, and deleted at shutdown (unless kept) only if the
//! tool created them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::future::BoxFuture;
use tokio::sync::{watch, Notify};

use super::cqrs_async::append_events;
use super::entry::{Entry, PackMode, PackSupport, Role, VerifiedAgainst};
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions, Receipt, Session, Written};
use crate::broker::{self, BrokerOptions, Names};
use crate::db::state::Provisions;
use crate::db::Db;
use crate::domain::Event;
use crate::projection::event_source::EventLog;
use crate::projection::jetstream::JetStreamSource;
use crate::projection::lag_parts::{LagPart, LagParts};
use crate::projection::projector::{
    LagTracker, Projector, ProjectorConfig, ProjectorError, ProjectorStats,
};
use crate::projection::read_store::{read_checkpoints, SameDatabase};
use crate::projection::relay::{self, Relay};
use crate::projection::ProjectionName;

pub const KIND: BackendKind = BackendKind::new("cqrs-broker");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "cqrs_broker",
    help: "events appended to an outbox in the write transaction; a relay publishes them to NATS JetStream (--nats), a projector consumes the stream into the read models",
    provisions: Provisions::READ_MODELS_AND_LOG,
    verified_against: VerifiedAgainst::WriteModel,
    write_also: "appending the outbox event",
    read_side_lags: true,
    requires: None,
    // It needs a NATS server: it runs where a scenario names it.
    in_default_set: false,
    lag_name: "projection lag",
    operations: "one database, a NATS JetStream server (or cluster) and a relay and a projector to run and watch; the read store can live elsewhere",
    alternative_to_cqrs: None,
    needs_replica: false,
    needs_broker: true,
    measured_against: None,
    separate_read_store: true,
    role: Role::Cqrs,
    simplicity: 6,
    pack: PackSupport::Runs(PackMode::Broker),
    open,
};

/// The projector of this backend: the stream into the same database's read tables.
pub type BrokerProjector = Projector<JetStreamSource, SameDatabase>;

fn open(db: &Db, opts: &BackendOptions) -> Box<dyn Architecture> {
    Box::new(CqrsBroker {
        db: db.clone(),
        read_store: opts.read_store.clone(),
        names: names_of(db),
        broker: opts.broker.clone(),
        config: opts.projector.clone(),
        run_tasks: opts.run_projector,
        lag: opts.lag.clone(),
        parts: LagParts::new(),
        published: Arc::new(Mutex::new(HashMap::new())),
        relay_wake: Arc::new(Notify::new()),
        projector_wake: Arc::new(Notify::new()),
        shutdown: watch::channel(false).0,
        running: OnceLock::new(),
    })
}

/// The stream and consumer names of a database.
pub fn names_of(db: &Db) -> Names {
    let readable = match (&db.schema, db.url.sqlite_path()) {
        (Some(schema), _) => schema.clone(),
        (None, Some(path)) => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    let location = match db.url.sqlite_path() {
        Some(path) => std::fs::canonicalize(&path)
            .unwrap_or(path)
            .display()
            .to_string(),
        None => db.location(),
    };
    Names::for_location(&readable, &location)
}

pub struct CqrsBroker {
    db: Db,
    /// The read models' own database (`--read-db`), when they are not in `db`.
    read_store: Option<Db>,
    names: Names,
    broker: BrokerOptions,
    config: ProjectorConfig,
    run_tasks: bool,
    lag: Option<Arc<LagTracker>>,
    parts: Arc<LagParts>,
    /// Outbox seq → stream seq of published events, until a reader looked or the read models
    /// passed them (read-your-writes).
    published: Arc<Mutex<HashMap<i64, u64>>>,
    relay_wake: Arc<Notify>,
    projector_wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    running: OnceLock<Running>,
}

struct Running {
    js: jetstream::Context,
    relay: Arc<Relay>,
    projector: Arc<BrokerProjector>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl CqrsBroker {
    async fn connect(&self) -> Result<Running, ProjectorError> {
        let js = broker::connect(&self.broker.url).await?;
        if !relay::is_recorded(&self.db, &self.names).await? {
            broker::stream::create_fresh(&js, &self.names, &self.broker).await?;
            relay::record_fresh(&self.db, self.read_store.as_ref(), &self.names).await?;
        }
        let published = self.published.clone();
        let parts = self.parts.clone();
        let wake = self.projector_wake.clone();
        let relay = Relay::new(
            self.db.clone(),
            js.clone(),
            self.names.clone(),
            self.config.batch_size,
            self.config.poll_interval,
        )
        .with_on_published(Arc::new(move |pairs, at| {
            let seqs: Vec<i64> = pairs.iter().map(|(s, _)| *s).collect();
            parts.published(&seqs, at);
            published
                .lock()
                .expect("published lock")
                .extend(pairs.iter().copied());
            wake.notify_one();
        }));
        let source = JetStreamSource::open(
            js.clone(),
            self.names.clone(),
            &self.broker.url,
            EventLog::outbox(self.db.clone()),
            self.config.poll_interval,
        )
        .await?;
        let mut projector = Projector::over(
            source,
            SameDatabase::new(self.reads_from(&self.db).clone()),
            self.config.clone(),
        );
        if let Some(lag) = &self.lag {
            projector = projector.with_lag(lag.clone());
        }
        for t in self.parts.projector_trackers() {
            projector = projector.with_lag(t);
        }
        Ok(Running {
            js,
            relay: Arc::new(relay),
            projector: Arc::new(projector),
            tasks: Mutex::new(Vec::new()),
        })
    }

    fn running(&self) -> &Running {
        self.running
            .get()
            .expect("Backend::open started the broker")
    }

    /// The relay, for fault drills and by-hand driving.
    pub fn relay(&self) -> &Arc<Relay> {
        &self.running().relay
    }

    /// Events committed and not yet in every read model: not yet published, or published and
    /// not yet applied.
    async fn backlog(&self) -> Result<i64, ProjectorError> {
        let r = self.running();
        Ok(r.relay.backlog().await? + r.projector.backlog().await?)
    }
}

impl Architecture for CqrsBroker {
    fn in_write_transaction<'a>(
        &'a self,
        tx: &'a mut sqlx::AnyConnection,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<Vec<i64>, sqlx::Error>> {
        Box::pin(append_events(tx, events))
    }

    fn after_commit(&self, written: &Written, at: Instant) {
        let seqs = &written.seqs;
        if let Some(lag) = &self.lag {
            lag.committed(seqs, at);
        }
        self.parts.committed(seqs, at);
        self.relay_wake.notify_one();
    }

    fn start(&self) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(async move {
            if self.running.get().is_some() {
                return Ok(());
            }
            let running = self.connect().await?;
            if self.run_tasks {
                let mut tasks = running.tasks.lock().expect("tasks lock");
                tasks.push(tokio::spawn(
                    running
                        .relay
                        .clone()
                        .run(self.relay_wake.clone(), self.shutdown.subscribe()),
                ));
                tasks.push(tokio::spawn(
                    running
                        .projector
                        .clone()
                        .run(self.projector_wake.clone(), self.shutdown.subscribe()),
                ));
            }
            let _ = self.running.set(running);
            Ok(())
        })
    }

    fn read_side(&self) -> ReadSide {
        ReadSide::ReadModels
    }

    fn reads_from<'a>(&'a self, db: &'a Db) -> &'a Db {
        self.read_store.as_ref().unwrap_or(db)
    }

    fn is_visible<'a>(
        &'a self,
        db: &'a Db,
        session: &'a mut Session,
        receipt: &'a Receipt,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let Some(&seq) = receipt.seqs.iter().max() else {
                return Ok(true);
            };
            let Some(stream_seq) = self
                .published
                .lock()
                .expect("published lock")
                .get(&seq)
                .copied()
            else {
                return Ok(false);
            };
            let mut conn = session.take(&self.reads_from(db).read).await?;
            let result = read_checkpoints(&mut conn).await;
            session.give_back(conn, result.is_ok());
            let checkpoints = result?;
            let reached = ProjectionName::ALL
                .iter()
                .map(|p| checkpoints.get(p).map(|c| c.seq).unwrap_or(0))
                .min()
                .unwrap_or(0);
            let visible = reached >= stream_seq as i64;
            if visible {
                // Events every read model has passed are visible for good: forget them.
                let mut published = self.published.lock().expect("published lock");
                published.retain(|_, s| *s as i64 > reached);
            }
            Ok(visible)
        })
    }

    fn projector_stats(&self) -> Option<Arc<ProjectorStats>> {
        self.running.get().map(|r| r.projector.stats.clone())
    }

    fn lag_parts(&self) -> Vec<LagPart> {
        self.parts.summary()
    }

    fn wait_caught_up(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            let r = self.running();
            loop {
                if !self.run_tasks {
                    while r.relay.step().await? > 0 {}
                    r.projector.catch_up().await?;
                }
                // A broker or database away for a moment (a restart) is waited for.
                match self.backlog().await {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if Instant::now() >= deadline => return Err(e),
                    Err(_) => {}
                }
                if Instant::now() >= deadline {
                    return Err(ProjectorError::Timeout(timeout));
                }
                self.relay_wake.notify_one();
                self.projector_wake.notify_one();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.shutdown.send(true);
            let Some(running) = self.running.get() else {
                return;
            };
            let tasks: Vec<_> = running
                .tasks
                .lock()
                .expect("tasks lock")
                .drain(..)
                .collect();
            for t in tasks {
                let _ = t.await;
            }
            if !self.broker.keep {
                let _ = broker::stream::delete_ours(&running.js, &self.names).await;
            }
        })
    }
}

/// The stream's name for a database (for tests and messages).
pub fn stream_name(db: &Db) -> String {
    names_of(db).stream
}
