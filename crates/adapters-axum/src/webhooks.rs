//! A provider's user webhooks, as an axum handler.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::HeaderMap;
use tessera_domain::Role;
use tessera_http::{UserWebhook, WebhookError};

/// An axum handler for a provider's user webhooks: mount it as
/// `post(user_webhook::<YourRole>)` with a [`UserWebhook`] as state, on a
/// route the session layer treats as public.
///
/// It answers as [`UserWebhook::respond`] says; a body over the cap (by
/// its `Content-Length`, or as read) is 413 before anything else.
pub async fn user_webhook<R: Role>(
    State(hook): State<UserWebhook<R>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let max = hook.max_body_bytes();
    let body = if hook.declares_too_large(&headers) {
        Err(WebhookError::TooLarge { max })
    } else {
        // A read error (the limit, or a client gone) counts as too large.
        axum::body::to_bytes(body, max)
            .await
            .map_err(|_| WebhookError::TooLarge { max })
    };
    match body {
        Ok(bytes) => hook.respond(&headers, Ok(&bytes)).await,
        Err(error) => hook.respond(&headers, Err(error)).await,
    }
    .map(Body::from)
}
