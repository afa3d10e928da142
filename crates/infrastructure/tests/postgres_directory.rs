//! `PostgresUserDirectory` against a real database; and the schema that
//! `migrate` creates and the store starts on.
//!
//! Each test works in a schema of its own (see `common/pg.rs`). Without
//! `DATABASE_URL` they say they are skipped and pass.
#![cfg(feature = "postgres")]
// Test code: a panic is a failed test (clippy.toml allows these in `#[test]`
// functions, but not in an integration test's helper functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use tessera_application::ports::{DirectoryError, DirectoryUser, UserDirectory};
use tessera_domain::{Capability, RoleError, TenantId, UserId, UserRole};
use tessera_infrastructure::postgres::{
    InvalidUserRecord, MIGRATIONS, MigrateError, PostgresRevocationConfig, PostgresRevocationStore,
    PostgresStoreError, PostgresUserDirectory, migrate,
};

fn user(n: u128) -> UserId {
    UserId::from_uuid(id(n)).unwrap()
}

fn directory_user(
    n: u128,
    role: UserRole,
    caps: &[&str],
    tenant: Option<&str>,
) -> DirectoryUser<UserRole> {
    DirectoryUser {
        user_id: user(n),
        role,
        capabilities: caps
            .iter()
            .map(|c| Capability::parse(c).unwrap())
            .collect::<BTreeSet<_>>(),
        tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
        enabled: true,
    }
}

/// A directory over one row written straight into `tessera_users`, past
/// the checks of `upsert`: `row` is the columns and `VALUES` of the insert,
/// `$1` the id of user 1.
async fn directory_over_row(db: &pg::TestDb, row: &str) -> PostgresUserDirectory<UserRole> {
    sqlx::query(&format!("INSERT INTO {}.tessera_users {row}", db.schema()))
        .bind(id(1))
        .execute(db.admin())
        .await
        .unwrap();
    PostgresUserDirectory::new(db.pool().await)
}

#[tokio::test]
async fn upsert_replaces_a_user_and_remove_deletes_them() {
    let Some(db) = pg::database("directory_upsert").await else {
        return;
    };
    let directory = PostgresUserDirectory::<UserRole>::new(db.pool().await);
    directory
        .upsert(&directory_user(
            1,
            UserRole::User,
            &["posts:write"],
            Some("acme"),
        ))
        .await
        .unwrap();
    let mut promoted = directory_user(1, UserRole::Admin, &[], None);
    promoted.enabled = false;
    directory.upsert(&promoted).await.unwrap();
    assert_eq!(directory.find(&user(1)).await.unwrap(), Some(promoted));
    assert_eq!(db.count("tessera_users").await, 1);

    assert!(directory.remove(&user(1)).await.unwrap());
    assert!(
        !directory.remove(&user(1)).await.unwrap(),
        "removing twice finds nobody"
    );
    assert_eq!(directory.find(&user(1)).await.unwrap(), None);
}

#[tokio::test]
async fn an_unknown_role_in_the_table_is_an_invalid_record_never_a_default() {
    let Some(db) = pg::database("directory_role").await else {
        return;
    };
    let directory = directory_over_row(&db, "(id, role) VALUES ($1, 'superuser')").await;
    let err = directory.find(&user(1)).await.unwrap_err();
    let DirectoryError::InvalidRecord(source) = err else {
        panic!("expected an invalid record, got {err:?}");
    };
    assert!(matches!(
        source.downcast_ref::<InvalidUserRecord>(),
        Some(InvalidUserRecord::Role(RoleError::Unknown(name))) if name == "superuser"
    ));
}

#[tokio::test]
async fn a_null_capability_in_the_table_is_an_invalid_record() {
    let Some(db) = pg::database("directory_null").await else {
        return;
    };
    let directory = directory_over_row(
        &db,
        "(id, role, capabilities) VALUES ($1, 'user', ARRAY[NULL]::text[])",
    )
    .await;
    assert!(matches!(
        directory.find(&user(1)).await,
        Err(DirectoryError::InvalidRecord(_))
    ));
}

#[tokio::test]
async fn an_unreachable_directory_is_unavailable() {
    let Some(db) = pg::database("directory_down").await else {
        return;
    };
    let pool = db.pool().await;
    let directory = PostgresUserDirectory::<UserRole>::new(pool.clone());
    pool.close().await;
    assert!(matches!(
        directory.find(&user(1)).await,
        Err(DirectoryError::Unavailable(_))
    ));
}

#[tokio::test]
async fn migrating_again_or_concurrently_is_harmless() {
    let Some(db) = pg::database("migrate").await else {
        return;
    };
    // `database` already migrated this schema once.
    let (p1, p2, p3) = (db.pool().await, db.pool().await, db.pool().await);
    let (r1, r2, r3) = tokio::join!(migrate(&p1), migrate(&p2), migrate(&p3));
    r1.unwrap();
    r2.unwrap();
    r3.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT version FROM {}.tessera_schema_migrations ORDER BY version",
        db.schema()
    ))
    .fetch_all(db.admin())
    .await
    .unwrap();
    assert_eq!(versions, MIGRATIONS.iter().map(|m| m.0).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_schema_migrated_by_a_newer_build_is_refused() {
    let Some(db) = pg::database("migrate_newer").await else {
        return;
    };
    sqlx::query(&format!(
        "INSERT INTO {}.tessera_schema_migrations (version, description) VALUES (9999, 'future')",
        db.schema()
    ))
    .execute(db.admin())
    .await
    .unwrap();
    assert!(matches!(
        migrate(&db.pool().await).await,
        Err(MigrateError::UnknownVersion(9999))
    ));
}

#[tokio::test]
async fn the_store_does_not_start_without_its_tables() {
    let Some(db) = pg::database("no_tables").await else {
        return;
    };
    let elsewhere = db
        .pool_with(
            db.options()
                .options([("search_path", "tessera_no_such_schema")]),
        )
        .await;
    let err = PostgresRevocationStore::start(
        elsewhere,
        Arc::new(ManualClock::starting_at(T)),
        db.config("a"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, PostgresStoreError::Database(_)), "{err:?}");
}

#[tokio::test]
async fn the_store_does_not_start_with_an_invalid_configuration() {
    let Some(db) = pg::database("bad_config").await else {
        return;
    };
    let err = PostgresRevocationStore::start(
        db.pool().await,
        Arc::new(ManualClock::starting_at(T)),
        PostgresRevocationConfig::new(lifetimes()).with_channel("Not Valid"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, PostgresStoreError::InvalidConfig(_)),
        "{err:?}"
    );
}
