//! `tessera serve`: tessera as a service, for gateways and for backends in
//! any language (feature `server`).
//!
//! - **Forward-auth verdicts** for nginx `auth_request`, Traefik
//!   `ForwardAuth`, Caddy `forward_auth` and Envoy `ext_authz` (HTTP mode):
//!   the original method and URI read from the gateway's headers, the same
//!   admission as the framework adapters ([`SessionEdge`]: policy,
//!   revocation, rotation, cross-origin protection), and a 2xx with the
//!   identity headers ([`tessera_http::gateway`], signed) and any renewed
//!   cookie or token, or the refusal;
//! - **session endpoints**: sign-in for a backend that has authenticated a
//!   user, sign-out for the client, force-logout, permissions changed and
//!   session revocation for administrators (a configured secret; without
//!   one the administrative endpoints are not mounted at all);
//! - **operations**: `/.well-known/jwks.json` (public keys only),
//!   `/healthz`, `/readyz` (not ready while the revocation state cannot be
//!   trusted), `/metrics` (Prometheus text).
//!
//! [`ServerConfig`] is the TOML file (`examples/tessera.toml`), [`Server`]
//! the service built from it: [`Server::router`] for tests in process,
//! [`Server::bind`] and [`Bound::serve`] for the `tessera serve` binary.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post, put};
use tessera_application::external::ExternalUserDirectory;
use tessera_application::ports::{
    Clock, DirectoryError, DirectoryUser, RevocationStore, UserDirectory,
};
use tessera_domain::UserRole;
use tessera_http::SessionEdge;
use tessera_http::gateway::GatewayKey;
use tessera_infrastructure::identity::InMemoryExternalUserDirectory;
use tessera_infrastructure::{InMemoryRevocationStore, SystemClock};

use crate::Tessera;

mod admin;
pub mod config;
pub mod keys;
pub mod metrics;
mod ops;
mod provider;
mod reply;
pub mod schedule;
mod sessions;
mod verdict;

pub use self::config::{ConfigError, ServerConfig};
pub use self::metrics::Metrics;
pub use self::verdict::Gateway;

/// When an endpoint is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mounted {
    /// Always.
    Always,
    /// With an `[admin]` secret (and only then reachable, with it).
    Admin,
    /// With a `[provider]`.
    Provider,
    /// With `[webhooks]`.
    Webhooks,
}

/// What `tessera serve` serves, and when: the banner it prints on start.
pub const ENDPOINTS: [(&str, &str, Mounted); 15] = [
    ("ANY", "/verify/nginx", Mounted::Always),
    ("ANY", "/verify/forwarded", Mounted::Always),
    ("ANY", "/verify/envoy/<original path>", Mounted::Always),
    ("POST", "/session/sign-out", Mounted::Always),
    ("POST", "/session/exchange", Mounted::Provider),
    ("POST", "/webhooks/users", Mounted::Webhooks),
    ("GET", "/.well-known/jwks.json", Mounted::Always),
    ("GET", "/healthz", Mounted::Always),
    ("GET", "/readyz", Mounted::Always),
    ("GET", "/metrics", Mounted::Always),
    ("POST", "/admin/sessions", Mounted::Admin),
    ("PUT", "/admin/users/<user id>", Mounted::Admin),
    ("POST", "/admin/force-logout", Mounted::Admin),
    ("POST", "/admin/permissions-changed", Mounted::Admin),
    ("POST", "/admin/revoke-session", Mounted::Admin),
];

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A shared store cannot be reached or prepared.
    #[error("store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The listening socket cannot be bound, or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// The users: those sign-in and `PUT /admin/users` record, and those the
/// provider's tokens and webhooks write, in one directory that rotation
/// reads back.
#[derive(Clone)]
enum Users {
    Memory(Arc<InMemoryExternalUserDirectory<UserRole>>),
    /// Both on the same `tessera_users` table.
    #[cfg(feature = "postgres")]
    Postgres {
        local: Arc<tessera_infrastructure::postgres::PostgresUserDirectory<UserRole>>,
        linked: Arc<tessera_infrastructure::identity::PostgresExternalUserDirectory<UserRole>>,
    },
}

impl Users {
    /// Records a user's current claims (a provider-linked user stays
    /// linked).
    async fn upsert(&self, user: DirectoryUser<UserRole>) -> Result<(), DirectoryError> {
        match self {
            Self::Memory(directory) => {
                directory.upsert(user);
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Self::Postgres { local, .. } => local.upsert(&user).await,
        }
    }

    /// Where rotation reads every user.
    fn directory(&self) -> Arc<dyn UserDirectory<UserRole>> {
        match self {
            Self::Memory(directory) => directory.clone(),
            #[cfg(feature = "postgres")]
            Self::Postgres { linked, .. } => linked.clone(),
        }
    }

    /// Where the provider's users are linked.
    fn linked(&self) -> Arc<dyn ExternalUserDirectory<UserRole>> {
        match self {
            Self::Memory(directory) => directory.clone(),
            #[cfg(feature = "postgres")]
            Self::Postgres { linked, .. } => linked.clone(),
        }
    }
}

/// The stores of a server: users, revocations, and the time since the
/// revocation state last synced (shared stores only).
struct Stores {
    users: Users,
    revocations: Arc<dyn RevocationStore>,
    sync_lag: Option<Box<dyn Fn() -> Option<f64> + Send + Sync>>,
}

/// Everything the handlers share.
pub(crate) struct State {
    sessions: Tessera<UserRole>,
    edge: SessionEdge<UserRole>,
    users: Users,
    revocations: Arc<dyn RevocationStore>,
    sync_lag: Option<Box<dyn Fn() -> Option<f64> + Send + Sync>>,
    metrics: Metrics,
    keys: keys::KeySource,
    clock: Arc<dyn Clock>,
    admin: Option<admin::AdminSecret>,
    provider: Option<provider::Provider>,
}

type Shared = Arc<State>;

/// The service, built from a [`ServerConfig`].
#[derive(Clone)]
pub struct Server {
    state: Shared,
    listen: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.listen)
            .field("edge", &self.state.edge)
            .field("admin", &self.state.admin.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Wires the service: keys, stores (in memory, or PostgreSQL with
    /// `[postgres]`), the session manager, the edge and the policy.
    ///
    /// # Errors
    ///
    /// [`ServeError::Config`] naming the field that cannot work;
    /// [`ServeError::Store`] when PostgreSQL cannot be reached or migrated.
    pub async fn build(config: &ServerConfig) -> Result<Self, ServeError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Server::build`] on `clock` (tests pin it): the sessions' times,
    /// the revocations' and the signing-key schedule's.
    ///
    /// # Errors
    ///
    /// As [`Server::build`].
    pub async fn build_with_clock(
        config: &ServerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServeError> {
        let listen = config.listen_addr()?;
        let lifetimes = config.tokens.lifetimes()?;
        let policy = config.route_policy()?;
        let keys = keys::KeySource::new(&config.keys, lifetimes)?;
        let ring = keys.ring_at(clock.now())?;
        let admin = config
            .admin
            .secret
            .as_ref()
            .map(|secret| admin::AdminSecret::new(secret.expose_secret()))
            .transpose()?;
        let gateway_key = gateway_key(config)?;
        let stores = match &config.postgres {
            None => in_memory(lifetimes, clock.clone()),
            Some(postgres) => on_postgres(postgres, lifetimes, clock.clone()).await?,
        };
        let sessions = Tessera::builder(ring, &config.tokens.issuer, &config.tokens.audience)
            .lifetimes(lifetimes)
            .clock(clock.clone())
            .user_directory(stores.users.directory())
            .revocation_store(stores.revocations.clone())
            .build();
        let edge = config
            .policy
            .trusted_origins
            .iter()
            .fold(
                sessions
                    .edge::<SessionEdge<UserRole>, _>(policy)
                    .cookie_name(&config.cookie.name)
                    .login_path(&config.pages.login)
                    .return_to_param(&config.pages.return_to_param)
                    .signed_in_path(&config.pages.signed_in)
                    .gateway(gateway_key),
                |builder, origin| builder.trust_origin(origin),
            )
            .build()
            .map_err(|error| config::invalid("cookie, pages or policy", error))?;
        let provider =
            provider::Provider::build(config, &sessions, stores.users.linked(), clock.clone())?;
        Ok(Self {
            state: Arc::new(State {
                sessions,
                edge,
                users: stores.users,
                revocations: stores.revocations,
                sync_lag: stores.sync_lag,
                metrics: Metrics::default(),
                keys,
                clock,
                admin,
                provider,
            }),
            listen,
        })
    }

    /// The session manager the endpoints use (to verify or establish in
    /// process, as benchmarks and embedding programs do).
    #[must_use]
    pub fn sessions(&self) -> &Tessera<UserRole> {
        &self.state.sessions
    }

    /// Applies the signing-key schedule of a scheduled key directory at the
    /// server's time: generates the next key when due, publishes it,
    /// switches the signing key at its activation and drops a retired key
    /// (the codec's ring is replaced only when it changed). The running
    /// server does this every [`schedule::CHECK_EVERY`]; without a schedule
    /// it does nothing.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the directory cannot be read or
    /// written; the ring in use stays.
    pub fn apply_key_schedule(&self) -> Result<(), ConfigError> {
        if !self.state.keys.is_scheduled() {
            return Ok(());
        }
        let ring = self
            .state
            .keys
            .ring_at(self.state.clock.now())
            .inspect_err(|_| self.state.metrics.key_schedule_failure())?;
        let codec = self.state.sessions.codec();
        let current = codec.key_ring();
        let signing = |ring: &tessera_infrastructure::KeyRing| {
            ring.signing_key().map(|key| key.kid().to_owned())
        };
        let kids = |ring: &tessera_infrastructure::KeyRing| {
            ring.verification_keys()
                .iter()
                .map(|key| key.kid().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        if signing(&ring) != signing(&current) {
            tracing::info!(kid = ?signing(&ring), "signing with the next key");
            self.state.metrics.signing_key_rotation();
        }
        if signing(&ring) != signing(&current) || kids(&ring) != kids(&current) {
            codec.replace_keys(ring);
        }
        Ok(())
    }

    /// The HTTP service: every endpoint of [`ENDPOINTS`], the
    /// administrative ones only when an admin secret is configured.
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/verify/nginx", any(verdict::nginx))
            .route("/verify/forwarded", any(verdict::forwarded))
            .route("/verify/envoy", any(verdict::envoy))
            .route("/verify/envoy/{*path}", any(verdict::envoy))
            .route("/session/sign-out", post(sessions::sign_out_handler))
            .route("/.well-known/jwks.json", get(ops::jwks))
            .route("/healthz", get(ops::healthz))
            .route("/readyz", get(ops::readyz))
            .route("/metrics", get(ops::metrics));
        if self.state.admin.is_some() {
            let admin = Router::new()
                .route("/admin/sessions", post(sessions::sign_in_handler))
                .route("/admin/users/{user_id}", put(admin::put_user))
                .route("/admin/force-logout", post(admin::force_logout))
                .route(
                    "/admin/permissions-changed",
                    post(admin::permissions_changed),
                )
                .route("/admin/revoke-session", post(admin::revoke_session))
                .route_layer(axum::middleware::from_fn_with_state(
                    self.state.clone(),
                    admin::require_secret,
                ));
            router = router.merge(admin);
        }
        let mut router = router.with_state(self.state.clone());
        // A provider's token in `Authorization`, or a signed delivery: no
        // cookie is read, so no cross-site form can use either.
        if let Some(provider) = &self.state.provider {
            router = router.route(
                "/session/exchange",
                post(crate::axum::exchange_token::<UserRole>).with_state(provider.exchange.clone()),
            );
            if let Some(webhook) = &provider.webhook {
                router = router.route(
                    "/webhooks/users",
                    post(crate::axum::user_webhook::<UserRole>).with_state(webhook.clone()),
                );
            }
        }
        router
    }

    /// Whether the endpoints `mounted` says are served.
    fn mounts(&self, mounted: Mounted) -> bool {
        let provider = self.state.provider.as_ref();
        match mounted {
            Mounted::Always => true,
            Mounted::Admin => self.state.admin.is_some(),
            Mounted::Provider => provider.is_some(),
            Mounted::Webhooks => provider.is_some_and(|provider| provider.webhook.is_some()),
        }
    }

    /// Binds the configured address (`server.listen`, port 0 picks a free
    /// one).
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] when the address cannot be bound.
    pub async fn bind(self) -> Result<Bound, ServeError> {
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| ServeError::Io {
                context: format!("cannot listen on {}", self.listen),
                source,
            })?;
        Ok(Bound {
            server: self,
            listener,
        })
    }
}

/// A server with its listening socket.
#[derive(Debug)]
pub struct Bound {
    server: Server,
    listener: tokio::net::TcpListener,
}

impl Bound {
    /// The address it listens on (the actual port when 0 was asked).
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] when the socket cannot say.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(|source| ServeError::Io {
            context: "cannot read the listening address".to_owned(),
            source,
        })
    }

    /// What `tessera serve` prints on start: the address and the endpoints.
    ///
    /// # Errors
    ///
    /// As [`Bound::local_addr`].
    pub fn banner(&self) -> Result<String, ServeError> {
        let addr = self.local_addr()?;
        let mut banner = format!("tessera serve listening on http://{addr}\n");
        for (method, path, mounted) in ENDPOINTS {
            if self.server.mounts(mounted) {
                banner.push_str(&format!("  {method:<5} http://{addr}{path}\n"));
            }
        }
        if !self.server.mounts(Mounted::Admin) {
            banner.push_str("  (admin endpoints not mounted: no [admin] secret)\n");
        }
        Ok(banner)
    }

    /// Serves until `shutdown` completes, then finishes the requests in
    /// flight.
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] when serving fails.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let router = self.server.router();
        let schedule = self
            .server
            .state
            .keys
            .is_scheduled()
            .then(|| tokio::spawn(apply_key_schedule_every(self.server.clone())));
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ServeError::Io {
                context: "serving failed".to_owned(),
                source,
            });
        if let Some(task) = schedule {
            task.abort();
        }
        served
    }
}

/// Applies the key schedule every [`schedule::CHECK_EVERY`], until aborted.
async fn apply_key_schedule_every(server: Server) {
    let period = std::time::Duration::from_secs(
        u64::try_from(schedule::CHECK_EVERY.whole_seconds()).unwrap_or(60),
    );
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        // File I/O and key generation (RSA: tens of milliseconds) off the
        // request workers.
        let applying = server.clone();
        match tokio::task::spawn_blocking(move || applying.apply_key_schedule()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "key schedule not applied; the keys in use stay");
            }
            Err(error) => tracing::error!(%error, "key schedule task failed"),
        }
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The key signing identity headers: the configured one (for its
/// audience), or a random one of this process.
fn gateway_key(config: &ServerConfig) -> Result<GatewayKey, ConfigError> {
    let master = match &config.gateway.secret {
        Some(secret) => GatewayKey::new(secret.expose_secret().as_bytes())
            .map_err(|error| config::invalid("gateway.secret", error))?,
        None => {
            let mut random = [0_u8; 32];
            aws_lc_rs::rand::fill(&mut random)
                .map_err(|_| config::invalid("gateway.secret", "no randomness"))?;
            GatewayKey::new(&random).map_err(|error| config::invalid("gateway.secret", error))?
        }
    };
    Ok(match &config.gateway.audience {
        Some(audience) => master.for_audience(audience),
        None => master,
    })
}

/// The embedded default: users and revocations in this process.
fn in_memory(lifetimes: tessera_domain::SessionLifetimes, clock: Arc<dyn Clock>) -> Stores {
    Stores {
        users: Users::Memory(Arc::new(
            InMemoryExternalUserDirectory::new().with_clock(clock.clone()),
        )),
        revocations: Arc::new(InMemoryRevocationStore::new(clock, lifetimes)),
        sync_lag: None,
    }
}

/// Users and revocations in PostgreSQL, shared by every instance.
#[cfg(feature = "postgres")]
async fn on_postgres(
    config: &config::PostgresConfig,
    lifetimes: tessera_domain::SessionLifetimes,
    clock: Arc<dyn Clock>,
) -> Result<Stores, ServeError> {
    use tessera_infrastructure::postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use tessera_infrastructure::postgres::{
        PostgresRevocationConfig, PostgresRevocationStore, PostgresUserDirectory, migrate,
    };

    let staleness = std::time::Duration::try_from_secs_f64(config.staleness_bound_seconds)
        .ok()
        .filter(|bound| !bound.is_zero())
        .ok_or_else(|| config::invalid("postgres.staleness_bound_seconds", "must be positive"))?;
    let mut options: PgConnectOptions = config
        .url
        .expose_secret()
        .parse()
        .map_err(|error| config::invalid("postgres.url", error))?;
    let mut revocation = PostgresRevocationConfig::new(lifetimes).with_staleness_bound(staleness);
    if config.transaction_pooler {
        // Each transaction may reach another server connection.
        options = options.statement_cache_capacity(0);
        revocation = revocation.with_transaction_pooler();
    }
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|error| ServeError::Store(Box::new(error)))?;
    migrate(&pool)
        .await
        .map_err(|error| ServeError::Store(Box::new(error)))?;
    let revocations = Arc::new(
        PostgresRevocationStore::start(pool.clone(), clock, revocation)
            .await
            .map_err(|error| ServeError::Store(Box::new(error)))?,
    );
    let lag = revocations.clone();
    Ok(Stores {
        users: Users::Postgres {
            local: Arc::new(PostgresUserDirectory::new(pool.clone())),
            linked: Arc::new(
                tessera_infrastructure::identity::PostgresExternalUserDirectory::new(pool),
            ),
        },
        revocations,
        sync_lag: Some(Box::new(move || {
            lag.last_synced_at().map(|at| at.elapsed().as_secs_f64())
        })),
    })
}

/// Without feature `postgres`, `[postgres]` cannot work.
#[cfg(not(feature = "postgres"))]
async fn on_postgres(
    _: &config::PostgresConfig,
    _: tessera_domain::SessionLifetimes,
    _: Arc<dyn Clock>,
) -> Result<Stores, ServeError> {
    Err(config::invalid(
        "postgres",
        "this binary was built without feature `postgres` (cargo run --features server,postgres)",
    )
    .into())
}
