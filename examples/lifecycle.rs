//! A session's whole life, step by step: the README's main command.
//!
//! ```text
//! cargo run --example lifecycle
//! ```

use std::error::Error;
use std::sync::Arc;

use tessera::application::ports::{DirectoryUser, WatermarkScope};
use tessera::application::{EstablishRequest, RevokeRequest};
use tessera::domain::{Capability, TenantId, UserId};
use tessera::{InMemoryUserDirectory, JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let alice = UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c")?;
    let acme = TenantId::parse("acme")?;
    let directory = Arc::new(InMemoryUserDirectory::new());
    directory.upsert(DirectoryUser {
        user_id: alice,
        role: UserRole::User,
        capabilities: [Capability::parse("posts:write")?].into(),
        tenant: Some(acme.clone()),
        enabled: true,
    });

    let key = SigningKey::generate(JwsAlgorithm::EdDsa, "demo-2026-11")?;
    println!("1. key ring: {:?}", KeyRing::new(key.clone()));
    let sessions: Tessera<UserRole> =
        Tessera::builder(KeyRing::new(key), "https://api.example", "web")
            .user_directory(directory.clone())
            .build();

    let issued = sessions.establish().execute(EstablishRequest {
        user_id: alice,
        role: UserRole::User,
        capabilities: [Capability::parse("posts:write")?].into(),
        tenant: Some(acme.clone()),
        authenticated_at: None,
        authentication: Default::default(),
    })?;
    let token = issued.token.expose_secret().to_owned();
    println!(
        "2. established session {} for {alice}: {} bytes of token",
        issued.session.session_id(),
        token.len()
    );
    println!("   (the token itself prints as {:?})", issued.token);

    let verified = sessions.verify().execute(&token)?;
    println!(
        "3. verified: role {}, capabilities {:?}, tenant {:?}, rotation {:?}",
        verified.session().role(),
        verified.session().capabilities(),
        verified.session().tenant(),
        verified.rotation()
    );

    let guest = sessions.read().execute(None);
    let bad = sessions.read().execute(Some("not-a-token"));
    println!(
        "4. lenient read: no token -> {:?}, garbage -> {:?}",
        guest.is_some(),
        bad.is_some()
    );

    directory.upsert(DirectoryUser {
        user_id: alice,
        role: UserRole::Moderator,
        capabilities: [
            Capability::parse("posts:write")?,
            Capability::parse("posts:hide")?,
        ]
        .into(),
        tenant: Some(acme),
        enabled: true,
    });
    sessions
        .revoke()
        .execute(RevokeRequest::PermissionsChanged(WatermarkScope::User(
            alice,
        )))
        .await?;
    match sessions.verify().execute(&token) {
        Err(refused) => println!(
            "5. permissions changed: verify hands out no stale role ({}: {refused}); the HTTP layer rotates such sessions by itself",
            refused.code()
        ),
        Ok(_) => return Err("a stale session verified".into()),
    }

    // The watermark covers its own second; wait for the next before rotating.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let rotated = sessions.rotate().execute(&token).await?;
    println!(
        "6. rotated: same session {}, role now {}, capabilities {:?}",
        rotated.session.session_id(),
        rotated.session.role(),
        rotated.session.capabilities()
    );
    let new_token = rotated.token.expose_secret().to_owned();

    sessions
        .revoke()
        .execute(RevokeRequest::Session {
            session_id: *rotated.session.session_id(),
            authenticated_at: rotated.session.authenticated_at(),
        })
        .await?;
    for (name, t) in [("first", &token), ("rotated", &new_token)] {
        match sessions.verify().execute(t) {
            Ok(_) => println!("7. {name} token still valid (unexpected)"),
            Err(e) => println!(
                "7. after logout, the {name} token is refused: {e} [{}]",
                e.code()
            ),
        }
    }
    Ok(())
}
