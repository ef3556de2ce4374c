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
    /// Secondary indexes added on the normalized `products` table (0 to
    /// `MAX_EXTRA_PRODUCT_INDEXES`, from `db::schema::EXTRA_PRODUCT_INDEXES` in order): what
    /// each costs the writes, against what it buys the searches.
    #[serde(default)]
    pub extra_product_indexes: i64,
}

/// Most extra indexes a dataset may put on `products`.
pub const MAX_EXTRA_PRODUCT_INDEXES: i64 = 20;

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
            extra_product_indexes: 0,
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

/// The words product names are made of (three per name, then the id), so `text_search` has
/// something to find: each word is in about one name in `len()` of its list.
pub const NAME_WORDS: [&[&str]; 3] = [
    &[
        "red", "blue", "green", "black", "white", "silver", "golden", "amber", "ivory", "olive",
        "coral", "slate", "plum", "teal", "navy", "rust",
    ],
    &[
        "oak", "steel", "linen", "wool", "glass", "cedar", "copper", "cotton", "marble", "bamboo",
        "leather", "ceramic",
    ],
    &[
        "chair", "table", "lamp", "mug", "shelf", "rug", "kettle", "clock", "vase", "bench",
        "desk", "sofa", "mirror", "basket", "pillow", "blanket", "jar", "stool", "tray", "bowl",
    ],
];

/// A product's name: three words drawn from `NAME_WORDS` by a hash of the id (a pure function
/// of the id, no RNG draw, so the dataset's other values are unchanged), then the id.
pub fn product_name(id: i64) -> String {
    // SplitMix64's finaliser: neighbouring ids get unrelated words.
    let mut h = (id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    let mut words = Vec::with_capacity(4);
    for list in NAME_WORDS {
        words.push(list[(h % list.len() as u64) as usize].to_string());
        h /= list.len() as u64;
    }
    words.push(id.to_string());
    words.join(" ")
}

/// Largest `products`: the generator keeps each product's final price and version in memory
/// (12 bytes, plus 8 while it replays the price changes), which must stay well under the
/// seeding memory budget (300 MB).
pub const MAX_PRODUCTS: i64 = 10_000_000;
/// Largest `categories`: more categories than this would mostly be empty.
pub const MAX_CATEGORIES: i64 = 1_000_000;
/// Largest `users`, `orders`, `reviews` and `price_changes`: ids stay far inside `i64` and the
/// op stream's ids (which continue after the seeded ones) too. Disk is the real limit; see
/// [`estimated_bytes`].
pub const MAX_ROWS: i64 = 10_000_000_000;
/// Largest `days` of history: a century of µs timestamps stays far inside `i64`.
pub const MAX_DAYS: i64 = 36_500;
/// Largest estimated size on disk of a dataset the tool will seed (1 TiB): the ceiling that
/// holds where free space cannot be seen (a PostgreSQL server's disk).
pub const MAX_DATASET_BYTES: u64 = 1 << 40;

/// The upper bound of each size field, with the reason shown when a scenario exceeds it.
pub fn field_max(field: &str) -> (i64, &'static str) {
    match field {
        "categories" => (
            MAX_CATEGORIES,
            "more categories than this would mostly be empty",
        ),
        "products" => (
            MAX_PRODUCTS,
            "seeding keeps ~20 bytes a product in memory, bounded to stay within 300 MB",
        ),
        "days" => (MAX_DAYS, "a century of history"),
        _ => (MAX_ROWS, "ids must stay far inside 64-bit integers"),
    }
}

/// Approximate bytes on disk the dataset needs while seeding, rows × an approximate size per
/// row (indexes included), for the backend that stores the most: write tables, read models and
/// the event log. Calibrated on SQLite at the large scale (scenarios/seed-large.toml: a 1.8 GB
/// file), doubled because the load's write-ahead log holds every page until the checkpoint at
/// commit, then rounded up. PostgreSQL's rows are somewhat larger, but its disk cannot be
/// checked from the client anyway.
pub fn estimated_bytes(spec: &DatasetSpec) -> u64 {
    // (rows, bytes per row: the write table's, its read model's and its events')
    let per_table: [(i64, u64); 6] = [
        (spec.categories, 100),
        (spec.products, 800),
        (spec.users, 200),
        // An order: its row, 2.5 lines, its summary, and 2.3 events with the lines in JSON.
        (spec.orders, 1_800),
        (spec.reviews, 500),
        (spec.price_changes, 500),
    ];
    per_table
        .iter()
        .map(|&(rows, bytes)| (rows.max(0) as u64).saturating_mul(bytes))
        .fold(0u64, u64::saturating_add)
}

/// The dataset would not fit in the free space where it is to be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the dataset needs about {} on disk, but {place} has {} free", gib(*.needed), gib(*.free))]
pub struct TooLargeForDisk {
    pub needed: u64,
    pub free: u64,
    pub place: String,
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Refuses a dataset whose estimated size exceeds `free` bytes at `place`.
pub fn check_fits(spec: &DatasetSpec, free: u64, place: &str) -> Result<(), TooLargeForDisk> {
    let needed = estimated_bytes(spec);
    if needed > free {
        return Err(TooLargeForDisk {
            needed,
            free,
            place: place.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dataset_larger_than_the_free_space_is_refused() {
        let spec = DatasetSpec {
            orders: 10_000_000,
            ..DatasetSpec::default()
        };
        let needed = estimated_bytes(&spec);
        assert!(
            needed > 10_000_000 * 1_000,
            "an order costs ~1 kB: {needed}"
        );
        assert!(check_fits(&spec, needed, "/data").is_ok());
        let err = check_fits(&spec, needed - 1, "/data").unwrap_err();
        assert_eq!(err.free, needed - 1);
        let msg = err.to_string();
        assert!(msg.contains("/data") && msg.contains("GiB free"), "{msg}");
    }

    #[test]
    fn the_largest_sizes_do_not_overflow_the_estimate() {
        let spec = DatasetSpec {
            categories: MAX_CATEGORIES,
            products: MAX_PRODUCTS,
            users: MAX_ROWS,
            orders: MAX_ROWS,
            reviews: MAX_ROWS,
            price_changes: MAX_ROWS,
            days: MAX_DAYS,
            extra_product_indexes: 0,
        };
        assert!(estimated_bytes(&spec) > MAX_DATASET_BYTES);
    }
}
