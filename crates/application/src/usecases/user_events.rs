//! ApplyUserEvent: a provider's user created / updated / deleted events
//! applied to the local directory, with force-logout where access ends.

use std::sync::Arc;

use tessera_domain::{Role, UserId};

use super::revoke::{RevokeError, RevokeRequest, RevokeSession};
use crate::external::{ExternalUserDirectory, UpsertOutcome, UserEvent};
use crate::ports::{DirectoryError, WatermarkScope};

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserEventOutcome {
    /// A local user was created.
    Created(UserId),
    /// A local user was updated.
    Updated {
        /// The user.
        user_id: UserId,
        /// Their sessions were force-logged-out (the user is disabled).
        logged_out: bool,
        /// Their sessions must rotate to pick up a changed role.
        permissions_changed: bool,
    },
    /// A local user was deleted and force-logged-out.
    Deleted(UserId),
    /// The event is older than what the local user already reflects (a
    /// delivery overtaken by a newer one): nothing changed.
    Stale(UserId),
    /// The event would recreate a user the provider deleted, and is not
    /// newer than the deletion (a delivery overtaken by the deletion):
    /// nothing changed.
    AlreadyDeleted,
    /// Nothing to do: an unknown user deleted (a tombstone is kept), or an
    /// event type not acted on.
    Nothing,
}

/// Why an event could not be applied. Providers retry failed deliveries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyUserEventError {
    /// The directory could not be read or written.
    #[error("user directory could not be updated")]
    Directory(#[source] DirectoryError),
    /// The force-logout or permissions-changed mark could not be recorded.
    #[error("revocation could not be recorded")]
    Revoke(#[source] RevokeError),
}

/// Applies provider user events to the local directory.
#[derive(Clone)]
pub struct ApplyUserEvent<R: Role> {
    users: Arc<dyn ExternalUserDirectory<R>>,
    revoke: RevokeSession,
}

impl<R: Role> std::fmt::Debug for ApplyUserEvent<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyUserEvent")
            .field("revoke", &self.revoke)
            .finish_non_exhaustive()
    }
}

impl<R: Role> ApplyUserEvent<R> {
    /// Wires the use case to its ports.
    #[must_use]
    pub fn new(users: Arc<dyn ExternalUserDirectory<R>>, revoke: RevokeSession) -> Self {
        Self { users, revoke }
    }

    /// Applies one event:
    ///
    /// - created or updated: upsert the local user; if it is now disabled,
    ///   force-logout every session of it; if its role changed, mark its
    ///   permissions changed, so that sessions rotate with the new role. An
    ///   event older than the stored record, or not newer than the user's
    ///   deletion, changes nothing ([`UserEventOutcome::Stale`],
    ///   [`UserEventOutcome::AlreadyDeleted`]): the directory orders events
    ///   by the provider's instants (see
    ///   [`ExternalUserDirectory`](crate::external::ExternalUserDirectory#ordering-and-deletions));
    /// - deleted: remove the local user, leaving a tombstone, and
    ///   force-logout every session of it.
    ///
    /// Applying the same event twice leaves the same state, and so does
    /// applying events in any order.
    ///
    /// # Errors
    ///
    /// [`ApplyUserEventError`] when the directory or the revocation store
    /// fails; the provider should deliver the event again.
    pub async fn execute(
        &self,
        event: UserEvent<R>,
    ) -> Result<UserEventOutcome, ApplyUserEventError> {
        match event {
            UserEvent::Upserted(profile) => {
                let outcome = self
                    .users
                    .upsert_external(profile)
                    .await
                    .map_err(ApplyUserEventError::Directory)?;
                let upserted = match outcome {
                    UpsertOutcome::Written(upserted) => upserted,
                    UpsertOutcome::Stale(stored) => {
                        return Ok(UserEventOutcome::Stale(stored.user.user_id));
                    }
                    UpsertOutcome::Deleted { .. } => return Ok(UserEventOutcome::AlreadyDeleted),
                };
                let current = &upserted.current.user;
                let user_id = current.user_id;
                let logged_out = !current.enabled;
                let permissions_changed = !logged_out
                    && upserted.previous.as_ref().is_some_and(|previous| {
                        previous.user.role != current.role
                            || previous.user.capabilities != current.capabilities
                    });
                if logged_out {
                    self.revoke_user(RevokeRequest::ForceLogout, user_id)
                        .await?;
                } else if permissions_changed {
                    self.revoke_user(RevokeRequest::PermissionsChanged, user_id)
                        .await?;
                }
                Ok(match upserted.previous {
                    None if !logged_out => UserEventOutcome::Created(user_id),
                    _ => UserEventOutcome::Updated {
                        user_id,
                        logged_out,
                        permissions_changed,
                    },
                })
            }
            UserEvent::Deleted {
                issuer,
                subject,
                as_of,
            } => {
                let deleted = self
                    .users
                    .delete_external(&issuer, &subject, as_of)
                    .await
                    .map_err(ApplyUserEventError::Directory)?;
                match deleted {
                    Some(user) => {
                        self.revoke_user(RevokeRequest::ForceLogout, user.user.user_id)
                            .await?;
                        Ok(UserEventOutcome::Deleted(user.user.user_id))
                    }
                    None => Ok(UserEventOutcome::Nothing),
                }
            }
            UserEvent::Ignored => Ok(UserEventOutcome::Nothing),
        }
    }

    /// Records `request` (a force-logout or a permissions change) for
    /// every session of `user_id`.
    async fn revoke_user(
        &self,
        request: fn(WatermarkScope) -> RevokeRequest,
        user_id: UserId,
    ) -> Result<(), ApplyUserEventError> {
        self.revoke
            .execute(request(WatermarkScope::User(user_id)))
            .await
            .map_err(ApplyUserEventError::Revoke)
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::external::{
        AsOf, ExternalProfile, ExternalUser, MockExternalUserDirectory, Upserted,
    };
    use crate::ports::{DirectoryUser, MockClock, MockRevocationStore, WatermarkKind};
    use crate::testing::*;
    use tessera_domain::UserRole;
    use time::OffsetDateTime;

    fn stored(role: UserRole, enabled: bool) -> ExternalUser<UserRole> {
        ExternalUser {
            user: DirectoryUser {
                user_id: user(),
                role,
                capabilities: caps(&[]),
                tenant: None,
                enabled,
            },
            issuer: ISSUER.into(),
            subject: subject(),
            email: None,
            name: None,
        }
    }

    fn profile(role: UserRole, enabled: Option<bool>) -> ExternalProfile<UserRole> {
        ExternalProfile {
            issuer: ISSUER.into(),
            subject: subject(),
            role,
            email: None,
            name: None,
            enabled,
            as_of: AsOf::Unknown,
        }
    }

    /// A revocation store that must record exactly one `kind` watermark
    /// for the user, at the clock's now.
    fn revoking(kind: WatermarkKind) -> MockRevocationStore {
        let mut store = MockRevocationStore::new();
        store
            .expect_set_watermark()
            .with(eq(WatermarkScope::User(user())), eq(kind), eq(at(NOW)))
            .times(1)
            .returning(|_, _, _| Ok(()));
        store
    }

    /// A revocation store that must record nothing.
    fn never_revoking() -> MockRevocationStore {
        let mut store = MockRevocationStore::new();
        store.expect_set_watermark().times(0);
        store
    }

    fn apply(
        users: MockExternalUserDirectory<UserRole>,
        store: MockRevocationStore,
        clock_reads: usize,
    ) -> ApplyUserEvent<UserRole> {
        let mut clock = MockClock::new();
        clock.expect_now().times(clock_reads).return_const(at(NOW));
        ApplyUserEvent::new(
            Arc::new(users),
            RevokeSession::new(Arc::new(store), Arc::new(clock), lifetimes()),
        )
    }

    fn expect_upsert(
        users: &mut MockExternalUserDirectory<UserRole>,
        previous: Option<ExternalUser<UserRole>>,
        current: ExternalUser<UserRole>,
    ) {
        users
            .expect_upsert_external()
            .times(1)
            .return_once(|_| Ok(UpsertOutcome::Written(Upserted { current, previous })));
    }

    #[tokio::test]
    async fn a_created_user_is_stored_and_nobody_is_logged_out() {
        let mut users = MockExternalUserDirectory::new();
        expect_upsert(&mut users, None, stored(UserRole::User, true));
        let outcome = apply(users, never_revoking(), 0)
            .execute(UserEvent::Upserted(profile(UserRole::User, None)))
            .await
            .unwrap();
        assert_eq!(outcome, UserEventOutcome::Created(user()));
    }

    #[tokio::test]
    async fn a_disabled_user_is_force_logged_out() {
        let mut users = MockExternalUserDirectory::new();
        expect_upsert(
            &mut users,
            Some(stored(UserRole::User, true)),
            stored(UserRole::User, false),
        );
        let outcome = apply(users, revoking(WatermarkKind::ForceLogout), 1)
            .execute(UserEvent::Upserted(profile(UserRole::User, Some(false))))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            UserEventOutcome::Updated {
                user_id: user(),
                logged_out: true,
                permissions_changed: false
            }
        );
    }

    #[tokio::test]
    async fn a_role_change_marks_permissions_changed_without_logging_out() {
        let mut users = MockExternalUserDirectory::new();
        expect_upsert(
            &mut users,
            Some(stored(UserRole::User, true)),
            stored(UserRole::Admin, true),
        );
        let outcome = apply(users, revoking(WatermarkKind::ClaimsStale), 1)
            .execute(UserEvent::Upserted(profile(UserRole::Admin, None)))
            .await
            .unwrap();
        assert!(matches!(
            outcome,
            UserEventOutcome::Updated {
                permissions_changed: true,
                logged_out: false,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_deleted_user_is_removed_and_force_logged_out() {
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_delete_external()
            .with(eq(ISSUER), eq(subject()), eq(Some(at(NOW - 5))))
            .times(1)
            .returning(|_, _, _| Ok(Some(stored(UserRole::User, true))));
        let outcome = apply(users, revoking(WatermarkKind::ForceLogout), 1)
            .execute(UserEvent::Deleted {
                issuer: ISSUER.into(),
                subject: subject(),
                as_of: Some(at(NOW - 5)),
            })
            .await
            .unwrap();
        assert_eq!(outcome, UserEventOutcome::Deleted(user()));
    }

    #[tokio::test]
    async fn deleting_an_unknown_user_does_nothing() {
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_delete_external()
            .with(eq(ISSUER), eq(subject()), eq(None::<OffsetDateTime>))
            .times(1)
            .returning(|_, _, _| Ok(None));
        let outcome = apply(users, never_revoking(), 0)
            .execute(UserEvent::Deleted {
                issuer: ISSUER.into(),
                subject: subject(),
                as_of: None,
            })
            .await
            .unwrap();
        assert_eq!(outcome, UserEventOutcome::Nothing);
    }

    #[tokio::test]
    async fn a_revocation_failure_is_reported_so_the_provider_retries() {
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_delete_external()
            .times(1)
            .returning(|_, _, _| Ok(Some(stored(UserRole::User, true))));
        let mut store = MockRevocationStore::new();
        store
            .expect_set_watermark()
            .times(1)
            .returning(|_, _, _| Err(crate::ports::RevocationError::Unavailable("down".into())));
        let err = apply(users, store, 1)
            .execute(UserEvent::Deleted {
                issuer: ISSUER.into(),
                subject: subject(),
                as_of: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ApplyUserEventError::Revoke(_)));
    }

    #[tokio::test]
    async fn the_profile_reaches_the_directory_with_its_instant() {
        let mut sent = profile(UserRole::Admin, None);
        sent.as_of = AsOf::Provider(at(NOW - 60));
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_upsert_external()
            .with(eq(sent.clone()))
            .times(1)
            .return_once(|_| {
                Ok(UpsertOutcome::Written(Upserted {
                    current: stored(UserRole::Admin, true),
                    previous: Some(stored(UserRole::Admin, true)),
                }))
            });
        let outcome = apply(users, never_revoking(), 0)
            .execute(UserEvent::Upserted(sent))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            UserEventOutcome::Updated {
                user_id: user(),
                logged_out: false,
                permissions_changed: false
            }
        );
    }

    #[tokio::test]
    async fn a_stale_event_changes_nothing_and_revokes_nothing() {
        let mut users = MockExternalUserDirectory::new();
        // Stored disabled: a written update would force-logout again.
        users
            .expect_upsert_external()
            .times(1)
            .return_once(|_| Ok(UpsertOutcome::Stale(stored(UserRole::User, false))));
        let outcome = apply(users, never_revoking(), 0)
            .execute(UserEvent::Upserted(profile(UserRole::Admin, Some(true))))
            .await
            .unwrap();
        assert_eq!(outcome, UserEventOutcome::Stale(user()));
    }

    #[tokio::test]
    async fn an_event_overtaken_by_the_deletion_changes_nothing_and_revokes_nothing() {
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(1).return_once(|_| {
            Ok(UpsertOutcome::Deleted {
                deleted_as_of: at(NOW - 1),
            })
        });
        users.expect_delete_external().times(0);
        let outcome = apply(users, never_revoking(), 0)
            .execute(UserEvent::Upserted(profile(UserRole::Admin, None)))
            .await
            .unwrap();
        assert_eq!(outcome, UserEventOutcome::AlreadyDeleted);
    }
}
