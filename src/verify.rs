//! Differential verification: every read model against the truth computed from the
//! normalized tables, row by row; on an event-store database (`event-sourced`), against the
//! pure fold (`projection::fold`) over the whole store, which is the write model there; on a
//! database whose order lines carry product copies (`denormalized`), every line's copies
//! against the products table.

use std::cmp::Ordering;

use futures::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::db::sql::Param;
use crate::db::state;
use crate::db::state::DbState;
use crate::db::{schema, Db, DbError};
use crate::pack::exec::{row_values, CompiledPack};
use crate::projection::truth;
use crate::projection::{diff, ProjectionName, ReadModels};

/// How many differing rows a report lists per read model.
pub const SHOWN_DIFFS: usize = 5;

/// What one check compared: a read model of the shop, the order lines' product copies, or
/// a workload pack's read model. Serialized as its name; a name is read back as the shop's
/// read model or copies when it is one of theirs (a pack that names a read model as the
/// shop does means the same one), else as a pack's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Checked {
    Model(ProjectionName),
    Copies(Copies),
    Pack(PackReadModel),
}

/// A workload pack's read model, by name. The name is interned (each distinct name is kept
/// once for the life of the process; a process sees a handful), so the type stays `Copy`
/// like the shop's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackReadModel(&'static str);

impl PackReadModel {
    pub fn new(name: &str) -> PackReadModel {
        static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
        let mut names = NAMES.lock().expect("read-model names lock");
        if let Some(n) = names.iter().find(|n| **n == name) {
            return PackReadModel(n);
        }
        let n: &'static str = Box::leak(name.to_string().into_boxed_str());
        names.push(n);
        PackReadModel(n)
    }

    pub fn name(self) -> &'static str {
        self.0
    }
}

impl Serialize for PackReadModel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for PackReadModel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(PackReadModel::new(&String::deserialize(d)?))
    }
}

/// The order lines' copies of their product's name and price (`denormalized`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Copies {
    OrderLineCopies,
}

impl Checked {
    pub fn name(self) -> &'static str {
        match self {
            Checked::Model(p) => p.name(),
            Checked::Copies(Copies::OrderLineCopies) => "order_line_copies",
            Checked::Pack(m) => m.name(),
        }
    }
}

impl From<ProjectionName> for Checked {
    fn from(p: ProjectionName) -> Self {
        Checked::Model(p)
    }
}

impl PartialEq<ProjectionName> for Checked {
    fn eq(&self, other: &ProjectionName) -> bool {
        *self == Checked::Model(*other)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCheck {
    pub read_model: Checked,
    pub rows_expected: usize,
    pub rows_actual: usize,
    pub mismatches: usize,
    pub first_diffs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub models: Vec<ModelCheck>,
    pub mismatches: usize,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.mismatches == 0
    }

    /// Compares two read-model states (used for fold-vs-SQL checks too).
    pub fn compare(actual: &ReadModels, expected: &ReadModels) -> VerifyReport {
        let diffs = diff(actual, expected);
        let models: Vec<ModelCheck> = diffs
            .into_iter()
            .map(|(p, d)| ModelCheck {
                read_model: p.into(),
                rows_expected: rows(expected, p),
                rows_actual: rows(actual, p),
                mismatches: d.len(),
                first_diffs: d.iter().take(SHOWN_DIFFS).map(|x| x.to_string()).collect(),
            })
            .collect();
        let mismatches = models.iter().map(|m| m.mismatches).sum();
        VerifyReport { models, mismatches }
    }
}

/// Every read model against the fold over the event store, in global-position order (the
/// fold is order-insensitive where the read models are: states by version, counters summed).
/// Holds the whole store and both read-model states in memory (a check, not a hot path).
async fn verify_against_store(db: &Db) -> Result<VerifyReport, VerifyError> {
    let log = crate::projection::event_store::read_store(db)
        .await
        .map_err(|e| DbError::from(sqlx::Error::Protocol(e.to_string())))?;
    let expected = crate::projection::fold::fold(log.iter().map(|d| &d.event));
    let mut conn = db.read.acquire().await.map_err(DbError::from)?;
    let actual = truth::load(&mut conn, truth::Source::ReadTables)
        .await
        .map_err(DbError::from)?;
    Ok(VerifyReport::compare(&actual, &expected))
}

fn rows(rm: &ReadModels, p: ProjectionName) -> usize {
    match p {
        ProjectionName::ProductCatalog => rm.product_catalog.len() + rm.catalog_price_changes.len(),
        ProjectionName::OrderSummary => rm.order_summary.len(),
        ProjectionName::DailySales => rm.daily_sales.len(),
        ProjectionName::ProductSales => rm.product_sales.len(),
        ProjectionName::MonthlySales => rm.monthly_sales.len(),
        ProjectionName::ProductSearch => rm.product_catalog.len(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0} has no read models (it holds a `normalized` dataset); nothing to verify")]
    NoReadModels(String),
    #[error("{0} keeps its read models in a separate read store: verify it with --read-db")]
    ReadModelsElsewhere(String),
    #[error("{0} is a read store: verify it with its write database (--db) and --read-db")]
    OnlyReadStore(String),
    #[error(transparent)]
    Search(#[from] crate::projection::search::SearchError),
}

impl VerifyError {
    /// The database's code for its errors; 2 for a database without read models.
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyError::Db(e) => e.exit_code(),
            VerifyError::NoReadModels(_)
            | VerifyError::ReadModelsElsewhere(_)
            | VerifyError::OnlyReadStore(_) => 2,
            VerifyError::Search(e) => e.exit_code(),
        }
    }
}

/// Verifies the read models of a database the tool seeded, and its search index if it has
/// one where `search::index_dir` puts it by default.
pub async fn verify(db: &Db) -> Result<VerifyReport, VerifyError> {
    verify_with(db, None).await
}

/// Verifies the read models, and the search index in `search_dir` (default:
/// `search::index_dir`) if there is one there: every document against the product
/// catalog's truth.
pub async fn verify_with(
    db: &Db,
    search_dir: Option<&std::path::Path>,
) -> Result<VerifyReport, VerifyError> {
    let mut report = verify_sql(db).await?;
    if let Some(check) = verify_search(db, search_dir).await? {
        report.mismatches += check.mismatches;
        report.models.push(check);
    }
    Ok(report)
}

/// The search index in `dir` (default: `search::index_dir`) against the truth; `None` if
/// there is no index there.
pub async fn verify_search(
    db: &Db,
    dir: Option<&std::path::Path>,
) -> Result<Option<ModelCheck>, VerifyError> {
    use crate::projection::search::{index_dir, verify::check_index, SearchIndex};
    let dir = index_dir(db, dir);
    if !SearchIndex::exists(&dir) {
        return Ok(None);
    }
    let state = DbState::read(db).await?;
    let expected = if state.has_event_store() {
        let log = crate::projection::event_store::read_store(db)
            .await
            .map_err(|e| DbError::from(sqlx::Error::Protocol(e.to_string())))?;
        crate::projection::fold::fold(log.iter().map(|d| &d.event)).product_catalog
    } else {
        let mut conn = db.read.acquire().await.map_err(DbError::from)?;
        truth::load_catalog_from(&mut conn, truth::Source::Truth)
            .await
            .map_err(DbError::from)?
    };
    let index = SearchIndex::open(&dir)?;
    let check = tokio::task::spawn_blocking(move || check_index(&index, &expected, SHOWN_DIFFS))
        .await
        .map_err(|e| crate::projection::search::SearchError::Task(e.to_string()))??;
    Ok(Some(ModelCheck {
        read_model: ProjectionName::ProductSearch.into(),
        rows_expected: check.rows_expected,
        rows_actual: check.rows_actual,
        mismatches: check.mismatches,
        first_diffs: check.first_diffs,
    }))
}

async fn verify_sql(db: &Db) -> Result<VerifyReport, VerifyError> {
    schema::require_ours(db).await?;
    let state = DbState::read(db).await?;
    if state.is_read_store() {
        return Err(VerifyError::OnlyReadStore(db.location()));
    }
    if state.has_product_copies() {
        return verify_copies(db).await;
    }
    if !state.has_read_models() && state.has_event_log() {
        return Err(VerifyError::ReadModelsElsewhere(db.location()));
    }
    if !state.has_read_models() {
        return Err(VerifyError::NoReadModels(db.url.redacted()));
    }
    if state.has_event_store() {
        return verify_against_store(db).await;
    }
    if state.has_matviews() {
        // A view shows its last refresh: compared after a fresh one, so what is checked is
        // the views' definitions, not how stale they were left.
        let mut conn = db.write.acquire().await.map_err(DbError::from)?;
        for view in truth::read_model_names() {
            if let Some(refresh) = db.dialect().refresh_materialized_view(view) {
                sqlx::query(&refresh)
                    .execute(&mut *conn)
                    .await
                    .map_err(DbError::from)?;
            }
        }
    }
    compare_tables(db, db).await
}

/// Every order line's copies of its product's name and price against the products table.
async fn verify_copies(db: &Db) -> Result<VerifyReport, VerifyError> {
    let mut conn = db.read.acquire().await.map_err(DbError::from)?;
    let c = crate::db::copies::check(&mut conn, SHOWN_DIFFS)
        .await
        .map_err(DbError::from)?;
    Ok(VerifyReport {
        models: vec![ModelCheck {
            read_model: Checked::Copies(Copies::OrderLineCopies),
            rows_expected: c.lines,
            rows_actual: c.lines,
            mismatches: c.stale,
            first_diffs: c.first,
        }],
        mismatches: c.stale,
    })
}

/// Verifies the read models of a separate read store (`--read-db`) against the truth from
/// its write database.
pub async fn verify_read_store(write: &Db, read: &Db) -> Result<VerifyReport, VerifyError> {
    schema::require_ours(write).await?;
    schema::require_ours(read).await?;
    if !DbState::read(read).await?.is_read_store() {
        return Err(DbError::NotReadStore(read.location()).into());
    }
    let state = DbState::read(write).await?;
    if state.has_read_models() || !state.has_event_log() {
        return Err(DbError::NotSplitWriteSide(write.location()).into());
    }
    compare_tables(read, write).await
}

/// Every read table of `read` against the truth computed from the write tables of `write`
/// (the same database, or the read store's write database).
async fn compare_tables(read: &Db, write: &Db) -> Result<VerifyReport, VerifyError> {
    // Two connections walk the read tables and the truth side by side, in key order: memory
    // stays flat however large the read models are.
    let mut actual = read.read.acquire().await.map_err(DbError::from)?;
    let mut expected = write.read.acquire().await.map_err(DbError::from)?;
    let mut models = Vec::new();
    for p in ProjectionName::ALL {
        let mut check = ModelCheck {
            read_model: p.into(),
            rows_expected: 0,
            rows_actual: 0,
            mismatches: 0,
            first_diffs: Vec::new(),
        };
        for table in p.tables() {
            let d = truth::diff_table(&mut actual, &mut expected, table, SHOWN_DIFFS)
                .await
                .map_err(DbError::from)?;
            check.rows_expected += d.rows_expected;
            check.rows_actual += d.rows_actual;
            check.mismatches += d.mismatches;
            for diff in d.first {
                if check.first_diffs.len() < SHOWN_DIFFS {
                    check.first_diffs.push(diff.to_string());
                }
            }
        }
        models.push(check);
    }
    let mismatches = models.iter().map(|m| m.mismatches).sum();
    Ok(VerifyReport { models, mismatches })
}

/// A read model and its truth as rows of named columns, each stream in key order: the one
/// row-by-row comparison for read models that are not the shop's (a workload pack's).
pub struct NamedRows<'a> {
    pub read_model: Checked,
    /// The columns, as both streams yield them.
    pub columns: &'a [String],
    /// The positions of the key columns among them.
    pub key: &'a [usize],
}

impl NamedRows<'_> {
    /// Walks `actual` (the read model) and `expected` (its truth) side by side, holding one
    /// row of each: a key on one side only is a missing or an extra row, the same key with
    /// other values a differing row. The first [`SHOWN_DIFFS`] differences are shown as text
    /// naming the key and both rows: `account_balance[account_id=3]: has (…), expected (…)`.
    ///
    /// Keys compare as SQL's `ORDER BY` sorts them where that is byte order: integers by
    /// value, text byte by byte (SQLite's default collation, PostgreSQL's "C"); under another
    /// text collation a key would show as a missing row and an extra one.
    pub async fn compare<A, E>(
        self,
        mut actual: A,
        mut expected: E,
    ) -> Result<ModelCheck, sqlx::Error>
    where
        A: Stream<Item = Result<Vec<Param>, sqlx::Error>> + Unpin,
        E: Stream<Item = Result<Vec<Param>, sqlx::Error>> + Unpin,
    {
        let mut check = ModelCheck {
            read_model: self.read_model,
            rows_expected: 0,
            rows_actual: 0,
            mismatches: 0,
            first_diffs: Vec::new(),
        };
        let mut a = actual.try_next().await?;
        let mut e = expected.try_next().await?;
        loop {
            let order = match (&a, &e) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(ra), Some(re)) => self.key_order(ra, re),
            };
            let (differs, row) = match order {
                Ordering::Equal => (a != e, a.as_ref()),
                Ordering::Less => (true, a.as_ref()),
                Ordering::Greater => (true, e.as_ref()),
            };
            if differs {
                check.mismatches += 1;
                if check.first_diffs.len() < SHOWN_DIFFS {
                    let (has, expect) = match order {
                        Ordering::Equal => (a.as_deref(), e.as_deref()),
                        Ordering::Less => (a.as_deref(), None),
                        Ordering::Greater => (None, e.as_deref()),
                    };
                    let key = self.key_text(row.expect("a row on one side"));
                    check.first_diffs.push(format!(
                        "{}[{key}]: has {}, expected {}",
                        self.read_model.name(),
                        self.row_text(has),
                        self.row_text(expect)
                    ));
                }
            }
            if order != Ordering::Greater {
                check.rows_actual += 1;
                a = actual.try_next().await?;
            }
            if order != Ordering::Less {
                check.rows_expected += 1;
                e = expected.try_next().await?;
            }
        }
        Ok(check)
    }

    fn key_order(&self, a: &[Param], b: &[Param]) -> Ordering {
        self.key
            .iter()
            .map(|&i| value_order(a.get(i), b.get(i)))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    }

    fn key_text(&self, row: &[Param]) -> String {
        self.key
            .iter()
            .map(|&i| format!("{}={}", self.columns[i], value_text(row.get(i))))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn row_text(&self, row: Option<&[Param]>) -> String {
        let Some(row) = row else {
            return "no row".to_string();
        };
        let cells: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}={}", value_text(row.get(i))))
            .collect();
        format!("({})", cells.join(", "))
    }
}

/// Where each of `key`'s columns is among `columns` (as [`NamedRows::key`] takes them).
pub fn key_positions(columns: &[String], key: &[String]) -> Vec<usize> {
    key.iter()
        .filter_map(|k| columns.iter().position(|c| c == k))
        .collect()
}

/// NULL first, then integers by value, then text byte by byte.
fn value_order(a: Option<&Param>, b: Option<&Param>) -> Ordering {
    fn rank(p: Option<&Param>) -> u8 {
        match p {
            None | Some(Param::Null) => 0,
            Some(Param::Int(_)) => 1,
            Some(Param::Text(_)) => 2,
        }
    }
    match (a, b) {
        (Some(Param::Int(x)), Some(Param::Int(y))) => x.cmp(y),
        (Some(Param::Text(x)), Some(Param::Text(y))) => x.as_bytes().cmp(y.as_bytes()),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn value_text(p: Option<&Param>) -> String {
    match p {
        Some(Param::Int(n)) => n.to_string(),
        Some(Param::Text(t)) => format!("{t:?}"),
        None | Some(Param::Null) => "NULL".to_string(),
    }
}

/// Every read model of `pack` on `db` against its truth query over the write model, row by
/// row in key order, both streamed on connections of their own (memory stays flat), through
/// the tool's one comparison (`verify::NamedRows`). A dataset without read models
/// (`normalized`) has nothing to compare: an empty report.
pub async fn verify_pack(db: &Db, pack: &CompiledPack) -> Result<VerifyReport, DbError> {
    state::require_seeded(db).await?;
    let mut models = Vec::new();
    if DbState::read(db).await?.has_read_models() {
        let mut truth_conn = db.read.acquire().await?;
        let mut read_conn = db.read.acquire().await?;
        for (name, rm) in &pack.pack.read_models {
            let (columns, truth, read) = pack.read_model_queries(&mut truth_conn, name).await?;
            let key = key_positions(&columns, &rm.key);
            let named = NamedRows {
                read_model: Checked::Pack(PackReadModel::new(name)),
                columns: &columns,
                key: &key,
            };
            let actual = sqlx::query(&read)
                .fetch(&mut *read_conn)
                .map(|r| r.and_then(|r| row_values(&r)));
            let expected = sqlx::query(&truth)
                .fetch(&mut *truth_conn)
                .map(|r| r.and_then(|r| row_values(&r)));
            models.push(named.compare(actual, expected).await?);
        }
    }
    let mismatches = models.iter().map(|m| m.mismatches).sum();
    Ok(VerifyReport { models, mismatches })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rows: Vec<Vec<Param>>) -> impl Stream<Item = Result<Vec<Param>, sqlx::Error>> + Unpin {
        futures::stream::iter(rows.into_iter().map(Ok))
    }

    #[tokio::test]
    async fn named_rows_count_differing_missing_and_extra_rows_in_key_order() {
        let columns = ["id".to_string(), "name".to_string()];
        let r = |id: i64, name: &str| vec![Param::Int(id), Param::Text(name.into())];
        let named = NamedRows {
            read_model: Checked::Pack(PackReadModel::new("people")),
            columns: &columns,
            key: &[0],
        };
        let actual = rows(vec![r(1, "a"), r(2, "x"), r(4, "d"), r(5, "e")]);
        let expected = rows(vec![r(1, "a"), r(2, "b"), r(3, "c"), r(4, "d")]);
        let check = named.compare(actual, expected).await.unwrap();
        assert_eq!(check.mismatches, 3);
        assert_eq!((check.rows_actual, check.rows_expected), (4, 4));
        assert_eq!(
            check.first_diffs,
            [
                "people[id=2]: has (id=2, name=\"x\"), expected (id=2, name=\"b\")",
                "people[id=3]: has no row, expected (id=3, name=\"c\")",
                "people[id=5]: has (id=5, name=\"e\"), expected no row",
            ]
        );
    }

    #[test]
    fn a_pack_read_model_round_trips_through_json() {
        let checked = Checked::Pack(PackReadModel::new("account_balance"));
        let text = serde_json::to_string(&checked).unwrap();
        assert_eq!(text, "\"account_balance\"");
        let back: Checked = serde_json::from_str(&text).unwrap();
        assert_eq!(back, checked);
        assert_eq!(back.name(), "account_balance");
        // The shop's names still read back as the shop's.
        let shop: Checked = serde_json::from_str("\"order_summary\"").unwrap();
        assert_eq!(shop, ProjectionName::OrderSummary);
    }
}
