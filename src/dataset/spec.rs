//! Sizes of the seeded dataset, and the facts about it the op stream needs (where the seeded
//! ids end, when the seeded history ends, how seeded things are named).

use serde::{Deserialize, Serialize};

/// Sizes of the seeded dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub categories: i64,
    pub products: i64,
    pub users: i64,
    pub orders: i64,
    pub reviews: i64,
    pub price_changes: i64,
    /// How many days of history the seeded orders span, ending at `start_at`.
    #[serde(default = "default_days")]
    pub days: i64,
}

fn default_days() -> i64 {
    30
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            categories: 20,
            products: 1_000,
            users: 1_000,
            orders: 5_000,
            reviews: 5_000,
            price_changes: 1_000,
            days: 30,
        }
    }
}

/// Logical time at which the seeded history ends and the workload begins
/// (2026-01-01T00:00:00Z, in µs). A constant, so runs replay identically.
pub const START_AT: i64 = 1_767_225_600_000_000;

/// First ids the op stream may use; everything below belongs to the seed.
pub fn first_free_ids(spec: &DatasetSpec) -> FreeIds {
    FreeIds {
        order: spec.orders + 1,
        review: spec.reviews + 1,
        price_change: spec.price_changes + 1,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FreeIds {
    pub order: i64,
    pub review: i64,
    pub price_change: i64,
}

pub fn category_name(id: i64) -> String {
    format!("category {id}")
}

pub fn product_name(id: i64) -> String {
    format!("product {id}")
}
