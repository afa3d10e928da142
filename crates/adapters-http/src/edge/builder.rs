//! The settings of a session edge, checked once.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use http::HeaderName;
use tessera_application::external::ExternalTokenVerifier;
use tessera_application::usecases::admission::{
    DEFAULT_LOGIN_PATH, DEFAULT_RETURN_TO_PARAM, DEFAULT_SIGNED_IN_PATH,
};
use tessera_application::{
    DecideAdmission, OriginError, ResolveUser, RevokeSession, RotateSession, SignInPages,
    SignInUser, SignOutSession, TrustedOrigins, VerifySession,
};
use tessera_domain::{Role, RoutePolicy};

use super::{DEFAULT_TOKEN_HEADER, Inner, SessionEdge};
use crate::ConfigError;
use crate::cookies::{CookieMode, SessionCookies};
use crate::gateway::{self, GatewayKey, GatewaySigner};

/// Settings of a [`SessionEdge`]; every setter consumes and returns the
/// builder, and [`build`](Self::build) checks them all.
///
/// `T` is what it builds: the edge itself, or a framework adapter's
/// middleware made from one (the axum crate's `SessionLayer::builder`
/// returns a builder of `SessionLayer`s), so that every framework has the
/// same settings, written once.
#[must_use = "a builder does nothing until built"]
pub struct SessionEdgeBuilder<R: Role, T = SessionEdge<R>> {
    sessions: SessionUseCases<R>,
    policy: Result<Arc<RoutePolicy<R>>, ConfigError>,
    cookie_name: Option<String>,
    cookie_mode: CookieMode,
    login_path: String,
    return_to_param: String,
    signed_in_path: String,
    token_header: String,
    gateway: Option<GatewayKey>,
    provider: Option<(Arc<dyn ExternalTokenVerifier<R>>, ResolveUser<R>)>,
    trusted_origins: Result<TrustedOrigins, OriginError>,
    target: PhantomData<fn() -> T>,
}

impl<R: Role, T> fmt::Debug for SessionEdgeBuilder<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEdgeBuilder")
            .field("cookie_name", &self.cookie_name)
            .field("login_path", &self.login_path)
            .field("return_to_param", &self.return_to_param)
            .field("signed_in_path", &self.signed_in_path)
            .field("cookie_mode", &self.cookie_mode)
            .field("token_header", &self.token_header)
            .field("gateway", &self.gateway.is_some())
            .field("provider_tokens", &self.provider.is_some())
            .finish_non_exhaustive()
    }
}

/// The use cases a [`SessionEdge`] runs: verification and rotation on
/// every request, sign-in, revocation at sign-out. The facade's
/// `Tessera::edge` wires them from one session manager.
#[derive(Debug, Clone)]
pub struct SessionUseCases<R: Role> {
    /// Issues sessions at sign-in, with the claims the user directory
    /// holds (the one `rotate` reads).
    pub sign_in: SignInUser<R>,
    /// Verifies each request's token; its codec's
    /// [`max_token_bytes`](VerifySession::max_token_bytes) caps the
    /// credentials the edge reads.
    pub verify: VerifySession<R>,
    /// Renews sessions due for rotation.
    pub rotate: RotateSession<R>,
    /// Records sign-outs.
    pub revoke: RevokeSession,
}

impl<R: Role, T> SessionEdgeBuilder<R, T> {
    /// A builder with the defaults of [`SessionEdge::builder`]. `policy` is
    /// a [`RoutePolicy`], or a list of [`RouteRule`](tessera_domain::RouteRule)s
    /// that makes one (every other path denied); rules that cannot be
    /// compiled are [`build`](Self::build)'s error.
    pub fn new<P>(sessions: SessionUseCases<R>, policy: P) -> Self
    where
        P: TryInto<RoutePolicy<R>>,
        ConfigError: From<P::Error>,
    {
        Self {
            sessions,
            policy: policy.try_into().map(Arc::new).map_err(ConfigError::from),
            cookie_name: None,
            cookie_mode: CookieMode::Secure,
            login_path: DEFAULT_LOGIN_PATH.to_owned(),
            return_to_param: DEFAULT_RETURN_TO_PARAM.to_owned(),
            signed_in_path: DEFAULT_SIGNED_IN_PATH.to_owned(),
            token_header: DEFAULT_TOKEN_HEADER.to_owned(),
            gateway: None,
            provider: None,
            trusted_origins: Ok(TrustedOrigins::default()),
            target: PhantomData,
        }
    }

    /// The session cookie's name (default `__Host-session`; `session` with
    /// [development cookies](Self::development_cookies)). Keep the
    /// `__Host-` prefix unless you have a reason not to.
    pub fn cookie_name(mut self, name: &str) -> Self {
        self.cookie_name = Some(name.to_owned());
        self
    }

    /// **Development only**: a session cookie without `Secure`, named
    /// `session`, for a development server reached over plain http by a
    /// host name other than `localhost` (`http://myapp.test`), where
    /// browsers drop a `Secure` cookie and sign-in would loop.
    ///
    /// `listening_on` is the address the server is bound to: the edge
    /// refuses to build ([`ConfigError::DevelopmentCookies`]) unless it is
    /// a loopback address and this is a debug build (`debug_assertions`),
    /// so a release build or a server reachable from the network never
    /// sends sessions in the clear. On `http://localhost` and
    /// `http://127.0.0.1` none of this is needed: browsers keep `Secure`
    /// cookies there.
    pub fn development_cookies(mut self, listening_on: std::net::IpAddr) -> Self {
        self.cookie_mode = CookieMode::Development { listening_on };
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
    /// policy applied. Identity headers the client sent are stripped; in
    /// [gateway mode](Self::gateway) the local user's identity is signed
    /// for the services behind, as a session's is (its session id is the
    /// one derived from the provider token).
    ///
    /// | provider-token situation | route needs a session | route needs none |
    /// |---|---|---|
    /// | provider keys, user directory or provider API unavailable | 503 `temporarily_unavailable` | served as a guest |
    /// | token refused, an ID token (access tokens only here), user disabled or unknown | 401 `invalid_token` (also on browser routes) | served as a guest |
    /// | the token's profile refuses its subject (a machine token, a required claim unmet) | 403 with the refusal's code (`machine_token`, `user_token`, `required_claim`) | served as a guest |
    /// | user falls short of the route | 403 `insufficient_scope` | 403 |
    pub fn provider_tokens(
        mut self,
        verifier: Arc<dyn ExternalTokenVerifier<R>>,
        resolve: ResolveUser<R>,
    ) -> Self {
        self.provider = Some((verifier, resolve));
        self
    }

    /// Trusts unsafe requests from `origin` (`https://app.example`), a
    /// front end served from another origin, through the cross-origin
    /// protection the edge applies to every other cross-origin browser
    /// request ([`TrustedOrigins`]). Repeat for several.
    pub fn trust_origin(mut self, origin: &str) -> Self {
        self.trusted_origins = self
            .trusted_origins
            .and_then(|trusted| trusted.trust(origin));
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
    /// mode strips, a codec whose token cap is zero, an origin that is not
    /// one, development cookies outside a debug build on loopback, or
    /// route rules that cannot be compiled into a policy.
    pub fn build(self) -> Result<T, ConfigError>
    where
        T: From<SessionEdge<R>>,
    {
        let cookies = SessionCookies::with_mode(self.cookie_name.as_deref(), self.cookie_mode)?;
        let pages = SignInPages::new(
            &self.login_path,
            &self.return_to_param,
            &self.signed_in_path,
        )?;
        let token_header = HeaderName::try_from(self.token_header.as_str())
            .ok()
            .filter(|name| !gateway::is_identity_header(name.as_str()))
            .ok_or_else(|| ConfigError::InvalidTokenHeader(self.token_header.clone()))?;
        let max_credential_bytes = self.sessions.verify.max_token_bytes();
        if max_credential_bytes == 0 {
            return Err(ConfigError::ZeroCredentialCap);
        }
        let SessionUseCases {
            sign_in,
            verify,
            rotate,
            revoke,
        } = self.sessions;
        let sign_out = SignOutSession::new(verify.clone(), revoke);
        let mut admission = DecideAdmission::new(verify, rotate, self.policy?, pages)
            .with_trusted_origins(self.trusted_origins?);
        let strip_identity = self.gateway.is_some() || self.provider.is_some();
        if let Some((verifier, resolve)) = self.provider {
            admission = admission.with_provider_tokens(verifier, resolve);
        }
        Ok(T::from(SessionEdge {
            inner: Arc::new(Inner {
                admission,
                cookies,
                token_header,
                max_credential_bytes,
                sign_in,
                sign_out,
                warned_insecure: std::sync::atomic::AtomicBool::new(false),
                gateway: self.gateway.map(GatewaySigner::new),
                strip_identity,
            }),
        }))
    }
}
