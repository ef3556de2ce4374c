//! Workloads: the deterministic op stream (mix, keys) and the driver that replays it.

pub mod driver;
pub mod floor;
pub mod keys;
pub mod mix;
pub mod pacer;
pub mod rng;
pub mod segment;
pub mod source;
