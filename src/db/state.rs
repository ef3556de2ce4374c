//! What a database the tool seeded holds, as recorded in its meta table.
//!
//! The meta table's `state` row is text so that any version of the tool can read it:
//! `seeding` from the moment the tables exist (committed before the first row is written;
//! earlier versions wrote `empty`), then `ready:normalized`, `ready:read_models` or
//! `ready:read_models+event_log`. This module is the only place that reads or writes that
//! text; everyone else asks the typed value.

use std::fmt;

use super::{schema, Db, DbError, DbResult};

/// What a dataset holds besides the write model (which every dataset has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Provisions {
    /// The read models, built from the seeded data and kept up by the backend.
    pub read_models: bool,
    /// The event log (outbox) with the seed's history, and the projector's checkpoints.
    pub event_log: bool,
    /// The event store (`es_events`) as the write model, holding the seed's history, instead
    /// of the normalized write tables (which stay empty); read models are projected from it.
    pub event_store: bool,
    /// The read models maintained by the database's own triggers on the write tables
    /// (`db::triggers`).
    pub triggers: bool,
    /// The read models as materialized views over the write tables (PostgreSQL), refreshed
    /// on a schedule, instead of tables.
    pub matviews: bool,
    /// The read models alone, in a database of their own (`--read-db`), fed from another
    /// database's event log; the write tables here stay empty.
    pub read_store: bool,
    /// Copies of each product's name and current price in every order line
    /// (`order_items.product_name`, `product_cents`; `denormalized`), rewritten on a price
    /// change. Without it those columns stay NULL.
    pub product_copies: bool,
}

impl Provisions {
    /// The write model alone.
    pub const WRITE_MODEL: Provisions = Provisions {
        read_models: false,
        event_log: false,
        event_store: false,
        triggers: false,
        matviews: false,
        read_store: false,
        product_copies: false,
    };
    /// The write model and read models, kept in the write transaction.
    pub const READ_MODELS: Provisions = Provisions {
        read_models: true,
        event_log: false,
        event_store: false,
        triggers: false,
        matviews: false,
        read_store: false,
        product_copies: false,
    };
    /// The write model, read models and the event log they are projected from.
    pub const READ_MODELS_AND_LOG: Provisions = Provisions {
        read_models: true,
        event_log: true,
        event_store: false,
        triggers: false,
        matviews: false,
        read_store: false,
        product_copies: false,
    };
    /// The event store as the write model, and the read models projected from it.
    pub const EVENT_STORE: Provisions = Provisions {
        read_models: true,
        event_log: false,
        event_store: true,
        triggers: false,
        matviews: false,
        read_store: false,
        product_copies: false,
    };
    /// The write model, and read models the database keeps up with triggers.
    pub const TRIGGERS: Provisions = Provisions {
        read_models: true,
        event_log: false,
        event_store: false,
        triggers: true,
        matviews: false,
        read_store: false,
        product_copies: false,
    };
    /// The write model, and read models as materialized views over it.
    pub const MATVIEWS: Provisions = Provisions {
        read_models: true,
        event_log: false,
        event_store: false,
        triggers: false,
        matviews: true,
        read_store: false,
        product_copies: false,
    };
    /// The read models alone, fed from another database's log (`--read-db`).
    pub const READ_STORE: Provisions = Provisions {
        read_models: true,
        read_store: true,
        ..Provisions::WRITE_MODEL
    };
    /// A write side whose read models live in another database: the write model and the
    /// event log they are projected from.
    pub const LOG_ONLY: Provisions = Provisions {
        event_log: true,
        ..Provisions::WRITE_MODEL
    };
    /// The write model alone, its order lines carrying copies of the product's name and
    /// current price (`denormalized`).
    pub const PRODUCT_COPIES: Provisions = Provisions {
        product_copies: true,
        ..Provisions::WRITE_MODEL
    };

    /// The word the meta table records for these provisions.
    fn mark(self) -> &'static str {
        if self.event_store {
            return "read_models+event_store";
        }
        if self.triggers {
            return "read_models+triggers";
        }
        if self.matviews {
            return "matviews";
        }
        if self.read_store {
            return "read_store";
        }
        if self.product_copies {
            return "product_copies";
        }
        match (self.read_models, self.event_log) {
            (false, false) => "normalized",
            (true, false) => "read_models",
            (true, true) => "read_models+event_log",
            // No backend provisions a log without read models; recorded as what it holds.
            (false, true) => "event_log",
        }
    }

    fn from_mark(mark: &str) -> Option<Provisions> {
        [
            Provisions::WRITE_MODEL,
            Provisions::READ_MODELS,
            Provisions::READ_MODELS_AND_LOG,
            Provisions::EVENT_STORE,
            Provisions::TRIGGERS,
            Provisions::MATVIEWS,
            Provisions::READ_STORE,
            Provisions::LOG_ONLY,
            Provisions::PRODUCT_COPIES,
        ]
        .into_iter()
        .find(|p| p.mark() == mark)
    }
}

/// The `state` the meta table records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbState {
    /// Tables created, load not finished: being seeded, or a seed that was interrupted or
    /// failed (half-seeded). Recorded before the seed writes a row.
    Seeding,
    /// Loaded, holding what `Provisions` says.
    Ready(Provisions),
    /// Text this version does not know (kept for messages).
    Unknown(String),
}

impl DbState {
    pub const KEY: &'static str = "state";

    pub fn parse(text: &str) -> DbState {
        match text.strip_prefix("ready:").map(Provisions::from_mark) {
            Some(Some(p)) => DbState::Ready(p),
            _ if text == "seeding" || text == "empty" => DbState::Seeding,
            _ => DbState::Unknown(text.to_string()),
        }
    }

    fn provisions(&self) -> Provisions {
        match self {
            DbState::Ready(p) => *p,
            _ => Provisions::default(),
        }
    }

    pub fn has_read_models(&self) -> bool {
        self.provisions().read_models
    }

    pub fn has_event_log(&self) -> bool {
        self.provisions().event_log
    }

    /// Whether the read models are materialized views (`matview`).
    pub fn has_matviews(&self) -> bool {
        self.provisions().matviews
    }

    /// Whether the database holds only read models fed from another's log (`--read-db`).
    pub fn is_read_store(&self) -> bool {
        self.provisions().read_store
    }

    /// Whether the order lines carry copies of their product's name and price
    /// (`denormalized`).
    pub fn has_product_copies(&self) -> bool {
        self.provisions().product_copies
    }

    /// Whether the database's write model is the event store.
    pub fn has_event_store(&self) -> bool {
        self.provisions().event_store
    }

    /// Reads the state of a database the tool owns (`Unknown("")` when none is recorded).
    pub async fn read(db: &Db) -> DbResult<DbState> {
        let text = schema::meta_get(db, Self::KEY).await?.unwrap_or_default();
        Ok(DbState::parse(&text))
    }
}

/// Refuses a database of the tool's whose seed never finished (interrupted or failed): its
/// tables hold part of a dataset, which nothing should measure, verify or rebuild.
pub async fn refuse_half_seeded(db: &Db) -> DbResult<()> {
    if DbState::read(db).await? == DbState::Seeding {
        return Err(DbError::HalfSeeded(db.location()));
    }
    Ok(())
}

/// Requires that the database holds the tool's tables, fully seeded (for verify, rebuild,
/// the projector, dead letters).
pub async fn require_seeded(db: &Db) -> DbResult<()> {
    schema::require_ours(db).await?;
    refuse_half_seeded(db).await
}

impl fmt::Display for DbState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbState::Seeding => f.write_str("seeding"),
            DbState::Ready(p) => write!(f, "ready:{}", p.mark()),
            DbState::Unknown(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_earlier_versions_wrote() {
        for (text, state) in [
            ("seeding", DbState::Seeding),
            ("ready:normalized", DbState::Ready(Provisions::WRITE_MODEL)),
            ("ready:read_models", DbState::Ready(Provisions::READ_MODELS)),
            (
                "ready:read_models+event_log",
                DbState::Ready(Provisions::READ_MODELS_AND_LOG),
            ),
            (
                "ready:read_models+event_store",
                DbState::Ready(Provisions::EVENT_STORE),
            ),
            (
                "ready:read_models+triggers",
                DbState::Ready(Provisions::TRIGGERS),
            ),
            ("ready:matviews", DbState::Ready(Provisions::MATVIEWS)),
            ("ready:read_store", DbState::Ready(Provisions::READ_STORE)),
            ("ready:event_log", DbState::Ready(Provisions::LOG_ONLY)),
            (
                "ready:product_copies",
                DbState::Ready(Provisions::PRODUCT_COPIES),
            ),
        ] {
            assert_eq!(DbState::parse(text), state);
            assert_eq!(state.to_string(), text);
        }
        assert_eq!(
            DbState::parse("empty"),
            DbState::Seeding,
            "earlier versions' mark"
        );
        let odd = DbState::parse("ready:something_new");
        assert!(!odd.has_read_models() && !odd.has_event_log());
        assert!(DbState::parse("ready:read_models+event_log").has_event_log());
        assert!(!DbState::parse("ready:read_models").has_event_log());
        assert!(DbState::parse("ready:read_models").has_read_models());
        let es = DbState::parse("ready:read_models+event_store");
        assert!(es.has_event_store() && es.has_read_models() && !es.has_event_log());
        assert!(!DbState::parse("ready:read_models+event_log").has_event_store());
        let copies = DbState::parse("ready:product_copies");
        assert!(copies.has_product_copies() && !copies.has_read_models());
        assert!(!DbState::parse("ready:normalized").has_product_copies());
    }
}
