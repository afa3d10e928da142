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

/// The README's actix-web twin, wired as the README wires it, on a clock
/// the test moves: it signs in, survives its first rotation and signs out.
mod readme_backend {
    use std::sync::Arc;

    use actix_web::http::StatusCode;
    use actix_web::{App, HttpResponse, test, web};
    use tessera::actix::prelude::*;

    use crate::support::{ManualClock, START};

    const ALICE: &str = "0190b5a4-7c2e-7d3a-9f00-000000000001";

    #[derive(serde::Deserialize)]
    struct SignIn {
        username: String,
        password: String,
        return_to: Option<String>,
    }

    async fn sign_in(auth: Auth, form: web::Form<SignIn>) -> HttpResponse {
        let known = form.username == "alice" && form.password == "correct horse";
        let (true, Ok(alice)) = (known, ALICE.parse()) else {
            return HttpResponse::Unauthorized().finish();
        };
        auth.sign_in(&alice, form.return_to.as_deref()).await
    }

    async fn admin(session: Session) -> String {
        format!("welcome, {} ({})", session.user_id(), session.role())
    }

    async fn sign_out(auth: Auth) -> HttpResponse {
        auth.sign_out(None).await
    }

    fn middleware(clock: Arc<ManualClock>) -> SessionMiddleware {
        let users = Arc::new(InMemoryUserDirectory::new());
        users.upsert(DirectoryUser::new(ALICE.parse().unwrap(), UserRole::Admin));
        let sessions: Tessera = Tessera::builder(
            KeyRing::generate("key-1").unwrap(),
            "https://api.example",
            "web",
        )
        .user_directory(users)
        .clock(clock)
        .build();
        let rules = [
            RouteRule::guest_only("/login").browser(),
            RouteRule::authenticated("/logout").browser(),
            RouteRule::at_least_role("/admin", UserRole::Admin).browser(),
        ];
        sessions.session_middleware(rules).build().unwrap()
    }

    fn session_cookie<B>(response: &actix_web::dev::ServiceResponse<B>) -> Option<String> {
        response
            .headers()
            .get_all("set-cookie")
            .filter_map(|value| cookie::Cookie::parse(value.to_str().ok()?.to_owned()).ok())
            .find(|cookie| cookie.name() == "__Host-session")
            .map(|cookie| cookie.value().to_owned())
    }

    fn with_cookie(request: test::TestRequest, token: &str) -> test::TestRequest {
        request
            .insert_header(("cookie", format!("__Host-session={token}")))
            .insert_header(("sec-fetch-site", "same-origin"))
    }

    #[actix_web::test]
    async fn the_readme_twin_signs_in_survives_its_first_rotation_and_signs_out() {
        let clock = ManualClock::starting_at(START);
        let app = test::init_service(
            App::new()
                .wrap(middleware(clock.clone()))
                .route("/login", web::post().to(sign_in))
                .route("/admin", web::get().to(admin))
                .route("/logout", web::post().to(sign_out)),
        )
        .await;
        let signed_in = test::call_service(
            &app,
            test::TestRequest::post()
                .uri("/login")
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .insert_header(("sec-fetch-site", "same-origin"))
                .set_payload("username=alice&password=correct+horse&return_to=%2Fadmin")
                .to_request(),
        )
        .await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert_eq!(signed_in.headers().get("location").unwrap(), "/admin");
        let token = session_cookie(&signed_in).unwrap();
        let page = test::call_service(
            &app,
            with_cookie(test::TestRequest::get().uri("/admin"), &token).to_request(),
        )
        .await;
        assert_eq!(page.status(), StatusCode::OK);

        clock.advance(6 * 60);
        let rotated = test::call_service(
            &app,
            with_cookie(test::TestRequest::get().uri("/admin"), &token).to_request(),
        )
        .await;
        assert_eq!(
            rotated.status(),
            StatusCode::OK,
            "survives its first rotation"
        );
        let renewed = session_cookie(&rotated).expect("a rotated cookie");
        assert_ne!(renewed, token);

        let out = test::call_service(
            &app,
            with_cookie(test::TestRequest::post().uri("/logout"), &renewed).to_request(),
        )
        .await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert_eq!(session_cookie(&out).as_deref(), Some(""), "cookie cleared");
        let after = test::call_service(
            &app,
            with_cookie(test::TestRequest::get().uri("/admin"), &renewed).to_request(),
        )
        .await;
        assert_eq!(after.status(), StatusCode::SEE_OTHER, "back to sign-in");
    }
}
