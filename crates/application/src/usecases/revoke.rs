//! RevokeSession: logout, force-logout and "permissions changed".

use std::sync::Arc;

use tessera_domain::{SessionId, SessionLifetimes};
use time::OffsetDateTime;

use crate::ports::{Clock, RevocationError, RevocationStore, WatermarkKind, WatermarkScope};

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeRequest {
    /// Log one session out: every token of it, past and rotated.
    Session {
        /// The session (`jti`).
        session_id: SessionId,
        /// When its user authenticated (`auth_time`), which bounds how long
        /// any token of the session can live.
        authenticated_at: OffsetDateTime,
    },
    /// Invalidate every session in scope issued up to now.
    ForceLogout(WatermarkScope),
    /// Lift a force-logout, so that sessions issued before it stand again
    /// (those still within their own lifetimes).
    ClearForceLogout(WatermarkScope),
    /// The permissions of everyone in scope changed: sessions issued up to
    /// now must rotate, reading role and capabilities afresh, but stay signed in.
    PermissionsChanged(WatermarkScope),
}

/// Why a revocation was not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeError {
    /// The revocation store could not record it.
    #[error("revocation could not be recorded")]
    Store(#[source] RevocationError),
}

/// Records logouts and watermarks.
#[derive(Clone)]
pub struct RevokeSession {
    revocations: Arc<dyn RevocationStore>,
    clock: Arc<dyn Clock>,
    lifetimes: SessionLifetimes,
}

impl std::fmt::Debug for RevokeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeSession")
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

impl RevokeSession {
    /// Wires the use case to its ports.
    #[must_use]
    pub fn new(
        revocations: Arc<dyn RevocationStore>,
        clock: Arc<dyn Clock>,
        lifetimes: SessionLifetimes,
    ) -> Self {
        Self {
            revocations,
            clock,
            lifetimes,
        }
    }

    /// Records the revocation.
    ///
    /// A session logout is kept until the session's absolute expiry (plus
    /// leeway): no token of that session, however often rotated, outlives it.
    ///
    /// # Errors
    ///
    /// [`RevokeError::Store`] when the store fails.
    pub async fn execute(&self, request: RevokeRequest) -> Result<(), RevokeError> {
        let result = match request {
            RevokeRequest::Session {
                session_id,
                authenticated_at,
            } => {
                let until = authenticated_at
                    .saturating_add(self.lifetimes.absolute())
                    .saturating_add(self.lifetimes.leeway());
                self.revocations.revoke_session(session_id, until).await
            }
            RevokeRequest::ForceLogout(scope) => {
                self.revocations
                    .set_watermark(scope, WatermarkKind::ForceLogout, self.clock.now())
                    .await
            }
            RevokeRequest::ClearForceLogout(scope) => {
                self.revocations
                    .clear_watermark(scope, WatermarkKind::ForceLogout)
                    .await
            }
            RevokeRequest::PermissionsChanged(scope) => {
                self.revocations
                    .set_watermark(scope, WatermarkKind::ClaimsStale, self.clock.now())
                    .await
            }
        };
        result.map_err(RevokeError::Store)
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{MockClock, MockRevocationStore};
    use crate::testing::*;

    fn revoker(store: MockRevocationStore, clock: MockClock) -> RevokeSession {
        RevokeSession::new(Arc::new(store), Arc::new(clock), lifetimes())
    }

    #[tokio::test]
    async fn logout_revokes_the_session_until_its_absolute_expiry() {
        let mut store = MockRevocationStore::new();
        store
            .expect_revoke_session()
            .with(eq(session_id()), eq(at(NOW - 100 + 3600 + 30)))
            .times(1)
            .returning(|_, _| Ok(()));
        store.expect_set_watermark().times(0);
        let mut clock = MockClock::new();
        clock.expect_now().times(0);
        revoker(store, clock)
            .execute(RevokeRequest::Session {
                session_id: session_id(),
                authenticated_at: at(NOW - 100),
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn force_logout_of_a_user_sets_a_force_logout_watermark_at_now() {
        let mut store = MockRevocationStore::new();
        store
            .expect_set_watermark()
            .with(
                eq(WatermarkScope::User(user())),
                eq(WatermarkKind::ForceLogout),
                eq(at(NOW)),
            )
            .times(1)
            .returning(|_, _, _| Ok(()));
        revoker(store, clock_at(NOW))
            .execute(RevokeRequest::ForceLogout(WatermarkScope::User(user())))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn force_logout_of_a_tenant_and_of_everyone_use_their_scopes() {
        let mut store = MockRevocationStore::new();
        store
            .expect_set_watermark()
            .with(
                eq(WatermarkScope::Tenant(tenant())),
                eq(WatermarkKind::ForceLogout),
                eq(at(NOW)),
            )
            .times(1)
            .returning(|_, _, _| Ok(()));
        store
            .expect_set_watermark()
            .with(
                eq(WatermarkScope::Everyone),
                eq(WatermarkKind::ForceLogout),
                eq(at(NOW)),
            )
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut clock = MockClock::new();
        clock.expect_now().times(2).return_const(at(NOW));
        let revoke = revoker(store, clock);
        revoke
            .execute(RevokeRequest::ForceLogout(WatermarkScope::Tenant(tenant())))
            .await
            .unwrap();
        revoke
            .execute(RevokeRequest::ForceLogout(WatermarkScope::Everyone))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn permissions_changed_sets_a_claims_stale_watermark() {
        let mut store = MockRevocationStore::new();
        store
            .expect_set_watermark()
            .with(
                eq(WatermarkScope::User(user())),
                eq(WatermarkKind::ClaimsStale),
                eq(at(NOW)),
            )
            .times(1)
            .returning(|_, _, _| Ok(()));
        revoker(store, clock_at(NOW))
            .execute(RevokeRequest::PermissionsChanged(WatermarkScope::User(
                user(),
            )))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn clearing_a_force_logout_removes_only_that_watermark() {
        let mut store = MockRevocationStore::new();
        store
            .expect_clear_watermark()
            .with(
                eq(WatermarkScope::User(user())),
                eq(WatermarkKind::ForceLogout),
            )
            .times(1)
            .returning(|_, _| Ok(()));
        store.expect_set_watermark().times(0);
        let mut clock = MockClock::new();
        clock.expect_now().times(0);
        revoker(store, clock)
            .execute(RevokeRequest::ClearForceLogout(
                WatermarkScope::User(user()),
            ))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_store_failure_is_reported() {
        let mut store = MockRevocationStore::new();
        store
            .expect_set_watermark()
            .times(1)
            .returning(|_, _, _| Err(RevocationError::Unavailable("db down".into())));
        let err = revoker(store, clock_at(NOW))
            .execute(RevokeRequest::ForceLogout(WatermarkScope::Everyone))
            .await
            .unwrap_err();
        assert!(matches!(err, RevokeError::Store(_)));
    }
}
