//! `check-projections`: proves a workload pack's own projections converge. Command
//! histories are drawn from the pack's commands and op stream by proptest's runner, from one
//! seed; each history runs on a scratch database ([`replay::Scratch`]) and its events are
//! delivered into fresh read models under faults each history picks for itself
//! ([`history`]): duplicates, a crash before the checkpoint commits, events of different
//! streams reordered, a rebuild mid-history. The read models must equal the truth queries
//! and a single in-order delivery. A history that diverges is shrunk by proptest to the
//! fewest commands and faults that still show it, and kept as a replay file ([`file`]).
//!
//! Guarantees, reported apart:
//! - **exactly-once**: through the tool's projector step (checkpoint in the transaction).
//!   Every history must converge; a divergence is a bug in the tool (or a projection wrong
//!   even in order, which every guarantee then shows).
//! - **at-least-once**: every delivery applied, no checkpoint guard: whether the pack's
//!   statements are idempotent and order-insensitive on their own.
//! - **idempotent P**, per projection: each event of P's type delivered in order, P applied a
//!   second time: whether P alone survives redelivery.
//!
//! The histories are the same for every guarantee (one seed). Nothing is left behind: see
//! [`replay`].

pub mod file;
pub mod history;
pub mod replay;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::check::CheckLine;
use crate::db::{DbUrl, Engine};
use crate::pack::exec::CompiledPack;
use crate::pack::params::Params;
use crate::pack::Pack;
use history::{deliveries, histories, schedule_told, Bounds, Emitted, History};
use replay::{event_text, streams, Delivery, Divergence, Scratch, ScratchError};

/// What a history is checked under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
    /// Projection `0` alone, applied twice.
    Idempotent(String),
}

impl Guarantee {
    /// `exactly-once`, `at-least-once`, `idempotent:NAME`: as printed and in replay files.
    pub fn name(&self) -> String {
        match self {
            Guarantee::ExactlyOnce => "exactly-once".into(),
            Guarantee::AtLeastOnce => "at-least-once".into(),
            Guarantee::Idempotent(p) => format!("idempotent:{p}"),
        }
    }

    pub fn parse(text: &str) -> Option<Guarantee> {
        match text {
            "exactly-once" => Some(Guarantee::ExactlyOnce),
            "at-least-once" => Some(Guarantee::AtLeastOnce),
            _ => text
                .strip_prefix("idempotent:")
                .map(|p| Guarantee::Idempotent(p.to_string())),
        }
    }

    fn delivery(&self) -> Delivery {
        match self {
            Guarantee::ExactlyOnce => Delivery::ExactlyOnce,
            Guarantee::AtLeastOnce => Delivery::AtLeastOnce,
            Guarantee::Idempotent(p) => Delivery::TwiceFor(p.clone()),
        }
    }

    /// Whether histories carry delivery faults (the idempotence check has one fault of its
    /// own: the projection applied twice).
    fn faults(&self) -> bool {
        !matches!(self, Guarantee::Idempotent(_))
    }
}

/// What the run is asked to do.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Histories per guarantee (the per-projection idempotence checks share as many).
    pub histories: u32,
    pub seed: u64,
    pub bounds: Bounds,
    /// The dataset's sizes where not the pack's defaults.
    pub sizes: BTreeMap<String, i64>,
    /// Whether at-least-once (and each projection's idempotence) decides the outcome too;
    /// exactly-once always does.
    pub require_at_least_once: bool,
}

/// A shrunk divergence, for a reader and for a replay file.
#[derive(Debug, Clone)]
pub struct Counterexample {
    pub seed: u64,
    pub history: History,
    /// Each op as `command #index`, `(refused)` when it was.
    pub commands: Vec<String>,
    /// Each event, in log order, with the op it came from.
    pub events: Vec<String>,
    /// The events in the order delivered (indexes into `events`).
    pub deliveries: Vec<usize>,
    /// Each fault as it landed on these events.
    pub faults: Vec<String>,
    pub divergence: Divergence,
}

/// The outcome of one guarantee.
#[derive(Debug, Clone)]
pub struct Finding {
    pub guarantee: Guarantee,
    pub histories: u32,
    /// Whether it decides the outcome.
    pub required: bool,
    pub counterexample: Option<Counterexample>,
}

impl Finding {
    /// Holds, or diverged where it is not required.
    pub fn passed(&self) -> bool {
        self.counterexample.is_none() || !self.required
    }
}

#[derive(Debug, Clone)]
pub struct ConvergenceReport {
    pub pack: String,
    pub pack_dir: String,
    pub engine: Engine,
    pub seed: u64,
    pub sizes: BTreeMap<String, i64>,
    pub findings: Vec<Finding>,
    /// Histories checked in all (every guarantee's).
    pub histories: u64,
    pub seconds: f64,
}

impl ConvergenceReport {
    pub fn passed(&self) -> bool {
        self.findings.iter().all(Finding::passed)
    }

    /// One line per guarantee, as `check`'s, for its JUnit output.
    pub fn lines(&self) -> Vec<CheckLine> {
        let run = format!("{} on {}", self.pack, self.engine.display_name());
        self.findings
            .iter()
            .map(|f| {
                let (measured, detail) = match &f.counterexample {
                    None => (format!("{} histories converged", f.histories), Vec::new()),
                    Some(c) => {
                        let mut detail = vec![
                            format!("seed {} · {}", c.seed, c.history.rates),
                            format!("commands: {}", c.commands.join("; ")),
                        ];
                        detail.extend(c.events.iter().map(|e| format!("event {e}")));
                        detail.push(format!("delivered: {:?}", c.deliveries));
                        detail.extend(c.faults.iter().map(|f| format!("fault: {f}")));
                        detail.push(c.divergence.to_string());
                        let note = if f.required { "" } else { " (not required)" };
                        (format!("diverged{note}"), detail)
                    }
                };
                CheckLine {
                    name: f.guarantee.name(),
                    run: run.clone(),
                    passed: f.passed(),
                    measured,
                    detail,
                }
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConvergenceError {
    #[error(transparent)]
    Scratch(#[from] ScratchError),
    #[error("the scratch database failed mid-check: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Input(String),
    #[error("cannot start the check's runtime: {0}")]
    Runtime(std::io::Error),
}

impl ConvergenceError {
    /// 2: bad input or a database that cannot be opened; 3: it failed mid-check.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConvergenceError::Scratch(ScratchError::Db(e)) => e.exit_code(),
            ConvergenceError::Scratch(_) | ConvergenceError::Input(_) => 2,
            ConvergenceError::Db(_) | ConvergenceError::Runtime(_) => 3,
        }
    }
}

/// The check's own runtime, on the calling thread: proptest's runner calls the property
/// synchronously, and each call drives the database through this runtime.
fn runtime() -> Result<tokio::runtime::Runtime, ConvergenceError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ConvergenceError::Runtime)
}

/// `pack` compiled at `sizes` for `engine`, with its parameters drawn from `seed`.
/// `sizes_named`: how the sizes were given, for a message (`--size`, `FILE: sizes`).
fn compile(
    pack: Pack,
    engine: Engine,
    sizes: &BTreeMap<String, i64>,
    sizes_named: &str,
    seed: u64,
) -> Result<(CompiledPack, Params), ConvergenceError> {
    for name in sizes.keys() {
        if !pack.sizes.contains_key(name) {
            return Err(ConvergenceError::Input(format!(
                "{sizes_named} {name}: pack {} has no size {name} (it has: {})",
                pack.name,
                pack.sizes.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let compiled = CompiledPack::new(pack, engine, sizes);
    let params =
        Params::new(seed, &compiled.pack.parameters, compiled.sizes()).map_err(|problems| {
            let text: Vec<String> = problems
                .into_iter()
                .map(|(p, e)| format!("parameters.{p}: {e}"))
                .collect();
            ConvergenceError::Input(text.join("; "))
        })?;
    Ok((compiled, params))
}

/// The 32 bytes proptest's ChaCha runner starts from.
fn rng_seed(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
        );
    }
    bytes
}

/// Runs `history` under `guarantee` once; `Some`: how it diverged, for a reader.
async fn check_one(
    scratch: &mut Scratch,
    seed: u64,
    history: &History,
    guarantee: &Guarantee,
) -> Result<Option<Counterexample>, sqlx::Error> {
    let mut faults = Vec::new();
    let (ran, steps, divergence) = scratch
        .check(&history.ops, &guarantee.delivery(), |pack, ran| {
            let streams = streams(pack, &ran.events);
            let emitted = Emitted {
                from_op: &ran.from_op,
                streams: &streams,
            };
            let (steps, told) = schedule_told(history, &emitted);
            faults = told;
            steps
        })
        .await?;
    let Some(divergence) = divergence else {
        return Ok(None);
    };
    let commands = history
        .ops
        .iter()
        .enumerate()
        .map(|(k, op)| {
            let refused = if ran.refused.contains(&k) {
                " (refused)"
            } else {
                ""
            };
            format!("{} #{}{refused}", op.command, op.index)
        })
        .collect();
    let events = ran
        .events
        .iter()
        .zip(&ran.from_op)
        .enumerate()
        .map(|(i, (e, op))| format!("{i}: {} (from command {op})", event_text(e)))
        .collect();
    Ok(Some(Counterexample {
        seed,
        history: history.clone(),
        commands,
        events,
        deliveries: deliveries(&steps),
        faults,
        divergence,
    }))
}

/// Checks `guarantee` on `options.histories` histories (proptest's runner, shrinking the
/// first that diverges).
fn check_guarantee(
    rt: &tokio::runtime::Runtime,
    scratch: &RefCell<Scratch>,
    options: &CheckOptions,
    guarantee: Guarantee,
    cases: u32,
) -> Result<Finding, ConvergenceError> {
    let commands: Vec<String> = scratch
        .borrow()
        .pack()
        .pack
        .commands
        .keys()
        .cloned()
        .collect();
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        verbose: 0,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed(options.seed));
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = histories(commands, options.bounds, guarantee.faults());
    let stopped: RefCell<Option<sqlx::Error>> = RefCell::new(None);
    let outcome = runner.run(&strategy, |h| {
        if stopped.borrow().is_some() {
            // The database failed: let the runner finish at once.
            return Ok(());
        }
        let mut s = scratch.borrow_mut();
        match rt.block_on(check_one(&mut s, options.seed, &h, &guarantee)) {
            Ok(None) => Ok(()),
            Ok(Some(c)) => Err(TestCaseError::fail(c.divergence.to_string())),
            Err(e) => {
                *stopped.borrow_mut() = Some(e);
                Ok(())
            }
        }
    });
    if let Some(e) = stopped.into_inner() {
        return Err(e.into());
    }
    let required = options.require_at_least_once || guarantee == Guarantee::ExactlyOnce;
    let counterexample = match outcome {
        Ok(()) => None,
        Err(TestError::Fail(_, shrunk)) => {
            let mut s = scratch.borrow_mut();
            rt.block_on(check_one(&mut s, options.seed, &shrunk, &guarantee))?
        }
        Err(TestError::Abort(reason)) => {
            return Err(ConvergenceError::Input(format!(
                "the history generator gave up: {reason}"
            )))
        }
    };
    Ok(Finding {
        guarantee,
        histories: cases,
        required,
        counterexample,
    })
}

/// Checks every guarantee of `pack` on a scratch database on `url`'s engine (in-memory
/// SQLite without one). Runs on the calling thread with a runtime of its own: call it from a
/// blocking thread.
pub fn check_projections(
    pack: Pack,
    url: Option<&DbUrl>,
    options: &CheckOptions,
) -> Result<ConvergenceReport, ConvergenceError> {
    if pack.commands.is_empty() {
        return Err(ConvergenceError::Input(format!(
            "pack {} has no commands: no history to check",
            pack.name
        )));
    }
    let engine = url.map_or(Engine::Sqlite, DbUrl::engine);
    let rt = runtime()?;
    let started = Instant::now();
    let (compiled, params) = compile(pack, engine, &options.sizes, "--size", options.seed)?;
    let name = compiled.pack.name.clone();
    let pack_dir = compiled.pack.dir.display().to_string();
    let sizes = compiled.sizes().clone();
    let projections: Vec<String> = compiled.pack.projections.keys().cloned().collect();
    let scratch = RefCell::new(rt.block_on(Scratch::open(url, compiled, params))?);
    let mut findings = Vec::new();
    let mut total = 0u64;
    let mut guarantees = vec![
        (Guarantee::ExactlyOnce, options.histories),
        (Guarantee::AtLeastOnce, options.histories),
    ];
    // The per-projection checks share one guarantee's worth of histories between them.
    let each = (options.histories / projections.len().max(1) as u32).max(10);
    guarantees.extend(
        projections
            .into_iter()
            .map(|p| (Guarantee::Idempotent(p), each)),
    );
    let outcome = (|| {
        for (g, cases) in guarantees {
            findings.push(check_guarantee(&rt, &scratch, options, g, cases)?);
            total += u64::from(cases);
        }
        Ok::<(), ConvergenceError>(())
    })();
    rt.block_on(scratch.into_inner().close());
    outcome?;
    Ok(ConvergenceReport {
        pack: name,
        pack_dir,
        engine,
        seed: options.seed,
        sizes,
        findings,
        histories: total,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs a replay file's history once under its guarantee, on `url`'s engine.
pub fn replay(
    pack: Pack,
    url: Option<&DbUrl>,
    saved: &file::ReplayFile,
) -> Result<Option<Counterexample>, ConvergenceError> {
    if saved.pack != pack.name {
        return Err(ConvergenceError::Input(format!(
            "the replay file is for pack {}, not {}",
            saved.pack, pack.name
        )));
    }
    let guarantee = Guarantee::parse(&saved.guarantee).ok_or_else(|| {
        ConvergenceError::Input(format!(
            "guarantee: {:?} is none of exactly-once, at-least-once, idempotent:PROJECTION",
            saved.guarantee
        ))
    })?;
    if let Guarantee::Idempotent(p) = &guarantee {
        if !pack.projections.contains_key(p) {
            return Err(ConvergenceError::Input(format!(
                "guarantee: pack {} has no projection {p}",
                pack.name
            )));
        }
    }
    for op in &saved.history.ops {
        if !pack.commands.contains_key(&op.command) {
            return Err(ConvergenceError::Input(format!(
                "history.ops: pack {} has no command {}",
                pack.name, op.command
            )));
        }
    }
    let engine = url.map_or(Engine::Sqlite, DbUrl::engine);
    let rt = runtime()?;
    let (compiled, params) = compile(
        pack,
        engine,
        &saved.sizes,
        "the replay file's sizes:",
        saved.seed,
    )?;
    let mut scratch = rt.block_on(Scratch::open(url, compiled, params))?;
    let outcome = rt.block_on(check_one(
        &mut scratch,
        saved.seed,
        &saved.history,
        &guarantee,
    ));
    rt.block_on(scratch.close());
    Ok(outcome?)
}
