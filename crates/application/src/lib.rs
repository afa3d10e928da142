//! tessera's application layer: the session use cases and the ports they
//! reach the outside world through.
//!
//! - [`token`]: [`SessionToken`] (a redacted secret) and
//!   [`SessionTokenClaims`], the typed claims use cases reason about;
//! - [`ports`]: token codec, clock, id generator, user directory and
//!   revocation store, with mockall fakes behind the `mocks` feature;
//! - [`external`]: identity-provider ports (provider token verifier,
//!   directory of provider-linked users, webhook event decoder);
//! - [`usecases`]: [`EstablishSession`], [`VerifySession`], [`ReadSession`],
//!   [`RotateSession`], [`RevokeSession`], [`DecideAdmission`],
//!   [`ExchangeToken`] and [`ApplyUserEvent`].
//!
//! Adapters live in `tessera-infrastructure`; the `tessera` facade wires them.
//! A port is a trait: anything that implements it can fill it, as here with
//! a fixed clock and a toy codec that keeps claims in memory.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//!
//! use tessera_application::ports::{Clock, IdGenerator, JwsFailure, SessionTokenCodec, TokenError};
//! use tessera_application::{EstablishRequest, EstablishSession, SessionToken, SessionTokenClaims};
//! use tessera_domain::{SessionId, SessionLifetimes, UserId, UserRole};
//! use time::OffsetDateTime;
//!
//! struct FixedClock(OffsetDateTime);
//! impl Clock for FixedClock {
//!     fn now(&self) -> OffsetDateTime { self.0 }
//! }
//!
//! struct OneId(SessionId);
//! impl IdGenerator for OneId {
//!     fn session_id(&self) -> SessionId { self.0 }
//! }
//!
//! /// Not a real codec: tokens are numbers, claims stay in a map.
//! #[derive(Default)]
//! struct ToyCodec(Mutex<HashMap<String, SessionTokenClaims<UserRole>>>);
//! impl SessionTokenCodec<UserRole> for ToyCodec {
//!     fn encode(&self, claims: &SessionTokenClaims<UserRole>) -> Result<SessionToken, TokenError> {
//!         let mut map = self.0.lock().map_err(|_| TokenError::Jws(JwsFailure::Malformed("poisoned")))?;
//!         let token = map.len().to_string();
//!         map.insert(token.clone(), claims.clone());
//!         Ok(SessionToken::new(token))
//!     }
//!     fn decode(&self, token: &str) -> Result<SessionTokenClaims<UserRole>, TokenError> {
//!         let map = self.0.lock().map_err(|_| TokenError::Jws(JwsFailure::Malformed("poisoned")))?;
//!         map.get(token).cloned().ok_or(TokenError::Jws(JwsFailure::InvalidSignature))
//!     }
//! }
//!
//! let now = OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
//! let establish = EstablishSession::new(
//!     Arc::new(ToyCodec::default()),
//!     Arc::new(FixedClock(now)),
//!     Arc::new(OneId(SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa")?)),
//!     SessionLifetimes::default(),
//! );
//! let issued = establish.execute(EstablishRequest {
//!     user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001")?,
//!     role: UserRole::User,
//!     capabilities: Default::default(),
//!     tenant: None,
//!     authenticated_at: None,
//!     authentication: Default::default(),
//! })?;
//! assert_eq!(issued.token.expose_secret(), "0");
//! assert_eq!(issued.session.expires_at(), now + SessionLifetimes::default().token());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "testing")]
pub mod contracts;
pub mod external;
pub mod ports;
pub mod token;
pub mod usecases;
pub mod user_cache;

#[cfg(test)]
mod testing;

pub use token::{ClaimsError, SessionToken, SessionTokenClaims};
pub use usecases::admission::{
    Admission, AdmissionRequest, AdmittedSession, BrowserFacts, CredentialFault, CredentialSource,
    CredentialUpdate, DecideAdmission, Decision, OriginError, PendingAdmission,
    PresentedCredential, ProviderSession, Refusal, SignInPages, SignInPagesError, TrustedOrigins,
    Verdict, safe_return_to,
};
pub use usecases::establish::{
    EstablishError, EstablishRequest, EstablishSession, EstablishedSession,
};
pub use usecases::exchange::{ExchangeError, ExchangeToken, ExchangedToken, ISSUED_TOKEN_TYPE};
pub use usecases::read::ReadSession;
pub use usecases::resolve_user::{
    ProviderApiUse, ResolveUser, ResolveUserError, ResolveUserRequest, ResolvedFrom, ResolvedUser,
};
pub use usecases::revoke::{RevokeError, RevokeRequest, RevokeSession};
pub use usecases::rotate::{RotateError, RotateSession, RotatedSession};
pub use usecases::sign_in::{SignInError, SignInFacts, SignInUser};
pub use usecases::sign_out::{SignOutError, SignOutSession, SignedOut};
pub use usecases::user_events::{ApplyUserEvent, ApplyUserEventError, UserEventOutcome};
pub use usecases::verify::{
    RotationNeed, SessionCheck, StaleSession, VerifiedSession, VerifyError, VerifySession,
};
pub use user_cache::{CachedExternalUserDirectory, UserCachePolicy};
