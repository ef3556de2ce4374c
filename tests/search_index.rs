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
    let b = open_backend(&url, &schema, kind, 5, &spec, false).await;
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
    let b = open_backend(&url, &schema, cqrs_async::KIND, 9, &spec, false).await;
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
