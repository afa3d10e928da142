//! `http` 1.x (tessera's edge) to and from actix-web 4's `http` 0.2 types:
//! statuses by number, header names and values by bytes.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{
    HeaderMap, HeaderName, HeaderValue, InvalidHeaderName, TryIntoHeaderPair,
};
use bytes::Bytes;

/// An `http` 1.x header (what [`tessera_http`] hands out, such as
/// [`SetCookie::header`](tessera_http::SetCookie::header)) for actix-web's
/// `insert_header` and `append_header`.
///
/// ```
/// use actix_web::HttpResponse;
/// use tessera_actix::{Header, SessionCookies};
///
/// fn signed_out(cookies: &SessionCookies) -> HttpResponse {
///     HttpResponse::Ok()
///         .insert_header(Header::from(cookies.clear().header()))
///         .body("bye")
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header(pub http::HeaderName, pub http::HeaderValue);

impl From<(http::HeaderName, http::HeaderValue)> for Header {
    fn from((name, value): (http::HeaderName, http::HeaderValue)) -> Self {
        Self(name, value)
    }
}

impl TryIntoHeaderPair for Header {
    type Error = actix_web::error::HttpError;

    fn try_into_pair(self) -> Result<(HeaderName, HeaderValue), Self::Error> {
        let Self(name, value) = self;
        Ok((to_actix_name(&name)?, to_actix_value(&value)?))
    }
}

/// An answer of [`tessera_http`] (a refusal, the token exchange, a
/// webhook's) as an actix-web response: the same status, headers and body.
#[must_use]
pub fn into_response(response: http::Response<impl Into<Bytes>>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let body: Bytes = body.into();
    let status = StatusCode::from_u16(parts.status.as_u16())
        // Both crates accept exactly 100..=999.
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::with_body(status, body);
    for (name, value) in &parts.headers {
        if let Some((name, value)) = to_actix(name, value) {
            response.headers_mut().append(name, value);
        }
    }
    response.map_into_boxed_body()
}

fn to_actix_name(name: &http::HeaderName) -> Result<HeaderName, InvalidHeaderName> {
    HeaderName::from_bytes(name.as_str().as_bytes())
}

fn to_actix_value(
    value: &http::HeaderValue,
) -> Result<HeaderValue, actix_web::http::header::InvalidHeaderValue> {
    let mut converted = HeaderValue::from_bytes(value.as_bytes())?;
    converted.set_sensitive(value.is_sensitive());
    Ok(converted)
}

/// One `http` 1.x header as actix-web's. Both crates validate names and
/// values alike, so `None` (logged) cannot happen in practice.
pub(crate) fn to_actix(
    name: &http::HeaderName,
    value: &http::HeaderValue,
) -> Option<(HeaderName, HeaderValue)> {
    let converted = Header(name.clone(), value.clone()).try_into_pair();
    if converted.is_err() {
        tracing::error!(header = %name, "header not representable in actix-web; dropped");
    }
    converted.ok()
}

/// actix-web's headers as an `http` 1.x map.
pub(crate) fn to_http(headers: &HeaderMap) -> http::HeaderMap {
    let mut converted = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let converted_name = http::HeaderName::from_bytes(name.as_str().as_bytes());
        let converted_value = http::HeaderValue::from_bytes(value.as_bytes());
        if let (Ok(name), Ok(mut converted_value)) = (converted_name, converted_value) {
            converted_value.set_sensitive(value.is_sensitive());
            converted.append(name, converted_value);
        }
    }
    converted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_survive_the_round_trip_with_their_sensitivity() {
        let mut secret = http::HeaderValue::from_static("t.o.k");
        secret.set_sensitive(true);
        let (name, value) = to_actix(&http::HeaderName::from_static("x-session-token"), &secret)
            .expect("representable");
        assert_eq!(name.as_str(), "x-session-token");
        assert_eq!(value.as_bytes(), b"t.o.k");
        assert!(value.is_sensitive());

        let mut actix = HeaderMap::new();
        actix.append(name.clone(), value);
        actix.append(name, HeaderValue::from_static("second"));
        let back = to_http(&actix);
        assert_eq!(back.get_all("x-session-token").iter().count(), 2);
    }

    #[test]
    fn a_response_keeps_status_headers_and_body() {
        let mut response = http::Response::new(Bytes::from_static(b"{}"));
        *response.status_mut() = http::StatusCode::SEE_OTHER;
        response
            .headers_mut()
            .append("set-cookie", http::HeaderValue::from_static("a=1"));
        response
            .headers_mut()
            .append("set-cookie", http::HeaderValue::from_static("b=2"));
        let converted = into_response(response);
        assert_eq!(converted.status().as_u16(), 303);
        assert_eq!(converted.headers().get_all("set-cookie").count(), 2);
    }
}
