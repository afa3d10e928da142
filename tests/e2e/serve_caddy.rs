//! Caddy in front of a small upstream, asking `tessera serve`'s
//! `/verify/forwarded` for each verdict with the documented site block
//! (`examples/caddy/Caddyfile`): the scenarios the nginx tests run
//! (`serve_nginx.rs`) — sessions pass with tessera's identity and nothing
//! a client sent, guests get 401 or the sign-in redirect, a rotated
//! session reaches the client, a force-logout takes effect — and what
//! Caddy's own `forward_auth` gets wrong in 2.6: no identity header a
//! client sends, by any `X-User-` name, and no placeholder text reach the
//! upstream.
//!
//! The test starts its own Caddy (`caddy run`, the Caddyfile imported after
//! global options of its own: no admin endpoint, no automatic HTTPS, bound
//! to loopback on a free port, its storage, `HOME` and XDG directories in a
//! temporary directory). Without Caddy it says so and passes, unless
//! `TESSERA_REQUIRE_CADDY=1` (`scripts/test.sh` sets it and installs Caddy
//! when missing), when it fails with what is missing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::serve::*;
use crate::serve_nginx::*;

/// Caddy, or `None` when it is missing and not required.
fn caddy_or_skip() -> Option<PathBuf> {
    program_or_skip(
        "caddy",
        "TESSERA_REQUIRE_CADDY",
        "Debian: apt-get install -y caddy",
    )
}

/// The site block the README documents.
fn snippet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/caddy/Caddyfile")
}

/// Caddy on a free loopback port with the documented site block, in front
/// of `app`; `tessera` answers the verdicts.
fn start_caddy(binary: &Path, tessera: SocketAddr, app: SocketAddr) -> Gateway {
    let dir = gateway_dir("caddy");
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "{{\n\
         \tadmin off\n\
         \tauto_https off\n\
         \tdefault_bind 127.0.0.1\n\
         \tstorage file_system {{\n\
         \t\troot \"{d}/data\"\n\
         \t}}\n\
         }}\n\
         import \"{}\"\n",
        snippet().display()
    );
    let conf_path = dir.join("Caddyfile");
    std::fs::write(&conf_path, conf).unwrap();
    let log = std::fs::File::create(dir.join("error.log")).unwrap();
    let child = Command::new(binary)
        .arg("run")
        .arg("--config")
        .arg(&conf_path)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", &dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("CADDY_SITE", format!("http://127.0.0.1:{port}"))
        .env("TESSERA_UPSTREAM", tessera.to_string())
        .env("APP_UPSTREAM", app.to_string())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Gateway::listening(child, dir, format!("127.0.0.1:{port}").parse().unwrap())
}

#[tokio::test]
async fn caddy_passes_sessions_with_tesseras_identity_only_and_refuses_guests() {
    let Some(binary) = caddy_or_skip() else {
        return;
    };
    let tessera = start().await;
    let caddy = start_caddy(&binary, tessera, echo_upstream().await);
    passes_sessions_with_tesseras_identity_only_and_refuses_guests(caddy.addr, tessera).await;
}

#[tokio::test]
async fn caddy_returns_rotated_sessions_and_applies_force_logout() {
    let Some(binary) = caddy_or_skip() else {
        return;
    };
    let tessera = start().await;
    let caddy = start_caddy(&binary, tessera, echo_upstream().await);
    returns_rotated_sessions_and_applies_force_logout(caddy.addr, tessera).await;
}

#[tokio::test]
async fn caddy_lets_no_client_identity_header_or_placeholder_text_reach_the_upstream() {
    let Some(binary) = caddy_or_skip() else {
        return;
    };
    let tessera = start().await;
    let caddy = start_caddy(&binary, tessera, echo_upstream().await);
    // A session without capabilities or tenant: tessera sends an empty
    // x-user-capabilities and no x-tenant-id.
    let (token, _) = sign_in(tessera, ALICE, "user", json!({})).await;
    // Every spelling tessera's own gateway mode strips, and more names.
    let mut headers = forged();
    headers.extend(
        [
            "x-user",
            "x_user_role",
            "x-user_id",
            "x_user-session-id",
            "x_tenant_id",
            "x-tenant_id",
            "x-user-email",
            "x-user-acr",
            "x-session-token",
        ]
        .map(|name| (name, "forged".to_owned())),
    );
    let from_client =
        |name: &str| tessera::http::gateway::is_identity_header(name) || name == "x-session-token";

    let as_guest = through(caddy.addr, "/", &headers).await;
    assert_eq!(as_guest.status(), 200);
    let seen = Seen::of(as_guest).await;
    for name in seen.names() {
        assert!(
            !from_client(name),
            "{name} reached the upstream for a guest"
        );
    }

    headers.push(("cookie", format!("{COOKIE}={token}")));
    let with_session = through(caddy.addr, "/api/orders", &headers).await;
    assert_eq!(with_session.status(), 200);
    let seen = Seen::of(with_session).await;
    let mut identity: Vec<&str> = seen
        .names()
        .into_iter()
        .filter(|name| from_client(name))
        .collect();
    identity.sort_unstable();
    assert_eq!(
        identity,
        [
            "x-user-id",
            "x-user-nonce",
            "x-user-role",
            "x-user-session-id",
            "x-user-signature",
            "x-user-signed-at",
        ],
        "tessera's identity headers and nothing else"
    );
    for name in identity {
        let value = seen.header(name).unwrap();
        assert!(!value.is_empty() && !value.contains('{'), "{name}: {value}");
    }
    assert_eq!(
        verified_identity("GET", "/api/orders", &seen.header_map())
            .user_id()
            .to_string(),
        ALICE
    );
}
