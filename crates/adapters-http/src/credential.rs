//! Reading the session credential from a request: `Authorization: Bearer`
//! or the session cookie, never both with different values.

use tessera_application::{CredentialFault, CredentialSource, PresentedCredential};

/// Whether `b` is a `token68` character (RFC 7235) other than `=`.
/// Branch-free, so that checking a whole token vectorizes.
fn is_token68_char(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// Whether `token` is a plausible compact JWS: `token68` characters, which
/// for a JWS are base64url and dots (`+`, `/`, `~` and trailing `=` are
/// allowed by RFC 6750 and passed on for the codec to refuse).
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().fold(true, |ok, b| ok & is_token68_char(b))
}

/// Whether a header value is text: visible ASCII, spaces and tabs.
fn is_text(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn bearer<'h>(
    mut values: impl Iterator<Item = &'h [u8]>,
    max: usize,
) -> Result<Option<&'h str>, CredentialFault> {
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(CredentialFault::SeveralAuthorizationHeaders);
    }
    let value = std::str::from_utf8(value)
        .ok()
        .filter(|value| is_text(value.as_bytes()))
        .ok_or(CredentialFault::AuthorizationNotText)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, ...): not our credential, and not an error
        // either (RFC 6750 §3.1: such a request "lacks" a bearer token).
        return Ok(None);
    }
    let token = rest.trim_matches(|c| c == ' ' || c == '\t');
    if token.len() > max {
        return Err(CredentialFault::TooLarge { in_cookie: false });
    }
    if !is_token68(token) {
        return Err(CredentialFault::MalformedBearer);
    }
    Ok(Some(token))
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => bytes.get(start..=end).unwrap_or_default(),
        _ => &[],
    }
}

/// The `name=value` pairs of a `Cookie` header (RFC 6265 §4.2.1), as
/// bytes, with optional whitespace tolerated; pairs without `=` are skipped.
/// Bytes, because other cookies of the site may hold anything: only the
/// session cookie's value must be text.
fn cookie_pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (name, value) = (pair.get(..eq)?, pair.get(eq + 1..)?);
        Some((trim_ows(name), trim_ows(value)))
    })
}

fn cookie<'h>(
    headers: impl Iterator<Item = &'h [u8]>,
    name: &str,
    max: usize,
) -> Result<Option<&'h str>, CredentialFault> {
    let mut found: Option<&'h str> = None;
    for header in headers {
        for (pair_name, raw) in cookie_pairs(header) {
            if pair_name != name.as_bytes() {
                continue;
            }
            // A DQUOTE-wrapped value (RFC 6265 cookie-value) is the same value.
            let value = raw
                .strip_prefix(b"\"")
                .and_then(|r| r.strip_suffix(b"\""))
                .unwrap_or(raw);
            if value.is_empty() {
                // `name=` is what a cleared cookie leaves: no credential.
                continue;
            }
            if value.len() > max {
                return Err(CredentialFault::TooLarge { in_cookie: true });
            }
            let value = std::str::from_utf8(value)
                .ok()
                .filter(|value| is_token68(value))
                .ok_or(CredentialFault::MalformedCookie)?;
            match found {
                Some(previous) if previous != value => {
                    return Err(CredentialFault::ConflictingCookies);
                }
                _ => found = Some(value),
            }
        }
    }
    Ok(found)
}

/// The request's credential, read from its `Authorization` header values
/// and its `Cookie` header values (each as the bytes sent): the bearer
/// token or the session cookie named `cookie_name`, or both if they carry
/// the same token; tokens over `max` bytes are refused unread.
///
/// Faults, in order: several `Authorization` headers or one that is not
/// text, a malformed bearer token, an unreadable or conflicting session
/// cookie, a token over `max` bytes, and two credentials that differ.
/// Another scheme than `Bearer` (Basic, …) is no credential, not a fault.
///
/// ```
/// use tessera_application::{CredentialSource, PresentedCredential};
/// use tessera_http::read_credential;
///
/// let cookies: [&[u8]; 1] = [b"theme=dark; __Host-session=a.b.c"];
/// let credential = read_credential([], cookies, "__Host-session", 8192);
/// assert_eq!(
///     credential,
///     PresentedCredential::Token { token: "a.b.c", via: CredentialSource::Cookie }
/// );
/// ```
pub fn read_credential<'h>(
    authorization: impl IntoIterator<Item = &'h [u8]>,
    cookies: impl IntoIterator<Item = &'h [u8]>,
    cookie_name: &str,
    max: usize,
) -> PresentedCredential<'h> {
    let found = bearer(authorization.into_iter(), max).and_then(|bearer| {
        let cookie = cookie(cookies.into_iter(), cookie_name, max)?;
        Ok(match (bearer, cookie) {
            (None, None) => None,
            (Some(token), None) => Some((token, CredentialSource::Bearer)),
            (None, Some(token)) => Some((token, CredentialSource::Cookie)),
            (Some(a), Some(b)) if a == b => Some((a, CredentialSource::Both)),
            (Some(_), Some(_)) => return Err(CredentialFault::ConflictingCredentials),
        })
    });
    match found {
        Ok(None) => PresentedCredential::None,
        Ok(Some((token, via))) => PresentedCredential::Token { token, via },
        Err(fault) => PresentedCredential::Unreadable(fault),
    }
}

#[cfg(test)]
mod tests {
    use http::header::{AUTHORIZATION, COOKIE};
    use http::{HeaderMap, HeaderValue};

    use super::*;

    /// [`read_credential`] over an `http` header map.
    fn from_headers<'h>(
        headers: &'h HeaderMap,
        cookie_name: &str,
        max: usize,
    ) -> PresentedCredential<'h> {
        read_credential(
            headers
                .get_all(AUTHORIZATION)
                .iter()
                .map(HeaderValue::as_bytes),
            headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes),
            cookie_name,
            max,
        )
    }

    type Source = CredentialSource;

    const NAME: &str = "__Host-session";

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    fn read(pairs: &[(&'static str, &[u8])]) -> Result<Option<(String, Source)>, CredentialFault> {
        let map = headers(pairs);
        match from_headers(&map, NAME, 64) {
            PresentedCredential::None => Ok(None),
            PresentedCredential::Token { token, via } => Ok(Some((token.to_owned(), via))),
            PresentedCredential::Unreadable(fault) => Err(fault),
        }
    }

    fn ok(token: &str, source: Source) -> Result<Option<(String, Source)>, CredentialFault> {
        Ok(Some((token.to_owned(), source)))
    }

    #[test]
    fn token68_characters_are_exactly_the_rfc_ones() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_token68_char(b), expected, "{b:#04x}");
        }
        assert!(is_token68("a.b_c-d~e+f/g=="));
        assert!(!is_token68("=="));
        assert!(!is_token68("a=b"));
    }

    #[test]
    fn no_credential_is_none() {
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&[("cookie", b"theme=dark; lang=en")]), Ok(None));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_tolerates_extra_spaces() {
        assert_eq!(
            read(&[("authorization", b"Bearer a.b.c")]),
            ok("a.b.c", Source::Bearer)
        );
        assert_eq!(
            read(&[("authorization", b"bEaReR   a.b.c ")]),
            ok("a.b.c", Source::Bearer)
        );
    }

    #[test]
    fn other_authorization_schemes_are_not_a_credential() {
        assert_eq!(read(&[("authorization", b"Basic YWxpY2U6cHc=")]), Ok(None));
        assert_eq!(read(&[("authorization", b"Bearerx a.b.c")]), Ok(None));
    }

    #[test]
    fn bearer_without_a_token68_is_a_malformed_request() {
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a,b",
            b"Bearer =abc",
            b"Bearer \"a\"",
        ] {
            assert_eq!(
                read(&[("authorization", bad)]),
                Err(CredentialFault::MalformedBearer),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn several_authorization_headers_are_a_malformed_request() {
        assert_eq!(
            read(&[
                ("authorization", b"Bearer a.b.c"),
                ("authorization", b"Bearer a.b.c")
            ]),
            Err(CredentialFault::SeveralAuthorizationHeaders)
        );
    }

    #[test]
    fn authorization_that_is_not_text_is_a_malformed_request() {
        assert_eq!(
            read(&[("authorization", b"Bearer a.b\xffc")]),
            Err(CredentialFault::AuthorizationNotText)
        );
    }

    #[test]
    fn oversized_tokens_are_refused_before_anything_else_reads_them() {
        let long = format!("Bearer {}", "a".repeat(65));
        assert_eq!(
            read(&[("authorization", long.as_bytes())]),
            Err(CredentialFault::TooLarge { in_cookie: false })
        );
        let long = format!("{NAME}={}", "a".repeat(65));
        assert_eq!(
            read(&[("cookie", long.as_bytes())]),
            Err(CredentialFault::TooLarge { in_cookie: true })
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_across_cookie_headers() {
        assert_eq!(
            read(&[("cookie", b"a=1; __Host-session=x.y.z; b=2")]),
            ok("x.y.z", Source::Cookie)
        );
        assert_eq!(
            read(&[("cookie", b"a=1"), ("cookie", b"__Host-session=\"x.y.z\"")]),
            ok("x.y.z", Source::Cookie)
        );
        // Cookie names are case-sensitive.
        assert_eq!(read(&[("cookie", b"__host-session=x.y.z")]), Ok(None));
    }

    #[test]
    fn a_cleared_cookie_is_no_credential() {
        assert_eq!(read(&[("cookie", b"__Host-session=")]), Ok(None));
    }

    #[test]
    fn unparseable_pairs_of_other_cookies_are_ignored() {
        assert_eq!(
            read(&[("cookie", b"=junk; ;;; __Host-session=x.y.z; novalue")]),
            ok("x.y.z", Source::Cookie)
        );
        assert_eq!(read(&[("cookie", "theme=d\u{e9}cor".as_bytes())]), Ok(None));
    }

    #[test]
    fn a_malformed_session_cookie_is_an_invalid_token() {
        let err = read(&[("cookie", b"__Host-session=not a token")]).unwrap_err();
        assert_eq!(err, CredentialFault::MalformedCookie);
        assert!(err.is_invalid_token() && err.blames_cookie());
    }

    #[test]
    fn a_session_cookie_that_is_not_text_is_an_invalid_token_but_other_cookies_may_be_anything() {
        assert_eq!(
            read(&[("cookie", b"__Host-session=\xff\xfe")]),
            Err(CredentialFault::MalformedCookie)
        );
        assert_eq!(
            read(&[("cookie", b"legacy=\xe9t\xe9; __Host-session=x.y.z")]),
            ok("x.y.z", Source::Cookie)
        );
    }

    #[test]
    fn the_session_cookie_twice_with_different_values_is_a_malformed_request() {
        assert_eq!(
            read(&[("cookie", b"__Host-session=a.b.c; __Host-session=d.e.f")]),
            Err(CredentialFault::ConflictingCookies)
        );
        assert_eq!(
            read(&[("cookie", b"__Host-session=a.b.c; __Host-session=a.b.c")]),
            ok("a.b.c", Source::Cookie)
        );
    }

    #[test]
    fn bearer_and_cookie_must_agree() {
        assert_eq!(
            read(&[
                ("authorization", b"Bearer a.b.c"),
                ("cookie", b"__Host-session=a.b.c")
            ]),
            ok("a.b.c", Source::Both)
        );
        let err = read(&[
            ("authorization", b"Bearer a.b.c"),
            ("cookie", b"__Host-session=d.e.f"),
        ])
        .unwrap_err();
        assert_eq!(err, CredentialFault::ConflictingCredentials);
        assert!(!err.is_invalid_token() && !err.blames_cookie());
    }
}
