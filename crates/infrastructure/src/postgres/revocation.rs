//! [`PostgresRevocationStore`]: shared tables and a change log, a local cache.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::PgPool;
use tessera_application::ports::{
    Clock, RevocationError, RevocationQuery, RevocationStatus, RevocationStore, WatermarkKind,
    WatermarkScope,
};
use tessera_domain::SessionId;
use time::OffsetDateTime;

use super::config::PostgresRevocationConfig;
use super::error::PostgresStoreError;
use super::log::{self, Change};
use super::shared::{Shared, SyncHealth};
use super::sync::Syncer;
use crate::revocation_sync::{Tasks, clean_up_every, status_from};

/// Logouts and watermarks in PostgreSQL, shared by every instance.
///
/// Each write is one statement that changes a state table, appends the
/// change to the change log (`tessera_revocation_log`), and notifies the
/// configured channel with an empty payload; it returns once the change
/// has reached this instance's cache too (or the operation timeout has
/// passed). Background tasks, started by [`start`](Self::start) on the
/// current tokio runtime:
///
/// - read the log after the last change this instance applied, through its
///   own pool, whenever woken and at least every read interval, and apply
///   it to the local cache, which [`check`](RevocationStore::check) reads
///   without I/O. **A notification carries no authority**: whatever its
///   payload, and whoever sent it, it only makes the instance read the log
///   sooner; what the instance believes is what the tables (and their
///   grants) say;
/// - in [`SyncMode::Listen`](super::SyncMode::Listen), `LISTEN` on a
///   dedicated connection (replaced with backoff when lost); in
///   [`SyncMode::Poll`](super::SyncMode::Poll), nothing more;
/// - purge what can no longer matter from the cache and the tables, and
///   compact the log.
///
/// After a disconnection the instance reads only what it missed; it
/// reloads whole from the tables only when the log was compacted past it.
/// The cache holds only what can still matter to an unexpired token
/// (logouts and watermarks younger than a token lifetime and the leeway,
/// plus a margin for logouts); rotation asks the tables through
/// [`check_authoritative`](RevocationStore::check_authoritative) (see
/// `RotateSession::with_revocations`).
///
/// **Fail closed**: when no read of the log has reached its end within the
/// staleness bound, `check` returns [`RevocationError::Unavailable`] until
/// one does, which happens by itself once the database answers.
///
/// The tasks stop when the store is dropped or [`shutdown`](Self::shutdown).
pub struct PostgresRevocationStore {
    shared: Arc<Shared>,
    syncer: Syncer,
    pool: PgPool,
    clock: Arc<dyn Clock>,
    config: Arc<PostgresRevocationConfig>,
    tasks: Tasks,
}

impl std::fmt::Debug for PostgresRevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRevocationStore")
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl PostgresRevocationStore {
    /// Loads the cache, connects the listener (in
    /// [`SyncMode::Listen`](super::SyncMode::Listen)) and starts the
    /// background tasks on the current tokio runtime. The tables must exist
    /// (see [`migrate`](super::migrate)). `clock` decides what has expired.
    ///
    /// The pool serves reads, writes and purges; the listener gets its own
    /// connection with the pool's options.
    ///
    /// # Errors
    ///
    /// [`PostgresStoreError::InvalidConfig`] for a configuration that breaks
    /// a rule; [`PostgresStoreError::Database`],
    /// [`PostgresStoreError::TimedOut`] or [`PostgresStoreError::InvalidRow`]
    /// when the first load or the listener's connection fails.
    pub async fn start(
        pool: PgPool,
        clock: Arc<dyn Clock>,
        config: PostgresRevocationConfig,
    ) -> Result<Self, PostgresStoreError> {
        config.validate()?;
        let config = Arc::new(config);
        let shared = Arc::new(Shared::new(config.staleness_bound));
        let syncer = Syncer::new(shared.clone(), pool.clone(), clock.clone(), config.clone());
        // Listening before loading: nothing committed in between is missed
        // (and the log would bring it anyway).
        let listener = if syncer.listens() {
            Some(syncer.connect().await?)
        } else {
            None
        };
        syncer.load().await?;
        let (tasks, stopped) = Tasks::new();
        tasks.spawn(syncer.clone().follow(stopped.clone()));
        tasks.spawn(clean_up_every(
            syncer.clone(),
            config.purge_interval,
            stopped.clone(),
        ));
        if let Some(listener) = listener {
            tasks.spawn(syncer.clone().listen(listener, stopped));
        }
        Ok(Self {
            shared,
            syncer,
            pool,
            clock,
            config,
            tasks,
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

    /// Runs one purge now (the background task runs one every purge
    /// interval): drops from the cache what no unexpired token can need,
    /// deletes expired rows from the tables, and compacts the log. Failures
    /// are logged, not returned: the next purge tries again.
    pub async fn purge_now(&self) {
        self.syncer.purge().await;
    }

    /// Stops the background tasks and waits for them to end; `check` fails
    /// closed from then on. Dropping the store stops them too, without
    /// waiting.
    pub async fn shutdown(&self) {
        self.tasks.stop().await;
        self.shared.stopped();
    }

    async fn write(&self, change: Change) -> Result<(), RevocationError> {
        let unavailable = |e: PostgresStoreError| RevocationError::Unavailable(Box::new(e));
        if self.shared.is_stopped() {
            return Err(unavailable(PostgresStoreError::ShutDown));
        }
        let timeout = self.config.operation_timeout;
        let seq = tokio::time::timeout(
            timeout,
            log::write(
                &self.pool,
                self.config.statements(),
                &self.config.channel,
                &change,
            ),
        )
        .await
        .unwrap_or(Err(PostgresStoreError::TimedOut("write")))
        .map_err(unavailable)?;
        // Read our own write: wake the reader and wait for it to apply.
        self.shared.wake.notify_one();
        if !self.shared.wait_applied(seq, timeout).await {
            tracing::warn!(
                seq,
                "revocation written but not yet applied to this instance's cache; \
                 it will be at the next read of the log"
            );
        }
        Ok(())
    }
}

#[async_trait]
impl RevocationStore for PostgresRevocationStore {
    fn check<'a>(&self, query: RevocationQuery<'a>) -> Result<RevocationStatus, RevocationError> {
        self.shared
            .check(&query)
            .map_err(|e| RevocationError::Unavailable(Box::new(PostgresStoreError::from(e))))
    }

    async fn check_authoritative<'a>(
        &self,
        query: RevocationQuery<'a>,
    ) -> Result<RevocationStatus, RevocationError> {
        let unavailable = |e: PostgresStoreError| RevocationError::Unavailable(Box::new(e));
        if self.shared.is_stopped() {
            return Err(unavailable(PostgresStoreError::ShutDown));
        }
        let now = self.clock.now();
        let changes = tokio::time::timeout(
            self.config.operation_timeout,
            log::about(
                &self.pool,
                self.config.statements(),
                now,
                query.session_id,
                query.user_id,
                query.tenant,
            ),
        )
        .await
        .unwrap_or(Err(PostgresStoreError::TimedOut("check in tables")))
        .map_err(unavailable)?;
        Ok(status_from(changes, &query))
    }

    async fn revoke_session(
        &self,
        session_id: SessionId,
        until: OffsetDateTime,
    ) -> Result<(), RevocationError> {
        self.write(Change::log_out(session_id, until, self.clock.now()))
            .await
    }

    async fn set_watermark(
        &self,
        scope: WatermarkScope,
        kind: WatermarkKind,
        at: OffsetDateTime,
    ) -> Result<(), RevocationError> {
        self.write(Change::raise(scope, kind, at)).await
    }

    async fn clear_watermark(
        &self,
        scope: WatermarkScope,
        kind: WatermarkKind,
    ) -> Result<(), RevocationError> {
        self.write(Change::Clear { scope, kind }).await
    }
}
