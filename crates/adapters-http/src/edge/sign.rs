//! Sign-in and sign-out, one call each: the session established or
//! revoked, and the answer that carries it to the client.

use std::fmt;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use http::{HeaderValue, Response, StatusCode};
use tessera_application::{CredentialFault, Refusal, SignInError, SignInFacts, SignedOut};
use tessera_domain::{Authentication, Role, SessionEntity, UserId};
use time::OffsetDateTime;

use super::SessionEdge;
use crate::HttpRefusal as _;
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

/// What a sign-out revokes: the request's credential, as the edge found it
/// ([`SessionEdge::presented`]).
#[non_exhaustive]
pub enum Presented<R> {
    /// The session the middleware admitted.
    Session(Box<SessionEntity<R>>),
    /// A session token the middleware did not admit (a route that needs
    /// no session lets any through, unverified). A secret: never logged.
    Token(String),
    /// Credentials that cannot be read as one (two different ones).
    Unreadable(CredentialFault),
    /// No credential.
    Nothing,
}

impl<R: Role> fmt::Debug for Presented<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session(session) => f
                .debug_tuple("Session")
                .field(session.session_id())
                .finish(),
            Self::Token(_) => f.write_str("Token([redacted])"),
            Self::Unreadable(fault) => f.debug_tuple("Unreadable").field(fault).finish(),
            Self::Nothing => f.write_str("Nothing"),
        }
    }
}

impl<R: Role> SessionEdge<R> {
    /// Signs in a user the application has authenticated: establishes
    /// their session with the role, capabilities and tenant the user
    /// directory holds (the directory rotation reads, so the first
    /// rotation takes nothing back), and `facts` on how they
    /// authenticated; answers `client` ([`Client`]), always with
    /// `Cache-Control: no-store`. The cookie is this edge's, so the
    /// session is the one the middleware reads and rotates.
    ///
    /// | situation | answer |
    /// |---|---|
    /// | the directory does not know the user, or holds them disabled | 403 `{"error":"forbidden"}` |
    /// | the directory cannot answer | 503 `{"error":"temporarily_unavailable"}` |
    /// | the directory answers for another user (a broken adapter) | 500 `{"error":"server_error"}` |
    /// | the session cannot be established (an `authenticated_at` in the future or older than the absolute lifetime, no signing key) | 500 `{"error":"server_error"}` |
    ///
    /// Each is logged with its reason.
    pub async fn sign_in(
        &self,
        user_id: &UserId,
        facts: SignInFacts,
        client: Client<'_>,
    ) -> Response<Bytes> {
        let issued = match self.inner.sign_in.execute(user_id, facts).await {
            Ok(issued) => issued,
            Err(error) => return sign_in_refused(user_id, error),
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

    /// Signs out what the request presents ([`presented`](Self::presented)):
    /// revokes the session, every token of it, on every instance sharing
    /// the revocation store, and answers `client` ([`Client`]) with the
    /// session cookie cleared. A token that is no session (forged,
    /// expired, revoked already) has nothing to revoke: the cookie is
    /// cleared all the same.
    ///
    /// | situation | answer |
    /// |---|---|
    /// | the token cannot be checked (the revocation state is untrusted), or the revocation cannot be recorded | 503 `{"error":"temporarily_unavailable"}`, the cookie kept |
    /// | two different credentials, which could each be a session | 400 `{"error":"invalid_request"}`, the cookie kept |
    ///
    /// so that nobody believes a session gone that still works.
    pub async fn sign_out(&self, presented: &Presented<R>, client: Client<'_>) -> Response<Bytes> {
        let signed_out = match presented {
            Presented::Session(session) => self.inner.sign_out.execute_admitted(session).await,
            Presented::Token(token) => self.inner.sign_out.execute(token).await,
            Presented::Unreadable(fault) => {
                tracing::debug!(%fault, "sign-out refused: the credential cannot be read");
                return Denial::invalid_request(*fault).into_http();
            }
            Presented::Nothing => Ok(SignedOut::NothingToRevoke),
        };
        if let Err(error) = signed_out {
            tracing::warn!(error = %Chain(&error), "sign-out failed; the session stands");
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

/// An error and its sources, `: `-separated, for a log line.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// Logs why a sign-in established nothing (with the user, never a token)
/// and gives its answer.
fn sign_in_refused(user_id: &UserId, error: SignInError) -> Response<Bytes> {
    let reason = Chain(&error);
    match error {
        SignInError::UnknownUser | SignInError::Disabled => {
            tracing::warn!(%user_id, %reason, "sign-in refused");
        }
        SignInError::Directory(_) => {
            tracing::warn!(%user_id, %reason, "sign-in refused: nobody is signed in on a guess");
        }
        _ => tracing::error!(%user_id, %reason, "sign-in: the session could not be established"),
    }
    error.into_http()
}

impl crate::HttpRefusal for SignInError {
    /// The answer to a sign-in that established nothing: 403 `forbidden`
    /// for a user the directory does not let in, 503
    /// `temporarily_unavailable` when it cannot answer, 500 `server_error`
    /// for a broken directory or a session that cannot be issued (the
    /// application's doing, not the client's).
    fn into_http(self) -> Response<Bytes> {
        match self {
            Self::UnknownUser | Self::Disabled => {
                Denial::Refused(Refusal::Forbidden { signed_in: false }).into_http()
            }
            Self::Directory(_) => Denial::Refused(Refusal::Unavailable).into_http(),
            _ => Denial::Misconfigured.into_http(),
        }
    }
}

/// Sign-in and sign-out for one request, as a framework adapter's
/// extractor hands them to a handler: the edge, whether the request's
/// route is a browser page (which decides the answer's [`Client`]), and
/// the session token the request presents, if any.
///
/// How the answer carries the session follows the route: on a
/// [browser route](tessera_domain::RouteRule::browser) sign-in sets the
/// session cookie and redirects (`303`) to a safe return-to, sign-out
/// clears it and redirects to the sign-in page (or a safe return-to); on
/// any other route sign-in answers
/// `{"access_token":…,"token_type":"Bearer","expires_in":…}` and sign-out
/// `204`. Every answer has `Cache-Control: no-store`.
///
/// The session takes the role, capabilities and tenant the user directory
/// holds: the one rotation reads, so the first rotation takes nothing back;
/// a user it does not know or holds disabled is refused (403), and when it
/// cannot answer nobody is signed in (503). Sign-out revokes the session
/// the request presents on every instance (503, the cookie kept, when that
/// cannot be checked or recorded).
///
/// Sign-in and sign-out change state: route them as `POST`, which the
/// cross-origin protection covers (a `GET` sign-out is a logout any page
/// can trigger; a `GET` sign-in, such as an OAuth callback, must carry
/// its own defence, the `state` parameter).
pub struct Auth<R: Role> {
    edge: SessionEdge<R>,
    browser: bool,
    presented: Presented<R>,
    facts: SignInFacts,
}

impl<R: Role> fmt::Debug for Auth<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("browser", &self.browser)
            .field("presented", &self.presented)
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

impl<R: Role> Auth<R> {
    /// Sign-in and sign-out for a request to `method` `path` (the path the
    /// policy sees) presenting `presented` ([`SessionEdge::presented`]).
    #[must_use]
    pub fn new(edge: SessionEdge<R>, method: &str, path: &str, presented: Presented<R>) -> Self {
        let browser = edge.policy().route(method, path).is_browser();
        Self {
            edge,
            browser,
            presented,
            facts: SignInFacts::default(),
        }
    }

    /// How the user authenticated (`acr`, `amr`), for the session that
    /// [`sign_in`](Self::sign_in) establishes: what routes requiring a
    /// level of authentication check. Unknown by default.
    #[must_use]
    pub fn authentication(mut self, authentication: Authentication) -> Self {
        self.facts.authentication = authentication;
        self
    }

    /// When the user authenticated, if earlier than now (an identity
    /// provider's `auth_time`). Now by default.
    #[must_use]
    pub fn authenticated_at(mut self, at: OffsetDateTime) -> Self {
        self.facts.authenticated_at = Some(at);
        self
    }

    /// Whether the request's route is a browser page, so the answers are
    /// a cookie and a redirect rather than JSON.
    #[must_use]
    pub fn is_browser(&self) -> bool {
        self.browser
    }

    /// Signs in `user_id`, whom your handler has authenticated (a password,
    /// a passkey, an OAuth callback): [`SessionEdge::sign_in`], answered
    /// for a browser (the cookie, `303` to `return_to` when it is a safe
    /// path of this site, else to the signed-in page) or an API client
    /// (the token as JSON; `return_to` unused).
    pub async fn sign_in(&self, user_id: &UserId, return_to: Option<&str>) -> Response<Bytes> {
        self.edge
            .sign_in(user_id, self.facts.clone(), self.client(return_to))
            .await
    }

    /// Signs out the session the request presents:
    /// [`SessionEdge::sign_out`], for a browser (cookie cleared, `303` to
    /// `return_to` when it is a safe path of this site, else to the sign-in
    /// page) or an API client (`204`; `return_to` unused).
    pub async fn sign_out(&self, return_to: Option<&str>) -> Response<Bytes> {
        self.edge
            .sign_out(&self.presented, self.client(return_to))
            .await
    }

    fn client<'a>(&self, return_to: Option<&'a str>) -> Client<'a> {
        if self.browser {
            Client::Browser { return_to }
        } else {
            Client::Api
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

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use tessera_application::ports::DirectoryError;
    use tessera_application::{EstablishError, SignInError};

    use crate::HttpRefusal as _;

    #[test]
    fn a_refused_sign_in_is_answered_by_whose_doing_it_is() {
        let cases = [
            (SignInError::UnknownUser, StatusCode::FORBIDDEN, "forbidden"),
            (SignInError::Disabled, StatusCode::FORBIDDEN, "forbidden"),
            (
                SignInError::Directory(DirectoryError::Unavailable("down".into())),
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
            ),
            (
                SignInError::OtherUser,
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
            ),
            (
                SignInError::Establish(EstablishError::AuthenticatedInFuture),
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
            ),
        ];
        for (error, status, code) in cases {
            let answer = error.into_http();
            assert_eq!(answer.status(), status, "{code}");
            assert_eq!(answer.body(), &format!("{{\"error\":\"{code}\"}}"));
            assert_eq!(answer.headers()["cache-control"], "no-store");
        }
    }
}
