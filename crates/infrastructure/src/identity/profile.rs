//! Token profiles: the kinds of token one provider issues (an access token,
//! an ID token), each with its own `typ` rule, audience, authorized
//! parties, claim mapping, accepted subjects and required claims; and the
//! rules a token is held to once matched to one.

use tessera_application::external::{ExternalTokenError, SubjectKind, SubjectRefusal, TokenUse};
use tessera_domain::Role;

use super::claim_path::{ClaimPath, MappingConfigError};
use super::mapping::{ClaimMapping, ProfileSlots};
use super::payload::{Found, Leaf, PathTrie};

/// What a token profile requires of the `typ` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypRule {
    /// No check: for providers that label every token `JWT`, or nothing.
    Any,
    /// Exactly this type, such as `at+jwt` (RFC 9068 access tokens),
    /// compared as RFC 7515 §4.1.9 says: case-insensitively, with or
    /// without `application/`.
    Exactly(String),
    /// Absent or `JWT`: an OpenID Connect ID token.
    JwtOrAbsent,
}

impl TypRule {
    /// [`TypRule::Exactly`] this type.
    pub fn exactly(typ: impl Into<String>) -> Self {
        Self::Exactly(typ.into())
    }

    /// Whether a token whose header says `typ` fits.
    pub(crate) fn accepts(&self, typ: Option<&str>) -> bool {
        match (self, typ) {
            (Self::Any, _) | (Self::JwtOrAbsent, None) => true,
            (Self::JwtOrAbsent, Some(typ)) => same_type(typ, "JWT"),
            (Self::Exactly(expected), Some(typ)) => same_type(typ, expected),
            (Self::Exactly(_), None) => false,
        }
    }

    /// Whether some header fits both rules.
    fn overlaps(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) | (_, Self::Any) | (Self::JwtOrAbsent, Self::JwtOrAbsent) => true,
            (Self::Exactly(a), Self::Exactly(b)) => same_type(a, b),
            (Self::Exactly(a), Self::JwtOrAbsent) | (Self::JwtOrAbsent, Self::Exactly(a)) => {
                same_type(a, "JWT")
            }
        }
    }
}

/// Media types compare case-insensitively; `application/` may be omitted
/// (RFC 7515 §4.1.9). No allocation: this runs on every verification.
fn same_type(actual: &str, expected: &str) -> bool {
    fn strip(t: &str) -> &str {
        const PREFIX: &str = "application/";
        t.get(..PREFIX.len())
            .filter(|head| head.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| t.get(PREFIX.len()..))
            .unwrap_or(t)
    }
    strip(actual).eq_ignore_ascii_case(strip(expected))
}

/// Which subjects a token profile accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptedSubjects {
    /// People only (the default): a machine token is refused with
    /// [`SubjectRefusal::MachineToken`].
    #[default]
    Users,
    /// Machines only (client credentials): a user's token is refused with
    /// [`SubjectRefusal::UserToken`].
    Machines,
    /// Both.
    Both,
}

impl AcceptedSubjects {
    fn check(self, kind: SubjectKind) -> Result<(), SubjectRefusal> {
        match (self, kind) {
            (Self::Users, SubjectKind::Machine) => Err(SubjectRefusal::MachineToken),
            (Self::Machines, SubjectKind::User) => Err(SubjectRefusal::UserToken),
            _ => Ok(()),
        }
    }
}

/// A value a claim is compared with: a string (which a string claim must
/// equal, or an array of strings contain), a boolean or an integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimValue {
    /// A string: the claim equals it, or is an array of strings holding it.
    String(String),
    /// A boolean (`email_verified`, say).
    Bool(bool),
    /// An integer.
    Integer(i64),
}

impl ClaimValue {
    fn matches(&self, leaf: &Leaf<'_>) -> bool {
        match (self, leaf) {
            (Self::String(want), Leaf::Str(have)) => want == have,
            (Self::String(want), Leaf::Strings(all)) => all.iter().any(|have| want == have),
            (Self::Bool(want), Leaf::Bool(have)) => want == have,
            (Self::Integer(want), Leaf::Int(have)) => want == have,
            _ => false,
        }
    }
}

impl From<&str> for ClaimValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<String> for ClaimValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<bool> for ClaimValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for ClaimValue {
    fn from(value: i64) -> Self {
        Self::Integer(value)
    }
}

/// One kind of token a provider issues, and what a token of that kind must
/// satisfy: its `typ` rule, its audience, its authorized parties, its claim
/// mapping, the subjects it accepts and the claims it requires.
///
/// A provider has one profile or several (an access token for the API and
/// an ID token for the client, say), all verified with the provider's one
/// key set. A token is matched to exactly one by its `typ` header and its
/// `aud`: the profiles whose `typ` rule fits the header, and of those the
/// ones an audience of which the token names. None is a refusal
/// ([`ExternalTokenError::WrongType`] when no `typ` rule fits,
/// [`ExternalTokenError::WrongAudience`] otherwise), and so is more than
/// one ([`ExternalTokenError::AmbiguousProfile`]): never the first that
/// fits. Profiles that would both fit a token with one audience are
/// refused when the provider is built.
///
/// A token is a **machine token** when its `sub` equals its `client_id`
/// or its `azp` claim (RFC 9068's client credentials), or when a claim
/// named by [`TokenProfile::machine_when`] holds its value (Auth0's
/// `gty` = `client-credentials`). A profile takes users only unless told
/// otherwise ([`TokenProfile::subjects`]).
#[derive(Debug, Clone)]
pub struct TokenProfile<R> {
    token_use: TokenUse,
    mapping: ClaimMapping<R>,
    audiences: Vec<String>,
    skip_audience: bool,
    allowed_parties: Vec<String>,
    typ: TypRule,
    subjects: AcceptedSubjects,
    machine_claims: Vec<(String, ClaimValue)>,
    required: Vec<(String, Option<ClaimValue>)>,
}

impl<R: Role> TokenProfile<R> {
    fn new(token_use: TokenUse, typ: TypRule, mapping: ClaimMapping<R>) -> Self {
        Self {
            token_use,
            mapping,
            audiences: Vec::new(),
            skip_audience: false,
            allowed_parties: Vec::new(),
            typ,
            subjects: AcceptedSubjects::Users,
            machine_claims: Vec::new(),
            required: Vec::new(),
        }
    }

    /// Access tokens ([`TokenUse::Access`]) whose claims `mapping` reads:
    /// any `typ` until [`TokenProfile::typ`] says otherwise (many
    /// providers label access tokens `JWT`; RFC 9068 ones say `at+jwt`),
    /// users only.
    pub fn access(mapping: ClaimMapping<R>) -> Self {
        Self::new(TokenUse::Access, TypRule::Any, mapping)
    }

    /// OpenID Connect ID tokens ([`TokenUse::Id`]) whose claims `mapping`
    /// reads: `typ` absent or `JWT`, users only. Give it the client id as
    /// its audience.
    pub fn id_token(mapping: ClaimMapping<R>) -> Self {
        Self::new(TokenUse::Id, TypRule::JwtOrAbsent, mapping)
    }

    /// What this profile's tokens are for.
    #[must_use]
    pub fn token_use(&self) -> TokenUse {
        self.token_use
    }

    /// Accepts tokens whose `aud` includes `audience` (any of those added).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Does not check `aud`: for providers whose tokens carry none (Clerk
    /// session tokens, which are bound by `azp` instead). Prefer
    /// [`TokenProfile::allowed_party`] then.
    #[must_use]
    pub fn skip_audience_check(mut self) -> Self {
        self.skip_audience = true;
        self
    }

    /// Requires `azp` to be one of the parties added (origins or client ids).
    #[must_use]
    pub fn allowed_party(mut self, party: impl Into<String>) -> Self {
        self.allowed_parties.push(party.into());
        self
    }

    /// The `typ` header this profile's tokens carry.
    #[must_use]
    pub fn typ(mut self, rule: TypRule) -> Self {
        self.typ = rule;
        self
    }

    /// Which subjects this profile accepts (default
    /// [`AcceptedSubjects::Users`]).
    #[must_use]
    pub fn subjects(mut self, subjects: AcceptedSubjects) -> Self {
        self.subjects = subjects;
        self
    }

    /// Also counts a token as a machine's when the claim at `path` (a
    /// dotted path, checked when the provider is built) holds `value`.
    #[must_use]
    pub fn machine_when(mut self, path: impl Into<String>, value: impl Into<ClaimValue>) -> Self {
        self.machine_claims.push((path.into(), value.into()));
        self
    }

    /// Refuses a token without the claim at `path` (absent or `null`),
    /// with [`SubjectRefusal::RequiredClaim`].
    #[must_use]
    pub fn require_claim(mut self, path: impl Into<String>) -> Self {
        self.required.push((path.into(), None));
        self
    }

    /// Refuses a token whose claim at `path` does not hold `value` (see
    /// [`ClaimValue`]), with [`SubjectRefusal::RequiredClaim`].
    #[must_use]
    pub fn require_claim_value(
        mut self,
        path: impl Into<String>,
        value: impl Into<ClaimValue>,
    ) -> Self {
        self.required.push((path.into(), Some(value.into())));
        self
    }

    /// Neither an audience nor an explicit skip of the audience check.
    pub(crate) fn lacks_audience(&self) -> bool {
        self.audiences.is_empty() && !self.skip_audience
    }

    /// Whether a token naming one audience can fit both profiles.
    pub(crate) fn overlaps(&self, other: &Self) -> bool {
        self.typ.overlaps(&other.typ)
            && (self.skip_audience
                || other.skip_audience
                || self.audiences.iter().any(|a| other.audiences.contains(a)))
    }

    /// The profile ready to check tokens, its paths added to `trie`.
    pub(crate) fn compile(self, trie: &mut PathTrie) -> Result<Profile<R>, MappingConfigError> {
        let mut slot = |path: &str| trie.add(&ClaimPath::parse(path)?);
        let machine = self
            .machine_claims
            .into_iter()
            .map(|(path, value)| Ok((slot(&path)?, value)))
            .collect::<Result<_, MappingConfigError>>()?;
        let required = self
            .required
            .into_iter()
            .map(|(path, value)| {
                Ok(Required {
                    slot: slot(&path)?,
                    value,
                    path,
                })
            })
            .collect::<Result<_, MappingConfigError>>()?;
        Ok(Profile {
            mapping_slots: self.mapping.register(trie)?,
            token_use: self.token_use,
            mapping: self.mapping,
            audiences: if self.skip_audience {
                Vec::new()
            } else {
                self.audiences
            },
            allowed_parties: self.allowed_parties,
            typ: self.typ,
            subjects: self.subjects,
            machine,
            required,
        })
    }
}

/// A required claim, where the payload reader puts it.
#[derive(Debug)]
struct Required {
    slot: usize,
    value: Option<ClaimValue>,
    path: String,
}

/// A [`TokenProfile`] as a provider checks tokens with it.
#[derive(Debug)]
pub(crate) struct Profile<R> {
    pub(crate) token_use: TokenUse,
    mapping: ClaimMapping<R>,
    mapping_slots: ProfileSlots,
    /// Empty: no audience check.
    audiences: Vec<String>,
    allowed_parties: Vec<String>,
    typ: TypRule,
    subjects: AcceptedSubjects,
    machine: Vec<(usize, ClaimValue)>,
    required: Vec<Required>,
}

fn leaf<'a, 'p>(found: &'a Found<'p>, slot: usize) -> Option<&'a Leaf<'p>> {
    found.get(slot).and_then(Option::as_ref)
}

impl<R: Role> Profile<R> {
    /// Whether a token whose header says `typ` fits.
    pub(crate) fn fits_type(&self, typ: Option<&str>) -> bool {
        self.typ.accepts(typ)
    }

    /// Whether a token with this `aud` fits.
    pub(crate) fn fits_audience(&self, aud: Option<&Leaf<'_>>) -> bool {
        if self.audiences.is_empty() {
            return true;
        }
        let accepted = |a: &str| self.audiences.iter().any(|x| x == a);
        match aud {
            Some(Leaf::Str(a)) => accepted(a),
            Some(Leaf::Strings(all)) => all.iter().any(|a| accepted(a)),
            _ => false,
        }
    }

    /// `azp` against the allowed parties, when there are any.
    pub(crate) fn check_party(&self, azp: Option<&Leaf<'_>>) -> Result<(), ExternalTokenError> {
        if self.allowed_parties.is_empty() {
            return Ok(());
        }
        match azp {
            Some(Leaf::Str(party)) if self.allowed_parties.iter().any(|p| p == party) => Ok(()),
            _ => Err(ExternalTokenError::WrongAuthorizedParty),
        }
    }

    /// Whose token it is: a machine's when `sub` is the `client_id` or
    /// `azp`, or a configured claim says so; a user's otherwise.
    pub(crate) fn subject_kind(
        &self,
        sub: &str,
        client_ids: [Option<&Leaf<'_>>; 2],
        found: &Found<'_>,
    ) -> SubjectKind {
        let is_client = client_ids
            .iter()
            .any(|id| matches!(id, Some(Leaf::Str(id)) if id == sub));
        let flagged = || {
            self.machine
                .iter()
                .any(|(slot, value)| leaf(found, *slot).is_some_and(|l| value.matches(l)))
        };
        if is_client || flagged() {
            SubjectKind::Machine
        } else {
            SubjectKind::User
        }
    }

    /// The subject rules: the kind accepted, then every required claim.
    pub(crate) fn check_subject(
        &self,
        kind: SubjectKind,
        found: &Found<'_>,
    ) -> Result<(), SubjectRefusal> {
        self.subjects.check(kind)?;
        for required in &self.required {
            let held = match (leaf(found, required.slot), &required.value) {
                (None | Some(Leaf::Null), _) => false,
                (Some(_), None) => true,
                (Some(leaf), Some(value)) => value.matches(leaf),
            };
            if !held {
                return Err(SubjectRefusal::RequiredClaim {
                    path: required.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// The mapped role, email and name.
    pub(crate) fn read_profile(
        &self,
        found: &Found<'_>,
    ) -> Result<(R, Option<String>, Option<String>), ExternalTokenError> {
        Ok(self.mapping.read_profile(&self.mapping_slots, found)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_rules_fit_their_headers_only() {
        let at = TypRule::exactly("at+jwt");
        assert!(at.accepts(Some("at+jwt")) && at.accepts(Some("application/AT+JWT")));
        assert!(!at.accepts(Some("JWT")) && !at.accepts(None));
        let id = TypRule::JwtOrAbsent;
        assert!(id.accepts(None) && id.accepts(Some("jwt")) && id.accepts(Some("application/jwt")));
        assert!(!id.accepts(Some("at+jwt")));
        assert!(TypRule::Any.accepts(None) && TypRule::Any.accepts(Some("anything")));
    }

    #[test]
    fn typ_rules_overlap_when_some_header_fits_both() {
        let (at, id, any) = (
            TypRule::exactly("at+jwt"),
            TypRule::JwtOrAbsent,
            TypRule::Any,
        );
        assert!(!at.overlaps(&id) && !id.overlaps(&at));
        assert!(at.overlaps(&TypRule::exactly("application/at+JWT")));
        assert!(TypRule::exactly("JWT").overlaps(&id));
        assert!(any.overlaps(&at) && id.overlaps(&any) && id.overlaps(&id));
        assert!(!at.overlaps(&TypRule::exactly("logout+jwt")));
    }

    #[test]
    fn a_claim_value_matches_its_own_json_type_only() {
        let s = ClaimValue::from("admin");
        assert!(s.matches(&Leaf::Str("admin".into())));
        assert!(s.matches(&Leaf::Strings(vec!["x".into(), "admin".into()])));
        assert!(!s.matches(&Leaf::Str("Admin".into())));
        assert!(!s.matches(&Leaf::Bool(true)));
        assert!(ClaimValue::from(true).matches(&Leaf::Bool(true)));
        assert!(!ClaimValue::from(true).matches(&Leaf::Str("true".into())));
        assert!(ClaimValue::from(7_i64).matches(&Leaf::Int(7)));
        assert!(!ClaimValue::from(7_i64).matches(&Leaf::Float(7.0)));
    }

    #[test]
    fn accepted_subjects_refuse_the_other_kind_with_its_own_refusal() {
        use AcceptedSubjects::*;
        assert_eq!(
            Users.check(SubjectKind::Machine),
            Err(SubjectRefusal::MachineToken)
        );
        assert_eq!(
            Machines.check(SubjectKind::User),
            Err(SubjectRefusal::UserToken)
        );
        assert_eq!(Users.check(SubjectKind::User), Ok(()));
        assert_eq!(Machines.check(SubjectKind::Machine), Ok(()));
        assert_eq!(Both.check(SubjectKind::Machine), Ok(()));
        assert_eq!(Both.check(SubjectKind::User), Ok(()));
        assert_eq!(AcceptedSubjects::default(), Users);
    }
}
