//! What the store tests share: a clock moved by hand, subjects, the
//! revocation contract, (feature `postgres`) a throwaway schema per test,
//! a proxy that cuts the database off and a PgBouncer of the test's own, and (feature `redis`) a key
//! prefix per test.
//!
//! Each test binary uses a part of this module.
#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration as StdDuration;

#[allow(unused_imports)] // each test binary uses a different part
pub(crate) use tessera_application::contracts::{ManualClock, Subject, T, at, lifetimes};

#[cfg(feature = "postgres")]
pub(crate) mod pg;
#[cfg(feature = "postgres")]
pub(crate) mod pgbouncer;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) mod proxy;
#[cfg(feature = "redis")]
pub(crate) mod redis;

pub(crate) fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_b5a4_7c2e_7d3a_9f00_0000_0000_0000 + n)
}

/// Polls `done` every few milliseconds until it holds; fails the test after
/// `within`.
pub(crate) async fn eventually(what: &str, within: StdDuration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
}
