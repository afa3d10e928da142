//! Several instances sharing one PostgreSQL database, each with its own pool
//! and cache, wired to the real use cases: what one writes, the others
//! honour; a lost listener reconnects and reloads; a cache that cannot be
//! trusted fails closed, then recovers by itself.
//!
//! Each test works in a schema and on a channel of its own (see
//! `common/pg.rs`), so the tests run in parallel. Without `DATABASE_URL`
//! they say they are skipped and pass.
#![cfg(feature = "postgres")]
// Test code: a panic is a failed test (clippy.toml allows these in `#[test]`
// functions, but not in an integration test's helper functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::pg::TestDb;
use common::proxy::Proxy;
use common::*;
use tessera_application::ports::{
    Clock, DirectoryUser, RevocationReason, RevocationStatus, RevocationStore, WatermarkKind,
    WatermarkScope,
};
use tessera_application::{
    EstablishRequest, EstablishSession, RevokeRequest, RevokeSession, RotateSession, RotationNeed,
    SessionCheck, VerifyError, VerifySession,
};
use tessera_domain::{Capability, TenantId, UserId, UserRole};
use tessera_infrastructure::postgres::{
    PostgresRevocationStore, PostgresStoreError, PostgresUserDirectory,
};
use tessera_infrastructure::{JwtSessionCodec, KeyRing, SigningKey, UuidV7SessionIds};

const START: i64 = 1_800_000_000;
const WITHIN: Duration = Duration::from_secs(5);

fn alice() -> UserId {
    UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap()
}

fn caps(names: &[&str]) -> BTreeSet<Capability> {
    names
        .iter()
        .map(|n| Capability::parse(n).unwrap())
        .collect()
}

/// One backend instance: its own store (pool, listener, cache) and the use
/// cases wired to it, sharing the codec, clock and user directory.
struct Instance {
    store: Arc<PostgresRevocationStore>,
    establish: EstablishSession<UserRole>,
    verify: VerifySession<UserRole>,
    rotate: RotateSession<UserRole>,
    revoke: RevokeSession,
}

struct Cluster {
    clock: Arc<ManualClock>,
    codec: Arc<JwtSessionCodec>,
    directory: Arc<PostgresUserDirectory<UserRole>>,
}

impl Cluster {
    async fn new(db: &TestDb) -> Self {
        let key = SigningKey::hmac_sha256("k1", &[0x5a; 32]).unwrap();
        let cluster = Self {
            clock: Arc::new(ManualClock::starting_at(START)),
            codec: Arc::new(JwtSessionCodec::new(
                KeyRing::new(key),
                "https://api.tessera.test",
                "web",
            )),
            directory: Arc::new(PostgresUserDirectory::new(db.pool().await)),
        };
        cluster
            .directory
            .upsert(&DirectoryUser {
                user_id: alice(),
                role: UserRole::User,
                capabilities: caps(&["posts:write"]),
                tenant: Some(TenantId::parse("acme").unwrap()),
                enabled: true,
            })
            .await
            .unwrap();
        cluster
    }

    fn wire(&self, store: PostgresRevocationStore) -> Instance {
        let store = Arc::new(store);
        let clock: Arc<dyn Clock> = self.clock.clone();
        let verify = VerifySession::new(
            self.codec.clone(),
            clock.clone(),
            store.clone(),
            lifetimes(),
        );
        Instance {
            establish: EstablishSession::new(
                self.codec.clone(),
                clock.clone(),
                Arc::new(UuidV7SessionIds),
                lifetimes(),
            ),
            rotate: RotateSession::new(verify.clone(), self.directory.clone(), self.codec.clone()),
            revoke: RevokeSession::new(store.clone(), clock, lifetimes()),
            verify,
            store,
        }
    }

    async fn instance(&self, db: &TestDb, name: &str) -> Instance {
        self.wire(db.instance(name, self.clock.clone()).await)
    }
}

impl Instance {
    /// Alice signs in as a plain user of `acme`; her token.
    fn sign_in_alice(&self) -> String {
        self.establish
            .execute(EstablishRequest {
                user_id: alice(),
                role: UserRole::User,
                capabilities: caps(&["posts:write"]),
                tenant: Some(TenantId::parse("acme").unwrap()),
                authenticated_at: None,
                authentication: Default::default(),
            })
            .unwrap()
            .token
            .expose_secret()
            .to_owned()
    }

    fn is_revoked(&self, token: &str, reason: RevocationReason) -> bool {
        matches!(self.verify.execute(token), Err(VerifyError::Revoked(r)) if r == reason)
    }
}

#[tokio::test]
async fn force_logout_written_through_one_instance_is_honoured_by_another() {
    let Some(db) = pg::database("force_logout").await else {
        return;
    };
    let cluster = Cluster::new(&db).await;
    let (a, b) = (
        cluster.instance(&db, "a").await,
        cluster.instance(&db, "b").await,
    );
    let token = a.sign_in_alice();
    assert!(b.verify.execute(&token).is_ok(), "b accepts a's token");

    cluster.clock.advance(1);
    a.revoke
        .execute(RevokeRequest::ForceLogout(WatermarkScope::User(alice())))
        .await
        .unwrap();
    assert!(
        a.is_revoked(&token, RevocationReason::UserLoggedOut),
        "the writer sees its own write as soon as it returns"
    );
    eventually("b honours a's force-logout", WITHIN, || {
        b.is_revoked(&token, RevocationReason::UserLoggedOut)
    })
    .await;

    // Lifting it through b reaches a.
    b.revoke
        .execute(RevokeRequest::ClearForceLogout(WatermarkScope::User(
            alice(),
        )))
        .await
        .unwrap();
    eventually("a honours b's clear", WITHIN, || {
        a.verify.execute(&token).is_ok()
    })
    .await;

    // A single session's logout, through b, reaches a.
    let session = b.verify.execute(&token).unwrap().into_session();
    b.revoke
        .execute(RevokeRequest::Session {
            session_id: *session.session_id(),
            authenticated_at: session.authenticated_at(),
        })
        .await
        .unwrap();
    eventually("a honours b's session logout", WITHIN, || {
        a.is_revoked(&token, RevocationReason::SessionLoggedOut)
    })
    .await;

    // A tenant's force-logout, through a, reaches b.
    cluster.clock.advance(1);
    let other = a.sign_in_alice();
    cluster.clock.advance(1);
    a.revoke
        .execute(RevokeRequest::ForceLogout(WatermarkScope::Tenant(
            TenantId::parse("acme").unwrap(),
        )))
        .await
        .unwrap();
    eventually("b honours a's tenant force-logout", WITHIN, || {
        b.is_revoked(&other, RevocationReason::TenantLoggedOut)
    })
    .await;
}

#[tokio::test]
async fn claims_stale_watermark_makes_another_instance_rotate_with_the_new_role() {
    let Some(db) = pg::database("claims_stale").await else {
        return;
    };
    let cluster = Cluster::new(&db).await;
    let (a, b) = (
        cluster.instance(&db, "a").await,
        cluster.instance(&db, "b").await,
    );
    let token = a.sign_in_alice();
    assert_eq!(
        b.verify.execute(&token).unwrap().rotation(),
        RotationNeed::NotDue
    );

    // An administrator promotes Alice and marks her permissions changed, on a.
    cluster.clock.advance(1);
    cluster
        .directory
        .upsert(&DirectoryUser {
            user_id: alice(),
            role: UserRole::Moderator,
            capabilities: caps(&["posts:write", "posts:hide"]),
            tenant: Some(TenantId::parse("acme").unwrap()),
            enabled: true,
        })
        .await
        .unwrap();
    a.revoke
        .execute(RevokeRequest::PermissionsChanged(WatermarkScope::User(
            alice(),
        )))
        .await
        .unwrap();

    // b's next request finds the token stale but valid, and rotates it.
    eventually("b sees the token's claims as stale", WITHIN, || {
        matches!(b.verify.check(&token), Ok(SessionCheck::Stale(_)))
    })
    .await;
    cluster.clock.advance(1);
    let rotated = b.rotate.execute(&token).await.unwrap();
    assert_eq!(
        rotated.session.role(),
        &UserRole::Moderator,
        "role read afresh"
    );
    assert!(rotated.session.has_capability("posts:hide"));
    for instance in [&a, &b] {
        let v = instance
            .verify
            .execute(rotated.token.expose_secret())
            .unwrap();
        assert_eq!(v.rotation(), RotationNeed::NotDue, "the new token is fresh");
        assert_eq!(v.session().role(), &UserRole::Moderator);
    }
}

#[tokio::test]
async fn revocation_written_while_the_listener_is_down_is_honoured_after_reconnect() {
    let Some(db) = pg::database("reconnect").await else {
        return;
    };
    let clock = Arc::new(ManualClock::starting_at(START));
    let a = db.instance("a", clock.clone()).await;
    let b = db.instance("b", clock.clone()).await;
    let (carol, dave) = (Subject::new(3, None), Subject::new(4, None));

    // A row written behind the stores' backs, with no notification: only a
    // reload can bring it into b's cache.
    sqlx::query(&format!(
        "INSERT INTO {}.tessera_watermarks (kind, scope, subject, at)
         VALUES ('force_logout', 'user', $1, to_timestamp($2))",
        db.schema()
    ))
    .bind(carol.user.to_string())
    .bind(START as f64)
    .execute(db.admin())
    .await
    .unwrap();
    assert_eq!(carol.status(&b, START), RevocationStatus::Active);

    assert_eq!(
        db.terminate("b").await,
        1,
        "b's listener found and terminated"
    );
    a.set_watermark(
        WatermarkScope::User(dave.user),
        WatermarkKind::ForceLogout,
        at(START),
    )
    .await
    .unwrap();

    eventually("b reconnects", WITHIN, || b.health().reconnections >= 1).await;
    assert!(b.is_trusted());
    assert_eq!(
        carol.status(&b, START),
        RevocationStatus::Revoked(RevocationReason::UserLoggedOut),
        "the reload brought in what no notification announced"
    );
    eventually("b honours the write made meanwhile", WITHIN, || {
        dave.status(&b, START) == RevocationStatus::Revoked(RevocationReason::UserLoggedOut)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn verification_fails_closed_past_the_staleness_bound_then_recovers() {
    let Some(db) = pg::database("stale").await else {
        return;
    };
    if db.options().get_host().starts_with('/') {
        eprintln!("stale: skipped: DATABASE_URL names a Unix socket; this test needs TCP");
        return;
    }
    let cluster = Cluster::new(&db).await;
    let a = cluster.instance(&db, "a").await;
    // b reaches the database only through a proxy the test can cut.
    let proxy = Proxy::start(&db.options()).await;
    let b_pool = db.pool_with(proxy.route(db.options())).await;
    let b = cluster.wire(
        PostgresRevocationStore::start(b_pool, cluster.clock.clone(), db.config("b"))
            .await
            .unwrap(),
    );
    let token = a.sign_in_alice();
    assert!(b.verify.execute(&token).is_ok());

    let synced_before_cut = b.store.last_synced_at().unwrap();
    proxy.cut();
    assert!(
        b.verify.execute(&token).is_ok(),
        "within the bound, b answers from its cache"
    );
    cluster.clock.advance(1);
    a.revoke
        .execute(RevokeRequest::ForceLogout(WatermarkScope::User(alice())))
        .await
        .unwrap();

    eventually(
        "b fails closed",
        WITHIN,
        || matches!(b.verify.execute(&token), Err(e) if e.is_unavailable()),
    )
    .await;
    assert!(
        synced_before_cut.elapsed() >= Duration::from_millis(1995),
        "not before the bound: 2 s from the last sync (at ms precision)"
    );
    cluster.clock.advance(1);
    let fresh = b.sign_in_alice();
    let err = b.verify.execute(&fresh).unwrap_err();
    assert!(
        err.is_unavailable(),
        "every verification fails closed: {err:?}"
    );
    let VerifyError::RevocationUnavailable(cause) = err else {
        unreachable!()
    };
    let tessera_application::ports::RevocationError::Unavailable(source) = cause else {
        panic!("unexpected {cause:?}")
    };
    assert!(matches!(
        source.downcast_ref::<PostgresStoreError>(),
        Some(PostgresStoreError::Stale { since: Some(_) })
    ));
    assert!(!b.store.health().trusted);

    proxy.restore();
    eventually("b recovers by itself", WITHIN, || b.store.is_trusted()).await;
    assert!(
        b.is_revoked(&token, RevocationReason::UserLoggedOut),
        "and honours what was written while it was cut off"
    );
    assert!(b.verify.execute(&fresh).is_ok());
    assert!(b.store.health().reconnections >= 1);
}

#[tokio::test]
async fn concurrent_admin_writes_and_verifications_lose_nothing() {
    let Some(db) = pg::database("concurrent").await else {
        return;
    };
    let clock = Arc::new(ManualClock::starting_at(START));
    let stores = [
        Arc::new(db.instance("a", clock.clone()).await),
        Arc::new(db.instance("b", clock.clone()).await),
    ];
    const WRITERS: u128 = 8;
    const EACH: u128 = 25;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut checkers = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for _ in 0..2 {
            let (store, stop) = (store.clone(), stop.clone());
            checkers.push(tokio::spawn(async move {
                let mut checks = 0_u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let n = u128::from(checks % u64::try_from(WRITERS * EACH).unwrap());
                    store.check(Subject::new(n, None).query(START)).unwrap();
                    checks += 1;
                    if checks.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
                (i, checks)
            }));
        }
    }

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = stores[usize::try_from(w % 2).unwrap()].clone();
        writers.push(tokio::spawn(async move {
            for k in 0..EACH {
                let subject = Subject::new(w * EACH + k, None);
                if k % 2 == 0 {
                    store
                        .set_watermark(
                            WatermarkScope::User(subject.user),
                            WatermarkKind::ForceLogout,
                            at(START),
                        )
                        .await
                        .unwrap();
                } else {
                    store
                        .revoke_session(subject.session, at(START + 3600))
                        .await
                        .unwrap();
                }
                assert!(
                    matches!(subject.status(&*store, START), RevocationStatus::Revoked(_)),
                    "the writer sees its own write at once"
                );
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in checkers {
        let (_, checks) = c.await.unwrap();
        assert!(checks > 0);
    }

    let total = usize::try_from(WRITERS * EACH).unwrap();
    for store in &stores {
        eventually("every write reaches every cache", WITHIN, || {
            store.health().entries == total
        })
        .await;
        for n in 0..WRITERS * EACH {
            assert!(matches!(
                Subject::new(n, None).status(&**store, START),
                RevocationStatus::Revoked(_)
            ));
        }
    }
    assert_eq!(
        db.count("tessera_watermarks").await + db.count("tessera_session_logouts").await,
        i64::try_from(total).unwrap()
    );
    for store in &stores {
        store.shutdown().await;
    }
}

#[tokio::test]
async fn a_resync_notification_sent_by_hand_reloads_every_cache() {
    let Some(db) = pg::database("resync").await else {
        return;
    };
    let clock = Arc::new(ManualClock::starting_at(START));
    let (a, b) = (
        db.instance("a", clock.clone()).await,
        db.instance("b", clock).await,
    );
    let erin = Subject::new(5, None);
    sqlx::query(&format!(
        "INSERT INTO {}.tessera_session_logouts (session_id, until) VALUES ($1, to_timestamp($2))",
        db.schema()
    ))
    .bind(*erin.session.as_uuid())
    .bind((START + 60) as f64)
    .execute(db.admin())
    .await
    .unwrap();
    assert_eq!(erin.status(&a, START), RevocationStatus::Active);
    sqlx::query("SELECT pg_notify($1, 'resync')")
        .bind(db.schema())
        .execute(db.admin())
        .await
        .unwrap();
    for store in [&a, &b] {
        eventually("the cache reloads", WITHIN, || {
            erin.status(store, START)
                == RevocationStatus::Revoked(RevocationReason::SessionLoggedOut)
        })
        .await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_store_shut_down_fails_closed_and_refuses_writes() {
    let Some(db) = pg::database("shutdown").await else {
        return;
    };
    let store = db
        .instance("a", Arc::new(ManualClock::starting_at(START)))
        .await;
    let frank = Subject::new(6, None);
    assert!(store.check(frank.query(START)).is_ok());
    store.shutdown().await;
    assert!(store.check(frank.query(START)).is_err());
    assert!(store.last_synced_at().is_none());
    assert!(
        store
            .revoke_session(frank.session, at(START + 60))
            .await
            .is_err()
    );
}
