//! The `denormalized` backend's copies of product details in the order lines: each
//! `order_items` row carries its product's name (`product_name`) and *current* price
//! (`product_cents`), besides the price paid at placement (`unit_cents`, which the domain
//! needs). Filled when the dataset is seeded and when an order is placed; a price change
//! rewrites every historical line of its product. The same SQL on both engines.

use sqlx::{AnyConnection, Row};

/// Copies every line's product name and price from `products` (the seed's statement, run
/// after the write tables are loaded and keyed).
pub const FILL_ALL: &str = "UPDATE order_items SET \
     product_name = (SELECT p.name FROM products p WHERE p.id = order_items.product_id), \
     product_cents = (SELECT p.price_cents FROM products p WHERE p.id = order_items.product_id)";

/// Copies the product details into the lines of one order, just placed (inside the
/// order's transaction, after its lines were inserted).
pub async fn copy_into_order(conn: &mut AnyConnection, order_id: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE order_items SET \
         product_name = (SELECT p.name FROM products p WHERE p.id = order_items.product_id), \
         product_cents = (SELECT p.price_cents FROM products p WHERE p.id = order_items.product_id) \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Rewrites the price copy of every order line of `product_id` (inside the price change's
/// transaction); returns how many lines it rewrote.
pub async fn rewrite_price(
    conn: &mut AnyConnection,
    product_id: i64,
    cents: i64,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE order_items SET product_cents = $1 WHERE product_id = $2")
            .bind(cents)
            .bind(product_id)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

/// The lines whose copies do not equal their product's row (a missing copy counts).
const STALE: &str = "i.product_name IS NULL OR i.product_cents IS NULL \
     OR i.product_name <> p.name OR i.product_cents <> p.price_cents";

/// What one read of a product's lines saw: how many lines it has, and how many of them
/// carried a copy that was not the product's price in the same snapshot (a half-rewritten
/// product, which a reader must never see).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinesSeen {
    pub lines: i64,
    pub stale: i64,
}

/// Reads the lines of one product against the product, in one statement (one snapshot on
/// both engines).
pub async fn read_product_lines(
    conn: &mut AnyConnection,
    product_id: i64,
) -> Result<LinesSeen, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN {STALE} THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM order_items i JOIN products p ON p.id = i.product_id WHERE i.product_id = $1"
    ))
    .bind(product_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(LinesSeen {
        lines: row.try_get(0)?,
        stale: row.try_get(1)?,
    })
}

/// Every order line's copies against the products table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiesCheck {
    pub lines: usize,
    /// Lines whose copy is missing or differs from the product's name or price.
    pub stale: usize,
    /// The first few, as `order 12 product 3: copy "p3" 450 ¢, product "p3" 500 ¢`.
    pub first: Vec<String>,
}

/// Compares every line's copies with the products table.
pub async fn check(conn: &mut AnyConnection, shown: usize) -> Result<CopiesCheck, sqlx::Error> {
    let counts = sqlx::query(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN {STALE} THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM order_items i JOIN products p ON p.id = i.product_id"
    ))
    .fetch_one(&mut *conn)
    .await?;
    let lines: i64 = counts.try_get(0)?;
    let stale: i64 = counts.try_get(1)?;
    let rows = sqlx::query(&format!(
        "SELECT i.order_id, i.product_id, i.product_name, i.product_cents, p.name, p.price_cents \
         FROM order_items i JOIN products p ON p.id = i.product_id WHERE {STALE} \
         ORDER BY i.order_id, i.product_id LIMIT $1"
    ))
    .bind(shown as i64)
    .fetch_all(&mut *conn)
    .await?;
    let mut first = Vec::with_capacity(rows.len());
    for r in rows {
        let name: Option<String> = r.try_get(2)?;
        let cents: Option<i64> = r.try_get(3)?;
        first.push(format!(
            "order {} product {}: copy {} {}, product {:?} {} ¢",
            r.try_get::<i64, _>(0)?,
            r.try_get::<i64, _>(1)?,
            name.map(|n| format!("{n:?}"))
                .unwrap_or_else(|| "NULL".into()),
            cents
                .map(|c| format!("{c} ¢"))
                .unwrap_or_else(|| "NULL".into()),
            r.try_get::<String, _>(4)?,
            r.try_get::<i64, _>(5)?,
        ));
    }
    Ok(CopiesCheck {
        lines: lines as usize,
        stale: stale as usize,
        first,
    })
}
