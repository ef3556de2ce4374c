//! Small statistics for judging differences: the mean of a sample with its variance, Welch's
//! t-test, and the Student t distribution (CDF and quantile) computed from the regularized
//! incomplete beta function — no statistics crate needed for this much.
//!
//! Used by `compare` (two runs, per-interval values) and by the verdict (two backends in one
//! run, per-interval values), so "lower" is only called lower when the noise allows it.

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

/// `ln Γ(x)` for `x > 0` (Lanczos approximation, g = 7, 9 terms; ~15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function `I_x(a, b)` for `a, b > 0`, `0 <= x <= 1`
/// (continued fraction, modified Lentz's method).
pub fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x.is_nan() || a <= 0.0 || b <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry
    // I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-15;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / away_from_zero(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        // Even step.
        h *= lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), &mut c, &mut d);
        // Odd step.
        let del = lentz_step(
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
            &mut c,
            &mut d,
        );
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// One step of the modified Lentz method with partial numerator `aa`: updates `c` and `d`
/// and returns the factor the fraction's value is multiplied by.
fn lentz_step(aa: f64, c: &mut f64, d: &mut f64) -> f64 {
    *d = 1.0 / away_from_zero(1.0 + aa * *d);
    *c = away_from_zero(1.0 + aa / *c);
    *d * *c
}

/// Keeps Lentz's denominators off zero.
fn away_from_zero(v: f64) -> f64 {
    const TINY: f64 = 1e-300;
    if v.abs() < TINY {
        TINY
    } else {
        v
    }
}

/// Two-sided p-value of a Student t statistic with `df` degrees of freedom:
/// `P(|T| >= |t|) = I_{df / (df + t²)}(df / 2, 1 / 2)`.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    inc_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
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

/// The `t > 0` with `P(|T| >= t) = alpha` (e.g. 2.228 for alpha 0.05 and df 10), by bisection.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0_f64;
        for n in 1..20 {
            // Γ(n) = (n - 1)!
            assert!(close(ln_gamma(n as f64), fact.ln(), 1e-10), "n = {n}");
            fact *= n as f64;
        }
        // Γ(1/2) = √π
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn inc_beta_known_values() {
        // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1 - x)^b.
        for &x in &[0.0, 0.1, 0.5, 0.9, 1.0] {
            assert!(close(inc_beta(1.0, 1.0, x), x, 1e-12));
            assert!(close(inc_beta(3.0, 1.0, x), x.powi(3), 1e-12));
            assert!(close(inc_beta(1.0, 4.0, x), 1.0 - (1.0 - x).powi(4), 1e-12));
        }
        // Symmetry.
        assert!(close(
            inc_beta(2.5, 7.0, 0.3),
            1.0 - inc_beta(7.0, 2.5, 0.7),
            1e-12
        ));
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
