//! Sign-in (for a backend that has authenticated a user) and sign-out (for
//! the client holding the session).
//!
//! Each is one small function over the facade (`Tessera::establish`,
//! `Tessera::revoke`) and `SessionCookies`; the handlers only translate.

use axum::body::Bytes;
use axum::extract::State as Extract;
use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use tessera_application::ports::DirectoryUser;
use tessera_application::{
    EstablishRequest, EstablishedSession, PresentedCredential, RevokeRequest, SessionCheck,
};
use tessera_domain::{UserId, UserRole};
use tessera_http::{SetCookie, read_credential};

use super::admin::UserBody;
use super::reply::{BadRequest, Reply, error, json, parse_json, with_type};
use super::{Shared, State};

/// Why a session could not be established.
#[derive(Debug, thiserror::Error)]
enum SignInError {
    #[error("the user directory cannot record the user")]
    Directory(#[source] tessera_application::ports::DirectoryError),
    #[error("the session cannot be established")]
    Establish(#[source] tessera_application::EstablishError),
    #[error("the token cannot be a cookie")]
    Cookie(#[source] tessera_http::CookieError),
}

/// Records `user` (rotation reads them back) and establishes their
/// session: the token and the cookie carrying it.
async fn sign_in(
    state: &State,
    user: DirectoryUser<UserRole>,
) -> Result<(EstablishedSession<UserRole>, SetCookie), SignInError> {
    let request = EstablishRequest::from(user.clone());
    state
        .users
        .upsert(user)
        .await
        .map_err(SignInError::Directory)?;
    let issued = state
        .sessions
        .establish()
        .execute(request)
        .map_err(SignInError::Establish)?;
    let cookie = state
        .edge
        .cookies()
        .issue(&issued.token, &issued.session)
        .map_err(SignInError::Cookie)?;
    Ok((issued, cookie))
}

/// Logs out the session `token` carries, if it is one; the cookie that
/// clears the session cookie either way.
async fn sign_out(
    state: &State,
    token: Option<&str>,
) -> Result<SetCookie, tessera_application::RevokeError> {
    // A stale session's authentication time is unknown: now outlasts it.
    let session = token.and_then(|token| match state.sessions.verify().check(token) {
        Ok(SessionCheck::Current(verified)) => Some((
            *verified.session().session_id(),
            verified.session().authenticated_at(),
        )),
        Ok(SessionCheck::Stale(stale)) => Some((*stale.session_id(), state.clock.now())),
        Err(_) => None,
    });
    if let Some((session_id, authenticated_at)) = session {
        state
            .sessions
            .revoke()
            .execute(RevokeRequest::Session {
                session_id,
                authenticated_at,
            })
            .await?;
    }
    Ok(state.edge.cookies().clear())
}

/// `POST /admin/sessions`: a backend has authenticated a user and asks for
/// their session. The token in the JSON body for API clients, the cookie
/// in `Set-Cookie` for browsers; never cached.
pub(super) async fn sign_in_handler(Extract(state): Extract<Shared>, body: Bytes) -> Reply {
    let user = match parse_json::<UserBody>(&body).and_then(|body| {
        let user_id = body
            .user_id
            .as_deref()
            .ok_or_else(|| BadRequest("user_id: missing".to_owned()))
            .and_then(|id| {
                UserId::parse(id).map_err(|error| BadRequest(format!("user_id: {error}")))
            })?;
        body.directory_user(user_id).map_err(BadRequest)
    }) {
        Ok(user) => user,
        Err(bad) => return bad.into(),
    };
    match sign_in(&state, user).await {
        Ok((issued, cookie)) => {
            state.metrics.sign_in();
            let session = &issued.session;
            tracing::info!(user_id = %session.user_id(), session_id = %session.session_id(), "signed in");
            let mut reply = json(
                StatusCode::CREATED,
                &serde_json::json!({
                    "token": issued.token.expose_secret(),
                    "token_type": "Bearer",
                    "session_id": session.session_id().to_string(),
                    "user_id": session.user_id().to_string(),
                    "role": session.role().to_string(),
                    "expires_at": session.expires_at().unix_timestamp(),
                }),
            );
            reply
                .headers_mut()
                .append(SET_COOKIE, cookie.header_value().clone());
            reply
        }
        Err(cause) => {
            tracing::warn!(error = ?cause, "sign-in failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                &cause.to_string(),
            )
        }
    }
}

/// `POST /session/sign-out`: the session the request carries (cookie or
/// bearer token) is logged out, and the cookie cleared. 204 whether or not
/// it carried a valid session.
pub(super) async fn sign_out_handler(Extract(state): Extract<Shared>, headers: HeaderMap) -> Reply {
    // The sign-out reads the session cookie: a form from another site must
    // not log the user out.
    let values = |name: &'static str| headers.get_all(name).iter().map(HeaderValue::as_bytes);
    if let Some(refused) = state
        .edge
        .refuse_cross_origin("POST", "/session/sign-out", None, values)
    {
        return refused.map(axum::body::Body::from);
    }
    let credential = read_credential(
        headers
            .get_all(AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
        headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes),
        state.edge.cookies().name(),
        state.sessions.verify().max_token_bytes(),
    );
    let token = match credential {
        PresentedCredential::Token { token, .. } => Some(token),
        _ => None,
    };
    match sign_out(&state, token).await {
        Ok(clear) => {
            state.metrics.sign_out();
            let mut reply = with_type(StatusCode::NO_CONTENT, "application/json", "");
            reply
                .headers_mut()
                .append(SET_COOKIE, clear.header_value().clone());
            reply
        }
        Err(cause) => {
            tracing::warn!(error = ?cause, "sign-out not recorded");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the sign-out cannot be recorded",
            )
        }
    }
}
