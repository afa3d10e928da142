//! Sign-in (for a backend that has authenticated a user) and sign-out (for
//! the client holding the session).
//!
//! Sign-in records the user and signs them in as the directory holds them
//! (`Tessera::sign_in`); sign-out is the edge's (`SessionEdge::sign_out`);
//! the handlers only translate.

use axum::body::Bytes;
use axum::extract::State as Extract;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};
use tessera_application::ports::DirectoryUser;
use tessera_application::{EstablishedSession, SignInFacts};
use tessera_domain::{UserId, UserRole};
use tessera_http::{Client, HttpRefusal as _, SetCookie};

use super::admin::UserBody;
use super::reply::{BadRequest, Reply, error, from_edge, json, parse_json};
use super::{Shared, State};

/// Why a session could not be established.
#[derive(Debug, thiserror::Error)]
enum SignInError {
    #[error("the user directory cannot record the user")]
    Directory(#[source] tessera_application::ports::DirectoryError),
    #[error("the session cannot be established")]
    SignIn(#[source] tessera_application::SignInError),
    #[error("the token cannot be a cookie")]
    Cookie(#[source] tessera_http::CookieError),
}

/// Records `user` and signs them in as the directory now holds them (the
/// directory rotation reads: a disabled user gets no session): the token
/// and the cookie carrying it.
async fn sign_in(
    state: &State,
    user: DirectoryUser<UserRole>,
) -> Result<(EstablishedSession<UserRole>, SetCookie), SignInError> {
    let user_id = user.user_id;
    state
        .users
        .upsert(user)
        .await
        .map_err(SignInError::Directory)?;
    let issued = state
        .sessions
        .sign_in()
        .execute(&user_id, SignInFacts::default())
        .await
        .map_err(SignInError::SignIn)?;
    let cookie = state
        .edge
        .cookies()
        .issue(&issued.token, &issued.session)
        .map_err(SignInError::Cookie)?;
    Ok((issued, cookie))
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
        // Refused as the edge's sign-in refuses: 403, 503 or 500.
        Err(SignInError::SignIn(cause)) => {
            tracing::warn!(error = ?cause, "sign-in refused");
            from_edge(cause.into_http())
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
/// it carried a valid session; 503, the session standing, when it cannot be
/// checked or the sign-out cannot be recorded.
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
    let presented = state.edge.presented(None, values);
    let answer = state.edge.sign_out(&presented, Client::Api).await;
    if answer.status().is_success() {
        state.metrics.sign_out();
    }
    from_edge(answer)
}
