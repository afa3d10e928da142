//! One test per known attack on JWT sessions. Each names the attack and
//! asserts the exact rule that refuses it.

use aws_lc_rs::hmac;
use serde_json::json;
use tessera::application::ports::{JwsFailure, TokenError};
use tessera::application::{ClaimsError, VerifyError};
use tessera::domain::{IdError, RoleError};
use tessera::{JwsAlgorithm, KeyRing, SigningKey};

use crate::support::*;

const RSA_PRIVATE: &[u8] = include_bytes!("../keys/rsa2048-test-only.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../keys/rsa2048-test-only.pub.pem");

/// The app under attack: HS256 key `hs1`.
fn app() -> App {
    spawn_app(KeyRing::new(hs_key()))
}

fn verify(app: &App, token: &str) -> Result<(), VerifyError> {
    app.sessions.verify().execute(token).map(|_| ())
}

fn token_error(result: Result<(), VerifyError>) -> TokenError {
    match result {
        Err(VerifyError::Token(e)) => e,
        other => panic!("expected a token error, got {other:?}"),
    }
}

#[test]
fn a_correctly_forged_token_is_accepted_so_the_attacks_below_test_one_change_each() {
    let app = app();
    assert!(verify(&app, &forged(&valid_header(), &payload(START))).is_ok());
}

#[test]
fn alg_none_is_rejected() {
    let app = app();
    let header = json!({"alg": "none", "typ": tessera::infrastructure::SESSION_TOKEN_TYPE});
    let unsigned = format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(payload(START).to_string().as_bytes())
    );
    assert!(matches!(
        token_error(verify(&app, &unsigned)),
        TokenError::Jws(JwsFailure::AlgorithmRejected)
    ));
    // Even with a signature part present.
    let with_sig = format!("{unsigned}AAAA");
    assert!(matches!(
        token_error(verify(&app, &with_sig)),
        TokenError::Jws(JwsFailure::AlgorithmRejected)
    ));
}

#[test]
fn hs256_signed_with_the_rsa_public_key_as_secret_is_rejected() {
    let rsa = SigningKey::from_pem(JwsAlgorithm::Rs256, "rsa1", RSA_PRIVATE).unwrap();
    let app = spawn_app(KeyRing::new(rsa));
    let header =
        json!({"alg": "HS256", "kid": "rsa1", "typ": tessera::infrastructure::SESSION_TOKEN_TYPE});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload(START).to_string().as_bytes())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, RSA_PUBLIC);
    let token = format!(
        "{input}.{}",
        b64(hmac::sign(&key, input.as_bytes()).as_ref())
    );
    assert!(matches!(
        token_error(verify(&app, &token)),
        TokenError::Jws(JwsFailure::AlgorithmRejected)
    ));
}

#[test]
fn missing_kid_is_rejected_when_the_ring_holds_several_keys() {
    let ring = KeyRing::new(hs_key())
        .with_signing_key(SigningKey::hmac_sha256("hs2", &[9u8; 32]).unwrap())
        .unwrap();
    let app = spawn_app(ring);
    let header = json!({"alg": "HS256", "typ": tessera::infrastructure::SESSION_TOKEN_TYPE});
    assert!(matches!(
        token_error(verify(&app, &forged(&header, &payload(START)))),
        TokenError::Jws(JwsFailure::MissingKeyId)
    ));
}

#[test]
fn unknown_kid_is_rejected() {
    let app = app();
    let header = with(valid_header(), "kid", json!("someone-elses"));
    assert!(matches!(
        token_error(verify(&app, &forged(&header, &payload(START)))),
        TokenError::Jws(JwsFailure::UnknownKeyId)
    ));
}

#[test]
fn wrong_or_missing_typ_is_rejected() {
    let app = app();
    for typ in [json!("JWT"), json!("at+jwt"), json!(5)] {
        let header = with(valid_header(), "typ", typ.clone());
        let result = verify(&app, &forged(&header, &payload(START)));
        assert!(
            matches!(
                token_error(result),
                TokenError::WrongType | TokenError::Jws(JwsFailure::Malformed(_))
            ),
            "typ {typ}"
        );
    }
    let mut header = valid_header();
    header.as_object_mut().unwrap().remove("typ");
    assert!(matches!(
        token_error(verify(&app, &forged(&header, &payload(START)))),
        TokenError::WrongType
    ));
}

#[test]
fn wrong_issuer_is_rejected() {
    let app = app();
    let p = with(payload(START), "iss", json!("https://evil.example"));
    assert!(matches!(
        token_error(verify(&app, &forged(&valid_header(), &p))),
        TokenError::WrongIssuer
    ));
}

#[test]
fn wrong_audience_is_rejected() {
    let app = app();
    for aud in [json!("admin-api"), json!(["admin-api", "mobile"])] {
        let p = with(payload(START), "aud", aud);
        assert!(matches!(
            token_error(verify(&app, &forged(&valid_header(), &p))),
            TokenError::WrongAudience
        ));
    }
    let p = with(payload(START), "aud", json!(["mobile", AUDIENCE]));
    assert!(
        verify(&app, &forged(&valid_header(), &p)).is_ok(),
        "one of several audiences"
    );
}

#[test]
fn expired_token_is_rejected_after_leeway() {
    let app = app();
    let token = forged(&valid_header(), &payload(START - 900));
    app.clock.advance(29);
    assert!(verify(&app, &token).is_ok(), "within leeway");
    app.clock.advance(1);
    assert!(matches!(verify(&app, &token), Err(VerifyError::Expired)));
}

#[test]
fn not_before_in_the_future_beyond_leeway_is_rejected() {
    let app = app();
    let p = with(payload(START), "nbf", json!(START + 31));
    assert!(matches!(
        verify(&app, &forged(&valid_header(), &p)),
        Err(VerifyError::NotYetValid)
    ));
    let p = with(payload(START), "nbf", json!(START + 30));
    assert!(verify(&app, &forged(&valid_header(), &p)).is_ok());
}

#[test]
fn issued_at_in_the_future_beyond_leeway_is_rejected() {
    let app = app();
    assert!(matches!(
        verify(&app, &forged(&valid_header(), &payload(START + 31))),
        Err(VerifyError::IssuedInFuture)
    ));
}

#[test]
fn expiry_not_after_issue_is_rejected() {
    let app = app();
    for exp in [START, START - 1] {
        let p = with(payload(START), "exp", json!(exp));
        match token_error(verify(&app, &forged(&valid_header(), &p))) {
            TokenError::Claims(e) => assert_eq!(e.claim(), "exp"),
            other => panic!("expected a claims error, got {other:?}"),
        }
    }
}

#[test]
fn token_claiming_a_longer_lifetime_than_configured_is_rejected() {
    let app = app();
    let p = with(payload(START), "exp", json!(START + 901));
    assert!(matches!(
        verify(&app, &forged(&valid_header(), &p)),
        Err(VerifyError::LifetimeTooLong)
    ));
}

#[test]
fn non_uuid_sub_is_rejected() {
    let app = app();
    for sub in [
        json!("alice"),
        json!("00000000-0000-0000-0000-000000000000"),
        json!(42),
    ] {
        let p = with(payload(START), "sub", sub.clone());
        match token_error(verify(&app, &forged(&valid_header(), &p))) {
            TokenError::Claims(e) => assert_eq!(e.claim(), "sub", "sub {sub}"),
            other => panic!("expected a claims error, got {other:?}"),
        }
    }
    let p = with(payload(START), "sub", json!("alice"));
    assert!(matches!(
        token_error(verify(&app, &forged(&valid_header(), &p))),
        TokenError::Claims(ClaimsError::InvalidId {
            source: IdError::NotUuid { .. },
            ..
        })
    ));
}

#[test]
fn non_canonical_uuid_spellings_of_sub_and_jti_are_rejected_naming_the_claim() {
    let app = app();
    for claim in ["sub", "jti"] {
        let canonical = payload(START)[claim].as_str().unwrap().to_owned();
        for spelling in [
            canonical.to_uppercase(),
            canonical.replace('-', ""),
            format!("{{{canonical}}}"),
            format!("urn:uuid:{canonical}"),
        ] {
            let p = with(payload(START), claim, json!(spelling));
            match token_error(verify(&app, &forged(&valid_header(), &p))) {
                TokenError::Claims(
                    e @ ClaimsError::InvalidId {
                        source: IdError::NotCanonical { .. },
                        ..
                    },
                ) => assert_eq!(e.claim(), claim, "{spelling}"),
                other => panic!("{claim} {spelling}: expected a claims error, got {other:?}"),
            }
        }
    }
}

#[test]
fn empty_role_is_rejected() {
    let app = app();
    let p = with(payload(START), "role", json!(""));
    assert!(matches!(
        token_error(verify(&app, &forged(&valid_header(), &p))),
        TokenError::Claims(ClaimsError::Role(RoleError::Empty))
    ));
}

#[test]
fn unknown_role_is_rejected_not_mapped_to_a_default() {
    let app = app();
    for role in ["superadmin", "Admin", "ADMIN", "admin "] {
        let p = with(payload(START), "role", json!(role));
        assert!(
            matches!(
                token_error(verify(&app, &forged(&valid_header(), &p))),
                TokenError::Claims(ClaimsError::Role(RoleError::Unknown(_)))
            ),
            "role {role:?}"
        );
    }
}

#[test]
fn oversized_token_is_rejected_before_decoding() {
    let app = app();
    let p = with(payload(START), "padding", json!("x".repeat(9000)));
    let token = forged(&valid_header(), &p);
    assert!(matches!(
        token_error(verify(&app, &token)),
        TokenError::Jws(JwsFailure::TooLarge { max: 8192 })
    ));
    // Not even a token: a huge string is refused by size alone.
    assert!(matches!(
        token_error(verify(&app, &"a".repeat(100_000))),
        TokenError::Jws(JwsFailure::TooLarge { .. })
    ));
}

#[test]
fn truncated_signature_is_rejected() {
    let app = app();
    let token = forged(&valid_header(), &payload(START));
    for cut in [1, 4, 10, 43] {
        let truncated = &token[..token.len() - cut];
        assert!(
            matches!(
                token_error(verify(&app, truncated)),
                TokenError::Jws(JwsFailure::InvalidSignature)
                    | TokenError::Jws(JwsFailure::Malformed(_))
            ),
            "cut {cut}"
        );
    }
}

#[test]
fn unknown_crit_is_rejected() {
    let app = app();
    let header = with(valid_header(), "crit", json!(["exp-by-cosmic-ray"]));
    assert!(matches!(
        token_error(verify(&app, &forged(&header, &payload(START)))),
        TokenError::Jws(JwsFailure::CriticalHeader)
    ));
}

#[test]
fn duplicate_json_members_are_rejected() {
    let app = app();
    // In the payload: a second "role" would otherwise win silently.
    let body = payload(START).to_string();
    let doubled = body.replacen('{', r#"{"role":"admin","#, 1);
    let token = forge(&valid_header().to_string(), &doubled, &hs_key());
    match token_error(verify(&app, &token)) {
        TokenError::Claims(e) => assert_eq!(e.claim(), "role"),
        other => panic!("expected a claims error, got {other:?}"),
    }
    // In the header: a second "alg".
    let header = valid_header()
        .to_string()
        .replacen('{', r#"{"alg":"none","#, 1);
    let token = forge(&header, &payload(START).to_string(), &hs_key());
    assert!(matches!(
        token_error(verify(&app, &token)),
        TokenError::Jws(JwsFailure::Malformed(_))
    ));
}

#[test]
fn a_token_for_another_issuers_key_type_is_not_a_session() {
    // An identity provider's ID token signed with a key we happen to trust
    // still lacks the session typ and is refused.
    let app = app();
    let header = json!({"alg": "HS256", "kid": "hs1", "typ": "JWT"});
    assert!(matches!(
        token_error(verify(&app, &forged(&header, &payload(START)))),
        TokenError::WrongType
    ));
}

#[test]
fn claims_at_the_end_of_time_are_refused_without_panicking() {
    // 9999-12-31T23:59:59Z, the last second a claim can name.
    const END: i64 = 253_402_300_799;
    let app = app();
    let far_exp = with(payload(START), "exp", json!(END));
    assert!(matches!(
        verify(&app, &forged(&valid_header(), &far_exp)),
        Err(VerifyError::LifetimeTooLong)
    ));
    let mut far_everything = payload(END - 10);
    far_everything["exp"] = json!(END);
    assert!(matches!(
        verify(&app, &forged(&valid_header(), &far_everything)),
        Err(VerifyError::IssuedInFuture)
    ));
    let far_nbf = with(payload(START), "nbf", json!(END));
    assert!(matches!(
        verify(&app, &forged(&valid_header(), &far_nbf)),
        Err(VerifyError::NotYetValid)
    ));
    let beyond = with(payload(START), "exp", json!(END + 1));
    match token_error(verify(&app, &forged(&valid_header(), &beyond))) {
        TokenError::Claims(e) => assert_eq!(e.claim(), "exp"),
        other => panic!("expected a claims error, got {other:?}"),
    }
}
