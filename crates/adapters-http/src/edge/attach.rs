//! What a response gets besides its content.

use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::cookies::SessionCookies;

/// What a response gets besides its content: the session cookie set or
/// cleared, the rotated token for bearer clients, `Cache-Control:
/// no-store` when a new credential goes out. A handler that set the
/// session cookie itself, as sign-in and sign-out do, wins over the cookie;
/// one that set the token header wins over the token.
#[derive(Debug, Default)]
#[must_use = "the response needs these headers"]
pub struct Attach {
    /// A `Set-Cookie` for the session cookie, unless the handler set one.
    pub(super) cookie: Option<(SessionCookies, HeaderValue)>,
    /// The rotated token for a bearer client, unless the handler set one.
    pub(super) header: Option<(HeaderName, HeaderValue)>,
    /// The headers carry a new credential: the response must not be cached.
    pub(super) renews: bool,
}

/// The headers an [`Attach`] adds to one response.
#[derive(Debug, Default)]
pub struct AttachHeaders {
    /// Headers to append (`Set-Cookie`).
    pub append: Vec<(HeaderName, HeaderValue)>,
    /// Headers to insert, replacing any of the same name.
    pub insert: Vec<(HeaderName, HeaderValue)>,
}

impl Attach {
    /// Whether there is nothing to add.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cookie.is_none() && self.header.is_none()
    }

    /// The headers to add, given the `Set-Cookie` values the handler's
    /// response already has and whether it has the token header.
    pub fn headers_for<'a>(
        self,
        mut set_cookies: impl Iterator<Item = &'a [u8]>,
        has_token_header: impl FnOnce(&HeaderName) -> bool,
    ) -> AttachHeaders {
        let mut out = AttachHeaders::default();
        if let Some((cookies, value)) = self.cookie
            && !set_cookies.any(|set| cookies.is_set_by(set))
        {
            out.append.push((SET_COOKIE, value));
        }
        if let Some((name, value)) = self.header
            && !has_token_header(&name)
        {
            out.insert.push((name, value));
        }
        if self.renews && !(out.append.is_empty() && out.insert.is_empty()) {
            // A response carrying a credential must never be cached.
            out.insert
                .push((CACHE_CONTROL, HeaderValue::from_static("no-store")));
        }
        out
    }

    /// Adds the headers to an `http` header map.
    pub fn apply(self, headers: &mut HeaderMap) {
        if self.is_empty() {
            return;
        }
        let set_cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        let add = self.headers_for(set_cookies.iter().map(HeaderValue::as_bytes), |name| {
            headers.contains_key(name)
        });
        for (name, value) in add.append {
            headers.append(name, value);
        }
        for (name, value) in add.insert {
            headers.insert(name, value);
        }
    }
}
