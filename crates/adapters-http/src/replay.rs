//! A bounded replay cache: keys seen within a freshness window, shared by
//! the gateway verifier (signatures) and the webhook verifier (message ids).

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Why a key was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The key is in the cache, recorded at `at` (Unix seconds).
    Seen {
        /// When the cached entry was recorded.
        at: i64,
    },
    /// The cache is full of keys still within the window: fail closed.
    Full,
}

/// Keys seen within a window, each with the time it was recorded at.
/// Entries recorded before the window's start are forgotten on the next
/// admission; nothing else is forgotten, so a full cache refuses until
/// old entries age out.
#[derive(Debug)]
pub(crate) struct ReplayCache<K> {
    seen: HashMap<K, i64>,
    by_time: BTreeSet<(i64, K)>,
    capacity: usize,
}

impl<K: Hash + Ord + Clone> ReplayCache<K> {
    /// Room for `capacity` keys (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            by_time: BTreeSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `key` at `at` unless it is present. First forgets entries
    /// recorded before `oldest`, which are outside the window anyway.
    pub(crate) fn admit(&mut self, key: K, at: i64, oldest: i64) -> Result<(), Refusal> {
        while let Some((first, _)) = self.by_time.first() {
            if *first >= oldest {
                break;
            }
            if let Some((_, old)) = self.by_time.pop_first() {
                self.seen.remove(&old);
            }
        }
        if let Some(&at) = self.seen.get(&key) {
            return Err(Refusal::Seen { at });
        }
        if self.seen.len() >= self.capacity {
            return Err(Refusal::Full);
        }
        self.seen.insert(key.clone(), at);
        self.by_time.insert((at, key));
        Ok(())
    }

    /// Moves a present `key` to `at` if that is later, so that it is kept
    /// longer; does nothing for an absent key or an earlier time.
    pub(crate) fn extend(&mut self, key: &K, at: i64) {
        if let Some(recorded) = self.seen.get_mut(key)
            && *recorded < at
        {
            self.by_time.remove(&(*recorded, key.clone()));
            *recorded = at;
            self.by_time.insert((at, key.clone()));
        }
    }

    /// Forgets `key`.
    pub(crate) fn forget(&mut self, key: &K) {
        if let Some(at) = self.seen.remove(key) {
            self.by_time.remove(&(at, key.clone()));
        }
    }

    /// How many keys are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_while_in_the_window_and_forgotten_after() {
        let mut cache = ReplayCache::new(10);
        assert_eq!(cache.admit("a", 100, 0), Ok(()));
        assert_eq!(cache.admit("a", 150, 50), Err(Refusal::Seen { at: 100 }));
        assert_eq!(cache.admit("a", 200, 101), Ok(()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_refuses_until_entries_age_out() {
        let mut cache = ReplayCache::new(1);
        assert_eq!(cache.admit(1, 100, 0), Ok(()));
        assert_eq!(cache.admit(2, 100, 0), Err(Refusal::Full));
        assert_eq!(cache.admit(2, 200, 101), Ok(()));
    }

    #[test]
    fn extending_keeps_a_key_longer_and_forgetting_drops_it() {
        let mut cache = ReplayCache::new(10);
        cache.admit("a", 100, 0).unwrap();
        cache.extend(&"a", 300);
        cache.extend(&"a", 50);
        assert_eq!(cache.admit("a", 400, 200), Err(Refusal::Seen { at: 300 }));
        cache.forget(&"a");
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.admit("a", 400, 200), Ok(()));
    }
}
