//! tessera's application layer: the session use cases and the ports they
//! reach the outside world through.
//!
//! - [`token`]: [`SessionToken`] (a redacted secret) and
//!   [`SessionTokenClaims`], the typed claims use cases reason about;
//! - [`ports`]: token codec, clock, id generator, user directory and
//!   revocation store, with mockall fakes behind the `mocks` feature;
//! - [`usecases`]: [`EstablishSession`], [`VerifySession`], [`ReadSession`],
//!   [`RotateSession`], [`RevokeSession`] and [`AuthorizeRequest`].
//!
//! Adapters live in `tessera-infrastructure`; the `tessera` facade wires them.

pub mod ports;
pub mod token;
pub mod usecases;

#[cfg(test)]
mod testing;

pub use token::{ClaimsError, SessionToken, SessionTokenClaims};
pub use usecases::authorize::{Authorization, AuthorizeRequest};
pub use usecases::establish::{
    EstablishError, EstablishRequest, EstablishSession, EstablishedSession,
};
pub use usecases::read::ReadSession;
pub use usecases::revoke::{RevokeError, RevokeRequest, RevokeSession};
pub use usecases::rotate::{RotateError, RotateSession, RotatedSession};
pub use usecases::verify::{RotationNeed, VerifiedSession, VerifyError, VerifySession};
