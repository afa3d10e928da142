//! [`PostgresRevocationStore`]: shared tables, notifications, a local cache.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::PgPool;
use tessera_application::ports::{
    Clock, RevocationError, RevocationQuery, RevocationStatus, RevocationStore, WatermarkKind,
    WatermarkScope,
};
use tessera_domain::{SessionId, SessionLifetimes};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::payload::{self, Change};
use super::sync::{Shared, Syncer};

/// The notification channel used unless configured otherwise.
pub const DEFAULT_CHANNEL: &str = "tessera_revocations";

/// The `application_name` of the listening connection unless configured
/// otherwise (it shows in `pg_stat_activity`).
const DEFAULT_APPLICATION_NAME: &str = "tessera-revocation-listener";

/// How a [`PostgresRevocationStore`] keeps its cache in sync.
///
/// Built with [`PostgresRevocationConfig::new`] and adjusted with the
/// `with_*` methods; checked when the store starts.
#[derive(Debug, Clone)]
pub struct PostgresRevocationConfig {
    pub(super) lifetimes: SessionLifetimes,
    pub(super) channel: String,
    pub(super) staleness_bound: Duration,
    heartbeat_interval: Option<Duration>,
    pub(super) purge_interval: Duration,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) operation_timeout: Duration,
    pub(super) application_name: String,
}

impl PostgresRevocationConfig {
    /// Defaults for sessions of these `lifetimes` (which decide what the
    /// cache and the tables may forget): channel [`DEFAULT_CHANNEL`], a
    /// 10-second staleness bound, a heartbeat every fifth of it, a purge
    /// every minute, reconnection backoff from 100 ms to 5 s, a 5-second
    /// timeout on each database operation.
    #[must_use]
    pub fn new(lifetimes: SessionLifetimes) -> Self {
        Self {
            lifetimes,
            channel: DEFAULT_CHANNEL.to_owned(),
            staleness_bound: Duration::from_secs(10),
            heartbeat_interval: None,
            purge_interval: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
        }
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
    /// [`check`](RevocationStore::check) fails closed. This is the longest
    /// a revocation can go unhonoured while the database is unreachable.
    #[must_use]
    pub fn with_staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound;
        self
    }

    /// How often the store pings its own channel (default: a fifth of the
    /// staleness bound). The listener is deemed dead after three intervals
    /// without any notification, and reconnects. MUST be shorter than the
    /// staleness bound.
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

    fn validate(&self) -> Result<(), PostgresStoreError> {
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
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(PostgresStoreError::InvalidConfig(why)),
            None => Ok(()),
        }
    }
}

/// Why the PostgreSQL store could not start, write, or be trusted.
///
/// It reaches the application boxed inside [`RevocationError::Unavailable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresStoreError {
    /// The configuration breaks a rule (named here).
    #[error("invalid revocation store configuration: {0}")]
    InvalidConfig(&'static str),
    /// The database refused an operation or could not be reached.
    #[error("revocation database operation failed")]
    Database(#[source] sqlx::Error),
    /// A database operation took longer than the operation timeout.
    #[error("revocation database operation timed out: {0}")]
    TimedOut(&'static str),
    /// A stored row cannot be read (edited by hand?); the cache is not
    /// loaded rather than loaded without it.
    #[error("revocation table holds an invalid row: {0}")]
    InvalidRow(&'static str),
    /// The cache has not been confirmed in sync within the staleness bound.
    #[error("revocation cache is stale (last in sync {since:?} ago)")]
    Stale {
        /// How long ago it was last in sync; `None` if never.
        since: Option<Duration>,
    },
    /// The store was shut down.
    #[error("revocation store is shut down")]
    ShutDown,
}

impl From<sqlx::Error> for PostgresStoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// A snapshot of a store's synchronisation, for health checks and metrics.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SyncHealth {
    /// When the cache was last confirmed in sync with the tables.
    pub last_synced_at: Option<Instant>,
    /// Whether [`check`](RevocationStore::check) answers (or fails closed).
    pub trusted: bool,
    /// Whether the listening connection is up.
    pub connected: bool,
    /// How many times the listener reconnected and reloaded the cache.
    pub reconnections: u64,
    /// How many logouts and watermarks the cache holds.
    pub entries: usize,
}

/// Logouts and watermarks in PostgreSQL, shared by every instance.
///
/// Each write is one statement that upserts a row and `NOTIFY`s the
/// configured channel; it returns once the change has reached this
/// instance's cache too (or the operation timeout has passed). A background
/// task, started by [`start`](Self::start) on the current tokio runtime:
///
/// - `LISTEN`s on a dedicated connection and applies each change to the
///   local cache, which [`check`](RevocationStore::check) reads without I/O;
/// - pings the channel every heartbeat interval; each notification received
///   confirms the cache is in sync;
/// - when the connection drops or falls silent, reconnects with backoff and
///   reloads the whole cache (notifications may have been missed);
/// - purges expired rows from the tables and the cache.
///
/// The cache holds only what can still matter (logouts until their end,
/// watermarks newer than now minus the absolute session lifetime and
/// leeway), so memory stays bounded however many users there are.
///
/// **Fail closed**: when the cache has not been confirmed in sync for longer
/// than the staleness bound, `check` returns [`RevocationError::Unavailable`]
/// until the listener is back and the cache reloaded, which happens by itself.
///
/// The task stops when the store is dropped or [`shutdown`](Self::shutdown).
pub struct PostgresRevocationStore {
    shared: Arc<Shared>,
    pool: PgPool,
    operation_timeout: Duration,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for PostgresRevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRevocationStore")
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl PostgresRevocationStore {
    /// Connects the listener, loads the cache, and starts the background
    /// task on the current tokio runtime. The tables must exist (see
    /// [`migrate`](super::migrate)). `clock` decides what has expired.
    ///
    /// The pool serves loads, writes and heartbeats; the listener gets its
    /// own connection with the pool's options.
    ///
    /// # Errors
    ///
    /// [`PostgresStoreError::InvalidConfig`] for a configuration that breaks
    /// a rule; [`PostgresStoreError::Database`],
    /// [`PostgresStoreError::TimedOut`] or [`PostgresStoreError::InvalidRow`]
    /// when the first load fails.
    pub async fn start(
        pool: PgPool,
        clock: Arc<dyn Clock>,
        config: PostgresRevocationConfig,
    ) -> Result<Self, PostgresStoreError> {
        config.validate()?;
        let operation_timeout = config.operation_timeout;
        let shared = Arc::new(Shared::new(&config));
        let syncer = Syncer::new(shared.clone(), pool.clone(), clock, config);
        let listener = syncer.connect().await?;
        let (stop, stopped) = watch::channel(false);
        let maintenance = tokio::spawn(syncer.clone().maintain(stopped.clone()));
        let listening = tokio::spawn(syncer.listen(listener, stopped));
        Ok(Self {
            shared,
            pool,
            operation_timeout,
            stop,
            tasks: Mutex::new(vec![listening, maintenance]),
        })
    }

    /// When the cache was last confirmed in sync (`None` before the first
    /// load or after shutdown).
    #[must_use]
    pub fn last_synced_at(&self) -> Option<Instant> {
        self.shared.last_synced_at()
    }

    /// Whether [`check`](RevocationStore::check) currently answers rather
    /// than failing closed.
    #[must_use]
    pub fn is_trusted(&self) -> bool {
        self.shared.trust().is_ok()
    }

    /// The state of synchronisation.
    #[must_use]
    pub fn health(&self) -> SyncHealth {
        self.shared.health()
    }

    /// Stops the background task and waits for it to end; `check` fails
    /// closed from then on. Dropping the store stops it too, without waiting.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            let _ = task.await;
        }
        self.shared.stopped();
    }

    async fn write(&self, change: Change) -> Result<(), RevocationError> {
        let unavailable = |e: PostgresStoreError| RevocationError::Unavailable(Box::new(e));
        if self.shared.is_stopped() {
            return Err(unavailable(PostgresStoreError::ShutDown));
        }
        let op = self.shared.next_op();
        let note = payload::encode(self.shared.origin(), op, &change);
        let applied = self.shared.acks.register(op);
        let written = tokio::time::timeout(self.operation_timeout, self.execute(&change, &note))
            .await
            .unwrap_or(Err(PostgresStoreError::TimedOut("write")));
        if let Err(e) = written {
            self.shared.acks.forget(op);
            return Err(unavailable(e));
        }
        self.shared.acks.committed(op);
        if tokio::time::timeout(self.operation_timeout, applied)
            .await
            .is_err()
        {
            tracing::warn!(
                op,
                "revocation written but not yet seen by this instance's cache; \
                 it will be after the listener reconnects"
            );
        }
        self.shared.acks.forget(op);
        Ok(())
    }

    async fn execute(&self, change: &Change, note: &str) -> Result<(), PostgresStoreError> {
        let start = |sql| sqlx::query(sql).bind(self.shared.channel()).bind(note);
        let query = match change {
            Change::LogOut { session_id, until } => start(
                "WITH w AS (
                    INSERT INTO tessera_session_logouts (session_id, until) VALUES ($3, $4)
                    ON CONFLICT (session_id) DO UPDATE
                    SET until = GREATEST(tessera_session_logouts.until, EXCLUDED.until)
                ) SELECT pg_notify($1, $2)",
            )
            .bind(*session_id.as_uuid())
            .bind(from_seconds(*until)?),
            Change::Raise { scope, kind, at } => {
                let (scope, subject) = payload::scope_columns(scope);
                start(
                    "WITH w AS (
                        INSERT INTO tessera_watermarks (kind, scope, subject, at)
                        VALUES ($3, $4, $5, $6)
                        ON CONFLICT (kind, scope, subject) DO UPDATE
                        SET at = GREATEST(tessera_watermarks.at, EXCLUDED.at), updated_at = now()
                    ) SELECT pg_notify($1, $2)",
                )
                .bind(payload::kind_name(*kind))
                .bind(scope)
                .bind(subject)
                .bind(from_seconds(*at)?)
            }
            Change::Clear { scope, kind } => {
                // A row with no `at` rather than no row: a clear and a
                // concurrent set lock the same row, so they commit, and
                // notify, in the order they take effect.
                let (scope, subject) = payload::scope_columns(scope);
                start(
                    "WITH w AS (
                        INSERT INTO tessera_watermarks (kind, scope, subject, at)
                        VALUES ($3, $4, $5, NULL)
                        ON CONFLICT (kind, scope, subject) DO UPDATE
                        SET at = NULL, updated_at = now()
                    ) SELECT pg_notify($1, $2)",
                )
                .bind(payload::kind_name(*kind))
                .bind(scope)
                .bind(subject)
            }
        };
        query.execute(&self.pool).await?;
        Ok(())
    }
}

/// A Unix second as a timestamp.
pub(super) fn from_seconds(seconds: i64) -> Result<OffsetDateTime, PostgresStoreError> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| PostgresStoreError::InvalidRow("timestamp out of range"))
}

/// `until` rounded up to whole seconds: a logout is never kept shorter.
fn ceil_seconds(until: OffsetDateTime) -> i64 {
    until.unix_timestamp() + i64::from(until.nanosecond() > 0)
}

impl Drop for PostgresRevocationStore {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

#[async_trait]
impl RevocationStore for PostgresRevocationStore {
    fn check<'a>(&self, query: RevocationQuery<'a>) -> Result<RevocationStatus, RevocationError> {
        self.shared
            .trust()
            .map_err(|e| RevocationError::Unavailable(Box::new(e)))?;
        Ok(self.shared.read_cache(|cache| cache.check(&query)))
    }

    async fn revoke_session(
        &self,
        session_id: SessionId,
        until: OffsetDateTime,
    ) -> Result<(), RevocationError> {
        self.write(Change::LogOut {
            session_id,
            until: ceil_seconds(until),
        })
        .await
    }

    async fn set_watermark(
        &self,
        scope: WatermarkScope,
        kind: WatermarkKind,
        at: OffsetDateTime,
    ) -> Result<(), RevocationError> {
        self.write(Change::Raise {
            scope,
            kind,
            at: at.unix_timestamp(),
        })
        .await
    }

    async fn clear_watermark(
        &self,
        scope: WatermarkScope,
        kind: WatermarkKind,
    ) -> Result<(), RevocationError> {
        self.write(Change::Clear { scope, kind }).await
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
    fn backoff_with_min_above_max_is_refused() {
        let c = config().with_reconnect_backoff(Duration::from_secs(2), Duration::from_secs(1));
        assert!(c.validate().is_err());
    }

    #[test]
    fn logout_ends_are_rounded_up_to_whole_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(100).unwrap();
        assert_eq!(ceil_seconds(t), 100);
        assert_eq!(ceil_seconds(t + time::Duration::milliseconds(1)), 101);
    }
}
