//! The CLI end to end on PostgreSQL (needs `CQRS_BENCH_TEST_PG`; skipped otherwise): the ci
//! scenario runs all three backends cleanly, verify finds no mismatches, and the tool drops the
//! schemas it created.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{pg_url, unique_schema, PG_ENV};

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

/// Schemas whose name starts with `prefix`.
async fn schemas_with_prefix(url: &str, prefix: &str) -> Vec<String> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .expect("connect to the test database");
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT schema_name::text FROM information_schema.schemata")
            .fetch_all(&pool)
            .await
            .expect("list schemas");
    pool.close().await;
    names
        .into_iter()
        .map(|(n,)| n)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_scenario_on_postgres_runs_clean_and_cleans_up() {
    if pg_url("ci_scenario_on_postgres_runs_clean_and_cleans_up").is_none() {
        return;
    }
    let url = std::env::var(PG_ENV).unwrap();
    let prefix = unique_schema("runpg");
    assert_eq!(prefix, prefix.to_lowercase());
    assert!(
        schemas_with_prefix(&url, &prefix).await.is_empty(),
        "the prefix must be unused before the run"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci.toml");
    let t0 = Instant::now();
    let o = Command::new(BIN)
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--db",
            &url,
            "--schema",
            &prefix,
            "--duration",
            "4s",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("run binary");
    let elapsed = t0.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "run failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    eprintln!("postgres ci run took {elapsed:?}");

    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let r: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(r["environment"]["engine"], "postgres");
    assert!(
        !r["environment"]["server_version"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "server version recorded"
    );
    let runs = r["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "one run per backend");
    let backends: Vec<&str> = runs
        .iter()
        .map(|x| x["backend"].as_str().unwrap())
        .collect();
    assert_eq!(backends, ["normalized", "cqrs-sync", "cqrs-async"]);
    for run in runs {
        let b = run["backend"].as_str().unwrap();
        let m = &run["metrics"];
        assert!(
            m["ops"]["write"]["count"].as_u64().unwrap() > 0,
            "{b}: writes ran"
        );
        assert!(
            m["ops"]["read"]["count"].as_u64().unwrap() > 0,
            "{b}: reads ran"
        );
        assert_eq!(m["ops"]["write"]["errors"], 0, "{b}: no write errors");
        assert_eq!(m["ops"]["read"]["errors"], 0, "{b}: no read errors");
        if b == "normalized" {
            assert!(run["verify"].is_null(), "normalized has no read models");
        } else {
            assert_eq!(
                run["verify"]["mismatches"], 0,
                "{b}: read models equal the truth: {}",
                run["verify"]
            );
            // The five SQL read models; no search index: ci.toml's read mix has no
            // text_search, so no backend keeps one.
            let sql_models = run["verify"]["models"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["read_model"] != "product_search")
                .count();
            assert_eq!(sql_models, 5, "{b}: {}", run["verify"]);
            let searched = run["verify"]["models"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["read_model"] == "product_search");
            assert!(!searched, "{b}: no search index without text_search");
        }
        if b == "cqrs-async" {
            assert!(
                run["metrics"]["lag"]["count"].as_u64().unwrap() > 0,
                "lag measured"
            );
            assert_eq!(run["projector"]["errors"], 0);
        }
        assert!(run["kept_database"].is_null(), "not kept without --keep-db");
    }

    let left = schemas_with_prefix(&url, &prefix).await;
    assert!(
        left.is_empty(),
        "the tool must drop the schemas it created, found {left:?}"
    );
}
