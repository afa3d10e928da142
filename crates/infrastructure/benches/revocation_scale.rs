//! The PostgreSQL revocation store at scale (issue 12), outside the test
//! suite because it writes millions of rows:
//!
//! - `memory`: 1M cached entries (`SCALE_ENTRIES`), half session logouts
//!   and half user force-logouts, all within one token lifetime: resident
//!   memory per cached entry (from `/proc/self/statm`, before and after the
//!   store starts), and `check` at that size over request streams whose
//!   sessions and users are drawn at random over the whole table (so that
//!   each query touches memory the CPU caches do not hold), against one
//!   raw read from main memory in the same run;
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
//! With no section named, all run. `SCALE_ROWS` changes the 10M of `start`,
//! `SCALE_ENTRIES` the 1M of `memory`.
//! Each section works in a schema of its own, dropped at its end.
//!
//! With `--features postgres,redis`, sections `redis-start`, `redis-catchup`
//! and `redis-propagation` measure the Redis store the same way (Redis at
//! `REDIS_URL`, default 127.0.0.1:6379; each under a key prefix of its own,
//! deleted at its end): a start with 1M old logouts and 50k recent ones
//! (older entries are no longer in the start-up index once purged, so the
//! index is what a start reads), a 30 s cut with 100k changes, and
//! propagation across 50 instances.
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

    /// A store started on a warmed-up pool: the store, how long `start`
    /// took, and how much resident memory grew meanwhile.
    fn measured_start(&self) -> (PostgresRevocationStore, Duration, u64) {
        let pool = self.pool(2);
        self.bench
            .rt
            .block_on(sqlx::query("SELECT 1").execute(&pool))
            .unwrap();
        let before = resident_bytes();
        let started = Instant::now();
        let store = self.start(pool, self.config());
        let took = started.elapsed();
        (store, took, resident_bytes().saturating_sub(before))
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
    #[cfg(feature = "redis")]
    redis_scale::run(&bench.rt, wants);
}

/// `SCALE_ENTRIES` (1M) cached entries, half session logouts and half user
/// force-logouts, all recent: bytes per cached entry, and `check` at that
/// size over a request stream.
fn memory(bench: &Bench) {
    let entries_wanted: u64 = std::env::var("SCALE_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let n = entries_wanted / 2;
    let schema = bench.schema("memory");
    let t = Instant::now();
    schema.sql(&format!(
        "INSERT INTO {{s}}.tessera_session_logouts (session_id, until, logged_out_at)
         SELECT {SESSION_SQL}, now() + interval '1 hour', now() - interval '1 minute'
         FROM generate_series(1, {n}) AS g;
         INSERT INTO {{s}}.tessera_watermarks (kind, scope, subject, at)
         SELECT 'force_logout', 'user', {USER_SQL}, date_trunc('second', now() - interval '1 minute')
         FROM generate_series(1, {n}) AS g;
         ANALYZE {{s}}.tessera_session_logouts; ANALYZE {{s}}.tessera_watermarks;"
    ));
    println!(
        "memory: {n} logouts + {n} watermarks written in {:.1?}",
        t.elapsed()
    );
    let (store, took, grown) = schema.measured_start();
    let entries = store.health().entries;
    assert_eq!(entries, usize::try_from(2 * n).unwrap());
    println!(
        "memory: start (load of {entries} entries) {took:.2?}; resident +{:.1} MiB = {:.1} bytes per cached entry (target <= 40)",
        mib(grown),
        grown as f64 / entries as f64,
    );

    // The same query again and again: what a per-request benchmark sees
    // (everything it touches stays in the CPU caches).
    let issued_at = OffsetDateTime::now_utc() - time::Duration::minutes(2);
    let (s, u) = (session(n + 7), user(n + 7));
    let same = RevocationQuery {
        session_id: &s,
        user_id: &u,
        tenant: None,
        issued_at,
    };
    assert_eq!(store.check(same).unwrap(), RevocationStatus::Active);
    const ROUNDS: u32 = 5_000_000;
    let t = on_cpu();
    for _ in 0..ROUNDS {
        black_box(store.check(black_box(same)).unwrap());
    }
    let hot = (on_cpu() - t) / ROUNDS;
    println!("memory: check at {entries} entries, the same query repeated: {hot:.0?}");

    // A request stream: each query a session and user drawn at random over
    // the whole table (and beyond it for live ones), so that each touches
    // memory no earlier query brought into the CPU caches. Tokens were
    // issued two minutes ago, before the force-logouts, so that a cached
    // user refuses them.
    let dram = memory_latency();
    println!(
        "memory: the machine's raw cost, one dependent read at a random place in 32 MiB (about the cache's size at 1M entries): {:.0} ns",
        dram
    );
    for (label, mix) in [
        (
            "stream: 90% live, 5% logged-out sessions, 5% force-logged-out users",
            Mix {
                logged_out: 5,
                forced: 5,
            },
        ),
        (
            "live sessions only (neither cached)",
            Mix {
                logged_out: 0,
                forced: 0,
            },
        ),
        (
            "logged-out sessions only",
            Mix {
                logged_out: 100,
                forced: 0,
            },
        ),
        (
            "force-logged-out users only",
            Mix {
                logged_out: 0,
                forced: 100,
            },
        ),
    ] {
        let (ns, revoked) = stream_check(&store, n, issued_at, mix);
        println!(
            "memory: check at {entries} entries, {label}: {ns:.0} ns ({:.2}x the raw read; {revoked:.1}% revoked) (target <= 150 ns)",
            ns / dram
        );
    }
    bench.rt.block_on(store.shutdown());
}

/// Which share of a stream's queries (in percent) carry a logged-out
/// session, and which a force-logged-out user; the rest are live.
#[derive(Clone, Copy)]
struct Mix {
    logged_out: u64,
    forced: u64,
}

/// xorshift64: the stream's ids, cheap enough not to hide what it measures.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The session and user of one query of `mix`, against `n` cached of each
/// (ids `1..=n`); live ones are drawn from the 100n after them.
fn query_ids(state: &mut u64, n: u64, mix: Mix) -> (SessionId, UserId) {
    let class = next(state) % 100;
    let cached = next(state) % n + 1;
    let live = n + 1 + next(state) % (100 * n);
    let other = n + 1 + next(state) % (100 * n);
    if class < mix.logged_out {
        (session(cached), user(live))
    } else if class < mix.logged_out + mix.forced {
        (session(live), user(cached))
    } else {
        (session(live), user(other))
    }
}

/// How long this thread has run on a CPU, in ns (`/proc/thread-self/schedstat`):
/// unlike the wall clock, it does not count the time other processes had
/// the CPU, so that a busy machine does not inflate the figures.
fn on_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(stat.split_whitespace().next().unwrap().parse().unwrap())
}

/// `check` over 2M queries of `mix`, less the same loop making the ids and
/// queries only (the raw work, measured in the same run): ns of CPU per
/// check (the best of three rounds), and the share revoked.
fn stream_check(
    store: &PostgresRevocationStore,
    n: u64,
    issued_at: OffsetDateTime,
    mix: Mix,
) -> (f64, f64) {
    const QUERIES: u32 = 2_000_000;
    let mut best = f64::MAX;
    let mut revoked = 0_u32;
    for round in 0..3_u64 {
        let seed = 0x9E37_79B9_7F4A_7C15 ^ round;
        let mut state = seed;
        let t = on_cpu();
        for _ in 0..QUERIES {
            let (s, u) = query_ids(&mut state, n, mix);
            black_box(RevocationQuery {
                session_id: black_box(&s),
                user_id: black_box(&u),
                tenant: None,
                issued_at,
            });
        }
        let raw = on_cpu() - t;
        let mut state = seed;
        revoked = 0;
        let t = on_cpu();
        for _ in 0..QUERIES {
            let (s, u) = query_ids(&mut state, n, mix);
            let q = RevocationQuery {
                session_id: &s,
                user_id: &u,
                tenant: None,
                issued_at,
            };
            revoked += u32::from(store.check(black_box(q)).unwrap() != RevocationStatus::Active);
        }
        let with_check = on_cpu() - t;
        let ns = with_check.saturating_sub(raw).as_nanos() as f64 / f64::from(QUERIES);
        best = best.min(ns);
    }
    (best, f64::from(revoked) * 100.0 / f64::from(QUERIES))
}

/// One read from main memory, as this machine serves it now: a chain of
/// dependent reads at random places in 32 MiB, ns of CPU per read.
fn memory_latency() -> f64 {
    const LINES: usize = (32 << 20) / 64;
    // A random cycle through the lines (Sattolo), 8 words (64 bytes) apart.
    let mut order: Vec<usize> = (0..LINES).collect();
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for i in (1..LINES).rev() {
        let j = usize::try_from(next(&mut state)).unwrap() % i;
        order.swap(i, j);
    }
    let mut chain = vec![0_usize; LINES * 8];
    for pair in order.windows(2) {
        chain[pair[0] * 8] = pair[1] * 8;
    }
    chain[order[LINES - 1] * 8] = order[0] * 8;
    const READS: u32 = 2_000_000;
    let mut at = 0;
    let t = on_cpu();
    for _ in 0..READS {
        at = chain[at];
    }
    black_box(at);
    (on_cpu() - t).as_nanos() as f64 / f64::from(READS)
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
    let (store, took, grown) = schema.measured_start();
    assert!(store.is_trusted());
    let entries = store.health().entries;
    assert_eq!(entries, usize::try_from(RECENT).unwrap());
    println!(
        "start: {rows} rows in the table: trusted after {took:.2?} (target < 1 s) holding {entries} entries; resident +{:.1} MiB ({:.1} bytes per entry)",
        mib(grown),
        grown as f64 / entries as f64,
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
    let (trusted_while_cut, took) = cut_for_30_s(
        cut_at,
        || reader.is_trusted(),
        || proxy.restore(),
        || reader.health().applied_seq >= end && reader.is_trusted(),
    );
    let lost = lost(&reader, CHANGES);
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
    let refs: Vec<&dyn RevocationStore> = readers.iter().map(|r| r as _).collect();
    let samples = propagation_samples(&bench.rt, writer.clone(), &refs, WRITES);
    report(
        &format!("propagation ({label}, {INSTANCES} instances, {WRITES} writes"),
        samples,
    );
    bench.rt.block_on(async {
        for r in &readers {
            r.shutdown().await;
        }
        writer.shutdown().await;
    });
}

/// From a force-logout written through `writer` until each of `readers`
/// refuses the session, `writes` times: one sample per reader and write.
fn propagation_samples(
    rt: &tokio::runtime::Runtime,
    writer: Arc<dyn RevocationStore>,
    readers: &[&dyn RevocationStore],
    writes: u64,
) -> Vec<Duration> {
    let mut samples = Vec::new();
    let s = session(0);
    rt.block_on(async {
        for n in 1..=writes {
            let u = user(n);
            let now = OffsetDateTime::now_utc();
            let query = RevocationQuery {
                session_id: &s,
                user_id: &u,
                tenant: None,
                issued_at: now,
            };
            let mut seen = vec![None; readers.len()];
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
    samples
}

/// Prints percentiles of `samples` after `label`.
fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "{label}, {} samples): median {:.1?}, p90 {:.1?}, p99 {:.1?}, max {:.1?}; none lost",
        samples.len(),
        at(50),
        at(90),
        at(99),
        samples[samples.len() - 1],
    );
}

/// How many of sessions `1..=changes` `reader` does not hold logged out.
fn lost(reader: &dyn RevocationStore, changes: u64) -> usize {
    let now = OffsetDateTime::now_utc();
    let u = user(1);
    (1..=changes)
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
        .count()
}

/// Sleeps out the rest of a 30 s cut begun at `cut_at`, runs `restore`, and
/// waits until `caught_up`; returns whether `trusted` held at the end of the
/// cut, and how long the catch-up took from the restore.
fn cut_for_30_s(
    cut_at: Instant,
    trusted: impl Fn() -> bool,
    restore: impl FnOnce(),
    caught_up: impl Fn() -> bool,
) -> (bool, Duration) {
    std::thread::sleep(Duration::from_secs(30).saturating_sub(cut_at.elapsed()));
    let trusted_while_cut = trusted();
    let restored = Instant::now();
    restore();
    while !caught_up() {
        assert!(restored.elapsed() < Duration::from_secs(60), "no catch-up");
        std::thread::sleep(Duration::from_millis(1));
    }
    (trusted_while_cut, restored.elapsed())
}

/// The Redis store, measured like the PostgreSQL one.
#[cfg(feature = "redis")]
mod redis_scale {
    use super::*;
    use tessera_infrastructure::redis::{RedisRevocationConfig, RedisRevocationStore};

    struct Space {
        client: ::redis::Client,
        prefix: String,
    }

    impl Space {
        fn new(rt: &tokio::runtime::Runtime, section: &str) -> Self {
            let url =
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
            let client = ::redis::Client::open(url).unwrap();
            let space = Self {
                client,
                prefix: format!("tessera_scale:{section}:{}", std::process::id()),
            };
            space.clear(rt);
            space
        }

        fn config(&self) -> RedisRevocationConfig {
            RedisRevocationConfig::new(SessionLifetimes::default()).with_prefix(&self.prefix)
        }

        fn start(
            &self,
            rt: &tokio::runtime::Runtime,
            client: ::redis::Client,
        ) -> RedisRevocationStore {
            rt.block_on(RedisRevocationStore::start(
                client,
                Arc::new(SystemClock),
                self.config(),
            ))
            .unwrap()
        }

        fn clear(&self, rt: &tokio::runtime::Runtime) {
            rt.block_on(async {
                let mut conn = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let mut cursor = 0_u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{}:*", self.prefix))
                        .arg("COUNT")
                        .arg(10_000)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    if !keys.is_empty() {
                        let _: () = ::redis::cmd("UNLINK")
                            .arg(keys)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            });
        }
    }

    pub(super) fn run(rt: &tokio::runtime::Runtime, named: impl Fn(&str) -> bool) {
        if named("redis-start") {
            start(rt);
        }
        if named("redis-catchup") {
            catch_up(rt);
        }
        if named("redis-propagation") {
            propagation(rt);
        }
    }

    fn start(rt: &tokio::runtime::Runtime) {
        const OLD: u64 = 1_000_000;
        const RECENT: u64 = 50_000;
        let space = Space::new(rt, "start");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let t = Instant::now();
        rt.block_on(async {
            let mut conn = space
                .client
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            for chunk in (1..=OLD + RECENT).collect::<Vec<_>>().chunks(10_000) {
                let mut pipe = ::redis::pipe();
                for n in chunk {
                    let at = if *n <= RECENT { now - 60 } else { now - 7_200 };
                    pipe.cmd("ZADD")
                        .arg(format!("{}:logouts", space.prefix))
                        .arg(at)
                        .arg(format!("{} {}", session(*n), now + 36_000))
                        .ignore();
                }
                let _: () = pipe.query_async(&mut conn).await.unwrap();
            }
        });
        println!(
            "redis-start: {OLD} old + {RECENT} recent logouts indexed in {:.1?}",
            t.elapsed()
        );
        let before = resident_bytes();
        let started = Instant::now();
        let store = space.start(rt, space.client.clone());
        let took = started.elapsed();
        let after = resident_bytes();
        let entries = store.health().entries;
        assert_eq!(entries, usize::try_from(RECENT).unwrap());
        println!(
            "redis-start: trusted after {took:.2?} (target < 1 s) holding {entries} entries; resident +{:.1} MiB",
            mib(after.saturating_sub(before)),
        );
        rt.block_on(store.shutdown());
        space.clear(rt);
    }

    fn catch_up(rt: &tokio::runtime::Runtime) {
        const CHANGES: u64 = 100_000;
        let space = Space::new(rt, "catchup");
        let writer = Arc::new(space.start(rt, space.client.clone()));
        let target = {
            let info = space.client.get_connection_info();
            match info.addr() {
                ::redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
                _ => "127.0.0.1:6379".to_owned(),
            }
        };
        let proxy = rt.block_on(proxy::Proxy::to(target));
        let reader = space.start(
            rt,
            ::redis::Client::open(format!("redis://{}", proxy.addr())).unwrap(),
        );
        let reloads = reader.health().full_reloads;
        let cut_at = Instant::now();
        proxy.cut();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for w in 0..32_u64 {
                let writer = writer.clone();
                tasks.push(tokio::spawn(async move {
                    let mut n = w + 1;
                    while n <= CHANGES {
                        writer
                            .revoke_session(
                                session(n),
                                OffsetDateTime::now_utc() + time::Duration::HOUR,
                            )
                            .await
                            .unwrap();
                        n += 32;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let written = cut_at.elapsed();
        let end = writer.health().applied_seq;
        let (trusted_while_cut, took) = cut_for_30_s(
            cut_at,
            || reader.is_trusted(),
            || proxy.restore(),
            || reader.health().applied_seq >= end && reader.is_trusted(),
        );
        let lost = lost(&reader, CHANGES);
        println!(
            "redis-catchup: cut off 30 s ({CHANGES} changes written meanwhile, in {written:.1?}; trusted at the end of the cut: {trusted_while_cut}); \
             caught up {took:.2?} after reconnection; full reloads during catch-up: {}; lost: {lost}",
            reader.health().full_reloads - reloads
        );
        rt.block_on(async {
            reader.shutdown().await;
            writer.shutdown().await;
        });
        space.clear(rt);
    }

    fn propagation(rt: &tokio::runtime::Runtime) {
        const INSTANCES: usize = 50;
        const WRITES: u64 = 100;
        let space = Space::new(rt, "propagation");
        let writer = Arc::new(space.start(rt, space.client.clone()));
        let readers: Vec<RedisRevocationStore> = (0..INSTANCES)
            .map(|_| space.start(rt, space.client.clone()))
            .collect();
        let refs: Vec<&dyn RevocationStore> = readers.iter().map(|r| r as _).collect();
        let samples = propagation_samples(rt, writer.clone(), &refs, WRITES);
        report(
            &format!("redis-propagation ({INSTANCES} instances, {WRITES} writes"),
            samples,
        );
        rt.block_on(async {
            for r in &readers {
                r.shutdown().await;
            }
            writer.shutdown().await;
        });
        space.clear(rt);
    }
}
