//! `tessera mint`: a session token exactly as `EstablishSession` issues it.

use std::sync::Arc;

use serde_json::json;
use tessera::application::EstablishRequest;
use tessera::domain::{Role as _, SessionLifetimes};
use tessera::{KeyRing, SigningKey, Tessera, UserRole};

use crate::args::MintArgs;
use crate::failure::Failure;
use crate::files;
use crate::output::{Output, session_json};
use crate::times::{self, PinnedClock};

pub(crate) fn run(args: &MintArgs, output: &Output) -> Result<(), Failure> {
    let jwk = files::read_secret(&args.key, "unreadable_key")?;
    let key = SigningKey::from_jwk(&jwk).map_err(|error| {
        Failure::caused(
            "unreadable_key",
            &format!(
                "{} is not a private JWK tessera signs with (`tessera keygen --out-private` \
                 writes one)",
                args.key.display()
            ),
            &error,
        )
    })?;
    let (kid, alg) = (key.kid().to_owned(), key.algorithm());
    // Rotation is not minting's concern; half the lifetime satisfies the
    // lifetimes' consistency rules.
    let lifetimes = SessionLifetimes::new(
        args.ttl,
        args.absolute_lifetime,
        args.ttl / 2,
        SessionLifetimes::default().leeway(),
    )
    .map_err(|error| {
        Failure::caused("invalid_lifetimes", "--ttl and --absolute-lifetime", &error)
    })?;
    let now = args.now.unwrap_or_else(times::system_now);
    let sessions: Tessera<UserRole> =
        Tessera::builder(KeyRing::new(key), &args.issuer, &args.audience)
            .lifetimes(lifetimes)
            .clock(Arc::new(PinnedClock(now)))
            // Never read: minting and verifying do not rotate.
            .user_directory(Arc::new(tessera::InMemoryUserDirectory::new()))
            .build();
    let issued = sessions
        .establish()
        .execute(EstablishRequest {
            user_id: args.sub,
            role: args.role,
            capabilities: args.capabilities.iter().cloned().collect(),
            tenant: args.tenant.clone(),
            authenticated_at: args.auth_time,
            authentication: Default::default(),
        })
        .map_err(|error| Failure::caused("mint_failed", "cannot mint the token", &error))?;

    let session = &issued.session;
    if output.is_json() {
        return output.document(&json!({
            "ok": true,
            "token": issued.token.expose_secret(),
            "kid": kid,
            "alg": alg.name(),
            "session": session_json(session),
        }));
    }
    output.note(&format!(
        "minted with {} key {kid:?}: user {}, role {}, session {}, {} ({})",
        alg.name(),
        session.user_id(),
        session.role().name(),
        session.session_id(),
        times::relative("exp", session.expires_at(), now),
        times::utc(session.expires_at()),
    ));
    output.stdout(&[issued.token.expose_secret()])
}
