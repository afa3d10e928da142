//! The background work of [`PostgresRevocationStore`](super::PostgresRevocationStore):
//! listening, heartbeats, reconnection, reloads and purges.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tessera_application::ports::Clock;
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::payload::{self, Change, Message};
use super::revocation::{PostgresRevocationConfig, PostgresStoreError, SyncHealth, from_seconds};
use crate::memory::{RevocationState, purge_horizon};

/// "Never synced" in [`Shared::synced_ms`].
const NEVER: u64 = u64::MAX;

/// What the store and its background task share.
#[derive(Debug)]
pub(super) struct Shared {
    cache: RwLock<RevocationState>,
    /// The instant the millisecond counters count from.
    base: Instant,
    /// When the cache was last confirmed in sync, in ms since `base`.
    synced_ms: AtomicU64,
    staleness_ms: u64,
    connected: AtomicBool,
    stopped: AtomicBool,
    reconnections: AtomicU64,
    origin: Uuid,
    channel: String,
    next_op: AtomicU64,
    pub(super) acks: Acks,
}

impl Shared {
    pub(super) fn new(config: &PostgresRevocationConfig) -> Self {
        Self {
            cache: RwLock::new(RevocationState::default()),
            base: Instant::now(),
            synced_ms: AtomicU64::new(NEVER),
            staleness_ms: millis(config.staleness_bound),
            connected: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            reconnections: AtomicU64::new(0),
            origin: Uuid::now_v7(),
            channel: config.channel.clone(),
            next_op: AtomicU64::new(1),
            acks: Acks::default(),
        }
    }

    pub(super) fn origin(&self) -> Uuid {
        self.origin
    }

    pub(super) fn channel(&self) -> &str {
        &self.channel
    }

    pub(super) fn next_op(&self) -> u64 {
        self.next_op.fetch_add(1, Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        millis(self.base.elapsed())
    }

    fn mark_synced(&self) {
        self.synced_ms.store(self.now_ms(), Ordering::Release);
    }

    /// Ok when the cache can be trusted; otherwise why not. The hot path:
    /// two atomic loads and a monotonic clock read.
    pub(super) fn trust(&self) -> Result<(), PostgresStoreError> {
        let synced = self.synced_ms.load(Ordering::Acquire);
        if synced != NEVER && self.now_ms().saturating_sub(synced) <= self.staleness_ms {
            return Ok(());
        }
        if self.is_stopped() {
            return Err(PostgresStoreError::ShutDown);
        }
        Err(PostgresStoreError::Stale {
            since: self
                .last_synced_at()
                .map(|at| Instant::now().saturating_duration_since(at)),
        })
    }

    pub(super) fn last_synced_at(&self) -> Option<Instant> {
        match self.synced_ms.load(Ordering::Acquire) {
            NEVER => None,
            ms => self.base.checked_add(Duration::from_millis(ms)),
        }
    }

    pub(super) fn read_cache<T>(&self, read: impl FnOnce(&RevocationState) -> T) -> T {
        read(&self.cache.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write_cache(&self, write: impl FnOnce(&mut RevocationState)) {
        // Every change is one insert, update or remove, or a whole swap: a
        // panic elsewhere cannot leave the state half-written.
        write(&mut self.cache.write().unwrap_or_else(PoisonError::into_inner));
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(super) fn stopped(&self) {
        self.stopped.store(true, Ordering::Release);
        self.connected.store(false, Ordering::Release);
        self.synced_ms.store(NEVER, Ordering::Release);
    }

    pub(super) fn health(&self) -> SyncHealth {
        SyncHealth {
            last_synced_at: self.last_synced_at(),
            trusted: self.trust().is_ok(),
            connected: self.connected.load(Ordering::Acquire),
            reconnections: self.reconnections.load(Ordering::Relaxed),
            entries: self.read_cache(RevocationState::len),
        }
    }
}

/// Whole milliseconds, in 64-bit arithmetic (this is on the hot path).
fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
        .min(NEVER - 1)
}

/// Writers waiting for their own change to reach the cache.
#[derive(Debug, Default)]
pub(super) struct Acks {
    waiters: Mutex<HashMap<u64, Waiter>>,
}

#[derive(Debug)]
struct Waiter {
    committed: bool,
    done: oneshot::Sender<()>,
}

impl Acks {
    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiter>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers write `op` before it is sent; the receiver completes when
    /// the cache has it.
    pub(super) fn register(&self, op: u64) -> oneshot::Receiver<()> {
        let (done, applied) = oneshot::channel();
        self.waiters().insert(
            op,
            Waiter {
                committed: false,
                done,
            },
        );
        applied
    }

    /// Write `op` is committed: a reload from now on includes it.
    pub(super) fn committed(&self, op: u64) {
        if let Some(w) = self.waiters().get_mut(&op) {
            w.committed = true;
        }
    }

    pub(super) fn forget(&self, op: u64) {
        self.waiters().remove(&op);
    }

    fn ack(&self, op: u64) {
        if let Some(w) = self.waiters().remove(&op) {
            let _ = w.done.send(());
        }
    }

    fn committed_ops(&self) -> Vec<u64> {
        self.waiters()
            .iter()
            .filter_map(|(op, w)| w.committed.then_some(*op))
            .collect()
    }
}

/// Why the listener is being replaced.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("listening connection closed")]
    Closed,
    #[error("listening connection failed")]
    Failed(#[source] sqlx::Error),
    #[error("no notification, not even a heartbeat, for {0:?}")]
    Silent(Duration),
    #[error("resynchronisation requested but the reload failed")]
    Reload(#[source] PostgresStoreError),
}

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
        config: PostgresRevocationConfig,
    ) -> Self {
        Self {
            shared,
            pool,
            clock,
            config: Arc::new(config),
        }
    }

    async fn timed<T>(
        &self,
        what: &'static str,
        op: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, PostgresStoreError> {
        match tokio::time::timeout(self.config.operation_timeout, op).await {
            Ok(result) => result.map_err(PostgresStoreError::Database),
            Err(_) => Err(PostgresStoreError::TimedOut(what)),
        }
    }

    /// A new listening connection, `LISTEN`ing, and the cache reloaded
    /// after it (so nothing committed in between is missed).
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
            .timed("listener connect", PgListener::connect_with(&pool))
            .await?;
        // Reconnection is ours to do, with backoff and a reload.
        listener.eager_reconnect(false);
        self.timed("listen", listener.listen(&self.config.channel))
            .await?;
        let committed = self.shared.acks.committed_ops();
        self.reload().await?;
        self.shared.connected.store(true, Ordering::Release);
        self.shared.mark_synced();
        for op in committed {
            self.shared.acks.ack(op);
        }
        Ok(listener)
    }

    /// Replaces the cache with what the tables hold that can still matter.
    async fn reload(&self) -> Result<(), PostgresStoreError> {
        let now = self.clock.now();
        let horizon = horizon_timestamp(now, &self.config.lifetimes);
        let sessions: Vec<(Uuid, OffsetDateTime)> = self
            .timed(
                "load session logouts",
                sqlx::query_as(
                    "SELECT session_id, until FROM tessera_session_logouts WHERE until > $1",
                )
                .bind(now)
                .fetch_all(&self.pool),
            )
            .await?;
        let watermarks: Vec<(String, String, String, OffsetDateTime)> = self
            .timed(
                "load watermarks",
                sqlx::query_as(
                    "SELECT kind, scope, subject, at FROM tessera_watermarks WHERE at > $1",
                )
                .bind(horizon)
                .fetch_all(&self.pool),
            )
            .await?;
        let mut state = RevocationState::default();
        for (session_id, until) in sessions {
            let session_id = tessera_domain::SessionId::from_uuid(session_id).map_err(|_| {
                PostgresStoreError::InvalidRow("tessera_session_logouts.session_id")
            })?;
            state.log_out(session_id, until);
        }
        for (kind, scope, subject, at) in watermarks {
            let kind = payload::parse_kind(&kind)
                .ok_or(PostgresStoreError::InvalidRow("tessera_watermarks.kind"))?;
            let scope = payload::parse_scope(&scope, &subject).ok_or(
                PostgresStoreError::InvalidRow("tessera_watermarks.scope/subject"),
            )?;
            state.raise(scope, kind, at.unix_timestamp());
        }
        let entries = state.len();
        self.shared.write_cache(|cache| *cache = state);
        tracing::debug!(entries, "revocation cache loaded");
        Ok(())
    }

    fn apply(&self, change: Change) {
        self.shared.write_cache(|cache| match change {
            Change::LogOut { session_id, until } => {
                if let Ok(until) = from_seconds(until) {
                    cache.log_out(session_id, until);
                }
            }
            Change::Raise { scope, kind, at } => cache.raise(scope, kind, at),
            Change::Clear { scope, kind } => cache.clear(scope, kind),
        });
    }

    /// Handles one notification; an error means the cache may have missed
    /// something.
    async fn on_notification(&self, text: &str) -> Result<(), Lost> {
        match payload::decode(text) {
            Message::Change { origin, op, change } => {
                self.apply(change);
                if origin == self.shared.origin {
                    self.shared.acks.ack(op);
                }
            }
            Message::Ping => {}
            Message::Resync => {
                tracing::info!("revocation resync requested; reloading the cache");
                let committed = self.shared.acks.committed_ops();
                self.reload().await.map_err(Lost::Reload)?;
                for op in committed {
                    self.shared.acks.ack(op);
                }
            }
        }
        self.shared.mark_synced();
        Ok(())
    }

    /// Applies notifications until stopped; reconnects whenever the
    /// listener is lost.
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
        }
        self.shared.stopped();
        tracing::info!("revocation listener stopped");
    }

    /// `None` when stopped, otherwise why the listener must be replaced.
    async fn receive(
        &self,
        listener: &mut PgListener,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Lost> {
        let silence = self.config.heartbeat_interval() * 3;
        loop {
            // `try_recv` is only ever cancelled when the listener is about
            // to be dropped (stop or silence), so no message is lost to it.
            let next = tokio::select! {
                biased;
                _ = stop.changed() => return None,
                next = listener.try_recv() => next,
                () = tokio::time::sleep(silence) => return Some(Lost::Silent(silence)),
            };
            let result = match next {
                Ok(Some(n)) => self.on_notification(n.payload()).await,
                Ok(None) => Err(Lost::Closed),
                Err(e) => Err(Lost::Failed(e)),
            };
            if let Err(lost) = result {
                return Some(lost);
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
                    tracing::info!(
                        reconnections = n,
                        "revocation listener reconnected; cache reloaded"
                    );
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

    /// Pings the channel and purges expired entries, until stopped.
    pub(super) async fn maintain(self, mut stop: watch::Receiver<bool>) {
        let mut ping = tokio::time::interval(self.config.heartbeat_interval());
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(self.config.purge_interval);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let note = payload::encode_ping(self.shared.origin);
        let mut was_trusted = true;
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = ping.tick() => {
                    let sent = self
                        .timed(
                            "heartbeat",
                            sqlx::query("SELECT pg_notify($1, $2)")
                                .bind(&self.config.channel)
                                .bind(&note)
                                .execute(&self.pool),
                        )
                        .await;
                    if let Err(e) = sent {
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "revocation heartbeat could not be sent"
                        );
                    }
                    let trusted = self.shared.trust().is_ok();
                    if was_trusted && !trusted {
                        tracing::error!(
                            "revocation cache is stale past its bound; verification fails closed"
                        );
                    } else if !was_trusted && trusted {
                        tracing::info!("revocation cache is in sync again; verification resumes");
                    }
                    was_trusted = trusted;
                }
                _ = purge.tick() => self.purge().await,
            }
        }
    }

    /// Deletes expired rows and drops expired cache entries.
    async fn purge(&self) {
        let now = self.clock.now();
        self.shared
            .write_cache(|cache| cache.purge(now, &self.config.lifetimes));
        let horizon = horizon_timestamp(now, &self.config.lifetimes);
        let result = async {
            let sessions = self
                .timed(
                    "purge session logouts",
                    sqlx::query("DELETE FROM tessera_session_logouts WHERE until <= $1")
                        .bind(now)
                        .execute(&self.pool),
                )
                .await?
                .rows_affected();
            let watermarks = self
                .timed(
                    "purge watermarks",
                    sqlx::query("DELETE FROM tessera_watermarks WHERE at IS NULL OR at <= $1")
                        .bind(horizon)
                        .execute(&self.pool),
                )
                .await?
                .rows_affected();
            Ok::<_, PostgresStoreError>((sessions, watermarks))
        }
        .await;
        match result {
            Ok((sessions, watermarks)) => {
                tracing::debug!(sessions, watermarks, "expired revocations purged");
            }
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                "expired revocations could not be purged"
            ),
        }
    }
}

/// [`purge_horizon`] as a timestamp; off the calendar, the Unix epoch, which
/// makes loads keep more and purges delete less, never the reverse.
fn horizon_timestamp(
    now: OffsetDateTime,
    lifetimes: &tessera_domain::SessionLifetimes,
) -> OffsetDateTime {
    from_seconds(purge_horizon(now, lifetimes)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A wait between half and all of `d`, so that instances cut off together
/// do not all reconnect at once.
fn jitter(d: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    // `random % 1000` is below 1000, so the factor is in [0.5, 1).
    d.mul_f64(0.5 + (random % 1000) as f64 / 2000.0)
}
