//! The key ring: the keys a service signs with and verifies against.

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::algorithm::JwsAlgorithm;
use super::error::{JwsError, KeyError};
use super::export;
use super::header::JwsHeader;
use super::jwk;
use super::keys::{SigningKey, VerificationKey};

/// The keys a service verifies tokens with, and optionally the one it signs
/// with.
///
/// A ring only ever holds a safe set: every key passed the strength rules
/// when it was parsed, no two keys share a `kid`, symmetric (HMAC) and
/// asymmetric keys are never mixed, and when it holds several keys each has
/// a `kid`. Builders consume the ring and return a new one, so rotation is:
///
/// ```
/// use tessera_infrastructure::jose::{JwsAlgorithm, KeyRing, SigningKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ring = KeyRing::new(SigningKey::generate(JwsAlgorithm::EdDsa, "2025-01")?);
/// // New tokens are signed with 2025-02; tokens of 2025-01 still verify.
/// let ring = ring.with_signing_key(SigningKey::generate(JwsAlgorithm::EdDsa, "2025-02")?)?;
/// // Once the last 2025-01 token has expired:
/// let ring = ring.without_key("2025-01")?;
/// assert_eq!(ring.signing_key().map(SigningKey::kid), Some("2025-02"));
/// # Ok(())
/// # }
/// ```
///
/// Cloning is cheap (the keys are shared). `Debug` shows `kid`s and
/// algorithms, never key material.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    signing: Option<SigningKey>,
    keys: Vec<VerificationKey>,
    /// `known[i]`: the first protected header a signature by `keys[i]`
    /// verified under, in this ring.
    known: Box<[OnceLock<KnownHeader>]>,
}

impl Inner {
    /// A ring's contents, remembering no header yet: what a header selects
    /// depends on the whole ring, so a changed ring starts afresh.
    fn new(signing: Option<SigningKey>, keys: Vec<VerificationKey>) -> Arc<Self> {
        let known = keys.iter().map(|_| OnceLock::new()).collect();
        Arc::new(Self {
            signing,
            keys,
            known,
        })
    }
}

/// A protected header, by its exact base64url text, that this ring has
/// parsed, selected a key for and verified a signature under. Parsing and
/// selection depend only on that text and the ring, so a token carrying
/// the same text gets the same outcome without decoding it again; its
/// signature is still checked. Issuers put the same header on every token
/// a key signs, so one header per key is remembered: the first.
#[derive(Debug)]
pub(crate) struct KnownHeader {
    encoded: Box<str>,
    pub(crate) header: JwsHeader,
}

impl KeyRing {
    /// A ring that signs with `signing` and verifies its signatures.
    #[must_use]
    pub fn new(signing: SigningKey) -> Self {
        let keys = vec![signing.verification_key()];
        Self {
            inner: Inner::new(Some(signing), keys),
        }
    }

    /// A ring with a fresh Ed25519 signing key named `kid`: for demos,
    /// tests and a single instance whose sessions may end when it
    /// restarts. Instances that share sessions load one key instead
    /// ([`SigningKey::from_pem`], [`SigningKey::from_jwk`]).
    ///
    /// # Errors
    ///
    /// As [`SigningKey::generate`]: an empty `kid`, or no randomness.
    pub fn generate(kid: &str) -> Result<Self, KeyError> {
        SigningKey::generate(JwsAlgorithm::EdDsa, kid).map(Self::new)
    }

    /// A ring that only verifies, with `keys`.
    ///
    /// # Errors
    ///
    /// [`KeyError::EmptyKeyRing`] for no keys; [`KeyError::DuplicateKeyId`],
    /// [`KeyError::MixedKeyFamilies`], or [`KeyError::MissingKeyId`] (several
    /// keys, one without a `kid`).
    pub fn verify_only(keys: Vec<VerificationKey>) -> Result<Self, KeyError> {
        let mut admitted = Vec::with_capacity(keys.len());
        for key in keys {
            admit(&admitted, &key)?;
            admitted.push(key);
        }
        if admitted.is_empty() {
            return Err(KeyError::EmptyKeyRing);
        }
        Ok(Self {
            inner: Inner::new(None, admitted),
        })
    }

    /// A verify-only ring from a JWK set (`{"keys": [...]}`, RFC 7517 §5).
    ///
    /// The whole set is refused if any key in it is: a set that carries an
    /// encryption key, a weak key or an unsupported algorithm is not trusted
    /// as a whole.
    ///
    /// # Errors
    ///
    /// Every error of [`VerificationKey::from_jwk`] for any member, and of
    /// [`KeyRing::verify_only`] for the set.
    pub fn from_jwk_set(jwks_json: &str) -> Result<Self, KeyError> {
        Self::verify_only(jwk::verification_keys(jwks_json)?)
    }

    /// A verify-only ring from a JWK set published by someone else (an
    /// identity provider's JWKS endpoint), keeping every usable key and
    /// reporting the rest.
    ///
    /// Unlike [`KeyRing::from_jwk_set`], one unusable key does not void the
    /// set: providers publish encryption keys, algorithms tessera does not
    /// support (RS384, PS256, ...) and keys about to be retired next to the
    /// signing ones. Left out, each with its reason in the returned list:
    /// any key [`VerificationKey::from_jwk`] refuses; symmetric (`oct`)
    /// keys, which have no place in a published set; keys without a `kid`
    /// when the set has several usable keys; and every key of a `kid` that
    /// appears more than once (which of them signs is ambiguous).
    ///
    /// # Errors
    ///
    /// [`KeyError::MalformedJwk`] when the document is not a JWK set;
    /// [`KeyError::EmptyKeyRing`] when no key is usable.
    pub fn from_provider_jwk_set(jwks_json: &str) -> Result<(Self, Vec<SkippedKey>), KeyError> {
        let mut skipped = Vec::new();
        let mut usable = Vec::new();
        for (kid, key) in jwk::verification_keys_each(jwks_json)? {
            match key {
                Ok(key) if key.algorithm().is_symmetric() => skipped.push(SkippedKey {
                    kid,
                    reason: SkipReason::Symmetric,
                }),
                Ok(key) => usable.push(key),
                Err(error) => skipped.push(SkippedKey {
                    kid,
                    reason: SkipReason::Unusable(error),
                }),
            }
        }
        let several = usable.len() > 1;
        let shared = |kid: &str| usable.iter().filter(|k| k.kid() == Some(kid)).count() > 1;
        let mut keys = Vec::with_capacity(usable.len());
        for key in &usable {
            let reason = match key.kid() {
                Some(kid) if shared(kid) => Some(SkipReason::DuplicateKeyId),
                None if several => Some(SkipReason::MissingKeyId),
                _ => None,
            };
            match reason {
                Some(reason) => skipped.push(SkippedKey {
                    kid: key.kid().map(str::to_owned),
                    reason,
                }),
                None => keys.push(key.clone()),
            }
        }
        Ok((Self::verify_only(keys)?, skipped))
    }

    /// The ring with one more key to verify with.
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateKeyId`], [`KeyError::MixedKeyFamilies`] or
    /// [`KeyError::MissingKeyId`].
    pub fn with_verification_key(self, key: VerificationKey) -> Result<Self, KeyError> {
        admit(&self.inner.keys, &key)?;
        let mut keys = self.inner.keys.clone();
        keys.push(key);
        Ok(Self {
            inner: Inner::new(self.inner.signing.clone(), keys),
        })
    }

    /// Rotation: the ring with `key` as the active signer. Every key already
    /// in the ring, the previous signer's included, still verifies until it
    /// is removed with [`KeyRing::without_key`].
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateKeyId`] (the `kid` is already in the ring),
    /// [`KeyError::MixedKeyFamilies`] or [`KeyError::MissingKeyId`].
    pub fn with_signing_key(self, key: SigningKey) -> Result<Self, KeyError> {
        let verification = key.verification_key();
        admit(&self.inner.keys, &verification)?;
        let mut keys = self.inner.keys.clone();
        keys.push(verification);
        Ok(Self {
            inner: Inner::new(Some(key), keys),
        })
    }

    /// Retires a key: tokens naming `kid` no longer verify.
    ///
    /// # Errors
    ///
    /// [`KeyError::ActiveSigningKey`] when `kid` is the active signer (rotate
    /// first); [`KeyError::UnknownKeyId`] when no key has that `kid`;
    /// [`KeyError::EmptyKeyRing`] when it is the last key.
    pub fn without_key(self, kid: &str) -> Result<Self, KeyError> {
        if self
            .inner
            .signing
            .as_ref()
            .is_some_and(|signing| signing.kid() == kid)
        {
            return Err(KeyError::ActiveSigningKey);
        }
        let position = self
            .inner
            .keys
            .iter()
            .position(|key| key.kid() == Some(kid))
            .ok_or(KeyError::UnknownKeyId)?;
        if self.inner.keys.len() == 1 {
            return Err(KeyError::EmptyKeyRing);
        }
        let mut keys = self.inner.keys.clone();
        keys.remove(position);
        Ok(Self {
            inner: Inner::new(self.inner.signing.clone(), keys),
        })
    }

    /// The active signing key, if this ring signs.
    #[must_use]
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.inner.signing.as_ref()
    }

    /// Every key this ring verifies with, in the order they were added.
    #[must_use]
    pub fn verification_keys(&self) -> &[VerificationKey] {
        &self.inner.keys
    }

    /// The JWK set (`{"keys":[...]}`, RFC 7517 §5) of every key this ring
    /// verifies with, public members only, for publishing to verifiers;
    /// [`KeyRing::from_jwk_set`] reads it back.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotExportable`] for a ring of HS256 keys (a shared secret
    /// is never public; see [`SigningKey::to_private_jwk`]), and every error
    /// of [`VerificationKey::to_public_jwk`].
    pub fn to_public_jwk_set(&self) -> Result<String, KeyError> {
        let jwks = self
            .inner
            .keys
            .iter()
            .map(VerificationKey::to_public_jwk)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(export::jwk_set(jwks.iter().map(String::as_str)))
    }

    /// The key a token's header selects: the one named by `kid`, or the only
    /// key when the header names none; its algorithm must be `alg`.
    ///
    /// # Errors
    ///
    /// [`JwsError::UnknownKeyId`] when no key has `kid` (even in a one-key
    /// ring); [`JwsError::MissingKeyId`] when `kid` is `None` and the ring
    /// holds several keys; [`JwsError::AlgorithmNotAllowedForKey`] when the
    /// selected key's algorithm is not `alg`.
    pub fn select(
        &self,
        kid: Option<&str>,
        alg: JwsAlgorithm,
    ) -> Result<&VerificationKey, JwsError> {
        self.select_position(kid, alg)
            .and_then(|index| self.key(index))
    }

    /// [`KeyRing::select`], as the key's position in the ring.
    pub(crate) fn select_position(
        &self,
        kid: Option<&str>,
        alg: JwsAlgorithm,
    ) -> Result<usize, JwsError> {
        let keys = self.inner.keys.as_slice();
        let index = match kid {
            Some(kid) => keys
                .iter()
                .position(|key| key.kid() == Some(kid))
                .ok_or(JwsError::UnknownKeyId)?,
            None if keys.len() == 1 => 0,
            None => return Err(JwsError::MissingKeyId),
        };
        if self.key(index)?.algorithm() != alg {
            return Err(JwsError::AlgorithmNotAllowedForKey);
        }
        Ok(index)
    }

    /// The key at `index` of [`KeyRing::select_position`].
    pub(crate) fn key(&self, index: usize) -> Result<&VerificationKey, JwsError> {
        self.inner.keys.get(index).ok_or(JwsError::UnknownKeyId)
    }

    /// The position of the key and the header remembered for exactly this
    /// base64url header text, if any.
    pub(crate) fn known_header(&self, encoded: &str) -> Option<(usize, &KnownHeader)> {
        self.inner
            .known
            .iter()
            .enumerate()
            .find_map(|(index, slot)| {
                slot.get()
                    .filter(|known| *known.encoded == *encoded)
                    .map(|known| (index, known))
            })
    }

    /// Remembers `header`, read from `encoded`, for the key at `index`,
    /// after a signature by that key verified under it; the first header
    /// remembered stays.
    pub(crate) fn remember_header(&self, index: usize, encoded: &str, header: &JwsHeader) {
        if let Some(slot) = self.inner.known.get(index)
            && slot.get().is_none()
        {
            let _ = slot.set(KnownHeader {
                encoded: encoded.into(),
                header: header.clone(),
            });
        }
    }
}

/// A key of a published JWK set that [`KeyRing::from_provider_jwk_set`]
/// left out.
#[derive(Debug)]
pub struct SkippedKey {
    /// Its `kid`, when it has one (an identifier, not key material).
    pub kid: Option<String>,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Why a published key was left out of a ring.
#[derive(Debug)]
#[non_exhaustive]
pub enum SkipReason {
    /// The key itself is refused: encryption key, unsupported algorithm or
    /// curve, weak key, malformed member...
    Unusable(KeyError),
    /// A symmetric (`oct`) key: a shared secret is never published.
    Symmetric,
    /// No `kid`, in a set of several keys: no token could select it.
    MissingKeyId,
    /// Its `kid` appears on several keys.
    DuplicateKeyId,
}

/// Whether `key` may join `keys`.
fn admit(keys: &[VerificationKey], key: &VerificationKey) -> Result<(), KeyError> {
    let Some(first) = keys.first() else {
        return Ok(());
    };
    if first.algorithm().is_symmetric() != key.algorithm().is_symmetric() {
        return Err(KeyError::MixedKeyFamilies);
    }
    let Some(kid) = key.kid() else {
        return Err(KeyError::MissingKeyId);
    };
    if keys.iter().any(|existing| existing.kid().is_none()) {
        return Err(KeyError::MissingKeyId);
    }
    if keys.iter().any(|existing| existing.kid() == Some(kid)) {
        return Err(KeyError::DuplicateKeyId {
            kid: kid.to_owned(),
        });
    }
    Ok(())
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing", &self.inner.signing)
            .field("keys", &self.inner.keys)
            .finish()
    }
}
