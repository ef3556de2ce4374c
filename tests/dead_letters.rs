//! Poison events: retried, then dead-lettered exactly once; later events of the same stream
//! wait behind it; other read models keep projecting; replay after the fix converges
//! (issue [consistency]).

mod common;

use common::*;
use cqrs_bench::backend::cqrs_async;
use cqrs_bench::domain::{Command, OrderLine};
use cqrs_bench::projection::dead_letter::{list, replay, MAX_ATTEMPTS};
use cqrs_bench::projection::projector::{Projector, ProjectorConfig};
use cqrs_bench::projection::ProjectionName;
use cqrs_bench::verify::verify;
use sqlx::Executor;

const AT: i64 = 1_767_225_600_000_000;

fn place(order_id: i64, product_id: i64) -> Command {
    Command::PlaceOrder {
        order_id,
        user_id: 1,
        lines: vec![OrderLine { product_id, qty: 1 }],
        at: AT,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_event_is_parked_once_and_replay_converges() {
    let (_dir, url) = sqlite_url("poison");
    let b = open_backend(
        &url,
        "cqrs_bench",
        cqrs_async::KIND,
        4,
        &small_dataset(),
        false,
    )
    .await;
    let projector = Projector::new(b.db.clone(), ProjectorConfig::default());
    projector.catch_up().await.unwrap();

    // The order_summary handler fails for order 777777 (a constraint the read table rejects).
    b.db.write
        .execute(
            "CREATE TRIGGER poison BEFORE INSERT ON order_summary WHEN NEW.order_id = 777777 \
             BEGIN SELECT RAISE(ABORT, 'poison order'); END",
        )
        .await
        .unwrap();
    b.execute(&place(777_777, 5)).await.unwrap();
    b.execute(&place(777_778, 6)).await.unwrap();
    b.execute(&Command::PayOrder {
        order_id: 777_777,
        at: AT + 1,
    })
    .await
    .unwrap();
    b.execute(&Command::PayOrder {
        order_id: 777_778,
        at: AT + 1,
    })
    .await
    .unwrap();
    projector.catch_up().await.unwrap();
    // Running again must not park anything twice.
    projector.catch_up().await.unwrap();

    let letters = list(&b.db).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters
        .iter()
        .all(|d| d.projection == "order_summary" && d.stream == "order-777777"));
    assert_eq!(
        letters[0].attempts, MAX_ATTEMPTS as i64,
        "the poison event was retried"
    );
    assert!(
        letters[0].error.contains("poison order"),
        "{}",
        letters[0].error
    );
    assert_eq!(
        letters[1].attempts, 0,
        "the later event of the stream waits, untried"
    );

    // Other streams and other read models kept projecting.
    let other: Option<String> =
        sqlx::query_scalar("SELECT status FROM order_summary WHERE order_id = 777778")
            .fetch_optional(&b.db.read)
            .await
            .unwrap();
    assert_eq!(other.as_deref(), Some("paid"));
    let report = verify(&b.db).await.unwrap();
    let by_model = |p: ProjectionName| {
        report
            .models
            .iter()
            .find(|m| m.read_model == p)
            .unwrap()
            .mismatches
    };
    assert_eq!(by_model(ProjectionName::OrderSummary), 1, "{report:?}");
    assert_eq!(by_model(ProjectionName::DailySales), 0);
    assert_eq!(by_model(ProjectionName::ProductSales), 0);
    assert_eq!(by_model(ProjectionName::ProductCatalog), 0);
    assert_eq!(
        projector.backlog().await.unwrap(),
        0,
        "the checkpoint moved past the poison event"
    );

    // While the fault is there, a replay changes nothing.
    let r = replay(&b.db, &ProjectionName::ALL).await.unwrap();
    assert_eq!((r.replayed, r.still_failing), (0, 2));

    // Fix the fault, replay: converges, dead letters gone.
    b.db.write.execute("DROP TRIGGER poison").await.unwrap();
    let r = replay(&b.db, &ProjectionName::ALL).await.unwrap();
    assert_eq!((r.replayed, r.still_failing), (2, 0));
    assert!(list(&b.db).await.unwrap().is_empty());
    let report = verify(&b.db).await.unwrap();
    assert_eq!(report.mismatches, 0, "{report:?}");
    let status: String =
        sqlx::query_scalar("SELECT status FROM order_summary WHERE order_id = 777777")
            .fetch_one(&b.db.read)
            .await
            .unwrap();
    assert_eq!(status, "paid", "replayed in stream order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_payload_is_dead_lettered_for_every_read_model() {
    let (_dir, url) = sqlite_url("unreadable");
    let b = open_backend(
        &url,
        "cqrs_bench",
        cqrs_async::KIND,
        4,
        &small_dataset(),
        false,
    )
    .await;
    let projector = Projector::new(b.db.clone(), ProjectorConfig::default());
    projector.catch_up().await.unwrap();
    b.db.write
        .execute("INSERT INTO events (stream, kind, payload) VALUES ('order-1', 'order_paid', '{not json')")
        .await
        .unwrap();
    b.execute(&place(888_888, 7)).await.unwrap();
    projector.catch_up().await.unwrap();
    let letters = list(&b.db).await.unwrap();
    assert_eq!(letters.len(), ProjectionName::ALL.len(), "{letters:?}");
    assert!(letters
        .iter()
        .all(|d| d.error.contains("unreadable payload")));
    let placed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM order_summary WHERE order_id = 888888")
            .fetch_one(&b.db.read)
            .await
            .unwrap();
    assert_eq!(placed, 1, "the next event was applied");
}
