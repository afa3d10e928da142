//! Claim mapping: where a provider keeps roles, email and name, and how its
//! roles become the application's.

use tessera_application::external::RoleMappingError;
use tessera_domain::{Role, RoleError};

use super::claim_path::{ClaimPath, MappingConfigError};
use super::payload::{Leaf, PathTrie};

/// What happens to a token without a role claim (or with an empty array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingRole<R> {
    /// The user gets this role, which should be the least privileged one.
    LeastPrivilege(R),
    /// The token is refused.
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target<R> {
    Role(R),
    Ignore,
}

/// How one provider's claims become an application identity: where the
/// role lives, how provider roles map to `R`, what a missing role means,
/// and where email and name live.
///
/// A role claim may be a string or an array of strings. Every string in it
/// must be in the mapping table (as a role or as explicitly ignored), or be
/// the wire name of an `R` when [`ClaimMapping::accept_role_names`] is on;
/// a present role that maps to nothing is always an error, never a default.
/// Of several mapped roles, the highest-ranked wins.
///
/// ```
/// use tessera_domain::UserRole;
/// use tessera_infrastructure::identity::{ClaimMapping, MissingRole};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mapping = ClaimMapping::new("public_metadata.role", MissingRole::LeastPrivilege(UserRole::User))?
///     .map("org:admin", UserRole::Admin)?
///     .map("org:member", UserRole::User)?
///     .email("email")?;
/// # let _ = mapping;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClaimMapping<R> {
    role_path: ClaimPath,
    table: Vec<(Box<str>, Target<R>)>,
    role_names: bool,
    missing: MissingRole<R>,
    email_path: Option<ClaimPath>,
    name_path: Option<ClaimPath>,
}

impl<R: Role> ClaimMapping<R> {
    /// Roles at `role_path`, `missing` when absent, an empty table.
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn new(role_path: &str, missing: MissingRole<R>) -> Result<Self, MappingConfigError> {
        Ok(Self {
            role_path: ClaimPath::parse(role_path)?,
            table: Vec::new(),
            role_names: false,
            missing,
            email_path: None,
            name_path: None,
        })
    }

    /// Maps the provider role `provider_role` (compared exactly) to `role`.
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::DuplicateRole`].
    pub fn map(self, provider_role: &str, role: R) -> Result<Self, MappingConfigError> {
        self.entry(provider_role, Target::Role(role))
    }

    /// Accepts the provider role `provider_role` in a role claim without
    /// granting anything (for roles the provider uses for other purposes).
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::DuplicateRole`].
    pub fn ignore(self, provider_role: &str) -> Result<Self, MappingConfigError> {
        self.entry(provider_role, Target::Ignore)
    }

    fn entry(mut self, provider_role: &str, target: Target<R>) -> Result<Self, MappingConfigError> {
        if self.table.iter().any(|(name, _)| &**name == provider_role) {
            return Err(MappingConfigError::DuplicateRole(provider_role.to_owned()));
        }
        self.table.push((provider_role.into(), target));
        Ok(self)
    }

    /// Also accepts provider roles that are wire names of `R`
    /// ([`Role::parse`]), after the table.
    #[must_use]
    pub fn accept_role_names(mut self) -> Self {
        self.role_names = true;
        self
    }

    /// Reads the user's email from `path` (a string claim).
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn email(mut self, path: &str) -> Result<Self, MappingConfigError> {
        self.email_path = Some(ClaimPath::parse(path)?);
        Ok(self)
    }

    /// Reads the user's display name from `path` (a string claim).
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn name(mut self, path: &str) -> Result<Self, MappingConfigError> {
        self.name_path = Some(ClaimPath::parse(path)?);
        Ok(self)
    }

    /// The path of the role claim.
    #[must_use]
    pub fn role_path(&self) -> &ClaimPath {
        &self.role_path
    }

    pub(crate) fn email_path(&self) -> Option<&ClaimPath> {
        self.email_path.as_ref()
    }

    pub(crate) fn name_path(&self) -> Option<&ClaimPath> {
        self.name_path.as_ref()
    }

    fn lookup(&self, provider_role: &str) -> Result<Option<R>, RoleMappingError> {
        if let Some((_, target)) = self.table.iter().find(|(n, _)| &**n == provider_role) {
            return Ok(match target {
                Target::Role(role) => Some(role.clone()),
                Target::Ignore => None,
            });
        }
        if self.role_names
            && let Ok(role) = R::parse(provider_role)
        {
            return Ok(Some(role));
        }
        Err(RoleMappingError::Unmapped(RoleError::unknown(
            provider_role,
        )))
    }

    /// Registers the role, email and name paths in `trie`, for
    /// [`ClaimMapping::read_profile`].
    pub(crate) fn register(&self, trie: &mut PathTrie) -> Result<ProfileSlots, MappingConfigError> {
        Ok(ProfileSlots {
            role: trie.add(self.role_path())?,
            email: self.email_path().map(|p| trie.add(p)).transpose()?,
            name: self.name_path().map(|p| trie.add(p)).transpose()?,
        })
    }

    /// The mapped role, email and name among what `found` holds at the
    /// slots [`ClaimMapping::register`] gave.
    pub(crate) fn read_profile(
        &self,
        slots: &ProfileSlots,
        found: &[Option<Leaf<'_>>],
    ) -> Result<(R, Option<String>, Option<String>), RoleMappingError> {
        let get = |slot: usize| found.get(slot).and_then(Option::as_ref);
        let role = self.resolve(get(slots.role))?;
        let string = |slot: Option<usize>| slot.and_then(get).and_then(Leaf::to_owned_string);
        Ok((role, string(slots.email), string(slots.name)))
    }

    /// The application role for what the token holds at the role path.
    pub(crate) fn resolve(&self, found: Option<&Leaf<'_>>) -> Result<R, RoleMappingError> {
        let mut best: Option<R> = None;
        let mut consider = |name: &str| -> Result<(), RoleMappingError> {
            if let Some(role) = self.lookup(name)?
                && best.as_ref().is_none_or(|b| role.rank() > b.rank())
            {
                best = Some(role);
            }
            Ok(())
        };
        match found {
            None | Some(Leaf::Null) => {}
            Some(Leaf::Str(name)) => consider(name)?,
            Some(Leaf::Strings(names)) => {
                for name in names {
                    consider(name)?;
                }
            }
            Some(_) => {
                return Err(RoleMappingError::WrongType {
                    path: self.role_path.as_str().to_owned(),
                });
            }
        }
        match best {
            Some(role) => Ok(role),
            // Absent, an empty array, or only explicitly ignored roles.
            None => match &self.missing {
                MissingRole::LeastPrivilege(role) => Ok(role.clone()),
                MissingRole::Reject => Err(RoleMappingError::Missing {
                    path: self.role_path.as_str().to_owned(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_domain::UserRole;

    fn mapping(missing: MissingRole<UserRole>) -> ClaimMapping<UserRole> {
        ClaimMapping::new("metadata.roles", missing)
            .unwrap()
            .map("org:admin", UserRole::Admin)
            .unwrap()
            .map("org:member", UserRole::User)
            .unwrap()
            .ignore("billing")
            .unwrap()
    }

    #[test]
    fn claim_paths_refuse_empty_segments_and_excessive_depth() {
        for bad in ["", ".", "a.", ".a", "a..b", "a.b.c.d.e.f.g.h.i"] {
            assert!(ClaimPath::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ClaimPath::parse("o.rol").unwrap().segments().count(), 2);
    }

    #[test]
    fn a_provider_role_cannot_be_mapped_twice() {
        let err = mapping(MissingRole::Reject)
            .map("org:admin", UserRole::User)
            .unwrap_err();
        assert_eq!(err, MappingConfigError::DuplicateRole("org:admin".into()));
    }

    #[test]
    fn of_several_mapped_roles_the_highest_ranked_wins_and_ignored_roles_grant_nothing() {
        let m = mapping(MissingRole::Reject);
        let leaf = Leaf::Strings(vec![
            "org:member".into(),
            "billing".into(),
            "org:admin".into(),
        ]);
        assert_eq!(m.resolve(Some(&leaf)).unwrap(), UserRole::Admin);
        let only_ignored = Leaf::Strings(vec!["billing".into()]);
        assert!(matches!(
            m.resolve(Some(&only_ignored)),
            Err(RoleMappingError::Missing { .. })
        ));
    }

    #[test]
    fn one_unmappable_role_in_an_array_is_an_error_even_beside_mapped_ones() {
        let m = mapping(MissingRole::LeastPrivilege(UserRole::User));
        let leaf = Leaf::Strings(vec!["org:admin".into(), "superuser".into()]);
        assert!(matches!(
            m.resolve(Some(&leaf)),
            Err(RoleMappingError::Unmapped(RoleError::Unknown(name))) if name == "superuser"
        ));
    }

    #[test]
    fn role_names_of_the_application_are_accepted_only_when_enabled() {
        let leaf = Leaf::Str("moderator".into());
        assert!(mapping(MissingRole::Reject).resolve(Some(&leaf)).is_err());
        assert_eq!(
            mapping(MissingRole::Reject)
                .accept_role_names()
                .resolve(Some(&leaf))
                .unwrap(),
            UserRole::Moderator
        );
    }

    #[test]
    fn a_role_claim_of_another_json_type_is_an_error() {
        let m = mapping(MissingRole::LeastPrivilege(UserRole::User));
        for leaf in [Leaf::Int(1), Leaf::Bool(true), Leaf::Other] {
            assert!(matches!(
                m.resolve(Some(&leaf)),
                Err(RoleMappingError::WrongType { .. })
            ));
        }
    }
}

/// Where a [`ClaimMapping`]'s role, email and name sit in a [`PathTrie`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProfileSlots {
    role: usize,
    email: Option<usize>,
    name: Option<usize>,
}
