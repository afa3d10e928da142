//! `PostgresExternalUserDirectory`: provider-linked users in PostgreSQL,
//! shared by every instance (feature `postgres`).

use std::marker::PhantomData;

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction};
use tessera_application::external::{
    ExternalProfile, ExternalSubject, ExternalUser, ExternalUserDirectory, Upserted,
};
use tessera_application::ports::{DirectoryError, DirectoryUser, UserDirectory};
use tessera_domain::{Role, UserId};
use uuid::Uuid;

use crate::postgres::directory::{UserRow, invalid, to_user};
use crate::postgres::{InvalidUserRecord, PostgresUserDirectory};

/// Provider accounts in `tessera_external_accounts (issuer, subject,
/// user_id, email, name)`, each linked to one `tessera_users` row (see
/// [`migrate`](crate::postgres::migrate), migration 3).
///
/// Implements [`ExternalUserDirectory`] and [`UserDirectory`], so that
/// sessions exchanged for provider tokens rotate with the stored role.
///
/// [`upsert_external`](ExternalUserDirectory::upsert_external) is race-safe
/// across instances: in one transaction it claims the account with
/// `INSERT .. ON CONFLICT (issuer, subject) DO UPDATE .. RETURNING user_id`
/// (carrying a fresh user id), which makes concurrent first upserts of one
/// account wait for one another on that row; the one whose fresh id comes
/// back creates the user, the others lock and update it. There is no
/// check-then-insert window.
pub struct PostgresExternalUserDirectory<R> {
    pool: PgPool,
    users: PostgresUserDirectory<R>,
    role: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for PostgresExternalUserDirectory<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresExternalUserDirectory")
            .finish_non_exhaustive()
    }
}

impl<R> Clone for PostgresExternalUserDirectory<R> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            users: self.users.clone(),
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

const FIND: &str = "SELECT a.user_id, a.email, a.name, u.role, u.capabilities, u.tenant, u.enabled
     FROM tessera_external_accounts a JOIN tessera_users u ON u.id = a.user_id
     WHERE a.issuer = $1 AND a.subject = $2";

/// Claims the account: inserts it with a fresh user id, or (on conflict)
/// locks the existing row and returns it with its email and name as they
/// were. `updated_at` is the only column the conflict branch writes.
const CLAIM: &str = "INSERT INTO tessera_external_accounts (issuer, subject, user_id, email, name)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (issuer, subject) DO UPDATE SET updated_at = now()
     RETURNING user_id, email, name";

const CREATE_USER: &str = "INSERT INTO tessera_users (id, role, enabled) VALUES ($1, $2, $3)
     RETURNING role, capabilities, tenant, enabled";

const LOCK_USER: &str =
    "SELECT role, capabilities, tenant, enabled FROM tessera_users WHERE id = $1 FOR UPDATE";

const UPDATE_USER: &str = "UPDATE tessera_users
     SET role = $2, enabled = coalesce($3, enabled), updated_at = now()
     WHERE id = $1
     RETURNING role, capabilities, tenant, enabled";

const UPDATE_ACCOUNT: &str = "UPDATE tessera_external_accounts SET email = $3, name = $4
     WHERE issuer = $1 AND subject = $2";

const DELETE: &str = "WITH a AS (
         DELETE FROM tessera_external_accounts WHERE issuer = $1 AND subject = $2
         RETURNING user_id, email, name
     ), u AS (
         DELETE FROM tessera_users WHERE id IN (SELECT user_id FROM a)
         RETURNING id, role, capabilities, tenant, enabled
     )
     SELECT a.user_id, a.email, a.name, u.role, u.capabilities, u.tenant, u.enabled
     FROM a JOIN u ON u.id = a.user_id";

impl<R: Role> PostgresExternalUserDirectory<R> {
    /// A directory on `pool`, whose schema [`migrate`](crate::postgres::migrate)
    /// has brought up to date.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self {
            users: PostgresUserDirectory::new(pool.clone()),
            pool,
            role: PhantomData,
        }
    }

    async fn upsert_in(
        tx: &mut Transaction<'_, Postgres>,
        profile: ExternalProfile<R>,
    ) -> Result<Upserted<R>, DirectoryError> {
        let fresh = Uuid::now_v7();
        let (user_id, old_email, old_name): (Uuid, Option<String>, Option<String>) =
            sqlx::query_as(CLAIM)
                .bind(&profile.issuer)
                .bind(profile.subject.as_str())
                .bind(fresh)
                .bind(profile.email.as_deref())
                .bind(profile.name.as_deref())
                .fetch_one(&mut **tx)
                .await
                .map_err(database)?;
        let id =
            UserId::from_uuid(user_id).map_err(|e| DirectoryError::InvalidRecord(Box::new(e)))?;
        let account = |user, email, name| ExternalUser {
            user,
            issuer: profile.issuer.clone(),
            subject: profile.subject.clone(),
            email,
            name,
        };

        if user_id == fresh {
            let row: UserRow = sqlx::query_as(CREATE_USER)
                .bind(user_id)
                .bind(profile.role.name())
                .bind(profile.enabled.unwrap_or(true))
                .fetch_one(&mut **tx)
                .await
                .map_err(database)?;
            let current = account(
                to_user(id, row)?,
                profile.email.clone(),
                profile.name.clone(),
            );
            return Ok(Upserted {
                current,
                previous: None,
            });
        }

        let before: Option<UserRow> = sqlx::query_as(LOCK_USER)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(database)?;
        let before = before.ok_or_else(|| DirectoryError::InvalidRecord(Box::new(DanglingLink)))?;
        let previous = account(to_user(id, before)?, old_email, old_name);
        let after: UserRow = sqlx::query_as(UPDATE_USER)
            .bind(user_id)
            .bind(profile.role.name())
            .bind(profile.enabled)
            .fetch_one(&mut **tx)
            .await
            .map_err(database)?;
        sqlx::query(UPDATE_ACCOUNT)
            .bind(&profile.issuer)
            .bind(profile.subject.as_str())
            .bind(profile.email.as_deref())
            .bind(profile.name.as_deref())
            .execute(&mut **tx)
            .await
            .map_err(database)?;
        let current = account(
            to_user(id, after)?,
            profile.email.clone(),
            profile.name.clone(),
        );
        Ok(Upserted {
            current,
            previous: Some(previous),
        })
    }
}

/// An account row whose user row is missing (possible only if the
/// foreign key was dropped by hand).
#[derive(Debug, thiserror::Error)]
#[error("provider account links to a user that does not exist")]
struct DanglingLink;

fn database(e: sqlx::Error) -> DirectoryError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            invalid(InvalidUserRecord::Column(e))
        }
        e => DirectoryError::Unavailable(Box::new(e)),
    }
}

fn to_external<R: Role>(
    issuer: &str,
    subject: &ExternalSubject,
    row: AccountRow,
) -> Result<ExternalUser<R>, DirectoryError> {
    let (user_id, email, name, role, capabilities, tenant, enabled) = row;
    let id = UserId::from_uuid(user_id).map_err(|e| DirectoryError::InvalidRecord(Box::new(e)))?;
    Ok(ExternalUser {
        user: to_user(id, (role, capabilities, tenant, enabled))?,
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
            .map_err(database)?;
        row.map(|row| to_external(issuer, subject, row)).transpose()
    }

    async fn upsert_external(
        &self,
        profile: ExternalProfile<R>,
    ) -> Result<Upserted<R>, DirectoryError> {
        let mut tx = self.pool.begin().await.map_err(database)?;
        let upserted = Self::upsert_in(&mut tx, profile).await?;
        tx.commit().await.map_err(database)?;
        Ok(upserted)
    }

    async fn delete_external(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        let row: Option<AccountRow> = sqlx::query_as(DELETE)
            .bind(issuer)
            .bind(subject.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(database)?;
        row.map(|row| to_external(issuer, subject, row)).transpose()
    }
}

#[async_trait]
impl<R: Role> UserDirectory<R> for PostgresExternalUserDirectory<R> {
    async fn find(&self, user_id: &UserId) -> Result<Option<DirectoryUser<R>>, DirectoryError> {
        self.users.find(user_id).await
    }
}
