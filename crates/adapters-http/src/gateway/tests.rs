//! Gateway signing and verification.

use std::sync::atomic::Ordering;

use tessera_domain::{Acr, AuthMethod, Authentication, NewSession, UserRole};

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, Method};
use tessera_domain::{Capability, SessionEntity, SessionId, TenantId, UserId};
use time::OffsetDateTime;

use super::*;
use crate::HttpRefusal as _;

use crate::test_clock::{NOW, Pinned, pinned};
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn session(tenant: Option<&str>) -> SessionEntity<UserRole> {
    session_authenticated(tenant, Authentication::default())
}

/// A session of `tenant` whose user authenticated as `authentication` says.
fn session_authenticated(
    tenant: Option<&str>,
    authentication: Authentication,
) -> SessionEntity<UserRole> {
    let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    SessionEntity::new(NewSession {
        user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap(),
        session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").unwrap(),
        role: UserRole::Moderator,
        capabilities: ["posts:hide", "posts:write"]
            .iter()
            .map(|c| Capability::parse(c).unwrap())
            .collect(),
        tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
        issued_at: now,
        expires_at: now + time::Duration::minutes(15),
        authenticated_at: now,
        authentication,
    })
    .unwrap()
}

/// Phishing-resistant hardware-key authentication, with a password.
fn mfa() -> Authentication {
    Authentication::new(
        Some(Acr::parse("phrh").unwrap()),
        vec![
            AuthMethod::parse("pwd").unwrap(),
            AuthMethod::parse("hwk").unwrap(),
        ],
    )
    .unwrap()
}

fn signed(method: &Method, target: &str, tenant: Option<&str>) -> HeaderMap {
    signed_session(method, target, &session(tenant))
}

fn signed_session(method: &Method, target: &str, session: &SessionEntity<UserRole>) -> HeaderMap {
    let signer = GatewaySigner::new(GatewayKey::new(SECRET).unwrap());
    let at = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    signer
        .headers(method.as_str(), target, session, at)
        .unwrap()
        .into_iter()
        .collect()
}

fn verifier(clock: Arc<Pinned>) -> GatewayVerifier {
    GatewayVerifier::new(GatewayKey::new(SECRET).unwrap()).with_clock(clock)
}

fn verify(
    v: &GatewayVerifier,
    headers: &HeaderMap,
) -> Result<Option<GatewayIdentity>, GatewayRejection> {
    v.verify::<UserRole>(&Method::GET, "/orders?page=2", headers)
}

#[test]
fn identity_headers_are_recognised_in_every_spelling() {
    for name in [
        "x-user",
        "x-user-role",
        "x-user-id",
        "x_user_role",
        "x-user_role",
        "x_user-signature",
        "x-tenant-id",
        "x_tenant_id",
        "x-tenant_id",
    ] {
        assert!(is_identity_header(name), "{name}");
    }
    for name in [
        "x-username",
        "x-users",
        "x-tenant-ids",
        "x-tenant",
        "user-role",
        "x-request-id",
        "authorization",
        "",
    ] {
        assert!(!is_identity_header(name), "{name}");
    }
}

#[test]
fn stripping_removes_every_value_of_every_identity_header() {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("X-User-Role", "admin"),
        ("x-user-role", "admin"),
        ("X-USER-ID", "0190b5a4-7c2e-7d3a-9f00-000000000001"),
        ("X-User_Role", "admin"),
        ("X-Tenant-Id", "acme"),
        ("x-tenant-id", "globex"),
        ("X-User", "root"),
        ("X-User-Signature", "forged"),
        ("x-username", "kept"),
        ("accept", "*/*"),
    ] {
        headers.append(
            HeaderName::try_from(name).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    assert_eq!(strip_identity_headers(&mut headers), 6);
    let mut left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "x-username"]);
}

#[test]
fn a_signed_identity_verifies_and_carries_every_value() {
    let headers = signed(&Method::GET, "/orders?page=2", Some("acme"));
    let identity = verify(&verifier(pinned()), &headers).unwrap().unwrap();
    assert_eq!(identity.user_id(), session(None).user_id());
    assert_eq!(identity.session_id(), session(None).session_id());
    assert_eq!(identity.role(), &UserRole::Moderator);
    assert_eq!(identity.capabilities(), session(None).capabilities());
    assert_eq!(identity.tenant().map(TenantId::as_str), Some("acme"));
    assert_eq!(identity.signed_at().unix_timestamp(), NOW);
    assert_eq!(headers[CAPABILITIES], "posts:hide,posts:write");
}

#[test]
fn the_signature_is_the_hmac_of_the_documented_lines() {
    let plain = signed(&Method::POST, "/orders?page=2", Some("acme"));
    let stepped_up = signed_session(
        &Method::POST,
        "/orders?page=2",
        &session_authenticated(None, mfa()),
    );
    // Written out by hand from the module docs, not from `Signed`.
    for (headers, rest) in [(&plain, "acme\n\n"), (&stepped_up, "\nphrh\npwd hwk")] {
        let text = |name: &str| headers[name].to_str().unwrap();
        let message = format!(
            "tessera-gateway-v2\nPOST\n/orders?page=2\n{}\n{}\n{}\n{}\nmoderator\nposts:hide,posts:write\n{rest}",
            text(SIGNED_AT),
            text(NONCE),
            text(USER_ID),
            text(SESSION_ID),
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
        let expected = URL_SAFE_NO_PAD.encode(hmac::sign(&key, message.as_bytes()).as_ref());
        assert_eq!(text(SIGNATURE), expected, "{rest:?}");
    }
}

#[test]
fn the_sessions_acr_and_amr_are_signed_and_verified_and_absent_when_unknown() {
    let headers = signed_session(
        &Method::GET,
        "/orders?page=2",
        &session_authenticated(Some("acme"), mfa()),
    );
    assert_eq!(headers[ACR], "phrh");
    assert_eq!(headers[AMR], "pwd hwk");
    let identity = verify(&verifier(pinned()), &headers).unwrap().unwrap();
    assert_eq!(identity.authentication(), &mfa());

    let plain = signed(&Method::GET, "/orders?page=2", Some("acme"));
    assert!(plain.get(ACR).is_none() && plain.get(AMR).is_none());
    let identity = verify(&verifier(pinned()), &plain).unwrap().unwrap();
    assert_eq!(identity.authentication(), &Authentication::default());

    // Claiming a stronger authentication than the gateway saw, or hiding
    // the one it saw, breaks the signature.
    let v = verifier(pinned());
    for (name, value) in [(ACR, "aal3"), (AMR, "hwk")] {
        let mut forged = plain.clone();
        forged.insert(name, HeaderValue::from_static(value));
        assert_eq!(verify(&v, &forged), Err(GatewayRejection::BadSignature));
        let mut forged = headers.clone();
        forged.insert(name, HeaderValue::from_static(value));
        assert_eq!(verify(&v, &forged), Err(GatewayRejection::BadSignature));
        let mut hidden = headers.clone();
        hidden.remove(name);
        assert_eq!(verify(&v, &hidden), Err(GatewayRejection::BadSignature));
    }
    let mut repeated = headers.clone();
    repeated.append(ACR, HeaderValue::from_static("phrh"));
    assert_eq!(verify(&v, &repeated), Err(GatewayRejection::Malformed(ACR)));
}

#[test]
fn a_session_without_tenant_sends_no_tenant_header() {
    let headers = signed(&Method::GET, "/orders?page=2", None);
    assert!(headers.get(TENANT_ID).is_none());
    let identity = verify(&verifier(pinned()), &headers).unwrap().unwrap();
    assert_eq!(identity.tenant(), None);
}

#[test]
fn an_absent_capabilities_header_reads_as_empty_and_cannot_drop_signed_ones() {
    let signer = GatewaySigner::new(GatewayKey::new(SECRET).unwrap());
    let mut parts = session(None).into_parts();
    parts.capabilities.clear();
    let bare = SessionEntity::new(parts).unwrap();
    let at = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    let mut headers: HeaderMap = signer
        .headers("GET", "/orders?page=2", &bare, at)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(headers[CAPABILITIES], "");
    // What a proxy that drops empty headers (nginx) forwards.
    headers.remove(CAPABILITIES);
    let identity = verify(&verifier(pinned()), &headers).unwrap().unwrap();
    assert!(identity.capabilities().is_empty());

    let mut headers = signed(&Method::GET, "/orders?page=2", None);
    headers.remove(CAPABILITIES);
    assert_eq!(
        verify(&verifier(pinned()), &headers),
        Err(GatewayRejection::BadSignature)
    );
}

#[test]
fn no_identity_headers_is_a_guest() {
    assert_eq!(verify(&verifier(pinned()), &HeaderMap::new()), Ok(None));
}

#[test]
fn identity_headers_without_a_signature_are_refused() {
    let mut headers = HeaderMap::new();
    headers.insert(ROLE, HeaderValue::from_static("admin"));
    assert_eq!(
        verify(&verifier(pinned()), &headers),
        Err(GatewayRejection::Unsigned)
    );
}

#[test]
fn any_changed_value_breaks_the_signature() {
    let v = verifier(pinned());
    for (name, value) in [
        (ROLE, "admin"),
        (USER_ID, "0190b5a4-7c2e-7d3a-9f00-0000000000ff"),
        (CAPABILITIES, "posts:hide,posts:write,users:ban"),
        (TENANT_ID, "globex"),
        (SIGNED_AT, "1700000001"),
        (NONCE, "AAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let mut headers = signed(&Method::GET, "/orders?page=2", Some("acme"));
        headers.insert(name, HeaderValue::from_static(value));
        assert_eq!(
            verify(&v, &headers),
            Err(GatewayRejection::BadSignature),
            "{name}"
        );
    }
    // Removing the tenant changes the message too.
    let mut headers = signed(&Method::GET, "/orders?page=2", Some("acme"));
    headers.remove(TENANT_ID);
    assert_eq!(verify(&v, &headers), Err(GatewayRejection::BadSignature));
}

#[test]
fn a_signature_for_another_request_or_key_is_refused() {
    let v = verifier(pinned());
    let other_path = signed(&Method::GET, "/orders?page=3", None);
    assert_eq!(verify(&v, &other_path), Err(GatewayRejection::BadSignature));
    let other_method = signed(&Method::DELETE, "/orders?page=2", None);
    assert_eq!(
        verify(&v, &other_method),
        Err(GatewayRejection::BadSignature)
    );
    let other_key = GatewayVerifier::new(GatewayKey::new(&[7; 32]).unwrap()).with_clock(pinned());
    let headers = signed(&Method::GET, "/orders?page=2", None);
    assert_eq!(
        verify(&other_key, &headers),
        Err(GatewayRejection::BadSignature)
    );
}

#[test]
fn a_signature_for_one_audience_verifies_there_and_nowhere_else() {
    let master = GatewayKey::new(SECRET).unwrap();
    let signer = GatewaySigner::new(master.for_audience("orders"));
    let at = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    let headers: HeaderMap = signer
        .headers("GET", "/orders?page=2", &session(None), at)
        .unwrap()
        .into_iter()
        .collect();
    let at = |key: GatewayKey| GatewayVerifier::new(key).with_clock(pinned());
    for other in [
        master.for_audience("billing"),
        master.for_audience("Orders"),
        master.for_audience("orders ").for_audience(""),
        master.clone(),
    ] {
        assert_eq!(
            verify(&at(other), &headers),
            Err(GatewayRejection::BadSignature)
        );
    }
    // Same derivation, same key: from the master secret again.
    let orders = GatewayKey::new(SECRET).unwrap().for_audience("orders");
    assert!(verify(&at(orders), &headers).unwrap().is_some());
    assert_eq!(
        format!("{:?}", master.for_audience("orders")),
        "GatewayKey(**redacted**)"
    );
}

#[test]
fn signatures_outside_the_freshness_window_are_stale() {
    let clock = pinned();
    let v = verifier(clock.clone());
    clock.0.store(NOW + 31, Ordering::SeqCst);
    assert_eq!(
        verify(&v, &signed(&Method::GET, "/orders?page=2", None)),
        Err(GatewayRejection::Stale)
    );
    clock.0.store(NOW - 31, Ordering::SeqCst);
    assert_eq!(
        verify(&v, &signed(&Method::GET, "/orders?page=2", None)),
        Err(GatewayRejection::Stale)
    );
    clock.0.store(NOW + 30, Ordering::SeqCst);
    assert!(verify(&v, &signed(&Method::GET, "/orders?page=2", None)).is_ok());
}

#[test]
fn a_replayed_signature_is_refused_and_a_fresh_one_accepted() {
    let v = verifier(pinned());
    let headers = signed(&Method::GET, "/orders?page=2", None);
    assert!(verify(&v, &headers).unwrap().is_some());
    assert_eq!(verify(&v, &headers), Err(GatewayRejection::Replayed));
    // Clones share the cache.
    assert_eq!(
        verify(&v.clone(), &headers),
        Err(GatewayRejection::Replayed)
    );
    // Same request again through the gateway: a new nonce, a new signature.
    assert!(verify(&v, &signed(&Method::GET, "/orders?page=2", None)).is_ok());
}

#[test]
fn a_full_replay_cache_fails_closed_until_old_signatures_expire() {
    let clock = pinned();
    let v = verifier(clock.clone()).with_replay_capacity(1);
    assert!(verify(&v, &signed(&Method::GET, "/orders?page=2", None)).is_ok());
    let second = signed(&Method::GET, "/orders?page=2", None);
    assert_eq!(verify(&v, &second), Err(GatewayRejection::ReplayCacheFull));
    assert_eq!(
        GatewayRejection::ReplayCacheFull.into_http().status(),
        http::StatusCode::SERVICE_UNAVAILABLE
    );
    // Once the first is out of the window it is forgotten; `second`
    // itself is then stale, but a fresh one is admitted.
    clock.0.store(NOW + 31, Ordering::SeqCst);
    let signer = GatewaySigner::new(GatewayKey::new(SECRET).unwrap());
    let later = OffsetDateTime::from_unix_timestamp(NOW + 31).unwrap();
    let fresh: HeaderMap = signer
        .headers("GET", "/orders?page=2", &session(None), later)
        .unwrap()
        .into_iter()
        .collect();
    assert!(verify(&v, &fresh).is_ok());
}

#[test]
fn repeated_or_malformed_signed_headers_are_refused() {
    let v = verifier(pinned());
    let mut headers = signed(&Method::GET, "/orders?page=2", None);
    headers.append(ROLE, HeaderValue::from_static("admin"));
    assert_eq!(verify(&v, &headers), Err(GatewayRejection::Malformed(ROLE)));
    let mut headers = signed(&Method::GET, "/orders?page=2", None);
    headers.insert(SIGNATURE, HeaderValue::from_static("not-base64!"));
    assert_eq!(
        verify(&v, &headers),
        Err(GatewayRejection::Malformed(SIGNATURE))
    );
    let mut headers = signed(&Method::GET, "/orders?page=2", None);
    headers.remove(NONCE);
    assert_eq!(
        verify(&v, &headers),
        Err(GatewayRejection::Malformed(NONCE))
    );
}

#[test]
fn every_refusal_but_a_full_cache_is_401_untrusted_identity() {
    for rejection in [
        GatewayRejection::Missing,
        GatewayRejection::Unsigned,
        GatewayRejection::Malformed(ROLE),
        GatewayRejection::BadSignature,
        GatewayRejection::Stale,
        GatewayRejection::Replayed,
    ] {
        let response = rejection.into_http();
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
        assert!(
            response
                .headers()
                .get(http::header::WWW_AUTHENTICATE)
                .is_none()
        );
    }
}

#[test]
fn short_keys_are_refused_and_keys_never_print() {
    assert_eq!(
        GatewayKey::new(&[1; 31]).unwrap_err(),
        GatewayKeyError::TooShort { min: 32 }
    );
    let key = GatewayKey::new(SECRET).unwrap();
    assert_eq!(format!("{key:?}"), "GatewayKey(**redacted**)");
    assert!(!format!("{:?}", verifier(pinned())).contains("0123"));
}
