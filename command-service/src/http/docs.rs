//! What several operations of the OpenAPI document share, declared once: the headers every
//! command reads, the answers of an accepted command, and the problems a command can meet.
//! The operations list these types in their `#[utoipa::path]` instead of repeating them.

use platform::openapi::ProblemSchema;
use utoipa::{IntoParams, IntoResponses};

use super::request::{CustomerAccepted, OrderAccepted};

/// The request headers every command reads.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CommandHeaders {
    /// 1–255 visible ASCII characters (a UUID per logical request). Retrying with the same key and request returns the first response.
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
    /// The ETag (version) the aggregate must be at: `"<version>"`, a comma-separated list of them, or `*`.
    #[param(
        rename = "If-Match",
        pattern = r#"^[ \t]*(\*|"\+?0*[1-9][0-9]{0,17}"([ \t]*,[ \t]*"\+?0*[1-9][0-9]{0,17}")*)[ \t]*$"#
    )]
    pub if_match: Option<String>,
    /// W3C trace context; its trace id becomes the events' correlation id.
    #[param(rename = "traceparent")]
    pub traceparent: Option<String>,
    /// Echoed; becomes the events' causation id.
    #[param(rename = "X-Request-Id")]
    pub request_id: Option<String>,
}

/// The order a path names.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrderPath {
    /// Order id (UUID)
    #[param(format = Uuid)]
    pub id: String,
}

/// The customer a path names.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CustomerPath {
    /// Customer id (UUID)
    #[param(format = Uuid)]
    pub id: String,
}

/// The line a path names, by its SKU.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SkuPath {
    /// The line's SKU
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
}

/// The page of a history to return.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryPage {
    /// Only events after this version (default 0: from the first).
    #[param(minimum = 0)]
    pub after_version: Option<i64>,
    /// At most this many events, 1–1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A command on an existing order was accepted.
#[derive(Debug, IntoResponses)]
#[response(
    status = 200,
    description = "Accepted",
    headers(
        ("ETag" = String, description = "\"<version>\""),
        ("X-Consistency-Token" = String, description = "Send it to the query service to read this write.")
    )
)]
pub struct OrderChanged(pub OrderAccepted);

/// A command on an existing customer was accepted.
#[derive(Debug, IntoResponses)]
#[response(
    status = 200,
    description = "Accepted",
    headers(
        ("ETag" = String, description = "\"<version>\""),
        ("X-Consistency-Token" = String, description = "Send it to the query service to read this write.")
    )
)]
pub struct CustomerChanged(pub CustomerAccepted);

/// What a command with a JSON body can be refused for before it runs.
#[derive(Debug, IntoResponses)]
pub enum BodyRefused {
    /// The body is not valid JSON (or nests too deeply), or If-Match or Idempotency-Key is malformed
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(ProblemSchema),
    /// Fields are invalid (`errors` names each one), or the Idempotency-Key was used with a different request
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(ProblemSchema),
}

/// What a command without a body can be refused for before it runs.
#[derive(Debug, IntoResponses)]
pub enum HeadersRefused {
    /// If-Match or Idempotency-Key is malformed
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(ProblemSchema),
    /// The Idempotency-Key was used with a different request
    #[response(status = 422, content_type = "application/problem+json")]
    KeyReused(ProblemSchema),
}

/// What a command on an existing order can be refused for.
#[derive(Debug, IntoResponses)]
pub enum OrderRefused {
    /// No such order
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemSchema),
    /// A rule forbids it (`rule`, `current_status`), or the same Idempotency-Key is still running
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemSchema),
    /// If-Match names another version (`current_version`)
    #[response(status = 412, content_type = "application/problem+json")]
    VersionMismatch(ProblemSchema),
}

/// What a command on an existing customer can be refused for.
#[derive(Debug, IntoResponses)]
pub enum CustomerRefused {
    /// No such customer
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemSchema),
    /// The email address is taken, or the same Idempotency-Key is still running
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemSchema),
    /// If-Match names another version (`current_version`)
    #[response(status = 412, content_type = "application/problem+json")]
    VersionMismatch(ProblemSchema),
}

/// The field schemas of the request bodies whose bounds are the domain's: each is built from
/// the domain type's own limits and pattern (`#[schema(schema_with = ...)]`), so the document
/// cannot drift from what the parsers accept.
pub mod fields {
    use serde_json::json;
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaFormat, Type};

    use utoipa::openapi::schema::{ArrayBuilder, SchemaType};
    use utoipa::openapi::{KnownFormat, Ref};

    use crate::domain::order::{Lines, MAX_REASON_CHARS, Shipment};
    use crate::domain::values::{
        EmailAddress, ISO_4217, PersonName, ProductName, Quantity, STREET_PATTERN, ShippingAddress,
        Sku, TEXT_PATTERN, UnitPrice,
    };

    /// What bounded text also requires, after its length.
    const RULES: &str = "not blank, no control characters (surrounding space is trimmed).";

    /// Text of 1 to `max` characters as the domain's `bounded_text` accepts it.
    fn text(max: usize, description: String) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(TEXT_PATTERN))
    }

    /// `builder` with an example value (the `example` keyword the derived schemas use).
    #[allow(deprecated)]
    fn example(builder: ObjectBuilder, value: &str) -> Object {
        builder.example(Some(json!(value))).build()
    }

    fn person_name() -> ObjectBuilder {
        let max = PersonName::MAX_CHARS;
        let rules = RULES.replace("is trimmed", "is\ntrimmed");
        text(max, format!("Full name, 1–{max} characters, {rules}"))
    }

    /// A customer's name when they register.
    pub fn registered_name() -> Object {
        example(person_name(), "Ada Lovelace")
    }

    /// A customer's new name.
    pub fn new_name() -> Object {
        person_name().build()
    }

    fn email() -> ObjectBuilder {
        let max = EmailAddress::MAX_LEN;
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .description(Some(format!(
                "Unique across customers (case-insensitively), at most {max} characters."
            )))
            .max_length(Some(max))
    }

    /// A customer's email address when they register.
    pub fn registered_email() -> Object {
        example(email(), "ada@example.com")
    }

    /// A customer's new email address.
    pub fn new_email() -> Object {
        email().build()
    }

    /// A line's product name.
    pub fn product_name() -> Object {
        let max = ProductName::MAX_CHARS;
        example(text(max, format!("1–{max} characters, {RULES}")), "Widget")
    }

    /// The recipient of a shipping address.
    pub fn recipient() -> Object {
        let max = ShippingAddress::NAME_MAX_CHARS;
        let rules = RULES.replace("is trimmed", "is\ntrimmed");
        text(max, format!("Recipient, 1–{max} characters, {rules}")).build()
    }

    /// The street lines of a shipping address.
    pub fn street() -> Object {
        let max = ShippingAddress::STREET_MAX_CHARS;
        let description = format!(
            "Street lines separated by newlines, 1–{max} characters; each line non-blank, no \
             other control\ncharacters."
        );
        text(max, description).pattern(Some(STREET_PATTERN)).build()
    }

    /// The city of a shipping address.
    pub fn city() -> Object {
        let max = ShippingAddress::CITY_MAX_CHARS;
        text(max, format!("1–{max} characters, {RULES}")).build()
    }

    /// The postal code of a shipping address.
    pub fn postal_code() -> Object {
        let max = ShippingAddress::POSTAL_CODE_MAX_CHARS;
        text(max, format!("1–{max} characters, {RULES}")).build()
    }

    /// A carrier's name or a tracking number.
    pub fn shipment_text() -> Object {
        let max = Shipment::MAX_CHARS;
        text(max, format!("1–{max} characters, {RULES}")).build()
    }

    /// An order's currency: one of the codes `Currency::parse` accepts, or `null`.
    pub fn currency() -> Object {
        let codes = ISO_4217.iter().map(|code| serde_json::Value::from(*code));
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .enum_values(Some(codes.chain([serde_json::Value::Null])))
            .description(Some(
                "ISO 4217 code in active use (case-insensitive); default `EUR`.",
            ))
            .examples([json!("EUR")])
            .build()
    }

    /// The lines of a new order.
    pub fn lines() -> utoipa::openapi::schema::Array {
        let max = Lines::MAX;
        ArrayBuilder::new()
            .items(Ref::from_schema_name("ItemRequest"))
            .max_items(Some(max))
            .description(Some(format!("At most {max} lines, each SKU once.")))
            .build()
    }

    /// A line's SKU.
    pub fn sku() -> Object {
        let max = Sku::MAX_LEN;
        let builder = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!("1–{max} of `A–Z a–z 0–9 . _ -`.")))
            .pattern(Some(format!("^[A-Za-z0-9._-]{{1,{max}}}$")));
        example(builder, "A-1")
    }

    /// A line's quantity.
    pub fn quantity() -> Object {
        let max = Quantity::MAX;
        let grouped = format!("{} {:03}", max / 1000, max % 1000);
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .description(Some(format!("1–{grouped}.")))
            .minimum(Some(1))
            .maximum(Some(max))
            .build()
    }

    /// A line's unit price.
    pub fn unit_price() -> Object {
        let max = UnitPrice::MAX_CENTS;
        let superscript = |digit: char| "⁰¹²³⁴⁵⁶⁷⁸⁹".chars().nth(digit as usize - '0' as usize);
        let exponent: String = max
            .ilog10()
            .to_string()
            .chars()
            .filter_map(superscript)
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .description(Some(format!(
                "Price of one unit in minor units, 0–10{exponent}."
            )))
            .minimum(Some(0))
            .maximum(Some(max))
            .build()
    }

    /// The reason for a cancellation.
    pub fn reason() -> Object {
        let max = MAX_REASON_CHARS;
        text(max, format!("1–{max} characters, {RULES}")).build()
    }
}
