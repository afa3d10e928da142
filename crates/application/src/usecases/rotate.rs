//! RotateSession: re-issue a verified session with fresh times and fresh claims.

use std::sync::Arc;

use tessera_domain::{NewSession, Role, SessionEntity, SessionError};

use super::verify::{SessionCheck, VerifyError, VerifySession};
use crate::ports::{
    DirectoryError, RevocationQuery, RevocationStatus, RevocationStore, SessionTokenCodec,
    TokenError, UserDirectory,
};
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
    revocations: Option<Arc<dyn RevocationStore>>,
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
            revocations: None,
        }
    }

    /// Asks `revocations` (the store the verifier uses) through
    /// [`RevocationStore::check_authoritative`] before each rotation, and
    /// refuses a session the authoritative state revokes even if the
    /// verifier's cache has not seen it yet (or no longer holds it). Wire it
    /// with a shared store whose cache forgets what no unexpired token needs.
    #[must_use]
    pub fn with_revocations(mut self, revocations: Arc<dyn RevocationStore>) -> Self {
        self.revocations = Some(revocations);
        self
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
    /// [`RotateError::Verify`] with [`VerifyError::Revoked`] or
    /// [`VerifyError::RevocationUnavailable`] when the store given to
    /// [`with_revocations`](Self::with_revocations) revokes the session or
    /// cannot answer; [`RotateError::UserNotFound`] or
    /// [`RotateError::UserDisabled`] when the directory says so, [`RotateError::AbsoluteLifetimeExceeded`] when the
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
        if let Some(revocations) = &self.revocations {
            let status = revocations
                .check_authoritative(RevocationQuery {
                    session_id: old.session_id(),
                    user_id: old.user_id(),
                    tenant: old.tenant(),
                    issued_at: old.issued_at(),
                })
                .await
                .map_err(|e| RotateError::Verify(VerifyError::RevocationUnavailable(e)))?;
            if let RevocationStatus::Revoked(reason) = status {
                return Err(RotateError::Verify(VerifyError::Revoked(reason)));
            }
        }
        let user = self
            .directory
            .find(old.user_id())
            .await
            .map_err(RotateError::Directory)?
            .ok_or(RotateError::UserNotFound)?;
        // A directory answering for someone else (a broken adapter) has not
        // found this user: their session never takes another's role.
        if user.user_id != *old.user_id() {
            return Err(RotateError::UserNotFound);
        }
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
            // The authentication event is the session's, as its time is.
            authentication: old.authentication,
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
        RevocationError, RevocationReason,
    };
    use crate::testing::*;
    use tessera_domain::{UserId, UserRole};

    struct Fixture {
        codec: MockSessionTokenCodec<UserRole>,
        directory: MockUserDirectory<UserRole>,
    }

    /// The codec decodes "tok" into a moderator session issued at `iat` by a
    /// user who authenticated at `auth` with a password and a one-time
    /// code, at level `phrh`.
    fn fixture(iat: i64, auth: i64) -> Fixture {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("tok"))
            .times(1)
            .returning(move |_| {
                let exp = (iat + 900).min(auth + 3600);
                let mut parts = session(iat, exp, auth).into_parts();
                parts.authentication = strong();
                Ok(SessionTokenClaims::new(
                    SessionEntity::new(parts).unwrap(),
                    None,
                ))
            });
        Fixture {
            codec,
            directory: MockUserDirectory::new(),
        }
    }

    /// A store whose authoritative check is asked once, about the fixture's
    /// session, and gives `answer`.
    fn tables(
        answer: impl Fn() -> Result<RevocationStatus, RevocationError> + Send + 'static,
    ) -> Arc<MockRevocationStore> {
        let mut tables = MockRevocationStore::new();
        tables
            .expect_check_authoritative()
            .withf(|q| q.session_id == &session_id() && q.issued_at == at(NOW - 400))
            .times(1)
            .returning(move |_| answer());
        Arc::new(tables)
    }

    #[tokio::test]
    async fn rotation_is_refused_when_the_authoritative_store_revokes_what_the_cache_let_through() {
        let mut f = fixture(NOW - 400, NOW - 1000);
        let tables = tables(|| {
            Ok(RevocationStatus::Revoked(
                RevocationReason::SessionLoggedOut,
            ))
        });
        f.directory.expect_find().times(0);
        f.codec.expect_encode().times(0);
        let err = rotator(f)
            .with_revocations(tables)
            .execute("tok")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            RotateError::Verify(VerifyError::Revoked(RevocationReason::SessionLoggedOut))
        ));
    }

    #[tokio::test]
    async fn rotation_fails_closed_when_the_authoritative_store_cannot_answer() {
        let mut f = fixture(NOW - 400, NOW - 1000);
        let tables = tables(|| Err(RevocationError::Unavailable("db down".into())));
        f.directory.expect_find().times(0);
        f.codec.expect_encode().times(0);
        let err = rotator(f)
            .with_revocations(tables)
            .execute("tok")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            RotateError::Verify(VerifyError::RevocationUnavailable(_))
        ));
    }

    #[tokio::test]
    async fn rotation_goes_ahead_when_the_authoritative_store_finds_claims_stale() {
        let mut f = fixture(NOW - 400, NOW - 1000);
        let tables = tables(|| Ok(RevocationStatus::ClaimsStale));
        f.directory
            .expect_find()
            .times(1)
            .returning(|_| Ok(Some(directory_user(UserRole::User, true))));
        f.codec
            .expect_encode()
            .times(1)
            .returning(|_| Ok(SessionToken::new("rotated".into())));
        rotator(f)
            .with_revocations(tables)
            .execute("tok")
            .await
            .unwrap();
    }

    fn strong() -> tessera_domain::Authentication {
        tessera_domain::Authentication::new(
            Some(tessera_domain::Acr::parse("phrh").unwrap()),
            ["pwd", "otp"]
                .iter()
                .map(|m| tessera_domain::AuthMethod::parse(m).unwrap())
                .collect(),
        )
        .unwrap()
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
                    && s.authentication() == &strong()
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
    async fn rotation_is_refused_when_the_directory_answers_for_another_user() {
        let mut f = fixture(NOW - 400, NOW - 1000);
        f.directory.expect_find().times(1).returning(|_| {
            let mut other = directory_user(UserRole::Admin, true);
            other.user_id = UserId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000ff").unwrap();
            Ok(Some(other))
        });
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
