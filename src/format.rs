//! Numbers as people read them: durations from microseconds, bytes, rates, lists of names.
//! A leaf: it imports nothing of the crate, so every layer may use it.

/// Microseconds (possibly fractional) as a short figure: `850µs`, `12.3ms`, `1.20s`.
pub fn fmt_ms(us: f64) -> String {
    if !us.is_finite() {
        return "-".into();
    }
    if us.abs() < 1_000.0 {
        format!("{us:.0}µs")
    } else if us.abs() < 1_000_000.0 {
        format!("{:.1}ms", us / 1_000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// Bytes as `812 B`, `4.0 KiB`, `2.31 MiB`, `1.20 GiB`.
pub fn fmt_bytes(b: u64) -> String {
    const K: f64 = 1024.0;
    let f = b as f64;
    if f < K {
        format!("{b} B")
    } else if f < K * K {
        format!("{:.1} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.2} MiB", f / (K * K))
    } else {
        format!("{:.2} GiB", f / (K * K * K))
    }
}

/// Whole microseconds as a short figure (`850µs`, `12.3ms`, `1.20s`).
pub fn fmt_us(us: u64) -> String {
    fmt_ms(us as f64)
}

/// An achieved rate against its target: `98/100`, `412/max` (with `sep` between them), or
/// `none` for a side that sent nothing and was not asked to (rate 0 has no target, like
/// closed loop, but it is not `0/max`).
pub fn rate(target: Option<f64>, achieved: f64, sep: &str) -> String {
    match target {
        _ if achieved == 0.0 && target.is_none_or(|t| t == 0.0) => "none".to_string(),
        Some(t) => format!("{achieved:.0}{sep}{t:.0}"),
        None => format!("{achieved:.0}{sep}max"),
    }
}

/// `a`, `a or b`, `a, b or c`: the choices an error message offers.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ` (no date crate needed for this one format).
pub fn utc_timestamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_against_targets() {
        assert_eq!(rate(Some(100.0), 98.4, "/"), "98/100");
        assert_eq!(rate(None, 412.0, "/"), "412/max");
        // A side with rate 0 sent nothing: not `0/max`.
        assert_eq!(rate(None, 0.0, "/"), "none");
        assert_eq!(rate(Some(0.0), 0.0, "/"), "none");
    }

    #[test]
    fn figures() {
        assert_eq!(fmt_us(850), "850µs");
        assert_eq!(fmt_us(12_345), "12.3ms");
        assert_eq!(fmt_us(1_200_000), "1.20s");
        assert_eq!(fmt_ms(f64::NAN), "-");
        assert_eq!(fmt_bytes(4096), "4.0 KiB");
        assert_eq!(rate(Some(100.0), 98.4, "/"), "98/100");
        assert_eq!(rate(None, 412.0, " / "), "412 / max");
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
        assert_eq!(one_of(&["a"]), "a");
    }
}
