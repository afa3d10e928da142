//! EstablishSession: issue a token once the caller has authenticated a user.

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_domain::{
    Authentication, Capability, NewSession, Role, SessionEntity, SessionError, SessionLifetimes,
    TenantId, UserId,
};
use time::OffsetDateTime;

use crate::ports::{Clock, IdGenerator, SessionTokenCodec, TokenError};
use crate::token::{SessionToken, SessionTokenClaims};

/// Who the new session is for.
#[derive(Debug, Clone)]
pub struct EstablishRequest<R> {
    /// The authenticated user.
    pub user_id: UserId,
    /// Their role.
    pub role: R,
    /// Their capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// Their tenant, if sessions are tenant-scoped.
    pub tenant: Option<TenantId>,
    /// When they authenticated, if earlier than now (for example an identity
    /// provider's `auth_time`); `None` means now.
    pub authenticated_at: Option<OffsetDateTime>,
    /// How they authenticated (`acr`, `amr`), when the application knows:
    /// what routes requiring a level of authentication
    /// ([`RouteRule::acr`](tessera_domain::RouteRule::acr)) check. Kept
    /// across rotations. `Default::default()` when unknown.
    pub authentication: Authentication,
}

impl<R> EstablishRequest<R> {
    /// A session for `user_id` with `role`: no capabilities, no tenant,
    /// authenticated now, how unknown. The setters add the rest.
    ///
    /// ```
    /// use tessera_application::EstablishRequest;
    /// use tessera_domain::{Capability, UserId, UserRole};
    ///
    /// let request = EstablishRequest::new(
    ///     UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001")?,
    ///     UserRole::Admin,
    /// )
    /// .capabilities([Capability::parse("reports:read")?]);
    /// assert_eq!(request.capabilities.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(user_id: UserId, role: R) -> Self {
        Self {
            user_id,
            role,
            capabilities: BTreeSet::new(),
            tenant: None,
            authenticated_at: None,
            authentication: Authentication::default(),
        }
    }

    /// The user's capabilities.
    #[must_use]
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.capabilities = capabilities.into_iter().collect();
        self
    }

    /// The session's tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// When the user authenticated, if earlier than now.
    #[must_use]
    pub fn authenticated_at(mut self, at: OffsetDateTime) -> Self {
        self.authenticated_at = Some(at);
        self
    }

    /// How the user authenticated (`acr`, `amr`).
    #[must_use]
    pub fn authentication(mut self, authentication: Authentication) -> Self {
        self.authentication = authentication;
        self
    }
}

/// A new session and its token.
#[derive(Debug, Clone)]
pub struct EstablishedSession<R> {
    /// The signed token to hand to the client.
    pub token: SessionToken,
    /// The session it carries.
    pub session: SessionEntity<R>,
}

/// Why a session could not be established.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EstablishError {
    /// `authenticated_at` lies in the future beyond the leeway.
    #[error("authentication time is in the future")]
    AuthenticatedInFuture,
    /// `authenticated_at` is so old that the session's absolute lifetime is over.
    #[error("authentication is older than the absolute session lifetime")]
    AuthenticationTooOld,
    /// The session's invariants do not hold.
    #[error("session is invalid")]
    InvalidSession(#[source] SessionError),
    /// The token could not be signed.
    #[error("session token could not be issued")]
    Token(#[source] TokenError),
}

/// Issues session tokens.
#[derive(Clone)]
pub struct EstablishSession<R: Role> {
    codec: Arc<dyn SessionTokenCodec<R>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    lifetimes: SessionLifetimes,
}

impl<R: Role> std::fmt::Debug for EstablishSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EstablishSession")
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

impl<R: Role> EstablishSession<R> {
    /// Wires the use case to its ports.
    #[must_use]
    pub fn new(
        codec: Arc<dyn SessionTokenCodec<R>>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        lifetimes: SessionLifetimes,
    ) -> Self {
        Self {
            codec,
            clock,
            ids,
            lifetimes,
        }
    }

    /// Issues a token for an authenticated user: a fresh session id, `iat`
    /// now, `exp` one token lifetime later (cut by the absolute lifetime).
    ///
    /// # Errors
    ///
    /// [`EstablishError`] when the authentication time is unusable or the
    /// token cannot be signed.
    pub fn execute(
        &self,
        request: EstablishRequest<R>,
    ) -> Result<EstablishedSession<R>, EstablishError> {
        let now = truncate_to_seconds(self.clock.now());
        let authenticated_at = match request.authenticated_at {
            None => now,
            Some(at) if at > now.saturating_add(self.lifetimes.leeway()) => {
                return Err(EstablishError::AuthenticatedInFuture);
            }
            Some(at) => truncate_to_seconds(at).min(now),
        };
        let expires_at = self.lifetimes.token_expiry(now, authenticated_at);
        if expires_at <= now {
            return Err(EstablishError::AuthenticationTooOld);
        }
        let session = SessionEntity::new(NewSession {
            user_id: request.user_id,
            session_id: self.ids.session_id(),
            role: request.role,
            capabilities: request.capabilities,
            tenant: request.tenant,
            issued_at: now,
            expires_at,
            authenticated_at,
            authentication: request.authentication,
        })
        .map_err(EstablishError::InvalidSession)?;
        let claims = SessionTokenClaims::new(session, None);
        let token = self.codec.encode(&claims).map_err(EstablishError::Token)?;
        Ok(EstablishedSession {
            token,
            session: claims.into_session(),
        })
    }
}

/// Drops sub-second precision: JWT times are whole seconds, and a session
/// must compare equal to itself after a trip through its token.
pub(crate) fn truncate_to_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use mockall::predicate::function;

    use super::*;
    use crate::ports::{MockClock, MockIdGenerator, MockSessionTokenCodec};
    use crate::testing::*;
    use tessera_domain::UserRole;

    fn use_case(
        codec: MockSessionTokenCodec<UserRole>,
        ids: MockIdGenerator,
    ) -> EstablishSession<UserRole> {
        EstablishSession::new(
            Arc::new(codec),
            Arc::new(clock_at(NOW)),
            Arc::new(ids),
            lifetimes(),
        )
    }

    fn request(authenticated_at: Option<i64>) -> EstablishRequest<UserRole> {
        EstablishRequest {
            user_id: user(),
            role: UserRole::Admin,
            capabilities: caps(&["users:ban"]),
            tenant: Some(tenant()),
            authenticated_at: authenticated_at.map(at),
            authentication: tessera_domain::Authentication::at_level(
                tessera_domain::Acr::parse("urn:example:mfa").unwrap(),
            ),
        }
    }

    #[test]
    fn a_request_built_with_setters_carries_exactly_what_was_set() {
        let bare = EstablishRequest::new(user(), UserRole::User);
        assert!(bare.capabilities.is_empty() && bare.tenant.is_none());
        assert_eq!(
            (bare.authenticated_at, bare.authentication),
            (None, Authentication::default())
        );
        let full = EstablishRequest::new(user(), UserRole::Admin)
            .capabilities(caps(&["posts:edit", "posts:hide"]))
            .tenant(tenant())
            .authenticated_at(at(NOW - 60));
        assert_eq!(full.role, UserRole::Admin);
        assert_eq!(full.capabilities, caps(&["posts:edit", "posts:hide"]));
        assert_eq!(full.tenant, Some(tenant()));
        assert_eq!(full.authenticated_at, Some(at(NOW - 60)));
    }
    #[test]
    fn establish_issues_a_token_for_a_fresh_session() {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(1).return_const(session_id());
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_encode()
            .with(function(|c: &SessionTokenClaims<UserRole>| {
                let s = c.session();
                s.session_id() == &session_id()
                    && s.issued_at() == at(NOW)
                    && s.expires_at() == at(NOW + 900)
                    && s.authenticated_at() == at(NOW)
                    && s.authentication().acr().map(|a| a.as_str()) == Some("urn:example:mfa")
                    && s.role() == &UserRole::Admin
                    && s.has_capability("users:ban")
                    && s.is_in_tenant("acme")
                    && c.not_before().is_none()
            }))
            .times(1)
            .returning(|_| Ok(SessionToken::new("signed".into())));

        let out = use_case(codec, ids).execute(request(None)).unwrap();
        assert_eq!(out.token.expose_secret(), "signed");
        assert_eq!(out.session.user_id(), &user());
    }

    #[test]
    fn establish_keeps_an_earlier_authentication_time_and_cuts_expiry_at_the_absolute_lifetime() {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(1).return_const(session_id());
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_encode()
            .with(function(|c: &SessionTokenClaims<UserRole>| {
                c.session().authenticated_at() == at(NOW - 3300)
                    && c.session().expires_at() == at(NOW + 300)
            }))
            .times(1)
            .returning(|_| Ok(SessionToken::new("signed".into())));
        use_case(codec, ids)
            .execute(request(Some(NOW - 3300)))
            .unwrap();
    }

    #[test]
    fn establish_refuses_an_authentication_time_in_the_future() {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(0);
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_encode().times(0);
        let err = use_case(codec, ids)
            .execute(request(Some(NOW + 31)))
            .unwrap_err();
        assert!(matches!(err, EstablishError::AuthenticatedInFuture));
    }

    #[test]
    fn establish_refuses_an_authentication_past_the_absolute_lifetime() {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(0);
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_encode().times(0);
        let err = use_case(codec, ids)
            .execute(request(Some(NOW - 3600)))
            .unwrap_err();
        assert!(matches!(err, EstablishError::AuthenticationTooOld));
    }

    #[test]
    fn establish_reports_a_signing_failure() {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(1).return_const(session_id());
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_encode()
            .times(1)
            .returning(|_| Err(TokenError::Signing("no signing key".into())));
        let err = use_case(codec, ids).execute(request(None)).unwrap_err();
        assert!(matches!(err, EstablishError::Token(TokenError::Signing(_))));
    }

    #[test]
    fn establish_truncates_the_clock_to_whole_seconds() {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(1).return_const(session_id());
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_encode()
            .times(1)
            .returning(|_| Ok(SessionToken::new("signed".into())));
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .times(1)
            .return_const(at(NOW) + time::Duration::milliseconds(700));
        let out =
            EstablishSession::new(Arc::new(codec), Arc::new(clock), Arc::new(ids), lifetimes())
                .execute(request(None))
                .unwrap();
        assert_eq!(out.session.issued_at(), at(NOW));
    }
}
