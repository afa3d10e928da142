//! axum extractors for the session the layer verified.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use tessera_domain::{Role, SessionEntity, UserRole};

use crate::response::Denial;

/// The session of the request, as the [`SessionLayer`](crate::SessionLayer)
/// verified it (and, when it rotated the token, as rotated: role and
/// capabilities fresh from the user directory).
///
/// As an extractor it is **required**: without a session it rejects with
/// 401 and `WWW-Authenticate: Bearer`, as the layer does — with
/// `error="invalid_token"` when the request sent a credential the layer
/// refused (on a route that needs no session, where the layer let it
/// through as a guest's). Use
/// `Option<Session<R>>` on routes that serve guests too. Either way, a
/// route whose router lacks the layer answers 500, so that a wiring
/// mistake cannot pass for a guest.
///
/// It dereferences to [`SessionEntity`], so `session.user_id()`,
/// `session.has_role_at_least(..)` and the like work directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session<R: Role = UserRole> {
    entity: SessionEntity<R>,
}

/// Set by the layer on every request it forwards without a session, so
/// that the extractors can tell "no session" from "no layer" (a request
/// with a [`Session`] obviously went through the layer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerSeen {
    /// A credential was sent and refused (a route that needs no session
    /// reads it leniently, as a guest's): the required extractors then
    /// answer [`SessionRejection::InvalidToken`], as the layer would have.
    pub(crate) refused: bool,
}

impl<R: Role> Session<R> {
    pub(crate) fn new(entity: SessionEntity<R>) -> Self {
        Self { entity }
    }

    /// The session.
    #[must_use]
    pub fn entity(&self) -> &SessionEntity<R> {
        &self.entity
    }

    /// The session, dropping the wrapper.
    #[must_use]
    pub fn into_entity(self) -> SessionEntity<R> {
        self.entity
    }

    /// Succeeds when the user's role is `role` or ranks above it.
    ///
    /// # Errors
    ///
    /// [`SessionRejection::InsufficientScope`] (403) otherwise.
    pub fn require_role_at_least(&self, role: &R) -> Result<(), SessionRejection> {
        if self.entity.has_role_at_least(role) {
            Ok(())
        } else {
            Err(SessionRejection::InsufficientScope)
        }
    }

    /// Succeeds when the user's role is one of `roles`.
    ///
    /// # Errors
    ///
    /// [`SessionRejection::InsufficientScope`] (403) otherwise.
    pub fn require_any_role(&self, roles: &[R]) -> Result<(), SessionRejection> {
        if self.entity.has_any_role(roles) {
            Ok(())
        } else {
            Err(SessionRejection::InsufficientScope)
        }
    }

    /// Succeeds when the user holds `capability`.
    ///
    /// # Errors
    ///
    /// [`SessionRejection::InsufficientScope`] (403) otherwise.
    pub fn require_capability(&self, capability: &str) -> Result<(), SessionRejection> {
        if self.entity.has_capability(capability) {
            Ok(())
        } else {
            Err(SessionRejection::InsufficientScope)
        }
    }

    fn from_parts(parts: &Parts) -> Result<Option<Self>, SessionRejection> {
        if let Some(session) = parts.extensions.get::<Self>() {
            return Ok(Some(session.clone()));
        }
        if parts.extensions.get::<LayerSeen>().is_none() {
            tracing::error!(
                "a tessera session extractor ran on a route without tessera's SessionLayer"
            );
            return Err(SessionRejection::LayerMissing);
        }
        Ok(None)
    }

    /// The required extractor's answer: the session, or why there is none.
    fn required(parts: &Parts) -> Result<Self, SessionRejection> {
        Self::from_parts(parts)?.ok_or_else(|| {
            if parts
                .extensions
                .get::<LayerSeen>()
                .is_some_and(|seen| seen.refused)
            {
                SessionRejection::InvalidToken
            } else {
                SessionRejection::Unauthenticated
            }
        })
    }
}

impl<R: Role> Deref for Session<R> {
    type Target = SessionEntity<R>;

    fn deref(&self) -> &SessionEntity<R> {
        &self.entity
    }
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
    /// gone), on a route the layer serves to guests too: 401 with
    /// `WWW-Authenticate: Bearer error="invalid_token"`. The session cookie
    /// is not cleared by this answer, except when the layer itself clears
    /// it (a user found gone or disabled at rotation).
    #[error("the request's credential was refused")]
    InvalidToken,
    /// The session falls short of the role or capability asked for: 403
    /// with `error="insufficient_scope"`.
    #[error("the session lacks the role or capability this handler needs")]
    InsufficientScope,
    /// The router has no [`SessionLayer`](crate::SessionLayer): 500. A
    /// wiring mistake, never caused by a request.
    #[error("the session layer is not installed on this route")]
    LayerMissing,
}

impl SessionRejection {
    pub(crate) fn denial(self) -> Denial {
        match self {
            Self::Unauthenticated => Denial::unauthenticated(false),
            Self::InvalidToken => Denial::unauthenticated(true),
            Self::InsufficientScope => Denial::insufficient_scope(),
            Self::LayerMissing => Denial::Misconfigured,
        }
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        self.denial().into_response()
    }
}

impl<S: Send + Sync, R: Role> FromRequestParts<S> for Session<R> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::required(parts)
    }
}

impl<S: Send + Sync, R: Role> OptionalFromRequestParts<S> for Session<R> {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Self::from_parts(parts)
    }
}

/// A role a handler requires at least, as a type: see [`RequireRole`].
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

/// A session whose role is at least `G::minimum()`; otherwise 401 without a
/// session and 403 with `error="insufficient_scope"` with one.
///
/// ```
/// use tessera_http::{RequireRole, roles::Admin};
///
/// async fn admin_page(admin: RequireRole<Admin>) -> String {
///     format!("hello, admin {}", admin.user_id())
/// }
/// ```
pub struct RequireRole<G: MinimumRole> {
    session: Session<G::Role>,
    gate: PhantomData<fn() -> G>,
}

impl<G: MinimumRole> RequireRole<G> {
    /// The session.
    #[must_use]
    pub fn into_session(self) -> Session<G::Role> {
        self.session
    }
}

impl<G: MinimumRole> Deref for RequireRole<G> {
    type Target = Session<G::Role>;

    fn deref(&self) -> &Session<G::Role> {
        &self.session
    }
}

impl<G: MinimumRole> fmt::Debug for RequireRole<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireRole")
            .field("minimum", &G::minimum())
            .field("session", &self.session)
            .finish()
    }
}

impl<S: Send + Sync, G: MinimumRole> FromRequestParts<S> for RequireRole<G> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session =
            <Session<G::Role> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        session.require_role_at_least(&G::minimum())?;
        Ok(Self {
            session,
            gate: PhantomData,
        })
    }
}

/// A capability a handler requires, as a type: see [`RequireCapability`].
pub trait RequiredCapability: Send + Sync + 'static {
    /// The capability's name, as in the token (`"reports:read"`).
    const NAME: &'static str;
}

/// A session holding capability `C::NAME`; otherwise 401 without a session
/// and 403 with `error="insufficient_scope"` with one.
///
/// ```
/// use tessera_http::{RequireCapability, RequiredCapability};
///
/// struct ReadReports;
/// impl RequiredCapability for ReadReports {
///     const NAME: &'static str = "reports:read";
/// }
///
/// async fn reports(reader: RequireCapability<ReadReports>) -> String {
///     format!("reports for {}", reader.user_id())
/// }
/// ```
pub struct RequireCapability<C: RequiredCapability, R: Role = UserRole> {
    session: Session<R>,
    capability: PhantomData<fn() -> C>,
}

impl<C: RequiredCapability, R: Role> RequireCapability<C, R> {
    /// The session.
    #[must_use]
    pub fn into_session(self) -> Session<R> {
        self.session
    }
}

impl<C: RequiredCapability, R: Role> Deref for RequireCapability<C, R> {
    type Target = Session<R>;

    fn deref(&self) -> &Session<R> {
        &self.session
    }
}

impl<C: RequiredCapability, R: Role> fmt::Debug for RequireCapability<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireCapability")
            .field("capability", &C::NAME)
            .field("session", &self.session)
            .finish()
    }
}

impl<S: Send + Sync, C: RequiredCapability, R: Role> FromRequestParts<S>
    for RequireCapability<C, R>
{
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = <Session<R> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        session.require_capability(C::NAME)?;
        Ok(Self {
            session,
            capability: PhantomData,
        })
    }
}

/// [`MinimumRole`]s of tessera's default [`UserRole`].
pub mod roles {
    use tessera_domain::UserRole;

    use super::MinimumRole;

    /// Administrators only.
    #[derive(Debug, Clone, Copy)]
    pub struct Admin;

    impl MinimumRole for Admin {
        type Role = UserRole;
        fn minimum() -> UserRole {
            UserRole::Admin
        }
    }

    /// Moderators and administrators.
    #[derive(Debug, Clone, Copy)]
    pub struct Moderator;

    impl MinimumRole for Moderator {
        type Role = UserRole;
        fn minimum() -> UserRole {
            UserRole::Moderator
        }
    }
}
