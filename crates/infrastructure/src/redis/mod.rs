//! Redis adapters, for backends that run several instances (feature
//! `redis`).
//!
//! - [`RedisRevocationStore`]: logouts and watermarks in Redis, every change
//!   appended to a stream (the change log) by the same script that changes
//!   the state. Each instance answers
//!   [`check`](tessera_application::ports::RevocationStore::check) from a
//!   local cache that keeps what can matter to an unexpired token, kept in
//!   sync by reading the stream after the last entry it applied (a blocking
//!   `XREAD`: the read is the wake-up, so nothing but the stream, which
//!   Redis ACLs protect, has any say). After a disconnection it reads what
//!   it missed; it reloads whole only when the stream was trimmed past it.
//!   It fails closed when the cache is older than a staleness bound.
//!
//! # Keys
//!
//! Under a prefix (default [`DEFAULT_PREFIX`]):
//!
//! - `{prefix}:log`: the stream, one field `c` per entry
//!   (`logout <session> <until> <at>`, `raise <f|c> <u|t|e> <subject|-> <at>`,
//!   `clear <f|c> <u|t|e> <subject|->`, or `resync`, which makes every
//!   instance reload);
//! - `{prefix}:horizon`: the last entry id trimmed from the stream;
//! - `{prefix}:logout:{session}` and `{prefix}:wm:{f|c}:{u|t|e}:{subject|-}`:
//!   the state, each key expiring when it can no longer matter (a logout at
//!   its end, a watermark when every token it covers is past its absolute
//!   lifetime): what rotation asks;
//! - `{prefix}:logouts` and `{prefix}:watermarks`: sorted sets by event
//!   time, from which a starting instance loads only what can matter to an
//!   unexpired token.
//!
//! The connecting user needs read and write access to these keys and the
//! stream commands; nothing else.
//!
//! - [`RedisUserCache`]: provider-linked users cached in Redis for five
//!   minutes, shared by every instance, in front of the
//!   [`ExternalUserDirectory`](tessera_application::external::ExternalUserDirectory)
//!   that owns them (as `CachedExternalUserDirectory` is, in one process).

mod config;
mod error;
mod revocation;
pub(crate) mod stream;
mod sync;
mod user_cache;

pub use crate::revocation_sync::SyncHealth;
pub use config::{DEFAULT_PREFIX, RedisRevocationConfig};
pub use error::RedisStoreError;
pub use revocation::RedisRevocationStore;
pub use stream::StreamPosition;
pub use user_cache::{DEFAULT_USER_PREFIX, DEFAULT_USER_TTL, RedisUserCache, RedisUserCacheError};
