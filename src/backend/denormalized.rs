//! `denormalized`: the seed's mess. Every order line carries copies of its product's name
//! and current price (`db::copies`) beside the price paid at placement; placing an order
//! copies them into its lines, and a price change rewrites every historical line of the
//! product in the price change's own transaction — the longer the shop's history, the longer
//! that transaction. The write path is otherwise the normalized one (the same rules, the same
//! accepted and refused commands). Queries read the normalized tables, taking product
//! details from the lines where a copy serves (`queries::ReadSide::Denormalized`); a reader
//! sees a write as soon as it commits. Verify compares every line's copies with the products
//! table, so a rewrite that missed a line is caught.

use futures::future::BoxFuture;
use sqlx::AnyConnection;

use super::entry::{Entry, PackSupport, Role, VerifiedAgainst};
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions};
use crate::db::copies;
use crate::db::state::Provisions;
use crate::db::Db;
use crate::domain::Event;

pub const KIND: BackendKind = BackendKind::new("denormalized");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "denormalized",
    help: "order lines carry copies of the product's name and price, rewritten on every price change; queries read the lines",
    provisions: Provisions::PRODUCT_COPIES,
    verified_against: VerifiedAgainst::ProductCopies,
    write_also: "copying product details into order lines, and rewriting every historical line of a product on its price change",
    read_side_lags: false,
    requires: None,
    // A failure story's subject, run where a scenario names it.
    in_default_set: false,
    lag_name: "",
    operations: "one database; every write path that changes a product must find and rewrite its copies",
    // Not a way to keep read models: it keeps no read models at all.
    alternative_to_cqrs: None,
    needs_replica: false,
    needs_broker: false,
    measured_against: Some(super::cqrs_sync::KIND),
    // The copies live in the write model's own rows.
    separate_read_store: false,
    role: Role::Story,
    simplicity: 8,
    pack: PackSupport::Refused("its copies are of the shop's product name and price"),
    open,
};

fn open(_db: &Db, _opts: &BackendOptions) -> Box<dyn Architecture> {
    Box::new(Denormalized)
}

pub struct Denormalized;

impl Architecture for Denormalized {
    fn in_write_transaction<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<Vec<i64>, sqlx::Error>> {
        Box::pin(async move {
            for event in events {
                match event {
                    Event::OrderPlaced { order_id, .. } => {
                        copies::copy_into_order(tx, *order_id).await?;
                    }
                    Event::PriceChanged {
                        product_id,
                        new_cents,
                        ..
                    } => {
                        copies::rewrite_price(tx, *product_id, *new_cents).await?;
                    }
                    // Names never change; stock, statuses and reviews are not copied.
                    _ => {}
                }
            }
            Ok(Vec::new())
        })
    }

    fn read_side(&self) -> ReadSide {
        ReadSide::Denormalized
    }
}
