//! Arbitrary requests through the edge, on every framework adapter: no
//! panic, no 5xx but the fail-closed 503, the token never echoed, and every
//! refusal shaped as documented.

use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method, Uri};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tessera::application::ports::{MockRevocationStore, RevocationError};
use tessera::{JwsAlgorithm, KeyRing, Tessera, UserRole};

use crate::http_support::{COOKIE, Routes, Site, Spec, TARGETS, Target, policy, send, site};
use crate::support::{AUDIENCE, ISSUER, lifetimes, signing_key, spawn_app};

/// One generated request.
#[derive(Debug, Clone)]
struct Arbitrary {
    method: Method,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    /// Where to put the valid token, if anywhere: 0 nowhere, 1 bearer,
    /// 2 cookie, 3 both.
    token_at: u8,
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("authorization".to_owned()),
        Just("cookie".to_owned()),
        Just("Authorization".to_owned()),
        Just("X-User-Role".to_owned()),
        Just("x_user_id".to_owned()),
        Just("X-Tenant-Id".to_owned()),
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,24}",
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Anything a header value may hold: visible ASCII, tab, obs-text.
        proptest::collection::vec(
            prop_oneof![0x20_u8..=0x7e, 0x80_u8..=0xff, Just(b'\t')],
            0..120
        ),
        "(Bearer|bearer|Basic|BEARER) ?[ -~]{0,80}".prop_map(String::into_bytes),
        proptest::string::string_regex(&format!(
            "({COOKIE}|a|__Host-session2)=[ -~]{{0,80}}(; [ -~]{{0,30}})?"
        ))
        .unwrap()
        .prop_map(String::into_bytes),
        Just(b"Bearer ".repeat(2000)),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("/me".to_owned()),
        Just("/admin/panel".to_owned()),
        Just("/app/home".to_owned()),
        Just("/login?return_to=%2F%2Fevil".to_owned()),
        Just("/t/acme/billing".to_owned()),
        "/[a-z%./\\\\:@!$&'()*+,;=~_-]{0,40}(\\?[ -~]{0,40})?",
        "(/(me|app|admin|t|login|closed|\\.\\.|\\.|%2e|%2F|%00|acme)){0,5}/?",
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::HEAD),
        Just(Method::DELETE),
        "[A-Za-z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn arbitrary() -> impl Strategy<Value = Arbitrary> {
    (
        method(),
        path(),
        proptest::collection::vec((header_name(), header_value()), 0..6),
        0_u8..4,
    )
        .prop_map(|(method, path, headers, token_at)| Arbitrary {
            method,
            path,
            headers,
            token_at,
        })
}

fn request(input: &Arbitrary, token: &str) -> Option<Spec> {
    // What an HTTP/1.1 request line can carry: no white space (it would
    // split the line, and the server itself answers 400) and no fragment
    // (clients never send one).
    if input
        .path
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b'#')
    {
        return None;
    }
    Uri::try_from(input.path.as_str()).ok()?;
    let mut spec = Spec {
        method: input.method.clone(),
        path: input.path.clone(),
        headers: Vec::new(),
    };
    if input.token_at & 1 == 1 {
        spec.headers.push((
            HeaderName::from_static("authorization"),
            HeaderValue::from_str(&format!("Bearer {token}")).ok()?,
        ));
    }
    if input.token_at & 2 == 2 {
        spec.headers.push((
            HeaderName::from_static("cookie"),
            HeaderValue::from_str(&format!("{COOKIE}={token}")).ok()?,
        ));
    }
    for (name, value) in &input.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        spec.headers.push((name, value));
    }
    Some(spec)
}

/// Runs arbitrary requests to `site` on every target; `allowed_5xx` is the
/// only server error status accepted.
fn run(site: &Site, token: &str, allowed_5xx: Option<u16>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for &target in TARGETS {
        run_on(&runtime, target, site, token, allowed_5xx);
    }
}

fn run_on(
    runtime: &tokio::runtime::Runtime,
    target: Target,
    site: &Site,
    token: &str,
    allowed_5xx: Option<u16>,
) {
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&arbitrary(), |input| {
            let Some(spec) = request(&input, token) else {
                return Ok(());
            };
            let reply = runtime.block_on(send(target, site.clone(), &spec));
            let (status, headers, body) = (reply.status, reply.headers, reply.body);
            // HEAD answers carry no body.
            let has_body = input.method != Method::HEAD;
            if status.is_server_error() {
                prop_assert_eq!(
                    Some(status.as_u16()),
                    allowed_5xx,
                    "{:?} {:?}",
                    target,
                    input
                );
                let unavailable = body == "{\"error\":\"temporarily_unavailable\"}";
                prop_assert!(!has_body || unavailable, "{}", body);
            }
            prop_assert!(!body.contains(token), "the token is never echoed");
            if status.as_u16() == 401 {
                let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap();
                prop_assert!(challenge.starts_with("Bearer"));
            }
            if status.as_u16() == 303 {
                let location = headers.get("location").unwrap().to_str().unwrap();
                prop_assert!(location.starts_with('/'), "{}", location);
                prop_assert!(!location.starts_with("//") && !location.contains('\\'));
            }
            // The edge's refusals (the router's own 404/405 are not).
            if matches!(status.as_u16(), 400 | 401 | 403) && has_body {
                prop_assert!(body.starts_with("{\"error\":\""), "{:?}: {}", target, body);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_requests_never_panic_and_never_get_a_server_error() {
    let app = spawn_app(KeyRing::new(signing_key(JwsAlgorithm::EdDsa, "k1")));
    let token = app.sign_in_alice().token.expose_secret().to_owned();
    let edge = app.sessions.edge(policy()).build().unwrap();
    run(&site(edge, Routes::Standard), &token, None);
}

#[test]
fn arbitrary_requests_get_no_server_error_but_503_when_revocation_state_is_untrusted() {
    let ring = KeyRing::new(signing_key(JwsAlgorithm::EdDsa, "k1"));
    let app = spawn_app(ring.clone());
    let token = app.sign_in_alice().token.expose_secret().to_owned();
    let mut store = MockRevocationStore::new();
    store
        .expect_check()
        .returning(|_| Err(RevocationError::Unavailable("stale cache".into())));
    let sessions: Tessera<UserRole> = Tessera::builder(ring, ISSUER, AUDIENCE)
        .lifetimes(lifetimes())
        .clock(app.clock.clone())
        .user_directory(app.directory.clone())
        .revocation_store(Arc::new(store))
        .build();
    let edge = sessions.edge(policy()).build().unwrap();
    run(&site(edge, Routes::Standard), &token, Some(503));
}
