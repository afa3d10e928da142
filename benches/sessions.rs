//! VerifySession and EstablishSession against the raw work they wrap, in one
//! run, so that the figures in BENCHMARKS.md are ratios on one machine; and
//! the verified-token cache: a token presented again, a token's first
//! presentation, a flood of new tokens into a full cache, and the memory an
//! entry takes.
//!
//! ```text
//! cargo bench --bench sessions
//! ```
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::hint::black_box;
use std::time::Instant;

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
#[path = "support/memory.rs"]
mod memory;
use interleave::interleaved_ratio;
use memory::resident_bytes;
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

/// A session manager keeping up to `cached` verified tokens (0: no cache).
fn sessions(alg: JwsAlgorithm, cached: usize) -> Tessera<UserRole> {
    Tessera::builder(KeyRing::new(signing_key(alg)), "https://api.example", "web")
        .verified_cache(cached)
        // Never read: these benches do not rotate.
        .user_directory(std::sync::Arc::new(tessera::InMemoryUserDirectory::new()))
        .build()
}

fn issue(sessions: &Tessera<UserRole>) -> String {
    let issued = sessions.establish().execute(request()).unwrap();
    issued.token.expose_secret().to_owned()
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
    // The yardstick of the "presented again" ratios: HS256, no cache.
    let baseline = sessions(JwsAlgorithm::Hs256, 0);
    let baseline_token = issue(&baseline);
    let verify_baseline = || {
        black_box(
            baseline
                .verify()
                .execute(black_box(&baseline_token))
                .unwrap(),
        );
    };
    for alg in [
        JwsAlgorithm::Hs256,
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ] {
        let sessions = sessions(alg, 0);
        let token = issue(&sessions);
        assert!(sessions.verify().execute(&token).is_ok());
        eprintln!("{}: the session token is {} bytes", alg.name(), token.len());
        let mut group = c.benchmark_group(format!("verify/{}", alg.name()));
        group.bench_function("VerifySession", |b| {
            b.iter(|| sessions.verify().execute(black_box(&token)).unwrap())
        });
        let (input, signature) = split(&token);
        let raw = raw_verifier(alg);
        assert!(raw(&input, &signature));
        let raw_check = || assert!(raw(black_box(&input), black_box(&signature)));
        group.bench_function("raw signature check", |b| b.iter(raw_check));
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
            raw_check,
        );
        eprintln!(
            "verify/{}: VerifySession / raw signature check = {ratio:.3} (interleaved)",
            alg.name()
        );

        // The cache: the same token presented again (cached at its second
        // verification), and a token's first and second presentations (a
        // token never seen before at every call, then each of them again,
        // into a cache with room: the interleaved rounds' 32 x per-round
        // tokens).
        let cached = self::sessions(alg, tessera::infrastructure::DEFAULT_VERIFIED_CACHE_ENTRIES);
        cached.verify().execute(&token).unwrap();
        cached.verify().execute(&token).unwrap();
        let again = || {
            black_box(cached.verify().execute(black_box(&token)).unwrap());
        };
        group.bench_function("VerifySession, presented again", |b| b.iter(again));
        let ratio = interleaved_ratio(20_000, again, verify_baseline);
        eprintln!(
            "verify/{}: presented again / HS256 VerifySession without cache = {ratio:.3} (interleaved)",
            alg.name()
        );
        let first_per_round = per_round.min(1_000);
        let count = 32 * usize::try_from(first_per_round).unwrap();
        // Twice the room, so that no shard is full.
        let first = self::sessions(alg, 2 * count);
        let tokens: Vec<_> = (0..count).map(|_| issue(&first)).collect();
        // Distinct tokens are not in the CPU's caches as one token is, so
        // the same tokens through the manager without a cache are the
        // yardstick here.
        for presentation in ["first", "second"] {
            let (mut with, mut without) = (tokens.iter(), tokens.iter());
            let ratio = interleaved_ratio(
                first_per_round,
                || {
                    let token = with.next().unwrap();
                    black_box(first.verify().execute(black_box(token)).unwrap());
                },
                || {
                    let token = without.next().unwrap();
                    black_box(sessions.verify().execute(black_box(token)).unwrap());
                },
            );
            eprintln!(
                "verify/{}: {presentation} presentation, with cache / without = {ratio:.3} (interleaved)",
                alg.name()
            );
        }
        let stats = first.codec().verified_cache_stats().unwrap();
        assert_eq!(stats.hits, 0, "every one missed");
        eprintln!(
            "verify/{}: {} of {count} tokens cached at their second presentation",
            alg.name(),
            stats.entries
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

/// A flood of tokens never seen before into a full cache of the default
/// size, each presented twice: every verification misses, and the second
/// of each token evicts from a full shard. Seven rounds of 2,000 new HS256
/// tokens, each verified twice with the cache and twice without, which of
/// the two first alternating; the median ratio.
fn flood_of_new_tokens() {
    let cached = sessions(
        JwsAlgorithm::Hs256,
        tessera::infrastructure::DEFAULT_VERIFIED_CACHE_ENTRIES,
    );
    let uncached = sessions(JwsAlgorithm::Hs256, 0);
    let capacity = tessera::infrastructure::DEFAULT_VERIFIED_CACHE_ENTRIES;
    let time = |sessions: &Tessera<UserRole>, tokens: &[String]| {
        let start = Instant::now();
        for token in tokens {
            black_box(sessions.verify().execute(black_box(token)).unwrap());
            black_box(sessions.verify().execute(black_box(token)).unwrap());
        }
        start.elapsed().as_secs_f64()
    };
    let fill: Vec<_> = (0..2 * capacity).map(|_| issue(&cached)).collect();
    time(&cached, &fill);
    let mut ratios: Vec<f64> = (0..7)
        .map(|round| {
            let tokens: Vec<_> = (0..2_000).map(|_| issue(&cached)).collect();
            if round % 2 == 0 {
                let without = time(&uncached, &tokens);
                time(&cached, &tokens) / without
            } else {
                let with = time(&cached, &tokens);
                with / time(&uncached, &tokens)
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let stats = cached.codec().verified_cache_stats().unwrap();
    eprintln!(
        "flood: new HS256 tokens, twice each, into a full cache / without cache = {:.3} (median of 7 rounds; {stats:?})",
        ratios.get(3).unwrap()
    );
}

/// What a cache entry costs in resident memory: a default-size cache
/// filled by three times its capacity of distinct tokens (so every shard
/// is full and has evicted), the growth of resident memory over the
/// entries held. Measured first, and nothing measured is freed before the
/// next measurement, so that no entry lands in memory freed earlier.
fn memory_per_entry(_: &mut Criterion) {
    let mut kept = Vec::new();
    for alg in [JwsAlgorithm::EdDsa, JwsAlgorithm::Hs256] {
        let capacity = tessera::infrastructure::DEFAULT_VERIFIED_CACHE_ENTRIES;
        let cached = sessions(alg, capacity);
        let tokens: Vec<_> = (0..3 * capacity).map(|_| issue(&cached)).collect();
        let before = resident_bytes();
        for token in &tokens {
            cached.verify().execute(token).unwrap();
            cached.verify().execute(token).unwrap();
        }
        let grown = resident_bytes().saturating_sub(before);
        let stats = cached.codec().verified_cache_stats().unwrap();
        eprintln!(
            "memory: {}: {} entries of {}-byte tokens take {} KiB resident, {} bytes per entry",
            alg.name(),
            stats.entries,
            tokens.first().unwrap().len(),
            grown / 1024,
            grown / stats.entries,
        );
        kept.push((cached, tokens));
    }
}

fn bench_flood(_: &mut Criterion) {
    flood_of_new_tokens();
}

/// Cache hits from one thread and from two at once (this machine has two
/// cores): the same token (one shard's lock and counters shared) and a
/// token per thread. The wall time of 200,000 hits per thread, per hit.
fn bench_contention(_: &mut Criterion) {
    let cached = sessions(
        JwsAlgorithm::EdDsa,
        tessera::infrastructure::DEFAULT_VERIFIED_CACHE_ENTRIES,
    );
    let tokens = [issue(&cached), issue(&cached)];
    for token in tokens.iter().chain(&tokens) {
        cached.verify().execute(token).unwrap();
    }
    for (what, token_of) in [("the same token", 0), ("a token each", 1)] {
        for threads in [1, 2] {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for thread in 0..threads {
                    let token = tokens.get(thread * token_of).unwrap();
                    let cached = &cached;
                    scope.spawn(move || {
                        for _ in 0..200_000 {
                            black_box(cached.verify().execute(black_box(token)).unwrap());
                        }
                    });
                }
            });
            let per_hit = start.elapsed().as_secs_f64() / 200_000.0;
            eprintln!(
                "contention: EdDSA hits, {what}, {threads} thread(s): {:.0} ns per hit per thread",
                per_hit * 1e9
            );
        }
    }
}

fn bench_establish(c: &mut Criterion) {
    for alg in [
        JwsAlgorithm::Hs256,
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ] {
        let sessions = sessions(alg, 0);
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

criterion_group!(
    benches,
    memory_per_entry,
    bench_verify,
    bench_flood,
    bench_contention,
    bench_establish
);
criterion_main!(benches);
