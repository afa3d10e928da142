//! The PostgreSQL revocation store through a real PgBouncer in transaction
//! mode (a process of the test's own, see `common/pgbouncer.rs`), configured
//! with `with_transaction_pooler`: polling instances share changes through
//! it, start and catch up through it. `LISTEN` through it hears nothing
//! (a listener connected directly hears the same notification), which is
//! why that configuration refuses to listen.
//!
//! Without `DATABASE_URL`, or without the `pgbouncer` program, the tests say
//! they are skipped and pass (unless `scripts/test.sh` requires them).
#![cfg(feature = "postgres")]
// Test code: a panic is a failed test (clippy.toml allows these in `#[test]`
// functions, but not in an integration test's helper functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pg::TestDb;
use common::pgbouncer::PgBouncer;
use common::*;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tessera_application::ports::{
    Clock, RevocationReason, RevocationStatus, RevocationStore, WatermarkKind, WatermarkScope,
};
use tessera_infrastructure::postgres::{PostgresRevocationStore, PostgresStoreError, SyncMode};

const START: i64 = 1_800_000_000;
/// The polling instances' interval.
const INTERVAL: Duration = Duration::from_millis(100);
/// What a change may take past one interval to reach a polling instance
/// (a read under way, a busy machine); a broken poll never makes it.
const MARGIN: Duration = Duration::from_secs(2);

async fn pool_through(bouncer: &PgBouncer) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(bouncer.options())
        .await
        .unwrap()
}

/// A polling instance whose pool goes through `bouncer`.
async fn through(
    bouncer: &PgBouncer,
    db: &TestDb,
    name: &str,
    clock: Arc<dyn Clock>,
) -> PostgresRevocationStore {
    let config = db
        .config(name)
        .with_sync_mode(SyncMode::Poll { interval: INTERVAL })
        .with_transaction_pooler();
    PostgresRevocationStore::start(pool_through(bouncer).await, clock, config)
        .await
        .unwrap_or_else(|e| panic!("start through pgbouncer: {e}\n{}", bouncer.log()))
}

/// Whether `store` answers `status` for `subject` (a cache that fails
/// closed answers nothing).
fn answers(store: &dyn RevocationStore, subject: &Subject, status: RevocationStatus) -> bool {
    store
        .check(subject.query(START))
        .is_ok_and(|answer| answer == status)
}

const USER_LOGGED_OUT: RevocationStatus =
    RevocationStatus::Revoked(RevocationReason::UserLoggedOut);
const SESSION_LOGGED_OUT: RevocationStatus =
    RevocationStatus::Revoked(RevocationReason::SessionLoggedOut);

#[tokio::test]
async fn polling_instances_share_changes_start_and_catch_up_through_pgbouncer() {
    let Some(db) = pg::database("pgbouncer_poll").await else {
        return;
    };
    let Some(mut bouncer) = PgBouncer::start("pgbouncer_poll", &db).await else {
        return;
    };
    let clock = Arc::new(ManualClock::starting_at(START));
    let a = through(&bouncer, &db, "a", clock.clone()).await;
    let (alice, bob, carol) = (
        Subject::new(1, None),
        Subject::new(2, None),
        Subject::new(3, None),
    );

    // Start: a logout written before `b` starts is in its first load.
    a.revoke_session(alice.session, at(START + 3_600))
        .await
        .unwrap();
    let b = through(&bouncer, &db, "b", clock.clone()).await;
    assert!(answers(&b, &alice, SESSION_LOGGED_OUT), "loaded at start");

    // A change written through one instance reaches the other through the
    // pooler within an interval and the margin.
    assert!(answers(&b, &bob, RevocationStatus::Active));
    a.set_watermark(
        WatermarkScope::User(bob.user),
        WatermarkKind::ForceLogout,
        at(START),
    )
    .await
    .unwrap();
    eventually(
        "b honours a's force-logout through pgbouncer",
        INTERVAL + MARGIN,
        || answers(&b, &bob, USER_LOGGED_OUT),
    )
    .await;

    // Catch-up: the pooler goes away while an instance connected directly
    // writes; once it is back, `b` reads what it missed from the log.
    let reloads = b.health().full_reloads;
    bouncer.stop();
    let direct = db.instance("direct", clock.clone()).await;
    direct
        .revoke_session(carol.session, at(START + 3_600))
        .await
        .unwrap();
    bouncer.restart().await;
    eventually(
        "b catches up through pgbouncer after it restarts",
        Duration::from_secs(10),
        || answers(&b, &carol, SESSION_LOGGED_OUT),
    )
    .await;
    assert_eq!(
        b.health().full_reloads,
        reloads,
        "caught up by reading the log, not by a reload"
    );
    for store in [&a, &b, &direct] {
        store.shutdown().await;
    }
}

#[tokio::test]
async fn listen_hears_nothing_through_pgbouncer_so_a_pooler_configuration_refuses_it() {
    let Some(db) = pg::database("pgbouncer_listen").await else {
        return;
    };
    let Some(bouncer) = PgBouncer::start("pgbouncer_listen", &db).await else {
        return;
    };
    let channel = db.schema();
    let mut pooled = PgListener::connect_with(&pool_through(&bouncer).await)
        .await
        .unwrap();
    pooled.listen(channel).await.unwrap();
    let mut direct = PgListener::connect_with(&db.pool().await).await.unwrap();
    direct.listen(channel).await.unwrap();
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(db.admin())
        .await
        .unwrap();
    assert!(
        matches!(heard(&mut direct).await, Ok(Some(_))),
        "a listener connected directly hears the notification"
    );
    assert!(
        !matches!(heard(&mut pooled).await, Ok(Some(_))),
        "a listener through pgbouncer in transaction mode hears nothing"
    );

    // So a store configured for a transaction pooler refuses to listen,
    // and says why.
    let listening = db
        .config("listening")
        .with_transaction_pooler()
        .with_sync_mode(SyncMode::Listen);
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_at(START));
    match PostgresRevocationStore::start(pool_through(&bouncer).await, clock, listening).await {
        Err(PostgresStoreError::InvalidConfig(why)) => assert!(why.contains("SyncMode::Poll")),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a transaction-pooler configuration started listening"),
    }
}

/// What `listener` receives within a second: `Err` when nothing arrived.
async fn heard(
    listener: &mut PgListener,
) -> Result<Option<sqlx::postgres::PgNotification>, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(1), async {
        listener.try_recv().await.ok().flatten()
    })
    .await
}
