use serde::{Deserialize, Serialize};

/// A read request. Each has a join implementation (normalized) and a read-model
/// implementation (CQRS); both must give equal answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Query {
    ProductPage {
        product_id: i64,
    },
    UserOrders {
        user_id: i64,
        limit: i64,
    },
    Search {
        category_id: i64,
        min_cents: i64,
        max_cents: i64,
        /// Minimum average rating in whole stars (0 = any, including unrated).
        min_rating: i64,
        in_stock: bool,
        limit: i64,
    },
    DailyRevenue {
        from_day: i64,
        to_day: i64,
    },
    TopProducts {
        n: i64,
    },
    /// Revenue and orders per category and per customer segment over one month
    /// (`domain::month`): the report a finance team runs.
    MonthlyReport {
        month: i64,
    },
    /// Products whose name holds any of `terms` (whole words; see `domain::text`), within the
    /// filters of `search` (`category_id` 0 = any category), sorted by `sort`, first `limit`.
    TextSearch {
        terms: Vec<String>,
        category_id: i64,
        min_cents: i64,
        max_cents: i64,
        /// Minimum average rating in whole stars (0 = any, including unrated).
        min_rating: i64,
        in_stock: bool,
        sort: TextSort,
        limit: i64,
    },
}

/// How `text_search` orders its hits; ties are always broken by product id, ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextSort {
    /// Cheapest first.
    Price,
    /// Most distinct query terms in the name first (the same relevance on every backend).
    Relevance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    ProductPage,
    UserOrders,
    Search,
    DailyRevenue,
    TopProducts,
    TextSearch,
    MonthlyReport,
}

impl QueryKind {
    pub const ALL: [QueryKind; 7] = [
        QueryKind::ProductPage,
        QueryKind::UserOrders,
        QueryKind::Search,
        QueryKind::DailyRevenue,
        QueryKind::TopProducts,
        QueryKind::TextSearch,
        QueryKind::MonthlyReport,
    ];

    /// What a read mix holds when a scenario names none: every query but `text_search` and
    /// `monthly_report`, which came later and are asked for by name (so older scenarios keep
    /// their op stream).
    pub const DEFAULT_MIX: [QueryKind; 5] = [
        QueryKind::ProductPage,
        QueryKind::UserOrders,
        QueryKind::Search,
        QueryKind::DailyRevenue,
        QueryKind::TopProducts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QueryKind::ProductPage => "product_page",
            QueryKind::UserOrders => "user_orders",
            QueryKind::Search => "search",
            QueryKind::DailyRevenue => "daily_revenue",
            QueryKind::TopProducts => "top_products",
            QueryKind::TextSearch => "text_search",
            QueryKind::MonthlyReport => "monthly_report",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl Query {
    pub fn kind(&self) -> QueryKind {
        match self {
            Query::ProductPage { .. } => QueryKind::ProductPage,
            Query::UserOrders { .. } => QueryKind::UserOrders,
            Query::Search { .. } => QueryKind::Search,
            Query::DailyRevenue { .. } => QueryKind::DailyRevenue,
            Query::TopProducts { .. } => QueryKind::TopProducts,
            Query::TextSearch { .. } => QueryKind::TextSearch,
            Query::MonthlyReport { .. } => QueryKind::MonthlyReport,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceChangeRow {
    pub change_id: i64,
    pub old_cents: i64,
    pub new_cents: i64,
    pub changed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedProduct {
    pub product_id: i64,
    pub name: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductPage {
    pub product_id: i64,
    pub name: String,
    pub category_id: i64,
    pub category_name: String,
    pub price_cents: i64,
    pub stock: i64,
    pub review_count: i64,
    /// Sum of ratings; the average is `rating_sum / review_count`, kept exact as integers.
    pub rating_sum: i64,
    /// Up to three most recent price changes, newest first.
    pub recent_prices: Vec<PriceChangeRow>,
    /// Up to four other products of the category, most reviewed first.
    pub related: Vec<RelatedProduct>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRow {
    pub order_id: i64,
    pub placed_at: i64,
    pub status: String,
    pub item_count: i64,
    pub total_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub product_id: i64,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
    pub review_count: i64,
    pub rating_sum: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRevenue {
    pub day: i64,
    pub orders: i64,
    pub items: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopProduct {
    pub product_id: i64,
    pub name: String,
    pub units: i64,
    pub revenue_cents: i64,
}

/// One category's line of the monthly report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRevenue {
    pub category_id: i64,
    /// Order lines of the category's products (an order with two of them counts twice).
    pub lines: i64,
    /// What those lines came to.
    pub revenue_cents: i64,
}

/// One customer segment's line of the monthly report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRevenue {
    /// The segment's name (`domain::segment`).
    pub segment: String,
    pub orders: i64,
    pub revenue_cents: i64,
}

/// Revenue of one month's orders (cancelled ones excluded) by category (with its order
/// lines) and by customer segment (with its orders), each sorted by id; categories and
/// segments without an order are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthlyReport {
    pub month: i64,
    pub by_category: Vec<CategoryRevenue>,
    pub by_segment: Vec<SegmentRevenue>,
}

/// A typed answer; equal answers compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryAnswer {
    ProductPage(Option<ProductPage>),
    UserOrders(Vec<OrderRow>),
    Search(Vec<SearchHit>),
    DailyRevenue(Vec<DayRevenue>),
    TopProducts(Vec<TopProduct>),
    TextSearch(Vec<SearchHit>),
    MonthlyReport(MonthlyReport),
}
