//! A segment of the op stream (`--segment I/N`): the share one of N processes drives.
//!
//! Op *i* of a lane belongs to segment `(i mod N) + 1` and keeps the intended start it has in
//! the full-rate schedule, so each process runs 1/N of every rate, the N shares together are
//! exactly the single process's stream, and the ops due before the end of a fixed-rate run
//! split between the segments by counting alone (no timing decides which process ran what).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The `index`-th (1-based) of `count` shares of the op stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

/// A `--segment` value that is not `I/N` with `1 <= I <= N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--segment: {0}")]
pub struct SegmentError(String);

impl Segment {
    /// The whole stream (one process).
    pub const WHOLE: Segment = Segment { index: 1, count: 1 };

    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Segment, SegmentError> {
        let bad = |why: &str| SegmentError(format!("\"{text}\" {why}"));
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| bad("is not I/N (e.g. 2/4: the second of four shares)"))?;
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| bad(&format!("has {what} \"{s}\", not a whole number")))
        };
        let (index, count) = (number(i, "index")?, number(n, "count")?);
        if count == 0 {
            return Err(bad("has count 0: at least one share"));
        }
        if index == 0 || index > count {
            return Err(bad(&format!(
                "has index {index}: shares are numbered 1 to {count}"
            )));
        }
        Ok(Segment { index, count })
    }

    /// The stream index of this segment's `local`-th op.
    pub fn global(self, local: u64) -> u64 {
        local
            .saturating_mul(u64::from(self.count))
            .saturating_add(u64::from(self.index - 1))
    }

    /// Whether stream op `i` is this segment's.
    pub fn owns(self, i: u64) -> bool {
        i % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// How many of the stream's ops `0..n` are this segment's.
    pub fn share_of(self, n: u64) -> u64 {
        let offset = u64::from(self.index - 1);
        if n <= offset {
            0
        } else {
            (n - offset).div_ceil(u64::from(self.count))
        }
    }

    /// Whether this is the whole stream.
    pub fn is_whole(self) -> bool {
        self.count == 1
    }
}

impl Default for Segment {
    fn default() -> Self {
        Segment::WHOLE
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Segment::parse("2/4"), Ok(Segment { index: 2, count: 4 }));
        assert_eq!(Segment::parse("1/1"), Ok(Segment::WHOLE));
        for bad in [
            "0/4", "5/4", "1/0", "junk", "1/", "/4", "-1/4", "1/4/2", "a/b",
        ] {
            let e = Segment::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("--segment: \""), "{bad}: {e}");
            assert!(e.contains(bad), "{bad}: {e}");
        }
        assert!(Segment::parse("5/4")
            .unwrap_err()
            .to_string()
            .contains("1 to 4"));
        assert!(Segment::parse("1/0")
            .unwrap_err()
            .to_string()
            .contains("count 0"));
    }

    #[test]
    fn shares_partition_the_stream() {
        for count in 1..=5u32 {
            for n in 0..40u64 {
                let mut seen = vec![0u32; n as usize];
                let mut total = 0;
                for index in 1..=count {
                    let s = Segment { index, count };
                    let mut local = 0;
                    while s.global(local) < n {
                        let i = s.global(local);
                        assert!(s.owns(i));
                        seen[i as usize] += 1;
                        local += 1;
                    }
                    assert_eq!(local, s.share_of(n), "{s} of {n}");
                    total += s.share_of(n);
                }
                assert_eq!(total, n);
                assert!(seen.iter().all(|c| *c == 1));
            }
        }
        // Hand-derived: ops 0..10 in 4 shares are {0,4,8} {1,5,9} {2,6} {3,7}.
        let shares: Vec<u64> = (1..=4)
            .map(|index| Segment { index, count: 4 }.share_of(10))
            .collect();
        assert_eq!(shares, [3, 3, 2, 2]);
    }
}
