//! Scenario files: parsing and validation.
//!
//! A scenario is a TOML file in `scenarios/` describing one workload: how big the dataset is,
//! which writes and reads arrive at what rate, which keys they hit, which backends run it and
//! which thresholds the verdict checks. The file name (without `.toml`) is the scenario's name.
//!
//! Parsing never stops at the first mistake: the whole file is walked and every problem is
//! reported with its dotted path (`writes.mix`, `keys.products.exponent`,
//! `sweep.read_rates[2]`), so one edit-run cycle fixes them all. Unknown keys are problems at
//! every level, so a typo never silently falls back to a default.
//!
//! # Format
//!
//! ```toml
//! # A comment saying what question this scenario answers.
//! description = "Do dashboard queries slow down order writes?"  # required, non-empty
//! seed = 42            # integer >= 0; default 1
//! duration = "30s"     # required, > 0; a number (integer or decimal) and a unit: ms, s, m, h
//! warmup = "5s"        # default "0s"; must be shorter than duration
//! backends = ["normalized", "cqrs-sync", "cqrs-async"]  # default: the registry's default set
//!                      # (normalized, cqrs-sync, cqrs-async, event-sourced); non-empty, no duplicates
//! ryw_share = 0.1      # share of writes followed by a read-your-writes probe, in [0, 1]; default 0
//! ryw_think_times = ["0ms", "200ms", "1s"]  # when a probe looks, after the write's commit
//!                      # (a user's pause before reading); ascending, no repeats, 1 to 5 of
//!                      # them, each <= 60s; default ["0ms"]. The report gives the miss share
//!                      # at each; `ryw_miss` counts at the first
//! story = "dashboard"  # optional: the failure story told (dashboard, monthly-report,
//!                      # denormalization, read-model-lag); the report opens with its answer.
//!                      # "monthly-report" needs monthly_report in [reads] mix and a
//!                      # [sweep] readers list starting at 0 (no report: the baseline)
//!
//! [dataset]            # optional; every key defaults to DatasetSpec::default()
//! categories = 20      # integers; categories, products, users, days >= 1; the rest >= 0
//! products = 1000
//! users = 1000
//! orders = 5000
//! reviews = 5000
//! price_changes = 1000
//! days = 30            # days of seeded order history
//!                      # upper bounds: products 10M, categories 1M, days 36500, others 10G
//!                      # (dataset::spec::field_max), and an estimated size on disk of at most
//!                      # 1 TiB; seeding SQLite also refuses a dataset larger than the file's
//!                      # free disk (PostgreSQL's disk cannot be seen from the client)
//!
//! [writes]             # optional; default: no writes
//! rate = 200           # ops/s: a number > 0 (at most 1000000: ops are stamped at least 1 µs
//!                      # apart), 0 for none, or "max" (closed loop); default 0
//! workers = 4          # integer >= 1; default 4. Open loop: most writes in flight at once;
//!                      # closed loop: the number of workers
//! mix = { place_order = 50, pay_order = 15, ship_order = 10, cancel_order = 5, add_review = 10, change_price = 5, restock = 5 }
//!                      # command name -> weight (number >= 0); weights must not sum to zero
//!                      # while the rate is not 0. Default: every command, weight 1.
//!
//! [reads]              # optional; same shape as [writes]; keys are query names: product_page,
//! rate = 400           # user_orders, search, daily_revenue, top_products (the default mix),
//!                      # and text_search, monthly_report (only when named)
//! workers = 4
//! mix = { product_page = 40, user_orders = 20, search = 20, daily_revenue = 10, top_products = 10 }
//!
//! [keys]               # optional; which products and users ops touch; default uniform
//! products = { kind = "zipf", exponent = 1.1 }   # exponent > 0
//! users = { kind = "hotspot", hot_keys = 0.01, hot_ops = 0.9 }
//!     # hot_keys in (0, 1): share of keys that are hot; hot_ops in (0, 1]: their share of ops
//!     # or { kind = "uniform" }
//!
//! [projector]          # optional; the cqrs-async projector
//! batch_size = 500     # integer >= 1; default 500
//! poll_interval = "50ms"  # > 0; default "50ms"
//! redeliver = 0.0         # fault injection: share of events delivered twice, in [0, 1]; default 0
//!
//! [event_sourcing]     # optional; the event-sourced backend
//! snapshot_every = 0   # integer >= 0: store a stream's aggregate snapshot once it has grown
//!                      # this many versions past its last one; 0 (default) = no snapshots
//!
//! [text_search]        # optional; what text_search looks for
//! terms = ["oak", "lamp"]  # non-empty strings, each holding a word; a search draws one or
//!                          # two of them (default: words of the products' names)
//!
//! [sweep]              # optional; exactly one of the three lists, non-empty; every backend
//! read_rates = [0, 200, 800]  # runs at every point: open-loop reads at each rate (>= 0), or
//! # readers = [0, 1, 4, 16]   # closed-loop reads ("max") with that many workers (>= 0; 0 = the
//!                             # unloaded baseline on the same curve), or
//! # orders = [1000, 10000]    # the dataset seeded with that many orders (>= 0, each within
//!                             # the dataset's bounds; `[dataset] orders` is replaced), reads
//!                             # as `[reads]` says
//!
//! [thresholds]         # optional; metric pattern -> condition, both strings. A condition is
//! "cqrs-async.lag.p99" = "<= 250ms"  # an operator (<=, <, >=, >, ==, !=) and a value that
//! "*.write.p99" = "<= 50ms"          # starts with a number, with an optional unit
//! "*.ryw_miss" = "<= 5%"
//! "*.errors" = "== 0"
//!
//! [budgets]            # optional; what the team needs, for every backend: the decision names
//! write.p99 = "50ms"   # the simplest backend that meets them all, and `check` fails a run that
//! read.p99 = "100ms"   # misses one. Keys: write.<stat>, write.<command>.<stat>, read.<stat>,
//! read.user_orders.p99 = "20ms"  # read.<query>.<stat> (stat: p50 p90 p99 p999 p9999 max
//! staleness.p99 = "1s" # mean), staleness.<stat> (commit -> visible to the reader: projection
//! storage = "2GiB"     # lag, view staleness, replication lag or read-your-writes visible
//!                      # time; "0ms" = users must read their own writes, met only by backends
//!                      # whose reads see the write by construction), storage (bytes: B, KB,
//!                      # MB, GB, KiB, MiB, GiB). A value is a limit, optionally with <= or <.
//! ```
//!
//! In TOML a key written after a `[table]` header belongs to that table, so the top-level
//! keys (`backends`, `ryw_share`, ...) must come before the first header; a top-level key
//! found inside a table is reported with that hint.
//!
//! Top-level keys (all others are problems): `description`, `seed`, `duration`, `warmup`,
//! `dataset`, `writes`, `reads`, `keys`, `backends`, `projector`, `event_sourcing`, `sweep`,
//! `ryw_share`, `ryw_think_times`, `thresholds`, `budgets`, `matview`, `text_search`, `story`,
//! `workload`.
//!
//! # A team's pack
//!
//! ```toml
//! workload = "../workloads/ledger"  # a pack's folder (see `pack`), relative to this file;
//!                      # the scenario then runs the pack instead of the built-in shop:
//! [dataset]            # the pack's sizes (integers, 0 to 10^10); the pack's defaults
//! accounts = 10000     # hold for the others
//! [writes]
//! rate = 100
//! mix = { transfer = 1 }            # the pack's command names (default: each at 1)
//! [reads]
//! rate = 400
//! mix = { balance = 3, activity = 1 }  # the pack's query names (default: each at 1)
//! [budgets]
//! read.balance.p99 = "20ms"         # per-op budgets and thresholds name the pack's ops
//! ```
//!
//! Everything else (rates, workers, open and closed loop, read-load sweeps, warm-up,
//! read-your-writes, thresholds, budgets, projector) is as for the shop. Backends run a pack
//! where their registry entry says they can (default: normalized, cqrs-sync, cqrs-async);
//! naming another is a problem. `keys`, `event_sourcing`, `text_search`, `story`, `matview`
//! and an `orders` sweep describe the built-in shop and are problems in a pack's scenario. At least one of writes and reads must carry
//! load: a non-zero rate, or reads
//! given by a read-load sweep (a sweep point overrides `reads.rate`, and for `readers` also
//! `reads.workers`; an `orders` sweep overrides `dataset.orders` instead).

mod duration;
mod parse;
pub mod story;
#[cfg(test)]
mod tests;
pub mod thresholds;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use duration::{format_duration, parse_duration};
pub use story::Story;

use crate::backend::matview::RefreshSchedule;
use crate::backend::BackendKind;
use crate::dataset::DatasetSpec;
use crate::domain::{CommandKind, QueryKind};
use crate::projection::projector::ProjectorConfig;
use crate::workload::keys::KeyDist;
use crate::workload::mix::MixSpec;
use thresholds::{Budgets, Thresholds};

/// How fast ops of one side (writes or reads) arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Open loop: ops per second. `0` means this side sends nothing.
    PerSecond(f64),
    /// Closed loop: every worker sends its next op as soon as the previous one finished.
    Max,
}

impl Rate {
    /// True when this side sends nothing.
    pub fn is_zero(&self) -> bool {
        matches!(self, Rate::PerSecond(r) if *r == 0.0)
    }

    /// The open-loop rate, `None` for [`Rate::Max`].
    pub fn per_second(&self) -> Option<f64> {
        match self {
            Rate::PerSecond(r) => Some(*r),
            Rate::Max => None,
        }
    }
}

impl Default for Rate {
    fn default() -> Self {
        Rate::PerSecond(0.0)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::PerSecond(r) => write!(f, "{r}/s"),
            Rate::Max => f.write_str("max"),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::PerSecond(r) => s.serialize_f64(*r),
            Rate::Max => s.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(r) => Ok(Rate::PerSecond(r)),
            Repr::Text(t) if t == "max" => Ok(Rate::Max),
            Repr::Text(t) => Err(serde::de::Error::custom(format!(
                "expected a number or \"max\", got {t:?}"
            ))),
        }
    }
}

/// One side of the load: writes (`K` = [`CommandKind`]) or reads (`K` = [`QueryKind`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "K: Serialize", deserialize = "K: Deserialize<'de> + Ord"))]
pub struct Load<K> {
    pub rate: Rate,
    /// Open loop: the most ops in flight at once; closed loop: the number of workers.
    pub workers: u32,
    /// Op kind -> relative weight. Empty when this side sends nothing and no mix was given.
    pub mix: BTreeMap<K, f64>,
}

/// A series of runs, each backend at each point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sweep {
    /// Open-loop reads at each of these rates (ops/s).
    ReadRates(Vec<f64>),
    /// Closed-loop reads with each of these worker counts.
    Readers(Vec<u32>),
    /// The dataset with each of these order counts (`[dataset] orders` at every point), the
    /// reads as `[reads]` says: how a cost grows with the shop's history.
    Orders(Vec<i64>),
    /// A pack's dataset with each of these values of one of its sizes (`[sweep] posts =
    /// [...]`), the other sizes as `[dataset]` says.
    Size { size: String, values: Vec<i64> },
}

impl Sweep {
    /// Whether the sweep gives the reads their load (a read-load sweep), rather than
    /// changing the dataset.
    pub fn loads_reads(&self) -> bool {
        matches!(self, Sweep::ReadRates(_) | Sweep::Readers(_))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectorSettings {
    pub batch_size: i64,
    #[serde(with = "duration::serde_text")]
    pub poll_interval: Duration,
    /// Fault injection: share of events the projector delivers a second time (0 = none).
    #[serde(default)]
    pub redeliver: f64,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        let c = ProjectorConfig::default();
        ProjectorSettings {
            batch_size: c.batch_size,
            poll_interval: c.poll_interval,
            redeliver: c.redeliver,
        }
    }
}

/// `[matview]`: the refresh interval of every view, and overrides per view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatviewSettings {
    #[serde(with = "duration::serde_text")]
    pub refresh_interval: Duration,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub views: BTreeMap<String, duration::DurationText>,
}

impl Default for MatviewSettings {
    fn default() -> Self {
        MatviewSettings {
            refresh_interval: RefreshSchedule::default().every,
            views: BTreeMap::new(),
        }
    }
}

/// The `event-sourced` backend's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSourcingSettings {
    /// Versions a stream grows past its last snapshot before the next is stored (0: none).
    pub snapshot_every: u32,
}

/// `text_search`'s settings: the words a team's users search for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSearchSettings {
    /// Each search draws one or two of these terms; empty: words of the products' names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
}

/// A validated scenario. Durations serialize as duration strings (`"30s"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The file stem, e.g. `quick`.
    pub name: String,
    pub description: String,
    pub seed: u64,
    #[serde(with = "duration::serde_text")]
    pub duration: Duration,
    #[serde(with = "duration::serde_text")]
    pub warmup: Duration,
    pub dataset: DatasetSpec,
    pub writes: Load<CommandKind>,
    pub reads: Load<QueryKind>,
    pub product_keys: KeyDist,
    pub user_keys: KeyDist,
    pub backends: Vec<BackendKind>,
    pub projector: ProjectorSettings,
    /// Absent in results written before snapshots existed: off.
    #[serde(default)]
    pub event_sourcing: EventSourcingSettings,
    pub sweep: Option<Sweep>,
    pub ryw_share: f64,
    /// How long after a write a read-your-writes probe looks (ascending; the first is what
    /// `ryw_miss` and the probes' `misses` count). Absent in results written before think
    /// times existed: a look right after the write.
    #[serde(
        default = "default_ryw_think_times",
        with = "duration::serde_text_list"
    )]
    pub ryw_think_times: Vec<Duration>,
    pub thresholds: Thresholds,
    /// What the team needs (`[budgets]`): `*` thresholds the decision judges every run by.
    #[serde(default, skip_serializing_if = "Budgets::is_empty")]
    pub budgets: Budgets,
    /// When `matview` refreshes its views (`[matview]`).
    #[serde(default)]
    pub matview: MatviewSettings,
    /// What `text_search` looks for (`[text_search]`).
    #[serde(default)]
    pub text_search: TextSearchSettings,
    /// The failure story this scenario tells (`story`), whose answer opens the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<Story>,
    /// The team's pack this scenario runs (`workload`) instead of the built-in shop; its
    /// mixes and sizes are here, and `writes.mix`, `reads.mix` and `dataset` are then unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<PackWorkload>,
}

/// A scenario's pack: where it is, the sizes `[dataset]` gives it, and the mixes, which name
/// its commands and queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackWorkload {
    /// The pack's name (its folder's).
    pub name: String,
    /// Its folder, as the scenario named it joined to the scenario's folder.
    pub dir: std::path::PathBuf,
    /// Sizes given by `[dataset]`; the pack's defaults hold for the others.
    pub sizes: BTreeMap<String, i64>,
    /// Command name -> weight (every command at 1 when `[writes]` names none).
    pub writes: BTreeMap<String, f64>,
    /// Query name -> weight.
    pub reads: BTreeMap<String, f64>,
    /// The team's database the dataset is copied from (`[dataset] copy_from`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<CopyFrom>,
}

/// `[dataset] copy_from = "URL"` (and `copy_schema`): where a pack's `[copy]` reads its rows,
/// read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyFrom {
    /// The URL as given; results.json holds it without its password.
    #[serde(serialize_with = "redacted_url")]
    pub url: String,
    /// The PostgreSQL schema the source's tables are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

fn redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::db::redact_url(url))
}

fn default_ryw_think_times() -> Vec<Duration> {
    vec![Duration::ZERO]
}

impl Scenario {
    /// Reads and validates a scenario file; its name is the file stem.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::load_with(path, &Overrides::default())
    }

    /// [`Scenario::load`] with command-line values in place of the file's, validated by the
    /// same rules as if the file said them; their problems are labelled with the flag.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            problems: vec![Problem {
                path: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".to_string());
        Scenario::parse_with(&text, &file, &name, overrides)
    }

    /// Validates scenario text. `file` only labels the problems; `name` becomes
    /// [`Scenario::name`].
    pub fn parse(text: &str, file: &str, name: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_with(text, file, name, &Overrides::default())
    }

    /// [`Scenario::parse`] with `overrides` in place of the text's values.
    pub fn parse_with(
        text: &str,
        file: &str,
        name: &str,
        overrides: &Overrides,
    ) -> Result<Scenario, ScenarioError> {
        let fail = |problems| ScenarioError {
            file: file.to_string(),
            problems,
        };
        let mut root = text
            .parse::<toml::Table>()
            .map_err(|e| fail(vec![parse::syntax_problem(text, &e)]))?;
        let flags = overrides.apply(&mut root);
        let overridden: Vec<&str> = flags.iter().map(|(key, _)| *key).collect();
        // A pack's folder is named relative to the scenario file's.
        let base = Path::new(file).parent().unwrap_or(Path::new(""));
        let mut scenario =
            parse::scenario(&root, name, &overridden, base).map_err(|mut problems| {
                for p in &mut problems {
                    if let Some((key, flag)) = flags.iter().find(|(key, _)| names_key(&p.path, key))
                    {
                        p.path = format!("{flag}{}", &p.path[key.len()..]);
                    }
                }
                fail(problems)
            })?;
        if let Some(seed) = overrides.seed {
            scenario.seed = seed;
        }
        Ok(scenario)
    }

    /// What the op stream is made of. A side that sends nothing (rate 0, and for reads no
    /// sweep) gets an empty mix. Writes are stamped `1e6 / rate` µs apart (1000 µs for
    /// `"max"` or no writes).
    pub fn mix_spec(&self) -> MixSpec {
        let writes = if self.writes.rate.is_zero() {
            BTreeMap::new()
        } else {
            self.writes.mix.clone()
        };
        let reads =
            if self.reads.rate.is_zero() && !self.sweep.as_ref().is_some_and(Sweep::loads_reads) {
                BTreeMap::new()
            } else {
                self.reads.mix.clone()
            };
        let write_interval_us = match self.writes.rate {
            Rate::PerSecond(r) if r > 0.0 => (1e6 / r).round().max(1.0) as i64,
            _ => 1_000,
        };
        MixSpec {
            writes,
            reads,
            product_keys: self.product_keys.clone(),
            user_keys: self.user_keys.clone(),
            write_interval_us,
            search_terms: self.text_search.terms.clone(),
        }
    }

    /// Whether the read mix sends `text_search` (a weight above zero on a side that reads):
    /// only then does a run keep the search index it reads.
    pub fn reads_text_search(&self) -> bool {
        self.mix_spec()
            .reads
            .get(&QueryKind::TextSearch)
            .is_some_and(|w| *w > 0.0)
    }

    /// When `matview` refreshes each view.
    pub fn refresh_schedule(&self) -> RefreshSchedule {
        RefreshSchedule {
            every: self.matview.refresh_interval,
            per_view: self
                .matview
                .views
                .iter()
                .map(|(k, v)| (k.clone(), v.0))
                .collect(),
        }
    }

    /// The backends this scenario names that cannot run on `engine`, as one problem for the
    /// file (`backends: matview needs PostgreSQL`).
    pub fn refuse_on(&self, engine: crate::db::Engine, file: &Path) -> Result<(), ScenarioError> {
        let refused: Vec<String> = self
            .backends
            .iter()
            .filter_map(|b| crate::backend::registry::refusal(*b, engine))
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        Err(ScenarioError {
            file: file.display().to_string(),
            problems: vec![Problem {
                path: "backends".into(),
                message: refused.join("; "),
            }],
        })
    }

    /// The projector settings, in the default (exactly-once) mode.
    pub fn projector_config(&self) -> ProjectorConfig {
        ProjectorConfig {
            batch_size: self.projector.batch_size,
            poll_interval: self.projector.poll_interval,
            redeliver: self.projector.redeliver,
            ..ProjectorConfig::default()
        }
    }
}

/// Values from the command line that replace a scenario file's (`run`, `check`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--backends`: backend names.
    pub backends: Option<Vec<String>>,
    /// `--duration`, as written (`30s`).
    pub duration: Option<String>,
    /// `--seed`: any u64 (the file's `seed` is a TOML integer, at most `i64::MAX`).
    pub seed: Option<u64>,
    /// `--write-rate`: ops/s or `max`.
    pub write_rate: Option<String>,
    /// `--warmup`, as written (`5s`).
    pub warmup: Option<String>,
    /// `--read-rate`: ops/s or `max`.
    pub read_rate: Option<String>,
    pub write_workers: Option<u32>,
    pub read_workers: Option<u32>,
}

impl Overrides {
    /// Writes the overrides into the scenario's table; returns `(key path, flag)` for each, so
    /// a problem with the value names the flag that gave it.
    fn apply(&self, root: &mut toml::Table) -> Vec<(&'static str, &'static str)> {
        use toml::Value;
        let mut flags = Vec::new();
        let mut set = |section: Option<&str>, key: &str, value: Value| match section {
            None => {
                root.insert(key.to_string(), value);
            }
            Some(s) => {
                let table = root
                    .entry(s.to_string())
                    .or_insert_with(|| Value::Table(toml::Table::new()));
                if let Value::Table(t) = table {
                    t.insert(key.to_string(), value);
                }
            }
        };
        if let Some(names) = &self.backends {
            let names = names.iter().map(|n| Value::String(n.trim().to_string()));
            set(None, "backends", Value::Array(names.collect()));
            flags.push(("backends", "--backends"));
        }
        if let Some(d) = &self.duration {
            set(None, "duration", Value::String(d.clone()));
            flags.push(("duration", "--duration"));
        }
        if let Some(d) = &self.warmup {
            set(None, "warmup", Value::String(d.clone()));
            flags.push(("warmup", "--warmup"));
        }
        let rate_value = |rate: &str| {
            let rate = rate.trim();
            match rate.parse::<f64>() {
                Ok(r) => Value::Float(r),
                Err(_) => Value::String(rate.to_string()),
            }
        };
        if let Some(rate) = &self.write_rate {
            set(Some("writes"), "rate", rate_value(rate));
            flags.push(("writes.rate", "--write-rate"));
        }
        if let Some(rate) = &self.read_rate {
            set(Some("reads"), "rate", rate_value(rate));
            flags.push(("reads.rate", "--read-rate"));
        }
        if let Some(n) = self.write_workers {
            set(Some("writes"), "workers", Value::Integer(n.into()));
            flags.push(("writes.workers", "--write-workers"));
        }
        if let Some(n) = self.read_workers {
            set(Some("reads"), "workers", Value::Integer(n.into()));
            flags.push(("reads.workers", "--read-workers"));
        }
        flags
    }
}

/// Whether a problem's `path` is about `key` (`backends` covers `backends[1]`).
fn names_key(path: &str, key: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['[', '.']))
}

/// One thing wrong with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Dotted path of the offending field (`keys.products.exponent`, `sweep.read_rates[2]`);
    /// `line L, column C` for a TOML syntax error; empty when the file could not be read.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything wrong with a scenario file. Displays one line per problem:
/// `{file}: {path}: {message}` (or `{file}: {message}` when the path is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", render(.file, .problems))]
pub struct ScenarioError {
    pub file: String,
    pub problems: Vec<Problem>,
}

fn render(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}: {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
