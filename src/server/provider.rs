//! An identity provider in `tessera serve`: its tokens swapped for sessions
//! at `POST /session/exchange`, its user webhooks applied at
//! `POST /webhooks/users`. The handlers are the axum adapter's
//! ([`exchange_token`](crate::axum::exchange_token),
//! [`user_webhook`](crate::axum::user_webhook)); this module builds their
//! state from `[provider]` and `[webhooks]`.

use std::sync::Arc;

use tessera_application::external::ExternalUserDirectory;
use tessera_application::ports::Clock;
use tessera_application::{ApplyUserEvent, ExchangeToken};
use tessera_domain::{Role as _, UserRole};
use tessera_http::{UserWebhook, WebhookSecret, WebhookVerifier};
use tessera_infrastructure::JwsAlgorithm;
use tessera_infrastructure::identity::{
    AcceptedSubjects, CachePolicy, ClaimMapping, ClaimValue, HttpJwksSource, JsonUserEventDecoder,
    JwksTokenVerifier, MissingRole, TokenProfile, TypRule,
};

use super::config::{ConfigError, ProfileConfig, ProviderConfig, ServerConfig, invalid};
use super::metrics::KeyFetches;
use crate::Tessera;

/// The provider's endpoints' state, and its key cache for the metrics.
pub(super) struct Provider {
    /// `POST /session/exchange`.
    pub(super) exchange: ExchangeToken<UserRole>,
    /// `POST /webhooks/users`, with `[webhooks]`.
    pub(super) webhook: Option<UserWebhook<UserRole>>,
    verifier: Arc<JwksTokenVerifier<UserRole>>,
    issuer: String,
}

impl Provider {
    /// The provider of `[provider]` (and its webhooks, with `[webhooks]`):
    /// its tokens verified on the manager's clock and leeway, its users
    /// written to `users`. `None` without `[provider]`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the field that cannot work, and
    /// `[webhooks]` without `[provider]`.
    pub(super) fn build(
        config: &ServerConfig,
        sessions: &Tessera<UserRole>,
        users: Arc<dyn ExternalUserDirectory<UserRole>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(provider) = &config.provider else {
            return match config.webhooks {
                Some(_) => Err(invalid("webhooks", "needs a [provider] section")),
                None => Ok(None),
            };
        };
        let tokens = mapping(provider, &provider.role_claim, "provider.role_claim")?;
        let mut profiles = provider
            .profiles
            .iter()
            .enumerate()
            .map(|(index, profile)| {
                token_profile(profile, tokens.clone())
                    .map_err(|reason| invalid(format!("provider.profiles[{index}]"), reason))
            });
        let first = profiles
            .next()
            .ok_or_else(|| invalid("provider.profiles", "needs at least one profile"))??;
        let builder = profiles.try_fold(
            sessions.identity_provider(&provider.issuer, first),
            |builder, profile| profile.map(|profile| builder.profile(profile)),
        )?;
        let algorithms = provider
            .algorithms
            .iter()
            .map(|name| {
                JwsAlgorithm::from_name(name).ok_or_else(|| {
                    invalid("provider.algorithms", format!("unknown algorithm {name:?}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let builder = builder.algorithms(&algorithms);
        let policy = CachePolicy::default();
        let builder = match &provider.jwks_url {
            Some(url) => {
                let source = HttpJwksSource::new(url, policy.fetch_timeout)
                    .map_err(|error| invalid("provider.jwks_url", error))?;
                builder.jwks(Arc::new(source), policy)
            }
            None => builder.discover(policy),
        };
        let verifier = Arc::new(JwksTokenVerifier::new(
            builder
                .build()
                .map_err(|error| invalid("provider", error))?,
        ));
        let webhook = match &config.webhooks {
            None => None,
            Some(hooks) => {
                let secret = WebhookSecret::parse(hooks.secret.expose_secret())
                    .map_err(|error| invalid("webhooks.secret", error))?;
                let roles = match &hooks.role_claim {
                    Some(path) => mapping(provider, path, "webhooks.role_claim")?,
                    None => tokens,
                };
                let decoder = JsonUserEventDecoder::new(provider.issuer.clone(), roles);
                Some(UserWebhook::new(
                    WebhookVerifier::new(secret).with_clock(clock),
                    Arc::new(decoder),
                    ApplyUserEvent::new(users.clone(), sessions.revoke().clone()),
                ))
            }
        };
        Ok(Some(Self {
            exchange: sessions.exchange(verifier.clone(), users),
            webhook,
            verifier,
            issuer: provider.issuer.clone(),
        }))
    }

    /// The key fetches so far (none with static keys).
    pub(super) fn key_fetches(&self) -> KeyFetches {
        let cache = self
            .verifier
            .provider(&self.issuer)
            .and_then(|provider| provider.key_cache());
        KeyFetches {
            issuer: self.issuer.clone(),
            succeeded: cache.map_or(0, |cache| cache.succeeded_fetch_count()),
            failed: cache.map_or(0, |cache| cache.failed_fetch_count()),
        }
    }
}

/// The provider's roles, read at `role_claim` (the setting `field`).
fn mapping(
    provider: &ProviderConfig,
    role_claim: &str,
    field: &str,
) -> Result<ClaimMapping<UserRole>, ConfigError> {
    let missing = match provider.missing_role.as_str() {
        "refuse" => MissingRole::Reject,
        name => MissingRole::LeastPrivilege(
            UserRole::parse(name).map_err(|error| invalid("provider.missing_role", error))?,
        ),
    };
    let mapping = ClaimMapping::new(role_claim, missing)
        .map_err(|error| invalid(field, error))?
        .email(&provider.email_claim)
        .map_err(|error| invalid("provider.email_claim", error))?;
    provider
        .roles
        .iter()
        .try_fold(mapping, |mapping, (theirs, ours)| {
            let field = || format!("provider.roles.{theirs}");
            let role = UserRole::parse(ours).map_err(|error| invalid(field(), error))?;
            mapping
                .map(theirs, role)
                .map_err(|error| invalid(field(), error))
        })
}

/// One token profile, or why it cannot be one.
fn token_profile(
    config: &ProfileConfig,
    mapping: ClaimMapping<UserRole>,
) -> Result<TokenProfile<UserRole>, String> {
    let mut profile = match config.token.as_str() {
        "access" => TokenProfile::access(mapping),
        "id" => TokenProfile::id_token(mapping),
        other => return Err(format!("token: {other:?} is neither \"access\" nor \"id\"")),
    };
    profile = match config.typ.as_deref() {
        None => profile,
        Some("any") => profile.typ(TypRule::Any),
        Some(typ) => profile.typ(TypRule::exactly(typ)),
    };
    profile = profile.subjects(match config.subjects.as_deref() {
        None | Some("users") => AcceptedSubjects::Users,
        Some("machines") => AcceptedSubjects::Machines,
        Some("both") => AcceptedSubjects::Both,
        Some(other) => {
            return Err(format!(
                "subjects: {other:?} is not \"users\", \"machines\" or \"both\""
            ));
        }
    });
    for audience in &config.audiences {
        profile = profile.audience(audience);
    }
    for party in &config.allowed_parties {
        profile = profile.allowed_party(party);
    }
    for claim in &config.require_claims {
        profile = profile.require_claim(claim);
    }
    for (claim, value) in &config.require_values {
        let value = match value {
            toml::Value::String(text) => ClaimValue::from(text.as_str()),
            toml::Value::Boolean(flag) => ClaimValue::from(*flag),
            toml::Value::Integer(number) => ClaimValue::from(*number),
            _ => {
                return Err(format!(
                    "require_values.{claim}: a string, a boolean or an integer"
                ));
            }
        };
        profile = profile.require_claim_value(claim, value);
    }
    Ok(profile)
}
