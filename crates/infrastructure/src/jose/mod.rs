//! The JWS signature layer: keys parsed once, a key ring, and compact JWS
//! signing and verification on aws-lc-rs.
//!
//! This is the part of token handling below the claims: it knows headers,
//! keys and signatures, and treats the payload as bytes.
//!
//! - [`SigningKey`] and [`VerificationKey`] hold key material parsed once
//!   (from a JWK, a PEM document, raw HMAC secret bytes, or freshly
//!   generated), so that signing and verifying never re-parse a key.
//! - [`KeyRing`] is the set of keys a service signs and verifies with. It
//!   refuses unsafe keys and unsafe sets (weak or vulnerable RSA keys, short
//!   HMAC secrets, encryption keys, duplicate `kid`s, symmetric and
//!   asymmetric keys mixed) and supports rotation.
//! - [`verify_compact`] checks a compact JWS against a ring: size cap first,
//!   then three strict base64url parts, a JSON-object header without `crit`,
//!   the key the header names, `alg` pinned to that key, one signature check.
//! - [`encode_header`] and [`sign_compact`] produce compact JWS.
//! - [`SigningKey::to_private_jwk`] (a redacted [`PrivateJwk`]),
//!   [`VerificationKey::to_public_jwk`] and [`KeyRing::to_public_jwk_set`]
//!   write keys back out as JWKs that the `from_jwk` readers accept.
//!
//! Only HS256, RS256 (PKCS#1 v1.5), ES256 (P-256, fixed-size `r || s`
//! signatures) and EdDSA (Ed25519) are supported; every other algorithm,
//! `none` included, is rejected.
//!
//! ```
//! use tessera_infrastructure::jose::{self, JwsAlgorithm, KeyRing, SigningKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ring = KeyRing::new(SigningKey::generate(JwsAlgorithm::EdDsa, "2025-01")?);
//! let key = ring.signing_key().ok_or("no signing key")?;
//! let header = jose::encode_header(key, "example+jwt"); // once per key
//! let token = jose::sign_compact(key, &header, br#"{"sub":"someone"}"#)?;
//!
//! let verified = jose::verify_compact(&token, &ring, 8 * 1024)?;
//! assert_eq!(verified.header.kid.as_deref(), Some("2025-01"));
//! assert_eq!(verified.payload, br#"{"sub":"someone"}"#);
//! # Ok(())
//! # }
//! ```

mod algorithm;
mod compact;
mod der;
mod error;
mod export;
mod header;
mod jwk;
mod keys;
mod pem;
mod ring;
mod rsa_checks;
pub(crate) mod serde_util;

#[cfg(test)]
mod tests;

pub use algorithm::JwsAlgorithm;
pub use compact::{encode_header, sign_compact, verify_compact};
pub use error::{JwsError, KeyError, Unsupported};
pub use export::PrivateJwk;
pub use header::{JwsHeader, VerifiedJws};
pub use keys::{SigningKey, VerificationKey};
pub use ring::{KeyRing, SkipReason, SkippedKey};
