//! What readers saw of the order lines' product copies (`denormalized`) while price changes
//! rewrote them: how long a read of one product's lines took, and how many reads saw that
//! product half-rewritten (some lines carrying another price than the product in the same
//! snapshot), which a reader must never see. Counted here; the reads themselves are the
//! run's (`run`), on the backend's read pool.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::latency::{duration_us, new_histogram, record_us};
use super::LatencyStats;

/// The reads of product lines made during a run's measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RewriteReads {
    /// Reads that answered.
    pub reads: u64,
    /// Reads that saw a product half-rewritten.
    pub torn: u64,
    /// Reads that failed (database errors).
    pub errors: u64,
    /// The lines a read found for its product, on average (how much a rewrite of that
    /// product touches).
    pub mean_lines: f64,
    /// Start to answer of each read (closed loop: no intended start to lag behind).
    pub latency: LatencyStats,
}

/// Counts reads as they answer.
pub struct RewriteReadsRecorder {
    hist: Histogram<u64>,
    torn: u64,
    errors: u64,
    lines: u64,
}

impl Default for RewriteReadsRecorder {
    fn default() -> Self {
        RewriteReadsRecorder {
            hist: new_histogram(),
            torn: 0,
            errors: 0,
            lines: 0,
        }
    }
}

impl RewriteReadsRecorder {
    /// A read that answered after `took`, finding `lines` lines of which `stale` carried
    /// another price than the product.
    pub fn record(&mut self, took: Duration, lines: i64, stale: i64) {
        record_us(&mut self.hist, duration_us(took));
        self.lines += lines.max(0) as u64;
        if stale > 0 {
            self.torn += 1;
        }
    }

    pub fn record_error(&mut self) {
        self.errors += 1;
    }

    pub fn finish(&self) -> RewriteReads {
        let reads = self.hist.len();
        RewriteReads {
            reads,
            torn: self.torn,
            errors: self.errors,
            mean_lines: if reads == 0 {
                0.0
            } else {
                self.lines as f64 / reads as f64
            },
            latency: LatencyStats::from_histogram(&self.hist),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_torn_reads_and_errors_apart_from_clean_ones() {
        let mut r = RewriteReadsRecorder::default();
        assert_eq!(r.finish().reads, 0);
        assert_eq!(r.finish().mean_lines, 0.0);
        r.record(Duration::from_millis(2), 10, 0);
        r.record(Duration::from_millis(4), 20, 3);
        r.record_error();
        let f = r.finish();
        assert_eq!((f.reads, f.torn, f.errors), (2, 1, 1));
        assert_eq!(f.mean_lines, 15.0);
        assert!(
            f.latency.max_us >= 4_000 && f.latency.min_us <= 2_000,
            "{f:?}"
        );
    }
}
