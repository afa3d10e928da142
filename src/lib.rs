//! Sessions carried in signed JWTs for Rust web backends: typed claims,
//! verification in microseconds with no I/O, rotation that refreshes roles
//! from your user directory, logout and force-logout that reach every
//! instance, a route-access policy, cross-origin protection, and the same
//! answers on axum and actix-web.
//!
//! # Quickstart
//!
//! 1. **Wire a [`Tessera`]** once: a key ring, the issuer and audience your
//!    tokens carry, and your user directory (where sign-in reads each
//!    user's role, and rotation reads it again: here the in-memory one; the PostgreSQL one, or
//!    your own adapter of [`application::ports::UserDirectory`], in
//!    production).
//! 2. **Say who may call what** with [`domain::RouteRule`]s (or a
//!    [`domain::RoutePolicy`] built with another default), and put the
//!    layer ([`axum::SessionLayer`], or `actix::SessionMiddleware` with
//!    feature `actix`) in front of your routes: it enforces the policy,
//!    rotates sessions, refuses cross-origin forms and answers refusals
//!    (RFC 6750, a redirect to sign-in on browser routes).
//! 3. **Sign in and out**, one call each, with the [`axum::Auth`]
//!    extractor: once your handler has authenticated a user,
//!    [`sign_in`](axum::Auth::sign_in) establishes their session with the
//!    role your directory holds and answers with it (a cookie and a
//!    redirect on a browser route, the token as JSON on an API route);
//!    [`sign_out`](axum::Auth::sign_out) revokes it on every instance and
//!    clears the cookie. Handlers take the session as an extractor
//!    ([`axum::Session`], [`axum::RequireRole`]).
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::extract::Form;
//! use axum::response::{IntoResponse, Response};
//! use axum::routing::{get, post};
//! use axum::{Router, http::StatusCode};
//! use tessera::axum::prelude::*;
//!
//! // 1. Wire it once.
//! let users = Arc::new(InMemoryUserDirectory::new());
//! users.upsert(DirectoryUser::new(ALICE.parse()?, UserRole::Admin));
//! let sessions: Tessera = Tessera::builder(KeyRing::generate("key-1")?, "https://api.example", "web")
//!     .user_directory(users)
//!     .build();
//!
//! // 2. Who may call what, first match wins, every other path refused;
//! //    the layer enforces it.
//! let rules = [
//!     RouteRule::guest_only("/login").browser(),
//!     RouteRule::authenticated("/logout").browser(),
//!     RouteRule::at_least_role("/admin", UserRole::Admin).browser(),
//! ];
//! let layer = sessions.session_layer(rules).build()?;
//!
//! // 3. Sign in, a guarded page, sign out.
//! const ALICE: &str = "0190b5a4-7c2e-7d3a-9f00-000000000001";
//!
//! #[derive(serde::Deserialize)]
//! struct SignIn {
//!     username: String,
//!     password: String,
//!     return_to: Option<String>,
//! }
//!
//! async fn sign_in(auth: Auth, Form(form): Form<SignIn>) -> Response {
//!     // Your authentication: check the password, a passkey, an OAuth callback.
//!     let known = form.username == "alice" && form.password == "correct horse";
//!     let (true, Ok(alice)) = (known, ALICE.parse()) else {
//!         return StatusCode::UNAUTHORIZED.into_response();
//!     };
//!     auth.sign_in(&alice, form.return_to.as_deref()).await
//! }
//!
//! async fn admin(session: Session) -> String {
//!     format!("welcome, {}", session.user_id())
//! }
//!
//! async fn sign_out(auth: Auth) -> Response {
//!     auth.sign_out(None).await
//! }
//!
//! let app: Router = Router::new()
//!     .route("/login", post(sign_in))
//!     .route("/admin", get(admin))
//!     .route("/logout", post(sign_out))
//!     .layer(layer);
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
//! | `server` | `tessera serve`: forward-auth verdicts for nginx, Traefik, Caddy and Envoy, session and admin endpoints for backends in any language (`tessera::server`) |
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
use tessera_application::ports::{Clock, IdGenerator, RevocationStore, UserDirectory};
use tessera_application::{
    EstablishSession, ExchangeToken, ReadSession, RevokeSession, RotateSession, SignInUser,
    SignOutSession, VerifySession,
};
use tessera_domain::{Role, RoutePolicy, SessionLifetimes};
use tessera_infrastructure::identity::{IdentityProvider, ProviderBuilder, TokenProfile};

pub use tessera_application as application;
pub use tessera_domain as domain;
pub use tessera_http as http;
pub use tessera_infrastructure as infrastructure;
#[cfg(feature = "server")]
pub mod server;

/// The `time` crate, whose types the API takes and gives (lifetimes,
/// authentication times).
pub use time;

pub use tessera_domain::UserRole;
/// The shared user-lookup cache in Redis (feature `redis`): put it in
/// front of your provider-linked users for [`application::ResolveUser`],
/// [`Tessera::exchange`] and the webhooks, so that every instance shares
/// each lookup, five minutes by default, and a webhook's update or deletion
/// through any instance reaches them all (an update replaces the shared
/// entry, a deletion drops it; without Redis, writes are refused and
/// lookups ask the directory):
/// `RedisUserCache::connect(users, "redis://127.0.0.1:6379").await?`.
#[cfg(feature = "redis")]
pub use tessera_infrastructure::redis::RedisUserCache;
pub use tessera_infrastructure::{
    InMemoryRevocationStore, InMemoryUserDirectory, JwsAlgorithm, JwtSessionCodec, KeyRing,
    SigningKey, SystemClock, UuidV7SessionIds, VerificationKey,
};

/// Every name a web backend needs, in one import: `use tessera::prelude::*;`
/// (with the framework's extractors: `tessera::axum::prelude`,
/// `tessera::actix::prelude`).
pub mod prelude {
    pub use crate::{InMemoryUserDirectory, KeyRing, SigningKey, Tessera, UserRole};
    pub use tessera_application::ports::{DirectoryUser, UserDirectory, WatermarkScope};
    pub use tessera_application::{EstablishRequest, RevokeRequest};
    pub use tessera_domain::{
        Authentication, Capability, Requirement, Role, RoutePolicy, RouteRule, SessionEntity,
        SessionLifetimes, TenantId, UserId,
    };
    pub use tessera_http::SessionEdge;
    pub use time::{Duration, OffsetDateTime};
}

/// axum and any tower-based server (feature `axum`, default): the session
/// layer, extractors and handlers of `tessera-axum`.
///
/// `use tessera::axum::prelude::*;` brings [`crate::prelude`] and the
/// extractors: [`Auth`](crate::axum::Auth) (sign-in and sign-out),
/// [`Session`](crate::axum::Session),
/// [`RequireRole`](crate::axum::RequireRole) with its
/// [`roles`](crate::axum::roles).
#[cfg(feature = "axum")]
pub mod axum {
    #[doc(inline)]
    pub use tessera_axum::*;

    /// [`crate::prelude`] and the axum extractors.
    pub mod prelude {
        pub use crate::prelude::*;
        pub use tessera_axum::roles;
        pub use tessera_axum::{Auth, RequireCapability, RequireRole, Session, SessionLayer};
    }
}

/// actix-web 4 (feature `actix`, Rust 1.89+): the session middleware,
/// extractors and handlers of `tessera-actix`.
///
/// `use tessera::actix::prelude::*;` brings [`crate::prelude`] and the
/// extractors: `Auth` (sign-in and sign-out), `Session`, `MaybeSession`,
/// `RequireRole` with the roles, and `into_response` for tessera's
/// answers.
#[cfg(feature = "actix")]
pub mod actix {
    #[doc(inline)]
    pub use tessera_actix::*;

    /// [`crate::prelude`] and the actix-web extractors.
    pub mod prelude {
        pub use crate::prelude::*;
        pub use tessera_actix::roles;
        pub use tessera_actix::{
            Auth, MaybeSession, RequireCapability, RequireRole, Session, SessionMiddleware,
            into_response,
        };
    }
}

/// A session manager: every use case, wired to one codec, clock and store.
#[derive(Debug, Clone)]
pub struct Tessera<R: Role = UserRole> {
    codec: Arc<JwtSessionCodec>,
    establish: EstablishSession<R>,
    sign_in: SignInUser<R>,
    sign_out: SignOutSession<R>,
    verify: VerifySession<R>,
    read: ReadSession<R>,
    rotate: RotateSession<R>,
    revoke: RevokeSession,
    revocations: RevocationsHandle,
    clock: ClockHandle,
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

/// Why [`Tessera::hybrid_layer`] could not build: a layer setting that
/// cannot work.
#[cfg(feature = "axum")]
pub type HybridLayerError = http::ConfigError;

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
            directory: NoUserDirectory,
            revocations: None,
            role: std::marker::PhantomData,
        }
    }

    /// Issue a session with exactly the claims given, without asking the
    /// user directory (the HTTP edge's sign-in uses [`sign_in`](Self::sign_in)).
    #[must_use]
    pub fn establish(&self) -> &EstablishSession<R> {
        &self.establish
    }

    /// Sign in an authenticated user as the user directory holds them:
    /// role, capabilities and tenant from the directory rotation reads; an
    /// unknown or disabled user gets no session.
    #[must_use]
    pub fn sign_in(&self) -> &SignInUser<R> {
        &self.sign_in
    }

    /// Sign out the session a token carries (nothing to do for a token
    /// that is no session; an error while the revocation state is
    /// untrusted).
    #[must_use]
    pub fn sign_out(&self) -> &SignOutSession<R> {
        &self.sign_out
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

    /// An identity provider with issuer `issuer` and its first token
    /// profile ([`TokenProfile`]; add others with
    /// [`ProviderBuilder::profile`]), on this manager's clock and with its
    /// clock-skew leeway ([`SessionLifetimes::leeway`]): one setting for
    /// both kinds of token, so that a provider token the provider's
    /// verifier accepts is never refused when [`Tessera::exchange`]
    /// establishes its session. Add the keys (or discover them from the
    /// issuer, feature `jwks-fetch`), then build it.
    pub fn identity_provider(
        &self,
        issuer: impl Into<String>,
        profile: TokenProfile<R>,
    ) -> ProviderBuilder<R> {
        IdentityProvider::builder(issuer, profile)
            .leeway(self.verify.lifetimes().leeway())
            .clock(self.clock.0.clone())
    }

    /// Token exchange: a provider token verified by `verifier`, its user
    /// upserted into `users`, a session of this manager issued. Build the
    /// verifier's providers with [`Tessera::identity_provider`], so that
    /// they share this manager's leeway. Access and ID tokens are both
    /// exchanged
    /// ([`ExchangeToken::with_token_uses`](application::ExchangeToken::with_token_uses)
    /// narrows it); a token whose profile refuses its subject (a machine
    /// token, by default) never is.
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
    /// [`CachedExternalUserDirectory`](application::CachedExternalUserDirectory),
    /// or, for several instances, the `RedisUserCache` of feature `redis`,
    /// which they share).
    /// Provider tokens are held to this manager's revocation store as
    /// sessions are: a force-logout of the user, their tenant or everyone
    /// refuses those issued at or before it.
    ///
    /// # Errors
    ///
    /// [`HybridLayerError`]: a layer setting that cannot work.
    #[cfg(feature = "axum")]
    pub fn hybrid_layer<P>(
        &self,
        policy: P,
        verifier: Arc<dyn ExternalTokenVerifier<R>>,
        resolve: ResolveUser<R>,
    ) -> Result<axum::SessionLayer<R>, HybridLayerError>
    where
        P: TryInto<RoutePolicy<R>>,
        http::ConfigError: From<P::Error>,
    {
        self.session_layer(policy)
            .provider_tokens(verifier, resolve)
            .build()
    }

    /// The HTTP layer enforcing `policy`, rotating, signing in and out
    /// with this manager: `sessions.session_layer(policy).build()?`, with
    /// any setting of [`http::SessionEdgeBuilder`] in between. Its
    /// [`edge`](axum::SessionLayer::edge) signs users in and out
    /// ([`http::SessionEdge::sign_in`], [`http::SessionEdge::sign_out`]).
    #[cfg(feature = "axum")]
    pub fn session_layer<P>(&self, policy: P) -> http::SessionEdgeBuilder<R, axum::SessionLayer<R>>
    where
        P: TryInto<RoutePolicy<R>>,
        http::ConfigError: From<P::Error>,
    {
        self.edge(policy)
    }

    /// The actix-web middleware enforcing `policy`, rotating, signing in
    /// and out with this manager:
    /// `sessions.session_middleware(policy).build()?`, with any setting of
    /// [`http::SessionEdgeBuilder`] in between.
    #[cfg(feature = "actix")]
    pub fn session_middleware<P>(
        &self,
        policy: P,
    ) -> http::SessionEdgeBuilder<R, actix::SessionMiddleware<R>>
    where
        P: TryInto<RoutePolicy<R>>,
        http::ConfigError: From<P::Error>,
    {
        self.edge(policy)
    }

    /// The settings of any framework's session middleware enforcing
    /// `policy` with this manager: `T` is the middleware (the edge itself,
    /// `tessera::axum::SessionLayer`, `tessera::actix::SessionMiddleware`,
    /// …). Credentials larger than the codec's cap
    /// ([`TesseraBuilder::max_token_bytes`]) are refused before they are
    /// read.
    pub fn edge<T, P>(&self, policy: P) -> http::SessionEdgeBuilder<R, T>
    where
        P: TryInto<RoutePolicy<R>>,
        http::ConfigError: From<P::Error>,
    {
        http::SessionEdgeBuilder::new(
            http::SessionUseCases {
                sign_in: self.sign_in.clone(),
                verify: self.verify.clone(),
                rotate: self.rotate.clone(),
                revoke: self.revoke.clone(),
            },
            policy,
        )
    }
}

/// Builds a [`Tessera`]. Defaults: [`SessionLifetimes::default`], the
/// system clock, UUID v7 session ids and an in-memory revocation store.
///
/// The user directory has no default: rotation re-reads each user's role,
/// capabilities, tenant and enabled flag from it, so
/// [`build`](Self::build) exists only once
/// [`user_directory`](Self::user_directory) was given one.
///
/// ```compile_fail
/// use tessera::{KeyRing, Tessera};
///
/// // No user directory: `build` does not exist yet.
/// let sessions: Tessera = Tessera::builder(KeyRing::generate("k1")?, "https://api.example", "web").build();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until built"]
pub struct TesseraBuilder<R: Role, D = NoUserDirectory> {
    codec: JwtSessionCodec,
    lifetimes: SessionLifetimes,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    directory: D,
    revocations: Option<Arc<dyn RevocationStore>>,
    role: std::marker::PhantomData<fn() -> R>,
}

/// A [`TesseraBuilder`] that has no user directory yet: give it one with
/// [`TesseraBuilder::user_directory`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUserDirectory;

impl<R: Role, D> std::fmt::Debug for TesseraBuilder<R, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TesseraBuilder")
            .field("codec", &self.codec)
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

impl<R: Role, D> TesseraBuilder<R, D> {
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

    /// Where rotation reads users' current roles, capabilities, tenant and
    /// enabled flag: your users ([`InMemoryUserDirectory`] in tests and
    /// demos, the PostgreSQL one, or your own adapter of
    /// [`UserDirectory`]).
    pub fn user_directory(
        self,
        directory: Arc<dyn UserDirectory<R>>,
    ) -> TesseraBuilder<R, Arc<dyn UserDirectory<R>>> {
        TesseraBuilder {
            codec: self.codec,
            lifetimes: self.lifetimes,
            clock: self.clock,
            ids: self.ids,
            directory,
            revocations: self.revocations,
            role: std::marker::PhantomData,
        }
    }

    /// Where logouts and watermarks live (several instances need a shared one).
    pub fn revocation_store(mut self, revocations: Arc<dyn RevocationStore>) -> Self {
        self.revocations = Some(revocations);
        self
    }
}

impl<R: Role> TesseraBuilder<R, Arc<dyn UserDirectory<R>>> {
    /// Wires every use case.
    pub fn build(self) -> Tessera<R> {
        let codec = Arc::new(self.codec.with_clock(self.clock.clone()));
        let revocations = self.revocations.unwrap_or_else(|| {
            Arc::new(InMemoryRevocationStore::new(
                self.clock.clone(),
                self.lifetimes,
            ))
        });
        let directory = self.directory;
        let verify = VerifySession::new(
            codec.clone(),
            self.clock.clone(),
            revocations.clone(),
            self.lifetimes,
        );
        let establish =
            EstablishSession::new(codec.clone(), self.clock.clone(), self.ids, self.lifetimes);
        let revoke = RevokeSession::new(revocations.clone(), self.clock.clone(), self.lifetimes);
        Tessera {
            sign_in: SignInUser::new(establish.clone(), directory.clone()),
            sign_out: SignOutSession::new(verify.clone(), revoke.clone()),
            establish,
            read: ReadSession::new(verify.clone()),
            // Rotation asks the store itself, not only the verifier's cache:
            // a shared store's cache forgets what no unexpired token needs.
            rotate: RotateSession::new(verify.clone(), directory, codec.clone())
                .with_revocations(revocations.clone()),
            revoke,
            revocations: RevocationsHandle(revocations),
            clock: ClockHandle(self.clock),
            verify,
            codec,
        }
    }
}
