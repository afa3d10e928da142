//! VerifySession: a token in, a valid session or the rule it breaks out.

use std::sync::Arc;

use tessera_domain::{Role, SessionEntity, SessionLifetimes, TimeWindow, TimeWindowError};
use time::OffsetDateTime;

use crate::external::ExternalIdentity;
use crate::ports::{
    Clock, DirectoryUser, RevocationError, RevocationQuery, RevocationReason, RevocationStatus,
    RevocationStore, SessionTokenCodec, TokenError,
};

/// Why a token does not carry a valid session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token itself is bad: structure, signature, header or claims.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// `iat` is in the future beyond the leeway.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `nbf` is not reached yet, beyond the leeway.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `exp` has passed, beyond the leeway.
    #[error("token has expired")]
    Expired,
    /// `exp - iat` is longer than the configured token lifetime.
    #[error("token lifetime exceeds the configured maximum")]
    LifetimeTooLong,
    /// The session has outlived its absolute lifetime since authentication.
    #[error("session has outlived its absolute lifetime")]
    AbsoluteLifetimeExceeded,
    /// The session was logged out or force-logged-out.
    #[error("session is revoked ({0:?})")]
    Revoked(RevocationReason),
    /// The revocation state cannot be trusted, so no session is (fail closed).
    #[error("revocation state is unavailable")]
    RevocationUnavailable(#[source] RevocationError),
    /// The token is valid, but the user's permissions changed after it was
    /// issued: its role and capabilities are no longer the user's. Rotate
    /// it ([`RotateSession::execute`](crate::RotateSession::execute)) to
    /// carry on with the current ones.
    #[error("permissions changed since the token was issued: rotate the session")]
    ClaimsStale,
}

impl VerifyError {
    /// A stable, machine-readable code for this failure, for logs and tools.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Token(e) => e.code(),
            Self::IssuedInFuture => "issued_in_future",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::AbsoluteLifetimeExceeded => "absolute_lifetime_exceeded",
            Self::Revoked(_) => "revoked",
            Self::RevocationUnavailable(_) => "revocation_unavailable",
            Self::ClaimsStale => "claims_stale",
        }
    }

    /// Whether the failure is the verifier's, not the token's: the request
    /// deserves a "try again later" (503), not a "sign in again" (401).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::RevocationUnavailable(_))
    }
}

/// Whether a verified session should be rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationNeed {
    /// The token is fresh.
    NotDue,
    /// The token is older than the rotation threshold.
    Due,
}

/// A session that passed every check at `verified_at`, with the role and
/// capabilities the user had when it was issued and still has (a session
/// whose permissions changed is a [`StaleSession`] instead).
///
/// Only [`VerifySession`] makes one, so holding one proves the check ran.
#[derive(Debug, Clone)]
pub struct VerifiedSession<R> {
    session: SessionEntity<R>,
    rotation: RotationNeed,
    verified_at: OffsetDateTime,
}

impl<R: Role> VerifiedSession<R> {
    /// The session.
    #[must_use]
    pub fn session(&self) -> &SessionEntity<R> {
        &self.session
    }

    /// Whether it should be rotated.
    #[must_use]
    pub fn rotation(&self) -> RotationNeed {
        self.rotation
    }

    /// The time the checks were made against.
    #[must_use]
    pub fn verified_at(&self) -> OffsetDateTime {
        self.verified_at
    }

    /// The session, dropping the rest.
    #[must_use]
    pub fn into_session(self) -> SessionEntity<R> {
        self.session
    }
}

/// A token that passed every check, but whose user's permissions changed
/// after it was issued ("permissions changed" in
/// [`RevokeSession`](crate::RevokeSession)).
///
/// Its role and capabilities are the old ones, so it offers none of them:
/// it can only be rotated ([`RotateSession::rotate`](crate::RotateSession::rotate)),
/// which reads them afresh from the user directory.
#[derive(Clone)]
pub struct StaleSession<R> {
    session: SessionEntity<R>,
    verified_at: OffsetDateTime,
}

impl<R: Role> std::fmt::Debug for StaleSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaleSession")
            .field("user_id", self.session.user_id())
            .field("session_id", self.session.session_id())
            .field("verified_at", &self.verified_at)
            .finish_non_exhaustive()
    }
}

impl<R: Role> StaleSession<R> {
    /// The user the session belongs to.
    #[must_use]
    pub fn user_id(&self) -> &tessera_domain::UserId {
        self.session.user_id()
    }

    /// The session's id, which rotation keeps.
    #[must_use]
    pub fn session_id(&self) -> &tessera_domain::SessionId {
        self.session.session_id()
    }

    /// The time the checks were made against.
    #[must_use]
    pub fn verified_at(&self) -> OffsetDateTime {
        self.verified_at
    }
}

/// What [`VerifySession::check`] found in a valid token.
#[derive(Debug, Clone)]
pub enum SessionCheck<R: Role> {
    /// The session, with current claims.
    Current(VerifiedSession<R>),
    /// The user's permissions changed since the token was issued: rotate it
    /// before use.
    Stale(StaleSession<R>),
}

impl<R: Role> From<VerifiedSession<R>> for SessionCheck<R> {
    fn from(verified: VerifiedSession<R>) -> Self {
        Self::Current(verified)
    }
}

impl<R: Role> From<StaleSession<R>> for SessionCheck<R> {
    fn from(stale: StaleSession<R>) -> Self {
        Self::Stale(stale)
    }
}

impl<R: Role> SessionCheck<R> {
    /// The time the checks were made against.
    #[must_use]
    pub fn verified_at(&self) -> OffsetDateTime {
        match self {
            Self::Current(verified) => verified.verified_at,
            Self::Stale(stale) => stale.verified_at,
        }
    }

    /// The session as the token carries it, for rotation only.
    pub(crate) fn into_token_session(self) -> SessionEntity<R> {
        match self {
            Self::Current(verified) => verified.session,
            Self::Stale(stale) => stale.session,
        }
    }
}

/// Verifies session tokens strictly: every rule of the design, every time.
#[derive(Clone)]
pub struct VerifySession<R: Role> {
    codec: Arc<dyn SessionTokenCodec<R>>,
    clock: Arc<dyn Clock>,
    revocations: Arc<dyn RevocationStore>,
    lifetimes: SessionLifetimes,
}

impl<R: Role> std::fmt::Debug for VerifySession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifySession")
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

impl<R: Role> VerifySession<R> {
    /// Wires the use case to its ports.
    #[must_use]
    pub fn new(
        codec: Arc<dyn SessionTokenCodec<R>>,
        clock: Arc<dyn Clock>,
        revocations: Arc<dyn RevocationStore>,
        lifetimes: SessionLifetimes,
    ) -> Self {
        Self {
            codec,
            clock,
            revocations,
            lifetimes,
        }
    }

    /// Whether `token` says, in its unverified header, that it is a
    /// session token ([`SessionTokenCodec::is_session_token`]). Grants
    /// nothing.
    #[must_use]
    pub fn is_session_token(&self, token: &str) -> bool {
        self.codec.is_session_token(token)
    }

    /// The session a token signed by one of the codec's keys names, its
    /// times and revocation unchecked: never to admit a request with, only
    /// to act against the session (sign-out revokes a token that is not
    /// valid yet but may be elsewhere or later).
    ///
    /// # Errors
    ///
    /// [`TokenError`] when the token is not one of ours.
    pub fn signed_session(&self, token: &str) -> Result<SessionEntity<R>, TokenError> {
        self.codec
            .decode(token)
            .map(crate::SessionTokenClaims::into_session)
    }

    /// The largest token this verifier reads, in bytes
    /// ([`SessionTokenCodec::max_token_bytes`]).
    #[must_use]
    pub fn max_token_bytes(&self) -> usize {
        self.codec.max_token_bytes()
    }

    /// The verifier's clock's time.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The lifetimes this verifier enforces.
    #[must_use]
    pub fn lifetimes(&self) -> &SessionLifetimes {
        &self.lifetimes
    }

    /// Where an identity provider's token stands against this verifier's
    /// revocation store: see [`provider_token_status`].
    ///
    /// # Errors
    ///
    /// [`RevocationError`] when the revocation state cannot be trusted.
    pub(crate) fn provider_token_status(
        &self,
        identity: &ExternalIdentity<R>,
        user: &DirectoryUser<R>,
    ) -> Result<RevocationStatus, RevocationError> {
        provider_token_status(&*self.revocations, identity, user)
    }

    /// Verifies a token: signature and claims (through the codec), then the
    /// time rules, then revocation. CPU only; no I/O.
    ///
    /// # Errors
    ///
    /// [`VerifyError`] naming the first rule the token breaks, including
    /// [`VerifyError::ClaimsStale`] for a valid token whose user's
    /// permissions changed since it was issued: its role is not to be acted
    /// on, and [`RotateSession::execute`](crate::RotateSession::execute)
    /// turns it into a token with the current one.
    pub fn execute(&self, token: &str) -> Result<VerifiedSession<R>, VerifyError> {
        match self.check(token)? {
            SessionCheck::Current(verified) => Ok(verified),
            SessionCheck::Stale(_) => Err(VerifyError::ClaimsStale),
        }
    }

    /// Verifies a token as [`execute`](Self::execute) does, but answers a
    /// valid token whose claims are stale with a [`StaleSession`] (which
    /// only rotation can use) instead of an error: what rotation and the
    /// request admission need.
    ///
    /// # Errors
    ///
    /// [`VerifyError`] naming the first rule the token breaks (never
    /// [`VerifyError::ClaimsStale`]).
    pub fn check(&self, token: &str) -> Result<SessionCheck<R>, VerifyError> {
        let claims = self.codec.decode(token)?;
        let now = self.clock.now();
        let not_before = claims.not_before();
        let session = claims.into_session();

        // The one rule for both kinds of token (expired at `exp + leeway`).
        TimeWindow {
            issued_at: session.issued_at(),
            not_before,
            expires_at: session.expires_at(),
        }
        .check(now, self.lifetimes.leeway())
        .map_err(|bound| match bound {
            TimeWindowError::IssuedInFuture => VerifyError::IssuedInFuture,
            TimeWindowError::NotYetValid => VerifyError::NotYetValid,
            TimeWindowError::Expired => VerifyError::Expired,
        })?;
        if session.expires_at() - session.issued_at() > self.lifetimes.token() {
            return Err(VerifyError::LifetimeTooLong);
        }
        if session.is_past_absolute_lifetime(now, &self.lifetimes) {
            return Err(VerifyError::AbsoluteLifetimeExceeded);
        }

        let status = self
            .revocations
            .check(RevocationQuery {
                session_id: session.session_id(),
                user_id: session.user_id(),
                tenant: session.tenant(),
                issued_at: session.issued_at(),
            })
            .map_err(VerifyError::RevocationUnavailable)?;
        let rotation = match status {
            RevocationStatus::Revoked(reason) => return Err(VerifyError::Revoked(reason)),
            RevocationStatus::ClaimsStale => {
                return Ok(SessionCheck::Stale(StaleSession {
                    session,
                    verified_at: now,
                }));
            }
            RevocationStatus::Active if session.needs_rotation(now, &self.lifetimes) => {
                RotationNeed::Due
            }
            RevocationStatus::Active => RotationNeed::NotDue,
        };
        Ok(SessionCheck::Current(VerifiedSession {
            session,
            rotation,
            verified_at: now,
        }))
    }
}

/// Where an identity provider's token for local user `user` stands in
/// `store`: the logouts and watermarks that end sessions end it too. The
/// token is the session [`ExternalIdentity::session_id`] of `user` (and
/// their tenant), issued at its `iat`, so a force-logout of the user, the
/// tenant or everyone refuses every provider token issued at or before it,
/// on exchange and on the hybrid path alike. Claims-stale watermarks do
/// not matter to a provider token, whose role is read from the user
/// directory, never from the token: callers treat
/// [`RevocationStatus::ClaimsStale`] as standing.
///
/// # Errors
///
/// [`RevocationError`] when the revocation state cannot be trusted: the
/// caller fails closed.
pub(crate) fn provider_token_status<R>(
    store: &dyn RevocationStore,
    identity: &ExternalIdentity<R>,
    user: &DirectoryUser<R>,
) -> Result<RevocationStatus, RevocationError> {
    store.check(RevocationQuery {
        session_id: &identity.session_id(),
        user_id: &user.user_id,
        tenant: user.tenant.as_ref(),
        issued_at: identity.issued_at,
    })
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::JwsFailure;
    use crate::ports::{MockRevocationStore, MockSessionTokenCodec};
    use crate::testing::*;
    use crate::token::SessionTokenClaims;
    use tessera_domain::UserRole;

    /// A verifier whose codec returns `claims` for "tok" and whose store
    /// answers `status` exactly `checks` times.
    fn verifier(
        claims: SessionTokenClaims<UserRole>,
        status: Result<RevocationStatus, ()>,
        checks: usize,
    ) -> VerifySession<UserRole> {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("tok"))
            .times(1)
            .return_once(move |_| Ok(claims));
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .withf(|q| q.session_id == &session_id() && q.user_id == &user())
            .times(checks)
            .returning(move |_| {
                status.map_err(|()| RevocationError::Unavailable("listener down".into()))
            });
        VerifySession::new(
            Arc::new(codec),
            Arc::new(clock_at(NOW)),
            Arc::new(store),
            lifetimes(),
        )
    }

    fn claims(iat: i64, exp: i64, auth: i64, nbf: Option<i64>) -> SessionTokenClaims<UserRole> {
        SessionTokenClaims::new(session(iat, exp, auth), nbf.map(at))
    }

    #[test]
    fn valid_token_gives_its_session() {
        let v = verifier(
            claims(NOW - 10, NOW + 890, NOW - 10, None),
            Ok(RevocationStatus::Active),
            1,
        );
        let out = v.execute("tok").unwrap();
        assert_eq!(out.session().user_id(), &user());
        assert_eq!(out.rotation(), RotationNeed::NotDue);
        assert_eq!(out.verified_at(), at(NOW));
    }

    #[test]
    fn codec_failure_is_reported_and_nothing_else_is_consulted() {
        let mut codec = MockSessionTokenCodec::<UserRole>::new();
        codec
            .expect_decode()
            .times(1)
            .returning(|_| Err(TokenError::Jws(JwsFailure::InvalidSignature)));
        let mut clock = crate::ports::MockClock::new();
        clock.expect_now().times(0);
        let mut store = MockRevocationStore::new();
        store.expect_check().times(0);
        let v = VerifySession::new(
            Arc::new(codec),
            Arc::new(clock),
            Arc::new(store),
            lifetimes(),
        );
        let err = v.execute("tok").unwrap_err();
        assert!(matches!(
            err,
            VerifyError::Token(TokenError::Jws(JwsFailure::InvalidSignature))
        ));
        assert_eq!(err.code(), "invalid_signature");
    }

    #[test]
    fn token_issued_in_the_future_beyond_leeway_is_rejected() {
        let v = verifier(
            claims(NOW + 31, NOW + 900, NOW + 31, None),
            Ok(RevocationStatus::Active),
            0,
        );
        assert!(matches!(v.execute("tok"), Err(VerifyError::IssuedInFuture)));
    }

    #[test]
    fn token_issued_in_the_future_within_leeway_is_accepted() {
        let v = verifier(
            claims(NOW + 30, NOW + 900, NOW + 30, None),
            Ok(RevocationStatus::Active),
            1,
        );
        assert!(v.execute("tok").is_ok());
    }

    #[test]
    fn token_before_its_not_before_time_is_rejected() {
        let v = verifier(
            claims(NOW - 10, NOW + 800, NOW - 10, Some(NOW + 31)),
            Ok(RevocationStatus::Active),
            0,
        );
        assert!(matches!(v.execute("tok"), Err(VerifyError::NotYetValid)));
    }

    #[test]
    fn expired_token_is_rejected_after_leeway() {
        let v = verifier(
            claims(NOW - 900, NOW - 30, NOW - 900, None),
            Ok(RevocationStatus::Active),
            0,
        );
        assert!(matches!(v.execute("tok"), Err(VerifyError::Expired)));
    }

    #[test]
    fn expired_token_within_leeway_is_accepted() {
        let v = verifier(
            claims(NOW - 800, NOW - 29, NOW - 800, None),
            Ok(RevocationStatus::Active),
            1,
        );
        assert!(v.execute("tok").is_ok());
    }

    #[test]
    fn token_claiming_a_longer_lifetime_than_configured_is_rejected() {
        let v = verifier(
            claims(NOW - 10, NOW + 891, NOW - 10, None),
            Ok(RevocationStatus::Active),
            0,
        );
        assert!(matches!(
            v.execute("tok"),
            Err(VerifyError::LifetimeTooLong)
        ));
    }

    #[test]
    fn session_past_its_absolute_lifetime_is_rejected_even_with_a_fresh_token() {
        let v = verifier(
            claims(NOW - 100, NOW + 800, NOW - 3630, None),
            Ok(RevocationStatus::Active),
            0,
        );
        assert!(matches!(
            v.execute("tok"),
            Err(VerifyError::AbsoluteLifetimeExceeded)
        ));
    }

    #[test]
    fn revoked_session_is_rejected_with_its_reason() {
        let v = verifier(
            claims(NOW - 10, NOW + 890, NOW - 10, None),
            Ok(RevocationStatus::Revoked(RevocationReason::UserLoggedOut)),
            1,
        );
        assert!(matches!(
            v.execute("tok"),
            Err(VerifyError::Revoked(RevocationReason::UserLoggedOut))
        ));
    }

    #[test]
    fn unavailable_revocation_state_fails_closed() {
        let v = verifier(claims(NOW - 10, NOW + 890, NOW - 10, None), Err(()), 1);
        let err = v.execute("tok").unwrap_err();
        assert!(err.is_unavailable());
        assert_eq!(err.code(), "revocation_unavailable");
    }

    #[test]
    fn claims_stale_session_is_refused_by_the_strict_verify() {
        let v = verifier(
            claims(NOW - 10, NOW + 890, NOW - 10, None),
            Ok(RevocationStatus::ClaimsStale),
            1,
        );
        let err = v.execute("tok").unwrap_err();
        assert!(matches!(err, VerifyError::ClaimsStale));
        assert_eq!(err.code(), "claims_stale");
        assert!(!err.is_unavailable());
    }

    #[test]
    fn claims_stale_session_is_checked_as_stale_for_rotation_only() {
        let v = verifier(
            claims(NOW - 10, NOW + 890, NOW - 10, None),
            Ok(RevocationStatus::ClaimsStale),
            1,
        );
        match v.check("tok").unwrap() {
            SessionCheck::Stale(stale) => {
                assert_eq!(stale.user_id(), &user());
                assert_eq!(stale.session_id(), &session_id());
                assert_eq!(stale.verified_at(), at(NOW));
            }
            SessionCheck::Current(_) => panic!("a stale session was handed out as current"),
        }
    }

    #[test]
    fn token_older_than_the_rotation_threshold_is_due_for_rotation() {
        let v = verifier(
            claims(NOW - 300, NOW + 600, NOW - 300, None),
            Ok(RevocationStatus::Active),
            1,
        );
        assert_eq!(v.execute("tok").unwrap().rotation(), RotationNeed::Due);
    }
}
