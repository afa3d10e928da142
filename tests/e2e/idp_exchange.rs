//! Identity-provider tokens end to end over loopback HTTP: a provider
//! stand-in (axum) serving a JWKS that counts fetches, tessera fetching it
//! with reqwest, and the exchange endpoint issuing tessera's own session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera::axum::exchange_token;
use tessera::infrastructure::identity::{
    CachePolicy, ClaimMapping, HttpJwksSource, IdentityProvider, InMemoryExternalUserDirectory,
    JwksTokenVerifier, MissingRole, TokenProfile,
};
use tessera::infrastructure::jose;
use tessera::{JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};

use crate::support::{AUDIENCE, ISSUER, ManualClock, START, lifetimes};

const IDP: &str = "https://idp.test";

/// Serves `jwks` at `/jwks`, counting requests; returns its address.
async fn provider_stand_in(jwks: String, fetches: Arc<AtomicU64>) -> std::net::SocketAddr {
    let app = Router::new().route(
        "/jwks",
        get(move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            let jwks = jwks.clone();
            async move { ([("cache-control", "public, max-age=600")], jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn provider_token(key: &SigningKey, claims: &Value) -> String {
    let header = jose::encode_header(key, "JWT");
    jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

/// A session manager on a manual clock at [`START`], with provider-linked
/// users in memory.
fn manager() -> (
    Arc<ManualClock>,
    Arc<InMemoryExternalUserDirectory<UserRole>>,
    Tessera<UserRole>,
) {
    let clock = ManualClock::starting_at(START);
    let users = Arc::new(InMemoryExternalUserDirectory::<UserRole>::new());
    let sessions = Tessera::builder(
        KeyRing::new(SigningKey::generate(JwsAlgorithm::EdDsa, "s1").unwrap()),
        ISSUER,
        AUDIENCE,
    )
    .lifetimes(lifetimes())
    .clock(clock.clone())
    .user_directory(users.clone())
    .build();
    (clock, users, sessions)
}

#[tokio::test]
async fn a_provider_token_is_exchanged_over_http_for_a_verifiable_session() {
    let idp_key = SigningKey::generate(JwsAlgorithm::Rs256, "idp-1").unwrap();
    let jwks = KeyRing::verify_only(vec![idp_key.verification_key()])
        .unwrap()
        .to_public_jwk_set()
        .unwrap();
    let fetches = Arc::new(AtomicU64::new(0));
    let idp = provider_stand_in(jwks, fetches.clone()).await;

    let (clock, users, sessions) = manager();
    let source =
        HttpJwksSource::new(&format!("http://{idp}/jwks"), Duration::from_secs(2)).unwrap();
    let mapping = ClaimMapping::new(
        "public_metadata.role",
        MissingRole::LeastPrivilege(UserRole::User),
    )
    .unwrap()
    .map("admin", UserRole::Admin)
    .unwrap()
    .email("email")
    .unwrap();
    let verifier = JwksTokenVerifier::new(
        IdentityProvider::builder(
            IDP,
            TokenProfile::access(mapping)
                .skip_audience_check()
                .allowed_party("https://app.test"),
        )
        .clock(clock.clone())
        .jwks(Arc::new(source), CachePolicy::default())
        .build()
        .unwrap(),
    );
    let exchange = sessions.exchange(Arc::new(verifier), users.clone());
    let app = Router::new()
        .route("/token", post(exchange_token::<UserRole>))
        .with_state(exchange);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let claims = json!({
        "iss": IDP, "sub": "user_2abc", "azp": "https://app.test",
        "iat": START - 5, "exp": START + 60, "auth_time": START - 120,
        "email": "alice@example.com", "public_metadata": {"role": "admin"},
    });
    let client = reqwest::Client::new();
    let mut user_ids = Vec::new();
    for _ in 0..3 {
        let response = client
            .post(format!("http://{addr}/token"))
            .bearer_auth(provider_token(&idp_key, &claims))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(
            body["issued_token_type"],
            "urn:ietf:params:oauth:token-type:jwt"
        );
        assert_eq!(body["expires_in"], 900);
        let session = sessions
            .verify()
            .execute(body["access_token"].as_str().unwrap())
            .unwrap()
            .into_session();
        assert_eq!(session.role(), &UserRole::Admin);
        assert_eq!(session.authenticated_at().unix_timestamp(), START - 120);
        user_ids.push(*session.user_id());
    }
    // One local user for the provider account, one JWKS fetch for all exchanges.
    assert!(user_ids.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(users.len(), 1);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // A refused provider token (wrong azp) is a 401 invalid_token.
    let mut other = claims.clone();
    other["azp"] = json!("https://evil.test");
    let response = client
        .post(format!("http://{addr}/token"))
        .bearer_auth(provider_token(&idp_key, &other))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    // No token at all: 401 without an error code.
    let response = client
        .post(format!("http://{addr}/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_provider_of_the_manager_shares_its_leeway_and_an_exchange_takes_what_it_accepts() {
    let (clock, users, sessions) = manager();
    let idp_key = SigningKey::generate(JwsAlgorithm::Rs256, "idp-1").unwrap();
    let mapping = ClaimMapping::new(
        "public_metadata.role",
        MissingRole::LeastPrivilege(UserRole::User),
    )
    .unwrap();
    let verifier = JwksTokenVerifier::new(
        sessions
            .identity_provider(IDP, TokenProfile::access(mapping).skip_audience_check())
            .static_keys(KeyRing::verify_only(vec![idp_key.verification_key()]).unwrap())
            .build()
            .unwrap(),
    );
    let exchange = sessions.exchange(Arc::new(verifier), users);
    let leeway = lifetimes().leeway().whole_seconds();
    let token = |iat: i64, auth_time: i64, exp: i64| {
        provider_token(
            &idp_key,
            &json!({"iss": IDP, "sub": "user_edge", "iat": iat, "exp": exp, "auth_time": auth_time}),
        )
    };

    // Issued a full leeway ahead of this clock and authenticated a further
    // leeway after that: the provider accepts it, and so does the exchange.
    let edge = token(START + leeway, START + 2 * leeway, START + 600);
    let exchanged = exchange.execute(&edge).await.unwrap();
    let session = sessions
        .verify()
        .execute(exchanged.token.expose_secret())
        .unwrap()
        .into_session();
    assert_eq!(session.authenticated_at().unix_timestamp(), START);
    // A second further ahead, the provider refuses it.
    let ahead = token(START + leeway + 1, START, START + 600);
    assert_eq!(
        exchange.execute(&ahead).await.unwrap_err().code(),
        "issued_in_future"
    );
    // Expired on `exp + leeway`, as sessions are, and not a second before.
    let expiring = token(START - 600, START - 600, START - leeway + 1);
    assert!(exchange.execute(&expiring).await.is_ok());
    clock.advance(1);
    assert_eq!(
        exchange.execute(&expiring).await.unwrap_err().code(),
        "expired"
    );
}
