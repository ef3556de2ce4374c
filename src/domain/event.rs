use serde::{Deserialize, Serialize};

/// A product's mutable state after a change, stamped with the product's version. Read models
/// keep the state with the highest version, so applying these in any order, or twice, gives the
/// same row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductState {
    pub product_id: i64,
    pub version: i64,
    pub price_cents: i64,
    pub stock: i64,
}

/// An order line with the unit price charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub product_id: i64,
    pub qty: i64,
    pub unit_cents: i64,
}

/// What happened. Events carry everything the projections need, so a projector never reads
/// the write model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Only the dataset seed emits this: a product as it stands after seeding.
    ProductAdded {
        product_id: i64,
        name: String,
        category_id: i64,
        category_name: String,
        state: ProductState,
        at: i64,
    },
    OrderPlaced {
        order_id: i64,
        user_id: i64,
        lines: Vec<PricedLine>,
        placed_at: i64,
        /// Stock after the order, one per line (empty for seeded orders, whose products'
        /// final state is in `ProductAdded`).
        products: Vec<ProductState>,
    },
    OrderPaid {
        order_id: i64,
        version: i64,
        at: i64,
    },
    OrderShipped {
        order_id: i64,
        version: i64,
        at: i64,
    },
    OrderCancelled {
        order_id: i64,
        version: i64,
        at: i64,
        user_id: i64,
        placed_at: i64,
        lines: Vec<PricedLine>,
        products: Vec<ProductState>,
    },
    ReviewAdded {
        review_id: i64,
        product_id: i64,
        user_id: i64,
        rating: i64,
        at: i64,
    },
    PriceChanged {
        change_id: i64,
        product_id: i64,
        old_cents: i64,
        new_cents: i64,
        at: i64,
        product: Option<ProductState>,
    },
    StockAdjusted {
        product_id: i64,
        delta: i64,
        at: i64,
        product: ProductState,
    },
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ProductAdded { .. } => "product_added",
            Event::OrderPlaced { .. } => "order_placed",
            Event::OrderPaid { .. } => "order_paid",
            Event::OrderShipped { .. } => "order_shipped",
            Event::OrderCancelled { .. } => "order_cancelled",
            Event::ReviewAdded { .. } => "review_added",
            Event::PriceChanged { .. } => "price_changed",
            Event::StockAdjusted { .. } => "stock_adjusted",
        }
    }

    /// The stream (aggregate) the event belongs to; order within a stream is the order of
    /// its commits.
    pub fn stream(&self) -> String {
        match self {
            Event::OrderPlaced { order_id, .. }
            | Event::OrderPaid { order_id, .. }
            | Event::OrderShipped { order_id, .. }
            | Event::OrderCancelled { order_id, .. } => format!("order-{order_id}"),
            Event::ProductAdded { product_id, .. }
            | Event::ReviewAdded { product_id, .. }
            | Event::PriceChanged { product_id, .. }
            | Event::StockAdjusted { product_id, .. } => format!("product-{product_id}"),
        }
    }

    /// Every product state this event reports.
    pub fn product_states(&self) -> Vec<ProductState> {
        match self {
            Event::ProductAdded { state, .. } => vec![*state],
            Event::OrderPlaced { products, .. } | Event::OrderCancelled { products, .. } => {
                products.clone()
            }
            Event::PriceChanged { product, .. } => product.iter().copied().collect(),
            Event::StockAdjusted { product, .. } => vec![*product],
            _ => Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }

    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}
