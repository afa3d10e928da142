//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037) to parsed keys.

use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use super::algorithm::{AlgClass, JwsAlgorithm, classify_alg};
use super::error::{KeyError, Unsupported};
use super::keys::{SigningKey, VerificationKey};
use super::rsa_checks::check_rsa_public;
use super::serde_util::{ObjectOnly, present};

/// The members tessera reads. Unknown members (`x5c`, `x5t`, `ext`, ...) are
/// ignored; a repeated known member makes the JWK malformed.
#[derive(Deserialize)]
pub(crate) struct RawJwk {
    kty: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    k: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    x: Option<String>,
    y: Option<String>,
    #[serde(default, deserialize_with = "present")]
    oth: bool,
}

impl Drop for RawJwk {
    fn drop(&mut self) {
        for secret in [
            &mut self.k,
            &mut self.d,
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qi,
        ] {
            secret.zeroize();
        }
    }
}

#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<ObjectOnly<RawJwk>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    Verify,
    Sign,
}

impl Operation {
    fn key_op(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Sign => "sign",
        }
    }
}

const ENCRYPTION_KEY_OPS: [&str; 6] = [
    "encrypt",
    "decrypt",
    "wrapKey",
    "unwrapKey",
    "deriveKey",
    "deriveBits",
];

fn parse(json: &str) -> Result<RawJwk, KeyError> {
    serde_json::from_str::<ObjectOnly<RawJwk>>(json)
        .map(|jwk| jwk.0)
        .map_err(|_| KeyError::MalformedJwk)
}

pub(crate) fn verification_key(json: &str) -> Result<VerificationKey, KeyError> {
    to_verification_key(&parse(json)?)
}

pub(crate) fn signing_key(json: &str) -> Result<SigningKey, KeyError> {
    to_signing_key(&parse(json)?)
}

/// The members of a JWK set (`{"keys": [...]}`).
fn parse_set(json: &str) -> Result<Vec<ObjectOnly<RawJwk>>, KeyError> {
    serde_json::from_str::<ObjectOnly<RawJwkSet>>(json)
        .map(|set| set.0.keys)
        .map_err(|_| KeyError::MalformedJwk)
}

/// The keys of a JWK set, each read as a verification key.
pub(crate) fn verification_keys(json: &str) -> Result<Vec<VerificationKey>, KeyError> {
    parse_set(json)?
        .iter()
        .map(|jwk| to_verification_key(&jwk.0))
        .collect()
}

/// One member of a published set: its `kid` and the key or why it is refused.
pub(crate) type EachKey = (Option<String>, Result<VerificationKey, KeyError>);

/// Each key of a JWK set with its `kid`, read as a verification key or
/// refused on its own: for sets published by others, where one unusable key
/// must not void the rest.
pub(crate) fn verification_keys_each(json: &str) -> Result<Vec<EachKey>, KeyError> {
    Ok(parse_set(json)?
        .iter()
        .map(|jwk| (jwk.0.kid.clone(), to_verification_key(&jwk.0)))
        .collect())
}

fn to_verification_key(jwk: &RawJwk) -> Result<VerificationKey, KeyError> {
    let alg = check_purpose(jwk, Operation::Verify)?;
    let kid = jwk.kid.as_deref();
    match alg {
        JwsAlgorithm::Hs256 => VerificationKey::hmac_sha256(kid, &decode("k", jwk.k.as_ref())?),
        JwsAlgorithm::Rs256 => VerificationKey::rsa(
            kid,
            &decode("n", jwk.n.as_ref())?,
            &decode("e", jwk.e.as_ref())?,
        ),
        JwsAlgorithm::Es256 => VerificationKey::ec_p256(kid, &ec_point(jwk)?),
        JwsAlgorithm::EdDsa => VerificationKey::ed25519(kid, &okp_public(jwk)?),
    }
}

fn to_signing_key(jwk: &RawJwk) -> Result<SigningKey, KeyError> {
    let alg = check_purpose(jwk, Operation::Sign)?;
    let kid = jwk.kid.as_deref().ok_or(KeyError::MissingKeyId)?;
    match alg {
        JwsAlgorithm::Hs256 => SigningKey::hmac_sha256(kid, &decode("k", jwk.k.as_ref())?),
        JwsAlgorithm::Rs256 => {
            if jwk.oth {
                return Err(KeyError::UnsupportedKey(Unsupported::MultiPrimeRsa));
            }
            let n = decode("n", jwk.n.as_ref())?;
            let e = decode("e", jwk.e.as_ref())?;
            // The public checks first, so that a weak key is named as such
            // rather than as a crypto-library refusal.
            let (n, e) = check_rsa_public(&n, &e)?;
            let components = KeyPairComponents {
                public_key: PublicKeyComponents { n, e },
                d: decode("d", jwk.d.as_ref())?,
                p: decode("p", jwk.p.as_ref())?,
                q: decode("q", jwk.q.as_ref())?,
                dP: decode("dp", jwk.dp.as_ref())?,
                dQ: decode("dq", jwk.dq.as_ref())?,
                qInv: decode("qi", jwk.qi.as_ref())?,
            };
            SigningKey::from_rsa_pair(kid, RsaKeyPair::from_components(&components)?)
        }
        JwsAlgorithm::Es256 => {
            let point = ec_point(jwk)?;
            let d = decode("d", jwk.d.as_ref())?;
            if d.len() != 32 {
                return Err(KeyError::InvalidJwkMember("d"));
            }
            let pair = EcdsaKeyPair::from_private_key_and_public_key(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &d,
                &point,
            )?;
            SigningKey::from_ecdsa_pair(kid, pair)
        }
        JwsAlgorithm::EdDsa => {
            let x = okp_public(jwk)?;
            let d = decode("d", jwk.d.as_ref())?;
            if d.len() != 32 {
                return Err(KeyError::InvalidJwkMember("d"));
            }
            SigningKey::from_ed25519_pair(kid, Ed25519KeyPair::from_seed_and_public_key(&d, &x)?)
        }
    }
}

/// Checks `use`, `key_ops`, `kty`, `crv` and `alg`, and returns the one
/// algorithm the key is for.
fn check_purpose(jwk: &RawJwk, operation: Operation) -> Result<JwsAlgorithm, KeyError> {
    match jwk.public_key_use.as_deref() {
        None | Some("sig") => {}
        Some("enc") => return Err(KeyError::EncryptionKey),
        Some(_) => return Err(KeyError::UnsupportedKey(Unsupported::KeyUse)),
    }
    if let Some(ops) = &jwk.key_ops {
        if ops
            .iter()
            .any(|op| ENCRYPTION_KEY_OPS.contains(&op.as_str()))
        {
            return Err(KeyError::EncryptionKey);
        }
        if !ops.iter().any(|op| op == operation.key_op()) {
            return Err(KeyError::KeyOperationNotPermitted {
                operation: operation.key_op(),
            });
        }
    }

    let kty = jwk
        .kty
        .as_deref()
        .ok_or(KeyError::MissingJwkMember("kty"))?;
    if !matches!(kty, "oct" | "RSA" | "EC" | "OKP") {
        return Err(KeyError::UnsupportedKey(Unsupported::KeyType));
    }
    let declared = match jwk.alg.as_deref().map(classify_alg) {
        None => None,
        Some(AlgClass::Supported(alg)) => Some(alg),
        Some(AlgClass::Encryption) => return Err(KeyError::EncryptionKey),
        Some(AlgClass::Unsupported) => {
            return Err(KeyError::UnsupportedKey(Unsupported::Algorithm));
        }
    };
    let implied = match (kty, jwk.crv.as_deref()) {
        ("oct", _) => JwsAlgorithm::Hs256,
        ("RSA", _) => JwsAlgorithm::Rs256,
        ("EC", Some("P-256")) => JwsAlgorithm::Es256,
        ("OKP", Some("Ed25519")) => JwsAlgorithm::EdDsa,
        ("EC" | "OKP", None) => return Err(KeyError::MissingJwkMember("crv")),
        _ => return Err(KeyError::UnsupportedKey(Unsupported::Curve)),
    };
    match declared {
        Some(alg) if alg != implied => Err(KeyError::AlgorithmMismatch),
        _ => Ok(implied),
    }
}

/// The uncompressed SEC1 point `04 || x || y` of a P-256 JWK.
fn ec_point(jwk: &RawJwk) -> Result<Vec<u8>, KeyError> {
    let x = decode("x", jwk.x.as_ref())?;
    let y = decode("y", jwk.y.as_ref())?;
    if x.len() != 32 {
        return Err(KeyError::InvalidJwkMember("x"));
    }
    if y.len() != 32 {
        return Err(KeyError::InvalidJwkMember("y"));
    }
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

fn okp_public(jwk: &RawJwk) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let x = decode("x", jwk.x.as_ref())?;
    if x.len() != 32 {
        return Err(KeyError::InvalidJwkMember("x"));
    }
    Ok(x)
}

/// Decodes a base64url member (no padding, canonical trailing bits). The
/// buffer is wiped when dropped, since most members are secrets or may be.
fn decode(name: &'static str, member: Option<&String>) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let value = member.ok_or(KeyError::MissingJwkMember(name))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map(Zeroizing::new)
        .map_err(|_| KeyError::InvalidJwkMember(name))
}

impl VerificationKey {
    /// Reads a key from a JWK (RFC 7517). A private JWK is accepted and only
    /// its public part kept; an `oct` JWK is an HS256 secret.
    ///
    /// `kid` is optional here; `alg`, when present, must be the one the key
    /// type and curve imply (`oct` → HS256, `RSA` → RS256, `EC` P-256 → ES256,
    /// `OKP` Ed25519 → EdDSA). `use`, when present, must be `sig`; `key_ops`,
    /// when present, must include `verify` and no encryption operation.
    ///
    /// # Errors
    ///
    /// [`KeyError::MalformedJwk`], [`KeyError::MissingJwkMember`],
    /// [`KeyError::InvalidJwkMember`] for the shape; [`KeyError::EncryptionKey`],
    /// [`KeyError::KeyOperationNotPermitted`], [`KeyError::UnsupportedKey`],
    /// [`KeyError::AlgorithmMismatch`] for what the key is for; the HMAC and
    /// RSA strength rules; [`KeyError::InvalidKey`] when the crypto library
    /// refuses the material.
    pub fn from_jwk(jwk_json: &str) -> Result<Self, KeyError> {
        verification_key(jwk_json)
    }
}

impl SigningKey {
    /// Reads a private JWK (RFC 7517): `oct` (`k`), `RSA` (`n`, `e`, `d`,
    /// `p`, `q`, `dp`, `dq`, `qi`), `EC` P-256 (`x`, `y`, `d`) or `OKP`
    /// Ed25519 (`x`, `d`).
    ///
    /// `kid` is required; `alg` is optional but, when present, must be the
    /// one the key type and curve imply. `use`, when present, must be `sig`;
    /// `key_ops`, when present, must include `sign`.
    ///
    /// # Errors
    ///
    /// As [`VerificationKey::from_jwk`], plus [`KeyError::MissingKeyId`] and
    /// [`KeyError::MissingJwkMember`] for a public JWK (no private members).
    pub fn from_jwk(private_jwk_json: &str) -> Result<Self, KeyError> {
        signing_key(private_jwk_json)
    }
}
