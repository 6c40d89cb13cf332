//! The envelope every event travels in, on the topic and in the command side's event log.
//!
//! The envelope is what a consumer can rely on without understanding the event itself: identity,
//! ordering, routing and tracing. The event's own fields live in `data` and are typed by
//! [`crate::DomainEvent`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DecodeError, DomainEvent};

/// The kinds of aggregates that emit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AggregateType {
    /// An order: its lines, lifecycle and shipping.
    Order,
    /// A customer: name and email.
    Customer,
}

impl AggregateType {
    /// The stable name used in the envelope and in the event log (`"order"`, `"customer"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateType::Order => "order",
            AggregateType::Customer => "customer",
        }
    }
}

impl std::str::FromStr for AggregateType {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "order" => Ok(AggregateType::Order),
            "customer" => Ok(AggregateType::Customer),
            other => Err(DecodeError::Malformed(format!(
                "unknown aggregate type {other:?}"
            ))),
        }
    }
}

/// One event as published on the topic: a JSON object with these fields.
///
/// Kafka message key: `partition_key` (the customer id), so every event of one customer, and so
/// of each of their orders, lands in one partition in the order it was committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventEnvelope {
    /// Unique id of this event (UUIDv7, so ids sort roughly by creation time). Consumers use it
    /// to recognise a redelivered event.
    pub event_id: Uuid,
    /// Stable name of the event, e.g. `"OrderPlaced"`; selects the schema of `data`.
    pub event_type: String,
    /// Version of the schema of `data` for this `event_type`, starting at 1.
    pub schema_version: u32,
    /// Which kind of aggregate emitted the event.
    pub aggregate_type: AggregateType,
    /// Id of the aggregate (order id or customer id) that emitted the event.
    pub aggregate_id: Uuid,
    /// The aggregate's version after this event: 1 for its first event, then +1 per event with
    /// no gaps. Consumers apply version `n` only after `n - 1` and ignore versions they have seen.
    pub aggregate_version: i64,
    /// The Kafka key the event is published under: the customer id as a string.
    pub partition_key: String,
    /// When the command that produced the event was accepted (UTC).
    pub occurred_at: DateTime<Utc>,
    /// Id shared by everything one user action caused (from `X-Request-Id` or `traceparent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Id of the command (or event) that directly caused this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The event's own fields; their schema is given by `event_type` and `schema_version`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl EventEnvelope {
    /// The envelope of `event` as version `aggregate_version` of its aggregate, happened at
    /// `occurred_at`: a new time-ordered event id, the aggregate and partition key (the customer)
    /// the event names, and no correlation until [`EventEnvelope::caused_by`] adds it.
    pub fn new(event: &DomainEvent, aggregate_version: i64, occurred_at: DateTime<Utc>) -> Self {
        EventEnvelope {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            aggregate_type: event.aggregate_type(),
            aggregate_id: event.aggregate_id(),
            aggregate_version,
            partition_key: event.customer_id().to_string(),
            occurred_at,
            correlation_id: None,
            causation_id: None,
            data: event.to_data(),
        }
    }

    /// The envelope with the ids of the user action and the command that caused it.
    pub fn caused_by(self, correlation_id: &str, causation_id: &str) -> Self {
        EventEnvelope {
            correlation_id: Some(correlation_id.to_owned()),
            causation_id: Some(causation_id.to_owned()),
            ..self
        }
    }

    /// Parses an envelope from a message payload. Fails with [`DecodeError::Malformed`] on
    /// anything that is not a complete envelope; never panics, whatever the bytes.
    pub fn from_slice(payload: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(payload).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// The JSON payload as published.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope holds only JSON-representable values")
    }
}

/// Names of the Kafka headers the relay sets on every message. They repeat envelope fields so
/// that consumers can route or skip a message without parsing its payload.
pub mod headers {
    /// The envelope's `event_type`.
    pub const EVENT_TYPE: &str = "event-type";
    /// The envelope's `schema_version`, as decimal digits.
    pub const SCHEMA_VERSION: &str = "schema-version";
    /// The envelope's `event_id`.
    pub const EVENT_ID: &str = "event-id";
    /// The envelope's `correlation_id`, when there is one.
    pub const CORRELATION_ID: &str = "correlation-id";
    /// The W3C trace context of the request that caused the event, when there was one.
    pub const TRACEPARENT: &str = "traceparent";
    /// Always `application/json`.
    pub const CONTENT_TYPE: &str = "content-type";
}

/// A row of the event log as the envelope the relay publishes; a stored value no envelope can
/// hold (an unknown aggregate type, a negative schema version) is a column decode error.
#[cfg(feature = "sqlx")]
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for EventEnvelope {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        let invalid = |column: &str, source: Box<dyn std::error::Error + Send + Sync>| {
            sqlx::Error::ColumnDecode {
                index: column.to_owned(),
                source,
            }
        };
        let schema_version: i32 = row.try_get("schema_version")?;
        let aggregate_type: String = row.try_get("aggregate_type")?;
        Ok(EventEnvelope {
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            schema_version: u32::try_from(schema_version)
                .map_err(|e| invalid("schema_version", e.into()))?,
            aggregate_type: aggregate_type
                .parse()
                .map_err(|e: DecodeError| invalid("aggregate_type", e.into()))?,
            aggregate_id: row.try_get("aggregate_id")?,
            aggregate_version: row.try_get("aggregate_version")?,
            partition_key: row.try_get("partition_key")?,
            occurred_at: row.try_get("occurred_at")?,
            correlation_id: row.try_get("correlation_id")?,
            causation_id: row.try_get("causation_id")?,
            data: row.try_get("data")?,
        })
    }
}
