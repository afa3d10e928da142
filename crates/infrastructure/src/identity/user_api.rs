//! `HttpUserApi`: a provider's user API over HTTPS (reqwest, rustls), for
//! [`ResolveUser`](tessera_application::ResolveUser) when a token does not
//! say enough.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use tessera_application::external::{
    AsOf, ExternalProfile, ExternalSubject, IdentityProviderUsers, ProviderUserError,
};
use tessera_domain::Role;
use zeroize::Zeroizing;

use super::claim_path::{ClaimPath, MappingConfigError};
use super::fetch::{is_https_or_loopback, read_capped};
use super::mapping::{ClaimMapping, ProfileSlots};
use super::payload::{Leaf, PathTrie};

/// The largest user document accepted, in bytes.
pub const MAX_USER_BYTES: usize = 64 * 1024;

/// A provider's secret API key (Clerk's secret key, an Auth0 Management
/// API token). Prints as `ApiKey(**redacted**)`; its memory is zeroed
/// when dropped.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Wraps a key.
    #[must_use]
    pub fn new(key: String) -> Self {
        Self(Zeroizing::new(key))
    }

    /// The key itself.
    ///
    /// **Security:** this is a credential for the provider's whole user
    /// base. Send it to the provider only; never log or display it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(**redacted**)")
    }
}

/// Why an [`HttpUserApi`] cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserApiConfigError {
    /// The base URL is not an `https` URL (plain `http` is accepted for
    /// loopback hosts only, for development and tests), or cannot have
    /// path segments.
    #[error("the user API base URL must be an https URL (http only for loopback hosts)")]
    Url,
    /// The API key cannot be sent in an HTTP header (a control character).
    #[error("the API key cannot be sent in an HTTP header")]
    ApiKey,
    /// A claim path is wrong or collides with another.
    #[error(transparent)]
    Mapping(#[from] MappingConfigError),
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

/// The user API answered with an HTTP status other than 200 or 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the user API answered HTTP {0}")]
pub struct UserApiStatus(pub u16);

/// The user document is larger than [`MAX_USER_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("the user document is larger than {MAX_USER_BYTES} bytes")]
struct TooLarge;

#[derive(Debug, Clone, Copy)]
struct Slots {
    profile: ProfileSlots,
    disabled: Option<usize>,
}

/// The `Authorization` header, printed as redacted.
struct Bearer(HeaderValue);

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer(**redacted**)")
    }
}

/// One provider's user API: `GET {base}/users/{id}` with
/// `Authorization: Bearer <API key>`, the answer read as JSON through a
/// [`ClaimMapping`] whose paths point into the user document (for Clerk,
/// `public_metadata.role`; for Auth0, `app_metadata.roles`), mapped
/// fail-closed exactly as tokens are.
///
/// Every request has a timeout, follows no redirect and reads at most
/// [`MAX_USER_BYTES`]. `404` is an unknown user (`Ok(None)`); `5xx`, `429`
/// and transport failures are [`ProviderUserError::Unavailable`]; any other
/// status, or a body that is not such a JSON object, is
/// [`ProviderUserError::InvalidResponse`] with a [`UserApiStatus`] or the
/// parse error as its source.
#[derive(Debug)]
pub struct HttpUserApi<R: Role> {
    issuer: String,
    client: reqwest::Client,
    base: reqwest::Url,
    authorization: Bearer,
    mapping: ClaimMapping<R>,
    trie: PathTrie,
    slots: Slots,
}

impl<R: Role> HttpUserApi<R> {
    /// The user API at `base_url` of the provider `issuer`, authenticated
    /// with `api_key`, its documents read through `mapping`, each request
    /// bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// [`UserApiConfigError`] for a URL that is not `https` (or `http` to a
    /// loopback host), a key that cannot be a header, colliding paths, or
    /// a client that cannot be built.
    pub fn new(
        issuer: impl Into<String>,
        base_url: &str,
        api_key: &ApiKey,
        mapping: ClaimMapping<R>,
        timeout: Duration,
    ) -> Result<Self, UserApiConfigError> {
        let mut base = reqwest::Url::parse(base_url).map_err(|_| UserApiConfigError::Url)?;
        if !is_https_or_loopback(&base) {
            return Err(UserApiConfigError::Url);
        }
        base.path_segments_mut()
            .map_err(|()| UserApiConfigError::Url)?
            .pop_if_empty();
        let bearer = Zeroizing::new(format!("Bearer {}", api_key.expose_secret()));
        let mut authorization =
            HeaderValue::from_str(&bearer).map_err(|_| UserApiConfigError::ApiKey)?;
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(UserApiConfigError::Client)?;
        let mut trie = PathTrie::new();
        let slots = Slots {
            profile: mapping.register(&mut trie)?,
            disabled: None,
        };
        Ok(Self {
            issuer: issuer.into(),
            client,
            base,
            authorization: Bearer(authorization),
            mapping,
            trie,
            slots,
        })
    }

    /// Reads whether the user is barred from signing in from `path`, a
    /// boolean in the user document (`banned` for Clerk, `blocked` for
    /// Auth0): `true` makes the profile disabled, `false` enabled. Without
    /// it, profiles leave the stored flag as it is.
    ///
    /// # Errors
    ///
    /// [`UserApiConfigError::Mapping`] for a path that is invalid or
    /// collides with the mapping's.
    pub fn disabled_flag(mut self, path: &str) -> Result<Self, UserApiConfigError> {
        self.slots.disabled = Some(self.trie.add(&ClaimPath::parse(path)?)?);
        Ok(self)
    }

    /// The issuer whose users this API serves.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn user_url(&self, subject: &ExternalSubject) -> Result<reqwest::Url, ProviderUserError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ProviderUserError::InvalidResponse("base URL lost its path".into()))?
            .push("users")
            .push(subject.as_str());
        Ok(url)
    }

    fn profile(
        &self,
        subject: &ExternalSubject,
        body: &[u8],
    ) -> Result<ExternalProfile<R>, ProviderUserError> {
        let found = self
            .trie
            .extract(body)
            .map_err(|e| ProviderUserError::InvalidResponse(Box::new(e)))?;
        let (role, email, name) = self.mapping.read_profile(&self.slots.profile, &found)?;
        let disabled = self.slots.disabled.and_then(|slot| found.get(slot));
        let enabled = match disabled.and_then(Option::as_ref) {
            None | Some(Leaf::Null) => None,
            Some(Leaf::Bool(disabled)) => Some(!*disabled),
            Some(_) => {
                return Err(ProviderUserError::InvalidResponse(
                    "the disabled flag is not a boolean".into(),
                ));
            }
        };
        Ok(ExternalProfile {
            issuer: self.issuer.clone(),
            subject: subject.clone(),
            role,
            email,
            name,
            enabled,
            // Not read: the profile is request-time sync, which updates a
            // live record and never overrides a deleted account's
            // tombstone.
            as_of: AsOf::Unknown,
        })
    }
}

#[async_trait]
impl<R: Role> IdentityProviderUsers<R> for HttpUserApi<R> {
    async fn fetch_user(
        &self,
        issuer: &str,
        subject: &ExternalSubject,
    ) -> Result<Option<ExternalProfile<R>>, ProviderUserError> {
        if issuer != self.issuer {
            return Err(ProviderUserError::UnknownIssuer);
        }
        let mut response = self
            .client
            .get(self.user_url(subject)?)
            .header(AUTHORIZATION, self.authorization.0.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ProviderUserError::Unavailable(Box::new(e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status != reqwest::StatusCode::OK {
            let cause = Box::new(UserApiStatus(status.as_u16()));
            return Err(
                if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    ProviderUserError::Unavailable(cause)
                } else {
                    ProviderUserError::InvalidResponse(cause)
                },
            );
        }
        let body = read_capped(&mut response, MAX_USER_BYTES)
            .await
            .map_err(|e| ProviderUserError::Unavailable(Box::new(e)))?
            .ok_or_else(|| ProviderUserError::InvalidResponse(Box::new(TooLarge)))?;
        self.profile(subject, &body).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use serde_json::json;
    use tessera_application::external::RoleMappingError;
    use tessera_domain::UserRole;

    use super::*;
    use crate::identity::MissingRole;

    const ISSUER: &str = "https://clerk.example";
    const KEY: &str = "sk_test_0123456789";

    /// A Clerk-like user API over loopback: `user_ok` (admin), `user_banned`,
    /// `user_superuser` (unmappable role), `slow`, `huge`, `boom` (500),
    /// `garbage`; anything else is 404. Requests without the key get 401.
    async fn stand_in() -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let app = Router::new().route(
            "/v1/users/{id}",
            get(move |Path(id): Path<String>, headers: HeaderMap| {
                let counter = Arc::clone(&counter);
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let authorized = headers
                        .get("authorization")
                        .is_some_and(|v| v == format!("Bearer {KEY}").as_str());
                    if !authorized {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let user = |role: &str, banned: bool| {
                        axum::Json(json!({
                            "id": id, "banned": banned, "first_name": "Ada",
                            "email": "ada@example.com",
                            "public_metadata": { "role": role },
                        }))
                        .into_response()
                    };
                    match id.as_str() {
                        "user_ok" | "user/odd?" => user("org:admin", false),
                        "user_banned" => user("org:member", true),
                        "user_superuser" => user("superuser", false),
                        "slow" => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            user("org:member", false)
                        }
                        "huge" => "x".repeat(MAX_USER_BYTES + 1).into_response(),
                        "boom" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                        "garbage" => "not json".into_response(),
                        _ => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/v1/"), hits)
    }

    fn mapping() -> ClaimMapping<UserRole> {
        ClaimMapping::new("public_metadata.role", MissingRole::Reject)
            .unwrap()
            .map("org:admin", UserRole::Admin)
            .unwrap()
            .map("org:member", UserRole::User)
            .unwrap()
            .email("email")
            .unwrap()
            .name("first_name")
            .unwrap()
    }

    fn api(base: &str, key: &str) -> HttpUserApi<UserRole> {
        HttpUserApi::new(
            ISSUER,
            base,
            &ApiKey::new(key.into()),
            mapping(),
            Duration::from_millis(500),
        )
        .unwrap()
        .disabled_flag("banned")
        .unwrap()
    }

    async fn fetch(
        api: &HttpUserApi<UserRole>,
        id: &str,
    ) -> Result<Option<ExternalProfile<UserRole>>, ProviderUserError> {
        api.fetch_user(ISSUER, &ExternalSubject::parse(id).unwrap())
            .await
    }

    #[tokio::test]
    async fn a_user_is_fetched_with_the_api_key_and_mapped_through_the_claim_mapping() {
        let (base, hits) = stand_in().await;
        let api = api(&base, KEY);
        let profile = fetch(&api, "user_ok").await.unwrap().unwrap();
        assert_eq!(profile.issuer, ISSUER);
        assert_eq!(profile.subject.as_str(), "user_ok");
        assert_eq!(profile.role, UserRole::Admin);
        assert_eq!(profile.email.as_deref(), Some("ada@example.com"));
        assert_eq!(profile.name.as_deref(), Some("Ada"));
        assert_eq!(profile.enabled, Some(true));
        let banned = fetch(&api, "user_banned").await.unwrap().unwrap();
        assert_eq!(banned.enabled, Some(false));
        // The id is one path segment, escaped.
        let odd = fetch(&api, "user/odd?").await.unwrap().unwrap();
        assert_eq!(odd.subject.as_str(), "user/odd?");
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unknown_user_is_none_and_an_unmappable_role_is_an_error() {
        let (base, _) = stand_in().await;
        let api = api(&base, KEY);
        assert_eq!(fetch(&api, "user_gone").await.unwrap(), None);
        let err = fetch(&api, "user_superuser").await.unwrap_err();
        assert!(matches!(
            err,
            ProviderUserError::Role(RoleMappingError::Unmapped(_))
        ));
        assert!(!err.is_unavailable());
    }

    #[tokio::test]
    async fn failures_are_typed_and_fail_closed() {
        let (base, _) = stand_in().await;
        let api = api(&base, KEY);
        let err = fetch(&api, "boom").await.unwrap_err();
        let ProviderUserError::Unavailable(source) = &err else {
            panic!("expected unavailable, got {err:?}");
        };
        assert_eq!(
            source.downcast_ref::<UserApiStatus>(),
            Some(&UserApiStatus(500))
        );
        assert!(matches!(
            fetch(&api, "garbage").await,
            Err(ProviderUserError::InvalidResponse(_))
        ));
        assert!(matches!(
            fetch(&api, "huge").await,
            Err(ProviderUserError::InvalidResponse(_))
        ));
        let started = std::time::Instant::now();
        assert!(matches!(
            fetch(&api, "slow").await,
            Err(ProviderUserError::Unavailable(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(3), "timed out");
        let wrong_key = super::tests::api(&base, "sk_wrong");
        let err = fetch(&wrong_key, "user_ok").await.unwrap_err();
        let ProviderUserError::InvalidResponse(source) = &err else {
            panic!("expected an invalid response, got {err:?}");
        };
        assert_eq!(
            source.downcast_ref::<UserApiStatus>(),
            Some(&UserApiStatus(401))
        );
        assert!(matches!(
            api.fetch_user(
                "https://other.example",
                &ExternalSubject::parse("user_ok").unwrap()
            )
            .await,
            Err(ProviderUserError::UnknownIssuer)
        ));
    }

    #[test]
    fn the_api_key_never_prints_and_urls_must_be_https_or_loopback() {
        let key = ApiKey::new(KEY.into());
        assert_eq!(format!("{key:?}"), "ApiKey(**redacted**)");
        let t = Duration::from_secs(1);
        let api = HttpUserApi::new(ISSUER, "https://api.clerk.com/v1", &key, mapping(), t).unwrap();
        assert!(!format!("{api:?}").contains(KEY));
        assert!(HttpUserApi::new(ISSUER, "http://127.0.0.1:9/v1", &key, mapping(), t).is_ok());
        for bad in [
            "http://api.clerk.com/v1",
            "not a url",
            "mailto:a@example.com",
        ] {
            assert!(matches!(
                HttpUserApi::new(ISSUER, bad, &key, mapping(), t),
                Err(UserApiConfigError::Url)
            ));
        }
        assert!(matches!(
            HttpUserApi::new(
                ISSUER,
                "https://x.example",
                &ApiKey::new("a\nb".into()),
                mapping(),
                t
            ),
            Err(UserApiConfigError::ApiKey)
        ));
    }
}
