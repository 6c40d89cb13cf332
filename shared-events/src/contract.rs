//! The published contract, generated from the types above: a JSON Schema (draft 2020-12) per
//! event type and schema version, an AsyncAPI 3.0 document of the topic, and the rule that
//! decides whether a changed schema still accepts what the old one described.
//!
//! `tests/e2e/contracts.rs` keeps the committed copies under `contracts/` current and refuses an
//! incompatible change that did not bump the event's schema version.

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use crate::{AggregateType, DomainEvent, EventEnvelope, headers};

/// The schema of one event type's `data`.
#[derive(Debug, Clone)]
pub struct DataSchema {
    /// The event type.
    pub event_type: &'static str,
    /// The schema version this build writes.
    pub schema_version: u32,
    /// The kind of aggregate that emits it.
    pub aggregate_type: AggregateType,
    /// The schema of `data`.
    pub schema: RefOr<Schema>,
    /// Schemas it refers to, by name.
    pub refs: Vec<(String, RefOr<Schema>)>,
}

/// Rewrites OpenAPI component references into JSON Schema `$defs` references.
fn as_json_schema(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => (
                        k,
                        Value::String(r.replace("#/components/schemas/", "#/$defs/")),
                    ),
                    (_, v) => (k, as_json_schema(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(as_json_schema).collect()),
        other => other,
    }
}

/// A JSON Schema document for each event type's `data`: `(file name, schema)`, the file name
/// being `<EventType>.v<version>.json`.
pub fn event_schemas() -> Vec<(String, Value)> {
    DomainEvent::data_schemas()
        .into_iter()
        .map(|event| {
            let mut schema =
                as_json_schema(serde_json::to_value(&event.schema).unwrap_or_default());
            if let Value::Object(map) = &mut schema {
                map.insert(
                    "$schema".into(),
                    json!("https://json-schema.org/draft/2020-12/schema"),
                );
                map.insert(
                    "title".into(),
                    json!(format!(
                        "{} v{} data",
                        event.event_type, event.schema_version
                    )),
                );
                if !event.refs.is_empty() {
                    let defs: serde_json::Map<String, Value> = event
                        .refs
                        .iter()
                        .map(|(name, schema)| {
                            (
                                name.clone(),
                                as_json_schema(serde_json::to_value(schema).unwrap_or_default()),
                            )
                        })
                        .collect();
                    map.insert("$defs".into(), Value::Object(defs));
                }
            }
            (
                format!("{}.v{}.json", event.event_type, event.schema_version),
                schema,
            )
        })
        .collect()
}

/// The AsyncAPI 3.0 document of the event topic.
pub fn asyncapi() -> Value {
    let mut envelope_refs = Vec::new();
    <EventEnvelope as utoipa::ToSchema>::schemas(&mut envelope_refs);
    let mut schemas = serde_json::Map::new();
    schemas.insert(
        "EventEnvelope".into(),
        serde_json::to_value(<EventEnvelope as utoipa::PartialSchema>::schema())
            .unwrap_or_default(),
    );
    for (name, schema) in envelope_refs {
        schemas.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    let mut messages = serde_json::Map::new();
    for event in DomainEvent::data_schemas() {
        let name = event.event_type;
        schemas.insert(
            name.into(),
            serde_json::to_value(&event.schema).unwrap_or_default(),
        );
        for (referenced, schema) in &event.refs {
            schemas.insert(
                referenced.clone(),
                serde_json::to_value(schema).unwrap_or_default(),
            );
        }
        messages.insert(
            name.into(),
            json!({
                "name": name,
                "title": name,
                "summary": format!("Emitted by the {} aggregate; schema version {}.", event.aggregate_type.as_str(), event.schema_version),
                "contentType": "application/json",
                "headers": { "$ref": "#/components/schemas/MessageHeaders" },
                "payload": {
                    "allOf": [
                        { "$ref": "#/components/schemas/EventEnvelope" },
                        {
                            "type": "object",
                            "properties": {
                                "event_type": { "const": name },
                                "schema_version": { "const": event.schema_version },
                                "aggregate_type": { "const": event.aggregate_type.as_str() },
                                "data": { "$ref": format!("#/components/schemas/{name}") }
                            }
                        }
                    ]
                }
            }),
        );
    }
    schemas.insert(
        "MessageHeaders".into(),
        json!({
            "type": "object",
            "required": [headers::EVENT_TYPE, headers::SCHEMA_VERSION, headers::EVENT_ID, headers::CONTENT_TYPE],
            "properties": {
                headers::EVENT_TYPE: { "type": "string", "description": "The envelope's event_type." },
                headers::SCHEMA_VERSION: { "type": "string", "description": "The envelope's schema_version, as decimal digits." },
                headers::EVENT_ID: { "type": "string", "format": "uuid", "description": "The envelope's event_id." },
                headers::CORRELATION_ID: { "type": "string", "description": "The envelope's correlation_id, when there is one." },
                headers::TRACEPARENT: { "type": "string", "description": "W3C trace context of the request that caused the event." },
                headers::CONTENT_TYPE: { "const": "application/json" }
            }
        }),
    );
    let message_refs: Vec<Value> = messages
        .keys()
        .map(|name| json!({ "$ref": format!("#/channels/orderEvents/messages/{name}") }))
        .collect();
    let channel_messages: serde_json::Map<String, Value> = messages
        .keys()
        .map(|name| {
            (
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            )
        })
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Order platform events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Domain events of orders and customers. Kafka key: the customer id (also the envelope's \
                partition_key), so a customer's events and their orders' events are in one partition, in \
                commit order. Delivery is at least once: apply version n of an aggregate only after n - \
                1 and ignore versions already seen. Event types or schema versions you do not know come \
                from a newer producer: skip them. A field is only ever added as optional; any other \
                change is a new schema_version."
        },
        "defaultContentType": "application/json",
        "channels": {
            "orderEvents": {
                "address": "order-events",
                "description": "The event topic (KAFKA_TOPIC, default order-events).",
                "messages": channel_messages,
                "bindings": { "kafka": { "bindingVersion": "0.5.0" } }
            }
        },
        "operations": {
            "publishEvents": {
                "action": "send",
                "channel": { "$ref": "#/channels/orderEvents" },
                "summary": "The command service's relay publishes every committed event (acks=all, at least once: consumers drop duplicates by aggregate version).",
                "messages": message_refs.clone()
            },
            "projectEvents": {
                "action": "receive",
                "channel": { "$ref": "#/channels/orderEvents" },
                "summary": "The query service projects the events into its views (consumer group query-service).",
                "messages": message_refs,
                "bindings": { "kafka": { "groupId": { "type": "string", "enum": ["query-service"] }, "bindingVersion": "0.5.0" } }
            }
        },
        "components": {
            "messages": messages,
            "schemas": schemas,
            "messageBindings": {}
        }
    })
}

/// Why `new` does not accept everything `old` accepted: properties removed or retyped, or
/// properties newly required (recursively, through `$defs` of the same name). Empty when
/// compatible.
pub fn compatibility_problems(old: &Value, new: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    compare(old, new, "", &mut problems);
    if let (Some(Value::Object(old_defs)), Some(new_defs)) = (old.get("$defs"), new.get("$defs")) {
        for (name, old_def) in old_defs {
            match new_defs.get(name) {
                Some(new_def) => compare(old_def, new_def, &format!("$defs/{name}"), &mut problems),
                None => problems.push(format!("$defs/{name} was removed")),
            }
        }
    }
    problems
}

fn compare(old: &Value, new: &Value, at: &str, problems: &mut Vec<String>) {
    if old.get("type") != new.get("type") {
        problems.push(format!(
            "{at}: type changed from {} to {}",
            old["type"], new["type"]
        ));
    }
    if old.get("$ref") != new.get("$ref") {
        problems.push(format!(
            "{at}: reference changed from {} to {}",
            old["$ref"], new["$ref"]
        ));
    }
    let required = |schema: &Value| -> Vec<String> {
        schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let was_required = required(old);
    for field in required(new) {
        if !was_required.contains(&field) {
            problems.push(format!("{at}/{field}: newly required"));
        }
    }
    if let (Some(Value::Object(old_props)), new_props) =
        (old.get("properties"), new.get("properties"))
    {
        for (name, old_prop) in old_props {
            match new_props.and_then(|p| p.get(name)) {
                Some(new_prop) => compare(old_prop, new_prop, &format!("{at}/{name}"), problems),
                None => problems.push(format!("{at}/{name}: removed")),
            }
        }
    }
    if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
        compare(old_items, new_items, &format!("{at}[]"), problems);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_an_optional_field_is_compatible_and_everything_else_is_not() {
        let old = json!({ "type": "object", "required": ["a"], "properties": { "a": { "type": "string" }, "b": { "type": "integer" } } });
        let added = json!({ "type": "object", "required": ["a"], "properties": { "a": { "type": "string" }, "b": { "type": "integer" }, "c": { "type": "string" } } });
        assert!(compatibility_problems(&old, &added).is_empty());
        let removed = json!({ "type": "object", "required": ["a"], "properties": { "a": { "type": "string" } } });
        assert_eq!(compatibility_problems(&old, &removed), ["/b: removed"]);
        let retyped = json!({ "type": "object", "required": ["a"], "properties": { "a": { "type": "integer" }, "b": { "type": "integer" } } });
        assert_eq!(compatibility_problems(&old, &retyped).len(), 1);
        let required = json!({ "type": "object", "required": ["a", "b"], "properties": { "a": { "type": "string" }, "b": { "type": "integer" } } });
        assert_eq!(
            compatibility_problems(&old, &required),
            ["/b: newly required"]
        );
    }

    #[test]
    fn every_event_has_a_schema_document_naming_its_version() {
        let schemas = event_schemas();
        assert_eq!(schemas.len(), DomainEvent::TYPES.len());
        let (name, placed) = schemas
            .iter()
            .find(|(name, _)| name.starts_with("OrderPlaced."))
            .unwrap();
        assert_eq!(name, "OrderPlaced.v1.json");
        assert!(
            placed["required"]
                .as_array()
                .unwrap()
                .contains(&json!("items"))
        );
        assert!(placed["$defs"]["OrderLine"].is_object(), "{placed}");
        assert!(!placed.to_string().contains("#/components/"));
    }
}
