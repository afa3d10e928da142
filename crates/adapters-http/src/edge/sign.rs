//! Sign-in and sign-out, one call each: the session established or
//! revoked, and the answer that carries it to the client.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use http::{HeaderValue, Response, StatusCode};
use tessera_application::{EstablishRequest, Refusal, RevokeRequest};
use tessera_domain::{Role, SessionEntity};

use super::SessionEdge;
use crate::response::{Denial, NO_STORE, token_answer};

/// Who signs in or out, and so how the answer carries the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client<'a> {
    /// A browser, submitting a form: the answer is `303 See Other` to
    /// `return_to` when it is a safe path on this site
    /// ([`safe_return_to`](crate::safe_return_to)), and otherwise to the
    /// signed-in page (after sign-in) or the sign-in page (after
    /// sign-out), with the session cookie set or cleared. The token is
    /// never in the body.
    Browser {
        /// Where the user was going, as the sign-in form carried it.
        return_to: Option<&'a str>,
    },
    /// An API client: sign-in answers `200` with
    /// `{"access_token":…,"token_type":"Bearer","expires_in":…}` and no
    /// cookie; sign-out answers `204 No Content`.
    Api,
}

impl<R: Role> SessionEdge<R> {
    /// Signs in a user the application has authenticated: establishes the
    /// session and answers `client` ([`Client`]), always with
    /// `Cache-Control: no-store`. The cookie is this edge's, so the
    /// session is the one the middleware reads and rotates.
    ///
    /// A session that cannot be established (an `authenticated_at` in the
    /// future or older than the absolute lifetime, no signing key) is
    /// logged with its reason and answered `500 {"error":"server_error"}`:
    /// the request came from the application, not from the client.
    pub fn sign_in(&self, request: EstablishRequest<R>, client: Client<'_>) -> Response<Bytes> {
        let issued = match self.inner.establish.execute(request) {
            Ok(issued) => issued,
            Err(error) => {
                tracing::error!(%error, "sign-in: the session could not be established");
                return Denial::Misconfigured.into_http();
            }
        };
        let session = &issued.session;
        let lifetime = session.expires_at() - session.issued_at();
        match client {
            Client::Api => token_answer(&issued.token, None, lifetime.whole_seconds()),
            Client::Browser { return_to } => {
                let cookie = match self.inner.cookies.issue_for(&issued.token, lifetime) {
                    Ok(cookie) => cookie,
                    Err(error) => {
                        tracing::error!(%error, "sign-in: the session cookie could not be set");
                        return Denial::Misconfigured.into_http();
                    }
                };
                let to = self.inner.admission.pages().after_sign_in(return_to);
                see_other(to, cookie.header_value().clone())
            }
        }
    }

    /// Signs `session` out: revokes it (every token of it, on every
    /// instance sharing the revocation store) and answers `client`
    /// ([`Client`]) with the session cookie cleared.
    ///
    /// When the revocation cannot be recorded the answer is `503
    /// {"error":"temporarily_unavailable"}` and the cookie is kept, so that
    /// the user sees that signing out failed and can try again, rather
    /// than believing a session gone that still works.
    pub async fn sign_out(
        &self,
        session: &SessionEntity<R>,
        client: Client<'_>,
    ) -> Response<Bytes> {
        let revoked = self
            .inner
            .revoke
            .execute(RevokeRequest::Session {
                session_id: *session.session_id(),
                authenticated_at: session.authenticated_at(),
            })
            .await;
        if let Err(error) = revoked {
            tracing::warn!(%error, "sign-out: the session could not be revoked");
            return Denial::Refused(Refusal::Unavailable).into_http();
        }
        let clear = self.inner.cookies.clear().header_value().clone();
        match client {
            Client::Api => {
                let mut response = Response::new(Bytes::new());
                *response.status_mut() = StatusCode::NO_CONTENT;
                let headers = response.headers_mut();
                headers.insert(CACHE_CONTROL, NO_STORE);
                headers.insert(SET_COOKIE, clear);
                response
            }
            Client::Browser { return_to } => see_other(
                self.inner.admission.pages().after_sign_out(return_to),
                clear,
            ),
        }
    }
}

/// `303 See Other` to `location` (a safe relative path) with `cookie` set
/// and `Cache-Control: no-store`.
fn see_other(location: &str, cookie: HeaderValue) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, NO_STORE);
    // Safe paths are printable ASCII; the root if one ever is not.
    headers.insert(
        LOCATION,
        HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/")),
    );
    headers.insert(SET_COOKIE, cookie);
    response
}
