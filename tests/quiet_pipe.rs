//! A reader that stops early (`cqrs-bench … | head -1`) ends the output, not the command: no
//! panic, no backtrace, and the command's own exit code — for `run`, `verify`, `report` and
//! `compare`. Each is tried twice: the reader takes one line and closes the pipe (what
//! `head -1` does), and the reader closes the pipe before the command writes anything (so
//! every write meets the closed pipe, whatever the timing).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

const SCENARIO: &str = r#"description = "quiet_pipe test"
seed = 1
duration = "2s"
warmup = "1s"
backends = ["normalized"]

[dataset]
categories = 4
products = 30
users = 30
orders = 50
reviews = 50
price_changes = 10
days = 3

[writes]
rate = 20
workers = 2

[reads]
rate = 20
workers = 2
"#;

/// What a command left when its reader stopped early.
struct Ended {
    code: Option<i32>,
    stderr: String,
    first_line: String,
}

/// Runs `args`; the reader takes `lines` lines (0 or 1) of stdout and closes the pipe.
fn run_reading(args: &[&str], lines: usize) -> Ended {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cqrs-bench");
    let stdout = child.stdout.take().unwrap();
    let mut first_line = String::new();
    if lines > 0 {
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .expect("read one line");
    } else {
        drop(stdout);
    }
    // The reader is gone (dropped above): every later write meets a closed pipe.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Ended {
        code: status.code(),
        stderr,
        first_line,
    }
}

fn assert_quiet(what: &str, e: &Ended, code: i32) {
    assert!(
        !e.stderr.contains("panicked") && !e.stderr.contains("Broken pipe"),
        "{what}: {}",
        e.stderr
    );
    assert!(
        !e.stderr.contains("stack backtrace"),
        "{what}: {}",
        e.stderr
    );
    assert_eq!(e.code, Some(code), "{what}: {}", e.stderr);
}

fn sample() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/reports/sample/results.json"
    ))
}

#[test]
fn run_and_verify_end_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("pipe.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let db = format!("sqlite://{}", dir.path().join("kept.db").display());
    for lines in [0, 1] {
        let out = dir.path().join(format!("out{lines}"));
        let e = run_reading(
            &[
                "run",
                scenario.to_str().unwrap(),
                "--quiet",
                "--out",
                out.to_str().unwrap(),
            ],
            lines,
        );
        assert_quiet(&format!("run, reader took {lines} lines"), &e, 0);
        if lines == 1 {
            assert!(!e.first_line.is_empty(), "run printed nothing");
        }
        // The command finished its work: the results were written.
        assert!(out.join("results.json").exists());
    }
    let seeded = Command::new(BIN)
        .args(["seed", "--db", &db, "--backend", "cqrs-sync"])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    for lines in [0, 1] {
        let e = run_reading(&["verify", "--db", &db], lines);
        assert_quiet(&format!("verify, reader took {lines} lines"), &e, 0);
    }
}

#[test]
fn report_and_compare_end_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let results = sample().to_str().unwrap();
    for lines in [0, 1] {
        let out = dir.path().join(format!("report{lines}"));
        let e = run_reading(&["report", results, "--out", out.to_str().unwrap()], lines);
        assert_quiet(&format!("report, reader took {lines} lines"), &e, 0);
        assert!(out.join("report.md").exists());
        let e = run_reading(&["compare", results, results], lines);
        assert_quiet(&format!("compare, reader took {lines} lines"), &e, 0);
        if lines == 1 {
            assert!(e.first_line.starts_with("base: "), "{}", e.first_line);
        }
    }
}

#[test]
fn a_failing_command_keeps_its_own_exit_code_on_a_closed_pipe() {
    // verify of a database with a read model changed behind the tool's back: exit 1 (a check
    // failed), whether or not anyone reads the mismatches.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.db");
    let db = format!("sqlite://{}", file.display());
    let seeded = Command::new(BIN)
        .args(["seed", "--db", &db, "--backend", "cqrs-sync"])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    change_a_read_model(&file);
    for lines in [0, 1] {
        let e = run_reading(&["verify", "--db", &db], lines);
        assert_quiet(&format!("failing verify, reader took {lines} lines"), &e, 1);
    }
}

/// Changes every `product_catalog` row behind the tool's back (through sqlx, as the tool
/// opens the file), so verify finds mismatches.
fn change_a_read_model(file: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = cqrs_bench::db::DbUrl::parse(&format!("sqlite://{}", file.display())).unwrap();
        let db = cqrs_bench::db::Db::open_with(
            &url,
            cqrs_bench::db::DEFAULT_SCHEMA,
            1,
            cqrs_bench::db::OpenMode::Existing,
        )
        .await
        .unwrap();
        let changed = sqlx::query("UPDATE product_catalog SET stock = stock + 7")
            .execute(&db.write)
            .await
            .unwrap();
        assert!(changed.rows_affected() > 0);
        db.close().await;
    })
}
