//! `cqrs-async`: the write transaction appends its events to the outbox (and, where the engine
//! has notifications, wakes projectors in other processes); the projector applies them to the
//! read models later, and queries read the read models. A reader sees a write once every read
//! model's checkpoint covers its events. Verify compares the read models with the truth from
//! the write model. The projector and the read-your-writes check are `projected`'s, shared
//! with `event-sourced`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::{AnyConnection, Row};

use super::entry::{Entry, PackMode, PackSupport, Role, VerifiedAgainst};
use super::projected::Projected;
use super::queries::ReadSide;
use super::{Architecture, BackendKind, BackendOptions, Receipt, Session, Written};
use crate::db::sql::{bind_all, multi_row_query, values_for, Param};
use crate::db::state::Provisions;
use crate::db::Db;
use crate::domain::Event;
use crate::projection::event_source::EventLog;
use crate::projection::projector::{Projector, ProjectorError};

pub const KIND: BackendKind = BackendKind::new("cqrs-async");

pub const ENTRY: Entry = Entry {
    kind: KIND,
    ident: "cqrs_async",
    help:
        "events appended to an outbox in the write transaction; a projector updates the read models",
    provisions: Provisions::READ_MODELS_AND_LOG,
    verified_against: VerifiedAgainst::WriteModel,
    write_also: "appending the outbox event",
    read_side_lags: true,
    requires: None,
    in_default_set: true,
    lag_name: "projection lag",
    operations: "one database, plus a projector to run and watch (checkpoints, dead letters, rebuilds); readers must tolerate its lag",
    alternative_to_cqrs: None,
    needs_replica: false,
    needs_broker: false,
    measured_against: None,
    separate_read_store: true,
    role: Role::Cqrs,
    simplicity: 5,
    pack: PackSupport::Runs(PackMode::Outbox),
    open,
};

/// Starts the projector unless told not to (tests may drive it by hand instead).
fn open(db: &Db, opts: &BackendOptions) -> Box<dyn Architecture> {
    Box::new(CqrsAsync {
        read_side: Projected::start(db, EventLog::outbox(db.clone()), opts),
    })
}

pub struct CqrsAsync {
    read_side: Projected,
}

impl Architecture for CqrsAsync {
    fn in_write_transaction<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<Vec<i64>, sqlx::Error>> {
        Box::pin(async move {
            let seqs = append_events(tx, events).await?;
            self.read_side.notify_in(tx).await?;
            Ok(seqs)
        })
    }

    fn after_commit(&self, written: &Written, at: Instant) {
        self.read_side.after_commit(&written.seqs, at);
    }

    fn read_side(&self) -> ReadSide {
        ReadSide::ReadModels
    }

    fn reads_from<'a>(&'a self, db: &'a Db) -> &'a Db {
        self.read_side.reads_from(db)
    }

    fn is_visible<'a>(
        &'a self,
        db: &'a Db,
        session: &'a mut Session,
        receipt: &'a Receipt,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(self.read_side.is_visible(db, session, receipt))
    }

    fn projector(&self) -> Option<&Arc<Projector>> {
        Some(self.read_side.projector())
    }

    fn search(&self) -> Option<&super::projected::SearchSide> {
        self.read_side.search()
    }

    fn start(&self) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(self.read_side.start_search())
    }

    fn wait_caught_up(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProjectorError>> {
        Box::pin(self.read_side.wait_caught_up(timeout))
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.read_side.shutdown())
    }
}

/// Appends events to the outbox; returns their seqs.
pub async fn append_events(
    conn: &mut AnyConnection,
    events: &[Event],
) -> Result<Vec<i64>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let params: Vec<Param> = events
        .iter()
        .flat_map(|e| [e.stream().into(), e.kind().into(), e.to_json().into()])
        .collect();
    let sql = format!(
        "INSERT INTO events (stream, kind, payload) VALUES {} RETURNING seq",
        values_for(conn, events.len(), 3)
    );
    let rows = bind_all(multi_row_query(&sql, events.len()), &params)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.try_get::<i64, _>(0)).collect()
}
