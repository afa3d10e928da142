//! Token profiles and subject kinds over HTTP, on every framework target
//! of the edge suite: one provider whose access tokens (`at+jwt`, audience
//! the API) and ID tokens (no `typ`, audience the client) are both
//! exchanged for sessions, while the hybrid route takes access tokens
//! only; a client-credentials (machine) token and an ID token without a
//! verified email are refused with their own codes (403), never 500.

use std::sync::Arc;

use serde_json::{Value, json};
use tessera::application::ResolveUser;
use tessera::domain::{Requirement, RoutePolicy, RouteRule};
use tessera::infrastructure::identity::{
    ClaimMapping, InMemoryExternalUserDirectory, JwksTokenVerifier, MissingRole, TokenProfile,
    TypRule,
};
use tessera::infrastructure::jose;
use tessera::{JwsAlgorithm, KeyRing, SigningKey, UserRole};

use crate::http_support::{Reply, Site, Spec, TARGETS, exchange_site, send};
use crate::support::{START, signing_key, spawn_app};

const IDP: &str = "https://idp.test";
const API: &str = "https://api.test";
const CLIENT: &str = "web-client";

/// A provider token: `typ` as given (none when `None`), signed by `key`.
fn provider_token(key: &SigningKey, typ: Option<&str>, claims: &Value) -> String {
    let header = match typ {
        Some(typ) => jose::encode_header(key, typ),
        None => {
            crate::support::b64(format!(r#"{{"alg":"RS256","kid":"{}"}}"#, key.kid()).as_bytes())
        }
    };
    jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

fn access_claims(sub: &str) -> Value {
    json!({
        "iss": IDP, "sub": sub, "aud": API, "client_id": CLIENT,
        "iat": START - 5, "exp": START + 300, "role": "admin",
    })
}

fn id_claims(email_verified: bool) -> Value {
    json!({
        "iss": IDP, "sub": "user_2abc", "aud": CLIENT, "azp": CLIENT,
        "iat": START - 5, "exp": START + 300, "auth_time": START - 60,
        "email": "ada@example.com", "email_verified": email_verified, "role": "admin",
    })
}

/// The site: a provider with an access-token profile (`at+jwt`, the
/// API's audience, roles at `role`) and an ID-token profile (the
/// client's audience, a verified email required), exchanged at `/token`
/// and admitted on `/me` (hybrid).
fn site(idp_key: &SigningKey) -> Site {
    let app = spawn_app(KeyRing::new(signing_key(JwsAlgorithm::EdDsa, "s1")));
    let mapping = || {
        ClaimMapping::new("role", MissingRole::LeastPrivilege(UserRole::User))
            .unwrap()
            .map("admin", UserRole::Admin)
            .unwrap()
            .email("email")
            .unwrap()
    };
    let verifier = Arc::new(JwksTokenVerifier::new(
        app.sessions
            .identity_provider(
                IDP,
                TokenProfile::access(mapping())
                    .typ(TypRule::exactly("at+jwt"))
                    .audience(API),
            )
            .profile(
                TokenProfile::id_token(mapping())
                    .audience(CLIENT)
                    .require_claim_value("email_verified", true),
            )
            .static_keys(KeyRing::verify_only(vec![idp_key.verification_key()]).unwrap())
            .build()
            .unwrap(),
    ));
    let users = Arc::new(InMemoryExternalUserDirectory::<UserRole>::new());
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/me", Requirement::Authenticated))
        .build()
        .unwrap();
    let edge = app
        .sessions
        .edge(policy)
        .provider_tokens(verifier.clone(), ResolveUser::new(users.clone()))
        .build()
        .unwrap();
    let exchange = app.sessions.exchange(verifier, users);
    exchange_site(edge, exchange)
}

fn exchange(token: &str) -> Spec {
    Spec::post("/token").bearer(token)
}

fn issued(reply: &Reply) -> bool {
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    reply.status == 200 && body["access_token"].as_str().is_some_and(|t| !t.is_empty())
}

#[tokio::test]
async fn access_and_id_tokens_of_one_provider_are_exchanged_and_the_hybrid_route_takes_access_tokens_only()
 {
    let idp_key = signing_key(JwsAlgorithm::Rs256, "idp-1");
    let access = provider_token(&idp_key, Some("at+jwt"), &access_claims("user_2abc"));
    let id_untyped = provider_token(&idp_key, None, &id_claims(true));
    let id_typed = provider_token(&idp_key, Some("JWT"), &id_claims(true));
    for &target in TARGETS {
        let site = site(&idp_key);
        for token in [&access, &id_untyped, &id_typed] {
            let reply = send(target, site.clone(), &exchange(token)).await;
            assert!(issued(&reply), "{target:?}: {reply:?}");
        }
        let reply = send(target, site.clone(), &Spec::get("/me").bearer(&access)).await;
        assert_eq!(reply.status, 200, "{target:?}: {reply:?}");
        assert!(reply.body.ends_with(" admin"), "{target:?}: {reply:?}");
        // An ID token proves a sign-in at the client, not a grant to call
        // the API: refused as a credential.
        let reply = send(target, site.clone(), &Spec::get("/me").bearer(&id_typed)).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
        // An access token's type with the client's audience fits no profile.
        let mut crossed = access_claims("user_2abc");
        crossed["aud"] = json!(CLIENT);
        let crossed = provider_token(&idp_key, Some("at+jwt"), &crossed);
        let reply = send(target, site.clone(), &exchange(&crossed)).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
    }
}

#[tokio::test]
async fn a_machine_token_and_an_unmet_required_claim_are_refused_with_their_own_codes() {
    let idp_key = signing_key(JwsAlgorithm::Rs256, "idp-1");
    // Client credentials: the token's subject is the client itself.
    let machine = provider_token(&idp_key, Some("at+jwt"), &access_claims(CLIENT));
    let unverified = provider_token(&idp_key, None, &id_claims(false));
    for &target in TARGETS {
        let site = site(&idp_key);
        let reply = send(target, site.clone(), &exchange(&machine)).await;
        reply.assert_error(403, None, "machine_token");
        let reply = send(target, site.clone(), &Spec::get("/me").bearer(&machine)).await;
        reply.assert_error(403, None, "machine_token");
        let reply = send(target, site.clone(), &exchange(&unverified)).await;
        reply.assert_error(403, None, "required_claim");
    }
}
