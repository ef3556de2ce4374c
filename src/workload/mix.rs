//! The op stream: write op *i* and read op *j* are pure functions of (seed, index), so every
//! backend sees exactly the same stream and a run replays exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::{KeyDist, KeySampler};
use super::rng::Rng;
use super::source::OpSource;
use crate::dataset::{first_free_ids, DatasetSpec, FreeIds, NAME_WORDS, START_AT};
use crate::domain::month::month_of;
use crate::domain::{
    day_of, Command, CommandKind, OrderLine, Query, QueryKind, TextSort, MICROS_PER_DAY,
};

/// What the stream is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixSpec {
    pub writes: BTreeMap<CommandKind, f64>,
    pub reads: BTreeMap<QueryKind, f64>,
    pub product_keys: KeyDist,
    pub user_keys: KeyDist,
    /// Logical time between consecutive write ops (µs); commands are stamped
    /// `START_AT + i * write_interval_us`.
    pub write_interval_us: i64,
    /// The terms `text_search` draws from (`[text_search] terms`); empty: the names' words.
    pub search_terms: Vec<String>,
}

impl Default for MixSpec {
    fn default() -> Self {
        MixSpec {
            writes: CommandKind::ALL.iter().map(|k| (*k, 1.0)).collect(),
            reads: QueryKind::DEFAULT_MIX.iter().map(|k| (*k, 1.0)).collect(),
            product_keys: KeyDist::Uniform,
            user_keys: KeyDist::Uniform,
            write_interval_us: 1_000,
            search_terms: Vec::new(),
        }
    }
}

/// How far back (in write ops) pay/ship/cancel look for an order placed by the stream.
const RECENT_WINDOW: u64 = 64;

const WRITE_STREAM: u64 = 1;
const READ_STREAM: u64 = 2;

#[derive(Debug, Clone)]
pub struct OpStream {
    seed: u64,
    dataset: DatasetSpec,
    free: FreeIds,
    products: KeySampler,
    users: KeySampler,
    writes: Vec<(CommandKind, f64)>,
    reads: Vec<(QueryKind, f64)>,
    write_interval_us: i64,
    search_terms: Vec<String>,
}

/// The mix as cumulative shares, in key order; weights of 0 left out.
pub(crate) fn cumulative<K: Copy>(m: &BTreeMap<K, f64>) -> Vec<(K, f64)> {
    let total: f64 = m.values().filter(|w| **w > 0.0).sum();
    let mut acc = 0.0;
    m.iter()
        .filter(|(_, w)| **w > 0.0)
        .map(|(k, w)| {
            acc += w / total;
            (*k, acc)
        })
        .collect()
}

/// The key whose share holds `u` (a draw in [0, 1)).
pub(crate) fn pick<K: Copy>(table: &[(K, f64)], u: f64) -> Option<K> {
    table
        .iter()
        .find(|(_, c)| u < *c)
        .or(table.last())
        .map(|(k, _)| *k)
}

impl OpStream {
    pub fn new(seed: u64, dataset: &DatasetSpec, mix: &MixSpec) -> Self {
        OpStream {
            seed,
            dataset: dataset.clone(),
            free: first_free_ids(dataset),
            products: KeySampler::new(mix.product_keys.clone(), dataset.products),
            users: KeySampler::new(mix.user_keys.clone(), dataset.users),
            writes: cumulative(&mix.writes),
            reads: cumulative(&mix.reads),
            write_interval_us: mix.write_interval_us.max(1),
            search_terms: mix.search_terms.clone(),
        }
    }

    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    pub fn has_reads(&self) -> bool {
        !self.reads.is_empty()
    }

    /// The kind of write op `i`: the first draw of its RNG, so it can be recomputed cheaply.
    pub fn write_kind(&self, i: u64) -> Option<CommandKind> {
        let mut rng = Rng::derive(self.seed, WRITE_STREAM, i);
        pick(&self.writes, rng.next_f64())
    }

    /// An order for pay/ship/cancel: mostly one placed by a recent op of this stream,
    /// otherwise a seeded one.
    fn target_order(&self, i: u64, rng: &mut Rng) -> i64 {
        if i > 0 {
            let back = rng.range(1, RECENT_WINDOW.min(i) as i64) as u64;
            let j = i - back;
            if self.write_kind(j) == Some(CommandKind::PlaceOrder) {
                return self.free.order + j as i64;
            }
        }
        rng.range(1, self.dataset.orders.max(1))
    }

    pub fn write_op(&self, i: u64) -> Option<Command> {
        let mut rng = Rng::derive(self.seed, WRITE_STREAM, i);
        let kind = pick(&self.writes, rng.next_f64())?;
        let at = START_AT + i as i64 * self.write_interval_us;
        Some(match kind {
            CommandKind::PlaceOrder => {
                let n = rng.range(1, 3.min(self.dataset.products.max(1)));
                let mut lines: Vec<OrderLine> = Vec::new();
                let mut guard = 0;
                while (lines.len() as i64) < n && guard < 20 {
                    guard += 1;
                    let p = self.products.sample(&mut rng);
                    if lines.iter().all(|l| l.product_id != p) {
                        lines.push(OrderLine {
                            product_id: p,
                            qty: rng.range(1, 3),
                        });
                    }
                }
                Command::PlaceOrder {
                    order_id: self.free.order + i as i64,
                    user_id: self.users.sample(&mut rng),
                    lines,
                    at,
                }
            }
            CommandKind::PayOrder => Command::PayOrder {
                order_id: self.target_order(i, &mut rng),
                at,
            },
            CommandKind::ShipOrder => Command::ShipOrder {
                order_id: self.target_order(i, &mut rng),
                at,
            },
            CommandKind::CancelOrder => Command::CancelOrder {
                order_id: self.target_order(i, &mut rng),
                at,
            },
            CommandKind::AddReview => Command::AddReview {
                review_id: self.free.review + i as i64,
                product_id: self.products.sample(&mut rng),
                user_id: self.users.sample(&mut rng),
                rating: [1, 2, 3, 4, 4, 5, 5, 5][rng.range(0, 7) as usize],
                at,
            },
            CommandKind::ChangePrice => Command::ChangePrice {
                change_id: self.free.price_change + i as i64,
                product_id: self.products.sample(&mut rng),
                cents: rng.range(199, 19_999),
                at,
            },
            CommandKind::Restock => Command::Restock {
                product_id: self.products.sample(&mut rng),
                qty: rng.range(10, 100),
                at,
            },
        })
    }

    pub fn read_op(&self, j: u64) -> Option<Query> {
        let mut rng = Rng::derive(self.seed, READ_STREAM, j);
        let kind = pick(&self.reads, rng.next_f64())?;
        let today = day_of(START_AT);
        Some(match kind {
            QueryKind::ProductPage => Query::ProductPage {
                product_id: self.products.sample(&mut rng),
            },
            QueryKind::UserOrders => Query::UserOrders {
                user_id: self.users.sample(&mut rng),
                limit: 20,
            },
            QueryKind::Search => {
                let lo = rng.range(0, 15_000);
                Query::Search {
                    category_id: rng.range(1, self.dataset.categories.max(1)),
                    min_cents: lo,
                    max_cents: lo + rng.range(1_000, 10_000),
                    min_rating: rng.range(0, 4),
                    in_stock: rng.chance(0.5),
                    limit: 20,
                }
            }
            QueryKind::DailyRevenue => {
                let span = [7, 30][rng.range(0, 1) as usize];
                Query::DailyRevenue {
                    from_day: today - span,
                    to_day: today + 1,
                }
            }
            QueryKind::TopProducts => Query::TopProducts { n: 10 },
            QueryKind::MonthlyReport => {
                // The month of a day of the seeded history.
                let back = rng.range(1, self.dataset.days.max(1));
                Query::MonthlyReport {
                    month: month_of((today - back) * MICROS_PER_DAY),
                }
            }
            QueryKind::TextSearch => {
                // One or two words of the names' vocabulary; half the searches in one
                // category, half across all; a wide price band, so words decide.
                let n = rng.range(1, 2);
                let terms = (0..n)
                    .map(|_| match self.search_terms.as_slice() {
                        [] => {
                            let list =
                                NAME_WORDS[rng.range(0, NAME_WORDS.len() as i64 - 1) as usize];
                            list[rng.range(0, list.len() as i64 - 1) as usize].to_string()
                        }
                        given => given[rng.range(0, given.len() as i64 - 1) as usize].clone(),
                    })
                    .collect();
                let category_id = if rng.chance(0.5) {
                    rng.range(1, self.dataset.categories.max(1))
                } else {
                    0
                };
                let lo = rng.range(0, 5_000);
                Query::TextSearch {
                    terms,
                    category_id,
                    min_cents: lo,
                    max_cents: lo + rng.range(5_000, 50_000),
                    min_rating: rng.range(0, 2),
                    in_stock: rng.chance(0.5),
                    sort: if rng.chance(0.5) {
                        TextSort::Price
                    } else {
                        TextSort::Relevance
                    },
                    limit: 20,
                }
            }
        })
    }
}

impl OpSource for OpStream {
    type Write = Command;
    type Read = Query;

    fn write_op(&self, i: u64) -> Option<Command> {
        OpStream::write_op(self, i)
    }

    fn read_op(&self, j: u64) -> Option<Query> {
        OpStream::read_op(self, j)
    }

    fn write_key(op: &Command) -> crate::metrics::OpKey {
        crate::metrics::OpKey::Write(op.kind().into())
    }

    fn read_key(op: &Query) -> crate::metrics::OpKey {
        crate::metrics::OpKey::Read(op.kind().into())
    }
}

/// How many write and read ops a run's stream hash covers: fixed, so the hash identifies the
/// stream whatever the duration or rate.
pub const HASHED_OPS: u64 = 10_000;

/// FNV-1a over the JSON of the first `writes` write ops and `reads` read ops: identifies the
/// stream independently of timing.
pub fn stream_hash<O>(stream: &O, writes: u64, reads: u64) -> String
where
    O: OpSource,
    O::Write: Serialize,
    O::Read: Serialize,
{
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for i in 0..writes {
        if let Some(op) = stream.write_op(i) {
            feed(serde_json::to_string(&op).unwrap_or_default().as_bytes());
        }
    }
    for j in 0..reads {
        if let Some(op) = stream.read_op(j) {
            feed(serde_json::to_string(&op).unwrap_or_default().as_bytes());
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_pure_functions_of_seed_and_index() {
        let ds = DatasetSpec::default();
        let a = OpStream::new(1, &ds, &MixSpec::default());
        let b = OpStream::new(1, &ds, &MixSpec::default());
        let c = OpStream::new(2, &ds, &MixSpec::default());
        for i in [0, 5, 999] {
            assert_eq!(a.write_op(i), b.write_op(i));
            assert_eq!(a.read_op(i), b.read_op(i));
        }
        assert_eq!(stream_hash(&a, 500, 500), stream_hash(&b, 500, 500));
        assert_ne!(stream_hash(&a, 500, 500), stream_hash(&c, 500, 500));
    }
}
