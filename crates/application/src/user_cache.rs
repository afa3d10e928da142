//! A bounded, TTL-limited cache of provider-linked users, in front of an
//! [`ExternalUserDirectory`], for the provider-token path: a request that
//! carries a provider token looks its user up on every call.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use tessera_domain::Role;
use time::{Duration, OffsetDateTime};

use crate::external::{
    ExternalProfile, ExternalSubject, ExternalUser, ExternalUserDirectory, UpsertOutcome,
};
use crate::ports::{Clock, DirectoryError};

/// How many users a [`CachedExternalUserDirectory`] keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCachePolicy {
    capacity: usize,
    ttl: Duration,
}

impl UserCachePolicy {
    /// At most `capacity` users, each for at most `ttl` after it was read
    /// or written. A capacity of 0, or a TTL of zero or less, caches
    /// nothing.
    #[must_use]
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self { capacity, ttl }
    }

    /// The capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The time to live.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn caches_nothing(&self) -> bool {
        self.capacity == 0 || !self.ttl.is_positive()
    }
}

impl Default for UserCachePolicy {
    /// 10 000 users for 60 seconds.
    fn default() -> Self {
        Self::new(10_000, Duration::seconds(60))
    }
}

#[derive(Debug)]
struct Entry<R> {
    user: ExternalUser<R>,
    expires_at: OffsetDateTime,
    seq: u64,
}

/// Entries by issuer then subject (so that a lookup borrows both keys and
/// allocates nothing), and their insertion order. With one TTL for all,
/// insertion order is expiry order: the front of `order` is both the
/// oldest entry and the first to expire. `order` may hold keys of entries
/// since replaced or removed (told apart by `seq`); it is compacted when it
/// grows past twice the capacity.
#[derive(Debug)]
struct Entries<R> {
    by_issuer: HashMap<String, HashMap<String, Entry<R>>>,
    order: VecDeque<(String, String, u64)>,
    len: usize,
    next_seq: u64,
}

impl<R> Entries<R> {
    fn remove(&mut self, issuer: &str, subject: &str) -> Option<Entry<R>> {
        let subjects = self.by_issuer.get_mut(issuer)?;
        let removed = subjects.remove(subject)?;
        if subjects.is_empty() {
            self.by_issuer.remove(issuer);
        }
        self.len = self.len.saturating_sub(1);
        Some(removed)
    }

    fn is_live(&self, issuer: &str, subject: &str, seq: u64) -> bool {
        self.by_issuer
            .get(issuer)
            .and_then(|s| s.get(subject))
            .is_some_and(|e| e.seq == seq)
    }

    /// Drops, from the front, entries that expired, then as many of the
    /// oldest as it takes to get below `capacity`.
    fn make_room(&mut self, capacity: usize, now: OffsetDateTime) {
        while let Some((issuer, subject, seq)) = self.order.front() {
            // Whether a live entry stays; `None` for a stale key (its entry
            // was replaced or removed).
            let keep = self
                .by_issuer
                .get(issuer.as_str())
                .and_then(|s| s.get(subject.as_str()))
                .filter(|e| e.seq == *seq)
                .map(|entry| entry.expires_at > now && self.len < capacity);
            if keep == Some(true) {
                break;
            }
            let Some((issuer, subject, _)) = self.order.pop_front() else {
                break;
            };
            if keep.is_some() {
                self.remove(&issuer, &subject);
            }
        }
    }

    fn compact(&mut self, capacity: usize) {
        if self.order.len() > capacity.saturating_mul(2).saturating_add(16) {
            let order = std::mem::take(&mut self.order);
            self.order = order
                .into_iter()
                .filter(|(i, s, seq)| self.is_live(i, s, *seq))
                .collect();
        }
    }
}

/// The clock, printed as its name only.
struct ClockHandle(Arc<dyn Clock>);

impl std::fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// An [`ExternalUserDirectory`] that keeps the users it finds or writes in
/// a bounded map for a while.
///
/// - At most `capacity` users: when full, the oldest entry goes first
///   (entries all live for the same TTL, so the oldest is also the first to
///   expire). Expired entries are never returned and are dropped as new
///   ones arrive; memory stays bounded whatever the traffic.
/// - Every upsert through it replaces the entry with the record as stored;
///   every delete through it removes it. A lookup that races with a write
///   never puts the older record back.
/// - Writes that bypass it (another instance, or a directory written
///   directly) reach it when the entry expires: the TTL bounds how stale a
///   role or enabled flag can be. Wire the provider's webhooks through the
///   same instance, or call [`invalidate`](Self::invalidate).
///
/// Unknown accounts are not cached: a miss goes to the directory each time
/// (and, in [`ResolveUser`](crate::ResolveUser), ends in an upsert that
/// fills the cache).
pub struct CachedExternalUserDirectory<R> {
    inner: Arc<dyn ExternalUserDirectory<R>>,
    policy: UserCachePolicy,
    clock: ClockHandle,
    entries: RwLock<Entries<R>>,
    /// Bumped by every write; a lookup caches what it read only if no write
    /// happened since it started.
    epoch: AtomicU64,
}

impl<R> std::fmt::Debug for CachedExternalUserDirectory<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedExternalUserDirectory")
            .field("policy", &self.policy)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<R: Role> CachedExternalUserDirectory<R> {
    /// A cache of `policy` in front of `inner`, expiring entries by `clock`.
    #[must_use]
    pub fn new(
        inner: Arc<dyn ExternalUserDirectory<R>>,
        policy: UserCachePolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            policy,
            clock: ClockHandle(clock),
            entries: RwLock::new(Entries {
                by_issuer: HashMap::new(),
                order: VecDeque::new(),
                len: 0,
                next_seq: 0,
            }),
            epoch: AtomicU64::new(0),
        }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> UserCachePolicy {
        self.policy
    }

    /// How many entries the cache holds (expired ones included until they
    /// are dropped).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len
    }

    /// Whether the cache holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets one account, so that the next lookup reads the directory.
    pub fn invalidate(&self, issuer: &str, subject: &ExternalSubject) {
        self.forget(issuer, subject);
    }

    /// Forgets one account; returns the epoch that write started.
    fn forget(&self, issuer: &str, subject: &ExternalSubject) -> u64 {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(issuer, subject.as_str());
        epoch
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.by_issuer.clear();
        entries.order.clear();
        entries.len = 0;
    }

    fn get(&self, issuer: &str, subject: &ExternalSubject) -> Option<ExternalUser<R>> {
        if self.policy.caches_nothing() {
            return None;
        }
        let now = self.clock.0.now();
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .by_issuer
            .get(issuer)?
            .get(subject.as_str())
            .filter(|e| e.expires_at > now)
            .map(|e| e.user.clone())
    }

    /// Stores `user`, unless a write started after epoch `since`.
    fn put(&self, user: &ExternalUser<R>, since: u64) {
        if self.policy.caches_nothing() {
            return;
        }
        let now = self.clock.0.now();
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        // Read under the lock: writers bump the epoch before taking it.
        if since != self.epoch.load(Ordering::SeqCst) {
            return;
        }
        entries.remove(&user.issuer, user.subject.as_str());
        entries.make_room(self.policy.capacity, now);
        let seq = entries.next_seq;
        entries.next_seq = seq.wrapping_add(1);
        entries
            .by_issuer
            .entry(user.issuer.clone())
            .or_default()
            .insert(
                user.subject.as_str().to_owned(),
                Entry {
                    user: user.clone(),
                    expires_at: now.saturating_add(self.policy.ttl),
                    seq,
                },
            );
        entries.len += 1;
        entries
            .order
            .push_back((user.issuer.clone(), user.subject.as_str().to_owned(), seq));
        entries.compact(self.policy.capacity);
    }
}

#[async_trait]
impl<R: Role> ExternalUserDirectory<R> for CachedExternalUserDirectory<R> {
    async fn find_by_external_id(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        if let Some(user) = self.get(issuer, subject) {
            return Ok(Some(user));
        }
        let since = self.epoch.load(Ordering::SeqCst);
        let found = self.inner.find_by_external_id(issuer, subject).await?;
        if let Some(user) = &found {
            self.put(user, since);
        }
        Ok(found)
    }

    async fn upsert_external(
        &self,
        profile: ExternalProfile<R>,
    ) -> Result<UpsertOutcome<R>, DirectoryError> {
        let (issuer, subject) = (profile.issuer.clone(), profile.subject.clone());
        let since = self.forget(&issuer, &subject);
        let result = self.inner.upsert_external(profile).await;
        // Kept only if no other write started meanwhile: of two concurrent
        // upserts, which one the directory applied last is unknown here, so
        // neither is cached. A deleted account has nothing to keep.
        match result.as_ref().map(UpsertOutcome::stored) {
            Ok(Some(stored)) => self.put(stored, since),
            Ok(None) | Err(_) => {
                self.forget(&issuer, &subject);
            }
        }
        result
    }

    async fn delete_external(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
        as_of: Option<OffsetDateTime>,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        self.forget(issuer, subject);
        let result = self.inner.delete_external(issuer, subject, as_of).await;
        self.forget(issuer, subject);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;

    use mockall::predicate::eq;

    use super::*;
    use crate::external::{AsOf, MockExternalUserDirectory, Upserted};
    use crate::ports::DirectoryUser;
    use crate::testing::{ISSUER, NOW, at};
    use tessera_domain::{UserId, UserRole};

    #[derive(Debug)]
    struct ManualClock(AtomicI64);

    impl ManualClock {
        fn advance(&self, seconds: i64) {
            self.0.fetch_add(seconds, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> OffsetDateTime {
            at(self.0.load(Ordering::SeqCst))
        }
    }

    fn subject(n: usize) -> ExternalSubject {
        ExternalSubject::parse(&format!("user_{n}")).unwrap()
    }

    fn stored(n: usize, role: UserRole) -> ExternalUser<UserRole> {
        ExternalUser {
            user: DirectoryUser {
                user_id: UserId::parse(&format!("0190b5a4-7c2e-7d3a-9f00-{n:012x}")).unwrap(),
                role,
                capabilities: Default::default(),
                tenant: None,
                enabled: true,
            },
            issuer: ISSUER.into(),
            subject: subject(n),
            email: None,
            name: None,
        }
    }

    fn profile(n: usize, role: UserRole) -> ExternalProfile<UserRole> {
        ExternalProfile {
            issuer: ISSUER.into(),
            subject: subject(n),
            role,
            email: None,
            name: None,
            enabled: None,
            as_of: AsOf::Unknown,
        }
    }

    fn cache(
        inner: MockExternalUserDirectory<UserRole>,
        capacity: usize,
        ttl: i64,
    ) -> (CachedExternalUserDirectory<UserRole>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock(AtomicI64::new(NOW)));
        let cache = CachedExternalUserDirectory::new(
            Arc::new(inner),
            UserCachePolicy::new(capacity, Duration::seconds(ttl)),
            clock.clone(),
        );
        (cache, clock)
    }

    fn finds(inner: &mut MockExternalUserDirectory<UserRole>, n: usize, times: usize) {
        inner
            .expect_find_by_external_id()
            .with(eq(ISSUER), eq(subject(n)))
            .times(times)
            .returning(move |_, _| Ok(Some(stored(n, UserRole::User))));
    }

    #[tokio::test]
    async fn a_found_user_is_served_from_the_cache_until_the_ttl_expires() {
        let mut inner = MockExternalUserDirectory::new();
        finds(&mut inner, 1, 2);
        let (cache, clock) = cache(inner, 10, 60);
        for _ in 0..3 {
            let found = cache.find_by_external_id(ISSUER, &subject(1)).await;
            assert_eq!(found.unwrap(), Some(stored(1, UserRole::User)));
        }
        clock.advance(59);
        assert!(cache.find_by_external_id(ISSUER, &subject(1)).await.is_ok());
        clock.advance(1);
        // Expired at exactly the TTL: the second directory read.
        assert!(cache.find_by_external_id(ISSUER, &subject(1)).await.is_ok());
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn a_full_cache_evicts_the_oldest_entry_and_never_grows_past_its_capacity() {
        let mut inner = MockExternalUserDirectory::new();
        finds(&mut inner, 0, 2); // evicted, so read again
        for n in 1..=3 {
            finds(&mut inner, n, 1);
        }
        let (cache, clock) = cache(inner, 3, 60);
        for n in 0..=3 {
            cache
                .find_by_external_id(ISSUER, &subject(n))
                .await
                .unwrap();
            clock.advance(1);
            assert!(cache.len() <= 3);
        }
        for n in 1..=3 {
            cache
                .find_by_external_id(ISSUER, &subject(n))
                .await
                .unwrap();
        }
        cache
            .find_by_external_id(ISSUER, &subject(0))
            .await
            .unwrap();
        assert_eq!(cache.len(), 3);
    }

    #[tokio::test]
    async fn expired_entries_are_dropped_when_a_new_one_arrives_below_capacity() {
        let mut inner = MockExternalUserDirectory::new();
        for n in 1..=3 {
            finds(&mut inner, n, 1);
        }
        let (cache, clock) = cache(inner, 10, 60);
        for n in 1..=2 {
            cache
                .find_by_external_id(ISSUER, &subject(n))
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        clock.advance(60);
        cache
            .find_by_external_id(ISSUER, &subject(3))
            .await
            .unwrap();
        // Far below the capacity, yet the two expired entries are gone.
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.entries.read().unwrap().order.len(), 1);
    }

    #[tokio::test]
    async fn many_distinct_users_keep_the_cache_and_its_queue_bounded() {
        let mut inner = MockExternalUserDirectory::new();
        inner
            .expect_find_by_external_id()
            .times(1000)
            .returning(|_, s| {
                let n = s.as_str().trim_start_matches("user_").parse().unwrap();
                Ok(Some(stored(n, UserRole::User)))
            });
        let (cache, _clock) = cache(inner, 8, 60);
        for n in 0..1000 {
            cache
                .find_by_external_id(ISSUER, &subject(n))
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 8);
        let entries = cache.entries.read().unwrap();
        assert!(entries.order.len() <= 8 * 2 + 16);
    }

    #[tokio::test]
    async fn an_upsert_through_the_cache_replaces_the_entry_and_a_delete_removes_it() {
        let mut inner = MockExternalUserDirectory::new();
        finds(&mut inner, 1, 1);
        inner
            .expect_upsert_external()
            .with(eq(profile(1, UserRole::Admin)))
            .times(1)
            .returning(|_| {
                Ok(UpsertOutcome::Written(Upserted {
                    current: stored(1, UserRole::Admin),
                    previous: Some(stored(1, UserRole::User)),
                }))
            });
        inner
            .expect_delete_external()
            .with(eq(ISSUER), eq(subject(1)), eq(Some(at(NOW))))
            .times(1)
            .returning(|_, _, _| Ok(Some(stored(1, UserRole::Admin))));
        let (cache, _clock) = cache(inner, 10, 60);
        let before = cache.find_by_external_id(ISSUER, &subject(1)).await;
        assert_eq!(before.unwrap().unwrap().user.role, UserRole::User);
        cache
            .upsert_external(profile(1, UserRole::Admin))
            .await
            .unwrap();
        // Served from the cache (the directory's find ran once), new role.
        let after = cache.find_by_external_id(ISSUER, &subject(1)).await;
        assert_eq!(after.unwrap().unwrap().user.role, UserRole::Admin);
        cache
            .delete_external(ISSUER, &subject(1), Some(at(NOW)))
            .await
            .unwrap();
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_stale_upsert_caches_the_stored_record_and_a_deleted_account_nothing() {
        let mut inner = MockExternalUserDirectory::new();
        inner
            .expect_upsert_external()
            .with(eq(profile(1, UserRole::Admin)))
            .times(1)
            .returning(|_| Ok(UpsertOutcome::Stale(stored(1, UserRole::User))));
        inner
            .expect_upsert_external()
            .with(eq(profile(2, UserRole::Admin)))
            .times(1)
            .returning(|_| {
                Ok(UpsertOutcome::Deleted {
                    deleted_as_of: at(NOW),
                })
            });
        finds(&mut inner, 1, 0);
        inner
            .expect_find_by_external_id()
            .with(eq(ISSUER), eq(subject(2)))
            .times(1)
            .returning(|_, _| Ok(None));
        let (cache, _clock) = cache(inner, 10, 60);
        cache
            .upsert_external(profile(1, UserRole::Admin))
            .await
            .unwrap();
        cache
            .upsert_external(profile(2, UserRole::Admin))
            .await
            .unwrap();
        assert_eq!(cache.len(), 1);
        // The stored record, served from the cache: the stale role is not.
        let found = cache.find_by_external_id(ISSUER, &subject(1)).await;
        assert_eq!(found.unwrap().unwrap().user.role, UserRole::User);
        // The deleted account reads the directory, which knows no user.
        let found = cache.find_by_external_id(ISSUER, &subject(2)).await;
        assert_eq!(found.unwrap(), None);
    }

    #[tokio::test]
    async fn unknown_accounts_and_failures_are_not_cached() {
        let mut inner = MockExternalUserDirectory::new();
        inner
            .expect_find_by_external_id()
            .times(2)
            .returning(|_, _| Ok(None));
        inner
            .expect_upsert_external()
            .times(1)
            .returning(|_| Err(DirectoryError::Unavailable("db down".into())));
        let (cache, _clock) = cache(inner, 10, 60);
        for _ in 0..2 {
            let found = cache.find_by_external_id(ISSUER, &subject(1)).await;
            assert_eq!(found.unwrap(), None);
        }
        assert!(
            cache
                .upsert_external(profile(1, UserRole::User))
                .await
                .is_err()
        );
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn invalidate_and_a_zero_capacity_make_lookups_read_the_directory() {
        let mut inner = MockExternalUserDirectory::new();
        finds(&mut inner, 1, 2);
        let (cache, _clock) = cache(inner, 10, 60);
        cache
            .find_by_external_id(ISSUER, &subject(1))
            .await
            .unwrap();
        cache.invalidate(ISSUER, &subject(1));
        cache
            .find_by_external_id(ISSUER, &subject(1))
            .await
            .unwrap();

        let mut inner = MockExternalUserDirectory::new();
        finds(&mut inner, 1, 2);
        let (cache, _clock) = super::tests::cache(inner, 0, 60);
        for _ in 0..2 {
            cache
                .find_by_external_id(ISSUER, &subject(1))
                .await
                .unwrap();
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn a_lookup_that_started_before_a_write_does_not_store_what_it_read() {
        let (cache, _clock) = cache(MockExternalUserDirectory::new(), 10, 60);
        let since = cache.epoch.load(Ordering::SeqCst);
        cache.invalidate(ISSUER, &subject(1)); // a write lands meanwhile
        cache.put(&stored(1, UserRole::User), since);
        assert!(cache.is_empty());
    }
}
