//! The database side of `check-projections`: a scratch database holding the pack seeded once,
//! and for each history, inside a savepoint that is rolled back afterwards, the history's
//! commands run (each in a savepoint of its own, a refusal rolled back), the truth read, and
//! the events delivered into the read models under a guarantee and a schedule, each delivery
//! inside a savepoint of its own too, so the next starts from the same seeded read models.
//!
//! The exactly-once delivery goes through the tool's own projector step
//! (`pack::projector::read_checkpoint` locked, what it covers left out,
//! `pack::projector::apply_and_advance`, commit; a crash is that transaction rolled back),
//! behind the hand-over a broker consumer does (`projection::jetstream`): events past the
//! checkpoint only as a run without gaps. At-least-once applies every event it receives, in
//! the order received, with no checkpoint: what the pack's statements do on their own.
//!
//! Nothing is left behind: on SQLite the database is in memory; on PostgreSQL everything,
//! the schema the pack is seeded in included, is one transaction that is never committed.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Any, AnyConnection, Executor as _, Transaction};

use super::history::{Op, Step};
use crate::db::dialect::Dialect;
use crate::db::scratch::Scratch as DbScratch;
use crate::db::sql::Param;
use crate::db::{DbError, DbUrl};
use crate::pack::exec::{row_values, Applied, CompiledPack, PackEvent};
use crate::pack::params::Params;
use crate::pack::projector::{
    apply_and_advance, baseline_statements, checkpoint_ddl, checkpoint_start, read_checkpoint,
};
use crate::pack::rebuild::restart_from_seed;
use crate::verify::{key_positions, Checked, NamedRows, PackReadModel};

/// How events reach the read models.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Delivery {
    /// The tool's exactly-once projector under the schedule's faults.
    ExactlyOnce,
    /// Every event received applied, no checkpoint, under the schedule's faults.
    AtLeastOnce,
    /// Once each, in log order; projection `name` applied a second time to each event of
    /// its type.
    TwiceFor(String),
}

/// A read model's rows, in key order.
pub type Rows = Vec<Vec<Param>>;

/// How a history's delivery ended up wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// The read models differ from `against` (the truth queries, or the read models a single
    /// in-order delivery gave); the first differing rows.
    Rows { against: String, diffs: Vec<String> },
    /// A projection statement failed on delivery `delivery` (event `event`).
    Failed {
        delivery: usize,
        event: usize,
        message: String,
    },
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Divergence::Rows { against, diffs } => {
                write!(f, "the read models differ from {against}")?;
                for d in diffs {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
            Divergence::Failed {
                delivery,
                event,
                message,
            } => write!(
                f,
                "applying event {event} (delivery {delivery}) failed: {message}"
            ),
        }
    }
}

/// What running a history's commands gave.
pub struct Ran {
    /// The events, in log order.
    pub events: Vec<PackEvent>,
    /// For each event, the op (index into the history's ops) that emitted it.
    pub from_op: Vec<usize>,
    /// Ops refused (a row requirement failed, or a database error rolled back).
    pub refused: Vec<usize>,
}

/// A read model as the check reads it: the select of its rows and of its truth, in key order.
struct Model {
    name: String,
    columns: Vec<String>,
    key: Vec<usize>,
    truth: String,
    read: String,
}

/// The scratch database with the pack seeded, one connection, one open transaction.
pub struct Scratch {
    tx: Transaction<'static, Any>,
    pack: CompiledPack,
    params: Params,
    models: Vec<Model>,
}

/// Why the check could not go on (not a divergence: the database or the pack failed it).
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Sql(#[from] sqlx::Error),
    #[error("seeding the pack in the scratch database failed: {0}")]
    Seed(sqlx::Error),
}

impl Scratch {
    /// Seeds `pack` in a scratch database on `url`'s engine (in-memory SQLite without one,
    /// or for a SQLite URL, whose file is never opened).
    pub async fn open(
        url: Option<&DbUrl>,
        pack: CompiledPack,
        params: Params,
    ) -> Result<Scratch, ScratchError> {
        let (pool, mut tx) = DbScratch::transaction(url).await?;
        pack.seed(&mut tx).await.map_err(ScratchError::Seed)?;
        let mut setup = baseline_statements(&pack);
        setup.push(checkpoint_ddl());
        setup.push(checkpoint_start());
        for statement in setup {
            tx.execute(statement.as_str())
                .await
                .map_err(ScratchError::Seed)?;
        }
        let mut tx = DbScratch::settle(&pool, tx).await?;
        // Where the batch's view does not hang on the events' values (SQLite), made once for
        // every history.
        pack.prepare_projections(&mut tx, &[]).await?;
        let mut models = Vec::new();
        for (name, rm) in &pack.pack.read_models {
            let (columns, truth, read) = pack.read_model_queries(&mut tx, name).await?;
            let key = key_positions(&columns, &rm.key);
            models.push(Model {
                name: name.clone(),
                columns,
                key,
                truth,
                read,
            });
        }
        Ok(Scratch {
            tx,
            pack,
            params,
            models,
        })
    }

    pub fn pack(&self) -> &CompiledPack {
        &self.pack
    }

    /// Ends the check: everything it did is rolled back.
    pub async fn close(self) {
        let _ = self.tx.rollback().await;
    }

    /// Runs `ops` and delivers their events by `steps(what they ran)` under `delivery`; `Ok(None)`:
    /// the read models equal both the truth and a single in-order delivery. Leaves the
    /// database as it found it.
    pub async fn check<F>(
        &mut self,
        ops: &[Op],
        delivery: &Delivery,
        steps: F,
    ) -> Result<(Ran, Vec<Step>, Option<Divergence>), sqlx::Error>
    where
        F: FnOnce(&CompiledPack, &Ran) -> Vec<Step>,
    {
        let Scratch {
            tx,
            pack,
            params,
            models,
            ..
        } = self;
        let history: &mut AnyConnection = tx;
        savepoint(history, "cqrs_bench_history").await?;
        let ran = match run_ops(history, pack, params, ops).await {
            Ok(ran) => ran,
            Err(e) => {
                undo(history, "cqrs_bench_history").await?;
                return Err(e);
            }
        };
        let steps = steps(pack, &ran);
        let truth = read_all(history, models, true).await;
        let outcome = async {
            let truth = truth?;
            let in_order = match delivered(
                history,
                pack,
                models,
                &ran.events,
                &in_order(&ran.events),
                &Delivery::AtLeastOnce,
            )
            .await?
            {
                Ok(rows) => rows,
                Err(d) => return Ok(Some(d)),
            };
            if let Some(d) = differ(models, &in_order, &truth, "the truth queries").await? {
                // Wrong even delivered once, in order: whatever the guarantee.
                return Ok(Some(d));
            }
            let rows = match delivered(history, pack, models, &ran.events, &steps, delivery).await?
            {
                Ok(rows) => rows,
                Err(d) => return Ok(Some(d)),
            };
            if let Some(d) = differ(models, &rows, &in_order, "a single in-order delivery").await? {
                return Ok(Some(d));
            }
            differ(models, &rows, &truth, "the truth queries").await
        }
        .await;
        undo(history, "cqrs_bench_history").await?;
        let outcome: Result<Option<Divergence>, sqlx::Error> = outcome;
        Ok((ran, steps, outcome?))
    }
}

/// Every event once, in log order, in one batch.
fn in_order(events: &[PackEvent]) -> Vec<Step> {
    vec![Step::Batch {
        events: (0..events.len()).collect(),
        crash: false,
    }]
}

/// Runs each op as its own transaction (a savepoint): committed, or rolled back when refused.
async fn run_ops(
    conn: &mut AnyConnection,
    pack: &CompiledPack,
    params: &Params,
    ops: &[Op],
) -> Result<Ran, sqlx::Error> {
    let mut ran = Ran {
        events: Vec::new(),
        from_op: Vec::new(),
        refused: Vec::new(),
    };
    for (k, op) in ops.iter().enumerate() {
        savepoint(conn, "cqrs_bench_command").await?;
        match pack.execute(conn, params, op.index, &op.command).await {
            Ok(Applied::Committed(events)) => {
                release(conn, "cqrs_bench_command").await?;
                ran.from_op.extend(std::iter::repeat_n(k, events.len()));
                ran.events.extend(events);
            }
            Ok(Applied::Refused { .. }) => {
                undo(conn, "cqrs_bench_command").await?;
                ran.refused.push(k);
            }
            // A command the database refuses (a constraint) is rolled back, as a run's is.
            Err(sqlx::Error::Database(_)) => {
                undo(conn, "cqrs_bench_command").await?;
                ran.refused.push(k);
            }
            Err(e) => {
                undo(conn, "cqrs_bench_command").await?;
                return Err(e);
            }
        }
    }
    Ok(ran)
}

/// Every read model's rows (or, with `truth`, its truth query's), in key order.
async fn read_all(
    conn: &mut AnyConnection,
    models: &[Model],
    truth: bool,
) -> Result<Vec<Rows>, sqlx::Error> {
    let mut all = Vec::with_capacity(models.len());
    for m in models {
        let sql = if truth { &m.truth } else { &m.read };
        let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
        all.push(rows.iter().map(row_values).collect::<Result<Rows, _>>()?);
    }
    Ok(all)
}

/// The first read model whose rows differ, through verify's one comparison.
async fn differ(
    models: &[Model],
    actual: &[Rows],
    expected: &[Rows],
    against: &str,
) -> Result<Option<Divergence>, sqlx::Error> {
    let mut diffs = Vec::new();
    for ((m, a), e) in models.iter().zip(actual).zip(expected) {
        let named = NamedRows {
            read_model: Checked::Pack(PackReadModel::new(&m.name)),
            columns: &m.columns,
            key: &m.key,
        };
        let rows = |r: &Rows| futures::stream::iter(r.clone().into_iter().map(Ok));
        let check = named.compare(rows(a), rows(e)).await?;
        diffs.extend(check.first_diffs);
    }
    Ok((!diffs.is_empty()).then(|| Divergence::Rows {
        against: against.to_string(),
        diffs,
    }))
}

/// Delivers `events` by `steps` under `delivery` inside a savepoint, reads the read models,
/// and rolls the savepoint back. `Ok(Err(_))`: a projection statement failed.
async fn delivered(
    conn: &mut AnyConnection,
    pack: &CompiledPack,
    models: &[Model],
    events: &[PackEvent],
    steps: &[Step],
    delivery: &Delivery,
) -> Result<Result<Vec<Rows>, Divergence>, sqlx::Error> {
    // Outside the savepoint, so the deliveries of a history share the view it makes.
    pack.prepare_projections(conn, events).await?;
    savepoint(conn, "cqrs_bench_replay").await?;
    let outcome = match delivery {
        Delivery::ExactlyOnce => exactly_once(conn, pack, events, steps).await,
        Delivery::AtLeastOnce => at_least_once(conn, pack, events, steps, None).await,
        Delivery::TwiceFor(p) => at_least_once(conn, pack, events, steps, Some(p)).await,
    };
    let result = match outcome {
        Ok(()) => read_all(conn, models, false).await.map(Ok),
        Err(Applying::Failed(d)) => Ok(Err(d)),
        Err(Applying::Db(e)) => Err(e),
    };
    undo(conn, "cqrs_bench_replay").await?;
    result
}

enum Applying {
    Failed(Divergence),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Applying {
    fn from(e: sqlx::Error) -> Applying {
        Applying::Db(e)
    }
}

/// A statement error of the pack's SQL (its own fault, part of the finding); anything
/// else stops the check.
fn failed(e: sqlx::Error, delivery: usize, event: usize) -> Applying {
    match e {
        sqlx::Error::Database(d) => Applying::Failed(Divergence::Failed {
            delivery,
            event,
            message: d.message().to_string(),
        }),
        other => Applying::Db(other),
    }
}

/// The tool's exactly-once step under `steps`.
async fn exactly_once(
    conn: &mut AnyConnection,
    pack: &CompiledPack,
    events: &[PackEvent],
    steps: &[Step],
) -> Result<(), Applying> {
    let dialect = Dialect::of(pack.engine());
    // Received past the checkpoint, waiting for the events before them.
    let mut waiting: BTreeSet<usize> = BTreeSet::new();
    let mut delivery = 0;
    for step in steps {
        let (received, crash) = match step {
            Step::Batch { events, crash } => (events.clone(), *crash),
            Step::Rebuild { replayed } => {
                restart_from_seed(conn, dialect, pack).await?;
                waiting.clear();
                (replayed.clone(), false)
            }
        };
        let applied = read_checkpoint(conn, dialect, false).await?.1 as usize;
        // The hand-over: what the checkpoint covers goes through (the step leaves it out);
        // the rest only as a run without gaps from the checkpoint.
        let mut handed: Vec<usize> = received.iter().copied().filter(|&e| e < applied).collect();
        let mut pending = waiting.clone();
        pending.extend(received.iter().copied().filter(|&e| e >= applied));
        let mut next = applied;
        while pending.remove(&next) {
            handed.push(next);
            next += 1;
        }
        // The projector's batch transaction (a savepoint here: the check's histories are
        // rolled back whole).
        savepoint(conn, "cqrs_bench_batch").await?;
        let locked = read_checkpoint(conn, dialect, true).await?;
        let fresh: Vec<usize> = handed
            .iter()
            .copied()
            .filter(|&e| (0, e as i64 + 1) > locked)
            .collect();
        if let Some(&last) = fresh.last() {
            let batch: Vec<PackEvent> = fresh.iter().map(|&e| events[e].clone()).collect();
            if let Err(e) = apply_and_advance(conn, pack, &batch, (0, last as i64 + 1)).await {
                undo(conn, "cqrs_bench_batch").await?;
                return Err(failed(e, delivery, last));
            }
        }
        if crash {
            undo(conn, "cqrs_bench_batch").await?;
        } else {
            release(conn, "cqrs_bench_batch").await?;
            waiting = pending;
        }
        delivery += received.len();
    }
    Ok(())
}

/// Every received event applied as received, each batch committed, no checkpoint; with
/// `twice`, projection `twice` applied again to each event right after it (and no faults
/// beyond that are in `steps`).
async fn at_least_once(
    conn: &mut AnyConnection,
    pack: &CompiledPack,
    events: &[PackEvent],
    steps: &[Step],
    twice: Option<&str>,
) -> Result<(), Applying> {
    let dialect = Dialect::of(pack.engine());
    let twice = twice.and_then(|p| pack.pack.projections.get(p).map(|def| (p, def)));
    let mut delivery = 0;
    for step in steps {
        let received = match step {
            Step::Batch { events, .. } => events,
            Step::Rebuild { replayed } => {
                restart_from_seed(conn, dialect, pack).await?;
                replayed
            }
        };
        // Each event's statements commit as they run (a crashed batch's effects stay:
        // nothing ties them to an acknowledgement); a failing one stops the delivery.
        for &e in received {
            let event = &events[e];
            if let Err(err) = pack.project(conn, std::slice::from_ref(event)).await {
                return Err(failed(err, delivery, e));
            }
            if let Some((name, _)) = twice.filter(|(_, def)| def.event == event.event) {
                if let Err(err) = pack.project_one(conn, name, event).await {
                    return Err(failed(err, delivery, e));
                }
            }
            delivery += 1;
        }
    }
    Ok(())
}

/// Opens savepoint `name`. Savepoints are the check's own, not sqlx's nested transactions:
/// sqlx rolls one back with `ROLLBACK TO` alone, which leaves it on the engine's stack, and a
/// stack thousands of histories deep makes every later statement slower.
async fn savepoint(conn: &mut AnyConnection, name: &str) -> Result<(), sqlx::Error> {
    conn.execute(format!("SAVEPOINT {name}").as_str()).await?;
    Ok(())
}

/// Keeps what was done since savepoint `name` and closes it.
async fn release(conn: &mut AnyConnection, name: &str) -> Result<(), sqlx::Error> {
    conn.execute(format!("RELEASE SAVEPOINT {name}").as_str())
        .await?;
    Ok(())
}

/// Undoes everything since savepoint `name` and closes it.
async fn undo(conn: &mut AnyConnection, name: &str) -> Result<(), sqlx::Error> {
    conn.execute(format!("ROLLBACK TO SAVEPOINT {name}").as_str())
        .await?;
    release(conn, name).await
}

/// An event as a reader sees it: `MoneyTransferred {amount: 42, from: 3, …}`.
pub fn event_text(e: &PackEvent) -> String {
    let fields: Vec<String> = e
        .fields
        .iter()
        .map(|(k, v)| match v {
            Param::Int(n) => format!("{k}: {n}"),
            Param::Text(t) => format!("{k}: {t:?}"),
            Param::Null => format!("{k}: NULL"),
        })
        .collect();
    format!("{} {{{}}}", e.event, fields.join(", "))
}

/// The stream of each event: the value of its type's `stream_key` field, if the pack
/// declares one.
pub fn streams(pack: &CompiledPack, events: &[PackEvent]) -> Vec<Option<Param>> {
    let keys: &BTreeMap<String, String> = &pack.pack.stream_keys;
    events
        .iter()
        .map(|e| keys.get(&e.event).and_then(|f| e.fields.get(f).cloned()))
        .collect()
}
