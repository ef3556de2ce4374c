//! `cqrs-sync`: the write transaction also applies its events to the read models, so they
//! commit together; queries read the read models, and a reader sees a write as soon as it
//! commits. Verify compares the read models with the truth from the write model.

use futures::future::BoxFuture;
use sqlx::AnyConnection;

use super::entry::{Entry, PackMode, PackSupport, Role, VerifiedAgainst};
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions};
use crate::db::state::Provisions;
use crate::db::Db;
use crate::domain::Event;
use crate::projection::sql::{apply_batch, Delivered, Guard};
use crate::projection::ProjectionName;

pub const KIND: BackendKind = BackendKind::new("cqrs-sync");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "cqrs_sync",
    help: "read models updated in the write transaction; queries read them",
    provisions: Provisions::READ_MODELS,
    verified_against: VerifiedAgainst::WriteModel,
    write_also: "updating the read models in the write transaction",
    read_side_lags: false,
    requires: None,
    in_default_set: true,
    lag_name: "",
    operations: "one database; read-model code in every write path of the application",
    alternative_to_cqrs: None,
    needs_replica: false,
    needs_broker: false,
    measured_against: None,
    separate_read_store: false,
    role: Role::Cqrs,
    simplicity: 4,
    pack: PackSupport::Runs(PackMode::InTransaction),
    open,
};

fn open(_db: &Db, _opts: &BackendOptions) -> Box<dyn Architecture> {
    Box::new(CqrsSync)
}

pub struct CqrsSync;

impl Architecture for CqrsSync {
    fn in_write_transaction<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<Vec<i64>, sqlx::Error>> {
        Box::pin(async move {
            // Seen exactly once, in order, inside the transaction that produced them: no
            // positions and no ledger are needed.
            let delivered: Vec<Delivered> = events
                .iter()
                .map(|e| Delivered {
                    seq: 0,
                    event: e.clone(),
                })
                .collect();
            apply_batch(
                tx,
                &delivered,
                &ProjectionName::ALL,
                Guard::InWriteTransaction,
            )
            .await?;
            Ok(Vec::new())
        })
    }

    fn read_side(&self) -> ReadSide {
        ReadSide::ReadModels
    }
}
