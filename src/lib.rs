//! Sessions carried in signed JWTs for Rust web backends: typed claims,
//! verification in microseconds with no I/O, rotation that refreshes roles
//! from your user directory, logout and force-logout that reach every
//! instance, a route-access policy, cross-origin protection, and the same
//! answers on axum and actix-web.
//!
//! # Quickstart
//!
//! 1. **Wire a [`Tessera`]** once: a key ring, the issuer and audience your
//!    tokens carry, and your user directory (where rotation reads each
//!    user's current role; here the in-memory one, filled by your sign-up).
//! 2. **Sign users in**: once your code has authenticated a user,
//!    [`establish`](Tessera::establish) a session and hand its token to the
//!    client, in a cookie ([`http::SessionCookies`]) or as a bearer token.
//! 3. **Guard routes**: a [`domain::RoutePolicy`] says who may call what;
//!    the layer ([`axum::SessionLayer`], or `actix::SessionMiddleware`
//!    with feature `actix`) enforces it, rotates sessions and answers
//!    refusals (RFC 6750), and handlers take the session as an extractor
//!    ([`axum::Session`], [`axum::RequireRole`]).
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::{Router, routing::get};
//! use tessera::application::EstablishRequest;
//! use tessera::application::ports::DirectoryUser;
//! use tessera::axum::{RequireRole, Session, roles::Admin};
//! use tessera::domain::{Requirement, RoutePolicy, RouteRule, UserId};
//! use tessera::{InMemoryUserDirectory, JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};
//!
//! // 1. Wire it once.
//! let users = Arc::new(InMemoryUserDirectory::<UserRole>::new());
//! let sessions: Tessera<UserRole> = Tessera::builder(
//!     KeyRing::new(SigningKey::generate(JwsAlgorithm::EdDsa, "key-1")?),
//!     "https://api.example",
//!     "web",
//! )
//! .user_directory(users.clone())
//! .build();
//!
//! // 2. After your sign-in has authenticated alice:
//! let alice = UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001")?;
//! users.upsert(DirectoryUser {
//!     user_id: alice,
//!     role: UserRole::Admin,
//!     capabilities: Default::default(),
//!     tenant: None,
//!     enabled: true,
//! });
//! let issued = sessions
//!     .establish()
//!     .execute(EstablishRequest::new(alice, UserRole::Admin))?;
//! let cookie = tessera::http::SessionCookies::default().issue(&issued.token, &issued.session)?;
//! # let _ = cookie;
//!
//! // 3. Guard the routes.
//! async fn me(session: Session) -> String {
//!     format!("{} ({})", session.user_id(), session.role())
//! }
//! async fn admin(admin: RequireRole<Admin>) -> String {
//!     format!("welcome, {}", admin.user_id())
//! }
//! let policy = RoutePolicy::builder()
//!     .rule(RouteRule::new("/me", Requirement::Authenticated))
//!     .rule(RouteRule::new("/admin", Requirement::AtLeastRole(UserRole::Admin)).browser())
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/admin", get(admin))
//!     .layer(sessions.session_layer(policy)?.build()?);
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Outside HTTP, [`Tessera::verify`] checks a token strictly (it refuses a
//! session whose user's permissions changed: [`Tessera::rotate`] renews
//! it), [`Tessera::read`] reads one leniently, and [`Tessera::revoke`]
//! logs a session out, force-logs-out a user, a tenant or everyone, or
//! marks permissions changed.
//!
//! # Where things live
//!
//! | path | what |
//! |---|---|
//! | [`Tessera`], [`TesseraBuilder`] | the session manager: every use case wired to one codec, clock and stores |
//! | [`axum`] | the tower layer, extractors, token-exchange and webhook handlers (feature `axum`, default) |
//! | `actix` | the same for actix-web 4 (feature `actix`) |
//! | [`http`] | the framework-neutral edge both translate: cookies, credentials, RFC 6750 answers, gateway identity headers, webhook signatures |
//! | [`application`] | use cases and ports, the request admission ([`application::DecideAdmission`]), contract suites for your own adapters (feature `testing` of `tessera-application`) |
//! | [`domain`] | sessions, ids, roles, lifetimes, the route policy |
//! | [`infrastructure`] | the JOSE codec and key ring, in-memory, PostgreSQL and Redis stores, identity-provider verification |
//!
//! # Features
//!
//! | feature | adds |
//! |---|---|
//! | `axum` (default) | [`axum`]: the tower layer and extractors |
//! | `actix` | `actix`: the actix-web middleware and extractors (Rust 1.89+) |
//! | `postgres` | the PostgreSQL revocation store and user directories, shared by every instance |
//! | `redis` | the Redis revocation store (streams) and shared user cache |
//! | `jwks-fetch` | identity providers' keys fetched over HTTPS (JWKS, OpenID discovery) |
//! | `cli` | the `tessera` operations binary (keygen, mint, inspect, verify) |
//!
//! The repository's README has the demo and the commands that run the
//! tests.

// The README's examples compile as doc-tests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

use std::sync::Arc;

#[cfg(feature = "axum")]
use tessera_application::ResolveUser;
use tessera_application::external::{ExternalTokenVerifier, ExternalUserDirectory};
use tessera_application::ports::{
    Clock, DirectoryError, IdGenerator, RevocationStore, UserDirectory,
};
use tessera_application::{
    EstablishSession, ExchangeToken, ReadSession, RevokeSession, RotateSession, VerifySession,
};
use tessera_domain::{Role, RoutePolicy, SessionLifetimes};
use tessera_infrastructure::identity::{ClaimMapping, IdentityProvider, ProviderBuilder};

#[cfg(feature = "actix")]
pub use tessera_actix as actix;
pub use tessera_application as application;
#[cfg(feature = "axum")]
pub use tessera_axum as axum;
pub use tessera_domain as domain;
pub use tessera_http as http;
pub use tessera_infrastructure as infrastructure;
#[cfg(feature = "server")]
pub mod server;

pub use tessera_domain::UserRole;
pub use tessera_infrastructure::{
    InMemoryRevocationStore, InMemoryUserDirectory, JwsAlgorithm, JwtSessionCodec, KeyRing,
    SigningKey, SystemClock, UuidV7SessionIds, VerificationKey,
};

/// A session manager: every use case, wired to one codec, clock and store.
#[derive(Debug, Clone)]
pub struct Tessera<R: Role = UserRole> {
    codec: Arc<JwtSessionCodec>,
    establish: EstablishSession<R>,
    verify: VerifySession<R>,
    read: ReadSession<R>,
    rotate: RotateSession<R>,
    revoke: RevokeSession,
    revocations: RevocationsHandle,
    clock: ClockHandle,
    has_directory: bool,
}

/// The manager's revocation store, printed as its name only.
#[derive(Clone)]
struct RevocationsHandle(Arc<dyn RevocationStore>);

impl std::fmt::Debug for RevocationsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevocationStore")
    }
}

/// The manager's clock, printed as its name only.
#[derive(Clone)]
struct ClockHandle(Arc<dyn Clock>);

impl std::fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// The session manager has no user directory, and what was asked needs one.
///
/// Rotation re-reads the user's role, capabilities, tenant and enabled flag
/// from the directory; without one configured
/// ([`TesseraBuilder::user_directory`]) every rotation fails with this as
/// its cause, and [`Tessera::session_layer`] refuses to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no user directory is configured: call TesseraBuilder::user_directory")]
pub struct MissingUserDirectory;

/// Why [`Tessera::hybrid_layer`] could not build.
#[cfg(feature = "axum")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HybridLayerError {
    /// The manager has no user directory.
    #[error(transparent)]
    MissingUserDirectory(#[from] MissingUserDirectory),
    /// A session layer setting cannot work.
    #[error(transparent)]
    Config(#[from] http::ConfigError),
}

/// The directory of a manager built without one: every lookup fails with
/// [`MissingUserDirectory`], so rotation says why instead of signing
/// everyone out as unknown users.
struct UnconfiguredDirectory;

#[async_trait::async_trait]
impl<R: Role> UserDirectory<R> for UnconfiguredDirectory {
    async fn find(
        &self,
        _: &tessera_domain::UserId,
    ) -> Result<Option<tessera_application::ports::DirectoryUser<R>>, DirectoryError> {
        Err(DirectoryError::Unavailable(Box::new(MissingUserDirectory)))
    }
}

impl<R: Role> Tessera<R> {
    /// Starts a builder with the keys and the issuer/audience every token
    /// carries and must match.
    pub fn builder(
        keys: KeyRing,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> TesseraBuilder<R> {
        TesseraBuilder {
            codec: JwtSessionCodec::new(keys, issuer, audience),
            lifetimes: SessionLifetimes::default(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7SessionIds),
            directory: None,
            revocations: None,
        }
    }

    /// Issue a session for an authenticated user.
    #[must_use]
    pub fn establish(&self) -> &EstablishSession<R> {
        &self.establish
    }

    /// Verify a token strictly.
    #[must_use]
    pub fn verify(&self) -> &VerifySession<R> {
        &self.verify
    }

    /// Read a session leniently (guests are `None`).
    #[must_use]
    pub fn read(&self) -> &ReadSession<R> {
        &self.read
    }

    /// Rotate a session with fresh claims from the user directory.
    #[must_use]
    pub fn rotate(&self) -> &RotateSession<R> {
        &self.rotate
    }

    /// Log out, force-logout, mark permissions changed.
    #[must_use]
    pub fn revoke(&self) -> &RevokeSession {
        &self.revoke
    }

    /// The codec, for replacing keys at runtime
    /// ([`JwtSessionCodec::replace_keys`]).
    #[must_use]
    pub fn codec(&self) -> &JwtSessionCodec {
        &self.codec
    }

    /// An identity provider with issuer `issuer` and claim mapping
    /// `mapping`, on this manager's clock and with its clock-skew leeway
    /// ([`SessionLifetimes::leeway`]): one setting for both kinds of token,
    /// so that a provider token the provider's verifier accepts is never
    /// refused when [`Tessera::exchange`] establishes its session. Add the
    /// audience and keys, then build it.
    pub fn identity_provider(
        &self,
        issuer: impl Into<String>,
        mapping: ClaimMapping<R>,
    ) -> ProviderBuilder<R> {
        IdentityProvider::builder(issuer, mapping)
            .leeway(self.verify.lifetimes().leeway())
            .clock(self.clock.0.clone())
    }

    /// Token exchange: a provider token verified by `verifier`, its user
    /// upserted into `users`, a session of this manager issued. Build the
    /// verifier's providers with [`Tessera::identity_provider`], so that
    /// they share this manager's leeway.
    ///
    /// The exchange consults this manager's revocation store: a
    /// force-logout of the user, their tenant or everyone refuses provider
    /// tokens issued at or before it, as it refuses sessions.
    #[must_use]
    pub fn exchange(
        &self,
        verifier: Arc<dyn ExternalTokenVerifier<R>>,
        users: Arc<dyn ExternalUserDirectory<R>>,
    ) -> ExchangeToken<R> {
        ExchangeToken::new(
            verifier,
            users,
            self.establish.clone(),
            self.revocations.0.clone(),
        )
    }

    /// The HTTP layer of [`Tessera::session_layer`] that also accepts a
    /// provider's bearer token, verified by `verifier` and resolved to the
    /// local user by `resolve` (give it a
    /// [`CachedExternalUserDirectory`](application::CachedExternalUserDirectory)).
    /// Provider tokens are held to this manager's revocation store as
    /// sessions are: a force-logout of the user, their tenant or everyone
    /// refuses those issued at or before it.
    ///
    /// # Errors
    ///
    /// [`HybridLayerError`]: no user directory (as for
    /// [`Tessera::session_layer`]) or a layer setting that cannot work.
    #[cfg(feature = "axum")]
    pub fn hybrid_layer(
        &self,
        policy: RoutePolicy<R>,
        verifier: Arc<dyn ExternalTokenVerifier<R>>,
        resolve: ResolveUser<R>,
    ) -> Result<axum::SessionLayer<R>, HybridLayerError> {
        Ok(self
            .session_layer(policy)?
            .provider_tokens(verifier, resolve)
            .build()?)
    }

    /// The HTTP layer enforcing `policy` and rotating with this manager:
    /// `sessions.session_layer(policy)?.build()?`, with any setting of
    /// [`http::SessionEdgeBuilder`] in between.
    ///
    /// # Errors
    ///
    /// [`MissingUserDirectory`] when the manager was built without
    /// [`TesseraBuilder::user_directory`]: the layer rotates sliding
    /// sessions, and rotation re-reads every user from the directory, so
    /// without one every session would end at its first rotation.
    #[cfg(feature = "axum")]
    pub fn session_layer(
        &self,
        policy: RoutePolicy<R>,
    ) -> Result<http::SessionEdgeBuilder<R, axum::SessionLayer<R>>, MissingUserDirectory> {
        self.edge(policy)
    }

    /// The actix-web middleware enforcing `policy` and rotating with this
    /// manager: `sessions.session_middleware(policy)?.build()?`, with any
    /// setting of [`http::SessionEdgeBuilder`] in between.
    ///
    /// # Errors
    ///
    /// [`MissingUserDirectory`], as for [`Tessera::session_layer`].
    #[cfg(feature = "actix")]
    pub fn session_middleware(
        &self,
        policy: RoutePolicy<R>,
    ) -> Result<http::SessionEdgeBuilder<R, actix::SessionMiddleware<R>>, MissingUserDirectory>
    {
        self.edge(policy)
    }

    /// The settings of any framework's session middleware enforcing
    /// `policy` and rotating with this manager: `T` is the middleware
    /// (the edge itself, `tessera::axum::SessionLayer`,
    /// `tessera::actix::SessionMiddleware`, …).
    ///
    /// # Errors
    ///
    /// [`MissingUserDirectory`], as for [`Tessera::session_layer`].
    pub fn edge<T>(
        &self,
        policy: RoutePolicy<R>,
    ) -> Result<http::SessionEdgeBuilder<R, T>, MissingUserDirectory> {
        if !self.has_directory {
            return Err(MissingUserDirectory);
        }
        Ok(http::SessionEdgeBuilder::new(
            self.verify.clone(),
            self.rotate.clone(),
            policy,
        ))
    }
}

/// Builds a [`Tessera`]. Defaults: [`SessionLifetimes::default`], the
/// system clock, UUID v7 session ids and an in-memory revocation store.
/// There is no default user directory: rotation and the HTTP layer need one
/// ([`MissingUserDirectory`]).
#[must_use = "a builder does nothing until built"]
pub struct TesseraBuilder<R: Role> {
    codec: JwtSessionCodec,
    lifetimes: SessionLifetimes,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    directory: Option<Arc<dyn UserDirectory<R>>>,
    revocations: Option<Arc<dyn RevocationStore>>,
}

impl<R: Role> std::fmt::Debug for TesseraBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TesseraBuilder")
            .field("codec", &self.codec)
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

impl<R: Role> TesseraBuilder<R> {
    /// Token lifetime, absolute session lifetime, rotation threshold, leeway.
    pub fn lifetimes(mut self, lifetimes: SessionLifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Caps the size of accepted tokens (default 8 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.codec = self.codec.with_max_token_bytes(max);
        self
    }

    /// How many verified tokens the codec keeps, so that a token presented
    /// again skips its signature check (default
    /// [`DEFAULT_VERIFIED_CACHE_ENTRIES`](tessera_infrastructure::DEFAULT_VERIFIED_CACHE_ENTRIES));
    /// 0 turns the cache off. Expiry, revocation and policy are checked on
    /// every request either way; see
    /// [`JwtSessionCodec::with_verified_cache`].
    pub fn verified_cache(mut self, capacity: usize) -> Self {
        self.codec = self.codec.with_verified_cache(capacity);
        self
    }

    /// The clock (tests pin it).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The session id generator.
    pub fn ids(mut self, ids: Arc<dyn IdGenerator>) -> Self {
        self.ids = ids;
        self
    }

    /// Where rotation reads users' current roles and capabilities.
    pub fn user_directory(mut self, directory: Arc<dyn UserDirectory<R>>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Where logouts and watermarks live (several instances need a shared one).
    pub fn revocation_store(mut self, revocations: Arc<dyn RevocationStore>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Wires every use case.
    pub fn build(self) -> Tessera<R> {
        let codec = Arc::new(self.codec.with_clock(self.clock.clone()));
        let revocations = self.revocations.unwrap_or_else(|| {
            Arc::new(InMemoryRevocationStore::new(
                self.clock.clone(),
                self.lifetimes,
            ))
        });
        let has_directory = self.directory.is_some();
        let directory = self
            .directory
            .unwrap_or_else(|| Arc::new(UnconfiguredDirectory));
        let verify = VerifySession::new(
            codec.clone(),
            self.clock.clone(),
            revocations.clone(),
            self.lifetimes,
        );
        Tessera {
            establish: EstablishSession::new(
                codec.clone(),
                self.clock.clone(),
                self.ids,
                self.lifetimes,
            ),
            read: ReadSession::new(verify.clone()),
            // Rotation asks the store itself, not only the verifier's cache:
            // a shared store's cache forgets what no unexpired token needs.
            rotate: RotateSession::new(verify.clone(), directory, codec.clone())
                .with_revocations(revocations.clone()),
            revoke: RevokeSession::new(revocations.clone(), self.clock.clone(), self.lifetimes),
            revocations: RevocationsHandle(revocations),
            clock: ClockHandle(self.clock),
            verify,
            codec,
            has_directory,
        }
    }
}
