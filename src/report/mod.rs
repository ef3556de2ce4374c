//! Presenting results: the summary table (plots and the verdict come with the report issue).

pub mod table;
