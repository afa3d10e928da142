//! Identity-provider token verification, token-profile matching, subject
//! kinds, required claims and claim mapping. The first byte picks the
//! mode: bit 0 clear, the rest verified as a token; set, the rest taken
//! as a JWT payload, signed with the provider's key under the `typ` bits
//! 1–2 pick (`JWT`, `at+jwt`, none, `application/AT+JWT`) and verified, so
//! that the profile matching (by `typ` and `aud`), the machine-token and
//! required-claim rules and the claim extraction and mapping (role, email,
//! name, acr, amr, times) see arbitrary JSON behind a valid signature.
//! Bit 3 picks one of two providers with two profiles each. Never a
//! panic, and what is accepted agrees with the profiles.

#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tessera_application::external::{ExternalTokenVerifier, SubjectKind, TokenUse};
use tessera_application::ports::Clock;
use tessera_domain::UserRole;
use tessera_infrastructure::identity::{
    AcceptedSubjects, ClaimMapping, IdentityProvider, JwksTokenVerifier, MissingRole, TokenProfile,
    TypRule,
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
    /// The encoded headers, by the `typ` bits.
    headers: [String; 4],
    /// Access tokens of any `typ` (users and machines, Auth0's `gty`
    /// marking machines), ID tokens with a verified email.
    lenient: JwksTokenVerifier<UserRole>,
    /// RFC 9068 access tokens of users from one party, ID tokens of
    /// machines only.
    strict: JwksTokenVerifier<UserRole>,
    runtime: tokio::runtime::Runtime,
}

fn mapping() -> ClaimMapping<UserRole> {
    ClaimMapping::new("org.role", MissingRole::LeastPrivilege(UserRole::User))
        .expect("path")
        .map("admin", UserRole::Admin)
        .expect("role")
        .email("email")
        .expect("path")
        .name("profile.name")
        .expect("path")
}

fn verifier(
    key: &SigningKey,
    access: TokenProfile<UserRole>,
    id: TokenProfile<UserRole>,
) -> JwksTokenVerifier<UserRole> {
    let provider = IdentityProvider::builder(ISSUER, access)
        .profile(id)
        .algorithms(&[
            JwsAlgorithm::Es256,
            JwsAlgorithm::Rs256,
            JwsAlgorithm::EdDsa,
        ])
        .clock(Arc::new(Fixed))
        .static_keys(KeyRing::verify_only(vec![key.verification_key()]).expect("ring"))
        .build()
        .expect("provider");
    JwksTokenVerifier::new(provider)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SigningKey::generate(JwsAlgorithm::Es256, "idp-1").expect("ES256 key");
        let lenient = verifier(
            &key,
            TokenProfile::access(mapping())
                .audience("api")
                .subjects(AcceptedSubjects::Both)
                .machine_when("gty", "client-credentials"),
            TokenProfile::id_token(mapping())
                .audience("client")
                .require_claim("email")
                .require_claim_value("email_verified", true),
        );
        let strict = verifier(
            &key,
            TokenProfile::access(mapping())
                .typ(TypRule::exactly("at+jwt"))
                .audience("api")
                .allowed_party("client")
                .require_claim_value("scope", "read"),
            TokenProfile::id_token(mapping())
                .audience("client")
                .audience("api")
                .subjects(AcceptedSubjects::Machines)
                .require_claim_value("n", 1_i64),
        );
        let untyped = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"idp-1"}"#);
        Fixture {
            headers: [
                encode_header(&key, "JWT"),
                encode_header(&key, "at+jwt"),
                untyped,
                encode_header(&key, "application/AT+JWT"),
            ],
            key,
            lenient,
            strict,
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
    let typ = usize::from((mode >> 1) & 3);
    let token = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        }
    } else {
        let header = fixture.headers.get(typ).expect("four headers");
        sign_compact(&fixture.key, header, rest).expect("signed")
    };
    let strict = mode & 8 != 0;
    let verifier = if strict {
        &fixture.strict
    } else {
        &fixture.lenient
    };
    let Ok(identity) = fixture.runtime.block_on(verifier.verify(&token)) else {
        return;
    };
    assert_eq!(identity.issuer, ISSUER);
    assert!(identity.authentication_time() <= identity.issued_at);
    if mode % 2 == 1 {
        // The profile a signed token got agrees with its `typ`.
        let expected = match (typ, strict) {
            // Absent, or `JWT` where access tokens must say `at+jwt`.
            (2, _) | (0, true) => Some(TokenUse::Id),
            (1 | 3, _) => Some(TokenUse::Access),
            // `JWT` fits both kinds; the audience told them apart.
            _ => None,
        };
        if let Some(expected) = expected {
            assert_eq!(identity.token_use, expected);
        }
    }
    // Each profile took only the subjects it accepts.
    match (strict, identity.token_use, identity.subject_kind) {
        (true, TokenUse::Access, kind) => assert_eq!(kind, SubjectKind::User),
        (true, TokenUse::Id, kind) => assert_eq!(kind, SubjectKind::Machine),
        (false, TokenUse::Id, kind) => assert_eq!(kind, SubjectKind::User),
        (false, TokenUse::Access, _) => {}
    }
});
