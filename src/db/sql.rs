//! Small helpers for building portable statements: multi-row VALUES lists and binding.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::dialect::Dialect;

/// A bound value. The tool only stores integers and text (and SQL NULL, for the event
/// store's optional claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Text(String),
    Null,
}

impl Param {
    /// The type it is bound with.
    pub fn kind(&self) -> ParamKind {
        match self {
            Param::Int(_) => ParamKind::Int,
            Param::Text(_) => ParamKind::Text,
            Param::Null => ParamKind::Inferred,
        }
    }
}

/// The type a parameter will be bound with, as far as it is known before a value exists: what
/// a statement is prepared with when it is checked (`scratch::Scratch::prepare`). `Inferred`:
/// not known (a value a statement returns), so the engine infers it from the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Int,
    Text,
    Inferred,
}

impl From<Option<String>> for Param {
    fn from(v: Option<String>) -> Self {
        v.map_or(Param::Null, Param::Text)
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(v.to_string())
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(v)
    }
}

/// Statements with more rows than this are not kept in the connection's prepared-statement
/// cache: their text varies with the batch size, so caching them would fill the cache (and the
/// server's prepared statements) with one-off shapes as a long run goes on.
pub const CACHED_ROWS: usize = 4;

/// A multi-row statement, cached only when it is small (see `CACHED_ROWS`).
pub fn multi_row_query(sql: &str, rows: usize) -> Query<'_, Any, AnyArguments<'_>> {
    sqlx::query(sql).persistent(rows <= CACHED_ROWS)
}

/// Largest number of bound parameters put into one statement (SQLite allows 32,766 and
/// PostgreSQL 65,535).
pub const MAX_PARAMS: usize = 30_000;

/// The VALUES list for `rows` rows of `cols` columns in the placeholder style of the
/// connection's engine (see `Dialect::values_list`).
pub fn values_for(conn: &sqlx::AnyConnection, rows: usize, cols: usize) -> String {
    Dialect::of_connection(conn).values_list(rows, cols)
}

/// How many rows of `cols` columns fit into one statement.
pub fn rows_per_statement(cols: usize) -> usize {
    (MAX_PARAMS / cols.max(1)).max(1)
}

pub fn bind_all<'q>(
    mut q: Query<'q, Any, AnyArguments<'q>>,
    params: &'q [Param],
) -> Query<'q, Any, AnyArguments<'q>> {
    for p in params {
        q = match p {
            Param::Int(v) => q.bind(*v),
            Param::Text(v) => q.bind(v.as_str()),
            Param::Null => q.bind(None::<String>),
        };
    }
    q
}

/// Runs one statement per chunk of `rows` (chunks respect the parameter limit); `statement`
/// turns a chunk's VALUES list into the SQL. Returns the number of rows affected.
async fn execute_chunked(
    conn: &mut sqlx::AnyConnection,
    cols: usize,
    rows: &[Vec<Param>],
    statement: impl Fn(&str) -> String,
) -> Result<u64, sqlx::Error> {
    let mut affected = 0;
    for chunk in rows.chunks(rows_per_statement(cols)) {
        let sql = statement(&values_for(conn, chunk.len(), cols));
        let params: Vec<Param> = chunk.iter().flatten().cloned().collect();
        affected += bind_all(multi_row_query(&sql, chunk.len()), &params)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(affected)
}

/// Runs `INSERT … VALUES {rows} {suffix}` in chunks that respect the parameter limit.
/// `head` is everything before VALUES; `suffix` (e.g. an ON CONFLICT clause) follows it.
/// Returns the number of rows affected.
pub async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    head: &str,
    suffix: &str,
    cols: usize,
    rows: &[Vec<Param>],
) -> Result<u64, sqlx::Error> {
    execute_chunked(conn, cols, rows, |values| {
        format!("{head} VALUES {values} {suffix}")
    })
    .await
}

/// Runs `UPDATE {table} SET {set} FROM (VALUES {rows}) AS v WHERE {table}.{key} = v.column1
/// {extra}` in chunks: one statement updates many rows by key. `set` and `extra` refer to the
/// values as `v.column1`, `v.column2`, … (the default names on both engines).
pub async fn update_rows(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    key: &str,
    set: &str,
    extra: &str,
    cols: usize,
    rows: &[Vec<Param>],
) -> Result<u64, sqlx::Error> {
    execute_chunked(conn, cols, rows, |values| {
        format!(
            "UPDATE {table} SET {set} FROM (VALUES {values}) AS v WHERE {table}.{key} = v.column1 {extra}"
        )
    })
    .await
}

/// Reads column `i` as text whatever its type (for PRAGMA answers and diagnostics).
pub fn any_to_string(row: &AnyRow, i: usize) -> String {
    if let Ok(v) = row.try_get::<String, _>(i) {
        return v;
    }
    if let Ok(v) = row.try_get::<i64, _>(i) {
        return v.to_string();
    }
    if let Ok(v) = row.try_get::<f64, _>(i) {
        return v.to_string();
    }
    "?".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_statements_to_the_parameter_limit() {
        assert_eq!(rows_per_statement(3), 10_000);
    }
}
