//! The session token as a secret string, and the claims use cases reason about.

use std::error::Error as StdError;
use std::fmt;

use tessera_domain::{IdError, Role, RoleError, SessionEntity, SessionError};
use time::OffsetDateTime;

/// A signed session token, as sent to and received from clients.
///
/// Its `Debug` and `Display` print `SessionToken(**redacted**)`: a token is a
/// bearer credential and never belongs in a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// Wraps an encoded token.
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The encoded token.
    ///
    /// **Security:** whoever holds this string holds the session. Send it only
    /// to its owner (a cookie or a response body over TLS) and never log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(**redacted**)")
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(**redacted**)")
    }
}

/// The claims of a session token, typed: the session it carries and the
/// optional not-before time.
///
/// Built by the token codec from the wire claims (see the infrastructure's
/// enrich mapper) or from a [`SessionEntity`] when issuing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTokenClaims<R> {
    session: SessionEntity<R>,
    not_before: Option<OffsetDateTime>,
}

impl<R: Role> SessionTokenClaims<R> {
    /// Claims for `session`, valid from `not_before` when given.
    #[must_use]
    pub fn new(session: SessionEntity<R>, not_before: Option<OffsetDateTime>) -> Self {
        Self {
            session,
            not_before,
        }
    }

    /// The session the token carries.
    #[must_use]
    pub fn session(&self) -> &SessionEntity<R> {
        &self.session
    }

    /// The `nbf` claim, when present.
    #[must_use]
    pub fn not_before(&self) -> Option<OffsetDateTime> {
        self.not_before
    }

    /// The session, dropping the rest.
    #[must_use]
    pub fn into_session(self) -> SessionEntity<R> {
        self.session
    }
}

/// A claim of a session token that is missing, malformed or inconsistent.
///
/// Every variant names the claim at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// The payload is not a JSON object of the expected shape, or a claim has
    /// the wrong JSON type, or a member appears twice.
    #[error("claim `{claim}` is malformed")]
    Malformed {
        /// The claim at fault (`payload` when no single claim is).
        claim: &'static str,
        /// The parser's report.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A required claim is absent.
    #[error("claim `{0}` is missing")]
    Missing(&'static str),
    /// `sub` or `jti` is not a valid identifier, or `tid`, `caps`, `acr`
    /// or `amr` hold an invalid value (or `amr` too many).
    #[error("claim `{claim}` is invalid")]
    InvalidId {
        /// The claim at fault.
        claim: &'static str,
        /// Why the identifier was refused.
        #[source]
        source: IdError,
    },
    /// The role is empty or unknown to the application's role type.
    #[error("claim `role` is invalid")]
    Role(#[source] RoleError),
    /// A time claim is outside the representable range.
    #[error("claim `{0}` is out of range")]
    OutOfRange(&'static str),
    /// The claims break an invariant of the session (for example `exp <= iat`).
    #[error("claim `{claim}` is inconsistent")]
    Inconsistent {
        /// The claim at fault.
        claim: &'static str,
        /// The invariant that does not hold.
        #[source]
        source: SessionError,
    },
}

impl ClaimsError {
    /// The claim at fault.
    #[must_use]
    pub fn claim(&self) -> &'static str {
        match self {
            Self::Malformed { claim, .. }
            | Self::InvalidId { claim, .. }
            | Self::Inconsistent { claim, .. } => claim,
            Self::Missing(claim) | Self::OutOfRange(claim) => claim,
            Self::Role(_) => "role",
        }
    }
}
