//! The schema: SQL shipped in `migrations/`, applied in order, once.

use sqlx::PgPool;

/// The migrations [`migrate`] applies, in order: version, description, SQL.
///
/// They are the files of the crate's `migrations/` folder, embedded at
/// build time, for those who apply schema changes with their own tool.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "revocations",
        include_str!("../../migrations/0001_revocations.sql"),
    ),
    (2, "users", include_str!("../../migrations/0002_users.sql")),
    (
        3,
        "external_accounts",
        include_str!("../../migrations/0003_external_accounts.sql"),
    ),
    (
        4,
        "external_account_order",
        include_str!("../../migrations/0004_external_account_order.sql"),
    ),
    (
        5,
        "revocation_log",
        include_str!("../../migrations/0005_revocation_log.sql"),
    ),
];

/// The advisory lock that serialises concurrent [`migrate`] calls
/// (`'tessera'` in ASCII).
const LOCK_KEY: i64 = 0x0074_6573_7365_7261;

/// The schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database refused a statement or could not be reached; nothing of
    /// the failed run was applied.
    #[error("database migration failed")]
    Database(#[source] sqlx::Error),
    /// The database records a migration version this build does not know:
    /// a newer tessera migrated it.
    #[error("database schema has migration {0}, newer than this build knows")]
    UnknownVersion(i64),
}

impl From<sqlx::Error> for MigrateError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// Creates or updates tessera's tables in the first schema of the pool's
/// `search_path`.
///
/// Applies each of [`MIGRATIONS`] not applied yet, all in one transaction
/// under a transaction-scoped advisory lock, recording them in
/// `tessera_schema_migrations`. Idempotent; instances starting together
/// wait for one another instead of racing.
///
/// # Errors
///
/// [`MigrateError::Database`] when a statement fails (the transaction is
/// rolled back), [`MigrateError::UnknownVersion`] when the database was
/// migrated by a newer build.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS tessera_schema_migrations (
            version bigint PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM tessera_schema_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
    if let Some(unknown) = applied
        .iter()
        .find(|v| !MIGRATIONS.iter().any(|(known, _, _)| known == *v))
    {
        return Err(MigrateError::UnknownVersion(*unknown));
    }
    for (version, description, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO tessera_schema_migrations (version, description) VALUES ($1, $2)")
            .bind(version)
            .bind(description)
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, description, "tessera migration applied");
    }
    tx.commit().await?;
    Ok(())
}
