//! tessera's framework-neutral HTTP edge, on `http` types only: what every
//! framework adapter (axum, actix-web, `tessera serve`) translates, so that
//! they all answer alike.
//!
//! - [`SessionEdge`]: a request's method, path, query and credential
//!   headers in; the application's
//!   [`DecideAdmission`](tessera_application::DecideAdmission) asked what
//!   becomes of it; the request's session (and, in gateway mode, signed
//!   identity headers) or the answer out, and the headers the response gets
//!   ([`Attach`]: the rotated cookie or `x-session-token`, a cleared
//!   cookie, `Cache-Control: no-store`);
//! - [`read_credential`]: `Authorization: Bearer` or the session cookie,
//!   never two different ones;
//! - [`SessionEdge::sign_in`] and [`SessionEdge::sign_out`]: one call
//!   each, the answer for a browser or an API client ([`Client`]); an
//!   [`Auth`] is both for one request, the client chosen by its route;
//! - [`SessionCookies`]: the session cookie's name and attributes;
//! - [`session`]: what session extractors share (rejections and their
//!   answers, role and capability gates as types);
//! - [`safe_return_to`]: the check a sign-in handler needs before
//!   redirecting to a `return_to` parameter;
//! - [`exchange()`]: provider token in, session out (RFC 8693 shaped);
//! - [`gateway`]: strip the client's `X-User-*` headers, sign the verified
//!   ones, and verify them in the services behind the gateway;
//! - [`webhooks`]: an identity provider's user webhooks (Standard Webhooks
//!   signatures, as Svix sends them) applied to the directory.
//!
//! Every refusal has one HTTP form ([`HttpRefusal`]): the status, RFC 6750
//! challenge and `{"error":"<code>"}` body the framework adapters send.
//!
//! This crate depends on the application layer only: the composition
//! (which codec, which stores) is the facade's or your `main`'s, and the
//! framework glue is `tessera-axum`'s or `tessera-actix`'s.
//!
//! ```
//! use tessera_application::Decision;
//! use tessera_domain::{Requirement, RoutePolicy, RouteRule, UserRole};
//! use tessera_http::{SessionEdge, SessionUseCases};
//!
//! /// What a framework adapter does for each request, without the framework.
//! async fn status_for(
//!     sessions: SessionUseCases<UserRole>,
//!     cookie_header: &[u8],
//! ) -> Result<u16, Box<dyn std::error::Error>> {
//!     let policy = RoutePolicy::builder()
//!         .rule(RouteRule::new("/me", Requirement::Authenticated))
//!         .build()?;
//!     let edge = SessionEdge::builder(sessions, policy).build()?;
//!     // The request's headers, by lower-case name.
//!     let headers = |name: &str| (name == "cookie").then_some(cookie_header).into_iter();
//!     let admission = match edge.decide("GET", "/me", None, None, headers) {
//!         Decision::Decided(admission) => admission,
//!         Decision::Pending(pending) => pending.finish().await,
//!     };
//!     Ok(match edge.settle(admission, "GET", "/me").forward {
//!         Ok(_) => 200,
//!         Err(answer) => answer.status().as_u16(),
//!     })
//! }
//! ```

mod cookies;
mod credential;
mod edge;
mod exchange;
pub mod gateway;
mod replay;
mod response;
pub mod session;
mod system_time;
#[cfg(test)]
mod test_clock;
pub mod webhooks;

pub use cookies::{
    CookieError, DEFAULT_COOKIE_NAME, DEVELOPMENT_COOKIE_NAME, SessionCookies, SetCookie,
};
pub use credential::read_credential;
pub use edge::{
    Attach, AttachHeaders, Auth, Client, DEFAULT_MAX_CREDENTIAL_BYTES, DEFAULT_TOKEN_HEADER,
    Forward, Presented, SessionEdge, SessionEdgeBuilder, SessionUseCases, Settled,
};
pub use exchange::exchange;
pub use gateway::{GatewayIdentity, GatewayKey, GatewayRejection, GatewayVerifier};
pub use response::HttpRefusal;
pub use session::{LayerSeen, MinimumRole, RequiredCapability, SessionRejection, roles};
pub use tessera_application::safe_return_to;
pub use tessera_application::usecases::admission::{
    DEFAULT_LOGIN_PATH, DEFAULT_RETURN_TO_PARAM, DEFAULT_SIGNED_IN_PATH, MAX_RETURN_TO_BYTES,
};
pub use webhooks::{
    Delivery, NewDelivery, UserWebhook, WebhookError, WebhookOutcome, WebhookSecret,
    WebhookSecretError, WebhookVerifier,
};

/// A [`SessionEdge`] setting that cannot work.
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
    /// The codec's token size cap is zero.
    #[error("the token size cap must be positive")]
    ZeroCredentialCap,
    /// Development cookies were asked for where they would be unsafe.
    #[error("development cookies (no Secure) are refused: {0}")]
    DevelopmentCookies(String),
    /// A trusted origin is not an origin.
    #[error(transparent)]
    Origin(#[from] tessera_application::OriginError),
    /// The route policy's rules cannot be compiled.
    #[error(transparent)]
    Policy(#[from] tessera_domain::PolicyError),
}

impl From<std::convert::Infallible> for ConfigError {
    /// A conversion that cannot fail (a [`RoutePolicy`](tessera_domain::RoutePolicy)
    /// given as it is) has no error to give.
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// The only value of a header, as text: `None` without one, and `Some("")`
/// — a value that matches nothing — when it is sent more than once or is
/// not text. What [`SessionEdge::decide`] expects of `Origin`,
/// `Sec-Fetch-Site` and `Host`.
///
/// ```
/// use tessera_http::single_header;
///
/// assert_eq!(single_header([b"same-origin".as_slice()]), Some("same-origin"));
/// assert_eq!(single_header([b"a".as_slice(), b"b".as_slice()]), Some(""));
/// assert_eq!(single_header(std::iter::empty::<&[u8]>()), None);
/// ```
pub fn single_header<'h>(values: impl IntoIterator<Item = &'h [u8]>) -> Option<&'h str> {
    let mut values = values.into_iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some("");
    }
    Some(
        std::str::from_utf8(first)
            .ok()
            .filter(|text| {
                text.bytes()
                    .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
            })
            .unwrap_or(""),
    )
}
