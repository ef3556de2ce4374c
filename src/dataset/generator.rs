//! The generated dataset, as streams of rows: a pure function of (seed, spec) that never holds
//! more than one row of a table at a time. Each table draws from its own ChaCha stream, so a
//! table can be streamed again (rows for the tables, then the same history as events) and
//! yields the same values.
//!
//! The only state kept for the whole dataset is per product (the price and version after the
//! seeded price changes, which the products and the order lines need): 12 bytes a product,
//! bounded by `spec::MAX_PRODUCTS`. Everything that depends on many rows at once (order
//! totals, review aggregates, read models) is computed by SQL after loading.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::spec::{category_name, product_name, DatasetSpec, START_AT};
use crate::domain::{Event, OrderStatus, PricedLine, ProductState, MICROS_PER_DAY};

/// Rows per batch handed to a loader by [`batches`].
pub const BATCH_ROWS: usize = 10_000;

/// Splits a row stream into batches of at most [`BATCH_ROWS`].
pub fn batches<I: Iterator>(rows: I) -> impl Iterator<Item = Vec<I::Item>> {
    let mut rows = rows.peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        Some(rows.by_ref().take(BATCH_ROWS).collect())
    })
}

/// Which ChaCha stream a table draws from.
#[derive(Clone, Copy)]
enum Stream {
    InitialPrices = 1,
    PriceChanges = 2,
    Products = 3,
    Orders = 4,
    Reviews = 5,
}

/// The generator of `stream`'s values for `seed`: the seed expands into the key (ChaCha's
/// value-stable `seed_from_u64`), the table picks the stream.
fn stream_rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub category_id: i64,
    pub price_cents: i64,
    pub stock: i64,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChange {
    pub id: i64,
    pub product_id: i64,
    pub old_cents: i64,
    pub new_cents: i64,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    pub placed_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub lines: Vec<PricedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: i64,
    pub product_id: i64,
    pub user_id: i64,
    pub rating: i64,
    pub at: i64,
}

/// Hours between an order's status steps.
const STEP_MICROS: i64 = 3_600_000_000;

impl Order {
    /// The order's history: placed, then paid/shipped/cancelled as its status says.
    pub fn events(&self) -> Vec<Event> {
        let step = |v: i64| self.placed_at + (v - 1) * STEP_MICROS;
        let mut v = vec![Event::OrderPlaced {
            order_id: self.id,
            user_id: self.user_id,
            lines: self.lines.clone(),
            placed_at: self.placed_at,
            products: Vec::new(),
        }];
        let paid = Event::OrderPaid {
            order_id: self.id,
            version: 2,
            at: step(2),
        };
        match self.status {
            OrderStatus::Placed => {}
            OrderStatus::Paid => v.push(paid),
            OrderStatus::Shipped => {
                v.push(paid);
                v.push(Event::OrderShipped {
                    order_id: self.id,
                    version: 3,
                    at: step(3),
                });
            }
            OrderStatus::Cancelled => v.push(Event::OrderCancelled {
                order_id: self.id,
                version: 2,
                at: step(2),
                user_id: self.user_id,
                placed_at: self.placed_at,
                lines: self.lines.clone(),
                products: Vec::new(),
            }),
        }
        v
    }
}

/// The dataset of one (seed, spec): per-product final state, and row streams on demand.
#[derive(Debug, Clone)]
pub struct Dataset {
    seed: u64,
    spec: DatasetSpec,
    /// Price after the seeded price changes, indexed by product id (0 unused).
    price: Vec<i64>,
    /// 1 + the number of seeded price changes, indexed by product id.
    version: Vec<u32>,
}

impl Dataset {
    /// Prepares the dataset: replays the price changes once to know each product's final
    /// price and version. Pure: the same seed and spec give the same rows.
    pub fn generate(seed: u64, spec: &DatasetSpec) -> Dataset {
        let mut ds = Dataset {
            seed,
            spec: spec.clone(),
            price: Vec::new(),
            version: Vec::new(),
        };
        let mut version = vec![1u32; ds.n_products() as usize + 1];
        let mut changes = ds.price_change_walk();
        for c in changes.by_ref() {
            version[c.product_id as usize] += 1;
        }
        ds.price = changes.price;
        ds.version = version;
        ds
    }

    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    fn n_categories(&self) -> i64 {
        self.spec.categories.max(1)
    }

    fn n_products(&self) -> i64 {
        self.spec.products.max(1)
    }

    fn n_users(&self) -> i64 {
        self.spec.users.max(1)
    }

    fn span(&self) -> i64 {
        self.spec.days.max(1) * MICROS_PER_DAY
    }

    /// When the seeded history starts (it ends at `START_AT`).
    pub fn history_start(&self) -> i64 {
        START_AT - self.span()
    }

    /// The time of item `k` of `count` spread evenly over the history.
    fn at(&self, k: i64, count: i64) -> i64 {
        self.history_start() + (self.span() as i128 * k as i128 / (count as i128 + 1)) as i64
    }

    pub fn category_ids(&self) -> impl Iterator<Item = i64> {
        1..=self.n_categories()
    }

    pub fn user_ids(&self) -> impl Iterator<Item = i64> {
        1..=self.n_users()
    }

    pub fn products(&self) -> impl Iterator<Item = Product> + Send + '_ {
        let mut rng = stream_rng(self.seed, Stream::Products);
        let categories = self.n_categories();
        (1..=self.n_products()).map(move |id| Product {
            id,
            category_id: (id - 1) % categories + 1,
            price_cents: self.price[id as usize],
            stock: rng.gen_range(100..=1_000),
            version: self.version[id as usize] as i64,
        })
    }

    fn price_change_walk(&self) -> PriceChangeWalk<'_> {
        let mut initial = stream_rng(self.seed, Stream::InitialPrices);
        PriceChangeWalk {
            ds: self,
            rng: stream_rng(self.seed, Stream::PriceChanges),
            price: (0..=self.n_products())
                .map(|_| initial.gen_range(199..=19_999))
                .collect(),
            next_id: 1,
        }
    }

    pub fn price_changes(&self) -> impl Iterator<Item = PriceChange> + Send + '_ {
        self.price_change_walk()
    }

    pub fn orders(&self) -> impl Iterator<Item = Order> + Send + '_ {
        let mut rng = stream_rng(self.seed, Stream::Orders);
        let (n_products, n_users, count) = (self.n_products(), self.n_users(), self.spec.orders);
        (1..=count).map(move |id| {
            let user_id = rng.gen_range(1..=n_users);
            let placed_at = self.at(id, count);
            let n_lines = rng.gen_range(1..=4.min(n_products)) as usize;
            let mut lines: Vec<PricedLine> = Vec::with_capacity(n_lines);
            while lines.len() < n_lines {
                let p = rng.gen_range(1..=n_products);
                if lines.iter().any(|l| l.product_id == p) {
                    continue;
                }
                lines.push(PricedLine {
                    product_id: p,
                    qty: rng.gen_range(1..=3),
                    unit_cents: self.price[p as usize],
                });
            }
            let roll: f64 = rng.gen();
            let (status, version) = if roll < 0.1 {
                (OrderStatus::Placed, 1)
            } else if roll < 0.3 {
                (OrderStatus::Paid, 2)
            } else if roll < 0.9 {
                (OrderStatus::Shipped, 3)
            } else {
                (OrderStatus::Cancelled, 2)
            };
            Order {
                id,
                user_id,
                status,
                placed_at,
                updated_at: placed_at + (version - 1) * STEP_MICROS,
                version,
                lines,
            }
        })
    }

    pub fn reviews(&self) -> impl Iterator<Item = Review> + Send + '_ {
        let mut rng = stream_rng(self.seed, Stream::Reviews);
        let (n_products, n_users, count) = (self.n_products(), self.n_users(), self.spec.reviews);
        (1..=count).map(move |id| Review {
            id,
            product_id: rng.gen_range(1..=n_products),
            user_id: rng.gen_range(1..=n_users),
            // Mostly good reviews, as in real shops.
            rating: [1, 2, 3, 4, 4, 5, 5, 5][rng.gen_range(0..8)],
            at: self.at(id, count),
        })
    }

    /// The seeded history as events, in log order: products, price changes, orders, reviews.
    pub fn events(&self) -> impl Iterator<Item = Event> + Send + '_ {
        let start = self.history_start();
        let products = self.products().map(move |p| Event::ProductAdded {
            product_id: p.id,
            name: product_name(p.id),
            category_id: p.category_id,
            category_name: category_name(p.category_id),
            state: ProductState {
                product_id: p.id,
                version: p.version,
                price_cents: p.price_cents,
                stock: p.stock,
            },
            at: start,
        });
        let prices = self.price_changes().map(|c| Event::PriceChanged {
            change_id: c.id,
            product_id: c.product_id,
            old_cents: c.old_cents,
            new_cents: c.new_cents,
            at: c.at,
            product: None,
        });
        let orders = self.orders().flat_map(|o| o.events());
        let reviews = self.reviews().map(|r| Event::ReviewAdded {
            review_id: r.id,
            product_id: r.product_id,
            user_id: r.user_id,
            rating: r.rating,
            at: r.at,
        });
        products.chain(prices).chain(orders).chain(reviews)
    }
}

/// The price changes in order, walking each product's price from its initial value.
struct PriceChangeWalk<'a> {
    ds: &'a Dataset,
    rng: ChaCha8Rng,
    /// Current price by product id.
    price: Vec<i64>,
    next_id: i64,
}

impl Iterator for PriceChangeWalk<'_> {
    type Item = PriceChange;

    fn next(&mut self) -> Option<PriceChange> {
        let count = self.ds.spec.price_changes;
        let id = self.next_id;
        if id > count {
            return None;
        }
        self.next_id += 1;
        let product_id = self.rng.gen_range(1..=self.ds.n_products());
        let old = self.price[product_id as usize];
        let factor: f64 = 0.8 + self.rng.gen::<f64>() * 0.4;
        let new = (old as f64 * factor).round().max(1.0) as i64;
        self.price[product_id as usize] = new;
        Some(PriceChange {
            id,
            product_id,
            old_cents: old,
            new_cents: new,
            at: self.ds.at(id, count),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let spec = DatasetSpec {
            orders: 200,
            ..DatasetSpec::default()
        };
        let a = Dataset::generate(42, &spec);
        let b = Dataset::generate(42, &spec);
        let c = Dataset::generate(43, &spec);
        assert_eq!(
            a.orders().collect::<Vec<_>>(),
            b.orders().collect::<Vec<_>>()
        );
        assert_eq!(
            a.events().collect::<Vec<_>>(),
            b.events().collect::<Vec<_>>()
        );
        assert_ne!(
            a.orders().collect::<Vec<_>>(),
            c.orders().collect::<Vec<_>>()
        );
        assert_eq!(a.orders().count(), 200);
    }

    #[test]
    fn products_carry_the_final_price_of_their_changes() {
        let ds = Dataset::generate(7, &DatasetSpec::default());
        let mut last = std::collections::HashMap::new();
        let mut changes = std::collections::HashMap::new();
        for c in ds.price_changes() {
            if let Some(prev) = last.insert(c.product_id, c.new_cents) {
                assert_eq!(prev, c.old_cents, "price chain of product {}", c.product_id);
            }
            *changes.entry(c.product_id).or_insert(0) += 1;
        }
        for p in ds.products() {
            if let Some(&price) = last.get(&p.id) {
                assert_eq!(p.price_cents, price);
            }
            assert_eq!(p.version, 1 + changes.get(&p.id).copied().unwrap_or(0));
        }
    }

    #[test]
    fn batches_are_bounded() {
        let sizes: Vec<usize> = batches(0..(2 * BATCH_ROWS + 5)).map(|b| b.len()).collect();
        assert_eq!(sizes, vec![BATCH_ROWS, BATCH_ROWS, 5]);
    }
}
