//! RotateSession: re-issue a verified session with fresh times and fresh claims.

use std::sync::Arc;

use tessera_domain::{NewSession, Role, SessionEntity, SessionError};

use super::verify::{SessionCheck, VerifyError, VerifySession};
use crate::ports::{DirectoryError, SessionTokenCodec, TokenError, UserDirectory};
use crate::token::{SessionToken, SessionTokenClaims};

/// A rotated session and its new token.
#[derive(Debug, Clone)]
pub struct RotatedSession<R> {
    /// The new token to hand to the client.
    pub token: SessionToken,
    /// The session it carries: same id and authentication time, fresh
    /// `iat`/`exp`, role and capabilities as the directory has them now.
    pub session: SessionEntity<R>,
}

/// Why a session could not be rotated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// The presented token does not carry a valid session.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The session cannot be extended: its absolute lifetime is over.
    #[error("session has reached its absolute lifetime")]
    AbsoluteLifetimeExceeded,
    /// The user no longer exists.
    #[error("user no longer exists")]
    UserNotFound,
    /// The user is disabled.
    #[error("user is disabled")]
    UserDisabled,
    /// The user directory could not answer.
    #[error("user directory could not be read")]
    Directory(#[source] DirectoryError),
    /// The new session breaks an invariant.
    #[error("rotated session is invalid")]
    InvalidSession(#[source] SessionError),
    /// The new token could not be signed.
    #[error("rotated token could not be issued")]
    Token(#[source] TokenError),
}

/// Rotates sessions: periodic role refresh and sliding expiry, within the
/// absolute lifetime.
#[derive(Clone)]
pub struct RotateSession<R: Role> {
    verify: VerifySession<R>,
    directory: Arc<dyn UserDirectory<R>>,
    codec: Arc<dyn SessionTokenCodec<R>>,
}

impl<R: Role> std::fmt::Debug for RotateSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotateSession")
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

impl<R: Role> RotateSession<R> {
    /// Wires the use case to its ports.
    #[must_use]
    pub fn new(
        verify: VerifySession<R>,
        directory: Arc<dyn UserDirectory<R>>,
        codec: Arc<dyn SessionTokenCodec<R>>,
    ) -> Self {
        Self {
            verify,
            directory,
            codec,
        }
    }

    /// Verifies `token` strictly, then rotates its session — also when the
    /// user's permissions changed since it was issued, which is what
    /// rotation is for.
    ///
    /// # Errors
    ///
    /// [`RotateError`]: the token is not valid, or see [`RotateSession::rotate`].
    pub async fn execute(&self, token: &str) -> Result<RotatedSession<R>, RotateError> {
        let checked = self.verify.check(token)?;
        self.rotate(checked).await
    }

    /// Rotates a session that was just verified, current or stale (the
    /// request admission verifies once per request and rotates what it
    /// verified).
    ///
    /// # Errors
    ///
    /// [`RotateError::UserNotFound`] or [`RotateError::UserDisabled`] when the
    /// directory says so, [`RotateError::AbsoluteLifetimeExceeded`] when the
    /// session cannot be extended, [`RotateError::Directory`] or
    /// [`RotateError::Token`] when a port fails.
    pub async fn rotate(
        &self,
        verified: impl Into<SessionCheck<R>>,
    ) -> Result<RotatedSession<R>, RotateError> {
        let verified = verified.into();
        let now = super::establish::truncate_to_seconds(verified.verified_at());
        let lifetimes = *self.verify.lifetimes();
        let old = verified.into_token_session();
        let expires_at = lifetimes.token_expiry(now, old.authenticated_at());
        if expires_at <= now {
            return Err(RotateError::AbsoluteLifetimeExceeded);
        }
        let user = self
            .directory
            .find(old.user_id())
            .await
            .map_err(RotateError::Directory)?
            .ok_or(RotateError::UserNotFound)?;
        if !user.enabled {
            return Err(RotateError::UserDisabled);
        }
        let old = old.into_parts();
        let session = SessionEntity::new(NewSession {
            user_id: old.user_id,
            session_id: old.session_id,
            role: user.role,
            capabilities: user.capabilities,
            tenant: user.tenant,
            issued_at: now.max(old.issued_at),
            expires_at,
            authenticated_at: old.authenticated_at,
        })
        .map_err(RotateError::InvalidSession)?;
        let claims = SessionTokenClaims::new(session, None);
        let token = self.codec.encode(&claims).map_err(RotateError::Token)?;
        Ok(RotatedSession {
            token,
            session: claims.into_session(),
        })
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::{eq, function};

    use super::*;
    use crate::ports::JwsFailure;
    use crate::ports::{
        DirectoryUser, MockRevocationStore, MockSessionTokenCodec, MockUserDirectory,
        RevocationStatus,
    };
    use crate::testing::*;
    use tessera_domain::UserRole;

    struct Fixture {
        codec: MockSessionTokenCodec<UserRole>,
        directory: MockUserDirectory<UserRole>,
    }

    /// The codec decodes "tok" into a moderator session issued at `iat` by a
    /// user who authenticated at `auth`.
    fn fixture(iat: i64, auth: i64) -> Fixture {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("tok"))
            .times(1)
            .returning(move |_| {
                let exp = (iat + 900).min(auth + 3600);
                Ok(SessionTokenClaims::new(session(iat, exp, auth), None))
            });
        Fixture {
            codec,
            directory: MockUserDirectory::new(),
        }
    }

    fn rotator(f: Fixture) -> RotateSession<UserRole> {
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .times(1)
            .returning(|_| Ok(RevocationStatus::Active));
        let codec = Arc::new(f.codec);
        let verify = VerifySession::new(
            codec.clone(),
            Arc::new(clock_at(NOW)),
            Arc::new(store),
            lifetimes(),
        );
        RotateSession::new(verify, Arc::new(f.directory), codec)
    }

    fn directory_user(role: UserRole, enabled: bool) -> DirectoryUser<UserRole> {
        DirectoryUser {
            user_id: user(),
            role,
            capabilities: caps(&["reports:read"]),
            tenant: Some(tenant()),
            enabled,
        }
    }

    #[tokio::test]
    async fn rotation_reissues_with_fresh_times_and_the_directorys_current_role() {
        let mut f = fixture(NOW - 400, NOW - 1000);
        f.directory
            .expect_find()
            .with(eq(user()))
            .times(1)
            .returning(|_| Ok(Some(directory_user(UserRole::Admin, true))));
        f.codec
            .expect_encode()
            .with(function(|c: &SessionTokenClaims<UserRole>| {
                let s = c.session();
                s.session_id() == &session_id()
                    && s.authenticated_at() == at(NOW - 1000)
                    && s.issued_at() == at(NOW)
                    && s.expires_at() == at(NOW + 900)
                    && s.role() == &UserRole::Admin
                    && s.has_capability("reports:read")
                    && !s.has_capability("posts:edit")
            }))
            .times(1)
            .returning(|_| Ok(SessionToken::new("rotated".into())));
        let out = rotator(f).execute("tok").await.unwrap();
        assert_eq!(out.token.expose_secret(), "rotated");
        assert_eq!(out.session.role(), &UserRole::Admin);
    }

    #[tokio::test]
    async fn rotation_never_extends_beyond_the_absolute_lifetime() {
        let mut f = fixture(NOW - 400, NOW - 3400);
        f.directory
            .expect_find()
            .times(1)
            .returning(|_| Ok(Some(directory_user(UserRole::User, true))));
        f.codec
            .expect_encode()
            .with(function(|c: &SessionTokenClaims<UserRole>| {
                c.session().expires_at() == at(NOW + 200)
            }))
            .times(1)
            .returning(|_| Ok(SessionToken::new("rotated".into())));
        rotator(f).execute("tok").await.unwrap();
    }

    #[tokio::test]
    async fn rotation_is_refused_for_a_user_who_no_longer_exists() {
        let mut f = fixture(NOW - 400, NOW - 1000);
        f.directory.expect_find().times(1).returning(|_| Ok(None));
        f.codec.expect_encode().times(0);
        assert!(matches!(
            rotator(f).execute("tok").await,
            Err(RotateError::UserNotFound)
        ));
    }

    #[tokio::test]
    async fn rotation_is_refused_for_a_disabled_user() {
        let mut f = fixture(NOW - 400, NOW - 1000);
        f.directory
            .expect_find()
            .times(1)
            .returning(|_| Ok(Some(directory_user(UserRole::Admin, false))));
        f.codec.expect_encode().times(0);
        assert!(matches!(
            rotator(f).execute("tok").await,
            Err(RotateError::UserDisabled)
        ));
    }

    #[tokio::test]
    async fn rotation_is_refused_when_the_directory_cannot_answer() {
        let mut f = fixture(NOW - 400, NOW - 1000);
        f.directory
            .expect_find()
            .times(1)
            .returning(|_| Err(DirectoryError::Unavailable("db down".into())));
        f.codec.expect_encode().times(0);
        assert!(matches!(
            rotator(f).execute("tok").await,
            Err(RotateError::Directory(_))
        ));
    }

    #[tokio::test]
    async fn rotation_of_an_invalid_token_is_refused_before_the_directory_is_asked() {
        let mut codec = MockSessionTokenCodec::<UserRole>::new();
        codec
            .expect_decode()
            .times(1)
            .returning(|_| Err(TokenError::Jws(JwsFailure::InvalidSignature)));
        codec.expect_encode().times(0);
        let mut directory = MockUserDirectory::new();
        directory.expect_find().times(0);
        let mut store = MockRevocationStore::new();
        store.expect_check().times(0);
        let codec = Arc::new(codec);
        let verify = VerifySession::new(
            codec.clone(),
            Arc::new(crate::ports::MockClock::new()),
            Arc::new(store),
            lifetimes(),
        );
        let err = RotateSession::new(verify, Arc::new(directory), codec)
            .execute("tok")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            RotateError::Verify(VerifyError::Token(TokenError::Jws(
                JwsFailure::InvalidSignature
            )))
        ));
    }

    #[tokio::test]
    async fn rotation_at_the_absolute_limit_is_refused_without_asking_the_directory() {
        // Authenticated 3600 s ago: verify accepts it within the 30 s leeway,
        // but there is no lifetime left to grant.
        let mut f = fixture(NOW - 400, NOW - 3600);
        f.directory.expect_find().times(0);
        f.codec.expect_encode().times(0);
        assert!(matches!(
            rotator(f).execute("tok").await,
            Err(RotateError::AbsoluteLifetimeExceeded)
        ));
    }
}
