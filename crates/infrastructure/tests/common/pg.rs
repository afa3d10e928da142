//! A throwaway schema (and notification channel) per test, in the database
//! `DATABASE_URL` names, so that tests run in parallel without seeing each
//! other's rows or notifications.
//!
//! Without `DATABASE_URL`, or with one that does not answer, a test prints
//! a "skipped" line and passes, unless `TESSERA_REQUIRE_DB=1` (set by
//! `scripts/test.sh`), which makes it fail instead.

use std::io::Write as _;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tessera_application::ports::Clock;
use tessera_infrastructure::postgres::{
    PostgresRevocationConfig, PostgresRevocationStore, SyncMode, migrate,
};

use super::lifetimes;

const HOW_TO: &str = "start one with `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust \
     postgres:16` and set DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres, \
     or run scripts/test.sh, which provides one";

/// One test's schema.
pub(crate) struct TestDb {
    options: PgConnectOptions,
    schema: String,
    admin: PgPool,
}

fn skip(test: &str, why: &str) -> Option<TestDb> {
    assert!(
        std::env::var("TESSERA_REQUIRE_DB").as_deref() != Ok("1"),
        "{test}: {why}, and TESSERA_REQUIRE_DB=1"
    );
    // Straight to stderr, past the test harness's capture, so that a plain
    // `cargo test` shows what it skipped.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: no PostgreSQL ({why}); {HOW_TO}"
    );
    None
}

/// A fresh, migrated schema for `test`, or `None` (after saying so) when
/// there is no database to test against.
pub(crate) async fn database(test: &str) -> Option<TestDb> {
    let db = empty_database(test).await?;
    migrate(&db.pool().await).await.unwrap();
    Some(db)
}

/// A fresh schema for `test` with no tables at all (to migrate by hand),
/// or `None` (after saying so) when there is no database to test against.
pub(crate) async fn empty_database(test: &str) -> Option<TestDb> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return skip(test, "DATABASE_URL is not set");
    };
    let Ok(options) = PgConnectOptions::from_str(&url) else {
        return skip(test, "DATABASE_URL is not a PostgreSQL URL");
    };
    let admin = match PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await
    {
        Ok(pool) => pool,
        Err(e) => {
            return skip(
                test,
                &format!(
                    "nothing answers at {}:{} ({e})",
                    options.get_host(),
                    options.get_port()
                ),
            );
        }
    };
    let schema = format!(
        "tessera_test_{}_{:08x}",
        test.chars().take(20).collect::<String>(),
        uuid::Uuid::now_v7().as_u128() as u32
    );
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    Some(TestDb {
        options,
        schema,
        admin,
    })
}

impl TestDb {
    /// The schema, also used as the notification channel.
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// Connection options that put this test's schema first on the
    /// `search_path`.
    /// Connections are named after the schema, so that the clean-up can end
    /// any a test left behind.
    pub(crate) fn options(&self) -> PgConnectOptions {
        self.options
            .clone()
            .application_name(&self.schema)
            .options([("search_path", self.schema.as_str())])
    }

    /// A new pool on this test's schema: one per simulated instance.
    pub(crate) async fn pool(&self) -> PgPool {
        self.pool_with(self.options()).await
    }

    /// A new pool with these options (through a proxy, say).
    pub(crate) async fn pool_with(&self, options: PgConnectOptions) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await
            .unwrap()
    }

    /// A pool on the database itself, outside this test's schema.
    pub(crate) fn admin(&self) -> &PgPool {
        &self.admin
    }

    /// The store configuration tests start from: this test's channel, a
    /// 2-second staleness bound, fast heartbeats and reconnections.
    pub(crate) fn config(&self, application_name: &str) -> PostgresRevocationConfig {
        PostgresRevocationConfig::new(lifetimes())
            .with_channel(&self.schema)
            .with_staleness_bound(Duration::from_secs(2))
            .with_heartbeat_interval(Duration::from_millis(200))
            .with_reconnect_backoff(Duration::from_millis(50), Duration::from_millis(400))
            .with_operation_timeout(Duration::from_secs(2))
            .with_application_name(format!("{}_{application_name}", self.schema))
    }

    /// An instance: its own pool, its own cache.
    pub(crate) async fn instance(
        &self,
        name: &str,
        clock: Arc<dyn Clock>,
    ) -> PostgresRevocationStore {
        PostgresRevocationStore::start(self.pool().await, clock, self.config(name))
            .await
            .unwrap()
    }

    /// An instance that polls the log instead of listening.
    pub(crate) async fn polling_instance(
        &self,
        name: &str,
        clock: Arc<dyn Clock>,
    ) -> PostgresRevocationStore {
        let config = self.config(name).with_sync_mode(SyncMode::Poll {
            interval: Duration::from_millis(100),
        });
        PostgresRevocationStore::start(self.pool().await, clock, config)
            .await
            .unwrap()
    }

    /// Waits until every store has read the log up to its current end
    /// (so that whatever was going to reach them has).
    pub(crate) async fn sync_all(&self, stores: &[&PostgresRevocationStore]) {
        let end: i64 = sqlx::query_scalar(&format!(
            "SELECT coalesce(max(seq), 0) FROM {}.tessera_revocation_log",
            self.schema
        ))
        .fetch_one(&self.admin)
        .await
        .unwrap();
        let since = std::time::Instant::now();
        for store in stores {
            super::eventually(
                "the store reads the log to its end",
                Duration::from_secs(5),
                || {
                    store.health().applied_seq >= end
                        && store.last_synced_at().is_some_and(|at| at > since)
                },
            )
            .await;
        }
    }

    /// A pool of a new login role granted nothing (dropped with the test's
    /// schema... and by the caller's `close`; the role itself is dropped on
    /// clean-up).
    pub(crate) async fn role_without_grants(&self) -> PgPool {
        let role = format!("{}_nogrant", self.schema);
        sqlx::raw_sql(&format!("CREATE ROLE {role} LOGIN"))
            .execute(&self.admin)
            .await
            .unwrap();
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.options().username(&role))
            .await
            .unwrap()
    }

    /// How many connections of this test are listening (by their
    /// `application_name`, see [`TestDb::config`]).
    pub(crate) async fn listeners(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE starts_with(application_name, $1 || '_')",
        )
        .bind(&self.schema)
        .fetch_one(&self.admin)
        .await
        .unwrap()
    }

    /// Terminates the backends whose `application_name` is this test's
    /// `name` (see [`TestDb::config`]); returns how many.
    pub(crate) async fn terminate(&self, name: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1",
        )
        .bind(format!("{}_{name}", self.schema))
        .fetch_one(&self.admin)
        .await
        .unwrap()
    }

    /// How many rows a table of this test's schema holds.
    pub(crate) async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {}.{table}", self.schema))
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Async work in a destructor: on a thread of its own, with a runtime
        // of its own, since the test's runtime may be the one blocked here.
        // Connections the test left open (a transaction it abandoned, whose
        // rollback would need the blocked runtime) are ended first, so that
        // nothing holds a lock the DROP waits for.
        let options = self.options.clone();
        let schema = self.schema.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let Ok(pool) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                else {
                    return;
                };
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE starts_with(application_name, $1) AND pid <> pg_backend_pid()",
                )
                .bind(&schema)
                .execute(&pool)
                .await;
                let _ = sqlx::raw_sql(&format!(
                    "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE; \
                     DROP ROLE IF EXISTS {schema}_nogrant"
                ))
                .execute(&pool)
                .await;
                pool.close().await;
            });
        })
        .join();
    }
}
