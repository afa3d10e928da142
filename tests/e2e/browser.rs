//! The demo in a real browser: headless Chromium (Debian's `chromium`),
//! driven over WebDriver (Debian's `chromedriver`, through fantoccini).
//!
//! A user signs in with the form and comes back to the page they asked
//! for, sees pages as an admin and as a plain user, force-logs-out another
//! user and signs out with the pages' buttons. Pages served from another
//! port of the same host (same site, another origin) and from another
//! site auto-submit forms to force-logout, sign-out and sign-in: every one
//! is refused and nothing changes. Run on the axum demo and, with feature
//! `actix`, on the actix-web demo.
//!
//! `scripts/test.sh` installs `chromium` and `chromium-driver` when they
//! are missing and sets `TESSERA_REQUIRE_BROWSER=1`, so that these tests
//! cannot pass by skipping; plain `cargo test` skips them, saying so, on a
//! machine without the browser.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::response::Html;
use axum::routing::get;
use fantoccini::{Client, ClientBuilder, Locator};
use http::header::CONTENT_TYPE;

use crate::http_demo::demo;
use crate::http_support::{client, serve};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and the browser session it drives; both end
/// when this is dropped.
struct Browser {
    client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Headless Chromium, or `None` (said on stderr) where it is not
/// installed and not required.
async fn browser() -> Option<Browser> {
    if std::env::var("TESSERA_SKIP_BROWSER").is_ok_and(|skip| skip == "1") {
        eprintln!("skipped: TESSERA_SKIP_BROWSER=1");
        return None;
    }
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !std::path::Path::new(path).exists())
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("TESSERA_REQUIRE_BROWSER").is_err(),
            "TESSERA_REQUIRE_BROWSER is set but {missing:?} is missing: \
             apt-get install chromium chromium-driver"
        );
        eprintln!(
            "skipped: {missing:?} missing (apt-get install chromium chromium-driver; \
             ./scripts/test.sh installs them)"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": CHROMIUM,
            // No network beyond loopback here: nothing in the background.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "chromedriver did not start: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    Some(Browser { client, driver })
}

/// The attacker's server: `/form?action=URL&name=value…` is a page whose
/// form posts `name=value…` to `action` as soon as it loads.
async fn attacker() -> SocketAddr {
    async fn form(Query(fields): Query<Vec<(String, String)>>) -> Html<String> {
        let escape = |text: &str| {
            text.replace('&', "&amp;")
                .replace('"', "&quot;")
                .replace('<', "&lt;")
        };
        let action = fields
            .iter()
            .find(|(name, _)| name == "action")
            .map(|(_, value)| escape(value))
            .unwrap_or_default();
        let inputs: String = fields
            .iter()
            .filter(|(name, _)| name != "action")
            .map(|(name, value)| {
                format!(
                    r#"<input type=hidden name="{}" value="{}">"#,
                    escape(name),
                    escape(value)
                )
            })
            .collect();
        Html(format!(
            "<!doctype html><title>You won a prize</title>\
             <form id=f method=post action=\"{action}\">{inputs}</form>\
             <script>document.getElementById('f').submit()</script>"
        ))
    }
    // On every loopback address: 127.0.0.1 is the demo's site, 127.0.0.2
    // another site.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().route("/form", get(form));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

impl Browser {
    /// Waits until the page at a URL starting with `url` contains `text`;
    /// returns the page's source.
    async fn wait_for(&self, url: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let current = self.client.current_url().await.unwrap();
            let source = self.client.source().await.unwrap();
            if current.as_str().starts_with(url) && source.contains(text) {
                return source;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {text:?} at {url}; the browser is at {current}: {source}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the browser holds the demo's session cookie.
    async fn has_session_cookie(&self) -> bool {
        self.client
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .any(|cookie| cookie.name() == "__Host-session" && !cookie.value().is_empty())
    }

    /// Clicks the button of the form posting to `action` on this page.
    async fn press(&self, action: &str) {
        self.client
            .find(Locator::Css(&format!(r#"form[action="{action}"] button"#)))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Signs in as `name` with the demo's own form on the current page.
    async fn sign_in_as(&self, name: &str) {
        self.client
            .find(Locator::Css("select[name=username]"))
            .await
            .unwrap()
            .select_by_value(name)
            .await
            .unwrap();
        self.press("/login").await;
    }

    /// Opens the attacker's page at `origin` that posts `fields` to `action`.
    async fn attack(&self, origin: &str, action: &str, fields: &[(&str, &str)]) {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("action", action);
        for (name, value) in fields {
            query.append_pair(name, value);
        }
        self.client
            .goto(&format!("{origin}/form?{}", query.finish()))
            .await
            .unwrap();
    }
}

/// Bob, signed in as an API client: his bearer token.
async fn bob_token(base: &str) -> String {
    let reply = client()
        .post(format!("{base}/api/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("username=bob")
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
    json["access_token"].as_str().unwrap().to_owned()
}

/// What `/me` answers to `token`.
async fn me(base: &str, token: &str) -> u16 {
    client()
        .get(format!("{base}/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// What a refused cross-origin form shows in the browser.
const REFUSED: &str = "This form was sent from another site, so it was refused";

/// The whole visit, against the demo at `demo`.
async fn visit(browser: &Browser, demo: SocketAddr, attacker: SocketAddr) {
    let base = format!("http://{demo}");
    // Same site (same host), another origin (another port).
    let same_site = format!("http://127.0.0.1:{}", attacker.port());
    let cross_site = format!("http://127.0.0.2:{}", attacker.port());
    let bob = bob_token(&base).await;
    assert_eq!(me(&base, &bob).await, 200);

    // A guest asking for the admin page is sent to sign in, and back.
    browser.client.goto(&format!("{base}/admin")).await.unwrap();
    browser
        .wait_for(&format!("{base}/login?return_to=%2Fadmin"), "Sign in")
        .await;
    browser.sign_in_as("alice").await;
    browser
        .wait_for(&format!("{base}/admin"), "Admin page for alice")
        .await;
    assert!(
        browser.has_session_cookie().await,
        "the browser keeps the Secure cookie on http://127.0.0.1"
    );

    // Forms from elsewhere: refused, nothing changes.
    for origin in [&same_site, &cross_site] {
        let force_logout = format!("{base}/admin/users/bob/force-logout");
        browser.attack(origin, &force_logout, &[]).await;
        browser.wait_for(&force_logout, REFUSED).await;
        assert_eq!(
            me(&base, &bob).await,
            200,
            "{origin}: bob is still signed in"
        );

        browser.attack(origin, &format!("{base}/logout"), &[]).await;
        browser.wait_for(&format!("{base}/logout"), REFUSED).await;
        browser.client.goto(&format!("{base}/admin")).await.unwrap();
        browser
            .wait_for(&format!("{base}/admin"), "Admin page for alice")
            .await;
    }

    // The same forms from the demo's own pages: accepted.
    browser.press("/admin/users/bob/force-logout").await;
    browser
        .wait_for(&format!("{base}/admin"), "Admin page for alice")
        .await;
    assert_eq!(me(&base, &bob).await, 401, "bob is force-logged-out");
    browser.press("/logout").await;
    browser.wait_for(&format!("{base}/login"), "Sign in").await;
    assert!(!browser.has_session_cookie().await, "signed out: no cookie");

    // Signing the visitor in as someone else from elsewhere (login CSRF):
    // refused, no cookie.
    for origin in [&same_site, &cross_site] {
        browser
            .attack(origin, &format!("{base}/login"), &[("username", "bob")])
            .await;
        browser.wait_for(&format!("{base}/login"), REFUSED).await;
        assert!(!browser.has_session_cookie().await, "{origin}: no session");
    }

    // Bob signs in with the form: his pages, not the admin's. Token times
    // are whole seconds and a force-logout covers its own second (fail
    // closed), so a session from that second would be refused: wait it out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    browser.client.goto(&format!("{base}/login")).await.unwrap();
    browser.sign_in_as("bob").await;
    browser
        .wait_for(&format!("{base}/"), "Signed in as <b>bob</b>")
        .await;
    browser.client.goto(&format!("{base}/admin")).await.unwrap();
    browser
        .wait_for(&format!("{base}/admin"), "Your role may not see this page")
        .await;
    browser
        .client
        .goto(&format!("{base}/dashboard"))
        .await
        .unwrap();
    browser
        .wait_for(&format!("{base}/dashboard"), "Hello bob")
        .await;
    browser.press("/logout").await;
    browser.wait_for(&format!("{base}/login"), "Sign in").await;
}

#[tokio::test]
async fn in_a_real_browser_the_demo_signs_in_and_out_and_refuses_every_cross_origin_form() {
    let Some(browser) = browser().await else {
        return;
    };
    let attacker = attacker().await;
    let mut demos = vec![serve(demo::app().unwrap()).await];
    #[cfg(feature = "actix")]
    demos.push(crate::http_demo::serve_actix_demo());
    for address in demos {
        visit(&browser, address, attacker).await;
        browser.client.delete_all_cookies().await.unwrap();
    }
    browser.client.clone().close().await.unwrap();
}
