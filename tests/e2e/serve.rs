//! `tessera serve` (feature `server`): the service in this process over
//! loopback — verdicts for each gateway, sign-in and sign-out, the
//! administrative endpoints and their secret, JWKS, health and metrics —
//! and the binary itself, started, asked and stopped with SIGTERM.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use http::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tessera::UserRole;
use tessera::http::GatewayVerifier;
use tessera::http::gateway::GatewayKey;
use tessera::server::{Server, ServerConfig};

use crate::http_support::client;

pub(crate) const ADMIN_SECRET: &str = "test-only-admin-secret-of-32-bytes-or-more";
pub(crate) const GATEWAY_SECRET: &str = "test-only-gateway-secret-of-32-bytes-or-more";
pub(crate) const COOKIE: &str = "__Host-session";
pub(crate) const ALICE: &str = "0190b5a4-7c2e-7d3a-9f00-00000000a11c";
pub(crate) const BOB: &str = "0190b5a4-7c2e-7d3a-9f00-000000000b0b";

/// The policy behind the gateway in these tests.
const POLICY: &str = r#"
[policy]
default = "deny"
[[policy.routes]]
path = "/"
require = "public"
[[policy.routes]]
path = "/api/*"
require = "authenticated"
[[policy.routes]]
path = "/admin/*"
role = "admin"
browser = true
[[policy.routes]]
path = "/tenants/:tenant/*"
tenant_param = "tenant"
"#;

/// The configuration of a test server: `sections` (whole TOML tables)
/// first, then the gateway secret, the admin secret when `admin`, and the
/// policy.
pub(crate) fn config(admin: bool, sections: &str) -> ServerConfig {
    let admin = if admin {
        format!("[admin]\nsecret = \"{ADMIN_SECRET}\"\n")
    } else {
        String::new()
    };
    let text = format!(
        "{sections}\n[server]\nlisten = \"127.0.0.1:0\"\n[gateway]\nsecret = \"{GATEWAY_SECRET}\"\n{admin}{POLICY}"
    );
    ServerConfig::parse(&text, |_| None).unwrap()
}

/// Starts a server with `config` on a free loopback port, in this process.
pub(crate) async fn start_with(config: &ServerConfig) -> SocketAddr {
    let bound = Server::build(config).await.unwrap().bind().await.unwrap();
    let addr = bound.local_addr().unwrap();
    tokio::spawn(bound.serve(std::future::pending()));
    addr
}

/// Starts the test server, with the admin secret.
pub(crate) async fn start() -> SocketAddr {
    start_with(&config(true, "")).await
}

/// An administrative call with the secret.
pub(crate) async fn admin(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    client()
        .request(method, format!("http://{addr}{path}"))
        .bearer_auth(ADMIN_SECRET)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// A session for `user` with `role` (and `extra` fields): its token and
/// the `Set-Cookie` that carries it.
pub(crate) async fn sign_in(
    addr: SocketAddr,
    user: &str,
    role: &str,
    extra: Value,
) -> (String, String) {
    let mut body = json!({ "user_id": user, "role": role });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let response = admin(addr, Method::POST, "/admin/sessions", &body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = json_of(response).await;
    (body["token"].as_str().unwrap().to_owned(), cookie)
}

/// The verdict of `/verify/nginx` on `method target` carrying `headers`.
async fn nginx_verdict(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client()
        .get(format!("http://{addr}/verify/nginx"))
        .header("x-original-method", method)
        .header("x-original-uri", target);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The exposition of `/metrics`.
pub(crate) async fn metrics_of(addr: SocketAddr) -> String {
    let response = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    response.text().await.unwrap()
}

/// `probe`'s status once it is `want`, asking every 50 ms for up to ten
/// seconds; its last status otherwise.
async fn until<F, Fut>(want: u16, probe: F) -> reqwest::StatusCode
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::StatusCode>,
{
    let mut status = probe().await;
    for _ in 0..200 {
        if status == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        status = probe().await;
    }
    status
}

/// The JSON body of `response`.
pub(crate) async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

fn cookie(token: &str) -> String {
    format!("{COOKIE}={token}")
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// The identity the gateway headers carry, checked as a backend checks
/// them.
pub(crate) fn verified_identity(
    method: &str,
    target: &str,
    headers: &http::HeaderMap,
) -> tessera::http::GatewayIdentity<UserRole> {
    let verifier = GatewayVerifier::new(GatewayKey::new(GATEWAY_SECRET.as_bytes()).unwrap());
    verifier
        .verify::<UserRole>(
            &Method::from_bytes(method.as_bytes()).unwrap(),
            target,
            headers,
        )
        .unwrap()
        .expect("identity headers")
}

#[tokio::test]
async fn serve_verdict_lets_a_session_pass_with_identity_headers_a_backend_can_verify() {
    let addr = start().await;
    let extra = json!({ "capabilities": ["reports:read"], "tenant": "acme" });
    let (token, _) = sign_in(addr, ALICE, "moderator", extra).await;

    let response = nginx_verdict(
        addr,
        "GET",
        "/api/orders?page=2",
        &[("cookie", &cookie(&token))],
    )
    .await;

    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(header(headers, "x-user-id"), Some(ALICE));
    assert_eq!(header(headers, "x-user-role"), Some("moderator"));
    assert_eq!(header(headers, "x-user-capabilities"), Some("reports:read"));
    assert_eq!(header(headers, "x-tenant-id"), Some("acme"));
    let identity = verified_identity("GET", "/api/orders?page=2", headers);
    assert_eq!(identity.user_id().to_string(), ALICE);
    assert_eq!(identity.role(), &UserRole::Moderator);
    assert!(
        headers.get("set-cookie").is_none(),
        "a fresh session is not renewed"
    );
}

#[tokio::test]
async fn serve_verdict_reads_each_gateways_own_headers_and_no_other() {
    let addr = start().await;
    let (token, _) = sign_in(addr, ALICE, "user", json!({})).await;
    let bearer = format!("Bearer {token}");

    // Traefik and Caddy: X-Forwarded-Method and X-Forwarded-Uri.
    let forwarded = client()
        .get(format!("http://{addr}/verify/forwarded"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/api/orders")
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 200);
    assert_eq!(header(forwarded.headers(), "x-user-id"), Some(ALICE));

    // Envoy: the original path after the prefix, the original method.
    let envoy = client()
        .delete(format!("http://{addr}/verify/envoy/api/orders/7?force=1"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(envoy.status(), 200);
    verified_identity("DELETE", "/api/orders/7?force=1", envoy.headers());

    // The same route is denied by the policy outside /api: the path read is
    // the original one, not the verdict endpoint's.
    let denied = nginx_verdict(addr, "GET", "/elsewhere", &[("authorization", &bearer)]).await;
    assert_eq!(denied.status(), 403);

    // nginx's endpoint never reads Traefik's headers, which a client could
    // send through nginx: without its own, it refuses to judge.
    let confused = client()
        .get(format!("http://{addr}/verify/nginx"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(confused.status(), 400);
    let body: Value = json_of(confused).await;
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("x-original-method")
    );
}

#[tokio::test]
async fn serve_verdict_refuses_guests_with_a_challenge_or_a_sign_in_redirect() {
    let addr = start().await;

    let api = nginx_verdict(addr, "GET", "/api/orders", &[]).await;
    assert_eq!(api.status(), 401);
    assert_eq!(header(api.headers(), "www-authenticate"), Some("Bearer"));

    // Browser routes: a redirect where the gateway passes one (Traefik,
    // Caddy, Envoy), a 401 carrying it for nginx's snippet.
    let browser = client()
        .get(format!("http://{addr}/verify/forwarded"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/admin/users")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), 303);
    let login = "/login?return_to=%2Fadmin%2Fusers";
    assert_eq!(header(browser.headers(), "location"), Some(login));
    let nginx = nginx_verdict(addr, "GET", "/admin/users", &[]).await;
    assert_eq!(nginx.status(), 401);
    assert_eq!(header(nginx.headers(), "location"), Some(login));

    // A public route lets a guest through, with no identity at all.
    let public = nginx_verdict(addr, "GET", "/", &[]).await;
    assert_eq!(public.status(), 200);
    assert!(public.headers().get("x-user-id").is_none());

    // A bad token: 401 invalid_token, the cookie cleared.
    let bad = nginx_verdict(addr, "GET", "/api/x", &[("cookie", &cookie("not.a.token"))]).await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        header(bad.headers(), "www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert!(
        header(bad.headers(), "set-cookie")
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn serve_verdict_refuses_unsafe_cross_origin_browser_requests() {
    let addr = start().await;
    let (token, _) = sign_in(addr, ALICE, "admin", json!({})).await;
    let browser = |origin: &'static str, site: &'static str| {
        let token = token.clone();
        async move {
            nginx_verdict(
                addr,
                "POST",
                "/api/orders",
                &[
                    ("cookie", &cookie(&token)),
                    ("origin", origin),
                    ("sec-fetch-site", site),
                    ("x-forwarded-host", "shop.example"),
                ],
            )
            .await
            .status()
        }
    };
    assert_eq!(browser("https://evil.example", "cross-site").await, 403);
    assert_eq!(browser("https://shop.example", "same-origin").await, 200);
}

#[tokio::test]
async fn serve_admin_endpoints_are_not_mounted_without_a_secret() {
    let addr = start_with(&config(false, "")).await;
    for path in [
        "/admin/sessions",
        "/admin/force-logout",
        "/admin/revoke-session",
    ] {
        let response = admin(addr, Method::POST, path, &json!({ "everyone": true })).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let user = admin(
        addr,
        Method::PUT,
        &format!("/admin/users/{ALICE}"),
        &json!({}),
    )
    .await;
    assert_eq!(user.status(), 404);
}

#[tokio::test]
async fn serve_admin_endpoints_refuse_a_missing_or_wrong_secret() {
    let addr = start().await;
    let url = format!("http://{addr}/admin/force-logout");
    let body = json!({ "everyone": true });
    let missing = client()
        .post(&url)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = client()
        .post(&url)
        .bearer_auth(format!("{ADMIN_SECRET}x"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        header(wrong.headers(), "www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let prefix = client()
        .post(&url)
        .bearer_auth(&ADMIN_SECRET[..20])
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(prefix.status(), 401);
}

#[tokio::test]
async fn serve_force_logout_of_a_user_a_tenant_or_everyone_refuses_their_sessions() {
    let addr = start().await;
    let scopes = [
        json!({ "user_id": ALICE }),
        json!({ "tenant": "acme" }),
        json!({ "everyone": true }),
    ];
    for scope in scopes {
        // Watermarks cover tokens issued in their second: sign in after the
        // previous one's.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (alice, _) = sign_in(addr, ALICE, "user", json!({ "tenant": "acme" })).await;
        let (bob, _) = sign_in(addr, BOB, "user", json!({})).await;
        let verdict = |token: String| async move {
            nginx_verdict(addr, "GET", "/api/x", &[("cookie", &cookie(&token))])
                .await
                .status()
        };
        assert_eq!(verdict(alice.clone()).await, 200);

        let recorded = admin(addr, Method::POST, "/admin/force-logout", &scope).await;
        assert_eq!(recorded.status(), 200, "{scope}");

        assert_eq!(verdict(alice).await, 401, "{scope}");
        let bob_expected = if scope["everyone"] == true { 401 } else { 200 };
        assert_eq!(verdict(bob).await, bob_expected, "{scope}");
    }
    let bad = admin(
        addr,
        Method::POST,
        "/admin/force-logout",
        &json!({ "user_id": ALICE, "everyone": true }),
    )
    .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn serve_permissions_changed_rotates_sessions_onto_their_new_claims() {
    let addr = start().await;
    let (token, _) = sign_in(addr, ALICE, "user", json!({})).await;

    let changed = admin(
        addr,
        Method::PUT,
        &format!("/admin/users/{ALICE}"),
        &json!({ "role": "admin", "capabilities": ["users:manage"] }),
    )
    .await;
    assert_eq!(changed.status(), 200);
    // The change covers tokens issued in its second, rotated ones too:
    // rotate after it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // By cookie: the renewed cookie comes back with the verdict.
    let by_cookie =
        nginx_verdict(addr, "GET", "/admin/users", &[("cookie", &cookie(&token))]).await;
    assert_eq!(by_cookie.status(), 200);
    assert_eq!(header(by_cookie.headers(), "x-user-role"), Some("admin"));
    let renewed = header(by_cookie.headers(), "set-cookie").unwrap();
    assert!(renewed.starts_with(&format!("{COOKIE}=")), "{renewed}");
    assert!(!renewed.contains(&token));
    assert_eq!(
        header(by_cookie.headers(), "cache-control"),
        Some("no-store")
    );

    // By bearer token: the renewed token in x-session-token.
    let bearer = format!("Bearer {token}");
    let by_bearer = nginx_verdict(addr, "GET", "/api/me", &[("authorization", &bearer)]).await;
    assert_eq!(by_bearer.status(), 200);
    let new_token = header(by_bearer.headers(), "x-session-token")
        .unwrap()
        .to_owned();
    let again = nginx_verdict(
        addr,
        "GET",
        "/admin/x",
        &[("authorization", &format!("Bearer {new_token}"))],
    )
    .await;
    assert_eq!(again.status(), 200);
    assert!(again.headers().get("x-session-token").is_none());
    let metrics = metrics_of(addr).await;
    assert!(
        metrics.contains("tessera_rotations_total 2\n"),
        "one by cookie, one by bearer: {metrics}"
    );
}

#[tokio::test]
async fn serve_sign_out_refuses_other_origins_then_revokes_the_session_and_clears_the_cookie() {
    let addr = start().await;
    let (token, set_cookie) = sign_in(addr, ALICE, "user", json!({})).await;
    assert!(set_cookie.starts_with(&format!("{COOKIE}={token}")));
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("Secure"));

    // A form from another site cannot sign the user out.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
    ] {
        let forged = client()
            .post(format!("http://{addr}/session/sign-out"))
            .header("cookie", cookie(&token))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "{name}: {value}");
        assert!(header(forged.headers(), "set-cookie").is_none());
        assert_eq!(
            forged.text().await.unwrap(),
            r#"{"error":"cross_origin_request"}"#
        );
    }
    let still = nginx_verdict(addr, "GET", "/api/x", &[("cookie", &cookie(&token))]).await;
    assert_eq!(still.status(), 200, "still signed in");

    let out = client()
        .post(format!("http://{addr}/session/sign-out"))
        .header("cookie", cookie(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        header(out.headers(), "set-cookie")
            .unwrap()
            .contains("Max-Age=0")
    );

    let after = nginx_verdict(addr, "GET", "/api/x", &[("cookie", &cookie(&token))]).await;
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn serve_sign_in_refuses_bad_input_with_a_message_naming_the_field() {
    let addr = start().await;
    let cases = [
        (json!({ "user_id": ALICE, "role": "emperor" }), "role"),
        (json!({ "user_id": "alice", "role": "user" }), "user_id"),
        (json!({ "role": "user" }), "user_id"),
        (
            json!({ "user_id": ALICE, "role": "user", "tenant": "" }),
            "tenant",
        ),
        (
            json!({ "user_id": ALICE, "role": "user", "rank": 1 }),
            "rank",
        ),
    ];
    for (body, field) in cases {
        let response = admin(addr, Method::POST, "/admin/sessions", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = json_of(response).await;
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let not_json = client()
        .post(format!("http://{addr}/admin/sessions"))
        .bearer_auth(ADMIN_SECRET)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
}

#[tokio::test]
async fn serve_sign_in_of_a_disabled_user_records_them_and_issues_no_session() {
    let addr = start().await;
    let body = json!({ "user_id": ALICE, "role": "user", "enabled": false });
    let response = admin(addr, Method::POST, "/admin/sessions", &body).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("set-cookie").is_none());
    let answer: Value = json_of(response).await;
    assert_eq!(answer["error"], "forbidden");
    assert!(answer.get("token").is_none(), "{answer}");
    let enabled = json!({ "user_id": ALICE, "role": "user" });
    let response = admin(addr, Method::POST, "/admin/sessions", &enabled).await;
    assert_eq!(response.status(), 201, "enabled again, signed in");
}

#[tokio::test]
async fn serve_jwks_publishes_public_keys_and_never_a_symmetric_one() {
    let jwks = |addr: SocketAddr| async move {
        let response = client()
            .get(format!("http://{addr}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        json_of(response).await
    };
    let eddsa = jwks(start().await).await;
    let keys = eddsa["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert!(keys[0].get("d").is_none(), "no private member");

    let hs256 = start_with(&config(true, "[keys]\nalgorithm = \"HS256\"\n")).await;
    assert_eq!(jwks(hs256).await, json!({ "keys": [] }));
    // The HS256 server works all the same.
    let (token, _) = sign_in(hs256, ALICE, "user", json!({})).await;
    let verdict = nginx_verdict(hs256, "GET", "/api/x", &[("cookie", &cookie(&token))]).await;
    assert_eq!(verdict.status(), 200);
}

#[tokio::test]
async fn serve_reports_liveness_readiness_and_metrics() {
    let addr = start().await;
    let get = |path: &'static str| async move {
        client()
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(get("/healthz").await.status(), 200);
    assert_eq!(get("/readyz").await.status(), 200);

    nginx_verdict(addr, "GET", "/api/x", &[]).await;
    nginx_verdict(addr, "GET", "/api/x", &[]).await;
    nginx_verdict(addr, "GET", "/", &[]).await;
    let metrics = get("/metrics").await;
    assert!(
        header(metrics.headers(), "content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            "tessera_admissions_total{outcome=\"refused\",reason=\"unauthenticated\"} 2\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("tessera_admissions_total{outcome=\"guest\",reason=\"ok\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("tessera_revocation_state_trusted 1\n"),
        "{text}"
    );
}

/// Readiness follows the revocation state: with the database cut off past
/// the staleness bound, `/readyz` answers 503 and verdicts fail closed
/// (503, never a pass); restored, both recover.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn serve_is_not_ready_and_fails_closed_while_the_revocation_state_is_untrusted() {
    let Some(url) = crate::support::database_url() else {
        return;
    };
    let mut url = reqwest::Url::parse(&url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = crate::proxy::Proxy::to(target).await;
    url.set_port(Some(proxy.addr().port())).unwrap();
    let sections = format!("[postgres]\nurl = \"{url}\"\nstaleness_bound_seconds = 1\n");
    let addr = start_with(&config(true, &sections)).await;
    let user = uuid::Uuid::now_v7().to_string();
    let (token, _) = sign_in(addr, &user, "user", json!({})).await;
    let ready = || async move {
        client()
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
    };
    let verdict = || {
        let token = token.clone();
        async move {
            nginx_verdict(addr, "GET", "/api/x", &[("cookie", &cookie(&token))])
                .await
                .status()
        }
    };
    assert_eq!(ready().await, 200);
    assert_eq!(verdict().await, 200);

    proxy.cut();
    let status = until(503, ready).await;
    assert_eq!(status, 503, "not ready past the staleness bound");
    assert_eq!(verdict().await, 503, "a verdict fails closed");
    let out = client()
        .post(format!("http://{addr}/session/sign-out"))
        .header("cookie", cookie(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 503, "a sign-out that cannot be checked");
    assert!(
        header(out.headers(), "set-cookie").is_none(),
        "the cookie is kept: the session still stands"
    );

    proxy.restore();
    assert_eq!(until(200, ready).await, 200, "ready again once in sync");
    assert_eq!(verdict().await, 200, "the session stood");
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// The `kid`s `/.well-known/jwks.json` publishes.
async fn published_kids(addr: SocketAddr) -> Vec<String> {
    let response = client()
        .get(format!("http://{addr}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let jwks = json_of(response).await;
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

/// A key directory on a 30-day schedule, over HTTP on a pinned clock: the
/// next key is published a day ahead while the old one signs, signs from
/// its activation while tokens of the old one still pass, and the old key
/// leaves the JWKS (and the directory) once its last token has expired.
#[tokio::test]
async fn serve_key_schedule_publishes_ahead_switches_and_retires_over_http() {
    use crate::support::{ManualClock, START};
    const DAY: i64 = 86_400;
    let dir = std::env::temp_dir().join(format!(
        "tessera-serve-schedule-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    let keys = format!(
        "[keys]\ndir = \"{}\"\nrotate_every_seconds = {}\n",
        dir.display(),
        30 * DAY
    );
    let clock = ManualClock::starting_at(START);
    let server = Server::build_with_clock(&config(true, &keys), clock.clone())
        .await
        .unwrap();
    let bound = server.clone().bind().await.unwrap();
    let addr = bound.local_addr().unwrap();
    tokio::spawn(bound.serve(std::future::pending()));
    let passes = |token: String| async move {
        let verdict = nginx_verdict(addr, "GET", "/api/x", &[("cookie", &cookie(&token))]).await;
        verdict.status() == 200
    };

    let (first, _) = sign_in(addr, ALICE, "user", json!({})).await;
    let old = kid_of(&first);
    assert_eq!(published_kids(addr).await, std::slice::from_ref(&old));

    // The first key activated at the start of the 30-day period; a day
    // (and a check) before the next period, the next key is published while
    // the old one signs.
    let next_period = START - START.rem_euclid(30 * DAY) + 30 * DAY;
    clock.advance(next_period - DAY - 60 - START);
    server.apply_key_schedule().unwrap();
    let published = published_kids(addr).await;
    assert_eq!(published.len(), 2, "{published:?}");
    let next = published.iter().find(|kid| **kid != old).unwrap().clone();
    let (before, _) = sign_in(addr, ALICE, "user", json!({})).await;
    assert_eq!(kid_of(&before), old);

    // A minute before the switch, a token of the old key...
    clock.advance(DAY);
    server.apply_key_schedule().unwrap();
    let (last_of_old, _) = sign_in(addr, ALICE, "user", json!({})).await;
    assert_eq!(kid_of(&last_of_old), old);
    // ...passes after it, when the next key signs.
    clock.advance(60);
    server.apply_key_schedule().unwrap();
    let (first_of_next, _) = sign_in(addr, ALICE, "user", json!({})).await;
    assert_eq!(kid_of(&first_of_next), next);
    assert!(
        passes(last_of_old.clone()).await,
        "an old key's token passes"
    );
    assert!(passes(first_of_next).await);
    assert_eq!(published_kids(addr).await.len(), 2);

    // Its last token expired (15 minutes and 30 seconds after it stopped
    // signing, and two checks' margin), the old key is gone from the JWKS,
    // the ring and the disk.
    clock.advance(1051);
    server.apply_key_schedule().unwrap();
    assert_eq!(published_kids(addr).await, std::slice::from_ref(&next));
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "the retired key's file is deleted");
    let (fresh, _) = sign_in(addr, ALICE, "user", json!({})).await;
    assert!(passes(fresh).await);

    // A directory that can no longer be read: the schedule fails, is
    // counted, and the keys in use stay.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "not a directory").unwrap();
    assert!(server.apply_key_schedule().is_err());
    let (still, _) = sign_in(addr, ALICE, "user", json!({})).await;
    assert_eq!(kid_of(&still), next);
    assert!(passes(still).await);
    let metrics = metrics_of(addr).await;
    assert!(
        metrics.contains("tessera_signing_key_schedule_failures_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_signing_key_rotations_total 1\n"),
        "{metrics}"
    );
    std::fs::remove_file(dir).unwrap();
}

/// The binary: `tessera serve --listen 127.0.0.1:0` prints its address and
/// endpoints, takes its admin secret from the environment, serves, and
/// shuts down gracefully on SIGTERM.
#[tokio::test]
async fn serve_binary_prints_its_address_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_ADMIN_SECRET", ADMIN_SECRET)
        .env("TESSERA_LOG", "debug")
        .env("TESSERA_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("tessera serve listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    let mut endpoints = String::new();
    for _ in 0..13 {
        stdout.read_line(&mut endpoints).unwrap();
    }
    assert!(
        endpoints.contains(&format!("{url}/verify/nginx")),
        "{endpoints}"
    );
    assert!(
        endpoints.contains(&format!("{url}/admin/sessions")),
        "{endpoints}"
    );

    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    assert_eq!(
        client()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (token, _) = sign_in(addr, ALICE, "user", json!({})).await;
    let verdict = nginx_verdict(addr, "GET", "/anything", &[("cookie", &cookie(&token))]).await;
    assert_eq!(
        verdict.status(),
        200,
        "the embedded default: every path needs a session"
    );
    let forged = format!("{token}x");
    let refused = nginx_verdict(addr, "GET", "/anything", &[("cookie", &cookie(&forged))]).await;
    assert_eq!(refused.status(), 401);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("shut down"), "{rest}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains(&token), "a token was logged");
    // One JSON object per line, the refusal's reason among them.
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line["level"] == "DEBUG" && line["fields"].is_object()),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_with_a_short_admin_secret_or_a_bad_policy() {
    let short = ServerConfig::parse("[admin]\nsecret = \"short\"\n", |_| None).unwrap();
    let error = Server::build(&short).await.unwrap_err();
    assert!(error.to_string().contains("admin.secret"), "{error}");
    let bad = ServerConfig::parse(
        "[[policy.routes]]\npath = \"admin\"\nrequire = \"public\"\n",
        |_| None,
    )
    .unwrap();
    let error = Server::build(&bad).await.unwrap_err();
    assert!(error.to_string().contains("policy.routes"), "{error}");
}

/// A fleet: two instances on one PostgreSQL database and one key
/// directory share sessions, and a force-logout on one refuses the session
/// on the other.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn serve_instances_on_postgres_share_sessions_and_force_logout() {
    let Some(url) = crate::support::database_url() else {
        return;
    };
    let keys = std::env::temp_dir().join(format!("tessera-serve-fleet-{}", std::process::id()));
    let sections = format!(
        "[postgres]\nurl = \"{url}\"\n[keys]\ndir = \"{}\"\n",
        keys.display()
    );
    let first = start_with(&config(true, &sections)).await;
    let second = start_with(&config(true, &sections)).await;
    // A user of this test only: other tests share the database.
    let user = uuid::Uuid::now_v7().to_string();
    let (token, _) = sign_in(first, &user, "user", json!({})).await;
    let verdict = |addr| {
        let token = token.clone();
        async move {
            nginx_verdict(addr, "GET", "/api/x", &[("cookie", &cookie(&token))])
                .await
                .status()
        }
    };
    assert_eq!(
        verdict(second).await,
        200,
        "signed in on one, valid on the other"
    );

    let logout = admin(
        first,
        Method::POST,
        "/admin/force-logout",
        &json!({ "user_id": user }),
    )
    .await;
    assert_eq!(logout.status(), 200);
    let status = until(401, || verdict(second)).await;
    assert_eq!(status, 401, "the force-logout reached the other instance");
    let metrics = metrics_of(second).await;
    assert!(
        metrics.contains("tessera_revocation_sync_lag_seconds "),
        "{metrics}"
    );
    let _ = std::fs::remove_dir_all(keys);
}
