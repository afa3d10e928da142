//! Claim paths: where in a provider's payload a mapping reads a value.

use std::fmt;

/// The longest claim path accepted, in segments.
const MAX_PATH_SEGMENTS: usize = 8;

/// A dotted path into a token's claims: `role`, `metadata.roles`,
/// `public_metadata.role`, `app_metadata.roles`, `o.rol`. Each segment is
/// a member name of a JSON object; a member whose name contains a dot cannot
/// be addressed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimPath {
    text: Box<str>,
}

impl ClaimPath {
    /// Parses a dotted path.
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`] for an empty path, an empty
    /// segment, or more than 8 segments.
    pub fn parse(path: &str) -> Result<Self, MappingConfigError> {
        let segments = path.split('.').count();
        if path.split('.').any(str::is_empty) || segments > MAX_PATH_SEGMENTS {
            return Err(MappingConfigError::InvalidPath(path.to_owned()));
        }
        Ok(Self { text: path.into() })
    }

    /// The segments, outermost first.
    pub(crate) fn segments(&self) -> impl Iterator<Item = &str> {
        self.text.split('.')
    }

    /// The path as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimPath({:?})", self.text)
    }
}

/// A mapping setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingConfigError {
    /// The path is empty, has an empty segment, or is too deep.
    #[error("{0:?} is not a claim path")]
    InvalidPath(String),
    /// Two configured paths collide: one is a prefix of the other, or one
    /// names a standard claim (`iss`, `sub`, `aud`, `azp`, `exp`, `nbf`,
    /// `iat`, `auth_time`) with a nested path.
    #[error("claim path {0:?} collides with another configured path")]
    PathCollision(String),
    /// A provider role appears twice in the mapping table.
    #[error("provider role {0:?} is mapped twice")]
    DuplicateRole(String),
    /// More claim paths than one payload is read for.
    #[error("more than {0} claim paths")]
    TooManyPaths(usize),
}
