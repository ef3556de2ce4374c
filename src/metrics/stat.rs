//! The statistics of a latency summary, typed: each one's name (as scenarios spell it), the
//! share of samples above it, how many samples it needs, and its value in a summary — in one
//! place, so thresholds, budgets, the floor and the verdict do not match strings their own way.

use super::latency::LatencyStats;

/// A statistic of a latency summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stat {
    P50,
    P90,
    P99,
    P999,
    P9999,
    Max,
    Mean,
}

impl Stat {
    /// Every statistic, in the order scenarios list them.
    pub const ALL: [Stat; 7] = [
        Stat::P50,
        Stat::P90,
        Stat::P99,
        Stat::P999,
        Stat::P9999,
        Stat::Max,
        Stat::Mean,
    ];

    /// The name in scenarios and reports: `p50`, `p999`, `max`, `mean`.
    pub fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::P9999 => "p9999",
            Stat::Max => "max",
            Stat::Mean => "mean",
        }
    }

    /// The statistic named `name`, as [`Stat::name`] spells it.
    pub fn from_name(name: &str) -> Option<Stat> {
        Stat::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The share of samples above a percentile (0.01 for p99); 0 for the max and the mean (any
    /// one sample moves them).
    pub fn tail(self) -> f64 {
        match self {
            Stat::P50 => 0.5,
            Stat::P90 => 0.1,
            Stat::P99 => 0.01,
            Stat::P999 => 0.001,
            Stat::P9999 => 0.0001,
            Stat::Max | Stat::Mean => 0.0,
        }
    }

    /// The fewest samples it needs before it says anything of its own: a p-quantile from
    /// fewer than `1 / (1 - p)` samples is simply the largest sample (p99 needs 100, p999
    /// 1000), and any statistic needs at least 20 (a median of a handful moves with every
    /// sample).
    pub fn min_samples(self) -> u64 {
        let tail = match self {
            Stat::P90 => 10,
            Stat::P99 => 100,
            Stat::P999 => 1_000,
            Stat::P9999 => 10_000,
            Stat::P50 | Stat::Max | Stat::Mean => 1,
        };
        tail.max(20)
    }

    /// Its value in `l`, µs, `None` without samples.
    pub fn of(self, l: &LatencyStats) -> Option<f64> {
        if l.count == 0 {
            return None;
        }
        Some(match self {
            Stat::P50 => l.p50_us as f64,
            Stat::P90 => l.p90_us as f64,
            Stat::P99 => l.p99_us as f64,
            Stat::P999 => l.p999_us as f64,
            Stat::P9999 => l.p9999_us as f64,
            Stat::Max => l.max_us as f64,
            Stat::Mean => l.mean_us,
        })
    }
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for s in Stat::ALL {
            assert_eq!(Stat::from_name(s.name()), Some(s));
        }
        assert_eq!(Stat::from_name("p42"), None);
        assert_eq!(Stat::from_name("P99"), None);
    }

    #[test]
    fn sample_needs_follow_the_quantile() {
        assert_eq!(Stat::P50.min_samples(), 20);
        assert_eq!(Stat::P90.min_samples(), 20);
        assert_eq!(Stat::P99.min_samples(), 100);
        assert_eq!(Stat::P999.min_samples(), 1_000);
        assert_eq!(Stat::Max.min_samples(), 20);
    }

    #[test]
    fn values_come_from_their_own_field() {
        let l = LatencyStats {
            count: 3,
            mean_us: 2.5,
            p50_us: 10,
            p90_us: 20,
            p99_us: 30,
            p999_us: 40,
            p9999_us: 50,
            max_us: 60,
            ..Default::default()
        };
        let got: Vec<f64> = Stat::ALL.iter().map(|s| s.of(&l).unwrap()).collect();
        assert_eq!(got, [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 2.5]);
        assert_eq!(Stat::P99.of(&LatencyStats::default()), None);
    }
}
