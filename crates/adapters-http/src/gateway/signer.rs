//! The gateway's half: the signed identity headers of a verified session.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderName, HeaderValue};
use tessera_domain::{Acr, AuthMethod, Capability, Role, SessionEntity, TenantId};
use time::OffsetDateTime;

use super::*;

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
        let authentication = session.authentication();
        let acr = authentication.acr().map(Acr::as_str).unwrap_or_default();
        let amr = authentication
            .amr()
            .iter()
            .map(AuthMethod::as_str)
            .collect::<Vec<_>>()
            .join(" ");
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
            acr,
            amr: &amr,
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
        for (name, text) in [(TENANT_ID, tenant), (ACR, acr), (AMR, &amr)] {
            if !text.is_empty() {
                headers.push((HeaderName::from_static(name), value(text)?));
            }
        }
        Ok(headers)
    }
}
