//! How the findings phrase figures: lists, p-values, percentages, signed durations, the
//! harness's resolution, what saturated and what a run achieved.

use crate::backend::BackendKind;
use crate::format::fmt_ms;
use crate::metrics::Stat;
use crate::results::BackendRun;

/// `a`, `a and b`, `a, b and c`.
pub(super) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `p = 0.012` / `p < 0.001`.
pub fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

/// `+28%`: `new` against `base`; `n/a` without a base.
pub(super) fn pct(new: f64, base: f64) -> String {
    if base <= 0.0 {
        return "n/a".into();
    }
    format!("{:+.0}%", (new - base) / base * 100.0)
}

/// `+1.2ms`, `-300µs`.
pub(super) fn signed_ms(us: f64) -> String {
    let sign = if us < 0.0 { "-" } else { "+" };
    format!("{sign}{}", fmt_ms(us.abs()))
}

/// `below the harness's resolution (floor p99 1.2ms)`.
pub(super) fn below_resolution(stat: Stat, floor: u64) -> String {
    format!(
        "below the harness's resolution (floor {stat} {})",
        fmt_ms(floor as f64)
    )
}

/// What saturated in a run, from its numbers: `writes waited for workers (queue wait p99 …,
/// max …; 12 ops waited), 3 ops never started (3 writes, 0 reads)`.
pub fn saturation_detail(run: &BackendRun) -> String {
    let m = &run.metrics;
    let who = match (run.rates.write_target, run.rates.read_target) {
        (Some(_), None) => "writes",
        (None, Some(_)) => "reads",
        _ => "ops",
    };
    let mut parts = Vec::new();
    if m.waited_for_worker > 0 {
        parts.push(format!(
            "{who} waited for workers (queue wait p99 {}, max {}; {} ops waited for a worker)",
            fmt_ms(m.queue_wait.p99_us as f64),
            fmt_ms(m.queue_wait.max_us as f64),
            m.waited_for_worker
        ));
    }
    let un = m.unstarted.total();
    if un > 0 {
        parts.push(format!(
            "{un} ops came due and never started ({} writes, {} reads)",
            m.unstarted.writes, m.unstarted.reads
        ));
    }
    if parts.is_empty() {
        parts.push("it fell behind its target rate".into());
    }
    join_and(&parts)
}

/// `achieved 93 writes/s and 200 reads/s of 100 and 200 asked`.
pub(super) fn achieved(run: &BackendRun) -> String {
    format!(
        "achieved {:.0} writes/s and {:.0} reads/s{}",
        run.rates.write_achieved,
        run.rates.read_achieved,
        match (run.rates.write_target, run.rates.read_target) {
            (Some(w), Some(rd)) => format!(" of {w:.0} and {rd:.0} asked"),
            (Some(w), None) => format!(" ({w:.0} writes/s asked)"),
            (None, Some(rd)) => format!(" ({rd:.0} reads/s asked)"),
            (None, None) => String::new(),
        }
    )
}

/// `**a**, **b** and **c**`.
pub(super) fn bold_list(kinds: &[BackendKind]) -> String {
    join_and(&kinds.iter().map(|k| format!("**{k}**")).collect::<Vec<_>>())
}
