//! [`RedisRevocationConfig`]: how a [`RedisRevocationStore`](super::RedisRevocationStore)
//! keeps its cache in sync.

use std::time::Duration;

use tessera_domain::SessionLifetimes;

use super::error::RedisStoreError;
use crate::revocation_sync::Keep;

/// The key prefix used unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "tessera:revocations";

/// How a [`RedisRevocationStore`](super::RedisRevocationStore) keeps its
/// cache in sync.
///
/// Built with [`RedisRevocationConfig::new`] and adjusted with the `with_*`
/// methods; checked when the store starts.
#[derive(Debug, Clone)]
pub struct RedisRevocationConfig {
    pub(super) lifetimes: SessionLifetimes,
    pub(super) prefix: String,
    pub(super) staleness_bound: Duration,
    heartbeat_interval: Option<Duration>,
    pub(super) purge_interval: Duration,
    pub(super) log_retention: Duration,
    pub(super) backoff_min: Duration,
    pub(super) operation_timeout: Duration,
}

impl RedisRevocationConfig {
    /// Defaults for sessions of these `lifetimes`: keys under
    /// [`DEFAULT_PREFIX`], a 10-second staleness bound, a blocking read of
    /// the stream at most a fifth of it long, a purge every minute, an hour
    /// of stream, retries from 100 ms, a 5-second timeout on each operation.
    #[must_use]
    pub fn new(lifetimes: SessionLifetimes) -> Self {
        Self {
            lifetimes,
            prefix: DEFAULT_PREFIX.to_owned(),
            staleness_bound: Duration::from_secs(10),
            heartbeat_interval: None,
            purge_interval: Duration::from_secs(60),
            log_retention: Duration::from_secs(3600),
            backoff_min: Duration::from_millis(100),
            operation_timeout: Duration::from_secs(5),
        }
    }

    /// The key prefix: 1 to 100 bytes, no whitespace. Instances sharing
    /// state MUST share it.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long the cache may go without confirming it is in sync before
    /// [`check`](tessera_application::ports::RevocationStore::check) fails
    /// closed.
    #[must_use]
    pub fn with_staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound;
        self
    }

    /// How long one blocking read of the stream waits for something new
    /// (default: a fifth of the staleness bound). MUST be shorter than the
    /// staleness bound.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// How often what can no longer matter is dropped and the stream trimmed.
    #[must_use]
    pub fn with_purge_interval(mut self, interval: Duration) -> Self {
        self.purge_interval = interval;
        self
    }

    /// How long an entry stays in the stream (default an hour).
    #[must_use]
    pub fn with_log_retention(mut self, retention: Duration) -> Self {
        self.log_retention = retention;
        self
    }

    /// The longest any one operation may take, and the longest a write waits
    /// for its change to reach this instance's cache.
    #[must_use]
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    pub(super) fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval.unwrap_or(self.staleness_bound / 5)
    }

    /// What the cache keeps at `now` (see [`Keep`]).
    pub(super) fn keep(&self, now: time::OffsetDateTime) -> Keep {
        Keep::at(
            now,
            &self.lifetimes,
            self.staleness_bound,
            self.operation_timeout,
        )
    }

    pub(super) fn validate(&self) -> Result<(), RedisStoreError> {
        let checks = [
            (
                !self.prefix.is_empty()
                    && self.prefix.len() <= 100
                    && !self.prefix.bytes().any(|b| b.is_ascii_whitespace()),
                "prefix must be 1 to 100 bytes without whitespace",
            ),
            (
                !self.staleness_bound.is_zero(),
                "staleness bound must be positive",
            ),
            (
                self.heartbeat_interval() >= Duration::from_millis(1)
                    && self.heartbeat_interval() < self.staleness_bound,
                "heartbeat interval must be at least 1 ms and shorter than the staleness bound",
            ),
            (
                !self.purge_interval.is_zero(),
                "purge interval must be positive",
            ),
            (
                self.log_retention > self.staleness_bound,
                "log retention must be longer than the staleness bound",
            ),
            (
                !self.backoff_min.is_zero(),
                "retry backoff must be positive",
            ),
            (
                self.operation_timeout > self.heartbeat_interval(),
                "operation timeout must be longer than the heartbeat interval",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(RedisStoreError::InvalidConfig(why)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RedisRevocationConfig {
        RedisRevocationConfig::new(SessionLifetimes::default())
    }

    #[test]
    fn default_configuration_is_valid() {
        assert!(config().validate().is_ok());
    }

    #[test]
    fn rules_are_enforced() {
        assert!(config().with_prefix("").validate().is_err());
        assert!(config().with_prefix("a b").validate().is_err());
        assert!(
            config()
                .with_heartbeat_interval(Duration::from_secs(10))
                .validate()
                .is_err()
        );
        assert!(
            config()
                .with_log_retention(Duration::from_secs(5))
                .validate()
                .is_err()
        );
        assert!(
            config()
                .with_operation_timeout(Duration::from_secs(1))
                .validate()
                .is_err()
        );
    }
}
