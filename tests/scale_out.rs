//! Scale-out (issue 29): one scenario driven by 1, 2 and 4 local processes (`run --segment
//! I/N`, SQLite, a fixed rate) and merged. The op counts are exact by design: with a fixed
//! rate and duration the ops due are `rate * duration` per lane, and op i is segment
//! (i mod N) + 1's, so each segment's count and their sum are derived by hand here. The merged
//! percentiles are checked to come from the summed histograms (and, on hand-built histograms,
//! against hand-computed values); no latency is compared with a single run's (timings flake).
//! Parts that do not belong together are refused with exit 2 naming the field and the files.
//! The example Kubernetes manifest is valid YAML and its scripts run here as local processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cqrs_bench::domain::CommandKind;
use cqrs_bench::metrics::histograms::decode;
use cqrs_bench::metrics::merge::merge_metrics;
use cqrs_bench::metrics::{OpKey, Outcome, Recorder};
use serde_json::Value;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

/// 40 writes/s and 40 reads/s for 2 s: 80 ops due per lane, 160 in all.
const SCENARIO: &str = r#"description = "scale-out test"
seed = 5
duration = "2s"
warmup = "500ms"
backends = ["normalized"]
ryw_share = 0.0

[dataset]
categories = 4
products = 30
users = 30
orders = 50
reviews = 50
price_changes = 10
days = 3

[writes]
rate = 40
workers = 2
mix = { place_order = 50, pay_order = 15, ship_order = 10, cancel_order = 5, add_review = 10, change_price = 5, restock = 5 }

[reads]
rate = 40
workers = 2
mix = { product_page = 40, user_orders = 20, search = 20, daily_revenue = 10, top_products = 10 }
"#;
const DUE_PER_LANE: u64 = 80;
const DUE: u64 = 2 * DUE_PER_LANE;

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the binary")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("results.json")).expect("json")
}

/// Every op of the single run of a results file: started (warm-up too) or never started.
fn ops_total(results: &Value) -> u64 {
    let run = &results["runs"][0]["metrics"];
    let count = |k: &str| run["ops"][k]["count"].as_u64().unwrap_or(0);
    run["warmup"]["ops"].as_u64().unwrap()
        + count("write")
        + count("read")
        + run["unstarted"]["writes"].as_u64().unwrap()
        + run["unstarted"]["reads"].as_u64().unwrap()
}

/// Hand-derived: ops 0..80 of a lane in N shares; segment I gets those with i mod N = I - 1.
fn share(index: u64, count: u64) -> u64 {
    (0..DUE_PER_LANE).filter(|i| i % count == index - 1).count() as u64
}

/// A start far enough ahead for every process to seed (or wait) and calibrate.
fn start_at(ahead: Duration) -> String {
    let at = SystemTime::now() + ahead;
    format!("{}", at.duration_since(UNIX_EPOCH).unwrap().as_secs())
}

/// Runs `count` segments as local processes on one SQLite database; returns their results.
fn run_segments(dir: &Path, scenario: &Path, count: u32) -> Vec<PathBuf> {
    let db = format!(
        "sqlite://{}",
        dir.join(format!("shared{count}.db")).display()
    );
    run_segments_on(dir, scenario, count, &db, &[])
}

/// Runs segments 1..=`count` of `scenario` on `db` as separate processes (`extra` is added to
/// each command line) and returns their `results.json` paths.
fn run_segments_on(
    dir: &Path,
    scenario: &Path,
    count: u32,
    db: &str,
    extra: &[&str],
) -> Vec<PathBuf> {
    let at = start_at(Duration::from_secs(6 + 2 * u64::from(count)));
    let children: Vec<(PathBuf, std::process::Child)> = (1..=count)
        .map(|i| {
            let out = dir.join(format!("n{count}-segment-{i}"));
            let child = Command::new(BIN)
                .args([
                    "run",
                    scenario.to_str().unwrap(),
                    "--db",
                    db,
                    "--segment",
                    &format!("{i}/{count}"),
                    "--start-at",
                    &at,
                    "--quiet",
                    "--out",
                    out.to_str().unwrap(),
                ])
                .args(extra)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn a segment");
            (out, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(out, child)| {
            let o = child.wait_with_output().expect("segment finished");
            assert!(
                o.status.success(),
                "segment {}: {}",
                out.display(),
                text(&o)
            );
            out.join("results.json")
        })
        .collect()
}

fn merge(parts: &[PathBuf], out: &Path) -> Output {
    let mut args = vec!["merge".to_string()];
    args.extend(parts.iter().map(|p| p.display().to_string()));
    args.extend(["--out".to_string(), out.display().to_string()]);
    Command::new(BIN).args(&args).output().expect("merge")
}

/// The histogram `text` encodes, summed over the parts at `pointer` (a JSON pointer).
fn summed(parts: &[Value], pointer: &str) -> hdrhistogram::Histogram<u64> {
    let mut sum = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for p in parts {
        let text = p.pointer(pointer).and_then(Value::as_str).expect(pointer);
        sum.add(decode(text).unwrap()).unwrap();
    }
    sum
}

fn scenario_file(dir: &Path) -> PathBuf {
    let path = dir.join("scale-out.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    path
}

#[test]
fn one_two_and_four_processes_add_up_to_the_single_stream() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_file(dir.path());
    // The single process, without segments: its own database.
    let single_out = dir.path().join("single");
    let o = run(&[
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--out",
        single_out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let single = load(&single_out.join("results.json"));
    assert_eq!(ops_total(&single), DUE, "the single run's stream");
    assert!(single.get("segment").is_none());
    assert!(single["runs"][0]["metrics"].get("histograms").is_none());

    for count in [1u32, 2, 4] {
        let files = run_segments(dir.path(), &scenario, count);
        let parts: Vec<Value> = files.iter().map(|f| load(f)).collect();
        let mut sum = 0;
        for (i, p) in parts.iter().enumerate() {
            let index = i as u64 + 1;
            assert_eq!(p["segment"]["index"], index, "{count}");
            assert_eq!(p["segment"]["count"], count, "{count}");
            // The hash covers the whole stream, whichever share a process drove.
            assert_eq!(p["stream_hash"], single["stream_hash"], "{count}/{index}");
            let ops = p["segment"]["ops"].as_u64().unwrap();
            assert_eq!(
                ops,
                2 * share(index, u64::from(count)),
                "segment {index}/{count}"
            );
            assert_eq!(ops, ops_total(p), "segment {index}/{count}");
            // Each process's target is its share of the scenario's 40/s per lane.
            let rates = &p["runs"][0]["rates"];
            assert_eq!(rates["write_target"], 40.0 / f64::from(count), "{count}");
            assert_eq!(rates["read_target"], 40.0 / f64::from(count), "{count}");
            sum += ops;
            // Every interval has its histograms.
            let m = &p["runs"][0]["metrics"];
            assert_eq!(
                m["histograms"]["intervals"].as_array().unwrap().len(),
                m["intervals"].as_array().unwrap().len()
            );
        }
        assert_eq!(sum, DUE, "{count} segments");

        let merged_out = dir.path().join(format!("merged{count}"));
        let o = merge(&files, &merged_out);
        assert!(o.status.success(), "{}", text(&o));
        let merged = load(&merged_out.join("results.json"));
        assert_eq!(merged["merged"]["segments"], count);
        assert_eq!(merged["stream_hash"], single["stream_hash"]);
        assert_eq!(ops_total(&merged), DUE, "merged {count}");
        // The shares' targets add up to the scenario's rates.
        assert_eq!(merged["runs"][0]["rates"]["write_target"], 40.0);
        assert_eq!(merged["runs"][0]["rates"]["read_target"], 40.0);
        assert!(merged_out.join("report.md").exists(), "a report is written");

        // The merged percentiles are those of the summed histograms, not of the parts'.
        let m = &merged["runs"][0]["metrics"];
        for kind in ["write", "read"] {
            let latency = &m["ops"][kind]["latency"];
            let mut sum =
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
            let kinds: Vec<String> = parts[0]["runs"][0]["metrics"]["histograms"]["ops"]
                .as_object()
                .unwrap()
                .keys()
                .chain(
                    parts
                        .iter()
                        .flat_map(|p| p["runs"][0]["metrics"]["histograms"]["ops"].as_object())
                        .flat_map(|o| o.keys()),
                )
                .filter(|k| k.starts_with(&format!("{kind}.")))
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            for k in &kinds {
                let present: Vec<Value> = parts
                    .iter()
                    .filter(|p| {
                        p["runs"][0]["metrics"]["histograms"]["ops"]
                            .get(k.as_str())
                            .is_some()
                    })
                    .cloned()
                    .collect();
                let part_sum = summed(
                    &present,
                    &format!("/runs/0/metrics/histograms/ops/{k}/latency"),
                );
                sum.add(part_sum).unwrap();
            }
            assert_eq!(
                latency["count"].as_u64().unwrap(),
                sum.len(),
                "{count} {kind}"
            );
            if !sum.is_empty() {
                assert_eq!(
                    latency["p50_us"],
                    sum.value_at_quantile(0.5),
                    "{count} {kind}"
                );
                assert_eq!(
                    latency["p99_us"],
                    sum.value_at_quantile(0.99),
                    "{count} {kind}"
                );
            }
        }
        // Interval by interval too.
        let intervals = m["intervals"].as_array().unwrap();
        for (i, iv) in intervals.iter().enumerate() {
            let present: Vec<Value> = parts
                .iter()
                .filter(|p| p["runs"][0]["metrics"]["intervals"].get(i).is_some())
                .cloned()
                .collect();
            let h = summed(
                &present,
                &format!("/runs/0/metrics/histograms/intervals/{i}/write"),
            );
            if !h.is_empty() {
                assert_eq!(
                    iv["write_p99_us"],
                    h.value_at_quantile(0.99),
                    "interval {i}"
                );
            }
        }
    }
}

/// Drops a PostgreSQL schema the test's runs created, however the test ends.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["drop", "--db", &self.url, "--schema", &self.schema])
            .output();
    }
}

#[test]
fn two_processes_on_postgres_with_cqrs_async_add_up_and_their_read_models_verify() {
    let test = "two_processes_on_postgres_with_cqrs_async_add_up_and_their_read_models_verify";
    let Some(url) = common::pg_env(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_file(dir.path());
    let prefix = common::unique_schema("scale_out");
    let schema = format!("{prefix}_cqrs_async");
    let _drop = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let files = run_segments_on(
        dir.path(),
        &scenario,
        2,
        &url,
        &["--backends", "cqrs-async", "--schema", &prefix],
    );
    let parts: Vec<Value> = files.iter().map(|f| load(f)).collect();
    for (i, p) in parts.iter().enumerate() {
        let index = i as u64 + 1;
        assert_eq!(p["runs"][0]["backend"], "cqrs-async");
        assert_eq!(
            p["segment"]["ops"],
            2 * share(index, 2),
            "segment {index}/2"
        );
    }
    // Segment 1 alone runs the projector, so only its part measures lag.
    let lag_count = |p: &Value| {
        p["runs"][0]["metrics"]["lag"]["count"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(lag_count(&parts[0]) > 0, "segment 1 measures the lag");
    assert_eq!(lag_count(&parts[1]), 0, "segment 2 runs no projector");

    let merged_out = dir.path().join("merged-pg");
    let o = merge(&files, &merged_out);
    assert!(o.status.success(), "{}", text(&o));
    let merged = load(&merged_out.join("results.json"));
    assert_eq!(ops_total(&merged), DUE, "the merged stream on PostgreSQL");
    assert_eq!(merged["stream_hash"], parts[0]["stream_hash"]);

    // Segment 2's last writes may commit after segment 1's projector caught up: apply the
    // rest, then every read model must equal its truth over both processes' writes.
    let o = run(&[
        "projector",
        "--db",
        &url,
        "--schema",
        &schema,
        "--until-idle",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["verify", "--db", &url, "--schema", &schema]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("verify: ok"), "{}", text(&o));
}

/// Builds a run's metrics (with histograms) whose write latencies are `samples` (µs, count).
fn metrics_of(samples: &[(u64, u64)]) -> cqrs_bench::metrics::RunMetrics {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1)).keeping_histograms();
    let intended = t0 + Duration::from_millis(10);
    for (us, n) in samples {
        for _ in 0..*n {
            r.record_op(
                OpKey::Write(CommandKind::PlaceOrder.into()),
                intended,
                intended,
                intended + Duration::from_micros(*us),
                Outcome::Ok,
            );
        }
    }
    r.finish(t0 + Duration::from_secs(1))
}

#[test]
fn merging_two_known_histograms_gives_the_hand_computed_percentiles() {
    // Part A: 985 samples at 100 µs, 15 at 1000 µs (1.5 %: its p99 is 1000).
    // Part B: 1000 samples at 500 µs.
    // Together, sorted: 985 x 100, then 1000 x 500 (ranks 986..1985), then 15 x 1000. The
    // median (rank 1000) and the p99 (rank 1980) are both 500 µs. Averaging the parts'
    // percentiles would give p50 300 and p99 750; their larger p99 would give 1000.
    let a = metrics_of(&[(100, 985), (1000, 15)]);
    let b = metrics_of(&[(500, 1000)]);
    assert_eq!(a.ops["write"].latency.p99_us, 1000);
    assert_eq!(b.ops["write"].latency.p50_us, 500);
    let m = merge_metrics(&[&a, &b]).unwrap();
    for key in ["write", "write.place_order"] {
        let l = &m.ops[key].latency;
        assert_eq!(l.count, 2000, "{key}");
        assert_eq!((l.p50_us, l.p99_us, l.max_us), (500, 500, 1000), "{key}");
        assert_eq!(m.ops[key].count, 2000);
    }
    // The one interval, from its summed histograms.
    assert_eq!(m.intervals.len(), 1);
    let iv = &m.intervals[0];
    assert_eq!(iv.writes, 2000);
    assert_eq!(
        (iv.write_p50_us, iv.write_p99_us, iv.write_max_us),
        (500, 500, 1000)
    );
    // A part without histograms cannot be merged.
    let mut bare = b.clone();
    bare.histograms = None;
    let e = merge_metrics(&[&a, &bare]).unwrap_err().to_string();
    assert!(e.contains("part 2") && e.contains("--segment"), "{e}");
}

/// Refusals are exit 2, naming the field and the files, and write nothing.
#[test]
fn parts_that_do_not_belong_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_file(dir.path());
    let files = run_segments(dir.path(), &scenario, 2);
    let part = |i: usize| load(&files[i]);
    let write = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
        p
    };
    let refused = |parts: &[PathBuf], expect: &[&str]| {
        let out = dir.path().join("refused");
        let o = merge(parts, &out);
        assert_eq!(o.status.code(), Some(2), "{expect:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        for e in expect {
            assert!(err.contains(e), "expected {e:?} in: {err}");
        }
        assert!(!out.join("results.json").exists(), "{expect:?}");
    };
    let f0 = files[0].display().to_string();
    let f1 = files[1].display().to_string();

    // Another scenario.
    let mut other = part(1);
    other["scenario"]["name"] = "another".into();
    let other_file = write("other-scenario.json", &other);
    refused(
        &[files[0].clone(), other_file.clone()],
        &["scenario.name", &f0, &other_file.display().to_string()],
    );
    // Another seed.
    let mut seeded = part(1);
    seeded["seed"] = 6.into();
    let seeded_file = write("other-seed.json", &seeded);
    refused(&[files[0].clone(), seeded_file], &["seed differs", &f0]);
    // Another stream.
    let mut stream = part(1);
    stream["stream_hash"] = "0000000000000000".into();
    refused(
        &[files[0].clone(), write("other-stream.json", &stream)],
        &["stream_hash"],
    );
    // Another scenario field (the same name).
    let mut rate = part(1);
    rate["scenario"]["duration"] = "3s".into();
    refused(
        &[files[0].clone(), write("other-duration.json", &rate)],
        &["scenario.duration"],
    );
    // The same segment twice.
    refused(
        &[files[0].clone(), files[0].clone()],
        &["segment 1/2 appears twice", &f0],
    );
    let mut dup = part(1);
    dup["segment"]["index"] = 1.into();
    let dup_file = write("dup.json", &dup);
    refused(
        &[files[0].clone(), dup_file],
        &["segment 1/2 appears twice"],
    );
    // A segment missing.
    refused(&[files[0].clone()], &["segments missing: 2/2", &f0]);
    // Segments of runs split another way.
    let mut three = part(1);
    three["segment"]["count"] = 3.into();
    refused(
        &[files[0].clone(), write("three.json", &three)],
        &["segment.count", "2", "3"],
    );
    // Windows that do not overlap (the second part measured an hour later).
    let mut later = part(1);
    for key in ["from_unix_s", "to_unix_s"] {
        let v = later["runs"][0]["measured_window"][key].as_f64().unwrap();
        later["runs"][0]["measured_window"][key] = (v + 3600.0).into();
    }
    let later_file = write("later.json", &later);
    refused(
        &[files[0].clone(), later_file.clone()],
        &["do not overlap", &later_file.display().to_string(), &f0],
    );
    // A run that is not a segment.
    let mut whole = part(1);
    whole.as_object_mut().unwrap().remove("segment");
    let whole_file = write("whole.json", &whole);
    refused(
        &[files[0].clone(), whole_file.clone()],
        &["not a segment", &whole_file.display().to_string()],
    );
    // And the two real parts merge.
    let o = merge(&files, &dir.path().join("ok"));
    assert!(o.status.success(), "{f0} {f1}: {}", text(&o));
}

#[test]
fn bad_segment_arguments_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_file(dir.path());
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let at = start_at(Duration::from_secs(60));
    let s = scenario.to_str().unwrap();
    for (segment, says) in [
        ("0/4", "shares are numbered 1 to 4"),
        ("5/4", "shares are numbered 1 to 4"),
        ("1/0", "count 0"),
        ("junk", "is not I/N"),
        ("a/4", "not a whole number"),
    ] {
        let out = dir.path().join("out");
        let o = run(&[
            "run",
            s,
            "--db",
            &db,
            "--segment",
            segment,
            "--start-at",
            &at,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{segment}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("--segment") && err.contains(says),
            "{segment}: {err}"
        );
        assert!(!out.exists(), "{segment}: nothing written");
    }
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    for (args, says) in [
        (vec!["--db", &db, "--segment", "2/2"], "give --start-at"),
        (
            vec!["--segment", "2/2", "--start-at", &at],
            "give it with --db",
        ),
        (
            vec!["--db", &db, "--segment", "1/2", "--start-at", "tomorrow"],
            "\"tomorrow\" is neither",
        ),
        (
            vec![
                "--db",
                &db,
                "--segment",
                "1/2",
                "--start-at",
                &at,
                "--backends",
                "normalized,cqrs-sync",
            ],
            "a segment drives one",
        ),
        (
            vec!["--db", &db, "--segment", "2/2", "--start-at", "1000"],
            "has passed",
        ),
    ] {
        let mut all = vec!["run", s, "--quiet", "--out", out];
        all.extend(args.iter().copied());
        let o = run(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// The example deployment: valid YAML of the documented shape, and its two scripts run here
/// as local processes (the segments with JOB_COMPLETION_INDEX 0..3 as Kubernetes sets it,
/// then the merge), on SQLite and the small scenario.
#[test]
fn the_kubernetes_example_is_valid_and_its_commands_run_locally() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scale-out/k8s.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .collect();
    let by_name = |name: &str| {
        docs.iter()
            .find(|d| d["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name} in the manifest"))
    };
    // The scenario in the ConfigMap parses.
    let cm = by_name("cqrs-bench-scenario");
    assert_eq!(cm["kind"].as_str(), Some("ConfigMap"));
    let toml = cm["data"]["scenario.toml"].as_str().unwrap();
    cqrs_bench::scenario::Scenario::parse(toml, "k8s.yaml", "scale-out").expect("scenario");

    let job = by_name("cqrs-bench-segments");
    assert_eq!(job["kind"].as_str(), Some("Job"));
    assert_eq!(job["spec"]["completionMode"].as_str(), Some("Indexed"));
    let n = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(n));
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let env = |c: &serde_yaml::Value, name: &str| {
        c["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    };
    assert_eq!(env(container, "SEGMENTS"), Some(n.to_string()));
    let script = |c: &serde_yaml::Value| {
        assert_eq!(c["command"][0].as_str(), Some("sh"));
        c["args"][0].as_str().unwrap().to_string()
    };
    let segment_script = script(container);
    assert!(segment_script.contains("JOB_COMPLETION_INDEX + 1"));
    assert!(segment_script.contains("--start-at \"$START_AT\""));
    let merge_job = by_name("cqrs-bench-merge");
    let merge_container = &merge_job["spec"]["template"]["spec"]["containers"][0];
    let merge_script = script(merge_container);
    assert!(merge_script.contains("cqrs-bench merge"));

    // The same scripts, as local processes: `cqrs-bench` on the PATH is this build.
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_file(dir.path());
    let results = dir.path().join("results");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let db = format!("sqlite://{}", dir.path().join("k8s.db").display());
    let at = start_at(Duration::from_secs(6 + 2 * n));
    let pods: Vec<std::process::Child> = (0..n)
        .map(|k| {
            Command::new("sh")
                .args(["-c", &segment_script])
                .env("PATH", &path)
                .env("JOB_COMPLETION_INDEX", k.to_string())
                .env("SEGMENTS", n.to_string())
                .env("START_AT", &at)
                .env("SCENARIO", &scenario)
                .env("RESULTS", &results)
                .env("CQRS_BENCH_DB", &db)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("a pod's script")
        })
        .collect();
    for pod in pods {
        let o = pod.wait_with_output().unwrap();
        assert!(o.status.success(), "segment: {}", self::text(&o));
    }
    let o = Command::new("sh")
        .args(["-c", &merge_script])
        .env("PATH", &path)
        .env("SEGMENTS", n.to_string())
        .env("RESULTS", &results)
        .output()
        .unwrap();
    assert!(o.status.success(), "merge: {}", self::text(&o));
    let merged = load(&results.join("merged/results.json"));
    assert_eq!(merged["merged"]["segments"], n);
    assert_eq!(ops_total(&merged), DUE);
}
