//! Convergence under faults (issue 4, "Property tests" and "The negative control").
//!
//! Generates shrinkable command histories over a tiny seeded shop, runs them through the
//! `cqrs-async` backend (projector off) to get the committed event log, then delivers that
//! log to the SQL read models under a generated fault plan:
//!
//! - duplicate deliveries (0–50 % of events, each copy delivered again at a later position);
//! - a crash before a batch commits (its transaction is lost), then a restart from the stored
//!   checkpoint;
//! - a crash after a batch committed but before its checkpoint was saved (only matters where
//!   the checkpoint is saved on its own, i.e. for the naive applier);
//! - rebuild from zero at a random point (at most a few times, so "twice" happens too);
//! - a random merge of the per-stream subsequences of the log (never reordering within one
//!   stream);
//! - batch sizes 1..=50, cycled.
//!
//! The shipped applier (`Guard::Ledger`) saves each batch's checkpoint in the same
//! transaction; the naive one (`Guard::Naive`) saves it in its own transaction after the batch
//! commits. The checkpoint table holds the delivery-sequence index as `seq`; a restart reads
//! it back and carries on from there.
//!
//! Properties (each its own test; SQLite always, PostgreSQL with fewer cases when
//! `CQRS_BENCH_TEST_PG` is set):
//! 1. the SQL read models equal the pure fold of the committed log;
//! 2. they equal the truth computed from the normalized tables;
//! 3. applying any event a second time changes nothing; rebuilding twice equals rebuilding
//!    once; rebuilding one projection leaves the others untouched and ends equal.
//!
//! The negative control runs property 1 and 2 against the naive applier with a fixed RNG seed
//! and asserts that proptest finds a failure and shrinks it to a small history.
//!
//! The plan is harsher than any real log: a duplicate may share a batch with its original, and
//! the merge may deliver an event before the `ProductAdded` of a product it mentions. The
//! `duplicate_inside_one_batch_*` and `state_before_product_added_*` tests pin both cases on a
//! minimal hand-made delivery. `CQRS_BENCH_STRICT_FAULTS=0` softens the plan to what a real log
//! can produce (a batch never holds an event twice; products before their mentions).
//!
//! Case counts: see `SQLITE_CASES`/`PG_CASES`; `PROPTEST_CASES` replaces them when set.
//! Failing cases are saved in `proptest-regressions/convergence.txt` and replayed first.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::{cleanup, pg_url, sqlite_url, unique_schema};
use cqrs_bench::backend::cqrs_async;
use cqrs_bench::backend::event_sourced;
use cqrs_bench::backend::{prepare, Backend, BackendOptions, ExecError};
use cqrs_bench::dataset::{DatasetSpec, START_AT};
use cqrs_bench::db::{Db, DbUrl};
use cqrs_bench::domain::{Command, Event, OrderLine, MICROS_PER_DAY};
use cqrs_bench::projection::event_source::{read_log, Position};
use cqrs_bench::projection::fold::fold;
use cqrs_bench::projection::read_store::{read_checkpoints, reset_read_models, save_checkpoint};
use cqrs_bench::projection::sql::{apply_batch, Delivered, Guard};
use cqrs_bench::projection::truth::{load, Source};
use cqrs_bench::projection::{diff, ProjectionName, ReadModels};
use cqrs_bench::verify::VerifyReport;
use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};

// ---------------------------------------------------------------------------------------------
// The dataset and the command histories
// ---------------------------------------------------------------------------------------------

const PRODUCTS: i64 = 6;
const USERS: i64 = 4;
const SEEDED_ORDERS: i64 = 8;

/// Tiny on purpose: ids 1..=6 products, 1..=4 users, 1..=8 orders.
fn spec() -> DatasetSpec {
    DatasetSpec {
        categories: 2,
        products: PRODUCTS,
        users: USERS,
        orders: SEEDED_ORDERS,
        reviews: 8,
        price_changes: 3,
        days: 2,
        extra_product_indexes: 0,
    }
}

/// Which order a pay/ship/cancel refers to.
#[derive(Clone, Debug)]
enum OrderRef {
    /// A seeded order, 1..=8.
    Seeded(i64),
    /// The k-th most recent order placed earlier in the history (seeded order 1 if none).
    Recent(usize),
}

/// One command of a history, with ids and times filled in at execution (so removing a command
/// while shrinking leaves a valid history).
#[derive(Clone, Debug)]
enum Cmd {
    Place {
        user: i64,
        lines: Vec<(i64, i64)>,
        day: i64,
    },
    Pay(OrderRef),
    Ship(OrderRef),
    Cancel(OrderRef),
    Review {
        product: i64,
        user: i64,
        rating: i64,
    },
    Price {
        product: i64,
        cents: i64,
    },
    Restock {
        product: i64,
        qty: i64,
    },
}

fn order_ref() -> impl Strategy<Value = OrderRef> {
    prop_oneof![
        1 => (1..=SEEDED_ORDERS).prop_map(OrderRef::Seeded),
        3 => (0usize..4).prop_map(OrderRef::Recent),
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    // Mostly small quantities; now and then one that runs out of stock (a domain rejection).
    let qty = prop_oneof![9 => 1i64..=4, 1 => 300i64..=900];
    prop_oneof![
        4 => (1..=USERS, prop::collection::vec((1..=PRODUCTS, qty), 1..=3), 0i64..3)
            .prop_map(|(user, lines, day)| Cmd::Place { user, lines, day }),
        2 => order_ref().prop_map(Cmd::Pay),
        1 => order_ref().prop_map(Cmd::Ship),
        1 => order_ref().prop_map(Cmd::Cancel),
        3 => (1..=PRODUCTS, 1..=USERS, 1i64..=5)
            .prop_map(|(product, user, rating)| Cmd::Review { product, user, rating }),
        1 => (1..=PRODUCTS, 100i64..20_000).prop_map(|(product, cents)| Cmd::Price { product, cents }),
        1 => (1..=PRODUCTS, 1i64..=50).prop_map(|(product, qty)| Cmd::Restock { product, qty }),
    ]
}

/// Tens to ~150 commands; shrinking removes commands.
fn history() -> impl Strategy<Value = Vec<Cmd>> {
    prop::collection::vec(cmd(), 0..=150)
}

/// The commands a history stands for: new ids are `1_000 + index`, times follow the index.
fn commands(history: &[Cmd]) -> Vec<Command> {
    let mut placed: Vec<i64> = Vec::new();
    let mut out = Vec::with_capacity(history.len());
    for (i, c) in history.iter().enumerate() {
        let id = 1_000 + i as i64;
        let at = START_AT + (i as i64 + 1) * 1_000_000;
        let order = |r: &OrderRef| match r {
            OrderRef::Seeded(o) => *o,
            OrderRef::Recent(k) => placed.iter().rev().nth(*k).copied().unwrap_or(1),
        };
        let command = match c {
            Cmd::Place { user, lines, day } => Command::PlaceOrder {
                order_id: id,
                user_id: *user,
                lines: lines
                    .iter()
                    .map(|&(product_id, qty)| OrderLine { product_id, qty })
                    .collect(),
                at: at + day * MICROS_PER_DAY,
            },
            Cmd::Pay(r) => Command::PayOrder {
                order_id: order(r),
                at,
            },
            Cmd::Ship(r) => Command::ShipOrder {
                order_id: order(r),
                at,
            },
            Cmd::Cancel(r) => Command::CancelOrder {
                order_id: order(r),
                at,
            },
            Cmd::Review {
                product,
                user,
                rating,
            } => Command::AddReview {
                review_id: id,
                product_id: *product,
                user_id: *user,
                rating: *rating,
                at,
            },
            Cmd::Price { product, cents } => Command::ChangePrice {
                change_id: id,
                product_id: *product,
                cents: *cents,
                at,
            },
            Cmd::Restock { product, qty } => Command::Restock {
                product_id: *product,
                qty: *qty,
                at,
            },
        };
        if let Cmd::Place { .. } = c {
            placed.push(id);
        }
        out.push(command);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The fault plan
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultKind {
    /// The batch's transaction is rolled back (lost); restart from the stored checkpoint.
    CrashBeforeCommit,
    /// The batch committed, then the process died before the checkpoint was saved (a no-op
    /// where the checkpoint commits with the batch); restart from the stored checkpoint.
    CrashAfterCommit,
    /// `reset_read_models` for all, then delivery restarts from the start.
    Rebuild,
}

#[derive(Clone, Debug)]
struct Fault {
    /// Where, in per mille of the expected number of batches.
    at: u16,
    kind: FaultKind,
}

#[derive(Clone, Debug)]
struct FaultPlan {
    /// A random merge of the per-stream subsequences; `None`: log order.
    interleave: Option<Interleave>,
    /// Share of events delivered a second time, in percent.
    dup_pct: u32,
    dup_seed: u64,
    /// Batch sizes, cycled.
    batches: Vec<usize>,
    faults: Vec<Fault>,
}

#[derive(Clone, Debug)]
struct Interleave {
    seed: u64,
    /// How far (in log positions) an event may be pushed back before the streams are merged.
    window: u32,
}

fn fault() -> impl Strategy<Value = Fault> {
    (
        0u16..1000,
        prop_oneof![
            Just(FaultKind::CrashBeforeCommit),
            Just(FaultKind::CrashAfterCommit),
            Just(FaultKind::Rebuild),
        ],
    )
        .prop_map(|(at, kind)| Fault { at, kind })
}

/// A fault plan whose duplicate share is drawn from `dup_pct` (percent).
fn fault_plan(dup_pct: impl Strategy<Value = u32>) -> impl Strategy<Value = FaultPlan> {
    (
        prop::option::of(
            (any::<u64>(), 1u32..=256).prop_map(|(seed, window)| Interleave { seed, window }),
        ),
        dup_pct,
        any::<u64>(),
        prop::collection::vec(1usize..=50, 1..=4),
        prop::collection::vec(fault(), 0..=4),
    )
        .prop_map(
            |(interleave, dup_pct, dup_seed, batches, faults)| FaultPlan {
                interleave,
                dup_pct,
                dup_seed,
                batches,
                faults,
            },
        )
}

/// The default plan: no duplicates in a quarter of the cases, otherwise 0–50 %.
fn any_fault_plan() -> impl Strategy<Value = FaultPlan> {
    fault_plan(prop_oneof![1 => Just(0u32), 3 => 0u32..=50])
}

/// A hash of (seed, position): each decision depends on its own position only, so removing
/// a command while shrinking leaves the decisions for earlier events as they were.
fn mix(seed: u64, i: usize) -> u64 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether the plan may break a guarantee a batch read from the log always has: `batch` lets a
/// duplicate share a batch with its original, `causal` lets the merge deliver an event before
/// the `ProductAdded` of a product it mentions. Both by default; `CQRS_BENCH_STRICT_FAULTS=0`
/// keeps the guarantees, `=batch` or `=causal` breaks only one.
fn strict(what: &str) -> bool {
    match std::env::var("CQRS_BENCH_STRICT_FAULTS") {
        Err(_) => true,
        Ok(v) => v == "1" || v.split(',').any(|w| w.trim() == what),
    }
}

/// The products an event mentions (its states and its lines).
fn products_of(e: &Event) -> Vec<i64> {
    let mut out: Vec<i64> = e.product_states().iter().map(|s| s.product_id).collect();
    match e {
        Event::OrderPlaced { lines, .. } | Event::OrderCancelled { lines, .. } => {
            out.extend(lines.iter().map(|l| l.product_id))
        }
        Event::ReviewAdded { product_id, .. } | Event::PriceChanged { product_id, .. } => {
            out.push(*product_id)
        }
        _ => {}
    }
    out
}

/// The sequence the plan delivers, before batching and crashes.
struct DeliveryOrder {
    items: Vec<Delivered>,
    /// Events delivered a second time by the plan (copies in `items`).
    duplicates: usize,
    /// Positions where the merged order differs from the log order.
    displaced: usize,
}

fn delivery_order(log: &[Delivered], plan: &FaultPlan) -> DeliveryOrder {
    let merged: Vec<&Delivered> = match &plan.interleave {
        None => log.iter().collect(),
        Some(Interleave { seed, window }) => {
            // Each event gets a delivery key: its log position pushed back by a random amount
            // below `window`, but never before the previous event of its stream (streams
            // stay in order) nor, unless strict, before the creation (`ProductAdded`) of a
            // product it mentions. Sorting by (key, position) is a merge of the streams.
            let causal = !strict("causal");
            let mut stream_key: HashMap<String, u64> = HashMap::new();
            let mut created: HashMap<i64, u64> = HashMap::new();
            let mut keyed: Vec<(u64, usize)> = Vec::with_capacity(log.len());
            for (i, d) in log.iter().enumerate() {
                let mut key = i as u64 + mix(*seed, i) % u64::from(*window);
                let stream = d.event.stream();
                if let Some(prev) = stream_key.get(&stream) {
                    key = key.max(*prev);
                }
                if causal {
                    for p in products_of(&d.event) {
                        if let Some(c) = created.get(&p) {
                            key = key.max(*c);
                        }
                    }
                }
                if let Event::ProductAdded { product_id, .. } = &d.event {
                    created.insert(*product_id, key);
                }
                stream_key.insert(stream, key);
                keyed.push((key, i));
            }
            keyed.sort_unstable();
            keyed.into_iter().map(|(_, i)| &log[i]).collect()
        }
    };
    let displaced = merged
        .iter()
        .zip(log)
        .filter(|(m, l)| m.seq != l.seq)
        .count();
    // A duplicated event is delivered again 1..=100 positions later (before original position
    // `j`, or at the end when `j >= n`).
    let n = merged.len();
    let mut extra: Vec<Vec<&Delivered>> = vec![Vec::new(); n + 1];
    let mut duplicates = 0;
    for (i, d) in merged.iter().enumerate() {
        let h = mix(plan.dup_seed, i);
        if ((h % 100) as u32) < plan.dup_pct {
            let j = (i + 1 + ((h >> 8) % 100) as usize).min(n);
            extra[j].push(d);
            duplicates += 1;
        }
    }
    let mut items = Vec::with_capacity(n + duplicates);
    for (j, copies) in extra.iter().enumerate() {
        items.extend(copies.iter().map(|d| (*d).clone()));
        if j < n {
            items.push(merged[j].clone());
        }
    }
    DeliveryOrder {
        items,
        duplicates,
        displaced,
    }
}

/// The events the plan's delivery order holds twice, for reports.
fn delivered_twice(log: &[Delivered], plan: &FaultPlan) -> Vec<String> {
    let mut seen = HashSet::new();
    delivery_order(log, plan)
        .items
        .iter()
        .filter(|d| !seen.insert(d.seq))
        .map(|d| format!("seq {} ({}, {})", d.seq, d.event.kind(), d.event.stream()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The delivery harness
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applier {
    /// `Guard::Ledger`, checkpoint in the batch's transaction.
    Shipped,
    /// `Guard::Naive`, checkpoint in its own transaction after the batch commits.
    Naive,
}

/// What a plan actually did (faults that fired, not just planned).
#[derive(Clone, Debug, Default)]
struct Trace {
    commands: usize,
    rejected: usize,
    log_events: usize,
    delivered: usize,
    duplicates: usize,
    displaced: usize,
    batches: usize,
    crashes_before_commit: usize,
    crashes_after_commit: usize,
    /// Events delivered again because a crash after commit lost their checkpoint.
    redelivered: usize,
    rebuilds: usize,
}

impl Trace {
    fn add_to(&self, s: &Totals) {
        s.cases.fetch_add(1, Ordering::Relaxed);
        s.commands
            .fetch_add(self.commands as u64, Ordering::Relaxed);
        s.rejected
            .fetch_add(self.rejected as u64, Ordering::Relaxed);
        s.log_events
            .fetch_add(self.log_events as u64, Ordering::Relaxed);
        s.events.fetch_add(self.delivered as u64, Ordering::Relaxed);
        s.duplicates
            .fetch_add(self.duplicates as u64, Ordering::Relaxed);
        s.interleaved
            .fetch_add((self.displaced > 0) as u64, Ordering::Relaxed);
        s.crashes.fetch_add(
            (self.crashes_before_commit + self.crashes_after_commit) as u64,
            Ordering::Relaxed,
        );
        s.rebuilds
            .fetch_add(self.rebuilds as u64, Ordering::Relaxed);
    }
}

type R<T> = Result<T, String>;

fn sql<T>(what: &str) -> impl FnOnce(T) -> String + '_
where
    T: fmt::Display,
{
    move |e| format!("{what}: {e}")
}

/// The stored checkpoint: the delivery index every read model has reached (the least).
async fn stored_checkpoint(db: &Db) -> R<usize> {
    let mut conn = db.write.acquire().await.map_err(sql("acquire"))?;
    let cps = read_checkpoints(&mut conn)
        .await
        .map_err(sql("read checkpoints"))?;
    let seq = ProjectionName::ALL
        .iter()
        .map(|p| cps.get(p).map_or(0, |c| c.seq))
        .min()
        .unwrap_or(0);
    Ok(seq as usize)
}

async fn save_all(conn: &mut sqlx::AnyConnection, next: usize, applied: usize) -> R<()> {
    for p in ProjectionName::ALL {
        save_checkpoint(
            conn,
            p,
            Position {
                xid: 0,
                seq: next as i64,
            },
            applied as i64,
            0,
        )
        .await
        .map_err(sql("save checkpoint"))?;
    }
    Ok(())
}

/// Plays `plan` against the read models (which must be empty, checkpoints at 0).
async fn play(db: &Db, log: &[Delivered], plan: &FaultPlan, applier: Applier) -> R<Trace> {
    let order = delivery_order(log, plan);
    let items = &order.items;
    let mut trace = Trace {
        log_events: log.len(),
        duplicates: order.duplicates,
        displaced: order.displaced,
        ..Trace::default()
    };
    // Fault positions in batches; two faults never share a batch.
    let avg = (plan.batches.iter().sum::<usize>() / plan.batches.len()).max(1);
    let expected_batches = items.len().div_ceil(avg).max(1);
    let mut wanted: Vec<(usize, FaultKind)> = plan
        .faults
        .iter()
        .map(|f| (f.at as usize * expected_batches / 1000, f.kind))
        .collect();
    wanted.sort_by_key(|(at, _)| *at);
    let mut faults: BTreeMap<usize, FaultKind> = BTreeMap::new();
    let mut last: Option<usize> = None;
    for (at, kind) in wanted {
        let at = last.map_or(at, |l| at.max(l + 1));
        faults.insert(at, kind);
        last = Some(at);
    }

    let guard = match applier {
        Applier::Shipped => Guard::Ledger,
        Applier::Naive => Guard::Naive,
    };
    let strict_batches = strict("batch");
    let mut next = stored_checkpoint(db).await?;
    let mut step = 0usize;
    while next < items.len() {
        let fault = faults.get(&step).copied();
        step += 1;
        if fault == Some(FaultKind::Rebuild) {
            reset_read_models(db, &ProjectionName::ALL)
                .await
                .map_err(sql("reset"))?;
            trace.rebuilds += 1;
            next = stored_checkpoint(db).await?;
            continue;
        }
        let size = plan.batches[(step - 1) % plan.batches.len()];
        let mut end = (next + size).min(items.len());
        if !strict_batches {
            // A batch read from the log never holds an event twice: a copy that would share
            // the batch with its original starts the next batch instead.
            let mut seen = HashSet::new();
            if let Some(k) = items[next..end].iter().position(|d| !seen.insert(d.seq)) {
                end = next + k;
            }
        }
        let batch = &items[next..end];
        let mut conn = db.write.acquire().await.map_err(sql("acquire"))?;
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(sql("begin"))?;
        apply_batch(&mut tx, batch, &ProjectionName::ALL, guard)
            .await
            .map_err(sql("apply batch"))?;
        trace.batches += 1;
        trace.delivered += batch.len();
        if applier == Applier::Shipped {
            save_all(&mut tx, end, batch.len()).await?;
        }
        if fault == Some(FaultKind::CrashBeforeCommit) {
            tx.rollback().await.map_err(sql("rollback"))?;
            drop(conn);
            trace.crashes_before_commit += 1;
            next = stored_checkpoint(db).await?;
            continue;
        }
        tx.commit().await.map_err(sql("commit"))?;
        if fault == Some(FaultKind::CrashAfterCommit) {
            drop(conn);
            trace.crashes_after_commit += 1;
            let restart = stored_checkpoint(db).await?;
            trace.redelivered += end.saturating_sub(restart).min(batch.len());
            next = restart;
            continue;
        }
        if applier == Applier::Naive {
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .map_err(sql("begin"))?;
            save_all(&mut tx, end, batch.len()).await?;
            tx.commit().await.map_err(sql("commit"))?;
        }
        next = end;
    }
    Ok(trace)
}

/// Replays `log` (no faults) into `projections`, checkpoint in the same transaction.
async fn replay(db: &Db, log: &[Delivered], projections: &[ProjectionName], batch: usize) -> R<()> {
    let mut conn = db.write.acquire().await.map_err(sql("acquire"))?;
    for (k, chunk) in log.chunks(batch.max(1)).enumerate() {
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(sql("begin"))?;
        apply_batch(&mut tx, chunk, projections, Guard::Ledger)
            .await
            .map_err(sql("apply batch"))?;
        for p in projections {
            let next = ((k + 1) * batch).min(log.len()) as i64;
            save_checkpoint(&mut tx, *p, Position { xid: 0, seq: next }, 0, 0)
                .await
                .map_err(sql("save checkpoint"))?;
        }
        tx.commit().await.map_err(sql("commit"))?;
    }
    Ok(())
}

async fn state(db: &Db, source: Source) -> R<ReadModels> {
    let mut conn = db.write.acquire().await.map_err(sql("acquire"))?;
    load(&mut conn, source).await.map_err(sql("load"))
}

/// `Err` naming the read models and rows that differ.
fn same(what: &str, actual: &ReadModels, expected: &ReadModels) -> R<()> {
    let report = VerifyReport::compare(actual, expected);
    if report.ok() {
        return Ok(());
    }
    let mut msg = format!("{what}: {} rows differ", report.mismatches);
    for m in report.models.iter().filter(|m| m.mismatches > 0) {
        msg.push_str(&format!(
            "\n  {} ({} rows differ): {}",
            m.read_model.name(),
            m.mismatches,
            m.first_diffs.join("; ")
        ));
    }
    Err(msg)
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
enum Target {
    Sqlite,
    Postgres(DbUrl),
    /// The `event-sourced` backend's database: the log is its event store.
    EventSourcedSqlite,
    EventSourcedPostgres(DbUrl),
}

/// A seeded database with a history executed and the read models emptied for delivery.
struct Setup {
    db: Db,
    backend: Backend,
    log: Vec<Delivered>,
    rejected: usize,
    _dir: Option<tempfile::TempDir>,
}

async fn set_up(target: &Target, dataset_seed: u64, history: &[Cmd]) -> R<Setup> {
    let (dir, url, schema) = match target {
        Target::Sqlite | Target::EventSourcedSqlite => {
            let (dir, url) = sqlite_url("convergence");
            (Some(dir), url, "cqrs_bench".to_string())
        }
        Target::Postgres(url) | Target::EventSourcedPostgres(url) => {
            (None, url.clone(), unique_schema("conv"))
        }
    };
    let kind = match target {
        Target::EventSourcedSqlite | Target::EventSourcedPostgres(_) => event_sourced::KIND,
        _ => cqrs_async::KIND,
    };
    let (db, _) = prepare(&url, &schema, kind, dataset_seed, &spec(), 2)
        .await
        .map_err(sql("seed"))?;
    let backend = Backend::open(
        kind,
        db.clone(),
        BackendOptions {
            run_projector: false,
            ..BackendOptions::default()
        },
    )
    .await
    .map_err(sql("open backend"))?;
    let mut rejected = 0;
    for c in commands(history) {
        match backend.execute(&c).await {
            Ok(_) => {}
            Err(ExecError::Domain(_)) => rejected += 1,
            Err(e) => return Err(format!("executing {c:?}: {e}")),
        }
    }
    let log = if kind == event_sourced::KIND {
        cqrs_bench::projection::event_store::read_store(&db).await
    } else {
        read_log(&db).await
    }
    .map_err(sql("read log"))?;
    reset_read_models(&db, &ProjectionName::ALL)
        .await
        .map_err(sql("reset"))?;
    Ok(Setup {
        db,
        backend,
        log,
        rejected,
        _dir: dir,
    })
}

async fn tear_down(setup: Setup) {
    let Setup { db, backend, .. } = setup;
    backend.shutdown().await;
    if db.is_pg() {
        cleanup(&db).await;
    } else {
        db.close().await;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Property {
    /// (1) SQL read models == fold of the committed log.
    Fold,
    /// (2) SQL read models == truth from the normalized tables.
    Truth,
    /// (1) and (2) at once (the negative control).
    FoldAndTruth,
}

/// Extra choices for property 3.
#[derive(Clone, Debug)]
struct Rebuilds {
    /// Events applied a second time, one by one (indices into the log, modulo its length).
    again: Vec<u16>,
    /// The projection rebuilt on its own.
    one: usize,
    /// Batch size of the rebuilds.
    batch: usize,
}

fn rebuilds() -> impl Strategy<Value = Rebuilds> {
    (
        prop::collection::vec(any::<u16>(), 1..=4),
        0usize..ProjectionName::ALL.len(),
        1usize..=60,
    )
        .prop_map(|(again, one, batch)| Rebuilds { again, one, batch })
}

async fn check_convergence(
    target: &Target,
    applier: Applier,
    property: Property,
    (dataset_seed, history, plan): &(u64, Vec<Cmd>, FaultPlan),
) -> R<Trace> {
    let setup = set_up(target, *dataset_seed, history).await?;
    let result = async {
        let mut trace = play(&setup.db, &setup.log, plan, applier).await?;
        trace.commands = history.len();
        trace.rejected = setup.rejected;
        let actual = state(&setup.db, Source::ReadTables).await?;
        if matches!(property, Property::Fold | Property::FoldAndTruth) {
            let oracle = fold(setup.log.iter().map(|d| &d.event));
            same("SQL read models vs fold of the log", &actual, &oracle)?;
        }
        if matches!(property, Property::Truth | Property::FoldAndTruth) {
            let truth = state(&setup.db, Source::Truth).await?;
            same("SQL read models vs truth", &actual, &truth)?;
        }
        Ok(trace)
    }
    .await;
    tear_down(setup).await;
    result
}

/// Property 3, after the plan has converged.
async fn check_idempotence(
    target: &Target,
    (dataset_seed, history, plan): &(u64, Vec<Cmd>, FaultPlan),
    rb: &Rebuilds,
) -> R<Trace> {
    let setup = set_up(target, *dataset_seed, history).await?;
    let result = async {
        let db = &setup.db;
        let log = &setup.log;
        let mut trace = play(db, log, plan, Applier::Shipped).await?;
        trace.commands = history.len();
        trace.rejected = setup.rejected;
        let converged = state(db, Source::ReadTables).await?;
        same(
            "after the plan (vs fold)",
            &converged,
            &fold(log.iter().map(|d| &d.event)),
        )?;

        // Any event a second time, alone in its batch, changes nothing.
        let mut conn = db.write.acquire().await.map_err(sql("acquire"))?;
        for &k in &rb.again {
            let d = &log[k as usize % log.len()];
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .map_err(sql("begin"))?;
            apply_batch(
                &mut tx,
                std::slice::from_ref(d),
                &ProjectionName::ALL,
                Guard::Ledger,
            )
            .await
            .map_err(sql("apply"))?;
            tx.commit().await.map_err(sql("commit"))?;
            let now = load(&mut conn, Source::ReadTables)
                .await
                .map_err(sql("load"))?;
            same(
                &format!("after applying event {} ({}) again", d.seq, d.event.kind()),
                &now,
                &converged,
            )?;
        }
        // The whole log a second time, in batches, changes nothing either.
        drop(conn);
        replay(db, log, &ProjectionName::ALL, rb.batch).await?;
        same(
            "after re-delivering the whole log",
            &state(db, Source::ReadTables).await?,
            &converged,
        )?;

        // Rebuilding twice equals rebuilding once (and the converged state).
        reset_read_models(db, &ProjectionName::ALL)
            .await
            .map_err(sql("reset"))?;
        replay(db, log, &ProjectionName::ALL, rb.batch).await?;
        let once = state(db, Source::ReadTables).await?;
        reset_read_models(db, &ProjectionName::ALL)
            .await
            .map_err(sql("reset"))?;
        replay(db, log, &ProjectionName::ALL, rb.batch).await?;
        let twice = state(db, Source::ReadTables).await?;
        same("rebuilt twice vs once", &twice, &once)?;
        same("rebuilt vs converged", &once, &converged)?;

        // Rebuilding one projection leaves the others untouched and ends equal.
        let p = ProjectionName::ALL[rb.one];
        reset_read_models(db, &[p])
            .await
            .map_err(sql("reset one"))?;
        let during = state(db, Source::ReadTables).await?;
        let d = diff(&during, &converged);
        for q in ProjectionName::ALL.iter().filter(|q| **q != p) {
            if !d[q].is_empty() {
                return Err(format!(
                    "resetting {} changed {}: {}",
                    p.name(),
                    q.name(),
                    d[q][0]
                ));
            }
        }
        let emptied = diff(&during, &ReadModels::default());
        if !emptied[&p].is_empty() {
            return Err(format!(
                "reset left rows in {}: {}",
                p.name(),
                emptied[&p][0]
            ));
        }
        replay(db, log, &[p], rb.batch).await?;
        same(
            &format!("after rebuilding {} alone", p.name()),
            &state(db, Source::ReadTables).await?,
            &converged,
        )?;
        Ok(trace)
    }
    .await;
    tear_down(setup).await;
    result
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RT.with(|rt| rt.block_on(f))
}

/// Default cases per property on SQLite (together ≥ 1,000 per `cargo test`).
const SQLITE_CASES: [u32; 3] = [400, 400, 250];
/// Default cases per property on PostgreSQL.
const PG_CASES: u32 = 8;
/// The event-sourced backend's store as the log: properties 1 and 3 (there is no normalized
/// truth for property 2).
const ES_SQLITE_CASES: [u32; 2] = [200, 100];

/// Writes a line to stderr past the test harness's capture (which only takes `print!` and
/// `eprint!`), so case counts show in a plain `cargo test`.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn env_cases() -> Option<u32> {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
}

fn config(default_cases: u32) -> Config {
    Config {
        cases: env_cases().unwrap_or(default_cases),
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/convergence.txt",
        ))),
        ..Config::default()
    }
}

#[derive(Default)]
struct Totals {
    cases: AtomicU64,
    commands: AtomicU64,
    rejected: AtomicU64,
    log_events: AtomicU64,
    events: AtomicU64,
    duplicates: AtomicU64,
    interleaved: AtomicU64,
    crashes: AtomicU64,
    rebuilds: AtomicU64,
}

impl Totals {
    fn line(&self, name: &str, started: Instant) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "convergence: {name}: {} cases passed in {:.1} s ({} commands, {} rejected; {} events \
             logged, {} delivered, {} duplicates, {} crashes, {} rebuilds, {} cases interleaved)",
            g(&self.cases),
            started.elapsed().as_secs_f64(),
            g(&self.commands),
            g(&self.rejected),
            g(&self.log_events),
            g(&self.events),
            g(&self.duplicates),
            g(&self.crashes),
            g(&self.rebuilds),
            g(&self.interleaved),
        )
    }
}

fn input() -> impl Strategy<Value = (u64, Vec<Cmd>, FaultPlan)> {
    (0u64..1_000, history(), any_fault_plan())
}

fn run_property(name: &str, target: Target, property: Property, cases: u32) {
    let started = Instant::now();
    let totals = Totals::default();
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&input(), |case| {
        let trace = block_on(check_convergence(
            &target,
            Applier::Shipped,
            property,
            &case,
        ))
        .map_err(TestCaseError::fail)?;
        trace.add_to(&totals);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    say(&totals.line(name, started));
}

fn run_idempotence(name: &str, target: Target, cases: u32) {
    let started = Instant::now();
    let totals = Totals::default();
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&(input(), rebuilds()), |(case, rb)| {
        let trace =
            block_on(check_idempotence(&target, &case, &rb)).map_err(TestCaseError::fail)?;
        trace.add_to(&totals);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    say(&totals.line(name, started));
}

fn pg_cases() -> u32 {
    env_cases().map_or(PG_CASES, |n| (n / 8).max(1))
}

#[test]
fn read_models_equal_fold_sqlite() {
    run_property(
        "(1) SQL == fold [sqlite]",
        Target::Sqlite,
        Property::Fold,
        SQLITE_CASES[0],
    );
}

#[test]
fn read_models_equal_truth_sqlite() {
    run_property(
        "(2) SQL == truth [sqlite]",
        Target::Sqlite,
        Property::Truth,
        SQLITE_CASES[1],
    );
}

#[test]
fn reapply_and_rebuild_change_nothing_sqlite() {
    run_idempotence(
        "(3) re-apply/rebuild [sqlite]",
        Target::Sqlite,
        SQLITE_CASES[2],
    );
}

#[test]
fn read_models_equal_fold_postgres() {
    if let Some(url) = pg_url("read_models_equal_fold_postgres") {
        run_property(
            "(1) SQL == fold [postgres]",
            Target::Postgres(url),
            Property::Fold,
            pg_cases(),
        );
    }
}

#[test]
fn read_models_equal_truth_postgres() {
    if let Some(url) = pg_url("read_models_equal_truth_postgres") {
        run_property(
            "(2) SQL == truth [postgres]",
            Target::Postgres(url),
            Property::Truth,
            pg_cases(),
        );
    }
}

#[test]
fn reapply_and_rebuild_change_nothing_postgres() {
    if let Some(url) = pg_url("reapply_and_rebuild_change_nothing_postgres") {
        run_idempotence(
            "(3) re-apply/rebuild [postgres]",
            Target::Postgres(url),
            pg_cases(),
        );
    }
}

#[test]
fn read_models_equal_fold_event_sourced_sqlite() {
    run_property(
        "(1) SQL == fold of the event store [sqlite, event-sourced]",
        Target::EventSourcedSqlite,
        Property::Fold,
        ES_SQLITE_CASES[0],
    );
}

#[test]
fn reapply_and_rebuild_change_nothing_event_sourced_sqlite() {
    run_idempotence(
        "(3) re-apply/rebuild [sqlite, event-sourced]",
        Target::EventSourcedSqlite,
        ES_SQLITE_CASES[1],
    );
}

#[test]
fn read_models_equal_fold_event_sourced_postgres() {
    if let Some(url) = pg_url("read_models_equal_fold_event_sourced_postgres") {
        run_property(
            "(1) SQL == fold of the event store [postgres, event-sourced]",
            Target::EventSourcedPostgres(url),
            Property::Fold,
            pg_cases(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The negative control
// ---------------------------------------------------------------------------------------------

/// Properties 1 and 2 against the naive applier must fail, every time: a fixed RNG seed, a
/// plan where duplicates are always present (10–50 %), and enough cases. The counterexample
/// must shrink to a small history.
#[test]
fn naive_applier_is_caught() {
    let started = Instant::now();
    let config = Config {
        cases: 64,
        failure_persistence: None,
        // Each shrink step is a whole case; bound the time spent.
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[0x4E; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (0u64..1_000, history(), fault_plan(10u32..=50));
    let runs = AtomicU64::new(0);
    let first_failure = AtomicU64::new(0);
    let result = runner.run(&strategy, |case| {
        runs.fetch_add(1, Ordering::Relaxed);
        block_on(check_convergence(
            &Target::Sqlite,
            Applier::Naive,
            Property::FoldAndTruth,
            &case,
        ))
        .map(|_| ())
        .map_err(|e| {
            let n = runs.load(Ordering::Relaxed);
            let _ = first_failure.compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed);
            TestCaseError::fail(e)
        })
    });
    let (reason, (dataset_seed, history, plan)) = match result {
        Ok(()) => panic!(
            "the naive applier passed {} cases: the convergence properties cannot catch it",
            runs.load(Ordering::Relaxed)
        ),
        Err(TestError::Abort(why)) => panic!("negative control aborted: {why}"),
        Err(TestError::Fail(reason, value)) => (reason, value),
    };
    // Re-run the minimal case to show what its plan actually did.
    let (trace, twice) = block_on(async {
        let setup = set_up(&Target::Sqlite, dataset_seed, &history).await?;
        let t = play(&setup.db, &setup.log, &plan, Applier::Naive).await;
        let rejected = setup.rejected;
        let twice = delivered_twice(&setup.log, &plan);
        tear_down(setup).await;
        t.map(|t| {
            (
                Trace {
                    commands: history.len(),
                    rejected,
                    ..t
                },
                twice,
            )
        })
    })
    .expect("re-running the shrunk case");
    say(&format!(
        "convergence: negative control: the naive applier was caught at case {} of {}; \
         {} runs with shrinking, {:.1} s\nshrunk counterexample:\n  dataset seed {dataset_seed}\n  history \
         ({} commands): {:?}\n  commands: {:?}\n  plan: {:?}\n  what the plan did: {:?}\n  \
         delivered twice by the plan: {}\n  failure: {}",
        first_failure.load(Ordering::Relaxed),
        runner.config().cases,
        runs.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        history.len(),
        history,
        commands(&history),
        plan,
        trace,
        twice.join(", "),
        reason,
    ));
    assert!(
        history.len() <= 3,
        "the counterexample did not shrink to a small history: {} commands",
        history.len()
    );
    assert!(
        trace.duplicates + trace.redelivered > 0,
        "the shrunk plan should deliver something twice (duplicate or crash after commit): \
         {trace:?}"
    );
}

/// The same negative control on the event-sourced backend's store (property 1 alone: there is
/// no normalized truth): the naive applier must be caught there too.
#[test]
fn naive_applier_is_caught_on_the_event_store() {
    let config = Config {
        cases: 64,
        failure_persistence: None,
        max_shrink_iters: 50,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[0x4E; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (0u64..1_000, history(), fault_plan(10u32..=50));
    let runs = AtomicU64::new(0);
    let result = runner.run(&strategy, |case| {
        runs.fetch_add(1, Ordering::Relaxed);
        block_on(check_convergence(
            &Target::EventSourcedSqlite,
            Applier::Naive,
            Property::Fold,
            &case,
        ))
        .map(|_| ())
        .map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => panic!(
            "the naive applier passed {} cases on the event store: the properties cannot catch it",
            runs.load(Ordering::Relaxed)
        ),
        Err(TestError::Abort(why)) => panic!("negative control aborted: {why}"),
        Err(TestError::Fail(reason, (_, history, _))) => say(&format!(
            "convergence: negative control on the event store: the naive applier was caught \
             ({} runs with shrinking; shrunk to {} commands): {reason}",
            runs.load(Ordering::Relaxed),
            history.len()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Two deliveries no real log produces but a faulty transport can: pinned on minimal cases.
// ---------------------------------------------------------------------------------------------

/// An event present twice in one batch is counted once.
#[test]
fn duplicate_inside_one_batch_counts_once() {
    block_on(async {
        let setup = set_up(&Target::Sqlite, 0, &[]).await.expect("set up");
        let review = setup
            .log
            .iter()
            .find(|d| matches!(d.event, Event::ReviewAdded { .. }))
            .expect("a seeded review")
            .clone();
        let mut batch = setup.log.clone();
        batch.push(review);
        replay(&setup.db, &batch, &ProjectionName::ALL, batch.len())
            .await
            .expect("deliver");
        let actual = state(&setup.db, Source::ReadTables).await.expect("load");
        let oracle = fold(setup.log.iter().map(|d| &d.event));
        let verdict = same("one batch holding a review twice", &actual, &oracle);
        tear_down(setup).await;
        if let Err(e) = verdict {
            panic!("{e}");
        }
    });
}

/// A product's state reported by an order event (another stream) that arrives before the
/// product's `ProductAdded` is kept: the row it creates is filled in by `ProductAdded`.
#[test]
fn state_before_product_added_is_kept() {
    block_on(async {
        let history = [Cmd::Place {
            user: 1,
            lines: vec![(1, 1)],
            day: 0,
        }];
        let setup = set_up(&Target::Sqlite, 0, &history).await.expect("set up");
        // A merge that keeps every stream in order: the new order's only event goes first.
        let mut order = setup.log.clone();
        let placed = order
            .iter()
            .position(|d| {
                matches!(
                    &d.event,
                    Event::OrderPlaced {
                        order_id: 1_000,
                        ..
                    }
                )
            })
            .expect("order 1000 placed");
        let first = order.remove(placed);
        order.insert(0, first);
        replay(&setup.db, &order, &ProjectionName::ALL, 1)
            .await
            .expect("deliver");
        let actual = state(&setup.db, Source::ReadTables).await.expect("load");
        let oracle = fold(setup.log.iter().map(|d| &d.event));
        let verdict = same(
            "order 1000 delivered before product 1 exists",
            &actual,
            &oracle,
        );
        tear_down(setup).await;
        if let Err(e) = verdict {
            panic!("{e}");
        }
    });
}
