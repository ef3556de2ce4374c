//! Latency histograms (HdrHistogram, microseconds) and their serializable summary.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Lowest value a latency histogram tells apart: 1 µs. A 0 µs sample is recorded as 1 µs.
pub const LOWEST_US: u64 = 1;
/// Highest value a latency histogram tracks: one hour. Larger samples are clamped to it.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by every histogram (0.1 % relative resolution).
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Ticks per half distance to 100 % used for [`LatencyStats::spectrum`] (HdrHistogram's
/// "percentile distribution" layout).
pub const SPECTRUM_TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Most points kept in a [`LatencyStats::spectrum`]; longer spectra are thinned evenly
/// (the first and the last point are always kept).
pub const SPECTRUM_MAX_POINTS: usize = 100;

/// A fresh, empty latency histogram: 1 µs .. 1 h, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy every precondition (low >= 1, high >= 2 * low,
    // sigfig <= 5), so creation cannot fail.
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// A duration in whole microseconds, clamped to the histogram range `[LOWEST_US, HIGHEST_US]`.
pub fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(LOWEST_US, HIGHEST_US)
}

/// Records `us` (clamped to the histogram range); never panics.
pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(LOWEST_US, HIGHEST_US));
}

/// Adds `src` into `dst`. Both come from [`new_histogram`], so the addition cannot fail;
/// should it ever, the samples are re-recorded one value bucket at a time (saturating).
pub(crate) fn add_histogram(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    if dst.add(src).is_err() {
        for v in src.iter_recorded() {
            dst.saturating_record_n(
                v.value_iterated_to().clamp(LOWEST_US, HIGHEST_US),
                v.count_at_value(),
            );
        }
    }
}

/// Rounds `x` to a multiple of `1 / scale` (0 for NaN or infinities). Every float in the results
/// goes through this with a scale that keeps at most 15 significant digits for realistic
/// values, so `results.json` round-trips exactly (serde_json parses such numbers exactly; longer
/// ones can come back one ulp off) and does not print noise like `91.25000000000001`.
pub(crate) fn round_to(x: f64, scale: f64) -> f64 {
    if x.is_finite() {
        (x * scale).round() / scale
    } else {
        0.0
    }
}

/// (p50, p99, max) of a histogram in µs; all zeros when it is empty.
pub(crate) fn p50_p99_max(h: &Histogram<u64>) -> (u64, u64, u64) {
    if h.is_empty() {
        return (0, 0, 0);
    }
    let mut q = h.value_at_quantiles([0.5, 0.99]);
    let p50 = q.next().unwrap_or(0);
    let p99 = q.next().unwrap_or(0);
    (p50, p99, h.max())
}

/// Summary of one latency histogram. All values are microseconds, as reported by the
/// histogram: a value stands for its 0.1 % wide bucket (the bucket's highest value, except
/// `min_us`, which is the lowest). An empty histogram gives all zeros and an empty spectrum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min_us: u64,
    /// Arithmetic mean of the samples (rounded to 0.001 µs).
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Largest sample.
    pub max_us: u64,
    /// Percentile spectrum for an HdrHistogram-style plot (x: percentile on a log
    /// `1 / (1 - p)` axis, y: latency): `(percentile in 0..=100, value_us)` pairs, both
    /// non-decreasing; percentiles rounded to 1e-9. Ticks halve their spacing on each halving of the distance to 100 %
    /// ([`SPECTRUM_TICKS_PER_HALF_DISTANCE`] per half), at most [`SPECTRUM_MAX_POINTS`]
    /// points; the last point is `(100.0, max_us)` (a plotter on a log axis must drop or cap
    /// it, as HdrHistogram's own plotter does).
    pub spectrum: Vec<(f64, u64)>,
}

impl LatencyStats {
    /// Summarizes a histogram (see the field docs). Never panics.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let mut q = h.value_at_quantiles([0.5, 0.9, 0.99, 0.999, 0.9999]);
        let mut next = || q.next().unwrap_or(0);
        let (p50_us, p90_us, p99_us, p999_us, p9999_us) = (next(), next(), next(), next(), next());
        let mean = h.mean();
        LatencyStats {
            count: h.len(),
            min_us: h.min(),
            mean_us: round_to(mean, 1e3),
            p50_us,
            p90_us,
            p99_us,
            p999_us,
            p9999_us,
            max_us: h.max(),
            spectrum: spectrum(h),
        }
    }
}

/// The percentile spectrum of a non-empty histogram, thinned to at most
/// [`SPECTRUM_MAX_POINTS`].
fn spectrum(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    let all: Vec<(f64, u64)> = h
        .iter_quantiles(SPECTRUM_TICKS_PER_HALF_DISTANCE)
        .map(|v| {
            (
                round_to(v.quantile_iterated_to() * 100.0, 1e9),
                v.value_iterated_to(),
            )
        })
        .collect();
    thin(all, SPECTRUM_MAX_POINTS)
}

/// Keeps every `stride`-th point plus the last one, so that at most `max` remain. The ticks
/// are log-spaced towards 100 %, so even thinning keeps the log spacing.
fn thin(points: Vec<(f64, u64)>, max: usize) -> Vec<(f64, u64)> {
    if points.len() <= max || max < 2 {
        return points;
    }
    let last = points.len() - 1;
    let stride = last.div_ceil(max - 1);
    points
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % stride == 0 || *i == last)
        .map(|(_, p)| p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_gives_zeros() {
        let s = LatencyStats::from_histogram(&new_histogram());
        assert_eq!(s, LatencyStats::default());
        assert_eq!(s.count, 0);
        assert_eq!(s.max_us, 0);
        assert!(s.spectrum.is_empty());
    }

    #[test]
    fn out_of_range_values_are_clamped_not_panicking() {
        let mut h = new_histogram();
        record_us(&mut h, 0);
        record_us(&mut h, u64::MAX);
        h.saturating_record(duration_us(Duration::from_secs(7_200)));
        h.saturating_record(duration_us(Duration::ZERO));
        let s = LatencyStats::from_histogram(&h);
        assert_eq!(s.count, 4);
        assert_eq!(s.min_us, 1);
        assert!(h.equivalent(s.max_us, HIGHEST_US), "max {}", s.max_us);
    }

    #[test]
    fn spectrum_is_capped_monotone_and_ends_at_max() {
        let mut h = new_histogram();
        // A wide distribution over 1M samples would give ~200 ticks before thinning.
        for i in 1..=1_000_000u64 {
            record_us(&mut h, i % 50_000 + 1 + (i % 997) * 1_000);
        }
        let s = LatencyStats::from_histogram(&h);
        assert!(
            s.spectrum.len() <= SPECTRUM_MAX_POINTS,
            "{}",
            s.spectrum.len()
        );
        assert!(s.spectrum.len() >= 50, "{}", s.spectrum.len());
        for w in s.spectrum.windows(2) {
            assert!(w[0].0 <= w[1].0 && w[0].1 <= w[1].1, "{w:?}");
        }
        let last = *s.spectrum.last().unwrap();
        assert_eq!(last, (100.0, s.max_us));
        assert!(s.p50_us <= s.p90_us && s.p90_us <= s.p99_us && s.p99_us <= s.p999_us);
        assert!(s.p999_us <= s.p9999_us && s.p9999_us <= s.max_us);
    }

    #[test]
    fn thin_keeps_first_and_last() {
        let pts: Vec<(f64, u64)> = (0..250).map(|i| (i as f64, i)).collect();
        let t = thin(pts, 100);
        assert!(t.len() <= 100);
        assert_eq!(t.first(), Some(&(0.0, 0)));
        assert_eq!(t.last(), Some(&(249.0, 249)));
    }
}
