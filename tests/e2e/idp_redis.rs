//! The shared user-lookup cache in Redis behind the facade (feature
//! `redis`): two instances, each with its own hybrid layer and webhook
//! endpoint over loopback, put `tessera::RedisUserCache` in front of one
//! directory. A provider user one instance looked up is served to the
//! other from Redis; a webhook's update or deletion through either reaches
//! both instances' next lookups, since it goes through the shared entry.
//!
//! Redis at `REDIS_URL` (default 127.0.0.1:6379). Without one the test
//! says it is skipped and passes, unless `TESSERA_REQUIRE_REDIS=1` (set by
//! `scripts/test.sh`). Each run works under a key prefix of its own; its
//! keys expire within ten minutes.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use tessera::application::ResolveUser;
use tessera::application::external::ExternalUserDirectory;
use tessera::axum::{ProviderUser, Session};
use tessera::domain::{Requirement, RoutePolicy, RouteRule};
use tessera::infrastructure::identity::InMemoryExternalUserDirectory;
use tessera::{InMemoryUserDirectory, RedisUserCache, UserRole};

use crate::idp_webhooks::{
    Provider, SECRET, deletion_event, deliver, sessions_on, sign, user_event, webhook_endpoint,
};
use crate::support::{Counting, ManualClock, START};

/// The Redis URL, or `None` (after saying so) when the test is to be
/// skipped.
fn redis_url() -> Option<String> {
    if std::env::var("TESSERA_SKIP_REDIS").as_deref() == Ok("1") {
        assert!(
            std::env::var("TESSERA_REQUIRE_REDIS").as_deref() != Ok("1"),
            "TESSERA_SKIP_REDIS=1 and TESSERA_REQUIRE_REDIS=1"
        );
        let _ = writeln!(std::io::stderr(), "skipped: TESSERA_SKIP_REDIS=1");
        return None;
    }
    Some(std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()))
}

async fn who(session: Session, provider: Option<ProviderUser<UserRole>>) -> String {
    match provider {
        Some(user) => format!("provider {} {}", user.user_id(), user.role()),
        None => format!("session {}", session.user_id()),
    }
}

/// One instance: its own session manager, hybrid layer and webhook
/// endpoint, its own connection to the shared cache.
struct Instance {
    me: String,
    hook: String,
}

impl Instance {
    async fn spawn(
        cache: RedisUserCache<UserRole>,
        clock: &Arc<ManualClock>,
        provider: &Provider,
    ) -> Self {
        let cache: Arc<dyn ExternalUserDirectory<UserRole>> = Arc::new(cache);
        let sessions = sessions_on(clock, Arc::new(InMemoryUserDirectory::new()));
        let policy = RoutePolicy::builder()
            .rule(RouteRule::new("/me", Requirement::Authenticated))
            .build()
            .unwrap();
        let layer = sessions
            .hybrid_layer(
                policy,
                provider.verifier.clone(),
                ResolveUser::new(cache.clone()),
            )
            .unwrap();
        let me = Router::new().route("/me", get(who)).layer(layer);
        let hook = webhook_endpoint(cache, &sessions, clock);
        Self {
            me: format!("http://{}/me", crate::http_support::serve(me).await),
            hook: format!(
                "http://{}/webhooks/users",
                crate::http_support::serve(hook).await
            ),
        }
    }
}

#[tokio::test]
async fn two_instances_share_provider_user_lookups_in_redis_and_webhooks_reach_both() {
    let Some(url) = redis_url() else { return };
    let clock = ManualClock::starting_at(START);
    let users = Arc::new(Counting {
        inner: InMemoryExternalUserDirectory::new().with_clock(clock.clone()),
        finds: AtomicU64::new(0),
    });
    let prefix = format!(
        "tessera_e2e:users:{:08x}",
        uuid::Uuid::now_v7().as_u128() as u32
    );
    let connect = || async {
        let inner: Arc<dyn ExternalUserDirectory<UserRole>> = users.clone();
        match RedisUserCache::connect(inner, &url).await {
            Ok(cache) => Some(cache.with_prefix(&prefix)),
            Err(e) => {
                assert!(
                    std::env::var("TESSERA_REQUIRE_REDIS").as_deref() != Ok("1"),
                    "no Redis at {url} ({e}), and TESSERA_REQUIRE_REDIS=1"
                );
                let _ = writeln!(std::io::stderr(), "skipped: no Redis at {url} ({e})");
                None
            }
        }
    };
    let (Some(first), Some(second)) = (connect().await, connect().await) else {
        return;
    };
    let provider = Provider::new(&clock);
    let a = Instance::spawn(first, &clock, &provider).await;
    let b = Instance::spawn(second, &clock, &provider).await;
    let client = reqwest::Client::new();
    let token = provider.token("user_fleet", "admin", START - 5);
    let me = |instance: &Instance| {
        let request = client.get(&instance.me).bearer_auth(&token).send();
        async move {
            let response = request.await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let finds = || users.finds.load(Ordering::SeqCst);

    // Signed in through A: the local user is created and cached in Redis.
    let (status, body) = me(&a).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with(" admin"), "{body}");
    let looked_up = finds();

    // B is served the same user from Redis: no lookup reaches the directory.
    assert_eq!(me(&b).await, (200, body.clone()));
    assert_eq!(finds(), looked_up, "served from the shared cache");

    // Demoted by a webhook delivered to B: the write goes through B's cache
    // (the shared entry is dropped before the directory is written, then
    // holds the record as stored), so A's next lookup has the new role.
    let demote = user_event("user.updated", "user_fleet", "member", START * 1000);
    let delivery = sign(SECRET, "msg_demote", clock.seconds(), &demote);
    assert_eq!(deliver(&client, &b.hook, &delivery).await, 204);
    let (status, demoted) = me(&a).await;
    assert_eq!(status, 200, "{demoted}");
    assert!(demoted.ends_with(" user"), "{demoted}");
    assert_eq!(me(&b).await, (200, demoted));

    // Deleted by a webhook delivered to A: B refuses the (unexpired)
    // provider token, recreates no one, and serves nothing from the cache.
    clock.advance(1);
    let deleted = deletion_event("user_fleet", (START + 1) * 1000);
    let delivery = sign(SECRET, "msg_deleted", clock.seconds(), &deleted);
    assert_eq!(deliver(&client, &a.hook, &delivery).await, 204);
    for instance in [&b, &a] {
        assert_eq!(me(instance).await.0, 401);
    }
    assert_eq!(users.inner.len(), 0, "not recreated");
}
