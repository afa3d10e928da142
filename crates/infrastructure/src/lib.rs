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
//! - [`identity`]: identity-provider tokens (JWKS verification, claim
//!   mapping) and provider-linked users;
//! - [`system`]: [`SystemClock`] and [`UuidV7SessionIds`];
//! - [`memory`]: [`InMemoryRevocationStore`] and [`InMemoryUserDirectory`];
//! - `postgres` (feature `postgres`): `PostgresRevocationStore` and
//!   `PostgresUserDirectory`, for several instances sharing one database;
//! - `redis` (feature `redis`): `RedisRevocationStore`, for several
//!   instances sharing one Redis.
//!
//! ```
//! use tessera_application::ports::SessionTokenCodec;
//! use tessera_infrastructure::{JwsAlgorithm, JwtSessionCodec, KeyRing, SigningKey};
//! # use tessera_application::SessionTokenClaims;
//! # use tessera_domain::{NewSession, SessionEntity, SessionId, UserId, UserRole};
//! # use time::{Duration, OffsetDateTime};
//! # let now = OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
//! # let claims = SessionTokenClaims::new(SessionEntity::new(NewSession {
//! #     user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001")?,
//! #     session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa")?,
//! #     role: UserRole::Admin, capabilities: Default::default(), tenant: None,
//! #     issued_at: now, expires_at: now + Duration::minutes(15), authenticated_at: now,
//! #     authentication: Default::default(),
//! # })?, None);
//!
//! // One active signing key; older keys can stay in the ring to verify.
//! let ring = KeyRing::new(SigningKey::generate(JwsAlgorithm::Es256, "2026-11")?);
//! let codec = JwtSessionCodec::new(ring, "https://api.example", "web");
//!
//! let token = codec.encode(&claims)?;
//! let decoded: SessionTokenClaims<UserRole> = codec.decode(token.expose_secret())?;
//! assert_eq!(decoded, claims);
//!
//! // A token for another audience is refused, with a typed reason.
//! let other = JwtSessionCodec::new(codec.key_ring(), "https://api.example", "admin");
//! let refused = SessionTokenCodec::<UserRole>::decode(&other, token.expose_secret());
//! assert_eq!(refused.unwrap_err().code(), "wrong_audience");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The docs name the items of optional features (`jwks-fetch`); built
// without them, those links have no target. docs.rs and CI document with
// every feature, where each one must resolve.
#![cfg_attr(not(feature = "jwks-fetch"), allow(rustdoc::broken_intra_doc_links))]

pub mod claims;
pub mod codec;
mod fingerprint_map;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod jose;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod revocation_state;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod revocation_sync;
pub mod system;
mod verified_cache;

pub use claims::{Audience, SessionJwtClaims};
pub use codec::{DEFAULT_MAX_TOKEN_BYTES, JwtSessionCodec, SESSION_TOKEN_TYPE};
pub use jose::{JwsAlgorithm, KeyError, KeyRing, PrivateJwk, SigningKey, VerificationKey};
pub use memory::{InMemoryRevocationStore, InMemoryUserDirectory};
pub use revocation_state::RevocationState;
pub use system::{SystemClock, UuidV7SessionIds};
pub use verified_cache::{DEFAULT_VERIFIED_CACHE_ENTRIES, VerifiedCacheStats};
