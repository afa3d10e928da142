//! The actix-web middleware: a translation of [`SessionEdge`] for an
//! actix-web `App` or `Scope`.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Uri;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, SET_COOKIE};
use actix_web::http::uri::Authority;
use actix_web::{Error, HttpMessage as _, HttpResponse};
use pin_project_lite::pin_project;
use tessera_application::{Admission, AdmittedSession, Decision};
use tessera_domain::{Role, RoutePolicy};
use tessera_http::{
    Attach, ConfigError, Forward, HttpRefusal as _, LayerSeen, SessionEdge, SessionEdgeBuilder,
    SessionRejection, SessionUseCases, gateway,
};

use crate::auth::AdmittedBy;
use crate::convert::{into_response, to_actix};
use crate::extract::Session;
use crate::provider_user::ProviderUser;

/// Sessions and route access for an actix-web `App` (or `Scope`): the
/// same edge, answers and defaults as tessera's other framework adapters,
/// since every decision is [`SessionEdge`]'s.
///
/// Per request, the middleware:
///
/// 1. in [gateway mode](tessera_http::gateway) (or with provider tokens),
///    strips every identity header the client sent;
/// 2. hands the method, the path and query as sent, the `Authorization`
///    and `Cookie` headers, and what `Origin`, `Sec-Fetch-Site` and `Host`
///    say (the cross-origin rule) to [`SessionEdge::decide`], and
///    awaits the user directory when the admission needs it (rotation, a
///    provider token);
/// 3. either answers the refusal — 400 `invalid_request`, 401 with a
///    `WWW-Authenticate: Bearer` challenge, 403 (also for an unsafe
///    cross-origin request), 404 where the policy says so, 303 to the
///    login page on browser routes, 503 when verification fails closed —
///    or calls
///    the inner service with the [`Session`] (and a [`ProviderUser`] for a
///    provider token; in gateway mode, signed identity headers) or, for a
///    guest, a [`LayerSeen`] in the request's extensions;
/// 4. attaches the rotated credential (the session cookie, or the
///    `x-session-token` header for bearer clients, with `Cache-Control:
///    no-store`) or the cleared cookie to the response, whatever its
///    status. A handler that sets the session cookie or the token header
///    itself, as sign-in and sign-out do, wins.
///
/// The reason of a refusal goes to `tracing`, never the token.
///
/// # Where to put it
///
/// `App::wrap` (or `Scope::wrap`): the policy sees the request's full path
/// even inside a scope. Put one such middleware per request path: two
/// would verify and rotate twice.
///
/// ```
/// use actix_web::{App, HttpServer, web};
/// use tessera_actix::{Session, SessionMiddleware};
///
/// async fn me(session: Session) -> String {
///     session.user_id().to_string()
/// }
///
/// async fn serve(middleware: SessionMiddleware) -> std::io::Result<()> {
///     HttpServer::new(move || {
///         App::new()
///             .wrap(middleware.clone())
///             .route("/me", web::get().to(me))
///     })
///     .bind(("127.0.0.1", 8080))?
///     .run()
///     .await
/// }
/// ```
#[derive(Clone)]
pub struct SessionMiddleware<R: Role = tessera_domain::UserRole> {
    edge: SessionEdge<R>,
}

impl<R: Role> fmt::Debug for SessionMiddleware<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("edge", &self.edge)
            .finish()
    }
}

impl<R: Role> From<SessionEdge<R>> for SessionMiddleware<R> {
    fn from(edge: SessionEdge<R>) -> Self {
        Self { edge }
    }
}

impl<R: Role> SessionMiddleware<R> {
    /// Starts a middleware enforcing `policy` with `sessions`, with the
    /// settings and defaults of
    /// [`SessionEdge::builder`].
    pub fn builder<P>(sessions: SessionUseCases<R>, policy: P) -> SessionEdgeBuilder<R, Self>
    where
        P: TryInto<RoutePolicy<R>>,
        ConfigError: From<P::Error>,
    {
        SessionEdgeBuilder::new(sessions, policy)
    }

    /// The edge this middleware translates: its policy, cookies and token
    /// header.
    #[must_use]
    pub fn edge(&self) -> &SessionEdge<R> {
        &self.edge
    }
}

impl<S, B, R> Transform<S, ServiceRequest> for SessionMiddleware<R>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    R: Role,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionService<S, R>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            inner: Rc::new(service),
            edge: self.edge.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an inner service.
pub struct SessionService<S, R: Role> {
    inner: Rc<S>,
    edge: SessionEdge<R>,
}

impl<S, R: Role> fmt::Debug for SessionService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("edge", &self.edge)
            .finish_non_exhaustive()
    }
}

type Answer<B> = ServiceResponse<EitherBody<B>>;
type Pending<B> = Pin<Box<dyn Future<Output = Result<Answer<B>, Error>>>>;

pin_project! {
    /// The future of [`SessionService`]: the middleware's own answer, the
    /// inner service's response, or — when the admission needs the user
    /// directory (rotation, a provider token) — that work followed by the
    /// inner service, in a box.
    pub struct SessionFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Answered { response: Option<Answer<B>> },
        Forwarded { #[pin] future: F, attach: Option<Attach> },
        Pending { future: Pending<B> },
    }
}

impl<F, B> fmt::Debug for SessionFuture<F, B> {
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

impl<F, B> Future for SessionFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<Answer<B>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Answered { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled after completion: never answers twice.
                None => Poll::Pending,
            },
            StateProj::Forwarded { future, attach } => future.poll(cx).map(|result| {
                result.map(|mut response| {
                    if let Some(attach) = attach.take() {
                        apply(attach, response.headers_mut());
                    }
                    response.map_into_left_body()
                })
            }),
            StateProj::Pending { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, B, R> Service<ServiceRequest> for SessionService<S, R>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    R: Role,
{
    type Response = Answer<B>;
    type Error = Error;
    type Future = SessionFuture<S::Future, B>;

    forward_ready!(inner);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        if self.edge.strips_identity_headers() {
            let stripped = strip_identity_headers(request.headers_mut());
            if stripped > 0 {
                tracing::warn!(stripped, "client sent identity headers; stripped");
            }
        }
        let decision = {
            let head = request.head();
            self.edge.decide(
                head.method.as_str(),
                head.uri.path(),
                head.uri.query(),
                head.uri.authority().map(Authority::as_str),
                // A static name: no parsing or allocation per request.
                |name| {
                    head.headers
                        .get_all(HeaderName::from_static(name))
                        .map(HeaderValue::as_bytes)
                },
            )
        };
        let admission = match decision {
            Decision::Decided(admission) => admission,
            Decision::Pending(pending) => {
                // The admission awaits the directory: the request waits for
                // it in a box, with a handle on the inner service.
                let inner = Rc::clone(&self.inner);
                let edge = self.edge.clone();
                let future = async move {
                    let admission = pending.finish().await;
                    let (forwarded, attach) = settle(&edge, &mut request, admission);
                    let mut response = match forwarded {
                        Ok(()) => inner.call(request).await?.map_into_left_body(),
                        Err(answer) => request.into_response(answer).map_into_right_body(),
                    };
                    apply(attach, response.headers_mut());
                    Ok(response)
                };
                return SessionFuture {
                    state: State::Pending {
                        future: Box::pin(future),
                    },
                };
            }
        };
        let state = match settle(&self.edge, &mut request, admission) {
            (Ok(()), attach) => State::Forwarded {
                future: self.inner.call(request),
                attach: (!attach.is_empty()).then_some(attach),
            },
            (Err(answer), attach) => {
                let mut response = request.into_response(answer).map_into_right_body();
                apply(attach, response.headers_mut());
                State::Answered {
                    response: Some(response),
                }
            }
        };
        SessionFuture { state }
    }
}

/// Readies the request for the handler (its session in the extensions,
/// and in gateway mode the signed identity headers) or gives the answer
/// instead; and what the response gets.
fn settle<R: Role>(
    edge: &SessionEdge<R>,
    request: &mut ServiceRequest,
    admission: Admission<R>,
) -> (Result<(), HttpResponse<BoxBody>>, Attach) {
    let settled = edge.settle(
        admission,
        request.method().as_str(),
        target_of(request.uri()),
    );
    let forwarded = match settled.forward {
        Err(answer) => Err(into_response(answer)),
        Ok(Forward::Guest { refused }) => {
            let mut extensions = request.extensions_mut();
            extensions.insert(LayerSeen { refused });
            extensions.insert(AdmittedBy(edge.clone()));
            Ok(())
        }
        Ok(Forward::Session {
            admitted,
            identity_headers,
        }) => {
            let converted: Option<Vec<_>> = identity_headers
                .iter()
                .map(|(name, value)| to_actix(name, value))
                .collect();
            match converted {
                // Never forwarded without the identity it was admitted
                // with: the same 500 `server_error` the edge gives when it
                // cannot sign the headers.
                None => Err(into_response(SessionRejection::LayerMissing.into_http())),
                Some(converted) => {
                    let headers = request.headers_mut();
                    for (name, value) in converted {
                        headers.insert(name, value);
                    }
                    let AdmittedSession {
                        session, provider, ..
                    } = *admitted;
                    let mut extensions = request.extensions_mut();
                    if let Some(provider) = provider {
                        extensions.insert(ProviderUser::new(provider));
                    }
                    extensions.insert(Session::new(session));
                    extensions.insert(AdmittedBy(edge.clone()));
                    Ok(())
                }
            }
        }
    };
    (forwarded, settled.attach)
}

/// Adds what `attach` says to a response's headers; the handler's own
/// session cookie or token header wins.
fn apply(attach: Attach, headers: &mut HeaderMap) {
    if attach.is_empty() {
        return;
    }
    let add = attach.headers_for(
        headers.get_all(SET_COOKIE).map(HeaderValue::as_bytes),
        |name| headers.contains_key(name.as_str()),
    );
    for (name, value) in &add.append {
        if let Some((name, value)) = to_actix(name, value) {
            headers.append(name, value);
        }
    }
    for (name, value) in &add.insert {
        if let Some((name, value)) = to_actix(name, value) {
            headers.insert(name, value);
        }
    }
}

/// [`gateway::strip_identity_headers`] on actix-web's header map.
fn strip_identity_headers(headers: &mut HeaderMap) -> usize {
    let before = headers.len_keys();
    headers.retain(|name, _| !gateway::is_identity_header(name.as_str()));
    before.saturating_sub(headers.len_keys())
}

/// The path and query of `uri`, as the client sent them.
pub(crate) fn target_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |pq| pq.as_str())
}
