//! The middleware and the extractors through a real actix-web app, with
//! mockall fakes of every port and exact expectations (the fixtures are
//! the axum crate's: `tessera-http/testing/edge.rs`).

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode as ActixStatus;
use actix_web::test::{self, TestRequest};
use actix_web::{App, HttpResponse, web};
use tessera_application::ports::{DirectoryError, RevocationError, RevocationStatus};
use tessera_domain::UserRole;

use crate::convert::to_http;
use crate::{
    Header, MaybeSession, RequireCapability, RequireRole, Session, SessionCookies,
    SessionMiddleware, roles::Admin,
};

#[path = "../../adapters-http/testing/edge.rs"]
mod edge;

use edge::*;

async fn who(session: Session<UserRole>) -> String {
    format!("{} {}", session.user_id(), session.role())
}

async fn maybe(session: MaybeSession<UserRole>) -> String {
    session
        .into_inner()
        .map_or_else(|| "guest".to_owned(), |s| s.role().to_string())
}

fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/")
                .route(web::get().to(maybe))
                // A required session on a route that needs none.
                .route(web::post().to(who)),
        )
        .route("/login", web::get().to(|| async { "login form" }))
        .route("/me", web::get().to(who))
        .service(
            web::resource("/app/home")
                .route(web::get().to(who))
                .route(web::post().to(who)),
        )
        .route(
            "/app/fail",
            web::get().to(|| async { HttpResponse::InternalServerError().finish() }),
        )
        .route(
            "/app/logout",
            web::post().to(|| async {
                HttpResponse::Ok()
                    .insert_header(Header::from(SessionCookies::default().clear().header()))
                    .body("bye")
            }),
        )
        .route(
            "/any/renew",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .insert_header(("x-session-token", "handler.token.value"))
                    .body("renewed")
            }),
        )
        .route("/admin/panel", web::get().to(who))
        .route("/closed", web::get().to(|| async { "never" }))
        .route(
            "/any/admin",
            web::get().to(|admin: RequireRole<Admin>| async move { admin.role().to_string() }),
        )
        .route(
            "/any/reports",
            web::get().to(|reader: RequireCapability<ReadReports>| async move {
                reader.user_id().to_string()
            }),
        );
}

/// The settings of a test middleware.
type Builder = crate::SessionEdgeBuilder<UserRole, SessionMiddleware<UserRole>>;

fn builder(ports: Ports) -> Builder {
    SessionMiddleware::builder(ports.use_cases(), policy())
}

async fn reply<B: MessageBody>(response: ServiceResponse<B>) -> Reply {
    let status = http::StatusCode::from_u16(response.status().as_u16()).unwrap();
    let headers = to_http(response.headers());
    let body = test::read_body(response).await;
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// `request` through the test routes behind a middleware of `ports`,
/// configured by `configure`.
async fn send_with(
    ports: Ports,
    configure: impl FnOnce(Builder) -> Builder,
    request: TestRequest,
) -> Reply {
    let middleware = configure(builder(ports)).build().unwrap();
    let app = test::init_service(App::new().wrap(middleware).configure(routes)).await;
    reply(test::call_service(&app, request.to_request()).await).await
}

async fn send(ports: Ports, request: TestRequest) -> Reply {
    send_with(ports, |b| b, request).await
}

fn get(path: &str) -> TestRequest {
    TestRequest::get().uri(path)
}

fn get_as(path: &str, credential: (&'static str, String)) -> TestRequest {
    get(path).insert_header(credential)
}

// ---------------------------------------------------------------- guests

#[actix_web::test]
async fn public_route_serves_a_guest_without_touching_any_port() {
    let reply = send(Ports::new(), get("/")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.body, "guest");
    assert!(reply.set_cookies().is_empty());
}

#[actix_web::test]
async fn public_route_reads_a_refused_token_as_a_guest() {
    let reply = send(Ports::new().refuses(), get_as("/", bearer())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.body, "guest");
    assert!(reply.headers.get("www-authenticate").is_none());
}

#[actix_web::test]
async fn public_route_passes_a_valid_session_to_an_optional_extractor() {
    let reply = send(signed_in(UserRole::User), get_as("/", bearer())).await;
    assert_eq!(reply.body, "user");
}

#[actix_web::test]
async fn required_extractor_on_a_public_route_says_invalid_token_for_a_refused_credential() {
    let request = TestRequest::post().uri("/").insert_header(bearer());
    let reply = send(Ports::new().refuses(), request).await;
    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn required_extractor_on_a_public_route_says_unauthenticated_without_a_credential() {
    let reply = send(Ports::new(), TestRequest::post().uri("/")).await;
    assert_error(&reply, 401, Some("Bearer"), "unauthenticated");
}

#[actix_web::test]
async fn protected_route_without_a_credential_is_401_with_a_bare_bearer_challenge() {
    let reply = send(Ports::new(), get("/me")).await;
    assert_error(&reply, 401, Some("Bearer"), "unauthenticated");
    assert!(reply.set_cookies().is_empty());
}

#[actix_web::test]
async fn protected_route_with_a_refused_bearer_token_is_401_invalid_token() {
    let reply = send(Ports::new().refuses(), get_as("/me", bearer())).await;
    assert_invalid_token(&reply);
    assert!(reply.set_cookies().is_empty(), "no cookie to clear");
}

#[actix_web::test]
async fn protected_route_with_a_refused_cookie_is_401_and_clears_the_cookie() {
    let reply = send(Ports::new().refuses(), get_as("/me", cookie())).await;
    assert_invalid_token(&reply);
    assert_clears_cookie(&reply);
}

#[actix_web::test]
async fn browser_route_without_a_session_redirects_to_login_with_a_relative_return_to() {
    let reply = send(Ports::new(), get("/app/home?tab=2")).await;
    assert_eq!(reply.status, http::StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        Some("/login?return_to=%2Fapp%2Fhome%3Ftab%3D2")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.headers.get("www-authenticate").is_none());
    assert_eq!(reply.body, "");
}

#[actix_web::test]
async fn browser_route_with_a_refused_cookie_redirects_and_clears_the_cookie() {
    let reply = send(Ports::new().refuses(), get_as("/app/home", cookie())).await;
    assert_eq!(reply.status, http::StatusCode::SEE_OTHER);
    assert_clears_cookie(&reply);
}

#[actix_web::test]
async fn route_denied_to_everyone_is_403_forbidden_without_a_challenge() {
    let reply = send(Ports::new(), get("/closed")).await;
    assert_error(&reply, 403, None, "forbidden");
}

#[actix_web::test]
async fn path_that_is_not_canonical_is_403_even_for_a_valid_session() {
    let reply = send(
        signed_in(UserRole::Admin),
        get_as("/app/../admin/panel", bearer()),
    )
    .await;
    assert_eq!(reply.status, http::StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn the_policy_sees_the_path_as_sent_not_decoded() {
    // `%2F` decoded would be "/admin/panel"; sent, it is no rule's path.
    let reply = send(Ports::new(), get("/admin%2Fpanel")).await;
    assert_eq!(reply.status, http::StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_cross_site_form_is_refused_403_before_the_handler() {
    let cross_site = TestRequest::post()
        .uri("/login")
        .insert_header(("origin", "https://evil.example"))
        .insert_header(("sec-fetch-site", "cross-site"));
    assert_error(
        &send(Ports::new(), cross_site).await,
        403,
        None,
        "cross_origin_request",
    );
    // An old browser's: no Sec-Fetch-Site, an Origin that is not the Host.
    let old_browser = TestRequest::post()
        .uri("/login")
        .insert_header(("host", "app.example"))
        .insert_header(("origin", "https://evil.example"));
    assert_error(
        &send(Ports::new(), old_browser).await,
        403,
        None,
        "cross_origin_request",
    );
}

#[actix_web::test]
async fn a_same_origin_form_goes_through() {
    let request = TestRequest::post()
        .uri("/app/home")
        .insert_header(cookie())
        .insert_header(("host", "app.example"))
        .insert_header(("origin", "https://app.example"));
    let reply = send(signed_in(UserRole::User), request).await;
    assert_eq!(reply.status, http::StatusCode::OK, "{}", reply.body);
}

// ---------------------------------------------------------------- signed in

#[actix_web::test]
async fn valid_session_reaches_the_handler_with_nothing_attached() {
    let reply = send(signed_in(UserRole::User), get_as("/me", cookie())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.body, format!("{} user", user()));
    assert!(reply.set_cookies().is_empty());
    assert!(reply.headers.get("x-session-token").is_none());
}

#[actix_web::test]
async fn insufficient_role_is_403_insufficient_scope() {
    let reply = send(signed_in(UserRole::User), get_as("/admin/panel", bearer())).await;
    assert_insufficient_scope(&reply);
}

#[actix_web::test]
async fn guest_only_page_sends_a_signed_in_user_to_the_signed_in_page() {
    let reply = send(signed_in(UserRole::User), get_as("/login", cookie())).await;
    assert_eq!(reply.status, http::StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), Some("/"));
}

#[actix_web::test]
async fn unavailable_revocation_state_fails_closed_with_503() {
    let ports = Ports::new().verifies_then(
        session(UserRole::User, NOW - 10),
        Err(RevocationError::Unavailable("listener down".into())),
    );
    let reply = send(ports, get_as("/me", cookie())).await;
    assert_error(&reply, 503, None, "temporarily_unavailable");
    assert!(reply.set_cookies().is_empty());
}

#[actix_web::test]
async fn revoked_session_is_401_invalid_token() {
    let ports = Ports::new().verifies(
        session(UserRole::User, NOW - 10),
        RevocationStatus::Revoked(tessera_application::ports::RevocationReason::UserLoggedOut),
    );
    let reply = send(ports, get_as("/me", bearer())).await;
    assert_invalid_token(&reply);
}

// ---------------------------------------------------------------- malformed requests

#[actix_web::test]
async fn two_different_credentials_are_400_invalid_request_on_a_protected_route() {
    let request =
        get_as("/me", bearer()).insert_header(("cookie", format!("{COOKIE}=other.token.value")));
    let reply = send(Ports::new(), request).await;
    assert_invalid_request(&reply);
    assert!(reply.set_cookies().is_empty());
}

#[actix_web::test]
async fn several_authorization_headers_are_400_invalid_request() {
    let request = get_as("/me", bearer()).append_header(bearer());
    let reply = send(Ports::new(), request).await;
    assert_invalid_request(&reply);
}

#[actix_web::test]
async fn oversized_token_is_401_invalid_token_without_decoding() {
    let reply = send_with(
        Ports::new().max_token_bytes(TOKEN.len() - 1),
        |b| b,
        get_as("/me", bearer()),
    )
    .await;
    assert_invalid_token(&reply);
}

// ---------------------------------------------------------------- rotation

#[actix_web::test]
async fn due_cookie_session_is_rotated_and_the_new_cookie_attached() {
    let reply = send(due_for_rotation(), get_as("/me", cookie())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_rotated_cookie(&reply);
}

#[actix_web::test]
async fn due_bearer_session_gets_the_new_token_in_the_documented_header() {
    let reply = send(due_for_rotation(), get_as("/me", bearer())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.header("x-session-token"), Some(ROTATED));
    assert!(reply.headers.get("x-session-token").unwrap().is_sensitive());
    assert!(reply.set_cookies().is_empty());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[actix_web::test]
async fn token_header_name_is_configurable() {
    let reply = send_with(
        due_for_rotation(),
        |b| b.token_header("x-renewed"),
        get_as("/me", bearer()),
    )
    .await;
    assert_eq!(reply.header("x-renewed"), Some(ROTATED));
}

#[actix_web::test]
async fn rotation_is_attached_even_when_the_handler_fails() {
    let reply = send(due_for_rotation(), get_as("/app/fail", cookie())).await;
    assert_eq!(reply.status, http::StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(rotated_cookie(&reply).value(), ROTATED);
}

#[actix_web::test]
async fn handler_that_sets_the_session_cookie_itself_wins_over_rotation() {
    let request = TestRequest::post()
        .uri("/app/logout")
        .insert_header(cookie());
    let reply = send(due_for_rotation(), request).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_clears_cookie(&reply);
}

#[actix_web::test]
async fn handler_that_sets_the_token_header_itself_wins_over_rotation() {
    let reply = send(due_for_rotation(), get_as("/any/renew", bearer())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.header("x-session-token"), Some("handler.token.value"));
    assert_eq!(reply.headers.get_all("x-session-token").iter().count(), 1);
}

#[actix_web::test]
async fn rotation_finding_the_user_gone_refuses_the_request_and_clears_the_cookie() {
    let ports = due_and_directory_says(Ok(None), false);
    let reply = send(ports, get_as("/me", cookie())).await;
    assert_invalid_token(&reply);
    assert_clears_cookie(&reply);
}

#[actix_web::test]
async fn rotation_finding_the_user_disabled_on_a_browser_route_redirects_to_login() {
    let ports = due_and_directory_says(Ok(Some(directory_user(UserRole::User, false))), false);
    let reply = send(ports, get_as("/app/home", cookie())).await;
    assert_eq!(reply.status, http::StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        Some("/login?return_to=%2Fapp%2Fhome")
    );
    assert_clears_cookie(&reply);
}

#[actix_web::test]
async fn stale_claims_are_refreshed_before_the_route_is_decided() {
    // The token says admin; the directory says the user was demoted.
    let ports =
        stale(UserRole::Admin).rotates_to(Ok(Some(directory_user(UserRole::User, true))), true);
    let reply = send(ports, get_as("/admin/panel", cookie())).await;
    assert_insufficient_scope(&reply);
    assert_eq!(rotated_cookie(&reply).value(), ROTATED);
}

#[actix_web::test]
async fn stale_claims_let_a_promoted_user_in_at_once() {
    let ports =
        stale(UserRole::User).rotates_to(Ok(Some(directory_user(UserRole::Admin, true))), true);
    let reply = send(ports, get_as("/admin/panel", bearer())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.body, format!("{} admin", user()));
    assert_eq!(reply.header("x-session-token"), Some(ROTATED));
}

#[actix_web::test]
async fn stale_claims_with_the_directory_down_fail_closed() {
    let ports =
        stale(UserRole::User).rotates_to(Err(DirectoryError::Unavailable("db down".into())), false);
    let reply = send(ports, get_as("/me", cookie())).await;
    assert_error(&reply, 503, None, "temporarily_unavailable");
    assert!(reply.set_cookies().is_empty());
}

// ---------------------------------------------------------------- extractors

#[actix_web::test]
async fn require_role_refuses_a_lesser_role_with_403() {
    let reply = send(signed_in(UserRole::User), get_as("/any/admin", bearer())).await;
    assert_insufficient_scope(&reply);
}

#[actix_web::test]
async fn require_role_lets_the_role_through() {
    let reply = send(signed_in(UserRole::Admin), get_as("/any/admin", bearer())).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.body, "admin");
}

#[actix_web::test]
async fn require_capability_checks_the_capability() {
    let reply = send(signed_in(UserRole::Admin), get_as("/any/reports", bearer())).await;
    assert_insufficient_scope(&reply);
}

#[actix_web::test]
async fn session_extractors_without_the_middleware_are_a_500_not_a_guest() {
    let app = test::init_service(App::new().configure(routes).route(
        "/sign-out",
        web::get().to(|auth: crate::Auth| async move { auth.sign_out(None).await }),
    ))
    .await;
    for request in [get("/me"), get("/"), get("/any/admin"), get("/sign-out")] {
        let response = test::call_service(&app, request.to_request()).await;
        assert_error(&reply(response).await, 500, None, "server_error");
    }
}

#[actix_web::test]
async fn scopes_are_judged_on_the_full_path() {
    let middleware = builder(signed_in(UserRole::User)).build().unwrap();
    // "/panel" alone would be unmatched; "/admin/panel" needs admin.
    let app = test::init_service(
        App::new().service(
            web::scope("/admin")
                .wrap(middleware)
                .route("/panel", web::get().to(who)),
        ),
    )
    .await;
    let request = get_as("/admin/panel", bearer()).to_request();
    let reply = reply(test::call_service(&app, request).await).await;
    assert_insufficient_scope(&reply);
}

#[actix_web::test]
async fn auth_in_a_scope_reads_the_route_kind_from_the_full_path() {
    for (prefix, browser) in [("/app", "true"), ("/any", "false")] {
        let middleware = builder(signed_in(UserRole::User)).build().unwrap();
        // "/kind" alone matches no rule; "/app/kind" is a browser page,
        // "/any/kind" an API route.
        let app = test::init_service(App::new().service(
            web::scope(prefix).wrap(middleware).route(
                "/kind",
                web::get().to(|auth: crate::Auth| async move { auth.is_browser().to_string() }),
            ),
        ))
        .await;
        let request = get_as(&format!("{prefix}/kind"), bearer()).to_request();
        let reply = reply(test::call_service(&app, request).await).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{prefix}");
        assert_eq!(reply.body, browser, "{prefix}");
    }
}

#[actix_web::test]
async fn rejections_answer_as_the_middleware_does() {
    use actix_web::ResponseError as _;
    let rejected = crate::Rejected(crate::SessionRejection::InvalidToken);
    assert_eq!(rejected.status_code(), ActixStatus::UNAUTHORIZED);
    let response = rejected.error_response();
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
}

// ---------------------------------------------------------------- behind a gateway

#[actix_web::test]
async fn gateway_identity_needs_the_headers_or_is_a_guest_when_optional() {
    use crate::{GatewayIdentity, Maybe};
    use tessera_http::{GatewayKey, GatewayVerifier};

    let verifier = GatewayVerifier::new(GatewayKey::new(&[7; 32]).unwrap().for_audience("svc"));
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(verifier))
            .route(
                "/required",
                web::get().to(|id: GatewayIdentity| async move { id.user_id().to_string() }),
            )
            .route(
                "/optional",
                web::get().to(|id: Maybe<GatewayIdentity>| async move {
                    format!("guest:{}", id.is_none())
                }),
            ),
    )
    .await;
    let required = test::call_service(&app, get("/required").to_request()).await;
    assert_error(&reply(required).await, 401, None, "untrusted_identity");
    let optional = test::call_service(&app, get("/optional").to_request()).await;
    assert_eq!(reply(optional).await.body, "guest:true");
    // A client's own identity header, unsigned, is never a guest.
    let forged = get("/optional").insert_header(("x-user-id", user().to_string()));
    let forged = test::call_service(&app, forged.to_request()).await;
    assert_error(&reply(forged).await, 401, None, "untrusted_identity");
}

#[actix_web::test]
async fn gateway_identity_without_a_verifier_is_a_500() {
    let app = test::init_service(App::new().route(
        "/required",
        web::get().to(|id: crate::GatewayIdentity| async move { id.user_id().to_string() }),
    ))
    .await;
    let response = test::call_service(&app, get("/required").to_request()).await;
    assert_error(&reply(response).await, 500, None, "server_error");
}
