//! `cqrs-broker` against real `nats-server -js` processes of the test's own (issue [broker]
//! 17): a run converges and verifies; a relay that dies between publishing and recording is
//! deduplicated by the stream; a consumer that dies between its commit and its ack gets the
//! batch again and the checkpoint absorbs it; the server restarting mid-run loses nothing;
//! an unreachable URL is exit 2 in seconds; a stream the tool did not create is left alone.

mod common;

use std::time::{Duration, Instant};

use common::nats::{free_port, NatsServer};
use common::*;
use cqrs_bench::backend::{cqrs_broker, prepare, Backend, BackendOptions};
use cqrs_bench::broker::{self, BrokerOptions};
use cqrs_bench::db::{Db, DbUrl};
use cqrs_bench::projection::event_source::EventLog;
use cqrs_bench::projection::jetstream::{ConsumerFaults, JetStreamSource};
use cqrs_bench::projection::projector::{Projector, ProjectorConfig};
use cqrs_bench::projection::read_store::SameDatabase;
use cqrs_bench::projection::relay::Relay;
use cqrs_bench::verify::verify;
use cqrs_bench::workload::mix::OpStream;

/// A seeded `cqrs-broker` database and the backend on it, relay and projector driven by hand
/// (`wait_caught_up` steps them).
async fn seeded(url: &DbUrl, schema: &str, nats: &str, ack_wait: Duration) -> (Db, Backend) {
    let (db, _) = prepare(url, schema, cqrs_broker::KIND, 5, &small_dataset(), 4)
        .await
        .expect("seed");
    let backend = Backend::open(
        cqrs_broker::KIND,
        db.clone(),
        BackendOptions {
            run_projector: false,
            broker: BrokerOptions {
                url: nats.to_string(),
                ack_wait,
                ..BrokerOptions::default()
            },
            ..BackendOptions::default()
        },
    )
    .await
    .expect("open cqrs-broker");
    (db, backend)
}

/// Executes commands `from..to` of the seeded stream; returns how many committed events.
async fn write(backend: &Backend, from: u64, to: u64) -> usize {
    let stream = OpStream::new(5, &small_dataset(), &common::mixed_commands());
    let mut events = 0;
    for i in from..to {
        let cmd = stream.write_op(i).expect("write op");
        if let Ok(r) = backend.execute(&cmd).await {
            events += r.seqs.len();
        }
    }
    events
}

/// Publishes the whole outbox; returns how many events. A step that publishes nothing is not
/// the end on PostgreSQL: another test's open transaction holds the horizon back for a while.
async fn publish_all(relay: &Relay) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut published = 0;
    loop {
        let n = relay.step().await.expect("relay");
        published += n;
        if n == 0 {
            if relay.backlog().await.expect("backlog") == 0 {
                return published;
            }
            assert!(
                Instant::now() < deadline,
                "the relay stalled at {published}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn assert_verified(db: &Db) {
    let report = verify(db).await.expect("verify");
    assert!(report.ok(), "verify found mismatches: {report:?}");
}

fn config() -> ProjectorConfig {
    ProjectorConfig {
        batch_size: 50,
        poll_interval: Duration::from_millis(20),
        ..ProjectorConfig::default()
    }
}

#[tokio::test]
async fn relay_killed_between_publish_and_mark_is_deduplicated() {
    let (_dir, url) = sqlite_url("relay_kill");
    relay_kill(&url, "main").await;
}

#[tokio::test]
async fn relay_killed_between_publish_and_mark_is_deduplicated_on_postgres() {
    let Some(url) = pg_url("relay_killed_between_publish_and_mark_is_deduplicated_on_postgres")
    else {
        return;
    };
    relay_kill(&url, &unique_schema("relay_kill")).await;
}

async fn relay_kill(url: &DbUrl, schema: &str) {
    let server = NatsServer::start();
    let (db, backend) = seeded(url, schema, &server.url(), Duration::from_secs(5)).await;
    let events = write(&backend, 0, 300).await;
    assert!(events > 200, "{events} events");
    let js = broker::connect(&server.url()).await.expect("connect");
    let names = cqrs_broker::names_of(&db);
    // A relay publishes a batch and dies before recording it.
    let relay = Relay::new(
        db.clone(),
        js.clone(),
        names.clone(),
        100,
        Duration::from_millis(20),
    );
    // All 100 visible first: another test's open transaction on the server may hold the
    // outbox's horizon back for a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while relay.backlog().await.expect("backlog") < 100 {
        assert!(Instant::now() < deadline, "the outbox horizon did not move");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acks = relay.step_without_marking().await.expect("publish");
    assert_eq!(acks.len(), 100);
    assert!(acks.iter().all(|(_, dup)| !dup));
    drop(relay);
    // Its successor starts from the recorded position: the same 100 again, all duplicates.
    let relay = Relay::new(
        db.clone(),
        js.clone(),
        names.clone(),
        100,
        Duration::from_millis(20),
    );
    let again = relay.step_without_marking().await.expect("republish");
    assert_eq!(again.len(), 100);
    assert!(again.iter().all(|(_, dup)| *dup), "{again:?}");
    assert_eq!(
        again.iter().map(|a| a.0).collect::<Vec<_>>(),
        acks.iter().map(|a| a.0).collect::<Vec<_>>(),
        "a duplicate is acknowledged at the original's sequence"
    );
    backend
        .wait_caught_up(Duration::from_secs(30))
        .await
        .expect("catch up");
    // Every event is in the stream exactly once.
    assert_eq!(
        broker::stream::message_count(&js, &names).await.unwrap(),
        events as u64
    );
    assert_verified(&db).await;
    backend.shutdown().await;
    // The tool deletes the stream it created.
    assert!(js.get_stream(&names.stream).await.is_err());
    if db.schema.is_some() {
        cleanup(&db).await;
    }
}

#[tokio::test]
async fn consumer_killed_between_commit_and_ack_is_absorbed() {
    let (_dir, url) = sqlite_url("consumer_kill");
    consumer_kill(&url, "main").await;
}

#[tokio::test]
async fn consumer_killed_between_commit_and_ack_is_absorbed_on_postgres() {
    let Some(url) = pg_url("consumer_killed_between_commit_and_ack_is_absorbed_on_postgres") else {
        return;
    };
    consumer_kill(&url, &unique_schema("consumer_kill")).await;
}

async fn consumer_kill(url: &DbUrl, schema: &str) {
    let server = NatsServer::start();
    let ack_wait = Duration::from_secs(1);
    let (db, backend) = seeded(url, schema, &server.url(), ack_wait).await;
    let events = write(&backend, 0, 300).await;
    let js = broker::connect(&server.url()).await.expect("connect");
    let names = cqrs_broker::names_of(&db);
    let relay = Relay::new(
        db.clone(),
        js.clone(),
        names.clone(),
        500,
        Duration::from_millis(20),
    );
    publish_all(&relay).await;
    // A consumer commits every batch and never acks: killed after each commit.
    let source = JetStreamSource::open(
        js.clone(),
        names.clone(),
        &server.url(),
        EventLog::outbox(db.clone()),
        Duration::from_millis(50),
    )
    .await
    .expect("consumer")
    .with_faults(ConsumerFaults { drop_acks: true });
    let first = source.stats.clone();
    let p = Projector::over(source, SameDatabase::new(db.clone()), config());
    // One fetch that waited its 50 ms for nothing is not the end of the stream on a loaded
    // machine: project until the checkpoint reaches the last published message.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut applied = 0;
    loop {
        applied += p.catch_up().await.expect("apply") as usize;
        if p.backlog().await.expect("backlog") == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer stalled at {applied}"
        );
    }
    // Whatever the server redelivered after the ack-wait was only acknowledged, not applied.
    let covered = first.covered.load(std::sync::atomic::Ordering::Relaxed) as usize;
    assert_eq!(applied - covered, events);
    drop(p);
    assert_verified(&db).await;
    // Its successor is delivered everything again after the ack-wait; the checkpoint covers it.
    let source = JetStreamSource::open(
        js.clone(),
        names.clone(),
        &server.url(),
        EventLog::outbox(db.clone()),
        Duration::from_millis(50),
    )
    .await
    .expect("consumer");
    let stats = source.stats.clone();
    let p = Projector::over(source, SameDatabase::new(db.clone()), config());
    let deadline = Instant::now() + Duration::from_secs(20);
    while (stats.covered.load(std::sync::atomic::Ordering::Relaxed) as usize) < events {
        assert!(
            Instant::now() < deadline,
            "redelivery did not come: {stats:?}"
        );
        p.step().await.expect("step");
    }
    assert!(stats.redelivered.load(std::sync::atomic::Ordering::Relaxed) as usize >= events);
    assert_verified(&db).await;
    // Acked now: nothing comes again.
    tokio::time::sleep(ack_wait * 2).await;
    let before = stats.covered.load(std::sync::atomic::Ordering::Relaxed);
    p.step().await.expect("step");
    assert_eq!(
        stats.covered.load(std::sync::atomic::Ordering::Relaxed),
        before
    );
    backend.shutdown().await;
    if db.schema.is_some() {
        cleanup(&db).await;
    }
}

#[tokio::test]
async fn a_stream_the_tool_did_not_create_is_refused_and_left_alone() {
    let server = NatsServer::start();
    let (_dir, url) = sqlite_url("foreign");
    let (db, _) = prepare(&url, "main", cqrs_broker::KIND, 5, &small_dataset(), 4)
        .await
        .expect("seed");
    let names = cqrs_broker::names_of(&db);
    let js = broker::connect(&server.url()).await.expect("connect");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: names.stream.clone(),
        subjects: vec!["someone.else".into()],
        description: Some("somebody's orders".into()),
        ..Default::default()
    })
    .await
    .expect("a stream of someone else's");
    let err = Backend::open(
        cqrs_broker::KIND,
        db.clone(),
        BackendOptions {
            broker: BrokerOptions {
                url: server.url(),
                ..BrokerOptions::default()
            },
            ..BackendOptions::default()
        },
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string().contains("not created by cqrs-bench"),
        "{err}"
    );
    let mut kept = js.get_stream(&names.stream).await.expect("still there");
    let info = kept.info().await.expect("info");
    assert_eq!(
        info.config.description.as_deref(),
        Some("somebody's orders")
    );
    // Deleting "ours" leaves it alone too.
    assert!(!broker::stream::delete_ours(&js, &names).await.unwrap());
    assert!(js.get_stream(&names.stream).await.is_ok());
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cqrs-bench"))
}

/// A short scenario for `cqrs-broker` and `cqrs-async`, with a lag threshold on the broker.
fn scenario(dir: &std::path::Path, seconds: u32) -> std::path::PathBuf {
    let path = dir.join("broker.toml");
    std::fs::write(
        &path,
        format!(
            r#"description = "broker test"
seed = 3
duration = "{seconds}s"
warmup = "1s"
backends = ["cqrs-async", "cqrs-broker"]
ryw_share = 0.1

[dataset]
categories = 8
products = 120
users = 80
orders = 400
reviews = 400
price_changes = 80
days = 10

[writes]
rate = 100
workers = 2
mix = {{ place_order = 50, pay_order = 15, ship_order = 10, cancel_order = 5, add_review = 10, change_price = 5, restock = 5 }}

[reads]
rate = 50
workers = 2
mix = {{ product_page = 40, user_orders = 20, search = 20, daily_revenue = 10, top_products = 10 }}

[thresholds]
"cqrs-broker.lag.p99" = "<= 2s"
"cqrs-broker.verify.mismatches" = "== 0"
"cqrs-async.lag.p99" = "<= 2s"
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_runs_the_broker_and_its_lag_threshold() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = bin();
    cmd.arg("check")
        .arg(scenario(dir.path(), 3))
        .args(["--quiet", "--nats", &server.url(), "--out"])
        .arg(&out);
    let done = run_with_limit(cmd, Duration::from_secs(120));
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.stdout
            .lines()
            .any(|l| l.starts_with("PASS") && l.contains("cqrs-broker.lag.p99")),
        "{}",
        done.stdout
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let broker_run = results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backend"] == "cqrs-broker")
        .expect("a broker run");
    let parts: Vec<&str> = broker_run["lag_parts"]
        .as_array()
        .expect("lag parts")
        .iter()
        .map(|p| p["part"].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["published", "delivered", "end_to_end"]);
    assert!(broker_run["lag_parts"][0]["lag"]["count"].as_u64().unwrap() > 100);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Lag in parts (broker)"), "{report}");
}

/// Both async backends with their read models in other SQLite files (`--read-db`): the runs
/// verify against the write files' truth, and the read stores hold the rows.
#[test]
fn the_broker_feeds_a_separate_read_store() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let read = format!("sqlite://{}", dir.path().join("r.db").display());
    let mut cmd = bin();
    cmd.arg("run")
        .arg(scenario(dir.path(), 3))
        .args(["--quiet", "--nats", &server.url(), "--keep-db"])
        .args(["--db", &db, "--read-db", &read, "--out"])
        .arg(&out);
    let done = run_with_limit(cmd, Duration::from_secs(120));
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for run in results["runs"].as_array().unwrap() {
        assert_eq!(run["verify"]["mismatches"], 0, "{run}");
        assert!(run["verify"]["models"][1]["rows_actual"].as_u64().unwrap() > 0);
        assert!(run["read_store"].as_str().unwrap().contains("r."), "{run}");
    }
    let broker_read = dir.path().join("r.cqrs_broker.db");
    assert!(broker_read.exists());
    let mut verify = bin();
    verify.args(["verify", "--db"]).arg(format!(
        "sqlite://{}",
        dir.path().join("w.cqrs_broker.db").display()
    ));
    verify
        .arg("--read-db")
        .arg(format!("sqlite://{}", broker_read.display()));
    let checked = run_with_limit(verify, Duration::from_secs(60));
    assert_eq!(checked.code, Some(0), "{}", checked.stderr);
}

#[test]
fn an_unreachable_nats_url_is_exit_2_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let url = format!("nats://user:secret@127.0.0.1:{}", free_port());
    let mut cmd = bin();
    cmd.arg("run")
        .arg(scenario(dir.path(), 3))
        .args([
            "--quiet",
            "--backends",
            "cqrs-broker",
            "--nats",
            &url,
            "--out",
        ])
        .arg(&out);
    let done = run_with_limit(cmd, Duration::from_secs(30));
    assert_eq!(done.code, Some(2), "{}\n{}", done.stdout, done.stderr);
    // Refused before anything was seeded: the broker is tried first (how long that takes
    // depends on the machine; `run_with_limit` only guards against a hang).
    let seeded: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(seeded.is_empty(), "{seeded:?}");
    let lines: Vec<&str> = done.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", done.stderr);
    assert!(lines[0].contains("cannot connect to NATS"), "{}", lines[0]);
    assert!(!done.stderr.contains("secret"), "{}", done.stderr);
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_nats_restart_mid_run_loses_nothing() {
    let mut server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = bin();
    cmd.arg("run")
        .arg(scenario(dir.path(), 6))
        .args([
            "--quiet",
            "--backends",
            "cqrs-broker",
            "--nats",
            &server.url(),
            "--out",
        ])
        .arg(&out);
    let run = std::thread::spawn(move || run_with_limit(cmd, Duration::from_secs(120)));
    // Seeding takes a moment; restart while the load runs.
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    let done = run.join().unwrap();
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let run = &results["runs"][0];
    assert_eq!(run["backend"], "cqrs-broker");
    assert_eq!(run["verify"]["mismatches"], 0, "{}", run["verify"]);
    assert!(
        run["projector"]["events"].as_u64().unwrap() > 0,
        "{} {}",
        run["projector"],
        run["rates"]
    );
}

#[test]
fn a_three_node_cluster_survives_losing_a_node_mid_run() {
    let mut cluster = common::nats::NatsCluster::start();
    let url = cluster.url();
    // The cluster elects its JetStream leader after the routes are up.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.block_on(broker::connect(&url)).is_err() {
        assert!(Instant::now() < deadline, "the cluster did not form");
        std::thread::sleep(Duration::from_millis(200));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = bin();
    cmd.arg("run")
        .arg(scenario(dir.path(), 8))
        .args(["--quiet", "--backends", "cqrs-broker", "--nats", &url])
        .args(["--nats-replicas", "3", "--out"])
        .arg(&out);
    let run = std::thread::spawn(move || run_with_limit(cmd, Duration::from_secs(180)));
    std::thread::sleep(Duration::from_secs(4));
    // The first node is the one the client tries first: it loses its server.
    cluster.nodes[0].kill();
    let done = run.join().unwrap();
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let run = &results["runs"][0];
    assert_eq!(run["verify"]["mismatches"], 0, "{}", run["verify"]);
    // Events went through the cluster (how many depends on how fast the shared machine seeds
    // and drives; verify above is the check that none was lost or applied twice).
    assert!(
        run["projector"]["events"].as_u64().unwrap() > 0,
        "{} {}",
        run["projector"],
        run["rates"]
    );
    eprintln!(
        "cluster failover: lag p99 {} µs, max {} µs, {} events",
        run["metrics"]["lag"]["p99_us"],
        run["metrics"]["lag"]["max_us"],
        run["projector"]["events"]
    );
}

/// A backlog of 6,000 outbox events published in batches of 500: every event reaches the
/// stream. Its events/s (printed) is the relay throughput in BENCHMARKS.md
/// (`cargo test --release --test broker relay_throughput -- --nocapture`); CI runs it for the
/// count, never for the speed, so no test is left ignored.
#[tokio::test]
async fn relay_throughput() {
    let server = NatsServer::start();
    let (_dir, url) = match std::env::var("CQRS_BENCH_BENCH_PG") {
        Ok(pg) if !pg.is_empty() => (tempfile::tempdir().unwrap(), DbUrl::parse(&pg).unwrap()),
        _ => sqlite_url("relay_throughput"),
    };
    let schema = unique_schema("relay");
    let (db, backend) = seeded(&url, &schema, &server.url(), Duration::from_secs(5)).await;
    let events = write(&backend, 0, 6_000).await;
    let js = broker::connect(&server.url()).await.expect("connect");
    let relay = Relay::new(
        db.clone(),
        js,
        cqrs_broker::names_of(&db),
        500,
        Duration::from_millis(20),
    );
    let started = Instant::now();
    let published = publish_all(&relay).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(published, events);
    eprintln!(
        "relay throughput ({}): {published} events in {secs:.2} s = {:.0} events/s",
        url.engine().name(),
        published as f64 / secs
    );
    backend.shutdown().await;
    if db.schema.is_some() {
        cleanup(&db).await;
    }
}
