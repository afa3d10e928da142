//! In-memory adapters: the embedded defaults for a single instance.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use tessera_application::ports::{
    Clock, DirectoryError, DirectoryUser, RevocationError, RevocationQuery, RevocationReason,
    RevocationStatus, RevocationStore, UserDirectory, WatermarkKind, WatermarkScope,
};
use tessera_domain::{Role, SessionId, SessionLifetimes, TenantId, UserId};
use time::OffsetDateTime;

/// The watermarks of one kind, in Unix seconds.
#[derive(Debug, Default)]
struct Watermarks {
    users: HashMap<UserId, i64>,
    tenants: HashMap<TenantId, i64>,
    everyone: Option<i64>,
}

impl Watermarks {
    /// Raises the scope's watermark to `at`; never lowers it.
    fn raise(&mut self, scope: WatermarkScope, at: i64) {
        let mark = match scope {
            WatermarkScope::User(id) => self.users.entry(id).or_insert(at),
            WatermarkScope::Tenant(id) => self.tenants.entry(id).or_insert(at),
            WatermarkScope::Everyone => self.everyone.get_or_insert(at),
        };
        *mark = (*mark).max(at);
    }

    /// Removes the scope's watermark.
    fn clear(&mut self, scope: &WatermarkScope) {
        match scope {
            WatermarkScope::User(id) => {
                self.users.remove(id);
            }
            WatermarkScope::Tenant(id) => {
                self.tenants.remove(id);
            }
            WatermarkScope::Everyone => self.everyone = None,
        }
    }

    /// Which scope, if any, covers a token issued at `iat` (whole seconds).
    fn covering(&self, q: &RevocationQuery<'_>, iat: i64) -> Option<RevocationReason> {
        let covers = |w: Option<&i64>| w.is_some_and(|w| iat <= *w);
        if covers(self.everyone.as_ref()) {
            Some(RevocationReason::EveryoneLoggedOut)
        } else if q.tenant.is_some_and(|t| covers(self.tenants.get(t))) {
            Some(RevocationReason::TenantLoggedOut)
        } else if covers(self.users.get(q.user_id)) {
            Some(RevocationReason::UserLoggedOut)
        } else {
            None
        }
    }

    /// Drops watermarks at or before `horizon`: every token they could cover
    /// is past its absolute lifetime.
    fn purge(&mut self, horizon: i64) {
        self.users.retain(|_, w| *w > horizon);
        self.tenants.retain(|_, w| *w > horizon);
        self.everyone = self.everyone.filter(|w| *w > horizon);
    }

    fn len(&self) -> usize {
        self.users.len() + self.tenants.len() + usize::from(self.everyone.is_some())
    }
}

/// Logouts and watermarks, and the rules that read them: the state behind
/// [`InMemoryRevocationStore`] and behind the PostgreSQL store's local cache,
/// so that both answer alike.
#[derive(Debug, Default)]
pub(crate) struct RevocationState {
    sessions: HashMap<SessionId, OffsetDateTime>,
    force_logout: Watermarks,
    claims_stale: Watermarks,
}

impl RevocationState {
    fn watermarks(&mut self, kind: WatermarkKind) -> &mut Watermarks {
        match kind {
            WatermarkKind::ForceLogout => &mut self.force_logout,
            WatermarkKind::ClaimsStale => &mut self.claims_stale,
        }
    }

    /// The session's standing: a logout, then a force-logout, then
    /// claims-stale, in that order of precedence.
    pub(crate) fn check(&self, query: &RevocationQuery<'_>) -> RevocationStatus {
        if self.sessions.contains_key(query.session_id) {
            return RevocationStatus::Revoked(RevocationReason::SessionLoggedOut);
        }
        let iat = query.issued_at.unix_timestamp();
        if let Some(reason) = self.force_logout.covering(query, iat) {
            return RevocationStatus::Revoked(reason);
        }
        if self.claims_stale.covering(query, iat).is_some() {
            return RevocationStatus::ClaimsStale;
        }
        RevocationStatus::Active
    }

    /// Logs a session out until `until`; a later end replaces an earlier one.
    pub(crate) fn log_out(&mut self, session_id: SessionId, until: OffsetDateTime) {
        let entry = self.sessions.entry(session_id).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Raises a watermark to `at` (Unix seconds); never lowers it.
    pub(crate) fn raise(&mut self, scope: WatermarkScope, kind: WatermarkKind, at: i64) {
        self.watermarks(kind).raise(scope, at);
    }

    /// Removes a watermark.
    pub(crate) fn clear(&mut self, scope: WatermarkScope, kind: WatermarkKind) {
        self.watermarks(kind).clear(&scope);
    }

    /// Drops what can no longer matter at `now`: logouts past their end,
    /// watermarks at or before `now - absolute lifetime - leeway`.
    pub(crate) fn purge(&mut self, now: OffsetDateTime, lifetimes: &SessionLifetimes) {
        self.sessions.retain(|_, until| *until > now);
        let horizon = purge_horizon(now, lifetimes);
        self.force_logout.purge(horizon);
        self.claims_stale.purge(horizon);
    }

    /// How many logouts and watermarks are held.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len() + self.force_logout.len() + self.claims_stale.len()
    }
}

/// The Unix second at or before which a watermark can no longer cover any
/// acceptable token: every token issued then is past its absolute lifetime,
/// leeway included.
/// Saturates (forgets nothing) should the subtraction leave the calendar.
pub(crate) fn purge_horizon(now: OffsetDateTime, lifetimes: &SessionLifetimes) -> i64 {
    now.checked_sub(lifetimes.absolute())
        .and_then(|t| t.checked_sub(lifetimes.leeway()))
        .map_or(i64::MIN, OffsetDateTime::unix_timestamp)
}

/// Logouts and watermarks held in this process's memory.
///
/// The embedded default for a single instance; several instances need a
/// shared store. Memory stays bounded: every write drops the entries that
/// can no longer matter (session logouts past their end, watermarks older
/// than the absolute session lifetime).
pub struct InMemoryRevocationStore {
    state: RwLock<RevocationState>,
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
        state.purge(self.clock.now(), &self.lifetimes);
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
        self.write(|s| s.log_out(session_id, until));
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
        self.write(|s| s.clear(scope, kind));
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
