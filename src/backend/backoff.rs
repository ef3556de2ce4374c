//! The retry policy of optimistic concurrency (`event-sourced`): how long a command that lost
//! a race on a stream version waits before it re-reads and re-decides, and when it gives up.
//!
//! **Full jitter** (each pause drawn uniformly from zero to a ceiling that doubles per failed
//! attempt, up to `cap`): writers that collided on a hot stream retry at different moments
//! instead of colliding again in lockstep, which a fixed schedule makes them do. The policy
//! is **bounded** twice: at most `max_attempts` attempts, and at most `budget` of pauses in
//! total (the last pause is cut to fit), so a command gives up within a known time.
//!
//! Why these numbers (BENCHMARKS.md, "Event sourcing"): a fixed 0.5 ms doubling schedule of
//! 8 attempts (≤ 64 ms of pauses) left 3–6 % of orders on one product hot under 8 writers
//! giving up; one append on PostgreSQL takes about a millisecond, so a stream serves a few
//! hundred appends per second and a writer behind 7 others needs tens of milliseconds, with a
//! tail beyond. 32 attempts within 250 ms covers that tail without letting a command hang.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A bounded, jittered exponential back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first pause.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// The most a command spends pausing, over all its retries.
    pub budget: Duration,
}

/// The policy the `event-sourced` backend uses.
pub const DEFAULT: Backoff = Backoff {
    base: Duration::from_micros(500),
    cap: Duration::from_millis(20),
    max_attempts: 32,
    budget: Duration::from_millis(250),
};

impl Backoff {
    /// The pause before the next attempt after `failed` attempts (>= 1) failed and `slept`
    /// was already spent pausing, for a `draw` in `[0, 1)`; `None`: give up.
    pub fn pause(&self, failed: u32, slept: Duration, draw: f64) -> Option<Duration> {
        if failed >= self.max_attempts || slept >= self.budget {
            return None;
        }
        let doubling = self
            .base
            .saturating_mul(1u32 << (failed - 1).min(20))
            .min(self.cap);
        let pause = doubling.mul_f64(draw.clamp(0.0, 1.0));
        Some(pause.min(self.budget - slept))
    }
}

/// Draws for the jitter: SplitMix64 over an atomic counter (no lock, no crate: the draws
/// need to be spread, not reproducible).
#[derive(Debug)]
pub struct Jitter(AtomicU64);

impl Jitter {
    pub fn seeded(seed: u64) -> Self {
        Jitter(AtomicU64::new(seed))
    }

    /// A number in `[0, 1)`.
    pub fn draw(&self) -> f64 {
        let mut z = self
            .0
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceilings_double_up_to_the_cap_and_jitter_scales_them() {
        let b = DEFAULT;
        let z = Duration::ZERO;
        assert_eq!(b.pause(1, z, 0.5), Some(Duration::from_micros(250)));
        assert_eq!(b.pause(2, z, 0.5), Some(Duration::from_micros(500)));
        assert_eq!(b.pause(3, z, 0.5), Some(MS));
        assert_eq!(b.pause(7, z, 0.5), Some(10 * MS), "capped at 20 ms");
        assert_eq!(b.pause(31, z, 0.5), Some(10 * MS));
        assert_eq!(b.pause(5, z, 0.0), Some(Duration::ZERO));
    }

    #[test]
    fn bounded_by_attempts_and_by_the_budget() {
        let b = DEFAULT;
        assert_eq!(
            b.pause(32, Duration::ZERO, 0.5),
            None,
            "the 32nd attempt was the last"
        );
        assert_eq!(b.pause(10, 250 * MS, 0.5), None, "budget spent");
        assert_eq!(
            b.pause(10, 245 * MS, 0.9),
            Some(5 * MS),
            "the last pause is cut to the budget"
        );
        // Whatever the draws, the pauses of one command add up to at most the budget.
        let j = Jitter::seeded(7);
        let (mut slept, mut failed) = (Duration::ZERO, 1);
        while let Some(p) = b.pause(failed, slept, j.draw()) {
            slept += p;
            failed += 1;
        }
        assert!(slept <= b.budget, "{slept:?}");
        assert!(failed <= b.max_attempts);
    }

    #[test]
    fn draws_are_spread_over_the_unit_interval() {
        let j = Jitter::seeded(1);
        let draws: Vec<f64> = (0..10_000).map(|_| j.draw()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        let low = draws.iter().filter(|d| **d < 0.1).count();
        assert!((800..1200).contains(&low), "{low} of 10000 below 0.1");
    }
}
