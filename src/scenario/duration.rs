//! Durations as written in scenario files: a non-negative integer or decimal number followed
//! by a unit, `ms`, `s`, `m` or `h` (`"500ms"`, `"30s"`, `"1.5m"`, `"1h"`).

use std::time::Duration;

const NANOS_PER_MS: u128 = 1_000_000;
const NANOS_PER_S: u128 = 1_000_000_000;
const NANOS_PER_M: u128 = 60 * NANOS_PER_S;
const NANOS_PER_H: u128 = 60 * NANOS_PER_M;

/// Parses `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"0.5s"`. Surrounding whitespace is ignored.
/// Fractions finer than a nanosecond are truncated.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "expected a duration such as \"500ms\", \"30s\", \"2m\" or \"1h\" \
             (a number and a unit: ms, s, m or h), got {text:?}"
        )
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit_nanos = match unit {
        "ms" => NANOS_PER_MS,
        "s" => NANOS_PER_S,
        "m" => NANOS_PER_M,
        "h" => NANOS_PER_H,
        _ => return Err(bad()),
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) if !f.is_empty() => (i, f),
        Some(_) => return Err(bad()),
        None => (number, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) {
        return Err(bad());
    }
    let too_large = || format!("duration {text:?} is too large");
    if int.len() > 20 {
        return Err(too_large());
    }
    let int: u128 = int.parse().map_err(|_| bad())?;
    let frac = &frac[..frac.len().min(18)];
    let frac_nanos = if frac.is_empty() {
        0
    } else {
        let value: u128 = frac.parse().map_err(|_| bad())?;
        value * unit_nanos / 10u128.pow(frac.len() as u32)
    };
    let nanos = int
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(frac_nanos))
        .filter(|n| *n <= u64::MAX as u128)
        .ok_or_else(too_large)?;
    Ok(Duration::from_nanos(nanos as u64))
}

/// The inverse of [`parse_duration`]: the largest unit that represents `d` exactly
/// (`"2m"`, `"90s"`, `"1500ms"`, `"0s"`), falling back to decimal milliseconds (`"0.25ms"`).
pub fn format_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        "0s".to_string()
    } else if n.is_multiple_of(NANOS_PER_H) {
        format!("{}h", n / NANOS_PER_H)
    } else if n.is_multiple_of(NANOS_PER_M) {
        format!("{}m", n / NANOS_PER_M)
    } else if n.is_multiple_of(NANOS_PER_S) {
        format!("{}s", n / NANOS_PER_S)
    } else if n.is_multiple_of(NANOS_PER_MS) {
        format!("{}ms", n / NANOS_PER_MS)
    } else {
        let frac = format!("{:06}", n % NANOS_PER_MS);
        format!("{}.{}ms", n / NANOS_PER_MS, frac.trim_end_matches('0'))
    }
}

/// `#[serde(with = "...")]` for a `Duration` stored as a duration string (`"30s"`). Reading
/// also accepts a plain integer, taken as milliseconds.
/// A duration that serializes as its text (`"500ms"`), for maps of them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DurationText(#[serde(with = "serde_text")] pub Duration);

/// `#[serde(with = "...")]` for a list of durations stored as duration strings.
pub(crate) mod serde_text_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::DurationText;

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let texts: Vec<DurationText> = list.iter().map(|d| DurationText(*d)).collect();
        texts.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Ok(Vec::<DurationText>::deserialize(d)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }
}

pub(crate) mod serde_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Millis(u64),
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Text(t) => super::parse_duration(&t).map_err(serde::de::Error::custom),
            Repr::Millis(ms) => Ok(Duration::from_millis(ms)),
        }
    }
}
