//! The layer and the extractors through a real axum router, with mockall
//! fakes of every port and exact expectations.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tessera_application::SignInPagesError;
use tessera_application::ports::{DirectoryError, RevocationError, RevocationStatus};
use tessera_domain::UserRole;
use tower::ServiceExt as _;

use crate::{ConfigError, RequireCapability, RequireRole, Session, SessionLayer, roles::Admin};

#[path = "../../adapters-http/testing/edge.rs"]
mod edge;

use edge::*;

impl Ports {
    fn router(self) -> Router {
        router_with(self, |layer| layer)
    }
}

async fn who(session: Session<UserRole>) -> String {
    format!("{} {}", session.user_id(), session.role())
}

async fn maybe(session: Option<Session<UserRole>>) -> String {
    session.map_or_else(|| "guest".to_owned(), |s| s.role().to_string())
}

fn routes() -> Router {
    Router::new()
        .route("/", get(maybe))
        .route("/login", get(|| async { "login form" }))
        .route("/me", get(who))
        .route("/app/home", get(who).post(who))
        .route("/app/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/app/logout",
            post(|| async {
                let clear = crate::SessionCookies::default().clear();
                ([clear.header()], "bye")
            }),
        )
        .route(
            "/any/renew",
            get(|| async { ([("x-session-token", "handler.token.value")], "renewed") }),
        )
        .route("/admin/panel", get(who))
        .route("/closed", get(|| async { "never" }))
        .route(
            "/any/admin",
            get(|admin: RequireRole<Admin>| async move { admin.role().to_string() }),
        )
        .route(
            "/any/reports",
            get(|reader: RequireCapability<ReadReports>| async move { reader.user_id().to_string() }),
        )
}

/// The settings of a test layer.
type Builder = crate::SessionEdgeBuilder<UserRole, SessionLayer<UserRole>>;

fn builder(ports: Ports) -> Builder {
    SessionLayer::builder(ports.use_cases(), policy())
}

fn router_with(ports: Ports, configure: impl FnOnce(Builder) -> Builder) -> Router {
    let layer = configure(builder(ports)).build().unwrap();
    routes().layer(layer)
}

async fn send(router: Router, request: Request<Body>) -> Reply {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).unwrap()
}

async fn get_as(router: Router, path: &str, credential: (&str, String)) -> Reply {
    send(router, get_with(path, &[(credential.0, &credential.1)])).await
}

// ---------------------------------------------------------------- guests

#[tokio::test]
async fn public_route_serves_a_guest_without_touching_any_port() {
    let reply = send(Ports::new().router(), get_with("/", &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "guest");
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn public_route_reads_a_refused_token_as_a_guest() {
    let reply = get_as(Ports::new().refuses().router(), "/", bearer()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "guest");
    assert!(reply.headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn public_route_passes_a_valid_session_to_an_optional_extractor() {
    let ports = signed_in(UserRole::User);
    let reply = get_as(ports.router(), "/", bearer()).await;
    assert_eq!(reply.body, "user");
}

#[tokio::test]
async fn protected_route_without_a_credential_is_401_with_a_bare_bearer_challenge() {
    let reply = send(Ports::new().router(), get_with("/me", &[])).await;
    assert_error(&reply, 401, Some("Bearer"), "unauthenticated");
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn other_authorization_schemes_count_as_no_credential() {
    let reply = send(
        Ports::new().router(),
        get_with("/me", &[("authorization", "Basic YWxpY2U6cHc=")]),
    )
    .await;
    assert_error(&reply, 401, Some("Bearer"), "unauthenticated");
}

#[tokio::test]
async fn protected_route_with_a_refused_bearer_token_is_401_invalid_token() {
    let reply = get_as(Ports::new().refuses().router(), "/me", bearer()).await;
    assert_invalid_token(&reply);
    assert!(reply.set_cookies().is_empty(), "no cookie to clear");
}

#[tokio::test]
async fn protected_route_with_a_refused_cookie_is_401_and_clears_the_cookie() {
    let reply = get_as(Ports::new().refuses().router(), "/me", cookie()).await;
    assert_invalid_token(&reply);
    assert_clears_cookie(&reply);
}

#[tokio::test]
async fn revoked_session_is_401_invalid_token() {
    let ports = Ports::new().verifies(
        session(UserRole::User, NOW - 10),
        RevocationStatus::Revoked(tessera_application::ports::RevocationReason::UserLoggedOut),
    );
    let reply = get_as(ports.router(), "/me", bearer()).await;
    assert_invalid_token(&reply);
}

#[tokio::test]
async fn browser_route_without_a_session_redirects_to_login_with_a_relative_return_to() {
    let reply = send(Ports::new().router(), get_with("/app/home?tab=2", &[])).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        Some("/login?return_to=%2Fapp%2Fhome%3Ftab%3D2")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.headers.get("www-authenticate").is_none());
    assert_eq!(reply.body, "");
}

#[tokio::test]
async fn browser_route_with_a_refused_cookie_redirects_and_clears_the_cookie() {
    let reply = get_as(Ports::new().refuses().router(), "/app/home", cookie()).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        Some("/login?return_to=%2Fapp%2Fhome")
    );
    assert_clears_cookie(&reply);
}

#[tokio::test]
async fn browser_post_redirects_to_login_without_a_return_to() {
    let request = Request::post("/app/home").body(Body::empty()).unwrap();
    let reply = send(Ports::new().router(), request).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), Some("/login"));
}

#[tokio::test]
async fn login_path_and_return_to_parameter_are_configurable() {
    let router = router_with(Ports::new(), |b| {
        b.login_path("/auth/sign-in").return_to_param("next")
    });
    let reply = send(router, get_with("/app/home", &[])).await;
    assert_eq!(
        reply.header("location"),
        Some("/auth/sign-in?next=%2Fapp%2Fhome")
    );
}

#[tokio::test]
async fn route_denied_to_everyone_is_403_forbidden_without_a_challenge() {
    let reply = send(Ports::new().router(), get_with("/closed", &[])).await;
    assert_error(&reply, 403, None, "forbidden");
}

#[tokio::test]
async fn path_that_is_not_canonical_is_403_even_for_a_valid_session() {
    let ports = signed_in(UserRole::Admin);
    let reply = get_as(ports.router(), "/app/../admin/panel", bearer()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------- signed in

#[tokio::test]
async fn valid_session_reaches_the_handler_with_nothing_attached() {
    let ports = signed_in(UserRole::User);
    let reply = get_as(ports.router(), "/me", cookie()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, format!("{} user", user()));
    assert!(reply.set_cookies().is_empty());
    assert!(reply.headers.get("x-session-token").is_none());
}

#[tokio::test]
async fn bearer_and_cookie_carrying_the_same_token_are_one_credential() {
    let ports = signed_in(UserRole::User);
    let (b, c) = (bearer(), cookie());
    let reply = send(ports.router(), get_with("/me", &[(b.0, &b.1), (c.0, &c.1)])).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn insufficient_role_is_403_insufficient_scope() {
    let ports = signed_in(UserRole::User);
    let reply = get_as(ports.router(), "/admin/panel", bearer()).await;
    assert_insufficient_scope(&reply);
}

#[tokio::test]
async fn guest_only_page_sends_a_signed_in_user_to_the_signed_in_page() {
    let ports = signed_in(UserRole::User);
    let reply = get_as(ports.router(), "/login", cookie()).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), Some("/"));
}

#[tokio::test]
async fn guest_only_page_honours_a_safe_return_to_only() {
    for (query, location) in [
        ("return_to=%2Fapp%2Fhome", "/app/home"),
        ("return_to=%2F%2Fevil.example", "/"),
        ("return_to=https%3A%2F%2Fevil.example", "/"),
        ("return_to=%2F%5Cevil.example", "/"),
        ("return_to=%2Flogin", "/"),
    ] {
        let ports = signed_in(UserRole::User);
        let reply = get_as(ports.router(), &format!("/login?{query}"), cookie()).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{query}");
        assert_eq!(reply.header("location"), Some(location), "{query}");
    }
}

#[tokio::test]
async fn guest_only_page_serves_a_guest() {
    let reply = send(Ports::new().router(), get_with("/login", &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "login form");
}

#[tokio::test]
async fn unavailable_revocation_state_fails_closed_with_503() {
    let ports = Ports::new().verifies_then(
        session(UserRole::User, NOW - 10),
        Err(RevocationError::Unavailable("listener down".into())),
    );
    let reply = get_as(ports.router(), "/me", cookie()).await;
    assert_error(&reply, 503, None, "temporarily_unavailable");
    assert!(
        reply.set_cookies().is_empty(),
        "a 503 never clears the cookie"
    );
}

// ---------------------------------------------------------------- malformed requests

#[tokio::test]
async fn two_different_credentials_are_400_invalid_request_on_a_protected_route() {
    let b = bearer();
    let reply = send(
        Ports::new().router(),
        get_with(
            "/me",
            &[
                (b.0, &b.1),
                ("cookie", &format!("{COOKIE}=other.token.value")),
            ],
        ),
    )
    .await;
    assert_invalid_request(&reply);
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn two_different_credentials_are_a_guest_on_a_public_route() {
    let b = bearer();
    let reply = send(
        Ports::new().router(),
        get_with(
            "/",
            &[
                (b.0, &b.1),
                ("cookie", &format!("{COOKIE}=other.token.value")),
            ],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "guest");
}

#[tokio::test]
async fn several_authorization_headers_are_400_invalid_request() {
    let b = bearer();
    let reply = send(
        Ports::new().router(),
        get_with("/me", &[(b.0, &b.1), (b.0, &b.1)]),
    )
    .await;
    assert_invalid_request(&reply);
}

#[tokio::test]
async fn authorization_header_that_is_not_text_is_400_invalid_request() {
    let mut request = get_with("/me", &[]);
    request.headers_mut().insert(
        header::AUTHORIZATION,
        axum::http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
    );
    let reply = send(Ports::new().router(), request).await;
    assert_invalid_request(&reply);
}

#[tokio::test]
async fn oversized_token_is_401_invalid_token_without_decoding() {
    let router = router_with(Ports::new().max_token_bytes(TOKEN.len() - 1), |b| b);
    let reply = get_as(router, "/me", bearer()).await;
    assert_invalid_token(&reply);
}

#[tokio::test]
async fn malformed_session_cookie_is_401_invalid_token_and_cleared() {
    let reply = send(
        Ports::new().router(),
        get_with("/me", &[("cookie", &format!("{COOKIE}=not<a>token"))]),
    )
    .await;
    assert_invalid_token(&reply);
    assert_clears_cookie(&reply);
}

// ---------------------------------------------------------------- rotation

#[tokio::test]
async fn due_cookie_session_is_rotated_and_the_new_cookie_attached() {
    let ports = due_for_rotation();
    let reply = get_as(ports.router(), "/me", cookie()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_rotated_cookie(&reply);
}

#[tokio::test]
async fn due_bearer_session_gets_the_new_token_in_the_documented_header() {
    let ports = due_for_rotation();
    let reply = get_as(ports.router(), "/me", bearer()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-session-token"), Some(ROTATED));
    assert!(reply.headers.get("x-session-token").unwrap().is_sensitive());
    assert!(reply.set_cookies().is_empty());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn token_header_name_is_configurable() {
    let ports = due_for_rotation();
    let reply = get_as(
        router_with(ports, |b| b.token_header("x-renewed")),
        "/me",
        bearer(),
    )
    .await;
    assert_eq!(reply.header("x-renewed"), Some(ROTATED));
}

#[tokio::test]
async fn rotation_is_attached_even_when_the_handler_fails() {
    let ports = due_for_rotation();
    let reply = get_as(ports.router(), "/app/fail", cookie()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(rotated_cookie(&reply).value(), ROTATED);
}

#[tokio::test]
async fn handler_that_sets_the_session_cookie_itself_wins_over_rotation() {
    let ports = due_for_rotation();
    let c = cookie();
    let request = Request::post("/app/logout")
        .header(c.0, c.1)
        .body(Body::empty())
        .unwrap();
    let reply = send(ports.router(), request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_clears_cookie(&reply);
}

#[tokio::test]
async fn handler_that_sets_the_token_header_itself_wins_over_rotation() {
    let reply = get_as(due_for_rotation().router(), "/any/renew", bearer()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-session-token"), Some("handler.token.value"));
    assert_eq!(reply.headers.get_all("x-session-token").iter().count(), 1);
}

#[tokio::test]
async fn rotation_finding_the_user_gone_refuses_the_request_and_clears_the_cookie() {
    let ports = due_and_directory_says(Ok(None), false);
    let reply = get_as(ports.router(), "/me", cookie()).await;
    assert_invalid_token(&reply);
    assert_clears_cookie(&reply);
}

#[tokio::test]
async fn rotation_finding_the_user_disabled_on_a_browser_route_redirects_to_login() {
    let ports = due_and_directory_says(Ok(Some(directory_user(UserRole::User, false))), false);
    let reply = get_as(ports.router(), "/app/home", cookie()).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        Some("/login?return_to=%2Fapp%2Fhome")
    );
    assert_clears_cookie(&reply);
}

#[tokio::test]
async fn stale_claims_are_refreshed_before_the_route_is_decided() {
    // The token says admin; the directory says the user was demoted.
    let ports =
        stale(UserRole::Admin).rotates_to(Ok(Some(directory_user(UserRole::User, true))), true);
    let reply = get_as(ports.router(), "/admin/panel", cookie()).await;
    assert_insufficient_scope(&reply);
    assert_eq!(
        rotated_cookie(&reply).value(),
        ROTATED,
        "the refreshed token still goes out"
    );
}

#[tokio::test]
async fn stale_claims_let_a_promoted_user_in_at_once() {
    let ports =
        stale(UserRole::User).rotates_to(Ok(Some(directory_user(UserRole::Admin, true))), true);
    let reply = get_as(ports.router(), "/admin/panel", bearer()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, format!("{} admin", user()));
    assert_eq!(reply.header("x-session-token"), Some(ROTATED));
}

#[tokio::test]
async fn stale_claims_with_the_directory_down_fail_closed() {
    let ports =
        stale(UserRole::User).rotates_to(Err(DirectoryError::Unavailable("db down".into())), false);
    let reply = get_as(ports.router(), "/me", cookie()).await;
    assert_error(&reply, 503, None, "temporarily_unavailable");
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn due_rotation_with_the_directory_down_keeps_the_current_session() {
    let ports = due_and_directory_says(Err(DirectoryError::Unavailable("db down".into())), false);
    let reply = get_as(ports.router(), "/me", cookie()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookies().is_empty());
}

// ---------------------------------------------------------------- extractors

#[tokio::test]
async fn require_role_refuses_a_lesser_role_with_403() {
    let ports = signed_in(UserRole::User);
    let reply = get_as(ports.router(), "/any/admin", bearer()).await;
    assert_insufficient_scope(&reply);
}

#[tokio::test]
async fn require_role_lets_the_role_through() {
    let ports = signed_in(UserRole::Admin);
    let reply = get_as(ports.router(), "/any/admin", bearer()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "admin");
}

#[tokio::test]
async fn require_capability_checks_the_capability() {
    let ports = signed_in(UserRole::Admin);
    let reply = get_as(ports.router(), "/any/reports", bearer()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn session_extractor_without_the_layer_is_a_500_not_a_guest() {
    let router = Router::new()
        .route("/me", get(who))
        .route("/", get(maybe))
        .route(
            "/sign-out",
            get(|auth: crate::Auth| async move { auth.sign_out(None).await }),
        );
    for path in ["/me", "/", "/sign-out"] {
        let reply = send(router.clone(), get_with(path, &[])).await;
        assert_error(&reply, 500, None, "server_error");
    }
}

#[tokio::test]
async fn session_rejections_map_to_the_layers_responses() {
    let response = crate::Rejected(crate::SessionRejection::Unauthenticated).into_response();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn nested_routers_are_judged_on_the_full_path() {
    let layer = builder(signed_in(UserRole::User)).build().unwrap();
    // "/panel" alone would be unmatched; "/admin/panel" needs admin.
    let router = Router::new()
        .nest("/admin", Router::new().route("/panel", get(who)))
        .layer(layer);
    let reply = get_as(router, "/admin/panel", bearer()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body, "{\"error\":\"insufficient_scope\"}");
}

#[tokio::test]
async fn auth_in_a_nested_router_reads_the_route_kind_from_the_full_path() {
    for (prefix, browser) in [("/app", "true"), ("/any", "false")] {
        let layer = builder(signed_in(UserRole::User)).build().unwrap();
        // "/kind" alone matches no rule; "/app/kind" is a browser page,
        // "/any/kind" an API route.
        let router = Router::new()
            .nest(
                prefix,
                Router::new().route(
                    "/kind",
                    get(|auth: crate::Auth| async move { auth.is_browser().to_string() }),
                ),
            )
            .layer(layer);
        let reply = get_as(router, &format!("{prefix}/kind"), bearer()).await;
        assert_eq!(reply.status, StatusCode::OK, "{prefix}");
        assert_eq!(reply.body, browser, "{prefix}");
    }
}

// ---------------------------------------------------------------- configuration

#[test]
fn rules_given_as_a_list_are_compiled_at_build() {
    use tessera_domain::RouteRule;
    let listed = SessionLayer::builder(
        Ports::new().use_cases(),
        [RouteRule::<UserRole>::authenticated("/me").browser()],
    )
    .build()
    .unwrap();
    assert!(listed.edge().policy().route("GET", "/me").is_browser());
    assert!(
        !listed
            .edge()
            .policy()
            .route("GET", "/elsewhere")
            .decide(None)
            .is_allowed(),
        "every other path is refused"
    );
    let refused = SessionLayer::builder(
        Ports::new().use_cases(),
        [RouteRule::<UserRole>::public("me")],
    )
    .build();
    assert!(
        matches!(refused, Err(ConfigError::Policy(_))),
        "{refused:?}"
    );
}

#[test]
fn builder_refuses_settings_that_cannot_work() {
    let build =
        |configure: fn(Builder) -> Builder| configure(builder(Ports::new())).build().map(|_| ());
    assert_eq!(
        build(|b| b.cookie_name("bad name")),
        Err(ConfigError::InvalidCookieName("bad name".into()))
    );
    assert!(matches!(
        build(|b| b.login_path("https://idp.example/login")),
        Err(ConfigError::Pages(SignInPagesError::InvalidPath {
            which: "login_path",
            ..
        }))
    ));
    assert!(matches!(
        build(|b| b.signed_in_path("//evil")),
        Err(ConfigError::Pages(SignInPagesError::InvalidPath {
            which: "signed_in_path",
            ..
        }))
    ));
    assert!(matches!(
        build(|b| b.return_to_param("a&b")),
        Err(ConfigError::Pages(SignInPagesError::InvalidReturnToParam(
            _
        )))
    ));
    assert!(matches!(
        build(|b| b.token_header("x-user-token")),
        Err(ConfigError::InvalidTokenHeader(_))
    ));
    assert!(matches!(
        build(|b| b.token_header("not a header")),
        Err(ConfigError::InvalidTokenHeader(_))
    ));
    assert!(matches!(
        builder(Ports::new().max_token_bytes(0)).build(),
        Err(ConfigError::ZeroCredentialCap)
    ));
    assert!(matches!(
        build(|b| b.development_cookies("192.0.2.1".parse().unwrap())),
        Err(ConfigError::DevelopmentCookies(_))
    ));
    assert!(matches!(
        build(|b| b
            .development_cookies("127.0.0.1".parse().unwrap())
            .cookie_name("__Host-dev")),
        Err(ConfigError::DevelopmentCookies(_))
    ));
    assert_eq!(
        build(|b| b.development_cookies("127.0.0.1".parse().unwrap())),
        Ok(())
    );
    assert_eq!(
        build(|b| b.cookie_name("sid").login_path("/auth?x=1")),
        Ok(())
    );
}

/// What the layer logged, as text.
#[derive(Clone, Default)]
struct Logged(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logged {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_browser_on_plain_http_by_a_host_name_is_told_once_why_sign_in_cannot_stick() {
    let logged = Logged::default();
    let writer = logged.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let router = Ports::new().router();
    let form = |origin: &str, host: &str| {
        Request::post("/app/home")
            .header("origin", origin)
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    };
    let warnings = || {
        String::from_utf8(logged.0.lock().unwrap().clone())
            .unwrap()
            .matches("browsers drop the Secure session cookie")
            .count()
    };
    for (origin, host) in [
        ("https://myapp.test", "myapp.test"),
        ("http://localhost:3000", "localhost:3000"),
        ("http://127.0.0.1:3000", "127.0.0.1:3000"),
    ] {
        send(router.clone(), form(origin, host)).await;
    }
    assert_eq!(warnings(), 0, "https and loopback keep the Secure cookie");
    send(router.clone(), form("http://myapp.test", "myapp.test")).await;
    send(router.clone(), form("http://myapp.test", "myapp.test")).await;
    assert_eq!(warnings(), 1, "said once");
    let text = String::from_utf8(logged.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("http://myapp.test"), "{text}");
    assert!(text.contains("development_cookies"), "{text}");
}
