//! [`PostgresStoreError`]: why the PostgreSQL revocation store failed.

use std::time::Duration;

/// Why the PostgreSQL store could not start, write, or be trusted.
///
/// It reaches the application boxed inside [`RevocationError::Unavailable`](tessera_application::ports::RevocationError::Unavailable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresStoreError {
    /// The configuration breaks a rule (named here).
    #[error("invalid revocation store configuration: {0}")]
    InvalidConfig(&'static str),
    /// The database refused an operation or could not be reached.
    #[error("revocation database operation failed")]
    Database(#[source] sqlx::Error),
    /// A database operation took longer than the operation timeout.
    #[error("revocation database operation timed out: {0}")]
    TimedOut(&'static str),
    /// A stored row cannot be read (edited by hand?); the cache is not
    /// loaded rather than loaded without it.
    #[error("revocation table holds an invalid row: {0}")]
    InvalidRow(&'static str),
    /// The cache has not been confirmed in sync within the staleness bound.
    #[error("revocation cache is stale (last in sync {since:?} ago)")]
    Stale {
        /// How long ago it was last in sync; `None` if never.
        since: Option<Duration>,
    },
    /// The listening connection was closed by the server.
    #[error("revocation listener connection closed")]
    ListenerClosed,
    /// The store was shut down.
    #[error("revocation store is shut down")]
    ShutDown,
}

impl From<sqlx::Error> for PostgresStoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

impl From<crate::revocation_sync::Distrust> for PostgresStoreError {
    fn from(d: crate::revocation_sync::Distrust) -> Self {
        match d {
            crate::revocation_sync::Distrust::Stale(since) => Self::Stale { since },
            crate::revocation_sync::Distrust::ShutDown => Self::ShutDown,
        }
    }
}
