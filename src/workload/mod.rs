//! Workloads: the deterministic op stream (mix, keys) and the driver that replays it.

pub mod rng;
pub mod keys;
pub mod mix;
