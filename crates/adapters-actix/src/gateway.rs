//! The identity a gateway vouched for, as an actix-web extractor, in the
//! services behind the gateway.

use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use tessera_domain::{Role, UserRole};
use tessera_http::{GatewayRejection, GatewayVerifier, SessionRejection};

use crate::convert::to_http;
use crate::extract::{OptionalFromRequest, Rejected};
use crate::middleware::target_of;

/// The identity a gateway vouched for, verified by the [`GatewayVerifier`]
/// the app holds as `web::Data<GatewayVerifier>`.
///
/// Required, it answers 401 `untrusted_identity` without identity headers;
/// [`Maybe<GatewayIdentity<R>>`](crate::Maybe) lets guests through — but
/// never forged, stale or replayed headers (401), and a full replay cache
/// is 503. Without the verifier in the app data it answers 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayIdentity<R: Role = UserRole>(pub tessera_http::GatewayIdentity<R>);

impl<R: Role> Deref for GatewayIdentity<R> {
    type Target = tessera_http::GatewayIdentity<R>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<R: Role> OptionalFromRequest for GatewayIdentity<R> {
    type Rejection = actix_web::Error;

    fn optional_from_request(request: &HttpRequest) -> Result<Option<Self>, Self::Rejection> {
        let Some(verifier) = request.app_data::<web::Data<GatewayVerifier>>() else {
            tracing::error!("GatewayIdentity needs a web::Data<GatewayVerifier> in the app");
            // The same 500 `server_error` as any wiring mistake.
            return Err(Rejected(SessionRejection::LayerMissing).into());
        };
        let method = http::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|_| Rejected(GatewayRejection::Missing))?;
        verifier
            .verify(
                &method,
                target_of(request.uri()),
                &to_http(request.headers()),
            )
            .map(|found| found.map(GatewayIdentity))
            .map_err(|rejection| Rejected(rejection).into())
    }
}

impl<R: Role> FromRequest for GatewayIdentity<R> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            Self::optional_from_request(request)
                .and_then(|found| found.ok_or_else(|| Rejected(GatewayRejection::Missing).into())),
        )
    }
}
