//! cqrs-bench: replays order/review/read workloads against a normalized model and two CQRS
//! variants on SQLite and PostgreSQL, measures what each costs, and checks that every read
//! model is correct. See DESIGN.md in the project's shared notes for the architecture.

pub mod backend;
pub mod broker;
pub mod check;
pub mod cli;
pub mod convergence;
pub mod dataset;
pub mod db;
pub mod domain;
pub mod format;
pub mod metrics;
pub mod pack;
pub mod projection;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod toml_path;
pub mod verify;
pub mod workload;
