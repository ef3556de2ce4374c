//! A history to check and the faults its events are delivered under, drawn by proptest from
//! a seed (VOPR-style: each history first picks its own fault weights, then its faults), and
//! the delivery schedule the faults make of the history's events: which events a consumer
//! receives, in which batches, where it crashes before its checkpoint commits and where the
//! projection is rebuilt from scratch. Pure: no database.
//!
//! A fault belongs to a command and lands on that command's events. So when proptest shrinks
//! a history by dropping commands, the faults of the commands it keeps stay on the same
//! events, and a dropped command's faults go with it: shrinking ends at the commands and
//! faults the divergence needs.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;
use serde::{Deserialize, Serialize};

use crate::db::sql::Param;

/// One command of a history: the pack's command `command`, its parameters drawn for op
/// `index` of the pack's op stream (a pure function of the seed and the index), and the
/// faults its events are delivered under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Op {
    pub command: String,
    pub index: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
}

/// A delivery fault on the events of the command it belongs to (none for a refused command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Each of the command's events delivered again, `later` deliveries after it (an ack
    /// lost).
    Duplicate { later: usize },
    /// The command's last event trades places with the delivery after it when the two belong
    /// to different streams (the pack's `stream_key`), as two broker partitions can deliver
    /// them; the order within one stream is kept.
    Reorder,
    /// The batch holding the command's first event is applied and the process killed before
    /// its checkpoint commits; the consumer resumes and receives the batch again.
    Crash,
    /// Before the batch holding the command's first event, the projection is rebuilt from
    /// scratch: the read models go back to the seed and the log up to the furthest event
    /// delivered so far is applied again, in log order.
    Rebuild,
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
/// in batches of `batch_size` under the commands' faults (and, with `every_event_twice`,
/// every event delivered twice in a row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    pub ops: Vec<Op>,
    pub batch_size: usize,
    pub rates: Rates,
    #[serde(default)]
    pub every_event_twice: bool,
}

/// How large histories get.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_ops: usize,
    pub max_batch: usize,
}

/// A command's chance of a fault of any kind is its weights' sum against this one's.
const NO_FAULT_WEIGHT: u32 = 8;

/// Histories over `commands` (the pack's command names), with faults drawn at weights each
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
                duplicate_all: da,
                reorder: r,
                crash: c,
                rebuild: rb,
            };
            let commands = commands.clone();
            let ops = vec(
                (0..n, 0..1_000_000u64, op_faults(rates)).prop_map(move |(c, index, faults)| Op {
                    command: commands[c % commands.len()].clone(),
                    index,
                    faults,
                }),
                1..=bounds.max_ops.max(1),
            );
            // Every event twice is one blunt fault: drawn once per history, as often as its
            // weight says (out of 8); shrinking `x` towards 0 takes it away.
            let twice = (0..8u32).prop_map(move |x| x + rates.duplicate_all >= 8);
            (ops, twice).prop_map(move |(ops, every_event_twice)| History {
                ops,
                batch_size,
                rates,
                every_event_twice,
            })
        })
}

/// A command's faults: at most one, of a kind drawn by `rates`.
fn op_faults(rates: Rates) -> BoxedStrategy<Vec<Fault>> {
    let kinds: Vec<(u32, BoxedStrategy<Option<Fault>>)> = vec![
        (NO_FAULT_WEIGHT, Just(None).boxed()),
        (
            rates.duplicate,
            (0..4usize)
                .prop_map(|later| Some(Fault::Duplicate { later }))
                .boxed(),
        ),
        (rates.reorder, Just(Some(Fault::Reorder)).boxed()),
        (rates.crash, Just(Some(Fault::Crash)).boxed()),
        (rates.rebuild, Just(Some(Fault::Rebuild)).boxed()),
    ];
    let kinds: Vec<_> = kinds.into_iter().filter(|(w, _)| *w > 0).collect();
    Union::new_weighted(kinds)
        .prop_map(|f| f.into_iter().collect())
        .boxed()
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

/// The events of a history as the schedule needs them: for event `i` (in log order), the
/// op that emitted it and its stream (`None`: the pack declares no stream key for it, and it
/// is never reordered).
pub struct Emitted<'a> {
    pub from_op: &'a [usize],
    pub streams: &'a [Option<Param>],
}

/// The steps `history`'s faults make of `events`.
pub fn schedule(history: &History, events: &Emitted) -> Vec<Step> {
    schedule_told(history, events).0
}

/// [`schedule`], and each fault as it landed on these events, for a reader (a fault that
/// changed nothing, such as a reorder of one stream's events, is left out).
pub fn schedule_told(history: &History, events: &Emitted) -> (Vec<Step>, Vec<String>) {
    let n = events.from_op.len();
    let of_op = |k: usize| (0..n).filter(move |&e| events.from_op[e] == k);
    let mut told = Vec::new();
    let mut order: Vec<usize> = (0..n).collect();
    let faults = || {
        history
            .ops
            .iter()
            .enumerate()
            .flat_map(|(k, op)| op.faults.iter().map(move |f| (k, f)))
    };
    for (k, _) in faults().filter(|(_, f)| **f == Fault::Reorder) {
        let Some(e) = of_op(k).next_back() else {
            continue;
        };
        let i = order.iter().position(|&x| x == e).unwrap_or(n);
        if i + 1 < order.len() {
            let (a, b) = (&events.streams[order[i]], &events.streams[order[i + 1]]);
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
    if history.every_event_twice && n > 0 {
        told.push("every event delivered twice".to_string());
        order = order.into_iter().flat_map(|e| [e, e]).collect();
    }
    for (k, f) in faults() {
        let Fault::Duplicate { later } = f else {
            continue;
        };
        for e in of_op(k) {
            if let Some(i) = order.iter().position(|&x| x == e) {
                let to = (i + 1 + later).min(order.len());
                told.push(format!(
                    "event {e} delivered again, {} deliveries later",
                    to - i - 1
                ));
                order.insert(to, e);
            }
        }
    }
    let batches: Vec<Vec<usize>> = order
        .chunks(history.batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    // The batch holding op `k`'s first event (its first delivery).
    let batch_of = |k: usize| {
        let e = of_op(k).next()?;
        batches.iter().position(|b| b.contains(&e))
    };
    let marked = |kind: Fault| -> Vec<usize> {
        faults()
            .filter(|(_, f)| **f == kind)
            .filter_map(|(k, _)| batch_of(k))
            .collect()
    };
    let (crashed, rebuilt) = (marked(Fault::Crash), marked(Fault::Rebuild));
    let mut steps = Vec::new();
    // The log a rebuild reads: every event up to the furthest one delivered so far.
    let mut furthest: Option<usize> = None;
    for (k, batch) in batches.iter().enumerate() {
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
            events: batch.clone(),
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

    /// A history of one op per event, op `k` with `faults[k]`.
    fn history(batch_size: usize, faults: Vec<Vec<Fault>>) -> History {
        History {
            ops: faults
                .into_iter()
                .map(|faults| Op {
                    command: "c".into(),
                    index: 0,
                    faults,
                })
                .collect(),
            batch_size,
            rates: Rates {
                duplicate: 0,
                duplicate_all: 0,
                reorder: 0,
                crash: 0,
                rebuild: 0,
            },
            every_event_twice: false,
        }
    }

    fn emitted(streams: &[Option<Param>]) -> (Vec<usize>, Vec<Option<Param>>) {
        ((0..streams.len()).collect(), streams.to_vec())
    }

    fn run(h: &History, streams: &[Option<Param>]) -> Vec<Step> {
        let (from_op, streams) = emitted(streams);
        schedule(
            h,
            &Emitted {
                from_op: &from_op,
                streams: &streams,
            },
        )
    }

    #[test]
    fn without_faults_every_event_is_delivered_once_in_order() {
        let h = history(2, vec![vec![]; 5]);
        assert_eq!(
            run(&h, &[None, None, None, None, None]),
            [batch(&[0, 1]), batch(&[2, 3]), batch(&[4])]
        );
    }

    #[test]
    fn a_reorder_swaps_only_events_of_different_streams() {
        let s = |k: i64| Some(Param::Int(k));
        // Events 0 and 1 share stream 7: never swapped; 1 and 2 differ: swapped.
        let streams = [s(7), s(7), s(8), None];
        let reorder = |k: usize| {
            let mut f = vec![vec![]; 4];
            f[k] = vec![Fault::Reorder];
            history(4, f)
        };
        assert_eq!(run(&reorder(0), &streams), [batch(&[0, 1, 2, 3])]);
        assert_eq!(run(&reorder(1), &streams), [batch(&[0, 2, 1, 3])]);
        // An event without a stream key (3) stays where it is, and so does the last.
        assert_eq!(run(&reorder(2), &streams), [batch(&[0, 1, 2, 3])]);
        assert_eq!(run(&reorder(3), &streams), [batch(&[0, 1, 2, 3])]);
    }

    #[test]
    fn duplicates_crashes_and_rebuilds_land_on_their_commands_events() {
        let none = [None, None, None];
        let dup = history(
            10,
            vec![vec![], vec![Fault::Duplicate { later: 0 }], vec![]],
        );
        assert_eq!(run(&dup, &none), [batch(&[0, 1, 1, 2])]);
        let mut twice = history(10, vec![vec![]; 3]);
        twice.every_event_twice = true;
        assert_eq!(run(&twice, &none), [batch(&[0, 0, 1, 1, 2, 2])]);
        // Batches [0, 1] and [2]: op 2's event is in the second.
        let crash = history(2, vec![vec![], vec![], vec![Fault::Crash]]);
        assert_eq!(
            run(&crash, &none),
            [
                batch(&[0, 1]),
                Step::Batch {
                    events: vec![2],
                    crash: true
                },
                batch(&[2])
            ]
        );
        let rebuild = history(1, vec![vec![], vec![], vec![Fault::Rebuild]]);
        let steps = run(&rebuild, &none);
        assert_eq!(
            steps,
            [
                batch(&[0]),
                batch(&[1]),
                Step::Rebuild {
                    replayed: vec![0, 1]
                },
                batch(&[2])
            ]
        );
        assert_eq!(deliveries(&steps), [0, 1, 0, 1, 2]);
        // A refused command (no events) has nowhere to land: nothing happens.
        let (from_op, streams) = (vec![0, 2], vec![None, None]);
        let refused = history(10, vec![vec![], vec![Fault::Crash, Fault::Reorder], vec![]]);
        let events = Emitted {
            from_op: &from_op,
            streams: &streams,
        };
        assert_eq!(
            schedule_told(&refused, &events),
            (vec![batch(&[0, 1])], vec![])
        );
    }

    #[test]
    fn a_rebuild_reads_the_log_up_to_the_furthest_event_delivered() {
        let s = |k: i64| Some(Param::Int(k));
        // Op 0's event swapped behind op 1's; the rebuild before op 0's batch reads the log
        // up to event 1, the gap (event 0) included.
        let h = history(
            1,
            vec![vec![Fault::Reorder, Fault::Rebuild], vec![], vec![]],
        );
        let (from_op, streams) = emitted(&[s(1), s(2), s(3)]);
        let (steps, told) = schedule_told(
            &h,
            &Emitted {
                from_op: &from_op,
                streams: &streams,
            },
        );
        assert_eq!(
            steps,
            [
                batch(&[1]),
                Step::Rebuild {
                    replayed: vec![0, 1]
                },
                batch(&[0]),
                batch(&[2])
            ]
        );
        assert_eq!(
            told,
            [
                "events 0 and 1 (different streams) delivered in swapped order",
                "rebuilt from scratch before batch 1: the log's events [0, 1] applied again"
            ]
        );
    }
}
