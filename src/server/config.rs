//! The configuration of `tessera serve`: one TOML file
//! (`examples/tessera.toml` documents every field), environment overrides
//! on top, and the defaults of the embedded service under both.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_domain::{
    Capability, Requirement, Role as _, RoutePolicy, RouteRule, SessionLifetimes, UserRole,
};
use time::Duration;

/// The environment variables that override the file, and the field each
/// sets (`section.field`). Every value is a string.
pub const ENV_OVERRIDES: [(&str, &str, &str); 13] = [
    ("TESSERA_LISTEN", "server", "listen"),
    ("TESSERA_LOG", "server", "log"),
    ("TESSERA_LOG_FORMAT", "server", "log_format"),
    ("TESSERA_ISSUER", "tokens", "issuer"),
    ("TESSERA_AUDIENCE", "tokens", "audience"),
    ("TESSERA_KEY_ALGORITHM", "keys", "algorithm"),
    ("TESSERA_KEY_DIR", "keys", "dir"),
    ("TESSERA_COOKIE_NAME", "cookie", "name"),
    ("TESSERA_ADMIN_SECRET", "admin", "secret"),
    ("TESSERA_GATEWAY_SECRET", "gateway", "secret"),
    ("TESSERA_GATEWAY_AUDIENCE", "gateway", "audience"),
    ("TESSERA_POSTGRES_URL", "postgres", "url"),
    ("TESSERA_WEBHOOK_SECRET", "webhooks", "secret"),
];

/// The shortest administrative or gateway secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why the configuration cannot be used. Each names the field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file (with its overrides) is not valid TOML of this shape.
    #[error("invalid configuration: {0}")]
    Parse(#[source] toml::de::Error),
    /// A field has a value that cannot work.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, `section.field`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A [`ConfigError::Invalid`] for `field`.
pub(crate) fn invalid(field: impl Into<String>, reason: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.to_string(),
    }
}

/// A secret from the configuration: its `Debug` prints
/// `Secret(**redacted**)`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    ///
    /// **Security:** never log or print it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

/// The whole configuration of `tessera serve`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// `[server]`: where to listen, how much to log.
    pub server: ListenConfig,
    /// `[tokens]`: issuer, audience, lifetimes.
    pub tokens: TokensConfig,
    /// `[keys]`: the signing keys.
    pub keys: KeysConfig,
    /// `[cookie]`: the session cookie.
    pub cookie: CookieConfig,
    /// `[pages]`: where browser routes send guests and signed-in users.
    pub pages: PagesConfig,
    /// `[admin]`: the secret of the administrative endpoints.
    pub admin: AdminConfig,
    /// `[gateway]`: the key signing the identity headers.
    pub gateway: GatewayConfig,
    /// `[policy]`: who may call what behind the gateway.
    pub policy: PolicyConfig,
    /// `[postgres]`: shared stores for a fleet.
    pub postgres: Option<PostgresConfig>,
    /// `[provider]`: the identity provider whose tokens
    /// `POST /session/exchange` swaps for sessions.
    pub provider: Option<ProviderConfig>,
    /// `[webhooks]`: the provider's user webhooks, at `POST /webhooks/users`.
    pub webhooks: Option<WebhooksConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ListenConfig {
    /// The socket address (default `127.0.0.1:8080`; port 0 picks one).
    pub listen: String,
    /// The log level: `error`, `warn`, `info` (default), `debug`, `trace`.
    pub log: String,
    /// The log lines: `text` (default) or `json`, one object per line.
    pub log_format: String,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            log: "info".to_owned(),
            log_format: "text".to_owned(),
        }
    }
}

/// `[tokens]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TokensConfig {
    /// `iss` of every token (default `http://127.0.0.1`).
    pub issuer: String,
    /// `aud` of every token (default `tessera`).
    pub audience: String,
    /// How long one token lives, in seconds (default 900).
    pub lifetime_seconds: i64,
    /// How long a session lives from sign-in, in seconds (default 43200).
    pub absolute_lifetime_seconds: i64,
    /// Token age, in seconds, from which the verdict rotates it (default 300).
    pub rotate_after_seconds: i64,
    /// Clock skew tolerated, in seconds (default 30).
    pub leeway_seconds: i64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        let lifetimes = SessionLifetimes::default();
        Self {
            issuer: "http://127.0.0.1".to_owned(),
            audience: "tessera".to_owned(),
            lifetime_seconds: lifetimes.token().whole_seconds(),
            absolute_lifetime_seconds: lifetimes.absolute().whole_seconds(),
            rotate_after_seconds: lifetimes.rotate_after().whole_seconds(),
            leeway_seconds: lifetimes.leeway().whole_seconds(),
        }
    }
}

impl TokensConfig {
    /// The lifetimes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when they contradict each other.
    pub fn lifetimes(&self) -> Result<SessionLifetimes, ConfigError> {
        SessionLifetimes::new(
            Duration::seconds(self.lifetime_seconds),
            Duration::seconds(self.absolute_lifetime_seconds),
            Duration::seconds(self.rotate_after_seconds),
            Duration::seconds(self.leeway_seconds),
        )
        .map_err(|error| invalid("tokens", error))
    }
}

/// `[keys]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct KeysConfig {
    /// The algorithm of a generated key: `EdDSA` (default), `ES256`,
    /// `RS256` or `HS256`.
    pub algorithm: String,
    /// A directory of private JWKs (`*.json`). Without a schedule the last
    /// file by name signs and the others verify; with one, the schedule
    /// decides. Empty or missing: a key is generated into it.
    pub dir: Option<PathBuf>,
    /// Private JWK files; the first signs, the others verify. Not with
    /// `dir`.
    pub files: Vec<PathBuf>,
    /// With `dir`: a new signing key every so many seconds, at most ten
    /// years (none by default).
    pub rotate_every_seconds: Option<i64>,
    /// With `rotate_every_seconds`: how long the next key is published
    /// before it signs, in seconds (default 86400, at least 420: the JWKS
    /// cache time and two checks).
    pub publish_ahead_seconds: i64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            algorithm: "EdDSA".to_owned(),
            dir: None,
            files: Vec::new(),
            rotate_every_seconds: None,
            publish_ahead_seconds: 86_400,
        }
    }
}

/// `[cookie]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CookieConfig {
    /// The session cookie's name (default `__Host-session`).
    pub name: String,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: tessera_http::DEFAULT_COOKIE_NAME.to_owned(),
        }
    }
}

/// `[pages]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PagesConfig {
    /// The sign-in page browser routes redirect guests to (default `/login`).
    pub login: String,
    /// Its query parameter naming the page to return to (default `return_to`).
    pub return_to_param: String,
    /// Where signed-in users asking for a guest-only page go (default `/`).
    pub signed_in: String,
}

impl Default for PagesConfig {
    fn default() -> Self {
        Self {
            login: tessera_http::DEFAULT_LOGIN_PATH.to_owned(),
            return_to_param: tessera_http::DEFAULT_RETURN_TO_PARAM.to_owned(),
            signed_in: tessera_http::DEFAULT_SIGNED_IN_PATH.to_owned(),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The bearer secret of `/admin/*`, at least 32 bytes. Without one the
    /// administrative endpoints are not mounted at all.
    pub secret: Option<Secret>,
}

/// `[gateway]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// The key (at least 32 bytes) that signs the identity headers, shared
    /// with the backends that check them. Without one the headers are
    /// signed with a random key of this process, which nobody can check.
    pub secret: Option<Secret>,
    /// Derive the signing key for this one backend
    /// (`GatewayKey::for_audience`).
    pub audience: Option<String>,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// The requirement of paths no route matches: `authenticated`
    /// (default), `deny`, `not_found` or `public`.
    pub default: String,
    /// Origins trusted for unsafe cross-origin browser requests.
    pub trusted_origins: Vec<String>,
    /// The routes, first match wins.
    pub routes: Vec<RouteConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            default: "authenticated".to_owned(),
            trusted_origins: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// One `[[policy.routes]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The path pattern (`/`, `/api/*`, `/tenants/:tenant/*`).
    pub path: String,
    /// The methods (upper case); none: every method.
    pub methods: Vec<String>,
    /// `public`, `guest_only`, `authenticated`, `deny` or `not_found`;
    /// implied `authenticated` by the fields below.
    pub require: Option<String>,
    /// A role at least this one.
    pub role: Option<String>,
    /// One of these roles.
    pub any_role: Vec<String>,
    /// This capability.
    pub capability: Option<String>,
    /// The session's tenant equals this path parameter.
    pub tenant_param: Option<String>,
    /// A browser route: guests are redirected to the sign-in page.
    pub browser: bool,
    /// Unsafe cross-origin browser requests are allowed here.
    pub allow_cross_origin: bool,
}

/// `[postgres]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// The connection URL (it may hold a password: never logged).
    pub url: Secret,
    /// How long the revocation state may go without confirming it is in
    /// sync before verdicts fail closed and `/readyz` says not ready, in
    /// seconds (default 10).
    #[serde(default = "default_staleness_bound_seconds")]
    pub staleness_bound_seconds: f64,
    /// The URL leads to a pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`, a managed proxy), where `LISTEN` does not
    /// work: the change log is polled instead, every 250 ms.
    #[serde(default)]
    pub transaction_pooler: bool,
}

fn default_staleness_bound_seconds() -> f64 {
    10.0
}

/// `[provider]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// The issuer, as its tokens name it (`iss`). Its keys are found
    /// through `{issuer}/.well-known/openid-configuration` unless
    /// `jwks_url` is set; https, or http on loopback only.
    pub issuer: String,
    /// The provider's key set, for a provider without an OpenID
    /// configuration.
    pub jwks_url: Option<String>,
    /// The algorithms its tokens may use (default `["RS256"]`): `RS256`,
    /// `PS256`, `ES256`, `EdDSA`, …; never a symmetric one.
    #[serde(default = "default_provider_algorithms")]
    pub algorithms: Vec<String>,
    /// Where its tokens carry the role: a dotted claim path (default
    /// `role`); a string or an array of strings.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The role of a token without one: a role name (default `user`), or
    /// `refuse`.
    #[serde(default = "default_missing_role")]
    pub missing_role: String,
    /// The provider's role names and the roles they become
    /// (`{ "org:admin" = "admin" }`); a provider role not listed, nor a
    /// role name itself, is refused.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, String>,
    /// Where its tokens carry the email (default `email`).
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    /// The kinds of token it issues that are exchanged: at least one.
    pub profiles: Vec<ProfileConfig>,
}

fn default_provider_algorithms() -> Vec<String> {
    vec!["RS256".to_owned()]
}

fn default_role_claim() -> String {
    "role".to_owned()
}

fn default_missing_role() -> String {
    "user".to_owned()
}

fn default_email_claim() -> String {
    "email".to_owned()
}

/// One `[[provider.profiles]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ProfileConfig {
    /// `access` (an access token for your API; any `typ` unless set) or
    /// `id` (an OpenID Connect ID token; `typ` absent or `JWT`).
    pub token: String,
    /// The audiences, one of which the token must name (an access token:
    /// your API; an ID token: the client id).
    pub audiences: Vec<String>,
    /// The `typ` its header must carry (`at+jwt`), or `any`.
    pub typ: Option<String>,
    /// `users` (default), `machines` (client credentials) or `both`.
    pub subjects: Option<String>,
    /// `azp` values allowed (none: any).
    pub allowed_parties: Vec<String>,
    /// Claims the token must carry.
    pub require_claims: Vec<String>,
    /// Claims the token must carry with these values
    /// (`{ email_verified = true }`): strings, booleans or integers.
    pub require_values: toml::Table,
}

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhooksConfig {
    /// The Standard Webhooks (Svix, Clerk) signing secret, `whsec_…`.
    pub secret: Secret,
    /// Where a user payload carries the role (default: the provider's
    /// `role_claim`); Clerk's is `public_metadata.role`.
    pub role_claim: Option<String>,
}

impl ServerConfig {
    /// The configuration in `path` (or the defaults without one), with
    /// the overrides of [`ENV_OVERRIDES`] read through `env`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the file cannot be read or parsed.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Self::parse(&text, env)
    }

    /// The configuration in `text`, with the overrides read through `env`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] when it is not TOML of this shape.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(ConfigError::Parse)?;
        for (name, section, field) in ENV_OVERRIDES {
            let Some(value) = env(name) else { continue };
            let entry = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = entry else {
                return Err(invalid(section, "must be a table"));
            };
            section_table.insert(field.to_owned(), toml::Value::String(value));
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(ConfigError::Parse)
    }

    /// The listening address.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when it is not a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .parse()
            .map_err(|error| invalid("server.listen", error))
    }

    /// The route policy of `[policy]`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the route at fault.
    pub fn route_policy(&self) -> Result<RoutePolicy<UserRole>, ConfigError> {
        let default = simple_requirement(&self.policy.default)
            .ok_or_else(|| invalid("policy.default", "unknown requirement"))?;
        let rules = self
            .policy
            .routes
            .iter()
            .enumerate()
            .map(|(index, route)| {
                route_rule(route)
                    .map_err(|reason| invalid(format!("policy.routes[{index}]"), reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        RoutePolicy::builder()
            .rules(rules)
            .default_requirement(default)
            .build()
            .map_err(|error| invalid("policy.routes", error))
    }
}

/// A requirement that needs no argument.
fn simple_requirement(name: &str) -> Option<Requirement<UserRole>> {
    Some(match name {
        "public" => Requirement::Public,
        "guest_only" => Requirement::GuestOnly,
        "authenticated" => Requirement::Authenticated,
        "deny" => Requirement::Deny,
        "not_found" => Requirement::NotFound,
        _ => return None,
    })
}

/// One rule, or why it cannot be one.
fn route_rule(route: &RouteConfig) -> Result<RouteRule<UserRole>, String> {
    let role = |name: &String| UserRole::parse(name).map_err(|error| error.to_string());
    let mut needs = Vec::new();
    if let Some(name) = &route.role {
        needs.push(Requirement::AtLeastRole(role(name)?));
    }
    if !route.any_role.is_empty() {
        let roles = route.any_role.iter().map(role).collect::<Result<_, _>>()?;
        needs.push(Requirement::AnyRole(roles));
    }
    if let Some(capability) = &route.capability {
        let capability = Capability::parse(capability).map_err(|error| error.to_string())?;
        needs.push(Requirement::Capability(capability));
    }
    if let Some(param) = &route.tenant_param {
        needs.push(Requirement::TenantParam(param.clone()));
    }
    let requirement = match (route.require.as_deref(), needs.len()) {
        (Some(name), 0) => {
            simple_requirement(name).ok_or_else(|| format!("unknown requirement {name:?}"))?
        }
        (None, 0) => return Err("needs require, role, any_role, capability or tenant_param".into()),
        (None | Some("authenticated"), 1) => needs.pop().ok_or("no requirement")?,
        (None | Some("authenticated"), _) => Requirement::All(needs),
        (Some(name), _) => {
            return Err(format!(
                "require = {name:?} cannot be combined with a role, capability or tenant"
            ));
        }
    };
    let mut rule = RouteRule::new(&route.path, requirement);
    if !route.methods.is_empty() {
        let methods: Vec<&str> = route.methods.iter().map(String::as_str).collect();
        rule = rule.methods(&methods);
    }
    if route.browser {
        rule = rule.browser();
    }
    if route.allow_cross_origin {
        rule = rule.allow_cross_origin();
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn no_file_gives_the_embedded_defaults() {
        let config = ServerConfig::parse("", no_env).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.keys.algorithm, "EdDSA");
        assert!(config.admin.secret.is_none());
        assert!(config.postgres.is_none());
        assert_eq!(
            config.tokens.lifetimes().unwrap(),
            SessionLifetimes::default()
        );
    }

    #[test]
    fn the_documented_example_parses_into_a_policy() {
        let text = include_str!("../../examples/tessera.toml");
        let config = ServerConfig::parse(text, no_env).unwrap();
        let policy = config.route_policy().unwrap();
        assert_eq!(policy.rules().len(), 6);
        assert_eq!(
            policy.route("GET", "/nowhere").requirement(),
            &Requirement::Deny
        );
        config.tokens.lifetimes().unwrap();
    }

    #[test]
    fn the_documented_example_lists_every_environment_override() {
        let text = include_str!("../../examples/tessera.toml");
        for (name, section, field) in ENV_OVERRIDES {
            let line = format!("{name:<25} {section}.{field}");
            assert!(text.contains(&line), "examples/tessera.toml lacks {line:?}");
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\n[tokens]\naudience = \"file\"\n";
        let env = |name: &str| match name {
            "TESSERA_LISTEN" => Some("127.0.0.1:0".to_owned()),
            "TESSERA_ADMIN_SECRET" => Some("s".repeat(32)),
            _ => None,
        };
        let config = ServerConfig::parse(text, env).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:0");
        assert_eq!(config.tokens.audience, "file");
        assert_eq!(config.admin.secret.unwrap().expose_secret(), "s".repeat(32));
    }

    #[test]
    fn unknown_fields_are_errors_not_ignored() {
        let error = ServerConfig::parse("[server]\nlisten_on = \"x\"\n", no_env).unwrap_err();
        assert!(error.to_string().contains("listen_on"), "{error}");
    }

    #[test]
    fn secrets_print_redacted() {
        let config = ServerConfig::parse("[admin]\nsecret = \"hunter2hunter2\"\n", no_env).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn routes_become_the_policy_and_bad_ones_name_their_index() {
        let text = r#"
            [policy]
            default = "deny"
            [[policy.routes]]
            path = "/"
            require = "public"
            methods = ["GET"]
            [[policy.routes]]
            path = "/admin/*"
            role = "admin"
            browser = true
        "#;
        let policy = ServerConfig::parse(text, no_env)
            .unwrap()
            .route_policy()
            .unwrap();
        assert_eq!(policy.rules().len(), 2);
        assert_eq!(
            policy.route("GET", "/admin/x").requirement(),
            &Requirement::AtLeastRole(UserRole::Admin)
        );
        assert!(policy.route("GET", "/admin").is_browser());
        assert_eq!(
            policy.route("GET", "/other").requirement(),
            &Requirement::Deny
        );

        let bad = "[[policy.routes]]\npath = \"/x\"\nrole = \"emperor\"\n";
        let error = ServerConfig::parse(bad, no_env)
            .unwrap()
            .route_policy()
            .unwrap_err();
        assert!(error.to_string().starts_with("policy.routes[0]"), "{error}");
        let mixed = "[[policy.routes]]\npath = \"/x\"\nrequire = \"public\"\nrole = \"admin\"\n";
        assert!(
            ServerConfig::parse(mixed, no_env)
                .unwrap()
                .route_policy()
                .is_err()
        );
    }
}
