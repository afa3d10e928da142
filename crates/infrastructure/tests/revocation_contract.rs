//! The revocation store contract, run against every adapter.
//! (The PostgreSQL store joins this suite with the shared-store issue.)

// In tests a panic is a failed test, which is what these lints guard against elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tessera_application::ports::{
    Clock, RevocationQuery, RevocationReason, RevocationStatus, RevocationStore, WatermarkKind,
    WatermarkScope,
};
use tessera_domain::{SessionId, SessionLifetimes, TenantId, UserId};
use tessera_infrastructure::InMemoryRevocationStore;
use time::{Duration, OffsetDateTime};

const T: i64 = 1_700_000_000;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(AtomicI64);

impl ManualClock {
    fn set(&self, seconds: i64) {
        self.0.store(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        at(self.0.load(Ordering::SeqCst))
    }
}

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_b5a4_7c2e_7d3a_9f00_0000_0000_0000 + n)
}

struct Subject {
    session: SessionId,
    user: UserId,
    tenant: Option<TenantId>,
}

impl Subject {
    fn new(n: u128, tenant: Option<&str>) -> Self {
        Self {
            session: SessionId::from_uuid(id(1000 + n)).unwrap(),
            user: UserId::from_uuid(id(n)).unwrap(),
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
        }
    }

    fn status(&self, store: &dyn RevocationStore, iat: i64) -> RevocationStatus {
        store
            .check(RevocationQuery {
                session_id: &self.session,
                user_id: &self.user,
                tenant: self.tenant.as_ref(),
                issued_at: at(iat),
            })
            .unwrap()
    }
}

fn lifetimes() -> SessionLifetimes {
    SessionLifetimes::new(
        Duration::seconds(900),
        Duration::seconds(3600),
        Duration::seconds(300),
        Duration::seconds(30),
    )
    .unwrap()
}

/// Every rule of the [`RevocationStore`] contract, on a store with no state.
async fn honours_the_contract(store: &dyn RevocationStore) {
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

    // Watermarks never move backwards.
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ForceLogout, at(T + 5))
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 10),
        Revoked(RevocationReason::UserLoggedOut)
    );

    // Clearing lifts it.
    store
        .clear_watermark(user_scope.clone(), WatermarkKind::ForceLogout)
        .await
        .unwrap();
    assert_eq!(bob.status(store, T + 9), Active);

    // Claims-stale: valid but must rotate; force-logout wins over it.
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ClaimsStale, at(T + 20))
        .await
        .unwrap();
    assert_eq!(bob.status(store, T + 20), ClaimsStale);
    assert_eq!(bob.status(store, T + 21), Active);
    store
        .set_watermark(user_scope, WatermarkKind::ForceLogout, at(T + 15))
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 15),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(bob.status(store, T + 16), ClaimsStale);

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
}

#[tokio::test]
async fn in_memory_store_honours_the_revocation_contract() {
    let clock = Arc::new(ManualClock(AtomicI64::new(T)));
    let store = InMemoryRevocationStore::new(clock, lifetimes());
    honours_the_contract(&store).await;
}

#[tokio::test]
async fn in_memory_store_forgets_what_can_no_longer_matter() {
    let clock = Arc::new(ManualClock(AtomicI64::new(T)));
    let store = InMemoryRevocationStore::new(clock.clone(), lifetimes());
    let alice = Subject::new(1, None);
    store
        .revoke_session(alice.session, at(T + 100))
        .await
        .unwrap();
    store
        .set_watermark(
            WatermarkScope::User(alice.user),
            WatermarkKind::ForceLogout,
            at(T),
        )
        .await
        .unwrap();
    assert_eq!(store.len(), 2);

    // Past the logout's end and past the absolute lifetime (plus leeway) of
    // anything the watermark covers: the next write purges both.
    clock.set(T + 3600 + 31);
    store
        .set_watermark(
            WatermarkScope::Everyone,
            WatermarkKind::ClaimsStale,
            at(T + 3631),
        )
        .await
        .unwrap();
    assert_eq!(store.len(), 1, "only the new watermark remains");
}
