//! Safe by default (issue 8):
//!
//! - Passwords in database URLs never appear: every command run against a URL with a password
//!   (run, check, seed, verify, rebuild, dead-letters, and their error paths), with stdout,
//!   stderr and every file the run writes (results.json, report.md/html, plots, JUnit) scanned
//!   for it; results.json shows the URL as `user:***@host`. Needs `CQRS_BENCH_TEST_PG`.
//! - The tool never drops, truncates or alters what it did not create: a SQLite file and a
//!   PostgreSQL schema holding someone else's tables are refused (exit 2) by every command and
//!   are byte-for-byte the same afterwards; someone's table inside the tool's own PostgreSQL
//!   schema survives a re-seed and a run (the tool drops only its own tables, and its final
//!   `DROP SCHEMA … RESTRICT` leaves a schema that still holds foreign objects).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cqrs_bench::db::{Db, DbUrl};
use sqlx::{ConnectOptions, Executor, Row};

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");
const PASSWORD: &str = "S3cretPw0rd";

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

struct Out {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Out {
    fn text(&self) -> String {
        format!(
            "cqrs-bench {}\nexit {:?} after {:.1}s\n--- stderr\n{}--- stdout\n{}",
            // The test's own report shows where the password was, never the password itself.
            self.args.join(" ").replace(PASSWORD, "<password>"),
            self.code,
            self.elapsed.as_secs_f64(),
            self.stderr,
            self.stdout
        )
    }
}

/// Runs the binary (killed after `limit`).
fn cli(args: &[&str], limit: Duration) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    let f = common::run_with_limit(cmd, limit);
    Out {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: f.code,
        stdout: f.stdout,
        stderr: f.stderr,
        elapsed: f.elapsed,
    }
}

fn short(args: &[&str]) -> Out {
    cli(args, Duration::from_secs(60))
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .display()
        .to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Refusals: exit 2, one `error:` line, no panic.
fn assert_refused(o: &Out, says: &str) {
    assert_eq!(
        o.code,
        Some(2),
        "expected a refusal (exit 2):\n{}",
        o.text()
    );
    let errors = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .count();
    assert_eq!(errors, 1, "one error line expected:\n{}", o.text());
    assert!(
        !o.stderr.contains("panicked"),
        "no panic expected:\n{}",
        o.text()
    );
    assert!(
        o.stderr.contains(says),
        "the error should say {says:?}:\n{}",
        o.text()
    );
}

// ---------------------------------------------------------------------------------------------
// SQLite: someone else's file.
// ---------------------------------------------------------------------------------------------

async fn sqlite_conn(path: &Path) -> sqlx::SqliteConnection {
    // No pragmas: a plain connection, as the file's owner would open it.
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .expect("open sqlite")
}

/// Someone else's database: tables (one named like a tool table), rows, an index, a view, a
/// trigger, a user_version; journal mode DELETE (SQLite's default).
fn make_foreign_sqlite(path: &Path) {
    rt().block_on(async {
        let mut c = sqlite_conn(path).await;
        for s in [
            "PRAGMA journal_mode = DELETE",
            "PRAGMA user_version = 42",
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, note TEXT)",
            "CREATE INDEX orders_customer ON orders(customer_id)",
            "CREATE VIEW customer_orders AS SELECT c.name, o.note FROM customers c JOIN orders o ON o.customer_id = c.id",
            "CREATE TRIGGER no_delete BEFORE DELETE ON customers BEGIN SELECT RAISE(ABORT, 'keep'); END",
            "INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger')",
            "INSERT INTO orders VALUES (10, 1, 'keep me'), (11, 2, 'and me'), (12, 3, 'me too')",
        ] {
            c.execute(s).await.expect(s);
        }
        sqlx::Connection::close(c).await.unwrap();
    });
}

/// Everything about a foreign SQLite file that the tool must not change: its schema objects,
/// every row, user_version.
fn sqlite_fingerprint(path: &Path) -> String {
    rt().block_on(async {
        let mut c = sqlite_conn(path).await;
        let mut out = String::new();
        let objects = sqlx::query(
            "SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        for r in &objects {
            let (t, n, tb, sql): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            out.push_str(&format!("{t} {n} on {tb}: {sql}\n"));
        }
        for (table, cols) in [
            ("customers", "id || ':' || name"),
            ("orders", "id || ':' || customer_id || ':' || note"),
        ] {
            let row = sqlx::query(&format!(
                "SELECT COUNT(*), COALESCE(GROUP_CONCAT({cols}, '|'), '') FROM (SELECT * FROM {table} ORDER BY id)"
            ))
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{table} is gone: {e}"));
            let (n, rows): (i64, String) = (row.get(0), row.get(1));
            out.push_str(&format!("{table}: {n} rows: {rows}\n"));
        }
        let v: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut c)
            .await
            .unwrap();
        out.push_str(&format!("user_version {v}\n"));
        sqlx::Connection::close(c).await.unwrap();
        out
    })
}

fn sqlite_journal_mode(path: &Path) -> String {
    rt().block_on(async {
        let mut c = sqlite_conn(path).await;
        let m: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut c)
            .await
            .unwrap();
        sqlx::Connection::close(c).await.unwrap();
        m
    })
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// `run` and `check` put each backend in `<stem>.<backend>.db`; `seed`, `verify`, `rebuild`
/// and `dead-letters` use the file itself. All of them, pointed at someone else's files, refuse
/// with exit 2 and leave every table, row and index as it was.
#[test]
fn foreign_sqlite_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let theirs = d.join("shop.db");
    // What run/check would use for each backend: someone else's too.
    let suffixed: Vec<PathBuf> = ["normalized", "cqrs_sync", "cqrs_async"]
        .iter()
        .map(|b| d.join(format!("shop.{b}.db")))
        .collect();
    let all: Vec<PathBuf> = std::iter::once(theirs.clone())
        .chain(suffixed.iter().cloned())
        .collect();
    for p in &all {
        make_foreign_sqlite(p);
    }
    let before: Vec<String> = all.iter().map(|p| sqlite_fingerprint(p)).collect();

    let url = sqlite_url(&theirs);
    let ci = scenario("ci.toml");
    let out = d.join("out").display().to_string();
    let u = url.as_str();
    let commands: Vec<Vec<&str>> = vec![
        vec!["seed", "--db", u],
        vec!["seed", "--db", u, "--backend", "normalized"],
        vec![
            "seed",
            "--db",
            u,
            "--backend",
            "cqrs-sync",
            "--scenario",
            &ci,
        ],
        vec!["verify", "--db", u],
        vec!["rebuild", "--db", u],
        vec!["rebuild", "--db", u, "--projection", "daily_sales"],
        vec!["dead-letters", "--db", u],
        vec!["dead-letters", "--db", u, "--replay"],
        vec![
            "run",
            &ci,
            "--db",
            u,
            "--duration",
            "2s",
            "--quiet",
            "--out",
            &out,
        ],
        vec![
            "run",
            &ci,
            "--db",
            u,
            "--backends",
            "cqrs-sync",
            "--duration",
            "2s",
            "--quiet",
            "--out",
            &out,
        ],
        vec![
            "run",
            &ci,
            "--db",
            u,
            "--backends",
            "cqrs-async",
            "--duration",
            "2s",
            "--quiet",
            "--out",
            &out,
        ],
        vec![
            "run",
            &ci,
            "--db",
            u,
            "--backends",
            "cqrs-async",
            "--duration",
            "2s",
            "--quiet",
            "--keep-db",
            "--out",
            &out,
        ],
        vec![
            "check",
            &ci,
            "--db",
            u,
            "--duration",
            "2s",
            "--quiet",
            "--out",
            &out,
        ],
    ];
    for args in &commands {
        let o = short(args);
        assert_refused(&o, "refusing to touch it");
    }
    let after: Vec<String> = all.iter().map(|p| sqlite_fingerprint(p)).collect();
    for ((p, b), a) in all.iter().zip(&before).zip(&after) {
        assert_eq!(b, a, "{} changed", p.display());
    }
    eprintln!(
        "safety: {} commands refused {} foreign SQLite files; tables, rows, indexes unchanged",
        commands.len(),
        all.len()
    );
}

/// `run --db sqlite://their.db` works on `their.<backend>.db` files of its own: the file named
/// in the URL is never opened, and the run removes only the files it made.
#[test]
fn sqlite_run_leaves_the_named_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let theirs = d.join("shop.db");
    make_foreign_sqlite(&theirs);
    let before = sqlite_fingerprint(&theirs);
    let listing_before: Vec<PathBuf> = files_under(d);
    let out = dir.path().join("out");
    let o = short(&[
        "run",
        &scenario("ci.toml"),
        "--db",
        &sqlite_url(&theirs),
        "--backends",
        "normalized",
        "--duration",
        "2s",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.code, Some(0), "{}", o.text());
    assert_eq!(before, sqlite_fingerprint(&theirs), "shop.db changed");
    assert_eq!(
        sqlite_journal_mode(&theirs),
        "delete",
        "journal mode of shop.db changed"
    );
    let left: Vec<PathBuf> = files_under(d)
        .into_iter()
        .filter(|p| !p.starts_with(&out))
        .collect();
    assert_eq!(
        listing_before, left,
        "the run left or removed files next to shop.db"
    );
}

/// The tool's own SQLite file into which someone added a table is no longer the tool's: it is
/// refused, and the added table survives.
#[test]
fn own_sqlite_file_with_an_added_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let url = sqlite_url(&path);
    let o = short(&["seed", "--db", &url, "--scenario", &scenario("ci.toml")]);
    assert_eq!(o.code, Some(0), "{}", o.text());
    rt().block_on(async {
        let mut c = sqlite_conn(&path).await;
        c.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .await
            .unwrap();
        c.execute("INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace')")
            .await
            .unwrap();
        sqlx::Connection::close(c).await.unwrap();
    });
    for args in [
        vec!["seed", "--db", url.as_str()],
        vec!["rebuild", "--db", url.as_str()],
        vec!["dead-letters", "--db", url.as_str(), "--replay"],
    ] {
        assert_refused(&short(&args), "customers");
    }
    let rows: Vec<(i64, String)> = rt().block_on(async {
        let mut c = sqlite_conn(&path).await;
        sqlx::query_as("SELECT id, name FROM customers ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap()
    });
    assert_eq!(rows, vec![(1, "Ada".to_string()), (2, "Grace".to_string())]);
}

/// A table that merely has the tool's marker name (`cqrs_bench_meta`) but another shape is
/// someone else's: refused like any foreign file, with exit 2 and the usual message — not a
/// database error (exit 3).
#[test]
fn look_alike_meta_table_in_sqlite_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookalike.db");
    rt().block_on(async {
        let mut c = sqlite_conn(&path).await;
        c.execute("CREATE TABLE cqrs_bench_meta (id INTEGER PRIMARY KEY, note TEXT)")
            .await
            .unwrap();
        c.execute("INSERT INTO cqrs_bench_meta VALUES (1, 'mine, not the tool''s')")
            .await
            .unwrap();
        sqlx::Connection::close(c).await.unwrap();
    });
    let before = rt().block_on(async {
        let mut c = sqlite_conn(&path).await;
        let r: Vec<(i64, String)> = sqlx::query_as("SELECT id, note FROM cqrs_bench_meta")
            .fetch_all(&mut c)
            .await
            .unwrap();
        r
    });
    let url = sqlite_url(&path);
    let mut wrong = Vec::new();
    for args in [
        vec!["seed", "--db", url.as_str()],
        vec!["verify", "--db", url.as_str()],
    ] {
        let o = short(&args);
        if o.code != Some(2) || !o.stderr.contains("refusing to touch it") {
            wrong.push(o.text());
        }
    }
    let after = rt().block_on(async {
        let mut c = sqlite_conn(&path).await;
        let r: Vec<(i64, String)> = sqlx::query_as("SELECT id, note FROM cqrs_bench_meta")
            .fetch_all(&mut c)
            .await
            .unwrap();
        r
    });
    assert_eq!(before, after, "the look-alike table changed");
    assert!(
        wrong.is_empty(),
        "expected exit 2 with `refusing to touch it`:\n{}",
        wrong.join("\n")
    );
}

/// Opening someone else's file to look at it must not convert it: the tool sets
/// `journal_mode = WAL` on its connections, which is persistent in the file and leaves
/// `-wal`/`-shm` files beside it; on a file it refuses, that is altering what it did not create.
#[test]
fn foreign_sqlite_file_keeps_its_journal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("theirs.db");
    make_foreign_sqlite(&path);
    assert_eq!(sqlite_journal_mode(&path), "delete");
    let listing = files_under(dir.path());
    let o = short(&["verify", "--db", &sqlite_url(&path)]);
    assert_refused(&o, "refusing to touch it");
    let o = short(&["seed", "--db", &sqlite_url(&path)]);
    assert_refused(&o, "refusing to touch it");
    let mode = sqlite_journal_mode(&path);
    let now = files_under(dir.path());
    assert!(
        mode == "delete" && now == listing,
        "a refused foreign SQLite file was altered: journal_mode {mode:?} (was \"delete\"), \
         files {now:?} (were {listing:?})"
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL.
// ---------------------------------------------------------------------------------------------

/// The test URL with `PASSWORD` as the password (trust auth accepts any).
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let slash = rest.find('/').unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(slash);
    let (user, host) = match auth.rfind('@') {
        Some(at) => (
            auth[..at].split(':').next().unwrap_or("postgres"),
            &auth[at + 1..],
        ),
        None => ("postgres", auth),
    };
    format!("{scheme}://{user}:{PASSWORD}@{host}{tail}")
}

async fn admin(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("connect to CQRS_BENCH_TEST_PG")
}

/// Drops what the tool created (its tables, and the schema if then empty).
async fn tool_cleanup(url: &str, schemas: &[String]) {
    let url = DbUrl::parse(url).unwrap();
    for s in schemas {
        if let Ok(db) = Db::open(&url, s, 1).await {
            let _ = cqrs_bench::db::schema::drop_all(&db).await;
            db.close().await;
        }
    }
}

/// A lower-case schema name unique to this process and call.
fn unique(prefix: &str) -> String {
    common::unique_schema(prefix)
}

/// Scans output for the password; `Err` names where it leaked.
fn leaks(o: &Out) -> Option<String> {
    (o.stdout.contains(PASSWORD) || o.stderr.contains(PASSWORD))
        .then(|| format!("password printed by:\n{}", o.text()))
}

#[test]
fn passwords_never_appear() {
    let Some(env) = common::pg_env("passwords_never_appear") else {
        return;
    };
    let url = with_password(&env);
    assert!(url.contains(PASSWORD));
    let dir = tempfile::tempdir().unwrap();
    let run_prefix = unique("pwrun");
    let check_prefix = unique("pwchk");
    let seeded = unique("pwseed");
    let ci = scenario("ci.toml");
    let run_out = dir.path().join("run");
    let check_out = dir.path().join("check");
    let junit = check_out.join("junit.xml");
    std::fs::create_dir_all(&check_out).unwrap();
    let mut tool_schemas: Vec<String> = vec![seeded.clone()];
    for p in [&run_prefix, &check_prefix] {
        for b in ["normalized", "cqrs_sync", "cqrs_async"] {
            tool_schemas.push(format!("{p}_{b}"));
        }
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut leaked = Vec::new();
        let mut outs = Vec::new();
        let run = cli(
            &[
                "run",
                &ci,
                "--db",
                &url,
                "--schema",
                &run_prefix,
                "--duration",
                "3s",
                "--quiet",
                "--out",
                run_out.to_str().unwrap(),
            ],
            Duration::from_secs(120),
        );
        assert_eq!(run.code, Some(0), "run failed:\n{}", run.text());
        outs.push(run);
        let check = cli(
            &[
                "check",
                &ci,
                "--db",
                &url,
                "--schema",
                &check_prefix,
                "--duration",
                "3s",
                "--quiet",
                "--out",
                check_out.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ],
            Duration::from_secs(120),
        );
        // 1 would be a missed latency threshold on a busy machine: still a complete check.
        assert!(
            matches!(check.code, Some(0) | Some(1)),
            "check failed:\n{}",
            check.text()
        );
        outs.push(check);
        for args in [
            vec![
                "seed",
                "--db",
                &url,
                "--backend",
                "cqrs-async",
                "--schema",
                &seeded,
                "--scenario",
                &ci,
            ],
            vec!["verify", "--db", &url, "--schema", &seeded],
            vec!["rebuild", "--db", &url, "--schema", &seeded],
            vec![
                "rebuild",
                "--db",
                &url,
                "--schema",
                &seeded,
                "--projection",
                "product_catalog",
            ],
            vec!["dead-letters", "--db", &url, "--schema", &seeded],
            vec![
                "dead-letters",
                "--db",
                &url,
                "--schema",
                &seeded,
                "--replay",
            ],
        ] {
            let o = short(&args);
            assert_eq!(o.code, Some(0), "{}", o.text());
            outs.push(o);
        }
        // Error paths print the URL too.
        let missing = unique("pwmissing");
        for (args, code) in [
            (
                vec!["verify", "--db", url.as_str(), "--schema", &missing],
                2,
            ),
            (
                vec!["rebuild", "--db", url.as_str(), "--schema", &missing],
                2,
            ),
            (
                vec!["dead-letters", "--db", url.as_str(), "--schema", &missing],
                2,
            ),
        ] {
            let o = short(&args);
            assert_eq!(o.code, Some(code), "{}", o.text());
            outs.push(o);
        }
        let bad_port = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/test");
        let o = cli(&["verify", "--db", &bad_port], Duration::from_secs(10));
        assert_eq!(o.code, Some(2), "{}", o.text());
        outs.push(o);
        for o in &outs {
            leaked.extend(leaks(o));
        }
        // Every file the run and the check wrote.
        let mut scanned = Vec::new();
        for dir in [&run_out, &check_out] {
            for f in files_under(dir) {
                let bytes = std::fs::read(&f).unwrap();
                if contains(&bytes, PASSWORD.as_bytes()) {
                    leaked.push(format!("password in {}", f.display()));
                }
                scanned.push(f);
            }
        }
        let names: Vec<String> = scanned
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for must in ["results.json", "junit.xml"] {
            assert!(
                names.iter().any(|n| n == must),
                "{must} not written: {names:?}"
            );
        }
        eprintln!(
            "safety: {} commands and {} files scanned for the password: {}",
            outs.len(),
            scanned.len(),
            names.join(", ")
        );
        for dir in [&run_out, &check_out] {
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
            let db = json["environment"]["database"].as_str().unwrap_or_default();
            assert!(
                db.contains(":***@") && !db.contains(PASSWORD),
                "environment.database should show the password as ***, got {db:?}"
            );
        }
        assert!(leaked.is_empty(), "{}", leaked.join("\n\n"));
    }));
    rt().block_on(tool_cleanup(&env, &tool_schemas));
    // Whatever the run and the check kept (an interrupted or failed step included) goes too,
    // with the tool's own `drop`, which takes `--schema` as the prefix `run` does.
    for prefix in [&run_prefix, &check_prefix] {
        let _ = short(&["drop", "--db", &env, "--schema", prefix]);
    }
    let left = rt().block_on(schemas_starting_with(
        &env,
        &[&run_prefix, &check_prefix, &seeded],
    ));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(left.is_empty(), "schemas left behind: {left:?}");
}

/// The schemas whose names start with one of `prefixes`.
async fn schemas_starting_with(url: &str, prefixes: &[&String]) -> Vec<String> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect");
    let mut left = Vec::new();
    for p in prefixes {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1",
        )
        .bind(p.as_str())
        .fetch_all(&mut conn)
        .await
        .expect("list schemas");
        left.extend(found);
    }
    left
}

/// What must not change in a schema: its tables' columns, indexes, and every row.
async fn pg_fingerprint(pool: &sqlx::PgPool, schema: &str) -> String {
    let mut out = String::new();
    let cols: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, ordinal_position) \
         FROM information_schema.columns WHERE table_schema = $1",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .unwrap();
    out.push_str(&format!("columns {}\n", cols.unwrap_or_default()));
    let idx: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(indexname || ':' || indexdef, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .unwrap();
    out.push_str(&format!("indexes {}\n", idx.unwrap_or_default()));
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap();
    for t in tables {
        let (n, sum): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(x::text, '|' ORDER BY x::text)) FROM {schema}.{t} x"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push_str(&format!("{t}: {n} rows, md5 {}\n", sum.unwrap_or_default()));
    }
    out
}

/// Someone else's schema: a table named like one of the tool's, a table of their own with an
/// index, rows.
async fn make_foreign_schema(pool: &sqlx::PgPool, schema: &str) {
    for s in [
        format!("CREATE SCHEMA {schema}"),
        format!("CREATE TABLE {schema}.orders (id int PRIMARY KEY, note text)"),
        format!("CREATE TABLE {schema}.customers (id int PRIMARY KEY, name text NOT NULL)"),
        format!("CREATE INDEX customers_name ON {schema}.customers(name)"),
        format!("INSERT INTO {schema}.orders VALUES (1, 'keep me'), (2, 'and me')"),
        format!("INSERT INTO {schema}.customers VALUES (1, 'Ada'), (2, 'Grace')"),
    ] {
        pool.execute(s.as_str()).await.expect(&s);
    }
}

#[test]
fn foreign_postgres_schema_is_refused_and_untouched() {
    let Some(env) = common::pg_env("foreign_postgres_schema_is_refused_and_untouched") else {
        return;
    };
    let url = with_password(&env);
    let n = std::process::id();
    // Named like the tool's (the default schema is `cqrs_bench`).
    let schema = format!("cqrs_bench_theirs_{n}");
    let prefix = format!("cqrs_bench_theirs_{n}_run");
    let mut schemas = vec![schema.clone()];
    for b in ["normalized", "cqrs_sync", "cqrs_async"] {
        schemas.push(format!("{prefix}_{b}"));
    }
    let rt = rt();
    let pool = rt.block_on(admin(&env));
    rt.block_on(async {
        for s in &schemas {
            pool.execute(format!("DROP SCHEMA IF EXISTS {s} CASCADE").as_str())
                .await
                .unwrap();
            make_foreign_schema(&pool, s).await;
        }
    });
    let fingerprint = || {
        rt.block_on(async {
            let mut v = Vec::new();
            for s in &schemas {
                v.push(pg_fingerprint(&pool, s).await);
            }
            v
        })
    };
    let before = fingerprint();
    let ci = scenario("ci.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let u = url.as_str();
        let s = schema.as_str();
        let commands: Vec<Vec<&str>> = vec![
            vec!["seed", "--db", u, "--schema", s],
            vec!["seed", "--db", u, "--schema", s, "--backend", "normalized"],
            vec!["verify", "--db", u, "--schema", s],
            vec!["rebuild", "--db", u, "--schema", s],
            vec!["dead-letters", "--db", u, "--schema", s, "--replay"],
            vec![
                "run",
                &ci,
                "--db",
                u,
                "--schema",
                &prefix,
                "--duration",
                "2s",
                "--quiet",
                "--out",
                &out,
            ],
            vec![
                "run",
                &ci,
                "--db",
                u,
                "--schema",
                &prefix,
                "--backends",
                "cqrs-async",
                "--duration",
                "2s",
                "--quiet",
                "--out",
                &out,
            ],
            vec![
                "check",
                &ci,
                "--db",
                u,
                "--schema",
                &prefix,
                "--duration",
                "2s",
                "--quiet",
                "--out",
                &out,
            ],
        ];
        for args in &commands {
            let o = short(args);
            assert_refused(&o, "not created by cqrs-bench");
            assert!(leaks(&o).is_none(), "{}", o.text());
        }
        let after = fingerprint();
        for ((s, b), a) in schemas.iter().zip(&before).zip(&after) {
            assert_eq!(b, a, "schema {s} changed");
        }
        eprintln!(
            "safety: {} commands refused {} foreign PostgreSQL schemas; unchanged",
            commands.len(),
            schemas.len()
        );
    }));
    rt.block_on(async {
        for s in &schemas {
            let _ = pool
                .execute(format!("DROP SCHEMA IF EXISTS {s} CASCADE").as_str())
                .await;
        }
        pool.close().await;
    });
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn look_alike_meta_table_in_postgres_is_refused_with_exit_2() {
    let Some(env) = common::pg_env("look_alike_meta_table_in_postgres_is_refused_with_exit_2")
    else {
        return;
    };
    let url = with_password(&env);
    let schema = unique("lookalike");
    let rt = rt();
    let pool = rt.block_on(admin(&env));
    rt.block_on(async {
        for s in [
            format!("CREATE SCHEMA {schema}"),
            format!("CREATE TABLE {schema}.cqrs_bench_meta (id int PRIMARY KEY, note text)"),
            format!("INSERT INTO {schema}.cqrs_bench_meta VALUES (1, 'mine')"),
        ] {
            pool.execute(s.as_str()).await.unwrap();
        }
    });
    let before = rt.block_on(pg_fingerprint(&pool, &schema));
    let outs: Vec<Out> = [
        vec!["seed", "--db", url.as_str(), "--schema", &schema],
        vec!["verify", "--db", url.as_str(), "--schema", &schema],
    ]
    .iter()
    .map(|a| short(a))
    .collect();
    let after = rt.block_on(pg_fingerprint(&pool, &schema));
    rt.block_on(async {
        let _ = pool
            .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
            .await;
        pool.close().await;
    });
    assert_eq!(before, after, "the look-alike schema changed");
    let wrong: Vec<String> = outs
        .iter()
        .filter(|o| o.code != Some(2) || !o.stderr.contains("not created by cqrs-bench"))
        .map(|o| o.text())
        .collect();
    assert!(
        wrong.is_empty(),
        "expected exit 2 with `not created by cqrs-bench`:\n{}",
        wrong.join("\n")
    );
}

async fn their_notes(pool: &sqlx::PgPool, schema: &str) -> Result<Vec<(i32, String)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT id, note FROM {schema}.their_notes ORDER BY id"
    ))
    .fetch_all(pool)
    .await
}

async fn tables_in(pool: &sqlx::PgPool, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Someone adds a table to the tool's own schema. A re-seed drops and recreates only the
/// tool's tables; a run (schemas `<prefix>_<backend>`) re-seeds, runs and cleans up only its own
/// tables, and `DROP SCHEMA … RESTRICT` leaves the schema because it still holds their table.
#[test]
fn own_postgres_schema_keeps_foreign_tables() {
    let Some(env) = common::pg_env("own_postgres_schema_keeps_foreign_tables") else {
        return;
    };
    let url = with_password(&env);
    let seeded = unique("ownseed");
    let prefix = unique("ownrun");
    let run_schema = format!("{prefix}_cqrs_async");
    let ci = scenario("ci.toml");
    let rt = rt();
    let pool = rt.block_on(admin(&env));
    let expected = vec![(1, "keep me".to_string()), (2, "and me".to_string())];
    let add_theirs = |schema: &str| {
        rt.block_on(async {
            for s in [
                format!("CREATE TABLE {schema}.their_notes (id int PRIMARY KEY, note text)"),
                format!("INSERT INTO {schema}.their_notes VALUES (1, 'keep me'), (2, 'and me')"),
            ] {
                pool.execute(s.as_str()).await.unwrap();
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Re-seed.
        for s in [&seeded, &run_schema] {
            let o = short(&[
                "seed",
                "--db",
                &url,
                "--schema",
                s,
                "--backend",
                "cqrs-async",
                "--scenario",
                &ci,
            ]);
            assert_eq!(o.code, Some(0), "{}", o.text());
            add_theirs(s);
        }
        let o = short(&["seed", "--db", &url, "--schema", &seeded, "--scenario", &ci]);
        assert_eq!(o.code, Some(0), "re-seed:\n{}", o.text());
        assert_eq!(
            rt.block_on(their_notes(&pool, &seeded))
                .expect("their_notes survives a re-seed"),
            expected
        );
        let o = short(&["verify", "--db", &url, "--schema", &seeded]);
        assert_eq!(o.code, Some(0), "{}", o.text());
        assert_eq!(rt.block_on(their_notes(&pool, &seeded)).unwrap(), expected);

        // A run over the schema: re-seeds, runs, drops its own tables at the end.
        let o = cli(
            &[
                "run",
                &ci,
                "--db",
                &url,
                "--schema",
                &prefix,
                "--backends",
                "cqrs-async",
                "--duration",
                "2s",
                "--quiet",
                "--out",
                dir.path().to_str().unwrap(),
            ],
            Duration::from_secs(120),
        );
        assert_eq!(o.code, Some(0), "run:\n{}", o.text());
        assert_eq!(
            rt.block_on(their_notes(&pool, &run_schema))
                .expect("their_notes (and its schema) survive a run"),
            expected
        );
        assert_eq!(
            rt.block_on(tables_in(&pool, &run_schema)),
            vec!["their_notes".to_string()],
            "after the run only their table remains in {run_schema}"
        );
    }));
    rt.block_on(async {
        tool_cleanup(&env, &[seeded.clone(), run_schema.clone()]).await;
        for s in [&seeded, &run_schema] {
            let _ = pool
                .execute(format!("DROP TABLE IF EXISTS {s}.their_notes").as_str())
                .await;
            let _ = pool
                .execute(format!("DROP SCHEMA IF EXISTS {s} CASCADE").as_str())
                .await;
        }
        pool.close().await;
    });
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
