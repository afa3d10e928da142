//! axum extractors for the session the layer admitted.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use tessera_domain::{Role, SessionEntity, UserRole};
use tessera_http::{
    HttpRefusal, LayerSeen, MinimumRole, RequiredCapability, SessionRejection, session,
};

/// A refusal of one of this crate's extractors, answered as the session
/// layer answers (the same status, challenge and body on every framework).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected<E>(pub E);

impl<E: HttpRefusal> IntoResponse for Rejected<E> {
    fn into_response(self) -> Response {
        self.0.into_http().map(Body::from)
    }
}

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
    pub fn require_role_at_least(&self, role: &R) -> Result<(), Rejected<SessionRejection>> {
        session::require_role_at_least(&self.entity, role).map_err(Rejected)
    }

    /// Succeeds when the user's role is one of `roles`.
    ///
    /// # Errors
    ///
    /// [`SessionRejection::InsufficientScope`] (403) otherwise.
    pub fn require_any_role(&self, roles: &[R]) -> Result<(), Rejected<SessionRejection>> {
        session::require_any_role(&self.entity, roles).map_err(Rejected)
    }

    /// Succeeds when the user holds `capability`.
    ///
    /// # Errors
    ///
    /// [`SessionRejection::InsufficientScope`] (403) otherwise.
    pub fn require_capability(&self, capability: &str) -> Result<(), Rejected<SessionRejection>> {
        session::require_capability(&self.entity, capability).map_err(Rejected)
    }
}

/// What the layer left in the request's extensions.
pub(crate) fn found<T: Clone + Send + Sync + 'static>(
    parts: &Parts,
) -> (Option<T>, Option<LayerSeen>) {
    (
        parts.extensions.get::<T>().cloned(),
        parts.extensions.get::<LayerSeen>().copied(),
    )
}

impl<R: Role> Deref for Session<R> {
    type Target = SessionEntity<R>;

    fn deref(&self) -> &SessionEntity<R> {
        &self.entity
    }
}

impl<S: Send + Sync, R: Role> FromRequestParts<S> for Session<R> {
    type Rejection = Rejected<SessionRejection>;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (session, seen) = found::<Self>(parts);
        session::required_session(session, seen).map_err(Rejected)
    }
}

impl<S: Send + Sync, R: Role> OptionalFromRequestParts<S> for Session<R> {
    type Rejection = Rejected<SessionRejection>;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let (session, seen) = found::<Self>(parts);
        session::optional_session(session, seen).map_err(Rejected)
    }
}

/// A session whose role is at least `G::minimum()`; otherwise 401 without a
/// session and 403 with `error="insufficient_scope"` with one.
///
/// ```
/// use tessera_axum::{RequireRole, roles::Admin};
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
    type Rejection = Rejected<SessionRejection>;

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

/// A session holding capability `C::NAME`; otherwise 401 without a session
/// and 403 with `error="insufficient_scope"` with one.
///
/// ```
/// use tessera_axum::{RequireCapability, RequiredCapability};
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
    type Rejection = Rejected<SessionRejection>;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = <Session<R> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        session.require_capability(C::NAME)?;
        Ok(Self {
            session,
            capability: PhantomData,
        })
    }
}
