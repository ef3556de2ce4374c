//! Workload packs (issue [pack]): the shipped packs validate on SQLite and PostgreSQL; broken
//! packs are refused whole, every problem at once as `FILE: path: message` (exit 2), both the
//! problems found without a database and those the engine finds when it prepares the pack's
//! statements against its DDL; the check leaves nothing behind on the server. The shipped
//! packs also run on both engines: seeded by their SQL, their commands executed with the
//! projections in the same transaction, their read models equal to their truth.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use cqrs_bench::db::sql::Param;
use cqrs_bench::db::{DbUrl, Engine};
use cqrs_bench::pack::exec::{row_values, Applied, CompiledPack, PackEvent, Side};
use cqrs_bench::pack::params::Params;
use cqrs_bench::pack::{check, Pack, PackError};
use sqlx::{AnyConnection, Connection, Executor};

fn workload(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("workloads")
        .join(name)
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cqrs-bench"))
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// The problem lines of a refused check, sorted.
fn problem_lines(outcome: Result<Pack, PackError>) -> Vec<String> {
    let e = outcome.expect_err("the pack was accepted");
    assert_eq!(e.exit_code(), 2, "{e}");
    let mut lines: Vec<String> = e.problems().iter().map(ToString::to_string).collect();
    lines.sort();
    // Display gives the same lines.
    let mut shown: Vec<String> = e.to_string().lines().map(String::from).collect();
    shown.sort();
    assert_eq!(shown, lines);
    lines
}

fn sorted(lines: Vec<String>) -> Vec<String> {
    let mut lines = lines;
    lines.sort();
    lines
}

/// What each shipped pack holds, counted by hand from its pack.toml. The two negative
/// controls for check-projections are here too: they must be valid, and correct in order.
const SHIPPED: [(&str, &str); 5] = [
    ("ledger", "1 command, 2 queries, 1 read model, 1 projection"),
    ("crud", "2 commands, 1 query, 1 read model, 2 projections"),
    (
        "shop",
        "7 commands, 5 queries, 5 read models, 7 projections",
    ),
    (
        "control-count",
        "1 command, 1 query, 1 read model, 1 projection",
    ),
    (
        "control-lww",
        "1 command, 1 query, 1 read model, 1 projection",
    ),
];

#[tokio::test]
async fn shipped_packs_validate_on_sqlite() {
    for (name, summary) in SHIPPED {
        let pack = check(&workload(name), None)
            .await
            .unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert_eq!(pack.summary(), summary, "{name}");
        assert_eq!(pack.name, name);
    }
    let ledger = Pack::load(&workload("ledger")).unwrap();
    assert_eq!(ledger.sizes["accounts"], 1000);
    let transfer = &ledger.commands["transfer"];
    assert_eq!(transfer.statements.len(), 3);
    assert_eq!(
        transfer.statements[0].require_rows,
        Some(cqrs_bench::pack::RowRequirement::Exactly(1))
    );
    assert_eq!(transfer.statements[2].returns, ["transfer_id"]);
}

#[tokio::test]
async fn shipped_packs_validate_on_postgres() {
    let Some(url) = pg_url("shipped_packs_validate_on_postgres") else {
        return;
    };
    for (name, summary) in SHIPPED {
        let pack = check(&workload(name), Some(&url))
            .await
            .unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert_eq!(pack.summary(), summary, "{name}");
    }
    // The scratch schemas were rolled back with everything in them.
    let db = cqrs_bench::db::Db::open(&url, "public", 2).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE $1",
    )
    .bind(format!("cqrs_bench_check_{}_%", std::process::id()))
    .fetch_one(&db.read)
    .await
    .unwrap();
    db.close().await;
    assert_eq!(left, 0, "scratch schemas left behind");
}

#[test]
fn cli_prints_what_a_good_pack_holds() {
    for (name, summary) in SHIPPED {
        let o = bin()
            .args(["pack", "check"])
            .arg(workload(name))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{name}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("ok: {summary}\n")
        );
    }
}

/// A pack with a problem of each kind the manifest alone shows.
fn statically_broken(dir: &Path) {
    write(
        dir,
        "schema.sql",
        "CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);",
    );
    write(
        dir,
        "pack.toml",
        r#"
[dataset]
accounts = -1
users = 10

[parameters]
users = { kind = "uniform", range = "1..=users" }
hot = { kind = "hotspot", range = "1..=users", hot_keys = 1.5, hot_ops = 0.9 }
id = { kind = "uniform", range = "1..=users" }

[events.Bumped]
fields = ["id"]

[commands.bump]
statements = [{ sql = "UPDATE t SET n = n + :step WHERE id = :id", require_rows = 1 }]
emit = [{ event = "Bumped", fields = { id = "id", by = "id" } }]

[read_models.counts]
ddl = "CREATE TABLE counts (id BIGINT PRIMARY KEY, n BIGINT)"
key = ["id"]

[projections.count]
event = "Bumpd"
statements = ["UPDATE counts SET n = n + 1 WHERE id = :id"]

[queries.n]
write_sql = "SELECT n FROM t WHERE id = :id"
"#,
    );
}

/// The expected lines of `statically_broken`, written out by hand.
fn statically_broken_lines(dir: &Path) -> Vec<String> {
    let f = dir.join("pack.toml").display().to_string();
    sorted(
        [
            "dataset.accounts: must be in 0..=10000000000, got -1",
            "parameters.users: duplicate name: users is also a dataset size",
            "parameters.hot.hot_keys: must be in (0, 1), got 1.5",
            "commands.bump.statements[0]: unknown parameter :step (not a parameter, a dataset \
             size or a value returned by an earlier statement)",
            "commands.bump.emit[0].fields.by: Bumped has no field by (fields: id)",
            "read_models.counts.truth: required: the query over the write tables that yields \
             exactly the rows the read model must hold",
            "projections.count.event: unknown event \"Bumpd\" (declared: Bumped)",
            "queries.n.read_sql: required: the query on the read models",
        ]
        .iter()
        .map(|l| format!("{f}: {l}"))
        .collect(),
    )
}

#[tokio::test]
async fn a_bad_manifest_is_refused_with_every_problem() {
    let d = tempfile::tempdir().unwrap();
    statically_broken(d.path());
    assert_eq!(
        problem_lines(Pack::load(d.path())),
        statically_broken_lines(d.path())
    );
    // The engine check adds nothing: what is broken never reaches it.
    assert_eq!(
        problem_lines(check(d.path(), None).await),
        statically_broken_lines(d.path())
    );
}

#[test]
fn cli_refuses_a_bad_pack_with_exit_2_and_one_line_per_problem() {
    let d = tempfile::tempdir().unwrap();
    statically_broken(d.path());
    let o = bin()
        .args(["pack", "check"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let mut lines: Vec<String> = stderr
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.strip_prefix("error: ").unwrap_or(l).to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    lines.sort();
    assert_eq!(lines, statically_broken_lines(d.path()));
}

/// A pack whose manifest holds together but whose statements the engine refuses (and one
/// problem the manifest alone shows, reported in the same pass).
fn engine_broken(dir: &Path) {
    write(
        dir,
        "schema.sql",
        "CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);",
    );
    write(
        dir,
        "pack.toml",
        r#"
[dataset]
rows = 10

[parameters]
id = { kind = "uniform", range = "1..=rows" }

[events.Bumped]
fields = ["id"]

[commands.bump]
statements = [
    { sql = "UPDATE t SET n = n + 1 WHERE idd = :id", require_rows = 1 },
    { sql = "SELECT n FROM t WHERE id = :id", returns = ["a", "b"] },
]
emit = [{ event = "Bumped", fields = { id = "id" } }]

[read_models.counts]
ddl = "CREATE TABLE counts (id BIGINT PRIMARY KEY, total BIGINT)"
key = ["ident"]
truth = "SELECT id, n FROM t"

[projections.count]
event = "Bumped"
statements = ["UPDATE nosuch SET n = 1 WHERE id = :id"]

[queries.n]
write_sql = "SELECT id, n FROM t WHERE id = :id"
read_sql = "SELECT total FROM counts WHERE id = :id"

[queries.m]
write_sql = "SELECT n FROM t WHERE id = :nope"
read_sql = "SELECT total FROM counts WHERE id = :id"
"#,
    );
}

/// `engine_broken`'s lines; `missing_column` and `missing_table` are the engine's words.
fn engine_broken_lines(
    dir: &Path,
    engine: &str,
    missing_column: &str,
    missing_table: &str,
) -> Vec<String> {
    let f = dir.join("pack.toml").display().to_string();
    sorted(
        [
            "queries.m.write_sql: unknown parameter :nope (not a parameter or a dataset size)"
                .to_string(),
            format!("commands.bump.statements[0]: {engine} cannot prepare it: {missing_column}"),
            "commands.bump.statements[1].returns: names 2 value(s) (a, b) but the statement \
             yields 1 column(s)"
                .to_string(),
            "read_models.counts.key[0]: ident is not a column of counts (id, total)".to_string(),
            "read_models.counts.truth: yields columns (id, n) but counts has (id, total): they \
             must be the same"
                .to_string(),
            format!("projections.count.statements[0]: {engine} cannot prepare it: {missing_table}"),
            "queries.n: write_sql yields 2 column(s) (id, n), read_sql 1 (total): both sides \
             must give the same answer"
                .to_string(),
        ]
        .iter()
        .map(|l| format!("{f}: {l}"))
        .collect(),
    )
}

#[tokio::test]
async fn the_engine_check_names_each_statement_it_cannot_prepare_on_sqlite() {
    let d = tempfile::tempdir().unwrap();
    engine_broken(d.path());
    // Without a database only the manifest's problem shows.
    assert_eq!(problem_lines(Pack::load(d.path())).len(), 1);
    assert_eq!(
        problem_lines(check(d.path(), None).await),
        engine_broken_lines(
            d.path(),
            "SQLite",
            "no such column: idd",
            "no such table: nosuch"
        )
    );
    // A SQLite URL picks the engine; the file is never opened (an in-memory database
    // stands in).
    let file = d.path().join("never.db");
    let url = DbUrl::parse(&format!("sqlite://{}", file.display())).unwrap();
    assert_eq!(
        problem_lines(check(d.path(), Some(&url)).await),
        engine_broken_lines(
            d.path(),
            "SQLite",
            "no such column: idd",
            "no such table: nosuch"
        )
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn the_engine_check_names_each_statement_it_cannot_prepare_on_postgres() {
    let Some(url) = pg_url("the_engine_check_names_each_statement_it_cannot_prepare_on_postgres")
    else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    engine_broken(d.path());
    assert_eq!(
        problem_lines(check(d.path(), Some(&url)).await),
        engine_broken_lines(
            d.path(),
            "PostgreSQL",
            "column \"idd\" does not exist",
            "relation \"nosuch\" does not exist"
        )
    );
}

#[tokio::test]
async fn ddl_the_engine_refuses_is_named_by_its_file() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "schema.sql",
        "CREATE TABLE t (id BIGINT PRIMARY KEY);",
    );
    write(
        d.path(),
        "schema.sqlite.sql",
        "CREATE TABLE t (id BIGINT PRIMARY KEY);\nCREATE TABLE t (id BIGINT PRIMARY KEY);",
    );
    write(
        d.path(),
        "pack.toml",
        "description = \"two tables named t\"\n",
    );
    let lines = problem_lines(check(d.path(), None).await);
    let file = d.path().join("schema.sqlite.sql").display().to_string();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("{file}: SQLite refuses it: "))
            && lines[0].contains("already exists"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn dataset_sql_names_only_sizes_and_is_prepared_per_engine() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "schema.sql",
        "CREATE TABLE t (id BIGINT PRIMARY KEY);",
    );
    write(
        d.path(),
        "dataset.sqlite.sql",
        "INSERT INTO t (id) VALUES (:rows);\n-- a comment; with a semicolon\nINSERT INTO t (id) VALUES (:nope);\nINSERT INTO u (id) VALUES (:rows);",
    );
    write(d.path(), "pack.toml", "[dataset]\nrows = 3\n");
    let file = d.path().join("dataset.sqlite.sql").display().to_string();
    // The unknown size is found without a database; the missing table by the engine. The
    // statement with the unknown size keeps the file out of the engine check.
    assert_eq!(
        problem_lines(check(d.path(), None).await),
        vec![format!(
            "{file}: statements[1]: unknown size :nope (sizes: rows)"
        )]
    );
    write(
        d.path(),
        "dataset.sqlite.sql",
        "INSERT INTO t (id) VALUES (:rows);\nINSERT INTO u (id) VALUES (:rows);",
    );
    assert_eq!(
        problem_lines(check(d.path(), None).await),
        vec![format!(
            "{file}: statements[1]: SQLite cannot prepare it: no such table: u"
        )]
    );
}

// ---------------------------------------------------------------------------------------
// The shipped packs run: seeded by their dataset SQL, their commands executed with the
// projections in the same transaction (as cqrs-sync runs them), every read model then holds
// exactly its truth's rows and every query's two sides agree.

/// Small sizes, so a test seeds in milliseconds; the ledger's accounts are poor enough that
/// some transfers are refused.
fn small_sizes(name: &str) -> BTreeMap<String, i64> {
    let sizes: &[(&str, i64)] = match name {
        "ledger" => &[("accounts", 20), ("opening_balance", 4_000)],
        "shop" => &[
            ("categories", 4),
            ("products", 40),
            ("users", 30),
            ("orders", 100),
            ("reviews", 100),
            ("price_changes", 20),
        ],
        "control-count" => &[("pages", 10), ("views", 30)],
        "control-lww" => &[("documents", 3), ("editors", 5)],
        _ => &[("users", 50)],
    };
    sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

async fn fetch_rows(conn: &mut AnyConnection, sql: &str) -> Vec<Vec<Param>> {
    let rows = sqlx::query(sql).fetch_all(&mut *conn).await.unwrap();
    rows.iter().map(|r| row_values(r).unwrap()).collect()
}

/// Seeds pack `name` on `conn` (an empty place), runs `ops` ops cycling through its commands
/// and checks read models and queries. Returns the committed and refused counts.
async fn run_shipped(conn: &mut AnyConnection, engine: Engine, name: &str, ops: u64) -> (u64, u64) {
    let pack = Pack::load(&workload(name)).unwrap();
    let cp = CompiledPack::new(pack, engine, &small_sizes(name));
    cp.seed(conn).await.unwrap();
    let params = Params::new(5, &cp.pack.parameters, cp.sizes()).unwrap();
    let commands: Vec<String> = cp.pack.commands.keys().cloned().collect();
    let (mut committed, mut refused) = (0, 0);
    for i in 0..ops {
        let command = &commands[(i % commands.len() as u64) as usize];
        let mut tx = conn.begin().await.unwrap();
        match cp.execute(&mut tx, &params, i, command).await.unwrap() {
            Applied::Committed(events) => {
                cp.project(&mut tx, &events).await.unwrap();
                tx.commit().await.unwrap();
                committed += 1;
            }
            Applied::Refused { .. } => {
                tx.rollback().await.unwrap();
                refused += 1;
            }
        }
    }
    for rm in cp.pack.read_models.keys() {
        let (_, truth, read) = cp.read_model_queries(conn, rm).await.unwrap();
        let truth = fetch_rows(conn, &truth).await;
        let read = fetch_rows(conn, &read).await;
        assert!(!truth.is_empty(), "{name}: {rm} is empty");
        assert_eq!(truth, read, "{name}: {rm} differs from its truth");
    }
    for q in cp.pack.queries.keys() {
        for i in 0..10 {
            let w = cp.query(conn, &params, i, q, Side::Write).await.unwrap();
            let r = cp.query(conn, &params, i, q, Side::Read).await.unwrap();
            assert_eq!(w, r, "{name}: query {q}, op {i}");
        }
    }
    (committed, refused)
}

/// What each pack must show after its run, from its sizes: the ledger keeps its money and
/// refuses some transfers; crud created one profile per create op; the shop one review and
/// one price change per such op, and one line per order; the controls one view or one edit
/// per op.
async fn check_totals(
    conn: &mut AnyConnection,
    name: &str,
    ops: u64,
    committed: u64,
    refused: u64,
) {
    assert_eq!(committed + refused, ops);
    match name {
        "ledger" => {
            assert!(refused > 0 && committed > 0, "{committed} {refused}");
            let total: i64 =
                sqlx::query_scalar("SELECT CAST(sum(balance) AS BIGINT) FROM accounts")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            assert_eq!(total, 20 * 4_000);
        }
        "shop" => {
            // Commands in name order: of 300 ops, add_review (i % 7 = 0) and change_price
            // (i % 7 = 2) run 43 times each and are never refused; paying, shipping or
            // cancelling a seeded order already past that step is.
            assert!(refused > 0 && committed > 0, "{committed} {refused}");
            let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
            let reviews = count("SELECT count(*) FROM reviews")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(reviews, 100 + 43);
            let changes = count("SELECT count(*) FROM price_history")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(changes, 20 + 43);
            // One line an order.
            let orders = count("SELECT count(*) FROM orders")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let lines = count("SELECT count(*) FROM order_items")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(orders, lines);
            assert!(orders > 100, "orders were placed");
        }
        "control-count" => {
            // Every op views a page: 30 seeded views and one more per op, each counted once
            // by the projection (its read model equals its truth, checked by run_shipped).
            assert_eq!(refused, 0);
            let counted: i64 =
                sqlx::query_scalar("SELECT CAST(sum(views) AS BIGINT) FROM page_views")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            assert_eq!(counted as u64, 30 + ops);
        }
        "control-lww" => {
            // Every op edits one of the 3 documents (seeded at version 1), adding 1 to its
            // version; in order, the read model keeps each document's last edit.
            assert_eq!(refused, 0);
            let versions: i64 =
                sqlx::query_scalar("SELECT CAST(sum(version) AS BIGINT) FROM document_titles")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            assert_eq!(versions as u64, 3 + ops);
        }
        _ => {
            assert_eq!(refused, 0);
            // Commands alternate create_profile (even ops) and update_profile (odd ops).
            let profiles: i64 = sqlx::query_scalar("SELECT count(*) FROM profiles")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(profiles as u64, 50 + ops.div_ceil(2));
        }
    }
}

#[tokio::test]
async fn shipped_packs_run_and_keep_their_read_models_true_on_sqlite() {
    sqlx::any::install_default_drivers();
    for (name, _) in SHIPPED {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        let (committed, refused) = run_shipped(&mut conn, Engine::Sqlite, name, 300).await;
        check_totals(&mut conn, name, 300, committed, refused).await;
    }
}

#[tokio::test]
async fn shipped_packs_run_and_keep_their_read_models_true_on_postgres() {
    let Some(url) = pg_env("shipped_packs_run_and_keep_their_read_models_true_on_postgres") else {
        return;
    };
    sqlx::any::install_default_drivers();
    for (name, _) in SHIPPED {
        let schema = unique_schema("pack_run");
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        conn.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        conn.execute(format!("SET search_path TO {schema}").as_str())
            .await
            .unwrap();
        // The schema is dropped whether the checks pass or not.
        let checked = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
            let (committed, refused) = run_shipped(&mut conn, Engine::Postgres, name, 300).await;
            check_totals(&mut conn, name, 300, committed, refused).await;
        }))
        .await;
        let mut cleanup = AnyConnection::connect(&url).await.unwrap();
        cleanup
            .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
            .await
            .unwrap();
        if let Err(panic) = checked {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The two negative controls for check-projections are wrong under the fault each is built
/// for (their in-order runs are true: shipped_packs_run_…): control-count counts a view
/// delivered twice twice; control-lww keeps the older title when two editors' edits of one
/// document (two streams) arrive in the other order.
#[tokio::test]
async fn the_negative_controls_diverge_under_their_fault() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();

    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("count.db").display()
    );
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let pack = Pack::load(&workload("control-count")).unwrap();
    assert_eq!(pack.stream_keys["PageViewed"], "page");
    let cp = CompiledPack::new(pack, Engine::Sqlite, &small_sizes("control-count"));
    cp.seed(&mut conn).await.unwrap();
    let params = Params::new(5, &cp.pack.parameters, cp.sizes()).unwrap();
    let mut tx = conn.begin().await.unwrap();
    let Applied::Committed(events) = cp.execute(&mut tx, &params, 0, "view_page").await.unwrap()
    else {
        panic!("a view is never refused");
    };
    assert_eq!(events.len(), 1);
    // Delivered twice.
    cp.project(&mut tx, &events).await.unwrap();
    cp.project(&mut tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let views = count("SELECT count(*) FROM views")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let counted = count("SELECT CAST(sum(views) AS BIGINT) FROM page_views")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!((views, counted), (30 + 1, 30 + 2));

    let url = format!("sqlite://{}?mode=rwc", dir.path().join("lww.db").display());
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let pack = Pack::load(&workload("control-lww")).unwrap();
    assert_eq!(pack.stream_keys["DocumentEdited"], "editor");
    let cp = CompiledPack::new(pack, Engine::Sqlite, &small_sizes("control-lww"));
    cp.seed(&mut conn).await.unwrap();
    let params = Params::new(5, &cp.pack.parameters, cp.sizes()).unwrap();
    // Two edits of one document by two editors, committed in this order (versions 2 and 3);
    // every other op rolled back.
    let mut edits = Vec::new();
    for i in 0..1000 {
        let mut tx = conn.begin().await.unwrap();
        let Applied::Committed(mut events) = cp.execute(&mut tx, &params, i, "edit").await.unwrap()
        else {
            panic!("an edit of a seeded document is never refused");
        };
        let e = events.pop().unwrap();
        let second = edits.first().is_some_and(|first: &PackEvent| {
            first.fields["doc"] == e.fields["doc"] && first.fields["editor"] != e.fields["editor"]
        });
        if edits.is_empty() || second {
            tx.commit().await.unwrap();
            edits.push(e);
            if edits.len() == 2 {
                break;
            }
        } else {
            tx.rollback().await.unwrap();
        }
    }
    assert_eq!(
        edits.len(),
        2,
        "no second editor of one document in 1000 ops"
    );
    assert_eq!(edits[0].fields["version"], Param::Int(2));
    assert_eq!(edits[1].fields["version"], Param::Int(3));
    // Different streams, delivered in the other order: the older edit lands last.
    edits.reverse();
    let mut tx = conn.begin().await.unwrap();
    cp.project(&mut tx, &edits).await.unwrap();
    tx.commit().await.unwrap();
    let Param::Int(doc) = edits[0].fields["doc"] else {
        panic!("doc is an integer");
    };
    let row =
        |table: &str, key: &str| format!("SELECT title, version FROM {table} WHERE {key} = {doc}");
    let truth = fetch_rows(&mut conn, &row("documents", "id")).await;
    let read = fetch_rows(&mut conn, &row("document_titles", "doc_id")).await;
    assert_eq!(
        truth,
        vec![vec![edits[0].fields["title"].clone(), Param::Int(3)]]
    );
    assert_eq!(
        read,
        vec![vec![edits[1].fields["title"].clone(), Param::Int(2)]]
    );
}
