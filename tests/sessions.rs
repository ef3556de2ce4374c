//! Driver sessions: a dedicated session keeps one connection between ops (as pgbench keeps one
//! per client), a shared one hands it back to the pool after every op, a connection that saw a
//! database error is not kept, and SQLite never gets dedicated sessions (its one writer
//! connection is the projector's too). On SQLite always; on PostgreSQL with `CQRS_BENCH_TEST_PG`.

mod common;

use std::time::{Duration, Instant};

use common::{pg_url, small_dataset, sqlite_url, unique_schema, PG_ENV};
use cqrs_bench::backend::normalized;
use cqrs_bench::backend::{prepare, Backend, BackendOptions, Session};
use cqrs_bench::db::{Db, DbUrl};

use sqlx::AnyPool;

/// Waits (up to 5 s) until the pool shows `idle` idle connections; returns what it shows.
async fn idle_settles_at(pool: &AnyPool, idle: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.num_idle() != idle && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.num_idle()
}

async fn check_pool_behaviour(pool: &AnyPool) {
    // Dedicated: the same connection serves every op and never goes back to the pool.
    let mut dedicated = Session::dedicated();
    for _ in 0..5 {
        let mut conn = dedicated.take(pool).await.expect("take");
        sqlx::query("SELECT 1")
            .execute(&mut *conn)
            .await
            .expect("select");
        dedicated.give_back(conn, true);
        assert!(dedicated.holds_connection());
    }
    assert_eq!(pool.size(), 1, "one connection opened for five ops");
    assert_eq!(
        idle_settles_at(pool, 0).await,
        0,
        "the held connection is not idle in the pool"
    );

    // After a database error the connection goes back to the pool, not kept.
    let conn = dedicated.take(pool).await.expect("take");
    dedicated.give_back(conn, false);
    assert!(!dedicated.holds_connection());
    assert_eq!(idle_settles_at(pool, 1).await, 1);

    // Shared: checked out per op and handed back.
    let mut shared = Session::shared();
    let conn = shared.take(pool).await.expect("take");
    assert_eq!(pool.num_idle(), 0, "checked out while in use");
    shared.give_back(conn, true);
    assert!(!shared.holds_connection());
    assert_eq!(idle_settles_at(pool, 1).await, 1);
}

async fn backend(url: &DbUrl, schema: &str) -> Backend {
    let (db, _) = prepare(url, schema, normalized::KIND, 3, &small_dataset(), 4)
        .await
        .expect("seed");
    Backend::open(
        normalized::KIND,
        db,
        BackendOptions {
            dedicated_sessions: true,
            ..BackendOptions::default()
        },
    )
    .await
    .expect("open")
}

#[tokio::test]
async fn sqlite_sessions_share_the_single_writer() {
    let (_dir, url) = sqlite_url("sessions");
    let b = backend(&url, "main").await;
    assert!(
        !b.session(true).is_dedicated(),
        "SQLite's writer connection must not be held by a worker"
    );
    assert!(
        b.session(false).is_dedicated(),
        "a SQLite reader keeps a read connection of its own"
    );
    check_pool_behaviour(&b.db.write).await;
    b.shutdown().await;
}

#[tokio::test]
async fn postgres_sessions_are_dedicated_when_asked() {
    let Some(url) = pg_url("postgres_sessions_are_dedicated_when_asked") else {
        return;
    };
    let schema = unique_schema("sessions");
    let b = backend(&url, &schema).await;
    assert!(b.session(true).is_dedicated() && b.session(false).is_dedicated());
    let db: Db = b.db.clone();
    b.shutdown().await;
    // A pool of its own, so no other user of the backend's pool disturbs the counts.
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(&std::env::var(PG_ENV).unwrap())
        .await
        .expect("pool");
    check_pool_behaviour(&pool).await;
    pool.close().await;
    common::cleanup(&db).await;
}
