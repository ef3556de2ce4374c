//! The `run` command refuses bad input with exit code 2 before it touches a database: every
//! invalid-scenario case names the file and the offending field path on stderr, and nothing
//! (no database file, no results) is written to the output folder. Bad or unreachable `--db`
//! URLs also exit 2, quickly, and never echo a password.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

/// Top-level keys of a valid scenario (based on scenarios/ci.toml). `{TOP}` is replaced by extra
/// top-level lines; they must come before the first table header.
const BASE_TOP: &str = r#"description = "scenario_cli test"
seed = 1
duration = "2s"
warmup = "1s"
backends = ["normalized"]
ryw_share = 0.2
"#;

const DATASET: &str = r#"
[dataset]
categories = 4
products = 30
users = 30
orders = 50
reviews = 50
price_changes = 10
days = 3
"#;

const WRITES: &str = r#"
[writes]
rate = 50
workers = 2
mix = { place_order = 50, pay_order = 15, ship_order = 10, cancel_order = 5, add_review = 10, change_price = 5, restock = 5 }
"#;

const READS: &str = r#"
[reads]
rate = 100
workers = 2
mix = { product_page = 40, user_orders = 20, search = 20, daily_revenue = 10, top_products = 10 }
"#;

const KEYS: &str = r#"
[keys]
products = { kind = "zipf", exponent = 1.0 }
"#;

/// A scenario assembled from parts; each part can be replaced.
struct Parts {
    top: String,
    dataset: String,
    writes: String,
    reads: String,
    keys: String,
}

impl Parts {
    fn valid() -> Self {
        Parts {
            top: BASE_TOP.to_string(),
            dataset: DATASET.to_string(),
            writes: WRITES.to_string(),
            reads: READS.to_string(),
            keys: KEYS.to_string(),
        }
    }

    fn text(&self) -> String {
        format!(
            "{}{}{}{}{}",
            self.top, self.dataset, self.writes, self.reads, self.keys
        )
    }
}

/// Replaces the line starting with `key =` in `text` by `line`, panicking if absent.
fn replace_line(text: &str, key: &str, line: &str) -> String {
    let prefix = format!("{key} =");
    assert!(
        text.lines().any(|l| l.starts_with(&prefix)),
        "no line {prefix} in {text}"
    );
    text.lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the binary")
}

/// Everything below `dir` (files and folders), for a helpful failure message.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            if e.path().is_dir() {
                out.extend(listing(&e.path()));
            }
        }
    }
    out
}

/// Asserts that nothing was written into `out` (it may not even exist).
fn assert_nothing_written(out: &Path, case: &str) {
    let files = listing(out);
    assert!(
        files.is_empty(),
        "{case}: the output folder must stay empty before the scenario is valid, found {files:?}"
    );
}

/// Writes `text` as `<name>.toml`, runs it, and checks exit 2, the file name and every
/// expected field path on stderr, and an untouched output folder.
fn expect_invalid(name: &str, text: &str, paths: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("write scenario");
    let out = dir.path().join("out");
    let o = run(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{name}: expected exit 2, got {:?}\nstderr:\n{stderr}\nscenario:\n{text}",
        o.status
    );
    let file_name = format!("{name}.toml");
    for path in paths {
        // One line per problem: `FILE: field.path: message`.
        let hit = stderr
            .lines()
            .any(|l| l.contains(&file_name) && l.contains(&format!(": {path}: ")));
        assert!(
            hit,
            "{name}: stderr must have a line `{file_name}: {path}: ...`, got:\n{stderr}"
        );
    }
    assert_nothing_written(&out, name);
}

#[test]
fn the_valid_base_parses() {
    // Guard: the base must be valid, or every negative case below would pass vacuously.
    let text = Parts::valid().text();
    cqrs_bench::scenario::Scenario::parse(&text, "base.toml", "base")
        .unwrap_or_else(|e| panic!("the base scenario must be valid:\n{e}"));
}

#[test]
fn bad_budgets_exit_2_naming_each_field() {
    let mut p = Parts::valid();
    p.keys.push_str(
        "\n[budgets]\nwrite.p99 = \"50\"\nstaleness.p99 = \"soon\"\nerrors = \"0\"\nstorage = \"2 parsecs\"\n",
    );
    expect_invalid(
        "bad_budgets",
        &p.text(),
        &[
            "budgets.write.p99",
            "budgets.staleness.p99",
            "budgets.errors",
            "budgets.storage",
        ],
    );
}

#[test]
fn unknown_top_level_key() {
    let mut p = Parts::valid();
    p.top.push_str("colour = \"blue\"\n");
    expect_invalid("unknown_top", &p.text(), &["colour"]);
}

#[test]
fn unknown_nested_key_in_table() {
    let mut p = Parts::valid();
    p.writes.push_str("burst = 3\n");
    expect_invalid("unknown_writes_key", &p.text(), &["writes.burst"]);
}

#[test]
fn unknown_nested_key_in_inline_table() {
    let mut p = Parts::valid();
    p.keys = "\n[keys]\nproducts = { kind = \"zipf\", exponent = 1.0, skew = 2 }\n".into();
    expect_invalid("unknown_keys_key", &p.text(), &["keys.products.skew"]);
}

#[test]
fn unknown_op_kind_in_mix() {
    let mut p = Parts::valid();
    p.writes = replace_line(&p.writes, "mix", "mix = { place_order = 1, refund = 2 }");
    expect_invalid("unknown_mix_key", &p.text(), &["writes.mix.refund"]);
}

#[test]
fn wrong_type_top_level() {
    let mut p = Parts::valid();
    p.top = replace_line(&p.top, "seed", "seed = \"one\"");
    expect_invalid("wrong_type_seed", &p.text(), &["seed"]);
}

#[test]
fn wrong_type_nested() {
    let mut p = Parts::valid();
    p.writes = replace_line(&p.writes, "workers", "workers = \"two\"");
    p.dataset = replace_line(&p.dataset, "products", "products = 1.5");
    expect_invalid(
        "wrong_type_nested",
        &p.text(),
        &["writes.workers", "dataset.products"],
    );
}

#[test]
fn negative_rate() {
    let mut p = Parts::valid();
    p.writes = replace_line(&p.writes, "rate", "rate = -5");
    expect_invalid("negative_rate", &p.text(), &["writes.rate"]);
}

#[test]
fn write_mix_summing_to_zero() {
    let mut p = Parts::valid();
    p.writes = replace_line(
        &p.writes,
        "mix",
        "mix = { place_order = 0, pay_order = 0, restock = 0 }",
    );
    expect_invalid("zero_mix", &p.text(), &["writes.mix"]);
}

#[test]
fn zipf_exponent_zero() {
    let mut p = Parts::valid();
    p.keys = "\n[keys]\nproducts = { kind = \"zipf\", exponent = 0.0 }\n".into();
    expect_invalid("zipf_zero", &p.text(), &["keys.products.exponent"]);
}

#[test]
fn zipf_exponent_negative() {
    let mut p = Parts::valid();
    p.keys = "\n[keys]\nusers = { kind = \"zipf\", exponent = -1.2 }\n".into();
    expect_invalid("zipf_negative", &p.text(), &["keys.users.exponent"]);
}

#[test]
fn warmup_equal_to_duration() {
    let mut p = Parts::valid();
    p.top = replace_line(&p.top, "warmup", "warmup = \"2s\"");
    expect_invalid("warmup_eq", &p.text(), &["warmup"]);
}

#[test]
fn warmup_longer_than_duration() {
    let mut p = Parts::valid();
    p.top = replace_line(&p.top, "warmup", "warmup = \"3000ms\"");
    expect_invalid("warmup_gt", &p.text(), &["warmup"]);
}

#[test]
fn empty_backend_list() {
    let mut p = Parts::valid();
    p.top = replace_line(&p.top, "backends", "backends = []");
    expect_invalid("no_backends", &p.text(), &["backends"]);
}

#[test]
fn unknown_backend() {
    let mut p = Parts::valid();
    p.top = replace_line(&p.top, "backends", "backends = [\"normalized\", \"mongo\"]");
    expect_invalid("unknown_backend", &p.text(), &["backends[1]"]);
}

#[test]
fn several_problems_are_all_reported() {
    let mut p = Parts::valid();
    p.top = replace_line(&p.top, "backends", "backends = []");
    p.writes = replace_line(&p.writes, "rate", "rate = -1");
    p.keys = "\n[keys]\nproducts = { kind = \"zipf\", exponent = 0 }\n".into();
    expect_invalid(
        "many_problems",
        &p.text(),
        &["backends", "writes.rate", "keys.products.exponent"],
    );
}

#[test]
fn nonexistent_scenario_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("does_not_exist.toml");
    let out = dir.path().join("out");
    let o = run(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("does_not_exist.toml"), "stderr:\n{stderr}");
    assert_nothing_written(&out, "nonexistent file");
}

/// Runs the valid base scenario with `--db url`; returns (exit code, stderr+stdout, elapsed).
fn run_with_db(url: &str) -> (Option<i32>, String, Duration, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("base.toml");
    std::fs::write(&file, Parts::valid().text()).expect("write scenario");
    let out = dir.path().join("out");
    let t0 = Instant::now();
    let o = run(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--db",
        url,
        "--out",
        out.to_str().unwrap(),
    ]);
    let elapsed = t0.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    (o.status.code(), text, elapsed, dir)
}

#[test]
fn unsupported_db_scheme_exits_2() {
    let (code, text, _, _dir) = run_with_db("mysql://x");
    assert_eq!(code, Some(2), "output:\n{text}");
    assert!(!text.trim().is_empty(), "an error message is expected");
}

#[test]
fn unsupported_db_scheme_with_password_is_not_echoed() {
    let (code, text, _, _dir) = run_with_db("mysql://u:secret@127.0.0.1:1/x");
    assert_eq!(code, Some(2), "output:\n{text}");
    assert!(!text.contains("secret"), "password leaked:\n{text}");
}

#[test]
fn connection_refused_exits_2_quickly_without_password() {
    // Port 1 on localhost: nothing listens, so the connection is refused at once.
    let (code, text, elapsed, dir) = run_with_db("postgres://u:secret@127.0.0.1:1/x");
    assert_eq!(code, Some(2), "output:\n{text}");
    assert!(!text.contains("secret"), "password leaked:\n{text}");
    assert!(
        elapsed < Duration::from_secs(8),
        "a refused connection must fail fast, took {elapsed:?}"
    );
    let out = dir.path().join("out");
    assert!(
        !listing(&out)
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == "results.json")),
        "no results for a failed connection"
    );
}

#[test]
fn malformed_postgres_url_does_not_echo_password() {
    // A URL that fails to parse (bad port) must not be echoed back with its password.
    let (code, text, _, _dir) = run_with_db("postgres://u:secret@127.0.0.1:notaport/x");
    assert_eq!(code, Some(2), "output:\n{text}");
    assert!(!text.contains("secret"), "password leaked:\n{text}");
}

#[test]
fn dataset_sizes_beyond_what_the_tool_takes() {
    // Once an allocation abort ("memory allocation of 8000000000008 bytes failed").
    let mut p = Parts::valid();
    p.dataset = replace_line(&p.dataset, "products", "products = 1000000000000");
    p.dataset = replace_line(&p.dataset, "days", "days = 1000000");
    expect_invalid(
        "huge_products",
        &p.text(),
        &["dataset.products", "dataset.days"],
    );
    // Each field within its bound, but together more than the tool seeds anywhere.
    let mut p = Parts::valid();
    p.dataset = replace_line(&p.dataset, "orders", "orders = 9000000000");
    p.dataset = replace_line(&p.dataset, "reviews", "reviews = 9000000000");
    expect_invalid("huge_dataset", &p.text(), &["dataset"]);
}

#[test]
fn snapshot_every_negative_or_fractional() {
    let mut p = Parts::valid();
    p.keys.push_str("\n[event_sourcing]\nsnapshot_every = -5\n");
    expect_invalid(
        "snapshot_negative",
        &p.text(),
        &["event_sourcing.snapshot_every"],
    );
    let mut p = Parts::valid();
    p.keys
        .push_str("\n[event_sourcing]\nsnapshot_every = 1.5\n");
    expect_invalid(
        "snapshot_fraction",
        &p.text(),
        &["event_sourcing.snapshot_every"],
    );
}

#[test]
fn extra_product_indexes_out_of_range() {
    // Issue [search] 16: 0 to 20 extra indexes on `products`.
    for (n, bad) in [
        ("21", true),
        ("-1", true),
        ("\"five\"", true),
        ("20", false),
    ] {
        let mut p = Parts::valid();
        p.dataset
            .push_str(&format!("extra_product_indexes = {n}\n"));
        if bad {
            expect_invalid(
                "extra_indexes",
                &p.text(),
                &["dataset.extra_product_indexes"],
            );
        } else {
            let s = cqrs_bench::scenario::Scenario::parse(&p.text(), "ok.toml", "ok")
                .unwrap_or_else(|e| panic!("20 extra indexes are allowed:\n{e}"));
            assert_eq!(s.dataset.extra_product_indexes, 20);
        }
    }
}

#[test]
fn empty_search_terms() {
    let mut p = Parts::valid();
    p.reads = replace_line(&p.reads, "mix", "mix = { text_search = 1 }");
    p.keys
        .push_str("\n[text_search]\nterms = [\"oak\", \" \"]\n");
    expect_invalid("empty_terms", &p.text(), &["text_search.terms[1]"]);
}

#[test]
fn unknown_query_name_in_mix() {
    let mut p = Parts::valid();
    p.reads = replace_line(&p.reads, "mix", "mix = { text_search = 1, text_serch = 2 }");
    expect_invalid("unknown_query", &p.text(), &["reads.mix.text_serch"]);
}
