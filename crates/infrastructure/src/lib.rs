//! tessera's adapters: everything that touches JSON, cryptography, the clock
//! or storage.
//!
//! - [`jose`]: the signature layer — [`KeyRing`], [`SigningKey`],
//!   [`VerificationKey`] — with keys parsed once, on aws-lc-rs (the crypto
//!   backend jsonwebtoken 11 uses with its `aws_lc_rs` feature, called
//!   directly so that no key is re-parsed per call and no runtime provider
//!   selection can fail). Tokens are standard compact JWS: the end-to-end
//!   tests check that jsonwebtoken verifies tessera's tokens and the reverse;
//! - [`claims`]: [`SessionJwtClaims`], the wire form, and the enrich mapper;
//! - [`codec`]: [`JwtSessionCodec`], the token codec port's adapter;
//! - [`system`]: [`SystemClock`] and [`UuidV7SessionIds`];
//! - [`memory`]: [`InMemoryRevocationStore`] and [`InMemoryUserDirectory`].

pub mod claims;
pub mod codec;
pub mod jose;
pub mod memory;
pub mod system;

pub use claims::{Audience, SessionJwtClaims};
pub use codec::{DEFAULT_MAX_TOKEN_BYTES, JwtSessionCodec, SESSION_TOKEN_TYPE};
pub use jose::{JwsAlgorithm, KeyError, KeyRing, SigningKey, VerificationKey};
pub use memory::{InMemoryRevocationStore, InMemoryUserDirectory};
pub use system::{SystemClock, UuidV7SessionIds};
