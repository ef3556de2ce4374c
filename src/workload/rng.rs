//! The op stream's RNG: ChaCha8 from `rand_chacha`, whose output is value-stable for a pinned
//! version (see Cargo.toml), so the same seed gives the same op stream in every build. Each
//! `(seed, stream, index)` is its own ChaCha stream, so op *i* is a pure function of the
//! seed and *i*, whatever ran before it.

use rand::{Rng as _, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
pub struct Rng {
    inner: ChaCha8Rng,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng::derive(seed, 0, 0)
    }

    /// An independent stream for `(seed, stream, index)`, e.g. op *i* of a run: the seed and
    /// the stream are the key, the index is ChaCha's stream number.
    pub fn derive(seed: u64, stream: u64, index: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&stream.to_le_bytes());
        let mut inner = ChaCha8Rng::from_seed(key);
        inner.set_stream(index);
        Rng { inner }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.inner.gen()
    }

    /// Uniform in [lo, hi] (inclusive); `lo` when the range is empty.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        self.inner.gen_range(lo..=hi)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

/// So `rand_distr`'s distributions can draw from it.
impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.inner.fill_bytes(dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.inner.try_fill_bytes(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_reproducible_and_seed_sensitive() {
        let a: Vec<u64> = (0..4).map(|i| Rng::derive(7, 1, i).next_u64()).collect();
        let b: Vec<u64> = (0..4).map(|i| Rng::derive(7, 1, i).next_u64()).collect();
        let c: Vec<u64> = (0..4).map(|i| Rng::derive(8, 1, i).next_u64()).collect();
        let d: Vec<u64> = (0..4).map(|i| Rng::derive(7, 2, i).next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert!(
            a.windows(2).all(|w| w[0] != w[1]),
            "indexes give distinct streams"
        );
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let v = r.range(3, 5);
            assert!((3..=5).contains(&v));
        }
    }
}
