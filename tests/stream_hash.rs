//! The op stream is a pure function of the seed: two CLI runs with the same seed report the
//! same `stream_hash` in results.json, another seed a different one; at the library level the
//! ops themselves are identical for the same seed and differ for another.

use std::path::{Path, PathBuf};
use std::process::Command;

use cqrs_bench::dataset::DatasetSpec;
use cqrs_bench::scenario::Scenario;
use cqrs_bench::workload::mix::{stream_hash, OpStream, HASHED_OPS};

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

fn ci_scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci.toml")
}

/// Runs the ci scenario (normalized only, 3 s) into `out` and returns results.json.
fn run_cli(out: &Path, extra: &[&str]) -> serde_json::Value {
    let scenario = ci_scenario();
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--backends",
        "normalized",
        "--duration",
        "3s",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = Command::new(BIN).args(&args).output().expect("run binary");
    assert!(
        o.status.success(),
        "run {args:?} failed ({:?}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json is JSON")
}

#[test]
fn same_seed_same_hash_other_seed_other_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        dir.path().join("A"),
        dir.path().join("B"),
        dir.path().join("C"),
    );
    // Three independent runs; in parallel to keep the test short.
    let (ra, rb, rc) = std::thread::scope(|s| {
        let ha = s.spawn(|| run_cli(&a, &[]));
        let hb = s.spawn(|| run_cli(&b, &[]));
        let hc = s.spawn(|| run_cli(&c, &["--seed", "99"]));
        (ha.join().unwrap(), hb.join().unwrap(), hc.join().unwrap())
    });
    let hash = |r: &serde_json::Value| {
        r["stream_hash"]
            .as_str()
            .expect("stream_hash is a string")
            .to_string()
    };
    let (ha, hb, hc) = (hash(&ra), hash(&rb), hash(&rc));
    assert!(
        ha.len() == 16 && ha.chars().all(|c| c.is_ascii_hexdigit()),
        "stream_hash {ha:?} should be 16 hex digits"
    );
    assert_eq!(ha, hb, "same seed, same stream");
    assert_ne!(ha, hc, "seed 99 must give another stream");
    assert_eq!(ra["seed"], rb["seed"]);
    assert_eq!(rc["seed"], 99);
    assert_eq!(
        rc["scenario"]["seed"], 99,
        "--seed overrides the scenario's seed"
    );
    // The timing differs between the runs, the stream does not: the hash is not a digest of
    // the whole file.
    assert_eq!(ra["runs"].as_array().unwrap().len(), 1);

    // The CLI's hash is the library's hash of the scenario's stream, over a fixed number of
    // ops whatever the duration.
    let s = Scenario::load(&ci_scenario()).expect("ci scenario");
    let stream = OpStream::new(s.seed, &s.dataset, &s.mix_spec());
    assert_eq!(
        stream_hash(&stream, HASHED_OPS, HASHED_OPS),
        ha,
        "results.json's stream_hash is stream_hash() of the run's op stream"
    );
}

fn ops(seed: u64, spec: &DatasetSpec, s: &Scenario, n: u64) -> (Vec<String>, Vec<String>) {
    let stream = OpStream::new(seed, spec, &s.mix_spec());
    let w = (0..n)
        .map(|i| format!("{:?}", stream.write_op(i).expect("writes in the mix")))
        .collect();
    let r = (0..n)
        .map(|j| format!("{:?}", stream.read_op(j).expect("reads in the mix")))
        .collect();
    (w, r)
}

#[test]
fn op_stream_is_a_function_of_the_seed() {
    let s = Scenario::load(&ci_scenario()).expect("ci scenario");
    let spec = s.dataset.clone();
    let n = 2_000;
    let (w1, r1) = ops(7, &spec, &s, n);
    let (w2, r2) = ops(7, &spec, &s, n);
    let (w3, r3) = ops(8, &spec, &s, n);
    assert_eq!(w1, w2, "same seed: identical writes");
    assert_eq!(r1, r2, "same seed: identical reads");
    let wdiff = w1.iter().zip(&w3).filter(|(a, b)| a != b).count();
    let rdiff = r1.iter().zip(&r3).filter(|(a, b)| a != b).count();
    assert!(
        wdiff > n as usize / 2,
        "another seed changes most writes ({wdiff} of {n} differ)"
    );
    assert!(
        rdiff > n as usize / 4,
        "another seed changes many reads ({rdiff} of {n} differ)"
    );

    // Random access: op i does not depend on having generated ops 0..i first.
    let stream = OpStream::new(7, &spec, &s.mix_spec());
    for i in [1_999u64, 0, 1_000, 17] {
        assert_eq!(format!("{:?}", stream.write_op(i).unwrap()), w1[i as usize]);
        assert_eq!(format!("{:?}", stream.read_op(i).unwrap()), r1[i as usize]);
    }

    // The hash follows the same rule.
    let h = |seed| stream_hash(&OpStream::new(seed, &spec, &s.mix_spec()), 500, 1_000);
    assert_eq!(h(7), h(7));
    assert_ne!(h(7), h(8));
}
