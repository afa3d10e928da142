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
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use tessera_application::external::ExternalTokenVerifier;
use tessera_application::usecases::admission::{
    DEFAULT_LOGIN_PATH, DEFAULT_RETURN_TO_PARAM, DEFAULT_SIGNED_IN_PATH,
};
use tessera_application::{
    Admission, AdmissionRequest, AdmittedSession, CredentialUpdate, DecideAdmission, Decision,
    ResolveUser, RotateSession, SignInPages, Verdict, VerifySession,
};
use tessera_domain::{Role, RoutePolicy};

use crate::ConfigError;
use crate::cookies::SessionCookies;
use crate::credential::read_credential;
use crate::gateway::{self, GatewayKey, GatewaySigner};
use crate::response::Denial;

/// The default response header carrying a rotated token to bearer clients.
pub const DEFAULT_TOKEN_HEADER: &str = "x-session-token";
/// The default cap on a credential's size, in bytes: larger ones are refused
/// (401 `invalid_token`) before anything decodes them.
pub const DEFAULT_MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// Sessions and route access at the HTTP edge, for any framework: the
/// admission, the session cookie, the rotated-token header, the credential
/// cap and gateway mode. Cheap to clone.
///
/// Build one with [`SessionEdge::builder`]; the framework adapters wrap it
/// in their middleware (the axum crate's `SessionLayer`, the actix-web
/// crate's `SessionMiddleware`).
pub struct SessionEdge<R: Role> {
    inner: Arc<Inner<R>>,
}

struct Inner<R: Role> {
    admission: DecideAdmission<R>,
    cookies: SessionCookies,
    token_header: HeaderName,
    max_credential_bytes: usize,
    gateway: Option<GatewaySigner>,
    /// Strip the client's identity headers: in gateway mode, and when
    /// provider tokens are admitted.
    strip_identity: bool,
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

/// What a response gets besides its content: the session cookie set or
/// cleared, the rotated token for bearer clients, `Cache-Control:
/// no-store` when a new credential goes out. A handler that set the
/// session cookie (or the token header) itself, as sign-in and sign-out
/// do, wins.
#[derive(Debug, Default)]
#[must_use = "the response needs these headers"]
pub struct Attach {
    /// A `Set-Cookie` for the session cookie, unless the handler set one.
    cookie: Option<(SessionCookies, HeaderValue)>,
    /// The rotated token for a bearer client, unless the handler set one.
    header: Option<(HeaderName, HeaderValue)>,
    /// The headers carry a new credential: the response must not be cached.
    renews: bool,
}

/// The headers an [`Attach`] adds to one response.
#[derive(Debug, Default)]
pub struct AttachHeaders {
    /// Headers to append (`Set-Cookie`).
    pub append: Vec<(HeaderName, HeaderValue)>,
    /// Headers to insert, replacing any of the same name.
    pub insert: Vec<(HeaderName, HeaderValue)>,
}

impl Attach {
    /// Whether there is nothing to add.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cookie.is_none() && self.header.is_none()
    }

    /// The headers to add, given the `Set-Cookie` values the handler's
    /// response already has and whether it has the token header.
    pub fn headers_for<'a>(
        self,
        mut set_cookies: impl Iterator<Item = &'a [u8]>,
        has_token_header: impl FnOnce(&HeaderName) -> bool,
    ) -> AttachHeaders {
        let mut out = AttachHeaders::default();
        if let Some((cookies, value)) = self.cookie
            && !set_cookies.any(|set| cookies.is_set_by(set))
        {
            out.append.push((SET_COOKIE, value));
        }
        if let Some((name, value)) = self.header
            && !has_token_header(&name)
        {
            out.insert.push((name, value));
        }
        if self.renews && !(out.append.is_empty() && out.insert.is_empty()) {
            // A response carrying a credential must never be cached.
            out.insert
                .push((CACHE_CONTROL, HeaderValue::from_static("no-store")));
        }
        out
    }

    /// Adds the headers to an `http` header map.
    pub fn apply(self, headers: &mut HeaderMap) {
        if self.is_empty() {
            return;
        }
        let set_cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        let add = self.headers_for(set_cookies.iter().map(HeaderValue::as_bytes), |name| {
            headers.contains_key(name)
        });
        for (name, value) in add.append {
            headers.append(name, value);
        }
        for (name, value) in add.insert {
            headers.insert(name, value);
        }
    }
}

impl<R: Role> SessionEdge<R> {
    /// Starts an edge enforcing `policy`, verifying with `verify` and
    /// rotating with `rotate`. The defaults: cookie
    /// [`__Host-session`](crate::DEFAULT_COOKIE_NAME), login page
    /// `/login?return_to=`, signed-in page `/`, token header
    /// `x-session-token`, credentials up to 8 KiB, no gateway mode, no
    /// provider tokens.
    pub fn builder(
        verify: VerifySession<R>,
        rotate: RotateSession<R>,
        policy: RoutePolicy<R>,
    ) -> SessionEdgeBuilder<R> {
        SessionEdgeBuilder::new(verify, rotate, policy)
    }

    /// The route policy this edge enforces.
    #[must_use]
    pub fn policy(&self) -> &RoutePolicy<R> {
        self.inner.admission.policy()
    }

    /// The session cookies this edge reads and rotates: hand them to the
    /// sign-in and sign-out handlers.
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
    /// request ([`gateway::is_identity_header`]): in gateway mode, and when
    /// provider tokens are admitted.
    #[must_use]
    pub fn strips_identity_headers(&self) -> bool {
        self.inner.strip_identity
    }

    /// Decides a request from its method, path (percent-encoded, no
    /// query), query, and the values of its `Authorization` and `Cookie`
    /// headers.
    pub fn decide<'h>(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        authorization: impl IntoIterator<Item = &'h [u8]>,
        cookies: impl IntoIterator<Item = &'h [u8]>,
    ) -> Decision<R> {
        let inner = &*self.inner;
        let credential = read_credential(
            authorization,
            cookies,
            inner.cookies.name(),
            inner.max_credential_bytes,
        );
        inner
            .admission
            .decide(&AdmissionRequest::new(method, path, credential).with_query(query))
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

/// Settings of a [`SessionEdge`]; every setter consumes and returns the
/// builder, and [`build`](Self::build) checks them all.
///
/// `T` is what it builds: the edge itself, or a framework adapter's
/// middleware made from one (the axum crate's `SessionLayer::builder`
/// returns a builder of `SessionLayer`s), so that every framework has the
/// same settings, written once.
#[must_use = "a builder does nothing until built"]
pub struct SessionEdgeBuilder<R: Role, T = SessionEdge<R>> {
    verify: VerifySession<R>,
    rotate: RotateSession<R>,
    policy: Arc<RoutePolicy<R>>,
    cookie_name: String,
    login_path: String,
    return_to_param: String,
    signed_in_path: String,
    token_header: String,
    max_credential_bytes: usize,
    gateway: Option<GatewayKey>,
    provider: Option<(Arc<dyn ExternalTokenVerifier<R>>, ResolveUser<R>)>,
    target: PhantomData<fn() -> T>,
}

impl<R: Role, T> fmt::Debug for SessionEdgeBuilder<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEdgeBuilder")
            .field("cookie_name", &self.cookie_name)
            .field("login_path", &self.login_path)
            .field("return_to_param", &self.return_to_param)
            .field("signed_in_path", &self.signed_in_path)
            .field("token_header", &self.token_header)
            .field("max_credential_bytes", &self.max_credential_bytes)
            .field("gateway", &self.gateway.is_some())
            .field("provider_tokens", &self.provider.is_some())
            .finish_non_exhaustive()
    }
}

impl<R: Role, T> SessionEdgeBuilder<R, T> {
    /// A builder with the defaults of [`SessionEdge::builder`].
    pub fn new(verify: VerifySession<R>, rotate: RotateSession<R>, policy: RoutePolicy<R>) -> Self {
        Self {
            verify,
            rotate,
            policy: Arc::new(policy),
            cookie_name: crate::DEFAULT_COOKIE_NAME.to_owned(),
            login_path: DEFAULT_LOGIN_PATH.to_owned(),
            return_to_param: DEFAULT_RETURN_TO_PARAM.to_owned(),
            signed_in_path: DEFAULT_SIGNED_IN_PATH.to_owned(),
            token_header: DEFAULT_TOKEN_HEADER.to_owned(),
            max_credential_bytes: DEFAULT_MAX_CREDENTIAL_BYTES,
            gateway: None,
            provider: None,
            target: PhantomData,
        }
    }

    /// The session cookie's name (default `__Host-session`). Keep the
    /// `__Host-` prefix unless you have a reason not to.
    pub fn cookie_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.cookie_name);
        self
    }

    /// The login page browser routes redirect to (default `/login`); a
    /// relative path, optionally with a query.
    pub fn login_path(mut self, path: &str) -> Self {
        path.clone_into(&mut self.login_path);
        self
    }

    /// The login page's query parameter carrying the page to return to
    /// (default `return_to`).
    pub fn return_to_param(mut self, name: &str) -> Self {
        name.clone_into(&mut self.return_to_param);
        self
    }

    /// Where signed-in users asking for a guest-only page go when the
    /// request has no safe `return_to` (default `/`).
    pub fn signed_in_path(mut self, path: &str) -> Self {
        path.clone_into(&mut self.signed_in_path);
        self
    }

    /// The response header carrying a rotated token to bearer clients
    /// (default `x-session-token`).
    pub fn token_header(mut self, name: &str) -> Self {
        name.clone_into(&mut self.token_header);
        self
    }

    /// The largest credential read, in bytes (default 8 KiB); match the
    /// codec's cap.
    pub fn max_credential_bytes(mut self, max: usize) -> Self {
        self.max_credential_bytes = max;
        self
    }

    /// Turns on [gateway mode](crate::gateway): strip the client's identity
    /// headers and inject signed ones for verified sessions.
    ///
    /// Pass the key of the one service this edge forwards to,
    /// [`GatewayKey::for_audience`], so that its signatures are good at
    /// that service only (one edge per upstream; see
    /// [Audiences](crate::gateway#audiences-one-key-per-service)).
    pub fn gateway(mut self, key: GatewayKey) -> Self {
        self.gateway = Some(key);
        self
    }

    /// Also admits an identity provider's bearer tokens
    /// ([`DecideAdmission::with_provider_tokens`]): a bearer token (alone,
    /// no session cookie) that is not a session token is verified by
    /// `verifier`, its local user resolved by `resolve`, and the same
    /// policy applied. Identity headers the client sent are stripped.
    ///
    /// | provider-token situation | route needs a session | route needs none |
    /// |---|---|---|
    /// | provider keys, user directory or provider API unavailable | 503 `temporarily_unavailable` | served as a guest |
    /// | token refused, user disabled or unknown | 401 `invalid_token` (also on browser routes) | served as a guest |
    /// | user falls short of the route | 403 `insufficient_scope` | 403 |
    pub fn provider_tokens(
        mut self,
        verifier: Arc<dyn ExternalTokenVerifier<R>>,
        resolve: ResolveUser<R>,
    ) -> Self {
        self.provider = Some((verifier, resolve));
        self
    }

    /// Checks the settings and builds the edge.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad setting: a cookie name that is
    /// not an RFC 6265 token, a login or signed-in path that
    /// [`safe_return_to`](crate::safe_return_to) refuses, a return-to
    /// parameter that is not made of unreserved URL characters, a token
    /// header that is not a header name or is an identity header gateway
    /// mode strips, or a zero cap.
    pub fn build(self) -> Result<T, ConfigError>
    where
        T: From<SessionEdge<R>>,
    {
        let cookies = SessionCookies::new(&self.cookie_name)?;
        let pages = SignInPages::new(
            &self.login_path,
            &self.return_to_param,
            &self.signed_in_path,
        )?;
        let token_header = HeaderName::try_from(self.token_header.as_str())
            .ok()
            .filter(|name| !gateway::is_identity_header(name.as_str()))
            .ok_or_else(|| ConfigError::InvalidTokenHeader(self.token_header.clone()))?;
        if self.max_credential_bytes == 0 {
            return Err(ConfigError::ZeroCredentialCap);
        }
        let mut admission = DecideAdmission::new(self.verify, self.rotate, self.policy, pages);
        let strip_identity = self.gateway.is_some() || self.provider.is_some();
        if let Some((verifier, resolve)) = self.provider {
            admission = admission.with_provider_tokens(verifier, resolve);
        }
        Ok(T::from(SessionEdge {
            inner: Arc::new(Inner {
                admission,
                cookies,
                token_header,
                max_credential_bytes: self.max_credential_bytes,
                gateway: self.gateway.map(GatewaySigner::new),
                strip_identity,
            }),
        }))
    }
}
