//! What the store tests share: a clock moved by hand, subjects, the
//! revocation contract, (feature `postgres`) a throwaway schema per test
//! and a proxy that cuts the database off, and (feature `redis`) a key
//! prefix per test.
//!
//! Each test binary uses a part of this module.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration as StdDuration;

use tessera_application::ports::{
    Clock, RevocationQuery, RevocationReason, RevocationStatus, RevocationStore, WatermarkKind,
    WatermarkScope,
};
use tessera_domain::{SessionId, SessionLifetimes, TenantId, UserId};
use time::{Duration, OffsetDateTime};

#[cfg(feature = "postgres")]
pub(crate) mod pg;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) mod proxy;
#[cfg(feature = "redis")]
pub(crate) mod redis;

pub(crate) const T: i64 = 1_700_000_000;

pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub(crate) struct ManualClock(AtomicI64);

impl ManualClock {
    pub(crate) fn starting_at(seconds: i64) -> Self {
        Self(AtomicI64::new(seconds))
    }

    pub(crate) fn set(&self, seconds: i64) {
        self.0.store(seconds, Ordering::SeqCst);
    }

    pub(crate) fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        at(self.0.load(Ordering::SeqCst))
    }
}

pub(crate) fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_b5a4_7c2e_7d3a_9f00_0000_0000_0000 + n)
}

/// A session of a user, maybe in a tenant.
pub(crate) struct Subject {
    pub(crate) session: SessionId,
    pub(crate) user: UserId,
    pub(crate) tenant: Option<TenantId>,
}

impl Subject {
    pub(crate) fn new(n: u128, tenant: Option<&str>) -> Self {
        Self {
            session: SessionId::from_uuid(id(1_000_000 + n)).unwrap(),
            user: UserId::from_uuid(id(n)).unwrap(),
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
        }
    }

    pub(crate) fn query(&self, iat: i64) -> RevocationQuery<'_> {
        RevocationQuery {
            session_id: &self.session,
            user_id: &self.user,
            tenant: self.tenant.as_ref(),
            issued_at: at(iat),
        }
    }

    pub(crate) fn status(&self, store: &dyn RevocationStore, iat: i64) -> RevocationStatus {
        store.check(self.query(iat)).unwrap()
    }
}

/// 15-minute tokens, 1-hour sessions, rotation after 5 minutes, 30 s leeway.
pub(crate) fn lifetimes() -> SessionLifetimes {
    SessionLifetimes::new(
        Duration::seconds(900),
        Duration::seconds(3600),
        Duration::seconds(300),
        Duration::seconds(30),
    )
    .unwrap()
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

/// Every rule of the [`RevocationStore`] contract, on a store with no state
/// whose clock reads [`T`].
pub(crate) async fn honours_the_contract(store: &dyn RevocationStore) {
    use RevocationStatus::{Active, ClaimsStale, Revoked};
    let alice = Subject::new(1, Some("acme"));
    let bob = Subject::new(2, Some("globex"));
    let carol = Subject::new(3, None);

    assert_eq!(
        alice.status(store, T),
        Active,
        "a fresh store revokes nothing"
    );

    // One session.
    store
        .revoke_session(alice.session, at(T + 3600))
        .await
        .unwrap();
    assert_eq!(
        alice.status(store, T),
        Revoked(RevocationReason::SessionLoggedOut)
    );
    assert_eq!(
        bob.status(store, T),
        Active,
        "logout touches only its session"
    );
    // A second logout of the same session with an earlier end changes nothing.
    store
        .revoke_session(alice.session, at(T + 10))
        .await
        .unwrap();
    assert_eq!(
        alice.status(store, T),
        Revoked(RevocationReason::SessionLoggedOut)
    );

    // A user: tokens issued at or before the watermark's second.
    let user_scope = WatermarkScope::User(bob.user);
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ForceLogout, at(T + 10))
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 9),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(
        bob.status(store, T + 10),
        Revoked(RevocationReason::UserLoggedOut),
        "the watermark's own second is covered (fail closed)"
    );
    assert_eq!(bob.status(store, T + 11), Active, "newer tokens stand");
    assert_eq!(carol.status(store, T + 9), Active, "other users stand");

    // Sub-second parts of a watermark do not let a token of that second through.
    store
        .set_watermark(
            WatermarkScope::User(carol.user),
            WatermarkKind::ForceLogout,
            at(T + 50) + Duration::milliseconds(999),
        )
        .await
        .unwrap();
    assert_eq!(
        carol.status(store, T + 50),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(carol.status(store, T + 51), Active);
    store
        .clear_watermark(WatermarkScope::User(carol.user), WatermarkKind::ForceLogout)
        .await
        .unwrap();

    // Watermarks never move backwards.
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ForceLogout, at(T + 5))
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 10),
        Revoked(RevocationReason::UserLoggedOut)
    );

    // Clearing lifts it, and a later set works again.
    store
        .clear_watermark(user_scope.clone(), WatermarkKind::ForceLogout)
        .await
        .unwrap();
    assert_eq!(bob.status(store, T + 9), Active);
    store
        .clear_watermark(user_scope.clone(), WatermarkKind::ForceLogout)
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 9),
        Active,
        "clearing nothing is harmless"
    );

    // Claims-stale: valid but must rotate; force-logout wins over it.
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ClaimsStale, at(T + 20))
        .await
        .unwrap();
    assert_eq!(bob.status(store, T + 20), ClaimsStale);
    assert_eq!(bob.status(store, T + 21), Active);
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ForceLogout, at(T + 15))
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 15),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(bob.status(store, T + 16), ClaimsStale);
    // Clearing a force-logout leaves the claims-stale watermark alone.
    store
        .clear_watermark(user_scope, WatermarkKind::ForceLogout)
        .await
        .unwrap();
    assert_eq!(bob.status(store, T + 15), ClaimsStale);

    // A tenant.
    store
        .set_watermark(
            WatermarkScope::Tenant(TenantId::parse("acme").unwrap()),
            WatermarkKind::ForceLogout,
            at(T + 30),
        )
        .await
        .unwrap();
    let alice2 = Subject::new(4, Some("acme"));
    assert_eq!(
        alice2.status(store, T + 30),
        Revoked(RevocationReason::TenantLoggedOut)
    );
    assert_eq!(
        carol.status(store, T + 30),
        Active,
        "no tenant, not covered"
    );

    // Everyone.
    store
        .set_watermark(
            WatermarkScope::Everyone,
            WatermarkKind::ForceLogout,
            at(T + 40),
        )
        .await
        .unwrap();
    assert_eq!(
        carol.status(store, T + 40),
        Revoked(RevocationReason::EveryoneLoggedOut)
    );
    assert_eq!(carol.status(store, T + 41), Active);
    assert_eq!(
        alice2.status(store, T + 30),
        Revoked(RevocationReason::EveryoneLoggedOut),
        "everyone is reported before the tenant"
    );
}

/// What `store` says of `s`'s token issued at `iat` when asked
/// authoritatively (as rotation asks).
async fn authoritative(store: &dyn RevocationStore, s: &Subject, iat: i64) -> RevocationStatus {
    store.check_authoritative(s.query(iat)).await.unwrap()
}

/// The contract for events older than one token lifetime (15 minutes and
/// 30 s of leeway; the shared stores' margins are a few seconds more), on a
/// store with no state whose `clock` reads [`T`]: the hot path may forget
/// them, since every token they cover has expired, but the authoritative
/// answer (what rotation asks) still holds them, and recent events are on
/// the hot path.
pub(crate) async fn honours_the_contract_over_time(
    store: &dyn RevocationStore,
    clock: &ManualClock,
) {
    use RevocationStatus::{Active, ClaimsStale, Revoked};
    let (logged_out, forced, stale, late) = (
        Subject::new(11, None),
        Subject::new(12, Some("acme")),
        Subject::new(13, None),
        Subject::new(14, None),
    );
    store
        .revoke_session(logged_out.session, at(T + 3600))
        .await
        .unwrap();
    store
        .set_watermark(
            WatermarkScope::User(forced.user),
            WatermarkKind::ForceLogout,
            at(T),
        )
        .await
        .unwrap();
    store
        .set_watermark(
            WatermarkScope::User(stale.user),
            WatermarkKind::ClaimsStale,
            at(T),
        )
        .await
        .unwrap();
    assert_eq!(
        authoritative(store, &logged_out, T).await,
        Revoked(RevocationReason::SessionLoggedOut)
    );

    // Past one token lifetime and every margin, within the absolute lifetime;
    // a write, which may purge.
    clock.set(T + 1000);
    store
        .set_watermark(
            WatermarkScope::Tenant(TenantId::parse("globex").unwrap()),
            WatermarkKind::ForceLogout,
            at(T + 1000),
        )
        .await
        .unwrap();
    assert_eq!(
        authoritative(store, &logged_out, T + 1000).await,
        Revoked(RevocationReason::SessionLoggedOut),
        "a token of a logged-out session, however it was issued, cannot be rotated"
    );
    assert_eq!(
        authoritative(store, &forced, T).await,
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(authoritative(store, &stale, T).await, ClaimsStale);
    assert_eq!(authoritative(store, &forced, T + 1).await, Active);
    assert_eq!(forced.status(store, T + 1), Active, "newer tokens stand");

    // A watermark whose time is older than one token lifetime when written.
    store
        .set_watermark(
            WatermarkScope::User(late.user),
            WatermarkKind::ForceLogout,
            at(T - 1000),
        )
        .await
        .unwrap();
    assert_eq!(
        authoritative(store, &late, T - 1000).await,
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(late.status(store, T + 1000), Active);
    // A recent one, for a token that can still be unexpired, is on the hot path.
    store
        .set_watermark(
            WatermarkScope::User(late.user),
            WatermarkKind::ForceLogout,
            at(T + 990),
        )
        .await
        .unwrap();
    assert_eq!(
        late.status(store, T + 100),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(
        authoritative(store, &late, T + 990).await,
        Revoked(RevocationReason::UserLoggedOut)
    );
}
