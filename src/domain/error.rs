use super::OrderStatus;

/// A command the domain refuses. These are answers, not failures: the driver counts them as
/// rejections and carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("unknown product {0}")]
    UnknownProduct(i64),
    #[error("unknown user {0}")]
    UnknownUser(i64),
    #[error("unknown order {0}")]
    UnknownOrder(i64),
    #[error("order {0} already exists")]
    DuplicateOrder(i64),
    #[error("review {0} already exists")]
    DuplicateReview(i64),
    #[error("price change {0} already exists")]
    DuplicatePriceChange(i64),
    #[error("rating {0} is outside 1..5")]
    InvalidRating(i64),
    #[error("quantity {0} must be positive")]
    InvalidQuantity(i64),
    #[error("price {0} cents must be positive")]
    InvalidPrice(i64),
    #[error("an order needs at least one line, each product once")]
    InvalidLines,
    #[error("product {product} has {available} in stock, {requested} requested")]
    OutOfStock {
        product: i64,
        requested: i64,
        available: i64,
    },
    #[error("order {order} is {from:?} and cannot become {to:?}")]
    InvalidTransition {
        order: i64,
        from: OrderStatus,
        to: OrderStatus,
    },
    /// A workload pack's command whose statement `statement` (0-based) touched or returned
    /// `rows` rows, not what it requires (`require_rows`): rolled back, counted as rejected.
    #[error("{command}: statement {} touched {rows} rows, not what it requires", statement + 1)]
    Refused {
        command: String,
        statement: usize,
        rows: u64,
    },
}

impl DomainError {
    /// A short stable label for counting rejections by kind.
    pub fn label(&self) -> &'static str {
        match self {
            DomainError::UnknownProduct(_) => "unknown_product",
            DomainError::UnknownUser(_) => "unknown_user",
            DomainError::UnknownOrder(_) => "unknown_order",
            DomainError::DuplicateOrder(_) => "duplicate_order",
            DomainError::DuplicateReview(_) => "duplicate_review",
            DomainError::DuplicatePriceChange(_) => "duplicate_price_change",
            DomainError::InvalidRating(_) => "invalid_rating",
            DomainError::InvalidQuantity(_) => "invalid_quantity",
            DomainError::InvalidPrice(_) => "invalid_price",
            DomainError::InvalidLines => "invalid_lines",
            DomainError::OutOfStock { .. } => "out_of_stock",
            DomainError::InvalidTransition { .. } => "invalid_transition",
            DomainError::Refused { .. } => "refused",
        }
    }
}
