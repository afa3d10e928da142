//! The local user behind an identity provider's token, for handlers of
//! routes that admit provider tokens
//! ([`SessionEdgeBuilder::provider_tokens`](tessera_http::SessionEdgeBuilder::provider_tokens)).

use std::collections::BTreeSet;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};
use tessera_application::ProviderSession;
use tessera_application::external::{ExternalIdentity, ExternalUser};
use tessera_domain::{Capability, Role, TenantId, UserId};
use tessera_http::{LayerSeen, SessionRejection};

use crate::extract::{OptionalFromRequest, Rejected, Session};

/// The local user behind the provider token a request was admitted with,
/// as the [`SessionMiddleware`](crate::SessionMiddleware) resolved it.
///
/// As an extractor it refuses (401) requests that came with tessera's own
/// session or none, and answers 500 when no session middleware ran;
/// [`Maybe<ProviderUser<R>>`](crate::Maybe) gives `None` for the former.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUser<R> {
    user: ExternalUser<R>,
    identity: ExternalIdentity<R>,
}

impl<R: Role> ProviderUser<R> {
    pub(crate) fn new(provider: ProviderSession<R>) -> Self {
        Self {
            user: provider.user,
            identity: provider.identity,
        }
    }

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

    /// The local user record, with its provider account.
    #[must_use]
    pub fn user(&self) -> &ExternalUser<R> {
        &self.user
    }

    /// Who the provider token said the user is.
    #[must_use]
    pub fn identity(&self) -> &ExternalIdentity<R> {
        &self.identity
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
