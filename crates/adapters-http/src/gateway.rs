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
//! | [`CAPABILITIES`] `x-user-capabilities` | capabilities, comma-separated, sorted (may be empty) |
//! | [`TENANT_ID`] `x-tenant-id` | the tenant, only when the session has one |
//! | [`SIGNED_AT`] `x-user-signed-at` | Unix seconds when the session was verified |
//! | [`NONCE`] `x-user-nonce` | 128 random bits, base64url |
//! | [`SIGNATURE`] `x-user-signature` | HMAC-SHA256, base64url, over the lines below |
//!
//! The signed message is, joined by `\n`: `tessera-gateway-v1`, the method,
//! the path and query as the client sent them, signed-at, nonce, user id,
//! session id, role, capabilities, tenant (empty when none). The proxy must
//! forward the method, path and query unchanged.
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

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tessera_application::ports::Clock;
use tessera_domain::{Capability, Role, SessionEntity, SessionId, TenantId, UserId, UserRole};
use time::OffsetDateTime;

use crate::replay::{Refusal, ReplayCache};
use crate::response::Denial;

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

const DOMAIN: &str = "tessera-gateway-v1";
/// Prefix of the label an audience's key is derived from; signed messages
/// start with [`DOMAIN`] instead, so the two never collide.
const AUDIENCE_LABEL: &str = "tessera-gateway-audience:";
const NONCE_BYTES: usize = 16;
const SIGNATURE_BYTES: usize = 32;

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
struct Signed<'a> {
    method: &'a str,
    target: &'a str,
    signed_at: &'a str,
    nonce: &'a str,
    user_id: &'a str,
    session_id: &'a str,
    role: &'a str,
    capabilities: &'a str,
    tenant: &'a str,
}

impl Signed<'_> {
    /// The HMAC of the lines joined by `\n`, fed in place: the message is
    /// never built.
    fn tag(&self, key: &GatewayKey) -> hmac::Tag {
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
        ] {
            context.update(b"\n");
            context.update(line.as_bytes());
        }
        context.sign()
    }
}

/// Why the gateway could not sign a request's identity. Never caused by a
/// request's content: the randomness source failed, or the application's
/// role type names a role that is not a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignError {
    Random,
    NotAHeaderValue,
}

/// The gateway's half: signs the identity of verified sessions.
#[derive(Debug, Clone)]
pub(crate) struct GatewaySigner {
    key: GatewayKey,
}

impl GatewaySigner {
    pub(crate) fn new(key: GatewayKey) -> Self {
        Self { key }
    }

    /// The identity headers for `session`, verified at `at`, on a request
    /// with `method` to `target` (path and query).
    pub(crate) fn headers<R: Role>(
        &self,
        method: &str,
        target: &str,
        session: &SessionEntity<R>,
        at: OffsetDateTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let mut nonce = [0_u8; NONCE_BYTES];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SignError::Random)?;
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let signed_at = at.unix_timestamp().to_string();
        let user_id = session.user_id().to_string();
        let session_id = session.session_id().to_string();
        let capabilities = session
            .capabilities()
            .iter()
            .map(Capability::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let tenant = session.tenant().map(TenantId::as_str).unwrap_or_default();
        let signed = Signed {
            method,
            target,
            signed_at: &signed_at,
            nonce: &nonce,
            user_id: &user_id,
            session_id: &session_id,
            role: session.role().name(),
            capabilities: &capabilities,
            tenant,
        };
        let tag = signed.tag(&self.key);
        let signature = URL_SAFE_NO_PAD.encode(tag.as_ref());
        let value =
            |text: &str| HeaderValue::from_str(text).map_err(|_| SignError::NotAHeaderValue);
        let mut headers = vec![
            (HeaderName::from_static(USER_ID), value(&user_id)?),
            (HeaderName::from_static(SESSION_ID), value(&session_id)?),
            (HeaderName::from_static(ROLE), value(signed.role)?),
            (HeaderName::from_static(CAPABILITIES), value(&capabilities)?),
            (HeaderName::from_static(SIGNED_AT), value(&signed_at)?),
            (HeaderName::from_static(NONCE), value(&nonce)?),
            (HeaderName::from_static(SIGNATURE), value(&signature)?),
        ];
        if !tenant.is_empty() {
            headers.push((HeaderName::from_static(TENANT_ID), value(tenant)?));
        }
        Ok(headers)
    }
}

/// Why the identity headers of a request were not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayRejection {
    /// No identity headers at all (answer of the required extractor).
    #[error("the request carries no gateway identity")]
    Missing,
    /// Identity headers without a signature: someone bypassed the gateway.
    #[error("identity headers arrived without a gateway signature")]
    Unsigned,
    /// A signed header is missing, repeated, or not what it should be.
    #[error("gateway identity header {0} is missing, repeated or malformed")]
    Malformed(&'static str),
    /// The signature does not match the values.
    #[error("gateway signature does not verify")]
    BadSignature,
    /// The signature is older (or newer) than the freshness window allows.
    #[error("gateway signature is outside the freshness window")]
    Stale,
    /// The signature was already used.
    #[error("gateway signature was already used")]
    Replayed,
    /// The replay cache is full of live signatures: fail closed (503).
    #[error("gateway replay cache is full")]
    ReplayCacheFull,
}

impl GatewayRejection {
    fn denial(self) -> Denial {
        match self {
            Self::ReplayCacheFull => Denial::Refused(tessera_application::Refusal::Unavailable),
            Self::Missing
            | Self::Unsigned
            | Self::Malformed(_)
            | Self::BadSignature
            | Self::Stale
            | Self::Replayed => Denial::UntrustedIdentity,
        }
    }
}

impl crate::HttpRefusal for GatewayRejection {
    /// 401 `{"error":"untrusted_identity"}`, or 503 when the replay cache
    /// is full; the reason goes to `tracing`.
    fn into_http(self) -> http::Response<bytes::Bytes> {
        self.denial().into_http()
    }
}

/// The system clock, for verifiers built without one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SystemTime;

impl Clock for SystemTime {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The service's half: verifies identity headers from the gateway.
///
/// Clones share one replay cache; keep one per service (in the router
/// state), not one per request.
#[derive(Clone)]
pub struct GatewayVerifier {
    key: GatewayKey,
    freshness: i64,
    clock: Arc<dyn Clock>,
    replay: Arc<Mutex<ReplayCache<[u8; SIGNATURE_BYTES]>>>,
}

impl fmt::Debug for GatewayVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayVerifier")
            .field("freshness_seconds", &self.freshness)
            .finish_non_exhaustive()
    }
}

impl GatewayVerifier {
    /// A verifier with the system clock, a 30-second window and room for
    /// [`DEFAULT_REPLAY_CAPACITY`] signatures.
    #[must_use]
    pub fn new(key: GatewayKey) -> Self {
        Self {
            key,
            freshness: i64::from(DEFAULT_FRESHNESS_SECONDS),
            clock: Arc::new(SystemTime),
            replay: Arc::new(Mutex::new(ReplayCache::new(DEFAULT_REPLAY_CAPACITY))),
        }
    }

    /// How far, in seconds, `signed-at` may lie from now, either way (at
    /// least 1). Keep it short: it bounds how long a captured request can
    /// be replayed against a service without a replay cache of its own.
    #[must_use]
    pub fn with_freshness_seconds(mut self, seconds: u32) -> Self {
        self.freshness = i64::from(seconds.max(1));
        self
    }

    /// How many signatures the replay cache holds (at least 1). When it is
    /// full of signatures still within the window, requests are refused
    /// with [`GatewayRejection::ReplayCacheFull`] (503) rather than risk a
    /// replay: size it above the request rate times twice the window.
    #[must_use]
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.replay = Arc::new(Mutex::new(ReplayCache::new(capacity)));
        self
    }

    /// The clock freshness is measured with (tests pin it).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Verifies the identity headers of a request with `method` to `target`
    /// (its path and query, as the client of the gateway sent them).
    ///
    /// `Ok(None)` when the request carries no identity header at all (a
    /// guest the gateway let through).
    ///
    /// # Errors
    ///
    /// [`GatewayRejection`] naming the check that failed: identity headers
    /// without a signature, a missing/repeated/malformed header, a bad
    /// signature, a stale one, a replayed one, or a full replay cache.
    pub fn verify<R: Role>(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
    ) -> Result<Option<GatewayIdentity<R>>, GatewayRejection> {
        let result = self.check(method, target, headers);
        match &result {
            Ok(_) | Err(GatewayRejection::Missing) => {}
            Err(rejection) => tracing::warn!(%rejection, %method, "gateway identity refused"),
        }
        match result {
            Err(GatewayRejection::Missing) => Ok(None),
            other => other.map(Some),
        }
    }

    fn check<R: Role>(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
    ) -> Result<GatewayIdentity<R>, GatewayRejection> {
        if headers.get(SIGNATURE).is_none() {
            let spoofed = headers.keys().any(|name| is_identity_header(name.as_str()));
            return Err(if spoofed {
                GatewayRejection::Unsigned
            } else {
                GatewayRejection::Missing
            });
        }
        let one = |name| one_value(headers, name);
        let tenant = if headers.contains_key(TENANT_ID) {
            one(TENANT_ID)?
        } else {
            ""
        };
        let signed = Signed {
            method: method.as_str(),
            target,
            signed_at: one(SIGNED_AT)?,
            nonce: one(NONCE)?,
            user_id: one(USER_ID)?,
            session_id: one(SESSION_ID)?,
            role: one(ROLE)?,
            capabilities: one(CAPABILITIES)?,
            tenant,
        };
        let mut signature = [0_u8; SIGNATURE_BYTES];
        let signature_text = one(SIGNATURE)?;
        match URL_SAFE_NO_PAD.decode_slice(signature_text, &mut signature) {
            Ok(SIGNATURE_BYTES) if signature_text.len() == 43 => {}
            _ => return Err(GatewayRejection::Malformed(SIGNATURE)),
        }
        aws_lc_rs::constant_time::verify_slices_are_equal(
            signed.tag(&self.key).as_ref(),
            &signature,
        )
        .map_err(|_| GatewayRejection::BadSignature)?;

        // Authentic from here on: the rest checks time, replay and shape.
        let signed_at: i64 = signed
            .signed_at
            .parse()
            .map_err(|_| GatewayRejection::Malformed(SIGNED_AT))?;
        let now = self.clock.now().unix_timestamp();
        if now.abs_diff(signed_at) > self.freshness.unsigned_abs() {
            return Err(GatewayRejection::Stale);
        }
        let identity = GatewayIdentity::<R>::parse(&signed, signed_at)?;
        self.replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(signature, signed_at, now.saturating_sub(self.freshness))
            .map_err(|refusal| match refusal {
                Refusal::Seen { .. } => GatewayRejection::Replayed,
                Refusal::Full => GatewayRejection::ReplayCacheFull,
            })?;
        Ok(identity)
    }
}

/// The identity a gateway vouched for, verified: see [`GatewayVerifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayIdentity<R: Role = UserRole> {
    user_id: UserId,
    session_id: SessionId,
    role: R,
    capabilities: BTreeSet<Capability>,
    tenant: Option<TenantId>,
    signed_at: OffsetDateTime,
}

impl<R: Role> GatewayIdentity<R> {
    /// The identity in `signed`, whose `signed_at` line reads `signed_at`.
    fn parse(signed: &Signed<'_>, signed_at: i64) -> Result<Self, GatewayRejection> {
        let malformed = GatewayRejection::Malformed;
        let capabilities = signed
            .capabilities
            .split(',')
            .filter(|name| !name.is_empty())
            .map(|name| Capability::parse(name).map_err(|_| malformed(CAPABILITIES)))
            .collect::<Result<_, _>>()?;
        let tenant = match signed.tenant {
            "" => None,
            name => Some(TenantId::parse(name).map_err(|_| malformed(TENANT_ID))?),
        };
        let signed_at =
            OffsetDateTime::from_unix_timestamp(signed_at).map_err(|_| malformed(SIGNED_AT))?;
        Ok(Self {
            user_id: UserId::parse(signed.user_id).map_err(|_| malformed(USER_ID))?,
            session_id: SessionId::parse(signed.session_id).map_err(|_| malformed(SESSION_ID))?,
            role: R::parse(signed.role).map_err(|_| malformed(ROLE))?,
            capabilities,
            tenant,
            signed_at,
        })
    }

    /// The user.
    #[must_use]
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The session.
    #[must_use]
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    /// The user's role.
    #[must_use]
    pub fn role(&self) -> &R {
        &self.role
    }

    /// The user's capabilities.
    #[must_use]
    pub fn capabilities(&self) -> &BTreeSet<Capability> {
        &self.capabilities
    }

    /// The session's tenant, if any.
    #[must_use]
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// When the gateway verified the session.
    #[must_use]
    pub fn signed_at(&self) -> OffsetDateTime {
        self.signed_at
    }
}

/// The only value of header `name`, as text.
fn one_value<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, GatewayRejection> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value
            .to_str()
            .map_err(|_| GatewayRejection::Malformed(name)),
        _ => Err(GatewayRejection::Malformed(name)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use tessera_domain::{NewSession, UserRole};

    use super::*;
    use crate::HttpRefusal as _;

    const NOW: i64 = 1_700_000_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[derive(Debug)]
    struct Pinned(AtomicI64);

    impl Clock for Pinned {
        fn now(&self) -> OffsetDateTime {
            OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap()
        }
    }

    fn pinned() -> Arc<Pinned> {
        Arc::new(Pinned(AtomicI64::new(NOW)))
    }

    fn session(tenant: Option<&str>) -> SessionEntity<UserRole> {
        let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        SessionEntity::new(NewSession {
            user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap(),
            session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").unwrap(),
            role: UserRole::Moderator,
            capabilities: ["posts:hide", "posts:write"]
                .iter()
                .map(|c| Capability::parse(c).unwrap())
                .collect(),
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
            issued_at: now,
            expires_at: now + time::Duration::minutes(15),
            authenticated_at: now,
            authentication: Default::default(),
        })
        .unwrap()
    }

    fn signed(method: &Method, target: &str, tenant: Option<&str>) -> HeaderMap {
        let signer = GatewaySigner::new(GatewayKey::new(SECRET).unwrap());
        let at = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        signer
            .headers(method.as_str(), target, &session(tenant), at)
            .unwrap()
            .into_iter()
            .collect()
    }

    fn verifier(clock: Arc<Pinned>) -> GatewayVerifier {
        GatewayVerifier::new(GatewayKey::new(SECRET).unwrap()).with_clock(clock)
    }

    fn verify(
        v: &GatewayVerifier,
        headers: &HeaderMap,
    ) -> Result<Option<GatewayIdentity>, GatewayRejection> {
        v.verify::<UserRole>(&Method::GET, "/orders?page=2", headers)
    }

    #[test]
    fn identity_headers_are_recognised_in_every_spelling() {
        for name in [
            "x-user",
            "x-user-role",
            "x-user-id",
            "x_user_role",
            "x-user_role",
            "x_user-signature",
            "x-tenant-id",
            "x_tenant_id",
            "x-tenant_id",
        ] {
            assert!(is_identity_header(name), "{name}");
        }
        for name in [
            "x-username",
            "x-users",
            "x-tenant-ids",
            "x-tenant",
            "user-role",
            "x-request-id",
            "authorization",
            "",
        ] {
            assert!(!is_identity_header(name), "{name}");
        }
    }

    #[test]
    fn stripping_removes_every_value_of_every_identity_header() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("X-User-Role", "admin"),
            ("x-user-role", "admin"),
            ("X-USER-ID", "0190b5a4-7c2e-7d3a-9f00-000000000001"),
            ("X-User_Role", "admin"),
            ("X-Tenant-Id", "acme"),
            ("x-tenant-id", "globex"),
            ("X-User", "root"),
            ("X-User-Signature", "forged"),
            ("x-username", "kept"),
            ("accept", "*/*"),
        ] {
            headers.append(
                HeaderName::try_from(name).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        assert_eq!(strip_identity_headers(&mut headers), 6);
        let mut left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-username"]);
    }

    #[test]
    fn a_signed_identity_verifies_and_carries_every_value() {
        let headers = signed(&Method::GET, "/orders?page=2", Some("acme"));
        let identity = verify(&verifier(pinned()), &headers).unwrap().unwrap();
        assert_eq!(identity.user_id(), session(None).user_id());
        assert_eq!(identity.session_id(), session(None).session_id());
        assert_eq!(identity.role(), &UserRole::Moderator);
        assert_eq!(identity.capabilities(), session(None).capabilities());
        assert_eq!(identity.tenant().map(TenantId::as_str), Some("acme"));
        assert_eq!(identity.signed_at().unix_timestamp(), NOW);
        assert_eq!(headers[CAPABILITIES], "posts:hide,posts:write");
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_documented_lines() {
        let headers = signed(&Method::POST, "/orders?page=2", Some("acme"));
        let text = |name: &str| headers[name].to_str().unwrap();
        // Written out by hand from the module docs, not from `Signed`.
        let message = format!(
            "tessera-gateway-v1\nPOST\n/orders?page=2\n{}\n{}\n{}\n{}\nmoderator\nposts:hide,posts:write\nacme",
            text(SIGNED_AT),
            text(NONCE),
            text(USER_ID),
            text(SESSION_ID),
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
        let expected = URL_SAFE_NO_PAD.encode(hmac::sign(&key, message.as_bytes()).as_ref());
        assert_eq!(text(SIGNATURE), expected);
    }

    #[test]
    fn a_session_without_tenant_sends_no_tenant_header() {
        let headers = signed(&Method::GET, "/orders?page=2", None);
        assert!(headers.get(TENANT_ID).is_none());
        let identity = verify(&verifier(pinned()), &headers).unwrap().unwrap();
        assert_eq!(identity.tenant(), None);
    }

    #[test]
    fn no_identity_headers_is_a_guest() {
        assert_eq!(verify(&verifier(pinned()), &HeaderMap::new()), Ok(None));
    }

    #[test]
    fn identity_headers_without_a_signature_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(ROLE, HeaderValue::from_static("admin"));
        assert_eq!(
            verify(&verifier(pinned()), &headers),
            Err(GatewayRejection::Unsigned)
        );
    }

    #[test]
    fn any_changed_value_breaks_the_signature() {
        let v = verifier(pinned());
        for (name, value) in [
            (ROLE, "admin"),
            (USER_ID, "0190b5a4-7c2e-7d3a-9f00-0000000000ff"),
            (CAPABILITIES, "posts:hide,posts:write,users:ban"),
            (TENANT_ID, "globex"),
            (SIGNED_AT, "1700000001"),
            (NONCE, "AAAAAAAAAAAAAAAAAAAAAA"),
        ] {
            let mut headers = signed(&Method::GET, "/orders?page=2", Some("acme"));
            headers.insert(name, HeaderValue::from_static(value));
            assert_eq!(
                verify(&v, &headers),
                Err(GatewayRejection::BadSignature),
                "{name}"
            );
        }
        // Removing the tenant changes the message too.
        let mut headers = signed(&Method::GET, "/orders?page=2", Some("acme"));
        headers.remove(TENANT_ID);
        assert_eq!(verify(&v, &headers), Err(GatewayRejection::BadSignature));
    }

    #[test]
    fn a_signature_for_another_request_or_key_is_refused() {
        let v = verifier(pinned());
        let other_path = signed(&Method::GET, "/orders?page=3", None);
        assert_eq!(verify(&v, &other_path), Err(GatewayRejection::BadSignature));
        let other_method = signed(&Method::DELETE, "/orders?page=2", None);
        assert_eq!(
            verify(&v, &other_method),
            Err(GatewayRejection::BadSignature)
        );
        let other_key =
            GatewayVerifier::new(GatewayKey::new(&[7; 32]).unwrap()).with_clock(pinned());
        let headers = signed(&Method::GET, "/orders?page=2", None);
        assert_eq!(
            verify(&other_key, &headers),
            Err(GatewayRejection::BadSignature)
        );
    }

    #[test]
    fn a_signature_for_one_audience_verifies_there_and_nowhere_else() {
        let master = GatewayKey::new(SECRET).unwrap();
        let signer = GatewaySigner::new(master.for_audience("orders"));
        let at = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        let headers: HeaderMap = signer
            .headers("GET", "/orders?page=2", &session(None), at)
            .unwrap()
            .into_iter()
            .collect();
        let at = |key: GatewayKey| GatewayVerifier::new(key).with_clock(pinned());
        for other in [
            master.for_audience("billing"),
            master.for_audience("Orders"),
            master.for_audience("orders ").for_audience(""),
            master.clone(),
        ] {
            assert_eq!(
                verify(&at(other), &headers),
                Err(GatewayRejection::BadSignature)
            );
        }
        // Same derivation, same key: from the master secret again.
        let orders = GatewayKey::new(SECRET).unwrap().for_audience("orders");
        assert!(verify(&at(orders), &headers).unwrap().is_some());
        assert_eq!(
            format!("{:?}", master.for_audience("orders")),
            "GatewayKey(**redacted**)"
        );
    }

    #[test]
    fn signatures_outside_the_freshness_window_are_stale() {
        let clock = pinned();
        let v = verifier(clock.clone());
        clock.0.store(NOW + 31, Ordering::SeqCst);
        assert_eq!(
            verify(&v, &signed(&Method::GET, "/orders?page=2", None)),
            Err(GatewayRejection::Stale)
        );
        clock.0.store(NOW - 31, Ordering::SeqCst);
        assert_eq!(
            verify(&v, &signed(&Method::GET, "/orders?page=2", None)),
            Err(GatewayRejection::Stale)
        );
        clock.0.store(NOW + 30, Ordering::SeqCst);
        assert!(verify(&v, &signed(&Method::GET, "/orders?page=2", None)).is_ok());
    }

    #[test]
    fn a_replayed_signature_is_refused_and_a_fresh_one_accepted() {
        let v = verifier(pinned());
        let headers = signed(&Method::GET, "/orders?page=2", None);
        assert!(verify(&v, &headers).unwrap().is_some());
        assert_eq!(verify(&v, &headers), Err(GatewayRejection::Replayed));
        // Clones share the cache.
        assert_eq!(
            verify(&v.clone(), &headers),
            Err(GatewayRejection::Replayed)
        );
        // Same request again through the gateway: a new nonce, a new signature.
        assert!(verify(&v, &signed(&Method::GET, "/orders?page=2", None)).is_ok());
    }

    #[test]
    fn a_full_replay_cache_fails_closed_until_old_signatures_expire() {
        let clock = pinned();
        let v = verifier(clock.clone()).with_replay_capacity(1);
        assert!(verify(&v, &signed(&Method::GET, "/orders?page=2", None)).is_ok());
        let second = signed(&Method::GET, "/orders?page=2", None);
        assert_eq!(verify(&v, &second), Err(GatewayRejection::ReplayCacheFull));
        assert_eq!(
            GatewayRejection::ReplayCacheFull.into_http().status(),
            http::StatusCode::SERVICE_UNAVAILABLE
        );
        // Once the first is out of the window it is forgotten; `second`
        // itself is then stale, but a fresh one is admitted.
        clock.0.store(NOW + 31, Ordering::SeqCst);
        let signer = GatewaySigner::new(GatewayKey::new(SECRET).unwrap());
        let later = OffsetDateTime::from_unix_timestamp(NOW + 31).unwrap();
        let fresh: HeaderMap = signer
            .headers("GET", "/orders?page=2", &session(None), later)
            .unwrap()
            .into_iter()
            .collect();
        assert!(verify(&v, &fresh).is_ok());
    }

    #[test]
    fn repeated_or_malformed_signed_headers_are_refused() {
        let v = verifier(pinned());
        let mut headers = signed(&Method::GET, "/orders?page=2", None);
        headers.append(ROLE, HeaderValue::from_static("admin"));
        assert_eq!(verify(&v, &headers), Err(GatewayRejection::Malformed(ROLE)));
        let mut headers = signed(&Method::GET, "/orders?page=2", None);
        headers.insert(SIGNATURE, HeaderValue::from_static("not-base64!"));
        assert_eq!(
            verify(&v, &headers),
            Err(GatewayRejection::Malformed(SIGNATURE))
        );
        let mut headers = signed(&Method::GET, "/orders?page=2", None);
        headers.remove(NONCE);
        assert_eq!(
            verify(&v, &headers),
            Err(GatewayRejection::Malformed(NONCE))
        );
    }

    #[test]
    fn every_refusal_but_a_full_cache_is_401_untrusted_identity() {
        for rejection in [
            GatewayRejection::Missing,
            GatewayRejection::Unsigned,
            GatewayRejection::Malformed(ROLE),
            GatewayRejection::BadSignature,
            GatewayRejection::Stale,
            GatewayRejection::Replayed,
        ] {
            let response = rejection.into_http();
            assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
            assert!(
                response
                    .headers()
                    .get(http::header::WWW_AUTHENTICATE)
                    .is_none()
            );
        }
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        assert_eq!(
            GatewayKey::new(&[1; 31]).unwrap_err(),
            GatewayKeyError::TooShort { min: 32 }
        );
        let key = GatewayKey::new(SECRET).unwrap();
        assert_eq!(format!("{key:?}"), "GatewayKey(**redacted**)");
        assert!(!format!("{:?}", verifier(pinned())).contains("0123"));
    }
}
