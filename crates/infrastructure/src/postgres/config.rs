//! [`PostgresRevocationConfig`]: how a [`PostgresRevocationStore`](super::PostgresRevocationStore)
//! keeps its cache in sync.

use std::time::Duration;

use tessera_domain::SessionLifetimes;

use super::error::PostgresStoreError;
use super::log::Statements;
use crate::revocation_sync::Keep;

/// The notification channel used unless configured otherwise.
pub const DEFAULT_CHANNEL: &str = "tessera_revocations";

/// The `application_name` of the listening connection unless configured
/// otherwise (it shows in `pg_stat_activity`).
const DEFAULT_APPLICATION_NAME: &str = "tessera-revocation-listener";

/// How often a polling store reads the change log unless configured
/// otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How an instance learns that the change log has something new.
///
/// Either way it reads the log itself, through its pool, after the last
/// change it applied; what wakes it up carries no authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncMode {
    /// `LISTEN` on a dedicated connection: a notification wakes the reader
    /// at once; the log is also read every heartbeat interval, which is what
    /// keeps the cache trusted. Needs a session-level connection: through
    /// PgBouncer in transaction mode, `LISTEN` registers on whichever server
    /// connection ran it, which then serves other clients, and no
    /// notification reaches the listener (changes would wait for the
    /// heartbeat). A configuration with
    /// [`with_transaction_pooler`](PostgresRevocationConfig::with_transaction_pooler)
    /// refuses it.
    Listen,
    /// No dedicated connection: the log is read every `interval` through the
    /// pool. For poolers in transaction mode (PgBouncer; with
    /// [`with_transaction_pooler`](PostgresRevocationConfig::with_transaction_pooler)),
    /// where `LISTEN` does not work. A change reaches the cache within about
    /// one interval.
    Poll {
        /// How often the log is read.
        interval: Duration,
    },
}

impl SyncMode {
    /// Polling every [`DEFAULT_POLL_INTERVAL`].
    #[must_use]
    pub fn poll() -> Self {
        Self::Poll {
            interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// How a [`PostgresRevocationStore`](super::PostgresRevocationStore) keeps its cache in sync.
///
/// Built with [`PostgresRevocationConfig::new`] and adjusted with the
/// `with_*` methods; checked when the store starts.
#[derive(Debug, Clone)]
pub struct PostgresRevocationConfig {
    pub(super) lifetimes: SessionLifetimes,
    pub(super) channel: String,
    pub(super) mode: SyncMode,
    pub(super) staleness_bound: Duration,
    heartbeat_interval: Option<Duration>,
    pub(super) purge_interval: Duration,
    pub(super) log_retention: Duration,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) operation_timeout: Duration,
    pub(super) application_name: String,
    transaction_pooler: bool,
}

impl PostgresRevocationConfig {
    /// Defaults for sessions of these `lifetimes` (which decide what the
    /// cache and the tables may forget): [`SyncMode::Listen`] on channel
    /// [`DEFAULT_CHANNEL`], a 10-second staleness bound, a heartbeat every
    /// fifth of it, a purge every minute, an hour of change log,
    /// reconnection backoff from 100 ms to 5 s, a 5-second timeout on each
    /// database operation.
    #[must_use]
    pub fn new(lifetimes: SessionLifetimes) -> Self {
        Self {
            lifetimes,
            channel: DEFAULT_CHANNEL.to_owned(),
            mode: SyncMode::Listen,
            staleness_bound: Duration::from_secs(10),
            heartbeat_interval: None,
            purge_interval: Duration::from_secs(60),
            log_retention: Duration::from_secs(3600),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
            transaction_pooler: false,
        }
    }

    /// The pool's connections go through a pooler in transaction mode
    /// (PgBouncer's `pool_mode = transaction`, or a managed proxy that
    /// pools by transaction): [`SyncMode::Poll`] (at the default interval
    /// unless another poll interval was set), and each of the store's
    /// operations in a transaction of its own with unnamed statements,
    /// since the pooler may hand each transaction to another server
    /// connection. Open the pool's connections with
    /// `PgConnectOptions::statement_cache_capacity(0)` and without a
    /// `search_path` option (PgBouncer refuses startup options it does not
    /// know: set the schema on the server side, for example with
    /// PgBouncer's `connect_query`).
    ///
    /// Setting [`SyncMode::Listen`] afterwards makes the configuration
    /// invalid: the store refuses to start
    /// ([`PostgresStoreError::InvalidConfig`]).
    #[must_use]
    pub fn with_transaction_pooler(mut self) -> Self {
        self.transaction_pooler = true;
        if self.mode == SyncMode::Listen {
            self.mode = SyncMode::poll();
        }
        self
    }

    /// How the store's statements reach the server.
    pub(super) fn statements(&self) -> Statements {
        if self.transaction_pooler {
            Statements::PerTransaction
        } else {
            Statements::Prepared
        }
    }

    /// How the instance learns of new changes: [`SyncMode::Listen`] (the
    /// default) or [`SyncMode::Poll`].
    #[must_use]
    pub fn with_sync_mode(mut self, mode: SyncMode) -> Self {
        self.mode = mode;
        self
    }

    /// How long a change stays in the log (default an hour). An instance
    /// cut off for less than this catches up by reading what it missed; one
    /// cut off for longer reloads what can still matter from the tables.
    /// Compaction deletes older rows every purge interval, in batches.
    #[must_use]
    pub fn with_log_retention(mut self, retention: Duration) -> Self {
        self.log_retention = retention;
        self
    }

    /// The `LISTEN`/`NOTIFY` channel: 1 to 63 bytes of lowercase ASCII
    /// letters, digits and `_`. Instances sharing tables MUST share it;
    /// stores on different tables in one database (one schema each) need
    /// different channels, since channels are per database.
    #[must_use]
    pub fn with_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// How long the cache may go without confirming it is in sync before
    /// [`check`](tessera_application::ports::RevocationStore::check) fails closed. This is the longest
    /// a revocation can go unhonoured while the database is unreachable.
    #[must_use]
    pub fn with_staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound;
        self
    }

    /// How often, in [`SyncMode::Listen`], the store reads the change log
    /// without being woken and checks that its listening connection is
    /// alive (default: a fifth of the staleness bound). MUST be shorter than
    /// the staleness bound.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// How often expired rows are deleted from the tables and the cache.
    #[must_use]
    pub fn with_purge_interval(mut self, interval: Duration) -> Self {
        self.purge_interval = interval;
        self
    }

    /// The first and the longest wait between reconnection attempts; each
    /// failure doubles the wait (with jitter) up to `max`.
    #[must_use]
    pub fn with_reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// The longest any one database operation may take, and the longest a
    /// write waits for its notification to reach this instance's cache.
    #[must_use]
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The listening connection's `application_name`, to find it in
    /// `pg_stat_activity`.
    #[must_use]
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    pub(super) fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval.unwrap_or(self.staleness_bound / 5)
    }

    /// How often the log is read when nothing wakes the reader.
    pub(super) fn read_interval(&self) -> Duration {
        match self.mode {
            SyncMode::Listen => self.heartbeat_interval(),
            SyncMode::Poll { interval } => interval,
        }
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

    pub(super) fn validate(&self) -> Result<(), PostgresStoreError> {
        let channel_ok = !self.channel.is_empty()
            && self.channel.len() <= 63
            && self
                .channel
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let checks = [
            (channel_ok, "channel must be 1 to 63 bytes of [a-z0-9_]"),
            (
                !self.staleness_bound.is_zero(),
                "staleness bound must be positive",
            ),
            (
                !self.heartbeat_interval().is_zero()
                    && self.heartbeat_interval() < self.staleness_bound,
                "heartbeat interval must be positive and shorter than the staleness bound",
            ),
            (
                !self.purge_interval.is_zero(),
                "purge interval must be positive",
            ),
            (
                !self.read_interval().is_zero() && self.read_interval() < self.staleness_bound,
                "poll interval must be positive and shorter than the staleness bound",
            ),
            (
                self.log_retention > self.staleness_bound,
                "log retention must be longer than the staleness bound",
            ),
            (
                !self.backoff_min.is_zero() && self.backoff_min <= self.backoff_max,
                "reconnect backoff must be positive with min <= max",
            ),
            (
                !self.operation_timeout.is_zero(),
                "operation timeout must be positive",
            ),
            (
                self.application_name.len() < 64,
                "application name must be shorter than 64 bytes",
            ),
            (
                !(self.transaction_pooler && self.mode == SyncMode::Listen),
                "LISTEN does not work through a pooler in transaction mode: use SyncMode::Poll",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(PostgresStoreError::InvalidConfig(why)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PostgresRevocationConfig {
        PostgresRevocationConfig::new(SessionLifetimes::default())
    }

    #[test]
    fn default_configuration_is_valid() {
        assert!(config().validate().is_ok());
        assert_eq!(config().heartbeat_interval(), Duration::from_secs(2));
    }

    #[test]
    fn channel_names_outside_the_safe_alphabet_are_refused() {
        for bad in ["", "Tessera", "a-b", "a b", &"a".repeat(64)] {
            assert!(
                matches!(
                    config().with_channel(bad).validate(),
                    Err(PostgresStoreError::InvalidConfig(_))
                ),
                "{bad:?}"
            );
        }
        assert!(config().with_channel("tessera_t_42").validate().is_ok());
    }

    #[test]
    fn heartbeat_not_shorter_than_the_staleness_bound_is_refused() {
        let c = config()
            .with_staleness_bound(Duration::from_secs(1))
            .with_heartbeat_interval(Duration::from_secs(1));
        assert!(matches!(
            c.validate(),
            Err(PostgresStoreError::InvalidConfig(_))
        ));
    }

    #[test]
    fn a_transaction_pooler_polls_and_refuses_to_listen() {
        let pooled = config().with_transaction_pooler();
        assert_eq!(pooled.mode, SyncMode::poll());
        assert_eq!(pooled.statements(), Statements::PerTransaction);
        assert!(pooled.validate().is_ok());
        let fast = SyncMode::Poll {
            interval: Duration::from_millis(100),
        };
        let kept = config().with_sync_mode(fast).with_transaction_pooler();
        assert_eq!(kept.mode, fast, "a poll interval set before is kept");
        assert!(matches!(
            pooled.with_sync_mode(SyncMode::Listen).validate(),
            Err(PostgresStoreError::InvalidConfig(why)) if why.contains("LISTEN")
        ));
        assert_eq!(config().statements(), Statements::Prepared);
    }

    #[test]
    fn backoff_with_min_above_max_is_refused() {
        let c = config().with_reconnect_backoff(Duration::from_secs(2), Duration::from_secs(1));
        assert!(c.validate().is_err());
    }

    #[test]
    fn polling_not_faster_than_the_staleness_bound_is_refused() {
        let poll = |ms| {
            config().with_sync_mode(SyncMode::Poll {
                interval: Duration::from_millis(ms),
            })
        };
        assert!(config().with_sync_mode(SyncMode::poll()).validate().is_ok());
        assert_eq!(poll(250).read_interval(), DEFAULT_POLL_INTERVAL);
        assert!(poll(0).validate().is_err());
        assert!(poll(10_000).validate().is_err());
    }

    #[test]
    fn a_log_kept_no_longer_than_the_staleness_bound_is_refused() {
        let c = config().with_log_retention(Duration::from_secs(10));
        assert!(c.validate().is_err());
    }

    #[test]
    fn logouts_are_kept_one_token_lifetime_and_the_margins() {
        // 15-minute tokens, 30 s leeway, 10 s staleness, 5 s operations.
        let now = time::OffsetDateTime::from_unix_timestamp(10_000).unwrap();
        assert_eq!(
            config().keep(now).logouts_before(),
            10_000 - 900 - 30 - 10 - 5
        );
        assert_eq!(config().keep(now).watermarks_before(), 10_000 - 900 - 30);
    }
}
