//! The answer a story scenario (`story = "…"`) opens its report with: one sentence from the
//! measured figures that answers the scenario's question — which backend, at which load, by
//! how much — and the plot that shows it. Each story's logic is a module of its own.

mod dashboard;
mod denormalization;
mod monthly_report;
mod read_model_lag;

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

/// The answer for the story the scenario tells, if it tells one.
/// The story's answer from the runs whose driver kept up: a run where the driver fell behind
/// measured the harness, not the backend, so it is left out, and the answer says so and what
/// to change.
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
                .filter(|r| !r.metrics.driver_behind)
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
    let left_out: Vec<String> = results
        .runs
        .iter()
        .filter(|r| r.metrics.driver_behind)
        .map(|r| r.label())
        .collect();
    if !left_out.is_empty() {
        answer.sentence.push_str(&format!(
            " Left out: {} (the driver fell behind, so the numbers describe the harness; run \
             with fewer workers or on a quieter machine).",
            left_out.join(", ")
        ));
    }
    Some(answer)
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

    fn recorded(json: &str) -> Results {
        serde_json::from_str(json).expect("recorded results")
    }

    #[test]
    fn a_dashboard_answer_never_comes_from_a_run_whose_driver_fell_behind() {
        // The recording has normalized at 4 readers with the driver behind; at 1 and 2 readers
        // normalized's writes hold, and cqrs-async is saturated at 2 readers.
        let r = recorded(include_str!(
            "../../../../tests/data/dashboard-results.json"
        ));
        let s = answer(&r, &levels(&r)).unwrap().sentence;
        assert!(
            s.starts_with(
                "At 100 writes/s, normalized order writes do not break up to **2 readers**"
            ),
            "{s}"
        );
        assert!(!s.contains("an invalid run"), "{s}");
        assert!(s.ends_with("Left out: normalized @ 4 readers (the driver fell behind, so the numbers describe the harness; run with fewer workers or on a quieter machine)."), "{s}");
    }

    #[test]
    fn a_control_run_whose_driver_fell_behind_is_left_out_of_the_lag_answer() {
        // cqrs-sync, the control, fell behind in this recording.
        let r = recorded(include_str!(
            "../../../../tests/data/read-model-lag-results.json"
        ));
        let s = answer(&r, &levels(&r)).unwrap().sentence;
        assert!(!s.contains("on **cqrs-sync**"), "{s}");
        assert!(s.contains("on **cqrs-async** "), "{s}");
        assert!(
            s.contains("Left out: cqrs-sync (the driver fell behind"),
            "{s}"
        );
    }
}
