//! The revocation state every store answers from, in compact maps: the
//! state behind [`InMemoryRevocationStore`](crate::InMemoryRevocationStore)
//! and behind the shared stores' local caches, so that all answer alike.
//!
//! Session and user ids are kept as 64-bit fingerprints (SipHash-1-3 under a
//! random key drawn per state), each with one Unix second: a 16-byte slot
//! in a table at most 7/8 full, with half a byte a slot of Bloom filter in
//! front ([`FingerprintMap`]): about 34 bytes a cached entry at a million
//! entries, against about 120 for the ids themselves with time stamps. Two
//! ids share a fingerprint with probability 2⁻⁶⁴ per pair (about 3·10⁻⁸
//! that any pair does among a million), and the key is secret to the
//! process, so no one can aim for a collision. A collision makes a session
//! look logged out, or a user look force-logged-out, who is not (fail
//! closed); only when the colliding user's watermark is then cleared could
//! it lift one it should not have.
//!
//! A check at that size reads the filters (which stay in the CPU caches)
//! for the session and the user, both before either answer is used, and
//! the table only when a filter says "maybe": one read from main memory
//! for a revoked session, none for most live ones.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use tessera_application::ports::{
    RevocationQuery, RevocationReason, RevocationStatus, WatermarkKind, WatermarkScope,
};
use tessera_domain::{SessionId, TenantId};
use uuid::Uuid;

use crate::fingerprint_map::{EMPTY, FingerprintMap};

/// The watermarks of one kind, in Unix seconds.
#[derive(Debug, Default)]
struct Watermarks {
    users: FingerprintMap<i64>,
    tenants: HashMap<TenantId, i64>,
    everyone: Option<i64>,
}

impl Watermarks {
    /// Which scope, if any, covers a token issued at `iat` (whole seconds)
    /// by user `user` (a fingerprint), given whether the user filter let
    /// `user` through.
    fn covering(
        &self,
        tenant: Option<&TenantId>,
        user: Option<u64>,
        iat: i64,
    ) -> Option<RevocationReason> {
        let covers = |w: Option<i64>| w.is_some_and(|w| iat <= w);
        if covers(self.everyone) {
            Some(RevocationReason::EveryoneLoggedOut)
        } else if tenant.is_some_and(|t| covers(self.tenants.get(t).copied())) {
            Some(RevocationReason::TenantLoggedOut)
        } else if covers(user.and_then(|u| self.users.get_unfiltered(u))) {
            Some(RevocationReason::UserLoggedOut)
        } else {
            None
        }
    }

    /// Drops watermarks at or before `horizon`.
    fn purge(&mut self, horizon: i64) {
        self.users.retain(|w| w > horizon);
        self.tenants.retain(|_, w| *w > horizon);
        self.everyone = self.everyone.filter(|w| *w > horizon);
    }

    fn len(&self) -> usize {
        self.users.len() + self.tenants.len() + usize::from(self.everyone.is_some())
    }
}

/// Logouts and watermarks, and the rules that read them: what a
/// [`RevocationStore`](tessera_application::ports::RevocationStore) adapter
/// of your own (over another database, say) answers
/// [`check`](tessera_application::ports::RevocationStore::check) from, so
/// that it answers exactly as tessera's stores do. Hold it behind a lock
/// and feed it your store's changes; run
/// `tessera_application::contracts::revocation_store` (feature `testing`)
/// on the result.
///
/// What to keep and for how long is the caller's decision: each logout
/// comes with the second it may be forgotten, and [`purge`](Self::purge)
/// says up to when watermarks can no longer matter.
///
/// ```
/// use tessera_application::ports::{RevocationQuery, RevocationStatus, WatermarkKind, WatermarkScope};
/// use tessera_domain::{SessionId, UserId};
/// use tessera_infrastructure::RevocationState;
/// use time::OffsetDateTime;
///
/// let (session, user) = (
///     SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa")?,
///     UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001")?,
/// );
/// let mut state = RevocationState::default();
/// state.raise(WatermarkScope::User(user), WatermarkKind::ForceLogout, 1_700_000_000);
/// let query = RevocationQuery {
///     session_id: &session,
///     user_id: &user,
///     tenant: None,
///     issued_at: OffsetDateTime::from_unix_timestamp(1_699_999_000)?,
/// };
/// assert!(matches!(state.check(&query), RevocationStatus::Revoked(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct RevocationState {
    keys: RandomState,
    /// Session fingerprint → the Unix second from which it may be forgotten.
    sessions: FingerprintMap<i64>,
    force_logout: Watermarks,
    claims_stale: Watermarks,
}

impl RevocationState {
    fn fingerprint(&self, id: &Uuid) -> u64 {
        match self.keys.hash_one(id.as_u128()) {
            EMPTY => 1,
            f => f,
        }
    }

    fn watermarks(&mut self, kind: WatermarkKind) -> &mut Watermarks {
        match kind {
            WatermarkKind::ForceLogout => &mut self.force_logout,
            WatermarkKind::ClaimsStale => &mut self.claims_stale,
        }
    }

    /// The session's standing: a logout, then a force-logout, then
    /// claims-stale, in that order of precedence.
    #[must_use]
    pub fn check(&self, query: &RevocationQuery<'_>) -> RevocationStatus {
        let session = self.fingerprint(query.session_id.as_uuid());
        let user = self.fingerprint(query.user_id.as_uuid());
        // All three filters are read before any answer is used, so that
        // their reads (and the table reads they let through) overlap.
        let maybe = |map: &FingerprintMap<i64>, key: u64| map.may_contain(key).then_some(key);
        let (session, forced, stale) = (
            maybe(&self.sessions, session),
            maybe(&self.force_logout.users, user),
            maybe(&self.claims_stale.users, user),
        );
        if session.is_some_and(|s| self.sessions.get_unfiltered(s).is_some()) {
            return RevocationStatus::Revoked(RevocationReason::SessionLoggedOut);
        }
        let iat = query.issued_at.unix_timestamp();
        if let Some(reason) = self.force_logout.covering(query.tenant, forced, iat) {
            return RevocationStatus::Revoked(reason);
        }
        if self
            .claims_stale
            .covering(query.tenant, stale, iat)
            .is_some()
        {
            return RevocationStatus::ClaimsStale;
        }
        RevocationStatus::Active
    }

    /// Logs a session out, to be kept until `keep_until` (Unix seconds); a
    /// later end replaces an earlier one.
    pub fn log_out(&mut self, session_id: &SessionId, keep_until: i64) {
        let key = self.fingerprint(session_id.as_uuid());
        self.sessions.upsert(key, keep_until, i64::max);
    }

    /// Raises a watermark to `at` (Unix seconds); never lowers it.
    pub fn raise(&mut self, scope: WatermarkScope, kind: WatermarkKind, at: i64) {
        let user = match &scope {
            WatermarkScope::User(id) => Some(self.fingerprint(id.as_uuid())),
            _ => None,
        };
        let marks = self.watermarks(kind);
        match (scope, user) {
            (WatermarkScope::User(_), Some(key)) => marks.users.upsert(key, at, i64::max),
            (WatermarkScope::Tenant(id), _) => {
                let mark = marks.tenants.entry(id).or_insert(at);
                *mark = (*mark).max(at);
            }
            _ => marks.everyone = Some(marks.everyone.map_or(at, |w| w.max(at))),
        }
    }

    /// Removes a watermark.
    pub fn clear(&mut self, scope: &WatermarkScope, kind: WatermarkKind) {
        let user = match scope {
            WatermarkScope::User(id) => Some(self.fingerprint(id.as_uuid())),
            _ => None,
        };
        let marks = self.watermarks(kind);
        match (scope, user) {
            (WatermarkScope::User(_), Some(key)) => marks.users.remove(key),
            (WatermarkScope::Tenant(id), _) => {
                marks.tenants.remove(id);
            }
            _ => marks.everyone = None,
        }
    }

    /// Drops logouts whose keeping ended at or before `now`, and watermarks
    /// at or before `horizon` (Unix seconds both).
    pub fn purge(&mut self, now: i64, horizon: i64) {
        self.sessions.retain(|until| until > now);
        self.force_logout.purge(horizon);
        self.claims_stale.purge(horizon);
    }

    /// How many logouts and watermarks are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sessions.len() + self.force_logout.len() + self.claims_stale.len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use tessera_domain::{SessionId, UserId};
    use time::OffsetDateTime;

    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(0x0190_b5a4_7c2e_7d3a_9f00_0000_0000_0000 + n)
    }

    #[test]
    fn purge_keeps_what_ends_later_and_drops_the_rest() {
        let mut state = RevocationState::default();
        state.log_out(&SessionId::from_uuid(id(1)).unwrap(), 100);
        state.log_out(&SessionId::from_uuid(id(2)).unwrap(), 101);
        let user = UserId::from_uuid(id(3)).unwrap();
        state.raise(WatermarkScope::User(user), WatermarkKind::ForceLogout, 50);
        state.raise(WatermarkScope::Everyone, WatermarkKind::ClaimsStale, 51);
        assert_eq!(state.len(), 4);
        state.purge(100, 50);
        assert_eq!(state.len(), 2);
        let session = SessionId::from_uuid(id(2)).unwrap();
        let query = RevocationQuery {
            session_id: &session,
            user_id: &user,
            tenant: None,
            issued_at: OffsetDateTime::from_unix_timestamp(51).unwrap(),
        };
        assert_eq!(
            state.check(&query),
            RevocationStatus::Revoked(RevocationReason::SessionLoggedOut)
        );
    }
}
