//! The read models as pure folds over events: the oracle the SQL appliers are tested against.
//! Written independently of `sql.rs` on purpose. Applied to a committed log once per event,
//! in log order.

use super::{
    CatalogRow, DailySalesRow, MonthlySalesRow, OrderSummaryRow, PriceChangeEntry, ProductSalesRow,
    ProjectionName, ReadModels,
};
use crate::domain::month::{cell_key, month_of, WHOLE_ORDER};
use crate::domain::segment::segment_of;
use crate::domain::{day_of, Event, OrderStatus, PricedLine, ProductState};

/// Applies one event to every read model.
pub fn apply(state: &mut ReadModels, event: &Event) {
    for p in ProjectionName::ALL {
        apply_to(p, state, event);
    }
}

/// Folds a whole log.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> ReadModels {
    let mut s = ReadModels::default();
    for e in events {
        apply(&mut s, e);
    }
    s.canonical()
}

/// Applies one event to one read model.
pub fn apply_to(p: ProjectionName, s: &mut ReadModels, event: &Event) {
    match p {
        ProjectionName::ProductCatalog => product_catalog(s, event),
        ProjectionName::OrderSummary => order_summary(s, event),
        ProjectionName::DailySales => daily_sales(s, event),
        ProjectionName::ProductSales => product_sales(s, event),
        ProjectionName::MonthlySales => monthly_sales(s, event),
        // The search index holds the product catalog's rows, folded the same way.
        ProjectionName::ProductSearch => product_catalog(s, event),
    }
}

/// Keeps the state with the higher version. A state can arrive (from an order event of
/// another stream) before the product's `ProductAdded`: it then makes a placeholder row that
/// `ProductAdded` fills in.
fn set_state(s: &mut ReadModels, st: &ProductState) {
    let row = s
        .product_catalog
        .entry(st.product_id)
        .or_insert_with(|| CatalogRow {
            product_id: st.product_id,
            name: String::new(),
            category_id: 0,
            category_name: String::new(),
            price_cents: st.price_cents,
            stock: st.stock,
            version: st.version,
            review_count: 0,
            rating_sum: 0,
        });
    if row.version < st.version {
        row.price_cents = st.price_cents;
        row.stock = st.stock;
        row.version = st.version;
    }
}

fn product_catalog(s: &mut ReadModels, event: &Event) {
    match event {
        Event::ProductAdded {
            product_id,
            name,
            category_id,
            category_name,
            state,
            ..
        } => {
            if let Some(row) = s.product_catalog.get_mut(product_id) {
                row.name = name.clone();
                row.category_id = *category_id;
                row.category_name = category_name.clone();
                set_state(s, state);
            } else {
                s.product_catalog.insert(
                    *product_id,
                    CatalogRow {
                        product_id: *product_id,
                        name: name.clone(),
                        category_id: *category_id,
                        category_name: category_name.clone(),
                        price_cents: state.price_cents,
                        stock: state.stock,
                        version: state.version,
                        review_count: 0,
                        rating_sum: 0,
                    },
                );
            }
        }
        Event::ReviewAdded {
            product_id, rating, ..
        } => {
            if let Some(row) = s.product_catalog.get_mut(product_id) {
                row.review_count += 1;
                row.rating_sum += rating;
            }
        }
        Event::PriceChanged {
            change_id,
            product_id,
            old_cents,
            new_cents,
            at,
            product,
        } => {
            s.catalog_price_changes
                .entry(*change_id)
                .or_insert(PriceChangeEntry {
                    change_id: *change_id,
                    product_id: *product_id,
                    old_cents: *old_cents,
                    new_cents: *new_cents,
                    changed_at: *at,
                });
            if let Some(st) = product {
                set_state(s, st);
            }
        }
        Event::OrderPlaced { products, .. } | Event::OrderCancelled { products, .. } => {
            for st in products {
                set_state(s, st);
            }
        }
        Event::StockAdjusted { product, .. } => set_state(s, product),
        Event::OrderPaid { .. } | Event::OrderShipped { .. } => {}
    }
}

fn totals(lines: &[PricedLine]) -> (i64, i64) {
    lines.iter().fold((0, 0), |(items, cents), l| {
        (items + l.qty, cents + l.qty * l.unit_cents)
    })
}

fn set_status(s: &mut ReadModels, order_id: i64, status: OrderStatus, version: i64) {
    if let Some(row) = s.order_summary.get_mut(&order_id) {
        if row.version < version {
            row.status = status.as_str().to_string();
            row.version = version;
        }
    }
}

fn order_summary(s: &mut ReadModels, event: &Event) {
    match event {
        Event::OrderPlaced {
            order_id,
            user_id,
            lines,
            placed_at,
            ..
        } => {
            let (items, cents) = totals(lines);
            s.order_summary.entry(*order_id).or_insert(OrderSummaryRow {
                order_id: *order_id,
                user_id: *user_id,
                placed_at: *placed_at,
                status: OrderStatus::Placed.as_str().to_string(),
                item_count: items,
                total_cents: cents,
                version: 1,
            });
        }
        Event::OrderPaid {
            order_id, version, ..
        } => set_status(s, *order_id, OrderStatus::Paid, *version),
        Event::OrderShipped {
            order_id, version, ..
        } => set_status(s, *order_id, OrderStatus::Shipped, *version),
        Event::OrderCancelled {
            order_id, version, ..
        } => set_status(s, *order_id, OrderStatus::Cancelled, *version),
        _ => {}
    }
}

fn daily_sales(s: &mut ReadModels, event: &Event) {
    let (sign, placed_at, lines) = match event {
        Event::OrderPlaced {
            placed_at, lines, ..
        } => (1, *placed_at, lines),
        Event::OrderCancelled {
            placed_at, lines, ..
        } => (-1, *placed_at, lines),
        _ => return,
    };
    let (items, cents) = totals(lines);
    let day = day_of(placed_at);
    let row = s.daily_sales.entry(day).or_insert(DailySalesRow {
        day,
        orders: 0,
        items: 0,
        revenue_cents: 0,
    });
    row.orders += sign;
    row.items += sign * items;
    row.revenue_cents += sign * cents;
}

fn product_sales(s: &mut ReadModels, event: &Event) {
    let (sign, lines) = match event {
        Event::ProductAdded {
            product_id, name, ..
        } => {
            let row = s
                .product_sales
                .entry(*product_id)
                .or_insert(ProductSalesRow {
                    product_id: *product_id,
                    name: String::new(),
                    units: 0,
                    revenue_cents: 0,
                });
            row.name = name.clone();
            return;
        }
        Event::OrderPlaced { lines, .. } => (1, lines),
        Event::OrderCancelled { lines, .. } => (-1, lines),
        _ => return,
    };
    for l in lines {
        let row = s
            .product_sales
            .entry(l.product_id)
            .or_insert(ProductSalesRow {
                product_id: l.product_id,
                name: String::new(),
                units: 0,
                revenue_cents: 0,
            });
        row.units += sign * l.qty;
        row.revenue_cents += sign * l.qty * l.unit_cents;
    }
}

/// Per order: one count and its total in the whole-order cell of its month and segment, and
/// one count and the line's revenue in the cell of each product it has a line of.
fn monthly_sales(s: &mut ReadModels, event: &Event) {
    let (sign, user_id, placed_at, lines) = match event {
        Event::OrderPlaced {
            user_id,
            placed_at,
            lines,
            ..
        } => (1, *user_id, *placed_at, lines),
        Event::OrderCancelled {
            user_id,
            placed_at,
            lines,
            ..
        } => (-1, *user_id, *placed_at, lines),
        _ => return,
    };
    let month = month_of(placed_at);
    let segment = segment_of(user_id);
    let (_, total) = totals(lines);
    let cells = std::iter::once((WHOLE_ORDER, total))
        .chain(lines.iter().map(|l| (l.product_id, l.qty * l.unit_cents)));
    for (product_id, cents) in cells {
        let cell = cell_key(month, product_id, segment);
        let row = s.monthly_sales.entry(cell).or_insert(MonthlySalesRow {
            cell,
            month,
            product_id,
            segment,
            orders: 0,
            revenue_cents: 0,
        });
        row.orders += sign;
        row.revenue_cents += sign * cents;
    }
}
