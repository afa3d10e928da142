//! Redis for the store tests: the server at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`), a key prefix of its own per test, deleted at
//! the end.
//!
//! When nothing answers (or `TESSERA_SKIP_REDIS=1`), a test prints a
//! "skipped" line and passes, unless
//! `TESSERA_REQUIRE_REDIS=1` (set by `scripts/test.sh`), which makes it fail
//! instead.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tessera_application::ports::Clock;
use tessera_infrastructure::redis::{RedisRevocationConfig, RedisRevocationStore};

use super::lifetimes;

/// One test's key space.
pub(crate) struct TestRedis {
    client: ::redis::Client,
    prefix: String,
}

fn skip(test: &str, why: &str) -> Option<TestRedis> {
    assert!(
        std::env::var("TESSERA_REQUIRE_REDIS").as_deref() != Ok("1"),
        "{test}: {why}, and TESSERA_REQUIRE_REDIS=1"
    );
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: no Redis ({why}); start one (Debian: apt-get install redis-server) \
         or set REDIS_URL, or run scripts/test.sh"
    );
    None
}

/// A fresh key prefix for `test`, or `None` (after saying so) when no Redis
/// answers.
pub(crate) async fn redis(test: &str) -> Option<TestRedis> {
    if std::env::var("TESSERA_SKIP_REDIS").as_deref() == Ok("1") {
        return skip(test, "TESSERA_SKIP_REDIS=1");
    }
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let Ok(client) = ::redis::Client::open(url.as_str()) else {
        return skip(test, "REDIS_URL is not a Redis URL");
    };
    let ping = tokio::time::timeout(Duration::from_secs(2), async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        ::redis::cmd("PING").query_async::<String>(&mut conn).await
    })
    .await;
    match ping {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return skip(test, &format!("nothing answers at {url} ({e})")),
        Err(_) => return skip(test, &format!("nothing answers at {url} (timed out)")),
    }
    let prefix = format!(
        "tessera_test:{test}:{:08x}",
        uuid::Uuid::now_v7().as_u128() as u32
    );
    Some(TestRedis { client, prefix })
}

impl TestRedis {
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn client(&self) -> ::redis::Client {
        self.client.clone()
    }

    /// `host:port` of the server (for a proxy in front of it).
    pub(crate) fn address(&self) -> String {
        let info = self.client.get_connection_info();
        match info.addr() {
            ::redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            _ => "127.0.0.1:6379".to_owned(),
        }
    }

    /// A client of the same server, through `addr` (a proxy).
    pub(crate) fn client_through(&self, addr: std::net::SocketAddr) -> ::redis::Client {
        ::redis::Client::open(format!("redis://{addr}")).unwrap()
    }

    /// The configuration tests start from: this test's prefix, a 2-second
    /// staleness bound, 200 ms blocking reads.
    pub(crate) fn config(&self) -> RedisRevocationConfig {
        RedisRevocationConfig::new(lifetimes())
            .with_prefix(&self.prefix)
            .with_staleness_bound(Duration::from_secs(2))
            .with_heartbeat_interval(Duration::from_millis(200))
            .with_operation_timeout(Duration::from_secs(2))
    }

    /// An instance: its own connections, its own cache.
    pub(crate) async fn instance(&self, clock: Arc<dyn Clock>) -> RedisRevocationStore {
        RedisRevocationStore::start(self.client(), clock, self.config())
            .await
            .unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let client = self.client.clone();
        let pattern = format!("{}:*", self.prefix);
        let _ = std::thread::spawn(move || {
            let Ok(mut conn) = client.get_connection() else {
                return;
            };
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = ::redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        })
        .join();
    }
}
