//! Read models (projections). Each one is defined twice: as a pure fold over events in memory
//! (`fold`, the oracle) and as SQL that applies batches of events to the read tables (`sql`).
//! `truth` computes what each read model must hold from the normalized tables, and
//! `projector` runs the SQL applier asynchronously, reading an `event_source` (the outbox)
//! into a `read_store` (the same database); `dead_letter` parks poison events and `rebuild`
//! replays the log into emptied read models. For `cqrs-broker`, `relay` publishes the outbox
//! to NATS JetStream, `jetstream` is the source that consumes it, and `lag_parts` measures
//! the way in between.

pub mod dead_letter;
pub mod error;
pub mod event_source;
pub mod event_store;
pub mod fold;
pub mod jetstream;
pub mod lag_parts;
pub mod projector;
pub mod read_store;
pub mod rebuild;
pub mod relay;
pub mod search;
pub mod sql;
pub mod step_loop;
pub mod truth;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The read models: the five SQL ones (`ALL`, in the database) and the product search index
/// (`ProductSearch`, in tantivy beside it, fed by a projector of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionName {
    ProductCatalog,
    OrderSummary,
    DailySales,
    ProductSales,
    MonthlySales,
    ProductSearch,
}

impl ProjectionName {
    pub const ALL: [ProjectionName; 5] = [
        ProjectionName::ProductCatalog,
        ProjectionName::OrderSummary,
        ProjectionName::DailySales,
        ProjectionName::ProductSales,
        ProjectionName::MonthlySales,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProjectionName::ProductCatalog => "product_catalog",
            ProjectionName::OrderSummary => "order_summary",
            ProjectionName::DailySales => "daily_sales",
            ProjectionName::ProductSales => "product_sales",
            ProjectionName::MonthlySales => "monthly_sales",
            ProjectionName::ProductSearch => "product_search",
        }
    }

    /// One of the SQL read models (`ALL`) by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The tables holding this read model (the first is the main one).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            ProjectionName::ProductCatalog => &["product_catalog", "catalog_price_changes"],
            ProjectionName::OrderSummary => &["order_summary"],
            ProjectionName::DailySales => &["daily_sales"],
            ProjectionName::ProductSales => &["product_sales"],
            ProjectionName::MonthlySales => &["monthly_sales"],
            ProjectionName::ProductSearch => &[],
        }
    }

    /// The read models query `q` reads on a read-model side (the `READ_MODELS` SQL of
    /// `backend::queries`; `text_search` reads the search index where the backend keeps one).
    pub fn read_by(q: crate::domain::QueryKind) -> &'static [ProjectionName] {
        use crate::domain::QueryKind;
        match q {
            // The product, its recent prices and related products: all the catalog's tables.
            QueryKind::ProductPage | QueryKind::Search => &[ProjectionName::ProductCatalog],
            QueryKind::UserOrders => &[ProjectionName::OrderSummary],
            QueryKind::DailyRevenue => &[ProjectionName::DailySales],
            QueryKind::TopProducts => &[ProjectionName::ProductSales],
            QueryKind::TextSearch => &[ProjectionName::ProductSearch],
            // Sales by category join the catalog for the product's category.
            QueryKind::MonthlyReport => {
                &[ProjectionName::MonthlySales, ProjectionName::ProductCatalog]
            }
        }
    }

    /// The duplicate-guard ledger, for read models that keep counters.
    pub fn ledger(self) -> Option<&'static str> {
        match self {
            ProjectionName::ProductCatalog => Some("product_catalog_applied"),
            ProjectionName::OrderSummary => None,
            ProjectionName::DailySales => Some("daily_sales_applied"),
            ProjectionName::ProductSales => Some("product_sales_applied"),
            ProjectionName::MonthlySales => Some("monthly_sales_applied"),
            ProjectionName::ProductSearch => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRow {
    pub product_id: i64,
    pub name: String,
    pub category_id: i64,
    pub category_name: String,
    pub price_cents: i64,
    pub stock: i64,
    pub version: i64,
    pub review_count: i64,
    pub rating_sum: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceChangeEntry {
    pub change_id: i64,
    pub product_id: i64,
    pub old_cents: i64,
    pub new_cents: i64,
    pub changed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummaryRow {
    pub order_id: i64,
    pub user_id: i64,
    pub placed_at: i64,
    pub status: String,
    pub item_count: i64,
    pub total_cents: i64,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailySalesRow {
    pub day: i64,
    pub orders: i64,
    pub items: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSalesRow {
    pub product_id: i64,
    pub name: String,
    pub units: i64,
    pub revenue_cents: i64,
}

/// One cell of the monthly report's read model: a month's orders of one customer segment,
/// with a line of one product (`product_id` > 0: those lines and their revenue) or whole
/// (`product_id` 0, `domain::month::WHOLE_ORDER`). Keyed by `domain::month::cell_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthlySalesRow {
    pub cell: i64,
    pub month: i64,
    pub product_id: i64,
    pub segment: i64,
    pub orders: i64,
    pub revenue_cents: i64,
}

/// The state of every read model, keyed by primary key. Produced by the pure fold, by reading
/// the read tables, and by the truth queries; equal states mean equal read models.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadModels {
    pub product_catalog: BTreeMap<i64, CatalogRow>,
    pub catalog_price_changes: BTreeMap<i64, PriceChangeEntry>,
    pub order_summary: BTreeMap<i64, OrderSummaryRow>,
    pub daily_sales: BTreeMap<i64, DailySalesRow>,
    pub product_sales: BTreeMap<i64, ProductSalesRow>,
    #[serde(default)]
    pub monthly_sales: BTreeMap<i64, MonthlySalesRow>,
}

impl ReadModels {
    /// Drops rows that carry no information (a day or a cell whose orders were all
    /// cancelled), which the truth queries cannot produce.
    pub fn canonical(mut self) -> Self {
        self.daily_sales
            .retain(|_, r| r.orders != 0 || r.items != 0 || r.revenue_cents != 0);
        self.monthly_sales
            .retain(|_, r| r.orders != 0 || r.revenue_cents != 0);
        self
    }
}

/// A difference between two read-model states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowDiff {
    pub table: String,
    pub key: i64,
    /// What the read model holds (`None`: row missing).
    pub actual: Option<String>,
    /// What it should hold (`None`: row should not exist).
    pub expected: Option<String>,
}

impl std::fmt::Display for RowDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}[{}]: has {}, expected {}",
            self.table,
            self.key,
            self.actual.as_deref().unwrap_or("no row"),
            self.expected.as_deref().unwrap_or("no row")
        )
    }
}

fn diff_map<T: PartialEq + std::fmt::Debug>(
    table: &str,
    actual: &BTreeMap<i64, T>,
    expected: &BTreeMap<i64, T>,
    out: &mut Vec<RowDiff>,
) {
    for (k, a) in actual {
        match expected.get(k) {
            Some(e) if e == a => {}
            e => out.push(RowDiff {
                table: table.into(),
                key: *k,
                actual: Some(format!("{a:?}")),
                expected: e.map(|e| format!("{e:?}")),
            }),
        }
    }
    for (k, e) in expected {
        if !actual.contains_key(k) {
            out.push(RowDiff {
                table: table.into(),
                key: *k,
                actual: None,
                expected: Some(format!("{e:?}")),
            });
        }
    }
}

/// Row-by-row differences of `actual` against `expected`, per read model.
pub fn diff(actual: &ReadModels, expected: &ReadModels) -> BTreeMap<ProjectionName, Vec<RowDiff>> {
    let mut out = BTreeMap::new();
    for p in ProjectionName::ALL {
        let mut d = Vec::new();
        match p {
            ProjectionName::ProductCatalog => {
                diff_map(
                    "product_catalog",
                    &actual.product_catalog,
                    &expected.product_catalog,
                    &mut d,
                );
                diff_map(
                    "catalog_price_changes",
                    &actual.catalog_price_changes,
                    &expected.catalog_price_changes,
                    &mut d,
                );
            }
            ProjectionName::OrderSummary => diff_map(
                "order_summary",
                &actual.order_summary,
                &expected.order_summary,
                &mut d,
            ),
            ProjectionName::DailySales => diff_map(
                "daily_sales",
                &actual.daily_sales,
                &expected.daily_sales,
                &mut d,
            ),
            ProjectionName::ProductSales => diff_map(
                "product_sales",
                &actual.product_sales,
                &expected.product_sales,
                &mut d,
            ),
            ProjectionName::MonthlySales => diff_map(
                "monthly_sales",
                &actual.monthly_sales,
                &expected.monthly_sales,
                &mut d,
            ),
            ProjectionName::ProductSearch => {}
        }
        out.insert(p, d);
    }
    out
}

/// What seeding runs after the rows are loaded for a dataset that provisions `p`: the read
/// models built from the normalized tables (or, for `matview`, as views of them) and, with an
/// event log, checkpoints at its end.
pub fn seed_statements(
    p: crate::db::state::Provisions,
    dialect: crate::db::dialect::Dialect,
) -> Vec<String> {
    let mut v = Vec::new();
    if p.matviews {
        return truth::matview_statements(dialect);
    }
    if p.event_store {
        // The read models were projected from the store while it was loaded
        // (`apply_seed_batch`); the projector carries on from the store's end.
        for name in ProjectionName::ALL {
            v.push(format!(
                "INSERT INTO projection_checkpoints (projection, xid, seq, applied, duplicates) \
                 SELECT '{}', COALESCE(MAX(xid), 0), COALESCE(MAX(seq), 0), 0, 0 FROM es_events",
                name.name()
            ));
        }
        return v;
    }
    if p.read_models {
        v.extend(truth::build_statements());
    }
    if p.event_log {
        for name in ProjectionName::ALL {
            v.push(format!(
                "INSERT INTO projection_checkpoints (projection, xid, seq, applied, duplicates) \
                 SELECT '{}', COALESCE(MAX(xid), 0), COALESCE(MAX(seq), 0), 0, 0 FROM events",
                name.name()
            ));
        }
    }
    v
}

/// Applies a batch of seeded events to every read model inside the seed's transaction, with
/// the projector's own SQL appliers: how an event-store dataset gets its read models (each
/// event is seen once, in store order, as in `cqrs-sync`'s write transaction).
pub fn apply_seed_batch<'c>(
    conn: &'c mut sqlx::AnyConnection,
    events: &'c [crate::domain::Event],
) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>> {
    Box::pin(async move {
        let delivered: Vec<sql::Delivered> = events
            .iter()
            .map(|e| sql::Delivered {
                seq: 0,
                event: e.clone(),
            })
            .collect();
        sql::apply_batch(
            conn,
            &delivered,
            &ProjectionName::ALL,
            sql::Guard::InWriteTransaction,
        )
        .await?;
        Ok(())
    })
}
