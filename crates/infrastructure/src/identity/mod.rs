//! Identity-provider adapters: provider tokens verified locally against the
//! provider's JWK set, claims mapped to the application's role, and
//! provider-linked users.
//!
//! - [`JwksTokenVerifier`] ([`ExternalTokenVerifier`](tessera_application::external::ExternalTokenVerifier)):
//!   one or several [`IdentityProvider`]s, each with its own keys (static,
//!   or fetched and cached once for the provider: [`KeyCache`], feature
//!   `jwks-fetch`), algorithm allow-list, leeway, and token profiles
//!   ([`TokenProfile`]: an access token, an ID token), each with its
//!   `aud`/`azp`/`typ` rules, [`ClaimMapping`], accepted subjects (users,
//!   machines) and required claims;
//! - [`InMemoryExternalUserDirectory`]: provider-linked users in memory;
//! - [`JsonUserEventDecoder`]: a provider's user webhooks read as events;
//! - `PostgresExternalUserDirectory` (feature `postgres`): provider-linked
//!   users in PostgreSQL, shared by every instance;
//! - [`HttpJwksSource`] (feature `jwks-fetch`): a JWKS endpoint over HTTPS;
//! - [`OidcDiscovery`] (feature `jwks-fetch`): the JWKS endpoint found from
//!   the issuer URL alone, through its OpenID configuration
//!   ([`ProviderBuilder::discover`]);
//! - [`HttpUserApi`] (feature `jwks-fetch`): a provider's user API over
//!   HTTPS, for `ResolveUser` when a token does not say enough.

#[cfg(feature = "jwks-fetch")]
mod cache;
mod claim_path;
#[cfg(feature = "jwks-fetch")]
mod discovery;
#[cfg(feature = "jwks-fetch")]
mod fetch;
mod mapping;
mod memory_users;
mod payload;
#[cfg(feature = "postgres")]
mod postgres_users;
mod profile;
#[cfg(feature = "jwks-fetch")]
mod user_api;
mod verifier;
mod webhook_events;

#[cfg(test)]
mod tests;

#[cfg(feature = "jwks-fetch")]
pub use cache::{CachePolicy, JwksDocument, JwksFetchError, JwksSource, KeyCache, KeysUnavailable};
pub use claim_path::{ClaimPath, MappingConfigError};
#[cfg(feature = "jwks-fetch")]
pub use discovery::{DiscoveryError, MAX_DISCOVERY_BYTES, OidcDiscovery};
#[cfg(feature = "jwks-fetch")]
pub use fetch::{HttpJwksSource, JwksUrlError, MAX_JWKS_BYTES};
pub use mapping::{ClaimMapping, MissingRole};
pub use memory_users::InMemoryExternalUserDirectory;
#[cfg(feature = "postgres")]
pub use postgres_users::PostgresExternalUserDirectory;
pub use profile::{AcceptedSubjects, ClaimValue, TokenProfile, TypRule};
#[cfg(feature = "jwks-fetch")]
pub use user_api::{ApiKey, HttpUserApi, MAX_USER_BYTES, UserApiConfigError, UserApiStatus};
pub use verifier::{IdentityProvider, JwksTokenVerifier, ProviderBuilder, ProviderConfigError};
pub use webhook_events::JsonUserEventDecoder;
