//! tessera for axum and any tower-based server: the session layer, the
//! extractors and the handlers, each a translation of tessera's
//! framework-neutral edge ([`tessera_http`]) — nothing is decided here.
//!
//! - [`SessionLayer`]: the tower layer (see its table of answers);
//! - extractors: [`Auth`] (sign-in and sign-out), [`Session`]
//!   (required), `Option<Session>` (optional),
//!   [`RequireRole`] and [`RequireCapability`] (typed gates),
//!   [`ProviderUser`] (the local user behind a provider token) and
//!   [`GatewayIdentity`] (in the services behind a gateway);
//! - handlers: [`exchange_token`] (provider token in, session out) and
//!   [`user_webhook`] (a provider's user webhooks).
//!
//! ```
//! use axum::{Router, routing::get};
//! use tessera_axum::{RequireRole, Session, SessionLayer, SessionUseCases, roles::Admin};
//! use tessera_domain::{Requirement, RoutePolicy, RouteRule, UserRole};
//!
//! async fn me(session: Session) -> String {
//!     format!("{} ({})", session.user_id(), session.role())
//! }
//!
//! async fn admin(admin: RequireRole<Admin>) -> String {
//!     format!("welcome, admin {}", admin.user_id())
//! }
//!
//! /// `sessions` come wired to your adapters (the `tessera` facade's
//! /// `Tessera::session_layer` and `session_middleware` do it).
//! fn app(
//!     sessions: SessionUseCases<UserRole>,
//! ) -> Result<Router, Box<dyn std::error::Error>> {
//!     let policy = RoutePolicy::builder()
//!         .rule(RouteRule::new("/me", Requirement::Authenticated))
//!         .rule(RouteRule::new("/admin/*", Requirement::AtLeastRole(UserRole::Admin)).browser())
//!         .build()?;
//!     let layer = SessionLayer::builder(sessions, policy)
//!         .login_path("/login")
//!         .build()?;
//!     Ok(Router::new()
//!         .route("/me", get(me))
//!         .route("/admin", get(admin))
//!         .layer(layer))
//! }
//! ```

mod auth;
mod exchange;
mod extract;
mod gateway;
mod layer;
mod provider_user;
mod webhooks;

#[cfg(test)]
mod tests;

pub use auth::Auth;
pub use exchange::exchange_token;
pub use extract::{Rejected, RequireCapability, RequireRole, Session};
pub use gateway::GatewayIdentity;
pub use layer::{SessionFuture, SessionLayer, SessionService};
pub use provider_user::ProviderUser;
#[doc(no_inline)]
pub use tessera_http::{
    ConfigError, MinimumRole, RequiredCapability, SessionCookies, SessionEdge, SessionEdgeBuilder,
    SessionRejection, SessionUseCases, SetCookie, roles, safe_return_to,
};
pub use webhooks::user_webhook;
