//! The verdict: what the numbers say. Each finding is a typed value computed from the results
//! in a module of its own (unit-tested on hand-built runs); this module puts them in order —
//! a headline, then titled sections of lines in light markup (`**bold**`, `` `code` ``) — and
//! [`Verdict::document`] hands them to the document model ([`super::document`]), which renders
//! markdown, HTML and the terminal.
//!
//! - [`decision`]: the simplest architecture that meets the scenario's budgets (it opens the
//!   report), from sound evidence only ([`soundness`]).
//! - [`story`]: a story scenario's one-sentence answer to its question.
//! - [`load`]: saturated runs (a finding: the backends that kept up win the level) apart from
//!   runs whose driver fell behind or whose window was too short (invalid: no winner).
//! - [`ranking`]: who is fastest at each read level (p99; Welch's t-test over per-second p99s,
//!   gaps under the harness's floor never ranked).
//! - [`overhead`], [`staleness`], [`storage`]: what CQRS costs here — write overhead over the
//!   baseline, lag and read-your-writes, bytes beside the write tables.
//! - [`read_gain`]: what read models buy, per query.
//! - `alternatives`: would triggers, a materialized view or a replica have been enough?
//! - [`event_sourced`]: event sourcing against cqrs-async.
//! - [`crossover`]: do reads hurt writes — the first read level at which the baseline's writes
//!   fall behind CQRS.
//! - [`thresholds`], [`correctness`]: the scenario's thresholds; verify and errors.
//!
//! A backend's role (the baseline, CQRS, …) comes from its registry entry, never its name.

mod alternatives;
pub mod correctness;
pub mod crossover;
pub mod decision;
pub mod event_sourced;
mod evidence;
pub mod load;
pub mod overhead;
pub mod ranking;
pub mod read_gain;
pub mod soundness;
pub mod staleness;
pub mod storage;
pub mod story;
#[cfg(test)]
mod testing;
pub mod thresholds;
mod words;

use super::stats::ALPHA;
use super::{fmt_ms, level_label, levels, Level};
use crate::backend::registry::Role;
use crate::backend::BackendKind;
use crate::metrics::MetricKey;
use crate::results::{BackendRun, Results};
pub use evidence::interval_values;
use evidence::{below_floor, by_backend, floor_of, p50, p99, read_p99s, saturated_in, write_p99s};
use words::{achieved, below_resolution, bold_list, join_and, pct, signed_ms};
pub use words::{fmt_p, saturation_detail};

/// One titled group of verdict lines. Lines use `**bold**` and `` `code` `` only.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// No run's driver fell behind, so every run is a valid measurement and a winner may be
    /// named (saturated runs are valid: saturation is a finding).
    pub fair: bool,
    /// The simplest architecture that meets the scenario's budgets (it opens the report).
    pub decision: decision::Decision,
    /// For a story scenario, the one-sentence answer to its question (it opens the report).
    pub answer: Option<story::Answer>,
    /// The short answer, one or two sentences.
    pub headline: String,
    pub sections: Vec<Section>,
}

impl Verdict {
    /// The verdict as a document: its heading, the headline, a titled list per section.
    pub fn document(&self) -> Vec<super::document::Block> {
        use super::document::{Block, Inline};
        let mut out = vec![
            Block::Heading(2, "Verdict".into()),
            Block::Paragraph(Inline::parse(&self.headline)),
        ];
        for s in &self.sections {
            out.push(Block::Heading(3, s.title.clone()));
            out.push(Block::Bullets(
                s.lines.iter().map(|l| Inline::parse(l)).collect(),
            ));
        }
        out
    }

    /// A story's answer without markup, for a terminal.
    pub fn plain_answer(&self) -> Option<String> {
        self.answer
            .as_ref()
            .map(|a| a.sentence.replace("**", "").replace('`', ""))
    }

    /// The headline without markup, for a terminal.
    pub fn plain_headline(&self) -> String {
        self.headline.replace("**", "").replace('`', "")
    }
}

/// Computes the verdict.
pub fn verdict(results: &Results) -> Verdict {
    let levels = levels(results);
    // Runs that cannot decide: the driver fell behind, or the window was too short.
    let invalid: Vec<&BackendRun> = results
        .runs
        .iter()
        .filter(|r| !soundness::is_sound(r))
        .collect();
    let fair = invalid.is_empty();
    let mut sections = load::load(&levels, &invalid).sections();

    let mut headline_parts: Vec<String> = Vec::new();
    let mut fastest = Vec::new();
    for level in &levels {
        let label = level_label(level);
        let prefix = if levels.len() > 1 {
            format!("at {label}: ")
        } else {
            String::new()
        };
        let w = ranking::rank(level, MetricKey::Writes, write_p99s);
        let r = ranking::rank(level, MetricKey::Reads, read_p99s);
        if let Some(w) = &w {
            fastest.push(format!("{prefix}{}", w.line("write", fair)));
        }
        if let Some(r) = &r {
            fastest.push(format!("{prefix}{}", r.line("read", fair)));
        }
        // The headline speaks about the last (highest) read level.
        if std::ptr::eq(level, levels.last().expect("non-empty")) && fair {
            let at = if levels.len() > 1 {
                format!(" at the highest read level ({label})")
            } else {
                String::new()
            };
            if let Some(w) = &w {
                headline_parts.push(format!("lowest write p99{at}: {}", w.named()));
            }
            if let Some(r) = &r {
                headline_parts.push(format!("lowest read p99: {}", r.named()));
            }
            let gains = read_gain::read_gains(level);
            if let Some((q, ratio, k)) =
                read_gain::largest(&gains).map(|g| (g.query, g.ratio(), g.best))
            {
                if ratio >= 1.5 {
                    headline_parts.push(format!(
                        "read models cut `{q}` p99 {ratio:.1}× ({k} vs normalized)",
                    ));
                } else if ratio < 1.0 / 1.5 {
                    headline_parts.push(format!(
                        "read models make `{q}` p99 {:.1}× slower ({k} vs normalized)",
                        1.0 / ratio
                    ));
                }
            }
            for run in level.runs.iter().filter(|r| r.metrics.lag.count > 0) {
                headline_parts.push(format!(
                    "{} pays with a {} of p99 {}{}",
                    run.backend,
                    run.backend.lag_name(),
                    fmt_ms(run.metrics.lag.p99_us as f64),
                    if run.metrics.ryw.probes > 0 {
                        format!(
                            " and {:.0}% of reads right after a write not seeing it yet",
                            run.metrics.ryw.miss_share * 100.0
                        )
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }
    if !fastest.is_empty() {
        sections.push(Section {
            title: format!(
                "Fastest (p99; Welch's t-test over per-second p99s, α = {ALPHA}; gaps under the harness's floor are not ranked)"
            ),
            lines: fastest,
        });
    }

    let mut costs = Vec::new();
    for level in &levels {
        let prefix = if levels.len() > 1 {
            format!("at {}: ", level_label(level))
        } else {
            String::new()
        };
        for kind in BackendKind::all()
            .into_iter()
            .filter(|k| k.role() != Role::Baseline)
        {
            if let Some(o) = overhead::overhead(level, kind) {
                costs.push(format!("{prefix}{}", o.line()));
            }
        }
        for st in staleness::staleness(level) {
            costs.push(format!("{prefix}{}", st.line()));
        }
    }
    if let Some(first) = levels.first() {
        costs.extend(storage::storage(first).lines());
    }
    if !costs.is_empty() {
        sections.push(Section {
            title: "What CQRS costs here".into(),
            lines: costs,
        });
    }

    let mut gains = Vec::new();
    for level in &levels {
        let prefix = if levels.len() > 1 {
            format!("at {}: ", level_label(level))
        } else {
            String::new()
        };
        if let Some(l) = read_gain::line(&read_gain::read_gains(level)) {
            gains.push(format!("{prefix}{l}"));
        }
        // Closed-loop reads: how many reads each backend served in the same time.
        if level.runs.iter().all(|r| r.rates.read_target.is_none())
            && level.runs.iter().any(|r| r.rates.read_achieved > 0.0)
        {
            gains.push(format!(
                "{prefix}read throughput (closed loop, same readers): {}",
                level
                    .runs
                    .iter()
                    .map(|r| format!("{} {:.0} reads/s", r.backend, r.rates.read_achieved))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if !gains.is_empty() {
        sections.push(Section {
            title: "What CQRS buys here".into(),
            lines: gains,
        });
    }

    if let Some(section) = alternatives::section(&levels) {
        sections.push(section);
    }
    let mut es = Vec::new();
    for level in &levels {
        if let Some(l) = event_sourced::event_sourced(level).map(|e| e.line()) {
            let prefix = if levels.len() > 1 {
                format!("at {}: ", level_label(level))
            } else {
                String::new()
            };
            es.push(format!("{prefix}{l}"));
        }
    }
    if !es.is_empty() {
        sections.push(Section {
            title: "Event sourcing vs cqrs-async".into(),
            lines: es,
        });
    }

    let cross = crossover::crossover(results, &levels, fair);
    if let Some(h) = cross.headline() {
        headline_parts.insert(0, h);
    }
    sections.push(Section {
        title: "Do reads hurt writes?".into(),
        lines: cross.lines(),
    });

    let checked = thresholds::thresholds(results);
    let (tlines, thresholds_ok) = (checked.lines(), checked.all_met());
    sections.push(Section {
        title: "Thresholds".into(),
        lines: tlines,
    });
    let correctness = correctness::correctness(results);
    let (clines, correct) = (correctness.lines(), correctness.read_models_right());
    sections.push(Section {
        title: "Correctness".into(),
        lines: clines,
    });

    let mut headline = if fair {
        if headline_parts.is_empty() {
            "No latencies were measured.".to_string()
        } else {
            let mut s = headline_parts.join("; ");
            if let Some(first) = s.get(..1) {
                s = first.to_uppercase() + &s[1..];
            }
            s + "."
        }
    } else {
        let behind: Vec<String> = invalid
            .iter()
            .filter(|r| r.metrics.driver_behind)
            .map(|r| r.label())
            .collect();
        let short: Vec<String> = invalid
            .iter()
            .filter(|r| r.metrics.measured_seconds < soundness::MIN_MEASURED_SECONDS)
            .map(|r| r.label())
            .collect();
        let mut why = Vec::new();
        if !behind.is_empty() {
            why.push(format!(
                "the driver fell behind in {} of {} runs ({}), so their numbers describe the harness, not the backends",
                behind.len(),
                results.runs.len(),
                join_and(&behind)
            ));
        }
        if !short.is_empty() {
            why.push(format!(
                "{} of {} runs measured under {:.0} s ({}), too short to decide",
                short.len(),
                results.runs.len(),
                soundness::MIN_MEASURED_SECONDS,
                join_and(&short)
            ));
        }
        format!("**No winner**: {}.", why.join("; "))
    };
    if !correct {
        headline.push_str(" **Some read models are wrong** (see Correctness).");
    }
    match thresholds_ok {
        Some(true) => headline.push_str(" Every threshold met."),
        Some(false) => headline.push_str(" **Thresholds missed** (see Thresholds)."),
        None => {}
    }
    Verdict {
        fair,
        decision: decision::decide(results, &levels),
        answer: story::answer(results, &levels),
        headline,
        sections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::event_sourcing::sample_with_event_sourced;

    #[test]
    fn the_verdict_says_what_event_sourcing_costs_and_buys() {
        let v = verdict(&sample_with_event_sourced());
        let section = v
            .sections
            .iter()
            .find(|s| s.title == "Event sourcing vs cqrs-async")
            .unwrap_or_else(|| panic!("no event-sourcing section: {v:#?}"));
        assert_eq!(section.lines.len(), 1);
        let line = &section.lines[0];
        for needle in [
            "**event-sourced** vs **cqrs-async**",
            "writes take 2.00× as long at p50",
            "2.00× at p99",
            "3.0% of attempts lost a race on a stream version",
            "**2 commands gave up**",
            "snapshots every 10 versions, 25% of loads from one",
            "3 / 9 events read",
            "It buys a write model that is the history itself",
            "4.00 MiB of it the event store",
        ] {
            assert!(line.contains(needle), "{needle:?} not in: {line}");
        }
        assert!(
            !line.contains("  "),
            "one sentence, no runs of spaces: {line}"
        );
        // The sample alone has no event-sourced run: no such section.
        let plain: Results =
            serde_json::from_str(include_str!("../../reports/sample/results.json")).unwrap();
        assert!(verdict(&plain)
            .sections
            .iter()
            .all(|s| s.title != "Event sourcing vs cqrs-async"));
    }
}
