//! A separate read store (`--read-db`, issue [broker] 17 point 2): the async backends' read
//! models in a database of their own. The write database keeps no read rows, the read store
//! gets them all, queries there answer like `cqrs-sync` on the same op stream, verify
//! compares across the two, and bad combinations are refused before anything is seeded.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use cqrs_bench::backend::{
    cqrs_async, cqrs_sync, prepare_provisioned, read_db, Backend, BackendOptions,
};
use cqrs_bench::db::{Db, DbUrl};
use cqrs_bench::verify::{verify, verify_read_store};
use cqrs_bench::workload::mix::OpStream;

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");
const COMMANDS: u64 = 600;

async fn rows(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&db.read)
        .await
        .expect("count")
}

/// Seeds `write` without read models, fills the read store at `read`, and replays the op
/// stream on `cqrs-async` there and on `cqrs-sync` (one database) side by side.
async fn split_matches_one_database(
    write: (&DbUrl, &str),
    read: (&DbUrl, &str),
    reference: (&DbUrl, &str),
) -> (Db, Db, Db) {
    let spec = small_dataset();
    let (db, _) = prepare_provisioned(
        write.0,
        write.1,
        read_db::write_side_provisions(cqrs_async::KIND),
        3,
        &spec,
        4,
    )
    .await
    .expect("seed the write side");
    let (store, filled) = read_db::prepare(&db, read.0, read.1, 4)
        .await
        .expect("fill the read store");
    assert!(filled.events > 0, "the seed's history was projected");
    // Where the rows are: none on the write side, all of them in the read store.
    for table in [
        "order_summary",
        "product_catalog",
        "daily_sales",
        "monthly_sales",
    ] {
        assert_eq!(rows(&db, table).await, 0, "{table} on the write side");
        assert!(rows(&store, table).await > 0, "{table} in the read store");
    }
    let split = Backend::open(
        cqrs_async::KIND,
        db.clone(),
        BackendOptions {
            run_projector: false,
            read_store: Some(store.clone()),
            ..BackendOptions::default()
        },
    )
    .await
    .expect("open cqrs-async on a read store");
    let sync = open_backend(reference.0, reference.1, cqrs_sync::KIND, 3, &spec, false).await;
    let stream = OpStream::new(3, &spec, &common::mixed_commands());
    let mut unseen = 0;
    for i in 0..COMMANDS {
        let cmd = stream.write_op(i).expect("write op");
        let a = split.execute(&cmd).await;
        let b = sync.execute(&cmd).await;
        assert_eq!(a.is_ok(), b.is_ok(), "command {i}: {a:?} vs {b:?}");
        if let Ok(r) = a {
            // The projector is not running: a committed write is not in the read store yet.
            if !r.seqs.is_empty() && !split.is_visible(&r).await.expect("visible?") {
                unseen += 1;
            }
        }
    }
    assert!(unseen > 0, "read-your-writes looked in the read store");
    split
        .wait_caught_up(Duration::from_secs(60))
        .await
        .expect("catch up");
    let last = stream.write_op(COMMANDS).expect("one more");
    if let Ok(r) = split.execute(&last).await {
        split
            .wait_caught_up(Duration::from_secs(60))
            .await
            .expect("catch up");
        assert!(split.is_visible(&r).await.expect("visible?"));
    }
    sync.execute(&last).await.ok();
    for j in 0..400 {
        if let Some(q) = stream.read_op(j) {
            assert_eq!(
                format!("{:?}", split.query(&q).await.expect("query")),
                format!("{:?}", sync.query(&q).await.expect("query")),
                "{q:?}"
            );
        }
    }
    let report = verify_read_store(&db, &store).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    assert!(report.models.iter().all(|m| m.rows_actual > 0));
    // Each alone is not verifiable, and says why.
    let alone = verify(&db).await.expect_err("write side alone").to_string();
    assert!(alone.contains("--read-db"), "{alone}");
    assert!(verify(&store).await.is_err());
    // A database with read models of its own is not the write side of this pair.
    let wrong = verify_read_store(&sync.db, &store)
        .await
        .expect_err("cqrs-sync's database as the write side")
        .to_string();
    assert!(wrong.contains("not the write side"), "{wrong}");
    split.shutdown().await;
    let sync_db = sync.db.clone();
    sync.shutdown().await;
    (db, store, sync_db)
}

#[tokio::test]
async fn a_read_store_in_another_sqlite_file_answers_like_one_database() {
    let (_w, write) = sqlite_url("write");
    let (_r, read) = sqlite_url("read");
    let (_s, reference) = sqlite_url("sync");
    split_matches_one_database((&write, "main"), (&read, "main"), (&reference, "main")).await;
}

#[tokio::test]
async fn a_read_store_in_another_postgres_database_answers_like_one_database() {
    let Some(url) = pg_url("a_read_store_in_another_postgres_database_answers_like_one_database")
    else {
        return;
    };
    // Another database on the same server: `postgres`, which every server has.
    let raw = url.raw_for_connect();
    let other = DbUrl::parse(&format!(
        "{}/postgres",
        &raw[..raw.rfind('/').expect("a database in the URL")]
    ))
    .expect("url");
    assert!(!other.same_database(&url));
    let schema = unique_schema("split");
    let reference = unique_schema("split_sync");
    let (db, store, sync) =
        split_matches_one_database((&url, &schema), (&other, &schema), (&url, &reference)).await;
    cleanup(&db).await;
    cleanup(&store).await;
    cleanup(&sync).await;
}

fn run(args: &[&str]) -> Finished {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run_with_limit(cmd, Duration::from_secs(120))
}

#[test]
fn bad_read_store_combinations_are_refused_before_seeding() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let read = format!("sqlite://{}", dir.path().join("r.db").display());
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let base = ["run", "scenarios/ci.toml", "--quiet", "--out", out];
    for (extra, expect) in [
        (
            vec![
                "--db",
                &db,
                "--read-db",
                &read,
                "--backends",
                "normalized,cqrs-async",
            ],
            "backends: normalized keep no read models apart",
        ),
        (
            vec!["--db", &db, "--read-db", &db, "--backends", "cqrs-async"],
            "is the database of --db",
        ),
        (
            vec![
                "--db",
                &db,
                "--read-db",
                "postgres://u:secret@127.0.0.1:1/x",
                "--backends",
                "cqrs-async",
            ],
            "the read store uses the same engine",
        ),
    ] {
        let f = run(&[&base[..], &extra[..]].concat());
        assert_eq!(f.code, Some(2), "{extra:?}: {}", f.stderr);
        assert!(f.stderr.contains(expect), "{extra:?}: {}", f.stderr);
        assert!(!f.stderr.contains("secret"), "{}", f.stderr);
    }
    // Nothing was seeded.
    assert!(!dir.path().join("w.cqrs_async.db").exists());
    assert!(!dir.path().join("r.cqrs_async.db").exists());
}

#[test]
fn a_run_with_a_read_store_verifies_and_keeps_both_for_verify_and_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let read = format!("sqlite://{}", dir.path().join("r.db").display());
    let out = dir.path().join("out");
    let f = run(&[
        "run",
        "scenarios/ci.toml",
        "--quiet",
        "--backends",
        "cqrs-async",
        "--duration",
        "3s",
        "--db",
        &db,
        "--read-db",
        &read,
        "--keep-db",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(f.code, Some(0), "{}\n{}", f.stdout, f.stderr);
    let results = std::fs::read_to_string(out.join("results.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&results).unwrap();
    let backend_run = &results["runs"][0];
    assert_eq!(backend_run["verify"]["mismatches"], 0, "{backend_run}");
    assert!(
        backend_run["read_store"]
            .as_str()
            .unwrap()
            .contains("r.cqrs_async.db"),
        "{backend_run}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report
            .lines()
            .any(|l| l.contains("read models in") && l.contains("r.cqrs_async.db")),
        "{report}"
    );
    let w = format!("sqlite://{}", dir.path().join("w.cqrs_async.db").display());
    let r = format!("sqlite://{}", dir.path().join("r.cqrs_async.db").display());
    let ok = run(&["verify", "--db", &w, "--read-db", &r]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(ok.stdout.contains("verify: ok"), "{}", ok.stdout);
    let alone = run(&["verify", "--db", &w]);
    assert_eq!(alone.code, Some(2), "{}", alone.stderr);
    assert!(alone.stderr.contains("--read-db"), "{}", alone.stderr);
    let rebuilt = run(&["rebuild", "--db", &w, "--read-db", &r]);
    assert_eq!(rebuilt.code, Some(0), "{}", rebuilt.stderr);
    let again = run(&["verify", "--db", &w, "--read-db", &r]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
}
