//! actix-web extractors for the session the middleware admitted.

use std::fmt;
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use tessera_domain::{Role, SessionEntity, UserRole};
use tessera_http::{
    HttpRefusal, LayerSeen, MinimumRole, RequiredCapability, SessionRejection, session,
};

use crate::convert::into_response;

/// A refusal of one of this crate's extractors, answered as the session
/// middleware answers (the same status, challenge and body on every
/// framework): its response is exactly [`HttpRefusal::into_http`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected<E>(pub E);

impl<E: fmt::Display> fmt::Display for Rejected<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: HttpRefusal + Clone + fmt::Debug + fmt::Display> ResponseError for Rejected<E> {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.clone().into_http().status().as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        into_response(self.0.clone().into_http())
    }
}

/// The session of the request, as the
/// [`SessionMiddleware`](crate::SessionMiddleware) verified it (and, when
/// it rotated the token, as rotated: role and capabilities fresh from the
/// user directory).
///
/// As an extractor it is **required**: without a session it rejects with
/// 401 and `WWW-Authenticate: Bearer`, as the middleware does — with
/// `error="invalid_token"` when the request sent a credential the
/// middleware refused (on a route that needs no session, where it let the
/// request through as a guest's). Use [`MaybeSession`] on routes that
/// serve guests too, not `Option<Session<R>>` (see [`Maybe`] for why).
/// Either way, a route without the middleware answers 500, so that a
/// wiring mistake cannot pass for a guest.
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

    /// The request's session, as the required extractor finds it.
    fn required(request: &HttpRequest) -> Result<Self, Rejected<SessionRejection>> {
        let (session, seen) = found::<Self>(request);
        session::required_session(session, seen).map_err(Rejected)
    }
}

impl<R: Role> Deref for Session<R> {
    type Target = SessionEntity<R>;

    fn deref(&self) -> &SessionEntity<R> {
        &self.entity
    }
}

/// What the middleware left in the request's extensions.
pub(crate) fn found<T: Clone + 'static>(request: &HttpRequest) -> (Option<T>, Option<LayerSeen>) {
    let extensions = request.extensions();
    (
        extensions.get::<T>().cloned(),
        extensions.get::<LayerSeen>().copied(),
    )
}

impl<R: Role> FromRequest for Session<R> {
    type Error = Rejected<SessionRejection>;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::required(request))
    }
}

/// An extractor's value that may be absent without being an error: a guest
/// has no session, yet a route without the middleware is still a 500.
///
/// Why not `Option<T>`: actix-web 4 implements `FromRequest` for every
/// `Option<T>` by turning *any* rejection of `T` into `None`, so
/// `Option<Session>` would read a route that lacks the middleware as a
/// guest's. `Maybe<T>` gives `None` only for what the middleware forwarded
/// without a session, and keeps the other rejections (500 without the
/// middleware). A credential the middleware refused on a route that needs
/// no session is a guest here too (`None`), as with axum's
/// `Option<Session>`.
///
/// ```
/// use tessera_actix::MaybeSession;
///
/// async fn home(session: MaybeSession) -> String {
///     match session.into_inner() {
///         Some(session) => format!("hello {}", session.user_id()),
///         None => "hello, guest".to_owned(),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maybe<T>(pub Option<T>);

/// The request's session, `None` for a guest, 500 without the middleware.
pub type MaybeSession<R = UserRole> = Maybe<Session<R>>;

impl<T> Maybe<T> {
    /// The value, if any.
    #[must_use]
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T> Deref for Maybe<T> {
    type Target = Option<T>;

    fn deref(&self) -> &Option<T> {
        &self.0
    }
}

/// An extractor that can also tell "absent" from "refused", for
/// [`Maybe`] (the counterpart of axum's `OptionalFromRequestParts`).
pub trait OptionalFromRequest: Sized {
    /// What a request that cannot be served is answered with.
    type Rejection: Into<actix_web::Error>;

    /// The value, `Ok(None)` when the request has none.
    ///
    /// # Errors
    ///
    /// When the request cannot be served (no middleware, say).
    fn optional_from_request(request: &HttpRequest) -> Result<Option<Self>, Self::Rejection>;
}

impl<R: Role> OptionalFromRequest for Session<R> {
    type Rejection = Rejected<SessionRejection>;

    fn optional_from_request(request: &HttpRequest) -> Result<Option<Self>, Self::Rejection> {
        let (session, seen) = found::<Self>(request);
        session::optional_session(session, seen).map_err(Rejected)
    }
}

impl<T: OptionalFromRequest> FromRequest for Maybe<T> {
    type Error = T::Rejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(T::optional_from_request(request).map(Maybe))
    }
}

/// A session whose role is at least `G::minimum()`; otherwise 401 without a
/// session and 403 with `error="insufficient_scope"` with one.
///
/// ```
/// use tessera_actix::{RequireRole, roles::Admin};
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

impl<G: MinimumRole> FromRequest for RequireRole<G> {
    type Error = Rejected<SessionRejection>;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Session::required(request).and_then(|session| {
            session.require_role_at_least(&G::minimum())?;
            Ok(Self {
                session,
                gate: PhantomData,
            })
        }))
    }
}

/// A session holding capability `C::NAME`; otherwise 401 without a session
/// and 403 with `error="insufficient_scope"` with one.
///
/// ```
/// use tessera_actix::{RequireCapability, RequiredCapability};
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

impl<C: RequiredCapability, R: Role> FromRequest for RequireCapability<C, R> {
    type Error = Rejected<SessionRejection>;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Session::required(request).and_then(|session| {
            session.require_capability(C::NAME)?;
            Ok(Self {
                session,
                capability: PhantomData,
            })
        }))
    }
}
