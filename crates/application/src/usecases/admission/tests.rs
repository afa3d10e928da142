//! The admission's every branch, on mockall fakes with exact expectations.

use std::sync::Arc;

use mockall::predicate::eq;
use tessera_domain::{Requirement, RoutePolicy, RouteRule, UserRole};

use super::*;
use crate::external::{
    ExternalIdentity, ExternalTokenError, ExternalUser, MockExternalTokenVerifier,
    MockExternalUserDirectory, SubjectKind, SubjectRefusal, TokenUse,
};
use crate::ports::JwsFailure;
use crate::ports::{
    DirectoryError, DirectoryUser, MockClock, MockRevocationStore, MockSessionTokenCodec,
    MockUserDirectory, RevocationError, RevocationStatus, TokenError,
};
use crate::testing::*;
use crate::token::{SessionToken, SessionTokenClaims};

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
            .rule(RouteRule::new("/api/*", Requirement::Authenticated))
            .rule(RouteRule::new(
                "/t/:tenant/*",
                Requirement::TenantParam("tenant".into()),
            ))
            .rule(
                RouteRule::new("/recent/*", Requirement::Authenticated)
                    .max_age(time::Duration::seconds(5)),
            )
            .rule(
                RouteRule::new("/mfa/*", Requirement::Authenticated)
                    .acr(&["urn:example:mfa", "phrh"])
                    .max_age(time::Duration::minutes(10))
                    .browser(),
            )
            .build()
            .unwrap(),
    )
}

/// Fresh (not due), due by age, or stale by a permissions change.
#[derive(Clone, Copy)]
enum Token {
    Fresh,
    Due,
    Stale,
    Bad,
}

/// The ports, with exactly the calls a test expects.
struct Ports {
    codec: MockSessionTokenCodec<UserRole>,
    clock: MockClock,
    store: MockRevocationStore,
    directory: MockUserDirectory<UserRole>,
    provider: Option<(
        MockExternalTokenVerifier<UserRole>,
        MockExternalUserDirectory<UserRole>,
    )>,
}

impl Ports {
    /// Ports that expect no call at all.
    fn idle() -> Self {
        let mut codec = MockSessionTokenCodec::new();
        codec.expect_decode().times(0);
        codec.expect_encode().times(0);
        codec.expect_is_session_token().times(0);
        let mut clock = MockClock::new();
        clock.expect_now().times(0);
        let mut store = MockRevocationStore::new();
        store.expect_check().times(0);
        let mut directory = MockUserDirectory::new();
        directory.expect_find().times(0);
        Self {
            codec,
            clock,
            store,
            directory,
            provider: None,
        }
    }

    /// "tok" decodes once to the moderator session (issued 10 s ago, or
    /// 400 s ago when due), and the store answers accordingly.
    fn token(self, token: Token) -> Self {
        self.token_with(token, true, None)
    }

    /// [`Ports::token`], with the store up or down, and the codec asked
    /// once whether "tok" is a session token when `recognized` says what
    /// to answer.
    fn token_with(mut self, token: Token, store_up: bool, recognized: Option<bool>) -> Self {
        self.codec.checkpoint();
        self.codec.expect_encode().times(0);
        match recognized {
            None => {
                self.codec.expect_is_session_token().times(0);
            }
            Some(answer) => {
                self.codec
                    .expect_is_session_token()
                    .with(eq("tok"))
                    .times(1)
                    .return_const(answer);
            }
        }
        let iat = match token {
            Token::Due => NOW - 400,
            _ => NOW - 10,
        };
        self.codec
            .expect_decode()
            .with(eq("tok"))
            .times(1)
            .returning(move |_| match token {
                Token::Bad => Err(TokenError::Jws(JwsFailure::InvalidSignature)),
                _ => Ok(SessionTokenClaims::new(session(iat, iat + 900, iat), None)),
            });
        if !matches!(token, Token::Bad) {
            let status = if matches!(token, Token::Stale) {
                RevocationStatus::ClaimsStale
            } else {
                RevocationStatus::Active
            };
            self.store.checkpoint();
            self.store.expect_check().times(1).returning(move |_| {
                if store_up {
                    Ok(status)
                } else {
                    Err(RevocationError::Unavailable("listener down".into()))
                }
            });
            self.clock.checkpoint();
            self.clock.expect_now().times(1).return_const(at(NOW));
        }
        self
    }

    /// The directory is read once for the user and answers `answer`; a
    /// rotated token is signed when the user is there and enabled.
    fn directory(
        mut self,
        answer: fn() -> Result<Option<DirectoryUser<UserRole>>, DirectoryError>,
    ) -> Self {
        self.directory.checkpoint();
        self.directory
            .expect_find()
            .with(eq(user()))
            .times(1)
            .returning(move |_| answer());
        let signs = matches!(answer(), Ok(Some(ref u)) if u.enabled);
        self.codec
            .expect_encode()
            .times(usize::from(signs))
            .returning(|_| Ok(SessionToken::new("new.tok.en".into())));
        self
    }

    fn admission(self) -> DecideAdmission<UserRole> {
        self.admission_with(policy())
    }

    /// The admission over these ports, enforcing `policy`.
    fn admission_with(self, policy: Arc<RoutePolicy<UserRole>>) -> DecideAdmission<UserRole> {
        self.admission_asking(policy, None)
    }

    /// [`Ports::admission_with`], whose rotation also asks `authoritative`
    /// (the store's tables, behind the verifier's cache).
    fn admission_asking(
        self,
        policy: Arc<RoutePolicy<UserRole>>,
        authoritative: Option<MockRevocationStore>,
    ) -> DecideAdmission<UserRole> {
        let codec = Arc::new(self.codec);
        let verify = VerifySession::new(
            codec.clone(),
            Arc::new(self.clock),
            Arc::new(self.store),
            lifetimes(),
        );
        let mut rotate = RotateSession::new(verify.clone(), Arc::new(self.directory), codec);
        if let Some(tables) = authoritative {
            rotate = rotate.with_revocations(Arc::new(tables));
        }
        let admission = DecideAdmission::new(verify, rotate, policy, SignInPages::default());
        match self.provider {
            None => admission,
            Some((verifier, users)) => admission
                .with_provider_tokens(Arc::new(verifier), ResolveUser::new(Arc::new(users))),
        }
    }
}

fn directory_user(role: UserRole, enabled: bool) -> DirectoryUser<UserRole> {
    DirectoryUser {
        user_id: user(),
        role,
        capabilities: caps(&[]),
        tenant: Some(tenant()),
        enabled,
    }
}

fn admin() -> Result<Option<DirectoryUser<UserRole>>, DirectoryError> {
    Ok(Some(directory_user(UserRole::Admin, true)))
}

fn gone() -> Result<Option<DirectoryUser<UserRole>>, DirectoryError> {
    Ok(None)
}

fn disabled() -> Result<Option<DirectoryUser<UserRole>>, DirectoryError> {
    Ok(Some(directory_user(UserRole::Admin, false)))
}

fn directory_down() -> Result<Option<DirectoryUser<UserRole>>, DirectoryError> {
    Err(DirectoryError::Unavailable("db down".into()))
}

fn cookie(token: &str) -> PresentedCredential<'_> {
    PresentedCredential::Token {
        token,
        via: CredentialSource::Cookie,
    }
}

fn bearer(token: &str) -> PresentedCredential<'_> {
    PresentedCredential::Token {
        token,
        via: CredentialSource::Bearer,
    }
}

/// Decides synchronously; fails the test when the admission needs I/O.
fn decide_now(
    admission: &DecideAdmission<UserRole>,
    method: &str,
    target: &str,
    credential: PresentedCredential<'_>,
) -> Admission<UserRole> {
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    match admission.decide(&AdmissionRequest::new(method, path, credential).with_query(query)) {
        Decision::Decided(admission) => admission,
        Decision::Pending(pending) => panic!("expected a decision without I/O, got {pending:?}"),
    }
}

/// Decides, awaiting the pending part; fails the test when there is none.
async fn decide_later(
    admission: &DecideAdmission<UserRole>,
    method: &str,
    target: &str,
    credential: PresentedCredential<'_>,
) -> Admission<UserRole> {
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    match admission.decide(&AdmissionRequest::new(method, path, credential).with_query(query)) {
        Decision::Pending(pending) => pending.finish().await,
        Decision::Decided(admission) => panic!("expected pending work, got {admission:?}"),
    }
}

fn role_of(admission: &Admission<UserRole>) -> Option<UserRole> {
    match &admission.verdict {
        Verdict::Session(admitted) => Some(*admitted.session.role()),
        _ => None,
    }
}

fn refusal(admission: Admission<UserRole>) -> Refusal {
    match admission.verdict {
        Verdict::Refuse(refusal) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// --- no credential -------------------------------------------------------

#[test]
fn public_route_lets_a_guest_through_without_verifying_anything() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/",
        PresentedCredential::None,
    );
    assert!(matches!(out.verdict, Verdict::Guest { refused: false }));
    assert!(matches!(out.credential, CredentialUpdate::Keep));
}

#[test]
fn protected_api_route_without_a_credential_is_401_without_an_error() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/api/x",
        PresentedCredential::None,
    );
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: false });
}

#[test]
fn browser_route_without_a_credential_goes_to_sign_in_with_its_return_to() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/app/home?tab=2",
        PresentedCredential::None,
    );
    assert_eq!(
        refusal(out),
        Refusal::SignIn {
            location: "/login?return_to=%2Fapp%2Fhome%3Ftab%3D2".into()
        }
    );
}

#[test]
fn a_post_to_a_browser_route_goes_to_sign_in_without_a_return_to() {
    let out = decide_now(
        &Ports::idle().admission(),
        "POST",
        "/app/posts",
        PresentedCredential::None,
    );
    assert_eq!(
        refusal(out),
        Refusal::SignIn {
            location: "/login".into()
        }
    );
}

#[test]
fn unmatched_route_is_forbidden_to_a_guest() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/nowhere",
        PresentedCredential::None,
    );
    assert_eq!(refusal(out), Refusal::Forbidden { signed_in: false });
}

// --- a credential that cannot be read ------------------------------------

#[test]
fn unreadable_credential_on_a_public_route_is_a_refused_guest() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/",
        PresentedCredential::Unreadable(CredentialFault::MalformedCookie),
    );
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
    assert!(matches!(out.credential, CredentialUpdate::Keep));
}

#[test]
fn malformed_request_is_invalid_request_and_keeps_the_cookie() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/api/x",
        PresentedCredential::Unreadable(CredentialFault::ConflictingCredentials),
    );
    assert!(matches!(out.credential, CredentialUpdate::Keep));
    assert_eq!(
        refusal(out),
        Refusal::InvalidRequest(CredentialFault::ConflictingCredentials)
    );
}

#[test]
fn oversized_cookie_is_an_invalid_token_and_is_cleared() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/api/x",
        PresentedCredential::Unreadable(CredentialFault::TooLarge { in_cookie: true }),
    );
    assert!(matches!(out.credential, CredentialUpdate::ClearCookie));
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });
}

#[test]
fn malformed_cookie_on_a_browser_route_goes_to_sign_in_and_is_cleared() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/app/home",
        PresentedCredential::Unreadable(CredentialFault::MalformedCookie),
    );
    assert!(matches!(out.credential, CredentialUpdate::ClearCookie));
    assert_eq!(
        refusal(out),
        Refusal::SignIn {
            location: "/login?return_to=%2Fapp%2Fhome".into()
        }
    );
}

// --- a session token -----------------------------------------------------

#[test]
fn public_route_reads_a_bad_token_as_a_refused_guest() {
    let out = decide_now(
        &Ports::idle().token(Token::Bad).admission(),
        "GET",
        "/",
        cookie("tok"),
    );
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
    assert!(matches!(out.credential, CredentialUpdate::Keep));
}

#[test]
fn public_route_passes_a_valid_session_along() {
    let out = decide_now(
        &Ports::idle().token(Token::Fresh).admission(),
        "GET",
        "/",
        cookie("tok"),
    );
    assert_eq!(role_of(&out), Some(UserRole::Moderator));
}

#[test]
fn bad_cookie_on_a_protected_route_is_invalid_token_and_cleared() {
    let out = decide_now(
        &Ports::idle().token(Token::Bad).admission(),
        "GET",
        "/api/x",
        cookie("tok"),
    );
    assert!(matches!(out.credential, CredentialUpdate::ClearCookie));
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });
}

#[test]
fn bad_bearer_token_on_a_protected_route_is_invalid_token_with_no_cookie_to_clear() {
    let out = decide_now(
        &Ports::idle().token(Token::Bad).admission(),
        "GET",
        "/api/x",
        bearer("tok"),
    );
    assert!(matches!(out.credential, CredentialUpdate::Keep));
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });
}

#[test]
fn protected_route_fails_closed_when_revocation_state_is_unavailable() {
    let ports = Ports::idle().token_with(Token::Fresh, false, None);
    let out = decide_now(&ports.admission(), "GET", "/app/home", cookie("tok"));
    assert!(matches!(out.credential, CredentialUpdate::Keep));
    assert_eq!(refusal(out), Refusal::Unavailable);
}

#[test]
fn public_route_reads_a_guest_when_revocation_state_is_unavailable() {
    let ports = Ports::idle().token_with(Token::Fresh, false, None);
    let out = decide_now(&ports.admission(), "GET", "/", cookie("tok"));
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
}

#[test]
fn insufficient_role_is_forbidden_with_the_session_known() {
    let out = decide_now(
        &Ports::idle().token(Token::Fresh).admission(),
        "GET",
        "/admin/users",
        cookie("tok"),
    );
    assert_eq!(refusal(out), Refusal::Forbidden { signed_in: true });
}

#[test]
fn tenant_route_allows_the_sessions_tenant_only() {
    let ok = decide_now(
        &Ports::idle().token(Token::Fresh).admission(),
        "GET",
        "/t/acme/billing",
        cookie("tok"),
    );
    assert_eq!(role_of(&ok), Some(UserRole::Moderator));
    let other = decide_now(
        &Ports::idle().token(Token::Fresh).admission(),
        "GET",
        "/t/globex/billing",
        cookie("tok"),
    );
    assert_eq!(refusal(other), Refusal::Forbidden { signed_in: true });
}

#[test]
fn guest_only_page_sends_a_signed_in_user_to_a_safe_return_to() {
    let out = decide_now(
        &Ports::idle().token(Token::Fresh).admission(),
        "GET",
        "/login?return_to=%2Fapp%2Fhome",
        cookie("tok"),
    );
    assert_eq!(
        refusal(out),
        Refusal::SignedIn {
            location: "/app/home".into()
        }
    );
}

#[test]
fn guest_only_page_never_returns_to_a_guest_only_page_nor_off_site() {
    for query in ["return_to=%2Flogin", "return_to=%2F%2Fevil.example", ""] {
        let out = decide_now(
            &Ports::idle().token(Token::Fresh).admission(),
            "GET",
            &format!("/login?{query}"),
            cookie("tok"),
        );
        assert_eq!(
            refusal(out),
            Refusal::SignedIn {
                location: "/".into()
            },
            "{query}"
        );
    }
}

#[test]
fn guest_only_page_serves_a_guest() {
    let out = decide_now(
        &Ports::idle().admission(),
        "GET",
        "/login",
        PresentedCredential::None,
    );
    assert!(matches!(out.verdict, Verdict::Guest { refused: false }));
}

#[test]
fn unmatched_route_is_forbidden_even_with_a_valid_session() {
    let out = decide_now(
        &Ports::idle().token(Token::Fresh).admission(),
        "GET",
        "/nowhere",
        cookie("tok"),
    );
    assert_eq!(refusal(out), Refusal::Forbidden { signed_in: true });
}

#[test]
fn a_fresh_session_is_neither_rotated_nor_read_from_the_directory() {
    // Ports::idle() expects no directory read and no signing.
    let out = decide_now(
        &Ports::idle().token(Token::Fresh).admission(),
        "GET",
        "/app/home",
        cookie("tok"),
    );
    assert!(matches!(out.credential, CredentialUpdate::Keep));
    assert_eq!(role_of(&out), Some(UserRole::Moderator));
}

// --- rotation --------------------------------------------------------------

#[tokio::test]
async fn a_due_session_is_rotated_and_the_route_decided_with_the_fresh_role() {
    let ports = Ports::idle().token(Token::Due).directory(admin);
    // A moderator's token, an admin in the directory now: the admin page
    // is decided with the fresh role.
    let out = decide_later(&ports.admission(), "GET", "/admin/users", cookie("tok")).await;
    assert_eq!(role_of(&out), Some(UserRole::Admin));
    match out.credential {
        CredentialUpdate::Renew {
            token,
            lifetime,
            via,
        } => {
            assert_eq!(token.expose_secret(), "new.tok.en");
            assert_eq!(lifetime, time::Duration::seconds(900));
            assert_eq!(via, CredentialSource::Cookie);
        }
        other => panic!("expected a renewed credential, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stale_session_is_never_forwarded_with_its_old_role() {
    let ports = Ports::idle().token(Token::Stale).directory(admin);
    let out = decide_later(&ports.admission(), "GET", "/app/home", bearer("tok")).await;
    assert_eq!(role_of(&out), Some(UserRole::Admin));
    assert!(matches!(
        out.credential,
        CredentialUpdate::Renew {
            via: CredentialSource::Bearer,
            ..
        }
    ));
}

#[tokio::test]
async fn a_rotated_session_that_falls_short_is_forbidden_but_still_renewed() {
    fn user_role() -> Result<Option<DirectoryUser<UserRole>>, DirectoryError> {
        Ok(Some(directory_user(UserRole::User, true)))
    }
    let ports = Ports::idle().token(Token::Stale).directory(user_role);
    let out = decide_later(&ports.admission(), "GET", "/admin/users", cookie("tok")).await;
    assert!(matches!(out.credential, CredentialUpdate::Renew { .. }));
    assert_eq!(refusal(out), Refusal::Forbidden { signed_in: true });
}

#[tokio::test]
async fn a_user_gone_at_rotation_is_signed_out_and_the_cookie_cleared() {
    for answer in [gone as fn() -> _, disabled] {
        let ports = Ports::idle().token(Token::Due).directory(answer);
        let out = decide_later(&ports.admission(), "GET", "/api/x", cookie("tok")).await;
        assert!(matches!(out.credential, CredentialUpdate::ClearCookie));
        assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });
    }
}

#[tokio::test]
async fn a_user_gone_at_rotation_on_a_browser_route_goes_to_sign_in() {
    let ports = Ports::idle().token(Token::Stale).directory(gone);
    let out = decide_later(&ports.admission(), "GET", "/app/home", cookie("tok")).await;
    assert!(matches!(out.credential, CredentialUpdate::ClearCookie));
    assert_eq!(
        refusal(out),
        Refusal::SignIn {
            location: "/login?return_to=%2Fapp%2Fhome".into()
        }
    );
}

#[tokio::test]
async fn a_user_gone_at_rotation_on_a_public_route_is_a_refused_guest_with_the_cookie_cleared() {
    let ports = Ports::idle().token(Token::Due).directory(gone);
    let out = decide_later(&ports.admission(), "GET", "/", cookie("tok")).await;
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
    assert!(matches!(out.credential, CredentialUpdate::ClearCookie));
}

#[tokio::test]
async fn stale_claims_that_cannot_be_refreshed_fail_closed() {
    let ports = Ports::idle().token(Token::Stale).directory(directory_down);
    let out = decide_later(&ports.admission(), "GET", "/api/x", cookie("tok")).await;
    assert!(matches!(out.credential, CredentialUpdate::Keep));
    assert_eq!(refusal(out), Refusal::Unavailable);
}

#[tokio::test]
async fn stale_claims_that_cannot_be_refreshed_are_a_guest_on_a_public_route() {
    let ports = Ports::idle().token(Token::Stale).directory(directory_down);
    let out = decide_later(&ports.admission(), "GET", "/", cookie("tok")).await;
    assert!(matches!(out.verdict, Verdict::Guest { refused: false }));
    assert!(matches!(out.credential, CredentialUpdate::Keep));
}

#[tokio::test]
async fn a_due_session_whose_rotation_fails_goes_on_with_the_current_token() {
    let ports = Ports::idle().token(Token::Due).directory(directory_down);
    let out = decide_later(&ports.admission(), "GET", "/api/x", cookie("tok")).await;
    assert!(matches!(out.credential, CredentialUpdate::Keep));
    assert_eq!(role_of(&out), Some(UserRole::Moderator));
}

// --- provider tokens -------------------------------------------------------

const IDP: &str = "https://idp.example";

fn identity() -> ExternalIdentity<UserRole> {
    ExternalIdentity {
        issuer: IDP.into(),
        subject: subject(),
        token_use: TokenUse::Access,
        subject_kind: SubjectKind::User,
        role: UserRole::Admin,
        email: None,
        name: None,
        issued_at: at(NOW - 10),
        authenticated_at: Some(at(NOW - 100)),
        authentication: Default::default(),
        expires_at: at(NOW + 50),
    }
}

fn local(enabled: bool) -> ExternalUser<UserRole> {
    ExternalUser {
        user: directory_user(UserRole::Admin, enabled),
        issuer: IDP.into(),
        subject: subject(),
        email: None,
        name: None,
    }
}

/// What the fake provider verifier answers.
type ProviderAnswer = fn() -> Result<ExternalIdentity<UserRole>, ExternalTokenError>;

impl Ports {
    /// Provider tokens accepted: "ptok" is not a session token; the
    /// verifier answers `verified` (if called) and the directory knows the
    /// user as `enabled` (if asked).
    fn provider(self, verified: Option<ProviderAnswer>, enabled: Option<bool>) -> Self {
        self.provider_standing(verified, enabled, || Ok(RevocationStatus::Active))
    }

    /// [`Ports::provider`], the revocation store answering `standing` about
    /// a token that gets that far.
    fn provider_standing(
        mut self,
        verified: Option<ProviderAnswer>,
        enabled: Option<bool>,
        standing: fn() -> Result<RevocationStatus, RevocationError>,
    ) -> Self {
        self.codec.checkpoint();
        self.codec.expect_decode().times(0);
        self.codec.expect_encode().times(0);
        self.codec
            .expect_is_session_token()
            .with(eq("ptok"))
            .times(1)
            .return_const(false);
        let mut verifier = MockExternalTokenVerifier::new();
        verifier
            .expect_verify()
            .with(eq("ptok"))
            .times(usize::from(verified.is_some()))
            .returning(move |_| {
                verified.map_or(
                    Err(ExternalTokenError::Jws(JwsFailure::InvalidSignature)),
                    |f| f(),
                )
            });
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_find_by_external_id()
            .with(eq(IDP), eq(subject()))
            .times(usize::from(enabled.is_some()))
            .returning(move |_, _| Ok(Some(local(enabled.unwrap_or(false)))));
        users.expect_upsert_external().times(0);
        self.clock.checkpoint();
        let stands = enabled == Some(true) && matches!(standing(), Ok(RevocationStatus::Active));
        self.clock
            .expect_now()
            .times(usize::from(stands))
            .return_const(at(NOW));
        self.provider = Some((verifier, users));
        self.provider_revocation(usize::from(enabled == Some(true)), standing)
    }

    /// The revocation store is asked `checks` times about the provider
    /// token of [`identity`] for [`local`]'s user, answering `answer`.
    fn provider_revocation(
        mut self,
        checks: usize,
        answer: fn() -> Result<RevocationStatus, RevocationError>,
    ) -> Self {
        self.store.checkpoint();
        self.store
            .expect_check()
            .withf(|q| {
                q.user_id == &user()
                    && q.tenant == Some(&tenant())
                    && q.issued_at == at(NOW - 10)
                    && q.session_id == &identity().session_id()
            })
            .times(checks)
            .returning(move |_| answer());
        self
    }
}

#[tokio::test]
async fn a_provider_token_is_admitted_as_its_local_user_under_the_same_policy() {
    let ports = Ports::idle().provider(Some(|| Ok(identity())), Some(true));
    let out = decide_later(&ports.admission(), "GET", "/admin/users", bearer("ptok")).await;
    let Verdict::Session(admitted) = out.verdict else {
        panic!("expected a session");
    };
    assert_eq!(admitted.session.user_id(), &user());
    assert_eq!(admitted.session.role(), &UserRole::Admin);
    assert_eq!(admitted.session.expires_at(), at(NOW + 50));
    assert_eq!(admitted.verified_at, at(NOW));
    assert_eq!(
        admitted.session.session_id(),
        &tessera_domain::SessionId::derived(&[
            IDP.as_bytes(),
            b"user_2abc",
            &(NOW - 10).to_be_bytes()
        ])
    );
    assert_eq!(admitted.provider.map(|p| p.user), Some(local(true)));
    assert!(matches!(out.credential, CredentialUpdate::Keep));
}

#[tokio::test]
async fn a_refused_provider_token_is_401_even_on_a_browser_route() {
    let ports = Ports::idle().provider(
        Some(|| Err(ExternalTokenError::Jws(JwsFailure::InvalidSignature))),
        None,
    );
    let out = decide_later(&ports.admission(), "GET", "/app/home", bearer("ptok")).await;
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });
}

#[tokio::test]
async fn an_id_token_is_refused_on_the_hybrid_path_before_its_user_is_looked_up() {
    let ports = Ports::idle().provider(
        Some(|| {
            Ok(ExternalIdentity {
                token_use: TokenUse::Id,
                ..identity()
            })
        }),
        None,
    );
    let out = decide_later(&ports.admission(), "GET", "/api/x", bearer("ptok")).await;
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });
}

#[tokio::test]
async fn a_provider_token_whose_subject_its_profile_refuses_is_403_with_the_refusals_code() {
    let ports = Ports::idle().provider(Some(|| Err(SubjectRefusal::MachineToken.into())), None);
    let out = decide_later(&ports.admission(), "GET", "/app/home", bearer("ptok")).await;
    let refused = refusal(out);
    assert_eq!(refused, Refusal::Subject(SubjectRefusal::MachineToken));
    assert_eq!(refused.code(), Some("machine_token"));
    // On a route that needs no session the token is ignored, as any other.
    let ports = Ports::idle().provider(
        Some(|| {
            Err(SubjectRefusal::RequiredClaim {
                path: "email_verified".into(),
            }
            .into())
        }),
        None,
    );
    let out = decide_later(&ports.admission(), "GET", "/", bearer("ptok")).await;
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
}

#[tokio::test]
async fn a_disabled_provider_user_is_refused() {
    let ports = Ports::idle().provider(Some(|| Ok(identity())), Some(false));
    let out = decide_later(&ports.admission(), "GET", "/api/x", bearer("ptok")).await;
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });
}

#[tokio::test]
async fn provider_keys_unavailable_fail_closed_where_a_session_is_needed_only() {
    fn down() -> Result<ExternalIdentity<UserRole>, ExternalTokenError> {
        Err(ExternalTokenError::KeysUnavailable("jwks down".into()))
    }
    let ports = Ports::idle().provider(Some(down), None);
    let out = decide_later(&ports.admission(), "GET", "/api/x", bearer("ptok")).await;
    assert_eq!(refusal(out), Refusal::Unavailable);
    let ports = Ports::idle().provider(Some(down), None);
    let out = decide_later(&ports.admission(), "GET", "/", bearer("ptok")).await;
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
}

#[test]
fn a_session_token_in_a_cookie_never_reaches_the_provider_verifier() {
    let mut ports = Ports::idle().token(Token::Fresh);
    let mut verifier = MockExternalTokenVerifier::new();
    verifier.expect_verify().times(0);
    let mut users = MockExternalUserDirectory::new();
    users.expect_find_by_external_id().times(0);
    ports.provider = Some((verifier, users));
    let out = decide_now(&ports.admission(), "GET", "/app/home", cookie("tok"));
    assert_eq!(role_of(&out), Some(UserRole::Moderator));
}

#[test]
fn a_bearer_session_token_goes_to_the_session_verifier_when_providers_are_on() {
    let mut ports = Ports::idle().token_with(Token::Fresh, true, Some(true));
    let mut verifier = MockExternalTokenVerifier::new();
    verifier.expect_verify().times(0);
    ports.provider = Some((verifier, MockExternalUserDirectory::new()));
    let out = decide_now(&ports.admission(), "GET", "/app/home", bearer("tok"));
    assert_eq!(role_of(&out), Some(UserRole::Moderator));
}

// --- cross-origin protection -------------------------------------------------

fn facts<'a>(origin: Option<&'a str>, fetch_site: Option<&'a str>) -> BrowserFacts<'a> {
    BrowserFacts::new(origin, fetch_site, Some("app.example:8443"))
}

/// Decides `method path` with `credential` and the browser's `facts` on an
/// admission that trusts `https://partner.example`, where `/callback`
/// allows cross-origin requests.
fn decide_cross(
    ports: Ports,
    method: &str,
    path: &str,
    credential: PresentedCredential<'_>,
    facts: BrowserFacts<'_>,
) -> Decision<UserRole> {
    let policy = Arc::new(
        RoutePolicy::builder()
            .rule(RouteRule::new("/login", Requirement::GuestOnly).browser())
            .rule(RouteRule::new("/callback", Requirement::Public).allow_cross_origin())
            .rule(RouteRule::new("/app/*", Requirement::Authenticated).browser())
            .build()
            .unwrap(),
    );
    let trusted = TrustedOrigins::default()
        .trust("https://partner.example")
        .unwrap();
    ports
        .admission_with(policy)
        .with_trusted_origins(trusted)
        .decide(&AdmissionRequest::new(method, path, credential).with_browser_facts(facts))
}

fn refused_as_cross_origin(decision: Decision<UserRole>) -> bool {
    matches!(
        decision,
        Decision::Decided(Admission {
            verdict: Verdict::Refuse(Refusal::CrossOrigin),
            credential: CredentialUpdate::Keep,
        })
    )
}

#[test]
fn a_cross_site_unsafe_request_with_a_cookie_is_refused_before_the_token_is_read() {
    // Ports::idle(): the codec is never asked.
    for site in ["cross-site", "same-site", "", "bogus"] {
        let decision = decide_cross(
            Ports::idle(),
            "POST",
            "/app/transfer",
            cookie("tok"),
            facts(Some("https://evil.example"), Some(site)),
        );
        assert!(refused_as_cross_origin(decision), "{site}");
    }
}

#[test]
fn a_cross_site_sign_in_form_is_refused_too() {
    let decision = decide_cross(
        Ports::idle(),
        "POST",
        "/login",
        PresentedCredential::None,
        facts(Some("https://evil.example"), Some("cross-site")),
    );
    assert!(refused_as_cross_origin(decision));
}

#[test]
fn without_fetch_metadata_the_origin_must_name_the_requests_own_host() {
    let other_port = decide_cross(
        Ports::idle(),
        "POST",
        "/login",
        PresentedCredential::None,
        facts(Some("https://app.example:9000"), None),
    );
    assert!(refused_as_cross_origin(other_port));
    let null = decide_cross(
        Ports::idle(),
        "DELETE",
        "/login",
        PresentedCredential::None,
        facts(Some("null"), None),
    );
    assert!(refused_as_cross_origin(null));
    let own = decide_cross(
        Ports::idle(),
        "POST",
        "/login",
        PresentedCredential::None,
        facts(Some("https://App.Example:8443"), None),
    );
    assert!(!refused_as_cross_origin(own));
}

#[test]
fn same_origin_user_initiated_and_header_less_requests_pass() {
    for (origin, site) in [
        (Some("https://app.example:8443"), Some("same-origin")),
        (None, Some("none")),
        (None, None),
    ] {
        let decision = decide_cross(
            Ports::idle(),
            "POST",
            "/login",
            PresentedCredential::None,
            facts(origin, site),
        );
        assert!(
            matches!(
                decision,
                Decision::Decided(Admission {
                    verdict: Verdict::Guest { refused: false },
                    ..
                })
            ),
            "{origin:?} {site:?}"
        );
    }
}

#[test]
fn safe_methods_trusted_origins_bearer_tokens_and_opted_out_routes_pass() {
    let evil = || facts(Some("https://evil.example"), Some("cross-site"));
    for method in ["GET", "HEAD", "OPTIONS"] {
        let decision = decide_cross(
            Ports::idle(),
            method,
            "/login",
            PresentedCredential::None,
            evil(),
        );
        assert!(!refused_as_cross_origin(decision), "{method}");
    }
    let trusted = decide_cross(
        Ports::idle(),
        "POST",
        "/login",
        PresentedCredential::None,
        facts(Some("https://partner.example"), Some("cross-site")),
    );
    assert!(!refused_as_cross_origin(trusted));
    let callback = decide_cross(
        Ports::idle(),
        "POST",
        "/callback",
        PresentedCredential::None,
        evil(),
    );
    assert!(!refused_as_cross_origin(callback));
    // A bearer token carries no ambient authority: it is verified as usual.
    let bearer = decide_cross(
        Ports::idle().token(Token::Fresh),
        "POST",
        "/app/transfer",
        bearer("tok"),
        evil(),
    );
    assert!(matches!(
        bearer,
        Decision::Decided(Admission {
            verdict: Verdict::Session(_),
            ..
        })
    ));
    // A cookie alongside it puts the request back under the rule.
    let both = decide_cross(
        Ports::idle(),
        "POST",
        "/app/transfer",
        PresentedCredential::Token {
            token: "tok",
            via: CredentialSource::Both,
        },
        evil(),
    );
    assert!(refused_as_cross_origin(both));
}

#[test]
fn trusted_origins_must_be_origins() {
    for ok in [
        "https://app.example",
        "http://localhost:5173",
        "https://a-b.c.example:443",
    ] {
        assert!(TrustedOrigins::default().trust(ok).is_ok(), "{ok}");
    }
    for bad in [
        "app.example",
        "https://app.example/",
        "https://app.example/path",
        "https://App.example",
        "ftp://app.example",
        "https://user@app.example",
        "https://app.example:",
        "https://app.example:123456",
        "https://",
        "*",
    ] {
        assert_eq!(
            TrustedOrigins::default().trust(bad),
            Err(OriginError(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn a_not_found_route_is_404_for_guests_and_sessions_alike_and_reads_no_token() {
    let policy = Arc::new(
        RoutePolicy::builder()
            .rule(RouteRule::new("/", Requirement::Public))
            .default_requirement(Requirement::NotFound)
            .build()
            .unwrap(),
    );
    let admission = |ports: Ports| ports.admission_with(policy.clone());
    let guest = decide_now(
        &admission(Ports::idle()),
        "GET",
        "/favicon.ico",
        PresentedCredential::None,
    );
    assert_eq!(refusal(guest), Refusal::NotFound);
    // Nothing is served: the token is not even read (no decode expected).
    let signed_in = decide_now(
        &admission(Ports::idle()),
        "GET",
        "/favicon.ico",
        cookie("tok"),
    );
    assert_eq!(refusal(signed_in), Refusal::NotFound);
}

fn user_logged_out() -> Result<RevocationStatus, RevocationError> {
    Ok(RevocationStatus::Revoked(
        crate::ports::RevocationReason::UserLoggedOut,
    ))
}

fn store_down() -> Result<RevocationStatus, RevocationError> {
    Err(RevocationError::Unavailable("listener down".into()))
}

#[tokio::test]
async fn a_provider_token_issued_before_a_force_logout_is_refused_where_a_session_is_needed() {
    let ports =
        Ports::idle().provider_standing(Some(|| Ok(identity())), Some(true), user_logged_out);
    let out = decide_later(&ports.admission(), "GET", "/app/home", bearer("ptok")).await;
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });

    let ports =
        Ports::idle().provider_standing(Some(|| Ok(identity())), Some(true), user_logged_out);
    let out = decide_later(&ports.admission(), "GET", "/", bearer("ptok")).await;
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
}

#[tokio::test]
async fn provider_tokens_fail_closed_when_the_revocation_state_is_untrustworthy() {
    let ports = Ports::idle().provider_standing(Some(|| Ok(identity())), Some(true), store_down);
    let out = decide_later(&ports.admission(), "GET", "/api/x", bearer("ptok")).await;
    assert_eq!(refusal(out), Refusal::Unavailable);

    let ports = Ports::idle().provider_standing(Some(|| Ok(identity())), Some(true), store_down);
    let out = decide_later(&ports.admission(), "GET", "/", bearer("ptok")).await;
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
}

// --- step-up -----------------------------------------------------------------

#[test]
fn a_session_authenticated_longer_ago_than_max_age_is_asked_to_step_up() {
    // Authenticated 10 s ago; the route asks for 5.
    let ports = Ports::idle().token(Token::Fresh);
    let out = decide_now(&ports.admission(), "GET", "/recent/x", bearer("tok"));
    assert!(matches!(out.credential, CredentialUpdate::Keep));
    let Refusal::StepUp(challenge) = refusal(out) else {
        panic!("expected a step-up");
    };
    assert_eq!(challenge.reason(), tessera_domain::StepUpReason::Recency);
    assert_eq!(challenge.asked().max_age_seconds(), Some(5));
    assert_eq!(challenge.asked().acr_values_text(), None);
    assert_eq!(
        Refusal::StepUp(challenge).code(),
        Some("insufficient_user_authentication")
    );
}

#[test]
fn a_browser_route_sends_a_session_without_the_level_to_sign_in_with_what_it_needs() {
    let ports = Ports::idle().token(Token::Fresh);
    let out = decide_now(&ports.admission(), "GET", "/mfa/keys?tab=2", cookie("tok"));
    assert!(matches!(out.credential, CredentialUpdate::Keep));
    assert_eq!(
        refusal(out),
        Refusal::SignIn {
            location: "/login?return_to=%2Fmfa%2Fkeys%3Ftab%3D2&max_age=600&acr_values=urn%3Aexample%3Amfa+phrh".into()
        }
    );
    // A form post is not returned to, but still carries the challenge.
    let ports = Ports::idle().token(Token::Fresh);
    let out = decide_now(&ports.admission(), "POST", "/mfa/keys", cookie("tok"));
    assert_eq!(
        refusal(out),
        Refusal::SignIn {
            location: "/login?max_age=600&acr_values=urn%3Aexample%3Amfa+phrh".into()
        }
    );
}

#[tokio::test]
async fn a_provider_token_without_the_level_is_asked_to_step_up_never_redirected() {
    let ports = Ports::idle().provider(Some(|| Ok(identity())), Some(true));
    let out = decide_later(&ports.admission(), "GET", "/mfa/keys", bearer("ptok")).await;
    let Refusal::StepUp(challenge) = refusal(out) else {
        panic!("expected a step-up");
    };
    assert_eq!(challenge.reason(), tessera_domain::StepUpReason::Level);
}

#[tokio::test]
async fn a_provider_token_at_an_accepted_level_passes_a_step_up_route() {
    fn strong() -> Result<ExternalIdentity<UserRole>, ExternalTokenError> {
        Ok(ExternalIdentity {
            authentication: tessera_domain::Authentication::at_level(
                tessera_domain::Acr::parse("phrh").unwrap(),
            ),
            ..identity()
        })
    }
    let ports = Ports::idle().provider(Some(strong), Some(true));
    let out = decide_later(&ports.admission(), "GET", "/mfa/keys", bearer("ptok")).await;
    let Verdict::Session(admitted) = out.verdict else {
        panic!("expected a session");
    };
    assert_eq!(
        admitted.session.authentication().acr().map(|a| a.as_str()),
        Some("phrh")
    );
}

#[tokio::test]
async fn a_session_the_authoritative_store_revokes_at_rotation_is_signed_out_not_let_through() {
    // This instance's cache has not seen the logout yet; rotation asks the
    // tables, which have.
    let tables = || {
        let mut tables = MockRevocationStore::new();
        tables
            .expect_check_authoritative()
            .withf(|q| q.session_id == &session_id())
            .times(1)
            .returning(|_| {
                Ok(RevocationStatus::Revoked(
                    crate::ports::RevocationReason::SessionLoggedOut,
                ))
            });
        tables
    };
    // Ports::idle(): no directory read, no signing.
    let admission = Ports::idle()
        .token(Token::Due)
        .admission_asking(policy(), Some(tables()));
    let out = decide_later(&admission, "GET", "/api/x", cookie("tok")).await;
    assert!(matches!(out.credential, CredentialUpdate::ClearCookie));
    assert_eq!(refusal(out), Refusal::Unauthenticated { refused: true });

    let admission = Ports::idle()
        .token(Token::Due)
        .admission_asking(policy(), Some(tables()));
    let out = decide_later(&admission, "GET", "/", cookie("tok")).await;
    assert!(matches!(out.verdict, Verdict::Guest { refused: true }));
    assert!(matches!(out.credential, CredentialUpdate::ClearCookie));
}
