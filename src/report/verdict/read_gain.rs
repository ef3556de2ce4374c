//! What read models buy at one read level: per query, the baseline's join (normalized) against
//! the best read model's p99, and the factor between them — a gap below the harness's floor is
//! no gain and no loss.

use super::{below_floor, below_resolution, by_backend, floor_of, p99, Level};
use crate::backend::{registry, BackendKind};
use crate::format::fmt_ms;
use crate::metrics::{MetricKey, OpName, Stat};

/// One query: the baseline's p99 against the lowest p99 among the backends with read models.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryGain {
    pub query: OpName,
    pub baseline_us: u64,
    pub best: BackendKind,
    pub best_us: u64,
    /// The larger of the two runs' read floors at p99, µs.
    pub floor_us: Option<u64>,
}

impl QueryGain {
    /// How many times faster the read model is (below 1: slower).
    pub fn ratio(&self) -> f64 {
        self.baseline_us as f64 / (self.best_us as f64).max(1.0)
    }

    /// Whether the gap is below the harness's floor (and so neither a gain nor a loss).
    pub fn below_floor(&self) -> bool {
        below_floor(self.baseline_us, self.best_us, self.floor_us)
    }

    /// `` `top_products` 152.3ms → 650µs (cqrs-async, 234.5× faster) ``.
    fn describe(&self) -> String {
        let k = self.best;
        let how = if self.below_floor() {
            format!(
                " ({k}): {}",
                below_resolution(Stat::P99, self.floor_us.unwrap_or_default())
            )
        } else {
            let ratio = self.ratio();
            if ratio >= 1.0 {
                format!(" ({k}, {ratio:.1}× faster)")
            } else {
                format!(" ({k}, {:.1}× slower)", 1.0 / ratio)
            }
        };
        format!(
            "`{}` {} → {}{how}",
            self.query,
            fmt_ms(self.baseline_us as f64),
            fmt_ms(self.best_us as f64)
        )
    }
}

/// Every query both the baseline and a backend with read models answered at `level`.
pub fn read_gains(level: &Level) -> Vec<QueryGain> {
    let runs = by_backend(level);
    let Some(base) = runs.get(&registry::baseline()) else {
        return Vec::new();
    };
    crate::metrics::queries_run(level.runs.iter().map(|r| &r.metrics))
        .into_iter()
        .filter_map(|q| {
            let key = MetricKey::read_named(q);
            let b = p99(base, key)?;
            let (k, v, run) = runs
                .iter()
                .filter(|(k, _)| k.has_read_models())
                .filter_map(|(k, r)| p99(r, key).map(|v| (*k, v, *r)))
                .min_by_key(|(_, v, _)| *v)?;
            Some(QueryGain {
                query: q,
                baseline_us: b,
                best: k,
                best_us: v,
                floor_us: floor_of(base, run, false, Stat::P99),
            })
        })
        .collect()
}

/// The query whose p99 the read models change most, counting only gaps above the floor.
pub fn largest(gains: &[QueryGain]) -> Option<&QueryGain> {
    gains
        .iter()
        .filter(|g| !g.below_floor())
        .max_by(|a, b| a.ratio().total_cmp(&b.ratio()))
}

/// The verdict's line: `read p99 per query, join (normalized) → best read model: …`.
pub fn line(gains: &[QueryGain]) -> Option<String> {
    (!gains.is_empty()).then(|| {
        format!(
            "read p99 per query, join ({}) → best read model: {}",
            registry::baseline(),
            gains
                .iter()
                .map(QueryGain::describe)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::QueryKind;

    fn gain(query: OpName, baseline_us: u64, best_us: u64, floor_us: u64) -> QueryGain {
        QueryGain {
            query,
            baseline_us,
            best: BackendKind::from_name("cqrs-sync").unwrap(),
            best_us,
            floor_us: Some(floor_us),
        }
    }

    #[test]
    fn the_largest_gain_counts_only_gaps_beyond_the_floor() {
        let gains = [
            // 400µs → 100µs is 4×, but a 500µs floor cannot resolve it.
            gain(QueryKind::ALL[0].into(), 400, 100, 500),
            // 30ms → 10ms: 3×, resolved.
            gain(QueryKind::ALL[1].into(), 30_000, 10_000, 500),
            // 2ms → 4ms: 2× slower.
            gain(QueryKind::ALL[2].into(), 2_000, 4_000, 500),
        ];
        let best = largest(&gains).unwrap();
        assert_eq!(best.query, QueryKind::ALL[1].into());
        assert!((best.ratio() - 3.0).abs() < 1e-12);
        let l = line(&gains).unwrap();
        assert!(l.starts_with("read p99 per query, join (normalized) → best read model: "));
        assert!(
            l.contains(
                "400µs → 100µs (cqrs-sync): below the harness's resolution (floor p99 500µs)"
            ),
            "{l}"
        );
        assert!(
            l.contains("30.0ms → 10.0ms (cqrs-sync, 3.0× faster)"),
            "{l}"
        );
        assert!(l.contains("2.0ms → 4.0ms (cqrs-sync, 2.0× slower)"), "{l}");
        assert!(largest(&gains[..1]).is_none());
        assert!(line(&[]).is_none());
    }
}
