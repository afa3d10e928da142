//! The local user behind an identity provider's token, for handlers of
//! routes that admit provider tokens
//! ([`SessionEdgeBuilder::provider_tokens`](tessera_http::SessionEdgeBuilder::provider_tokens)).

use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};
use tessera_application::ProviderSession;
use tessera_domain::Role;
use tessera_http::{LayerSeen, SessionRejection};

use crate::extract::{OptionalFromRequest, Rejected, Session};

/// The local user behind the provider token a request was admitted with,
/// as the [`SessionMiddleware`](crate::SessionMiddleware) resolved it.
///
/// As an extractor it refuses (401) requests that came with tessera's own
/// session or none, and answers 500 when no session middleware ran;
/// [`Maybe<ProviderUser<R>>`](crate::Maybe) gives `None` for the former.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUser<R>(ProviderSession<R>);

impl<R: Role> ProviderUser<R> {
    pub(crate) fn new(provider: ProviderSession<R>) -> Self {
        Self(provider)
    }
}

/// The local user record (`user`), the provider's identity (`identity`)
/// and their accessors (`user_id()`, `role()`, …).
impl<R> Deref for ProviderUser<R> {
    type Target = ProviderSession<R>;

    fn deref(&self) -> &ProviderSession<R> {
        &self.0
    }
}

impl<R: Role> OptionalFromRequest for ProviderUser<R> {
    type Rejection = Rejected<SessionRejection>;

    fn optional_from_request(request: &HttpRequest) -> Result<Option<Self>, Self::Rejection> {
        let extensions = request.extensions();
        if let Some(user) = extensions.get::<Self>() {
            return Ok(Some(user.clone()));
        }
        if extensions.get::<Session<R>>().is_some() || extensions.get::<LayerSeen>().is_some() {
            return Ok(None);
        }
        tracing::error!(
            "a tessera session extractor ran on a route without tessera's session middleware"
        );
        Err(Rejected(SessionRejection::LayerMissing))
    }
}

impl<R: Role> FromRequest for ProviderUser<R> {
    type Error = Rejected<SessionRejection>;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            Self::optional_from_request(request)
                .and_then(|user| user.ok_or(Rejected(SessionRejection::Unauthenticated))),
        )
    }
}
