//! What the demo servers share — `examples/demo.rs` (axum) and
//! `examples/demo_actix.rs` (actix-web) include this module: the users,
//! the policy, each page's work as an `http` response, the curl
//! walkthrough and the command line. Each demo only routes and translates,
//! as tessera's framework adapters do.

use std::collections::BTreeSet;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode};
use serde::Deserialize;
use tessera::http::safe_return_to;
use tessera::prelude::*;

/// What the demos' setup can fail with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A page's answer, whatever the framework.
pub(crate) type Answer = Response<String>;

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

/// Who may reach what. Unlisted paths are 404.
pub(crate) fn policy() -> Result<RoutePolicy<UserRole>, tessera::domain::PolicyError> {
    RoutePolicy::builder()
        .rule(RouteRule::new("/", Requirement::Public).methods(&["GET"]))
        .rule(RouteRule::new("/health", Requirement::Public).methods(&["GET"]))
        .rule(
            RouteRule::new("/login", Requirement::GuestOnly)
                .methods(&["GET", "POST"])
                .browser(),
        )
        .rule(RouteRule::new("/api/login", Requirement::Public).methods(&["POST"]))
        .rule(RouteRule::new("/me", Requirement::Authenticated).methods(&["GET"]))
        .rule(
            RouteRule::new("/logout", Requirement::Authenticated)
                .methods(&["POST"])
                .browser(),
        )
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
        // A browser's /favicon.ico and other unmatched paths: 404, not a
        // refusal to log.
        .default_requirement(Requirement::NotFound)
        .build()
}

/// The session manager of a demo: in-memory stores, a fresh key, the demo
/// users.
pub(crate) fn in_memory() -> Result<Tessera<UserRole>, BoxError> {
    let directory = Arc::new(InMemoryUserDirectory::new());
    for user in &USERS {
        directory.upsert(user.directory_entry()?);
    }
    Ok(Tessera::builder(
        KeyRing::generate("demo-key")?,
        "http://127.0.0.1",
        "tessera-demo",
    )
    .user_directory(directory)
    .build())
}

/// The session manager of a demo on PostgreSQL: users and revocations
/// shared by every instance using `database_url`, and one fixed demo
/// signing key.
#[cfg(feature = "postgres")]
pub(crate) async fn on_postgres(database_url: &str) -> Result<Tessera<UserRole>, BoxError> {
    use tessera::SigningKey;
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
    Ok(
        Tessera::builder(KeyRing::new(key), "http://127.0.0.1", "tessera-demo")
            .lifetimes(lifetimes)
            .user_directory(Arc::new(directory))
            .revocation_store(Arc::new(revocations))
            .build(),
    )
}

/// The state of the pages that sign in and out and force-log-out.
#[derive(Clone)]
pub(crate) struct Demo {
    pub(crate) sessions: Tessera<UserRole>,
}

fn with_type(status: StatusCode, content_type: &'static str, body: String) -> Answer {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json(status: StatusCode, body: &serde_json::Value) -> Answer {
    with_type(status, "application/json", body.to_string())
}

fn error(status: StatusCode, code: &str) -> Answer {
    json(status, &serde_json::json!({ "error": code }))
}

/// An HTML page: the demo's pages are for browsers.
fn page(status: StatusCode, title: &str, body: &str) -> Answer {
    with_type(
        status,
        "text/html; charset=utf-8",
        format!(
            "<!doctype html><html lang=en><meta charset=utf-8>\
             <meta name=viewport content=\"width=device-width\">\
             <title>{title} · tessera demo</title>\
             <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}\
             form{{display:inline}}</style>\
             <h1>{title}</h1>\n{body}\n<p><a href=/>Home</a></p>\n"
        ),
    )
}

/// A same-origin form that posts to `action`: a button, and where the
/// browser goes afterwards.
fn button(action: &str, label: &str, return_to: Option<&str>) -> String {
    let hidden = return_to
        .map(|to| {
            format!(
                r#"<input type=hidden name=return_to value="{}">"#,
                html_escape(to)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<form method=post action="{}">{hidden}<button>{}</button></form>"#,
        html_escape(action),
        html_escape(label)
    )
}

fn name_of(session: &SessionEntity<UserRole>) -> &'static str {
    DemoUser::with_id(session.user_id()).map_or("someone", |user| user.name)
}

/// `GET /`: for guests and users alike.
pub(crate) fn index(session: Option<&SessionEntity<UserRole>>) -> Answer {
    let who = match session {
        Some(session) => format!(
            "<p>Signed in as <b>{}</b> ({}). {}</p>",
            name_of(session),
            session.role(),
            button("/logout", "Sign out", None)
        ),
        None => "<p>Not signed in. <a href=/login>Sign in</a></p>".to_owned(),
    };
    page(
        StatusCode::OK,
        "tessera demo",
        &format!(
            "{who}<ul><li><a href=/dashboard>Dashboard</a>: any signed-in user\
             <li><a href=/admin>Admin</a>: admins only, with force-logout buttons\
             <li><a href=/me>/me</a>: the session as JSON, for API clients</ul>"
        ),
    )
}

/// The query of `GET /login`.
#[derive(Deserialize)]
pub(crate) struct ReturnTo {
    pub(crate) return_to: Option<String>,
}

/// `GET /login`: the sign-in form.
pub(crate) fn login_page(query: &ReturnTo) -> Answer {
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
    page(
        StatusCode::OK,
        "Sign in",
        &format!(
            "<form method=post action=/login>\
             <label>User <select name=username><option value=alice>alice<option value=carol>carol<option value=bob>bob</select></label>\
             {hidden} <button>Sign in</button></form>\
             <p>alice is an admin, carol a moderator, bob a user. Authentication is the \
             application's job: the demo trusts the name.</p>"
        ),
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The form of `POST /login` and `POST /api/login`.
#[derive(Deserialize)]
pub(crate) struct SignIn {
    username: String,
    return_to: Option<String>,
}

/// The form of the pages' buttons: where the browser goes afterwards.
#[derive(Deserialize, Default)]
pub(crate) struct After {
    return_to: Option<String>,
}

/// Who signs in with `form` (`POST /login` from a browser, `POST
/// /api/login` from an API client): authentication is the application's
/// job, and the demo trusts the name.
pub(crate) fn signing_in(form: &SignIn) -> Option<UserId> {
    DemoUser::named(&form.username).and_then(|user| user.id().ok())
}

/// The answer to a name that is no demo user's: a page for a browser,
/// JSON for an API client.
pub(crate) fn unknown_user(browser: bool) -> Answer {
    if browser {
        page(
            StatusCode::BAD_REQUEST,
            "Unknown user",
            "<p>Sign in as alice, carol or bob: <a href=/login>try again</a>.</p>",
        )
    } else {
        error(StatusCode::BAD_REQUEST, "unknown_user")
    }
}

impl SignIn {
    /// Where the browser was going.
    pub(crate) fn return_to(&self) -> Option<&str> {
        self.return_to.as_deref()
    }
}

impl Demo {
    /// `POST /admin/users/<name>/force-logout`: every session of `name`
    /// ends. A button of the admin page comes back to it; an API client
    /// gets JSON.
    pub(crate) async fn force_logout(&self, name: &str, after: &After) -> Answer {
        let Some(user_id) = DemoUser::named(name).and_then(|user| user.id().ok()) else {
            return error(StatusCode::NOT_FOUND, "unknown_user");
        };
        let revoked = self
            .sessions
            .revoke()
            .execute(RevokeRequest::ForceLogout(WatermarkScope::User(user_id)))
            .await;
        if let Err(e) = revoked {
            tracing::error!(error = %e, "force-logout failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
        }
        match after.return_to.as_deref().and_then(safe_return_to) {
            Some(to) => {
                let mut answer = with_type(StatusCode::SEE_OTHER, "text/plain", String::new());
                if let Ok(location) = HeaderValue::from_str(to) {
                    answer.headers_mut().insert(LOCATION, location);
                }
                answer
            }
            None => json(
                StatusCode::OK,
                &serde_json::json!({ "force_logged_out": name }),
            ),
        }
    }
}

/// `GET /me`: the session, for API clients.
pub(crate) fn me(session: &SessionEntity<UserRole>) -> Answer {
    json(
        StatusCode::OK,
        &serde_json::json!({
            "user": name_of(session),
            "user_id": session.user_id().to_string(),
            "role": session.role().name(),
            "capabilities": session.capabilities().iter().map(Capability::as_str).collect::<Vec<_>>(),
            "session_id": session.session_id().to_string(),
            "expires_at": session.expires_at().unix_timestamp(),
        }),
    )
}

/// `GET /dashboard`.
pub(crate) fn dashboard(session: &SessionEntity<UserRole>) -> Answer {
    page(
        StatusCode::OK,
        "Dashboard",
        &format!(
            "<p>Hello {}, any signed-in user sees this page. {}</p>",
            name_of(session),
            button("/logout", "Sign out", None)
        ),
    )
}

/// `GET /admin`: the users, each with a force-logout button.
pub(crate) fn admin_page(admin: &SessionEntity<UserRole>) -> Answer {
    let users: String = USERS
        .iter()
        .map(|user| {
            format!(
                "<li>{} ({}) {}",
                user.name,
                user.role,
                button(
                    &format!("/admin/users/{}/force-logout", user.name),
                    &format!("Force-logout {}", user.name),
                    Some("/admin"),
                )
            )
        })
        .collect();
    page(
        StatusCode::OK,
        "Admin",
        &format!(
            "<p>Admin page for {}. {}</p><ul>{users}</ul>",
            name_of(admin),
            button("/logout", "Sign out", None)
        ),
    )
}

/// Whether a request with this `Accept` header wants pages rather than
/// JSON: browsers ask for `text/html` on every navigation and form post.
pub(crate) fn wants_html(accept: Option<&[u8]>) -> bool {
    accept.is_some_and(|accept| accept.windows(9).any(|window| window == b"text/html"))
}

/// An HTML page for a refusal the session middleware answered with
/// `{"error":"<code>"}`, for a browser; `None` for any other answer.
pub(crate) fn error_page(status: u16, content_type: Option<&[u8]>, body: &[u8]) -> Option<String> {
    if status < 400 || content_type != Some(b"application/json".as_slice()) {
        return None;
    }
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("error")?
        .as_str()?
        .to_owned();
    let explanation = match code.as_str() {
        "unauthenticated" | "invalid_token" => {
            "Your session is over or was never there: <a href=/login>sign in</a>."
        }
        "insufficient_scope" | "forbidden" => "Your role may not see this page.",
        "cross_origin_request" => {
            "This form was sent from another site, so it was refused: nothing changed."
        }
        "not_found" => "There is nothing here.",
        "temporarily_unavailable" => "Sessions cannot be checked right now; try again shortly.",
        _ => "The request was refused.",
    };
    let status = StatusCode::from_u16(status).ok()?;
    let title = status.canonical_reason().unwrap_or("Refused");
    Some(
        page(
            status,
            title,
            &format!(
                "<p>{explanation}</p><p><small>error: {}</small></p>",
                html_escape(&code)
            ),
        )
        .into_body(),
    )
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
    /// Capture the `access_token` of the JSON answer into `TOKEN`.
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
                "alice (admin) signs in as a browser would; her session cookie goes into alice.jar",
                "POST",
                "/login",
                303,
                "/",
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
                "Hello alice",
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
            ..step("bob (a plain user) signs in", "POST", "/login", 303, "/")
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
                "/api/login",
                200,
                "\"access_token\":",
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
                303,
                "/login",
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
            command =
                format!("TOKEN=$({command} | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')");
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

/// How a demo is started, for its messages: `cargo run --example demo`.
pub(crate) struct Launch {
    /// The example's name.
    pub(crate) name: &'static str,
    /// The features it needs besides `postgres` (`"actix"`), if any.
    pub(crate) features: Option<&'static str>,
    /// The framework it serves with.
    pub(crate) framework: &'static str,
}

/// The command line: `[--port N] [--postgres[=URL]]`.
pub(crate) struct Args {
    pub(crate) port: u16,
    /// The database URL, when `--postgres` was given.
    pub(crate) postgres: Option<String>,
}

impl Launch {
    /// Reads the command line (`PORT` when there is no `--port`).
    pub(crate) fn args(&self) -> Result<Args, String> {
        let usage = format!(
            "usage: {} [--port N] [--postgres[=DATABASE_URL]]",
            self.command(false)
        );
        let mut port = std::env::var("PORT").ok();
        let mut postgres = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--port" => port = Some(args.next().ok_or("--port needs a number")?),
                "--postgres" => {
                    postgres =
                        Some(std::env::var("DATABASE_URL").unwrap_or_else(|_| {
                            "postgres://postgres@127.0.0.1:5432/test".to_owned()
                        }));
                }
                other => {
                    if let Some(value) = other.strip_prefix("--port=") {
                        port = Some(value.to_owned());
                    } else if let Some(url) = other.strip_prefix("--postgres=") {
                        postgres = Some(url.to_owned());
                    } else {
                        return Err(format!("unknown argument {other:?}; {usage}"));
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

    /// The demo's session manager: in memory, or on PostgreSQL with
    /// `--postgres`.
    pub(crate) async fn sessions(&self, args: &Args) -> Result<Tessera<UserRole>, BoxError> {
        match &args.postgres {
            None => in_memory(),
            #[cfg(feature = "postgres")]
            Some(url) => on_postgres(url).await,
            #[cfg(not(feature = "postgres"))]
            Some(_) => Err(format!(
                "--postgres needs the postgres feature: {} --postgres",
                self.command(true)
            )
            .into()),
        }
    }

    /// `cargo run [--features …] --example <name> --`, with the
    /// `postgres` feature or without.
    fn command(&self, postgres: bool) -> String {
        let features = match (self.features, postgres) {
            (Some(features), true) => format!(" --features {features},postgres"),
            (Some(features), false) => format!(" --features {features}"),
            (None, true) => " --features postgres".to_owned(),
            (None, false) => String::new(),
        };
        format!("cargo run{features} --example {} --", self.name)
    }

    /// What the demo prints on start, listening on `base`.
    pub(crate) fn banner(&self, base: &str, args: &Args) -> String {
        format!(
            "tessera demo ({}) listening on {base}\n\
             stores: {}\n\
             users: alice (admin), carol (moderator), bob (user); sign in with just the name.\n\
             Refusals are logged below with their reason (never the token).\n\n\
             Open {base} in a browser: sign in, visit the pages, sign out, force-logout.\n\
             Or, in another shell (run in a scratch directory: the jars are files):\n\n{}",
            self.framework,
            if args.postgres.is_some() {
                "PostgreSQL, shared with every demo started with --postgres on the same database"
            } else {
                "in memory"
            },
            walkthrough_text(base)
        )
    }
}

/// Logs at debug, without targets; colours only on a terminal, plain text
/// in a file.
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
}
