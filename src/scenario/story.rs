//! Which of the seed's failure stories a scenario tells (`story = "read-model-lag"`), so the
//! report can open with the one-sentence answer to that story's question.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Sweep;
use crate::domain::QueryKind;

/// One of the four production failures the tool exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Story {
    /// "Order creation goes from 100 ms to 5 seconds" while dashboard queries run.
    Dashboard,
    /// "The report query runs for 10 minutes and locks tables."
    MonthlyReport,
    /// "Product details stored in each order line; a price change takes 2 hours."
    Denormalization,
    /// "User creates an order, immediately queries it: not found."
    ReadModelLag,
}

impl Story {
    pub const ALL: [Story; 4] = [
        Story::Dashboard,
        Story::MonthlyReport,
        Story::Denormalization,
        Story::ReadModelLag,
    ];

    /// The name a scenario file gives it.
    pub fn name(self) -> &'static str {
        match self {
            Story::Dashboard => "dashboard",
            Story::MonthlyReport => "monthly-report",
            Story::Denormalization => "denormalization",
            Story::ReadModelLag => "read-model-lag",
        }
    }

    pub fn from_name(name: &str) -> Option<Story> {
        Story::ALL.into_iter().find(|s| s.name() == name)
    }

    /// What the story needs of its scenario's (valid) read mix and sweep to be answered, as
    /// `(field, what is wrong)`: the monthly report runs `monthly_report` as the long query
    /// of closed-loop report readers, against a baseline without it (0 readers).
    pub fn problems(
        self,
        reads_mix: &BTreeMap<QueryKind, f64>,
        sweep: Option<&Sweep>,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self != Story::MonthlyReport {
            return out;
        }
        if reads_mix
            .get(&QueryKind::MonthlyReport)
            .is_none_or(|w| *w <= 0.0)
        {
            out.push((
                "reads.mix",
                "the monthly-report story needs `monthly_report` in the read mix (the long \
                 report its readers run)"
                    .to_string(),
            ));
        }
        match sweep {
            Some(Sweep::Readers(r)) if r.first() == Some(&0) && r.iter().any(|n| *n > 0) => {}
            _ => out.push((
                "sweep.readers",
                "the monthly-report story compares the writes without the report and with it: \
                 give `[sweep] readers = [0, 1]` (0 first, then report readers running it back \
                 to back)"
                    .to_string(),
            )),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in Story::ALL {
            assert_eq!(Story::from_name(s.name()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
        assert_eq!(Story::from_name("dashboards"), None);
    }

    #[test]
    fn the_monthly_report_needs_its_query_and_a_baseline_first() {
        let report: BTreeMap<QueryKind, f64> = [(QueryKind::MonthlyReport, 1.0)].into();
        let other: BTreeMap<QueryKind, f64> = [(QueryKind::TopProducts, 1.0)].into();
        let good = Sweep::Readers(vec![0, 1]);
        assert!(Story::MonthlyReport
            .problems(&report, Some(&good))
            .is_empty());
        fn fields(mix: &BTreeMap<QueryKind, f64>, sweep: Option<&Sweep>) -> Vec<&'static str> {
            Story::MonthlyReport
                .problems(mix, sweep)
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        }
        assert_eq!(fields(&other, Some(&good)), ["reads.mix"]);
        assert_eq!(fields(&report, None), ["sweep.readers"]);
        assert_eq!(
            fields(&report, Some(&Sweep::Readers(vec![1, 2]))),
            ["sweep.readers"]
        );
        assert_eq!(
            fields(&report, Some(&Sweep::ReadRates(vec![0.0, 5.0]))),
            ["sweep.readers"]
        );
        assert!(Story::Dashboard.problems(&other, None).is_empty());
    }
}
