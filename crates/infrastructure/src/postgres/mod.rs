//! PostgreSQL adapters, for backends that run several instances (feature
//! `postgres`).
//!
//! - [`PostgresRevocationStore`]: logouts and watermarks in shared tables.
//!   Writes notify every instance (`NOTIFY` in the writing statement); each
//!   instance answers [`check`](tessera_application::ports::RevocationStore::check)
//!   from a bounded local cache kept in sync over `LISTEN`, and fails closed
//!   when that cache is older than a staleness bound.
//! - [`PostgresUserDirectory`]: users' current role, capabilities, tenant
//!   and enabled flag, read when sessions rotate.
//!
//! The tables are created by [`migrate`], which applies the SQL shipped in
//! the crate's `migrations/` folder; run it once at start-up (it is
//! idempotent and safe to run from several instances at once):
//!
//! ```no_run
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use sqlx::postgres::PgPoolOptions;
//! use tessera_domain::{SessionLifetimes, UserRole};
//! use tessera_infrastructure::SystemClock;
//! use tessera_infrastructure::postgres::{
//!     PostgresRevocationConfig, PostgresRevocationStore, PostgresUserDirectory, migrate,
//! };
//!
//! let pool = PgPoolOptions::new()
//!     .max_connections(4)
//!     .connect("postgres://postgres@127.0.0.1/app")
//!     .await?;
//! migrate(&pool).await?;
//! let config = PostgresRevocationConfig::new(SessionLifetimes::default());
//! let revocations = PostgresRevocationStore::start(pool.clone(), Arc::new(SystemClock), config).await?;
//! let directory = PostgresUserDirectory::<UserRole>::new(pool);
//! # drop((revocations, directory));
//! # Ok(())
//! # }
//! ```

//! # Tables and operations
//!
//! `tessera_session_logouts (session_id, until)`, `tessera_watermarks (kind,
//! scope, subject, at)`, `tessera_users (id, role, capabilities, tenant,
//! enabled)` and `tessera_external_accounts (issuer, subject, user_id,
//! email, name, as_of, deleted_at)` (provider accounts linked to users, or
//! tombstones of deleted ones, used by
//! `identity::PostgresExternalUserDirectory`), plus
//! `tessera_schema_migrations`, all in the first schema of
//! the connection's `search_path` (give the pool a `search_path` option to
//! keep them apart from the application's tables).
//!
//! Expired rows are deleted by every running store, every purge interval;
//! tombstones of deleted provider accounts past their retention by the
//! provider-user directory, at every deletion (and whenever its
//! `purge_tombstones` is called).
//! A row changed by hand reaches the caches only when they reload: send
//! `SELECT pg_notify('tessera_revocations', 'resync')` (or the configured
//! channel) afterwards. Force-logouts and claims-stale marks go through the
//! application's `RevokeSession` use case, whatever the store.
//!
//! The re-exported [`sqlx`] is the version these adapters are built on.

pub use sqlx;

pub(crate) mod directory;
mod migrate;
pub(crate) mod payload;
mod revocation;
mod sync;

pub use directory::{InvalidUserRecord, PostgresUserDirectory};
pub use migrate::{MIGRATIONS, MigrateError, migrate};
pub use revocation::{
    DEFAULT_CHANNEL, PostgresRevocationConfig, PostgresRevocationStore, PostgresStoreError,
    SyncHealth,
};
