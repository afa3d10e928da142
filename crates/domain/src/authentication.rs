//! How the user authenticated: the OpenID Connect `acr` and `amr` of a
//! session, what step-up routes (RFC 9470) hold it to.

use crate::ids::{Acr, AuthMethod, IdError};

/// The most authentication methods (`amr` values) a session records.
pub const MAX_AUTH_METHODS: usize = 16;

/// How the user authenticated, when known: the authentication context
/// class reference (`acr`) and the methods used (`amr`). Kept across
/// rotations, like the authentication time: it describes the
/// authentication event, not the token.
///
/// The default knows nothing: no `acr`, no `amr`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Authentication {
    acr: Option<Acr>,
    amr: Box<[AuthMethod]>,
}

impl Authentication {
    /// An authentication at level `acr` (if known) by the methods `amr`.
    ///
    /// # Errors
    ///
    /// [`IdError::TooMany`] for more than [`MAX_AUTH_METHODS`] methods.
    pub fn new(acr: Option<Acr>, amr: Vec<AuthMethod>) -> Result<Self, IdError> {
        if amr.len() > MAX_AUTH_METHODS {
            return Err(IdError::TooMany {
                kind: "amr",
                max: MAX_AUTH_METHODS,
            });
        }
        Ok(Self {
            acr,
            amr: amr.into_boxed_slice(),
        })
    }

    /// An authentication at level `acr`, methods unknown.
    #[must_use]
    pub fn at_level(acr: Acr) -> Self {
        Self {
            acr: Some(acr),
            amr: Box::default(),
        }
    }

    /// The authentication context class reference, when known.
    #[must_use]
    pub fn acr(&self) -> Option<&Acr> {
        self.acr.as_ref()
    }

    /// The authentication methods, in the order given; empty when unknown.
    #[must_use]
    pub fn amr(&self) -> &[AuthMethod] {
        &self.amr
    }

    /// Whether the method `method` was used.
    #[must_use]
    pub fn used_method(&self, method: &str) -> bool {
        self.amr.iter().any(|m| m.as_str() == method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(names: &[&str]) -> Vec<AuthMethod> {
        names
            .iter()
            .map(|n| AuthMethod::parse(n).unwrap())
            .collect()
    }

    #[test]
    fn an_authentication_keeps_its_level_and_methods() {
        let auth = Authentication::new(
            Some(Acr::parse("urn:example:mfa").unwrap()),
            methods(&["pwd", "otp"]),
        )
        .unwrap();
        assert_eq!(auth.acr().map(Acr::as_str), Some("urn:example:mfa"));
        assert!(auth.used_method("otp") && !auth.used_method("hwk"));
        assert_eq!(auth.amr().len(), 2);
        assert_eq!(Authentication::default().acr(), None);
    }

    #[test]
    fn more_methods_than_the_cap_are_refused() {
        let many = vec!["pwd"; MAX_AUTH_METHODS + 1];
        assert_eq!(
            Authentication::new(None, methods(&many)),
            Err(IdError::TooMany {
                kind: "amr",
                max: MAX_AUTH_METHODS
            })
        );
        assert!(Authentication::new(None, methods(&many[1..])).is_ok());
    }

    #[test]
    fn values_that_would_break_a_header_or_a_list_are_refused() {
        for bad in ["", "two words", "quo\"te", "back\\slash", "tab\t", "é"] {
            assert!(Acr::parse(bad).is_err(), "{bad:?}");
            assert!(AuthMethod::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Acr::parse(&"a".repeat(255)).is_ok());
        assert!(Acr::parse(&"a".repeat(256)).is_err());
        assert!(AuthMethod::parse(&"a".repeat(65)).is_err());
        assert!(Acr::parse("http://schemas.openid.net/pape/policies/2007/06/multi-factor").is_ok());
    }
}
