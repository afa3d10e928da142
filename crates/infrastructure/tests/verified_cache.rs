//! The verified-token cache cannot weaken verification: a cached token
//! altered in any byte, signed by a removed key, expired, revoked,
//! force-logged-out or with stale claims gets exactly the verdict it gets
//! without the cache, from one thread or many, and the cache stays within
//! its bound.

// Test code: a panic is a failed test (clippy.toml allows these in `#[test]`
// functions, but not in an integration test's helper functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use tessera_application::external::{ExternalIdentity, ExternalTokenVerifier};
use tessera_application::ports::{SessionTokenCodec, WatermarkScope};
use tessera_application::{
    RevokeRequest, RevokeSession, RotationNeed, SessionTokenClaims, VerifySession,
};
use tessera_domain::{NewSession, SessionEntity, UserRole};
use tessera_infrastructure::identity::{
    ClaimMapping, IdentityProvider, JwksTokenVerifier, MissingRole, TokenProfile,
};
use tessera_infrastructure::{
    InMemoryRevocationStore, JwsAlgorithm, JwtSessionCodec, KeyRing, SigningKey, jose,
};
use time::OffsetDateTime;

const ISSUER: &str = "https://api.example";
const AUDIENCE: &str = "web";
const ALGORITHMS: [JwsAlgorithm; 4] = [
    JwsAlgorithm::Hs256,
    JwsAlgorithm::Rs256,
    JwsAlgorithm::Es256,
    JwsAlgorithm::EdDsa,
];

/// Claims of `subject`'s session, issued at `iat` for 900 s, valid from
/// `nbf` when given.
fn claims(subject: &Subject, iat: i64, nbf: Option<i64>) -> SessionTokenClaims<UserRole> {
    let session = SessionEntity::new(NewSession {
        user_id: subject.user,
        session_id: subject.session,
        role: UserRole::Admin,
        capabilities: BTreeSet::new(),
        tenant: subject.tenant.clone(),
        issued_at: at(iat),
        expires_at: at(iat + 900),
        authenticated_at: at(iat),
        authentication: Default::default(),
    })
    .unwrap();
    SessionTokenClaims::new(session, nbf.map(at))
}

fn codec(ring: KeyRing) -> JwtSessionCodec {
    JwtSessionCodec::new(ring, ISSUER, AUDIENCE)
}

fn sign(key: &SigningKey, claims: &SessionTokenClaims<UserRole>) -> String {
    codec(KeyRing::new(key.clone()))
        .encode(claims)
        .unwrap()
        .expose_secret()
        .to_owned()
}

fn decode(codec: &JwtSessionCodec, token: &str) -> Result<SessionTokenClaims<UserRole>, String> {
    SessionTokenCodec::<UserRole>::decode(codec, token).map_err(|e| e.code().to_owned())
}

fn hits(codec: &JwtSessionCodec) -> u64 {
    codec.verified_cache_stats().unwrap().hits
}

/// `token` with the byte at `position` (modulo its length) set to `value`,
/// or `None` when that byte already is `value`.
fn altered(token: &str, position: usize, value: u8) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    let byte = bytes.get_mut(position % token.len()).unwrap();
    if *byte == value {
        return None;
    }
    *byte = value;
    Some(String::from_utf8(bytes).unwrap())
}

// ----- the codec ----------------------------------------------------------------------

/// Per algorithm: a codec with the cache on, one without, and a token the
/// first has cached.
struct Cached {
    cached: JwtSessionCodec,
    uncached: JwtSessionCodec,
    token: String,
}

static CACHED: LazyLock<Vec<Cached>> = LazyLock::new(|| {
    ALGORITHMS
        .iter()
        .map(|&alg| {
            let ring = KeyRing::new(SigningKey::generate(alg, "k1").unwrap());
            let cached = codec(ring.clone()).with_clock(Arc::new(ManualClock::starting_at(T)));
            let token = cached
                .encode(&claims(&Subject::new(1, Some("acme")), T, None))
                .unwrap()
                .expose_secret()
                .to_owned();
            // Cached at its second verification.
            decode(&cached, &token).unwrap();
            decode(&cached, &token).unwrap();
            Cached {
                cached,
                uncached: codec(ring).with_verified_cache(0),
                token,
            }
        })
        .collect()
});

proptest! {
    #![proptest_config(Config::with_cases(256))]

    #[test]
    fn altered_token_is_refused_after_a_cached_verification(
        alg in 0..ALGORITHMS.len(),
        position in any::<usize>(),
        value in 0_u8..128,
    ) {
        let Cached { cached, uncached, token } = CACHED.get(alg).unwrap();
        let Some(altered) = altered(token, position, value) else {
            return Err(TestCaseError::reject("the byte is unchanged"));
        };
        let before = hits(cached);
        prop_assert!(decode(cached, token).is_ok());
        prop_assert_eq!(hits(cached), before + 1);
        let refused = decode(cached, &altered);
        prop_assert!(refused.is_err());
        prop_assert_eq!(refused, decode(uncached, &altered));
        prop_assert!(decode(cached, token).is_ok());
    }
}

#[test]
fn token_whose_key_was_removed_from_the_ring_is_refused_on_its_next_use() {
    let k1 = SigningKey::generate(JwsAlgorithm::EdDsa, "k1").unwrap();
    let ring = KeyRing::new(k1.clone());
    let codec = codec(ring.clone()).with_clock(Arc::new(ManualClock::starting_at(T)));
    let token = sign(&k1, &claims(&Subject::new(1, None), T, None));
    for _ in 0..3 {
        decode(&codec, &token).unwrap();
    }
    assert_eq!(hits(&codec), 1);

    // Rotation keeps k1 for verification: the token verifies against the
    // new ring once (the doorkeeper remembers it), then is served from the
    // cache again.
    let k2 = SigningKey::generate(JwsAlgorithm::EdDsa, "k2").unwrap();
    let rotated = ring.with_signing_key(k2.clone()).unwrap();
    codec.replace_keys(rotated.clone());
    assert_eq!(codec.verified_cache_stats().unwrap().entries, 0);
    decode(&codec, &token).unwrap();
    decode(&codec, &token).unwrap();
    assert_eq!(hits(&codec), 2);

    codec.replace_keys(rotated.without_key("k1").unwrap());
    assert_eq!(decode(&codec, &token).unwrap_err(), "unknown_kid");

    // Another key under the same kid: the token's signature no longer holds.
    let impostor = SigningKey::generate(JwsAlgorithm::EdDsa, "k1").unwrap();
    codec.replace_keys(KeyRing::new(k1));
    decode(&codec, &token).unwrap();
    codec.replace_keys(KeyRing::new(impostor));
    assert_eq!(decode(&codec, &token).unwrap_err(), "invalid_signature");
}

#[test]
fn the_codecs_debug_form_shows_no_cached_token() {
    let Cached { cached, token, .. } = CACHED.first().unwrap();
    let shown = format!("{cached:?}");
    let (_, signature) = token.rsplit_once('.').unwrap();
    assert!(shown.contains("hits"), "{shown}");
    assert!(!shown.contains(signature), "{shown}");
}

#[test]
fn the_bound_holds_under_a_flood_of_distinct_valid_tokens() {
    let key = SigningKey::hmac_sha256("k1", &[7; 32]).unwrap();
    let codec = codec(KeyRing::new(key.clone()))
        .with_verified_cache(50)
        .with_clock(Arc::new(ManualClock::starting_at(T)));
    let mut last = String::new();
    for n in 0..600 {
        last = sign(&key, &claims(&Subject::new(n, None), T - 60, None));
        decode(&codec, &last).unwrap();
        decode(&codec, &last).unwrap();
        assert!(codec.verified_cache_stats().unwrap().entries <= 50);
    }
    assert_eq!(codec.verified_cache_stats().unwrap().entries, 50);
    decode(&codec, &last).unwrap();
    assert_eq!(hits(&codec), 1);
}

#[test]
fn many_threads_verifying_valid_and_altered_tokens_get_exact_verdicts() {
    let key = SigningKey::generate(JwsAlgorithm::EdDsa, "k1").unwrap();
    let ring = KeyRing::new(key.clone());
    // Fewer entries than tokens: threads evict each other's entries.
    let codec = codec(ring.clone())
        .with_verified_cache(16)
        .with_clock(Arc::new(ManualClock::starting_at(T)));
    let expected: Vec<_> = (0..24)
        .map(|n| claims(&Subject::new(n, Some("acme")), T - 60, None))
        .collect();
    let tokens: Vec<_> = expected.iter().map(|c| sign(&key, c)).collect();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let (codec, ring, expected, tokens) = (&codec, &ring, &expected, &tokens);
            scope.spawn(move || {
                for i in 0..1_500_usize {
                    let n = (thread * 7 + i * 13) % tokens.len();
                    let token = tokens.get(n).unwrap();
                    if i % 5 == 0 {
                        // A byte of the payload, never its own value.
                        let altered = altered(token, token.len() / 2, b'.').unwrap();
                        assert!(decode(codec, &altered).is_err());
                    } else {
                        assert_eq!(decode(codec, token).as_ref(), Ok(expected.get(n).unwrap()));
                    }
                    if thread == 0 && i % 250 == 0 {
                        codec.replace_keys(ring.clone());
                    }
                    assert!(codec.verified_cache_stats().unwrap().entries <= 16);
                }
            });
        }
    });
    let stats = codec.verified_cache_stats().unwrap();
    assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
}

// ----- through VerifySession -------------------------------------------------------------

/// What a verification comes to, comparably.
type Verdict = Result<(SessionEntity<UserRole>, RotationNeed, OffsetDateTime), String>;

#[derive(Debug, Clone)]
enum Op {
    Verify(usize),
    Advance(i64),
    LogOut(usize),
    ForceLogOut(usize),
    ForceLogOutTenant,
    ClearForceLogOut(usize),
    PermissionsChanged(usize),
    /// A ring of the keys whose bits are set (never none).
    Keys(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..TOKENS).prop_map(Op::Verify),
        3 => (0_i64..400).prop_map(Op::Advance),
        1 => (0..SUBJECTS).prop_map(Op::LogOut),
        1 => (0..SUBJECTS).prop_map(Op::ForceLogOut),
        1 => Just(Op::ForceLogOutTenant),
        1 => (0..SUBJECTS).prop_map(Op::ClearForceLogOut),
        1 => (0..SUBJECTS).prop_map(Op::PermissionsChanged),
        1 => (1_u8..8).prop_map(Op::Keys),
    ]
}

const SUBJECTS: usize = 3;
const TOKENS: usize = 10;

/// Three keys, and ten tokens: for each subject (two in tenant "acme"),
/// one issued 800 s, one 300 s before the start and one at the start,
/// signed by the three keys in turn (one of them valid from 60 s after its
/// issue), and one forged.
struct Fixture {
    keys: Vec<SigningKey>,
    subjects: Vec<Subject>,
    tokens: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let keys: Vec<_> = ["k0", "k1", "k2"]
        .iter()
        .map(|kid| SigningKey::generate(JwsAlgorithm::EdDsa, kid).unwrap())
        .collect();
    let subjects: Vec<_> = (0..SUBJECTS)
        .map(|n| Subject::new(n as u128, (n < 2).then_some("acme")))
        .collect();
    let mut tokens = Vec::new();
    for (s, subject) in subjects.iter().enumerate() {
        for (i, age) in [800, 300, 0].into_iter().enumerate() {
            let nbf = (s == 0 && age == 0).then_some(T + 60);
            let key = keys.get((s + i) % keys.len()).unwrap();
            tokens.push(sign(key, &claims(subject, T - age, nbf)));
        }
    }
    // The signature's first character changed.
    let first = tokens.first().unwrap();
    let position = first.rfind('.').unwrap() + 1;
    let forged = altered(first, position, b'A').or_else(|| altered(first, position, b'B'));
    tokens.push(forged.unwrap());
    assert_eq!(tokens.len(), TOKENS);
    Fixture {
        keys,
        subjects,
        tokens,
    }
});

fn ring(keys: &[SigningKey], mask: u8) -> KeyRing {
    let chosen = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0);
    KeyRing::verify_only(chosen.map(|(_, key)| key.verification_key()).collect()).unwrap()
}

fn verdict(verify: &VerifySession<UserRole>, token: &str) -> Verdict {
    verify
        .execute(token)
        .map(|v| (v.session().clone(), v.rotation(), v.verified_at()))
        .map_err(|e| e.code().to_owned())
}

/// Runs `ops` through a `VerifySession` over a cached codec and one over an
/// uncached codec (sharing clock, store and keys), asserting every verdict
/// is the same; returns each verdict and whether the cached codec answered
/// from the cache.
fn same_verdicts(capacity: usize, ops: &[Op]) -> Result<Vec<(Verdict, bool)>, TestCaseError> {
    let Fixture {
        keys,
        subjects,
        tokens,
    } = &*FIXTURE;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let clock = Arc::new(ManualClock::starting_at(T));
    let store = Arc::new(InMemoryRevocationStore::new(clock.clone(), lifetimes()));
    let revoke = RevokeSession::new(store.clone(), clock.clone(), lifetimes());
    let cached = Arc::new(
        codec(ring(keys, 0b111))
            .with_verified_cache(capacity)
            .with_clock(clock.clone()),
    );
    let uncached = Arc::new(codec(ring(keys, 0b111)).with_verified_cache(0));
    let stack = |codec: Arc<JwtSessionCodec>| {
        VerifySession::new(codec, clock.clone(), store.clone(), lifetimes())
    };
    let (with_cache, without_cache) = (stack(cached.clone()), stack(uncached.clone()));
    let mut verdicts = Vec::new();
    for op in ops {
        let revocation = |request| runtime.block_on(revoke.execute(request)).unwrap();
        let subject = |s: &usize| subjects.get(*s).unwrap();
        match op {
            Op::Verify(t) => {
                let token = tokens.get(*t).unwrap();
                let before = hits(&cached);
                let answer = verdict(&with_cache, token);
                prop_assert_eq!(&answer, &verdict(&without_cache, token), "{:?}", op);
                verdicts.push((answer, hits(&cached) > before));
            }
            Op::Advance(seconds) => clock.advance(*seconds),
            Op::LogOut(s) => revocation(RevokeRequest::Session {
                session_id: subject(s).session,
                authenticated_at: at(T - 800),
            }),
            Op::ForceLogOut(s) => revocation(RevokeRequest::ForceLogout(WatermarkScope::User(
                subject(s).user,
            ))),
            Op::ForceLogOutTenant => revocation(RevokeRequest::ForceLogout(
                WatermarkScope::Tenant(subject(&0).tenant.clone().unwrap()),
            )),
            Op::ClearForceLogOut(s) => revocation(RevokeRequest::ClearForceLogout(
                WatermarkScope::User(subject(s).user),
            )),
            Op::PermissionsChanged(s) => revocation(RevokeRequest::PermissionsChanged(
                WatermarkScope::User(subject(s).user),
            )),
            Op::Keys(mask) => {
                cached.replace_keys(ring(keys, *mask));
                uncached.replace_keys(ring(keys, *mask));
            }
        }
    }
    Ok(verdicts)
}

#[test]
fn cached_and_uncached_verification_give_every_sequence_the_same_verdicts() {
    // A fixed seed: the coverage checks below (what the cache served) are
    // about the sequences drawn, and must not depend on the draw's luck.
    let mut runner = TestRunner::new_with_rng(
        Config::with_cases(512),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let verdicts = RefCell::new(Vec::new());
    runner
        .run(
            &(1_usize..12, prop::collection::vec(op(), 1..60)),
            |(capacity, ops)| {
                verdicts.borrow_mut().extend(same_verdicts(capacity, &ops)?);
                Ok(())
            },
        )
        .unwrap();
    let verdicts = verdicts.into_inner();
    // The comparison covered what matters: tokens answered from the cache
    // and then found revoked, not yet valid, or valid with stale claims;
    // and expired tokens and removed keys (which the cache never answers
    // for: it serves nothing at or after `exp` or under another ring).
    let codes = |served: bool| -> BTreeSet<&str> {
        let verdicts = verdicts.iter().filter(|(_, hit)| *hit == served);
        verdicts
            .filter_map(|(v, _)| v.as_ref().err())
            .map(String::as_str)
            .collect()
    };
    let (served, verified) = (codes(true), codes(false));
    for code in ["revoked", "not_yet_valid"] {
        assert!(served.contains(code), "{code} never served: {served:?}");
    }
    for code in ["expired", "unknown_kid", "invalid_signature"] {
        assert!(verified.contains(code), "{code} never seen: {verified:?}");
    }
    assert!(!served.contains("expired") && !served.contains("unknown_kid"));
    assert!(
        verdicts
            .iter()
            .any(|(v, hit)| *hit && matches!(v, Err(code) if code == "claims_stale"))
    );
}

// ----- provider tokens -------------------------------------------------------------

const PROVIDER: &str = "https://idp.example";

fn provider_token(key: &SigningKey, iat: i64, exp: i64, nbf: Option<i64>) -> String {
    let mut claims = json!({
        "iss": PROVIDER, "sub": "user_2abc", "aud": "api",
        "iat": iat, "exp": exp, "role": "admin",
    });
    if let Some(nbf) = nbf {
        claims
            .as_object_mut()
            .unwrap()
            .insert("nbf".to_owned(), json!(nbf));
    }
    let header = jose::encode_header(key, "JWT");
    jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

fn provider(
    key: &SigningKey,
    clock: Arc<ManualClock>,
    capacity: usize,
) -> JwksTokenVerifier<UserRole> {
    let mapping = ClaimMapping::new("role", MissingRole::Reject)
        .unwrap()
        .map("admin", UserRole::Admin)
        .unwrap();
    JwksTokenVerifier::new(
        IdentityProvider::builder(PROVIDER, TokenProfile::access(mapping).audience("api"))
            .algorithms(&[key.algorithm()])
            .clock(clock)
            .static_keys(KeyRing::verify_only(vec![key.verification_key()]).unwrap())
            .verified_cache(capacity)
            .build()
            .unwrap(),
    )
}

fn provider_hits(verifier: &JwksTokenVerifier<UserRole>) -> u64 {
    let provider = verifier.provider(PROVIDER).unwrap();
    provider.verified_cache_stats().unwrap().hits
}

fn identify(
    verifier: &JwksTokenVerifier<UserRole>,
    token: &str,
) -> Result<ExternalIdentity<UserRole>, String> {
    block_on(verifier.verify(token)).map_err(|e| e.code().to_owned())
}

/// Runs a future that never waits (static keys) to completion.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

static PROVIDER_KEY: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::generate(JwsAlgorithm::Es256, "p1").unwrap());

proptest! {
    #![proptest_config(Config::with_cases(64))]

    #[test]
    fn altered_provider_token_is_refused_after_a_cached_verification(
        position in any::<usize>(),
        value in 0_u8..128,
    ) {
        let key = &*PROVIDER_KEY;
        let clock = Arc::new(ManualClock::starting_at(T));
        let (cached, uncached) = (provider(key, clock.clone(), 100), provider(key, clock, 0));
        let token = provider_token(key, T - 10, T + 300, None);
        let Some(altered) = altered(&token, position, value) else {
            return Err(TestCaseError::reject("the byte is unchanged"));
        };
        for _ in 0..3 {
            prop_assert!(identify(&cached, &token).is_ok());
        }
        prop_assert_eq!(provider_hits(&cached), 1);
        let refused = identify(&cached, &altered);
        prop_assert!(refused.is_err());
        prop_assert_eq!(refused, identify(&uncached, &altered));
    }

    #[test]
    fn a_cached_provider_token_gets_the_verdict_it_gets_uncached_as_time_passes(
        steps in prop::collection::vec((0_usize..4, 0_i64..200), 1..30),
    ) {
        let key = &*PROVIDER_KEY;
        let clock = Arc::new(ManualClock::starting_at(T));
        let (cached, uncached) = (provider(key, clock.clone(), 2), provider(key, clock.clone(), 0));
        let tokens = [
            provider_token(key, T - 10, T + 100, None),
            provider_token(key, T - 10, T + 600, Some(T + 150)),
            provider_token(key, T + 90, T + 900, None),
            provider_token(key, T - 500, T + 1, None),
        ];
        // Each token verified twice first: cached, whatever its verdict now.
        let warm = tokens.iter().enumerate().flat_map(|(t, _)| [(t, 0), (t, 0)]);
        for (t, advance) in warm.chain(steps) {
            let token = tokens.get(t).unwrap();
            prop_assert_eq!(identify(&cached, token), identify(&uncached, token));
            clock.advance(advance);
        }
    }
}
