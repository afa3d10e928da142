//! The fixtures every framework adapter's unit tests share (each includes
//! this file with `#[path]`): exact mockall fakes of every port behind the
//! session middleware, the policy they enforce, and the checks of a reply
//! (with `http` 1.x types, whatever the framework's).

use std::collections::BTreeSet;
use std::sync::Arc;

use http::{HeaderMap, StatusCode, header};
use mockall::predicate::eq;
use tessera_application::ports::{
    DEFAULT_MAX_TOKEN_BYTES, DirectoryError, DirectoryUser, JwsFailure, MockClock, MockIdGenerator,
    MockRevocationStore, MockSessionTokenCodec, MockUserDirectory, RevocationError,
    RevocationStatus, TokenError,
};
use tessera_application::{
    EstablishSession, RevokeSession, RotateSession, SessionToken, SessionTokenClaims, SignInUser,
    VerifySession,
};
use tessera_domain::{
    Capability, NewSession, Requirement, RoutePolicy, RouteRule, SessionEntity, SessionId,
    SessionLifetimes, UserId, UserRole,
};
use tessera_http::{RequiredCapability, SessionUseCases};
use time::{Duration, OffsetDateTime};

pub(crate) const NOW: i64 = 1_700_000_000;
pub(crate) const TOKEN: &str = "old.token.value";
pub(crate) const ROTATED: &str = "rotated.token.value";
pub(crate) const COOKIE: &str = "__Host-session";

pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

pub(crate) fn user() -> UserId {
    UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap()
}

fn caps(names: &[&str]) -> BTreeSet<Capability> {
    names
        .iter()
        .map(|n| Capability::parse(n).unwrap())
        .collect()
}

/// 900 s tokens, 3600 s sessions, rotation after 300 s, 30 s leeway.
fn lifetimes() -> SessionLifetimes {
    SessionLifetimes::new(
        Duration::seconds(900),
        Duration::seconds(3600),
        Duration::seconds(300),
        Duration::seconds(30),
    )
    .unwrap()
}

pub(crate) fn session(role: UserRole, iat: i64) -> SessionEntity<UserRole> {
    SessionEntity::new(NewSession {
        user_id: user(),
        session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").unwrap(),
        role,
        capabilities: caps(&["posts:write"]),
        tenant: None,
        issued_at: at(iat),
        expires_at: at(iat + 900),
        authenticated_at: at(iat),
        authentication: Default::default(),
    })
    .unwrap()
}

/// The policy of the test routes.
pub(crate) fn policy() -> RoutePolicy<UserRole> {
    RoutePolicy::builder()
        .rule(RouteRule::new("/", Requirement::Public))
        .rule(RouteRule::new("/login", Requirement::GuestOnly).browser())
        .rule(RouteRule::new("/me", Requirement::Authenticated))
        .rule(RouteRule::new("/app/*", Requirement::Authenticated).browser())
        .rule(RouteRule::new(
            "/admin/*",
            Requirement::AtLeastRole(UserRole::Admin),
        ))
        .rule(RouteRule::new("/any/*", Requirement::Authenticated))
        .rule(RouteRule::new("/closed", Requirement::Deny))
        .build()
        .unwrap()
}

/// The capability `/any/reports` requires.
pub(crate) struct ReadReports;
impl RequiredCapability for ReadReports {
    const NAME: &'static str = "reports:read";
}

/// Every port, as an exact fake. A port no step expects is expected
/// `.times(0)` when the use cases are wired.
pub(crate) struct Ports {
    codec: MockSessionTokenCodec<UserRole>,
    clock: MockClock,
    store: MockRevocationStore,
    directory: MockUserDirectory<UserRole>,
    decodes: bool,
    checks: bool,
    rotates: bool,
    max_token_bytes: usize,
}

impl Ports {
    pub(crate) fn new() -> Self {
        Self {
            codec: MockSessionTokenCodec::new(),
            clock: MockClock::new(),
            store: MockRevocationStore::new(),
            directory: MockUserDirectory::new(),
            decodes: false,
            checks: false,
            rotates: false,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// The codec caps tokens at `max` bytes.
    pub(crate) fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Sets `.times(0)` on every call no step expects.
    fn seal(mut self) -> Self {
        self.codec
            .expect_max_token_bytes()
            .return_const(self.max_token_bytes);
        if !self.decodes {
            self.codec.expect_decode().times(0);
        }
        if !self.checks {
            self.clock.expect_now().times(0);
            self.store.expect_check().times(0);
        }
        if !self.rotates {
            self.codec.expect_encode().times(0);
            self.directory.expect_find().times(0);
        }
        self
    }

    /// `TOKEN` is decoded once into `session` and the store answers `status`.
    pub(crate) fn verifies(
        self,
        session: SessionEntity<UserRole>,
        status: RevocationStatus,
    ) -> Self {
        self.verifies_then(session, Ok(status))
    }

    /// `TOKEN` is decoded once into `session` and the store answers `check`.
    pub(crate) fn verifies_then(
        mut self,
        session: SessionEntity<UserRole>,
        check: Result<RevocationStatus, RevocationError>,
    ) -> Self {
        self.codec
            .expect_decode()
            .with(eq(TOKEN))
            .times(1)
            .return_once(move |_| Ok(SessionTokenClaims::new(session, None)));
        self.clock.expect_now().times(1).return_const(at(NOW));
        self.store
            .expect_check()
            .times(1)
            .return_once(move |_| check);
        self.decodes = true;
        self.checks = true;
        self
    }

    /// `TOKEN` is decoded once and refused with a bad signature.
    pub(crate) fn refuses(mut self) -> Self {
        self.codec
            .expect_decode()
            .with(eq(TOKEN))
            .times(1)
            .returning(|_| Err(TokenError::Jws(JwsFailure::InvalidSignature)));
        self.decodes = true;
        self
    }

    /// The directory answers once, and a found, enabled user gets a token.
    pub(crate) fn rotates_to(
        mut self,
        found: Result<Option<DirectoryUser<UserRole>>, DirectoryError>,
        signs: bool,
    ) -> Self {
        self.rotates = true;
        self.directory
            .expect_find()
            .with(eq(user()))
            .times(1)
            .return_once(move |_| found);
        self.codec
            .expect_encode()
            .times(usize::from(signs))
            .returning(|_| Ok(SessionToken::new(ROTATED.into())));
        self
    }

    /// The sealed ports wired into the use cases a middleware needs (no
    /// session id is ever generated: these tests sign nobody in).
    pub(crate) fn use_cases(self) -> SessionUseCases<UserRole> {
        let ports = self.seal();
        let codec = Arc::new(ports.codec);
        let clock = Arc::new(ports.clock);
        let store = Arc::new(ports.store);
        let verify = VerifySession::new(codec.clone(), clock.clone(), store.clone(), lifetimes());
        SessionUseCases {
            sign_in: SignInUser::new(
                EstablishSession::new(
                    codec.clone(),
                    clock.clone(),
                    Arc::new(MockIdGenerator::new()),
                    lifetimes(),
                ),
                Arc::new(MockUserDirectory::new()),
            ),
            rotate: RotateSession::new(verify.clone(), Arc::new(ports.directory), codec),
            revoke: RevokeSession::new(store, clock, lifetimes()),
            verify,
        }
    }
}

/// A token issued 10 s ago, verified, not due for rotation.
pub(crate) fn signed_in(role: UserRole) -> Ports {
    Ports::new().verifies(session(role, NOW - 10), RevocationStatus::Active)
}

/// A user's token issued 400 s ago, so due for rotation, which succeeds.
pub(crate) fn due_for_rotation() -> Ports {
    due_and_directory_says(Ok(Some(directory_user(UserRole::User, true))), true)
}

/// A user's token due for rotation; the directory answers `found`.
pub(crate) fn due_and_directory_says(
    found: Result<Option<DirectoryUser<UserRole>>, DirectoryError>,
    signs: bool,
) -> Ports {
    Ports::new()
        .verifies(session(UserRole::User, NOW - 400), RevocationStatus::Active)
        .rotates_to(found, signs)
}

/// A token issued 10 s ago whose claims the store says are stale.
pub(crate) fn stale(role: UserRole) -> Ports {
    Ports::new().verifies(session(role, NOW - 10), RevocationStatus::ClaimsStale)
}

pub(crate) fn directory_user(role: UserRole, enabled: bool) -> DirectoryUser<UserRole> {
    DirectoryUser {
        user_id: user(),
        role,
        capabilities: caps(&["posts:write", "reports:read"]),
        tenant: None,
        enabled,
    }
}

pub(crate) fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

pub(crate) fn cookie() -> (&'static str, String) {
    ("cookie", format!("theme=dark; {COOKIE}={TOKEN}"))
}

/// A response, whatever the framework.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(crate) fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }
}

pub(crate) fn assert_error(reply: &Reply, status: u16, challenge: Option<&str>, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "body: {}", reply.body);
    assert_eq!(reply.header("www-authenticate"), challenge);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.body, format!("{{\"error\":\"{code}\"}}"));
}

pub(crate) fn assert_invalid_request(reply: &Reply) {
    assert_error(
        reply,
        400,
        Some("Bearer error=\"invalid_request\""),
        "invalid_request",
    );
}

pub(crate) fn assert_invalid_token(reply: &Reply) {
    assert_error(
        reply,
        401,
        Some("Bearer error=\"invalid_token\""),
        "invalid_token",
    );
}

pub(crate) fn assert_insufficient_scope(reply: &Reply) {
    assert_error(
        reply,
        403,
        Some("Bearer error=\"insufficient_scope\""),
        "insufficient_scope",
    );
}

pub(crate) fn assert_clears_cookie(reply: &Reply) {
    let cookies = reply.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cleared = cookie::Cookie::parse(cookies[0]).unwrap();
    assert_eq!(cleared.name(), COOKIE);
    assert_eq!(cleared.value(), "");
    assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
}

/// The one `Set-Cookie` of a reply, parsed.
pub(crate) fn rotated_cookie(reply: &Reply) -> cookie::Cookie<'static> {
    let cookies = reply.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    cookie::Cookie::parse(cookies[0].to_owned()).unwrap()
}

/// A rotated session cookie as the middleware must set it.
pub(crate) fn assert_rotated_cookie(reply: &Reply) {
    let cookie = rotated_cookie(reply);
    assert_eq!(cookie.name(), COOKIE);
    assert_eq!(cookie.value(), ROTATED);
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    assert_eq!(cookie.max_age(), Some(cookie::time::Duration::seconds(900)));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.headers.get("x-session-token").is_none());
}
