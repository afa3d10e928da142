//! The demo server's curl walkthrough, run step by step against the demo's
//! own router on a loopback port, with cookie jars kept as curl keeps them;
//! and (feature `actix`) against the actix-web demo, which must answer
//! every step exactly as the axum demo does.

use std::collections::HashMap;

use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

use crate::http_support::{client, serve};

// The example's source, compiled here so that the test drives exactly the
// router and the walkthrough `cargo run --example demo` serves and prints.
#[allow(dead_code)] // `main` and the items only `main` uses.
#[path = "../../examples/demo.rs"]
pub(crate) mod demo;

// `dead_code`: `main` and the items only `main` uses. `duplicate_mod`: each
// demo includes the shared `demo_common` module itself, as `cargo run
// --example` builds it; compiled side by side here, it is loaded twice.
#[cfg(feature = "actix")]
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../examples/demo_actix.rs"]
mod demo_actix;

/// Serves the actix-web demo on a free loopback port.
#[cfg(feature = "actix")]
pub(crate) fn serve_actix_demo() -> std::net::SocketAddr {
    let (demo, middleware) = demo_actix::app().unwrap();
    let routes = demo_actix::configure(demo);
    crate::http_actix::serve_on_own_thread(move |listener| {
        actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .wrap(middleware.clone())
                .wrap(actix_web::middleware::from_fn(
                    demo_actix::pages_for_browsers,
                ))
                .configure(routes.clone())
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run()
    })
}

/// What one walkthrough step got: status, `Location`, and the body.
type Answer = (u16, Option<String>, String);

/// A curl cookie jar: name → value, for one file.
type Jar = HashMap<String, String>;

fn store(jar: &mut Jar, response: &reqwest::Response) {
    for value in response.headers().get_all(SET_COOKIE) {
        let cookie = cookie::Cookie::parse(value.to_str().unwrap().to_owned()).unwrap();
        let expired = cookie
            .max_age()
            .is_some_and(|age| age.is_zero() || age.is_negative());
        if expired || cookie.value().is_empty() {
            jar.remove(cookie.name());
        } else {
            jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
        }
    }
}

/// Runs the printed walkthrough against the demo at `address`, asserting
/// each step as printed; returns what each step got.
async fn walk(address: std::net::SocketAddr) -> Vec<Answer> {
    let mut answers = Vec::new();
    let base = format!("http://{address}");
    let printed = demo::walkthrough_text(&base);
    let mut jars: HashMap<&str, Jar> = HashMap::new();
    let mut token = String::new();

    for (number, step) in demo::walkthrough().iter().enumerate() {
        let what = format!("step {} ({})", number + 1, step.note);
        assert!(printed.contains(&step.curl(&base)), "{what} is printed");

        let method = http::Method::from_bytes(step.method.as_bytes()).unwrap();
        let mut request = client().request(method, format!("{base}{}", step.path));
        if let Some(jar) = step.send_jar {
            let cookies: Vec<String> = jars
                .get(jar)
                .into_iter()
                .flatten()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            if !cookies.is_empty() {
                request = request.header(COOKIE, cookies.join("; "));
            }
        }
        if step.bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(form) = step.form {
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form);
        }
        let response = request.send().await.unwrap();
        if let Some(jar) = step.store_jar {
            store(jars.entry(jar).or_default(), &response);
        }
        assert_eq!(response.status().as_u16(), step.status, "{what}");
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        if step.status == 303 {
            assert_eq!(location.as_deref(), Some(step.expect), "{what}");
        } else {
            assert!(body.contains(step.expect), "{what}: {body}");
        }
        if step.capture_token {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            json["access_token"]
                .as_str()
                .unwrap()
                .clone_into(&mut token);
        }
        if let Some(jar) = step.store_jar {
            assert!(
                jars[jar].contains_key("__Host-session"),
                "{what}: the session cookie is in {jar}"
            );
        }
        // What differs from run to run (a token signed with each demo's
        // fresh key, a session id, an expiry second) is compared by being
        // there.
        let comparable = match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(mut json)) => {
                for per_run in ["access_token", "session_id", "expires_at"] {
                    if let Some(value) = json.get_mut(per_run) {
                        *value = serde_json::Value::from(format!("<{per_run}>"));
                    }
                }
                serde_json::Value::Object(json).to_string()
            }
            _ => body,
        };
        answers.push((status, location, comparable));
    }
    answers
}

#[tokio::test]
async fn the_demo_walkthrough_works_as_printed() {
    walk(serve(demo::app().unwrap()).await).await;
}

#[cfg(feature = "actix")]
#[tokio::test]
async fn the_actix_demo_answers_the_walkthrough_exactly_as_the_axum_demo() {
    let axum = walk(serve(demo::app().unwrap()).await).await;
    let actix = walk(serve_actix_demo()).await;
    assert_eq!(axum.len(), actix.len());
    for (number, (a, b)) in axum.iter().zip(&actix).enumerate() {
        assert_eq!(a, b, "step {}", number + 1);
    }
}

#[tokio::test]
async fn the_demo_login_form_keeps_only_a_safe_return_to() {
    let address = serve(demo::app().unwrap()).await;
    let page = |query: &'static str| {
        let url = format!("http://{address}/login?{query}");
        async move {
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert!(
        page("return_to=%2Fadmin")
            .await
            .contains(r#"name="return_to" value="/admin""#)
    );
    assert!(
        !page("return_to=%2F%2Fevil.example")
            .await
            .contains("return_to")
    );
    assert!(
        !page("return_to=https%3A%2F%2Fevil.example")
            .await
            .contains("return_to")
    );
}

#[tokio::test]
async fn signing_in_from_the_form_returns_to_a_safe_page_only() {
    let address = serve(demo::app().unwrap()).await;
    let sign_in = |form: &'static str| {
        let url = format!("http://{address}/login");
        async move {
            client()
                .post(url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap()
        }
    };
    let back = sign_in("username=alice&return_to=%2Fadmin").await;
    assert_eq!(back.status().as_u16(), 303);
    assert_eq!(back.headers()[LOCATION], "/admin");
    assert_eq!(back.headers()["cache-control"], "no-store");
    assert!(back.headers().get(SET_COOKIE).is_some());
    let evil = sign_in("username=alice&return_to=%2F%2Fevil.example").await;
    assert_eq!(evil.status().as_u16(), 303);
    assert_eq!(evil.headers()[LOCATION], "/", "an unsafe target is ignored");
    let unknown = sign_in("username=mallory").await;
    assert_eq!(unknown.status().as_u16(), 400);
    assert!(unknown.headers().get(SET_COOKIE).is_none());
}

/// A browser's request: it asks for pages.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn browsers_get_pages_without_the_token_and_api_clients_get_json() {
    let mut demos = vec![serve(demo::app().unwrap()).await];
    #[cfg(feature = "actix")]
    demos.push(serve_actix_demo());
    for address in demos {
        let http = client();
        let signed_in = http
            .post(format!("http://{address}/login"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, BROWSER_ACCEPT)
            .body("username=bob")
            .send()
            .await
            .unwrap();
        let mut jar = Jar::new();
        store(&mut jar, &signed_in);
        let token = jar["__Host-session"].clone();
        assert!(!signed_in.text().await.unwrap().contains(&token));
        let cookie = format!("__Host-session={token}");
        for path in ["/", "/dashboard", "/admin", "/login"] {
            let page = http
                .get(format!("http://{address}{path}"))
                .header(COOKIE, &cookie)
                .header(http::header::ACCEPT, BROWSER_ACCEPT)
                .send()
                .await
                .unwrap();
            let content_type = page.headers().get(CONTENT_TYPE).cloned();
            let status = page.status().as_u16();
            let body = page.text().await.unwrap();
            assert!(
                !body.contains(&token),
                "{address}{path}: the token is in the page"
            );
            if status != 303 {
                assert_eq!(
                    content_type.unwrap(),
                    "text/html; charset=utf-8",
                    "{address}{path} ({status}): {body}"
                );
            }
            if path == "/admin" {
                assert_eq!(status, 403, "{address}: bob is no admin");
                assert!(body.contains("Your role may not see this page"), "{body}");
            }
        }
        // The same refusal for an API client: JSON.
        let api = http
            .get(format!("http://{address}/admin"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(api.status().as_u16(), 403);
        assert_eq!(
            api.text().await.unwrap(),
            r#"{"error":"insufficient_scope"}"#
        );
    }
}

/// The session cookie a demo sign-in set, as a `Cookie` header value.
#[cfg(feature = "postgres")]
fn session_cookie(response: &reqwest::Response) -> String {
    let mut jar = Jar::new();
    store(&mut jar, response);
    let value = jar
        .get("__Host-session")
        .expect("sign-in sets the session cookie");
    format!("__Host-session={value}")
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn two_demo_instances_on_postgres_share_sessions_and_force_logout() {
    let Some(url) = crate::support::database_url() else {
        return;
    };
    let first = serve(demo::postgres_app(&url).await.unwrap()).await;
    let second = serve(demo::postgres_app(&url).await.unwrap()).await;
    let http = client();

    // Bob signs in on the first instance; his cookie works on the second.
    let signed_in = http
        .post(format!("http://{first}/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("username=bob")
        .send()
        .await
        .unwrap();
    let bob = session_cookie(&signed_in);
    let me = |address: std::net::SocketAddr, cookie: String| {
        let http = http.clone();
        async move {
            http.get(format!("http://{address}/me"))
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(second, bob.clone()).await, 200, "one key, one directory");

    // Alice, signed in on the second instance, force-logs-out Bob there...
    let alice_signed_in = http
        .post(format!("http://{second}/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("username=alice")
        .send()
        .await
        .unwrap();
    let alice = session_cookie(&alice_signed_in);
    let status = http
        .post(format!("http://{second}/admin/users/bob/force-logout"))
        .header(COOKIE, alice)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "force-logout answered {status}");

    // ...and the first instance refuses Bob too, within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = me(first, bob.clone()).await;
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first instance still answers {status} for Bob after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_demo_answers_404_for_paths_it_does_not_serve() {
    let mut demos = vec![serve(demo::app().unwrap()).await];
    #[cfg(feature = "actix")]
    demos.push(serve_actix_demo());
    for address in demos {
        let response = client()
            .get(format!("http://{address}/favicon.ico"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{address}");
        assert_eq!(response.text().await.unwrap(), r#"{"error":"not_found"}"#);
    }
}
