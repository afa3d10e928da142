//! `tessera verify`: the library's verdict on a token, and the rule that
//! refuses it.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tessera::application::ports::{JwsFailure, TokenError};
use tessera::application::{ClaimsError, VerifyError};
use tessera::domain::SessionLifetimes;
use tessera::infrastructure::SESSION_TOKEN_TYPE;
use tessera::{KeyRing, Tessera, UserRole, VerificationKey};
use time::{Duration, OffsetDateTime};

use crate::args::VerifyArgs;
use crate::failure::{self, Failure};
use crate::files;
use crate::inspect::{self, Unverified};
use crate::output::{Output, session_json};
use crate::times::{self, PinnedClock};

/// Said with every verdict: the CLI cannot see a service's logouts.
const REVOCATION_NOTE: &str = "not checked: the CLI has no revocation store (logouts and \
    force-logouts are invisible to it)";

pub(crate) fn run(args: &VerifyArgs, output: &Output) -> Result<(), Failure> {
    let ring = load_keys(&args.keys)?;
    // Rotation is not part of the verdict; half the lifetime satisfies the
    // lifetimes' consistency rules.
    let lifetimes = SessionLifetimes::new(
        args.max_lifetime,
        args.absolute_lifetime,
        args.max_lifetime / 2,
        args.leeway,
    )
    .map_err(|error| {
        Failure::caused(
            "invalid_lifetimes",
            "--max-lifetime, --absolute-lifetime and --leeway",
            &error,
        )
    })?;
    let token = files::read_token(&args.token)?;
    let now = args.now.unwrap_or_else(times::system_now);
    // The library's own wiring, with its default: an empty in-memory
    // revocation store.
    let sessions: Tessera<UserRole> = Tessera::builder(ring.clone(), &args.issuer, &args.audience)
        .lifetimes(lifetimes)
        .clock(Arc::new(PinnedClock(now)))
        // Never read: minting and verifying do not rotate.
        .user_directory(Arc::new(tessera::InMemoryUserDirectory::new()))
        .build();

    match sessions.verify().execute(&token) {
        Ok(verified) => {
            let header = inspect::decode(&token).ok();
            let header_str = |name| {
                header
                    .as_ref()
                    .and_then(|decoded| decoded.header_str(name))
                    .map(str::to_owned)
            };
            output.note(&format!(
                "VALID at {} ({}): every rule passes; revocation {REVOCATION_NOTE}",
                times::utc(now),
                now.unix_timestamp()
            ));
            output.document(&json!({
                "ok": true,
                "valid": true,
                "verified_at": times::utc(verified.verified_at()),
                "now": now.unix_timestamp(),
                "key": { "kid": header_str("kid"), "alg": header_str("alg") },
                "session": session_json(verified.session()),
                "revocation": REVOCATION_NOTE,
            }))
        }
        Err(error) => {
            let context = Context {
                token: &token,
                decoded: inspect::decode(&token).ok(),
                ring: &ring,
                args,
                now,
            };
            Err(explain(&error, &context))
        }
    }
}

/// A JWK set, or a single JWK (public or private: only the public part, or
/// for HS256 the secret, is kept).
fn load_keys(path: &Path) -> Result<KeyRing, Failure> {
    let text = files::read_secret(path, "unreadable_keys")?;
    let context = || format!("{} is not a usable JWK set", path.display());
    match KeyRing::from_jwk_set(&text) {
        Ok(ring) => Ok(ring),
        Err(set_error) if !text.contains("\"keys\"") => VerificationKey::from_jwk(&text)
            .and_then(|key| KeyRing::verify_only(vec![key]))
            .map_err(|_| Failure::caused("unreadable_keys", &context(), &set_error)),
        Err(error) => Err(Failure::caused("unreadable_keys", &context(), &error)),
    }
}

/// What the explanation of a rejection can draw on.
struct Context<'a> {
    token: &'a str,
    /// The token decoded without verifying: for the values that break the
    /// rule (authentic whenever the signature check had passed).
    decoded: Option<Unverified>,
    ring: &'a KeyRing,
    args: &'a VerifyArgs,
    now: OffsetDateTime,
}

impl Context<'_> {
    fn header(&self, name: &str) -> Option<&Value> {
        self.decoded
            .as_ref()
            .and_then(|decoded| decoded.header.get(name))
    }

    fn claim(&self, name: &str) -> Option<&Value> {
        self.decoded
            .as_ref()
            .and_then(|decoded| decoded.claim(name))
    }

    fn time(&self, name: &str) -> Option<(i64, OffsetDateTime)> {
        let seconds = self.decoded.as_ref()?.time_claim(name)?;
        Some((seconds, times::from_unix(seconds)?))
    }

    /// `name 2027-01-15T08:15:00Z (1800000900)`.
    fn time_text(&self, name: &str) -> Option<String> {
        self.time(name)
            .map(|(seconds, at)| format!("{name} {} ({seconds})", times::utc(at)))
    }

    fn now_text(&self) -> String {
        format!(
            "now {} ({}), leeway {}",
            times::utc(self.now),
            self.now.unix_timestamp(),
            times::span(self.args.leeway)
        )
    }

    fn keys_text(&self) -> String {
        let keys = self
            .ring
            .verification_keys()
            .iter()
            .map(|key| format!("{} ({})", key.kid().unwrap_or("no kid"), key.algorithm()))
            .collect::<Vec<_>>();
        format!("the key set holds {}", keys.join(", "))
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "absent".to_owned(), Value::to_string)
}

/// The rule `error` names, in words, with the values that break it.
fn explain(error: &VerifyError, context: &Context<'_>) -> Failure {
    let (rule, seen): (&str, Vec<String>) = match error {
        VerifyError::Token(token_error) => explain_token(token_error, context),
        VerifyError::IssuedInFuture => (
            "iat must not be later than now plus the leeway",
            vec![
                context.time_text("iat").unwrap_or_default(),
                context.now_text(),
            ],
        ),
        VerifyError::NotYetValid => (
            "nbf must not be later than now plus the leeway",
            vec![
                context
                    .time("nbf")
                    .map(|(_, at)| {
                        format!(
                            "{}: {}",
                            context.time_text("nbf").unwrap_or_default(),
                            times::relative("nbf", at, context.now)
                        )
                    })
                    .unwrap_or_default(),
                context.now_text(),
            ],
        ),
        VerifyError::Expired => (
            "exp plus the leeway must be later than now",
            vec![
                context
                    .time("exp")
                    .map(|(_, at)| {
                        format!(
                            "{}: {}",
                            context.time_text("exp").unwrap_or_default(),
                            times::relative("exp", at, context.now)
                        )
                    })
                    .unwrap_or_default(),
                context.now_text(),
            ],
        ),
        VerifyError::LifetimeTooLong => (
            "exp - iat must not exceed the token lifetime (--max-lifetime)",
            vec![
                context
                    .time("exp")
                    .zip(context.time("iat"))
                    .map(|((exp, _), (iat, _))| {
                        format!(
                            "exp - iat = {} ({}s)",
                            times::span(Duration::seconds(exp.saturating_sub(iat))),
                            exp.saturating_sub(iat)
                        )
                    })
                    .unwrap_or_default(),
                format!(
                    "--max-lifetime {} ({}s)",
                    times::span(context.args.max_lifetime),
                    context.args.max_lifetime.whole_seconds()
                ),
            ],
        ),
        VerifyError::AbsoluteLifetimeExceeded => (
            "a session ends one absolute lifetime (--absolute-lifetime) after auth_time, plus \
             the leeway, however fresh its token",
            vec![
                context
                    .time("auth_time")
                    .and_then(|(_, at)| {
                        let end = at.checked_add(context.args.absolute_lifetime)?;
                        Some(format!(
                            "{}: the session ended at {}, {} ago",
                            context.time_text("auth_time").unwrap_or_default(),
                            times::utc(end),
                            times::span(context.now - end)
                        ))
                    })
                    .unwrap_or_default(),
                format!(
                    "--absolute-lifetime {}; {}",
                    times::span(context.args.absolute_lifetime),
                    context.now_text()
                ),
            ],
        ),
        _ => (
            "the revocation store must not refuse the session",
            Vec::new(),
        ),
    };
    Failure::rejected(
        error.code(),
        failure::chain(error),
        rule.to_owned(),
        seen.into_iter().filter(|line| !line.is_empty()).collect(),
    )
}

fn explain_token(error: &TokenError, context: &Context<'_>) -> (&'static str, Vec<String>) {
    let kid = context.header("kid");
    let alg = context.header("alg");
    match error {
        TokenError::Jws(JwsFailure::TooLarge { max }) => (
            "a token is at most the size cap (8 KiB by default), checked before anything is \
             decoded",
            vec![format!(
                "the token is {} bytes; the cap is {max}",
                context.token.len()
            )],
        ),
        TokenError::Jws(JwsFailure::Malformed(_)) => (
            "a token is a compact JWS: three strict base64url parts (no padding), a JSON-object \
             header with no repeated alg, kid, typ or crit, and a JSON payload",
            context
                .decoded
                .as_ref()
                .map(|decoded| decoded.warnings.clone())
                .unwrap_or_default(),
        ),
        TokenError::Jws(JwsFailure::AlgorithmRejected) => (
            "the header's alg must be the algorithm of the key its kid names (HS256, RS256, \
             ES256 or EdDSA); none, other algorithms and algorithm confusion are refused",
            vec![
                format!("alg {}, kid {}", shown(alg), shown(kid)),
                context.keys_text(),
            ],
        ),
        TokenError::Jws(JwsFailure::MissingKeyId) => (
            "a token must name its key (kid) when the key set holds several",
            vec![format!("kid {}", shown(kid)), context.keys_text()],
        ),
        TokenError::Jws(JwsFailure::UnknownKeyId) => (
            "the header's kid must name a key in the key set",
            vec![format!("kid {}", shown(kid)), context.keys_text()],
        ),
        TokenError::Jws(JwsFailure::CriticalHeader) => (
            "the header must not carry crit: tessera supports no critical extension",
            vec![format!("crit {}", shown(context.header("crit")))],
        ),
        TokenError::WrongType => (
            "the header's typ must be tessera-session+jwt: an identity provider's ID or access \
             token is never a session",
            vec![format!(
                "typ {}, expected {:?}",
                shown(context.header("typ")),
                SESSION_TOKEN_TYPE
            )],
        ),
        TokenError::Jws(JwsFailure::InvalidSignature) => (
            "the signature must verify with the key the kid names: the token was altered, \
             truncated, or signed by another key",
            vec![
                format!("alg {}, kid {}", shown(alg), shown(kid)),
                context.keys_text(),
            ],
        ),
        TokenError::WrongIssuer => (
            "iss must be exactly the expected issuer (--issuer)",
            vec![format!(
                "iss {}, expected {:?}",
                shown(context.claim("iss")),
                context.args.issuer
            )],
        ),
        TokenError::WrongAudience => (
            "aud must include the expected audience (--audience)",
            vec![format!(
                "aud {}, expected {:?}",
                shown(context.claim("aud")),
                context.args.audience
            )],
        ),
        TokenError::Claims(claims) => (
            "every claim must be valid: sub and jti UUIDs, role one of user, moderator or \
             admin, capabilities and tenant well-formed, times whole seconds in range, exp \
             after iat, auth_time not after iat",
            vec![claim_seen(claims, context)],
        ),
        _ => ("the token must decode", Vec::new()),
    }
}

fn claim_seen(error: &ClaimsError, context: &Context<'_>) -> String {
    let claim = error.claim();
    match claim {
        "payload" => "the payload is not a JSON object of the session shape".to_owned(),
        "exp" | "iat" | "auth_time" | "nbf" => {
            let times = ["auth_time", "iat", "nbf", "exp"]
                .iter()
                .filter_map(|name| context.time_text(name))
                .collect::<Vec<_>>();
            if times.is_empty() {
                format!("{claim} {}", shown(context.claim(claim)))
            } else {
                times.join(", ")
            }
        }
        _ => format!("{claim} {}", shown(context.claim(claim))),
    }
}
