//! The event contract of the order platform.
//!
//! Everything that crosses the Kafka topic is defined here: the [`EventEnvelope`] every message
//! carries, the domain events inside it ([`DomainEvent`]), the Kafka headers that repeat the
//! envelope's routing facts, and the [`ConsistencyToken`] that lets a client of the command
//! service ask the query service to wait for its write. Both services compile against this crate;
//! consumers in other languages read the same JSON.
//!
//! Compatibility rule: a field may be added to an event only as optional (absent means the
//! documented default). Anything else — a removed or renamed field, a changed type or meaning —
//! needs a new schema version of that event and an upcaster from the old one in [`decode`].

mod consistency;
pub mod contract;
pub mod customer;
mod decode;
mod envelope;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures;
pub mod order;

pub use consistency::{ConsistencyToken, InvalidConsistencyToken};
pub use decode::{DecodeError, DomainEvent};
pub use envelope::{AggregateType, EventEnvelope, headers};
