//! Step-up authentication (RFC 9470) end to end over loopback HTTP (axum):
//! routes asking for a recent authentication (`max_age`) or a level
//! (`acr`) answer 401 `insufficient_user_authentication` with the
//! challenge, browser routes redirect to sign-in carrying it, and the
//! session's `acr`/`amr` come from sign-in and survive rotation.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tessera::application::{EstablishRequest, EstablishedSession};
use tessera::axum::Session;
use tessera::domain::{Acr, AuthMethod, Authentication, Requirement, RoutePolicy, RouteRule};
use tessera::{JwsAlgorithm, KeyRing, UserRole};
use time::Duration;

use crate::support::{App, alice, caps, serve_loopback, signing_key, spawn_app};

const COOKIE: &str = "__Host-session";

/// The session's level and methods, as the handler sees them.
async fn how(session: Session) -> String {
    let auth = session.authentication();
    let methods: Vec<&str> = auth.amr().iter().map(AuthMethod::as_str).collect();
    format!(
        "{} {}",
        auth.acr().map_or("-", Acr::as_str),
        methods.join(",")
    )
}

fn policy() -> RoutePolicy<UserRole> {
    RoutePolicy::builder()
        .rule(RouteRule::new("/login", Requirement::GuestOnly).browser())
        .rule(RouteRule::new("/api/me", Requirement::Authenticated))
        .rule(
            RouteRule::new("/api/recent", Requirement::Authenticated).max_age(Duration::minutes(5)),
        )
        .rule(
            RouteRule::new("/api/mfa", Requirement::AtLeastRole(UserRole::User))
                .acr(&["urn:example:mfa", "phrh"]),
        )
        .rule(
            RouteRule::new("/settings", Requirement::Authenticated)
                .max_age(Duration::minutes(5))
                .acr(&["urn:example:mfa"])
                .browser(),
        )
        .build()
        .unwrap()
}

async fn start() -> (App, SocketAddr) {
    let app = spawn_app(KeyRing::new(signing_key(JwsAlgorithm::Es256, "k1")));
    let layer = app.sessions.session_layer(policy()).build().unwrap();
    let router = Router::new()
        .route("/api/me", get(how))
        .route("/api/recent", get(how))
        .route("/api/mfa", get(how))
        .route("/settings", get(how))
        .layer(layer);
    let addr = serve_loopback(router).await;
    (app, addr)
}

/// Signs Alice in at level `acr` with the methods `amr`.
fn sign_in(app: &App, acr: &str, amr: &[&str]) -> EstablishedSession<UserRole> {
    app.sessions
        .establish()
        .execute(EstablishRequest {
            user_id: alice(),
            role: UserRole::User,
            capabilities: caps(&["posts:write"]),
            tenant: None,
            authenticated_at: None,
            authentication: Authentication::new(
                Some(Acr::parse(acr).unwrap()),
                amr.iter().map(|m| AuthMethod::parse(m).unwrap()).collect(),
            )
            .unwrap(),
        })
        .unwrap()
}

struct Answer {
    status: u16,
    challenge: Option<String>,
    location: Option<String>,
    rotated: Option<String>,
    body: String,
}

async fn get_with(addr: SocketAddr, path: &str, token: &str, cookie: bool) -> Answer {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let request = client.get(format!("http://{addr}{path}"));
    let request = if cookie {
        request.header("cookie", format!("{COOKIE}={token}"))
    } else {
        request.bearer_auth(token)
    };
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: response.status().as_u16(),
        challenge: header("www-authenticate"),
        location: header("location"),
        rotated: header("x-session-token"),
        body: response.text().await.unwrap(),
    }
}

const RECENCY: &str = "Bearer error=\"insufficient_user_authentication\", error_description=\"More recent authentication is required\", max_age=\"300\"";
const LEVEL: &str = "Bearer error=\"insufficient_user_authentication\", error_description=\"A different authentication level is required\", acr_values=\"urn:example:mfa phrh\"";

#[tokio::test]
async fn a_route_asking_for_a_level_challenges_a_weaker_session_and_admits_a_stronger_one() {
    let (app, addr) = start().await;
    let weak = sign_in(&app, "urn:example:pwd", &["pwd"]);
    let token = weak.token.expose_secret();

    let me = get_with(addr, "/api/me", token, false).await;
    assert_eq!((me.status, me.body.as_str()), (200, "urn:example:pwd pwd"));
    let mfa = get_with(addr, "/api/mfa", token, false).await;
    assert_eq!(mfa.status, 401);
    assert_eq!(mfa.challenge.as_deref(), Some(LEVEL));
    assert_eq!(mfa.body, r#"{"error":"insufficient_user_authentication"}"#);

    let strong = sign_in(&app, "phrh", &["pwd", "hwk"]);
    let mfa = get_with(addr, "/api/mfa", strong.token.expose_secret(), false).await;
    assert_eq!((mfa.status, mfa.body.as_str()), (200, "phrh pwd,hwk"));
}

#[tokio::test]
async fn a_route_asking_for_a_recent_authentication_challenges_an_old_one_across_rotation() {
    let (app, addr) = start().await;
    let session = sign_in(&app, "urn:example:mfa", &["pwd", "otp"]);
    let token = session.token.expose_secret();
    assert_eq!(
        get_with(addr, "/api/recent", token, false).await.status,
        200
    );

    // Six minutes on: the token is rotated (due after five), the rotated
    // one keeps the authentication's time, level and methods, and the
    // route asks for a more recent authentication all the same.
    app.clock.advance(6 * 60);
    let me = get_with(addr, "/api/me", token, false).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body, "urn:example:mfa pwd,otp");
    let rotated = me.rotated.expect("a rotated token");
    let verified = app.sessions.verify().execute(&rotated).unwrap();
    assert_eq!(
        verified.session().authentication(),
        session.session.authentication()
    );
    assert_eq!(
        verified.session().authenticated_at(),
        session.session.authenticated_at()
    );
    let recent = get_with(addr, "/api/recent", &rotated, false).await;
    assert_eq!(recent.status, 401);
    assert_eq!(recent.challenge.as_deref(), Some(RECENCY));

    // Signing in again satisfies it.
    let again = sign_in(&app, "urn:example:mfa", &["pwd"]);
    let recent = get_with(addr, "/api/recent", again.token.expose_secret(), false).await;
    assert_eq!(recent.status, 200);
}

#[tokio::test]
async fn a_browser_route_sends_the_user_to_sign_in_with_what_the_new_authentication_must_meet() {
    let (app, addr) = start().await;
    let weak = sign_in(&app, "urn:example:pwd", &["pwd"]);
    let answer = get_with(addr, "/settings?tab=keys", weak.token.expose_secret(), true).await;
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.location.as_deref(),
        Some(
            "/login?return_to=%2Fsettings%3Ftab%3Dkeys&max_age=300&acr_values=urn%3Aexample%3Amfa"
        )
    );
    assert_eq!(answer.challenge, None);
    // The session stays: no cookie is cleared for a step-up.
    let me = get_with(addr, "/api/me", weak.token.expose_secret(), true).await;
    assert_eq!(me.status, 200);

    let strong = sign_in(&app, "urn:example:mfa", &["pwd", "otp"]);
    let answer = get_with(addr, "/settings", strong.token.expose_secret(), true).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "urn:example:mfa pwd,otp")
    );
}
