//! tessera's demo server: sessions in signed JWTs, end to end over HTTP.
//!
//! ```text
//! cargo run --example demo              # http://127.0.0.1:3000
//! cargo run --example demo -- --port 8080   # or PORT=8080
//!
//! # Two instances sharing force-logout through PostgreSQL
//! # (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test):
//! cargo run --features postgres --example demo -- --postgres --port 3000
//! cargo run --features postgres --example demo -- --postgres --port 3001
//! ```
//!
//! With `--postgres`, users and revocations live in the database and every
//! instance signs with one fixed demo key (HS256, printed nowhere, usable
//! nowhere but here), so a cookie from one instance works on the other and a
//! force-logout on one is honoured by both.
//!
//! In-memory stores, a fresh Ed25519 key per run, and three demo users:
//! alice (admin), carol (moderator) and bob (user). Signing in takes only a
//! user name, because authenticating users is the application's job, not
//! tessera's: tessera starts once the application knows who the user is.
//! On start it prints a curl walkthrough; the end-to-end test
//! `tests/e2e/http_demo.rs` runs the very same steps against this router.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use tessera::application::ports::{DirectoryUser, WatermarkScope};
use tessera::application::{EstablishRequest, RevokeRequest};
use tessera::axum::{RequireRole, Session, roles::Admin};
use tessera::domain::{Capability, Requirement, Role, RoutePolicy, RouteRule, UserId};
use tessera::http::{SessionCookies, safe_return_to};
use tessera::{InMemoryUserDirectory, JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};

/// A demo user: name, id, role, capabilities.
pub(crate) struct DemoUser {
    pub(crate) name: &'static str,
    id: &'static str,
    role: UserRole,
    capabilities: &'static [&'static str],
}

pub(crate) const USERS: [DemoUser; 3] = [
    DemoUser {
        name: "alice",
        id: "0190b5a4-7c2e-7d3a-9f00-00000000a11c",
        role: UserRole::Admin,
        capabilities: &["reports:read", "users:manage"],
    },
    DemoUser {
        name: "carol",
        id: "0190b5a4-7c2e-7d3a-9f00-0000000ca201",
        role: UserRole::Moderator,
        capabilities: &["reports:read"],
    },
    DemoUser {
        name: "bob",
        id: "0190b5a4-7c2e-7d3a-9f00-000000000b0b",
        role: UserRole::User,
        capabilities: &[],
    },
];

impl DemoUser {
    fn id(&self) -> Result<UserId, tessera::domain::IdError> {
        UserId::parse(self.id)
    }

    fn capabilities(&self) -> Result<BTreeSet<Capability>, tessera::domain::IdError> {
        self.capabilities
            .iter()
            .map(|c| Capability::parse(c))
            .collect()
    }

    fn directory_entry(&self) -> Result<DirectoryUser<UserRole>, tessera::domain::IdError> {
        Ok(DirectoryUser {
            user_id: self.id()?,
            role: self.role,
            capabilities: self.capabilities()?,
            tenant: None,
            enabled: true,
        })
    }

    fn named(name: &str) -> Option<&'static Self> {
        USERS.iter().find(|user| user.name == name)
    }

    fn with_id(id: &UserId) -> Option<&'static Self> {
        USERS
            .iter()
            .find(|user| user.id().is_ok_and(|known| &known == id))
    }
}

/// Who may reach what. Unlisted routes are denied.
pub(crate) fn policy() -> Result<RoutePolicy<UserRole>, tessera::domain::PolicyError> {
    RoutePolicy::builder()
        .rule(RouteRule::new("/", Requirement::Public).methods(&["GET"]))
        .rule(RouteRule::new("/health", Requirement::Public).methods(&["GET"]))
        .rule(
            RouteRule::new("/login", Requirement::GuestOnly)
                .methods(&["GET", "POST"])
                .browser(),
        )
        .rule(RouteRule::new("/me", Requirement::Authenticated).methods(&["GET"]))
        .rule(RouteRule::new("/logout", Requirement::Authenticated).methods(&["POST"]))
        .rule(
            RouteRule::new("/dashboard", Requirement::Authenticated)
                .methods(&["GET"])
                .browser(),
        )
        .rule(
            RouteRule::new("/admin", Requirement::AtLeastRole(UserRole::Admin))
                .methods(&["GET"])
                .browser(),
        )
        .rule(
            RouteRule::new(
                "/admin/users/:name/force-logout",
                Requirement::AtLeastRole(UserRole::Admin),
            )
            .methods(&["POST"]),
        )
        .build()
}

#[derive(Clone)]
struct Demo {
    sessions: Tessera<UserRole>,
    cookies: SessionCookies,
}

/// The demo's router: in-memory stores, a fresh key, the demo users.
pub(crate) fn app() -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let directory = Arc::new(InMemoryUserDirectory::new());
    for user in &USERS {
        directory.upsert(user.directory_entry()?);
    }
    let key = SigningKey::generate(JwsAlgorithm::EdDsa, "demo-key")?;
    router(
        Tessera::builder(KeyRing::new(key), "http://127.0.0.1", "tessera-demo")
            .user_directory(directory)
            .build(),
    )
}

/// The demo's router on PostgreSQL: users and revocations shared by every
/// instance using `database_url`, and one fixed demo signing key.
#[cfg(feature = "postgres")]
pub(crate) async fn postgres_app(
    database_url: &str,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    use tessera::domain::SessionLifetimes;
    use tessera::infrastructure::postgres::{
        PostgresRevocationConfig, PostgresRevocationStore, PostgresUserDirectory, migrate,
        sqlx::postgres::PgPoolOptions,
    };

    /// A demo-only secret: every instance must sign with the same key.
    const DEMO_SECRET: &[u8; 32] = b"tessera-demo-only-shared-secret!";

    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(database_url)
        .await?;
    migrate(&pool).await?;
    let directory = PostgresUserDirectory::new(pool.clone());
    for user in &USERS {
        directory.upsert(&user.directory_entry()?).await?;
    }
    let lifetimes = SessionLifetimes::default();
    let revocations = PostgresRevocationStore::start(
        pool,
        Arc::new(tessera::SystemClock),
        PostgresRevocationConfig::new(lifetimes),
    )
    .await?;
    let key = SigningKey::hmac_sha256("demo-shared", DEMO_SECRET)?;
    router(
        Tessera::builder(KeyRing::new(key), "http://127.0.0.1", "tessera-demo")
            .lifetimes(lifetimes)
            .user_directory(Arc::new(directory))
            .revocation_store(Arc::new(revocations))
            .build(),
    )
}

fn router(sessions: Tessera<UserRole>) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let layer = sessions.session_layer(policy()?)?.build()?;
    let demo = Demo {
        sessions,
        cookies: layer.edge().cookies().clone(),
    };
    Ok(Router::new()
        .route("/", get(index))
        .route("/health", get(|| async { "ok\n" }))
        .route("/login", get(login_page).post(sign_in))
        .route("/me", get(me))
        .route("/logout", post(sign_out))
        .route("/dashboard", get(dashboard))
        .route("/admin", get(admin_page))
        .route("/admin/users/{name}/force-logout", post(force_logout))
        .with_state(demo)
        .layer(layer))
}

fn name_of(session: &Session) -> &'static str {
    DemoUser::with_id(session.user_id()).map_or("someone", |user| user.name)
}

async fn index(session: Option<Session>) -> String {
    let who = match &session {
        Some(session) => format!("signed in as {} ({})", name_of(session), session.role()),
        None => "not signed in".to_owned(),
    };
    format!(
        "tessera demo: {who}\n\
         POST /login (username=alice|carol|bob), GET /me, GET /dashboard, GET /admin,\n\
         POST /admin/users/<name>/force-logout, POST /logout\n"
    )
}

#[derive(Deserialize)]
struct ReturnTo {
    return_to: Option<String>,
}

async fn login_page(query: axum::extract::Query<ReturnTo>) -> Html<String> {
    // Only a safe (relative, same-site) target is carried on: no open redirect.
    let hidden = query
        .return_to
        .as_deref()
        .and_then(safe_return_to)
        .map(|to| {
            format!(
                r#"<input type="hidden" name="return_to" value="{}">"#,
                html_escape(to)
            )
        })
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><title>Sign in</title><form method=post action=/login>\
         <label>User <select name=username><option>alice<option>carol<option>bob</select></label>\
         {hidden}<button>Sign in</button></form>\n"
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Deserialize)]
struct SignIn {
    username: String,
    return_to: Option<String>,
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(serde_json::json!({ "error": code }))).into_response()
}

async fn sign_in(State(demo): State<Demo>, Form(form): Form<SignIn>) -> Response {
    // Authentication is the application's job; the demo trusts the name.
    let Some(user) = DemoUser::named(&form.username) else {
        return error(StatusCode::BAD_REQUEST, "unknown_user");
    };
    let (Ok(user_id), Ok(capabilities)) = (user.id(), user.capabilities()) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    let issued = match demo.sessions.establish().execute(EstablishRequest {
        user_id,
        role: user.role,
        capabilities,
        tenant: None,
        authenticated_at: None,
        authentication: Default::default(),
    }) {
        Ok(issued) => issued,
        Err(e) => {
            tracing::error!(error = %e, "session could not be established");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
        }
    };
    let cookie = match demo.cookies.issue(&issued.token, &issued.session) {
        Ok(cookie) => cookie,
        Err(e) => {
            tracing::error!(error = %e, "session cookie could not be issued");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
        }
    };
    if let Some(to) = form.return_to.as_deref().and_then(safe_return_to) {
        return ([cookie.header()], Redirect::to(to)).into_response();
    }
    let expires_in = (issued.session.expires_at() - issued.session.issued_at()).whole_seconds();
    let body = serde_json::json!({
        "user": user.name,
        "role": user.role.name(),
        "expires_in": expires_in,
        // For bearer clients; browsers use the HttpOnly cookie.
        "token": issued.token.expose_secret(),
    });
    ([cookie.header()], Json(body)).into_response()
}

async fn me(session: Session) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user": name_of(&session),
        "user_id": session.user_id().to_string(),
        "role": session.role().name(),
        "capabilities": session.capabilities().iter().map(Capability::as_str).collect::<Vec<_>>(),
        "session_id": session.session_id().to_string(),
        "expires_at": session.expires_at().unix_timestamp(),
    }))
}

async fn dashboard(session: Session) -> String {
    format!(
        "Dashboard: hello {}, any signed-in user sees this page.\n",
        name_of(&session)
    )
}

async fn admin_page(admin: RequireRole<Admin>) -> String {
    let users: Vec<String> = USERS
        .iter()
        .map(|user| format!("{} ({})", user.name, user.role))
        .collect();
    format!(
        "Admin page for {}: users {}.\n",
        name_of(&admin),
        users.join(", ")
    )
}

async fn force_logout(
    State(demo): State<Demo>,
    _admin: RequireRole<Admin>,
    Path(name): Path<String>,
) -> Response {
    let Some(user_id) = DemoUser::named(&name).and_then(|user| user.id().ok()) else {
        return error(StatusCode::NOT_FOUND, "unknown_user");
    };
    match demo
        .sessions
        .revoke()
        .execute(RevokeRequest::ForceLogout(WatermarkScope::User(user_id)))
        .await
    {
        Ok(()) => Json(serde_json::json!({ "force_logged_out": name })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "force-logout failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
    }
}

async fn sign_out(State(demo): State<Demo>, session: Session) -> Response {
    let revoked = demo
        .sessions
        .revoke()
        .execute(RevokeRequest::Session {
            session_id: *session.session_id(),
            authenticated_at: session.authenticated_at(),
        })
        .await;
    match revoked {
        Ok(()) => (
            [demo.cookies.clear().header()],
            Json(serde_json::json!({ "signed_out": name_of(&session) })),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "logout failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
    }
}

/// One step of the walkthrough: what curl does, and what it should get.
pub(crate) struct Step {
    /// The comment printed above the command.
    pub(crate) note: &'static str,
    /// `-X`.
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    /// `-d`, form-encoded.
    pub(crate) form: Option<&'static str>,
    /// `-b <jar>`: send the jar's cookies.
    pub(crate) send_jar: Option<&'static str>,
    /// `-c <jar>`: store the response's cookies.
    pub(crate) store_jar: Option<&'static str>,
    /// Send `Authorization: Bearer $TOKEN` (the token of the last sign-in
    /// whose JSON was captured into `TOKEN`).
    pub(crate) bearer: bool,
    /// Capture the `token` of the JSON answer into `TOKEN`.
    pub(crate) capture_token: bool,
    /// The status it answers.
    pub(crate) status: u16,
    /// Text the body contains (or the `Location` for redirects).
    #[allow(dead_code)] // Read by the end-to-end test that runs the walkthrough.
    pub(crate) expect: &'static str,
}

/// The walkthrough, one step per curl command.
pub(crate) fn walkthrough() -> Vec<Step> {
    let step = |note, method, path, status, expect| Step {
        note,
        method,
        path,
        form: None,
        send_jar: None,
        store_jar: None,
        bearer: false,
        capture_token: false,
        status,
        expect,
    };
    vec![
        Step {
            form: Some("username=alice"),
            store_jar: Some("alice.jar"),
            ..step(
                "alice (admin) signs in; her session cookie goes into alice.jar",
                "POST",
                "/login",
                200,
                "\"role\":\"admin\"",
            )
        },
        Step {
            send_jar: Some("alice.jar"),
            ..step("who am I?", "GET", "/me", 200, "\"user\":\"alice\"")
        },
        Step {
            send_jar: Some("alice.jar"),
            ..step(
                "a page for any signed-in user",
                "GET",
                "/dashboard",
                200,
                "hello alice",
            )
        },
        Step {
            send_jar: Some("alice.jar"),
            ..step(
                "the admin-only page",
                "GET",
                "/admin",
                200,
                "Admin page for alice",
            )
        },
        Step {
            form: Some("username=bob"),
            store_jar: Some("bob.jar"),
            ..step(
                "bob (a plain user) signs in",
                "POST",
                "/login",
                200,
                "\"role\":\"user\"",
            )
        },
        Step {
            send_jar: Some("bob.jar"),
            ..step(
                "the admin page is not for bob: 403 insufficient_scope",
                "GET",
                "/admin",
                403,
                "insufficient_scope",
            )
        },
        Step {
            send_jar: Some("alice.jar"),
            ..step(
                "alice force-logs-out bob, on every device",
                "POST",
                "/admin/users/bob/force-logout",
                200,
                "\"force_logged_out\":\"bob\"",
            )
        },
        Step {
            send_jar: Some("bob.jar"),
            ..step(
                "bob's session is refused now: 401 invalid_token",
                "GET",
                "/me",
                401,
                "invalid_token",
            )
        },
        Step {
            form: Some("username=carol"),
            capture_token: true,
            ..step(
                "carol (moderator) signs in as an API client and keeps the token",
                "POST",
                "/login",
                200,
                "\"token\":",
            )
        },
        Step {
            bearer: true,
            ..step(
                "carol uses it as a bearer token",
                "GET",
                "/me",
                200,
                "\"user\":\"carol\"",
            )
        },
        step(
            "without a session a page redirects to sign-in (303)...",
            "GET",
            "/dashboard",
            303,
            "/login?return_to=%2Fdashboard",
        ),
        step(
            "...and the API answers 401 with a Bearer challenge",
            "GET",
            "/me",
            401,
            "unauthenticated",
        ),
        Step {
            send_jar: Some("alice.jar"),
            ..step(
                "alice signs out: her session is revoked and the cookie cleared",
                "POST",
                "/logout",
                200,
                "\"signed_out\":\"alice\"",
            )
        },
        Step {
            send_jar: Some("alice.jar"),
            ..step(
                "the token still in alice.jar is refused",
                "GET",
                "/me",
                401,
                "invalid_token",
            )
        },
    ]
}

impl Step {
    /// The curl command, against `base` (`http://127.0.0.1:3000`).
    pub(crate) fn curl(&self, base: &str) -> String {
        let mut command = String::from("curl -s");
        if self.status != 200 {
            // Show the status line and headers where they are the point.
            command.push_str(" -i");
        }
        if let Some(jar) = self.send_jar {
            command.push_str(&format!(" -b {jar}"));
        }
        if let Some(jar) = self.store_jar {
            command.push_str(&format!(" -c {jar}"));
        }
        if self.bearer {
            command.push_str(" -H \"Authorization: Bearer $TOKEN\"");
        }
        match (self.method, self.form) {
            ("POST", Some(form)) => command.push_str(&format!(" -d {form}")),
            ("POST", None) => command.push_str(" -X POST"),
            _ => {}
        }
        command.push_str(&format!(" {base}{}", self.path));
        if self.capture_token {
            command = format!("TOKEN=$({command} | sed -E 's/.*\"token\":\"([^\"]+)\".*/\\1/')");
        } else {
            command.push_str("; echo");
        }
        command
    }
}

/// The walkthrough as printed on start.
pub(crate) fn walkthrough_text(base: &str) -> String {
    let mut text = String::new();
    for (number, step) in walkthrough().iter().enumerate() {
        text.push_str(&format!(
            "# {}. {}\n{}\n",
            number + 1,
            step.note,
            step.curl(base)
        ));
    }
    text
}

/// The command line: `[--port N] [--postgres[=URL]]`.
struct Args {
    port: u16,
    /// The database URL, when `--postgres` was given.
    postgres: Option<String>,
}

const USAGE: &str = "usage: demo [--port N] [--postgres[=DATABASE_URL]]";

fn args() -> Result<Args, String> {
    let mut port = std::env::var("PORT").ok();
    let mut postgres = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = Some(args.next().ok_or("--port needs a number")?),
            "--postgres" => {
                postgres = Some(
                    std::env::var("DATABASE_URL")
                        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
                );
            }
            other => {
                if let Some(value) = other.strip_prefix("--port=") {
                    port = Some(value.to_owned());
                } else if let Some(url) = other.strip_prefix("--postgres=") {
                    postgres = Some(url.to_owned());
                } else {
                    return Err(format!("unknown argument {other:?}; {USAGE}"));
                }
            }
        }
    }
    let port = match port {
        None => 3000,
        Some(value) => value
            .parse()
            .map_err(|_| format!("{value:?} is not a port number (1 to 65535)"))?,
    };
    Ok(Args { port, postgres })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .init();
    let args = args()?;
    let app = match &args.postgres {
        None => app()?,
        #[cfg(feature = "postgres")]
        Some(url) => postgres_app(url).await?,
        #[cfg(not(feature = "postgres"))]
        Some(_) => return Err("--postgres needs the postgres feature: cargo run --features postgres --example demo -- --postgres".into()),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!(
        "tessera demo listening on {base}\n\
         stores: {}\n\
         users: alice (admin), carol (moderator), bob (user); sign in with just the name.\n\
         Refusals are logged below with their reason (never the token).\n\n\
         Try, in another shell (run in a scratch directory: the jars are files):\n\n{}",
        if args.postgres.is_some() {
            "PostgreSQL, shared with every demo started with --postgres on the same database"
        } else {
            "in memory"
        },
        walkthrough_text(&base)
    );
    axum::serve(listener, app).await?;
    Ok(())
}
