//! Fixtures shared by the use-case unit tests.

use std::collections::BTreeSet;

use tessera_domain::{
    Capability, NewSession, SessionEntity, SessionId, SessionLifetimes, TenantId, UserId, UserRole,
};
use time::{Duration, OffsetDateTime};

use crate::external::ExternalSubject;
use crate::ports::MockClock;

pub(crate) const NOW: i64 = 1_700_000_000;

pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

/// The identity provider of the provider-user tests.
pub(crate) const ISSUER: &str = "https://idp.example";

/// The provider account of the provider-user tests.
pub(crate) fn subject() -> ExternalSubject {
    ExternalSubject::parse("user_2abc").unwrap()
}

pub(crate) fn user() -> UserId {
    UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap()
}

pub(crate) fn session_id() -> SessionId {
    SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").unwrap()
}

pub(crate) fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

pub(crate) fn caps(names: &[&str]) -> BTreeSet<Capability> {
    names
        .iter()
        .map(|n| Capability::parse(n).unwrap())
        .collect()
}

/// 900 s tokens, 3600 s sessions, rotation after 300 s, 30 s leeway.
pub(crate) fn lifetimes() -> SessionLifetimes {
    SessionLifetimes::new(
        Duration::seconds(900),
        Duration::seconds(3600),
        Duration::seconds(300),
        Duration::seconds(30),
    )
    .unwrap()
}

/// A clock read exactly once, at `seconds`.
pub(crate) fn clock_at(seconds: i64) -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().times(1).return_const(at(seconds));
    clock
}

/// A moderator session of [`user`] in [`tenant`] with `posts:edit`.
pub(crate) fn session(iat: i64, exp: i64, auth: i64) -> SessionEntity<UserRole> {
    SessionEntity::new(NewSession {
        user_id: user(),
        session_id: session_id(),
        role: UserRole::Moderator,
        capabilities: caps(&["posts:edit"]),
        tenant: Some(tenant()),
        issued_at: at(iat),
        expires_at: at(exp),
        authenticated_at: at(auth),
        authentication: Default::default(),
    })
    .unwrap()
}
