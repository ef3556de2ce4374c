//! A run's histograms as text for `results.json` (a segment of a scale-out run): each one
//! serialized with HdrHistogram's V2 + DEFLATE format (the `hdrhistogram` crate's
//! serializer, the format of HdrHistogram's interval logs) and base64-encoded. Whoever holds
//! the parts rebuilds any total or interval by adding them — percentiles are recomputed from
//! the sums, never averaged.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::latency::{add_histogram, new_histogram};

/// A histogram that is not V2 (+ DEFLATE) base64 text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

/// V2 + DEFLATE, base64 (standard alphabet, padded).
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail for I/O; a histogram this crate built always serializes.
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("a histogram serializes into memory");
    STANDARD.encode(bytes)
}

/// The histogram `encode` wrote, in the range every latency histogram of the tool has.
pub fn decode(text: &str) -> Result<Histogram<u64>, DecodeError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| DecodeError(format!("not base64: {e}")))?;
    let read: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| DecodeError(format!("not an HdrHistogram V2 histogram: {e:?}")))?;
    // Into the tool's own bounds, so histograms of any part add.
    let mut h = new_histogram();
    add_histogram(&mut h, &read);
    Ok(h)
}

/// Adds the histogram `text` encodes into `into`.
pub fn add_encoded(into: &mut Histogram<u64>, text: &str) -> Result<(), DecodeError> {
    add_histogram(into, &decode(text)?);
    Ok(())
}

/// One op kind's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpHistograms {
    /// Intended start -> finish.
    pub latency: String,
    /// Actual start -> finish.
    pub service: String,
}

/// One interval's histograms (latency of writes and reads from the intended start, lag), as
/// they were when the interval closed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalHistograms {
    pub write: String,
    pub read: String,
    pub lag: String,
}

impl IntervalHistograms {
    pub(crate) fn of(write: &Histogram<u64>, read: &Histogram<u64>, lag: &Histogram<u64>) -> Self {
        IntervalHistograms {
            write: encode(write),
            read: encode(read),
            lag: encode(lag),
        }
    }

    pub(crate) fn empty() -> Self {
        let h = new_histogram();
        IntervalHistograms::of(&h, &h, &h)
    }

    /// Adds `other` into `self` (both encoded).
    pub(crate) fn add(&mut self, other: &IntervalHistograms) -> Result<(), DecodeError> {
        for (mine, theirs) in [
            (&mut self.write, &other.write),
            (&mut self.read, &other.read),
            (&mut self.lag, &other.lag),
        ] {
            let mut h = decode(mine)?;
            add_encoded(&mut h, theirs)?;
            *mine = encode(&h);
        }
        Ok(())
    }
}

/// Every histogram behind a run's numbers: the totals per op kind (the aggregates `write`
/// and `read` are their sums), the run-wide ones, and one set per interval of
/// `RunMetrics::intervals`, index by index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunHistograms {
    /// Keyed like `RunMetrics::ops` (`write.place_order`, …), op kinds only.
    pub ops: BTreeMap<String, OpHistograms>,
    pub lag: String,
    pub search_freshness: String,
    pub ryw_time_to_visible: String,
    pub lateness: String,
    pub queue_wait: String,
    pub dispatch: String,
    pub intervals: Vec<IntervalHistograms>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::record_us;

    #[test]
    fn round_trips_and_adds() {
        let mut a = new_histogram();
        for v in [10, 20, 30, 1_000_000] {
            record_us(&mut a, v);
        }
        let text = encode(&a);
        assert!(text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)));
        let back = decode(&text).unwrap();
        assert_eq!(back, a);
        let mut sum = back.clone();
        add_encoded(&mut sum, &text).unwrap();
        assert_eq!(sum.len(), 8);
        assert_eq!(sum.count_at(20), 2);
    }

    #[test]
    fn refuses_what_is_not_a_histogram() {
        assert!(decode("not base64!")
            .unwrap_err()
            .to_string()
            .contains("base64"));
        assert!(decode(&STANDARD.encode(b"hello"))
            .unwrap_err()
            .to_string()
            .contains("HdrHistogram"));
    }
}
