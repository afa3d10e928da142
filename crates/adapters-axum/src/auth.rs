//! Sign-in and sign-out for a handler: the [`Auth`] extractor.

use axum::body::Body;
use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderValue, Response};
use tessera_domain::{Authentication, Role, UserId, UserRole};
use tessera_http::{SessionEdge, SessionRejection};
use time::OffsetDateTime;

use crate::extract::Rejected;
use crate::layer::original_uri;

/// The edge of the [`SessionLayer`](crate::SessionLayer) that admitted the
/// request, left in its extensions for [`Auth`].
#[derive(Clone)]
pub(crate) struct AdmittedBy<R: Role>(pub(crate) SessionEdge<R>);

/// Sign-in and sign-out, one call each, in the handlers of your sign-in
/// and sign-out routes.
///
/// How the answer carries the session follows the route: on a
/// [browser route](tessera_domain::RouteRule::browser) sign-in sets the
/// session cookie and redirects (`303`) to a safe return-to, sign-out
/// clears it and redirects to the sign-in page; on any other route sign-in
/// answers `{"access_token":…,"token_type":"Bearer","expires_in":…}` and
/// sign-out `204`. Every answer has `Cache-Control: no-store`.
///
/// The session takes the role, capabilities and tenant your user
/// directory holds: the one rotation reads, so the first rotation takes
/// nothing back; a user it does not know or holds disabled is refused
/// (403), and when it cannot answer nobody is signed in (503). Sign-out
/// revokes the session the request presents on every instance (503, the
/// cookie kept, when that cannot be checked or recorded). Route both as
/// `POST`, which the cross-origin protection covers.
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
        let headers = &parts.headers;
        let token =
            edge.presented_token(|name| headers.get_all(name).iter().map(HeaderValue::as_bytes));
        let path = original_uri(&parts.extensions, &parts.uri).path();
        Ok(Self(tessera_http::Auth::new(
            edge,
            parts.method.as_str(),
            path,
            token,
        )))
    }
}
