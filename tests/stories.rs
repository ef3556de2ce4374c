//! The failure stories (issue [stories] 18) as scenarios: each `scenarios/<story>.toml` runs at
//! a small size — the file's workload with a small dataset and a short duration — completes,
//! verifies, and its report opens with the answer to its question (then the plot that shows
//! it). The verdict sentences themselves are tested on recorded results in
//! `src/report/verdict/story/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{pg_url, run_with_limit, unique_schema, PG_ENV};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

/// `scenarios/<name>.toml` with its `[dataset]` replaced by `dataset` (TOML inline-table
/// body), a one-second warm-up and the top-level `replace` (TOML lines), written under the
/// same file name into `dir`, so the scenario keeps its name.
fn shrunk(dir: &Path, name: &str, dataset: &str, replace: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut root: toml::Table = text.parse().unwrap();
    assert!(root.contains_key("story"), "{name} tells a story");
    let small: toml::Table = format!("dataset = {{ {dataset} }}").parse().unwrap();
    root.insert("dataset".into(), small["dataset"].clone());
    // A warm-up of 0.5 s and `--duration 6s` measure 5.5 s: a story answers only from runs
    // that measured at least the 5 s a decision needs (`soundness::MIN_MEASURED_SECONDS`).
    root.insert("warmup".into(), toml::Value::String("500ms".into()));
    let replace: toml::Table = replace.parse().unwrap();
    for (k, v) in replace {
        assert!(root.contains_key(&k), "{name} has no {k} to replace");
        root.insert(k, v);
    }
    let out = dir.join(format!("{name}.toml"));
    std::fs::write(&out, toml::to_string(&root).unwrap()).unwrap();
    out
}

/// Runs a shrunk story scenario; returns its results and report.md.
fn run_story(name: &str, dataset: &str, replace: &str, extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = shrunk(dir.path(), name, dataset, replace);
    let out = dir.path().join("out");
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(&out)
        .args(extra);
    let done = run_with_limit(cmd, Duration::from_secs(300));
    assert_eq!(
        done.code,
        Some(0),
        "{name}: {}\n{}",
        done.stdout,
        done.stderr
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for run in results["runs"].as_array().unwrap() {
        // normalized has no read model to verify.
        if run["backend"] == "normalized" {
            continue;
        }
        assert_eq!(
            run["verify"]["mismatches"],
            serde_json::json!(0),
            "{name}: {} did not verify",
            run["backend"]
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let answer = html
        .find("<h2 id=\"answer\">Answer</h2>")
        .expect("an answer in the HTML");
    let facts = html.find("<table class=\"facts\">").unwrap();
    assert!(answer < facts, "{name}: the HTML answer is not first");
    (results, md)
}

/// Whether the answer leaves `backend`'s run out (its driver fell behind).
fn left_out(answer: &str, backend: &str) -> bool {
    answer
        .find("Left out: ")
        .is_some_and(|i| answer[i..].contains(backend))
}

/// The report opens with the decision, then the story's answer: right after the title and
/// the question.
fn answer_of(md: &str) -> &str {
    let sections: Vec<&str> = md.split("\n## ").collect();
    assert!(
        sections.len() > 2
            && sections[1].starts_with("Decision\n")
            && sections[2].starts_with("Answer\n"),
        "the first sections are not the decision and the answer:\n{md}"
    );
    sections[2]
}

#[test]
fn read_model_lag_story_runs_verifies_and_answers_first() {
    let (results, md) = run_story(
        "read-model-lag",
        "categories = 4, products = 60, users = 60, orders = 200, reviews = 50, price_changes = 10, days = 5",
        "",
        &["--duration", "6s"],
    );
    assert_eq!(results["scenario"]["story"], "read-model-lag");
    let answer = answer_of(&md);
    // Every async backend of the scenario is named with its share and its p99, or as never
    // missing, or as left out because its driver fell behind; the sync control is named too.
    for backend in ["cqrs-async", "event-sourced"] {
        if left_out(answer, backend) {
            continue;
        }
        let named = answer.contains(&format!("on **{backend}** "));
        assert!(named, "{backend} missing from:\n{answer}");
        assert!(
            (answer.contains("of users would not see their order right after placing it;")
                && answer.contains("; it appears after p99"))
                || answer.contains(&format!(
                    "on **{backend}** every user would see their order"
                )),
            "{answer}"
        );
    }
    // The control is named, or left out because its driver fell behind.
    assert!(
        answer.contains("on **cqrs-sync**") || left_out(answer, "cqrs-sync"),
        "{answer}"
    );
    assert!(
        answer.contains("![Projection lag](plots/lag.svg)"),
        "{answer}"
    );
}

#[test]
fn dashboard_story_runs_verifies_and_answers_first() {
    let (results, md) = run_story(
        "dashboard-under-load",
        "categories = 4, products = 100, users = 100, orders = 1000, reviews = 200, price_changes = 20, days = 10",
        "sweep = { readers = [0, 2] }",
        &["--duration", "6s", "--backends", "normalized,cqrs-sync"],
    );
    assert_eq!(results["scenario"]["story"], "dashboard");
    let answer = answer_of(&md);
    // Either normalized breaks at 2 readers (named, with cqrs-sync there), or nothing breaks
    // up to 2 readers: which one is the machine's business, the sentence's shape is not.
    let broke = answer.contains("normalized order writes break at **2 readers**: write p99 ")
        && answer.contains("there **cqrs-sync** ");
    let held = answer.contains(
        "writes break up to **2 readers** (the most readers tried): normalized write p99 ",
    ) || answer.contains("normalized order writes do not break up to **2 readers**");
    // Or (a busy machine) normalized's runs were left out because the driver fell behind:
    // then no answer comes from them, and the answer says so.
    let behind = |readers: u64| {
        results["runs"].as_array().unwrap().iter().any(|r| {
            r["backend"] == "normalized"
                && r["sweep_point"]["readers"] == readers
                && r["metrics"]["driver_behind"] == true
        })
    };
    if behind(0) || behind(2) {
        assert!(left_out(answer, "normalized"), "{answer}");
    } else {
        assert!(broke || held, "{answer}");
        assert!(answer.contains("at 0 readers"), "{answer}");
    }
    assert!(
        answer.contains("![Do reads hurt writes? p99 against read load](plots/load.svg)"),
        "{answer}"
    );
}

/// The same story on PostgreSQL, where the projector reads the outbox below the xid horizon.
#[test]
fn read_model_lag_story_on_postgres() {
    let Some(_) = pg_url("read_model_lag_story_on_postgres") else {
        return;
    };
    let url = std::env::var(PG_ENV).unwrap();
    let schema = unique_schema("story");
    let (results, md) = run_story(
        "read-model-lag",
        "categories = 4, products = 60, users = 60, orders = 200, reviews = 50, price_changes = 10, days = 5",
        "",
        &["--duration", "6s", "--db", &url, "--schema", &schema],
    );
    assert_eq!(results["environment"]["engine"], "postgres");
    let answer = answer_of(&md);
    assert!(answer.contains("on **cqrs-async** ") || left_out(answer, "cqrs-async"));
    assert!(
        answer.contains("on **cqrs-sync**") || left_out(answer, "cqrs-sync"),
        "{answer}"
    );
}

/// The price-change rewrite: `change_price` p99 of `denormalized` against `cqrs-sync` along
/// an orders sweep, and what readers of the rewritten lines saw.
fn denormalization_story(extra: &[&str]) -> (Value, String) {
    let (results, md) = run_story(
        "denormalization",
        "categories = 4, products = 20, users = 60, orders = 200, reviews = 50, price_changes = 10, days = 5",
        "sweep = { orders = [100, 1000] }",
        &[&["--duration", "6s"], extra].concat(),
    );
    assert_eq!(results["scenario"]["story"], "denormalization");
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "two backends at two points");
    for run in runs {
        let backend = run["backend"].as_str().unwrap();
        assert!(
            run["metrics"]["ops"]["write.change_price"]["ok"]
                .as_u64()
                .unwrap()
                > 0,
            "{backend} changed no price"
        );
        let watched = &run["rewrite_reads"];
        if backend == "denormalized" {
            assert!(watched["reads"].as_u64().unwrap() > 0, "{watched}");
            assert_eq!(watched["torn"], 0, "a reader saw a half-rewritten product");
            assert_eq!(
                run["verify"]["models"][0]["read_model"],
                "order_line_copies"
            );
        } else {
            assert!(watched.is_null(), "{backend}: {watched}");
        }
    }
    // The load plot of an orders sweep says what its points are.
    assert!(
        md.contains("at each point of the orders sweep"),
        "the load plot's caption: {md}"
    );
    let answer = answer_of(&md).to_string();
    assert!(
        answer.contains("At **1000 orders** a price change takes **"),
        "{answer}"
    );
    assert!(
        answer.contains(" on **denormalized** against **"),
        "{answer}"
    );
    assert!(answer.contains(" on **cqrs-sync**, "), "{answer}");
    assert!(answer.contains("at 100 orders"), "{answer}");
    assert!(
        answer.contains(", and none saw a half-rewritten product"),
        "{answer}"
    );
    assert!(
        answer.contains(
            "![Does a price change grow with the shop's history? p99 against orders](plots/price-change.svg)"
        ),
        "{answer}"
    );
    (results, md)
}

#[test]
fn denormalization_story_runs_verifies_and_answers_first() {
    denormalization_story(&[]);
}

/// The same story on PostgreSQL, where readers of the rewritten lines read an MVCC snapshot.
#[test]
fn denormalization_story_on_postgres() {
    let Some(_) = pg_url("denormalization_story_on_postgres") else {
        return;
    };
    let url = std::env::var(PG_ENV).unwrap();
    let schema = unique_schema("story");
    let (results, _) = denormalization_story(&["--db", &url, "--schema", &schema]);
    assert_eq!(results["environment"]["engine"], "postgres");
}

/// The monthly report's answer, whichever way this machine's run went: per backend, blocked
/// or not, with the write p99 without and with the report; the load plot after it.
fn assert_monthly_answer(answer: &str, backends: &[&str]) {
    assert!(
        answer.contains("with 1 reader running `monthly_report` back to back, "),
        "{answer}"
    );
    assert!(
        answer.contains("this engine does not block writers")
            || answer.contains("the report **blocks writers** on ")
            || answer.contains("no report ran long enough beside the writes to tell"),
        "{answer}"
    );
    // Each backend is named, or left out because its driver fell behind.
    for backend in backends {
        assert!(
            answer.contains(&format!("on **{backend}** ")) || left_out(answer, backend),
            "{answer}"
        );
    }
    assert!(answer.contains(" → "), "{answer}");
    assert!(
        answer.contains("![Do reads hurt writes? p99 against read load](plots/load.svg)"),
        "{answer}"
    );
}

const MONTHLY_DATASET: &str = "categories = 5, products = 100, users = 200, orders = 2000, reviews = 100, price_changes = 20, days = 40";

#[test]
fn monthly_report_story_runs_verifies_and_answers_first() {
    let (results, md) = run_story(
        "monthly-report",
        MONTHLY_DATASET,
        "",
        &[
            "--duration",
            "6s",
            "--backends",
            "normalized,cqrs-sync,cqrs-async",
        ],
    );
    assert_eq!(results["scenario"]["story"], "monthly-report");
    // Reports ran beside the writes on every backend, and none without.
    for run in results["runs"].as_array().unwrap() {
        let reports = &run["metrics"]["ops"]["read.monthly_report"]["latency"]["count"];
        if run["sweep_point"]["readers"] == 0 {
            assert!(reports.is_null() || reports == 0, "{run}");
        } else {
            assert!(
                reports.as_u64().unwrap() > 0,
                "{}: no report ran",
                run["backend"]
            );
        }
    }
    assert_monthly_answer(answer_of(&md), &["normalized", "cqrs-sync", "cqrs-async"]);
}

#[test]
fn monthly_report_story_on_postgres() {
    let Some(_) = pg_url("monthly_report_story_on_postgres") else {
        return;
    };
    let url = std::env::var(PG_ENV).unwrap();
    let schema = unique_schema("story");
    let (results, md) = run_story(
        "monthly-report",
        MONTHLY_DATASET,
        "",
        &[
            "--duration",
            "6s",
            "--backends",
            "normalized,cqrs-sync,triggers",
            "--db",
            &url,
            "--schema",
            &schema,
        ],
    );
    assert_eq!(results["environment"]["engine"], "postgres");
    assert_monthly_answer(answer_of(&md), &["normalized", "cqrs-sync", "triggers"]);
}
