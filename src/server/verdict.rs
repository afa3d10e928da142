//! The forward-auth verdict: a gateway asks whether the request it holds
//! may pass, and with which identity.
//!
//! Each gateway says what the original request was in its own way:
//!
//! | endpoint | gateway | original method | original URI (path and query) |
//! |---|---|---|---|
//! | `/verify/nginx` | nginx `auth_request` | `X-Original-Method` | `X-Original-URI` |
//! | `/verify/forwarded` | Traefik `ForwardAuth`, Caddy `forward_auth` | `X-Forwarded-Method` | `X-Forwarded-Uri` |
//! | `/verify/envoy/<path>` | Envoy `ext_authz` (HTTP mode, `path_prefix: /verify/envoy`) | the request's | the path after the prefix, and the query |
//!
//! The original host is `X-Forwarded-Host` when the gateway sends it,
//! else `Host`. Each endpoint reads only its own gateway's headers, which
//! that gateway sets itself: a client's copies of another gateway's headers
//! are never read. Credentials (`Cookie`, `Authorization`) and browser
//! headers (`Origin`, `Sec-Fetch-Site`) are the forwarded request's.
//!
//! The answer is the edge's ([`SessionEdge`](tessera_http::SessionEdge)):
//! 200 with the signed identity headers of [`tessera_http::gateway`] for a
//! session (none for a guest on a public route), the renewed cookie
//! (`Set-Cookie`) or token (`x-session-token`) when the session rotated;
//! or the refusal — 401 with its challenge, 403, 303 to the sign-in page
//! for browser routes, 503 when revocation state cannot be trusted.
//! nginx's `auth_request` understands only 2xx, 401 and 403, so
//! `/verify/nginx` answers a redirect as 401 with its `Location`, which
//! the documented snippet turns back into the redirect.

use axum::extract::{Request, State as Extract};
use http::{HeaderMap, HeaderValue, StatusCode};
use tessera_application::Decision;
use tessera_http::{Forward, single_header};

use super::Shared;
use super::reply::{Reply, from_edge, invalid_request, with_type};

/// The gateway a verdict endpoint serves: where it reads the original
/// request from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gateway {
    /// nginx `auth_request`: `X-Original-Method`, `X-Original-URI`.
    Nginx,
    /// Traefik `ForwardAuth`, Caddy `forward_auth`: `X-Forwarded-Method`,
    /// `X-Forwarded-Uri`.
    Forwarded,
    /// Envoy `ext_authz` in HTTP mode: the original path appended to
    /// `/verify/envoy`, the original method.
    Envoy,
}

/// The prefix Envoy's `path_prefix` names.
const ENVOY_PREFIX: &str = "/verify/envoy";

/// The original request: method and target (path and query, as sent).
struct Original {
    method: String,
    target: String,
}

impl Gateway {
    /// The original request, or why it cannot be read.
    fn original(self, request: &Request) -> Result<Original, String> {
        let headers = request.headers();
        let (method, target) = match self {
            Self::Nginx => (
                one(headers, "x-original-method")?,
                one(headers, "x-original-uri")?,
            ),
            Self::Forwarded => (
                one(headers, "x-forwarded-method")?,
                one(headers, "x-forwarded-uri")?,
            ),
            Self::Envoy => {
                let uri = request.uri();
                let path = uri.path().strip_prefix(ENVOY_PREFIX).unwrap_or_default();
                let path = if path.is_empty() { "/" } else { path };
                let target = match uri.query() {
                    Some(query) => format!("{path}?{query}"),
                    None => path.to_owned(),
                };
                (request.method().as_str().to_owned(), target)
            }
        };
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
            return Err("the original method is not an HTTP method".to_owned());
        }
        if !target.starts_with('/') {
            return Err("the original URI is not a path".to_owned());
        }
        Ok(Original { method, target })
    }
}

/// The one value of header `name`, as text.
fn one(headers: &HeaderMap, name: &'static str) -> Result<String, String> {
    match single_header(headers.get_all(name).iter().map(HeaderValue::as_bytes)) {
        Some("") => Err(format!("{name}: sent more than once, or not text")),
        Some(value) => Ok(value.to_owned()),
        None => Err(format!("{name}: missing (see the gateway configuration)")),
    }
}

/// The verdict on the request `request` describes.
async fn verdict(state: Shared, gateway: Gateway, request: Request) -> Reply {
    let original = match gateway.original(&request) {
        Ok(original) => original,
        Err(message) => {
            tracing::warn!(
                ?gateway,
                message,
                "verdict asked without the original request"
            );
            return invalid_request(&message);
        }
    };
    let (path, query) = match original.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (original.target.as_str(), None),
    };
    let headers = request.headers();
    let decision = state.edge.decide(
        &original.method,
        path,
        query,
        single_header(
            headers
                .get_all("x-forwarded-host")
                .iter()
                .map(HeaderValue::as_bytes),
        ),
        |name| headers.get_all(name).iter().map(HeaderValue::as_bytes),
    );
    let admission = match decision {
        Decision::Decided(admission) => admission,
        Decision::Pending(pending) => pending.finish().await,
    };
    state.metrics.admission(&admission);
    let settled = state
        .edge
        .settle(admission, &original.method, &original.target);
    let mut reply = match settled.forward {
        Ok(Forward::Session {
            identity_headers, ..
        }) => {
            let mut reply = with_type(StatusCode::OK, "text/plain; charset=utf-8", "");
            reply.headers_mut().extend(identity_headers);
            reply
        }
        Ok(Forward::Guest { .. }) => with_type(StatusCode::OK, "text/plain; charset=utf-8", ""),
        Err(answer) => {
            let mut reply = from_edge(answer);
            if gateway == Gateway::Nginx && reply.status().is_redirection() {
                // auth_request passes 401 and 403 only: the snippet turns
                // a 401 with a Location back into the redirect.
                *reply.status_mut() = StatusCode::UNAUTHORIZED;
            }
            reply
        }
    };
    settled.attach.apply(reply.headers_mut());
    reply
}

/// `/verify/nginx`.
pub(super) async fn nginx(Extract(state): Extract<Shared>, request: Request) -> Reply {
    verdict(state, Gateway::Nginx, request).await
}

/// `/verify/forwarded`.
pub(super) async fn forwarded(Extract(state): Extract<Shared>, request: Request) -> Reply {
    verdict(state, Gateway::Forwarded, request).await
}

/// `/verify/envoy/<original path>`.
pub(super) async fn envoy(Extract(state): Extract<Shared>, request: Request) -> Reply {
    verdict(state, Gateway::Envoy, request).await
}
