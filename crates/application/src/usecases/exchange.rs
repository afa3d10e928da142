//! ExchangeToken: an identity provider's token in, the backend's own
//! session out (the shape of an RFC 8693 token exchange).

use std::sync::Arc;

use tessera_domain::{Role, SessionEntity};

use super::establish::{EstablishError, EstablishRequest, EstablishSession};
use crate::external::{
    ExternalProfile, ExternalTokenError, ExternalTokenVerifier, ExternalUser,
    ExternalUserDirectory, TokenUse, UpsertOutcome,
};
use crate::ports::{
    DirectoryError, RevocationError, RevocationReason, RevocationStatus, RevocationStore,
};
use crate::token::SessionToken;
use crate::usecases::admission::Refusal;
use crate::usecases::verify::provider_token_status;

/// The token type an exchange issues: a JWT (RFC 8693 §3), namely a
/// tessera session token.
pub const ISSUED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The backend's own session, issued for a provider's token.
#[derive(Debug, Clone)]
pub struct ExchangedToken<R> {
    /// The session token to hand to the client.
    pub token: SessionToken,
    /// The session it carries.
    pub session: SessionEntity<R>,
    /// Seconds until the token expires (RFC 8693 `expires_in`).
    pub expires_in: i64,
    /// The local user linked to the provider account, as now stored.
    pub user: ExternalUser<R>,
    /// Whether this exchange created the local user.
    pub created: bool,
}

/// Why a provider's token could not be exchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The provider's token was refused (or its keys are unavailable).
    #[error("provider token refused")]
    Token(#[source] ExternalTokenError),
    /// The provider's token is valid, but of a kind (its profile's
    /// [`TokenUse`]) this exchange is not configured to take.
    #[error("a provider token of use `{}` is not exchanged here", .0.as_str())]
    TokenUseRefused(TokenUse),
    /// The local user directory could not be read or written.
    #[error("user directory could not be updated")]
    Directory(#[source] DirectoryError),
    /// The local user is disabled.
    #[error("user is disabled")]
    UserDisabled,
    /// The provider deleted the user: the directory holds the account's
    /// tombstone, which a token, however valid, never undoes.
    #[error("the provider deleted the user")]
    UserDeleted,
    /// A logout reaches the provider token: its user, their tenant or
    /// everyone was force-logged-out at or after its `iat` (or its
    /// session, [`ExternalIdentity::session_id`](crate::external::ExternalIdentity::session_id),
    /// was logged out).
    #[error("provider token is revoked ({0:?})")]
    Revoked(RevocationReason),
    /// The revocation state cannot be trusted, so no token is exchanged
    /// (fail closed).
    #[error("revocation state is unavailable")]
    RevocationUnavailable(#[source] RevocationError),
    /// The session could not be established (authentication too old, or
    /// signing failed).
    #[error("session could not be established")]
    Establish(#[source] EstablishError),
}

impl ExchangeError {
    /// A stable, machine-readable code for this failure, for logs and tools.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Token(e) => e.code(),
            Self::TokenUseRefused(_) => "token_use_refused",
            Self::Directory(_) => "directory_unavailable",
            Self::UserDisabled => "user_disabled",
            Self::UserDeleted => "unknown_user",
            Self::Revoked(_) => "revoked",
            Self::RevocationUnavailable(_) => "revocation_unavailable",
            Self::Establish(EstablishError::Token(_)) => "signing_failed",
            Self::Establish(_) => "authentication_unusable",
        }
    }

    /// Whether the failure is the server's, not the token's (503, not 400).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Token(e) => e.is_unavailable(),
            Self::Directory(_) | Self::RevocationUnavailable(_) => true,
            Self::Establish(EstablishError::Token(_)) => true,
            Self::TokenUseRefused(_)
            | Self::UserDisabled
            | Self::UserDeleted
            | Self::Revoked(_)
            | Self::Establish(_) => false,
        }
    }

    /// How the exchange endpoint answers: [`Refusal::Unavailable`] (503)
    /// when [`is_unavailable`](Self::is_unavailable); a subject the token's
    /// profile does not accept (a machine token, a required claim unmet)
    /// [`Refusal::Subject`] (403, with its own code); anything else a
    /// refused credential (401 `invalid_token`).
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::Token(error) => error.refusal(),
            _ if self.is_unavailable() => Refusal::Unavailable,
            _ => Refusal::Unauthenticated { refused: true },
        }
    }
}

/// Exchanges identity-provider tokens for sessions.
#[derive(Clone)]
pub struct ExchangeToken<R: Role> {
    uses: Vec<TokenUse>,
    verifier: Arc<dyn ExternalTokenVerifier<R>>,
    users: Arc<dyn ExternalUserDirectory<R>>,
    establish: EstablishSession<R>,
    revocations: Arc<dyn RevocationStore>,
}

impl<R: Role> std::fmt::Debug for ExchangeToken<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeToken")
            .field("uses", &self.uses)
            .field("establish", &self.establish)
            .finish_non_exhaustive()
    }
}

impl<R: Role> ExchangeToken<R> {
    /// Wires the use case to its ports. `revocations` is the store the
    /// session verifier uses, so that the logouts that end sessions refuse
    /// provider tokens too. Access and ID tokens are both exchanged
    /// ([`ExchangeToken::with_token_uses`] narrows it).
    #[must_use]
    pub fn new(
        verifier: Arc<dyn ExternalTokenVerifier<R>>,
        users: Arc<dyn ExternalUserDirectory<R>>,
        establish: EstablishSession<R>,
        revocations: Arc<dyn RevocationStore>,
    ) -> Self {
        Self {
            uses: vec![TokenUse::Access, TokenUse::Id],
            verifier,
            users,
            establish,
            revocations,
        }
    }

    /// Exchanges only provider tokens whose profile is of one of `uses`
    /// (an ID token only, say, for a front end that signs in with OpenID
    /// Connect); any other valid token is refused with
    /// [`ExchangeError::TokenUseRefused`] before the directory is touched.
    /// An empty list refuses every token.
    #[must_use]
    pub fn with_token_uses(mut self, uses: &[TokenUse]) -> Self {
        self.uses = uses.to_vec();
        self
    }

    /// Verifies the provider's token, brings the local user up to date with
    /// its claims (creating the user on first sign-in), and establishes a
    /// session for that user with the local role, capabilities and tenant,
    /// authenticated when the provider says (`auth_time`, else `iat`).
    ///
    /// The token's claims describe the user as of its `iat`
    /// ([`AsOf::Token`](crate::external::AsOf::Token)): a token older than
    /// what the stored record reflects (a webhook changed the user since
    /// it was minted) writes nothing, and the session carries the stored
    /// record's role, so that an old token cannot undo a demotion. A user
    /// the provider deleted is not recreated by their token, however
    /// recent, which is refused with [`ExchangeError::UserDeleted`].
    ///
    /// Logouts reach provider tokens: a force-logout of the user, their
    /// tenant or everyone at or after the token's `iat` refuses it
    /// ([`ExchangeError::Revoked`]), and so does an untrustworthy
    /// revocation state ([`ExchangeError::RevocationUnavailable`], fail
    /// closed). The check needs the local user, so it follows the upsert:
    /// a refused token may still have brought the stored profile up to
    /// date as of its `iat`, which never undoes a newer change.
    ///
    /// Which tokens are taken is the verifier's profiles' business (a
    /// machine token, or one without a required claim, is refused there:
    /// [`SubjectRefusal`](crate::external::SubjectRefusal)) and then this
    /// exchange's token uses ([`ExchangeToken::with_token_uses`]).
    ///
    /// # Errors
    ///
    /// [`ExchangeError`]: the token refused, of a use not taken, or revoked, the directory or
    /// the revocation state failing, the user disabled or deleted, or the
    /// session not establishable.
    pub async fn execute(&self, provider_token: &str) -> Result<ExchangedToken<R>, ExchangeError> {
        let identity = self
            .verifier
            .verify(provider_token)
            .await
            .map_err(ExchangeError::Token)?;
        if !self.uses.contains(&identity.token_use) {
            return Err(ExchangeError::TokenUseRefused(identity.token_use));
        }
        let outcome = self
            .users
            .upsert_external(ExternalProfile::from_identity(&identity))
            .await
            .map_err(ExchangeError::Directory)?;
        let (user, created) = match outcome {
            UpsertOutcome::Written(upserted) => (upserted.current, upserted.previous.is_none()),
            // Minted before the record's last change: the stored record is
            // the newer truth, and the session is built from it.
            UpsertOutcome::Stale(stored) => (stored, false),
            UpsertOutcome::Deleted { .. } => return Err(ExchangeError::UserDeleted),
        };
        if !user.user.enabled {
            return Err(ExchangeError::UserDisabled);
        }
        match provider_token_status(&*self.revocations, &identity, &user.user) {
            // The session gets the stored role, never the token's: stale
            // claims do not matter here.
            Ok(RevocationStatus::Active | RevocationStatus::ClaimsStale) => {}
            Ok(RevocationStatus::Revoked(reason)) => return Err(ExchangeError::Revoked(reason)),
            Err(error) => return Err(ExchangeError::RevocationUnavailable(error)),
        }
        let established = self
            .establish
            .execute(EstablishRequest {
                user_id: user.user.user_id,
                role: user.user.role.clone(),
                capabilities: user.user.capabilities.clone(),
                tenant: user.user.tenant.clone(),
                authenticated_at: Some(identity.authentication_time()),
                authentication: identity.authentication.clone(),
            })
            .map_err(ExchangeError::Establish)?;
        let session = established.session;
        let expires_in = (session.expires_at() - session.issued_at()).whole_seconds();
        Ok(ExchangedToken {
            token: established.token,
            session,
            expires_in,
            user,
            created,
        })
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::{eq, function};

    use super::*;
    use crate::external::{
        AsOf, ExternalIdentity, MockExternalTokenVerifier, MockExternalUserDirectory, SubjectKind,
        SubjectRefusal, Upserted,
    };
    use crate::ports::{
        DirectoryUser, JwsFailure, MockIdGenerator, MockRevocationStore, MockSessionTokenCodec,
    };
    use crate::testing::*;
    use crate::token::SessionTokenClaims;
    use tessera_domain::UserRole;

    fn identity(auth_time: Option<i64>) -> ExternalIdentity<UserRole> {
        ExternalIdentity {
            issuer: ISSUER.into(),
            subject: subject(),
            token_use: TokenUse::Access,
            subject_kind: SubjectKind::User,
            role: UserRole::Moderator,
            email: Some("a@example.com".into()),
            name: None,
            issued_at: at(NOW - 10),
            authenticated_at: auth_time.map(at),
            authentication: tessera_domain::Authentication::at_level(
                tessera_domain::Acr::parse("phrh").unwrap(),
            ),
            expires_at: at(NOW + 50),
        }
    }

    fn stored(enabled: bool) -> ExternalUser<UserRole> {
        ExternalUser {
            user: DirectoryUser {
                user_id: user(),
                role: UserRole::Moderator,
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

    /// A directory that updates the stored user once, whatever the profile.
    fn updating_once() -> MockExternalUserDirectory<UserRole> {
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(1).returning(|_| {
            Ok(UpsertOutcome::Written(Upserted {
                current: stored(true),
                previous: Some(stored(true)),
            }))
        });
        users
    }

    fn verifier_returning(
        result: fn() -> Result<ExternalIdentity<UserRole>, ExternalTokenError>,
    ) -> MockExternalTokenVerifier<UserRole> {
        let mut verifier = MockExternalTokenVerifier::new();
        verifier
            .expect_verify()
            .with(eq("provider-token"))
            .times(1)
            .returning(move |_| result());
        verifier
    }

    /// A codec that encodes one session, whose claims `check` accepts.
    fn issuing(
        check: fn(&SessionTokenClaims<UserRole>) -> bool,
    ) -> MockSessionTokenCodec<UserRole> {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_encode()
            .with(function(check))
            .times(1)
            .returning(|_| Ok(SessionToken::new("session".into())));
        codec
    }

    /// A codec that must encode nothing.
    fn never_issuing() -> MockSessionTokenCodec<UserRole> {
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_encode().times(0);
        codec
    }

    /// A revocation store asked `checks` times about the provider token
    /// of [`identity`] for [`stored`]'s user, answering `answer`.
    fn store(
        checks: usize,
        answer: fn() -> Result<RevocationStatus, RevocationError>,
    ) -> MockRevocationStore {
        store_issued_at(NOW - 10, checks, answer)
    }

    /// [`store`], for the token issued at `iat`.
    fn store_issued_at(
        iat: i64,
        checks: usize,
        answer: fn() -> Result<RevocationStatus, RevocationError>,
    ) -> MockRevocationStore {
        let session_id = ExternalIdentity {
            issued_at: at(iat),
            ..identity(None)
        }
        .session_id();
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .withf(move |q| {
                q.user_id == &user()
                    && q.tenant == Some(&tenant())
                    && q.issued_at == at(iat)
                    && q.session_id == &session_id
            })
            .times(checks)
            .returning(move |_| answer());
        store
    }

    fn active() -> Result<RevocationStatus, RevocationError> {
        Ok(RevocationStatus::Active)
    }

    /// A store that must not be asked.
    fn unasked() -> MockRevocationStore {
        store(0, active)
    }

    fn exchange(
        verifier: MockExternalTokenVerifier<UserRole>,
        users: MockExternalUserDirectory<UserRole>,
        codec: MockSessionTokenCodec<UserRole>,
        revocations: MockRevocationStore,
        session_ids: usize,
        clock_reads: usize,
    ) -> ExchangeToken<UserRole> {
        let mut ids = MockIdGenerator::new();
        ids.expect_session_id()
            .times(session_ids)
            .return_const(session_id());
        let mut clock = crate::ports::MockClock::new();
        clock.expect_now().times(clock_reads).return_const(at(NOW));
        ExchangeToken::new(
            Arc::new(verifier),
            Arc::new(users),
            EstablishSession::new(Arc::new(codec), Arc::new(clock), Arc::new(ids), lifetimes()),
            Arc::new(revocations),
        )
    }

    #[tokio::test]
    async fn exchange_upserts_the_user_and_issues_a_session_authenticated_at_auth_time() {
        let verifier = verifier_returning(|| Ok(identity(Some(NOW - 100))));
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_upsert_external()
            .with(function(|p: &ExternalProfile<UserRole>| {
                p.issuer == ISSUER
                    && p.subject.as_str() == "user_2abc"
                    && p.role == UserRole::Moderator
                    && p.email.as_deref() == Some("a@example.com")
                    && p.enabled.is_none()
                    && p.as_of == AsOf::Token(at(NOW - 10))
            }))
            .times(1)
            .returning(|_| {
                Ok(UpsertOutcome::Written(Upserted {
                    current: stored(true),
                    previous: None,
                }))
            });
        let codec = issuing(|c: &SessionTokenClaims<UserRole>| {
            let s = c.session();
            s.user_id() == &user()
                && s.role() == &UserRole::Moderator
                && s.has_capability("posts:edit")
                && s.is_in_tenant("acme")
                && s.authenticated_at() == at(NOW - 100)
                && s.authentication().acr().map(|a| a.as_str()) == Some("phrh")
                && s.issued_at() == at(NOW)
        });

        let out = exchange(verifier, users, codec, store(1, active), 1, 1)
            .execute("provider-token")
            .await
            .unwrap();
        assert_eq!(out.token.expose_secret(), "session");
        assert_eq!(out.expires_in, 900);
        assert!(out.created);
    }

    #[tokio::test]
    async fn exchange_falls_back_to_iat_when_the_provider_gives_no_auth_time() {
        let verifier = verifier_returning(|| Ok(identity(None)));
        let users = updating_once();
        let codec = issuing(|c: &SessionTokenClaims<UserRole>| {
            c.session().authenticated_at() == at(NOW - 10)
        });
        let out = exchange(verifier, users, codec, store(1, active), 1, 1)
            .execute("provider-token")
            .await
            .unwrap();
        assert!(!out.created);
    }

    #[tokio::test]
    async fn a_token_the_verifier_accepted_at_the_edge_of_the_leeway_is_exchanged() {
        // Issued a full leeway (30 s) ahead of this clock, authenticated a
        // further leeway after that: what a verifier with the session's
        // leeway accepts, at both edges.
        let verifier = verifier_returning(|| {
            Ok(ExternalIdentity {
                issued_at: at(NOW + 30),
                ..identity(Some(NOW + 60))
            })
        });
        let users = updating_once();
        let codec = issuing(|c: &SessionTokenClaims<UserRole>| {
            let s = c.session();
            s.authenticated_at() == at(NOW) && s.issued_at() == at(NOW)
        });
        let out = exchange(
            verifier,
            users,
            codec,
            store_issued_at(NOW + 30, 1, active),
            1,
            1,
        )
        .execute("provider-token")
        .await;
        assert!(out.is_ok(), "{out:?}");
    }

    #[tokio::test]
    async fn exchange_refuses_a_refused_provider_token_without_touching_the_directory() {
        let verifier =
            verifier_returning(|| Err(ExternalTokenError::Jws(JwsFailure::InvalidSignature)));
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(0);
        let err = exchange(verifier, users, never_issuing(), unasked(), 0, 0)
            .execute("provider-token")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_signature");
        assert!(!err.is_unavailable());
    }

    #[tokio::test]
    async fn an_exchange_takes_access_and_id_tokens_unless_narrowed_to_some() {
        let id_token = || {
            Ok(ExternalIdentity {
                token_use: TokenUse::Id,
                ..identity(None)
            })
        };
        let codec = issuing(|c: &SessionTokenClaims<UserRole>| c.session().user_id() == &user());
        let out = exchange(
            verifier_returning(id_token),
            updating_once(),
            codec,
            store(1, active),
            1,
            1,
        )
        .execute("provider-token")
        .await;
        assert!(out.is_ok(), "{out:?}");

        // For ID tokens only: a valid access token is refused before the
        // directory is touched.
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(0);
        let err = exchange(
            verifier_returning(|| Ok(identity(None))),
            users,
            never_issuing(),
            unasked(),
            0,
            0,
        )
        .with_token_uses(&[TokenUse::Id])
        .execute("provider-token")
        .await
        .unwrap_err();
        assert!(matches!(
            err,
            ExchangeError::TokenUseRefused(TokenUse::Access)
        ));
        assert_eq!(err.code(), "token_use_refused");
        assert_eq!(err.refusal(), Refusal::Unauthenticated { refused: true });
    }

    #[tokio::test]
    async fn a_machine_token_is_refused_for_exchange_with_its_own_code_and_a_403() {
        let verifier = verifier_returning(|| Err(SubjectRefusal::MachineToken.into()));
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(0);
        let err = exchange(verifier, users, never_issuing(), unasked(), 0, 0)
            .execute("provider-token")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            ExchangeError::Token(ExternalTokenError::Subject(SubjectRefusal::MachineToken))
        ));
        assert_eq!(err.code(), "machine_token");
        assert!(!err.is_unavailable());
        assert_eq!(
            err.refusal(),
            Refusal::Subject(SubjectRefusal::MachineToken)
        );
    }

    #[test]
    fn every_exchange_error_is_answered_as_a_refusal_of_its_kind() {
        let required = || SubjectRefusal::RequiredClaim {
            path: "email_verified".into(),
        };
        let cases = [
            (
                ExchangeError::Token(required().into()),
                Refusal::Subject(required()),
            ),
            (
                ExchangeError::Token(ExternalTokenError::KeysUnavailable("down".into())),
                Refusal::Unavailable,
            ),
            (
                ExchangeError::Token(ExternalTokenError::WrongAudience),
                Refusal::Unauthenticated { refused: true },
            ),
            (
                ExchangeError::Directory(DirectoryError::Unavailable("db".into())),
                Refusal::Unavailable,
            ),
            (
                ExchangeError::UserDisabled,
                Refusal::Unauthenticated { refused: true },
            ),
            (
                ExchangeError::Revoked(RevocationReason::UserLoggedOut),
                Refusal::Unauthenticated { refused: true },
            ),
        ];
        for (error, refusal) in cases {
            assert_eq!(error.refusal(), refusal, "{error:?}");
        }
    }

    #[tokio::test]
    async fn exchange_refuses_a_disabled_user_without_issuing() {
        let verifier = verifier_returning(|| Ok(identity(None)));
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(1).returning(|_| {
            Ok(UpsertOutcome::Written(Upserted {
                current: stored(false),
                previous: Some(stored(false)),
            }))
        });
        let err = exchange(verifier, users, never_issuing(), unasked(), 0, 0)
            .execute("provider-token")
            .await
            .unwrap_err();
        assert!(matches!(err, ExchangeError::UserDisabled));
    }

    #[tokio::test]
    async fn exchange_reports_unavailable_keys_and_directory_as_unavailable() {
        let verifier =
            verifier_returning(|| Err(ExternalTokenError::KeysUnavailable("provider down".into())));
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(0);
        let err = exchange(verifier, users, never_issuing(), unasked(), 0, 0)
            .execute("provider-token")
            .await
            .unwrap_err();
        assert!(err.is_unavailable());

        let verifier = verifier_returning(|| Ok(identity(None)));
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_upsert_external()
            .times(1)
            .returning(|_| Err(DirectoryError::Unavailable("db down".into())));
        let err = exchange(verifier, users, never_issuing(), unasked(), 0, 0)
            .execute("provider-token")
            .await
            .unwrap_err();
        assert!(matches!(err, ExchangeError::Directory(_)));
        assert!(err.is_unavailable());
    }

    #[tokio::test]
    async fn exchange_refuses_a_deleted_users_token_without_issuing() {
        let verifier = verifier_returning(|| Ok(identity(None)));
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_upsert_external()
            .with(function(|p: &ExternalProfile<UserRole>| {
                p.subject.as_str() == "user_2abc" && p.as_of == AsOf::Token(at(NOW - 10))
            }))
            .times(1)
            .returning(|_| {
                Ok(UpsertOutcome::Deleted {
                    deleted_as_of: at(NOW - 30),
                })
            });
        let err = exchange(verifier, users, never_issuing(), unasked(), 0, 0)
            .execute("provider-token")
            .await
            .unwrap_err();
        assert!(matches!(err, ExchangeError::UserDeleted));
        assert_eq!(err.code(), "unknown_user");
        assert!(!err.is_unavailable(), "a refusal (401), not a 503");
    }

    #[tokio::test]
    async fn a_token_older_than_the_stored_record_yields_a_session_with_the_stored_role() {
        // The token (iat NOW - 10) says moderator; a webhook since demoted
        // the user, so the directory keeps its record and says stale.
        let verifier = verifier_returning(|| Ok(identity(None)));
        let demoted = ExternalUser {
            user: DirectoryUser {
                role: UserRole::User,
                ..stored(true).user
            },
            ..stored(true)
        };
        let kept = demoted.clone();
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_upsert_external()
            .with(eq(ExternalProfile {
                issuer: ISSUER.into(),
                subject: subject(),
                role: UserRole::Moderator,
                email: Some("a@example.com".into()),
                name: None,
                enabled: None,
                as_of: AsOf::Token(at(NOW - 10)),
            }))
            .times(1)
            .return_once(move |_| Ok(UpsertOutcome::Stale(kept)));
        let codec = issuing(|c: &SessionTokenClaims<UserRole>| {
            c.session().role() == &UserRole::User && c.session().user_id() == &user()
        });
        let out = exchange(verifier, users, codec, store(1, active), 1, 1)
            .execute("provider-token")
            .await
            .unwrap();
        assert_eq!(out.session.role(), &UserRole::User);
        assert_eq!(out.user, demoted);
        assert!(!out.created);
    }

    #[tokio::test]
    async fn a_force_logged_out_users_provider_token_is_refused_without_issuing() {
        let verifier = verifier_returning(|| Ok(identity(None)));
        let revoked = || Ok(RevocationStatus::Revoked(RevocationReason::UserLoggedOut));
        let err = exchange(
            verifier,
            updating_once(),
            never_issuing(),
            store(1, revoked),
            0,
            0,
        )
        .execute("provider-token")
        .await
        .unwrap_err();
        assert!(matches!(
            err,
            ExchangeError::Revoked(RevocationReason::UserLoggedOut)
        ));
        assert_eq!(err.code(), "revoked");
        assert!(!err.is_unavailable(), "a refusal (401), not a 503");
    }

    #[tokio::test]
    async fn a_claims_stale_watermark_does_not_stop_an_exchange() {
        let verifier = verifier_returning(|| Ok(identity(None)));
        let codec =
            issuing(|c: &SessionTokenClaims<UserRole>| c.session().role() == &UserRole::Moderator);
        let out = exchange(
            verifier,
            updating_once(),
            codec,
            store(1, || Ok(RevocationStatus::ClaimsStale)),
            1,
            1,
        )
        .execute("provider-token")
        .await;
        assert!(out.is_ok(), "{out:?}");
    }

    #[tokio::test]
    async fn an_untrustworthy_revocation_state_fails_the_exchange_closed() {
        let verifier = verifier_returning(|| Ok(identity(None)));
        let down = || Err(RevocationError::Unavailable("listener down".into()));
        let err = exchange(
            verifier,
            updating_once(),
            never_issuing(),
            store(1, down),
            0,
            0,
        )
        .execute("provider-token")
        .await
        .unwrap_err();
        assert!(matches!(err, ExchangeError::RevocationUnavailable(_)));
        assert_eq!(err.code(), "revocation_unavailable");
        assert!(err.is_unavailable(), "503, not a refusal");
    }
}
