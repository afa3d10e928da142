//! ResolveUser: request-time sync of the local user behind a verified
//! provider token.

use std::error::Error as StdError;
use std::sync::Arc;

use tessera_domain::Role;

use crate::external::{
    ExternalIdentity, ExternalProfile, ExternalUser, ExternalUserDirectory, IdentityProviderUsers,
    ProviderUserError, UpsertOutcome,
};
use crate::ports::DirectoryError;

/// When [`ResolveUser`] asks the provider's user API, on a directory miss,
/// instead of building the user from the token's claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderApiUse {
    /// Always: the token is trusted for who the user is, the API for the
    /// profile and role.
    Always,
    /// Only when the token carries no email (tokens trimmed to the
    /// essentials, such as Clerk's default session token).
    WhenTokenLacksEmail,
}

/// Which user to resolve: a provider token already verified (by an
/// [`ExternalTokenVerifier`](crate::external::ExternalTokenVerifier)).
#[derive(Debug, Clone, Copy)]
pub struct ResolveUserRequest<'a, R> {
    /// Who the provider's token says the user is.
    pub identity: &'a ExternalIdentity<R>,
}

/// Where a resolved user's record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolvedFrom {
    /// The local directory already knew the user (or its cache did), or
    /// held a record newer than the profile it was about to write.
    Directory,
    /// The user was written from the token's claims.
    TokenClaims,
    /// The user was written from the provider's user API.
    ProviderApi,
}

/// The local user behind a provider token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser<R> {
    /// The local user, as now stored.
    pub user: ExternalUser<R>,
    /// Where the record came from.
    pub from: ResolvedFrom,
    /// Whether this call created the local user (false when a concurrent
    /// request created it first).
    pub created: bool,
}

/// Why the local user behind a provider token could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveUserError {
    /// The local user directory could not be read or written.
    #[error("user directory could not be read or updated")]
    Directory(#[source] DirectoryError),
    /// The provider's user API failed, or the user's role there cannot be
    /// mapped.
    #[error("provider user API could not describe the user")]
    Provider(#[source] ProviderUserError),
    /// The provider no longer knows the token's subject: deleted since the
    /// token was issued. Either its user API says so, or the directory
    /// holds the account's tombstone (the provider's deletion webhook was
    /// applied), which a token, however valid, never undoes.
    #[error("the provider does not know the user")]
    UnknownAtProvider,
    /// The local user is disabled.
    #[error("user is disabled")]
    UserDisabled,
}

impl ResolveUserError {
    /// A stable, machine-readable code for this failure, for logs and tools.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Directory(_) => "directory_unavailable",
            Self::Provider(ProviderUserError::Role(_)) => "unmapped_role",
            Self::Provider(_) => "provider_api_unavailable",
            Self::UnknownAtProvider => "unknown_user",
            Self::UserDisabled => "user_disabled",
        }
    }

    /// Whether the failure is the server's, not the user's (503, not 401).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Directory(_) => true,
            Self::Provider(e) => e.is_unavailable(),
            Self::UnknownAtProvider | Self::UserDisabled => false,
        }
    }
}

/// The provider's user API answered for another account than asked.
#[derive(Debug, thiserror::Error)]
#[error("the provider's user API answered for another account")]
struct WrongAccount;

/// Finds the local user behind a verified provider token, creating it on
/// first sight.
///
/// On a directory hit the stored record is returned as it is (the
/// directory is kept current by exchanges and the provider's webhooks);
/// on a miss the user is built from the token's claims, or fetched from the
/// provider's user API when so configured, and upserted. Concurrent first
/// requests for one user create one record, as the directory's upsert
/// guarantees. The token's claims are written as of its `iat`
/// ([`AsOf::Token`](crate::external::AsOf::Token)): if a webhook wrote a
/// newer record between the miss and the upsert, that record stands and is
/// returned. A user the provider deleted (a tombstone in the directory)
/// is not recreated: the request fails with
/// [`ResolveUserError::UnknownAtProvider`], as when the provider's API does
/// not know the user, so a deleted user's unexpired token is refused. Put a
/// [`CachedExternalUserDirectory`](crate::user_cache::CachedExternalUserDirectory)
/// in front of the directory to serve repeated lookups from memory.
#[derive(Clone)]
pub struct ResolveUser<R: Role> {
    users: Arc<dyn ExternalUserDirectory<R>>,
    provider_api: Option<(Arc<dyn IdentityProviderUsers<R>>, ProviderApiUse)>,
}

impl<R: Role> std::fmt::Debug for ResolveUser<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolveUser")
            .field("provider_api", &self.provider_api.as_ref().map(|(_, u)| u))
            .finish_non_exhaustive()
    }
}

impl<R: Role> ResolveUser<R> {
    /// Resolves against `users`, building new users from the token's claims.
    #[must_use]
    pub fn new(users: Arc<dyn ExternalUserDirectory<R>>) -> Self {
        Self {
            users,
            provider_api: None,
        }
    }

    /// Builds new users from the provider's user API instead, always or
    /// only when the token lacks the profile.
    #[must_use]
    pub fn with_provider_api(
        mut self,
        api: Arc<dyn IdentityProviderUsers<R>>,
        when: ProviderApiUse,
    ) -> Self {
        self.provider_api = Some((api, when));
        self
    }

    /// Finds the local user for `request.identity`, or creates it.
    ///
    /// # Errors
    ///
    /// [`ResolveUserError`]: the directory or the provider's API failing,
    /// the provider not knowing the user or refusing its role, or the user
    /// disabled.
    pub async fn execute(
        &self,
        request: ResolveUserRequest<'_, R>,
    ) -> Result<ResolvedUser<R>, ResolveUserError> {
        let identity = request.identity;
        let found = self
            .users
            .find_by_external_id(&identity.issuer, &identity.subject)
            .await
            .map_err(ResolveUserError::Directory)?;
        let resolved = match found {
            Some(user) => ResolvedUser {
                user,
                from: ResolvedFrom::Directory,
                created: false,
            },
            None => self.create(identity).await?,
        };
        if !resolved.user.user.enabled {
            return Err(ResolveUserError::UserDisabled);
        }
        Ok(resolved)
    }

    async fn create(
        &self,
        identity: &ExternalIdentity<R>,
    ) -> Result<ResolvedUser<R>, ResolveUserError> {
        let api = self.provider_api.as_ref().and_then(|(api, when)| {
            let wanted = match when {
                ProviderApiUse::Always => true,
                ProviderApiUse::WhenTokenLacksEmail => identity.email.is_none(),
            };
            wanted.then_some(api)
        });
        let (profile, from) = match api {
            None => (
                ExternalProfile::from_identity(identity),
                ResolvedFrom::TokenClaims,
            ),
            Some(api) => {
                let profile = api
                    .fetch_user(&identity.issuer, &identity.subject)
                    .await
                    .map_err(ResolveUserError::Provider)?
                    .ok_or(ResolveUserError::UnknownAtProvider)?;
                if profile.issuer != identity.issuer || profile.subject != identity.subject {
                    let cause: Box<dyn StdError + Send + Sync> = Box::new(WrongAccount);
                    return Err(ResolveUserError::Provider(
                        ProviderUserError::InvalidResponse(cause),
                    ));
                }
                (profile, ResolvedFrom::ProviderApi)
            }
        };
        let outcome = self
            .users
            .upsert_external(profile)
            .await
            .map_err(ResolveUserError::Directory)?;
        let (user, created, from) = match outcome {
            UpsertOutcome::Written(upserted) => {
                (upserted.current, upserted.previous.is_none(), from)
            }
            // Overtaken by a webhook written since the miss: the stored
            // record is the newer truth.
            UpsertOutcome::Stale(stored) => (stored, false, ResolvedFrom::Directory),
            UpsertOutcome::Deleted { .. } => return Err(ResolveUserError::UnknownAtProvider),
        };
        Ok(ResolvedUser {
            user,
            from,
            created,
        })
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::{eq, function};

    use super::*;
    use crate::external::{
        AsOf, ExternalSubject, MockExternalUserDirectory, MockIdentityProviderUsers,
        RoleMappingError, SubjectKind, TokenUse, Upserted,
    };
    use crate::ports::DirectoryUser;
    use crate::testing::*;
    use tessera_domain::{RoleError, UserRole};

    fn identity(email: Option<&str>) -> ExternalIdentity<UserRole> {
        ExternalIdentity {
            issuer: ISSUER.into(),
            subject: subject(),
            token_use: TokenUse::Access,
            subject_kind: SubjectKind::User,
            role: UserRole::User,
            email: email.map(str::to_owned),
            name: None,
            issued_at: at(NOW - 10),
            authenticated_at: None,
            authentication: Default::default(),
            expires_at: at(NOW + 50),
        }
    }

    fn stored(role: UserRole, enabled: bool) -> ExternalUser<UserRole> {
        ExternalUser {
            user: DirectoryUser {
                user_id: user(),
                role,
                capabilities: caps(&["posts:edit"]),
                tenant: Some(tenant()),
                enabled,
            },
            issuer: ISSUER.into(),
            subject: subject(),
            email: Some("a@example.com".into()),
            name: None,
        }
    }

    fn api_profile() -> ExternalProfile<UserRole> {
        ExternalProfile {
            issuer: ISSUER.into(),
            subject: subject(),
            role: UserRole::Moderator,
            email: Some("api@example.com".into()),
            name: Some("Ada".into()),
            enabled: Some(true),
            as_of: AsOf::Unknown,
        }
    }

    fn finding(found: Option<ExternalUser<UserRole>>) -> MockExternalUserDirectory<UserRole> {
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_find_by_external_id()
            .with(eq(ISSUER), eq(subject()))
            .times(1)
            .returning(move |_, _| Ok(found.clone()));
        users
    }

    fn upserting(
        users: &mut MockExternalUserDirectory<UserRole>,
        expected: ExternalProfile<UserRole>,
        previous: Option<ExternalUser<UserRole>>,
    ) {
        users
            .expect_upsert_external()
            .with(eq(expected.clone()))
            .times(1)
            .returning(move |p| {
                let mut current = stored(p.role, true);
                current.email = p.email;
                Ok(UpsertOutcome::Written(Upserted {
                    current,
                    previous: previous.clone(),
                }))
            });
    }

    fn api(times: usize) -> MockIdentityProviderUsers<UserRole> {
        let mut api = MockIdentityProviderUsers::new();
        api.expect_fetch_user()
            .with(eq(ISSUER), eq(subject()))
            .times(times)
            .returning(|_, _| Ok(Some(api_profile())));
        api
    }

    fn resolve(
        users: MockExternalUserDirectory<UserRole>,
        api: Option<(MockIdentityProviderUsers<UserRole>, ProviderApiUse)>,
    ) -> ResolveUser<UserRole> {
        let resolve = ResolveUser::new(Arc::new(users));
        match api {
            Some((api, when)) => resolve.with_provider_api(Arc::new(api), when),
            None => resolve,
        }
    }

    async fn run(
        resolve: &ResolveUser<UserRole>,
        identity: &ExternalIdentity<UserRole>,
    ) -> Result<ResolvedUser<UserRole>, ResolveUserError> {
        resolve.execute(ResolveUserRequest { identity }).await
    }

    #[tokio::test]
    async fn a_known_user_is_returned_as_stored_without_writing_or_calling_the_provider() {
        let mut users = finding(Some(stored(UserRole::Admin, true)));
        users.expect_upsert_external().times(0);
        let resolve = resolve(users, Some((api(0), ProviderApiUse::Always)));
        let out = run(&resolve, &identity(None)).await.unwrap();
        assert_eq!(out.user, stored(UserRole::Admin, true));
        assert_eq!(out.from, ResolvedFrom::Directory);
        assert!(!out.created);
    }

    #[tokio::test]
    async fn a_new_user_is_built_from_the_token_claims_by_default() {
        let mut users = finding(None);
        let id = identity(Some("a@example.com"));
        upserting(&mut users, ExternalProfile::from_identity(&id), None);
        let out = run(&resolve(users, None), &id).await.unwrap();
        assert_eq!(out.from, ResolvedFrom::TokenClaims);
        assert_eq!(out.user.user.role, UserRole::User);
        assert!(out.created);
    }

    #[tokio::test]
    async fn a_new_user_is_fetched_from_the_provider_api_when_configured_always() {
        let mut users = finding(None);
        upserting(&mut users, api_profile(), None);
        let resolve = resolve(users, Some((api(1), ProviderApiUse::Always)));
        let out = run(&resolve, &identity(Some("a@example.com")))
            .await
            .unwrap();
        assert_eq!(out.from, ResolvedFrom::ProviderApi);
        assert_eq!(out.user.user.role, UserRole::Moderator);
        assert_eq!(out.user.email.as_deref(), Some("api@example.com"));
    }

    #[tokio::test]
    async fn the_provider_api_is_asked_only_when_the_token_lacks_an_email_if_so_configured() {
        let mut users = finding(None);
        let id = identity(Some("a@example.com"));
        upserting(&mut users, ExternalProfile::from_identity(&id), None);
        let resolve1 = resolve(users, Some((api(0), ProviderApiUse::WhenTokenLacksEmail)));
        let out = run(&resolve1, &id).await.unwrap();
        assert_eq!(out.from, ResolvedFrom::TokenClaims);

        let mut users = finding(None);
        upserting(&mut users, api_profile(), None);
        let resolve2 = resolve(users, Some((api(1), ProviderApiUse::WhenTokenLacksEmail)));
        let out = run(&resolve2, &identity(None)).await.unwrap();
        assert_eq!(out.from, ResolvedFrom::ProviderApi);
    }

    #[tokio::test]
    async fn losing_the_creation_race_returns_the_record_the_winner_created() {
        let mut users = finding(None);
        let id = identity(Some("a@example.com"));
        upserting(
            &mut users,
            ExternalProfile::from_identity(&id),
            Some(stored(UserRole::User, true)),
        );
        let out = run(&resolve(users, None), &id).await.unwrap();
        assert_eq!(out.user.user.user_id, user());
        assert!(!out.created);
    }

    #[tokio::test]
    async fn a_disabled_user_is_refused_whether_found_or_written() {
        let mut users = finding(Some(stored(UserRole::User, false)));
        users.expect_upsert_external().times(0);
        let err = run(&resolve(users, None), &identity(None))
            .await
            .unwrap_err();
        assert!(matches!(err, ResolveUserError::UserDisabled));
        assert!(!err.is_unavailable());

        let mut users = finding(None);
        users.expect_upsert_external().times(1).returning(|_| {
            Ok(UpsertOutcome::Written(Upserted {
                current: stored(UserRole::User, false),
                previous: Some(stored(UserRole::User, false)),
            }))
        });
        let err = run(&resolve(users, None), &identity(None))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "user_disabled");
    }

    #[tokio::test]
    async fn a_user_the_provider_does_not_know_is_refused_without_writing() {
        let mut users = finding(None);
        users.expect_upsert_external().times(0);
        let mut api = MockIdentityProviderUsers::new();
        api.expect_fetch_user().times(1).returning(|_, _| Ok(None));
        let resolve = resolve(users, Some((api, ProviderApiUse::Always)));
        let err = run(&resolve, &identity(None)).await.unwrap_err();
        assert!(matches!(err, ResolveUserError::UnknownAtProvider));
        assert!(!err.is_unavailable());
    }

    #[tokio::test]
    async fn a_profile_for_another_account_is_refused_without_writing() {
        let mut users = finding(None);
        users.expect_upsert_external().times(0);
        let mut api = MockIdentityProviderUsers::new();
        api.expect_fetch_user().times(1).returning(|_, _| {
            Ok(Some(ExternalProfile {
                subject: ExternalSubject::parse("someone_else").unwrap(),
                ..api_profile()
            }))
        });
        let resolve = resolve(users, Some((api, ProviderApiUse::Always)));
        let err = run(&resolve, &identity(None)).await.unwrap_err();
        assert!(matches!(
            err,
            ResolveUserError::Provider(ProviderUserError::InvalidResponse(_))
        ));
    }

    #[tokio::test]
    async fn provider_and_directory_failures_are_unavailable_but_an_unmapped_role_is_not() {
        let mut users = finding(None);
        users.expect_upsert_external().times(0);
        let mut api = MockIdentityProviderUsers::new();
        api.expect_fetch_user()
            .times(1)
            .returning(|_, _| Err(ProviderUserError::Unavailable("timed out".into())));
        let resolve1 = resolve(users, Some((api, ProviderApiUse::Always)));
        let err = run(&resolve1, &identity(None)).await.unwrap_err();
        assert!(err.is_unavailable());
        assert_eq!(err.code(), "provider_api_unavailable");

        let mut users = finding(None);
        users.expect_upsert_external().times(0);
        let mut api = MockIdentityProviderUsers::new();
        api.expect_fetch_user().times(1).returning(|_, _| {
            Err(ProviderUserError::Role(RoleMappingError::Unmapped(
                RoleError::unknown("superuser"),
            )))
        });
        let resolve2 = resolve(users, Some((api, ProviderApiUse::Always)));
        let err = run(&resolve2, &identity(None)).await.unwrap_err();
        assert!(!err.is_unavailable());
        assert_eq!(err.code(), "unmapped_role");

        let mut users = MockExternalUserDirectory::new();
        users
            .expect_find_by_external_id()
            .times(1)
            .returning(|_, _| Err(DirectoryError::Unavailable("db down".into())));
        users.expect_upsert_external().times(0);
        let err = run(&resolve(users, None), &identity(None))
            .await
            .unwrap_err();
        assert!(matches!(err, ResolveUserError::Directory(_)));
        assert!(err.is_unavailable());

        let mut users = finding(None);
        users
            .expect_upsert_external()
            .with(function(|p: &ExternalProfile<UserRole>| p.issuer == ISSUER))
            .times(1)
            .returning(|_| Err(DirectoryError::Unavailable("db down".into())));
        let err = run(&resolve(users, None), &identity(None))
            .await
            .unwrap_err();
        assert!(err.is_unavailable());
    }

    #[tokio::test]
    async fn a_deleted_users_token_does_not_recreate_them_and_is_refused_as_unknown() {
        let mut users = finding(None);
        let id = identity(Some("a@example.com"));
        users
            .expect_upsert_external()
            .with(eq(ExternalProfile::from_identity(&id)))
            .times(1)
            .returning(|_| {
                Ok(UpsertOutcome::Deleted {
                    deleted_as_of: at(NOW - 30),
                })
            });
        let err = run(&resolve(users, None), &id).await.unwrap_err();
        assert!(matches!(err, ResolveUserError::UnknownAtProvider));
        assert_eq!(err.code(), "unknown_user");
        assert!(!err.is_unavailable(), "a refusal (401), not a 503");
    }

    #[tokio::test]
    async fn a_provider_api_profile_overtaken_by_a_webhook_yields_the_stored_record() {
        let mut users = finding(None);
        let mut fetched = api_profile();
        fetched.as_of = AsOf::Provider(at(NOW - 100));
        let answer = fetched.clone();
        users
            .expect_upsert_external()
            .with(eq(fetched))
            .times(1)
            .returning(|_| Ok(UpsertOutcome::Stale(stored(UserRole::Admin, true))));
        let mut api = MockIdentityProviderUsers::new();
        api.expect_fetch_user()
            .with(eq(ISSUER), eq(subject()))
            .times(1)
            .returning(move |_, _| Ok(Some(answer.clone())));
        let resolve = resolve(users, Some((api, ProviderApiUse::Always)));
        let out = run(&resolve, &identity(None)).await.unwrap();
        assert_eq!(out.user, stored(UserRole::Admin, true));
        assert_eq!(out.from, ResolvedFrom::Directory, "the stored record");
        assert!(!out.created);
    }

    #[tokio::test]
    async fn a_token_overtaken_by_a_webhook_since_the_miss_yields_the_stored_record() {
        // The token (iat NOW - 10) says user; a webhook wrote a moderator
        // record, newer than the token, between the miss and the upsert.
        let mut users = finding(None);
        let id = identity(Some("a@example.com"));
        let expected = ExternalProfile {
            issuer: ISSUER.into(),
            subject: subject(),
            role: UserRole::User,
            email: Some("a@example.com".into()),
            name: None,
            enabled: None,
            as_of: AsOf::Token(at(NOW - 10)),
        };
        assert_eq!(ExternalProfile::from_identity(&id), expected, "as of iat");
        users
            .expect_upsert_external()
            .with(eq(expected))
            .times(1)
            .returning(|_| Ok(UpsertOutcome::Stale(stored(UserRole::Moderator, true))));
        let out = run(&resolve(users, None), &id).await.unwrap();
        assert_eq!(out.user, stored(UserRole::Moderator, true));
        assert_eq!(out.from, ResolvedFrom::Directory);
        assert!(!out.created);
    }
}
