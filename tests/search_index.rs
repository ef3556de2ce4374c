//! The product search index (issue [search] 16): verify finds a document that differs from
//! the truth, `rebuild` rebuilds the index from the log, and a search projector process
//! killed with `kill -9` mid-batch resumes from the checkpoint in the index's last commit,
//! losing nothing and applying nothing twice.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use cqrs_bench::backend::{cqrs_async, event_sourced, BackendKind};
use cqrs_bench::db::{Db, DbUrl};
use cqrs_bench::projection::event_source::Position;
use cqrs_bench::projection::rebuild::rebuild_search;
use cqrs_bench::projection::search::{index_dir, SearchIndex};
use cqrs_bench::projection::ProjectionName;
use cqrs_bench::verify::verify;
use cqrs_bench::workload::mix::{MixSpec, OpStream};

/// Events of the log at or before `cp`.
async fn covered(db: &Db, table: &str, cp: Position) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {table} WHERE xid < $1 OR (xid = $1 AND seq <= $2)"
    ))
    .bind(cp.xid)
    .bind(cp.seq)
    .fetch_one(&db.read)
    .await
    .unwrap()
}

fn search_check(report: &cqrs_bench::verify::VerifyReport) -> &cqrs_bench::verify::ModelCheck {
    report
        .models
        .iter()
        .find(|m| m.read_model == ProjectionName::ProductSearch)
        .expect("verify checked the search index")
}

async fn verify_catches_and_rebuild_repairs(url: DbUrl, schema: String, kind: BackendKind) {
    let spec = small_dataset();
    let b = open_searched_backend(&url, &schema, kind, 5, &spec, false).await;
    let stream = OpStream::new(5, &spec, &common::mixed_commands());
    for i in 0..800 {
        let _ = b.execute(&stream.write_op(i).unwrap()).await;
    }
    b.wait_caught_up(Duration::from_secs(60)).await.unwrap();
    let db = b.db.clone();
    let report = verify(&db).await.unwrap();
    assert_eq!(report.mismatches, 0, "{report:?}");
    assert_eq!(search_check(&report).rows_actual, spec.products as usize);
    b.shutdown().await;

    // One product's document goes; another's review count is off by one.
    let index = SearchIndex::open(&index_dir(&db, None)).unwrap();
    let cp = index.committed().unwrap();
    let mut row = index.rows(&[7]).unwrap().remove(&7).expect("product 7");
    row.review_count += 1;
    index
        .commit_with(
            |w, _| {
                w.delete_term(index.id_term(3));
                w.delete_term(index.id_term(7));
                w.add_document(index.document(&row))?;
                Ok(())
            },
            cp,
        )
        .unwrap();
    let report = verify(&db).await.unwrap();
    let check = search_check(&report);
    assert_eq!(check.mismatches, 2, "{check:?}");
    assert_eq!(report.mismatches, 2, "only the index differs: {report:?}");

    // Rebuilt from the whole log, twice: the same documents as the truth, once each.
    let table = if kind == event_sourced::KIND {
        "es_events"
    } else {
        "events"
    };
    let log: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&db.read)
        .await
        .unwrap();
    for _ in 0..2 {
        let r = rebuild_search(&db, index.clone(), 1_000).await.unwrap();
        assert_eq!(r.events as i64, log);
        let report = verify(&db).await.unwrap();
        assert_eq!(report.mismatches, 0, "{report:?}");
        assert_eq!(search_check(&report).rows_actual, spec.products as usize);
    }
    assert_eq!(covered(&db, table, index.committed().unwrap()).await, log);
    if db.is_pg() {
        cleanup(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_rebuild_the_index_on_sqlite() {
    for kind in [cqrs_async::KIND, event_sourced::KIND] {
        let (_dir, url) = sqlite_url(kind.ident());
        verify_catches_and_rebuild_repairs(url, "cqrs_bench".into(), kind).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_rebuild_the_index_on_postgres() {
    let Some(url) = pg_url("verify_and_rebuild_the_index_on_postgres") else {
        return;
    };
    for kind in [cqrs_async::KIND, event_sourced::KIND] {
        verify_catches_and_rebuild_repairs(url.clone(), unique_schema("search"), kind).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_search_without_a_word_is_refused_everywhere() {
    let spec = small_dataset();
    for kind in [cqrs_bench::backend::normalized::KIND, cqrs_async::KIND] {
        let (_dir, url) = sqlite_url(kind.ident());
        let b = open_searched_backend(&url, "cqrs_bench", kind, 1, &spec, false).await;
        let q = |terms: Vec<String>| cqrs_bench::domain::Query::TextSearch {
            terms,
            category_id: 0,
            min_cents: 0,
            max_cents: 1_000_000,
            min_rating: 0,
            in_stock: false,
            sort: cqrs_bench::domain::TextSort::Relevance,
            limit: 10,
        };
        for terms in [vec![], vec!["!!".to_string(), " ".to_string()]] {
            let e = b
                .query(&q(terms.clone()))
                .await
                .expect_err("no word to search for");
            assert!(e.to_string().contains("no word"), "{}: {e}", b.kind);
        }
        assert!(b.query(&q(vec!["Oak!".into()])).await.is_ok());
        b.shutdown().await;
    }
}

/// A short run with text searches on SQLite: search freshness, skew samples and the index's
/// verification land in results.json.
#[test]
fn a_run_measures_search_freshness_and_skew() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("search.toml");
    std::fs::write(
        &scenario,
        r#"
description = "search run"
seed = 3
duration = "4s"
warmup = "1s"
backends = ["normalized", "cqrs-async"]
ryw_share = 0.5
[dataset]
categories = 5
products = 500
users = 100
orders = 200
reviews = 300
price_changes = 50
days = 3
extra_product_indexes = 3
[writes]
rate = 100
workers = 2
mix = { place_order = 40, restock = 30, change_price = 30 }
[reads]
rate = 100
workers = 2
mix = { text_search = 1 }
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_cqrs-bench"))
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let runs = results["runs"].as_array().unwrap();
    for run in runs {
        let m = &run["metrics"];
        assert!(m["ops"]["read.text_search"]["count"].as_u64().unwrap() > 100);
        let asynchronous = run["backend"] == "cqrs-async";
        let fresh = m["search_freshness"]["count"].as_u64().unwrap();
        let skew = m["search_skew"]["samples"].as_u64().unwrap();
        assert_eq!(
            fresh > 0,
            asynchronous,
            "{}: freshness {fresh}",
            run["backend"]
        );
        assert_eq!(skew > 0, asynchronous, "{}: skew {skew}", run["backend"]);
        if asynchronous {
            assert!(m["search_freshness"]["p50_us"].as_u64().unwrap() > 0);
            assert!(m["ryw"]["probes"].as_u64().unwrap() > 0);
            let models = run["verify"]["models"].as_array().unwrap();
            let search = models
                .iter()
                .find(|m| m["read_model"] == "product_search")
                .expect("the index was verified");
            assert_eq!(search["mismatches"], 0);
            assert_eq!(search["rows_actual"], 500);
        }
    }
    // The run's databases and their search indexes are gone.
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".search"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A short cqrs-async run on SQLite with the database kept, reading `mix`: its results and
/// the names of the output folder's entries.
fn kept_run(mix: &str) -> (serde_json::Value, Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("kept.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
description = "is a search index kept?"
seed = 4
duration = "2s"
backends = ["cqrs-async"]
ryw_share = 0.5
[dataset]
categories = 3
products = 100
users = 50
orders = 50
reviews = 50
price_changes = 10
days = 2
[writes]
rate = 50
workers = 2
mix = {{ place_order = 1, restock = 1 }}
[reads]
rate = 50
workers = 2
mix = {mix}
"#
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_cqrs-bench"))
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--keep-db"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let entries = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    (results, entries, dir)
}

/// The index, its projector and its skew sampler exist only when the read mix searches: a
/// run without `text_search` leaves no `.search` folder beside its kept database and reports
/// no search freshness, skew or index verification; with `text_search` it has all three.
#[test]
fn a_run_keeps_the_search_index_only_when_the_read_mix_searches() {
    for (mix, searched) in [
        ("{ product_page = 1, user_orders = 1 }", false),
        ("{ product_page = 1, text_search = 1 }", true),
    ] {
        let (results, entries, _dir) = kept_run(mix);
        let run = &results["runs"][0];
        assert_eq!(run["backend"], "cqrs-async");
        let m = &run["metrics"];
        assert!(m["ops"]["write"]["count"].as_u64().unwrap() > 0, "{mix}");
        assert!(
            entries.iter().any(|e| e.ends_with(".db")),
            "{mix}: the database was kept: {entries:?}"
        );
        let index_dirs: Vec<&String> = entries.iter().filter(|e| e.ends_with(".search")).collect();
        assert_eq!(!index_dirs.is_empty(), searched, "{mix}: {entries:?}");
        let fresh = m["search_freshness"]["count"].as_u64().unwrap();
        let skew = m["search_skew"]["samples"].as_u64().unwrap();
        assert_eq!(fresh > 0, searched, "{mix}: freshness {fresh}");
        assert_eq!(skew > 0, searched, "{mix}: skew {skew}");
        let verified = run["verify"]["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["read_model"] == "product_search");
        assert_eq!(verified, searched, "{mix}: {}", run["verify"]);
        assert_eq!(run["verify"]["mismatches"], 0, "{mix}");
    }
}

fn search_projector(url: &DbUrl, schema: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cqrs-bench"))
        .args(["projector", "--search", "--db", &url.raw_for_connect()])
        .args(["--schema", schema, "--batch-size", "25"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the search projector process")
}

async fn kill_mid_batch_and_resume(url: DbUrl, schema: String) {
    let spec = small_dataset();
    let b = open_searched_backend(&url, &schema, cqrs_async::KIND, 9, &spec, false).await;
    let db = b.db.clone();
    let index = SearchIndex::open(&index_dir(&db, None)).unwrap();
    let seeded = covered(&db, "events", index.committed().unwrap()).await;
    let stream = OpStream::new(9, &spec, &MixSpec::default());
    for i in 0..1_500 {
        let _ = b.execute(&stream.write_op(i).unwrap()).await;
    }
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&db.read)
        .await
        .unwrap();
    assert!(total - seeded > 500);

    // Each batch holds its documents 40 ms before the commit, so the kill lands inside one.
    let mut child = search_projector(&url, &schema, &["--hold-before-commit", "40ms"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while covered(&db, "events", index.committed().unwrap()).await < seeded + 100 {
        assert!(
            Instant::now() < deadline,
            "the search projector made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9");
    child.wait().unwrap();
    let at_kill = covered(&db, "events", index.committed().unwrap()).await;
    assert!(
        at_kill < total,
        "killed too late: everything was already indexed"
    );

    let status = search_projector(&url, &schema, &["--until-idle"])
        .wait()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        covered(&db, "events", index.committed().unwrap()).await,
        total
    );
    // A review applied twice would show as a review count off by one; a lost batch as a
    // stale price or stock; a document added twice as a duplicate.
    let report = verify(&db).await.unwrap();
    let check = search_check(&report);
    assert_eq!(check.mismatches, 0, "{check:?}");
    assert_eq!(check.rows_actual, spec.products as usize);
    b.shutdown().await;
    if db.is_pg() {
        cleanup(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_search_projector_resumes_on_sqlite() {
    let (_dir, url) = sqlite_url("kill_search");
    kill_mid_batch_and_resume(url, "cqrs_bench".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_search_projector_resumes_on_postgres() {
    let Some(url) = pg_url("killed_search_projector_resumes_on_postgres") else {
        return;
    };
    kill_mid_batch_and_resume(url, unique_schema("kill_search")).await;
}

/// `[dataset] extra_product_indexes = N` puts exactly the first N extra indexes on `products`
/// (the twenty-indexes question), on either engine.
async fn extra_indexes_are_created(url: DbUrl, schema: String) {
    for n in [0, 7, 20] {
        let spec = cqrs_bench::dataset::DatasetSpec {
            extra_product_indexes: n,
            ..small_dataset()
        };
        let (db, _) = cqrs_bench::backend::prepare(
            &url,
            &schema,
            cqrs_bench::backend::normalized::KIND,
            1,
            &spec,
            2,
        )
        .await
        .unwrap();
        let sql = if db.is_pg() {
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = 'products' AND indexname LIKE 'products_extra_%'"
        } else {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'products' \
             AND name LIKE 'products_extra_%'"
        };
        let found: i64 = sqlx::query_scalar(sql).fetch_one(&db.read).await.unwrap();
        assert_eq!(found, n, "extra indexes on products");
        if db.is_pg() {
            cleanup(&db).await;
        } else {
            db.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_product_indexes_on_sqlite() {
    let (_dir, url) = sqlite_url("extra");
    extra_indexes_are_created(url, "cqrs_bench".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_product_indexes_on_postgres() {
    let Some(url) = pg_url("extra_product_indexes_on_postgres") else {
        return;
    };
    extra_indexes_are_created(url, unique_schema("extra")).await;
}
