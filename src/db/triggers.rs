//! The `triggers` backend's read models, maintained by the database: row triggers on the
//! write tables that keep the read tables (the same tables, columns and meaning as the
//! projection's, `projection::sql`) up to date inside every write transaction, with no
//! application code in the write path.
//!
//! The bodies are plain SQL both engines accept; only the wrapping differs (SQLite has
//! `CREATE TRIGGER … BEGIN … END`, PostgreSQL a PL/pgSQL function per trigger). Every trigger
//! and function is named here, so the ownership check can tell the tool's from anyone
//! else's and `drop` removes exactly these.
//!
//! Counters need no ledger: a trigger fires once per row change, in the transaction making it.

use super::{Db, DbResult, Engine};
use crate::domain::month::{cell_key_sql, MICROS_PER_MONTH};
use crate::domain::MICROS_PER_DAY;

/// One row trigger.
struct TriggerDef {
    /// Without the `cqrs_bench_` prefix.
    name: &'static str,
    table: &'static str,
    /// `INSERT` or `UPDATE`.
    on: &'static str,
    /// Fires only for rows where this holds (`NEW.`/`OLD.` columns), if given.
    when: Option<&'static str>,
    /// Statements, `@DAY@` and `@MONTH@` standing for the microseconds in a day and a report
    /// month, `@CELL(month|product|segment)@` for a monthly sales cell's key.
    body: &'static [&'static str],
}

const PREFIX: &str = "cqrs_bench_";

const TRIGGERS: &[TriggerDef] = &[
    TriggerDef {
        name: "products_added",
        table: "products",
        on: "INSERT",
        when: None,
        body: &[
            "INSERT INTO product_catalog (product_id, name, category_id, category_name, \
             price_cents, stock, version, review_count, rating_sum) \
             SELECT NEW.id, NEW.name, NEW.category_id, c.name, NEW.price_cents, NEW.stock, \
             NEW.version, 0, 0 FROM categories c WHERE c.id = NEW.category_id",
            "INSERT INTO product_sales (product_id, name, units, revenue_cents) \
             VALUES (NEW.id, NEW.name, 0, 0)",
        ],
    },
    TriggerDef {
        // Price and stock changes (orders, cancellations, restocks, price changes).
        name: "products_changed",
        table: "products",
        on: "UPDATE",
        when: None,
        body: &["UPDATE product_catalog SET price_cents = NEW.price_cents, stock = NEW.stock, \
                 version = NEW.version WHERE product_id = NEW.id"],
    },
    TriggerDef {
        name: "reviews_added",
        table: "reviews",
        on: "INSERT",
        when: None,
        body: &["UPDATE product_catalog SET review_count = review_count + 1, \
                 rating_sum = rating_sum + NEW.rating WHERE product_id = NEW.product_id"],
    },
    TriggerDef {
        name: "price_history_added",
        table: "price_history",
        on: "INSERT",
        when: None,
        body: &[
            "INSERT INTO catalog_price_changes (change_id, product_id, old_cents, new_cents, \
             changed_at) VALUES (NEW.id, NEW.product_id, NEW.old_cents, NEW.new_cents, \
             NEW.changed_at)",
        ],
    },
    TriggerDef {
        // The order's lines follow in the same transaction (`order_items_added`).
        name: "orders_placed",
        table: "orders",
        on: "INSERT",
        when: None,
        body: &[
            "INSERT INTO order_summary (order_id, user_id, placed_at, status, item_count, \
             total_cents, version) VALUES (NEW.id, NEW.user_id, NEW.placed_at, NEW.status, 0, \
             0, NEW.version)",
            "INSERT INTO daily_sales (day, orders, items, revenue_cents) \
             VALUES (NEW.placed_at / @DAY@, 1, 0, 0) \
             ON CONFLICT (day) DO UPDATE SET orders = daily_sales.orders + 1",
            "INSERT INTO monthly_sales (cell, month, product_id, segment, orders, revenue_cents) \
             SELECT @CELL(NEW.placed_at / @MONTH@|0|u.segment)@, NEW.placed_at / @MONTH@, 0, \
             u.segment, 1, 0 FROM users u WHERE u.id = NEW.user_id \
             ON CONFLICT (cell) DO UPDATE SET orders = monthly_sales.orders + 1",
        ],
    },
    TriggerDef {
        name: "order_items_added",
        table: "order_items",
        on: "INSERT",
        when: None,
        body: &[
            "UPDATE order_summary SET item_count = item_count + NEW.qty, \
             total_cents = total_cents + NEW.qty * NEW.unit_cents WHERE order_id = NEW.order_id",
            "UPDATE daily_sales SET items = items + NEW.qty, \
             revenue_cents = revenue_cents + NEW.qty * NEW.unit_cents \
             WHERE day = (SELECT placed_at / @DAY@ FROM orders \
                          WHERE id = NEW.order_id AND status <> 'cancelled')",
            "UPDATE product_sales SET units = units + NEW.qty, \
             revenue_cents = revenue_cents + NEW.qty * NEW.unit_cents \
             WHERE product_id = NEW.product_id",
            "UPDATE monthly_sales SET revenue_cents = revenue_cents + NEW.qty * NEW.unit_cents \
             WHERE cell = (SELECT @CELL(o.placed_at / @MONTH@|0|u.segment)@ FROM orders o \
                           JOIN users u ON u.id = o.user_id \
                           WHERE o.id = NEW.order_id AND o.status <> 'cancelled')",
            "INSERT INTO monthly_sales (cell, month, product_id, segment, orders, revenue_cents) \
             SELECT @CELL(o.placed_at / @MONTH@|NEW.product_id|u.segment)@, \
             o.placed_at / @MONTH@, NEW.product_id, u.segment, 1, NEW.qty * NEW.unit_cents \
             FROM orders o JOIN users u ON u.id = o.user_id \
             WHERE o.id = NEW.order_id AND o.status <> 'cancelled' \
             ON CONFLICT (cell) DO UPDATE SET orders = monthly_sales.orders + excluded.orders, \
             revenue_cents = monthly_sales.revenue_cents + excluded.revenue_cents",
        ],
    },
    TriggerDef {
        name: "orders_changed",
        table: "orders",
        on: "UPDATE",
        when: None,
        body: &["UPDATE order_summary SET status = NEW.status, version = NEW.version \
                 WHERE order_id = NEW.id"],
    },
    TriggerDef {
        // A cancelled order no longer counts towards sales.
        name: "orders_cancelled",
        table: "orders",
        on: "UPDATE",
        when: Some("NEW.status = 'cancelled' AND OLD.status <> 'cancelled'"),
        body: &[
            "UPDATE daily_sales SET orders = orders - 1, \
             items = items - (SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT) FROM order_items \
                              WHERE order_id = NEW.id), \
             revenue_cents = revenue_cents - (SELECT CAST(COALESCE(SUM(qty * unit_cents), 0) AS BIGINT) \
                                              FROM order_items WHERE order_id = NEW.id) \
             WHERE day = NEW.placed_at / @DAY@",
            "UPDATE product_sales SET \
             units = units - (SELECT qty FROM order_items \
                              WHERE order_id = NEW.id AND product_id = product_sales.product_id), \
             revenue_cents = revenue_cents - (SELECT qty * unit_cents FROM order_items \
                              WHERE order_id = NEW.id AND product_id = product_sales.product_id) \
             WHERE product_id IN (SELECT product_id FROM order_items WHERE order_id = NEW.id)",
            "UPDATE monthly_sales SET orders = orders - 1, \
             revenue_cents = revenue_cents - (SELECT CAST(COALESCE(SUM(qty * unit_cents), 0) AS BIGINT) \
                                              FROM order_items WHERE order_id = NEW.id) \
             WHERE cell = (SELECT @CELL(NEW.placed_at / @MONTH@|0|u.segment)@ FROM users u \
                           WHERE u.id = NEW.user_id)",
            "UPDATE monthly_sales SET orders = orders - 1, \
             revenue_cents = revenue_cents - (SELECT qty * unit_cents FROM order_items \
                              WHERE order_id = NEW.id AND product_id = monthly_sales.product_id) \
             WHERE month = NEW.placed_at / @MONTH@ \
             AND segment = (SELECT segment FROM users WHERE id = NEW.user_id) \
             AND product_id IN (SELECT product_id FROM order_items WHERE order_id = NEW.id)",
        ],
    },
];

/// The names of the tool's triggers (and, on PostgreSQL, of their functions).
pub fn names() -> Vec<String> {
    TRIGGERS
        .iter()
        .map(|t| format!("{PREFIX}{}", t.name))
        .collect()
}

fn body(t: &TriggerDef) -> Vec<String> {
    t.body
        .iter()
        .map(|s| {
            cells(
                &s.replace("@DAY@", &MICROS_PER_DAY.to_string())
                    .replace("@MONTH@", &MICROS_PER_MONTH.to_string()),
            )
        })
        .collect()
}

/// Replaces every `@CELL(month|product|segment)@` by the cell key's SQL.
fn cells(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("@CELL(") {
        out.push_str(&rest[..start]);
        let args_at = start + "@CELL(".len();
        let end = rest[args_at..].find(")@").expect("a closed @CELL(…)@") + args_at;
        let args: Vec<&str> = rest[args_at..end].split('|').collect();
        out.push_str(&cell_key_sql(args[0], args[1], args[2]));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The statements that create every trigger (run once the read models are built and keyed:
/// `daily_sales`'s upsert needs its key).
pub fn create_statements(engine: Engine) -> Vec<String> {
    let mut out = Vec::new();
    for t in TRIGGERS {
        let name = format!("{PREFIX}{}", t.name);
        let statements = body(t);
        match engine {
            Engine::Sqlite => {
                let when = t.when.map(|w| format!(" WHEN {w}")).unwrap_or_default();
                out.push(format!(
                    "CREATE TRIGGER {name} AFTER {} ON {} FOR EACH ROW{when} BEGIN {}; END",
                    t.on,
                    t.table,
                    statements.join("; ")
                ));
            }
            Engine::Postgres => {
                out.push(format!(
                    "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN {}; RETURN NULL; END $$",
                    statements.join("; ")
                ));
                let when = t.when.map(|w| format!(" WHEN ({w})")).unwrap_or_default();
                out.push(format!(
                    "CREATE TRIGGER {name} AFTER {} ON {} FOR EACH ROW{when} EXECUTE FUNCTION {name}()",
                    t.on, t.table
                ));
            }
        }
    }
    out
}

/// What `drop` runs after the tables (and with them the triggers) are gone: the functions on
/// PostgreSQL, nothing on SQLite.
pub fn drop_statements(engine: Engine) -> Vec<String> {
    match engine {
        Engine::Sqlite => Vec::new(),
        Engine::Postgres => names()
            .into_iter()
            .map(|n| format!("DROP FUNCTION IF EXISTS {n}()"))
            .collect(),
    }
}

/// The triggers on the tool's tables that it did not create.
pub async fn foreign(db: &Db) -> DbResult<Vec<String>> {
    let present: Vec<String> = match db.engine() {
        Engine::Sqlite => {
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
            )
            .fetch_all(&db.read)
            .await?
        }
        Engine::Postgres => {
            sqlx::query_scalar(
                "SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY 1",
            )
            .bind(db.schema.clone().unwrap_or_default())
            .fetch_all(&db.read)
            .await?
        }
    };
    let ours = names();
    Ok(present.into_iter().filter(|n| !ours.contains(n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trigger_is_named_and_wrapped_per_engine() {
        let lite = create_statements(Engine::Sqlite);
        let pg = create_statements(Engine::Postgres);
        assert_eq!(lite.len(), TRIGGERS.len());
        // A function and a trigger each.
        assert_eq!(pg.len(), 2 * TRIGGERS.len());
        for n in names() {
            assert!(lite
                .iter()
                .any(|s| s.starts_with(&format!("CREATE TRIGGER {n} "))));
            assert!(pg
                .iter()
                .any(|s| s.starts_with(&format!("CREATE FUNCTION {n}()"))));
        }
        assert!(lite
            .iter()
            .chain(&pg)
            .all(|s| !s.contains("@DAY@") && !s.contains("@MONTH@") && !s.contains("@CELL")));
        assert!(lite
            .iter()
            .any(|s| s.contains("FOR EACH ROW WHEN NEW.status = 'cancelled'")));
        assert_eq!(drop_statements(Engine::Postgres).len(), TRIGGERS.len());
    }
}
