//! Typed domain events and their decoding from an envelope, including schema-version handling.
//!
//! Decoding is total: any envelope becomes either a [`DomainEvent`] or a [`DecodeError`] that
//! says whether the consumer should skip the message (an event it does not know yet) or park it
//! (a message that is broken).

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::customer::{CustomerEmailChanged, CustomerRegistered, CustomerRenamed};
use crate::order::{
    OrderCancelled, OrderConfirmed, OrderDelivered, OrderItemAdded, OrderItemRemoved, OrderPlaced,
    OrderShipped,
};
use crate::{AggregateType, EventEnvelope};

/// Why an envelope could not be turned into a [`DomainEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload is not an envelope, or `data` does not match its event's schema.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// An event type this build does not know (published by a newer producer). Skip it.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// A known event type in a schema version newer than this build understands. Skip it.
    #[error("{event_type} schema version {version} is newer than the supported {supported}")]
    NewerSchemaVersion {
        /// The envelope's event type.
        event_type: String,
        /// The envelope's schema version.
        version: u32,
        /// The newest version this build can read.
        supported: u32,
    },
}

impl DecodeError {
    /// True for messages a consumer should skip and count rather than park as poison: they are
    /// well-formed, just from a newer producer.
    pub fn is_from_newer_producer(&self) -> bool {
        matches!(
            self,
            DecodeError::UnknownType(_) | DecodeError::NewerSchemaVersion { .. }
        )
    }
}

/// Declares [`DomainEvent`] with one variant per event type, and the per-type facts: stable
/// name, current schema version, aggregate type, and the field holding the aggregate id.
macro_rules! domain_events {
    ($($name:ident { aggregate: $aggregate:ident, id: $id:ident, version: $version:literal },)+) => {
        /// Every event the platform publishes, typed.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum DomainEvent {
            $(
                #[doc = concat!("See [`", stringify!($name), "`].")]
                $name($name),
            )+
        }

        impl DomainEvent {
            /// Every event type name, for documentation and schema generation.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($name)),+];

            /// The stable event type name written to the envelope.
            pub fn event_type(&self) -> &'static str {
                match self { $(DomainEvent::$name(_) => stringify!($name),)+ }
            }

            /// The schema version this build writes for the event.
            pub fn schema_version(&self) -> u32 {
                match self { $(DomainEvent::$name(_) => $version,)+ }
            }

            /// The kind of aggregate that emits the event.
            pub fn aggregate_type(&self) -> AggregateType {
                match self { $(DomainEvent::$name(_) => AggregateType::$aggregate,)+ }
            }

            /// The id of the aggregate that emitted the event.
            pub fn aggregate_id(&self) -> Uuid {
                match self { $(DomainEvent::$name(e) => e.$id,)+ }
            }

            /// The customer the event belongs to: its partition key.
            pub fn customer_id(&self) -> Uuid {
                match self { $(DomainEvent::$name(e) => e.customer_id,)+ }
            }

            /// The event's fields as the envelope's `data`.
            pub fn to_data(&self) -> serde_json::Value {
                match self { $(DomainEvent::$name(e) => to_value(e),)+ }
            }

            /// The schema of each event type's `data` at its current version, with the schemas
            /// it refers to.
            pub fn data_schemas() -> Vec<crate::contract::DataSchema> {
                vec![$(
                    {
                        let mut refs = Vec::new();
                        <$name as utoipa::ToSchema>::schemas(&mut refs);
                        crate::contract::DataSchema {
                            event_type: stringify!($name),
                            schema_version: $version,
                            aggregate_type: AggregateType::$aggregate,
                            schema: <$name as utoipa::PartialSchema>::schema(),
                            refs,
                        }
                    },
                )+]
            }

            /// Decodes the envelope's `data` according to its event type and schema version,
            /// upcasting older schema versions to the current one.
            pub fn from_envelope(envelope: &EventEnvelope) -> Result<Self, DecodeError> {
                let version = envelope.schema_version;
                match envelope.event_type.as_str() {
                    $(stringify!($name) => {
                        supported(&envelope.event_type, version, $version)?;
                        from_value(&envelope.data).map(DomainEvent::$name)
                    })+
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }
    };
}

domain_events! {
    CustomerRegistered { aggregate: Customer, id: customer_id, version: 1 },
    CustomerRenamed { aggregate: Customer, id: customer_id, version: 1 },
    CustomerEmailChanged { aggregate: Customer, id: customer_id, version: 1 },
    OrderPlaced { aggregate: Order, id: order_id, version: 1 },
    OrderItemAdded { aggregate: Order, id: order_id, version: 1 },
    OrderItemRemoved { aggregate: Order, id: order_id, version: 1 },
    OrderConfirmed { aggregate: Order, id: order_id, version: 1 },
    OrderShipped { aggregate: Order, id: order_id, version: 1 },
    OrderDelivered { aggregate: Order, id: order_id, version: 1 },
    OrderCancelled { aggregate: Order, id: order_id, version: 1 },
}

/// Refuses versions newer than `current` and versions below 1 (which were never written).
fn supported(event_type: &str, version: u32, current: u32) -> Result<(), DecodeError> {
    if version > current {
        return Err(DecodeError::NewerSchemaVersion {
            event_type: event_type.to_owned(),
            version,
            supported: current,
        });
    }
    if version == 0 {
        return Err(DecodeError::Malformed(format!(
            "{event_type} has schema version 0; versions start at 1"
        )));
    }
    Ok(())
}

fn from_value<T: DeserializeOwned>(data: &serde_json::Value) -> Result<T, DecodeError> {
    T::deserialize(data).map_err(|e| DecodeError::Malformed(format!("data: {e}")))
}

fn to_value<T: Serialize>(event: &T) -> serde_json::Value {
    serde_json::to_value(event).expect("events hold only JSON-representable values")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderLine, OrderStatus, ShippingAddress};
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;
    use uuid::Uuid;

    fn line() -> impl Strategy<Value = OrderLine> {
        (
            "[A-Z0-9-]{1,12}",
            "\\PC{1,40}",
            1..=10_000u32,
            0..=1_000_000i64,
        )
            .prop_map(|(sku, name, quantity, unit_price_cents)| OrderLine {
                sku,
                name,
                quantity,
                unit_price_cents,
            })
    }

    fn address() -> impl Strategy<Value = ShippingAddress> {
        (
            "\\PC{1,20}",
            "\\PC{1,40}",
            "\\PC{1,20}",
            "[0-9]{5}",
            "[A-Z]{2}",
        )
            .prop_map(
                |(name, street, city, postal_code, country)| ShippingAddress {
                    name,
                    street,
                    city,
                    postal_code,
                    country,
                },
            )
    }

    fn order_placed() -> impl Strategy<Value = OrderPlaced> {
        (
            any::<u128>(),
            any::<u128>(),
            "[A-Z]{3}",
            prop::collection::vec(line(), 0..5),
            prop::option::of(address()),
            0..4_000_000_000i64,
        )
            .prop_map(
                |(order, customer, currency, items, shipping_address, secs)| OrderPlaced {
                    order_id: Uuid::from_u128(order),
                    customer_id: Uuid::from_u128(customer),
                    currency,
                    item_count: items.iter().map(|l| u64::from(l.quantity)).sum(),
                    total_cents: items.iter().map(OrderLine::line_total_cents).sum(),
                    items,
                    shipping_address,
                    placed_at: DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default(),
                },
            )
    }

    /// Any event of any type, with arbitrary field values.
    fn any_event() -> impl Strategy<Value = DomainEvent> {
        let ids = (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (Uuid::from_u128(a), Uuid::from_u128(b)));
        let text = "\\PC{1,30}";
        let totals = (0..1_000_000u64, 0..i64::MAX / 4, "[A-Z]{3}");
        prop_oneof![
            order_placed().prop_map(DomainEvent::OrderPlaced),
            (ids.clone(), text, "[a-z]{1,10}@[a-z]{1,10}\\.com").prop_map(
                |((customer_id, _), name, email)| {
                    DomainEvent::CustomerRegistered(CustomerRegistered {
                        customer_id,
                        name,
                        email,
                    })
                }
            ),
            (ids.clone(), text).prop_map(|((customer_id, _), name)| DomainEvent::CustomerRenamed(
                CustomerRenamed { customer_id, name }
            )),
            (ids.clone(), text).prop_map(|((customer_id, _), email)| {
                DomainEvent::CustomerEmailChanged(CustomerEmailChanged { customer_id, email })
            }),
            (ids.clone(), line(), 1..100u32, totals.clone()).prop_map(
                |(
                    (order_id, customer_id),
                    line,
                    quantity_added,
                    (item_count, total_cents, currency),
                )| {
                    DomainEvent::OrderItemAdded(OrderItemAdded {
                        order_id,
                        customer_id,
                        line,
                        quantity_added,
                        item_count,
                        total_cents,
                        currency,
                    })
                }
            ),
            (ids.clone(), line(), totals.clone()).prop_map(
                |((order_id, customer_id), line, (item_count, total_cents, currency))| {
                    DomainEvent::OrderItemRemoved(OrderItemRemoved {
                        order_id,
                        customer_id,
                        line,
                        item_count,
                        total_cents,
                        currency,
                    })
                }
            ),
            (ids.clone(), totals.clone()).prop_map(
                |((order_id, customer_id), (item_count, total_cents, currency))| {
                    DomainEvent::OrderConfirmed(OrderConfirmed {
                        order_id,
                        customer_id,
                        item_count,
                        total_cents,
                        currency,
                    })
                }
            ),
            (ids.clone(), text, text).prop_map(
                |((order_id, customer_id), carrier, tracking_number)| {
                    DomainEvent::OrderShipped(OrderShipped {
                        order_id,
                        customer_id,
                        carrier,
                        tracking_number,
                    })
                }
            ),
            ids.clone()
                .prop_map(
                    |(order_id, customer_id)| DomainEvent::OrderDelivered(OrderDelivered {
                        order_id,
                        customer_id
                    })
                ),
            (
                ids,
                text,
                prop_oneof![Just(OrderStatus::Pending), Just(OrderStatus::Confirmed)],
                totals
            )
                .prop_map(
                    |(
                        (order_id, customer_id),
                        reason,
                        previous,
                        (item_count, total_cents, currency),
                    )| {
                        DomainEvent::OrderCancelled(OrderCancelled {
                            order_id,
                            customer_id,
                            reason,
                            previous_status: previous,
                            item_count,
                            total_cents,
                            currency,
                        })
                    }
                ),
        ]
    }

    fn envelope(event: &DomainEvent) -> EventEnvelope {
        EventEnvelope::new(event, 1, Utc::now()).caused_by("req-1", "req-1")
    }

    proptest! {
        #[test]
        fn events_survive_the_wire(event in any_event()) {
            let sent = envelope(&event);
            let received = EventEnvelope::from_slice(&sent.to_vec()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&received, &sent);
            prop_assert_eq!(DomainEvent::from_envelope(&received), Ok(event));
        }

        #[test]
        fn arbitrary_bytes_are_a_typed_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(envelope) = EventEnvelope::from_slice(&bytes) {
                let _ = DomainEvent::from_envelope(&envelope);
            }
        }
    }

    fn placed_envelope() -> EventEnvelope {
        let placed = OrderPlaced {
            order_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            currency: "EUR".into(),
            items: vec![],
            item_count: 0,
            total_cents: 0,
            shipping_address: None,
            placed_at: Utc::now(),
        };
        envelope(&DomainEvent::OrderPlaced(placed))
    }

    #[test]
    fn unknown_types_and_newer_versions_are_skippable() {
        let mut unknown = placed_envelope();
        unknown.event_type = "OrderTeleported".into();
        let err = DomainEvent::from_envelope(&unknown).unwrap_err();
        assert_eq!(err, DecodeError::UnknownType("OrderTeleported".into()));
        assert!(err.is_from_newer_producer());

        let mut newer = placed_envelope();
        newer.schema_version = 2;
        let err = DomainEvent::from_envelope(&newer).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::NewerSchemaVersion {
                version: 2,
                supported: 1,
                ..
            }
        ));
        assert!(err.is_from_newer_producer());
    }

    #[test]
    fn missing_fields_are_malformed_not_skippable() {
        let mut broken = placed_envelope();
        broken.data = serde_json::json!({ "order_id": Uuid::now_v7() });
        let err = DomainEvent::from_envelope(&broken).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Malformed(msg) if msg.contains("missing field")),
            "{err}"
        );
        assert!(!err.is_from_newer_producer());

        let err = EventEnvelope::from_slice(b"{\"event_id\": 3}").unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(_)));
    }
}
