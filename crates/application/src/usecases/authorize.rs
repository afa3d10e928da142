//! AuthorizeRequest: the route policy applied to the request's session.

use std::sync::Arc;

use tessera_domain::{AccessDecision, Role, RoutePolicy};

use super::verify::{VerifiedSession, VerifyError, VerifySession};

/// What to do with a request.
#[derive(Debug)]
pub enum Authorization<R> {
    /// Let it through, with its session when it has a valid one.
    Allowed(Option<VerifiedSession<R>>),
    /// The route needs a session and there is none valid: sign in again.
    Unauthenticated {
        /// Why the credential was refused; `None` when none was sent.
        error: Option<VerifyError>,
        /// The route is a page for humans: redirect to sign-in, don't answer 401.
        browser: bool,
    },
    /// The session is valid but not enough for this route (or the route is
    /// denied to everyone).
    Forbidden(Option<VerifiedSession<R>>),
    /// A guest-only page (sign-in, sign-up) asked for by a signed-in user.
    RedirectAuthenticated(VerifiedSession<R>),
    /// The route needs a session and the verifier cannot currently be sure
    /// of any (fail closed): try again later.
    Unavailable(VerifyError),
}

/// Decides a request from its method, path and credential.
///
/// Routes that need no session (public, guest-only, denied) read it
/// leniently: a bad token there is a guest. Routes that need one verify it
/// strictly, and a verifier that cannot be sure answers
/// [`Authorization::Unavailable`].
#[derive(Clone)]
pub struct AuthorizeRequest<R: Role> {
    verify: VerifySession<R>,
    policy: Arc<RoutePolicy<R>>,
}

impl<R: Role> std::fmt::Debug for AuthorizeRequest<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeRequest")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<R: Role> AuthorizeRequest<R> {
    /// Wires the use case to the verifier and the compiled policy.
    #[must_use]
    pub fn new(verify: VerifySession<R>, policy: Arc<RoutePolicy<R>>) -> Self {
        Self { verify, policy }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &Arc<RoutePolicy<R>> {
        &self.policy
    }

    /// Decides one request. `credential` is the token the request carried,
    /// if any.
    pub fn execute(&self, method: &str, path: &str, credential: Option<&str>) -> Authorization<R> {
        let route = self.policy.route(method, path);
        let verified = match credential.map(|token| self.verify.execute(token)) {
            None => None,
            Some(Ok(verified)) => Some(verified),
            Some(Err(error)) if route.needs_session() => {
                if error.is_unavailable() {
                    return Authorization::Unavailable(error);
                }
                tracing::debug!(reason = error.code(), %error, method, "session refused");
                return Authorization::Unauthenticated {
                    error: Some(error),
                    browser: route.is_browser(),
                };
            }
            Some(Err(error)) => {
                tracing::debug!(reason = error.code(), %error, "session ignored on a route that needs none");
                None
            }
        };
        match route.decide(verified.as_ref().map(VerifiedSession::session)) {
            AccessDecision::Allow => Authorization::Allowed(verified),
            AccessDecision::Forbidden => Authorization::Forbidden(verified),
            AccessDecision::Unauthenticated => Authorization::Unauthenticated {
                error: None,
                browser: route.is_browser(),
            },
            AccessDecision::RedirectAuthenticated => match verified {
                Some(session) => Authorization::RedirectAuthenticated(session),
                // The policy redirects only signed-in users; without a session
                // there is nothing to redirect, so let the guest through.
                None => Authorization::Allowed(None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{
        MockClock, MockRevocationStore, MockSessionTokenCodec, RevocationError, RevocationStatus,
        TokenError,
    };
    use crate::testing::*;
    use crate::token::SessionTokenClaims;
    use tessera_domain::{Requirement, RouteRule, UserRole};

    fn policy() -> Arc<RoutePolicy<UserRole>> {
        Arc::new(
            RoutePolicy::builder()
                .rule(RouteRule::new("/", Requirement::Public))
                .rule(RouteRule::new("/login", Requirement::GuestOnly).browser())
                .rule(RouteRule::new(
                    "/admin/*",
                    Requirement::AtLeastRole(UserRole::Admin),
                ))
                .rule(RouteRule::new("/app/*", Requirement::Authenticated).browser())
                .rule(RouteRule::new(
                    "/t/:tenant/*",
                    Requirement::TenantParam("tenant".into()),
                ))
                .build()
                .unwrap(),
        )
    }

    /// A use case whose codec sees `calls` tokens, each decoding to the
    /// moderator session of `acme` (or failing with `decode_error`), and
    /// whose store answers `status`.
    fn authorize(
        calls: usize,
        decode_error: Option<fn() -> TokenError>,
        status: fn() -> Result<RevocationStatus, RevocationError>,
    ) -> AuthorizeRequest<UserRole> {
        let mut codec = MockSessionTokenCodec::new();
        codec
            .expect_decode()
            .with(eq("tok"))
            .times(calls)
            .returning(move |_| match decode_error {
                Some(e) => Err(e()),
                None => Ok(SessionTokenClaims::new(
                    session(NOW - 10, NOW + 890, NOW - 10),
                    None,
                )),
            });
        let store_calls = if decode_error.is_some() { 0 } else { calls };
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .times(store_calls)
            .returning(move |_| status());
        let mut clock = MockClock::new();
        clock.expect_now().times(store_calls).return_const(at(NOW));
        let verify = VerifySession::new(
            Arc::new(codec),
            Arc::new(clock),
            Arc::new(store),
            lifetimes(),
        );
        AuthorizeRequest::new(verify, policy())
    }

    fn active() -> Result<RevocationStatus, RevocationError> {
        Ok(RevocationStatus::Active)
    }

    fn down() -> Result<RevocationStatus, RevocationError> {
        Err(RevocationError::Unavailable("listener down".into()))
    }

    #[test]
    fn public_route_lets_a_guest_through_without_verifying_anything() {
        let out = authorize(0, None, active).execute("GET", "/", None);
        assert!(matches!(out, Authorization::Allowed(None)));
    }

    #[test]
    fn public_route_reads_a_bad_token_as_a_guest() {
        let out = authorize(1, Some(|| TokenError::InvalidSignature), active).execute(
            "GET",
            "/",
            Some("tok"),
        );
        assert!(matches!(out, Authorization::Allowed(None)));
    }

    #[test]
    fn public_route_passes_a_valid_session_along() {
        let out = authorize(1, None, active).execute("GET", "/", Some("tok"));
        assert!(matches!(out, Authorization::Allowed(Some(s)) if s.session().user_id() == &user()));
    }

    #[test]
    fn protected_route_without_a_credential_is_unauthenticated_with_no_error() {
        let out = authorize(0, None, active).execute("GET", "/admin/users", None);
        assert!(matches!(
            out,
            Authorization::Unauthenticated {
                error: None,
                browser: false
            }
        ));
    }

    #[test]
    fn protected_route_with_a_bad_token_is_unauthenticated_with_the_reason() {
        let out = authorize(1, Some(|| TokenError::InvalidSignature), active).execute(
            "GET",
            "/app/home",
            Some("tok"),
        );
        assert!(matches!(
            out,
            Authorization::Unauthenticated {
                error: Some(VerifyError::Token(TokenError::InvalidSignature)),
                browser: true
            }
        ));
    }

    #[test]
    fn protected_route_fails_closed_when_revocation_state_is_unavailable() {
        let out = authorize(1, None, down).execute("GET", "/app/home", Some("tok"));
        assert!(matches!(out, Authorization::Unavailable(e) if e.is_unavailable()));
    }

    #[test]
    fn public_route_reads_a_guest_when_revocation_state_is_unavailable() {
        let out = authorize(1, None, down).execute("GET", "/", Some("tok"));
        assert!(matches!(out, Authorization::Allowed(None)));
    }

    #[test]
    fn insufficient_role_is_forbidden() {
        let out = authorize(1, None, active).execute("GET", "/admin/users", Some("tok"));
        assert!(matches!(out, Authorization::Forbidden(Some(_))));
    }

    #[test]
    fn sufficient_session_is_allowed() {
        let out = authorize(1, None, active).execute("POST", "/app/posts", Some("tok"));
        assert!(matches!(out, Authorization::Allowed(Some(_))));
    }

    #[test]
    fn tenant_route_allows_the_sessions_tenant_only() {
        let ok = authorize(1, None, active).execute("GET", "/t/acme/billing", Some("tok"));
        assert!(matches!(ok, Authorization::Allowed(Some(_))));
        let other = authorize(1, None, active).execute("GET", "/t/globex/billing", Some("tok"));
        assert!(matches!(other, Authorization::Forbidden(Some(_))));
    }

    #[test]
    fn guest_only_page_redirects_a_signed_in_user_and_serves_a_guest() {
        let signed_in = authorize(1, None, active).execute("GET", "/login", Some("tok"));
        assert!(matches!(signed_in, Authorization::RedirectAuthenticated(_)));
        let guest = authorize(0, None, active).execute("GET", "/login", None);
        assert!(matches!(guest, Authorization::Allowed(None)));
    }

    #[test]
    fn unmatched_route_is_forbidden_even_with_a_valid_session() {
        let out = authorize(1, None, active).execute("GET", "/nowhere", Some("tok"));
        assert!(matches!(out, Authorization::Forbidden(_)));
    }
}
