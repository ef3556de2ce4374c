//! "Order creation goes from 100 ms to 5 seconds" while dashboard queries run. Along the
//! `readers` sweep: the first reader count at which `normalized` writes **break** — they fell
//! behind their open-loop rate (saturated), or their write p99 is at least [`BREAK_FACTOR`]×
//! what it was at the lowest reader count, by more than the harness's floor — and what every
//! other backend's writes do at that reader count. When no backend breaks, it says so with the
//! figures at the highest reader count.

use super::super::{below_floor, floor_of, p99, saturated_in};
use super::{sentence, Answer};
use crate::backend::{registry, BackendKind};
use crate::format::fmt_ms;
use crate::metrics::{MetricKey, Stat};
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
    let grew = p as f64 >= b as f64 * BREAK_FACTOR
        && !below_floor(p, b, floor_of(run, base, true, Stat::P99));
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

/// `write p99 45.0ms (14.5× its 3.1ms at 0 readers, saturated) beside 8 reads/s`.
fn describe(f: &Fare, base_label: &str, run: &BackendRun) -> String {
    let mut s = format!(
        "write p99 {} ({:.1}× its {} at {base_label}",
        fmt_ms(f.p99 as f64),
        f.p99 as f64 / (f.base as f64).max(1.0),
        fmt_ms(f.base as f64)
    );
    if f.saturated {
        s.push_str(", saturated");
    }
    if run.metrics.driver_behind {
        s.push_str(", an invalid run: the driver fell behind");
    }
    s.push(')');
    if run.rates.read_achieved > 0.0 {
        s.push_str(&format!(" beside {:.0} reads/s", run.rates.read_achieved));
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
    // The backend whose writes the story watches: the baseline (normalized).
    let baseline = registry::baseline();
    let Some(norm_base) = run_of(first, baseline) else {
        return Answer {
            sentence: "Normalized did not run, so this run cannot say when its writes break."
                .into(),
            plot,
        };
    };
    // The first level at which normalized's writes break.
    let broke = levels.iter().skip(1).find_map(|l| {
        let run = run_of(l, baseline)?;
        let f = fare(run, norm_base)?;
        f.broken.then_some((l, run, f))
    });
    let others = |level: &Level| -> Vec<(BackendKind, String, bool)> {
        level
            .runs
            .iter()
            .filter(|r| r.backend != baseline)
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
            // The most readers at which normalized has a run (one left out is not a claim).
            let last = levels
                .iter()
                .rev()
                .find(|l| run_of(l, baseline).is_some())
                .unwrap_or(first);
            let norm = run_of(last, baseline)
                .and_then(|r| fare(r, norm_base).map(|f| describe(&f, &base_label, r)));
            let rest = others(last);
            let broken: Vec<String> = rest
                .iter()
                .filter(|(_, _, b)| *b)
                .map(|(k, d, _)| format!("**{k}**'s do: {d}"))
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
    let rate = norm_base
        .rates
        .write_target
        .map(|r| format!("at {r:.0} writes/s, "))
        .unwrap_or_default();
    Answer {
        sentence: sentence(&format!("{rate}{sentence_text}")),
        plot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::levels;
    use crate::results::{Results, SweepPoint};

    /// A recorded run of `scenarios/dashboard-under-load.toml` on SQLite (`duration = "10s"`,
    /// spectra removed) on a quiet machine, every run sound and none saturated. Write p99 in
    /// µs at 0/1/2/4 readers, read off the JSON: normalized 2769/3467/8479/22303 (6.6 reads/s
    /// at 2 readers), cqrs-sync 8791/9327/10559/25503 (8271 reads/s at 2), cqrs-async
    /// 8903/6231/8311/20319 (9276 at 2), event-sourced 3279/3919/6711/9015 (11918 at 2).
    /// So normalized's writes first double at 2 readers (8479 / 2769 = 3.1×), where
    /// event-sourced's do too (6711 / 3279 = 2.05×) and the other two hold.
    fn recorded() -> Results {
        serde_json::from_str(include_str!(
            "../../../../tests/data/dashboard-results.json"
        ))
        .expect("recorded results")
    }

    fn said(r: &Results) -> Answer {
        answer(&levels(r))
    }

    fn run_at<'a>(r: &'a mut Results, backend: &str, readers: u32) -> &'a mut BackendRun {
        r.runs
            .iter_mut()
            .find(|x| {
                x.backend.name() == backend && x.sweep_point == Some(SweepPoint::Readers(readers))
            })
            .unwrap()
    }

    fn set_write_p99(run: &mut BackendRun, us: u64) {
        let key = MetricKey::Writes.to_string();
        run.metrics.ops.get_mut(&key).unwrap().latency.p99_us = us;
    }

    fn write_p99(r: &mut Results, backend: &str, readers: u32) -> u64 {
        p99(run_at(r, backend, readers), MetricKey::Writes).unwrap()
    }

    #[test]
    fn recorded_run_names_where_normalized_breaks_and_who_holds_there() {
        let a = said(&recorded());
        assert_eq!(a.plot.as_deref(), Some("load"));
        let s = a.sentence;
        assert!(s.starts_with("At 100 writes/s, normalized order writes break at **2 readers**: write p99 8.5ms (3.1× its 2.8ms at 0 readers) beside 7 reads/s; there "), "{s}");
        assert!(s.contains("**cqrs-sync** holds with write p99 10.6ms (1.2× its 8.8ms at 0 readers) beside 8271 reads/s"), "{s}");
        assert!(s.contains("**cqrs-async** holds with write p99 8.3ms (0.9× its 8.9ms at 0 readers) beside 9276 reads/s"), "{s}");
        assert!(
            s.ends_with("**event-sourced** breaks too with write p99 6.7ms (2.0× its 3.3ms at 0 readers) beside 11918 reads/s."),
            "{s}"
        );
    }

    #[test]
    fn when_normalized_holds_to_the_last_point_the_others_who_break_are_named() {
        // normalized's writes kept at 1.5× its 0-reader p99 (2769 + 1384 µs) everywhere: it
        // never breaks, and at 4 readers the other three do (25503 / 8791 = 2.9×,
        // 20319 / 8903 = 2.3×, 9015 / 3279 = 2.7×).
        let mut r = recorded();
        let base = write_p99(&mut r, "normalized", 0);
        for readers in [1, 2, 4] {
            set_write_p99(run_at(&mut r, "normalized", readers), base + base / 2);
        }
        let s = said(&r).sentence;
        assert!(s.starts_with("At 100 writes/s, normalized order writes do not break up to **4 readers** (the most readers tried): normalized write p99 4.2ms (1.5× its 2.8ms at 0 readers) beside 5 reads/s, but "), "{s}");
        assert!(s.contains("**cqrs-sync**'s do: write p99 25.5ms (2.9× its 8.8ms at 0 readers) beside 12730 reads/s"), "{s}");
        assert!(s.contains("**cqrs-async**'s do: write p99 20.3ms (2.3× its 8.9ms at 0 readers) beside 10137 reads/s"), "{s}");
        assert!(s.ends_with("**event-sourced**'s do: write p99 9.0ms (2.7× its 3.3ms at 0 readers) beside 15189 reads/s."), "{s}");
    }

    #[test]
    fn saturating_is_breaking_whatever_the_p99() {
        let mut r = recorded();
        run_at(&mut r, "normalized", 1).metrics.saturated = true;
        let s = said(&r).sentence;
        // 3467 / 2769 = 1.25×: not a doubling, but saturated.
        assert!(s.starts_with("At 100 writes/s, normalized order writes break at **1 reader**: write p99 3.5ms (1.3× its 2.8ms at 0 readers, saturated)"), "{s}");
    }

    #[test]
    fn no_backend_breaks_says_so_up_to_the_most_readers() {
        let mut r = recorded();
        for backend in ["normalized", "cqrs-sync", "cqrs-async", "event-sourced"] {
            let base = write_p99(&mut r, backend, 0);
            for readers in [1, 2, 4] {
                let run = run_at(&mut r, backend, readers);
                run.metrics.saturated = false;
                set_write_p99(run, base + base / 2);
            }
        }
        let s = said(&r).sentence;
        assert!(s.starts_with("At 100 writes/s, no backend's writes break up to **4 readers** (the most readers tried): normalized write p99 4.2ms (1.5× its 2.8ms at 0 readers"), "{s}");
        assert!(!s.contains(" but "), "{s}");
        assert!(
            // 8791 + 4395 µs.
            s.contains("; cqrs-sync write p99 13.2ms (1.5× its 8.8ms at 0 readers)"),
            "{s}"
        );
    }

    #[test]
    fn a_doubling_within_the_harness_floor_is_not_a_break() {
        let mut r = recorded();
        // 100 µs → 250 µs: 2.5×, but by 150 µs, under the floor: normalized's write p99
        // floors are 302/127/982/776 µs at 0/1/2/4 readers, so each pair's is at least 302.
        set_write_p99(run_at(&mut r, "normalized", 0), 100);
        for readers in [1, 2, 4] {
            set_write_p99(run_at(&mut r, "normalized", readers), 250);
        }
        let s = said(&r).sentence;
        assert!(s.contains("normalized order writes do not break"), "{s}");
    }

    #[test]
    fn without_normalized_it_cannot_say() {
        let mut r = recorded();
        r.runs
            .retain(|x| x.backend != crate::backend::normalized::KIND);
        let s = said(&r).sentence;
        assert!(s.starts_with("Normalized did not run"), "{s}");
    }
}
