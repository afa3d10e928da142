//! The PostgreSQL store's shared sync state.

pub use crate::revocation_sync::SyncHealth;
use crate::revocation_sync::SyncState;

/// The state a store and its tasks share; the sequence is the log's `seq`.
pub(super) type Shared = SyncState<i64>;
