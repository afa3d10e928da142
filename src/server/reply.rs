//! The answers the server's own endpoints write.

use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};

/// A response of the server's own endpoints.
pub(crate) type Reply = Response<Body>;

/// `body` with `status` and `content_type`, never cached.
pub(crate) fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Reply {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON document with `status`.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Reply {
    with_type(status, "application/json", body.to_string())
}

/// `{"error": code, "message": message}` with `status`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    json(
        status,
        &serde_json::json!({ "error": code, "message": message }),
    )
}

/// A request body or field that cannot be used: answered 400
/// `invalid_request` with the message.
#[derive(Debug)]
pub(crate) struct BadRequest(pub(crate) String);

impl From<BadRequest> for Reply {
    fn from(bad: BadRequest) -> Self {
        invalid_request(&bad.0)
    }
}

/// A 400 for a request body or field that cannot be used.
pub(crate) fn invalid_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// The `http` answer of the edge, as a reply.
pub(crate) fn from_edge(response: Response<bytes::Bytes>) -> Reply {
    response.map(Body::from)
}

/// The JSON document in `body`, or why not.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, BadRequest> {
    serde_json::from_slice(body).map_err(|error| BadRequest(error.to_string()))
}
