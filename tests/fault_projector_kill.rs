//! The projector runs as its own process; `kill -9` mid-batch loses nothing and applies
//! nothing twice: restarted, it continues from its checkpoint (issue [faults] 2).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use cqrs_bench::backend::cqrs_async;
use cqrs_bench::db::{Db, DbUrl};
use cqrs_bench::projection::read_store::checkpoint_counts;
use cqrs_bench::verify::verify;
use cqrs_bench::workload::mix::{MixSpec, OpStream};

fn projector(url: &DbUrl, schema: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cqrs-bench"))
        .args([
            "projector",
            "--db",
            &url.raw_for_connect(),
            "--schema",
            schema,
        ])
        .args(["--batch-size", "25"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the projector process")
}

async fn applied(db: &Db) -> i64 {
    checkpoint_counts(db)
        .await
        .unwrap()
        .iter()
        .map(|(_, a, _)| *a)
        .min()
        .unwrap_or(0)
}

async fn kill_mid_batch_and_resume(url: DbUrl, schema: String) {
    let spec = small_dataset();
    let b = open_backend(&url, &schema, cqrs_async::KIND, 8, &spec, false).await;
    // The seed's events are covered by the checkpoints already.
    let seeded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&b.db.read)
        .await
        .unwrap();
    let stream = OpStream::new(8, &spec, &MixSpec::default());
    for i in 0..1_500 {
        let _ = b.execute(&stream.write_op(i).unwrap()).await;
    }
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&b.db.read)
        .await
        .unwrap();
    let to_apply = total - seeded;
    assert!(to_apply > 500);

    // Each batch holds its transaction open for 40 ms, so the kill lands inside one.
    let mut child = projector(&url, &schema, &["--hold-before-commit", "40ms"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied(&b.db).await < 100 {
        assert!(
            Instant::now() < deadline,
            "the projector process made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9");
    child.wait().unwrap();
    let at_kill = applied(&b.db).await;
    assert!(
        at_kill < to_apply,
        "killed too late: everything was already applied"
    );

    let status = projector(&url, &schema, &["--until-idle"]).wait().unwrap();
    assert!(status.success());
    let report = verify(&b.db).await.unwrap();
    assert_eq!(report.mismatches, 0, "{report:?}");
    // Applied counts commit with the rows: each read model applied every event exactly once.
    for (name, applied, duplicates) in checkpoint_counts(&b.db).await.unwrap() {
        assert_eq!(applied, to_apply, "{name}");
        assert_eq!(duplicates, 0, "{name}: an event was applied twice");
    }
    if b.db.is_pg() {
        cleanup(&b.db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_projector_resumes_on_sqlite() {
    let (_dir, url) = sqlite_url("kill");
    kill_mid_batch_and_resume(url, "cqrs_bench".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_projector_resumes_on_postgres() {
    let Some(url) = pg_url("killed_projector_resumes_on_postgres") else {
        return;
    };
    kill_mid_batch_and_resume(url, unique_schema("kill")).await;
}
