//! The route-access policy: which requests a session may make.
//!
//! A [`RoutePolicy`] is an ordered list of [`RouteRule`]s, compiled once by
//! [`RoutePolicyBuilder::build`]. For a request, the **first rule in
//! declaration order** whose pattern and methods match gives the
//! [`Requirement`]; a request no rule matches gets the default requirement,
//! which is [`Requirement::Deny`] unless the builder says otherwise.
//! [`RouteMatch::decide`] then turns the requirement and the optional session
//! into an [`AccessDecision`]; [`RouteMatch::decide_at`] also holds the
//! session to the rule's [step-up](#step-up) requirements.
//!
//! # Patterns
//!
//! A pattern is `/` followed by `/`-separated segments:
//!
//! - a **literal** (`admin`, `users:search`, `.well-known`) matches exactly
//!   that text, byte for byte and case-sensitively, against the raw
//!   (still percent-encoded) path, as axum's router compares it. Literals
//!   may use letters, digits, `-` `.` `_` `~`, `!` `$` `&` `'` `(` `)` `+`
//!   `,` `;` `=`, `:` (not first) and `@`; they may not be `.` or `..`;
//! - a **parameter** `:name` (`name` is `[A-Za-z_][A-Za-z0-9_]*`, unique in
//!   the pattern) matches any one non-empty segment and binds it, raw, for
//!   [`RouteMatch::param`] and [`Requirement::TenantParam`];
//! - a final **`*`** makes the pattern a prefix: `/admin/*` matches `/admin`
//!   itself and every path below it (`/admin/users`, `/admin/a/b`) but not
//!   `/administrator`; `/*` matches every path, the root included. `*` binds
//!   nothing and may only be a whole, last segment.
//!
//! `/` alone is the root. Patterns have no trailing slash and no empty
//! segments: the builder refuses them with a [`PolicyError`].
//!
//! # Methods
//!
//! A rule without [`RouteRule::methods`] matches every method. Methods are
//! compared case-sensitively, as HTTP does; the builder only accepts tokens
//! without lowercase letters, so a typo such as `get` is an error instead of
//! a rule that never matches. **`HEAD` matches rules that list `GET`**, as
//! routers answer `HEAD` with the `GET` handler; a rule listing only `HEAD`
//! does not match `GET`.
//!
//! # Paths, and the ones that match nothing
//!
//! The policy must never see a path as less protected than a router would,
//! so it matches only paths in canonical form, after these steps:
//!
//! - the query string and fragment are cut at the first `?` or `#`;
//! - **one trailing slash is ignored**: `/admin/` matches exactly what
//!   `/admin` matches, whether or not the router treats them alike.
//!
//! A path is **not canonical** when it does not start with `/`, or has an
//! empty segment (`//admin`, `/admin//users`, `/admin//`), a dot segment
//! (`.`, `..`, also as `..;x`), a backslash, a byte that is not printable
//! ASCII (control characters, space, anything non-ASCII: percent-encode it),
//! a malformed `%` escape, or an escape that decodes to `/`, `\`, NUL or an
//! unreserved character (`%2F`, `%5C`, `%00`, `%2e`, `%61`, in either case).
//! A non-canonical path matches no rule and is **always
//! [`AccessDecision::Forbidden`]**, whatever the default requirement: see
//! [`MatchKind::NonCanonical`]. Other escapes (`%20`, `%3A`, `%25`, `%C3%A9`)
//! are canonical and compared as written.
//!
//! # Step-up
//!
//! A rule may also ask how the user authenticated (RFC 9470), on top of
//! its requirement: [`RouteRule::max_age`] (authenticated at most that
//! long ago, against the session's `auth_time`) and [`RouteRule::acr`]
//! (at one of these authentication levels, the session's `acr`). A session
//! that meets the requirement but not these gets
//! [`AccessDecision::StepUp`], and [`RouteMatch::step_up`] says what a new
//! authentication must meet. Only rules whose requirement needs a session
//! may ask: the builder refuses step-up on public, guest-only and denied
//! routes.
//!
//! # Speed
//!
//! `build` compiles the rules into a segment trie whose nodes know the
//! smallest rule index below them, so a lookup follows the path's segments
//! instead of scanning every rule, yet returns exactly the rule a linear
//! first-match scan would. A lookup does not allocate.

mod path;
mod pattern;
mod step_up;
mod table;
#[cfg(test)]
mod tests;

use std::fmt;

use time::{Duration, OffsetDateTime};

pub use self::step_up::{StepUp, StepUpChallenge, StepUpReason};
use crate::ids::{Acr, Capability, IdError};
use crate::role::Role;
use crate::session::SessionEntity;

use self::path::CanonicalPath;
use self::pattern::{MethodKey, MethodSet, Pattern, Segment};
use self::table::Table;

/// What a route asks of the request's session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement<R> {
    /// Anyone, with or without a session.
    Public,
    /// Only visitors without a session, such as a login page; a signed-in
    /// user gets [`AccessDecision::RedirectAuthenticated`].
    GuestOnly,
    /// Any session.
    Authenticated,
    /// A session whose role is one of these. Must not be empty.
    AnyRole(Vec<R>),
    /// A session whose role is this one or ranks above it.
    AtLeastRole(R),
    /// A session holding this capability.
    Capability(Capability),
    /// A session scoped to the tenant named by this path parameter of the
    /// rule's pattern: `TenantParam("tenant".into())` with
    /// `/tenants/:tenant/*`. The session's tenant must equal the raw segment.
    TenantParam(String),
    /// Every one of these requirements, such as a tenant match and a
    /// capability. Must not be empty. The decision is the first member's
    /// that does not allow, in order.
    All(Vec<Requirement<R>>),
    /// Nobody, signed in or not: always [`AccessDecision::Forbidden`].
    Deny,
    /// Nothing here, for anyone: always [`AccessDecision::NotFound`]. As a
    /// policy's [default requirement](RoutePolicyBuilder::default_requirement),
    /// paths no rule matches answer 404 instead of 403 (a browser's
    /// `/favicon.ico`, say); paths that are not canonical stay forbidden.
    NotFound,
}

impl<R> Requirement<R> {
    /// Whether only a verified session can satisfy this requirement, so a
    /// missing one means [`AccessDecision::Unauthenticated`].
    ///
    /// `false` for [`Public`](Self::Public) and
    /// [`GuestOnly`](Self::GuestOnly), which only read a session if there is
    /// one, and for [`Deny`](Self::Deny), which no session changes; for
    /// [`All`](Self::All), whether any member needs one.
    #[must_use]
    pub fn needs_session(&self) -> bool {
        match self {
            Self::Public | Self::GuestOnly | Self::Deny | Self::NotFound => false,
            Self::Authenticated
            | Self::AnyRole(_)
            | Self::AtLeastRole(_)
            | Self::Capability(_)
            | Self::TenantParam(_) => true,
            Self::All(members) => members.iter().any(Self::needs_session),
        }
    }
}

/// The answer of the policy for one request.
///
/// Deliberately exhaustive: the HTTP edge maps each decision to a response
/// with one `match`, which a new decision must break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessDecision {
    /// Let the request through.
    Allow,
    /// The route needs a session and the request has none: 401, or a
    /// redirect to the login page for a [browser](RouteRule::browser) route.
    Unauthenticated,
    /// The session is not enough, or the route is denied to everyone: 403.
    Forbidden,
    /// A guest-only page (a login form) and the user is signed in: send
    /// them on.
    RedirectAuthenticated,
    /// Nothing is served here: 404.
    NotFound,
    /// The session meets the route's requirement, but the user
    /// authenticated too long ago or not at an accepted level
    /// ([`RouteRule::max_age`], [`RouteRule::acr`]): 401
    /// `insufficient_user_authentication` (RFC 9470), or to the login page
    /// for a [browser](RouteRule::browser) route, to authenticate again.
    StepUp,
}

impl AccessDecision {
    /// Whether the request may go through.
    #[must_use]
    pub fn is_allowed(self) -> bool {
        self == Self::Allow
    }
}

/// Why a [`RoutePolicy`] could not be built. `rule` is the index of the
/// offending rule in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The pattern is the empty string.
    #[error("rule {rule}: the pattern is empty")]
    EmptyPattern {
        /// The rule's index.
        rule: usize,
    },
    /// The pattern does not start with `/`.
    #[error("rule {rule}: pattern {pattern:?} does not start with '/'")]
    MissingLeadingSlash {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
    },
    /// The pattern has an empty segment (`//`) or a trailing slash.
    #[error("rule {rule}: pattern {pattern:?} has an empty segment or a trailing slash")]
    EmptySegment {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
    },
    /// A `*` is not the whole last segment.
    #[error("rule {rule}: pattern {pattern:?} has a '*' that is not the whole last segment")]
    WildcardNotLast {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
    },
    /// A literal segment is a dot segment or uses a character patterns do
    /// not allow (see the [module docs](self)).
    #[error("rule {rule}: pattern {pattern:?} has an invalid literal segment {segment:?}")]
    InvalidLiteral {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
        /// The segment.
        segment: String,
    },
    /// A `:` segment has no name.
    #[error("rule {rule}: pattern {pattern:?} has a parameter without a name")]
    EmptyParamName {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
    },
    /// A parameter name is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("rule {rule}: pattern {pattern:?} has an invalid parameter name {name:?}")]
    InvalidParamName {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
        /// The name.
        name: String,
    },
    /// Two parameters of one pattern share a name.
    #[error("rule {rule}: pattern {pattern:?} names parameter {name:?} twice")]
    DuplicateParam {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
        /// The name.
        name: String,
    },
    /// A [`Requirement::TenantParam`] names a parameter its pattern lacks;
    /// `rule` is `None` for the default requirement, which has no pattern.
    #[error("{}: tenant parameter {name:?} is not a parameter of the pattern", at(*rule))]
    UnknownTenantParam {
        /// The rule's index, `None` for the default requirement.
        rule: Option<usize>,
        /// The name.
        name: String,
    },
    /// A [`Requirement::AnyRole`] lists no role.
    #[error("{}: AnyRole lists no role", at(*rule))]
    EmptyRoleList {
        /// The rule's index, `None` for the default requirement.
        rule: Option<usize>,
    },
    /// A [`Requirement::All`] lists no requirement.
    #[error("{}: All lists no requirement", at(*rule))]
    EmptyAll {
        /// The rule's index, `None` for the default requirement.
        rule: Option<usize>,
    },
    /// [`RouteRule::methods`] was given an empty list.
    #[error("rule {rule}: pattern {pattern:?} has an empty method list")]
    NoMethods {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
    },
    /// [`RouteRule::max_age`] is negative.
    #[error("rule {rule}: max_age is negative")]
    NegativeMaxAge {
        /// The rule's index.
        rule: usize,
    },
    /// [`RouteRule::acr`] was given an empty list.
    #[error("rule {rule}: the acr list is empty")]
    EmptyAcrList {
        /// The rule's index.
        rule: usize,
    },
    /// A value of [`RouteRule::acr`] is not a valid [`Acr`].
    #[error("rule {rule}: acr value {value:?} is invalid")]
    InvalidAcr {
        /// The rule's index.
        rule: usize,
        /// The value.
        value: String,
        /// Why.
        #[source]
        source: IdError,
    },
    /// A rule asks for step-up ([`RouteRule::max_age`], [`RouteRule::acr`])
    /// but its requirement needs no session, so there is no authentication
    /// to hold to it.
    #[error("rule {rule}: step-up on a route that needs no session")]
    StepUpWithoutSession {
        /// The rule's index.
        rule: usize,
    },
    /// A method is not an HTTP token in uppercase.
    #[error("rule {rule}: pattern {pattern:?} has an invalid method {method:?}")]
    InvalidMethod {
        /// The rule's index.
        rule: usize,
        /// The pattern.
        pattern: String,
        /// The method.
        method: String,
    },
}

fn at(rule: Option<usize>) -> String {
    rule.map_or_else(|| "default requirement".to_owned(), |i| format!("rule {i}"))
}

/// One rule: a path pattern, optional methods, a requirement and whether
/// the route is a page for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule<R> {
    pattern: String,
    methods: Option<Vec<Box<str>>>,
    requirement: Requirement<R>,
    browser: bool,
    cross_origin: bool,
    max_age: Option<Duration>,
    acr: Option<Vec<Box<str>>>,
}

impl<R> RouteRule<R> {
    /// A rule for every method. The pattern is checked by
    /// [`RoutePolicyBuilder::build`]; see the [module docs](self) for its
    /// syntax. Each requirement but [`Requirement::All`] has its own
    /// constructor too: `RouteRule::at_least_role("/admin/*", UserRole::Admin)`.
    #[must_use]
    pub fn new(pattern: &str, requirement: Requirement<R>) -> Self {
        Self {
            pattern: pattern.to_owned(),
            methods: None,
            requirement,
            browser: false,
            cross_origin: false,
            max_age: None,
            acr: None,
        }
    }

    /// Anyone may call `pattern`: [`Requirement::Public`].
    #[must_use]
    pub fn public(pattern: &str) -> Self {
        Self::new(pattern, Requirement::Public)
    }

    /// Only visitors without a session (a sign-in page):
    /// [`Requirement::GuestOnly`].
    #[must_use]
    pub fn guest_only(pattern: &str) -> Self {
        Self::new(pattern, Requirement::GuestOnly)
    }

    /// Any session: [`Requirement::Authenticated`].
    #[must_use]
    pub fn authenticated(pattern: &str) -> Self {
        Self::new(pattern, Requirement::Authenticated)
    }

    /// A session whose role is one of `roles`: [`Requirement::AnyRole`].
    #[must_use]
    pub fn any_role(pattern: &str, roles: impl IntoIterator<Item = R>) -> Self {
        Self::new(pattern, Requirement::AnyRole(roles.into_iter().collect()))
    }

    /// A session whose role is `role` or ranks above it:
    /// [`Requirement::AtLeastRole`].
    #[must_use]
    pub fn at_least_role(pattern: &str, role: R) -> Self {
        Self::new(pattern, Requirement::AtLeastRole(role))
    }

    /// A session holding `capability`: [`Requirement::Capability`].
    #[must_use]
    pub fn capability(pattern: &str, capability: Capability) -> Self {
        Self::new(pattern, Requirement::Capability(capability))
    }

    /// A session scoped to the tenant the path parameter `param` names:
    /// [`Requirement::TenantParam`].
    #[must_use]
    pub fn tenant_param(pattern: &str, param: &str) -> Self {
        Self::new(pattern, Requirement::TenantParam(param.to_owned()))
    }

    /// Nobody: [`Requirement::Deny`].
    #[must_use]
    pub fn deny(pattern: &str) -> Self {
        Self::new(pattern, Requirement::Deny)
    }

    /// Nothing here, for anyone (404): [`Requirement::NotFound`].
    #[must_use]
    pub fn not_found(pattern: &str) -> Self {
        Self::new(pattern, Requirement::NotFound)
    }

    /// Restricts the rule to these methods (replacing any earlier list).
    /// Uppercase HTTP tokens (`"GET"`, `"PROPFIND"`); a rule listing `GET`
    /// also matches `HEAD`.
    #[must_use]
    pub fn methods(mut self, methods: &[&str]) -> Self {
        self.methods = Some(methods.iter().map(|&m| m.into()).collect());
        self
    }

    /// Marks the route as a page for humans: on
    /// [`AccessDecision::Unauthenticated`] the HTTP edge redirects to the
    /// login page instead of answering 401, and sign-in and sign-out on it
    /// answer a browser (the session cookie set or cleared, and a redirect)
    /// rather than an API client (the token as JSON, or `204`).
    #[must_use]
    pub fn browser(mut self) -> Self {
        self.browser = true;
        self
    }

    /// Lets cross-origin browser requests with unsafe methods through on
    /// this route, which the HTTP edge otherwise refuses: for endpoints
    /// another site posts to by design, such as an identity provider's
    /// `form_post` callback. Such a route must not act on a session cookie
    /// alone.
    #[must_use]
    pub fn allow_cross_origin(mut self) -> Self {
        self.cross_origin = true;
        self
    }

    /// Step-up on recency (RFC 9470 `max_age`): the user must have
    /// authenticated at most `max_age` ago (the session's `auth_time`), or
    /// the route answers [`AccessDecision::StepUp`]. Combines with the
    /// requirement (which must need a session) and with [`acr`](Self::acr).
    /// Whole seconds count.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Step-up on level (RFC 9470 `acr_values`): the session's
    /// authentication context class reference (`acr`) must be one of
    /// `values` (in order of preference), or the route answers
    /// [`AccessDecision::StepUp`]. A session without `acr` has none.
    /// Combines with the requirement (which must need a session) and with
    /// [`max_age`](Self::max_age); each value must be a valid [`Acr`].
    #[must_use]
    pub fn acr(mut self, values: &[&str]) -> Self {
        self.acr = Some(values.iter().map(|&v| v.into()).collect());
        self
    }

    /// The step-up `max_age`, if set.
    #[must_use]
    pub fn max_age_limit(&self) -> Option<Duration> {
        self.max_age
    }

    /// The step-up `acr` values, as given, if set.
    #[must_use]
    pub fn acr_list(&self) -> Option<&[Box<str>]> {
        self.acr.as_deref()
    }

    /// The pattern, as written.
    #[must_use]
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The methods the rule is restricted to; `None` for every method.
    #[must_use]
    pub fn method_list(&self) -> Option<&[Box<str>]> {
        self.methods.as_deref()
    }

    /// What the rule requires.
    #[must_use]
    pub fn requirement(&self) -> &Requirement<R> {
        &self.requirement
    }

    /// Whether the route is a page for humans.
    #[must_use]
    pub fn is_browser(&self) -> bool {
        self.browser
    }

    /// Whether cross-origin unsafe requests are let through.
    #[must_use]
    pub fn allows_cross_origin(&self) -> bool {
        self.cross_origin
    }
}

/// Collects rules in order, then compiles them with [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct RoutePolicyBuilder<R> {
    rules: Vec<RouteRule<R>>,
    default: Requirement<R>,
}

impl<R> RoutePolicyBuilder<R> {
    /// Appends a rule; earlier rules win.
    #[must_use]
    pub fn rule(mut self, rule: RouteRule<R>) -> Self {
        self.rules.push(rule);
        self
    }

    /// Appends rules in order; earlier rules win.
    #[must_use]
    pub fn rules(mut self, rules: impl IntoIterator<Item = RouteRule<R>>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// The requirement of requests no rule matches; [`Requirement::Deny`]
    /// unless set. It never applies to non-canonical paths, which are always
    /// forbidden. It cannot use [`Requirement::TenantParam`].
    #[must_use]
    pub fn default_requirement(mut self, requirement: Requirement<R>) -> Self {
        self.default = requirement;
        self
    }

    /// Checks and compiles the rules.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] for the first malformed rule: a bad pattern, an empty
    /// or invalid method list, a [`Requirement::TenantParam`] naming no
    /// parameter of its pattern, or an empty [`Requirement::AnyRole`] or
    /// [`Requirement::All`]; the same requirement checks apply to the
    /// default requirement.
    pub fn build(self) -> Result<RoutePolicy<R>, PolicyError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.into_iter().enumerate() {
            let pattern = Pattern::parse(index, &rule.pattern)?;
            let methods = rule
                .methods
                .as_deref()
                .map(|methods| MethodSet::parse(index, &rule.pattern, methods))
                .transpose()?;
            check_requirement(&rule.requirement, Some(index), Some(&pattern))?;
            let step_up = compile_step_up(index, &rule)?;
            rules.push(CompiledRule {
                rule,
                pattern,
                methods,
                step_up,
            });
        }
        check_requirement(&self.default, None, None)?;
        let table = Table::build(rules.iter().map(|r| &r.pattern));
        Ok(RoutePolicy {
            rules: rules.into(),
            default: self.default,
            deny: Requirement::Deny,
            no_step_up: StepUp::default(),
            table,
        })
    }
}

fn compile_step_up<R>(index: usize, rule: &RouteRule<R>) -> Result<StepUp, PolicyError> {
    if rule.max_age.is_some_and(Duration::is_negative) {
        return Err(PolicyError::NegativeMaxAge { rule: index });
    }
    let acr_values = match rule.acr.as_deref() {
        None => Vec::new(),
        Some([]) => return Err(PolicyError::EmptyAcrList { rule: index }),
        Some(values) => values
            .iter()
            .map(|value| {
                Acr::parse(value).map_err(|source| PolicyError::InvalidAcr {
                    rule: index,
                    value: value.to_string(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let step_up = StepUp::new(rule.max_age, acr_values);
    if step_up.is_required() && !rule.requirement.needs_session() {
        return Err(PolicyError::StepUpWithoutSession { rule: index });
    }
    Ok(step_up)
}

fn check_requirement<R>(
    requirement: &Requirement<R>,
    rule: Option<usize>,
    pattern: Option<&Pattern>,
) -> Result<(), PolicyError> {
    match requirement {
        Requirement::AnyRole(roles) if roles.is_empty() => Err(PolicyError::EmptyRoleList { rule }),
        Requirement::All(members) if members.is_empty() => Err(PolicyError::EmptyAll { rule }),
        Requirement::All(members) => members
            .iter()
            .try_for_each(|member| check_requirement(member, rule, pattern)),
        Requirement::TenantParam(name)
            if pattern.and_then(|p| p.param_position(name)).is_none() =>
        {
            Err(PolicyError::UnknownTenantParam {
                rule,
                name: name.clone(),
            })
        }
        _ => Ok(()),
    }
}

#[derive(Debug, Clone)]
struct CompiledRule<R> {
    rule: RouteRule<R>,
    pattern: Pattern,
    methods: Option<MethodSet>,
    step_up: StepUp,
}

impl<R> CompiledRule<R> {
    fn accepts(&self, method: MethodKey<'_>) -> bool {
        self.methods.as_ref().is_none_or(|set| set.accepts(method))
    }
}

/// A compiled, immutable route-access policy; share it behind an `Arc`.
///
/// See the [module docs](self) for patterns, methods and path handling.
///
/// ```
/// use tessera_domain::policy::{AccessDecision, MatchKind, Requirement, RoutePolicy, RouteRule};
/// use tessera_domain::UserRole;
///
/// let policy = RoutePolicy::<UserRole>::builder()
///     .rule(RouteRule::new("/login", Requirement::GuestOnly).browser())
///     .rule(RouteRule::new("/health", Requirement::Public).methods(&["GET"]))
///     .rule(RouteRule::new("/admin/*", Requirement::AtLeastRole(UserRole::Admin)).browser())
///     .rule(RouteRule::new(
///         "/tenants/:tenant/*",
///         Requirement::TenantParam("tenant".into()),
///     ))
///     .build()?;
///
/// // The first matching rule wins; queries and one trailing slash are ignored.
/// let admin = policy.route("GET", "/admin/users/?page=2");
/// assert_eq!(admin.kind(), MatchKind::Rule(2));
/// assert!(admin.is_browser() && admin.needs_session());
/// assert_eq!(admin.decide(None), AccessDecision::Unauthenticated);
///
/// assert_eq!(policy.route("HEAD", "/health").decide(None), AccessDecision::Allow);
/// assert_eq!(policy.route("GET", "/login").decide(None), AccessDecision::Allow);
/// assert_eq!(policy.route("GET", "/tenants/acme/billing").param("tenant"), Some("acme"));
///
/// // Unmatched routes, and paths that are not canonical, are denied.
/// assert_eq!(policy.route("POST", "/health").decide(None), AccessDecision::Forbidden);
/// let sneaky = policy.route("GET", "/health/../admin/users");
/// assert_eq!(sneaky.kind(), MatchKind::NonCanonical);
/// assert_eq!(sneaky.decide(None), AccessDecision::Forbidden);
/// # Ok::<(), tessera_domain::policy::PolicyError>(())
/// ```
pub struct RoutePolicy<R> {
    rules: Box<[CompiledRule<R>]>,
    default: Requirement<R>,
    /// What non-canonical paths get, so that it can be lent out.
    deny: Requirement<R>,
    /// What routes without step-up get, so that it can be lent out.
    no_step_up: StepUp,
    table: Table,
}

impl<R: fmt::Debug> fmt::Debug for RoutePolicy<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutePolicy")
            .field("rules", &self.rules().collect::<Vec<_>>())
            .field("default", &self.default)
            .field("trie_nodes", &self.table.node_count())
            .finish()
    }
}

impl<R: Role, const N: usize> TryFrom<[RouteRule<R>; N]> for RoutePolicy<R> {
    type Error = PolicyError;

    /// A policy of these rules, first match wins, every other path denied:
    /// `RoutePolicy::builder().rules(rules).build()`
    /// ([`default_requirement`](RoutePolicyBuilder::default_requirement)
    /// sets another default).
    fn try_from(rules: [RouteRule<R>; N]) -> Result<Self, PolicyError> {
        Self::builder().rules(rules).build()
    }
}

impl<R: Role> RoutePolicy<R> {
    /// Starts a policy with no rules and a [`Requirement::Deny`] default.
    #[must_use]
    pub fn builder() -> RoutePolicyBuilder<R> {
        RoutePolicyBuilder {
            rules: Vec::new(),
            default: Requirement::Deny,
        }
    }

    /// Finds the rule for a request: the first declared rule matching
    /// `method` and `path`, else the default. `path` is the request's path,
    /// with or without its query string. Does not allocate.
    #[must_use]
    pub fn route<'p, 'a>(&'p self, method: &str, path: &'a str) -> RouteMatch<'p, 'a, R> {
        let method = MethodKey::new(method);
        self.matched(path, |canonical| {
            self.table.find(canonical, |index| {
                self.rules
                    .get(index)
                    .is_some_and(|rule| rule.accepts(method))
            })
        })
    }

    /// The reference matcher: a linear first-match scan over every rule,
    /// the semantics [`route`](Self::route) must reproduce. For tests and
    /// benchmarks only.
    #[doc(hidden)]
    #[must_use]
    pub fn route_linear<'p, 'a>(&'p self, method: &str, path: &'a str) -> RouteMatch<'p, 'a, R> {
        let method = MethodKey::new(method);
        self.matched(path, |canonical| {
            self.rules
                .iter()
                .position(|rule| rule.accepts(method) && rule.pattern.matches(canonical))
        })
    }

    /// Canonicalizes `path` and, when it is canonical, names the rule
    /// `find` picks for it.
    fn matched<'p, 'a>(
        &'p self,
        path: &'a str,
        find: impl FnOnce(CanonicalPath<'a>) -> Option<usize>,
    ) -> RouteMatch<'p, 'a, R> {
        let Some(canonical) = CanonicalPath::parse(path) else {
            return RouteMatch {
                policy: self,
                path: CanonicalPath::ROOT,
                kind: MatchKind::NonCanonical,
            };
        };
        RouteMatch {
            policy: self,
            path: canonical,
            kind: find(canonical).map_or(MatchKind::Default, MatchKind::Rule),
        }
    }
}

impl<R> RoutePolicy<R> {
    /// The rules, in declaration order.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = &RouteRule<R>> {
        self.rules.iter().map(|compiled| &compiled.rule)
    }

    /// The requirement of requests no rule matches.
    #[must_use]
    pub fn default_requirement(&self) -> &Requirement<R> {
        &self.default
    }
}

/// Which rule, if any, a request matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// The rule with this index, in declaration order.
    Rule(usize),
    /// No rule: the default requirement applies.
    Default,
    /// The path is not canonical (see the [module docs](self)): it matches
    /// nothing and is forbidden whatever the default requirement.
    NonCanonical,
}

/// The outcome of [`RoutePolicy::route`]: the rule a request matched, the
/// path parameters it bound, and the decision for a session.
pub struct RouteMatch<'p, 'a, R> {
    policy: &'p RoutePolicy<R>,
    path: CanonicalPath<'a>,
    kind: MatchKind,
}

impl<R> Clone for RouteMatch<'_, '_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for RouteMatch<'_, '_, R> {}

impl<R: fmt::Debug> fmt::Debug for RouteMatch<'_, '_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteMatch")
            .field("kind", &self.kind)
            .field("pattern", &self.matched_rule().map(|r| r.rule.pattern()))
            .finish_non_exhaustive()
    }
}

impl<'p, 'a, R> RouteMatch<'p, 'a, R> {
    fn matched_rule(&self) -> Option<&'p CompiledRule<R>> {
        match self.kind {
            MatchKind::Rule(index) => self.policy.rules.get(index),
            MatchKind::Default | MatchKind::NonCanonical => None,
        }
    }

    /// Which rule matched, the default, or neither for a non-canonical path.
    #[must_use]
    pub fn kind(&self) -> MatchKind {
        self.kind
    }

    /// The matched rule, `None` for the default or a non-canonical path.
    #[must_use]
    pub fn rule(&self) -> Option<&'p RouteRule<R>> {
        self.matched_rule().map(|compiled| &compiled.rule)
    }

    /// The requirement that applies: the matched rule's, the default, or
    /// [`Requirement::Deny`] for a non-canonical path.
    #[must_use]
    pub fn requirement(&self) -> &'p Requirement<R> {
        match self.kind {
            MatchKind::Rule(_) => self
                .matched_rule()
                .map_or(&self.policy.deny, |compiled| &compiled.rule.requirement),
            MatchKind::Default => &self.policy.default,
            MatchKind::NonCanonical => &self.policy.deny,
        }
    }

    /// Whether the decision needs a verified session; see
    /// [`Requirement::needs_session`]. When `false`, a session is only read
    /// if present (and a bad one can be treated as none).
    #[must_use]
    pub fn needs_session(&self) -> bool {
        self.requirement().needs_session()
    }

    /// The matched rule's step-up requirements ([`RouteRule::max_age`],
    /// [`RouteRule::acr`]); none for the default and non-canonical paths.
    #[must_use]
    pub fn step_up(&self) -> &'p StepUp {
        self.matched_rule()
            .map_or(&self.policy.no_step_up, |compiled| &compiled.step_up)
    }

    /// Whether the matched rule is a [browser](RouteRule::browser) route;
    /// `false` for the default and non-canonical paths.
    #[must_use]
    pub fn is_browser(&self) -> bool {
        self.matched_rule().is_some_and(|r| r.rule.browser)
    }

    /// Whether the matched rule [allows cross-origin](RouteRule::allow_cross_origin)
    /// unsafe requests; `false` for the default and non-canonical paths.
    #[must_use]
    pub fn allows_cross_origin(&self) -> bool {
        self.matched_rule().is_some_and(|r| r.rule.cross_origin)
    }

    /// The raw (still percent-encoded) path segment bound to parameter
    /// `name` by the matched rule's pattern.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&'a str> {
        let position = self.matched_rule()?.pattern.param_position(name)?;
        self.path.segments().nth(position)
    }

    /// Every parameter the matched rule bound, as `(name, raw value)`, in
    /// pattern order.
    pub fn params(&self) -> impl Iterator<Item = (&'p str, &'a str)> + use<'p, 'a, R> {
        let segments = self
            .matched_rule()
            .map_or(&[][..], |compiled| compiled.pattern.segments());
        segments
            .iter()
            .zip(self.path.segments())
            .filter_map(|(segment, value)| match segment {
                Segment::Param(name) => Some((&**name, value)),
                Segment::Literal(_) => None,
            })
    }
}

impl<R: Role> RouteMatch<'_, '_, R> {
    /// Decides the request for `session` at `now`: [`decide`](Self::decide),
    /// and then, for a session the requirement allows, the rule's
    /// [step-up](self#step-up): [`AccessDecision::StepUp`] when the user
    /// authenticated too long before `now` or not at an accepted level
    /// ([`step_up`](Self::step_up) then gives the challenge). The decision
    /// a session-carrying request needs.
    #[must_use]
    pub fn decide_at(
        &self,
        session: Option<&SessionEntity<R>>,
        now: OffsetDateTime,
    ) -> AccessDecision {
        match (self.decide(session), session) {
            (AccessDecision::Allow, Some(session))
                if self.step_up().challenge(session, now).is_some() =>
            {
                AccessDecision::StepUp
            }
            (decision, _) => decision,
        }
    }

    /// Decides the request for `session`, the verified session if any,
    /// against the rule's requirement only; a rule's step-up needs the
    /// time and is [`decide_at`](Self::decide_at)'s (the two agree for a
    /// guest, and for every rule without step-up).
    ///
    /// Requirements that need a session answer
    /// [`Unauthenticated`](AccessDecision::Unauthenticated) without one and
    /// [`Forbidden`](AccessDecision::Forbidden) when it falls short;
    /// [`GuestOnly`](Requirement::GuestOnly) answers
    /// [`RedirectAuthenticated`](AccessDecision::RedirectAuthenticated) to a
    /// signed-in user; [`Deny`](Requirement::Deny) and non-canonical paths
    /// are forbidden to everyone.
    #[must_use]
    pub fn decide(&self, session: Option<&SessionEntity<R>>) -> AccessDecision {
        self.evaluate(self.requirement(), session)
    }

    fn evaluate(
        &self,
        requirement: &Requirement<R>,
        session: Option<&SessionEntity<R>>,
    ) -> AccessDecision {
        let holds = |check: &dyn Fn(&SessionEntity<R>) -> bool| match session {
            None => AccessDecision::Unauthenticated,
            Some(session) if check(session) => AccessDecision::Allow,
            Some(_) => AccessDecision::Forbidden,
        };
        match requirement {
            Requirement::Public => AccessDecision::Allow,
            Requirement::GuestOnly => match session {
                None => AccessDecision::Allow,
                Some(_) => AccessDecision::RedirectAuthenticated,
            },
            Requirement::Deny => AccessDecision::Forbidden,
            Requirement::NotFound => AccessDecision::NotFound,
            Requirement::Authenticated => holds(&|_| true),
            Requirement::AnyRole(roles) => holds(&|s| s.has_any_role(roles)),
            Requirement::AtLeastRole(role) => holds(&|s| s.has_role_at_least(role)),
            Requirement::Capability(capability) => {
                holds(&|s| s.capabilities().contains(capability))
            }
            Requirement::TenantParam(name) => {
                let tenant = self.param(name);
                holds(&|s| tenant.is_some_and(|t| s.is_in_tenant(t)))
            }
            Requirement::All(members) => members
                .iter()
                .map(|member| self.evaluate(member, session))
                .find(|decision| *decision != AccessDecision::Allow)
                .unwrap_or(AccessDecision::Allow),
        }
    }
}
