//! Runs that cannot collide, clean stops, a truthful drop (issue 26, points 1, 2, 4), driven
//! through the real binary:
//!
//! - two runs on one SQLite file, one `--out`, one PostgreSQL schema: the second exits 2 at
//!   once naming the first (pid, command, since when); the first completes untouched;
//! - SIGINT during the load and during the seed, on SQLite and PostgreSQL: exit 130, a message,
//!   an interrupted results.json when the load had started, nothing left behind without
//!   `--keep-db`; a half-seeded database is refused by run, verify and rebuild;
//! - `drop` names every schema or file it dropped, says "nothing of the tool's here" (exit 1)
//!   when there is none, and never drops or changes a foreign schema, a foreign SQLite file, or
//!   a place someone else holds the lock of.
//!
//! Tests synchronize on lines the tool prints ("seeding", "measuring"); time limits are hang
//! guards only.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");
/// Hang guard for a whole command; never a claim about speed.
const GUARD: Duration = Duration::from_secs(240);

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .display()
        .to_string()
}

fn sqlite(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A schema prefix of this test's own.
fn unique(prefix: &str) -> String {
    format!(
        "rl_{prefix}_{}_{}",
        std::process::id(),
        common::unique_schema("x").rsplit('_').next().unwrap()
    )
}

fn run_cli(args: &[&str]) -> common::Finished {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    common::run_with_limit(cmd, GUARD)
}

fn show(what: &str, f: &common::Finished) -> String {
    format!(
        "{what}: exit {:?}\n--- stderr\n{}--- stdout\n{}",
        f.code, f.stderr, f.stdout
    )
}

/// A command running in the background, its stderr read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout: std::thread::JoinHandle<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cqrs-bench");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `text` (panics at the hang guard or at exit).
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} (exit {:?}); stderr so far:\n{}",
                    self.child.try_wait().ok().flatten(),
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn interrupt(&self) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "kill -INT");
    }

    /// Waits for the exit (killing it at the hang guard) and returns what it printed.
    fn finish(mut self) -> common::Finished {
        let started = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break Some(st);
            }
            if started.elapsed() > GUARD {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        common::Finished {
            code: status.and_then(|s| s.code()),
            stdout: self.stdout.join().unwrap(),
            stderr: self.seen.join("\n") + "\n",
            elapsed: started.elapsed(),
        }
    }
}

fn pg_env(test: &str) -> Option<String> {
    common::pg_url(test).map(|u| u.raw_for_connect())
}

async fn pg(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.expect("connect")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The schemas whose names start with `prefix`.
fn schemas_like(url: &str, prefix: &str) -> Vec<String> {
    rt().block_on(async {
        let mut c = pg(url).await;
        let v: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1",
        )
        .bind(prefix)
        .fetch_all(&mut c)
        .await
        .unwrap();
        v
    })
}

/// Drops, with the tool, whatever a test left under `prefix` (best effort).
fn drop_prefix(url: &str, prefix: &str) {
    let _ = run_cli(&["drop", "--db", url, "--schema", prefix]);
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn results(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json"))
        .expect("results.json parses")
}

/// Waits until `state` reports the seed's mark (`seeding`): the tables exist and the load
/// is under way, so a signal now lands inside the seed.
fn wait_until_seeding(state: impl Fn() -> Option<String>) {
    let deadline = Instant::now() + GUARD;
    loop {
        match state() {
            Some(s) if s == "seeding" => return,
            Some(s) if s.starts_with("ready") => panic!("the seed finished before the signal"),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the seed never marked the database"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sqlite_state(file: &Path) -> Option<String> {
    if !file.exists() {
        return None;
    }
    rt().block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&format!("{}?mode=ro", sqlite(file)))
            .await
            .ok()?;
        let v = sqlx::query_scalar("SELECT value FROM cqrs_bench_meta WHERE key = 'state'")
            .fetch_optional(&mut c)
            .await
            .ok()
            .flatten();
        let _ = c.close().await;
        v
    })
}

fn pg_state(url: &str, schema: &str) -> Option<String> {
    rt().block_on(async {
        let mut c = pg(url).await;
        sqlx::query_scalar(&format!(
            "SELECT value FROM {schema}.cqrs_bench_meta WHERE key = 'state'"
        ))
        .fetch_optional(&mut c)
        .await
        .ok()
        .flatten()
    })
}

/// A scenario whose dataset takes a while to seed (so a signal lands inside the seed), in
/// `dir`.
fn big_seed_scenario(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(scenario("ci.toml"))
        .unwrap()
        .replace("orders = 1000", "orders = 400000")
        .replace("reviews = 1000", "reviews = 200000")
        .replace("users = 300", "users = 50000");
    let path = dir.join("bigseed.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_holder_named(f: &common::Finished, pid: u32, command: &str) {
    assert_eq!(f.code, Some(2), "{}", show("second user", f));
    assert!(
        f.stderr.contains(&format!(
            "in use by cqrs-bench {command} (pid {pid}, since "
        )),
        "the refusal should name the holder:\n{}",
        show("second user", f)
    );
}

// ---------------------------------------------------------------------------------------------
// Exclusive use.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_second_run_on_the_same_sqlite_file_or_out_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("first");
    let db = dir.path().join("bench.db");
    let ci = scenario("ci.toml");
    let mut first = Running::start(&[
        "run",
        &ci,
        "--db",
        &sqlite(&db),
        "--backends",
        "normalized",
        "--duration",
        "20s",
        "--out",
        out.to_str().unwrap(),
    ]);
    first.wait_for("measuring normalized");
    let same_file = run_cli(&[
        "run",
        &ci,
        "--db",
        &sqlite(&db),
        "--backends",
        "normalized",
        "--duration",
        "2s",
        "--quiet",
        "--out",
        dir.path().join("second").to_str().unwrap(),
    ]);
    assert_holder_named(&same_file, first.pid(), "run");
    assert!(same_file
        .stderr
        .contains(dir.path().join("bench.normalized.db").to_str().unwrap()));
    let same_out = run_cli(&[
        "run",
        &ci,
        "--db",
        &sqlite(&dir.path().join("other.db")),
        "--backends",
        "normalized",
        "--duration",
        "2s",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_holder_named(&same_out, first.pid(), "run");
    assert!(
        same_out.stderr.contains("output folder"),
        "{}",
        same_out.stderr
    );
    // A seed of the same file is refused the same way.
    let seed = run_cli(&[
        "seed",
        "--db",
        &sqlite(&dir.path().join("bench.normalized.db")),
        "--backend",
        "normalized",
    ]);
    assert_holder_named(&seed, first.pid(), "run");
    let first = first.finish();
    assert_eq!(first.code, Some(0), "{}", show("first run", &first));
    let r = results(&out);
    assert!(r.get("interrupted").is_none(), "a complete run: {r}");
    assert_eq!(r["runs"].as_array().unwrap().len(), 1);
    assert!(
        r["runs"][0]["metrics"].is_object(),
        "the first run measured: {r}"
    );
    // Nothing of the second runs was written, and the first's locks went with it.
    assert!(!dir.path().join("second").join("results.json").exists());
    let left = files_in(&out);
    assert!(
        !left
            .iter()
            .any(|f| f.ends_with(".lock") || f.contains(".db")),
        "{left:?}"
    );
}

#[test]
fn a_second_run_on_the_same_postgres_schema_is_refused_naming_the_first() {
    let Some(url) = pg_env("a_second_run_on_the_same_postgres_schema_is_refused") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("twice");
    let ci = scenario("ci.toml");
    let run = |out: &str, duration: &str| -> Vec<String> {
        [
            "run",
            &ci,
            "--db",
            &url,
            "--schema",
            &prefix,
            "--backends",
            "normalized",
            "--duration",
            duration,
            "--out",
            dir.path().join(out).to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = run("first", "20s");
    let mut first = Running::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    first.wait_for("measuring normalized");
    let args = run("second", "2s");
    let second = run_cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_holder_named(&second, first.pid(), "run");
    assert!(
        second
            .stderr
            .contains(&format!("schema \"{prefix}_normalized\"")),
        "{}",
        second.stderr
    );
    let verify = run_cli(&[
        "rebuild",
        "--db",
        &url,
        "--schema",
        &format!("{prefix}_normalized"),
    ]);
    assert_holder_named(&verify, first.pid(), "run");
    let first = first.finish();
    assert_eq!(first.code, Some(0), "{}", show("first run", &first));
    let r = results(&dir.path().join("first"));
    assert!(r.get("interrupted").is_none(), "a complete run: {r}");
    assert!(r["runs"][0]["metrics"].is_object(), "{r}");
    assert!(!dir.path().join("second").join("results.json").exists());
    let left = schemas_like(&url, &prefix);
    drop_prefix(&url, &prefix);
    assert!(
        left.is_empty(),
        "the first run dropped its schema: {left:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Clean stops.
// ---------------------------------------------------------------------------------------------

fn assert_interrupted(f: &common::Finished) {
    assert_eq!(f.code, Some(130), "{}", show("interrupted run", f));
    assert!(
        f.stderr.contains("interrupted"),
        "it says it stopped:\n{}",
        f.stderr
    );
    assert!(!f.stderr.contains("panicked"), "{}", f.stderr);
}

#[test]
fn sigint_during_the_load_on_sqlite_keeps_what_was_measured_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut run = Running::start(&[
        "run",
        &scenario("ci.toml"),
        "--backends",
        "normalized,cqrs-async",
        "--duration",
        "60s",
        "--out",
        out.to_str().unwrap(),
    ]);
    run.wait_for("measuring normalized");
    run.interrupt();
    let f = run.finish();
    assert_interrupted(&f);
    let r = results(&out);
    assert_eq!(r["interrupted"], true, "{r}");
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "only the backend that was measuring: {r}");
    assert_eq!(runs[0]["backend"], "normalized");
    assert!(
        runs[0]["verify"].is_null(),
        "an interrupted load is not verified"
    );
    let left = files_in(&out);
    assert_eq!(left, vec!["results.json".to_string()], "nothing else left");
    // Partial numbers are neither reported on nor compared.
    let report = run_cli(&["report", out.join("results.json").to_str().unwrap()]);
    assert_eq!(report.code, Some(2), "{}", show("report", &report));
    assert!(report.stderr.contains("interrupted"), "{}", report.stderr);
    let path = out.join("results.json");
    let compare = run_cli(&["compare", path.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(compare.code, Some(2), "{}", show("compare", &compare));
    assert!(compare.stderr.contains("interrupted"), "{}", compare.stderr);
}

#[test]
fn sigint_during_the_load_on_postgres_drops_the_schema() {
    let Some(url) = pg_env("sigint_during_the_load_on_postgres_drops_the_schema") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let prefix = unique("intload");
    let mut run = Running::start(&[
        "run",
        &scenario("ci.toml"),
        "--db",
        &url,
        "--schema",
        &prefix,
        "--backends",
        "cqrs-async",
        "--duration",
        "60s",
        "--out",
        out.to_str().unwrap(),
    ]);
    run.wait_for("measuring cqrs-async");
    run.interrupt();
    let f = run.finish();
    let left = schemas_like(&url, &prefix);
    drop_prefix(&url, &prefix);
    assert_interrupted(&f);
    let r = results(&out);
    assert_eq!(r["interrupted"], true, "{r}");
    assert_eq!(r["runs"].as_array().unwrap().len(), 1);
    assert!(left.is_empty(), "the run's schema is gone: {left:?}");
    assert_eq!(files_in(&out), vec!["results.json".to_string()]);
}

#[test]
fn sigint_during_the_seed_on_sqlite_leaves_nothing_or_a_refused_half_seeded_file() {
    let dir = tempfile::tempdir().unwrap();
    let big = big_seed_scenario(dir.path());
    let big = big.to_str().unwrap();
    // Without --keep-db: nothing left, no results (no load was measured).
    let out = dir.path().join("out");
    let mut run = Running::start(&[
        "run",
        big,
        "--backends",
        "normalized",
        "--out",
        out.to_str().unwrap(),
    ]);
    run.wait_for("seeding normalized");
    wait_until_seeding(|| sqlite_state(&out.join("bench.normalized.db")));
    run.interrupt();
    let f = run.finish();
    assert_interrupted(&f);
    assert!(f.stderr.contains("seed"), "{}", f.stderr);
    assert_eq!(files_in(&out), Vec::<String>::new(), "nothing left behind");
    // The seed command: the file stays, marked, and is refused until reseeded or dropped.
    let file = dir.path().join("half.db");
    let mut seed = Running::start(&[
        "seed",
        "--db",
        &sqlite(&file),
        "--backend",
        "cqrs-async",
        "--scenario",
        big,
    ]);
    seed.wait_for("seeding");
    wait_until_seeding(|| sqlite_state(&file));
    seed.interrupt();
    let f = seed.finish();
    assert_interrupted(&f);
    assert!(f.stderr.contains("half-seeded"), "{}", f.stderr);
    for args in [
        vec!["verify", "--db", &sqlite(&file)],
        vec!["rebuild", "--db", &sqlite(&file)],
    ] {
        let o = run_cli(&args);
        assert_eq!(o.code, Some(2), "{}", show(args[0], &o));
        assert!(
            o.stderr
                .contains("half-seeded: interrupted during seed; reseed or drop it"),
            "{}",
            show(args[0], &o)
        );
    }
    let dropped = run_cli(&["drop", "--db", &sqlite(&file)]);
    assert_eq!(dropped.code, Some(0), "{}", show("drop", &dropped));
    assert!(dropped
        .stdout
        .contains(&format!("dropped {}", sqlite(&file))));
    assert_eq!(files_in(dir.path()), vec!["bigseed.toml", "out"]);
}

#[test]
fn sigint_during_the_seed_on_postgres_with_keep_db_leaves_a_refused_half_seeded_schema() {
    let Some(url) = pg_env("sigint_during_the_seed_on_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let big = big_seed_scenario(dir.path());
    let big = big.to_str().unwrap();
    let prefix = unique("intseed");
    let outcome = std::panic::catch_unwind(|| {
        // Without --keep-db: the half-made schema goes.
        let run_args = |keep: bool, out: &str| -> Vec<String> {
            let mut v: Vec<String> = [
                "run",
                big,
                "--db",
                &url,
                "--schema",
                &prefix,
                "--backends",
                "normalized",
                "--out",
                dir.path().join(out).to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if keep {
                v.push("--keep-db".into());
            }
            v
        };
        let args = run_args(false, "out1");
        let mut run = Running::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
        run.wait_for("seeding normalized");
        wait_until_seeding(|| pg_state(&url, &format!("{prefix}_normalized")));
        run.interrupt();
        let f = run.finish();
        assert_interrupted(&f);
        assert!(schemas_like(&url, &prefix).is_empty(), "dropped");
        assert!(!dir.path().join("out1").join("results.json").exists());
        // With --keep-db: kept, and refused by run, verify and rebuild.
        let args = run_args(true, "out2");
        let mut run = Running::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
        run.wait_for("seeding normalized");
        wait_until_seeding(|| pg_state(&url, &format!("{prefix}_normalized")));
        run.interrupt();
        let f = run.finish();
        assert_interrupted(&f);
        let schema = format!("{prefix}_normalized");
        assert_eq!(schemas_like(&url, &prefix), vec![schema.clone()]);
        let args = run_args(false, "out3");
        for (what, args) in [
            ("run", args.iter().map(String::as_str).collect::<Vec<_>>()),
            ("verify", vec!["verify", "--db", &url, "--schema", &schema]),
            (
                "rebuild",
                vec!["rebuild", "--db", &url, "--schema", &schema],
            ),
        ] {
            let o = run_cli(&args);
            assert_eq!(o.code, Some(2), "{}", show(what, &o));
            assert!(
                o.stderr.contains(&format!(
                    "(schema {schema}) is half-seeded: interrupted during seed; reseed or drop it"
                )),
                "{}",
                show(what, &o)
            );
        }
        let dropped = run_cli(&["drop", "--db", &url, "--schema", &prefix]);
        assert_eq!(dropped.code, Some(0), "{}", show("drop", &dropped));
        assert!(
            dropped.stdout.contains(&format!("(schema {schema})")),
            "{}",
            dropped.stdout
        );
        assert!(schemas_like(&url, &prefix).is_empty());
    });
    drop_prefix(&url, &prefix);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

// ---------------------------------------------------------------------------------------------
// A truthful drop.
// ---------------------------------------------------------------------------------------------

#[test]
fn drop_names_what_it_dropped_and_says_when_there_was_nothing() {
    let Some(url) = pg_env("drop_names_what_it_dropped") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("drop");
    let run = run_cli(&[
        "run",
        &scenario("ci.toml"),
        "--db",
        &url,
        "--schema",
        &prefix,
        "--backends",
        "normalized,cqrs-sync",
        "--duration",
        "2s",
        "--keep-db",
        "--quiet",
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let kept = schemas_like(&url, &prefix);
    let dropped = run_cli(&["drop", "--db", &url, "--schema", &prefix]);
    let after = schemas_like(&url, &prefix);
    let again = run_cli(&["drop", "--db", &url, "--schema", &prefix]);
    drop_prefix(&url, &prefix);
    assert_eq!(run.code, Some(0), "{}", show("run --keep-db", &run));
    assert_eq!(
        kept,
        vec![
            format!("{prefix}_cqrs_sync"),
            format!("{prefix}_normalized")
        ]
    );
    assert_eq!(dropped.code, Some(0), "{}", show("drop", &dropped));
    for s in &kept {
        assert!(
            dropped
                .stdout
                .lines()
                .any(|l| l.starts_with("dropped ") && l.contains(&format!("(schema {s})"))),
            "drop names {s}:\n{}",
            dropped.stdout
        );
    }
    assert_eq!(dropped.stdout.lines().count(), 2, "{}", dropped.stdout);
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(again.code, Some(1), "{}", show("drop again", &again));
    assert!(
        again.stderr.contains("nothing of the tool's here"),
        "{}",
        again.stderr
    );
}

#[test]
fn drop_never_touches_a_foreign_schema_file_or_lock() {
    let dir = tempfile::tempdir().unwrap();
    // A foreign SQLite file.
    let foreign = dir.path().join("theirs.db");
    rt().block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", sqlite(&foreign)))
            .await
            .unwrap();
        c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'mine')")
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let before = std::fs::read(&foreign).unwrap();
    let o = run_cli(&["drop", "--db", &sqlite(&foreign)]);
    assert_eq!(o.code, Some(2), "{}", show("drop foreign file", &o));
    assert!(o.stderr.contains("did not create"), "{}", o.stderr);
    assert_eq!(std::fs::read(&foreign).unwrap(), before);
    // A file of the tool's whose lock someone else holds.
    let ours = dir.path().join("ours.db");
    let seeded = run_cli(&["seed", "--db", &sqlite(&ours), "--backend", "normalized"]);
    assert_eq!(seeded.code, Some(0), "{}", show("seed", &seeded));
    let lock_path = dir.path().join("ours.db.lock");
    let lock = std::fs::File::create(&lock_path).unwrap();
    std::io::Write::write_all(&mut &lock, b"someone else\n").unwrap();
    assert!(fs4::fs_std::FileExt::try_lock_exclusive(&lock).unwrap());
    let before = std::fs::read(&ours).unwrap();
    let o = run_cli(&["drop", "--db", &sqlite(&ours)]);
    assert_eq!(o.code, Some(2), "{}", show("drop a locked file", &o));
    assert!(
        o.stderr.contains("in use by another process"),
        "{}",
        o.stderr
    );
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        before,
        "the file is untouched"
    );
    assert_eq!(std::fs::read(&lock_path).unwrap(), b"someone else\n");
    drop(lock);
    let o = run_cli(&["drop", "--db", &sqlite(&ours)]);
    assert_eq!(o.code, Some(0), "{}", show("drop once free", &o));
    assert!(!ours.exists());

    let Some(url) = pg_env("drop_never_touches_a_foreign_schema_or_lock") else {
        return;
    };
    let theirs = unique("theirs");
    let mine = unique("mine");
    rt().block_on(async {
        let mut c = pg(&url).await;
        c.execute(
            format!(
                "CREATE SCHEMA {theirs}; CREATE TABLE {theirs}.orders (id int PRIMARY KEY); \
                 INSERT INTO {theirs}.orders VALUES (7)"
            )
            .as_str(),
        )
        .await
        .unwrap();
    });
    let outcome = std::panic::catch_unwind(|| {
        let o = run_cli(&["drop", "--db", &url, "--schema", &theirs]);
        assert_eq!(o.code, Some(2), "{}", show("drop foreign schema", &o));
        assert!(
            o.stderr.contains("not created by cqrs-bench"),
            "{}",
            o.stderr
        );
        let n: i64 = rt().block_on(async {
            let mut c = pg(&url).await;
            sqlx::query_scalar(&format!("SELECT count(*) FROM {theirs}.orders"))
                .fetch_one(&mut c)
                .await
                .unwrap()
        });
        assert_eq!(n, 1, "their rows are untouched");
        // A schema of the tool's whose advisory lock another session holds (the key README
        // documents).
        let seeded = run_cli(&[
            "seed",
            "--db",
            &url,
            "--schema",
            &mine,
            "--backend",
            "normalized",
        ]);
        assert_eq!(seeded.code, Some(0), "{}", show("seed", &seeded));
        rt().block_on(async {
            let mut holder = pg(&url).await;
            sqlx::query("SELECT pg_advisory_lock(hashtext('cqrs-bench'), hashtext($1))")
                .bind(&mine)
                .execute(&mut holder)
                .await
                .unwrap();
            let url2 = url.clone();
            let mine2 = mine.clone();
            let o = tokio::task::spawn_blocking(move || {
                run_cli(&["drop", "--db", &url2, "--schema", &mine2])
            })
            .await
            .unwrap();
            assert_eq!(o.code, Some(2), "{}", show("drop a locked schema", &o));
            assert!(
                o.stderr.contains("in use by another session"),
                "{}",
                o.stderr
            );
            holder.close().await.unwrap();
        });
        assert_eq!(schemas_like(&url, &mine), vec![mine.clone()], "still there");
    });
    rt().block_on(async {
        let mut c = pg(&url).await;
        let _ = c
            .execute(format!("DROP SCHEMA IF EXISTS {theirs} CASCADE").as_str())
            .await;
    });
    drop_prefix(&url, &mine);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}
