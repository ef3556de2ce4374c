//! Customer segments: every user belongs to one, a pure function of the user's id (no RNG
//! draw, so the dataset's other values and the op stream are unchanged). The write model
//! stores it (`users.segment`); the monthly report sums revenue per segment.

/// The segments, by id (`users.segment` holds `1..=SEGMENTS.len()`).
pub const SEGMENTS: [&str; 4] = ["consumer", "small business", "enterprise", "education"];

/// A user's segment id, `1..=4`: a hash of the id, weighted towards consumers (4 in 8),
/// then small businesses (2 in 8), enterprises and education (1 in 8 each).
pub fn segment_of(user_id: i64) -> i64 {
    // SplitMix64's finaliser: neighbouring ids land in unrelated segments.
    let mut h = (user_id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    [1, 1, 1, 1, 2, 2, 3, 4][(h % 8) as usize]
}

/// A segment's name (`"?"` for an id outside `SEGMENTS`).
pub fn segment_name(segment: i64) -> &'static str {
    usize::try_from(segment - 1)
        .ok()
        .and_then(|k| SEGMENTS.get(k))
        .copied()
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_segment_is_used_and_named() {
        let mut seen = [0u32; 4];
        for u in 1..=1_000 {
            let s = segment_of(u);
            assert!((1..=4).contains(&s));
            seen[(s - 1) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert!(seen[0] > seen[1] && seen[1] > seen[2], "{seen:?}");
        assert_eq!(segment_name(1), "consumer");
        assert_eq!(segment_name(0), "?");
        assert_eq!(segment_of(17), segment_of(17));
    }
}
