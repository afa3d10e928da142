//! Cross-origin (CSRF) protection: an unsafe request a browser sends from
//! another origin is refused before any credential is read.
//!
//! The rule is Go 1.25's `net/http.CrossOriginProtection` (as tower-http
//! 0.7's `csrf` module also implements it): safe methods pass; an `Origin`
//! on the trusted list passes; `Sec-Fetch-Site: same-origin` or `none`
//! passes and any other value is refused; without `Sec-Fetch-Site`, a
//! request without `Origin` passes (not a browser, or one too old to say)
//! and one whose `Origin` names the request's own host passes.
//!
//! Where tessera differs, and why:
//!
//! - a request whose only credential is an `Authorization: Bearer` token
//!   passes: a browser never attaches one on its own, so the request
//!   carries no ambient authority to forge. A session cookie alongside it
//!   puts it back under the rule;
//! - a route may [allow cross-origin](tessera_domain::RouteRule::allow_cross_origin)
//!   requests (an identity provider's `form_post` callback): it is the
//!   policy, not a separate list of bypass paths, that says so;
//! - the decision is made in the admission, before the credential is
//!   verified, so that every framework adapter applies it and a refused
//!   request costs no signature check. Requests without any credential are
//!   covered too: a cross-site sign-in form (login CSRF) is refused;
//! - a header sent twice counts as a value that matches nothing.
//!
//! Like every such check, it trusts the `Host` the server sees: behind a
//! proxy that rewrites it, list the public origins as trusted.

use super::request::{AdmissionRequest, CredentialSource, PresentedCredential};

/// The origins whose unsafe requests are let through, besides the
/// request's own: `scheme://host[:port]`, compared exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedOrigins {
    origins: Vec<Box<str>>,
}

/// An origin that cannot be trusted as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin (http or https scheme, a host, an optional port, nothing else)")]
pub struct OriginError(pub String);

impl TrustedOrigins {
    /// Adds `origin` (`https://app.example`, `http://localhost:5173`).
    ///
    /// # Errors
    ///
    /// [`OriginError`] for anything but `http` or `https`, a host made of
    /// letters, digits, `-` and `.` (lower case), and an optional port: no
    /// path, no trailing slash, no user info.
    pub fn trust(mut self, origin: &str) -> Result<Self, OriginError> {
        let refused = || OriginError(origin.to_owned());
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(refused)?;
        let (host, port) = authority
            .split_once(':')
            .map_or((authority, None), |(host, port)| (host, Some(port)));
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
        let port_ok = port.is_none_or(|port| {
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
        });
        if !(host_ok && port_ok) {
            return Err(refused());
        }
        self.origins.push(origin.into());
        Ok(self)
    }

    fn contains(&self, origin: &str) -> bool {
        self.origins.iter().any(|trusted| &**trusted == origin)
    }
}

/// Why an unsafe request was refused as cross-origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CrossOrigin {
    /// `Sec-Fetch-Site` says the request came from another origin.
    FetchSite,
    /// No `Sec-Fetch-Site`, and the `Origin` is not the request's host.
    OriginMismatch,
}

impl CrossOrigin {
    pub(super) fn code(self) -> &'static str {
        match self {
            Self::FetchSite => "sec_fetch_site_cross_origin",
            Self::OriginMismatch => "origin_not_host",
        }
    }
}

/// Whether `method` is safe (`GET`, `HEAD`, `OPTIONS`): such requests pass
/// the cross-origin rule whatever their origin, so an edge need not read
/// the browser's headers for them.
#[must_use]
pub fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Whether `request` on a route that does not allow cross-origin requests
/// may go on.
pub(super) fn check(
    request: &AdmissionRequest<'_>,
    trusted: &TrustedOrigins,
) -> Result<(), CrossOrigin> {
    if is_safe_method(request.method) {
        return Ok(());
    }
    if matches!(
        request.credential,
        PresentedCredential::Token {
            via: CredentialSource::Bearer,
            ..
        }
    ) {
        return Ok(());
    }
    let facts = &request.browser;
    if facts.origin.is_some_and(|origin| trusted.contains(origin)) {
        return Ok(());
    }
    match (facts.fetch_site, facts.origin) {
        (Some("same-origin" | "none"), _) | (None, None) => Ok(()),
        (Some(_), _) => Err(CrossOrigin::FetchSite),
        (None, Some(origin)) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            match (authority, facts.host) {
                (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host) => Ok(()),
                _ => Err(CrossOrigin::OriginMismatch),
            }
        }
    }
}
