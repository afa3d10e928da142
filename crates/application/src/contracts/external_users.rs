//! The provider-linked user directory contract: ordering by the provider's
//! instants, and tombstones of deleted accounts.

use std::sync::Arc;

use tessera_domain::UserRole;
use time::{Duration, OffsetDateTime};

use super::{T, at};
use crate::external::{
    AsOf, ExternalProfile, ExternalSubject, ExternalUser, ExternalUserDirectory, UpsertOutcome,
    Upserted,
};
use crate::ports::UserDirectory;

const ISSUER: &str = "https://idp.example";
const RACERS: usize = 32;

/// What both ports of a provider-linked directory adapter offer.
pub trait ExternalDirectory: ExternalUserDirectory<UserRole> + UserDirectory<UserRole> {}
impl<D: ExternalUserDirectory<UserRole> + UserDirectory<UserRole>> ExternalDirectory for D {}

fn subject(s: &str) -> ExternalSubject {
    ExternalSubject::parse(s).unwrap()
}

/// A profile of `sub`, as of `as_of`.
fn profile(sub: &str, role: UserRole, as_of: AsOf) -> ExternalProfile<UserRole> {
    ExternalProfile {
        issuer: ISSUER.into(),
        subject: subject(sub),
        role,
        email: Some(format!("{sub}@example.com")),
        name: None,
        enabled: None,
        as_of,
    }
}

/// A provider's (webhook's) instant, `seconds` after the epoch.
fn provider_at(seconds: i64) -> AsOf {
    AsOf::Provider(at(seconds))
}

fn written(outcome: UpsertOutcome<UserRole>) -> Upserted<UserRole> {
    match outcome {
        UpsertOutcome::Written(upserted) => upserted,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn stale(outcome: UpsertOutcome<UserRole>) -> ExternalUser<UserRole> {
    match outcome {
        UpsertOutcome::Stale(stored) => stored,
        other => panic!("expected a stale profile, got {other:?}"),
    }
}

fn deleted_as_of(outcome: UpsertOutcome<UserRole>) -> OffsetDateTime {
    match outcome {
        UpsertOutcome::Deleted { deleted_as_of } => deleted_as_of,
        other => panic!("expected a deleted account, got {other:?}"),
    }
}

/// What the directory does with the profile of `sub` as `role` at `as_of`.
async fn upsert(
    directory: &dyn ExternalDirectory,
    sub: &str,
    role: UserRole,
    as_of: AsOf,
) -> UpsertOutcome<UserRole> {
    directory
        .upsert_external(profile(sub, role, as_of))
        .await
        .unwrap()
}

async fn found(directory: &dyn ExternalDirectory, sub: &str) -> Option<ExternalUser<UserRole>> {
    directory
        .find_by_external_id(ISSUER, &subject(sub))
        .await
        .unwrap()
}

/// An older update delivered after a newer one is ignored; an equal one is
/// applied again; an update without an instant applies but does not move
/// the record's instant.
async fn orders_updates_by_their_instant(directory: &dyn ExternalDirectory) {
    let newer = profile("user_order", UserRole::User, provider_at(T + 20));
    let created = written(directory.upsert_external(newer.clone()).await.unwrap());
    assert!(created.previous.is_none());

    // The delayed older update would grant admin and disable: ignored.
    let mut older = profile("user_order", UserRole::Admin, provider_at(T + 10));
    older.enabled = Some(false);
    older.email = Some("stale@example.com".into());
    let stored = stale(directory.upsert_external(older).await.unwrap());
    assert_eq!(stored, created.current, "the stored record, unchanged");
    let now = found(directory, "user_order").await.unwrap();
    assert_eq!(now, created.current);
    assert_eq!(now.user.role, UserRole::User);
    assert!(now.user.enabled);
    let rotated = UserDirectory::find(directory, &now.user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rotated.role,
        UserRole::User,
        "sessions rotate to the newer role"
    );

    // The same delivery again: applied, to the same effect.
    let retried = written(directory.upsert_external(newer).await.unwrap());
    assert_eq!(retried.previous.as_ref(), Some(&created.current));
    assert_eq!(retried.current, created.current);

    // Newer: applied.
    let newest = written(
        upsert(
            directory,
            "user_order",
            UserRole::Admin,
            provider_at(T + 30),
        )
        .await,
    );
    assert_eq!(newest.current.user.role, UserRole::Admin);
    assert_eq!(newest.current.user.user_id, created.current.user.user_id);

    // Of unknown instant (request-time sync): applied, and T + 30 still
    // stands.
    let synced = written(upsert(directory, "user_order", UserRole::Moderator, AsOf::Unknown).await);
    assert_eq!(synced.current.user.role, UserRole::Moderator);
    stale(upsert(directory, "user_order", UserRole::User, provider_at(T + 25)).await);

    // A record written without an instant takes the first one it is given.
    written(upsert(directory, "user_undated", UserRole::User, AsOf::Unknown).await);
    written(
        upsert(
            directory,
            "user_undated",
            UserRole::Admin,
            provider_at(T + 1),
        )
        .await,
    );
    let stored = stale(upsert(directory, "user_undated", UserRole::User, provider_at(T)).await);
    assert_eq!(stored.user.role, UserRole::Admin);
}

/// A token's profile is ordered by its `iat` like a webhook's by its
/// instant: minted before the record's last webhook, it is stale and the
/// stored record stands; minted then or later, it is written. Its instant
/// is not recorded: a webhook older than a token written before it still
/// applies.
async fn orders_a_token_by_its_iat_without_recording_it(directory: &dyn ExternalDirectory) {
    let upsert = |role, as_of| directory.upsert_external(profile("user_token", role, as_of));
    let signed_in = written(
        upsert(UserRole::Admin, AsOf::Token(at(T + 100)))
            .await
            .unwrap(),
    );
    assert!(signed_in.previous.is_none());
    let id = signed_in.current.user.user_id;

    // Demoted by a webhook at T + 20, older than the first token: applied.
    let demoted = written(upsert(UserRole::User, provider_at(T + 20)).await.unwrap());
    assert_eq!(demoted.current.user.role, UserRole::User);
    assert_eq!(demoted.current.user.user_id, id);

    // A token minted before the demotion still says admin: stale.
    let mut old_token = profile("user_token", UserRole::Admin, AsOf::Token(at(T + 19)));
    old_token.enabled = Some(true);
    old_token.email = Some("old@example.com".into());
    let stored = stale(directory.upsert_external(old_token).await.unwrap());
    assert_eq!(stored, demoted.current, "the stored record, unchanged");
    assert_eq!(found(directory, "user_token").await, Some(demoted.current));
    let rotated = UserDirectory::find(directory, &id).await.unwrap().unwrap();
    assert_eq!(rotated.role, UserRole::User, "sessions rotate as demoted");

    // Tokens minted at the demotion's instant or after it: written.
    for (iat, role) in [(T + 20, UserRole::Moderator), (T + 40, UserRole::User)] {
        let current = written(upsert(role, AsOf::Token(at(iat))).await.unwrap()).current;
        assert_eq!(current.user.role, role, "{iat}");
        assert_eq!(current.user.user_id, id);
    }

    // The tokens recorded nothing: a webhook at T + 30 still applies, and
    // then orders what follows.
    let promoted = written(upsert(UserRole::Admin, provider_at(T + 30)).await.unwrap());
    assert_eq!(promoted.current.user.role, UserRole::Admin);
    stale(
        upsert(UserRole::User, AsOf::Token(at(T + 29)))
            .await
            .unwrap(),
    );
    stale(upsert(UserRole::User, provider_at(T + 29)).await.unwrap());
}

/// A webhook whose payload carries no instant is dated by its delivery:
/// ordered and recorded like a provider instant, so that a token minted
/// before the change it reports is stale (an old admin token does not undo
/// a demotion), and deliveries are ordered among themselves.
async fn orders_and_records_a_delivery_instant(directory: &dyn ExternalDirectory) {
    let upsert = |role, as_of| directory.upsert_external(profile("user_delivered", role, as_of));
    let id = written(
        upsert(UserRole::Admin, AsOf::Token(at(T + 10)))
            .await
            .unwrap(),
    )
    .current
    .user
    .user_id;
    let demoted = written(
        upsert(UserRole::User, AsOf::Delivery(at(T + 20)))
            .await
            .unwrap(),
    );
    assert_eq!(demoted.current.user.role, UserRole::User);
    assert_eq!(demoted.current.user.user_id, id);
    // The admin token minted before the delivery: stale, still demoted.
    let stored = stale(
        upsert(UserRole::Admin, AsOf::Token(at(T + 19)))
            .await
            .unwrap(),
    );
    assert_eq!(stored, demoted.current);
    let rotated = UserDirectory::find(directory, &id).await.unwrap().unwrap();
    assert_eq!(rotated.role, UserRole::User);
    // Deliveries in their order: a later one applies, an earlier one not.
    let promoted = written(
        upsert(UserRole::Moderator, AsOf::Delivery(at(T + 30)))
            .await
            .unwrap(),
    );
    assert_eq!(promoted.current.user.role, UserRole::Moderator);
    stale(
        upsert(UserRole::User, AsOf::Delivery(at(T + 25)))
            .await
            .unwrap(),
    );
}

/// Equal instants are applied even below the microsecond, which PostgreSQL
/// does not keep.
async fn applies_a_retry_with_a_sub_microsecond_instant(directory: &dyn ExternalDirectory) {
    let instant = at(T) + Duration::nanoseconds(123_456_789);
    let first = profile("user_nanos", UserRole::User, AsOf::Provider(instant));
    written(directory.upsert_external(first.clone()).await.unwrap());
    let again = written(directory.upsert_external(first).await.unwrap());
    assert_eq!(again.previous.as_ref(), Some(&again.current));
    // A whole microsecond earlier is older.
    stale(
        upsert(
            directory,
            "user_nanos",
            UserRole::Admin,
            AsOf::Provider(instant - Duration::microseconds(1)),
        )
        .await,
    );
}

/// A deletion removes the user and leaves a tombstone that only a strictly
/// newer profile gets past.
async fn keeps_deleted_users_deleted(directory: &dyn ExternalDirectory) {
    let user =
        written(upsert(directory, "user_gone", UserRole::Admin, provider_at(T + 10)).await).current;
    let removed = directory
        .delete_external(ISSUER, &subject("user_gone"), Some(at(T + 50)))
        .await
        .unwrap();
    assert_eq!(removed, Some(user.clone()));
    assert_eq!(found(directory, "user_gone").await, None);
    assert_eq!(
        UserDirectory::find(directory, &user.user.user_id)
            .await
            .unwrap(),
        None,
        "sessions of the deleted user no longer rotate"
    );

    // A delayed update made before the deletion, one at the same instant, a
    // token minted (by the provider's clock) after it, an update delivered
    // after it (a retry of an older one, maybe), and a profile of unknown
    // instant: none brings the user back.
    for as_of in [
        provider_at(T + 40),
        provider_at(T + 50),
        AsOf::Token(at(T + 60)),
        AsOf::Delivery(at(T + 60)),
        AsOf::Unknown,
    ] {
        let outcome = upsert(directory, "user_gone", UserRole::Admin, as_of).await;
        assert_eq!(deleted_as_of(outcome), at(T + 50), "{as_of:?}");
        assert_eq!(found(directory, "user_gone").await, None, "{as_of:?}");
    }

    // The deletion again (a retry), even dated earlier: nothing to remove,
    // and the tombstone keeps its later instant.
    for as_of in [Some(at(T + 50)), Some(at(T + 45))] {
        let again = directory
            .delete_external(ISSUER, &subject("user_gone"), as_of)
            .await
            .unwrap();
        assert_eq!(again, None);
    }
    assert_eq!(
        deleted_as_of(upsert(directory, "user_gone", UserRole::User, provider_at(T + 50)).await),
        at(T + 50)
    );

    // Strictly newer than the deletion: the provider made the account again.
    let back = written(upsert(directory, "user_gone", UserRole::User, provider_at(T + 51)).await);
    assert!(back.previous.is_none(), "a new user");
    assert_ne!(
        back.current.user.user_id, user.user.user_id,
        "with a new id"
    );
    assert_eq!(found(directory, "user_gone").await, Some(back.current));
}

/// A deletion is never dated before what the record reflected.
async fn dates_a_deletion_no_earlier_than_the_record(directory: &dyn ExternalDirectory) {
    written(
        upsert(
            directory,
            "user_ahead",
            UserRole::User,
            provider_at(T + 100),
        )
        .await,
    );
    assert!(
        directory
            .delete_external(ISSUER, &subject("user_ahead"), Some(at(T + 60)))
            .await
            .unwrap()
            .is_some()
    );
    let outcome = upsert(
        directory,
        "user_ahead",
        UserRole::Admin,
        provider_at(T + 80),
    )
    .await;
    assert_eq!(deleted_as_of(outcome), at(T + 100));
}

/// Deleting an account never seen leaves a tombstone: its `user.created`
/// arriving late does not create it.
async fn remembers_the_deletion_of_an_unknown_account(directory: &dyn ExternalDirectory) {
    assert_eq!(
        directory
            .delete_external(ISSUER, &subject("user_early"), Some(at(T + 10)))
            .await
            .unwrap(),
        None
    );
    for as_of in [provider_at(T + 5), AsOf::Token(at(T + 20)), AsOf::Unknown] {
        let outcome = upsert(directory, "user_early", UserRole::User, as_of).await;
        assert_eq!(deleted_as_of(outcome), at(T + 10));
    }
    assert_eq!(found(directory, "user_early").await, None);
}

/// A deletion without an instant is dated by the directory: a profile of
/// unknown instant or a token cannot undo it, a webhook's profile newer
/// than that date can.
async fn dates_an_undated_deletion_itself(directory: &dyn ExternalDirectory) {
    written(
        upsert(
            directory,
            "user_undated_delete",
            UserRole::User,
            AsOf::Unknown,
        )
        .await,
    );
    assert!(
        directory
            .delete_external(ISSUER, &subject("user_undated_delete"), None)
            .await
            .unwrap()
            .is_some()
    );
    let dated = deleted_as_of(
        upsert(
            directory,
            "user_undated_delete",
            UserRole::User,
            AsOf::Unknown,
        )
        .await,
    );
    for as_of in [
        AsOf::Provider(dated),
        AsOf::Token(dated + Duration::milliseconds(1)),
    ] {
        let outcome = upsert(directory, "user_undated_delete", UserRole::User, as_of).await;
        assert_eq!(deleted_as_of(outcome), dated, "{as_of:?}");
    }
    let back = written(
        upsert(
            directory,
            "user_undated_delete",
            UserRole::User,
            AsOf::Provider(dated + Duration::milliseconds(1)),
        )
        .await,
    );
    assert!(back.previous.is_none());
}

/// Other accounts (another subject, the same subject at another issuer) are
/// untouched by a deletion.
async fn deletes_one_account_only(directory: &dyn ExternalDirectory) {
    let kept =
        written(upsert(directory, "user_neighbour", UserRole::User, AsOf::Unknown).await).current;
    let elsewhere = ExternalProfile {
        issuer: "https://other.example".into(),
        ..profile("user_twin", UserRole::User, AsOf::Unknown)
    };
    let elsewhere = written(directory.upsert_external(elsewhere).await.unwrap()).current;
    directory
        .delete_external(ISSUER, &subject("user_twin"), Some(at(T)))
        .await
        .unwrap();
    assert_eq!(found(directory, "user_neighbour").await, Some(kept));
    assert_eq!(
        directory
            .find_by_external_id("https://other.example", &subject("user_twin"))
            .await
            .unwrap(),
        Some(elsewhere)
    );
}

/// The [`ExternalUserDirectory`] ordering contract, on an empty directory
/// whose clock reads [`T`] + 1000: ordering by the provider's instants, and
/// tombstones of deleted accounts — what webhooks delivered at least once
/// and out of order depend on.
///
/// # Panics
///
/// When the directory breaks the contract, naming the rule.
pub async fn external_user_directory(directory: &dyn ExternalDirectory) {
    orders_updates_by_their_instant(directory).await;
    orders_a_token_by_its_iat_without_recording_it(directory).await;
    orders_and_records_a_delivery_instant(directory).await;
    applies_a_retry_with_a_sub_microsecond_instant(directory).await;
    keeps_deleted_users_deleted(directory).await;
    dates_a_deletion_no_earlier_than_the_record(directory).await;
    remembers_the_deletion_of_an_unknown_account(directory).await;
    dates_an_undated_deletion_itself(directory).await;
    deletes_one_account_only(directory).await;
}

/// A deletion racing many delayed older updates of one account ends with
/// the user deleted, whichever ran first, and every user any update created
/// gone with it. Run it on a multi-threaded runtime.
///
/// # Panics
///
/// When the directory breaks the contract.
pub async fn external_user_directory_race(directory: Arc<dyn ExternalDirectory>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS + 1));
    let updates: Vec<_> = (0..RACERS)
        .map(|n| {
            let (directory, barrier) = (Arc::clone(&directory), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let as_of = at(T) + Duration::milliseconds(i64::try_from(n).unwrap());
                upsert(
                    &*directory,
                    "user_race",
                    UserRole::Admin,
                    AsOf::Provider(as_of),
                )
                .await
            })
        })
        .collect();
    let deletion = {
        let (directory, barrier) = (Arc::clone(&directory), Arc::clone(&barrier));
        tokio::spawn(async move {
            barrier.wait().await;
            directory
                .delete_external(ISSUER, &subject("user_race"), Some(at(T + 1)))
                .await
                .unwrap()
        })
    };
    let mut created = Vec::new();
    for update in updates {
        if let Some(user) = update.await.unwrap().stored() {
            created.push(user.user.user_id);
        }
    }
    let removed = deletion.await.unwrap();
    assert_eq!(found(directory.as_ref(), "user_race").await, None);
    for id in &created {
        assert_eq!(
            UserDirectory::find(directory.as_ref(), id).await.unwrap(),
            None
        );
    }
    assert_eq!(
        removed.is_some(),
        !created.is_empty(),
        "the deletion removed the user the updates before it created"
    );
}
