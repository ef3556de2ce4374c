//! Event sourcing against `cqrs-async` (the backend its registry entry measures it against:
//! the same events, decided on normalized rows): what keeping events as the write model costs
//! (write latency ratio, version conflicts, give-ups, rehydration, storage) and what it buys.

use super::{below_floor, below_resolution, by_backend, floor_of, Level};
use crate::format::{fmt_bytes, fmt_ms};
use crate::metrics::Stat;
use crate::report::event_sourcing::{versus_async, EsVersusAsync};

/// The event-sourced backend against what its registry entry measures it against
/// (cqrs-async) at one level, with the write floor between the two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSourced {
    pub versus: EsVersusAsync,
    /// The larger of the two runs' write floors at p99, µs.
    pub floor_us: Option<u64>,
}

/// The comparison at `level`, when both ran with writes.
pub fn event_sourced(level: &Level) -> Option<EventSourced> {
    let versus = versus_async(&level.runs)?;
    let runs = by_backend(level);
    let floor_us = match (runs.get(&versus.es), runs.get(&versus.against)) {
        (Some(a), Some(b)) => floor_of(a, b, true, Stat::P99),
        _ => None,
    };
    Some(EventSourced { versus, floor_us })
}

impl EventSourced {
    /// The verdict's sentence: what keeping events as the write model costs and buys.
    pub fn line(&self) -> String {
        let v = &self.versus;
        let floor = self.floor_us;
        let against = v.against;
        let f = &v.figures;
        let latency = if below_floor(v.es_write_p99_us, v.async_write_p99_us, floor) {
            format!(
                "write p99 {} vs {}: {}",
                fmt_ms(v.es_write_p99_us as f64),
                fmt_ms(v.async_write_p99_us as f64),
                below_resolution(Stat::P99, floor.unwrap_or_default())
            )
        } else {
            format!(
                "writes take {:.2}× as long at p50 ({} vs {}) and {:.2}× at p99 ({} vs {})",
                v.p50_ratio,
                fmt_ms(v.es_write_p50_us as f64),
                fmt_ms(v.async_write_p50_us as f64),
                v.p99_ratio,
                fmt_ms(v.es_write_p99_us as f64),
                fmt_ms(v.async_write_p99_us as f64),
            )
        };
        let snapshots = if f.snapshot_every > 0 {
            format!(
                "snapshots every {} versions, {:.0}% of loads from one",
                f.snapshot_every,
                f.from_snapshot_share * 100.0
            )
        } else {
            "no snapshots".to_string()
        };
        let conflicts = if f.conflicts == 0 {
            "no version conflicts".to_string()
        } else {
            format!(
                "{:.1}% of attempts lost a race on a stream version and were retried{}",
                f.conflict_rate * 100.0,
                if f.gave_up > 0 {
                    format!(", **{} commands gave up**", f.gave_up)
                } else {
                    ", none gave up".to_string()
                }
            )
        };
        let storage = match (v.es_total_bytes, v.async_total_bytes, f.store_bytes) {
        (Some(e), Some(a), Some(store)) => format!(
            "; it keeps {} in all ({} of it the event store, its only write model) against {} for {}",
            fmt_bytes(e),
            fmt_bytes(store),
            fmt_bytes(a),
            v.against
        ),
        _ => String::new(),
    };
        format!(
        "**{}** vs **{against}** (same events, but {against} decides on normalized rows): {latency}; \
         it pays for rebuilding each stream it touches (rehydration p50 {} / p99 {}, {} / {} events read; {snapshots}) \
         and for optimistic concurrency ({conflicts}); append p50 {} / p99 {}. \
         It buys a write model that is the history itself: every change kept as an event, no \
         normalized tables to keep in step with the log, no locks held while deciding{storage}",
        v.es,
        fmt_ms(f.rehydration_p50_us as f64),
        fmt_ms(f.rehydration_p99_us as f64),
        f.events_read_p50,
        f.events_read_p99,
        fmt_ms(f.append_p50_us as f64),
        fmt_ms(f.append_p99_us as f64),
    )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::event_sourcing::sample_with_event_sourced;
    use crate::report::levels;

    #[test]
    fn a_write_gap_under_the_floor_is_not_a_ratio() {
        let mut r = sample_with_event_sourced();
        let ls = levels(&r);
        let e = event_sourced(&ls[0]).expect("event-sourced and cqrs-async ran");
        // The sample's event-sourced writes take twice cqrs-async's: a ratio, above the floor.
        assert!(
            e.line().contains("writes take 2.00× as long at p50"),
            "{}",
            e.line()
        );
        // With a floor wider than the p99 gap, the same figures are below the resolution.
        let gap = e.versus.es_write_p99_us - e.versus.async_write_p99_us;
        for run in &mut r.runs {
            if let Some(w) = run.floor.as_mut().and_then(|f| f.write.as_mut()) {
                w.p99_us = gap + 1;
            }
        }
        let ls = levels(&r);
        let line = event_sourced(&ls[0]).unwrap().line();
        assert!(!line.contains("as long at p50"), "{line}");
        assert!(
            line.contains(": below the harness's resolution (floor p99 "),
            "{line}"
        );
    }
}
