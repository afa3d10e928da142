//! PostgreSQL adapters, for backends that run several instances (feature
//! `postgres`).
//!
//! - [`PostgresRevocationStore`]: logouts and watermarks in shared tables,
//!   every change also appended to a change log. Each instance answers
//!   [`check`](tessera_application::ports::RevocationStore::check) from a
//!   bounded local cache, which it keeps in sync by reading the log through
//!   its own pool: woken by `LISTEN` ([`SyncMode::Listen`]) or at an
//!   interval ([`SyncMode::Poll`]; behind PgBouncer in transaction mode,
//!   configure [`PostgresRevocationConfig::with_transaction_pooler`]). A
//!   notification carries no authority; table grants protect the state. It
//!   fails closed when the cache is older than a staleness bound.
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
//! `tessera_session_logouts (session_id, until, logged_out_at)`,
//! `tessera_watermarks (kind, scope, subject, at)`, the change log
//! `tessera_revocation_log (seq, recorded_at, change, …)` with
//! `tessera_revocation_log_horizon` (the writers' order lock and how far
//! the log was compacted), `tessera_users (id, role, capabilities, tenant,
//! enabled)` and `tessera_external_accounts (issuer, subject, user_id,
//! email, name, as_of, deleted_at)` (provider accounts linked to users, or
//! tombstones of deleted ones, used by
//! `identity::PostgresExternalUserDirectory`), plus
//! `tessera_schema_migrations`, all in the first schema of
//! the connection's `search_path` (give the pool a `search_path` option to
//! keep them apart from the application's tables).
//!
//! The role the revocation store connects as needs `SELECT`, `INSERT`,
//! `UPDATE` and `DELETE` on the revocation tables and `USAGE` on the log's
//! sequence; a role without them can still `NOTIFY` the channel, which
//! changes nothing but how soon instances read the log.
//!
//! Expired rows are deleted, and log rows older than the log retention
//! compacted away (in batches), by every running store, every purge
//! interval;
//! tombstones of deleted provider accounts past their retention by the
//! provider-user directory, at every deletion (and whenever its
//! `purge_tombstones` is called).
//! A row changed by hand in the state tables reaches the caches only when
//! they reload: append a resync row to the log afterwards,
//! `INSERT INTO tessera_revocation_log (change) VALUES ('resync')` (a
//! notification no longer does anything by itself). Force-logouts and claims-stale marks go through the
//! application's `RevokeSession` use case, whatever the store.
//!
//! The re-exported [`sqlx`] is the version these adapters are built on.

pub use sqlx;

mod config;
pub(crate) mod directory;
mod error;
pub(crate) mod log;
mod migrate;
mod revocation;
mod shared;
mod sync;

pub use config::{DEFAULT_CHANNEL, DEFAULT_POLL_INTERVAL, PostgresRevocationConfig, SyncMode};
pub use directory::{InvalidUserRecord, PostgresUserDirectory};
pub use error::PostgresStoreError;
pub use migrate::{MIGRATIONS, MigrateError, migrate};
pub use revocation::PostgresRevocationStore;
pub use shared::SyncHealth;
