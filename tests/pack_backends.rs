//! Workload packs on the real backends (issue [pack]): the shipped packs `ledger`, `crud`,
//! `forum` and `shop` prepared for `normalized`, `cqrs-sync`, `cqrs-async` and `cqrs-broker`
//! (on a `nats-server` of the test's own) on SQLite and PostgreSQL, run from
//! concurrent tasks on sessions, caught up and verified (every read model equal to its truth,
//! the queries' two sides agreeing); a projection broken on purpose (an event counted twice,
//! a field dropped) is caught by verify at the first differing key; a backend that runs no
//! pack is refused before anything is created; on `cqrs-broker`, a relay that republishes
//! and a consumer whose messages come again are applied once. (`matview` and `replica`,
//! PostgreSQL only, are in `pack_alternatives.rs`.)

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::nats::NatsServer;
use common::*;
use cqrs_bench::backend::{cqrs_broker, BackendKind, ExecError, Receipt};
use cqrs_bench::broker::{self, BrokerOptions};
use cqrs_bench::db::schema::{self, Ownership};
use cqrs_bench::db::sql::Param;
use cqrs_bench::db::{DbError, DbUrl, Engine};
use cqrs_bench::pack::backend::{mode_of, prepare, PackBackend, PackBackendOptions, PackMode};
use cqrs_bench::pack::exec::{CompiledPack, Side};
use cqrs_bench::pack::params::Params;
use cqrs_bench::pack::projector::{PackProjector, OUTBOX};
use cqrs_bench::pack::sql::NamedSql;
use cqrs_bench::pack::Pack;
use cqrs_bench::projection::event_source::EventLog;
use cqrs_bench::projection::jetstream::{ConsumerFaults, JetStreamSource};
use cqrs_bench::projection::projector::LagTracker;
use cqrs_bench::verify::verify_pack as verify;
use sqlx::Connection;

const KINDS: [&str; 3] = ["normalized", "cqrs-sync", "cqrs-async"];
const PACKS: [&str; 4] = ["ledger", "crud", "forum", "shop"];
/// Ops per run, spread over this many tasks.
const OPS: u64 = 300;
const TASKS: u64 = 4;
/// The forum's seeded posts.
const FORUM_POSTS: i64 = 200;
/// The shop's seeded products, orders, reviews and price changes.
const SHOP_PRODUCTS: i64 = 40;
const SHOP_ORDERS: i64 = 100;
const SHOP_REVIEWS: i64 = 100;
const SHOP_PRICE_CHANGES: i64 = 20;
/// When the shop's seeded history ends and its workload starts (2026-01-01T00:00:00Z, µs).
const SHOP_START_AT: i64 = 1_767_225_600_000_000;

fn kind(name: &str) -> BackendKind {
    BackendKind::from_name(name).unwrap()
}

fn load(name: &str) -> Pack {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("workloads")
        .join(name);
    Pack::load(&dir).unwrap()
}

/// Small datasets: 20 accounts of 4,000 cents (so some transfers are refused), 50 profiles,
/// a forum of 30 authors, 40 threads (2 of them locked) and 200 posts, a shop of 40
/// products in 4 categories, 30 users, 100 orders, 100 reviews and 20 price changes.
fn sizes(name: &str) -> BTreeMap<String, i64> {
    let sizes: &[(&str, i64)] = match name {
        "ledger" => &[("accounts", 20), ("opening_balance", 4_000)],
        "forum" => &[("authors", 30), ("threads", 40), ("posts", FORUM_POSTS)],
        "shop" => &[
            ("categories", 4),
            ("products", SHOP_PRODUCTS),
            ("users", 30),
            ("orders", SHOP_ORDERS),
            ("reviews", SHOP_REVIEWS),
            ("price_changes", SHOP_PRICE_CHANGES),
        ],
        _ => &[("users", 50)],
    };
    sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Where a test's dataset lives; a PostgreSQL schema is dropped however the test ends.
struct Place {
    url: DbUrl,
    schema: String,
    _dir: Option<tempfile::TempDir>,
    /// The server's URL, to drop `schema` on drop.
    pg: Option<String>,
}

impl Place {
    fn sqlite(name: &str) -> Place {
        let (dir, url) = sqlite_url(name);
        Place {
            url,
            schema: "cqrs_bench".into(),
            _dir: Some(dir),
            pg: None,
        }
    }

    fn postgres(raw: &str, prefix: &str) -> Place {
        Place {
            url: DbUrl::parse(raw).unwrap(),
            schema: unique_schema(prefix),
            _dir: None,
            pg: Some(raw.to_string()),
        }
    }

    fn engine(&self) -> Engine {
        self.url.engine()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let Some(raw) = self.pg.clone() else {
            return;
        };
        let schema = self.schema.clone();
        // Drop runs outside the test's runtime: a runtime of its own, on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                sqlx::any::install_default_drivers();
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&raw).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// What a run did.
#[derive(Default)]
struct Ran {
    committed: u64,
    refused: u64,
    /// PostgreSQL deadlocks between two transfers in opposite directions (the database's
    /// answer, counted as failures by a run).
    deadlocks: u64,
    receipts: Vec<Receipt>,
}

/// How many rows query `q` answers. A point query answers one row; the top-10 lists ten
/// (more than ten products and threads have sales and posts). The shop's product page: the
/// product, up to three price changes and up to four related products; its lists at most 20
/// rows; its daily revenue at least one day and at most the 32 of 20424..=20455 (a quarter of the 30 days' seeded orders fall in
/// the last week, and most of them are not cancelled).
fn expected_rows(q: &str) -> std::ops::RangeInclusive<usize> {
    match q {
        _ if q.starts_with("hot_") || q.starts_with("top_") => 10..=10,
        "product_page" => 1..=8,
        "user_orders" | "search" => 0..=20,
        "daily_revenue" => 1..=32,
        _ => 1..=1,
    }
}

/// Runs `OPS` ops from `TASKS` tasks, each on a write and a read session: op `i` runs the
/// pack's commands in turn, and every third op also a query.
async fn drive(backend: &Arc<PackBackend>, params: &Arc<Params>) -> Ran {
    let commands: Arc<Vec<String>> =
        Arc::new(backend.pack().pack.commands.keys().cloned().collect());
    let queries: Arc<Vec<String>> = Arc::new(backend.pack().pack.queries.keys().cloned().collect());
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (backend, params, commands, queries) = (
            backend.clone(),
            params.clone(),
            commands.clone(),
            queries.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ran = Ran::default();
            let mut writes = backend.session(true);
            let mut reads = backend.session(false);
            for i in (t..OPS).step_by(TASKS as usize) {
                let command = &commands[(i % commands.len() as u64) as usize];
                match backend.execute_in(&mut writes, &params, i, command).await {
                    Ok(receipt) => {
                        ran.committed += 1;
                        let outbox = backend.mode.has_outbox();
                        // Each shipped command emits one event.
                        assert_eq!(receipt.seqs.len(), usize::from(outbox), "{command}");
                        assert!(receipt.committed_at.is_some());
                        ran.receipts.push(receipt);
                    }
                    Err(ExecError::Domain(e)) => {
                        assert_eq!(e.label(), "refused", "{e}");
                        ran.refused += 1;
                    }
                    Err(ExecError::Db(sqlx::Error::Database(e)))
                        if e.code().as_deref() == Some("40P01") =>
                    {
                        ran.deadlocks += 1;
                    }
                    Err(e) => panic!("{command} (op {i}): {e}"),
                }
                if i % 3 == 0 {
                    let q = &queries[(i / 3 % queries.len() as u64) as usize];
                    let rows = backend.query_in(&mut reads, &params, i, q).await.unwrap();
                    let expected = expected_rows(q);
                    assert!(expected.contains(&rows.len()), "{q} (op {i}): {rows:?}");
                }
            }
            ran
        }));
    }
    let mut all = Ran::default();
    for t in tasks {
        let ran = t.await.unwrap();
        all.committed += ran.committed;
        all.refused += ran.refused;
        all.deadlocks += ran.deadlocks;
        all.receipts.extend(ran.receipts);
    }
    all
}

/// Prepares `pack` for `kind` at `place`, drives it, catches up and verifies; checks the
/// pack's own invariants, read-your-writes after catch-up, the projection lag (one sample per
/// event), and that the queries' two sides agree. Then drops the dataset with `drop`'s
/// function and checks nothing of it is left.
async fn run_and_verify(place: &Place, pack_name: &str, kind_name: &str) {
    run_and_verify_on(place, pack_name, kind_name, BrokerOptions::default()).await
}

/// [`run_and_verify`] with the broker `cqrs-broker` uses; there also checks that every event
/// is in the stream once and that the stream is gone after the shutdown.
async fn run_and_verify_on(place: &Place, pack_name: &str, kind_name: &str, nats: BrokerOptions) {
    let what = format!("{pack_name} on {kind_name} ({:?})", place.engine());
    let k = kind(kind_name);
    let cp = Arc::new(CompiledPack::new(
        load(pack_name),
        place.engine(),
        &sizes(pack_name),
    ));
    let db = prepare(&place.url, &place.schema, k, &cp, 16)
        .await
        .unwrap_or_else(|e| panic!("{what}: prepare: {e}"));
    assert_eq!(
        schema::ownership(&db).await.unwrap(),
        Ownership::Ours,
        "{what}"
    );
    let (lag, mut lag_rx) = LagTracker::new();
    let backend = Arc::new(
        PackBackend::open(
            k,
            db.clone(),
            cp.clone(),
            PackBackendOptions {
                lag: Some(lag),
                batch_size: 40,
                dedicated_sessions: true,
                broker: nats.clone(),
                ..PackBackendOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: open: {e}")),
    );
    let params = Arc::new(Params::new(7, &cp.pack.parameters, cp.sizes()).unwrap());
    let ran = drive(&backend, &params).await;
    let counts = format!(
        "{} committed, {} refused, {} deadlocks",
        ran.committed, ran.refused, ran.deadlocks
    );
    assert_eq!(
        ran.committed + ran.refused + ran.deadlocks,
        OPS,
        "{what}: {counts}"
    );
    assert!(ran.committed > 0, "{what}: {counts}");
    if place.engine() == Engine::Sqlite {
        assert_eq!(ran.deadlocks, 0, "{what}: one writer at a time");
    }
    backend
        .wait_caught_up(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{what}: catch up: {e}"));
    let mut session = backend.session(false);
    for r in &ran.receipts {
        assert!(
            backend.is_visible_in(&mut session, r).await.unwrap(),
            "{what}: {r:?}"
        );
    }
    let report = verify(&db, &cp).await.unwrap();
    assert!(report.ok(), "{what}: {report:#?}");
    let mode = mode_of(k).unwrap();
    if mode.has_read_models() {
        assert_eq!(report.models.len(), cp.pack.read_models.len(), "{what}");
        for m in &report.models {
            assert!(m.rows_expected > 0, "{what}: {m:?}");
            assert_eq!(m.rows_expected, m.rows_actual, "{what}");
        }
    } else {
        assert!(
            report.models.is_empty(),
            "{what}: normalized has no read models"
        );
    }
    // The pack's own invariants.
    let mut conn = db.read.acquire().await.unwrap();
    match pack_name {
        "ledger" => {
            assert!(ran.refused > 0, "{what}: some accounts run dry: {counts}");
            let total: i64 =
                sqlx::query_scalar("SELECT CAST(sum(balance) AS BIGINT) FROM accounts")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            assert_eq!(total, 20 * 4_000, "{what}: money moves, never made");
            let transfers: i64 = sqlx::query_scalar("SELECT count(*) FROM transfers")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(transfers as u64, ran.committed, "{what}");
        }
        "forum" => {
            // Commands in name order: reply on even ops (refused on a locked thread),
            // start_thread on odd ops (never refused).
            assert!(
                ran.refused > 0,
                "{what}: some replies hit locked threads: {counts}"
            );
            let posts: i64 = sqlx::query_scalar("SELECT count(*) FROM posts")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(posts, FORUM_POSTS + ran.committed as i64, "{what}");
            let threads: i64 = sqlx::query_scalar("SELECT count(*) FROM threads")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(threads as u64, 40 + OPS / 2, "{what}");
            if mode.has_read_models() {
                // The fan-out: every post counted once per thread and once per author.
                for table in ["thread_summary", "author_stats"] {
                    let sum: i64 = sqlx::query_scalar(&format!(
                        "SELECT CAST(sum(posts) AS BIGINT) FROM {table}"
                    ))
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                    assert_eq!(sum, FORUM_POSTS + ran.committed as i64, "{what}: {table}");
                }
                let started: i64 =
                    sqlx::query_scalar("SELECT CAST(sum(threads) AS BIGINT) FROM author_stats")
                        .fetch_one(&mut *conn)
                        .await
                        .unwrap();
                assert_eq!(started as u64, 40 + OPS / 2, "{what}: author_stats.threads");
            }
        }
        "shop" => check_shop(&mut conn, &params, &ran, mode, &what).await,
        _ => {
            assert_eq!(ran.refused, 0, "{what}: every profile exists");
            let profiles: i64 = sqlx::query_scalar("SELECT count(*) FROM profiles")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            // Commands in name order: create_profile on even ops, update_profile on odd.
            assert_eq!(profiles as u64, 50 + OPS / 2, "{what}");
        }
    }
    // After catch-up both sides of every query agree (where the mode keeps read models).
    if mode.has_read_models() {
        for q in cp.pack.queries.keys() {
            for i in 0..30 {
                let w = cp
                    .query(&mut conn, &params, i, q, Side::Write)
                    .await
                    .unwrap();
                let r = cp
                    .query(&mut conn, &params, i, q, Side::Read)
                    .await
                    .unwrap();
                assert_eq!(w, r, "{what}: query {q}, op {i}");
            }
        }
    }
    drop(conn);
    let backend = Arc::into_inner(backend).expect("the tasks are done");
    let stats = backend.projector_stats();
    let stream = match backend.mode {
        PackMode::Broker => {
            let js = broker::connect(&nats.url).await.unwrap();
            let names = cqrs_broker::names_of(&db);
            assert_eq!(backend.broker().map(|b| b.names()), Some(&names), "{what}");
            // Every event in the stream once.
            assert_eq!(
                broker::stream::message_count(&js, &names).await.unwrap(),
                ran.committed,
                "{what}"
            );
            Some((js, names))
        }
        _ => None,
    };
    backend.shutdown().await;
    if let Some((js, names)) = stream {
        assert!(
            js.get_stream(&names.stream).await.is_err(),
            "{what}: the run's stream is removed"
        );
    }
    // One lag sample per event (each command emitted one), after the projector stopped.
    let mut samples = 0u64;
    while lag_rx.try_recv().is_ok() {
        samples += 1;
    }
    match mode {
        PackMode::Outbox | PackMode::Broker => {
            assert_eq!(samples, ran.committed, "{what}: a lag per applied event");
            let stats = stats.expect("an outbox backend has a projector");
            assert_eq!(
                stats.events.load(std::sync::atomic::Ordering::Relaxed),
                ran.committed,
                "{what}: every event applied once"
            );
        }
        _ => {
            assert_eq!(samples, 0, "{what}");
            assert!(stats.is_none(), "{what}");
        }
    }
    if mode == PackMode::Outbox {
        rebuild_and_verify(&db, &cp, ran.committed, &what).await;
    }
    // `drop` removes the pack's tables as the tool's own.
    schema::drop_all(&db).await.unwrap();
    assert_eq!(
        schema::ownership(&db).await.unwrap(),
        Ownership::Empty,
        "{what}"
    );
    db.close().await;
}

/// A `cqrs-async` dataset's read models emptied by hand (verify fails where they had rows),
/// then rebuilt (`pack::rebuild`): from the seed's copy and the whole outbox, one event per
/// committed command, counted independently; verify passes again.
async fn rebuild_and_verify(
    db: &cqrs_bench::db::Db,
    cp: &Arc<CompiledPack>,
    committed: u64,
    what: &str,
) {
    use cqrs_bench::pack::projector::OUTBOX;
    let mut conn = db.write.acquire().await.unwrap();
    let outbox = count(&mut conn, &format!("SELECT count(*) FROM {OUTBOX}")).await;
    assert_eq!(
        outbox as u64, committed,
        "{what}: one event a committed command"
    );
    for name in cp.pack.read_models.keys() {
        sqlx::query(&format!("DELETE FROM {name}"))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    drop(conn);
    let emptied = verify(db, cp).await.unwrap();
    assert!(!emptied.ok(), "{what}: emptied read models pass verify");
    let report = cqrs_bench::pack::rebuild::rebuild(db, cp.clone(), 64)
        .await
        .unwrap_or_else(|e| panic!("{what}: rebuild: {e}"));
    assert_eq!(
        report.events, outbox as u64,
        "{what}: the whole outbox applied"
    );
    let rebuilt = verify(db, cp).await.unwrap();
    assert!(rebuilt.ok(), "{what}: after rebuild: {rebuilt:#?}");
}

async fn count(conn: &mut sqlx::AnyConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&mut *conn).await.unwrap()
}

/// The shop's invariants, derived from its commands and the ops' parameters. Commands in
/// name order: op `i` runs add_review (i % 7 = 0), cancel_order (1), change_price (2),
/// pay_order (3), place_order (4), restock (5) or ship_order (6); of 300 ops each runs 43
/// times, ship_order 42.
async fn check_shop(
    conn: &mut sqlx::AnyConnection,
    params: &Params,
    ran: &Ran,
    mode: PackMode,
    what: &str,
) {
    let ops = |k: u64| (0..OPS).filter(move |i| i % 7 == k);
    let int = |i: u64, name: &str| match params.draw(i, name) {
        Some(Param::Int(v)) => v,
        other => panic!("{name} of op {i}: {other:?}"),
    };
    // Each transaction locks at most one existing order row, then at most one product row.
    assert_eq!(ran.deadlocks, 0, "{what}");
    // Seeded orders are 60% shipped, 10% cancelled: paying, shipping or cancelling one of
    // those is refused.
    assert!(
        ran.refused > 0,
        "{what}: some orders are past the step asked"
    );
    // Product i is seeded with 100 + (i * 104729) % 901 in stock; no product is asked for
    // more than that, so no order is refused and every order has its one line.
    let seeded_stock = |p: i64| 100 + (p * 104_729) % 901;
    let mut demand = BTreeMap::<i64, i64>::new();
    for i in ops(4) {
        *demand.entry(int(i, "product")).or_default() += int(i, "qty");
    }
    for (p, qty) in &demand {
        assert!(
            *qty <= seeded_stock(*p),
            "op stream: product {p} asked for {qty}"
        );
    }
    let placed = ops(4).count() as i64;
    assert_eq!(placed, 43);
    assert_eq!(
        count(conn, "SELECT count(*) FROM orders").await,
        SHOP_ORDERS + placed,
        "{what}"
    );
    assert_eq!(
        count(conn, "SELECT count(*) FROM order_items").await,
        SHOP_ORDERS + placed,
        "{what}: one line an order"
    );
    assert_eq!(
        count(conn, "SELECT count(*) FROM reviews").await,
        SHOP_REVIEWS + 43,
        "{what}"
    );
    assert_eq!(
        count(conn, "SELECT count(*) FROM price_history").await,
        SHOP_PRICE_CHANGES + 43,
        "{what}"
    );
    // Stock moves only with the commands: taken by orders, put back by the cancellations of
    // the run (the seeded ones were cancelled before the workload's start) and by restocks.
    let seeded: i64 = (1..=SHOP_PRODUCTS).map(seeded_stock).sum();
    let restocked: i64 = ops(5).map(|i| int(i, "restock_qty")).sum();
    let ordered: i64 = ops(4).map(|i| int(i, "qty")).sum();
    let cancelled = count(
        conn,
        &format!(
            "SELECT CAST(COALESCE(sum(i.qty), 0) AS BIGINT) FROM order_items i \
             JOIN orders o ON o.id = i.order_id \
             WHERE o.status = 'cancelled' AND o.updated_at >= {SHOP_START_AT}"
        ),
    )
    .await;
    assert_eq!(
        count(conn, "SELECT CAST(sum(stock) AS BIGINT) FROM products").await,
        seeded + restocked - ordered + cancelled,
        "{what}: stock conserved"
    );
    if mode.has_read_models() {
        assert_eq!(
            count(
                conn,
                "SELECT CAST(sum(review_count) AS BIGINT) FROM product_catalog"
            )
            .await,
            SHOP_REVIEWS + 43,
            "{what}: every review counted once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_packs_run_and_verify_on_every_pack_backend_on_sqlite() {
    for pack in PACKS {
        for k in KINDS {
            let place = Place::sqlite(&format!("{pack}_{}", k.replace('-', "_")));
            run_and_verify(&place, pack, k).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_packs_run_and_verify_on_every_pack_backend_on_postgres() {
    let Some(raw) = pg_env("shipped_packs_run_and_verify_on_every_pack_backend_on_postgres") else {
        return;
    };
    for pack in PACKS {
        for k in KINDS {
            let place = Place::postgres(&raw, "pack_be");
            run_and_verify(&place, pack, k).await;
        }
    }
}

/// Catches up until `projector` has nothing left, by `deadline` (else the test fails: the
/// consumer or the horizon stalled).
async fn catch_up_all(projector: &PackProjector, deadline: std::time::Instant, what: &str) {
    loop {
        projector.catch_up().await.unwrap();
        if projector.backlog().await.unwrap() == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the projector never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every shipped pack's projection statements go into the row triggers: a batch of its
/// events is one call (BENCHMARKS section 15), and the read models it leaves are true.
async fn batches_go_in_one_call(place: &Place, pack_name: &str) {
    let what = format!("{pack_name} ({:?})", place.engine());
    let k = kind("cqrs-async");
    let cp = Arc::new(CompiledPack::new(
        load(pack_name),
        place.engine(),
        &sizes(pack_name),
    ));
    let db = prepare(&place.url, &place.schema, k, &cp, 8).await.unwrap();
    let backend = Arc::new(
        PackBackend::open(
            k,
            db.clone(),
            cp.clone(),
            PackBackendOptions {
                run_projector: false,
                batch_size: 1_000,
                ..PackBackendOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        cp.batches_in_one_call(),
        None,
        "{what}: asked before a batch"
    );
    let params = Arc::new(Params::new(7, &cp.pack.parameters, cp.sizes()).unwrap());
    let ran = drive(&backend, &params).await;
    assert!(ran.committed > 1, "{what}");
    let projector = backend.projector().expect("cqrs-async has a projector");
    // Other tests' transactions can hold PostgreSQL's horizon back: lag, waited out.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    catch_up_all(projector, deadline, &what).await;
    assert_eq!(cp.batches_in_one_call(), Some(true), "{what}");
    // The shop's sums and latest states fold on PostgreSQL (db::row_fold); SQLite keeps
    // its row triggers.
    if pack_name == "shop" {
        let folds = place.engine() == Engine::Postgres;
        assert_eq!(cp.batches_fold(), Some(folds), "{what}");
    }
    let backend = Arc::into_inner(backend).expect("the tasks are done");
    backend.shutdown().await;
    let report = verify(&db, &cp).await.unwrap();
    assert!(report.ok(), "{what}: {report:#?}");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_packs_apply_a_batch_in_one_call_on_sqlite() {
    for pack in PACKS {
        batches_go_in_one_call(&Place::sqlite(&format!("{pack}_one_call")), pack).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_packs_apply_a_batch_in_one_call_on_postgres() {
    let Some(raw) = pg_env("shipped_packs_apply_a_batch_in_one_call_on_postgres") else {
        return;
    };
    for pack in PACKS {
        batches_go_in_one_call(&Place::postgres(&raw, "pack_one_call"), pack).await;
    }
}

/// A `nats-server` of the test's own (as the shop's broker tests use), and the options that
/// point `cqrs-broker` at it.
fn nats(ack_wait: Duration) -> (NatsServer, BrokerOptions) {
    let server = NatsServer::start();
    let opts = BrokerOptions {
        url: server.url(),
        ack_wait,
        ..BrokerOptions::default()
    };
    (server, opts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_packs_run_and_verify_on_cqrs_broker_on_sqlite() {
    let (_server, opts) = nats(Duration::from_secs(5));
    for pack in PACKS {
        let place = Place::sqlite(&format!("{pack}_cqrs_broker"));
        run_and_verify_on(&place, pack, "cqrs-broker", opts.clone()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_packs_run_and_verify_on_cqrs_broker_on_postgres() {
    let Some(raw) = pg_env("shipped_packs_run_and_verify_on_cqrs_broker_on_postgres") else {
        return;
    };
    let (_server, opts) = nats(Duration::from_secs(5));
    for pack in PACKS {
        let place = Place::postgres(&raw, "pack_broker");
        run_and_verify_on(&place, pack, "cqrs-broker", opts.clone()).await;
    }
}

/// Counts the pack's outbox: the events the commands committed.
async fn outbox_count(db: &cqrs_bench::db::Db) -> u64 {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {OUTBOX}"))
        .fetch_one(&db.read)
        .await
        .unwrap();
    n as u64
}

/// On `cqrs-broker`, with the ledger (whose projections add, so an event applied twice
/// shows in verify): a relay that published a batch and died before recording it publishes
/// it again, and the stream drops the copies; a consumer that committed every batch and died
/// before acking gets every message again after the ack-wait, and the projector's
/// checkpoint covers them (acknowledged, not applied). Verify passes, and the events applied
/// equal the outbox's.
async fn redelivered_events_are_applied_once(place: &Place) {
    let what = format!("ledger on cqrs-broker ({:?})", place.engine());
    const BATCH: i64 = 25;
    let (server, opts) = nats(Duration::from_secs(1));
    let k = kind("cqrs-broker");
    let cp = Arc::new(CompiledPack::new(
        load("ledger"),
        place.engine(),
        &sizes("ledger"),
    ));
    let db = prepare(&place.url, &place.schema, k, &cp, 8).await.unwrap();
    let backend = PackBackend::open(
        k,
        db.clone(),
        cp.clone(),
        PackBackendOptions {
            run_projector: false,
            batch_size: BATCH,
            poll_interval: Duration::from_millis(50),
            broker: opts.clone(),
            ..PackBackendOptions::default()
        },
    )
    .await
    .unwrap();
    let params = Params::new(7, &cp.pack.parameters, cp.sizes()).unwrap();
    let mut session = backend.session(true);
    let mut committed = 0u64;
    for i in 0..150 {
        match backend
            .execute_in(&mut session, &params, i, "transfer")
            .await
        {
            Ok(r) => committed += r.seqs.len() as u64,
            Err(ExecError::Domain(_)) => {}
            Err(e) => panic!("{what}: transfer {i}: {e}"),
        }
    }
    let events = outbox_count(&db).await;
    assert_eq!(events, committed, "{what}: one event per transfer");
    assert!(events > 2 * BATCH as u64, "{what}: {events} events");

    // The relay publishes a batch and dies before recording it.
    let relay = &backend.broker().expect("a broker backend").relay;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // All of the first batch visible first: another test's open transaction on the server
    // may hold the outbox's horizon back for a moment.
    while relay.backlog().await.unwrap() < BATCH {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the horizon did not move"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = relay.step_without_marking().await.unwrap();
    assert_eq!(first.len(), BATCH as usize, "{what}");
    assert!(first.iter().all(|(_, dup)| !dup), "{what}: {first:?}");
    // Running on, it starts from its record: the same batch again, then the rest.
    loop {
        let n = relay.step().await.unwrap();
        if n == 0 && relay.backlog().await.unwrap() == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the relay stalled"
        );
    }
    let relayed = &relay.stats;
    assert_eq!(
        relayed
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        BATCH as u64,
        "{what}: the republished batch was a duplicate"
    );
    let js = broker::connect(&server.url()).await.unwrap();
    let names = cqrs_broker::names_of(&db);
    assert_eq!(
        broker::stream::message_count(&js, &names).await.unwrap(),
        events,
        "{what}: every event in the stream once"
    );

    // A consumer commits every batch with its checkpoint and never acks: killed after each
    // commit.
    let source = JetStreamSource::open(
        js.clone(),
        names.clone(),
        &server.url(),
        EventLog::of_table(db.clone(), OUTBOX),
        Duration::from_millis(50),
    )
    .await
    .unwrap()
    .with_faults(ConsumerFaults { drop_acks: true });
    let killed = PackProjector::new(
        db.clone(),
        cp.clone(),
        BATCH,
        Duration::from_millis(50),
        None,
    )
    .with_broker(source);
    catch_up_all(&killed, deadline, &what).await;
    let killed_applied = killed
        .stats
        .events
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(killed_applied, events, "{what}");
    drop(killed);
    let report = verify(&db, &cp).await.unwrap();
    assert!(report.ok(), "{what}: {report:#?}");

    // The backend's projector on the same durable consumer is delivered every message again
    // after the ack-wait; the checkpoint covers them all.
    let p = backend.projector().expect("a projector");
    let delivery = p.consumer().expect("a broker consumer").stats.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Every message comes again (the server's own count), whatever the projector does.
    while delivery
        .redelivered
        .load(std::sync::atomic::Ordering::Relaxed)
        < events
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: redelivery did not come: {delivery:?}"
        );
        p.step().await.unwrap();
    }
    p.catch_up().await.unwrap();
    assert!(
        p.stats
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed)
            >= events,
        "{what}: each message delivered again is covered by the checkpoint"
    );
    let again = p.stats.events.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(again, 0, "{what}: nothing applied twice");
    assert_eq!(killed_applied + again, outbox_count(&db).await, "{what}");
    backend
        .wait_caught_up(Duration::from_secs(60))
        .await
        .unwrap();
    let report = verify(&db, &cp).await.unwrap();
    assert!(report.ok(), "{what}: {report:#?}");
    backend.shutdown().await;
    assert!(
        js.get_stream(&names.stream).await.is_err(),
        "{what}: the run's stream is removed"
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_are_applied_once_on_cqrs_broker_on_sqlite() {
    redelivered_events_are_applied_once(&Place::sqlite("ledger_redelivered")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_are_applied_once_on_cqrs_broker_on_postgres() {
    let Some(raw) = pg_env("redelivered_events_are_applied_once_on_cqrs_broker_on_postgres") else {
        return;
    };
    redelivered_events_are_applied_once(&Place::postgres(&raw, "pack_redeliver")).await;
}

/// Runs `ops` commands of `pack` (broken or not) on `kind` from one session, catches up and
/// verifies.
async fn run_broken(
    place: &Place,
    pack: Pack,
    kind_name: &str,
    ops: u64,
) -> (cqrs_bench::verify::VerifyReport, cqrs_bench::db::Db) {
    let k = kind(kind_name);
    let sizes = sizes(&pack.name);
    let cp = Arc::new(CompiledPack::new(pack, place.engine(), &sizes));
    let db = prepare(&place.url, &place.schema, k, &cp, 8).await.unwrap();
    let backend = PackBackend::open(k, db.clone(), cp.clone(), PackBackendOptions::default())
        .await
        .unwrap();
    let params = Params::new(7, &cp.pack.parameters, cp.sizes()).unwrap();
    let commands: Vec<String> = cp.pack.commands.keys().cloned().collect();
    let mut s = backend.session(true);
    for i in 0..ops {
        let command = &commands[(i % commands.len() as u64) as usize];
        match backend.execute_in(&mut s, &params, i, command).await {
            Ok(_) | Err(ExecError::Domain(_)) => {}
            Err(e) => panic!("{command}: {e}"),
        }
    }
    backend
        .wait_caught_up(Duration::from_secs(120))
        .await
        .unwrap();
    backend.shutdown().await;
    (verify(&db, &cp).await.unwrap(), db)
}

/// The ledger with `received` counted twice: every account that received a transfer differs,
/// the first in key order being the smallest receiver.
async fn a_doubled_count_is_caught(place: &Place, kind_name: &str) {
    let mut pack = load("ledger");
    pack.projections.get_mut("balances").unwrap().statements[1] = NamedSql::parse(
        "UPDATE account_balance SET balance = balance + :amount, received = received + 2 \
         WHERE account_id = :to",
    )
    .unwrap();
    let (report, db) = run_broken(place, pack, kind_name, 120).await;
    assert!(
        !report.ok(),
        "{kind_name}: the doubled count was not caught"
    );
    let (first, receivers): (i64, i64) =
        sqlx::query_as("SELECT min(to_id), count(DISTINCT to_id) FROM transfers")
            .fetch_one(&db.read)
            .await
            .unwrap();
    let check = &report.models[0];
    assert_eq!(check.read_model.name(), "account_balance");
    assert_eq!(
        check.mismatches as i64, receivers,
        "{kind_name}: {check:#?}"
    );
    assert_eq!(report.mismatches, check.mismatches);
    assert!(
        check.first_diffs[0].starts_with(&format!("account_balance[account_id={first}]: has (")),
        "{kind_name}: {:?}",
        check.first_diffs
    );
    assert_eq!(check.first_diffs.len(), receivers.min(5) as usize);
    db.close().await;
}

/// crud with the bio dropped from the created profile: every profile created in the run
/// differs (updates touch only the 50 seeded ones), the first being number 51.
async fn a_dropped_field_is_caught(place: &Place, kind_name: &str) {
    let mut pack = load("crud");
    pack.projections
        .get_mut("profile_created")
        .unwrap()
        .statements[0] = NamedSql::parse(
        "INSERT INTO profile_view (id, name, email, bio) VALUES (:id, :name, :email, '')",
    )
    .unwrap();
    let (report, db) = run_broken(place, pack, kind_name, 40).await;
    assert!(
        !report.ok(),
        "{kind_name}: the dropped field was not caught"
    );
    let check = &report.models[0];
    assert_eq!(check.read_model.name(), "profile_view");
    // 20 profiles created (even ops of 40); bios are words, never empty.
    assert_eq!(check.mismatches, 20, "{kind_name}: {check:#?}");
    assert!(
        check.first_diffs[0].starts_with("profile_view[id=51]: has ("),
        "{kind_name}: {:?}",
        check.first_diffs
    );
    assert!(
        check.first_diffs[0].contains("bio=\"\")"),
        "{:?}",
        check.first_diffs
    );
    db.close().await;
}

#[tokio::test]
async fn a_broken_projection_fails_verify_at_its_first_row_on_sqlite() {
    for k in ["cqrs-sync", "cqrs-async"] {
        let place = Place::sqlite(&format!("ledger_broken_{}", k.replace('-', "_")));
        a_doubled_count_is_caught(&place, k).await;
        let place = Place::sqlite(&format!("crud_broken_{}", k.replace('-', "_")));
        a_dropped_field_is_caught(&place, k).await;
    }
}

#[tokio::test]
async fn a_broken_projection_fails_verify_at_its_first_row_on_postgres() {
    let Some(raw) = pg_env("a_broken_projection_fails_verify_at_its_first_row_on_postgres") else {
        return;
    };
    for k in ["cqrs-sync", "cqrs-async"] {
        a_doubled_count_is_caught(&Place::postgres(&raw, "pack_ledger_broken"), k).await;
        a_dropped_field_is_caught(&Place::postgres(&raw, "pack_crud_broken"), k).await;
    }
}

#[tokio::test]
async fn a_backend_without_a_pack_mode_is_refused_before_anything_is_created() {
    let cp = CompiledPack::new(load("ledger"), Engine::Sqlite, &sizes("ledger"));
    for k in ["event-sourced", "triggers", "denormalized"] {
        let place = Place::sqlite("refused");
        let path = place.url.sqlite_path().unwrap();
        let e = prepare(&place.url, &place.schema, kind(k), &cp, 4)
            .await
            .expect_err("refused");
        assert!(matches!(e, DbError::NoPackMode { .. }), "{k}: {e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{k} cannot run a workload pack: ")),
            "{text}"
        );
        assert!(
            text.ends_with(
                "(packs run on normalized, cqrs-sync, cqrs-async, cqrs-broker, matview or replica)"
            ),
            "{text}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(!path.exists(), "{k}: {} was created", path.display());
    }
    let e = prepare(
        &Place::sqlite("es").url,
        "cqrs_bench",
        kind("event-sourced"),
        &cp,
        4,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("its write model is the shop's event store"),
        "{e}"
    );
}

#[tokio::test]
async fn a_refused_backend_creates_no_schema_on_postgres() {
    let Some(raw) = pg_env("a_refused_backend_creates_no_schema_on_postgres") else {
        return;
    };
    let place = Place::postgres(&raw, "pack_refused");
    let cp = CompiledPack::new(load("ledger"), Engine::Postgres, &sizes("ledger"));
    let e = prepare(&place.url, &place.schema, kind("event-sourced"), &cp, 4)
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::NoPackMode { .. }), "{e}");
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&raw).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(&place.schema)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0, "schema {} was created", place.schema);
}

#[tokio::test]
async fn a_dataset_prepared_for_another_mode_or_pack_is_not_opened() {
    let place = Place::sqlite("ledger_sync");
    let cp = Arc::new(CompiledPack::new(
        load("ledger"),
        Engine::Sqlite,
        &sizes("ledger"),
    ));
    let db = prepare(&place.url, &place.schema, kind("cqrs-sync"), &cp, 4)
        .await
        .unwrap();
    for k in ["normalized", "cqrs-async"] {
        let e = PackBackend::open(
            kind(k),
            db.clone(),
            cp.clone(),
            PackBackendOptions::default(),
        )
        .await
        .err()
        .expect("another mode's dataset");
        assert!(e.to_string().contains("prepared for"), "{e}");
    }
    let crud = Arc::new(CompiledPack::new(
        load("crud"),
        Engine::Sqlite,
        &sizes("crud"),
    ));
    let e = PackBackend::open(
        kind("cqrs-sync"),
        db.clone(),
        crud,
        PackBackendOptions::default(),
    )
    .await
    .err()
    .expect("another pack's dataset");
    assert!(e.to_string().contains("workload pack crud"), "{e}");
    db.close().await;
}

/// On PostgreSQL an event can become visible after one with a higher seq (its transaction
/// took the seq first and committed later). The projector must not skip it: while the
/// earlier transaction is open it applies nothing past it (the later event waits: lag, not
/// loss), and once it commits both are applied and the read model is true.
#[tokio::test]
async fn a_late_commit_on_postgres_is_waited_for_not_skipped() {
    let Some(raw) = pg_env("a_late_commit_on_postgres_is_waited_for_not_skipped") else {
        return;
    };
    use cqrs_bench::pack::exec::Applied;
    use cqrs_bench::pack::projector::{event_json, OUTBOX};
    let place = Place::postgres(&raw, "pack_late");
    let k = kind("cqrs-async");
    let cp = Arc::new(CompiledPack::new(
        load("crud"),
        Engine::Postgres,
        &sizes("crud"),
    ));
    let db = prepare(&place.url, &place.schema, k, &cp, 8).await.unwrap();
    let backend = PackBackend::open(
        k,
        db.clone(),
        cp.clone(),
        PackBackendOptions {
            run_projector: false,
            ..PackBackendOptions::default()
        },
    )
    .await
    .unwrap();
    let params = Params::new(7, &cp.pack.parameters, cp.sizes()).unwrap();
    // Op 0 (create_profile) runs as cqrs-async runs it, and stays open.
    let mut early = db.write.acquire().await.unwrap();
    let mut tx = early.begin().await.unwrap();
    let Applied::Committed(events) = cp
        .execute(&mut tx, &params, 0, "create_profile")
        .await
        .unwrap()
    else {
        panic!("a create is never refused");
    };
    let early_seq: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO {OUTBOX} (stream, kind, payload) VALUES ($1, $2, $3) RETURNING seq"
    ))
    .bind("create_profile")
    .bind(&events[0].event)
    .bind(event_json(&events[0]))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    // Op 1 (update_profile) commits meanwhile, with a later seq.
    let mut s = backend.session(true);
    let late = backend
        .execute_in(&mut s, &params, 1, "update_profile")
        .await
        .unwrap();
    assert!(late.seqs[0] > early_seq);
    let projector = backend.projector().unwrap();
    assert_eq!(
        projector.step().await.unwrap(),
        0,
        "nothing past the open transaction"
    );
    assert_eq!(
        projector.backlog().await.unwrap(),
        1,
        "the committed one waits"
    );
    let mut reads = backend.session(false);
    assert!(!backend.is_visible_in(&mut reads, &late).await.unwrap());
    assert!(
        projector
            .stats
            .horizon_waits
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    tx.commit().await.unwrap();
    drop(early);
    // The horizon is the cluster's: another test's open transaction can hold it back for a
    // moment after the commit. That is lag, so wait it out; what is asserted is that both
    // events are applied, none skipped.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut applied = 0;
    while applied < 2 && std::time::Instant::now() < deadline {
        applied += projector.catch_up().await.unwrap();
        if applied < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(applied, 2, "both, the late commit included");
    assert!(backend.is_visible_in(&mut reads, &late).await.unwrap());
    backend.shutdown().await;
    let report = verify(&db, &cp).await.unwrap();
    assert!(report.ok(), "{report:#?}");
    db.close().await;
}

/// A seed that fails leaves a dataset that says it is half-seeded: not opened, and `drop`
/// removes it.
#[tokio::test]
async fn a_failed_seed_is_half_seeded_and_dropped() {
    use cqrs_bench::db::state::DbState;
    let place = Place::sqlite("half");
    let mut pack = load("ledger");
    for file in &mut pack.datasets {
        file.statements =
            vec![NamedSql::parse("INSERT INTO no_such_table VALUES (:accounts)").unwrap()];
    }
    let cp = Arc::new(CompiledPack::new(pack, Engine::Sqlite, &sizes("ledger")));
    let e = prepare(&place.url, &place.schema, kind("cqrs-sync"), &cp, 4)
        .await
        .expect_err("the dataset fails");
    assert!(matches!(e, DbError::Sql(_)), "{e}");
    let db = cqrs_bench::db::Db::open(&place.url, &place.schema, 4)
        .await
        .unwrap();
    assert_eq!(DbState::read(&db).await.unwrap(), DbState::Seeding);
    let e = PackBackend::open(
        kind("cqrs-sync"),
        db.clone(),
        cp,
        PackBackendOptions::default(),
    )
    .await
    .err()
    .expect("half-seeded");
    assert!(e.to_string().contains("half-seeded"), "{e}");
    schema::drop_all(&db).await.unwrap();
    assert_eq!(schema::ownership(&db).await.unwrap(), Ownership::Empty);
    db.close().await;
}

/// The shop's out-of-stock refusal: an order for more than its product has left is refused
/// at the statement that takes the stock (`require_rows = 1` touched no row) and changes
/// nothing; an order for exactly what is left takes it all.
#[tokio::test]
async fn the_shop_refuses_an_order_for_more_than_is_in_stock() {
    use cqrs_bench::pack::exec::Applied;
    let place = Place::sqlite("shop_stock");
    let cp = CompiledPack::new(load("shop"), Engine::Sqlite, &sizes("shop"));
    let db = prepare(&place.url, &place.schema, kind("normalized"), &cp, 2)
        .await
        .unwrap();
    let params = Params::new(7, &cp.pack.parameters, cp.sizes()).unwrap();
    let int = |name: &str| match params.draw(4, name) {
        Some(Param::Int(v)) => v,
        other => panic!("{name}: {other:?}"),
    };
    let (product, qty) = (int("product"), int("qty"));
    let mut conn = db.write.acquire().await.unwrap();
    let stock_of = "SELECT stock FROM products WHERE id = $1";
    for (left, refused) in [(qty - 1, true), (qty, false)] {
        sqlx::query("UPDATE products SET stock = $1 WHERE id = $2")
            .bind(left)
            .bind(product)
            .execute(&mut *conn)
            .await
            .unwrap();
        let mut tx = conn.begin().await.unwrap();
        let applied = cp
            .execute(&mut tx, &params, 4, "place_order")
            .await
            .unwrap();
        match applied {
            Applied::Refused { statement, rows } => {
                assert!(refused, "{left} left of {qty}: refused");
                assert_eq!(
                    (statement, rows),
                    (1, 0),
                    "the stock statement touched no row"
                );
                tx.rollback().await.unwrap();
                let stock: i64 = sqlx::query_scalar(stock_of)
                    .bind(product)
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                assert_eq!(stock, left);
                let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                assert_eq!(orders, SHOP_ORDERS, "no order placed");
            }
            Applied::Committed(events) => {
                assert!(!refused, "{left} left of {qty}: committed");
                tx.commit().await.unwrap();
                assert_eq!(events.len(), 1);
                assert_eq!(events[0].event, "OrderPlaced");
                assert_eq!(events[0].fields["order"], Param::Int(SHOP_ORDERS + 1));
                assert_eq!(events[0].fields["stock"], Param::Int(0));
                let stock: i64 = sqlx::query_scalar(stock_of)
                    .bind(product)
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                assert_eq!(stock, 0, "all of it taken");
            }
        }
    }
    drop(conn);
    db.close().await;
}
