//! `normalized`: the write model alone. A command's transaction is the normalized write path
//! and nothing else; queries join the normalized tables, so a reader sees a write as soon as
//! it commits, and there is no second copy for verify to check.

use super::entry::{Entry, PackMode, PackSupport, Role, VerifiedAgainst};
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions};
use crate::db::state::Provisions;
use crate::db::Db;

pub const KIND: BackendKind = BackendKind::new("normalized");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "normalized",
    help: "the write model alone; queries join its tables",
    provisions: Provisions::WRITE_MODEL,
    verified_against: VerifiedAgainst::Nothing,
    write_also: "",
    read_side_lags: false,
    requires: None,
    in_default_set: true,
    lag_name: "",
    operations: "one database and nothing else",
    alternative_to_cqrs: None,
    needs_replica: false,
    needs_broker: false,
    measured_against: None,
    separate_read_store: false,
    role: Role::Baseline,
    simplicity: 0,
    pack: PackSupport::Runs(PackMode::WriteModel),
    open,
};

fn open(_db: &Db, _opts: &BackendOptions) -> Box<dyn Architecture> {
    Box::new(Normalized)
}

pub struct Normalized;

impl Architecture for Normalized {
    fn read_side(&self) -> ReadSide {
        ReadSide::Normalized
    }
}
