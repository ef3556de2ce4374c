//! Differential verification: every read model against the truth computed from the
//! normalized tables, row by row; on an event-store database (`event-sourced`), against the
//! pure fold (`projection::fold`) over the whole store, which is the write model there; on a
//! database whose order lines carry product copies (`denormalized`), every line's copies
//! against the products table.

use serde::{Deserialize, Serialize};

use crate::db::state::DbState;
use crate::db::{schema, Db, DbError};
use crate::projection::truth;
use crate::projection::{diff, ProjectionName, ReadModels};

/// How many differing rows a report lists per read model.
pub const SHOWN_DIFFS: usize = 5;

/// What one check compared: a read model, or the order lines' product copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Checked {
    Model(ProjectionName),
    Copies(Copies),
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
