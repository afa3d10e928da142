//! The sign-in page, the signed-in page, and return-to targets that can
//! only stay on this site.

use tessera_domain::StepUpChallenge;

/// The default sign-in page, where browser routes send visitors without a
/// session.
pub const DEFAULT_LOGIN_PATH: &str = "/login";
/// The default name of the sign-in page's return-to query parameter.
pub const DEFAULT_RETURN_TO_PARAM: &str = "return_to";
/// The default page signed-in users are sent to from guest-only pages.
pub const DEFAULT_SIGNED_IN_PATH: &str = "/";
/// The longest return-to target kept, in bytes; longer ones are dropped.
pub const MAX_RETURN_TO_BYTES: usize = 2048;

/// A [`SignInPages`] setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignInPagesError {
    /// A page is not a relative path [`safe_return_to`] accepts.
    #[error("{which} {path:?} is not a relative path on this site")]
    InvalidPath {
        /// Which setting.
        which: &'static str,
        /// The path.
        path: String,
    },
    /// The return-to parameter name is empty or has characters that would
    /// need encoding.
    #[error("{0:?} is not a valid query parameter name")]
    InvalidReturnToParam(String),
}

/// Where browsers are sent: the sign-in page (with a return-to parameter)
/// and the page for signed-in users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInPages {
    login_path: String,
    return_to_param: String,
    signed_in_path: String,
}

impl Default for SignInPages {
    fn default() -> Self {
        Self {
            login_path: DEFAULT_LOGIN_PATH.to_owned(),
            return_to_param: DEFAULT_RETURN_TO_PARAM.to_owned(),
            signed_in_path: DEFAULT_SIGNED_IN_PATH.to_owned(),
        }
    }
}

impl SignInPages {
    /// The sign-in page (a relative path, optionally with a query), the
    /// name of its return-to parameter, and the page signed-in users go to
    /// from guest-only pages.
    ///
    /// # Errors
    ///
    /// [`SignInPagesError`] for a page [`safe_return_to`] refuses, or a
    /// parameter name that is not made of unreserved URL characters.
    pub fn new(
        login_path: &str,
        return_to_param: &str,
        signed_in_path: &str,
    ) -> Result<Self, SignInPagesError> {
        for (which, path) in [
            ("login_path", login_path),
            ("signed_in_path", signed_in_path),
        ] {
            if safe_return_to(path).is_none() {
                return Err(SignInPagesError::InvalidPath {
                    which,
                    path: path.to_owned(),
                });
            }
        }
        let param_ok = !return_to_param.is_empty()
            && return_to_param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        if !param_ok {
            return Err(SignInPagesError::InvalidReturnToParam(
                return_to_param.to_owned(),
            ));
        }
        Ok(Self {
            login_path: login_path.to_owned(),
            return_to_param: return_to_param.to_owned(),
            signed_in_path: signed_in_path.to_owned(),
        })
    }

    /// The sign-in page.
    #[must_use]
    pub fn login_path(&self) -> &str {
        &self.login_path
    }

    /// The sign-in page's return-to parameter.
    #[must_use]
    pub fn return_to_param(&self) -> &str {
        &self.return_to_param
    }

    /// The page for signed-in users.
    #[must_use]
    pub fn signed_in_path(&self) -> &str {
        &self.signed_in_path
    }

    /// The sign-in page, with `target` as the return-to parameter when it
    /// is safe.
    #[must_use]
    pub fn login_location(&self, target: Option<&str>) -> String {
        let Some(target) = target.and_then(safe_return_to) else {
            return self.login_path.clone();
        };
        let separator = if self.login_path.contains('?') {
            '&'
        } else {
            '?'
        };
        let encoded: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
        format!(
            "{}{separator}{}={encoded}",
            self.login_path, self.return_to_param
        )
    }

    /// The sign-in page for a session that must authenticate again
    /// (step-up): [`login_location`](Self::login_location), plus the
    /// route's `max_age` (seconds) and `acr_values` (space-separated) as
    /// query parameters, under the names OpenID Connect gives them in an
    /// authentication request, for the sign-in page to pass on.
    #[must_use]
    pub fn step_up_location(&self, target: Option<&str>, challenge: &StepUpChallenge) -> String {
        let mut location = self.login_location(target);
        let mut params = form_urlencoded::Serializer::new(String::new());
        if let Some(max_age) = challenge.asked().max_age_seconds() {
            params.append_pair("max_age", &max_age.to_string());
        }
        if let Some(acr_values) = challenge.asked().acr_values_text() {
            params.append_pair("acr_values", &acr_values);
        }
        let params = params.finish();
        if !params.is_empty() {
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str(&params);
        }
        location
    }

    /// Where a browser goes once signed in: `return_to` when it is safe
    /// ([`safe_return_to`]), the signed-in page otherwise.
    #[must_use]
    pub fn after_sign_in<'a>(&'a self, return_to: Option<&'a str>) -> &'a str {
        return_to
            .and_then(safe_return_to)
            .unwrap_or(&self.signed_in_path)
    }

    /// Where a browser goes once signed out: `return_to` when it is safe,
    /// the sign-in page otherwise.
    #[must_use]
    pub fn after_sign_out<'a>(&'a self, return_to: Option<&'a str>) -> &'a str {
        return_to
            .and_then(safe_return_to)
            .unwrap_or(&self.login_path)
    }

    /// The safe return-to target a query carries, if any.
    #[must_use]
    pub fn return_to(&self, query: Option<&str>) -> Option<String> {
        let (_, value) = form_urlencoded::parse(query?.as_bytes())
            .find(|(name, _)| name == self.return_to_param.as_str())?;
        safe_return_to(&value).map(str::to_owned)
    }
}

/// `target` when it is a safe place to send a user back to after signing
/// in: a path on this site, never another site.
///
/// Accepted: a path that starts with exactly one `/` (optionally with a
/// query), made only of printable ASCII (`!` to `~`), no backslash, at most
/// [`MAX_RETURN_TO_BYTES`] long. Refused: empty strings, absolute URLs and
/// schemes (`https://evil`, `javascript:`), protocol-relative and
/// backslash tricks (`//evil`, `/\evil`, `\\evil`), spaces, control and
/// non-ASCII characters — everything a browser might read as another host.
///
/// Use it in the sign-in handler before redirecting to a `return_to`
/// parameter: that redirect is where an open redirect would happen.
///
/// ```
/// use tessera_application::safe_return_to;
///
/// assert_eq!(safe_return_to("/admin?tab=users"), Some("/admin?tab=users"));
/// assert_eq!(safe_return_to("//evil.example"), None);
/// assert_eq!(safe_return_to("/\\evil.example"), None);
/// assert_eq!(safe_return_to("https://evil.example/"), None);
/// assert_eq!(safe_return_to("/\tevil"), None);
/// ```
#[must_use]
pub fn safe_return_to(target: &str) -> Option<&str> {
    let bytes = target.as_bytes();
    let safe = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes.len() <= MAX_RETURN_TO_BYTES
        && bytes.iter().all(|&b| b.is_ascii_graphic() && b != b'\\');
    safe.then_some(target)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pages(login: &str, param: &str) -> SignInPages {
        SignInPages::new(login, param, "/").unwrap()
    }

    #[test]
    fn after_signing_in_or_out_a_browser_goes_to_a_safe_return_to_or_the_default_page() {
        let pages = SignInPages::new("/login?app=1", "next", "/home").unwrap();
        assert_eq!(pages.after_sign_in(Some("/admin?tab=2")), "/admin?tab=2");
        assert_eq!(pages.after_sign_out(Some("/bye")), "/bye");
        for unsafe_target in [None, Some("//evil.example"), Some("https://evil.example")] {
            assert_eq!(pages.after_sign_in(unsafe_target), "/home");
            assert_eq!(pages.after_sign_out(unsafe_target), "/login?app=1");
        }
    }

    #[test]
    fn relative_paths_with_queries_are_safe() {
        for ok in [
            "/",
            "/app",
            "/app/x?y=1&z=%2F",
            "/a:b@c",
            "/.//x",
            "/%2F%2Fevil",
        ] {
            assert_eq!(safe_return_to(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn anything_a_browser_could_read_as_another_host_is_refused() {
        for bad in [
            "",
            "app",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/app\\..\\x",
            "https://evil.example",
            "javascript:alert(1)",
            "/\tevil",
            "/ evil",
            "/\r\nLocation: https://evil",
            "/caf\u{e9}",
            "/\u{0}",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
        assert_eq!(
            safe_return_to(&format!("/{}", "a".repeat(MAX_RETURN_TO_BYTES))),
            None
        );
    }

    #[test]
    fn pages_that_are_not_relative_paths_and_bad_parameter_names_are_refused() {
        assert_eq!(
            SignInPages::new("https://evil/login", "return_to", "/"),
            Err(SignInPagesError::InvalidPath {
                which: "login_path",
                path: "https://evil/login".into()
            })
        );
        assert_eq!(
            SignInPages::new("/login", "return_to", "//evil"),
            Err(SignInPagesError::InvalidPath {
                which: "signed_in_path",
                path: "//evil".into()
            })
        );
        for bad in ["", "return to", "a&b", "é"] {
            assert_eq!(
                SignInPages::new("/login", bad, "/"),
                Err(SignInPagesError::InvalidReturnToParam(bad.into()))
            );
        }
    }

    #[test]
    fn login_location_encodes_a_safe_target_and_drops_an_unsafe_one() {
        let login = pages("/login", "return_to");
        assert_eq!(
            login.login_location(Some("/admin?tab=1&x=2")),
            "/login?return_to=%2Fadmin%3Ftab%3D1%26x%3D2"
        );
        assert_eq!(login.login_location(Some("//evil")), "/login");
        assert_eq!(login.login_location(None), "/login");
        assert_eq!(
            pages("/auth?flow=web", "next").login_location(Some("/a")),
            "/auth?flow=web&next=%2Fa"
        );
    }

    #[test]
    fn return_to_is_read_from_the_query_only_when_safe() {
        let login = pages("/login", "return_to");
        assert_eq!(
            login
                .return_to(Some("a=1&return_to=%2Fapp%3Fx%3D1"))
                .as_deref(),
            Some("/app?x=1")
        );
        assert_eq!(login.return_to(Some("return_to=%2F%2Fevil")), None);
        assert_eq!(login.return_to(Some("return_to=https%3A%2F%2Fevil")), None);
        assert_eq!(login.return_to(Some("other=%2Fapp")), None);
        assert_eq!(login.return_to(None), None);
    }

    proptest! {
        /// Oracle: a target is safe iff a URL parser resolving it against
        /// this site could not leave the site — approximated by the rules
        /// spelled out on `safe_return_to`, checked independently here.
        #[test]
        fn safe_targets_always_stay_on_the_site(target in "\\PC{0,40}|/[ -~]{0,40}|//[ -~]{0,10}") {
            match safe_return_to(&target) {
                Some(kept) => {
                    prop_assert_eq!(kept, target.as_str());
                    prop_assert!(kept.starts_with('/'));
                    prop_assert!(!kept.starts_with("//") && !kept.starts_with("/\\"));
                    prop_assert!(kept.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'\\'));
                }
                None => prop_assert!(
                    !target.starts_with('/')
                        || target.starts_with("//")
                        || target.starts_with("/\\")
                        || target.bytes().any(|b| !(0x21..=0x7e).contains(&b) || b == b'\\')
                        || target.len() > MAX_RETURN_TO_BYTES
                ),
            }
        }

        #[test]
        fn login_location_is_always_a_printable_relative_path(target in "\\PC{0,60}") {
            let location = pages("/login", "return_to").login_location(Some(&target));
            prop_assert!(location.starts_with("/login"));
            prop_assert!(!location.contains("//"));
            prop_assert!(location.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
    }
}
