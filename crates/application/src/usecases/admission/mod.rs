//! DecideAdmission: what becomes of one request — forwarded as a guest or
//! with a session, refused, redirected, or failed closed.
//!
//! Every framework adapter reads the request into an [`AdmissionRequest`],
//! asks [`DecideAdmission::decide`], and translates the [`Admission`] it
//! gets: the decisions are all here, on plain data.

mod cross_origin;
mod outcome;
mod pages;
mod provider;
mod request;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use tessera_domain::{AccessDecision, Requirement, Role, RouteMatch, RoutePolicy, StepUpChallenge};

pub use self::cross_origin::{OriginError, TrustedOrigins, is_safe_method};
pub use self::outcome::{
    Admission, AdmittedSession, CredentialUpdate, ProviderSession, Refusal, Verdict,
};
pub use self::pages::{
    DEFAULT_LOGIN_PATH, DEFAULT_RETURN_TO_PARAM, DEFAULT_SIGNED_IN_PATH, MAX_RETURN_TO_BYTES,
    SignInPages, SignInPagesError, safe_return_to,
};
use self::provider::ProviderTokens;
pub use self::request::{
    AdmissionRequest, BrowserFacts, CredentialFault, CredentialSource, PresentedCredential,
};
use super::resolve_user::ResolveUser;
use super::rotate::{RotateError, RotateSession};
use super::verify::{RotationNeed, SessionCheck, VerifiedSession, VerifyError, VerifySession};
use crate::external::ExternalTokenVerifier;

/// Decides what becomes of a request: the route policy applied to its
/// credential, with rotation, provider tokens and failing closed.
///
/// Per request:
///
/// 0. an unsafe request a browser sends from another origin is refused
///    ([cross-origin protection](TrustedOrigins); on by default, before
///    any credential is read) unless its route
///    [allows it](tessera_domain::RouteRule::allow_cross_origin);
/// 1. the route is looked up; routes that need no session (public,
///    guest-only, denied) read the credential leniently (a bad one is a
///    guest's), routes that need one verify it strictly;
/// 2. an unreadable credential is a malformed request (`invalid_request`)
///    or a refused token (`invalid_token`), and a cookie at fault is
///    cleared;
/// 3. with [provider tokens](Self::with_provider_tokens), a bearer token
///    that is not a session token is verified by the provider's verifier,
///    its local user resolved, and the same policy applied;
/// 4. a session token due for rotation (age) or whose claims are stale
///    (permissions changed) is rotated, and the route decided again with
///    the fresh role and capabilities;
/// 5. a session the route's requirement allows is held to the route's
///    step-up (RFC 9470: [`RouteRule::max_age`](tessera_domain::RouteRule::max_age),
///    [`RouteRule::acr`](tessera_domain::RouteRule::acr)) at the time it
///    was verified: one that falls short is refused with
///    [`Refusal::StepUp`], or sent to the sign-in page with `max_age` and
///    `acr_values` on a browser route;
/// 6. when revocation state cannot be trusted on a route that needs a
///    session, the request fails closed.
///
/// The common case — no credential, or a valid session not due for
/// rotation — is decided synchronously, with no I/O. Rotation and provider
/// tokens need the user directory: [`decide`](Self::decide) then answers
/// [`Decision::Pending`], which the edge awaits.
pub struct DecideAdmission<R: Role> {
    inner: Arc<Inner<R>>,
}

#[derive(Clone)]
struct Inner<R: Role> {
    verify: VerifySession<R>,
    rotate: RotateSession<R>,
    policy: Arc<RoutePolicy<R>>,
    pages: SignInPages,
    trusted_origins: TrustedOrigins,
    provider: Option<ProviderTokens<R>>,
}

impl<R: Role> Clone for DecideAdmission<R> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R: Role> std::fmt::Debug for DecideAdmission<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecideAdmission")
            .field("policy", &self.inner.policy)
            .field("pages", &self.inner.pages)
            .field("provider_tokens", &self.inner.provider.is_some())
            .finish_non_exhaustive()
    }
}

/// The answer of [`DecideAdmission::decide`].
#[derive(Debug)]
pub enum Decision<R: Role> {
    /// Decided, with no I/O.
    Decided(Admission<R>),
    /// Needs the user directory (rotation, a provider token): await
    /// [`PendingAdmission::finish`].
    Pending(PendingAdmission<R>),
}

/// An admission waiting on the user directory.
pub struct PendingAdmission<R: Role> {
    admission: DecideAdmission<R>,
    method: String,
    path: String,
    query: Option<String>,
    work: Work<R>,
}

enum Work<R: Role> {
    Rotate {
        checked: SessionCheck<R>,
        via: CredentialSource,
    },
    Provider {
        token: String,
    },
}

impl<R: Role> std::fmt::Debug for PendingAdmission<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let work = match self.work {
            Work::Rotate { .. } => "rotate",
            Work::Provider { .. } => "provider_token",
        };
        f.debug_struct("PendingAdmission")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("work", &work)
            .finish_non_exhaustive()
    }
}

impl<R: Role> DecideAdmission<R> {
    /// Wires the admission to the verifier, the rotation use case, the
    /// compiled policy and the sign-in pages.
    #[must_use]
    pub fn new(
        verify: VerifySession<R>,
        rotate: RotateSession<R>,
        policy: Arc<RoutePolicy<R>>,
        pages: SignInPages,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                verify,
                rotate,
                policy,
                pages,
                trusted_origins: TrustedOrigins::default(),
                provider: None,
            }),
        }
    }

    /// Lets unsafe requests from these origins through the cross-origin
    /// protection (a front end served from another origin, say).
    #[must_use]
    pub fn with_trusted_origins(self, trusted_origins: TrustedOrigins) -> Self {
        self.changed(|inner| inner.trusted_origins = trusted_origins)
    }

    /// Also admits an identity provider's bearer tokens: verified by
    /// `verifier`, the local user found (or created) by `resolve` (give it
    /// a [`CachedExternalUserDirectory`](crate::CachedExternalUserDirectory)),
    /// and the same policy applied.
    ///
    /// The session of a provider token has the id
    /// [`SessionId::derived`](tessera_domain::SessionId::derived) from the
    /// issuer, subject and `iat`, so every request with one token has one
    /// session id; its issue and expiry times are the token's, its
    /// authentication time the token's `auth_time` (else `iat`). It is not
    /// rotated: the provider token's expiry bounds it, and disabling the
    /// local user ends it (within the user cache's TTL). Routes answer 401
    /// rather than redirect (a bearer client is not a browser).
    ///
    /// Only access tokens are taken here ([`TokenUse::Access`](crate::external::TokenUse)):
    /// a valid ID token is refused (401 `invalid_token`, logged as
    /// `token_use_refused`), since it proves a sign-in at a client, not a
    /// grant to call this API; exchange it for a session instead
    /// ([`ExchangeToken`](crate::ExchangeToken)). A token whose profile
    /// refuses its subject (a machine token, a required claim unmet) is
    /// answered 403 ([`Refusal::Subject`]).
    #[must_use]
    pub fn with_provider_tokens(
        self,
        verifier: Arc<dyn ExternalTokenVerifier<R>>,
        resolve: ResolveUser<R>,
    ) -> Self {
        self.changed(|inner| inner.provider = Some(ProviderTokens { verifier, resolve }))
    }

    /// This admission with one setting changed (a builder step).
    fn changed(self, change: impl FnOnce(&mut Inner<R>)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &Arc<RoutePolicy<R>> {
        &self.inner.policy
    }

    /// The sign-in pages.
    #[must_use]
    pub fn pages(&self) -> &SignInPages {
        &self.inner.pages
    }

    /// Whether `request` is an unsafe request a browser sent from an
    /// origin this admission does not trust: the first step of
    /// [`decide`](Self::decide), for endpoints outside the route policy
    /// that take cookies (a sign-out endpoint) and must refuse such
    /// requests too (with [`Refusal::CrossOrigin`]).
    #[must_use]
    pub fn is_cross_origin(&self, request: &AdmissionRequest<'_>) -> bool {
        let Err(reason) = cross_origin::check(request, &self.inner.trusted_origins) else {
            return false;
        };
        tracing::debug!(
            reason = reason.code(),
            method = request.method,
            path = request.path,
            "cross-origin request refused"
        );
        true
    }

    /// Decides one request; see [`DecideAdmission`] for the steps.
    #[must_use]
    pub fn decide(&self, request: &AdmissionRequest<'_>) -> Decision<R> {
        let inner = &*self.inner;
        let route = inner.policy.route(request.method, request.path);
        if !route.allows_cross_origin() && self.is_cross_origin(request) {
            return decided(
                Verdict::Refuse(Refusal::CrossOrigin),
                CredentialUpdate::Keep,
            );
        }
        // Nothing is served here, whoever asks: no token is worth reading.
        if matches!(route.requirement(), Requirement::NotFound) {
            return decided(Verdict::Refuse(Refusal::NotFound), CredentialUpdate::Keep);
        }
        let (token, via) = match request.credential {
            PresentedCredential::None => {
                return decided(inner.guest(&route, request, false), CredentialUpdate::Keep);
            }
            PresentedCredential::Unreadable(fault) => {
                return inner.unreadable(&route, request, fault);
            }
            PresentedCredential::Token { token, via } => (token, via),
        };
        if via == CredentialSource::Bearer
            && inner.provider.is_some()
            && !inner.verify.is_session_token(token)
        {
            return self.pending(
                request,
                Work::Provider {
                    token: token.to_owned(),
                },
            );
        }
        match inner.verify.check(token) {
            Ok(SessionCheck::Current(verified)) if verified.rotation() == RotationNeed::NotDue => {
                decided(
                    inner.conclude(&route, request, admitted(verified)),
                    CredentialUpdate::Keep,
                )
            }
            Ok(checked) => self.pending(request, Work::Rotate { checked, via }),
            Err(error) if !route.needs_session() => {
                tracing::debug!(reason = error.code(), %error, method = request.method, path = request.path, "session ignored on a route that needs none");
                decided(inner.guest(&route, request, true), CredentialUpdate::Keep)
            }
            Err(error) if error.is_unavailable() => {
                tracing::warn!(reason = error.code(), %error, method = request.method, path = request.path, "session verification unavailable; failing closed");
                decided(
                    Verdict::Refuse(Refusal::Unavailable),
                    CredentialUpdate::Keep,
                )
            }
            Err(error) => {
                tracing::debug!(reason = error.code(), %error, method = request.method, path = request.path, "session refused");
                decided(
                    Verdict::Refuse(inner.sign_in_again(&route, request)),
                    clear_if(via.has_cookie()),
                )
            }
        }
    }

    fn pending(&self, request: &AdmissionRequest<'_>, work: Work<R>) -> Decision<R> {
        Decision::Pending(PendingAdmission {
            admission: self.clone(),
            method: request.method.to_owned(),
            path: request.path.to_owned(),
            query: request.query.map(str::to_owned),
            work,
        })
    }
}

impl<R: Role> PendingAdmission<R> {
    /// Rotates the session or resolves the provider token, and decides.
    pub async fn finish(self) -> Admission<R> {
        let request = AdmissionRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            credential: PresentedCredential::None,
            browser: BrowserFacts::default(),
        };
        let inner = &*self.admission.inner;
        match self.work {
            Work::Rotate { checked, via } => inner.rotate_and_decide(&request, checked, via).await,
            Work::Provider { token } => match &inner.provider {
                Some(provider) => Admission {
                    verdict: provider.admit(inner, &request, &token).await,
                    credential: CredentialUpdate::Keep,
                },
                // Provider work is only planned when a provider is set.
                None => decided_admission(
                    Verdict::Refuse(Refusal::Unavailable),
                    CredentialUpdate::Keep,
                ),
            },
        }
    }
}

fn decided<R: Role>(verdict: Verdict<R>, credential: CredentialUpdate) -> Decision<R> {
    Decision::Decided(decided_admission(verdict, credential))
}

fn decided_admission<R>(verdict: Verdict<R>, credential: CredentialUpdate) -> Admission<R> {
    Admission {
        verdict,
        credential,
    }
}

fn clear_if(cookie_at_fault: bool) -> CredentialUpdate {
    if cookie_at_fault {
        CredentialUpdate::ClearCookie
    } else {
        CredentialUpdate::Keep
    }
}

fn admitted<R: Role>(verified: VerifiedSession<R>) -> AdmittedSession<R> {
    let verified_at = verified.verified_at();
    AdmittedSession {
        session: verified.into_session(),
        verified_at,
        provider: None,
    }
}

impl<R: Role> Inner<R> {
    /// The verdict for a request without a session on this route;
    /// `refused` when a credential was sent and not accepted.
    fn guest(
        &self,
        route: &RouteMatch<'_, '_, R>,
        request: &AdmissionRequest<'_>,
        refused: bool,
    ) -> Verdict<R> {
        match route.decide(None) {
            AccessDecision::Allow | AccessDecision::RedirectAuthenticated => {
                Verdict::Guest { refused }
            }
            AccessDecision::Forbidden => {
                tracing::debug!(
                    method = request.method,
                    path = request.path,
                    "route forbidden to a guest"
                );
                Verdict::Refuse(Refusal::Forbidden { signed_in: false })
            }
            // Step-up is for sessions; a guest signs in.
            AccessDecision::Unauthenticated | AccessDecision::StepUp => {
                Verdict::Refuse(self.sign_in(route, request, refused))
            }
            AccessDecision::NotFound => Verdict::Refuse(Refusal::NotFound),
        }
    }

    /// A credential that cannot be read.
    fn unreadable(
        &self,
        route: &RouteMatch<'_, '_, R>,
        request: &AdmissionRequest<'_>,
        fault: CredentialFault,
    ) -> Decision<R> {
        if !route.needs_session() {
            tracing::debug!(
                reason = fault.code(),
                method = request.method,
                path = request.path,
                "credential ignored on a route that needs none"
            );
            return decided(self.guest(route, request, true), CredentialUpdate::Keep);
        }
        tracing::debug!(
            reason = fault.code(),
            method = request.method,
            path = request.path,
            "credential refused"
        );
        let refusal = if fault.is_invalid_token() {
            self.sign_in_again(route, request)
        } else {
            Refusal::InvalidRequest(fault)
        };
        decided(Verdict::Refuse(refusal), clear_if(fault.blames_cookie()))
    }

    /// A refused credential on a route that needs a session.
    fn sign_in_again(
        &self,
        route: &RouteMatch<'_, '_, R>,
        request: &AdmissionRequest<'_>,
    ) -> Refusal {
        self.sign_in(route, request, true)
    }

    /// No valid session where one is needed: the sign-in page for browser
    /// routes, else 401.
    fn sign_in(
        &self,
        route: &RouteMatch<'_, '_, R>,
        request: &AdmissionRequest<'_>,
        refused: bool,
    ) -> Refusal {
        if !route.is_browser() {
            return Refusal::Unauthenticated { refused };
        }
        // Only a page that can be fetched again is worth returning to.
        let target = matches!(request.method, "GET" | "HEAD").then(|| request.target());
        Refusal::SignIn {
            location: self.pages.login_location(target.as_deref()),
        }
    }

    /// The verdict for a session, as the policy decides it.
    fn conclude(
        &self,
        route: &RouteMatch<'_, '_, R>,
        request: &AdmissionRequest<'_>,
        session: AdmittedSession<R>,
    ) -> Verdict<R> {
        // The requirement, then the rule's step-up at the time the session
        // was verified (what `RouteMatch::decide_at` decides), keeping the
        // challenge.
        match route.decide(Some(&session.session)) {
            AccessDecision::Allow => match route
                .step_up()
                .challenge(&session.session, session.verified_at)
            {
                None => Verdict::Session(Box::new(session)),
                Some(challenge) => {
                    tracing::debug!(
                        method = request.method,
                        path = request.path,
                        reason = ?challenge.reason(),
                        "session must authenticate again for the route (step-up)"
                    );
                    let bearer_only = session.provider.is_some();
                    Verdict::Refuse(self.step_up(route, request, challenge, bearer_only))
                }
            },
            AccessDecision::Forbidden => {
                tracing::debug!(
                    method = request.method,
                    path = request.path,
                    "session falls short of the route"
                );
                Verdict::Refuse(Refusal::Forbidden { signed_in: true })
            }
            AccessDecision::RedirectAuthenticated => Verdict::Refuse(Refusal::SignedIn {
                location: self.signed_in_location(request.query),
            }),
            // A decision for a present session is never this (nor step-up,
            // which `decide` leaves to the arm above); answer as the policy
            // would for a guest all the same.
            AccessDecision::Unauthenticated | AccessDecision::StepUp => {
                Verdict::Refuse(self.sign_in(route, request, false))
            }
            AccessDecision::NotFound => Verdict::Refuse(Refusal::NotFound),
        }
    }

    /// A session that must authenticate again: to the sign-in page, with
    /// what the new authentication must meet, for browser routes; else 401
    /// `insufficient_user_authentication` (RFC 9470). A provider token's
    /// holder (`bearer_only`) is not a browser.
    fn step_up(
        &self,
        route: &RouteMatch<'_, '_, R>,
        request: &AdmissionRequest<'_>,
        challenge: StepUpChallenge,
        bearer_only: bool,
    ) -> Refusal {
        if !route.is_browser() || bearer_only {
            return Refusal::StepUp(challenge);
        }
        let target = matches!(request.method, "GET" | "HEAD").then(|| request.target());
        Refusal::SignIn {
            location: self.pages.step_up_location(target.as_deref(), &challenge),
        }
    }

    /// Where a signed-in user goes from a guest-only page: the request's
    /// safe return-to (never another guest-only page: that would loop),
    /// else the signed-in page.
    fn signed_in_location(&self, query: Option<&str>) -> String {
        self.pages
            .return_to(query)
            .filter(|target| {
                !matches!(
                    self.policy.route("GET", target).requirement(),
                    Requirement::GuestOnly
                )
            })
            .unwrap_or_else(|| self.pages.signed_in_path().to_owned())
    }

    /// Rotates a session that is due or stale and decides the route again
    /// with what rotation gave.
    async fn rotate_and_decide(
        &self,
        request: &AdmissionRequest<'_>,
        checked: SessionCheck<R>,
        via: CredentialSource,
    ) -> Admission<R> {
        let route = self.policy.route(request.method, request.path);
        let (method, path) = (request.method, request.path);
        let current = match &checked {
            SessionCheck::Current(verified) => Some(verified.clone()),
            SessionCheck::Stale(_) => None,
        };
        let verified_at = checked.verified_at();
        let error = match self.rotate.rotate(checked).await {
            Ok(rotated) => {
                let lifetime = (rotated.session.expires_at() - rotated.session.issued_at())
                    .max(time::Duration::ZERO);
                let session = AdmittedSession {
                    session: rotated.session,
                    verified_at,
                    provider: None,
                };
                let verdict = self.conclude(&route, request, session);
                return decided_admission(
                    verdict,
                    CredentialUpdate::Renew {
                        token: rotated.token,
                        lifetime,
                        via,
                    },
                );
            }
            Err(error) => error,
        };
        // The session has ended: its user is gone or disabled, or the
        // authoritative revocation state (which rotation asks) revokes it
        // although this instance's cache did not know yet.
        let ended = matches!(
            error,
            RotateError::UserNotFound
                | RotateError::UserDisabled
                | RotateError::Verify(VerifyError::Revoked(_))
        );
        let past_lifetime = matches!(error, RotateError::AbsoluteLifetimeExceeded);
        let stale = current.is_none();
        if !route.needs_session() && (ended || stale) {
            // A route that needs no session reads leniently: a session that
            // cannot be refreshed is a guest here, not a refusal.
            tracing::debug!(reason = %error, method, path, "session not refreshed; served as a guest");
            return decided_admission(
                self.guest(&route, request, ended),
                clear_if(ended && via.has_cookie()),
            );
        }
        if ended || (stale && past_lifetime) {
            tracing::info!(reason = %error, method, path, "session ended at rotation");
            return decided_admission(
                Verdict::Refuse(self.sign_in_again(&route, request)),
                clear_if(via.has_cookie()),
            );
        }
        let Some(verified) = current else {
            tracing::warn!(reason = %error, method, path, "stale claims could not be refreshed; failing closed");
            return decided_admission(
                Verdict::Refuse(Refusal::Unavailable),
                CredentialUpdate::Keep,
            );
        };
        if !past_lifetime {
            tracing::warn!(reason = %error, method, path, "session rotation failed; the current token stays in use");
        }
        decided_admission(
            self.conclude(&route, request, admitted(verified)),
            CredentialUpdate::Keep,
        )
    }
}
