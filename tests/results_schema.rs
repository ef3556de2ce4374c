//! `docs/results.schema.json` documents `results.json` exactly: a real run's results validate
//! against it, every property in it has a type and a description, and a copy of the results
//! with an undocumented field or a mistyped value does not validate (so the check can fail).
//!
//! The validator is a small subset of JSON Schema 2020-12, written here: `type` (a name or a
//! list, with `integer` and `null`), `properties`, `required`, `additionalProperties` (false or a
//! schema), `items` (schema or false), `prefixItems`, `minItems`/`maxItems`,
//! `minProperties`/`maxProperties`, `enum`, `const`, `minimum`/`maximum`/`exclusiveMinimum`/
//! `exclusiveMaximum`, `anyOf`, `oneOf` and `$ref` to `#/$defs/...`. Annotation keywords are
//! skipped; `pattern` and `propertyNames` are skipped too (no regex engine here). Any other
//! keyword makes the test fail, so the schema cannot rely on a check this validator does not do.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

const CHECKED: &[&str] = &[
    "type",
    "properties",
    "patternProperties",
    "pattern",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "oneOf",
    "$ref",
];
const SKIPPED: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "title",
    "description",
    "propertyNames",
];

struct Validator<'a> {
    root: &'a Value,
}

impl<'a> Validator<'a> {
    fn validate(&self, v: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(self.root, v, "$", &mut errors);
        errors
    }

    fn resolve(&self, r: &str) -> &'a Value {
        let name = r
            .strip_prefix("#/$defs/")
            .unwrap_or_else(|| panic!("unsupported $ref {r}"));
        self.root
            .get("$defs")
            .and_then(|d| d.get(name))
            .unwrap_or_else(|| panic!("dangling $ref {r}"))
    }

    fn type_ok(ty: &str, v: &Value) -> bool {
        match ty {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
            "array" => v.is_array(),
            "object" => v.is_object(),
            other => panic!("unknown type name {other:?} in the schema"),
        }
    }

    fn check(&self, schema: &'a Value, v: &Value, at: &str, errors: &mut Vec<String>) {
        let s = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                errors.push(format!("{at}: not allowed here"));
                return;
            }
            Value::Object(s) => s,
            other => panic!("a schema must be an object or a boolean, got {other}"),
        };
        for k in s.keys() {
            assert!(
                CHECKED.contains(&k.as_str()) || SKIPPED.contains(&k.as_str()),
                "schema keyword {k:?} (at {at}) is not supported by this validator"
            );
        }
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            self.check(self.resolve(r), v, at, errors);
        }
        if let Some(ty) = s.get("type") {
            let ok = match ty {
                Value::String(t) => Self::type_ok(t, v),
                Value::Array(ts) => ts
                    .iter()
                    .any(|t| Self::type_ok(t.as_str().expect("type names"), v)),
                other => panic!("bad type {other}"),
            };
            if !ok {
                errors.push(format!("{at}: expected type {ty}, got {v}"));
                return;
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                errors.push(format!("{at}: {v} is not one of {e:?}"));
            }
        }
        if let (Some(pattern), Some(text)) = (s.get("pattern").and_then(Value::as_str), v.as_str())
        {
            if !regex::Regex::new(pattern).unwrap().is_match(text) {
                errors.push(format!("{at}: {v} does not match {pattern}"));
            }
        }
        if let Some(c) = s.get("const") {
            if c != v {
                errors.push(format!("{at}: expected {c}, got {v}"));
            }
        }
        if let Some(x) = v.as_f64() {
            let bound = |k: &str| s.get(k).and_then(Value::as_f64);
            if bound("minimum").is_some_and(|m| x < m)
                || bound("maximum").is_some_and(|m| x > m)
                || bound("exclusiveMinimum").is_some_and(|m| x <= m)
                || bound("exclusiveMaximum").is_some_and(|m| x >= m)
            {
                errors.push(format!("{at}: {x} is out of range"));
            }
        }
        if let Some(subs) = s.get("anyOf").and_then(Value::as_array) {
            if !subs.iter().any(|sub| self.ok(sub, v, at)) {
                errors.push(format!("{at}: matches none of anyOf"));
            }
        }
        if let Some(subs) = s.get("oneOf").and_then(Value::as_array) {
            let n = subs.iter().filter(|sub| self.ok(sub, v, at)).count();
            if n != 1 {
                errors.push(format!("{at}: matches {n} of oneOf, expected exactly 1"));
            }
        }
        if let Value::Object(o) = v {
            let count = |k: &str| s.get(k).and_then(Value::as_u64);
            if count("minProperties").is_some_and(|m| (o.len() as u64) < m)
                || count("maxProperties").is_some_and(|m| (o.len() as u64) > m)
            {
                errors.push(format!("{at}: wrong number of properties ({})", o.len()));
            }
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for r in req {
                    let r = r.as_str().expect("required names");
                    if !o.contains_key(r) {
                        errors.push(format!("{at}: missing required property {r:?}"));
                    }
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            // A key no property names may match a pattern (a pack's op names).
            let by_pattern = |k: &str| {
                s.get("patternProperties")
                    .and_then(Value::as_object)?
                    .iter()
                    .find(|(pattern, _)| regex::Regex::new(pattern).unwrap().is_match(k))
                    .map(|(_, schema)| schema)
            };
            for (k, val) in o {
                let path = format!("{at}.{k}");
                match props.and_then(|p| p.get(k)).or_else(|| by_pattern(k)) {
                    Some(ps) => self.check(ps, val, &path, errors),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errors.push(format!("{path}: property not in the schema"))
                        }
                        Some(ap) => self.check(ap, val, &path, errors),
                        None => {}
                    },
                }
            }
        }
        if let Value::Array(a) = v {
            let count = |k: &str| s.get(k).and_then(Value::as_u64);
            if count("minItems").is_some_and(|m| (a.len() as u64) < m)
                || count("maxItems").is_some_and(|m| (a.len() as u64) > m)
            {
                errors.push(format!("{at}: wrong number of items ({})", a.len()));
            }
            let prefix = s
                .get("prefixItems")
                .and_then(Value::as_array)
                .map(|p| p.as_slice())
                .unwrap_or(&[]);
            for (i, item) in a.iter().enumerate() {
                let path = format!("{at}[{i}]");
                if let Some(ps) = prefix.get(i) {
                    self.check(ps, item, &path, errors);
                } else if let Some(is) = s.get("items") {
                    self.check(is, item, &path, errors);
                }
            }
        }
    }

    fn ok(&self, schema: &'a Value, v: &Value, at: &str) -> bool {
        let mut e = Vec::new();
        self.check(schema, v, at, &mut e);
        e.is_empty()
    }
}

fn load_schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results.schema.json");
    let text = std::fs::read_to_string(&path).expect("docs/results.schema.json");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Runs the ci scenario for normalized and cqrs-async (3 s) and returns results.json.
fn real_results() -> Value {
    real_results_of("normalized,cqrs-async", None)
}

/// Runs the ci scenario for `backends` (3 s), with an extra scenario section appended when
/// given, and returns results.json.
fn real_results_of(backends: &str, extra: Option<&str>) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let mut scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci.toml");
    if let Some(extra) = extra {
        let text = std::fs::read_to_string(&scenario).expect("ci.toml");
        scenario = dir.path().join("ci.toml");
        std::fs::write(&scenario, format!("{text}\n{extra}\n")).expect("write scenario");
    }
    let o = Command::new(BIN)
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--backends",
            backends,
            "--duration",
            "3s",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("run binary");
    assert!(
        o.status.success(),
        "run failed ({:?}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json is JSON")
}

fn assert_invalid(validator: &Validator, v: &Value, what: &str, expect_at: &str) {
    let errors = validator.validate(v);
    assert!(
        errors.iter().any(|e| e.starts_with(expect_at)),
        "{what}: expected an error at {expect_at}, got {errors:?}"
    );
}

#[test]
fn real_results_match_the_schema_and_the_check_can_fail() {
    let schema = load_schema();
    let validator = Validator { root: &schema };
    let results = real_results();

    let errors = validator.validate(&results);
    assert!(
        errors.is_empty(),
        "results.json does not match docs/results.schema.json:\n{}",
        errors.join("\n")
    );
    // The run exercised the nullable parts both ways.
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0]["verify"].is_null() && runs[0]["projector"].is_null());
    assert!(runs[1]["verify"].is_object() && runs[1]["projector"].is_object());
    // Every run recorded its floor (both lanes of ci.toml have a rate).
    for run in runs {
        assert!(run["floor"]["write"].is_object(), "floor: {}", run["floor"]);
        assert!(run["floor"]["read"].is_object(), "floor: {}", run["floor"]);
    }

    // An undocumented field, at the top and deep inside, is rejected.
    let mut extra = results.clone();
    extra["surprise"] = json!(1);
    assert_invalid(&validator, &extra, "extra top-level field", "$.surprise");
    let mut extra = results.clone();
    extra["runs"][1]["metrics"]["ops"]["write"]["latency"]["p95_us"] = json!(5);
    assert_invalid(
        &validator,
        &extra,
        "extra nested field",
        "$.runs[1].metrics.ops.write.latency.p95_us",
    );
    let mut extra = results.clone();
    extra["runs"][0]["metrics"]["ops"]["refund"] = runs[0]["metrics"]["ops"]["write"].clone();
    assert_invalid(
        &validator,
        &extra,
        "an op key without its side (write. or read.)",
        "$.runs[0].metrics.ops.refund",
    );

    // Wrong types are rejected.
    let mut wrong = results.clone();
    wrong["runs"][0]["metrics"]["saturated"] = json!("no");
    assert_invalid(
        &validator,
        &wrong,
        "string for a boolean",
        "$.runs[0].metrics.saturated",
    );
    let mut wrong = results.clone();
    wrong["runs"][0]["metrics"]["driver_behind"] = json!(0);
    assert_invalid(
        &validator,
        &wrong,
        "number for a boolean",
        "$.runs[0].metrics.driver_behind",
    );
    // The removed flags are no longer documented.
    for (at, field) in [("metrics", "fell_behind"), ("run", "did_not_keep_up")] {
        let mut old = results.clone();
        let target = if at == "metrics" {
            &mut old["runs"][0]["metrics"]
        } else {
            &mut old["runs"][0]
        };
        target[field] = json!(false);
        let path = if at == "metrics" {
            format!("$.runs[0].metrics.{field}")
        } else {
            format!("$.runs[0].{field}")
        };
        assert_invalid(&validator, &old, "a removed flag", &path);
    }
    // The floor and the CPU figures are typed too (both are nullable, so the error is that
    // the value matches neither the object nor null).
    let mut wrong = results.clone();
    wrong["runs"][0]["floor"]["write"]["p99_us"] = json!(-1);
    assert_invalid(
        &validator,
        &wrong,
        "negative floor latency",
        "$.runs[0].floor",
    );
    let mut wrong = results.clone();
    wrong["runs"][0]["cpu"]["driver_us_per_op"] = json!("fast");
    assert_invalid(
        &validator,
        &wrong,
        "a string for CPU per op",
        "$.runs[0].cpu",
    );
    let mut wrong = results.clone();
    wrong["runs"][0]["metrics"]["unstarted"]["writes"] = json!(0.5);
    assert_invalid(
        &validator,
        &wrong,
        "fractional unstarted count",
        "$.runs[0].metrics.unstarted.writes",
    );
    let mut wrong = results.clone();
    wrong["environment"]["threads"] = json!(0);
    assert_invalid(
        &validator,
        &wrong,
        "zero runtime threads",
        "$.environment.threads",
    );
    let mut wrong = results.clone();
    wrong["runs"][1]["metrics"]["intervals"][0]["writes"] = json!(1.5);
    assert_invalid(
        &validator,
        &wrong,
        "float for an integer",
        "$.runs[1].metrics.intervals[0].writes",
    );
    let mut wrong = results.clone();
    wrong["runs"][0]["backend"] = json!("mongo");
    assert_invalid(&validator, &wrong, "unknown backend", "$.runs[0].backend");
    let mut wrong = results.clone();
    wrong["scenario"]["product_keys"] = json!({"kind": "zipf"});
    assert_invalid(
        &validator,
        &wrong,
        "zipf without exponent",
        "$.scenario.product_keys",
    );
    let mut wrong = results.clone();
    wrong["runs"][1]["metrics"]["lag"]["spectrum"] = json!([[50.0, 10, 3]]);
    assert_invalid(
        &validator,
        &wrong,
        "spectrum point with three items",
        "$.runs[1].metrics.lag.spectrum[0]",
    );
    let mut missing = results.clone();
    missing.as_object_mut().unwrap().remove("stream_hash");
    assert_invalid(&validator, &missing, "missing required field", "$");
}

/// Every property of every object schema has a `type` and a `description`, and every object
/// with listed properties says which are required.
/// An event-sourced run with snapshots: its concurrency counters, event-store costs and the
/// scenario's [event_sourcing] section are documented too.
#[test]
fn event_sourced_results_match_the_schema() {
    let schema = load_schema();
    let validator = Validator { root: &schema };
    let results = real_results_of(
        "event-sourced",
        Some("[event_sourcing]\nsnapshot_every = 5"),
    );
    assert_eq!(results["scenario"]["event_sourcing"]["snapshot_every"], 5);
    let run = &results["runs"][0];
    assert!(
        run["event_store"]["rehydrations"].as_u64().unwrap() > 0,
        "{run}"
    );
    assert!(run["event_store"]["snapshots_written"].as_u64().unwrap() > 0);
    assert!(run["concurrency"].as_array().is_some_and(|c| !c.is_empty()));
    let errors = validator.validate(&results);
    assert!(
        errors.is_empty(),
        "results.json does not match docs/results.schema.json:\n{}",
        errors.join("\n")
    );
    let mut bad = results.clone();
    bad["runs"][0]["event_store"]["rehydration_time"] = json!("fast");
    assert_invalid(
        &validator,
        &bad,
        "a mistyped event_store field",
        "$.runs[0].event_store.rehydration_time",
    );
}

#[test]
fn every_property_is_typed_and_described() {
    let schema = load_schema();
    let mut problems = Vec::new();
    fn walk(s: &Value, at: &str, problems: &mut Vec<String>) {
        let Some(o) = s.as_object() else { return };
        if let Some(props) = o.get("properties").and_then(Value::as_object) {
            let is_variant = !o.contains_key("description"); // oneOf branches of KeyDist
            if !is_variant {
                if !o.contains_key("required") {
                    problems.push(format!("{at}: no required list"));
                }
                for (k, p) in props {
                    for key in ["type", "description"] {
                        if p.get(key).is_none() {
                            problems.push(format!("{at}.{k}: no {key}"));
                        }
                    }
                }
            }
            for (k, p) in props {
                walk(p, &format!("{at}.{k}"), problems);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = o.get(key) {
                walk(sub, &format!("{at}/{key}"), problems);
            }
        }
    }
    walk(&schema, "$", &mut problems);
    for (name, def) in schema["$defs"].as_object().expect("$defs") {
        if def.get("description").is_none() {
            problems.push(format!("$defs.{name}: no description"));
        }
        walk(def, &format!("$defs.{name}"), &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

/// The validator itself on small cases, so a bug in it cannot make everything pass.
#[test]
fn the_validator_rejects_what_it_should() {
    let schema = json!({
        "type": "object",
        "properties": {
            "a": {"type": ["integer", "null"]},
            "b": {"$ref": "#/$defs/B"},
            "c": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "integer"}],
                  "items": false}
        },
        "required": ["a"],
        "additionalProperties": false,
        "$defs": {"B": {"type": "string", "enum": ["x", "y"]}}
    });
    let v = Validator { root: &schema };
    assert!(v
        .validate(&json!({"a": 1, "b": "x", "c": [1.5, 2]}))
        .is_empty());
    assert!(v.validate(&json!({"a": null})).is_empty());
    assert!(!v.validate(&json!({"a": 1.5})).is_empty(), "integer");
    assert!(!v.validate(&json!({"a": "1"})).is_empty(), "type");
    assert!(!v.validate(&json!({})).is_empty(), "required");
    assert!(
        !v.validate(&json!({"a": 1, "z": 0})).is_empty(),
        "additional"
    );
    assert!(
        !v.validate(&json!({"a": 1, "b": "z"})).is_empty(),
        "enum via $ref"
    );
    let patterned = json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "patternProperties": {"^x_[a-z]+$": {"type": "string", "pattern": "^[0-9]+$"}},
        "additionalProperties": false
    });
    let p = Validator { root: &patterned };
    assert!(p.validate(&json!({"a": 1, "x_b": "12"})).is_empty());
    assert!(
        !p.validate(&json!({"x_B": "12"})).is_empty(),
        "no pattern matches"
    );
    assert!(
        !p.validate(&json!({"x_b": "1a"})).is_empty(),
        "pattern of a value"
    );
    assert!(
        !p.validate(&json!({"x_b": 12})).is_empty(),
        "type via a pattern"
    );
    assert!(
        !v.validate(&json!({"a": 1, "c": [1, 2, 3]})).is_empty(),
        "items false"
    );
    assert!(
        !v.validate(&json!({"a": 1, "c": [1, 2.5]})).is_empty(),
        "prefixItems"
    );
}

/// A recorded matview/triggers run on PostgreSQL (the verdict's fixture) matches the schema:
/// `[matview]`, each view's refreshes, the alternatives' backend names.
#[test]
fn matview_results_match_the_schema() {
    let schema = load_schema();
    let validator = Validator { root: &schema };
    let results: Value =
        serde_json::from_str(include_str!("data/alternatives-results.json")).unwrap();
    let matview = results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .position(|r| r["backend"] == "matview")
        .expect("a matview run");
    assert!(results["runs"][matview]["refreshes"]
        .as_array()
        .is_some_and(|r| r.len() == 5));
    let errors = validator.validate(&results);
    assert!(
        errors.is_empty(),
        "results.json does not match docs/results.schema.json:\n{}",
        errors.join("\n")
    );
    let mut bad = results.clone();
    bad["runs"][matview]["refreshes"][0]["refreshes"] = json!(-1);
    assert_invalid(
        &validator,
        &bad,
        "a negative refresh count",
        &format!("$.runs[{matview}].refreshes[0].refreshes"),
    );
}

/// The story fixtures (the verdict's recorded runs) match the schema, and a story the tool
/// does not know is refused.
#[test]
fn story_results_match_the_schema() {
    let schema = load_schema();
    let validator = Validator { root: &schema };
    for (name, text) in [
        (
            "read-model-lag",
            include_str!("data/read-model-lag-results.json"),
        ),
        ("dashboard", include_str!("data/dashboard-results.json")),
        (
            "denormalization",
            include_str!("data/denormalization-results.json"),
        ),
    ] {
        let results: Value = serde_json::from_str(text).unwrap();
        assert_eq!(results["scenario"]["story"], json!(name));
        let errors = validator.validate(&results);
        assert!(
            errors.is_empty(),
            "{name}: results.json does not match docs/results.schema.json:\n{}",
            errors.join("\n")
        );
        let mut bad = results.clone();
        bad["scenario"]["story"] = json!("dashboards");
        assert_invalid(&validator, &bad, "an unknown story", "$.scenario.story");
    }
}

/// The denormalization fixture's runs carry an orders sweep point, the order-line copies'
/// verify check and (denormalized only) what readers of the rewritten lines saw; each is
/// documented, and a mistyped one does not validate.
#[test]
fn denormalization_results_match_the_schema_and_the_check_can_fail() {
    let schema = load_schema();
    let validator = Validator { root: &schema };
    let results: Value =
        serde_json::from_str(include_str!("data/denormalization-results.json")).unwrap();
    let runs = results["runs"].as_array().unwrap();
    let denorm = runs
        .iter()
        .position(|r| r["backend"] == "denormalized")
        .expect("a denormalized run");
    assert!(runs[denorm]["sweep_point"]["orders"].is_u64());
    assert_eq!(
        runs[denorm]["verify"]["models"][0]["read_model"],
        "order_line_copies"
    );
    assert!(runs[denorm]["rewrite_reads"]["reads"].as_u64().unwrap() > 0);
    let mut bad = results.clone();
    bad["runs"][denorm]["rewrite_reads"]["torn"] = json!(-1);
    assert_invalid(
        &validator,
        &bad,
        "a negative torn count",
        &format!("$.runs[{denorm}].rewrite_reads.torn"),
    );
    let mut bad = results.clone();
    bad["runs"][denorm]["sweep_point"] = json!({"orders": 10, "readers": 1});
    assert_invalid(
        &validator,
        &bad,
        "two sweep keys",
        &format!("$.runs[{denorm}].sweep_point"),
    );
    let mut bad = results.clone();
    bad["runs"][denorm]["verify"]["models"][0]["read_model"] = json!("order lines");
    assert_invalid(
        &validator,
        &bad,
        "an unknown check",
        // `verify` may be null, so the error is the anyOf's.
        &format!("$.runs[{denorm}].verify"),
    );
}

/// A pack's results (the forum swept over its threads) match the schema too: the scenario's
/// `workload`, the size sweep and its points, and the pack's ops by name.
#[test]
fn pack_results_with_a_size_sweep_match_the_schema() {
    let schema = load_schema();
    let validator = Validator { root: &schema };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = dir.path().join("forum.toml");
    std::fs::write(
        &scenario,
        format!(
            "description = \"forum\"\nworkload = \"{}\"\nduration = \"3s\"\nwarmup = \"1s\"\n\
             backends = [\"cqrs-sync\"]\n[dataset]\nauthors = 20\nposts = 100\n\
             [writes]\nrate = 20\n[reads]\nrate = 20\n[sweep]\nthreads = [10, 30]\n",
            root.join("workloads/forum").display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = Command::new(BIN)
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--out"])
        .arg(&out)
        .output()
        .expect("run binary");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["runs"].as_array().unwrap().len(), 2);
    let errors = validator.validate(&results);
    assert!(
        errors.is_empty(),
        "results.json does not match docs/results.schema.json:\n{}",
        errors.join("\n")
    );
    let mut bad = results.clone();
    bad["runs"][1]["sweep_point"]["size"]["value"] = json!("thirty");
    assert_invalid(
        &validator,
        &bad,
        "a size point's value as text",
        // `sweep_point` may be null, so the error is the anyOf's.
        "$.runs[1].sweep_point",
    );
}
