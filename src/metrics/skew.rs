//! Skew between two read sides applied separately (the SQL read models and the search
//! index): the difference of their checkpoints, in events of the log, sampled during a run.
//! A sample of 0 means both show the same writes; positive, the index is behind.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// What the samples showed. All zero when nothing was sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkewStats {
    pub samples: u64,
    /// Samples in which the two sides covered different events.
    pub apart: u64,
    pub max_events: i64,
    pub min_events: i64,
    pub p99_abs_events: u64,
}

/// Collects samples (an exact histogram of the absolute difference: memory stays flat).
#[derive(Debug)]
pub struct SkewAcc {
    abs: Histogram<u64>,
    stats: SkewStats,
}

impl Default for SkewAcc {
    fn default() -> Self {
        SkewAcc {
            abs: Histogram::new(3).expect("3 significant digits are valid"),
            stats: SkewStats::default(),
        }
    }
}

impl SkewAcc {
    /// One sample: the index is `behind` events behind the SQL read models (negative: ahead).
    pub fn record(&mut self, behind: i64) {
        let s = &mut self.stats;
        if s.samples == 0 {
            (s.max_events, s.min_events) = (behind, behind);
        }
        s.samples += 1;
        s.apart += u64::from(behind != 0);
        s.max_events = s.max_events.max(behind);
        s.min_events = s.min_events.min(behind);
        self.abs.saturating_record(behind.unsigned_abs());
    }

    /// Adds another accumulator's samples.
    pub fn merge(&mut self, other: &SkewAcc) {
        if other.stats.samples == 0 {
            return;
        }
        let (a, b) = (&mut self.stats, &other.stats);
        if a.samples == 0 {
            (a.max_events, a.min_events) = (b.max_events, b.min_events);
        }
        a.samples += b.samples;
        a.apart += b.apart;
        a.max_events = a.max_events.max(b.max_events);
        a.min_events = a.min_events.min(b.min_events);
        let _ = self.abs.add(&other.abs);
    }

    pub fn stats(&self) -> SkewStats {
        SkewStats {
            p99_abs_events: if self.stats.samples > 0 {
                self.abs.value_at_quantile(0.99)
            } else {
                0
            },
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_counts_apart_samples_and_keeps_extremes() {
        let mut acc = SkewAcc::default();
        assert_eq!(acc.stats(), SkewStats::default());
        for d in [0, 3, -2, 0, 40] {
            acc.record(d);
        }
        let s = acc.stats();
        assert_eq!((s.samples, s.apart), (5, 3));
        assert_eq!((s.min_events, s.max_events), (-2, 40));
        assert_eq!(s.p99_abs_events, 40);
    }
}
