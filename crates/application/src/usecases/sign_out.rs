//! Sign-out: the session a token carries, revoked on every instance.
//!
//! A token that is no session (forged, expired, already revoked) has
//! nothing to revoke, and signing it out succeeds. A token that cannot be
//! checked because the revocation state is untrusted fails: it may be a
//! session that works again once the state is back, so nobody is told it
//! is gone.

use tessera_domain::{Role, SessionEntity};

use super::revoke::{RevokeError, RevokeRequest, RevokeSession};
use super::verify::{SessionCheck, VerifyError, VerifySession};

/// What signing a token out did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedOut {
    /// The token's session is revoked, every token of it.
    Revoked,
    /// The token is no session (forged, expired, revoked already): nothing
    /// was left to revoke.
    NothingToRevoke,
}

/// Why a token could not be signed out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignOutError {
    /// The revocation state cannot be trusted, so whether the token is a
    /// session cannot be told.
    #[error("the token cannot be checked")]
    Unavailable(#[source] VerifyError),
    /// The revocation could not be recorded.
    #[error("the sign-out could not be recorded")]
    Revoke(#[source] RevokeError),
}

/// Signs out the session a token carries.
#[derive(Debug, Clone)]
pub struct SignOutSession<R: Role> {
    verify: VerifySession<R>,
    revoke: RevokeSession,
}

impl<R: Role> SignOutSession<R> {
    /// Wires the use case.
    #[must_use]
    pub fn new(verify: VerifySession<R>, revoke: RevokeSession) -> Self {
        Self { verify, revoke }
    }

    /// Revokes the session `token` carries, if it is one: a current
    /// session until its user's authentication ages out, a stale one (its
    /// user's permissions changed) as if authenticated now, and a token of
    /// ours that is not valid yet (issued or valid from a time ahead of
    /// this clock) all the same, since it may be valid elsewhere or later.
    /// An expired, revoked or foreign token has nothing left to revoke.
    ///
    /// # Errors
    ///
    /// [`SignOutError::Unavailable`] when the revocation state cannot be
    /// trusted, [`SignOutError::Revoke`] when the revocation cannot be
    /// recorded.
    pub async fn execute(&self, token: &str) -> Result<SignedOut, SignOutError> {
        let request = match self.verify.check(token) {
            Ok(SessionCheck::Current(verified)) => revoke_request(verified.session()),
            Ok(SessionCheck::Stale(stale)) => RevokeRequest::Session {
                session_id: *stale.session_id(),
                authenticated_at: stale.verified_at(),
            },
            Err(error) if error.is_unavailable() => {
                return Err(SignOutError::Unavailable(error));
            }
            Err(
                VerifyError::IssuedInFuture
                | VerifyError::NotYetValid
                | VerifyError::LifetimeTooLong,
            ) => match self.verify.signed_session(token) {
                Ok(session) => revoke_request(&session),
                Err(_) => return Ok(SignedOut::NothingToRevoke),
            },
            Err(_) => return Ok(SignedOut::NothingToRevoke),
        };
        self.revoke(request).await
    }

    /// Revokes `session`, one the HTTP edge admitted (a session token's, or
    /// the session an identity provider's token was admitted as).
    ///
    /// # Errors
    ///
    /// [`SignOutError::Revoke`] when the revocation cannot be recorded.
    pub async fn execute_admitted(
        &self,
        session: &SessionEntity<R>,
    ) -> Result<SignedOut, SignOutError> {
        self.revoke(revoke_request(session)).await
    }

    async fn revoke(&self, request: RevokeRequest) -> Result<SignedOut, SignOutError> {
        self.revoke
            .execute(request)
            .await
            .map_err(SignOutError::Revoke)?;
        Ok(SignedOut::Revoked)
    }
}

/// Every token of `session`, until its user's authentication ages out.
fn revoke_request<R: Role>(session: &SessionEntity<R>) -> RevokeRequest {
    RevokeRequest::Session {
        session_id: *session.session_id(),
        authenticated_at: session.authenticated_at(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mockall::predicate::eq;
    use tessera_domain::UserRole;

    use super::*;
    use crate::SessionTokenClaims;
    use crate::ports::{
        JwsFailure, MockClock, MockRevocationStore, MockSessionTokenCodec, RevocationError,
        RevocationStatus, TokenError,
    };
    use crate::testing::*;

    /// A use case whose codec decodes `"tok"` as `decoded`, whose store
    /// answers a check with `status` (`None`: never asked) and records a
    /// logout `revokes` times (failing when `revoke_fails`).
    fn use_case(
        decoded: Result<SessionTokenClaims<UserRole>, TokenError>,
        status: Option<Result<RevocationStatus, ()>>,
        revokes: usize,
        revoke_fails: bool,
    ) -> SignOutSession<UserRole> {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("tok"))
            .times(1)
            .return_once(move |_| decoded);
        let mut store = MockRevocationStore::new();
        let checks = usize::from(status.is_some());
        store.expect_check().times(checks).returning(move |_| {
            status
                .unwrap_or(Ok(RevocationStatus::Active))
                .map_err(|()| RevocationError::Unavailable("listener down".into()))
        });
        store
            .expect_revoke_session()
            .with(eq(session_id()), eq(at(NOW - 100 + 3600 + 30)))
            .times(revokes)
            .returning(move |_, _| {
                if revoke_fails {
                    Err(RevocationError::Unavailable("primary down".into()))
                } else {
                    Ok(())
                }
            });
        wired(codec, store)
    }

    /// The use case on `codec` and `store`, its clock at [`NOW`].
    fn wired(
        codec: MockSessionTokenCodec<UserRole>,
        store: MockRevocationStore,
    ) -> SignOutSession<UserRole> {
        let store = Arc::new(store);
        let mut clock = MockClock::new();
        clock.expect_now().return_const(at(NOW));
        let clock = Arc::new(clock);
        let verify = VerifySession::new(Arc::new(codec), clock.clone(), store.clone(), lifetimes());
        SignOutSession::new(verify, RevokeSession::new(store, clock, lifetimes()))
    }

    fn current() -> SessionTokenClaims<UserRole> {
        SessionTokenClaims::new(session(NOW - 60, NOW + 840, NOW - 100), None)
    }

    #[tokio::test]
    async fn a_session_is_revoked_until_its_authentication_ages_out() {
        let out = use_case(Ok(current()), Some(Ok(RevocationStatus::Active)), 1, false)
            .execute("tok")
            .await
            .unwrap();
        assert_eq!(out, SignedOut::Revoked);
    }

    #[tokio::test]
    async fn a_stale_session_is_revoked_as_if_authenticated_now() {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("tok"))
            .times(1)
            .return_once(|_| Ok(current()));
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .times(1)
            .returning(|_| Ok(RevocationStatus::ClaimsStale));
        store
            .expect_revoke_session()
            .with(eq(session_id()), eq(at(NOW + 3600 + 30)))
            .times(1)
            .returning(|_, _| Ok(()));
        let out = wired(codec, store).execute("tok").await.unwrap();
        assert_eq!(out, SignedOut::Revoked);
    }

    #[tokio::test]
    async fn a_token_of_ours_not_valid_yet_is_revoked_all_the_same() {
        // Issued 60 s ahead of this clock (past the 30 s leeway): another
        // instance's clock, say. It would pass there, or here later.
        let ahead = SessionTokenClaims::new(session(NOW + 60, NOW + 960, NOW - 100), None);
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("tok"))
            .times(2)
            .returning(move |_| Ok(ahead.clone()));
        let mut store = MockRevocationStore::new();
        store.expect_check().times(0);
        store
            .expect_revoke_session()
            .with(eq(session_id()), eq(at(NOW - 100 + 3600 + 30)))
            .times(1)
            .returning(|_, _| Ok(()));
        let out = wired(codec, store).execute("tok").await.unwrap();
        assert_eq!(out, SignedOut::Revoked);
    }

    #[tokio::test]
    async fn an_admitted_session_is_revoked_without_reading_a_token() {
        let mut store = MockRevocationStore::new();
        store.expect_check().times(0);
        store
            .expect_revoke_session()
            .with(eq(session_id()), eq(at(NOW - 100 + 3600 + 30)))
            .times(1)
            .returning(|_, _| Ok(()));
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_decode().times(0);
        let admitted = session(NOW - 60, NOW + 840, NOW - 100);
        let out = wired(codec, store)
            .execute_admitted(&admitted)
            .await
            .unwrap();
        assert_eq!(out, SignedOut::Revoked);
    }

    #[tokio::test]
    async fn a_token_that_is_no_session_has_nothing_to_revoke() {
        let forged = Err(TokenError::Jws(JwsFailure::InvalidSignature));
        let out = use_case(forged, None, 0, false)
            .execute("tok")
            .await
            .unwrap();
        assert_eq!(out, SignedOut::NothingToRevoke);
    }

    #[tokio::test]
    async fn an_untrusted_revocation_state_fails_closed_and_revokes_nothing() {
        let error = use_case(Ok(current()), Some(Err(())), 0, false)
            .execute("tok")
            .await
            .unwrap_err();
        assert!(matches!(error, SignOutError::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_revocation_that_cannot_be_recorded_is_an_error() {
        let error = use_case(Ok(current()), Some(Ok(RevocationStatus::Active)), 1, true)
            .execute("tok")
            .await
            .unwrap_err();
        assert!(matches!(error, SignOutError::Revoke(_)), "{error:?}");
    }
}
