//! Identity-provider token verification and claim mapping. The first byte
//! picks the mode: the rest verified as a token, or the rest taken as a
//! JWT payload, signed with the provider's key and verified, so that the
//! claim extraction and mapping (role, email, name, acr, amr, times) see
//! arbitrary JSON behind a valid signature. Never a panic.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tessera_application::external::ExternalTokenVerifier;
use tessera_application::ports::Clock;
use tessera_domain::UserRole;
use tessera_infrastructure::identity::{
    ClaimMapping, IdentityProvider, JwksTokenVerifier, MissingRole, TokenProfile,
};
use tessera_infrastructure::jose::{encode_header, sign_compact};
use tessera_infrastructure::{JwsAlgorithm, KeyRing, SigningKey};
use time::OffsetDateTime;

const ISSUER: &str = "https://idp.fuzz";

struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
    }
}

struct Fixture {
    key: SigningKey,
    header: String,
    verifier: JwksTokenVerifier<UserRole>,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SigningKey::generate(JwsAlgorithm::Es256, "idp-1").expect("ES256 key");
        let mapping = ClaimMapping::new("org.role", MissingRole::LeastPrivilege(UserRole::User))
            .expect("path")
            .map("admin", UserRole::Admin)
            .expect("role")
            .email("email")
            .expect("path")
            .name("profile.name")
            .expect("path");
        let provider = IdentityProvider::builder(ISSUER, TokenProfile::access(mapping).audience("api"))
            .algorithms(&[JwsAlgorithm::Es256, JwsAlgorithm::Rs256, JwsAlgorithm::EdDsa])
            .clock(Arc::new(Fixed))
            .static_keys(KeyRing::verify_only(vec![key.verification_key()]).expect("ring"))
            .build()
            .expect("provider");
        Fixture {
            header: encode_header(&key, "JWT"),
            key,
            verifier: JwksTokenVerifier::new(provider),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let token = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        }
    } else {
        sign_compact(&fixture.key, &fixture.header, rest).expect("signed")
    };
    let verdict = fixture.runtime.block_on(fixture.verifier.verify(&token));
    if let Ok(identity) = verdict {
        assert_eq!(identity.issuer, ISSUER);
        assert!(identity.authentication_time() <= identity.issued_at);
    }
});
