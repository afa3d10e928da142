//! The provider verifier and its key cache, against an in-process provider
//! stand-in whose JWKS source counts fetches and can go down or slow.

use std::sync::Arc;

use serde_json::{Value, json};
use tessera_application::external::{
    ExternalTokenError, ExternalTokenVerifier, RoleMappingError, SubjectKind, SubjectRefusal,
    TokenUse,
};
use tessera_application::ports::{Clock, JwsFailure};
use tessera_domain::UserRole;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::jose::{self, JwsAlgorithm, KeyRing, SigningKey, SkipReason};

const ISSUER: &str = "https://idp-a.example";
const NOW: i64 = 1_800_000_000;

struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }
}

fn rsa(kid: &str) -> SigningKey {
    SigningKey::generate(JwsAlgorithm::Rs256, kid).unwrap()
}

fn sign(key: &SigningKey, typ: &str, claims: &Value) -> String {
    let header = jose::encode_header(key, typ);
    jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

fn claims(iss: &str) -> Value {
    json!({
        "iss": iss, "sub": "user_2abc", "aud": "api", "azp": "https://app.example",
        "iat": NOW - 10, "exp": NOW + 300, "auth_time": NOW - 100,
        "email": "a@example.com",
        "public_metadata": {"role": "org:admin"},
    })
}

fn mapping(missing: MissingRole<UserRole>) -> ClaimMapping<UserRole> {
    ClaimMapping::new("public_metadata.role", missing)
        .unwrap()
        .map("org:admin", UserRole::Admin)
        .unwrap()
        .map("org:member", UserRole::User)
        .unwrap()
        .email("email")
        .unwrap()
}

/// The access-token profile most tests use: audience `api`, the role
/// required.
fn access() -> TokenProfile<UserRole> {
    TokenProfile::access(mapping(MissingRole::Reject)).audience("api")
}

fn static_provider(
    issuer: &str,
    keys: &[&SigningKey],
    configure: impl FnOnce(ProviderBuilder<UserRole>) -> ProviderBuilder<UserRole>,
) -> IdentityProvider<UserRole> {
    profiled_provider(issuer, keys, access(), configure)
}

/// A provider with static keys whose first profile is `profile`.
fn profiled_provider(
    issuer: &str,
    keys: &[&SigningKey],
    profile: TokenProfile<UserRole>,
    configure: impl FnOnce(ProviderBuilder<UserRole>) -> ProviderBuilder<UserRole>,
) -> IdentityProvider<UserRole> {
    let ring = KeyRing::verify_only(keys.iter().map(|k| k.verification_key()).collect()).unwrap();
    configure(
        IdentityProvider::builder(issuer, profile)
            .clock(Arc::new(FixedClock))
            .static_keys(ring),
    )
    .build()
    .unwrap()
}

async fn verify_with(
    provider: IdentityProvider<UserRole>,
    token: &str,
) -> Result<tessera_application::external::ExternalIdentity<UserRole>, ExternalTokenError> {
    JwksTokenVerifier::new(provider).verify(token).await
}

// ----- claims -----------------------------------------------------------------

#[tokio::test]
async fn a_valid_provider_token_gives_the_mapped_identity() {
    let key = rsa("a1");
    let identity = verify_with(
        static_provider(ISSUER, &[&key], |b| b),
        &sign(&key, "JWT", &claims(ISSUER)),
    )
    .await
    .unwrap();
    assert_eq!(identity.subject.as_str(), "user_2abc");
    assert_eq!(identity.role, UserRole::Admin);
    assert_eq!(identity.email.as_deref(), Some("a@example.com"));
    assert_eq!(identity.authentication_time().unix_timestamp(), NOW - 100);
}

#[tokio::test]
async fn acr_and_amr_of_a_provider_token_are_typed_and_bad_ones_name_their_claim() {
    let key = rsa("a1");
    let verify = |claims: Value| {
        let token = sign(&key, "JWT", &claims);
        let provider = static_provider(ISSUER, &[&key], |b| b);
        async move { verify_with(provider, &token).await }
    };
    let mut with = claims(ISSUER);
    with["acr"] = json!("urn:example:mfa");
    with["amr"] = json!(["pwd", "hwk"]);
    let identity = verify(with).await.unwrap();
    let auth = &identity.authentication;
    assert_eq!(auth.acr().map(|a| a.as_str()), Some("urn:example:mfa"));
    assert!(auth.used_method("hwk") && auth.used_method("pwd"));
    let identity = verify(claims(ISSUER)).await.unwrap();
    assert_eq!(identity.authentication, Default::default());

    for (claim, value) in [
        ("acr", json!(1)),
        ("acr", json!("two words")),
        ("acr", json!(null)),
        ("amr", json!("pwd")),
        ("amr", json!(["pwd", 2])),
        ("amr", json!(["a b"])),
        ("amr", json!(vec!["otp"; 17])),
    ] {
        let mut bad = claims(ISSUER);
        bad[claim] = value;
        match verify(bad.clone()).await {
            Err(ExternalTokenError::InvalidClaim { claim: named, .. }) => {
                assert_eq!(named, claim, "{bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_token_of_issuer_b_never_verifies_against_issuer_a_keys() {
    let key_a = rsa("a1");
    let key_b = rsa("b1");
    let verifier = JwksTokenVerifier::new(static_provider(ISSUER, &[&key_a], |b| b))
        .with_provider(static_provider("https://idp-b.example", &[&key_b], |b| b))
        .unwrap();
    // B's key, claiming to be A: routed to A, whose keys do not hold b1.
    let forged = sign(&key_b, "JWT", &claims(ISSUER));
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(ExternalTokenError::Jws(JwsFailure::UnknownKeyId))
    ));
    // A's key (kid renamed to B's), claiming to be B: signature fails under B's key.
    let confused = SigningKey::from_jwk(
        &key_a
            .to_private_jwk()
            .unwrap()
            .expose_secret()
            .replace("\"a1\"", "\"b1\""),
    )
    .unwrap();
    assert!(matches!(
        verifier
            .verify(&sign(&confused, "JWT", &claims("https://idp-b.example")))
            .await,
        Err(ExternalTokenError::Jws(JwsFailure::InvalidSignature))
    ));
    assert!(matches!(
        verifier
            .verify(&sign(&key_a, "JWT", &claims("https://idp-c.example")))
            .await,
        Err(ExternalTokenError::UnknownIssuer)
    ));
    assert!(
        verifier
            .verify(&sign(&key_b, "JWT", &claims("https://idp-b.example")))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_authorized_party_outside_the_allowed_list_is_refused() {
    let key = rsa("a1");
    let provider = || {
        profiled_provider(
            ISSUER,
            &[&key],
            access().allowed_party("https://app.example"),
            |b| b,
        )
    };
    assert!(
        verify_with(provider(), &sign(&key, "JWT", &claims(ISSUER)))
            .await
            .is_ok()
    );
    let mut other = claims(ISSUER);
    other["azp"] = json!("https://evil.example");
    assert!(matches!(
        verify_with(provider(), &sign(&key, "JWT", &other)).await,
        Err(ExternalTokenError::WrongAuthorizedParty)
    ));
    other.as_object_mut().unwrap().remove("azp");
    assert!(matches!(
        verify_with(provider(), &sign(&key, "JWT", &other)).await,
        Err(ExternalTokenError::WrongAuthorizedParty)
    ));
}

#[tokio::test]
async fn an_algorithm_not_on_the_providers_allow_list_is_refused() {
    let es = SigningKey::generate(JwsAlgorithm::Es256, "e1").unwrap();
    let token = sign(&es, "JWT", &claims(ISSUER));
    // RS256 only (the default), though the key itself is in the ring.
    assert!(matches!(
        verify_with(static_provider(ISSUER, &[&es], |b| b), &token).await,
        Err(ExternalTokenError::Jws(JwsFailure::AlgorithmRejected))
    ));
    assert!(
        verify_with(
            static_provider(ISSUER, &[&es], |b| b.algorithms(&[JwsAlgorithm::Es256])),
            &token
        )
        .await
        .is_ok()
    );
    assert!(matches!(
        IdentityProvider::builder(ISSUER, access())
            .algorithms(&[JwsAlgorithm::Hs256])
            .static_keys(KeyRing::verify_only(vec![es.verification_key()]).unwrap())
            .build(),
        Err(ProviderConfigError::Algorithms)
    ));
}

#[tokio::test]
async fn an_rfc_9864_ed25519_provider_interoperates_with_eddsa_labels_either_way() {
    let ed = SigningKey::generate(JwsAlgorithm::EdDsa, "ed1").unwrap();
    let b64 =
        |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let token = |alg: &str| {
        let input = format!(
            "{}.{}",
            b64(format!(r#"{{"alg":"{alg}","kid":"ed1","typ":"JWT"}}"#).as_bytes()),
            b64(claims(ISSUER).to_string().as_bytes())
        );
        format!("{input}.{}", b64(&ed.sign(input.as_bytes()).unwrap()))
    };
    let public = ed.verification_key().to_public_jwk().unwrap();
    for key_alg in ["EdDSA", "Ed25519"] {
        let jwk = public.replace(r#""alg":"EdDSA""#, &format!(r#""alg":"{key_alg}""#));
        let (ring, skipped) =
            KeyRing::from_provider_jwk_set(&format!(r#"{{"keys":[{jwk}]}}"#)).unwrap();
        assert!(skipped.is_empty());
        for token_alg in ["EdDSA", "Ed25519"] {
            let provider = IdentityProvider::builder(ISSUER, access())
                .algorithms(&[JwsAlgorithm::EdDsa])
                .clock(Arc::new(FixedClock))
                .static_keys(ring.clone())
                .build()
                .unwrap();
            let identity = verify_with(provider, &token(token_alg)).await;
            assert!(
                identity.is_ok(),
                "key {key_alg}, token {token_alg}: {identity:?}"
            );
        }
    }
    // Still on the allow-list: an RS256-only provider refuses either name.
    let ring = KeyRing::verify_only(vec![ed.verification_key()]).unwrap();
    let rs256_only = || {
        IdentityProvider::builder(ISSUER, access())
            .clock(Arc::new(FixedClock))
            .static_keys(ring.clone())
            .build()
            .unwrap()
    };
    for alg in ["EdDSA", "Ed25519"] {
        assert!(matches!(
            verify_with(rs256_only(), &token(alg)).await,
            Err(ExternalTokenError::Jws(JwsFailure::AlgorithmRejected))
        ));
    }
}

#[tokio::test]
async fn audience_expiry_not_before_issued_at_and_type_are_checked_with_leeway() {
    let key = rsa("a1");
    let check = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims(ISSUER);
        edit(&mut c);
        sign(&key, "JWT", &c)
    };
    let provider = || static_provider(ISSUER, &[&key], |b| b);
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| c["aud"] = json!(["other", "x"])),
            "wrong_audience",
        ),
        // The default leeway is 30 s; expired on `exp + leeway` itself.
        (Box::new(|c| c["exp"] = json!(NOW - 30)), "expired"),
        (Box::new(|c| c["nbf"] = json!(NOW + 31)), "not_yet_valid"),
        (Box::new(|c| c["iat"] = json!(NOW + 31)), "issued_in_future"),
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "missing_claim",
        ),
        (Box::new(|c| c["exp"] = json!("soon")), "invalid_claim"),
        (Box::new(|c| c["sub"] = json!("")), "invalid_claim"),
    ];
    for (edit, code) in cases {
        assert_eq!(
            verify_with(provider(), &check(&*edit))
                .await
                .unwrap_err()
                .code(),
            code
        );
    }
    // Within the leeway.
    let within: Vec<Edit> = vec![
        Box::new(|c| c["exp"] = json!(NOW - 29)),
        Box::new(|c| c["nbf"] = json!(NOW + 30)),
        Box::new(|c| c["iat"] = json!(NOW + 30)),
    ];
    for edit in within {
        assert!(verify_with(provider(), &check(&*edit)).await.is_ok());
    }
    assert!(
        verify_with(provider(), &check(&|c| c["aud"] = json!(["x", "api"])))
            .await
            .is_ok()
    );
    // typ when configured.
    let typed = || {
        profiled_provider(
            ISSUER,
            &[&key],
            access().typ(TypRule::exactly("at+jwt")),
            |b| b,
        )
    };
    assert!(
        verify_with(typed(), &sign(&key, "application/AT+JWT", &claims(ISSUER)))
            .await
            .is_ok()
    );
    assert!(matches!(
        verify_with(typed(), &sign(&key, "JWT", &claims(ISSUER))).await,
        Err(ExternalTokenError::WrongType)
    ));
    // The prefix may be on the configured side only, too.
    let prefixed = profiled_provider(
        ISSUER,
        &[&key],
        access().typ(TypRule::exactly("application/at+jwt")),
        |b| b,
    );
    assert!(
        verify_with(prefixed, &sign(&key, "At+Jwt", &claims(ISSUER)))
            .await
            .is_ok()
    );
    assert!(matches!(
        verify_with(typed(), &sign(&key, "application/", &claims(ISSUER))).await,
        Err(ExternalTokenError::WrongType)
    ));
}

/// A clock pinned to an instant with a fraction of a second.
struct PinnedClock(OffsetDateTime);
impl Clock for PinnedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

#[tokio::test]
async fn a_provider_token_is_expired_on_exp_plus_leeway_exactly_as_a_session_is() {
    let key = rsa("a1");
    let token = sign(&key, "JWT", &claims(ISSUER)); // exp NOW + 300
    let exp = OffsetDateTime::from_unix_timestamp(NOW + 300).unwrap();
    let nanosecond = Duration::nanoseconds(1);
    for leeway in [Duration::ZERO, Duration::seconds(7)] {
        let at = |now: OffsetDateTime| {
            static_provider(ISSUER, &[&key], |b| {
                b.leeway(leeway).clock(Arc::new(PinnedClock(now)))
            })
        };
        let edge = exp + leeway;
        assert!(verify_with(at(edge - nanosecond), &token).await.is_ok());
        for now in [edge, edge + nanosecond] {
            assert!(matches!(
                verify_with(at(now), &token).await,
                Err(ExternalTokenError::Expired)
            ));
        }
    }
    assert!(matches!(
        IdentityProvider::builder(ISSUER, access())
            .leeway(Duration::seconds(-1))
            .static_keys(KeyRing::verify_only(vec![key.verification_key()]).unwrap())
            .build(),
        Err(ProviderConfigError::NegativeLeeway)
    ));
}

#[tokio::test]
async fn a_missing_role_claim_is_least_privilege_or_refused_as_configured() {
    let key = rsa("a1");
    let mut no_role = claims(ISSUER);
    no_role.as_object_mut().unwrap().remove("public_metadata");
    let token = sign(&key, "JWT", &no_role);
    assert!(matches!(
        verify_with(static_provider(ISSUER, &[&key], |b| b), &token).await,
        Err(ExternalTokenError::Role(RoleMappingError::Missing { .. }))
    ));
    let lenient = profiled_provider(
        ISSUER,
        &[&key],
        TokenProfile::access(mapping(MissingRole::LeastPrivilege(UserRole::User))).audience("api"),
        |b| b,
    );
    assert_eq!(
        verify_with(lenient, &token).await.unwrap().role,
        UserRole::User
    );
}

#[tokio::test]
async fn a_present_but_unmappable_role_is_always_refused() {
    let key = rsa("a1");
    let mut c = claims(ISSUER);
    c["public_metadata"]["role"] = json!("org:owner");
    let lenient = profiled_provider(
        ISSUER,
        &[&key],
        TokenProfile::access(mapping(MissingRole::LeastPrivilege(UserRole::User))).audience("api"),
        |b| b,
    );
    assert!(matches!(
        verify_with(lenient, &sign(&key, "JWT", &c)).await,
        Err(ExternalTokenError::Role(RoleMappingError::Unmapped(_)))
    ));
}

#[tokio::test]
async fn nested_and_array_role_claims_are_mapped() {
    let key = rsa("a1");
    for (path, claim) in [
        (
            "metadata.roles",
            json!({"metadata": {"roles": ["viewer", "editor"]}}),
        ),
        (
            "app_metadata.roles",
            json!({"app_metadata": {"roles": "editor"}}),
        ),
        ("o.rol", json!({"o": {"rol": ["editor"], "id": "org_1"}})),
    ] {
        let mut c = claims(ISSUER);
        for (k, v) in claim.as_object().unwrap() {
            c[k] = v.clone();
        }
        let m = ClaimMapping::new(path, MissingRole::Reject)
            .unwrap()
            .map("viewer", UserRole::User)
            .unwrap()
            .map("editor", UserRole::Moderator)
            .unwrap();
        let provider = IdentityProvider::builder(ISSUER, TokenProfile::access(m).audience("api"))
            .clock(Arc::new(FixedClock))
            .static_keys(KeyRing::verify_only(vec![key.verification_key()]).unwrap())
            .build()
            .unwrap();
        assert_eq!(
            verify_with(provider, &sign(&key, "JWT", &c))
                .await
                .unwrap()
                .role,
            UserRole::Moderator,
            "{path}"
        );
    }
}

// ----- token profiles ------------------------------------------------------------

const CLIENT: &str = "client-1";

/// A token whose header has no `typ`, as ID tokens usually do.
fn sign_untyped(key: &SigningKey, claims: &Value) -> String {
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!(r#"{{"alg":"RS256","kid":"{}"}}"#, key.kid()),
    );
    jose::sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

/// One provider, two profiles: RFC 9068 access tokens for the API (role
/// at `public_metadata.role`), and ID tokens for the client (role at
/// `roles`, absent: least privilege).
fn two_profiles(key: &SigningKey) -> IdentityProvider<UserRole> {
    let id_mapping = ClaimMapping::new("roles", MissingRole::LeastPrivilege(UserRole::User))
        .unwrap()
        .map("mod", UserRole::Moderator)
        .unwrap()
        .name("name")
        .unwrap();
    profiled_provider(
        ISSUER,
        &[key],
        access().typ(TypRule::exactly("at+jwt")),
        |b| b.profile(TokenProfile::id_token(id_mapping).audience(CLIENT)),
    )
}

fn id_claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "user_2abc", "aud": CLIENT, "azp": CLIENT,
        "iat": NOW - 10, "exp": NOW + 300, "name": "Ada", "roles": ["mod"],
    })
}

#[tokio::test]
async fn an_access_token_and_an_id_token_of_one_provider_each_get_their_profile() {
    let key = rsa("a1");
    let access = verify_with(two_profiles(&key), &sign(&key, "at+jwt", &claims(ISSUER)))
        .await
        .unwrap();
    assert_eq!(access.token_use, TokenUse::Access);
    assert_eq!(access.role, UserRole::Admin);
    assert_eq!(access.email.as_deref(), Some("a@example.com"));
    assert_eq!(access.name, None);
    for id_token in [
        sign_untyped(&key, &id_claims()),
        sign(&key, "JWT", &id_claims()),
    ] {
        let id = verify_with(two_profiles(&key), &id_token).await.unwrap();
        assert_eq!(id.token_use, TokenUse::Id);
        assert_eq!(id.subject_kind, SubjectKind::User);
        assert_eq!(id.role, UserRole::Moderator, "the ID profile's mapping");
        assert_eq!(id.name.as_deref(), Some("Ada"));
        assert_eq!(id.email, None, "the ID profile maps no email");
    }
}

#[tokio::test]
async fn a_token_that_fits_no_profile_or_two_is_refused_never_read_by_the_first() {
    let key = rsa("a1");
    let refusal = |token: String, provider: IdentityProvider<UserRole>| async move {
        verify_with(provider, &token).await.unwrap_err().code()
    };
    // An access token's type with the client's audience, and the reverse.
    let mut crossed = claims(ISSUER);
    crossed["aud"] = json!(CLIENT);
    assert_eq!(
        refusal(sign(&key, "at+jwt", &crossed), two_profiles(&key)).await,
        "wrong_audience"
    );
    assert_eq!(
        refusal(sign_untyped(&key, &claims(ISSUER)), two_profiles(&key)).await,
        "wrong_audience"
    );
    assert_eq!(
        refusal(sign(&key, "logout+jwt", &id_claims()), two_profiles(&key)).await,
        "wrong_typ"
    );
    // Access tokens of any type (as many providers label them `JWT`) beside
    // ID tokens: told apart by audience, unless a token names both.
    let by_audience = || {
        profiled_provider(ISSUER, &[&key], access(), |b| {
            b.profile(
                TokenProfile::id_token(mapping(MissingRole::LeastPrivilege(UserRole::User)))
                    .audience(CLIENT),
            )
        })
    };
    let identity = verify_with(by_audience(), &sign(&key, "JWT", &id_claims()))
        .await
        .unwrap();
    assert_eq!(identity.token_use, TokenUse::Id);
    let mut both = claims(ISSUER);
    both["aud"] = json!(["api", CLIENT]);
    let err = verify_with(by_audience(), &sign(&key, "JWT", &both))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExternalTokenError::AmbiguousProfile),
        "{err:?}"
    );
    assert_eq!(err.code(), "ambiguous_profile");
    // The `typ` tells them apart when it can.
    let identity = verify_with(two_profiles(&key), &sign(&key, "at+jwt", &both))
        .await
        .unwrap();
    assert_eq!(identity.token_use, TokenUse::Access);
}

#[test]
fn profiles_that_can_fit_a_token_with_one_audience_are_refused_when_built() {
    let key = rsa("a1");
    let build = |first: TokenProfile<UserRole>, second: TokenProfile<UserRole>| {
        IdentityProvider::builder(ISSUER, first)
            .profile(second)
            .static_keys(KeyRing::verify_only(vec![key.verification_key()]).unwrap())
            .build()
    };
    let id = || TokenProfile::id_token(mapping(MissingRole::Reject));
    for (first, second) in [
        // Same audience, overlapping types.
        (access(), id().audience("api")),
        (
            access().typ(TypRule::exactly("JWT")),
            id().audience("x").audience("api"),
        ),
        // No audience check on one side: any audience fits it.
        (access().skip_audience_check(), id().audience(CLIENT)),
    ] {
        assert!(matches!(
            build(first, second),
            Err(ProviderConfigError::AmbiguousProfiles(
                TokenUse::Access,
                TokenUse::Id
            ))
        ));
    }
    // Types that never meet, or audiences apart.
    assert!(
        build(
            access().typ(TypRule::exactly("at+jwt")),
            id().audience("api")
        )
        .is_ok()
    );
    assert!(build(access(), id().audience(CLIENT)).is_ok());
    // Every profile needs an audience or an explicit skip.
    assert!(matches!(
        build(access(), id()),
        Err(ProviderConfigError::NoAudience)
    ));
    // And paths that can be read.
    assert!(matches!(
        build(access(), id().audience(CLIENT).require_claim("a..b")),
        Err(ProviderConfigError::Mapping(
            MappingConfigError::InvalidPath(_)
        ))
    ));
}

#[tokio::test]
async fn a_client_credentials_token_is_a_machine_token_refused_by_default_with_its_own_code() {
    let key = rsa("a1");
    let verify = |profile: TokenProfile<UserRole>, claims: Value| {
        let provider = profiled_provider(ISSUER, &[&key], profile, |b| b);
        let token = sign(&key, "at+jwt", &claims);
        async move { verify_with(provider, &token).await }
    };
    // RFC 9068 client credentials: `sub` is the client's id, as
    // `client_id` says (oidc-provider), or as `azp` says.
    let mut by_client_id = claims(ISSUER);
    by_client_id["sub"] = json!("svc-reports");
    by_client_id["client_id"] = json!("svc-reports");
    let mut by_azp = claims(ISSUER);
    by_azp["sub"] = json!("https://app.example");
    // Auth0: `sub` is `<client id>@clients`, `gty` says so.
    let mut by_claim = claims(ISSUER);
    by_claim["sub"] = json!("svc-reports@clients");
    by_claim["gty"] = json!("client-credentials");
    let auth0 = || access().machine_when("gty", "client-credentials");
    for machine in [&by_client_id, &by_azp, &by_claim] {
        let err = verify(auth0(), machine.clone()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ExternalTokenError::Subject(SubjectRefusal::MachineToken)
            ),
            "{machine}: {err:?}"
        );
        assert_eq!(err.code(), "machine_token");
        assert!(!err.is_unavailable());
        let identity = verify(auth0().subjects(AcceptedSubjects::Both), machine.clone())
            .await
            .unwrap();
        assert_eq!(identity.subject_kind, SubjectKind::Machine);
        let identity = verify(
            auth0().subjects(AcceptedSubjects::Machines),
            machine.clone(),
        )
        .await
        .unwrap();
        assert_eq!(identity.subject_kind, SubjectKind::Machine);
    }
    // Without the configured claim rule, Auth0's shape is a user's.
    assert_eq!(
        verify(access(), by_claim.clone())
            .await
            .unwrap()
            .subject_kind,
        SubjectKind::User
    );
    let mut other_grant = by_claim.clone();
    other_grant["gty"] = json!("password");
    assert_eq!(
        verify(auth0(), other_grant).await.unwrap().subject_kind,
        SubjectKind::User
    );
    // A user's token: taken by default, refused by a machines-only profile.
    let user = verify(access(), claims(ISSUER)).await.unwrap();
    assert_eq!(user.subject_kind, SubjectKind::User);
    let err = verify(
        access().subjects(AcceptedSubjects::Machines),
        claims(ISSUER),
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        ExternalTokenError::Subject(SubjectRefusal::UserToken)
    ));
    assert_eq!(err.code(), "user_token");
}

#[tokio::test]
async fn a_required_claim_absent_or_of_another_value_is_refused_naming_its_path() {
    let key = rsa("a1");
    let profile = || {
        access()
            .require_claim("email")
            .require_claim_value("email_verified", true)
            .require_claim_value("org.groups", "staff")
    };
    let verify = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims(ISSUER);
        c["email_verified"] = json!(true);
        c["org"] = json!({"groups": ["eng", "staff"]});
        edit(&mut c);
        let provider = profiled_provider(ISSUER, &[&key], profile(), |b| b);
        let token = sign(&key, "JWT", &c);
        async move { verify_with(provider, &token).await }
    };
    let identity = verify(&|_| {}).await.unwrap();
    assert_eq!(identity.email.as_deref(), Some("a@example.com"));
    assert!(
        verify(&|c| c["org"]["groups"] = json!("staff"))
            .await
            .is_ok()
    );
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("email");
            }),
            "email",
        ),
        (Box::new(|c| c["email"] = json!(null)), "email"),
        (
            Box::new(|c| c["email_verified"] = json!(false)),
            "email_verified",
        ),
        (
            Box::new(|c| c["email_verified"] = json!("true")),
            "email_verified",
        ),
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("email_verified");
            }),
            "email_verified",
        ),
        (
            Box::new(|c| c["org"]["groups"] = json!(["eng"])),
            "org.groups",
        ),
        (Box::new(|c| c["org"] = json!("staff")), "org.groups"),
    ];
    for (edit, path) in cases {
        let err = verify(&*edit).await.unwrap_err();
        match &err {
            ExternalTokenError::Subject(SubjectRefusal::RequiredClaim { path: named }) => {
                assert_eq!(named, path);
            }
            other => panic!("{path}: {other:?}"),
        }
        assert_eq!(err.code(), "required_claim");
    }
}

// ----- provider JWK sets ------------------------------------------------------------

#[test]
fn a_provider_set_keeps_usable_keys_and_reports_encryption_rs384_and_secret_keys() {
    let good = rsa("sig-1");
    let mut jwk: Value =
        serde_json::from_str(&good.verification_key().to_public_jwk().unwrap()).unwrap();
    let mut enc = jwk.clone();
    enc["kid"] = json!("enc-1");
    enc["use"] = json!("enc");
    let mut rs384 = jwk.clone();
    rs384["kid"] = json!("rs384");
    rs384["alg"] = json!("RS384");
    let oct = json!({"kty": "oct", "kid": "secret", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"});
    jwk["use"] = json!("sig");
    let set = json!({"keys": [enc, jwk, rs384, oct]}).to_string();
    assert!(KeyRing::from_jwk_set(&set).is_err());
    let (ring, skipped) = KeyRing::from_provider_jwk_set(&set).unwrap();
    assert_eq!(ring.verification_keys().len(), 1);
    assert_eq!(ring.verification_keys()[0].kid(), Some("sig-1"));
    let reasons: Vec<_> = skipped
        .iter()
        .map(|s| (s.kid.as_deref(), &s.reason))
        .collect();
    assert!(matches!(
        reasons[0],
        (Some("enc-1"), SkipReason::Unusable(_))
    ));
    assert!(matches!(
        reasons[1],
        (Some("rs384"), SkipReason::Unusable(_))
    ));
    assert!(matches!(
        reasons[2],
        (Some("secret"), SkipReason::Symmetric)
    ));
    assert!(KeyRing::from_provider_jwk_set(r#"{"keys":[]}"#).is_err());
}

#[test]
fn a_provider_set_drops_every_key_of_a_repeated_kid() {
    let a = rsa("k");
    let b = rsa("k");
    let c = rsa("c");
    let jwk = |k: &SigningKey| {
        serde_json::from_str::<Value>(&k.verification_key().to_public_jwk().unwrap()).unwrap()
    };
    let set = json!({"keys": [jwk(&a), jwk(&b), jwk(&c)]}).to_string();
    let (ring, skipped) = KeyRing::from_provider_jwk_set(&set).unwrap();
    assert_eq!(ring.verification_keys().len(), 1);
    assert_eq!(skipped.len(), 2);
}

// ----- key cache --------------------------------------------------------------------

/// The key cache and its fetching exist only with `jwks-fetch`.
#[cfg(feature = "jwks-fetch")]
mod fetching {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration as StdDuration;

    use async_trait::async_trait;

    use super::*;

    /// A provider's JWKS endpoint in process: counts fetches, serves the
    /// current set, can be taken down or slowed.
    struct StandIn {
        set: Mutex<String>,
        fetches: AtomicU64,
        down: AtomicBool,
        delay: Mutex<StdDuration>,
    }

    impl StandIn {
        fn new(keys: &[&SigningKey]) -> Arc<Self> {
            let stand_in = Arc::new(Self {
                set: Mutex::new(String::new()),
                fetches: AtomicU64::new(0),
                down: AtomicBool::new(false),
                delay: Mutex::new(StdDuration::ZERO),
            });
            stand_in.publish(keys);
            stand_in
        }

        fn publish(&self, keys: &[&SigningKey]) {
            let ring =
                KeyRing::verify_only(keys.iter().map(|k| k.verification_key()).collect()).unwrap();
            *self.set.lock().unwrap() = ring.to_public_jwk_set().unwrap();
        }

        fn fetches(&self) -> u64 {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl JwksSource for StandIn {
        async fn fetch(&self) -> Result<JwksDocument, JwksFetchError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let delay = *self.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            if self.down.load(Ordering::SeqCst) {
                return Err(JwksFetchError::Status(503));
            }
            Ok(JwksDocument {
                body: self.set.lock().unwrap().clone(),
                max_age: None,
            })
        }
    }

    fn policy(max_age_ms: u64, cooldown_ms: u64, stale_ms: u64) -> CachePolicy {
        CachePolicy {
            default_max_age: StdDuration::from_millis(max_age_ms),
            min_max_age: StdDuration::ZERO,
            max_max_age: StdDuration::from_secs(3600),
            cooldown: StdDuration::from_millis(cooldown_ms),
            stale_bound: StdDuration::from_millis(stale_ms),
            fetch_timeout: StdDuration::from_millis(300),
        }
    }

    fn cached(stand_in: &Arc<StandIn>, policy: CachePolicy) -> Arc<JwksTokenVerifier<UserRole>> {
        Arc::new(JwksTokenVerifier::new(
            IdentityProvider::builder(ISSUER, access())
                .clock(Arc::new(FixedClock))
                .jwks(stand_in.clone(), policy)
                .build()
                .unwrap(),
        ))
    }

    #[tokio::test]
    async fn a_warm_cache_verifies_without_fetching_again() {
        let key = rsa("k1");
        let stand_in = StandIn::new(&[&key]);
        let verifier = cached(&stand_in, policy(60_000, 60_000, 60_000));
        let token = sign(&key, "JWT", &claims(ISSUER));
        for _ in 0..50 {
            verifier.verify(&token).await.unwrap();
        }
        assert_eq!(stand_in.fetches(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cold_start_storm_shares_one_fetch() {
        let key = rsa("k1");
        let stand_in = StandIn::new(&[&key]);
        *stand_in.delay.lock().unwrap() = StdDuration::from_millis(50);
        let verifier = cached(&stand_in, policy(60_000, 60_000, 60_000));
        let token = Arc::new(sign(&key, "JWT", &claims(ISSUER)));
        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let (verifier, token) = (verifier.clone(), token.clone());
                tokio::spawn(async move { verifier.verify(&token).await.is_ok() })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        assert_eq!(stand_in.fetches(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unknown_kid_storm_causes_at_most_one_fetch_per_cooldown_window() {
        let key = rsa("k1");
        let stand_in = StandIn::new(&[&key]);
        // A cooldown long enough that a storm of 2,000 verifications on a
        // loaded machine fits in one window (the count is exact then).
        let verifier = cached(&stand_in, policy(60_000, 2_000, 60_000));
        verifier
            .verify(&sign(&key, "JWT", &claims(ISSUER)))
            .await
            .unwrap();
        assert_eq!(stand_in.fetches(), 1);
        let mut tokens = Vec::new();
        for i in 0..2000 {
            let header = format!(r#"{{"alg":"RS256","kid":"random-{i}","typ":"JWT"}}"#);
            let b64 = |b: &[u8]| {
                base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
            };
            tokens.push(Arc::new(format!(
                "{}.{}.{}",
                b64(header.as_bytes()),
                b64(claims(ISSUER).to_string().as_bytes()),
                b64(&[0u8; 256])
            )));
        }
        let storm = |tokens: &[Arc<String>]| {
            tokens
                .iter()
                .map(|t| {
                    let (verifier, t) = (verifier.clone(), t.clone());
                    tokio::spawn(async move { verifier.verify(&t).await.unwrap_err().code() })
                })
                .collect::<Vec<_>>()
        };
        // The first fetch was no refetch for an unknown kid, so the storm
        // may refetch: exactly once for all of it.
        for task in storm(&tokens) {
            assert_eq!(task.await.unwrap(), "unknown_kid");
        }
        assert_eq!(stand_in.fetches(), 2);
        // After the cooldown: again exactly one refetch for the whole storm.
        tokio::time::sleep(StdDuration::from_millis(2_050)).await;
        for task in storm(&tokens) {
            assert_eq!(task.await.unwrap(), "unknown_kid");
        }
        assert_eq!(stand_in.fetches(), 3);
    }

    #[tokio::test]
    async fn key_rotation_at_the_provider_picks_up_the_new_kid_and_drops_the_old() {
        let old = rsa("old");
        let new = rsa("new");
        let stand_in = StandIn::new(&[&old]);
        let verifier = cached(&stand_in, policy(60_000, 100, 60_000));
        let old_token = sign(&old, "JWT", &claims(ISSUER));
        for _ in 0..3 {
            verifier.verify(&old_token).await.unwrap();
        }
        let verified = || verifier.provider(ISSUER).unwrap().verified_cache_stats();
        assert_eq!(verified().unwrap().hits, 1, "the old token is cached");
        stand_in.publish(&[&new]);
        tokio::time::sleep(StdDuration::from_millis(150)).await;
        verifier
            .verify(&sign(&new, "JWT", &claims(ISSUER)))
            .await
            .unwrap();
        assert_eq!(stand_in.fetches(), 2);
        assert_eq!(verified().unwrap().entries, 1, "new keys, fresh cache");
        assert_eq!(
            verifier.verify(&old_token).await.unwrap_err().code(),
            "unknown_kid"
        );
        // The old kid's refusal came within the cooldown: no third fetch.
        assert_eq!(stand_in.fetches(), 2);
    }

    /// A provider serving `old`, and a verifier of its tokens whose keys
    /// are due 100 ms after the first fetch (done) and whose cooldown is
    /// far longer than any test; the token `old` signed.
    async fn due_soon(
        old: &SigningKey,
    ) -> (Arc<StandIn>, Arc<JwksTokenVerifier<UserRole>>, String) {
        let stand_in = StandIn::new(&[old]);
        let verifier = cached(&stand_in, policy(100, 600_000, 600_000));
        let old_token = sign(old, "JWT", &claims(ISSUER));
        verifier.verify(&old_token).await.unwrap();
        assert_eq!(stand_in.fetches(), 1);
        (stand_in, verifier, old_token)
    }

    /// Why `verifier` refuses a token signed by `key`.
    async fn refusal(verifier: &JwksTokenVerifier<UserRole>, key: &SigningKey) -> &'static str {
        let token = sign(key, "JWT", &claims(ISSUER));
        verifier.verify(&token).await.unwrap_err().code()
    }

    #[tokio::test]
    async fn a_key_rotated_in_just_after_a_scheduled_refresh_is_fetched_at_once() {
        let (old, new) = (rsa("old"), rsa("new"));
        let (stand_in, verifier, old_token) = due_soon(&old).await;
        // t: the keys are due, and this verification refreshes them.
        tokio::time::sleep(StdDuration::from_millis(150)).await;
        verifier.verify(&old_token).await.unwrap();
        assert_eq!(stand_in.fetches(), 2);
        // t+1: the provider rotates; t+2: a token under the new kid.
        stand_in.publish(&[&old, &new]);
        verifier
            .verify(&sign(&new, "JWT", &claims(ISSUER)))
            .await
            .unwrap();
        // (Whether the new kid or due keys made it, this fetch has it.)
        assert_eq!(stand_in.fetches(), 3);
    }

    #[tokio::test]
    async fn after_a_failed_fetch_an_unknown_kid_waits_for_the_cooldown() {
        let (old, new) = (rsa("old"), rsa("new"));
        let (stand_in, verifier, old_token) = due_soon(&old).await;
        stand_in.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(StdDuration::from_millis(150)).await;
        // A scheduled refresh fails; the stale keys are still served.
        verifier.verify(&old_token).await.unwrap();
        assert_eq!(stand_in.fetches(), 2);
        let cache = verifier.provider(ISSUER).unwrap().key_cache().unwrap();
        let counts = (cache.succeeded_fetch_count(), cache.failed_fetch_count());
        assert_eq!((cache.fetch_count(), counts), (2, (1, 1)));
        stand_in.down.store(false, Ordering::SeqCst);
        stand_in.publish(&[&new]);
        assert_eq!(refusal(&verifier, &new).await, "unknown_kid");
        assert_eq!(stand_in.fetches(), 2);
    }

    #[tokio::test]
    async fn while_the_provider_is_down_cached_keys_work_up_to_the_bound_then_verification_fails_closed()
     {
        let key = rsa("k1");
        let stand_in = StandIn::new(&[&key]);
        let verifier = cached(&stand_in, policy(100, 100, 400));
        let token = sign(&key, "JWT", &claims(ISSUER));
        verifier.verify(&token).await.unwrap();
        stand_in.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(StdDuration::from_millis(150)).await;
        // Stale, within the bound: served, one failed refresh attempted.
        verifier.verify(&token).await.unwrap();
        verifier.verify(&token).await.unwrap();
        assert_eq!(stand_in.fetches(), 2);
        tokio::time::sleep(StdDuration::from_millis(450)).await;
        let err = verifier.verify(&token).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        // Back up: keys fresh again.
        stand_in.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(StdDuration::from_millis(120)).await;
        verifier.verify(&token).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_provider_times_out_without_a_pile_up_of_fetches() {
        let key = rsa("k1");
        let stand_in = StandIn::new(&[&key]);
        *stand_in.delay.lock().unwrap() = StdDuration::from_secs(5);
        let verifier = cached(&stand_in, policy(60_000, 1_000, 60_000));
        let token = Arc::new(sign(&key, "JWT", &claims(ISSUER)));
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (verifier, token) = (verifier.clone(), token.clone());
                tokio::spawn(
                    async move { verifier.verify(&token).await.unwrap_err().is_unavailable() },
                )
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        assert!(started.elapsed() < StdDuration::from_secs(2));
        assert_eq!(stand_in.fetches(), 1);
    }
}
