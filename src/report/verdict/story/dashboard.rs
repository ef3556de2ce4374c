//! "Order creation goes from 100 ms to 5 seconds" while dashboard queries run. Along the
//! `readers` sweep: the first reader count at which `normalized` writes **break** — they fell
//! behind their open-loop rate (saturated), or their write p99 is at least [`BREAK_FACTOR`]×
//! what it was at the lowest reader count, by more than the harness's floor — and what every
//! other backend's writes do at that reader count. When no backend breaks, it says so with the
//! figures at the highest reader count.

use super::super::{below_floor, floor_of, p99, saturated_in};
use super::{sentence, Answer};
use crate::backend::{normalized, BackendKind};
use crate::format::fmt_ms;
use crate::metrics::MetricKey;
use crate::report::{level_label, Level};
use crate::results::BackendRun;

/// How many times its unloaded write p99 a backend's write p99 may grow before it counts as
/// broken.
pub const BREAK_FACTOR: f64 = 2.0;

/// How a backend's writes fare at one level, against its own at the lowest level.
struct Fare {
    p99: u64,
    base: u64,
    saturated: bool,
    broken: bool,
}

fn fare(run: &BackendRun, base: &BackendRun) -> Option<Fare> {
    let p = p99(run, MetricKey::Writes)?;
    let b = p99(base, MetricKey::Writes)?;
    let saturated = saturated_in(run, MetricKey::Writes);
    let grew =
        p as f64 >= b as f64 * BREAK_FACTOR && !below_floor(p, b, floor_of(run, base, true, "p99"));
    Some(Fare {
        p99: p,
        base: b,
        saturated,
        broken: saturated || grew,
    })
}

fn run_of<'a>(level: &Level<'a>, kind: BackendKind) -> Option<&'a BackendRun> {
    level.runs.iter().copied().find(|r| r.backend == kind)
}

/// `write p99 45.0ms, 14.5× its 3.1ms at 0 readers, and it fell behind its 100 writes/s`.
fn describe(f: &Fare, base_label: &str, run: &BackendRun) -> String {
    let mut s = format!(
        "write p99 {}, {:.1}× its {} at {base_label}",
        fmt_ms(f.p99 as f64),
        f.p99 as f64 / (f.base as f64).max(1.0),
        fmt_ms(f.base as f64)
    );
    if f.saturated {
        let target = run
            .rates
            .write_target
            .map(|t| format!(" of {t:.0} writes/s"))
            .unwrap_or_default();
        s.push_str(&format!(
            ", and it fell behind (achieved {:.0}{target})",
            run.rates.write_achieved
        ));
    }
    s
}

pub(super) fn answer(levels: &[Level]) -> Answer {
    let plot = Some("load".to_string());
    let Some(first) = levels.first() else {
        return Answer {
            sentence: "No run was recorded, so there is nothing to answer from.".into(),
            plot: None,
        };
    };
    let base_label = level_label(first);
    let Some(norm_base) = run_of(first, normalized::KIND) else {
        return Answer {
            sentence: "normalized did not run, so this run cannot say when its writes break."
                .into(),
            plot,
        };
    };
    // The first level at which normalized's writes break.
    let broke = levels.iter().skip(1).find_map(|l| {
        let run = run_of(l, normalized::KIND)?;
        let f = fare(run, norm_base)?;
        f.broken.then_some((l, run, f))
    });
    let others = |level: &Level| -> Vec<(BackendKind, String, bool)> {
        level
            .runs
            .iter()
            .filter(|r| r.backend != normalized::KIND)
            .filter_map(|r| {
                let base = run_of(first, r.backend)?;
                let f = fare(r, base)?;
                Some((r.backend, describe(&f, &base_label, r), f.broken))
            })
            .collect()
    };
    let sentence_text = match broke {
        Some((level, run, f)) => {
            let there: Vec<String> = others(level)
                .into_iter()
                .map(|(k, d, broken)| {
                    format!(
                        "**{k}** {} with {d}",
                        if broken { "breaks too" } else { "holds" }
                    )
                })
                .collect();
            let mut s = format!(
                "normalized order writes break at **{}**: {}",
                level_label(level),
                describe(&f, &base_label, run)
            );
            if !there.is_empty() {
                s.push_str(&format!("; there {}", there.join(", ")));
            }
            s
        }
        None => {
            let last = levels.last().expect("non-empty");
            let norm = run_of(last, normalized::KIND)
                .and_then(|r| fare(r, norm_base).map(|f| describe(&f, &base_label, r)));
            let rest = others(last);
            let broken: Vec<String> = rest
                .iter()
                .filter(|(_, _, b)| *b)
                .map(|(k, d, _)| format!("**{k}** does ({d})"))
                .collect();
            let held: Vec<String> = rest
                .iter()
                .filter(|(_, _, b)| !*b)
                .map(|(k, d, _)| format!("{k} {d}"))
                .collect();
            let who = if broken.is_empty() {
                "no backend's writes break".to_string()
            } else {
                "normalized order writes do not break".to_string()
            };
            let mut s = format!(
                "{who} up to **{}** (the most readers tried)",
                level_label(last)
            );
            if let Some(n) = norm {
                s.push_str(&format!(": normalized {n}"));
            }
            if !broken.is_empty() {
                s.push_str(&format!(", but {}", broken.join(", ")));
            }
            if !held.is_empty() {
                s.push_str(&format!("; {}", held.join(", ")));
            }
            s
        }
    };
    Answer {
        sentence: sentence(&sentence_text),
        plot,
    }
}
