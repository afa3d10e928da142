//! Operations: the public keys, liveness, readiness and metrics.

use axum::extract::State as Extract;
use http::StatusCode;
use tessera_application::ports::RevocationQuery;
use tessera_domain::{SessionId, UserId};
use tessera_infrastructure::{KeyRing, VerificationKey};

use super::Shared;
use super::reply::{Reply, json, with_type};

/// The JWK set of every asymmetric key in `ring`. A symmetric (HS256) key
/// is a shared secret and is never published.
fn public_jwks(ring: &KeyRing) -> String {
    let keys: Vec<serde_json::Value> = ring
        .verification_keys()
        .iter()
        .filter_map(public_jwk)
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

fn public_jwk(key: &VerificationKey) -> Option<serde_json::Value> {
    if key.algorithm().is_symmetric() {
        return None;
    }
    key.to_public_jwk()
        .inspect_err(|error| tracing::error!(%error, kid = ?key.kid(), "public key not exportable"))
        .ok()
        .and_then(|jwk| serde_json::from_str(&jwk).ok())
}

/// `GET /.well-known/jwks.json`: the ring in use, so a key the schedule
/// publishes appears at once.
pub(super) async fn jwks(Extract(state): Extract<Shared>) -> Reply {
    let jwks = public_jwks(&state.sessions.codec().key_ring());
    let mut reply = with_type(StatusCode::OK, "application/json", jwks);
    // Public and cacheable for a little while: verifiers poll it.
    let max_age = format!(
        "public, max-age={}",
        super::schedule::JWKS_MAX_AGE.whole_seconds()
    );
    if let Ok(value) = http::HeaderValue::from_str(&max_age) {
        reply
            .headers_mut()
            .insert(http::header::CACHE_CONTROL, value);
    }
    reply
}

/// `GET /healthz`: the process answers.
pub(super) async fn healthz() -> Reply {
    json(StatusCode::OK, &serde_json::json!({ "status": "live" }))
}

/// Whether the revocation state can be trusted: a probe no session
/// matches, which the store answers from memory or refuses when stale.
fn revocation_state_trusted(state: &Shared) -> bool {
    let probe = uuid::Uuid::now_v7().to_string();
    let (Ok(session_id), Ok(user_id)) = (SessionId::parse(&probe), UserId::parse(&probe)) else {
        return false;
    };
    state
        .revocations
        .check(RevocationQuery {
            session_id: &session_id,
            user_id: &user_id,
            tenant: None,
            issued_at: time::OffsetDateTime::now_utc(),
        })
        .is_ok()
}

/// `GET /readyz`: 503 while the revocation state cannot be trusted (the
/// verdicts fail closed then).
pub(super) async fn readyz(Extract(state): Extract<Shared>) -> Reply {
    if revocation_state_trusted(&state) {
        json(StatusCode::OK, &serde_json::json!({ "status": "ready" }))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "revocation state untrusted" }),
        )
    }
}

/// `GET /metrics`: Prometheus text.
pub(super) async fn metrics(Extract(state): Extract<Shared>) -> Reply {
    let lag = state.sync_lag.as_ref().and_then(|lag| lag());
    with_type(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        state.metrics.render(
            revocation_state_trusted(&state),
            lag,
            state
                .provider
                .as_ref()
                .map(super::provider::Provider::key_fetches)
                .as_ref(),
        ),
    )
}
