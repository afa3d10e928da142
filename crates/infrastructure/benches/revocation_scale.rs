//! The PostgreSQL revocation store at scale (issue 12), outside the test
//! suite because it writes millions of rows:
//!
//! - `memory`: 1M session logouts and 1M user force-logouts, all within one
//!   token lifetime: resident memory per cached entry (from
//!   `/proc/self/statm`, before and after the store starts) and the time of
//!   `check` at that size;
//! - `start`: a table of 10M logouts of which 50k fall within one token
//!   lifetime: time from `start` until the cache is trusted, and resident
//!   memory;
//! - `catchup`: an instance cut off from the database for 30 s while 100k
//!   changes are written: time from reconnection until it has applied them
//!   all (by reading the log, no reload), and that none is lost;
//! - `propagation`: 50 instances in this process, listening, then polling
//!   (250 ms): from a force-logout written through one instance until each
//!   of the 50 refuses the session, percentiles over 100 writes.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p tessera-infrastructure --features postgres --bench revocation_scale \
//!   [-- memory start catchup propagation]
//! ```
//!
//! With no section named, all run. `SCALE_ROWS` changes the 10M of `start`.
//! Each section works in a schema of its own, dropped at its end.
#![allow(missing_docs)] // a bench binary
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a bench that cannot set up should stop loudly

#[path = "../tests/common/proxy.rs"]
#[allow(dead_code, unreachable_pub)]
mod proxy;

use std::hint::black_box;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tessera_application::ports::{
    Clock, RevocationQuery, RevocationStatus, RevocationStore, WatermarkKind, WatermarkScope,
};
use tessera_domain::{SessionId, SessionLifetimes, UserId};
use tessera_infrastructure::SystemClock;
use tessera_infrastructure::postgres::{
    PostgresRevocationConfig, PostgresRevocationStore, SyncMode, migrate,
};
use time::OffsetDateTime;

/// Session ids `...-8000-<n>`, user ids `...-9000-<n>` (hex `n`).
fn session(n: u64) -> SessionId {
    SessionId::from_uuid(uuid::Uuid::from_u128(
        0x0190_b5a4_0000_7000_8000_0000_0000_0000 + u128::from(n),
    ))
    .unwrap()
}

fn user(n: u64) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(
        0x0190_b5a4_0000_7000_9000_0000_0000_0000 + u128::from(n),
    ))
    .unwrap()
}

/// The SQL spelling of [`session`] and [`user`] for `generate_series` `g`.
const SESSION_SQL: &str = "('0190b5a4-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid";
const USER_SQL: &str = "('0190b5a4-0000-7000-9000-' || lpad(to_hex(g), 12, '0'))";

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

struct Bench {
    rt: tokio::runtime::Runtime,
    options: PgConnectOptions,
    admin: PgPool,
}

struct Schema<'a> {
    bench: &'a Bench,
    name: String,
}

impl Bench {
    fn schema(&self, section: &str) -> Schema<'_> {
        let name = format!("tessera_scale_{section}_{}", std::process::id());
        self.rt
            .block_on(
                sqlx::raw_sql(&format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
                ))
                .execute(&self.admin),
            )
            .unwrap();
        let schema = Schema { bench: self, name };
        self.rt.block_on(migrate(&schema.pool(2))).unwrap();
        schema
    }
}

impl Schema<'_> {
    fn options(&self) -> PgConnectOptions {
        self.bench
            .options
            .clone()
            .options([("search_path", self.name.as_str())])
    }

    fn pool(&self, size: u32) -> PgPool {
        let _guard = self.bench.rt.enter();
        PgPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(self.options())
    }

    fn config(&self) -> PostgresRevocationConfig {
        PostgresRevocationConfig::new(SessionLifetimes::default()).with_channel(&self.name)
    }

    fn sql(&self, sql: &str) {
        let sql = sql.replace("{s}", &self.name);
        self.bench
            .rt
            .block_on(sqlx::raw_sql(&sql).execute(&self.bench.admin))
            .unwrap();
    }

    fn start(&self, pool: PgPool, config: PostgresRevocationConfig) -> PostgresRevocationStore {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        self.bench
            .rt
            .block_on(PostgresRevocationStore::start(pool, clock, config))
            .unwrap()
    }
}

impl Drop for Schema<'_> {
    fn drop(&mut self) {
        let _ = self.bench.rt.block_on(
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .execute(&self.bench.admin),
        );
    }
}

fn main() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("revocation_scale bench skipped: DATABASE_URL is not set (see scripts/test.sh)");
        return;
    };
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |s: &str| sections.is_empty() || sections.iter().any(|a| a == s);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let options = PgConnectOptions::from_str(&url).unwrap();
    let admin = rt
        .block_on(
            PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.clone()),
        )
        .unwrap();
    let bench = Bench { rt, options, admin };
    if wants("memory") {
        memory(&bench);
    }
    if wants("start") {
        start(&bench);
    }
    if wants("catchup") {
        catch_up(&bench);
    }
    if wants("propagation") {
        propagation(&bench, SyncMode::Listen);
        propagation(&bench, SyncMode::poll());
    }
}

/// 1M logouts and 1M user force-logouts, all recent: bytes per cached entry
/// and `check` at that size.
fn memory(bench: &Bench) {
    const N: u64 = 1_000_000;
    let schema = bench.schema("memory");
    let t = Instant::now();
    schema.sql(&format!(
        "INSERT INTO {{s}}.tessera_session_logouts (session_id, until, logged_out_at)
         SELECT {SESSION_SQL}, now() + interval '1 hour', now() - interval '1 minute'
         FROM generate_series(1, {N}) AS g;
         INSERT INTO {{s}}.tessera_watermarks (kind, scope, subject, at)
         SELECT 'force_logout', 'user', {USER_SQL}, date_trunc('second', now() - interval '1 minute')
         FROM generate_series(1, {N}) AS g;
         ANALYZE {{s}}.tessera_session_logouts; ANALYZE {{s}}.tessera_watermarks;"
    ));
    println!(
        "memory: {N} logouts + {N} watermarks written in {:.1?}",
        t.elapsed()
    );
    let pool = schema.pool(2);
    bench
        .rt
        .block_on(sqlx::query("SELECT 1").execute(&pool))
        .unwrap();
    let before = resident_bytes();
    let started = Instant::now();
    let store = schema.start(pool, schema.config());
    let took = started.elapsed();
    let after = resident_bytes();
    let entries = store.health().entries;
    assert_eq!(entries, usize::try_from(2 * N).unwrap());
    println!(
        "memory: start (load of {entries} entries) {took:.2?}; resident +{:.1} MiB = {:.1} bytes per cached entry (target <= 40)",
        mib(after.saturating_sub(before)),
        after.saturating_sub(before) as f64 / entries as f64,
    );

    // `check` at that size: the same query again and again (what a
    // per-request benchmark sees), then a different session and user each
    // time (half of them logged out), which misses the CPU caches.
    let now = OffsetDateTime::now_utc();
    let tenant = None;
    let (s, u) = (session(N + 7), user(N + 7));
    let same = RevocationQuery {
        session_id: &s,
        user_id: &u,
        tenant,
        issued_at: now,
    };
    assert_eq!(store.check(same).unwrap(), RevocationStatus::Active);
    const ROUNDS: u32 = 5_000_000;
    let t = Instant::now();
    for _ in 0..ROUNDS {
        black_box(store.check(black_box(same)).unwrap());
    }
    let hot = t.elapsed() / ROUNDS;
    let ids: Vec<(SessionId, UserId)> = (0..1_000_000_u64)
        .map(|i| {
            let n = i.wrapping_mul(2_654_435_761) % (2 * N) + 1;
            (session(n), user(n))
        })
        .collect();
    let t = Instant::now();
    let mut revoked = 0_u32;
    for _ in 0..2 {
        for (s, u) in &ids {
            let q = RevocationQuery {
                session_id: s,
                user_id: u,
                tenant,
                issued_at: now,
            };
            revoked += u32::from(store.check(black_box(q)).unwrap() != RevocationStatus::Active);
        }
    }
    let cold = t.elapsed() / (2 * u32::try_from(ids.len()).unwrap());
    println!(
        "memory: check at {entries} entries: {hot:.0?} the same query, {cold:.0?} a different one each time ({revoked} of {} revoked) (target <= 150 ns)",
        2 * ids.len()
    );
    bench.rt.block_on(store.shutdown());
}

/// `SCALE_ROWS` (10M) logouts, 50k of them within one token lifetime: time
/// until trusted, and resident memory.
fn start(bench: &Bench) {
    let rows: u64 = std::env::var("SCALE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    const RECENT: u64 = 50_000;
    let schema = bench.schema("start");
    let t = Instant::now();
    // Old logouts: written two hours ago, still within their sessions'
    // absolute lifetime (so no purge removes them); recent ones: a minute ago.
    schema.sql(&format!(
        "INSERT INTO {{s}}.tessera_session_logouts (session_id, until, logged_out_at)
         SELECT {SESSION_SQL}, now() + interval '10 hours',
                CASE WHEN g <= {RECENT} THEN now() - interval '1 minute'
                     ELSE now() - interval '2 hours' END
         FROM generate_series(1, {rows}) AS g;
         ANALYZE {{s}}.tessera_session_logouts;"
    ));
    println!(
        "start: {rows} logouts ({RECENT} recent) written in {:.1?}",
        t.elapsed()
    );
    let pool = schema.pool(2);
    bench
        .rt
        .block_on(sqlx::query("SELECT 1").execute(&pool))
        .unwrap();
    let before = resident_bytes();
    let started = Instant::now();
    let store = schema.start(pool, schema.config());
    let took = started.elapsed();
    assert!(store.is_trusted());
    let after = resident_bytes();
    let entries = store.health().entries;
    assert_eq!(entries, usize::try_from(RECENT).unwrap());
    println!(
        "start: {rows} rows in the table: trusted after {took:.2?} (target < 1 s) holding {entries} entries; resident +{:.1} MiB ({:.1} bytes per entry)",
        mib(after.saturating_sub(before)),
        after.saturating_sub(before) as f64 / entries as f64,
    );
    bench.rt.block_on(store.shutdown());
}

/// An instance cut off for 30 s while 100k changes are written.
fn catch_up(bench: &Bench) {
    const CHANGES: u64 = 100_000;
    let schema = bench.schema("catchup");
    let writer = schema.start(schema.pool(2), schema.config());
    let proxy = bench.rt.block_on(proxy::Proxy::start(&schema.options()));
    let reader_pool = {
        let _guard = bench.rt.enter();
        PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(proxy.route(schema.options()))
    };
    let reader = schema.start(reader_pool, schema.config());
    let reloads = reader.health().full_reloads;

    let cut_at = Instant::now();
    proxy.cut();
    // 100k logouts and their log rows, as 100k writes would leave them (one
    // statement, so that writing them does not take the whole 30 s).
    schema.sql(&format!(
        "WITH s AS (
            INSERT INTO {{s}}.tessera_session_logouts (session_id, until, logged_out_at)
            SELECT {SESSION_SQL}, now() + interval '1 hour', now()
            FROM generate_series(1, {CHANGES}) AS g RETURNING session_id, until, logged_out_at
         ) INSERT INTO {{s}}.tessera_revocation_log (change, session_id, until, at)
           SELECT 'logout', session_id, until, logged_out_at FROM s ORDER BY session_id"
    ));
    let end: i64 = bench
        .rt
        .block_on(
            sqlx::query_scalar(&format!(
                "SELECT max(seq) FROM {}.tessera_revocation_log",
                schema.name
            ))
            .fetch_one(&bench.admin),
        )
        .unwrap();
    let written = cut_at.elapsed();
    std::thread::sleep(Duration::from_secs(30).saturating_sub(written));
    let trusted_while_cut = reader.is_trusted();
    let restored = Instant::now();
    proxy.restore();
    while !(reader.health().applied_seq >= end && reader.is_trusted()) {
        assert!(restored.elapsed() < Duration::from_secs(60), "no catch-up");
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = restored.elapsed();
    let now = OffsetDateTime::now_utc();
    let u = user(1);
    let lost = (1..=CHANGES)
        .filter(|n| {
            let s = session(*n);
            let q = RevocationQuery {
                session_id: &s,
                user_id: &u,
                tenant: None,
                issued_at: now,
            };
            reader.check(q).unwrap() == RevocationStatus::Active
        })
        .count();
    println!(
        "catchup: cut off 30 s ({CHANGES} changes written meanwhile, in {written:.1?}; trusted at the end of the cut: {trusted_while_cut}); \
         caught up {took:.2?} after reconnection; full reloads during catch-up: {}; lost: {lost}",
        reader.health().full_reloads - reloads
    );
    bench.rt.block_on(async {
        reader.shutdown().await;
        writer.shutdown().await;
    });
}

/// 50 instances; percentiles from a write through the writer until each
/// instance refuses the session.
fn propagation(bench: &Bench, mode: SyncMode) {
    const INSTANCES: usize = 50;
    const WRITES: u64 = 100;
    let label = match mode {
        SyncMode::Listen => "listen",
        _ => "poll-250ms",
    };
    let schema = bench.schema("propagation");
    let config = schema.config().with_sync_mode(mode);
    let writer = Arc::new(schema.start(schema.pool(2), config.clone()));
    // The readers share one pool (each listens on its own connection):
    // 50 pools would pass PostgreSQL's default 100 connections.
    let shared = schema.pool(8);
    let readers: Vec<PostgresRevocationStore> = (0..INSTANCES)
        .map(|_| schema.start(shared.clone(), config.clone()))
        .collect();
    let mut samples = Vec::with_capacity(INSTANCES * usize::try_from(WRITES).unwrap());
    let s = session(0);
    bench.rt.block_on(async {
        for n in 1..=WRITES {
            let u = user(n);
            let now = OffsetDateTime::now_utc();
            let query = RevocationQuery {
                session_id: &s,
                user_id: &u,
                tenant: None,
                issued_at: now,
            };
            let mut seen = vec![None; INSTANCES];
            let started = Instant::now();
            let write = tokio::spawn({
                let writer = writer.clone();
                async move {
                    writer
                        .set_watermark(WatermarkScope::User(u), WatermarkKind::ForceLogout, now)
                        .await
                        .unwrap();
                }
            });
            while seen.iter().any(Option::is_none) {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "write {n} lost"
                );
                for (i, reader) in readers.iter().enumerate() {
                    if seen[i].is_none() && reader.check(query).unwrap() != RevocationStatus::Active
                    {
                        seen[i] = Some(started.elapsed());
                    }
                }
                tokio::task::yield_now().await;
            }
            samples.extend(seen.into_iter().flatten());
            write.await.unwrap();
            // Writes spread over the poll interval, not in step with it.
            tokio::time::sleep(Duration::from_millis(37)).await;
        }
    });
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "propagation ({label}, {INSTANCES} instances, {WRITES} writes, {} samples): median {:.1?}, p90 {:.1?}, p99 {:.1?}, max {:.1?}; none lost",
        samples.len(),
        at(50),
        at(90),
        at(99),
        samples[samples.len() - 1],
    );
    bench.rt.block_on(async {
        for r in &readers {
            r.shutdown().await;
        }
        writer.shutdown().await;
    });
}
