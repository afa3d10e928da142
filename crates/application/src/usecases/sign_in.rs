//! Sign-in: the session of a user the application has authenticated, with
//! the role, capabilities and tenant the user directory holds for them.
//!
//! The directory is the one rotation reads, so a session never starts with
//! claims its first rotation would take back, and a user the directory does
//! not know or has disabled gets no session at all.

use std::sync::Arc;

use tessera_domain::{Authentication, Role, UserId};
use time::OffsetDateTime;

use super::establish::{EstablishError, EstablishRequest, EstablishSession, EstablishedSession};
use crate::ports::{DirectoryError, DirectoryUser, UserDirectory};

/// The session of an enabled directory user: their role, capabilities and
/// tenant, authenticated now, how unknown.
fn request_for<R>(user: DirectoryUser<R>) -> EstablishRequest<R> {
    let DirectoryUser {
        user_id,
        role,
        capabilities,
        tenant,
        enabled: _,
    } = user;
    let request = EstablishRequest::new(user_id, role).capabilities(capabilities);
    match tenant {
        Some(tenant) => request.tenant(tenant),
        None => request,
    }
}

/// How and when the user authenticated, as the application knows it; the
/// rest of the session comes from the user directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignInFacts {
    /// How (`acr`, `amr`); `Default::default()` when unknown.
    pub authentication: Authentication,
    /// When, if earlier than now (an identity provider's `auth_time`).
    pub authenticated_at: Option<OffsetDateTime>,
}

/// Why a user could not be signed in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// The user directory does not know the user.
    #[error("the user directory does not know the user")]
    UnknownUser,
    /// The user directory holds the user as disabled.
    #[error("the user is disabled")]
    Disabled,
    /// The user directory answered with another user: a broken adapter.
    #[error("the user directory answered for another user")]
    OtherUser,
    /// The user directory could not answer.
    #[error("the user directory could not answer")]
    Directory(#[source] DirectoryError),
    /// The session could not be established.
    #[error("the session could not be established")]
    Establish(#[source] EstablishError),
}

/// Signs in a user the application has authenticated: their session, as
/// the user directory knows them now.
#[derive(Clone)]
pub struct SignInUser<R: Role> {
    establish: EstablishSession<R>,
    directory: Arc<dyn UserDirectory<R>>,
}

impl<R: Role> std::fmt::Debug for SignInUser<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInUser")
            .field("establish", &self.establish)
            .finish_non_exhaustive()
    }
}

impl<R: Role> SignInUser<R> {
    /// Wires the use case: `directory` is the one rotation reads.
    #[must_use]
    pub fn new(establish: EstablishSession<R>, directory: Arc<dyn UserDirectory<R>>) -> Self {
        Self {
            establish,
            directory,
        }
    }

    /// Establishes the session of `user_id` with the role, capabilities
    /// and tenant the directory holds, and `facts` on how they
    /// authenticated.
    ///
    /// # Errors
    ///
    /// [`SignInError::UnknownUser`] and [`SignInError::Disabled`] when the
    /// directory does not let the user in, [`SignInError::Directory`] when
    /// it cannot answer (nobody is signed in on a guess),
    /// [`SignInError::OtherUser`] when it answers for someone else, and
    /// [`SignInError::Establish`] when the session cannot be issued.
    pub async fn execute(
        &self,
        user_id: &UserId,
        facts: SignInFacts,
    ) -> Result<EstablishedSession<R>, SignInError> {
        let user = self
            .directory
            .find(user_id)
            .await
            .map_err(SignInError::Directory)?
            .ok_or(SignInError::UnknownUser)?;
        if user.user_id != *user_id {
            return Err(SignInError::OtherUser);
        }
        if !user.enabled {
            return Err(SignInError::Disabled);
        }
        let request = request_for(user).authentication(facts.authentication);
        let request = match facts.authenticated_at {
            Some(at) => request.authenticated_at(at),
            None => request,
        };
        self.establish
            .execute(request)
            .map_err(SignInError::Establish)
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::{eq, function};
    use tessera_domain::{Acr, UserRole};

    use super::*;
    use crate::SessionToken;
    use crate::SessionTokenClaims;
    use crate::ports::{MockIdGenerator, MockSessionTokenCodec, MockUserDirectory};
    use crate::testing::*;

    fn directory_user(enabled: bool) -> DirectoryUser<UserRole> {
        DirectoryUser {
            user_id: user(),
            role: UserRole::Moderator,
            capabilities: caps(&["posts:edit"]),
            tenant: Some(tenant()),
            enabled,
        }
    }

    fn directory(answer: Option<DirectoryUser<UserRole>>) -> MockUserDirectory<UserRole> {
        let mut directory = MockUserDirectory::new();
        directory
            .expect_find()
            .with(eq(user()))
            .times(1)
            .return_once(move |_| Ok(answer));
        directory
    }

    /// A use case that must issue nothing: its clock, ids and codec are
    /// never read.
    fn issuing_nothing(directory: MockUserDirectory<UserRole>) -> SignInUser<UserRole> {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(0);
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_encode().times(0);
        let mut clock = crate::ports::MockClock::new();
        clock.expect_now().times(0);
        let establish =
            EstablishSession::new(Arc::new(codec), Arc::new(clock), Arc::new(ids), lifetimes());
        SignInUser::new(establish, Arc::new(directory))
    }

    #[test]
    fn a_directory_user_becomes_a_request_with_their_role_capabilities_and_tenant() {
        let request = request_for(directory_user(true));
        assert_eq!(request.user_id, user());
        assert_eq!(request.role, UserRole::Moderator);
        assert_eq!(request.capabilities, caps(&["posts:edit"]));
        assert_eq!(request.tenant, Some(tenant()));
        assert_eq!(request.authenticated_at, None);
        assert_eq!(request.authentication, Authentication::default());
    }

    #[tokio::test]
    async fn sign_in_gives_the_session_the_directorys_claims_and_the_callers_facts() {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(1).return_const(session_id());
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_encode()
            .with(function(|c: &SessionTokenClaims<UserRole>| {
                let s = c.session();
                s.user_id() == &user()
                    && s.role() == &UserRole::Moderator
                    && s.has_capability("posts:edit")
                    && s.is_in_tenant("acme")
                    && s.authenticated_at() == at(NOW - 60)
                    && s.authentication().acr().map(Acr::as_str) == Some("urn:example:mfa")
            }))
            .times(1)
            .returning(|_| Ok(SessionToken::new("signed".into())));
        let establish = EstablishSession::new(
            Arc::new(codec),
            Arc::new(clock_at(NOW)),
            Arc::new(ids),
            lifetimes(),
        );
        let sign_in = SignInUser::new(establish, Arc::new(directory(Some(directory_user(true)))));
        let facts = SignInFacts {
            authentication: Authentication::at_level(Acr::parse("urn:example:mfa").unwrap()),
            authenticated_at: Some(at(NOW - 60)),
        };
        let issued = sign_in.execute(&user(), facts).await.unwrap();
        assert_eq!(issued.token.expose_secret(), "signed");
        assert_eq!(issued.session.role(), &UserRole::Moderator);
    }

    #[tokio::test]
    async fn sign_in_refuses_a_user_the_directory_does_not_know_and_issues_nothing() {
        let error = issuing_nothing(directory(None))
            .execute(&user(), SignInFacts::default())
            .await
            .unwrap_err();
        assert!(matches!(error, SignInError::UnknownUser), "{error:?}");
    }

    #[tokio::test]
    async fn sign_in_refuses_a_disabled_user_and_issues_nothing() {
        let error = issuing_nothing(directory(Some(directory_user(false))))
            .execute(&user(), SignInFacts::default())
            .await
            .unwrap_err();
        assert!(matches!(error, SignInError::Disabled), "{error:?}");
    }

    #[tokio::test]
    async fn sign_in_refuses_a_directory_answer_for_another_user() {
        let mut other = directory_user(true);
        other.user_id =
            tessera_domain::UserId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000ff").unwrap();
        let error = issuing_nothing(directory(Some(other)))
            .execute(&user(), SignInFacts::default())
            .await
            .unwrap_err();
        assert!(matches!(error, SignInError::OtherUser), "{error:?}");
    }

    #[tokio::test]
    async fn sign_in_fails_closed_when_the_directory_cannot_answer() {
        let mut directory = MockUserDirectory::new();
        directory
            .expect_find()
            .times(1)
            .returning(|_| Err(DirectoryError::Unavailable("connection refused".into())));
        let error = issuing_nothing(directory)
            .execute(&user(), SignInFacts::default())
            .await
            .unwrap_err();
        assert!(matches!(error, SignInError::Directory(_)), "{error:?}");
    }

    #[tokio::test]
    async fn sign_in_reports_a_session_that_cannot_be_established() {
        let facts = SignInFacts {
            authenticated_at: Some(at(NOW + 3600)),
            ..SignInFacts::default()
        };
        let mut clock = crate::ports::MockClock::new();
        clock.expect_now().times(1).return_const(at(NOW));
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_encode().times(0);
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id().times(0);
        let establish =
            EstablishSession::new(Arc::new(codec), Arc::new(clock), Arc::new(ids), lifetimes());
        let sign_in = SignInUser::new(establish, Arc::new(directory(Some(directory_user(true)))));
        let error = sign_in.execute(&user(), facts).await.unwrap_err();
        assert!(
            matches!(
                error,
                SignInError::Establish(EstablishError::AuthenticatedInFuture)
            ),
            "{error:?}"
        );
    }
}
