//! What the shared revocation stores (PostgreSQL, Redis) have in common
//! around their local cache: the changes they apply, what the cache keeps,
//! and the state their background tasks share with the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use tessera_application::ports::{
    RevocationQuery, RevocationStatus, WatermarkKind, WatermarkScope,
};
use tessera_domain::{SessionId, SessionLifetimes};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use crate::revocation_state::RevocationState;

/// "Never synced" in [`SyncState::synced_ms`].
const NEVER: u64 = u64::MAX;

/// The longest wait between two failed reads of a change log: a store
/// back from an outage is read within this.
pub(crate) const RETRY_CAP: Duration = Duration::from_millis(500);

/// One change to the revocation state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A session is logged out until `until`, since `at` (Unix seconds).
    LogOut {
        session_id: SessionId,
        until: i64,
        at: i64,
    },
    /// A watermark is raised to `at` (Unix seconds).
    Raise {
        scope: WatermarkScope,
        kind: WatermarkKind,
        at: i64,
    },
    /// A watermark is cleared.
    Clear {
        scope: WatermarkScope,
        kind: WatermarkKind,
    },
}

impl Change {
    /// A logout of `session_id` until `until`, written at `now`.
    pub(crate) fn log_out(
        session_id: SessionId,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Self {
        Self::LogOut {
            session_id,
            until: crate::memory::ceil_seconds(until),
            at: now.unix_timestamp(),
        }
    }

    /// A watermark raised to `at`.
    pub(crate) fn raise(scope: WatermarkScope, kind: WatermarkKind, at: OffsetDateTime) -> Self {
        Self::Raise {
            scope,
            kind,
            at: at.unix_timestamp(),
        }
    }
}

/// What a session's standing is, given every change the authoritative
/// state holds about it (its logout, and the watermarks of its user, tenant
/// and everyone): the same rules as the caches, over all of it.
pub(crate) fn status_from(changes: Vec<Change>, query: &RevocationQuery<'_>) -> RevocationStatus {
    let mut state = RevocationState::default();
    for change in changes {
        match change {
            Change::LogOut { session_id, .. } => state.log_out(&session_id, i64::MAX),
            Change::Raise { scope, kind, at } => state.raise(scope, kind, at),
            Change::Clear { .. } => {}
        }
    }
    state.check(query)
}

/// How long after its event a logout or watermark can still matter to a
/// token that can be unexpired: one token lifetime and the leeway.
pub(crate) fn token_horizon(lifetimes: &SessionLifetimes) -> time::Duration {
    lifetimes.token().saturating_add(lifetimes.leeway())
}

/// How long after it was written a cache keeps a session logout: the token
/// horizon, plus the staleness bound and the operation timeout.
///
/// Why the extra: an instance that has not yet seen a logout (it may be up
/// to the staleness bound behind, and the write itself may take up to the
/// operation timeout to commit) can still rotate the session, issuing a
/// token after the logout's time. Every such token is issued before the
/// logout's time plus that margin, so it has expired by the time the cache
/// forgets the logout. (Rotation also asks the store through
/// `check_authoritative`.)
pub(crate) fn logout_retention(
    lifetimes: &SessionLifetimes,
    staleness_bound: Duration,
    operation_timeout: Duration,
) -> time::Duration {
    let margin = staleness_bound.saturating_add(operation_timeout);
    token_horizon(lifetimes)
        .saturating_add(time::Duration::try_from(margin).unwrap_or(time::Duration::MAX))
}

/// The wait before the next read after a failed one: from `min`, doubling
/// up to `interval` (at most [`RETRY_CAP`]).
pub(crate) fn next_retry(
    previous: Option<Duration>,
    min: Duration,
    interval: Duration,
) -> Duration {
    match previous {
        None => min,
        Some(r) => r.saturating_mul(2).min(RETRY_CAP.min(interval)),
    }
}

/// Logs when a cache stops or starts being trusted.
#[derive(Debug)]
pub(crate) struct TrustLog {
    was_trusted: bool,
}

impl Default for TrustLog {
    fn default() -> Self {
        Self { was_trusted: true }
    }
}

impl TrustLog {
    /// Notes whether the cache is trusted now.
    pub(crate) fn note(&mut self, trusted: bool) {
        if self.was_trusted && !trusted {
            tracing::error!("revocation cache is stale past its bound; verification fails closed");
        } else if !self.was_trusted && trusted {
            tracing::info!("revocation cache is in sync again; verification resumes");
        }
        self.was_trusted = trusted;
    }
}

/// What a cache keeps, as of one instant (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep {
    now: i64,
    logout_retention: i64,
    watermark_horizon: i64,
}

impl Keep {
    /// At `now`: logouts for [`logout_retention`] after they were written
    /// (and never past their end), watermarks for [`token_horizon`] after
    /// their time.
    pub(crate) fn at(
        now: OffsetDateTime,
        lifetimes: &SessionLifetimes,
        staleness_bound: Duration,
        operation_timeout: Duration,
    ) -> Self {
        Self {
            now: now.unix_timestamp(),
            logout_retention: logout_retention(lifetimes, staleness_bound, operation_timeout)
                .whole_seconds(),
            watermark_horizon: now
                .checked_sub(token_horizon(lifetimes))
                .map_or(i64::MIN, OffsetDateTime::unix_timestamp),
        }
    }

    /// The Unix second at or before which a logout was written too long ago
    /// to be kept.
    pub(crate) fn logouts_before(&self) -> i64 {
        self.now.saturating_sub(self.logout_retention)
    }

    /// The Unix second at or before which a watermark is too old to be kept.
    pub(crate) fn watermarks_before(&self) -> i64 {
        self.watermark_horizon
    }

    /// Applies `change` to `cache`, leaving out what can no longer matter to
    /// an unexpired token.
    pub(crate) fn apply(&self, cache: &mut RevocationState, change: Change) {
        match change {
            Change::LogOut {
                session_id,
                until,
                at,
            } => {
                let keep_until = until.min(at.saturating_add(self.logout_retention));
                if keep_until > self.now {
                    cache.log_out(&session_id, keep_until);
                }
            }
            Change::Raise { scope, kind, at } => {
                if at > self.watermark_horizon {
                    cache.raise(scope, kind, at);
                }
            }
            Change::Clear { scope, kind } => cache.clear(&scope, kind),
        }
    }

    /// Drops from `cache` what can no longer matter.
    pub(crate) fn purge(&self, cache: &mut RevocationState) {
        cache.purge(self.now, self.watermark_horizon);
    }
}

/// A snapshot of a shared store's synchronisation, for health checks and
/// metrics.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SyncHealth<S = i64> {
    /// When the cache was last confirmed in sync with the log: the start of
    /// the last read that reached its end.
    pub last_synced_at: Option<Instant>,
    /// Whether [`check`](tessera_application::ports::RevocationStore::check)
    /// answers (or fails closed).
    pub trusted: bool,
    /// Whether the connection that wakes the reader is up (PostgreSQL: the
    /// `LISTEN`ing one, always `false` when polling; Redis: the one blocked
    /// on the stream).
    pub connected: bool,
    /// How many times that connection was replaced.
    pub reconnections: u64,
    /// How many times the cache was loaded whole: once at start, then only
    /// when the log was compacted past what this instance had applied, or a
    /// `resync` entry asked for it.
    pub full_reloads: u64,
    /// The position in the change log of the last change applied (the
    /// PostgreSQL log's `seq`, a Redis stream's entry id).
    pub applied_seq: S,
    /// How many logouts and watermarks the cache holds.
    pub entries: usize,
}

/// Why the cache cannot be trusted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Distrust {
    /// Not confirmed in sync within the staleness bound; how long ago it
    /// last was (`None` if never).
    Stale(Option<Duration>),
    /// The store was shut down.
    ShutDown,
}

/// What a shared store and its background tasks share: the cache, when it
/// was last in sync, the last change applied (a sequence of type `S`), and
/// the signals between them.
#[derive(Debug)]
pub(crate) struct SyncState<S> {
    cache: RwLock<RevocationState>,
    /// The instant the millisecond counters count from.
    base: Instant,
    /// When the cache was last confirmed in sync, in ms since `base`.
    synced_ms: AtomicU64,
    staleness_ms: u64,
    pub(crate) connected: AtomicBool,
    stopped: AtomicBool,
    pub(crate) reconnections: AtomicU64,
    pub(crate) full_reloads: AtomicU64,
    /// The last sequence applied; writers wait on it for their own change.
    pub(crate) applied: watch::Sender<S>,
    /// Wakes the log reader (a notification, a local write, a reconnect).
    // Only the PostgreSQL store wakes its reader; the Redis follower is
    // woken by its blocking read.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) wake: Notify,
}

impl<S: Clone + Default> SyncState<S> {
    pub(crate) fn new(staleness_bound: Duration) -> Self {
        Self {
            cache: RwLock::new(RevocationState::default()),
            base: Instant::now(),
            synced_ms: AtomicU64::new(NEVER),
            staleness_ms: millis(staleness_bound),
            connected: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            reconnections: AtomicU64::new(0),
            full_reloads: AtomicU64::new(0),
            applied: watch::Sender::new(S::default()),
            wake: Notify::new(),
        }
    }

    /// Now, in ms since `base`.
    pub(crate) fn now_ms(&self) -> u64 {
        millis(self.base.elapsed())
    }

    /// The cache holds everything committed before `started_ms` (a read
    /// that began then reached the end of the log).
    pub(crate) fn mark_synced(&self, started_ms: u64) {
        if self.is_stopped() {
            return;
        }
        let _ = self
            .synced_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                (old == NEVER || old < started_ms).then_some(started_ms)
            });
    }

    /// Ok when the cache can be trusted; otherwise why not. The hot path:
    /// two atomic loads and a monotonic clock read.
    pub(crate) fn trust(&self) -> Result<(), Distrust> {
        let synced = self.synced_ms.load(Ordering::Acquire);
        if synced != NEVER && self.now_ms().saturating_sub(synced) <= self.staleness_ms {
            return Ok(());
        }
        if self.is_stopped() {
            return Err(Distrust::ShutDown);
        }
        Err(Distrust::Stale(
            self.last_synced_at()
                .map(|at| Instant::now().saturating_duration_since(at)),
        ))
    }

    pub(crate) fn last_synced_at(&self) -> Option<Instant> {
        match self.synced_ms.load(Ordering::Acquire) {
            NEVER => None,
            ms => self.base.checked_add(Duration::from_millis(ms)),
        }
    }

    pub(crate) fn read_cache<T>(&self, read: impl FnOnce(&RevocationState) -> T) -> T {
        read(&self.cache.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn write_cache<T>(&self, write: impl FnOnce(&mut RevocationState) -> T) -> T {
        // Every change is one insert, update or remove, or a whole swap: a
        // panic elsewhere cannot leave the state half-written.
        write(&mut self.cache.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// The last sequence applied.
    pub(crate) fn applied_seq(&self) -> S {
        self.applied.borrow().clone()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn stopped(&self) {
        self.stopped.store(true, Ordering::Release);
        self.connected.store(false, Ordering::Release);
        self.synced_ms.store(NEVER, Ordering::Release);
    }

    /// The session's standing from the cache, if the cache can be trusted:
    /// the hot path.
    pub(crate) fn check(&self, query: &RevocationQuery<'_>) -> Result<RevocationStatus, Distrust> {
        self.trust()?;
        Ok(self.read_cache(|cache| cache.check(query)))
    }

    /// Waits (at most `timeout`) until the change at `position` has been
    /// applied; whether it was.
    pub(crate) async fn wait_applied(&self, position: S, timeout: Duration) -> bool
    where
        S: PartialOrd,
    {
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(timeout, applied.wait_for(|a| *a >= position))
            .await
            .is_ok()
    }

    /// A snapshot for health checks.
    pub(crate) fn health(&self) -> SyncHealth<S> {
        SyncHealth {
            last_synced_at: self.last_synced_at(),
            trusted: self.trust().is_ok(),
            connected: self.connected.load(Ordering::Acquire),
            reconnections: self.reconnections.load(Ordering::Relaxed),
            full_reloads: self.full_reloads.load(Ordering::Relaxed),
            applied_seq: self.applied_seq(),
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

/// A shared store's periodic clean-up: what no unexpired token can need,
/// from its cache and its tables or stream.
pub(crate) trait CleanUp: Send + Sync + 'static {
    /// Runs one clean-up; failures are logged, not returned (the next one
    /// tries again).
    fn clean_up(&self) -> impl Future<Output = ()> + Send;
}

/// Runs `store`'s clean-up every `interval` until `stop` changes.
pub(crate) async fn clean_up_every(
    store: impl CleanUp,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = ticks.tick() => store.clean_up().await,
        }
    }
}

/// The background tasks of a shared store: stopped together by
/// [`stop`](Self::stop), aborted when dropped.
#[derive(Debug)]
pub(crate) struct Tasks {
    stop: watch::Sender<bool>,
    handles: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Tasks {
    /// No tasks yet, and the signal they watch to stop.
    pub(crate) fn new() -> (Self, watch::Receiver<bool>) {
        let (stop, stopped) = watch::channel(false);
        let tasks = Self {
            stop,
            handles: std::sync::Mutex::new(Vec::new()),
        };
        (tasks, stopped)
    }

    /// Runs `task` on the current tokio runtime.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }

    /// Tells every task to stop and waits for them to end.
    pub(crate) async fn stop(&self) {
        let _ = self.stop.send(true);
        let handles =
            std::mem::take(&mut *self.handles.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in handles {
            let _ = handle.await;
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for handle in self
            .handles
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            handle.abort();
        }
    }
}
