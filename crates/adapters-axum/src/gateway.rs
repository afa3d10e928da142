//! The identity a gateway vouched for, as an axum extractor, in the
//! services behind the gateway.

use std::ops::Deref;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use tessera_domain::{Role, UserRole};
use tessera_http::{GatewayRejection, GatewayVerifier};

use crate::extract::Rejected;
use crate::layer::{original_uri, target_of};

/// The identity a gateway vouched for, verified by the
/// [`GatewayVerifier`] reachable from the router state ([`FromRef`]).
///
/// Required, it answers 401 `untrusted_identity` without identity headers;
/// `Option<GatewayIdentity<R>>` lets guests through — but never forged,
/// stale or replayed headers (401), and a full replay cache is 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayIdentity<R: Role = UserRole>(pub tessera_http::GatewayIdentity<R>);

impl<R: Role> Deref for GatewayIdentity<R> {
    type Target = tessera_http::GatewayIdentity<R>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

fn verify<S, R: Role>(
    parts: &Parts,
    state: &S,
) -> Result<Option<GatewayIdentity<R>>, Rejected<GatewayRejection>>
where
    GatewayVerifier: FromRef<S>,
{
    let target = target_of(original_uri(&parts.extensions, &parts.uri));
    GatewayVerifier::from_ref(state)
        .verify(&parts.method, target, &parts.headers)
        .map(|found| found.map(GatewayIdentity))
        .map_err(Rejected)
}

impl<S, R> FromRequestParts<S> for GatewayIdentity<R>
where
    S: Send + Sync,
    R: Role,
    GatewayVerifier: FromRef<S>,
{
    type Rejection = Rejected<GatewayRejection>;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        verify(parts, state)?.ok_or(Rejected(GatewayRejection::Missing))
    }
}

impl<S, R> OptionalFromRequestParts<S> for GatewayIdentity<R>
where
    S: Send + Sync,
    R: Role,
    GatewayVerifier: FromRef<S>,
{
    type Rejection = Rejected<GatewayRejection>;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        verify(parts, state)
    }
}
