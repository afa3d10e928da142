//! In-memory adapters: the embedded defaults for a single instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use tessera_application::ports::{
    Clock, DirectoryError, DirectoryUser, RevocationError, RevocationQuery, RevocationStatus,
    RevocationStore, UserDirectory, WatermarkKind, WatermarkScope,
};
use tessera_domain::{Role, SessionId, SessionLifetimes, UserId};
use time::OffsetDateTime;

use crate::revocation_state::RevocationState;

/// The Unix second at or before which a watermark can no longer cover any
/// acceptable token: every token issued then is past its absolute lifetime,
/// leeway included.
/// Saturates (forgets nothing) should the subtraction leave the calendar.
pub(crate) fn purge_horizon(now: OffsetDateTime, lifetimes: &SessionLifetimes) -> i64 {
    now.checked_sub(lifetimes.absolute())
        .and_then(|t| t.checked_sub(lifetimes.leeway()))
        .map_or(i64::MIN, OffsetDateTime::unix_timestamp)
}

/// `at` rounded up to whole seconds: a logout is never kept shorter.
pub(crate) fn ceil_seconds(at: OffsetDateTime) -> i64 {
    at.unix_timestamp() + i64::from(at.nanosecond() > 0)
}

/// Logouts and watermarks held in this process's memory.
///
/// The embedded default for a single instance; several instances need a
/// shared store. It is its own authority (there is nothing behind it to
/// ask), so it keeps what the shared stores keep in their tables: a logout
/// until its end, a watermark until every token it covers is past its
/// absolute lifetime; its entries are as compact as the shared stores'
/// caches'. Memory stays bounded: writes drop the entries that can no
/// longer matter (the first write of each second of its clock).
pub struct InMemoryRevocationStore {
    state: RwLock<RevocationState>,
    /// The clock's second of the last purge: a write purges at most once a
    /// second, so that a burst of writes into a large state stays linear.
    purged_at: AtomicI64,
    clock: Arc<dyn Clock>,
    lifetimes: SessionLifetimes,
}

impl std::fmt::Debug for InMemoryRevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryRevocationStore")
            .field("entries", &self.len())
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

impl InMemoryRevocationStore {
    /// An empty store that purges by `clock` what `lifetimes` make irrelevant.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>, lifetimes: SessionLifetimes) -> Self {
        Self {
            state: RwLock::new(RevocationState::default()),
            purged_at: AtomicI64::new(i64::MIN),
            clock,
            lifetimes,
        }
    }

    /// How many logouts and watermarks are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self, change: impl FnOnce(&mut RevocationState)) {
        // A panic while holding the lock cannot leave the maps half-written
        // in a way that matters: every change is one insert or remove.
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now();
        let second = now.unix_timestamp();
        if self.purged_at.swap(second, Ordering::Relaxed) != second {
            state.purge(second, purge_horizon(now, &self.lifetimes));
        }
        change(&mut state);
    }
}

#[async_trait]
impl RevocationStore for InMemoryRevocationStore {
    fn check<'a>(&self, query: RevocationQuery<'a>) -> Result<RevocationStatus, RevocationError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Ok(state.check(&query))
    }

    async fn revoke_session(
        &self,
        session_id: SessionId,
        until: OffsetDateTime,
    ) -> Result<(), RevocationError> {
        self.write(|s| s.log_out(&session_id, ceil_seconds(until)));
        Ok(())
    }

    async fn set_watermark(
        &self,
        scope: WatermarkScope,
        kind: WatermarkKind,
        at: OffsetDateTime,
    ) -> Result<(), RevocationError> {
        self.write(|s| s.raise(scope, kind, at.unix_timestamp()));
        Ok(())
    }

    async fn clear_watermark(
        &self,
        scope: WatermarkScope,
        kind: WatermarkKind,
    ) -> Result<(), RevocationError> {
        self.write(|s| s.clear(&scope, kind));
        Ok(())
    }
}

/// Users held in this process's memory: for tests, demos and small
/// deployments whose users are configured rather than stored.
#[derive(Debug)]
pub struct InMemoryUserDirectory<R> {
    users: RwLock<HashMap<UserId, DirectoryUser<R>>>,
}

impl<R: Role> Default for InMemoryUserDirectory<R> {
    fn default() -> Self {
        Self {
            users: RwLock::new(HashMap::new()),
        }
    }
}

impl<R: Role> InMemoryUserDirectory<R> {
    /// An empty directory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a user.
    pub fn upsert(&self, user: DirectoryUser<R>) {
        self.users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.user_id, user);
    }

    /// Removes a user; returns whether they existed.
    pub fn remove(&self, user_id: &UserId) -> bool {
        self.users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user_id)
            .is_some()
    }
}

#[async_trait]
impl<R: Role> UserDirectory<R> for InMemoryUserDirectory<R> {
    async fn find(&self, user_id: &UserId) -> Result<Option<DirectoryUser<R>>, DirectoryError> {
        Ok(self
            .users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user_id)
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_ends_are_rounded_up_to_whole_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(100).unwrap();
        assert_eq!(ceil_seconds(t), 100);
        assert_eq!(ceil_seconds(t + time::Duration::milliseconds(1)), 101);
    }
}
