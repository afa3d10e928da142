//! [`PostgresUserDirectory`]: users' current role and capabilities.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use async_trait::async_trait;
use sqlx::PgPool;
use tessera_application::ports::{DirectoryError, DirectoryUser, UserDirectory};
use tessera_domain::{Capability, IdError, Role, RoleError, TenantId, UserId};

/// A `tessera_users` row that cannot become a [`DirectoryUser`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidUserRecord {
    /// The role is not one the role type knows; it is never mapped to a
    /// default.
    #[error("stored role is not a known role")]
    Role(#[source] RoleError),
    /// A capability breaks the capability rules.
    #[error("stored capability is invalid")]
    Capability(#[source] IdError),
    /// The tenant breaks the tenant rules.
    #[error("stored tenant is invalid")]
    Tenant(#[source] IdError),
    /// A column holds a value of an unexpected type (a NULL capability, say).
    #[error("stored column cannot be decoded")]
    Column(#[source] sqlx::Error),
}

/// Users in the `tessera_users` table (see [`migrate`](super::migrate)):
/// `id uuid`, `role text` (the role type's [`Role::name`]),
/// `capabilities text[]`, `tenant text NULL`, `enabled bool`.
///
/// Applications that keep users elsewhere can expose them under this name
/// as a view, or implement [`UserDirectory`] themselves.
pub struct PostgresUserDirectory<R> {
    pool: PgPool,
    role: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for PostgresUserDirectory<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresUserDirectory")
            .finish_non_exhaustive()
    }
}

impl<R> Clone for PostgresUserDirectory<R> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            role: PhantomData,
        }
    }
}

/// A `tessera_users` row: role, capabilities, tenant, enabled.
pub(crate) type UserRow = (String, Vec<String>, Option<String>, bool);

impl<R: Role> PostgresUserDirectory<R> {
    /// A directory reading through `pool`.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            role: PhantomData,
        }
    }

    /// Adds or replaces a user, for administration and tests.
    ///
    /// A change of role or capabilities reaches live sessions when they
    /// rotate; mark them stale (`RevokeRequest::PermissionsChanged`) to make
    /// that the next request.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::Unavailable`] when the database fails.
    pub async fn upsert(&self, user: &DirectoryUser<R>) -> Result<(), DirectoryError> {
        let capabilities: Vec<&str> = user.capabilities.iter().map(Capability::as_str).collect();
        sqlx::query(
            "INSERT INTO tessera_users (id, role, capabilities, tenant, enabled)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET role = EXCLUDED.role,
                capabilities = EXCLUDED.capabilities, tenant = EXCLUDED.tenant,
                enabled = EXCLUDED.enabled, updated_at = now()",
        )
        .bind(*user.user_id.as_uuid())
        .bind(user.role.name())
        .bind(capabilities)
        .bind(user.tenant.as_ref().map(TenantId::as_str))
        .bind(user.enabled)
        .execute(&self.pool)
        .await
        .map_err(|e| DirectoryError::Unavailable(Box::new(e)))?;
        Ok(())
    }

    /// Removes a user; returns whether they existed.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::Unavailable`] when the database fails.
    pub async fn remove(&self, user_id: &UserId) -> Result<bool, DirectoryError> {
        let done = sqlx::query("DELETE FROM tessera_users WHERE id = $1")
            .bind(*user_id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(|e| DirectoryError::Unavailable(Box::new(e)))?;
        Ok(done.rows_affected() > 0)
    }
}

pub(crate) fn invalid(e: InvalidUserRecord) -> DirectoryError {
    DirectoryError::InvalidRecord(Box::new(e))
}

/// A failed read: a column that does not decode is an invalid record, any
/// other failure leaves the directory unavailable.
pub(crate) fn read_error(e: sqlx::Error) -> DirectoryError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            invalid(InvalidUserRecord::Column(e))
        }
        e => DirectoryError::Unavailable(Box::new(e)),
    }
}

/// A stored row as a valid user, or why it is not one (never a default role).
pub(crate) fn to_user<R: Role>(
    user_id: UserId,
    row: UserRow,
) -> Result<DirectoryUser<R>, DirectoryError> {
    let (role, capabilities, tenant, enabled) = row;
    let role = R::parse(&role).map_err(|e| invalid(InvalidUserRecord::Role(e)))?;
    let capabilities = capabilities
        .iter()
        .map(|c| Capability::parse(c))
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|e| invalid(InvalidUserRecord::Capability(e)))?;
    let tenant = tenant
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .map_err(|e| invalid(InvalidUserRecord::Tenant(e)))?;
    Ok(DirectoryUser {
        user_id,
        role,
        capabilities,
        tenant,
        enabled,
    })
}

#[async_trait]
impl<R: Role> UserDirectory<R> for PostgresUserDirectory<R> {
    async fn find(&self, user_id: &UserId) -> Result<Option<DirectoryUser<R>>, DirectoryError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT role, capabilities, tenant, enabled FROM tessera_users WHERE id = $1",
        )
        .bind(*user_id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        row.map(|row| to_user(*user_id, row)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use tessera_domain::UserRole;

    use super::*;

    fn user() -> UserId {
        UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap()
    }

    fn row(role: &str, caps: &[&str], tenant: Option<&str>) -> UserRow {
        (
            role.to_owned(),
            caps.iter().map(|c| (*c).to_owned()).collect(),
            tenant.map(str::to_owned),
            true,
        )
    }

    #[test]
    fn a_valid_row_becomes_a_directory_user() {
        let u = to_user::<UserRole>(user(), row("admin", &["posts:hide"], Some("acme"))).unwrap();
        assert_eq!(u.role, UserRole::Admin);
        assert_eq!(u.tenant.unwrap().as_str(), "acme");
        assert_eq!(u.capabilities.len(), 1);
    }

    #[test]
    fn an_unknown_role_is_an_invalid_record_never_a_default() {
        let err = to_user::<UserRole>(user(), row("superuser", &[], None)).unwrap_err();
        let DirectoryError::InvalidRecord(source) = err else {
            panic!("expected an invalid record, got {err:?}");
        };
        assert!(matches!(
            source.downcast_ref::<InvalidUserRecord>(),
            Some(InvalidUserRecord::Role(RoleError::Unknown(_)))
        ));
    }

    #[test]
    fn an_invalid_capability_or_tenant_is_an_invalid_record() {
        assert!(matches!(
            to_user::<UserRole>(user(), row("user", &["has space"], None)),
            Err(DirectoryError::InvalidRecord(_))
        ));
        assert!(matches!(
            to_user::<UserRole>(user(), row("user", &[], Some("a b"))),
            Err(DirectoryError::InvalidRecord(_))
        ));
    }
}
