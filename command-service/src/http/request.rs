//! What every command request carries besides its body: correlation and trace context,
//! `If-Match` preconditions and an `Idempotency-Key`; and how an accepted command is answered.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{SubsecRound, Utc};
use platform::auth::Caller;
use platform::http::{REQUEST_ID, trace_id};
use platform::problem::Problem;
use serde::de::DeserializeOwned;
use shared_events::{AggregateType, ConsistencyToken};

use super::AppState;
use crate::commands::{Accepted, Command, CommandContext, CommandRequest, IdempotencyKey, Outcome};
use crate::store::idempotency::Recorded;

use platform::http::TRACEPARENT;
pub use platform::http::{CONSISTENCY_TOKEN, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};

/// A command request before its body is parsed.
#[derive(Debug)]
pub struct CommandInput {
    ctx: CommandContext,
    expected_versions: Option<Vec<i64>>,
    idempotency_key: Option<String>,
    fingerprint_head: String,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for CommandInput {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        // Preconditions and keys that are present but unreadable must be refused, not ignored:
        // reading them lossily makes their parsers answer 400.
        let present = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let if_match = present(header::IF_MATCH.as_str());
        let expected_versions = if_match
            .as_deref()
            .map(parse_if_match)
            .transpose()
            .map_err(IntoResponse::into_response)?
            .flatten();
        let idempotency_key = present(IDEMPOTENCY_KEY.as_str())
            .as_deref()
            .map(parse_idempotency_key)
            .transpose()
            .map_err(IntoResponse::into_response)?;
        let fingerprint_head = format!(
            "{} {}\n{}\n",
            req.method(),
            req.uri().path(),
            if_match.unwrap_or_default()
        );
        // The edge authenticated the caller (or, with authentication off, made everyone admin).
        let caller = req
            .extensions()
            .get::<Caller>()
            .copied()
            .ok_or_else(|| Problem::internal().into_response())?;
        // The edge sets a request id when the caller did not send one.
        let request_id = header(REQUEST_ID.as_str()).unwrap_or_default().to_owned();
        let traceparent = header(TRACEPARENT.as_str())
            .filter(|t| trace_id(t).is_some())
            .map(str::to_owned);
        let ctx = CommandContext {
            correlation_id: traceparent
                .as_deref()
                .and_then(trace_id)
                .map_or_else(|| request_id.clone(), str::to_owned),
            causation_id: request_id,
            traceparent,
            // PostgreSQL keeps microseconds; events and stored state must carry the same instant.
            now: Utc::now().trunc_subsecs(6),
            caller,
        };
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(CommandInput {
            ctx,
            expected_versions,
            idempotency_key,
            fingerprint_head,
            headers,
            body,
        })
    }
}

impl CommandInput {
    /// The body as JSON of type `T`, or the problem describing what is wrong with it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        platform::http::parse_json(&self.headers, &self.body)
    }

    fn into_request(self, command: Command) -> CommandRequest {
        let caller = self.ctx.caller;
        let idempotency = self.idempotency_key.map(|key| {
            // Keys are the caller's own: another caller's identical key is another key. The
            // scope never looks like a customer id for an admin, so no key an admin chooses
            // can name a customer's record.
            let key = match caller {
                Caller::Admin => format!("admin/{key}"),
                Caller::Customer(id) => format!("{id}/{key}"),
            };
            let mut fingerprint = self.fingerprint_head.into_bytes();
            fingerprint.extend_from_slice(&self.body);
            IdempotencyKey { key, fingerprint }
        });
        CommandRequest {
            command,
            expected_versions: self.expected_versions,
            ctx: self.ctx,
            idempotency,
        }
    }
}

/// The body of an accepted order command.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrderAccepted {
    /// The order.
    pub order_id: uuid::Uuid,
    /// Its version after the command; also the `ETag`.
    pub version: i64,
}

/// The body of an accepted customer command.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CustomerAccepted {
    /// The customer.
    pub customer_id: uuid::Uuid,
    /// Their version after the command; also the `ETag`.
    pub version: i64,
}

/// How an accepted command is answered.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// 201 with `Location: /{collection}/{id}` for a new aggregate of this type.
    Created(AggregateType),
    /// 200: an aggregate of this type changed.
    Changed(AggregateType),
}

/// Runs `command` and answers `{"<aggregate>_id": id, "version": n}` with `ETag: "n"` and the
/// consistency token, or the problem that refused it.
///
/// The command runs on a task of its own, so it reaches its commit or rollback even when the
/// client goes away or the request times out: dropping this future only drops the answer. A
/// retry with the same `Idempotency-Key` then gets the recorded outcome.
pub async fn run(
    state: &AppState,
    input: CommandInput,
    command: Command,
    answer: Answer,
) -> Response {
    let request = input.into_request(command);
    let commands = state.commands.clone();
    let running = tokio::spawn(async move {
        commands
            .execute(request, |accepted| render(answer, accepted))
            .await
    });
    let Ok(outcome) = running.await else {
        tracing::error!("a command's task panicked");
        return Problem::internal().into_response();
    };
    match outcome {
        Ok(Outcome::Executed(recorded)) => respond(recorded),
        Ok(Outcome::Replayed(recorded)) => {
            let mut response = respond(recorded);
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            response
        }
        Err(error) => error.into_response(),
    }
}

fn render(answer: Answer, accepted: &Accepted) -> Recorded {
    let (status, aggregate) = match answer {
        Answer::Created(aggregate) => (StatusCode::CREATED, aggregate),
        Answer::Changed(aggregate) => (StatusCode::OK, aggregate),
    };
    let (body, collection) = match aggregate {
        AggregateType::Customer => {
            let body = CustomerAccepted {
                customer_id: accepted.aggregate_id,
                version: accepted.version,
            };
            (serde_json::to_vec(&body), "/customers")
        }
        AggregateType::Order => {
            let body = OrderAccepted {
                order_id: accepted.aggregate_id,
                version: accepted.version,
            };
            (serde_json::to_vec(&body), "/orders")
        }
    };
    let location = matches!(answer, Answer::Created(_))
        .then(|| format!("{collection}/{}", accepted.aggregate_id));
    let token = ConsistencyToken {
        aggregate_id: accepted.aggregate_id,
        version: accepted.version,
    };
    let mut headers = vec![
        (
            header::CONTENT_TYPE.to_string(),
            "application/json".to_owned(),
        ),
        (
            header::ETAG.to_string(),
            format!("\"{}\"", accepted.version),
        ),
        (CONSISTENCY_TOKEN.to_string(), token.to_string()),
    ];
    if let Some(location) = location {
        headers.push((header::LOCATION.to_string(), location));
    }
    Recorded {
        status: status.as_u16(),
        headers,
        body: body.unwrap_or_default(),
    }
}

fn respond(recorded: Recorded) -> Response {
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK);
    let mut response = (status, recorded.body).into_response();
    for (name, value) in recorded.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// `If-Match`: `*` (any version, `None`) or a list of strong ETags `"<version>"`.
fn parse_if_match(raw: &str) -> Result<Option<Vec<i64>>, Problem> {
    if raw.trim() == "*" {
        return Ok(None);
    }
    raw.split(',')
        .map(|tag| {
            tag.trim()
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| *v >= 1)
        })
        .collect::<Option<Vec<i64>>>()
        .map(Some)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-if-match",
                "If-Match must be \"<version>\"",
            )
            .with_detail(format!(
                "Send the ETag of the version you expect, e.g. If-Match: \"3\"; got {raw:?}."
            ))
        })
}

/// An `Idempotency-Key`: 1–255 visible ASCII characters (a UUID is a good choice).
fn parse_idempotency_key(raw: &str) -> Result<String, Problem> {
    if (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(raw.to_owned())
    } else {
        Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-idempotency-key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
        .with_detail("A random UUID per logical request is a good key."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_strong_version_etags_or_a_star() {
        assert_eq!(parse_if_match("\"3\"").unwrap(), Some(vec![3]));
        assert_eq!(parse_if_match(" \"1\", \"2\" ").unwrap(), Some(vec![1, 2]));
        assert_eq!(parse_if_match("*").unwrap(), None);
        for bad in ["3", "W/\"3\"", "\"x\"", "\"0\"", ""] {
            assert!(parse_if_match(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(parse_idempotency_key("0190a3c6-f2c4-7c4a-8f3a-2b1c0d9e8f7a").is_ok());
        assert!(parse_idempotency_key("").is_err());
        assert!(parse_idempotency_key("has space").is_err());
        assert!(parse_idempotency_key(&"k".repeat(256)).is_err());
    }
}
