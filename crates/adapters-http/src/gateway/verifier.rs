//! The service's half: identity headers from the gateway, verified.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Method};
use tessera_application::ports::Clock;
use tessera_domain::{
    Acr, AuthMethod, Authentication, Capability, Role, SessionId, TenantId, UserId, UserRole,
};
use time::OffsetDateTime;

use super::*;
use crate::replay::{Refusal, ReplayCache};
use crate::response::Denial;
use crate::system_time::SystemTime;

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
        // The headers sent only when there is a value, and the capabilities
        // (proxies such as nginx drop a header whose value is empty): absent
        // reads as empty, which the signature covers.
        let optional = |name| {
            if headers.contains_key(name) {
                one(name)
            } else {
                Ok("")
            }
        };
        let signed = Signed {
            method: method.as_str(),
            target,
            signed_at: one(SIGNED_AT)?,
            nonce: one(NONCE)?,
            user_id: one(USER_ID)?,
            session_id: one(SESSION_ID)?,
            role: one(ROLE)?,
            capabilities: optional(CAPABILITIES)?,
            tenant: optional(TENANT_ID)?,
            acr: optional(ACR)?,
            amr: optional(AMR)?,
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
    authentication: Authentication,
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
        let acr = match signed.acr {
            "" => None,
            acr => Some(Acr::parse(acr).map_err(|_| malformed(ACR))?),
        };
        let amr = signed
            .amr
            .split(' ')
            .filter(|method| !method.is_empty())
            .map(|method| AuthMethod::parse(method).map_err(|_| malformed(AMR)))
            .collect::<Result<_, _>>()?;
        let authentication = Authentication::new(acr, amr).map_err(|_| malformed(AMR))?;
        let signed_at =
            OffsetDateTime::from_unix_timestamp(signed_at).map_err(|_| malformed(SIGNED_AT))?;
        Ok(Self {
            user_id: UserId::parse(signed.user_id).map_err(|_| malformed(USER_ID))?,
            session_id: SessionId::parse(signed.session_id).map_err(|_| malformed(SESSION_ID))?,
            role: R::parse(signed.role).map_err(|_| malformed(ROLE))?,
            capabilities,
            tenant,
            authentication,
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

    /// How the user authenticated (`acr`, `amr`), as far as the session
    /// knows.
    #[must_use]
    pub fn authentication(&self) -> &Authentication {
        &self.authentication
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
