//! Small statistics for judging differences: the mean of a sample with its variance and Welch's
//! t-test. The Student t distribution comes from `statrs`.
//!
//! Used by `compare` (two runs, per-interval values) and by the verdict (two backends in one
//! run, per-interval values), so "lower" is only called lower when the noise allows it.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Significance level used throughout the report: a difference is significant when the
/// two-sided p-value is below this.
pub const ALPHA: f64 = 0.05;

/// Summary of a sample: size, mean and (unbiased) variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub n: usize,
    pub mean: f64,
    /// Sample variance (divisor `n - 1`); 0 for fewer than two values.
    pub var: f64,
}

impl Sample {
    /// Summarizes `values` (non-finite values are ignored).
    pub fn of(values: &[f64]) -> Sample {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        if n == 0 {
            return Sample {
                n: 0,
                mean: 0.0,
                var: 0.0,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Sample { n, mean, var }
    }

    /// Standard error of the mean.
    pub fn std_err(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.var / self.n as f64).sqrt()
        }
    }
}

/// Outcome of Welch's unequal-variance t-test of `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// `mean(b) - mean(a)`.
    pub diff: f64,
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// 95 % confidence interval of `diff`.
    pub ci95: (f64, f64),
}

impl Welch {
    pub fn significant(&self) -> bool {
        self.p < ALPHA
    }
}

/// Welch's t-test of `b` against `a`; `None` when either sample has fewer than two values.
///
/// When both variances are zero the test degenerates: equal means give p = 1, different means
/// p = 0 (every value of one sample differs from every value of the other).
pub fn welch(a: &Sample, b: &Sample) -> Option<Welch> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let diff = b.mean - a.mean;
    let (qa, qb) = (a.var / a.n as f64, b.var / b.n as f64);
    let se2 = qa + qb;
    if se2 <= 0.0 || !se2.is_finite() {
        let df = (a.n + b.n - 2) as f64;
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        let t = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return Some(Welch {
            diff,
            t,
            df,
            p,
            ci95: (diff, diff),
        });
    }
    let se = se2.sqrt();
    let t = diff / se;
    let df = se2 * se2 / (qa * qa / (a.n - 1) as f64 + qb * qb / (b.n - 1) as f64);
    let p = t_two_sided_p(t, df);
    let half = t_quantile_two_sided(ALPHA, df) * se;
    Some(Welch {
        diff,
        t,
        df,
        p,
        ci95: (diff - half, diff + half),
    })
}

/// Two-sided p-value of a Student t statistic with `df` degrees of freedom: `P(|T| >= |t|)`.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    // The lower tail of -|t|, doubled: no `1 - cdf` cancellation for large |t|.
    (2.0 * student_t(df).cdf(-t.abs())).clamp(0.0, 1.0)
}

/// The standard Student t distribution with `df > 0` degrees of freedom.
fn student_t(df: f64) -> StudentsT {
    StudentsT::new(0.0, 1.0, df).expect("df > 0 was checked by the caller")
}

/// The Student t CDF `P(T <= t)`.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = t_two_sided_p(t, df) / 2.0;
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `t > 0` with `P(|T| >= t) = alpha` (e.g. 2.228 for alpha 0.05 and df 10), by bisection
/// on the p-value: `statrs`'s `inverse_cdf` is off by 1e-4 at a million degrees of freedom.
pub fn t_quantile_two_sided(alpha: f64, df: f64) -> f64 {
    if !(alpha > 0.0 && alpha < 1.0) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while t_two_sided_p(hi, df) > alpha {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided_p(mid, df) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Values printed by the hand-written incomplete beta this module used before `statrs`.
#[cfg(test)]
#[path = "stats_recorded.rs"]
mod recorded;

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_distribution_matches_tables() {
        // Cauchy (df = 1): P(T <= 1) = 0.75.
        assert!(close(t_cdf(1.0, 1.0), 0.75, 1e-12));
        // df = 2 has a closed form: CDF = 1/2 + t / (2 sqrt(2 + t²)).
        for &t in &[-3.0, -0.5, 0.0, 0.7, 4.0] {
            let exact = 0.5 + t / (2.0 * (2.0_f64 + t * t).sqrt());
            assert!(close(t_cdf(t, 2.0), exact, 1e-12), "t = {t}");
        }
        // Critical values from standard tables (two-sided 5 %).
        for &(df, crit) in &[
            (1.0, 12.706),
            (5.0, 2.571),
            (10.0, 2.228),
            (30.0, 2.042),
            (1e6, 1.960),
        ] {
            assert!(
                close(t_quantile_two_sided(0.05, df), crit, 1e-3),
                "df = {df}"
            );
            assert!(close(t_two_sided_p(crit, df), 0.05, 2e-4), "df = {df}");
        }
        // Two-sided 1 % at df = 20.
        assert!(close(t_quantile_two_sided(0.01, 20.0), 2.845, 1e-3));
    }

    #[test]
    fn welch_textbook_example() {
        // Welch (1947)-style check against a hand computation.
        let a = Sample::of(&[
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ]);
        let b = Sample::of(&[
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ]);
        let w = welch(&a, &b).unwrap();
        // Known result: t = 2.46, df = 24.99, p = 0.021.
        assert!(close(w.t, 2.46, 0.01), "t = {}", w.t);
        assert!(close(w.df, 24.99, 0.05), "df = {}", w.df);
        assert!(close(w.p, 0.021, 0.001), "p = {}", w.p);
        assert!(w.ci95.0 > 0.0 && w.ci95.1 > w.ci95.0);
    }

    #[test]
    fn welch_degenerate_cases() {
        let a = Sample::of(&[5.0, 5.0, 5.0]);
        let w = welch(&a, &a).unwrap();
        assert_eq!((w.p, w.t), (1.0, 0.0));
        let b = Sample::of(&[6.0, 6.0, 6.0]);
        let w = welch(&a, &b).unwrap();
        assert_eq!(w.p, 0.0);
        assert!(w.significant());
        assert!(welch(&Sample::of(&[1.0]), &a).is_none());
        // Identical samples with spread: no difference at all.
        let c = Sample::of(&[1.0, 2.0, 4.0, 8.0]);
        let w = welch(&c, &c).unwrap();
        assert_eq!(w.diff, 0.0);
        assert!(close(w.p, 1.0, 1e-12));
    }
}
