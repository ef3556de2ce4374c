//! Which of the seed's failure stories a scenario tells (`story = "read-model-lag"`), so the
//! report can open with the one-sentence answer to that story's question.

use serde::{Deserialize, Serialize};

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
}
