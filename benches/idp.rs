//! Identity-provider tokens: RS256 provider-token verification with warm
//! keys (one token profile, and two) against the raw signature check and `jsonwebtoken::decode`, the
//! verified-token cache (a token presented again, its first and second
//! presentations, the memory an entry takes), and ResolveUser on a cache hit, in one run,
//! so that the figures in BENCHMARKS.md are ratios on one machine.
//!
//! ```text
//! cargo bench --bench idp --features jwks-fetch -- --warm-up-time 1 --measurement-time 4
//! ```
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench that cannot set up should stop loudly

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
#[path = "support/interleave.rs"]
mod interleave;
#[path = "support/memory.rs"]
mod memory;
use criterion::{Criterion, criterion_group, criterion_main};
use interleave::interleaved_ratio;
use memory::resident_bytes;
use serde_json::json;
use tessera::application::external::{
    ExternalIdentity, ExternalProfile, ExternalTokenVerifier, ExternalUserDirectory, SubjectKind,
    TokenUse,
};
use tessera::application::{
    CachedExternalUserDirectory, ResolveUser, ResolveUserRequest, UserCachePolicy,
};
use tessera::infrastructure::DEFAULT_VERIFIED_CACHE_ENTRIES;
use tessera::infrastructure::identity::{
    CachePolicy, ClaimMapping, IdentityProvider, InMemoryExternalUserDirectory, JwksDocument,
    JwksFetchError, JwksSource, JwksTokenVerifier, MissingRole, ProviderBuilder, TokenProfile,
};
use tessera::infrastructure::jose;
use tessera::{JwsAlgorithm, KeyRing, SigningKey, SystemClock, UserRole};
use time::OffsetDateTime;

const RSA_PK8: &[u8] = include_bytes!("../tests/keys/rsa2048-test-only.pk8.der");
const RSA_PEM: &[u8] = include_bytes!("../tests/keys/rsa2048-test-only.pem");
const ISSUER: &str = "https://clerk.example";
const PARTY: &str = "https://app.example";

/// Polls a future that needs no I/O once, to completion: the verifier with
/// keys in hand and the cache hit must not wait on anything.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited on I/O"),
    }
}

/// A JWKS endpoint that answers from memory (fetched once, to warm up).
struct StaticJwks(String);

#[async_trait]
impl JwksSource for StaticJwks {
    async fn fetch(&self) -> Result<JwksDocument, JwksFetchError> {
        Ok(JwksDocument {
            body: self.0.clone(),
            max_age: None,
        })
    }
}

fn mapping() -> ClaimMapping<UserRole> {
    ClaimMapping::new(
        "public_metadata.role",
        MissingRole::LeastPrivilege(UserRole::User),
    )
    .unwrap()
    .map("org:admin", UserRole::Admin)
    .unwrap()
    .map("org:member", UserRole::User)
    .unwrap()
    .email("email")
    .unwrap()
}

/// The provider, keeping up to `cached` verified tokens (0: no cache).
fn provider(
    cached: usize,
    keys: impl FnOnce(
        tessera::infrastructure::identity::ProviderBuilder<UserRole>,
    ) -> tessera::infrastructure::identity::ProviderBuilder<UserRole>,
) -> JwksTokenVerifier<UserRole> {
    let builder = IdentityProvider::builder(ISSUER, access_profile()).verified_cache(cached);
    JwksTokenVerifier::new(keys(builder).build().unwrap())
}

/// Clerk-shaped session tokens, used as access tokens for the API.
fn access_profile() -> TokenProfile<UserRole> {
    TokenProfile::access(mapping())
        .audience("api")
        .allowed_party(PARTY)
}

/// A Clerk-shaped token of user `user`, valid for an hour from now.
fn provider_token(key: &SigningKey, user: &str) -> String {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": ISSUER, "sub": user, "aud": "api", "azp": PARTY,
        "iat": now - 10, "nbf": now - 10, "exp": now + 3600, "sid": "sess_2xyz",
        "email": "ada@example.com", "public_metadata": { "role": "org:admin" },
    });
    let header = jose::encode_header(key, "JWT");
    jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

/// The claims as jsonwebtoken's baseline sees them.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // fields exist to be deserialized, as an application would
struct ProviderClaims {
    iss: String,
    sub: String,
    aud: String,
    azp: String,
    iat: i64,
    exp: i64,
    email: Option<String>,
    public_metadata: Metadata,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Metadata {
    role: String,
}

fn bench_verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    let key = SigningKey::from_pem(JwsAlgorithm::Rs256, "clerk-1", RSA_PEM).unwrap();
    let token = provider_token(&key, "user_2abcdefghijklmnop");
    eprintln!("RS256: the provider token is {} bytes", token.len());
    let jwks = KeyRing::new(key.clone()).to_public_jwk_set().unwrap();
    let fetched_keys = |b: ProviderBuilder<UserRole>| {
        b.jwks(Arc::new(StaticJwks(jwks.clone())), CachePolicy::default())
    };

    let static_keys = provider(0, |b| b.static_keys(KeyRing::from_jwk_set(&jwks).unwrap()));
    let cached = provider(0, fetched_keys);
    // Warm the cache: the first verification fetches the JWK set.
    let identity = runtime.block_on(cached.verify(&token)).unwrap();
    assert_eq!(identity.role, UserRole::Admin);
    ready(static_keys.verify(&token)).unwrap();

    let mut group = c.benchmark_group("idp/verify RS256");
    group.bench_function("JwksTokenVerifier, warm key cache", |b| {
        b.iter(|| ready(cached.verify(black_box(&token))).unwrap())
    });
    group.bench_function("JwksTokenVerifier, static keys", |b| {
        b.iter(|| ready(static_keys.verify(black_box(&token))).unwrap())
    });

    let (input, signature) = token.rsplit_once('.').unwrap();
    let (input, signature) = (
        input.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(signature).unwrap(),
    );
    let pair = RsaKeyPair::from_pkcs8(RSA_PK8).unwrap();
    let public = pair.public_key();
    let (n, e) = (
        public.modulus().big_endian_without_leading_zero(),
        public.exponent().big_endian_without_leading_zero(),
    );
    let raw = aws_lc_rs::rsa::PublicKeyComponents { n, e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    assert!(raw.verify_sig(&input, &signature).is_ok());
    let raw_check = || {
        assert!(
            raw.verify_sig(black_box(&input), black_box(&signature))
                .is_ok()
        )
    };
    group.bench_function("raw signature check", |b| b.iter(raw_check));
    let ratio = interleaved_ratio(
        200,
        || {
            ready(cached.verify(black_box(&token))).unwrap();
        },
        raw_check,
    );
    eprintln!("idp/verify RS256: warm key cache / raw signature check = {ratio:.3} (interleaved)");

    // The same token through a provider with a second profile (ID tokens
    // for a client, a verified email required): matched to its profile
    // by `aud` among two.
    let two_profiles = JwksTokenVerifier::new(
        IdentityProvider::builder(ISSUER, access_profile())
            .profile(
                TokenProfile::id_token(mapping())
                    .audience("web-client")
                    .require_claim_value("email_verified", true),
            )
            .verified_cache(0)
            .static_keys(KeyRing::from_jwk_set(&jwks).unwrap())
            .build()
            .unwrap(),
    );
    let identity = ready(two_profiles.verify(&token)).unwrap();
    assert_eq!(identity.token_use, TokenUse::Access);
    group.bench_function("JwksTokenVerifier, two profiles", |b| {
        b.iter(|| ready(two_profiles.verify(black_box(&token))).unwrap())
    });
    let ratio = interleaved_ratio(
        200,
        || {
            ready(two_profiles.verify(black_box(&token))).unwrap();
        },
        raw_check,
    );
    eprintln!("idp/verify RS256: two profiles / raw signature check = {ratio:.3} (interleaved)");

    // The verified-token cache: the same token presented again (cached at
    // its second verification), and a token's first and second
    // presentations (a token never seen before at every call, then each
    // of them again: the interleaved rounds' 32 x 200 tokens).
    let again = provider(DEFAULT_VERIFIED_CACHE_ENTRIES, fetched_keys);
    runtime.block_on(again.verify(&token)).unwrap();
    runtime.block_on(again.verify(&token)).unwrap();
    let verify_again = || {
        ready(again.verify(black_box(&token))).unwrap();
    };
    group.bench_function("JwksTokenVerifier, presented again", |b| {
        b.iter(verify_again)
    });
    let ratio = interleaved_ratio(200, verify_again, raw_check);
    eprintln!("idp/verify RS256: presented again / raw signature check = {ratio:.3} (interleaved)");
    let first = provider(2 * 32 * 200, fetched_keys);
    runtime.block_on(first.verify(&token)).unwrap();
    let tokens: Vec<_> = (0..32 * 200)
        .map(|n| provider_token(&key, &format!("user_{n:020}")))
        .collect();
    // Distinct tokens are not in the CPU's caches as one token is, so the
    // same tokens through the provider without a cache are the yardstick.
    for presentation in ["first", "second"] {
        let (mut with, mut without) = (tokens.iter(), tokens.iter());
        let ratio = interleaved_ratio(
            200,
            || {
                ready(first.verify(black_box(with.next().unwrap()))).unwrap();
            },
            || {
                ready(cached.verify(black_box(without.next().unwrap()))).unwrap();
            },
        );
        eprintln!(
            "idp/verify RS256: {presentation} presentation, with cache / without = {ratio:.3} (interleaved)"
        );
    }
    let stats = first
        .provider(ISSUER)
        .unwrap()
        .verified_cache_stats()
        .unwrap();
    assert_eq!(stats.hits, 0, "every one missed");
    eprintln!(
        "idp/verify RS256: {} of {} tokens cached at their second presentation",
        stats.entries,
        tokens.len()
    );
    memory_per_entry(&key, &runtime);

    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        &URL_SAFE_NO_PAD.encode(n),
        &URL_SAFE_NO_PAD.encode(e),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&["api"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 60;
    validation.validate_nbf = true;
    jsonwebtoken::decode::<ProviderClaims>(&token, &decoding, &validation).unwrap();
    group.bench_function("jsonwebtoken::decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<ProviderClaims>(black_box(&token), &decoding, &validation)
                .unwrap()
        })
    });
    group.finish();
}

/// What a cache entry costs in resident memory: a cache of 2,000 entries
/// filled by three times as many distinct tokens (so every shard is full
/// and has evicted), the growth of resident memory over the entries held.
fn memory_per_entry(key: &SigningKey, runtime: &tokio::runtime::Runtime) {
    let verifier = provider(2_000, |b| {
        b.static_keys(KeyRing::verify_only(vec![key.verification_key()]).unwrap())
    });
    let tokens: Vec<_> = (0..6_000)
        .map(|n| provider_token(key, &format!("user_{n:020}")))
        .collect();
    let before = resident_bytes();
    for token in &tokens {
        runtime.block_on(verifier.verify(token)).unwrap();
        runtime.block_on(verifier.verify(token)).unwrap();
    }
    let grown = resident_bytes().saturating_sub(before);
    let stats = verifier
        .provider(ISSUER)
        .unwrap()
        .verified_cache_stats()
        .unwrap();
    eprintln!(
        "memory: {} entries of {}-byte provider tokens take {} KiB resident, {} bytes per entry",
        stats.entries,
        tokens.first().unwrap().len(),
        grown / 1024,
        grown / stats.entries,
    );
}

fn bench_resolve(c: &mut Criterion) {
    let identity = ExternalIdentity {
        issuer: ISSUER.to_owned(),
        subject: tessera::application::external::ExternalSubject::parse("user_2abcdefghijklmnop")
            .unwrap(),
        token_use: TokenUse::Access,
        subject_kind: SubjectKind::User,
        role: UserRole::Admin,
        email: Some("ada@example.com".into()),
        name: None,
        issued_at: OffsetDateTime::now_utc(),
        authenticated_at: None,
        authentication: Default::default(),
        expires_at: OffsetDateTime::now_utc(),
    };
    let memory = Arc::new(InMemoryExternalUserDirectory::<UserRole>::new());
    // 10,000 other users in the directory and the cache, so lookups hash
    // into a realistic map.
    for n in 0..10_000 {
        let mut profile = ExternalProfile::from_identity(&identity);
        profile.subject =
            tessera::application::external::ExternalSubject::parse(&format!("user_{n:020}"))
                .unwrap();
        ready(memory.upsert_external(profile)).unwrap();
    }
    ready(memory.upsert_external(ExternalProfile::from_identity(&identity))).unwrap();
    let cache = Arc::new(CachedExternalUserDirectory::new(
        memory.clone(),
        UserCachePolicy::new(20_000, time::Duration::seconds(60)),
        Arc::new(SystemClock),
    ));
    let cached = ResolveUser::new(cache.clone());
    let uncached = ResolveUser::new(memory);
    let request = ResolveUserRequest {
        identity: &identity,
    };
    // Fill the cache.
    assert!(ready(cached.execute(request)).unwrap().user.user.enabled);
    assert_eq!(cache.len(), 1);

    let mut group = c.benchmark_group("idp/ResolveUser");
    group.bench_function("cache hit", |b| {
        b.iter(|| ready(cached.execute(black_box(request))).unwrap())
    });
    group.bench_function("in-memory directory hit, no cache", |b| {
        b.iter(|| ready(uncached.execute(black_box(request))).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_verify, bench_resolve);
criterion_main!(benches);
