//! A pinned horizon on PostgreSQL: a session left idle in a transaction holds the projector
//! back. Lag grows and is reported as such (not as loss); once the session goes, the projector
//! catches up and nothing is missing (issue [faults] 3).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use cqrs_bench::backend::cqrs_async;
use cqrs_bench::backend::{prepare, Backend, BackendOptions};
use cqrs_bench::projection::event_source::pinning_sessions;
use cqrs_bench::projection::projector::LagTracker;
use cqrs_bench::projection::read_store::checkpoint_counts;
use cqrs_bench::verify::verify;
use cqrs_bench::workload::mix::{MixSpec, OpStream};
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_horizon_is_lag_not_loss() {
    let Some(url) = pg_url("pinned_horizon_is_lag_not_loss") else {
        return;
    };
    let spec = small_dataset();
    let schema = unique_schema("pin");
    let (db, _) = prepare(&url, &schema, cqrs_async::KIND, 6, &spec, 4)
        .await
        .unwrap();
    let (lag, mut lag_rx) = LagTracker::new();
    let b = Backend::open(
        cqrs_async::KIND,
        db.clone(),
        BackendOptions {
            lag: Some(lag.clone()),
            ..BackendOptions::default()
        },
    )
    .await
    .unwrap();
    lag.forget_unmatched();
    let seeded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&db.read)
        .await
        .unwrap();

    // Someone's session: a transaction with an id, then idle.
    let mut blocker = sqlx::PgConnection::connect(&url.raw_for_connect())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut blocker)
        .await
        .unwrap();

    let stream = OpStream::new(6, &spec, &MixSpec::default());
    for i in 0..200 {
        let _ = b.execute(&stream.write_op(i).unwrap()).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let projector = b.projector().unwrap();
    let held = projector.backlog().await.unwrap();
    assert!(
        held > 0,
        "nothing held back: the blocker did not pin the horizon"
    );
    assert!(
        projector.stats.horizon_waits.load(Ordering::Relaxed) > 0,
        "the wait was not reported"
    );
    let pins = pinning_sessions(&db).await.unwrap();
    assert!(
        pins.iter().any(|p| p.contains("idle in transaction")),
        "{pins:?}"
    );

    // The session goes: everything arrives, nothing is missing or doubled.
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    drop(blocker);
    b.wait_caught_up(Duration::from_secs(60)).await.unwrap();
    let report = verify(&db).await.unwrap();
    assert_eq!(report.mismatches, 0, "{report:?}");
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&db.read)
        .await
        .unwrap();
    for (name, applied, duplicates) in checkpoint_counts(&db).await.unwrap() {
        assert_eq!(applied, total - seeded, "{name}");
        assert_eq!(duplicates, 0, "{name}");
    }
    // The lag shows the wait.
    let mut max_lag = Duration::ZERO;
    while let Ok(s) = lag_rx.try_recv() {
        max_lag = max_lag.max(s.lag);
    }
    assert!(
        max_lag >= Duration::from_secs(1),
        "max lag {max_lag:?} does not show the pinned horizon"
    );
    b.shutdown().await;
    cleanup(&db).await;
}
