//! `InMemoryExternalUserDirectory`: provider-linked users in memory, for a
//! single instance and for tests.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tessera_application::external::{
    DEFAULT_TOMBSTONE_RETENTION, ExternalProfile, ExternalSubject, ExternalUser,
    ExternalUserDirectory, UpsertOutcome, Upserted,
};
use tessera_application::ports::{Clock, DirectoryError, DirectoryUser, UserDirectory};
use tessera_domain::{Role, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::system::SystemClock;

type Key = (String, ExternalSubject);

/// A provider account linked to a live user.
#[derive(Debug, Clone, Copy)]
struct Link {
    user_id: UserId,
    /// The latest webhook instant (`AsOf::recorded_instant`) applied to the
    /// record.
    as_of: Option<OffsetDateTime>,
}

/// A provider account whose user was deleted.
#[derive(Debug, Clone, Copy)]
struct Tombstone {
    /// The instant recorded for the deletion.
    as_of: OffsetDateTime,
    /// When this directory first applied the deletion (by its clock).
    deleted_at: OffsetDateTime,
}

#[derive(Debug)]
struct Users<R> {
    by_external: HashMap<Key, Link>,
    by_id: HashMap<UserId, ExternalUser<R>>,
    /// Users no provider account is linked to; never holds a key that
    /// `by_id` holds.
    local: HashMap<UserId, DirectoryUser<R>>,
    /// Never holds a key that `by_external` holds.
    tombstones: HashMap<Key, Tombstone>,
}

impl<R> Users<R> {
    /// Forgets the tombstones at least `retention` old at `now`; returns
    /// how many.
    fn purge(&mut self, now: OffsetDateTime, retention: Duration) -> usize {
        let before = self.tombstones.len();
        self.tombstones
            .retain(|_, tombstone| now - tombstone.deleted_at < retention);
        before - self.tombstones.len()
    }
}

/// Provider-linked users in memory. Implements both
/// [`ExternalUserDirectory`] and [`UserDirectory`], so that sessions
/// exchanged for provider tokens rotate with the stored role.
///
/// Upserts and deletions run under one write lock: concurrent first
/// upserts of one provider account create exactly one user, and an upsert
/// and a deletion never interleave.
///
/// Writes are ordered by the provider's instants and deletions leave
/// tombstones, as [`ExternalUserDirectory`] requires. A tombstone is kept
/// for the retention period ([`with_tombstone_retention`](Self::with_tombstone_retention),
/// by default [`DEFAULT_TOMBSTONE_RETENTION`]) measured by the directory's
/// clock from the deletion, and forgotten by the first purge after that:
/// every deletion purges first, and so does
/// [`purge_tombstones`](Self::purge_tombstones).
pub struct InMemoryExternalUserDirectory<R> {
    users: RwLock<Users<R>>,
    clock: Arc<dyn Clock>,
    retention: Duration,
}

impl<R> std::fmt::Debug for InMemoryExternalUserDirectory<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("InMemoryExternalUserDirectory")
            .field("users", &(users.by_id.len() + users.local.len()))
            .field("tombstones", &users.tombstones.len())
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl<R: Role> Default for InMemoryExternalUserDirectory<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Role> InMemoryExternalUserDirectory<R> {
    /// An empty directory on the system clock, keeping tombstones for
    /// [`DEFAULT_TOMBSTONE_RETENTION`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            users: RwLock::new(Users {
                by_external: HashMap::new(),
                by_id: HashMap::new(),
                local: HashMap::new(),
                tombstones: HashMap::new(),
            }),
            clock: Arc::new(SystemClock),
            retention: DEFAULT_TOMBSTONE_RETENTION,
        }
    }

    /// The clock that dates deletions (those without an instant of their
    /// own, and every tombstone's retention).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long a deleted account's tombstone is kept at least (measured
    /// from when this directory applied the deletion). Zero forgets it at
    /// the next purge.
    #[must_use]
    pub fn with_tombstone_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Records a user's current claims, as an administrator or the
    /// application's own sign-in sets them: a provider-linked user keeps
    /// its link (a later webhook or token newer than the stored record
    /// still updates it, and a deletion still removes it); any other user
    /// is kept as a local one, which no provider account reaches.
    pub fn upsert(&self, user: DirectoryUser<R>) {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        match users.by_id.get_mut(&user.user_id) {
            Some(linked) => linked.user = user,
            None => {
                users.local.insert(user.user_id, user);
            }
        }
    }

    /// How many users it holds, linked or local.
    #[must_use]
    pub fn len(&self) -> usize {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        users.by_id.len() + users.local.len()
    }

    /// Whether it holds no user.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many tombstones of deleted accounts it holds.
    #[must_use]
    pub fn tombstones(&self) -> usize {
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .tombstones
            .len()
    }

    /// Forgets the tombstones older than the retention period; returns how
    /// many. Deletions do this by themselves; call it to reclaim memory when
    /// there are none.
    pub fn purge_tombstones(&self) -> usize {
        let now = self.clock.now();
        self.users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .purge(now, self.retention)
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
            .and_then(|link| users.by_id.get(&link.user_id))
            .cloned())
    }

    async fn upsert_external(
        &self,
        profile: ExternalProfile<R>,
    ) -> Result<UpsertOutcome<R>, DirectoryError> {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        let key = (profile.issuer.clone(), profile.subject.clone());
        if let Some(tombstone) = users.tombstones.get(&key).copied() {
            // Only a webhook's profile strictly newer than the deletion, by
            // the provider's instant, recreates the user; a token's, one
            // dated by its delivery or an undated one never does.
            if profile
                .as_of
                .provider_instant()
                .is_none_or(|as_of| as_of <= tombstone.as_of)
            {
                return Ok(UpsertOutcome::Deleted {
                    deleted_as_of: tombstone.as_of,
                });
            }
            users.tombstones.remove(&key);
        }
        let existing = users
            .by_external
            .get(&key)
            .copied()
            .and_then(|link| Some((link, users.by_id.get(&link.user_id)?.clone())));
        let (current, as_of) = match &existing {
            Some((link, previous)) => {
                if let (Some(new), Some(stored)) = (profile.as_of.instant(), link.as_of)
                    && new < stored
                {
                    return Ok(UpsertOutcome::Stale(previous.clone()));
                }
                let current = ExternalUser {
                    user: DirectoryUser {
                        role: profile.role,
                        enabled: profile.enabled.unwrap_or(previous.user.enabled),
                        ..previous.user.clone()
                    },
                    issuer: profile.issuer,
                    subject: profile.subject,
                    email: profile.email,
                    name: profile.name,
                };
                (current, profile.as_of.recorded_instant().or(link.as_of))
            }
            None => {
                let current = ExternalUser {
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
                };
                (current, profile.as_of.recorded_instant())
            }
        };
        let user_id = current.user.user_id;
        users.by_external.insert(key, Link { user_id, as_of });
        users.by_id.insert(user_id, current.clone());
        Ok(UpsertOutcome::Written(Upserted {
            current,
            previous: existing.map(|(_, previous)| previous),
        }))
    }

    async fn delete_external(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
        as_of: Option<OffsetDateTime>,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        let now = self.clock.now();
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        users.purge(now, self.retention);
        let key = (issuer.to_owned(), subject.clone());
        let link = users.by_external.remove(&key);
        let removed = link.and_then(|link| users.by_id.remove(&link.user_id));
        let earlier = users.tombstones.get(&key).copied();
        // Never earlier than what the record reflected or an earlier
        // deletion recorded: nothing already seen may undo the deletion.
        let deleted_as_of = [
            link.and_then(|link| link.as_of),
            earlier.map(|tombstone| tombstone.as_of),
        ]
        .into_iter()
        .flatten()
        .fold(as_of.unwrap_or(now), OffsetDateTime::max);
        users.tombstones.insert(
            key,
            Tombstone {
                as_of: deleted_as_of,
                deleted_at: earlier.map_or(now, |tombstone| tombstone.deleted_at),
            },
        );
        Ok(removed)
    }
}

#[async_trait]
impl<R: Role> UserDirectory<R> for InMemoryExternalUserDirectory<R> {
    async fn find(&self, user_id: &UserId) -> Result<Option<DirectoryUser<R>>, DirectoryError> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        Ok(users
            .by_id
            .get(user_id)
            .map(|u| u.user.clone())
            .or_else(|| users.local.get(user_id).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use tessera_application::external::AsOf;
    use tessera_domain::UserRole;

    const ISSUER: &str = "https://idp.example";

    fn subject() -> ExternalSubject {
        ExternalSubject::parse("user_1").unwrap()
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    fn profile(role: UserRole, enabled: Option<bool>) -> ExternalProfile<UserRole> {
        ExternalProfile {
            issuer: ISSUER.into(),
            subject: subject(),
            role,
            email: Some("a@example.com".into()),
            name: None,
            enabled,
            as_of: AsOf::Unknown,
        }
    }

    fn written(outcome: UpsertOutcome<UserRole>) -> Upserted<UserRole> {
        match outcome {
            UpsertOutcome::Written(upserted) => upserted,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[derive(Debug)]
    struct ManualClock(AtomicI64);

    impl Clock for ManualClock {
        fn now(&self) -> OffsetDateTime {
            at(self.0.load(Ordering::SeqCst))
        }
    }

    // Worker threads, so that the upserts really run at once (on one
    // thread each would run to completion before the next).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_upserts_of_one_account_create_exactly_one_user() {
        let directory = Arc::new(InMemoryExternalUserDirectory::<UserRole>::new());
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (directory, barrier) = (Arc::clone(&directory), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    written(
                        directory
                            .upsert_external(profile(UserRole::User, None))
                            .await
                            .unwrap(),
                    )
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
        let first = written(
            directory
                .upsert_external(profile(UserRole::User, Some(false)))
                .await
                .unwrap(),
        );
        let second = written(
            directory
                .upsert_external(profile(UserRole::Admin, None))
                .await
                .unwrap(),
        );
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
    async fn local_users_are_found_and_a_linked_user_set_by_hand_stays_linked() {
        let directory = InMemoryExternalUserDirectory::<UserRole>::new();
        let local = UserId::from_uuid(Uuid::now_v7()).unwrap();
        directory.upsert(DirectoryUser::new(local, UserRole::Moderator));
        let found = UserDirectory::find(&directory, &local).await.unwrap();
        assert_eq!(found.map(|user| user.role), Some(UserRole::Moderator));

        let linked = written(
            directory
                .upsert_external(profile(UserRole::User, None))
                .await
                .unwrap(),
        )
        .current;
        let id = linked.user.user_id;
        directory.upsert(DirectoryUser::new(id, UserRole::Admin));
        assert_eq!(directory.len(), 2, "updated in place, not a second user");
        let by_account = directory.find_by_external_id(ISSUER, &subject()).await;
        assert_eq!(by_account.unwrap().unwrap().user.role, UserRole::Admin);
        // The provider's deletion still removes the user set by hand.
        directory
            .delete_external(ISSUER, &subject(), None)
            .await
            .unwrap();
        assert!(
            UserDirectory::find(&directory, &id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            UserDirectory::find(&directory, &local)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_deleted_account_is_gone_from_both_views_and_leaves_one_tombstone() {
        let directory = InMemoryExternalUserDirectory::<UserRole>::new();
        let user = written(
            directory
                .upsert_external(profile(UserRole::User, None))
                .await
                .unwrap(),
        )
        .current;
        assert!(
            directory
                .delete_external(ISSUER, &subject(), None)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            directory
                .find_by_external_id(ISSUER, &subject())
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
                .delete_external(ISSUER, &subject(), None)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(directory.len(), 0);
        assert_eq!(directory.tombstones(), 1);
    }

    #[tokio::test]
    async fn a_deletion_without_an_instant_is_dated_by_the_clock_and_never_before_the_record() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let directory = InMemoryExternalUserDirectory::<UserRole>::new().with_clock(clock.clone());
        // The record reflects the provider at 2 000, ahead of the clock.
        let mut update = profile(UserRole::User, None);
        update.as_of = AsOf::Provider(at(2_000));
        written(directory.upsert_external(update.clone()).await.unwrap());
        directory
            .delete_external(ISSUER, &subject(), None)
            .await
            .unwrap();
        // Dated at 2 000 (not the clock's 1 000): the update stays refused.
        assert_eq!(
            directory.upsert_external(update).await.unwrap(),
            UpsertOutcome::Deleted {
                deleted_as_of: at(2_000)
            }
        );

        // Another account, deleted with no record and no instant: dated now.
        let mut other = profile(UserRole::User, None);
        other.subject = ExternalSubject::parse("user_2").unwrap();
        directory
            .delete_external(ISSUER, &other.subject, None)
            .await
            .unwrap();
        other.as_of = AsOf::Provider(at(1_000));
        assert_eq!(
            directory.upsert_external(other.clone()).await.unwrap(),
            UpsertOutcome::Deleted {
                deleted_as_of: at(1_000)
            }
        );
        other.as_of = AsOf::Provider(at(1_001));
        assert!(
            written(directory.upsert_external(other).await.unwrap())
                .previous
                .is_none()
        );
    }

    #[tokio::test]
    async fn tombstones_are_kept_for_the_retention_and_purged_after() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let directory = InMemoryExternalUserDirectory::<UserRole>::new()
            .with_clock(clock.clone())
            .with_tombstone_retention(Duration::from_secs(60));
        // A token minted after the deletion.
        let token = ExternalProfile {
            as_of: AsOf::Token(at(1_000)),
            ..profile(UserRole::User, None)
        };
        directory
            .delete_external(ISSUER, &subject(), Some(at(900)))
            .await
            .unwrap();
        clock.0.store(1_059, Ordering::SeqCst);
        assert_eq!(directory.purge_tombstones(), 0, "59 s old: kept");
        assert!(matches!(
            directory.upsert_external(token.clone()).await.unwrap(),
            UpsertOutcome::Deleted { .. }
        ));
        clock.0.store(1_060, Ordering::SeqCst);
        assert_eq!(directory.purge_tombstones(), 1, "60 s old: purged");
        assert_eq!(directory.tombstones(), 0);
        // Forgotten: the account is unknown again, and a token may create it.
        assert!(
            written(directory.upsert_external(token).await.unwrap())
                .previous
                .is_none()
        );
    }

    #[tokio::test]
    async fn every_deletion_purges_expired_tombstones_first() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let directory = InMemoryExternalUserDirectory::<UserRole>::new()
            .with_clock(clock.clone())
            .with_tombstone_retention(Duration::from_secs(60));
        for n in 0..10 {
            let gone = ExternalSubject::parse(&format!("user_gone_{n}")).unwrap();
            directory
                .delete_external(ISSUER, &gone, None)
                .await
                .unwrap();
        }
        assert_eq!(directory.tombstones(), 10);
        clock.0.store(1_060, Ordering::SeqCst);
        directory
            .delete_external(ISSUER, &subject(), None)
            .await
            .unwrap();
        assert_eq!(directory.tombstones(), 1, "only the new one is left");
    }
}
