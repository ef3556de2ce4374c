//! The read models as SQL: applies a batch of events to the read tables inside the caller's
//! transaction. One definition serves `cqrs-sync` (inside the write transaction), the async
//! projector, rebuilds, and the deliberately naive projector.
//!
//! Why applying twice is harmless:
//! - states (price, stock, order status) carry the aggregate's version; a row only moves to a
//!   higher version, so replays and out-of-order delivery change nothing;
//! - inserted facts (order rows, price changes) are keyed and inserted only when absent;
//! - counters (review count and rating sum, daily and product sales) change only for events
//!   newly recorded in the read model's ledger (`*_applied`, one row per event), claimed in the
//!   same transaction as the counters.
//!
//! Within a batch, changes are aggregated in memory first (counters summed per key, the highest
//! version kept per row) so a batch costs a few multi-row statements, not one per event.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};

use sqlx::{AnyConnection, Row};

use super::ProjectionName;
use crate::db::sql::{
    bind_all, insert_rows, multi_row_query, rows_per_statement, update_rows, values_for, Param,
};
use crate::domain::month::{cell_key, month_of, WHOLE_ORDER};
use crate::domain::segment::segment_of;
use crate::domain::{day_of, Event, OrderStatus, ProductState};

/// How duplicates and reordering are guarded against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Ledger for counters, versions for states: safe under redelivery and reordering.
    Ledger,
    /// Inside the write transaction that produced the events (`cqrs-sync`): each event is seen
    /// exactly once, in order, so no ledger is needed; versions still guard states.
    InWriteTransaction,
    /// The projector many teams write first: counters incremented on every delivery and
    /// states overwritten in delivery order. Ships only as the negative control.
    Naive,
}

/// One delivered event: its log position and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub seq: i64,
    pub event: Event,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Counter-bearing events applied (claimed in a ledger, or unguarded).
    pub counted: u64,
    /// Counter-bearing events skipped because their ledger row already existed.
    pub duplicates: u64,
}

fn counts_toward(p: ProjectionName, e: &Event) -> bool {
    match p {
        ProjectionName::ProductCatalog => matches!(e, Event::ReviewAdded { .. }),
        ProjectionName::DailySales
        | ProjectionName::ProductSales
        | ProjectionName::MonthlySales => {
            matches!(e, Event::OrderPlaced { .. } | Event::OrderCancelled { .. })
        }
        ProjectionName::OrderSummary | ProjectionName::ProductSearch => false,
    }
}

/// Claims the counter events of `p` in its ledger; returns the seqs newly claimed.
///
/// Asks first which are recorded already (nearly always none, so hardly any rows come back),
/// then records the rest without RETURNING: on SQLite every returned row is a hand-off between
/// threads, and a rebuild claims hundreds of thousands. Claimers of one read model are
/// serialized by its checkpoint lock; should another claim slip in between (a dead-letter
/// replay), the insert records fewer rows than it was given and the transaction fails, to be
/// retried, rather than count an event twice.
async fn claim(
    conn: &mut AnyConnection,
    p: ProjectionName,
    seqs: &[i64],
) -> Result<HashSet<i64>, sqlx::Error> {
    let ledger = p.ledger().expect("only counter projections claim");
    let mut claimed = HashSet::new();
    for chunk in seqs.chunks(rows_per_statement(1)) {
        let params: Vec<Param> = chunk.iter().map(|s| Param::Int(*s)).collect();
        let sql = format!(
            "SELECT seq FROM {ledger} WHERE seq IN ({})",
            values_for(conn, chunk.len(), 1)
        );
        let mut recorded = HashSet::new();
        for row in bind_all(multi_row_query(&sql, chunk.len()), &params)
            .fetch_all(&mut *conn)
            .await?
        {
            recorded.insert(row.try_get::<i64, _>(0)?);
        }
        let fresh: Vec<i64> = chunk
            .iter()
            .copied()
            .filter(|s| !recorded.contains(s))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO {ledger} (seq) VALUES {} ON CONFLICT (seq) DO NOTHING",
            values_for(conn, fresh.len(), 1)
        );
        let params: Vec<Param> = fresh.iter().map(|s| Param::Int(*s)).collect();
        let inserted = bind_all(multi_row_query(&sql, fresh.len()), &params)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if inserted != fresh.len() as u64 {
            return Err(sqlx::Error::Protocol(format!(
                "{ledger}: {} of {} events were claimed concurrently; batch retried",
                fresh.len() as u64 - inserted,
                fresh.len()
            )));
        }
        claimed.extend(fresh);
    }
    Ok(claimed)
}

/// Applies `events` (owned or borrowed) to the read models in `projections`.
pub async fn apply_batch<D: Borrow<Delivered>>(
    conn: &mut AnyConnection,
    events: &[D],
    projections: &[ProjectionName],
    guard: Guard,
) -> Result<ApplyStats, sqlx::Error> {
    let mut stats = ApplyStats::default();
    // A redelivered event can sit twice in one batch; its ledger claim would pass both copies.
    let mut seen = HashSet::new();
    let given = events.len();
    let events: Vec<&Delivered> = events
        .iter()
        .map(Borrow::borrow)
        .filter(|d: &&Delivered| guard != Guard::Ledger || seen.insert(d.seq))
        .collect();
    stats.duplicates += (given - events.len()) as u64;
    let events = &events[..];
    for &p in projections {
        // Which events may change this projection's counters.
        let counter_seqs: Vec<i64> = events
            .iter()
            .filter(|d| counts_toward(p, &d.event))
            .map(|d| d.seq)
            .collect();
        let counted: Option<HashSet<i64>> = if guard == Guard::Ledger && !counter_seqs.is_empty() {
            let claimed = claim(conn, p, &counter_seqs).await?;
            stats.duplicates += (counter_seqs.len() - claimed.len()) as u64;
            Some(claimed)
        } else {
            None
        };
        stats.counted += counted.as_ref().map_or(counter_seqs.len(), |c| c.len()) as u64;
        let may_count = |d: &Delivered| counted.as_ref().is_none_or(|c| c.contains(&d.seq));
        match p {
            ProjectionName::ProductCatalog => {
                product_catalog(conn, events, guard, &may_count).await?
            }
            ProjectionName::OrderSummary => order_summary(conn, events, guard).await?,
            ProjectionName::DailySales => daily_sales(conn, events, &may_count).await?,
            ProjectionName::ProductSales => product_sales(conn, events, &may_count).await?,
            ProjectionName::MonthlySales => monthly_sales(conn, events, &may_count).await?,
            // Not an SQL read model: its store is the search index (`search::store`).
            ProjectionName::ProductSearch => {}
        }
    }
    Ok(stats)
}

/// The state to write per product: highest version, or for the naive guard the last
/// delivered.
fn product_states(events: &[&Delivered], guard: Guard) -> BTreeMap<i64, ProductState> {
    let mut out: BTreeMap<i64, ProductState> = BTreeMap::new();
    for d in events {
        for st in d.event.product_states() {
            match out.get(&st.product_id) {
                Some(cur) if guard != Guard::Naive && cur.version >= st.version => {}
                _ => {
                    out.insert(st.product_id, st);
                }
            }
        }
    }
    out
}

async fn product_catalog(
    conn: &mut AnyConnection,
    events: &[&Delivered],
    guard: Guard,
    may_count: &(dyn Fn(&Delivered) -> bool + Sync),
) -> Result<(), sqlx::Error> {
    // New products first, so later changes in the batch find their row.
    let added: Vec<Vec<Param>> = events
        .iter()
        .filter_map(|d| match &d.event {
            Event::ProductAdded {
                product_id,
                name,
                category_id,
                category_name,
                state,
                ..
            } => Some(vec![
                (*product_id).into(),
                name.as_str().into(),
                (*category_id).into(),
                category_name.as_str().into(),
                state.price_cents.into(),
                state.stock.into(),
                state.version.into(),
                0.into(),
                0.into(),
            ]),
            _ => None,
        })
        .collect();
    if !added.is_empty() {
        insert_rows(
            conn,
            "INSERT INTO product_catalog (product_id, name, category_id, category_name, \
             price_cents, stock, version, review_count, rating_sum)",
            // A state from an order event may have created the row first: fill in what only
            // this event knows, keep whichever state has the higher version.
            "ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, \
             category_id = excluded.category_id, category_name = excluded.category_name, \
             price_cents = CASE WHEN product_catalog.version < excluded.version \
               THEN excluded.price_cents ELSE product_catalog.price_cents END, \
             stock = CASE WHEN product_catalog.version < excluded.version \
               THEN excluded.stock ELSE product_catalog.stock END, \
             version = CASE WHEN product_catalog.version < excluded.version \
               THEN excluded.version ELSE product_catalog.version END",
            9,
            &added,
        )
        .await?;
    }
    // States are upserted: an order event of another stream can arrive before the product's
    // `ProductAdded`; the placeholder row it creates gets its name when that arrives.
    let states: Vec<Vec<Param>> = product_states(events, guard)
        .values()
        .map(|st| {
            vec![
                st.product_id.into(),
                "".into(),
                0.into(),
                "".into(),
                st.price_cents.into(),
                st.stock.into(),
                st.version.into(),
                0.into(),
                0.into(),
            ]
        })
        .collect();
    if !states.is_empty() {
        let version_guard = if guard == Guard::Naive {
            ""
        } else {
            "WHERE product_catalog.version < excluded.version"
        };
        insert_rows(
            conn,
            "INSERT INTO product_catalog (product_id, name, category_id, category_name, \
             price_cents, stock, version, review_count, rating_sum)",
            &format!(
                "ON CONFLICT (product_id) DO UPDATE SET price_cents = excluded.price_cents, \
                 stock = excluded.stock, version = excluded.version {version_guard}"
            ),
            9,
            &states,
        )
        .await?;
    }
    let mut reviews: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut changes: Vec<Vec<Param>> = Vec::new();
    for d in events {
        match &d.event {
            Event::ReviewAdded {
                product_id, rating, ..
            } if may_count(d) => {
                let e = reviews.entry(*product_id).or_default();
                e.0 += 1;
                e.1 += rating;
            }
            Event::PriceChanged {
                change_id,
                product_id,
                old_cents,
                new_cents,
                at,
                ..
            } => changes.push(vec![
                (*change_id).into(),
                (*product_id).into(),
                (*old_cents).into(),
                (*new_cents).into(),
                (*at).into(),
            ]),
            _ => {}
        }
    }
    let review_rows: Vec<Vec<Param>> = reviews
        .into_iter()
        .map(|(p, (count, sum))| vec![p.into(), count.into(), sum.into()])
        .collect();
    if !review_rows.is_empty() {
        update_rows(
            conn,
            "product_catalog",
            "product_id",
            "review_count = product_catalog.review_count + v.column2, \
             rating_sum = product_catalog.rating_sum + v.column3",
            "",
            3,
            &review_rows,
        )
        .await?;
    }
    if !changes.is_empty() {
        insert_rows(
            conn,
            "INSERT INTO catalog_price_changes (change_id, product_id, old_cents, new_cents, changed_at)",
            "ON CONFLICT (change_id) DO NOTHING",
            5,
            &changes,
        )
        .await?;
    }
    Ok(())
}

async fn order_summary(
    conn: &mut AnyConnection,
    events: &[&Delivered],
    guard: Guard,
) -> Result<(), sqlx::Error> {
    let mut placed: Vec<Vec<Param>> = Vec::new();
    let mut status: BTreeMap<i64, (OrderStatus, i64)> = BTreeMap::new();
    for d in events {
        let (order_id, st, version) = match &d.event {
            Event::OrderPlaced {
                order_id,
                user_id,
                lines,
                placed_at,
                ..
            } => {
                let items: i64 = lines.iter().map(|l| l.qty).sum();
                let total: i64 = lines.iter().map(|l| l.qty * l.unit_cents).sum();
                placed.push(vec![
                    (*order_id).into(),
                    (*user_id).into(),
                    (*placed_at).into(),
                    OrderStatus::Placed.as_str().into(),
                    items.into(),
                    total.into(),
                    1.into(),
                ]);
                continue;
            }
            Event::OrderPaid {
                order_id, version, ..
            } => (*order_id, OrderStatus::Paid, *version),
            Event::OrderShipped {
                order_id, version, ..
            } => (*order_id, OrderStatus::Shipped, *version),
            Event::OrderCancelled {
                order_id, version, ..
            } => (*order_id, OrderStatus::Cancelled, *version),
            _ => continue,
        };
        match status.get(&order_id) {
            Some((_, v)) if guard != Guard::Naive && *v >= version => {}
            _ => {
                status.insert(order_id, (st, version));
            }
        }
    }
    if !placed.is_empty() {
        insert_rows(
            conn,
            "INSERT INTO order_summary (order_id, user_id, placed_at, status, item_count, total_cents, version)",
            "ON CONFLICT (order_id) DO NOTHING",
            7,
            &placed,
        )
        .await?;
    }
    let status_rows: Vec<Vec<Param>> = status
        .into_iter()
        .map(|(order_id, (st, version))| vec![order_id.into(), st.as_str().into(), version.into()])
        .collect();
    if !status_rows.is_empty() {
        let version_guard = if guard == Guard::Naive {
            ""
        } else {
            "AND order_summary.version < v.column3"
        };
        update_rows(
            conn,
            "order_summary",
            "order_id",
            "status = v.column2, version = v.column3",
            version_guard,
            3,
            &status_rows,
        )
        .await?;
    }
    Ok(())
}

/// Sign and lines of an order event that changes sales counters.
fn sales_lines(e: &Event) -> Option<(i64, i64, &[crate::domain::PricedLine])> {
    match e {
        Event::OrderPlaced {
            placed_at, lines, ..
        } => Some((1, *placed_at, lines)),
        Event::OrderCancelled {
            placed_at, lines, ..
        } => Some((-1, *placed_at, lines)),
        _ => None,
    }
}

async fn daily_sales(
    conn: &mut AnyConnection,
    events: &[&Delivered],
    may_count: &(dyn Fn(&Delivered) -> bool + Sync),
) -> Result<(), sqlx::Error> {
    let mut days: BTreeMap<i64, [i64; 3]> = BTreeMap::new();
    for d in events.iter().filter(|d| may_count(d)) {
        if let Some((sign, placed_at, lines)) = sales_lines(&d.event) {
            let e = days.entry(day_of(placed_at)).or_default();
            e[0] += sign;
            for l in lines {
                e[1] += sign * l.qty;
                e[2] += sign * l.qty * l.unit_cents;
            }
        }
    }
    let rows: Vec<Vec<Param>> = days
        .into_iter()
        .map(|(day, [o, i, r])| vec![day.into(), o.into(), i.into(), r.into()])
        .collect();
    if !rows.is_empty() {
        insert_rows(
            conn,
            "INSERT INTO daily_sales (day, orders, items, revenue_cents)",
            "ON CONFLICT (day) DO UPDATE SET orders = daily_sales.orders + excluded.orders, \
             items = daily_sales.items + excluded.items, \
             revenue_cents = daily_sales.revenue_cents + excluded.revenue_cents",
            4,
            &rows,
        )
        .await?;
    }
    Ok(())
}

async fn product_sales(
    conn: &mut AnyConnection,
    events: &[&Delivered],
    may_count: &(dyn Fn(&Delivered) -> bool + Sync),
) -> Result<(), sqlx::Error> {
    let named: Vec<Vec<Param>> = events
        .iter()
        .filter_map(|d| match &d.event {
            Event::ProductAdded {
                product_id, name, ..
            } => Some(vec![
                (*product_id).into(),
                name.as_str().into(),
                0.into(),
                0.into(),
            ]),
            _ => None,
        })
        .collect();
    if !named.is_empty() {
        insert_rows(
            conn,
            "INSERT INTO product_sales (product_id, name, units, revenue_cents)",
            "ON CONFLICT (product_id) DO UPDATE SET name = excluded.name",
            4,
            &named,
        )
        .await?;
    }
    let mut products: BTreeMap<i64, [i64; 2]> = BTreeMap::new();
    for d in events.iter().filter(|d| may_count(d)) {
        if let Some((sign, _, lines)) = sales_lines(&d.event) {
            for l in lines {
                let e = products.entry(l.product_id).or_default();
                e[0] += sign * l.qty;
                e[1] += sign * l.qty * l.unit_cents;
            }
        }
    }
    let rows: Vec<Vec<Param>> = products
        .into_iter()
        .map(|(p, [u, r])| vec![p.into(), "".into(), u.into(), r.into()])
        .collect();
    if !rows.is_empty() {
        insert_rows(
            conn,
            "INSERT INTO product_sales (product_id, name, units, revenue_cents)",
            "ON CONFLICT (product_id) DO UPDATE SET units = product_sales.units + excluded.units, \
             revenue_cents = product_sales.revenue_cents + excluded.revenue_cents",
            4,
            &rows,
        )
        .await?;
    }
    Ok(())
}

async fn monthly_sales(
    conn: &mut AnyConnection,
    events: &[&Delivered],
    may_count: &(dyn Fn(&Delivered) -> bool + Sync),
) -> Result<(), sqlx::Error> {
    // cell → (month, product, segment, orders, revenue)
    let mut cells: BTreeMap<i64, [i64; 5]> = BTreeMap::new();
    for d in events.iter().filter(|d| may_count(d)) {
        let user_id = match &d.event {
            Event::OrderPlaced { user_id, .. } | Event::OrderCancelled { user_id, .. } => *user_id,
            _ => continue,
        };
        let Some((sign, placed_at, lines)) = sales_lines(&d.event) else {
            continue;
        };
        let (month, segment) = (month_of(placed_at), segment_of(user_id));
        let total: i64 = lines.iter().map(|l| l.qty * l.unit_cents).sum();
        let parts = std::iter::once((WHOLE_ORDER, total))
            .chain(lines.iter().map(|l| (l.product_id, l.qty * l.unit_cents)));
        for (p, cents) in parts {
            let e = cells
                .entry(cell_key(month, p, segment))
                .or_insert([month, p, segment, 0, 0]);
            e[3] += sign;
            e[4] += sign * cents;
        }
    }
    let rows: Vec<Vec<Param>> = cells
        .into_iter()
        .map(|(cell, [m, p, seg, o, r])| {
            vec![
                cell.into(),
                m.into(),
                p.into(),
                seg.into(),
                o.into(),
                r.into(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        insert_rows(
            conn,
            "INSERT INTO monthly_sales (cell, month, product_id, segment, orders, revenue_cents)",
            "ON CONFLICT (cell) DO UPDATE SET orders = monthly_sales.orders + excluded.orders, \
             revenue_cents = monthly_sales.revenue_cents + excluded.revenue_cents",
            6,
            &rows,
        )
        .await?;
    }
    Ok(())
}
