//! The dataset: generated deterministically from a seed and sizes, bulk-loaded (COPY on
//! PostgreSQL, large multi-row inserts on SQLite) in one transaction, identical for every
//! backend. CQRS backends also get their read models, built by the same "truth" SQL that
//! verify uses; the async backend also gets the seed's history in its event log, so a rebuild
//! from the log reproduces the read models.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sqlx::Executor;

use super::schema::{self, META_TABLE};
use super::sql::{insert_rows, Param};
use super::{Db, DbResult, Engine};
use crate::domain::{Event, OrderStatus, PricedLine, ProductState, MICROS_PER_DAY};
use crate::projection;
use crate::workload::rng::Rng;

/// Sizes of the seeded dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub categories: i64,
    pub products: i64,
    pub users: i64,
    pub orders: i64,
    pub reviews: i64,
    pub price_changes: i64,
    /// How many days of history the seeded orders span, ending at `start_at`.
    #[serde(default = "default_days")]
    pub days: i64,
}

fn default_days() -> i64 {
    30
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            categories: 20,
            products: 1_000,
            users: 1_000,
            orders: 5_000,
            reviews: 5_000,
            price_changes: 1_000,
            days: 30,
        }
    }
}

/// Logical time at which the seeded history ends and the workload begins
/// (2026-01-01T00:00:00Z, in µs). A constant, so runs replay identically.
pub const START_AT: i64 = 1_767_225_600_000_000;

/// First ids the op stream may use; everything below belongs to the seed.
pub fn first_free_ids(spec: &DatasetSpec) -> FreeIds {
    FreeIds {
        order: spec.orders + 1,
        review: spec.reviews + 1,
        price_change: spec.price_changes + 1,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FreeIds {
    pub order: i64,
    pub review: i64,
    pub price_change: i64,
}

/// The generated rows of every write table, plus the equivalent history as events.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub categories: Vec<Vec<Param>>,
    pub products: Vec<Vec<Param>>,
    pub users: Vec<Vec<Param>>,
    pub orders: Vec<Vec<Param>>,
    pub order_items: Vec<Vec<Param>>,
    pub reviews: Vec<Vec<Param>>,
    pub price_history: Vec<Vec<Param>>,
    pub events: Vec<Event>,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.categories.len()
            + self.products.len()
            + self.users.len()
            + self.orders.len()
            + self.order_items.len()
            + self.reviews.len()
            + self.price_history.len()
    }
}

pub fn category_name(id: i64) -> String {
    format!("category {id}")
}

pub fn product_name(id: i64) -> String {
    format!("product {id}")
}

/// Generates the dataset. Pure: the same seed and spec give the same rows.
pub fn generate(seed: u64, spec: &DatasetSpec) -> Dataset {
    let mut rng = Rng::derive(seed, 0xDA7A, 0);
    let mut ds = Dataset::default();
    let categories = spec.categories.max(1);
    for c in 1..=categories {
        ds.categories.push(vec![c.into(), category_name(c).into()]);
    }

    // Products: price chain from the price history, final state in the table.
    let n_products = spec.products.max(1);
    let mut price: Vec<i64> = (0..=n_products).map(|_| rng.range(199, 19_999)).collect();
    let mut version: Vec<i64> = vec![1; (n_products + 1) as usize];
    let category: Vec<i64> = (0..=n_products)
        .map(|p| if p == 0 { 0 } else { (p - 1) % categories + 1 })
        .collect();
    let span = spec.days.max(1) * MICROS_PER_DAY;
    let history_start = START_AT - span;
    let mut price_events = Vec::new();
    for change_id in 1..=spec.price_changes {
        let p = rng.range(1, n_products);
        let old = price[p as usize];
        let new = (old as f64 * (0.8 + rng.next_f64() * 0.4)).round().max(1.0) as i64;
        let at = history_start + (span * change_id) / (spec.price_changes + 1);
        price[p as usize] = new;
        version[p as usize] += 1;
        ds.price_history.push(vec![
            change_id.into(),
            p.into(),
            old.into(),
            new.into(),
            at.into(),
        ]);
        price_events.push(Event::PriceChanged {
            change_id,
            product_id: p,
            old_cents: old,
            new_cents: new,
            at,
            product: None,
        });
    }
    for p in 1..=n_products {
        let stock = rng.range(100, 1_000);
        let state = ProductState {
            product_id: p,
            version: version[p as usize],
            price_cents: price[p as usize],
            stock,
        };
        ds.products.push(vec![
            p.into(),
            category[p as usize].into(),
            product_name(p).into(),
            state.price_cents.into(),
            stock.into(),
            state.version.into(),
        ]);
        ds.events.push(Event::ProductAdded {
            product_id: p,
            name: product_name(p),
            category_id: category[p as usize],
            category_name: category_name(category[p as usize]),
            state,
            at: history_start,
        });
    }
    ds.events.extend(price_events);

    let n_users = spec.users.max(1);
    for u in 1..=n_users {
        ds.users.push(vec![u.into(), format!("user {u}").into()]);
    }

    for order_id in 1..=spec.orders {
        let user_id = rng.range(1, n_users);
        let placed_at = history_start + (span * order_id) / (spec.orders + 1);
        let n_lines = rng.range(1, 4.min(n_products));
        let mut lines: Vec<PricedLine> = Vec::new();
        while (lines.len() as i64) < n_lines {
            let p = rng.range(1, n_products);
            if lines.iter().any(|l| l.product_id == p) {
                continue;
            }
            lines.push(PricedLine {
                product_id: p,
                qty: rng.range(1, 3),
                unit_cents: price[p as usize],
            });
        }
        let roll = rng.next_f64();
        let status = if roll < 0.1 {
            OrderStatus::Placed
        } else if roll < 0.3 {
            OrderStatus::Paid
        } else if roll < 0.9 {
            OrderStatus::Shipped
        } else {
            OrderStatus::Cancelled
        };
        let final_version = match status {
            OrderStatus::Placed => 1,
            OrderStatus::Paid | OrderStatus::Cancelled => 2,
            OrderStatus::Shipped => 3,
        };
        let updated_at = placed_at + (final_version - 1) * 3_600_000_000;
        ds.orders.push(vec![
            order_id.into(),
            user_id.into(),
            status.as_str().into(),
            placed_at.into(),
            updated_at.into(),
            final_version.into(),
        ]);
        for l in &lines {
            ds.order_items.push(vec![
                order_id.into(),
                l.product_id.into(),
                l.qty.into(),
                l.unit_cents.into(),
            ]);
        }
        ds.events.push(Event::OrderPlaced {
            order_id,
            user_id,
            lines: lines.clone(),
            placed_at,
            products: Vec::new(),
        });
        let step = |v: i64| placed_at + (v - 1) * 3_600_000_000;
        match status {
            OrderStatus::Placed => {}
            OrderStatus::Paid => ds.events.push(Event::OrderPaid {
                order_id,
                version: 2,
                at: step(2),
            }),
            OrderStatus::Shipped => {
                ds.events.push(Event::OrderPaid {
                    order_id,
                    version: 2,
                    at: step(2),
                });
                ds.events.push(Event::OrderShipped {
                    order_id,
                    version: 3,
                    at: step(3),
                });
            }
            OrderStatus::Cancelled => ds.events.push(Event::OrderCancelled {
                order_id,
                version: 2,
                at: step(2),
                user_id,
                placed_at,
                lines,
                products: Vec::new(),
            }),
        }
    }

    for review_id in 1..=spec.reviews {
        let product_id = rng.range(1, n_products);
        let user_id = rng.range(1, n_users);
        // Mostly good reviews, as in real shops.
        let rating = [1, 2, 3, 4, 4, 5, 5, 5][rng.range(0, 7) as usize];
        let at = history_start + (span * review_id) / (spec.reviews + 1);
        ds.reviews.push(vec![
            review_id.into(),
            product_id.into(),
            user_id.into(),
            rating.into(),
            at.into(),
        ]);
        ds.events.push(Event::ReviewAdded {
            review_id,
            product_id,
            user_id,
            rating,
            at,
        });
    }
    ds
}

/// What to load besides the write model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOptions {
    /// Build the read models from the seeded data.
    pub read_models: bool,
    /// Write the seed's history into the event log (for the async backend and rebuilds).
    pub event_log: bool,
}

/// What seeding did, for reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedReport {
    pub rows: u64,
    pub events: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

const TABLES: &[(&str, &str, usize)] = &[
    ("categories", "id, name", 2),
    (
        "products",
        "id, category_id, name, price_cents, stock, version",
        6,
    ),
    ("users", "id, name", 2),
    (
        "orders",
        "id, user_id, status, placed_at, updated_at, version",
        6,
    ),
    ("order_items", "order_id, product_id, qty, unit_cents", 4),
    ("reviews", "id, product_id, user_id, rating, created_at", 5),
    (
        "price_history",
        "id, product_id, old_cents, new_cents, changed_at",
        5,
    ),
];

fn table_rows<'a>(ds: &'a Dataset, table: &str) -> &'a [Vec<Param>] {
    match table {
        "categories" => &ds.categories,
        "products" => &ds.products,
        "users" => &ds.users,
        "orders" => &ds.orders,
        "order_items" => &ds.order_items,
        "reviews" => &ds.reviews,
        "price_history" => &ds.price_history,
        _ => &[],
    }
}

fn event_rows(ds: &Dataset) -> Vec<Vec<Param>> {
    ds.events
        .iter()
        .map(|e| vec![e.stream().into(), e.kind().into(), e.to_json().into()])
        .collect()
}

/// Recreates the tool's tables and loads the dataset, all or nothing: the database is
/// marked `ready` in the same transaction as the last row.
pub async fn seed(db: &Db, ds: &Dataset, opts: SeedOptions) -> DbResult<SeedReport> {
    schema::recreate(db).await?;
    let started = Instant::now();
    let finish_sql = finish_statements(db.engine(), opts);
    let after_load = schema::ddl(db.engine()).after_load;
    match db.engine() {
        Engine::Postgres => {
            let mut conn = db.pg_connection().await?;
            let mut tx = sqlx::Connection::begin(&mut conn).await?;
            for (table, cols, _) in TABLES {
                copy_in(&mut tx, table, cols, table_rows(ds, table)).await?;
            }
            if opts.event_log {
                copy_in(&mut tx, "events", "stream, kind, payload", &event_rows(ds)).await?;
            }
            for stmt in &after_load {
                tx.execute(stmt.as_str()).await?;
            }
            for stmt in &finish_sql {
                tx.execute(stmt.as_str()).await?;
            }
            tx.commit().await?;
        }
        Engine::Sqlite => {
            let mut conn = db.write.acquire().await?;
            // Generated rows are consistent by construction; checking each reference while
            // loading costs more than the load. (A no-op inside a transaction, hence here.)
            conn.execute("PRAGMA foreign_keys = OFF").await?;
            let loaded = load_sqlite(&mut conn, ds, opts, &after_load, &finish_sql).await;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            loaded?;
        }
    }
    // Planner statistics for the freshly loaded tables (only the tool's own), outside the load
    // transaction.
    let mut conn = db.write.acquire().await?;
    let analyze = match db.engine() {
        Engine::Postgres => format!("ANALYZE {}", schema::all_tables().join(", ")),
        Engine::Sqlite => "ANALYZE".to_string(),
    };
    conn.execute(analyze.as_str()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let rows = ds.rows() as u64;
    Ok(SeedReport {
        rows,
        events: if opts.event_log {
            ds.events.len() as u64
        } else {
            0
        },
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
    })
}

async fn load_sqlite(
    conn: &mut sqlx::AnyConnection,
    ds: &Dataset,
    opts: SeedOptions,
    after_load: &[String],
    finish_sql: &[String],
) -> DbResult<()> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for (table, cols, n) in TABLES {
        let head = format!("INSERT INTO {table} ({cols})");
        insert_rows(&mut tx, &head, "", *n, table_rows(ds, table)).await?;
    }
    if opts.event_log {
        insert_rows(
            &mut tx,
            "INSERT INTO events (stream, kind, payload)",
            "",
            3,
            &event_rows(ds),
        )
        .await?;
    }
    for stmt in after_load.iter().chain(finish_sql) {
        tx.execute(stmt.as_str()).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Read-model build, checkpoints at the end of the seeded log, and the `ready` mark.
fn finish_statements(engine: Engine, opts: SeedOptions) -> Vec<String> {
    let mut v = Vec::new();
    if opts.read_models {
        v.extend(projection::truth::build_statements());
    }
    if opts.event_log {
        for p in projection::ProjectionName::ALL {
            v.push(format!(
                "INSERT INTO projection_checkpoints (projection, xid, seq, applied, duplicates) \
                 SELECT '{}', COALESCE(MAX(xid), 0), COALESCE(MAX(seq), 0), 0, 0 FROM events",
                p.name()
            ));
        }
    }
    let mode = match (opts.read_models, opts.event_log) {
        (false, _) => "normalized",
        (true, false) => "read_models",
        (true, true) => "read_models+event_log",
    };
    v.push(format!(
        "UPDATE {META_TABLE} SET value = 'ready:{mode}' WHERE key = 'state'"
    ));
    let _ = engine;
    v
}

/// PostgreSQL COPY in text format.
async fn copy_in(
    conn: &mut sqlx::PgConnection,
    table: &str,
    cols: &str,
    rows: &[Vec<Param>],
) -> DbResult<()> {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({cols}) FROM STDIN"))
        .await?;
    let mut buf = String::with_capacity(1 << 20);
    for row in rows {
        for (i, p) in row.iter().enumerate() {
            if i > 0 {
                buf.push('\t');
            }
            match p {
                Param::Int(v) => buf.push_str(&v.to_string()),
                Param::Text(s) => {
                    for ch in s.chars() {
                        match ch {
                            '\\' => buf.push_str("\\\\"),
                            '\t' => buf.push_str("\\t"),
                            '\n' => buf.push_str("\\n"),
                            '\r' => buf.push_str("\\r"),
                            c => buf.push(c),
                        }
                    }
                }
            }
        }
        buf.push('\n');
        if buf.len() > (1 << 20) {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let spec = DatasetSpec {
            orders: 200,
            ..DatasetSpec::default()
        };
        let a = generate(42, &spec);
        let b = generate(42, &spec);
        let c = generate(43, &spec);
        assert_eq!(a.orders, b.orders);
        assert_eq!(a.events, b.events);
        assert_ne!(a.order_items, c.order_items);
        assert_eq!(a.orders.len(), 200);
    }
}
