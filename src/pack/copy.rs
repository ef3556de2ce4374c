//! A pack's dataset copied from a team's own database (the pack's `[copy]`, a scenario's
//! `[dataset] copy_from`) instead of generated: the write model's tables filled, in the
//! pack's order, from SELECTs on the source. The source is only read
//! ([`crate::db::read_only`]), and each copy reads it in one snapshot.
//!
//! The sizes the pack's parameters draw from (`[copy] sizes`) are measured on the source
//! before the run builds its op stream ([`measure_sizes`]), and again inside each seed's
//! snapshot ([`copy_into`]): a source that changed between the two (someone writing to it)
//! would give backends different datasets, so the seed is refused instead.

use std::collections::BTreeMap;

use futures::TryStreamExt as _;
use sqlx::{AnyConnection, Column as _, Connection as _, Executor as _, Row as _, TypeInfo as _};

use super::CopyDef;
use crate::db::dialect::Dialect;
use crate::db::{read_only, DbError, DbUrl, Engine};

/// Where a pack's dataset is copied from.
#[derive(Debug, Clone, PartialEq)]
pub struct CopySource {
    pub url: DbUrl,
    /// The PostgreSQL schema the source's tables are in (first on the search path).
    pub schema: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("copy_from {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: DbError,
    },
    #[error("copy_from {url}: {what}: {source}")]
    Source {
        url: String,
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("copy_from {url}: {what}: {why}")]
    Value {
        url: String,
        what: String,
        why: String,
    },
    #[error(
        "copy_from {url}: the source changed while the run copied it: size {size} was {before} \
         when the run began and is {now} now; copy from a database nothing writes to (a \
         snapshot or a standby that is paused)"
    )]
    Changed {
        url: String,
        size: String,
        before: i64,
        now: i64,
    },
    #[error("copying into {table}: {source}")]
    Target {
        table: String,
        #[source]
        source: sqlx::Error,
    },
}

/// Rows per INSERT: small enough to bound memory, large enough to amortize the round trip.
const ROWS_PER_INSERT: usize = 500;

/// One copied value: the pack carries integers and text, typed even when NULL (PostgreSQL
/// refuses a text NULL in an integer column).
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
}

impl CopySource {
    async fn open(&self) -> Result<AnyConnection, CopyError> {
        let mut conn = read_only::connect(&self.url, self.schema.as_deref())
            .await
            .map_err(|source| CopyError::Open {
                url: self.url.redacted(),
                source,
            })?;
        conn.execute(read_only::snapshot_begin(self.url.engine()))
            .await
            .map_err(|source| self.source_err("beginning a snapshot", source))?;
        Ok(conn)
    }

    fn source_err(&self, what: impl Into<String>, source: sqlx::Error) -> CopyError {
        CopyError::Source {
            url: self.url.redacted(),
            what: what.into(),
            source,
        }
    }

    /// Every size `[copy] sizes` names, measured in the snapshot `conn` reads in.
    async fn sizes_in(
        &self,
        conn: &mut AnyConnection,
        def: &CopyDef,
    ) -> Result<BTreeMap<String, i64>, CopyError> {
        let mut sizes = BTreeMap::new();
        for (size, sql) in &def.sizes {
            let what = format!("copy.sizes.{size}");
            let row = sqlx::query(sql)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| self.source_err(what.clone(), e))?;
            let n = row
                .try_get::<Option<i64>, _>(0)
                .map_err(|e| self.source_err(what.clone(), e))?
                .unwrap_or(0);
            if !(0..=super::MAX_SIZE).contains(&n) {
                return Err(CopyError::Value {
                    url: self.url.redacted(),
                    what,
                    why: format!("{n} is outside 0..={}", super::MAX_SIZE),
                });
            }
            sizes.insert(size.clone(), n);
        }
        Ok(sizes)
    }
}

/// The sizes `[copy] sizes` measures on the source, read in one snapshot.
pub async fn measure_sizes(
    def: &CopyDef,
    source: &CopySource,
) -> Result<BTreeMap<String, i64>, CopyError> {
    let mut conn = source.open().await?;
    let sizes = source.sizes_in(&mut conn, def).await;
    let _ = conn.close().await;
    sizes
}

/// Fills the write model's tables on `target` (in the caller's transaction, on `engine`)
/// from the source, in one snapshot of it; `expected`: the sizes the run's op stream was
/// built with, which the snapshot must still give. Returns the rows copied.
pub async fn copy_into(
    def: &CopyDef,
    source: &CopySource,
    target: &mut AnyConnection,
    engine: Engine,
    expected: &BTreeMap<String, i64>,
) -> Result<u64, CopyError> {
    let mut conn = source.open().await?;
    let copied = copy_tables(def, source, &mut conn, target, engine, expected).await;
    // The source's transaction only read: ending it changes nothing there.
    let _ = conn.close().await;
    copied
}

async fn copy_tables(
    def: &CopyDef,
    source: &CopySource,
    conn: &mut AnyConnection,
    target: &mut AnyConnection,
    engine: Engine,
    expected: &BTreeMap<String, i64>,
) -> Result<u64, CopyError> {
    for (size, now) in source.sizes_in(conn, def).await? {
        let before = expected.get(&size).copied().unwrap_or(now);
        if before != now {
            return Err(CopyError::Changed {
                url: source.url.redacted(),
                size,
                before,
                now,
            });
        }
    }
    let mut rows = 0;
    for (table, select) in &def.tables {
        let target_err = |source| CopyError::Target {
            table: table.clone(),
            source,
        };
        let select = match select {
            Some(sql) => sql.clone(),
            None => {
                let all = format!("SELECT * FROM {table}");
                let described = target.prepare(all.as_str()).await.map_err(target_err)?;
                let cols: Vec<String> = sqlx::Statement::columns(&described)
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect();
                format!("SELECT {} FROM {table}", cols.join(", "))
            }
        };
        let what = format!("copy.tables: {table}");
        let mut stream = sqlx::query(&select).fetch(&mut *conn);
        let mut columns: Vec<String> = Vec::new();
        let mut batch: Vec<Vec<Cell>> = Vec::new();
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(|e| source.source_err(what.clone(), e))?
        {
            if columns.is_empty() {
                columns = row.columns().iter().map(|c| c.name().to_string()).collect();
            }
            let cells = (0..row.len())
                .map(|i| cell(&row, i))
                .collect::<Result<Vec<Cell>, String>>()
                .map_err(|why| CopyError::Value {
                    url: source.url.redacted(),
                    what: what.clone(),
                    why,
                })?;
            batch.push(cells);
            if batch.len() == ROWS_PER_INSERT {
                rows += insert(target, engine, table, &columns, &batch)
                    .await
                    .map_err(target_err)?;
                batch.clear();
            }
        }
        drop(stream);
        if !batch.is_empty() {
            rows += insert(target, engine, table, &columns, &batch)
                .await
                .map_err(target_err)?;
        }
    }
    Ok(rows)
}

/// Column `i` as an integer or text, typed by its column when NULL.
fn cell(row: &sqlx::any::AnyRow, i: usize) -> Result<Cell, String> {
    if row.columns()[i].type_info().kind().is_integer() {
        return row
            .try_get::<Option<i64>, _>(i)
            .map(Cell::Int)
            .map_err(|e| e.to_string());
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return Ok(Cell::Int(v));
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return Ok(Cell::Text(v));
    }
    let column = &row.columns()[i];
    Err(format!(
        "column {} is {}, neither an integer nor text: cast it in copy.select (e.g. \
         CAST(x AS BIGINT), CAST(x AS TEXT))",
        column.name(),
        column.type_info().name()
    ))
}

/// One multi-row INSERT of `batch` into `table`'s `columns`.
async fn insert(
    target: &mut AnyConnection,
    engine: Engine,
    table: &str,
    columns: &[String],
    batch: &[Vec<Cell>],
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        Dialect::of(engine).values_list(batch.len(), columns.len())
    );
    let mut q = crate::db::sql::multi_row_query(&sql, batch.len());
    for cell in batch.iter().flatten() {
        q = match cell {
            Cell::Int(v) => q.bind(*v),
            Cell::Text(v) => q.bind(v.clone()),
        };
    }
    Ok(q.execute(&mut *target).await?.rows_affected())
}
