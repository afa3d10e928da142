//! Every response of the HTTP edge, through the real codec, on every
//! framework adapter: axum in process (`oneshot`) and over a loopback
//! socket, and actix-web over a loopback socket.

use http::StatusCode;
use tessera::UserRole;
use tessera::application::RevokeRequest;
use tessera::application::ports::{DirectoryUser, WatermarkScope};
use tessera::domain::TenantId;

use crate::http_support::*;
use crate::support::{alice, caps};

#[tokio::test]
async fn a_guest_is_served_on_a_public_route() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let reply = send(target, router, &Spec::get("/")).await;
        assert_eq!(reply.status, StatusCode::OK, "{target:?}");
        assert_eq!(reply.body, "guest");
        assert!(reply.session_cookie().is_none());
    }
}

#[tokio::test]
async fn a_protected_route_without_a_credential_is_401_with_a_bare_challenge() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let reply = send(target, router, &Spec::get("/me")).await;
        reply.assert_error(401, Some("Bearer"), "unauthenticated");
    }
}

#[tokio::test]
async fn a_forged_token_is_401_invalid_token() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let mut token = app.alice_token().into_bytes();
        // A signature byte flipped (in the middle: no padding bits there).
        let i = token.len() - 20;
        token[i] = if token[i] == b'A' { b'B' } else { b'A' };
        let token = String::from_utf8(token).unwrap();
        let reply = send(target, router, &Spec::get("/me").bearer(&token)).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
        assert!(
            reply.session_cookie().is_none(),
            "a bearer client has no cookie to clear"
        );
    }
}

#[tokio::test]
async fn an_expired_cookie_is_401_and_the_cookie_is_cleared() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        app.clock.advance(15 * 60 + 31);
        let reply = send(target, router, &Spec::get("/me").cookie(&token)).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
        reply.assert_clears_cookie();
    }
}

#[tokio::test]
async fn a_valid_session_reaches_the_handler_with_its_typed_session() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let reply = send(target, router, &Spec::get("/me").cookie(&token)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, format!("{} user", alice()));
        assert!(
            reply.session_cookie().is_none(),
            "fresh tokens are not rotated"
        );
        assert!(reply.header("x-session-token").is_none());
    }
}

#[tokio::test]
async fn a_browser_route_redirects_a_guest_to_login_with_a_relative_return_to() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let reply = send(target, router, &Spec::get("/app/home?tab=a%20b")).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{target:?}");
        assert_eq!(
            reply.header("location"),
            Some("/login?return_to=%2Fapp%2Fhome%3Ftab%3Da%2520b")
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert!(reply.header("www-authenticate").is_none());
        assert_eq!(reply.body, "");
    }
}

#[tokio::test]
async fn an_insufficient_role_is_403_insufficient_scope() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let reply = send(target, router, &Spec::get("/admin/panel").bearer(&token)).await;
        reply.assert_error(
            403,
            Some("Bearer error=\"insufficient_scope\""),
            "insufficient_scope",
        );
    }
}

#[tokio::test]
async fn another_tenants_route_is_403_and_the_sessions_own_is_served() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let other = send(
            target,
            router.clone(),
            &Spec::get("/t/globex/billing").bearer(&token),
        )
        .await;
        other.assert_error(
            403,
            Some("Bearer error=\"insufficient_scope\""),
            "insufficient_scope",
        );
        let own = send(target, router, &Spec::get("/t/acme/billing").bearer(&token)).await;
        assert_eq!(own.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_route_denied_to_everyone_is_403_forbidden() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let reply = send(target, router, &Spec::get("/closed")).await;
        reply.assert_error(403, None, "forbidden");
    }
}

#[tokio::test]
async fn an_unmatched_route_is_forbidden_even_to_a_signed_in_user() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let reply = send(target, router, &Spec::get("/headers").bearer(&token)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_guest_only_page_sends_a_signed_in_user_on() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let home = send(target, router.clone(), &Spec::get("/login").cookie(&token)).await;
        assert_eq!(home.status, StatusCode::SEE_OTHER);
        assert_eq!(home.header("location"), Some("/"));
        let back = send(
            target,
            router.clone(),
            &Spec::get("/login?return_to=%2Fapp%2Fhome").cookie(&token),
        )
        .await;
        assert_eq!(back.header("location"), Some("/app/home"));
        let evil = send(
            target,
            router,
            &Spec::get("/login?return_to=%2F%2Fevil.example").cookie(&token),
        )
        .await;
        assert_eq!(evil.header("location"), Some("/"), "no open redirect");
    }
}

#[tokio::test]
async fn two_different_credentials_are_400_invalid_request() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let (one, two) = (app.alice_token(), {
            app.clock.advance(1);
            app.alice_token()
        });
        let reply = send(target, router, &Spec::get("/me").bearer(&one).cookie(&two)).await;
        reply.assert_error(
            400,
            Some("Bearer error=\"invalid_request\""),
            "invalid_request",
        );
    }
}

#[tokio::test]
async fn several_authorization_headers_are_400_invalid_request() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let spec = Spec::get("/me").bearer(&token).bearer(&token);
        let reply = send(target, router, &spec).await;
        reply.assert_error(
            400,
            Some("Bearer error=\"invalid_request\""),
            "invalid_request",
        );
    }
}

#[tokio::test]
async fn an_oversized_token_is_401_invalid_token() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let huge = "a".repeat(9 * 1024);
        let reply = send(target, router, &Spec::get("/me").bearer(&huge)).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
    }
}

#[tokio::test]
async fn a_malformed_session_cookie_is_401_invalid_token_and_cleared() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let spec = Spec::get("/me").header("cookie", &format!("{COOKIE}=%7B%22alg%22%7D"));
        let reply = send(target, router, &spec).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
        reply.assert_clears_cookie();
    }
}

#[tokio::test]
async fn a_browser_signs_in_with_the_promised_cookie_and_signs_out_revoked_and_cleared() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let signed_in = send(target, router.clone(), &Spec::post("/login")).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{target:?}");
        assert_eq!(
            signed_in.header("location"),
            Some("/"),
            "the signed-in page"
        );
        assert_eq!(signed_in.header("cache-control"), Some("no-store"));
        let cookie = signed_in.session_cookie().unwrap();
        let token = cookie.value().to_owned();
        assert!(!signed_in.body.contains(&token), "no token in the body");
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax));
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.domain(), None, "host-only");
        assert_eq!(cookie.max_age(), Some(cookie::time::Duration::seconds(900)));
        let me = send(target, router.clone(), &Spec::get("/me").cookie(&token)).await;
        assert_eq!(
            me.status,
            StatusCode::OK,
            "{target:?}: the cookie is a session"
        );

        let out = send(
            target,
            router.clone(),
            &Spec::post("/logout").cookie(&token),
        )
        .await;
        assert_eq!(out.status, StatusCode::SEE_OTHER, "{target:?}");
        assert_eq!(out.header("location"), Some("/login"), "the sign-in page");
        assert_eq!(out.header("cache-control"), Some("no-store"));
        out.assert_clears_cookie();

        let after = send(target, router, &Spec::get("/me").cookie(&token)).await;
        after.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
    }
}

#[tokio::test]
async fn a_browser_returns_to_a_safe_page_after_signing_in_or_out_and_never_to_another_site() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let back = send(
            target,
            router.clone(),
            &Spec::post("/login?return_to=%2Fapp%2Fhome%3Ftab%3D2"),
        )
        .await;
        assert_eq!(back.status, StatusCode::SEE_OTHER);
        assert_eq!(
            back.header("location"),
            Some("/app/home?tab=2"),
            "{target:?}"
        );
        let token = back.session_cookie().unwrap().value().to_owned();
        for evil in [
            "%2F%2Fevil.example",
            "https%3A%2F%2Fevil.example",
            "%2F%5Cevil.example",
        ] {
            let reply = send(
                target,
                router.clone(),
                &Spec::post(&format!("/login?return_to={evil}")),
            )
            .await;
            assert_eq!(reply.header("location"), Some("/"), "{target:?}: {evil}");
            assert!(reply.session_cookie().is_some());
        }
        let out = send(
            target,
            router,
            &Spec::post("/logout?return_to=%2Fbye").cookie(&token),
        )
        .await;
        assert_eq!(out.header("location"), Some("/bye"), "{target:?}");
        out.assert_clears_cookie();
    }
}

#[tokio::test]
async fn sign_in_gives_the_session_what_the_directory_holds_and_refuses_whom_it_does_not_let_in() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let signed_in = send(target, router.clone(), &Spec::post("/api/login")).await;
        assert_eq!(signed_in.status, StatusCode::OK, "{target:?}");
        let body: serde_json::Value = serde_json::from_str(&signed_in.body).unwrap();
        let token = body["access_token"].as_str().unwrap();
        let session = app.sessions.verify().execute(token).unwrap();
        let session = session.session();
        assert_eq!(session.user_id(), &crate::support::alice());
        assert_eq!(session.role(), &UserRole::User, "{target:?}");
        assert!(session.has_capability("posts:write"), "{target:?}");
        assert!(session.is_in_tenant("acme"), "{target:?}");
        assert_eq!(session.authentication().acr(), None, "{target:?}");
        let stepped = send(
            target,
            router.clone(),
            &Spec::post("/api/login?acr=urn%3Aexample%3Amfa"),
        )
        .await;
        let body: serde_json::Value = serde_json::from_str(&stepped.body).unwrap();
        let token = body["access_token"].as_str().unwrap();
        let session = app.sessions.verify().execute(token).unwrap();
        assert_eq!(
            session
                .session()
                .authentication()
                .acr()
                .map(|acr| acr.as_str()),
            Some("urn:example:mfa"),
            "{target:?}: the handler's authentication reaches the session"
        );

        app.directory.upsert(tessera::prelude::DirectoryUser {
            enabled: false,
            ..tessera::prelude::DirectoryUser::new(crate::support::alice(), UserRole::User)
        });
        for path in ["/login", "/api/login"] {
            let refused = send(target, router.clone(), &Spec::post(path)).await;
            refused.assert_error(403, None, "forbidden");
            assert!(refused.session_cookie().is_none(), "{target:?}: {path}");
        }
        assert!(app.directory.remove(&crate::support::alice()));
        let unknown = send(target, router, &Spec::post("/login")).await;
        unknown.assert_error(403, None, "forbidden");
        assert!(unknown.session_cookie().is_none(), "{target:?}");
    }
}

#[tokio::test]
async fn nobody_is_signed_in_while_the_user_directory_cannot_answer() {
    let mut directory = tessera::application::ports::MockUserDirectory::new();
    directory.expect_find().returning(|_| {
        Err(tessera::application::ports::DirectoryError::Unavailable(
            "connection refused".into(),
        ))
    });
    let sessions = tessera::Tessera::builder(
        tessera::KeyRing::new(crate::support::signing_key(
            tessera::JwsAlgorithm::EdDsa,
            "k1",
        )),
        crate::support::ISSUER,
        crate::support::AUDIENCE,
    )
    .user_directory(std::sync::Arc::new(directory))
    .build();
    let router = site(sessions.edge(policy()).build().unwrap(), Routes::Standard);
    for &target in TARGETS {
        for path in ["/login", "/api/login"] {
            let reply = send(target, router.clone(), &Spec::post(path)).await;
            reply.assert_error(503, None, "temporarily_unavailable");
            assert!(reply.session_cookie().is_none(), "{target:?}: {path}");
        }
    }
}

/// The test site on a revocation store that answers checks with `check`
/// and fails every logout it is asked to record; and a token of Alice's.
fn with_failing_store(
    check: fn() -> Result<
        tessera::application::ports::RevocationStatus,
        tessera::application::ports::RevocationError,
    >,
) -> (Site, String) {
    use tessera::application::ports::{MockRevocationStore, RevocationError};
    let mut store = MockRevocationStore::new();
    store.expect_check().returning(move |_| check());
    store
        .expect_revoke_session()
        .returning(|_, _| Err(RevocationError::Unavailable("primary down".into())));
    let directory = std::sync::Arc::new(tessera::InMemoryUserDirectory::new());
    let sessions = tessera::Tessera::builder(
        tessera::KeyRing::new(crate::support::signing_key(
            tessera::JwsAlgorithm::EdDsa,
            "k1",
        )),
        crate::support::ISSUER,
        crate::support::AUDIENCE,
    )
    .user_directory(directory)
    .revocation_store(std::sync::Arc::new(store))
    .build();
    let token = sessions
        .establish()
        .execute(crate::support::alice_request())
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    let site = site(sessions.edge(policy()).build().unwrap(), Routes::Standard);
    (site, token)
}

#[tokio::test]
async fn sign_out_that_cannot_be_checked_or_recorded_answers_503_and_keeps_the_cookie() {
    use tessera::application::ports::{RevocationError, RevocationStatus};
    let (unchecked, unchecked_token) =
        with_failing_store(|| Err(RevocationError::Unavailable("listener down".into())));
    let (unrecorded, unrecorded_token) = with_failing_store(|| Ok(RevocationStatus::Active));
    for &target in TARGETS {
        // A route that needs no session lets the token through as a
        // guest's; the sign-out must not take that for "nothing to revoke".
        for (site, token, path) in [
            (&unchecked, &unchecked_token, "/out"),
            (&unchecked, &unchecked_token, "/logout"),
            (&unrecorded, &unrecorded_token, "/out"),
            (&unrecorded, &unrecorded_token, "/logout"),
        ] {
            let reply = send(target, site.clone(), &Spec::post(path).cookie(token)).await;
            reply.assert_error(503, None, "temporarily_unavailable");
            assert!(
                reply.session_cookie().is_none(),
                "{target:?} {path}: the cookie is kept"
            );
        }
    }
}

#[tokio::test]
async fn sign_out_on_a_route_that_needs_no_session_revokes_the_token_it_presents() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let out = send(target, router.clone(), &Spec::post("/out").bearer(&token)).await;
        assert_eq!(out.status, StatusCode::NO_CONTENT, "{target:?}");
        let after = send(target, router.clone(), &Spec::get("/me").bearer(&token)).await;
        after.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
        let other = app.alice_token();
        let two = send(
            target,
            router.clone(),
            &Spec::post("/out")
                .bearer(&other)
                .cookie("another.token.value"),
        )
        .await;
        two.assert_error(
            400,
            Some("Bearer error=\"invalid_request\""),
            "invalid_request",
        );
        assert!(
            two.session_cookie().is_none(),
            "{target:?}: two credentials, either may be a session: nothing cleared"
        );
        let still = send(target, router.clone(), &Spec::get("/me").bearer(&other)).await;
        assert_eq!(still.status, StatusCode::OK, "{target:?}");
        let forged = send(target, router, &Spec::post("/out").bearer("not.a.token")).await;
        assert_eq!(
            forged.status,
            StatusCode::NO_CONTENT,
            "{target:?}: nothing to revoke"
        );
    }
}

#[tokio::test]
async fn an_api_client_gets_its_token_as_json_without_a_cookie_and_signs_out_with_it() {
    for &target in TARGETS {
        let (_, router) = fresh();
        let signed_in = send(target, router.clone(), &Spec::post("/api/login")).await;
        assert_eq!(signed_in.status, StatusCode::OK, "{target:?}");
        assert_eq!(signed_in.header("cache-control"), Some("no-store"));
        assert_eq!(signed_in.header("content-type"), Some("application/json"));
        assert!(
            signed_in.session_cookie().is_none(),
            "no cookie for an API client"
        );
        let body: serde_json::Value = serde_json::from_str(&signed_in.body).unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        let token = body["access_token"].as_str().unwrap().to_owned();
        let me = send(target, router.clone(), &Spec::get("/me").bearer(&token)).await;
        assert_eq!(me.status, StatusCode::OK, "{target:?}");

        let out = send(
            target,
            router.clone(),
            &Spec::post("/api/logout").bearer(&token),
        )
        .await;
        assert_eq!(out.status, StatusCode::NO_CONTENT, "{target:?}");
        assert_eq!(out.header("cache-control"), Some("no-store"));
        let after = send(target, router, &Spec::get("/me").bearer(&token)).await;
        after.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
    }
}

#[tokio::test]
async fn a_due_cookie_session_slides_with_a_new_cookie_for_the_remaining_life() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        app.clock.advance(5 * 60);
        let reply = send(target, router.clone(), &Spec::get("/me").cookie(&token)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let cookie = reply.session_cookie().expect("a rotated cookie");
        assert_ne!(cookie.value(), token);
        assert_eq!(cookie.max_age(), Some(cookie::time::Duration::seconds(900)));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let rotated = app.sessions.verify().execute(cookie.value()).unwrap();
        assert_eq!(
            rotated.session().issued_at(),
            crate::support::at(app.clock.seconds())
        );

        // The new cookie is fresh: the next request is not rotated again.
        let next = send(target, router, &Spec::get("/me").cookie(cookie.value())).await;
        assert_eq!(next.status, StatusCode::OK);
        assert!(next.session_cookie().is_none());
    }
}

#[tokio::test]
async fn a_due_bearer_session_gets_its_new_token_in_x_session_token() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        app.clock.advance(6 * 60);
        let reply = send(target, router, &Spec::get("/me").bearer(&token)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let new = reply.header("x-session-token").expect("a rotated token");
        assert!(app.sessions.verify().execute(new).is_ok());
        assert!(reply.session_cookie().is_none());
    }
}

#[tokio::test]
async fn rotation_reaches_the_client_even_when_the_handler_fails() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        app.clock.advance(5 * 60);
        let reply = send(target, router, &Spec::get("/app/fail").cookie(&token)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.session_cookie().is_some());
    }
}

#[tokio::test]
async fn changed_permissions_apply_on_the_next_request() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let before = send(
            target,
            router.clone(),
            &Spec::get("/admin/panel").cookie(&token),
        )
        .await;
        assert_eq!(before.status, StatusCode::FORBIDDEN);

        app.clock.advance(1);
        app.directory.upsert(DirectoryUser {
            user_id: alice(),
            role: UserRole::Admin,
            capabilities: caps(&["posts:write"]),
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

        // The watermark covers its own second: a token rotated a second
        // later is newer than it.
        app.clock.advance(1);
        let after = send(target, router, &Spec::get("/admin/panel").cookie(&token)).await;
        assert_eq!(after.status, StatusCode::OK, "{after:?}");
        assert_eq!(after.body, format!("{} admin", alice()));
        let cookie = after.session_cookie().expect("the refreshed token");
        let refreshed = app.sessions.verify().execute(cookie.value()).unwrap();
        assert_eq!(refreshed.session().role(), &UserRole::Admin);
    }
}

#[tokio::test]
async fn a_user_removed_from_the_directory_is_signed_out_at_rotation() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        app.clock.advance(5 * 60);
        assert!(app.directory.remove(&alice()));
        let reply = send(target, router, &Spec::get("/me").cookie(&token)).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
        reply.assert_clears_cookie();
    }
}

#[tokio::test]
async fn a_user_removed_from_the_directory_is_a_guest_on_a_public_route() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        app.clock.advance(5 * 60);
        assert!(app.directory.remove(&alice()));
        let reply = send(target, router, &Spec::get("/").cookie(&token)).await;
        assert_eq!(reply.status, StatusCode::OK, "public routes read leniently");
        assert_eq!(reply.body, "guest");
        reply.assert_clears_cookie();
    }
}

#[tokio::test]
async fn a_force_logout_signs_the_user_out_everywhere() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        app.sessions
            .revoke()
            .execute(RevokeRequest::ForceLogout(WatermarkScope::User(alice())))
            .await
            .unwrap();
        let reply = send(target, router, &Spec::get("/app/home").cookie(&token)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(
            reply.header("location"),
            Some("/login?return_to=%2Fapp%2Fhome")
        );
        reply.assert_clears_cookie();
    }
}

#[tokio::test]
async fn untrustworthy_revocation_state_fails_closed_with_503() {
    use std::sync::Arc;

    use tessera::application::ports::{MockRevocationStore, RevocationError};

    for &target in TARGETS {
        let mut store = MockRevocationStore::new();
        store
            .expect_check()
            .returning(|_| Err(RevocationError::Unavailable("listener lost".into())));
        let ring = tessera::KeyRing::new(crate::support::signing_key(
            tessera::JwsAlgorithm::EdDsa,
            "k1",
        ));
        let app = crate::support::spawn_app(ring.clone());
        let sessions =
            tessera::Tessera::builder(ring, crate::support::ISSUER, crate::support::AUDIENCE)
                .lifetimes(crate::support::lifetimes())
                .clock(app.clock.clone())
                .user_directory(app.directory.clone())
                .revocation_store(Arc::new(store))
                .build();
        let token = app.sign_in_alice().token.expose_secret().to_owned();
        let edge = sessions.edge(policy()).build().unwrap();
        let router = router_with(edge);

        let protected = send(target, router.clone(), &Spec::get("/me").cookie(&token)).await;
        protected.assert_error(503, None, "temporarily_unavailable");
        assert!(
            protected.session_cookie().is_none(),
            "a 503 keeps the cookie"
        );
        let public = send(target, router, &Spec::get("/").cookie(&token)).await;
        assert_eq!(public.status, StatusCode::OK, "public routes read a guest");
        assert_eq!(public.body, "guest");
    }
}

/// A public route whose handler nonetheless takes the required `Session`.
fn lenient_route_requiring_a_session() -> (TestApp, Site) {
    use tessera::domain::{Requirement, RoutePolicy, RouteRule};
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/", Requirement::Public))
        .build()
        .unwrap();
    fresh_with(policy, Routes::PublicRequiringSession)
}

#[tokio::test]
async fn the_required_extractor_on_a_public_route_says_invalid_token_for_a_refused_credential() {
    for &target in TARGETS {
        // No credential: a bare challenge, as before.
        let (_, router) = lenient_route_requiring_a_session();
        let reply = send(target, router, &Spec::get("/")).await;
        reply.assert_error(401, Some("Bearer"), "unauthenticated");
        assert!(reply.session_cookie().is_none());

        // An expired cookie, a malformed cookie, a forged bearer token: the
        // layer let them through as a guest's, the extractor refuses them.
        let (app, router) = lenient_route_requiring_a_session();
        let token = app.alice_token();
        app.clock.advance(15 * 60 + 31);
        let reply = send(target, router, &Spec::get("/").cookie(&token)).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");

        let (_, router) = lenient_route_requiring_a_session();
        let spec = Spec::get("/").header("cookie", &format!("{COOKIE}=%7B%22alg%22%7D"));
        let reply = send(target, router, &spec).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");

        let (app, router) = lenient_route_requiring_a_session();
        let reply = send(
            target,
            router,
            &Spec::get("/").bearer(&format!("{}x", app.alice_token())),
        )
        .await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");

        // A user gone at rotation: invalid_token, and the layer clears the
        // cookie on the extractor's answer too.
        let (app, router) = lenient_route_requiring_a_session();
        let token = app.alice_token();
        app.clock.advance(5 * 60);
        assert!(app.directory.remove(&alice()));
        let reply = send(target, router, &Spec::get("/").cookie(&token)).await;
        reply.assert_error(401, Some("Bearer error=\"invalid_token\""), "invalid_token");
        reply.assert_clears_cookie();

        // A valid session still gets through.
        let (app, router) = lenient_route_requiring_a_session();
        let reply = send(target, router, &Spec::get("/").cookie(&app.alice_token())).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, format!("{} user", alice()));
    }
}

#[tokio::test]
async fn a_cross_site_form_is_refused_403_and_changes_nothing() {
    for &target in TARGETS {
        let (app, router) = fresh();
        let token = app.alice_token();
        let cross = |spec: Spec| {
            spec.header("origin", "https://evil.example")
                .header("sec-fetch-site", "cross-site")
        };
        // Sign-out from another site: refused, the session lives on.
        let reply = send(
            target,
            router.clone(),
            &cross(Spec::post("/logout").cookie(&token)),
        )
        .await;
        reply.assert_error(403, None, "cross_origin_request");
        assert!(reply.session_cookie().is_none(), "{target:?}");
        let me = send(target, router.clone(), &Spec::get("/me").cookie(&token)).await;
        assert_eq!(me.status, StatusCode::OK, "{target:?}: still signed in");
        // Sign-in from another site (login CSRF): refused, no cookie.
        let login = send(target, router.clone(), &cross(Spec::post("/login"))).await;
        login.assert_error(403, None, "cross_origin_request");
        assert!(login.session_cookie().is_none());
        // An old browser's cross-origin form: the Origin is not the host.
        let old = send(
            target,
            router.clone(),
            &Spec::post("/logout")
                .cookie(&token)
                .header("origin", "http://127.0.0.1:1"),
        )
        .await;
        old.assert_error(403, None, "cross_origin_request");
        // The same form from the site itself goes through.
        let own = send(
            target,
            router,
            &Spec::post("/logout")
                .cookie(&token)
                .header("sec-fetch-site", "same-origin"),
        )
        .await;
        assert_eq!(own.status, StatusCode::SEE_OTHER, "{target:?}");
        own.assert_clears_cookie();
    }
}

#[tokio::test]
async fn gateway_mode_strips_the_clients_identity_headers_and_signs_the_verified_ones() {
    use tessera::domain::{Requirement, RoutePolicy, RouteRule};
    use tessera::http::GatewayKey;

    for &target in TARGETS {
        let app = crate::support::spawn_app(tessera::KeyRing::new(crate::support::signing_key(
            tessera::JwsAlgorithm::EdDsa,
            "k1",
        )));
        let handle = TestApp::of(&app);
        let policy = RoutePolicy::builder()
            .rule(RouteRule::new("/headers", Requirement::Public))
            .build()
            .unwrap();
        let edge = app
            .sessions
            .edge(policy)
            .gateway(GatewayKey::new(b"0123456789abcdef0123456789abcdef").unwrap())
            .build()
            .unwrap();
        let router = site(edge, Routes::Standard);
        let spoofed = |spec: Spec| {
            spec.header("x-user-role", "admin")
                .header("X-User_Id", "someone-else")
                .header("x-tenant-id", "globex")
                .header("x-user-acr", "aal3")
        };
        // A guest: every identity header the client sent is gone.
        let guest = send(target, router.clone(), &spoofed(Spec::get("/headers"))).await;
        assert_eq!(guest.status, StatusCode::OK, "{target:?}");
        assert_eq!(
            guest.body, "",
            "{target:?}: nothing of the client's reaches the handler"
        );
        // A session: the verified identity, signed, and nothing else.
        let token = handle.alice_token();
        let signed = send(
            target,
            router.clone(),
            &spoofed(Spec::get("/headers").bearer(&token)),
        )
        .await;
        assert_eq!(signed.status, StatusCode::OK, "{target:?}");
        let lines: Vec<&str> = signed.body.lines().collect();
        let names: Vec<&str> = lines
            .iter()
            .map(|line| line.split_once('=').unwrap().0)
            .collect();
        assert_eq!(
            names,
            [
                "x-tenant-id",
                "x-user-capabilities",
                "x-user-id",
                "x-user-nonce",
                "x-user-role",
                "x-user-session-id",
                "x-user-signature",
                "x-user-signed-at",
            ],
            "{target:?}"
        );
        assert!(
            lines.contains(&format!("x-user-id={}", alice()).as_str()),
            "{target:?}"
        );
        assert!(lines.contains(&"x-user-role=user"), "{target:?}");
        assert!(lines.contains(&"x-tenant-id=acme"), "{target:?}");
        // How the user authenticated, when the session knows: signed too.
        let mfa = tessera::domain::Authentication::new(
            Some(tessera::domain::Acr::parse("phrh").unwrap()),
            vec![
                tessera::domain::AuthMethod::parse("pwd").unwrap(),
                tessera::domain::AuthMethod::parse("hwk").unwrap(),
            ],
        )
        .unwrap();
        let token = handle.alice_token_authenticated(mfa);
        let stepped_up = send(
            target,
            router,
            &spoofed(Spec::get("/headers").bearer(&token)),
        )
        .await;
        let lines: Vec<&str> = stepped_up.body.lines().collect();
        assert!(lines.contains(&"x-user-acr=phrh"), "{target:?}: {lines:?}");
        assert!(
            lines.contains(&"x-user-amr=pwd hwk"),
            "{target:?}: {lines:?}"
        );
        assert_eq!(lines.len(), 10, "{target:?}: {lines:?}");
    }
}

/// The README's quickstart backend, wired as the README wires it (one
/// import, a generated key, the in-memory directory, `Auth` for sign-in
/// and sign-out), on a clock the test moves.
mod readme_backend {
    use std::sync::Arc;

    use axum::extract::Form;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::{Router, body::Body};
    use http::Request;
    use tessera::axum::prelude::*;
    use tower::ServiceExt as _;

    use crate::support::{ManualClock, START};

    const ALICE: &str = "0190b5a4-7c2e-7d3a-9f00-000000000001";

    #[derive(serde::Deserialize)]
    struct SignIn {
        username: String,
        password: String,
        return_to: Option<String>,
    }

    async fn sign_in(auth: Auth, Form(form): Form<SignIn>) -> Response {
        let known = form.username == "alice" && form.password == "correct horse";
        let (true, Ok(alice)) = (known, ALICE.parse()) else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        auth.sign_in(&alice, form.return_to.as_deref()).await
    }

    async fn admin(session: Session) -> String {
        format!("welcome, {} ({})", session.user_id(), session.role())
    }

    async fn sign_out(auth: Auth) -> Response {
        auth.sign_out(None).await
    }

    fn app(clock: Arc<ManualClock>) -> Router {
        let users = Arc::new(InMemoryUserDirectory::new());
        users.upsert(DirectoryUser::new(ALICE.parse().unwrap(), UserRole::Admin));
        let sessions: Tessera = Tessera::builder(
            KeyRing::generate("key-1").unwrap(),
            "https://api.example",
            "web",
        )
        .user_directory(users)
        .clock(clock)
        .build();
        let rules = [
            RouteRule::guest_only("/login").browser(),
            RouteRule::authenticated("/logout").browser(),
            RouteRule::at_least_role("/admin", UserRole::Admin).browser(),
        ];
        Router::new()
            .route("/login", post(sign_in))
            .route("/admin", get(admin))
            .route("/logout", post(sign_out))
            .layer(sessions.session_layer(rules).build().unwrap())
    }

    async fn send(app: &Router, request: Request<Body>) -> Response {
        app.clone().oneshot(request).await.unwrap()
    }

    fn session_cookie(response: &Response) -> Option<String> {
        response
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|value| cookie::Cookie::parse(value.to_str().ok()?.to_owned()).ok())
            .find(|cookie| cookie.name() == "__Host-session")
            .map(|cookie| cookie.value().to_owned())
    }

    fn with_cookie(method: &str, path: &str, token: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", format!("__Host-session={token}"))
            .header("sec-fetch-site", "same-origin")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn the_readme_backend_signs_in_survives_its_first_rotation_and_signs_out() {
        let clock = ManualClock::starting_at(START);
        let app = app(clock.clone());
        let signed_in = send(
            &app,
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(
                    "username=alice&password=correct+horse&return_to=%2Fadmin",
                ))
                .unwrap(),
        )
        .await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert_eq!(signed_in.headers()["location"], "/admin");
        let token = session_cookie(&signed_in).unwrap();
        let page = send(&app, with_cookie("GET", "/admin", &token)).await;
        assert_eq!(page.status(), StatusCode::OK);

        // Past the rotation threshold (5 min): the directory is read, the
        // session slides on with a new cookie.
        clock.advance(6 * 60);
        let rotated = send(&app, with_cookie("GET", "/admin", &token)).await;
        assert_eq!(
            rotated.status(),
            StatusCode::OK,
            "survives its first rotation"
        );
        let renewed = session_cookie(&rotated).expect("a rotated cookie");
        assert_ne!(renewed, token);

        let out = send(&app, with_cookie("POST", "/logout", &renewed)).await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert_eq!(session_cookie(&out).as_deref(), Some(""), "cookie cleared");
        let after = send(&app, with_cookie("GET", "/admin", &renewed)).await;
        assert_eq!(after.status(), StatusCode::SEE_OTHER, "back to sign-in");
        assert!(
            after.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login")
        );

        let wrong = send(
            &app,
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("username=alice&password=guess"))
                .unwrap(),
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(session_cookie(&wrong).is_none());
    }
}
