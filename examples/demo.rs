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
//! `examples/demo_actix.rs` serves the same on actix-web; both share
//! `examples/demo_common/`.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use tessera::axum::{Auth, RequireRole, Session, roles::Admin};
use tessera::{Tessera, UserRole};

#[path = "demo_common/mod.rs"]
mod common;

use common::{After, Answer, BoxError, Demo, Launch, ReturnTo, SignIn};
#[allow(unused_imports)] // The end-to-end test runs the walkthrough as `demo::walkthrough`.
pub(crate) use common::{walkthrough, walkthrough_text};

const LAUNCH: Launch = Launch {
    name: "demo",
    features: None,
    framework: "axum",
};

/// The demo's router: in-memory stores, a fresh key, the demo users.
#[allow(dead_code)] // `main` builds its own; the end-to-end tests serve this one.
pub(crate) fn app() -> Result<Router, BoxError> {
    router(common::in_memory()?)
}

/// The demo's router on PostgreSQL: users and revocations shared by every
/// instance using `database_url`, and one fixed demo signing key.
#[cfg(feature = "postgres")]
#[allow(dead_code)] // `main` builds its own; the end-to-end tests serve this one.
pub(crate) async fn postgres_app(database_url: &str) -> Result<Router, BoxError> {
    router(common::on_postgres(database_url).await?)
}

fn router(sessions: Tessera<UserRole>) -> Result<Router, BoxError> {
    let layer = sessions.session_layer(common::policy()?).build()?;
    let demo = Demo { sessions };
    Ok(Router::new()
        .route("/", get(index))
        .route("/health", get(|| async { "ok\n" }))
        .route("/login", get(login_page).post(sign_in))
        .route("/api/login", post(sign_in))
        .route("/me", get(me))
        .route("/logout", post(sign_out))
        .route("/dashboard", get(dashboard))
        .route("/admin", get(admin_page))
        .route("/admin/users/{name}/force-logout", post(force_logout))
        .with_state(demo)
        .layer(layer)
        // Outside the layer, so that its refusals become pages too.
        .layer(middleware::from_fn(pages_for_browsers)))
}

/// Refusals as HTML pages for browsers; JSON for everyone else.
async fn pages_for_browsers(request: Request, next: Next) -> Response {
    let html = common::wants_html(
        request
            .headers()
            .get(http::header::ACCEPT)
            .map(http::HeaderValue::as_bytes),
    );
    let response = next.run(request).await;
    if !html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let content_type = parts.headers.get(http::header::CONTENT_TYPE);
    match common::error_page(
        parts.status.as_u16(),
        content_type.map(http::HeaderValue::as_bytes),
        &bytes,
    ) {
        Some(page) => {
            parts.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Response::from_parts(parts, page.into())
        }
        None => Response::from_parts(parts, bytes.into()),
    }
}

async fn index(session: Option<Session>) -> Answer {
    common::index(session.as_deref())
}

async fn login_page(Query(query): Query<ReturnTo>) -> Answer {
    common::login_page(&query)
}

/// `POST /login` (a browser page: the cookie and a redirect) and `POST
/// /api/login` (the token as JSON): the policy says which route is which.
async fn sign_in(auth: Auth, Form(form): Form<SignIn>) -> Response {
    match common::signing_in(&form) {
        Some(user_id) => auth.sign_in(&user_id, form.return_to()).await,
        None => common::unknown_user(auth.is_browser()).into_response(),
    }
}

async fn me(session: Session) -> Answer {
    common::me(&session)
}

async fn dashboard(session: Session) -> Answer {
    common::dashboard(&session)
}

async fn admin_page(admin: RequireRole<Admin>) -> Answer {
    common::admin_page(&admin)
}

async fn force_logout(
    State(demo): State<Demo>,
    _admin: RequireRole<Admin>,
    Path(name): Path<String>,
    after: Result<Form<After>, FormRejection>,
) -> Answer {
    // A page's button says where to go back to; an API client sends no form.
    let after = after.map(|Form(after)| after).unwrap_or_default();
    demo.force_logout(&name, &after).await
}

/// `POST /logout`: the session revoked, its cookie cleared, the browser
/// sent to the sign-in page.
async fn sign_out(auth: Auth) -> Response {
    auth.sign_out(None).await
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    common::init_tracing();
    let args = LAUNCH.args()?;
    let app = router(LAUNCH.sessions(&args).await?)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("{}", LAUNCH.banner(&base, &args));
    axum::serve(listener, app).await?;
    Ok(())
}
