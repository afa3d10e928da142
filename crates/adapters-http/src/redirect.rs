//! Redirect targets that can only stay on this site.

use http::HeaderValue;

/// The longest return-to target kept, in bytes; longer ones are dropped.
pub const MAX_RETURN_TO_BYTES: usize = 2048;

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
/// Use it in the login handler before redirecting to a `return_to`
/// parameter: that redirect is where an open redirect would happen.
///
/// ```
/// use tessera_http::safe_return_to;
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

/// The `Location` of a redirect to the login page, with `target` as the
/// return-to parameter when it is safe.
pub(crate) fn login_location(login_path: &str, param: &str, target: Option<&str>) -> HeaderValue {
    let Some(target) = target.and_then(safe_return_to) else {
        return location(login_path);
    };
    let separator = if login_path.contains('?') { '&' } else { '?' };
    let encoded: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    location(&format!("{login_path}{separator}{param}={encoded}"))
}

/// Where to send a signed-in user away from a guest-only page: the
/// request's own return-to parameter when it is safe, else `fallback`.
pub(crate) fn return_to_from_query(query: Option<&str>, param: &str) -> Option<String> {
    let query = query?;
    let (_, value) = form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == param)?;
    safe_return_to(&value).map(str::to_owned)
}

/// A `Location` value for a path the configuration or [`safe_return_to`]
/// already vouched for (printable ASCII), falling back to `/`.
pub(crate) fn location(path: &str) -> HeaderValue {
    HeaderValue::from_str(path).unwrap_or(HeaderValue::from_static("/"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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
    fn login_location_encodes_a_safe_target_and_drops_an_unsafe_one() {
        assert_eq!(
            login_location("/login", "return_to", Some("/admin?tab=1&x=2")),
            "/login?return_to=%2Fadmin%3Ftab%3D1%26x%3D2"
        );
        assert_eq!(
            login_location("/login", "return_to", Some("//evil")),
            "/login"
        );
        assert_eq!(login_location("/login", "return_to", None), "/login");
        assert_eq!(
            login_location("/auth?flow=web", "next", Some("/a")),
            "/auth?flow=web&next=%2Fa"
        );
    }

    #[test]
    fn return_to_is_read_from_the_query_only_when_safe() {
        assert_eq!(
            return_to_from_query(Some("a=1&return_to=%2Fapp%3Fx%3D1"), "return_to").as_deref(),
            Some("/app?x=1")
        );
        assert_eq!(
            return_to_from_query(Some("return_to=%2F%2Fevil"), "return_to"),
            None
        );
        assert_eq!(
            return_to_from_query(Some("return_to=https%3A%2F%2Fevil"), "return_to"),
            None
        );
        assert_eq!(
            return_to_from_query(Some("other=%2Fapp"), "return_to"),
            None
        );
        assert_eq!(return_to_from_query(None, "return_to"), None);
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
                    prop_assert!(HeaderValue::from_str(kept).is_ok());
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
        fn login_location_is_always_a_valid_relative_header(target in "\\PC{0,60}") {
            let value = login_location("/login", "return_to", Some(&target));
            let text = value.to_str().unwrap();
            prop_assert!(text.starts_with("/login"));
            prop_assert!(!text.contains("//"));
        }
    }
}
