//! The HTTP layer's cost: the same axum router with and without tessera's
//! `SessionLayer` (and, with feature `actix`, the same actix-web app with
//! and without `SessionMiddleware`), driven in process with a valid session
//! cookie, next to `VerifySession` alone and the admission
//! (`DecideAdmission`) alone on the same token, in one run.
//!
//! Budgets: with − without ≤ VerifySession + 1 µs per request; the
//! admission alone ≤ VerifySession + 0.3 µs.
//!
//! ```text
//! cargo bench --bench http -- --warm-up-time 1 --measurement-time 4
//! cargo bench --bench http --features actix -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! After criterion's groups the bench prints the budget check from its own
//! interleaved timing loop (criterion's figures are the ones to record).
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group};
use http::Request;
use tessera::application::{
    AdmissionRequest, CredentialSource, DecideAdmission, EstablishRequest, PresentedCredential,
    SignInPages,
};
use tessera::domain::{Capability, Requirement, RoutePolicy, RouteRule, TenantId, UserId};
use tessera::{KeyRing, SigningKey, Tessera, UserRole};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

struct Fixture {
    sessions: Tessera<UserRole>,
    admission: DecideAdmission<UserRole>,
    token: String,
    bare: Router,
    noop: Router,
    layered: Router,
    runtime: Runtime,
}

/// The routes' policy: the request's route needs a session.
fn policy() -> RoutePolicy<UserRole> {
    RoutePolicy::builder()
        .rule(RouteRule::new("/", Requirement::Public))
        .rule(RouteRule::new("/login", Requirement::GuestOnly).browser())
        .rule(RouteRule::new(
            "/admin/*",
            Requirement::AtLeastRole(UserRole::Admin),
        ))
        .rule(RouteRule::new("/posts/:id", Requirement::Authenticated))
        .build()
        .unwrap()
}

fn fixture() -> Fixture {
    let key = SigningKey::hmac_sha256("bench", &[0x5a; 32]).unwrap();
    let sessions: Tessera<UserRole> =
        Tessera::builder(KeyRing::new(key), "https://api.example", "web")
            // The bench's session is never due for rotation: the directory is never read.
            .user_directory(std::sync::Arc::new(tessera::InMemoryUserDirectory::new()))
            .build();
    let token = sessions
        .establish()
        .execute(EstablishRequest {
            user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap(),
            role: UserRole::Moderator,
            capabilities: [
                Capability::parse("posts:write").unwrap(),
                Capability::parse("posts:hide").unwrap(),
            ]
            .into(),
            tenant: Some(TenantId::parse("acme").unwrap()),
            authenticated_at: None,
            authentication: Default::default(),
        })
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    let routes = || {
        Router::new()
            .route("/", get(|| async { "home" }))
            .route("/posts/{id}", get(|| async { "post" }))
    };
    let admission = DecideAdmission::new(
        sessions.verify().clone(),
        sessions.rotate().clone(),
        std::sync::Arc::new(policy()),
        SignInPages::default(),
    );
    let layer = sessions.session_layer(policy()).build().unwrap();
    Fixture {
        admission,
        bare: routes(),
        noop: routes().layer(tower::layer::util::Identity::new()),
        layered: routes().layer(layer),
        sessions,
        token,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

fn request(token: &str) -> Request<Body> {
    Request::get("/posts/42")
        .header("cookie", format!("theme=dark; __Host-session={token}"))
        .body(Body::empty())
        .unwrap()
}

/// The admission of `GET /posts/42` with the session cookie, decided.
fn admit(f: &Fixture) {
    let credential = PresentedCredential::Token {
        token: &f.token,
        via: CredentialSource::Cookie,
    };
    let decision = f
        .admission
        .decide(&AdmissionRequest::new("GET", "/posts/42", credential));
    assert!(matches!(
        decision,
        tessera::application::Decision::Decided(ref a)
            if matches!(a.verdict, tessera::application::Verdict::Session(_))
    ));
    black_box(decision);
}

fn call(f: &Fixture, router: &Router) {
    let response = f
        .runtime
        .block_on(router.clone().oneshot(request(&f.token)))
        .unwrap();
    assert!(response.status().is_success());
    black_box(response);
}

fn bench_layer(c: &mut Criterion) {
    let f = fixture();
    println!("token: {} bytes (HS256)", f.token.len());
    let mut group = c.benchmark_group("http layer (HS256 cookie, GET /posts/42)");
    group.bench_function("router without layer", |b| b.iter(|| call(&f, &f.bare)));
    // What axum's `Router::layer` costs for any layer: a reference only.
    group.bench_function("router with a no-op layer", |b| {
        b.iter(|| call(&f, &f.noop))
    });
    group.bench_function("router with SessionLayer", |b| {
        b.iter(|| call(&f, &f.layered))
    });
    group.bench_function("VerifySession alone", |b| {
        b.iter(|| black_box(f.sessions.verify().execute(black_box(&f.token)).unwrap()));
    });
    group.bench_function("DecideAdmission alone", |b| b.iter(|| admit(&f)));
    group.finish();
}

/// Mean time per call of `work` over `rounds` interleaved rounds, keeping
/// the fastest round (the least disturbed by other work on the machine).
fn fastest_mean(rounds: usize, per_round: u32, mut work: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                work();
            }
            start.elapsed() / per_round
        })
        .min()
        .unwrap()
}

/// Prints whether the admission stays within VerifySession + 0.3 µs and
/// `layered` − `bare` within VerifySession + 1 µs, from interleaved rounds
/// of the four.
fn budget(f: &Fixture, what: &str, mut bare: impl FnMut(), mut layered: impl FnMut()) {
    let (mut bare_times, mut layered_times, mut verify, mut admission) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        bare_times.push(fastest_mean(3, 20_000, &mut bare));
        layered_times.push(fastest_mean(3, 20_000, &mut layered));
        verify.push(fastest_mean(3, 20_000, || {
            black_box(f.sessions.verify().execute(&f.token).unwrap());
        }));
        admission.push(fastest_mean(3, 20_000, || admit(f)));
    }
    let (bare, layered, verify, admission) = (
        *bare_times.iter().min().unwrap(),
        *layered_times.iter().min().unwrap(),
        *verify.iter().min().unwrap(),
        *admission.iter().min().unwrap(),
    );
    let over = admission.saturating_sub(verify);
    println!(
        "\nbudget: DecideAdmission {admission:?} = VerifySession {verify:?} + {over:?} \
         (≤ + 300 ns holds: ratio {:.2})",
        over.as_secs_f64() / 300e-9
    );
    let added = layered.saturating_sub(bare);
    let allowed = verify + Duration::from_micros(1);
    println!(
        "\nbudget ({what}): without {bare:?}, with {layered:?}: it adds {added:?}; \
         VerifySession {verify:?} + 1 µs = {allowed:?}; ratio {:.2} (≤ 1.00 holds)",
        added.as_secs_f64() / allowed.as_secs_f64()
    );
}

/// The same routes on actix-web, with and without `SessionMiddleware`.
#[cfg(feature = "actix")]
mod actix {
    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, web};

    use super::{Criterion, Fixture, black_box, budget, policy};

    fn routes(config: &mut web::ServiceConfig) {
        config
            .route("/", web::get().to(|| async { "home" }))
            .route("/posts/{id}", web::get().to(|| async { "post" }));
    }

    /// One request through `$app` (a macro: actix-web does not name the
    /// request type its services take).
    macro_rules! call {
        ($runtime:expr, $app:expr, $token:expr) => {{
            let request = TestRequest::get()
                .uri("/posts/42")
                .insert_header(("cookie", format!("theme=dark; __Host-session={}", $token)))
                .to_request();
            let response = $runtime.block_on(call_service($app, request));
            assert!(response.status().is_success());
            black_box(response);
        }};
    }

    pub(super) fn bench(c: &mut Criterion, f: &Fixture) {
        let runtime = actix_web::rt::Runtime::new().unwrap();
        let middleware = f.sessions.session_middleware(policy()).build().unwrap();
        let bare = runtime.block_on(init_service(App::new().configure(routes)));
        // What `App::wrap` costs for any middleware: a reference only.
        let noop = runtime.block_on(init_service(
            App::new()
                .wrap(actix_web::middleware::Identity::default())
                .configure(routes),
        ));
        let layered = runtime.block_on(init_service(App::new().wrap(middleware).configure(routes)));
        let mut group = c.benchmark_group("actix middleware (HS256 cookie, GET /posts/42)");
        group.bench_function("app without middleware", |b| {
            b.iter(|| call!(runtime, &bare, &f.token))
        });
        group.bench_function("app with a no-op middleware", |b| {
            b.iter(|| call!(runtime, &noop, &f.token))
        });
        group.bench_function("app with SessionMiddleware", |b| {
            b.iter(|| call!(runtime, &layered, &f.token))
        });
        group.bench_function("VerifySession alone", |b| {
            b.iter(|| black_box(f.sessions.verify().execute(black_box(&f.token)).unwrap()));
        });
        group.finish();
        if !std::env::args().any(|arg| arg == "--test") {
            budget(
                f,
                "actix-web SessionMiddleware",
                || call!(runtime, &bare, &f.token),
                || call!(runtime, &layered, &f.token),
            );
        }
    }
}

fn bench_actix(c: &mut Criterion) {
    #[cfg(feature = "actix")]
    actix::bench(c, &fixture());
    #[cfg(not(feature = "actix"))]
    let _ = c;
}

criterion_group!(benches, bench_layer, bench_actix);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Under `cargo test --benches` (`--test`), criterion runs each bench
    // once; skip the timing loop there too.
    if !std::env::args().any(|arg| arg == "--test") {
        let f = fixture();
        budget(
            &f,
            "axum SessionLayer",
            || call(&f, &f.bare),
            || call(&f, &f.layered),
        );
    }
}
