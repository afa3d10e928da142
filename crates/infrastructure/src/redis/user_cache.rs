//! [`RedisUserCache`]: provider-linked users cached in Redis, shared by
//! every instance, in front of an [`ExternalUserDirectory`].

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tessera_application::external::{
    ExternalProfile, ExternalSubject, ExternalUser, ExternalUserDirectory, UpsertOutcome,
};
use tessera_application::ports::{DirectoryError, DirectoryUser};
use tessera_domain::{Capability, Role, TenantId, UserId};
use time::OffsetDateTime;

/// How long an entry lives unless configured otherwise: five minutes.
pub const DEFAULT_USER_TTL: Duration = Duration::from_secs(300);

/// The key prefix used unless configured otherwise.
pub const DEFAULT_USER_PREFIX: &str = "tessera:users";

/// Stores `ARGV[2]` for `ARGV[3]` seconds at `KEYS[1]` only if the
/// account's write counter `KEYS[2]` still reads `ARGV[1]`: a lookup that
/// raced with a write (on any instance) caches nothing.
const PUT_IF_UNCHANGED: &str = r"
local v = redis.call('GET', KEYS[2]) or '0'
if v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
";

/// A user as cached (JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    user_id: String,
    role: String,
    capabilities: Vec<String>,
    tenant: Option<String>,
    enabled: bool,
    email: Option<String>,
    name: Option<String>,
}

/// Why a cache entry or the cache failed; kept inside [`DirectoryError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisUserCacheError {
    /// Redis refused an operation or could not be reached.
    #[error("user cache Redis operation failed")]
    Redis(#[source] redis::RedisError),
    /// An operation took longer than the timeout.
    #[error("user cache Redis operation timed out")]
    TimedOut,
}

/// Provider-linked users kept in Redis for a while (default five minutes),
/// shared by every instance, in front of the directory that owns them.
///
/// - A lookup reads Redis, and on a miss the directory, then caches what
///   it found, unless a write to that account (through any instance)
///   started meanwhile: each account has a write counter, bumped before
///   every write, and an entry is stored only if the counter is unchanged.
/// - Every upsert and delete through it drops the entry before writing the
///   directory; if that fails, the write is refused
///   ([`DirectoryError::Unavailable`]) rather than leaving a stale role
///   cached (a provider retries its webhooks).
/// - When Redis cannot answer a lookup, the directory answers instead.
/// - Unknown accounts are not cached.
pub struct RedisUserCache<R> {
    inner: Arc<dyn ExternalUserDirectory<R>>,
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    role: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for RedisUserCache<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisUserCache")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<R: Role> RedisUserCache<R> {
    /// A cache in front of `inner` on `conn`, under [`DEFAULT_USER_PREFIX`],
    /// entries living [`DEFAULT_USER_TTL`], each Redis operation given at
    /// most a second.
    #[must_use]
    pub fn new(inner: Arc<dyn ExternalUserDirectory<R>>, conn: ConnectionManager) -> Self {
        Self {
            inner,
            conn,
            prefix: DEFAULT_USER_PREFIX.to_owned(),
            ttl: DEFAULT_USER_TTL,
            timeout: Duration::from_secs(1),
            role: PhantomData,
        }
    }

    /// A cache in front of `inner` on the Redis at `url`
    /// (`redis://[:password@]host[:port][/db]`, or `rediss://` for TLS
    /// where the `redis` crate was built with it), with [`new`](Self::new)'s
    /// defaults: what a backend needs to share lookups among its
    /// instances, without a Redis client crate of its own. The connection
    /// reconnects by itself; each operation, connecting included, is given
    /// at most a second.
    ///
    /// # Errors
    ///
    /// [`RedisUserCacheError::Redis`] for a URL that does not parse or a
    /// server that refuses the connection; [`RedisUserCacheError::TimedOut`]
    /// when connecting takes longer than the timeout.
    pub async fn connect(
        inner: Arc<dyn ExternalUserDirectory<R>>,
        url: &str,
    ) -> Result<Self, RedisUserCacheError> {
        let client = redis::Client::open(url).map_err(RedisUserCacheError::Redis)?;
        let timeout = Duration::from_secs(1);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn =
            tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| RedisUserCacheError::TimedOut)?
                .map_err(RedisUserCacheError::Redis)?;
        Ok(Self::new(inner, conn))
    }

    /// Keys under `prefix` (instances sharing the cache MUST share it).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long an entry lives (at least a second).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The entry's key and the account's write counter's key. The issuer
    /// and subject are length-prefixed, so that no two accounts share a key.
    fn keys(&self, issuer: &str, subject: &ExternalSubject) -> (String, String) {
        let account = format!("{}:{issuer}:{}", issuer.len(), subject.as_str());
        (
            format!("{}:user:{account}", self.prefix),
            format!("{}:ver:{account}", self.prefix),
        )
    }

    async fn timed<T>(
        &self,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisUserCacheError> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(result) => result.map_err(RedisUserCacheError::Redis),
            Err(_) => Err(RedisUserCacheError::TimedOut),
        }
    }

    /// The cached entry and the account's write counter; `None` for the
    /// entry on a miss or an entry that cannot be read.
    async fn get(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<(Option<ExternalUser<R>>, String), RedisUserCacheError> {
        let (entry, version) = self.keys(issuer, subject);
        let mut conn = self.conn.clone();
        let (cached, version): (Option<String>, Option<String>) = self
            .timed(redis::pipe().get(entry).get(version).query_async(&mut conn))
            .await?;
        let user = cached.and_then(|json| decode(&json, issuer, subject));
        Ok((user, version.unwrap_or_else(|| "0".to_owned())))
    }

    /// Caches `user` if the account's write counter still reads `version`.
    async fn put(&self, user: &ExternalUser<R>, version: &str) {
        let (entry, counter) = self.keys(&user.issuer, &user.subject);
        let mut conn = self.conn.clone();
        let stored: Result<i64, _> = self
            .timed(
                redis::Script::new(PUT_IF_UNCHANGED)
                    .key(entry)
                    .key(counter)
                    .arg(version)
                    .arg(encode(user))
                    .arg(self.ttl.as_secs())
                    .invoke_async(&mut conn),
            )
            .await;
        if let Err(e) = stored {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "user not cached in Redis"
            );
        }
    }

    /// Bumps the account's write counter and drops its entry; returns the
    /// counter's new value.
    async fn invalidate(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<String, DirectoryError> {
        let (entry, counter) = self.keys(issuer, subject);
        let mut conn = self.conn.clone();
        // The counter outlives any entry stored under an older value.
        let keep = self.ttl.as_secs().saturating_mul(2).max(60);
        let (version, (), ()): (i64, (), ()) = self
            .timed(
                redis::pipe()
                    .atomic()
                    .incr(&counter, 1)
                    .expire(&counter, i64::try_from(keep).unwrap_or(i64::MAX))
                    .del(entry)
                    .query_async(&mut conn),
            )
            .await
            .map_err(|e| DirectoryError::Unavailable(Box::new(e)))?;
        Ok(version.to_string())
    }
}

fn encode<R: Role>(user: &ExternalUser<R>) -> String {
    let cached = Cached {
        user_id: user.user.user_id.to_string(),
        role: user.user.role.name().to_owned(),
        capabilities: user
            .user
            .capabilities
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        tenant: user.user.tenant.as_ref().map(|t| t.as_str().to_owned()),
        enabled: user.user.enabled,
        email: user.email.clone(),
        name: user.name.clone(),
    };
    // Strings and booleans only: serialisation cannot fail.
    serde_json::to_string(&cached).unwrap_or_default()
}

/// A cached entry, parsed through the same constructors as any stored
/// user; `None` (a miss) for one that does not parse.
fn decode<R: Role>(json: &str, issuer: &str, subject: &ExternalSubject) -> Option<ExternalUser<R>> {
    let cached: Cached = serde_json::from_str(json).ok()?;
    let capabilities = cached
        .capabilities
        .iter()
        .map(|c| Capability::parse(c).ok())
        .collect::<Option<BTreeSet<_>>>()?;
    let tenant = match cached.tenant {
        Some(t) => Some(TenantId::parse(&t).ok()?),
        None => None,
    };
    Some(ExternalUser {
        user: DirectoryUser {
            user_id: UserId::parse(&cached.user_id).ok()?,
            role: R::parse(&cached.role).ok()?,
            capabilities,
            tenant,
            enabled: cached.enabled,
        },
        issuer: issuer.to_owned(),
        subject: subject.clone(),
        email: cached.email,
        name: cached.name,
    })
}

#[async_trait]
impl<R: Role> ExternalUserDirectory<R> for RedisUserCache<R> {
    async fn find_by_external_id(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        let version = match self.get(issuer, subject).await {
            Ok((Some(user), _)) => return Ok(Some(user)),
            Ok((None, version)) => Some(version),
            Err(e) => {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "user cache unavailable; asking the directory"
                );
                None
            }
        };
        let found = self.inner.find_by_external_id(issuer, subject).await?;
        if let (Some(user), Some(version)) = (&found, version) {
            self.put(user, &version).await;
        }
        Ok(found)
    }

    async fn upsert_external(
        &self,
        profile: ExternalProfile<R>,
    ) -> Result<UpsertOutcome<R>, DirectoryError> {
        let version = self.invalidate(&profile.issuer, &profile.subject).await?;
        let outcome = self.inner.upsert_external(profile).await?;
        if let Some(stored) = outcome.stored() {
            self.put(stored, &version).await;
        }
        Ok(outcome)
    }

    async fn delete_external(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
        as_of: Option<OffsetDateTime>,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError> {
        self.invalidate(issuer, subject).await?;
        self.inner.delete_external(issuer, subject, as_of).await
    }
}
