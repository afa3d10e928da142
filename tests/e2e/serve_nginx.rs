//! nginx (`auth_request`) in front of a small upstream, asking `tessera
//! serve` for each verdict with the documented snippet
//! (`examples/nginx/tessera.conf`): sessions pass with tessera's identity
//! and nothing a client sent, guests get 401 or the sign-in redirect, a
//! force-logout takes effect and a rotated cookie reaches the client.
//!
//! The test starts its own nginx (own configuration in a temporary
//! directory, free loopback ports, foreground, as the current user). Without
//! nginx it says so and passes, unless `TESSERA_REQUIRE_NGINX=1`
//! (`scripts/test.sh` sets it and installs nginx when missing), when it
//! fails with what is missing.
//!
//! What a gateway in front of tessera must do is written once here, as
//! scenarios that take the gateway's address, with the pieces they use (the
//! echoing upstream, the gateway process, finding its program): the Caddy
//! tests (`serve_caddy.rs`) run the same scenarios.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::any;
use http::Method as HttpMethod;
use serde_json::{Value, json};

use crate::http_support::client;
use crate::serve::*;

/// The program `name` (in `PATH`, or an `sbin` directory), or `None`.
fn program(name: &str) -> Option<PathBuf> {
    let in_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    in_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The gateway program `name`, or `None` when it is missing and the
/// environment variable `require` is not `1`; when it is, a failure saying
/// what is missing and how to `install` it.
pub(crate) fn program_or_skip(name: &str, require: &str, install: &str) -> Option<PathBuf> {
    let found = program(name);
    if found.is_none() {
        let missing = format!(
            "{name} is not installed ({install}; scripts/test.sh installs it when run as root)"
        );
        assert!(
            std::env::var(require).as_deref() != Ok("1"),
            "{require}=1 but {missing}"
        );
        eprintln!("skipped: {missing}");
    }
    found
}

/// nginx, or `None` when it is missing and not required.
pub(crate) fn nginx_or_skip() -> Option<PathBuf> {
    program_or_skip(
        "nginx",
        "TESSERA_REQUIRE_NGINX",
        "Debian: apt-get install -y nginx",
    )
}

/// A free loopback port (bound, then released for the gateway).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary directory of this test's own for `program`'s files.
pub(crate) fn gateway_dir(program: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tessera-{program}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A gateway process of this test's own, writing its errors to
/// `error.log` in its directory; stopped and the directory removed when
/// dropped.
pub(crate) struct Gateway {
    child: Child,
    dir: PathBuf,
    pub(crate) addr: SocketAddr,
}

impl Gateway {
    /// The gateway `child` once it accepts connections on `addr`; a
    /// failure with its error log when it does not within five seconds.
    pub(crate) fn listening(child: Child, dir: PathBuf, addr: SocketAddr) -> Self {
        let mut gateway = Self { child, dir, addr };
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return gateway;
            }
            if let Ok(Some(status)) = gateway.child.try_wait() {
                panic!("the gateway exited ({status}): {}", gateway.error_log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the gateway did not start on {addr}: {}",
            gateway.error_log()
        );
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The snippet the README documents.
fn snippet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nginx/tessera.conf")
}

/// nginx on a free port in front of `app`, with `server_body` in its
/// `server` block; `tessera` answers the verdicts.
pub(crate) fn start_nginx(
    binary: &Path,
    tessera: SocketAddr,
    app: SocketAddr,
    server_body: &str,
) -> Gateway {
    let dir = gateway_dir("nginx");
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         error_log {d}/error.log warn;\n\
         pid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {d}/body;\n\
           proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n\
           scgi_temp_path {d}/scgi;\n\
           upstream tessera {{ server {tessera}; keepalive 32; }}\n\
           upstream app {{ server {app}; keepalive 32; }}\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             {server_body}\n\
           }}\n\
         }}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Gateway::listening(child, dir, format!("127.0.0.1:{port}").parse().unwrap())
}

/// nginx with the documented snippet.
fn start_nginx_with_snippet(binary: &Path, tessera: SocketAddr, app: SocketAddr) -> Gateway {
    start_nginx(
        binary,
        tessera,
        app,
        &format!("include {};", snippet().display()),
    )
}

/// An upstream that answers with what it received: method, URI and
/// headers.
pub(crate) async fn echo_upstream() -> SocketAddr {
    async fn echo(method: Method, uri: Uri, headers: HeaderMap) -> String {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    Value::from(value.to_str().unwrap_or("?")),
                )
            })
            .collect();
        json!({ "method": method.as_str(), "uri": uri.to_string(), "headers": headers }).to_string()
    }
    crate::support::serve_loopback(Router::new().fallback(any(echo))).await
}

/// What the upstream received.
pub(crate) struct Seen(Value);

impl Seen {
    /// What the upstream answered with: what it received.
    pub(crate) async fn of(response: reqwest::Response) -> Self {
        Self(json_of(response).await)
    }

    /// The value of header `name` (lower case) the upstream received.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.0["headers"][name].as_str()
    }

    /// The names of the headers the upstream received.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.0["headers"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    /// The headers the upstream received, as a backend holds them.
    pub(crate) fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in self.0["headers"].as_object().unwrap() {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
            );
        }
        map
    }
}

/// `GET path` through the gateway at `gateway`, with `headers`.
pub(crate) async fn through(
    gateway: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
) -> reqwest::Response {
    let mut request = client().get(format!("http://{gateway}{path}"));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

/// The client's attempt at an identity of its own.
pub(crate) fn forged() -> Vec<(&'static str, String)> {
    vec![
        ("x-user-id", BOB.to_owned()),
        ("x-user-role", "admin".to_owned()),
        ("x-user-capabilities", "users:manage".to_owned()),
        ("x-tenant-id", "victim".to_owned()),
        ("x-user-signature", "forged".to_owned()),
        ("x-user-acr", "phr".to_owned()),
        ("x-user-amr", "hwk mfa".to_owned()),
    ]
}

/// The token a `Set-Cookie` carries.
fn token_in(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .unwrap()
}

/// The scenario of a gateway at `gateway`, in front of the echoing
/// upstream and asking `tessera` for verdicts: a session (cookie or
/// bearer) passes with tessera's identity and none of a client's, which
/// the upstream can verify; a guest on a public route passes with no
/// identity; without a session an API route answers 401 with the
/// challenge, a browser route the sign-in redirect; a session short of a
/// route's role gets 403.
pub(crate) async fn passes_sessions_with_tesseras_identity_only_and_refuses_guests(
    gateway: SocketAddr,
    tessera: SocketAddr,
) {
    let (token, _) = sign_in(tessera, ALICE, "user", json!({ "tenant": "acme" })).await;
    let bearer = format!("Bearer {token}");

    // A valid session passes, by cookie or bearer token, with tessera's
    // identity and not the client's.
    for credential in [
        ("cookie", format!("{COOKIE}={token}")),
        ("authorization", bearer.clone()),
    ] {
        let mut headers = forged();
        headers.push(credential.clone());
        let passed = through(gateway, "/api/orders?page=2", &headers).await;
        assert_eq!(passed.status(), 200, "{}", credential.0);
        let seen = Seen::of(passed).await;
        assert_eq!(seen.header("x-user-id"), Some(ALICE));
        assert_eq!(seen.header("x-user-role"), Some("user"));
        assert_eq!(seen.header("x-user-capabilities"), None, "empty: none sent");
        assert_eq!(seen.header("x-tenant-id"), Some("acme"));
        assert_eq!(seen.header("x-user-acr"), None, "no acr: none sent");
        assert_eq!(seen.header("x-user-amr"), None, "no amr: none sent");
        let identity = verified_identity("GET", "/api/orders?page=2", &seen.header_map());
        assert_eq!(identity.user_id().to_string(), ALICE);
        assert_eq!(identity.role(), &tessera::UserRole::User);
    }

    // A guest on a public route: no identity header reaches the upstream.
    let guest = through(gateway, "/", &forged()).await;
    assert_eq!(guest.status(), 200);
    let seen = Seen::of(guest).await;
    for (name, _) in forged() {
        assert_eq!(seen.header(name), None, "{name} reached the upstream");
    }

    // No session: 401 with the challenge on an API route…
    let api = through(gateway, "/api/orders", &forged()).await;
    assert_eq!(api.status(), 401);
    assert_eq!(api.headers()["www-authenticate"], "Bearer");
    // …the sign-in page on a browser route…
    let browser = through(gateway, "/admin/users", &[]).await;
    assert_eq!(browser.status(), 303);
    assert_eq!(
        browser.headers()["location"],
        "/login?return_to=%2Fadmin%2Fusers"
    );
    // …and 403 for a session short of the route.
    let short = through(gateway, "/admin/users", &[("authorization", bearer)]).await;
    assert_eq!(short.status(), 403);
}

/// The scenario of a gateway at `gateway`, in front of the echoing
/// upstream and asking `tessera` for verdicts: after "permissions
/// changed", a session rotates through the gateway — the upstream sees the
/// new role, the client gets the new cookie or bearer token, which then
/// pass — and a force-logout through the admin API refuses them.
pub(crate) async fn returns_rotated_sessions_and_applies_force_logout(
    gateway: SocketAddr,
    tessera: SocketAddr,
) {
    let (token, _) = sign_in(tessera, ALICE, "user", json!({})).await;
    let (bearer_token, _) = sign_in(tessera, ALICE, "user", json!({})).await;
    let cookie = ("cookie", format!("{COOKIE}={token}"));

    // Permissions changed: the next request rotates the session, the
    // upstream sees the new role and the client gets the new cookie…
    let changed = admin(
        tessera,
        HttpMethod::PUT,
        &format!("/admin/users/{ALICE}"),
        &json!({ "role": "admin" }),
    )
    .await;
    assert_eq!(changed.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = through(gateway, "/admin/users", std::slice::from_ref(&cookie)).await;
    assert_eq!(rotated.status(), 200);
    let set_cookie = rotated.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.starts_with(&format!("{COOKIE}=")),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains(&token));
    let seen = Seen::of(rotated).await;
    assert_eq!(seen.header("x-user-role"), Some("admin"));
    let new_cookie = ("cookie", format!("{COOKIE}={}", token_in(&set_cookie)));
    let renewed = through(gateway, "/api/x", std::slice::from_ref(&new_cookie)).await;
    assert_eq!(renewed.status(), 200);
    assert!(renewed.headers().get("set-cookie").is_none());

    // …or, by bearer token, the new token in x-session-token.
    let by_bearer = through(
        gateway,
        "/api/me",
        &[("authorization", format!("Bearer {bearer_token}"))],
    )
    .await;
    assert_eq!(by_bearer.status(), 200);
    let new_bearer = format!(
        "Bearer {}",
        by_bearer.headers()["x-session-token"].to_str().unwrap()
    );
    assert_ne!(new_bearer, format!("Bearer {bearer_token}"));
    assert_eq!(
        Seen::of(by_bearer).await.header("x-user-role"),
        Some("admin")
    );
    let renewed = through(
        gateway,
        "/admin/x",
        &[("authorization", new_bearer.clone())],
    )
    .await;
    assert_eq!(renewed.status(), 200);
    assert!(renewed.headers().get("x-session-token").is_none());

    // A force-logout through the admin API takes effect through the gateway.
    let logout = admin(
        tessera,
        HttpMethod::POST,
        "/admin/force-logout",
        &json!({ "user_id": ALICE }),
    )
    .await;
    assert_eq!(logout.status(), 200);
    let refused = through(gateway, "/api/x", &[new_cookie]).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert!(
        refused.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let refused = through(gateway, "/api/x", &[("authorization", new_bearer)]).await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn nginx_passes_sessions_with_tesseras_identity_only_and_refuses_guests() {
    let Some(binary) = nginx_or_skip() else {
        return;
    };
    let tessera = start().await;
    let nginx = start_nginx_with_snippet(&binary, tessera, echo_upstream().await);
    passes_sessions_with_tesseras_identity_only_and_refuses_guests(nginx.addr, tessera).await;
}

#[tokio::test]
async fn nginx_returns_rotated_sessions_and_applies_force_logout() {
    let Some(binary) = nginx_or_skip() else {
        return;
    };
    let tessera = start().await;
    let nginx = start_nginx_with_snippet(&binary, tessera, echo_upstream().await);
    returns_rotated_sessions_and_applies_force_logout(nginx.addr, tessera).await;
}
