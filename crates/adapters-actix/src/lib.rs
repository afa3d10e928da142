//! tessera for actix-web 4: the session middleware, the extractors and the
//! handlers, each a translation of tessera's framework-neutral edge
//! ([`tessera_http`]) — nothing is decided here, so an actix-web app
//! answers exactly as an axum one does.
//!
//! - [`SessionMiddleware`]: the middleware (`App::wrap`);
//! - extractors: [`Auth`] (sign-in and sign-out), [`Session`] (required), [`MaybeSession`] (optional; not
//!   `Option<Session>`, see [`Maybe`]), [`RequireRole`] and
//!   [`RequireCapability`] (typed gates), [`ProviderUser`] (the local user
//!   behind a provider token) and [`GatewayIdentity`] (in the services
//!   behind a gateway); their refusals are [`Rejected`], answered as the
//!   middleware answers;
//! - handlers: [`exchange_token`] (provider token in, session out) and
//!   [`user_webhook`] (a provider's user webhooks);
//! - [`Header`] and [`into_response`]: [`tessera_http`]'s `http` 1.x
//!   headers and answers for actix-web, which is on `http` 0.2.
//!
//! ```
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use tessera_actix::{
//!     Auth, MaybeSession, RequireRole, Session, SessionMiddleware, SessionUseCases, roles::Admin,
//! };
//! use tessera_domain::{Requirement, RoutePolicy, RouteRule, UserRole};
//!
//! async fn home(session: MaybeSession) -> String {
//!     match session.into_inner() {
//!         Some(session) => format!("signed in as {}", session.role()),
//!         None => "hello, guest".to_owned(),
//!     }
//! }
//!
//! async fn me(session: Session) -> String {
//!     format!("{} ({})", session.user_id(), session.role())
//! }
//!
//! async fn admin(admin: RequireRole<Admin>) -> String {
//!     format!("welcome, admin {}", admin.user_id())
//! }
//!
//! async fn sign_out(auth: Auth) -> HttpResponse {
//!     auth.sign_out(None).await
//! }
//!
//! /// `sessions` come wired to your adapters (the `tessera` facade's
//! /// `Tessera::session_layer` and `session_middleware` do it).
//! async fn serve(
//!     sessions: SessionUseCases<UserRole>,
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     let policy = RoutePolicy::builder()
//!         .rule(RouteRule::new("/", Requirement::Public))
//!         .rule(RouteRule::new("/me", Requirement::Authenticated))
//!         .rule(RouteRule::new("/logout", Requirement::Authenticated).browser())
//!         .rule(RouteRule::new("/admin", Requirement::AtLeastRole(UserRole::Admin)).browser())
//!         .build()?;
//!     let middleware = SessionMiddleware::builder(sessions, policy)
//!         .login_path("/login")
//!         .build()?;
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(middleware.clone())
//!             .route("/", web::get().to(home))
//!             .route("/me", web::get().to(me))
//!             .route("/logout", web::post().to(sign_out))
//!             .route("/admin", web::get().to(admin))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! ```

mod auth;
mod convert;
mod exchange;
mod extract;
mod gateway;
mod middleware;
mod provider_user;
mod webhooks;

#[cfg(test)]
mod tests;

pub use auth::Auth;
pub use convert::{Header, into_response};
pub use exchange::exchange_token;
pub use extract::{
    Maybe, MaybeSession, OptionalFromRequest, Rejected, RequireCapability, RequireRole, Session,
};
pub use gateway::GatewayIdentity;
pub use middleware::{SessionFuture, SessionMiddleware, SessionService};
pub use provider_user::ProviderUser;
#[doc(no_inline)]
pub use tessera_http::{
    ConfigError, MinimumRole, RequiredCapability, SessionCookies, SessionEdge, SessionEdgeBuilder,
    SessionRejection, SessionUseCases, SetCookie, roles, safe_return_to,
};
pub use webhooks::user_webhook;
