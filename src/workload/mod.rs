//! Workloads: the deterministic op stream (mix, keys) and the driver that replays it.

pub mod driver;
pub mod keys;
pub mod mix;
pub mod rng;
pub mod runner;
