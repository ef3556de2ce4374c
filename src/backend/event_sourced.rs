//! `event-sourced`: the event store (`es_events`) is the write model. A command loads the
//! aggregates it touches by replaying their streams (an order, the products whose stock or
//! price it changes), decides with the pure domain functions (`domain::aggregate`) and
//! appends the events at the versions it read plus one, all streams in one transaction: a
//! `PlaceOrder` over several products commits to every stream or to none.
//!
//! **Optimistic concurrency.** Nothing is locked while deciding. The store is unique on
//! `(stream, version)` (and on the review / price-change claim), so when another writer
//! appended to a stream after it was read, the append fails on the unique key: a conflict.
//! The command is then retried in a new transaction on fresh state after a jittered,
//! bounded back-off (`backoff::DEFAULT`: at most 32 attempts and 250 ms of pauses), and
//! re-decided (a retry may now be refused, e.g. out
//! of stock). Conflicts, retries and give-ups are counted per command type
//! (`Architecture::concurrency`). On SQLite there is one writer connection, so conflicts
//! cannot happen there.
//!
//! **Snapshots** (`[event_sourcing] snapshot_every = N`, `BackendOptions::snapshot_every`):
//! a stream is loaded from its latest snapshot plus the events after it (`rehydrate`), and
//! an append that takes a stream `N` versions past its last snapshot stores a new one in the
//! same transaction. What each load and append costs is recorded
//! (`metrics::event_store`, `Architecture::event_store`).
//!
//! The projector reads the store through `projection::event_source::EventLog::event_store`
//! into the same read models as `cqrs-async`, with the same start-up and read-your-writes
//! check (`projected`), and queries read them with the same SQL. Verify folds the store and
//! compares every read model with the fold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::{AnyConnection, Row};
use tokio::sync::OnceCell;

use super::backoff::{self, Jitter};
use super::entry::{Entry, PackSupport, Role, VerifiedAgainst};
use super::projected::Projected;
use super::queries::ReadSide;
use super::rehydrate::{self, snapshot_due};
use super::{
    Architecture, BackendKind, BackendOptions, ConcurrencyCounts, ExecError, Receipt, Session,
    Written,
};
use crate::db::load::USERS_KEY;
use crate::db::sql::{bind_all, multi_row_query, values_for, Param};
use crate::db::state::Provisions;
use crate::db::{schema, Db, DbError};
use crate::domain::aggregate::{
    claim, claim_of, decide, evolve_order, evolve_product, occurred_at, streams_of, user_of,
    Decision, OrderAggregate, ProductAggregate,
};
use crate::domain::{Command, CommandKind};
use crate::metrics::event_store::{EventStoreRecorder, EventStoreStats};
use crate::projection::event_source::EventLog;
use crate::projection::projector::ProjectorError;

pub const KIND: BackendKind = BackendKind::new("event-sourced");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "event_sourced",
    help: "the event store is the write model: aggregates rebuilt from their streams, \
           optimistic concurrency; a projector updates the read models from the store",
    provisions: Provisions::EVENT_STORE,
    verified_against: VerifiedAgainst::EventStore,
    write_also: "rebuilding the aggregates from their streams and appending to the event store",
    read_side_lags: true,
    requires: None,
    in_default_set: true,
    lag_name: "projection lag",
    operations: "an event store as the write model, aggregate rehydration and a projector; schema changes become event versioning",
    alternative_to_cqrs: None,
    needs_replica: false,
    needs_broker: false,
    measured_against: Some(super::cqrs_async::KIND),
    separate_read_store: false,
    role: Role::Cqrs,
    simplicity: 7,
    pack: PackSupport::Refused("its write model is the shop's event store"),
    open,
};

fn open(db: &Db, opts: &BackendOptions) -> Box<dyn Architecture> {
    Box::new(EventSourced {
        read_side: Projected::start(db, EventLog::event_store(db.clone()), opts),
        users: OnceCell::new(),
        counters: Default::default(),
        snapshot_every: opts.snapshot_every,
        costs: EventStoreRecorder::new(opts.snapshot_every),
        jitter: Jitter::seeded(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        ),
    })
}

#[derive(Default)]
struct Counters {
    conflicts: AtomicU64,
    retries: AtomicU64,
    gave_up: AtomicU64,
}

pub struct EventSourced {
    /// The projector from the store into the read models.
    read_side: Projected,
    /// The seeded user count (users are `1..=n`), read once.
    users: OnceCell<i64>,
    /// Per `CommandKind::ALL` index.
    counters: [Counters; 7],
    /// Snapshot a stream every this many versions (0: never; loads then skip the snapshot
    /// table too).
    snapshot_every: u32,
    costs: EventStoreRecorder,
    /// Spreads the back-off pauses of writers that collided.
    jitter: Jitter,
}

/// A stream a command loaded: its name, the version read (bumped as events are assigned to
/// it), the snapshot it started from, and its aggregate.
struct Touched {
    stream: String,
    version: i64,
    snapshot_version: i64,
    aggregate: Aggregate,
}

enum Aggregate {
    Order,
    Product(i64),
}

/// One attempt's outcome besides success.
enum Failed {
    /// Another writer took a version (or claim) this attempt meant to append.
    Conflict,
    Exec(ExecError),
}

impl<E: Into<ExecError>> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed::Exec(e.into())
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl EventSourced {
    /// The seeded user count, read once on the writer's own connection: every writer may hold
    /// a connection of the pool when the first ones ask.
    async fn users(&self, conn: &mut AnyConnection) -> Result<i64, ExecError> {
        let n = self
            .users
            .get_or_try_init(|| async {
                let text = schema::meta_get_on(conn, USERS_KEY)
                    .await?
                    .unwrap_or_default();
                text.parse::<i64>().map_err(|_| {
                    DbError::from(sqlx::Error::Protocol(format!(
                        "the event store records no user count ({USERS_KEY} = {text:?}); reseed"
                    )))
                })
            })
            .await?;
        Ok(*n)
    }

    fn counters(&self, kind: CommandKind) -> &Counters {
        let i = CommandKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("every kind is in ALL");
        &self.counters[i]
    }

    /// One attempt: load, decide, append, commit.
    async fn attempt(
        &self,
        conn: &mut AnyConnection,
        users: i64,
        cmd: &Command,
    ) -> Result<Written, Failed> {
        self.costs.attempt();
        let snapshots = self.snapshot_every > 0;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let (order_id, mut product_ids) = streams_of(cmd);
        let mut touched: Vec<Touched> = Vec::new();
        let mut order: Option<OrderAggregate> = None;
        if let Some(id) = order_id {
            let stream = format!("order-{id}");
            let loaded = rehydrate::load(&mut tx, &stream, None, evolve_order, snapshots).await?;
            self.costs
                .rehydrated(loaded.took, loaded.events_read, loaded.snapshot_version > 0);
            touched.push(Touched {
                stream,
                version: loaded.version,
                snapshot_version: loaded.snapshot_version,
                aggregate: Aggregate::Order,
            });
            order = loaded.state;
        }
        if let (Command::CancelOrder { .. }, Some(o)) = (cmd, &order) {
            product_ids.extend(o.lines.iter().map(|l| l.product_id));
            product_ids.sort_unstable();
            product_ids.dedup();
        }
        let mut decision = Decision {
            order,
            user_known: user_of(cmd).is_none_or(|u| (1..=users).contains(&u)),
            ..Decision::default()
        };
        for id in product_ids {
            let stream = format!("product-{id}");
            let loaded: rehydrate::Loaded<ProductAggregate> =
                rehydrate::load(&mut tx, &stream, None, evolve_product, snapshots).await?;
            self.costs
                .rehydrated(loaded.took, loaded.events_read, loaded.snapshot_version > 0);
            touched.push(Touched {
                stream,
                version: loaded.version,
                snapshot_version: loaded.snapshot_version,
                aggregate: Aggregate::Product(id),
            });
            decision.products.insert(id, loaded.state);
        }
        if let Some(c) = claim_of(cmd) {
            decision.id_taken = sqlx::query("SELECT 1 FROM es_events WHERE claim = $1")
                .bind(c)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        }
        let events = match decide(&decision, cmd) {
            Ok(events) => events,
            Err(refused) => {
                tx.rollback().await?;
                return Err(Failed::Exec(refused.into()));
            }
        };
        // Each event at its stream's next version: the expected version is the one read.
        let mut params: Vec<Param> = Vec::with_capacity(events.len() * 6);
        for e in &events {
            let stream = e.stream();
            let version = match touched.iter_mut().find(|t| t.stream == stream) {
                Some(t) => {
                    t.version += 1;
                    t.version
                }
                None => {
                    return Err(Failed::Exec(ExecError::Db(sqlx::Error::Protocol(format!(
                        "decided an event for {stream}, which the command did not load"
                    )))))
                }
            };
            params.extend([
                stream.into(),
                version.into(),
                e.kind().into(),
                e.to_json().into(),
                occurred_at(e).into(),
                claim(e).into(),
            ]);
        }
        let appending = Instant::now();
        let sql = format!(
            "INSERT INTO es_events (stream, version, kind, payload, occurred_at, claim) \
             VALUES {} RETURNING seq",
            values_for(&tx, events.len(), 6)
        );
        let rows = match bind_all(multi_row_query(&sql, events.len()), &params)
            .fetch_all(&mut *tx)
            .await
        {
            Ok(rows) => rows,
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Err(Failed::Conflict);
            }
            Err(e) => return Err(e.into()),
        };
        let seqs = rows
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        // Snapshots after the append, in its transaction: a lost race never reaches them.
        let mut written = 0;
        for t in &touched {
            if !snapshot_due(self.snapshot_every, t.snapshot_version, t.version) {
                continue;
            }
            let mine = events.iter().filter(|e| e.stream() == t.stream);
            match t.aggregate {
                Aggregate::Order => {
                    let state = mine.fold(decision.order.clone(), evolve_order);
                    rehydrate::save_snapshot(&mut tx, &t.stream, t.version, &state).await?;
                }
                Aggregate::Product(id) => {
                    let start = decision.products.get(&id).copied().flatten();
                    let state = mine.fold(start, evolve_product);
                    rehydrate::save_snapshot(&mut tx, &t.stream, t.version, &state).await?;
                }
            }
            written += 1;
        }
        self.read_side.notify_in(&mut tx).await?;
        match tx.commit().await {
            Ok(()) => {
                self.costs.appended(appending.elapsed(), written);
                Ok(Written { events, seqs })
            }
            Err(e) if is_unique_violation(&e) => Err(Failed::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}

impl Architecture for EventSourced {
    fn write<'a>(
        &'a self,
        _db: &'a Db,
        conn: &'a mut AnyConnection,
        cmd: &'a Command,
    ) -> BoxFuture<'a, Result<Written, ExecError>> {
        Box::pin(async move {
            let users = self.users(conn).await?;
            let counters = self.counters(cmd.kind());
            let (mut failed, mut slept) = (0, Duration::ZERO);
            loop {
                match self.attempt(conn, users, cmd).await {
                    Ok(done) => return Ok(done),
                    Err(Failed::Exec(e)) => return Err(e),
                    Err(Failed::Conflict) => {
                        counters.conflicts.fetch_add(1, Ordering::Relaxed);
                        failed += 1;
                        let Some(pause) = backoff::DEFAULT.pause(failed, slept, self.jitter.draw())
                        else {
                            counters.gave_up.fetch_add(1, Ordering::Relaxed);
                            return Err(ExecError::GaveUp {
                                command: cmd.kind().name(),
                                attempts: failed,
                            });
                        };
                        counters.retries.fetch_add(1, Ordering::Relaxed);
                        // The timer rounds up to the millisecond: what counts is what was slept.
                        let before = Instant::now();
                        tokio::time::sleep(pause).await;
                        slept += before.elapsed();
                    }
                }
            }
        })
    }

    fn after_commit(&self, written: &Written, at: Instant) {
        self.read_side.after_commit(&written.seqs, at);
    }

    fn read_side(&self) -> ReadSide {
        ReadSide::ReadModels
    }

    fn is_visible<'a>(
        &'a self,
        db: &'a Db,
        session: &'a mut Session,
        receipt: &'a Receipt,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(self.read_side.is_visible(db, session, receipt))
    }

    fn wait_caught_up(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(self.read_side.wait_caught_up(timeout))
    }

    fn search(&self) -> Option<&super::projected::SearchSide> {
        self.read_side.search()
    }

    fn start(&self) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(self.read_side.start_search())
    }

    fn concurrency(&self) -> Vec<ConcurrencyCounts> {
        CommandKind::ALL
            .iter()
            .zip(&self.counters)
            .map(|(kind, c)| ConcurrencyCounts {
                command: *kind,
                conflicts: c.conflicts.load(Ordering::Relaxed),
                retries: c.retries.load(Ordering::Relaxed),
                gave_up: c.gave_up.load(Ordering::Relaxed),
            })
            .collect()
    }

    fn event_store(&self) -> Option<EventStoreStats> {
        Some(self.costs.stats())
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.read_side.shutdown())
    }
}
