//! "User creates an order, immediately queries it: not found." From the read-your-writes
//! probes of every backend whose read side lags: `x% of users would not see their order right
//! after placing it; y% still would not after 200ms; …; it appears after p99 z ms` (one
//! clause per think time the scenario gives), with the synchronous backends as the control
//! that must never miss.

use super::{percent, sentence, Answer};
use crate::domain::CommandKind;
use crate::format::fmt_ms;
use crate::report::plot::level_suffix;
use crate::report::{level_label, Level};
use crate::results::{BackendRun, Results};

/// "right after placing it", or "200ms after placing it" at a think time.
fn after(think_ms: f64) -> String {
    if think_ms <= 0.0 {
        "right after placing it".into()
    } else {
        let think = std::time::Duration::from_nanos((think_ms * 1e6).round() as u64);
        format!(
            "{} after placing it",
            crate::scenario::format_duration(think)
        )
    }
}

/// What one async backend's probes say: the share that missed at the first think time, and
/// the share that still missed at each later one.
fn async_part(run: &BackendRun, what: &str) -> String {
    let ryw = &run.metrics.ryw;
    let first = ryw.by_think_time.first().map_or(0.0, |t| t.think_ms);
    if ryw.misses == 0 {
        return format!(
            "on **{}** every user would see their {what} {} (0 of {} probes missed)",
            run.backend,
            after(first),
            ryw.probes
        );
    }
    let mut s = format!(
        "on **{}** {} of users would not see their {what} {}",
        run.backend,
        percent(ryw.miss_share),
        after(first)
    );
    for later in ryw.by_think_time.iter().skip(1) {
        let think = after(later.think_ms);
        let think = think.trim_end_matches(" after placing it");
        if later.misses == 0 {
            // A read side never goes back: every later pause would say the same.
            s.push_str(&format!("; all would after {think}"));
            break;
        }
        s.push_str(&format!(
            "; {} still would not after {think}",
            percent(later.miss_share)
        ));
    }
    if ryw.time_to_visible.count > 0 {
        s.push_str(&format!(
            "; it appears after p99 {}",
            fmt_ms(ryw.time_to_visible.p99_us as f64)
        ));
    }
    if ryw.never_visible > 0 {
        s.push_str(&format!(
            " ({} of {} never appeared before the probe gave up)",
            ryw.never_visible, ryw.misses
        ));
    }
    if run.metrics.driver_behind {
        s.push_str(" (an invalid run: the driver fell behind)");
    }
    s
}

pub(super) fn answer(results: &Results, levels: &[Level]) -> Answer {
    // The highest load the scenario ran.
    let Some(level) = levels.last() else {
        return Answer {
            sentence: "No run was recorded, so there is nothing to answer from.".into(),
            plot: None,
        };
    };
    let only_orders = results
        .scenario
        .writes
        .mix
        .iter()
        .all(|(k, w)| *k == CommandKind::PlaceOrder || *w == 0.0);
    let (what, unit) = if only_orders {
        ("order", "orders/s")
    } else {
        ("write", "writes/s")
    };
    let probed = |r: &&&BackendRun| r.metrics.ryw.probes > 0;
    let lagging: Vec<&BackendRun> = level
        .runs
        .iter()
        .filter(probed)
        .filter(|r| r.backend.read_side_lags())
        .copied()
        .collect();
    let control: Vec<&BackendRun> = level
        .runs
        .iter()
        .filter(probed)
        .filter(|r| !r.backend.read_side_lags())
        .copied()
        .collect();
    if lagging.is_empty() {
        return Answer {
            sentence: "No backend with an asynchronous read side ran read-your-writes probes \
                       (name cqrs-async, event-sourced, cqrs-broker, matview or replica and set \
                       `ryw_share`), so this run cannot say who would miss their order."
                .into(),
            plot: None,
        };
    }
    let rate = lagging
        .iter()
        .map(|r| r.rates.write_achieved)
        .fold(0.0, f64::max);
    let at = if levels.len() > 1 {
        format!(" and {}", level_label(level))
    } else {
        String::new()
    };
    let mut parts: Vec<String> = lagging.iter().map(|r| async_part(r, what)).collect();
    for run in control {
        let ryw = &run.metrics.ryw;
        parts.push(if ryw.misses == 0 {
            format!(
                "on **{}**, which updates its read side in the write's transaction, none did (0 of {} probes)",
                run.backend, ryw.probes
            )
        } else {
            format!(
                "on **{}**, whose read side should never lag, {} of probes missed — a bug",
                run.backend,
                percent(ryw.miss_share)
            )
        });
    }
    Answer {
        sentence: sentence(&format!("at {rate:.0} {unit}{at}, {}", parts.join("; "))),
        plot: Some(format!("lag{}", level_suffix(level.point.as_ref()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ryw::RywAtThinkTime;
    use crate::report::levels;

    /// A recorded run of `scenarios/read-model-lag.toml` on SQLite (`duration = "10s"`,
    /// spectra removed) on a quiet machine, every run sound. Its figures, read off the JSON:
    /// cqrs-sync missed none of 683 probes; cqrs-async missed all 683 right after the write,
    /// 2 after 200 ms (0.29%), none after 1 s, visible after p99 63,647 µs; event-sourced
    /// missed all 685, none after 200 ms, visible after p99 61,023 µs.
    fn recorded() -> Results {
        serde_json::from_str(include_str!(
            "../../../../tests/data/read-model-lag-results.json"
        ))
        .expect("recorded results")
    }

    fn said(r: &Results) -> Answer {
        answer(r, &levels(r))
    }

    fn run_mut<'a>(r: &'a mut Results, backend: &str) -> &'a mut BackendRun {
        r.runs
            .iter_mut()
            .find(|x| x.backend.name() == backend)
            .unwrap()
    }

    #[test]
    fn recorded_run_says_who_would_miss_their_order_and_for_how_long() {
        let a = said(&recorded());
        assert_eq!(a.plot.as_deref(), Some("lag"));
        let s = a.sentence;
        assert!(s.starts_with("At 200 orders/s, on **cqrs-async** 100.0% of users would not see their order right after placing it; 0.29% still would not after 200ms; all would after 1s; it appears after p99 63.6ms; "), "{s}");
        assert!(s.contains("on **event-sourced** 100.0% of users would not see their order right after placing it; all would after 200ms; it appears after p99 61.0ms"), "{s}");
        assert!(s.contains("on **cqrs-sync**, which updates its read side in the write's transaction, none did (0 of 683 probes)"), "{s}");
        assert!(
            s.ends_with('.') && s.matches(". ").count() == 0,
            "one sentence: {s}"
        );
    }

    #[test]
    fn an_async_backend_that_never_missed_says_every_user_sees_it() {
        let mut r = recorded();
        let run = run_mut(&mut r, "cqrs-async");
        run.metrics.ryw.misses = 0;
        run.metrics.ryw.miss_share = 0.0;
        let s = said(&r).sentence;
        assert!(
            s.contains(
                "on **cqrs-async** every user would see their order right after placing it (0 of "
            ),
            "{s}"
        );
        assert!(!s.contains("cqrs-async** 100.0%"), "{s}");
    }

    #[test]
    fn small_shares_keep_their_digits_and_lost_writes_are_counted() {
        let mut r = recorded();
        let run = run_mut(&mut r, "event-sourced");
        run.metrics.ryw.misses = 3;
        run.metrics.ryw.miss_share = 0.0025;
        run.metrics.ryw.never_visible = 1;
        let s = said(&r).sentence;
        assert!(
            s.contains("on **event-sourced** 0.25% of users would not see their order"),
            "{s}"
        );
        assert!(
            s.contains("(1 of 3 never appeared before the probe gave up)"),
            "{s}"
        );
    }

    #[test]
    fn a_mix_with_other_commands_speaks_of_writes_and_a_lagging_control_is_a_bug() {
        let mut r = recorded();
        r.scenario.writes.mix.insert(CommandKind::AddReview, 10.0);
        let sync = run_mut(&mut r, "cqrs-sync");
        sync.metrics.ryw.misses = 2;
        sync.metrics.ryw.miss_share = 0.02;
        let s = said(&r).sentence;
        assert!(
            s.starts_with(
                "At 200 writes/s, on **cqrs-async** 100.0% of users would not see their write"
            ),
            "{s}"
        );
        assert!(
            s.contains(
                "on **cqrs-sync**, whose read side should never lag, 2.0% of probes missed — a bug"
            ),
            "{s}"
        );
    }

    #[test]
    fn think_times_say_who_still_misses_after_a_pause() {
        let mut r = recorded();
        let run = run_mut(&mut r, "cqrs-async");
        // 1000 probes: 998 missed at once, 40 still after 200 ms, none after 1 s.
        run.metrics.ryw.probes = 1000;
        run.metrics.ryw.misses = 998;
        run.metrics.ryw.miss_share = 0.998;
        run.metrics.ryw.by_think_time = vec![
            RywAtThinkTime::new(0.0, 1000, 998),
            RywAtThinkTime::new(200.0, 1000, 40),
            RywAtThinkTime::new(1000.0, 1000, 0),
        ];
        let s = said(&r).sentence;
        assert!(
            s.contains(
                "on **cqrs-async** 99.8% of users would not see their order right after placing \
                 it; 4.0% still would not after 200ms; all would after 1s; it appears after p99 "
            ),
            "{s}"
        );
    }

    #[test]
    fn once_every_user_sees_it_later_pauses_are_not_repeated() {
        let mut r = recorded();
        let run = run_mut(&mut r, "cqrs-async");
        run.metrics.ryw.by_think_time = vec![
            RywAtThinkTime::new(0.0, 1000, 998),
            RywAtThinkTime::new(200.0, 1000, 0),
            RywAtThinkTime::new(1000.0, 1000, 0),
        ];
        let s = said(&r).sentence;
        assert!(
            s.contains("right after placing it; all would after 200ms; it appears after p99 "),
            "{s}"
        );
        assert!(!s.contains("after 1s"), "{s}");
    }

    #[test]
    fn a_first_think_time_above_zero_is_named() {
        let mut r = recorded();
        let run = run_mut(&mut r, "cqrs-async");
        run.metrics.ryw.probes = 10;
        run.metrics.ryw.misses = 0;
        run.metrics.ryw.miss_share = 0.0;
        run.metrics.ryw.by_think_time = vec![RywAtThinkTime::new(500.0, 10, 0)];
        let s = said(&r).sentence;
        assert!(
            s.contains("on **cqrs-async** every user would see their order 500ms after placing it (0 of 10 probes missed)"),
            "{s}"
        );
    }

    #[test]
    fn without_an_async_backend_it_cannot_say() {
        let mut r = recorded();
        r.runs.retain(|x| !x.backend.read_side_lags());
        let a = said(&r);
        assert!(
            a.sentence.starts_with(
                "No backend with an asynchronous read side ran read-your-writes probes"
            ),
            "{}",
            a.sentence
        );
        assert_eq!(a.plot, None);
    }
}
