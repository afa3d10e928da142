//! The webhook verifier and handler, on fakes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_lc_rs::hmac;
use base64::Engine as _;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue};
use tessera_application::external::UserEvent;
use tessera_application::{ApplyUserEvent, UserEventOutcome};
use time::OffsetDateTime;

use base64::engine::general_purpose::STANDARD;
use mockall::predicate::eq;
use tessera_application::RevokeSession;
use tessera_application::external::{
    AsOf, ExternalProfile, ExternalSubject, ExternalUser, MockExternalUserDirectory,
    MockUserEventDecoder, UpsertOutcome, Upserted,
};
use tessera_application::ports::{DirectoryError, DirectoryUser, MockClock, MockRevocationStore};
use tessera_domain::{SessionLifetimes, UserId, UserRole};

use super::deliveries::Delivery;
use super::handler::after_delivery;
use super::*;
use crate::HttpRefusal as _;

use crate::test_clock::{NOW, Pinned, pinned};
const SECRET_A: &[u8] = b"first-secret-of-24-bytes";
const SECRET_B: &[u8] = b"second-secret-with-more-than-24-bytes";
const SECRET_C: &[u8] = b"a-secret-nobody-configured";
const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const BODY: &[u8] = br#"{"type":"user.updated","data":{"id":"user_1"}}"#;

/// `v1,<base64>` computed with aws-lc-rs directly over the spec's
/// concatenation, not through the code under test.
fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &message);
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(WEBHOOK_ID, HeaderValue::from_str(id).unwrap());
    headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
    headers.insert(WEBHOOK_SIGNATURE, HeaderValue::from_str(signature).unwrap());
    headers
}

fn signed(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
    headers(id, timestamp, &sign(secret, id, timestamp, body))
}

fn verifier(clock: Arc<Pinned>) -> WebhookVerifier {
    WebhookVerifier::new(WebhookSecret::from_bytes(SECRET_A).unwrap()).with_clock(clock)
}

fn accept(v: &WebhookVerifier, headers: &HeaderMap, body: &[u8]) {
    match v.verify(headers, body) {
        Ok(Delivery::New(delivery)) => delivery.complete(),
        other => panic!("expected a new delivery, got {other:?}"),
    }
}

fn refusal(v: &WebhookVerifier, headers: &HeaderMap, body: &[u8]) -> &'static str {
    match v.verify(headers, body) {
        Err(error) => error.code(),
        Ok(delivery) => panic!("expected a refusal, got {delivery:?}"),
    }
}

#[test]
fn the_standard_webhooks_test_vector_verifies() {
    // From the Standard Webhooks / Svix reference libraries' tests.
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let clock = Arc::new(Pinned(AtomicI64::new(1_614_265_330)));
    let v = WebhookVerifier::new(secret).with_clock(clock);
    let headers = headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    accept(&v, &headers, br#"{"test": 2432232314}"#);
    // And the independent signer agrees with it.
    let raw = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(
        sign(
            &raw,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[test]
fn a_valid_signature_is_accepted() {
    let v = verifier(pinned());
    match v.verify(&signed(SECRET_A, ID, NOW, BODY), BODY).unwrap() {
        Delivery::New(delivery) => {
            assert_eq!((delivery.id(), delivery.timestamp()), (ID, NOW));
            delivery.complete();
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_secret_of_a_rotation_is_accepted_and_no_other() {
    let v = verifier(pinned()).with_secret(WebhookSecret::from_bytes(SECRET_B).unwrap());
    accept(&v, &signed(SECRET_A, "msg_a", NOW, BODY), BODY);
    accept(&v, &signed(SECRET_B, "msg_b", NOW, BODY), BODY);
    assert_eq!(
        refusal(&v, &signed(SECRET_C, "msg_c", NOW, BODY), BODY),
        "invalid_signature"
    );
    // Old and new signatures side by side, as a provider sends during
    // its own rotation, against a receiver that knows only the new one.
    let v = WebhookVerifier::new(WebhookSecret::from_bytes(SECRET_B).unwrap()).with_clock(pinned());
    let both = format!(
        "{} {}",
        sign(SECRET_A, ID, NOW, BODY),
        sign(SECRET_B, ID, NOW, BODY)
    );
    accept(&v, &headers(ID, NOW, &both), BODY);
}

#[test]
fn a_wrong_secret_is_refused() {
    let v = verifier(pinned());
    assert_eq!(
        refusal(&v, &signed(SECRET_B, ID, NOW, BODY), BODY),
        "invalid_signature"
    );
}

#[test]
fn a_tampered_body_id_or_timestamp_breaks_the_signature() {
    let v = verifier(pinned());
    let good = sign(SECRET_A, ID, NOW, BODY);
    let tampered_body = br#"{"type":"user.updated","data":{"id":"user_2"}}"#;
    assert_eq!(
        refusal(&v, &headers(ID, NOW, &good), tampered_body),
        "invalid_signature"
    );
    assert_eq!(
        refusal(&v, &headers("msg_other", NOW, &good), BODY),
        "invalid_signature"
    );
    assert_eq!(
        refusal(&v, &headers(ID, NOW + 1, &good), BODY),
        "invalid_signature"
    );
    // Nothing was recorded: the genuine delivery still goes through.
    accept(&v, &headers(ID, NOW, &good), BODY);
}

#[test]
fn timestamps_outside_the_tolerance_are_refused_either_way() {
    let v = verifier(pinned());
    assert_eq!(
        refusal(&v, &signed(SECRET_A, "msg_old", NOW - 301, BODY), BODY),
        "timestamp_too_old"
    );
    assert_eq!(
        refusal(&v, &signed(SECRET_A, "msg_new", NOW + 301, BODY), BODY),
        "timestamp_too_new"
    );
    accept(&v, &signed(SECRET_A, "msg_old", NOW - 300, BODY), BODY);
    accept(&v, &signed(SECRET_A, "msg_new", NOW + 300, BODY), BODY);
    let strict = verifier(pinned()).with_tolerance_seconds(10);
    assert_eq!(
        refusal(&strict, &signed(SECRET_A, ID, NOW - 11, BODY), BODY),
        "timestamp_too_old"
    );
}

#[test]
fn a_replayed_delivery_is_refused_and_a_provider_redelivery_is_not_applied_again() {
    let v = verifier(pinned());
    let first = signed(SECRET_A, ID, NOW, BODY);
    accept(&v, &first, BODY);
    assert_eq!(refusal(&v, &first, BODY), "replayed");
    // Clones share the cache.
    assert_eq!(refusal(&v.clone(), &first, BODY), "replayed");
    // The provider's retry: same id, fresh timestamp and signature.
    let retry = signed(SECRET_A, ID, NOW + 5, BODY);
    assert!(matches!(
        v.verify(&retry, BODY),
        Ok(Delivery::AlreadyApplied { id }) if &*id == ID
    ));
    // Copies of either delivery are replays.
    assert_eq!(refusal(&v, &first, BODY), "replayed");
    assert_eq!(refusal(&v, &retry, BODY), "replayed");
}

#[test]
fn a_delivery_in_progress_blocks_its_id_and_an_abandoned_one_is_forgotten() {
    let v = verifier(pinned());
    let first = signed(SECRET_A, ID, NOW, BODY);
    let Ok(Delivery::New(delivery)) = v.verify(&first, BODY) else {
        panic!("expected a new delivery");
    };
    assert_eq!(
        refusal(&v, &signed(SECRET_A, ID, NOW + 1, BODY), BODY),
        "in_progress"
    );
    drop(delivery);
    // Not applied, so the provider's retry (or the very same bytes) is
    // accepted again.
    accept(&v, &first, BODY);
}

#[test]
fn the_replay_cache_forgets_ids_after_the_tolerance() {
    let clock = pinned();
    let v = verifier(clock.clone());
    let first = signed(SECRET_A, ID, NOW, BODY);
    accept(&v, &first, BODY);
    clock.0.store(NOW + 301, Ordering::SeqCst);
    // The captured copy is now stale, so forgetting its id is safe …
    assert_eq!(refusal(&v, &first, BODY), "timestamp_too_old");
    // … and a delivery signed now with that id is new again.
    accept(&v, &signed(SECRET_A, ID, NOW + 301, BODY), BODY);
}

#[test]
fn a_redelivery_keeps_its_id_remembered_as_long_as_it_could_be_replayed() {
    let clock = pinned();
    let v = verifier(clock.clone());
    accept(&v, &signed(SECRET_A, ID, NOW, BODY), BODY);
    let retry = signed(SECRET_A, ID, NOW + 200, BODY);
    assert!(matches!(
        v.verify(&retry, BODY),
        Ok(Delivery::AlreadyApplied { .. })
    ));
    clock.0.store(NOW + 400, Ordering::SeqCst);
    assert_eq!(refusal(&v, &retry, BODY), "replayed");
}

#[test]
fn a_full_replay_cache_fails_closed_until_ids_age_out() {
    let clock = pinned();
    let v = verifier(clock.clone()).with_replay_capacity(1);
    accept(&v, &signed(SECRET_A, "msg_1", NOW, BODY), BODY);
    assert_eq!(
        refusal(&v, &signed(SECRET_A, "msg_2", NOW, BODY), BODY),
        "replay_cache_full"
    );
    clock.0.store(NOW + 301, Ordering::SeqCst);
    accept(&v, &signed(SECRET_A, "msg_2", NOW + 301, BODY), BODY);
}

#[test]
fn missing_repeated_or_malformed_headers_are_refused() {
    let v = verifier(pinned());
    let good = signed(SECRET_A, ID, NOW, BODY);
    for name in [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE] {
        let mut headers = good.clone();
        headers.remove(name);
        assert!(matches!(
            v.verify(&headers, BODY),
            Err(WebhookError::MissingHeader(n)) if n == name
        ));
        let mut headers = good.clone();
        headers.append(name, headers[name].clone());
        assert!(matches!(
            v.verify(&headers, BODY),
            Err(WebhookError::MalformedHeader(n)) if n == name
        ));
    }
    assert_eq!(refusal(&v, &HeaderMap::new(), BODY), "missing_header");
    for timestamp in ["", "abc", "-5", "+5", "1.5", "1700000000000000"] {
        let mut headers = good.clone();
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from_static(timestamp));
        assert_eq!(
            refusal(&v, &headers, BODY),
            "malformed_header",
            "{timestamp}"
        );
    }
    let long_id = "m".repeat(MAX_ID_BYTES + 1);
    for id in ["", "msg.1", long_id.as_str()] {
        let mut headers = good.clone();
        headers.insert(WEBHOOK_ID, HeaderValue::from_str(id).unwrap());
        assert_eq!(refusal(&v, &headers, BODY), "malformed_header", "{id}");
    }
    let too_many = vec!["v1a,AAAA"; MAX_SIGNATURE_ENTRIES + 1].join(" ");
    for signature in ["", "   ", "v1", ",abc", too_many.as_str()] {
        let mut headers = good.clone();
        headers.insert(WEBHOOK_SIGNATURE, HeaderValue::from_str(signature).unwrap());
        assert_eq!(
            refusal(&v, &headers, BODY),
            "malformed_header",
            "{signature}"
        );
    }
    let mut headers = good.clone();
    headers.insert(WEBHOOK_ID, HeaderValue::from_bytes(b"msg_\xff").unwrap());
    assert_eq!(refusal(&v, &headers, BODY), "malformed_header");
}

#[test]
fn any_matching_v1_entry_is_enough_and_other_versions_never_count() {
    let v = verifier(pinned());
    let good = sign(SECRET_A, ID, NOW, BODY);
    let tag = good.trim_start_matches("v1,");
    let wrong = sign(SECRET_B, ID, NOW, BODY);
    // An unknown version carrying the right bytes does not count.
    assert_eq!(
        refusal(&v, &headers(ID, NOW, &format!("v1a,{tag} v2,{tag}")), BODY),
        "invalid_signature"
    );
    // Garbage and wrong v1 entries beside the right one are skipped.
    let mixed = format!("v1a,{tag} v1,not-base64! v1,AAAA {wrong}  {good}");
    accept(&v, &headers(ID, NOW, &mixed), BODY);
    // The tag without padding is the same tag.
    let unpadded = signed(SECRET_A, "msg_unpadded", NOW, BODY);
    let text = unpadded[WEBHOOK_SIGNATURE]
        .to_str()
        .unwrap()
        .trim_end_matches('=');
    accept(&v, &headers("msg_unpadded", NOW, text), BODY);
}

#[test]
fn svix_header_names_are_read_when_no_webhook_ones_are_sent() {
    let v = verifier(pinned());
    let mut headers = HeaderMap::new();
    headers.insert(SVIX_ID, HeaderValue::from_static(ID));
    headers.insert(SVIX_TIMESTAMP, HeaderValue::from(NOW));
    headers.insert(
        SVIX_SIGNATURE,
        HeaderValue::from_str(&sign(SECRET_A, ID, NOW, BODY)).unwrap(),
    );
    accept(&v, &headers, BODY);
    // Mixed sets are not combined.
    headers.insert(WEBHOOK_ID, HeaderValue::from_static("msg_x"));
    assert_eq!(refusal(&v, &headers, BODY), "missing_header");
}

#[test]
fn an_oversized_body_is_refused_before_anything_else() {
    let v = verifier(pinned()).with_max_body_bytes(BODY.len() - 1);
    assert!(matches!(
        v.verify(&signed(SECRET_A, ID, NOW, BODY), BODY),
        Err(WebhookError::TooLarge { max }) if max == BODY.len() - 1
    ));
    let v = verifier(pinned()).with_max_body_bytes(BODY.len());
    accept(&v, &signed(SECRET_A, ID, NOW, BODY), BODY);
}

#[test]
fn secrets_parse_in_the_providers_form_and_never_print() {
    let encoded = STANDARD.encode(SECRET_A);
    assert!(WebhookSecret::parse(&format!("whsec_{encoded}")).is_ok());
    assert!(WebhookSecret::parse(&encoded).is_ok());
    assert_eq!(
        WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1_u8; 23]))).unwrap_err(),
        WebhookSecretError::WrongLength
    );
    assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1_u8; 64]))).is_ok());
    assert_eq!(
        WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1_u8; 65]))).unwrap_err(),
        WebhookSecretError::WrongLength
    );
    assert_eq!(
        WebhookSecret::parse("whsec_not base64!").unwrap_err(),
        WebhookSecretError::NotBase64
    );
    let secret = WebhookSecret::from_bytes(SECRET_A).unwrap();
    assert_eq!(format!("{secret:?}"), "WebhookSecret(**redacted**)");
    let printed = format!("{:?}", verifier(pinned()));
    assert!(!printed.contains("first-secret"), "{printed}");
    assert!(!printed.contains(&encoded), "{printed}");
}

#[test]
fn every_error_has_its_status_and_body() {
    let cases = [
        (
            WebhookError::MissingHeader(WEBHOOK_ID),
            400,
            "missing_header",
        ),
        (
            WebhookError::MalformedHeader(WEBHOOK_ID),
            400,
            "malformed_header",
        ),
        (WebhookError::TooLarge { max: 1 }, 413, "payload_too_large"),
        (WebhookError::InvalidSignature, 401, "invalid_signature"),
        (WebhookError::TimestampTooOld, 401, "timestamp_too_old"),
        (WebhookError::TimestampTooNew, 401, "timestamp_too_new"),
        (WebhookError::Replayed, 409, "replayed"),
        (WebhookError::InProgress, 409, "in_progress"),
        (
            WebhookError::ReplayCacheFull,
            503,
            "temporarily_unavailable",
        ),
        (
            WebhookError::Payload(UserEventError::Malformed("data")),
            400,
            "invalid_payload",
        ),
    ];
    for (error, status, code) in cases {
        let response = error.into_http();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(
            response.body(),
            format!("{{\"error\":\"{code}\"}}").as_bytes()
        );
    }
}

// The handler, with the use case's ports mocked.

const ISSUER: &str = "https://idp.example";

fn user() -> UserId {
    UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap()
}

fn subject() -> ExternalSubject {
    ExternalSubject::parse("user_1").unwrap()
}

/// A profile the payload dates (an hour before [`NOW`]).
fn profile() -> ExternalProfile<UserRole> {
    ExternalProfile {
        issuer: ISSUER.into(),
        subject: subject(),
        role: UserRole::User,
        email: None,
        name: None,
        enabled: None,
        as_of: AsOf::Provider(OffsetDateTime::from_unix_timestamp(NOW - 3_600).unwrap()),
    }
}

fn stored() -> ExternalUser<UserRole> {
    ExternalUser {
        user: DirectoryUser {
            user_id: user(),
            role: UserRole::User,
            capabilities: std::collections::BTreeSet::new(),
            tenant: None,
            enabled: true,
        },
        issuer: ISSUER.into(),
        subject: subject(),
        email: None,
        name: None,
    }
}

fn hook(
    decoder: MockUserEventDecoder<UserRole>,
    users: MockExternalUserDirectory<UserRole>,
) -> UserWebhook<UserRole> {
    let mut store = MockRevocationStore::new();
    store.expect_set_watermark().times(0);
    let mut clock = MockClock::new();
    clock.expect_now().times(0);
    let lifetimes = SessionLifetimes::new(
        time::Duration::minutes(15),
        time::Duration::hours(8),
        time::Duration::minutes(10),
        time::Duration::seconds(30),
    )
    .unwrap();
    let revoke = RevokeSession::new(Arc::new(store), Arc::new(clock), lifetimes);
    UserWebhook::new(
        verifier(pinned()),
        Arc::new(decoder),
        ApplyUserEvent::new(Arc::new(users), revoke),
    )
}

fn decoding_once() -> MockUserEventDecoder<UserRole> {
    let mut decoder = MockUserEventDecoder::new();
    decoder
        .expect_decode()
        .with(eq(BODY))
        .times(1)
        .returning(|_| Ok(UserEvent::Upserted(profile())));
    decoder
}

#[tokio::test]
async fn a_bad_signature_reaches_neither_the_decoder_nor_the_directory() {
    let mut decoder = MockUserEventDecoder::new();
    decoder.expect_decode().times(0);
    let mut users = MockExternalUserDirectory::new();
    users.expect_upsert_external().times(0);
    users.expect_delete_external().times(0);
    let hook = hook(decoder, users);
    let err = hook
        .handle(&signed(SECRET_C, ID, NOW, BODY), BODY)
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::InvalidSignature));
}

#[tokio::test]
async fn a_valid_delivery_is_applied_once_and_its_replay_is_refused() {
    let mut users = MockExternalUserDirectory::new();
    users
        .expect_upsert_external()
        .with(eq(profile()))
        .times(1)
        .returning(|_| {
            Ok(UpsertOutcome::Written(Upserted {
                current: stored(),
                previous: None,
            }))
        });
    let hook = hook(decoding_once(), users);
    let headers = signed(SECRET_A, ID, NOW, BODY);
    assert_eq!(
        hook.handle(&headers, BODY).await.unwrap(),
        WebhookOutcome::Applied(UserEventOutcome::Created(user()))
    );
    assert!(matches!(
        hook.handle(&headers, BODY).await,
        Err(WebhookError::Replayed)
    ));
    assert_eq!(
        hook.handle(&signed(SECRET_A, ID, NOW + 60, BODY), BODY)
            .await
            .unwrap(),
        WebhookOutcome::AlreadyApplied
    );
}

#[tokio::test]
async fn a_directory_failure_is_503_and_the_providers_retry_is_applied() {
    let mut users = MockExternalUserDirectory::new();
    let mut sequence = mockall::Sequence::new();
    users
        .expect_upsert_external()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_| Err(DirectoryError::Unavailable("down".into())));
    users
        .expect_upsert_external()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_| {
            Ok(UpsertOutcome::Written(Upserted {
                current: stored(),
                previous: None,
            }))
        });
    let mut decoder = MockUserEventDecoder::new();
    decoder
        .expect_decode()
        .times(2)
        .returning(|_| Ok(UserEvent::Upserted(profile())));
    let hook = hook(decoder, users);
    let err = hook
        .handle(&signed(SECRET_A, ID, NOW, BODY), BODY)
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(matches!(err, WebhookError::Apply(_)));
    assert!(matches!(
        hook.handle(&signed(SECRET_A, ID, NOW + 5, BODY), BODY)
            .await
            .unwrap(),
        WebhookOutcome::Applied(UserEventOutcome::Created(_))
    ));
}

#[tokio::test]
async fn an_unreadable_payload_is_400_and_leaves_the_directory_alone() {
    let mut decoder = MockUserEventDecoder::new();
    decoder
        .expect_decode()
        .times(1)
        .returning(|_| Err(UserEventError::Malformed("type")));
    let mut users = MockExternalUserDirectory::new();
    users.expect_upsert_external().times(0);
    users.expect_delete_external().times(0);
    let err = hook(decoder, users)
        .handle(&signed(SECRET_A, ID, NOW, BODY), BODY)
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}

fn deleting(as_of: Option<OffsetDateTime>) -> MockUserEventDecoder<UserRole> {
    let mut decoder = MockUserEventDecoder::new();
    decoder.expect_decode().times(1).returning(move |_| {
        Ok(UserEvent::Deleted {
            issuer: ISSUER.into(),
            subject: subject(),
            as_of,
        })
    });
    decoder
}

#[tokio::test]
async fn an_undated_deletion_is_dated_just_after_its_delivery() {
    let mut users = MockExternalUserDirectory::new();
    users
        .expect_delete_external()
        .with(
            eq(ISSUER),
            eq(subject()),
            eq(Some(OffsetDateTime::from_unix_timestamp(NOW - 9).unwrap())),
        )
        .times(1)
        .returning(|_, _, _| Ok(None));
    let hook = hook(deleting(None), users);
    assert_eq!(
        hook.handle(&signed(SECRET_A, ID, NOW - 10, BODY), BODY)
            .await
            .unwrap(),
        WebhookOutcome::Applied(UserEventOutcome::Nothing)
    );
}

#[tokio::test]
async fn dated_events_keep_what_the_payload_says_and_an_undated_update_is_dated_by_its_delivery() {
    let dated = OffsetDateTime::from_unix_timestamp(NOW - 3_600).unwrap();
    let mut users = MockExternalUserDirectory::new();
    users
        .expect_delete_external()
        .with(eq(ISSUER), eq(subject()), eq(Some(dated)))
        .times(1)
        .returning(|_, _, _| Ok(None));
    let deletion = hook(deleting(Some(dated)), users);
    deletion
        .handle(&signed(SECRET_A, ID, NOW, BODY), BODY)
        .await
        .unwrap();

    let mut users = MockExternalUserDirectory::new();
    users
        .expect_upsert_external()
        .with(eq(profile()))
        .times(1)
        .returning(|_| Ok(UpsertOutcome::Stale(stored())));
    let dated = hook(decoding_once(), users);
    assert_eq!(
        dated
            .handle(&signed(SECRET_A, ID, NOW, BODY), BODY)
            .await
            .unwrap(),
        WebhookOutcome::Applied(UserEventOutcome::Stale(user()))
    );

    // Undated by its payload: dated just after its delivery.
    let undated = ExternalProfile {
        as_of: AsOf::Unknown,
        ..profile()
    };
    let mut decoder = MockUserEventDecoder::new();
    decoder
        .expect_decode()
        .times(1)
        .returning(move |_| Ok(UserEvent::Upserted(undated.clone())));
    let delivered = OffsetDateTime::from_unix_timestamp(NOW - 9).unwrap();
    let mut users = MockExternalUserDirectory::new();
    users
        .expect_upsert_external()
        .with(eq(ExternalProfile {
            as_of: AsOf::Delivery(delivered),
            ..profile()
        }))
        .times(1)
        .returning(|_| Ok(UpsertOutcome::Stale(stored())));
    hook(decoder, users)
        .handle(&signed(SECRET_A, ID, NOW - 10, BODY), BODY)
        .await
        .unwrap();
}

#[test]
fn the_instant_after_a_delivery_is_its_next_second_or_none_off_the_calendar() {
    assert_eq!(
        after_delivery(NOW),
        Some(OffsetDateTime::from_unix_timestamp(NOW + 1).unwrap())
    );
    assert_eq!(after_delivery(999_999_999_999), None);
    assert_eq!(after_delivery(i64::MAX), None);
}

#[tokio::test]
async fn the_answer_is_204_then_401_for_a_bad_signature_and_413_for_an_oversized_body() {
    let mut users = MockExternalUserDirectory::new();
    users.expect_upsert_external().times(1).returning(|_| {
        Ok(UpsertOutcome::Written(Upserted {
            current: stored(),
            previous: None,
        }))
    });
    let hook = hook(decoding_once(), users);
    let ok = hook
        .respond(&signed(SECRET_A, ID, NOW, BODY), Ok(BODY))
        .await;
    assert_eq!(ok.status(), http::StatusCode::NO_CONTENT);
    assert!(ok.body().is_empty());
    let bad = hook
        .respond(&signed(SECRET_C, "msg_2", NOW, BODY), Ok(BODY))
        .await;
    assert_eq!(bad.status(), http::StatusCode::UNAUTHORIZED);
    let max = hook.max_body_bytes();
    assert_eq!(max, DEFAULT_MAX_BODY_BYTES);
    let large = hook
        .respond(
            &signed(SECRET_A, "msg_3", NOW, BODY),
            Err(WebhookError::TooLarge { max }),
        )
        .await;
    assert_eq!(large.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    let mut headers = signed(SECRET_A, "msg_3", NOW, BODY);
    assert!(!hook.declares_too_large(&headers));
    headers.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(max as u64 + 1),
    );
    assert!(hook.declares_too_large(&headers));
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(max as u64));
    assert!(!hook.declares_too_large(&headers));
}
