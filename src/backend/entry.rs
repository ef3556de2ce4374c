//! What a backend file declares about itself: the type of its registry entry. Apart from
//! `registry` so that the backend files and the list of them do not import each other.

use super::{Architecture, BackendKind, BackendOptions};
use crate::db::state::Provisions;
use crate::db::{Db, Engine};

/// What verify compares a backend's data with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifiedAgainst {
    /// Nothing to compare: the write model is the only copy.
    Nothing,
    /// Every read model, row by row, against the truth computed from the write model.
    WriteModel,
    /// Every read model, row by row, against a fold over the event store (the write model
    /// there, with no normalized truth to compute).
    EventStore,
    /// Every order line's copies of its product's name and price, against the products
    /// table (`denormalized`: the copies are the second copy).
    ProductCopies,
}

/// What a backend is to a team deciding whether CQRS pays off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The normalized write model alone: what every other backend is compared with.
    Baseline,
    /// What a team tries before CQRS: triggers, materialized views, a read replica.
    Alternative,
    /// Command/query separation with read models of its own (sync, async, broker, events).
    Cqrs,
    /// Told by a story to show a failure (`denormalized`); never the decision's answer.
    Story,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Baseline => "baseline",
            Role::Alternative => "alternative a team tries first",
            Role::Cqrs => "CQRS",
            Role::Story => "story backend",
        }
    }
}

/// One registered backend.
pub struct Entry {
    /// The backend file's `KIND`, which holds its name (in scenarios, on the command line and
    /// in reports).
    pub kind: BackendKind,
    /// The name in file and schema names.
    pub ident: &'static str,
    pub help: &'static str,
    pub provisions: Provisions,
    pub verified_against: VerifiedAgainst,
    /// What its write transaction does beyond the normalized write path, in words for the
    /// verdict (empty if nothing).
    pub write_also: &'static str,
    /// Whether a reader can miss a committed write for a while (the verdict then always
    /// reports read-your-writes).
    pub read_side_lags: bool,
    /// The engine it needs, if it cannot run on every one (a scenario naming it is refused
    /// on the others).
    pub requires: Option<Engine>,
    /// Whether a scenario that names no backends runs it. The alternatives to CQRS run only
    /// where a scenario asks for them.
    pub in_default_set: bool,
    /// What its read side's lag is called (`projection lag`, `view staleness`); empty when
    /// the read side never lags.
    pub lag_name: &'static str,
    /// What it takes to run, in plain words, for the verdict's comparison.
    pub operations: &'static str,
    /// For a simpler alternative to CQRS, what it is called in the verdict's question ("would
    /// a materialized view have been enough here?"); `None` for the others.
    pub alternative_to_cqrs: Option<&'static str>,
    /// Whether it reads from a standby of the database (`--replica-db`), which it cannot
    /// open without.
    pub needs_replica: bool,
    /// Whether it needs a NATS JetStream broker (`--broker`), which the run connects to before
    /// anything is seeded.
    pub needs_broker: bool,
    /// The backend the verdict measures it against, when that is not the baseline: the one
    /// that does the same with one thing changed (event-sourced against cqrs-async: the same
    /// events, decided on normalized rows; denormalized against cqrs-sync: the same answers
    /// from read models instead of copies).
    pub measured_against: Option<BackendKind>,
    /// Whether its read models can live in a database of their own (`--read-db`): only
    /// where a projector feeds them from an event log, not where the write transaction or
    /// the database itself keeps them.
    pub separate_read_store: bool,
    /// What it is to the decision (baseline, an alternative tried first, CQRS, a story's).
    pub role: Role,
    /// Rank from simplest to run (0, normalized) up; the decision names the simplest backend
    /// that meets every budget.
    pub simplicity: u8,
    /// Whether and how it runs a workload pack (`pack::backend`), or why not.
    pub pack: PackSupport,
    /// Opens the backend's own part on a seeded database.
    pub open: fn(&Db, &BackendOptions) -> Box<dyn Architecture>,
}

/// How a backend runs a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackMode {
    /// The write model alone (`normalized`): queries answer with their `write_sql`.
    WriteModel,
    /// The projection statements run inside the command's transaction (`cqrs-sync`);
    /// queries answer with their `read_sql`.
    InTransaction,
    /// The events are appended to an outbox in the command's transaction and a projector
    /// applies them later (`cqrs-async`); queries answer with their `read_sql`.
    Outbox,
    /// Each read model is a materialized view of its truth query, refreshed on a schedule
    /// (`matview`); commands run on the write model alone; queries answer with their
    /// `read_sql` from the views.
    Views,
    /// Commands run on the primary's write model; queries answer with their `write_sql` on
    /// a hot standby of it (`replica`).
    Standby,
    /// The events are appended to an outbox in the command's transaction, a relay publishes
    /// them to a NATS JetStream stream and a projector consuming it applies them
    /// (`cqrs-broker`); queries answer with their `read_sql`.
    Broker,
}

impl PackMode {
    /// What the dataset holds besides the write model (recorded as its state).
    pub fn provisions(self) -> crate::db::state::Provisions {
        match self {
            PackMode::WriteModel => crate::db::state::Provisions::WRITE_MODEL,
            PackMode::InTransaction => crate::db::state::Provisions::READ_MODELS,
            PackMode::Outbox => crate::db::state::Provisions::READ_MODELS_AND_LOG,
            PackMode::Views => crate::db::state::Provisions::MATVIEWS,
            PackMode::Standby => crate::db::state::Provisions::WRITE_MODEL,
            PackMode::Broker => crate::db::state::Provisions::READ_MODELS_AND_LOG,
        }
    }

    /// Whether a command's events go to the pack's outbox, for a projector to apply later.
    pub fn has_outbox(self) -> bool {
        matches!(self, PackMode::Outbox | PackMode::Broker)
    }

    pub fn has_read_models(self) -> bool {
        self.provisions().read_models
    }
}

/// Whether a backend runs a pack: in a mode, or refused for a reason (for the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackSupport {
    Runs(PackMode),
    /// Why not, in words: "its write model is the shop's event store".
    Refused(&'static str),
}
