//! tessera's HTTP edge: sessions and route access for axum and any
//! tower-based server, in a few lines.
//!
//! - [`SessionLayer`]: the tower layer. It reads the credential
//!   (`Authorization: Bearer` or the `__Host-session` cookie), asks the
//!   application's [`DecideAdmission`](tessera_application::DecideAdmission)
//!   what becomes of the request, answers refusals with RFC 6750
//!   responses (see the table on [`SessionLayer`]), rotates tokens that are
//!   due and attaches the new cookie or `x-session-token` header, and puts
//!   the [`Session`] in the request extensions.
//! - Extractors: [`Session`] (required), `Option<Session>` (optional),
//!   [`RequireRole`] and [`RequireCapability`] (typed gates), and the
//!   [`Session::require_role_at_least`]-style checks.
//! - [`SessionCookies`]: the cookie for sign-in handlers
//!   ([`SessionCookies::issue`]) and sign-out handlers
//!   ([`SessionCookies::clear`]).
//! - [`safe_return_to`]: the check a login handler needs before redirecting
//!   to a `return_to` parameter.
//! - [`gateway`]: strip the client's `X-User-*` headers, inject signed
//!   ones, and verify them in the services behind the gateway.
//! - [`webhooks`]: an identity provider's user webhooks (Standard
//!   Webhooks signatures, as Svix sends them) applied to the directory.
//!
//! This crate depends on the application layer only: the composition
//! (which codec, which stores) is the facade's or your `main`'s.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tessera_application::{RotateSession, VerifySession};
//! use tessera_domain::{Requirement, RoutePolicy, RouteRule, UserRole};
//! use tessera_http::{RequireRole, Session, SessionLayer, roles::Admin};
//!
//! async fn me(session: Session) -> String {
//!     format!("{} ({})", session.user_id(), session.role())
//! }
//!
//! async fn admin(admin: RequireRole<Admin>) -> String {
//!     format!("welcome, admin {}", admin.user_id())
//! }
//!
//! /// `verify` and `rotate` come wired to your adapters (the `tessera`
//! /// facade's `Tessera` has both).
//! fn app(
//!     verify: VerifySession<UserRole>,
//!     rotate: RotateSession<UserRole>,
//! ) -> Result<Router, Box<dyn std::error::Error>> {
//!     let policy = RoutePolicy::builder()
//!         .rule(RouteRule::new("/me", Requirement::Authenticated))
//!         .rule(RouteRule::new("/admin/*", Requirement::AtLeastRole(UserRole::Admin)).browser())
//!         .build()?;
//!     let layer = SessionLayer::builder(verify, rotate, policy)
//!         .login_path("/login")
//!         .build()?;
//!     Ok(Router::new()
//!         .route("/me", get(me))
//!         .route("/admin", get(admin))
//!         .layer(layer))
//! }
//! ```

mod cookies;
mod credential;
mod exchange;
mod extract;
pub mod gateway;
mod layer;
mod provider_user;
mod replay;
mod response;
pub mod webhooks;

#[cfg(test)]
mod tests;

pub use cookies::{CookieError, DEFAULT_COOKIE_NAME, SessionCookies, SetCookie};
pub use credential::read_credential;
pub use exchange::exchange_token;
pub use extract::{
    MinimumRole, RequireCapability, RequireRole, RequiredCapability, Session, SessionRejection,
    roles,
};
pub use gateway::{GatewayIdentity, GatewayKey, GatewayRejection, GatewayVerifier};
pub use layer::{
    DEFAULT_LOGIN_PATH, DEFAULT_MAX_CREDENTIAL_BYTES, DEFAULT_RETURN_TO_PARAM,
    DEFAULT_SIGNED_IN_PATH, DEFAULT_TOKEN_HEADER, SessionFuture, SessionLayer, SessionLayerBuilder,
    SessionService,
};
pub use provider_user::ProviderUser;
pub use tessera_application::safe_return_to;
pub use tessera_application::usecases::admission::MAX_RETURN_TO_BYTES;
pub use webhooks::{
    Delivery, NewDelivery, UserWebhook, WebhookError, WebhookOutcome, WebhookSecret,
    WebhookSecretError, WebhookVerifier, user_webhook,
};

/// A [`SessionLayer`] setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is not an RFC 6265 token.
    #[error("{0:?} is not a valid cookie name")]
    InvalidCookieName(String),
    /// A sign-in page setting cannot work.
    #[error(transparent)]
    Pages(#[from] tessera_application::SignInPagesError),
    /// The token header is not a header name, or is one gateway mode strips.
    #[error("{0:?} cannot be the rotated-token header")]
    InvalidTokenHeader(String),
    /// The credential size cap is zero.
    #[error("the credential size cap must be positive")]
    ZeroCredentialCap,
}
