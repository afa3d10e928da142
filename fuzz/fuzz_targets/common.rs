//! What several targets share: fixed keys, so that the committed seeds
//! carry valid signatures and mutations explore past the signature check.

#![allow(dead_code)]

use tessera_infrastructure::{JwsAlgorithm, SigningKey};

/// Every algorithm tessera signs with: key loaders are tried with each.
pub const ALGORITHMS: [JwsAlgorithm; 4] = [
    JwsAlgorithm::Hs256,
    JwsAlgorithm::Rs256,
    JwsAlgorithm::Es256,
    JwsAlgorithm::EdDsa,
];

/// The HS256 secret of the session and webhook targets (32 bytes).
pub const SECRET: &[u8; 32] = b"tessera-fuzz-shared-secret-32byt";

/// The HS256 key every seed token is signed with.
pub fn hs256() -> SigningKey {
    SigningKey::hmac_sha256("k1", SECRET).expect("a 32-byte secret is a valid HS256 key")
}
