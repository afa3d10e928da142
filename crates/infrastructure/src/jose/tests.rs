//! Unit tests of the signature layer: round trips, every key and token rule,
//! redaction, rotation, and properties.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;

use super::*;

const MAX: usize = 8 * 1024;

macro_rules! pem {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/pem/",
            $name
        ))
    };
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header JSON, signed by `key`.
fn token_with_header(key: &SigningKey, header_json: &str, payload: &[u8]) -> String {
    token_from_parts(key, &b64(header_json), &b64(payload))
}

/// A token whose parts are given already encoded, signed over them as they are.
fn token_from_parts(key: &SigningKey, header_b64: &str, payload_b64: &str) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature))
}

fn hs256(kid: &str) -> SigningKey {
    SigningKey::hmac_sha256(kid, &[0x42; 32]).unwrap()
}

fn hs256_ring(kid: &str) -> (KeyRing, SigningKey) {
    let key = hs256(kid);
    (KeyRing::new(key.clone()), key)
}

fn verify(token: &str, ring: &KeyRing) -> Result<VerifiedJws, JwsError> {
    verify_compact(token, ring, MAX)
}

// ----- algorithms ---------------------------------------------------------

#[test]
fn algorithm_names_round_trip_and_compare_case_sensitively() {
    for alg in JwsAlgorithm::ALL {
        assert_eq!(JwsAlgorithm::from_name(alg.name()), Some(alg));
    }
    // RFC 9864's fully-specified name of the one EdDSA curve supported.
    assert_eq!(
        JwsAlgorithm::from_name("Ed25519"),
        Some(JwsAlgorithm::EdDsa)
    );
    for name in [
        "hs256", "none", "HS512", "RS384", "PS256", "ES512", "Ed448", "ed25519", "ED25519", "",
    ] {
        assert_eq!(JwsAlgorithm::from_name(name), None, "{name}");
    }
}

// ----- round trips ---------------------------------------------------------

#[test]
fn every_algorithm_round_trips_sign_then_verify() {
    for alg in JwsAlgorithm::ALL {
        let key = SigningKey::generate(alg, "k1").unwrap();
        assert_eq!(key.algorithm(), alg);
        let ring = KeyRing::new(key.clone());
        let header = encode_header(&key, "example+jwt");
        let token = sign_compact(&key, &header, br#"{"sub":"x"}"#).unwrap();
        let jws = verify(&token, &ring).unwrap();
        assert_eq!(jws.header.alg, alg);
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        assert_eq!(jws.header.typ.as_deref(), Some("example+jwt"));
        assert_eq!(jws.payload, br#"{"sub":"x"}"#);
    }
}

#[test]
fn signatures_have_each_algorithms_length() {
    for (alg, len) in [
        (JwsAlgorithm::Hs256, 32),
        (JwsAlgorithm::Rs256, 256),
        (JwsAlgorithm::Es256, 64),
        (JwsAlgorithm::EdDsa, 64),
    ] {
        let key = SigningKey::generate(alg, "k").unwrap();
        let signature = key.sign(b"message").unwrap();
        assert_eq!(signature.len(), len, "{alg}");
        assert!(key.verification_key().verify(b"message", &signature));
        assert!(!key.verification_key().verify(b"messagE", &signature));
        // A valid signature cut short or padded out is another length.
        let mut padded = signature.clone();
        padded.push(0);
        for wrong in [&signature[..len - 1], &padded[..]] {
            assert!(!key.verification_key().verify(b"message", wrong), "{alg}");
        }
    }
}

#[test]
fn hs256_rs256_and_eddsa_are_deterministic_and_es256_is_not() {
    for alg in JwsAlgorithm::ALL {
        let key = SigningKey::generate(alg, "k").unwrap();
        let first = key.sign(b"message").unwrap();
        let second = key.sign(b"message").unwrap();
        assert_eq!(first == second, alg != JwsAlgorithm::Es256, "{alg}");
    }
}

#[test]
fn empty_payload_round_trips() {
    let (ring, key) = hs256_ring("k");
    let token = sign_compact(&key, &encode_header(&key, "t"), b"").unwrap();
    assert!(token.contains(".."));
    assert_eq!(verify(&token, &ring).unwrap().payload, b"");
}

#[test]
fn encode_header_writes_alg_kid_typ_and_escapes_them() {
    let key = SigningKey::hmac_sha256("a\"b\\c", &[7; 32]).unwrap();
    let header = encode_header(&key, "x\ny");
    let json = URL_SAFE_NO_PAD.decode(&header).unwrap();
    assert_eq!(
        std::str::from_utf8(&json).unwrap(),
        r#"{"alg":"HS256","kid":"a\"b\\c","typ":"x\ny"}"#
    );
    let ring = KeyRing::new(key.clone());
    let jws = verify(&sign_compact(&key, &header, b"{}").unwrap(), &ring).unwrap();
    assert_eq!(jws.header.kid.as_deref(), Some("a\"b\\c"));
    assert_eq!(jws.header.typ.as_deref(), Some("x\ny"));
}

#[test]
fn sign_compact_refuses_an_encoded_header_that_is_not_base64url() {
    let key = hs256("k");
    for header in ["", "a.b", "YQ==", "a b", "a+b"] {
        assert!(
            matches!(
                sign_compact(&key, header, b"{}"),
                Err(KeyError::InvalidEncodedHeader)
            ),
            "{header:?}"
        );
    }
}

// ----- PEM -------------------------------------------------------------------

fn assert_pair_verifies(signer: &SigningKey, verifier: &VerificationKey) {
    let signature = signer.sign(b"pem round trip").unwrap();
    assert!(verifier.verify(b"pem round trip", &signature));
}

#[test]
fn rs256_keys_from_pkcs1_pkcs8_spki_and_pkcs1_public_pem_agree() {
    let pkcs1 = SigningKey::from_pem(JwsAlgorithm::Rs256, "r", pem!("rsa2048-pkcs1.pem")).unwrap();
    let pkcs8 = SigningKey::from_pem(JwsAlgorithm::Rs256, "r", pem!("rsa2048-pkcs8.pem")).unwrap();
    let spki = VerificationKey::from_pem(JwsAlgorithm::Rs256, Some("r"), pem!("rsa2048-spki.pem"))
        .unwrap();
    let public =
        VerificationKey::from_pem(JwsAlgorithm::Rs256, None, pem!("rsa2048-pkcs1-public.pem"))
            .unwrap();
    assert_eq!(spki.kid(), Some("r"));
    assert_eq!(public.kid(), None);
    for signer in [&pkcs1, &pkcs8] {
        for verifier in [&spki, &public, &pkcs1.verification_key()] {
            assert_pair_verifies(signer, verifier);
        }
    }
    // PKCS#1 v1.5 is deterministic: both encodings are the same key.
    assert_eq!(pkcs1.sign(b"m").unwrap(), pkcs8.sign(b"m").unwrap());
}

#[test]
fn es256_keys_from_pkcs8_sec1_and_spki_pem_agree() {
    let pkcs8 = SigningKey::from_pem(JwsAlgorithm::Es256, "e", pem!("p256-pkcs8.pem")).unwrap();
    let sec1 = SigningKey::from_pem(JwsAlgorithm::Es256, "e", pem!("p256-sec1.pem")).unwrap();
    let spki =
        VerificationKey::from_pem(JwsAlgorithm::Es256, Some("e"), pem!("p256-spki.pem")).unwrap();
    for signer in [&pkcs8, &sec1] {
        assert_pair_verifies(signer, &spki);
    }
}

#[test]
fn eddsa_keys_from_pkcs8_and_spki_pem_agree() {
    let pkcs8 = SigningKey::from_pem(JwsAlgorithm::EdDsa, "d", pem!("ed25519-pkcs8.pem")).unwrap();
    let spki =
        VerificationKey::from_pem(JwsAlgorithm::EdDsa, None, pem!("ed25519-spki.pem")).unwrap();
    assert_pair_verifies(&pkcs8, &spki);
}

#[test]
fn pem_of_the_wrong_kind_is_refused() {
    assert!(matches!(
        SigningKey::from_pem(JwsAlgorithm::Rs256, "k", pem!("rsa2048-spki.pem")),
        Err(KeyError::NotAPrivateKey)
    ));
    assert!(matches!(
        SigningKey::from_pem(JwsAlgorithm::Hs256, "k", pem!("rsa2048-pkcs8.pem")),
        Err(KeyError::UnsupportedKey(Unsupported::PemForHmac))
    ));
    assert!(matches!(
        VerificationKey::from_pem(JwsAlgorithm::Hs256, None, pem!("rsa2048-spki.pem")),
        Err(KeyError::UnsupportedKey(Unsupported::PemForHmac))
    ));
    // Private keys are not accepted where a public key is expected.
    assert!(matches!(
        VerificationKey::from_pem(JwsAlgorithm::Rs256, None, pem!("rsa2048-pkcs8.pem")),
        Err(KeyError::UnsupportedKey(Unsupported::PemLabel))
    ));
    // SEC1 is an EC format, PKCS#1 an RSA one.
    assert!(matches!(
        SigningKey::from_pem(JwsAlgorithm::Rs256, "k", pem!("p256-sec1.pem")),
        Err(KeyError::UnsupportedKey(Unsupported::PemLabel))
    ));
    // A key of another type or curve than the algorithm's.
    for (alg, pem) in [
        (JwsAlgorithm::Es256, &pem!("p384-pkcs8.pem")[..]),
        (JwsAlgorithm::Es256, pem!("rsa2048-pkcs8.pem")),
        (JwsAlgorithm::Rs256, pem!("p256-pkcs8.pem")),
        (JwsAlgorithm::EdDsa, pem!("p256-pkcs8.pem")),
    ] {
        assert!(
            matches!(
                SigningKey::from_pem(alg, "k", pem),
                Err(KeyError::InvalidKey { .. })
            ),
            "{alg}"
        );
    }
    for (alg, pem) in [
        (JwsAlgorithm::Es256, &pem!("p384-spki.pem")[..]),
        (JwsAlgorithm::Es256, pem!("ed25519-spki.pem")),
        (JwsAlgorithm::EdDsa, pem!("p256-spki.pem")),
        (JwsAlgorithm::Rs256, pem!("p256-spki.pem")),
    ] {
        assert!(
            matches!(
                VerificationKey::from_pem(alg, None, pem),
                Err(KeyError::InvalidKey { .. })
            ),
            "{alg}"
        );
    }
}

// ----- key rules -------------------------------------------------------------

#[test]
fn hmac_secrets_under_32_bytes_are_refused() {
    assert!(matches!(
        SigningKey::hmac_sha256("k", &[1; 31]),
        Err(KeyError::WeakHmacSecret { bytes: 31 })
    ));
    assert!(SigningKey::hmac_sha256("k", &[1; 32]).is_ok());
    let short = format!(r#"{{"kty":"oct","kid":"k","k":"{}"}}"#, b64([1; 16]));
    assert!(matches!(
        VerificationKey::from_jwk(&short),
        Err(KeyError::WeakHmacSecret { bytes: 16 })
    ));
    assert!(matches!(
        SigningKey::from_jwk(r#"{"kty":"oct","kid":"k","k":""}"#),
        Err(KeyError::WeakHmacSecret { bytes: 0 })
    ));
}

#[test]
fn rsa_keys_under_2048_bits_are_refused() {
    assert!(matches!(
        VerificationKey::from_pem(JwsAlgorithm::Rs256, None, pem!("rsa1024-spki.pem")),
        Err(KeyError::WeakRsaKey { bits: 1024 })
    ));
    // The crypto library refuses a short private key before tessera sees it.
    assert!(matches!(
        SigningKey::from_pem(JwsAlgorithm::Rs256, "k", pem!("rsa1024-pkcs8.pem")),
        Err(KeyError::InvalidKey { .. } | KeyError::WeakRsaKey { bits: 1024 })
    ));
}

#[test]
fn rsa_exponents_one_three_or_even_are_refused() {
    assert!(matches!(
        VerificationKey::from_pem(JwsAlgorithm::Rs256, None, pem!("rsa2048-e3-spki.pem")),
        Err(KeyError::BadRsaExponent)
    ));
    assert!(matches!(
        SigningKey::from_pem(JwsAlgorithm::Rs256, "k", pem!("rsa2048-e3-pkcs8.pem")),
        Err(KeyError::BadRsaExponent)
    ));
    let n = rfc_rsa_public()["n"].as_str().unwrap().to_owned();
    for e in ["AQ", "Aw", "Ag", "AQAA"] {
        let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"{e}"}}"#);
        assert!(
            matches!(
                VerificationKey::from_jwk(&jwk),
                Err(KeyError::BadRsaExponent)
            ),
            "e = {e}"
        );
    }
}

#[test]
fn roca_vulnerable_rsa_modulus_is_refused() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/wycheproof/json_web_key_test.json"
    );
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let group = file["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["comment"] == "jws_rsa_roca_key")
        .unwrap();
    let public = group["public"]["keys"][0].to_string();
    let private = group["private"]["keys"][0].to_string();
    assert!(matches!(
        VerificationKey::from_jwk(&public),
        Err(KeyError::RocaVulnerableKey)
    ));
    assert!(matches!(
        SigningKey::from_jwk(&private),
        Err(KeyError::RocaVulnerableKey)
    ));
}

fn rfc_rsa_public() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/rfc/rfc7515_A2_RS256.json"
    );
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["public_jwk"].clone()
}

const ED25519_PRIVATE: &str = r#"{"kty":"OKP","crv":"Ed25519","kid":"ed",
    "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#;
const P256_PRIVATE: &str = r#"{"kty":"EC","crv":"P-256","kid":"ec",
    "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;

#[test]
fn private_jwks_of_every_type_sign_and_their_public_part_verifies() {
    let oct = format!(r#"{{"kty":"oct","kid":"h","k":"{}"}}"#, b64([9; 32]));
    let mut rsa = rfc_rsa_private();
    rsa["kid"] = "r".into();
    for jwk in [
        oct.as_str(),
        &rsa.to_string(),
        ED25519_PRIVATE,
        P256_PRIVATE,
    ] {
        let signer = SigningKey::from_jwk(jwk).unwrap();
        // A private JWK read as a verification key keeps its public part.
        let verifier = VerificationKey::from_jwk(jwk).unwrap();
        assert_eq!(verifier.algorithm(), signer.algorithm());
        assert_eq!(verifier.kid(), Some(signer.kid()));
        assert_pair_verifies(&signer, &verifier);
    }
}

fn rfc_rsa_private() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/rfc/rfc7515_A2_RS256.json"
    );
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["private_jwk"].clone()
}

#[test]
fn encryption_keys_are_refused() {
    for jwk in [
        r#"{"kty":"OKP","crv":"Ed25519","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        r#"{"kty":"OKP","crv":"Ed25519","key_ops":["encrypt"],"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        r#"{"kty":"OKP","crv":"Ed25519","key_ops":["verify","unwrapKey"],"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        r#"{"kty":"oct","alg":"A256GCM","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
        r#"{"kty":"oct","alg":"dir","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
    ] {
        assert!(
            matches!(VerificationKey::from_jwk(jwk), Err(KeyError::EncryptionKey)),
            "{jwk}"
        );
    }
    let mut rsa = rfc_rsa_public();
    rsa["alg"] = "RSA-OAEP".into();
    assert!(matches!(
        VerificationKey::from_jwk(&rsa.to_string()),
        Err(KeyError::EncryptionKey)
    ));
}

#[test]
fn key_ops_must_permit_the_operation() {
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    let sign_only = format!(r#"{{"kty":"OKP","crv":"Ed25519","key_ops":["sign"],"x":"{x}"}}"#);
    assert!(matches!(
        VerificationKey::from_jwk(&sign_only),
        Err(KeyError::KeyOperationNotPermitted {
            operation: "verify"
        })
    ));
    let mut verify_only: serde_json::Value = serde_json::from_str(ED25519_PRIVATE).unwrap();
    verify_only["key_ops"] = serde_json::json!(["verify"]);
    assert!(matches!(
        SigningKey::from_jwk(&verify_only.to_string()),
        Err(KeyError::KeyOperationNotPermitted { operation: "sign" })
    ));
    let verify = format!(r#"{{"kty":"OKP","crv":"Ed25519","key_ops":["verify"],"x":"{x}"}}"#);
    assert!(VerificationKey::from_jwk(&verify).is_ok());
}

#[test]
fn unsupported_key_types_curves_uses_and_algorithms_are_refused() {
    let cases = [
        (r#"{"kty":"foo"}"#, Unsupported::KeyType),
        (
            r#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#,
            Unsupported::Curve,
        ),
        (
            r#"{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}"#,
            Unsupported::Curve,
        ),
        (
            r#"{"kty":"OKP","crv":"Ed448","x":"AA"}"#,
            Unsupported::Curve,
        ),
        (
            r#"{"kty":"OKP","crv":"X25519","x":"AA"}"#,
            Unsupported::Curve,
        ),
        (
            r#"{"kty":"oct","alg":"HS512","k":"AA"}"#,
            Unsupported::Algorithm,
        ),
        (
            r#"{"kty":"oct","alg":"none","k":"AA"}"#,
            Unsupported::Algorithm,
        ),
        (
            r#"{"kty":"RSA","alg":"PS256","n":"AA","e":"AQAB"}"#,
            Unsupported::Algorithm,
        ),
        (
            r#"{"kty":"EC","alg":"ES521","crv":"P-256","x":"AA","y":"AA"}"#,
            Unsupported::Algorithm,
        ),
        (
            r#"{"kty":"oct","use":"other","k":"AA"}"#,
            Unsupported::KeyUse,
        ),
    ];
    for (jwk, reason) in cases {
        assert!(
            matches!(VerificationKey::from_jwk(jwk), Err(KeyError::UnsupportedKey(r)) if r == reason),
            "{jwk}"
        );
    }
    let mut multi_prime = rfc_rsa_private();
    multi_prime["kid"] = "r".into();
    multi_prime["oth"] = serde_json::json!([]);
    assert!(matches!(
        SigningKey::from_jwk(&multi_prime.to_string()),
        Err(KeyError::UnsupportedKey(Unsupported::MultiPrimeRsa))
    ));
}

#[test]
fn jwk_alg_must_be_the_algorithm_of_its_key_type() {
    for jwk in [
        r#"{"kty":"EC","alg":"RS256","crv":"P-256","x":"AA","y":"AA"}"#,
        r#"{"kty":"oct","alg":"ES256","k":"AA"}"#,
        r#"{"kty":"RSA","alg":"HS256","n":"AA","e":"AQAB"}"#,
        r#"{"kty":"OKP","alg":"ES256","crv":"Ed25519","x":"AA"}"#,
    ] {
        assert!(
            matches!(
                VerificationKey::from_jwk(jwk),
                Err(KeyError::AlgorithmMismatch)
            ),
            "{jwk}"
        );
    }
}

#[test]
fn jwk_shape_errors_name_the_member() {
    for jwk in [
        "",
        "not json",
        r#"["oct"]"#,
        r#"{"kty":"oct","k":"AA","k":"AA"}"#,
        r#"{"kty":5}"#,
        r#"{"kty":"oct","key_ops":"verify"}"#,
        r#"{"kty":"oct"} trailing"#,
    ] {
        assert!(
            matches!(VerificationKey::from_jwk(jwk), Err(KeyError::MalformedJwk)),
            "{jwk}"
        );
    }
    let cases: [(&str, KeyError); 8] = [
        (r#"{"k":"AA"}"#, KeyError::MissingJwkMember("kty")),
        (
            r#"{"kty":"RSA","e":"AQAB"}"#,
            KeyError::MissingJwkMember("n"),
        ),
        (
            r#"{"kty":"EC","x":"AA","y":"AA"}"#,
            KeyError::MissingJwkMember("crv"),
        ),
        (
            r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#,
            KeyError::InvalidJwkMember("x"),
        ),
        (
            r#"{"kty":"oct","k":"AAAA="}"#,
            KeyError::InvalidJwkMember("k"),
        ),
        (
            r#"{"kty":"oct","k":"AA+/"}"#,
            KeyError::InvalidJwkMember("k"),
        ),
        (
            r#"{"kty":"OKP","crv":"Ed25519"}"#,
            KeyError::MissingJwkMember("x"),
        ),
        (
            r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#,
            KeyError::InvalidJwkMember("x"),
        ),
    ];
    for (jwk, expected) in cases {
        let error = VerificationKey::from_jwk(jwk).unwrap_err();
        assert_eq!(format!("{error:?}"), format!("{expected:?}"), "{jwk}");
    }
    // A public JWK cannot sign.
    let public = r#"{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    assert!(matches!(
        SigningKey::from_jwk(public),
        Err(KeyError::MissingJwkMember("d"))
    ));
}

#[test]
fn signing_keys_need_a_kid() {
    let mut no_kid: serde_json::Value = serde_json::from_str(ED25519_PRIVATE).unwrap();
    no_kid.as_object_mut().unwrap().remove("kid");
    assert!(matches!(
        SigningKey::from_jwk(&no_kid.to_string()),
        Err(KeyError::MissingKeyId)
    ));
    assert!(matches!(
        SigningKey::hmac_sha256("", &[1; 32]),
        Err(KeyError::MissingKeyId)
    ));
    assert!(matches!(
        SigningKey::generate(JwsAlgorithm::EdDsa, ""),
        Err(KeyError::MissingKeyId)
    ));
    assert!(matches!(
        VerificationKey::from_pem(JwsAlgorithm::EdDsa, Some(""), pem!("ed25519-spki.pem")),
        Err(KeyError::MissingKeyId)
    ));
}

#[test]
fn points_off_the_curve_and_inconsistent_key_parts_are_refused() {
    let mut off_curve: serde_json::Value = serde_json::from_str(P256_PRIVATE).unwrap();
    off_curve["y"] = "y_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into();
    assert!(matches!(
        VerificationKey::from_jwk(&off_curve.to_string()),
        Err(KeyError::InvalidKey { .. })
    ));
    let mut wrong_d: serde_json::Value = serde_json::from_str(P256_PRIVATE).unwrap();
    wrong_d["d"] = b64([7; 32]).into();
    assert!(matches!(
        SigningKey::from_jwk(&wrong_d.to_string()),
        Err(KeyError::InvalidKey { .. })
    ));
    let mut wrong_seed: serde_json::Value = serde_json::from_str(ED25519_PRIVATE).unwrap();
    wrong_seed["d"] = b64([7; 32]).into();
    assert!(matches!(
        SigningKey::from_jwk(&wrong_seed.to_string()),
        Err(KeyError::InvalidKey { .. })
    ));
    let mut wrong_p = rfc_rsa_private();
    wrong_p["kid"] = "r".into();
    wrong_p["qi"] = wrong_p["dp"].clone();
    assert!(matches!(
        SigningKey::from_jwk(&wrong_p.to_string()),
        Err(KeyError::InvalidKey { .. })
    ));
}

// ----- ring rules ------------------------------------------------------------

fn ed_key(kid: &str) -> VerificationKey {
    SigningKey::generate(JwsAlgorithm::EdDsa, kid)
        .unwrap()
        .verification_key()
}

#[test]
fn a_key_ring_needs_at_least_one_key() {
    assert!(matches!(
        KeyRing::verify_only(vec![]),
        Err(KeyError::EmptyKeyRing)
    ));
    assert!(matches!(
        KeyRing::from_jwk_set(r#"{"keys":[]}"#),
        Err(KeyError::EmptyKeyRing)
    ));
    for set in ["[]", "{}", r#"{"keys":{}}"#, r#"{"keys":[["oct"]]}"#] {
        assert!(
            matches!(KeyRing::from_jwk_set(set), Err(KeyError::MalformedJwk)),
            "{set}"
        );
    }
}

#[test]
fn duplicate_kids_are_refused() {
    assert!(matches!(
        KeyRing::verify_only(vec![ed_key("a"), ed_key("a")]),
        Err(KeyError::DuplicateKeyId { kid }) if kid == "a"
    ));
    let ring = KeyRing::verify_only(vec![ed_key("a")]).unwrap();
    assert!(matches!(
        ring.with_verification_key(ed_key("a")),
        Err(KeyError::DuplicateKeyId { .. })
    ));
}

#[test]
fn symmetric_and_asymmetric_keys_are_never_mixed() {
    assert!(matches!(
        KeyRing::verify_only(vec![ed_key("a"), hs256("b").verification_key()]),
        Err(KeyError::MixedKeyFamilies)
    ));
    assert!(matches!(
        KeyRing::new(hs256("a"))
            .with_signing_key(SigningKey::generate(JwsAlgorithm::Rs256, "b").unwrap()),
        Err(KeyError::MixedKeyFamilies)
    ));
    // Asymmetric families mix freely: each key still only does its algorithm.
    let es = SigningKey::generate(JwsAlgorithm::Es256, "c")
        .unwrap()
        .verification_key();
    assert!(KeyRing::verify_only(vec![ed_key("a"), es]).is_ok());
}

#[test]
fn several_keys_each_need_a_kid() {
    let anonymous =
        VerificationKey::from_pem(JwsAlgorithm::EdDsa, None, pem!("ed25519-spki.pem")).unwrap();
    assert!(KeyRing::verify_only(vec![anonymous.clone()]).is_ok());
    assert!(matches!(
        KeyRing::verify_only(vec![anonymous.clone(), ed_key("a")]),
        Err(KeyError::MissingKeyId)
    ));
    assert!(matches!(
        KeyRing::verify_only(vec![ed_key("a"), anonymous]),
        Err(KeyError::MissingKeyId)
    ));
}

#[test]
fn rotation_keeps_old_tokens_valid_until_the_old_key_is_removed() {
    let old = SigningKey::generate(JwsAlgorithm::EdDsa, "old").unwrap();
    let new = SigningKey::generate(JwsAlgorithm::EdDsa, "new").unwrap();
    let ring = KeyRing::new(old.clone());
    let old_token = sign_compact(&old, &encode_header(&old, "t"), b"1").unwrap();

    let ring = ring.with_signing_key(new.clone()).unwrap();
    assert_eq!(ring.signing_key().map(SigningKey::kid), Some("new"));
    let new_token = sign_compact(&new, &encode_header(&new, "t"), b"2").unwrap();
    assert_eq!(verify(&old_token, &ring).unwrap().payload, b"1");
    assert_eq!(verify(&new_token, &ring).unwrap().payload, b"2");

    assert!(matches!(
        ring.clone().without_key("new"),
        Err(KeyError::ActiveSigningKey)
    ));
    assert!(matches!(
        ring.clone().without_key("other"),
        Err(KeyError::UnknownKeyId)
    ));
    assert!(matches!(
        ring.clone().with_signing_key(old.clone()),
        Err(KeyError::DuplicateKeyId { .. })
    ));

    let ring = ring.without_key("old").unwrap();
    assert_eq!(verify(&old_token, &ring), Err(JwsError::UnknownKeyId));
    assert_eq!(verify(&new_token, &ring).unwrap().payload, b"2");
    assert_eq!(ring.verification_keys().len(), 1);
}

#[test]
fn a_verify_only_ring_has_no_signer_and_cannot_lose_its_last_key() {
    let ring = KeyRing::verify_only(vec![ed_key("a")]).unwrap();
    assert!(ring.signing_key().is_none());
    assert!(matches!(ring.without_key("a"), Err(KeyError::EmptyKeyRing)));
}

#[test]
fn keys_and_rings_are_send_sync_and_rings_clone_cheaply() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<KeyRing>();
    assert_send_sync::<SigningKey>();
    assert_send_sync::<VerificationKey>();
    assert_send_sync::<KeyError>();
    assert_send_sync::<JwsError>();
    let ring = KeyRing::new(hs256("k"));
    let clone = ring.clone();
    assert!(std::ptr::eq(
        ring.verification_keys().as_ptr(),
        clone.verification_keys().as_ptr()
    ));
}

// ----- token rules -----------------------------------------------------------

#[test]
fn oversized_tokens_are_refused_before_any_decoding() {
    let (ring, key) = hs256_ring("k");
    let garbage = "!".repeat(101);
    assert_eq!(
        verify_compact(&garbage, &ring, 100),
        Err(JwsError::TooLarge { max: 100 })
    );
    let token = sign_compact(&key, &encode_header(&key, "t"), b"{}").unwrap();
    assert!(verify_compact(&token, &ring, token.len()).is_ok());
    assert_eq!(
        verify_compact(&token, &ring, token.len() - 1),
        Err(JwsError::TooLarge {
            max: token.len() - 1
        })
    );
}

#[test]
fn tokens_without_exactly_three_parts_are_malformed() {
    let (ring, key) = hs256_ring("k");
    let token = sign_compact(&key, &encode_header(&key, "t"), b"{}").unwrap();
    for bad in [
        String::new(),
        "abc".to_owned(),
        "a.b".to_owned(),
        format!("{token}."),
        format!("{token}.x"),
        format!(".{token}"),
    ] {
        assert!(
            matches!(verify(&bad, &ring), Err(JwsError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn base64url_must_be_strict_in_every_part() {
    let (ring, key) = hs256_ring("k");
    let header = encode_header(&key, "t");
    let good = token_from_parts(&key, &header, "e30");
    assert!(verify(&good, &ring).is_ok());
    // Signed over the exact text, so only the encoding rule can refuse them.
    for (header_b64, payload_b64, part) in [
        (
            format!("{header}="),
            "e30".to_owned(),
            "header is not base64url",
        ),
        (
            format!(" {header}"),
            "e30".to_owned(),
            "header is not base64url",
        ),
        (
            header.replace('J', "+"),
            "e30".to_owned(),
            "header is not base64url",
        ),
        (
            header.clone(),
            "e30=".to_owned(),
            "payload is not base64url",
        ),
        (
            header.clone(),
            "e3/0".to_owned(),
            "payload is not base64url",
        ),
        (
            header.clone(),
            "e 30".to_owned(),
            "payload is not base64url",
        ),
        // Non-canonical trailing bits: "Zm9" would decode to "fo" leniently.
        (header.clone(), "Zm9".to_owned(), "payload is not base64url"),
    ] {
        let token = token_from_parts(&key, &header_b64, &payload_b64);
        assert_eq!(
            verify(&token, &ring),
            Err(JwsError::Malformed(part)),
            "{token}"
        );
    }
    let (head, signature) = good.rsplit_once('.').unwrap();
    for signature in [
        format!("{signature}="),
        format!("+{}", &signature[1..]),
        format!("{signature}xx"),
    ] {
        let token = format!("{head}.{signature}");
        assert!(
            matches!(
                verify(&token, &ring),
                Err(JwsError::Malformed("signature is not base64url"))
            ),
            "{token}"
        );
    }
}

#[test]
fn headers_that_are_not_json_objects_of_the_jws_shape_are_malformed() {
    let (ring, key) = hs256_ring("k");
    for header in [
        r#"["HS256"]"#,
        r#""HS256""#,
        r#"{"alg":"HS256""#,
        r#"{"alg":"HS256"} x"#,
        r#"{"alg":5}"#,
        r#"{"alg":"HS256","kid":["k"]}"#,
        r#"{"alg":"HS256","alg":"HS256"}"#,
        r#"{"alg":"HS256","kid":"k","kid":"k"}"#,
        r#"{"alg":"HS256","typ":"a","typ":"b"}"#,
        "",
    ] {
        let token = token_with_header(&key, header, b"{}");
        assert!(
            matches!(verify(&token, &ring), Err(JwsError::Malformed(_))),
            "{header}"
        );
    }
    let not_utf8 = token_from_parts(&key, &b64(b"{\"alg\":\"HS\xff\"}"), "e30");
    assert!(matches!(
        verify(&not_utf8, &ring),
        Err(JwsError::Malformed(_))
    ));
    let no_alg = token_with_header(&key, r#"{"kid":"k"}"#, b"{}");
    assert_eq!(
        verify(&no_alg, &ring),
        Err(JwsError::Malformed("header has no alg"))
    );
}

#[test]
fn escaped_header_strings_are_read_and_unknown_members_ignored() {
    let (ring, key) = hs256_ring("k1");
    let token = token_with_header(
        &key,
        r#"{"alg":"HS256","kid":"k\u0031","typ":"a\/b","x5u":"https://example.invalid","jwk":{}}"#,
        b"{}",
    );
    let jws = verify(&token, &ring).unwrap();
    assert_eq!(jws.header.kid.as_deref(), Some("k1"));
    assert_eq!(jws.header.typ.as_deref(), Some("a/b"));
}

#[test]
fn none_and_unsupported_algorithms_are_refused() {
    let (ring, key) = hs256_ring("k");
    for alg in [
        "none", "NONE", "hs256", "HS384", "HS512", "RS384", "PS256", "ES512", "ES521", "",
    ] {
        let header = format!(r#"{{"alg":"{alg}","kid":"k"}}"#);
        let token = token_with_header(&key, &header, b"{}");
        assert_eq!(
            verify(&token, &ring),
            Err(JwsError::UnsupportedAlgorithm),
            "{alg}"
        );
        // Unsecured form, with an empty signature.
        let (unsigned, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&format!("{unsigned}."), &ring),
            Err(JwsError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_as_secret_is_refused() {
    let public_pem = pem!("rsa2048-spki.pem");
    let ring = KeyRing::verify_only(vec![
        VerificationKey::from_pem(JwsAlgorithm::Rs256, None, public_pem).unwrap(),
    ])
    .unwrap();
    let public_der = super::pem::decode(public_pem).unwrap().der.to_vec();
    for secret in [&public_pem[..], &public_der] {
        let input = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), b64("{}"));
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
        let token = format!("{input}.{}", b64(mac.as_ref()));
        assert_eq!(
            verify(&token, &ring),
            Err(JwsError::AlgorithmNotAllowedForKey)
        );
    }
}

#[test]
fn a_key_only_verifies_its_own_algorithm() {
    let ed = SigningKey::generate(JwsAlgorithm::EdDsa, "k").unwrap();
    let ring = KeyRing::new(ed.clone());
    for alg in ["HS256", "RS256", "ES256"] {
        let token = token_with_header(&ed, &format!(r#"{{"alg":"{alg}","kid":"k"}}"#), b"{}");
        assert_eq!(
            verify(&token, &ring),
            Err(JwsError::AlgorithmNotAllowedForKey),
            "{alg}"
        );
    }
}

/// The Ed25519 key `signer`'s public JWK, with its `alg` member relabelled.
fn ed25519_jwk_labelled(signer: &SigningKey, alg: &str) -> String {
    let jwk = signer.verification_key().to_public_jwk().unwrap();
    assert!(jwk.contains(r#""alg":"EdDSA""#), "{jwk}");
    jwk.replace(r#""alg":"EdDSA""#, &format!(r#""alg":"{alg}""#))
}

#[test]
fn eddsa_and_ed25519_labels_interoperate_in_tokens_and_jwks_of_session_and_provider_sets() {
    let signer = SigningKey::generate(JwsAlgorithm::EdDsa, "ed").unwrap();
    for key_alg in ["EdDSA", "Ed25519"] {
        let set = format!(r#"{{"keys":[{}]}}"#, ed25519_jwk_labelled(&signer, key_alg));
        let session = KeyRing::from_jwk_set(&set).unwrap();
        let (provider, skipped) = KeyRing::from_provider_jwk_set(&set).unwrap();
        assert!(skipped.is_empty(), "{key_alg}: {skipped:?}");
        for token_alg in ["EdDSA", "Ed25519"] {
            let header = format!(r#"{{"alg":"{token_alg}","kid":"ed"}}"#);
            let token = token_with_header(&signer, &header, b"{}");
            for ring in [&session, &provider] {
                let jws = verify(&token, ring).unwrap_or_else(|e| {
                    panic!("key {key_alg}, token {token_alg}: {e:?}");
                });
                assert_eq!(jws.header.alg, JwsAlgorithm::EdDsa);
            }
        }
    }
    // A private JWK labelled the RFC 9864 way signs, too.
    let private = signer.to_private_jwk().unwrap();
    let relabelled = private
        .expose_secret()
        .replace(r#""alg":"EdDSA""#, r#""alg":"Ed25519""#);
    assert_ne!(relabelled, private.expose_secret());
    let resigned = SigningKey::from_jwk(&relabelled).unwrap();
    assert_eq!(resigned.algorithm(), JwsAlgorithm::EdDsa);
}

#[test]
fn the_ed25519_name_confuses_no_other_key_or_curve() {
    // A token saying Ed25519 is refused by keys of every other algorithm.
    for alg in [
        JwsAlgorithm::Hs256,
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
    ] {
        let key = SigningKey::generate(alg, "k").unwrap();
        let ring = KeyRing::new(key.clone());
        let token = token_with_header(&key, r#"{"alg":"Ed25519","kid":"k"}"#, b"{}");
        assert_eq!(
            verify(&token, &ring),
            Err(JwsError::AlgorithmNotAllowedForKey),
            "{alg}"
        );
    }
    // A JWK saying Ed25519 must be an OKP key on Ed25519.
    let rsa = SigningKey::generate(JwsAlgorithm::Rs256, "r").unwrap();
    let rsa_jwk = rsa
        .verification_key()
        .to_public_jwk()
        .unwrap()
        .replace(r#""alg":"RS256""#, r#""alg":"Ed25519""#);
    assert!(matches!(
        VerificationKey::from_jwk(&rsa_jwk),
        Err(KeyError::AlgorithmMismatch)
    ));
    let ed448 = r#"{"kty":"OKP","crv":"Ed448","alg":"Ed25519","x":"AA"}"#;
    assert!(matches!(
        VerificationKey::from_jwk(ed448),
        Err(KeyError::UnsupportedKey(_))
    ));
    // And Ed448, RFC 9864's other EdDSA name, is not supported at all.
    let signer = SigningKey::generate(JwsAlgorithm::EdDsa, "ed").unwrap();
    assert!(matches!(
        VerificationKey::from_jwk(&ed25519_jwk_labelled(&signer, "Ed448")),
        Err(KeyError::UnsupportedKey(_))
    ));
    let ring = KeyRing::new(signer.clone());
    let token = token_with_header(&signer, r#"{"alg":"Ed448","kid":"ed"}"#, b"{}");
    assert_eq!(verify(&token, &ring), Err(JwsError::UnsupportedAlgorithm));
}

#[test]
fn a_ring_of_several_keys_needs_the_kid_and_any_ring_refuses_an_unknown_kid() {
    let a = SigningKey::generate(JwsAlgorithm::EdDsa, "a").unwrap();
    let one = KeyRing::new(a.clone());
    let no_kid = token_with_header(&a, r#"{"alg":"EdDSA"}"#, b"{}");
    let other_kid = token_with_header(&a, r#"{"alg":"EdDSA","kid":"b"}"#, b"{}");
    assert!(verify(&no_kid, &one).is_ok());
    assert_eq!(verify(&other_kid, &one), Err(JwsError::UnknownKeyId));

    let two = one.with_verification_key(ed_key("b")).unwrap();
    assert_eq!(verify(&no_kid, &two), Err(JwsError::MissingKeyId));
    // Named, the other key is selected and the signature does not verify.
    assert_eq!(verify(&other_kid, &two), Err(JwsError::InvalidSignature));
    let named = token_with_header(&a, r#"{"alg":"EdDSA","kid":"a"}"#, b"{}");
    assert!(verify(&named, &two).is_ok());
}

#[test]
fn crit_header_is_refused_whatever_it_lists() {
    let (ring, key) = hs256_ring("k");
    for crit in [r#"["exp"]"#, "[]", "null", r#"["b64"]"#] {
        let header = format!(r#"{{"alg":"HS256","kid":"k","crit":{crit},"exp":1,"b64":false}}"#);
        let token = token_with_header(&key, &header, b"{}");
        assert_eq!(
            verify(&token, &ring),
            Err(JwsError::CriticalHeader),
            "{crit}"
        );
    }
}

#[test]
fn tampered_tokens_fail_the_signature_check() {
    for alg in JwsAlgorithm::ALL {
        let key = SigningKey::generate(alg, "k").unwrap();
        let ring = KeyRing::new(key.clone());
        let header = encode_header(&key, "t");
        let token = sign_compact(&key, &header, br#"{"role":"user"}"#).unwrap();
        let (head, signature) = token.rsplit_once('.').unwrap();
        let forged_payload = format!("{header}.{}.{signature}", b64(r#"{"role":"admin"}"#));
        let forged_header = format!(
            "{}.{}.{signature}",
            encode_header(&key, "u"),
            b64(r#"{"role":"user"}"#)
        );
        let other = SigningKey::generate(alg, "k").unwrap();
        let other_signature = b64(other.sign(head.as_bytes()).unwrap());
        for forged in [
            forged_payload,
            forged_header,
            format!("{head}.{other_signature}"),
            format!("{head}."),
        ] {
            assert_eq!(
                verify(&forged, &ring),
                Err(JwsError::InvalidSignature),
                "{alg}"
            );
        }
    }
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` of a fixed `r || s` signature.
fn ecdsa_der(fixed: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let start = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        let mut value = bytes[start..].to_vec();
        if value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    }
    let mut body = integer(&fixed[..32]);
    body.extend(integer(&fixed[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn es256_signatures_in_der_form_are_refused() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    let key = SigningKey::from_pem(JwsAlgorithm::Es256, "k", pem!("p256-pkcs8.pem")).unwrap();
    let ring = KeyRing::new(key.clone());
    let header = encode_header(&key, "t");
    let input = format!("{header}.{}", b64("{}"));
    let fixed = key.sign(input.as_bytes()).unwrap();
    let der = ecdsa_der(&fixed);
    // The DER form is the same signature: the ASN.1 verifier accepts it.
    let spki = super::pem::decode(pem!("p256-spki.pem")).unwrap();
    let point = &spki.der[spki.der.len() - 65..];
    assert!(
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(input.as_bytes(), &der)
            .is_ok()
    );
    assert!(verify(&format!("{input}.{}", b64(&fixed)), &ring).is_ok());
    assert_eq!(
        verify(&format!("{input}.{}", b64(&der)), &ring),
        Err(JwsError::InvalidSignature)
    );
}

#[test]
fn signatures_longer_than_any_key_are_refused() {
    let (ring, key) = hs256_ring("k");
    let input = format!("{}.{}", encode_header(&key, "t"), b64("{}"));
    for len in [33, 1025, 4000] {
        let token = format!("{input}.{}", b64(vec![0u8; len]));
        assert_eq!(
            verify(&token, &ring),
            Err(JwsError::InvalidSignature),
            "{len}"
        );
    }
}

// ----- redaction -------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn debug_output_never_contains_key_material() {
    let secret: Vec<u8> = (0u8..48)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let key = SigningKey::hmac_sha256("hmac-key", &secret).unwrap();
    let ring = KeyRing::new(key.clone());
    let jwk = format!(r#"{{"kty":"oct","kid":"hmac-key","k":"{}"}}"#, b64(&secret));
    let verification = VerificationKey::from_jwk(&jwk).unwrap();
    let outputs = [
        format!("{key:?}"),
        format!("{:?}", key.verification_key()),
        format!("{verification:?}"),
        format!("{ring:?}"),
        format!("{ring:#?}"),
    ];
    for output in &outputs {
        assert!(output.contains("hmac-key"), "{output}");
        assert!(output.contains("**redacted**"), "{output}");
        for encoding in [hex(&secret), b64(&secret), STANDARD.encode(&secret)] {
            assert!(!output.contains(&encoding[..16]), "{output}");
        }
        assert!(!output.contains(&format!("{:?}", &secret[..8])), "{output}");
    }

    let private: serde_json::Value = serde_json::from_str(ED25519_PRIVATE).unwrap();
    let d = private["d"].as_str().unwrap();
    let seed = URL_SAFE_NO_PAD.decode(d).unwrap();
    let ed = SigningKey::from_jwk(ED25519_PRIVATE).unwrap();
    let ed_ring = KeyRing::new(ed.clone());
    for output in [format!("{ed:?}"), format!("{ed_ring:?}")] {
        assert!(!output.contains(&d[..16]), "{output}");
        assert!(!output.contains(&hex(&seed)[..16]), "{output}");
    }
}

#[test]
fn key_error_messages_do_not_quote_the_input() {
    let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQ";
    for jwk in [
        format!(r#"{{"kty":"oct","k":"{secret}==="}}"#),
        format!(r#"{{"kty":"oct","k":["{secret}"]}}"#),
        format!(r#"{{"kty":"oct","k":"{secret}","#),
    ] {
        let error = VerificationKey::from_jwk(&jwk).unwrap_err();
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        assert!(!message.contains("c2Vj"), "{message}");
    }
}

// ----- remembered headers ----------------------------------------------------

#[test]
fn a_header_is_remembered_after_its_signature_verified_and_gives_the_same_outcome() {
    let (ring, key) = hs256_ring("k");
    let header = encode_header(&key, "t");
    let forged = format!("{header}.{}.{}", b64("{}"), b64([0u8; 32]));
    assert_eq!(verify(&forged, &ring), Err(JwsError::InvalidSignature));
    assert!(ring.known_header(&header).is_none());

    let first = verify(&sign_compact(&key, &header, b"1").unwrap(), &ring).unwrap();
    assert!(ring.known_header(&header).is_some());
    let second = verify(&sign_compact(&key, &header, b"2").unwrap(), &ring).unwrap();
    assert_eq!(second.header, first.header);
    assert_eq!(second.header.kid.as_deref(), Some("k"));
    assert_eq!(second.header.typ.as_deref(), Some("t"));
    assert_eq!(second.payload, b"2");
    assert_eq!(verify(&forged, &ring), Err(JwsError::InvalidSignature));
}

#[test]
fn a_remembered_header_still_has_every_signature_checked_with_its_key() {
    let a = SigningKey::hmac_sha256("a", &[1; 32]).unwrap();
    let b = SigningKey::hmac_sha256("b", &[2; 32]).unwrap();
    let ring = KeyRing::new(a.clone())
        .with_verification_key(b.verification_key())
        .unwrap();
    let header = encode_header(&a, "t");
    verify(&sign_compact(&a, &header, b"1").unwrap(), &ring).unwrap();
    // a's header on a token b signed.
    let swapped = token_from_parts(&b, &header, &b64("1"));
    assert_eq!(verify(&swapped, &ring), Err(JwsError::InvalidSignature));
}

#[test]
fn a_changed_ring_forgets_what_the_old_one_remembered() {
    let only = SigningKey::generate(JwsAlgorithm::EdDsa, "only").unwrap();
    let ring = KeyRing::verify_only(vec![only.verification_key()]).unwrap();
    // No kid: the one key of a one-key ring.
    let token = token_with_header(&only, r#"{"alg":"EdDSA"}"#, b"1");
    verify(&token, &ring).unwrap();
    let grown = ring.clone().with_verification_key(ed_key("other")).unwrap();
    assert_eq!(verify(&token, &grown), Err(JwsError::MissingKeyId));
    assert_eq!(verify(&token, &ring).unwrap().payload, b"1");

    // Removing a key moves the others: what they select stays right.
    let a = SigningKey::generate(JwsAlgorithm::EdDsa, "a").unwrap();
    let b = SigningKey::generate(JwsAlgorithm::EdDsa, "b").unwrap();
    let ring = KeyRing::new(a.clone()).with_signing_key(b.clone()).unwrap();
    let token_a = sign_compact(&a, &encode_header(&a, "t"), b"a").unwrap();
    let token_b = sign_compact(&b, &encode_header(&b, "t"), b"b").unwrap();
    verify(&token_a, &ring).unwrap();
    verify(&token_b, &ring).unwrap();
    let ring = ring.without_key("a").unwrap();
    assert_eq!(verify(&token_a, &ring), Err(JwsError::UnknownKeyId));
    let after = verify(&token_b, &ring).unwrap();
    assert_eq!(
        (after.header.kid.as_deref(), &after.payload[..]),
        (Some("b"), &b"b"[..])
    );
}

#[test]
fn a_remembered_header_finds_the_signature_by_its_length_and_misshapen_tokens_fail_alike() {
    let key = SigningKey::from_pem(
        JwsAlgorithm::Rs256,
        "rsa",
        include_bytes!("../../../../tests/keys/rsa2048-test-only.pem"),
    )
    .unwrap();
    let warm = KeyRing::new(key.clone());
    let header = encode_header(&key, "t");
    let token = sign_compact(&key, &header, b"{}").unwrap();
    assert_eq!(verify(&token, &warm).unwrap().payload, b"{}");
    let (input, signature) = token.rsplit_once('.').unwrap();
    let (_, payload) = input.split_once('.').unwrap();
    for misshapen in [
        format!("{header}.{payload}.x.{signature}"),
        format!(
            "{header}.{payload}.{}.{}",
            &signature[..10],
            &signature[10..]
        ),
        format!("{header}.{payload}.{}", &signature[1..]),
        format!("{header}.{payload}.{signature}.x"),
        format!("{header}.{payload}{signature}"),
        format!("{header}..{signature}"),
    ] {
        let fresh = KeyRing::new(key.clone());
        let verdict = verify(&misshapen, &warm);
        assert!(verdict.is_err(), "{misshapen}");
        assert_eq!(verdict, verify(&misshapen, &fresh), "{misshapen}");
    }
}

#[test]
fn the_same_header_spelt_otherwise_is_read_afresh() {
    let (ring, key) = hs256_ring("k");
    verify(
        &sign_compact(&key, &encode_header(&key, "t"), b"1").unwrap(),
        &ring,
    )
    .unwrap();
    let reordered = token_with_header(&key, r#"{"typ":"t","kid":"k","alg":"HS256"}"#, b"2");
    assert_eq!(
        verify(&reordered, &ring).unwrap().header.typ.as_deref(),
        Some("t")
    );
    let critical = token_with_header(&key, r#"{"alg":"HS256","kid":"k","crit":["x"]}"#, b"3");
    assert_eq!(verify(&critical, &ring), Err(JwsError::CriticalHeader));
}

// ----- properties ------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_input_never_panics(input in "[A-Za-z0-9_\\-.=+/ ]{0,300}") {
        let (ring, _) = hs256_ring("k");
        let _ = verify_compact(&input, &ring, MAX);
    }

    #[test]
    fn arbitrary_headers_never_panic_and_unsigned_ones_never_verify(header in "\\PC{0,80}") {
        let (ring, key) = hs256_ring("k");
        let token = format!("{}.{}.{}", b64(&header), b64("{}"), b64([0u8; 32]));
        prop_assert!(verify_compact(&token, &ring, MAX).is_err());
        let signed = token_with_header(&key, &header, b"{}");
        let _ = verify_compact(&signed, &ring, MAX);
    }

    #[test]
    fn any_character_changed_in_a_token_is_rejected(
        index in 0usize..200,
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".chars().collect::<Vec<_>>()
        ),
    ) {
        let (ring, key) = hs256_ring("k");
        let token = sign_compact(&key, &encode_header(&key, "t"), br#"{"sub":"x","n":1}"#).unwrap();
        let index = index % token.len();
        let mut bytes = token.clone().into_bytes();
        prop_assume!(bytes[index] != replacement as u8);
        bytes[index] = replacement as u8;
        let forged = String::from_utf8(bytes).unwrap();
        prop_assert!(verify_compact(&forged, &ring, MAX).is_err());
    }

    #[test]
    fn a_ring_that_remembers_headers_gives_every_token_a_fresh_rings_verdict(
        header in prop::sample::select(vec![
            r#"{"alg":"HS256","kid":"k","typ":"t"}"#,
            r#"{"alg":"HS256","kid":"k"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"HS256","kid":"other"}"#,
            r#"{"alg":"HS256","kid":"k","crit":[]}"#,
            r#"{"alg":"none","kid":"k"}"#,
        ]),
        index in 0usize..120,
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".chars().collect::<Vec<_>>()
        ),
    ) {
        let (warm, key) = hs256_ring("k");
        verify_compact(&sign_compact(&key, &encode_header(&key, "t"), b"{}").unwrap(), &warm, MAX).unwrap();
        let token = token_with_header(&key, header, br#"{"sub":"x"}"#);
        let mut bytes = token.into_bytes();
        let index = index % bytes.len();
        bytes[index] = replacement as u8;
        let token = String::from_utf8(bytes).unwrap();
        let fresh = KeyRing::new(key.clone());
        prop_assert_eq!(verify_compact(&token, &warm, MAX), verify_compact(&token, &fresh, MAX));
    }

    #[test]
    fn sign_then_verify_is_identity_on_the_payload(payload in prop::collection::vec(any::<u8>(), 0..200)) {
        let (ring, key) = hs256_ring("k");
        let token = sign_compact(&key, &encode_header(&key, "t"), &payload).unwrap();
        prop_assert_eq!(verify_compact(&token, &ring, MAX).unwrap().payload, payload);
    }
}
