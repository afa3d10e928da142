//! [`RedisStoreError`]: why the Redis revocation store failed.

use std::time::Duration;

use crate::revocation_sync::Distrust;

/// Why the Redis store could not start, write, or be trusted.
///
/// It reaches the application boxed inside
/// [`RevocationError::Unavailable`](tessera_application::ports::RevocationError::Unavailable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The configuration breaks a rule (named here).
    #[error("invalid revocation store configuration: {0}")]
    InvalidConfig(&'static str),
    /// Redis refused an operation or could not be reached.
    #[error("revocation Redis operation failed")]
    Redis(#[source] redis::RedisError),
    /// An operation took longer than the operation timeout.
    #[error("revocation Redis operation timed out: {0}")]
    TimedOut(&'static str),
    /// A stored entry cannot be read (written by hand?); the cache is not
    /// updated rather than updated without it.
    #[error("revocation state holds an invalid entry: {0}")]
    InvalidEntry(&'static str),
    /// The cache has not been confirmed in sync within the staleness bound.
    #[error("revocation cache is stale (last in sync {since:?} ago)")]
    Stale {
        /// How long ago it was last in sync; `None` if never.
        since: Option<Duration>,
    },
    /// The store was shut down.
    #[error("revocation store is shut down")]
    ShutDown,
}

impl From<redis::RedisError> for RedisStoreError {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e)
    }
}

impl From<Distrust> for RedisStoreError {
    fn from(d: Distrust) -> Self {
        match d {
            Distrust::Stale(since) => Self::Stale { since },
            Distrust::ShutDown => Self::ShutDown,
        }
    }
}
