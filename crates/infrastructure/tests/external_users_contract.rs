//! The provider-linked user directory contract, run against every adapter:
//! the in-memory directory, and (feature `postgres`, with `DATABASE_URL`)
//! the PostgreSQL one. It is the part of `ExternalUserDirectory` that
//! webhooks delivered at least once and out of order depend on: ordering
//! by the provider's instants, and tombstones of deleted accounts.

// Test code: a panic is a failed test (clippy.toml allows these in `#[test]`
// functions, but not in an integration test's helper functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use tessera_application::contracts::{
    ExternalDirectory, external_user_directory, external_user_directory_race,
};
use tessera_domain::UserRole;
use tessera_infrastructure::identity::InMemoryExternalUserDirectory;

#[tokio::test]
async fn in_memory_directory_honours_the_ordering_contract() {
    let directory = InMemoryExternalUserDirectory::<UserRole>::new()
        .with_clock(Arc::new(ManualClock::starting_at(T + 1_000)));
    external_user_directory(&directory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_directory_ends_deleted_when_a_deletion_races_older_updates() {
    let directory: Arc<dyn ExternalDirectory> =
        Arc::new(InMemoryExternalUserDirectory::<UserRole>::new());
    external_user_directory_race(directory).await;
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::time::Duration as StdDuration;

    use sqlx::postgres::PgPoolOptions;
    use tessera_infrastructure::identity::PostgresExternalUserDirectory;

    use super::*;

    #[tokio::test]
    async fn postgres_directory_honours_the_ordering_contract() {
        let Some(db) = pg::database("ext_order_contract").await else {
            return;
        };
        let directory = PostgresExternalUserDirectory::<UserRole>::new(db.pool().await);
        external_user_directory(&directory).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_directory_ends_deleted_when_a_deletion_races_older_updates() {
        let Some(db) = pg::database("ext_order_race").await else {
            return;
        };
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(StdDuration::from_secs(10))
            .connect_with(db.options())
            .await
            .unwrap();
        let directory: Arc<dyn ExternalDirectory> =
            Arc::new(PostgresExternalUserDirectory::<UserRole>::new(pool));
        external_user_directory_race(directory).await;
        assert_eq!(db.count("tessera_users").await, 0);
        assert_eq!(
            db.count("tessera_external_accounts").await,
            1,
            "the tombstone"
        );
    }
}
