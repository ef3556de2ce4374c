//! Lag in parts, for a backend whose events travel through a broker: commit → published (the
//! relay's publish acknowledged), published → applied (the projector's commit), and commit →
//! applied over the same events. Each part is an HdrHistogram of every event of the run
//! (warm-up included, unlike the run's own `lag`), so the parts add up among themselves.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedReceiver;

use super::projector::{LagSample, LagTracker};
use crate::metrics::{duration_us, new_histogram, LatencyStats};

/// One part of the lag, summarized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagPart {
    /// `published` (commit → published), `delivered` (published → applied) or `end_to_end`
    /// (commit → applied).
    pub part: String,
    pub lag: LatencyStats,
}

const PARTS: [&str; 3] = ["published", "delivered", "end_to_end"];

pub struct LagParts {
    published: Arc<LagTracker>,
    delivered: Arc<LagTracker>,
    end_to_end: Arc<LagTracker>,
    inner: Mutex<Vec<(UnboundedReceiver<LagSample>, Histogram<u64>)>>,
}

impl LagParts {
    pub fn new() -> Arc<LagParts> {
        let (published, rp) = LagTracker::new();
        let (delivered, rd) = LagTracker::new();
        let (end_to_end, re) = LagTracker::new();
        Arc::new(LagParts {
            published,
            delivered,
            end_to_end,
            inner: Mutex::new(
                [rp, rd, re]
                    .into_iter()
                    .map(|r| (r, new_histogram()))
                    .collect(),
            ),
        })
    }

    /// The writer committed `seqs` at `at`.
    pub fn committed(&self, seqs: &[i64], at: Instant) {
        self.published.committed(seqs, at);
        self.end_to_end.committed(seqs, at);
    }

    /// The stream acknowledged `seqs` at `at`.
    pub fn published(&self, seqs: &[i64], at: Instant) {
        self.published.applied(seqs, at);
        self.delivered.committed(seqs, at);
        self.drain();
    }

    /// The trackers the projector reports its commits to.
    pub fn projector_trackers(&self) -> [Arc<LagTracker>; 2] {
        [self.delivered.clone(), self.end_to_end.clone()]
    }

    /// Moves the samples measured so far into the histograms (keeps memory flat).
    pub fn drain(&self) {
        let mut inner = self.inner.lock().expect("lag parts lock");
        for (rx, h) in inner.iter_mut() {
            while let Ok(s) = rx.try_recv() {
                h.saturating_record(duration_us(s.lag));
            }
        }
    }

    /// Every part so far.
    pub fn summary(&self) -> Vec<LagPart> {
        self.drain();
        let inner = self.inner.lock().expect("lag parts lock");
        PARTS
            .iter()
            .zip(inner.iter())
            .map(|(part, (_, h))| LagPart {
                part: part.to_string(),
                lag: LatencyStats::from_histogram(h),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parts_pair_their_own_ends() {
        let parts = LagParts::new();
        let t0 = Instant::now();
        parts.committed(&[1], t0);
        parts.published(&[1], t0 + Duration::from_millis(3));
        for t in parts.projector_trackers() {
            t.applied(&[1], t0 + Duration::from_millis(10));
        }
        let s = parts.summary();
        let p99 = |name: &str| s.iter().find(|p| p.part == name).unwrap().lag.p99_us;
        assert!((2_990..=3_010).contains(&p99("published")), "{s:?}");
        assert!((6_990..=7_010).contains(&p99("delivered")), "{s:?}");
        assert!((9_990..=10_010).contains(&p99("end_to_end")), "{s:?}");
    }
}
