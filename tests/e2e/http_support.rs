//! What the HTTP end-to-end tests share: a site wired like production (the
//! facade, the real codec, in-memory stores, a manual clock), served by
//! every framework adapter, and one way to send a request to it: through
//! axum's `oneshot` in process, or over a loopback socket to the axum or
//! the actix-web server. Every edge behaviour is written once and asserted
//! on every target.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use tessera::application::ExchangeToken;
use tessera::axum::{Auth, Session, SessionLayer, exchange_token};
use tessera::domain::{Acr, Authentication, Requirement, RoutePolicy, RouteRule};
use tessera::http::SessionEdge;
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
        .rule(
            RouteRule::authenticated("/logout")
                .methods(&["POST"])
                .browser(),
        )
        .rule(RouteRule::public("/api/login").methods(&["POST"]))
        .rule(RouteRule::authenticated("/api/logout").methods(&["POST"]))
        .rule(RouteRule::public("/out").methods(&["POST"]))
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

/// The query of the test site's sign-in and sign-out routes: where a
/// browser returns to, and the authentication level (`acr`) the sign-in
/// reports.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct SignQuery {
    pub(crate) return_to: Option<String>,
    pub(crate) acr: Option<String>,
}

impl SignQuery {
    /// How the user authenticated, as the query says.
    pub(crate) fn authentication(&self) -> Authentication {
        self.acr
            .as_deref()
            .and_then(|acr| Acr::parse(acr).ok())
            .map(Authentication::at_level)
            .unwrap_or_default()
    }
}

/// Which routes a site serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routes {
    /// The test application's routes (see [`policy`]).
    Standard,
    /// Only `/`, public, whose handler nonetheless takes the required
    /// `Session`.
    PublicRequiringSession,
    /// `POST /token`, the token exchange (no session layer in front of
    /// it), and `GET /me` behind the edge, which needs a session.
    Exchange,
}

/// A test application behind one session edge, servable by every framework
/// adapter.
#[derive(Clone)]
pub(crate) struct Site {
    pub(crate) edge: SessionEdge<UserRole>,
    /// The token exchange of [`Routes::Exchange`].
    pub(crate) exchange: Option<ExchangeToken<UserRole>>,
    pub(crate) routes: Routes,
    /// The servers already started for this site, by target.
    servers: std::sync::Arc<std::sync::Mutex<Vec<(Target, SocketAddr)>>>,
}

impl Site {
    /// The address of this site's server for `target`, started on first use.
    async fn address(&self, target: Target) -> SocketAddr {
        let started = self
            .servers
            .lock()
            .unwrap()
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, address)| *address);
        if let Some(address) = started {
            return address;
        }
        let address = match target {
            Target::AxumInProcess | Target::AxumLoopback => serve(axum_router(self)).await,
            #[cfg(feature = "actix")]
            Target::ActixLoopback => crate::http_actix::serve(self),
        };
        self.servers.lock().unwrap().push((target, address));
        address
    }
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

/// Alice signs in (as the directory holds her: a user of `acme`).
async fn sign_in(auth: Auth, Query(query): Query<SignQuery>) -> impl IntoResponse {
    auth.authentication(query.authentication())
        .sign_in(&crate::support::alice(), query.return_to.as_deref())
        .await
}

async fn sign_out(auth: Auth, Query(query): Query<SignQuery>) -> impl IntoResponse {
    auth.sign_out(query.return_to.as_deref()).await
}

/// The test application's routes behind `edge`.
pub(crate) fn router_with(edge: SessionEdge<UserRole>) -> Site {
    site(edge, Routes::Standard)
}

/// The test application's `routes` behind `edge`.
pub(crate) fn site(edge: SessionEdge<UserRole>, routes: Routes) -> Site {
    Site {
        exchange: None,
        edge,
        routes,
        servers: std::sync::Arc::default(),
    }
}

/// [`Routes::Exchange`]: `exchange` at `POST /token`, and `/me` behind
/// `edge`.
pub(crate) fn exchange_site(
    edge: SessionEdge<UserRole>,
    exchange: ExchangeToken<UserRole>,
) -> Site {
    let mut site = site(edge, Routes::Exchange);
    site.exchange = Some(exchange);
    site
}

/// The site as an axum router.
fn axum_router(site: &Site) -> Router {
    let layer = SessionLayer::from(site.edge.clone());
    match site.routes {
        Routes::PublicRequiringSession => Router::new().route("/", get(who)).layer(layer),
        Routes::Exchange => Router::new().route("/me", get(who)).layer(layer).merge(
            Router::new()
                .route("/token", post(exchange_token::<UserRole>))
                .with_state(site.exchange.clone().expect("an exchange site")),
        ),
        Routes::Standard => Router::new()
            .route("/", get(maybe))
            .route("/login", get(|| async { "login form" }).post(sign_in))
            .route("/me", get(who))
            .route("/logout", post(sign_out))
            .route("/api/login", post(sign_in))
            .route("/api/logout", post(sign_out))
            .route("/out", post(sign_out))
            .route("/app/home", get(who))
            .route(
                "/app/fail",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route("/admin/panel", get(who))
            .route("/t/{tenant}/billing", get(who))
            .route("/closed", get(|| async { "never" }))
            .route("/headers", get(identity_headers))
            .layer(layer),
    }
}

/// A fresh Ed25519 application and its site with the default edge.
pub(crate) fn fresh() -> (TestApp, Site) {
    fresh_with(policy(), Routes::Standard)
}

/// A fresh Ed25519 application serving `routes` under `policy`.
pub(crate) fn fresh_with(policy: RoutePolicy<UserRole>, routes: Routes) -> (TestApp, Site) {
    let app = spawn_app(KeyRing::new(crate::support::signing_key(
        JwsAlgorithm::EdDsa,
        "k1",
    )));
    let handle = TestApp::of(&app);
    let edge = app.sessions.edge(policy).build().unwrap();
    (handle, site(edge, routes))
}

/// What a test keeps of the application once the router owns it.
pub(crate) struct TestApp {
    pub(crate) sessions: tessera::Tessera<UserRole>,
    pub(crate) clock: std::sync::Arc<crate::support::ManualClock>,
    pub(crate) directory: std::sync::Arc<tessera::InMemoryUserDirectory<UserRole>>,
}

impl TestApp {
    pub(crate) fn of(app: &App) -> Self {
        Self {
            sessions: app.sessions.clone(),
            clock: app.clock.clone(),
            directory: app.directory.clone(),
        }
    }

    /// Alice's token, issued now.
    pub(crate) fn alice_token(&self) -> String {
        self.alice_token_authenticated(Default::default())
    }

    /// Alice's token, issued now, her authentication as `authentication`
    /// says.
    pub(crate) fn alice_token_authenticated(
        &self,
        authentication: tessera::domain::Authentication,
    ) -> String {
        let issued = self
            .sessions
            .establish()
            .execute(tessera::application::EstablishRequest {
                user_id: crate::support::alice(),
                role: UserRole::User,
                capabilities: crate::support::caps(&["posts:write"]),
                tenant: Some(tessera::domain::TenantId::parse("acme").unwrap()),
                authenticated_at: None,
                authentication,
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

/// Which server answers, and how the request reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The axum router, through `tower::ServiceExt::oneshot`, in process.
    AxumInProcess,
    /// The axum server, HTTP/1.1 over a loopback socket.
    AxumLoopback,
    /// The actix-web server, HTTP/1.1 over a loopback socket.
    #[cfg(feature = "actix")]
    ActixLoopback,
}

/// Every target: each edge test runs on all of them.
pub(crate) const TARGETS: &[Target] = &[
    Target::AxumInProcess,
    Target::AxumLoopback,
    #[cfg(feature = "actix")]
    Target::ActixLoopback,
];

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

/// Sends `spec` over a fresh loopback connection, byte for byte as it is
/// (no client normalises its path or headers), and reads the whole answer.
pub(crate) async fn send_raw(address: SocketAddr, spec: &Spec) -> Reply {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut request = format!(
        "{} {} HTTP/1.1\r\nhost: {address}\r\n",
        spec.method, spec.path
    )
    .into_bytes();
    for (name, value) in &spec.headers {
        request.extend_from_slice(name.as_str().as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"connection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    parse_response(&raw, spec.method == Method::HEAD)
}

/// An HTTP/1.1 response: status line, headers, and a body delimited by
/// `Content-Length`, chunked, or the end of the connection.
fn parse_response(raw: &[u8], head: bool) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
    let (head_bytes, rest) = (&raw[..end], &raw[end + 4..]);
    let mut lines = head_bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = String::from_utf8_lossy(lines.next().unwrap()).into_owned();
    let code: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let colon = line.iter().position(|&b| b == b':').unwrap();
        let name = HeaderName::from_bytes(&line[..colon]).unwrap();
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).unwrap();
        headers.append(name, value);
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let body = if head {
        Vec::new()
    } else if chunked {
        let mut body = Vec::new();
        let mut rest = rest;
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size_text = String::from_utf8_lossy(&rest[..line_end]);
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length.to_str().unwrap().parse().unwrap();
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Reply {
        status: StatusCode::from_u16(code).unwrap(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Sends `spec` to `site`, served by `target`.
pub(crate) async fn send(target: Target, site: Site, spec: &Spec) -> Reply {
    match target {
        Target::AxumInProcess => {
            let response = axum_router(&site).oneshot(spec.request()).await.unwrap();
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
        Target::AxumLoopback => send_raw(site.address(target).await, spec).await,
        #[cfg(feature = "actix")]
        Target::ActixLoopback => send_raw(site.address(target).await, spec).await,
    }
}
