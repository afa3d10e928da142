//! The revocation store contract, run against every adapter: the in-memory
//! store, and (feature `postgres`, with `DATABASE_URL`) the PostgreSQL store.

// Test code: a panic is a failed test (clippy.toml allows these in `#[test]`
// functions, but not in an integration test's helper functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tessera_application::ports::{RevocationStore, WatermarkKind, WatermarkScope};
use tessera_infrastructure::InMemoryRevocationStore;

#[tokio::test]
async fn in_memory_store_honours_the_revocation_contract() {
    let clock = Arc::new(ManualClock::starting_at(T));
    let store = InMemoryRevocationStore::new(clock, lifetimes());
    honours_the_contract(&store).await;
}

#[tokio::test]
async fn in_memory_store_honours_the_contract_over_time() {
    let clock = Arc::new(ManualClock::starting_at(T));
    let store = InMemoryRevocationStore::new(clock.clone(), lifetimes());
    honours_the_contract_over_time(&store, &clock).await;
}

#[tokio::test]
async fn in_memory_store_forgets_what_can_no_longer_matter() {
    let clock = Arc::new(ManualClock::starting_at(T));
    let store = InMemoryRevocationStore::new(clock.clone(), lifetimes());
    revoke_what_will_expire(&store, &Subject::new(1, None)).await;
    assert_eq!(store.len(), 2);

    // The next write purges both.
    write_once_it_expired(&store, &clock).await;
    assert_eq!(store.len(), 1, "only the new watermark remains");
}

/// A logout of `subject`'s session that ends at `T + 100`, and a
/// force-logout of its user at `T`: what the purge tests expect to go.
async fn revoke_what_will_expire(store: &dyn RevocationStore, subject: &Subject) {
    store
        .revoke_session(subject.session, at(T + 100))
        .await
        .unwrap();
    store
        .set_watermark(
            WatermarkScope::User(subject.user),
            WatermarkKind::ForceLogout,
            at(T),
        )
        .await
        .unwrap();
}

/// Moves `clock` past the logout's end and past the absolute lifetime (plus
/// leeway) of anything the watermark covers, and writes a claims-stale
/// watermark for everyone then.
async fn write_once_it_expired(store: &dyn RevocationStore, clock: &ManualClock) {
    clock.set(T + 3600 + 31);
    store
        .set_watermark(
            WatermarkScope::Everyone,
            WatermarkKind::ClaimsStale,
            at(T + 3631),
        )
        .await
        .unwrap();
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::time::Duration;

    use tessera_application::ports::RevocationStatus;
    use tessera_infrastructure::postgres::PostgresRevocationStore;

    use super::*;

    #[tokio::test]
    async fn postgres_store_honours_the_revocation_contract() {
        let Some(db) = pg::database("contract").await else {
            return;
        };
        let store = db
            .instance("a", Arc::new(ManualClock::starting_at(T)))
            .await;
        honours_the_contract(&store).await;
        // A second instance started now loads the same answers from the tables.
        let other = db
            .instance("b", Arc::new(ManualClock::starting_at(T)))
            .await;
        for (subject, iat) in [
            (Subject::new(1, Some("acme")), T),
            (Subject::new(2, Some("globex")), T + 15),
            (Subject::new(2, Some("globex")), T + 16),
            (Subject::new(4, Some("acme")), T + 41),
            (Subject::new(3, None), T + 40),
            (Subject::new(3, None), T + 41),
        ] {
            assert_eq!(
                subject.status(&other, iat),
                subject.status(&store, iat),
                "{}",
                subject.user
            );
        }
        store.shutdown().await;
        other.shutdown().await;
    }

    #[tokio::test]
    async fn postgres_store_honours_the_contract_over_time_and_caches_one_token_lifetime() {
        let Some(db) = pg::database("over_time").await else {
            return;
        };
        let clock = Arc::new(ManualClock::starting_at(T));
        let store = db.instance("a", clock.clone()).await;
        honours_the_contract_over_time(&store, &clock).await;

        // The cache holds what can matter to an unexpired token: the
        // globex force-logout and the late user's recent one. The tables
        // hold the rest too, for rotation.
        store.purge_now().await;
        assert_eq!(store.health().entries, 2);
        assert_eq!(db.count("tessera_session_logouts").await, 1);
        assert_eq!(db.count("tessera_watermarks").await, 4);
        // An instance starting now loads only those two.
        let other = db.instance("b", clock.clone()).await;
        assert_eq!(other.health().entries, 2);
        assert_eq!(
            other
                .check_authoritative(Subject::new(11, None).query(T + 1000))
                .await
                .unwrap(),
            RevocationStatus::Revoked(
                tessera_application::ports::RevocationReason::SessionLoggedOut
            )
        );
        store.shutdown().await;
        other.shutdown().await;
    }

    #[tokio::test]
    async fn postgres_store_forgets_what_can_no_longer_matter_in_its_cache_and_its_tables() {
        let Some(db) = pg::database("purge").await else {
            return;
        };
        let clock = Arc::new(ManualClock::starting_at(T));
        let store = PostgresRevocationStore::start(
            db.pool().await,
            clock.clone(),
            db.config("a")
                .with_purge_interval(Duration::from_millis(50)),
        )
        .await
        .unwrap();
        let bob = Subject::new(2, None);
        revoke_what_will_expire(&store, &Subject::new(1, None)).await;
        store
            .set_watermark(
                WatermarkScope::User(bob.user),
                WatermarkKind::ClaimsStale,
                at(T),
            )
            .await
            .unwrap();
        store
            .clear_watermark(WatermarkScope::User(bob.user), WatermarkKind::ClaimsStale)
            .await
            .unwrap();
        assert_eq!(store.health().entries, 2);

        write_once_it_expired(&store, &clock).await;
        eventually("the cache is purged", Duration::from_secs(5), || {
            store.health().entries == 1
        })
        .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while db.count("tessera_session_logouts").await + db.count("tessera_watermarks").await > 1 {
            assert!(tokio::time::Instant::now() < deadline, "tables not purged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            db.count("tessera_watermarks").await,
            1,
            "only the new watermark remains"
        );
        assert_eq!(
            Subject::new(9, None).status(&store, T + 3631),
            RevocationStatus::ClaimsStale
        );
        store.shutdown().await;
    }
}
