//! `triggers`: the read models of `cqrs-sync`, kept up by the database itself. Row triggers
//! on the write tables (`db::triggers`) update the read tables inside every write
//! transaction; the write path is the normalized one, with no application code for the read
//! side. Queries read the read models, a reader sees a write as soon as it commits, and
//! verify compares the read models with the truth from the write model.

use super::entry::{Entry, PackSupport, Role, VerifiedAgainst};
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions};
use crate::db::state::Provisions;
use crate::db::Db;

pub const KIND: BackendKind = BackendKind::new("triggers");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "triggers",
    help: "read models updated by database triggers on the write tables; queries read them",
    provisions: Provisions::TRIGGERS,
    verified_against: VerifiedAgainst::WriteModel,
    write_also: "the database's triggers updating the read models",
    read_side_lags: false,
    requires: None,
    in_default_set: false,
    lag_name: "",
    operations: "one database; the read-model logic lives in the database as triggers, deployed and migrated with the schema and invisible to the application's own tests",
    alternative_to_cqrs: Some("read models kept by database triggers"),
    needs_replica: false,
    needs_broker: false,
    measured_against: None,
    separate_read_store: false,
    role: Role::Alternative,
    simplicity: 1,
    pack: PackSupport::Refused("its read models are kept by the shop's own triggers"),
    open,
};

fn open(_db: &Db, _opts: &BackendOptions) -> Box<dyn Architecture> {
    Box::new(Triggers)
}

pub struct Triggers;

impl Architecture for Triggers {
    fn read_side(&self) -> ReadSide {
        ReadSide::ReadModels
    }
}
