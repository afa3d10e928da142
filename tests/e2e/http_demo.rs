//! The demo server's curl walkthrough, run step by step against the demo's
//! own router on a loopback port, with cookie jars kept as curl keeps them.

use std::collections::HashMap;

use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

use crate::http_support::{client, serve};

// The example's source, compiled here so that the test drives exactly the
// router and the walkthrough `cargo run --example demo` serves and prints.
#[allow(dead_code)] // `main` and the items only `main` uses.
#[path = "../../examples/demo.rs"]
mod demo;

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

#[tokio::test]
async fn the_demo_walkthrough_works_as_printed() {
    let address = serve(demo::app().unwrap()).await;
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
        let body = response.text().await.unwrap();
        if step.status == 303 {
            assert_eq!(location.as_deref(), Some(step.expect), "{what}");
        } else {
            assert!(body.contains(step.expect), "{what}: {body}");
        }
        if step.capture_token {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            json["token"].as_str().unwrap().clone_into(&mut token);
        }
        if let Some(jar) = step.store_jar {
            assert!(
                jars[jar].contains_key("__Host-session"),
                "{what}: the session cookie is in {jar}"
            );
        }
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
    assert!(back.headers().get(SET_COOKIE).is_some());
    let evil = sign_in("username=alice&return_to=%2F%2Fevil.example").await;
    assert_eq!(evil.status().as_u16(), 200, "an unsafe target is ignored");
    let unknown = sign_in("username=mallory").await;
    assert_eq!(unknown.status().as_u16(), 400);
}
