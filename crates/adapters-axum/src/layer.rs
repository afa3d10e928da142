//! The tower layer: a translation of [`SessionEdge`] for tower services
//! (an axum `Router`, say).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::OriginalUri;
use bytes::Bytes;
use http::uri::Authority;
use http::{Extensions, HeaderValue, Request, Response, Uri};
use pin_project_lite::pin_project;
use tessera_application::{Admission, AdmittedSession, Decision};
use tessera_domain::{Role, RoutePolicy, UserRole};
use tessera_http::{
    Attach, ConfigError, Forward, LayerSeen, SessionEdge, SessionEdgeBuilder, SessionUseCases,
    gateway,
};
use tower::{Layer, Service};

use crate::auth::AdmittedBy;
use crate::extract::Session;
use crate::provider_user::ProviderUser;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sessions and route access for a tower service (an axum `Router`, say).
///
/// Per request, the layer:
///
/// 1. in [gateway mode](tessera_http::gateway), strips every identity header the
///    client sent;
/// 2. reads the credential: `Authorization: Bearer <token>` or the session
///    cookie (both only if they carry the same token);
/// 3. asks [`DecideAdmission`](tessera_application::DecideAdmission) what becomes of the request: the route
///    policy applied (routes that need no session read the credential
///    leniently, routes that need one verify it strictly), a token due for
///    rotation (age) or whose claims are stale (permissions changed)
///    rotated and the route decided again with the fresh role and
///    capabilities, and — with [provider tokens](tessera_http::SessionEdgeBuilder::provider_tokens) —
///    an identity provider's bearer token admitted as its local user;
/// 4. translates the admission: forwards with the session or as a guest,
///    or answers the refusal;
/// 5. forwards the request with the [`Session`] in its extensions (and a
///    [`ProviderUser`] for a provider token; in
///    gateway mode, signed identity headers);
/// 6. attaches the rotated credential to the response, whatever its status:
///    a new session cookie when the cookie carried the credential, the new
///    token in the [`token header`](tessera_http::SessionEdgeBuilder::token_header)
///    (`x-session-token` by default) when a bearer token did, and
///    `Cache-Control: no-store`. A handler that sets the session cookie
///    itself, as sign-in and sign-out do, wins over the cookie; one that
///    sets the token header wins over the token.
///
/// # Responses
///
/// | situation | status | headers | body `error` |
/// |---|---|---|---|
/// | two different credentials, several `Authorization` headers, one that is not text, `Bearer` without a `token68`, the session cookie twice with different values | 400 | `WWW-Authenticate: Bearer error="invalid_request"` | `invalid_request` |
/// | no credential, route needs a session | 401 | `WWW-Authenticate: Bearer` | `unauthenticated` |
/// | credential refused (bad, expired, revoked, oversized, a session cookie that is not a token), or rotation finds the user gone or disabled | 401 | `WWW-Authenticate: Bearer error="invalid_token"`; the cookie cleared when it carried it | `invalid_token` |
/// | either of the two above on a browser route | 303 | `Location: <login>?return_to=<path>` (GET/HEAD only, relative paths only) | — |
/// | session falls short of the route | 403 | `WWW-Authenticate: Bearer error="insufficient_scope"` | `insufficient_scope` |
/// | route denied to everyone, no session (also paths that are not canonical) | 403 | — | `forbidden` |
/// | guest-only page, signed-in user | 303 | `Location:` its safe `return_to`, else the signed-in page | — |
/// | revocation state cannot be trusted on a route that needs a session; or claims stale and the user directory unreachable | 503 | — | `temporarily_unavailable` |
///
/// Every response the layer writes has `Cache-Control: no-store` and a
/// JSON body `{"error":"<code>"}` (redirects have none); the reason goes to
/// `tracing` (debug for refusals, warn for 503), never the token.
///
/// A credential error on a route that needs no session is a guest, like
/// any bad credential there.
///
/// # Rotation failures
///
/// - user gone or disabled: 401 `invalid_token` (or the login redirect),
///   the session cookie cleared — the request never reaches the handler as
///   authenticated; on a route that needs no session the request goes on
///   as a guest's (the cookie still cleared);
/// - claims stale and rotation impossible: the old claims cannot be
///   trusted, so 503 when the directory or signing failed, 401 when the
///   session is past its absolute lifetime — or, on a route that needs no
///   session, the request goes on as a guest's;
/// - only due by age: the request goes on with the still-valid session and
///   no new credential (a warning is logged).
///
/// # Where to put it
///
/// On the outermost router (`Router::layer` after the routes, or a
/// `ServiceBuilder` around the router). The policy sees the request's full
/// path (axum's `OriginalUri` when present, so nesting is fine). Put one
/// such layer per request path: two would verify and rotate twice.
#[derive(Clone)]
pub struct SessionLayer<R: Role = UserRole> {
    edge: SessionEdge<R>,
}

impl<R: Role> fmt::Debug for SessionLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("edge", &self.edge)
            .finish()
    }
}

impl<R: Role> From<SessionEdge<R>> for SessionLayer<R> {
    fn from(edge: SessionEdge<R>) -> Self {
        Self { edge }
    }
}

impl<R: Role> SessionLayer<R> {
    /// Starts a layer enforcing `policy` with `sessions`, with the
    /// settings and defaults of
    /// [`SessionEdge::builder`].
    pub fn builder<P>(sessions: SessionUseCases<R>, policy: P) -> SessionEdgeBuilder<R, Self>
    where
        P: TryInto<RoutePolicy<R>>,
        ConfigError: From<P::Error>,
    {
        SessionEdgeBuilder::new(sessions, policy)
    }

    /// The edge this layer translates: its policy, cookies and token
    /// header.
    #[must_use]
    pub fn edge(&self) -> &SessionEdge<R> {
        &self.edge
    }
}

impl<S, R: Role> Layer<S> for SessionLayer<R> {
    type Service = SessionService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            edge: self.edge.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S, R: Role> {
    inner: S,
    edge: SessionEdge<R>,
}

impl<S: fmt::Debug, R: Role> fmt::Debug for SessionService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("edge", &self.edge)
            .finish()
    }
}

type Pending<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

pin_project! {
    /// The future of [`SessionService`]: the layer's own answer, the inner
    /// service's response, or — when the admission needs the user
    /// directory (rotation, a provider token) — that work followed by the
    /// inner service.
    pub struct SessionFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, E> {
        Answered { response: Option<Response<Body>> },
        Forwarded { #[pin] future: F, attach: Option<Attach> },
        Pending { future: Pending<E> },
    }
}

impl<F, E> fmt::Debug for SessionFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Answered { .. } => "answered",
            State::Forwarded { .. } => "forwarded",
            State::Pending { .. } => "pending",
        };
        f.debug_struct("SessionFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, E, ResBody> Future for SessionFuture<F, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Answered { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled after completion: never answers twice.
                None => Poll::Pending,
            },
            StateProj::Forwarded { future, attach } => future.poll(cx).map(|result| {
                result.map(|response| {
                    let mut response = response.map(Body::new);
                    if let Some(attach) = attach.take() {
                        attach.apply(response.headers_mut());
                    }
                    response
                })
            }),
            StateProj::Pending { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, R, B, ResBody> Service<Request<B>> for SessionService<S, R>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    R: Role,
    B: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = SessionFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if self.edge.strips_identity_headers() {
            let stripped = gateway::strip_identity_headers(request.headers_mut());
            if stripped > 0 {
                tracing::warn!(stripped, "client sent identity headers; stripped");
            }
        }
        let decision = {
            let uri = full_uri(&request);
            let headers = request.headers();
            self.edge.decide(
                request.method().as_str(),
                uri.path(),
                uri.query(),
                request.uri().authority().map(Authority::as_str),
                |name| headers.get_all(name).iter().map(HeaderValue::as_bytes),
            )
        };
        let admission = match decision {
            Decision::Decided(admission) => admission,
            Decision::Pending(pending) => {
                // The admission awaits the directory: the request waits for
                // it in a box, with the clone that takes the ready
                // service's place.
                let ready = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready);
                let edge = self.edge.clone();
                let future = async move {
                    let admission = pending.finish().await;
                    let (forwarded, attach) = settle(&edge, &mut request, admission);
                    let mut response = match forwarded {
                        Ok(()) => inner.call(request).await?.map(Body::new),
                        Err(answer) => answer,
                    };
                    attach.apply(response.headers_mut());
                    Ok(response)
                };
                return SessionFuture {
                    state: State::Pending {
                        future: Box::pin(future),
                    },
                };
            }
        };
        match settle(&self.edge, &mut request, admission) {
            (Ok(()), attach) => SessionFuture {
                state: State::Forwarded {
                    future: self.inner.call(request),
                    attach: (!attach.is_empty()).then_some(attach),
                },
            },
            (Err(mut answer), attach) => {
                attach.apply(answer.headers_mut());
                SessionFuture {
                    state: State::Answered {
                        response: Some(answer),
                    },
                }
            }
        }
    }
}

/// Readies the request for the handler (its session in the extensions,
/// and in gateway mode the signed identity headers) or gives the answer
/// instead; and what the response gets.
fn settle<B, R: Role>(
    edge: &SessionEdge<R>,
    request: &mut Request<B>,
    admission: Admission<R>,
) -> (Result<(), Response<Body>>, Attach) {
    let settled = edge.settle(
        admission,
        request.method().as_str(),
        target_of(full_uri(request)),
    );
    let forwarded = match settled.forward {
        Err(answer) => Err(answer.map(Body::from)),
        Ok(Forward::Guest { refused }) => {
            let extensions = request.extensions_mut();
            extensions.insert(LayerSeen { refused });
            extensions.insert(AdmittedBy(edge.clone()));
            Ok(())
        }
        Ok(Forward::Session {
            admitted,
            identity_headers,
        }) => {
            let AdmittedSession {
                session, provider, ..
            } = *admitted;
            let headers = request.headers_mut();
            for (name, value) in identity_headers {
                headers.insert(name, value);
            }
            let extensions = request.extensions_mut();
            if let Some(provider) = provider {
                extensions.insert(ProviderUser::new(provider));
            }
            extensions.insert(Session::new(session));
            extensions.insert(AdmittedBy(edge.clone()));
            Ok(())
        }
    };
    (forwarded, settled.attach)
}

/// The URI the policy sees: the full one even inside a nested router.
pub(crate) fn full_uri<B>(request: &Request<B>) -> &Uri {
    original_uri(request.extensions(), request.uri())
}

/// axum's `OriginalUri` when a router put one in `extensions`, else `uri`.
pub(crate) fn original_uri<'a>(extensions: &'a Extensions, uri: &'a Uri) -> &'a Uri {
    extensions
        .get::<OriginalUri>()
        .map_or(uri, |original| &original.0)
}

/// The path and query of `uri`, as the client sent them.
pub(crate) fn target_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |pq| pq.as_str())
}
