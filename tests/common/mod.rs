//! Shared set-up for integration tests: throwaway SQLite files, the PostgreSQL URL from
//! `CQRS_BENCH_TEST_PG`, and unique schema names.
#![allow(dead_code)]

pub mod nats;
pub mod pg_cluster;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cqrs_bench::backend::{prepare, Backend, BackendKind, BackendOptions};
use cqrs_bench::dataset::DatasetSpec;
use cqrs_bench::db::{Db, DbUrl};

pub const PG_ENV: &str = "CQRS_BENCH_TEST_PG";

/// Set by `.ci/run`: a test that lacks its service (PostgreSQL, Chromium, nats-server, the
/// PostgreSQL server binaries, `/proc`) fails instead of skipping. `CI=true` means the same.
pub const REQUIRE_SERVICES_ENV: &str = "CQRS_BENCH_REQUIRE_SERVICES";

/// Whether a missing service fails a test (CI) rather than skipping it.
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test that cannot run here for want of `missing` (what to do about it): says SKIPPED and
/// returns, or — where services are required (CI) — fails, so a skip is never a quiet pass.
pub fn skip(test: &str, missing: &str) {
    assert!(
        !services_required(),
        "{test}: {missing}; {REQUIRE_SERVICES_ENV}=1 (or CI=true) requires every service, so \
         this test fails instead of skipping"
    );
    eprintln!("SKIPPED {test}: {missing}");
}

/// The PostgreSQL URL of `CQRS_BENCH_TEST_PG` as written, or `None` after [`skip`].
pub fn pg_env(test: &str) -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            skip(test, &format!("set {PG_ENV} to a PostgreSQL URL to run it"));
            None
        }
    }
}

/// The PostgreSQL URL, or `None` after [`skip`].
pub fn pg_url(test: &str) -> Option<DbUrl> {
    pg_env(test).map(|u| DbUrl::parse(&u).expect("valid CQRS_BENCH_TEST_PG"))
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A schema name unique to this process and call.
pub fn unique_schema(prefix: &str) -> String {
    format!(
        "t_{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A SQLite URL in a fresh temporary directory (kept alive by the returned guard).
pub fn sqlite_url(name: &str) -> (tempfile::TempDir, DbUrl) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = DbUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join(format!("{name}.db")).display()
    ))
    .expect("sqlite url");
    (dir, url)
}

pub fn small_dataset() -> DatasetSpec {
    DatasetSpec {
        categories: 8,
        products: 120,
        users: 80,
        orders: 400,
        reviews: 400,
        price_changes: 80,
        days: 10,
        extra_product_indexes: 0,
    }
}

/// Seeds a database for `kind` and opens the backend (projector not running unless asked,
/// no search index).
pub async fn open_backend(
    url: &DbUrl,
    schema: &str,
    kind: BackendKind,
    seed: u64,
    spec: &DatasetSpec,
    run_projector: bool,
) -> Backend {
    let opts = BackendOptions {
        run_projector,
        ..BackendOptions::default()
    };
    open_backend_with(url, schema, kind, seed, spec, opts).await
}

/// `open_backend` with the search index kept, as a run keeps it (cqrs-async, event-sourced).
pub async fn open_searched_backend(
    url: &DbUrl,
    schema: &str,
    kind: BackendKind,
    seed: u64,
    spec: &DatasetSpec,
    run_projector: bool,
) -> Backend {
    let opts = BackendOptions {
        run_projector,
        search: true,
        ..BackendOptions::default()
    };
    open_backend_with(url, schema, kind, seed, spec, opts).await
}

async fn open_backend_with(
    url: &DbUrl,
    schema: &str,
    kind: BackendKind,
    seed: u64,
    spec: &DatasetSpec,
    opts: BackendOptions,
) -> Backend {
    let (db, _) = prepare(url, schema, kind, seed, spec, 8)
        .await
        .expect("seed");
    Backend::open(kind, db, opts).await.expect("open backend")
}

/// Drops what a test created on PostgreSQL.
pub async fn cleanup(db: &Db) {
    let _ = cqrs_bench::db::schema::drop_all(db).await;
    // The search index a backend kept for this schema (in the temporary directory).
    let _ = cqrs_bench::projection::search::discard(db, None);
    db.close().await;
}

/// What a run of the binary left: its exit code (`None` when it was killed at the deadline),
/// its output and how long it took.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `cmd` with stdin closed and its output captured; kills it after `limit`.
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Finished {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cqrs-bench");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    Finished {
        code: status.and_then(|s| s.code()),
        stdout: String::from_utf8_lossy(&t1.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t2.join().unwrap()).into_owned(),
        elapsed,
    }
}

/// Every command kind in a fixed mix, every query, Zipf-skewed products so hot ones run out
/// of stock and get rejected orders: the op stream the agreement and convergence tests replay.
pub fn mixed_commands() -> cqrs_bench::workload::mix::MixSpec {
    use cqrs_bench::domain::{CommandKind, QueryKind};
    use cqrs_bench::workload::keys::KeyDist;
    cqrs_bench::workload::mix::MixSpec {
        writes: [
            (CommandKind::PlaceOrder, 40.0),
            (CommandKind::PayOrder, 15.0),
            (CommandKind::ShipOrder, 10.0),
            (CommandKind::CancelOrder, 10.0),
            (CommandKind::AddReview, 15.0),
            (CommandKind::ChangePrice, 5.0),
            (CommandKind::Restock, 5.0),
        ]
        .into_iter()
        .collect(),
        reads: QueryKind::ALL.iter().map(|k| (*k, 1.0)).collect(),
        product_keys: KeyDist::Zipf { exponent: 1.2 },
        user_keys: KeyDist::Uniform,
        write_interval_us: 5_000_000,
        search_terms: Vec::new(),
    }
}
