//! Gateway mode: the identity of a verified session, passed to services
//! behind a reverse proxy in signed headers.
//!
//! # The gateway
//!
//! With [`SessionEdgeBuilder::gateway`](crate::SessionEdgeBuilder::gateway),
//! the session middleware first **strips** every header a client sent whose name is
//! `x-user`, starts with `x-user-`, or is `x-tenant-id` — in any case, any
//! number of times, and also when spelled with `_` for `-` (`X-User_Role`),
//! which some frameworks read as the same header. Then, for a request with
//! a verified session, it **injects**:
//!
//! | header | value |
//! |---|---|
//! | [`USER_ID`] `x-user-id` | the user id (UUID) |
//! | [`SESSION_ID`] `x-user-session-id` | the session id (UUID) |
//! | [`ROLE`] `x-user-role` | the role's wire name |
//! | [`CAPABILITIES`] `x-user-capabilities` | capabilities, comma-separated, sorted (may be empty; a service reads an absent header as empty, since proxies such as nginx drop empty headers) |
//! | [`TENANT_ID`] `x-tenant-id` | the tenant, only when the session has one |
//! | [`ACR`] `x-user-acr` | how strongly the user authenticated (OpenID Connect `acr`), only when known |
//! | [`AMR`] `x-user-amr` | how the user authenticated (`amr`, RFC 8176), space-separated, only when known |
//! | [`SIGNED_AT`] `x-user-signed-at` | Unix seconds when the session was verified |
//! | [`NONCE`] `x-user-nonce` | 128 random bits, base64url |
//! | [`SIGNATURE`] `x-user-signature` | HMAC-SHA256, base64url, over the lines below |
//!
//! The signed message is, joined by `\n`: `tessera-gateway-v2`, the method,
//! the path and query as the client sent them, signed-at, nonce, user id,
//! session id, role, capabilities, tenant, acr, amr (each of the last three
//! empty when none). The proxy must forward the method, path and query
//! unchanged. (`v1` messages, which ended with the tenant, are no longer
//! made or accepted: a service must be updated with its gateway.)
//!
//! A service can so enforce step-up rules of its own (RFC 9470) on what
//! the gateway verified: the session's `acr` and `amr` are those of the
//! sign-in, or of the provider token it was exchanged for.
//!
//! # The service behind it
//!
//! [`GatewayVerifier::verify`] (behind the framework adapters' gateway
//! identity extractors) checks the signature in
//! constant time, that `signed-at` is within the freshness window (30 s by
//! default, either way), and that the signature was not seen before within
//! the window (a bounded replay cache), then parses the values.
//!
//! # Audiences: one key per service
//!
//! The signed message does not name the service it is for, and each
//! service has its own replay cache: with one key shared by every service,
//! a compromised service could replay a request it received (same method
//! and path) to another service within the freshness window. So give each
//! service its own key, derived from one master secret with
//! [`GatewayKey::for_audience`]:
//!
//! - the gateway: one session edge ([`SessionEdge`](crate::SessionEdge)) per upstream
//!   service (on the router, or nested router, that proxies to it), each
//!   built with `.gateway(master.for_audience("orders"))`;
//! - the service: `GatewayVerifier::new(master.for_audience("orders"))`.
//!
//! A signature made for `orders` then fails at `billing` (a
//! [`GatewayRejection::BadSignature`]), and a service holding only its own
//! derived key can neither sign nor verify for another. Using the master
//! key itself on both sides still works, without that binding.

use std::fmt;

use aws_lc_rs::hmac;
use http::{HeaderMap, HeaderName};

mod signer;
#[cfg(test)]
mod tests;
mod verifier;

pub(crate) use self::signer::GatewaySigner;
pub use self::verifier::{GatewayIdentity, GatewayRejection, GatewayVerifier};

/// The user id header.
pub const USER_ID: &str = "x-user-id";
/// The session id header.
pub const SESSION_ID: &str = "x-user-session-id";
/// The role header.
pub const ROLE: &str = "x-user-role";
/// The capabilities header (comma-separated, sorted, may be empty).
pub const CAPABILITIES: &str = "x-user-capabilities";
/// The tenant header (absent when the session has no tenant).
pub const TENANT_ID: &str = "x-tenant-id";
/// The authentication context class reference header (absent when the
/// session does not know it).
pub const ACR: &str = "x-user-acr";
/// The authentication methods header, space-separated (absent when the
/// session does not know them).
pub const AMR: &str = "x-user-amr";
/// The time of verification, in Unix seconds.
pub const SIGNED_AT: &str = "x-user-signed-at";
/// A random nonce, so that two identical requests in one second differ.
pub const NONCE: &str = "x-user-nonce";
/// The HMAC-SHA256 signature, base64url without padding.
pub const SIGNATURE: &str = "x-user-signature";

/// The shortest gateway key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// The default freshness window, in seconds, either side of now.
pub const DEFAULT_FRESHNESS_SECONDS: u32 = 30;
/// The default number of signatures the replay cache holds.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

pub(crate) const DOMAIN: &str = "tessera-gateway-v2";
/// Prefix of the label an audience's key is derived from; signed messages
/// start with [`DOMAIN`] instead, so the two never collide.
const AUDIENCE_LABEL: &str = "tessera-gateway-audience:";
pub(crate) const NONCE_BYTES: usize = 16;
pub(crate) const SIGNATURE_BYTES: usize = 32;

/// Whether a header name is one of the identity headers a client may never
/// send: `x-user`, `x-user-*`, `x-tenant-id`, with `_` read as `-`.
/// `name` is lowercase, as [`HeaderName`]s are.
#[must_use]
pub fn is_identity_header(name: &str) -> bool {
    let bytes = name.as_bytes();
    let same = |i: usize, want: u8| {
        bytes
            .get(i)
            .is_some_and(|&b| b == want || (want == b'-' && b == b'_'))
    };
    let starts = |prefix: &str| prefix.bytes().enumerate().all(|(i, want)| same(i, want));
    (starts("x-user") && (bytes.len() == 6 || same(6, b'-')))
        || (bytes.len() == TENANT_ID.len() && starts(TENANT_ID))
}

/// Removes every identity header (see [`is_identity_header`]) from
/// `headers`, all values of each; returns how many names were removed.
pub fn strip_identity_headers(headers: &mut HeaderMap) -> usize {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in &doomed {
        headers.remove(name);
    }
    doomed.len()
}

/// The secret shared by the gateway and the services behind it.
///
/// Its `Debug` prints `GatewayKey(**redacted**)`.
#[derive(Clone)]
pub struct GatewayKey {
    key: hmac::Key,
}

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayKey(**redacted**)")
    }
}

/// Why a gateway key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayKeyError {
    /// The secret is shorter than [`MIN_KEY_BYTES`].
    #[error("a gateway key needs at least {min} bytes")]
    TooShort {
        /// The minimum, in bytes.
        min: usize,
    },
}

impl GatewayKey {
    /// A key for HMAC-SHA256 from a random secret of at least
    /// [`MIN_KEY_BYTES`] bytes.
    ///
    /// # Errors
    ///
    /// [`GatewayKeyError::TooShort`] for a shorter secret.
    pub fn new(secret: &[u8]) -> Result<Self, GatewayKeyError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(GatewayKeyError::TooShort { min: MIN_KEY_BYTES });
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// The key of one downstream service, the *audience*: HMAC-SHA256 of
    /// `tessera-gateway-audience:<audience>` under this (master) key, used
    /// as a key of its own. The gateway signs with it for requests it
    /// forwards to that service, and that service verifies with it, so a
    /// signature made for one audience does not verify at another (see
    /// [Audiences](self#audiences-one-key-per-service)).
    ///
    /// Audience names are compared exactly (case and all); any string is
    /// accepted, but keep them fixed service names from configuration.
    #[must_use]
    pub fn for_audience(&self, audience: &str) -> Self {
        let label = format!("{AUDIENCE_LABEL}{audience}");
        let derived = hmac::sign(&self.key, label.as_bytes());
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }
}

/// The lines the signature covers, in order.
pub(crate) struct Signed<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) signed_at: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) user_id: &'a str,
    pub(crate) session_id: &'a str,
    pub(crate) role: &'a str,
    pub(crate) capabilities: &'a str,
    pub(crate) tenant: &'a str,
    pub(crate) acr: &'a str,
    pub(crate) amr: &'a str,
}

impl Signed<'_> {
    /// The HMAC of the lines joined by `\n`, fed in place: the message is
    /// never built.
    pub(crate) fn tag(&self, key: &GatewayKey) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&key.key);
        context.update(DOMAIN.as_bytes());
        for line in [
            self.method,
            self.target,
            self.signed_at,
            self.nonce,
            self.user_id,
            self.session_id,
            self.role,
            self.capabilities,
            self.tenant,
            self.acr,
            self.amr,
        ] {
            context.update(b"\n");
            context.update(line.as_bytes());
        }
        context.sign()
    }
}
