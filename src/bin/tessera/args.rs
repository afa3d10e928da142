//! The command line: every command, flag and value parser.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tessera::JwsAlgorithm;
use tessera::UserRole;
use tessera::domain::{Capability, Role as _, TenantId, UserId};
use time::{Duration, OffsetDateTime};

/// Durations and instants are bounded so that no time arithmetic, here or
/// in the library, can overflow: a century is longer than any sensible
/// lifetime, and year 9000 leaves room for it before time's year 9999.
const MAX_DURATION_SECONDS: i64 = 100 * 366 * 86_400;
const MAX_UNIX_SECONDS: i64 = 221_845_392_000; // 9000-01-01T00:00:00Z

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Generate keys, mint, inspect and verify tessera session tokens.",
    long_about = "Generate keys, mint, inspect and verify tessera session tokens.\n\n\
        `mint` and `verify` run the tessera library's own codec and use cases, so their \
        verdicts are the library's verdicts.\n\n\
        Exit codes: 0 success; 1 the token was rejected (verify); 2 bad usage, unreadable \
        input or keys, or any other failure.",
    after_help = "Run `tessera <COMMAND> --help` for each command's flags."
)]
pub(crate) struct Cli {
    /// Print one JSON document on stdout instead of text, errors included
    /// (`{"ok": false, "code": ..., "message": ...}`), for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate a signing key: a private JWK and the JWK set verifiers load.
    #[command(
        long_about = "Generate a signing key: a private JWK (for `mint --key`) and the JWK set \
            verifiers load (for `verify --keys`).\n\n\
            Without --out-private/--out-public each goes to stdout, one JSON document per line. \
            Files holding a secret (the private JWK; for HS256 the JWK set too, since verifiers \
            share the secret) are created with permissions 0600."
    )]
    Keygen(KeygenArgs),
    /// Mint a session token exactly as EstablishSession issues it.
    #[command(
        long_about = "Mint a session token exactly as the library's EstablishSession issues it: \
            a fresh session id, `iat` now, `exp` one --ttl later, `typ` tessera-session+jwt, \
            signed with the key in --key.\n\n\
            The token goes to stdout (with --json, with the session it carries)."
    )]
    Mint(MintArgs),
    /// Decode a token's header and claims WITHOUT verifying anything.
    #[command(
        long_about = "Decode a token's header and claims WITHOUT verifying anything: the \
            output is labelled UNVERIFIED, and nothing in it may be trusted. Times are shown as \
            UTC (RFC 3339) and relative to now (`expires in 14m 3s`, `expired 2h ago`).\n\n\
            Malformed input is reported with the part that is wrong, exit code 2."
    )]
    Inspect(InspectArgs),
    /// Verify a token as the library does, and say which rule refuses it.
    #[command(
        long_about = "Verify a token exactly as the library's VerifySession does: size, \
            structure, alg pinned to the key its kid names, signature, typ, iss, aud, every \
            claim, iat/nbf/exp with leeway, the token lifetime and the absolute session \
            lifetime.\n\n\
            Valid: exit 0 and the verified session as JSON on stdout. Rejected: exit 1, the \
            rule that failed in words and its stable code (VerifyError::code, for example \
            `expired`, `unknown_kid`, `invalid_signature`). Bad usage or unreadable keys: exit \
            2.\n\n\
            The CLI sees no revocation store: logouts and force-logouts are NOT checked (its \
            store is empty and in memory). Roles are tessera's default roles (user, moderator, \
            admin); a token carrying another role is refused as `invalid_claim`.",
        after_help = "Reproduce a rejection seen in a log: pass the token and the time it was \
            refused, for example `tessera verify --keys jwks.json --issuer I --audience A \
            --now 1767225600 TOKEN`."
    )]
    Verify(VerifyArgs),
    /// Run tessera as a service: forward-auth verdicts for gateways, session
    /// endpoints, JWKS, health and metrics.
    #[cfg(feature = "server")]
    #[command(
        long_about = "Run tessera as a service: forward-auth verdicts for nginx auth_request, \
            Traefik ForwardAuth, Caddy forward_auth and Envoy ext_authz; sign-in, sign-out and \
            revocation endpoints for backends in any language; /.well-known/jwks.json, /healthz, \
            /readyz and /metrics.\n\n\
            Without --config: the embedded default (in-memory stores, a generated EdDSA key, \
            127.0.0.1:8080). Environment variables TESSERA_LISTEN, TESSERA_ADMIN_SECRET, \
            TESSERA_GATEWAY_SECRET, TESSERA_POSTGRES_URL and the others of \
            examples/tessera.toml override the file. Stops gracefully on SIGTERM or Ctrl-C."
    )]
    Serve(ServeArgs),
}

/// The flags of `serve`.
#[cfg(feature = "server")]
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The TOML configuration (examples/tessera.toml documents every field).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// The address to listen on, over the file and the environment
    /// (port 0 picks a free one) [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
}

/// The algorithms tessera signs with.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Algorithm {
    /// HMAC-SHA256 with a 32-byte random shared secret (an `oct` JWK).
    #[value(name = "HS256", alias = "hs256")]
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048.
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    #[value(name = "ES256", alias = "es256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA", alias = "eddsa")]
    EdDsa,
}

impl From<Algorithm> for JwsAlgorithm {
    fn from(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Hs256 => Self::Hs256,
            Algorithm::Rs256 => Self::Rs256,
            Algorithm::Es256 => Self::Es256,
            Algorithm::EdDsa => Self::EdDsa,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// The key's algorithm.
    #[arg(long, value_enum)]
    pub(crate) alg: Algorithm,

    /// The key id put in every token's `kid` header [default: ALG-DATE-RANDOM,
    /// for example eddsa-2026-11-22-3f9c0a1b].
    #[arg(long, value_name = "KID", value_parser = non_empty)]
    pub(crate) kid: Option<String>,

    /// Write the private JWK to FILE (created with permissions 0600)
    /// instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) out_private: Option<PathBuf>,

    /// Write the verifiers' JWK set to FILE instead of stdout (0600 for
    /// HS256, whose set holds the shared secret; 0644 otherwise).
    #[arg(long, value_name = "FILE")]
    pub(crate) out_public: Option<PathBuf>,

    /// Overwrite output files that already exist (refused otherwise).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MintArgs {
    /// The private JWK to sign with, as written by `tessera keygen`
    /// (`oct`, `RSA`, `EC` P-256 or `OKP` Ed25519, with a `kid`).
    #[arg(long, value_name = "PRIVATE_JWK_FILE")]
    pub(crate) key: PathBuf,

    /// The issuer (`iss`) the token names; verifiers must expect it.
    #[arg(long, value_name = "ISSUER", value_parser = non_empty)]
    pub(crate) issuer: String,

    /// The audience (`aud`) the token names; verifiers must expect it.
    #[arg(long, value_name = "AUDIENCE", value_parser = non_empty)]
    pub(crate) audience: String,

    /// The user id (`sub`), a UUID.
    #[arg(long, value_name = "UUID", value_parser = user_id)]
    pub(crate) sub: UserId,

    /// The role (`role`): user, moderator or admin (tessera's default roles).
    #[arg(long, value_name = "ROLE", value_parser = role)]
    pub(crate) role: UserRole,

    /// A capability (`caps`), for example `posts:write`; repeat for several.
    #[arg(long = "capability", value_name = "CAPABILITY", value_parser = capability)]
    pub(crate) capabilities: Vec<Capability>,

    /// The tenant (`tid`), for tenant-scoped sessions.
    #[arg(long, value_name = "TENANT", value_parser = tenant)]
    pub(crate) tenant: Option<TenantId>,

    /// The token lifetime (`exp - iat`): seconds, or with a unit (`900`,
    /// `15m`, `2h`, `1d`). Verifiers refuse tokens longer than theirs.
    #[arg(long, value_name = "SECONDS", default_value = "900", value_parser = duration)]
    pub(crate) ttl: Duration,

    /// When the user authenticated (`auth_time`), in Unix seconds
    /// [default: now]. The session ends one absolute lifetime after it.
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = unix_time)]
    pub(crate) auth_time: Option<OffsetDateTime>,

    /// The absolute session lifetime from `auth_time`; `exp` is cut short
    /// to stay within it.
    #[arg(long, value_name = "SECONDS", default_value = "30d", value_parser = duration)]
    pub(crate) absolute_lifetime: Duration,

    /// Mint as if the time were UNIX_SECONDS (for tests and
    /// reproductions) [default: the system clock].
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = unix_time)]
    pub(crate) now: Option<OffsetDateTime>,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The token, or `-` to read it from stdin. Surrounding whitespace is
    /// ignored.
    #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
    pub(crate) token: String,

    /// Show relative times as of UNIX_SECONDS [default: the system clock].
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = unix_time)]
    pub(crate) now: Option<OffsetDateTime>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The keys to verify with: a JWK set (`{"keys": [...]}`, as written by
    /// `tessera keygen --out-public`) or a single JWK. Private JWKs are
    /// accepted; only their public part is used (HS256: the secret).
    #[arg(long, value_name = "JWKS_FILE")]
    pub(crate) keys: PathBuf,

    /// The issuer (`iss`) the token must name.
    #[arg(long, value_name = "ISSUER", value_parser = non_empty)]
    pub(crate) issuer: String,

    /// The audience the token's `aud` must include.
    #[arg(long, value_name = "AUDIENCE", value_parser = non_empty)]
    pub(crate) audience: String,

    /// Clock skew tolerated on every time check.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = duration)]
    pub(crate) leeway: Duration,

    /// Check the token as if the time were UNIX_SECONDS, to reproduce a
    /// verdict seen earlier [default: the system clock].
    #[arg(long, value_name = "UNIX_SECONDS", value_parser = unix_time)]
    pub(crate) now: Option<OffsetDateTime>,

    /// The longest token lifetime (`exp - iat`) accepted. Generous by
    /// default; set it to your service's token lifetime for its exact
    /// verdicts.
    #[arg(long, value_name = "SECONDS", default_value = "24h", value_parser = duration)]
    pub(crate) max_lifetime: Duration,

    /// The absolute session lifetime: a session is refused once
    /// `auth_time` is older than this, however fresh its token.
    #[arg(long, value_name = "SECONDS", default_value = "30d", value_parser = duration)]
    pub(crate) absolute_lifetime: Duration,

    /// The token, or `-` to read it from stdin. Surrounding whitespace is
    /// ignored.
    #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
    pub(crate) token: String,
}

fn non_empty(value: &str) -> Result<String, &'static str> {
    if value.is_empty() {
        Err("must not be empty")
    } else {
        Ok(value.to_owned())
    }
}

fn user_id(value: &str) -> Result<UserId, tessera::domain::IdError> {
    UserId::parse(value)
}

fn role(value: &str) -> Result<UserRole, String> {
    UserRole::parse(value)
        .map_err(|error| format!("{error} (tessera's default roles: user, moderator, admin)"))
}

fn capability(value: &str) -> Result<Capability, tessera::domain::IdError> {
    Capability::parse(value)
}

fn tenant(value: &str) -> Result<TenantId, tessera::domain::IdError> {
    TenantId::parse(value)
}

/// Seconds, or a number with a unit: `s`, `m`, `h` or `d`.
pub(crate) fn duration(value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at_checked(split).unwrap_or((value, ""));
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err("expected seconds, or a number with s, m, h or d".to_owned()),
    };
    let seconds = digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or("expected seconds, or a number with s, m, h or d")?;
    if seconds > MAX_DURATION_SECONDS {
        return Err("at most a century".to_owned());
    }
    Ok(Duration::seconds(seconds))
}

/// Unix seconds, from 1970 to the year 9000.
pub(crate) fn unix_time(value: &str) -> Result<OffsetDateTime, String> {
    let seconds = value
        .parse::<i64>()
        .map_err(|_| "expected Unix seconds, for example 1767225600".to_owned())?;
    if !(0..=MAX_UNIX_SECONDS).contains(&seconds) {
        return Err("expected Unix seconds between 0 and 221845392000 (year 9000)".to_owned());
    }
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(duration("900"), Ok(Duration::seconds(900)));
        assert_eq!(duration("15m"), Ok(Duration::minutes(15)));
        assert_eq!(duration("24h"), Ok(Duration::hours(24)));
        assert_eq!(duration("30d"), Ok(Duration::days(30)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "m",
            "-5",
            "1.5h",
            "3w",
            "99999999999999999999",
            "36600000d",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_are_bounded_unix_seconds() {
        assert_eq!(unix_time("0"), Ok(OffsetDateTime::UNIX_EPOCH));
        assert!(unix_time("221845392000").is_ok());
        for bad in ["-1", "221845392001", "soon", ""] {
            assert!(unix_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
