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
pub fn answer(results: &Results, levels: &[Level]) -> Option<Answer> {
    let story = results.scenario.story?;
    Some(match story {
        Story::ReadModelLag => read_model_lag::answer(results, levels),
        Story::Dashboard => dashboard::answer(levels),
        Story::Denormalization => denormalization::answer(levels, results.scenario.dataset.orders),
        Story::MonthlyReport => monthly_report::answer(results, levels),
    })
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
