//! Identity-provider user webhooks end to end over loopback HTTP: deliveries
//! signed as Svix signs them (computed here with aws-lc-rs, not through
//! tessera), applied to the directory, with their effect on sessions.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tessera::application::external::{ExternalProfile, ExternalSubject, ExternalUserDirectory};
use tessera::application::{ApplyUserEvent, EstablishRequest, VerifyError};
use tessera::http::{UserWebhook, WebhookSecret, WebhookVerifier, user_webhook};
use tessera::infrastructure::identity::{
    ClaimMapping, InMemoryExternalUserDirectory, JsonUserEventDecoder, MissingRole,
};
use tessera::{JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};

use crate::support::{AUDIENCE, ISSUER, ManualClock, START, lifetimes};

const IDP: &str = "https://clerk.test";
const SECRET: &[u8] = b"webhook-secret-of-32-bytes-long!";
const OTHER_SECRET: &[u8] = b"a-secret-the-endpoint-never-knew";

/// One delivery: its headers as Svix sends them, and its body.
struct Signed {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

fn sign(secret: &[u8], id: &str, timestamp: i64, payload: &Value) -> Signed {
    let body = payload.to_string();
    let message = format!("{id}.{timestamp}.{body}");
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        message.as_bytes(),
    );
    Signed {
        id: id.to_owned(),
        timestamp,
        signature: format!("v1,{}", STANDARD.encode(tag.as_ref())),
        body,
    }
}

async fn deliver(client: &reqwest::Client, url: &str, delivery: &Signed) -> u16 {
    client
        .post(url)
        .header("svix-id", &delivery.id)
        .header("svix-timestamp", delivery.timestamp.to_string())
        .header("svix-signature", &delivery.signature)
        .header("content-type", "application/json")
        .body(delivery.body.clone())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn clerk_user(id: &str, role: &str) -> Value {
    json!({
        "id": id, "object": "user", "banned": false,
        "email_addresses": [{"id": "idn_1", "email_address": format!("{id}@example.org")}],
        "public_metadata": {"role": role},
    })
}

#[tokio::test]
async fn signed_user_events_demote_and_log_out_and_forged_or_replayed_ones_change_nothing() {
    let clock = ManualClock::starting_at(START);
    let users = Arc::new(InMemoryExternalUserDirectory::<UserRole>::new());
    let sessions: Tessera<UserRole> = Tessera::builder(
        KeyRing::new(SigningKey::generate(JwsAlgorithm::EdDsa, "s1").unwrap()),
        ISSUER,
        AUDIENCE,
    )
    .lifetimes(lifetimes())
    .clock(clock.clone())
    .user_directory(users.clone())
    .build();

    // Two provider users, known locally, each signed in.
    let mut tokens = Vec::new();
    for (subject, role) in [
        ("user_admin", UserRole::Admin),
        ("user_gone", UserRole::User),
    ] {
        let stored = users
            .upsert_external(ExternalProfile {
                issuer: IDP.into(),
                subject: ExternalSubject::parse(subject).unwrap(),
                role,
                email: None,
                name: None,
                enabled: None,
            })
            .await
            .unwrap()
            .current;
        let established = sessions
            .establish()
            .execute(EstablishRequest {
                user_id: stored.user.user_id,
                role: stored.user.role,
                capabilities: stored.user.capabilities,
                tenant: None,
                authenticated_at: None,
            })
            .unwrap();
        tokens.push(established.token);
    }

    let mapping = ClaimMapping::new(
        "public_metadata.role",
        MissingRole::LeastPrivilege(UserRole::User),
    )
    .unwrap()
    .map("admin", UserRole::Admin)
    .unwrap()
    .map("member", UserRole::User)
    .unwrap();
    let hook = UserWebhook::new(
        WebhookVerifier::new(
            WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode(SECRET))).unwrap(),
        )
        .with_clock(clock.clone()),
        Arc::new(JsonUserEventDecoder::new(IDP, mapping)),
        ApplyUserEvent::new(users.clone(), sessions.revoke().clone()),
    );
    let app = Router::new()
        .route("/webhooks/users", post(user_webhook::<UserRole>))
        .with_state(hook);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}/webhooks/users");
    let client = reqwest::Client::new();
    clock.advance(1);
    let now = clock.seconds();

    // A forged promotion is refused and changes nothing.
    let forged = sign(
        OTHER_SECRET,
        "msg_forged",
        now,
        &json!({"type": "user.updated", "data": clerk_user("user_gone", "admin")}),
    );
    assert_eq!(deliver(&client, &url, &forged).await, 401);
    let gone = ExternalSubject::parse("user_gone").unwrap();
    let stored = users.find_by_external_id(IDP, &gone).await.unwrap();
    assert_eq!(stored.unwrap().user.role, UserRole::User);
    assert!(sessions.verify().execute(tokens[1].expose_secret()).is_ok());

    // A signed update demotes the admin: their next rotation carries the new role.
    let demote = sign(
        SECRET,
        "msg_demote",
        now,
        &json!({"type": "user.updated", "data": clerk_user("user_admin", "member")}),
    );
    assert_eq!(deliver(&client, &url, &demote).await, 204);
    let rotated = sessions
        .rotate()
        .execute(tokens[0].expose_secret())
        .await
        .unwrap();
    assert_eq!(rotated.session.role(), &UserRole::User);

    // A signed deletion force-logs-out the deleted user's existing session.
    let delete = sign(
        SECRET,
        "msg_delete",
        now,
        &json!({"type": "user.deleted", "data": {"id": "user_gone", "deleted": true}}),
    );
    assert_eq!(deliver(&client, &url, &delete).await, 204);
    assert!(matches!(
        sessions.verify().execute(tokens[1].expose_secret()),
        Err(VerifyError::Revoked(_))
    ));
    assert!(
        users
            .find_by_external_id(IDP, &gone)
            .await
            .unwrap()
            .is_none()
    );

    // The same delivery again is a replay; the promotion it might hide is not applied.
    assert_eq!(deliver(&client, &url, &demote).await, 409);
    assert_eq!(deliver(&client, &url, &delete).await, 409);
    // A copy captured and sent later, past the tolerance, is stale.
    clock.advance(301);
    assert_eq!(deliver(&client, &url, &demote).await, 401);
    let admin = ExternalSubject::parse("user_admin").unwrap();
    let stored = users.find_by_external_id(IDP, &admin).await.unwrap();
    assert_eq!(stored.unwrap().user.role, UserRole::User);
    assert_eq!(users.len(), 1);
}
