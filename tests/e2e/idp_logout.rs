//! Logouts reach provider tokens, end to end over loopback HTTP (axum): a
//! force-logout refuses the provider tokens issued at or before it on the
//! exchange endpoint and on the hybrid route alike, through the facade's
//! wiring, and an untrustworthy revocation state fails both closed.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera::application::ResolveUser;
use tessera::application::RevokeRequest;
use tessera::application::external::{ExternalSubject, ExternalUserDirectory};
use tessera::application::ports::{
    RevocationError, RevocationQuery, RevocationStatus, RevocationStore, WatermarkKind,
    WatermarkScope,
};
use tessera::axum::{Auth, Session, exchange_token};
use tessera::domain::{Requirement, RoutePolicy, RouteRule, SessionId};
use tessera::infrastructure::identity::{
    ClaimMapping, InMemoryExternalUserDirectory, JwksTokenVerifier, MissingRole, TokenProfile,
};
use tessera::infrastructure::jose;
use tessera::{JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};
use time::OffsetDateTime;

use crate::support::{AUDIENCE, ISSUER, ManualClock, START, lifetimes, serve_loopback};

const IDP: &str = "https://idp.test";

/// The provider's signing key, the session manager and the app serving
/// `POST /token` (exchange) and `GET /me` (hybrid: sessions and provider
/// tokens), over loopback.
struct Setup {
    idp_key: SigningKey,
    clock: Arc<ManualClock>,
    users: Arc<InMemoryExternalUserDirectory<UserRole>>,
    sessions: Tessera<UserRole>,
    addr: SocketAddr,
}

async fn me(session: Session) -> String {
    format!("{} {}", session.user_id(), session.role())
}

/// Everything wired by the facade alone, on `revocations` when given.
async fn setup(revocations: Option<Arc<dyn RevocationStore>>) -> Setup {
    let clock = ManualClock::starting_at(START);
    let users = Arc::new(InMemoryExternalUserDirectory::<UserRole>::new());
    let mut builder = Tessera::builder(
        KeyRing::new(SigningKey::generate(JwsAlgorithm::EdDsa, "s1").unwrap()),
        ISSUER,
        AUDIENCE,
    )
    .lifetimes(lifetimes())
    .clock(clock.clone())
    .user_directory(users.clone());
    if let Some(store) = revocations {
        builder = builder.revocation_store(store);
    }
    let sessions = builder.build();
    let idp_key = SigningKey::generate(JwsAlgorithm::Rs256, "idp-1").unwrap();
    let mapping = ClaimMapping::new("role", MissingRole::LeastPrivilege(UserRole::User)).unwrap();
    let verifier = Arc::new(JwksTokenVerifier::new(
        sessions
            .identity_provider(IDP, TokenProfile::access(mapping).skip_audience_check())
            .static_keys(KeyRing::verify_only(vec![idp_key.verification_key()]).unwrap())
            .build()
            .unwrap(),
    ));
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/me", Requirement::Authenticated))
        .rule(RouteRule::authenticated("/logout"))
        .rule(RouteRule::new("/token", Requirement::Public))
        .build()
        .unwrap();
    let layer = sessions
        .hybrid_layer(policy, verifier.clone(), ResolveUser::new(users.clone()))
        .unwrap();
    let exchange = sessions.exchange(verifier, users.clone());
    let app = Router::new()
        .route("/me", get(me))
        .route(
            "/logout",
            post(|auth: Auth| async move { auth.sign_out(None).await }),
        )
        .layer(layer)
        .merge(
            Router::new()
                .route("/token", post(exchange_token::<UserRole>))
                .with_state(exchange),
        );
    let addr = serve_loopback(app).await;
    Setup {
        idp_key,
        clock,
        users,
        sessions,
        addr,
    }
}

impl Setup {
    /// A provider token for `user_2abc`, issued at `iat`, valid ten minutes.
    fn provider_token(&self, iat: i64) -> String {
        let claims = json!({"iss": IDP, "sub": "user_2abc", "iat": iat, "exp": iat + 600});
        let header = jose::encode_header(&self.idp_key, "JWT");
        jose::sign_compact(&self.idp_key, &header, claims.to_string().as_bytes()).unwrap()
    }

    /// `method path` with `token` as a bearer: the status, the challenge
    /// and the JSON body, if any.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> (u16, Option<String>, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("http://{}{path}", self.addr))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
        (status, challenge, body)
    }

    /// `POST /token` (the exchange) with `token`.
    async fn exchange(&self, token: &str) -> (u16, Option<String>, Value) {
        self.send(reqwest::Method::POST, "/token", token).await
    }

    /// `GET /me` (the hybrid route) with `token`: the status and challenge.
    async fn hybrid(&self, token: &str) -> (u16, Option<String>) {
        let (status, challenge, _) = self.send(reqwest::Method::GET, "/me", token).await;
        (status, challenge)
    }

    async fn local_user(&self) -> tessera::domain::UserId {
        let subject = ExternalSubject::parse("user_2abc").unwrap();
        self.users
            .find_by_external_id(IDP, &subject)
            .await
            .unwrap()
            .unwrap()
            .user
            .user_id
    }
}

const INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";

#[tokio::test]
async fn a_force_logout_refuses_the_users_earlier_provider_tokens_on_exchange_and_hybrid_routes() {
    let app = setup(None).await;
    let before = app.provider_token(START - 5);

    // Before the logout the token works both ways.
    let (status, _, body) = app.exchange(&before).await;
    assert_eq!(status, 200, "{body}");
    let exchanged = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.hybrid(&before).await.0, 200);
    let user = app.local_user().await;

    app.clock.advance(1);
    app.sessions
        .revoke()
        .execute(RevokeRequest::ForceLogout(WatermarkScope::User(user)))
        .await
        .unwrap();

    // The still-valid provider token is refused by both, and so is the
    // session it was exchanged for.
    let (status, challenge, body) = app.exchange(&before).await;
    assert_eq!(status, 401);
    assert_eq!(challenge.as_deref(), Some(INVALID_TOKEN));
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        app.hybrid(&before).await,
        (401, Some(INVALID_TOKEN.to_owned()))
    );
    assert_eq!(
        app.hybrid(&exchanged).await,
        (401, Some(INVALID_TOKEN.to_owned()))
    );

    // The same second as the watermark is at or before it: refused too.
    let same_second = app.provider_token(app.clock.seconds());
    assert_eq!(app.exchange(&same_second).await.0, 401);
    assert_eq!(app.hybrid(&same_second).await.0, 401);

    // A token issued after the logout (the user signed in at the provider
    // again) passes both.
    app.clock.advance(1);
    let after = app.provider_token(app.clock.seconds());
    let (status, _, body) = app.exchange(&after).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.hybrid(&after).await;
    assert_eq!(status, 200);
    let fresh = body["access_token"].as_str().unwrap();
    assert_eq!(app.hybrid(fresh).await.0, 200);
}

#[tokio::test]
async fn a_force_logout_of_everyone_and_a_logout_of_the_tokens_session_reach_provider_tokens() {
    let app = setup(None).await;
    let token = app.provider_token(START - 5);
    assert_eq!(app.hybrid(&token).await.0, 200);
    app.sessions
        .revoke()
        .execute(RevokeRequest::ForceLogout(WatermarkScope::Everyone))
        .await
        .unwrap();
    assert_eq!(app.exchange(&token).await.0, 401);
    assert_eq!(app.hybrid(&token).await.0, 401);

    // Logging out the session a provider token stands for (its derived
    // id) ends that token only.
    let app = setup(None).await;
    let first = app.provider_token(START - 5);
    let second = app.provider_token(START - 4);
    assert_eq!(app.hybrid(&first).await.0, 200);
    let session_id =
        SessionId::derived(&[IDP.as_bytes(), b"user_2abc", &(START - 5).to_be_bytes()]);
    app.sessions
        .revoke()
        .execute(RevokeRequest::Session {
            session_id,
            authenticated_at: OffsetDateTime::from_unix_timestamp(START - 5).unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(app.hybrid(&first).await.0, 401);
    assert_eq!(app.exchange(&first).await.0, 401);
    assert_eq!(app.hybrid(&second).await.0, 200);
}

#[tokio::test]
async fn signing_out_with_a_provider_token_ends_the_session_it_was_admitted_as() {
    let app = setup(None).await;
    let token = app.provider_token(START - 5);
    let other = app.provider_token(START - 4);
    assert_eq!(app.hybrid(&token).await.0, 200);
    let (status, _, _) = app.send(reqwest::Method::POST, "/logout", &token).await;
    assert_eq!(status, 204, "signed out");
    assert_eq!(
        app.hybrid(&token).await.0,
        401,
        "the token no longer passes"
    );
    assert_eq!(app.exchange(&token).await.0, 401, "nor exchanges");
    assert_eq!(app.hybrid(&other).await.0, 200, "another sign-in stands");
}

/// A revocation store whose state cannot be trusted.
struct Untrustworthy;

#[async_trait]
impl RevocationStore for Untrustworthy {
    fn check(&self, _: RevocationQuery<'_>) -> Result<RevocationStatus, RevocationError> {
        Err(RevocationError::Unavailable("listener down".into()))
    }

    async fn revoke_session(&self, _: SessionId, _: OffsetDateTime) -> Result<(), RevocationError> {
        Err(RevocationError::Unavailable("listener down".into()))
    }

    async fn set_watermark(
        &self,
        _: WatermarkScope,
        _: WatermarkKind,
        _: OffsetDateTime,
    ) -> Result<(), RevocationError> {
        Err(RevocationError::Unavailable("listener down".into()))
    }

    async fn clear_watermark(
        &self,
        _: WatermarkScope,
        _: WatermarkKind,
    ) -> Result<(), RevocationError> {
        Err(RevocationError::Unavailable("listener down".into()))
    }
}

#[tokio::test]
async fn provider_tokens_fail_closed_when_the_revocation_state_cannot_be_trusted() {
    let app = setup(Some(Arc::new(Untrustworthy))).await;
    let token = app.provider_token(START - 5);
    let (status, challenge, body) = app.exchange(&token).await;
    assert_eq!(status, 503);
    assert_eq!(challenge, None);
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(app.hybrid(&token).await, (503, None));
}
