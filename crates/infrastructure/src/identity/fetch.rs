//! `HttpJwksSource`: a provider's JWKS endpoint over HTTPS (reqwest, rustls).

use std::error::Error as StdError;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CACHE_CONTROL;

use super::cache::{JwksDocument, JwksFetchError, JwksSource};

/// The largest JWK set accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Why an [`HttpJwksSource`] (or an
/// [`OidcDiscovery`](super::OidcDiscovery)) cannot be made: its provider
/// URL, the JWKS URL or the issuer, or a JWKS URL a provider's OpenID
/// configuration names, is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksUrlError {
    /// The URL does not parse (the source says why).
    #[error("the provider URL is not a URL")]
    Invalid(#[source] Box<dyn StdError + Send + Sync>),
    /// The URL is not `https` (plain `http` is accepted for loopback hosts
    /// only, for development and tests).
    #[error("the provider URL must use https (http only for loopback hosts)")]
    NotHttps,
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

/// A JWKS endpoint fetched with reqwest over rustls.
///
/// Every fetch has a timeout, follows no redirect, reads at most
/// [`MAX_JWKS_BYTES`], and reports `Cache-Control: max-age`.
#[derive(Debug, Clone)]
pub struct HttpJwksSource {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl HttpJwksSource {
    /// A source for `url`, each fetch bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// [`JwksUrlError::Invalid`] for a URL that does not parse,
    /// [`JwksUrlError::NotHttps`] for one that is not `https` (or `http` to
    /// a loopback host), [`JwksUrlError::Client`] for a client that cannot
    /// be built.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, JwksUrlError> {
        Ok(Self {
            url: provider_url(url)?,
            client: provider_client(timeout)?,
        })
    }

    /// The JWKS URL.
    #[must_use]
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// A source for `url` with a client already made (by
    /// [`provider_client`]).
    pub(super) fn with_client(url: reqwest::Url, client: reqwest::Client) -> Self {
        Self { client, url }
    }
}

/// `url` parsed, if a provider URL may be it ([`is_https_or_loopback`]).
pub(super) fn provider_url(url: &str) -> Result<reqwest::Url, JwksUrlError> {
    let url = reqwest::Url::parse(url).map_err(|e| JwksUrlError::Invalid(Box::new(e)))?;
    if !is_https_or_loopback(&url) {
        return Err(JwksUrlError::NotHttps);
    }
    Ok(url)
}

/// The client for a provider's documents: every request bounded by
/// `timeout`, no redirect followed.
pub(super) fn provider_client(timeout: Duration) -> Result<reqwest::Client, JwksUrlError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(JwksUrlError::Client)
}

/// GETs the JSON document at `url`: a 200 answer only (a redirect is not
/// followed but refused), at most `max` bytes of UTF-8, with its
/// `Cache-Control: max-age`.
pub(super) async fn get_document(
    client: &reqwest::Client,
    url: &reqwest::Url,
    max: usize,
) -> Result<JwksDocument, JwksFetchError> {
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| JwksFetchError::Unreachable(Box::new(e)))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(JwksFetchError::Status(response.status().as_u16()));
    }
    let max_age = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let body = read_capped(&mut response, max)
        .await
        .map_err(|e| JwksFetchError::Unreachable(Box::new(e)))?
        .ok_or(JwksFetchError::TooLarge(max))?;
    let body = String::from_utf8(body).map_err(|e| JwksFetchError::Unreachable(Box::new(e)))?;
    Ok(JwksDocument { body, max_age })
}

/// Whether a provider URL may be used: `https`, or plain `http` to a
/// loopback host (development and tests).
pub(super) fn is_https_or_loopback(url: &reqwest::Url) -> bool {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = || {
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback())
}

/// The body of `response`, read chunk by chunk; `Ok(None)` as soon as it
/// exceeds `max` bytes.
pub(super) async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| seconds.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[async_trait]
impl JwksSource for HttpJwksSource {
    async fn fetch(&self) -> Result<JwksDocument, JwksFetchError> {
        get_document(&self.client, &self.url, MAX_JWKS_BYTES).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted_and_unparsable_ones_are_invalid() {
        let t = Duration::from_secs(1);
        assert!(HttpJwksSource::new("https://idp.example/.well-known/jwks.json", t).is_ok());
        assert!(HttpJwksSource::new("http://127.0.0.1:8080/jwks", t).is_ok());
        assert!(HttpJwksSource::new("http://localhost/jwks", t).is_ok());
        assert!(matches!(
            HttpJwksSource::new("http://idp.example/jwks", t),
            Err(JwksUrlError::NotHttps)
        ));
        for not_a_url in ["not a url", "", "https://", "https://exa mple.com/jwks"] {
            assert!(
                matches!(
                    HttpJwksSource::new(not_a_url, t),
                    Err(JwksUrlError::Invalid(_))
                ),
                "{not_a_url:?}"
            );
        }
        for not_https in [
            "ftp://idp.example/jwks",
            "file:///etc/jwks.json",
            "http://10.0.0.1/jwks",
        ] {
            assert!(
                matches!(
                    HttpJwksSource::new(not_https, t),
                    Err(JwksUrlError::NotHttps)
                ),
                "{not_https:?}"
            );
        }
    }

    /// A JWKS endpoint over loopback: `/jwks` (with a max-age), `/huge`
    /// (one byte over the cap), `/bare` (no Cache-Control); else 404.
    async fn endpoint(path: &str) -> HttpJwksSource {
        use axum::http::{StatusCode, header};
        use axum::response::IntoResponse;

        let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
            match uri.path() {
                "/jwks" => (
                    [(header::CACHE_CONTROL, "public, max-age=120")],
                    r#"{"keys":[]}"#,
                )
                    .into_response(),
                "/bare" => r#"{"keys":[]}"#.into_response(),
                "/huge" => "x".repeat(MAX_JWKS_BYTES + 1).into_response(),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        HttpJwksSource::new(&format!("http://{addr}{path}"), Duration::from_secs(5)).unwrap()
    }

    #[tokio::test]
    async fn a_fetch_reads_the_body_and_max_age_and_refuses_oversized_or_non_200_answers() {
        let document = endpoint("/jwks").await.fetch().await.unwrap();
        assert_eq!(document.body, r#"{"keys":[]}"#);
        assert_eq!(document.max_age, Some(Duration::from_secs(120)));
        assert_eq!(endpoint("/bare").await.fetch().await.unwrap().max_age, None);
        assert!(matches!(
            endpoint("/huge").await.fetch().await,
            Err(JwksFetchError::TooLarge(MAX_JWKS_BYTES))
        ));
        assert!(matches!(
            endpoint("/gone").await.fetch().await,
            Err(JwksFetchError::Status(404))
        ));
    }
}
