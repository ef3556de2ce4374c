//! The answer a story scenario (`story = "…"`) opens its report with: one sentence from the
//! measured figures that answers the scenario's question — which backend, at which load, by
//! how much — and the plot that shows it. Each story's logic is a module of its own.

mod dashboard;
mod denormalization;
mod monthly_report;
mod read_model_lag;

use crate::report::verdict::soundness;
use crate::report::Level;
use crate::results::Results;
use crate::scenario::Story;

/// The one-sentence answer to a story's question.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The sentence, with `**bold**` and `` `code` `` only.
    pub sentence: String,
    /// The plot that shows it (a [`crate::report::plot::Plot::name`]), when one does.
    pub plot: Option<String>,
}

/// The answer for the story the scenario tells, if it tells one, from sound runs only
/// ([`soundness::unsound`]): a run where the driver fell behind measured the harness, and one
/// with too short a window saw too little, so either is left out, and the answer says which,
/// why and what to change.
pub fn answer(results: &Results, levels: &[Level]) -> Option<Answer> {
    let story = results.scenario.story?;
    let sound: Vec<Level> = levels
        .iter()
        .map(|l| Level {
            point: l.point.clone(),
            runs: l
                .runs
                .iter()
                .copied()
                .filter(|r| soundness::is_sound(r))
                .collect(),
        })
        .filter(|l| !l.runs.is_empty())
        .collect();
    let levels = &sound[..];
    let mut answer = match story {
        Story::ReadModelLag => read_model_lag::answer(results, levels),
        Story::Dashboard => dashboard::answer(levels),
        Story::Denormalization => denormalization::answer(levels, results.scenario.dataset.orders),
        Story::MonthlyReport => monthly_report::answer(results, levels),
    };
    answer.sentence.push_str(&left_out(results));
    Some(answer)
}

/// ` Left out: a, b (why; what to change).` for every unsound run, grouped by the reason, or
/// nothing when every run is sound.
fn left_out(results: &Results) -> String {
    let mut groups: Vec<(soundness::Unsound, Vec<String>)> = Vec::new();
    for run in &results.runs {
        for why in soundness::unsound(run) {
            // Runs too short by different amounts share one reason: the remedy is the same.
            match groups
                .iter_mut()
                .find(|(w, _)| std::mem::discriminant(w) == std::mem::discriminant(&why))
            {
                Some((_, labels)) => labels.push(run.label()),
                None => groups.push((why, vec![run.label()])),
            }
        }
    }
    groups
        .iter()
        .map(|(why, labels)| {
            format!(
                " Left out: {}: {}; {}.",
                labels.join(", "),
                why.why(),
                why.remedy()
            )
        })
        .collect()
}

/// `4.2%`, `0.35%`, `0%`: a share in percent with enough digits to not round a miss to zero.
pub(crate) fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 {
        "0%".into()
    } else if p < 1.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Capitalises the first letter and ends with a full stop.
pub(crate) fn sentence(s: &str) -> String {
    let mut out = match s.chars().next() {
        Some(c) => c.to_uppercase().collect::<String>() + &s[c.len_utf8()..],
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::levels;
    use crate::results::SweepPoint;

    fn recorded(json: &str) -> Results {
        serde_json::from_str(json).expect("recorded results")
    }

    fn dashboard() -> Results {
        recorded(include_str!(
            "../../../../tests/data/dashboard-results.json"
        ))
    }

    fn read_model_lag() -> Results {
        recorded(include_str!(
            "../../../../tests/data/read-model-lag-results.json"
        ))
    }

    #[test]
    fn the_recorded_fixtures_are_sound_evidence() {
        // Re-recorded on a quiet machine: nothing may be left out of their answers.
        for r in [dashboard(), read_model_lag()] {
            assert!(r.runs.iter().all(soundness::is_sound));
            let s = answer(&r, &levels(&r)).unwrap().sentence;
            assert!(!s.contains("Left out"), "{s}");
        }
    }

    #[test]
    fn a_dashboard_answer_never_comes_from_a_run_whose_driver_fell_behind() {
        // A hand-made invalid fixture: normalized at 4 readers marked as fallen behind, with
        // a write p99 of 10 s that would make it the breaking point if it counted.
        let mut r = dashboard();
        let run = r
            .runs
            .iter_mut()
            .find(|x| {
                x.backend.name() == "normalized" && x.sweep_point == Some(SweepPoint::Readers(4))
            })
            .unwrap();
        run.metrics.driver_behind = true;
        let key = crate::metrics::MetricKey::Writes.to_string();
        run.metrics.ops.get_mut(&key).unwrap().latency.p99_us = 10_000_000;
        let s = answer(&r, &levels(&r)).unwrap().sentence;
        assert!(!s.contains("10.0s"), "{s}");
        assert!(s.ends_with(
            "Left out: normalized @ 4 readers: the driver fell behind (ops started late while a \
             worker was free), so the numbers describe the harness; run with fewer workers or on \
             a quieter machine."
        ), "{s}");
    }

    #[test]
    fn a_control_run_whose_driver_fell_behind_is_left_out_of_the_lag_answer() {
        // A hand-made invalid fixture: cqrs-sync, the control, marked as fallen behind.
        let mut r = read_model_lag();
        r.runs
            .iter_mut()
            .find(|x| x.backend.name() == "cqrs-sync")
            .unwrap()
            .metrics
            .driver_behind = true;
        let s = answer(&r, &levels(&r)).unwrap().sentence;
        assert!(!s.contains("on **cqrs-sync**"), "{s}");
        assert!(s.contains("on **cqrs-async** "), "{s}");
        assert!(
            s.contains("Left out: cqrs-sync: the driver fell behind"),
            "{s}"
        );
    }

    #[test]
    fn runs_too_short_to_decide_are_left_out_and_named_once_per_reason() {
        // Hand-made: both async runs measured 3 s, under the 5 s a decision needs.
        let mut r = read_model_lag();
        for run in r.runs.iter_mut().filter(|x| x.backend.read_side_lags()) {
            run.metrics.measured_seconds = 3.0;
        }
        let s = answer(&r, &levels(&r)).unwrap().sentence;
        assert!(
            s.starts_with("No backend with an asynchronous read side"),
            "{s}"
        );
        assert!(s.ends_with(
            "Left out: cqrs-async, event-sourced: it measured 3.0 s after warm-up, under the 5 \
             s a decision needs; give a longer duration (or a shorter warm-up)."
        ), "{s}");
    }
}
