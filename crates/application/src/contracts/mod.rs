//! Contract suites for the ports' adapters (feature `testing`): what every
//! implementation MUST do, run against the in-memory and shared adapters
//! alike, and against yours:
//!
//! - [`user_directory`] for a [`UserDirectory`];
//! - [`revocation_store`] and [`revocation_store_over_time`] for a
//!   [`RevocationStore`];
//! - [`external_user_directory`] and [`external_user_directory_race`] for a
//!   provider-linked [`ExternalUserDirectory`](crate::external::ExternalUserDirectory).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//!
//! use tessera_application::contracts;
//! use tessera_application::ports::{DirectoryError, DirectoryUser, UserDirectory};
//! use tessera_domain::{UserId, UserRole};
//!
//! /// A directory of your own.
//! #[derive(Default)]
//! struct Users(Mutex<HashMap<UserId, DirectoryUser<UserRole>>>);
//!
//! #[async_trait::async_trait]
//! impl UserDirectory<UserRole> for Users {
//!     async fn find(&self, id: &UserId) -> Result<Option<DirectoryUser<UserRole>>, DirectoryError> {
//!         Ok(self.0.lock().map_err(|_| DirectoryError::Unavailable("poisoned".into()))?.get(id).cloned())
//!     }
//! }
//!
//! let users = Users::default();
//! contracts::user_directory(&users, async |user: DirectoryUser<UserRole>| {
//!     users.0.lock().unwrap().insert(user.user_id, user);
//! })
//! .await;
//! # }
//! ```

// A contract suite fails the way `assert!` does: by panicking, with the
// rule that was broken.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};

use tessera_domain::{Capability, SessionId, SessionLifetimes, TenantId, UserId, UserRole};
use time::{Duration, OffsetDateTime};

mod external_users;

pub use self::external_users::{
    ExternalDirectory, external_user_directory, external_user_directory_race,
};
use crate::ports::{
    Clock, DirectoryUser, RevocationQuery, RevocationReason, RevocationStatus, RevocationStore,
    UserDirectory, WatermarkKind, WatermarkScope,
};

/// A UUID per `n`, never nil.
fn fixture_id(n: u128) -> String {
    format!("0190b5a4-7c2e-7d3a-9f00-{n:012x}")
}

/// The time every contract starts at: the store's clock reads it.
pub const T: i64 = 1_700_000_000;

/// `seconds` since the epoch.
pub fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock reading `seconds`.
    pub fn starting_at(seconds: i64) -> Self {
        Self(AtomicI64::new(seconds))
    }

    /// Sets the time.
    pub fn set(&self, seconds: i64) {
        self.0.store(seconds, Ordering::SeqCst);
    }

    /// Moves the time on.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        at(self.0.load(Ordering::SeqCst))
    }
}

/// A session of a user, maybe in a tenant.
#[derive(Debug)]
pub struct Subject {
    /// The session.
    pub session: SessionId,
    /// Its user.
    pub user: UserId,
    /// Its tenant.
    pub tenant: Option<TenantId>,
}

impl Subject {
    /// The `n`th subject, in `tenant`.
    pub fn new(n: u128, tenant: Option<&str>) -> Self {
        Self {
            session: SessionId::parse(&fixture_id(1_000_000 + n)).unwrap(),
            user: UserId::parse(&fixture_id(n)).unwrap(),
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
        }
    }

    /// The revocation query of its token issued at `iat`.
    pub fn query(&self, iat: i64) -> RevocationQuery<'_> {
        RevocationQuery {
            session_id: &self.session,
            user_id: &self.user,
            tenant: self.tenant.as_ref(),
            issued_at: at(iat),
        }
    }

    /// What `store` says of its token issued at `iat`.
    pub fn status(&self, store: &dyn RevocationStore, iat: i64) -> RevocationStatus {
        store.check(self.query(iat)).unwrap()
    }
}

/// 15-minute tokens, 1-hour sessions, rotation after 5 minutes, 30 s leeway.
pub fn lifetimes() -> SessionLifetimes {
    SessionLifetimes::new(
        Duration::seconds(900),
        Duration::seconds(3600),
        Duration::seconds(300),
        Duration::seconds(30),
    )
    .unwrap()
}

/// Every rule of the [`RevocationStore`] contract, on a store with no state
/// whose clock reads [`T`] and whose lifetimes are [`lifetimes`].
///
/// # Panics
///
/// When the store breaks the contract, naming the rule.
pub async fn revocation_store(store: &dyn RevocationStore) {
    use RevocationStatus::{Active, ClaimsStale, Revoked};
    let alice = Subject::new(1, Some("acme"));
    let bob = Subject::new(2, Some("globex"));
    let carol = Subject::new(3, None);

    assert_eq!(
        alice.status(store, T),
        Active,
        "a fresh store revokes nothing"
    );

    // One session.
    store
        .revoke_session(alice.session, at(T + 3600))
        .await
        .unwrap();
    assert_eq!(
        alice.status(store, T),
        Revoked(RevocationReason::SessionLoggedOut)
    );
    assert_eq!(
        bob.status(store, T),
        Active,
        "logout touches only its session"
    );
    // A second logout of the same session with an earlier end changes nothing.
    store
        .revoke_session(alice.session, at(T + 10))
        .await
        .unwrap();
    assert_eq!(
        alice.status(store, T),
        Revoked(RevocationReason::SessionLoggedOut)
    );

    // A user: tokens issued at or before the watermark's second.
    let user_scope = WatermarkScope::User(bob.user);
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ForceLogout, at(T + 10))
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 9),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(
        bob.status(store, T + 10),
        Revoked(RevocationReason::UserLoggedOut),
        "the watermark's own second is covered (fail closed)"
    );
    assert_eq!(bob.status(store, T + 11), Active, "newer tokens stand");
    assert_eq!(carol.status(store, T + 9), Active, "other users stand");

    // Sub-second parts of a watermark do not let a token of that second through.
    store
        .set_watermark(
            WatermarkScope::User(carol.user),
            WatermarkKind::ForceLogout,
            at(T + 50) + Duration::milliseconds(999),
        )
        .await
        .unwrap();
    assert_eq!(
        carol.status(store, T + 50),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(carol.status(store, T + 51), Active);
    store
        .clear_watermark(WatermarkScope::User(carol.user), WatermarkKind::ForceLogout)
        .await
        .unwrap();

    // Watermarks never move backwards.
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ForceLogout, at(T + 5))
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 10),
        Revoked(RevocationReason::UserLoggedOut)
    );

    // Clearing lifts it, and a later set works again.
    store
        .clear_watermark(user_scope.clone(), WatermarkKind::ForceLogout)
        .await
        .unwrap();
    assert_eq!(bob.status(store, T + 9), Active);
    store
        .clear_watermark(user_scope.clone(), WatermarkKind::ForceLogout)
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 9),
        Active,
        "clearing nothing is harmless"
    );

    // Claims-stale: valid but must rotate; force-logout wins over it.
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ClaimsStale, at(T + 20))
        .await
        .unwrap();
    assert_eq!(bob.status(store, T + 20), ClaimsStale);
    assert_eq!(bob.status(store, T + 21), Active);
    store
        .set_watermark(user_scope.clone(), WatermarkKind::ForceLogout, at(T + 15))
        .await
        .unwrap();
    assert_eq!(
        bob.status(store, T + 15),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(bob.status(store, T + 16), ClaimsStale);
    // Clearing a force-logout leaves the claims-stale watermark alone.
    store
        .clear_watermark(user_scope, WatermarkKind::ForceLogout)
        .await
        .unwrap();
    assert_eq!(bob.status(store, T + 15), ClaimsStale);

    // A tenant.
    store
        .set_watermark(
            WatermarkScope::Tenant(TenantId::parse("acme").unwrap()),
            WatermarkKind::ForceLogout,
            at(T + 30),
        )
        .await
        .unwrap();
    let alice2 = Subject::new(4, Some("acme"));
    assert_eq!(
        alice2.status(store, T + 30),
        Revoked(RevocationReason::TenantLoggedOut)
    );
    assert_eq!(
        carol.status(store, T + 30),
        Active,
        "no tenant, not covered"
    );

    // Everyone.
    store
        .set_watermark(
            WatermarkScope::Everyone,
            WatermarkKind::ForceLogout,
            at(T + 40),
        )
        .await
        .unwrap();
    assert_eq!(
        carol.status(store, T + 40),
        Revoked(RevocationReason::EveryoneLoggedOut)
    );
    assert_eq!(carol.status(store, T + 41), Active);
    assert_eq!(
        alice2.status(store, T + 30),
        Revoked(RevocationReason::EveryoneLoggedOut),
        "everyone is reported before the tenant"
    );
}

/// What `store` says of `s`'s token issued at `iat` when asked
/// authoritatively (as rotation asks).
async fn authoritative(store: &dyn RevocationStore, s: &Subject, iat: i64) -> RevocationStatus {
    store.check_authoritative(s.query(iat)).await.unwrap()
}

/// The contract for events older than one token lifetime (15 minutes and
/// 30 s of leeway; the shared stores' margins are a few seconds more), on a
/// store with no state whose `clock` reads [`T`]: the hot path may forget
/// them, since every token they cover has expired, but the authoritative
/// answer (what rotation asks) still holds them, and recent events are on
/// the hot path.
///
/// # Panics
///
/// When the store breaks the contract, naming the rule.
pub async fn revocation_store_over_time(store: &dyn RevocationStore, clock: &ManualClock) {
    use RevocationStatus::{Active, ClaimsStale, Revoked};
    let (logged_out, forced, stale, late) = (
        Subject::new(11, None),
        Subject::new(12, Some("acme")),
        Subject::new(13, None),
        Subject::new(14, None),
    );
    store
        .revoke_session(logged_out.session, at(T + 3600))
        .await
        .unwrap();
    store
        .set_watermark(
            WatermarkScope::User(forced.user),
            WatermarkKind::ForceLogout,
            at(T),
        )
        .await
        .unwrap();
    store
        .set_watermark(
            WatermarkScope::User(stale.user),
            WatermarkKind::ClaimsStale,
            at(T),
        )
        .await
        .unwrap();
    assert_eq!(
        authoritative(store, &logged_out, T).await,
        Revoked(RevocationReason::SessionLoggedOut)
    );

    // Past one token lifetime and every margin, within the absolute lifetime;
    // a write, which may purge.
    clock.set(T + 1000);
    store
        .set_watermark(
            WatermarkScope::Tenant(TenantId::parse("globex").unwrap()),
            WatermarkKind::ForceLogout,
            at(T + 1000),
        )
        .await
        .unwrap();
    assert_eq!(
        authoritative(store, &logged_out, T + 1000).await,
        Revoked(RevocationReason::SessionLoggedOut),
        "a token of a logged-out session, however it was issued, cannot be rotated"
    );
    assert_eq!(
        authoritative(store, &forced, T).await,
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(authoritative(store, &stale, T).await, ClaimsStale);
    assert_eq!(authoritative(store, &forced, T + 1).await, Active);
    assert_eq!(forced.status(store, T + 1), Active, "newer tokens stand");

    // A watermark whose time is older than one token lifetime when written.
    store
        .set_watermark(
            WatermarkScope::User(late.user),
            WatermarkKind::ForceLogout,
            at(T - 1000),
        )
        .await
        .unwrap();
    assert_eq!(
        authoritative(store, &late, T - 1000).await,
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(late.status(store, T + 1000), Active);
    // A recent one, for a token that can still be unexpired, is on the hot path.
    store
        .set_watermark(
            WatermarkScope::User(late.user),
            WatermarkKind::ForceLogout,
            at(T + 990),
        )
        .await
        .unwrap();
    assert_eq!(
        late.status(store, T + 100),
        Revoked(RevocationReason::UserLoggedOut)
    );
    assert_eq!(
        authoritative(store, &late, T + 990).await,
        Revoked(RevocationReason::UserLoggedOut)
    );
}

fn id(n: u128) -> UserId {
    // A version-7-shaped id per `n`; never nil.
    let text = format!("0190b5a4-7c2e-7d3a-9f00-{:012x}", 0xc0_ffee_0000 + n);
    UserId::parse(&text).unwrap_or_else(|error| panic!("contract fixture id {text}: {error}"))
}

fn capabilities(names: &[&str]) -> BTreeSet<Capability> {
    names
        .iter()
        .map(|name| {
            Capability::parse(name).unwrap_or_else(|error| panic!("fixture capability: {error}"))
        })
        .collect()
}

fn user(
    n: u128,
    role: UserRole,
    caps: &[&str],
    tenant: Option<&str>,
    enabled: bool,
) -> DirectoryUser<UserRole> {
    DirectoryUser {
        user_id: id(n),
        role,
        capabilities: capabilities(caps),
        tenant: tenant.map(|name| {
            TenantId::parse(name).unwrap_or_else(|error| panic!("fixture tenant: {error}"))
        }),
        enabled,
    }
}

async fn found(
    directory: &dyn UserDirectory<UserRole>,
    n: u128,
) -> Option<DirectoryUser<UserRole>> {
    directory
        .find(&id(n))
        .await
        .unwrap_or_else(|error| panic!("the directory failed to answer for user {n}: {error}"))
}

/// The [`UserDirectory`] contract: `directory` is empty to begin with, and
/// `store` writes (creates or replaces) a user in it the way the
/// application would.
///
/// - an unknown user is `Ok(None)`, never an error;
/// - a stored user is found with exactly its role, capabilities, tenant
///   and enabled flag — a disabled user is found disabled, not hidden;
/// - a replaced user is found as replaced, and other users are untouched.
///
/// # Panics
///
/// When the directory breaks the contract, naming the rule.
pub async fn user_directory(
    directory: &dyn UserDirectory<UserRole>,
    store: impl AsyncFn(DirectoryUser<UserRole>),
) {
    assert_eq!(
        found(directory, 1).await,
        None,
        "an unknown user is Ok(None)"
    );

    let alice = user(
        1,
        UserRole::Admin,
        &["reports:read", "users:manage"],
        Some("acme"),
        true,
    );
    let bob = user(2, UserRole::User, &[], None, false);
    store(alice.clone()).await;
    store(bob.clone()).await;
    assert_eq!(
        found(directory, 1).await,
        Some(alice.clone()),
        "a stored user is found as stored"
    );
    assert_eq!(
        found(directory, 2).await,
        Some(bob),
        "a disabled user is found disabled, not hidden"
    );
    assert_eq!(
        found(directory, 3).await,
        None,
        "an unknown user stays Ok(None)"
    );

    let demoted = user(
        1,
        UserRole::Moderator,
        &["reports:read"],
        Some("globex"),
        true,
    );
    store(demoted.clone()).await;
    assert_eq!(
        found(directory, 1).await,
        Some(demoted),
        "a replaced user is found as replaced"
    );
    let bob = found(directory, 2).await;
    assert!(
        bob.is_some_and(|bob| !bob.enabled),
        "other users are untouched"
    );

    let disabled = DirectoryUser {
        enabled: false,
        ..alice
    };
    store(disabled.clone()).await;
    assert_eq!(
        found(directory, 1).await,
        Some(disabled),
        "disabling a user is seen at once"
    );
}
