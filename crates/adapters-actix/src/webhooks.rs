//! A provider's user webhooks, as an actix-web handler.

use actix_web::{HttpRequest, HttpResponse, web};
use tessera_domain::Role;
use tessera_http::{UserWebhook, WebhookError};

use crate::convert::{into_response, to_http};

/// An actix-web handler for a provider's user webhooks: mount it as
/// `web::post().to(user_webhook::<YourRole>)` with a [`UserWebhook`] as
/// `web::Data`, on a route the session middleware treats as public.
///
/// It answers as [`UserWebhook::respond`] says; a body over the cap (by
/// its `Content-Length`, or as read) is 413 before anything else.
pub async fn user_webhook<R: Role>(
    hook: web::Data<UserWebhook<R>>,
    request: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let headers = to_http(request.headers());
    let max = hook.max_body_bytes();
    let body = if hook.declares_too_large(&headers) {
        Err(WebhookError::TooLarge { max })
    } else {
        // A read error (the limit, or a client gone) counts as too large.
        match body.to_bytes_limited(max).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(_)) | Err(_) => Err(WebhookError::TooLarge { max }),
        }
    };
    let answer = match body {
        Ok(bytes) => hook.respond(&headers, Ok(&bytes)).await,
        Err(error) => hook.respond(&headers, Err(error)).await,
    };
    into_response(answer)
}
