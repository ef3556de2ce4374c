//! Rebuilding read models from the event log: equals the live read models, twice equals once,
//! one read model leaves the others alone, an empty log terminates (issue [consistency]).

mod common;

use std::process::Command as Process;

use common::*;
use cqrs_bench::backend::{cqrs_async, cqrs_sync};
use cqrs_bench::projection::projector::{Projector, ProjectorConfig};
use cqrs_bench::projection::read_store::reset_read_models;
use cqrs_bench::projection::rebuild::rebuild;
use cqrs_bench::projection::truth::{load, Source};
use cqrs_bench::projection::ProjectionName;
use cqrs_bench::verify::{verify, VerifyReport};
use cqrs_bench::workload::mix::{MixSpec, OpStream};
use sqlx::Executor;

async fn live_state(db: &cqrs_bench::db::Db) -> cqrs_bench::projection::ReadModels {
    let mut conn = db.read.acquire().await.unwrap();
    load(&mut conn, Source::ReadTables).await.unwrap()
}

/// Rebuilds (all read models, twice, then one) and compares with the live read models; then
/// runs the CLI with `cli_db` (its `--db` and `--schema` arguments).
async fn check_rebuild(url: &cqrs_bench::db::DbUrl, schema: &str, cli_db: &[&str]) {
    let spec = small_dataset();
    let b = open_backend(url, schema, cqrs_async::KIND, 9, &spec, false).await;
    let stream = OpStream::new(9, &spec, &MixSpec::default());
    for i in 0..600 {
        let _ = b.execute(&stream.write_op(i).unwrap()).await;
    }
    Projector::new(b.db.clone(), ProjectorConfig::default())
        .catch_up()
        .await
        .unwrap();
    let live = live_state(&b.db).await;

    let r1 = rebuild(&b.db, &ProjectionName::ALL, 500).await.unwrap();
    assert!(r1.events > 600, "{r1:?}");
    let once = live_state(&b.db).await;
    assert_eq!(
        VerifyReport::compare(&once, &live).mismatches,
        0,
        "rebuild differs from live"
    );
    rebuild(&b.db, &ProjectionName::ALL, 37).await.unwrap();
    let twice = live_state(&b.db).await;
    assert_eq!(once, twice, "rebuilding twice differs from once");

    // One read model: the others are not touched while it is emptied and rebuilt.
    reset_read_models(&b.db, &[ProjectionName::DailySales])
        .await
        .unwrap();
    let during = live_state(&b.db).await;
    assert!(during.daily_sales.is_empty());
    assert_eq!(during.product_catalog, live.product_catalog);
    assert_eq!(during.order_summary, live.order_summary);
    assert_eq!(during.product_sales, live.product_sales);
    let r = rebuild(&b.db, &[ProjectionName::DailySales], 100)
        .await
        .unwrap();
    assert!(r.events > 0);
    assert_eq!(live_state(&b.db).await, live);
    assert_eq!(verify(&b.db).await.unwrap().mismatches, 0);

    // The CLI prints events/s.
    let out = Process::new(env!("CARGO_BIN_EXE_cqrs-bench"))
        .arg("rebuild")
        .args(cli_db)
        .args(["--projection", "product_sales"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("rebuilt product_sales from") && stdout.contains("events/s"),
        "{stdout}"
    );
    assert_eq!(live_state(&b.db).await, live);
    if b.db.is_pg() {
        cleanup(&b.db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_equals_live_and_is_repeatable() {
    let (dir, url) = sqlite_url("rebuild");
    let file = format!("sqlite://{}", dir.path().join("rebuild.db").display());
    check_rebuild(&url, "cqrs_bench", &["--db", &file]).await;
}

/// On PostgreSQL a rebuild applies each batch to the read models concurrently, one
/// transaction each: the result must still equal the live read models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_on_postgres_equals_live() {
    let Some(url) = pg_url("rebuild_on_postgres_equals_live") else {
        return;
    };
    let schema = unique_schema("rebuild");
    let raw = std::env::var(PG_ENV).unwrap();
    check_rebuild(&url, &schema, &["--db", &raw, "--schema", &schema]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_log_rebuilds_to_empty_and_stops() {
    let (_dir, url) = sqlite_url("empty");
    let b = open_backend(
        &url,
        "cqrs_bench",
        cqrs_async::KIND,
        2,
        &small_dataset(),
        false,
    )
    .await;
    b.db.write.execute("DELETE FROM events").await.unwrap();
    let r = rebuild(&b.db, &ProjectionName::ALL, 500).await.unwrap();
    assert_eq!(r.events, 0);
    let state = live_state(&b.db).await;
    assert!(state.product_catalog.is_empty() && state.order_summary.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_rebuild_without_an_event_log() {
    let (_dir, url) = sqlite_url("nolog");
    let b = open_backend(
        &url,
        "cqrs_bench",
        cqrs_sync::KIND,
        2,
        &small_dataset(),
        false,
    )
    .await;
    let before = live_state(&b.db).await;
    assert!(rebuild(&b.db, &ProjectionName::ALL, 500).await.is_err());
    assert_eq!(
        live_state(&b.db).await,
        before,
        "a refused rebuild emptied the read models"
    );
}
