//! The shop domain: commands, events, queries and their typed answers.
//!
//! Times are integer microseconds since the epoch and money is integer cents, so both SQL
//! dialects and the in-memory folds agree to the digit. Entity ids are chosen by the client
//! (the op stream), which keeps them identical across backends and engines.

pub mod aggregate;
mod command;
mod error;
mod event;
pub mod month;
mod query;
pub mod segment;
pub mod text;

pub use command::{Command, CommandKind, OrderLine};
pub use error::DomainError;
pub use event::{Event, PricedLine, ProductState};
pub use query::{
    CategoryRevenue, DayRevenue, MonthlyReport, OrderRow, PriceChangeRow, ProductPage, Query,
    QueryAnswer, QueryKind, RelatedProduct, SearchHit, SegmentRevenue, TextSort, TopProduct,
};

/// Microseconds in one day; `day = at / MICROS_PER_DAY` on both engines.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Status of an order in the write model; stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Paid,
    Shipped,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "placed" => OrderStatus::Placed,
            "paid" => OrderStatus::Paid,
            "shipped" => OrderStatus::Shipped,
            "cancelled" => OrderStatus::Cancelled,
            _ => return None,
        })
    }

    /// Whether the state machine allows `self -> to`.
    pub fn can_become(self, to: OrderStatus) -> bool {
        matches!(
            (self, to),
            (OrderStatus::Placed, OrderStatus::Paid)
                | (OrderStatus::Paid, OrderStatus::Shipped)
                | (OrderStatus::Placed, OrderStatus::Cancelled)
                | (OrderStatus::Paid, OrderStatus::Cancelled)
        )
    }
}

/// The day bucket of a timestamp, as both engines compute it (integer division).
pub fn day_of(at_micros: i64) -> i64 {
    at_micros.div_euclid(MICROS_PER_DAY)
}
