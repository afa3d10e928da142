//! The administrative endpoints: a bearer secret, then force-logout,
//! permissions changed, one session revoked, and users' current claims.

use std::collections::BTreeSet;

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::extract::{Path, Request, State as Extract};
use axum::middleware::Next;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use tessera_application::RevokeRequest;
use tessera_application::ports::{DirectoryUser, WatermarkScope};
use tessera_domain::{Capability, Role as _, SessionId, TenantId, UserId, UserRole};

use super::Shared;
use super::config::{ConfigError, MIN_SECRET_BYTES, invalid};
use super::reply::{BadRequest, Reply, error, json, parse_json};

/// The administrative secret, held as an HMAC tag under a random key of
/// this process: a presented secret is compared by verifying its tag, in
/// constant time and whatever its length.
pub(super) struct AdminSecret {
    key: hmac::Key,
    tag: hmac::Tag,
}

impl AdminSecret {
    /// The secret `secret`, at least [`MIN_SECRET_BYTES`] long.
    pub(super) fn new(secret: &str) -> Result<Self, ConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(invalid(
                "admin.secret",
                format!("needs at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| invalid("admin.secret", "no randomness"))?;
        let tag = hmac::sign(&key, secret.as_bytes());
        Ok(Self { key, tag })
    }

    /// Whether `presented` is the secret.
    fn matches(&self, presented: &[u8]) -> bool {
        hmac::verify(&self.key, presented, self.tag.as_ref()).is_ok()
    }
}

/// Lets a request through only with `Authorization: Bearer <admin secret>`.
pub(super) async fn require_secret(
    Extract(state): Extract<Shared>,
    request: Request,
    next: Next,
) -> Reply {
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let presented = match (values.next(), values.next()) {
        (Some(value), None) => value.as_bytes().strip_prefix(b"Bearer ".as_slice()),
        _ => None,
    };
    let allowed = match (&state.admin, presented) {
        (Some(secret), Some(presented)) => secret.matches(presented),
        _ => false,
    };
    if allowed {
        return next.run(request).await;
    }
    tracing::warn!(path = %request.uri().path(), "administrative call without the secret");
    let mut reply = error(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "the administrative secret is required",
    );
    reply.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tessera-admin\""),
    );
    reply
}

/// Whom a force-logout or permissions change applies to: exactly one of
/// the three.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeBody {
    user_id: Option<String>,
    tenant: Option<String>,
    #[serde(default)]
    everyone: bool,
}

impl ScopeBody {
    fn scope(self) -> Result<WatermarkScope, String> {
        match (self.user_id, self.tenant, self.everyone) {
            (Some(user), None, false) => UserId::parse(&user)
                .map(WatermarkScope::User)
                .map_err(|error| format!("user_id: {error}")),
            (None, Some(tenant), false) => TenantId::parse(&tenant)
                .map(WatermarkScope::Tenant)
                .map_err(|error| format!("tenant: {error}")),
            (None, None, true) => Ok(WatermarkScope::Everyone),
            _ => Err("give exactly one of user_id, tenant or \"everyone\": true".to_owned()),
        }
    }
}

/// Records `request`, answering 204, or 503 when the store cannot.
async fn revoke(state: &Shared, request: RevokeRequest) -> Reply {
    match state.sessions.revoke().execute(request).await {
        Ok(()) => {
            state.metrics.revocation();
            json(StatusCode::OK, &serde_json::json!({ "recorded": true }))
        }
        Err(cause) => {
            tracing::warn!(error = ?cause, "revocation not recorded");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the revocation store cannot record it",
            )
        }
    }
}

/// The scope in `body`, or why not.
fn scope_of(body: &[u8]) -> Result<WatermarkScope, BadRequest> {
    parse_json::<ScopeBody>(body)?.scope().map_err(BadRequest)
}

/// `POST /admin/force-logout`: every session of a user, a tenant or
/// everyone issued up to now is refused from now on.
pub(super) async fn force_logout(Extract(state): Extract<Shared>, body: Bytes) -> Reply {
    match scope_of(&body) {
        Ok(scope) => {
            tracing::info!(?scope, "force-logout");
            revoke(&state, RevokeRequest::ForceLogout(scope)).await
        }
        Err(bad) => bad.into(),
    }
}

/// `POST /admin/permissions-changed`: sessions in scope issued up to now
/// rotate at their next verdict, reading their claims afresh.
pub(super) async fn permissions_changed(Extract(state): Extract<Shared>, body: Bytes) -> Reply {
    match scope_of(&body) {
        Ok(scope) => {
            tracing::info!(?scope, "permissions changed");
            revoke(&state, RevokeRequest::PermissionsChanged(scope)).await
        }
        Err(bad) => bad.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeSessionBody {
    session_id: String,
}

/// `POST /admin/revoke-session`: one session (`jti`) logged out, every
/// token of it.
pub(super) async fn revoke_session(Extract(state): Extract<Shared>, body: Bytes) -> Reply {
    let session_id = match parse_json::<RevokeSessionBody>(&body).and_then(|body| {
        SessionId::parse(&body.session_id)
            .map_err(|error| BadRequest(format!("session_id: {error}")))
    }) {
        Ok(session_id) => session_id,
        Err(bad) => return bad.into(),
    };
    // No token of the session authenticated later than now: keeping the
    // logout one absolute lifetime from now outlasts every one of them.
    let request = RevokeRequest::Session {
        session_id,
        authenticated_at: state.clock.now(),
    };
    revoke(&state, request).await
}

/// A user's current claims, as sign-in and `PUT /admin/users` take them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserBody {
    /// Sign-in's user; in `PUT /admin/users/{user_id}`, the path's.
    pub(super) user_id: Option<String>,
    pub(super) role: String,
    #[serde(default)]
    pub(super) capabilities: Vec<String>,
    pub(super) tenant: Option<String>,
    #[serde(default = "enabled")]
    pub(super) enabled: bool,
}

fn enabled() -> bool {
    true
}

impl UserBody {
    /// The directory entry of `user_id`, or the field at fault.
    pub(super) fn directory_user(
        &self,
        user_id: UserId,
    ) -> Result<DirectoryUser<UserRole>, String> {
        if self
            .user_id
            .as_deref()
            .is_some_and(|id| id != user_id.to_string())
        {
            return Err("user_id: not the user of the path".to_owned());
        }
        let role = UserRole::parse(&self.role).map_err(|error| format!("role: {error}"))?;
        let capabilities = self
            .capabilities
            .iter()
            .map(|capability| Capability::parse(capability))
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|error| format!("capabilities: {error}"))?;
        let tenant = self
            .tenant
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .map_err(|error| format!("tenant: {error}"))?;
        Ok(DirectoryUser {
            user_id,
            role,
            capabilities,
            tenant,
            enabled: self.enabled,
        })
    }
}

/// `PUT /admin/users/{user_id}`: the user's current role, capabilities,
/// tenant and enabled flag; their sessions rotate onto them at their next
/// verdict (a disabled user's are refused then).
pub(super) async fn put_user(
    Extract(state): Extract<Shared>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Reply {
    let user = match UserId::parse(&user_id)
        .map_err(|error| BadRequest(format!("user id: {error}")))
        .and_then(|user_id| {
            parse_json::<UserBody>(&body)?
                .directory_user(user_id)
                .map_err(BadRequest)
        }) {
        Ok(user) => user,
        Err(bad) => return bad.into(),
    };
    let user_id = user.user_id;
    if let Err(cause) = state.users.upsert(user).await {
        tracing::warn!(error = ?cause, "user not recorded");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the user directory cannot record it",
        );
    }
    revoke(
        &state,
        RevokeRequest::PermissionsChanged(WatermarkScope::User(user_id)),
    )
    .await
}
