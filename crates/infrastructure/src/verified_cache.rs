//! The verified-token cache: what a token's signature and time-independent
//! checks produced, kept so that the same token presented again skips them.
//!
//! A token is presented on every request for its whole life, and its
//! signature check (tens of microseconds for Ed25519, ECDSA and RSA)
//! dominates verification. The cache keeps, per token, the value
//! verification produced (the codec's typed claims, a provider's identity)
//! and serves it only to
//!
//! - exactly the same token bytes: the whole token is stored and compared,
//!   in constant time; the hash that picks a slot is only an index;
//! - verified under the same key ring: every entry carries the ring's
//!   generation and is served only to a verification holding that very
//!   ring, and a newer generation flushes the cache, so a token of a removed
//!   key is refused at its next use;
//! - before the token's `exp`: an entry is never served at or after it.
//!
//! It caches nothing that depends on the time of the request or on state
//! that changes: time rules, revocation, policy and rotation run on every
//! request after the cache, as they do without it. Failures are not cached.
//!
//! A token is cached at its second verification, not its first: a
//! doorkeeper (a table of twice the capacity holding, per cell, the slot
//! hash of the last token offered there, 16 bytes per entry of capacity)
//! lets through a token offered twice in a row for its cell. A token's
//! first presentation then costs one atomic swap more than no cache (the
//! copies an entry takes cost about 0.6 µs, as much as the rest of an
//! HS256 verification), and tokens presented once (a flood, a scan) never
//! displace those presented again.
//!
//! Bounded: at most `capacity` entries, in shards of their own lock (a
//! read lock on a hit, so verifications of the same token do not wait for
//! each other). When a shard is full, an insert looks at a random sample
//! of eight of its entries and drops the dead ones among them (expired, or
//! of an older ring) if there are any, otherwise the one whose token
//! expires soonest; dead entries are never served, whether or not they
//! have gone yet. Locks are never held across an `.await`.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use zeroize::Zeroizing;

/// How many verified tokens a cache holds by default.
///
/// Measured (`benches/sessions.rs`, BENCHMARKS.md): an entry for a session
/// token of the bench's shape (two capabilities, a tenant) takes the
/// token's size plus about 600 bytes of resident memory, 1.1 KiB for a
/// 506-byte EdDSA token, so a full cache of the default size takes about
/// 11 MiB, and its doorkeeper 160 KiB more.
pub const DEFAULT_VERIFIED_CACHE_ENTRIES: usize = 10_000;

/// Shards are added for every this many entries of capacity (up to
/// [`MAX_SHARDS`]), so that a small cache is one lock and a large one many.
const MAX_ENTRIES_PER_SHARD: usize = 256;
/// Past this many shards, more would not lower contention on two to a few
/// dozen cores.
const MAX_SHARDS: usize = 64;
/// Doorkeeper cells per entry of capacity: with twice as many cells as
/// entries, few tokens of a cache's worth share a cell.
const DOORKEEPER_CELLS_PER_ENTRY: usize = 2;
/// How many entries of a full shard an insert looks at to choose what goes.
const EVICTION_SAMPLE: usize = 8;
/// How many trailing bytes of a token (its signature's) pick its slot.
const INDEX_BYTES: usize = 32;

/// How a verified-token cache is doing, for metrics and for sizing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedCacheStats {
    /// Entries held now, expired ones not yet evicted included.
    pub entries: usize,
    /// The most entries it holds.
    pub capacity: usize,
    /// Verifications answered from the cache.
    pub hits: u64,
    /// Verifications the cache could not answer, which then ran in full.
    pub misses: u64,
}

/// Verified tokens and what verifying each produced.
pub(crate) struct VerifiedCache<V> {
    shards: Box<[Shard<V>]>,
    capacity: usize,
    /// Picks a token's slot from its length and trailing bytes; keyed per
    /// process, so slots cannot be aimed at.
    index: RandomState,
    /// The newest key-ring generation seen: entries of older ones are dead.
    ring: AtomicU64,
    /// The doorkeeper: per cell, the slot of the last token offered there.
    /// A token is cached when it is offered a second time and its slot is
    /// still in its cell.
    seen: Box<[AtomicU64]>,
}

/// A lock and its counters; aligned so that two shards never share a cache
/// line (the counters change under a read lock, on every lookup).
#[repr(align(128))]
struct Shard<V> {
    entries: RwLock<HashMap<u64, Entry<V>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    limit: usize,
}

struct Entry<V> {
    /// The exact token, wiped when the entry goes.
    token: Zeroizing<Box<[u8]>>,
    /// The generation of the key ring it verified under.
    ring: u64,
    /// Its `exp`, in Unix seconds: served only before.
    expires_at: i64,
    value: V,
}

impl<V> Entry<V> {
    fn is_live(&self, ring: u64, now: i64) -> bool {
        self.ring == ring && now < self.expires_at
    }
}

impl<V> VerifiedCache<V> {
    /// A cache of at most `capacity` entries; `None` for a capacity of 0
    /// (no cache).
    pub(crate) fn new(capacity: usize) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        let shards = capacity.div_ceil(MAX_ENTRIES_PER_SHARD).min(MAX_SHARDS);
        // The limits add up to `capacity` exactly. Each table is sized for
        // its limit up front, so that no insert waits for it to grow.
        let shards = (0..shards)
            .map(|i| {
                let limit = capacity / shards + usize::from(i < capacity % shards);
                Shard {
                    entries: RwLock::new(HashMap::with_capacity(limit)),
                    hits: AtomicU64::new(0),
                    misses: AtomicU64::new(0),
                    limit,
                }
            })
            .collect();
        let cells = capacity.saturating_mul(DOORKEEPER_CELLS_PER_ENTRY);
        Some(Self {
            shards,
            capacity,
            index: RandomState::new(),
            ring: AtomicU64::new(0),
            seen: (0..cells).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Its size and counters now.
    pub(crate) fn stats(&self) -> VerifiedCacheStats {
        let mut stats = VerifiedCacheStats {
            entries: 0,
            capacity: self.capacity,
            hits: 0,
            misses: 0,
        };
        for shard in &self.shards {
            stats.entries += read(shard).len();
            stats.hits += shard.hits.load(Ordering::Relaxed);
            stats.misses += shard.misses.load(Ordering::Relaxed);
        }
        stats
    }

    /// The value cached for exactly `token`, verified under key-ring
    /// generation `ring`, while `now` (Unix seconds) is before its `exp`,
    /// passed through `read` (which may refuse it).
    pub(crate) fn get<T>(
        &self,
        token: &str,
        ring: u64,
        now: i64,
        read_value: impl FnOnce(&V) -> Option<T>,
    ) -> Option<T> {
        let (slot, shard) = self.slot(token)?;
        let value = read(shard)
            .get(&slot)
            .filter(|entry| {
                entry.is_live(ring, now)
                    && verify_slices_are_equal(&entry.token, token.as_bytes()).is_ok()
            })
            .and_then(|entry| read_value(&entry.value));
        let counter = if value.is_some() {
            &shard.hits
        } else {
            &shard.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        value
    }

    /// Caches `value()` for `token`, which verified under key-ring
    /// generation `ring` and expires at `expires_at` (Unix seconds), when
    /// this is the token's second verification in a row for its slot.
    /// Nothing is cached for a token already expired at `now` or a ring
    /// older than the newest seen.
    pub(crate) fn insert(
        &self,
        token: &str,
        ring: u64,
        expires_at: i64,
        now: i64,
        value: impl FnOnce() -> V,
    ) {
        self.retire_rings_before(ring);
        if now >= expires_at || ring != self.ring.load(Ordering::Acquire) {
            return;
        }
        let Some((slot, shard)) = self.slot(token) else {
            return;
        };
        if !self.seen_before(slot) {
            return;
        }
        let entry = Entry {
            token: Zeroizing::new(token.as_bytes().into()),
            ring,
            expires_at,
            value: value(),
        };
        let mut entries = write(shard);
        if !entries.contains_key(&slot) && entries.len() >= shard.limit {
            evict(&mut entries, ring, now);
        }
        entries.insert(slot, entry);
    }

    /// Whether the last token offered for the doorkeeper's cell of `slot`
    /// had that slot; remembers `slot` there either way.
    fn seen_before(&self, slot: u64) -> bool {
        let cells = u64::try_from(self.seen.len()).unwrap_or(u64::MAX);
        let cell = usize::try_from(slot % cells.max(1)).ok();
        cell.and_then(|cell| self.seen.get(cell))
            .is_some_and(|cell| cell.swap(slot, Ordering::Relaxed) == slot)
    }

    /// Key-ring generation `ring` is in use: when it is newer than any
    /// seen, every entry of the older ones is dropped.
    pub(crate) fn retire_rings_before(&self, ring: u64) {
        if ring > self.ring.load(Ordering::Acquire)
            && self.ring.fetch_max(ring, Ordering::AcqRel) < ring
        {
            for shard in &self.shards {
                write(shard).clear();
            }
        }
    }

    /// The slot of `token`, and its shard.
    fn slot(&self, token: &str) -> Option<(u64, &Shard<V>)> {
        let bytes = token.as_bytes();
        let tail = bytes
            .get(bytes.len().saturating_sub(INDEX_BYTES)..)
            .unwrap_or_default();
        let slot = self.index.hash_one((bytes.len(), tail));
        let count = u64::try_from(self.shards.len()).ok()?;
        let shard = usize::try_from(slot % count).ok()?;
        Some((slot, self.shards.get(shard)?))
    }
}

/// Makes room in a full shard: of a sample of its entries, the dead ones
/// go if there are any, otherwise the one whose token expires soonest.
///
/// The sample is the first [`EVICTION_SAMPLE`] entries in the table's
/// order, which the keyed slot hash makes a random choice. Looking at the
/// whole shard instead cost 2.9 µs per insert into a full cache of the
/// default size: its entries are not in the CPU's caches.
fn evict<V>(entries: &mut HashMap<u64, Entry<V>>, ring: u64, now: i64) {
    let mut doomed = [None; EVICTION_SAMPLE];
    let mut soonest: Option<(i64, u64)> = None;
    for (place, (slot, entry)) in doomed.iter_mut().zip(entries.iter()) {
        if !entry.is_live(ring, now) {
            *place = Some(*slot);
        }
        if soonest.is_none_or(|(expires_at, _)| entry.expires_at < expires_at) {
            soonest = Some((entry.expires_at, *slot));
        }
    }
    if doomed.iter().all(Option::is_none)
        && let Some(first) = doomed.first_mut()
    {
        *first = soonest.map(|(_, slot)| slot);
    }
    for slot in doomed.into_iter().flatten() {
        entries.remove(&slot);
    }
}

/// Entries stay consistent whatever a panicking holder was doing (each
/// change is one map operation), so a poisoned lock is used as is.
fn read<V>(shard: &Shard<V>) -> RwLockReadGuard<'_, HashMap<u64, Entry<V>>> {
    shard.entries.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<V>(shard: &Shard<V>) -> RwLockWriteGuard<'_, HashMap<u64, Entry<V>>> {
    shard
        .entries
        .write()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Shows the capacity and how full it is, never a token.
impl<V> fmt::Debug for VerifiedCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn cache(capacity: usize) -> VerifiedCache<u32> {
        VerifiedCache::new(capacity).unwrap()
    }

    fn token(n: usize) -> String {
        format!("header.payload-{n}.signature-of-token-number-{n:08}")
    }

    fn get(cache: &VerifiedCache<u32>, token: &str, ring: u64, now: i64) -> Option<u32> {
        cache.get(token, ring, now, |value| Some(*value))
    }

    /// Offers `token` twice, as two verifications in a row would.
    fn remember(
        cache: &VerifiedCache<u32>,
        token: &str,
        ring: u64,
        expires_at: i64,
        now: i64,
        value: u32,
    ) {
        for _ in 0..2 {
            cache.insert(token, ring, expires_at, now, || value);
        }
    }

    #[test]
    fn a_token_is_cached_at_its_second_verification_in_a_row() {
        let cache = cache(100);
        cache.insert(&token(1), 0, NOW + 60, NOW, || 1);
        assert_eq!(get(&cache, &token(1), 0, NOW), None);
        cache.insert(&token(1), 0, NOW + 60, NOW, || 1);
        assert_eq!(get(&cache, &token(1), 0, NOW), Some(1));
        // Two tokens taking turns in one doorkeeper cell (the only one)
        // never get in; either one twice in a row does.
        let cache = VerifiedCache::<u32>::new(1).unwrap();
        let seen = cache.seen.len();
        assert_eq!(seen, 2);
        let (a, b) = (0..)
            .map(|n| (token(n), token(n + 1)))
            .find(|(a, b)| {
                let cell = |t: &str| cache.slot(t).map(|(slot, _)| slot % 2);
                cell(a) == cell(b)
            })
            .unwrap();
        for _ in 0..3 {
            cache.insert(&a, 0, NOW + 60, NOW, || 1);
            cache.insert(&b, 0, NOW + 60, NOW, || 2);
        }
        assert_eq!(cache.stats().entries, 0);
        cache.insert(&b, 0, NOW + 60, NOW, || 2);
        assert_eq!(get(&cache, &b, 0, NOW), Some(2));
    }

    #[test]
    fn a_capacity_of_zero_is_no_cache() {
        assert!(VerifiedCache::<u32>::new(0).is_none());
    }

    #[test]
    fn an_entry_is_served_only_for_its_exact_token_and_ring_before_its_exp() {
        let cache = cache(100);
        let cached = token(1);
        remember(&cache, &cached, 0, NOW + 60, NOW, 7);
        assert_eq!(get(&cache, &cached, 0, NOW + 59), Some(7));
        // Same length and the same trailing bytes (the same slot), one
        // byte apart at the front.
        let twin = cached.replacen('h', "H", 1);
        assert_eq!(twin.len(), cached.len());
        assert_eq!(get(&cache, &twin, 0, NOW), None);
        assert_eq!(get(&cache, &format!("{cached}x"), 0, NOW), None);
        assert_eq!(get(&cache, &cached, 1, NOW), None);
        assert_eq!(get(&cache, &cached, 0, NOW + 60), None);
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.hits, stats.misses), (1, 1, 4));
    }

    #[test]
    fn an_expired_token_or_an_older_ring_is_not_cached() {
        let cache = cache(100);
        remember(&cache, &token(1), 0, NOW, NOW, 1);
        cache.retire_rings_before(2);
        remember(&cache, &token(2), 1, NOW + 60, NOW, 2);
        assert_eq!(cache.stats().entries, 0);
        remember(&cache, &token(3), 2, NOW + 60, NOW, 3);
        assert_eq!(get(&cache, &token(3), 2, NOW), Some(3));
    }

    #[test]
    fn a_newer_ring_empties_the_cache_and_an_older_one_does_not() {
        let cache = cache(100);
        for n in 0..10 {
            remember(&cache, &token(n), 0, NOW + 60, NOW, 0);
        }
        cache.retire_rings_before(0);
        assert_eq!(cache.stats().entries, 10);
        cache.retire_rings_before(1);
        assert_eq!(cache.stats().entries, 0);
        remember(&cache, &token(1), 1, NOW + 60, NOW, 1);
        cache.retire_rings_before(0);
        assert_eq!(get(&cache, &token(1), 1, NOW), Some(1));
    }

    #[test]
    fn a_full_shard_drops_dead_entries_first_then_the_soonest_expiring() {
        // Fewer than 256 entries: one shard.
        let cache = cache(3);
        remember(&cache, &token(1), 0, NOW + 30, NOW, 1);
        remember(&cache, &token(2), 0, NOW + 10, NOW, 2);
        remember(&cache, &token(3), 0, NOW + 20, NOW, 3);
        remember(&cache, &token(4), 0, NOW + 40, NOW, 4);
        assert_eq!(get(&cache, &token(2), 0, NOW), None);
        for n in [1, 3, 4] {
            assert!(get(&cache, &token(n), 0, NOW).is_some());
        }
        // A shard of up to eight entries is sampled whole. At NOW + 25,
        // token 3 has expired: it goes, and 1 (the soonest-expiring live
        // one) stays.
        remember(&cache, &token(5), 0, NOW + 90, NOW + 25, 5);
        assert_eq!(cache.stats().entries, 3);
        assert_eq!(get(&cache, &token(1), 0, NOW + 25), Some(1));
        // Replacing an entry takes no room.
        remember(&cache, &token(1), 0, NOW + 90, NOW + 25, 6);
        assert_eq!(get(&cache, &token(4), 0, NOW + 25), Some(4));
        assert_eq!(get(&cache, &token(1), 0, NOW + 25), Some(6));
    }

    #[test]
    fn the_debug_form_shows_no_token() {
        let cache = cache(10);
        remember(&cache, &token(1), 0, NOW + 60, NOW, 1);
        let shown = format!("{cache:?}");
        assert!(shown.contains("capacity: 10"), "{shown}");
        assert!(!shown.contains("signature-of-token"), "{shown}");
    }

    proptest! {
        #[test]
        fn the_bound_holds_under_a_flood_of_distinct_tokens(
            capacity in 1_usize..700,
            expiries in prop::collection::vec(1_i64..120, 1..1_500),
        ) {
            let cache = cache(capacity);
            for (n, expiry) in expiries.iter().enumerate() {
                let now = NOW + i64::try_from(n / 100).unwrap();
                remember(&cache, &token(n), 0, now + expiry, now, 0);
                prop_assert!(cache.stats().entries <= capacity);
            }
            let last = expiries.len() - 1;
            let now = NOW + i64::try_from(last / 100).unwrap();
            prop_assert!(get(&cache, &token(last), 0, now).is_some());
        }
    }
}
