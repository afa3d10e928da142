//! The provider key cache: parsed keys kept, refreshed on a max-age,
//! refetched on an unknown `kid` at most once per cooldown (scheduled
//! refreshes do not count), one fetch in flight, stale keys served up to a
//! bound while the provider is down.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use tokio::time::Instant;

use crate::jose::{KeyError, KeyRing};

/// A JWK set as fetched, with how long the provider says it stays fresh.
#[derive(Debug, Clone)]
pub struct JwksDocument {
    /// The JWK set (`{"keys":[...]}`).
    pub body: String,
    /// `Cache-Control: max-age`, when the provider sent one.
    pub max_age: Option<Duration>,
}

/// Why a JWK set could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksFetchError {
    /// The provider could not be reached or the transfer failed.
    #[error("JWKS endpoint unreachable")]
    Unreachable(#[source] Box<dyn StdError + Send + Sync>),
    /// The provider answered with a status other than 200.
    #[error("JWKS endpoint answered {0}")]
    Status(u16),
    /// The fetch took longer than the configured timeout.
    #[error("JWKS fetch timed out")]
    TimedOut,
    /// The document is larger than the cap.
    #[error("JWKS document exceeds {0} bytes")]
    TooLarge(usize),
    /// The document is not a JWK set with at least one usable key.
    #[error("JWKS document is unusable")]
    Unusable(#[source] KeyError),
    /// The JWKS URL could not be found through the provider's OpenID
    /// configuration ([`OidcDiscovery`](super::OidcDiscovery)).
    #[error("JWKS URL not discovered")]
    Discovery(#[source] super::discovery::DiscoveryError),
}

/// Where a provider's JWK set comes from: an HTTP endpoint
/// ([`HttpJwksSource`](super::HttpJwksSource)) or anything else.
///
/// Implementations SHOULD bound their own time; the cache also applies its
/// timeout around every call.
#[async_trait]
pub trait JwksSource: Send + Sync + 'static {
    /// Fetches the current JWK set.
    ///
    /// # Errors
    ///
    /// [`JwksFetchError`] for any failure.
    async fn fetch(&self) -> Result<JwksDocument, JwksFetchError>;
}

/// How a [`KeyCache`] refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Freshness when the provider sends no `max-age` (default 10 minutes).
    pub default_max_age: Duration,
    /// The provider's `max-age` is clamped into `min_max_age..=max_max_age`
    /// (defaults 1 minute and 24 hours).
    pub min_max_age: Duration,
    /// See `min_max_age`.
    pub max_max_age: Duration,
    /// At most one refetch per this window for tokens naming unknown keys,
    /// and the pause after a failed fetch (default 30 seconds). Only
    /// refetches for unknown keys count: a scheduled refresh (keys past
    /// their max-age) never delays the refetch for a key the provider
    /// rotated in just after it.
    pub cooldown: Duration,
    /// How long past their freshness cached keys are still served while
    /// the provider cannot be reached; after that, verification fails
    /// closed (default 6 hours).
    pub stale_bound: Duration,
    /// The longest one fetch may take (default 5 seconds).
    pub fetch_timeout: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            default_max_age: Duration::from_secs(600),
            min_max_age: Duration::from_secs(60),
            max_max_age: Duration::from_secs(24 * 3600),
            cooldown: Duration::from_secs(30),
            stale_bound: Duration::from_secs(6 * 3600),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// What the cache holds now. Replaced whole on every fetch attempt.
struct Snapshot {
    ring: Option<KeyRing>,
    fresh_until: Option<Instant>,
    attempted_at: Option<Instant>,
    /// When the last refetch for an unknown `kid` started.
    unknown_kid_at: Option<Instant>,
    last_error: Option<Arc<JwksFetchError>>,
    generation: u64,
}

/// Whether `window` has passed since `since` at `now` (or nothing happened).
fn past(since: Option<Instant>, now: Instant, window: Duration) -> bool {
    since.is_none_or(|at| now >= at.checked_add(window).unwrap_or(at))
}

impl Snapshot {
    fn fresh(&self, now: Instant) -> Option<&KeyRing> {
        self.ring
            .as_ref()
            .filter(|_| self.fresh_until.is_some_and(|until| now < until))
    }

    fn usable(&self, now: Instant, bound: Duration) -> Option<&KeyRing> {
        self.ring.as_ref().filter(|_| {
            self.fresh_until
                .is_some_and(|until| now < until.checked_add(bound).unwrap_or(until))
        })
    }

    /// Whether a refresh may start now: always after a success (the keys
    /// are simply due), only after the cooldown after a failure.
    fn may_refresh(&self, now: Instant, cooldown: Duration) -> bool {
        self.last_error.is_none() || past(self.attempted_at, now, cooldown)
    }

    /// Whether a refetch for an unknown `kid` may start now: no other one
    /// started within the cooldown, and no fetch failed within it.
    fn may_refetch_for_unknown_kid(&self, now: Instant, cooldown: Duration) -> bool {
        past(self.unknown_kid_at, now, cooldown) && self.may_refresh(now, cooldown)
    }
}

/// Why a fetch starts: keys due (or absent, or asked for), or a token
/// naming a `kid` the keys lack.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Schedule,
    UnknownKid,
}

/// A provider's keys, fetched from a [`JwksSource`] and kept parsed.
///
/// With fresh keys, [`KeyCache::ring`] is one atomic load and a clock read:
/// no lock, no I/O. Every fetch goes through one async mutex, so any
/// number of waiting requests share one fetch; fetch failures keep the
/// previous keys.
pub struct KeyCache {
    source: Arc<dyn JwksSource>,
    policy: CachePolicy,
    state: ArcSwap<Snapshot>,
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load();
        f.debug_struct("KeyCache")
            .field("policy", &self.policy)
            .field("ring", &state.ring)
            .field("generation", &state.generation)
            .finish_non_exhaustive()
    }
}

/// Why the cache has no keys to offer.
#[derive(Debug, thiserror::Error)]
#[error("no usable keys: never fetched, or stale past the bound")]
pub struct KeysUnavailable {
    #[source]
    last_error: Option<Arc<JwksFetchError>>,
}

impl KeyCache {
    /// An empty cache; the first verification fetches.
    #[must_use]
    pub fn new(source: Arc<dyn JwksSource>, policy: CachePolicy) -> Self {
        Self {
            source,
            policy,
            state: ArcSwap::from_pointee(Snapshot {
                ring: None,
                fresh_until: None,
                attempted_at: None,
                unknown_kid_at: None,
                last_error: None,
                generation: 0,
            }),
            fetching: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// How many fetches this cache has started, for tests and metrics.
    #[must_use]
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// How many of those fetches brought a key set, for metrics.
    #[must_use]
    pub fn succeeded_fetch_count(&self) -> u64 {
        self.successes.load(Ordering::Relaxed)
    }

    /// How many of those fetches failed (unreachable, timed out, refused,
    /// or a key set with no usable key), for metrics.
    #[must_use]
    pub fn failed_fetch_count(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Fetches now (at start-up, say), whatever the cache holds.
    ///
    /// # Errors
    ///
    /// [`JwksFetchError`] when the fetch fails; the cache keeps what it had.
    pub async fn prefetch(&self) -> Result<(), Arc<JwksFetchError>> {
        let _guard = self.fetching.lock().await;
        self.fetch_locked(Trigger::Schedule).await;
        match &self.state.load().last_error {
            Some(error) => Err(Arc::clone(error)),
            None => Ok(()),
        }
    }

    /// The keys to verify with, and the generation they belong to.
    ///
    /// # Errors
    ///
    /// [`KeysUnavailable`] when there are no keys, or only keys stale past
    /// the bound, and a fetch now fails or may not start (cooldown).
    pub async fn ring(&self) -> Result<(KeyRing, u64), KeysUnavailable> {
        let snapshot = self.state.load();
        let now = Instant::now();
        if let Some(ring) = snapshot.fresh(now) {
            return Ok((ring.clone(), snapshot.generation));
        }
        if let Some(ring) = snapshot.usable(now, self.policy.stale_bound) {
            // Due, but still servable: one request refreshes, the others
            // go on with what is cached rather than wait.
            let (ring, generation) = (ring.clone(), snapshot.generation);
            drop(snapshot);
            if let Ok(_guard) = self.fetching.try_lock() {
                let current = self.state.load();
                if current.generation == generation
                    && current.may_refresh(now, self.policy.cooldown)
                {
                    drop(current);
                    self.fetch_locked(Trigger::Schedule).await;
                }
                return self.servable(Instant::now());
            }
            return Ok((ring, generation));
        }
        let seen = snapshot.generation;
        drop(snapshot);
        let _guard = self.fetching.lock().await;
        let current = self.state.load();
        if current.generation == seen && current.may_refresh(Instant::now(), self.policy.cooldown) {
            drop(current);
            self.fetch_locked(Trigger::Schedule).await;
        }
        self.servable(Instant::now())
    }

    /// After a token named a `kid` absent from generation `seen`: a ring
    /// that may hold it, or `None` when nothing new can be had (another
    /// refetch for an unknown `kid` started, or a fetch failed, less than a
    /// cooldown ago). A scheduled refresh does not count: a key rotated in
    /// just after one is fetched at once.
    pub async fn refetch_for_unknown_kid(&self, seen: u64) -> Option<KeyRing> {
        let newer = |snapshot: &Snapshot| {
            snapshot
                .usable(Instant::now(), self.policy.stale_bound)
                .cloned()
        };
        {
            let current = self.state.load();
            if current.generation != seen {
                return newer(&current);
            }
            if !current.may_refetch_for_unknown_kid(Instant::now(), self.policy.cooldown) {
                return None;
            }
        }
        let _guard = self.fetching.lock().await;
        let current = self.state.load();
        if current.generation != seen {
            return newer(&current);
        }
        if !current.may_refetch_for_unknown_kid(Instant::now(), self.policy.cooldown) {
            return None;
        }
        drop(current);
        self.fetch_locked(Trigger::UnknownKid).await;
        let current = self.state.load();
        if current.last_error.is_some() {
            return None;
        }
        newer(&current)
    }

    fn servable(&self, now: Instant) -> Result<(KeyRing, u64), KeysUnavailable> {
        let current = self.state.load();
        current
            .usable(now, self.policy.stale_bound)
            .map(|ring| (ring.clone(), current.generation))
            .ok_or_else(|| KeysUnavailable {
                last_error: current.last_error.clone(),
            })
    }

    /// One fetch; the caller holds `fetching`.
    async fn fetch_locked(&self, trigger: Trigger) {
        let started = Instant::now();
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let outcome = match tokio::time::timeout(self.policy.fetch_timeout, self.source.fetch())
            .await
        {
            Err(_) => Err(JwksFetchError::TimedOut),
            Ok(Err(error)) => Err(error),
            Ok(Ok(document)) => KeyRing::from_provider_jwk_set(&document.body)
                .map(|(ring, skipped)| {
                    for key in &skipped {
                        tracing::debug!(kid = ?key.kid, reason = ?key.reason, "provider key skipped");
                    }
                    (ring, document.max_age)
                })
                .map_err(JwksFetchError::Unusable),
        };
        let previous = self.state.load_full();
        let generation = previous.generation.wrapping_add(1);
        let unknown_kid_at = match trigger {
            Trigger::UnknownKid => Some(started),
            Trigger::Schedule => previous.unknown_kid_at,
        };
        let next = match outcome {
            Ok((ring, max_age)) => {
                self.successes.fetch_add(1, Ordering::Relaxed);
                let max_age = max_age
                    .unwrap_or(self.policy.default_max_age)
                    .max(self.policy.min_max_age)
                    .min(self.policy.max_max_age);
                Snapshot {
                    ring: Some(ring),
                    fresh_until: started.checked_add(max_age),
                    attempted_at: Some(started),
                    unknown_kid_at,
                    last_error: None,
                    generation,
                }
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %error, "provider keys could not be refreshed");
                Snapshot {
                    ring: previous.ring.clone(),
                    fresh_until: previous.fresh_until,
                    attempted_at: Some(started),
                    unknown_kid_at,
                    last_error: Some(Arc::new(error)),
                    generation,
                }
            }
        };
        self.state.store(Arc::new(next));
    }
}
