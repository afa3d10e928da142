//! Identity-provider ports: verifying a provider's token, the local record
//! of provider users, and the user events a provider sends.
//!
//! A backend that signs users in with a hosted identity provider (Clerk,
//! Auth0, Supabase, Keycloak, Cognito) verifies the provider's token with an
//! [`ExternalTokenVerifier`], keeps a local user per provider account in an
//! [`ExternalUserDirectory`], and applies the provider's webhooks through a
//! [`UserEventDecoder`]. The use cases that combine them are
//! [`ExchangeToken`](crate::ExchangeToken) and
//! [`ApplyUserEvent`](crate::ApplyUserEvent).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tessera_domain::{Authentication, Role, RoleError, SessionId};
use time::OffsetDateTime;

use crate::ports::{DirectoryError, DirectoryUser, JwsFailure};
use crate::usecases::admission::Refusal;

/// The longest provider subject (`sub`) accepted, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 255;

/// A provider's account id for a user (its `sub`): non-empty, at most
/// [`MAX_SUBJECT_BYTES`] bytes, no control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalSubject(Box<str>);

/// Why a provider subject was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// The subject is empty.
    #[error("subject is empty")]
    Empty,
    /// The subject is longer than [`MAX_SUBJECT_BYTES`].
    #[error("subject is longer than {MAX_SUBJECT_BYTES} bytes")]
    TooLong,
    /// The subject contains a control character.
    #[error("subject contains a control character")]
    ControlCharacter,
}

impl ExternalSubject {
    /// Parses a provider subject.
    ///
    /// # Errors
    ///
    /// [`SubjectError`] for an empty, overlong or control-character subject.
    pub fn parse(value: &str) -> Result<Self, SubjectError> {
        if value.is_empty() {
            return Err(SubjectError::Empty);
        }
        if value.len() > MAX_SUBJECT_BYTES {
            return Err(SubjectError::TooLong);
        }
        if value.chars().any(char::is_control) {
            return Err(SubjectError::ControlCharacter);
        }
        Ok(Self(value.into()))
    }

    /// The subject as the provider wrote it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ExternalSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalSubject({:?})", self.0)
    }
}

impl fmt::Display for ExternalSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a provider token is for: the kind of the token profile it
/// matched. One provider (one issuer, one key set) may issue both kinds,
/// each with its own audience, `typ` and claim rules.
///
/// Which kinds an entry point takes is its own decision:
/// [`ExchangeToken`](crate::ExchangeToken) takes both by default
/// ([`ExchangeToken::with_token_uses`](crate::ExchangeToken::with_token_uses)
/// narrows it), and the hybrid path of
/// [`DecideAdmission`](crate::DecideAdmission) takes access tokens only:
/// an ID token says who signed in at a client, it is not a credential for
/// an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenUse {
    /// An access token for this API: RFC 9068 (`typ` `at+jwt`), or a
    /// provider's session token used as one (Clerk's), audience the API
    /// (or bound by `azp`).
    Access,
    /// An OpenID Connect ID token: audience the client id, `typ` absent or
    /// `JWT`.
    Id,
}

impl TokenUse {
    /// The kind's name, for logs: `access` or `id`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Id => "id",
        }
    }
}

/// Who a provider token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    /// A person who signed in.
    User,
    /// A client acting for itself (OAuth client credentials): its `sub` is
    /// its client id (the `client_id` or `azp` claim), or a claim the
    /// token profile names says so (Auth0's `gty`).
    Machine,
}

/// Why a verified provider token's subject is not taken: the token is
/// authentic and valid, but its profile does not accept who it speaks for.
/// Not a credential problem, so a client sees 403 with the refusal's code,
/// not 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectRefusal {
    /// A machine token (client credentials) where the profile takes users
    /// only, its default.
    #[error("a machine (client-credentials) token is not accepted here")]
    MachineToken,
    /// A user's token where the profile takes machines only.
    #[error("a user's token is not accepted here")]
    UserToken,
    /// A claim the profile requires is absent, or holds another value.
    #[error("required claim `{path}` is absent or holds another value")]
    RequiredClaim {
        /// The configured path of the claim.
        path: String,
    },
}

impl SubjectRefusal {
    /// A stable, machine-readable code: `machine_token`, `user_token` or
    /// `required_claim`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MachineToken => "machine_token",
            Self::UserToken => "user_token",
            Self::RequiredClaim { .. } => "required_claim",
        }
    }
}

/// Who a provider says a user is: the identity a verified provider token
/// carries, with the role already mapped to the application's role type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity<R> {
    /// The provider's issuer (`iss`), which scopes `subject`.
    pub issuer: String,
    /// The provider's account id (`sub`).
    pub subject: ExternalSubject,
    /// What the token is for: the kind of the profile it matched.
    pub token_use: TokenUse,
    /// Whether the token speaks for a user or for a machine.
    pub subject_kind: SubjectKind,
    /// The application role the provider's role claim maps to.
    pub role: R,
    /// The user's email, when the provider's mapping names one.
    pub email: Option<String>,
    /// The user's display name, when the provider's mapping names one.
    pub name: Option<String>,
    /// When the provider issued the token (`iat`).
    pub issued_at: OffsetDateTime,
    /// When the user authenticated at the provider (`auth_time`), if said.
    pub authenticated_at: Option<OffsetDateTime>,
    /// How the user authenticated at the provider (`acr`, `amr`), as far
    /// as the token says.
    pub authentication: Authentication,
    /// When the provider's token expires (`exp`).
    pub expires_at: OffsetDateTime,
}

impl<R> ExternalIdentity<R> {
    /// When the user authenticated: `auth_time` when the provider said,
    /// otherwise the token's `iat`, and never later than `iat` (a token is
    /// minted after its user authenticated; verifiers allow an `auth_time`
    /// up to the clock-skew leeway past `iat`, and a session must not start
    /// later than the token that opened it, or the leeway would count
    /// twice when the session is established).
    #[must_use]
    pub fn authentication_time(&self) -> OffsetDateTime {
        self.authenticated_at
            .map_or(self.issued_at, |at| at.min(self.issued_at))
    }

    /// The id of the session this token stands for:
    /// [`SessionId::derived`] from the issuer, the subject and `iat`, so
    /// that every use of one token (each request on the hybrid path, its
    /// exchange) names one session, which a logout of that id ends.
    #[must_use]
    pub fn session_id(&self) -> SessionId {
        SessionId::derived(&[
            self.issuer.as_bytes(),
            self.subject.as_str().as_bytes(),
            &self.issued_at.unix_timestamp().to_be_bytes(),
        ])
    }
}

/// Why a provider's role claim cannot be turned into an application role.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoleMappingError {
    /// The role claim is absent (or an empty array) and the provider's
    /// policy is to reject such tokens.
    #[error("role claim `{path}` is missing")]
    Missing {
        /// The configured path of the role claim.
        path: String,
    },
    /// The role claim holds a role the mapping table does not know. Never
    /// mapped to a default.
    #[error("role claim holds a role with no mapping")]
    Unmapped(#[source] RoleError),
    /// The role claim is neither a string nor an array of strings.
    #[error("role claim `{path}` is not a string or an array of strings")]
    WrongType {
        /// The configured path of the role claim.
        path: String,
    },
}

/// Why a provider's token was refused.
///
/// Every variant names the rule that failed; none carries token contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalTokenError {
    /// The compact JWS itself is refused: size, structure, header, an
    /// algorithm off the provider's allow-list, key or signature.
    #[error(transparent)]
    Jws(#[from] JwsFailure),
    /// No configured provider has the token's issuer.
    #[error("token issuer is not a configured provider")]
    UnknownIssuer,
    /// The header's `typ` is not one a token profile of the provider
    /// takes.
    #[error("token type is not the provider's configured type")]
    WrongType,
    /// `aud` does not include an audience of a profile the token's `typ`
    /// fits.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The token fits more than one of the provider's token profiles (by
    /// `typ` and `aud`): it is refused rather than read by either.
    #[error("token fits more than one token profile")]
    AmbiguousProfile,
    /// The token is valid, but its profile does not accept its subject.
    #[error(transparent)]
    Subject(#[from] SubjectRefusal),
    /// `azp` is missing or not among the allowed parties.
    #[error("token authorized party is not allowed")]
    WrongAuthorizedParty,
    /// `exp` has passed, beyond the leeway.
    #[error("token has expired")]
    Expired,
    /// `nbf` is not reached yet, beyond the leeway.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future beyond the leeway.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// A required claim is absent.
    #[error("claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an invalid value.
    #[error("claim `{claim}` is invalid")]
    InvalidClaim {
        /// The claim at fault (`payload` when no single claim is).
        claim: &'static str,
        /// Why.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The role claim cannot be mapped.
    #[error(transparent)]
    Role(#[from] RoleMappingError),
    /// The provider's keys cannot be had: never fetched, or unreachable past
    /// the staleness bound. Verification fails closed.
    #[error("the provider's keys are unavailable")]
    KeysUnavailable(#[source] Box<dyn StdError + Send + Sync>),
}

impl ExternalTokenError {
    /// A stable, machine-readable code for this failure, for logs and tools.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Jws(failure) => failure.code(),
            Self::UnknownIssuer => "unknown_issuer",
            Self::WrongType => "wrong_typ",
            Self::WrongAudience => "wrong_audience",
            Self::AmbiguousProfile => "ambiguous_profile",
            Self::Subject(refusal) => refusal.code(),
            Self::WrongAuthorizedParty => "wrong_azp",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::Role(RoleMappingError::Missing { .. }) => "missing_role",
            Self::Role(_) => "unmapped_role",
            Self::KeysUnavailable(_) => "keys_unavailable",
        }
    }

    /// Whether the failure is the verifier's, not the token's: the request
    /// deserves a "try again later" (503), not a "sign in again" (401).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable(_))
    }

    /// How a request carrying the refused token is answered, wherever a
    /// provider token is taken (exchange, the hybrid path):
    /// [`Refusal::Unavailable`] (503) when the keys cannot be had,
    /// [`Refusal::Subject`] (403) for an authentic token whose subject its
    /// profile does not accept, otherwise a refused credential (401
    /// `invalid_token`).
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::KeysUnavailable(_) => Refusal::Unavailable,
            Self::Subject(refusal) => Refusal::Subject(refusal.clone()),
            _ => Refusal::Unauthenticated { refused: true },
        }
    }
}

/// Verifies identity-provider tokens and maps their claims.
///
/// Implementations MUST check the signature against the keys of the
/// provider that issued the token and no other, the provider's algorithm
/// allow-list, `iss`, match the token to exactly one of the provider's
/// token profiles (refusing a token that fits none or several), and hold
/// it to that profile's rules: `aud`, `azp` (when configured), `typ`, the
/// subjects it accepts and the claims it requires; check
/// `exp`/`nbf`/`iat` with leeway, and map the role fail-closed.
/// With keys in hand they MUST do no I/O; when keys cannot be had they MUST
/// fail closed with [`ExternalTokenError::KeysUnavailable`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ExternalTokenVerifier<R: Role>: Send + Sync + 'static {
    /// Verifies `token` and returns who it says the user is.
    ///
    /// # Errors
    ///
    /// An [`ExternalTokenError`] naming the rule the token breaks, or
    /// [`ExternalTokenError::KeysUnavailable`].
    async fn verify(&self, token: &str) -> Result<ExternalIdentity<R>, ExternalTokenError>;
}

/// What a provider says about one of its users, to create or update the
/// local record with.
///
/// Webhooks arrive at least once and in no particular order, and tokens
/// outlive the changes made after they were minted, so a profile carries
/// [`as_of`](Self::as_of): the instant at the provider that it describes,
/// and whether a webhook or a token says so. The directory orders profiles
/// by it (see [`ExternalUserDirectory::upsert_external`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalProfile<R> {
    /// The provider's issuer.
    pub issuer: String,
    /// The provider's account id.
    pub subject: ExternalSubject,
    /// The application role.
    pub role: R,
    /// Email, if known.
    pub email: Option<String>,
    /// Display name, if known.
    pub name: Option<String>,
    /// Whether the user may sign in; `None` keeps the stored value (a new
    /// record is enabled).
    pub enabled: Option<bool>,
    /// The provider's instant this profile describes, and where it comes
    /// from (see [`AsOf`]).
    pub as_of: AsOf,
}

impl<R: Role> ExternalProfile<R> {
    /// The profile a verified token describes, as of the token's `iat`
    /// ([`AsOf::Token`]), enabled state unchanged.
    #[must_use]
    pub fn from_identity(identity: &ExternalIdentity<R>) -> Self {
        Self {
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            role: identity.role.clone(),
            email: identity.email.clone(),
            name: identity.name.clone(),
            enabled: None,
            as_of: AsOf::Token(identity.issued_at),
        }
    }
}

/// The instant at the provider an [`ExternalProfile`] describes, by where
/// the profile comes from, which decides what it may do to the stored
/// record (the [ordering rules](ExternalUserDirectory#ordering-and-deletions)).
///
/// A token's claims and a webhook's payload both describe the user at an
/// instant, but only a webhook may recreate a deleted user: the two
/// instants come from different parts of the provider (and possibly
/// different clocks), so a token minted just before the deletion may carry
/// an instant just after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Not known (a profile read from the provider's user API at request
    /// time): written over a live record whatever the record reflects,
    /// never over a deleted account's tombstone. A webhook is never
    /// undated: without an instant in its payload it is dated by its
    /// delivery ([`AsOf::Delivery`]).
    Unknown,
    /// When the provider last changed the user, as its webhooks say
    /// (Clerk's `updated_at`). It MUST NOT be later than that change, or a
    /// stale profile could win over a newer one. Ordered against the
    /// record, recorded as the record's instant when written, and the only
    /// kind that recreates a deleted account (when strictly newer than the
    /// deletion).
    Provider(OffsetDateTime),
    /// When the provider sent the webhook that carries the profile, for a
    /// payload that says nothing of when the user changed: the delivery's
    /// signed timestamp (`webhook-timestamp`), rounded up to the next whole
    /// second, at or after the change it reports. Ordered against the
    /// record and recorded as the record's instant like a provider instant,
    /// so that a token minted before the change it reports (an admin token
    /// after a demotion) is stale; but, being the time of one delivery
    /// attempt rather than of the change (a retry of an older update is
    /// sent later), it never recreates a deleted account.
    Delivery(OffsetDateTime),
    /// When the provider minted the token the profile was read from (its
    /// `iat`; providers compute a token's claims when they mint it).
    /// Ordered against the record like a provider instant (older than what
    /// the record reflects: stale), but never recorded as the record's
    /// instant, so that a token cannot make a later webhook look stale,
    /// and never recreates a deleted account, whatever its instant.
    Token(OffsetDateTime),
}

impl AsOf {
    /// The instant a profile is ordered by, whatever its source; `None`
    /// when unknown.
    #[must_use]
    pub fn instant(self) -> Option<OffsetDateTime> {
        match self {
            Self::Unknown => None,
            Self::Provider(at) | Self::Delivery(at) | Self::Token(at) => Some(at),
        }
    }

    /// The instant a write of the profile records as the record's: a
    /// webhook's ([`AsOf::Provider`] or [`AsOf::Delivery`]), never a
    /// token's.
    #[must_use]
    pub fn recorded_instant(self) -> Option<OffsetDateTime> {
        match self {
            Self::Provider(at) | Self::Delivery(at) => Some(at),
            Self::Unknown | Self::Token(_) => None,
        }
    }

    /// The instant that may outdate a deletion: the provider's own instant
    /// of the user's state ([`AsOf::Provider`]) only.
    #[must_use]
    pub fn provider_instant(self) -> Option<OffsetDateTime> {
        match self {
            Self::Provider(at) => Some(at),
            Self::Unknown | Self::Delivery(_) | Self::Token(_) => None,
        }
    }
}

/// A local user linked to a provider account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUser<R> {
    /// The local user, as the session use cases see it.
    pub user: DirectoryUser<R>,
    /// The provider's issuer.
    pub issuer: String,
    /// The provider's account id.
    pub subject: ExternalSubject,
    /// Email, if known.
    pub email: Option<String>,
    /// Display name, if known.
    pub name: Option<String>,
}

/// A profile written by an upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted<R> {
    /// The record as stored now.
    pub current: ExternalUser<R>,
    /// The record before, or `None` when this upsert created it.
    pub previous: Option<ExternalUser<R>>,
}

/// What [`ExternalUserDirectory::upsert_external`] did with a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpsertOutcome<R> {
    /// The profile was written: the record created or updated.
    Written(Upserted<R>),
    /// The profile is older than what the record already reflects: nothing
    /// was written. Holds the record as stored.
    Stale(ExternalUser<R>),
    /// The provider deleted the account, and the profile is not a
    /// webhook's newer than the deletion ([`AsOf::Provider`]): nothing was
    /// written and there is no local user.
    Deleted {
        /// The instant the directory records for the deletion.
        deleted_as_of: OffsetDateTime,
    },
}

impl<R> UpsertOutcome<R> {
    /// The record as stored after the upsert: the written one, or the stale
    /// profile's untouched one; `None` for a deleted account.
    #[must_use]
    pub fn stored(&self) -> Option<&ExternalUser<R>> {
        match self {
            Self::Written(upserted) => Some(&upserted.current),
            Self::Stale(stored) => Some(stored),
            Self::Deleted { .. } => None,
        }
    }
}

/// How long a directory keeps the tombstone of a deleted provider account
/// unless configured otherwise: 30 days, far longer than any provider
/// retries a webhook or lets a token live.
pub const DEFAULT_TOMBSTONE_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Local users linked to provider accounts, found by the provider's id.
///
/// This is a separate port from [`UserDirectory`](crate::ports::UserDirectory)
/// so that adapters can add it without changing that one; an adapter
/// usually implements both, so that rotation finds linked users.
///
/// # Ordering and deletions
///
/// A provider's webhooks arrive at least once and out of order, and its
/// tokens outlive the changes made after they were minted, so writes are
/// ordered by the provider's own instants ([`AsOf`]), not by arrival.
/// Implementations MUST:
///
/// - remember, per account, the latest webhook instant they applied
///   ([`AsOf::recorded_instant`]: [`AsOf::Provider`] or
///   [`AsOf::Delivery`]; an upsert of another kind leaves it as it is: a
///   token's instant comes from another clock than the webhooks', and must
///   not make a later webhook look stale);
/// - ignore an upsert whose instant ([`AsOf::instant`], a webhook's or a
///   token's) is older than that ([`UpsertOutcome::Stale`], the stored
///   record unchanged), and apply one whose instant is equal (a retried
///   delivery is applied again, to the same effect) or newer, or unknown
///   ([`AsOf::Unknown`]);
/// - on a deletion, remove the user and keep a **tombstone** of the
///   account recording the deletion's instant: the deletion's `as_of`, or
///   the time the directory applies it when it has none, and never earlier
///   than the instant the record reflected or an earlier deletion recorded
///   (a deletion always wins over what was seen before it). A deletion of
///   an unknown account leaves a tombstone too, since its `user.created`
///   may still be on its way;
/// - refuse ([`UpsertOutcome::Deleted`]) an upsert on a tombstone unless
///   it is an [`AsOf::Provider`] strictly newer than the deletion, in which
///   case a new user (with a new local id) is created. A token's profile
///   ([`AsOf::Token`]) never recreates a deleted user, whatever its `iat`:
///   a deleted user's provider token, still unexpired, must not bring them
///   back, even if the provider's clocks put its minting after the
///   deletion. Nor does a profile of unknown instant, nor one dated by its
///   delivery ([`AsOf::Delivery`]: a retried older update is delivered
///   after the deletion);
/// - keep each tombstone at least for their retention period (default
///   [`DEFAULT_TOMBSTONE_RETENTION`]), and then MAY forget it, after which
///   the account is unknown again.
///
/// Implementations may keep instants at a coarser precision than
/// nanoseconds (PostgreSQL keeps microseconds) and compare them at that
/// precision.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ExternalUserDirectory<R: Role>: Send + Sync + 'static {
    /// Finds the local user linked to `subject` at `issuer`.
    ///
    /// Implementations MUST return `Ok(None)` for an unknown account.
    ///
    /// # Errors
    ///
    /// [`DirectoryError`] when the directory cannot answer.
    async fn find_by_external_id(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError>;

    /// Creates the local user for a provider account, or updates it (role,
    /// email, name, and `enabled` when given), unless the profile is older
    /// than the record ([`UpsertOutcome::Stale`]) or the account was
    /// deleted ([`UpsertOutcome::Deleted`]), as the
    /// [ordering rules](ExternalUserDirectory#ordering-and-deletions) say.
    /// A new user gets a fresh local id; an existing one keeps its id,
    /// capabilities and tenant.
    ///
    /// Implementations MUST be race-safe: concurrent first upserts of one
    /// `(issuer, subject)` create exactly one record, and every caller gets
    /// that record back; an upsert and a deletion of one account take
    /// effect one after the other, never interleaved.
    ///
    /// # Errors
    ///
    /// [`DirectoryError`] when the directory cannot write.
    async fn upsert_external(
        &self,
        profile: ExternalProfile<R>,
    ) -> Result<UpsertOutcome<R>, DirectoryError>;

    /// Removes the local user linked to a provider account, returning it if
    /// there was one, and leaves a tombstone of the account recording the
    /// deletion at `as_of` (or, when `None`, at the time the directory
    /// applies it), as the
    /// [ordering rules](ExternalUserDirectory#ordering-and-deletions) say.
    ///
    /// # Errors
    ///
    /// [`DirectoryError`] when the directory cannot write.
    async fn delete_external(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
        as_of: Option<OffsetDateTime>,
    ) -> Result<Option<ExternalUser<R>>, DirectoryError>;
}

/// A change to a user at the provider, as its webhooks report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent<R> {
    /// The user was created or updated.
    Upserted(ExternalProfile<R>),
    /// The user was deleted.
    Deleted {
        /// The provider's issuer.
        issuer: String,
        /// The provider's account id.
        subject: ExternalSubject,
        /// When the provider deleted the user, or any instant after it
        /// (never before: an instant too early would let a stale update
        /// recreate the user); `None` when unknown, and the directory
        /// records the time it applies the deletion.
        as_of: Option<OffsetDateTime>,
    },
    /// An event the application does not act on (another event type).
    Ignored,
}

impl<R> UserEvent<R> {
    /// The event with what its payload left undated dated by its delivery:
    /// `delivered`, the delivery's signed timestamp rounded up to the next
    /// whole second, which is at or after anything the delivery reports.
    /// An upsert of unknown instant becomes [`AsOf::Delivery`]; a deletion
    /// without an instant takes `delivered` as its instant. Instants the
    /// payload carries are kept.
    #[must_use]
    pub fn dated_by_delivery(self, delivered: OffsetDateTime) -> Self {
        match self {
            Self::Upserted(mut profile) => {
                if profile.as_of == AsOf::Unknown {
                    profile.as_of = AsOf::Delivery(delivered);
                }
                Self::Upserted(profile)
            }
            Self::Deleted {
                issuer,
                subject,
                as_of,
            } => Self::Deleted {
                issuer,
                subject,
                as_of: as_of.or(Some(delivered)),
            },
            Self::Ignored => Self::Ignored,
        }
    }
}

/// Why a webhook payload cannot be read as a user event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserEventError {
    /// The payload is not JSON of the expected shape; the text names the
    /// part at fault.
    #[error("webhook payload is malformed: {0}")]
    Malformed(&'static str),
    /// The payload's role cannot be mapped.
    #[error(transparent)]
    Role(#[from] RoleMappingError),
}

/// Reads a provider's webhook payloads (already authenticated) as user
/// events.
///
/// Implementations MUST map roles exactly as the provider's token verifier
/// does, and MUST return [`UserEvent::Ignored`] for event types they do
/// not handle rather than an error.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait UserEventDecoder<R: Role>: Send + Sync + 'static {
    /// Reads one payload.
    ///
    /// # Errors
    ///
    /// [`UserEventError`] for a payload that cannot be read.
    fn decode(&self, payload: &[u8]) -> Result<UserEvent<R>, UserEventError>;
}

/// Why the provider's user API could not say who a user is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderUserError {
    /// The API is unreachable, timed out, or answered with a server error.
    #[error("the provider's user API is unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// The API refused the request (a wrong API key, say) or answered with
    /// something that is not a user of the expected shape.
    #[error("the provider's user API answered with an unusable response")]
    InvalidResponse(#[source] Box<dyn StdError + Send + Sync>),
    /// No user API is configured for the user's issuer.
    #[error("no user API is configured for this issuer")]
    UnknownIssuer,
    /// The user's role at the provider cannot be mapped.
    #[error(transparent)]
    Role(#[from] RoleMappingError),
}

impl ProviderUserError {
    /// Whether the failure is the server's, not the user's: the request
    /// deserves a "try again later" (503). Only an unmappable role is the
    /// user's.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, Self::Role(_))
    }
}

/// A provider's user API: who a user is, asked by the provider's id, for
/// when a token does not say enough.
///
/// Implementations MUST return `Ok(None)` for a user the provider does not
/// know, return profiles whose `issuer` and `subject` are the ones asked
/// for, map roles fail-closed exactly as the provider's token verifier does,
/// and set `enabled` to `Some(false)` for a user the provider reports as
/// banned or locked.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdentityProviderUsers<R: Role>: Send + Sync + 'static {
    /// Fetches the user `subject` of the provider `issuer`.
    ///
    /// # Errors
    ///
    /// [`ProviderUserError`]: the API unavailable or answering nonsense,
    /// no API for `issuer`, or a role that cannot be mapped.
    async fn fetch_user(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalProfile<R>>, ProviderUserError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_non_empty_at_most_255_bytes_and_free_of_control_characters() {
        let longest = "é".repeat(MAX_SUBJECT_BYTES / 2) + "x";
        assert_eq!(longest.len(), MAX_SUBJECT_BYTES);
        assert_eq!(
            ExternalSubject::parse(&longest).map(|s| s.as_str().len()),
            Ok(MAX_SUBJECT_BYTES)
        );
        assert_eq!(
            ExternalSubject::parse("user_2abc").map(|s| s.to_string()),
            Ok("user_2abc".to_owned())
        );
        assert_eq!(ExternalSubject::parse(""), Err(SubjectError::Empty));
        assert_eq!(
            ExternalSubject::parse(&(longest + "x")),
            Err(SubjectError::TooLong)
        );
        for bad in ["user\n1", "\u{0}", "tab\there", "del\u{7f}", "c1\u{85}"] {
            assert_eq!(
                ExternalSubject::parse(bad),
                Err(SubjectError::ControlCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_delivery_dates_what_its_payload_left_undated_and_nothing_else() {
        use crate::testing::{ISSUER, at, subject};
        use tessera_domain::UserRole;

        let delivered = at(2_000);
        let profile = |as_of| ExternalProfile {
            issuer: ISSUER.into(),
            subject: subject(),
            role: UserRole::User,
            email: None,
            name: None,
            enabled: None,
            as_of,
        };
        let dated = |event: UserEvent<UserRole>| event.dated_by_delivery(delivered);
        assert_eq!(
            dated(UserEvent::Upserted(profile(AsOf::Unknown))),
            UserEvent::Upserted(profile(AsOf::Delivery(delivered)))
        );
        for kept in [AsOf::Provider(at(1_000)), AsOf::Token(at(1_000))] {
            assert_eq!(
                dated(UserEvent::Upserted(profile(kept))),
                UserEvent::Upserted(profile(kept))
            );
        }
        let deleted = |as_of| UserEvent::<UserRole>::Deleted {
            issuer: ISSUER.into(),
            subject: subject(),
            as_of,
        };
        assert_eq!(dated(deleted(None)), deleted(Some(delivered)));
        assert_eq!(dated(deleted(Some(at(1_000)))), deleted(Some(at(1_000))));
        assert_eq!(dated(UserEvent::Ignored), UserEvent::Ignored);
    }

    #[test]
    fn a_delivery_instant_is_recorded_and_ordered_but_never_outdates_a_deletion() {
        let t = crate::testing::at(1_000);
        assert_eq!(AsOf::Delivery(t).instant(), Some(t));
        assert_eq!(AsOf::Delivery(t).recorded_instant(), Some(t));
        assert_eq!(AsOf::Delivery(t).provider_instant(), None);
        assert_eq!(AsOf::Provider(t).recorded_instant(), Some(t));
        assert_eq!(AsOf::Provider(t).provider_instant(), Some(t));
        assert_eq!(AsOf::Token(t).recorded_instant(), None);
        assert_eq!(AsOf::Unknown.recorded_instant(), None);
    }
}
