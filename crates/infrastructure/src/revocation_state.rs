//! The revocation state every store answers from, in compact maps: the
//! state behind [`InMemoryRevocationStore`](crate::InMemoryRevocationStore)
//! and behind the shared stores' local caches, so that all answer alike.
//!
//! Session and user ids are kept as 64-bit fingerprints (SipHash-1-3 under a
//! random key drawn per state), each with one Unix second: 16 bytes a
//! cached entry, about 34 bytes in the hash table at a million entries,
//! against about 120 for the ids themselves with time stamps. Two ids share
//! a fingerprint with probability 2⁻⁶⁴ per pair (about 3·10⁻⁸ that any pair
//! does among a million), and the key is secret to the process, so no one
//! can aim for a collision. A collision makes a session look logged out, or
//! a user look force-logged-out, who is not (fail closed); only when the
//! colliding user's watermark is then cleared could it lift one it should
//! not have.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use tessera_application::ports::{
    RevocationQuery, RevocationReason, RevocationStatus, WatermarkKind, WatermarkScope,
};
use tessera_domain::{SessionId, TenantId};
use uuid::Uuid;

/// A hasher that passes a fingerprint through: fingerprints are already
/// keyed hashes, uniformly spread.
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are `u64`); fold anything else
        // in rather than panic.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ByFingerprint = HashMap<u64, i64, BuildHasherDefault<PassThrough>>;

/// The watermarks of one kind, in Unix seconds.
#[derive(Debug, Default)]
struct Watermarks {
    users: ByFingerprint,
    tenants: HashMap<TenantId, i64>,
    everyone: Option<i64>,
}

impl Watermarks {
    /// Which scope, if any, covers a token issued at `iat` (whole seconds)
    /// by user `user` (a fingerprint).
    fn covering(&self, tenant: Option<&TenantId>, user: u64, iat: i64) -> Option<RevocationReason> {
        let covers = |w: Option<&i64>| w.is_some_and(|w| iat <= *w);
        if covers(self.everyone.as_ref()) {
            Some(RevocationReason::EveryoneLoggedOut)
        } else if tenant.is_some_and(|t| covers(self.tenants.get(t))) {
            Some(RevocationReason::TenantLoggedOut)
        } else if covers(self.users.get(&user)) {
            Some(RevocationReason::UserLoggedOut)
        } else {
            None
        }
    }

    /// Drops watermarks at or before `horizon`.
    fn purge(&mut self, horizon: i64) {
        self.users.retain(|_, w| *w > horizon);
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
    sessions: ByFingerprint,
    force_logout: Watermarks,
    claims_stale: Watermarks,
}

impl RevocationState {
    fn fingerprint(&self, id: &Uuid) -> u64 {
        self.keys.hash_one(id.as_u128())
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
        if !self.sessions.is_empty()
            && self
                .sessions
                .contains_key(&self.fingerprint(query.session_id.as_uuid()))
        {
            return RevocationStatus::Revoked(RevocationReason::SessionLoggedOut);
        }
        let iat = query.issued_at.unix_timestamp();
        let user = self.fingerprint(query.user_id.as_uuid());
        if let Some(reason) = self.force_logout.covering(query.tenant, user, iat) {
            return RevocationStatus::Revoked(reason);
        }
        if self
            .claims_stale
            .covering(query.tenant, user, iat)
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
        let entry = self.sessions.entry(key).or_insert(keep_until);
        *entry = (*entry).max(keep_until);
    }

    /// Raises a watermark to `at` (Unix seconds); never lowers it.
    pub fn raise(&mut self, scope: WatermarkScope, kind: WatermarkKind, at: i64) {
        let user = match &scope {
            WatermarkScope::User(id) => Some(self.fingerprint(id.as_uuid())),
            _ => None,
        };
        let marks = self.watermarks(kind);
        let mark = match (scope, user) {
            (WatermarkScope::User(_), Some(key)) => marks.users.entry(key).or_insert(at),
            (WatermarkScope::Tenant(id), _) => marks.tenants.entry(id).or_insert(at),
            _ => marks.everyone.get_or_insert(at),
        };
        *mark = (*mark).max(at);
    }

    /// Removes a watermark.
    pub fn clear(&mut self, scope: &WatermarkScope, kind: WatermarkKind) {
        let user = match scope {
            WatermarkScope::User(id) => Some(self.fingerprint(id.as_uuid())),
            _ => None,
        };
        let marks = self.watermarks(kind);
        match (scope, user) {
            (WatermarkScope::User(_), Some(key)) => {
                marks.users.remove(&key);
            }
            (WatermarkScope::Tenant(id), _) => {
                marks.tenants.remove(id);
            }
            _ => marks.everyone = None,
        }
    }

    /// Drops logouts whose keeping ended at or before `now`, and watermarks
    /// at or before `horizon` (Unix seconds both).
    pub fn purge(&mut self, now: i64, horizon: i64) {
        self.sessions.retain(|_, until| *until > now);
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

    #[test]
    fn the_pass_through_hasher_never_panics_on_bytes() {
        let mut h = PassThrough::default();
        h.write(&[1, 2, 3]);
        assert_ne!(h.finish(), 0);
    }
}
