//! The product search read model, in an embedded tantivy index beside the database (issue
//! [search]). `index` is the index itself (schema, documents keyed by product id, commits that
//! carry the checkpoint), `store` feeds it through the `ReadStore` seam with the product
//! catalog's pure fold (the one projection definition), `query` answers `text_search` from
//! it, and `verify` compares every document with the truth.

pub mod index;
pub mod query;
pub mod store;
pub mod verify;

use std::path::{Path, PathBuf};

pub use index::{index_dir, SearchIndex};
pub use store::SearchStore;

/// Removes the search index of `db` at `dir` (default: `index_dir`), if there is one: for a
/// database seeded anew or dropped, whose index describes data that is gone.
pub fn discard(db: &crate::db::Db, dir: Option<&Path>) -> std::io::Result<()> {
    let dir = index_dir(db, dir);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

/// Why the search index failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("search index {0} was made with another schema; rebuild it (`cqrs-bench rebuild`)")]
    Schema(PathBuf),
    #[error("search index commit payload {0:?} is not a checkpoint: {1}")]
    Payload(String, String),
    #[error("search index document lacks a field")]
    Document,
    #[error("search index holds {1} documents for product {0}")]
    Duplicate(i64, usize),
    #[error("search index task failed: {0}")]
    Task(String),
}

impl SearchError {
    fn io(dir: &Path, e: std::io::Error) -> Self {
        SearchError::Io(dir.to_path_buf(), e)
    }

    /// 3: the index could not be read or written.
    pub fn exit_code(&self) -> u8 {
        3
    }
}
