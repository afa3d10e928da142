//! What every framework adapter's session extractors share: the marker the
//! middleware leaves on requests it forwards without a session, the
//! rejections and the answers they get, and the role and capability gates
//! as types.

use tessera_domain::{Role, SessionEntity};

use crate::response::Denial;

/// Left by the session middleware on every request it forwards without a
/// session, so that an extractor can tell "no session" from "no
/// middleware" (a request with a session obviously went through it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSeen {
    /// A credential was sent and refused (a route that needs no session
    /// reads it leniently, as a guest's): the required extractors then
    /// answer [`SessionRejection::InvalidToken`], as the middleware would
    /// have.
    pub refused: bool,
}

/// Why a session extractor refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No session, and no credential sent: 401 with
    /// `WWW-Authenticate: Bearer`.
    #[error("the request has no valid session")]
    Unauthenticated,
    /// A credential was sent but refused (bad, expired, revoked, its user
    /// gone), on a route the middleware serves to guests too: 401 with
    /// `WWW-Authenticate: Bearer error="invalid_token"`. The session cookie
    /// is not cleared by this answer, except when the middleware itself
    /// clears it (a user found gone or disabled at rotation).
    #[error("the request's credential was refused")]
    InvalidToken,
    /// The session falls short of the role or capability asked for: 403
    /// with `error="insufficient_scope"`.
    #[error("the session lacks the role or capability this handler needs")]
    InsufficientScope,
    /// The route has no session middleware: 500. A wiring mistake, never
    /// caused by a request.
    #[error("the session middleware is not installed on this route")]
    LayerMissing,
}

impl crate::HttpRefusal for SessionRejection {
    /// The answer: the status, challenge and body the middleware would
    /// have given.
    fn into_http(self) -> http::Response<bytes::Bytes> {
        match self {
            Self::Unauthenticated => Denial::unauthenticated(false),
            Self::InvalidToken => Denial::unauthenticated(true),
            Self::InsufficientScope => Denial::insufficient_scope(),
            Self::LayerMissing => Denial::Misconfigured,
        }
        .into_http()
    }
}

/// The session an optional extractor gives: the request's session, `None`
/// for a guest, or [`SessionRejection::LayerMissing`] when no middleware
/// ran (neither a session nor a [`LayerSeen`]).
///
/// # Errors
///
/// [`SessionRejection::LayerMissing`].
pub fn optional_session<S>(
    session: Option<S>,
    seen: Option<LayerSeen>,
) -> Result<Option<S>, SessionRejection> {
    match (session, seen) {
        (Some(session), _) => Ok(Some(session)),
        (None, Some(_)) => Ok(None),
        (None, None) => {
            tracing::error!(
                "a tessera session extractor ran on a route without tessera's session middleware"
            );
            Err(SessionRejection::LayerMissing)
        }
    }
}

/// The session a required extractor gives, or why there is none.
///
/// # Errors
///
/// [`SessionRejection::InvalidToken`] when a credential was refused,
/// [`SessionRejection::Unauthenticated`] when none was sent,
/// [`SessionRejection::LayerMissing`] without middleware.
pub fn required_session<S>(
    session: Option<S>,
    seen: Option<LayerSeen>,
) -> Result<S, SessionRejection> {
    optional_session(session, seen)?.ok_or(if seen.is_some_and(|seen| seen.refused) {
        SessionRejection::InvalidToken
    } else {
        SessionRejection::Unauthenticated
    })
}

/// Succeeds when the session's role is `role` or ranks above it.
///
/// # Errors
///
/// [`SessionRejection::InsufficientScope`] (403) otherwise.
pub fn require_role_at_least<R: Role>(
    session: &SessionEntity<R>,
    role: &R,
) -> Result<(), SessionRejection> {
    scope(session.has_role_at_least(role))
}

/// Succeeds when the session's role is one of `roles`.
///
/// # Errors
///
/// [`SessionRejection::InsufficientScope`] (403) otherwise.
pub fn require_any_role<R: Role>(
    session: &SessionEntity<R>,
    roles: &[R],
) -> Result<(), SessionRejection> {
    scope(session.has_any_role(roles))
}

/// Succeeds when the session holds `capability`.
///
/// # Errors
///
/// [`SessionRejection::InsufficientScope`] (403) otherwise.
pub fn require_capability<R: Role>(
    session: &SessionEntity<R>,
    capability: &str,
) -> Result<(), SessionRejection> {
    scope(session.has_capability(capability))
}

fn scope(enough: bool) -> Result<(), SessionRejection> {
    if enough {
        Ok(())
    } else {
        Err(SessionRejection::InsufficientScope)
    }
}

/// A role a handler requires at least, as a type: the framework adapters'
/// `RequireRole<G>` extractors take one.
///
/// ```
/// use tessera_domain::UserRole;
/// use tessera_http::MinimumRole;
///
/// struct Staff;
/// impl MinimumRole for Staff {
///     type Role = UserRole;
///     fn minimum() -> UserRole {
///         UserRole::Moderator
///     }
/// }
/// ```
pub trait MinimumRole: Send + Sync + 'static {
    /// The application's role type.
    type Role: Role;
    /// The least privileged role let through.
    fn minimum() -> Self::Role;
}

/// A capability a handler requires, as a type: the framework adapters'
/// `RequireCapability<C>` extractors take one.
pub trait RequiredCapability: Send + Sync + 'static {
    /// The capability's name, as in the token (`"reports:read"`).
    const NAME: &'static str;
}

/// [`MinimumRole`] gates for the default [`UserRole`](tessera_domain::UserRole).
pub mod roles {
    use tessera_domain::UserRole;

    use super::MinimumRole;

    /// At least [`UserRole::Admin`].
    #[derive(Debug, Clone, Copy)]
    pub struct Admin;

    impl MinimumRole for Admin {
        type Role = UserRole;
        fn minimum() -> UserRole {
            UserRole::Admin
        }
    }

    /// At least [`UserRole::Moderator`].
    #[derive(Debug, Clone, Copy)]
    pub struct Moderator;

    impl MinimumRole for Moderator {
        type Role = UserRole;
        fn minimum() -> UserRole {
            UserRole::Moderator
        }
    }
}
