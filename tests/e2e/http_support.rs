//! What the HTTP end-to-end tests share: a router wired like production
//! (the facade, the real codec, in-memory stores, a manual clock), and one
//! way to send a request either through `oneshot` or over a loopback socket.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use tessera::application::RevokeRequest;
use tessera::axum::{Session, SessionLayer};
use tessera::domain::{Requirement, RoutePolicy, RouteRule};
use tessera::http::SessionCookies;
use tessera::{JwsAlgorithm, KeyRing, UserRole};
use tower::ServiceExt as _;

use crate::support::{App, spawn_app};

pub(crate) const COOKIE: &str = "__Host-session";

/// The policy of the test application.
pub(crate) fn policy() -> RoutePolicy<UserRole> {
    RoutePolicy::builder()
        .rule(RouteRule::new("/", Requirement::Public))
        .rule(RouteRule::new("/login", Requirement::GuestOnly).browser())
        .rule(RouteRule::new("/me", Requirement::Authenticated))
        .rule(RouteRule::new("/logout", Requirement::Authenticated).methods(&["POST"]))
        .rule(RouteRule::new("/app/*", Requirement::Authenticated).browser())
        .rule(RouteRule::new(
            "/admin/*",
            Requirement::AtLeastRole(UserRole::Admin),
        ))
        .rule(RouteRule::new(
            "/t/:tenant/*",
            Requirement::TenantParam("tenant".into()),
        ))
        .rule(RouteRule::new("/closed", Requirement::Deny))
        .build()
        .unwrap()
}

#[derive(Clone)]
struct Wiring {
    app: std::sync::Arc<App>,
    cookies: SessionCookies,
}

async fn who(session: Session) -> String {
    format!("{} {}", session.user_id(), session.role())
}

async fn maybe(session: Option<Session>) -> String {
    session.map_or_else(|| "guest".to_owned(), |s| s.role().to_string())
}

/// Echoes every `x-user-*` and `x-tenant-id` header the handler received.
pub(crate) async fn identity_headers(headers: HeaderMap) -> String {
    let mut seen: Vec<String> = headers
        .iter()
        .filter(|(name, _)| tessera::http::gateway::is_identity_header(name.as_str()))
        .map(|(name, value)| format!("{}={}", name, value.to_str().unwrap_or("?")))
        .collect();
    seen.sort();
    seen.join("\n")
}

async fn sign_in(State(wiring): State<Wiring>) -> impl IntoResponse {
    let issued = wiring.app.sign_in_alice();
    let cookie = wiring
        .cookies
        .issue(&issued.token, &issued.session)
        .unwrap();
    ([cookie.header()], issued.token.expose_secret().to_owned())
}

async fn sign_out(State(wiring): State<Wiring>, session: Session) -> impl IntoResponse {
    wiring
        .app
        .sessions
        .revoke()
        .execute(RevokeRequest::Session {
            session_id: *session.session_id(),
            authenticated_at: session.authenticated_at(),
        })
        .await
        .unwrap();
    ([wiring.cookies.clear().header()], "signed out")
}

/// The test application's routes behind `layer`.
pub(crate) fn router_with(app: App, layer: SessionLayer<UserRole>) -> Router {
    let wiring = Wiring {
        app: std::sync::Arc::new(app),
        cookies: layer.edge().cookies().clone(),
    };
    Router::new()
        .route("/", get(maybe))
        .route("/login", get(|| async { "login form" }).post(sign_in))
        .route("/me", get(who))
        .route("/logout", post(sign_out))
        .route("/app/home", get(who))
        .route(
            "/app/fail",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/admin/panel", get(who))
        .route("/t/{tenant}/billing", get(who))
        .route("/closed", get(|| async { "never" }))
        .route("/headers", get(identity_headers))
        .with_state(wiring)
        .layer(layer)
}

/// A fresh Ed25519 application and its router with the default layer.
pub(crate) fn fresh() -> (TestApp, Router) {
    let app = spawn_app(KeyRing::new(crate::support::signing_key(
        JwsAlgorithm::EdDsa,
        "k1",
    )));
    let handle = TestApp::of(&app);
    let layer = app
        .sessions
        .session_layer(policy())
        .unwrap()
        .build()
        .unwrap();
    (handle, router_with(app, layer))
}

/// What a test keeps of the application once the router owns it.
pub(crate) struct TestApp {
    pub(crate) sessions: tessera::Tessera<UserRole>,
    pub(crate) clock: std::sync::Arc<crate::support::ManualClock>,
    pub(crate) directory: std::sync::Arc<tessera::InMemoryUserDirectory<UserRole>>,
}

impl TestApp {
    fn of(app: &App) -> Self {
        Self {
            sessions: app.sessions.clone(),
            clock: app.clock.clone(),
            directory: app.directory.clone(),
        }
    }

    /// Alice's token, issued now.
    pub(crate) fn alice_token(&self) -> String {
        let issued = self
            .sessions
            .establish()
            .execute(tessera::application::EstablishRequest {
                user_id: crate::support::alice(),
                role: UserRole::User,
                capabilities: crate::support::caps(&["posts:write"]),
                tenant: Some(tessera::domain::TenantId::parse("acme").unwrap()),
                authenticated_at: None,
                authentication: Default::default(),
            })
            .unwrap();
        issued.token.expose_secret().to_owned()
    }
}

/// A request, as both transports can send it.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl Spec {
    pub(crate) fn get(path: &str) -> Self {
        Self {
            method: Method::GET,
            path: path.to_owned(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn post(path: &str) -> Self {
        Self {
            method: Method::POST,
            ..Self::get(path)
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((
            HeaderName::try_from(name).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        ));
        self
    }

    pub(crate) fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub(crate) fn cookie(self, token: &str) -> Self {
        self.header("cookie", &format!("theme=dark; {COOKIE}={token}"))
    }

    fn request(&self) -> Request<Body> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .body(Body::empty())
            .unwrap();
        for (name, value) in &self.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        request
    }
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `Set-Cookie` for the session cookie, parsed; `None` without one.
    pub(crate) fn session_cookie(&self) -> Option<cookie::Cookie<'static>> {
        let mut cookies = self
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .filter(|c| c.name() == COOKIE);
        let first = cookies.next();
        assert!(cookies.next().is_none(), "one session cookie per response");
        first
    }

    /// Asserts an error answer: status, challenge, no-store, JSON code.
    pub(crate) fn assert_error(&self, status: u16, challenge: Option<&str>, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.header("www-authenticate"), challenge, "{self:?}");
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.body, format!("{{\"error\":\"{code}\"}}"));
    }

    /// Asserts that the response deletes the session cookie.
    pub(crate) fn assert_clears_cookie(&self) {
        let cookie = self
            .session_cookie()
            .expect("a Set-Cookie clearing the session");
        assert_eq!(cookie.value(), "");
        assert_eq!(cookie.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.path(), Some("/"));
    }
}

/// How a request reaches the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `tower::ServiceExt::oneshot`, in process.
    Oneshot,
    /// HTTP/1.1 over a loopback socket, with reqwest.
    Loopback,
}

pub(crate) const TRANSPORTS: [Transport; 2] = [Transport::Oneshot, Transport::Loopback];

/// Serves `router` on 127.0.0.1 on a free port until the test ends.
pub(crate) async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

/// A client that follows no redirect and keeps no cookie: tests look at
/// exactly what the server said.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// Sends `spec` to the server at `address`.
pub(crate) async fn send_to(address: SocketAddr, spec: &Spec) -> Reply {
    let mut request = client().request(
        spec.method.clone(),
        format!("http://{address}{}", spec.path),
    );
    for (name, value) in &spec.headers {
        request = request.header(name.clone(), value.clone());
    }
    let response = request.send().await.unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// Sends `spec` to `router` through `transport`.
pub(crate) async fn send(transport: Transport, router: Router, spec: &Spec) -> Reply {
    match transport {
        Transport::Oneshot => {
            let response = router.oneshot(spec.request()).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            Reply {
                status,
                headers,
                body: String::from_utf8(body.to_vec()).unwrap(),
            }
        }
        Transport::Loopback => send_to(serve(router).await, spec).await,
    }
}
