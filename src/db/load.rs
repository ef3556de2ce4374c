//! Loading the dataset: the generator's row streams bulk-loaded (COPY on PostgreSQL, large
//! multi-row inserts on SQLite) in one transaction, identical for every backend, never holding
//! more than a batch of rows. CQRS backends also get their read models, built by the same
//! "truth" SQL that verify uses; the async backend also gets the seed's history in its event
//! log, so a rebuild from the log reproduces the read models.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sqlx::Executor;

use super::schema::{self, META_TABLE};
use super::sql::{insert_rows, Param};
use super::{Db, DbResult, Engine};
use crate::dataset::spec::check_fits;
use crate::dataset::{batches, category_name, product_name, Dataset};
use crate::domain::segment::segment_of;
use crate::domain::Event;

/// What to load besides the write model.
pub type SeedOptions = crate::db::state::Provisions;

/// What seeding did, for reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedReport {
    pub rows: u64,
    pub events: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// A table's rows as a stream of bound values.
type RowStream<'a> = Box<dyn Iterator<Item = Vec<Param>> + Send + 'a>;

/// A write table in load order, and how its rows come out of the dataset.
struct Table {
    name: &'static str,
    cols: &'static str,
    rows: fn(&Dataset) -> RowStream<'_>,
}

const TABLES: &[Table] = &[
    Table {
        name: "categories",
        cols: "id, name",
        rows: |ds| {
            Box::new(
                ds.category_ids()
                    .map(|c| vec![c.into(), category_name(c).into()]),
            )
        },
    },
    Table {
        name: "products",
        cols: "id, category_id, name, price_cents, stock, version",
        rows: |ds| {
            Box::new(ds.products().map(|p| {
                let tail = [p.price_cents, p.stock, p.version];
                text_row(&[p.id, p.category_id], product_name(p.id), &tail)
            }))
        },
    },
    Table {
        name: "users",
        cols: "id, name, segment",
        rows: |ds| {
            Box::new(
                ds.user_ids()
                    .map(|u| vec![u.into(), format!("user {u}").into(), segment_of(u).into()]),
            )
        },
    },
    Table {
        name: "orders",
        cols: "id, user_id, status, placed_at, updated_at, version",
        rows: |ds| {
            Box::new(ds.orders().map(|o| {
                let tail = [o.placed_at, o.updated_at, o.version];
                text_row(&[o.id, o.user_id], o.status.as_str(), &tail)
            }))
        },
    },
    Table {
        name: "order_items",
        cols: "order_id, product_id, qty, unit_cents",
        rows: |ds| {
            Box::new(ds.orders().flat_map(|o| {
                o.lines
                    .into_iter()
                    .map(move |l| ints(&[o.id, l.product_id, l.qty, l.unit_cents]))
            }))
        },
    },
    Table {
        name: "reviews",
        cols: "id, product_id, user_id, rating, created_at",
        rows: |ds| {
            Box::new(
                ds.reviews()
                    .map(|r| ints(&[r.id, r.product_id, r.user_id, r.rating, r.at])),
            )
        },
    },
    Table {
        name: "price_history",
        cols: "id, product_id, old_cents, new_cents, changed_at",
        rows: |ds| {
            Box::new(
                ds.price_changes()
                    .map(|c| ints(&[c.id, c.product_id, c.old_cents, c.new_cents, c.at])),
            )
        },
    },
];

/// A row of integer columns, one text column, integer columns.
fn text_row(head: &[i64], text: impl Into<Param>, tail: &[i64]) -> Vec<Param> {
    [ints(head), vec![text.into()], ints(tail)].concat()
}

/// A row of integer columns.
fn ints(values: &[i64]) -> Vec<Param> {
    values.iter().copied().map(Param::Int).collect()
}

/// The event log, loaded only for backends that keep one, numbered from 1 as its sequence
/// would number them.
const EVENTS: Table = Table {
    name: schema::EVENT_LOG,
    cols: "seq, stream, kind, payload",
    rows: |ds| {
        Box::new(ds.events().zip(1..).map(|(e, seq): (_, i64)| {
            vec![
                seq.into(),
                e.stream().into(),
                e.kind().into(),
                e.to_json().into(),
            ]
        }))
    },
};

/// Rows loaded into the write tables and into the event log.
#[derive(Default)]
struct Loaded {
    rows: u64,
    events: u64,
}

/// Recreates the tool's tables and loads the dataset, all or nothing: the database is
/// marked `ready` in the same transaction as the last row. `read_models` are the statements
/// that build what `opts` provisions beyond the write model (the projection layer's, passed
/// down so the database layer does not import it).
pub async fn seed(
    db: &Db,
    ds: &Dataset,
    opts: SeedOptions,
    read_models: &[String],
) -> DbResult<SeedReport> {
    seed_with(db, ds, opts, read_models, None).await
}

/// Applies a batch of seeded events to the read models, inside the load's transaction (the
/// projection layer's SQL appliers, passed down so the database layer does not import them).
pub type ProjectBatch = for<'c> fn(
    &'c mut sqlx::AnyConnection,
    &'c [Event],
) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>>;

/// The meta key under which an event-store database records its user count: users are
/// reference data (ids `1..=n`), seeded once and never an aggregate of their own.
pub const USERS_KEY: &str = "users";

/// Like [`seed`]; for a dataset that provisions the event store, `project` builds the read
/// models from the store's events as they are loaded (required there, unused otherwise).
pub async fn seed_with(
    db: &Db,
    ds: &Dataset,
    opts: SeedOptions,
    read_models: &[String],
    project: Option<ProjectBatch>,
) -> DbResult<SeedReport> {
    check_disk(db, ds)?;
    schema::recreate(db).await?;
    let started = Instant::now();
    // After the rows: the loaded tables' keys and indexes, their planner statistics (so that
    // the read models' joins and aggregates are planned on real sizes), the read models, then
    // theirs.
    let ddl = schema::ddl(db.engine());
    let loaded_tables: Vec<&str> = [schema::WRITE_TABLES, schema::LOG_TABLES].concat();
    let mut statements = ddl.after_load;
    statements.extend(schema::extra_product_indexes(
        ds.spec().extra_product_indexes,
    ));
    statements.extend(db.dialect().analyze(&loaded_tables));
    if opts.product_copies {
        // With the products keyed: one lookup per line.
        statements.push(super::copies::FILL_ALL.to_string());
    }
    statements.extend_from_slice(read_models);
    // An event store's read models are projected batch by batch while it loads, by appliers
    // that need their keys; the others are built after the load, then keyed.
    let read_keys = ddl.after_read_models;
    if opts.matviews {
        // The read models are views now, indexed by their own statements; their table keys
        // do not apply (the ledgers, unused, stay tables).
        statements.extend(
            read_keys
                .iter()
                .filter(|s| {
                    !(s.starts_with("ALTER TABLE ")
                        && schema::READ_MODEL_TABLES.iter().any(|t| {
                            s.strip_prefix("ALTER TABLE ")
                                .is_some_and(|rest| rest.starts_with(&format!("{t} ")))
                        }))
                })
                .cloned(),
        );
    } else if !opts.event_store {
        statements.extend_from_slice(&read_keys);
    }
    if opts.triggers {
        // After the read tables' keys: `daily_sales`'s upsert needs its key.
        statements.extend(super::triggers::create_statements(db.engine()));
    }
    statements.extend(db.dialect().analyze(schema::READ_TABLES));
    statements.push(ready_statement(opts));
    let loaded = match db.engine() {
        _ if opts.event_store => {
            let mut conn = db.write.acquire().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for stmt in &read_keys {
                tx.execute(stmt.as_str()).await?;
            }
            let events = load_event_store(&mut tx, ds, project).await?;
            let users = ds.user_ids().last().unwrap_or(0);
            schema::meta_set(&mut tx, USERS_KEY, &users.to_string()).await?;
            for stmt in &statements {
                tx.execute(stmt.as_str()).await?;
            }
            tx.commit().await?;
            Loaded { rows: 0, events }
        }
        Engine::Postgres => {
            let mut conn = db.pg_connection().await?;
            load_postgres(&mut conn, ds, opts, &statements).await?
        }
        Engine::Sqlite => {
            let mut conn = db.write.acquire().await?;
            // Generated rows are consistent by construction; checking each reference while
            // loading costs more than the load. (A no-op inside a transaction, hence here.)
            conn.execute("PRAGMA foreign_keys = OFF").await?;
            let loaded = load_sqlite(&mut conn, ds, opts, &statements).await;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            loaded?
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(SeedReport {
        rows: loaded.rows,
        events: loaded.events,
        seconds,
        rows_per_second: loaded.rows as f64 / seconds.max(1e-9),
    })
}

/// Refuses, before touching anything, a dataset that would not fit in the free space of the
/// SQLite file's directory. (A PostgreSQL server's disk cannot be seen from the client; there
/// only the scenario's size bounds apply.)
fn check_disk(db: &Db, ds: &Dataset) -> DbResult<()> {
    let Some(path) = db.url.sqlite_path() else {
        return Ok(());
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let Some(free) = free_bytes(&dir) else {
        return Ok(());
    };
    check_fits(ds.spec(), free, &dir.display().to_string())?;
    Ok(())
}

/// Bytes available to an unprivileged user on the file system holding `dir`, if it can be
/// read.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated path and `st` a valid, writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

async fn load_postgres(
    conn: &mut sqlx::PgConnection,
    ds: &Dataset,
    opts: SeedOptions,
    statements: &[String],
) -> DbResult<Loaded> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // For this transaction only: the keys and indexes built after the load sort millions of
    // rows, and the key checks and read models hash-join and aggregate them; the server's
    // defaults (64 MB and 4 MB) spill those to disk.
    tx.execute("SET LOCAL maintenance_work_mem = '512MB'")
        .await?;
    tx.execute("SET LOCAL work_mem = '256MB'").await?;
    // `COPY … FREEZE` writes the rows frozen, sparing the second pass over every page that
    // would set their hint bits while the keys are built; it needs the tables truncated in
    // the same transaction. They were created empty just before, so nothing is lost.
    let mut names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    names.push(EVENTS.name);
    tx.execute(format!("TRUNCATE {}", names.join(", ")).as_str())
        .await?;
    let mut loaded = Loaded::default();
    for table in TABLES {
        loaded.rows += copy_in(&mut tx, table.name, table.cols, (table.rows)(ds)).await?;
    }
    if opts.event_log {
        // Every seeded event is this transaction's: stamped with its id as the column's
        // default would stamp it, without a function call per row.
        let xid: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
            .fetch_one(&mut *tx)
            .await?;
        let rows = (EVENTS.rows)(ds).map(move |row| [vec![Param::Int(xid)], row].concat());
        let cols = format!("xid, {}", EVENTS.cols);
        loaded.events = copy_in(&mut tx, EVENTS.name, &cols, Box::new(rows)).await?;
        // The sequence continues after the seeded events (they were numbered explicitly).
        let last = loaded.events as i64;
        let setval = format!(
            "SELECT setval(pg_get_serial_sequence('{}', 'seq'), {}, {})",
            EVENTS.name,
            last.max(1),
            last > 0
        );
        tx.execute(setval.as_str()).await?;
    }
    for stmt in statements {
        tx.execute(stmt.as_str()).await?;
    }
    tx.commit().await?;
    Ok(loaded)
}

async fn load_sqlite(
    conn: &mut sqlx::AnyConnection,
    ds: &Dataset,
    opts: SeedOptions,
    statements: &[String],
) -> DbResult<Loaded> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut loaded = Loaded::default();
    for table in TABLES {
        loaded.rows += insert_all(&mut tx, table, ds).await?;
    }
    if opts.event_log {
        loaded.events = insert_all(&mut tx, &EVENTS, ds).await?;
    }
    for stmt in statements {
        tx.execute(stmt.as_str()).await?;
    }
    tx.commit().await?;
    Ok(loaded)
}

/// The seed's history as the event store's rows, streamed in batches: each event in its stream
/// at the next version (an order's events carry their version; a product's stream is counted,
/// one counter per product), with its claim; each batch is also applied to the read models by
/// `project`, in the same transaction. Returns the events stored.
async fn load_event_store(
    conn: &mut sqlx::AnyConnection,
    ds: &Dataset,
    project: Option<ProjectBatch>,
) -> DbResult<u64> {
    use crate::domain::aggregate::{claim, occurred_at, stream_version};
    let head = "INSERT INTO es_events (stream, version, kind, payload, occurred_at, claim)";
    let mut product_versions: std::collections::HashMap<i64, i64> = Default::default();
    let mut count = 0;
    for batch in batches(ds.events()) {
        let rows: Vec<Vec<Param>> = batch
            .iter()
            .map(|e| {
                let version = stream_version(e, |p| {
                    let v = product_versions.entry(p).or_insert(0);
                    *v += 1;
                    *v
                });
                vec![
                    e.stream().into(),
                    version.into(),
                    e.kind().into(),
                    e.to_json().into(),
                    occurred_at(e).into(),
                    claim(e).into(),
                ]
            })
            .collect();
        insert_rows(conn, head, "", 6, &rows).await?;
        if let Some(project) = project {
            project(conn, &batch).await?;
        }
        count += batch.len() as u64;
    }
    Ok(count)
}

/// Multi-row INSERTs of `table`'s rows, one batch at a time; returns the rows inserted.
async fn insert_all(conn: &mut sqlx::AnyConnection, table: &Table, ds: &Dataset) -> DbResult<u64> {
    let head = format!("INSERT INTO {} ({})", table.name, table.cols);
    let n_cols = table.cols.split(',').count();
    let mut count = 0;
    for batch in batches((table.rows)(ds)) {
        insert_rows(conn, &head, "", n_cols, &batch).await?;
        count += batch.len() as u64;
    }
    Ok(count)
}

/// The `ready` mark, written in the load's last transaction.
fn ready_statement(opts: SeedOptions) -> String {
    format!(
        "UPDATE {META_TABLE} SET value = '{}' WHERE key = '{}'",
        crate::db::state::DbState::Ready(opts),
        crate::db::state::DbState::KEY
    )
}

/// PostgreSQL COPY (text format, rows frozen) of `rows` into `cols` of `table`, streamed in
/// 1 MiB chunks; returns the rows copied.
async fn copy_in(
    conn: &mut sqlx::PgConnection,
    table: &str,
    cols: &str,
    rows: RowStream<'_>,
) -> DbResult<u64> {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({cols}) FROM STDIN WITH (FREEZE)"))
        .await?;
    let mut buf = String::with_capacity(1 << 20);
    let mut count = 0;
    for row in rows {
        count += 1;
        push_copy_row(&mut buf, &row);
        if buf.len() > (1 << 20) {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await?;
    Ok(count)
}

/// Appends `row` to `buf` as a line of COPY's text format: tab-separated, with backslash,
/// tab and line breaks escaped.
fn push_copy_row(buf: &mut String, row: &[Param]) {
    use std::fmt::Write;
    for (i, p) in row.iter().enumerate() {
        if i > 0 {
            buf.push('\t');
        }
        match p {
            Param::Int(v) => write!(buf, "{v}").expect("writing to a String"),
            Param::Null => buf.push_str("\\N"),
            Param::Text(s) if !s.contains(['\\', '\t', '\n', '\r']) => buf.push_str(s),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_what_the_text_format_reserves() {
        let mut buf = String::new();
        push_copy_row(
            &mut buf,
            &[Param::Int(-7), "plain".into(), "a\tb\\c\nd\re".into()],
        );
        push_copy_row(&mut buf, &[Param::Int(0)]);
        assert_eq!(buf, "-7\tplain\ta\\tb\\\\c\\nd\\re\n0\n");
    }

    #[test]
    fn free_space_of_an_existing_directory_is_known() {
        let dir = std::env::temp_dir();
        assert!(free_bytes(&dir).is_some_and(|b| b > 0), "{}", dir.display());
        assert_eq!(free_bytes(std::path::Path::new("/no/such/dir")), None);
    }
}
