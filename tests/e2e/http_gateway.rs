//! Gateway mode over real sockets: a client, the tessera gateway (the layer
//! in gateway mode in front of a reverse proxy), and a service behind it
//! that trusts only signed identity headers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tessera::application::ports::Clock;
use tessera::axum::GatewayIdentity;
use tessera::domain::{Requirement, RoutePolicy, RouteRule};
use tessera::http::gateway::{GatewayKey, GatewayVerifier};
use tessera::{JwsAlgorithm, KeyRing, UserRole};

use crate::http_support::{Reply, Spec, TestApp, identity_headers, send_to, serve};
use crate::support::{ManualClock, START, alice, signing_key, spawn_app};

const SECRET: &[u8] = b"gateway-and-services-shared-secret!";

/// The service behind the gateway: it knows users only by the gateway's
/// signed headers.
fn service(clock: Arc<dyn Clock>) -> Router {
    service_with(GatewayKey::new(SECRET).unwrap(), clock)
}

/// The service, verifying with `key`.
fn service_with(key: GatewayKey, clock: Arc<dyn Clock>) -> Router {
    let verifier = GatewayVerifier::new(key).with_clock(clock);
    Router::new()
        .route("/whoami", get(whoami))
        .route("/orders", get(orders))
        .with_state(verifier)
}

async fn whoami(identity: Option<GatewayIdentity<UserRole>>, headers: HeaderMap) -> String {
    let who = identity.map_or_else(
        || "guest".to_owned(),
        |id| {
            format!(
                "{} {} {}",
                id.user_id(),
                id.role(),
                id.tenant().map_or("-", |t| t.as_str())
            )
        },
    );
    format!("{who}\n{}", identity_headers(headers).await)
}

async fn orders(identity: GatewayIdentity<UserRole>) -> String {
    format!("orders of {}", identity.user_id())
}

/// The gateway's proxy: forwards method, path, query and headers as is.
async fn proxy(State(upstream): State<SocketAddr>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut forwarded = crate::http_support::client()
        .request(parts.method.clone(), format!("http://{upstream}{target}"));
    for (name, value) in &parts.headers {
        if name != http::header::HOST {
            forwarded = forwarded.header(name, value);
        }
    }
    let answer = forwarded.send().await.unwrap();
    let status = answer.status();
    let body = answer.text().await.unwrap();
    (status, body).into_response()
}

/// A gateway whose own handler at `/local` shows what it received.
fn gateway(app: crate::support::App, upstream: SocketAddr) -> Router {
    gateway_with(app, upstream, GatewayKey::new(SECRET).unwrap())
}

/// The gateway, signing with `key`.
fn gateway_with(app: crate::support::App, upstream: SocketAddr, key: GatewayKey) -> Router {
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/whoami", Requirement::Public))
        .rule(RouteRule::new("/local", Requirement::Public))
        .rule(RouteRule::new("/orders", Requirement::Authenticated))
        .build()
        .unwrap();
    let layer = app
        .sessions
        .session_layer(policy)
        .gateway(key)
        .build()
        .unwrap();
    Router::new()
        .route("/whoami", get(proxy))
        .route("/orders", get(proxy))
        .route(
            "/local",
            get(|headers: HeaderMap| async move { identity_headers(headers).await }),
        )
        .with_state(upstream)
        .layer(layer)
}

struct Setup {
    app: TestApp,
    gateway: SocketAddr,
    service: SocketAddr,
}

/// A service whose clock reads `skew` seconds after the gateway's.
async fn setup(skew: i64) -> Setup {
    let app = spawn_app(KeyRing::new(signing_key(JwsAlgorithm::EdDsa, "k1")));
    let handle = TestApp {
        sessions: app.sessions.clone(),
        clock: app.clock.clone(),
        directory: app.directory.clone(),
    };
    let service = serve(service(ManualClock::starting_at(START + skew))).await;
    let gateway = serve(gateway(app, service)).await;
    Setup {
        app: handle,
        gateway,
        service,
    }
}

const SPOOFS: [(&str, &str); 6] = [
    ("X-User-Role", "admin"),
    ("x-user-role", "admin"),
    ("X-USER-ID", "0190b5a4-7c2e-7d3a-9f00-0000000000ff"),
    ("X-User_Role", "admin"),
    ("X-Tenant-Id", "globex"),
    ("X-User-Signature", "forged"),
];

fn spoofed(mut spec: Spec) -> Spec {
    for (name, value) in SPOOFS {
        spec = spec.header(name, value);
    }
    spec
}

/// The identity headers a service echoed, as headers again.
fn captured(reply: &Reply) -> Vec<(HeaderName, HeaderValue)> {
    reply
        .body
        .lines()
        .skip(1)
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap();
            (
                HeaderName::try_from(name).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}

fn with_headers(mut spec: Spec, headers: &[(HeaderName, HeaderValue)]) -> Spec {
    spec.headers.extend(headers.iter().cloned());
    spec
}

#[tokio::test]
async fn a_guests_spoofed_identity_headers_never_reach_the_service() {
    let s = setup(0).await;
    let reply = send_to(s.gateway, &spoofed(Spec::get("/whoami"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "guest\n", "no identity header got through");
}

#[tokio::test]
async fn a_signed_in_user_cannot_raise_their_role_with_spoofed_headers() {
    let s = setup(0).await;
    let token = s.app.alice_token();
    let reply = send_to(s.gateway, &spoofed(Spec::get("/whoami").bearer(&token))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut lines = reply.body.lines();
    assert_eq!(
        lines.next(),
        Some(format!("{} user acme", alice()).as_str())
    );
    let headers: Vec<&str> = lines.collect();
    assert!(headers.contains(&"x-user-role=user"));
    assert!(headers.contains(&"x-tenant-id=acme"));
    assert_eq!(
        headers
            .iter()
            .filter(|h| h.starts_with("x-user-role="))
            .count(),
        1
    );
    assert!(
        !headers
            .iter()
            .any(|h| h.contains("admin") || h.contains("globex") || h.contains("forged"))
    );
    assert!(!headers.iter().any(|h| h.starts_with("x-user_role")));
}

#[tokio::test]
async fn the_gateways_own_handlers_never_see_a_clients_identity_headers() {
    let s = setup(0).await;
    let guest = send_to(s.gateway, &spoofed(Spec::get("/local"))).await;
    assert_eq!(guest.body, "");
    let token = s.app.alice_token();
    let user = send_to(s.gateway, &spoofed(Spec::get("/local").bearer(&token))).await;
    assert!(user.body.contains("x-user-role=user"));
    assert!(!user.body.contains("admin"));
}

#[tokio::test]
async fn a_request_that_bypasses_the_gateway_is_refused() {
    let s = setup(0).await;
    let forged = send_to(s.service, &spoofed(Spec::get("/orders"))).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.body, "{\"error\":\"untrusted_identity\"}");
    let unsigned = send_to(
        s.service,
        &Spec::get("/whoami").header("x-user-role", "admin"),
    )
    .await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    let nothing = send_to(s.service, &Spec::get("/orders")).await;
    assert_eq!(nothing.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_signed_request_goes_through_and_its_replay_is_refused() {
    let s = setup(0).await;
    let token = s.app.alice_token();
    let first = send_to(s.gateway, &Spec::get("/whoami").bearer(&token)).await;
    assert_eq!(first.status, StatusCode::OK);
    let signed = captured(&first);
    assert!(signed.iter().any(|(name, _)| name == "x-user-signature"));

    let replay = send_to(s.service, &with_headers(Spec::get("/whoami"), &signed)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "replayed");
    assert_eq!(replay.body, "{\"error\":\"untrusted_identity\"}");

    // The same request through the gateway again is a new signature.
    let again = send_to(s.gateway, &Spec::get("/whoami").bearer(&token)).await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn a_signature_moved_to_another_path_or_with_a_changed_value_is_refused() {
    let s = setup(0).await;
    let token = s.app.alice_token();
    let first = send_to(s.gateway, &Spec::get("/whoami").bearer(&token)).await;
    let signed = captured(&first);

    let moved = send_to(s.service, &with_headers(Spec::get("/orders"), &signed)).await;
    assert_eq!(moved.status, StatusCode::UNAUTHORIZED);

    let raised: Vec<_> = signed
        .iter()
        .map(|(name, value)| {
            if name == "x-user-role" {
                (name.clone(), HeaderValue::from_static("admin"))
            } else {
                (name.clone(), value.clone())
            }
        })
        .collect();
    let forged = send_to(s.service, &with_headers(Spec::get("/whoami"), &raised)).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_stale_signature_is_refused() {
    let s = setup(31).await;
    let token = s.app.alice_token();
    let reply = send_to(s.gateway, &Spec::get("/orders").bearer(&token)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, "{\"error\":\"untrusted_identity\"}");
    let fresh = setup(30).await;
    let token = fresh.app.alice_token();
    let reply = send_to(fresh.gateway, &Spec::get("/orders").bearer(&token)).await;
    assert_eq!(reply.status, StatusCode::OK, "within the window");
    assert_eq!(reply.body, format!("orders of {}", alice()));
}

#[tokio::test]
async fn the_gateway_still_enforces_the_route_policy() {
    let s = setup(0).await;
    let reply = send_to(s.gateway, &spoofed(Spec::get("/orders"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn a_signature_for_one_service_is_refused_by_another() {
    let app = spawn_app(KeyRing::new(signing_key(JwsAlgorithm::EdDsa, "k1")));
    let handle = TestApp {
        sessions: app.sessions.clone(),
        clock: app.clock.clone(),
        directory: app.directory.clone(),
    };
    let master = GatewayKey::new(SECRET).unwrap();
    let orders = serve(service_with(
        master.for_audience("orders"),
        ManualClock::starting_at(START),
    ))
    .await;
    let billing = serve(service_with(
        master.for_audience("billing"),
        ManualClock::starting_at(START),
    ))
    .await;
    let gateway = serve(gateway_with(app, orders, master.for_audience("orders"))).await;
    let token = handle.alice_token();

    // Service A (orders) accepts what the gateway signed for it.
    let first = send_to(gateway, &Spec::get("/whoami").bearer(&token)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first.body.starts_with(&alice().to_string()),
        "{}",
        first.body
    );
    let signed = captured(&first);

    // Service A, compromised, replays it to service B (billing) within the
    // window, same method and path: B never saw it, but it is not for B.
    let replayed = send_to(billing, &with_headers(Spec::get("/whoami"), &signed)).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replayed.body, "{\"error\":\"untrusted_identity\"}");

    // A fresh signature for A works at A on a required route.
    let again = send_to(gateway, &Spec::get("/orders").bearer(&token)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, format!("orders of {}", alice()));
}
