//! Identity-provider adapters: provider tokens verified locally against the
//! provider's JWK set, claims mapped to the application's role, and
//! provider-linked users.
//!
//! - [`JwksTokenVerifier`] ([`ExternalTokenVerifier`](tessera_application::external::ExternalTokenVerifier)):
//!   one or several [`IdentityProvider`]s, each with its own keys (static,
//!   or fetched and cached: [`KeyCache`], feature `jwks-fetch`), algorithm
//!   allow-list, `iss`/`aud`/`azp`/`typ` rules, leeway and [`ClaimMapping`];
//! - [`InMemoryExternalUserDirectory`]: provider-linked users in memory;
//! - [`HttpJwksSource`] (feature `jwks-fetch`): a JWKS endpoint over HTTPS.

#[cfg(feature = "jwks-fetch")]
mod cache;
#[cfg(feature = "jwks-fetch")]
mod fetch;
mod mapping;
mod memory_users;
mod payload;
mod verifier;

#[cfg(test)]
mod tests;

#[cfg(feature = "jwks-fetch")]
pub use cache::{CachePolicy, JwksDocument, JwksFetchError, JwksSource, KeyCache, KeysUnavailable};
#[cfg(feature = "jwks-fetch")]
pub use fetch::{HttpJwksSource, JwksUrlError, MAX_JWKS_BYTES};
pub use mapping::{ClaimMapping, ClaimPath, MappingConfigError, MissingRole};
pub use memory_users::InMemoryExternalUserDirectory;
pub use verifier::{IdentityProvider, JwksTokenVerifier, ProviderBuilder, ProviderConfigError};
