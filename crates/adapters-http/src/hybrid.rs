//! Hybrid authentication: the backend's own session, or an identity
//! provider's token resolved to the local user, on the same routes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use tessera_application::external::{ExternalIdentity, ExternalTokenVerifier, ExternalUser};
use tessera_application::{ResolveUser, ResolveUserRequest};
use tessera_domain::{AccessDecision, NewSession, Role, SessionEntity, SessionId};
use tower::{Layer, Service};

use crate::credential::{self, Source};
use crate::extract::{LayerSeen, Session, SessionRejection};
use crate::layer::{SessionService, full_uri};
use crate::response::Denial;
use crate::{SessionLayer, gateway, redirect};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `typ` of tessera's own session tokens, looked for in the header.
const SESSION_TYPE: &[u8] = b"tessera-session+jwt";

/// A [`SessionLayer`] that also accepts an identity provider's tokens.
///
/// Per request:
///
/// - a bearer token (alone: no session cookie) whose unverified JOSE
///   header does not mention `tessera-session+jwt` is a **provider
///   token**: it is verified by the [`ExternalTokenVerifier`], the local
///   user is found (or created) by [`ResolveUser`], a [`SessionEntity`] is
///   built for the request, and the same
///   [`RoutePolicy`](tessera_domain::RoutePolicy) decides the route.
///   On success the request reaches the handler with both a [`Session`]
///   (so the session extractors work unchanged) and a [`ProviderUser`];
/// - everything else (cookies, tessera session tokens, malformed
///   credentials) goes to the wrapped [`SessionLayer`] untouched.
///
/// The header peek only routes the token: it grants nothing. A token sent
/// the wrong way fails the other verifier and is refused.
///
/// The synthetic session of a provider token has the id of a UUID (version
/// 8) derived from the SHA-256 of the issuer, subject and `iat`, so every
/// request with one token has one session id; its issue and expiry times
/// are the provider token's, its authentication time the token's
/// `auth_time` (else `iat`). It is not rotated nor checked against the
/// revocation store: the provider token's expiry bounds it, and disabling
/// the local user ends it (within the user cache's TTL).
///
/// # Responses on the provider-token path
///
/// | situation | route needs a session | route needs none |
/// |---|---|---|
/// | provider keys, user directory or provider API unavailable | 503 `temporarily_unavailable` | served as a guest |
/// | token refused, user disabled or unknown | 401 `invalid_token` | served as a guest |
/// | user falls short of the route | 403 `insufficient_scope` | 403 |
/// | guest-only page | 303 to the session layer's signed-in path | the same |
///
/// Browser routes answer 401 too (no login redirect: a bearer client is
/// not a browser). Identity headers the client sent are stripped; gateway
/// signatures are not produced for provider users.
///
/// Give [`ResolveUser`] a
/// [`CachedExternalUserDirectory`](tessera_application::CachedExternalUserDirectory)
/// so that repeated requests do not read the directory each time.
pub struct HybridLayer<R: Role> {
    shared: Arc<Shared<R>>,
}

struct Shared<R: Role> {
    /// The wrapped layer, whose policy, cookie name, credential cap and
    /// signed-in page the provider-token path shares.
    session: SessionLayer<R>,
    verifier: Arc<dyn ExternalTokenVerifier<R>>,
    resolve: ResolveUser<R>,
}

impl<R: Role> Clone for HybridLayer<R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: Role> fmt::Debug for HybridLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridLayer")
            .field("session", &self.shared.session)
            .field("resolve", &self.shared.resolve)
            .finish_non_exhaustive()
    }
}

impl<R: Role> HybridLayer<R> {
    /// Wraps `session`, accepting provider tokens verified by `verifier`
    /// and resolved by `resolve`; both kinds of credential face the session
    /// layer's route policy.
    #[must_use]
    pub fn new(
        session: SessionLayer<R>,
        verifier: Arc<dyn ExternalTokenVerifier<R>>,
        resolve: ResolveUser<R>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                session,
                verifier,
                resolve,
            }),
        }
    }
}

impl<S: Clone, R: Role> Layer<S> for HybridLayer<R> {
    type Service = HybridService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        HybridService {
            session: self.shared.session.layer(inner.clone()),
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`HybridLayer`].
pub struct HybridService<S, R: Role> {
    session: SessionService<S, R>,
    inner: S,
    shared: Arc<Shared<R>>,
}

impl<S: Clone, R: Role> Clone for HybridService<S, R> {
    fn clone(&self) -> Self {
        Self {
            session: self.session.clone(),
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, R: Role> fmt::Debug for HybridService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridService")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// The future of [`HybridService`].
pub type HybridFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, R, B, ResBody> Service<Request<B>> for HybridService<S, R>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    R: Role,
    B: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = HybridFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.session.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let Some(token) = self.shared.provider_token(&request) else {
            return Box::pin(self.session.call(request));
        };
        let stripped = gateway::strip_identity_headers(request.headers_mut());
        if stripped > 0 {
            tracing::warn!(stripped, "client sent identity headers; stripped");
        }
        let shared = Arc::clone(&self.shared);
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let admitted = shared
                .admit(&token, request.method().as_str(), full_uri(&request).path())
                .await;
            match admitted {
                Err(denial) => return Ok(denial.into_response()),
                Ok(Some((session, user))) => {
                    let extensions = request.extensions_mut();
                    extensions.insert(Session::new(session));
                    extensions.insert(user);
                }
                Ok(None) => {
                    request
                        .extensions_mut()
                        .insert(LayerSeen { refused: false });
                }
            }
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            inner.call(request).await.map(|r| r.map(Body::new))
        })
    }
}

impl<R: Role> Shared<R> {
    /// The bearer token, when it is alone and not a tessera session token.
    fn provider_token<B>(&self, request: &Request<B>) -> Option<String> {
        let credential = credential::extract(
            request.headers(),
            self.session.cookies().name(),
            self.session.max_credential_bytes(),
        )
        .ok()??;
        (credential.source == Source::Bearer && !is_session_token(credential.token))
            .then(|| credential.token.to_owned())
    }

    /// Verifies and resolves a provider token and decides the route:
    /// the session and user to forward with, `None` for a guest, or the
    /// answer.
    async fn admit(
        &self,
        token: &str,
        method: &str,
        path: &str,
    ) -> Result<Option<(SessionEntity<R>, ProviderUser<R>)>, Denial> {
        let route = self.session.policy().route(method, path);
        let needs_session = route.needs_session();
        let refuse = |unavailable: bool, code: &'static str| {
            if !needs_session {
                tracing::debug!(
                    code,
                    method,
                    path,
                    "provider token ignored on a route that needs none"
                );
                Ok(None)
            } else if unavailable {
                tracing::warn!(
                    code,
                    method,
                    path,
                    "provider token cannot be checked; failing closed"
                );
                Err(Denial::Unavailable)
            } else {
                tracing::debug!(code, method, path, "provider token refused");
                Err(Denial::Unauthenticated { refused: true })
            }
        };
        let identity = match self.verifier.verify(token).await {
            Ok(identity) => identity,
            Err(error) => return refuse(error.is_unavailable(), error.code()),
        };
        let resolved = match self
            .resolve
            .execute(ResolveUserRequest {
                identity: &identity,
            })
            .await
        {
            Ok(resolved) => resolved,
            Err(error) => return refuse(error.is_unavailable(), error.code()),
        };
        let Some(session) = session_for(&identity, &resolved.user) else {
            return refuse(false, "invalid_session");
        };
        match route.decide(Some(&session)) {
            AccessDecision::Allow => Ok(Some((
                session,
                ProviderUser {
                    user: resolved.user,
                    identity,
                },
            ))),
            AccessDecision::Forbidden => {
                tracing::debug!(method, path, "provider user falls short of the route");
                Err(Denial::Forbidden { signed_in: true })
            }
            AccessDecision::RedirectAuthenticated => Err(Denial::SignedInRedirect(
                redirect::location(self.session.signed_in_path()),
            )),
            AccessDecision::Unauthenticated => Err(Denial::Unauthenticated { refused: false }),
        }
    }
}

/// Whether the token's unverified header names tessera's session type.
/// Anything that cannot be read is left to the session layer to refuse.
fn is_session_token(token: &str) -> bool {
    let header = token.split('.').next().unwrap_or_default();
    match URL_SAFE_NO_PAD.decode(header) {
        Ok(bytes) => bytes
            .windows(SESSION_TYPE.len())
            .any(|window| window.eq_ignore_ascii_case(SESSION_TYPE)),
        Err(_) => true,
    }
}

/// The request's session for a provider token and its local user.
fn session_for<R: Role>(
    identity: &ExternalIdentity<R>,
    user: &ExternalUser<R>,
) -> Option<SessionEntity<R>> {
    let session_id = session_id_for(identity)?;
    SessionEntity::new(NewSession {
        user_id: user.user.user_id,
        session_id,
        role: user.user.role.clone(),
        capabilities: user.user.capabilities.clone(),
        tenant: user.user.tenant.clone(),
        issued_at: identity.issued_at,
        expires_at: identity.expires_at,
        authenticated_at: identity.authentication_time().min(identity.issued_at),
    })
    .ok()
}

/// A version-8 UUID from the SHA-256 of issuer, subject and `iat`.
fn session_id_for<R>(identity: &ExternalIdentity<R>) -> Option<SessionId> {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(identity.issuer.as_bytes());
    context.update(&[0]);
    context.update(identity.subject.as_str().as_bytes());
    context.update(&[0]);
    context.update(&identity.issued_at.unix_timestamp().to_be_bytes());
    let digest = context.finish();
    let bytes = <[u8; 16]>::try_from(digest.as_ref().get(..16)?).ok()?;
    // Version 8 in bits 48..52, the RFC 9562 variant in bits 64..66.
    let n = (u128::from_be_bytes(bytes) & !(0xf << 76) & !(0x3 << 62)) | (0x8 << 76) | (0x2 << 62);
    let text = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        n >> 96,
        (n >> 80) & 0xffff,
        (n >> 64) & 0xffff,
        (n >> 48) & 0xffff,
        n & 0xffff_ffff_ffff,
    );
    SessionId::parse(&text).ok()
}

/// The local user behind the provider token a request was admitted with,
/// as [`HybridLayer`] resolved it.
///
/// As an extractor it refuses (401) requests that came with tessera's own
/// session or none, and answers 500 when no [`HybridLayer`] ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUser<R> {
    user: ExternalUser<R>,
    identity: ExternalIdentity<R>,
}

impl<R: Role> ProviderUser<R> {
    /// The local user's id.
    #[must_use]
    pub fn user_id(&self) -> &tessera_domain::UserId {
        &self.user.user.user_id
    }

    /// The local user's role.
    #[must_use]
    pub fn role(&self) -> &R {
        &self.user.user.role
    }

    /// The local user's capabilities.
    #[must_use]
    pub fn capabilities(&self) -> &std::collections::BTreeSet<tessera_domain::Capability> {
        &self.user.user.capabilities
    }

    /// The local user's tenant, if any.
    #[must_use]
    pub fn tenant(&self) -> Option<&tessera_domain::TenantId> {
        self.user.user.tenant.as_ref()
    }

    /// The local user record, with its provider account.
    #[must_use]
    pub fn user(&self) -> &ExternalUser<R> {
        &self.user
    }

    /// Who the provider token said the user is.
    #[must_use]
    pub fn identity(&self) -> &ExternalIdentity<R> {
        &self.identity
    }
}

impl<R: Role> ProviderUser<R> {
    fn from_parts(parts: &Parts) -> Result<Option<Self>, SessionRejection> {
        if let Some(user) = parts.extensions.get::<Self>() {
            return Ok(Some(user.clone()));
        }
        if parts.extensions.get::<Session<R>>().is_some()
            || parts.extensions.get::<LayerSeen>().is_some()
        {
            return Ok(None);
        }
        Err(SessionRejection::LayerMissing)
    }
}

impl<S: Send + Sync, R: Role> FromRequestParts<S> for ProviderUser<R> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts)?.ok_or(SessionRejection::Unauthenticated)
    }
}

impl<S: Send + Sync, R: Role> OptionalFromRequestParts<S> for ProviderUser<R> {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Self::from_parts(parts)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::Router;
    use axum::routing::get;
    use http::StatusCode;
    use mockall::predicate::eq;
    use tessera_application::external::{
        ExternalSubject, ExternalTokenError, MockExternalTokenVerifier, MockExternalUserDirectory,
    };
    use tessera_application::ports::{
        Clock, DirectoryError, DirectoryUser, MockClock, MockRevocationStore,
        MockSessionTokenCodec, MockUserDirectory, TokenError,
    };
    use tessera_application::{
        AuthorizeRequest, CachedExternalUserDirectory, RotateSession, UserCachePolicy,
        VerifySession,
    };
    use tessera_domain::{Requirement, RoutePolicy, RouteRule, SessionLifetimes, UserId, UserRole};
    use time::{Duration, OffsetDateTime};
    use tower::ServiceExt as _;

    use super::*;

    const NOW: i64 = 1_700_000_000;
    const IDP: &str = "https://idp.test";

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> OffsetDateTime {
            at(NOW)
        }
    }

    fn token(typ: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","typ":"{typ}"}}"#));
        format!("{header}.e30.c2ln")
    }

    fn identity() -> ExternalIdentity<UserRole> {
        ExternalIdentity {
            issuer: IDP.into(),
            subject: ExternalSubject::parse("user_2abc").unwrap(),
            role: UserRole::Admin,
            email: Some("alice@example.com".into()),
            name: None,
            issued_at: at(NOW - 10),
            authenticated_at: Some(at(NOW - 100)),
            expires_at: at(NOW + 50),
        }
    }

    fn local(role: UserRole, enabled: bool) -> ExternalUser<UserRole> {
        ExternalUser {
            user: DirectoryUser {
                user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap(),
                role,
                capabilities: BTreeSet::new(),
                tenant: None,
                enabled,
            },
            issuer: IDP.into(),
            subject: ExternalSubject::parse("user_2abc").unwrap(),
            email: None,
            name: None,
        }
    }

    fn verifier(
        times: usize,
        answer: fn() -> Result<ExternalIdentity<UserRole>, ExternalTokenError>,
    ) -> MockExternalTokenVerifier<UserRole> {
        let mut verifier = MockExternalTokenVerifier::new();
        verifier
            .expect_verify()
            .times(times)
            .returning(move |_| answer());
        verifier
    }

    fn directory(
        times: usize,
        found: Option<ExternalUser<UserRole>>,
    ) -> MockExternalUserDirectory<UserRole> {
        let mut directory = MockExternalUserDirectory::new();
        directory
            .expect_find_by_external_id()
            .with(eq(IDP), eq(ExternalSubject::parse("user_2abc").unwrap()))
            .times(times)
            .returning(move |_, _| Ok(found.clone()));
        directory.expect_upsert_external().times(0);
        directory
    }

    /// A hybrid router whose session side decodes `decodes` tokens (each
    /// refused with a bad signature).
    fn router(
        verifier: MockExternalTokenVerifier<UserRole>,
        directory: MockExternalUserDirectory<UserRole>,
        decodes: usize,
    ) -> Router {
        capped_router(
            verifier,
            directory,
            decodes,
            crate::DEFAULT_MAX_CREDENTIAL_BYTES,
        )
    }

    /// [`router`], with the session layer reading credentials up to `max`
    /// bytes.
    fn capped_router(
        verifier: MockExternalTokenVerifier<UserRole>,
        directory: MockExternalUserDirectory<UserRole>,
        decodes: usize,
        max: usize,
    ) -> Router {
        let mut codec = MockSessionTokenCodec::<UserRole>::new();
        codec
            .expect_decode()
            .times(decodes)
            .returning(|_| Err(TokenError::InvalidSignature));
        codec.expect_encode().times(0);
        let codec = Arc::new(codec);
        let verify = VerifySession::new(
            codec.clone(),
            Arc::new(MockClock::new()),
            Arc::new(MockRevocationStore::new()),
            SessionLifetimes::new(
                Duration::seconds(900),
                Duration::seconds(3600),
                Duration::seconds(300),
                Duration::seconds(30),
            )
            .unwrap(),
        );
        let rotate = RotateSession::new(verify.clone(), Arc::new(MockUserDirectory::new()), codec);
        let policy = Arc::new(
            RoutePolicy::builder()
                .rule(RouteRule::new("/", Requirement::Public))
                .rule(RouteRule::new("/me", Requirement::Authenticated))
                .rule(RouteRule::new(
                    "/admin",
                    Requirement::AtLeastRole(UserRole::Admin),
                ))
                .build()
                .unwrap(),
        );
        let session = SessionLayer::builder(AuthorizeRequest::new(verify, policy.clone()), rotate)
            .max_credential_bytes(max)
            .build()
            .unwrap();
        let cached = CachedExternalUserDirectory::new(
            Arc::new(directory),
            UserCachePolicy::new(16, Duration::seconds(60)),
            Arc::new(Fixed),
        );
        let layer = HybridLayer::new(
            session,
            Arc::new(verifier),
            ResolveUser::new(Arc::new(cached)),
        );
        Router::new()
            .route(
                "/",
                get(|user: Option<ProviderUser<UserRole>>| async move {
                    format!("guest:{}", user.is_none())
                }),
            )
            .route("/me", get(me))
            .route("/admin", get(me))
            .layer(layer)
    }

    async fn me(session: Session<UserRole>, user: ProviderUser<UserRole>) -> String {
        format!(
            "{} {} {}",
            session.user_id(),
            user.role(),
            user.identity().subject
        )
    }

    async fn send(
        router: &Router,
        path: &str,
        bearer: &str,
    ) -> (StatusCode, String, Option<String>) {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {bearer}"))
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), challenge)
    }

    #[tokio::test]
    async fn a_provider_token_reaches_the_handler_and_the_second_hits_the_cache() {
        let router = router(
            verifier(2, || Ok(identity())),
            directory(1, Some(local(UserRole::Admin, true))),
            0,
        );
        for _ in 0..2 {
            let (status, body, _) = send(&router, "/admin", &token("JWT")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, "0190b5a4-7c2e-7d3a-9f00-000000000001 admin user_2abc");
        }
    }

    #[tokio::test]
    async fn the_local_role_decides_not_the_token_role() {
        let router = router(
            verifier(1, || Ok(identity())),
            directory(1, Some(local(UserRole::User, true))),
            0,
        );
        let (status, _, challenge) = send(&router, "/admin", &token("JWT")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer error=\"insufficient_scope\"")
        );
    }

    #[tokio::test]
    async fn keys_unavailable_is_503() {
        let router = router(
            verifier(1, || {
                Err(ExternalTokenError::KeysUnavailable("down".into()))
            }),
            directory(0, None),
            0,
        );
        let (status, _, _) = send(&router, "/me", &token("JWT")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_refused_provider_token_is_401_invalid_token() {
        let router = router(
            verifier(1, || Err(ExternalTokenError::InvalidSignature)),
            directory(0, None),
            0,
        );
        let (status, _, challenge) = send(&router, "/me", &token("JWT")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
    }

    #[tokio::test]
    async fn a_disabled_user_is_401_invalid_token() {
        let router = router(
            verifier(1, || Ok(identity())),
            directory(1, Some(local(UserRole::Admin, false))),
            0,
        );
        let (status, _, challenge) = send(&router, "/me", &token("JWT")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
    }

    #[tokio::test]
    async fn a_directory_failure_is_503() {
        let mut directory = MockExternalUserDirectory::new();
        directory
            .expect_find_by_external_id()
            .times(1)
            .returning(|_, _| Err(DirectoryError::Unavailable("down".into())));
        let router = router(verifier(1, || Ok(identity())), directory, 0);
        let (status, _, _) = send(&router, "/me", &token("JWT")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_refused_provider_token_on_a_public_route_is_a_guest() {
        let router = router(
            verifier(1, || Err(ExternalTokenError::Expired)),
            directory(0, None),
            0,
        );
        let (status, body, _) = send(&router, "/", &token("JWT")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "guest:true");
    }

    #[tokio::test]
    async fn provider_tokens_are_read_up_to_the_session_layers_cap() {
        let long = format!("{}{}", token("JWT"), "A".repeat(9 * 1024));
        let router = capped_router(
            verifier(1, || Ok(identity())),
            directory(1, Some(local(UserRole::Admin, true))),
            0,
            16 * 1024,
        );
        let (status, _, _) = send(&router, "/me", &long).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn tessera_session_tokens_go_to_the_session_layer() {
        let router = router(verifier(0, || Ok(identity())), directory(0, None), 2);
        for typ in ["tessera-session+jwt", "application/Tessera-Session+JWT"] {
            let (status, _, challenge) = send(&router, "/me", &token(typ)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
        }
    }

    #[test]
    fn the_session_id_is_deterministic_per_token() {
        let one = session_id_for(&identity()).unwrap();
        assert_eq!(Some(one), session_id_for(&identity()));
        let mut later = identity();
        later.issued_at = at(NOW);
        assert_ne!(Some(one), session_id_for(&later));
        assert_eq!(one.as_uuid().get_version_num(), 8);
    }
}
