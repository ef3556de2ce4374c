//! The projector on PostgreSQL never skips a late commit and applies nothing twice
//! (issue [core] 3 and 4).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use cqrs_bench::backend::cqrs_async;
use cqrs_bench::backend::{append_events, write, Backend, ExecError};
use cqrs_bench::domain::{Command, CommandKind, OrderLine};
use cqrs_bench::projection::projector::{Projector, ProjectorConfig, ProjectorMode};
use cqrs_bench::projection::read_store::checkpoint_counts;
use cqrs_bench::projection::sql::{apply_batch, Delivered, Guard};
use cqrs_bench::projection::ProjectionName;
use cqrs_bench::verify::verify;
use cqrs_bench::workload::keys::KeyDist;
use cqrs_bench::workload::mix::{MixSpec, OpStream};
use sqlx::Row;

fn order(order_id: i64, product_id: i64) -> Command {
    Command::PlaceOrder {
        order_id,
        user_id: 1,
        lines: vec![OrderLine { product_id, qty: 1 }],
        at: 1_767_225_600_000_000,
    }
}

async fn order_in_read_model(b: &Backend, order_id: i64) -> bool {
    sqlx::query("SELECT 1 FROM order_summary WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&b.db.read)
        .await
        .unwrap()
        .is_some()
}

/// Catches up until nothing is left. Other sessions of the cluster (parallel tests) can hold
/// the horizon back for a moment: that is lag, so wait it out rather than read it as loss.
async fn settle(projector: &Projector) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        projector.catch_up().await.unwrap();
        if projector.backlog().await.unwrap() == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "projector never caught up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A opens, appends and stays open; B appends and commits; the projector runs; then A ends.
async fn late_commit(commit_a: bool, mode: ProjectorMode) -> (bool, bool, Backend) {
    let url = pg_url("late_commit").expect("checked by caller");
    let schema = unique_schema("late");
    let b = open_backend(&url, &schema, cqrs_async::KIND, 3, &small_dataset(), false).await;
    let projector = Projector::new(
        b.db.clone(),
        ProjectorConfig {
            mode,
            ..ProjectorConfig::default()
        },
    );
    // Transaction A: a real command and its outbox row, not committed yet.
    let mut conn_a = b.db.write.acquire().await.unwrap();
    let mut tx_a = sqlx::Connection::begin(&mut *conn_a).await.unwrap();
    let events = write::execute(&mut tx_a, b.db.dialect(), &order(9_000_001, 10))
        .await
        .unwrap();
    append_events(&mut tx_a, &events).await.unwrap();
    // Transaction B commits after A took its sequence number.
    b.execute(&order(9_000_002, 11)).await.unwrap();
    projector.catch_up().await.unwrap();
    let b_before = order_in_read_model(&b, 9_000_002).await;
    if commit_a {
        tx_a.commit().await.unwrap();
    } else {
        tx_a.rollback().await.unwrap();
    }
    drop(conn_a);
    settle(&projector).await;
    let a_applied = order_in_read_model(&b, 9_000_001).await;
    let b_applied = order_in_read_model(&b, 9_000_002).await;
    assert!(b_applied, "B's event was never applied");
    // With the horizon, B waits for A (lag, not loss); the naive tail takes B at once.
    if mode == ProjectorMode::ExactlyOnce {
        assert!(!b_before, "B was applied while A, below it, was still open");
    }
    (a_applied, b_before, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commit_is_applied() {
    if pg_url("late_commit_is_applied").is_none() {
        return;
    }
    let (a_applied, _, b) = late_commit(true, ProjectorMode::ExactlyOnce).await;
    assert!(a_applied, "A committed late and its event was skipped");
    let report = verify(&b.db).await.unwrap();
    assert_eq!(report.mismatches, 0, "{report:?}");
    cleanup(&b.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_event_is_passed_over() {
    if pg_url("rolled_back_event_is_passed_over").is_none() {
        return;
    }
    let (a_applied, _, b) = late_commit(false, ProjectorMode::ExactlyOnce).await;
    assert!(!a_applied, "a rolled-back order reached the read model");
    let report = verify(&b.db).await.unwrap();
    assert_eq!(report.mismatches, 0, "{report:?}");
    assert_eq!(b.projector().unwrap().backlog().await.unwrap(), 0);
    cleanup(&b.db).await;
}

/// The negative control: tailing `seq > checkpoint` loses A's late commit for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_tail_skips_the_late_commit() {
    if pg_url("naive_tail_skips_the_late_commit").is_none() {
        return;
    }
    let (a_applied, b_before, b) = late_commit(true, ProjectorMode::Naive).await;
    assert!(b_before);
    assert!(
        !a_applied,
        "the naive projector was expected to skip the late commit"
    );
    let report = verify(&b.db).await.unwrap();
    assert!(
        report.mismatches > 0,
        "verify did not notice the skipped event"
    );
    cleanup(&b.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_nothing() {
    let Some(url) = pg_url("concurrent_writers_lose_nothing") else {
        return;
    };
    const WRITERS: u64 = 8;
    const PER_WRITER: u64 = 1_000;
    let spec = small_dataset();
    let schema = unique_schema("conc");
    let b = Arc::new(open_backend(&url, &schema, cqrs_async::KIND, 5, &spec, true).await);
    let seed_events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&b.db.read)
        .await
        .unwrap();
    let mix = MixSpec {
        writes: [
            (CommandKind::PlaceOrder, 50.0),
            (CommandKind::PayOrder, 10.0),
            (CommandKind::CancelOrder, 10.0),
            (CommandKind::AddReview, 20.0),
            (CommandKind::ChangePrice, 5.0),
            (CommandKind::Restock, 5.0),
        ]
        .into_iter()
        .collect(),
        product_keys: KeyDist::Zipf { exponent: 1.1 },
        ..MixSpec::default()
    };
    let stream = Arc::new(OpStream::new(5, &spec, &mix));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let b = b.clone();
        let stream = stream.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut rejected) = (0u64, 0u64);
            for k in 0..PER_WRITER {
                let cmd = stream.write_op(k * WRITERS + w).unwrap();
                match b.execute(&cmd).await {
                    Ok(_) => ok += 1,
                    Err(ExecError::Domain(_)) => rejected += 1,
                    Err(e) => panic!("writer {w}: {e}"),
                }
            }
            (ok, rejected)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap().0;
    }
    assert!(ok > 4_000, "only {ok} commands succeeded");
    b.wait_caught_up(Duration::from_secs(120)).await.unwrap();
    let report = verify(&b.db).await.unwrap();
    assert_eq!(report.mismatches, 0, "{report:?}");

    // Count: every event after the seed applied exactly once to every read model.
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&b.db.read)
        .await
        .unwrap();
    let new_events = total - seed_events;
    assert!(
        new_events as u64 >= ok,
        "{new_events} events for {ok} commands"
    );
    for (name, applied, duplicates) in checkpoint_counts(&b.db).await.unwrap() {
        assert_eq!(
            applied, new_events,
            "{name}: applied {applied} of {new_events} events"
        );
        assert_eq!(duplicates, 0, "{name}: {duplicates} events delivered twice");
    }
    // The ledgers hold exactly the counter events, once each.
    for (ledger, kinds) in [
        ("daily_sales_applied", "'order_placed', 'order_cancelled'"),
        ("product_sales_applied", "'order_placed', 'order_cancelled'"),
        ("monthly_sales_applied", "'order_placed', 'order_cancelled'"),
        ("product_catalog_applied", "'review_added'"),
    ] {
        let row = sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) FROM {ledger}), \
             (SELECT COUNT(*) FROM events WHERE seq > $1 AND kind IN ({kinds}))"
        ))
        .bind(seed_events)
        .fetch_one(&b.db.read)
        .await
        .unwrap();
        let (in_ledger, expected): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(in_ledger, expected, "{ledger}");
        assert!(expected > 0);
    }
    assert_eq!(
        b.projector()
            .unwrap()
            .stats
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let db = b.db.clone();
    Arc::try_unwrap(b)
        .ok()
        .expect("writers done")
        .shutdown()
        .await;
    cleanup(&db).await;
}

async fn units_sold(b: &Backend, product_id: i64) -> i64 {
    sqlx::query("SELECT units FROM product_sales WHERE product_id = $1")
        .bind(product_id)
        .fetch_one(&b.db.read)
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

/// Two transactions claim the same event for a counter at once (the ledger check, then the
/// insert): the second waits on the first's ledger row and must not count the event again,
/// whether it fails (to be retried) or finds it recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_count_an_event_once() {
    let Some(url) = pg_url("racing_claims_count_an_event_once") else {
        return;
    };
    let schema = unique_schema("race");
    let b = open_backend(&url, &schema, cqrs_async::KIND, 3, &small_dataset(), false).await;
    let receipt = b.execute(&order(9_300_001, 12)).await.unwrap();
    let delivered = Delivered {
        seq: receipt.seqs[0],
        event: receipt.events[0].clone(),
    };
    let before = units_sold(&b, 12).await;

    let mut conn_a = b.db.write.acquire().await.unwrap();
    let mut tx_a = sqlx::Connection::begin(&mut *conn_a).await.unwrap();
    let a = apply_batch(
        &mut tx_a,
        std::slice::from_ref(&delivered),
        &[ProjectionName::ProductSales],
        Guard::Ledger,
    )
    .await
    .unwrap();
    assert_eq!(a.counted, 1);

    let db = b.db.clone();
    let second = tokio::spawn(async move {
        let mut conn = db.write.acquire().await.unwrap();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let r = apply_batch(
            &mut tx,
            std::slice::from_ref(&delivered),
            &[ProjectionName::ProductSales],
            Guard::Ledger,
        )
        .await;
        match r {
            Ok(stats) => {
                tx.commit().await.unwrap();
                Ok(stats.counted)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    // Let the second claimer get past its ledger check and wait on A's row.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx_a.commit().await.unwrap();
    drop(conn_a);
    match second.await.unwrap() {
        Ok(counted) => assert_eq!(counted, 0, "the second claimer counted the event again"),
        Err(e) => assert!(e.contains("claimed concurrently"), "{e}"),
    }
    assert_eq!(
        units_sold(&b, 12).await - before,
        1,
        "one order line of qty 1 must add exactly one unit"
    );
    cleanup(&b.db).await;
}
