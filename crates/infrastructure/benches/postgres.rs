//! The PostgreSQL revocation store against the in-memory one, in one run:
//!
//! - `verify/*`: VerifySession (HS256, the cheapest signature, so that the
//!   store's share shows most) with each store holding the same 1,000
//!   force-logouts; budget: the PostgreSQL-backed cache within 1.1x;
//! - `check/*`: the store's `check` alone;
//! - propagation: from a force-logout written through one instance to the
//!   other instance refusing the token, over 250 writes, printed as
//!   percentiles (target: p99 under 50 ms on loopback).
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p tessera-infrastructure --features postgres --bench postgres
//! ```
//!
//! Without `DATABASE_URL`, or with one that does not answer, it says so and
//! measures nothing. It works in a schema of its own, dropped at the end.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a bench that cannot set up should stop loudly

use std::hint::black_box;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tessera_application::ports::{
    Clock, RevocationQuery, RevocationStatus, RevocationStore, WatermarkKind, WatermarkScope,
};
use tessera_application::{EstablishRequest, EstablishSession, VerifySession};
use tessera_domain::{Capability, SessionId, SessionLifetimes, TenantId, UserId, UserRole};
use tessera_infrastructure::postgres::{
    PostgresRevocationConfig, PostgresRevocationStore, migrate,
};
use tessera_infrastructure::{
    InMemoryRevocationStore, JwtSessionCodec, KeyRing, SigningKey, SystemClock, UuidV7SessionIds,
};
use time::OffsetDateTime;

const OTHER_USERS: u128 = 1_000;
const PROPAGATION_WRITES: usize = 250;

fn user(n: u128) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(
        0x0190_b5a4_7c2e_7d3a_9f00_0000_0000_0000 + n,
    ))
    .unwrap()
}

fn verifier(
    codec: &Arc<JwtSessionCodec>,
    store: Arc<dyn RevocationStore>,
) -> VerifySession<UserRole> {
    VerifySession::new(
        codec.clone(),
        Arc::new(SystemClock),
        store,
        SessionLifetimes::default(),
    )
}

fn main() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("postgres bench skipped: DATABASE_URL is not set (see scripts/test.sh)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let options = PgConnectOptions::from_str(&url).unwrap();
    let admin = match rt.block_on(
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone()),
    ) {
        Ok(pool) => pool,
        Err(e) => {
            println!("postgres bench skipped: no PostgreSQL at {url} ({e})");
            return;
        }
    };
    let schema = format!("tessera_bench_{}", std::process::id());
    rt.block_on(
        sqlx::raw_sql(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .execute(&admin),
    )
    .unwrap();
    let instance_options = options.options([("search_path", schema.as_str())]);
    let pool = || {
        rt.block_on(
            PgPoolOptions::new()
                .max_connections(4)
                .connect_with(instance_options.clone()),
        )
        .unwrap()
    };
    let (pool_a, pool_b) = (pool(), pool());
    rt.block_on(migrate(&pool_a)).unwrap();
    let config = PostgresRevocationConfig::new(SessionLifetimes::default()).with_channel(&schema);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let a = Arc::new(
        rt.block_on(PostgresRevocationStore::start(
            pool_a,
            clock.clone(),
            config.clone(),
        ))
        .unwrap(),
    );
    let b = Arc::new(
        rt.block_on(PostgresRevocationStore::start(
            pool_b,
            clock.clone(),
            config,
        ))
        .unwrap(),
    );
    let memory = Arc::new(InMemoryRevocationStore::new(
        clock.clone(),
        SessionLifetimes::default(),
    ));

    // The same 1,000 force-logouts of other users in both stores.
    let now = OffsetDateTime::now_utc();
    rt.block_on(async {
        for n in 0..OTHER_USERS {
            let scope = WatermarkScope::User(user(10_000 + n));
            a.set_watermark(scope.clone(), WatermarkKind::ForceLogout, now)
                .await
                .unwrap();
            memory
                .set_watermark(scope, WatermarkKind::ForceLogout, now)
                .await
                .unwrap();
        }
    });
    let expected = usize::try_from(OTHER_USERS).unwrap();
    while b.health().entries < expected {
        std::thread::sleep(Duration::from_millis(10));
    }

    // One token, issued after those watermarks.
    std::thread::sleep(Duration::from_millis(1_100));
    let codec = Arc::new(JwtSessionCodec::new(
        KeyRing::new(SigningKey::hmac_sha256("bench", &[0x5a; 32]).unwrap()),
        "https://api.example",
        "web",
    ));
    let token = EstablishSession::new(
        codec.clone(),
        clock.clone(),
        Arc::new(UuidV7SessionIds),
        SessionLifetimes::default(),
    )
    .execute(EstablishRequest {
        user_id: user(1),
        role: UserRole::Moderator,
        capabilities: [Capability::parse("posts:write").unwrap()].into(),
        tenant: Some(TenantId::parse("acme").unwrap()),
        authenticated_at: None,
        authentication: Default::default(),
    })
    .unwrap()
    .token
    .expose_secret()
    .to_owned();

    let mut c = Criterion::default().configure_from_args();
    {
        let with_memory = verifier(&codec, memory.clone());
        let with_postgres = verifier(&codec, b.clone());
        assert!(with_memory.execute(&token).is_ok() && with_postgres.execute(&token).is_ok());
        let mut g = c.benchmark_group("verify");
        g.bench_function("in_memory_store", |bench| {
            bench.iter(|| with_memory.execute(black_box(&token)).unwrap());
        });
        g.bench_function("postgres_cache", |bench| {
            bench.iter(|| with_postgres.execute(black_box(&token)).unwrap());
        });
        g.finish();
    }
    {
        let session = SessionId::from_uuid(uuid::Uuid::now_v7()).unwrap();
        let subject = user(1);
        let tenant = TenantId::parse("acme").unwrap();
        let query = || RevocationQuery {
            session_id: &session,
            user_id: &subject,
            tenant: Some(&tenant),
            issued_at: OffsetDateTime::now_utc(),
        };
        let mut g = c.benchmark_group("check");
        g.bench_function("in_memory_store", |bench| {
            bench.iter(|| memory.check(black_box(query())).unwrap());
        });
        g.bench_function("postgres_cache", |bench| {
            bench.iter(|| b.check(black_box(query())).unwrap());
        });
        g.finish();
    }
    c.final_summary();

    propagation(&rt, &a, &b);

    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
        sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
    });
}

/// From a force-logout written through `a` to `b` refusing the session,
/// measured by polling `b`'s cache (no sleep) while the write is in flight.
fn propagation(
    rt: &tokio::runtime::Runtime,
    a: &Arc<PostgresRevocationStore>,
    b: &Arc<PostgresRevocationStore>,
) {
    let session = SessionId::from_uuid(uuid::Uuid::now_v7()).unwrap();
    let mut samples = Vec::with_capacity(PROPAGATION_WRITES);
    rt.block_on(async {
        for n in 0..PROPAGATION_WRITES {
            let subject = user(100_000 + u128::try_from(n).unwrap());
            let query = RevocationQuery {
                session_id: &session,
                user_id: &subject,
                tenant: None,
                issued_at: OffsetDateTime::now_utc(),
            };
            let a = a.clone();
            let started = Instant::now();
            let write = tokio::spawn(async move {
                a.set_watermark(
                    WatermarkScope::User(subject),
                    WatermarkKind::ForceLogout,
                    OffsetDateTime::now_utc(),
                )
                .await
                .unwrap();
            });
            while b.check(query).unwrap() == RevocationStatus::Active {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "write {n} never arrived"
                );
                tokio::task::yield_now().await;
            }
            samples.push(started.elapsed());
            write.await.unwrap();
        }
    });
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "propagation write(a) -> refused(b) over {} writes: median {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?} (target p99 < 50 ms)",
        samples.len(),
        at(50),
        at(90),
        at(99),
        samples[samples.len() - 1],
    );
}
