//! The token-exchange endpoint for actix-web.

use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use tessera_application::ExchangeToken;
use tessera_domain::Role;

use crate::convert::into_response;

/// An actix-web handler exchanging the provider token of `Authorization:
/// Bearer` for a session: mount it as
/// `web::post().to(exchange_token::<YourRole>)` with the [`ExchangeToken`]
/// use case as `web::Data`, on a route the session middleware treats as
/// public.
///
/// It answers as [`tessera_http::exchange`] says.
pub async fn exchange_token<R: Role>(
    exchange: web::Data<ExchangeToken<R>>,
    request: HttpRequest,
) -> HttpResponse {
    let authorization = request
        .headers()
        .get_all(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    into_response(tessera_http::exchange(&exchange, authorization).await)
}
