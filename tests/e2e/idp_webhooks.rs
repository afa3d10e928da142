//! Identity-provider user webhooks end to end over loopback HTTP: deliveries
//! signed as Svix signs them (computed here with aws-lc-rs, not through
//! tessera), applied to the directory, with their effect on sessions; and,
//! since providers deliver at least once and out of order, late and repeated
//! deliveries, and a deleted user's provider token at the exchange endpoint
//! and the hybrid layer.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::Router;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tessera::application::external::{
    AsOf, ExternalProfile, ExternalSubject, ExternalUser, ExternalUserDirectory, UpsertOutcome,
};
use tessera::application::ports::{SessionTokenCodec, UserDirectory};
use tessera::application::{
    ApplyUserEvent, CachedExternalUserDirectory, EstablishRequest, ResolveUser, RotationNeed,
    UserCachePolicy, VerifyError,
};
use tessera::axum::{ProviderUser, Session, exchange_token, user_webhook};
use tessera::domain::{Requirement, RoutePolicy, RouteRule};
use tessera::http::{UserWebhook, WebhookSecret, WebhookVerifier};
use tessera::infrastructure::identity::{
    ClaimMapping, IdentityProvider, InMemoryExternalUserDirectory, JsonUserEventDecoder,
    JwksTokenVerifier, MissingRole, TokenProfile,
};
use tessera::infrastructure::jose;
use tessera::{JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};

use crate::support::{AUDIENCE, ISSUER, ManualClock, START, lifetimes};

pub(crate) const IDP: &str = "https://clerk.test";
pub(crate) const SECRET: &[u8] = b"webhook-secret-of-32-bytes-long!";
const OTHER_SECRET: &[u8] = b"a-secret-the-endpoint-never-knew";

/// One delivery: its headers as Svix sends them, and its body.
pub(crate) struct Signed {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

pub(crate) fn sign(secret: &[u8], id: &str, timestamp: i64, payload: &Value) -> Signed {
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

pub(crate) async fn deliver(client: &reqwest::Client, url: &str, delivery: &Signed) -> u16 {
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
    let hooks = Webhooks::spawn().await;
    let users = &hooks.users;

    // Two provider users, known locally, each signed in.
    let mut tokens = Vec::new();
    for (subject, role) in [
        ("user_admin", UserRole::Admin),
        ("user_gone", UserRole::User),
    ] {
        let outcome = users
            .upsert_external(ExternalProfile {
                issuer: IDP.into(),
                subject: ExternalSubject::parse(subject).unwrap(),
                role,
                email: None,
                name: None,
                enabled: None,
                as_of: AsOf::Unknown,
            })
            .await
            .unwrap();
        let UpsertOutcome::Written(written) = outcome else {
            panic!("expected a write, got {outcome:?}");
        };
        tokens.push(hooks.sign_in(&written.current));
    }
    hooks.clock.advance(1);
    let now = hooks.clock.seconds();
    let (client, url) = (&hooks.client, hooks.url.as_str());

    // A forged promotion is refused and changes nothing.
    let forged = sign(
        OTHER_SECRET,
        "msg_forged",
        now,
        &json!({"type": "user.updated", "data": clerk_user("user_gone", "admin")}),
    );
    assert_eq!(deliver(client, url, &forged).await, 401);
    let gone = ExternalSubject::parse("user_gone").unwrap();
    let stored = users.find_by_external_id(IDP, &gone).await.unwrap();
    assert_eq!(stored.unwrap().user.role, UserRole::User);
    assert!(
        hooks
            .sessions
            .verify()
            .execute(tokens[1].expose_secret())
            .is_ok()
    );

    // A signed update demotes the admin: their next rotation carries the new role.
    let demote = sign(
        SECRET,
        "msg_demote",
        now,
        &json!({"type": "user.updated", "data": clerk_user("user_admin", "member")}),
    );
    assert_eq!(deliver(client, url, &demote).await, 204);
    let rotated = hooks
        .sessions
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
    assert_eq!(deliver(client, url, &delete).await, 204);
    assert!(matches!(
        hooks.sessions.verify().execute(tokens[1].expose_secret()),
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
    assert_eq!(deliver(client, url, &demote).await, 409);
    assert_eq!(deliver(client, url, &delete).await, 409);
    // A copy captured and sent later, past the tolerance, is stale.
    hooks.clock.advance(301);
    assert_eq!(deliver(client, url, &demote).await, 401);
    let admin = ExternalSubject::parse("user_admin").unwrap();
    let stored = users.find_by_external_id(IDP, &admin).await.unwrap();
    assert_eq!(stored.unwrap().user.role, UserRole::User);
    assert_eq!(users.len(), 1);
}

// Late, repeated and out-of-order deliveries, as providers make them.

/// Clerk's `updated_at` / envelope `timestamp` unit: milliseconds.
const T0_MS: i64 = START * 1000;

pub(crate) fn mapping() -> ClaimMapping<UserRole> {
    ClaimMapping::new(
        "public_metadata.role",
        MissingRole::LeastPrivilege(UserRole::User),
    )
    .unwrap()
    .map("admin", UserRole::Admin)
    .unwrap()
    .map("member", UserRole::User)
    .unwrap()
}

/// A Clerk event: a user's state as of `updated_at_ms`, in an envelope made
/// a little later.
pub(crate) fn user_event(kind: &str, id: &str, role: &str, updated_at_ms: i64) -> Value {
    let mut data = clerk_user(id, role);
    data["updated_at"] = json!(updated_at_ms);
    json!({"type": kind, "object": "event", "timestamp": updated_at_ms + 7, "data": data})
}

/// Clerk's deletion: the id only, the event time in the envelope.
pub(crate) fn deletion_event(id: &str, timestamp_ms: i64) -> Value {
    json!({
        "type": "user.deleted", "object": "event", "timestamp": timestamp_ms,
        "data": {"id": id, "deleted": true, "object": "user"},
    })
}

/// A webhook endpoint over loopback and the session manager it acts on,
/// both on one directory: the in-memory one behind the user cache, as a
/// deployment with the hybrid layer composes them.
struct Webhooks {
    clock: Arc<ManualClock>,
    users: Arc<InMemoryExternalUserDirectory<UserRole>>,
    directory: Arc<CachedExternalUserDirectory<UserRole>>,
    sessions: Tessera<UserRole>,
    url: String,
    client: reqwest::Client,
}

impl Webhooks {
    async fn spawn() -> Self {
        let clock = ManualClock::starting_at(START);
        let users =
            Arc::new(InMemoryExternalUserDirectory::<UserRole>::new().with_clock(clock.clone()));
        let directory = Arc::new(CachedExternalUserDirectory::new(
            users.clone(),
            UserCachePolicy::new(100, time::Duration::seconds(60)),
            clock.clone(),
        ));
        let sessions = sessions_on(&clock, users.clone());
        let addr =
            crate::http_support::serve(webhook_endpoint(directory.clone(), &sessions, &clock))
                .await;
        Self {
            clock,
            users,
            directory,
            sessions,
            url: format!("http://{addr}/webhooks/users"),
            client: reqwest::Client::new(),
        }
    }

    /// Delivers `payload` as message `id`, signed now; the status.
    async fn deliver(&self, id: &str, payload: &Value) -> u16 {
        let delivery = sign(SECRET, id, self.clock.seconds(), payload);
        deliver(&self.client, &self.url, &delivery).await
    }

    async fn find(&self, id: &str) -> Option<ExternalUser<UserRole>> {
        self.directory
            .find_by_external_id(IDP, &ExternalSubject::parse(id).unwrap())
            .await
            .unwrap()
    }

    /// A session for the stored user `id`, as an exchange would issue.
    fn sign_in(&self, id: &ExternalUser<UserRole>) -> tessera::application::SessionToken {
        self.sessions
            .establish()
            .execute(EstablishRequest {
                user_id: id.user.user_id,
                role: id.user.role,
                capabilities: id.user.capabilities.clone(),
                tenant: None,
                authenticated_at: None,
                authentication: Default::default(),
            })
            .unwrap()
            .token
    }

    /// The exchange endpoint, over loopback, for `provider`'s tokens, on
    /// this harness's sessions and (cached) directory; its URL.
    async fn exchange_endpoint(&self, provider: &Provider) -> String {
        let exchange = Router::new()
            .route("/token", post(exchange_token::<UserRole>))
            .with_state(
                self.sessions
                    .exchange(provider.verifier.clone(), self.directory.clone()),
            );
        format!(
            "http://{}/token",
            crate::http_support::serve(exchange).await
        )
    }

    /// Posts `provider_token` to the exchange endpoint at `url`.
    async fn exchange(&self, url: &str, provider_token: &str) -> reqwest::Response {
        self.client
            .post(url)
            .bearer_auth(provider_token)
            .send()
            .await
            .unwrap()
    }

    /// Exchanges `provider_token`, which must succeed: the session's role.
    async fn exchanged_role(&self, url: &str, provider_token: &str) -> UserRole {
        let response = self.exchange(url, provider_token).await;
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        // The claims as issued: a webhook of the same second may already
        // have marked the user's permissions changed, so the strict verify
        // would ask for a rotation first.
        let claims: tessera::application::SessionTokenClaims<UserRole> = SessionTokenCodec::decode(
            self.sessions.codec(),
            body["access_token"].as_str().unwrap(),
        )
        .unwrap();
        *claims.session().role()
    }
}

/// A session manager on `clock`, rotating with `users`.
pub(crate) fn sessions_on(
    clock: &Arc<ManualClock>,
    users: Arc<dyn UserDirectory<UserRole>>,
) -> Tessera<UserRole> {
    Tessera::builder(
        KeyRing::new(SigningKey::generate(JwsAlgorithm::EdDsa, "s1").unwrap()),
        ISSUER,
        AUDIENCE,
    )
    .lifetimes(lifetimes())
    .clock(clock.clone())
    .user_directory(users)
    .build()
}

/// The user webhook endpoint (`/webhooks/users`, Svix-signed with
/// [`SECRET`]), applying events to `directory` and `sessions`.
pub(crate) fn webhook_endpoint(
    directory: Arc<dyn ExternalUserDirectory<UserRole>>,
    sessions: &Tessera<UserRole>,
    clock: &Arc<ManualClock>,
) -> Router {
    let hook = UserWebhook::new(
        WebhookVerifier::new(
            WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode(SECRET))).unwrap(),
        )
        .with_clock(clock.clone()),
        Arc::new(JsonUserEventDecoder::new(IDP, mapping())),
        ApplyUserEvent::new(directory, sessions.revoke().clone()),
    );
    Router::new()
        .route("/webhooks/users", post(user_webhook::<UserRole>))
        .with_state(hook)
}

/// The identity provider's token signer, and a verifier of its tokens on
/// the harness's clock.
pub(crate) struct Provider {
    key: SigningKey,
    pub(crate) verifier: Arc<JwksTokenVerifier<UserRole>>,
}

impl Provider {
    pub(crate) fn new(clock: &Arc<ManualClock>) -> Self {
        let key = SigningKey::generate(JwsAlgorithm::Es256, "idp-1").unwrap();
        let verifier = Arc::new(JwksTokenVerifier::new(
            IdentityProvider::builder(IDP, TokenProfile::access(mapping()).skip_audience_check())
                .algorithms(&[JwsAlgorithm::Es256])
                .clock(clock.clone())
                .static_keys(KeyRing::verify_only(vec![key.verification_key()]).unwrap())
                .build()
                .unwrap(),
        ));
        Self { key, verifier }
    }

    /// A token for `sub` with `role`, minted at `iat` (Unix seconds) and
    /// valid for an hour after.
    pub(crate) fn token(&self, sub: &str, role: &str, iat: i64) -> String {
        let claims = json!({
            "iss": IDP, "sub": sub, "iat": iat, "exp": iat + 3_600,
            "public_metadata": {"role": role},
        });
        let header = jose::encode_header(&self.key, "JWT");
        jose::sign_compact(&self.key, &header, claims.to_string().as_bytes()).unwrap()
    }
}

#[tokio::test]
async fn out_of_order_updates_keep_the_newer_role() {
    let hooks = Webhooks::spawn().await;
    let created = user_event("user.created", "user_order", "admin", T0_MS);
    assert_eq!(hooks.deliver("msg_created", &created).await, 204);
    let admin = hooks.find("user_order").await.unwrap();
    assert_eq!(admin.user.role, UserRole::Admin);
    let token = hooks.sign_in(&admin);

    // Demoted at +2 s, and that update arrives first ...
    let demote = user_event("user.updated", "user_order", "member", T0_MS + 2_000);
    assert_eq!(hooks.deliver("msg_demote", &demote).await, 204);
    // ... then a promotion made at +1 s, delayed in the provider's queue.
    let late = user_event("user.updated", "user_order", "admin", T0_MS + 1_000);
    assert_eq!(
        hooks.deliver("msg_late", &late).await,
        204,
        "accepted, so the provider stops retrying"
    );

    let stored = hooks.find("user_order").await.unwrap();
    assert_eq!(stored.user.role, UserRole::User, "the newer role stands");
    assert_eq!(stored.user.user_id, admin.user.user_id);
    assert_eq!(hooks.users.len(), 1);
    // The admin's session rotates to the newer role, not back to admin.
    let rotated = hooks
        .sessions
        .rotate()
        .execute(token.expose_secret())
        .await
        .unwrap();
    assert_eq!(rotated.session.role(), &UserRole::User);
}

#[tokio::test]
async fn an_update_delivered_after_the_deletion_does_not_bring_the_user_back() {
    let hooks = Webhooks::spawn().await;
    let created = user_event("user.created", "user_gone", "member", T0_MS);
    assert_eq!(hooks.deliver("msg_created", &created).await, 204);
    let token = hooks.sign_in(&hooks.find("user_gone").await.unwrap());

    assert_eq!(
        hooks
            .deliver("msg_deleted", &deletion_event("user_gone", T0_MS + 3_000))
            .await,
        204
    );
    assert!(matches!(
        hooks.sessions.verify().execute(token.expose_secret()),
        Err(VerifyError::Revoked(_))
    ));

    // An update made before the deletion, delivered after it; and the
    // creation, redelivered under a new id.
    let late = user_event("user.updated", "user_gone", "admin", T0_MS + 2_000);
    assert_eq!(hooks.deliver("msg_late", &late).await, 204);
    assert_eq!(hooks.deliver("msg_created_again", &created).await, 204);

    assert_eq!(hooks.find("user_gone").await, None, "still deleted");
    assert_eq!(hooks.users.len(), 0);
    assert_eq!(hooks.users.tombstones(), 1);
    assert!(matches!(
        hooks.sessions.verify().execute(token.expose_secret()),
        Err(VerifyError::Revoked(_))
    ));
}

#[tokio::test]
async fn a_retried_identical_event_is_harmless() {
    let hooks = Webhooks::spawn().await;
    let created = user_event("user.created", "user_retry", "member", T0_MS);
    assert_eq!(hooks.deliver("msg_created", &created).await, 204);
    let promote = user_event("user.updated", "user_retry", "admin", T0_MS + 1_000);
    assert_eq!(hooks.deliver("msg_promote", &promote).await, 204);
    let admin = hooks.find("user_retry").await.unwrap();
    assert_eq!(admin.user.role, UserRole::Admin);
    hooks.clock.advance(1);
    let token = hooks.sign_in(&admin);
    hooks.clock.advance(1);

    // The same event again under another message id, which the replay
    // cache cannot recognise (another instance got the first, or it has
    // left the window): applied again, to the same effect.
    assert_eq!(hooks.deliver("msg_promote_again", &promote).await, 204);
    assert_eq!(hooks.find("user_retry").await, Some(admin.clone()));
    assert_eq!(hooks.users.len(), 1);
    let verified = hooks
        .sessions
        .verify()
        .execute(token.expose_secret())
        .unwrap();
    assert_eq!(
        verified.rotation(),
        RotationNeed::NotDue,
        "no permissions-changed mark: nothing changed"
    );
    assert_eq!(verified.session().role(), &UserRole::Admin);

    // A deletion twice: the user is gone once, and stays gone.
    let deleted = deletion_event("user_retry", T0_MS + 5_000);
    assert_eq!(hooks.deliver("msg_deleted", &deleted).await, 204);
    assert_eq!(hooks.deliver("msg_deleted_again", &deleted).await, 204);
    assert_eq!(hooks.find("user_retry").await, None);
    assert_eq!(hooks.users.tombstones(), 1);
}

async fn who(session: Session, provider: Option<ProviderUser<UserRole>>) -> String {
    match provider {
        Some(user) => format!("provider {} {}", user.user_id(), user.role()),
        None => format!("session {}", session.user_id()),
    }
}

#[tokio::test]
async fn a_deleted_users_provider_token_is_refused_by_the_exchange_and_the_hybrid_layer() {
    let hooks = Webhooks::spawn().await;
    let provider = Provider::new(&hooks.clock);
    let exchange = hooks.exchange_endpoint(&provider).await;
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/me", Requirement::Authenticated))
        .build()
        .unwrap();
    let layer = hooks
        .sessions
        .hybrid_layer(
            policy,
            provider.verifier.clone(),
            ResolveUser::new(hooks.directory.clone()),
        )
        .unwrap();
    let me = Router::new().route("/me", get(who)).layer(layer);
    let me = format!("http://{}/me", crate::http_support::serve(me).await);

    let provider_token = provider.token("user_token", "member", START - 5);
    let exchange_status = || hooks.exchange(&exchange, &provider_token);
    let me_status = || async {
        hooks
            .client
            .get(&me)
            .bearer_auth(&provider_token)
            .send()
            .await
            .unwrap()
    };

    // Signed in: the exchange creates the local user, the hybrid layer finds it.
    let response = exchange_status().await;
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let session = body["access_token"].as_str().unwrap().to_owned();
    let response = me_status().await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().starts_with("provider "));
    assert_eq!(hooks.users.len(), 1);

    // Deleted at the provider, a second later.
    hooks.clock.advance(1);
    let deleted = deletion_event("user_token", (START + 1) * 1000);
    assert_eq!(hooks.deliver("msg_deleted", &deleted).await, 204);

    // The provider token is unexpired; it recreates no one and is refused.
    for response in [exchange_status().await, me_status().await] {
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }
    assert_eq!(hooks.users.len(), 0, "not recreated");
    assert_eq!(hooks.find("user_token").await, None);
    assert!(matches!(
        hooks.sessions.verify().execute(&session),
        Err(VerifyError::Revoked(_))
    ));
}

#[tokio::test]
async fn a_provider_token_older_than_a_demotion_does_not_undo_it_and_none_recreates_a_deleted_user()
{
    let hooks = Webhooks::spawn().await;
    let provider = Provider::new(&hooks.clock);
    let exchange = hooks.exchange_endpoint(&provider).await;
    // Minted as an admin a minute before the demotion, and unexpired.
    let admin_token = provider.token("user_demoted", "admin", START - 60);
    assert_eq!(
        hooks.exchanged_role(&exchange, &admin_token).await,
        UserRole::Admin
    );

    // Demoted at the provider at T = START - 10 s.
    let demote = user_event(
        "user.updated",
        "user_demoted",
        "member",
        (START - 10) * 1000,
    );
    assert_eq!(hooks.deliver("msg_demote", &demote).await, 204);

    // The admin token (iat < T) is exchanged for a session with the lower
    // role, and leaves the stored record as the webhook wrote it.
    assert_eq!(
        hooks.exchanged_role(&exchange, &admin_token).await,
        UserRole::User
    );
    let stored = hooks.find("user_demoted").await.unwrap();
    assert_eq!(stored.user.role, UserRole::User);
    assert_eq!(
        hooks
            .users
            .find_by_external_id(IDP, &stored.subject)
            .await
            .unwrap(),
        Some(stored),
        "the directory behind the cache agrees"
    );

    // A token minted after T carries the new role, and works.
    let member_token = provider.token("user_demoted", "member", START - 5);
    assert_eq!(
        hooks.exchanged_role(&exchange, &member_token).await,
        UserRole::User
    );
    assert_eq!(hooks.users.len(), 1);

    // Deleted at START; a token minted after the deletion (by the
    // provider's clock) recreates no one and is refused, like the old ones.
    let deleted = deletion_event("user_demoted", START * 1000);
    assert_eq!(hooks.deliver("msg_deleted", &deleted).await, 204);
    hooks.clock.advance(2);
    let after_deletion = provider.token("user_demoted", "admin", START + 1);
    for token in [&after_deletion, &member_token, &admin_token] {
        let response = hooks.exchange(&exchange, token).await;
        assert_eq!(response.status(), 401);
    }
    assert_eq!(hooks.users.len(), 0, "not recreated");
    assert_eq!(hooks.find("user_demoted").await, None);
}

#[tokio::test]
async fn a_demotion_whose_payload_is_undated_is_ordered_by_its_delivery_against_older_tokens() {
    let hooks = Webhooks::spawn().await;
    let provider = Provider::new(&hooks.clock);
    let exchange = hooks.exchange_endpoint(&provider).await;
    let admin_token = provider.token("user_undated", "admin", START - 60);
    assert_eq!(
        hooks.exchanged_role(&exchange, &admin_token).await,
        UserRole::Admin
    );

    // Demoted; the payload says nothing of when (no `updated_at`), and the
    // delivery is signed at START.
    let demote = json!({"type": "user.updated", "object": "event",
        "data": clerk_user("user_undated", "member")});
    assert_eq!(hooks.deliver("msg_undated", &demote).await, 204);

    // The older admin token does not write the admin role back.
    assert_eq!(
        hooks.exchanged_role(&exchange, &admin_token).await,
        UserRole::User
    );
    assert_eq!(
        hooks.find("user_undated").await.unwrap().user.role,
        UserRole::User
    );
    // A token minted after the delivery is applied as usual.
    hooks.clock.advance(5);
    let promoted = provider.token("user_undated", "admin", START + 3);
    assert_eq!(
        hooks.exchanged_role(&exchange, &promoted).await,
        UserRole::Admin
    );
}
