//! tessera's domain: the rules of sessions, in plain Rust.
//!
//! No serde, no JWT, no async and no I/O live here: only identities
//! ([`UserId`], [`SessionId`], [`TenantId`], [`Capability`]), how a user
//! authenticated ([`Authentication`]: [`Acr`], [`AuthMethod`]), roles
//! ([`Role`], with the default [`UserRole`]), the [`SessionEntity`] with its
//! invariants and lifetime rules, the [`TimeWindow`] rule every token's
//! `iat`, `nbf` and `exp` are held to, and the route-access [`policy`].
//!
//! ```
//! use tessera_domain::{NewSession, Role, SessionEntity, SessionId, SessionLifetimes, UserId, UserRole};
//! use time::{Duration, OffsetDateTime};
//!
//! let now = OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
//! let lifetimes = SessionLifetimes::default();
//! let session = SessionEntity::new(NewSession {
//!     user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001")?,
//!     session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa")?,
//!     role: UserRole::parse("admin")?,
//!     capabilities: Default::default(),
//!     tenant: None,
//!     issued_at: now,
//!     expires_at: lifetimes.token_expiry(now, now),
//!     authenticated_at: now,
//!     authentication: Default::default(),
//! })?;
//! assert!(session.has_role_at_least(&UserRole::Moderator));
//! assert!(!session.is_expired(now + Duration::minutes(10), lifetimes.leeway()));
//! assert!(session.needs_rotation(now + Duration::minutes(10), &lifetimes));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod authentication;
mod ids;
pub mod policy;
mod role;
mod session;
mod window;

pub use authentication::{Authentication, MAX_AUTH_METHODS};
pub use ids::{Acr, AuthMethod, Capability, IdError, SessionId, TenantId, UserId};
pub use policy::{
    AccessDecision, MatchKind, PolicyError, Requirement, RouteMatch, RoutePolicy,
    RoutePolicyBuilder, RouteRule, StepUp, StepUpChallenge, StepUpReason,
};
pub use role::{Role, RoleError, UserRole};
pub use session::{LifetimeError, NewSession, SessionEntity, SessionError, SessionLifetimes};
pub use window::{TimeWindow, TimeWindowError};
