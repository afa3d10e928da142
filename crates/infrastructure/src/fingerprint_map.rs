//! [`FingerprintMap`]: the table behind [`RevocationState`](crate::RevocationState),
//! laid out so that a lookup at a million entries costs about one read
//! from main memory when the key is there, and none in most cases when it
//! is not.
//!
//! - The keys are fingerprints (keyed 64-bit hashes, never 0), kept in the
//!   slot with their value: 16 bytes a slot, open addressing with linear
//!   probing, at most 7/8 full. A lookup reads the slot the key hashes to
//!   and, rarely, the next few (the same cache line, or the one after).
//! - In front of the slots, a Bloom filter of one 64-bit word per 16 slots
//!   (three bits a key, in one word): half a byte a slot, 1/32 of the
//!   table, small enough to stay in the CPU caches when the table does
//!   not. A key that is absent is told apart there in all but a few
//!   percent of lookups, without reading the table.
//!
//! The filter may say "maybe" for a key that is absent (a false positive:
//! the table then answers), never "no" for one that is present: every
//! insert sets the key's bits; a removal leaves them (harmless: a false
//! positive more), and [`retain`](FingerprintMap::retain) and every resize
//! rebuild the filter from what the table holds.

/// The empty slot's key: fingerprints are never 0.
pub(crate) const EMPTY: u64 = 0;

/// The smallest table that allocates.
const MIN_SLOTS: usize = 16;

/// Slots per filter word.
const SLOTS_PER_WORD: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Slot<V> {
    key: u64,
    value: V,
}

/// Fingerprints (never [`EMPTY`]) and a value each.
#[derive(Clone)]
pub(crate) struct FingerprintMap<V> {
    /// A power of two in length (or empty), never more than 7/8 full.
    slots: Vec<Slot<V>>,
    /// `slots.len() / SLOTS_PER_WORD` words (or empty).
    filter: Vec<u64>,
    len: usize,
}

impl<V> std::fmt::Debug for FingerprintMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FingerprintMap")
            .field("len", &self.len)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<V> Default for FingerprintMap<V> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            filter: Vec::new(),
            len: 0,
        }
    }
}

/// The filter word of `key` among `words` (a power of two), and its three
/// bits in that word: from a multiplicative remix of the key, so that they
/// do not follow the slot the key hashes to.
fn filter_place(key: u64, words: usize) -> (usize, u64) {
    let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The top bits pick the word; `words` is at most `usize::MAX / 16 + 1`.
    let shift = 64 - words.trailing_zeros().min(63);
    let word = usize::try_from(h.checked_shr(shift).unwrap_or(0)).unwrap_or(0);
    let bits = (1_u64 << (h & 63)) | (1_u64 << ((h >> 6) & 63)) | (1_u64 << ((h >> 12) & 63));
    (word, bits)
}

/// The smallest table that holds `len` keys at most 7/8 full.
fn slots_for(len: usize) -> usize {
    let mut slots = MIN_SLOTS;
    while len.saturating_mul(8) > slots.saturating_mul(7) {
        slots = slots.saturating_mul(2);
    }
    slots
}

impl<V: Copy + Default> FingerprintMap<V> {
    /// How many keys are held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot `key` hashes to.
    fn home(&self, key: u64) -> usize {
        // Truncation intended: the low bits pick the slot.
        #[allow(clippy::cast_possible_truncation)]
        let low = key as usize;
        low & self.mask()
    }

    /// Whether `key` may be held: `false` means it is not. Reads the filter
    /// only (no slot).
    pub(crate) fn may_contain(&self, key: u64) -> bool {
        let (word, bits) = filter_place(key, self.filter.len());
        self.filter.get(word).is_some_and(|w| w & bits == bits)
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: u64) -> Option<usize> {
        let mask = self.mask();
        let mut at = self.home(key);
        // The table is never full, so the loop ends at an empty slot; the
        // bound only keeps it finite whatever happens.
        for _ in 0..self.slots.len() {
            let slot = self.slots.get(at)?;
            if slot.key == key || slot.key == EMPTY {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
        None
    }

    /// The value of `key`, if held.
    #[cfg(test)]
    fn get(&self, key: u64) -> Option<V> {
        if !self.may_contain(key) {
            return None;
        }
        self.get_unfiltered(key)
    }

    /// The value of `key`, if held, from the slots (the filter already said
    /// "maybe").
    pub(crate) fn get_unfiltered(&self, key: u64) -> Option<V> {
        let slot = self.slots.get(self.find(key)?)?;
        (slot.key == key && key != EMPTY).then_some(slot.value)
    }

    /// Inserts `key` with `value`, or, if held, sets its value to
    /// `merge(old, value)`. `key` must not be [`EMPTY`] (it is ignored if
    /// it is).
    pub(crate) fn upsert(&mut self, key: u64, value: V, merge: impl FnOnce(V, V) -> V) {
        if key == EMPTY {
            return;
        }
        if self.len.saturating_add(1).saturating_mul(8) > self.slots.len().saturating_mul(7) {
            self.resize(slots_for(self.len.saturating_add(1)));
        }
        let Some(at) = self.find(key) else { return };
        let Some(slot) = self.slots.get_mut(at) else {
            return;
        };
        if slot.key == key {
            slot.value = merge(slot.value, value);
            return;
        }
        *slot = Slot { key, value };
        self.len += 1;
        self.mark(key);
    }

    fn mark(&mut self, key: u64) {
        let (word, bits) = filter_place(key, self.filter.len());
        if let Some(w) = self.filter.get_mut(word) {
            *w |= bits;
        }
    }

    /// Removes `key`, if held.
    pub(crate) fn remove(&mut self, key: u64) {
        if key == EMPTY {
            return;
        }
        if let Some(at) = self.find(key)
            && self.slots.get(at).is_some_and(|s| s.key == key)
        {
            self.remove_at(at);
        }
    }

    /// Empties slot `hole` and moves later keys of its run back into the
    /// gap, so that every key stays reachable from the slot it hashes to
    /// (backward-shift deletion: no tombstones).
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut at = hole;
        for _ in 0..self.slots.len() {
            at = (at + 1) & mask;
            let Some(&next) = self.slots.get(at) else {
                break;
            };
            if next.key == EMPTY {
                break;
            }
            // `next` may move back to `hole` unless its home lies in
            // (hole, at]: its distance from home reaches the hole.
            let home = self.home(next.key);
            if at.wrapping_sub(home) & mask >= at.wrapping_sub(hole) & mask {
                if let Some(slot) = self.slots.get_mut(hole) {
                    *slot = next;
                }
                hole = at;
            }
        }
        if let Some(slot) = self.slots.get_mut(hole) {
            slot.key = EMPTY;
        }
        self.len = self.len.saturating_sub(1);
    }

    /// Keeps the keys whose value `keep` accepts; shrinks the table when
    /// what is left would fit in a quarter of it, and rebuilds the filter.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(V) -> bool) {
        let mut at = 0;
        while at < self.slots.len() {
            match self.slots.get(at) {
                Some(slot) if slot.key != EMPTY && !keep(slot.value) => {
                    // The slot now holds a later key of the run (or is
                    // empty): look at it again. Keys moved back from the
                    // table's start were seen already, and are kept again.
                    self.remove_at(at);
                }
                _ => at += 1,
            }
        }
        let fits = slots_for(self.len);
        if self.len == 0 {
            *self = Self::default();
        } else if fits.saturating_mul(4) <= self.slots.len() {
            self.resize(fits);
        } else {
            self.rebuild_filter();
        }
    }

    /// Moves every key into a table of `slots` slots (a power of two that
    /// holds them all at most 7/8 full), and rebuilds the filter.
    fn resize(&mut self, slots: usize) {
        let empty = Slot {
            key: EMPTY,
            value: V::default(),
        };
        let old = std::mem::replace(&mut self.slots, vec![empty; slots]);
        for slot in old.into_iter().filter(|s| s.key != EMPTY) {
            if let Some(at) = self.find(slot.key)
                && let Some(free) = self.slots.get_mut(at)
            {
                *free = slot;
            }
        }
        self.rebuild_filter();
    }

    /// Sets the filter anew from the keys held.
    fn rebuild_filter(&mut self) {
        let words = self.slots.len() / SLOTS_PER_WORD;
        self.filter.clear();
        self.filter.resize(words, 0);
        self.filter.shrink_to_fit();
        for at in 0..self.slots.len() {
            if let Some(key) = self.slots.get(at).map(|s| s.key)
                && key != EMPTY
            {
                self.mark(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u64, i64),
        Remove(u64),
        Retain(i64),
    }

    /// Keys whose low bits (the slot they hash to) crowd a few slots and
    /// the table's end, so that runs form, wrap around and are cut.
    fn key() -> impl Strategy<Value = u64> {
        (1_u64..4, prop_oneof![0_u64..6, 10_u64..16, 0_u64..64]).prop_map(|(hi, lo)| hi << 40 | lo)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (key(), 0_i64..100).prop_map(|(k, v)| Op::Upsert(k, v)),
            2 => key().prop_map(Op::Remove),
            1 => (0_i64..100).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// The map answers as a `HashMap` does after any sequence of
        /// inserts, removals and retains, and the filter never hides a key.
        #[test]
        fn answers_as_a_hash_map_does(ops in proptest::collection::vec(op(), 0..200)) {
            let mut map = FingerprintMap::<i64>::default();
            let mut oracle = HashMap::<u64, i64>::new();
            for op in ops {
                match op {
                    Op::Upsert(k, v) => {
                        map.upsert(k, v, i64::max);
                        let e = oracle.entry(k).or_insert(v);
                        *e = (*e).max(v);
                    }
                    Op::Remove(k) => {
                        map.remove(k);
                        oracle.remove(&k);
                    }
                    Op::Retain(t) => {
                        map.retain(|v| v > t);
                        oracle.retain(|_, v| *v > t);
                    }
                }
                prop_assert_eq!(map.len(), oracle.len());
                for hi in 1_u64..4 {
                    for lo in 0_u64..64 {
                        let k = hi << 40 | lo;
                        prop_assert_eq!(map.get(k), oracle.get(&k).copied(), "key {:#x}", k);
                        if oracle.contains_key(&k) {
                            prop_assert!(map.may_contain(k));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_map_allocates_nothing_and_holds_nothing() {
        let mut map = FingerprintMap::<i64>::default();
        assert_eq!(map.get(7), None);
        assert!(!map.may_contain(7));
        map.upsert(EMPTY, 1, i64::max);
        assert_eq!(map.len(), 0, "the empty key is never stored");
        map.upsert(7, 1, i64::max);
        map.retain(|_| false);
        assert_eq!((map.len(), map.slots.len(), map.filter.len()), (0, 0, 0));
    }

    #[test]
    fn a_table_grows_past_seven_eighths_and_shrinks_after_a_purge() {
        let mut map = FingerprintMap::<i64>::default();
        for k in 1..=14 {
            map.upsert(k, 1, i64::max);
        }
        assert_eq!(map.slots.len(), 16, "14 of 16 is 7/8");
        map.upsert(15, 2, i64::max);
        assert_eq!(map.slots.len(), 32);
        for k in 16..=1000 {
            map.upsert(k, 1, i64::max);
        }
        assert_eq!(map.slots.len(), 2048);
        map.retain(|v| v > 1);
        assert_eq!((map.len(), map.slots.len(), map.get(15)), (1, 16, Some(2)));
    }

    /// splitmix64: keys spread as fingerprints are.
    fn spread(n: u64) -> u64 {
        let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) | 1
    }

    #[test]
    fn the_filter_turns_most_absent_keys_away_without_reading_a_slot() {
        let mut map = FingerprintMap::<i64>::default();
        for n in 0..50_000 {
            map.upsert(spread(n), 1, i64::max);
        }
        assert_eq!(map.slots.len(), 65_536, "about 3/4 full");
        let maybe = (1_000_000..1_100_000)
            .filter(|n| map.may_contain(spread(*n)))
            .count();
        assert!(
            maybe < 15_000,
            "{maybe} of 100000 absent keys passed the filter"
        );
        assert!((0..50_000).all(|n| map.may_contain(spread(n))));
    }
}
