//! `JwtSessionCodec`: session claims to signed compact JWS and back.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tessera_application::ports::{Clock, SessionTokenCodec, TokenError};
use tessera_application::{SessionToken, SessionTokenClaims};
use tessera_domain::Role;

use crate::claims::SessionJwtClaims;
use crate::jose::{self, JwsError, KeyError, KeyRing};
use crate::system::SystemClock;
use crate::verified_cache::{DEFAULT_VERIFIED_CACHE_ENTRIES, VerifiedCache, VerifiedCacheStats};

/// The `typ` header of every tessera session token (RFC 8725 §3.11 explicit
/// typing), so that no other kind of JWT is ever accepted as a session.
pub const SESSION_TOKEN_TYPE: &str = "tessera-session+jwt";

pub use tessera_application::ports::DEFAULT_MAX_TOKEN_BYTES;

/// The ring in use, with the active signing key's header encoded once and
/// its generation: how many times the keys were replaced before it.
#[derive(Debug)]
struct Keys {
    ring: KeyRing,
    encoded_header: Option<String>,
    generation: u64,
}

impl Keys {
    fn new(ring: KeyRing, generation: u64) -> Self {
        let encoded_header = ring
            .signing_key()
            .map(|key| jose::encode_header(key, SESSION_TOKEN_TYPE));
        Self {
            ring,
            encoded_header,
            generation,
        }
    }
}

/// What the cache keeps per token: the typed claims of the role type the
/// token was decoded as.
type CachedClaims = Box<dyn Any + Send + Sync>;

/// Signs and verifies session tokens with a [`KeyRing`].
///
/// `decode` checks, in order: size, compact form, header (`alg` pinned to
/// the key it names, `kid`, no `crit`), signature, `typ`, then the claims
/// (`iss`, `aud`, and every claim through the enrich mapper). Keys can be
/// replaced at runtime with [`JwtSessionCodec::replace_keys`] without
/// stopping verification.
///
/// None of these checks depends on the time, so a token that passed them
/// passes them again: the codec keeps a bounded cache of verified tokens
/// and their claims (on by default, [`JwtSessionCodec::with_verified_cache`]),
/// and the same token presented again skips its signature check. Only
/// exactly the same token bytes verified under the same key ring hit, and
/// never at or after the token's `exp`; replacing the keys empties it. The
/// time rules and revocation are the use case's and run on every request.
pub struct JwtSessionCodec {
    keys: ArcSwap<Keys>,
    issuer: String,
    audience: String,
    max_token_bytes: usize,
    verified: Option<VerifiedCache<CachedClaims>>,
    clock: Arc<dyn Clock>,
}

impl JwtSessionCodec {
    /// A codec issuing tokens as `issuer` for `audience`, and accepting only
    /// tokens that match both.
    #[must_use]
    pub fn new(ring: KeyRing, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys: ArcSwap::from_pointee(Keys::new(ring, 0)),
            issuer: issuer.into(),
            audience: audience.into(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            verified: VerifiedCache::new(DEFAULT_VERIFIED_CACHE_ENTRIES),
            clock: Arc::new(SystemClock),
        }
    }

    /// Keeps up to `capacity` verified tokens (default
    /// [`DEFAULT_VERIFIED_CACHE_ENTRIES`]); 0 turns the cache off.
    ///
    /// A token is cached at its second verification; from its third on, a
    /// hit costs a lookup and a copy of the claims instead of the signature
    /// check and the claims' parsing (measured: `VerifySession` on a hit
    /// takes a quarter of an uncached HS256 verification, whatever the
    /// algorithm; see BENCHMARKS.md). Each entry holds the token and its
    /// claims: about 1.1 KiB for a 506-byte token with two capabilities and
    /// a tenant, so 11 MiB at the default capacity when full, plus 16 bytes
    /// per entry of capacity for the doorkeeper.
    #[must_use]
    pub fn with_verified_cache(mut self, capacity: usize) -> Self {
        self.verified = VerifiedCache::new(capacity);
        self
    }

    /// The clock the verified-token cache stops serving an entry by, at its
    /// token's `exp` (default the system clock; give it the use cases'
    /// clock). The codec checks nothing time-dependent itself.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The verified-token cache's size and hit counts, when it is on.
    #[must_use]
    pub fn verified_cache_stats(&self) -> Option<VerifiedCacheStats> {
        self.verified.as_ref().map(VerifiedCache::stats)
    }

    /// Caps the size of accepted tokens (default 8 KiB).
    #[must_use]
    pub fn with_max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Swaps in a new key ring, for example one with a new active signing
    /// key and the old key kept for verification until its tokens expire.
    /// Requests in flight finish with the ring they started with. The
    /// verified-token cache is emptied: from now on, every token is
    /// verified against the new ring before it is cached again.
    pub fn replace_keys(&self, ring: KeyRing) {
        let previous = self
            .keys
            .rcu(|current| Keys::new(ring.clone(), current.generation.saturating_add(1)));
        if let Some(cache) = &self.verified {
            cache.retire_rings_before(previous.generation.saturating_add(1));
        }
    }

    /// The key ring in use.
    #[must_use]
    pub fn key_ring(&self) -> KeyRing {
        self.keys.load().ring.clone()
    }
}

fn token_error(error: JwsError) -> TokenError {
    TokenError::Jws(error.into())
}

fn is_session_type(typ: &str) -> bool {
    // Media types compare case-insensitively; "application/" may be omitted
    // (RFC 7515 §4.1.9).
    let typ = typ
        .get(..12)
        .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
        .and_then(|_| typ.get(12..))
        .unwrap_or(typ);
    typ.eq_ignore_ascii_case(SESSION_TOKEN_TYPE)
}

fn signing_error(error: KeyError) -> TokenError {
    TokenError::Signing(Box::new(error))
}

impl<R: Role> SessionTokenCodec<R> for JwtSessionCodec {
    fn encode(&self, claims: &SessionTokenClaims<R>) -> Result<SessionToken, TokenError> {
        let keys = self.keys.load();
        let (Some(key), Some(header)) = (keys.ring.signing_key(), keys.encoded_header.as_deref())
        else {
            return Err(TokenError::Signing(
                "the key ring holds no signing key".into(),
            ));
        };
        let wire = SessionJwtClaims::from_claims(claims, &self.issuer, &self.audience);
        let payload = serde_json::to_vec(&wire).map_err(|e| TokenError::Signing(Box::new(e)))?;
        jose::sign_compact(key, header, &payload)
            .map(SessionToken::new)
            .map_err(signing_error)
    }

    fn decode(&self, token: &str) -> Result<SessionTokenClaims<R>, TokenError> {
        let keys = self.keys.load();
        let Some(cache) = &self.verified else {
            return self.decode_uncached(&keys.ring, token);
        };
        let now = self.clock.now().unix_timestamp();
        let hit = cache.get(token, keys.generation, now, |claims| {
            claims.downcast_ref::<SessionTokenClaims<R>>().cloned()
        });
        if let Some(claims) = hit {
            return Ok(claims);
        }
        let claims = self.decode_uncached(&keys.ring, token)?;
        let expires_at = claims.session().expires_at().unix_timestamp();
        cache.insert(token, keys.generation, expires_at, now, || {
            Box::new(claims.clone())
        });
        Ok(claims)
    }

    /// Reads the unverified header's `typ`: a header that does not decode
    /// is left to [`decode`](SessionTokenCodec::decode) to refuse, so it
    /// counts as a session token.
    fn is_session_token(&self, token: &str) -> bool {
        #[derive(serde::Deserialize)]
        struct Typ<'a> {
            #[serde(borrow)]
            typ: Option<std::borrow::Cow<'a, str>>,
        }
        let encoded = token.split_once('.').map_or(token, |(header, _)| header);
        let Ok(header) =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, encoded)
        else {
            return true;
        };
        match serde_json::from_slice::<Typ<'_>>(&header) {
            Ok(Typ { typ }) => typ.as_deref().is_some_and(is_session_type),
            Err(_) => true,
        }
    }

    fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }
}

impl JwtSessionCodec {
    /// Every check of `decode`, against `ring`, without the cache.
    fn decode_uncached<R: Role>(
        &self,
        ring: &KeyRing,
        token: &str,
    ) -> Result<SessionTokenClaims<R>, TokenError> {
        let jws = jose::verify_compact(token, ring, self.max_token_bytes).map_err(token_error)?;
        if !jws.header.typ.as_deref().is_some_and(is_session_type) {
            return Err(TokenError::WrongType);
        }
        let wire = SessionJwtClaims::from_json(&jws.payload)?;
        if wire.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !wire.aud.contains(&self.audience) {
            return Err(TokenError::WrongAudience);
        }
        Ok(wire.enrich()?)
    }
}

/// Shows the keys' `kid`s and the cache's size, never key material or a
/// token.
impl fmt::Debug for JwtSessionCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSessionCodec")
            .field("keys", &self.keys.load().ring)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::SigningKey;
    use tessera_application::ports::JwsFailure;
    use tessera_domain::UserRole;

    #[test]
    fn a_token_is_routed_as_a_session_token_by_its_header_typ_only() {
        use base64::Engine as _;
        let codec = JwtSessionCodec::new(
            KeyRing::new(SigningKey::generate(crate::JwsAlgorithm::Hs256, "k").unwrap()),
            "https://api.example",
            "web",
        );
        let with = |header: &str| {
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
            <JwtSessionCodec as SessionTokenCodec<UserRole>>::is_session_token(
                &codec,
                &format!("{header}.e30.c2ln"),
            )
        };
        assert!(with(r#"{"alg":"HS256","typ":"tessera-session+jwt"}"#));
        assert!(with(
            r#"{"alg":"HS256","typ":"application/Tessera-Session+JWT"}"#
        ));
        assert!(!with(r#"{"alg":"RS256","typ":"JWT"}"#));
        assert!(!with(r#"{"alg":"RS256","typ":"at+jwt"}"#));
        assert!(!with(r#"{"alg":"RS256"}"#));
        // Not a mention of the type elsewhere in the header.
        assert!(!with(r#"{"alg":"RS256","kid":"tessera-session+jwt"}"#));
        // What cannot be read goes to the session verifier, which refuses it.
        assert!(with("not json"));
        let codec_ref: &dyn SessionTokenCodec<UserRole> = &codec;
        assert!(codec_ref.is_session_token("!!!.e30.c2ln"));
    }

    #[test]
    fn the_signature_is_checked_before_the_type_and_the_type_before_the_claims() {
        let key = SigningKey::hmac_sha256("k", &[7; 32]).unwrap();
        let codec = JwtSessionCodec::new(KeyRing::new(key.clone()), "iss", "aud");
        let decode =
            |token: &str| SessionTokenCodec::<UserRole>::decode(&codec, token).unwrap_err();
        // Not a session's `typ`, and a payload that is no session's claims.
        let signed = jose::sign_compact(&key, &jose::encode_header(&key, "JWT"), b"{}").unwrap();
        assert!(matches!(decode(&signed), TokenError::WrongType));
        let (input, _) = signed.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", "A".repeat(43));
        assert!(matches!(
            decode(&forged),
            TokenError::Jws(JwsFailure::InvalidSignature)
        ));
    }

    #[test]
    fn session_type_matches_case_insensitively_with_or_without_application_prefix() {
        assert!(is_session_type("tessera-session+jwt"));
        assert!(is_session_type("Tessera-Session+JWT"));
        assert!(is_session_type("application/tessera-session+jwt"));
        assert!(!is_session_type("JWT"));
        assert!(!is_session_type("at+jwt"));
        assert!(!is_session_type("application/"));
        assert!(!is_session_type(""));
        assert!(!is_session_type(
            "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"
        ));
    }
}
