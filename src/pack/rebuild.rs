//! Rebuilding a pack's read models on its `cqrs-async` dataset ([`super::backend::PackMode::Outbox`]):
//! the read models put back as the seed left them, the projector's checkpoint at the start of
//! the outbox, then the whole outbox applied again through the pack projector's own path
//! ([`PackProjector::catch_up`]) in large batches.
//!
//! The outbox holds only what the commands did after the seed; what the dataset's SQL put in
//! (the seeded rows the read models were filled with from their truth queries) no event
//! describes. So [`super::backend::prepare`] keeps a copy of each read model as the seed left
//! it ([`baseline_table`]), and a rebuild starts from that copy, not from empty tables.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection as _, Executor as _};

use super::backend::{PackMode, PACK_KEY};
use super::exec::CompiledPack;
use super::projector::{baseline_table, checkpoint_reset, PackProjector};
use crate::db::dialect::Dialect;
use crate::db::state::{self, DbState};
use crate::db::{schema, Db, DbError};
use crate::projection::projector::ProjectorError;
use crate::projection::rebuild::RebuildReport;

/// Why a pack's read models could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum PackRebuildError {
    #[error("{place} holds {holds}, not workload pack {pack}")]
    OtherDataset {
        place: String,
        holds: String,
        pack: String,
    },
    #[error(
        "{place} holds workload pack {pack} prepared for {backend}, which has no outbox: only a \
         cqrs-async dataset (a pack scenario's `run --keep-db`) can be rebuilt"
    )]
    NoOutbox {
        place: String,
        pack: String,
        backend: &'static str,
    },
    #[error(
        "{place} holds workload pack {pack} without a copy of its seeded read models \
         ({table} is missing; an older cqrs-bench prepared it): run the scenario again to rebuild"
    )]
    NoBaseline {
        place: String,
        pack: String,
        table: String,
    },
    #[error(transparent)]
    Projector(#[from] ProjectorError),
}

impl From<DbError> for PackRebuildError {
    fn from(e: DbError) -> Self {
        PackRebuildError::Projector(e.into())
    }
}

impl From<sqlx::Error> for PackRebuildError {
    fn from(e: sqlx::Error) -> Self {
        PackRebuildError::Projector(e.into())
    }
}

impl PackRebuildError {
    /// 2 when the dataset is not one this pack can rebuild; else the projector's code.
    pub fn exit_code(&self) -> u8 {
        match self {
            PackRebuildError::OtherDataset { .. }
            | PackRebuildError::NoOutbox { .. }
            | PackRebuildError::NoBaseline { .. } => 2,
            PackRebuildError::Projector(e) => e.exit_code(),
        }
    }
}

/// Refuses `db` unless it is `pack`'s `cqrs-async` dataset, with the copy of its seeded read
/// models a rebuild starts from.
async fn require_rebuildable(db: &Db, pack: &CompiledPack) -> Result<(), PackRebuildError> {
    state::require_seeded(db).await?;
    let place = db.location();
    let name = pack.pack.name.clone();
    let prepared = schema::meta_get(db, PACK_KEY).await?;
    if prepared.as_deref() != Some(name.as_str()) {
        let holds = match prepared {
            Some(p) => format!("workload pack {p}"),
            None => "the built-in shop's dataset (rebuild it without --pack)".to_string(),
        };
        return Err(PackRebuildError::OtherDataset {
            place,
            holds,
            pack: name,
        });
    }
    let st = DbState::read(db).await?;
    if st != DbState::Ready(PackMode::Outbox.provisions()) {
        let backend = if st == DbState::Ready(PackMode::InTransaction.provisions()) {
            "cqrs-sync"
        } else {
            "normalized"
        };
        return Err(PackRebuildError::NoOutbox {
            place,
            pack: name,
            backend,
        });
    }
    let mut conn = db.read.acquire().await.map_err(DbError::from)?;
    let tables = schema::tables_on(&mut conn, db.engine()).await?;
    for rm in pack.pack.read_models.keys() {
        let table = baseline_table(rm);
        if !tables.contains(&table) {
            return Err(PackRebuildError::NoBaseline {
                place,
                pack: name,
                table,
            });
        }
    }
    Ok(())
}

/// Events per transaction of a pack's rebuild where `--batch-size` does not say. On
/// PostgreSQL, the statements of a table that does not fold (`db::row_fold`) run row by row,
/// and a row they update many times in one transaction (a day's sales) has a longer chain of
/// versions to walk each time: 1,000 events a transaction rebuilt the `shop` pack 1.6 times
/// as fast as 10,000 (BENCHMARKS section 15). SQLite has no such chains and gains from the
/// larger batch.
pub fn default_batch_size(engine: crate::db::Engine) -> i64 {
    match engine {
        crate::db::Engine::Postgres => 1_000,
        crate::db::Engine::Sqlite => 10_000,
    }
}

/// In the caller's transaction: puts every read model of `pack` back to its seeded copy and the
/// projector's checkpoint back to the start of the events, where a rebuild starts (and
/// `check-projections` restarts a projection mid-history).
pub async fn restart_from_seed(
    tx: &mut sqlx::AnyConnection,
    dialect: Dialect,
    pack: &CompiledPack,
) -> Result<(), sqlx::Error> {
    let names: Vec<&str> = pack.pack.read_models.keys().map(String::as_str).collect();
    // As the shop's rebuild empties its read models (TRUNCATE on PostgreSQL).
    for statement in dialect.empty_tables(&names) {
        tx.execute(statement.as_str()).await?;
    }
    for name in &names {
        tx.execute(format!("INSERT INTO {name} SELECT * FROM {}", baseline_table(name)).as_str())
            .await?;
    }
    checkpoint_reset(tx).await
}

/// Rebuilds `pack`'s read models on its `cqrs-async` dataset `db`: in one transaction each
/// read model is emptied and filled again from its seeded copy and the projector's checkpoint
/// goes back to the start of the outbox; then the whole outbox is applied with the pack's
/// projector, `batch_size` events per transaction. Reports the events applied and their
/// rate, as the shop's rebuild does. The caller holds the database's lock (no run is
/// writing meanwhile).
pub async fn rebuild(
    db: &Db,
    pack: Arc<CompiledPack>,
    batch_size: i64,
) -> Result<RebuildReport, PackRebuildError> {
    require_rebuildable(db, &pack).await?;
    let started = Instant::now();
    {
        let mut conn = db.write.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await?;
        restart_from_seed(&mut tx, db.dialect(), &pack).await?;
        tx.commit().await?;
    }
    let projector = PackProjector::new(
        db.clone(),
        pack,
        batch_size.max(1),
        Duration::from_millis(10),
        None,
    );
    loop {
        projector.catch_up().await?;
        // Transactions still open elsewhere can hold the horizon back: wait, don't stop short.
        if projector.backlog().await? == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let events = projector.stats.events.load(Ordering::Relaxed);
    Ok(RebuildReport {
        events,
        seconds,
        events_per_second: events as f64 / seconds.max(1e-9),
    })
}
