//! A team's pack through `run`, end to end, as a user runs it: the shipped pack scenarios
//! (`scenarios/pack-ledger.toml`, `pack-crud.toml`, `pack-forum.toml`) at a light load on
//! SQLite and PostgreSQL, through the one driver, recorder, verify, decision and report. The budgets are generous
//! (seconds) where an answer must not depend on the machine; the ledger's staleness budget of
//! 0 is what rules its async backend out, by construction. No latency is asserted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::run_with_limit;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

/// One run at a time: each is a measurement, and the decision needs sound runs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `scenarios/<name>.toml` written into `dir` with its pack named by absolute path, a light
/// load (20 writes/s, 40 reads/s), 7 s with a 1 s warm-up (6 s measured: a decision needs
/// 5), and the top-level keys of `replace` (TOML) in place of the file's.
fn light(dir: &Path, name: &str, replace: &str) -> PathBuf {
    let path = root().join(format!("scenarios/{name}.toml"));
    let mut scenario: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let pack = scenario["workload"].as_str().unwrap().to_string();
    let pack = root().join("scenarios").join(pack);
    scenario.insert("workload".into(), pack.display().to_string().into());
    scenario.insert("warmup".into(), "1s".into());
    scenario.insert("duration".into(), "7s".into());
    for side in ["writes", "reads"] {
        let rate = if side == "writes" { 20 } else { 40 };
        scenario[side]
            .as_table_mut()
            .unwrap()
            .insert("rate".into(), rate.into());
    }
    let replace: toml::Table = replace.parse().unwrap();
    for (k, v) in replace {
        scenario.insert(k, v);
    }
    let out = dir.join(format!("{name}.toml"));
    std::fs::write(&out, toml::to_string(&scenario).unwrap()).unwrap();
    out
}

struct Ran {
    code: Option<i32>,
    results: Option<Value>,
    stdout: String,
    stderr: String,
}

fn run(scenario: &Path, out: &Path, extra: &[&str]) -> Ran {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(scenario)
        .args(["--quiet", "--out"])
        .arg(out)
        .args(extra);
    let done = run_with_limit(cmd, Duration::from_secs(300));
    let results = std::fs::read_to_string(out.join("results.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    Ran {
        code: done.code,
        results,
        stdout: done.stdout,
        stderr: done.stderr,
    }
}

fn runs(results: &Value) -> Vec<&Value> {
    results["runs"].as_array().unwrap().iter().collect()
}

/// What every run of a pack must show: the pack's op names, the three backends, verify
/// passing with the read models the backend keeps.
fn assert_pack_runs(r: &Ran, writes: &[&str], reads: &[&str], read_models: &[&str]) {
    let results = r.results.as_ref().expect("results.json");
    let runs = runs(results);
    let backends: Vec<&str> = runs
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(backends, ["normalized", "cqrs-sync", "cqrs-async"]);
    for run in &runs {
        let b = run["backend"].as_str().unwrap();
        let ops = run["metrics"]["ops"].as_object().unwrap();
        for w in writes {
            assert!(
                ops[&format!("write.{w}")]["count"].as_u64().unwrap() > 0,
                "{b} {w}"
            );
        }
        for q in reads {
            assert!(
                ops[&format!("read.{q}")]["count"].as_u64().unwrap() > 0,
                "{b} {q}"
            );
        }
        let verify = &run["verify"];
        assert_eq!(verify["mismatches"], 0, "{b}: {verify}");
        let models: Vec<&str> = verify["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["read_model"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if b == "normalized" { &[] } else { read_models };
        assert_eq!(models, expected, "{b}");
    }
    // Every backend ran the same op stream: the same commands, refused the same way.
    let counts: Vec<(u64, u64)> = runs
        .iter()
        .map(|r| {
            let w = &r["metrics"]["ops"]["write"];
            (
                w["count"].as_u64().unwrap(),
                w["rejected"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(counts.windows(2).all(|c| c[0] == c[1]), "{counts:?}");
}

/// The fit of `budget` for `backend` in the decision's only point.
fn fit<'a>(results: &'a Value, backend: &str, budget: &str) -> &'a str {
    let point = &results["decision"]["points"][0];
    let b = point["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == backend)
        .unwrap();
    b["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == budget)
        .unwrap()["fit"]
        .as_str()
        .unwrap()
}

#[test]
fn the_ledger_runs_on_every_pack_backend_and_staleness_zero_rules_out_async() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(
        dir.path(),
        "pack-ledger",
        "budgets = { write = { p99 = \"2s\" }, read = { p99 = \"2s\" }, staleness = { p99 = \"0ms\" } }",
    );
    let r = run(&scenario, &dir.path().join("out"), &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_pack_runs(
        &r,
        &["transfer"],
        &["balance", "activity"],
        &["account_balance"],
    );
    let results = r.results.as_ref().unwrap();
    // Commit -> visible is never 0 when a projector applies the write later.
    assert_eq!(fit(results, "cqrs-async", "staleness.p99"), "missed");
    assert_eq!(fit(results, "cqrs-sync", "staleness.p99"), "met");
    assert_eq!(fit(results, "normalized", "staleness.p99"), "met");
    let left_out = results["decision"]["left_out"].as_array().unwrap();
    if left_out.is_empty() {
        // Budgets of seconds at 60 ops/s: normalized meets them.
        assert_eq!(
            results["decision"]["answer"]["kind"], "cqrs_does_not_pay_off",
            "{}",
            results["decision"]
        );
    } else {
        // The machine made a run unsound: the decision must say so, not answer from it.
        assert!(
            r.stdout.contains("Left out of the decision"),
            "{}",
            r.stdout
        );
    }
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(
        md.contains("`balance`") && md.contains("`activity`"),
        "{md}"
    );
}

#[test]
fn crud_gets_cqrs_does_not_pay_off_on_postgres_and_the_schemas_are_dropped() {
    let Some(url) = common::pg_env("crud_gets_cqrs_does_not_pay_off_on_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(
        dir.path(),
        "pack-crud",
        "budgets = { write = { p99 = \"2s\" }, read = { p99 = \"2s\" }, staleness = { p99 = \"5s\" } }",
    );
    let prefix = common::unique_schema("packrun");
    let r = run(
        &scenario,
        &dir.path().join("out"),
        &["--db", &url, "--schema", &prefix],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_pack_runs(
        &r,
        &["create_profile", "update_profile"],
        &["profile"],
        &["profile_view"],
    );
    let results = r.results.as_ref().unwrap();
    assert_eq!(results["environment"]["engine"], "postgres");
    if results["decision"]["left_out"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(
            r.stdout.contains("CQRS does not pay off here"),
            "{}",
            r.stdout
        );
    } else {
        assert!(
            r.stdout.contains("Left out of the decision"),
            "{}",
            r.stdout
        );
    }
    // Nothing of the run's is left on the server.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left: i64 = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE $1",
        )
        .bind(format!("{prefix}%"))
        .fetch_one(&pool)
        .await
        .unwrap()
    });
    assert_eq!(left, 0, "schemas of {prefix} left behind");
}

/// The forum on `matview` through `run` on PostgreSQL, with `[matview]` naming one of the
/// pack's read models: each read model is a view, refreshed on its own schedule (reported
/// per view), verified against its truth; staleness is measured; the schemas are dropped.
#[test]
fn the_forum_runs_on_matview_with_its_own_refresh_schedule_on_postgres() {
    let Some(url) =
        common::pg_env("the_forum_runs_on_matview_with_its_own_refresh_schedule_on_postgres")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(
        dir.path(),
        "pack-forum",
        "backends = [\"normalized\", \"matview\"]\n\
         [matview]\nrefresh_interval = \"200ms\"\nviews = { thread_summary = \"300ms\" }\n\
         [dataset]\nauthors = 50\nthreads = 100\nposts = 500",
    );
    let prefix = common::unique_schema("packmv");
    let r = run(
        &scenario,
        &dir.path().join("out"),
        &["--db", &url, "--schema", &prefix],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let results = r.results.as_ref().unwrap();
    let runs = runs(results);
    let backends: Vec<&str> = runs
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(backends, ["normalized", "matview"]);
    let matview = runs[1];
    let verify = &matview["verify"];
    assert_eq!(verify["mismatches"], 0, "{verify}");
    let models: Vec<&str> = verify["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["read_model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["author_stats", "thread_summary"]);
    let refreshes: Vec<(&str, u64, u64, u64)> = matview["refreshes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["view"].as_str().unwrap(),
                r["interval_ms"].as_u64().unwrap(),
                r["refreshes"].as_u64().unwrap(),
                r["failed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(refreshes.len(), 2, "{refreshes:?}");
    assert_eq!((refreshes[0].0, refreshes[0].1), ("author_stats", 200));
    assert_eq!((refreshes[1].0, refreshes[1].1), ("thread_summary", 300));
    // 7 s of a schedule of at most 300 ms, and the final refresh: several each, none failed.
    for (view, _, n, failed) in &refreshes {
        assert!(*n > 1, "{view}: {refreshes:?}");
        assert_eq!(*failed, 0, "{view}");
    }
    // normalized refreshes nothing (the field is left out when empty).
    assert!(runs[0]["refreshes"].as_array().is_none_or(Vec::is_empty));
    // Commits were seen by readers only after a refresh: staleness was measured.
    let lag = &matview["metrics"]["lag"];
    assert!(lag["count"].as_u64().unwrap() > 0, "{lag}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left: i64 = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE $1",
        )
        .bind(format!("{prefix}%"))
        .fetch_one(&pool)
        .await
        .unwrap()
    });
    assert_eq!(left, 0, "schemas of {prefix} left behind");
}

#[test]
fn a_projection_that_counts_twice_fails_the_runs_verify_with_the_first_differing_row() {
    let dir = tempfile::tempdir().unwrap();
    // The ledger, with one projection statement counting every received transfer twice.
    let pack = dir.path().join("ledger");
    std::fs::create_dir(&pack).unwrap();
    for entry in std::fs::read_dir(root().join("workloads/ledger")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), pack.join(entry.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(pack.join("pack.toml")).unwrap();
    let broken = manifest.replace("received = received + 1", "received = received + 2");
    assert_ne!(broken, manifest);
    std::fs::write(pack.join("pack.toml"), broken).unwrap();
    let scenario = light(
        dir.path(),
        "pack-ledger",
        &format!(
            "workload = {:?}\nbackends = [\"cqrs-sync\"]",
            pack.display().to_string()
        ),
    );
    let r = run(&scenario, &dir.path().join("out"), &[]);
    let results = r.results.as_ref().expect("results.json");
    let verify = &runs(results)[0]["verify"];
    assert!(verify["mismatches"].as_u64().unwrap() > 0, "{verify}");
    let model = &verify["models"][0];
    assert_eq!(model["read_model"], "account_balance");
    let first = model["first_diffs"][0].as_str().unwrap();
    assert!(first.contains("account_id="), "{first}");
    assert_ne!(r.code, Some(0), "a failed verify fails the run");
}

#[test]
fn a_backend_that_cannot_run_a_pack_is_refused_before_anything_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(
        dir.path(),
        "pack-ledger",
        "backends = [\"normalized\", \"event-sourced\"]",
    );
    let out = dir.path().join("out");
    let r = run(&scenario, &out, &[]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("backends[1]: event-sourced does not run packs"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "nothing may be created: {out:?}");
}

#[test]
fn a_pack_runs_on_cqrs_broker_through_a_nats_server_and_removes_its_stream() {
    let server = common::nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(
        dir.path(),
        "pack-crud",
        "backends = [\"cqrs-broker\"]\nbudgets = { write = { p99 = \"2s\" }, read = { p99 = \"2s\" }, staleness = { p99 = \"5s\" } }",
    );
    let r = run(
        &scenario,
        &dir.path().join("out"),
        &["--nats", &server.url()],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let results = r.results.as_ref().expect("results.json");
    let runs = runs(results);
    assert_eq!(runs.len(), 1);
    let run = runs[0];
    assert_eq!(run["backend"], "cqrs-broker");
    let ops = &run["metrics"]["ops"];
    for op in [
        "write.create_profile",
        "write.update_profile",
        "read.profile",
    ] {
        assert!(ops[op]["count"].as_u64().unwrap() > 0, "{op}: {ops}");
    }
    let verify = &run["verify"];
    assert_eq!(verify["mismatches"], 0, "{verify}");
    assert_eq!(
        verify["models"][0]["read_model"], "profile_view",
        "{verify}"
    );
    // Every committed command's event went through the stream and was applied once (the
    // warm-up's too), each with its lag.
    let ok = ops["write"]["ok"].as_u64().unwrap();
    let projector = &run["projector"];
    assert!(
        projector["events"].as_u64().unwrap() >= ok && ok > 0,
        "{projector}"
    );
    assert!(
        run["metrics"]["lag"]["count"].as_u64().unwrap() > 0,
        "{}",
        run["metrics"]["lag"]
    );
    // The run's stream is removed: the server holds none.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let streams: Vec<String> = rt.block_on(async {
        use futures::TryStreamExt;
        let js = cqrs_bench::broker::connect(&server.url()).await.unwrap();
        js.stream_names().try_collect().await.unwrap()
    });
    assert!(streams.is_empty(), "{streams:?}");
}

/// Runs `cqrs-bench ARGS`; its exit code and output.
fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    let done = run_with_limit(cmd, Duration::from_secs(120));
    (done.code, done.stdout, done.stderr)
}

/// The forum pack through `run` on every pack backend; a dataset it kept (`--keep-db`) is
/// verified from the command line with `--pack` (and refused without it, or with another
/// pack, naming the pack it holds); one read-model row changed by hand fails verify at that
/// key; `drop` on the run's `--db` removes every backend's file.
#[test]
fn verify_pack_finds_a_changed_row_in_a_kept_forum_dataset_and_drop_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(dir.path(), "pack-forum", "");
    let base = format!("sqlite://{}", dir.path().join("forum.db").display());
    let r = run(
        &scenario,
        &dir.path().join("out"),
        &["--keep-db", "--db", &base],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_pack_runs(
        &r,
        &["reply", "start_thread"],
        &["thread", "hot_threads", "top_authors"],
        &["author_stats", "thread_summary"],
    );
    let results = r.results.as_ref().unwrap();
    let kept: Vec<String> = runs(results)
        .iter()
        .map(|r| {
            r["kept_database"]
                .as_str()
                .expect("kept_database")
                .to_string()
        })
        .collect();
    let paths: Vec<PathBuf> = kept
        .iter()
        .map(|k| {
            cqrs_bench::db::DbUrl::parse(k)
                .unwrap()
                .sqlite_path()
                .expect("a SQLite file")
        })
        .collect();
    for p in &paths {
        assert!(p.exists(), "{p:?}");
    }
    // cqrs-sync's dataset.
    let kept = kept[1].clone();
    let forum = root().join("workloads/forum");
    let forum = forum.to_str().unwrap();

    let (code, out, err) = cli(&["verify", "--db", &kept, "--pack", forum]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("thread_summary") && out.contains("author_stats"),
        "{out}"
    );
    assert!(out.contains("verify: ok"), "{out}");

    // Without --pack: the shop's verify would look for tables the dataset does not have.
    let (code, out, err) = cli(&["verify", "--db", &kept]);
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("workload pack forum") && err.contains("--pack"),
        "{err}"
    );
    // Another pack's folder.
    let ledger = root().join("workloads/ledger");
    let (code, out, err) = cli(&["verify", "--db", &kept, "--pack", ledger.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("holds workload pack forum, not workload pack ledger"),
        "{err}"
    );

    // One read-model row changed by hand.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&kept).await.unwrap();
        let changed =
            sqlx::query("UPDATE thread_summary SET posts = posts + 5 WHERE thread_id = 3")
                .execute(&mut conn)
                .await
                .unwrap();
        assert_eq!(changed.rows_affected(), 1);
        conn.close().await.unwrap();
    });
    let (code, out, err) = cli(&["verify", "--db", &kept, "--pack", forum]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("thread_id=3"), "{out}");
    assert!(err.contains("verify: 1 mismatches"), "{err}");

    // `drop` on the run's --db removes every backend's file.
    let (code, out, err) = cli(&["drop", "--db", &base]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for p in &paths {
        assert!(!p.exists(), "{p:?} left behind: {out}\n{err}");
    }
}

/// A sweep over one of the pack's sizes: each point seeds the pack with that size. The forum
/// with replies only (no new threads) keeps exactly `threads` rows in `thread_summary` and
/// `authors` rows in `author_stats`, so verify's row counts show each point's dataset.
#[test]
fn a_sweep_over_a_packs_size_seeds_each_point_with_that_size() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(
        dir.path(),
        "pack-forum",
        "backends = [\"cqrs-sync\"]\n\
         dataset = { authors = 30, threads = 40, posts = 300 }\n\
         writes = { rate = 20, mix = { reply = 1 } }\n\
         sweep = { threads = [40, 120] }",
    );
    let r = run(&scenario, &dir.path().join("out"), &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let results = r.results.as_ref().unwrap();
    let runs = runs(results);
    assert_eq!(runs.len(), 2, "{results}");
    for (run, threads) in runs.iter().zip([40u64, 120]) {
        assert_eq!(
            run["sweep_point"],
            serde_json::json!({ "size": { "size": "threads", "value": threads } })
        );
        assert!(
            run["metrics"]["ops"]["write.reply"]["count"]
                .as_u64()
                .unwrap()
                > 0
        );
        let verify = &run["verify"];
        assert_eq!(verify["mismatches"], 0, "{verify}");
        let rows = |model: &str| {
            verify["models"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["read_model"] == model)
                .unwrap()["rows_expected"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(rows("thread_summary"), threads, "{verify}");
        assert_eq!(rows("author_stats"), 30, "{verify}");
        // The seed's rows: 30 authors, the point's threads, 300 posts.
        assert_eq!(run["seed"]["rows"], 30 + threads + 300, "{}", run["seed"]);
        // Its tables weigh something; cqrs-sync keeps no outbox.
        let storage = &run["storage"];
        assert!(
            storage["write_tables_bytes"].as_u64().unwrap() > 0,
            "{storage}"
        );
        assert!(
            storage["read_tables_bytes"].as_u64().unwrap() > 0,
            "{storage}"
        );
        assert_eq!(storage["event_log_bytes"], 0, "{storage}");
    }
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(
        md.contains("sweep of the dataset's threads 40, 120"),
        "{md}"
    );
}

/// A forum of a team's own in a SQLite file: 7 authors, 9 threads, 25 posts (the first post
/// of thread t is post t, the rest go round the threads), made with the pack's own DDL.
fn team_forum_sqlite(path: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}?mode=rwc",
            path.display()
        ))
        .await
        .unwrap();
        let ddl = std::fs::read_to_string(root().join("workloads/forum/schema.sqlite.sql")).unwrap();
        sqlx::raw_sql(&ddl).execute(&mut conn).await.unwrap();
        let mut sql = String::new();
        for a in 1..=7 {
            sql += &format!("INSERT INTO authors (id, name) VALUES ({a}, 'member {a}');");
        }
        for t in 1..=9 {
            sql += &format!(
                "INSERT INTO threads (id, author_id, title, locked, posts) VALUES ({t}, {}, 't{t}', 0, 0);",
                1 + t % 7
            );
        }
        for p in 1..=25 {
            let thread = if p <= 9 { p } else { 1 + p % 9 };
            sql += &format!(
                "INSERT INTO posts (id, thread_id, author_id, body) VALUES ({p}, {thread}, {}, 'b');",
                1 + p % 7
            );
        }
        sql += "UPDATE threads SET posts = (SELECT count(*) FROM posts p WHERE p.thread_id = threads.id);";
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    });
}

/// verify's expected row count of `model` in `run`.
fn rows_expected(run: &Value, model: &str) -> u64 {
    run["verify"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["read_model"] == model)
        .unwrap_or_else(|| panic!("no {model} in {}", run["verify"]))["rows_expected"]
        .as_u64()
        .unwrap()
}

/// The forum copied from a team's SQLite file (`[dataset] copy_from`): the run's datasets
/// hold the team's 9 threads and 7 authors (not the scenario's 2,000 and 500), the sizes the
/// replies draw from are the copy's, and the team's file is byte for byte what it was.
#[test]
fn a_forum_copied_from_a_teams_sqlite_file_runs_on_its_rows_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("team.db");
    team_forum_sqlite(&team);
    let before = std::fs::read(&team).unwrap();
    let scenario = light(
        dir.path(),
        "pack-forum",
        &format!(
            "backends = [\"normalized\", \"cqrs-sync\"]\n\
             dataset = {{ copy_from = \"sqlite://{}\" }}\n\
             writes = {{ rate = 20, mix = {{ reply = 1 }} }}",
            team.display()
        ),
    );
    let r = run(&scenario, &dir.path().join("out"), &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let results = r.results.as_ref().unwrap();
    let runs = runs(results);
    assert_eq!(runs.len(), 2);
    // Replies only: the read models hold exactly the copied threads and authors.
    let sync = runs[1];
    assert_eq!(sync["verify"]["mismatches"], 0, "{}", sync["verify"]);
    assert_eq!(rows_expected(sync, "thread_summary"), 9);
    assert_eq!(rows_expected(sync, "author_stats"), 7);
    for run in &runs {
        assert!(
            run["metrics"]["ops"]["write.reply"]["count"]
                .as_u64()
                .unwrap()
                > 0
        );
    }
    assert_eq!(
        std::fs::read(&team).unwrap(),
        before,
        "the team's database was changed"
    );
    assert_eq!(
        results["scenario"]["workload"]["copy_from"]["url"],
        format!("sqlite://{}", team.display())
    );
}

/// A source that is not there is refused before anything is seeded, and not created.
#[test]
fn a_copy_from_a_missing_file_is_refused_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("nowhere.db");
    let scenario = light(
        dir.path(),
        "pack-forum",
        &format!(
            "dataset = {{ copy_from = \"sqlite://{}\" }}",
            team.display()
        ),
    );
    let r = run(&scenario, &dir.path().join("out"), &[]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("copy_from") && r.stderr.contains("nowhere.db"),
        "{}",
        r.stderr
    );
    assert!(!team.exists(), "the source was created");
}

/// The forum copied from a schema of a team's PostgreSQL database into the run's SQLite
/// files (`copy_from` with `copy_schema`): the run holds the team's rows; the team's schema
/// has the same tables and rows afterwards (the copy only read), and is dropped by the test
/// that made it.
#[test]
fn a_forum_copied_from_a_postgres_schema_runs_on_its_rows_and_leaves_it_untouched() {
    let Some(url) = common::pg_env("a_forum_copied_from_a_postgres_schema") else {
        return;
    };
    let schema = common::unique_schema("teamforum");
    let rt = tokio::runtime::Runtime::new().unwrap();
    sqlx::any::install_default_drivers();
    let pool = rt.block_on(async {
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let ddl =
            std::fs::read_to_string(root().join("workloads/forum/schema.postgres.sql")).unwrap();
        let sql = format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}; {ddl};
             INSERT INTO authors (id, name) SELECT i, 'm' || i FROM generate_series(1, 5) i;
             INSERT INTO threads (id, author_id, title, locked, posts)
               SELECT i, 1 + i % 5, 't', 0, 0 FROM generate_series(1, 11) i;
             INSERT INTO posts (id, thread_id, author_id, body)
               SELECT i, 1 + i % 11, 1 + i % 5, 'b' FROM generate_series(1, 30) i;
             UPDATE threads SET posts = (SELECT count(*) FROM posts p WHERE p.thread_id = threads.id);
             SET search_path TO public"
        );
        sqlx::raw_sql(&sql).execute(&pool).await.unwrap();
        pool
    });
    let fingerprint = |pool: &sqlx::AnyPool| -> String {
        rt.block_on(async {
            sqlx::query_scalar::<_, String>(&format!(
                "SELECT (SELECT string_agg(table_name, ',' ORDER BY table_name) FROM \
                 information_schema.tables WHERE table_schema = '{schema}') || ' ' || \
                 (SELECT md5(string_agg(p::text, ',' ORDER BY id)) FROM {schema}.posts p) || ' ' || \
                 (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {schema}.threads t) || ' ' || \
                 (SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM {schema}.authors a)"
            ))
            .fetch_one(pool)
            .await
            .unwrap()
        })
    };
    let before = fingerprint(&pool);
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(
        dir.path(),
        "pack-forum",
        &format!(
            "backends = [\"cqrs-sync\"]\n\
             dataset = {{ copy_from = \"{url}\", copy_schema = \"{schema}\" }}\n\
             writes = {{ rate = 20, mix = {{ reply = 1 }} }}"
        ),
    );
    let r = run(&scenario, &dir.path().join("out"), &[]);
    let after = fingerprint(&pool);
    rt.block_on(async {
        sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let results = r.results.as_ref().unwrap();
    let sync = runs(results)[0];
    assert_eq!(sync["verify"]["mismatches"], 0, "{}", sync["verify"]);
    assert_eq!(rows_expected(sync, "thread_summary"), 11);
    assert_eq!(rows_expected(sync, "author_stats"), 5);
    assert_eq!(after, before, "the team's schema was changed");
}

/// A source someone writes to between the run's reading of its sizes and a backend's copy
/// would give backends different datasets: the copy is refused, naming the size that moved.
#[test]
fn a_source_that_changes_between_the_sizes_and_the_copy_is_refused() {
    use cqrs_bench::db::{DbUrl, Engine};
    use cqrs_bench::pack::copy::{copy_into, measure_sizes, CopyError, CopySource};
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("team.db");
    team_forum_sqlite(&team);
    let pack = cqrs_bench::pack::Pack::load(&root().join("workloads/forum")).unwrap();
    let def = pack.copy.clone().expect("the forum says what to copy");
    let source = CopySource {
        url: DbUrl::parse(&format!("sqlite://{}", team.display())).unwrap(),
        schema: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let sizes = measure_sizes(&def, &source).await.unwrap();
        assert_eq!(
            sizes,
            std::collections::BTreeMap::from([
                ("authors".to_string(), 7),
                ("posts".to_string(), 25),
                ("threads".to_string(), 9),
            ])
        );
        // Someone posts.
        let mut writer =
            sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=rw", team.display()))
                .await
                .unwrap();
        sqlx::query("INSERT INTO posts (id, thread_id, author_id, body) VALUES (26, 1, 1, 'x')")
            .execute(&mut writer)
            .await
            .unwrap();
        writer.close().await.unwrap();
        let mut target = sqlx::AnyConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let ddl =
            std::fs::read_to_string(root().join("workloads/forum/schema.sqlite.sql")).unwrap();
        sqlx::raw_sql(&ddl).execute(&mut target).await.unwrap();
        let err = copy_into(&def, &source, &mut target, Engine::Sqlite, &sizes)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CopyError::Changed { size, before: 25, now: 26, .. } if size == "posts"),
            "{err}"
        );
        // Nothing was copied into the target before the refusal.
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM authors")
            .fetch_one(&mut target)
            .await
            .unwrap();
        assert_eq!(n, 0);
    });
}

/// The shop pack through `run` on cqrs-sync and cqrs-async, its datasets kept: `rebuild
/// --pack` on the cqrs-async one, whose read models were first damaged by hand (verify
/// fails), reports as many events as its outbox holds (counted here) and verify passes
/// again; rebuild refuses the cqrs-sync dataset (no outbox), another pack's folder, and
/// the dataset without --pack, each with exit 2.
#[test]
fn rebuild_pack_replays_a_kept_shop_outbox_and_verify_passes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = light(
        dir.path(),
        "pack-shop",
        "backends = [\"cqrs-sync\", \"cqrs-async\"]\n\
         [dataset]\ncategories = 5\nproducts = 100\nusers = 100\norders = 500\n\
         reviews = 500\nprice_changes = 50\ndays = 30\n",
    );
    let base = format!("sqlite://{}", dir.path().join("shop.db").display());
    let r = run(
        &scenario,
        &dir.path().join("out"),
        &["--keep-db", "--db", &base],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let results = r.results.as_ref().unwrap();
    let kept: Vec<String> = runs(results)
        .iter()
        .map(|r| {
            r["kept_database"]
                .as_str()
                .expect("kept_database")
                .to_string()
        })
        .collect();
    let (sync, kept) = (kept[0].clone(), kept[1].clone());
    let shop = root().join("workloads/shop");
    let shop = shop.to_str().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let outbox: i64 = rt.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&kept).await.unwrap();
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM cqrs_bench_pack_outbox")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        // The run's orders gone from the summaries, every review count off by one.
        sqlx::query("DELETE FROM order_summary WHERE order_id > 500")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE product_catalog SET review_count = review_count + 1")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        outbox
    });
    assert!(outbox > 0, "the run committed commands");
    let (code, out, err) = cli(&["verify", "--db", &kept, "--pack", shop]);
    assert_eq!(code, Some(1), "the damage is seen: {out}\n{err}");

    let (code, out, err) = cli(&[
        "rebuild",
        "--db",
        &kept,
        "--pack",
        shop,
        "--batch-size",
        "64",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("product_catalog") && out.contains("order_summary"),
        "{out}"
    );
    assert!(out.contains(&format!(" from {outbox} events in ")), "{out}");
    assert!(out.contains("events/s)"), "{out}");
    let (code, out, err) = cli(&["verify", "--db", &kept, "--pack", shop]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("verify: ok"), "{out}");

    // Refusals, exit 2: without --pack, another pack's folder, a dataset without an outbox.
    let (code, out, err) = cli(&["rebuild", "--db", &kept]);
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("workload pack shop") && err.contains("--pack"),
        "{err}"
    );
    let ledger = root().join("workloads/ledger");
    let (code, out, err) = cli(&["rebuild", "--db", &kept, "--pack", ledger.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("holds workload pack shop, not workload pack ledger"),
        "{err}"
    );
    let (code, out, err) = cli(&["rebuild", "--db", &sync, "--pack", shop]);
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("prepared for cqrs-sync, which has no outbox"),
        "{err}"
    );

    let (code, out, err) = cli(&["drop", "--db", &base]);
    assert_eq!(code, Some(0), "{out}\n{err}");
}
