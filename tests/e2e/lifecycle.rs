//! A session's whole life, for every algorithm, through the real codec and
//! the in-memory stores.

use tessera::application::ports::{
    DirectoryUser, JwsFailure, RevocationReason, TokenError, WatermarkScope,
};
use tessera::application::{RevokeRequest, RotationNeed, VerifyError};
use tessera::domain::TenantId;
use tessera::{KeyRing, UserRole};

use crate::support::*;

async fn establish_verify_read_rotate_revoke(alg: tessera::JwsAlgorithm) {
    let app = spawn_app(KeyRing::new(signing_key(alg, "k1")));

    // Establish.
    let issued = app.sign_in_alice();
    assert_eq!(issued.session.user_id(), &alice());
    let token = issued.token.expose_secret().to_owned();

    // Verify (strict) and read (lenient) agree.
    let verified = app.sessions.verify().execute(&token).unwrap();
    assert_eq!(
        verified.session(),
        &issued.session,
        "{alg:?}: the token carries the session"
    );
    assert_eq!(verified.rotation(), RotationNeed::NotDue);
    let read = app.sessions.read().execute(Some(&token)).unwrap();
    assert_eq!(read.session(), &issued.session);
    assert!(app.sessions.read().execute(None).is_none());

    // Five minutes on, the token is due; meanwhile Alice became a moderator.
    app.clock.advance(5 * 60);
    let verified = app.sessions.verify().execute(&token).unwrap();
    assert_eq!(verified.rotation(), RotationNeed::Due);
    app.directory.upsert(DirectoryUser {
        user_id: alice(),
        role: UserRole::Moderator,
        capabilities: caps(&["posts:write", "posts:hide"]),
        tenant: Some(TenantId::parse("acme").unwrap()),
        enabled: true,
    });
    let rotated = app.sessions.rotate().execute(&token).await.unwrap();
    let new = &rotated.session;
    assert_eq!(
        new.session_id(),
        issued.session.session_id(),
        "same session"
    );
    assert_eq!(new.authenticated_at(), issued.session.authenticated_at());
    assert_eq!(new.issued_at(), at(START + 300));
    assert_eq!(new.role(), &UserRole::Moderator, "role read afresh");
    assert!(new.has_capability("posts:hide"));
    let new_token = rotated.token.expose_secret().to_owned();
    assert_eq!(
        app.sessions.verify().execute(&new_token).unwrap().session(),
        new
    );

    // Logout revokes every token of the session, old and rotated.
    app.sessions
        .revoke()
        .execute(RevokeRequest::Session {
            session_id: *new.session_id(),
            authenticated_at: new.authenticated_at(),
        })
        .await
        .unwrap();
    for t in [&token, &new_token] {
        assert!(matches!(
            app.sessions.verify().execute(t),
            Err(VerifyError::Revoked(RevocationReason::SessionLoggedOut))
        ));
        assert!(app.sessions.read().execute(Some(t)).is_none());
    }
}

#[tokio::test]
async fn hs256_session_lives_its_whole_life() {
    establish_verify_read_rotate_revoke(tessera::JwsAlgorithm::Hs256).await;
}

#[tokio::test]
async fn rs256_session_lives_its_whole_life() {
    establish_verify_read_rotate_revoke(tessera::JwsAlgorithm::Rs256).await;
}

#[tokio::test]
async fn es256_session_lives_its_whole_life() {
    establish_verify_read_rotate_revoke(tessera::JwsAlgorithm::Es256).await;
}

#[tokio::test]
async fn eddsa_session_lives_its_whole_life() {
    establish_verify_read_rotate_revoke(tessera::JwsAlgorithm::EdDsa).await;
}

#[tokio::test]
async fn force_logout_of_a_user_ends_sessions_issued_before_it_only() {
    let app = spawn_app(KeyRing::new(signing_key(
        tessera::JwsAlgorithm::EdDsa,
        "k1",
    )));
    let before = app.sign_in_alice();
    app.clock.advance(10);
    app.sessions
        .revoke()
        .execute(RevokeRequest::ForceLogout(WatermarkScope::User(alice())))
        .await
        .unwrap();
    assert!(matches!(
        app.sessions.verify().execute(before.token.expose_secret()),
        Err(VerifyError::Revoked(RevocationReason::UserLoggedOut))
    ));
    app.clock.advance(1);
    let after = app.sign_in_alice();
    assert!(
        app.sessions
            .verify()
            .execute(after.token.expose_secret())
            .is_ok()
    );
}

#[tokio::test]
async fn permissions_changed_makes_the_session_rotate_with_fresh_claims() {
    let app = spawn_app(KeyRing::new(signing_key(
        tessera::JwsAlgorithm::Hs256,
        "k1",
    )));
    let issued = app.sign_in_alice();
    app.clock.advance(10);
    app.directory.upsert(DirectoryUser {
        user_id: alice(),
        role: UserRole::Admin,
        capabilities: caps(&[]),
        tenant: Some(TenantId::parse("acme").unwrap()),
        enabled: true,
    });
    app.sessions
        .revoke()
        .execute(RevokeRequest::PermissionsChanged(WatermarkScope::User(
            alice(),
        )))
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    // Code that follows the quickstart (verify, then act on the role) gets
    // no role at all: the old one is no longer the user's.
    let refused = app.sessions.verify().execute(token).unwrap_err();
    assert!(matches!(refused, VerifyError::ClaimsStale), "{refused:?}");
    assert!(
        app.sessions.read().execute(Some(token)).is_none(),
        "the lenient read hands out no stale role either"
    );

    // The watermark covers its own second: the rotation a second later
    // issues a token newer than it, with the role the directory has now.
    app.clock.advance(1);
    let rotated = app.sessions.rotate().execute(token).await.unwrap();
    assert_eq!(rotated.session.role(), &UserRole::Admin);
    let fresh = app
        .sessions
        .verify()
        .execute(rotated.token.expose_secret())
        .unwrap();
    assert_eq!(
        fresh.rotation(),
        RotationNeed::NotDue,
        "the new token is not stale"
    );
}

#[tokio::test]
async fn rotation_is_refused_for_a_disabled_user() {
    let app = spawn_app(KeyRing::new(signing_key(
        tessera::JwsAlgorithm::Hs256,
        "k1",
    )));
    let issued = app.sign_in_alice();
    app.directory.upsert(DirectoryUser {
        user_id: alice(),
        role: UserRole::User,
        capabilities: caps(&[]),
        tenant: None,
        enabled: false,
    });
    assert!(matches!(
        app.sessions
            .rotate()
            .execute(issued.token.expose_secret())
            .await,
        Err(tessera::application::RotateError::UserDisabled)
    ));
}

#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime_however_often_rotated() {
    let app = spawn_app(KeyRing::new(signing_key(
        tessera::JwsAlgorithm::EdDsa,
        "k1",
    )));
    let mut token = app.sign_in_alice().token.expose_secret().to_owned();
    // Rotate every 10 minutes: each token is cut at the one-hour mark.
    for _ in 0..5 {
        app.clock.advance(10 * 60);
        token = app
            .sessions
            .rotate()
            .execute(&token)
            .await
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
    }
    let last = app.sessions.verify().execute(&token).unwrap();
    assert_eq!(last.session().expires_at(), at(START + 3600));
    // At the hour nothing is left to grant, and past the leeway the token is gone.
    app.clock.advance(10 * 60);
    assert!(matches!(
        app.sessions.rotate().execute(&token).await,
        Err(tessera::application::RotateError::AbsoluteLifetimeExceeded)
    ));
    app.clock.advance(30);
    assert!(matches!(
        app.sessions.verify().execute(&token),
        Err(VerifyError::Expired | VerifyError::AbsoluteLifetimeExceeded)
    ));
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_until_the_old_key_is_removed() {
    let alg = tessera::JwsAlgorithm::Es256;
    let app = spawn_app(KeyRing::new(signing_key(alg, "2026-10")));
    let old = app.sign_in_alice().token.expose_secret().to_owned();

    // A new active key; the old one still verifies.
    let ring = app
        .sessions
        .codec()
        .key_ring()
        .with_signing_key(signing_key(alg, "2026-11"))
        .unwrap();
    app.sessions.codec().replace_keys(ring.clone());
    let new = app.sign_in_alice().token.expose_secret().to_owned();
    assert!(
        app.sessions.verify().execute(&old).is_ok(),
        "old kid still verifies"
    );
    assert!(app.sessions.verify().execute(&new).is_ok());
    let new_header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            new.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(new_header["kid"], "2026-11");

    // The old key retired: its tokens are refused, the new ones stand.
    app.sessions
        .codec()
        .replace_keys(ring.without_key("2026-10").unwrap());
    assert!(matches!(
        app.sessions.verify().execute(&old),
        Err(VerifyError::Token(TokenError::Jws(
            JwsFailure::UnknownKeyId
        )))
    ));
    assert!(app.sessions.verify().execute(&new).is_ok());
}
