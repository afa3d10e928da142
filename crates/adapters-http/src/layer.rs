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
use http::{Extensions, HeaderName, HeaderValue, Request, Response, Uri};
use pin_project_lite::pin_project;
use tessera_application::external::ExternalTokenVerifier;
use tessera_application::{
    Admission, AdmissionRequest, AdmittedSession, CredentialUpdate, DecideAdmission, Decision,
    ResolveUser, RotateSession, SignInPages, Verdict, VerifySession,
};
use tessera_domain::{Role, RoutePolicy};
use tower::{Layer, Service};

use crate::ConfigError;
use crate::cookies::SessionCookies;
use crate::credential;
use crate::extract::{LayerSeen, Session};
use crate::gateway::{self, GatewayKey, GatewaySigner};
use crate::provider_user::ProviderUser;
use crate::response::Denial;

pub use tessera_application::usecases::admission::{
    DEFAULT_LOGIN_PATH, DEFAULT_RETURN_TO_PARAM, DEFAULT_SIGNED_IN_PATH,
};
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
/// 3. asks [`DecideAdmission`] what becomes of the request: the route
///    policy applied (routes that need no session read the credential
///    leniently, routes that need one verify it strictly), a token due for
///    rotation (age) or whose claims are stale (permissions changed)
///    rotated and the route decided again with the fresh role and
///    capabilities, and — with [provider tokens](SessionLayerBuilder::provider_tokens) —
///    an identity provider's bearer token admitted as its local user;
/// 4. translates the admission: forwards with the session or as a guest,
///    or answers the refusal;
/// 5. forwards the request with the [`Session`] in its extensions (and a
///    [`ProviderUser`](crate::ProviderUser) for a provider token; in
///    gateway mode, signed identity headers);
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
    admission: DecideAdmission<R>,
    cookies: SessionCookies,
    token_header: HeaderName,
    max_credential_bytes: usize,
    gateway: Option<GatewaySigner>,
    /// Strip the client's identity headers: in gateway mode, and when
    /// provider tokens are admitted.
    strip_identity: bool,
}

impl<R: Role> fmt::Debug for Shared<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("admission", &self.admission)
            .field("cookie", &self.cookies.name())
            .field("token_header", &self.token_header)
            .field("max_credential_bytes", &self.max_credential_bytes)
            .field("gateway", &self.gateway.is_some())
            .finish()
    }
}

impl<R: Role> SessionLayer<R> {
    /// Starts a layer enforcing `policy`, verifying with `verify` and
    /// rotating with `rotate`. The defaults: cookie
    /// [`__Host-session`](crate::DEFAULT_COOKIE_NAME), login page
    /// `/login?return_to=`, signed-in page `/`, token header
    /// `x-session-token`, credentials up to 8 KiB, no gateway mode, no
    /// provider tokens.
    pub fn builder(
        verify: VerifySession<R>,
        rotate: RotateSession<R>,
        policy: RoutePolicy<R>,
    ) -> SessionLayerBuilder<R> {
        SessionLayerBuilder {
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
        }
    }

    /// The route policy this layer enforces.
    #[must_use]
    pub fn policy(&self) -> &RoutePolicy<R> {
        self.shared.admission.policy()
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
            .field("provider_tokens", &self.provider.is_some())
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

    /// Also admits an identity provider's bearer tokens
    /// ([`DecideAdmission::with_provider_tokens`]): a bearer token (alone,
    /// no session cookie) that is not a session token is verified by
    /// `verifier`, its local user resolved by `resolve`, and the same
    /// policy applied. The handler gets a [`Session`] and a
    /// [`ProviderUser`]. Identity headers the client sent are stripped.
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

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad setting: a cookie name that is
    /// not an RFC 6265 token, a login or signed-in path that
    /// [`safe_return_to`](crate::safe_return_to) refuses, a return-to
    /// parameter that is not made of unreserved URL characters, a token
    /// header that is not a header name or is an identity header gateway
    /// mode strips, or a zero cap.
    pub fn build(self) -> Result<SessionLayer<R>, ConfigError> {
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
        Ok(SessionLayer {
            shared: Arc::new(Shared {
                admission,
                cookies,
                token_header,
                max_credential_bytes: self.max_credential_bytes,
                gateway: self.gateway.map(GatewaySigner::new),
                strip_identity,
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

type Pending<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

pin_project! {
    /// The future of [`SessionService`]: the layer's own answer, the inner
    /// service's response, or — when the admission needs the user
    /// directory (rotation, a provider token) — that work followed by the
    /// inner service.
    pub struct SessionFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, E> {
        Answered { response: Option<Response<Body>> },
        Forwarded { #[pin] future: F, attach: Option<Attach> },
        Pending { future: Pending<E> },
    }
}

impl<F, E> fmt::Debug for SessionFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Answered { .. } => "answered",
            State::Forwarded { .. } => "forwarded",
            State::Pending { .. } => "pending",
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
            StateProj::Forwarded { future, attach } => future.poll(cx).map(|result| {
                result.map(|response| {
                    let mut response = response.map(Body::new);
                    if let Some(attach) = attach.take() {
                        attach.apply(&mut response);
                    }
                    response
                })
            }),
            StateProj::Pending { future } => future.as_mut().poll(cx),
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
        if shared.strip_identity {
            let stripped = gateway::strip_identity_headers(request.headers_mut());
            if stripped > 0 {
                tracing::warn!(stripped, "client sent identity headers; stripped");
            }
        }
        let admission = match shared.decide(&request) {
            Decision::Decided(admission) => admission,
            Decision::Pending(pending) => {
                // The admission awaits the directory: the request waits for
                // it in a box, with the clone that takes the ready
                // service's place.
                let ready = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready);
                let shared = Arc::clone(shared);
                let future = async move {
                    let admission = pending.finish().await;
                    let (forward, attach) = shared.settle(&mut request, admission);
                    let mut response = match forward {
                        Ok(()) => inner.call(request).await?.map(Body::new),
                        Err(denial) => denial.into_response(),
                    };
                    attach.apply(&mut response);
                    Ok(response)
                };
                return SessionFuture {
                    state: State::Pending {
                        future: Box::pin(future),
                    },
                };
            }
        };
        let (forward, attach) = shared.settle(&mut request, admission);
        match forward {
            Ok(()) => SessionFuture {
                state: State::Forwarded {
                    future: self.inner.call(request),
                    attach: (!attach.is_empty()).then_some(attach),
                },
            },
            Err(denial) => {
                let mut response = denial.into_response();
                attach.apply(&mut response);
                SessionFuture::answered(response)
            }
        }
    }
}

/// What the response gets besides its content: the credential update,
/// translated.
pub(crate) struct Attach {
    /// A `Set-Cookie` for the session cookie, unless the handler set one.
    cookie: Option<(SessionCookies, HeaderValue)>,
    /// The rotated token for a bearer client, unless the handler set one.
    header: Option<(HeaderName, HeaderValue)>,
    /// The headers carry a new credential: the response must not be cached.
    renews: bool,
}

impl Attach {
    const NOTHING: Self = Self {
        cookie: None,
        header: None,
        renews: false,
    };

    fn is_empty(&self) -> bool {
        self.cookie.is_none() && self.header.is_none()
    }

    /// Adds the headers to `response`; a handler that set the session
    /// cookie (or the token header) itself, as sign-in and sign-out do,
    /// wins.
    pub(crate) fn apply<B>(self, response: &mut Response<B>) {
        let mut attached = false;
        if let Some((cookies, value)) = self.cookie {
            let handler_set_cookie = response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .any(|set| cookies.is_set_by(set));
            if !handler_set_cookie {
                response.headers_mut().append(SET_COOKIE, value);
                attached = true;
            }
        }
        if let Some((name, value)) = self.header
            && !response.headers().contains_key(&name)
        {
            response.headers_mut().insert(name, value);
            attached = true;
        }
        if attached && self.renews {
            // A response carrying a credential must never be cached.
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

impl<R: Role> Shared<R> {
    /// Reads the request into an admission request and decides it.
    fn decide<B>(&self, request: &Request<B>) -> Decision<R> {
        let uri = full_uri(request);
        let credential = credential::from_headers(
            request.headers(),
            self.cookies.name(),
            self.max_credential_bytes,
        );
        self.admission.decide(
            &AdmissionRequest::new(request.method().as_str(), uri.path(), credential)
                .with_query(uri.query()),
        )
    }

    /// Translates an admission: the request readied for the handler (its
    /// session, and in gateway mode the signed identity headers) or the
    /// answer instead; and what the response gets.
    fn settle<B>(
        &self,
        request: &mut Request<B>,
        admission: Admission<R>,
    ) -> (Result<(), Denial>, Attach) {
        let attach = self.attach(admission.credential);
        let forward = match admission.verdict {
            Verdict::Refuse(refusal) => Err(Denial::Refused(refusal)),
            Verdict::Guest { refused } => {
                request.extensions_mut().insert(LayerSeen { refused });
                Ok(())
            }
            Verdict::Session(admitted) => self.sign_identity(request, &admitted).map(|()| {
                let AdmittedSession {
                    session, provider, ..
                } = *admitted;
                let extensions = request.extensions_mut();
                if let Some(provider) = provider {
                    extensions.insert(ProviderUser::new(provider));
                }
                extensions.insert(Session::new(session));
            }),
        };
        (forward, attach)
    }

    /// The credential update as response headers.
    fn attach(&self, update: CredentialUpdate) -> Attach {
        match update {
            CredentialUpdate::Keep => Attach::NOTHING,
            CredentialUpdate::ClearCookie => Attach {
                cookie: Some((
                    self.cookies.clone(),
                    self.cookies.clear().header_value().clone(),
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
                    .then(|| self.cookies.issue_for(&token, lifetime))
                    .and_then(|issued| {
                        issued
                            .inspect_err(|error| {
                                tracing::error!(%error, "rotated token cannot be set as a cookie");
                            })
                            .ok()
                    })
                    .map(|set| (self.cookies.clone(), set.header_value().clone()));
                let header = via
                    .has_bearer()
                    .then(|| HeaderValue::from_str(token.expose_secret()))
                    .and_then(|value| {
                        value
                            .inspect_err(|_| {
                                tracing::error!("rotated token cannot be sent as a header")
                            })
                            .ok()
                    })
                    .map(|mut value| {
                        value.set_sensitive(true);
                        (self.token_header.clone(), value)
                    });
                Attach {
                    cookie,
                    header,
                    renews: true,
                }
            }
        }
    }

    fn sign_identity<B>(
        &self,
        request: &mut Request<B>,
        admitted: &AdmittedSession<R>,
    ) -> Result<(), Denial> {
        let Some(signer) = &self.gateway else {
            return Ok(());
        };
        let headers = signer
            .headers(
                request.method(),
                target_of(full_uri(request)),
                &admitted.session,
                admitted.verified_at,
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
