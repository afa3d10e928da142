//! The framework-neutral edge: a request's parts in, the admission
//! decided, and what a framework adapter does with it out — the request's
//! session (with signed identity headers in gateway mode) or the answer
//! instead, and the headers the response gets.
//!
//! The axum and actix-web adapters are translations of this module: read
//! the method, path, query and credential headers, call
//! [`SessionEdge::decide`], await [`PendingAdmission::finish`] when the
//! admission needs the user directory, call [`SessionEdge::settle`], and
//! apply the [`Settled`] parts with their framework's types.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response};
use tessera_application::usecases::admission::is_safe_method;
use tessera_application::{
    Admission, AdmissionRequest, AdmittedSession, BrowserFacts, CredentialUpdate, DecideAdmission,
    Decision, PresentedCredential, Refusal, SignInUser, SignOutSession, Verdict,
};
use tessera_domain::{Role, RoutePolicy, SessionEntity};

use crate::ConfigError;
use crate::cookies::SessionCookies;
use crate::credential::read_credential;
use crate::gateway::GatewaySigner;
use crate::response::Denial;
use crate::single_header;

mod attach;
mod builder;
mod sign;

pub use self::attach::{Attach, AttachHeaders};
pub use self::builder::{SessionEdgeBuilder, SessionUseCases};
pub use self::sign::{Auth, Client, Presented};

/// The default response header carrying a rotated token to bearer clients.
pub const DEFAULT_TOKEN_HEADER: &str = "x-session-token";
/// The cap on the size of an identity provider's token read by
/// [`exchange`](crate::exchange()), in bytes: larger ones are refused (401
/// `invalid_token`) before anything decodes them. Session tokens are capped
/// by their codec's
/// [`max_token_bytes`](tessera_application::ports::SessionTokenCodec::max_token_bytes).
pub const DEFAULT_MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// Sessions and route access at the HTTP edge, for any framework: the
/// admission, the session cookie, the rotated-token header, the credential
/// cap and gateway mode. Cheap to clone.
///
/// Build one with [`SessionEdge::builder`]; the framework adapters wrap it
/// in their middleware (the axum crate's `SessionLayer`, the actix-web
/// crate's `SessionMiddleware`).
pub struct SessionEdge<R: Role> {
    pub(super) inner: Arc<Inner<R>>,
}

pub(super) struct Inner<R: Role> {
    admission: DecideAdmission<R>,
    cookies: SessionCookies,
    token_header: HeaderName,
    max_credential_bytes: usize,
    gateway: Option<GatewaySigner>,
    /// Strip the client's identity headers: in gateway mode, and when
    /// provider tokens are admitted.
    strip_identity: bool,
    sign_in: SignInUser<R>,
    sign_out: SignOutSession<R>,
    /// Whether the edge has said, once, that a browser reached it over
    /// plain http by a name it keeps no `Secure` cookie for.
    warned_insecure: std::sync::atomic::AtomicBool,
}

impl<R: Role> Clone for SessionEdge<R> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R: Role> fmt::Debug for SessionEdge<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("SessionEdge")
            .field("admission", &inner.admission)
            .field("cookie", &inner.cookies.name())
            .field("token_header", &inner.token_header)
            .field("max_credential_bytes", &inner.max_credential_bytes)
            .field("gateway", &inner.gateway.is_some())
            .finish()
    }
}

/// The request's side of a settled admission.
#[derive(Debug)]
pub enum Forward<R> {
    /// Call the handler as a guest's; `refused` when a credential was sent
    /// and refused (a required session extractor then answers
    /// `invalid_token`).
    Guest {
        /// A credential was sent and refused.
        refused: bool,
    },
    /// Call the handler with this session.
    Session {
        /// The session, when it was verified, and the provider token and
        /// local user it came from, if any.
        admitted: Box<AdmittedSession<R>>,
        /// In gateway mode, the signed identity headers to put on the
        /// request (after stripping the client's).
        identity_headers: Vec<(HeaderName, HeaderValue)>,
    },
}

/// An admission, translated for the edge.
#[derive(Debug)]
pub struct Settled<R> {
    /// Forward the request, or answer it with this response.
    pub forward: Result<Forward<R>, Response<Bytes>>,
    /// What the response gets, whoever wrote it.
    pub attach: Attach,
}

impl<R: Role> SessionEdge<R> {
    /// Starts an edge enforcing `policy` with `sessions`. The defaults:
    /// cookie [`__Host-session`](crate::DEFAULT_COOKIE_NAME), login page
    /// `/login?return_to=`, signed-in page `/`, token header
    /// `x-session-token`, credentials up to the codec's token cap, no
    /// gateway mode, no provider tokens.
    pub fn builder<P>(sessions: SessionUseCases<R>, policy: P) -> SessionEdgeBuilder<R>
    where
        P: TryInto<RoutePolicy<R>>,
        ConfigError: From<P::Error>,
    {
        SessionEdgeBuilder::new(sessions, policy)
    }

    /// The route policy this edge enforces.
    #[must_use]
    pub fn policy(&self) -> &RoutePolicy<R> {
        self.inner.admission.policy()
    }

    /// The session cookies this edge reads, rotates, sets at sign-in and
    /// clears at sign-out.
    #[must_use]
    pub fn cookies(&self) -> &SessionCookies {
        &self.inner.cookies
    }

    /// The response header that carries rotated tokens to bearer clients.
    #[must_use]
    pub fn token_header(&self) -> &HeaderName {
        &self.inner.token_header
    }

    /// Whether the client's identity headers must be stripped from every
    /// request ([`is_identity_header`](crate::gateway::is_identity_header)): in gateway mode, and when
    /// provider tokens are admitted.
    #[must_use]
    pub fn strips_identity_headers(&self) -> bool {
        self.inner.strip_identity
    }

    /// What a sign-out on this request revokes: `admitted`, the session
    /// the middleware admitted (for an identity provider's token, the
    /// session it was admitted as), else the session token the request
    /// presents (`Authorization: Bearer` or the session cookie, read as
    /// [`decide`](Self::decide) reads them), which a route that needs no
    /// session lets through unverified.
    pub fn presented<'h, I>(
        &self,
        admitted: Option<SessionEntity<R>>,
        headers: impl Fn(&'static str) -> I,
    ) -> Presented<R>
    where
        I: Iterator<Item = &'h [u8]>,
    {
        if let Some(session) = admitted {
            return Presented::Session(Box::new(session));
        }
        match read_credential(
            headers("authorization"),
            headers("cookie"),
            self.inner.cookies.name(),
            self.inner.max_credential_bytes,
        ) {
            PresentedCredential::Token { token, .. } => Presented::Token(token.to_owned()),
            PresentedCredential::Unreadable(fault) => Presented::Unreadable(fault),
            PresentedCredential::None => Presented::Nothing,
        }
    }

    /// Decides a request from its method, path (percent-encoded, no
    /// query), query, request-target authority (absolute-form and HTTP/2
    /// requests have one), and its headers: `headers(name)` gives the
    /// values (as sent) of the header `name`, which is lower case. The
    /// credential is read from `authorization` and `cookie`, and what the
    /// cross-origin rule needs from `origin`, `sec-fetch-site` and the
    /// authority or else `host` ([`single_header`](crate::single_header)).
    pub fn decide<'h, I>(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        authority: Option<&'h str>,
        headers: impl Fn(&'static str) -> I,
    ) -> Decision<R>
    where
        I: Iterator<Item = &'h [u8]>,
    {
        let inner = &*self.inner;
        let credential = read_credential(
            headers("authorization"),
            headers("cookie"),
            inner.cookies.name(),
            inner.max_credential_bytes,
        );
        // Safe methods pass the cross-origin rule whatever they say.
        let browser = if is_safe_method(method) {
            BrowserFacts::default()
        } else {
            let origin = single_header(headers("origin"));
            self.warn_if_cookie_is_dropped(origin);
            BrowserFacts::new(
                origin,
                single_header(headers("sec-fetch-site")),
                authority.or_else(|| single_header(headers("host"))),
            )
        };
        inner.admission.decide(
            &AdmissionRequest::new(method, path, credential)
                .with_query(query)
                .with_browser_facts(browser),
        )
    }

    /// The 403 `cross_origin_request` answer when `method path` is an
    /// unsafe request a browser sent from an origin this edge does not
    /// trust (the rule [`decide`](Self::decide) applies first), for an
    /// endpoint outside the route policy that reads the session cookie;
    /// `None` when it may proceed. `headers` as for `decide`.
    pub fn refuse_cross_origin<'h, I>(
        &self,
        method: &str,
        path: &str,
        authority: Option<&'h str>,
        headers: impl Fn(&'static str) -> I,
    ) -> Option<Response<Bytes>>
    where
        I: Iterator<Item = &'h [u8]>,
    {
        if is_safe_method(method) {
            return None;
        }
        let browser = BrowserFacts::new(
            single_header(headers("origin")),
            single_header(headers("sec-fetch-site")),
            authority.or_else(|| single_header(headers("host"))),
        );
        let request = AdmissionRequest::new(method, path, PresentedCredential::None)
            .with_browser_facts(browser);
        self.inner
            .admission
            .is_cross_origin(&request)
            .then(|| Denial::Refused(Refusal::CrossOrigin).into_http())
    }

    /// Says once, in the log, why sign-in cannot stick when a browser
    /// reaches the site over plain http by a host name that is not
    /// loopback: it drops the `Secure` session cookie.
    fn warn_if_cookie_is_dropped(&self, origin: Option<&str>) {
        use std::sync::atomic::Ordering;
        let inner = &*self.inner;
        let Some(host) = origin.and_then(|origin| origin.strip_prefix("http://")) else {
            return;
        };
        if !inner.cookies.is_secure()
            || is_loopback_host(host)
            || inner.warned_insecure.swap(true, Ordering::Relaxed)
        {
            return;
        }
        tracing::warn!(
            origin = origin.unwrap_or_default(),
            cookie = inner.cookies.name(),
            "browsers drop the Secure session cookie on plain http to a host other than \
             localhost, so sign-in will not stick: serve over https, browse to \
             http://localhost, or in development use SessionEdgeBuilder::development_cookies"
        );
    }

    /// Translates an admission for the request `method target` (`target`
    /// is the path and query, as sent): forward (with what the request
    /// gets) or answer, and what the response gets.
    pub fn settle(&self, admission: Admission<R>, method: &str, target: &str) -> Settled<R> {
        let attach = self.attach(admission.credential);
        let forward = match admission.verdict {
            Verdict::Refuse(refusal) => Err(Denial::Refused(refusal).into_http()),
            Verdict::Guest { refused } => Ok(Forward::Guest { refused }),
            Verdict::Session(admitted) => {
                let signed = match &self.inner.gateway {
                    None => Ok(Vec::new()),
                    Some(signer) => signer
                        .headers(method, target, &admitted.session, admitted.verified_at)
                        .map_err(|error| {
                            tracing::error!(?error, "gateway identity could not be signed");
                            Denial::Misconfigured.into_http()
                        }),
                };
                signed.map(|identity_headers| Forward::Session {
                    admitted,
                    identity_headers,
                })
            }
        };
        Settled { forward, attach }
    }

    /// The credential update as response headers.
    fn attach(&self, update: CredentialUpdate) -> Attach {
        let inner = &*self.inner;
        match update {
            CredentialUpdate::Keep => Attach::default(),
            CredentialUpdate::ClearCookie => Attach {
                cookie: Some((
                    inner.cookies.clone(),
                    inner.cookies.clear().header_value().clone(),
                )),
                header: None,
                renews: false,
            },
            CredentialUpdate::Renew {
                token,
                lifetime,
                via,
            } => {
                let cookie = via
                    .has_cookie()
                    .then(|| inner.cookies.issue_for(&token, lifetime))
                    .and_then(|issued| {
                        issued
                            .inspect_err(|error| {
                                tracing::error!(%error, "rotated token cannot be set as a cookie");
                            })
                            .ok()
                    })
                    .map(|set| (inner.cookies.clone(), set.header_value().clone()));
                let header = via
                    .has_bearer()
                    .then(|| HeaderValue::from_str(token.expose_secret()))
                    .and_then(|value| {
                        value
                            .inspect_err(|_| {
                                tracing::error!("rotated token cannot be sent as a header");
                            })
                            .ok()
                    })
                    .map(|mut value| {
                        value.set_sensitive(true);
                        (inner.token_header.clone(), value)
                    });
                Attach {
                    cookie,
                    header,
                    renews: true,
                }
            }
        }
    }
}

/// Whether `host` (an origin's `host[:port]`) is one browsers keep
/// `Secure` cookies for over plain http: `localhost`, a name under
/// `.localhost`, or a loopback address.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(address, _)| address),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_hosts_are_localhost_names_and_loopback_addresses() {
        for host in [
            "localhost",
            "localhost:3000",
            "app.localhost:8080",
            "LOCALHOST",
            "127.0.0.1:3000",
            "127.9.9.9",
            "[::1]:3000",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "myapp.test",
            "myapp.test:3000",
            "localhost.evil.example",
            "10.0.0.1:80",
            "[2001:db8::1]:80",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
