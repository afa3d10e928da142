//! [`RedisRevocationStore`]: state keys and a change stream in Redis, a
//! local cache.

use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tessera_application::ports::{
    Clock, RevocationError, RevocationQuery, RevocationStatus, RevocationStore, WatermarkKind,
    WatermarkScope,
};
use tessera_domain::SessionId;
use time::OffsetDateTime;

use super::config::RedisRevocationConfig;
use super::error::RedisStoreError;
use super::stream::{self, Keys, StreamPosition};
use super::sync::{Shared, Syncer};
use crate::revocation_sync::{Change, SyncHealth, Tasks, clean_up_every, status_from};

/// Logouts and watermarks in Redis, shared by every instance.
///
/// Each write is one script that changes the state keys and appends the
/// change to the stream (`XADD`), atomically; it returns once the change
/// has reached this instance's cache too (or the operation timeout has
/// passed). Background tasks, started by [`start`](Self::start) on the
/// current tokio runtime:
///
/// - follow the stream on a connection of their own (`XREAD BLOCK` after
///   the last entry applied), applying each entry to the local cache, which
///   [`check`](RevocationStore::check) reads without I/O; every read that
///   reaches the end of the stream confirms the cache is in sync;
/// - reload the cache whole only when the stream was trimmed past what this
///   instance applied, or a `resync` entry asks;
/// - drop what can no longer matter and trim the stream.
///
/// The cache holds what can matter to an unexpired token, like the
/// PostgreSQL store's; rotation asks the state keys through
/// [`check_authoritative`](RevocationStore::check_authoritative).
///
/// **Fail closed**: when no read has reached the end of the stream within
/// the staleness bound, `check` returns [`RevocationError::Unavailable`].
pub struct RedisRevocationStore {
    shared: Arc<Shared>,
    syncer: Syncer,
    tasks: Tasks,
}

impl std::fmt::Debug for RedisRevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocationStore")
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl RedisRevocationStore {
    /// Connects (two connections: one for writes, loads and purges, one
    /// blocked on the stream), loads the cache, and starts the background
    /// tasks on the current tokio runtime. `clock` decides what has expired.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::InvalidConfig`] for a configuration that breaks a
    /// rule; [`RedisStoreError::Redis`], [`RedisStoreError::TimedOut`] or
    /// [`RedisStoreError::InvalidEntry`] when connecting or the first load
    /// fails.
    pub async fn start(
        client: redis::Client,
        clock: Arc<dyn Clock>,
        config: RedisRevocationConfig,
    ) -> Result<Self, RedisStoreError> {
        config.validate()?;
        let timeout = config.operation_timeout;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_max_delay(crate::revocation_sync::RETRY_CAP);
        let connect = || async {
            tokio::time::timeout(
                timeout,
                ConnectionManager::new_with_config(client.clone(), manager.clone()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "connection timed out",
                )))
            })
        };
        let conn = connect().await?;
        let follower = connect().await?;
        let config = Arc::new(config);
        let shared = Arc::new(Shared::new(config.staleness_bound));
        let syncer = Syncer {
            shared: shared.clone(),
            conn,
            keys: Keys::new(&config.prefix),
            clock,
            config,
        };
        syncer.load().await?;
        let (tasks, stopped) = Tasks::new();
        tasks.spawn(syncer.clone().follow(follower, stopped.clone()));
        tasks.spawn(clean_up_every(
            syncer.clone(),
            syncer.config.purge_interval,
            stopped,
        ));
        Ok(Self {
            shared,
            syncer,
            tasks,
        })
    }

    /// Whether [`check`](RevocationStore::check) currently answers rather
    /// than failing closed.
    #[must_use]
    pub fn is_trusted(&self) -> bool {
        self.shared.trust().is_ok()
    }

    /// The state of synchronisation.
    #[must_use]
    pub fn health(&self) -> SyncHealth<StreamPosition> {
        self.shared.health()
    }

    /// Runs one purge now (the background task runs one every purge
    /// interval). Failures are logged, not returned.
    pub async fn purge_now(&self) {
        self.syncer.purge().await;
    }

    /// Appends a `resync` entry: every instance reloads its cache. For after
    /// state keys were changed by hand.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError`] when the entry cannot be written.
    pub async fn request_resync(&self) -> Result<(), RedisStoreError> {
        let mut conn = self.syncer.conn.clone();
        tokio::time::timeout(
            self.syncer.config.operation_timeout,
            stream::resync(&mut conn, &self.syncer.keys),
        )
        .await
        .unwrap_or(Err(RedisStoreError::TimedOut("resync")))
    }

    /// Stops the background tasks and waits for them to end; `check` fails
    /// closed from then on.
    pub async fn shutdown(&self) {
        self.tasks.stop().await;
        self.shared.stopped();
    }

    async fn write(&self, change: Change) -> Result<(), RevocationError> {
        let unavailable = |e: RedisStoreError| RevocationError::Unavailable(Box::new(e));
        if self.shared.is_stopped() {
            return Err(unavailable(RedisStoreError::ShutDown));
        }
        let config = &self.syncer.config;
        let now = self.syncer.clock.now().unix_timestamp();
        let absolute = config
            .lifetimes
            .absolute()
            .saturating_add(config.lifetimes.leeway())
            .whole_seconds();
        let mut conn = self.syncer.conn.clone();
        let position = tokio::time::timeout(
            config.operation_timeout,
            stream::write(&mut conn, &self.syncer.keys, &change, now, absolute),
        )
        .await
        .unwrap_or(Err(RedisStoreError::TimedOut("write")))
        .map_err(unavailable)?;
        if !self
            .shared
            .wait_applied(position, config.operation_timeout)
            .await
        {
            tracing::warn!(
                %position,
                "revocation written but not yet applied to this instance's cache; \
                 it will be at the next read of the stream"
            );
        }
        Ok(())
    }
}

#[async_trait]
impl RevocationStore for RedisRevocationStore {
    fn check<'a>(&self, query: RevocationQuery<'a>) -> Result<RevocationStatus, RevocationError> {
        self.shared
            .trust()
            .map_err(|e| RevocationError::Unavailable(Box::new(RedisStoreError::from(e))))?;
        Ok(self.shared.read_cache(|cache| cache.check(&query)))
    }

    async fn check_authoritative<'a>(
        &self,
        query: RevocationQuery<'a>,
    ) -> Result<RevocationStatus, RevocationError> {
        let unavailable = |e: RedisStoreError| RevocationError::Unavailable(Box::new(e));
        if self.shared.is_stopped() {
            return Err(unavailable(RedisStoreError::ShutDown));
        }
        let mut conn = self.syncer.conn.clone();
        let now = self.syncer.clock.now().unix_timestamp();
        let changes = tokio::time::timeout(
            self.syncer.config.operation_timeout,
            stream::about(
                &mut conn,
                &self.syncer.keys,
                query.session_id,
                query.user_id,
                query.tenant,
                now,
            ),
        )
        .await
        .unwrap_or(Err(RedisStoreError::TimedOut("check in state")))
        .map_err(unavailable)?;
        Ok(status_from(changes, &query))
    }

    async fn revoke_session(
        &self,
        session_id: SessionId,
        until: OffsetDateTime,
    ) -> Result<(), RevocationError> {
        self.write(Change::log_out(session_id, until, self.syncer.clock.now()))
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
