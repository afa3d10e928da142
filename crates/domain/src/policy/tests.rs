use std::collections::BTreeSet;

use proptest::prelude::*;
use time::OffsetDateTime;

use super::*;
use crate::ids::{SessionId, TenantId, UserId};
use crate::role::UserRole;
use crate::session::NewSession;

use AccessDecision::{Allow, Forbidden, RedirectAuthenticated, StepUp, Unauthenticated};

type Req = Requirement<UserRole>;
type Rule = RouteRule<UserRole>;

fn session(role: UserRole, capabilities: &[&str], tenant: Option<&str>) -> SessionEntity<UserRole> {
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    SessionEntity::new(NewSession {
        user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap(),
        session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").unwrap(),
        role,
        capabilities: capabilities
            .iter()
            .map(|c| Capability::parse(c).unwrap())
            .collect::<BTreeSet<_>>(),
        tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
        issued_at: now,
        expires_at: now + time::Duration::minutes(15),
        authenticated_at: now,
        authentication: Default::default(),
    })
    .unwrap()
}

fn user() -> SessionEntity<UserRole> {
    session(UserRole::User, &[], None)
}

fn policy(rules: impl IntoIterator<Item = Rule>) -> RoutePolicy<UserRole> {
    RoutePolicy::builder().rules(rules).build().unwrap()
}

/// The decisions for a guest, the given signed-in session and an
/// insufficient one.
fn decisions(
    requirement: Req,
    pattern: &str,
    path: &str,
    enough: &SessionEntity<UserRole>,
    short: &SessionEntity<UserRole>,
) -> [AccessDecision; 3] {
    let policy = policy([RouteRule::new(pattern, requirement)]);
    let m = policy.route("GET", path);
    assert_eq!(m.kind(), MatchKind::Rule(0));
    [
        m.decide(None),
        m.decide(Some(enough)),
        m.decide(Some(short)),
    ]
}

// --- Requirements ---------------------------------------------------------

#[test]
fn public_allows_guests_and_every_session() {
    let d = decisions(Req::Public, "/", "/", &user(), &user());
    assert_eq!(d, [Allow, Allow, Allow]);
}

#[test]
fn guest_only_allows_guests_and_redirects_signed_in_users() {
    let d = decisions(Req::GuestOnly, "/login", "/login", &user(), &user());
    assert_eq!(d, [Allow, RedirectAuthenticated, RedirectAuthenticated]);
}

#[test]
fn authenticated_allows_any_session_and_asks_guests_to_sign_in() {
    let d = decisions(Req::Authenticated, "/me", "/me", &user(), &user());
    assert_eq!(d, [Unauthenticated, Allow, Allow]);
}

#[test]
fn any_role_allows_only_the_listed_roles() {
    let req = Req::AnyRole(vec![UserRole::User, UserRole::Admin]);
    let moderator = session(UserRole::Moderator, &[], None);
    let d = decisions(req, "/x", "/x", &user(), &moderator);
    assert_eq!(d, [Unauthenticated, Allow, Forbidden]);
}

#[test]
fn at_least_role_allows_that_role_and_higher_ones() {
    let req = Req::AtLeastRole(UserRole::Moderator);
    let admin = session(UserRole::Admin, &[], None);
    let d = decisions(req.clone(), "/mod", "/mod", &admin, &user());
    assert_eq!(d, [Unauthenticated, Allow, Forbidden]);
    let moderator = session(UserRole::Moderator, &[], None);
    let d = decisions(req, "/mod", "/mod", &moderator, &user());
    assert_eq!(d, [Unauthenticated, Allow, Forbidden]);
}

#[test]
fn capability_allows_only_sessions_holding_it() {
    let req = Req::Capability(Capability::parse("billing:write").unwrap());
    let holder = session(UserRole::User, &["billing:write"], None);
    let other = session(UserRole::Admin, &["billing:read"], None);
    let d = decisions(req, "/billing", "/billing", &holder, &other);
    assert_eq!(d, [Unauthenticated, Allow, Forbidden]);
}

#[test]
fn tenant_param_requires_the_session_tenant_to_equal_the_path_parameter() {
    let req = Req::TenantParam("tenant".into());
    let acme = session(UserRole::User, &[], Some("acme"));
    let globex = session(UserRole::Admin, &[], Some("globex"));
    let d = decisions(req.clone(), "/t/:tenant/*", "/t/acme/x", &acme, &globex);
    assert_eq!(d, [Unauthenticated, Allow, Forbidden]);
    let untenanted = session(UserRole::Admin, &[], None);
    let d = decisions(req, "/t/:tenant/*", "/t/acme", &acme, &untenanted);
    assert_eq!(d, [Unauthenticated, Allow, Forbidden]);
}

#[test]
fn tenant_param_compares_the_raw_segment_so_an_encoded_tenant_never_matches() {
    let acme = session(UserRole::User, &[], Some("acme"));
    let policy = policy([RouteRule::new(
        "/t/:tenant",
        Req::TenantParam("tenant".into()),
    )]);
    assert_eq!(
        policy.route("GET", "/t/acm%C3%A9").decide(Some(&acme)),
        Forbidden
    );
    assert_eq!(
        policy.route("GET", "/t/ACME").decide(Some(&acme)),
        Forbidden
    );
}

#[test]
fn deny_forbids_guests_and_every_session() {
    let admin = session(UserRole::Admin, &[], None);
    let d = decisions(Req::Deny, "/x", "/x", &admin, &user());
    assert_eq!(d, [Forbidden, Forbidden, Forbidden]);
}

#[test]
fn all_requires_every_member_and_reports_the_first_that_fails() {
    let req = Req::All(vec![
        Req::TenantParam("tenant".into()),
        Req::Capability(Capability::parse("billing:write").unwrap()),
    ]);
    let policy = policy([RouteRule::new("/t/:tenant/billing", req)]);
    let m = policy.route("POST", "/t/acme/billing");
    let both = session(UserRole::User, &["billing:write"], Some("acme"));
    let no_cap = session(UserRole::User, &[], Some("acme"));
    let wrong_tenant = session(UserRole::User, &["billing:write"], Some("globex"));
    assert_eq!(m.decide(None), Unauthenticated);
    assert_eq!(m.decide(Some(&both)), Allow);
    assert_eq!(m.decide(Some(&no_cap)), Forbidden);
    assert_eq!(m.decide(Some(&wrong_tenant)), Forbidden);
}

#[test]
fn needs_session_is_false_only_for_public_guest_only_and_deny() {
    let cap = Capability::parse("c").unwrap();
    assert!(!Req::Public.needs_session());
    assert!(!Req::GuestOnly.needs_session());
    assert!(!Req::Deny.needs_session());
    assert!(Req::Authenticated.needs_session());
    assert!(Req::AnyRole(vec![UserRole::User]).needs_session());
    assert!(Req::AtLeastRole(UserRole::User).needs_session());
    assert!(Req::Capability(cap).needs_session());
    assert!(Req::TenantParam("t".into()).needs_session());
    assert!(Req::All(vec![Req::Public, Req::Authenticated]).needs_session());
    assert!(!Req::All(vec![Req::Public, Req::GuestOnly]).needs_session());
}

#[test]
fn route_match_needs_session_follows_the_applied_requirement() {
    let policy = policy([RouteRule::new("/me", Req::Authenticated)]);
    assert!(policy.route("GET", "/me").needs_session());
    assert!(!policy.route("GET", "/other").needs_session());
    assert!(!policy.route("GET", "/me/../me").needs_session());
}

// --- Default and non-canonical --------------------------------------------

#[test]
fn unmatched_route_is_forbidden_by_default() {
    let policy = policy([RouteRule::new("/a", Req::Public)]);
    let m = policy.route("GET", "/b");
    assert_eq!(m.kind(), MatchKind::Default);
    assert_eq!(m.requirement(), &Req::Deny);
    assert_eq!(m.decide(None), Forbidden);
    assert_eq!(
        m.decide(Some(&session(UserRole::Admin, &[], None))),
        Forbidden
    );
    assert!(m.rule().is_none());
}

#[test]
fn default_requirement_applies_to_unmatched_routes() {
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new(
            "/admin/*",
            Req::AtLeastRole(UserRole::Admin),
        ))
        .default_requirement(Req::Authenticated)
        .build()
        .unwrap();
    let m = policy.route("GET", "/elsewhere");
    assert_eq!(m.kind(), MatchKind::Default);
    assert_eq!(m.decide(None), Unauthenticated);
    assert_eq!(m.decide(Some(&user())), Allow);
    assert_eq!(policy.default_requirement(), &Req::Authenticated);
}

#[test]
fn non_canonical_paths_match_nothing_and_are_forbidden_even_with_a_public_default() {
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/*", Req::Public))
        .default_requirement(Req::Public)
        .build()
        .unwrap();
    let admin = session(UserRole::Admin, &[], None);
    for path in [
        "",
        "admin",
        "*",
        "//admin",
        "/admin//users",
        "/admin//",
        "/./admin",
        "/admin/.",
        "/public/../admin",
        "/..",
        "/public/..;/admin",
        "/public/.;x/admin",
        "/admin%2Fusers",
        "/admin%2fusers",
        "/admin%5Cusers",
        "/admin%5cusers",
        "/%2e%2e/admin",
        "/%2E%2E/admin",
        "/public/%2e/admin",
        "/%61dmin",
        "/admin%7E",
        "/admin%00",
        "/admin%",
        "/admin%4",
        "/admin%zz",
        "/admin\\users",
        "/adm\u{ed}n",
        "/admin users",
        "/admin\tusers",
        "/admin\nusers",
        "/admin\u{7f}",
    ] {
        let m = policy.route("GET", path);
        assert_eq!(m.kind(), MatchKind::NonCanonical, "{path:?}");
        assert_eq!(m.requirement(), &Req::Deny, "{path:?}");
        assert_eq!(m.decide(None), Forbidden, "{path:?}");
        assert_eq!(m.decide(Some(&admin)), Forbidden, "{path:?}");
        assert!(!m.is_browser(), "{path:?}");
        assert_eq!(
            policy.route_linear("GET", path).kind(),
            MatchKind::NonCanonical
        );
    }
}

#[test]
fn other_escapes_and_dotted_names_are_canonical_and_compared_as_written() {
    let policy = policy([RouteRule::new("/files/:name", Req::Public)]);
    for (path, value) in [
        ("/files/a%20b", "a%20b"),
        ("/files/alice%40example.com", "alice%40example.com"),
        ("/files/a%3Ab", "a%3Ab"),
        ("/files/100%25", "100%25"),
        ("/files/caf%C3%A9", "caf%C3%A9"),
        ("/files/.hidden", ".hidden"),
        ("/files/..foo", "..foo"),
        ("/files/a;b", "a;b"),
    ] {
        let m = policy.route("GET", path);
        assert_eq!(m.kind(), MatchKind::Rule(0), "{path:?}");
        assert_eq!(m.param("name"), Some(value));
    }
}

#[test]
fn query_string_and_fragment_are_ignored() {
    let policy = policy([
        RouteRule::new("/admin", Req::AtLeastRole(UserRole::Admin)),
        RouteRule::new("/*", Req::Public),
    ]);
    assert_eq!(policy.route("GET", "/admin?x=1").kind(), MatchKind::Rule(0));
    assert_eq!(policy.route("GET", "/admin#top").kind(), MatchKind::Rule(0));
    assert_eq!(
        policy.route("GET", "/admin?next=/../public").kind(),
        MatchKind::Rule(0)
    );
    assert_eq!(policy.route("GET", "/admin/?").kind(), MatchKind::Rule(0));
    assert_eq!(policy.route("GET", "/?a=b").kind(), MatchKind::Rule(1));
    assert_eq!(policy.route("GET", "?a=b").kind(), MatchKind::NonCanonical);
}

#[test]
fn one_trailing_slash_matches_like_the_path_without_it() {
    let policy = policy([
        RouteRule::new("/admin", Req::AtLeastRole(UserRole::Admin)),
        RouteRule::new("/t/:tenant", Req::TenantParam("tenant".into())),
        RouteRule::new("/", Req::Public),
    ]);
    assert_eq!(policy.route("GET", "/admin/").kind(), MatchKind::Rule(0));
    assert_eq!(
        policy.route("GET", "/t/acme/").param("tenant"),
        Some("acme")
    );
    assert_eq!(policy.route("GET", "/").kind(), MatchKind::Rule(2));
    assert_eq!(
        policy.route("GET", "/admin//").kind(),
        MatchKind::NonCanonical
    );
    assert_eq!(policy.route("GET", "//").kind(), MatchKind::NonCanonical);
}

// --- Patterns and order ---------------------------------------------------

#[test]
fn prefix_rule_matches_its_base_and_everything_below_but_not_longer_names() {
    let policy = policy([RouteRule::new("/admin/*", Req::Authenticated)]);
    for path in ["/admin", "/admin/", "/admin/users", "/admin/a/b/c"] {
        assert_eq!(
            policy.route("GET", path).kind(),
            MatchKind::Rule(0),
            "{path}"
        );
    }
    for path in ["/", "/administrator", "/Admin", "/x/admin"] {
        assert_eq!(
            policy.route("GET", path).kind(),
            MatchKind::Default,
            "{path}"
        );
    }
}

#[test]
fn root_wildcard_matches_every_canonical_path_including_the_root() {
    let policy = policy([RouteRule::new("/*", Req::Public)]);
    for path in ["/", "/a", "/a/b/c/d/e/f/g"] {
        assert_eq!(
            policy.route("GET", path).kind(),
            MatchKind::Rule(0),
            "{path}"
        );
    }
}

#[test]
fn exact_rule_matches_only_its_own_path_case_sensitively() {
    let policy = policy([RouteRule::new("/admin/users", Req::Public)]);
    assert_eq!(
        policy.route("GET", "/admin/users").kind(),
        MatchKind::Rule(0)
    );
    for path in ["/admin", "/admin/users/1", "/admin/Users", "/ADMIN/users"] {
        assert_eq!(
            policy.route("GET", path).kind(),
            MatchKind::Default,
            "{path}"
        );
    }
}

#[test]
fn prefix_rule_declared_before_a_more_specific_exact_rule_wins() {
    let policy = policy([
        RouteRule::new("/admin/*", Req::AtLeastRole(UserRole::Admin)),
        RouteRule::new("/admin/status", Req::Public),
    ]);
    let m = policy.route("GET", "/admin/status");
    assert_eq!(m.kind(), MatchKind::Rule(0));
    assert_eq!(m.decide(None), Unauthenticated);
}

#[test]
fn exact_rule_declared_before_a_prefix_rule_wins_for_its_path_only() {
    let policy = policy([
        RouteRule::new("/admin/status", Req::Public),
        RouteRule::new("/admin/*", Req::AtLeastRole(UserRole::Admin)),
    ]);
    assert_eq!(policy.route("GET", "/admin/status").decide(None), Allow);
    assert_eq!(
        policy.route("GET", "/admin/status/x").kind(),
        MatchKind::Rule(1)
    );
    assert_eq!(
        policy.route("GET", "/admin/users").kind(),
        MatchKind::Rule(1)
    );
}

#[test]
fn param_rule_and_literal_rule_follow_declaration_order_both_ways() {
    let param_first = policy([
        RouteRule::new("/users/:id", Req::Authenticated),
        RouteRule::new("/users/me", Req::Public),
    ]);
    assert_eq!(
        param_first.route("GET", "/users/me").kind(),
        MatchKind::Rule(0)
    );
    let literal_first = policy([
        RouteRule::new("/users/me", Req::Public),
        RouteRule::new("/users/:id", Req::Authenticated),
    ]);
    assert_eq!(
        literal_first.route("GET", "/users/me").kind(),
        MatchKind::Rule(0)
    );
    assert_eq!(
        literal_first.route("GET", "/users/42").kind(),
        MatchKind::Rule(1)
    );
}

#[test]
fn a_deeper_earlier_rule_beats_a_shallower_later_one_across_branches() {
    let policy = policy([
        RouteRule::new("/:a/:b/c", Req::Deny),
        RouteRule::new("/x/*", Req::Public),
        RouteRule::new("/x/y/c", Req::Public),
    ]);
    assert_eq!(policy.route("GET", "/x/y/c").kind(), MatchKind::Rule(0));
    assert_eq!(policy.route("GET", "/x/y/d").kind(), MatchKind::Rule(1));
}

#[test]
fn params_bind_raw_segments_by_name() {
    let policy = policy([RouteRule::new(
        "/tenants/:tenant/users/:user_id/*",
        Req::Public,
    )]);
    let m = policy.route("GET", "/tenants/acme/users/42/posts/7?x=1");
    assert_eq!(m.param("tenant"), Some("acme"));
    assert_eq!(m.param("user_id"), Some("42"));
    assert_eq!(m.param("users"), None);
    assert_eq!(
        m.params().collect::<Vec<_>>(),
        [("tenant", "acme"), ("user_id", "42")]
    );
    let unmatched = policy.route("GET", "/tenants/acme");
    assert_eq!(unmatched.kind(), MatchKind::Default);
    assert_eq!(unmatched.param("tenant"), None);
    assert_eq!(unmatched.params().count(), 0);
}

#[test]
fn a_param_never_matches_a_missing_segment() {
    let policy = policy([RouteRule::new("/users/:id", Req::Public)]);
    assert_eq!(policy.route("GET", "/users").kind(), MatchKind::Default);
    assert_eq!(policy.route("GET", "/users/").kind(), MatchKind::Default);
}

// --- Methods ---------------------------------------------------------------

#[test]
fn rule_with_methods_matches_only_those_and_lets_others_fall_through() {
    let policy = policy([
        RouteRule::new("/posts", Req::Authenticated).methods(&["POST", "DELETE"]),
        RouteRule::new("/posts", Req::Public),
    ]);
    assert_eq!(policy.route("POST", "/posts").kind(), MatchKind::Rule(0));
    assert_eq!(policy.route("DELETE", "/posts").kind(), MatchKind::Rule(0));
    assert_eq!(policy.route("GET", "/posts").kind(), MatchKind::Rule(1));
    assert_eq!(policy.route("post", "/posts").kind(), MatchKind::Rule(1));
}

#[test]
fn rule_without_methods_matches_every_method_including_extensions() {
    let policy = policy([RouteRule::new("/x", Req::Public)]);
    for method in ["GET", "POST", "PROPFIND", "get", "", "weird method"] {
        assert_eq!(
            policy.route(method, "/x").kind(),
            MatchKind::Rule(0),
            "{method:?}"
        );
    }
}

#[test]
fn head_matches_get_rules_but_get_does_not_match_head_only_rules() {
    let policy = policy([
        RouteRule::new("/a", Req::Authenticated).methods(&["GET"]),
        RouteRule::new("/b", Req::Authenticated).methods(&["HEAD"]),
    ]);
    assert_eq!(policy.route("HEAD", "/a").kind(), MatchKind::Rule(0));
    assert_eq!(policy.route("HEAD", "/b").kind(), MatchKind::Rule(1));
    assert_eq!(policy.route("GET", "/b").kind(), MatchKind::Default);
    assert_eq!(policy.route("POST", "/a").kind(), MatchKind::Default);
}

#[test]
fn extension_methods_match_exactly() {
    let policy =
        policy([RouteRule::new("/dav/*", Req::Authenticated).methods(&["PROPFIND", "MKCOL"])]);
    assert_eq!(
        policy.route("PROPFIND", "/dav/x").kind(),
        MatchKind::Rule(0)
    );
    assert_eq!(policy.route("MKCOL", "/dav").kind(), MatchKind::Rule(0));
    assert_eq!(
        policy.route("PROPPATCH", "/dav/x").kind(),
        MatchKind::Default
    );
    assert_eq!(
        policy.route("propfind", "/dav/x").kind(),
        MatchKind::Default
    );
    assert_eq!(policy.route("GET", "/dav/x").kind(), MatchKind::Default);
}

// --- Browser flag and accessors -------------------------------------------

#[test]
fn browser_flag_comes_from_the_matched_rule_only() {
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/app/*", Req::Authenticated).browser())
        .rule(RouteRule::new("/api/*", Req::Authenticated))
        .default_requirement(Req::Authenticated)
        .build()
        .unwrap();
    assert!(policy.route("GET", "/app/home").is_browser());
    assert!(!policy.route("GET", "/api/home").is_browser());
    assert!(!policy.route("GET", "/other").is_browser());
    assert!(!policy.route("GET", "/app/../x").is_browser());
}

#[test]
fn a_not_found_default_answers_unmatched_paths_404_but_non_canonical_ones_stay_forbidden() {
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/", Req::Public))
        .rule(RouteRule::new("/hidden", Req::NotFound))
        .default_requirement(Req::NotFound)
        .build()
        .unwrap();
    let alice = session(UserRole::Admin, &[], None);
    for s in [None, Some(&alice)] {
        assert_eq!(
            policy.route("GET", "/favicon.ico").decide(s),
            AccessDecision::NotFound
        );
        assert_eq!(
            policy.route("POST", "/hidden").decide(s),
            AccessDecision::NotFound
        );
        assert_eq!(
            policy.route("GET", "/a//b").decide(s),
            AccessDecision::Forbidden
        );
        assert_eq!(policy.route("GET", "/").decide(s), AccessDecision::Allow);
    }
    assert!(!policy.route("GET", "/favicon.ico").needs_session());
}

#[test]
fn cross_origin_is_allowed_only_where_the_matched_rule_says_so() {
    let policy = RoutePolicy::builder()
        .rule(RouteRule::new("/callback", Req::Public).allow_cross_origin())
        .rule(RouteRule::new("/login", Req::GuestOnly))
        .default_requirement(Req::Public)
        .build()
        .unwrap();
    assert!(policy.route("POST", "/callback").allows_cross_origin());
    assert!(!policy.route("POST", "/login").allows_cross_origin());
    assert!(!policy.route("POST", "/other").allows_cross_origin());
    assert!(!policy.route("POST", "/callback/../x").allows_cross_origin());
    assert!(
        RouteRule::new("/x", Req::Public)
            .allow_cross_origin()
            .allows_cross_origin()
    );
    assert!(!RouteRule::new("/x", Req::Public).allows_cross_origin());
}

#[test]
fn route_rules_and_matches_expose_what_they_were_built_from() {
    let policy = policy([RouteRule::new("/a/:b", Req::Public)
        .methods(&["GET"])
        .browser()]);
    let rule = policy.rules().next().unwrap();
    assert_eq!(rule.pattern(), "/a/:b");
    assert_eq!(rule.method_list(), Some(&["GET".into()][..]));
    assert_eq!(rule.requirement(), &Req::Public);
    assert!(rule.is_browser());
    assert_eq!(policy.route("GET", "/a/1").rule(), Some(rule));
    let debug = format!("{:?}", policy.route("GET", "/a/1"));
    assert!(debug.contains("/a/:b"), "{debug}");
    assert!(format!("{policy:?}").contains("trie_nodes"));
}

#[test]
fn policy_is_send_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<RoutePolicy<UserRole>>();
    assert_send_sync::<PolicyError>();
}

#[test]
fn access_decision_says_whether_it_allows() {
    assert!(Allow.is_allowed());
    assert!(!Forbidden.is_allowed());
    assert!(!Unauthenticated.is_allowed());
    assert!(!RedirectAuthenticated.is_allowed());
}

// --- Builder errors ---------------------------------------------------------

fn build_error(rule: Rule) -> PolicyError {
    RoutePolicy::builder()
        .rule(RouteRule::new("/ok", Req::Public))
        .rule(rule)
        .build()
        .unwrap_err()
}

#[test]
fn builder_refuses_malformed_patterns() {
    let p = |s: &str| build_error(RouteRule::new(s, Req::Public));
    assert_eq!(p(""), PolicyError::EmptyPattern { rule: 1 });
    assert!(matches!(
        p("admin"),
        PolicyError::MissingLeadingSlash { rule: 1, .. }
    ));
    assert!(matches!(p("*"), PolicyError::MissingLeadingSlash { .. }));
    assert!(matches!(p("//admin"), PolicyError::EmptySegment { .. }));
    assert!(matches!(p("/admin/"), PolicyError::EmptySegment { .. }));
    assert!(matches!(p("/a//b"), PolicyError::EmptySegment { .. }));
    assert!(matches!(p("/*/admin"), PolicyError::WildcardNotLast { .. }));
    assert!(matches!(p("/a/*/*"), PolicyError::WildcardNotLast { .. }));
    assert!(matches!(p("/files*"), PolicyError::WildcardNotLast { .. }));
    assert!(matches!(p("/a/:"), PolicyError::EmptyParamName { .. }));
    assert!(matches!(
        p("/a/:1x"),
        PolicyError::InvalidParamName { ref name, .. } if name == "1x"
    ));
    assert!(matches!(p("/a/:x-y"), PolicyError::InvalidParamName { .. }));
    assert!(matches!(
        p("/:id/x/:id"),
        PolicyError::DuplicateParam { ref name, .. } if name == "id"
    ));
    for bad in [
        "/a/..",
        "/./a",
        "/a/..;x",
        "/a%2Fb",
        "/a b",
        "/a?b",
        "/{id}",
        "/caf\u{e9}",
        "/a\\b",
    ] {
        assert!(
            matches!(p(bad), PolicyError::InvalidLiteral { .. }),
            "{bad:?}: {:?}",
            p(bad)
        );
    }
}

#[test]
fn builder_accepts_well_formed_patterns() {
    let policy = policy(
        [
            "/",
            "/*",
            "/admin",
            "/admin/*",
            "/tenants/:tenant/*",
            "/users:search",
            "/@me/.well-known/a-b_c~d",
            "/:_x/:Y9",
        ]
        .map(|p| RouteRule::new(p, Req::Public)),
    );
    assert_eq!(policy.rules().len(), 8);
}

#[test]
fn builder_refuses_a_tenant_param_its_pattern_does_not_bind() {
    let err = build_error(RouteRule::new("/t/:tenant", Req::TenantParam("org".into())));
    assert_eq!(
        err,
        PolicyError::UnknownTenantParam {
            rule: Some(1),
            name: "org".into()
        }
    );
    let nested = Req::All(vec![Req::Authenticated, Req::TenantParam("org".into())]);
    assert!(matches!(
        build_error(RouteRule::new("/t/:tenant", nested)),
        PolicyError::UnknownTenantParam { rule: Some(1), .. }
    ));
    let err = RoutePolicy::<UserRole>::builder()
        .default_requirement(Req::TenantParam("tenant".into()))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        PolicyError::UnknownTenantParam {
            rule: None,
            name: "tenant".into()
        }
    );
    assert!(err.to_string().starts_with("default requirement"), "{err}");
}

#[test]
fn builder_refuses_empty_role_lists_and_empty_all() {
    assert_eq!(
        build_error(RouteRule::new("/x", Req::AnyRole(vec![]))),
        PolicyError::EmptyRoleList { rule: Some(1) }
    );
    assert_eq!(
        build_error(RouteRule::new("/x", Req::All(vec![]))),
        PolicyError::EmptyAll { rule: Some(1) }
    );
    let err = RoutePolicy::<UserRole>::builder()
        .default_requirement(Req::All(vec![Req::AnyRole(vec![])]))
        .build()
        .unwrap_err();
    assert_eq!(err, PolicyError::EmptyRoleList { rule: None });
}

#[test]
fn builder_refuses_empty_and_invalid_method_lists() {
    assert!(matches!(
        build_error(RouteRule::new("/x", Req::Public).methods(&[])),
        PolicyError::NoMethods { rule: 1, .. }
    ));
    for bad in ["get", "Get", "", "GET POST", "G\u{c9}T", "GET/1"] {
        assert!(
            matches!(
                build_error(RouteRule::new("/x", Req::Public).methods(&[bad])),
                PolicyError::InvalidMethod { ref method, .. } if method == bad
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn builder_errors_name_the_rule_and_pattern() {
    let err = build_error(RouteRule::new("/a/*/b", Req::Public));
    assert_eq!(
        err.to_string(),
        "rule 1: pattern \"/a/*/b\" has a '*' that is not the whole last segment"
    );
}

// --- Properties -------------------------------------------------------------

/// Patterns over a small alphabet, so that random paths hit them often.
fn pattern_strategy() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned),
        1 => Just(":p".to_owned()),
    ];
    (prop::collection::vec(segment, 0..5), any::<bool>()).prop_map(|(segments, prefix)| {
        let mut pattern = String::new();
        for (i, segment) in segments.iter().enumerate() {
            pattern.push('/');
            pattern.push_str(segment);
            if segment == ":p" {
                pattern.push_str(&i.to_string());
            }
        }
        if prefix {
            pattern.push_str("/*");
        }
        if pattern.is_empty() {
            pattern.push('/');
        }
        pattern
    })
}

fn rule_strategy() -> impl Strategy<Value = Rule> {
    let methods = prop::option::weighted(
        0.4,
        prop::sample::subsequence(vec!["GET", "HEAD", "POST", "PURGE"], 1..=2),
    );
    (pattern_strategy(), methods).prop_map(|(pattern, methods)| {
        let rule = RouteRule::new(&pattern, Req::Public);
        match methods {
            Some(methods) => rule.methods(&methods),
            None => rule,
        }
    })
}

fn path_strategy() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        12 => prop::sample::select(vec!["a", "b", "c", "d"]),
        1 => prop::sample::select(vec!["a%20", "..", ""]),
    ];
    let tail = prop::sample::select(vec!["", "/", "?q=/a/b", "/?x"]);
    (prop::collection::vec(segment, 0..7), tail).prop_map(|(segments, tail)| {
        let mut path = String::new();
        for segment in segments {
            path.push('/');
            path.push_str(segment);
        }
        if path.is_empty() {
            path.push('/');
        }
        path + tail
    })
}

fn method_strategy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "PURGE", "get"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The key property: the compiled trie finds exactly the rule a linear
    /// first-match scan finds, with the same parameters.
    #[test]
    fn compiled_matcher_agrees_with_a_linear_first_match_scan(
        rules in prop::collection::vec(rule_strategy(), 0..40),
        requests in prop::collection::vec((method_strategy(), path_strategy()), 1..20),
    ) {
        let policy = policy(rules);
        for (method, path) in &requests {
            let fast = policy.route(method, path);
            let slow = policy.route_linear(method, path);
            prop_assert_eq!(fast.kind(), slow.kind(), "{} {}", method, path);
            prop_assert_eq!(fast.params().collect::<Vec<_>>(), slow.params().collect::<Vec<_>>());
        }
    }

    #[test]
    fn arbitrary_paths_and_methods_never_panic(
        method in any::<String>(),
        path in prop_oneof![any::<String>(), "[/a-c%.?#;:\\\\2eEfF5]{0,24}"],
    ) {
        let policy = policy([
            RouteRule::new("/:a/*", Req::TenantParam("a".into())),
            RouteRule::new("/a/b", Req::Public).methods(&["GET"]),
        ]);
        let m = policy.route(&method, &path);
        prop_assert_eq!(m.kind(), policy.route_linear(&method, &path).kind());
        let _ = m.decide(None);
        let _ = m.decide(Some(&user()));
        let _ = m.params().count();
    }

    #[test]
    fn arbitrary_patterns_and_methods_never_panic_the_builder(
        pattern in prop_oneof![any::<String>(), "[/a-c:*.%]{0,12}"],
        method in any::<String>(),
    ) {
        let _ = RoutePolicy::builder()
            .rule(RouteRule::new(&pattern, Req::TenantParam("a".into())).methods(&[&method]))
            .build();
    }

    /// Whatever the rules, a path with a dot segment is forbidden.
    #[test]
    fn paths_with_dot_segments_are_always_forbidden(
        rules in prop::collection::vec(rule_strategy(), 0..10),
        before in "(/[a-c]){0,3}",
        dots in prop::sample::select(vec!["/.", "/..", "/%2e", "/%2E%2e", "/..;"]),
        after in "(/[a-c]){0,3}",
    ) {
        let policy = RoutePolicy::builder()
            .rules(rules)
            .default_requirement(Req::Public)
            .build()
            .unwrap();
        let path = format!("{before}{dots}{after}");
        prop_assert_eq!(policy.route("GET", &path).decide(None), Forbidden);
    }
}

// ----- step-up ------------------------------------------------------------------

const T0: i64 = 1_700_000_000;

/// A moderator session issued at [`T0`], authenticated `ago` seconds
/// earlier at level `acr`.
fn authenticated(ago: i64, acr: Option<&str>) -> SessionEntity<UserRole> {
    let mut parts = session(UserRole::Moderator, &[], None).into_parts();
    parts.authenticated_at = at(T0 - ago);
    parts.authentication = acr.map_or_else(Default::default, |acr| {
        crate::Authentication::at_level(Acr::parse(acr).unwrap())
    });
    SessionEntity::new(parts).unwrap()
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

fn step_up_policy() -> RoutePolicy<UserRole> {
    policy([
        RouteRule::new("/recent", Req::AtLeastRole(UserRole::Moderator))
            .max_age(time::Duration::minutes(5)),
        RouteRule::new("/strong", Req::Authenticated).acr(&["urn:example:mfa", "phrh"]),
        RouteRule::new("/both", Req::AtLeastRole(UserRole::Moderator))
            .max_age(time::Duration::minutes(5))
            .acr(&["urn:example:mfa"]),
        RouteRule::new("/plain", Req::Authenticated),
    ])
}

#[test]
fn max_age_asks_for_a_recent_authentication_and_exactly_max_age_still_passes() {
    let policy = step_up_policy();
    let m = policy.route("GET", "/recent");
    let now = at(T0);
    assert_eq!(m.decide_at(Some(&authenticated(300, None)), now), Allow);
    assert_eq!(m.decide_at(Some(&authenticated(301, None)), now), StepUp);
    assert_eq!(m.decide_at(None, now), Unauthenticated);
    // The requirement comes first: step-up never turns a 403 into a 401.
    let user = {
        let mut parts = authenticated(3_000, None).into_parts();
        parts.role = UserRole::User;
        SessionEntity::new(parts).unwrap()
    };
    assert_eq!(m.decide_at(Some(&user), now), Forbidden);
    // `decide` is the requirement alone.
    assert_eq!(m.decide(Some(&authenticated(3_000, None))), Allow);

    let challenge = m
        .step_up()
        .challenge(&authenticated(301, Some("urn:example:mfa")), now)
        .unwrap();
    assert_eq!(challenge.reason(), StepUpReason::Recency);
    assert_eq!(challenge.asked().max_age_seconds(), Some(300));
    assert_eq!(challenge.asked().acr_values_text(), None);
    assert_eq!(
        challenge.description(),
        "More recent authentication is required"
    );
}

#[test]
fn acr_asks_for_one_of_the_accepted_levels_and_no_acr_is_none_of_them() {
    let policy = step_up_policy();
    let m = policy.route("GET", "/strong");
    let now = at(T0);
    assert_eq!(
        m.decide_at(Some(&authenticated(9_000, Some("phrh"))), now),
        Allow
    );
    assert_eq!(
        m.decide_at(Some(&authenticated(0, Some("urn:example:mfa"))), now),
        Allow
    );
    assert_eq!(
        m.decide_at(Some(&authenticated(0, Some("pwd"))), now),
        StepUp
    );
    assert_eq!(m.decide_at(Some(&authenticated(0, None)), now), StepUp);
    let challenge = m.step_up().challenge(&authenticated(0, None), now).unwrap();
    assert_eq!(challenge.reason(), StepUpReason::Level);
    assert_eq!(challenge.asked().max_age(), None);
    assert_eq!(
        challenge.asked().acr_values_text().as_deref(),
        Some("urn:example:mfa phrh")
    );
    assert_eq!(
        challenge.description(),
        "A different authentication level is required"
    );
}

#[test]
fn both_step_ups_combine_and_the_challenge_names_everything_the_route_asks() {
    let policy = step_up_policy();
    let m = policy.route("GET", "/both");
    let now = at(T0);
    let good = authenticated(10, Some("urn:example:mfa"));
    assert_eq!(m.decide_at(Some(&good), now), Allow);
    for (session, reason) in [
        (authenticated(10, None), StepUpReason::Level),
        (authenticated(400, None), StepUpReason::Level),
        (
            authenticated(400, Some("urn:example:mfa")),
            StepUpReason::Recency,
        ),
    ] {
        assert_eq!(m.decide_at(Some(&session), now), StepUp);
        let challenge = m.step_up().challenge(&session, now).unwrap();
        assert_eq!(challenge.reason(), reason);
        assert_eq!(challenge.asked().max_age_seconds(), Some(300));
        assert_eq!(
            challenge.asked().acr_values_text().as_deref(),
            Some("urn:example:mfa")
        );
    }
    // No step-up: decide_at is decide.
    let plain = policy.route("GET", "/plain");
    assert!(!plain.step_up().is_required());
    assert_eq!(
        plain.decide_at(Some(&authenticated(99_999, None)), now),
        Allow
    );
    let unmatched = policy.route("GET", "/nothing");
    assert!(!unmatched.step_up().is_required());
}

#[test]
fn step_up_settings_that_cannot_work_are_refused_by_the_builder() {
    let build = |rule: Rule| RoutePolicy::builder().rule(rule).build().map(|_| ());
    assert_eq!(
        build(RouteRule::new("/a", Req::Authenticated).max_age(time::Duration::seconds(-1))),
        Err(PolicyError::NegativeMaxAge { rule: 0 })
    );
    assert_eq!(
        build(RouteRule::new("/a", Req::Authenticated).acr(&[])),
        Err(PolicyError::EmptyAcrList { rule: 0 })
    );
    assert!(matches!(
        build(RouteRule::new("/a", Req::Authenticated).acr(&["ok", "not ok"])),
        Err(PolicyError::InvalidAcr { rule: 0, ref value, .. }) if value == "not ok"
    ));
    for requirement in [Req::Public, Req::GuestOnly, Req::Deny] {
        assert_eq!(
            build(RouteRule::new("/a", requirement).max_age(time::Duration::ZERO)),
            Err(PolicyError::StepUpWithoutSession { rule: 0 })
        );
    }
    assert!(build(RouteRule::new("/a", Req::Authenticated).max_age(time::Duration::ZERO)).is_ok());
}

#[test]
fn each_requirements_constructor_makes_the_rule_new_makes() {
    let reports = Capability::parse("reports:read").unwrap();
    let pairs = [
        (Rule::public("/"), Rule::new("/", Req::Public)),
        (
            Rule::guest_only("/login"),
            Rule::new("/login", Req::GuestOnly),
        ),
        (
            Rule::authenticated("/me"),
            Rule::new("/me", Req::Authenticated),
        ),
        (
            Rule::any_role("/mod", [UserRole::Moderator, UserRole::Admin]),
            Rule::new(
                "/mod",
                Req::AnyRole(vec![UserRole::Moderator, UserRole::Admin]),
            ),
        ),
        (
            Rule::at_least_role("/admin", UserRole::Admin),
            Rule::new("/admin", Req::AtLeastRole(UserRole::Admin)),
        ),
        (
            Rule::capability("/reports", reports.clone()),
            Rule::new("/reports", Req::Capability(reports)),
        ),
        (
            Rule::tenant_param("/t/:tenant/*", "tenant"),
            Rule::new("/t/:tenant/*", Req::TenantParam("tenant".to_owned())),
        ),
        (
            Rule::deny("/internal/*"),
            Rule::new("/internal/*", Req::Deny),
        ),
        (
            Rule::not_found("/favicon.ico"),
            Rule::new("/favicon.ico", Req::NotFound),
        ),
    ];
    for (short, long) in pairs {
        assert_eq!(short, long);
    }
}

#[test]
fn a_list_of_rules_is_the_policy_the_builder_makes_of_them_with_everything_else_denied() {
    let rules = || {
        [
            Rule::guest_only("/login").browser(),
            Rule::at_least_role("/admin/*", UserRole::Admin),
        ]
    };
    let listed = RoutePolicy::try_from(rules()).unwrap();
    let built = RoutePolicy::builder().rules(rules()).build().unwrap();
    assert_eq!(
        listed.rules().collect::<Vec<_>>(),
        built.rules().collect::<Vec<_>>()
    );
    assert_eq!(listed.default_requirement(), &Req::Deny);
    assert!(listed.route("GET", "/login").is_browser());
    assert_eq!(listed.route("GET", "/elsewhere").decide(None), Forbidden);
    let bad = RoutePolicy::try_from([Rule::authenticated("admin")]);
    assert!(
        bad.is_err(),
        "a bad pattern is an error, as from the builder"
    );
}
