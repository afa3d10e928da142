//! `OidcDiscovery`: a provider's keys found from its issuer URL alone,
//! through its OpenID configuration (OpenID Connect Discovery 1.0 §4):
//! `{issuer}/.well-known/openid-configuration` → `jwks_uri`.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use serde::Deserialize;

use super::cache::{JwksDocument, JwksFetchError, JwksSource};
use super::fetch::{HttpJwksSource, JwksUrlError, get_document, provider_client, provider_url};

/// The largest OpenID configuration document accepted, in bytes (real ones
/// are a few KiB).
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;

/// The path the OpenID configuration lives at, under the issuer.
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Why the JWKS URL could not be found through the OpenID configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The OpenID configuration could not be fetched: unreachable, an
    /// answer other than 200 (a redirect included), or too large.
    #[error("the OpenID configuration could not be fetched")]
    Fetch(#[source] Box<JwksFetchError>),
    /// The document is not a JSON object with string `issuer` and
    /// `jwks_uri` members; the text names what is wrong.
    #[error("the OpenID configuration is malformed: {0}")]
    Malformed(&'static str),
    /// The document's `issuer` is not the configured issuer, compared
    /// exactly (OpenID Connect Discovery 1.0 §4.3): its keys are not this
    /// provider's.
    #[error("the OpenID configuration names issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The document's `jwks_uri` does not parse, or is neither `https` nor
    /// `http` to a loopback host.
    #[error("the OpenID configuration's jwks_uri is unusable")]
    JwksUri(#[source] JwksUrlError),
}

impl DiscoveryError {
    /// A stable, machine-readable code for this failure, for logs and tools.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Fetch(_) => "discovery_unavailable",
            Self::Malformed(_) => "discovery_malformed",
            Self::IssuerMismatch { .. } => "discovery_issuer_mismatch",
            Self::JwksUri(_) => "discovery_jwks_uri_unusable",
        }
    }
}

/// The members of an OpenID configuration read here; others are ignored.
#[derive(Deserialize)]
struct Configuration {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// A provider's JWK set, found from its issuer URL through its OpenID
/// configuration: a [`JwksSource`] for a [`KeyCache`](super::KeyCache)
/// (or [`ProviderBuilder::discover`](super::ProviderBuilder::discover),
/// which makes one from the provider's issuer).
///
/// The first fetch reads `{issuer}/.well-known/openid-configuration` (any
/// terminating `/` of the issuer removed first, as OpenID Connect
/// Discovery 1.0 §4 says), checks that its `issuer` is the configured one
/// exactly, and keeps its `jwks_uri`; every fetch then reads the JWK set
/// there. The configuration is read again only after a JWK set fetch
/// fails (the provider may have moved its keys), and so no more often than
/// the key cache retries. Both documents are fetched by the rules of
/// [`HttpJwksSource`]: `https` (plain `http` to loopback hosts only), no
/// redirect followed, a timeout, and a size cap ([`MAX_DISCOVERY_BYTES`]
/// for the configuration).
#[derive(Debug)]
pub struct OidcDiscovery {
    issuer: String,
    configuration: reqwest::Url,
    client: reqwest::Client,
    jwks: ArcSwapOption<HttpJwksSource>,
}

impl OidcDiscovery {
    /// A source for the provider `issuer` (its URL, exactly as its tokens'
    /// `iss` says), each request bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// [`JwksUrlError::Invalid`] for an issuer that is not a URL,
    /// [`JwksUrlError::NotHttps`] for one that is not `https` (or `http` to
    /// a loopback host), [`JwksUrlError::Client`] for a client that cannot
    /// be built.
    pub fn new(issuer: &str, timeout: Duration) -> Result<Self, JwksUrlError> {
        provider_url(issuer)?;
        let configuration = provider_url(&format!("{}{WELL_KNOWN}", issuer.trim_end_matches('/')))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            configuration,
            client: provider_client(timeout)?,
            jwks: ArcSwapOption::empty(),
        })
    }

    /// The URL of the OpenID configuration.
    #[must_use]
    pub fn configuration_url(&self) -> &str {
        self.configuration.as_str()
    }

    /// The JWKS URL the configuration named, once read.
    #[must_use]
    pub fn jwks_uri(&self) -> Option<String> {
        self.jwks
            .load()
            .as_ref()
            .map(|source| source.url().to_owned())
    }

    /// Reads the configuration and returns a source for its `jwks_uri`.
    async fn discover(&self) -> Result<HttpJwksSource, DiscoveryError> {
        let document = get_document(&self.client, &self.configuration, MAX_DISCOVERY_BYTES)
            .await
            .map_err(|e| DiscoveryError::Fetch(Box::new(e)))?;
        let configuration: Configuration = serde_json::from_str(&document.body)
            .map_err(|_| DiscoveryError::Malformed("not a JSON object with string members"))?;
        let found = configuration
            .issuer
            .ok_or(DiscoveryError::Malformed("no issuer"))?;
        if found != self.issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: self.issuer.clone(),
                found,
            });
        }
        let jwks_uri = configuration
            .jwks_uri
            .ok_or(DiscoveryError::Malformed("no jwks_uri"))?;
        let url = provider_url(&jwks_uri).map_err(DiscoveryError::JwksUri)?;
        Ok(HttpJwksSource::with_client(url, self.client.clone()))
    }
}

#[async_trait]
impl JwksSource for OidcDiscovery {
    async fn fetch(&self) -> Result<JwksDocument, JwksFetchError> {
        let source = match self.jwks.load_full() {
            Some(source) => source,
            None => {
                let source = Arc::new(self.discover().await.map_err(JwksFetchError::Discovery)?);
                self.jwks.store(Some(Arc::clone(&source)));
                source
            }
        };
        let fetched = source.fetch().await;
        if fetched.is_err() {
            // Read the configuration again next time: the keys may have moved.
            self.jwks.store(None);
        }
        fetched
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::http::{StatusCode, Uri, header};
    use axum::response::{IntoResponse, Response};
    use serde_json::json;
    use tessera_application::external::{ExternalTokenVerifier, TokenUse};
    use tessera_domain::UserRole;

    use super::*;
    use crate::identity::{
        CachePolicy, ClaimMapping, IdentityProvider, JwksTokenVerifier, MissingRole,
        ProviderConfigError, TokenProfile, TypRule,
    };
    use crate::jose::{self, JwsAlgorithm, KeyRing, SigningKey};

    /// A provider on loopback: its OpenID configuration (at the issuer's
    /// well-known path, or anything else), its JWK sets, counting requests.
    #[derive(Default)]
    struct Provider {
        configuration: Mutex<String>,
        jwks: Mutex<Option<String>>,
        configuration_reads: AtomicU64,
        jwks_reads: AtomicU64,
    }

    impl Provider {
        fn answer(&self, path: &str) -> Response {
            match path {
                "/tenant/.well-known/openid-configuration" => {
                    self.configuration_reads.fetch_add(1, Ordering::SeqCst);
                    self.configuration.lock().unwrap().clone().into_response()
                }
                "/tenant/keys" => {
                    self.jwks_reads.fetch_add(1, Ordering::SeqCst);
                    match self.jwks.lock().unwrap().clone() {
                        Some(jwks) => jwks.into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
                "/moved/.well-known/openid-configuration" => (
                    StatusCode::FOUND,
                    [(header::LOCATION, "/tenant/.well-known/openid-configuration")],
                )
                    .into_response(),
                "/huge/.well-known/openid-configuration" => {
                    " ".repeat(MAX_DISCOVERY_BYTES + 1).into_response()
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }

        fn configure(&self, configuration: &serde_json::Value) {
            *self.configuration.lock().unwrap() = configuration.to_string();
        }

        fn publish(&self, keys: &[&SigningKey]) {
            let ring =
                KeyRing::verify_only(keys.iter().map(|k| k.verification_key()).collect()).unwrap();
            *self.jwks.lock().unwrap() = Some(ring.to_public_jwk_set().unwrap());
        }

        fn reads(&self) -> (u64, u64) {
            (
                self.configuration_reads.load(Ordering::SeqCst),
                self.jwks_reads.load(Ordering::SeqCst),
            )
        }
    }

    /// Serves `provider` on loopback; its base URL (`http://127.0.0.1:port`).
    async fn serve(provider: &Arc<Provider>) -> String {
        let provider = Arc::clone(provider);
        let app = axum::Router::new()
            .fallback(move |uri: Uri| async move { provider.answer(uri.path()) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    /// A provider whose configuration names `issuer` and its key set.
    async fn provider_at(issuer_path: &str) -> (Arc<Provider>, String, String) {
        let provider = Arc::new(Provider::default());
        let base = serve(&provider).await;
        let issuer = format!("{base}{issuer_path}");
        provider.configure(&json!({
            "issuer": issuer,
            "jwks_uri": format!("{base}/tenant/keys"),
            "authorization_endpoint": format!("{base}/tenant/auth"),
            "id_token_signing_alg_values_supported": ["RS256", "Ed25519"],
        }));
        (provider, base, issuer)
    }

    fn sign(key: &SigningKey, issuer: &str) -> String {
        let claims = json!({
            "iss": issuer, "sub": "user_1", "aud": "api",
            "iat": 1_800_000_000 - 10, "exp": 1_800_000_000 + 300,
        });
        let header = jose::encode_header(key, "JWT");
        jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
    }

    struct At;
    impl tessera_application::ports::Clock for At {
        fn now(&self) -> time::OffsetDateTime {
            time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
        }
    }

    fn policy() -> CachePolicy {
        CachePolicy {
            fetch_timeout: Duration::from_secs(5),
            ..CachePolicy::default()
        }
    }

    fn discovered(issuer: &str) -> Result<JwksTokenVerifier<UserRole>, ProviderConfigError> {
        let mapping = ClaimMapping::new("role", MissingRole::LeastPrivilege(UserRole::User))?;
        Ok(JwksTokenVerifier::new(
            IdentityProvider::builder(issuer, TokenProfile::access(mapping).audience("api"))
                .clock(Arc::new(At))
                .discover(policy())
                .build()?,
        ))
    }

    #[tokio::test]
    async fn a_provider_configured_by_its_issuer_alone_verifies_with_the_discovered_keys() {
        let (provider, base, issuer) = provider_at("/tenant").await;
        let (first, second) = (
            SigningKey::generate(JwsAlgorithm::Rs256, "k1").unwrap(),
            SigningKey::generate(JwsAlgorithm::Rs256, "k2").unwrap(),
        );
        provider.publish(&[&first]);
        let verifier = discovered(&issuer).unwrap();
        let identity = verifier.verify(&sign(&first, &issuer)).await.unwrap();
        assert_eq!(identity.subject.as_str(), "user_1");
        assert_eq!(provider.reads(), (1, 1));

        // A rotated-in key is refetched from the same URL: the
        // configuration is not read again.
        provider.publish(&[&first, &second]);
        verifier.verify(&sign(&second, &issuer)).await.unwrap();
        assert_eq!(provider.reads(), (1, 2));
        let cache = verifier.provider(&issuer).unwrap().key_cache().unwrap();
        assert_eq!(cache.fetch_count(), 2);

        let source = OidcDiscovery::new(&issuer, Duration::from_secs(5)).unwrap();
        assert_eq!(
            source.configuration_url(),
            format!("{base}/tenant/.well-known/openid-configuration")
        );
        assert_eq!(source.jwks_uri(), None);
        source.fetch().await.unwrap();
        assert_eq!(source.jwks_uri(), Some(format!("{base}/tenant/keys")));
    }

    #[tokio::test]
    async fn an_issuer_other_than_the_configured_one_is_refused_and_no_keys_are_fetched() {
        let (provider, base, issuer) = provider_at("/tenant").await;
        provider.publish(&[&SigningKey::generate(JwsAlgorithm::Rs256, "k1").unwrap()]);
        // Configured with a terminating slash: the same well-known URL,
        // but not the issuer the document names.
        let configured = format!("{issuer}/");
        let source = OidcDiscovery::new(&configured, Duration::from_secs(5)).unwrap();
        assert_eq!(
            source.configuration_url(),
            format!("{base}/tenant/.well-known/openid-configuration")
        );
        match source.fetch().await {
            Err(JwksFetchError::Discovery(error @ DiscoveryError::IssuerMismatch { .. })) => {
                assert_eq!(error.code(), "discovery_issuer_mismatch");
                assert!(matches!(
                    &error,
                    DiscoveryError::IssuerMismatch { expected, found }
                        if *expected == configured && *found == issuer
                ));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(provider.reads(), (1, 0));
        // Through a provider, the verification fails closed.
        let verifier = discovered(&configured).unwrap();
        let error = verifier
            .verify(&sign(
                &SigningKey::generate(JwsAlgorithm::Rs256, "k1").unwrap(),
                &configured,
            ))
            .await
            .unwrap_err();
        assert!(error.is_unavailable(), "{error:?}");
        assert_eq!(provider.reads(), (2, 0));
    }

    #[tokio::test]
    async fn the_configuration_is_fetched_by_the_jwks_rules_and_must_name_a_usable_jwks_uri() {
        let (provider, base, issuer) = provider_at("/tenant").await;
        let fetch = |issuer: String| async move {
            OidcDiscovery::new(&issuer, Duration::from_secs(5))
                .unwrap()
                .fetch()
                .await
        };
        let refusal = |fetched: Result<JwksDocument, JwksFetchError>| match fetched {
            Err(JwksFetchError::Discovery(error)) => error,
            other => panic!("{other:?}"),
        };
        // No redirect is followed, the size is capped, a missing one is 404.
        for (path, expected) in [("/moved", 302), ("/absent", 404)] {
            match refusal(fetch(format!("{base}{path}")).await) {
                DiscoveryError::Fetch(error) => {
                    assert!(matches!(*error, JwksFetchError::Status(s) if s == expected));
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        let error = refusal(fetch(format!("{base}/huge")).await);
        assert_eq!(error.code(), "discovery_unavailable");
        assert!(matches!(
            error,
            DiscoveryError::Fetch(e) if matches!(*e, JwksFetchError::TooLarge(MAX_DISCOVERY_BYTES))
        ));
        // The jwks_uri must be https (or loopback http) and present.
        for (configuration, code) in [
            (
                json!({"issuer": issuer, "jwks_uri": "http://idp.example/keys"}),
                "discovery_jwks_uri_unusable",
            ),
            (
                json!({"issuer": issuer, "jwks_uri": "not a url"}),
                "discovery_jwks_uri_unusable",
            ),
            (json!({"issuer": issuer}), "discovery_malformed"),
            (
                json!({"jwks_uri": format!("{base}/tenant/keys")}),
                "discovery_malformed",
            ),
            (json!({"issuer": 7, "jwks_uri": "x"}), "discovery_malformed"),
            (json!(["not", "an", "object"]), "discovery_malformed"),
        ] {
            provider.configure(&configuration);
            let error = refusal(fetch(issuer.clone()).await);
            assert_eq!(error.code(), code, "{configuration}");
        }
        assert_eq!(provider.reads().1, 0, "no key set fetched");
    }

    #[tokio::test]
    async fn two_token_profiles_of_one_provider_share_one_discovery_and_one_key_fetch() {
        let (provider, _, issuer) = provider_at("/tenant").await;
        let (first, second) = (
            SigningKey::generate(JwsAlgorithm::Rs256, "k1").unwrap(),
            SigningKey::generate(JwsAlgorithm::Rs256, "k2").unwrap(),
        );
        provider.publish(&[&first]);
        let mapping = || ClaimMapping::new("role", MissingRole::LeastPrivilege(UserRole::User));
        let verifier = JwksTokenVerifier::new(
            IdentityProvider::builder(
                &issuer,
                TokenProfile::access(mapping().unwrap())
                    .typ(TypRule::exactly("at+jwt"))
                    .audience("api"),
            )
            .profile(TokenProfile::id_token(mapping().unwrap()).audience("client-1"))
            .clock(Arc::new(At))
            .discover(policy())
            .build()
            .unwrap(),
        );
        let token = |key: &SigningKey, typ: &str, aud: &str| {
            let claims = json!({
                "iss": issuer, "sub": "user_1", "aud": aud,
                "iat": 1_800_000_000 - 10, "exp": 1_800_000_000 + 300,
            });
            let header = jose::encode_header(key, typ);
            jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
        };
        for _ in 0..3 {
            let access = verifier.verify(&token(&first, "at+jwt", "api")).await;
            assert_eq!(access.unwrap().token_use, TokenUse::Access);
            let id = verifier.verify(&token(&first, "JWT", "client-1")).await;
            assert_eq!(id.unwrap().token_use, TokenUse::Id);
        }
        assert_eq!(provider.reads(), (1, 1), "one discovery, one key set");

        // A key rotated in is fetched once, whichever profile meets it first.
        provider.publish(&[&first, &second]);
        let id = verifier.verify(&token(&second, "JWT", "client-1")).await;
        assert_eq!(id.unwrap().token_use, TokenUse::Id);
        let access = verifier.verify(&token(&second, "at+jwt", "api")).await;
        assert_eq!(access.unwrap().token_use, TokenUse::Access);
        assert_eq!(provider.reads(), (1, 2));
    }

    #[tokio::test]
    async fn a_failed_key_set_fetch_reads_the_configuration_again() {
        let (provider, base, issuer) = provider_at("/tenant").await;
        let source = OidcDiscovery::new(&issuer, Duration::from_secs(5)).unwrap();
        // The key set is gone (404): the next fetch discovers again.
        assert!(matches!(
            source.fetch().await,
            Err(JwksFetchError::Status(404))
        ));
        assert_eq!(source.jwks_uri(), None);
        provider.publish(&[&SigningKey::generate(JwsAlgorithm::EdDsa, "k1").unwrap()]);
        source.fetch().await.unwrap();
        assert_eq!(provider.reads(), (2, 2));
        assert_eq!(source.jwks_uri(), Some(format!("{base}/tenant/keys")));
    }

    #[test]
    fn an_issuer_that_keys_cannot_be_fetched_from_is_refused_when_the_provider_is_built() {
        for (issuer, https) in [
            ("not a url", false),
            ("http://idp.example", true),
            ("ftp://idp.example", true),
        ] {
            match discovered(issuer) {
                Err(ProviderConfigError::IssuerUrl(JwksUrlError::Invalid(_))) => {
                    assert!(!https, "{issuer}");
                }
                Err(ProviderConfigError::IssuerUrl(JwksUrlError::NotHttps)) => {
                    assert!(https, "{issuer}");
                }
                other => panic!("{issuer}: {other:?}"),
            }
        }
        let source =
            OidcDiscovery::new("https://idp.example/realms/x/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            source.configuration_url(),
            "https://idp.example/realms/x/.well-known/openid-configuration"
        );
        assert!(discovered("https://idp.example").is_ok());
    }
}
