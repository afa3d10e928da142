//! End-to-end tests across every layer, compiled into one binary.

// In tests a panic is a failed test, which is what these lints guard against elsewhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod attacks;
mod browser;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "actix")]
mod http_actix;
mod http_demo;
mod http_gateway;
mod http_layer;
mod http_properties;
mod http_step_up;
mod http_support;
#[cfg(feature = "jwks-fetch")]
mod idp_exchange;
#[cfg(feature = "jwks-fetch")]
mod idp_hybrid;
mod idp_logout;
mod idp_profiles;
#[cfg(feature = "redis")]
mod idp_redis;
mod idp_webhooks;
mod interop;
mod lifecycle;
mod properties;
// The infrastructure tests' database proxy, which a test cuts and restores.
#[cfg(all(feature = "server", feature = "postgres"))]
#[allow(dead_code)]
#[path = "../../crates/infrastructure/tests/common/proxy.rs"]
mod proxy;
#[cfg(feature = "server")]
mod serve;
#[cfg(feature = "server")]
mod serve_caddy;
#[cfg(feature = "server")]
mod serve_nginx;
#[cfg(feature = "server")]
mod serve_provider;
mod support;
