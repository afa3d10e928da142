//! `PostgresExternalUserDirectory` against a real database: the port's
//! rules, the ResolveUser race (many concurrent first requests for one new
//! user create exactly one record), tombstone retention, and migration 4
//! over a schema at migration 3. The ordering contract it shares with the
//! in-memory directory is in `external_users_contract.rs`.
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
use std::time::Duration;

use common::*;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tessera_application::external::{
    AsOf, ExternalIdentity, ExternalProfile, ExternalSubject, ExternalUserDirectory, SubjectKind,
    TokenUse, UpsertOutcome, Upserted,
};
use tessera_application::ports::{DirectoryError, UserDirectory};
use tessera_application::{ResolveUser, ResolveUserRequest, ResolvedFrom};
use tessera_domain::{Capability, TenantId, UserRole};
use tessera_infrastructure::identity::PostgresExternalUserDirectory;
use tessera_infrastructure::postgres::{
    InvalidUserRecord, MIGRATIONS, PostgresUserDirectory, migrate,
};

const ISSUER: &str = "https://idp.example";
const RACERS: usize = 64;

fn subject(s: &str) -> ExternalSubject {
    ExternalSubject::parse(s).unwrap()
}

fn profile(sub: &str, role: UserRole, enabled: Option<bool>) -> ExternalProfile<UserRole> {
    ExternalProfile {
        issuer: ISSUER.into(),
        subject: subject(sub),
        role,
        email: Some(format!("{sub}@example.com")),
        name: Some("Ada".into()),
        enabled,
        as_of: AsOf::Unknown,
    }
}

fn written(outcome: UpsertOutcome<UserRole>) -> Upserted<UserRole> {
    match outcome {
        UpsertOutcome::Written(upserted) => upserted,
        other => panic!("expected a write, got {other:?}"),
    }
}

/// A pool wide enough for the racers to really run at once.
async fn wide_pool(db: &pg::TestDb) -> PgPool {
    PgPoolOptions::new()
        .max_connections(32)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(db.options())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_account_is_created_updated_found_and_deleted() {
    let Some(db) = pg::database("ext_users_crud").await else {
        return;
    };
    let directory = PostgresExternalUserDirectory::<UserRole>::new(db.pool().await);
    let alice = subject("user_alice");
    assert_eq!(
        directory.find_by_external_id(ISSUER, &alice).await.unwrap(),
        None,
        "unknown is None, not an error"
    );

    let first = written(
        directory
            .upsert_external(profile("user_alice", UserRole::User, None))
            .await
            .unwrap(),
    );
    assert!(first.previous.is_none());
    assert!(first.current.user.enabled, "a new record is enabled");
    assert_eq!(
        first.current.email.as_deref(),
        Some("user_alice@example.com")
    );
    let id = first.current.user.user_id;

    // Capabilities and tenant set locally survive provider updates.
    let admin = PostgresUserDirectory::<UserRole>::new(db.pool().await);
    let mut local = UserDirectory::find(&directory, &id).await.unwrap().unwrap();
    local.capabilities = BTreeSet::from([Capability::parse("posts:edit").unwrap()]);
    local.tenant = Some(TenantId::parse("acme").unwrap());
    admin.upsert(&local).await.unwrap();

    let mut update = profile("user_alice", UserRole::Admin, Some(false));
    update.email = Some("new@example.com".into());
    let second = written(directory.upsert_external(update).await.unwrap());
    let previous = second.previous.unwrap();
    assert_eq!(previous.user.role, UserRole::User);
    assert_eq!(previous.email.as_deref(), Some("user_alice@example.com"));
    assert!(previous.user.enabled);
    assert_eq!(second.current.user.user_id, id, "the id is kept");
    assert_eq!(second.current.user.role, UserRole::Admin);
    assert!(!second.current.user.enabled);
    assert_eq!(second.current.user.capabilities, local.capabilities);
    assert_eq!(second.current.user.tenant, local.tenant);
    assert_eq!(second.current.email.as_deref(), Some("new@example.com"));

    // `enabled: None` keeps the stored flag.
    let third = written(
        directory
            .upsert_external(profile("user_alice", UserRole::Admin, None))
            .await
            .unwrap(),
    );
    assert!(!third.current.user.enabled);
    assert_eq!(
        directory.find_by_external_id(ISSUER, &alice).await.unwrap(),
        Some(third.current.clone())
    );
    // Sessions rotate with the stored role.
    let rotated = UserDirectory::find(&directory, &id).await.unwrap().unwrap();
    assert_eq!(rotated.role, UserRole::Admin);

    // Same subject, other issuer: another account.
    let other = written(
        directory
            .upsert_external(ExternalProfile {
                issuer: "https://other.example".into(),
                ..profile("user_alice", UserRole::User, None)
            })
            .await
            .unwrap(),
    );
    assert_ne!(other.current.user.user_id, id);

    let deleted = directory
        .delete_external(ISSUER, &alice, None)
        .await
        .unwrap();
    assert_eq!(deleted, Some(third.current));
    assert_eq!(
        directory.find_by_external_id(ISSUER, &alice).await.unwrap(),
        None
    );
    assert_eq!(UserDirectory::find(&directory, &id).await.unwrap(), None);
    assert_eq!(
        directory
            .delete_external(ISSUER, &alice, None)
            .await
            .unwrap(),
        None
    );
    // The other issuer's account, and alice's tombstone.
    assert_eq!(db.count("tessera_external_accounts").await, 2);
    assert_eq!(db.count("tessera_users").await, 1);
}

#[tokio::test]
async fn a_stored_role_the_role_type_does_not_know_is_an_invalid_record() {
    let Some(db) = pg::database("ext_users_badrole").await else {
        return;
    };
    let directory = PostgresExternalUserDirectory::<UserRole>::new(db.pool().await);
    let created = written(
        directory
            .upsert_external(profile("user_bob", UserRole::User, None))
            .await
            .unwrap(),
    );
    sqlx::query(&format!(
        "UPDATE {}.tessera_users SET role = 'superuser' WHERE id = $1",
        db.schema()
    ))
    .bind(*created.current.user.user_id.as_uuid())
    .execute(db.admin())
    .await
    .unwrap();
    let err = directory
        .find_by_external_id(ISSUER, &subject("user_bob"))
        .await
        .unwrap_err();
    let DirectoryError::InvalidRecord(source) = err else {
        panic!("expected an invalid record, got {err:?}");
    };
    assert!(matches!(
        source.downcast_ref::<InvalidUserRecord>(),
        Some(InvalidUserRecord::Role(_))
    ));
}

#[tokio::test]
async fn concurrent_first_upserts_of_one_account_create_exactly_one_user() {
    let Some(db) = pg::database("ext_users_upsert_race").await else {
        return;
    };
    let directory = Arc::new(PostgresExternalUserDirectory::<UserRole>::new(
        wide_pool(&db).await,
    ));
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let directory = Arc::clone(&directory);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                written(
                    directory
                        .upsert_external(profile("user_race", UserRole::User, None))
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut ids = BTreeSet::new();
    let mut created = 0;
    for task in tasks {
        let upserted = task.await.unwrap();
        ids.insert(upserted.current.user.user_id);
        created += usize::from(upserted.previous.is_none());
    }
    assert_eq!(ids.len(), 1, "every caller got the same user");
    assert_eq!(created, 1, "exactly one caller created it");
    assert_eq!(db.count("tessera_users").await, 1);
    assert_eq!(db.count("tessera_external_accounts").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resolve_user_race_64_concurrent_first_requests_create_exactly_one_record() {
    let Some(db) = pg::database("resolve_user_race").await else {
        return;
    };
    let directory = Arc::new(PostgresExternalUserDirectory::<UserRole>::new(
        wide_pool(&db).await,
    ));
    let resolve = Arc::new(ResolveUser::new(directory));
    let identity = Arc::new(ExternalIdentity {
        issuer: ISSUER.to_owned(),
        subject: subject("user_new"),
        token_use: TokenUse::Access,
        subject_kind: SubjectKind::User,
        role: UserRole::Moderator,
        email: Some("new@example.com".into()),
        name: None,
        issued_at: at(T),
        authenticated_at: None,
        authentication: Default::default(),
        expires_at: at(T + 60),
    });
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (resolve, identity, barrier) = (
                Arc::clone(&resolve),
                Arc::clone(&identity),
                Arc::clone(&barrier),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                resolve
                    .execute(ResolveUserRequest {
                        identity: &identity,
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = BTreeSet::new();
    let mut created = 0;
    for task in tasks {
        let resolved = task.await.unwrap();
        assert_eq!(resolved.user.user.role, UserRole::Moderator);
        assert!(matches!(
            resolved.from,
            ResolvedFrom::TokenClaims | ResolvedFrom::Directory
        ));
        ids.insert(resolved.user.user.user_id);
        created += usize::from(resolved.created);
    }
    assert_eq!(ids.len(), 1, "all callers get the same user id");
    assert_eq!(created, 1, "exactly one caller created the user");
    assert_eq!(db.count("tessera_users").await, 1, "exactly one record");
    assert_eq!(db.count("tessera_external_accounts").await, 1);
}

fn deleted(outcome: UpsertOutcome<UserRole>) -> bool {
    matches!(outcome, UpsertOutcome::Deleted { .. })
}

#[tokio::test]
async fn tombstones_are_kept_for_the_retention_and_purged_after() {
    let Some(db) = pg::database("ext_users_retention").await else {
        return;
    };
    let directory = PostgresExternalUserDirectory::<UserRole>::new(db.pool().await)
        .with_tombstone_retention(Duration::from_secs(3600));
    for sub in ["user_old", "user_recent"] {
        directory
            .delete_external(ISSUER, &subject(sub), None)
            .await
            .unwrap();
    }
    assert_eq!(
        directory.purge_tombstones().await.unwrap(),
        0,
        "both recent"
    );
    // One deletion applied two hours ago, by the database's clock.
    sqlx::query(&format!(
        "UPDATE {}.tessera_external_accounts SET deleted_at = now() - interval '2 hours'
         WHERE subject = 'user_old'",
        db.schema()
    ))
    .execute(db.admin())
    .await
    .unwrap();
    assert_eq!(directory.purge_tombstones().await.unwrap(), 1);
    assert_eq!(db.count("tessera_external_accounts").await, 1);
    // Forgotten: a token may create the account again; the recent one may not.
    let token = |sub| ExternalProfile {
        as_of: AsOf::Token(at(T)),
        ..profile(sub, UserRole::User, None)
    };
    let back = written(directory.upsert_external(token("user_old")).await.unwrap());
    assert!(back.previous.is_none());
    assert!(deleted(
        directory
            .upsert_external(token("user_recent"))
            .await
            .unwrap()
    ));
}

#[tokio::test]
async fn every_deletion_purges_expired_tombstones_first_and_keeps_its_own() {
    let Some(db) = pg::database("ext_users_purge").await else {
        return;
    };
    let directory = PostgresExternalUserDirectory::<UserRole>::new(db.pool().await)
        .with_tombstone_retention(Duration::ZERO);
    for n in 0..5 {
        directory
            .delete_external(ISSUER, &subject(&format!("user_gone_{n}")), None)
            .await
            .unwrap();
    }
    // Each deletion purged the tombstones before it (retention zero), and
    // kept its own until the next purge.
    assert_eq!(db.count("tessera_external_accounts").await, 1);
    assert!(deleted(
        directory
            .upsert_external(profile("user_gone_4", UserRole::User, None))
            .await
            .unwrap()
    ));
    assert_eq!(directory.purge_tombstones().await.unwrap(), 1);
    assert_eq!(db.count("tessera_external_accounts").await, 0);
}

#[tokio::test]
async fn a_purge_leaves_live_accounts_alone_and_any_retention_is_accepted() {
    let Some(db) = pg::database("ext_users_purge_live").await else {
        return;
    };
    let directory = PostgresExternalUserDirectory::<UserRole>::new(db.pool().await)
        .with_tombstone_retention(Duration::ZERO);
    written(
        directory
            .upsert_external(profile("user_live", UserRole::User, None))
            .await
            .unwrap(),
    );
    assert_eq!(directory.purge_tombstones().await.unwrap(), 0);
    assert_eq!(db.count("tessera_external_accounts").await, 1);
    // A retention far past any calendar neither fails nor purges.
    let forever = PostgresExternalUserDirectory::<UserRole>::new(db.pool().await)
        .with_tombstone_retention(Duration::MAX);
    forever
        .delete_external(ISSUER, &subject("user_live"), None)
        .await
        .unwrap();
    assert_eq!(forever.purge_tombstones().await.unwrap(), 0);
    assert_eq!(db.count("tessera_external_accounts").await, 1);
}

#[tokio::test]
async fn migration_4_applies_over_a_schema_at_migration_3_and_keeps_its_accounts() {
    let Some(db) = pg::empty_database("ext_users_migrate4").await else {
        return;
    };
    let pool = db.pool().await;
    // The schema as a build that knew migrations 1 to 3 left it.
    sqlx::raw_sql(
        "CREATE TABLE tessera_schema_migrations (
            version bigint PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 <= 3) {
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO tessera_schema_migrations (version, description) VALUES ($1, $2)")
            .bind(version)
            .bind(description)
            .execute(&pool)
            .await
            .unwrap();
    }
    let old = uuid::Uuid::now_v7();
    sqlx::raw_sql(&format!(
        "INSERT INTO tessera_users (id, role) VALUES ('{old}', 'admin');
         INSERT INTO tessera_external_accounts (issuer, subject, user_id, email)
         VALUES ('{ISSUER}', 'user_before', '{old}', 'before@example.com');"
    ))
    .execute(&pool)
    .await
    .unwrap();

    migrate(&pool).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM tessera_schema_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(versions, all);

    // The account from before is live, with no instant: the first one given
    // is taken, an older one then refused.
    let directory = PostgresExternalUserDirectory::<UserRole>::new(pool);
    let before = directory
        .find_by_external_id(ISSUER, &subject("user_before"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*before.user.user_id.as_uuid(), old);
    assert_eq!(before.user.role, UserRole::Admin);
    let mut update = profile("user_before", UserRole::User, None);
    update.as_of = AsOf::Provider(at(T + 10));
    let updated = written(directory.upsert_external(update.clone()).await.unwrap());
    assert_eq!(updated.current.user.user_id, before.user.user_id);
    update.as_of = AsOf::Provider(at(T));
    update.role = UserRole::Admin;
    assert!(matches!(
        directory.upsert_external(update).await.unwrap(),
        UpsertOutcome::Stale(_)
    ));
    // And it can be deleted into a tombstone.
    assert!(
        directory
            .delete_external(ISSUER, &subject("user_before"), Some(at(T + 20)))
            .await
            .unwrap()
            .is_some()
    );
    assert!(deleted(
        directory
            .upsert_external(profile("user_before", UserRole::User, None))
            .await
            .unwrap()
    ));
}
