//! Route-policy lookups: the compiled trie on 300 and 10 rules, against a
//! linear first-match scan of the same 300 rules.
//!
//! `CARGO_TARGET_DIR=/work/target-policy cargo bench -p tessera-domain --bench policy -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)] // criterion macros generate undocumented items
#![allow(clippy::unwrap_used)] // a bench with a bad table should just stop

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tessera_domain::policy::{MatchKind, Requirement, RoutePolicy, RouteRule};
use tessera_domain::{Capability, UserRole};

/// 50 resources × 6 rules: collection and item routes split by method,
/// tenant-scoped prefixes and browser pages.
fn large_policy() -> RoutePolicy<UserRole> {
    let mut builder = RoutePolicy::builder();
    for i in 0..50 {
        builder = builder
            .rule(
                RouteRule::new(&format!("/api/v1/res{i}"), Requirement::Authenticated)
                    .methods(&["GET"]),
            )
            .rule(
                RouteRule::new(
                    &format!("/api/v1/res{i}"),
                    Requirement::AtLeastRole(UserRole::Moderator),
                )
                .methods(&["POST"]),
            )
            .rule(
                RouteRule::new(&format!("/api/v1/res{i}/:id"), Requirement::Authenticated)
                    .methods(&["GET"]),
            )
            .rule(
                RouteRule::new(
                    &format!("/api/v1/res{i}/:id"),
                    Requirement::AtLeastRole(UserRole::Admin),
                )
                .methods(&["PUT", "PATCH", "DELETE"]),
            )
            .rule(RouteRule::new(
                &format!("/tenants/:tenant/res{i}/*"),
                Requirement::All(vec![
                    Requirement::TenantParam("tenant".into()),
                    Requirement::Capability(Capability::parse(&format!("res{i}:read")).unwrap()),
                ]),
            ))
            .rule(RouteRule::new(&format!("/app/res{i}/*"), Requirement::Authenticated).browser());
    }
    builder.build().unwrap()
}

fn small_policy() -> RoutePolicy<UserRole> {
    RoutePolicy::builder()
        .rule(RouteRule::new("/login", Requirement::GuestOnly).browser())
        .rule(RouteRule::new("/health", Requirement::Public).methods(&["GET"]))
        .rule(RouteRule::new("/static/*", Requirement::Public))
        .rule(RouteRule::new("/admin/*", Requirement::AtLeastRole(UserRole::Admin)).browser())
        .rule(RouteRule::new("/api/v1/me", Requirement::Authenticated))
        .rule(RouteRule::new("/api/v1/posts", Requirement::Public).methods(&["GET"]))
        .rule(RouteRule::new("/api/v1/posts", Requirement::Authenticated).methods(&["POST"]))
        .rule(RouteRule::new("/api/v1/posts/:id", Requirement::Public).methods(&["GET"]))
        .rule(RouteRule::new(
            "/tenants/:tenant/*",
            Requirement::TenantParam("tenant".into()),
        ))
        .rule(RouteRule::new("/app/*", Requirement::Authenticated).browser())
        .build()
        .unwrap()
}

const LARGE_REQUESTS: [(&str, &str, &str); 5] = [
    ("first", "GET", "/api/v1/res0"),
    ("middle", "PUT", "/api/v1/res25/123"),
    ("tenant", "GET", "/tenants/acme/res40/invoices/7?page=2"),
    ("last", "GET", "/app/res49/dashboard"),
    ("miss", "GET", "/nowhere/at/all"),
];

const SMALL_REQUESTS: [(&str, &str, &str); 3] = [
    ("first", "GET", "/login"),
    ("last", "GET", "/app/home"),
    ("miss", "GET", "/nowhere/at/all"),
];

fn bench_policy(c: &mut Criterion) {
    let large = large_policy();
    let small = small_policy();
    for (_, method, path) in LARGE_REQUESTS {
        assert_eq!(
            large.route(method, path).kind(),
            large.route_linear(method, path).kind()
        );
    }
    assert_eq!(
        large.route("GET", "/app/res49/dashboard").kind(),
        MatchKind::Rule(299)
    );

    let mut group = c.benchmark_group("policy");
    for (name, method, path) in LARGE_REQUESTS {
        group.bench_with_input(
            BenchmarkId::new("trie_300", name),
            &(method, path),
            |b, &(m, p)| {
                b.iter(|| large.route(black_box(m), black_box(p)).kind());
            },
        );
        group.bench_with_input(
            BenchmarkId::new("linear_300", name),
            &(method, path),
            |b, &(m, p)| {
                b.iter(|| large.route_linear(black_box(m), black_box(p)).kind());
            },
        );
    }
    for (name, method, path) in SMALL_REQUESTS {
        group.bench_with_input(
            BenchmarkId::new("trie_10", name),
            &(method, path),
            |b, &(m, p)| {
                b.iter(|| small.route(black_box(m), black_box(p)).kind());
            },
        );
    }
    group.bench_function("trie_300_decide/tenant", |b| {
        b.iter(|| {
            large
                .route(
                    black_box("GET"),
                    black_box("/tenants/acme/res40/invoices/7"),
                )
                .decide(black_box(None))
        });
    });
    group.finish();
}

criterion_group!(benches, bench_policy);
criterion_main!(benches);
