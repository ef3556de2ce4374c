//! Every document of the search index against the product catalog's truth: the normalized
//! tables, or on an event-store database the fold over the store (`verify`'s rules for the
//! SQL read models, applied to the index).

use std::collections::BTreeMap;

use super::{SearchError, SearchIndex};
use crate::projection::{CatalogRow, RowDiff};

/// What comparing the index with the truth found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexCheck {
    pub rows_expected: usize,
    /// Documents in the index (a product with two counts twice).
    pub rows_actual: usize,
    pub mismatches: usize,
    pub first_diffs: Vec<String>,
}

/// Compares the index's documents with `expected`, product by product.
pub fn check_index(
    index: &SearchIndex,
    expected: &BTreeMap<i64, CatalogRow>,
    shown: usize,
) -> Result<IndexCheck, SearchError> {
    let (actual, documents) = index.all_rows()?;
    let mut diffs: Vec<RowDiff> = Vec::new();
    for (k, a) in &actual {
        if expected.get(k) != Some(a) {
            diffs.push(RowDiff {
                table: "product_search".into(),
                key: *k,
                actual: Some(format!("{a:?}")),
                expected: expected.get(k).map(|e| format!("{e:?}")),
            });
        }
    }
    for (k, e) in expected {
        if !actual.contains_key(k) {
            diffs.push(RowDiff {
                table: "product_search".into(),
                key: *k,
                actual: None,
                expected: Some(format!("{e:?}")),
            });
        }
    }
    // Two documents for one product: the replacement by id failed.
    let duplicated = documents - actual.len();
    Ok(IndexCheck {
        rows_expected: expected.len(),
        rows_actual: documents,
        mismatches: diffs.len() + duplicated,
        first_diffs: diffs.iter().take(shown).map(|d| d.to_string()).collect(),
    })
}
