//! The token-exchange endpoint: an identity provider's token in
//! `Authorization: Bearer`, the backend's own session out as an RFC 8693
//! shaped JSON response.

use bytes::Bytes;
use http::Response;
use tessera_application::{ExchangeError, ExchangeToken, ISSUED_TOKEN_TYPE, PresentedCredential};
use tessera_domain::Role;

use crate::DEFAULT_COOKIE_NAME;
use crate::credential::read_credential;
use crate::edge::DEFAULT_MAX_CREDENTIAL_BYTES;
use crate::response::{Denial, token_answer};

/// Exchanges the provider token of a request's `Authorization` header
/// (its values, as sent) for a session: the answer of the framework
/// adapters' exchange handlers.
///
/// Success is 200 with `Cache-Control: no-store` and
/// `{"access_token":…,"issued_token_type":"urn:ietf:params:oauth:token-type:jwt","token_type":"Bearer","expires_in":…}`.
/// A missing token is 401 `unauthenticated`; a malformed request 400
/// `invalid_request`; a refused token (of a use the exchange does not
/// take, too) or a disabled user 401 `invalid_token`; an authentic token
/// whose profile refuses its subject 403 with the refusal's own code
/// (`machine_token`, `user_token`, `required_claim`); keys, directory or
/// signing unavailable 503: [`ExchangeError::refusal`] decides. The reason
/// goes to `tracing` at debug (warn for 503), never the token. No cookie is
/// read, so no cross-site form can use one.
pub async fn exchange<'h, R: Role>(
    exchange: &ExchangeToken<R>,
    authorization: impl IntoIterator<Item = &'h [u8]>,
) -> Response<Bytes> {
    let token = match read_credential(
        authorization,
        [],
        DEFAULT_COOKIE_NAME,
        DEFAULT_MAX_CREDENTIAL_BYTES,
    ) {
        PresentedCredential::Token { token, .. } => token,
        PresentedCredential::None => return Denial::unauthenticated(false).into_http(),
        PresentedCredential::Unreadable(fault) if fault.is_invalid_token() => {
            return Denial::unauthenticated(true).into_http();
        }
        PresentedCredential::Unreadable(fault) => {
            return Denial::invalid_request(fault).into_http();
        }
    };
    match exchange.execute(token).await {
        Ok(exchanged) => token_answer(
            &exchanged.token,
            Some(ISSUED_TOKEN_TYPE),
            exchanged.expires_in,
        ),
        Err(error) => denial(&error).into_http(),
    }
}

fn denial(error: &ExchangeError) -> Denial {
    if error.is_unavailable() {
        tracing::warn!(code = error.code(), error = %error, "token exchange unavailable");
    } else {
        tracing::debug!(code = error.code(), error = %error, "token exchange refused");
    }
    Denial::Refused(error.refusal())
}
