//! The edge suite's actix-web server: the same site as the axum router of
//! `http_support`, behind `tessera::actix::SessionMiddleware`, served on a
//! loopback port by its own actix system thread.

use std::net::{SocketAddr, TcpListener};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tessera::UserRole;
use tessera::actix::{Auth, MaybeSession, Session, SessionMiddleware, exchange_token};

use crate::http_support::{Routes, SignQuery, Site};

async fn who(session: Session<UserRole>) -> String {
    format!("{} {}", session.user_id(), session.role())
}

async fn maybe(session: MaybeSession<UserRole>) -> String {
    session
        .into_inner()
        .map_or_else(|| "guest".to_owned(), |s| s.role().to_string())
}

/// Alice signs in (as the directory holds her: a user of `acme`).
async fn sign_in(auth: Auth<UserRole>, query: web::Query<SignQuery>) -> HttpResponse {
    auth.authentication(query.authentication())
        .sign_in(&crate::support::alice(), query.return_to.as_deref())
        .await
}

async fn sign_out(auth: Auth<UserRole>, query: web::Query<SignQuery>) -> HttpResponse {
    auth.sign_out(query.return_to.as_deref()).await
}

/// Echoes every identity header the handler received, as the axum route does.
async fn identity_headers(request: HttpRequest) -> String {
    let mut seen: Vec<String> = request
        .headers()
        .iter()
        .filter(|(name, _)| tessera::http::gateway::is_identity_header(name.as_str()))
        .map(|(name, value)| format!("{}={}", name, value.to_str().unwrap_or("?")))
        .collect();
    seen.sort();
    seen.join("\n")
}

/// Runs the actix-web server `start` makes of a free loopback listener on
/// its own actix system thread, for as long as the test process lives;
/// returns its address once it serves.
pub(crate) fn serve_on_own_thread(
    start: impl FnOnce(TcpListener) -> actix_web::dev::Server + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = start(listener);
            ready.send(()).unwrap();
            server.await.unwrap();
        });
    });
    started.recv().unwrap();
    address
}

/// Starts `site` on actix-web on a free loopback port.
pub(crate) fn serve(site: &Site) -> SocketAddr {
    if site.routes == Routes::Exchange {
        return serve_exchange(site);
    }
    let (middleware, routes) = (SessionMiddleware::from(site.edge.clone()), site.routes);
    serve_on_own_thread(move |listener| {
        HttpServer::new(move || {
            let app = App::new().wrap(middleware.clone());
            match routes {
                Routes::PublicRequiringSession => app.route("/", web::get().to(who)),
                Routes::Exchange => unreachable!("served by serve_exchange"),
                Routes::Standard => app
                    .route("/", web::get().to(maybe))
                    .route("/login", web::get().to(|| async { "login form" }))
                    .route("/login", web::post().to(sign_in))
                    .route("/me", web::get().to(who))
                    .route("/logout", web::post().to(sign_out))
                    .route("/api/login", web::post().to(sign_in))
                    .route("/api/logout", web::post().to(sign_out))
                    .route("/out", web::post().to(sign_out))
                    .route("/app/home", web::get().to(who))
                    .route(
                        "/app/fail",
                        web::get().to(|| async { HttpResponse::InternalServerError().finish() }),
                    )
                    .route("/admin/panel", web::get().to(who))
                    .route("/t/{tenant}/billing", web::get().to(who))
                    .route("/closed", web::get().to(|| async { "never" }))
                    .route("/headers", web::get().to(identity_headers)),
            }
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run()
    })
}

/// Starts a [`Routes::Exchange`] site: the exchange outside the
/// middleware, as on axum, and `/me` behind it.
fn serve_exchange(site: &Site) -> SocketAddr {
    let middleware = SessionMiddleware::from(site.edge.clone());
    let exchange = site.exchange.clone().expect("an exchange site");
    serve_on_own_thread(move |listener| {
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(exchange.clone()))
                .route("/token", web::post().to(exchange_token::<UserRole>))
                .service(
                    web::resource("/me")
                        .wrap(middleware.clone())
                        .route(web::get().to(who)),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run()
    })
}
