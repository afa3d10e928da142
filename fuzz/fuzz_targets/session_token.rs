//! Session token verification with a warmed key ring: the ring has
//! verified one valid token first, so it remembers that token's header and
//! the fuzzer's tokens take the remembered-header path as well as the full
//! one. Any input must give a verdict, never a panic; a token that decodes
//! must encode again to claims that decode the same.

#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_application::ports::SessionTokenCodec;
use tessera_application::SessionTokenClaims;
use tessera_domain::{
    Acr, AuthMethod, Authentication, NewSession, SessionEntity, SessionId, UserId, UserRole,
};
use tessera_infrastructure::{JwtSessionCodec, KeyRing, SigningKey};
use time::{Duration, OffsetDateTime};

fn codec() -> &'static JwtSessionCodec {
    static CODEC: OnceLock<JwtSessionCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        // Two keys (one family: a ring never mixes HMAC and public keys),
        // so that tokens must name theirs.
        let ring = KeyRing::new(common::hs256())
            .with_verification_key(
                SigningKey::hmac_sha256("k2", &[7; 32])
                    .expect("HS256 key")
                    .verification_key(),
            )
            .expect("two kids");
        let codec = JwtSessionCodec::new(ring, "https://api.fuzz", "web");
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let session = SessionEntity::new(NewSession {
            user_id: UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").expect("id"),
            session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000000aa").expect("id"),
            role: UserRole::Admin,
            capabilities: Default::default(),
            tenant: None,
            issued_at: now,
            expires_at: now + Duration::minutes(15),
            authenticated_at: now,
            authentication: Authentication::new(
                Some(Acr::parse("phrh").expect("acr")),
                vec![AuthMethod::parse("pwd").expect("amr")],
            )
            .expect("authentication"),
        })
        .expect("session");
        let token = SessionTokenCodec::<UserRole>::encode(&codec, &SessionTokenClaims::new(session, None))
            .expect("signed");
        let warm: Result<SessionTokenClaims<UserRole>, _> = codec.decode(token.expose_secret());
        assert!(warm.is_ok(), "the warming token verifies");
        codec
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let codec = codec();
    let _ = SessionTokenCodec::<UserRole>::is_session_token(codec, token);
    if let Ok(claims) = SessionTokenCodec::<UserRole>::decode(codec, token) {
        let again = SessionTokenCodec::<UserRole>::encode(codec, &claims).expect("re-signed");
        let decoded: SessionTokenClaims<UserRole> =
            codec.decode(again.expose_secret()).expect("what was signed verifies");
        assert_eq!(decoded, claims);
    }
});
