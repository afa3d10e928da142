//! The server `scripts/load.sh` measures: one axum handler, bare or behind
//! tessera's session layer with a session signed by a given algorithm, on
//! one thread (the script pins it to one core and wrk to the other).
//!
//! ```text
//! cargo run --release --example load_target -- --mode eddsa --port 0
//! ```
//!
//! Modes: `bare` (no layer), `hs256`, `eddsa`, `es256`, `rs256`. It prints
//! `TOKEN <session token>` (a secret of this throwaway server only) and
//! then `LISTENING <address>`, and serves `GET /posts/{id}` until killed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a load target that cannot start should stop loudly

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tessera::application::EstablishRequest;
use tessera::application::ports::DirectoryUser;
use tessera::domain::{Capability, Requirement, RoutePolicy, RouteRule, TenantId, UserId};
use tessera::{InMemoryUserDirectory, JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip_while(|a| a != name);
    args.next()?;
    args.next()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let mode = arg("--mode").unwrap_or_else(|| "bare".into());
    let port = arg("--port").unwrap_or_else(|| "0".into());
    let alg = match mode.as_str() {
        "bare" | "hs256" => JwsAlgorithm::Hs256,
        "eddsa" => JwsAlgorithm::EdDsa,
        "es256" => JwsAlgorithm::Es256,
        "rs256" => JwsAlgorithm::Rs256,
        other => {
            return Err(format!(
                "unknown mode {other}: bare, hs256, eddsa, es256 or rs256"
            ));
        }
    };
    let user = UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap();
    let capabilities: std::collections::BTreeSet<Capability> = [
        Capability::parse("posts:write").unwrap(),
        Capability::parse("posts:hide").unwrap(),
    ]
    .into();
    let tenant = Some(TenantId::parse("acme").unwrap());
    let directory = Arc::new(InMemoryUserDirectory::<UserRole>::new());
    directory.upsert(DirectoryUser {
        user_id: user,
        role: UserRole::Moderator,
        capabilities: capabilities.clone(),
        tenant: tenant.clone(),
        enabled: true,
    });
    let sessions: Tessera<UserRole> = Tessera::builder(
        KeyRing::new(SigningKey::generate(alg, "load").unwrap()),
        "https://api.example",
        "web",
    )
    .user_directory(directory)
    .build();
    let token = sessions
        .establish()
        .execute(EstablishRequest {
            user_id: user,
            role: UserRole::Moderator,
            capabilities,
            tenant,
            authenticated_at: None,
            authentication: Default::default(),
        })
        .unwrap()
        .token;
    println!("TOKEN {}", token.expose_secret());
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/posts/:id", Requirement::Authenticated))
        .build()
        .unwrap();
    let routes = Router::new().route("/posts/{id}", get(|| async { "post" }));
    let app = if mode == "bare" {
        routes
    } else {
        routes.layer(sessions.session_layer(policy).build().unwrap())
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    println!("LISTENING {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
