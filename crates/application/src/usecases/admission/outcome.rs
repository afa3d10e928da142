//! What the admission answers: one verdict and what becomes of the
//! credential.

use std::collections::BTreeSet;

use tessera_domain::{Capability, SessionEntity, StepUpChallenge, TenantId, UserId};
use time::{Duration, OffsetDateTime};

use super::request::{CredentialFault, CredentialSource};
use crate::external::{ExternalIdentity, ExternalUser, SubjectRefusal};
use crate::token::SessionToken;

/// What becomes of one request.
#[derive(Debug)]
pub struct Admission<R> {
    /// Forward, and how; or refuse, and why.
    pub verdict: Verdict<R>,
    /// What the response must do with the client's credential, whatever
    /// the verdict.
    pub credential: CredentialUpdate,
}

/// Forward, and how; or refuse, and why.
#[derive(Debug)]
pub enum Verdict<R> {
    /// Forward to the handler with this session.
    Session(Box<AdmittedSession<R>>),
    /// Forward to the handler as a guest's.
    Guest {
        /// A credential was sent and refused (on a route that needs no
        /// session, which reads it leniently): a handler that requires a
        /// session answers `invalid_token`.
        refused: bool,
    },
    /// Answer instead of the handler.
    Refuse(Refusal),
}

/// A session the request goes through with.
#[derive(Debug)]
pub struct AdmittedSession<R> {
    /// The session (as rotated, when it was).
    pub session: SessionEntity<R>,
    /// When its token was verified.
    pub verified_at: OffsetDateTime,
    /// The provider token and local user it came from, on the hybrid path.
    pub provider: Option<ProviderSession<R>>,
}

/// The identity-provider side of a session built for a provider's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSession<R> {
    /// The local user, as resolved.
    pub user: ExternalUser<R>,
    /// Who the provider token said the user is.
    pub identity: ExternalIdentity<R>,
}

impl<R> ProviderSession<R> {
    /// The local user's id.
    #[must_use]
    pub fn user_id(&self) -> &UserId {
        &self.user.user.user_id
    }

    /// The local user's role.
    #[must_use]
    pub fn role(&self) -> &R {
        &self.user.user.role
    }

    /// The local user's capabilities.
    #[must_use]
    pub fn capabilities(&self) -> &BTreeSet<Capability> {
        &self.user.user.capabilities
    }

    /// The local user's tenant, if any.
    #[must_use]
    pub fn tenant(&self) -> Option<&TenantId> {
        self.user.user.tenant.as_ref()
    }
}

/// Why a request is answered instead of forwarded. The edge maps each to
/// one HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The request is malformed (400 `invalid_request`).
    InvalidRequest(CredentialFault),
    /// The route needs a session and has none valid (401). `refused` when
    /// a credential was sent and refused (`invalid_token`).
    Unauthenticated {
        /// A credential was sent and refused.
        refused: bool,
    },
    /// A browser route without a valid session: to the sign-in page (303).
    SignIn {
        /// The sign-in page, with a safe return-to when the request can be
        /// made again.
        location: String,
    },
    /// The session falls short of the route, or the route is denied to
    /// everyone (403).
    Forbidden {
        /// The request carried a valid session (`insufficient_scope`).
        signed_in: bool,
    },
    /// A guest-only page asked for by a signed-in user: away to a safe
    /// return-to or the signed-in page (303).
    SignedIn {
        /// Where to.
        location: String,
    },
    /// The session meets the route's requirement, but its user must
    /// authenticate again: too long ago, or not at an accepted level (401
    /// `insufficient_user_authentication`, RFC 9470, with the challenge's
    /// `max_age` and `acr_values`). Browser routes get
    /// [`SignIn`](Self::SignIn) instead, carrying the same.
    StepUp(StepUpChallenge),
    /// The session cannot be checked right now (fail closed, 503).
    Unavailable,
    /// An unsafe request a browser sent from another origin (403).
    CrossOrigin,
    /// Nothing is served at this path (404): the policy's
    /// [`Requirement::NotFound`](tessera_domain::Requirement::NotFound).
    NotFound,
    /// An identity provider's token is authentic and valid, but its
    /// profile does not accept who it speaks for: a machine token, a
    /// required claim unmet (403, the refusal's own code). Asking again
    /// with the same subject cannot succeed, so it is not a 401.
    Subject(SubjectRefusal),
}

impl Refusal {
    /// A stable code for logs and bodies (`None` for redirects).
    #[must_use]
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::Unauthenticated { refused: true } => Some("invalid_token"),
            Self::Unauthenticated { refused: false } => Some("unauthenticated"),
            Self::Forbidden { signed_in: true } => Some("insufficient_scope"),
            Self::Forbidden { signed_in: false } => Some("forbidden"),
            Self::StepUp(_) => Some("insufficient_user_authentication"),
            Self::Unavailable => Some("temporarily_unavailable"),
            Self::CrossOrigin => Some("cross_origin_request"),
            Self::NotFound => Some("not_found"),
            Self::Subject(refusal) => Some(refusal.code()),
            Self::SignIn { .. } | Self::SignedIn { .. } => None,
        }
    }
}

/// What the response does with the client's credential.
#[derive(Debug, Default)]
pub enum CredentialUpdate {
    /// Nothing.
    #[default]
    Keep,
    /// Delete the session cookie: what it carried is no session any more.
    ClearCookie,
    /// The session was rotated: hand the new token back the way the old
    /// one came.
    Renew {
        /// The new token. A secret.
        token: SessionToken,
        /// How long the new token lives.
        lifetime: Duration,
        /// Where the old one came from.
        via: CredentialSource,
    },
}
