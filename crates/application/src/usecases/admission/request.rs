//! What the admission is asked: a request as plain data.

/// One request, as the admission sees it: method, path, query and the
/// credential the edge read from it. No HTTP types: any framework adapter
/// can build one.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AdmissionRequest<'a> {
    /// The method, as sent (`GET`, `POST`, …).
    pub method: &'a str,
    /// The path, still percent-encoded, without the query.
    pub path: &'a str,
    /// The query, without the `?`.
    pub query: Option<&'a str>,
    /// The credential the request carried.
    pub credential: PresentedCredential<'a>,
    /// What a browser says about where the request comes from.
    pub browser: BrowserFacts<'a>,
}

/// What a browser says about where a request comes from, for the
/// cross-origin rule. A header sent more than once is given as `Some("")`:
/// a value that matches nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrowserFacts<'a> {
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Sec-Fetch-Site` header.
    pub fetch_site: Option<&'a str>,
    /// The request's host (`Host`, or the request-target's authority).
    pub host: Option<&'a str>,
}

impl<'a> BrowserFacts<'a> {
    /// The facts as the request's headers give them.
    #[must_use]
    pub fn new(
        origin: Option<&'a str>,
        fetch_site: Option<&'a str>,
        host: Option<&'a str>,
    ) -> Self {
        Self {
            origin,
            fetch_site,
            host,
        }
    }
}

impl<'a> AdmissionRequest<'a> {
    /// A request without a query.
    #[must_use]
    pub fn new(method: &'a str, path: &'a str, credential: PresentedCredential<'a>) -> Self {
        Self {
            method,
            path,
            query: None,
            credential,
            browser: BrowserFacts::default(),
        }
    }

    /// What the browser says about where the request comes from.
    #[must_use]
    pub fn with_browser_facts(mut self, browser: BrowserFacts<'a>) -> Self {
        self.browser = browser;
        self
    }

    /// The request's query (without the `?`).
    #[must_use]
    pub fn with_query(mut self, query: Option<&'a str>) -> Self {
        self.query = query;
        self
    }

    /// The path and query, as the request sent them.
    pub(crate) fn target(&self) -> std::borrow::Cow<'a, str> {
        match self.query {
            Some(query) => format!("{}?{query}", self.path).into(),
            None => self.path.into(),
        }
    }
}

/// The credential a request carried.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PresentedCredential<'a> {
    /// None at all.
    None,
    /// A token. A secret: never log it.
    Token {
        /// The token.
        token: &'a str,
        /// Where it came from, which is where a rotated one goes.
        via: CredentialSource,
    },
    /// Something that cannot be read as a credential.
    Unreadable(CredentialFault),
}

impl std::fmt::Debug for PresentedCredential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Token { via, .. } => f
                .debug_struct("Token")
                .field("token", &"**redacted**")
                .field("via", via)
                .finish(),
            Self::Unreadable(fault) => f.debug_tuple("Unreadable").field(fault).finish(),
        }
    }
}

/// Where a credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `Authorization: Bearer`.
    Bearer,
    /// The session cookie.
    Cookie,
    /// Both, carrying the same token.
    Both,
}

impl CredentialSource {
    /// Whether the session cookie carried the credential.
    #[must_use]
    pub fn has_cookie(self) -> bool {
        matches!(self, Self::Cookie | Self::Both)
    }

    /// Whether the `Authorization` header carried the credential.
    #[must_use]
    pub fn has_bearer(self) -> bool {
        matches!(self, Self::Bearer | Self::Both)
    }
}

/// Why a request's credential cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialFault {
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    SeveralAuthorizationHeaders,
    /// The `Authorization` header is not visible ASCII.
    #[error("the Authorization header is not text")]
    AuthorizationNotText,
    /// `Bearer` with no token, or a token that is not `token68`.
    #[error("the bearer token is missing or not a token68")]
    MalformedBearer,
    /// The session cookie appears several times with different values.
    #[error("the session cookie is sent several times with different values")]
    ConflictingCookies,
    /// The session cookie's value is not a token.
    #[error("the session cookie is not a token")]
    MalformedCookie,
    /// A bearer token and a session cookie with different values.
    #[error("a bearer token and a session cookie with different values")]
    ConflictingCredentials,
    /// The token is longer than the cap; nothing was decoded.
    #[error("the credential is larger than the cap")]
    TooLarge {
        /// The session cookie carried it.
        in_cookie: bool,
    },
}

impl CredentialFault {
    /// A stable code for logs.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::SeveralAuthorizationHeaders => "several_authorization_headers",
            Self::AuthorizationNotText => "authorization_not_text",
            Self::MalformedBearer => "malformed_bearer",
            Self::ConflictingCookies => "conflicting_cookies",
            Self::MalformedCookie => "malformed_cookie",
            Self::ConflictingCredentials => "conflicting_credentials",
            Self::TooLarge { .. } => "credential_too_large",
        }
    }

    /// Whether a token was presented and is bad (RFC 6750 `invalid_token`),
    /// rather than the request being malformed (`invalid_request`).
    #[must_use]
    pub fn is_invalid_token(self) -> bool {
        matches!(self, Self::MalformedCookie | Self::TooLarge { .. })
    }

    /// Whether the session cookie is what is bad, so that clearing it helps.
    #[must_use]
    pub fn blames_cookie(self) -> bool {
        matches!(
            self,
            Self::MalformedCookie | Self::TooLarge { in_cookie: true }
        )
    }
}
