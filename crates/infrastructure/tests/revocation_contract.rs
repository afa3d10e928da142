//! The revocation store contract, run against every adapter: the in-memory
//! store, (feature `postgres`, with `DATABASE_URL`) the PostgreSQL store,
//! and (feature `redis`, Redis at `REDIS_URL` or 127.0.0.1:6379) the Redis
//! store.

// Test code: a panic is a failed test (clippy.toml allows these in `#[test]`
// functions, but not in an integration test's helper functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tessera_application::contracts::{revocation_store, revocation_store_over_time};
use tessera_application::ports::{RevocationStore, WatermarkKind, WatermarkScope};
use tessera_infrastructure::InMemoryRevocationStore;

#[tokio::test]
async fn in_memory_store_honours_the_revocation_contract() {
    let clock = Arc::new(ManualClock::starting_at(T));
    let store = InMemoryRevocationStore::new(clock, lifetimes());
    revocation_store(&store).await;
}

#[tokio::test]
async fn in_memory_store_revocation_store_over_time() {
    let clock = Arc::new(ManualClock::starting_at(T));
    let store = InMemoryRevocationStore::new(clock.clone(), lifetimes());
    revocation_store_over_time(&store, &clock).await;
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

/// Two instances of one shared store give the same answers about what
/// [`revocation_store`] wrote.
fn answers_alike(store: &dyn RevocationStore, other: &dyn RevocationStore) {
    for (subject, iat) in [
        (Subject::new(1, Some("acme")), T),
        (Subject::new(2, Some("globex")), T + 15),
        (Subject::new(2, Some("globex")), T + 16),
        (Subject::new(4, Some("acme")), T + 41),
        (Subject::new(3, None), T + 40),
        (Subject::new(3, None), T + 41),
    ] {
        assert_eq!(
            subject.status(other, iat),
            subject.status(store, iat),
            "{}",
            subject.user
        );
    }
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
        revocation_store(&store).await;
        // A second instance started now loads the same answers from the tables.
        let other = db
            .instance("b", Arc::new(ManualClock::starting_at(T)))
            .await;
        answers_alike(&store, &other);
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
        revocation_store_over_time(&store, &clock).await;

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

#[cfg(feature = "redis")]
mod redis {
    use std::time::Duration;

    use tessera_application::ports::{RevocationReason, RevocationStatus};
    use tessera_infrastructure::redis::{RedisRevocationStore, RedisStoreError};

    use super::*;

    #[tokio::test]
    async fn redis_store_honours_the_revocation_contract() {
        let Some(redis) = common::redis::redis("contract").await else {
            return;
        };
        let store = redis.instance(Arc::new(ManualClock::starting_at(T))).await;
        revocation_store(&store).await;
        // A second instance started now loads the same answers.
        let other = redis.instance(Arc::new(ManualClock::starting_at(T))).await;
        answers_alike(&store, &other);
        store.shutdown().await;
        other.shutdown().await;
    }

    #[tokio::test]
    async fn redis_store_honours_the_contract_over_time_and_caches_one_token_lifetime() {
        let Some(redis) = common::redis::redis("over_time").await else {
            return;
        };
        let clock = Arc::new(ManualClock::starting_at(T));
        let store = redis.instance(clock.clone()).await;
        revocation_store_over_time(&store, &clock).await;
        store.purge_now().await;
        assert_eq!(store.health().entries, 2);
        let other = redis.instance(clock.clone()).await;
        assert_eq!(
            other.health().entries,
            2,
            "a start loads only what can matter"
        );
        assert_eq!(
            other
                .check_authoritative(Subject::new(11, None).query(T + 1000))
                .await
                .unwrap(),
            RevocationStatus::Revoked(RevocationReason::SessionLoggedOut)
        );
        store.shutdown().await;
        other.shutdown().await;
    }

    #[tokio::test]
    async fn redis_instances_follow_each_other_and_reload_only_past_a_trim() {
        let Some(redis) = common::redis::redis("follow").await else {
            return;
        };
        let clock = Arc::new(ManualClock::starting_at(T));
        let a = redis.instance(clock.clone()).await;
        let b = redis.instance(clock.clone()).await;
        let (alice, bob) = (Subject::new(1, None), Subject::new(2, None));
        a.set_watermark(
            WatermarkScope::User(alice.user),
            WatermarkKind::ForceLogout,
            at(T),
        )
        .await
        .unwrap();
        assert_eq!(
            alice.status(&a, T),
            RevocationStatus::Revoked(RevocationReason::UserLoggedOut),
            "the writer sees its own write as soon as it returns"
        );
        eventually("b follows a", Duration::from_secs(5), || {
            alice.status(&b, T) == RevocationStatus::Revoked(RevocationReason::UserLoggedOut)
        })
        .await;
        assert_eq!(b.health().full_reloads, 1, "from the stream, no reload");

        // The stream trimmed past what b applied (the horizon moved by hand
        // to the newest entry, as a trim while b was cut off would leave it):
        // b reloads, and loses nothing.
        a.revoke_session(bob.session, at(T + 3600)).await.unwrap();
        let mut conn = redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        eventually("b has it", Duration::from_secs(5), || {
            bob.status(&b, T) == RevocationStatus::Revoked(RevocationReason::SessionLoggedOut)
        })
        .await;
        // One more entry and a horizon at it, atomically: b, which has not
        // read that entry, finds the stream trimmed past it.
        let (ms, _): (u64, u64) = ::redis::cmd("TIME").query_async(&mut conn).await.unwrap();
        let id = format!("{}-0", ms * 1000 + 10_000_000);
        let _: () = ::redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(format!("{}:log", redis.prefix()))
            .arg(&id)
            .arg("c")
            .arg(format!("logout {} {} {}", bob.session, T + 3600, T))
            .ignore()
            .cmd("SET")
            .arg(format!("{}:horizon", redis.prefix()))
            .arg(&id)
            .ignore()
            .query_async(&mut conn)
            .await
            .unwrap();
        eventually("b reloads", Duration::from_secs(5), || {
            b.health().full_reloads >= 2
        })
        .await;
        assert_eq!(
            bob.status(&b, T),
            RevocationStatus::Revoked(RevocationReason::SessionLoggedOut)
        );
        assert_eq!(
            alice.status(&b, T),
            RevocationStatus::Revoked(RevocationReason::UserLoggedOut)
        );

        // A resync entry reloads every instance.
        let reloads = b.health().full_reloads;
        a.request_resync().await.unwrap();
        eventually("b reloads on resync", Duration::from_secs(5), || {
            b.health().full_reloads > reloads
        })
        .await;
        b.shutdown().await;
        assert!(matches!(
            b.check(alice.query(T)),
            Err(tessera_application::ports::RevocationError::Unavailable(e))
                if matches!(e.downcast_ref::<RedisStoreError>(), Some(RedisStoreError::ShutDown))
        ));
        a.shutdown().await;
    }

    #[tokio::test]
    async fn redis_stream_is_trimmed_past_its_retention_in_bounded_batches() {
        let Some(redis) = common::redis::redis("trim").await else {
            return;
        };
        let clock = Arc::new(ManualClock::starting_at(T));
        let store = RedisRevocationStore::start(
            redis.client(),
            clock.clone(),
            redis
                .config()
                .with_log_retention(Duration::from_millis(2_100)),
        )
        .await
        .unwrap();
        for n in 0..3 {
            store
                .revoke_session(Subject::new(n, None).session, at(T + 3600))
                .await
                .unwrap();
        }
        let mut conn = redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let log = format!("{}:log", redis.prefix());
        let len = |conn: &mut ::redis::aio::MultiplexedConnection| {
            let log = log.clone();
            let mut conn = conn.clone();
            async move {
                ::redis::cmd("XLEN")
                    .arg(log)
                    .query_async::<u64>(&mut conn)
                    .await
                    .unwrap()
            }
        };
        store.purge_now().await;
        assert_eq!(len(&mut conn).await, 3, "nothing is old enough yet");
        tokio::time::sleep(Duration::from_millis(2_200)).await;
        store
            .revoke_session(Subject::new(9, None).session, at(T + 3600))
            .await
            .unwrap();
        store.purge_now().await;
        assert_eq!(len(&mut conn).await, 1, "only the newest entry stays");
        let horizon: String = ::redis::cmd("GET")
            .arg(format!("{}:horizon", redis.prefix()))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!horizon.is_empty());
        // The instance itself had applied what was trimmed: no reload.
        assert_eq!(store.health().full_reloads, 1);
        for n in [0, 1, 2, 9] {
            assert!(matches!(
                Subject::new(n, None).status(&store, T),
                RevocationStatus::Revoked(_)
            ));
        }
        store.shutdown().await;
    }

    #[tokio::test]
    async fn redis_store_fails_closed_past_the_staleness_bound_then_recovers() {
        let Some(redis) = common::redis::redis("stale").await else {
            return;
        };
        let clock = Arc::new(ManualClock::starting_at(T));
        let a = redis.instance(clock.clone()).await;
        let proxy = common::proxy::Proxy::to(redis.address()).await;
        let b = RedisRevocationStore::start(
            redis.client_through(proxy.addr()),
            clock.clone(),
            redis.config(),
        )
        .await
        .unwrap();
        let carol = Subject::new(3, None);
        assert_eq!(carol.status(&b, T), RevocationStatus::Active);

        proxy.cut();
        assert!(
            b.check(carol.query(T)).is_ok(),
            "within the bound, b answers"
        );
        a.set_watermark(
            WatermarkScope::User(carol.user),
            WatermarkKind::ForceLogout,
            at(T),
        )
        .await
        .unwrap();
        eventually("b fails closed", Duration::from_secs(5), || {
            b.check(carol.query(T)).is_err()
        })
        .await;
        let Err(tessera_application::ports::RevocationError::Unavailable(cause)) =
            b.check(carol.query(T))
        else {
            panic!("b should fail closed");
        };
        assert!(matches!(
            cause.downcast_ref::<RedisStoreError>(),
            Some(RedisStoreError::Stale { since: Some(_) })
        ));

        proxy.restore();
        eventually("b recovers by itself", Duration::from_secs(10), || {
            b.is_trusted()
        })
        .await;
        assert_eq!(
            carol.status(&b, T),
            RevocationStatus::Revoked(RevocationReason::UserLoggedOut),
            "and honours what was written while it was cut off"
        );
        assert_eq!(
            b.health().full_reloads,
            1,
            "by reading the stream, no reload"
        );
        a.shutdown().await;
        b.shutdown().await;
    }
}
