//! The JWS algorithms tessera supports, and how other `alg` names classify.

use std::fmt;

/// A JWS algorithm tessera signs and verifies with.
///
/// Every other algorithm, `none` included, is rejected wherever it appears.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum JwsAlgorithm {
    /// HMAC with SHA-256 (`HS256`), a shared secret of at least 32 bytes.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`), RSA keys of 2048 to 8192 bits.
    Rs256,
    /// ECDSA on P-256 with SHA-256 (`ES256`), signatures in the fixed
    /// 64-byte `r || s` form.
    Es256,
    /// EdDSA on Ed25519: `EdDSA` (RFC 8037) or its fully-specified name
    /// `Ed25519` (RFC 9864), which are the same algorithm here since
    /// tessera's only EdDSA curve is Ed25519 (Ed448 keys are refused).
    EdDsa,
}

impl JwsAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 4] = [Self::Hs256, Self::Rs256, Self::Es256, Self::EdDsa];

    /// The registered JOSE name: `"HS256"`, `"RS256"`, `"ES256"` or `"EdDSA"`.
    ///
    /// Tokens and JWKs tessera writes say `"EdDSA"`, the name every JOSE
    /// library reads; `"Ed25519"` is read as well ([`JwsAlgorithm::from_name`]).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with this registered name, compared exactly (JOSE names
    /// are case-sensitive), or `None` for any name tessera does not support.
    ///
    /// Both `"EdDSA"` (RFC 8037) and the fully-specified `"Ed25519"` (RFC
    /// 9864, which OpenID Providers such as node oidc-provider 9 and jose 6
    /// emit) name [`JwsAlgorithm::EdDsa`]: a token or JWK labelled either
    /// way works with an Ed25519 key labelled either way. `"Ed448"` and
    /// every other fully-specified name stay unsupported.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" | "Ed25519" => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// Whether the algorithm uses a shared secret rather than a key pair.
    #[must_use]
    pub fn is_symmetric(self) -> bool {
        matches!(self, Self::Hs256)
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a JWK's `alg` member names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AlgClass {
    Supported(JwsAlgorithm),
    /// A key-management or content-encryption algorithm (RFC 7518 §4, §5).
    Encryption,
    /// A signature algorithm tessera does not support, or an unregistered name.
    Unsupported,
}

pub(crate) fn classify_alg(name: &str) -> AlgClass {
    if let Some(alg) = JwsAlgorithm::from_name(name) {
        return AlgClass::Supported(alg);
    }
    const ENCRYPTION: [&str; 26] = [
        "RSA1_5",
        "RSA-OAEP",
        "RSA-OAEP-256",
        "RSA-OAEP-384",
        "RSA-OAEP-512",
        "A128KW",
        "A192KW",
        "A256KW",
        "dir",
        "ECDH-ES",
        "ECDH-ES+A128KW",
        "ECDH-ES+A192KW",
        "ECDH-ES+A256KW",
        "A128GCMKW",
        "A192GCMKW",
        "A256GCMKW",
        "PBES2-HS256+A128KW",
        "PBES2-HS384+A192KW",
        "PBES2-HS512+A256KW",
        "A128CBC-HS256",
        "A192CBC-HS384",
        "A256CBC-HS512",
        "A128GCM",
        "A192GCM",
        "A256GCM",
        "ECDH-1PU",
    ];
    if ENCRYPTION.contains(&name) {
        AlgClass::Encryption
    } else {
        AlgClass::Unsupported
    }
}
