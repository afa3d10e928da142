//! Ports: what the use cases need from the outside world.
//!
//! Each trait says what an implementation MUST do. Ports on the verification
//! hot path ([`SessionTokenCodec`], [`Clock`], [`RevocationStore::check`]) are
//! synchronous on purpose: verification does no I/O, and the types keep it so.

use std::collections::BTreeSet;
use std::error::Error as StdError;

use async_trait::async_trait;
use tessera_domain::{Capability, Role, SessionId, TenantId, UserId};
use time::OffsetDateTime;

use crate::token::{ClaimsError, SessionToken, SessionTokenClaims};

/// Why a compact JWS was refused, before any claim was read: one
/// vocabulary for session tokens ([`TokenError::Jws`]) and identity
/// providers' tokens ([`ExternalTokenError::Jws`](crate::external::ExternalTokenError::Jws)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsFailure {
    /// The token is longer than the configured cap; nothing was decoded.
    #[error("token is larger than {max} bytes")]
    TooLarge {
        /// The cap, in bytes.
        max: usize,
    },
    /// The token is not a compact JWS with a JSON header and payload.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is `none`, unsupported, not allowed here, or not
    /// the algorithm of the key it names.
    #[error("token algorithm is not accepted for its key")]
    AlgorithmRejected,
    /// The token names no key and several keys could verify it.
    #[error("token names no key id and several keys could verify it")]
    MissingKeyId,
    /// The token names a key that is not known (for a provider: after a
    /// refetch, or within the refetch cooldown).
    #[error("token names an unknown key id")]
    UnknownKeyId,
    /// The header lists critical extensions, which tessera does not support.
    #[error("token header carries critical extensions")]
    CriticalHeader,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    InvalidSignature,
}

impl JwsFailure {
    /// A stable, machine-readable code for this failure, for logs and tools.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "token_too_large",
            Self::Malformed(_) => "token_malformed",
            Self::AlgorithmRejected => "algorithm_rejected",
            Self::MissingKeyId => "missing_kid",
            Self::UnknownKeyId => "unknown_kid",
            Self::CriticalHeader => "critical_header",
            Self::InvalidSignature => "invalid_signature",
        }
    }
}

/// Why a token could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The compact JWS itself is refused: size, structure, header,
    /// algorithm, key or signature.
    #[error(transparent)]
    Jws(#[from] JwsFailure),
    /// The header's `typ` is not that of a tessera session token.
    #[error("token type is not a tessera session token")]
    WrongType,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// A claim is missing, malformed or inconsistent.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The token could not be signed (no signing key, or the key failed).
    #[error("token could not be signed")]
    Signing(#[source] Box<dyn StdError + Send + Sync>),
}

impl TokenError {
    /// A stable, machine-readable code for this failure, for logs and tools.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Jws(failure) => failure.code(),
            Self::WrongType => "wrong_typ",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Claims(_) => "invalid_claim",
            Self::Signing(_) => "signing_failed",
        }
    }
}

/// Encodes session claims into signed tokens and back.
///
/// Implementations MUST check, in `decode`, everything about a token that
/// does not depend on the time: size, structure, header, algorithm and key,
/// signature, type, issuer, audience, and every claim (through the enrich
/// mapper). Time rules and revocation are the use cases' job.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SessionTokenCodec<R: Role>: Send + Sync + 'static {
    /// Signs `claims` into a token.
    ///
    /// # Errors
    ///
    /// [`TokenError::Signing`] when no signing key is configured or signing fails.
    fn encode(&self, claims: &SessionTokenClaims<R>) -> Result<SessionToken, TokenError>;

    /// Verifies a token's signature and parses its claims.
    ///
    /// # Errors
    ///
    /// A [`TokenError`] naming the rule the token breaks.
    fn decode(&self, token: &str) -> Result<SessionTokenClaims<R>, TokenError>;

    /// Whether `token` says, in its unverified header, that it is of this
    /// codec's kind. It grants nothing: it only routes a bearer token to
    /// the session verifier or to an identity provider's when both are
    /// accepted, and a token routed the wrong way fails there. The default
    /// claims every token, so that nothing reaches a provider's verifier.
    fn is_session_token(&self, token: &str) -> bool {
        let _ = token;
        true
    }

    /// The largest token, in bytes, [`decode`](Self::decode) accepts. The
    /// HTTP edge refuses a larger credential before reading it, so that one
    /// setting caps tokens wherever they are read. The default is
    /// [`DEFAULT_MAX_TOKEN_BYTES`].
    fn max_token_bytes(&self) -> usize {
        DEFAULT_MAX_TOKEN_BYTES
    }
}

/// The default cap on a session token's size (8 KiB), checked before
/// anything is decoded.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The current time.
///
/// Implementations MUST be monotonic enough for token lifetimes (wall-clock
/// UTC) and cheap: it is called on every verification.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// New session ids.
///
/// Implementations MUST return a fresh, unpredictable id on every call.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync + 'static {
    /// A new session id.
    fn session_id(&self) -> SessionId;
}

/// A user as the directory knows them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser<R> {
    /// The user.
    pub user_id: UserId,
    /// Their current role.
    pub role: R,
    /// Their current capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// Their tenant, if any.
    pub tenant: Option<TenantId>,
    /// Whether they may sign in at all.
    pub enabled: bool,
}

impl<R> DirectoryUser<R> {
    /// An enabled user with `role`, no capabilities and no tenant; set the
    /// other fields directly.
    #[must_use]
    pub fn new(user_id: UserId, role: R) -> Self {
        Self {
            user_id,
            role,
            capabilities: BTreeSet::new(),
            tenant: None,
            enabled: true,
        }
    }
}

/// Why the user directory could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The directory's backing store failed or is unreachable.
    #[error("user directory is unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// The stored record cannot be turned into a valid user (for example an
    /// unknown role name).
    #[error("user record is invalid")]
    InvalidRecord(#[source] Box<dyn StdError + Send + Sync>),
}

/// Where users' current roles and capabilities live.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserDirectory<R: Role>: Send + Sync + 'static {
    /// Finds a user.
    ///
    /// Implementations MUST return `Ok(None)` for an unknown user, never an error.
    ///
    /// # Errors
    ///
    /// [`DirectoryError`] when the directory cannot answer.
    async fn find(&self, user_id: &UserId) -> Result<Option<DirectoryUser<R>>, DirectoryError>;
}

/// Whom a watermark applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatermarkScope {
    /// Every session of one user.
    User(UserId),
    /// Every session scoped to one tenant.
    Tenant(TenantId),
    /// Every session.
    Everyone,
}

/// What a watermark does to sessions issued at or before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatermarkKind {
    /// They are no longer valid.
    ForceLogout,
    /// They stay valid but must be rotated, so that role and capabilities are
    /// read afresh.
    ClaimsStale,
}

/// Why a session is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationReason {
    /// The session was logged out.
    SessionLoggedOut,
    /// Its user was force-logged-out.
    UserLoggedOut,
    /// Its tenant was force-logged-out.
    TenantLoggedOut,
    /// Everyone was force-logged-out.
    EveryoneLoggedOut,
}

/// A session's standing in the revocation store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Nothing applies: the session stands.
    Active,
    /// The session stands but its claims are stale: rotate it.
    ClaimsStale,
    /// The session is revoked.
    Revoked(RevocationReason),
}

/// The revocation state cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The store's backing state cannot be trusted or reached; verification
    /// MUST fail closed on this.
    #[error("revocation state is unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
}

/// Which session [`RevocationStore::check`] asks about.
#[derive(Debug, Clone, Copy)]
pub struct RevocationQuery<'a> {
    /// The session id (`jti`).
    pub session_id: &'a SessionId,
    /// The user (`sub`).
    pub user_id: &'a UserId,
    /// The tenant, if the session has one.
    pub tenant: Option<&'a TenantId>,
    /// When the token was issued (`iat`).
    pub issued_at: OffsetDateTime,
}

/// Logouts and watermarks.
///
/// A watermark at time `W` applies to tokens with `iat <= W`, compared in
/// whole seconds as `iat` is: a token issued in the same second as a
/// force-logout is refused too (fail closed).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Whether this session is revoked or stale.
    ///
    /// Implementations MUST answer from memory, without I/O: this runs on
    /// every verification. A force-logout wins over claims-stale. When the
    /// in-memory state cannot be trusted (its source unreachable past a
    /// staleness bound), they MUST return [`RevocationError::Unavailable`].
    ///
    /// # Errors
    ///
    /// [`RevocationError::Unavailable`] when the state cannot be trusted.
    fn check<'a>(&self, query: RevocationQuery<'a>) -> Result<RevocationStatus, RevocationError>;

    /// Whether this session is revoked or stale, according to the state
    /// itself rather than a local copy of it: what rotation asks, off the
    /// hot path, before it issues a new token.
    ///
    /// A store whose [`check`](Self::check) answers from a cache that keeps
    /// an entry only while a token it covers can be unexpired MUST answer
    /// here from its authoritative state (the shared tables), which keeps a
    /// session logout until its end and a watermark until every token it
    /// covers is past its absolute lifetime. The default calls `check`, which
    /// is right for a store that is its own authority (in memory).
    ///
    /// # Errors
    ///
    /// [`RevocationError::Unavailable`] when the state cannot be read.
    async fn check_authoritative<'a>(
        &self,
        query: RevocationQuery<'a>,
    ) -> Result<RevocationStatus, RevocationError> {
        self.check(query)
    }

    /// Logs one session out until `until` (after which its tokens are expired anyway).
    ///
    /// # Errors
    ///
    /// [`RevocationError`] when the write fails.
    async fn revoke_session(
        &self,
        session_id: SessionId,
        until: OffsetDateTime,
    ) -> Result<(), RevocationError>;

    /// Sets a watermark; a later one replaces an earlier one of the same
    /// scope and kind, an earlier one never replaces a later one.
    ///
    /// # Errors
    ///
    /// [`RevocationError`] when the write fails.
    async fn set_watermark(
        &self,
        scope: WatermarkScope,
        kind: WatermarkKind,
        at: OffsetDateTime,
    ) -> Result<(), RevocationError>;

    /// Removes a watermark of this scope and kind, if any.
    ///
    /// # Errors
    ///
    /// [`RevocationError`] when the write fails.
    async fn clear_watermark(
        &self,
        scope: WatermarkScope,
        kind: WatermarkKind,
    ) -> Result<(), RevocationError>;
}
