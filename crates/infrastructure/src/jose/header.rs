//! What a verified compact JWS is: its protected header and its payload.

use std::sync::Arc;

use super::algorithm::JwsAlgorithm;

/// The protected header members tessera reads.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct JwsHeader {
    /// `alg`, already pinned to the key that verified the signature.
    pub alg: JwsAlgorithm,
    /// `kid`, when the header names a key.
    pub kid: Option<Arc<str>>,
    /// `typ`, the explicit type (RFC 8725 §3.11), unchecked at this layer.
    pub typ: Option<Arc<str>>,
}

/// A compact JWS whose signature verified: its header and decoded payload.
///
/// The payload has not been interpreted; it is whatever bytes were signed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedJws {
    /// The protected header.
    pub header: JwsHeader,
    /// The payload, base64url-decoded.
    pub payload: Vec<u8>,
}
