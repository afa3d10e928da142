//! Identifier newtypes. Once one of these exists, it is valid.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Why a string could not become an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The value is not a UUID in any spelling.
    #[error("{kind} is not a UUID")]
    NotUuid {
        /// Which identifier was being parsed.
        kind: &'static str,
    },
    /// The value is a UUID, but not spelt canonically: lower-case
    /// hexadecimal, hyphenated 8-4-4-4-12 (no braces, no `urn:uuid:`, no
    /// missing hyphens, no upper case).
    #[error("{kind} is a UUID not in canonical form (lower-case, hyphenated 8-4-4-4-12)")]
    NotCanonical {
        /// Which identifier was being parsed.
        kind: &'static str,
    },
    /// The nil UUID (all zeros) identifies nobody.
    #[error("{kind} is the nil UUID")]
    Nil {
        /// Which identifier was being parsed.
        kind: &'static str,
    },
    /// The value is empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which identifier was being parsed.
        kind: &'static str,
    },
    /// The value is longer than allowed.
    #[error("{kind} is longer than {max} bytes")]
    TooLong {
        /// Which identifier was being parsed.
        kind: &'static str,
        /// The maximum length in bytes.
        max: usize,
    },
    /// A list holds more values than allowed.
    #[error("{kind} lists more than {max} values")]
    TooMany {
        /// Which list was being parsed.
        kind: &'static str,
        /// The most values allowed.
        max: usize,
    },
    /// The value contains a character outside the allowed set.
    #[error("{kind} contains a character outside {allowed}")]
    InvalidCharacter {
        /// Which identifier was being parsed.
        kind: &'static str,
        /// The allowed set, in words.
        allowed: &'static str,
    },
}

/// The canonical spelling of a UUID: 36 bytes, lower-case hexadecimal
/// digits grouped 8-4-4-4-12 by hyphens, as [`Uuid::hyphenated`] writes it.
fn is_canonical(value: &str) -> bool {
    value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

fn parse_uuid(kind: &'static str, value: &str) -> Result<Uuid, IdError> {
    if !is_canonical(value) {
        return Err(match Uuid::try_parse(value) {
            Ok(_) => IdError::NotCanonical { kind },
            Err(_) => IdError::NotUuid { kind },
        });
    }
    let uuid = Uuid::try_parse(value).map_err(|_| IdError::NotUuid { kind })?;
    if uuid.is_nil() {
        return Err(IdError::Nil { kind });
    }
    Ok(uuid)
}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            ///
            /// # Errors
            ///
            /// [`IdError::Nil`] for the nil UUID.
            pub fn from_uuid(uuid: Uuid) -> Result<Self, IdError> {
                if uuid.is_nil() {
                    return Err(IdError::Nil { kind: $kind });
                }
                Ok(Self(uuid))
            }

            /// Parses a UUID in its canonical spelling only: lower-case,
            /// hyphenated 8-4-4-4-12, exactly as [`Display`](fmt::Display)
            /// writes it, so that every id has one spelling on the wire
            /// (in a token's `sub` and `jti`, in logs, in stores).
            ///
            /// Upper case is refused too. RFC 9562 (§4) reads UUIDs
            /// case-insensitively but has them written in lower case, and
            /// tessera writes only lower case: a token it minted never holds
            /// another spelling, so an upper-case one was made elsewhere,
            /// and accepting it would give one id two spellings, which is
            /// what a canonical form is for preventing. Parse foreign text
            /// with [`Uuid::try_parse`] and use
            /// [`from_uuid`](Self::from_uuid) where leniency is wanted.
            ///
            /// # Errors
            ///
            /// [`IdError::NotUuid`] when the string is not a UUID,
            /// [`IdError::NotCanonical`] for a UUID spelt otherwise
            /// (braces, `urn:uuid:`, no hyphens, upper case),
            /// [`IdError::Nil`] for the nil UUID.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                parse_uuid($kind, value).map(Self)
            }

            /// The UUID inside.
            #[must_use]
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }
    };
}

uuid_id!(
    /// The user a session belongs to (the JWT `sub`): a non-nil UUID.
    UserId,
    "user id"
);
uuid_id!(
    /// One session, kept across rotations (the JWT `jti`): a non-nil UUID.
    SessionId,
    "session id"
);

/// The namespace of [`SessionId::derived`] ids (a random UUID, fixed).
const DERIVED_SESSION_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a57_84e0_4b9d_9a53_0c3e_71d2_b8f4);

impl SessionId {
    /// A session id derived from `parts` (a version-5 UUID of their
    /// length-prefixed concatenation): the same parts always give the same
    /// id, different parts different ids. For sessions tessera did not
    /// issue, such as one built for an identity provider's token, so that
    /// every request with one token has one session id.
    ///
    /// The id is a label for logs and handlers, not a secret and not a
    /// credential.
    #[must_use]
    pub fn derived(parts: &[&[u8]]) -> Self {
        let mut name = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
        for part in parts {
            name.extend_from_slice(&(part.len() as u64).to_be_bytes());
            name.extend_from_slice(part);
        }
        // A version-5 UUID has its version bits set, so it is never nil.
        Self(Uuid::new_v5(&DERIVED_SESSION_NAMESPACE, &name))
    }
}

fn parse_name(
    kind: &'static str,
    value: &str,
    max: usize,
    allowed: &'static str,
    ok: fn(u8) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if !value.bytes().all(ok) {
        return Err(IdError::InvalidCharacter { kind, allowed });
    }
    Ok(())
}

macro_rules! name_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:literal, $allowed:literal, $ok:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Box<str>);

        impl $name {
            /// The longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Parses and validates a value.
            ///
            /// # Errors
            ///
            /// [`IdError::Empty`], [`IdError::TooLong`] or
            /// [`IdError::InvalidCharacter`] when the value breaks the rules.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                parse_name($kind, value, $max, $allowed, $ok)?;
                Ok(Self(value.into()))
            }

            /// The value as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), &*self.0)
            }
        }
    };
}

name_id!(
    /// A tenant (organisation, workspace) a session is scoped to: 1 to 64 bytes
    /// of ASCII letters, digits, `-`, `_` and `.`.
    TenantId,
    "tenant id",
    64,
    "ASCII letters, digits, '-', '_' and '.'",
    |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
);
name_id!(
    /// A fine-grained permission such as `billing:write`: 1 to 64 bytes of
    /// ASCII letters, digits, `-`, `_`, `.`, `:` and `/`.
    Capability,
    "capability",
    64,
    "ASCII letters, digits, '-', '_', '.', ':' and '/'",
    |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/')
);

/// The bytes an authentication value may hold: printable ASCII except
/// `"` and `\`, so that it travels unescaped in a JSON string and in an
/// HTTP quoted-string, and without spaces, which separate `acr_values`.
fn is_auth_value_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b'\\'
}

name_id!(
    /// An authentication context class reference (OpenID Connect `acr`,
    /// RFC 9470 `acr_values`), such as `urn:mace:incommon:iap:silver` or
    /// `phrh`: 1 to 255 bytes of printable ASCII other than `"` and `\`
    /// (no spaces).
    Acr,
    "acr",
    255,
    "printable ASCII other than space, '\"' and '\\'",
    is_auth_value_byte
);
name_id!(
    /// An authentication method reference (one value of OpenID Connect
    /// `amr`, RFC 8176), such as `pwd`, `otp` or `hwk`: 1 to 64 bytes of
    /// printable ASCII other than `"` and `\` (no spaces).
    AuthMethod,
    "amr",
    64,
    "printable ASCII other than space, '\"' and '\\'",
    is_auth_value_byte
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_session_ids_are_stable_and_tell_their_parts_apart() {
        let one = SessionId::derived(&[b"https://idp", b"user_1", b"100"]);
        assert_eq!(
            one,
            SessionId::derived(&[b"https://idp", b"user_1", b"100"])
        );
        assert_eq!(one.as_uuid().get_version_num(), 5);
        // Moving a byte from one part to the next is another name.
        assert_ne!(
            one,
            SessionId::derived(&[b"https://idp", b"user_", b"1100"])
        );
        assert_ne!(
            one,
            SessionId::derived(&[b"https://idp", b"user_1", b"101"])
        );
    }

    #[test]
    fn user_id_accepts_a_canonical_uuid_and_prints_it_as_parsed() {
        let text = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
        assert_eq!(UserId::parse(text).unwrap().to_string(), text);
    }

    #[test]
    fn other_spellings_of_a_uuid_are_named_not_canonical() {
        for spelling in [
            "6F9619FF-8B86-D011-B42D-00C04FC964FF",
            "6f9619ff-8b86-d011-b42d-00C04fc964ff",
            "6f9619ff8b86d011b42d00c04fc964ff",
            "{6f9619ff-8b86-d011-b42d-00c04fc964ff}",
            "urn:uuid:6f9619ff-8b86-d011-b42d-00c04fc964ff",
        ] {
            assert_eq!(
                UserId::parse(spelling),
                Err(IdError::NotCanonical { kind: "user id" }),
                "{spelling}"
            );
            assert_eq!(
                SessionId::parse(spelling),
                Err(IdError::NotCanonical { kind: "session id" }),
                "{spelling}"
            );
        }
        for not_uuid in [
            "6f9619ff-8b86-d011-b42d-00c04fc964f",
            "6f9619ff-8b86-d011-b42d-00c04fc964fg",
            " 6f9619ff-8b86-d011-b42d-00c04fc964ff",
            "6f9619ff_8b86_d011_b42d_00c04fc964ff",
            "",
        ] {
            assert_eq!(
                UserId::parse(not_uuid),
                Err(IdError::NotUuid { kind: "user id" }),
                "{not_uuid:?}"
            );
        }
    }

    proptest::proptest! {
        /// The oracle: a string is canonical exactly when it is what the
        /// `uuid` crate writes for the UUID it parses to.
        #[test]
        fn parse_succeeds_iff_the_text_is_the_canonical_spelling_of_a_non_nil_uuid(
            text in proptest::prop_oneof![
                "[0-9a-fA-F-]{36}",
                "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                "[0-9a-f]{32}",
                "\\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\}",
                "urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "\\PC{0,40}",
            ]
        ) {
            let canonical = Uuid::try_parse(&text)
                .ok()
                .filter(|uuid| !uuid.is_nil() && uuid.hyphenated().to_string() == text);
            let parsed = UserId::parse(&text);
            proptest::prop_assert_eq!(parsed.is_ok(), canonical.is_some());
            if let (Ok(id), Some(uuid)) = (parsed, canonical) {
                proptest::prop_assert_eq!(id.as_uuid(), &uuid);
                proptest::prop_assert_eq!(id.to_string(), text);
            }
        }
    }

    #[test]
    fn user_id_rejects_a_non_uuid_and_the_nil_uuid() {
        assert_eq!(
            UserId::parse("alice"),
            Err(IdError::NotUuid { kind: "user id" })
        );
        assert_eq!(
            UserId::parse("00000000-0000-0000-0000-000000000000"),
            Err(IdError::Nil { kind: "user id" })
        );
    }

    #[test]
    fn tenant_id_enforces_length_and_alphabet() {
        assert!(TenantId::parse("acme-eu.1").is_ok());
        assert_eq!(
            TenantId::parse(""),
            Err(IdError::Empty { kind: "tenant id" })
        );
        assert!(matches!(
            TenantId::parse(&"a".repeat(65)),
            Err(IdError::TooLong { max: 64, .. })
        ));
        assert!(matches!(
            TenantId::parse("acme corp"),
            Err(IdError::InvalidCharacter { .. })
        ));
    }

    #[test]
    fn capability_allows_scoped_names_and_rejects_whitespace() {
        assert_eq!(
            Capability::parse("billing:write").unwrap().as_str(),
            "billing:write"
        );
        assert!(Capability::parse("billing write").is_err());
        assert!(Capability::parse("bill\u{e9}").is_err());
    }
}
