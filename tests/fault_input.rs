//! Bad input (issue 8): the scenario parser never panics, and every CLI error path exits
//! non-zero with a one-line message and the exit code the README documents.
//!
//! - `parser_never_panics_*`: proptests feed `Scenario::parse` (a) arbitrary strings, (b)
//!   arbitrary TOML documents (schema-aware `toml::Value` trees and key = value lines, keys from
//!   the real key set plus junk, values of every TOML type), (c) mutations of the real files in
//!   `scenarios/*.toml`. Each call must return a valid scenario or problems, one line each,
//!   every line starting with `fuzz.toml: `; a panic is a failure. 2,000 cases each by default;
//!   `PROPTEST_CASES` raises it.
//! - `cli_*`: every error path of the binary, with the exit code from the README
//!   (0 success · 1 a check failed · 2 bad input or an unusable database · 3 the run failed).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cqrs_bench::scenario::{Rate, Scenario, ScenarioError, Sweep};
use cqrs_bench::workload::keys::KeyDist;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use toml::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");
/// In `scenarios/`, as the shipped files are, so a pack they name (`../workloads/…`) resolves.
const FILE: &str = "scenarios/fuzz.toml";

// ---------------------------------------------------------------------------------------------
// The oracle: what every parse must satisfy.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    cases: AtomicUsize,
    ok: AtomicUsize,
    err: AtomicUsize,
    /// Errors whose problems do not render one line each: how many, and the shortest example.
    multiline: AtomicUsize,
    example: Mutex<Option<String>>,
}

impl Tally {
    fn record_multiline(&self, example: String) {
        self.multiline.fetch_add(1, Ordering::Relaxed);
        let mut slot = self.example.lock().unwrap();
        if slot.as_ref().is_none_or(|e| example.len() < e.len()) {
            *slot = Some(example);
        }
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{} {what} ({} valid scenarios, {} rejected with problems, {} of them not one line per problem)",
            self.cases.load(Ordering::Relaxed),
            self.ok.load(Ordering::Relaxed),
            self.err.load(Ordering::Relaxed),
            self.multiline.load(Ordering::Relaxed)
        )
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2_000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        // No regression files in the tree; a failure prints its minimal input instead.
        failure_persistence: None,
        ..Config::default()
    })
}

/// Parses `text` and checks the outcome; `Err` (a failed case, shrunk by proptest) for a panic,
/// an `Err` without problems, a problem not rendered as `fuzz.toml: …`, or an accepted scenario
/// that breaks the documented invariants. A problem whose text spans several lines is recorded
/// in the tally (and fails the test at the end) so that one such message does not stop the
/// search for panics.
fn check_parse(text: &str, tally: &Tally) -> Result<(), TestCaseError> {
    tally.cases.fetch_add(1, Ordering::Relaxed);
    let outcome = catch_unwind(|| Scenario::parse(text, FILE, "fuzz"));
    let parsed = match outcome {
        Ok(p) => p,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(TestCaseError::fail(format!(
                "Scenario::parse panicked: {msg}\ninput: {text:?}"
            )));
        }
    };
    match parsed {
        Ok(s) => {
            tally.ok.fetch_add(1, Ordering::Relaxed);
            valid_scenario(&s)
                .map_err(|e| TestCaseError::fail(format!("{e}\ninput: {text:?}\n{s:#?}")))?;
            // Deterministic, and what the runner derives from it does not panic either.
            let again = Scenario::parse(text, FILE, "fuzz");
            prop_assert_eq!(again.as_ref().ok(), Some(&s), "parse is not deterministic");
            let mix = catch_unwind(AssertUnwindSafe(|| (s.mix_spec(), s.projector_config())));
            prop_assert!(
                mix.is_ok(),
                "mix_spec/projector_config panicked on {:?}",
                text
            );
        }
        Err(e) => {
            tally.err.fetch_add(1, Ordering::Relaxed);
            labelled(&e).map_err(|m| TestCaseError::fail(format!("{m}\ninput: {text:?}")))?;
            if let Err(m) = one_line_each(&e) {
                tally.record_multiline(format!("{m}\ninput: {text:?}"));
            }
        }
    }
    Ok(())
}

/// Problems: at least one, each with a message, each rendered as `fuzz.toml: …`.
fn labelled(e: &ScenarioError) -> Result<(), String> {
    if e.problems.is_empty() {
        return Err("Err without any problem".into());
    }
    if e.file != FILE {
        return Err(format!("error labelled {:?}, not {FILE:?}", e.file));
    }
    let shown = e.to_string();
    let expected: Vec<String> = e.problems.iter().map(|p| format!("{FILE}: {p}")).collect();
    if shown != expected.join("\n") {
        return Err(format!(
            "the error does not render one `fuzz.toml: …` entry per problem:\n{shown}"
        ));
    }
    if let Some(p) = e.problems.iter().find(|p| p.message.trim().is_empty()) {
        return Err(format!("a problem without a message: {p:?}"));
    }
    Ok(())
}

/// The display is one line per problem, every line starting with `fuzz.toml: `.
fn one_line_each(e: &ScenarioError) -> Result<(), String> {
    let shown = e.to_string();
    if shown.contains('\r') {
        return Err(format!("a carriage return inside a problem:\n{shown:?}"));
    }
    let lines: Vec<&str> = shown.split('\n').collect();
    for line in &lines {
        if !line.starts_with(&format!("{FILE}: ")) {
            return Err(format!(
                "a problem line does not read `fuzz.toml: what is wrong`: {line:?}\nwhole error:\n{shown}"
            ));
        }
    }
    if lines.len() != e.problems.len() {
        return Err(format!(
            "{} problems but {} lines: a problem spans several lines\nwhole error:\n{shown}",
            e.problems.len(),
            lines.len()
        ));
    }
    Ok(())
}

/// The invariants the format documents (src/scenario/mod.rs), for a scenario parse accepted.
fn valid_scenario(s: &Scenario) -> Result<(), String> {
    let mut bad = Vec::new();
    let mut need = |ok: bool, what: &str| {
        if !ok {
            bad.push(what.to_string());
        }
    };
    need(s.name == "fuzz", "name is the given name");
    need(!s.description.trim().is_empty(), "description non-empty");
    need(!s.duration.is_zero(), "duration > 0");
    need(s.warmup < s.duration, "warmup < duration");
    need(!s.backends.is_empty(), "backends non-empty");
    let mut b = s.backends.clone();
    b.sort_by_key(|k| k.name());
    b.dedup();
    need(b.len() == s.backends.len(), "no duplicate backends");
    need(
        (0.0..=1.0).contains(&s.ryw_share),
        "ryw_share in [0, 1] and finite",
    );
    let d = &s.dataset;
    need(
        d.categories >= 1 && d.products >= 1 && d.users >= 1 && d.days >= 1,
        "categories, products, users, days >= 1",
    );
    need(
        d.orders >= 0 && d.reviews >= 0 && d.price_changes >= 0,
        "orders, reviews, price_changes >= 0",
    );
    // A pack's mixes are its workload's; the shop's then stay empty.
    let (writes_mix, reads_mix) = match &s.workload {
        Some(wl) => (wl.writes.clone(), wl.reads.clone()),
        None => (
            s.writes
                .mix
                .iter()
                .map(|(k, w)| (k.name().to_string(), *w))
                .collect(),
            s.reads
                .mix
                .iter()
                .map(|(k, w)| (k.name().to_string(), *w))
                .collect(),
        ),
    };
    for (side, rate, workers, weights) in [
        (
            "writes",
            s.writes.rate,
            s.writes.workers,
            writes_mix.values().copied().collect::<Vec<_>>(),
        ),
        (
            "reads",
            s.reads.rate,
            s.reads.workers,
            reads_mix.values().copied().collect::<Vec<_>>(),
        ),
    ] {
        need(workers >= 1, &format!("{side}.workers >= 1"));
        if let Rate::PerSecond(r) = rate {
            need(
                r.is_finite() && r >= 0.0,
                &format!("{side}.rate finite, >= 0"),
            );
        }
        need(
            weights.iter().all(|w| w.is_finite() && *w >= 0.0),
            &format!("{side}.mix weights finite and >= 0"),
        );
        let active = !rate.is_zero()
            || (side == "reads" && s.sweep.as_ref().is_some_and(Sweep::loads_reads));
        if active {
            need(
                weights.iter().sum::<f64>() > 0.0,
                &format!("{side} sends ops, so its mix must not sum to 0"),
            );
        }
    }
    let reads_active = !s.reads.rate.is_zero() || s.sweep.as_ref().is_some_and(Sweep::loads_reads);
    let sweep_reads = match &s.sweep {
        Some(Sweep::ReadRates(r)) => r.iter().any(|r| *r > 0.0),
        Some(Sweep::Readers(_)) => true,
        Some(Sweep::Orders(_) | Sweep::Size { .. }) | None => false,
    };
    need(
        !s.writes.rate.is_zero() || (reads_active && (!s.reads.rate.is_zero() || sweep_reads)),
        "some load: writes or reads carry a rate",
    );
    match &s.sweep {
        Some(Sweep::ReadRates(r)) => need(
            !r.is_empty() && r.iter().all(|x| x.is_finite() && *x >= 0.0),
            "sweep.read_rates non-empty, finite, >= 0",
        ),
        Some(Sweep::Readers(n)) => need(!n.is_empty(), "sweep.readers non-empty"),
        Some(Sweep::Orders(n)) => need(
            !n.is_empty() && n.iter().all(|x| *x >= 0),
            "sweep.orders non-empty, >= 0",
        ),
        Some(Sweep::Size { values, .. }) => need(
            !values.is_empty() && values.iter().all(|x| *x >= 0),
            "a size sweep non-empty, >= 0",
        ),
        None => {}
    }
    for (which, dist) in [("products", &s.product_keys), ("users", &s.user_keys)] {
        let ok = match dist {
            KeyDist::Uniform => true,
            KeyDist::Zipf { exponent } => exponent.is_finite() && *exponent > 0.0,
            KeyDist::Hotspot { hot_keys, hot_ops } => {
                *hot_keys > 0.0 && *hot_keys < 1.0 && *hot_ops > 0.0 && *hot_ops <= 1.0
            }
        };
        need(ok, &format!("keys.{which} parameters in range"));
    }
    need(s.projector.batch_size >= 1, "projector.batch_size >= 1");
    need(
        !s.projector.poll_interval.is_zero(),
        "projector.poll_interval > 0",
    );
    need(
        (0.0..=1.0).contains(&s.projector.redeliver),
        "projector.redeliver in [0, 1]",
    );
    need(
        s.thresholds.iter().all(|t| {
            cqrs_bench::scenario::thresholds::parse_threshold(&t.name, &t.condition).as_ref()
                == Ok(t)
        }),
        "every threshold parses for `check`",
    );
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Ok scenario breaks documented invariants: {}",
            bad.join("; ")
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------------------------

const TOP_KEYS: &[&str] = &[
    "description",
    "seed",
    "duration",
    "warmup",
    "dataset",
    "writes",
    "reads",
    "keys",
    "backends",
    "projector",
    "sweep",
    "ryw_share",
    "thresholds",
];
const NESTED_KEYS: &[&str] = &[
    "categories",
    "products",
    "users",
    "orders",
    "reviews",
    "price_changes",
    "days",
    "rate",
    "workers",
    "mix",
    "kind",
    "exponent",
    "hot_keys",
    "hot_ops",
    "batch_size",
    "poll_interval",
    "redeliver",
    "read_rates",
    "readers",
];
const COMMANDS: &[&str] = &[
    "place_order",
    "pay_order",
    "ship_order",
    "cancel_order",
    "add_review",
    "change_price",
    "restock",
];
const QUERIES: &[&str] = &[
    "product_page",
    "user_orders",
    "search",
    "daily_revenue",
    "top_products",
];
const BACKENDS: &[&str] = &["normalized", "cqrs-sync", "cqrs-async"];
const METRICS: &[&str] = &[
    "write.p99",
    "read.p50",
    "write.place_order.max",
    "read.search.p999",
    "write.bogus.p99",
    "read.product_page.p42",
    "lag.p99",
    "lag.mean",
    "ryw_miss",
    "errors",
    "rejected",
    "dead_letters",
    "verify.mismatches",
    "throughput.write",
    "throughput.read",
    "throughput.sideways",
    "bogus",
    "",
    "write",
    "write.p99.extra",
];
const INTERESTING_INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    4,
    10,
    100,
    1_000,
    4_294_967_295,
    4_294_967_296,
    i32::MAX as i64,
    i64::MAX,
    i64::MIN,
    -9_999,
];
const INTERESTING_FLOATS: &[f64] = &[
    0.0,
    -0.0,
    0.5,
    1.0,
    1.5,
    -0.5,
    1e-300,
    f64::MIN_POSITIVE,
    5e-324,
    1e308,
    f64::MAX,
    -f64::MAX,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.999_999_999_999,
    1.000_000_000_001,
];
const INTERESTING_STRINGS: &[&str] = &[
    "",
    " ",
    "max",
    "MAX",
    "30s",
    "0s",
    "0ms",
    "1.5m",
    "1h",
    "500ms",
    "-1s",
    "1e3s",
    ".5s",
    "5.s",
    "5",
    "s",
    "1us",
    "99999999999999999999999h",
    "18446744073709551615ms",
    "5124095576030431h",
    "0.0000000000000000000001s",
    "1.99999999999999999999999999s",
    "zipf",
    "uniform",
    "hotspot",
    "normalized",
    "cqrs-sync",
    "cqrs-async",
    "<= 250ms",
    "== 0",
    "<= 5%",
    ">= -1",
    "!= 1e3",
    "< 1",
    "<=",
    "<= 5\nms",
    "<= 1\nx",
    "<= x",
    "<= 1e309s",
    "<= 99999999999999999999999999999999999999999999999999ms",
    "<= .s",
    "<= -",
    "a\nb",
    "\t",
    "\u{0}",
    "é",
    "💥",
    "\u{202e}rtl",
    "line1\r\nline2",
];

fn junk_key() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z_]{1,12}",
        "[a-zA-Z0-9_\\-\\.\\*\" \n\t]{0,10}",
        "\\PC{0,8}",
        Just(String::new()),
    ]
    .boxed()
}

fn any_key() -> BoxedStrategy<String> {
    let mut real: Vec<&'static str> = Vec::new();
    real.extend(TOP_KEYS);
    real.extend(NESTED_KEYS);
    real.extend(COMMANDS);
    real.extend(QUERIES);
    real.extend(BACKENDS);
    prop_oneof![
        4 => prop::sample::select(real).prop_map(str::to_string),
        1 => threshold_pattern(),
        2 => junk_key(),
    ]
    .boxed()
}

fn string_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(INTERESTING_STRINGS).prop_map(str::to_string),
        1 => any::<String>(),
        1 => "[ -~\n]{0,16}",
        1 => duration_text(),
        1 => condition_text(),
    ]
    .boxed()
}

fn int_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(INTERESTING_INTS),
        2 => -3i64..20,
        1 => any::<i64>(),
    ]
    .prop_map(Value::Integer)
    .boxed()
}

fn float_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(INTERESTING_FLOATS),
        2 => -1.0f64..2.0,
        1 => any::<f64>(),
    ]
    .prop_map(Value::Float)
    .boxed()
}

fn number_value() -> BoxedStrategy<Value> {
    prop_oneof![int_value(), float_value()].boxed()
}

fn datetime_value() -> BoxedStrategy<Value> {
    prop::sample::select(vec![
        "1979-05-27T07:32:00Z",
        "1979-05-27T00:32:00.999999-07:00",
        "1979-05-27T07:32:00",
        "1979-05-27",
        "07:32:00",
    ])
    .prop_map(|s| Value::Datetime(s.parse().expect("datetime literal")))
    .boxed()
}

fn leaf_value() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => int_value(),
        2 => float_value(),
        1 => any::<bool>().prop_map(Value::Boolean),
        3 => string_value().prop_map(Value::String),
        1 => datetime_value(),
    ]
    .boxed()
}

/// Any TOML value: leaves, arrays and tables, a few levels deep.
fn any_value() -> BoxedStrategy<Value> {
    leaf_value()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(any_key(), inner, 0..4)
                    .prop_map(|m| Value::Table(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// Mostly `plausible`, sometimes any value at all.
fn field(plausible: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![12 => plausible, 1 => any_value()].boxed()
}

/// A table whose keys each appear with some probability, plus now and then a junk key.
fn table(fields: Vec<(&'static str, BoxedStrategy<Value>)>, presence: f64) -> BoxedStrategy<Value> {
    table_p(
        fields.into_iter().map(|(k, s)| (k, presence, s)).collect(),
        0.1,
    )
}

/// [`table`] with a presence probability per key, and the probability of junk keys.
fn table_p(
    fields: Vec<(&'static str, f64, BoxedStrategy<Value>)>,
    junk: f64,
) -> BoxedStrategy<Value> {
    let slots: Vec<_> = fields
        .into_iter()
        .map(|(k, presence, s)| {
            prop::option::weighted(presence, field(s))
                .prop_map(move |v| v.map(|v| (k.to_string(), v)))
        })
        .collect();
    let junk_keys = prop::collection::vec((any_key(), any_value()), 1..3);
    let with_junk = prop::option::weighted(junk, junk_keys);
    (slots, with_junk)
        .prop_map(|(slots, junk)| {
            let mut t = toml::Table::new();
            for (k, v) in slots.into_iter().flatten() {
                t.insert(k, v);
            }
            for (k, v) in junk.into_iter().flatten() {
                t.insert(k, v);
            }
            Value::Table(t)
        })
        .boxed()
}

fn duration_text() -> BoxedStrategy<String> {
    let number = prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "2",
            "5",
            "30",
            "0.5",
            "1.25",
            "-1",
            "1e3",
            "99999999999999999999999",
            "18446744073",
            "00",
            ".5",
            "5.",
            "",
            "1.000000000000000000001",
        ])
        .prop_map(str::to_string),
        any::<u32>().prop_map(|n| n.to_string()),
        (0u32..100, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
    ];
    let unit = prop::sample::select(vec!["ms", "s", "m", "h", "", "us", "S", " s", "sec", "d"]);
    (number, unit).prop_map(|(n, u)| format!("{n}{u}")).boxed()
}

fn duration_value() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::sample::select(vec!["1s", "2s", "5s", "30s", "1m", "250ms", "1.5s", "0s"])
            .prop_map(|d| Value::String(d.to_string())),
        4 => duration_text().prop_map(Value::String),
        1 => int_value(),
    ]
    .boxed()
}

fn threshold_pattern() -> BoxedStrategy<String> {
    let backend = prop::sample::select(vec![
        "*",
        "normalized",
        "cqrs-sync",
        "cqrs-async",
        "bogus",
        "",
    ]);
    prop_oneof![
        6 => (backend, prop::sample::select(METRICS)).prop_map(|(b, m)| format!("{b}.{m}")),
        1 => junk_key(),
        1 => Just("\n".to_string()),
    ]
    .boxed()
}

fn condition_text() -> BoxedStrategy<String> {
    let op = prop::sample::select(vec!["<=", "<", ">=", ">", "==", "!=", "=", "=>", ""]);
    let num = prop_oneof![
        prop::sample::select(vec![
            "0", "1", "250", "0.05", "-1", "1e3", ".5", "+2", "--1", "1.2.3"
        ])
        .prop_map(str::to_string),
        any::<u16>().prop_map(|n| n.to_string()),
    ];
    let unit = prop::sample::select(vec![
        "", "ms", "s", "us", "µs", "%", "/s", "x", " ms", "\nms",
    ]);
    prop_oneof![
        6 => (op, num, unit).prop_map(|(o, n, u)| format!("{o} {n}{u}")),
        1 => prop::sample::select(INTERESTING_STRINGS).prop_map(str::to_string),
    ]
    .boxed()
}

fn names_table(names: &'static [&'static str]) -> BoxedStrategy<Value> {
    let key = prop_oneof![
        6 => prop::sample::select(names).prop_map(str::to_string),
        1 => any_key(),
    ];
    prop::collection::btree_map(key, field(number_value()), 0..6)
        .prop_map(|m| Value::Table(m.into_iter().collect()))
        .boxed()
}

fn load_table(names: &'static [&'static str]) -> BoxedStrategy<Value> {
    let rate = prop_oneof![
        4 => (1u32..500).prop_map(|r| Value::Integer(r as i64)),
        3 => number_value(),
        2 => Just(Value::String("max".into())),
    ]
    .boxed();
    table(
        vec![
            ("rate", rate),
            ("workers", int_value()),
            ("mix", names_table(names)),
        ],
        0.7,
    )
}

fn dist_table() -> BoxedStrategy<Value> {
    let kind = prop::sample::select(vec!["uniform", "zipf", "hotspot", "pareto", ""])
        .prop_map(|k| Value::String(k.to_string()))
        .boxed();
    table(
        vec![
            ("kind", kind),
            ("exponent", number_value()),
            ("hot_keys", number_value()),
            ("hot_ops", number_value()),
        ],
        0.5,
    )
}

fn backends_value() -> BoxedStrategy<Value> {
    let name = prop_oneof![
        6 => prop::sample::select(BACKENDS).prop_map(|s| Value::String(s.to_string())),
        1 => leaf_value(),
    ];
    prop::collection::vec(name, 0..5)
        .prop_map(Value::Array)
        .boxed()
}

fn thresholds_table() -> BoxedStrategy<Value> {
    let cond = prop_oneof![
        8 => condition_text().prop_map(Value::String),
        1 => leaf_value(),
    ];
    prop::collection::btree_map(threshold_pattern(), cond, 0..5)
        .prop_map(|m| Value::Table(m.into_iter().collect()))
        .boxed()
}

/// A scenario document that knows the format: real keys with plausible (and now and then any)
/// values of every TOML type.
fn scenario_doc() -> BoxedStrategy<Value> {
    let description = prop_oneof![
        6 => "[a-zA-Z ?]{1,30}".prop_map(Value::String),
        1 => string_value().prop_map(Value::String),
    ]
    .boxed();
    let dataset = table(
        [
            "categories",
            "products",
            "users",
            "orders",
            "reviews",
            "price_changes",
            "days",
        ]
        .into_iter()
        .map(|k| (k, int_value()))
        .collect(),
        0.5,
    );
    let keys = table(
        vec![("products", dist_table()), ("users", dist_table())],
        0.6,
    );
    let projector = table(
        vec![
            ("batch_size", int_value()),
            ("poll_interval", duration_value()),
            ("redeliver", number_value()),
        ],
        0.5,
    );
    let sweep = table(
        vec![
            (
                "read_rates",
                prop::collection::vec(number_value(), 0..4)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
            (
                "readers",
                prop::collection::vec(int_value(), 0..4)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
        ],
        0.5,
    );
    table_p(
        vec![
            ("description", 0.95, description),
            ("seed", 0.5, int_value()),
            ("duration", 0.95, duration_value()),
            ("warmup", 0.4, duration_value()),
            ("dataset", 0.5, dataset),
            ("writes", 0.7, load_table(COMMANDS)),
            ("reads", 0.6, load_table(QUERIES)),
            ("keys", 0.4, keys),
            ("backends", 0.5, backends_value()),
            ("projector", 0.3, projector),
            ("sweep", 0.2, sweep),
            ("ryw_share", 0.4, number_value()),
            ("thresholds", 0.4, thresholds_table()),
        ],
        0.1,
    )
}

/// `key = value` lines and `[headers]`, in any order (duplicates, keys after headers, ...).
fn toml_lines() -> BoxedStrategy<String> {
    let mut sections: Vec<&'static str> = TOP_KEYS.to_vec();
    sections.extend([
        "keys.products",
        "keys.users",
        "writes.mix",
        "reads.mix",
        "dataset.x",
        "",
    ]);
    let header = prop_oneof![
        4 => prop::sample::select(sections.clone()).prop_map(|s| format!("[{s}]")),
        1 => prop::sample::select(sections).prop_map(|s| format!("[[{s}]]")),
        1 => junk_key().prop_map(|k| format!("[{k}]")),
    ];
    let key = prop_oneof![
        4 => any_key(),
        1 => any_key().prop_map(|k| format!("{k:?}")),
        1 => (prop::sample::select(TOP_KEYS), any_key()).prop_map(|(a, b)| format!("{a}.{b}")),
    ];
    let literal = prop_oneof![
        3 => any_value().prop_map(|v| v.to_string()),
        2 => prop::sample::select(vec![
            "nan",
            "+inf",
            "-inf",
            "-0.0",
            "1e400",
            "99999999999999999999",
            "0x7fffffffffffffff",
            "0o777",
            "1_000",
            "true",
            "[]",
            "{}",
            "[1, \"a\"]",
            "{ kind = \"zipf\", exponent = 1.1 }",
            "{ kind = \"hotspot\", hot_keys = 0.01, hot_ops = 0.9 }",
            "{ place_order = 1, bogus = 2 }",
            "[\"normalized\", \"normalized\"]",
            "\"max\"",
            "\"30s\"",
            "'''multi\nline'''",
            "\"\"\"\"\"\"",
            "1979-05-27T07:32:00Z",
            "",
            "\"unterminated",
        ])
        .prop_map(str::to_string),
    ];
    let kv = (key, literal).prop_map(|(k, v)| format!("{k} = {v}"));
    let line = prop_oneof![
        2 => header,
        6 => kv,
        1 => Just("# comment".to_string()),
        1 => Just(String::new()),
        1 => "\\PC{0,20}",
    ];
    prop::collection::vec(line, 0..25)
        .prop_map(|lines| lines.join("\n"))
        .boxed()
}

/// A valid scenario document, built from the documented rules (every feature: sweeps, closed
/// loop, key skews, thresholds ...).
fn valid_doc() -> BoxedStrategy<Value> {
    fn s(x: impl Into<String>) -> Value {
        Value::String(x.into())
    }
    fn t(pairs: Vec<(&str, Value)>) -> Value {
        Value::Table(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
    let unit = prop::sample::select(vec![
        ("ms", 1u64),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
    ]);
    let timing = (1u64..120, unit, prop::option::of(0u64..1000)).prop_map(|(n, (u, ms), w)| {
        let mut v = vec![("duration", s(format!("{n}{u}")))];
        if let Some(k) = w {
            // warmup < duration: k/1000 of it, in ms.
            v.push(("warmup", s(format!("{}ms", n * ms * k / 1000))));
        }
        v
    });
    let dataset = prop::collection::btree_map(
        prop::sample::select(vec![
            "categories",
            "products",
            "users",
            "orders",
            "reviews",
            "price_changes",
            "days",
        ]),
        prop_oneof![1i64..10_000, Just(i64::MAX)],
        0..4,
    )
    .prop_map(|m| t(m.into_iter().map(|(k, n)| (k, Value::Integer(n))).collect()));
    let weight = prop_oneof![
        3 => (1u32..100).prop_map(|w| Value::Integer(w as i64)),
        1 => (0.01f64..10.0).prop_map(Value::Float),
        1 => Just(Value::Integer(0)),
    ];
    let mix = |names: &'static [&'static str]| {
        prop::collection::btree_map(prop::sample::select(names), weight.clone(), 1..6).prop_map(
            |m| {
                let mut m: Vec<(&str, Value)> = m.into_iter().collect();
                // At least one weight > 0.
                m[0].1 = Value::Integer(1);
                t(m)
            },
        )
    };
    let rate = prop_oneof![
        3 => (1u32..1000).prop_map(|r| Value::Integer(r as i64)),
        1 => (0.001f64..1e6).prop_map(Value::Float),
        1 => Just(s("max")),
    ];
    let load = |names: &'static [&'static str]| {
        (
            rate.clone(),
            prop::option::of(prop_oneof![1i64..64, Just(u32::MAX as i64)]),
            prop::option::of(mix(names)),
        )
            .prop_map(|(r, w, m)| {
                let mut v = vec![("rate", r)];
                if let Some(w) = w {
                    v.push(("workers", Value::Integer(w)));
                }
                if let Some(m) = m {
                    v.push(("mix", m));
                }
                t(v)
            })
    };
    let dist = prop_oneof![
        Just(t(vec![("kind", s("uniform"))])),
        (1e-6f64..5.0).prop_map(|e| t(vec![("kind", s("zipf")), ("exponent", Value::Float(e))])),
        (1e-6f64..0.999, 1e-6f64..=1.0).prop_map(|(k, o)| t(vec![
            ("kind", s("hotspot")),
            ("hot_keys", Value::Float(k)),
            ("hot_ops", Value::Float(o)),
        ])),
    ];
    let keys = (prop::option::of(dist.clone()), prop::option::of(dist)).prop_map(|(p, u)| {
        let mut v = Vec::new();
        if let Some(p) = p {
            v.push(("products", p));
        }
        if let Some(u) = u {
            v.push(("users", u));
        }
        t(v)
    });
    let backends = prop::sample::subsequence(BACKENDS.to_vec(), 1..=3)
        .prop_shuffle()
        .prop_map(|b| Value::Array(b.into_iter().map(s).collect()));
    let projector = (1i64..5000, 1u32..1000, 0.0f64..=1.0).prop_map(|(b, p, r)| {
        t(vec![
            ("batch_size", Value::Integer(b)),
            ("poll_interval", s(format!("{p}ms"))),
            ("redeliver", Value::Float(r)),
        ])
    });
    let sweep = prop_oneof![
        prop::collection::vec(1u32..5000, 1..4).prop_map(|r| t(vec![(
            "read_rates",
            Value::Array(r.into_iter().map(|x| Value::Integer(x as i64)).collect())
        )])),
        prop::collection::vec(1u32..64, 1..4).prop_map(|r| t(vec![(
            "readers",
            Value::Array(r.into_iter().map(|x| Value::Integer(x as i64)).collect())
        )])),
    ];
    let threshold = (
        prop::sample::select(vec!["*", "normalized", "cqrs-sync", "cqrs-async"]),
        prop::sample::select(vec![
            ("write.p99", "ms"),
            ("read.mean", "us"),
            ("write.place_order.p999", "s"),
            ("read.search.max", "ms"),
            ("lag.p99", "ms"),
            ("ryw_miss", "%"),
            ("errors", ""),
            ("rejected", ""),
            ("dead_letters", ""),
            ("verify.mismatches", ""),
            ("throughput.write", "/s"),
            ("throughput.read", ""),
        ]),
        prop::sample::select(vec!["<=", "<", ">=", ">", "==", "!="]),
        0u32..1000,
    )
        .prop_map(|(b, (m, u), op, n)| (format!("{b}.{m}"), s(format!("{op} {n}{u}"))));
    let thresholds =
        prop::collection::vec(threshold, 0..4).prop_map(|v| Value::Table(v.into_iter().collect()));
    // Which sides carry load: writes, reads, or reads through a sweep.
    let sides = prop::sample::select(vec![
        (true, false, false),
        (false, true, false),
        (true, true, false),
        (false, false, true),
        (true, false, true),
    ]);
    (
        (
            "[A-Za-z][A-Za-z ?]{0,20}",
            prop::option::of(0i64..1_000),
            timing,
            prop::option::of(dataset),
        ),
        (
            sides,
            load(COMMANDS),
            load(QUERIES),
            prop::option::of(keys),
            prop::option::of(backends),
        ),
        (
            prop::option::of(projector),
            sweep,
            prop::option::of(0.0f64..=1.0),
            prop::option::of(thresholds),
        ),
    )
        .prop_map(
            |(
                (d, seed, timing, dataset),
                ((w, r, sw), writes, reads, keys, backends),
                (projector, sweep, ryw, thresholds),
            )| {
                let mut v: Vec<(&str, Value)> = vec![("description", s(d))];
                if let Some(x) = seed {
                    v.push(("seed", Value::Integer(x)));
                }
                v.extend(timing);
                if let Some(x) = dataset {
                    v.push(("dataset", x));
                }
                if w {
                    v.push(("writes", writes));
                }
                if r {
                    v.push(("reads", reads));
                }
                if sw {
                    v.push(("sweep", sweep));
                }
                if let Some(x) = keys {
                    v.push(("keys", x));
                }
                if let Some(x) = backends {
                    v.push(("backends", x));
                }
                if let Some(x) = projector {
                    v.push(("projector", x));
                }
                if let Some(x) = ryw {
                    v.push(("ryw_share", Value::Float(x)));
                }
                if let Some(x) = thresholds {
                    v.push(("thresholds", x));
                }
                t(v)
            },
        )
        .boxed()
}

/// Every path to a value in a tree (tables and arrays).
fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Table(t) => {
            for (k, x) in t {
                prefix.push(k.clone());
                out.push(prefix.clone());
                paths(x, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                prefix.push(format!("#{i}"));
                out.push(prefix.clone());
                paths(x, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    let next = match v {
        Value::Table(t) => t.get_mut(first)?,
        Value::Array(a) => a.get_mut(first.strip_prefix('#')?.parse::<usize>().ok()?)?,
        _ => return None,
    };
    at(next, rest)
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, Value),
    Remove(Index),
    AddKey(Index, String, Value),
}

/// A valid document with a few edits: a value swapped for an edge case or another type, a key
/// removed, a key added.
fn edited_doc() -> BoxedStrategy<Value> {
    let edge = prop_oneof![
        leaf_value(),
        any_value(),
        prop::sample::select(INTERESTING_INTS).prop_map(Value::Integer),
        prop::sample::select(INTERESTING_FLOATS).prop_map(Value::Float),
    ];
    let edit = prop_oneof![
        4 => (any::<Index>(), edge.clone()).prop_map(|(i, v)| Edit::Replace(i, v)),
        2 => any::<Index>().prop_map(Edit::Remove),
        1 => (any::<Index>(), any_key(), edge).prop_map(|(i, k, v)| Edit::AddKey(i, k, v)),
    ];
    (valid_doc(), prop::collection::vec(edit, 0..4))
        .prop_map(|(mut doc, edits)| {
            for e in edits {
                let mut all = Vec::new();
                paths(&doc, &mut Vec::new(), &mut all);
                if all.is_empty() {
                    continue;
                }
                match e {
                    Edit::Replace(i, v) => {
                        if let Some(slot) = at(&mut doc, &all[i.index(all.len())]) {
                            *slot = v;
                        }
                    }
                    Edit::Remove(i) => {
                        let p = &all[i.index(all.len())];
                        let (last, parent) = p.split_last().unwrap();
                        match at(&mut doc, parent) {
                            Some(Value::Table(t)) => {
                                t.remove(last);
                            }
                            Some(Value::Array(a)) => {
                                if let Some(i) =
                                    last.strip_prefix('#').and_then(|i| i.parse::<usize>().ok())
                                {
                                    if i < a.len() {
                                        a.remove(i);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    Edit::AddKey(i, k, v) => {
                        let p = all[i.index(all.len())].clone();
                        let parent = &p[..p.len() - 1];
                        if let Some(Value::Table(t)) = at(&mut doc, parent) {
                            t.insert(k, v);
                        }
                    }
                }
            }
            doc
        })
        .boxed()
}

fn toml_document() -> BoxedStrategy<String> {
    let tree = prop_oneof![
        3 => edited_doc(),
        3 => scenario_doc(),
        1 => prop::collection::btree_map(any_key(), any_value(), 0..8)
            .prop_map(|m| Value::Table(m.into_iter().collect())),
    ]
    .prop_map(|v| match toml::to_string(&v) {
        Ok(text) => text,
        // Not every tree has a document form (e.g. a table inside an array of values); its
        // inline form is still worth parsing.
        Err(_) => v.to_string(),
    });
    prop_oneof![4 => tree, 1 => toml_lines()].boxed()
}

// Mutations of the real scenario files.

#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index),
    Duplicate(Index),
    Swap(Index, Index),
    /// Replaces one number (a run of digits, maybe with a fraction) in a line.
    Number(Index, Index, String),
    /// Replaces the right-hand side of a `key = value` line.
    Value(Index, String),
    Insert(Index, String),
    Truncate(Index),
}

fn replacement_number() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "-1",
            "0",
            "-0",
            "0.0",
            "99999999999999999999",
            "9223372036854775807",
            "-9223372036854775808",
            "4294967296",
            "1e308",
            "1e400",
            "1.5",
            "0.0001",
            "nan",
            "inf",
            "-inf",
            "\"5\"",
            "\"\"",
            "true",
            "[]",
            "{}",
            "1_000",
            "0x10",
            "1e-9",
            "",
        ])
        .prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|x| x.to_string()),
    ]
    .boxed()
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Duplicate),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        4 => (any::<Index>(), any::<Index>(), replacement_number())
            .prop_map(|(l, o, r)| Mutation::Number(l, o, r)),
        2 => (
            any::<Index>(),
            prop_oneof![
                any_value().prop_map(|v| v.to_string()),
                string_value().prop_map(|s| Value::String(s).to_string()),
            ]
        )
            .prop_map(|(l, v)| Mutation::Value(l, v)),
        1 => (any::<Index>(), toml_lines()).prop_map(|(l, s)| Mutation::Insert(l, s)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
    .boxed()
}

fn number_spans(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    spans
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in mutations {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match m {
            Mutation::Delete(i) => {
                lines.remove(i.index(n));
            }
            Mutation::Duplicate(i) => {
                let i = i.index(n);
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            Mutation::Swap(a, b) => lines.swap(a.index(n), b.index(n)),
            Mutation::Number(l, o, r) => {
                // Prefer lines that hold numbers.
                let with_numbers: Vec<usize> = (0..n)
                    .filter(|i| !number_spans(&lines[*i]).is_empty())
                    .collect();
                if with_numbers.is_empty() {
                    continue;
                }
                let i = with_numbers[l.index(with_numbers.len())];
                let spans = number_spans(&lines[i]);
                let (s, e) = spans[o.index(spans.len())];
                lines[i].replace_range(s..e, r);
            }
            Mutation::Value(l, v) => {
                let kv: Vec<usize> = (0..n).filter(|i| lines[*i].contains(" = ")).collect();
                if kv.is_empty() {
                    continue;
                }
                let i = kv[l.index(kv.len())];
                let at = lines[i].find(" = ").expect("has =") + 3;
                lines[i].replace_range(at.., v);
            }
            Mutation::Insert(i, s) => lines.insert(i.index(n + 1), s.clone()),
            Mutation::Truncate(i) => {
                let joined = lines.join("\n");
                let bounds: Vec<usize> = joined
                    .char_indices()
                    .map(|(p, _)| p)
                    .chain([joined.len()])
                    .collect();
                let cut = bounds[i.index(bounds.len())];
                lines = joined[..cut].split('\n').map(str::to_string).collect();
            }
        }
    }
    lines.join("\n")
}

fn scenario_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).expect("read scenario"),
            )
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the shipped scenarios in {dir:?}"
    );
    files
}

// ---------------------------------------------------------------------------------------------
// The parser properties.
// ---------------------------------------------------------------------------------------------

fn report(tally: &Tally, what: &str, started: Instant, result: Result<(), String>) {
    eprintln!(
        "fault_input: {} in {:.1}s",
        tally.line(what),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let n = tally.multiline.load(Ordering::Relaxed);
    if n > 0 {
        panic!(
            "{n} of {} errors do not render one line per problem (README: \"every problem in a \
             file is reported at once, one line each, as `FILE: field.path: what is wrong`\"); \
             shortest example:\n{}",
            tally.err.load(Ordering::Relaxed),
            tally.example.lock().unwrap().clone().unwrap_or_default()
        );
    }
}

#[test]
fn parser_never_panics_on_arbitrary_strings() {
    let tally = Tally::default();
    let started = Instant::now();
    let strings = prop_oneof![
        2 => any::<String>(),
        2 => "[\\[\\]={}\",.#a-z0-9_ \n\t'+-]{0,160}",
        1 => "\\PC{0,300}",
        1 => prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let result = runner()
        .run(&strings, |text| check_parse(&text, &tally))
        .map_err(|e| e.to_string());
    report(&tally, "arbitrary strings", started, result);
}

#[test]
fn parser_never_panics_on_arbitrary_toml_documents() {
    let tally = Tally::default();
    let started = Instant::now();
    let result = runner()
        .run(&toml_document(), |text| check_parse(&text, &tally))
        .map_err(|e| e.to_string());
    report(&tally, "generated TOML documents", started, result);
}

#[test]
fn parser_never_panics_on_mutated_scenario_files() {
    let files = scenario_files();
    // The unmutated files are valid (and so exercise the Ok branch's checks).
    for (name, text) in &files {
        let s = Scenario::parse(text, FILE, "fuzz")
            .unwrap_or_else(|e| panic!("scenarios/{name} does not parse:\n{e}"));
        valid_scenario(&s).unwrap_or_else(|e| panic!("scenarios/{name}: {e}"));
    }
    let tally = Tally::default();
    let started = Instant::now();
    let n = files.len();
    let strategy = (any::<Index>(), prop::collection::vec(mutation(), 1..5));
    let result = runner()
        .run(&strategy, |(file, mutations)| {
            let (_, text) = &files[file.index(n)];
            check_parse(&mutate(text, &mutations), &tally)
        })
        .map_err(|e| e.to_string());
    report(
        &tally,
        &format!("mutations of the {n} files in scenarios/"),
        started,
        result,
    );
}

/// Problems embed what the user wrote; a control character in it must not break the
/// one-line-per-problem format (found by the fuzzer; kept as a fixed case).
#[test]
fn problems_stay_one_line_with_newlines_in_thresholds() {
    let text = "description = \"x\"\nduration = \"2s\"\n[writes]\nrate = 10\n[thresholds]\n\"a\\nb\" = \"<= 1\"\n\"*.write.p99\" = \"<= 1\\nx\"\n\"*.bo\\ngus\" = \"== 0\"\n";
    let e = Scenario::parse(text, FILE, "fuzz").expect_err("invalid thresholds");
    assert_eq!(e.problems.len(), 3, "{e}");
    labelled(&e).unwrap_or_else(|m| panic!("{m}"));
    one_line_each(&e).unwrap_or_else(|m| panic!("{m}"));
}

/// A TOML syntax error is one problem, so one line (found by the fuzzer; kept as a fixed case).
#[test]
fn problems_stay_one_line_for_toml_syntax_errors() {
    for text in [
        "description = \n[x]",
        "A=\u{10a7}",
        "[dataset]\n[a\ncategories = 1",
    ] {
        let e = Scenario::parse(text, FILE, "fuzz").expect_err("syntax error");
        assert_eq!(e.problems.len(), 1, "{e}");
        labelled(&e).unwrap_or_else(|m| panic!("{m}"));
        one_line_each(&e).unwrap_or_else(|m| panic!("{text:?}: {m}"));
    }
}

// ---------------------------------------------------------------------------------------------
// The CLI error paths.
// ---------------------------------------------------------------------------------------------

type Out = common::Finished;

/// Runs the binary with a hard deadline (killed after `limit`).
fn cli_in(dir: &Path, args: &[String], limit: Duration) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    common::run_with_limit(cmd, limit)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// No subcommand at all: clap prints the help (listing the commands) and exits 2.
    Help,
    /// Rejected by the argument parser (clap): `error: …` first, then its usage hint.
    Usage,
    /// The tool's own error: one `error: …` line (after at most a `running …` or `seeding …`
    /// progress banner).
    Tool,
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    code: i32,
    kind: Kind,
    /// Text the error line must contain.
    says: &'static str,
    /// Text that must appear nowhere in the output.
    never: Option<&'static str>,
    limit: Duration,
}

fn case(name: &'static str, args: &[&str], code: i32, kind: Kind, says: &'static str) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        kind,
        says,
        never: None,
        limit: Duration::from_secs(60),
    }
}

/// Checks one case; `Err` says what is wrong.
fn check_case(dir: &Path, c: &Case) -> Result<(), String> {
    let o = cli_in(dir, &c.args, c.limit);
    let shown = format!(
        "[{}] cqrs-bench {}\nexit {:?} after {:.2}s\n--- stderr\n{}--- stdout\n{}",
        c.name,
        c.args.join(" "),
        o.code,
        o.elapsed.as_secs_f64(),
        o.stderr,
        o.stdout
    );
    let mut wrong = Vec::new();
    if o.code != Some(c.code) {
        wrong.push(format!("expected exit {}", c.code));
    }
    for bad in [
        "panicked",
        "Backtrace",
        "backtrace",
        "RUST_BACKTRACE",
        "thread 'main'",
    ] {
        if o.stderr.contains(bad) || o.stdout.contains(bad) {
            wrong.push(format!("output mentions {bad:?}"));
        }
    }
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    match c.kind {
        Kind::Help => {
            if !(o.stderr.contains("Usage:") && o.stderr.contains("Commands:")) {
                wrong.push("expected the help on stderr".into());
            }
        }
        Kind::Usage => {
            if !o.stderr.contains(c.says) {
                wrong.push(format!("the message does not say {:?}", c.says));
            }
            if !lines.first().is_some_and(|l| l.starts_with("error: ")) {
                wrong.push("stderr does not start with `error: `".into());
            }
            if errors.len() != 1 {
                wrong.push(format!("{} `error:` lines", errors.len()));
            }
        }
        Kind::Tool => {
            let others: Vec<&&str> = lines
                .iter()
                .filter(|l| {
                    !l.starts_with("error: ")
                        && !l.starts_with("running ")
                        && !l.starts_with("seeding ")
                })
                .collect();
            if errors.len() != 1 || !others.is_empty() {
                wrong.push(format!(
                    "expected exactly one `error: …` line on stderr (besides a `running …` or `seeding …` banner), got {} error lines and {} other lines",
                    errors.len(),
                    others.len()
                ));
            }
            if !lines.last().is_some_and(|l| l.starts_with("error: ")) {
                wrong.push("the error is not the last line".into());
            }
        }
    }
    if let (Some(first), Kind::Tool) = (errors.first(), c.kind) {
        if !first.contains(c.says) {
            wrong.push(format!("the error does not say {:?}", c.says));
        }
        if first.trim_end() == "error:" {
            wrong.push("empty error message".into());
        }
    }
    if let Some(never) = c.never {
        if o.stderr.contains(never) || o.stdout.contains(never) {
            wrong.push(format!("output contains {never:?}"));
        }
    }
    if o.elapsed > c.limit {
        wrong.push(format!("did not finish within {:?}", c.limit));
    }
    if wrong.is_empty() {
        eprintln!(
            "ok   [{}] exit {} in {:.2}s: {}",
            c.name,
            c.code,
            o.elapsed.as_secs_f64(),
            errors.first().map(|l| l.trim()).unwrap_or("")
        );
        Ok(())
    } else {
        Err(format!("{}\n{shown}", wrong.join("; ")))
    }
}

fn run_cases(dir: &Path, cases: &[Case]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check_case(dir, c).err())
        .collect();
    eprintln!(
        "fault_input: {} CLI error paths checked, {} wrong",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} CLI error paths are wrong:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .display()
        .to_string()
}

fn sqlite(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Seeds `path` with the CLI (asserting success).
fn seed(dir: &Path, path: &Path, backend: &str) {
    let args: Vec<String> = [
        "seed",
        "--db",
        &sqlite(path),
        "--backend",
        backend,
        "--scenario",
        &scenario("ci.toml"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = cli_in(dir, &args, Duration::from_secs(60));
    assert_eq!(
        o.code,
        Some(0),
        "seed {backend} failed:\n{}{}",
        o.stderr,
        o.stdout
    );
}

/// Runs SQL on a SQLite file the tool has nothing to do with (no pragmas set).
fn sqlite_exec(path: &Path, statements: &[&str]) {
    use sqlx::{ConnectOptions, Executor};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .expect("open sqlite");
        for s in statements {
            conn.execute(*s).await.expect(s);
        }
        sqlx::Connection::close(conn).await.unwrap();
    });
}

#[test]
fn cli_usage_and_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ci = scenario("ci.toml");
    let bad_threshold = d.join("bad_threshold.toml");
    std::fs::write(
        &bad_threshold,
        "description = \"x\"\nduration = \"2s\"\n[writes]\nrate = 10\n[thresholds]\n\"*.write.p99\" = \"<= fast\"\n",
    )
    .unwrap();
    let bad_metric = d.join("bad_metric.toml");
    std::fs::write(
        &bad_metric,
        "description = \"x\"\nduration = \"2s\"\n[writes]\nrate = 10\n[thresholds]\n\"*.write.p42\" = \"<= 1s\"\n",
    )
    .unwrap();
    let not_utf8 = d.join("latin1.toml");
    std::fs::write(&not_utf8, b"description = \"caf\xe9\"\n").unwrap();
    let not_results = d.join("not_results.json");
    std::fs::write(&not_results, "{\"hello\": 1}").unwrap();
    let bt = bad_threshold.display().to_string();
    let bm = bad_metric.display().to_string();
    let nu = not_utf8.display().to_string();
    let nr = not_results.display().to_string();
    let out = d.join("out").display().to_string();
    let file_as_dir = d.join("bad_threshold.toml/out").display().to_string();
    let help = cli_in(d, &["--help".to_string()], Duration::from_secs(10));
    assert_eq!(help.code, Some(0), "{}", help.stderr);

    use Kind::*;
    let mut cases = vec![
        case(
            "unknown subcommand",
            &["frobnicate"],
            2,
            Usage,
            "frobnicate",
        ),
        case("no subcommand", &[], 2, Help, ""),
        case("unknown flag", &["run", &ci, "--frob"], 2, Usage, "--frob"),
        case("run without scenario", &["run"], 2, Usage, "SCENARIO"),
        case("check without scenario", &["check"], 2, Usage, "SCENARIO"),
        case("seed without --db", &["seed"], 2, Usage, "--db"),
        case("verify without --db", &["verify"], 2, Usage, "--db"),
        case("rebuild without --db", &["rebuild"], 2, Usage, "--db"),
        case(
            "dead-letters without --db",
            &["dead-letters"],
            2,
            Usage,
            "--db",
        ),
        case(
            "--seed not a number",
            &["run", &ci, "--seed", "abc"],
            2,
            Usage,
            "--seed",
        ),
        case(
            "--pool-size not a number",
            &["run", &ci, "--pool-size", "x"],
            2,
            Usage,
            "--pool-size",
        ),
        case(
            "run --duration 0s",
            &["run", &ci, "--duration", "0s", "--out", &out],
            2,
            Tool,
            "--duration",
        ),
        case(
            "run --duration abc",
            &["run", &ci, "--duration", "abc", "--out", &out],
            2,
            Tool,
            "--duration",
        ),
        case(
            "run --backends foo",
            &["run", &ci, "--backends", "foo", "--out", &out],
            2,
            Tool,
            "foo",
        ),
        case(
            "run --backends normalized,foo",
            &["run", &ci, "--backends", "normalized,foo", "--out", &out],
            2,
            Tool,
            "foo",
        ),
        // clap knows the projector modes (`ValueEnum`), so it refuses a bogus one itself.
        case(
            "run --projector bogus",
            &["run", &ci, "--projector", "bogus", "--out", &out],
            2,
            Usage,
            "bogus",
        ),
        case(
            "run --schema Bad-Name",
            &["run", &ci, "--schema", "Bad-Name", "--out", &out],
            2,
            Tool,
            "Bad-Name",
        ),
        case(
            "run --db mysql://",
            &["run", &ci, "--db", "mysql://x", "--out", &out],
            2,
            Tool,
            "mysql://",
        ),
        case(
            "run --db sqlite:// (no path)",
            &["run", &ci, "--db", "sqlite://", "--out", &out],
            2,
            Tool,
            "sqlite://",
        ),
        case(
            "run missing scenario file",
            &["run", "/nonexistent/x.toml", "--out", &out],
            2,
            Tool,
            "x.toml",
        ),
        case(
            "run scenario is a directory",
            &["run", d.to_str().unwrap(), "--out", &out],
            2,
            Tool,
            "cannot read",
        ),
        case(
            "run scenario not UTF-8",
            &["run", &nu, "--out", &out],
            2,
            Tool,
            "latin1.toml",
        ),
        case(
            "run --out under a file",
            &[
                "run",
                &ci,
                "--duration",
                "2s",
                "--quiet",
                "--out",
                &file_as_dir,
            ],
            2,
            Tool,
            "bad_threshold.toml",
        ),
        case(
            "check bad threshold value",
            &["check", &bt, "--out", &out],
            2,
            Tool,
            "thresholds",
        ),
        case(
            "check unknown metric",
            &["check", &bm, "--out", &out],
            2,
            Tool,
            "p42",
        ),
        case(
            "check --duration 0s",
            &["check", &ci, "--duration", "0s", "--out", &out],
            2,
            Tool,
            "--duration",
        ),
        case(
            "seed --backend foo",
            &["seed", "--db", &sqlite(&d.join("s.db")), "--backend", "foo"],
            2,
            Tool,
            "foo",
        ),
        case(
            "seed --scenario with bad threshold",
            &["seed", "--db", &sqlite(&d.join("s.db")), "--scenario", &bt],
            2,
            Tool,
            "thresholds",
        ),
        case(
            "seed --schema Bad-Name",
            &[
                "seed",
                "--db",
                &sqlite(&d.join("s.db")),
                "--schema",
                "Bad-Name",
            ],
            2,
            Tool,
            "Bad-Name",
        ),
        case(
            "verify --db unsupported",
            &["verify", "--db", "redis://x"],
            2,
            Tool,
            "redis://",
        ),
        case(
            "verify in a missing directory",
            &["verify", "--db", "sqlite:///nonexistent/dir/x.db"],
            2,
            Tool,
            "/nonexistent/dir/x.db",
        ),
        case(
            "verify --db a directory",
            &["verify", "--db", &sqlite(d)],
            2,
            Tool,
            "cannot",
        ),
    ];
    // Connection errors with a password in the URL: within 10 s, exit 2, no password.
    let unknown_host = "postgres://u:pw@nonexistent.invalid:5432/x";
    let refused = "postgres://u:pw@127.0.0.1:1/x";
    for (name, args) in [
        (
            "run, unknown host",
            vec!["run", &ci, "--db", unknown_host, "--quiet", "--out", &out],
        ),
        (
            "check, unknown host",
            vec!["check", &ci, "--db", unknown_host, "--quiet", "--out", &out],
        ),
        ("seed, unknown host", vec!["seed", "--db", unknown_host]),
        ("verify, unknown host", vec!["verify", "--db", unknown_host]),
        (
            "rebuild, unknown host",
            vec!["rebuild", "--db", unknown_host],
        ),
        (
            "dead-letters, unknown host",
            vec!["dead-letters", "--db", unknown_host],
        ),
        (
            "verify, connection refused",
            vec!["verify", "--db", refused],
        ),
        (
            "verify, malformed port",
            vec!["verify", "--db", "postgres://u:pw@127.0.0.1:notaport/x"],
        ),
    ] {
        let mut c = case(name, &args, 2, Tool, "");
        c.never = Some("pw@");
        c.limit = Duration::from_secs(10);
        cases.push(c);
    }
    // report / compare, listed by --help.
    if help.stdout.contains("report") {
        cases.push(case(
            "report missing results",
            &["report", "/nonexistent/results.json"],
            2,
            Tool,
            "results.json",
        ));
        cases.push(case(
            "report not a results file",
            &["report", &nr],
            2,
            Tool,
            "not_results.json",
        ));
        cases.push(case(
            "report a scenario file",
            &["report", &ci],
            2,
            Tool,
            "ci.toml",
        ));
        cases.push(case("report without path", &["report"], 2, Usage, ""));
    }
    if help.stdout.contains("compare") {
        cases.push(case(
            "compare missing results",
            &["compare", "/nonexistent/a.json", "/nonexistent/b.json"],
            2,
            Tool,
            "a.json",
        ));
        cases.push(case(
            "compare not results files",
            &["compare", &nr, &nr],
            2,
            Tool,
            "not_results.json",
        ));
        cases.push(case("compare one path", &["compare", &nr], 2, Usage, ""));
        cases.push(case(
            "compare negative --fail-on-regression",
            &["compare", &nr, &nr, "--fail-on-regression=-5"],
            2,
            Tool,
            "--fail-on-regression",
        ));
        cases.push(case(
            "compare NaN --fail-on-regression",
            &["compare", &nr, &nr, "--fail-on-regression=NaN"],
            2,
            Tool,
            "--fail-on-regression",
        ));
    }
    run_cases(d, &cases);
    // Input errors are found before anything is written.
    let out = d.join("out");
    assert!(
        !out.join("results.json").exists(),
        "a failed run must not write results.json"
    );
}

#[test]
fn cli_database_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = d.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let norm = d.join("normalized.db");
    let sync = d.join("sync.db");
    let asyn = d.join("async.db");
    let broken = d.join("broken.db");
    let parked = d.join("parked.db");
    seed(d, &norm, "normalized");
    seed(d, &sync, "cqrs-sync");
    seed(d, &asyn, "cqrs-async");
    seed(d, &broken, "cqrs-sync");
    seed(d, &parked, "cqrs-async");
    // A read model that differs from the truth: verify must fail with 1.
    sqlite_exec(
        &broken,
        &["UPDATE product_catalog SET stock = stock + 7 WHERE product_id = (SELECT MIN(product_id) FROM product_catalog)"],
    );
    // A parked event whose payload cannot be read: a replay cannot apply it.
    sqlite_exec(
        &parked,
        &[
            "UPDATE events SET payload = 'not json' WHERE seq = (SELECT MIN(seq) FROM events)",
            "INSERT INTO dead_letters (seq, projection, stream, error, attempts) SELECT MIN(seq), 'product_catalog', 'test', 'unreadable payload', 3 FROM events",
        ],
    );
    let foreign = d.join("theirs.db");
    sqlite_exec(
        &foreign,
        &[
            "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)",
            "INSERT INTO invoices VALUES (1, 100), (2, 200)",
        ],
    );
    let garbage = d.join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();

    let (e, n, s, a, b, p, f, g) = (
        sqlite(&empty),
        sqlite(&norm),
        sqlite(&sync),
        sqlite(&asyn),
        sqlite(&broken),
        sqlite(&parked),
        sqlite(&foreign),
        sqlite(&garbage),
    );
    use Kind::*;
    let mut cases = vec![
        case(
            "verify an empty file (not seeded)",
            &["verify", "--db", &e],
            2,
            Tool,
            "seed it first",
        ),
        case(
            "rebuild an empty file",
            &["rebuild", "--db", &e],
            2,
            Tool,
            "seed it first",
        ),
        case(
            "dead-letters on an empty file",
            &["dead-letters", "--db", &e],
            2,
            Tool,
            "seed it first",
        ),
        case(
            "verify a normalized-only database",
            &["verify", "--db", &n],
            2,
            Tool,
            "normalized",
        ),
        case(
            "rebuild a normalized-only database",
            &["rebuild", "--db", &n],
            2,
            Tool,
            "event log",
        ),
        case(
            "rebuild a cqrs-sync database",
            &["rebuild", "--db", &s],
            2,
            Tool,
            "event log",
        ),
        case(
            "rebuild --projection bogus",
            &["rebuild", "--db", &a, "--projection", "bogus"],
            2,
            Tool,
            "bogus",
        ),
        case(
            "dead-letters on a foreign file",
            &["dead-letters", "--db", &f],
            2,
            Tool,
            "invoices",
        ),
        case(
            "dead-letters --replay on a foreign file",
            &["dead-letters", "--db", &f, "--replay"],
            2,
            Tool,
            "invoices",
        ),
        case(
            "verify a foreign file",
            &["verify", "--db", &f],
            2,
            Tool,
            "invoices",
        ),
        case(
            "rebuild a foreign file",
            &["rebuild", "--db", &f],
            2,
            Tool,
            "invoices",
        ),
        case(
            "seed a foreign file",
            &["seed", "--db", &f],
            2,
            Tool,
            "invoices",
        ),
        // Exit 1: a check failed.
        case(
            "verify finds a mismatch",
            &["verify", "--db", &b],
            1,
            Tool,
            "mismatch",
        ),
        case(
            "dead letters remain after --replay",
            &["dead-letters", "--db", &p, "--replay"],
            1,
            Tool,
            "dead-lettered",
        ),
    ];
    // A file that is not a SQLite database: like a wrong URL, a clear error within seconds
    // (issue 8: "a clear error within a few seconds, exit 2").
    let mut not_sqlite = case(
        "verify a file that is not SQLite",
        &["verify", "--db", &g],
        2,
        Tool,
        "not a database",
    );
    not_sqlite.limit = Duration::from_secs(10);
    cases.push(not_sqlite);
    // The stand-alone projector, once it exists (`--help` lists it).
    let help = cli_in(d, &["--help".to_string()], Duration::from_secs(10));
    if help.stdout.contains("  projector ") {
        let unknown_host = "postgres://u:pw@nonexistent.invalid:5432/x";
        let mut more = vec![
            case("projector without --db", &["projector"], 2, Usage, "--db"),
            case(
                "projector on an empty file",
                &["projector", "--db", &e, "--until-idle"],
                2,
                Tool,
                "seed it first",
            ),
            case(
                "projector on a foreign file",
                &["projector", "--db", &f, "--until-idle"],
                2,
                Tool,
                "invoices",
            ),
            case(
                "projector on a cqrs-sync database",
                &["projector", "--db", &s, "--until-idle"],
                2,
                Tool,
                "event log",
            ),
            case(
                "projector --poll-interval abc",
                &[
                    "projector",
                    "--db",
                    &a,
                    "--until-idle",
                    "--poll-interval",
                    "abc",
                ],
                2,
                Tool,
                "abc",
            ),
            case(
                "projector, unknown host",
                &["projector", "--db", unknown_host, "--until-idle"],
                2,
                Tool,
                "",
            ),
        ];
        for c in &mut more {
            c.limit = Duration::from_secs(10);
            c.never = Some("pw@");
        }
        cases.extend(more);
    }
    run_cases(d, &cases);
    // The positive controls: the same databases are fine otherwise.
    for args in [
        vec!["verify", "--db", s.as_str()],
        vec!["verify", "--db", a.as_str()],
        vec!["rebuild", "--db", a.as_str(), "--projection", "daily_sales"],
        vec!["dead-letters", "--db", a.as_str()],
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let o = cli_in(d, &args, Duration::from_secs(60));
        assert_eq!(o.code, Some(0), "{args:?}:\n{}{}", o.stderr, o.stdout);
    }
}

/// The error lines of the tool name the file and the field for a scenario with many problems,
/// one per line, each `FILE: path: message` (README: "Every problem in a file is reported at
/// once, one line each").
#[test]
fn cli_scenario_problems_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.toml");
    std::fs::write(
        &file,
        "seed = -1\nduration = \"0s\"\nbackends = []\n[writes]\nrate = -5\nmix = { fly = 1 }\n[thresholds]\n\"x\\ny\" = \"<= 1\"\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let o = cli_in(
        dir.path(),
        &[
            "run".to_string(),
            f.clone(),
            "--out".into(),
            dir.path().join("o").display().to_string(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.len() >= 6, "every problem reported:\n{}", o.stderr);
    let bad: Vec<&&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            let l = if *i == 0 {
                l.strip_prefix("error: ").unwrap_or("<no error: prefix>")
            } else {
                l
            };
            !l.starts_with(&format!("{f}: "))
        })
        .map(|(_, l)| l)
        .collect();
    assert!(
        bad.is_empty(),
        "lines not of the form `FILE: path: message`: {bad:?}\nstderr:\n{}",
        o.stderr
    );
}
