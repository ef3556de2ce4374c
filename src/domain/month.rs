//! The monthly report's time bucket and its cells. A month is a 30-day period counted from
//! the epoch (`month = at / MICROS_PER_MONTH`, integer division on both engines, like the
//! day bucket), so SQL, triggers and folds compute it alike without calendar functions.
//! A cell of the monthly sales read model is one (month, product, segment), packed into one
//! integer key; product 0 is the cell of whole orders, which counts each order once per
//! segment. Every part of a cell is in the order's event (its time, its user, its lines), so
//! the read model does not depend on the order events arrive in; categories are joined in
//! when the report is read.

use super::MICROS_PER_DAY;

/// Microseconds in one report month (30 days).
pub const MICROS_PER_MONTH: i64 = 30 * MICROS_PER_DAY;

/// The month bucket of a timestamp.
pub fn month_of(at_micros: i64) -> i64 {
    at_micros.div_euclid(MICROS_PER_MONTH)
}

/// The product of the whole-order cells.
pub const WHOLE_ORDER: i64 = 0;

/// Products a cell key has room for (`dataset::spec::MAX_PRODUCTS` and 0).
pub const CELL_PRODUCTS: i64 = 10_000_001;

/// Segments a cell key has room for.
pub const CELL_SEGMENTS: i64 = 8;

/// The key of a cell: `(month × CELL_PRODUCTS + product) × CELL_SEGMENTS + segment`.
pub fn cell_key(month: i64, product_id: i64, segment: i64) -> i64 {
    (month * CELL_PRODUCTS + product_id) * CELL_SEGMENTS + segment
}

/// The same key as SQL over three column expressions.
pub fn cell_key_sql(month: &str, product_id: &str, segment: &str) -> String {
    format!("(({month}) * {CELL_PRODUCTS} + ({product_id})) * {CELL_SEGMENTS} + ({segment})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_distinct_and_ordered_by_month_then_product_then_segment() {
        let m = month_of(1_767_225_600_000_000);
        assert_eq!(m, 20_454 / 30);
        assert!(cell_key(m, 0, 4) < cell_key(m, 1, 1));
        assert!(cell_key(m, 9_999_999, 4) < cell_key(m + 1, 0, 1));
        assert!(cell_key(m, 10_000_000, 7) < cell_key(m + 1, 0, 0));
        assert_eq!(month_of(-1), -1);
    }
}
