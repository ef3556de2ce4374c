//! Commands against the normalized write model, shared by every backend. Runs inside the
//! caller's transaction and returns the events the command produced; a domain rejection is an
//! error the caller answers by rolling back.
//!
//! Happy paths are one statement per row touched (conditional UPDATE … RETURNING takes the row
//! lock and checks the rule at once); the reason for a refusal is looked up only on refusal.
//! Products are always locked in ascending id order so concurrent orders cannot deadlock.

use sqlx::{AnyConnection, Row};

use super::ExecError;
use crate::db::dialect::Dialect;
use crate::db::sql::{insert_rows, Param};
use crate::domain::{Command, DomainError, Event, OrderStatus, PricedLine, ProductState};

pub async fn execute(
    conn: &mut AnyConnection,
    dialect: Dialect,
    cmd: &Command,
) -> Result<Vec<Event>, ExecError> {
    match cmd {
        Command::PlaceOrder {
            order_id,
            user_id,
            lines,
            at,
        } => place_order(conn, *order_id, *user_id, lines, *at).await,
        Command::PayOrder { order_id, at } => {
            let (version, _) = transition(conn, *order_id, OrderStatus::Paid, *at).await?;
            Ok(vec![Event::OrderPaid {
                order_id: *order_id,
                version,
                at: *at,
            }])
        }
        Command::ShipOrder { order_id, at } => {
            let (version, _) = transition(conn, *order_id, OrderStatus::Shipped, *at).await?;
            Ok(vec![Event::OrderShipped {
                order_id: *order_id,
                version,
                at: *at,
            }])
        }
        Command::CancelOrder { order_id, at } => cancel_order(conn, *order_id, *at).await,
        Command::AddReview {
            review_id,
            product_id,
            user_id,
            rating,
            at,
        } => add_review(conn, *review_id, *product_id, *user_id, *rating, *at).await,
        Command::ChangePrice {
            change_id,
            product_id,
            cents,
            at,
        } => change_price(conn, dialect, *change_id, *product_id, *cents, *at).await,
        Command::Restock {
            product_id,
            qty,
            at,
        } => {
            if *qty <= 0 {
                return Err(DomainError::InvalidQuantity(*qty).into());
            }
            let state = adjust_stock(conn, *product_id, *qty).await?;
            Ok(vec![Event::StockAdjusted {
                product_id: *product_id,
                delta: *qty,
                at: *at,
                product: state,
            }])
        }
    }
}

fn state_from(row: &sqlx::any::AnyRow, product_id: i64) -> Result<ProductState, sqlx::Error> {
    Ok(ProductState {
        product_id,
        price_cents: row.try_get(0)?,
        stock: row.try_get(1)?,
        version: row.try_get(2)?,
    })
}

async fn exists(conn: &mut AnyConnection, table: &str, id: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Adds `delta` to a product's stock; refuses to go below zero.
async fn adjust_stock(
    conn: &mut AnyConnection,
    product_id: i64,
    delta: i64,
) -> Result<ProductState, ExecError> {
    let row = sqlx::query(
        "UPDATE products SET stock = stock + $1, version = version + 1 \
         WHERE id = $2 AND stock + $1 >= 0 RETURNING price_cents, stock, version",
    )
    .bind(delta)
    .bind(product_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(state_from(&row, product_id)?),
        None => {
            let stock: Option<i64> = sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
                .bind(product_id)
                .fetch_optional(&mut *conn)
                .await?;
            Err(match stock {
                None => DomainError::UnknownProduct(product_id),
                Some(available) => DomainError::OutOfStock {
                    product: product_id,
                    requested: -delta,
                    available,
                },
            }
            .into())
        }
    }
}

async fn place_order(
    conn: &mut AnyConnection,
    order_id: i64,
    user_id: i64,
    lines: &[crate::domain::OrderLine],
    at: i64,
) -> Result<Vec<Event>, ExecError> {
    let mut sorted = lines.to_vec();
    sorted.sort_by_key(|l| l.product_id);
    if sorted.is_empty()
        || sorted
            .windows(2)
            .any(|w| w[0].product_id == w[1].product_id)
    {
        return Err(DomainError::InvalidLines.into());
    }
    if let Some(l) = sorted.iter().find(|l| l.qty <= 0) {
        return Err(DomainError::InvalidQuantity(l.qty).into());
    }
    if !exists(conn, "users", user_id).await? {
        return Err(DomainError::UnknownUser(user_id).into());
    }
    let mut priced = Vec::with_capacity(sorted.len());
    let mut states = Vec::with_capacity(sorted.len());
    for l in &sorted {
        let state = adjust_stock(conn, l.product_id, -l.qty).await?;
        priced.push(PricedLine {
            product_id: l.product_id,
            qty: l.qty,
            unit_cents: state.price_cents,
        });
        states.push(state);
    }
    let inserted = sqlx::query(
        "INSERT INTO orders (id, user_id, status, placed_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $4, 1) ON CONFLICT (id) DO NOTHING",
    )
    .bind(order_id)
    .bind(user_id)
    .bind(OrderStatus::Placed.as_str())
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(DomainError::DuplicateOrder(order_id).into());
    }
    let items: Vec<Vec<Param>> = priced
        .iter()
        .map(|l| {
            vec![
                order_id.into(),
                l.product_id.into(),
                l.qty.into(),
                l.unit_cents.into(),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO order_items (order_id, product_id, qty, unit_cents)",
        "",
        4,
        &items,
    )
    .await?;
    Ok(vec![Event::OrderPlaced {
        order_id,
        user_id,
        lines: priced,
        placed_at: at,
        products: states,
    }])
}

/// Moves an order to `to` if the state machine allows it; returns the new version and the
/// row's user and placing time.
async fn transition(
    conn: &mut AnyConnection,
    order_id: i64,
    to: OrderStatus,
    at: i64,
) -> Result<(i64, (i64, i64)), ExecError> {
    let allowed: Vec<&str> = [OrderStatus::Placed, OrderStatus::Paid]
        .into_iter()
        .filter(|from| from.can_become(to))
        .map(OrderStatus::as_str)
        .collect();
    let row = sqlx::query(
        "UPDATE orders SET status = $1, version = version + 1, updated_at = $2 \
         WHERE id = $3 AND status IN ($4, $5) RETURNING version, user_id, placed_at",
    )
    .bind(to.as_str())
    .bind(at)
    .bind(order_id)
    .bind(allowed[0])
    .bind(allowed.get(1).copied().unwrap_or(allowed[0]))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return Ok((row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?)));
    }
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_optional(&mut *conn)
        .await?;
    Err(match status.as_deref().and_then(OrderStatus::parse) {
        None => DomainError::UnknownOrder(order_id),
        Some(from) => DomainError::InvalidTransition {
            order: order_id,
            from,
            to,
        },
    }
    .into())
}

async fn cancel_order(
    conn: &mut AnyConnection,
    order_id: i64,
    at: i64,
) -> Result<Vec<Event>, ExecError> {
    let (version, (user_id, placed_at)) =
        transition(conn, order_id, OrderStatus::Cancelled, at).await?;
    let rows = sqlx::query(
        "SELECT product_id, qty, unit_cents FROM order_items WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut states = Vec::with_capacity(rows.len());
    for row in rows {
        let line = PricedLine {
            product_id: row.try_get(0)?,
            qty: row.try_get(1)?,
            unit_cents: row.try_get(2)?,
        };
        states.push(adjust_stock(conn, line.product_id, line.qty).await?);
        lines.push(line);
    }
    Ok(vec![Event::OrderCancelled {
        order_id,
        version,
        at,
        user_id,
        placed_at,
        lines,
        products: states,
    }])
}

async fn add_review(
    conn: &mut AnyConnection,
    review_id: i64,
    product_id: i64,
    user_id: i64,
    rating: i64,
    at: i64,
) -> Result<Vec<Event>, ExecError> {
    if !(1..=5).contains(&rating) {
        return Err(DomainError::InvalidRating(rating).into());
    }
    let inserted = sqlx::query(
        "INSERT INTO reviews (id, product_id, user_id, rating, created_at) \
         SELECT $1, $2, $3, $4, $5 \
         WHERE EXISTS (SELECT 1 FROM products WHERE id = $2) \
         AND EXISTS (SELECT 1 FROM users WHERE id = $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(review_id)
    .bind(product_id)
    .bind(user_id)
    .bind(rating)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(if !exists(conn, "products", product_id).await? {
            DomainError::UnknownProduct(product_id)
        } else if !exists(conn, "users", user_id).await? {
            DomainError::UnknownUser(user_id)
        } else {
            DomainError::DuplicateReview(review_id)
        }
        .into());
    }
    Ok(vec![Event::ReviewAdded {
        review_id,
        product_id,
        user_id,
        rating,
        at,
    }])
}

async fn change_price(
    conn: &mut AnyConnection,
    dialect: Dialect,
    change_id: i64,
    product_id: i64,
    cents: i64,
    at: i64,
) -> Result<Vec<Event>, ExecError> {
    if cents <= 0 {
        return Err(DomainError::InvalidPrice(cents).into());
    }
    // SQLite has one writer at a time; PostgreSQL needs the row lock to read the old price.
    let old: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT price_cents FROM products WHERE id = $1{}",
        dialect.for_update()
    ))
    .bind(product_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(old) = old else {
        return Err(DomainError::UnknownProduct(product_id).into());
    };
    let row = sqlx::query(
        "UPDATE products SET price_cents = $1, version = version + 1 WHERE id = $2 \
         RETURNING price_cents, stock, version",
    )
    .bind(cents)
    .bind(product_id)
    .fetch_one(&mut *conn)
    .await?;
    let state = state_from(&row, product_id)?;
    let inserted = sqlx::query(
        "INSERT INTO price_history (id, product_id, old_cents, new_cents, changed_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(change_id)
    .bind(product_id)
    .bind(old)
    .bind(cents)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(DomainError::DuplicatePriceChange(change_id).into());
    }
    Ok(vec![Event::PriceChanged {
        change_id,
        product_id,
        old_cents: old,
        new_cents: cents,
        at,
        product: Some(state),
    }])
}
