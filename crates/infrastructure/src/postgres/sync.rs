//! The background work of [`PostgresRevocationStore`](super::PostgresRevocationStore):
//! reading the change log into the cache, listening for "something is new",
//! reconnecting, purging and compacting.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tessera_application::ports::Clock;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::config::{PostgresRevocationConfig, SyncMode};
use super::error::PostgresStoreError;
use super::log::{self, Entry, SnapshotFilter};
use super::shared::Shared;
use crate::memory::purge_horizon;
use crate::revocation_state::RevocationState;
use crate::revocation_sync::{CleanUp, TrustLog, next_retry};

/// The background work, with what it needs.
#[derive(Clone)]
pub(super) struct Syncer {
    shared: Arc<Shared>,
    pool: PgPool,
    clock: Arc<dyn Clock>,
    config: Arc<PostgresRevocationConfig>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Syncer {
    pub(super) fn new(
        shared: Arc<Shared>,
        pool: PgPool,
        clock: Arc<dyn Clock>,
        config: Arc<PostgresRevocationConfig>,
    ) -> Self {
        Self {
            shared,
            pool,
            clock,
            config,
        }
    }

    async fn timed<T>(
        &self,
        what: &'static str,
        op: impl Future<Output = Result<T, PostgresStoreError>>,
    ) -> Result<T, PostgresStoreError> {
        tokio::time::timeout(self.config.operation_timeout, op)
            .await
            .unwrap_or(Err(PostgresStoreError::TimedOut(what)))
    }

    /// Replaces the cache with what the tables hold that can still matter
    /// to an unexpired token, and the sequence they reflect.
    pub(super) async fn load(&self) -> Result<(), PostgresStoreError> {
        let started = self.shared.now_ms();
        let now = self.clock.now();
        let keep = self.config.keep(now);
        let at = |second| log::from_seconds(second).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let filter = SnapshotFilter {
            now,
            logged_out_after: at(keep.logouts_before()),
            watermarks_after: at(keep.watermarks_before()),
        };
        let mut state = RevocationState::default();
        // The whole load gets the operation timeout once per page it may
        // read, so that large tables still load (and a dead server does not
        // hang it).
        let through = tokio::time::timeout(
            self.config.operation_timeout.saturating_mul(8),
            log::snapshot(&self.pool, self.config.statements(), filter, |change| {
                keep.apply(&mut state, change)
            }),
        )
        .await
        .unwrap_or(Err(PostgresStoreError::TimedOut("load")))?;
        let entries = state.len();
        self.shared.write_cache(|cache| *cache = state);
        self.shared.applied.send_replace(through);
        self.shared.full_reloads.fetch_add(1, Ordering::Relaxed);
        self.shared.mark_synced(started);
        tracing::debug!(entries, through, "revocation cache loaded");
        Ok(())
    }

    /// Reads the log after the last applied change until its end and
    /// applies it; reloads from the tables when the log no longer reaches
    /// back that far (or a `resync` row asks). While this runs, `check`
    /// keeps answering from the cache (within the staleness bound).
    pub(super) async fn catch_up(&self) -> Result<(), PostgresStoreError> {
        loop {
            let started = self.shared.now_ms();
            let after = self.shared.applied_seq();
            let page = self
                .timed(
                    "read log",
                    log::read_after(&self.pool, self.config.statements(), after),
                )
                .await?;
            if page.compacted_through > after {
                tracing::info!(
                    applied = after,
                    compacted_through = page.compacted_through,
                    "revocation log compacted past this instance; reloading"
                );
                self.load().await?;
                continue;
            }
            let full = page.entries.len() >= usize::try_from(log::PAGE).unwrap_or(usize::MAX);
            let keep = self.config.keep(self.clock.now());
            let mut resync = false;
            let mut last = after;
            self.shared.write_cache(|cache| {
                for (seq, entry) in page.entries {
                    match entry {
                        Entry::Change(change) => keep.apply(cache, change),
                        Entry::Resync => resync = true,
                    }
                    last = seq;
                }
            });
            self.shared.applied.send_if_modified(|applied| {
                let moved = last > *applied;
                *applied = (*applied).max(last);
                moved
            });
            if resync {
                tracing::info!("revocation resync requested in the log; reloading the cache");
                self.load().await?;
                continue;
            }
            if !full {
                self.shared.mark_synced(started);
                return Ok(());
            }
        }
    }

    /// Reads the log whenever woken and at least every read interval,
    /// until stopped.
    pub(super) async fn follow(self, mut stop: watch::Receiver<bool>) {
        let mut trust = TrustLog::default();
        // After a failed read, the next comes sooner than the read interval,
        // so that a database back from an outage is read soon.
        let mut retry: Option<Duration> = None;
        loop {
            let wait = retry.unwrap_or(self.config.read_interval());
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                () = self.shared.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            let read = self.catch_up().await;
            retry = match read {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "revocation log could not be read"
                    );
                    Some(next_retry(
                        retry,
                        self.config.backoff_min,
                        self.config.read_interval(),
                    ))
                }
            };
            trust.note(self.shared.trust().is_ok());
        }
    }

    /// A new listening connection, `LISTEN`ing on the channel.
    pub(super) async fn connect(&self) -> Result<PgListener, PostgresStoreError> {
        let options = (*self.pool.connect_options())
            .clone()
            .application_name(&self.config.application_name);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(self.config.operation_timeout)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        let mut listener = self
            .timed("listener connect", async {
                Ok(PgListener::connect_with(&pool).await?)
            })
            .await?;
        // Reconnection is ours to do, with backoff.
        listener.eager_reconnect(false);
        self.timed("listen", async {
            Ok(listener.listen(&self.config.channel).await?)
        })
        .await?;
        self.shared.connected.store(true, Ordering::Release);
        Ok(listener)
    }

    /// Wakes the log reader on every notification, whatever it says, until
    /// stopped; replaces the connection whenever it is lost.
    pub(super) async fn listen(self, mut listener: PgListener, mut stop: watch::Receiver<bool>) {
        tracing::info!(channel = %self.config.channel, "revocation listener connected");
        loop {
            let Some(lost) = self.receive(&mut listener, &mut stop).await else {
                break;
            };
            self.shared.connected.store(false, Ordering::Release);
            tracing::warn!(
                error = &lost as &dyn std::error::Error,
                "revocation listener lost; reconnecting"
            );
            drop(listener);
            match self.reconnect(&mut stop).await {
                Some(l) => listener = l,
                None => break,
            }
            // Whatever was notified meanwhile is in the log.
            self.shared.wake.notify_one();
        }
        self.shared.connected.store(false, Ordering::Release);
        tracing::info!("revocation listener stopped");
    }

    /// `None` when stopped, otherwise why the listener must be replaced.
    async fn receive(
        &self,
        listener: &mut PgListener,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<PostgresStoreError> {
        let quiet = self.config.heartbeat_interval();
        loop {
            // A notification lost to this select's cancellation costs at most
            // one read interval of delay: the log is read on every tick anyway.
            let next = tokio::select! {
                biased;
                _ = stop.changed() => return None,
                next = listener.try_recv() => next,
                () = tokio::time::sleep(quiet) => {
                    // Quiet for a while: is the connection still there?
                    let alive = self
                        .timed("listener liveness", async {
                            Ok(sqlx::query("SELECT 1").execute(&mut *listener).await?)
                        })
                        .await;
                    match alive {
                        Ok(_) => continue,
                        Err(e) => return Some(e),
                    }
                }
            };
            match next {
                Ok(Some(_)) => self.shared.wake.notify_one(),
                Ok(None) => return Some(PostgresStoreError::ListenerClosed),
                Err(e) => return Some(PostgresStoreError::Database(e)),
            }
        }
    }

    /// Reconnects with backoff; `None` when stopped first.
    async fn reconnect(&self, stop: &mut watch::Receiver<bool>) -> Option<PgListener> {
        let mut backoff = self.config.backoff_min;
        loop {
            let attempt = tokio::select! {
                biased;
                _ = stop.changed() => return None,
                attempt = self.connect() => attempt,
            };
            match attempt {
                Ok(listener) => {
                    let n = self.shared.reconnections.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::info!(reconnections = n, "revocation listener reconnected");
                    return Some(listener);
                }
                Err(e) => tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    retry_in = ?backoff,
                    "revocation listener could not reconnect"
                ),
            }
            tokio::select! {
                biased;
                _ = stop.changed() => return None,
                () = tokio::time::sleep(jitter(backoff)) => {}
            }
            backoff = backoff.saturating_mul(2).min(self.config.backoff_max);
        }
    }

    /// Drops from the cache what can no longer matter to an unexpired
    /// token; deletes from the tables what can no longer matter at all; and
    /// compacts the log.
    pub(super) async fn purge(&self) {
        let now = self.clock.now();
        let keep = self.config.keep(now);
        self.shared.write_cache(|cache| keep.purge(cache));
        let horizon = log::from_seconds(purge_horizon(now, &self.config.lifetimes))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let result = async {
            let statements = self.config.statements();
            let rows = self
                .timed(
                    "purge tables",
                    log::purge(&self.pool, statements, now, horizon),
                )
                .await?;
            let compacted = self
                .timed(
                    "compact log",
                    log::compact(&self.pool, statements, self.config.log_retention),
                )
                .await?;
            Ok::<_, PostgresStoreError>((rows, compacted))
        }
        .await;
        match result {
            Ok(((sessions, watermarks), compacted)) => {
                tracing::debug!(sessions, watermarks, compacted, "revocations purged");
            }
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                "expired revocations could not be purged"
            ),
        }
    }

    /// Whether this configuration listens.
    pub(super) fn listens(&self) -> bool {
        self.config.mode == SyncMode::Listen
    }
}

impl CleanUp for Syncer {
    fn clean_up(&self) -> impl Future<Output = ()> + Send {
        self.purge()
    }
}

/// A wait between half and all of `d`, so that instances cut off together
/// do not all reconnect at once.
fn jitter(d: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    // `random % 1000` is below 1000, so the factor is in [0.5, 1).
    d.mul_f64(0.5 + (random % 1000) as f64 / 2000.0)
}
