//! A history to check and the faults its events are delivered under, drawn by proptest from
//! a seed (VOPR-style: each history first picks its own fault rates, then its faults), and
//! the delivery schedule the faults make of the history's events: which events a consumer
//! receives, in which batches, where it crashes before its checkpoint commits and where the
//! projection is rebuilt from scratch. Pure: no database.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;
use serde::{Deserialize, Serialize};

use crate::db::sql::Param;

/// One command of a history: the pack's command `command`, its parameters drawn for op
/// `index` of the pack's op stream (a pure function of the seed and the index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub command: String,
    pub index: u64,
}

/// A delivery fault. Positions count from the end of what they index (0: the last); a fault
/// past the start does nothing. So a history that proptest shrinks by dropping its first
/// commands keeps its faults on the same events, and a fault that lands nowhere is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Delivery `at` is delivered again, `later` deliveries after it (an ack lost).
    Duplicate { at: usize, later: usize },
    /// Every event is delivered twice in a row.
    DuplicateAll,
    /// Deliveries `at` and `at + 1` trade places when their events belong to different
    /// streams (the pack's `stream_key`), as two broker partitions can deliver them; the
    /// order within one stream is kept.
    Reorder { at: usize },
    /// Batch `at` is applied and the process killed before its checkpoint commits; the
    /// consumer resumes and receives the batch again.
    Crash { at: usize },
    /// Before batch `at`, the projection is rebuilt from scratch: the read models go back to
    /// the seed and the log up to the furthest event delivered so far is applied again, in
    /// log order.
    Rebuild { at: usize },
}

/// The weights a history drew for each kind of fault (0: none of that kind), shown with a
/// failure so a reader knows what the history was exposed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub duplicate: u32,
    pub duplicate_all: u32,
    pub reorder: u32,
    pub crash: u32,
    pub rebuild: u32,
}

impl std::fmt::Display for Rates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "weights duplicate {} · duplicate-all {} · reorder {} · crash {} · rebuild {}",
            self.duplicate, self.duplicate_all, self.reorder, self.crash, self.rebuild
        )
    }
}

/// A history: commands run in order (each its own transaction), then their events delivered
/// under `faults` in batches of `batch_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub ops: Vec<Op>,
    pub batch_size: usize,
    pub rates: Rates,
    pub faults: Vec<Fault>,
}

/// How large histories get.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_ops: usize,
    pub max_faults: usize,
    pub max_batch: usize,
}

/// Histories over `commands` (the pack's command names), with faults drawn at rates each
/// history picks first. `faults: false`: no faults at all (histories delivered in order).
pub fn histories(
    commands: Vec<String>,
    bounds: Bounds,
    faults: bool,
) -> impl Strategy<Value = History> {
    let n = commands.len().max(1);
    let rate = if faults { 0..=4u32 } else { 0..=0u32 };
    (
        rate.clone(),
        rate.clone(),
        rate.clone(),
        rate.clone(),
        rate,
        1..=bounds.max_batch.max(1),
    )
        .prop_flat_map(move |(d, da, r, c, rb, batch_size)| {
            let rates = Rates {
                duplicate: d,
                // Every event twice is one blunt fault: rarer than the others.
                duplicate_all: da / 2,
                reorder: r,
                crash: c,
                rebuild: rb,
            };
            let commands = commands.clone();
            let ops = vec(
                (0..n, 0..1_000_000u64).prop_map(move |(c, index)| Op {
                    command: commands[c % commands.len()].clone(),
                    index,
                }),
                1..=bounds.max_ops.max(1),
            );
            let faults = fault_strategy(rates, bounds);
            // Faults first: proptest shrinks a tuple's parts in order, so a fault's position
            // comes down to the smallest that still fails (below the history's length) before
            // commands are dropped from the front, which then keeps it where it was.
            (faults, ops).prop_map(move |(faults, ops)| History {
                ops,
                batch_size,
                rates,
                faults,
            })
        })
}

fn fault_strategy(rates: Rates, bounds: Bounds) -> BoxedStrategy<Vec<Fault>> {
    let max_faults = bounds.max_faults;
    // Positions from the end, over about as many deliveries as a history has events.
    let at = 0..(2 * bounds.max_ops).max(2);
    let kinds: Vec<(u32, BoxedStrategy<Fault>)> = vec![
        (
            rates.duplicate,
            (at.clone(), 0..4usize)
                .prop_map(|(at, later)| Fault::Duplicate { at, later })
                .boxed(),
        ),
        (rates.duplicate_all, Just(Fault::DuplicateAll).boxed()),
        (
            rates.reorder,
            at.clone().prop_map(|at| Fault::Reorder { at }).boxed(),
        ),
        (
            rates.crash,
            at.clone().prop_map(|at| Fault::Crash { at }).boxed(),
        ),
        (
            rates.rebuild,
            at.prop_map(|at| Fault::Rebuild { at }).boxed(),
        ),
    ];
    let kinds: Vec<_> = kinds.into_iter().filter(|(w, _)| *w > 0).collect();
    if kinds.is_empty() {
        return Just(Vec::new()).boxed();
    }
    vec(Union::new_weighted(kinds), 0..=max_faults).boxed()
}

/// What the consumer goes through, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A batch of events (indexes into the history's events, which are in log order)
    /// received; with `crash`, applied and killed before the checkpoint commits, after
    /// which the same batch is received again (a step of its own).
    Batch { events: Vec<usize>, crash: bool },
    /// The projection restarted from scratch, then `replayed` (the log up to the furthest
    /// event delivered so far, once each, in log order) applied from the log.
    Rebuild { replayed: Vec<usize> },
}

/// The steps `faults` make of `streams.len()` events (event `i`'s stream is `streams[i]`;
/// `None`: the pack declares no stream key for it, and it is never reordered).
pub fn schedule(streams: &[Option<Param>], batch_size: usize, faults: &[Fault]) -> Vec<Step> {
    schedule_told(streams, batch_size, faults).0
}

/// [`schedule`], and each fault as it landed on these events, for a reader (a fault that
/// changed nothing, such as a reorder of one stream's events, is left out).
pub fn schedule_told(
    streams: &[Option<Param>],
    batch_size: usize,
    faults: &[Fault],
) -> (Vec<Step>, Vec<String>) {
    let n = streams.len();
    let mut told = Vec::new();
    let mut order: Vec<usize> = (0..n).collect();
    for f in faults {
        if let Fault::Reorder { at } = f {
            if order.len() >= 2 && *at <= order.len() - 2 {
                let i = order.len() - 2 - at;
                let (a, b) = (&streams[order[i]], &streams[order[i + 1]]);
                if a.is_some() && b.is_some() && a != b {
                    told.push(format!(
                        "events {} and {} (different streams) delivered in swapped order",
                        order[i],
                        order[i + 1]
                    ));
                    order.swap(i, i + 1);
                }
            }
        }
    }
    if faults.contains(&Fault::DuplicateAll) && n > 0 {
        told.push("every event delivered twice".to_string());
        order = order.into_iter().flat_map(|e| [e, e]).collect();
    }
    for f in faults {
        if let Fault::Duplicate { at, later } = f {
            if *at < order.len() {
                let i = order.len() - 1 - at;
                let to = (i + 1 + later).min(order.len());
                told.push(format!(
                    "event {} delivered again, {} deliveries later",
                    order[i],
                    to - i - 1
                ));
                order.insert(to, order[i]);
            }
        }
    }
    let batches: Vec<Vec<usize>> = order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let nb = batches.len().max(1);
    let crashed: Vec<usize> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::Crash { at } => nb.checked_sub(at + 1),
            _ => None,
        })
        .collect();
    let rebuilt: Vec<usize> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::Rebuild { at } => nb.checked_sub(at + 1),
            _ => None,
        })
        .collect();
    let mut steps = Vec::new();
    // The log a rebuild reads: every event up to the furthest one delivered so far.
    let mut furthest: Option<usize> = None;
    for (k, batch) in batches.into_iter().enumerate() {
        if rebuilt.contains(&k) {
            let replayed: Vec<usize> = furthest.map_or(Vec::new(), |f| (0..=f).collect());
            told.push(format!(
                "rebuilt from scratch before batch {k}: the log's events {replayed:?} applied again"
            ));
            steps.push(Step::Rebuild { replayed });
        }
        if crashed.contains(&k) {
            told.push(format!(
                "killed after applying batch {k} (events {batch:?}) before its checkpoint commits; the batch delivered again"
            ));
            steps.push(Step::Batch {
                events: batch.clone(),
                crash: true,
            });
        }
        furthest = batch.iter().copied().chain(furthest).max();
        steps.push(Step::Batch {
            events: batch,
            crash: false,
        });
    }
    (steps, told)
}

/// The events a schedule delivers, in delivery order, each once per time it is received
/// (for a reader: the counterexample's event list).
pub fn deliveries(steps: &[Step]) -> Vec<usize> {
    steps
        .iter()
        .flat_map(|s| match s {
            Step::Batch { events, .. } => events.clone(),
            Step::Rebuild { replayed } => replayed.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(events: &[usize]) -> Step {
        Step::Batch {
            events: events.to_vec(),
            crash: false,
        }
    }

    #[test]
    fn without_faults_every_event_is_delivered_once_in_order() {
        let streams = vec![None; 5];
        assert_eq!(
            schedule(&streams, 2, &[]),
            [batch(&[0, 1]), batch(&[2, 3]), batch(&[4])]
        );
    }

    #[test]
    fn a_reorder_swaps_only_events_of_different_streams() {
        let s = |k: i64| Some(Param::Int(k));
        // Counted from the end: at 2 is the pair (0, 1), which shares stream 7 and is never
        // swapped; at 1 is (1, 2), which differ and are swapped.
        let streams = vec![s(7), s(7), s(8), None];
        assert_eq!(
            schedule(&streams, 4, &[Fault::Reorder { at: 2 }]),
            [batch(&[0, 1, 2, 3])]
        );
        assert_eq!(
            schedule(&streams, 4, &[Fault::Reorder { at: 1 }]),
            [batch(&[0, 2, 1, 3])]
        );
        // An event without a stream key (3) stays where it is.
        assert_eq!(
            schedule(&streams, 4, &[Fault::Reorder { at: 0 }]),
            [batch(&[0, 1, 2, 3])]
        );
    }

    #[test]
    fn duplicates_crashes_and_rebuilds_land_where_their_positions_say() {
        let streams = vec![None; 3];
        assert_eq!(
            schedule(&streams, 10, &[Fault::Duplicate { at: 1, later: 0 }]),
            // 1 from the end: delivery 1, delivered again right after itself.
            [batch(&[0, 1, 1, 2])]
        );
        // Past the start: nothing happens.
        assert_eq!(
            schedule(
                &streams,
                10,
                &[Fault::Duplicate { at: 3, later: 0 }, Fault::Crash { at: 1 }]
            ),
            [batch(&[0, 1, 2])]
        );
        assert_eq!(
            schedule(&streams, 10, &[Fault::DuplicateAll]),
            [batch(&[0, 0, 1, 1, 2, 2])]
        );
        // Batches [0, 1] and [2]: at 0 is the last.
        let crashed = schedule(&streams, 2, &[Fault::Crash { at: 0 }]);
        assert_eq!(
            crashed,
            [
                batch(&[0, 1]),
                Step::Batch {
                    events: vec![2],
                    crash: true
                },
                batch(&[2])
            ]
        );
        let rebuilt = schedule(&streams, 1, &[Fault::Rebuild { at: 0 }]);
        assert_eq!(
            rebuilt,
            [
                batch(&[0]),
                batch(&[1]),
                Step::Rebuild {
                    replayed: vec![0, 1]
                },
                batch(&[2])
            ]
        );
        assert_eq!(deliveries(&rebuilt), [0, 1, 0, 1, 2]);
        let (_, told) = schedule_told(&streams, 1, &[Fault::Rebuild { at: 0 }]);
        assert_eq!(
            told,
            ["rebuilt from scratch before batch 2: the log's events [0, 1] applied again"]
        );
        // After a reorder the log is read up to the furthest event delivered, gaps included.
        let s = |k: i64| Some(Param::Int(k));
        let reordered = schedule(
            &[s(1), s(2), s(3)],
            1,
            &[Fault::Reorder { at: 1 }, Fault::Rebuild { at: 1 }],
        );
        assert_eq!(
            reordered,
            [
                batch(&[1]),
                Step::Rebuild {
                    replayed: vec![0, 1]
                },
                batch(&[0]),
                batch(&[2])
            ]
        );
    }
}
