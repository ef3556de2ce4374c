//! "The report query runs for 10 minutes and locks tables." Along the `readers` sweep, the
//! runs without the report (0 readers: the baseline) against those with report readers
//! running `monthly_report` back to back (the most readers tried), per backend:
//!
//! - **blocked**: some write waited at least [`STALL_SHARE`] of a report's median duration —
//!   writes stalled for as long as a report ran — where a report runs long enough to tell
//!   (its median at least [`TELL_FACTOR`]× the longest write without it);
//! - otherwise the engine let the writes through, and what the report cost them is the CPU
//!   contention: write p99 with the report against without, **slowed** when it grew by at
//!   least [`SLOWED_SHARE`] and by more than the harness's floor.
//!
//! When no backend's writers were blocked and at least one report ran long enough to tell,
//! the answer says "this engine does not block writers".

use super::super::{below_floor, floor_of, saturated_in};
use super::{sentence, Answer};
use crate::domain::QueryKind;
use crate::format::fmt_ms;
use crate::metrics::{MetricKey, Stat};
use crate::report::{level_label, Level};
use crate::results::{BackendRun, Results, SweepPoint};

/// Share of a report's median duration a write must have waited to count as blocked by it.
pub const STALL_SHARE: f64 = 0.5;
/// How many times the longest write without the report a report must take for a stall to
/// be told apart from the writes' own spikes.
pub const TELL_FACTOR: f64 = 4.0;
/// Growth of the write p99 that counts as slowed.
pub const SLOWED_SHARE: f64 = 0.10;

/// What the report did to one backend's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Writes stalled for as long as a report ran.
    Blocked,
    /// Not blocked; the write p99 grew (CPU contention).
    Slowed,
    /// Not blocked, and the write p99 did not grow measurably.
    Unchanged,
}

/// One backend's figures, without the report and with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub backend: String,
    pub reports: u64,
    pub report_p50_us: u64,
    pub base_p99_us: u64,
    pub with_p99_us: u64,
    pub base_max_us: u64,
    pub with_max_us: u64,
    /// Whether a report runs long enough for a stall to be told apart.
    pub tells: bool,
    /// The writes fell behind their rate with the report (and not without).
    pub fell_behind: bool,
    pub effect: Effect,
}

/// The figures of `with` (report readers running) against `base` (none).
pub fn figures(with: &BackendRun, base: &BackendRun) -> Option<Figures> {
    let writes = |r: &BackendRun| {
        r.metrics
            .op(MetricKey::Writes)
            .filter(|o| o.latency.count > 0)
            .map(|o| o.latency.clone())
    };
    let (b, w) = (writes(base)?, writes(with)?);
    let report = with
        .metrics
        .op(MetricKey::read(QueryKind::MonthlyReport))
        .filter(|o| o.latency.count > 0)?
        .latency
        .clone();
    let tells = report.p50_us as f64 >= TELL_FACTOR * b.max_us.max(1) as f64;
    let blocked = tells && w.max_us as f64 >= STALL_SHARE * report.p50_us as f64;
    let floor = floor_of(with, base, true, Stat::P99);
    let slowed = w.p99_us as f64 >= b.p99_us as f64 * (1.0 + SLOWED_SHARE)
        && !below_floor(w.p99_us, b.p99_us, floor);
    Some(Figures {
        backend: with.backend.to_string(),
        reports: report.count,
        report_p50_us: report.p50_us,
        base_p99_us: b.p99_us,
        with_p99_us: w.p99_us,
        base_max_us: b.max_us,
        with_max_us: w.max_us,
        tells,
        fell_behind: saturated_in(with, MetricKey::Writes)
            && !saturated_in(base, MetricKey::Writes),
        effect: if blocked {
            Effect::Blocked
        } else if slowed {
            Effect::Slowed
        } else {
            Effect::Unchanged
        },
    })
}

/// `3.1ms → 4.5ms (+45%)`, `3.1ms → 2.0s (645×)`.
fn change(from: u64, to: u64) -> String {
    let ratio = to as f64 / from.max(1) as f64;
    let by = if ratio >= 3.0 {
        format!("{ratio:.0}×")
    } else {
        format!("{:+.0}%", (ratio - 1.0) * 100.0)
    };
    format!("{} → {} ({by})", fmt_ms(from as f64), fmt_ms(to as f64))
}

/// One backend's clause.
fn part(f: &Figures) -> String {
    let report = format!(
        "the report took p50 {} ({} reports)",
        fmt_ms(f.report_p50_us as f64),
        f.reports
    );
    let mut s = match f.effect {
        Effect::Blocked => format!(
            "on **{}** writes stalled up to {} while a report ran ({report}), write p99 {}",
            f.backend,
            fmt_ms(f.with_max_us as f64),
            change(f.base_p99_us, f.with_p99_us)
        ),
        effect => {
            let head = if f.tells {
                format!(
                    "on **{}** {report} and no write waited that long (longest {})",
                    f.backend,
                    fmt_ms(f.with_max_us as f64)
                )
            } else if f.report_p50_us <= f.base_p99_us {
                format!(
                    "on **{}** the report is a cheap read (p50 {}, {} reports)",
                    f.backend,
                    fmt_ms(f.report_p50_us as f64),
                    f.reports
                )
            } else {
                format!(
                    "on **{}** the report (p50 {}, {} reports) is too short beside its writes' \
                     own spikes (longest {} without it) to tell a stall",
                    f.backend,
                    fmt_ms(f.report_p50_us as f64),
                    f.reports,
                    fmt_ms(f.base_max_us as f64)
                )
            };
            let cost = if effect == Effect::Slowed {
                format!(
                    "CPU contention cost its writes p99 {}",
                    change(f.base_p99_us, f.with_p99_us)
                )
            } else {
                format!(
                    "its write p99 did not grow: {}",
                    change(f.base_p99_us, f.with_p99_us)
                )
            };
            format!("{head}; {cost}")
        }
    };
    if f.fell_behind {
        s.push_str(", and its writes fell behind their rate");
    }
    s
}

fn engine_name(engine: &str) -> &str {
    match engine {
        "sqlite" => "SQLite",
        "postgres" => "PostgreSQL",
        other => other,
    }
}

pub(super) fn answer(results: &Results, levels: &[Level]) -> Answer {
    let plot = Some("load".to_string());
    let (Some(first), Some(last)) = (levels.first(), levels.last()) else {
        return Answer {
            sentence: "No run was recorded, so there is nothing to answer from.".into(),
            plot: None,
        };
    };
    if first.point != Some(SweepPoint::Readers(0)) || levels.len() < 2 {
        return Answer {
            sentence: "This run has no baseline without the report (0 readers) and a run with \
                       it, so it cannot say what the report does to the writes."
                .into(),
            plot,
        };
    }
    let all: Vec<Figures> = last
        .runs
        .iter()
        .filter_map(|with| {
            let base = first.runs.iter().find(|b| b.backend == with.backend)?;
            figures(with, base)
        })
        .collect();
    let engine = engine_name(&results.environment.engine);
    let rate = first
        .runs
        .first()
        .and_then(|r| r.rates.write_target)
        .map(|r| format!(" at {r:.0} writes/s"))
        .unwrap_or_default();
    let head = format!(
        "on {engine}{rate}, with {} running `monthly_report` back to back",
        level_label(last)
    );
    let blocked: Vec<&Figures> = all.iter().filter(|f| f.effect == Effect::Blocked).collect();
    let verdict = if all.is_empty() {
        "no backend ran reports beside its writes, so there is nothing to compare".to_string()
    } else if !blocked.is_empty() {
        let who: Vec<String> = blocked
            .iter()
            .map(|f| format!("**{}**", f.backend))
            .collect();
        format!("the report **blocks writers** on {}", who.join(", "))
    } else if all.iter().any(|f| f.tells) {
        "this engine does not block writers".to_string()
    } else {
        "no report ran long enough beside the writes to tell whether this engine blocks them"
            .to_string()
    };
    let parts: Vec<String> = all.iter().map(part).collect();
    let mut s = format!("{head}, {verdict}");
    if !parts.is_empty() {
        s.push_str(": ");
        s.push_str(&parts.join("; "));
    }
    Answer {
        sentence: sentence(&s),
        plot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::levels;

    /// A recorded run of `scenarios/monthly-report.toml` on SQLite (100,000 orders,
    /// `duration = "7s"` with a 1 s warm-up, spectra removed) on a quiet machine, every run
    /// sound: normalized's report took p50 274 ms (23 reports) and no write waited that long
    /// (longest 12.7 ms); the read models' reports were cheap reads of ~8 ms.
    fn recorded() -> Results {
        serde_json::from_str(include_str!(
            "../../../../tests/data/monthly-report-results.json"
        ))
        .expect("recorded results")
    }

    fn said(r: &Results) -> Answer {
        answer(r, &levels(r))
    }

    fn run_at<'a>(r: &'a mut Results, backend: &str, readers: u32) -> &'a mut BackendRun {
        r.runs
            .iter_mut()
            .find(|x| {
                x.backend.name() == backend && x.sweep_point == Some(SweepPoint::Readers(readers))
            })
            .unwrap()
    }

    fn writes(run: &mut BackendRun) -> &mut crate::metrics::LatencyStats {
        let key = MetricKey::Writes.to_string();
        &mut run.metrics.ops.get_mut(&key).unwrap().latency
    }

    fn report(run: &mut BackendRun) -> &mut crate::metrics::LatencyStats {
        let key = MetricKey::read(QueryKind::MonthlyReport).to_string();
        &mut run.metrics.ops.get_mut(&key).unwrap().latency
    }

    #[test]
    fn recorded_run_says_this_engine_does_not_block_writers() {
        let a = said(&recorded());
        assert_eq!(a.plot.as_deref(), Some("load"));
        let s = a.sentence;
        assert!(
            s.starts_with("On SQLite at 100 writes/s, with 1 reader running `monthly_report` back to back, this engine does not block writers: on **normalized** the report took p50 "),
            "{s}"
        );
        assert!(s.contains("and no write waited that long (longest "), "{s}");
        assert!(
            s.contains("; on **cqrs-sync** the report is a cheap read (p50 "),
            "{s}"
        );
        assert!(!s.contains("blocks writers"), "{s}");
    }

    #[test]
    fn a_backend_whose_writes_wait_for_a_whole_report_is_blocked() {
        let mut r = recorded();
        let p50 = report(run_at(&mut r, "normalized", 1)).p50_us;
        let w = writes(run_at(&mut r, "normalized", 1));
        w.max_us = p50;
        w.p99_us = p50 * 9 / 10;
        let s = said(&r).sentence;
        assert!(
            s.contains(", the report **blocks writers** on **normalized**: on **normalized** writes stalled up to "),
            "{s}"
        );
        assert!(
            s.contains(" while a report ran (the report took p50 "),
            "{s}"
        );
        assert!(!s.contains("this engine does not block writers"), "{s}");
    }

    #[test]
    fn a_stall_shorter_than_half_a_report_is_contention_not_blocking() {
        let mut r = recorded();
        let p50 = report(run_at(&mut r, "normalized", 1)).p50_us;
        let base = writes(run_at(&mut r, "normalized", 0)).p99_us;
        let w = writes(run_at(&mut r, "normalized", 1));
        w.max_us = p50 / 2 - 1;
        w.p99_us = base * 2;
        let s = said(&r).sentence;
        assert!(s.contains("this engine does not block writers"), "{s}");
        assert!(
            s.contains("CPU contention cost its writes p99 ") && s.contains("(+100%)"),
            "{s}"
        );
    }

    #[test]
    fn nothing_slowed_says_the_write_p99_did_not_grow() {
        let mut r = recorded();
        for backend in ["normalized", "cqrs-sync", "cqrs-async", "event-sourced"] {
            let base = writes(run_at(&mut r, backend, 0)).clone();
            let w = writes(run_at(&mut r, backend, 1));
            w.p99_us = base.p99_us;
            w.max_us = base.max_us;
            run_at(&mut r, backend, 1).metrics.saturated = false;
        }
        let s = said(&r).sentence;
        assert!(s.contains("this engine does not block writers"), "{s}");
        assert!(!s.contains("CPU contention"), "{s}");
        assert_eq!(s.matches("its write p99 did not grow: ").count(), 4, "{s}");
    }

    #[test]
    fn reports_too_short_to_tell_do_not_claim_the_engine() {
        let mut r = recorded();
        let base_max = writes(run_at(&mut r, "normalized", 0)).max_us;
        report(run_at(&mut r, "normalized", 1)).p50_us = base_max;
        let s = said(&r).sentence;
        assert!(
            s.contains("no report ran long enough beside the writes to tell whether this engine blocks them"),
            "{s}"
        );
        assert!(
            s.contains("on **normalized** the report (p50 ")
                && s.contains("is too short beside its writes' own spikes (longest "),
            "{s}"
        );
    }

    #[test]
    fn without_a_baseline_it_cannot_say() {
        let mut r = recorded();
        r.runs
            .retain(|x| x.sweep_point != Some(SweepPoint::Readers(0)));
        let s = said(&r).sentence;
        assert!(s.starts_with("This run has no baseline"), "{s}");
    }
}
