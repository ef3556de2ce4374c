//! `cqrs-bench compare BASE.json NEW.json` on a real run:
//! - a run against itself: no significant change, exit 0 even with `--fail-on-regression`;
//! - against a copy with every interval's write latency 1.5× slower: the write p50 of every
//!   backend is a significant regression, and `--fail-on-regression 10` exits 1 (but
//!   `--fail-on-regression 60` does not: the slowdown is 50 %);
//! - an improvement (0.5×) is reported as such and never fails the gate;
//! - different op streams or scenarios are refused with exit 2 unless `--force`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");
const BACKENDS: [&str; 2] = ["normalized", "cqrs-async"];

/// One real run (two backends, 12 measured seconds each) shared by the tests of this file.
/// Twelve per-second values, not quick.toml's six: on a loaded machine six noisy seconds left
/// even a 1.5× slowdown short of significance (p = 0.063 in one CI run).
fn base() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("run");
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
        let o = Command::new(BIN)
            .arg("run")
            .arg(&scenario)
            .args([
                "--quiet",
                "--duration",
                "14s",
                "--backends",
                &BACKENDS.join(","),
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run cqrs-bench");
        assert!(
            o.status.success(),
            "run failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        (dir, out.join("results.json"))
    })
    .1
}

fn variant(dir: &Path, name: &str, f: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(base()).unwrap()).unwrap();
    f(&mut v);
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    p
}

/// Multiplies every interval's write latencies by `factor`.
fn scale_writes(v: &mut Value, factor: f64) {
    for run in v["runs"].as_array_mut().unwrap() {
        for i in run["metrics"]["intervals"].as_array_mut().unwrap() {
            for k in ["write_p50_us", "write_p99_us", "write_max_us"] {
                let x = i[k].as_u64().unwrap() as f64;
                i[k] = Value::from((x * factor).round() as u64);
            }
        }
    }
}

fn compare(a: &Path, b: &Path, extra: &[&str]) -> (Output, String) {
    let o = Command::new(BIN)
        .arg("compare")
        .arg(a)
        .arg(b)
        .args(extra)
        .output()
        .expect("run compare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o, text)
}

/// The judgement column of the `run metric` line.
fn judgement<'a>(text: &'a str, run: &str, metric: &str) -> &'a str {
    text.lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(run) && l.contains(&format!(" {metric} "))
        })
        .unwrap_or_else(|| panic!("no line for {run} {metric} in:\n{text}"))
}

#[test]
fn a_run_against_itself_shows_no_significant_change() {
    let (o, text) = compare(base(), base(), &["--fail-on-regression", "0"]);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("0 significant regressions, 0 significant improvements"),
        "{text}"
    );
    assert!(!text.contains("REGRESSION"), "{text}");
    for b in BACKENDS {
        for m in ["write p50", "write p99", "read p99", "writes/s"] {
            assert!(
                judgement(&text, b, m).ends_with("no significant change"),
                "{b} {m}: {text}"
            );
        }
    }
    // The async backend has lag; normalized has none to compare.
    judgement(&text, "cqrs-async", "lag p99");
    assert!(!text
        .lines()
        .any(|l| l.starts_with("normalized") && l.contains("lag")));
}

#[test]
fn an_injected_slowdown_is_a_significant_regression() {
    let dir = tempfile::tempdir().unwrap();
    let slow = variant(dir.path(), "slow.json", |v| scale_writes(v, 1.5));
    let (o, text) = compare(base(), &slow, &[]);
    assert_eq!(o.status.code(), Some(0), "no gate, no failure: {text}");
    for b in BACKENDS {
        let line = judgement(&text, b, "write p50");
        // Per-second values are whole µs, so scaling by 1.5 rounds: +50% to within 0.2 points.
        let change: f64 = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix('+')?.strip_suffix('%')?.parse().ok())
            .unwrap_or_else(|| panic!("no +N% in {line}"));
        assert!((change - 50.0).abs() <= 0.2, "{line}");
        assert!(line.ends_with("REGRESSION"), "{b}: {line}");
        // Reads were not touched.
        assert!(judgement(&text, b, "read p50").ends_with("no significant change"));
    }
    let (o, text) = compare(base(), &slow, &["--fail-on-regression", "10"]);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("significant regressions larger than 10%"),
        "{text}"
    );
    // The gate only fires for regressions larger than PCT.
    let (o, text) = compare(base(), &slow, &["--fail-on-regression", "60"]);
    assert_eq!(o.status.code(), Some(0), "{text}");
}

#[test]
fn an_improvement_is_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let fast = variant(dir.path(), "fast.json", |v| scale_writes(v, 0.5));
    let (o, text) = compare(base(), &fast, &["--fail-on-regression", "1"]);
    assert_eq!(o.status.code(), Some(0), "{text}");
    for b in BACKENDS {
        assert!(
            judgement(&text, b, "write p50").ends_with("improvement"),
            "{text}"
        );
    }
}

#[test]
fn different_workloads_are_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let other_stream = variant(dir.path(), "stream.json", |v| {
        v["stream_hash"] = Value::from("0123456789abcdef");
    });
    let (o, text) = compare(base(), &other_stream, &[]);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(
        text.contains("refusing") && text.contains("stream hash"),
        "{text}"
    );
    let (o, text) = compare(base(), &other_stream, &["--force"]);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("compared anyway"), "{text}");

    let other_scenario = variant(dir.path(), "scenario.json", |v| {
        v["scenario"]["name"] = Value::from("flash-sale");
    });
    let (o, text) = compare(base(), &other_scenario, &[]);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("different scenarios"), "{text}");

    let other_rate = variant(dir.path(), "rate.json", |v| {
        v["scenario"]["writes"]["rate"] = Value::from(150.0);
    });
    let (o, text) = compare(base(), &other_rate, &[]);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("scenario.writes"), "{text}");

    // Unreadable input and a bad gate value are bad input too.
    let (o, _) = compare(base(), Path::new("/nonexistent.json"), &[]);
    assert_eq!(o.status.code(), Some(2));
    let (o, _) = compare(base(), base(), &["--fail-on-regression", "-5"]);
    assert_eq!(o.status.code(), Some(2));
}
