//! Read-your-writes at the think times a scenario gives: a probe looks once the write has
//! been committed for each think time (a user's pause before reading), and each look either
//! saw the write or did not. Counted per think time, so the report can say how many users
//! still miss their write after a realistic pause, not only right after it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::latency::round_to;

/// One look of a probe: how long after the commit, and whether the write was visible then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RywLook {
    pub think: Duration,
    pub visible: bool,
}

/// The probes' looks at one think time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RywAtThinkTime {
    /// The think time: how long after the write's commit the probe looked, in ms.
    pub think_ms: f64,
    /// Probes that looked at this think time.
    pub probes: u64,
    /// Of those, looks that did not see the write.
    pub misses: u64,
    /// `misses / probes` (0 when there were no probes).
    pub miss_share: f64,
}

impl RywAtThinkTime {
    /// The looks `think_ms` after the commit, `misses` of `probes` not seeing the write; the
    /// share derived (0 without probes), rounded so the figures stay value-stable.
    pub fn new(think_ms: f64, probes: u64, misses: u64) -> Self {
        RywAtThinkTime {
            think_ms: round_to(think_ms, 1e6),
            probes,
            misses,
            miss_share: if probes > 0 {
                round_to(misses as f64 / probes as f64, 1e12)
            } else {
                0.0
            },
        }
    }
}

/// Looks and misses per think time.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThinkTimeAcc {
    by_think: BTreeMap<Duration, (u64, u64)>,
}

impl ThinkTimeAcc {
    pub fn record(&mut self, looks: &[RywLook]) {
        for look in looks {
            let (probes, misses) = self.by_think.entry(look.think).or_default();
            *probes += 1;
            if !look.visible {
                *misses += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &ThinkTimeAcc) {
        for (think, (probes, misses)) in &other.by_think {
            let (p, m) = self.by_think.entry(*think).or_default();
            *p += probes;
            *m += misses;
        }
    }

    /// The counts behind stats written before (`merge` adds parts' counts this way).
    pub fn from_stats(stats: &[RywAtThinkTime]) -> ThinkTimeAcc {
        let mut acc = ThinkTimeAcc::default();
        for s in stats {
            let think = Duration::from_micros((s.think_ms * 1e3).round() as u64);
            let (p, m) = acc.by_think.entry(think).or_default();
            *p += s.probes;
            *m += s.misses;
        }
        acc
    }

    /// Ascending by think time.
    pub fn stats(&self) -> Vec<RywAtThinkTime> {
        self.by_think
            .iter()
            .map(|(think, &(probes, misses))| {
                RywAtThinkTime::new(think.as_secs_f64() * 1e3, probes, misses)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(ms: u64, visible: bool) -> RywLook {
        RywLook {
            think: Duration::from_millis(ms),
            visible,
        }
    }

    #[test]
    fn counts_misses_per_think_time_in_ascending_order() {
        let mut acc = ThinkTimeAcc::default();
        // Three probes: missed at 0 and seen at 200 ms; missed at both; seen at both.
        acc.record(&[look(0, false), look(200, true)]);
        acc.record(&[look(0, false), look(200, false)]);
        acc.record(&[look(0, true), look(200, true)]);
        let mut other = ThinkTimeAcc::default();
        other.record(&[look(1000, true)]);
        acc.merge(&other);
        let stats = acc.stats();
        let rows: Vec<(f64, u64, u64)> = stats
            .iter()
            .map(|s| (s.think_ms, s.probes, s.misses))
            .collect();
        assert_eq!(rows, [(0.0, 3, 2), (200.0, 3, 1), (1000.0, 1, 0)]);
        assert_eq!(stats[0].miss_share, round_to(2.0 / 3.0, 1e12));
        assert_eq!(stats[1].miss_share, round_to(1.0 / 3.0, 1e12));
        assert_eq!(stats[2].miss_share, 0.0);
    }

    #[test]
    fn a_fractional_think_time_keeps_its_microseconds() {
        let mut acc = ThinkTimeAcc::default();
        acc.record(&[RywLook {
            think: Duration::from_micros(1500),
            visible: true,
        }]);
        assert_eq!(acc.stats()[0].think_ms, 1.5);
    }
}
