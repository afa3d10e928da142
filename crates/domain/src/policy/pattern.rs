//! Compiled path patterns and method sets of single rules.

use super::PolicyError;
use super::path::{CanonicalPath, is_unreserved};

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    /// Matches exactly this text, byte for byte.
    Literal(Box<str>),
    /// Matches any one segment and names it.
    Param(Box<str>),
}

/// A parsed path pattern: segments, then an optional trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    segments: Box<[Segment]>,
    prefix: bool,
}

impl Pattern {
    /// Parses the pattern of rule number `rule`.
    pub(super) fn parse(rule: usize, pattern: &str) -> Result<Self, PolicyError> {
        let owned = || pattern.to_owned();
        if pattern.is_empty() {
            return Err(PolicyError::EmptyPattern { rule });
        }
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(PolicyError::MissingLeadingSlash {
                rule,
                pattern: owned(),
            });
        };
        let mut segments = Vec::new();
        let mut prefix = false;
        if !rest.is_empty() {
            let mut parts = rest.split('/').peekable();
            while let Some(part) = parts.next() {
                if part.is_empty() {
                    return Err(PolicyError::EmptySegment {
                        rule,
                        pattern: owned(),
                    });
                }
                if part == "*" {
                    if parts.peek().is_some() {
                        return Err(PolicyError::WildcardNotLast {
                            rule,
                            pattern: owned(),
                        });
                    }
                    prefix = true;
                } else if let Some(name) = part.strip_prefix(':') {
                    if name.is_empty() {
                        return Err(PolicyError::EmptyParamName {
                            rule,
                            pattern: owned(),
                        });
                    }
                    if !is_param_name(name) {
                        return Err(PolicyError::InvalidParamName {
                            rule,
                            pattern: owned(),
                            name: name.to_owned(),
                        });
                    }
                    let duplicate = segments
                        .iter()
                        .any(|s| matches!(s, Segment::Param(n) if **n == *name));
                    if duplicate {
                        return Err(PolicyError::DuplicateParam {
                            rule,
                            pattern: owned(),
                            name: name.to_owned(),
                        });
                    }
                    segments.push(Segment::Param(name.into()));
                } else if is_literal(part) {
                    segments.push(Segment::Literal(part.into()));
                } else if part.contains('*') {
                    return Err(PolicyError::WildcardNotLast {
                        rule,
                        pattern: owned(),
                    });
                } else {
                    return Err(PolicyError::InvalidLiteral {
                        rule,
                        pattern: owned(),
                        segment: part.to_owned(),
                    });
                }
            }
        }
        Ok(Self {
            segments: segments.into(),
            prefix,
        })
    }

    /// The segments before any trailing `*`.
    pub(super) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the pattern ends in `*`.
    pub(super) fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// The position of the segment that binds parameter `name`.
    pub(super) fn param_position(&self, name: &str) -> Option<usize> {
        self.segments
            .iter()
            .position(|s| matches!(s, Segment::Param(n) if **n == *name))
    }

    /// Whether this pattern alone matches `path`: the reference semantics
    /// that the compiled table must reproduce.
    pub(super) fn matches(&self, path: CanonicalPath<'_>) -> bool {
        let mut actual = path.segments();
        for expected in self.segments.iter() {
            match (expected, actual.next()) {
                (_, None) => return false,
                (Segment::Literal(literal), Some(segment)) if **literal != *segment => {
                    return false;
                }
                _ => {}
            }
        }
        self.prefix || actual.next().is_none()
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_param_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Unreserved characters, sub-delimiters other than `*`, `:` and `@`; not a
/// dot segment. Such a literal can only be matched by a canonical path
/// segment that spells it byte for byte.
fn is_literal(segment: &str) -> bool {
    !matches!(segment, "." | "..")
        && !segment.starts_with(".;")
        && !segment.starts_with("..;")
        && segment.bytes().all(|b| {
            is_unreserved(b)
                || matches!(
                    b,
                    b'!' | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                )
        })
}

const GET: u16 = 1 << 0;
const HEAD: u16 = 1 << 1;
const POST: u16 = 1 << 2;
const PUT: u16 = 1 << 3;
const DELETE: u16 = 1 << 4;
const CONNECT: u16 = 1 << 5;
const OPTIONS: u16 = 1 << 6;
const TRACE: u16 = 1 << 7;
const PATCH: u16 = 1 << 8;

fn standard_bit(method: &str) -> u16 {
    match method {
        "GET" => GET,
        "HEAD" => HEAD,
        "POST" => POST,
        "PUT" => PUT,
        "DELETE" => DELETE,
        "CONNECT" => CONNECT,
        "OPTIONS" => OPTIONS,
        "TRACE" => TRACE,
        "PATCH" => PATCH,
        _ => 0,
    }
}

/// A request method, looked up once per request.
#[derive(Debug, Clone, Copy)]
pub(super) struct MethodKey<'m> {
    /// Rule bits this method matches: its own, plus `GET` for `HEAD`; zero
    /// for an extension method.
    mask: u16,
    name: &'m str,
}

impl<'m> MethodKey<'m> {
    pub(super) fn new(name: &'m str) -> Self {
        let bit = standard_bit(name);
        let mask = if bit == HEAD { HEAD | GET } else { bit };
        Self { mask, name }
    }
}

/// The methods a rule is restricted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MethodSet {
    standard: u16,
    extension: Box<[Box<str>]>,
}

impl MethodSet {
    /// Compiles the method list of rule number `rule`.
    pub(super) fn parse(
        rule: usize,
        pattern: &str,
        methods: &[Box<str>],
    ) -> Result<Self, PolicyError> {
        if methods.is_empty() {
            return Err(PolicyError::NoMethods {
                rule,
                pattern: pattern.to_owned(),
            });
        }
        let mut standard = 0;
        let mut extension = Vec::new();
        for method in methods {
            if !is_method_token(method) {
                return Err(PolicyError::InvalidMethod {
                    rule,
                    pattern: pattern.to_owned(),
                    method: method.to_string(),
                });
            }
            match standard_bit(method) {
                0 => extension.push(method.clone()),
                bit => standard |= bit,
            }
        }
        Ok(Self {
            standard,
            extension: extension.into(),
        })
    }

    pub(super) fn accepts(&self, key: MethodKey<'_>) -> bool {
        if key.mask == 0 {
            self.extension.iter().any(|m| **m == *key.name)
        } else {
            self.standard & key.mask != 0
        }
    }
}

/// An RFC 9110 token without lowercase letters: methods are case-sensitive
/// and a lowercase `get` would silently never match a browser's `GET`.
fn is_method_token(method: &str) -> bool {
    !method.is_empty()
        && method.bytes().all(|b| {
            b.is_ascii_uppercase()
                || b.is_ascii_digit()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}
