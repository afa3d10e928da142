//! The hybrid path: an identity provider's bearer token, verified, its
//! local user resolved, and the route decided for a session built from
//! both.

use std::sync::Arc;

use tessera_domain::{NewSession, Role, SessionEntity};

use super::Inner;
use super::outcome::{AdmittedSession, ProviderSession, Refusal, Verdict};
use super::request::AdmissionRequest;
use crate::external::{ExternalIdentity, ExternalTokenVerifier, ExternalUser, TokenUse};
use crate::ports::RevocationStatus;
use crate::usecases::resolve_user::{ResolveUser, ResolveUserRequest};

/// What admits provider tokens.
#[derive(Clone)]
pub(super) struct ProviderTokens<R: Role> {
    pub(super) verifier: Arc<dyn ExternalTokenVerifier<R>>,
    pub(super) resolve: ResolveUser<R>,
}

impl<R: Role> ProviderTokens<R> {
    /// Verifies and resolves `token` and decides the route.
    pub(super) async fn admit(
        &self,
        admission: &Inner<R>,
        request: &AdmissionRequest<'_>,
        token: &str,
    ) -> Verdict<R> {
        let (method, path) = (request.method, request.path);
        let route = admission.policy.route(method, path);
        let refuse = |refusal: Refusal, code: &'static str| {
            if !route.needs_session() {
                tracing::debug!(
                    code,
                    method,
                    path,
                    "provider token ignored on a route that needs none"
                );
                return admission.guest(&route, request, true);
            }
            if refusal == Refusal::Unavailable {
                tracing::warn!(
                    code,
                    method,
                    path,
                    "provider token cannot be checked; failing closed"
                );
            } else {
                tracing::debug!(code, method, path, "provider token refused");
            }
            // A bearer client is not a browser: never a redirect.
            Verdict::Refuse(refusal)
        };
        let unauthenticated = Refusal::Unauthenticated { refused: true };
        let identity = match self.verifier.verify(token).await {
            Ok(identity) => identity,
            Err(error) => return refuse(error.refusal(), error.code()),
        };
        // An ID token says who signed in at a client; it is no credential
        // for an API (see `TokenUse`).
        if identity.token_use != TokenUse::Access {
            return refuse(unauthenticated, "token_use_refused");
        }
        let resolved = match self
            .resolve
            .execute(ResolveUserRequest {
                identity: &identity,
            })
            .await
        {
            Ok(resolved) => resolved,
            Err(error) if error.is_unavailable() => {
                return refuse(Refusal::Unavailable, error.code());
            }
            Err(error) => return refuse(unauthenticated, error.code()),
        };
        // Logouts reach provider tokens: a force-logout of the user, their
        // tenant or everyone refuses tokens issued at or before it.
        match admission
            .verify
            .provider_token_status(&identity, &resolved.user.user)
        {
            Ok(RevocationStatus::Active | RevocationStatus::ClaimsStale) => {}
            Ok(RevocationStatus::Revoked(_)) => return refuse(unauthenticated, "revoked"),
            Err(_) => return refuse(Refusal::Unavailable, "revocation_unavailable"),
        }
        let Some(session) = session_for(&identity, &resolved.user) else {
            return refuse(unauthenticated, "invalid_session");
        };
        let session = AdmittedSession {
            session,
            verified_at: admission.verify.now(),
            provider: Some(ProviderSession {
                user: resolved.user,
                identity,
            }),
        };
        admission.conclude(&route, request, session)
    }
}

/// The request's session for a provider token and its local user.
fn session_for<R: Role>(
    identity: &ExternalIdentity<R>,
    user: &ExternalUser<R>,
) -> Option<SessionEntity<R>> {
    SessionEntity::new(NewSession {
        user_id: user.user.user_id,
        session_id: identity.session_id(),
        role: user.user.role.clone(),
        capabilities: user.user.capabilities.clone(),
        tenant: user.user.tenant.clone(),
        issued_at: identity.issued_at,
        expires_at: identity.expires_at,
        authenticated_at: identity.authentication_time().min(identity.issued_at),
        authentication: identity.authentication.clone(),
    })
    .ok()
}
