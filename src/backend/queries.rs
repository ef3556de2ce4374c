//! The seven queries, once against the normalized tables (joins and aggregates), once
//! against the read models, and once against the denormalized order lines (`denormalized`:
//! where a line's copy of its product serves, no join to `products`). All return the same
//! typed answers; only the SQL differs, so one runner per query serves every side.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::month::MICROS_PER_MONTH;
use crate::domain::segment::segment_name;
use crate::domain::{
    text, DayRevenue, OrderRow, PriceChangeRow, ProductPage, Query, QueryAnswer, RelatedProduct,
    SearchHit, TextSort, TopProduct, MICROS_PER_DAY,
};
use crate::domain::{CategoryRevenue, MonthlyReport, SegmentRevenue};

/// Which tables the queries read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSide {
    Normalized,
    ReadModels,
    /// The normalized tables, with the product details the order lines carry read from the
    /// lines themselves.
    Denormalized,
}

struct Sql {
    product: &'static str,
    recent_prices: &'static str,
    related: &'static str,
    user_orders: &'static str,
    search: &'static str,
    daily_revenue: &'static str,
    top_products: &'static str,
    /// `text_search` with `@MATCHED@` for the count of the query's words in the name and
    /// `@ORDER@` for the sort; `$1` category (0 any), `$2..$3` price, `$4` in stock, `$5` min
    /// rating, `$6` limit, `$7…` one `% word %` pattern per word.
    text_search: &'static str,
    /// `monthly_report`'s two sections, `$1` the month.
    month_by_category: &'static str,
    month_by_segment: &'static str,
}

const NORMALIZED: Sql = Sql {
    product: "SELECT p.id, p.name, p.category_id, c.name, p.price_cents, p.stock, \
              (SELECT CAST(COUNT(*) AS BIGINT) FROM reviews r WHERE r.product_id = p.id), \
              (SELECT CAST(COALESCE(SUM(r.rating), 0) AS BIGINT) FROM reviews r WHERE r.product_id = p.id) \
              FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = $1",
    recent_prices: "SELECT id, old_cents, new_cents, changed_at FROM price_history \
                    WHERE product_id = $1 ORDER BY id DESC LIMIT 3",
    related: "SELECT p.id, p.name, p.price_cents FROM products p \
              WHERE p.category_id = $1 AND p.id <> $2 \
              ORDER BY (SELECT COUNT(*) FROM reviews r WHERE r.product_id = p.id) DESC, p.id LIMIT 4",
    user_orders: "SELECT o.id, o.placed_at, o.status, CAST(SUM(i.qty) AS BIGINT), \
                  CAST(SUM(i.qty * i.unit_cents) AS BIGINT) \
                  FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = $1 \
                  GROUP BY o.id, o.placed_at, o.status ORDER BY o.placed_at DESC, o.id DESC LIMIT $2",
    search: "SELECT p.id, p.name, p.price_cents, p.stock, COALESCE(r.n, 0), COALESCE(r.s, 0) \
             FROM products p LEFT JOIN ( \
               SELECT rv.product_id, CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(rv.rating) AS BIGINT) AS s \
               FROM reviews rv JOIN products pp ON pp.id = rv.product_id \
               WHERE pp.category_id = $1 GROUP BY rv.product_id) r ON r.product_id = p.id \
             WHERE p.category_id = $1 AND p.price_cents BETWEEN $2 AND $3 \
             AND ($4 = 0 OR p.stock > 0) \
             AND ($5 = 0 OR (COALESCE(r.n, 0) > 0 AND COALESCE(r.s, 0) >= $5 * COALESCE(r.n, 0))) \
             ORDER BY p.price_cents, p.id LIMIT $6",
    daily_revenue: "SELECT o.placed_at / @DAY@, CAST(COUNT(DISTINCT o.id) AS BIGINT), \
                    CAST(SUM(i.qty) AS BIGINT), CAST(SUM(i.qty * i.unit_cents) AS BIGINT) \
                    FROM orders o JOIN order_items i ON i.order_id = o.id \
                    WHERE o.status <> 'cancelled' AND o.placed_at >= $1 * @DAY@ \
                    AND o.placed_at < ($2 + 1) * @DAY@ \
                    GROUP BY o.placed_at / @DAY@ ORDER BY 1",
    top_products: "SELECT p.id, p.name, CAST(SUM(i.qty) AS BIGINT), \
                   CAST(SUM(i.qty * i.unit_cents) AS BIGINT) AS revenue \
                   FROM order_items i JOIN orders o ON o.id = i.order_id \
                   JOIN products p ON p.id = i.product_id WHERE o.status <> 'cancelled' \
                   GROUP BY p.id, p.name ORDER BY revenue DESC, p.id LIMIT $1",
    // The reviews are counted only for products whose name and filters match (the
    // correlated subqueries run for the inner query's rows only).
    text_search: "SELECT q.id, q.name, q.price_cents, q.stock, q.n, q.s FROM ( \
                  SELECT p.id AS id, p.name AS name, p.price_cents AS price_cents, p.stock AS stock, \
                  (SELECT CAST(COUNT(*) AS BIGINT) FROM reviews r WHERE r.product_id = p.id) AS n, \
                  (SELECT CAST(COALESCE(SUM(r.rating), 0) AS BIGINT) FROM reviews r WHERE r.product_id = p.id) AS s, \
                  @MATCHED@ AS m FROM products p \
                  WHERE ($1 = 0 OR p.category_id = $1) AND p.price_cents BETWEEN $2 AND $3 \
                  AND ($4 = 0 OR p.stock > 0) AND @MATCHED@ > 0) q \
                  WHERE ($5 = 0 OR (q.n > 0 AND q.s >= $5 * q.n)) \
                  ORDER BY @ORDER@ LIMIT $6",
    // The long report: every line of the month's orders, joined and aggregated twice.
    month_by_category: "SELECT p.category_id, CAST(COUNT(*) AS BIGINT), \
                        CAST(SUM(i.qty * i.unit_cents) AS BIGINT) \
                        FROM orders o JOIN order_items i ON i.order_id = o.id \
                        JOIN products p ON p.id = i.product_id \
                        WHERE o.status <> 'cancelled' AND o.placed_at >= $1 * @MONTH@ \
                        AND o.placed_at < ($1 + 1) * @MONTH@ \
                        GROUP BY p.category_id ORDER BY 1",
    month_by_segment: "SELECT u.segment, CAST(COUNT(DISTINCT o.id) AS BIGINT), \
                       CAST(SUM(i.qty * i.unit_cents) AS BIGINT) \
                       FROM orders o JOIN users u ON u.id = o.user_id \
                       JOIN order_items i ON i.order_id = o.id \
                       WHERE o.status <> 'cancelled' AND o.placed_at >= $1 * @MONTH@ \
                       AND o.placed_at < ($1 + 1) * @MONTH@ \
                       GROUP BY u.segment ORDER BY 1",
};

/// The normalized statements, except where an order line's copy of its product serves:
/// `top_products` takes the name from the lines. Revenue is still the price paid
/// (`unit_cents`), never the current-price copy, so every answer means what the other
/// backends' answers mean. The product pages and searches are about products, not lines,
/// and read `products` as `normalized` does.
const DENORMALIZED: Sql = Sql {
    top_products: "SELECT i.product_id, MAX(i.product_name), CAST(SUM(i.qty) AS BIGINT), \
                   CAST(SUM(i.qty * i.unit_cents) AS BIGINT) AS revenue \
                   FROM order_items i JOIN orders o ON o.id = i.order_id \
                   WHERE o.status <> 'cancelled' \
                   GROUP BY i.product_id ORDER BY revenue DESC, i.product_id LIMIT $1",
    ..NORMALIZED
};

const READ_MODELS: Sql = Sql {
    product: "SELECT product_id, name, category_id, category_name, price_cents, stock, \
              review_count, rating_sum FROM product_catalog WHERE product_id = $1",
    recent_prices: "SELECT change_id, old_cents, new_cents, changed_at FROM catalog_price_changes \
                    WHERE product_id = $1 ORDER BY change_id DESC LIMIT 3",
    related: "SELECT product_id, name, price_cents FROM product_catalog \
              WHERE category_id = $1 AND product_id <> $2 \
              ORDER BY review_count DESC, product_id LIMIT 4",
    user_orders: "SELECT order_id, placed_at, status, item_count, total_cents FROM order_summary \
                  WHERE user_id = $1 ORDER BY placed_at DESC, order_id DESC LIMIT $2",
    search: "SELECT product_id, name, price_cents, stock, review_count, rating_sum \
             FROM product_catalog WHERE category_id = $1 AND price_cents BETWEEN $2 AND $3 \
             AND ($4 = 0 OR stock > 0) \
             AND ($5 = 0 OR (review_count > 0 AND rating_sum >= $5 * review_count)) \
             ORDER BY price_cents, product_id LIMIT $6",
    daily_revenue: "SELECT day, orders, items, revenue_cents FROM daily_sales \
                    WHERE day BETWEEN $1 AND $2 AND orders > 0 ORDER BY day",
    top_products: "SELECT product_id, name, units, revenue_cents FROM product_sales \
                   WHERE units > 0 ORDER BY revenue_cents DESC, product_id LIMIT $1",
    text_search: "SELECT q.id, q.name, q.price_cents, q.stock, q.n, q.s FROM ( \
                  SELECT product_id AS id, name, price_cents, stock, review_count AS n, \
                  rating_sum AS s, @MATCHED@ AS m FROM product_catalog p \
                  WHERE ($1 = 0 OR category_id = $1) AND price_cents BETWEEN $2 AND $3 \
                  AND ($4 = 0 OR stock > 0) \
                  AND ($5 = 0 OR (review_count > 0 AND rating_sum >= $5 * review_count)) \
                  AND @MATCHED@ > 0) q \
                  ORDER BY @ORDER@ LIMIT $6",
    // One month's cells (a row per product and segment that sold), their categories from
    // the catalog.
    month_by_category: "SELECT c.category_id, CAST(SUM(m.orders) AS BIGINT), \
                        CAST(SUM(m.revenue_cents) AS BIGINT) \
                        FROM monthly_sales m JOIN product_catalog c ON c.product_id = m.product_id \
                        WHERE m.month = $1 AND m.product_id > 0 \
                        GROUP BY c.category_id HAVING SUM(m.orders) > 0 ORDER BY 1",
    month_by_segment: "SELECT segment, orders, revenue_cents FROM monthly_sales \
                       WHERE month = $1 AND product_id = 0 AND orders > 0 ORDER BY 1",
};

/// The `text_search` statement of `template` for `words` words sorted by `sort`: each word
/// counts 1 when the name holds it as a whole word (`domain::text`).
fn text_search_sql(template: &str, words: usize, sort: TextSort) -> String {
    let matched = (0..words)
        .map(|k| {
            format!(
                "(CASE WHEN ' ' || LOWER(p.name) || ' ' LIKE ${} THEN 1 ELSE 0 END)",
                k + 7
            )
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let order = match sort {
        TextSort::Price => "q.price_cents, q.id",
        TextSort::Relevance => "q.m DESC, q.id",
    };
    template
        .replace("@MATCHED@", &format!("({matched})"))
        .replace("@ORDER@", order)
}

/// `text_search`'s hits, or an error for a query without a word (nothing to search for).
pub fn search_words(terms: &[String]) -> Result<Vec<String>, sqlx::Error> {
    let words = text::words(terms);
    if words.is_empty() {
        return Err(sqlx::Error::Protocol(format!(
            "text_search: no word to search for in {terms:?}"
        )));
    }
    Ok(words)
}

/// The `user_orders` statement of a side (`$1` user, `$2` limit), for the floor benches that
/// run it bare.
pub fn user_orders_sql(side: ReadSide) -> &'static str {
    sql_of(side).user_orders
}

fn sql_of(side: ReadSide) -> &'static Sql {
    match side {
        ReadSide::Normalized => &NORMALIZED,
        ReadSide::ReadModels => &READ_MODELS,
        ReadSide::Denormalized => &DENORMALIZED,
    }
}

fn search_hits(rows: &[AnyRow]) -> Result<Vec<SearchHit>, sqlx::Error> {
    rows.iter()
        .map(|r| {
            Ok(SearchHit {
                product_id: i(r, 0)?,
                name: s(r, 1)?,
                price_cents: i(r, 2)?,
                stock: i(r, 3)?,
                review_count: i(r, 4)?,
                rating_sum: i(r, 5)?,
            })
        })
        .collect()
}

fn day(sql: &str) -> String {
    sql.replace("@DAY@", &MICROS_PER_DAY.to_string())
}

fn month(sql: &str) -> String {
    sql.replace("@MONTH@", &MICROS_PER_MONTH.to_string())
}

/// Rows of `(id, orders, revenue)`.
fn id_orders_revenue(rows: &[AnyRow]) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    rows.iter()
        .map(|r| Ok((i(r, 0)?, i(r, 1)?, i(r, 2)?)))
        .collect()
}

fn i(r: &AnyRow, n: usize) -> Result<i64, sqlx::Error> {
    r.try_get(n)
}

fn s(r: &AnyRow, n: usize) -> Result<String, sqlx::Error> {
    r.try_get(n)
}

/// Runs `q` against `side`, in one transaction so multi-statement answers are consistent.
pub async fn run(
    conn: &mut AnyConnection,
    side: ReadSide,
    q: &Query,
) -> Result<QueryAnswer, sqlx::Error> {
    let sql = sql_of(side);
    Ok(match q {
        Query::ProductPage { product_id } => {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let Some(r) = sqlx::query(sql.product)
                .bind(product_id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.commit().await?;
                return Ok(QueryAnswer::ProductPage(None));
            };
            let mut page = ProductPage {
                product_id: i(&r, 0)?,
                name: s(&r, 1)?,
                category_id: i(&r, 2)?,
                category_name: s(&r, 3)?,
                price_cents: i(&r, 4)?,
                stock: i(&r, 5)?,
                review_count: i(&r, 6)?,
                rating_sum: i(&r, 7)?,
                recent_prices: Vec::new(),
                related: Vec::new(),
            };
            for r in sqlx::query(sql.recent_prices)
                .bind(product_id)
                .fetch_all(&mut *tx)
                .await?
            {
                page.recent_prices.push(PriceChangeRow {
                    change_id: i(&r, 0)?,
                    old_cents: i(&r, 1)?,
                    new_cents: i(&r, 2)?,
                    changed_at: i(&r, 3)?,
                });
            }
            for r in sqlx::query(sql.related)
                .bind(page.category_id)
                .bind(product_id)
                .fetch_all(&mut *tx)
                .await?
            {
                page.related.push(RelatedProduct {
                    product_id: i(&r, 0)?,
                    name: s(&r, 1)?,
                    price_cents: i(&r, 2)?,
                });
            }
            tx.commit().await?;
            QueryAnswer::ProductPage(Some(page))
        }
        Query::UserOrders { user_id, limit } => {
            let rows = sqlx::query(sql.user_orders)
                .bind(user_id)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
            QueryAnswer::UserOrders(
                rows.iter()
                    .map(|r| {
                        Ok(OrderRow {
                            order_id: i(r, 0)?,
                            placed_at: i(r, 1)?,
                            status: s(r, 2)?,
                            item_count: i(r, 3)?,
                            total_cents: i(r, 4)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()?,
            )
        }
        Query::Search {
            category_id,
            min_cents,
            max_cents,
            min_rating,
            in_stock,
            limit,
        } => {
            let rows = sqlx::query(sql.search)
                .bind(category_id)
                .bind(min_cents)
                .bind(max_cents)
                .bind(i64::from(*in_stock))
                .bind(min_rating)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
            QueryAnswer::Search(search_hits(&rows)?)
        }
        Query::TextSearch {
            terms,
            category_id,
            min_cents,
            max_cents,
            min_rating,
            in_stock,
            sort,
            limit,
        } => {
            let words = search_words(terms)?;
            let stmt = text_search_sql(sql.text_search, words.len(), *sort);
            let mut q = sqlx::query(&stmt)
                .bind(category_id)
                .bind(min_cents)
                .bind(max_cents)
                .bind(i64::from(*in_stock))
                .bind(min_rating)
                .bind(limit);
            for w in &words {
                q = q.bind(format!("% {w} %"));
            }
            QueryAnswer::TextSearch(search_hits(&q.fetch_all(&mut *conn).await?)?)
        }
        Query::DailyRevenue { from_day, to_day } => {
            let rows = sqlx::query(&day(sql.daily_revenue))
                .bind(from_day)
                .bind(to_day)
                .fetch_all(&mut *conn)
                .await?;
            QueryAnswer::DailyRevenue(
                rows.iter()
                    .map(|r| {
                        Ok(DayRevenue {
                            day: i(r, 0)?,
                            orders: i(r, 1)?,
                            items: i(r, 2)?,
                            revenue_cents: i(r, 3)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()?,
            )
        }
        Query::MonthlyReport { month: m } => {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let by_category = sqlx::query(&month(sql.month_by_category))
                .bind(m)
                .fetch_all(&mut *tx)
                .await?;
            let by_segment = sqlx::query(&month(sql.month_by_segment))
                .bind(m)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            QueryAnswer::MonthlyReport(MonthlyReport {
                month: *m,
                by_category: id_orders_revenue(&by_category)?
                    .into_iter()
                    .map(|(category_id, lines, revenue_cents)| CategoryRevenue {
                        category_id,
                        lines,
                        revenue_cents,
                    })
                    .collect(),
                by_segment: id_orders_revenue(&by_segment)?
                    .into_iter()
                    .map(|(segment, orders, revenue_cents)| SegmentRevenue {
                        segment: segment_name(segment).to_string(),
                        orders,
                        revenue_cents,
                    })
                    .collect(),
            })
        }
        Query::TopProducts { n } => {
            let rows = sqlx::query(sql.top_products)
                .bind(n)
                .fetch_all(&mut *conn)
                .await?;
            QueryAnswer::TopProducts(
                rows.iter()
                    .map(|r| {
                        Ok(TopProduct {
                            product_id: i(r, 0)?,
                            name: s(r, 1)?,
                            units: i(r, 2)?,
                            revenue_cents: i(r, 3)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()?,
            )
        }
    })
}
