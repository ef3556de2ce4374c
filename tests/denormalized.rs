//! The `denormalized` backend (issue [stories] 18, point 3): its order lines carry copies of
//! the product's name and current price, a price change rewrites every historical line of
//! the product in its own transaction, the price paid at placement stays what it was (so the
//! answers that mean money agree with every other backend, `tests/backends_agree.rs`), verify
//! catches a line the rewrite missed, and a reader never sees a product half-rewritten while
//! a rewrite is uncommitted — though the same read does count one that was committed half.

mod common;

use common::*;
use cqrs_bench::backend::{denormalized, Backend};
use cqrs_bench::db::copies::{read_product_lines, LinesSeen};
use cqrs_bench::db::DbUrl;
use cqrs_bench::domain::{Command, Query, QueryAnswer};
use cqrs_bench::verify::verify;
use sqlx::Row;

/// The product with the most order lines, and how many it has.
async fn busiest_product(b: &Backend) -> (i64, i64) {
    let mut conn = b.db.read.acquire().await.unwrap();
    let row = sqlx::query(
        "SELECT product_id, CAST(COUNT(*) AS BIGINT) AS n FROM order_items \
         GROUP BY product_id ORDER BY n DESC, product_id LIMIT 1",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    (row.get(0), row.get(1))
}

/// The paid prices and price copies of a product's lines, in line order.
async fn lines_of(b: &Backend, product_id: i64) -> Vec<(i64, i64, i64)> {
    let mut conn = b.db.read.acquire().await.unwrap();
    sqlx::query(
        "SELECT order_id, unit_cents, product_cents FROM order_items WHERE product_id = $1 \
         ORDER BY order_id",
    )
    .bind(product_id)
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn seen(b: &Backend, product_id: i64) -> LinesSeen {
    let mut conn = b.db.read.acquire().await.unwrap();
    read_product_lines(&mut conn, product_id).await.unwrap()
}

async fn exercise(url: DbUrl, schema: String) {
    let spec = small_dataset();
    let b = open_backend(&url, &schema, denormalized::KIND, 7, &spec, false).await;
    // Seeded: every line carries its product's current details.
    let report = verify(&b.db).await.expect("verify");
    assert_eq!(report.mismatches, 0, "{report:?}");
    assert_eq!(report.models.len(), 1);
    assert_eq!(report.models[0].read_model.name(), "order_line_copies");
    assert!(report.models[0].rows_expected > 100, "{report:?}");

    let (product_id, n) = busiest_product(&b).await;
    assert!(n >= 5, "the busiest product has only {n} lines");
    let before = lines_of(&b, product_id).await;
    let users: Vec<Query> = (1..=spec.users)
        .map(|user_id| Query::UserOrders { user_id, limit: 50 })
        .collect();
    let mut totals = Vec::new();
    for q in &users {
        totals.push(format!("{:?}", b.query(q).await.unwrap()));
    }
    let new_cents = before[0].2 + 1_234;
    b.execute(&Command::ChangePrice {
        change_id: 900_001,
        product_id,
        cents: new_cents,
        at: 2_000_000_000_000_000,
    })
    .await
    .expect("change the price");
    // Every historical line was rewritten; the price paid stayed.
    let after = lines_of(&b, product_id).await;
    assert_eq!(after.len(), before.len());
    for ((o, paid, _), (o2, paid2, copy)) in before.iter().zip(&after) {
        assert_eq!((o, paid), (o2, paid2), "a paid price changed");
        assert_eq!(*copy, new_cents, "order {o} kept the old copy");
    }
    assert!(
        before.iter().any(|(_, paid, _)| *paid != new_cents),
        "the test would not tell a paid price from the copy"
    );
    // What the copy is not: no answer about money changed.
    for (q, t) in users.iter().zip(&totals) {
        assert_eq!(&format!("{:?}", b.query(q).await.unwrap()), t, "{q:?}");
    }
    let QueryAnswer::TopProducts(top) = b.query(&Query::TopProducts { n: 500 }).await.unwrap()
    else {
        panic!("top_products answered with another type")
    };
    assert!(top.iter().any(|t| t.product_id == product_id));
    // A new order copies today's details into its lines.
    b.execute(&Command::Restock {
        product_id,
        qty: 10,
        at: 2_000_000_000_000_001,
    })
    .await
    .expect("restock");
    b.execute(&Command::PlaceOrder {
        order_id: 900_001,
        user_id: 1,
        lines: vec![cqrs_bench::domain::OrderLine { product_id, qty: 1 }],
        at: 2_000_000_000_000_001,
    })
    .await
    .expect("place an order");
    assert_eq!(seen(&b, product_id).await.lines, n + 1);
    assert_eq!(seen(&b, product_id).await.stale, 0);
    assert_eq!(verify(&b.db).await.unwrap().mismatches, 0);

    // A rewrite of half the lines, uncommitted: a reader sees none of it (SQLite's WAL
    // snapshot, PostgreSQL's MVCC snapshot).
    let half: i64 = before[before.len() / 2].0;
    let mut conn = b.db.write.acquire().await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    sqlx::query(
        "UPDATE order_items SET product_cents = product_cents + 1 \
         WHERE product_id = $1 AND order_id <= $2",
    )
    .bind(product_id)
    .bind(half)
    .execute(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        seen(&b, product_id).await.stale,
        0,
        "a reader saw an uncommitted rewrite"
    );
    // Committed half-done (a rewrite that missed lines): the same read counts it, and
    // verify catches it.
    tx.commit().await.unwrap();
    drop(conn);
    let torn = seen(&b, product_id).await;
    let rewritten = before.iter().filter(|(o, _, _)| *o <= half).count() as i64;
    assert_eq!(torn.stale, rewritten, "{torn:?}");
    let report = verify(&b.db).await.unwrap();
    assert_eq!(report.mismatches as i64, rewritten, "{report:?}");
    assert!(
        report.models[0].first_diffs[0].contains(&format!("product {product_id}: copy ")),
        "{report:?}"
    );

    // One corrupted name is caught too.
    let mut conn = b.db.write.acquire().await.unwrap();
    sqlx::query("UPDATE order_items SET product_name = 'renamed' WHERE order_id = $1")
        .bind(after.last().unwrap().0)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let report = verify(&b.db).await.unwrap();
    assert!(report.mismatches as i64 > rewritten, "{report:?}");

    let db = b.db.clone();
    b.shutdown().await;
    if db.is_pg() {
        cleanup(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormalized_rewrites_copies_and_verify_catches_a_missed_line_on_sqlite() {
    let (_dir, url) = sqlite_url("denormalized");
    exercise(url, "cqrs_bench".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormalized_rewrites_copies_and_verify_catches_a_missed_line_on_postgres() {
    let Some(url) = pg_url("denormalized_on_postgres") else {
        return;
    };
    exercise(url, unique_schema("denorm")).await;
}
