//! The responses the edge answers with instead of calling the handler.
//!
//! Every refusal of the layer and of the extractors is a [`Denial`], and
//! [`Denial::into_http`] is the one place that decides its status,
//! headers and body. Bodies are `{"error":"<code>"}` and nothing more: the
//! reason goes to `tracing`, where the caller logged it.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use tessera_application::{CredentialFault, Refusal, SessionToken};
use tessera_domain::StepUpChallenge;

/// A refusal a framework adapter answers with, as tessera answers it on
/// every framework: status, challenge, `Cache-Control: no-store` and a
/// JSON body naming the error code.
pub trait HttpRefusal {
    /// The answer.
    fn into_http(self) -> Response<Bytes>;
}

/// A `{"error":"<code>"}` answer with `status` and `Cache-Control: no-store`.
pub(crate) fn json_error(status: StatusCode, code: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(format!("{{\"error\":\"{code}\"}}")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, NO_STORE);
    headers.insert(CONTENT_TYPE, JSON);
    response
}

/// 200 with `Cache-Control: no-store` and the RFC 6749 §5.1 shaped token
/// answer `{"access_token":…,["issued_token_type":…,]"token_type":"Bearer","expires_in":…}`.
pub(crate) fn token_answer(
    token: &SessionToken,
    issued_token_type: Option<&str>,
    expires_in: i64,
) -> Response<Bytes> {
    // The token is base64url and dots, the type a constant: no escaping needed.
    let issued = issued_token_type
        .map(|kind| format!(r#""issued_token_type":"{kind}","#))
        .unwrap_or_default();
    let body = format!(
        r#"{{"access_token":"{}",{issued}"token_type":"Bearer","expires_in":{expires_in}}}"#,
        token.expose_secret(),
    );
    let mut response = Response::new(Bytes::from(body));
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, NO_STORE);
    headers.insert(CONTENT_TYPE, JSON);
    response
}

/// Why the edge answers instead of the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denial {
    /// The admission refused the request.
    Refused(Refusal),
    /// 401 from a service behind a gateway: the identity headers are
    /// missing, forged, stale or replayed. No bearer challenge: the client
    /// of such a service is the gateway, not a bearer-token holder.
    UntrustedIdentity,
    /// 500: the application is miswired (an extractor without its layer).
    /// Never caused by a request's content.
    Misconfigured,
}

impl From<Refusal> for Denial {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

pub(crate) const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The challenge of a 401 without a refused credential (RFC 6750 §3.1: no
/// error code when the request carried no credential).
pub(crate) const CHALLENGE: &str = "Bearer";
/// The challenge of a 401 for a refused credential.
pub(crate) const CHALLENGE_INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";
/// The challenge of a 400.
pub(crate) const CHALLENGE_INVALID_REQUEST: &str = "Bearer error=\"invalid_request\"";
/// The start of the challenge of a 401 for a session that must
/// authenticate again (RFC 9470).
pub(crate) const CHALLENGE_INSUFFICIENT_USER_AUTHENTICATION: &str =
    "Bearer error=\"insufficient_user_authentication\"";
/// The challenge of a 403 for a session that falls short.
pub(crate) const CHALLENGE_INSUFFICIENT_SCOPE: &str = "Bearer error=\"insufficient_scope\"";

impl Denial {
    /// 401, with `invalid_token` when a credential was sent and refused.
    pub(crate) fn unauthenticated(refused: bool) -> Self {
        Self::Refused(Refusal::Unauthenticated { refused })
    }

    /// 403 `insufficient_scope`.
    pub(crate) fn insufficient_scope() -> Self {
        Self::Refused(Refusal::Forbidden { signed_in: true })
    }

    /// 400 `invalid_request`.
    pub(crate) fn invalid_request(fault: CredentialFault) -> Self {
        Self::Refused(Refusal::InvalidRequest(fault))
    }

    /// The error code the body carries (`None` for redirects).
    pub(crate) fn code(&self) -> Option<&'static str> {
        match self {
            Self::Refused(refusal) => refusal.code(),
            Self::UntrustedIdentity => Some("untrusted_identity"),
            Self::Misconfigured => Some("server_error"),
        }
    }

    /// The response: status, challenge or location, `Cache-Control:
    /// no-store`, and a JSON body naming the error code. The one place
    /// that decides how a refusal looks over HTTP.
    pub(crate) fn into_http(self) -> Response<Bytes> {
        let code = self.code();
        let (status, challenge, location) = match self {
            Self::Refused(Refusal::StepUp(challenge)) => (
                StatusCode::UNAUTHORIZED,
                Some(step_up_challenge(&challenge)),
                None,
            ),
            Self::Refused(Refusal::InvalidRequest(_)) => (
                StatusCode::BAD_REQUEST,
                Some(HeaderValue::from_static(CHALLENGE_INVALID_REQUEST)),
                None,
            ),
            Self::Refused(Refusal::Unauthenticated { refused: true }) => (
                StatusCode::UNAUTHORIZED,
                Some(HeaderValue::from_static(CHALLENGE_INVALID_TOKEN)),
                None,
            ),
            Self::Refused(Refusal::Unauthenticated { refused: false }) => (
                StatusCode::UNAUTHORIZED,
                Some(HeaderValue::from_static(CHALLENGE)),
                None,
            ),
            Self::Refused(Refusal::Forbidden { signed_in: true }) => (
                StatusCode::FORBIDDEN,
                Some(HeaderValue::from_static(CHALLENGE_INSUFFICIENT_SCOPE)),
                None,
            ),
            Self::Refused(Refusal::Forbidden { signed_in: false }) => {
                (StatusCode::FORBIDDEN, None, None)
            }
            Self::Refused(Refusal::SignIn { location } | Refusal::SignedIn { location }) => {
                (StatusCode::SEE_OTHER, None, Some(location))
            }
            Self::Refused(Refusal::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, None, None),
            // Not a token problem: no challenge.
            Self::Refused(Refusal::CrossOrigin) => (StatusCode::FORBIDDEN, None, None),
            Self::Refused(Refusal::NotFound) => (StatusCode::NOT_FOUND, None, None),
            // An authentic provider token whose subject is not taken: not a
            // credential problem (no challenge), and asking again with the
            // same subject cannot succeed.
            Self::Refused(Refusal::Subject(_)) => (StatusCode::FORBIDDEN, None, None),
            Self::UntrustedIdentity => (StatusCode::UNAUTHORIZED, None, None),
            // `Refusal` is non-exhaustive: a refusal this edge does not know
            // yet is still a refusal.
            Self::Misconfigured | Self::Refused(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, None, None)
            }
        };
        let body = code.map_or_else(Bytes::new, |code| {
            Bytes::from(format!("{{\"error\":\"{code}\"}}"))
        });
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, NO_STORE);
        if code.is_some() {
            headers.insert(CONTENT_TYPE, JSON);
        }
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(location) = location {
            // The admission only makes relative paths of printable ASCII.
            let location =
                HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/"));
            headers.insert(LOCATION, location);
        }
        response
    }
}

/// The RFC 9470 §3 challenge of a session that must authenticate again:
/// `Bearer error="insufficient_user_authentication",
/// error_description="…"`, then `max_age="<seconds>"` and
/// `acr_values="<space-separated>"` for what the route asks. The values
/// need no escaping: [`Acr`](tessera_domain::Acr) admits neither `"` nor
/// `\`, and the rest is fixed text and digits.
fn step_up_challenge(challenge: &StepUpChallenge) -> HeaderValue {
    let mut text = format!(
        "{CHALLENGE_INSUFFICIENT_USER_AUTHENTICATION}, error_description=\"{}\"",
        challenge.description()
    );
    if let Some(max_age) = challenge.asked().max_age_seconds() {
        text.push_str(&format!(", max_age=\"{max_age}\""));
    }
    if let Some(acr_values) = challenge.asked().acr_values_text() {
        text.push_str(&format!(", acr_values=\"{acr_values}\""));
    }
    // Printable ASCII by construction; the bare error code if not.
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(
        CHALLENGE_INSUFFICIENT_USER_AUTHENTICATION,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_application::external::SubjectRefusal;

    fn body(response: Response<Bytes>) -> String {
        String::from_utf8(response.into_body().to_vec()).unwrap()
    }

    #[test]
    fn every_denial_has_its_status_challenge_and_code() {
        let cases = [
            (
                Denial::invalid_request(CredentialFault::MalformedBearer),
                400,
                Some(CHALLENGE_INVALID_REQUEST),
                "invalid_request",
            ),
            (
                Denial::unauthenticated(true),
                401,
                Some(CHALLENGE_INVALID_TOKEN),
                "invalid_token",
            ),
            (
                Denial::unauthenticated(false),
                401,
                Some(CHALLENGE),
                "unauthenticated",
            ),
            (
                Denial::insufficient_scope(),
                403,
                Some(CHALLENGE_INSUFFICIENT_SCOPE),
                "insufficient_scope",
            ),
            (
                Denial::Refused(Refusal::Forbidden { signed_in: false }),
                403,
                None,
                "forbidden",
            ),
            (
                Denial::Refused(Refusal::Unavailable),
                503,
                None,
                "temporarily_unavailable",
            ),
            (
                Denial::Refused(Refusal::CrossOrigin),
                403,
                None,
                "cross_origin_request",
            ),
            (Denial::Refused(Refusal::NotFound), 404, None, "not_found"),
            (
                Denial::Refused(Refusal::Subject(SubjectRefusal::MachineToken)),
                403,
                None,
                "machine_token",
            ),
            (
                Denial::Refused(Refusal::Subject(SubjectRefusal::UserToken)),
                403,
                None,
                "user_token",
            ),
            (
                Denial::Refused(Refusal::Subject(SubjectRefusal::RequiredClaim {
                    path: "email_verified".into(),
                })),
                403,
                None,
                "required_claim",
            ),
            (Denial::UntrustedIdentity, 401, None, "untrusted_identity"),
            (Denial::Misconfigured, 500, None, "server_error"),
        ];
        for (denial, status, challenge, code) in cases {
            let response = denial.into_http();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .map(|v| v.to_str().unwrap()),
                challenge
            );
            assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            assert_eq!(body(response), format!("{{\"error\":\"{code}\"}}"));
        }
    }

    #[test]
    fn redirects_are_see_other_with_a_location_and_no_body() {
        let response = Denial::Refused(Refusal::SignIn {
            location: "/login?return_to=%2Fapp".into(),
        })
        .into_http();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "/login?return_to=%2Fapp");
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
        assert!(response.headers().get(CONTENT_TYPE).is_none());
        assert_eq!(body(response), "");
    }

    /// The challenge for a session authenticated `ago` seconds before `T`
    /// without a level, on a route asking for `max_age` and `acr`.
    fn challenge(max_age: Option<i64>, acr: &[&str], ago: i64) -> StepUpChallenge {
        use tessera_domain::{
            NewSession, Requirement, RoutePolicy, RouteRule, SessionEntity, SessionId, UserId,
            UserRole,
        };
        use time::{Duration, OffsetDateTime};
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let mut rule = RouteRule::new("/a", Requirement::<UserRole>::Authenticated);
        if let Some(max_age) = max_age {
            rule = rule.max_age(Duration::seconds(max_age));
        }
        if !acr.is_empty() {
            rule = rule.acr(acr);
        }
        let policy = RoutePolicy::builder().rule(rule).build().unwrap();
        let session = SessionEntity::new(NewSession {
            user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap(),
            session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").unwrap(),
            role: UserRole::User,
            capabilities: Default::default(),
            tenant: None,
            issued_at: now,
            expires_at: now + Duration::minutes(15),
            authenticated_at: now - Duration::seconds(ago),
            authentication: Default::default(),
        })
        .unwrap();
        policy
            .route("GET", "/a")
            .step_up()
            .challenge(&session, now)
            .unwrap()
    }

    #[test]
    fn a_step_up_is_401_with_the_rfc_9470_challenge() {
        let cases = [
            (
                challenge(Some(5), &[], 60),
                "Bearer error=\"insufficient_user_authentication\", error_description=\"More recent authentication is required\", max_age=\"5\"",
            ),
            (
                challenge(None, &["myACR"], 0),
                "Bearer error=\"insufficient_user_authentication\", error_description=\"A different authentication level is required\", acr_values=\"myACR\"",
            ),
            (
                challenge(Some(300), &["urn:example:mfa", "phrh"], 0),
                "Bearer error=\"insufficient_user_authentication\", error_description=\"A different authentication level is required\", max_age=\"300\", acr_values=\"urn:example:mfa phrh\"",
            ),
        ];
        for (challenge, expected) in cases {
            let response = Denial::Refused(Refusal::StepUp(challenge)).into_http();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(response.headers()[WWW_AUTHENTICATE], expected);
            assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
            assert_eq!(
                body(response),
                "{\"error\":\"insufficient_user_authentication\"}"
            );
        }
    }
}
