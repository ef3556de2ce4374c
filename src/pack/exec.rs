//! Running a pack on a database: its statements compiled once for the engine, the write
//! model and dataset seeded with the read models filled from their truth queries, a command's
//! statements run in the caller's transaction (values carried from one statement to the
//! next, row requirements turned into refusals, events built), the projections applied, the
//! queries answered, and each read model's truth and contents as two row streams in key order
//! for verify to compare. These are the parts the pack backends are made of; the transaction
//! and the connection are the caller's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use futures::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Column as _, Either, Executor as _, Row as _, Statement as _};

use super::params::Params;
use super::sql::{Compiled, NamedSql};
use super::Pack;
use crate::db::dialect::Dialect;
use crate::db::row_fold::{FoldBatch, RowFold};
use crate::db::row_triggers::{self, Batch, RowTriggers};
use crate::db::sql::{bind_all, Param};
use crate::db::Engine;

/// An event a command emitted: its type and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEvent {
    pub event: String,
    pub fields: BTreeMap<String, Param>,
}

/// What a command's statements did. A refusal leaves the transaction for the caller to roll
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Committed(Vec<PackEvent>),
    /// Statement `statement` touched or returned `rows` rows, not what it requires.
    Refused {
        statement: usize,
        rows: u64,
    },
}

/// Which side a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Write,
    Read,
}

/// A pack with every statement in one engine's placeholder style.
pub struct CompiledPack {
    pub pack: Pack,
    engine: Engine,
    /// The dataset's sizes: the pack's defaults with the run's values in their place.
    sizes: BTreeMap<String, i64>,
    commands: BTreeMap<String, Vec<Compiled>>,
    /// Event type -> the statements of every projection of it, in projection-name order (on
    /// an engine that runs scripts with binds, one script of them all).
    projections: BTreeMap<String, Vec<Compiled>>,
    /// Projection name -> its own statements (`check-projections` applies one projection
    /// alone to learn whether it is idempotent on its own).
    by_projection: BTreeMap<String, Vec<Compiled>>,
    queries: BTreeMap<String, (Compiled, Compiled)>,
    /// Every event type's projection statements behind a temporary view: a batch of events
    /// applied in one call (`db::row_triggers`), where the engine takes the statements inside
    /// a trigger (`row_triggers_taken`: unset until the first batch asks the engine; when
    /// refused, `projections` are used instead, as for a single event).
    row_triggers: Option<RowTriggers>,
    row_triggers_taken: OnceLock<bool>,
    /// On PostgreSQL, the read model tables whose statements fold into a few set-wise
    /// statements a batch (`db::row_fold`), the rest through row triggers of their own
    /// (`row_fold_taken`: unset until the first folded batch has run inside a savepoint; when
    /// the engine refused it, batches go through `row_triggers` alone).
    row_fold: Option<RowFold>,
    row_fold_taken: OnceLock<bool>,
    /// Where the dataset is copied from instead of generated (the pack's `[copy]`).
    copy_from: Option<super::copy::CopySource>,
}

/// A name the pack does not hold, or SQL for an engine it has none for: the caller's mistake,
/// carried as the database errors are.
fn not_in_pack(message: String) -> sqlx::Error {
    sqlx::Error::Protocol(message)
}

/// Column `i` of `row` as a value the pack carries: an integer, text or NULL.
fn value(row: &AnyRow, i: usize) -> Result<Param, sqlx::Error> {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return Ok(v.map_or(Param::Null, Param::Int));
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return Ok(v.map_or(Param::Null, Param::Text));
    }
    let name = row.columns().get(i).map(|c| c.name().to_string());
    Err(sqlx::Error::Decode(
        format!(
            "column {} is neither an integer nor text: cast it (e.g. CAST(x AS BIGINT))",
            name.unwrap_or_else(|| i.to_string())
        )
        .into(),
    ))
}

/// Runs `statements` with `event`'s fields bound by name (a field the event lacks: NULL).
async fn run_projection(
    tx: &mut AnyConnection,
    statements: &[Compiled],
    event: &PackEvent,
) -> Result<(), sqlx::Error> {
    for c in statements {
        let args: Vec<Param> = c
            .binds
            .iter()
            .map(|n| event.fields.get(n).cloned().unwrap_or(Param::Null))
            .collect();
        bind_all(sqlx::query(&c.sql), &args)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// A row as the values a pack carries.
pub fn row_values(row: &AnyRow) -> Result<Vec<Param>, sqlx::Error> {
    (0..row.len()).map(|i| value(row, i)).collect()
}

impl CompiledPack {
    /// `pack` compiled for `engine`, its dataset at `sizes` (a size not given keeps its
    /// default).
    pub fn new(pack: Pack, engine: Engine, sizes: &BTreeMap<String, i64>) -> CompiledPack {
        let dialect = Dialect::of(engine);
        let mut all_sizes = pack.sizes.clone();
        all_sizes.extend(sizes.iter().map(|(k, v)| (k.clone(), *v)));
        let commands = pack
            .commands
            .iter()
            .map(|(name, c)| {
                let statements = c.statements.iter().map(|s| s.sql.compile(dialect));
                (name.clone(), statements.collect())
            })
            .collect();
        let by_projection = pack
            .projections
            .iter()
            .map(|(name, p)| {
                let statements = p.statements.iter().map(|s| s.compile(dialect));
                (name.clone(), statements.collect())
            })
            .collect();
        let mut by_event: BTreeMap<String, Vec<NamedSql>> = BTreeMap::new();
        for p in pack.projections.values() {
            by_event
                .entry(p.event.clone())
                .or_default()
                .extend(p.statements.iter().cloned());
        }
        let row_triggers = {
            let mut columns = BTreeSet::new();
            let programs: Vec<(String, Vec<String>)> = by_event
                .iter()
                .map(|(event, statements)| {
                    let body = statements
                        .iter()
                        .map(|s| {
                            columns.extend(s.names().into_iter().map(String::from));
                            s.with_params_as(row_triggers::column_ref)
                        })
                        .collect();
                    (event.clone(), body)
                })
                .collect();
            let columns: Vec<String> = columns.into_iter().collect();
            let read_models = pack
                .read_models
                .iter()
                .map(|(name, r)| (name.clone(), r.ddl.clone()))
                .collect();
            (
                RowTriggers::new(engine, columns.clone(), &programs),
                RowFold::new(engine, columns, &programs, &read_models),
            )
        };
        let (row_triggers, row_fold) = row_triggers;
        // Where the engine can, an event's statements are one script: one call per event
        // instead of one per statement (on SQLite each call is a hop to the connection's
        // thread, which cost more than the statements of a small projection).
        let projections = by_event
            .into_iter()
            .map(|(event, statements)| {
                let script = (statements.len() > 1)
                    .then(|| NamedSql::script(&statements, dialect))
                    .flatten();
                let compiled = match script {
                    Some(script) => vec![script],
                    None => statements.iter().map(|s| s.compile(dialect)).collect(),
                };
                (event, compiled)
            })
            .collect();
        let queries = pack
            .queries
            .iter()
            .map(|(name, q)| {
                let sides = (q.write_sql.compile(dialect), q.read_sql.compile(dialect));
                (name.clone(), sides)
            })
            .collect();
        CompiledPack {
            pack,
            engine,
            sizes: all_sizes,
            commands,
            projections,
            by_projection,
            queries,
            row_triggers,
            row_triggers_taken: OnceLock::new(),
            row_fold,
            row_fold_taken: OnceLock::new(),
            copy_from: None,
        }
    }

    /// The pack with its dataset copied from `source` (by its `[copy]`) instead of generated;
    /// `sizes` should hold what [`super::copy::measure_sizes`] measured there.
    pub fn copying_from(mut self, source: super::copy::CopySource) -> CompiledPack {
        self.copy_from = Some(source);
        self
    }

    /// The dataset's sizes the pack runs at.
    pub fn sizes(&self) -> &BTreeMap<String, i64> {
        &self.sizes
    }

    /// A size's value, for binding.
    fn size(&self, name: &str) -> Option<Param> {
        self.sizes.get(name).map(|s| Param::Int(*s))
    }

    /// Creates the write model and the read models on `conn` (an empty database), loads the
    /// dataset at the sizes and fills each read model from its truth query.
    pub async fn seed(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        self.seed_write_model(conn).await?;
        self.seed_read_models(conn).await
    }

    /// The engine the pack is compiled for.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Creates the write model on `conn` (an empty database) and loads the dataset at the
    /// sizes (the first half of [`CompiledPack::seed`]).
    pub async fn seed_write_model(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let dialect = Dialect::of(self.engine);
        let schema = self.pack.schema(self.engine).ok_or_else(|| {
            not_in_pack(format!(
                "pack {} has no write-model DDL for {}",
                self.pack.name,
                self.engine.display_name()
            ))
        })?;
        sqlx::raw_sql(&schema.text).execute(&mut *conn).await?;
        if let (Some(def), Some(source)) = (&self.pack.copy, &self.copy_from) {
            super::copy::copy_into(def, source, conn, self.engine, &self.sizes)
                .await
                .map_err(|e| not_in_pack(e.to_string()))?;
            return Ok(());
        }
        if let Some(dataset) = self.pack.dataset(self.engine) {
            for statement in &dataset.statements {
                let c = statement.compile(dialect);
                let args: Vec<Param> = c
                    .binds
                    .iter()
                    .map(|n| self.size(n).unwrap_or(Param::Null))
                    .collect();
                bind_all(sqlx::query(&c.sql), &args)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// Creates the read models on `conn` and fills each from its truth query over the write
    /// model (the second half of [`CompiledPack::seed`]).
    pub async fn seed_read_models(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let dialect = Dialect::of(self.engine);
        for (name, rm) in &self.pack.read_models {
            sqlx::raw_sql(&rm.ddl).execute(&mut *conn).await?;
            let truth = rm.truth.compile(dialect).sql;
            let columns = self.truth_columns(conn, &truth).await?.join(", ");
            let fill =
                format!("INSERT INTO {name} ({columns}) SELECT {columns} FROM ({truth}) AS t");
            conn.execute(fill.as_str()).await?;
        }
        Ok(())
    }

    /// Makes each read model a materialized view of its truth query over the write model,
    /// named as the read model, with a unique index on its key (which
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY` needs), on `conn` (`matview`). The read
    /// models' own DDL is not used. Returns the views' names; an engine without materialized
    /// views (SQLite) is an error.
    pub async fn seed_views(&self, conn: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
        let dialect = Dialect::of(self.engine);
        let mut names = Vec::new();
        for (name, rm) in &self.pack.read_models {
            let truth = rm.truth.compile(dialect).sql;
            let columns = self.truth_columns(conn, &truth).await?.join(", ");
            let select = format!("SELECT {columns} FROM ({truth}) AS t");
            let create = dialect
                .materialized_view(name, &columns, &select)
                .ok_or_else(|| {
                    not_in_pack(format!(
                        "{} has no materialized views for read model {name}",
                        self.engine.display_name()
                    ))
                })?;
            conn.execute(create.as_str()).await?;
            let key = rm.key.join(", ");
            conn.execute(format!("CREATE UNIQUE INDEX {name}_key ON {name} ({key})").as_str())
                .await?;
            names.push(name.clone());
        }
        Ok(names)
    }

    async fn truth_columns(
        &self,
        conn: &mut AnyConnection,
        truth: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let statement = (&mut *conn).prepare(truth).await?;
        Ok(statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect())
    }

    /// Runs command `name` of op `index` in the caller's transaction on `tx`: each statement
    /// with its values (the op's parameters, the sizes, values returned by the
    /// statements before it), stopping at the first whose row requirement fails.
    pub async fn execute(
        &self,
        tx: &mut AnyConnection,
        params: &Params,
        index: u64,
        name: &str,
    ) -> Result<Applied, sqlx::Error> {
        let (Some(def), Some(compiled)) = (self.pack.commands.get(name), self.commands.get(name))
        else {
            return Err(not_in_pack(format!(
                "pack {} has no command {name}",
                self.pack.name
            )));
        };
        let mut known: BTreeMap<String, Param> = BTreeMap::new();
        let lookup = |known: &mut BTreeMap<String, Param>, n: &str| -> Param {
            if let Some(v) = known.get(n) {
                return v.clone();
            }
            let v = params
                .draw(index, n)
                .or_else(|| self.size(n))
                .unwrap_or(Param::Null);
            known.insert(n.to_string(), v.clone());
            v
        };
        for (k, (statement, c)) in def.statements.iter().zip(compiled).enumerate() {
            let args: Vec<Param> = c
                .binds
                .iter()
                .map(|n| lookup(&mut known, n.as_str()))
                .collect();
            let mut stream = (&mut *tx).fetch_many(bind_all(sqlx::query(&c.sql), &args));
            let (mut returned, mut affected, mut first) = (0u64, 0u64, None);
            while let Some(item) = stream.try_next().await? {
                match item {
                    Either::Left(done) => affected += done.rows_affected(),
                    Either::Right(row) => {
                        returned += 1;
                        if first.is_none() {
                            first = Some(row);
                        }
                    }
                }
            }
            drop(stream);
            // A SELECT's rows are the ones it returns; an UPDATE's the ones it touched.
            let rows = returned.max(affected);
            if let Some(required) = statement.require_rows {
                if !required.holds(rows) {
                    return Ok(Applied::Refused { statement: k, rows });
                }
            }
            if !statement.returns.is_empty() {
                let row = first.ok_or(sqlx::Error::RowNotFound)?;
                for (j, n) in statement.returns.iter().enumerate() {
                    known.insert(n.clone(), value(&row, j)?);
                }
            }
        }
        let events = def
            .emit
            .iter()
            .map(|e| PackEvent {
                event: e.event.clone(),
                fields: e
                    .fields
                    .iter()
                    .map(|(field, v)| (field.clone(), lookup(&mut known, v.as_str())))
                    .collect(),
            })
            .collect();
        Ok(Applied::Committed(events))
    }

    /// Applies `events` to the read models on `tx` (the caller's transaction).
    pub async fn project(
        &self,
        tx: &mut AnyConnection,
        events: &[PackEvent],
    ) -> Result<(), sqlx::Error> {
        // One event is one call either way, and its own script is the cheaper one.
        if events.len() > 1 {
            if let Some(batch) = self.row_trigger_batch(events) {
                if self.triggers_taken(tx, &batch).await? {
                    if let Some(fold) = self.fold_batch(events) {
                        if self.folded(tx, &fold).await? {
                            return Ok(());
                        }
                    }
                    return batch.apply(tx).await;
                }
            }
        }
        for e in events {
            if let Some(statements) = self.projections.get(&e.event) {
                run_projection(tx, statements, e).await?;
            }
        }
        Ok(())
    }

    /// `events` folded (`db::row_fold`), where the pack's statements fold and the engine has
    /// not refused the fold.
    fn fold_batch(&self, events: &[PackEvent]) -> Option<FoldBatch> {
        if self.row_fold_taken.get() == Some(&false) {
            return None;
        }
        let rows = events.iter().map(|e| (e.event.as_str(), &e.fields));
        self.row_fold.as_ref()?.batch(rows)
    }

    /// Applies `fold` on `tx`; `false` when it did not, and the caller applies the batch row
    /// by row instead. The first folded batch runs inside a savepoint: a statement PostgreSQL
    /// refuses to plan (SQLSTATE class 42: a literal whose type resolves otherwise in the
    /// fold's `UNION` than in one event's statement) rolls it back and keeps every later batch
    /// on the row triggers; any other error (a value's) rolls it back and leaves the answer
    /// for the next batch, this one going row by row (where the same error, if it is the
    /// events', comes again).
    async fn folded(&self, tx: &mut AnyConnection, fold: &FoldBatch) -> Result<bool, sqlx::Error> {
        if self.row_fold_taken.get().is_some() {
            fold.apply(tx).await?;
            return Ok(true);
        }
        tx.execute("SAVEPOINT cqrs_bench_row_fold").await?;
        let taken = match fold.apply(tx).await {
            Ok(()) => {
                self.row_fold_taken.get_or_init(|| true);
                true
            }
            Err(sqlx::Error::Database(e)) => {
                tx.execute("ROLLBACK TO SAVEPOINT cqrs_bench_row_fold")
                    .await?;
                if e.code().is_some_and(|c| c.starts_with("42")) {
                    self.row_fold_taken.get_or_init(|| false);
                }
                false
            }
            Err(e) => return Err(e),
        };
        tx.execute("RELEASE SAVEPOINT cqrs_bench_row_fold").await?;
        Ok(taken)
    }

    /// Whether batches fold (`db::row_fold`): `None` until the first batch that folds has run,
    /// then the engine's answer; `Some(false)` at once where nothing of the pack folds.
    pub fn batches_fold(&self) -> Option<bool> {
        if self.row_fold.is_none() {
            return Some(false);
        }
        self.row_fold_taken.get().copied()
    }

    /// Whether batches of this pack's events go in one call through the row triggers:
    /// `None` until the first batch of more than one event has asked the engine, then its
    /// answer; `Some(false)` at once for statements no trigger is made of.
    pub fn batches_in_one_call(&self) -> Option<bool> {
        if self.row_triggers.is_none() {
            return Some(false);
        }
        self.row_triggers_taken.get().copied()
    }

    /// `events` as one batch through the row triggers, where the engine has them, has not
    /// refused the pack's statements in them, and the batch can go through them.
    fn row_trigger_batch(&self, events: &[PackEvent]) -> Option<Batch> {
        let triggers = self.row_triggers.as_ref()?;
        if self.row_triggers_taken.get() == Some(&false) {
            return None;
        }
        triggers.batch(events.iter().map(|e| (e.event.as_str(), &e.fields)))
    }

    /// Whether the engine takes the pack's statements in a trigger: learnt once, on the first
    /// batch, by making its view on `tx` inside a savepoint (a refusal leaves the caller's
    /// transaction as it was).
    async fn triggers_taken(
        &self,
        tx: &mut AnyConnection,
        batch: &Batch,
    ) -> Result<bool, sqlx::Error> {
        if let Some(&taken) = self.row_triggers_taken.get() {
            return Ok(taken);
        }
        tx.execute("SAVEPOINT cqrs_bench_row_triggers").await?;
        let taken = match batch.make(tx).await {
            Ok(()) => true,
            // The engine's refusal of the statements; anything else is the connection's.
            Err(sqlx::Error::Database(_)) => {
                tx.execute("ROLLBACK TO SAVEPOINT cqrs_bench_row_triggers")
                    .await?;
                false
            }
            Err(e) => return Err(e),
        };
        tx.execute("RELEASE SAVEPOINT cqrs_bench_row_triggers")
            .await?;
        // Two connections asking at once get the same answer: the first one stays.
        Ok(*self.row_triggers_taken.get_or_init(|| taken))
    }

    /// Makes on `conn` the view `project` applies batches like `events` through, where it
    /// does, so that it stays: `check-projections` does this before the savepoints it rolls
    /// back after each delivery, which would otherwise take the view with them.
    pub async fn prepare_projections(
        &self,
        conn: &mut AnyConnection,
        events: &[PackEvent],
    ) -> Result<(), sqlx::Error> {
        if let Some(batch) = self.row_trigger_batch(events) {
            if self.triggers_taken(conn, &batch).await? {
                batch.make(conn).await?;
                if let Some(fold) = &self.row_fold {
                    fold.make(conn, events.iter().map(|e| (e.event.as_str(), &e.fields)))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Applies projection `name`'s statements alone to `event` on `tx` (whatever its type).
    pub async fn project_one(
        &self,
        tx: &mut AnyConnection,
        name: &str,
        event: &PackEvent,
    ) -> Result<(), sqlx::Error> {
        let Some(statements) = self.by_projection.get(name) else {
            return Err(not_in_pack(format!(
                "pack {} has no projection {name}",
                self.pack.name
            )));
        };
        run_projection(tx, statements, event).await
    }

    /// Answers query `name` of op `index` from one side.
    pub async fn query(
        &self,
        conn: &mut AnyConnection,
        params: &Params,
        index: u64,
        name: &str,
        side: Side,
    ) -> Result<Vec<Vec<Param>>, sqlx::Error> {
        let Some((write, read)) = self.queries.get(name) else {
            return Err(not_in_pack(format!(
                "pack {} has no query {name}",
                self.pack.name
            )));
        };
        let c = match side {
            Side::Write => write,
            Side::Read => read,
        };
        let args: Vec<Param> = c
            .binds
            .iter()
            .map(|n| {
                params
                    .draw(index, n)
                    .or_else(|| self.size(n))
                    .unwrap_or(Param::Null)
            })
            .collect();
        let rows = bind_all(sqlx::query(&c.sql), &args)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(row_values).collect()
    }

    /// What verify walks for read model `name`: its truth's columns, the truth query and a
    /// select of the read model, each yielding those columns in key order, so the two row
    /// streams can be compared side by side (`row_values` reads a row).
    pub async fn read_model_queries(
        &self,
        conn: &mut AnyConnection,
        name: &str,
    ) -> Result<(Vec<String>, String, String), sqlx::Error> {
        let Some(rm) = self.pack.read_models.get(name) else {
            return Err(not_in_pack(format!(
                "pack {} has no read model {name}",
                self.pack.name
            )));
        };
        let truth = rm.truth.compile(Dialect::of(self.engine)).sql;
        let columns = self.truth_columns(conn, &truth).await?;
        let list = columns.join(", ");
        let key = rm.key.join(", ");
        Ok((
            columns,
            format!("SELECT {list} FROM ({truth}) AS t ORDER BY {key}"),
            format!("SELECT {list} FROM {name} ORDER BY {key}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;

    fn ledger() -> Pack {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/ledger");
        Pack::load(&dir).unwrap()
    }

    fn int(p: &Param) -> i64 {
        match p {
            Param::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// A seeded ledger in a temporary SQLite file after `ops` transfers run as cqrs-sync
    /// runs them (the projection in the command's transaction).
    struct Ledger {
        _dir: tempfile::TempDir,
        url: String,
        conn: AnyConnection,
        committed: u64,
        refused: u64,
    }

    /// The ledger with `accounts` accounts of `opening` cents each.
    fn compiled(pack: Pack, accounts: i64, opening: i64) -> CompiledPack {
        let sizes = BTreeMap::from([
            ("accounts".to_string(), accounts),
            ("opening_balance".to_string(), opening),
        ]);
        CompiledPack::new(pack, Engine::Sqlite, &sizes)
    }

    async fn run_ledger(cp: &CompiledPack, ops: u64) -> Ledger {
        run_ledger_projecting(cp, ops, false).await
    }

    /// As [`run_ledger`]; with `batch`, the events are projected after the last op, as one
    /// batch in a transaction of their own (as the async projector applies them).
    async fn run_ledger_projecting(cp: &CompiledPack, ops: u64, batch: bool) -> Ledger {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ledger.db").display()
        );
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        cp.seed(&mut conn).await.unwrap();
        let params = Params::new(11, &cp.pack.parameters, cp.sizes()).unwrap();
        let (mut committed, mut refused) = (0, 0);
        let mut later = Vec::new();
        for i in 0..ops {
            let mut tx = conn.begin().await.unwrap();
            match cp.execute(&mut tx, &params, i, "transfer").await.unwrap() {
                Applied::Committed(events) => {
                    assert_eq!(events.len(), 1);
                    assert_eq!(events[0].event, "MoneyTransferred");
                    if batch {
                        later.extend(events);
                    } else {
                        cp.project(&mut tx, &events).await.unwrap();
                    }
                    tx.commit().await.unwrap();
                    committed += 1;
                }
                Applied::Refused { statement, rows } => {
                    // Only the overdraft guard can refuse: every account exists.
                    assert_eq!((statement, rows), (0, 0));
                    tx.rollback().await.unwrap();
                    refused += 1;
                }
            }
        }
        if batch {
            let mut tx = conn.begin().await.unwrap();
            cp.project(&mut tx, &later).await.unwrap();
            tx.commit().await.unwrap();
        }
        Ledger {
            _dir: dir,
            url,
            conn,
            committed,
            refused,
        }
    }

    async fn scalar(conn: &mut AnyConnection, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
    }

    async fn fetch_rows(url: &str, sql: &str) -> Vec<Vec<Param>> {
        let mut conn = AnyConnection::connect(url).await.unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
        rows.iter().map(|r| row_values(r).unwrap()).collect()
    }

    /// The truth's columns, and its rows and the read model's, in key order.
    async fn both_sides(
        cp: &CompiledPack,
        l: &mut Ledger,
    ) -> (Vec<String>, Vec<Vec<Param>>, Vec<Vec<Param>>) {
        let (columns, truth, read) = cp
            .read_model_queries(&mut l.conn, "account_balance")
            .await
            .unwrap();
        let truth = fetch_rows(&l.url, &truth).await;
        let read = fetch_rows(&l.url, &read).await;
        (columns, truth, read)
    }

    #[tokio::test]
    async fn ledger_transfers_conserve_money_and_the_read_model_matches_its_truth() {
        // 10 accounts of 6,000 cents, amounts of 100..=5000: an account runs dry after a
        // few transfers out, so some are refused.
        let cp = compiled(ledger(), 10, 6_000);
        let mut l = run_ledger(&cp, 400).await;
        assert!(
            l.committed > 0 && l.refused > 0,
            "{} {}",
            l.committed,
            l.refused
        );
        assert_eq!(l.committed + l.refused, 400);
        let total = scalar(&mut l.conn, "SELECT sum(balance) FROM accounts").await;
        assert_eq!(total, 10 * 6_000, "transfers move money, never make it");
        let transfers = scalar(&mut l.conn, "SELECT count(*) FROM transfers").await;
        assert_eq!(
            transfers as u64, l.committed,
            "refused transfers left nothing"
        );
        let sent = scalar(&mut l.conn, "SELECT sum(sent) FROM account_balance").await;
        assert_eq!(sent as u64, l.committed);
        let (_, truth, read) = both_sides(&cp, &mut l).await;
        assert_eq!(truth.len(), 10);
        assert_eq!(truth, read);
        // Both sides of each query give the same answer.
        let params = Params::new(11, &cp.pack.parameters, cp.sizes()).unwrap();
        for i in 0..20 {
            for q in ["balance", "activity"] {
                let w = cp
                    .query(&mut l.conn, &params, i, q, Side::Write)
                    .await
                    .unwrap();
                let r = cp
                    .query(&mut l.conn, &params, i, q, Side::Read)
                    .await
                    .unwrap();
                assert_eq!(w, r, "{q} {i}");
                assert_eq!(w.len(), 1);
            }
        }
    }

    /// SQLite takes the ledger's projection statements in a trigger, so a batch is one call;
    /// a statement it refuses there (a qualified table name) sends the pack back to a call per
    /// event, with the same read model.
    #[tokio::test]
    async fn a_projection_a_trigger_cannot_hold_is_applied_event_by_event() {
        let plain = compiled(ledger(), 10, 6_000);
        let mut by_trigger = run_ledger_projecting(&plain, 200, true).await;
        assert_eq!(plain.batches_in_one_call(), Some(true));
        let mut pack = ledger();
        let balances = pack.projections.get_mut("balances").unwrap();
        balances.statements[0] = super::super::sql::NamedSql::parse(
            "UPDATE main.account_balance SET balance = balance - :amount, sent = sent + 1 \
             WHERE account_id = :from",
        )
        .unwrap();
        let with = compiled(pack, 10, 6_000);
        let mut by_event = run_ledger_projecting(&with, 200, true).await;
        assert_eq!(with.batches_in_one_call(), Some(false));
        let (_, truth, read) = both_sides(&with, &mut by_event).await;
        assert_eq!(truth, read);
        // The same op stream: the same transfers refused, the same balances.
        assert_eq!(by_event.refused, by_trigger.refused);
        let (_, truth, by_trigger_read) = both_sides(&plain, &mut by_trigger).await;
        assert_eq!(truth, by_trigger_read);
        assert_eq!(read, by_trigger_read);
        // A single event (a cqrs-sync command's) keeps its own script: nothing is tried.
        let single = compiled(ledger(), 10, 6_000);
        run_ledger(&single, 20).await;
        assert_eq!(single.batches_in_one_call(), None);
    }

    #[tokio::test]
    async fn a_projection_that_counts_twice_is_caught_at_its_first_row() {
        let mut pack = ledger();
        let balances = pack.projections.get_mut("balances").unwrap();
        balances.statements[1] = super::super::sql::NamedSql::parse(
            "UPDATE account_balance SET balance = balance + :amount, received = received + 2 \
             WHERE account_id = :to",
        )
        .unwrap();
        // Money enough that nothing is refused.
        let cp = compiled(pack, 10, 1_000_000);
        let mut l = run_ledger(&cp, 50).await;
        assert_eq!(l.committed, 50);
        let (columns, truth, read) = both_sides(&cp, &mut l).await;
        assert_eq!(columns, ["account_id", "balance", "sent", "received"]);
        let differ = |i: &usize| truth[*i] != read[*i];
        let first_diff = (0..truth.len())
            .find(differ)
            .expect("the doubled count was not caught");
        // Accounts are 1..=10, so key order puts the first account that received a
        // transfer at position (its id - 1).
        let first = scalar(&mut l.conn, "SELECT min(to_id) FROM transfers").await;
        assert_eq!(first_diff as i64, first - 1);
        let (truth, read) = (&truth[first_diff], &read[first_diff]);
        assert_eq!(int(&truth[0]), first);
        assert_eq!(truth[..3], read[..3], "only the count differs");
        assert_eq!(int(&read[3]), 2 * int(&truth[3]));
    }
}
