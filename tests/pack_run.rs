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
