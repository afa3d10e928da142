//! Sign-in and sign-out for a handler: the [`Auth`] extractor.

use axum::body::Body;
use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderValue, Response};
use tessera_domain::{Authentication, Role, UserId, UserRole};
use tessera_http::{SessionEdge, SessionRejection};
use time::OffsetDateTime;

use crate::extract::{Rejected, Session};
use crate::layer::original_uri;

/// The edge of the [`SessionLayer`](crate::SessionLayer) that admitted the
/// request, left in its extensions for [`Auth`].
#[derive(Clone)]
pub(crate) struct AdmittedBy<R: Role>(pub(crate) SessionEdge<R>);

/// Sign-in and sign-out, one call each, in the handlers of your sign-in
/// and sign-out routes.
///
/// Extracted from any request the session middleware forwarded, it is
/// [`tessera_http::Auth`] answering with this framework's responses: see
/// there how the route decides between a browser's answer and an API
/// client's, what the session holds and when each call refuses.
///
/// ```
/// use axum::extract::Form;
/// use axum::http::StatusCode;
/// use axum::response::{IntoResponse, Response};
/// use tessera_axum::Auth;
///
/// #[derive(serde::Deserialize)]
/// struct SignIn {
///     user_id: String,
///     return_to: Option<String>,
/// }
///
/// async fn sign_in(auth: Auth, Form(form): Form<SignIn>) -> Response {
///     // Your authentication first: a password, a passkey, an OAuth callback.
///     let Ok(user) = form.user_id.parse() else {
///         return StatusCode::UNAUTHORIZED.into_response();
///     };
///     auth.sign_in(&user, form.return_to.as_deref()).await
/// }
///
/// async fn sign_out(auth: Auth) -> Response {
///     auth.sign_out(None).await
/// }
/// ```
///
/// A route whose router lacks the layer answers 500, as [`Session`](crate::Session) does.
#[derive(Debug)]
pub struct Auth<R: Role = UserRole>(tessera_http::Auth<R>);

impl<R: Role> Auth<R> {
    /// How the user authenticated (`acr`, `amr`), for the session
    /// [`sign_in`](Self::sign_in) establishes: what routes requiring a
    /// level of authentication check. Unknown by default.
    #[must_use]
    pub fn authentication(self, authentication: Authentication) -> Self {
        Self(self.0.authentication(authentication))
    }

    /// When the user authenticated, if earlier than now (an identity
    /// provider's `auth_time`). Now by default.
    #[must_use]
    pub fn authenticated_at(self, at: OffsetDateTime) -> Self {
        Self(self.0.authenticated_at(at))
    }

    /// Whether the request's route is a browser page: the answers are then
    /// a cookie and a redirect rather than JSON.
    #[must_use]
    pub fn is_browser(&self) -> bool {
        self.0.is_browser()
    }

    /// Signs in `user_id`, whom your handler has authenticated; a browser
    /// goes on to `return_to` when it is a safe path of this site, else to
    /// the signed-in page.
    pub async fn sign_in(&self, user_id: &UserId, return_to: Option<&str>) -> Response<Body> {
        self.0.sign_in(user_id, return_to).await.map(Body::from)
    }

    /// Signs out the session the request presents, everywhere, and clears
    /// its cookie; a browser goes on to `return_to` when it is a safe path
    /// of this site, else to the sign-in page.
    pub async fn sign_out(&self, return_to: Option<&str>) -> Response<Body> {
        self.0.sign_out(return_to).await.map(Body::from)
    }
}

impl<S: Send + Sync, R: Role> FromRequestParts<S> for Auth<R> {
    type Rejection = Rejected<SessionRejection>;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let edge = parts
            .extensions
            .get::<AdmittedBy<R>>()
            .map(|admitted| admitted.0.clone())
            .ok_or(Rejected(SessionRejection::LayerMissing))?;
        let admitted = parts
            .extensions
            .get::<Session<R>>()
            .map(|session| session.entity().clone());
        let headers = &parts.headers;
        let presented = edge.presented(admitted, |name| {
            headers.get_all(name).iter().map(HeaderValue::as_bytes)
        });
        let path = original_uri(&parts.extensions, &parts.uri).path();
        Ok(Self(tessera_http::Auth::new(
            edge,
            parts.method.as_str(),
            path,
            presented,
        )))
    }
}
