//! The `replica` backend against a private primary and hot standby (issue [alternatives]
//! 15): replication lag is measured like projection lag, read-your-writes probes ask the
//! standby, and a standby restart mid-run shows up as read errors that stop when it is back,
//! with nothing lost on the primary. The servers are the test's own (`common::pg_cluster`);
//! the machine's server is only the switch that says PostgreSQL tests may run.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::pg_cluster::PgCluster;
use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

/// One private cluster and run at a time: two at once on a small machine measure each other.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A private primary and standby for `test`, held alone, or `None` after saying why not.
fn cluster_for(test: &str) -> Option<(std::sync::MutexGuard<'static, ()>, PgCluster)> {
    pg_url(test)?;
    let one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    Some((one, PgCluster::start(test)?))
}

fn scenario() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/read-replica.toml")
        .display()
        .to_string()
}

fn run_args(c: &PgCluster, out: &Path, duration: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "run",
        &scenario(),
        "--db",
        &c.primary_url(),
        "--replica-db",
        &c.standby_url(),
        "--duration",
        duration,
        "--quiet",
        "--out",
    ])
    .arg(out)
    .args(extra);
    cmd
}

fn results(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

fn run_of<'a>(r: &'a Value, backend: &str) -> &'a Value {
    r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["backend"] == backend)
        .unwrap_or_else(|| panic!("no {backend} run"))
}

#[test]
fn replica_reads_the_standby_and_measures_replication_lag() {
    let Some((_one, c)) = cluster_for("replica_reads_the_standby_and_measures_replication_lag")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_args(&c, &out, "4s", &["--backends", "normalized,replica"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r = results(&out);
    let replica = run_of(&r, "replica");
    let m = &replica["metrics"];
    assert_eq!(m["ops"]["write"]["errors"], 0);
    assert_eq!(m["ops"]["read"]["errors"], 0);
    assert!(m["ops"]["read"]["ok"].as_u64().unwrap() > 0);
    // One lag sample per committed write.
    let lag = m["lag"]["count"].as_u64().unwrap();
    let written = m["ops"]["write"]["ok"].as_u64().unwrap();
    assert!(
        lag > 0 && lag >= written,
        "lag samples {lag}, writes {written}"
    );
    assert!(m["lag"]["p50_us"].as_u64().unwrap() > 0);
    eprintln!(
        "replication lag p50 {} µs, p99 {} µs over {lag} writes",
        m["lag"]["p50_us"], m["lag"]["p99_us"]
    );
    assert!(m["ryw"]["probes"].as_u64().unwrap() > 0);
    // normalized reads the primary and never lags.
    assert_eq!(run_of(&r, "normalized")["metrics"]["lag"]["count"], 0);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("**replica** replication lag: p50"), "{md}");
}

#[test]
fn replica_without_a_standby_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args([
            "run",
            &scenario(),
            "--db",
            "postgres://postgres@127.0.0.1:1/x",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("read-replica.toml: backends: replica reads from a hot standby: give its URL with --replica-db"),
        "{stderr}"
    );
    let o = Command::new(BIN)
        .args([
            "run",
            &scenario(),
            "--replica-db",
            "postgres://postgres@127.0.0.1:1/x",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("replica needs PostgreSQL"), "{stderr}");
}

#[test]
fn a_standby_restart_costs_reads_not_writes() {
    let Some((_one, c)) = cluster_for("a_standby_restart_costs_reads_not_writes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = run_args(
        &c,
        &out,
        "14s",
        &["--backends", "replica", "--keep-db", "--schema", "restart"],
    )
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // Seeding and the warm-up take a few seconds; then the standby goes away for ~2 s.
    let primary = c.primary_url();
    let schema_ready = || {
        let o = Command::new("psql")
            .args([
                &primary,
                "-tAc",
                "SELECT value FROM restart_replica.cqrs_bench_meta WHERE key = 'state'",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).starts_with("ready")
    };
    let mut waited = 0;
    while !schema_ready() {
        std::thread::sleep(Duration::from_millis(200));
        waited += 1;
        assert!(waited < 600, "seeding never finished");
    }
    std::thread::sleep(Duration::from_secs(7));
    c.stop_standby();
    std::thread::sleep(Duration::from_secs(2));
    c.start_standby();
    let status = child.wait().unwrap();
    assert!(status.success(), "the run completes");

    let r = results(&out);
    let m = &run_of(&r, "replica")["metrics"];
    assert_eq!(m["ops"]["write"]["errors"], 0, "writes go to the primary");
    assert!(
        m["ops"]["read"]["errors"].as_u64().unwrap() > 0,
        "reads failed while the standby was down: {}",
        m["ops"]["read"]
    );
    // Reads resumed: the last full seconds served reads without errors.
    let intervals = m["intervals"].as_array().unwrap();
    let tail = &intervals[intervals.len().saturating_sub(3)..intervals.len() - 1];
    assert!(
        tail.iter()
            .all(|i| i["reads"].as_u64().unwrap() > 0 && i["errors"] == 0),
        "reads resume after the restart: {tail:?}"
    );
    // Nothing lost on the primary: every accepted order is there.
    let placed = m["ops"]["write.place_order"]["ok"].as_u64().unwrap();
    let seeded = r["scenario"]["dataset"]["orders"].as_u64().unwrap();
    let o = Command::new("psql")
        .args([
            &primary,
            "-tAc",
            "SELECT COUNT(*) FROM restart_replica.orders",
        ])
        .output()
        .unwrap();
    let orders: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(
        orders >= seeded + placed,
        "orders {orders}, seeded {seeded} + placed {placed}"
    );
}

/// A team's pack on `replica` through `run` (issue [pack]): the ledger's writes on the
/// primary, its queries on the standby, replication lag measured per write, nothing to verify
/// (the write model is the only copy).
#[test]
fn a_pack_runs_on_replica_through_run() {
    let Some((_one, c)) = cluster_for("a_pack_runs_on_replica_through_run") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = dir.path().join("pack-replica.toml");
    std::fs::write(
        &scenario,
        format!(
            "description = \"ledger on a replica\"\nworkload = {:?}\nduration = \"4s\"\n\
             warmup = \"1s\"\nbackends = [\"replica\"]\nryw_share = 0.2\n\
             [dataset]\naccounts = 50\n[writes]\nrate = 20\n[reads]\nrate = 40\n",
            root.join("workloads/ledger").display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        .args(["--db", &c.primary_url(), "--replica-db", &c.standby_url()])
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r = results(&out);
    let replica = run_of(&r, "replica");
    let m = &replica["metrics"];
    assert_eq!(m["ops"]["write"]["errors"], 0);
    assert_eq!(m["ops"]["read"]["errors"], 0);
    assert!(m["ops"]["read.balance"]["count"].as_u64().unwrap() > 0);
    let lag = m["lag"]["count"].as_u64().unwrap();
    let written = m["ops"]["write"]["ok"].as_u64().unwrap();
    assert!(
        lag > 0 && lag >= written,
        "lag samples {lag}, writes {written}"
    );
    assert!(m["ryw"]["probes"].as_u64().unwrap() > 0);
    let verify = &replica["verify"];
    assert_eq!(verify["mismatches"], 0, "{verify}");
    assert!(verify["models"].as_array().unwrap().is_empty(), "{verify}");
}
