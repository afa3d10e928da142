//! tessera's tokens are standard JWTs: jsonwebtoken 11 verifies them, and
//! tessera verifies a session token jsonwebtoken signed, for every algorithm.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use tessera::{JwsAlgorithm, KeyRing, SigningKey};

use crate::support::*;

const HS_SECRET: &[u8] = b"an interop secret of at least 32 bytes!";

struct Pair {
    alg: JwsAlgorithm,
    jwt_alg: Algorithm,
    tessera: SigningKey,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

fn pairs() -> Vec<Pair> {
    let rsa = include_bytes!("../keys/rsa2048-test-only.pem");
    let rsa_pub = include_bytes!("../keys/rsa2048-test-only.pub.pem");
    let p256 = include_bytes!("../keys/p256-test-only.pem");
    let p256_pub = include_bytes!("../keys/p256-test-only.pub.pem");
    let ed = include_bytes!("../keys/ed25519-test-only.pem");
    let ed_pub = include_bytes!("../keys/ed25519-test-only.pub.pem");
    vec![
        Pair {
            alg: JwsAlgorithm::Hs256,
            jwt_alg: Algorithm::HS256,
            tessera: SigningKey::hmac_sha256("interop", HS_SECRET).unwrap(),
            encoding: EncodingKey::from_secret(HS_SECRET),
            decoding: DecodingKey::from_secret(HS_SECRET),
        },
        Pair {
            alg: JwsAlgorithm::Rs256,
            jwt_alg: Algorithm::RS256,
            tessera: SigningKey::from_pem(JwsAlgorithm::Rs256, "interop", rsa).unwrap(),
            encoding: EncodingKey::from_rsa_pem(rsa).unwrap(),
            decoding: DecodingKey::from_rsa_pem(rsa_pub).unwrap(),
        },
        Pair {
            alg: JwsAlgorithm::Es256,
            jwt_alg: Algorithm::ES256,
            tessera: SigningKey::from_pem(JwsAlgorithm::Es256, "interop", p256).unwrap(),
            encoding: EncodingKey::from_ec_pem(p256).unwrap(),
            decoding: DecodingKey::from_ec_pem(p256_pub).unwrap(),
        },
        Pair {
            alg: JwsAlgorithm::EdDsa,
            jwt_alg: Algorithm::EdDSA,
            tessera: SigningKey::from_pem(JwsAlgorithm::EdDsa, "interop", ed).unwrap(),
            encoding: EncodingKey::from_ed_pem(ed).unwrap(),
            decoding: DecodingKey::from_ed_pem(ed_pub).unwrap(),
        },
    ]
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // The manual clock runs in the future of the wall clock; jsonwebtoken
    // reads the wall clock, so only the time checks are left to tessera.
    v.validate_exp = false;
    v
}

#[test]
fn jsonwebtoken_verifies_tokens_tessera_issues() {
    for pair in pairs() {
        let app = spawn_app(KeyRing::new(pair.tessera.clone()));
        let issued = app.sign_in_alice();
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            issued.token.expose_secret(),
            &pair.decoding,
            &validation(pair.jwt_alg),
        )
        .unwrap_or_else(|e| panic!("{:?}: {e}", pair.alg));
        assert_eq!(decoded.header.kid.as_deref(), Some("interop"));
        assert_eq!(
            decoded.header.typ.as_deref(),
            Some(tessera::infrastructure::SESSION_TOKEN_TYPE)
        );
        assert_eq!(decoded.claims["sub"], alice().to_string());
        assert_eq!(decoded.claims["role"], "user");
    }
}

#[test]
fn tessera_verifies_session_tokens_jsonwebtoken_signs() {
    for pair in pairs() {
        let app = spawn_app(KeyRing::new(pair.tessera));
        let mut header = Header::new(pair.jwt_alg);
        header.kid = Some("interop".into());
        header.typ = Some(tessera::infrastructure::SESSION_TOKEN_TYPE.into());
        let token = jsonwebtoken::encode(&header, &payload(START), &pair.encoding).unwrap();
        let verified = app
            .sessions
            .verify()
            .execute(&token)
            .unwrap_or_else(|e| panic!("{:?}: {e}", pair.alg));
        assert_eq!(verified.session().user_id(), &alice());
    }
}
