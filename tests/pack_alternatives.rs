//! Workload packs on the alternatives a team tries before CQRS (issue [pack], point 3):
//! `matview`, where each read model is a materialized view of its truth query refreshed on a
//! schedule, and `replica`, where the queries' `write_sql` reads a hot standby. Every shipped
//! pack runs, refreshes and verifies on `matview` (PostgreSQL); a view that is stale or not
//! its truth is caught by verify; a pack on `replica` with a primary and standby of the test's
//! own reads the standby (a stopped standby fails the reads, not the writes) and sees every
//! write once replication has caught up; neither runs on SQLite.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pg_cluster::PgCluster;
use common::*;
use cqrs_bench::backend::matview::RefreshSchedule;
use cqrs_bench::backend::{BackendKind, ExecError, Receipt};
use cqrs_bench::db::schema::{self, Ownership};
use cqrs_bench::db::{Db, DbError, DbUrl, Engine};
use cqrs_bench::pack::backend::{prepare, PackBackend, PackBackendOptions};
use cqrs_bench::pack::exec::{CompiledPack, Side};
use cqrs_bench::pack::params::Params;
use cqrs_bench::pack::sql::NamedSql;
use cqrs_bench::pack::Pack;
use cqrs_bench::projection::projector::LagTracker;
use cqrs_bench::verify::verify_pack as verify;

const PACKS: [&str; 3] = ["ledger", "crud", "forum"];
/// Ops per run, spread over this many tasks.
const OPS: u64 = 120;
const TASKS: u64 = 4;
const FORUM_POSTS: i64 = 200;

fn kind(name: &str) -> BackendKind {
    BackendKind::from_name(name).unwrap()
}

fn load(name: &str) -> Pack {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("workloads")
        .join(name);
    Pack::load(&dir).unwrap()
}

/// 20 accounts of 4,000 cents, 50 profiles, a forum of 30 authors, 40 threads, 200 posts.
fn sizes(name: &str) -> BTreeMap<String, i64> {
    let sizes: &[(&str, i64)] = match name {
        "ledger" => &[("accounts", 20), ("opening_balance", 4_000)],
        "forum" => &[("authors", 30), ("threads", 40), ("posts", FORUM_POSTS)],
        _ => &[("users", 50)],
    };
    sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// A PostgreSQL schema of the test's, dropped (with its views) however the test ends.
struct Schema {
    raw: String,
    url: DbUrl,
    name: String,
}

impl Schema {
    fn new(raw: &str, prefix: &str) -> Schema {
        Schema {
            raw: raw.to_string(),
            url: DbUrl::parse(raw).unwrap(),
            name: unique_schema(prefix),
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (raw, schema) = (self.raw.clone(), self.name.clone());
        // Drop runs outside the test's runtime: a runtime of its own, on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection as _;
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

#[derive(Default)]
struct Ran {
    committed: u64,
    refused: u64,
    deadlocks: u64,
    receipts: Vec<Receipt>,
}

/// Runs `OPS` ops from `TASKS` tasks: op `i` runs the pack's commands in turn, and every third
/// op also a query, whose row count is checked (a point query answers one row; the forum's
/// top-10 lists ten).
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
                        assert!(receipt.seqs.is_empty(), "{command}: no outbox here");
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
                    let expected = if q.starts_with("hot_") || q.starts_with("top_") {
                        10
                    } else {
                        1
                    };
                    assert_eq!(rows.len(), expected, "{q} (op {i})");
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
    assert_eq!(all.committed + all.refused + all.deadlocks, OPS);
    assert!(all.committed > 0);
    all
}

/// The names of the materialized views in `schema`, sorted.
async fn views_in(db: &Db, schema: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT matviewname::text FROM pg_matviews WHERE schemaname = $1 ORDER BY 1")
        .bind(schema)
        .fetch_all(&db.read)
        .await
        .unwrap()
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.read).await.unwrap()
}

/// Every lag sample sent so far.
fn samples(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<cqrs_bench::projection::projector::LagSample>,
) -> u64 {
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    n
}

/// `pack` on `matview`: its read models are views (and no tables of that name); driven with
/// the views refreshed every 100 ms until every write is seen by the schedule alone; then
/// caught up, verified, both sides of every query agree, each view reports its refreshes,
/// one lag sample per write, and `drop` removes the views with the tables.
async fn matview_runs_and_verifies(raw: &str, pack_name: &str) {
    let what = format!("{pack_name} on matview");
    let place = Schema::new(raw, "pack_mv");
    let k = kind("matview");
    let cp = Arc::new(CompiledPack::new(
        load(pack_name),
        Engine::Postgres,
        &sizes(pack_name),
    ));
    let db = prepare(&place.url, &place.name, k, &cp, 16)
        .await
        .unwrap_or_else(|e| panic!("{what}: prepare: {e}"));
    let read_models: Vec<String> = cp.pack.read_models.keys().cloned().collect();
    assert_eq!(views_in(&db, &place.name).await, read_models, "{what}");
    assert!(
        !schema::pack_tables(&db)
            .await
            .unwrap()
            .iter()
            .any(|t| read_models.contains(t)),
        "{what}: the read models' DDL is not used"
    );
    let (lag, mut lag_rx) = LagTracker::new();
    let backend = Arc::new(
        PackBackend::open(
            k,
            db.clone(),
            cp.clone(),
            PackBackendOptions {
                lag: Some(lag),
                dedicated_sessions: true,
                refresh: RefreshSchedule {
                    every: Duration::from_millis(100),
                    per_view: BTreeMap::new(),
                },
                ..PackBackendOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: open: {e}")),
    );
    let params = Arc::new(Params::new(7, &cp.pack.parameters, cp.sizes()).unwrap());
    let ran = drive(&backend, &params).await;
    // The schedule alone makes every write visible (no final refresh yet).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut session = backend.session(false);
    for r in &ran.receipts {
        while !backend.is_visible_in(&mut session, r).await.unwrap() {
            assert!(Instant::now() < deadline, "{what}: never refreshed: {r:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    backend
        .wait_caught_up(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{what}: catch up: {e}"));
    let report = verify(&db, &cp).await.unwrap();
    assert!(report.ok(), "{what}: {report:#?}");
    assert_eq!(report.models.len(), read_models.len(), "{what}");
    for m in &report.models {
        assert!(m.rows_expected > 0, "{what}: {m:?}");
        assert_eq!(m.rows_expected, m.rows_actual, "{what}");
    }
    // The views hold what the writes did.
    match pack_name {
        "ledger" => {
            let total = count(
                &db,
                "SELECT CAST(sum(balance) AS BIGINT) FROM account_balance",
            )
            .await;
            assert_eq!(total, 20 * 4_000, "{what}");
            let sent = count(&db, "SELECT CAST(sum(sent) AS BIGINT) FROM account_balance").await;
            assert_eq!(sent as u64, ran.committed, "{what}: one per transfer");
        }
        "forum" => {
            let posts = count(&db, "SELECT CAST(sum(posts) AS BIGINT) FROM thread_summary").await;
            assert_eq!(posts, FORUM_POSTS + ran.committed as i64, "{what}");
        }
        _ => {
            // create_profile on even ops, update_profile on odd ones.
            let profiles = count(&db, "SELECT count(*) FROM profile_view").await;
            assert_eq!(profiles as u64, 50 + OPS / 2, "{what}");
        }
    }
    let mut conn = db.read.acquire().await.unwrap();
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
    drop(conn);
    let refreshes = backend.refreshes();
    let names: Vec<&str> = refreshes.iter().map(|r| r.view.as_str()).collect();
    assert_eq!(names, read_models, "{what}");
    for r in &refreshes {
        assert_eq!(r.failed, 0, "{what}: {r:?}");
        assert_eq!(r.interval_ms, 100, "{what}");
        // At least the scheduled one that showed the last write, and the final one.
        assert!(r.refreshes >= 2, "{what}: {r:?}");
    }
    let backend = Arc::into_inner(backend).expect("the tasks are done");
    assert!(backend.projector_stats().is_none(), "{what}");
    backend.shutdown().await;
    assert_eq!(
        samples(&mut lag_rx),
        ran.committed,
        "{what}: one staleness sample per write"
    );
    schema::drop_all(&db).await.unwrap();
    assert_eq!(
        schema::ownership(&db).await.unwrap(),
        Ownership::Empty,
        "{what}"
    );
    assert!(views_in(&db, &place.name).await.is_empty(), "{what}");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_packs_run_refresh_and_verify_on_matview_on_postgres() {
    let Some(raw) = pg_env("shipped_packs_run_refresh_and_verify_on_matview_on_postgres") else {
        return;
    };
    for pack in PACKS {
        matview_runs_and_verifies(&raw, pack).await;
    }
}

/// crud on matview with no scheduled refresh: ten created profiles are not in the view (nor
/// visible) until a refresh; verify before it names the first missing profile, 51.
#[tokio::test]
async fn a_stale_view_is_unseen_and_caught_by_verify_until_refreshed() {
    let Some(raw) = pg_env("a_stale_view_is_unseen_and_caught_by_verify_until_refreshed") else {
        return;
    };
    let place = Schema::new(&raw, "pack_mv_stale");
    let k = kind("matview");
    let cp = Arc::new(CompiledPack::new(
        load("crud"),
        Engine::Postgres,
        &sizes("crud"),
    ));
    let db = prepare(&place.url, &place.name, k, &cp, 8).await.unwrap();
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
    let mut s = backend.session(true);
    let mut receipts = Vec::new();
    for i in 0..10 {
        receipts.push(
            backend
                .execute_in(&mut s, &params, i, "create_profile")
                .await
                .unwrap(),
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM profiles").await, 60);
    assert_eq!(count(&db, "SELECT count(*) FROM profile_view").await, 50);
    let mut reads = backend.session(false);
    for r in &receipts {
        assert!(!backend.is_visible_in(&mut reads, r).await.unwrap());
    }
    let report = verify(&db, &cp).await.unwrap();
    assert!(!report.ok(), "the stale view was not caught");
    let check = &report.models[0];
    assert_eq!(check.read_model.name(), "profile_view");
    assert_eq!(check.mismatches, 10, "{check:#?}");
    assert_eq!((check.rows_actual, check.rows_expected), (50, 60));
    assert!(
        check.first_diffs[0].starts_with("profile_view[id=51]: has no row, expected ("),
        "{:?}",
        check.first_diffs
    );
    backend
        .wait_caught_up(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM profile_view").await, 60);
    for r in &receipts {
        assert!(backend.is_visible_in(&mut reads, r).await.unwrap());
    }
    assert!(verify(&db, &cp).await.unwrap().ok());
    let refreshes = backend.refreshes();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].refreshes, 1, "only the one asked for");
    backend.shutdown().await;
    db.close().await;
}

/// The ledger's view made from a wrong truth (every balance one cent high), verified against
/// the pack's truth: every one of the 20 accounts differs, the first being account 1.
#[tokio::test]
async fn a_view_that_is_not_its_truth_fails_verify_at_its_first_row() {
    let Some(raw) = pg_env("a_view_that_is_not_its_truth_fails_verify_at_its_first_row") else {
        return;
    };
    let place = Schema::new(&raw, "pack_mv_broken");
    let k = kind("matview");
    let mut broken = load("ledger");
    let rm = broken.read_models.get_mut("account_balance").unwrap();
    let text = rm.truth.text().to_string();
    assert!(text.contains("a.balance AS balance"), "{text}");
    rm.truth =
        NamedSql::parse(&text.replace("a.balance AS balance", "a.balance + 1 AS balance")).unwrap();
    let broken = CompiledPack::new(broken, Engine::Postgres, &sizes("ledger"));
    let db = prepare(&place.url, &place.name, k, &broken, 8)
        .await
        .unwrap();
    let right = CompiledPack::new(load("ledger"), Engine::Postgres, &sizes("ledger"));
    // Against its own (wrong) truth the view is right; against the pack's it is not.
    assert!(verify(&db, &broken).await.unwrap().ok());
    let report = verify(&db, &right).await.unwrap();
    assert!(!report.ok(), "the wrong view was not caught");
    let check = &report.models[0];
    assert_eq!(check.read_model.name(), "account_balance");
    assert_eq!(check.mismatches, 20, "{check:#?}");
    assert_eq!(report.mismatches, 20);
    assert_eq!(check.first_diffs.len(), 5);
    assert!(
        check.first_diffs[0]
            .starts_with("account_balance[account_id=1]: has (account_id=1, balance=4001"),
        "{:?}",
        check.first_diffs
    );
    db.close().await;
}

/// A private primary and standby, `None` after saying why not (the machine's server is the
/// switch that says PostgreSQL tests may run).
fn cluster_for(test: &str) -> Option<PgCluster> {
    pg_url(test)?;
    PgCluster::start(test)
}

/// The ledger on `replica` with a standby of the test's own: without the standby it does not
/// open; its queries read the standby (which, stopped, fails them while the writes go on);
/// once replication has caught up every write is visible there, the standby holds what the
/// primary holds, both answer every query alike, and verify has nothing to compare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_on_replica_reads_the_standby_and_sees_every_write_once_caught_up() {
    let test = "a_pack_on_replica_reads_the_standby_and_sees_every_write_once_caught_up";
    let Some(cluster) = cluster_for(test) else {
        return;
    };
    let primary_url = DbUrl::parse(&cluster.primary_url()).unwrap();
    let standby_url = DbUrl::parse(&cluster.standby_url()).unwrap();
    let schema_name = unique_schema("pack_replica");
    let k = kind("replica");
    let cp = Arc::new(CompiledPack::new(
        load("ledger"),
        Engine::Postgres,
        &sizes("ledger"),
    ));
    let db = prepare(&primary_url, &schema_name, k, &cp, 16)
        .await
        .unwrap();
    let e = PackBackend::open(k, db.clone(), cp.clone(), PackBackendOptions::default())
        .await
        .err()
        .expect("no standby");
    assert!(e.to_string().contains("reads from a hot standby"), "{e}");
    let standby = Db::open_standby(&standby_url, &schema_name, 16, Duration::from_secs(60))
        .await
        .unwrap();
    let (lag, mut lag_rx) = LagTracker::new();
    let backend = Arc::new(
        PackBackend::open(
            k,
            db.clone(),
            cp.clone(),
            PackBackendOptions {
                lag: Some(lag),
                dedicated_sessions: true,
                standby: Some(standby.clone()),
                ..PackBackendOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let params = Arc::new(Params::new(7, &cp.pack.parameters, cp.sizes()).unwrap());
    let mut ran = drive(&backend, &params).await;
    // The standby stopped: queries fail, commands commit on the primary.
    cluster.stop_standby();
    let mut reads = backend.session(false);
    assert!(backend
        .query_in(&mut reads, &params, 0, "balance")
        .await
        .is_err());
    let mut writes = backend.session(true);
    let mut during = None;
    for i in OPS..OPS + 20 {
        match backend
            .execute_in(&mut writes, &params, i, "transfer")
            .await
        {
            Ok(r) => {
                ran.committed += 1;
                during.get_or_insert(r.clone());
                ran.receipts.push(r);
            }
            Err(ExecError::Domain(_)) => {}
            Err(e) => panic!("a write while the standby is down: {e}"),
        }
    }
    let during = during.expect("a transfer committed while the standby was down");
    assert!(!backend.is_visible_in(&mut reads, &during).await.unwrap());
    cluster.start_standby();
    backend
        .wait_caught_up(Duration::from_secs(120))
        .await
        .unwrap();
    for r in &ran.receipts {
        assert!(backend.is_visible_in(&mut reads, r).await.unwrap(), "{r:?}");
    }
    // The standby's pools still hold connections the restart ended: a fresh pool to count.
    let fresh = Db::open_standby(&standby_url, &schema_name, 2, Duration::from_secs(60))
        .await
        .unwrap();
    let transfers = "SELECT count(*) FROM transfers";
    assert_eq!(count(&db, transfers).await as u64, ran.committed);
    assert_eq!(count(&fresh, transfers).await as u64, ran.committed);
    let total = "SELECT CAST(sum(balance) AS BIGINT) FROM accounts";
    assert_eq!(count(&fresh, total).await, 20 * 4_000);
    fresh.close().await;
    // The standby answers as the primary does (the backend's queries read the standby).
    let mut primary = db.read.acquire().await.unwrap();
    for q in cp.pack.queries.keys() {
        for i in 0..30 {
            let on_primary = cp
                .query(&mut primary, &params, i, q, Side::Write)
                .await
                .unwrap();
            // A connection the restart ended fails once and is replaced.
            let mut tries = 0;
            let on_standby = loop {
                match backend.query_in(&mut reads, &params, i, q).await {
                    Ok(rows) => break rows,
                    Err(e) if tries < 40 => {
                        tries += 1;
                        eprintln!("query {q} on the restarted standby: {e}");
                    }
                    Err(e) => panic!("query {q}: {e}"),
                }
            };
            assert_eq!(on_primary, on_standby, "query {q}, op {i}");
        }
    }
    drop(primary);
    // The sessions' connections go back before the pools close.
    drop((reads, writes));
    let report = verify(&db, &cp).await.unwrap();
    assert!(report.ok() && report.models.is_empty(), "{report:#?}");
    let backend = Arc::into_inner(backend).expect("the tasks are done");
    backend.shutdown().await;
    assert_eq!(
        samples(&mut lag_rx),
        ran.committed,
        "one replication lag sample per write"
    );
    standby.close().await;
    schema::drop_all(&db).await.unwrap();
    assert_eq!(schema::ownership(&db).await.unwrap(), Ownership::Empty);
    db.close().await;
}

/// `matview` and `replica` need PostgreSQL: a pack on SQLite is refused before anything is
/// created, as the shop's scenario is.
#[tokio::test]
async fn matview_and_replica_refuse_a_pack_on_sqlite_before_creating_anything() {
    let cp = CompiledPack::new(load("ledger"), Engine::Sqlite, &sizes("ledger"));
    for k in ["matview", "replica"] {
        let (_dir, url) = sqlite_url("refused");
        let e = prepare(&url, "cqrs_bench", kind(k), &cp, 4)
            .await
            .expect_err("needs PostgreSQL");
        assert!(matches!(e, DbError::PackNeedsEngine { .. }), "{k}: {e}");
        assert!(
            e.to_string().starts_with(&format!("{k} needs PostgreSQL")),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        let path = url.sqlite_path().unwrap();
        assert!(!path.exists(), "{k}: {} was created", path.display());
    }
}
