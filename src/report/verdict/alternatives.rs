//! "Would a simpler alternative have been enough?": each alternative to CQRS that ran
//! (`triggers`, `matview`, …) set against the CQRS backend that ran (`cqrs-async` first), on
//! the same figures — read p99 per query, write p99, staleness, storage — with what each needs
//! to run, and a yes or no from the numbers.
//!
//! An alternative is enough when every query is about as fast as on the CQRS backend (p99 at
//! most 1.5× or within the harness's floor), its writes are no slower (p99 at most 1.25× or
//! within the floor, and it kept up wherever the CQRS backend did), and it is no staler: if
//! its read side lags, the answer is "yes, if readers accept that staleness", with the figure.

use super::{below_floor, floor_of, p99, saturated_in, Level, Section};
use crate::backend::registry::Role;
use crate::domain::QueryKind;
use crate::metrics::{MetricKey, Stat};
use crate::report::{fmt_bytes, fmt_ms};
use crate::results::BackendRun;

/// How much slower an alternative's read p99 may be and still count as "as fast".
const READ_SLACK: f64 = 1.5;
/// How much slower its write p99 may be.
const WRITE_SLACK: f64 = 1.25;

/// `x` is no worse than `reference` by more than `slack` (or the floor).
fn within(x: u64, reference: u64, slack: f64, floor: Option<u64>) -> bool {
    x as f64 <= reference as f64 * slack || below_floor(x, reference, floor)
}

fn extra_storage(run: &BackendRun) -> Option<u64> {
    run.storage
        .as_ref()
        .map(|s| s.read_tables_bytes + s.event_log_bytes)
}

/// One alternative against the CQRS reference.
fn judge(alt: &BackendRun, reference: &BackendRun) -> String {
    let name = alt
        .backend
        .alternative_to_cqrs()
        .expect("only alternatives are judged");
    let mut reasons_no = Vec::new();
    let mut facts = Vec::new();

    let floor = floor_of(alt, reference, false, Stat::P99);
    let mut slower = Vec::new();
    let mut compared = 0;
    for q in QueryKind::ALL {
        let key = MetricKey::read(q);
        let (Some(a), Some(r)) = (p99(alt, key), p99(reference, key)) else {
            continue;
        };
        compared += 1;
        if !within(a, r, READ_SLACK, floor) {
            slower.push(format!(
                "`{}` p99 {} vs {}",
                q.name(),
                fmt_ms(a as f64),
                fmt_ms(r as f64)
            ));
        }
    }
    if compared > 0 {
        if slower.is_empty() {
            facts.push(format!(
                "reads as fast as {}'s on {} of {compared} queries",
                reference.backend, compared
            ));
        } else {
            reasons_no.push(format!("slower reads ({})", slower.join(", ")));
        }
    }

    if let (Some(a), Some(r)) = (
        p99(alt, MetricKey::Writes),
        p99(reference, MetricKey::Writes),
    ) {
        let kept_up =
            !saturated_in(alt, MetricKey::Writes) || saturated_in(reference, MetricKey::Writes);
        let text = format!("write p99 {} vs {}", fmt_ms(a as f64), fmt_ms(r as f64));
        if !kept_up {
            reasons_no.push(format!(
                "its writes saturated where {}'s kept up ({text})",
                reference.backend
            ));
        } else if !within(a, r, WRITE_SLACK, floor_of(alt, reference, true, Stat::P99)) {
            reasons_no.push(format!("slower writes ({text})"));
        } else {
            facts.push(text);
        }
    }

    let lag = &alt.metrics.lag;
    let reference_lag = if reference.metrics.lag.count > 0 {
        format!(
            "{} {}: p99 {}",
            reference.backend,
            reference.backend.lag_name(),
            fmt_ms(reference.metrics.lag.p99_us as f64)
        )
    } else {
        format!("{} is never stale", reference.backend)
    };
    let stale = alt.backend.read_side_lags() && lag.count > 0;
    if stale {
        facts.push(format!(
            "{} p99 {} (max {}; {reference_lag})",
            alt.backend.lag_name(),
            fmt_ms(lag.p99_us as f64),
            fmt_ms(lag.max_us as f64)
        ));
        if alt.metrics.ryw.probes > 0 {
            facts.push(format!(
                "{:.0}% of reads right after a write missed it",
                alt.metrics.ryw.miss_share * 100.0
            ));
        }
    } else if !alt.backend.read_side_lags() {
        facts.push(format!("never stale ({reference_lag})"));
    }

    if let (Some(a), Some(r)) = (extra_storage(alt), extra_storage(reference)) {
        facts.push(format!(
            "{} stored beside the write model vs {}",
            fmt_bytes(a),
            fmt_bytes(r)
        ));
    }

    let answer = if !reasons_no.is_empty() {
        format!("**No**: {}", reasons_no.join("; "))
    } else if stale {
        format!(
            "**Yes, if readers accept data up to {} old** (p99)",
            fmt_ms(lag.p99_us as f64)
        )
    } else {
        "**Yes**".to_string()
    };
    format!(
        "would {name} have been enough here (against {})? {answer}: {}. To run it takes {}. \
         ({}: {}.)",
        reference.backend,
        facts.join(", "),
        alt.backend.operations(),
        reference.backend,
        reference.backend.operations()
    )
}

/// The CQRS backend (by its registry role) alternatives are set against: the simplest one
/// whose read side lags like theirs (cqrs-async, then cqrs-broker, then event-sourced), else
/// the simplest that ran (cqrs-sync).
fn reference<'a>(level: &Level<'a>) -> Option<&'a BackendRun> {
    level
        .runs
        .iter()
        .copied()
        .filter(|r| r.backend.role() == Role::Cqrs)
        .min_by_key(|r| (!r.backend.read_side_lags(), r.backend.simplicity()))
}

/// One line per alternative that ran at this level, if a CQRS backend ran too.
pub fn lines(level: &Level) -> Vec<String> {
    let Some(reference) = reference(level) else {
        return Vec::new();
    };
    level
        .runs
        .iter()
        .filter(|r| r.backend.alternative_to_cqrs().is_some())
        .map(|alt| judge(alt, reference))
        .collect()
}

/// The section, when some level has an alternative to judge.
pub fn section(levels: &[Level]) -> Option<Section> {
    let mut out = Vec::new();
    for level in levels {
        let prefix = if levels.len() > 1 {
            format!("at {}: ", super::level_label(level))
        } else {
            String::new()
        };
        out.extend(lines(level).into_iter().map(|l| format!("{prefix}{l}")));
    }
    (!out.is_empty()).then(|| Section {
        title: "Would a simpler alternative have been enough?".into(),
        lines: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendKind;
    use crate::results::Results;

    /// A recorded run of `scenarios/matview-dashboard.toml` on PostgreSQL (`--duration 8s`,
    /// spectra removed): normalized saturated; triggers, cqrs-async and matview kept up.
    fn recorded() -> Results {
        serde_json::from_str(include_str!(
            "../../../tests/data/alternatives-results.json"
        ))
        .expect("recorded results")
    }

    fn run_mut<'a>(r: &'a mut Results, backend: &str) -> &'a mut BackendRun {
        r.runs
            .iter_mut()
            .find(|x| x.backend.name() == backend)
            .unwrap()
    }

    fn answer(r: &Results, backend: &str) -> String {
        let levels = crate::report::levels(r);
        lines(&levels[0])
            .into_iter()
            .find(|l| {
                l.contains(
                    BackendKind::from_name(backend)
                        .unwrap()
                        .alternative_to_cqrs()
                        .unwrap(),
                )
            })
            .unwrap_or_else(|| panic!("no line for {backend}"))
    }

    #[test]
    fn recorded_run_answers_from_its_numbers() {
        let r = recorded();
        let triggers = answer(&r, "triggers");
        assert!(
            triggers.starts_with(
                "would read models kept by database triggers have been enough here (against cqrs-async)? **Yes**:"
            ),
            "{triggers}"
        );
        assert!(
            triggers.contains("never stale (cqrs-async projection lag: p99"),
            "{triggers}"
        );
        assert!(
            triggers.contains("reads as fast as cqrs-async's on 3 of 3 queries"),
            "{triggers}"
        );
        let matview = answer(&r, "matview");
        assert!(
            matview.contains("**Yes, if readers accept data up to 1.89s old** (p99)"),
            "{matview}"
        );
        assert!(matview.contains("view staleness p99 1.89s"), "{matview}");
        assert!(
            matview.contains("To run it takes one PostgreSQL database and a refresh schedule"),
            "{matview}"
        );
    }

    #[test]
    fn slower_reads_or_writes_say_no() {
        let mut r = recorded();
        let reference = run_mut(&mut r, "cqrs-async").clone();
        let m = run_mut(&mut r, "matview");
        // Writes twice as slow as cqrs-async's, well above the floor.
        let writes = MetricKey::Writes.to_string();
        let w = m.metrics.ops.get_mut(&writes).unwrap();
        w.latency.p99_us = reference.metrics.ops[&writes].latency.p99_us * 2 + 50_000;
        let line = answer(&r, "matview");
        assert!(line.contains("**No**: slower writes (write p99"), "{line}");

        let mut r = recorded();
        let t = run_mut(&mut r, "triggers");
        let top = MetricKey::read(QueryKind::TopProducts).to_string();
        t.metrics.ops.get_mut(&top).unwrap().latency.p99_us = 900_000;
        let line = answer(&r, "triggers");
        assert!(
            line.contains("**No**: slower reads (`top_products` p99 900.0ms vs"),
            "{line}"
        );
    }

    #[test]
    fn without_a_cqrs_backend_nothing_is_judged() {
        let mut r = recorded();
        r.runs.retain(|x| x.backend.name() != "cqrs-async");
        let levels = crate::report::levels(&r);
        assert!(lines(&levels[0]).is_empty());
    }
}
