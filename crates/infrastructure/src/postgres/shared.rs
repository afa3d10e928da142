//! What a [`PostgresRevocationStore`](super::PostgresRevocationStore) and
//! its background tasks share: the cache, when it was last in sync, the
//! last change applied, and the signals between them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::error::PostgresStoreError;
use crate::revocation_state::RevocationState;

/// "Never synced" in [`Shared::synced_ms`].
const NEVER: u64 = u64::MAX;

/// A snapshot of a store's synchronisation, for health checks and metrics.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SyncHealth {
    /// When the cache was last confirmed in sync with the log: the start of
    /// the last read that reached its end.
    pub last_synced_at: Option<Instant>,
    /// Whether [`check`](tessera_application::ports::RevocationStore::check)
    /// answers (or fails closed).
    pub trusted: bool,
    /// Whether the listening connection is up (always `false` when polling).
    pub connected: bool,
    /// How many times the listening connection was replaced.
    pub reconnections: u64,
    /// How many times the cache was loaded whole from the tables: once at
    /// start, then only when the log was compacted past what this instance
    /// had applied, or a `resync` row asked for it.
    pub full_reloads: u64,
    /// The sequence number of the last change applied from the log.
    pub applied_seq: i64,
    /// How many logouts and watermarks the cache holds.
    pub entries: usize,
}

/// The shared part.
#[derive(Debug)]
pub(super) struct Shared {
    cache: RwLock<RevocationState>,
    /// The instant the millisecond counters count from.
    base: Instant,
    /// When the cache was last confirmed in sync, in ms since `base`.
    synced_ms: AtomicU64,
    staleness_ms: u64,
    pub(super) connected: AtomicBool,
    stopped: AtomicBool,
    pub(super) reconnections: AtomicU64,
    pub(super) full_reloads: AtomicU64,
    /// The last sequence applied; writers wait on it for their own change.
    pub(super) applied: watch::Sender<i64>,
    /// Wakes the log reader (a notification, a local write, a reconnect).
    pub(super) wake: Notify,
}

impl Shared {
    pub(super) fn new(staleness_bound: Duration) -> Self {
        Self {
            cache: RwLock::new(RevocationState::default()),
            base: Instant::now(),
            synced_ms: AtomicU64::new(NEVER),
            staleness_ms: millis(staleness_bound),
            connected: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            reconnections: AtomicU64::new(0),
            full_reloads: AtomicU64::new(0),
            applied: watch::Sender::new(0),
            wake: Notify::new(),
        }
    }

    /// Now, in ms since `base`.
    pub(super) fn now_ms(&self) -> u64 {
        millis(self.base.elapsed())
    }

    /// The cache holds everything committed before `started_ms` (a read
    /// that began then reached the end of the log).
    pub(super) fn mark_synced(&self, started_ms: u64) {
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

    pub(super) fn write_cache<T>(&self, write: impl FnOnce(&mut RevocationState) -> T) -> T {
        // Every change is one insert, update or remove, or a whole swap: a
        // panic elsewhere cannot leave the state half-written.
        write(&mut self.cache.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// The last sequence applied.
    pub(super) fn applied_seq(&self) -> i64 {
        *self.applied.borrow()
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
