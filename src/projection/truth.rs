//! What each read model must hold, computed from the normalized tables, and reading the read
//! tables back. Both produce `ReadModels` with the same column order, so one decoder per
//! table serves both. The same truth queries build the read models after seeding.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{
    CatalogRow, DailySalesRow, MonthlySalesRow, OrderSummaryRow, PriceChangeEntry, ProductSalesRow,
    ReadModels,
};
use crate::db::dialect::Dialect;
use crate::domain::month::{cell_key_sql, MICROS_PER_MONTH};
use crate::domain::{Event, MICROS_PER_DAY};

struct TableDef {
    table: &'static str,
    columns: &'static str,
    key: &'static str,
    truth: &'static str,
}

const TABLES: [TableDef; 6] = [
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
        // Per order first, then per day: the same figures as `COUNT(DISTINCT o.id)` over the
        // order lines (every order has a line), without sorting them all.
        truth: "SELECT placed_at / @DAY@, CAST(COUNT(*) AS BIGINT), CAST(SUM(items) AS BIGINT), \
                CAST(SUM(revenue) AS BIGINT) \
                FROM (SELECT o.id, o.placed_at, SUM(i.qty) AS items, SUM(i.qty * i.unit_cents) AS revenue \
                      FROM orders o JOIN order_items i ON i.order_id = o.id \
                      WHERE o.status <> 'cancelled' GROUP BY o.id, o.placed_at) per_order \
                GROUP BY placed_at / @DAY@",
    },
    TableDef {
        table: "product_sales",
        columns: "product_id, name, units, revenue_cents",
        key: "product_id",
        // Per product first, then joined: every product, with zeros where nothing (or only
        // cancelled orders) sold.
        truth: "SELECT p.id, p.name, CAST(COALESCE(s.units, 0) AS BIGINT), \
                CAST(COALESCE(s.revenue, 0) AS BIGINT) \
                FROM products p LEFT JOIN \
                     (SELECT i.product_id, SUM(i.qty) AS units, SUM(i.qty * i.unit_cents) AS revenue \
                      FROM order_items i JOIN orders o ON o.id = i.order_id \
                      WHERE o.status <> 'cancelled' GROUP BY i.product_id) s \
                ON s.product_id = p.id",
    },
    TableDef {
        table: "monthly_sales",
        columns: "cell, month, product_id, segment, orders, revenue_cents",
        key: "cell",
        // Per order (the whole-order cell, product 0) and per order line, then per cell.
        truth: "SELECT @CELL@, month, product_id, segment, CAST(COUNT(*) AS BIGINT), \
                CAST(SUM(revenue) AS BIGINT) \
                FROM (SELECT o.placed_at / @MONTH@ AS month, 0 AS product_id, \
                      u.segment AS segment, SUM(i.qty * i.unit_cents) AS revenue \
                      FROM orders o JOIN users u ON u.id = o.user_id \
                      JOIN order_items i ON i.order_id = o.id \
                      WHERE o.status <> 'cancelled' GROUP BY o.id, o.placed_at, u.segment \
                      UNION ALL \
                      SELECT o.placed_at / @MONTH@, i.product_id, u.segment, i.qty * i.unit_cents \
                      FROM orders o JOIN users u ON u.id = o.user_id \
                      JOIN order_items i ON i.order_id = o.id \
                      WHERE o.status <> 'cancelled') per_order \
                GROUP BY month, product_id, segment",
    },
];

fn truth_sql(t: &TableDef) -> String {
    t.truth
        .replace("@DAY@", &MICROS_PER_DAY.to_string())
        .replace("@MONTH@", &MICROS_PER_MONTH.to_string())
        .replace("@CELL@", &cell_key_sql("month", "product_id", "segment"))
}

/// `INSERT INTO <read table> SELECT <truth>` for every read table: builds read models from
/// the normalized tables in one pass each (used after seeding).
pub fn build_statements() -> Vec<String> {
    TABLES
        .iter()
        .map(|t| format!("INSERT INTO {} ({}) {}", t.table, t.columns, truth_sql(t)))
        .collect()
}

/// For `matview`: each read table replaced by a materialized view of its truth, with the
/// unique index on its key that `REFRESH … CONCURRENTLY` needs. (Their secondary indexes are
/// the read tables', created afterwards by the seed.) Empty where the engine has no
/// materialized views.
pub fn matview_statements(dialect: Dialect) -> Vec<String> {
    let mut out = Vec::new();
    for t in &TABLES {
        let Some(create) = dialect.materialized_view(t.table, t.columns, &truth_sql(t)) else {
            return Vec::new();
        };
        out.push(format!("DROP TABLE {}", t.table));
        out.push(create);
        out.push(format!(
            "CREATE UNIQUE INDEX {table}_key ON {table} ({key})",
            table = t.table,
            key = t.key
        ));
    }
    out
}

/// The read models' names, which are also the materialized views' for `matview`.
pub fn read_model_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|t| t.table)
}

/// The read models whose rows `event` changes (what a reader of them waits for, when they
/// are refreshed rather than kept up event by event).
pub fn read_models_changed_by(event: &Event) -> &'static [&'static str] {
    match event {
        Event::ProductAdded { .. } => &["product_catalog", "product_sales"],
        Event::OrderPlaced { .. } | Event::OrderCancelled { .. } => &[
            "product_catalog",
            "order_summary",
            "daily_sales",
            "product_sales",
            "monthly_sales",
        ],
        Event::OrderPaid { .. } | Event::OrderShipped { .. } => &["order_summary"],
        Event::ReviewAdded { .. } | Event::StockAdjusted { .. } => &["product_catalog"],
        Event::PriceChanged { .. } => &["product_catalog", "catalog_price_changes"],
    }
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
        // A day whose orders were all cancelled carries no information (see `canonical`).
        Source::ReadTables if t.table == "daily_sales" => format!(
            "SELECT {} FROM {} WHERE orders <> 0 OR items <> 0 OR revenue_cents <> 0 ORDER BY {}",
            t.columns, t.table, t.key
        ),
        Source::ReadTables if t.table == "monthly_sales" => format!(
            "SELECT {} FROM {} WHERE orders <> 0 OR revenue_cents <> 0 ORDER BY {}",
            t.columns, t.table, t.key
        ),
        Source::ReadTables => format!("SELECT {} FROM {} ORDER BY {}", t.columns, t.table, t.key),
        Source::Truth => format!("{} ORDER BY 1", truth_sql(t)),
    }
}

/// One table's differences, found by walking both sources in key order at once, so memory
/// stays flat however large the read models are.
#[derive(Debug, Clone, Default)]
pub struct TableDiff {
    pub table: &'static str,
    pub rows_actual: usize,
    pub rows_expected: usize,
    pub mismatches: usize,
    /// The first few differences (at most `keep`).
    pub first: Vec<super::RowDiff>,
}

/// Streams `table` from the read tables (on `actual`) and from the truth (on `expected`) and
/// diffs them row by row.
pub async fn diff_table(
    actual: &mut AnyConnection,
    expected: &mut AnyConnection,
    table: &str,
    keep: usize,
) -> Result<TableDiff, sqlx::Error> {
    use futures::TryStreamExt;
    let t = TABLES
        .iter()
        .find(|t| t.table == table)
        .expect("a read table");
    let sql_a = select_sql(t, Source::ReadTables);
    let sql_e = select_sql(t, Source::Truth);
    let mut a = sqlx::query(&sql_a).fetch(&mut *actual);
    let mut e = sqlx::query(&sql_e).fetch(&mut *expected);
    let mut out = TableDiff {
        table: t.table,
        ..TableDiff::default()
    };
    let mut next_a = a
        .try_next()
        .await?
        .map(|r| row_text(t.table, &r))
        .transpose()?;
    let mut next_e = e
        .try_next()
        .await?
        .map(|r| row_text(t.table, &r))
        .transpose()?;
    loop {
        let (advance_a, advance_e, diff) = match (&next_a, &next_e) {
            (None, None) => break,
            (Some((ka, ra)), Some((ke, re))) if ka == ke => {
                (true, true, (ra != re).then_some((*ka, Some(ra), Some(re))))
            }
            (Some((ka, ra)), Some((ke, _))) if ka < ke => {
                (true, false, Some((*ka, Some(ra), None)))
            }
            (Some((ka, ra)), None) => (true, false, Some((*ka, Some(ra), None))),
            (_, Some((ke, re))) => (false, true, Some((*ke, None, Some(re)))),
        };
        if let Some((key, actual_row, expected_row)) = diff {
            out.mismatches += 1;
            if out.first.len() < keep {
                out.first.push(super::RowDiff {
                    table: t.table.to_string(),
                    key,
                    actual: actual_row.cloned(),
                    expected: expected_row.cloned(),
                });
            }
        }
        if advance_a {
            out.rows_actual += 1;
            next_a = a
                .try_next()
                .await?
                .map(|r| row_text(t.table, &r))
                .transpose()?;
        }
        if advance_e {
            out.rows_expected += 1;
            next_e = e
                .try_next()
                .await?
                .map(|r| row_text(t.table, &r))
                .transpose()?;
        }
    }
    Ok(out)
}

/// A row's key and its typed value, printed.
fn row_text(table: &str, r: &AnyRow) -> Result<(i64, String), sqlx::Error> {
    let mut one = ReadModels::default();
    decode_into(&mut one, table, r)?;
    let text = match table {
        "product_catalog" => one
            .product_catalog
            .into_iter()
            .next()
            .map(|(k, v)| (k, format!("{v:?}"))),
        "catalog_price_changes" => one
            .catalog_price_changes
            .into_iter()
            .next()
            .map(|(k, v)| (k, format!("{v:?}"))),
        "order_summary" => one
            .order_summary
            .into_iter()
            .next()
            .map(|(k, v)| (k, format!("{v:?}"))),
        "daily_sales" => one
            .daily_sales
            .into_iter()
            .next()
            .map(|(k, v)| (k, format!("{v:?}"))),
        "product_sales" => one
            .product_sales
            .into_iter()
            .next()
            .map(|(k, v)| (k, format!("{v:?}"))),
        "monthly_sales" => one
            .monthly_sales
            .into_iter()
            .next()
            .map(|(k, v)| (k, format!("{v:?}"))),
        _ => None,
    };
    text.ok_or_else(|| sqlx::Error::Protocol(format!("{table}: row could not be decoded")))
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

/// The product catalog alone from `source` (what the search index holds, one row per
/// product).
pub async fn load_catalog_from(
    conn: &mut AnyConnection,
    source: Source,
) -> Result<std::collections::BTreeMap<i64, super::CatalogRow>, sqlx::Error> {
    let t = TABLES
        .iter()
        .find(|t| t.table == "product_catalog")
        .expect("product_catalog is a read table");
    let mut rm = ReadModels::default();
    for r in &sqlx::query(&select_sql(t, source))
        .fetch_all(&mut *conn)
        .await?
    {
        decode_into(&mut rm, t.table, r)?;
    }
    Ok(rm.product_catalog)
}

/// The product catalog read table as it is.
pub async fn load_catalog(
    conn: &mut AnyConnection,
) -> Result<std::collections::BTreeMap<i64, super::CatalogRow>, sqlx::Error> {
    load_catalog_from(conn, Source::ReadTables).await
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
        "monthly_sales" => {
            let row = MonthlySalesRow {
                cell: i(0)?,
                month: i(1)?,
                product_id: i(2)?,
                segment: i(3)?,
                orders: i(4)?,
                revenue_cents: i(5)?,
            };
            rm.monthly_sales.insert(row.cell, row);
        }
        _ => {}
    }
    Ok(())
}
