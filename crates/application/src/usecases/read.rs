//! ReadSession: the lenient read for pages that render differently for guests.

use tessera_domain::Role;

use super::verify::{VerifiedSession, VerifySession};

/// Reads a session when there is a valid one, and treats everything else as
/// a guest. Never an error: a missing, bad, expired or revoked token, or a
/// revocation state that cannot be trusted, all read as `None`.
#[derive(Debug, Clone)]
pub struct ReadSession<R: Role> {
    verify: VerifySession<R>,
}

impl<R: Role> ReadSession<R> {
    /// Reads through the strict verifier, so that a session read here is as
    /// valid as one verified.
    #[must_use]
    pub fn new(verify: VerifySession<R>) -> Self {
        Self { verify }
    }

    /// The session the token carries, or `None`. The reason a present token
    /// was not accepted goes to `tracing` at debug level; the token never does.
    pub fn execute(&self, token: Option<&str>) -> Option<VerifiedSession<R>> {
        match self.verify.execute(token?) {
            Ok(verified) => Some(verified),
            Err(error) => {
                tracing::debug!(reason = error.code(), %error, "session token ignored on lenient read");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mockall::predicate::eq;

    use super::*;
    use crate::ports::JwsFailure;
    use crate::ports::{
        MockClock, MockRevocationStore, MockSessionTokenCodec, RevocationError, RevocationStatus,
        TokenError,
    };
    use crate::testing::*;
    use crate::token::SessionTokenClaims;
    use tessera_domain::UserRole;

    fn reader(
        codec: MockSessionTokenCodec<UserRole>,
        clock: MockClock,
        store: MockRevocationStore,
    ) -> ReadSession<UserRole> {
        ReadSession::new(VerifySession::new(
            Arc::new(codec),
            Arc::new(clock),
            Arc::new(store),
            lifetimes(),
        ))
    }

    #[test]
    fn no_token_reads_as_a_guest_without_touching_any_port() {
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_decode().times(0);
        let mut clock = MockClock::new();
        clock.expect_now().times(0);
        let mut store = MockRevocationStore::new();
        store.expect_check().times(0);
        assert!(reader(codec, clock, store).execute(None).is_none());
    }

    #[test]
    fn bad_token_reads_as_a_guest() {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("garbage"))
            .times(1)
            .returning(|_| Err(TokenError::Jws(JwsFailure::Malformed("not three parts"))));
        let mut store = MockRevocationStore::new();
        store.expect_check().times(0);
        assert!(
            reader(codec, MockClock::new(), store)
                .execute(Some("garbage"))
                .is_none()
        );
    }

    #[test]
    fn valid_token_reads_as_its_session() {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("tok"))
            .times(1)
            .returning(|_| {
                Ok(SessionTokenClaims::new(
                    session(NOW - 10, NOW + 890, NOW - 10),
                    None,
                ))
            });
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .times(1)
            .returning(|_| Ok(RevocationStatus::Active));
        let read = reader(codec, clock_at(NOW), store).execute(Some("tok"));
        assert_eq!(read.unwrap().session().user_id(), &user());
    }

    #[test]
    fn untrusted_revocation_state_reads_as_a_guest() {
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_decode().times(1).returning(|_| {
            Ok(SessionTokenClaims::new(
                session(NOW - 10, NOW + 890, NOW - 10),
                None,
            ))
        });
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .times(1)
            .returning(|_| Err(RevocationError::Unavailable("stale".into())));
        assert!(
            reader(codec, clock_at(NOW), store)
                .execute(Some("tok"))
                .is_none()
        );
    }
}
