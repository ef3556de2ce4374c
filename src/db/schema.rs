//! The tables cqrs-bench creates, and the ownership check that keeps it away from anyone
//! else's. A database (SQLite file or PostgreSQL schema) is the tool's when it holds the
//! `cqrs_bench_meta` table with the owner mark; the tool creates, resets and drops only there,
//! and only the tables listed here.

use sqlx::{Executor, Row};

use super::dialect::Dialect;
use super::{Db, DbError, DbResult, Engine};

pub const OWNER_MARK: &str = "cqrs-bench";
pub const SCHEMA_VERSION: &str = "1";

/// Write model (normalized).
pub const WRITE_TABLES: &[&str] = &[
    "categories",
    "products",
    "users",
    "orders",
    "order_items",
    "reviews",
    "price_history",
];

/// Event log and projector bookkeeping (with `broker_relay`, the `cqrs-broker` relay's record
/// of its stream and how far it published), and the event store (`es_events`, the
/// `event-sourced` backend's write model, with its aggregate snapshots `es_snapshots`).
pub const LOG_TABLES: &[&str] = &[
    "es_snapshots",
    "es_events",
    EVENT_LOG,
    "projection_checkpoints",
    "dead_letters",
    "broker_relay",
];

/// The event log (the outbox).
pub const EVENT_LOG: &str = "events";

/// The `cqrs-broker` relay's record of its stream and how far it published (the shop's and a
/// workload pack's datasets both have it).
pub const BROKER_RELAY_DDL: &str = "CREATE TABLE broker_relay (stream TEXT PRIMARY KEY, \
     consumer TEXT NOT NULL, xid BIGINT NOT NULL, seq BIGINT NOT NULL, published BIGINT NOT NULL)";

/// The read models proper (tables, or materialized views for `matview`).
pub const READ_MODEL_TABLES: &[&str] = &[
    "product_catalog",
    "catalog_price_changes",
    "order_summary",
    "daily_sales",
    "product_sales",
    "monthly_sales",
];

/// Read models, with their duplicate-guard ledgers.
pub const READ_TABLES: &[&str] = &[
    "product_catalog",
    "catalog_price_changes",
    "order_summary",
    "daily_sales",
    "product_sales",
    "monthly_sales",
    "product_catalog_applied",
    "daily_sales_applied",
    "product_sales_applied",
    "monthly_sales_applied",
];

pub const META_TABLE: &str = "cqrs_bench_meta";

/// The meta table alone (every dataset's first table).
const META_DDL: &str = "CREATE TABLE cqrs_bench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";

/// The meta key listing, comma-separated in creation order, the tables a workload pack's
/// dataset created (its write model, read models, outbox): the tool's own there, which the
/// ownership check accepts and `drop` removes (children first: reverse creation order).
pub const PACK_TABLES_KEY: &str = "pack_tables";

/// The meta key listing, comma-separated, the materialized views a workload pack's dataset
/// created (`matview`: one per read model), which `drop` removes before the tables they
/// read.
pub const PACK_VIEWS_KEY: &str = "pack_views";

/// Every table the tool may create, in drop order (children first).
pub fn all_tables() -> Vec<&'static str> {
    let mut v: Vec<&str> = READ_TABLES.to_vec();
    v.extend(LOG_TABLES);
    v.extend(WRITE_TABLES.iter().rev());
    v.push(META_TABLE);
    v
}

const DDL: &str = r#"
CREATE TABLE cqrs_bench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE categories (id BIGINT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE products (
    id BIGINT PRIMARY KEY,
    category_id BIGINT NOT NULL REFERENCES categories(id),
    name TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    stock BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX products_category ON products(category_id, price_cents);
CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, segment BIGINT NOT NULL);
CREATE TABLE orders (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX orders_user ON orders(user_id, placed_at);
CREATE INDEX orders_placed ON orders(placed_at);
CREATE TABLE order_items (
    order_id BIGINT NOT NULL REFERENCES orders(id),
    product_id BIGINT NOT NULL REFERENCES products(id),
    qty BIGINT NOT NULL,
    unit_cents BIGINT NOT NULL,
    product_name TEXT,
    product_cents BIGINT,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX order_items_product ON order_items(product_id);
CREATE TABLE reviews (
    id BIGINT PRIMARY KEY,
    product_id BIGINT NOT NULL REFERENCES products(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    rating BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    created_at BIGINT NOT NULL
);
CREATE INDEX reviews_product ON reviews(product_id);
CREATE TABLE price_history (
    id BIGINT PRIMARY KEY,
    product_id BIGINT NOT NULL REFERENCES products(id),
    old_cents BIGINT NOT NULL,
    new_cents BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX price_history_product ON price_history(product_id, id);
@EVENTS@
@EVENT_STORE@
CREATE TABLE es_snapshots (
    stream TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE projection_checkpoints (
    projection TEXT PRIMARY KEY,
    xid BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    applied BIGINT NOT NULL,
    duplicates BIGINT NOT NULL
);
CREATE TABLE dead_letters (
    seq BIGINT NOT NULL,
    projection TEXT NOT NULL,
    stream TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    PRIMARY KEY (projection, seq)
);
@BROKER_RELAY@;
CREATE TABLE product_catalog (
    product_id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    category_id BIGINT NOT NULL,
    category_name TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    stock BIGINT NOT NULL,
    version BIGINT NOT NULL,
    review_count BIGINT NOT NULL,
    rating_sum BIGINT NOT NULL
);
CREATE INDEX product_catalog_category ON product_catalog(category_id, price_cents);
CREATE TABLE catalog_price_changes (
    change_id BIGINT PRIMARY KEY,
    product_id BIGINT NOT NULL,
    old_cents BIGINT NOT NULL,
    new_cents BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX catalog_price_changes_product ON catalog_price_changes(product_id, change_id);
CREATE TABLE order_summary (
    order_id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    placed_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    item_count BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX order_summary_user ON order_summary(user_id, placed_at);
CREATE TABLE daily_sales (
    day BIGINT PRIMARY KEY,
    orders BIGINT NOT NULL,
    items BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL
);
CREATE TABLE product_sales (
    product_id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    units BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL
);
CREATE INDEX product_sales_revenue ON product_sales(revenue_cents);
CREATE TABLE monthly_sales (
    cell BIGINT PRIMARY KEY,
    month BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    segment BIGINT NOT NULL,
    orders BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL
);
CREATE INDEX monthly_sales_month ON monthly_sales(month, product_id);
CREATE TABLE product_catalog_applied (seq BIGINT PRIMARY KEY);
CREATE TABLE daily_sales_applied (seq BIGINT PRIMARY KEY);
CREATE TABLE product_sales_applied (seq BIGINT PRIMARY KEY);
CREATE TABLE monthly_sales_applied (seq BIGINT PRIMARY KEY);
"#;

/// The schema as the tables (created before loading) and what is cheaper to build after the
/// rows are in than to maintain row by row while they arrive: secondary indexes, and on
/// PostgreSQL the primary and foreign keys (each validated in one pass by `ALTER TABLE`).
/// SQLite declares its keys in `CREATE TABLE` and the seed switches their checks off while
/// loading.
pub struct Ddl {
    pub tables: Vec<String>,
    /// Keys, references and indexes of the bulk-loaded tables (write model, event log).
    pub after_load: Vec<String>,
    /// Keys and indexes of the read-model tables, built after the read models are.
    pub after_read_models: Vec<String>,
}

/// Deferred statements of one group of tables.
#[derive(Default)]
struct Deferred {
    keys: Vec<String>,
    foreign: Vec<String>,
    indexes: Vec<String>,
}

impl Deferred {
    /// Primary keys before the foreign keys that need them, then the indexes.
    fn into_statements(self) -> Vec<String> {
        [self.keys, self.foreign, self.indexes].concat()
    }
}

pub fn ddl(engine: Engine) -> Ddl {
    let dialect = Dialect::of(engine);
    let text = dialect
        .table_ddl(DDL)
        .replace("@EVENTS@", dialect.events_ddl())
        .replace("@EVENT_STORE@", dialect.event_store_ddl())
        .replace("@BROKER_RELAY@", BROKER_RELAY_DDL);
    let mut tables = Vec::new();
    let (mut loaded, mut read) = (Deferred::default(), Deferred::default());
    for stmt in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let group = if READ_TABLES.contains(&table_of(stmt)) {
            &mut read
        } else {
            &mut loaded
        };
        if stmt.starts_with("CREATE INDEX") {
            group.indexes.push(stmt.to_string());
        } else if dialect.keys_after_load() && is_deferred_keys(stmt) {
            // Like `pgbench -i`: load into bare tables, then build keys in one pass each.
            let (table_stmt, pk, fks) = split_constraints(stmt);
            tables.push(table_stmt);
            group.keys.extend(pk);
            group.foreign.extend(fks);
        } else {
            tables.push(stmt.to_string());
        }
    }
    Ddl {
        tables,
        after_load: loaded.into_statements(),
        after_read_models: read.into_statements(),
    }
}

/// The secondary indexes `[dataset] extra_product_indexes = N` adds on `products`, the
/// first N in this order: single columns first (what a search filter or sort asks for), then
/// the combinations a team adds one query at a time. Every write that changes a product's
/// price, stock or version (orders, cancellations, restocks, price changes) updates most.
pub const EXTRA_PRODUCT_INDEXES: [&str; 20] = [
    "price_cents",
    "stock",
    "name",
    "version",
    "category_id, stock",
    "price_cents, stock",
    "stock, price_cents",
    "category_id, name",
    "name, price_cents",
    "category_id, version",
    "price_cents, id",
    "stock, id",
    "version, price_cents",
    "name, stock",
    "category_id, price_cents, stock",
    "category_id, stock, price_cents",
    "price_cents, name",
    "stock, name",
    "category_id, name, price_cents",
    "version, stock",
];

/// The statements creating the first `n` extra indexes on `products` (same SQL on both
/// engines).
pub fn extra_product_indexes(n: i64) -> Vec<String> {
    EXTRA_PRODUCT_INDEXES
        .iter()
        .take(n.clamp(0, EXTRA_PRODUCT_INDEXES.len() as i64) as usize)
        .enumerate()
        .map(|(k, cols)| {
            format!(
                "CREATE INDEX products_extra_{:02} ON products({cols})",
                k + 1
            )
        })
        .collect()
}

/// The table a `CREATE TABLE t …` or `CREATE INDEX i ON t(…)` statement is about.
fn table_of(stmt: &str) -> &str {
    let rest = match stmt.split_once(" ON ") {
        Some((head, rest)) if head.starts_with("CREATE INDEX") => rest,
        _ => stmt.trim_start_matches("CREATE TABLE "),
    };
    rest.split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or_default()
}

/// Whether `stmt` creates a table that gets its keys after it is filled: the write tables and
/// the event log (bulk-loaded) and the read models (built by one `INSERT … SELECT` each):
/// millions of rows at the large scales, whose keys are cheaper built once than row by row.
fn is_deferred_keys(stmt: &str) -> bool {
    let table = table_of(stmt);
    stmt.starts_with("CREATE TABLE ")
        && (WRITE_TABLES.contains(&table) || table == EVENT_LOG || READ_TABLES.contains(&table))
}

/// `CREATE TABLE t (id BIGINT PRIMARY KEY, … c BIGINT NOT NULL REFERENCES p(id), …)` → the
/// statement without keys, `ALTER TABLE t ADD PRIMARY KEY (id)`, and one
/// `ALTER TABLE t ADD FOREIGN KEY (c) REFERENCES p(id)` per reference.
fn split_constraints(stmt: &str) -> (String, Option<String>, Vec<String>) {
    let table = table_of(stmt);
    let mut pk = None;
    let mut fks = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for line in stmt.lines() {
        let trimmed = line.trim().trim_end_matches(',');
        if let Some(cols) = trimmed.strip_prefix("PRIMARY KEY ") {
            pk = Some(format!("ALTER TABLE {table} ADD PRIMARY KEY {cols}"));
            continue;
        }
        let mut line = line.to_string();
        if let Some((head, _)) = line.split_once(" PRIMARY KEY") {
            let column = head.split_whitespace().next().unwrap_or_default();
            if head.starts_with("CREATE TABLE") {
                // `CREATE TABLE t (id BIGINT PRIMARY KEY, name …)` on one line.
                let col = head.rsplit('(').next().unwrap_or_default();
                let column = col.split_whitespace().next().unwrap_or_default();
                pk = Some(format!("ALTER TABLE {table} ADD PRIMARY KEY ({column})"));
            } else {
                pk = Some(format!("ALTER TABLE {table} ADD PRIMARY KEY ({column})"));
            }
            line = line.replacen(" PRIMARY KEY", " NOT NULL", 1);
        }
        if let Some((head, target)) = line.clone().split_once(" REFERENCES ") {
            let column = head.split_whitespace().next().unwrap_or_default();
            let target = target.trim_end_matches(',');
            fks.push(format!(
                "ALTER TABLE {table} ADD FOREIGN KEY ({column}) REFERENCES {target}"
            ));
            let comma = if line.trim_end().ends_with(',') {
                ","
            } else {
                ""
            };
            line = format!("{head}{comma}");
        }
        lines.push(line);
    }
    // A dropped last line (the composite key) leaves a trailing comma before `)`.
    let mut text = lines.join("\n");
    if let Some(pos) = text.rfind(')') {
        let before = text[..pos].trim_end();
        if before.ends_with(',') {
            let cut = before.len() - 1;
            text = format!("{}\n{}", &text[..cut], &text[pos..]);
        }
    }
    (text, pk, fks)
}

/// What a database holds as far as the tool is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Nothing there yet (no schema, or an empty SQLite file).
    Empty,
    /// The tool's own.
    Ours,
}

/// Refuses a schema or file that exists and is not the tool's.
pub async fn ownership(db: &Db) -> DbResult<Ownership> {
    match db.engine() {
        Engine::Postgres => {
            let schema = db.schema.clone().unwrap_or_default();
            let exists: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
                    .bind(&schema)
                    .fetch_one(&db.read)
                    .await?;
            if exists == 0 {
                return Ok(Ownership::Empty);
            }
            let has_meta: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
            )
            .bind(&schema)
            .bind(META_TABLE)
            .fetch_one(&db.read)
            .await?;
            if has_meta == 1 && owner_marked(db).await? {
                Ok(Ownership::Ours)
            } else {
                Err(DbError::ForeignSchema {
                    schema,
                    url: db.url.redacted(),
                })
            }
        }
        Engine::Sqlite => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .fetch_all(&db.read)
            .await?;
            if tables.is_empty() {
                return Ok(Ownership::Empty);
            }
            if tables.iter().any(|t| t == META_TABLE) && owner_marked(db).await? {
                let ours = all_tables();
                let pack = pack_tables(db).await?;
                let foreign: Vec<&String> = tables
                    .iter()
                    .filter(|t| !ours.contains(&t.as_str()) && !pack.contains(t))
                    .collect();
                if foreign.is_empty() {
                    return Ok(Ownership::Ours);
                }
                return Err(DbError::ForeignSqliteFile {
                    path: db.url.redacted(),
                    tables: join_names(&foreign),
                });
            }
            Err(DbError::ForeignSqliteFile {
                path: db.url.redacted(),
                tables: join_names(&tables.iter().collect::<Vec<_>>()),
            })
        }
    }
}

/// Refuses a database of the tool's whose tables carry someone else's triggers where the tool
/// would write or drop: they would run inside every measured write, and reseeding or `drop`
/// would take them along with the tables. (Reading, as verify does, is left alone.)
pub async fn no_foreign_triggers(db: &Db) -> DbResult<()> {
    let foreign = super::triggers::foreign(db).await?;
    if foreign.is_empty() {
        return Ok(());
    }
    let place = match &db.schema {
        Some(schema) => format!("schema \"{schema}\" in {}", db.url.redacted()),
        None => db.url.redacted(),
    };
    Err(DbError::ForeignTriggers {
        place,
        triggers: join_names(&foreign.iter().collect::<Vec<_>>()),
    })
}

fn join_names(names: &[&String]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(|s| s.as_str()).collect();
    let more = names.len().saturating_sub(5);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

async fn owner_marked(db: &Db) -> DbResult<bool> {
    let sql = match db.engine() {
        Engine::Postgres => format!(
            "SELECT value FROM {}.{META_TABLE} WHERE key = 'owner'",
            db.schema.as_deref().unwrap_or_default()
        ),
        Engine::Sqlite => format!("SELECT value FROM {META_TABLE} WHERE key = 'owner'"),
    };
    // A look-alike table of someone else's (other columns) is simply not the tool's mark.
    match sqlx::query_scalar::<_, String>(&sql)
        .fetch_optional(&db.read)
        .await
    {
        Ok(owner) => Ok(owner.as_deref() == Some(OWNER_MARK)),
        Err(sqlx::Error::Database(_)) | Err(sqlx::Error::ColumnDecode { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Requires that the database holds the tool's tables (for verify, rebuild, projector).
pub async fn require_ours(db: &Db) -> DbResult<()> {
    match ownership(db).await? {
        Ownership::Ours => Ok(()),
        Ownership::Empty => Err(DbError::NotSeeded {
            url: db.url.redacted(),
            schema: db.schema.clone().unwrap_or_else(|| "main".into()),
        }),
    }
}

/// Drops the tool's tables (only after the ownership check) and creates them afresh, in one
/// transaction on PostgreSQL so a failure leaves nothing half-made.
pub async fn recreate(db: &Db) -> DbResult<()> {
    recreate_with(db, ddl(db.engine()).tables).await
}

/// As [`recreate`], creating only the meta table (marked, state `seeding`): the start of a
/// workload pack's dataset, whose tables are the pack's own DDL.
pub async fn recreate_empty(db: &Db) -> DbResult<()> {
    recreate_with(db, vec![META_DDL.to_string()]).await
}

async fn recreate_with(db: &Db, tables: Vec<String>) -> DbResult<()> {
    let ownership = ownership(db).await?;
    let mut conn = db.write.acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    if let (Engine::Postgres, Ownership::Empty) = (db.engine(), ownership) {
        let schema = db.schema.as_deref().unwrap_or_default();
        tx.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await?;
        tx.execute(format!("COMMENT ON SCHEMA {schema} IS 'created by {OWNER_MARK}'").as_str())
            .await?;
    }
    if ownership == Ownership::Ours {
        no_foreign_triggers(db).await?;
        for stmt in drop_statements(db).await? {
            tx.execute(stmt.as_str()).await?;
        }
    }
    for stmt in tables {
        tx.execute(stmt.as_str()).await?;
    }
    // Marked as being seeded before the seed writes a row: a seed that never finishes leaves
    // a database that says so (`state::DbState::Seeding`).
    sqlx::query(&format!(
        "INSERT INTO {META_TABLE}(key, value) VALUES ('owner', $1), ('schema_version', $2), ('state', 'seeding')"
    ))
    .bind(OWNER_MARK)
    .bind(SCHEMA_VERSION)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes everything the tool created: its tables and, on PostgreSQL, its schema if it is
/// then empty. Refuses a foreign schema or file.
pub async fn drop_all(db: &Db) -> DbResult<()> {
    if ownership(db).await? == Ownership::Empty {
        return Ok(());
    }
    no_foreign_triggers(db).await?;
    let mut conn = db.write.acquire().await?;
    for stmt in drop_statements(db).await? {
        conn.execute(stmt.as_str()).await?;
    }
    if let Some(schema) = &db.schema {
        // RESTRICT: if someone put their own objects in, they stay.
        let _ = conn
            .execute(format!("DROP SCHEMA IF EXISTS {schema} RESTRICT").as_str())
            .await;
    }
    Ok(())
}

/// What removes everything the tool may have created in a database it owns: its tables
/// (their triggers go with them), then the triggers' functions.
async fn drop_statements(db: &Db) -> DbResult<Vec<String>> {
    let mut out: Vec<String> = matviews(db)
        .await?
        .into_iter()
        .map(|v| format!("DROP MATERIALIZED VIEW IF EXISTS {v}"))
        .collect();
    out.extend(
        split_names(meta_get(db, PACK_VIEWS_KEY).await?)
            .iter()
            .map(|v| format!("DROP MATERIALIZED VIEW IF EXISTS {v}")),
    );
    out.extend(
        pack_tables(db)
            .await?
            .iter()
            .rev()
            .map(|t| format!("DROP TABLE IF EXISTS {t}")),
    );
    out.extend(
        all_tables()
            .into_iter()
            .map(|t| format!("DROP TABLE IF EXISTS {t}")),
    );
    out.extend(super::triggers::drop_statements(db.engine()));
    Ok(out)
}

/// The read models that are materialized views in the tool's schema (`matview`); none on
/// SQLite.
pub async fn matviews(db: &Db) -> DbResult<Vec<String>> {
    let Some(schema) = &db.schema else {
        return Ok(Vec::new());
    };
    let views: Vec<String> = sqlx::query_scalar(
        "SELECT matviewname::text FROM pg_matviews WHERE schemaname = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&db.read)
    .await?;
    Ok(views
        .into_iter()
        .filter(|v| READ_MODEL_TABLES.contains(&v.as_str()))
        .collect())
}

/// The tables a workload pack's dataset created here ([`PACK_TABLES_KEY`]), in creation
/// order; empty for the built-in shop's datasets.
pub async fn pack_tables(db: &Db) -> DbResult<Vec<String>> {
    Ok(split_names(meta_get(db, PACK_TABLES_KEY).await?))
}

fn split_names(list: Option<String>) -> Vec<String> {
    list.unwrap_or_default()
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// The tables in the connection's database (SQLite) or current schema (PostgreSQL), in
/// creation order, the meta table left out: what a pack's seed created, to record under
/// [`PACK_TABLES_KEY`].
pub async fn tables_on(conn: &mut sqlx::AnyConnection, engine: Engine) -> DbResult<Vec<String>> {
    let sql = match engine {
        Engine::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY rowid"
        }
        Engine::Postgres => {
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.oid"
        }
    };
    let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut *conn).await?;
    Ok(names.into_iter().filter(|t| t != META_TABLE).collect())
}

/// A value from the meta table (e.g. the seed's dataset description).
pub async fn meta_get(db: &Db, key: &str) -> DbResult<Option<String>> {
    let row = sqlx::query(&format!("SELECT value FROM {META_TABLE} WHERE key = $1"))
        .bind(key)
        .fetch_optional(&db.read)
        .await?;
    Ok(row.map(|r| r.get::<String, _>(0)))
}

/// As [`meta_get`], on a connection the caller already holds (a writer asking for another
/// connection from a pool its peers have drained would wait for ever).
pub async fn meta_get_on(conn: &mut sqlx::AnyConnection, key: &str) -> DbResult<Option<String>> {
    let row = sqlx::query(&format!("SELECT value FROM {META_TABLE} WHERE key = $1"))
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.get::<String, _>(0)))
}

pub async fn meta_set(conn: &mut sqlx::AnyConnection, key: &str, value: &str) -> DbResult<()> {
    sqlx::query(&format!("DELETE FROM {META_TABLE} WHERE key = $1"))
        .bind(key)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO {META_TABLE}(key, value) VALUES ($1, $2)"
    ))
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_foreign_keys_move_after_the_load() {
        let pg = ddl(Engine::Postgres);
        let items = pg
            .tables
            .iter()
            .find(|t| t.starts_with("CREATE TABLE order_items"))
            .unwrap();
        assert!(!items.contains("REFERENCES"), "{items}");
        assert!(!items.contains("PRIMARY KEY"), "{items}");
        assert!(pg.after_load.contains(
            &"ALTER TABLE order_items ADD PRIMARY KEY (order_id, product_id)".to_string()
        ));
        assert!(pg
            .after_load
            .contains(&"ALTER TABLE categories ADD PRIMARY KEY (id)".to_string()));
        let events = pg
            .tables
            .iter()
            .find(|t| t.starts_with("CREATE TABLE events"))
            .unwrap();
        assert!(events.contains("seq BIGSERIAL NOT NULL"), "{events}");
        assert!(pg
            .after_load
            .contains(&"ALTER TABLE events ADD PRIMARY KEY (seq)".to_string()));
        let first_fk = pg
            .after_load
            .iter()
            .position(|s| s.contains("FOREIGN KEY"))
            .unwrap();
        let last_pk = pg
            .after_load
            .iter()
            .rposition(|s| s.contains("PRIMARY KEY"))
            .unwrap();
        assert!(
            last_pk < first_fk,
            "keys before the references that need them"
        );
        assert!(pg.after_load.contains(
            &"ALTER TABLE order_items ADD FOREIGN KEY (order_id) REFERENCES orders(id)".to_string()
        ));
        assert_eq!(
            pg.after_load
                .iter()
                .filter(|s| s.contains("FOREIGN KEY"))
                .count(),
            7
        );
        let lite = ddl(Engine::Sqlite);
        assert!(lite
            .tables
            .iter()
            .any(|t| t.contains("REFERENCES orders(id)")));
        assert!(lite
            .after_load
            .iter()
            .all(|s| s.starts_with("CREATE INDEX")));
    }
}
