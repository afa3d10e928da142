//! The tower layer: credential in, route policy applied, session in the
//! request extensions, rotated credential on the response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::OriginalUri;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{Extensions, HeaderName, HeaderValue, Method, Request, Response, Uri};
use pin_project_lite::pin_project;
use tessera_application::{
    Authorization, AuthorizeRequest, RotateError, RotateSession, RotatedSession, RotationNeed,
    VerifiedSession,
};
use tessera_domain::{AccessDecision, Requirement, Role, SessionEntity};
use time::OffsetDateTime;
use tower::{Layer, Service};

use crate::ConfigError;
use crate::cookies::SessionCookies;
use crate::credential::{self, Source};
use crate::extract::{LayerSeen, Session};
use crate::gateway::{self, GatewayKey, GatewaySigner};
use crate::redirect::{self, login_location, return_to_from_query, safe_return_to};
use crate::response::Denial;

/// The default login page, where browser routes send visitors without a
/// session.
pub const DEFAULT_LOGIN_PATH: &str = "/login";
/// The default name of the return-to query parameter of the login page.
pub const DEFAULT_RETURN_TO_PARAM: &str = "return_to";
/// The default page signed-in users are sent to from guest-only pages.
pub const DEFAULT_SIGNED_IN_PATH: &str = "/";
/// The default response header carrying a rotated token to bearer clients.
pub const DEFAULT_TOKEN_HEADER: &str = "x-session-token";
/// The default cap on a credential's size, in bytes: larger ones are refused
/// (401 `invalid_token`) before anything decodes them.
pub const DEFAULT_MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sessions and route access for a tower service (an axum `Router`, say).
///
/// Per request, the layer:
///
/// 1. in [gateway mode](crate::gateway), strips every identity header the
///    client sent;
/// 2. reads the credential: `Authorization: Bearer <token>` or the session
///    cookie (both only if they carry the same token);
/// 3. applies the route policy through [`AuthorizeRequest`]: routes that
///    need no session read it leniently (a bad credential is a guest),
///    routes that need one verify it strictly;
/// 4. when the verified token is due for rotation (age) or its claims are
///    stale (permissions changed), rotates it with [`RotateSession`] and
///    decides the route again with the fresh role and capabilities;
/// 5. answers a denial itself, or forwards the request with the
///    [`Session`] in its extensions (and, in gateway mode, signed identity
///    headers);
/// 6. attaches the rotated credential to the response, whatever its status:
///    a new session cookie when the cookie carried the credential, the new
///    token in the [`token header`](SessionLayerBuilder::token_header)
///    (`x-session-token` by default) when a bearer token did, and
///    `Cache-Control: no-store`. A handler that sets the session cookie
///    (or the token header) itself, as sign-in and sign-out do, wins.
///
/// # Responses
///
/// | situation | status | headers | body `error` |
/// |---|---|---|---|
/// | two different credentials, several `Authorization` headers, one that is not text, `Bearer` without a `token68`, the session cookie twice with different values | 400 | `WWW-Authenticate: Bearer error="invalid_request"` | `invalid_request` |
/// | no credential, route needs a session | 401 | `WWW-Authenticate: Bearer` | `unauthenticated` |
/// | credential refused (bad, expired, revoked, oversized, a session cookie that is not a token), or rotation finds the user gone or disabled | 401 | `WWW-Authenticate: Bearer error="invalid_token"`; the cookie cleared when it carried it | `invalid_token` |
/// | either of the two above on a browser route | 303 | `Location: <login>?return_to=<path>` (GET/HEAD only, relative paths only) | — |
/// | session falls short of the route | 403 | `WWW-Authenticate: Bearer error="insufficient_scope"` | `insufficient_scope` |
/// | route denied to everyone, no session (also paths that are not canonical) | 403 | — | `forbidden` |
/// | guest-only page, signed-in user | 303 | `Location:` its safe `return_to`, else the signed-in page | — |
/// | revocation state cannot be trusted on a route that needs a session; or claims stale and the user directory unreachable | 503 | — | `temporarily_unavailable` |
///
/// Every response the layer writes has `Cache-Control: no-store` and a
/// JSON body `{"error":"<code>"}` (redirects have none); the reason goes to
/// `tracing` (debug for refusals, warn for 503), never the token.
///
/// A credential error on a route that needs no session is a guest, like
/// any bad credential there.
///
/// # Rotation failures
///
/// - user gone or disabled: 401 `invalid_token` (or the login redirect),
///   the session cookie cleared — the request never reaches the handler as
///   authenticated; on a route that needs no session the request goes on
///   as a guest's (the cookie still cleared);
/// - claims stale and rotation impossible: the old claims cannot be
///   trusted, so 503 when the directory or signing failed, 401 when the
///   session is past its absolute lifetime — or, on a route that needs no
///   session, the request goes on as a guest's;
/// - only due by age: the request goes on with the still-valid session and
///   no new credential (a warning is logged).
///
/// # Where to put it
///
/// On the outermost router (`Router::layer` after the routes, or a
/// `ServiceBuilder` around the router). The policy sees the request's full
/// path (axum's `OriginalUri` when present, so nesting is fine). Put one
/// such layer per request path: two would verify and rotate twice.
pub struct SessionLayer<R: Role> {
    shared: Arc<Shared<R>>,
}

impl<R: Role> Clone for SessionLayer<R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: Role> fmt::Debug for SessionLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

struct Shared<R: Role> {
    authorize: AuthorizeRequest<R>,
    rotate: RotateSession<R>,
    cookies: SessionCookies,
    login_path: String,
    return_to_param: String,
    signed_in_path: String,
    token_header: HeaderName,
    max_credential_bytes: usize,
    gateway: Option<GatewaySigner>,
}

impl<R: Role> fmt::Debug for Shared<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("authorize", &self.authorize)
            .field("cookie", &self.cookies.name())
            .field("login_path", &self.login_path)
            .field("return_to_param", &self.return_to_param)
            .field("signed_in_path", &self.signed_in_path)
            .field("token_header", &self.token_header)
            .field("max_credential_bytes", &self.max_credential_bytes)
            .field("gateway", &self.gateway.is_some())
            .finish()
    }
}

impl<R: Role> SessionLayer<R> {
    /// A layer with the defaults: cookie [`__Host-session`](crate::DEFAULT_COOKIE_NAME),
    /// login page `/login?return_to=`, signed-in page `/`, token header
    /// `x-session-token`, credentials up to 8 KiB, no gateway mode.
    #[must_use]
    pub fn new(authorize: AuthorizeRequest<R>, rotate: RotateSession<R>) -> Self {
        Self {
            shared: Arc::new(Shared {
                authorize,
                rotate,
                cookies: SessionCookies::default(),
                login_path: DEFAULT_LOGIN_PATH.to_owned(),
                return_to_param: DEFAULT_RETURN_TO_PARAM.to_owned(),
                signed_in_path: DEFAULT_SIGNED_IN_PATH.to_owned(),
                token_header: HeaderName::from_static(DEFAULT_TOKEN_HEADER),
                max_credential_bytes: DEFAULT_MAX_CREDENTIAL_BYTES,
                gateway: None,
            }),
        }
    }

    /// Starts a layer with settings other than the defaults.
    pub fn builder(
        authorize: AuthorizeRequest<R>,
        rotate: RotateSession<R>,
    ) -> SessionLayerBuilder<R> {
        SessionLayerBuilder {
            authorize,
            rotate,
            cookie_name: crate::DEFAULT_COOKIE_NAME.to_owned(),
            login_path: DEFAULT_LOGIN_PATH.to_owned(),
            return_to_param: DEFAULT_RETURN_TO_PARAM.to_owned(),
            signed_in_path: DEFAULT_SIGNED_IN_PATH.to_owned(),
            token_header: DEFAULT_TOKEN_HEADER.to_owned(),
            max_credential_bytes: DEFAULT_MAX_CREDENTIAL_BYTES,
            gateway: None,
        }
    }

    /// The route policy this layer enforces.
    pub(crate) fn policy(&self) -> &tessera_domain::RoutePolicy<R> {
        self.shared.authorize.policy()
    }

    /// Where signed-in users are sent away from guest-only pages.
    pub(crate) fn signed_in_path(&self) -> &str {
        &self.shared.signed_in_path
    }

    /// The largest credential this layer reads, in bytes.
    pub(crate) fn max_credential_bytes(&self) -> usize {
        self.shared.max_credential_bytes
    }

    /// The session cookies this layer reads and rotates: hand them to the
    /// sign-in and sign-out handlers.
    #[must_use]
    pub fn cookies(&self) -> &SessionCookies {
        &self.shared.cookies
    }

    /// The response header that carries rotated tokens to bearer clients.
    #[must_use]
    pub fn token_header(&self) -> &HeaderName {
        &self.shared.token_header
    }
}

/// Settings of a [`SessionLayer`]; every setter consumes and returns the
/// builder, and [`build`](Self::build) checks them all.
#[must_use = "a builder does nothing until built"]
pub struct SessionLayerBuilder<R: Role> {
    authorize: AuthorizeRequest<R>,
    rotate: RotateSession<R>,
    cookie_name: String,
    login_path: String,
    return_to_param: String,
    signed_in_path: String,
    token_header: String,
    max_credential_bytes: usize,
    gateway: Option<GatewayKey>,
}

impl<R: Role> fmt::Debug for SessionLayerBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayerBuilder")
            .field("cookie_name", &self.cookie_name)
            .field("login_path", &self.login_path)
            .field("return_to_param", &self.return_to_param)
            .field("signed_in_path", &self.signed_in_path)
            .field("token_header", &self.token_header)
            .field("max_credential_bytes", &self.max_credential_bytes)
            .field("gateway", &self.gateway.is_some())
            .finish_non_exhaustive()
    }
}

impl<R: Role> SessionLayerBuilder<R> {
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
    /// Pass the key of the one service this layer's router forwards to,
    /// [`GatewayKey::for_audience`], so that its signatures are good at
    /// that service only (one layer per upstream; see
    /// [Audiences](crate::gateway#audiences-one-key-per-service)).
    pub fn gateway(mut self, key: GatewayKey) -> Self {
        self.gateway = Some(key);
        self
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad setting: a cookie name that is
    /// not an RFC 6265 token, a login or signed-in path that
    /// [`safe_return_to`] refuses, a return-to parameter that is not made
    /// of unreserved URL characters, a token header that is not a header
    /// name or is an identity header gateway mode strips, or a zero cap.
    pub fn build(self) -> Result<SessionLayer<R>, ConfigError> {
        let cookies = SessionCookies::new(&self.cookie_name)?;
        for (which, path) in [
            ("login_path", &self.login_path),
            ("signed_in_path", &self.signed_in_path),
        ] {
            if safe_return_to(path).is_none() {
                return Err(ConfigError::InvalidPath {
                    which,
                    path: path.clone(),
                });
            }
        }
        let param_ok = !self.return_to_param.is_empty()
            && self
                .return_to_param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        if !param_ok {
            return Err(ConfigError::InvalidReturnToParam(self.return_to_param));
        }
        let token_header = HeaderName::try_from(self.token_header.as_str())
            .ok()
            .filter(|name| !gateway::is_identity_header(name.as_str()))
            .ok_or_else(|| ConfigError::InvalidTokenHeader(self.token_header.clone()))?;
        if self.max_credential_bytes == 0 {
            return Err(ConfigError::ZeroCredentialCap);
        }
        Ok(SessionLayer {
            shared: Arc::new(Shared {
                authorize: self.authorize,
                rotate: self.rotate,
                cookies,
                login_path: self.login_path,
                return_to_param: self.return_to_param,
                signed_in_path: self.signed_in_path,
                token_header,
                max_credential_bytes: self.max_credential_bytes,
                gateway: self.gateway.map(GatewaySigner::new),
            }),
        })
    }
}

impl<S, R: Role> Layer<S> for SessionLayer<R> {
    type Service = SessionService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
pub struct SessionService<S, R: Role> {
    inner: S,
    shared: Arc<Shared<R>>,
}

impl<S: Clone, R: Role> Clone for SessionService<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, R: Role> fmt::Debug for SessionService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("layer", &self.shared)
            .finish()
    }
}

type Rotating<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

pin_project! {
    /// The future of [`SessionService`]: the layer's own answer, the inner
    /// service's response, or — when the token is being rotated — the
    /// rotation followed by the inner service.
    pub struct SessionFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, E> {
        Answered { response: Option<Response<Body>> },
        Forwarded { #[pin] future: F },
        Rotating { future: Rotating<E> },
    }
}

impl<F, E> fmt::Debug for SessionFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Answered { .. } => "answered",
            State::Forwarded { .. } => "forwarded",
            State::Rotating { .. } => "rotating",
        };
        f.debug_struct("SessionFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, E> SessionFuture<F, E> {
    fn answered(response: Response<Body>) -> Self {
        Self {
            state: State::Answered {
                response: Some(response),
            },
        }
    }
}

impl<F, E, ResBody> Future for SessionFuture<F, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Answered { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled after completion: never answers twice.
                None => Poll::Pending,
            },
            StateProj::Forwarded { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(Body::new))),
            StateProj::Rotating { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, R, B, ResBody> Service<Request<B>> for SessionService<S, R>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    R: Role,
    B: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = SessionFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let shared = &self.shared;
        if shared.gateway.is_some() {
            let stripped = gateway::strip_identity_headers(request.headers_mut());
            if stripped > 0 {
                tracing::warn!(stripped, "client sent identity headers; stripped");
            }
        }
        let outcome = match shared.plan(&request) {
            Plan::Done(Outcome::Deny(denial), attach) => {
                let mut response = denial.into_response();
                shared.attach(&mut response, attach);
                return SessionFuture::answered(response);
            }
            Plan::Done(outcome, _) => outcome,
            Plan::Session {
                verified,
                decision,
                source,
            } => match verified.rotation() {
                RotationNeed::NotDue => shared.conclude(decision, settle(verified), &request),
                need @ (RotationNeed::Due | RotationNeed::ClaimsStale) => {
                    // Rotation is async: the request waits for it in a box,
                    // with the clone that takes the ready service's place.
                    let ready = self.inner.clone();
                    let inner = std::mem::replace(&mut self.inner, ready);
                    let shared = Arc::clone(shared);
                    let future = async move {
                        shared
                            .rotate_then_forward(inner, request, need, verified, decision, source)
                            .await
                    };
                    return SessionFuture {
                        state: State::Rotating {
                            future: Box::pin(future),
                        },
                    };
                }
            },
        };
        match shared.forward(&mut request, outcome) {
            Ok(()) => SessionFuture {
                state: State::Forwarded {
                    future: self.inner.call(request),
                },
            },
            Err(denial) => SessionFuture::answered(denial.into_response()),
        }
    }
}

/// A session that may go through, and when it was verified.
struct Settled<R> {
    session: SessionEntity<R>,
    verified_at: OffsetDateTime,
}

/// What becomes of the request.
enum Outcome<R> {
    /// Call the handler, with the session if there is one.
    Forward(Option<Settled<R>>),
    /// Call the handler as a guest's whose credential was sent and refused
    /// (on a route that needs no session), so that a required extractor
    /// answers `invalid_token`.
    Refused,
    /// Answer instead.
    Deny(Denial),
}

/// What the response gets besides its content.
enum Attach {
    Nothing,
    ClearCookie,
    Rotated {
        cookie: Option<HeaderValue>,
        header: Option<HeaderValue>,
    },
}

/// Where a request stands before any rotation.
enum Plan<R> {
    Done(Outcome<R>, Attach),
    Session {
        verified: VerifiedSession<R>,
        decision: AccessDecision,
        source: Option<Source>,
    },
}

/// The URI the policy sees: the full one even inside a nested router.
pub(crate) fn full_uri<B>(request: &Request<B>) -> &Uri {
    original_uri(request.extensions(), request.uri())
}

/// axum's `OriginalUri` when a router put one in `extensions`, else `uri`.
pub(crate) fn original_uri<'a>(extensions: &'a Extensions, uri: &'a Uri) -> &'a Uri {
    extensions
        .get::<OriginalUri>()
        .map_or(uri, |original| &original.0)
}

/// The path and query of `uri`, as the client sent them.
pub(crate) fn target_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |pq| pq.as_str())
}

impl<R: Role> Shared<R> {
    /// Rotates the verified session, decides the route again with the
    /// fresh claims, forwards or answers, and attaches the new credential.
    async fn rotate_then_forward<S, B, ResBody>(
        self: Arc<Self>,
        mut inner: S,
        mut request: Request<B>,
        need: RotationNeed,
        verified: VerifiedSession<R>,
        decision: AccessDecision,
        source: Option<Source>,
    ) -> Result<Response<Body>, S::Error>
    where
        S: Service<Request<B>, Response = Response<ResBody>>,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let rotated = self.rotate.rotate(verified.clone()).await;
        let (outcome, attach) =
            self.after_rotation(need, rotated, verified, decision, source, &request);
        let mut response = match self.forward(&mut request, outcome) {
            Ok(()) => inner.call(request).await?.map(Body::new),
            Err(denial) => denial.into_response(),
        };
        self.attach(&mut response, attach);
        Ok(response)
    }

    /// Readies a request for the handler: its session (and, in gateway
    /// mode, the signed identity headers) in place; or the answer instead.
    fn forward<B>(&self, request: &mut Request<B>, outcome: Outcome<R>) -> Result<(), Denial> {
        match outcome {
            Outcome::Deny(denial) => Err(denial),
            Outcome::Forward(Some(settled)) => {
                self.sign_identity(request, &settled)?;
                request
                    .extensions_mut()
                    .insert(Session::new(settled.session));
                Ok(())
            }
            Outcome::Forward(None) => {
                request
                    .extensions_mut()
                    .insert(LayerSeen { refused: false });
                Ok(())
            }
            Outcome::Refused => {
                request.extensions_mut().insert(LayerSeen { refused: true });
                Ok(())
            }
        }
    }

    /// Reads the credential and applies the policy: the one exhaustive
    /// match from [`Authorization`] to what the edge does.
    fn plan<B>(&self, request: &Request<B>) -> Plan<R> {
        let uri = full_uri(request);
        let method = request.method().as_str();
        let path = uri.path();
        let mut refused = false;
        let credential = match credential::extract(
            request.headers(),
            self.cookies.name(),
            self.max_credential_bytes,
        ) {
            Ok(credential) => credential,
            Err(error) => {
                let route = self.authorize.policy().route(method, path);
                if !route.needs_session() {
                    tracing::debug!(
                        reason = error.code(),
                        method,
                        path,
                        "credential ignored on a route that needs none"
                    );
                    refused = true;
                    None
                } else {
                    tracing::debug!(reason = error.code(), method, path, "credential refused");
                    let attach = if error.blames_cookie() {
                        Attach::ClearCookie
                    } else {
                        Attach::Nothing
                    };
                    let denial = match (error.is_invalid_token(), route.is_browser()) {
                        (false, _) => Denial::InvalidRequest,
                        (true, true) => self.login_redirect(request.method(), uri),
                        (true, false) => Denial::Unauthenticated { refused: true },
                    };
                    return Plan::Done(Outcome::Deny(denial), attach);
                }
            }
        };
        let source = credential.map(|c| c.source);
        let token = credential.map(|c| c.token);
        // A token sent but not verified on a route that needs no session
        // was refused leniently: `Allowed(None)` with a token means that.
        let refused = refused || token.is_some();
        match self.authorize.execute(method, path, token) {
            Authorization::Allowed(None) => {
                let outcome = if refused {
                    Outcome::Refused
                } else {
                    Outcome::Forward(None)
                };
                Plan::Done(outcome, Attach::Nothing)
            }
            Authorization::Allowed(Some(verified)) => Plan::Session {
                verified,
                decision: AccessDecision::Allow,
                source,
            },
            Authorization::Forbidden(Some(verified)) => Plan::Session {
                verified,
                decision: AccessDecision::Forbidden,
                source,
            },
            Authorization::RedirectAuthenticated(verified) => Plan::Session {
                verified,
                decision: AccessDecision::RedirectAuthenticated,
                source,
            },
            Authorization::Forbidden(None) => {
                tracing::debug!(method, path, "route forbidden to a guest");
                Plan::Done(
                    Outcome::Deny(Denial::Forbidden { signed_in: false }),
                    Attach::Nothing,
                )
            }
            Authorization::Unauthenticated { error, browser } => {
                // AuthorizeRequest already logged the reason a credential was refused.
                let refused = error.is_some();
                let denial = if browser {
                    self.login_redirect(request.method(), uri)
                } else {
                    Denial::Unauthenticated { refused }
                };
                let attach = if refused && source.is_some_and(Source::has_cookie) {
                    Attach::ClearCookie
                } else {
                    Attach::Nothing
                };
                Plan::Done(Outcome::Deny(denial), attach)
            }
            Authorization::Unavailable(error) => {
                tracing::warn!(reason = error.code(), %error, method, path, "session verification unavailable; failing closed");
                Plan::Done(Outcome::Deny(Denial::Unavailable), Attach::Nothing)
            }
        }
    }

    /// The answer for a guest on this route (after a session was dropped;
    /// `refused` when the session ended, not merely went unrefreshed).
    fn conclude_guest<B>(&self, request: &Request<B>, refused: bool) -> Outcome<R> {
        let uri = full_uri(request);
        let route = self
            .authorize
            .policy()
            .route(request.method().as_str(), uri.path());
        match route.decide(None) {
            AccessDecision::Allow | AccessDecision::RedirectAuthenticated if refused => {
                Outcome::Refused
            }
            AccessDecision::Allow | AccessDecision::RedirectAuthenticated => Outcome::Forward(None),
            AccessDecision::Forbidden => Outcome::Deny(Denial::Forbidden { signed_in: false }),
            AccessDecision::Unauthenticated => {
                Outcome::Deny(Denial::Unauthenticated { refused: false })
            }
        }
    }

    fn conclude<B>(
        &self,
        decision: AccessDecision,
        settled: Settled<R>,
        request: &Request<B>,
    ) -> Outcome<R> {
        let uri = full_uri(request);
        match decision {
            AccessDecision::Allow => Outcome::Forward(Some(settled)),
            AccessDecision::Forbidden => {
                tracing::debug!(method = %request.method(), path = uri.path(), "session falls short of the route");
                Outcome::Deny(Denial::Forbidden { signed_in: true })
            }
            AccessDecision::RedirectAuthenticated => {
                Outcome::Deny(Denial::SignedInRedirect(self.signed_in_location(uri)))
            }
            // A decision for a present session is never this; answer as the
            // policy would for a guest all the same.
            AccessDecision::Unauthenticated => {
                let browser = self
                    .authorize
                    .policy()
                    .route(request.method().as_str(), uri.path())
                    .is_browser();
                Outcome::Deny(if browser {
                    self.login_redirect(request.method(), uri)
                } else {
                    Denial::Unauthenticated { refused: false }
                })
            }
        }
    }

    fn after_rotation<B>(
        &self,
        need: RotationNeed,
        rotated: Result<RotatedSession<R>, RotateError>,
        verified: VerifiedSession<R>,
        decision: AccessDecision,
        source: Option<Source>,
        request: &Request<B>,
    ) -> (Outcome<R>, Attach) {
        let uri = full_uri(request);
        let method = request.method().as_str();
        let path = uri.path();
        let stale = need == RotationNeed::ClaimsStale;
        let error = match rotated {
            Ok(rotated) => {
                let route = self.authorize.policy().route(method, path);
                let decision = route.decide(Some(&rotated.session));
                let attach = self.rotated_credential(&rotated, source);
                let settled = Settled {
                    session: rotated.session,
                    verified_at: verified.verified_at(),
                };
                return (self.conclude(decision, settled, request), attach);
            }
            Err(error) => error,
        };
        let user_gone = matches!(error, RotateError::UserNotFound | RotateError::UserDisabled);
        let past_lifetime = matches!(error, RotateError::AbsoluteLifetimeExceeded);
        let route = self.authorize.policy().route(method, path);
        if !route.needs_session() && (user_gone || stale) {
            // A route that needs no session reads leniently: a session that
            // cannot be refreshed is a guest here, not a refusal.
            tracing::debug!(reason = %error, method, path, "session not refreshed; served as a guest");
            let attach = if user_gone && source.is_some_and(Source::has_cookie) {
                Attach::ClearCookie
            } else {
                Attach::Nothing
            };
            return (self.conclude_guest(request, user_gone), attach);
        }
        if user_gone || (stale && past_lifetime) {
            tracing::info!(reason = %error, method, path, "session ended at rotation");
            let browser = route.is_browser();
            let denial = if browser {
                self.login_redirect(request.method(), uri)
            } else {
                Denial::Unauthenticated { refused: true }
            };
            let attach = if source.is_some_and(Source::has_cookie) {
                Attach::ClearCookie
            } else {
                Attach::Nothing
            };
            return (Outcome::Deny(denial), attach);
        }
        if stale {
            tracing::warn!(reason = %error, method, path, "stale claims could not be refreshed; failing closed");
            return (Outcome::Deny(Denial::Unavailable), Attach::Nothing);
        }
        if !past_lifetime {
            tracing::warn!(reason = %error, method, path, "session rotation failed; the current token stays in use");
        }
        (
            self.conclude(decision, settle(verified), request),
            Attach::Nothing,
        )
    }

    fn rotated_credential(&self, rotated: &RotatedSession<R>, source: Option<Source>) -> Attach {
        let Some(source) = source else {
            return Attach::Nothing;
        };
        let cookie = source
            .has_cookie()
            .then(|| self.cookies.issue(&rotated.token, &rotated.session))
            .and_then(|issued| {
                issued
                    .inspect_err(
                        |error| tracing::error!(%error, "rotated token cannot be set as a cookie"),
                    )
                    .ok()
            })
            .map(|set| set.header_value().clone());
        let header = source
            .has_bearer()
            .then(|| HeaderValue::from_str(rotated.token.expose_secret()))
            .and_then(|value| {
                value
                    .inspect_err(|_| tracing::error!("rotated token cannot be sent as a header"))
                    .ok()
            })
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        Attach::Rotated { cookie, header }
    }

    fn attach(&self, response: &mut Response<Body>, attach: Attach) {
        let handler_set_cookie = || {
            response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .any(|value| self.cookies.is_set_by(value))
        };
        match attach {
            Attach::Nothing => {}
            Attach::ClearCookie => {
                if !handler_set_cookie() {
                    let clear = self.cookies.clear();
                    response
                        .headers_mut()
                        .append(SET_COOKIE, clear.header_value().clone());
                }
            }
            Attach::Rotated { cookie, header } => {
                let mut attached = false;
                if let Some(cookie) = cookie
                    && !handler_set_cookie()
                {
                    response.headers_mut().append(SET_COOKIE, cookie);
                    attached = true;
                }
                if let Some(header) = header
                    && !response.headers().contains_key(&self.token_header)
                {
                    response
                        .headers_mut()
                        .insert(self.token_header.clone(), header);
                    attached = true;
                }
                if attached {
                    // A response carrying a credential must never be cached.
                    response
                        .headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
            }
        }
    }

    fn sign_identity<B>(
        &self,
        request: &mut Request<B>,
        settled: &Settled<R>,
    ) -> Result<(), Denial> {
        let Some(signer) = &self.gateway else {
            return Ok(());
        };
        let headers = signer
            .headers(
                request.method(),
                target_of(full_uri(request)),
                &settled.session,
                settled.verified_at,
            )
            .map_err(|error| {
                tracing::error!(?error, "gateway identity could not be signed");
                Denial::Misconfigured
            })?;
        let map = request.headers_mut();
        for (name, value) in headers {
            map.insert(name, value);
        }
        Ok(())
    }

    fn login_redirect(&self, method: &Method, uri: &Uri) -> Denial {
        // Only a page that can be fetched again is worth returning to.
        let target = matches!(*method, Method::GET | Method::HEAD).then(|| target_of(uri));
        Denial::LoginRedirect(login_location(
            &self.login_path,
            &self.return_to_param,
            target,
        ))
    }

    fn signed_in_location(&self, uri: &Uri) -> HeaderValue {
        let target = return_to_from_query(uri.query(), &self.return_to_param).filter(|target| {
            // Never back to a guest-only page: that would loop.
            !matches!(
                self.authorize.policy().route("GET", target).requirement(),
                Requirement::GuestOnly
            )
        });
        redirect::location(target.as_deref().unwrap_or(&self.signed_in_path))
    }
}

fn settle<R: Role>(verified: VerifiedSession<R>) -> Settled<R> {
    Settled {
        verified_at: verified.verified_at(),
        session: verified.into_session(),
    }
}
