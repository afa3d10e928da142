//! `PostgresExternalUserDirectory`: provider-linked users in PostgreSQL,
//! shared by every instance (feature `postgres`).

use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction};
use tessera_application::external::{
    DEFAULT_TOMBSTONE_RETENTION, ExternalProfile, ExternalSubject, ExternalUser,
    ExternalUserDirectory, UpsertOutcome, Upserted,
};
use tessera_application::ports::{DirectoryError, DirectoryUser, UserDirectory};
use tessera_domain::{Role, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::postgres::PostgresUserDirectory;
use crate::postgres::directory::{UserRow, read_error, to_user};

/// Provider accounts in `tessera_external_accounts (issuer, subject,
/// user_id, email, name, as_of, deleted_at)`, each linked to one
/// `tessera_users` row or, once deleted, kept as a tombstone (see
/// [`migrate`](crate::postgres::migrate), migrations 3 and 4).
///
/// Implements [`ExternalUserDirectory`] and [`UserDirectory`], so that
/// sessions exchanged for provider tokens rotate with the stored role.
///
/// [`upsert_external`](ExternalUserDirectory::upsert_external) is race-safe
/// across instances: in one transaction it claims the account with a single
/// `INSERT .. ON CONFLICT (issuer, subject) DO UPDATE .. RETURNING` statement
/// (carrying a fresh user id), which makes concurrent upserts and deletions
/// of one account wait for one another on that row and tells the claimant
/// what the row holds; the upsert whose fresh id comes back creates the
/// user, the others lock the user and update both rows in one statement, or
/// roll back, leaving them as they are, when their profile is stale or the
/// row is a tombstone it may not replace (a webhook's profile newer than
/// the deletion gives the tombstone a new user, in one statement). There is
/// no check-then-insert window.
/// [`delete_external`](ExternalUserDirectory::delete_external) claims the
/// row the same way, then detaches and deletes the user in one statement,
/// leaving the row as the tombstone.
///
/// The account's `as_of` column holds webhooks' instants
/// ([`AsOf::recorded_instant`](tessera_application::external::AsOf::recorded_instant)) only:
/// a token's `iat` orders its profile but is never stored. Instants are
/// kept to the microsecond (PostgreSQL's `timestamptz`); a profile's
/// instant is truncated to the microsecond before it is compared or stored.
/// Deletions without an instant, and tombstones' retention, are dated by
/// the database's clock (`now()`).
///
/// Tombstones are kept for the retention period
/// ([`with_tombstone_retention`](Self::with_tombstone_retention), by
/// default [`DEFAULT_TOMBSTONE_RETENTION`]) and deleted by the first purge
/// after that: every deletion purges first (a failed purge is logged and
/// does not stop the deletion), and so does
/// [`purge_tombstones`](Self::purge_tombstones), for a scheduled job.
pub struct PostgresExternalUserDirectory<R> {
    pool: PgPool,
    users: PostgresUserDirectory<R>,
    retention: Duration,
    role: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for PostgresExternalUserDirectory<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresExternalUserDirectory")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl<R> Clone for PostgresExternalUserDirectory<R> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            users: self.users.clone(),
            retention: self.retention,
            role: PhantomData,
        }
    }
}

/// A linked account joined with its user.
type AccountRow = (
    Uuid,
    Option<String>,
    Option<String>,
    String,
    Vec<String>,
    Option<String>,
    bool,
);

/// An account row as a claim finds it: its user (`None` for a tombstone),
/// email, name and instant.
type ClaimRow = (
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<OffsetDateTime>,
);

const FIND: &str = "SELECT a.user_id, a.email, a.name, u.role, u.capabilities, u.tenant, u.enabled
     FROM tessera_external_accounts a JOIN tessera_users u ON u.id = a.user_id
     WHERE a.issuer = $1 AND a.subject = $2";

/// Claims the account: inserts it with a fresh user id (and `$6`, the
/// webhook's instant, provider's or delivery's, if any), or (on conflict) locks the existing row,
/// live or tombstone, and returns it as it was.
/// `updated_at` is the only column the conflict branch writes.
const CLAIM: &str =
    "INSERT INTO tessera_external_accounts (issuer, subject, user_id, email, name, as_of)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (issuer, subject) DO UPDATE SET updated_at = now()
     RETURNING user_id, email, name, as_of";

const CREATE_USER: &str = "INSERT INTO tessera_users (id, role, enabled) VALUES ($1, $2, $3)
     RETURNING role, capabilities, tenant, enabled";

const LOCK_USER: &str =
    "SELECT role, capabilities, tenant, enabled FROM tessera_users WHERE id = $1 FOR UPDATE";

/// Updates a live account (claimed) and its user in one statement: the
/// provider's fields on the account (`$6`, the webhook's instant, provider's
/// or delivery's, when given: a token's profile or an undated one keeps the
/// stored instant),
/// role and `enabled` (when given) on the user.
const UPDATE: &str = "WITH account AS (
         UPDATE tessera_external_accounts
         SET email = $4, name = $5, as_of = coalesce($6, as_of)
         WHERE issuer = $1 AND subject = $2
     )
     UPDATE tessera_users
     SET role = $7, enabled = coalesce($8, enabled), updated_at = now()
     WHERE id = $3
     RETURNING role, capabilities, tenant, enabled";

/// Brings a tombstone (claimed) back to life with a new user `$3`, for a
/// profile newer than its deletion, in one statement.
const REVIVE: &str = "WITH account AS (
         UPDATE tessera_external_accounts
         SET user_id = $3, email = $4, name = $5, as_of = $6, deleted_at = NULL
         WHERE issuer = $1 AND subject = $2
     )
     INSERT INTO tessera_users (id, role, enabled) VALUES ($3, $7, coalesce($8, true))
     RETURNING role, capabilities, tenant, enabled";

/// Claims the account for a deletion: inserts its tombstone (dated `$3`,
/// or now), or (on conflict) locks the existing row; a tombstone's instant
/// moves up to `$3` if later, a live row is returned as it was.
const MARK_DELETED: &str = "INSERT INTO tessera_external_accounts AS a
         (issuer, subject, user_id, as_of, deleted_at)
     VALUES ($1, $2, NULL, coalesce($3, now()), now())
     ON CONFLICT (issuer, subject) DO UPDATE
     SET as_of = CASE WHEN a.user_id IS NULL THEN GREATEST(a.as_of, EXCLUDED.as_of)
                      ELSE a.as_of END,
         updated_at = now()
     RETURNING user_id, email, name";

/// Turns the live account `$1, $2` (claimed) into its tombstone and deletes
/// its user `$4`. The account is detached from the user in the same
/// statement, so the foreign key's cascade finds nothing to delete.
const DELETE_USER: &str = "WITH account AS (
         UPDATE tessera_external_accounts
         SET user_id = NULL, email = NULL, name = NULL,
             as_of = GREATEST(as_of, coalesce($3, now())), deleted_at = now()
         WHERE issuer = $1 AND subject = $2
     )
     DELETE FROM tessera_users WHERE id = $4
     RETURNING role, capabilities, tenant, enabled";

/// Deletes the tombstones at least `$1` seconds old. Seconds as a double,
/// compared with the tombstone's age, so that no retention can overflow a
/// timestamp.
const PURGE: &str = "DELETE FROM tessera_external_accounts
     WHERE user_id IS NULL AND extract(epoch FROM now() - deleted_at) >= $1";

impl<R: Role> PostgresExternalUserDirectory<R> {
    /// A directory on `pool`, whose schema [`migrate`](crate::postgres::migrate)
    /// has brought up to date, keeping tombstones for
    /// [`DEFAULT_TOMBSTONE_RETENTION`].
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self {
            users: PostgresUserDirectory::new(pool.clone()),
            pool,
            retention: DEFAULT_TOMBSTONE_RETENTION,
            role: PhantomData,
        }
    }

    /// How long a deleted account's tombstone is kept at least (measured
    /// from when the deletion was applied, by the database's clock). Zero
    /// deletes it at the next purge. Instances sharing the tables should
    /// share it: each purges by its own.
    #[must_use]
    pub fn with_tombstone_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Deletes the tombstones older than the retention period; returns how
    /// many. Every deletion does this first; call it from a scheduled job
    /// to reclaim them when deletions are rare.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::Unavailable`] when the database cannot be written.
    pub async fn purge_tombstones(&self) -> Result<u64, DirectoryError> {
        let purged = sqlx::query(PURGE)
            .bind(self.retention.as_secs_f64())
            .execute(&self.pool)
            .await
            .map_err(read_error)?
            .rows_affected();
        if purged > 0 {
            tracing::debug!(purged, "provider account tombstones purged");
        }
        Ok(purged)
    }

    async fn upsert_in(
        tx: &mut Transaction<'_, Postgres>,
        profile: ExternalProfile<R>,
    ) -> Result<UpsertOutcome<R>, DirectoryError> {
        let fresh = Uuid::now_v7();
        // Ordered by any instant, a webhook's or a token's; only a
        // webhook's is recorded, and only the provider's own may outdate a
        // deletion.
        let ordered_by = profile.as_of.instant().map(to_microseconds);
        let recorded = profile.as_of.recorded_instant().map(to_microseconds);
        let revives = profile.as_of.provider_instant().map(to_microseconds);
        let (user_id, old_email, old_name, stored_as_of): ClaimRow = sqlx::query_as(CLAIM)
            .bind(&profile.issuer)
            .bind(profile.subject.as_str())
            .bind(fresh)
            .bind(profile.email.as_deref())
            .bind(profile.name.as_deref())
            .bind(recorded)
            .fetch_one(&mut **tx)
            .await
            .map_err(read_error)?;
        let account = |user, email, name| ExternalUser {
            user,
            issuer: profile.issuer.clone(),
            subject: profile.subject.clone(),
            email,
            name,
        };

        // The user to write: a new one (`fresh`) in place of a tombstone or
        // for an account this claim inserted, or the account's own.
        let (written_id, row, previous) = match user_id {
            None => {
                let deleted_as_of = stored_as_of
                    .ok_or_else(|| DirectoryError::InvalidRecord(Box::new(UndatedTombstone)))?;
                // Only a webhook's profile strictly newer than the deletion,
                // by the provider's instant, recreates the user; a token's,
                // one dated by its delivery or an undated one never does.
                if revives.is_none_or(|as_of| as_of <= deleted_as_of) {
                    return Ok(UpsertOutcome::Deleted { deleted_as_of });
                }
                let row = Self::write(REVIVE, tx, fresh, &profile, recorded).await?;
                (fresh, row, None)
            }
            Some(user_id) if user_id == fresh => {
                let row: UserRow = sqlx::query_as(CREATE_USER)
                    .bind(fresh)
                    .bind(profile.role.name())
                    .bind(profile.enabled.unwrap_or(true))
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(read_error)?;
                (fresh, row, None)
            }
            Some(user_id) => {
                let before: Option<UserRow> = sqlx::query_as(LOCK_USER)
                    .bind(user_id)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(read_error)?;
                let before =
                    before.ok_or_else(|| DirectoryError::InvalidRecord(Box::new(DanglingLink)))?;
                let previous = account(to_user(user_id_of(user_id)?, before)?, old_email, old_name);
                if let (Some(new), Some(stored)) = (ordered_by, stored_as_of)
                    && new < stored
                {
                    return Ok(UpsertOutcome::Stale(previous));
                }
                let row = Self::write(UPDATE, tx, user_id, &profile, recorded).await?;
                (user_id, row, Some(previous))
            }
        };
        let current = account(
            to_user(user_id_of(written_id)?, row)?,
            profile.email.clone(),
            profile.name.clone(),
        );
        Ok(UpsertOutcome::Written(Upserted { current, previous }))
    }

    /// Runs [`UPDATE`] or [`REVIVE`] for `profile` on the account's user
    /// `user_id`, recording `recorded` as the account's instant (when some),
    /// and returns the user row as written.
    async fn write(
        sql: &'static str,
        tx: &mut Transaction<'_, Postgres>,
        user_id: Uuid,
        profile: &ExternalProfile<R>,
        recorded: Option<OffsetDateTime>,
    ) -> Result<UserRow, DirectoryError> {
        sqlx::query_as(sql)
            .bind(&profile.issuer)
            .bind(profile.subject.as_str())
            .bind(user_id)
            .bind(profile.email.as_deref())
            .bind(profile.name.as_deref())
            .bind(recorded)
            .bind(profile.role.name())
            .bind(profile.enabled)
            .fetch_one(&mut **tx)
            .await
            .map_err(read_error)
    }

    async fn delete_in(
        tx: &mut Transaction<'_, Postgres>,
        issuer: &str,
        subject: &ExternalSubject,
        as_of: Option<OffsetDateTime>,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        let as_of = as_of.map(to_microseconds);
        let (user_id, email, name): (Option<Uuid>, Option<String>, Option<String>) =
            sqlx::query_as(MARK_DELETED)
                .bind(issuer)
                .bind(subject.as_str())
                .bind(as_of)
                .fetch_one(&mut **tx)
                .await
                .map_err(read_error)?;
        // No user: the account was unknown or already deleted, and its
        // tombstone is written.
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let id = user_id_of(user_id)?;
        let row: Option<UserRow> = sqlx::query_as(DELETE_USER)
            .bind(issuer)
            .bind(subject.as_str())
            .bind(as_of)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(read_error)?;
        let row = row.ok_or_else(|| DirectoryError::InvalidRecord(Box::new(DanglingLink)))?;
        Ok(Some(ExternalUser {
            user: to_user(id, row)?,
            issuer: issuer.to_owned(),
            subject: subject.clone(),
            email,
            name,
        }))
    }
}

fn user_id_of(id: Uuid) -> Result<UserId, DirectoryError> {
    UserId::from_uuid(id).map_err(|e| DirectoryError::InvalidRecord(Box::new(e)))
}

/// `t` truncated to the microsecond, the precision PostgreSQL keeps, so that
/// what is compared is what is stored.
fn to_microseconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// A tombstone row without an instant (possible only if the table's check
/// was dropped by hand).
#[derive(Debug, thiserror::Error)]
#[error("provider account tombstone has no deletion instant")]
struct UndatedTombstone;

/// An account row whose user row is missing (possible only if the
/// foreign key was dropped by hand).
#[derive(Debug, thiserror::Error)]
#[error("provider account links to a user that does not exist")]
struct DanglingLink;

fn to_external<R: Role>(
    issuer: &str,
    subject: &ExternalSubject,
    row: AccountRow,
) -> Result<ExternalUser<R>, DirectoryError> {
    let (user_id, email, name, role, capabilities, tenant, enabled) = row;
    Ok(ExternalUser {
        user: to_user(user_id_of(user_id)?, (role, capabilities, tenant, enabled))?,
        issuer: issuer.to_owned(),
        subject: subject.clone(),
        email,
        name,
    })
}

#[async_trait]
impl<R: Role> ExternalUserDirectory<R> for PostgresExternalUserDirectory<R> {
    async fn find_by_external_id(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        let row: Option<AccountRow> = sqlx::query_as(FIND)
            .bind(issuer)
            .bind(subject.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?;
        row.map(|row| to_external(issuer, subject, row)).transpose()
    }

    async fn upsert_external(
        &self,
        profile: ExternalProfile<R>,
    ) -> Result<UpsertOutcome<R>, DirectoryError> {
        let mut tx = self.pool.begin().await.map_err(read_error)?;
        let outcome = Self::upsert_in(&mut tx, profile).await?;
        if let UpsertOutcome::Written(_) = outcome {
            tx.commit().await.map_err(read_error)?;
        } else {
            // Stale or deleted: nothing to keep (the claim only touched
            // `updated_at`).
            tx.rollback().await.map_err(read_error)?;
        }
        Ok(outcome)
    }

    async fn delete_external(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
        as_of: Option<OffsetDateTime>,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        if let Err(e) = self.purge_tombstones().await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "provider account tombstones could not be purged"
            );
        }
        let mut tx = self.pool.begin().await.map_err(read_error)?;
        let deleted = Self::delete_in(&mut tx, issuer, subject, as_of).await?;
        tx.commit().await.map_err(read_error)?;
        Ok(deleted)
    }
}

#[async_trait]
impl<R: Role> UserDirectory<R> for PostgresExternalUserDirectory<R> {
    async fn find(&self, user_id: &UserId) -> Result<Option<DirectoryUser<R>>, DirectoryError> {
        self.users.find(user_id).await
    }
}
