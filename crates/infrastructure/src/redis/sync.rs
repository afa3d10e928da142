//! The background work of [`RedisRevocationStore`](super::RedisRevocationStore):
//! following the stream into the cache, reloading, purging and trimming.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tessera_application::ports::Clock;
use tokio::sync::watch;

use super::config::RedisRevocationConfig;
use super::error::RedisStoreError;
use super::stream::{self, Entry, Keys, PAGE, StreamPosition};
use crate::revocation_state::RevocationState;
use crate::revocation_sync::{CleanUp, SyncState, TrustLog, next_retry};

/// The state a store and its tasks share; the sequence is a stream position.
pub(super) type Shared = SyncState<StreamPosition>;

/// The background work, with what it needs.
#[derive(Clone)]
pub(super) struct Syncer {
    pub(super) shared: Arc<Shared>,
    /// For loads, purges (and the store's writes): never blocked.
    pub(super) conn: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: Arc<RedisRevocationConfig>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Syncer {
    async fn timed<T>(
        &self,
        what: &'static str,
        op: impl Future<Output = Result<T, RedisStoreError>>,
    ) -> Result<T, RedisStoreError> {
        tokio::time::timeout(self.config.operation_timeout, op)
            .await
            .unwrap_or(Err(RedisStoreError::TimedOut(what)))
    }

    /// Replaces the cache with what can still matter to an unexpired token,
    /// and the stream position it reflects.
    pub(super) async fn load(&self) -> Result<(), RedisStoreError> {
        let started = self.shared.now_ms();
        let now = self.clock.now();
        let keep = self.config.keep(now);
        let mut conn = self.conn.clone();
        let (through, changes) = self
            .timed(
                "load",
                stream::snapshot(
                    &mut conn,
                    &self.keys,
                    keep.logouts_before(),
                    keep.watermarks_before(),
                ),
            )
            .await?;
        let mut state = RevocationState::default();
        for change in changes {
            keep.apply(&mut state, change);
        }
        let entries = state.len();
        self.shared.write_cache(|cache| *cache = state);
        self.shared.applied.send_replace(through);
        self.shared.full_reloads.fetch_add(1, Ordering::Relaxed);
        self.shared.mark_synced(started);
        tracing::debug!(entries, %through, "revocation cache loaded from Redis");
        Ok(())
    }

    /// One blocking read of the stream after the last applied entry, and
    /// what follows from it: entries applied, a reload if the stream was
    /// trimmed past us or a `resync` came; the cache marked in sync when the
    /// read reached the end.
    async fn step(&self, follower: &mut ConnectionManager) -> Result<(), RedisStoreError> {
        let started = self.shared.now_ms();
        let after = self.shared.applied_seq();
        let (entries, horizon) = self
            .timed(
                "read stream",
                stream::read_after(
                    follower,
                    &self.keys,
                    after,
                    self.config.heartbeat_interval(),
                ),
            )
            .await?;
        self.shared.connected.store(true, Ordering::Release);
        if horizon > after {
            tracing::info!(%after, %horizon, "revocation stream trimmed past this instance; reloading");
            return self.load().await;
        }
        let complete = entries.len() < PAGE;
        let keep = self.config.keep(self.clock.now());
        let mut resync = false;
        let mut last = after;
        self.shared.write_cache(|cache| {
            for (position, entry) in entries {
                match entry {
                    Entry::Change(change) => keep.apply(cache, change),
                    Entry::Resync => resync = true,
                }
                last = position;
            }
        });
        self.shared.applied.send_if_modified(|applied| {
            let moved = last > *applied;
            *applied = (*applied).max(last);
            moved
        });
        if resync {
            tracing::info!("revocation resync requested in the stream; reloading the cache");
            return self.load().await;
        }
        if complete {
            self.shared.mark_synced(started);
        }
        Ok(())
    }

    /// Follows the stream until stopped, on a connection of its own (its
    /// reads block).
    pub(super) async fn follow(
        self,
        mut follower: ConnectionManager,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut trust = TrustLog::default();
        let mut retry: Option<Duration> = None;
        loop {
            let step = tokio::select! {
                biased;
                _ = stop.changed() => break,
                step = self.step(&mut follower) => step,
            };
            retry = match step {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "revocation stream could not be read"
                    );
                    if self.shared.connected.swap(false, Ordering::AcqRel) {
                        self.shared.reconnections.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(next_retry(
                        retry,
                        self.config.backoff_min,
                        self.config.heartbeat_interval(),
                    ))
                }
            };
            trust.note(self.shared.trust().is_ok());
            if let Some(wait) = retry {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
        self.shared.connected.store(false, Ordering::Release);
    }

    /// Drops from the cache what no unexpired token can need, from the
    /// indexes what no starting instance needs, and trims the stream.
    pub(super) async fn purge(&self) {
        let now = self.clock.now();
        let keep = self.config.keep(now);
        self.shared.write_cache(|cache| keep.purge(cache));
        let mut conn = self.conn.clone();
        let result = self
            .timed(
                "purge",
                stream::purge(
                    &mut conn,
                    &self.keys,
                    keep.logouts_before(),
                    keep.watermarks_before(),
                    self.config.log_retention,
                ),
            )
            .await;
        match result {
            Ok(trimmed) => tracing::debug!(trimmed, "revocation stream trimmed"),
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                "revocation state could not be purged"
            ),
        }
    }
}

impl CleanUp for Syncer {
    fn clean_up(&self) -> impl Future<Output = ()> + Send {
        self.purge()
    }
}
