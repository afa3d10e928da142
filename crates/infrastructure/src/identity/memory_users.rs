//! `InMemoryExternalUserDirectory`: provider-linked users in memory, for a
//! single instance and for tests.

use std::collections::{BTreeSet, HashMap};
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use tessera_application::external::{
    ExternalProfile, ExternalSubject, ExternalUser, ExternalUserDirectory, Upserted,
};
use tessera_application::ports::{DirectoryError, DirectoryUser, UserDirectory};
use tessera_domain::{Role, UserId};
use uuid::Uuid;

#[derive(Debug)]
struct Users<R> {
    by_external: HashMap<(String, ExternalSubject), UserId>,
    by_id: HashMap<UserId, ExternalUser<R>>,
}

/// Provider-linked users in memory. Implements both
/// [`ExternalUserDirectory`] and [`UserDirectory`], so that sessions
/// exchanged for provider tokens rotate with the stored role.
///
/// Upserts run under one write lock: concurrent first upserts of one
/// provider account create exactly one user.
#[derive(Debug)]
pub struct InMemoryExternalUserDirectory<R> {
    users: RwLock<Users<R>>,
}

impl<R: Role> Default for InMemoryExternalUserDirectory<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Role> InMemoryExternalUserDirectory<R> {
    /// An empty directory.
    #[must_use]
    pub fn new() -> Self {
        Self {
            users: RwLock::new(Users {
                by_external: HashMap::new(),
                by_id: HashMap::new(),
            }),
        }
    }

    /// How many users it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .len()
    }

    /// Whether it holds no user.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn fresh_user_id() -> Result<UserId, DirectoryError> {
    UserId::from_uuid(Uuid::now_v7()).map_err(|e| DirectoryError::InvalidRecord(Box::new(e)))
}

#[async_trait]
impl<R: Role> ExternalUserDirectory<R> for InMemoryExternalUserDirectory<R> {
    async fn find_by_external_id(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        Ok(users
            .by_external
            .get(&(issuer.to_owned(), subject.clone()))
            .and_then(|id| users.by_id.get(id))
            .cloned())
    }

    async fn upsert_external(
        &self,
        profile: ExternalProfile<R>,
    ) -> Result<Upserted<R>, DirectoryError> {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        let key = (profile.issuer.clone(), profile.subject.clone());
        let existing = users
            .by_external
            .get(&key)
            .and_then(|id| users.by_id.get(id))
            .cloned();
        let current = match &existing {
            Some(previous) => ExternalUser {
                user: DirectoryUser {
                    role: profile.role,
                    enabled: profile.enabled.unwrap_or(previous.user.enabled),
                    ..previous.user.clone()
                },
                issuer: profile.issuer,
                subject: profile.subject,
                email: profile.email,
                name: profile.name,
            },
            None => ExternalUser {
                user: DirectoryUser {
                    user_id: fresh_user_id()?,
                    role: profile.role,
                    capabilities: BTreeSet::new(),
                    tenant: None,
                    enabled: profile.enabled.unwrap_or(true),
                },
                issuer: profile.issuer,
                subject: profile.subject,
                email: profile.email,
                name: profile.name,
            },
        };
        users.by_external.insert(key, current.user.user_id);
        users.by_id.insert(current.user.user_id, current.clone());
        Ok(Upserted {
            current,
            previous: existing,
        })
    }

    async fn delete_external(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        let Some(id) = users
            .by_external
            .remove(&(issuer.to_owned(), subject.clone()))
        else {
            return Ok(None);
        };
        Ok(users.by_id.remove(&id))
    }
}

#[async_trait]
impl<R: Role> UserDirectory<R> for InMemoryExternalUserDirectory<R> {
    async fn find(&self, user_id: &UserId) -> Result<Option<DirectoryUser<R>>, DirectoryError> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        Ok(users.by_id.get(user_id).map(|u| u.user.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use tessera_domain::UserRole;

    fn profile(role: UserRole, enabled: Option<bool>) -> ExternalProfile<UserRole> {
        ExternalProfile {
            issuer: "https://idp.example".into(),
            subject: ExternalSubject::parse("user_1").unwrap(),
            role,
            email: Some("a@example.com".into()),
            name: None,
            enabled,
        }
    }

    #[tokio::test]
    async fn concurrent_first_upserts_of_one_account_create_exactly_one_user() {
        let directory = Arc::new(InMemoryExternalUserDirectory::<UserRole>::new());
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let directory = Arc::clone(&directory);
                tokio::spawn(async move {
                    directory
                        .upsert_external(profile(UserRole::User, None))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut ids = BTreeSet::new();
        let mut created = 0;
        for task in tasks {
            let upserted = task.await.unwrap();
            ids.insert(upserted.current.user.user_id);
            created += usize::from(upserted.previous.is_none());
        }
        assert_eq!(ids.len(), 1);
        assert_eq!(created, 1);
        assert_eq!(directory.len(), 1);
    }

    #[tokio::test]
    async fn an_update_keeps_the_id_and_enabled_state_and_changes_the_role() {
        let directory = InMemoryExternalUserDirectory::<UserRole>::new();
        let first = directory
            .upsert_external(profile(UserRole::User, Some(false)))
            .await
            .unwrap();
        let second = directory
            .upsert_external(profile(UserRole::Admin, None))
            .await
            .unwrap();
        assert_eq!(first.current.user.user_id, second.current.user.user_id);
        assert!(!second.current.user.enabled);
        assert_eq!(second.current.user.role, UserRole::Admin);
        let found = UserDirectory::find(&directory, &first.current.user.user_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.role, UserRole::Admin);
    }

    #[tokio::test]
    async fn a_deleted_account_is_gone_from_both_views() {
        let directory = InMemoryExternalUserDirectory::<UserRole>::new();
        let user = directory
            .upsert_external(profile(UserRole::User, None))
            .await
            .unwrap()
            .current;
        let subject = ExternalSubject::parse("user_1").unwrap();
        assert!(
            directory
                .delete_external("https://idp.example", &subject)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            directory
                .find_by_external_id("https://idp.example", &subject)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            UserDirectory::find(&directory, &user.user.user_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            directory
                .delete_external("https://idp.example", &subject)
                .await
                .unwrap()
                .is_none()
        );
    }
}
