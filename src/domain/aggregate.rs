//! The domain as pure functions over aggregates, for the event-sourced backend:
//! `evolve_*(state, event)` folds a stream into an aggregate's state and
//! `decide(&Decision, command)` answers a command with events or a refusal.
//!
//! The rules are those of the normalized write path (`backend::write`), checked in the same
//! order, so the same op stream gives the same accepted and refused commands (a test in this
//! file walks random op streams through both models). Two aggregates hold state:
//!
//! - a **product** (`product-<id>`): its price, stock and the product version the read models
//!   order states by (bumped by every price or stock change, not by reviews);
//! - an **order** (`order-<id>`): user, placing time, priced lines, status and version.
//!
//! What the normalized path checks with a global lookup and no aggregate owns is handed to
//! `decide` as facts the caller looked up: whether the user exists (users are reference data
//! seeded once) and whether a review id or price-change id is already taken (each is a
//! store-wide unique claim, see [`claim`]).
//!
//! A `PlaceOrder` changes the order and every product it reserves: besides `OrderPlaced` on the
//! order stream it emits one `StockAdjusted` (delta −qty) per product stream, so each product's
//! stream alone rebuilds its stock; a `CancelOrder` likewise emits `StockAdjusted` (+qty). The
//! read models already take product states by version, so these extra events change nothing
//! there.

use std::collections::BTreeMap;

use super::{Command, DomainError, Event, OrderStatus, PricedLine, ProductState};

/// An order as its stream rebuilds it (serialized as the `event-sourced` backend's snapshot).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderAggregate {
    pub order_id: i64,
    pub user_id: i64,
    pub placed_at: i64,
    pub status: OrderStatus,
    pub version: i64,
    /// In product id order.
    pub lines: Vec<PricedLine>,
}

/// A product as its stream rebuilds it (`None`: no such product).
pub type ProductAggregate = Option<ProductState>;

/// Folds one event of a product's stream into the product. Seeded `PriceChanged` events carry
/// no state (the seeded `ProductAdded` already holds the final one) and leave it as it is.
pub fn evolve_product(state: ProductAggregate, event: &Event) -> ProductAggregate {
    match event {
        Event::ProductAdded { state: st, .. } => Some(*st),
        Event::PriceChanged {
            product: Some(st), ..
        }
        | Event::StockAdjusted { product: st, .. } => Some(*st),
        _ => state,
    }
}

/// Folds one event of an order's stream into the order.
pub fn evolve_order(state: Option<OrderAggregate>, event: &Event) -> Option<OrderAggregate> {
    let step = |state: Option<OrderAggregate>, status: OrderStatus, version: i64| {
        state.map(|o| OrderAggregate {
            status,
            version,
            ..o
        })
    };
    match event {
        Event::OrderPlaced {
            order_id,
            user_id,
            lines,
            placed_at,
            ..
        } => {
            let mut lines = lines.clone();
            lines.sort_by_key(|l| l.product_id);
            Some(OrderAggregate {
                order_id: *order_id,
                user_id: *user_id,
                placed_at: *placed_at,
                status: OrderStatus::Placed,
                version: 1,
                lines,
            })
        }
        Event::OrderPaid { version, .. } => step(state, OrderStatus::Paid, *version),
        Event::OrderShipped { version, .. } => step(state, OrderStatus::Shipped, *version),
        Event::OrderCancelled { version, .. } => step(state, OrderStatus::Cancelled, *version),
        _ => state,
    }
}

/// Everything `decide` needs: the aggregates the command touches, rebuilt from their streams,
/// and the facts no aggregate owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The order the command names (`None`: no such order).
    pub order: Option<OrderAggregate>,
    /// The products the command names; a product missing here counts as unknown.
    pub products: BTreeMap<i64, ProductAggregate>,
    /// Whether the command's user exists.
    pub user_known: bool,
    /// Whether the command's review id or price-change id is already taken.
    pub id_taken: bool,
}

impl Decision {
    fn product(&self, id: i64) -> Result<ProductState, DomainError> {
        self.products
            .get(&id)
            .copied()
            .flatten()
            .ok_or(DomainError::UnknownProduct(id))
    }
}

/// The streams a command's decision reads, known from the command alone (a cancel also reads
/// the products of the order's lines, known once the order is loaded).
pub fn streams_of(cmd: &Command) -> (Option<i64>, Vec<i64>) {
    match cmd {
        Command::PlaceOrder {
            order_id, lines, ..
        } => {
            let mut ids: Vec<i64> = lines.iter().map(|l| l.product_id).collect();
            ids.sort_unstable();
            ids.dedup();
            (Some(*order_id), ids)
        }
        Command::PayOrder { order_id, .. }
        | Command::ShipOrder { order_id, .. }
        | Command::CancelOrder { order_id, .. } => (Some(*order_id), Vec::new()),
        Command::AddReview { product_id, .. }
        | Command::ChangePrice { product_id, .. }
        | Command::Restock { product_id, .. } => (None, vec![*product_id]),
    }
}

/// The store-wide unique claim an event makes, if any: review and price-change ids are unique
/// across products, which no single product stream can check.
pub fn claim(event: &Event) -> Option<String> {
    match event {
        Event::ReviewAdded { review_id, .. } => Some(format!("review-{review_id}")),
        Event::PriceChanged { change_id, .. } => Some(format!("price_change-{change_id}")),
        _ => None,
    }
}

/// When an event happened (its logical time, µs).
pub fn occurred_at(event: &Event) -> i64 {
    match event {
        Event::ProductAdded { at, .. }
        | Event::OrderPaid { at, .. }
        | Event::OrderShipped { at, .. }
        | Event::OrderCancelled { at, .. }
        | Event::ReviewAdded { at, .. }
        | Event::PriceChanged { at, .. }
        | Event::StockAdjusted { at, .. } => *at,
        Event::OrderPlaced { placed_at, .. } => *placed_at,
    }
}

/// The version an event takes in its stream: an order's events carry it (placed = 1, then
/// one per status change); a product's stream is counted by the caller (`next_product`).
pub fn stream_version(event: &Event, next_product: impl FnOnce(i64) -> i64) -> i64 {
    match event {
        Event::OrderPlaced { .. } => 1,
        Event::OrderPaid { version, .. }
        | Event::OrderShipped { version, .. }
        | Event::OrderCancelled { version, .. } => *version,
        Event::ProductAdded { product_id, .. }
        | Event::ReviewAdded { product_id, .. }
        | Event::PriceChanged { product_id, .. }
        | Event::StockAdjusted { product_id, .. } => next_product(*product_id),
    }
}

/// The claim a command would make (what `Decision::id_taken` is about).
pub fn claim_of(cmd: &Command) -> Option<String> {
    match cmd {
        Command::AddReview { review_id, .. } => Some(format!("review-{review_id}")),
        Command::ChangePrice { change_id, .. } => Some(format!("price_change-{change_id}")),
        _ => None,
    }
}

/// The user a command needs to exist, if any.
pub fn user_of(cmd: &Command) -> Option<i64> {
    match cmd {
        Command::PlaceOrder { user_id, .. } | Command::AddReview { user_id, .. } => Some(*user_id),
        _ => None,
    }
}

fn adjusted(st: ProductState, delta: i64) -> ProductState {
    ProductState {
        stock: st.stock + delta,
        version: st.version + 1,
        ..st
    }
}

fn transition(
    d: &Decision,
    order_id: i64,
    to: OrderStatus,
) -> Result<&OrderAggregate, DomainError> {
    let order = d
        .order
        .as_ref()
        .ok_or(DomainError::UnknownOrder(order_id))?;
    if !order.status.can_become(to) {
        return Err(DomainError::InvalidTransition {
            order: order_id,
            from: order.status,
            to,
        });
    }
    Ok(order)
}

/// Answers `cmd` on the state in `d`: the events to append, or the refusal. The first event
/// is the one the normalized write path emits; any further ones are the stock changes on the
/// product streams of an order placed or cancelled.
pub fn decide(d: &Decision, cmd: &Command) -> Result<Vec<Event>, DomainError> {
    match cmd {
        Command::PlaceOrder {
            order_id,
            user_id,
            lines,
            at,
        } => {
            let mut sorted = lines.clone();
            sorted.sort_by_key(|l| l.product_id);
            if sorted.is_empty()
                || sorted
                    .windows(2)
                    .any(|w| w[0].product_id == w[1].product_id)
            {
                return Err(DomainError::InvalidLines);
            }
            if let Some(l) = sorted.iter().find(|l| l.qty <= 0) {
                return Err(DomainError::InvalidQuantity(l.qty));
            }
            if !d.user_known {
                return Err(DomainError::UnknownUser(*user_id));
            }
            let mut priced = Vec::with_capacity(sorted.len());
            let mut states = Vec::with_capacity(sorted.len());
            for l in &sorted {
                let st = d.product(l.product_id)?;
                if st.stock - l.qty < 0 {
                    return Err(DomainError::OutOfStock {
                        product: l.product_id,
                        requested: l.qty,
                        available: st.stock,
                    });
                }
                priced.push(PricedLine {
                    product_id: l.product_id,
                    qty: l.qty,
                    unit_cents: st.price_cents,
                });
                states.push(adjusted(st, -l.qty));
            }
            if d.order.is_some() {
                return Err(DomainError::DuplicateOrder(*order_id));
            }
            let mut events = vec![Event::OrderPlaced {
                order_id: *order_id,
                user_id: *user_id,
                lines: priced,
                placed_at: *at,
                products: states.clone(),
            }];
            events.extend(
                sorted
                    .iter()
                    .zip(&states)
                    .map(|(l, st)| Event::StockAdjusted {
                        product_id: l.product_id,
                        delta: -l.qty,
                        at: *at,
                        product: *st,
                    }),
            );
            Ok(events)
        }
        Command::PayOrder { order_id, at } => {
            let o = transition(d, *order_id, OrderStatus::Paid)?;
            Ok(vec![Event::OrderPaid {
                order_id: *order_id,
                version: o.version + 1,
                at: *at,
            }])
        }
        Command::ShipOrder { order_id, at } => {
            let o = transition(d, *order_id, OrderStatus::Shipped)?;
            Ok(vec![Event::OrderShipped {
                order_id: *order_id,
                version: o.version + 1,
                at: *at,
            }])
        }
        Command::CancelOrder { order_id, at } => {
            let o = transition(d, *order_id, OrderStatus::Cancelled)?;
            let mut states = Vec::with_capacity(o.lines.len());
            for l in &o.lines {
                states.push(adjusted(d.product(l.product_id)?, l.qty));
            }
            let mut events = vec![Event::OrderCancelled {
                order_id: *order_id,
                version: o.version + 1,
                at: *at,
                user_id: o.user_id,
                placed_at: o.placed_at,
                lines: o.lines.clone(),
                products: states.clone(),
            }];
            events.extend(
                o.lines
                    .iter()
                    .zip(&states)
                    .map(|(l, st)| Event::StockAdjusted {
                        product_id: l.product_id,
                        delta: l.qty,
                        at: *at,
                        product: *st,
                    }),
            );
            Ok(events)
        }
        Command::AddReview {
            review_id,
            product_id,
            user_id,
            rating,
            at,
        } => {
            if !(1..=5).contains(rating) {
                return Err(DomainError::InvalidRating(*rating));
            }
            d.product(*product_id)?;
            if !d.user_known {
                return Err(DomainError::UnknownUser(*user_id));
            }
            if d.id_taken {
                return Err(DomainError::DuplicateReview(*review_id));
            }
            Ok(vec![Event::ReviewAdded {
                review_id: *review_id,
                product_id: *product_id,
                user_id: *user_id,
                rating: *rating,
                at: *at,
            }])
        }
        Command::ChangePrice {
            change_id,
            product_id,
            cents,
            at,
        } => {
            if *cents <= 0 {
                return Err(DomainError::InvalidPrice(*cents));
            }
            let st = d.product(*product_id)?;
            if d.id_taken {
                return Err(DomainError::DuplicatePriceChange(*change_id));
            }
            Ok(vec![Event::PriceChanged {
                change_id: *change_id,
                product_id: *product_id,
                old_cents: st.price_cents,
                new_cents: *cents,
                at: *at,
                product: Some(ProductState {
                    price_cents: *cents,
                    version: st.version + 1,
                    ..st
                }),
            }])
        }
        Command::Restock {
            product_id,
            qty,
            at,
        } => {
            if *qty <= 0 {
                return Err(DomainError::InvalidQuantity(*qty));
            }
            let st = d.product(*product_id)?;
            Ok(vec![Event::StockAdjusted {
                product_id: *product_id,
                delta: *qty,
                at: *at,
                product: adjusted(st, *qty),
            }])
        }
    }
}

/// The in-memory event store the tests decide against: streams by name, claims, users.
#[cfg(test)]
pub(crate) mod memory {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[derive(Default)]
    pub struct Store {
        pub streams: BTreeMap<String, Vec<Event>>,
        pub claims: BTreeSet<String>,
        pub users: BTreeSet<i64>,
    }

    impl Store {
        pub fn append(&mut self, events: &[Event]) {
            for e in events {
                if let Some(c) = claim(e) {
                    self.claims.insert(c);
                }
                self.streams.entry(e.stream()).or_default().push(e.clone());
            }
        }

        fn product(&self, id: i64) -> ProductAggregate {
            self.streams
                .get(&format!("product-{id}"))
                .into_iter()
                .flatten()
                .fold(None, evolve_product)
        }

        fn order(&self, id: i64) -> Option<OrderAggregate> {
            self.streams
                .get(&format!("order-{id}"))
                .into_iter()
                .flatten()
                .fold(None, evolve_order)
        }

        pub fn decision(&self, cmd: &Command) -> Decision {
            let (order_id, mut products) = streams_of(cmd);
            let order = order_id.and_then(|id| self.order(id));
            if let Some(o) = &order {
                if matches!(cmd, Command::CancelOrder { .. }) {
                    products.extend(o.lines.iter().map(|l| l.product_id));
                }
            }
            Decision {
                products: products.into_iter().map(|p| (p, self.product(p))).collect(),
                order,
                user_known: user_of(cmd).is_none_or(|u| self.users.contains(&u)),
                id_taken: claim_of(cmd).is_some_and(|c| self.claims.contains(&c)),
            }
        }

        /// Decides and, when accepted, appends.
        pub fn execute(&mut self, cmd: &Command) -> Result<Vec<Event>, DomainError> {
            let events = decide(&self.decision(cmd), cmd)?;
            self.append(&events);
            Ok(events)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::Store;
    use super::*;
    use crate::domain::OrderLine;

    fn product(id: i64, price: i64, stock: i64) -> Event {
        Event::ProductAdded {
            product_id: id,
            name: format!("p{id}"),
            category_id: 1,
            category_name: "c".into(),
            state: ProductState {
                product_id: id,
                version: 1,
                price_cents: price,
                stock,
            },
            at: 0,
        }
    }

    fn store() -> Store {
        let mut s = Store::default();
        s.users.insert(1);
        s.append(&[product(1, 100, 5), product(2, 250, 1)]);
        s
    }

    fn place(order_id: i64, lines: &[(i64, i64)]) -> Command {
        Command::PlaceOrder {
            order_id,
            user_id: 1,
            lines: lines
                .iter()
                .map(|&(product_id, qty)| OrderLine { product_id, qty })
                .collect(),
            at: 10,
        }
    }

    #[test]
    fn an_order_reserves_stock_on_every_product_stream() {
        let mut s = store();
        let events = s.execute(&place(7, &[(2, 1), (1, 2)])).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].stream(), "order-7");
        assert_eq!(events[1].stream(), "product-1");
        assert_eq!(events[2].stream(), "product-2");
        let p1 = s.decision(&place(8, &[(1, 1)])).products[&1].unwrap();
        assert_eq!((p1.stock, p1.version), (3, 2));
        match &events[0] {
            Event::OrderPlaced { lines, .. } => {
                assert_eq!(lines[0].unit_cents, 100);
                assert_eq!(lines[1].unit_cents, 250);
            }
            e => panic!("{e:?}"),
        }
        // Product 2 is sold out now: the next order for it is refused and appends nothing.
        let before = s.streams.values().map(Vec::len).sum::<usize>();
        assert_eq!(
            s.execute(&place(8, &[(1, 1), (2, 1)])),
            Err(DomainError::OutOfStock {
                product: 2,
                requested: 1,
                available: 0
            })
        );
        assert_eq!(s.streams.values().map(Vec::len).sum::<usize>(), before);
    }

    #[test]
    fn refusals_come_in_the_normalized_paths_order() {
        let mut s = store();
        assert_eq!(s.execute(&place(1, &[])), Err(DomainError::InvalidLines));
        assert_eq!(
            s.execute(&place(1, &[(1, 0)])),
            Err(DomainError::InvalidQuantity(0))
        );
        assert_eq!(
            s.execute(&place(1, &[(9, 1)])),
            Err(DomainError::UnknownProduct(9))
        );
        s.execute(&place(1, &[(1, 1)])).unwrap();
        // Stock is checked before the order id, as in the normalized path.
        assert_eq!(
            s.execute(&place(1, &[(2, 5)])),
            Err(DomainError::OutOfStock {
                product: 2,
                requested: 5,
                available: 1
            })
        );
        assert_eq!(
            s.execute(&place(1, &[(1, 1)])),
            Err(DomainError::DuplicateOrder(1))
        );
        let ship = Command::ShipOrder {
            order_id: 1,
            at: 11,
        };
        assert_eq!(
            s.execute(&ship),
            Err(DomainError::InvalidTransition {
                order: 1,
                from: OrderStatus::Placed,
                to: OrderStatus::Shipped
            })
        );
        let pay = Command::PayOrder {
            order_id: 1,
            at: 11,
        };
        assert_eq!(
            s.execute(&pay).unwrap(),
            vec![Event::OrderPaid {
                order_id: 1,
                version: 2,
                at: 11
            }]
        );
        let cancel = Command::CancelOrder {
            order_id: 1,
            at: 12,
        };
        let events = s.execute(&cancel).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            s.decision(&place(5, &[(1, 1)])).products[&1].unwrap().stock,
            5
        );
        assert_eq!(
            s.execute(&Command::PayOrder {
                order_id: 99,
                at: 1
            }),
            Err(DomainError::UnknownOrder(99))
        );
    }

    #[test]
    fn review_and_price_change_ids_are_unique_across_products() {
        let mut s = store();
        let review = |product_id| Command::AddReview {
            review_id: 3,
            product_id,
            user_id: 1,
            rating: 4,
            at: 1,
        };
        s.execute(&review(1)).unwrap();
        assert_eq!(s.execute(&review(2)), Err(DomainError::DuplicateReview(3)));
        let price = |product_id, cents| Command::ChangePrice {
            change_id: 4,
            product_id,
            cents,
            at: 1,
        };
        assert_eq!(s.execute(&price(1, 0)), Err(DomainError::InvalidPrice(0)));
        let e = s.execute(&price(1, 120)).unwrap();
        assert!(matches!(
            e[0],
            Event::PriceChanged {
                old_cents: 100,
                new_cents: 120,
                product: Some(ProductState { version: 2, .. }),
                ..
            }
        ));
        assert_eq!(
            s.execute(&price(2, 130)),
            Err(DomainError::DuplicatePriceChange(4))
        );
        let unknown_user = Command::AddReview {
            review_id: 5,
            product_id: 1,
            user_id: 2,
            rating: 4,
            at: 1,
        };
        assert_eq!(s.execute(&unknown_user), Err(DomainError::UnknownUser(2)));
    }
}
