//! Request paths in canonical form, and the check that refuses the others.

/// A request path the policy is willing to match: query and fragment cut
/// off, one trailing slash dropped, and every rule of the module docs
/// (no empty or dot segments, no suspicious escapes, printable ASCII only)
/// checked.
///
/// Holds the part after the leading `/`; the root path is the empty string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CanonicalPath<'a>(&'a str);

impl<'a> CanonicalPath<'a> {
    /// The root path `/`, which has no segments.
    pub(super) const ROOT: CanonicalPath<'static> = CanonicalPath("");

    /// Canonicalizes a raw request path, or `None` when it is not canonical.
    ///
    /// One pass over the bytes: cut at `?` or `#`, check each byte and
    /// escape, and check each segment when its `/` is reached.
    pub(super) fn parse(raw: &'a str) -> Option<Self> {
        let bytes = raw.as_bytes();
        if bytes.first() != Some(&b'/') {
            return None;
        }
        let mut i = 1;
        let mut segment_start = 1;
        let end = loop {
            match bytes.get(i) {
                None | Some(b'?' | b'#') => break i,
                Some(b'/') => {
                    if !is_canonical_segment(bytes.get(segment_start..i)?) {
                        return None;
                    }
                    i += 1;
                    segment_start = i;
                }
                Some(b'%') => {
                    let hi = bytes.get(i + 1).copied().and_then(hex_value)?;
                    let lo = bytes.get(i + 2).copied().and_then(hex_value)?;
                    let decoded = (hi << 4) | lo;
                    if is_unreserved(decoded) || matches!(decoded, b'/' | b'\\' | 0) {
                        return None;
                    }
                    i += 3;
                }
                Some(b'\\') => return None,
                Some(0x21..=0x7e) => i += 1,
                Some(_) => return None,
            }
        };
        let rest_end = if segment_start == end {
            // The root, or one trailing slash after a segment checked above.
            end.saturating_sub(1).max(1)
        } else if is_canonical_segment(bytes.get(segment_start..end)?) {
            end
        } else {
            return None;
        };
        raw.get(1..rest_end).map(Self)
    }

    /// The segments, left to right; none for the root.
    pub(super) fn segments(self) -> impl Iterator<Item = &'a str> {
        (!self.0.is_empty())
            .then(|| self.0.split('/'))
            .into_iter()
            .flatten()
    }

    /// The segments as one string (`a/b/c`), or `None` for the root.
    pub(super) fn rest(self) -> Option<&'a str> {
        (!self.0.is_empty()).then_some(self.0)
    }
}

/// Not empty, and not `.` or `..`, also with a `;` path parameter after
/// them (`..;x`), which some servers strip before resolving dot segments.
fn is_canonical_segment(segment: &[u8]) -> bool {
    let head = segment.split(|&b| b == b';').next().unwrap_or(segment);
    !segment.is_empty() && !matches!(head, b"." | b"..")
}

/// RFC 3986 unreserved characters: letters, digits, `-`, `.`, `_`, `~`.
pub(super) fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
