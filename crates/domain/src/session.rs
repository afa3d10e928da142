//! The session as a business fact, and the lifetime rules that apply to it.

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime};

use crate::authentication::Authentication;
use crate::ids::{Capability, SessionId, TenantId, UserId};
use crate::role::Role;

/// Why a [`SessionEntity`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// `expires_at` is not after `issued_at`.
    #[error("session expires at or before it was issued")]
    ExpiresBeforeIssued,
    /// `authenticated_at` is after `issued_at`.
    #[error("session was issued before its user authenticated")]
    AuthenticatedAfterIssued,
    /// `issued_at` lies before the Unix epoch.
    #[error("session was issued before the Unix epoch")]
    IssuedBeforeEpoch,
}

/// Everything a [`SessionEntity`] is made of, before its invariants are checked.
#[derive(Debug, Clone)]
pub struct NewSession<R> {
    /// The signed-in user.
    pub user_id: UserId,
    /// The session, kept across rotations.
    pub session_id: SessionId,
    /// The user's role.
    pub role: R,
    /// The user's capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// The tenant the session is scoped to, if any.
    pub tenant: Option<TenantId>,
    /// When this token of the session was issued.
    pub issued_at: OffsetDateTime,
    /// When this token of the session expires.
    pub expires_at: OffsetDateTime,
    /// When the user actually authenticated; survives rotations.
    pub authenticated_at: OffsetDateTime,
    /// How the user authenticated (`acr`, `amr`), when known; survives
    /// rotations.
    pub authentication: Authentication,
}

/// A signed-in user's session.
///
/// Invariants, enforced by [`SessionEntity::new`]: it expires after it was
/// issued, the user authenticated no later than it was issued, and it was not
/// issued before the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntity<R> {
    user_id: UserId,
    session_id: SessionId,
    role: R,
    capabilities: BTreeSet<Capability>,
    tenant: Option<TenantId>,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    authenticated_at: OffsetDateTime,
    authentication: Authentication,
}

impl<R: Role> SessionEntity<R> {
    /// Builds a session, checking its invariants.
    ///
    /// # Errors
    ///
    /// [`SessionError`] names the invariant that does not hold.
    pub fn new(parts: NewSession<R>) -> Result<Self, SessionError> {
        if parts.issued_at < OffsetDateTime::UNIX_EPOCH {
            return Err(SessionError::IssuedBeforeEpoch);
        }
        if parts.expires_at <= parts.issued_at {
            return Err(SessionError::ExpiresBeforeIssued);
        }
        if parts.authenticated_at > parts.issued_at {
            return Err(SessionError::AuthenticatedAfterIssued);
        }
        Ok(Self {
            user_id: parts.user_id,
            session_id: parts.session_id,
            role: parts.role,
            capabilities: parts.capabilities,
            tenant: parts.tenant,
            issued_at: parts.issued_at,
            expires_at: parts.expires_at,
            authenticated_at: parts.authenticated_at,
            authentication: parts.authentication,
        })
    }

    /// The signed-in user.
    #[must_use]
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The session id, the same across rotations.
    #[must_use]
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    /// The user's role as of this token.
    #[must_use]
    pub fn role(&self) -> &R {
        &self.role
    }

    /// The user's capabilities as of this token.
    #[must_use]
    pub fn capabilities(&self) -> &BTreeSet<Capability> {
        &self.capabilities
    }

    /// The tenant the session is scoped to, if any.
    #[must_use]
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// When this token was issued.
    #[must_use]
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }

    /// When this token expires.
    #[must_use]
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// When the user authenticated.
    #[must_use]
    pub fn authenticated_at(&self) -> OffsetDateTime {
        self.authenticated_at
    }

    /// How the user authenticated (`acr`, `amr`), as far as known.
    #[must_use]
    pub fn authentication(&self) -> &Authentication {
        &self.authentication
    }

    /// Takes the session apart, to build a changed one with [`SessionEntity::new`].
    #[must_use]
    pub fn into_parts(self) -> NewSession<R> {
        NewSession {
            user_id: self.user_id,
            session_id: self.session_id,
            role: self.role,
            capabilities: self.capabilities,
            tenant: self.tenant,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            authenticated_at: self.authenticated_at,
            authentication: self.authentication,
        }
    }

    /// Whether the user has exactly this role.
    #[must_use]
    pub fn has_role(&self, role: &R) -> bool {
        &self.role == role
    }

    /// Whether the user has one of these roles.
    #[must_use]
    pub fn has_any_role(&self, roles: &[R]) -> bool {
        roles.contains(&self.role)
    }

    /// Whether the user's role is `role` or ranks above it.
    #[must_use]
    pub fn has_role_at_least(&self, role: &R) -> bool {
        self.role.is_at_least(role)
    }

    /// Whether the user holds this capability.
    #[must_use]
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c.as_str() == capability)
    }

    /// Whether the session is scoped to this tenant.
    #[must_use]
    pub fn is_in_tenant(&self, tenant: &str) -> bool {
        self.tenant.as_ref().is_some_and(|t| t.as_str() == tenant)
    }

    /// Whether the token has expired at `now`, allowing `leeway` for clock
    /// skew: at or after `exp + leeway`, the one rule of
    /// [`TimeWindow`](crate::TimeWindow).
    ///
    /// Time arithmetic here and below saturates at the ends of the
    /// representable range, so no claim value can make it panic.
    #[must_use]
    pub fn is_expired(&self, now: OffsetDateTime, leeway: Duration) -> bool {
        crate::window::is_expired(self.expires_at, now, leeway)
    }

    /// How long ago this token was issued (negative if issued in the future).
    #[must_use]
    pub fn token_age(&self, now: OffsetDateTime) -> Duration {
        now - self.issued_at
    }

    /// How long ago the user authenticated: the age of the whole session.
    #[must_use]
    pub fn session_age(&self, now: OffsetDateTime) -> Duration {
        now - self.authenticated_at
    }

    /// The time after which the session may no longer be used or rotated.
    #[must_use]
    pub fn absolute_expiry(&self, lifetimes: &SessionLifetimes) -> OffsetDateTime {
        self.authenticated_at.saturating_add(lifetimes.absolute)
    }

    /// Whether the whole session, measured from authentication and so across
    /// every rotation, has outlived the absolute lifetime at `now`.
    #[must_use]
    pub fn is_past_absolute_lifetime(
        &self,
        now: OffsetDateTime,
        lifetimes: &SessionLifetimes,
    ) -> bool {
        now >= self
            .absolute_expiry(lifetimes)
            .saturating_add(lifetimes.leeway)
    }

    /// Whether this token should be rotated at `now`: it is older than the
    /// rotation threshold and the session may still be extended.
    #[must_use]
    pub fn needs_rotation(&self, now: OffsetDateTime, lifetimes: &SessionLifetimes) -> bool {
        self.token_age(now) >= lifetimes.rotate_after
            && self.expires_at < self.absolute_expiry(lifetimes)
    }
}

/// Why a [`SessionLifetimes`] is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifetimeError {
    /// A duration that must be positive is zero or negative.
    #[error("{0} must be positive")]
    NotPositive(&'static str),
    /// The leeway is negative.
    #[error("leeway must not be negative")]
    NegativeLeeway,
    /// The token lifetime is longer than the absolute session lifetime.
    #[error("token lifetime exceeds the absolute session lifetime")]
    TokenOutlivesSession,
    /// Rotation would start only after the token expired.
    #[error("rotate_after must be shorter than the token lifetime")]
    RotationAfterExpiry,
}

/// How long tokens and sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    token: Duration,
    absolute: Duration,
    rotate_after: Duration,
    leeway: Duration,
}

impl SessionLifetimes {
    /// Builds a consistent set of lifetimes.
    ///
    /// - `token`: how long one token lives (`exp - iat`), also the longest
    ///   lifetime a token may claim;
    /// - `absolute`: how long a session may live from authentication, across
    ///   rotations;
    /// - `rotate_after`: token age from which a rotation is due;
    /// - `leeway`: clock skew tolerated on every time check.
    ///
    /// # Errors
    ///
    /// [`LifetimeError`] when a duration is not positive, the leeway is
    /// negative, the token outlives the session or rotation starts after expiry.
    pub fn new(
        token: Duration,
        absolute: Duration,
        rotate_after: Duration,
        leeway: Duration,
    ) -> Result<Self, LifetimeError> {
        if !token.is_positive() {
            return Err(LifetimeError::NotPositive("token lifetime"));
        }
        if !absolute.is_positive() {
            return Err(LifetimeError::NotPositive("absolute lifetime"));
        }
        if !rotate_after.is_positive() {
            return Err(LifetimeError::NotPositive("rotate_after"));
        }
        if leeway.is_negative() {
            return Err(LifetimeError::NegativeLeeway);
        }
        if token > absolute {
            return Err(LifetimeError::TokenOutlivesSession);
        }
        if rotate_after >= token {
            return Err(LifetimeError::RotationAfterExpiry);
        }
        Ok(Self {
            token,
            absolute,
            rotate_after,
            leeway,
        })
    }

    /// How long one token lives.
    #[must_use]
    pub fn token(&self) -> Duration {
        self.token
    }

    /// How long a session may live from authentication.
    #[must_use]
    pub fn absolute(&self) -> Duration {
        self.absolute
    }

    /// Token age from which rotation is due.
    #[must_use]
    pub fn rotate_after(&self) -> Duration {
        self.rotate_after
    }

    /// Clock skew tolerated on every time check.
    #[must_use]
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The expiry of a token issued at `issued_at` for a user who
    /// authenticated at `authenticated_at`: one token lifetime, cut short by
    /// the absolute session lifetime.
    #[must_use]
    pub fn token_expiry(
        &self,
        issued_at: OffsetDateTime,
        authenticated_at: OffsetDateTime,
    ) -> OffsetDateTime {
        issued_at
            .saturating_add(self.token)
            .min(authenticated_at.saturating_add(self.absolute))
    }
}

impl Default for SessionLifetimes {
    /// 15-minute tokens rotated after 5 minutes, 12-hour sessions, 30 seconds
    /// of leeway.
    fn default() -> Self {
        Self {
            token: Duration::minutes(15),
            absolute: Duration::hours(12),
            rotate_after: Duration::minutes(5),
            leeway: Duration::seconds(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::UserRole;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    fn parts(issued: i64, expires: i64, authenticated: i64) -> NewSession<UserRole> {
        NewSession {
            user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap(),
            session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").unwrap(),
            role: UserRole::Moderator,
            capabilities: [Capability::parse("posts:edit").unwrap()].into(),
            tenant: Some(TenantId::parse("acme").unwrap()),
            issued_at: at(issued),
            expires_at: at(expires),
            authenticated_at: at(authenticated),
            authentication: Default::default(),
        }
    }

    fn lifetimes() -> SessionLifetimes {
        SessionLifetimes::new(
            Duration::seconds(900),
            Duration::seconds(3600),
            Duration::seconds(300),
            Duration::seconds(30),
        )
        .unwrap()
    }

    #[test]
    fn session_must_expire_after_it_was_issued() {
        assert_eq!(
            SessionEntity::new(parts(1000, 1000, 1000)),
            Err(SessionError::ExpiresBeforeIssued)
        );
        assert_eq!(
            SessionEntity::new(parts(1000, 999, 1000)),
            Err(SessionError::ExpiresBeforeIssued)
        );
    }

    #[test]
    fn session_cannot_be_authenticated_after_it_was_issued() {
        assert_eq!(
            SessionEntity::new(parts(1000, 1900, 1001)),
            Err(SessionError::AuthenticatedAfterIssued)
        );
    }

    #[test]
    fn session_cannot_be_issued_before_the_epoch() {
        assert_eq!(
            SessionEntity::new(parts(-1, 1900, -5)),
            Err(SessionError::IssuedBeforeEpoch)
        );
    }

    #[test]
    fn role_and_capability_helpers_answer_from_the_session() {
        let s = SessionEntity::new(parts(1000, 1900, 900)).unwrap();
        assert!(s.has_role(&UserRole::Moderator));
        assert!(!s.has_role(&UserRole::Admin));
        assert!(s.has_any_role(&[UserRole::User, UserRole::Moderator]));
        assert!(s.has_role_at_least(&UserRole::User));
        assert!(!s.has_role_at_least(&UserRole::Admin));
        assert!(s.has_capability("posts:edit"));
        assert!(!s.has_capability("posts:delete"));
        assert!(s.is_in_tenant("acme"));
        assert!(!s.is_in_tenant("globex"));
    }

    #[test]
    fn expiry_applies_the_leeway() {
        let s = SessionEntity::new(parts(1000, 1900, 1000)).unwrap();
        let leeway = Duration::seconds(30);
        assert!(!s.is_expired(at(1929), leeway));
        assert!(s.is_expired(at(1930), leeway));
        assert!(s.is_expired(at(1900), Duration::ZERO));
    }

    #[test]
    fn absolute_lifetime_is_measured_from_authentication() {
        // Rotated token: issued long after authentication.
        let s = SessionEntity::new(parts(4000, 4900, 1000)).unwrap();
        let l = lifetimes();
        assert_eq!(s.session_age(at(4500)), Duration::seconds(3500));
        assert!(!s.is_past_absolute_lifetime(at(4629), &l));
        assert!(s.is_past_absolute_lifetime(at(4630), &l));
    }

    #[test]
    fn rotation_is_due_after_threshold_unless_the_session_cannot_extend() {
        let l = lifetimes();
        let s = SessionEntity::new(parts(1000, 1900, 1000)).unwrap();
        assert!(!s.needs_rotation(at(1299), &l));
        assert!(s.needs_rotation(at(1300), &l));
        // A token already ending at the absolute expiry gains nothing from rotation.
        let last = SessionEntity::new(parts(4000, 4600, 1000)).unwrap();
        assert!(!last.needs_rotation(at(4400), &l));
    }

    #[test]
    fn token_expiry_is_cut_by_the_absolute_lifetime() {
        let l = lifetimes();
        assert_eq!(l.token_expiry(at(1000), at(1000)), at(1900));
        assert_eq!(l.token_expiry(at(4000), at(1000)), at(4600));
    }

    #[test]
    fn lifetime_rules_saturate_at_the_end_of_time_instead_of_panicking() {
        let end = OffsetDateTime::new_utc(
            time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap(),
            time::Time::from_hms(23, 59, 59).unwrap(),
        );
        let l = lifetimes();
        let mut p = parts(1000, 1900, 1000);
        p.issued_at = end - Duration::seconds(10);
        p.authenticated_at = p.issued_at;
        p.expires_at = end;
        let s = SessionEntity::new(p).unwrap();
        assert!(!s.is_expired(end, Duration::seconds(30)));
        assert!(!s.is_past_absolute_lifetime(end, &l));
        assert!(!s.needs_rotation(end, &l));
        assert_eq!(l.token_expiry(end, end), end.saturating_add(Duration::DAY));
    }

    #[test]
    fn lifetimes_refuse_inconsistent_settings() {
        let s = Duration::seconds;
        assert_eq!(
            SessionLifetimes::new(s(0), s(10), s(1), s(0)),
            Err(LifetimeError::NotPositive("token lifetime"))
        );
        assert_eq!(
            SessionLifetimes::new(s(20), s(10), s(1), s(0)),
            Err(LifetimeError::TokenOutlivesSession)
        );
        assert_eq!(
            SessionLifetimes::new(s(10), s(20), s(10), s(0)),
            Err(LifetimeError::RotationAfterExpiry)
        );
        assert_eq!(
            SessionLifetimes::new(s(10), s(20), s(5), s(-1)),
            Err(LifetimeError::NegativeLeeway)
        );
    }
}
