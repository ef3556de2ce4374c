//! One scenario driven by N processes (`run --segment I/N`): what is shared and who does it.
//!
//! The N processes share one database per backend. Segment 1 (or a `--seed-only` run before
//! them) seeds it and marks it with the run's identity (seed, stream hash, start, backend);
//! the others wait until the mark is there, at most until `--start-at`. Every process drives
//! its share of the stream from the same start. Segment 1 alone runs what a backend runs in
//! the background (projector, relay, view refreshes), as a team deploys one projector beside
//! many application servers; no segment verifies or drops the database, since others may
//! still be writing to it (`cqrs-bench verify` and `drop` after the last one).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::backend::{prepare, BackendKind};
use crate::db::load::SeedReport;
use crate::db::state::DbState;
use crate::db::{schema, Db, DbUrl, OpenMode};
use crate::domain::QueryKind;
use crate::results::utc_timestamp;
use crate::scenario::Scenario;
use crate::workload::segment::Segment;

/// The meta key holding the identity of the scale-out run a database was seeded for.
const MARK_KEY: &str = "scale_out";
/// How often a waiting segment looks at the database.
const POLL: Duration = Duration::from_millis(200);

/// How this process takes part in a scale-out run.
#[derive(Debug, Clone, Default)]
pub struct ScaleOut {
    /// `None`: not a segmented run (the whole stream, a database of its own).
    pub segment: Option<Segment>,
    /// When every segment starts its load (`--start-at`).
    pub start_at: Option<SystemTime>,
    /// Seed the shared database and stop (`--seed-only`).
    pub seed_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaleOutError {
    #[error(
        "--segment: the scenario runs {runs} backend runs ({what}); a segment drives one: pick \
         it with --backends NAME and a scenario without a sweep"
    )]
    ManyRuns { runs: usize, what: String },
    #[error(
        "--segment {segment}: give --start-at TIME (RFC 3339 or Unix seconds), the same for every \
         segment, so the {count} processes start together and wait for the seed at most until then"
    )]
    NoStartAt { segment: Segment, count: u32 },
    #[error("--seed-only needs --segment I/N and --start-at, like the segments it seeds for")]
    SeedOnlyAlone,
    #[error("--segment with {what} is not supported: {why}")]
    Unsupported {
        what: &'static str,
        why: &'static str,
    },
    #[error(
        "--start-at: \"{0}\" is neither an RFC 3339 time (2026-12-06T10:00:00Z) nor Unix seconds"
    )]
    BadStartAt(String),
    #[error(
        "--start-at {start_at} has passed ({late:.1}s ago) before segment {segment} could start \
         its load (seeding and calibration come first): give a later time"
    )]
    StartPassed {
        start_at: String,
        late: f64,
        segment: Segment,
    },
    #[error(
        "segment {segment}: {location} was not seeded for this run by --start-at {start_at} \
         (segment 1 or `run --seed-only` seeds it; {last})"
    )]
    NotSeeded {
        segment: Segment,
        location: String,
        start_at: String,
        last: String,
    },
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl ScaleOutError {
    /// 2: the command line or the shared database as found.
    pub fn exit_code(&self) -> u8 {
        match self {
            ScaleOutError::Db(e) => e.exit_code(),
            _ => 2,
        }
    }
}

impl ScaleOut {
    /// The segment driven (the whole stream when not segmented).
    pub fn segment(&self) -> Segment {
        self.segment.unwrap_or(Segment::WHOLE)
    }

    /// Whether processes share the database (more than one segment, or a seed for them).
    pub fn shares_db(&self) -> bool {
        self.segment().count > 1 || self.seed_only
    }

    /// Whether this process runs the backend's background work (projector, relay, refreshes)
    /// and seeds: segment 1.
    pub fn is_first(&self) -> bool {
        self.segment().index == 1
    }

    /// Refuses what a segmented run cannot do, before anything is seeded.
    pub fn check(&self, s: &Scenario, runs: usize, read_db: bool) -> Result<(), ScaleOutError> {
        let Some(segment) = self.segment else {
            return match self.seed_only {
                true => Err(ScaleOutError::SeedOnlyAlone),
                false => Ok(()),
            };
        };
        if runs != 1 {
            let what = format!(
                "backends {}{}",
                s.backends
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                if s.sweep.is_some() { ", a sweep" } else { "" }
            );
            return Err(ScaleOutError::ManyRuns { runs, what });
        }
        if !self.shares_db() {
            return Ok(());
        }
        let Some(start_at) = self.start_at else {
            return Err(ScaleOutError::NoStartAt {
                segment,
                count: segment.count,
            });
        };
        // Already past: say so before seeding or waiting for anything.
        if let Err(e) = start_at.duration_since(SystemTime::now()) {
            return Err(ScaleOutError::StartPassed {
                start_at: rfc3339(start_at),
                late: e.duration().as_secs_f64(),
                segment,
            });
        }
        if read_db {
            return Err(ScaleOutError::Unsupported {
                what: "--read-db",
                why: "the separate read store is prepared by each run; run one process",
            });
        }
        if s.mix_spec()
            .reads
            .get(&QueryKind::TextSearch)
            .is_some_and(|w| *w > 0.0)
        {
            return Err(ScaleOutError::Unsupported {
                what: "text_search in the read mix",
                why: "the search index lives in one process's folder; run one process",
            });
        }
        Ok(())
    }

    /// `--start-at` as text for results.json and messages.
    pub fn start_at_text(&self) -> Option<String> {
        self.start_at.map(rfc3339)
    }

    /// The moment the load starts: `--start-at`, or `lead` from now without one.
    pub fn start(&self, lead: Duration) -> Result<Instant, ScaleOutError> {
        let Some(at) = self.start_at else {
            return Ok(Instant::now() + lead);
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        match at.duration_since(wall) {
            Ok(ahead) => Ok(now + ahead),
            Err(e) => Err(ScaleOutError::StartPassed {
                start_at: rfc3339(at),
                late: e.duration().as_secs_f64(),
                segment: self.segment(),
            }),
        }
    }

    /// What marks a database seeded for this run.
    fn mark(&self, s: &Scenario, stream_hash: &str, kind: BackendKind) -> String {
        format!(
            "seed={} stream={stream_hash} backend={} segments={} start_at={}",
            s.seed,
            kind.name(),
            self.segment().count,
            self.start_at_text().unwrap_or_default()
        )
    }

    /// The shared database of `kind`: seeded by segment 1 (unless a `--seed-only` run already
    /// seeded it for this run), waited for by the others.
    #[allow(clippy::too_many_arguments)]
    pub async fn seed_or_wait(
        &self,
        url: &DbUrl,
        schema_name: &str,
        kind: BackendKind,
        s: &Scenario,
        stream_hash: &str,
        pool_size: u32,
    ) -> Result<(Db, SeedReport), ScaleOutError> {
        let mark = self.mark(s, stream_hash, kind);
        if self.is_first() && !self.seed_only {
            if let Some(db) = seeded_for(url, schema_name, pool_size, &mark)
                .await
                .ok()
                .flatten()
            {
                return Ok((db, nothing_seeded()));
            }
        }
        if self.is_first() || self.seed_only {
            let (db, report) =
                prepare(url, schema_name, kind, s.seed, &s.dataset, pool_size).await?;
            let mut conn = db.write.acquire().await.map_err(crate::db::DbError::from)?;
            schema::meta_set(&mut conn, MARK_KEY, &mark).await?;
            drop(conn);
            return Ok((db, report));
        }
        let start_at = self.start_at.unwrap_or_else(SystemTime::now);
        loop {
            let last = match seeded_for(url, schema_name, pool_size, &mark).await {
                Ok(Some(db)) => return Ok((db, nothing_seeded())),
                Ok(None) => "not seeded for this run yet".to_string(),
                Err(e) => e.to_string(),
            };
            if SystemTime::now() + POLL >= start_at {
                return Err(ScaleOutError::NotSeeded {
                    segment: self.segment(),
                    location: url.redacted(),
                    start_at: rfc3339(start_at),
                    last: format!("last look: {last}"),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// What a segment that found the database seeded reports: it loaded nothing.
fn nothing_seeded() -> SeedReport {
    SeedReport {
        rows: 0,
        events: 0,
        seconds: 0.0,
        rows_per_second: 0.0,
    }
}

/// The database, when it is ready and marked for this run.
async fn seeded_for(
    url: &DbUrl,
    schema_name: &str,
    pool_size: u32,
    mark: &str,
) -> Result<Option<Db>, crate::db::DbError> {
    let db = Db::open_with(url, schema_name, pool_size, OpenMode::Existing).await?;
    let ready = matches!(DbState::read(&db).await, Ok(DbState::Ready(_)))
        && schema::meta_get(&db, MARK_KEY)
            .await
            .ok()
            .flatten()
            .as_deref()
            == Some(mark);
    if ready {
        Ok(Some(db))
    } else {
        db.close().await;
        Ok(None)
    }
}

/// Parses `--start-at`: RFC 3339 (`2026-12-06T10:00:00Z`, `…T11:00:00.5+01:00`) or Unix
/// seconds (`1796551200`, fractions allowed).
pub fn parse_start_at(text: &str) -> Result<SystemTime, ScaleOutError> {
    let bad = || ScaleOutError::BadStartAt(text.to_string());
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if !(0.0..1e11).contains(&secs) {
            return Err(bad());
        }
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    parse_rfc3339(t).ok_or_else(bad)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (`t` or a space also separate date and time).
fn parse_rfc3339(t: &str) -> Option<SystemTime> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return None;
    }
    let mut rest = &t[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let off = rest.get(1..)?;
            if off.len() != 5 || off.as_bytes()[2] != b':' {
                return None;
            }
            let (oh, om) = (num_of(&off[0..2])?, num_of(&off[3..5])?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

fn num_of(s: &str) -> Option<i64> {
    s.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| s.parse().ok())?
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days-from-civil (the inverse of `results::utc_timestamp`'s).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time as RFC 3339 UTC (whole seconds, as `results.json` writes times).
fn rfc3339(t: SystemTime) -> String {
    utc_timestamp(
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// A time as Unix seconds (ms resolution).
pub fn unix_seconds(t: SystemTime) -> f64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    }

    #[test]
    fn parses_start_times() {
        // 2026-01-01T00:00:00Z is 1767225600 (results::utc_timestamp's test).
        let at = |s: &str| unix(parse_start_at(s).unwrap());
        assert_eq!(at("2026-01-01T00:00:00Z"), 1_767_225_600.0);
        assert_eq!(at("2026-01-01T01:00:00+01:00"), 1_767_225_600.0);
        assert_eq!(at("2025-12-31T23:30:00-00:30"), 1_767_225_600.0);
        assert_eq!(at("2026-01-01T00:00:00.25Z"), 1_767_225_600.25);
        assert_eq!(at("2024-02-29T00:00:00Z"), 1_709_164_800.0);
        assert_eq!(at("1767225600"), 1_767_225_600.0);
        assert_eq!(at("1767225600.5"), 1_767_225_600.5);
        for bad in [
            "",
            "soon",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+0100",
            "2026-01-01",
            "-5",
            "NaN",
        ] {
            let e = parse_start_at(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("\"{bad}\"")), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn a_start_in_the_past_is_refused() {
        let so = ScaleOut {
            segment: Some(Segment { index: 2, count: 3 }),
            start_at: Some(SystemTime::now() - Duration::from_secs(5)),
            seed_only: false,
        };
        let e = so.start(Duration::ZERO).unwrap_err().to_string();
        assert!(e.contains("has passed") && e.contains("segment 2/3"), "{e}");
        let so = ScaleOut {
            start_at: Some(SystemTime::now() + Duration::from_secs(60)),
            ..so
        };
        let start = so.start(Duration::ZERO).unwrap();
        let ahead = start.duration_since(Instant::now()).as_secs_f64();
        assert!((50.0..=60.0).contains(&ahead), "{ahead}");
    }
}
