//! Properties of claim parsing, checked on generated input with an oracle.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use tessera::application::SessionTokenClaims;
use tessera::application::ports::{SessionTokenCodec, TokenError};
use tessera::domain::{Capability, NewSession, SessionEntity, SessionId, TenantId, UserId};
use tessera::{JwsAlgorithm, JwtSessionCodec, KeyRing, SigningKey, UserRole};

use crate::support::*;

/// One codec per algorithm, made once: key generation is not what is tested.
fn codec(alg: JwsAlgorithm) -> Arc<JwtSessionCodec> {
    static CODECS: OnceLock<Vec<(JwsAlgorithm, Arc<JwtSessionCodec>)>> = OnceLock::new();
    CODECS
        .get_or_init(|| {
            ALGORITHMS
                .iter()
                .map(|&alg| {
                    let ring = KeyRing::new(SigningKey::generate(alg, "prop").unwrap());
                    (alg, Arc::new(JwtSessionCodec::new(ring, ISSUER, AUDIENCE)))
                })
                .collect()
        })
        .iter()
        .find(|(a, _)| *a == alg)
        .map(|(_, c)| c.clone())
        .unwrap()
}

fn decode(
    codec: &JwtSessionCodec,
    token: &str,
) -> Result<SessionTokenClaims<UserRole>, TokenError> {
    SessionTokenCodec::<UserRole>::decode(codec, token)
}

prop_compose! {
    fn valid_claims()(
        user in any::<u128>().prop_filter("non-nil", |n| *n != 0),
        session in any::<u128>().prop_filter("non-nil", |n| *n != 0),
        role in prop::sample::select(UserRole::ALL.to_vec()),
        caps in prop::collection::btree_set("[a-z]{1,8}(:[a-z]{1,8})?", 0..5),
        tenant in prop::option::of("[A-Za-z0-9._-]{1,64}"),
        auth in 0i64..4_000_000_000,
        since_auth in 0i64..100_000,
        life in 1i64..100_000,
        nbf in prop::option::of(0i64..4_000_000_000),
    ) -> SessionTokenClaims<UserRole> {
        let iat = auth + since_auth;
        let session = SessionEntity::new(NewSession {
            user_id: UserId::from_uuid(uuid::Uuid::from_u128(user)).unwrap(),
            session_id: SessionId::from_uuid(uuid::Uuid::from_u128(session)).unwrap(),
            role,
            capabilities: caps.iter().map(|c| Capability::parse(c).unwrap()).collect(),
            tenant: tenant.map(|t| TenantId::parse(&t).unwrap()),
            issued_at: at(iat),
            expires_at: at(iat + life),
            authenticated_at: at(auth),
            authentication: Default::default(),
        })
        .unwrap();
        SessionTokenClaims::new(session, nbf.map(at))
    }
}

fn algorithm() -> impl Strategy<Value = JwsAlgorithm> {
    prop::sample::select(ALGORITHMS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn encode_then_decode_is_identity(alg in algorithm(), claims in valid_claims()) {
        let codec = codec(alg);
        let token = SessionTokenCodec::<UserRole>::encode(&*codec, &claims).unwrap();
        prop_assert_eq!(decode(&codec, token.expose_secret()).unwrap(), claims);
    }

    #[test]
    fn flipping_any_byte_of_a_signed_token_makes_it_rejected(
        alg in algorithm(),
        claims in valid_claims(),
        position in any::<prop::sample::Index>(),
        mask in 1u8..0x80,
    ) {
        let codec = codec(alg);
        let token = SessionTokenCodec::<UserRole>::encode(&*codec, &claims).unwrap();
        let mut bytes = token.expose_secret().as_bytes().to_vec();
        let i = position.index(bytes.len());
        bytes[i] ^= mask; // stays ASCII, so stays a string
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(decode(&codec, &mutated).is_err(), "byte {} ^ {:#x} accepted", i, mask);
    }

    #[test]
    fn arbitrary_strings_never_panic_and_are_rejected(token in ".{0,600}") {
        let codec = codec(JwsAlgorithm::Hs256);
        prop_assert!(decode(&codec, &token).is_err());
    }

    #[test]
    fn arbitrary_three_part_tokens_never_panic_and_are_rejected(
        header in "[A-Za-z0-9_-]{0,80}",
        payload in "[A-Za-z0-9_-]{0,200}",
        signature in "[A-Za-z0-9_-]{0,90}",
    ) {
        let codec = codec(JwsAlgorithm::Hs256);
        let token = format!("{header}.{payload}.{signature}");
        prop_assert!(decode(&codec, &token).is_err());
    }
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("sub".to_owned()),
                    Just("iat".to_owned()),
                    Just("exp".to_owned()),
                    Just("role".to_owned()),
                    Just("aud".to_owned()),
                    Just("caps".to_owned()),
                    ".{0,8}",
                ],
                inner,
                0..8,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Validly signed tokens with arbitrary payloads: the oracle is that a
    /// payload is accepted only if it is a complete, consistent set of
    /// session claims, which random JSON never is unless it re-parses as one.
    #[test]
    fn arbitrary_signed_payloads_never_panic_and_give_typed_errors(
        value in json_value(),
        overrides in prop::collection::btree_map(
            prop::sample::select(vec!["sub", "jti", "iss", "aud", "iat", "exp", "nbf", "auth_time", "role", "caps", "tid"]),
            json_value(),
            0..4,
        ),
    ) {
        let key = SigningKey::hmac_sha256("prop", &[3u8; 32]).unwrap();
        let codec = JwtSessionCodec::new(KeyRing::new(key), ISSUER, AUDIENCE);
        // Random JSON on its own, and a valid payload with random claims swapped in.
        let mut bent = payload(START);
        for (k, v) in &overrides {
            bent[*k] = v.clone();
        }
        let signer = SigningKey::hmac_sha256("prop", &[3u8; 32]).unwrap();
        for body in [value.to_string(), bent.to_string()] {
            let token = forge(&header(&signer).to_string(), &body, &signer);
            match decode(&codec, &token) {
                Ok(claims) => {
                    // Accepted: then the body carried every required claim,
                    // and the session says exactly what the body says.
                    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let s = claims.session();
                    prop_assert_eq!(body["sub"].as_str().map(str::to_owned), Some(s.user_id().to_string()));
                    prop_assert_eq!(body["jti"].as_str().map(str::to_owned), Some(s.session_id().to_string()));
                    prop_assert_eq!(body["iss"].as_str(), Some(ISSUER));
                    prop_assert_eq!(body["role"].as_str().map(str::to_owned), Some(s.role().to_string()));
                    prop_assert_eq!(body["iat"].as_i64(), Some(s.issued_at().unix_timestamp()));
                    prop_assert_eq!(body["exp"].as_i64(), Some(s.expires_at().unix_timestamp()));
                    prop_assert_eq!(body["auth_time"].as_i64(), Some(s.authenticated_at().unix_timestamp()));
                    prop_assert_eq!(body["tid"].as_str(), s.tenant().map(|t| t.as_str()));
                }
                Err(e) => prop_assert!(
                    matches!(e, TokenError::Claims(_) | TokenError::WrongIssuer | TokenError::WrongAudience),
                    "unexpected error {:?}", e
                ),
            }
        }
    }
}
