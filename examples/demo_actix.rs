//! tessera's demo server on actix-web: the same routes, users, policy and
//! curl walkthrough as `examples/demo.rs` (axum), from the module both
//! include (`examples/demo_common/`).
//!
//! ```text
//! cargo run --features actix --example demo_actix              # http://127.0.0.1:3000
//! cargo run --features actix --example demo_actix -- --port 8080   # or PORT=8080
//! cargo run --features actix,postgres --example demo_actix -- --postgres
//! ```

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{App, Error, HttpResponse, HttpServer, web};
use tessera::actix::{Auth, MaybeSession, RequireRole, Session, SessionMiddleware, roles::Admin};
use tessera::{Tessera, UserRole};

#[path = "demo_common/mod.rs"]
mod common;

use common::{After, Answer, BoxError, Demo, Launch, ReturnTo, SignIn};
#[allow(unused_imports)]
// For an end-to-end test running the walkthrough as `demo_actix::walkthrough`.
pub(crate) use common::{walkthrough, walkthrough_text};

const LAUNCH: Launch = Launch {
    name: "demo_actix",
    features: Some("actix"),
    framework: "actix-web",
};

/// The demo's state and middleware: in-memory stores, a fresh key, the
/// demo users. Serve them with [`configure`].
#[allow(dead_code)] // `main` builds its own; for tests serving the demo.
pub(crate) fn app() -> Result<(Demo, SessionMiddleware), BoxError> {
    wire(common::in_memory()?)
}

fn wire(sessions: Tessera<UserRole>) -> Result<(Demo, SessionMiddleware), BoxError> {
    let middleware = sessions.session_middleware(common::policy()?).build()?;
    let demo = Demo { sessions };
    Ok((demo, middleware))
}

/// The demo's routes, with `demo` as their state; wrap the app in the
/// middleware.
pub(crate) fn configure(demo: Demo) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |config| {
        config
            .app_data(web::Data::new(demo.clone()))
            .route("/", web::get().to(index))
            .route("/health", web::get().to(|| async { "ok\n" }))
            .service(
                web::resource("/login")
                    .route(web::get().to(login_page))
                    .route(web::post().to(sign_in)),
            )
            .route("/api/login", web::post().to(sign_in))
            .route("/me", web::get().to(me))
            .route("/logout", web::post().to(sign_out))
            .route("/dashboard", web::get().to(dashboard))
            .route("/admin", web::get().to(admin_page))
            .route(
                "/admin/users/{name}/force-logout",
                web::post().to(force_logout),
            );
    }
}

/// Refusals as HTML pages for browsers; JSON for everyone else. Wrap the
/// app in it outside the session middleware, so that its refusals become
/// pages too: `.wrap(middleware).wrap(from_fn(pages_for_browsers))`.
pub(crate) async fn pages_for_browsers(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let html = common::wants_html(request.headers().get(ACCEPT).map(HeaderValue::as_bytes));
    let response = next.call(request).await?;
    if !html {
        return Ok(response.map_into_boxed_body());
    }
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| value.as_bytes().to_vec());
    let (request, response) = response.into_parts();
    let (mut response, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| actix_web::error::ErrorInternalServerError("unreadable body"))?;
    let body = match common::error_page(status, content_type.as_deref(), &bytes) {
        Some(page) => {
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            BoxBody::new(page)
        }
        None => BoxBody::new(bytes),
    };
    Ok(ServiceResponse::new(request, response.set_body(body)))
}

/// A shared page's answer as actix-web's.
fn respond(answer: Answer) -> HttpResponse {
    tessera::actix::into_response(answer)
}

async fn index(session: MaybeSession) -> HttpResponse {
    respond(common::index(session.as_deref()))
}

async fn login_page(query: web::Query<ReturnTo>) -> HttpResponse {
    respond(common::login_page(&query))
}

/// `POST /login` (a browser page: the cookie and a redirect) and `POST
/// /api/login` (the token as JSON): the policy says which route is which.
async fn sign_in(auth: Auth, form: web::Form<SignIn>) -> HttpResponse {
    match common::signing_in(&form) {
        Some(user_id) => auth.sign_in(&user_id, form.return_to()).await,
        None => respond(common::unknown_user(auth.is_browser())),
    }
}

async fn me(session: Session) -> HttpResponse {
    respond(common::me(&session))
}

async fn dashboard(session: Session) -> HttpResponse {
    respond(common::dashboard(&session))
}

async fn admin_page(admin: RequireRole<Admin>) -> HttpResponse {
    respond(common::admin_page(&admin))
}

async fn force_logout(
    demo: web::Data<Demo>,
    _admin: RequireRole<Admin>,
    name: web::Path<String>,
    after: Option<web::Form<After>>,
) -> HttpResponse {
    // A page's button says where to go back to; an API client sends no form.
    let after = after.map(web::Form::into_inner).unwrap_or_default();
    respond(demo.force_logout(&name, &after).await)
}

/// `POST /logout`: the session revoked, its cookie cleared, the browser
/// sent to the sign-in page.
async fn sign_out(auth: Auth) -> HttpResponse {
    auth.sign_out(None).await
}

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    common::init_tracing();
    let args = LAUNCH.args()?;
    let (demo, middleware) = wire(LAUNCH.sessions(&args).await?)?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("{}", LAUNCH.banner(&base, &args));
    let routes = configure(demo);
    HttpServer::new(move || {
        App::new()
            .wrap(middleware.clone())
            .wrap(actix_web::middleware::from_fn(pages_for_browsers))
            .configure(routes.clone())
    })
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}
