//! The user directory contract
//! (`tessera_application::contracts::user_directory`), run against every
//! adapter: the in-memory directory, and (feature `postgres`, with
//! `DATABASE_URL`) the PostgreSQL directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use tessera_application::contracts;
use tessera_application::ports::DirectoryUser;
use tessera_domain::UserRole;
use tessera_infrastructure::InMemoryUserDirectory;

#[tokio::test]
async fn in_memory_directory_honours_the_user_directory_contract() {
    let directory = InMemoryUserDirectory::<UserRole>::new();
    contracts::user_directory(&directory, async |user: DirectoryUser<UserRole>| {
        directory.upsert(user);
    })
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_directory_honours_the_user_directory_contract() {
    use common::pg;
    use tessera_infrastructure::postgres::PostgresUserDirectory;

    let Some(db) = pg::database("directory_contract").await else {
        return;
    };
    let directory = PostgresUserDirectory::<UserRole>::new(db.pool().await);
    contracts::user_directory(&directory, async |user: DirectoryUser<UserRole>| {
        directory.upsert(&user).await.unwrap();
    })
    .await;
}
