use serde::{Deserialize, Serialize};

/// One line of an order as the client asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: i64,
    pub qty: i64,
}

/// A write request. Every command carries its logical time `at` (µs) so that replays are
/// identical whatever the wall clock says, and the ids of what it creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    PlaceOrder {
        order_id: i64,
        user_id: i64,
        lines: Vec<OrderLine>,
        at: i64,
    },
    PayOrder {
        order_id: i64,
        at: i64,
    },
    ShipOrder {
        order_id: i64,
        at: i64,
    },
    CancelOrder {
        order_id: i64,
        at: i64,
    },
    AddReview {
        review_id: i64,
        product_id: i64,
        user_id: i64,
        rating: i64,
        at: i64,
    },
    ChangePrice {
        change_id: i64,
        product_id: i64,
        cents: i64,
        at: i64,
    },
    Restock {
        product_id: i64,
        qty: i64,
        at: i64,
    },
}

/// The command types, as named in scenarios, metrics and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    PlaceOrder,
    PayOrder,
    ShipOrder,
    CancelOrder,
    AddReview,
    ChangePrice,
    Restock,
}

impl CommandKind {
    pub const ALL: [CommandKind; 7] = [
        CommandKind::PlaceOrder,
        CommandKind::PayOrder,
        CommandKind::ShipOrder,
        CommandKind::CancelOrder,
        CommandKind::AddReview,
        CommandKind::ChangePrice,
        CommandKind::Restock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CommandKind::PlaceOrder => "place_order",
            CommandKind::PayOrder => "pay_order",
            CommandKind::ShipOrder => "ship_order",
            CommandKind::CancelOrder => "cancel_order",
            CommandKind::AddReview => "add_review",
            CommandKind::ChangePrice => "change_price",
            CommandKind::Restock => "restock",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The query its writer would look for the write with: their orders after an order's
    /// step, the product's page after a review, a price change or a restock. A
    /// read-your-writes probe stands for that read.
    pub fn seen_in(self) -> super::QueryKind {
        match self {
            CommandKind::PlaceOrder
            | CommandKind::PayOrder
            | CommandKind::ShipOrder
            | CommandKind::CancelOrder => super::QueryKind::UserOrders,
            CommandKind::AddReview | CommandKind::ChangePrice | CommandKind::Restock => {
                super::QueryKind::ProductPage
            }
        }
    }
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::PlaceOrder { .. } => CommandKind::PlaceOrder,
            Command::PayOrder { .. } => CommandKind::PayOrder,
            Command::ShipOrder { .. } => CommandKind::ShipOrder,
            Command::CancelOrder { .. } => CommandKind::CancelOrder,
            Command::AddReview { .. } => CommandKind::AddReview,
            Command::ChangePrice { .. } => CommandKind::ChangePrice,
            Command::Restock { .. } => CommandKind::Restock,
        }
    }

    pub fn at(&self) -> i64 {
        match self {
            Command::PlaceOrder { at, .. }
            | Command::PayOrder { at, .. }
            | Command::ShipOrder { at, .. }
            | Command::CancelOrder { at, .. }
            | Command::AddReview { at, .. }
            | Command::ChangePrice { at, .. }
            | Command::Restock { at, .. } => *at,
        }
    }
}
