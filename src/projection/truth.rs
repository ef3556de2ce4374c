//! What each read model must hold, computed from the normalized tables, and reading the read
//! tables back. Both produce `ReadModels` with the same column order, so one decoder per
//! table serves both. The same truth queries build the read models after seeding.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{
    CatalogRow, DailySalesRow, OrderSummaryRow, PriceChangeEntry, ProductSalesRow, ReadModels,
};
use crate::domain::MICROS_PER_DAY;

struct TableDef {
    table: &'static str,
    columns: &'static str,
    key: &'static str,
    truth: &'static str,
}

const TABLES: [TableDef; 5] = [
    TableDef {
        table: "product_catalog",
        columns: "product_id, name, category_id, category_name, price_cents, stock, version, review_count, rating_sum",
        key: "product_id",
        truth: "SELECT p.id, p.name, p.category_id, c.name, p.price_cents, p.stock, p.version, \
                COALESCE(r.n, 0), COALESCE(r.s, 0) \
                FROM products p JOIN categories c ON c.id = p.category_id \
                LEFT JOIN (SELECT product_id, CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(rating) AS BIGINT) AS s \
                           FROM reviews GROUP BY product_id) r ON r.product_id = p.id",
    },
    TableDef {
        table: "catalog_price_changes",
        columns: "change_id, product_id, old_cents, new_cents, changed_at",
        key: "change_id",
        truth: "SELECT id, product_id, old_cents, new_cents, changed_at FROM price_history",
    },
    TableDef {
        table: "order_summary",
        columns: "order_id, user_id, placed_at, status, item_count, total_cents, version",
        key: "order_id",
        truth: "SELECT o.id, o.user_id, o.placed_at, o.status, CAST(SUM(i.qty) AS BIGINT), \
                CAST(SUM(i.qty * i.unit_cents) AS BIGINT), o.version \
                FROM orders o JOIN order_items i ON i.order_id = o.id \
                GROUP BY o.id, o.user_id, o.placed_at, o.status, o.version",
    },
    TableDef {
        table: "daily_sales",
        columns: "day, orders, items, revenue_cents",
        key: "day",
        truth: "SELECT o.placed_at / @DAY@, CAST(COUNT(DISTINCT o.id) AS BIGINT), \
                CAST(SUM(i.qty) AS BIGINT), CAST(SUM(i.qty * i.unit_cents) AS BIGINT) \
                FROM orders o JOIN order_items i ON i.order_id = o.id \
                WHERE o.status <> 'cancelled' GROUP BY o.placed_at / @DAY@",
    },
    TableDef {
        table: "product_sales",
        columns: "product_id, name, units, revenue_cents",
        key: "product_id",
        truth: "SELECT p.id, p.name, \
                CAST(COALESCE(SUM(CASE WHEN o.status <> 'cancelled' THEN i.qty ELSE 0 END), 0) AS BIGINT), \
                CAST(COALESCE(SUM(CASE WHEN o.status <> 'cancelled' THEN i.qty * i.unit_cents ELSE 0 END), 0) AS BIGINT) \
                FROM products p LEFT JOIN order_items i ON i.product_id = p.id \
                LEFT JOIN orders o ON o.id = i.order_id GROUP BY p.id, p.name",
    },
];

fn truth_sql(t: &TableDef) -> String {
    t.truth.replace("@DAY@", &MICROS_PER_DAY.to_string())
}

/// `INSERT INTO <read table> SELECT <truth>` for every read table: builds read models from
/// the normalized tables in one pass each (used after seeding).
pub fn build_statements() -> Vec<String> {
    TABLES
        .iter()
        .map(|t| format!("INSERT INTO {} ({}) {}", t.table, t.columns, truth_sql(t)))
        .collect()
}

/// Where the rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The read tables as they are.
    ReadTables,
    /// Computed from the normalized write tables.
    Truth,
}

fn select_sql(t: &TableDef, source: Source) -> String {
    match source {
        Source::ReadTables => format!("SELECT {} FROM {} ORDER BY {}", t.columns, t.table, t.key),
        Source::Truth => format!("{} ORDER BY 1", truth_sql(t)),
    }
}

/// Loads every read model from `source`, in one transaction so the tables are consistent.
pub async fn load(conn: &mut AnyConnection, source: Source) -> Result<ReadModels, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut rm = ReadModels::default();
    for t in &TABLES {
        let rows = sqlx::query(&select_sql(t, source))
            .fetch_all(&mut *tx)
            .await?;
        for r in &rows {
            decode_into(&mut rm, t.table, r)?;
        }
    }
    tx.commit().await?;
    Ok(rm.canonical())
}

fn decode_into(rm: &mut ReadModels, table: &str, r: &AnyRow) -> Result<(), sqlx::Error> {
    let i = |n: usize| r.try_get::<i64, _>(n);
    let s = |n: usize| r.try_get::<String, _>(n);
    match table {
        "product_catalog" => {
            let row = CatalogRow {
                product_id: i(0)?,
                name: s(1)?,
                category_id: i(2)?,
                category_name: s(3)?,
                price_cents: i(4)?,
                stock: i(5)?,
                version: i(6)?,
                review_count: i(7)?,
                rating_sum: i(8)?,
            };
            rm.product_catalog.insert(row.product_id, row);
        }
        "catalog_price_changes" => {
            let row = PriceChangeEntry {
                change_id: i(0)?,
                product_id: i(1)?,
                old_cents: i(2)?,
                new_cents: i(3)?,
                changed_at: i(4)?,
            };
            rm.catalog_price_changes.insert(row.change_id, row);
        }
        "order_summary" => {
            let row = OrderSummaryRow {
                order_id: i(0)?,
                user_id: i(1)?,
                placed_at: i(2)?,
                status: s(3)?,
                item_count: i(4)?,
                total_cents: i(5)?,
                version: i(6)?,
            };
            rm.order_summary.insert(row.order_id, row);
        }
        "daily_sales" => {
            let row = DailySalesRow {
                day: i(0)?,
                orders: i(1)?,
                items: i(2)?,
                revenue_cents: i(3)?,
            };
            rm.daily_sales.insert(row.day, row);
        }
        "product_sales" => {
            let row = ProductSalesRow {
                product_id: i(0)?,
                name: s(1)?,
                units: i(2)?,
                revenue_cents: i(3)?,
            };
            rm.product_sales.insert(row.product_id, row);
        }
        _ => {}
    }
    Ok(())
}
