//! Roles: the application's own enum, or tessera's default [`UserRole`].

use std::fmt;
use std::hash::Hash;

/// Why a role name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoleError {
    /// The role name is empty.
    #[error("role is empty")]
    Empty,
    /// The role name is not one the role type knows. Never mapped to a default.
    #[error("role {0:?} is not a known role")]
    Unknown(String),
}

impl RoleError {
    /// Builds [`RoleError::Unknown`], keeping at most 64 bytes of the name so
    /// that a hostile token cannot inflate logs.
    #[must_use]
    pub fn unknown(name: &str) -> Self {
        let mut end = name.len().min(64);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        Self::Unknown(name.get(..end).unwrap_or_default().to_owned())
    }
}

/// A role an application assigns to its users.
///
/// Implement it for your own enum to use your roles everywhere tessera takes
/// a role; tessera ships [`UserRole`] for applications without one.
///
/// Implementations MUST reject unknown names with [`RoleError`] and never
/// fall back to some default role: a token naming a role the application
/// does not know is refused.
pub trait Role: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static {
    /// Parses a role from its wire name.
    ///
    /// # Errors
    ///
    /// [`RoleError::Empty`] for an empty name, [`RoleError::Unknown`] for any
    /// name this role type does not define.
    fn parse(name: &str) -> Result<Self, RoleError>;

    /// The wire name; `parse(role.name())` MUST give back `role`.
    fn name(&self) -> &str;

    /// Privilege rank for "at least" comparisons: higher is more privileged.
    fn rank(&self) -> u8;

    /// Whether this role is `other` or ranks above it.
    fn is_at_least(&self, other: &Self) -> bool {
        self.rank() >= other.rank()
    }
}

/// tessera's default roles, from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum UserRole {
    /// A signed-in user with ordinary rights (`"user"`).
    User,
    /// A user who moderates other users' content (`"moderator"`).
    Moderator,
    /// An administrator (`"admin"`).
    Admin,
}

impl UserRole {
    /// Every role, least privileged first.
    pub const ALL: [Self; 3] = [Self::User, Self::Moderator, Self::Admin];
}

impl Role for UserRole {
    fn parse(name: &str) -> Result<Self, RoleError> {
        match name {
            "" => Err(RoleError::Empty),
            "user" => Ok(Self::User),
            "moderator" => Ok(Self::Moderator),
            "admin" => Ok(Self::Admin),
            other => Err(RoleError::unknown(other)),
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::User => "user",
            Self::Moderator => "moderator",
            Self::Admin => "admin",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::User => 10,
            Self::Moderator => 20,
            Self::Admin => 30,
        }
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_role_round_trips_through_its_name() {
        for role in UserRole::ALL {
            assert_eq!(UserRole::parse(role.name()), Ok(role));
        }
    }

    #[test]
    fn unknown_and_empty_roles_are_errors_not_defaults() {
        assert_eq!(UserRole::parse(""), Err(RoleError::Empty));
        assert_eq!(
            UserRole::parse("Admin"),
            Err(RoleError::Unknown("Admin".into()))
        );
        assert_eq!(
            UserRole::parse("superuser"),
            Err(RoleError::Unknown("superuser".into()))
        );
    }

    #[test]
    fn unknown_role_names_are_truncated_on_a_char_boundary() {
        let long = "\u{e9}".repeat(40);
        let RoleError::Unknown(kept) = RoleError::unknown(&long) else {
            panic!("expected Unknown");
        };
        assert_eq!(kept.len(), 64);
    }

    #[test]
    fn at_least_follows_rank() {
        assert!(UserRole::Admin.is_at_least(&UserRole::Moderator));
        assert!(UserRole::Moderator.is_at_least(&UserRole::Moderator));
        assert!(!UserRole::User.is_at_least(&UserRole::Moderator));
    }
}
