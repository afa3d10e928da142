//! Contract suites for the ports' adapters (feature `testing`): what every
//! implementation MUST do, run against the in-memory and shared adapters
//! alike, and against yours.
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
#![allow(clippy::panic)]

use std::collections::BTreeSet;

use tessera_domain::{Capability, TenantId, UserId, UserRole};

use crate::ports::{DirectoryUser, UserDirectory};

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
