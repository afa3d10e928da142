//! The session cookie: issued on sign-in and rotation, cleared on sign-out.

use std::fmt;
use std::sync::Arc;

use cookie::{Cookie, SameSite};
use http::header::SET_COOKIE;
use http::{HeaderName, HeaderValue};
use tessera_application::SessionToken;
use tessera_domain::{Role, SessionEntity};

use crate::ConfigError;

/// The default session cookie name. The `__Host-` prefix makes browsers
/// refuse the cookie unless it is `Secure`, `Path=/` and has no `Domain`,
/// so a sibling subdomain cannot plant or shadow it.
pub const DEFAULT_COOKIE_NAME: &str = "__Host-session";
/// The session cookie's name with
/// [development cookies](crate::SessionEdgeBuilder::development_cookies):
/// no `__Host-` prefix, which browsers refuse without `Secure`.
pub const DEVELOPMENT_COOKIE_NAME: &str = "session";

/// Whether the session cookie is `Secure` (always, but for development).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieMode {
    /// `Secure`: the browser sends it over https (and to loopback) only.
    Secure,
    /// No `Secure`, for a debug build serving on `listening_on`, which must
    /// be a loopback address.
    Development {
        /// The address the server is bound to.
        listening_on: std::net::IpAddr,
    },
}

/// Why a session cookie could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// The token has characters a cookie value cannot carry (a tessera
    /// token never does). The token itself is not repeated here.
    #[error("the session token cannot be carried in a cookie")]
    InvalidToken,
}

/// Issues and clears the session cookie, with the attributes tessera
/// promises: `HttpOnly`, `Secure`, `SameSite=Lax`, `Path=/`, no `Domain`
/// (host-only), and `Max-Age` equal to the token's remaining life.
///
/// Get the edge's with [`SessionEdge::cookies`](crate::SessionEdge::cookies)
/// so that handlers and the middleware agree on the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookies {
    name: Arc<str>,
    secure: bool,
}

impl Default for SessionCookies {
    fn default() -> Self {
        Self {
            name: DEFAULT_COOKIE_NAME.into(),
            secure: true,
        }
    }
}

pub(crate) fn is_cookie_name(name: &str) -> bool {
    // RFC 6265 cookie-name = token (RFC 7230 tchar).
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

impl SessionCookies {
    /// Cookies named `name`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidCookieName`] when `name` is not an RFC 6265
    /// cookie name.
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        Self::with_mode(Some(name), CookieMode::Secure)
    }

    /// Cookies named `name` (or the mode's default name) in `mode`.
    pub(crate) fn with_mode(name: Option<&str>, mode: CookieMode) -> Result<Self, ConfigError> {
        let secure = match mode {
            CookieMode::Secure => true,
            CookieMode::Development { listening_on } => {
                if !cfg!(debug_assertions) {
                    return Err(ConfigError::DevelopmentCookies(
                        "this is a release build".to_owned(),
                    ));
                }
                if !listening_on.is_loopback() {
                    return Err(ConfigError::DevelopmentCookies(format!(
                        "the server listens on {listening_on}, which is not a loopback address"
                    )));
                }
                false
            }
        };
        let name = name.unwrap_or(if secure {
            DEFAULT_COOKIE_NAME
        } else {
            DEVELOPMENT_COOKIE_NAME
        });
        if !is_cookie_name(name) {
            return Err(ConfigError::InvalidCookieName(name.to_owned()));
        }
        if !secure && (name.starts_with("__Host-") || name.starts_with("__Secure-")) {
            return Err(ConfigError::DevelopmentCookies(format!(
                "browsers refuse a cookie named {name:?} without Secure"
            )));
        }
        Ok(Self {
            name: name.into(),
            secure,
        })
    }

    /// Whether the cookie is `Secure` (always, but with development
    /// cookies): browsers send it over https, and to `localhost` and
    /// loopback addresses, only.
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The cookie name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cookie carrying `token`, whose session is `session`: `Max-Age`
    /// is the token's life from its issue to its expiry, which at issue is
    /// its remaining life.
    ///
    /// # Errors
    ///
    /// [`CookieError::InvalidToken`] when the token has characters a cookie
    /// value cannot carry.
    pub fn issue<R: Role>(
        &self,
        token: &SessionToken,
        session: &SessionEntity<R>,
    ) -> Result<SetCookie, CookieError> {
        self.issue_for(
            token,
            (session.expires_at() - session.issued_at()).max(time::Duration::ZERO),
        )
    }

    /// The cookie carrying `token` for `lifetime` (its `Max-Age`).
    pub(crate) fn issue_for(
        &self,
        token: &SessionToken,
        lifetime: time::Duration,
    ) -> Result<SetCookie, CookieError> {
        let secret = token.expose_secret();
        let valid = !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(CookieError::InvalidToken);
        }
        let cookie = self
            .base(secret.to_owned())
            .max_age(cookie::time::Duration::seconds(lifetime.whole_seconds()))
            .build();
        SetCookie::new(cookie).ok_or(CookieError::InvalidToken)
    }

    /// The cookie that deletes the session cookie (empty value, `Max-Age=0`,
    /// an expiry in the past, and the same attributes, as `__Host-`
    /// cookies require).
    #[must_use]
    pub fn clear(&self) -> SetCookie {
        let mut cookie = self.base(String::new()).build();
        cookie.make_removal();
        let header = HeaderValue::from_str(&cookie.to_string())
            .unwrap_or(HeaderValue::from_static("__Host-session=; Max-Age=0"));
        SetCookie { cookie, header }
    }

    fn base(&self, value: String) -> cookie::CookieBuilder<'static> {
        Cookie::build((self.name.to_string(), value))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
    }

    /// Whether a `Set-Cookie` header value sets this cookie.
    #[must_use]
    pub fn is_set_by(&self, value: &[u8]) -> bool {
        value
            .strip_prefix(self.name.as_bytes())
            .is_some_and(|rest| rest.first() == Some(&b'='))
    }
}

/// A `Set-Cookie` header for the session cookie: put
/// [`header`](Self::header) on the response of a sign-in or sign-out
/// handler.
///
/// Its `Debug` hides the value, which may be a session token.
#[derive(Clone)]
pub struct SetCookie {
    cookie: Cookie<'static>,
    header: HeaderValue,
}

impl SetCookie {
    fn new(cookie: Cookie<'static>) -> Option<Self> {
        let mut header = HeaderValue::from_str(&cookie.to_string()).ok()?;
        header.set_sensitive(true);
        Some(Self { cookie, header })
    }

    /// The cookie.
    ///
    /// **Security:** its value is the session token; never log it.
    #[must_use]
    pub fn cookie(&self) -> &Cookie<'static> {
        &self.cookie
    }

    /// The `Set-Cookie` header value (marked sensitive).
    #[must_use]
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }

    /// The `Set-Cookie` header, name and value, for a response.
    #[must_use]
    pub fn header(&self) -> (HeaderName, HeaderValue) {
        (SET_COOKIE, self.header.clone())
    }

    /// Whether this cookie deletes the session cookie.
    #[must_use]
    pub fn is_removal(&self) -> bool {
        self.cookie.value().is_empty()
    }
}

impl fmt::Debug for SetCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetCookie")
            .field("name", &self.cookie.name())
            .field("removal", &self.is_removal())
            .field("max_age", &self.cookie.max_age())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use tessera_domain::{NewSession, SessionId, UserId, UserRole};
    use time::OffsetDateTime;

    use super::*;

    fn session(lifetime: i64) -> SessionEntity<UserRole> {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        SessionEntity::new(NewSession {
            user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap(),
            session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").unwrap(),
            role: UserRole::User,
            capabilities: Default::default(),
            tenant: None,
            issued_at: now,
            expires_at: now + time::Duration::seconds(lifetime),
            authenticated_at: now,
            authentication: Default::default(),
        })
        .unwrap()
    }

    #[test]
    fn issued_cookie_carries_every_promised_attribute() {
        let set = SessionCookies::default()
            .issue(&SessionToken::new("aaa.bbb.ccc".into()), &session(900))
            .unwrap();
        let header = set.header_value().to_str().unwrap();
        let parsed = Cookie::parse(header).unwrap();
        assert_eq!(parsed.name(), "__Host-session");
        assert_eq!(parsed.value(), "aaa.bbb.ccc");
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.same_site(), Some(SameSite::Lax));
        assert_eq!(parsed.path(), Some("/"));
        assert_eq!(parsed.domain(), None);
        assert_eq!(parsed.max_age(), Some(cookie::time::Duration::seconds(900)));
        assert!(set.header_value().is_sensitive());
        assert!(!set.is_removal());
    }

    #[test]
    fn cleared_cookie_expires_now_with_the_same_attributes() {
        let set = SessionCookies::new("sid").unwrap().clear();
        let parsed = Cookie::parse(set.header_value().to_str().unwrap()).unwrap();
        assert_eq!(parsed.name(), "sid");
        assert_eq!(parsed.value(), "");
        assert_eq!(parsed.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.path(), Some("/"));
        assert!(set.is_removal());
    }

    #[test]
    fn development_cookies_are_plain_on_loopback_only() {
        let loopback = CookieMode::Development {
            listening_on: "127.0.0.1".parse().unwrap(),
        };
        let dev = SessionCookies::with_mode(None, loopback).unwrap();
        assert_eq!(dev.name(), DEVELOPMENT_COOKIE_NAME);
        assert!(!dev.is_secure());
        let set = dev
            .issue(&SessionToken::new("aaa.bbb.ccc".into()), &session(900))
            .unwrap();
        let parsed = Cookie::parse(set.header_value().to_str().unwrap()).unwrap();
        assert_eq!(parsed.name(), "session");
        assert_eq!(parsed.secure(), None, "no Secure attribute");
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.same_site(), Some(SameSite::Lax));
        let clear = dev.clear();
        let cleared = Cookie::parse(clear.header_value().to_str().unwrap()).unwrap();
        assert_eq!(cleared.secure(), None);

        for listening_on in ["0.0.0.0", "192.0.2.7", "::"] {
            let mode = CookieMode::Development {
                listening_on: listening_on.parse().unwrap(),
            };
            let refused = SessionCookies::with_mode(None, mode).unwrap_err();
            assert!(
                matches!(&refused, ConfigError::DevelopmentCookies(why) if why.contains(listening_on)),
                "{refused}"
            );
        }
        for prefixed in ["__Host-session", "__Secure-session"] {
            assert!(matches!(
                SessionCookies::with_mode(Some(prefixed), loopback),
                Err(ConfigError::DevelopmentCookies(_))
            ));
        }
        assert!(SessionCookies::default().is_secure());
    }

    #[test]
    fn a_token_a_cookie_cannot_carry_is_refused_without_echoing_it() {
        let err = SessionCookies::default()
            .issue(&SessionToken::new("a b;c".into()), &session(900))
            .unwrap_err();
        assert_eq!(err, CookieError::InvalidToken);
        assert!(!err.to_string().contains("a b"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let set = SessionCookies::default()
            .issue(
                &SessionToken::new("secret.token.value".into()),
                &session(900),
            )
            .unwrap();
        assert!(!format!("{set:?}").contains("secret"));
    }

    #[test]
    fn cookie_names_must_be_rfc6265_tokens() {
        for bad in ["", "a b", "a;b", "a=b", "caf\u{e9}", "a\"b"] {
            assert!(SessionCookies::new(bad).is_err(), "{bad:?}");
        }
        assert!(SessionCookies::new("__Host-sid").is_ok());
    }

    #[test]
    fn a_set_cookie_for_this_name_is_recognised() {
        let cookies = SessionCookies::default();
        assert!(cookies.is_set_by(b"__Host-session=; Max-Age=0"));
        assert!(!cookies.is_set_by(b"__Host-session2=x"));
        assert!(!cookies.is_set_by(b"theme=dark"));
    }
}
