//! VerifySession and EstablishSession against the raw work they wrap, in one
//! run, so that the figures in BENCHMARKS.md are ratios on one machine.
//!
//! ```text
//! cargo bench --bench sessions
//! ```
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::hint::black_box;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use aws_lc_rs::{hmac, rand::SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "support/interleave.rs"]
mod interleave;
use interleave::interleaved_ratio;
use tessera::application::EstablishRequest;
use tessera::domain::{Capability, TenantId, UserId};
use tessera::{JwsAlgorithm, KeyRing, SigningKey, Tessera, UserRole};

const HS_SECRET: [u8; 32] = [0x5a; 32];
const RSA_PK8: &[u8] = include_bytes!("../tests/keys/rsa2048-test-only.pk8.der");
const P256_PK8: &[u8] = include_bytes!("../tests/keys/p256-test-only.pk8.der");
const ED25519_PK8: &[u8] = include_bytes!("../tests/keys/ed25519-test-only.pk8.der");
const RSA_PEM: &[u8] = include_bytes!("../tests/keys/rsa2048-test-only.pem");
const P256_PEM: &[u8] = include_bytes!("../tests/keys/p256-test-only.pem");
const ED25519_PEM: &[u8] = include_bytes!("../tests/keys/ed25519-test-only.pem");

fn signing_key(alg: JwsAlgorithm) -> SigningKey {
    match alg {
        JwsAlgorithm::Hs256 => SigningKey::hmac_sha256("bench", &HS_SECRET),
        JwsAlgorithm::Rs256 => SigningKey::from_pem(alg, "bench", RSA_PEM),
        JwsAlgorithm::Es256 => SigningKey::from_pem(alg, "bench", P256_PEM),
        JwsAlgorithm::EdDsa => SigningKey::from_pem(alg, "bench", ED25519_PEM),
    }
    .unwrap()
}

fn sessions(alg: JwsAlgorithm) -> Tessera<UserRole> {
    Tessera::builder(KeyRing::new(signing_key(alg)), "https://api.example", "web").build()
}

fn request() -> EstablishRequest<UserRole> {
    EstablishRequest {
        user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap(),
        role: UserRole::Moderator,
        capabilities: [
            Capability::parse("posts:write").unwrap(),
            Capability::parse("posts:hide").unwrap(),
        ]
        .into(),
        tenant: Some(TenantId::parse("acme").unwrap()),
        authenticated_at: None,
        authentication: Default::default(),
    }
}

/// The signing input and the decoded signature of a compact token.
fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    (
        input.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
}

/// Checks a signature over a message.
type Verifier = Box<dyn Fn(&[u8], &[u8]) -> bool>;
/// Signs a message.
type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A raw signature check with a key parsed once: the floor of verification.
fn raw_verifier(alg: JwsAlgorithm) -> Verifier {
    match alg {
        JwsAlgorithm::Hs256 => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &HS_SECRET);
            Box::new(move |m, s| hmac::verify(&key, m, s).is_ok())
        }
        JwsAlgorithm::Rs256 => {
            let pair = RsaKeyPair::from_pkcs8(RSA_PK8).unwrap();
            let public = pair.public_key();
            let key = aws_lc_rs::rsa::PublicKeyComponents {
                n: public.modulus().big_endian_without_leading_zero(),
                e: public.exponent().big_endian_without_leading_zero(),
            }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .unwrap();
            Box::new(move |m, s| key.verify_sig(m, s).is_ok())
        }
        JwsAlgorithm::Es256 => {
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, P256_PK8).unwrap();
            let key =
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()).unwrap();
            Box::new(move |m, s| key.verify_sig(m, s).is_ok())
        }
        JwsAlgorithm::EdDsa => {
            let pair = Ed25519KeyPair::from_pkcs8(ED25519_PK8).unwrap();
            let key = ParsedPublicKey::new(&ED25519, pair.public_key().as_ref()).unwrap();
            Box::new(move |m, s| key.verify_sig(m, s).is_ok())
        }
    }
}

/// A raw signature with a key parsed once: the floor of signing.
fn raw_signer(alg: JwsAlgorithm) -> Signer {
    let rng = SystemRandom::new();
    match alg {
        JwsAlgorithm::Hs256 => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &HS_SECRET);
            Box::new(move |m| hmac::sign(&key, m).as_ref().to_vec())
        }
        JwsAlgorithm::Rs256 => {
            let pair = RsaKeyPair::from_pkcs8(RSA_PK8).unwrap();
            Box::new(move |m| {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, m, &mut sig).unwrap();
                sig
            })
        }
        JwsAlgorithm::Es256 => {
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, P256_PK8).unwrap();
            Box::new(move |m| pair.sign(&rng, m).unwrap().as_ref().to_vec())
        }
        JwsAlgorithm::EdDsa => {
            let pair = Ed25519KeyPair::from_pkcs8(ED25519_PK8).unwrap();
            Box::new(move |m| pair.sign(m).as_ref().to_vec())
        }
    }
}

/// The claims as jsonwebtoken's baseline sees them.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // fields exist to be deserialized, as an application would
struct BareClaims {
    sub: String,
    jti: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    auth_time: i64,
    role: String,
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    tid: Option<String>,
}

fn bench_verify(c: &mut Criterion) {
    for alg in [
        JwsAlgorithm::Hs256,
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ] {
        let sessions = sessions(alg);
        let token = sessions
            .establish()
            .execute(request())
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        assert!(sessions.verify().execute(&token).is_ok());
        eprintln!("{}: the session token is {} bytes", alg.name(), token.len());
        let mut group = c.benchmark_group(format!("verify/{}", alg.name()));
        group.bench_function("VerifySession", |b| {
            b.iter(|| sessions.verify().execute(black_box(&token)).unwrap())
        });
        let (input, signature) = split(&token);
        let raw = raw_verifier(alg);
        assert!(raw(&input, &signature));
        group.bench_function("raw signature check", |b| {
            b.iter(|| assert!(raw(black_box(&input), black_box(&signature))))
        });
        let per_round = if alg == JwsAlgorithm::Hs256 {
            20_000
        } else {
            200
        };
        let ratio = interleaved_ratio(
            per_round,
            || {
                black_box(sessions.verify().execute(black_box(&token)).unwrap());
            },
            || assert!(raw(black_box(&input), black_box(&signature))),
        );
        eprintln!(
            "verify/{}: VerifySession / raw signature check = {ratio:.3} (interleaved)",
            alg.name()
        );
        if alg == JwsAlgorithm::Hs256 {
            let key = jsonwebtoken::DecodingKey::from_secret(&HS_SECRET);
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            validation.set_issuer(&["https://api.example"]);
            validation.set_audience(&["web"]);
            validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
            validation.leeway = 30;
            validation.validate_nbf = true;
            jsonwebtoken::decode::<BareClaims>(&token, &key, &validation).unwrap();
            group.bench_function("jsonwebtoken::decode", |b| {
                b.iter(|| {
                    jsonwebtoken::decode::<BareClaims>(black_box(&token), &key, &validation)
                        .unwrap()
                })
            });
            let ratio = interleaved_ratio(
                20_000,
                || {
                    black_box(sessions.verify().execute(black_box(&token)).unwrap());
                },
                || {
                    black_box(
                        jsonwebtoken::decode::<BareClaims>(black_box(&token), &key, &validation)
                            .unwrap(),
                    );
                },
            );
            eprintln!(
                "verify/HS256: VerifySession / jsonwebtoken::decode = {ratio:.3} (interleaved)"
            );
        }
        group.finish();
    }
}

fn bench_establish(c: &mut Criterion) {
    for alg in [
        JwsAlgorithm::Hs256,
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ] {
        let sessions = sessions(alg);
        let request = request();
        let token = sessions.establish().execute(request.clone()).unwrap().token;
        let (input, _) = split(token.expose_secret());
        let sign = raw_signer(alg);
        let mut group = c.benchmark_group(format!("establish/{}", alg.name()));
        group.bench_function("EstablishSession", |b| {
            b.iter(|| {
                sessions
                    .establish()
                    .execute(black_box(request.clone()))
                    .unwrap()
            })
        });
        group.bench_function("raw sign", |b| b.iter(|| sign(black_box(&input))));
        let per_round = match alg {
            JwsAlgorithm::Hs256 => 20_000,
            JwsAlgorithm::Rs256 => 20,
            JwsAlgorithm::Es256 | JwsAlgorithm::EdDsa => 200,
        };
        let ratio = interleaved_ratio(
            per_round,
            || {
                black_box(
                    sessions
                        .establish()
                        .execute(black_box(request.clone()))
                        .unwrap(),
                );
            },
            || {
                black_box(sign(black_box(&input)));
            },
        );
        eprintln!(
            "establish/{}: EstablishSession / raw sign = {ratio:.3} (interleaved)",
            alg.name()
        );
        group.finish();
    }
}

criterion_group!(benches, bench_verify, bench_establish);
criterion_main!(benches);
