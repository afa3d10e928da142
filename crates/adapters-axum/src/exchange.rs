//! The token-exchange endpoint for axum.

use axum::body::Body;
use axum::extract::State;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Response};
use tessera_application::ExchangeToken;
use tessera_domain::Role;

/// An axum handler exchanging the provider token of `Authorization: Bearer`
/// for a session: mount it as `post(exchange_token::<YourRole>)` with the
/// [`ExchangeToken`] use case as state, on a route the session layer
/// treats as public.
///
/// It answers as [`tessera_http::exchange`] says.
pub async fn exchange_token<R: Role>(
    State(exchange): State<ExchangeToken<R>>,
    headers: HeaderMap,
) -> Response<Body> {
    let authorization = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    tessera_http::exchange(&exchange, authorization)
        .await
        .map(Body::from)
}
