//! `tessera serve` with an identity provider (`[provider]`, `[webhooks]`):
//! a provider on loopback serving its OpenID configuration and keys, whose
//! access and ID tokens `POST /session/exchange` swaps for sessions the
//! verdict admits, machine tokens and unverified emails refused with their
//! codes, and whose signed user webhooks demote and delete users through
//! `POST /webhooks/users`; the key fetches counted in `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tessera::infrastructure::jose;
use tessera::{JwsAlgorithm, KeyRing, SigningKey};

use crate::http_support::client;
use crate::idp_webhooks::{SECRET, deletion_event, deliver, sign, user_event};
use crate::serve::{config, json_of, metrics_of, start_with};

const API: &str = "https://api.test";
const CLIENT: &str = "web-client";

/// A provider on loopback: its OpenID configuration names its key set;
/// both count their requests.
struct Provider {
    issuer: String,
    key: SigningKey,
    key_set_requests: Arc<AtomicUsize>,
}

impl Provider {
    async fn spawn() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let key = SigningKey::generate(JwsAlgorithm::Es256, "idp-1").unwrap();
        let jwks = KeyRing::verify_only(vec![key.verification_key()])
            .unwrap()
            .to_public_jwk_set()
            .unwrap();
        let configuration =
            json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") }).to_string();
        let key_set_requests = Arc::new(AtomicUsize::new(0));
        let counted = key_set_requests.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { configuration }),
            )
            .route(
                "/jwks",
                get(move || async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    jwks
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            issuer,
            key,
            key_set_requests,
        }
    }

    /// A token of this provider: `typ` in the header (none when `None`),
    /// `claims` plus `iss`, `iat` and `exp` around now.
    fn token(&self, typ: Option<&str>, claims: Value) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = claims;
        claims["iss"] = json!(self.issuer);
        claims["iat"] = json!(now - 5);
        claims["exp"] = json!(now + 300);
        let header = match typ {
            Some(typ) => jose::encode_header(&self.key, typ),
            None => crate::support::b64(br#"{"alg":"ES256","kid":"idp-1"}"#),
        };
        jose::sign_compact(&self.key, &header, claims.to_string().as_bytes()).unwrap()
    }
}

/// The configuration: the provider by its issuer alone, an access-token
/// and an ID-token profile, and its webhooks.
fn sections(issuer: &str) -> String {
    format!(
        r#"
[provider]
issuer = "{issuer}"
algorithms = ["ES256"]
roles = {{ "org:admin" = "admin", "member" = "user" }}

[[provider.profiles]]
token = "access"
audiences = ["{API}"]
typ = "at+jwt"

[[provider.profiles]]
token = "id"
audiences = ["{CLIENT}"]
require_values = {{ email_verified = true }}

[webhooks]
secret = "whsec_{secret}"
role_claim = "public_metadata.role"
"#,
        secret = STANDARD.encode(SECRET)
    )
}

/// `POST /session/exchange` with `token`: the status and the JSON body.
async fn exchange(addr: SocketAddr, token: &str) -> (u16, Value) {
    let response = client()
        .post(format!("http://{addr}/session/exchange"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json_of(response).await)
}

/// The nginx verdict on `GET target` with `token` as a bearer token: the
/// status and the role header.
async fn verdict(addr: SocketAddr, target: &str, token: &str) -> (u16, Option<String>) {
    let response = client()
        .get(format!("http://{addr}/verify/nginx"))
        .header("x-original-method", "GET")
        .header("x-original-uri", target)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let role = response
        .headers()
        .get("x-user-role")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), role)
}

#[tokio::test]
async fn serve_exchanges_a_discovered_providers_tokens_and_applies_its_webhooks() {
    let provider = Provider::spawn().await;
    let addr = start_with(&config(true, &sections(&provider.issuer))).await;

    // An access token of an admin: a session the verdict admits as admin.
    let access = provider.token(
        Some("at+jwt"),
        json!({ "sub": "user_1", "aud": API, "client_id": CLIENT, "role": "org:admin" }),
    );
    let (status, body) = exchange(addr, &access).await;
    assert_eq!(status, 200, "{body}");
    let session = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        verdict(addr, "/admin/panel", &session).await,
        (200, Some("admin".to_owned()))
    );

    // An ID token of the same account, its email verified: the same user.
    let id = |verified: bool| {
        provider.token(
            None,
            json!({
                "sub": "user_1", "aud": CLIENT, "azp": CLIENT, "role": "org:admin",
                "email": "ada@example.com", "email_verified": verified,
            }),
        )
    };
    let (status, body) = exchange(addr, &id(true)).await;
    assert_eq!(status, 200, "{body}");
    // Unverified email, a machine's token, a role nobody mapped, no token.
    let (status, body) = exchange(addr, &id(false)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("required_claim"))
    );
    let machine = provider.token(
        Some("at+jwt"),
        json!({ "sub": CLIENT, "aud": API, "client_id": CLIENT }),
    );
    let (status, body) = exchange(addr, &machine).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("machine_token"))
    );
    let emperor = provider.token(
        Some("at+jwt"),
        json!({ "sub": "user_2", "aud": API, "client_id": CLIENT, "role": "emperor" }),
    );
    assert_eq!(exchange(addr, &emperor).await.0, 401);
    let no_token = client()
        .post(format!("http://{addr}/session/exchange"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);

    // The provider demotes the user: the session rotates onto `user` and
    // the admin route refuses it.
    let hooks = format!("http://{addr}/webhooks/users");
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let now = now_ms / 1000;
    let demoted = sign(
        SECRET,
        "msg_1",
        now,
        &user_event("user.updated", "user_1", "member", now_ms),
    );
    assert_eq!(deliver(&client(), &hooks, &demoted).await, 204);
    assert_eq!(verdict(addr, "/admin/panel", &session).await.0, 403);
    let (status, role) = verdict(addr, "/api/orders", &session).await;
    assert_eq!((status, role.as_deref()), (200, Some("user")));
    // A forged delivery changes nothing.
    let forged = sign(
        b"a-secret-the-endpoint-never-knew",
        "msg_2",
        now,
        &deletion_event("user_1", now_ms + 1),
    );
    assert_eq!(deliver(&client(), &hooks, &forged).await, 401);
    assert_eq!(verdict(addr, "/api/orders", &session).await.0, 200);
    // The provider deletes the user: their session is refused, and their
    // still-valid access token exchanges for nothing.
    let deleted = sign(SECRET, "msg_3", now, &deletion_event("user_1", now_ms + 1));
    assert_eq!(deliver(&client(), &hooks, &deleted).await, 204);
    assert_eq!(verdict(addr, "/api/orders", &session).await.0, 401);
    assert_eq!(exchange(addr, &access).await.0, 401);

    // The configuration and the keys were fetched once, and counted.
    assert_eq!(provider.key_set_requests.load(Ordering::SeqCst), 1);
    let metrics = metrics_of(addr).await;
    let fetched = format!(
        "tessera_provider_key_fetches_total{{issuer=\"{}\",outcome=\"ok\"}} 1\n",
        provider.issuer
    );
    assert!(metrics.contains(&fetched), "{metrics}");
}

#[tokio::test]
async fn serve_without_a_provider_mounts_neither_endpoint_and_refuses_webhooks_alone() {
    let addr = start_with(&config(true, "")).await;
    for path in ["/session/exchange", "/webhooks/users"] {
        let response = client()
            .post(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let hooks_alone = format!(
        "[webhooks]\nsecret = \"whsec_{}\"\n",
        STANDARD.encode(SECRET)
    );
    let error = tessera::server::Server::build(&config(true, &hooks_alone))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("needs a [provider]"), "{error}");
    let bad_profile = "[provider]\nissuer = \"https://idp.test\"\n[[provider.profiles]]\ntoken = \"refresh\"\naudiences = [\"x\"]\n";
    let error = tessera::server::Server::build(&config(true, bad_profile))
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("provider.profiles[0]: token"),
        "{error}"
    );
}

/// Every endpoint `ENDPOINTS` lists (the banner) is routed when its section
/// is configured, and none is without it.
#[tokio::test]
async fn serve_mounts_exactly_the_endpoints_it_lists() {
    use tessera::server::{ENDPOINTS, Mounted};

    let everything = start_with(&config(true, &sections("https://idp.test"))).await;
    let nothing = start_with(&config(false, "")).await;
    for (method, path, mounted) in ENDPOINTS {
        let path = path
            .replace("<original path>", "x")
            .replace("<user id>", "0190b5a4-7c2e-7d3a-9f00-00000000a11c");
        let method = if method == "ANY" { "GET" } else { method };
        let ask = |addr: SocketAddr| {
            let url = format!("http://{addr}{path}");
            async move {
                client()
                    .request(http::Method::from_bytes(method.as_bytes()).unwrap(), url)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_ne!(ask(everything).await, 404, "{method} {path}");
        let unconfigured = ask(nothing).await;
        match mounted {
            Mounted::Always => assert_ne!(unconfigured, 404, "{method} {path}"),
            _ => assert_eq!(unconfigured, 404, "{method} {path} without its section"),
        }
    }
}
