//! The local user behind an identity provider's token, for handlers of
//! routes that admit provider tokens
//! ([`SessionEdgeBuilder::provider_tokens`](tessera_http::SessionEdgeBuilder::provider_tokens)).

use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use tessera_application::ProviderSession;
use tessera_domain::Role;

use tessera_http::{LayerSeen, SessionRejection};

use crate::extract::{Rejected, Session};

/// The local user behind the provider token a request was admitted with,
/// as the [`SessionLayer`](crate::SessionLayer) resolved it.
///
/// As an extractor it refuses (401) requests that came with tessera's own
/// session or none, and answers 500 when no session layer ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUser<R>(ProviderSession<R>);

impl<R: Role> ProviderUser<R> {
    pub(crate) fn new(provider: ProviderSession<R>) -> Self {
        Self(provider)
    }
}

/// The local user record (`user`), the provider's identity (`identity`)
/// and their accessors (`user_id()`, `role()`, …).
impl<R> Deref for ProviderUser<R> {
    type Target = ProviderSession<R>;

    fn deref(&self) -> &ProviderSession<R> {
        &self.0
    }
}

impl<R: Role> ProviderUser<R> {
    fn from_parts(parts: &Parts) -> Result<Option<Self>, Rejected<SessionRejection>> {
        if let Some(user) = parts.extensions.get::<Self>() {
            return Ok(Some(user.clone()));
        }
        if parts.extensions.get::<Session<R>>().is_some()
            || parts.extensions.get::<LayerSeen>().is_some()
        {
            return Ok(None);
        }
        Err(Rejected(SessionRejection::LayerMissing))
    }
}

impl<S: Send + Sync, R: Role> FromRequestParts<S> for ProviderUser<R> {
    type Rejection = Rejected<SessionRejection>;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts)?.ok_or(Rejected(SessionRejection::Unauthenticated))
    }
}

impl<S: Send + Sync, R: Role> OptionalFromRequestParts<S> for ProviderUser<R> {
    type Rejection = Rejected<SessionRejection>;

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

    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use http::{Request, StatusCode};
    use mockall::predicate::eq;
    use tessera_application::external::{
        ExternalIdentity, ExternalSubject, ExternalTokenError, ExternalUser,
        MockExternalTokenVerifier, MockExternalUserDirectory, SubjectKind, TokenUse,
    };
    use tessera_application::ports::{
        Clock, DirectoryError, DirectoryUser, JwsFailure, MockClock, MockIdGenerator,
        MockRevocationStore, MockSessionTokenCodec, MockUserDirectory, TokenError,
    };
    use tessera_application::{
        CachedExternalUserDirectory, EstablishSession, ResolveUser, RevokeSession, RotateSession,
        SignInUser, UserCachePolicy, VerifySession,
    };
    use tessera_domain::{Requirement, RoutePolicy, RouteRule, SessionLifetimes, UserId, UserRole};
    use tessera_http::SessionUseCases;
    use time::{Duration, OffsetDateTime};
    use tower::ServiceExt as _;

    use super::*;
    use crate::SessionLayer;

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
            token_use: TokenUse::Access,
            subject_kind: SubjectKind::User,
            role: UserRole::Admin,
            email: Some("alice@example.com".into()),
            name: None,
            issued_at: at(NOW - 10),
            authenticated_at: Some(at(NOW - 100)),
            authentication: Default::default(),
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
            tessera_http::DEFAULT_MAX_CREDENTIAL_BYTES,
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
            .returning(|_| Err(TokenError::Jws(JwsFailure::InvalidSignature)));
        codec.expect_encode().times(0);
        codec.expect_max_token_bytes().return_const(max);
        // The real codec reads the unverified header's `typ`; this fake
        // routes by the same rule.
        codec
            .expect_is_session_token()
            .returning(names_session_type);
        let codec = Arc::new(codec);
        let mut clock = MockClock::new();
        clock.expect_now().return_const(at(NOW));
        // Provider tokens are held to the revocation store: nothing revoked.
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .returning(|_| Ok(tessera_application::ports::RevocationStatus::Active));
        let lifetimes = SessionLifetimes::new(
            Duration::seconds(900),
            Duration::seconds(3600),
            Duration::seconds(300),
            Duration::seconds(30),
        )
        .unwrap();
        let clock = Arc::new(clock);
        let store = Arc::new(store);
        let verify = VerifySession::new(codec.clone(), clock.clone(), store.clone(), lifetimes);
        let rotate = RotateSession::new(
            verify.clone(),
            Arc::new(MockUserDirectory::new()),
            codec.clone(),
        );
        let policy = RoutePolicy::builder()
            .rule(RouteRule::new("/", Requirement::Public))
            .rule(RouteRule::new("/me", Requirement::Authenticated))
            .rule(RouteRule::new(
                "/admin",
                Requirement::AtLeastRole(UserRole::Admin),
            ))
            .build()
            .unwrap();
        let cached = CachedExternalUserDirectory::new(
            Arc::new(directory),
            UserCachePolicy::new(16, Duration::seconds(60)),
            Arc::new(Fixed),
        );
        let sessions = SessionUseCases {
            sign_in: SignInUser::new(
                EstablishSession::new(
                    codec,
                    clock.clone(),
                    Arc::new(MockIdGenerator::new()),
                    lifetimes,
                ),
                Arc::new(MockUserDirectory::new()),
            ),
            revoke: RevokeSession::new(store, clock, lifetimes),
            verify,
            rotate,
        };
        let layer = SessionLayer::builder(sessions, policy)
            .provider_tokens(Arc::new(verifier), ResolveUser::new(Arc::new(cached)))
            .build()
            .unwrap();
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
            user.identity.subject
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
            verifier(1, || {
                Err(ExternalTokenError::Jws(JwsFailure::InvalidSignature))
            }),
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

    /// Whether the token's unverified header names tessera's session type.
    fn names_session_type(token: &str) -> bool {
        let header = token.split('.').next().unwrap_or_default();
        URL_SAFE_NO_PAD.decode(header).is_ok_and(|bytes| {
            String::from_utf8_lossy(&bytes)
                .to_ascii_lowercase()
                .contains("tessera-session+jwt")
        })
    }
}
