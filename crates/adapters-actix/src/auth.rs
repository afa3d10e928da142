//! Sign-in and sign-out for a handler: the [`Auth`] extractor.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse};
use tessera_domain::{Authentication, Role, UserId, UserRole};
use tessera_http::{SessionEdge, SessionRejection};
use time::OffsetDateTime;

use crate::convert::into_response;
use crate::extract::{Rejected, Session};

/// The edge of the [`SessionMiddleware`](crate::SessionMiddleware) that
/// admitted the request, left in its extensions for [`Auth`].
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
/// use actix_web::{HttpResponse, web};
/// use tessera_actix::Auth;
///
/// #[derive(serde::Deserialize)]
/// struct SignIn {
///     user_id: String,
///     return_to: Option<String>,
/// }
///
/// async fn sign_in(auth: Auth, form: web::Form<SignIn>) -> HttpResponse {
///     // Your authentication first: a password, a passkey, an OAuth callback.
///     let Ok(user) = form.user_id.parse() else {
///         return HttpResponse::Unauthorized().finish();
///     };
///     auth.sign_in(&user, form.return_to.as_deref()).await
/// }
///
/// async fn sign_out(auth: Auth) -> HttpResponse {
///     auth.sign_out(None).await
/// }
/// ```
///
/// A route without the middleware answers 500, as [`Session`](crate::Session) does.
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
    pub async fn sign_in(&self, user_id: &UserId, return_to: Option<&str>) -> HttpResponse {
        into_response(self.0.sign_in(user_id, return_to).await)
    }

    /// Signs out the session the request presents, everywhere, and clears
    /// its cookie; a browser goes on to `return_to` when it is a safe path
    /// of this site, else to the sign-in page.
    pub async fn sign_out(&self, return_to: Option<&str>) -> HttpResponse {
        into_response(self.0.sign_out(return_to).await)
    }
}

impl<R: Role> FromRequest for Auth<R> {
    type Error = Rejected<SessionRejection>;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = request.extensions();
        let Some(AdmittedBy(edge)) = extensions.get::<AdmittedBy<R>>().cloned() else {
            return ready(Err(Rejected(SessionRejection::LayerMissing)));
        };
        let admitted = extensions
            .get::<Session<R>>()
            .map(|session| session.entity().clone());
        let headers = request.headers();
        let presented = edge.presented(admitted, |name| {
            headers.get_all(name).map(|value| value.as_bytes())
        });
        ready(Ok(Self(tessera_http::Auth::new(
            edge,
            request.method().as_str(),
            request.uri().path(),
            presented,
        ))))
    }
}
