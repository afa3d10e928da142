//! The wire form of a session token's claims, and the enrich mapper between
//! it and the application's typed claims.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use tessera_application::{ClaimsError, SessionTokenClaims};
use tessera_domain::{
    Acr, AuthMethod, Authentication, Capability, NewSession, Role, SessionEntity, SessionError,
    SessionId, TenantId, UserId,
};
use time::OffsetDateTime;

use crate::jose::serde_util::{Borrowed, ObjectOnly, borrowed_opt_str};

/// A session token's claims exactly as they travel: standard claims with
/// their standard meaning, the role as an opaque string.
///
/// | claim | meaning |
/// |---|---|
/// | `sub` | the user id, a UUID |
/// | `jti` | the session id, a UUID kept across rotations |
/// | `iss`, `aud` | issuer and audience (`aud` may be a string or an array) |
/// | `iat`, `exp`, `nbf` | issued at, expires at, not before (Unix seconds) |
/// | `auth_time` | when the user authenticated (OIDC meaning) |
/// | `role` | the role's wire name |
/// | `caps` | capabilities, omitted when empty |
/// | `tid` | tenant id, omitted when none |
/// | `acr` | how strongly the user authenticated (OIDC), omitted when unknown |
/// | `amr` | how the user authenticated (OIDC, RFC 8176), omitted when unknown |
///
/// Duplicate members are rejected; unknown members are ignored, as RFC 7519
/// asks.
///
/// Strings borrow from the payload they were parsed from (or from the
/// session they were built from) wherever they can: decoding a token
/// allocates only for what the typed claims keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionJwtClaims<'a> {
    /// Subject: the user id.
    #[serde(borrow)]
    pub sub: Cow<'a, str>,
    /// JWT id: the session id.
    #[serde(borrow)]
    pub jti: Cow<'a, str>,
    /// Issuer.
    #[serde(borrow)]
    pub iss: Cow<'a, str>,
    /// Audience.
    #[serde(borrow)]
    pub aud: Audience<'a>,
    /// Issued at, in Unix seconds.
    pub iat: i64,
    /// Expires at, in Unix seconds.
    pub exp: i64,
    /// Not before, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// When the user authenticated, in Unix seconds.
    pub auth_time: i64,
    /// The role's wire name, not yet known to be valid.
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    /// Capabilities.
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_strs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<Cow<'a, str>>,
    /// Tenant id.
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub tid: Option<Cow<'a, str>>,
    /// Authentication context class reference.
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub acr: Option<Cow<'a, str>>,
    /// Authentication methods references.
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_strs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub amr: Vec<Cow<'a, str>>,
}

/// The `aud` claim: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience<'a>(Vec<Cow<'a, str>>);

impl<'a> Audience<'a> {
    /// A single audience.
    #[must_use]
    pub fn one(audience: impl Into<Cow<'a, str>>) -> Self {
        Self(vec![audience.into()])
    }

    /// Whether `audience` is among them.
    #[must_use]
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }
}

impl Serialize for Audience<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => {
                let mut seq = serializer.serialize_seq(Some(many.len()))?;
                for a in many {
                    seq.serialize_element(a)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Audience<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;
        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Audience<'de>, E> {
                Ok(Audience::one(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience<'de>, E> {
                Ok(Audience::one(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience<'de>, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(8));
                while let Some(Borrowed(a)) = seq.next_element()? {
                    all.push(a);
                }
                if all.is_empty() {
                    return Err(de::Error::invalid_length(0, &self));
                }
                Ok(Audience(all))
            }
        }
        deserializer.deserialize_any(AudienceVisitor)
    }
}

fn borrowed_strs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Cow<'de, str>>, D::Error> {
    Vec::<Borrowed<'de>>::deserialize(deserializer)
        .map(|all| all.into_iter().map(|b| b.0).collect())
}

const CLAIM_NAMES: [&str; 13] = [
    "sub",
    "jti",
    "iss",
    "aud",
    "iat",
    "exp",
    "nbf",
    "auth_time",
    "role",
    "caps",
    "tid",
    "acr",
    "amr",
];

impl<'a> SessionJwtClaims<'a> {
    /// Parses the JSON payload of a token.
    ///
    /// # Errors
    ///
    /// [`ClaimsError::Missing`] naming a required claim that is absent;
    /// [`ClaimsError::Malformed`] naming the claim that is repeated or of the
    /// wrong JSON type (`payload` when the payload is not a JSON object).
    pub fn from_json(payload: &'a [u8]) -> Result<Self, ClaimsError> {
        // UTF-8 checked once for the whole payload (the fast ASCII path),
        // rather than string by string as `from_slice` would.
        let text = std::str::from_utf8(payload).map_err(|e| ClaimsError::Malformed {
            claim: "payload",
            source: Box::new(e),
        })?;
        // `ObjectOnly`: a derived struct would also accept a JSON array.
        serde_json::from_str::<ObjectOnly<Self>>(text)
            .map(|claims| claims.0)
            .map_err(|first| {
                // The error path only: parse again to learn which claim failed.
                let mut de = serde_json::Deserializer::from_str(text);
                let claim = match serde_path_to_error::deserialize::<_, ObjectOnly<Self>>(&mut de) {
                    Err(e) => claim_at(&e.path().to_string(), &first),
                    Ok(_) => "payload",
                };
                if claim != "payload" && first.to_string().starts_with("missing field") {
                    return ClaimsError::Missing(claim);
                }
                ClaimsError::Malformed {
                    claim,
                    source: Box::new(first),
                }
            })
    }

    /// The wire form of `claims`, issued by `issuer` for `audience`.
    #[must_use]
    pub fn from_claims<R: Role>(
        claims: &'a SessionTokenClaims<R>,
        issuer: &'a str,
        audience: &'a str,
    ) -> Self {
        let s = claims.session();
        Self {
            sub: Cow::Owned(s.user_id().to_string()),
            jti: Cow::Owned(s.session_id().to_string()),
            iss: Cow::Borrowed(issuer),
            aud: Audience::one(audience),
            iat: s.issued_at().unix_timestamp(),
            exp: s.expires_at().unix_timestamp(),
            nbf: claims.not_before().map(OffsetDateTime::unix_timestamp),
            auth_time: s.authenticated_at().unix_timestamp(),
            role: Cow::Borrowed(s.role().name()),
            caps: s
                .capabilities()
                .iter()
                .map(|c| Cow::Borrowed(c.as_str()))
                .collect(),
            tid: s.tenant().map(|t| Cow::Borrowed(t.as_str())),
            acr: s.authentication().acr().map(|a| Cow::Borrowed(a.as_str())),
            amr: s
                .authentication()
                .amr()
                .iter()
                .map(|m| Cow::Borrowed(m.as_str()))
                .collect(),
        }
    }

    /// The enrich mapper: turns the wire claims into typed claims.
    ///
    /// Never panics, never guesses: an unknown role is an error, never a
    /// default privilege. Issuer and audience are the codec's to check.
    ///
    /// # Errors
    ///
    /// [`ClaimsError`] naming the claim that failed and why.
    pub fn enrich<R: Role>(&self) -> Result<SessionTokenClaims<R>, ClaimsError> {
        let user_id = UserId::parse(&self.sub).map_err(|source| ClaimsError::InvalidId {
            claim: "sub",
            source,
        })?;
        let session_id = SessionId::parse(&self.jti).map_err(|source| ClaimsError::InvalidId {
            claim: "jti",
            source,
        })?;
        let role = R::parse(&self.role).map_err(ClaimsError::Role)?;
        let capabilities = self
            .caps
            .iter()
            .map(|c| Capability::parse(c))
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|source| ClaimsError::InvalidId {
                claim: "caps",
                source,
            })?;
        let tenant = self
            .tid
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .map_err(|source| ClaimsError::InvalidId {
                claim: "tid",
                source,
            })?;
        let acr = self
            .acr
            .as_deref()
            .map(Acr::parse)
            .transpose()
            .map_err(|source| ClaimsError::InvalidId {
                claim: "acr",
                source,
            })?;
        let authentication = self
            .amr
            .iter()
            .map(|m| AuthMethod::parse(m))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|amr| Authentication::new(acr, amr))
            .map_err(|source| ClaimsError::InvalidId {
                claim: "amr",
                source,
            })?;
        let not_before = self.nbf.map(|nbf| time_claim("nbf", nbf)).transpose()?;
        let session = SessionEntity::new(NewSession {
            user_id,
            session_id,
            role,
            capabilities,
            tenant,
            issued_at: time_claim("iat", self.iat)?,
            expires_at: time_claim("exp", self.exp)?,
            authenticated_at: time_claim("auth_time", self.auth_time)?,
            authentication,
        })
        .map_err(|source| ClaimsError::Inconsistent {
            claim: match source {
                SessionError::ExpiresBeforeIssued => "exp",
                SessionError::AuthenticatedAfterIssued => "auth_time",
                _ => "iat",
            },
            source,
        })?;
        Ok(SessionTokenClaims::new(session, not_before))
    }
}

fn time_claim(claim: &'static str, seconds: i64) -> Result<OffsetDateTime, ClaimsError> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| ClaimsError::OutOfRange(claim))
}

/// The claim a serde error is about: the path's first segment when it names
/// a claim, else the claim a "missing field"/"duplicate field" message
/// names, else the payload as a whole.
fn claim_at(path: &str, error: &serde_json::Error) -> &'static str {
    let head = path.split(['.', '[']).next().unwrap_or_default();
    let message = error.to_string();
    CLAIM_NAMES
        .iter()
        .find(|name| **name == head)
        .or_else(|| {
            CLAIM_NAMES
                .iter()
                .find(|name| message.contains(&format!("`{name}`")))
        })
        .copied()
        .unwrap_or("payload")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_domain::{IdError, RoleError, UserRole};

    fn wire() -> SessionJwtClaims<'static> {
        SessionJwtClaims {
            sub: "0190b5a4-7c2e-7d3a-9f00-000000000001".into(),
            jti: "0190b5a4-7c2e-7d3a-9f00-0000000000aa".into(),
            iss: "https://auth.example".into(),
            aud: Audience::one("app"),
            iat: 1_700_000_000,
            exp: 1_700_000_900,
            nbf: None,
            auth_time: 1_699_999_000,
            role: "moderator".into(),
            caps: vec!["posts:edit".into()],
            tid: Some("acme".into()),
            acr: Some("urn:example:mfa".into()),
            amr: vec!["pwd".into(), "otp".into()],
        }
    }

    #[test]
    fn enrich_then_back_gives_the_same_wire_claims() {
        let typed = wire().enrich::<UserRole>().unwrap();
        assert_eq!(typed.session().role(), &UserRole::Moderator);
        assert_eq!(
            SessionJwtClaims::from_claims(&typed, "https://auth.example", "app"),
            wire()
        );
    }

    #[test]
    fn unknown_role_is_an_error_naming_the_role_claim() {
        let mut w = wire();
        w.role = "root".into();
        let err = w.enrich::<UserRole>().unwrap_err();
        assert!(matches!(err, ClaimsError::Role(RoleError::Unknown(_))));
        assert_eq!(err.claim(), "role");
    }

    #[test]
    fn empty_role_is_an_error() {
        let mut w = wire();
        w.role = "".into();
        assert!(matches!(
            w.enrich::<UserRole>(),
            Err(ClaimsError::Role(RoleError::Empty))
        ));
    }

    #[test]
    fn non_uuid_subject_is_an_error_naming_sub() {
        let mut w = wire();
        w.sub = "alice".into();
        let err = w.enrich::<UserRole>().unwrap_err();
        assert!(matches!(
            err,
            ClaimsError::InvalidId {
                claim: "sub",
                source: IdError::NotUuid { .. }
            }
        ));
    }

    #[test]
    fn non_canonical_uuid_spellings_of_sub_and_jti_are_errors_naming_the_claim() {
        let spellings = |canonical: &str| {
            [
                canonical.to_uppercase(),
                canonical.replace('-', ""),
                format!("{{{canonical}}}"),
                format!("urn:uuid:{canonical}"),
            ]
        };
        for claim in ["sub", "jti"] {
            let canonical = match claim {
                "sub" => wire().sub,
                _ => wire().jti,
            };
            for spelling in spellings(&canonical) {
                let mut w = wire();
                match claim {
                    "sub" => w.sub = spelling.clone().into(),
                    _ => w.jti = spelling.clone().into(),
                }
                let err = w.enrich::<UserRole>().unwrap_err();
                assert!(
                    matches!(
                        err,
                        ClaimsError::InvalidId {
                            source: IdError::NotCanonical { .. },
                            ..
                        }
                    ),
                    "{spelling}: {err:?}"
                );
                assert_eq!(err.claim(), claim, "{spelling}");
            }
        }
    }

    #[test]
    fn expiry_not_after_issue_is_inconsistent_and_names_exp() {
        let mut w = wire();
        w.exp = w.iat;
        assert_eq!(w.enrich::<UserRole>().unwrap_err().claim(), "exp");
    }

    #[test]
    fn authentication_after_issue_names_auth_time() {
        let mut w = wire();
        w.auth_time = w.iat + 1;
        assert_eq!(w.enrich::<UserRole>().unwrap_err().claim(), "auth_time");
    }

    #[test]
    fn negative_and_huge_times_are_rejected() {
        let mut w = wire();
        w.iat = -5;
        w.auth_time = -5;
        assert_eq!(w.enrich::<UserRole>().unwrap_err().claim(), "iat");
        let mut w = wire();
        w.exp = i64::MAX;
        assert!(matches!(
            w.enrich::<UserRole>(),
            Err(ClaimsError::OutOfRange("exp"))
        ));
    }

    #[test]
    fn bad_capability_and_tenant_name_their_claims() {
        let mut w = wire();
        w.caps = vec!["has space".into()];
        assert_eq!(w.enrich::<UserRole>().unwrap_err().claim(), "caps");
        let mut w = wire();
        w.tid = Some("".into());
        assert_eq!(w.enrich::<UserRole>().unwrap_err().claim(), "tid");
    }

    #[test]
    fn acr_and_amr_are_typed_and_bad_ones_name_their_claim() {
        let typed = wire().enrich::<UserRole>().unwrap();
        let auth = typed.session().authentication();
        assert_eq!(auth.acr().map(|a| a.as_str()), Some("urn:example:mfa"));
        assert!(auth.used_method("pwd") && auth.used_method("otp"));

        let mut w = wire();
        w.acr = Some("two words".into());
        assert_eq!(w.enrich::<UserRole>().unwrap_err().claim(), "acr");
        let mut w = wire();
        w.acr = Some("".into());
        assert_eq!(w.enrich::<UserRole>().unwrap_err().claim(), "acr");
        let mut w = wire();
        w.amr = vec!["pwd".into(), "quo\"te".into()];
        assert_eq!(w.enrich::<UserRole>().unwrap_err().claim(), "amr");
        let mut w = wire();
        w.amr = vec!["otp".into(); tessera_domain::MAX_AUTH_METHODS + 1];
        assert!(matches!(
            w.enrich::<UserRole>(),
            Err(ClaimsError::InvalidId {
                claim: "amr",
                source: IdError::TooMany { .. }
            })
        ));

        // Wrong JSON types name the claim too.
        let json = serde_json::to_value(wire()).unwrap();
        for (claim, value) in [
            ("acr", serde_json::json!(2)),
            ("acr", serde_json::json!(["a"])),
            ("amr", serde_json::json!("pwd")),
            ("amr", serde_json::json!([1])),
        ] {
            let mut bad = json.clone();
            bad[claim] = value;
            let err = SessionJwtClaims::from_json(bad.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.claim(), claim, "{bad}");
        }

        // Unknown is absent: no claim on the wire, nothing in the session.
        let mut w = wire();
        w.acr = None;
        w.amr = Vec::new();
        let typed = w.enrich::<UserRole>().unwrap();
        assert_eq!(typed.session().authentication(), &Default::default());
        let text = serde_json::to_string(&SessionJwtClaims::from_claims(&typed, "i", "a")).unwrap();
        assert!(!text.contains("acr") && !text.contains("amr"), "{text}");
    }

    #[test]
    fn audience_is_a_string_or_a_non_empty_array() {
        let one: Audience<'_> = serde_json::from_str(r#""app""#).unwrap();
        assert!(one.contains("app"));
        let many: Audience<'_> = serde_json::from_str(r#"["web","app"]"#).unwrap();
        assert!(many.contains("app") && many.contains("web") && !many.contains("x"));
        assert!(many.0.iter().all(|a| matches!(a, Cow::Borrowed(_))));
        assert!(serde_json::from_str::<Audience<'_>>("[]").is_err());
        assert!(serde_json::from_str::<Audience<'_>>("5").is_err());
    }

    #[test]
    fn parse_errors_name_the_claim() {
        let json = serde_json::to_value(wire()).unwrap();
        let mut missing = json.clone();
        missing.as_object_mut().unwrap().remove("exp");
        let err = SessionJwtClaims::from_json(missing.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, ClaimsError::Missing("exp")));

        let mut wrong_type = json.clone();
        wrong_type["iat"] = serde_json::json!("yesterday");
        let err = SessionJwtClaims::from_json(wrong_type.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.claim(), "iat");

        let text = json.to_string();
        let duplicated = text.replacen('{', r#"{"role":"admin","#, 1);
        let err = SessionJwtClaims::from_json(duplicated.as_bytes()).unwrap_err();
        assert_eq!(err.claim(), "role");

        let err = SessionJwtClaims::from_json(b"[1,2]").unwrap_err();
        assert_eq!(err.claim(), "payload");

        // A derived struct would take an array of the eleven values in order.
        let as_array = serde_json::json!([
            "0190b5a4-7c2e-7d3a-9f00-000000000001",
            "0190b5a4-7c2e-7d3a-9f00-0000000000aa",
            "https://auth.example",
            "app",
            1_700_000_000,
            1_700_000_900,
            null,
            1_699_999_000,
            "moderator",
            [],
            null
        ]);
        let err = SessionJwtClaims::from_json(as_array.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.claim(), "payload");
    }

    #[test]
    fn decoding_borrows_plain_strings_and_copies_escaped_ones() {
        let text = serde_json::to_string(&wire())
            .unwrap()
            .replace("https://auth.example", "https:\\/\\/auth.example");
        let parsed = SessionJwtClaims::from_json(text.as_bytes()).unwrap();
        assert!(matches!(parsed.sub, Cow::Borrowed(_)));
        assert!(parsed.aud.0.iter().all(|a| matches!(a, Cow::Borrowed(_))));
        assert!(matches!(parsed.role, Cow::Borrowed(_)));
        assert!(parsed.caps.iter().all(|c| matches!(c, Cow::Borrowed(_))));
        assert!(matches!(parsed.tid, Some(Cow::Borrowed(_))));
        assert!(matches!(parsed.acr, Some(Cow::Borrowed(_))));
        assert!(parsed.amr.iter().all(|m| matches!(m, Cow::Borrowed(_))));
        assert!(
            matches!(parsed.iss, Cow::Owned(_)),
            "an escaped string is unescaped"
        );
        assert_eq!(parsed, wire());
    }

    #[test]
    fn unknown_claims_are_ignored() {
        let mut json = serde_json::to_value(wire()).unwrap();
        json["x-extra"] = serde_json::json!({"nested": true});
        let text = json.to_string();
        let parsed = SessionJwtClaims::from_json(text.as_bytes()).unwrap();
        assert_eq!(parsed, wire());
    }
}
