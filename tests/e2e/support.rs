//! What the end-to-end tests share: a clock moved by hand, demo users, and
//! a fully wired session manager per algorithm.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera::application::EstablishRequest;
use tessera::application::ports::{Clock, DirectoryUser};
use tessera::domain::{Capability, SessionLifetimes, TenantId, UserId};
use tessera::{InMemoryUserDirectory, JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};
use time::{Duration, OffsetDateTime};

pub(crate) const ISSUER: &str = "https://api.tessera.test";
pub(crate) const AUDIENCE: &str = "web";
pub(crate) const START: i64 = 1_800_000_000;

pub(crate) const ALGORITHMS: [JwsAlgorithm; 4] = [
    JwsAlgorithm::Hs256,
    JwsAlgorithm::Rs256,
    JwsAlgorithm::Es256,
    JwsAlgorithm::EdDsa,
];

pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub(crate) struct ManualClock(AtomicI64);

impl ManualClock {
    pub(crate) fn starting_at(seconds: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(seconds)))
    }

    pub(crate) fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    pub(crate) fn seconds(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        at(self.seconds())
    }
}

pub(crate) fn alice() -> UserId {
    UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap()
}

pub(crate) fn caps(names: &[&str]) -> BTreeSet<Capability> {
    names
        .iter()
        .map(|n| Capability::parse(n).unwrap())
        .collect()
}

/// 15-minute tokens, rotation after 5 minutes, 1-hour sessions, 30 s leeway.
pub(crate) fn lifetimes() -> SessionLifetimes {
    SessionLifetimes::new(
        Duration::minutes(15),
        Duration::hours(1),
        Duration::minutes(5),
        Duration::seconds(30),
    )
    .unwrap()
}

/// A fresh signing key.
pub(crate) fn signing_key(alg: JwsAlgorithm, kid: &str) -> SigningKey {
    SigningKey::generate(alg, kid).unwrap()
}

/// A session manager wired like production, with a manual clock and an
/// in-memory directory holding Alice as a user of tenant `acme`.
pub(crate) struct App {
    pub(crate) sessions: Tessera<UserRole>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) directory: Arc<InMemoryUserDirectory<UserRole>>,
}

pub(crate) fn spawn_app(keys: KeyRing) -> App {
    let clock = ManualClock::starting_at(START);
    let directory = Arc::new(InMemoryUserDirectory::new());
    directory.upsert(DirectoryUser {
        user_id: alice(),
        role: UserRole::User,
        capabilities: caps(&["posts:write"]),
        tenant: Some(TenantId::parse("acme").unwrap()),
        enabled: true,
    });
    let sessions = Tessera::builder(keys, ISSUER, AUDIENCE)
        .lifetimes(lifetimes())
        .clock(clock.clone())
        .user_directory(directory.clone())
        .build();
    App {
        sessions,
        clock,
        directory,
    }
}

/// Alice, a plain user of `acme` who may write posts, signing in.
pub(crate) fn alice_request() -> EstablishRequest<UserRole> {
    EstablishRequest::new(alice(), UserRole::User)
        .capabilities(caps(&["posts:write"]))
        .tenant(TenantId::parse("acme").unwrap())
}

impl App {
    /// Signs Alice in as a plain user of `acme`.
    pub(crate) fn sign_in_alice(&self) -> tessera::application::EstablishedSession<UserRole> {
        self.sessions.establish().execute(alice_request()).unwrap()
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over exactly these header and payload bytes, signed with `key`.
pub(crate) fn forge(header: &str, payload: &str, key: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signature))
}

/// The JSON of a valid session payload for Alice issued at `iat`, as a value
/// tests can bend.
pub(crate) fn payload(iat: i64) -> serde_json::Value {
    serde_json::json!({
        "sub": alice().to_string(),
        "jti": "0190b5a4-7c2e-7d3a-9f00-0000000000aa",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": iat,
        "exp": iat + 900,
        "auth_time": iat,
        "role": "user",
        "caps": ["posts:write"],
        "tid": "acme",
    })
}

/// The header tessera itself writes for `key`.
pub(crate) fn header(key: &SigningKey) -> serde_json::Value {
    serde_json::json!({
        "alg": key.algorithm().name(),
        "kid": key.kid(),
        "typ": tessera::infrastructure::SESSION_TOKEN_TYPE,
    })
}

/// The HS256 key (`hs1`) the attack tests forge with.
pub(crate) fn hs_key() -> SigningKey {
    SigningKey::hmac_sha256("hs1", &[7u8; 32]).unwrap()
}

/// A token over exactly this header and payload, signed with [`hs_key`].
pub(crate) fn forged(header: &serde_json::Value, payload: &serde_json::Value) -> String {
    forge(&header.to_string(), &payload.to_string(), &hs_key())
}

/// The header tessera writes for [`hs_key`].
pub(crate) fn valid_header() -> serde_json::Value {
    header(&hs_key())
}

/// `value` with `key` set to `new`.
pub(crate) fn with(
    mut value: serde_json::Value,
    key: &str,
    new: serde_json::Value,
) -> serde_json::Value {
    value[key] = new;
    value
}

/// Serves `router` on a loopback port of its own; returns the address.
pub(crate) async fn serve_loopback(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[cfg(any(feature = "jwks-fetch", feature = "redis"))]
pub(crate) use counting::Counting;

#[cfg(any(feature = "jwks-fetch", feature = "redis"))]
mod counting {
    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;
    use tessera::UserRole;
    use tessera::application::external::{
        ExternalProfile, ExternalSubject, ExternalUser, ExternalUserDirectory, UpsertOutcome,
    };
    use tessera::application::ports::DirectoryError;
    use tessera::infrastructure::identity::InMemoryExternalUserDirectory;

    /// Counts the lookups that reach the directory behind a cache.
    pub(crate) struct Counting {
        pub(crate) inner: InMemoryExternalUserDirectory<UserRole>,
        pub(crate) finds: AtomicU64,
    }

    #[async_trait]
    impl ExternalUserDirectory<UserRole> for Counting {
        async fn find_by_external_id(
            &self,
            issuer: &str,
            subject: &ExternalSubject,
        ) -> Result<Option<ExternalUser<UserRole>>, DirectoryError> {
            self.finds.fetch_add(1, Ordering::SeqCst);
            self.inner.find_by_external_id(issuer, subject).await
        }

        async fn upsert_external(
            &self,
            profile: ExternalProfile<UserRole>,
        ) -> Result<UpsertOutcome<UserRole>, DirectoryError> {
            self.inner.upsert_external(profile).await
        }

        async fn delete_external(
            &self,
            issuer: &str,
            subject: &ExternalSubject,
            as_of: Option<time::OffsetDateTime>,
        ) -> Result<Option<ExternalUser<UserRole>>, DirectoryError> {
            self.inner.delete_external(issuer, subject, as_of).await
        }
    }
}

/// The throwaway database `scripts/test.sh` provides (`DATABASE_URL`), or
/// `None` (said on stderr) to skip a PostgreSQL test; with
/// `TESSERA_REQUIRE_DB` set, a missing database fails the test instead.
#[cfg(feature = "postgres")]
pub(crate) fn database_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok();
    if url.is_none() {
        assert!(
            std::env::var("TESSERA_REQUIRE_DB").is_err(),
            "TESSERA_REQUIRE_DB is set but DATABASE_URL is not"
        );
        eprintln!("skipped: no DATABASE_URL; ./scripts/test.sh provides a database");
    }
    url
}
