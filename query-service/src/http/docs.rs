//! What several operations of the OpenAPI document share, declared once: the headers every
//! view reads, the paging and status parameters of the lists, and the answers every view can
//! give besides its document. The operations list these types in their `#[utoipa::path]`.

use platform::openapi::ProblemSchema;
use utoipa::{IntoParams, IntoResponses};

/// The request headers every view reads.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ViewHeaders {
    /// From a command response: wait until the views include that write.
    #[param(
        rename = "X-Consistency-Token",
        pattern = r"^ct1\.([0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\.[1-9][0-9]{0,17}$"
    )]
    pub consistency_token: Option<String>,
    /// An ETag of this view: 304 if it is unchanged.
    #[param(rename = "If-None-Match")]
    pub if_none_match: Option<String>,
}

/// The order a path names.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrderPath {
    /// Order id
    #[param(format = Uuid)]
    pub id: String,
}

/// The customer a path names.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CustomerPath {
    /// Customer id
    #[param(format = Uuid)]
    pub id: String,
}

/// Where a page of a list starts and how long it is.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1–100, default 20
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page
    #[param(pattern = r"^(k1\.-?[0-9]{1,16}\.[0-9A-Fa-f]{32})?$")]
    pub cursor: Option<String>,
}

/// The order-status filter of the order lists.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusFilter {
    /// pending, confirmed, shipped, delivered or cancelled
    #[param(pattern = "^(pending|confirmed|shipped|delivered|cancelled)?$")]
    pub status: Option<String>,
}

/// What every view can answer besides its document.
#[derive(Debug, IntoResponses)]
pub enum ViewAnswers {
    /// Unchanged since the ETag in If-None-Match
    #[response(status = 304)]
    NotModified,
    /// X-Consistency-Token is malformed
    #[response(status = 400, content_type = "application/problem+json")]
    MalformedToken(ProblemSchema),
    /// A parameter is invalid
    #[response(status = 422, content_type = "application/problem+json")]
    InvalidParameter(ProblemSchema),
    /// The views did not catch up with the token in time (Retry-After)
    #[response(status = 503, content_type = "application/problem+json")]
    NotYetConsistent(ProblemSchema),
}

/// How a browser's `EventSource`, which cannot send `Authorization`, opens a live stream.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamTicketParam {
    /// A stream ticket, instead of Authorization
    pub ticket: Option<String>,
}

/// A client holds as many live streams as it may.
#[derive(Debug, IntoResponses)]
#[response(
    status = 429,
    description = "This client has STREAMS_PER_CLIENT streams open here",
    content_type = "application/problem+json"
)]
pub struct TooManyStreams(pub ProblemSchema);
