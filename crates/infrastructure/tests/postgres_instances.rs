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
            rotate: RotateSession::new(verify.clone(), self.directory.clone(), self.codec.clone())
                .with_revocations(store.clone()),
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
async fn rotation_asks_the_tables_and_refuses_a_logout_the_cache_has_not_seen() {
    let Some(db) = pg::database("rotate_tables").await else {
        return;
    };
    let cluster = Cluster::new(&db).await;
    let a = cluster.instance(&db, "a").await;
    let token = a.sign_in_alice();
    let session = a.verify.execute(&token).unwrap().into_session();
    // In the tables, not (yet) in any cache: what a lagging instance sees.
    sqlx::query(&format!(
        "INSERT INTO {}.tessera_session_logouts (session_id, until) VALUES ($1, to_timestamp($2))",
        db.schema()
    ))
    .bind(*session.session_id().as_uuid())
    .bind((START + 3600) as f64)
    .execute(db.admin())
    .await
    .unwrap();
    cluster.clock.advance(301);
    let verified = a.verify.execute(&token).unwrap();
    assert_eq!(
        verified.rotation(),
        RotationNeed::Due,
        "the cache lets it through"
    );
    let err = a.rotate.rotate(verified).await.unwrap_err();
    assert!(
        matches!(
            err,
            tessera_application::RotateError::Verify(VerifyError::Revoked(
                RevocationReason::SessionLoggedOut
            ))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn revocation_written_while_the_listener_is_down_is_caught_up_from_the_log() {
    let Some(db) = pg::database("reconnect").await else {
        return;
    };
    let clock = Arc::new(ManualClock::starting_at(START));
    let a = db.instance("a", clock.clone()).await;
    let b = db.instance("b", clock.clone()).await;
    let dave = Subject::new(4, None);
    assert_eq!(b.health().full_reloads, 1, "the start's load");

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

    eventually("b honours the write made meanwhile", WITHIN, || {
        dave.status(&b, START) == RevocationStatus::Revoked(RevocationReason::UserLoggedOut)
    })
    .await;
    eventually("b's listener reconnects", WITHIN, || {
        b.health().reconnections >= 1 && b.health().connected
    })
    .await;
    assert!(b.is_trusted());
    assert_eq!(
        b.health().full_reloads,
        1,
        "b read what it missed from the log, and nothing more"
    );
    assert_eq!(b.health().applied_seq, a.health().applied_seq);
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
    eventually("b's listener is replaced", WITHIN, || {
        b.store.health().reconnections >= 1
    })
    .await;
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
async fn a_resync_row_in_the_log_reloads_every_cache_and_a_resync_notification_does_not() {
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
        "INSERT INTO {}.tessera_session_logouts (session_id, until, logged_out_at)
         VALUES ($1, to_timestamp($2), to_timestamp($3))",
        db.schema()
    ))
    .bind(*erin.session.as_uuid())
    .bind((START + 60) as f64)
    .bind(START as f64)
    .execute(db.admin())
    .await
    .unwrap();
    // The old way asks for nothing any more: a notification is only a wake-up.
    sqlx::query("SELECT pg_notify($1, 'resync')")
        .bind(db.schema())
        .execute(db.admin())
        .await
        .unwrap();
    db.sync_all(&[&a, &b]).await;
    assert_eq!(erin.status(&a, START), RevocationStatus::Active);
    assert_eq!(a.health().full_reloads, 1);

    sqlx::query(&format!(
        "INSERT INTO {}.tessera_revocation_log (change) VALUES ('resync')",
        db.schema()
    ))
    .execute(db.admin())
    .await
    .unwrap();
    for store in [&a, &b] {
        eventually("the cache reloads", WITHIN, || {
            erin.status(store, START)
                == RevocationStatus::Revoked(RevocationReason::SessionLoggedOut)
        })
        .await;
        assert_eq!(store.health().full_reloads, 2);
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn notifications_from_a_role_without_grants_change_nothing() {
    let Some(db) = pg::database("nogrant").await else {
        return;
    };
    let clock = Arc::new(ManualClock::starting_at(START));
    let (a, b) = (
        db.instance("a", clock.clone()).await,
        db.instance("b", clock).await,
    );
    let (alice, bob) = (Subject::new(1, None), Subject::new(2, None));
    a.set_watermark(
        WatermarkScope::User(alice.user),
        WatermarkKind::ForceLogout,
        at(START),
    )
    .await
    .unwrap();
    eventually("b has alice's force-logout", WITHIN, || {
        alice.status(&b, START) == RevocationStatus::Revoked(RevocationReason::UserLoggedOut)
    })
    .await;
    let before = [a.health(), b.health()];

    // A login role granted nothing at all: it can connect and notify.
    let intruder = db.role_without_grants().await;
    let origin = "0190b5a4-7c2e-7d3a-9f00-0000000000aa";
    let payloads = [
        // Every shape the old protocol applied, aimed at what we hold.
        format!("v1 {origin} 1 clear f u {}", alice.user),
        format!("v1 {origin} 2 raise f e - {}", START + 10),
        format!("v1 {origin} 3 raise c u {} {}", bob.user, START + 10),
        format!("v1 {origin} 4 logout {} {}", bob.session, START + 3600),
        format!("v1 {origin} 5 ping"),
        "resync".to_owned(),
        // And anything a new one might be guessed to be.
        String::new(),
        "1".to_owned(),
        format!("{}", i64::MAX),
        "-1".to_owned(),
        r#"{"seq": 999999, "change": "clear"}"#.to_owned(),
        "x".repeat(7_999),
    ];
    for payload in &payloads {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(db.schema())
            .bind(payload)
            .execute(&intruder)
            .await
            .unwrap();
    }
    // Nor can it write the log or the tables.
    assert!(
        sqlx::query(&format!(
            "INSERT INTO {}.tessera_revocation_log (change) VALUES ('resync')",
            db.schema()
        ))
        .execute(&intruder)
        .await
        .is_err()
    );
    intruder.close().await;
    db.sync_all(&[&a, &b]).await;

    for (store, before) in [&a, &b].into_iter().zip(before) {
        let after = store.health();
        assert_eq!(
            alice.status(store, START),
            RevocationStatus::Revoked(RevocationReason::UserLoggedOut)
        );
        assert_eq!(bob.status(store, START), RevocationStatus::Active);
        assert_eq!(after.entries, before.entries);
        assert_eq!(after.applied_seq, before.applied_seq);
        assert_eq!(after.full_reloads, before.full_reloads, "nothing reloaded");
    }

    // A real change still gets through, to both.
    a.revoke_session(bob.session, at(START + 3600))
        .await
        .unwrap();
    eventually("b honours a real change", WITHIN, || {
        bob.status(&b, START) == RevocationStatus::Revoked(RevocationReason::SessionLoggedOut)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn polling_instances_honour_each_other_without_listening() {
    let Some(db) = pg::database("polling").await else {
        return;
    };
    let clock = Arc::new(ManualClock::starting_at(START));
    let a = db.polling_instance("a", clock.clone()).await;
    let b = db.polling_instance("b", clock.clone()).await;
    let listening = db.instance("c", clock).await;
    assert!(!a.health().connected, "no listening connection");
    assert_eq!(db.listeners().await, 1, "only c listens");
    let frank = Subject::new(6, Some("acme"));

    a.set_watermark(
        WatermarkScope::Tenant(frank.tenant.clone().unwrap()),
        WatermarkKind::ForceLogout,
        at(START),
    )
    .await
    .unwrap();
    assert_eq!(
        frank.status(&a, START),
        RevocationStatus::Revoked(RevocationReason::TenantLoggedOut),
        "the writer sees its own write as soon as it returns"
    );
    for store in [&b, &listening] {
        eventually("the other instances honour it", WITHIN, || {
            frank.status(store, START)
                == RevocationStatus::Revoked(RevocationReason::TenantLoggedOut)
        })
        .await;
    }
    listening
        .clear_watermark(
            WatermarkScope::Tenant(frank.tenant.clone().unwrap()),
            WatermarkKind::ForceLogout,
        )
        .await
        .unwrap();
    eventually("a poller honours a listener's write", WITHIN, || {
        frank.status(&a, START) == RevocationStatus::Active
    })
    .await;
    assert!(a.is_trusted() && b.is_trusted());
    a.shutdown().await;
    b.shutdown().await;
    listening.shutdown().await;
}

#[tokio::test]
async fn an_instance_behind_the_compacted_log_reloads_and_one_within_it_catches_up() {
    let Some(db) = pg::database("compaction").await else {
        return;
    };
    let clock = Arc::new(ManualClock::starting_at(START));
    let writer = db.instance("w", clock.clone()).await;
    // Two readers that will be cut off: their pools go through proxies.
    if db.options().get_host().starts_with('/') {
        eprintln!("compaction: skipped: DATABASE_URL names a Unix socket; this test needs TCP");
        return;
    }
    let (near_proxy, far_proxy) = (
        Proxy::start(&db.options()).await,
        Proxy::start(&db.options()).await,
    );
    let near = PostgresRevocationStore::start(
        db.pool_with(near_proxy.route(db.options())).await,
        clock.clone(),
        db.config("near")
            .with_staleness_bound(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let far = PostgresRevocationStore::start(
        db.pool_with(far_proxy.route(db.options())).await,
        clock.clone(),
        db.config("far")
            .with_staleness_bound(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let first = Subject::new(7, None);
    writer
        .revoke_session(first.session, at(START + 3600))
        .await
        .unwrap();
    for store in [&near, &far] {
        eventually("both readers have the first change", WITHIN, || {
            store.health().applied_seq == writer.health().applied_seq
        })
        .await;
    }

    far_proxy.cut();
    near_proxy.cut();
    let users: Vec<Subject> = (100..130).map(|n| Subject::new(n, None)).collect();
    for user in &users {
        writer
            .set_watermark(
                WatermarkScope::User(user.user),
                WatermarkKind::ForceLogout,
                at(START),
            )
            .await
            .unwrap();
    }
    // `near` comes back before any compaction: it reads what it missed.
    near_proxy.restore();
    eventually("near catches up", WITHIN, || {
        near.health().applied_seq == writer.health().applied_seq
    })
    .await;
    assert_eq!(near.health().full_reloads, 1, "from the log, no reload");

    // The log is compacted past `far` (its rows made old by hand), in
    // bounded batches, leaving the state tables whole.
    assert_eq!(db.count("tessera_revocation_log").await, 31);
    sqlx::query(&format!(
        "UPDATE {}.tessera_revocation_log SET recorded_at = now() - interval '2 hours'
         WHERE seq <= (SELECT max(seq) - 5 FROM {0}.tessera_revocation_log)",
        db.schema()
    ))
    .execute(db.admin())
    .await
    .unwrap();
    writer.purge_now().await;
    assert_eq!(
        db.count("tessera_revocation_log").await,
        5,
        "the newest rows stay"
    );
    let through: i64 = sqlx::query_scalar(&format!(
        "SELECT compacted_through FROM {}.tessera_revocation_log_horizon",
        db.schema()
    ))
    .fetch_one(db.admin())
    .await
    .unwrap();
    assert_eq!(through, writer.health().applied_seq - 5);

    far_proxy.restore();
    eventually("far reloads from the tables", WITHIN, || {
        far.health().applied_seq == writer.health().applied_seq
    })
    .await;
    assert_eq!(far.health().full_reloads, 2, "the start's, and one more");
    for user in users.iter().chain([&first]) {
        assert!(matches!(
            user.status(&far, START),
            RevocationStatus::Revoked(_)
        ));
        assert!(matches!(
            user.status(&near, START),
            RevocationStatus::Revoked(_)
        ));
    }
    // And a later change reaches it by the log again.
    let last = Subject::new(200, None);
    writer
        .revoke_session(last.session, at(START + 3600))
        .await
        .unwrap();
    eventually("far follows the log again", WITHIN, || {
        last.status(&far, START) == RevocationStatus::Revoked(RevocationReason::SessionLoggedOut)
    })
    .await;
    assert_eq!(far.health().full_reloads, 2);
    for store in [&writer, &near, &far] {
        store.shutdown().await;
    }
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
