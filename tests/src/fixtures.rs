//! Events and request bodies the tests send.

use serde_json::Value;
use shared_events::EventEnvelope;
use shared_events::fixtures;
use shared_events::order::OrderLine;
use uuid::Uuid;

/// Builds envelopes the way the command service would, numbering each aggregate's versions, so
/// tests can script exact event sequences (duplicates, gaps, odd orders) onto the topic.
pub use shared_events::fixtures::Script;

/// An `OrderPlaced` envelope (version 1, one line) of a new order of `customer_id`, as the
/// command service would append it.
pub fn order_placed(customer_id: Uuid) -> EventEnvelope {
    let items = vec![OrderLine {
        sku: "A-1".into(),
        name: "Widget".into(),
        quantity: 1,
        unit_price_cents: 700,
    }];
    let now = chrono::Utc::now();
    let placed = fixtures::placed(Uuid::now_v7(), customer_id, "EUR", items, now);
    EventEnvelope::new(&placed, 1, now)
}

/// A valid `POST /orders` body for `customer_id` with two lines (2 × 1250 + 1 × 500).
pub fn order_body(customer_id: Uuid) -> Value {
    serde_json::json!({
        "customer_id": customer_id,
        "currency": "EUR",
        "items": [
            { "sku": "A-1", "name": "Widget", "quantity": 2, "unit_price_cents": 1250 },
            { "sku": "B-2", "name": "Gadget", "quantity": 1, "unit_price_cents": 500 }
        ]
    })
}
