//! The hybrid layer end to end over loopback HTTP: one protected route
//! answers the backend's own cookie session and an identity provider's
//! bearer token (resolved to the local user through the user cache).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tessera::application::{CachedExternalUserDirectory, ResolveUser, UserCachePolicy};
use tessera::axum::{ProviderUser, Session};
use tessera::domain::{Requirement, RoutePolicy, RouteRule};
use tessera::infrastructure::identity::{
    CachePolicy, ClaimMapping, HttpJwksSource, IdentityProvider, InMemoryExternalUserDirectory,
    JwksTokenVerifier, MissingRole, TokenProfile,
};
use tessera::infrastructure::jose;
use tessera::{JwsAlgorithm, KeyRing, SigningKey, UserRole};

use crate::http_support::COOKIE;
use crate::support::{Counting, START, alice, signing_key, spawn_app};

const IDP: &str = "https://idp.test";

async fn who(session: Session, provider: Option<ProviderUser<UserRole>>) -> String {
    match provider {
        Some(user) => format!(
            "provider {} {} {}",
            user.user_id(),
            user.role(),
            user.identity.subject
        ),
        None => format!("session {} {}", session.user_id(), session.role()),
    }
}

fn provider_token(key: &SigningKey, claims: &Value) -> String {
    let header = jose::encode_header(key, "JWT");
    jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

#[tokio::test]
async fn one_route_answers_the_own_session_and_a_provider_token() {
    let idp_key = SigningKey::generate(JwsAlgorithm::Rs256, "idp-1").unwrap();
    let jwks = KeyRing::verify_only(vec![idp_key.verification_key()])
        .unwrap()
        .to_public_jwk_set()
        .unwrap();
    let idp = crate::http_support::serve(Router::new().route(
        "/jwks",
        get(move || {
            let jwks = jwks.clone();
            async move { jwks }
        }),
    ))
    .await;

    let app = spawn_app(KeyRing::new(signing_key(JwsAlgorithm::EdDsa, "s1")));
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/me", Requirement::Authenticated))
        .build()
        .unwrap();
    let mapping = ClaimMapping::new(
        "public_metadata.role",
        MissingRole::LeastPrivilege(UserRole::User),
    )
    .unwrap()
    .map("admin", UserRole::Admin)
    .unwrap()
    .email("email")
    .unwrap();
    let source =
        HttpJwksSource::new(&format!("http://{idp}/jwks"), Duration::from_secs(2)).unwrap();
    let verifier = JwksTokenVerifier::new(
        IdentityProvider::builder(IDP, TokenProfile::access(mapping).skip_audience_check())
            .clock(app.clock.clone())
            .jwks(Arc::new(source), CachePolicy::default())
            .build()
            .unwrap(),
    );
    let counting = Arc::new(Counting {
        inner: InMemoryExternalUserDirectory::new(),
        finds: AtomicU64::new(0),
    });
    let cached = CachedExternalUserDirectory::new(
        counting.clone(),
        UserCachePolicy::new(100, time::Duration::seconds(60)),
        app.clock.clone(),
    );
    let layer = app
        .sessions
        .hybrid_layer(
            policy,
            Arc::new(verifier),
            ResolveUser::new(Arc::new(cached)),
        )
        .unwrap();
    let addr = crate::http_support::serve(Router::new().route("/me", get(who)).layer(layer)).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/me");

    // The backend's own session, in its cookie.
    let own = app.sign_in_alice();
    let response = client
        .get(&url)
        .header("cookie", format!("{COOKIE}={}", own.token.expose_secret()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        format!("session {} user", alice())
    );

    // A provider token, twice: the local user is created, then served from the cache.
    let claims = json!({
        "iss": IDP, "sub": "user_2abc", "iat": START - 5, "exp": START + 60,
        "email": "bob@example.com", "public_metadata": {"role": "admin"},
    });
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let response = client
            .get(&url)
            .bearer_auth(provider_token(&idp_key, &claims))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        bodies.push(response.text().await.unwrap());
    }
    assert!(bodies[0].starts_with("provider "), "{}", bodies[0]);
    assert!(bodies[0].ends_with(" admin user_2abc"), "{}", bodies[0]);
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(counting.finds.load(Ordering::SeqCst), 1);
    assert_eq!(counting.inner.len(), 1);

    // A provider token signed by another key under the provider's kid.
    let forger = SigningKey::generate(JwsAlgorithm::Rs256, "idp-1").unwrap();
    let response = client
        .get(&url)
        .bearer_auth(provider_token(&forger, &claims))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
}
