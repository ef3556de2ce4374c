//! The dataset: its sizes (`spec`) and a pure, streaming generator of its rows (`generator`).
//! Loading the rows into a database is `db::load`'s job; nothing here touches a database.

pub mod generator;
pub mod spec;

pub use generator::{batches, Dataset, BATCH_ROWS};
pub use spec::{
    category_name, first_free_ids, product_name, DatasetSpec, FreeIds, NAME_WORDS, START_AT,
};
