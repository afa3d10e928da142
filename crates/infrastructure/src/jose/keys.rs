//! Signing and verification keys, parsed once.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsBigEndian as _, AsDer as _};
use aws_lc_rs::error::Unspecified;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKey as RsaPublicKey, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair,
};
use zeroize::Zeroizing;

use super::algorithm::JwsAlgorithm;
use super::error::{KeyError, Unsupported};
use super::export::{self, PrivateJwk, PrivateMembers, PublicMembers};
use super::pem::{self, PemLabel};
use super::rsa_checks::check_rsa_public;

/// The shortest accepted HMAC secret: the SHA-256 output size (RFC 7518 §3.2).
pub(crate) const MIN_HMAC_SECRET_BYTES: usize = 32;

/// The longest signature of any accepted key (RSA-8192).
pub(crate) const MAX_SIGNATURE_BYTES: usize = 1024;

/// A key that checks signatures of one algorithm, parsed once.
///
/// For HS256 this is the shared secret (kept inside the crypto library and
/// never printed); for the other algorithms it is a public key.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<Box<str>>,
    alg: JwsAlgorithm,
    verifier: Verifier,
    /// The length of this key's signatures in bytes.
    signature_len: usize,
}

#[derive(Clone)]
enum Verifier {
    // Boxed: a key with its precomputed HMAC state is over a kilobyte.
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

impl VerificationKey {
    pub(crate) fn hmac_sha256(kid: Option<&str>, secret: &[u8]) -> Result<Self, KeyError> {
        check_hmac_secret(secret)?;
        Ok(Self {
            kid: optional_kid(kid)?,
            alg: JwsAlgorithm::Hs256,
            verifier: Verifier::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
            signature_len: 32,
        })
    }

    /// An RS256 key from its modulus and exponent (big-endian), after the
    /// size, exponent and ROCA checks.
    pub(crate) fn rsa(kid: Option<&str>, n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let (n, e) = check_rsa_public(n, e)?;
        let signature_len = n.len();
        let parsed = PublicKeyComponents { n, e }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)?;
        Self::public(kid, JwsAlgorithm::Rs256, parsed, signature_len)
    }

    /// An ES256 key from a SEC1 point or an X.509 `SubjectPublicKeyInfo`;
    /// the crypto library checks that the point is on P-256.
    pub(crate) fn ec_p256(kid: Option<&str>, public: &[u8]) -> Result<Self, KeyError> {
        let parsed = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public)?;
        Self::public(kid, JwsAlgorithm::Es256, parsed, 64)
    }

    /// An EdDSA key from the 32 raw bytes or an X.509 `SubjectPublicKeyInfo`.
    pub(crate) fn ed25519(kid: Option<&str>, public: &[u8]) -> Result<Self, KeyError> {
        let parsed = ParsedPublicKey::new(&signature::ED25519, public)?;
        Self::public(kid, JwsAlgorithm::EdDsa, parsed, 64)
    }

    fn public(
        kid: Option<&str>,
        alg: JwsAlgorithm,
        parsed: ParsedPublicKey,
        signature_len: usize,
    ) -> Result<Self, KeyError> {
        Ok(Self {
            kid: optional_kid(kid)?,
            alg,
            verifier: Verifier::Public(parsed),
            signature_len,
        })
    }

    /// How many base64url characters (unpadded) this key's signatures take.
    pub(crate) fn encoded_signature_len(&self) -> usize {
        (self.signature_len * 4).div_ceil(3)
    }

    /// Reads a public key for `alg` from PEM: `PUBLIC KEY` (X.509
    /// `SubjectPublicKeyInfo`) for any asymmetric algorithm, or
    /// `RSA PUBLIC KEY` (PKCS#1) for RS256.
    ///
    /// # Errors
    ///
    /// [`KeyError::UnsupportedKey`] for HS256 (secrets are not PEM), for a
    /// private-key or other label; [`KeyError::InvalidPem`] for a malformed
    /// document; the RSA rules ([`KeyError::WeakRsaKey`],
    /// [`KeyError::BadRsaExponent`], [`KeyError::RocaVulnerableKey`], ...);
    /// [`KeyError::InvalidKey`] when the key is not one for `alg` (another
    /// key type, another curve, a point not on the curve);
    /// [`KeyError::MissingKeyId`] for `Some("")`.
    pub fn from_pem(alg: JwsAlgorithm, kid: Option<&str>, pem: &[u8]) -> Result<Self, KeyError> {
        if alg == JwsAlgorithm::Hs256 {
            return Err(KeyError::UnsupportedKey(Unsupported::PemForHmac));
        }
        let pem = pem::decode(pem)?;
        match (alg, pem.label) {
            (JwsAlgorithm::Rs256, PemLabel::Spki | PemLabel::RsaPublicPkcs1) => {
                let public = RsaPublicKey::from_der(&pem.der)?;
                Self::rsa(
                    kid,
                    public.modulus().big_endian_without_leading_zero(),
                    public.exponent().big_endian_without_leading_zero(),
                )
            }
            (JwsAlgorithm::Es256, PemLabel::Spki) => Self::ec_p256(kid, &pem.der),
            (JwsAlgorithm::EdDsa, PemLabel::Spki) => Self::ed25519(kid, &pem.der),
            _ => Err(KeyError::UnsupportedKey(Unsupported::PemLabel)),
        }
    }

    /// The key id, if the key has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    #[must_use]
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    /// This key as a public JWK (RFC 7517) with `kid` (when the key has
    /// one), `alg` and `use: "sig"`: `RSA` (`n`, `e`), `EC` P-256 (`x`, `y`)
    /// or `OKP` Ed25519 (`x`). [`VerificationKey::from_jwk`] reads it back.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotExportable`] for an HS256 key (its secret is not
    /// public; export it with [`SigningKey::to_private_jwk`]), or when the
    /// crypto library's encoding of the key is not one the exporter reads (a
    /// compressed P-256 point); [`KeyError::Crypto`] if the crypto library
    /// fails.
    pub fn to_public_jwk(&self) -> Result<String, KeyError> {
        export::public_jwk(self.alg, self.kid(), &self.public_members()?)
    }

    fn public_members(&self) -> Result<PublicMembers, KeyError> {
        match &self.verifier {
            Verifier::Hmac(_) => Err(KeyError::NotExportable(export::HMAC_HAS_NO_PUBLIC_PART)),
            Verifier::Public(key) => export::public_members(self.alg, key.as_der()?.as_ref()),
        }
    }

    /// Whether `signature` is a valid signature of `message` under this key,
    /// with this key's algorithm. A signature of any other length than this
    /// key's is refused before any cryptography: ES256 signatures must be the
    /// fixed 64-byte `r || s` form (a DER signature is refused). HMAC tags
    /// are compared in constant time.
    #[must_use]
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.signature_len {
            return false;
        }
        match &self.verifier {
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match self.verifier {
            Verifier::Hmac(_) => "**redacted**",
            Verifier::Public(_) => "public key",
        };
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &format_args!("{key}"))
            .finish()
    }
}

/// A private key (or HMAC secret) that signs with one algorithm, parsed once.
///
/// Cloning is cheap and shares the key material. `Debug` shows the `kid`
/// and algorithm only.
#[derive(Clone)]
pub struct SigningKey {
    kid: Box<str>,
    alg: JwsAlgorithm,
    signer: Arc<Signer>,
    verification: VerificationKey,
}

enum Signer {
    /// The secret is kept (wiped on drop) for [`SigningKey::to_private_jwk`]:
    /// an `hmac::Key` cannot give it back.
    Hmac {
        key: Box<hmac::Key>,
        secret: Zeroizing<Vec<u8>>,
    },
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    /// An HS256 key from a shared secret of at least 32 bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::WeakHmacSecret`] for a shorter secret;
    /// [`KeyError::MissingKeyId`] for an empty `kid`.
    pub fn hmac_sha256(kid: &str, secret: &[u8]) -> Result<Self, KeyError> {
        let verification = VerificationKey::hmac_sha256(Some(kid), secret)?;
        Self::new(
            kid,
            Signer::Hmac {
                key: Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret)),
                secret: Zeroizing::new(secret.to_vec()),
            },
            verification,
        )
    }

    /// Reads a private key for `alg` from PEM: RS256 from `RSA PRIVATE KEY`
    /// (PKCS#1) or `PRIVATE KEY` (PKCS#8); ES256 from `PRIVATE KEY` (PKCS#8)
    /// or `EC PRIVATE KEY` (SEC1); EdDSA from `PRIVATE KEY` (PKCS#8).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAPrivateKey`] for a public key;
    /// [`KeyError::UnsupportedKey`] for HS256, encrypted keys and other
    /// labels; [`KeyError::InvalidPem`] for a malformed document;
    /// [`KeyError::InvalidKey`] when the key is not one for `alg` or is
    /// refused by the crypto library (RSA under 2048 bits included); the RSA
    /// rules; [`KeyError::MissingKeyId`] for an empty `kid`.
    pub fn from_pem(alg: JwsAlgorithm, kid: &str, pem: &[u8]) -> Result<Self, KeyError> {
        if alg == JwsAlgorithm::Hs256 {
            return Err(KeyError::UnsupportedKey(Unsupported::PemForHmac));
        }
        let pem = pem::decode(pem)?;
        let der = pem.der.as_slice();
        match (alg, pem.label) {
            (_, PemLabel::Spki | PemLabel::RsaPublicPkcs1) => Err(KeyError::NotAPrivateKey),
            (JwsAlgorithm::Rs256, PemLabel::Pkcs8) => {
                Self::from_rsa_pair(kid, RsaKeyPair::from_pkcs8(der)?)
            }
            (JwsAlgorithm::Rs256, PemLabel::RsaPkcs1) => {
                Self::from_rsa_pair(kid, RsaKeyPair::from_der(der)?)
            }
            (JwsAlgorithm::Es256, PemLabel::Pkcs8) => Self::from_ecdsa_pair(
                kid,
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)?,
            ),
            (JwsAlgorithm::Es256, PemLabel::EcSec1) => Self::from_ecdsa_pair(
                kid,
                EcdsaKeyPair::from_private_key_der(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                )?,
            ),
            (JwsAlgorithm::EdDsa, PemLabel::Pkcs8) => {
                Self::from_ed25519_pair(kid, Ed25519KeyPair::from_pkcs8(der)?)
            }
            _ => Err(KeyError::UnsupportedKey(Unsupported::PemLabel)),
        }
    }

    /// A fresh key: 32 random bytes for HS256, RSA-2048 for RS256, P-256 for
    /// ES256, Ed25519 for EdDSA.
    ///
    /// # Errors
    ///
    /// [`KeyError::Crypto`] if random generation fails;
    /// [`KeyError::MissingKeyId`] for an empty `kid`.
    pub fn generate(alg: JwsAlgorithm, kid: &str) -> Result<Self, KeyError> {
        match alg {
            JwsAlgorithm::Hs256 => {
                let mut secret = Zeroizing::new([0u8; MIN_HMAC_SECRET_BYTES]);
                aws_lc_rs::rand::fill(secret.as_mut_slice())?;
                Self::hmac_sha256(kid, secret.as_slice())
            }
            JwsAlgorithm::Rs256 => {
                Self::from_rsa_pair(kid, RsaKeyPair::generate(KeySize::Rsa2048)?)
            }
            JwsAlgorithm::Es256 => Self::from_ecdsa_pair(
                kid,
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)?,
            ),
            JwsAlgorithm::EdDsa => Self::from_ed25519_pair(kid, Ed25519KeyPair::generate()?),
        }
    }

    pub(crate) fn from_rsa_pair(kid: &str, pair: RsaKeyPair) -> Result<Self, KeyError> {
        let public = pair.public_key();
        let verification = VerificationKey::rsa(
            Some(kid),
            public.modulus().big_endian_without_leading_zero(),
            public.exponent().big_endian_without_leading_zero(),
        )?;
        Self::new(kid, Signer::Rsa(pair), verification)
    }

    pub(crate) fn from_ecdsa_pair(kid: &str, pair: EcdsaKeyPair) -> Result<Self, KeyError> {
        let verification = VerificationKey::ec_p256(Some(kid), pair.public_key().as_ref())?;
        Self::new(kid, Signer::Ecdsa(pair), verification)
    }

    pub(crate) fn from_ed25519_pair(kid: &str, pair: Ed25519KeyPair) -> Result<Self, KeyError> {
        let verification = VerificationKey::ed25519(Some(kid), pair.public_key().as_ref())?;
        Self::new(kid, Signer::Ed25519(pair), verification)
    }

    fn new(kid: &str, signer: Signer, verification: VerificationKey) -> Result<Self, KeyError> {
        Ok(Self {
            kid: required_kid(kid)?,
            alg: verification.alg,
            signer: Arc::new(signer),
            verification,
        })
    }

    /// The key id, put in the `kid` header of every token this key signs.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    /// The key that verifies this key's signatures (for HS256, the same
    /// secret), with the same `kid`.
    #[must_use]
    pub fn verification_key(&self) -> VerificationKey {
        self.verification.clone()
    }

    /// This key as a private JWK (RFC 7517, RFC 7518 §6, RFC 8037) with
    /// `kid`, `alg` and `use: "sig"`: `oct` (`k`), `RSA` (`n`, `e`, `d`, `p`,
    /// `q`, `dp`, `dq`, `qi`), `EC` P-256 (`x`, `y`, `d`) or `OKP` Ed25519
    /// (`x`, `d`). [`SigningKey::from_jwk`] reads it back.
    ///
    /// The result never prints its text (see [`PrivateJwk`]).
    ///
    /// # Errors
    ///
    /// [`KeyError::NotExportable`] when the crypto library's encoding of the
    /// key is not one the exporter reads; [`KeyError::Crypto`] if the crypto
    /// library fails.
    pub fn to_private_jwk(&self) -> Result<PrivateJwk, KeyError> {
        let (public, private) = match &*self.signer {
            Signer::Hmac { secret, .. } => (
                None,
                PrivateMembers::Oct {
                    k: export::b64_secret(secret),
                },
            ),
            Signer::Rsa(pair) => {
                let (public, private) = export::rsa_members(pair.as_der()?.as_ref())?;
                (Some(public), private)
            }
            Signer::Ecdsa(pair) => (
                Some(self.verification.public_members()?),
                PrivateMembers::Scalar {
                    d: export::b64_secret(pair.private_key().as_be_bytes()?.as_ref()),
                },
            ),
            Signer::Ed25519(pair) => (
                Some(self.verification.public_members()?),
                PrivateMembers::Scalar {
                    d: export::b64_secret(pair.seed()?.as_be_bytes()?.as_ref()),
                },
            ),
        };
        export::private_jwk(self.alg, &self.kid, public.as_ref(), &private)
    }

    /// This key's public JWK, as [`VerificationKey::to_public_jwk`] of its
    /// [`verification_key`](Self::verification_key).
    ///
    /// # Errors
    ///
    /// As [`VerificationKey::to_public_jwk`]; always
    /// [`KeyError::NotExportable`] for HS256.
    pub fn to_public_jwk(&self) -> Result<String, KeyError> {
        self.verification.to_public_jwk()
    }

    /// Signs `message` (RS256 PKCS#1 v1.5, ES256 fixed `r || s`, Ed25519 and
    /// HS256 are deterministic except ES256).
    ///
    /// # Errors
    ///
    /// [`KeyError::Crypto`] if the crypto library fails.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut buffer = [0u8; MAX_SIGNATURE_BYTES];
        let len = self.sign_into(message, &mut buffer)?;
        Ok(buffer.get(..len).unwrap_or_default().to_vec())
    }

    /// Signs `message` into `out`, returning the signature's length.
    pub(crate) fn sign_into(
        &self,
        message: &[u8],
        out: &mut [u8; MAX_SIGNATURE_BYTES],
    ) -> Result<usize, KeyError> {
        match &*self.signer {
            Signer::Hmac { key, .. } => copy_signature(hmac::sign(key, message).as_ref(), out),
            Signer::Rsa(pair) => {
                let len = pair.public_modulus_len();
                let buffer = out.get_mut(..len).ok_or(Unspecified)?;
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    buffer,
                )?;
                Ok(len)
            }
            Signer::Ecdsa(pair) => {
                copy_signature(pair.sign(&SystemRandom::new(), message)?.as_ref(), out)
            }
            Signer::Ed25519(pair) => copy_signature(pair.try_sign(message)?.as_ref(), out),
        }
    }

    /// The signature's length in bytes.
    pub(crate) fn signature_len(&self) -> usize {
        self.verification.signature_len
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &format_args!("**redacted**"))
            .finish()
    }
}

fn copy_signature(signature: &[u8], out: &mut [u8]) -> Result<usize, KeyError> {
    out.get_mut(..signature.len())
        .ok_or(Unspecified)?
        .copy_from_slice(signature);
    Ok(signature.len())
}

fn check_hmac_secret(secret: &[u8]) -> Result<(), KeyError> {
    if secret.len() < MIN_HMAC_SECRET_BYTES {
        return Err(KeyError::WeakHmacSecret {
            bytes: secret.len(),
        });
    }
    Ok(())
}

fn required_kid(kid: &str) -> Result<Box<str>, KeyError> {
    if kid.is_empty() {
        return Err(KeyError::MissingKeyId);
    }
    Ok(kid.into())
}

fn optional_kid(kid: Option<&str>) -> Result<Option<Box<str>>, KeyError> {
    kid.map(required_kid).transpose()
}
