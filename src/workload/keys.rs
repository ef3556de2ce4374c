//! Key choice: which product or user an op touches. Uniform, Zipf (a few keys get most of the
//! traffic) or hotspot (a fixed share of ops go to a fixed share of keys). Hot keys are spread
//! over the id range by a fixed permutation, so "hot" does not mean "lowest ids".

use rand_distr::{Distribution, Zipf};
use serde::{Deserialize, Serialize};

use super::rng::Rng;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyDist {
    #[default]
    Uniform,
    Zipf {
        exponent: f64,
    },
    Hotspot {
        /// Share of keys that are hot, in (0, 1).
        hot_keys: f64,
        /// Share of ops that go to the hot keys, in (0, 1].
        hot_ops: f64,
    },
}

/// Samples keys 1..=n from a distribution. Zipf is `rand_distr`'s rejection sampler: constant
/// memory whatever n.
#[derive(Debug, Clone)]
pub struct KeySampler {
    n: i64,
    dist: KeyDist,
    zipf: Option<Zipf<f64>>,
    stride: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl KeySampler {
    pub fn new(dist: KeyDist, n: i64) -> Self {
        let n = n.max(1);
        // The scenario parser accepts only exponents > 0, so `new` cannot fail there; a
        // sampler built with a bad exponent by hand falls back to uniform.
        let zipf = match &dist {
            KeyDist::Zipf { exponent } => Zipf::new(n as u64, *exponent).ok(),
            _ => None,
        };
        // A stride coprime with n permutes ranks over the whole id range.
        let mut stride = (n as f64 * 0.618_033_988_7) as i64 | 1;
        while n > 1 && gcd(stride, n) != 1 {
            stride += 2;
        }
        KeySampler {
            n,
            dist,
            zipf,
            stride: stride.max(1),
        }
    }

    pub fn n(&self) -> i64 {
        self.n
    }

    /// The key of popularity rank `rank` (0 = hottest).
    fn key_of_rank(&self, rank: i64) -> i64 {
        ((rank as i128 * self.stride as i128) % self.n as i128) as i64 + 1
    }

    pub fn sample(&self, rng: &mut Rng) -> i64 {
        let rank = match &self.dist {
            KeyDist::Uniform => return rng.range(1, self.n),
            KeyDist::Zipf { .. } => match &self.zipf {
                // Zipf draws ranks 1..=n as floats.
                Some(zipf) => (zipf.sample(rng) as i64 - 1).clamp(0, self.n - 1),
                None => return rng.range(1, self.n),
            },
            KeyDist::Hotspot { hot_keys, hot_ops } => {
                let hot = ((self.n as f64 * hot_keys).ceil() as i64).clamp(1, self.n);
                if rng.chance(*hot_ops) || hot == self.n {
                    rng.range(0, hot - 1)
                } else {
                    rng.range(hot, self.n - 1)
                }
            }
        };
        self.key_of_rank(rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top_share(s: &KeySampler, draws: usize) -> f64 {
        let mut counts = vec![0usize; s.n() as usize + 1];
        let mut rng = Rng::new(3);
        for _ in 0..draws {
            let k = s.sample(&mut rng);
            assert!((1..=s.n()).contains(&k));
            counts[k as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts.iter().take((s.n() / 10) as usize).sum::<usize>() as f64 / draws as f64
    }

    #[test]
    fn skew_concentrates_traffic() {
        let uniform = top_share(&KeySampler::new(KeyDist::Uniform, 1000), 50_000);
        let zipf = top_share(
            &KeySampler::new(KeyDist::Zipf { exponent: 1.1 }, 1000),
            50_000,
        );
        let hot = top_share(
            &KeySampler::new(
                KeyDist::Hotspot {
                    hot_keys: 0.1,
                    hot_ops: 0.9,
                },
                1000,
            ),
            50_000,
        );
        assert!(uniform < 0.15, "uniform top-10% share {uniform}");
        assert!(zipf > 0.6, "zipf top-10% share {zipf}");
        assert!((0.85..0.95).contains(&hot), "hotspot top-10% share {hot}");
    }
}
