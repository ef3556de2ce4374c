//! The validating walk over a parsed TOML table. Every check records its problem and carries
//! on with a default, so one pass reports everything that is wrong.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

use super::duration::{format_duration, parse_duration};
use super::thresholds::{parse_budget, parse_threshold, Budgets, Metric, Threshold, Thresholds};
use super::{
    CopyFrom, EventSourcingSettings, Load, MatviewSettings, PackWorkload, Problem,
    ProjectorSettings, Rate, Scenario, Story, Sweep, TextSearchSettings,
};
use crate::backend::BackendKind;
use crate::dataset::spec::{
    estimated_bytes, field_max, MAX_DATASET_BYTES, MAX_EXTRA_PRODUCT_INDEXES,
};
use crate::dataset::DatasetSpec;
use crate::domain::{CommandKind, QueryKind};
use crate::metrics::{MetricKey, OpKey, OpName};
use crate::pack::Pack;
use crate::toml_path::{child, element, syntax_error, type_name};
use crate::workload::keys::KeyDist;

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
    "event_sourcing",
    "sweep",
    "ryw_share",
    "ryw_think_times",
    "thresholds",
    "budgets",
    "matview",
    "text_search",
    "story",
    "workload",
];
/// Sections that describe the built-in shop, which a scenario running a pack cannot use.
const SHOP_ONLY_KEYS: &[(&str, &str)] = &[
    ("keys", "a pack draws its keys in its own [parameters]"),
    (
        "event_sourcing",
        "the event-sourced backend runs the built-in shop only",
    ),
    ("text_search", "text_search is a query of the built-in shop"),
    ("story", "the stories are told about the built-in shop"),
];
const DATASET_KEYS: &[&str] = &[
    "categories",
    "products",
    "users",
    "orders",
    "reviews",
    "price_changes",
    "days",
    "extra_product_indexes",
];
const LOAD_KEYS: &[&str] = &["rate", "workers", "mix"];
const KEYS_KEYS: &[&str] = &["products", "users"];
const DIST_KEYS: &[&str] = &["kind", "exponent", "hot_keys", "hot_ops"];
const PROJECTOR_KEYS: &[&str] = &["batch_size", "poll_interval", "redeliver"];
const MATVIEW_KEYS: &[&str] = &["refresh_interval", "views"];
const EVENT_SOURCING_KEYS: &[&str] = &["snapshot_every"];
const TEXT_SEARCH_KEYS: &[&str] = &["terms"];
const SWEEP_KEYS: &[&str] = &["read_rates", "readers", "orders"];
/// `[dataset]` keys of a pack's scenario that are not sizes: where its rows are copied from.
const COPY_KEYS: &[&str] = &["copy_from", "copy_schema"];
/// The most think times a scenario may give: each keeps every probe open that much longer.
const MAX_RYW_THINK_TIMES: usize = 5;
/// The longest think time: a probe waiting longer than a minute measures a backlog, not a user.
pub const MAX_RYW_THINK_TIME: Duration = Duration::from_secs(60);
const DIST_KINDS: &str = "uniform, zipf, hotspot";
const DEFAULT_WORKERS: u32 = 4;
const DEFAULT_SEED: u64 = 1;
/// The highest open-loop rate: the op stream's timestamps are whole microseconds.
const MAX_RATE: f64 = 1e6;

/// A TOML syntax error as one problem located by line and column.
pub(super) fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let (place, message) = syntax_error(text, e);
    Problem {
        path: place.unwrap_or_else(|| "TOML".to_string()),
        message,
    }
}

/// Walks a scenario table; `Err` carries every problem found.
/// `overridden`: the key paths the command line gave (`duration`, `backends`, ...). A warm-up
/// not shorter than a duration given there is the duration's problem; thresholds on backends
/// that `--backends` leaves out are the user's choice (`check` lists them as not checked).
/// `base`: the scenario file's folder, which a `workload` path is relative to.
pub(super) fn scenario(
    root: &Table,
    name: &str,
    overridden: &[&str],
    base: &Path,
) -> Result<Scenario, Vec<Problem>> {
    let blame_duration = overridden.contains(&"duration") && !overridden.contains(&"warmup");
    let mut w = Walker::default();
    w.unknown_keys(root, "", TOP_KEYS);
    let pack = root.get("workload").and_then(|v| w.workload(v, base));
    if pack.is_some() {
        for (key, why) in SHOP_ONLY_KEYS {
            if root.contains_key(*key) {
                w.problem(*key, format!("not for a pack's scenario: {why}"));
            }
        }
    }
    // The op names thresholds and budgets may name: the shop's, or the pack's.
    w.ops = match &pack {
        Some(p) => OpNames {
            commands: p
                .commands
                .keys()
                .map(|n| OpName::intern(n).as_str())
                .collect(),
            queries: p
                .queries
                .keys()
                .map(|n| OpName::intern(n).as_str())
                .collect(),
        },
        None => OpNames {
            commands: CommandKind::ALL.iter().map(|k| k.name()).collect(),
            queries: QueryKind::ALL.iter().map(|k| k.name()).collect(),
        },
    };

    let description = w.description(root.get("description"));
    let seed = match root.get("seed") {
        None => Some(DEFAULT_SEED),
        Some(v) => w.int_min(v, "seed", 0).map(|n| n as u64),
    };
    let duration = match root.get("duration") {
        None => {
            w.problem("duration", "required, e.g. duration = \"30s\"");
            None
        }
        Some(v) => w.duration_positive(v, "duration"),
    };
    let warmup = match root.get("warmup") {
        None => Some(Duration::ZERO),
        Some(v) => w.duration(v, "warmup"),
    };
    if let (Some(d), Some(wu)) = (duration, warmup) {
        if wu >= d && blame_duration {
            w.problem(
                "duration",
                format!(
                    "{} is not longer than the warm-up ({})",
                    format_duration(d),
                    format_duration(wu)
                ),
            );
        } else if wu >= d {
            w.problem(
                "warmup",
                format!(
                    "must be shorter than duration ({}), got {}",
                    format_duration(d),
                    format_duration(wu)
                ),
            );
        }
    }
    let (dataset, pack_sizes) = match &pack {
        None => (w.dataset(root.get("dataset")), BTreeMap::new()),
        Some(p) => (DatasetSpec::default(), w.pack_sizes(root.get("dataset"), p)),
    };
    let copy_from = pack
        .as_ref()
        .and_then(|p| w.copy_from(root.get("dataset"), p));
    // A pack's mixes name its commands and queries; the shop's its kinds.
    let (commands, queries) = (w.ops.commands.clone(), w.ops.queries.clone());
    let (writes, pack_writes) = match &pack {
        None => (
            w.load(
                root.get("writes"),
                "writes",
                &CommandKind::ALL,
                |k| k.name(),
                "command",
            ),
            None,
        ),
        Some(_) => {
            let l = w.load(root.get("writes"), "writes", &commands, |k| k, "command");
            (l.without_mix(), Some(l.mix))
        }
    };
    let (reads, pack_reads) = match &pack {
        None => (
            w.load(
                root.get("reads"),
                "reads",
                &QueryKind::ALL,
                |k| k.name(),
                "query",
            ),
            None,
        ),
        Some(_) => {
            let l = w.load(root.get("reads"), "reads", &queries, |k| k, "query");
            (l.without_mix(), Some(l.mix))
        }
    };
    let (product_keys, user_keys) = w.keys(root.get("keys"));
    let problems_before_backends = w.problems.len();
    let backends = w.backends(root.get("backends"), pack.is_some());
    let backends_valid = w.problems.len() == problems_before_backends;
    let projector = w.projector(root.get("projector"));
    let event_sourcing = w.event_sourcing(root.get("event_sourcing"));
    let sweep = w.sweep(root.get("sweep"), pack.as_ref());
    if let (Some(Sweep::Size { size, .. }), Some(p)) = (&sweep, &pack) {
        let measured = p.copy.as_ref().is_some_and(|c| c.sizes.contains_key(size));
        if copy_from.is_some() && measured {
            w.problem(
                child("sweep", size),
                "measured on the database copy_from names (the pack's copy.sizes): it cannot \
                 be swept",
            );
        }
    }
    if let Some(Sweep::Orders(points)) = &sweep {
        if pack.is_some() {
            w.problem(
                "sweep.orders",
                "not for a pack's scenario: it sweeps the built-in shop's orders; sweep the \
                 read load (read_rates, readers) or one of the pack's sizes",
            );
        } else {
            w.orders_sweep_fits(&dataset, points);
        }
    }
    let ryw_share = match root.get("ryw_share") {
        None => Some(0.0),
        Some(v) => w.number(v, "ryw_share").and_then(|x| {
            if (0.0..=1.0).contains(&x) {
                Some(x)
            } else {
                w.problem("ryw_share", format!("must be between 0 and 1, got {x}"));
                None
            }
        }),
    };
    let ryw_think_times = w.ryw_think_times(root.get("ryw_think_times"));
    let thresholds = w.thresholds(root.get("thresholds"));
    let budgets = w.budgets(root.get("budgets"));
    let backends_chosen = overridden.contains(&"backends");
    w.thresholds_can_fail(
        &thresholds,
        (backends_valid && !backends_chosen).then_some(&backends),
    );
    // A pack's views are its read models; the shop's, its own.
    let views: Vec<String> = match &pack {
        Some(p) => p.read_models.keys().cloned().collect(),
        None => crate::backend::matview::RefreshSchedule::views()
            .into_iter()
            .map(str::to_string)
            .collect(),
    };
    let matview = w.matview(root.get("matview"), &views);
    let text_search = w.text_search(root.get("text_search"));
    let story = root.get("story").and_then(|v| w.story(v));

    // Cross-field checks, only on values that are themselves valid.
    // A read-load sweep gives the reads their load; a sweep over the dataset does not.
    let sweep_given = root
        .get("sweep")
        .and_then(Value::as_table)
        .is_some_and(|t| t.contains_key("read_rates") || t.contains_key("readers"));
    let writes_active = writes.rate.is_some_and(|r| !r.is_zero());
    let reads_active = reads.rate.is_some_and(|r| !r.is_zero()) || sweep_given;
    // A pack's scenario runs the pack's mixes (below); the shop's stay empty.
    let shop = pack.is_none();
    let writes_mix = w.finish_mix(
        writes.mix,
        writes_active && shop,
        "writes",
        &CommandKind::ALL,
    );
    let reads_mix = w.finish_mix(
        reads.mix,
        reads_active && shop,
        "reads",
        &QueryKind::DEFAULT_MIX,
    );
    let workload = pack.map(|p| {
        let writes = w.finish_mix(
            pack_writes.unwrap_or(MixParts::Missing),
            writes_active,
            "writes",
            &commands,
        );
        let reads = w.finish_mix(
            pack_reads.unwrap_or(MixParts::Missing),
            reads_active,
            "reads",
            &queries,
        );
        let owned =
            |m: BTreeMap<&str, f64>| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        PackWorkload {
            name: p.name.clone(),
            dir: p.dir.clone(),
            sizes: pack_sizes,
            writes: owned(writes),
            reads: owned(reads),
            copy_from,
        }
    });
    if writes.rate.is_some() && !writes_active {
        match &sweep {
            None | Some(Sweep::Orders(_))
                if !sweep_given && reads.rate.is_some_and(|r| r.is_zero()) =>
            {
                w.problem(
                    "writes.rate",
                    "no load: writes.rate and reads.rate are both 0 (or missing) and there is no \
                 read-load [sweep]; give at least one of them a rate",
                )
            }
            Some(Sweep::ReadRates(rates)) if rates.iter().all(|r| *r == 0.0) => w.problem(
                "sweep.read_rates",
                "no load: writes.rate is 0 (or missing) and every sweep point has read rate 0",
            ),
            _ => {}
        }
    }
    if !text_search.terms.is_empty() && !reads_mix.contains_key(&QueryKind::TextSearch) {
        w.problem(
            "text_search.terms",
            "reads.mix has no text_search to use these terms; add it to the mix or drop the terms",
        );
    }

    // What a story needs, once the rest holds (an invalid sweep or mix is reported as such).
    if let Some(story) = story.filter(|_| w.problems.is_empty()) {
        for (field, problem) in story.problems(&reads_mix, sweep.as_ref()) {
            w.problem(field, problem);
        }
    }

    if !w.problems.is_empty() {
        return Err(w.problems);
    }
    // No problems means every required value is present.
    Ok(Scenario {
        name: name.to_string(),
        description: description.unwrap_or_default(),
        seed: seed.unwrap_or(DEFAULT_SEED),
        duration: duration.unwrap_or_default(),
        warmup: warmup.unwrap_or_default(),
        dataset,
        writes: Load {
            rate: writes.rate.unwrap_or_default(),
            workers: writes.workers,
            mix: writes_mix,
        },
        reads: Load {
            rate: reads.rate.unwrap_or_default(),
            workers: reads.workers,
            mix: reads_mix,
        },
        product_keys,
        user_keys,
        backends,
        projector,
        event_sourcing,
        sweep,
        ryw_share: ryw_share.unwrap_or_default(),
        ryw_think_times,
        thresholds,
        budgets,
        matview,
        text_search,
        story,
        workload,
    })
}

/// A `[writes]`/`[reads]` section before the cross-field checks.
struct LoadParts<K> {
    /// `None` when invalid.
    rate: Option<Rate>,
    workers: u32,
    mix: MixParts<K>,
}

impl<K> LoadParts<K> {
    /// The rate and workers, the mix taken apart (a pack's names go to its workload).
    fn without_mix<J>(&self) -> LoadParts<J> {
        LoadParts {
            rate: self.rate,
            workers: self.workers,
            mix: MixParts::Missing,
        }
    }
}

/// The op names a scenario's thresholds and budgets may name.
#[derive(Default)]
struct OpNames {
    commands: Vec<&'static str>,
    queries: Vec<&'static str>,
}

enum MixParts<K> {
    /// No `mix` key.
    Missing,
    /// A mix with at least one invalid entry (already reported).
    Invalid,
    Valid(BTreeMap<K, f64>),
}

#[derive(Default)]
struct Walker {
    problems: Vec<Problem>,
    ops: OpNames,
}

impl Walker {
    /// Records a problem; line breaks (from keys or values quoted back) are escaped, so each
    /// problem stays one line.
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let one_line = |s: String| s.replace('\r', "\\r").replace('\n', "\\n");
        self.problems.push(Problem {
            path: one_line(path.into()),
            message: one_line(message.into()),
        });
    }

    fn expected(&mut self, path: &str, what: &str, v: &Value) {
        self.problem(path, format!("expected {what}, got {}", type_name(v)));
    }

    fn unknown_keys(&mut self, t: &Table, prefix: &str, allowed: &[&str]) {
        for key in t.keys() {
            if !allowed.contains(&key.as_str()) {
                let mut message = format!("unknown key (expected one of: {})", allowed.join(", "));
                if !prefix.is_empty() && TOP_KEYS.contains(&key.as_str()) {
                    message.push_str(&format!(
                        "; `{key}` is a top-level key: move it above the first [table] header"
                    ));
                }
                self.problem(child(prefix, key), message);
            }
        }
    }

    fn table<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Table> {
        match v {
            Value::Table(t) => Some(t),
            other => {
                self.expected(path, "a table", other);
                None
            }
        }
    }

    fn string<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.expected(path, "a string", other);
                None
            }
        }
    }

    fn integer(&mut self, v: &Value, path: &str) -> Option<i64> {
        match v {
            Value::Integer(n) => Some(*n),
            other => {
                self.expected(path, "an integer", other);
                None
            }
        }
    }

    fn int_min(&mut self, v: &Value, path: &str, min: i64) -> Option<i64> {
        let n = self.integer(v, path)?;
        if n < min {
            self.problem(path, format!("must be >= {min}, got {n}"));
            return None;
        }
        Some(n)
    }

    fn count_u32(&mut self, v: &Value, path: &str) -> Option<u32> {
        self.u32_min(v, path, 1)
    }

    fn u32_min(&mut self, v: &Value, path: &str, min: i64) -> Option<u32> {
        let n = self.int_min(v, path, min)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.problem(path, format!("must be <= {}, got {n}", u32::MAX));
                None
            }
        }
    }

    /// An integer or a finite float.
    fn number(&mut self, v: &Value, path: &str) -> Option<f64> {
        let x = match v {
            Value::Integer(n) => *n as f64,
            Value::Float(x) => *x,
            other => {
                self.expected(path, "a number", other);
                return None;
            }
        };
        if !x.is_finite() {
            self.problem(path, format!("must be a finite number, got {x}"));
            return None;
        }
        Some(x)
    }

    fn non_negative(&mut self, v: &Value, path: &str) -> Option<f64> {
        let x = self.number(v, path)?;
        if x < 0.0 {
            self.problem(path, format!("must be >= 0, got {x}"));
            return None;
        }
        Some(x)
    }

    fn duration(&mut self, v: &Value, path: &str) -> Option<Duration> {
        match v {
            Value::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.problem(path, e);
                    None
                }
            },
            Value::Integer(n) => {
                self.problem(
                    path,
                    format!(
                        "expected a duration string such as \"30s\", got an integer \
                         (add a unit: \"{n}s\" or \"{n}ms\")"
                    ),
                );
                None
            }
            other => {
                self.expected(path, "a duration string such as \"30s\"", other);
                None
            }
        }
    }

    fn duration_positive(&mut self, v: &Value, path: &str) -> Option<Duration> {
        let d = self.duration(v, path)?;
        if d.is_zero() {
            self.problem(path, "must be > 0, got 0");
            return None;
        }
        Some(d)
    }

    fn description(&mut self, v: Option<&Value>) -> Option<String> {
        let Some(v) = v else {
            self.problem(
                "description",
                "required: a sentence saying what question this scenario answers",
            );
            return None;
        };
        let s = self.string(v, "description")?;
        if s.trim().is_empty() {
            self.problem("description", "must not be empty");
            return None;
        }
        Some(s.trim().to_string())
    }

    fn dataset(&mut self, v: Option<&Value>) -> DatasetSpec {
        let mut spec = DatasetSpec::default();
        let Some(t) = v.and_then(|v| self.table(v, "dataset")) else {
            return spec;
        };
        self.unknown_keys(t, "dataset", DATASET_KEYS);
        let fields: [(&str, &mut i64, i64); 7] = [
            ("categories", &mut spec.categories, 1),
            ("products", &mut spec.products, 1),
            ("users", &mut spec.users, 1),
            ("orders", &mut spec.orders, 0),
            ("reviews", &mut spec.reviews, 0),
            ("price_changes", &mut spec.price_changes, 0),
            ("days", &mut spec.days, 1),
        ];
        for (key, slot, min) in fields {
            if let Some(v) = t.get(key) {
                let path = child("dataset", key);
                let Some(n) = self.int_min(v, &path, min) else {
                    continue;
                };
                let (max, why) = field_max(key);
                if n > max {
                    self.problem(path, format!("must be <= {max} ({why}), got {n}"));
                    continue;
                }
                *slot = n;
            }
        }
        if let Some(v) = t.get("extra_product_indexes") {
            let path = child("dataset", "extra_product_indexes");
            if let Some(n) = self.integer(v, &path) {
                if (0..=MAX_EXTRA_PRODUCT_INDEXES).contains(&n) {
                    spec.extra_product_indexes = n;
                } else {
                    self.problem(
                        path,
                        format!("must be between 0 and {MAX_EXTRA_PRODUCT_INDEXES}, got {n}"),
                    );
                }
            }
        }
        // Free disk is checked when seeding, where the database is known (SQLite only: a
        // PostgreSQL server's disk cannot be seen from here); this ceiling holds everywhere.
        let bytes = estimated_bytes(&spec);
        if bytes > MAX_DATASET_BYTES {
            self.problem(
                "dataset",
                format!(
                    "needs about {} GiB on disk, more than the {} GiB the tool seeds",
                    bytes >> 30,
                    MAX_DATASET_BYTES >> 30
                ),
            );
        }
        spec
    }

    fn rate(&mut self, v: &Value, path: &str) -> Option<Rate> {
        match v {
            Value::String(s) if s == "max" => Some(Rate::Max),
            Value::String(s) => {
                self.problem(
                    path,
                    format!("expected a number or \"max\", got the string {s:?}"),
                );
                None
            }
            Value::Integer(_) | Value::Float(_) => {
                self.rate_per_second(v, path).map(Rate::PerSecond)
            }
            other => {
                self.expected(path, "a number or \"max\"", other);
                None
            }
        }
    }

    /// An open-loop rate: >= 0 and at most [`MAX_RATE`] (ops are stamped whole µs apart).
    fn rate_per_second(&mut self, v: &Value, path: &str) -> Option<f64> {
        let r = self.non_negative(v, path)?;
        if r > MAX_RATE {
            self.problem(
                path,
                format!(
                    "must be at most {MAX_RATE} ops/s (ops are stamped at least 1 µs apart), \
                     got {r}; use \"max\" for a closed loop"
                ),
            );
            return None;
        }
        Some(r)
    }

    fn load<K: Ord + Copy>(
        &mut self,
        v: Option<&Value>,
        section: &str,
        all: &[K],
        name: fn(K) -> &'static str,
        noun: &str,
    ) -> LoadParts<K> {
        let mut parts = LoadParts {
            rate: Some(Rate::PerSecond(0.0)),
            workers: DEFAULT_WORKERS,
            mix: MixParts::Missing,
        };
        let Some(v) = v else {
            return parts;
        };
        let Some(t) = self.table(v, section) else {
            parts.rate = None;
            return parts;
        };
        self.unknown_keys(t, section, LOAD_KEYS);
        if let Some(v) = t.get("rate") {
            parts.rate = self.rate(v, &child(section, "rate"));
        }
        if let Some(v) = t.get("workers") {
            if let Some(n) = self.count_u32(v, &child(section, "workers")) {
                parts.workers = n;
            }
        }
        if let Some(v) = t.get("mix") {
            parts.mix = self.mix(v, &child(section, "mix"), all, name, noun);
        }
        parts
    }

    fn mix<K: Ord + Copy>(
        &mut self,
        v: &Value,
        path: &str,
        all: &[K],
        name: fn(K) -> &'static str,
        noun: &str,
    ) -> MixParts<K> {
        let Some(t) = self.table(v, path) else {
            return MixParts::Invalid;
        };
        let mut mix = BTreeMap::new();
        let mut valid = true;
        for (key, weight) in t {
            let entry = child(path, key);
            let kind = all.iter().copied().find(|k| name(*k) == key.as_str());
            if kind.is_none() {
                let names: Vec<&str> = all.iter().map(|k| name(*k)).collect();
                self.problem(
                    &entry,
                    format!("unknown {noun} (expected one of: {})", names.join(", ")),
                );
                valid = false;
            }
            match (kind, self.non_negative(weight, &entry)) {
                (Some(k), Some(x)) => {
                    mix.insert(k, x);
                }
                _ => valid = false,
            }
        }
        if valid {
            MixParts::Valid(mix)
        } else {
            MixParts::Invalid
        }
    }

    /// The mix a valid scenario stores: as given; every kind at weight 1 when not given and
    /// the side sends ops; empty otherwise. A mix of an active side must not sum to zero.
    fn finish_mix<K: Ord + Copy>(
        &mut self,
        mix: MixParts<K>,
        active: bool,
        section: &str,
        all: &[K],
    ) -> BTreeMap<K, f64> {
        match mix {
            MixParts::Missing if active => all.iter().map(|k| (*k, 1.0)).collect(),
            MixParts::Missing | MixParts::Invalid => BTreeMap::new(),
            MixParts::Valid(m) => {
                if active && m.values().sum::<f64>() <= 0.0 {
                    self.problem(
                        child(section, "mix"),
                        format!(
                            "weights sum to zero; give at least one op a weight > 0, \
                             or set {section}.rate = 0"
                        ),
                    );
                }
                m
            }
        }
    }

    fn keys(&mut self, v: Option<&Value>) -> (KeyDist, KeyDist) {
        let mut products = KeyDist::Uniform;
        let mut users = KeyDist::Uniform;
        let Some(t) = v.and_then(|v| self.table(v, "keys")) else {
            return (products, users);
        };
        self.unknown_keys(t, "keys", KEYS_KEYS);
        if let Some(d) = t
            .get("products")
            .and_then(|v| self.key_dist(v, "keys.products"))
        {
            products = d;
        }
        if let Some(d) = t.get("users").and_then(|v| self.key_dist(v, "keys.users")) {
            users = d;
        }
        (products, users)
    }

    fn key_dist(&mut self, v: &Value, path: &str) -> Option<KeyDist> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, path, DIST_KEYS);
        let kind_path = child(path, "kind");
        let kind = match t.get("kind") {
            None => {
                self.problem(&kind_path, format!("required: one of {DIST_KINDS}"));
                return None;
            }
            Some(v) => self.string(v, &kind_path)?,
        };
        let params: &[&str] = match kind {
            "uniform" => &[],
            "zipf" => &["exponent"],
            "hotspot" => &["hot_keys", "hot_ops"],
            other => {
                self.problem(
                    &kind_path,
                    format!("unknown distribution {other:?} (expected one of: {DIST_KINDS})"),
                );
                return None;
            }
        };
        let mut ok = true;
        for key in t.keys() {
            if key != "kind" && DIST_KEYS.contains(&key.as_str()) && !params.contains(&key.as_str())
            {
                let takes: Vec<&str> = ["kind"].iter().chain(params).copied().collect();
                self.problem(
                    child(path, key),
                    format!(
                        "not used by kind = {kind:?} (it takes: {})",
                        takes.join(", ")
                    ),
                );
                ok = false;
            }
        }
        let dist = match kind {
            "uniform" => Some(KeyDist::Uniform),
            "zipf" => self
                .dist_param(t, path, "exponent", "> 0", |x| x > 0.0)
                .map(|exponent| KeyDist::Zipf { exponent }),
            _ => {
                let hot_keys =
                    self.dist_param(t, path, "hot_keys", "in (0, 1)", |x| x > 0.0 && x < 1.0);
                let hot_ops =
                    self.dist_param(t, path, "hot_ops", "in (0, 1]", |x| x > 0.0 && x <= 1.0);
                match (hot_keys, hot_ops) {
                    (Some(hot_keys), Some(hot_ops)) => Some(KeyDist::Hotspot { hot_keys, hot_ops }),
                    _ => None,
                }
            }
        };
        dist.filter(|_| ok)
    }

    fn dist_param(
        &mut self,
        t: &Table,
        prefix: &str,
        key: &str,
        rule: &str,
        valid: fn(f64) -> bool,
    ) -> Option<f64> {
        let path = child(prefix, key);
        let Some(v) = t.get(key) else {
            self.problem(&path, format!("required, a number {rule}"));
            return None;
        };
        let x = self.number(v, &path)?;
        if !valid(x) {
            self.problem(&path, format!("must be {rule}, got {x}"));
            return None;
        }
        Some(x)
    }

    fn story(&mut self, v: &Value) -> Option<Story> {
        let name = self.string(v, "story")?;
        let story = Story::from_name(name);
        if story.is_none() {
            let names: Vec<&str> = Story::ALL.iter().map(|s| s.name()).collect();
            self.problem(
                "story",
                format!(
                    "unknown story {name:?} (expected one of: {})",
                    names.join(", ")
                ),
            );
        }
        story
    }

    /// `pack`: the scenario runs a pack, which only some backends can.
    fn backends(&mut self, v: Option<&Value>, pack: bool) -> Vec<BackendKind> {
        let names = || crate::backend::registry::names().join(", ");
        let items = match v {
            None if pack => {
                return BackendKind::default_set()
                    .into_iter()
                    .filter(|k| k.pack_refusal().is_none())
                    .collect()
            }
            None => return BackendKind::default_set(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.expected("backends", "an array of backend names", other);
                return Vec::new();
            }
        };
        if items.is_empty() {
            self.problem(
                "backends",
                format!("must not be empty; name at least one of: {}", names()),
            );
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = element("backends", i);
            let Some(name) = self.string(item, &path) else {
                continue;
            };
            match BackendKind::from_name(name) {
                None => self.problem(
                    &path,
                    format!("unknown backend {name:?} (expected one of: {})", names()),
                ),
                Some(b) if out.contains(&b) => {
                    self.problem(&path, format!("duplicate backend {name:?}"))
                }
                Some(b) if pack && b.pack_refusal().is_some() => self.problem(
                    &path,
                    format!(
                        "{name} does not run packs: {}",
                        b.pack_refusal().unwrap_or_default()
                    ),
                ),
                Some(b) => out.push(b),
            }
        }
        out
    }

    /// `[matview]`; `views`: the names a per-view interval may name.
    fn matview(&mut self, v: Option<&Value>, views: &[String]) -> MatviewSettings {
        let mut settings = MatviewSettings::default();
        let Some(t) = v.and_then(|v| self.table(v, "matview")) else {
            return settings;
        };
        self.unknown_keys(t, "matview", MATVIEW_KEYS);
        if let Some(v) = t.get("refresh_interval") {
            if let Some(d) = self.duration_positive(v, "matview.refresh_interval") {
                settings.refresh_interval = d;
            }
        }
        if let Some(t) = t.get("views").and_then(|v| self.table(v, "matview.views")) {
            for (name, v) in t {
                let path = format!("matview.views.{name}");
                if !views.contains(name) {
                    self.problem(
                        &path,
                        format!(
                            "unknown view {name:?} (expected one of: {})",
                            views.join(", ")
                        ),
                    );
                    continue;
                }
                if let Some(d) = self.duration_positive(v, &path) {
                    settings
                        .views
                        .insert(name.clone(), super::duration::DurationText(d));
                }
            }
        }
        settings
    }

    fn projector(&mut self, v: Option<&Value>) -> ProjectorSettings {
        let mut settings = ProjectorSettings::default();
        let Some(t) = v.and_then(|v| self.table(v, "projector")) else {
            return settings;
        };
        self.unknown_keys(t, "projector", PROJECTOR_KEYS);
        if let Some(v) = t.get("batch_size") {
            if let Some(n) = self.int_min(v, "projector.batch_size", 1) {
                settings.batch_size = n;
            }
        }
        if let Some(v) = t.get("poll_interval") {
            if let Some(d) = self.duration_positive(v, "projector.poll_interval") {
                settings.poll_interval = d;
            }
        }
        if let Some(v) = t.get("redeliver") {
            if let Some(x) = self.number(v, "projector.redeliver") {
                if (0.0..=1.0).contains(&x) {
                    settings.redeliver = x;
                } else {
                    self.problem(
                        "projector.redeliver",
                        format!("must be between 0 and 1, got {x}"),
                    );
                }
            }
        }
        settings
    }

    fn event_sourcing(&mut self, v: Option<&Value>) -> EventSourcingSettings {
        let mut settings = EventSourcingSettings::default();
        let Some(t) = v.and_then(|v| self.table(v, "event_sourcing")) else {
            return settings;
        };
        self.unknown_keys(t, "event_sourcing", EVENT_SOURCING_KEYS);
        if let Some(v) = t.get("snapshot_every") {
            if let Some(n) = self.u32_min(v, "event_sourcing.snapshot_every", 0) {
                settings.snapshot_every = n;
            }
        }
        settings
    }

    /// `ryw_think_times`: a few durations, ascending, none repeated, none beyond
    /// [`MAX_RYW_THINK_TIME`]; default one, zero.
    fn ryw_think_times(&mut self, v: Option<&Value>) -> Vec<Duration> {
        let default = || vec![Duration::ZERO];
        let Some(v) = v else {
            return default();
        };
        let Value::Array(list) = v else {
            self.expected(
                "ryw_think_times",
                "an array of duration strings such as [\"0ms\", \"200ms\", \"1s\"]",
                v,
            );
            return default();
        };
        if list.is_empty() {
            self.problem(
                "ryw_think_times",
                "empty list: give at least one think time, or leave the key out for [\"0ms\"]",
            );
        }
        if list.len() > MAX_RYW_THINK_TIMES {
            self.problem(
                "ryw_think_times",
                format!(
                    "at most {MAX_RYW_THINK_TIMES} think times, got {}",
                    list.len()
                ),
            );
        }
        let mut times: Vec<Duration> = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let path = format!("ryw_think_times[{i}]");
            let Some(d) = self.duration(v, &path) else {
                continue;
            };
            if d > MAX_RYW_THINK_TIME {
                self.problem(
                    &path,
                    format!(
                        "must be at most {}, got {}",
                        format_duration(MAX_RYW_THINK_TIME),
                        format_duration(d)
                    ),
                );
                continue;
            }
            if let Some(&last) = times.last() {
                if d <= last {
                    self.problem(
                        &path,
                        format!(
                            "think times must be ascending without repeats: {} comes after {}",
                            format_duration(d),
                            format_duration(last)
                        ),
                    );
                    continue;
                }
            }
            times.push(d);
        }
        if times.is_empty() {
            return default();
        }
        times
    }

    fn text_search(&mut self, v: Option<&Value>) -> TextSearchSettings {
        let mut settings = TextSearchSettings::default();
        let Some(t) = v.and_then(|v| self.table(v, "text_search")) else {
            return settings;
        };
        self.unknown_keys(t, "text_search", TEXT_SEARCH_KEYS);
        let Some(v) = t.get("terms") else {
            return settings;
        };
        let Value::Array(list) = v else {
            self.expected("text_search.terms", "an array of strings", v);
            return settings;
        };
        if list.is_empty() {
            self.problem(
                "text_search.terms",
                "empty list: give at least one term, or leave terms out to search the names' words",
            );
        }
        for (i, v) in list.iter().enumerate() {
            let path = format!("text_search.terms[{i}]");
            let Some(term) = self.string(v, &path) else {
                continue;
            };
            if crate::domain::text::words(&[term]).is_empty() {
                self.problem(
                    path,
                    format!(
                        "empty search term {term:?}: a term needs a word (ASCII letters or digits, at most {} of them)",
                        crate::domain::text::MAX_WORD
                    ),
                );
            } else {
                settings.terms.push(term.to_string());
            }
        }
        settings
    }

    /// `[sweep]`: a read load, the shop's orders, or (`pack`) one of the pack's sizes.
    fn sweep(&mut self, v: Option<&Value>, pack: Option<&Pack>) -> Option<Sweep> {
        let t = self.table(v?, "sweep")?;
        // A pack's size sweeps like the shop's orders; a size named `orders` is the pack's.
        let sizes: Vec<&str> = pack
            .map(|p| p.sizes.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut keys: Vec<&str> = SWEEP_KEYS.to_vec();
        keys.extend(sizes.iter().copied().filter(|k| !SWEEP_KEYS.contains(k)));
        self.unknown_keys(t, "sweep", &keys);
        let given: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| t.contains_key(*k))
            .collect();
        if given.len() > 1 {
            self.problem(
                "sweep",
                format!(
                    "give exactly one of {}, not {}",
                    if sizes.is_empty() {
                        "read_rates, readers or orders".to_string()
                    } else {
                        format!("read_rates, readers or one size ({})", sizes.join(", "))
                    },
                    given.join(" and ")
                ),
            );
            return None;
        }
        if let Some(size) = given.first().filter(|k| sizes.contains(k)) {
            return self.size_sweep(t, size);
        }
        if let Some(v) = t.get("orders") {
            let items = self.non_empty_array(v, "sweep.orders", "order counts")?;
            let (max, why) = field_max("orders");
            let counts: Vec<Option<i64>> = items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let path = element("sweep.orders", i);
                    let n = self.int_min(x, &path, 0)?;
                    if n > max {
                        self.problem(path, format!("must be <= {max} ({why}), got {n}"));
                        return None;
                    }
                    Some(n)
                })
                .collect();
            return counts
                .into_iter()
                .collect::<Option<Vec<i64>>>()
                .map(Sweep::Orders);
        }
        match (t.get("read_rates"), t.get("readers")) {
            (Some(_), Some(_)) => None,
            (None, None) => {
                self.problem(
                    "sweep",
                    "give exactly one of read_rates (a list of read rates), readers \
                     (a list of closed-loop reader counts) or orders (a list of dataset \
                     order counts)",
                );
                None
            }
            (Some(v), None) => {
                let items = self.non_empty_array(v, "sweep.read_rates", "read rates")?;
                let rates: Vec<Option<f64>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| self.rate_per_second(x, &element("sweep.read_rates", i)))
                    .collect();
                rates
                    .into_iter()
                    .collect::<Option<Vec<f64>>>()
                    .map(Sweep::ReadRates)
            }
            (None, Some(v)) => {
                let items = self.non_empty_array(v, "sweep.readers", "reader counts")?;
                let counts: Vec<Option<u32>> = items
                    .iter()
                    .enumerate()
                    // 0 readers is the baseline on the same curve as the loaded points.
                    .map(|(i, x)| self.u32_min(x, &element("sweep.readers", i), 0))
                    .collect();
                counts
                    .into_iter()
                    .collect::<Option<Vec<u32>>>()
                    .map(Sweep::Readers)
            }
        }
    }

    /// A value of a pack's size: an integer in 0..=`pack::MAX_SIZE`.
    fn pack_size(&mut self, v: &Value, path: &str) -> Option<i64> {
        let n = self.int_min(v, path, 0)?;
        if n > crate::pack::MAX_SIZE {
            self.problem(
                path,
                format!("must be <= {}, got {n}", crate::pack::MAX_SIZE),
            );
            return None;
        }
        Some(n)
    }

    /// `[sweep] SIZE = [...]` of a pack's scenario: each value in the size's range.
    fn size_sweep(&mut self, t: &Table, size: &str) -> Option<Sweep> {
        let path = child("sweep", size);
        let items = self.non_empty_array(&t[size], &path, "values of the size")?;
        let values: Vec<Option<i64>> = items
            .iter()
            .enumerate()
            .map(|(i, x)| self.pack_size(x, &element(&path, i)))
            .collect();
        values
            .into_iter()
            .collect::<Option<Vec<i64>>>()
            .map(|values| Sweep::Size {
                size: size.to_string(),
                values,
            })
    }

    /// Each point of an orders sweep is the scenario's dataset with that many orders: it
    /// must fit where the dataset does.
    fn orders_sweep_fits(&mut self, dataset: &DatasetSpec, points: &[i64]) {
        for (i, n) in points.iter().enumerate() {
            let spec = DatasetSpec {
                orders: *n,
                ..dataset.clone()
            };
            let bytes = estimated_bytes(&spec);
            if bytes > MAX_DATASET_BYTES {
                self.problem(
                    element("sweep.orders", i),
                    format!(
                        "{n} orders need about {} GiB on disk, more than the {} GiB the tool seeds",
                        bytes >> 30,
                        MAX_DATASET_BYTES >> 30
                    ),
                );
            }
        }
    }

    fn non_empty_array<'a>(&mut self, v: &'a Value, path: &str, what: &str) -> Option<&'a [Value]> {
        match v {
            Value::Array(items) if items.is_empty() => {
                self.problem(path, "must not be empty: give at least one point");
                None
            }
            Value::Array(items) => Some(items),
            other => {
                self.expected(path, &format!("an array of {what}"), other);
                None
            }
        }
    }

    /// `[budgets]`: dotted keys (`write.p99 = "50ms"` is a nested table in TOML, or a quoted
    /// `"write.p99"`), each a value string.
    fn budgets(&mut self, v: Option<&Value>) -> Budgets {
        let mut out = Budgets::default();
        let Some(t) = v.and_then(|v| self.table(v, "budgets")) else {
            return out;
        };
        let mut flat = Vec::new();
        flatten_keys("", t, &mut flat);
        for (key, value) in flat {
            let path = format!("budgets.{key}");
            let Value::String(written) = value else {
                self.problem(
                    &path,
                    format!(
                        "expected a limit string such as \"50ms\" or \"2GiB\", got {}",
                        type_name(value)
                    ),
                );
                continue;
            };
            match parse_budget(&key, written).and_then(|t| self.known_op(t)) {
                Ok(t) => out.insert(&key, written, t),
                Err(e) => self.problem(&path, e),
            }
        }
        out
    }

    /// Every threshold is a gate: a bad run can fail it, and (given `backends`, the file's
    /// own) it is checked on a backend that runs.
    fn thresholds_can_fail(
        &mut self,
        thresholds: &Thresholds,
        backends: Option<&Vec<BackendKind>>,
    ) {
        for t in thresholds.iter() {
            let not_run = backends.and_then(|b| t.not_run(b));
            if let Some(why) = not_run.or_else(|| t.refusal()) {
                self.problem(child("thresholds", &t.name), why);
            }
        }
    }

    /// `t`, when the op it names (if any) is one of the workload's.
    fn known_op(&self, t: Threshold) -> Result<Threshold, String> {
        let Metric::Latency {
            key: MetricKey::Op(op),
            ..
        } = &t.metric
        else {
            return Ok(t);
        };
        let (names, noun) = match op {
            OpKey::Write(_) => (&self.ops.commands, "command"),
            OpKey::Read(_) => (&self.ops.queries, "query"),
        };
        let name = op.op_name().as_str();
        if names.contains(&name) {
            Ok(t)
        } else {
            Err(format!(
                "unknown {noun} \"{name}\" (expected one of: {})",
                names.join(", ")
            ))
        }
    }

    /// `workload = "DIR"`: the pack in `DIR` (relative to the scenario's folder), loaded and
    /// validated; its problems are the scenario's, one each.
    fn workload(&mut self, v: &Value, base: &Path) -> Option<Pack> {
        let dir = self.string(v, "workload")?;
        let path = base.join(dir);
        match Pack::load(&path) {
            Ok(pack) => Some(pack),
            Err(e) => {
                for p in e.problems() {
                    self.problem("workload", p.to_string());
                }
                None
            }
        }
    }

    /// `[dataset]` of a pack's scenario: the pack's sizes, each an integer in its range.
    fn pack_sizes(&mut self, v: Option<&Value>, pack: &Pack) -> BTreeMap<String, i64> {
        let mut sizes = BTreeMap::new();
        let Some(t) = v.and_then(|v| self.table(v, "dataset")) else {
            return sizes;
        };
        let known: Vec<&str> = pack.sizes.keys().map(String::as_str).collect();
        let measured = pack.copy.as_ref().map(|c| &c.sizes);
        for (key, value) in t {
            let path = child("dataset", key);
            if COPY_KEYS.contains(&key.as_str()) {
                continue;
            }
            if !known.contains(&key.as_str()) {
                self.problem(
                    &path,
                    format!(
                        "unknown size of pack {} (expected one of: {})",
                        pack.name,
                        known.join(", ")
                    ),
                );
                continue;
            }
            let copying = t.contains_key("copy_from");
            if copying && measured.is_some_and(|m| m.contains_key(key)) {
                self.problem(
                    &path,
                    "measured on the database copy_from names (the pack's copy.sizes); leave \
                     it out",
                );
                continue;
            }
            if let Some(n) = self.pack_size(value, &path) {
                sizes.insert(key.clone(), n);
            }
        }
        sizes
    }

    /// `[dataset] copy_from = "URL"` and `copy_schema` of a pack's scenario: the pack must
    /// say what to copy (`[copy]`).
    fn copy_from(&mut self, v: Option<&Value>, pack: &Pack) -> Option<CopyFrom> {
        let t = v.and_then(Value::as_table)?;
        let schema = t.get("copy_schema").and_then(|v| {
            let s = self.string(v, "dataset.copy_schema")?;
            match crate::db::validate_schema_name(s) {
                Ok(()) => Some(s.to_string()),
                Err(e) => {
                    self.problem("dataset.copy_schema", e.to_string());
                    None
                }
            }
        });
        let Some(v) = t.get("copy_from") else {
            if schema.is_some() {
                self.problem("dataset.copy_schema", "only with copy_from");
            }
            return None;
        };
        let url = self.string(v, "dataset.copy_from")?;
        let engine = match crate::db::DbUrl::parse(url) {
            Ok(u) => u.engine(),
            Err(e) => {
                self.problem("dataset.copy_from", e.to_string());
                return None;
            }
        };
        if pack.copy.is_none() {
            self.problem(
                "dataset.copy_from",
                format!(
                    "pack {} says nothing to copy: give it a [copy] section naming its tables",
                    pack.name
                ),
            );
            return None;
        }
        if schema.is_some() && engine != crate::db::Engine::Postgres {
            self.problem("dataset.copy_schema", "only for a PostgreSQL copy_from");
        }
        Some(CopyFrom {
            url: url.to_string(),
            schema,
        })
    }

    fn thresholds(&mut self, v: Option<&Value>) -> Thresholds {
        let mut out = Thresholds::default();
        let Some(t) = v.and_then(|v| self.table(v, "thresholds")) else {
            return out;
        };
        for (pattern, condition) in t {
            let path = child("thresholds", pattern);
            if pattern.trim().is_empty() {
                self.problem(&path, "the metric pattern must not be empty");
                continue;
            }
            let Value::String(c) = condition else {
                let mut message = format!(
                    "expected a condition string such as \"<= 250ms\", got {}",
                    type_name(condition)
                );
                if TOP_KEYS.contains(&pattern.as_str()) {
                    message.push_str(&format!(
                        "; `{pattern}` is a top-level key: move it above the first [table] header"
                    ));
                }
                self.problem(&path, message);
                continue;
            };
            if let Err(e) = check_condition(c) {
                self.problem(&path, e);
                continue;
            }
            match parse_threshold(pattern, c).and_then(|t| self.known_op(t)) {
                Ok(t) => out.insert(t),
                Err(e) => self.problem(&path, e),
            }
        }
        out
    }
}

/// The leaves of a table as `(dotted key, value)`.
fn flatten_keys<'a>(prefix: &str, t: &'a Table, out: &mut Vec<(String, &'a Value)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(inner) => flatten_keys(&key, inner, out),
            other => out.push((key, other)),
        }
    }
}

/// A threshold condition: a comparison operator and a value that starts with a number
/// (`"<= 250ms"`, `"== 0"`, `"<= 5%"`). The value's unit is left to the verdict.
fn check_condition(c: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "expected a condition such as \"<= 250ms\", \"== 0\" or \"<= 5%\" \
             (an operator <=, <, >=, >, ==, != and a number), got {c:?}"
        )
    };
    let s = c.trim();
    let op = ["<=", ">=", "==", "!=", "<", ">"]
        .into_iter()
        .find(|op| s.starts_with(op))
        .ok_or_else(bad)?;
    let value = s[op.len()..].trim_start();
    let starts_with_number = value
        .trim_start_matches(['-', '+'])
        .starts_with(|ch: char| ch.is_ascii_digit() || ch == '.');
    if starts_with_number {
        Ok(())
    } else {
        Err(bad())
    }
}
