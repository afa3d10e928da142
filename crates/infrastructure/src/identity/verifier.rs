//! `JwksTokenVerifier`: identity-provider tokens verified locally against
//! each provider's own keys, claims checked and mapped.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_application::external::{
    ExternalIdentity, ExternalSubject, ExternalTokenError, ExternalTokenVerifier, TokenUse,
};
use tessera_application::ports::Clock;
use tessera_domain::{
    Acr, AuthMethod, Authentication, Role, SessionLifetimes, TimeWindow, TimeWindowError,
};
use time::{Duration, OffsetDateTime};

use super::claim_path::{ClaimPath, MappingConfigError};
use super::payload::{Leaf, PathTrie};
use super::profile::{Profile, TokenProfile};
use crate::codec::DEFAULT_MAX_TOKEN_BYTES;
use crate::jose::{self, JwsAlgorithm, JwsError, KeyRing};
use crate::system::SystemClock;
use crate::verified_cache::{DEFAULT_VERIFIED_CACHE_ENTRIES, VerifiedCache, VerifiedCacheStats};

#[cfg(feature = "jwks-fetch")]
use super::cache::KeyCache;

/// A claim of the wrong JSON type or out of range.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ClaimShape(&'static str);

/// A provider setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderConfigError {
    /// A token profile has no audience, and its audience check was not
    /// explicitly skipped.
    #[error("no audience configured; add one or skip the audience check explicitly")]
    NoAudience,
    /// Two token profiles would both fit a token with one audience: their
    /// `typ` rules overlap and they share an audience (or one skips the
    /// audience check). Tell them apart by `typ` or by audience.
    #[error("two token profiles ({} and {}) can fit the same token", .0.as_str(), .1.as_str())]
    AmbiguousProfiles(TokenUse, TokenUse),
    /// The algorithm allow-list is empty or lists HS256 (a provider's keys
    /// are public; a shared secret has no place in a JWKS).
    #[error("the algorithm allow-list must be non-empty and asymmetric")]
    Algorithms,
    /// No keys were configured.
    #[error("no keys configured for the provider")]
    NoKeys,
    /// The clock-skew leeway is negative.
    #[error("the leeway must not be negative")]
    NegativeLeeway,
    /// Two providers share an issuer.
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
    /// A claim mapping setting is wrong.
    #[error(transparent)]
    Mapping(#[from] MappingConfigError),
    /// Keys are to be discovered ([`ProviderBuilder::discover`]) and the
    /// issuer is not a URL keys may be fetched from.
    #[cfg(feature = "jwks-fetch")]
    #[error("the issuer cannot be discovered")]
    IssuerUrl(#[source] super::fetch::JwksUrlError),
}

/// The clock, printed as its name only.
#[derive(Clone)]
struct ClockHandle(Arc<dyn Clock>);

impl std::fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// Where a provider's keys come from.
#[derive(Debug)]
enum ProviderKeys {
    Static(KeyRing),
    #[cfg(feature = "jwks-fetch")]
    Cached(KeyCache),
}

/// The keys a builder was given: ready, or to be discovered from the
/// issuer when built.
#[derive(Debug)]
enum KeysSetting {
    Ready(ProviderKeys),
    #[cfg(feature = "jwks-fetch")]
    Discover(super::cache::CachePolicy),
}

/// A provider's keys as one verification uses them, and their generation
/// (static keys: always 0).
struct Keys<'a> {
    ring: Cow<'a, KeyRing>,
    generation: u64,
}

/// What a token's checks that do not depend on the time produced: the
/// identity, and `nbf` for the time rules. This is what the verified-token
/// cache keeps.
#[derive(Debug, Clone)]
struct CheckedClaims<R> {
    identity: ExternalIdentity<R>,
    not_before: Option<OffsetDateTime>,
}

/// Slots of the payload extractor for the standard claims.
#[derive(Debug, Clone, Copy)]
struct Slots {
    iss: usize,
    sub: usize,
    aud: usize,
    azp: usize,
    client_id: usize,
    exp: usize,
    nbf: usize,
    iat: usize,
    auth_time: usize,
    acr: usize,
    amr: usize,
}

/// One identity provider: its issuer, its keys, what all its tokens must
/// satisfy (algorithms, times, size), and its token profiles (one kind of
/// token each, see [`TokenProfile`]).
#[derive(Debug)]
pub struct IdentityProvider<R: Role> {
    issuer: String,
    algorithms: Vec<JwsAlgorithm>,
    leeway: Duration,
    max_token_bytes: usize,
    profiles: Vec<Profile<R>>,
    keys: ProviderKeys,
    trie: PathTrie,
    slots: Slots,
    clock: ClockHandle,
    verified: Option<VerifiedCache<CheckedClaims<R>>>,
}

impl<R: Role> IdentityProvider<R> {
    /// Starts a provider with issuer `issuer` (compared exactly with `iss`)
    /// and its first token profile (the only one, for a provider whose
    /// tokens are all of one kind; add others with
    /// [`ProviderBuilder::profile`]). Defaults: RS256 only, the leeway of
    /// [`SessionLifetimes::default`] (30 s), 8 KiB tokens, the system
    /// clock, a cache of [`DEFAULT_VERIFIED_CACHE_ENTRIES`] verified
    /// tokens.
    ///
    /// The facade's `Tessera::identity_provider` starts one with the
    /// session manager's own leeway and clock instead, so that a token
    /// this provider accepts is never refused when it is exchanged for a
    /// session.
    pub fn builder(issuer: impl Into<String>, profile: TokenProfile<R>) -> ProviderBuilder<R> {
        ProviderBuilder {
            issuer: issuer.into(),
            profiles: vec![profile],
            algorithms: vec![JwsAlgorithm::Rs256],
            leeway: SessionLifetimes::default().leeway(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            keys: None,
            clock: ClockHandle(Arc::new(SystemClock)),
            verified_cache: DEFAULT_VERIFIED_CACHE_ENTRIES,
        }
    }

    /// The issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The verified-token cache's size and hit counts, when it is on.
    #[must_use]
    pub fn verified_cache_stats(&self) -> Option<VerifiedCacheStats> {
        self.verified.as_ref().map(VerifiedCache::stats)
    }

    /// The key cache, when the keys are fetched.
    #[cfg(feature = "jwks-fetch")]
    #[must_use]
    pub fn key_cache(&self) -> Option<&KeyCache> {
        match &self.keys {
            ProviderKeys::Cached(cache) => Some(cache),
            ProviderKeys::Static(_) => None,
        }
    }

    /// The keys to verify with now.
    async fn keys(&self) -> Result<Keys<'_>, ExternalTokenError> {
        match &self.keys {
            ProviderKeys::Static(ring) => Ok(Keys {
                ring: Cow::Borrowed(ring),
                generation: 0,
            }),
            #[cfg(feature = "jwks-fetch")]
            ProviderKeys::Cached(cache) => {
                let (ring, generation) = cache
                    .ring()
                    .await
                    .map_err(|e| ExternalTokenError::KeysUnavailable(Box::new(e)))?;
                Ok(Keys {
                    ring: Cow::Owned(ring),
                    generation,
                })
            }
        }
    }

    /// Verifies the signature with `keys`, or, for fetched keys that lack
    /// the token's `kid`, with a newer ring; and whether `keys` themselves
    /// verified it.
    async fn verify_signature(
        &self,
        token: &str,
        keys: &Keys<'_>,
    ) -> Result<(jose::VerifiedJws, bool), ExternalTokenError> {
        let verified = jose::verify_compact(token, &keys.ring, self.max_token_bytes);
        #[cfg(feature = "jwks-fetch")]
        if let (Err(JwsError::UnknownKeyId), ProviderKeys::Cached(cache)) = (&verified, &self.keys)
        {
            let Some(ring) = cache.refetch_for_unknown_kid(keys.generation).await else {
                return Err(ExternalTokenError::Jws(
                    tessera_application::ports::JwsFailure::UnknownKeyId,
                ));
            };
            return jose::verify_compact(token, &ring, self.max_token_bytes)
                .map(|jws| (jws, false))
                .map_err(jws_error);
        }
        verified.map(|jws| (jws, true)).map_err(jws_error)
    }

    /// Verifies a token of this provider.
    async fn verify(&self, token: &str) -> Result<ExternalIdentity<R>, ExternalTokenError> {
        if token.len() > self.max_token_bytes {
            return Err(ExternalTokenError::Jws(
                tessera_application::ports::JwsFailure::TooLarge {
                    max: self.max_token_bytes,
                },
            ));
        }
        let keys = self.keys().await?;
        let now = self.clock.0.now();
        let claims = match &self.verified {
            None => self.check(token, &keys).await?.0,
            Some(cache) => {
                cache.retire_rings_before(keys.generation);
                let (now, ring) = (now.unix_timestamp(), keys.generation);
                match cache.get(token, ring, now, |claims| Some(claims.clone())) {
                    Some(claims) => claims,
                    None => {
                        let (claims, under_keys) = self.check(token, &keys).await?;
                        if under_keys {
                            let expires_at = claims.identity.expires_at.unix_timestamp();
                            cache.insert(token, ring, expires_at, now, || claims.clone());
                        }
                        claims
                    }
                }
            }
        };
        self.check_times(&claims, now)?;
        Ok(claims.identity)
    }

    /// Every check of a token that does not depend on the time: signature,
    /// algorithm, `iss`, `sub`, the token profile it fits (by `typ` and
    /// `aud`) and that profile's `azp`, subject and required-claims rules,
    /// the time claims' form, `auth_time` against `iat`, the claim mapping;
    /// and whether `keys` themselves verified the signature.
    async fn check(
        &self,
        token: &str,
        keys: &Keys<'_>,
    ) -> Result<(CheckedClaims<R>, bool), ExternalTokenError> {
        let (jws, under_keys) = self.verify_signature(token, keys).await?;
        if !self.algorithms.contains(&jws.header.alg) {
            return Err(ExternalTokenError::Jws(
                tessera_application::ports::JwsFailure::AlgorithmRejected,
            ));
        }
        let typ = jws.header.typ.as_deref();
        // Refused before the payload is read when no profile takes the type.
        if !self.profiles.iter().any(|p| p.fits_type(typ)) {
            return Err(ExternalTokenError::WrongType);
        }
        let found = self
            .trie
            .extract(&jws.payload)
            .map_err(|e| invalid("payload", e))?;
        let get = |slot: usize| found.get(slot).and_then(Option::as_ref);

        match get(self.slots.iss) {
            Some(Leaf::Str(iss)) if *iss == self.issuer => {}
            Some(Leaf::Str(_)) => return Err(ExternalTokenError::UnknownIssuer),
            None => return Err(ExternalTokenError::MissingClaim("iss")),
            Some(_) => return Err(invalid("iss", ClaimShape("not a string"))),
        }
        let subject = match get(self.slots.sub) {
            Some(Leaf::Str(sub)) => ExternalSubject::parse(sub).map_err(|e| invalid("sub", e))?,
            None => return Err(ExternalTokenError::MissingClaim("sub")),
            Some(_) => return Err(invalid("sub", ClaimShape("not a string"))),
        };
        let profile = self.profile_for(typ, get(self.slots.aud))?;
        let azp = get(self.slots.azp);
        profile.check_party(azp)?;

        let expires_at = time_claim("exp", get(self.slots.exp))?
            .ok_or(ExternalTokenError::MissingClaim("exp"))?;
        let not_before = time_claim("nbf", get(self.slots.nbf))?;
        let issued_at = time_claim("iat", get(self.slots.iat))?
            .ok_or(ExternalTokenError::MissingClaim("iat"))?;
        let authenticated_at = time_claim("auth_time", get(self.slots.auth_time))?;
        if authenticated_at.is_some_and(|at| at > issued_at.saturating_add(self.leeway)) {
            return Err(invalid("auth_time", ClaimShape("later than iat")));
        }
        let authentication = authentication(get(self.slots.acr), get(self.slots.amr))?;

        let subject_kind =
            profile.subject_kind(subject.as_str(), [get(self.slots.client_id), azp], &found);
        profile.check_subject(subject_kind, &found)?;
        let (role, email, name) = profile.read_profile(&found)?;
        let identity = ExternalIdentity {
            issuer: self.issuer.clone(),
            subject,
            token_use: profile.token_use,
            subject_kind,
            role,
            email,
            name,
            issued_at,
            authenticated_at,
            authentication,
            expires_at,
        };
        Ok((
            CheckedClaims {
                identity,
                not_before,
            },
            under_keys,
        ))
    }

    /// The one profile a token with header `typ` and this `aud` fits:
    /// none is [`ExternalTokenError::WrongAudience`] (the type fits some,
    /// as [`IdentityProvider::check`] made sure), several
    /// [`ExternalTokenError::AmbiguousProfile`].
    fn profile_for(
        &self,
        typ: Option<&str>,
        aud: Option<&Leaf<'_>>,
    ) -> Result<&Profile<R>, ExternalTokenError> {
        let mut fitting = self
            .profiles
            .iter()
            .filter(|p| p.fits_type(typ) && p.fits_audience(aud));
        let profile = fitting.next().ok_or(ExternalTokenError::WrongAudience)?;
        if fitting.next().is_some() {
            return Err(ExternalTokenError::AmbiguousProfile);
        }
        Ok(profile)
    }

    /// The time rules at `now`: `exp`, `nbf` and `iat`, with the leeway.
    fn check_times(
        &self,
        claims: &CheckedClaims<R>,
        now: OffsetDateTime,
    ) -> Result<(), ExternalTokenError> {
        // The one rule for both kinds of token (expired at `exp + leeway`).
        TimeWindow {
            issued_at: claims.identity.issued_at,
            not_before: claims.not_before,
            expires_at: claims.identity.expires_at,
        }
        .check(now, self.leeway)
        .map_err(|bound| match bound {
            TimeWindowError::IssuedInFuture => ExternalTokenError::IssuedInFuture,
            TimeWindowError::NotYetValid => ExternalTokenError::NotYetValid,
            TimeWindowError::Expired => ExternalTokenError::Expired,
        })?;
        Ok(())
    }
}

fn invalid(
    claim: &'static str,
    source: impl StdError + Send + Sync + 'static,
) -> ExternalTokenError {
    ExternalTokenError::InvalidClaim {
        claim,
        source: Box::new(source),
    }
}

/// The `acr` (a string) and `amr` (an array of strings) of a provider
/// token, either absent; anything else names the claim at fault.
fn authentication(
    acr: Option<&Leaf<'_>>,
    amr: Option<&Leaf<'_>>,
) -> Result<Authentication, ExternalTokenError> {
    let acr = match acr {
        None => None,
        Some(Leaf::Str(acr)) => Some(Acr::parse(acr).map_err(|e| invalid("acr", e))?),
        Some(_) => return Err(invalid("acr", ClaimShape("not a string"))),
    };
    let amr = match amr {
        None => Vec::new(),
        Some(Leaf::Strings(methods)) => methods
            .iter()
            .map(|m| AuthMethod::parse(m))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid("amr", e))?,
        Some(_) => return Err(invalid("amr", ClaimShape("not an array of strings"))),
    };
    Authentication::new(acr, amr).map_err(|e| invalid("amr", e))
}

fn time_claim(
    claim: &'static str,
    leaf: Option<&Leaf<'_>>,
) -> Result<Option<OffsetDateTime>, ExternalTokenError> {
    let seconds = match leaf {
        None => return Ok(None),
        Some(Leaf::Int(s)) => *s,
        // NumericDate may have a fraction (RFC 7519 §2); whole seconds count.
        Some(Leaf::Float(f)) if f.is_finite() && f.abs() < 1e15 => f.floor() as i64,
        Some(_) => return Err(invalid(claim, ClaimShape("not a number"))),
    };
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(Some)
        .map_err(|e| invalid(claim, e))
}

fn jws_error(error: JwsError) -> ExternalTokenError {
    ExternalTokenError::Jws(error.into())
}

/// Builds an [`IdentityProvider`].
#[must_use = "a builder does nothing until built"]
#[derive(Debug)]
pub struct ProviderBuilder<R: Role> {
    issuer: String,
    profiles: Vec<TokenProfile<R>>,
    algorithms: Vec<JwsAlgorithm>,
    leeway: Duration,
    max_token_bytes: usize,
    keys: Option<KeysSetting>,
    clock: ClockHandle,
    verified_cache: usize,
}

impl<R: Role> ProviderBuilder<R> {
    /// Adds another token profile: another kind of token the provider
    /// issues, verified with the same keys (fetched and cached once for
    /// all profiles). A token is matched to exactly one profile (see
    /// [`TokenProfile`]).
    pub fn profile(mut self, profile: TokenProfile<R>) -> Self {
        self.profiles.push(profile);
        self
    }

    /// The algorithms this provider's tokens may use (default RS256 only).
    pub fn algorithms(mut self, algorithms: &[JwsAlgorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Clock-skew leeway for `exp`, `nbf`, `iat` and `auth_time`, under
    /// the same [`TimeWindow`] rule as session tokens: accepted while
    /// `nbf - leeway <= now < exp + leeway` and `iat <= now + leeway`
    /// (default 30 s, as [`SessionLifetimes::default`]). Give it the
    /// session's leeway ([`SessionLifetimes::leeway`]), as the facade does,
    /// so that an exchange never refuses what the provider accepted.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Caps the size of accepted tokens (default 8 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// The clock (tests pin it).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = ClockHandle(clock);
        self
    }

    /// Fixed keys, networkless: a ring from a JWK, a JWK set or PEM.
    pub fn static_keys(mut self, ring: KeyRing) -> Self {
        self.keys = Some(KeysSetting::Ready(ProviderKeys::Static(ring)));
        self
    }

    /// Keeps up to `capacity` verified tokens of this provider (default
    /// [`DEFAULT_VERIFIED_CACHE_ENTRIES`]); 0 turns the cache off.
    ///
    /// A provider token presented again (on the hybrid path, every request
    /// for the token's life) is cached at its second verification and from
    /// then on skips its signature check and the reading of its claims;
    /// the time rules run every time. Only exactly the same token bytes
    /// verified under the same keys hit, never at or after the token's
    /// `exp`, and keys fetched anew empty the cache. Each entry holds the
    /// token and the identity read from it: the token's size plus about
    /// 500 bytes, 1.2 KiB for a 721-byte Clerk-shaped RS256 token
    /// (measured, see BENCHMARKS.md), plus 16 bytes per entry of capacity
    /// for the doorkeeper.
    pub fn verified_cache(mut self, capacity: usize) -> Self {
        self.verified_cache = capacity;
        self
    }

    /// Keys fetched and cached from `source`.
    #[cfg(feature = "jwks-fetch")]
    pub fn jwks(
        mut self,
        source: Arc<dyn super::cache::JwksSource>,
        policy: super::cache::CachePolicy,
    ) -> Self {
        self.keys = Some(KeysSetting::Ready(ProviderKeys::Cached(KeyCache::new(
            source, policy,
        ))));
        self
    }

    /// Keys fetched and cached as by [`ProviderBuilder::jwks`], from the
    /// JWKS URL the provider's OpenID configuration names
    /// ([`OidcDiscovery`](super::OidcDiscovery) for the issuer, each
    /// request bounded by the policy's `fetch_timeout`): the provider is
    /// configured by its issuer URL alone.
    #[cfg(feature = "jwks-fetch")]
    pub fn discover(mut self, policy: super::cache::CachePolicy) -> Self {
        self.keys = Some(KeysSetting::Discover(policy));
        self
    }

    /// The provider.
    ///
    /// # Errors
    ///
    /// [`ProviderConfigError`] for a setting that cannot work (with
    /// [`ProviderBuilder::discover`], an issuer that is not an `https` URL:
    /// [`ProviderConfigError::IssuerUrl`]).
    pub fn build(self) -> Result<IdentityProvider<R>, ProviderConfigError> {
        if self.profiles.iter().any(TokenProfile::lacks_audience) {
            return Err(ProviderConfigError::NoAudience);
        }
        for (i, a) in self.profiles.iter().enumerate() {
            if let Some(b) = self.profiles.iter().skip(i + 1).find(|b| a.overlaps(b)) {
                return Err(ProviderConfigError::AmbiguousProfiles(
                    a.token_use(),
                    b.token_use(),
                ));
            }
        }
        if self.algorithms.is_empty() || self.algorithms.iter().any(|a| a.is_symmetric()) {
            return Err(ProviderConfigError::Algorithms);
        }
        if self.leeway.is_negative() {
            return Err(ProviderConfigError::NegativeLeeway);
        }
        // Without `jwks-fetch` there is nothing to discover and the match
        // has one arm.
        #[allow(clippy::infallible_destructuring_match)]
        let keys = match self.keys.ok_or(ProviderConfigError::NoKeys)? {
            KeysSetting::Ready(keys) => keys,
            #[cfg(feature = "jwks-fetch")]
            KeysSetting::Discover(policy) => {
                let source =
                    super::discovery::OidcDiscovery::new(&self.issuer, policy.fetch_timeout)
                        .map_err(ProviderConfigError::IssuerUrl)?;
                ProviderKeys::Cached(KeyCache::new(Arc::new(source), policy))
            }
        };
        let mut trie = PathTrie::new();
        let mut add = |name: &str| -> Result<usize, MappingConfigError> {
            trie.add(&ClaimPath::parse(name)?)
        };
        let slots = Slots {
            iss: add("iss")?,
            sub: add("sub")?,
            aud: add("aud")?,
            azp: add("azp")?,
            client_id: add("client_id")?,
            exp: add("exp")?,
            nbf: add("nbf")?,
            iat: add("iat")?,
            auth_time: add("auth_time")?,
            acr: add("acr")?,
            amr: add("amr")?,
        };
        let profiles = self
            .profiles
            .into_iter()
            .map(|profile| profile.compile(&mut trie))
            .collect::<Result<_, _>>()?;
        Ok(IdentityProvider {
            issuer: self.issuer,
            algorithms: self.algorithms,
            leeway: self.leeway,
            max_token_bytes: self.max_token_bytes,
            profiles,
            keys,
            trie,
            slots,
            clock: self.clock,
            verified: VerifiedCache::new(self.verified_cache),
        })
    }
}

/// Verifies identity-provider tokens for one or several providers, each
/// against its own keys only: the token's `iss` picks the provider (read
/// before the signature check only to choose), and the provider then
/// checks everything, `iss` included, after the signature.
#[derive(Debug)]
pub struct JwksTokenVerifier<R: Role> {
    providers: Vec<IdentityProvider<R>>,
    issuer_trie: PathTrie,
}

impl<R: Role> JwksTokenVerifier<R> {
    /// A verifier for one provider.
    #[must_use]
    pub fn new(provider: IdentityProvider<R>) -> Self {
        let mut issuer_trie = PathTrie::new();
        // "iss" is a valid one-segment path; adding it to a fresh trie
        // cannot collide.
        if let Ok(path) = ClaimPath::parse("iss") {
            let _ = issuer_trie.add(&path);
        }
        Self {
            providers: vec![provider],
            issuer_trie,
        }
    }

    /// Adds another provider.
    ///
    /// # Errors
    ///
    /// [`ProviderConfigError::DuplicateIssuer`].
    pub fn with_provider(
        mut self,
        provider: IdentityProvider<R>,
    ) -> Result<Self, ProviderConfigError> {
        if self.providers.iter().any(|p| p.issuer == provider.issuer) {
            return Err(ProviderConfigError::DuplicateIssuer(provider.issuer));
        }
        self.providers.push(provider);
        Ok(self)
    }

    /// The provider with this issuer.
    #[must_use]
    pub fn provider(&self, issuer: &str) -> Option<&IdentityProvider<R>> {
        self.providers.iter().find(|p| p.issuer == issuer)
    }

    fn route(&self, token: &str) -> Result<&IdentityProvider<R>, ExternalTokenError> {
        if let [only] = self.providers.as_slice() {
            return Ok(only);
        }
        let max = self
            .providers
            .iter()
            .map(|p| p.max_token_bytes)
            .max()
            .unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        if token.len() > max {
            return Err(ExternalTokenError::Jws(
                tessera_application::ports::JwsFailure::TooLarge { max },
            ));
        }
        let payload = token.split('.').nth(1).ok_or(ExternalTokenError::Jws(
            tessera_application::ports::JwsFailure::Malformed("not three dot-separated parts"),
        ))?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| {
            ExternalTokenError::Jws(tessera_application::ports::JwsFailure::Malformed(
                "payload is not base64url",
            ))
        })?;
        let iss = self
            .issuer_trie
            .extract(&payload)
            .map_err(|e| invalid("payload", e))?
            .into_iter()
            .next()
            .flatten();
        match iss {
            Some(Leaf::Str(iss)) => self.provider(&iss).ok_or(ExternalTokenError::UnknownIssuer),
            None => Err(ExternalTokenError::MissingClaim("iss")),
            Some(_) => Err(invalid("iss", ClaimShape("not a string"))),
        }
    }
}

#[async_trait]
impl<R: Role> ExternalTokenVerifier<R> for JwksTokenVerifier<R> {
    async fn verify(&self, token: &str) -> Result<ExternalIdentity<R>, ExternalTokenError> {
        self.route(token)?.verify(token).await
    }
}
