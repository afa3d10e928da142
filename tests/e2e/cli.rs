//! The `tessera` binary, run as an operator runs it: keygen → mint → verify
//! for every algorithm, verify's exit code and reason code for every attack
//! in `attacks.rs` (each compared with the library's own verdict), `--now`
//! reproducing an expiry, inspect on malformed input, unreadable keys.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tessera::application::VerifyError;
use tessera::{JwsAlgorithm, KeyRing, SigningKey, VerificationKey};

use crate::support::*;

const RSA_PUBLIC: &[u8] = include_bytes!("../keys/rsa2048-test-only.pub.pem");

// ----- running the binary ------------------------------------------------------

/// One run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

fn tessera_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // The binary may stop reading early (input over its cap).
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    let output = child.wait_with_output().unwrap();
    let run = Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "tessera {args:?} panicked: {}",
        run.stderr
    );
    run
}

fn tessera(args: &[&str]) -> Run {
    tessera_with_stdin(args, None)
}

/// A directory of its own for one test, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tessera-cli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.file(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn mode(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(Path::new(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn alice_sub() -> String {
    alice().to_string()
}

// ----- keygen → mint → verify ---------------------------------------------------

#[test]
fn keygen_mint_verify_round_trips_for_every_algorithm() {
    let dir = TempDir::new();
    for alg in ALGORITHMS {
        let private = dir.file(&format!("{alg}.private.json"));
        let public = dir.file(&format!("{alg}.jwks.json"));
        let kid = format!("{alg}-cli");
        let run = tessera(&[
            "keygen",
            "--alg",
            alg.name(),
            "--kid",
            &kid,
            "--out-private",
            &private,
            "--out-public",
            &public,
        ]);
        assert_eq!(run.code, 0, "{alg}: {}", run.stderr);
        #[cfg(unix)]
        {
            assert_eq!(mode(&private), 0o600, "{alg} private key file");
            if alg == JwsAlgorithm::Hs256 {
                assert_eq!(mode(&public), 0o600, "an HS256 JWK set holds the secret");
            }
        }

        let start = START.to_string();
        let run = tessera(&[
            "mint",
            "--json",
            "--key",
            &private,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--sub",
            &alice_sub(),
            "--role",
            "moderator",
            "--capability",
            "posts:write",
            "--capability",
            "posts:edit",
            "--tenant",
            "acme",
            "--ttl",
            "900",
            "--now",
            &start,
        ]);
        assert_eq!(run.code, 0, "{alg}: {}", run.stderr);
        let minted = run.json();
        let token = minted["token"].as_str().unwrap().to_owned();
        assert_eq!(minted["session"]["iat"], START);
        assert_eq!(minted["session"]["exp"], START + 900);

        // The library verifies what the CLI minted...
        let key = SigningKey::from_jwk(&std::fs::read_to_string(&private).unwrap()).unwrap();
        let app = spawn_app(KeyRing::new(key));
        app.clock.advance(60);
        let session = app
            .sessions
            .verify()
            .execute(&token)
            .unwrap()
            .into_session();
        assert_eq!(session.user_id(), &alice());
        assert!(session.has_capability("posts:edit") && session.is_in_tenant("acme"));

        // ...and so does the CLI, with the JWK set keygen wrote.
        let now = (START + 60).to_string();
        let run = tessera(&verify_with(&public, &["--now", &now, &token]));
        assert_eq!(run.code, 0, "{alg}: {}", run.stderr);
        assert!(run.stderr.contains("VALID"), "{}", run.stderr);
        let verified = run.json();
        assert_eq!(verified["valid"], true);
        assert_eq!(verified["key"], json!({"kid": kid, "alg": alg.name()}));
        let session = &verified["session"];
        assert_eq!(session["user_id"], alice_sub());
        assert_eq!(session["role"], "moderator");
        assert_eq!(
            session["capabilities"],
            json!(["posts:edit", "posts:write"])
        );
        assert_eq!(session["tenant"], "acme");
        assert_eq!(session["session_id"], minted["session"]["session_id"]);
        assert_eq!(session["expires_at"], "2027-01-15T08:15:00Z");
        assert!(
            verified["revocation"]
                .as_str()
                .unwrap()
                .contains("not checked")
        );
    }
}

#[test]
fn keygen_without_files_prints_the_private_jwk_and_the_jwk_set() {
    for alg in ALGORITHMS {
        let run = tessera(&["keygen", "--json", "--alg", alg.name()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let out = run.json();
        let kid = out["kid"].as_str().unwrap();
        assert!(kid.starts_with(&alg.name().to_ascii_lowercase()), "{kid}");
        let key = SigningKey::from_jwk(&out["private_jwk"].to_string()).unwrap();
        assert_eq!((key.kid(), key.algorithm()), (kid, alg));
        let ring = KeyRing::from_jwk_set(&out["jwks"].to_string()).unwrap();
        let signature = key.sign(b"m").unwrap();
        assert!(
            ring.select(Some(kid), alg)
                .unwrap()
                .verify(b"m", &signature)
        );
        if alg != JwsAlgorithm::Hs256 {
            assert!(out["jwks"]["keys"][0].get("d").is_none(), "public only");
        }

        // Without --json: one JSON document per line, labels on stderr.
        let run = tessera(&["keygen", "--alg", alg.name(), "--kid", "k"]);
        assert_eq!(run.code, 0);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{}", run.stdout);
        assert!(SigningKey::from_jwk(lines[0]).is_ok());
        assert!(KeyRing::from_jwk_set(lines[1]).is_ok());
        assert!(run.stderr.contains("keep it secret"));
    }
}

#[test]
fn keygen_refuses_to_overwrite_a_key_file_unless_forced() {
    let dir = TempDir::new();
    let private = dir.write("taken.json", "precious");
    let run = tessera(&["keygen", "--alg", "EdDSA", "--out-private", &private]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("[file_exists]"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&private).unwrap(), "precious");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let run = tessera(&[
        "keygen",
        "--alg",
        "EdDSA",
        "--out-private",
        &private,
        "--force",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(SigningKey::from_jwk(&std::fs::read_to_string(&private).unwrap()).is_ok());
    #[cfg(unix)]
    assert_eq!(
        mode(&private),
        0o600,
        "a replaced key file is made private too"
    );

    let same = dir.file("same.json");
    let run = tessera(&[
        "keygen",
        "--alg",
        "ES256",
        "--out-private",
        &same,
        "--out-public",
        &same,
    ]);
    assert_eq!(run.code, 2);
}

// ----- verify: every attack, with the library's verdict -------------------------

fn hs_jwks(keys: &[SigningKey]) -> String {
    let jwks: Vec<Value> = keys
        .iter()
        .map(|key| serde_json::from_str(key.to_private_jwk().unwrap().expose_secret()).unwrap())
        .collect();
    json!({ "keys": jwks }).to_string()
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

/// One attack: a token, the keys it meets, when, and the code verify must
/// give (`None`: valid).
struct Case {
    name: &'static str,
    token: String,
    ring: KeyRing,
    jwks: String,
    at: i64,
    expect: Option<&'static str>,
}

fn case(name: &'static str, token: String, expect: Option<&'static str>) -> Case {
    Case {
        name,
        token,
        ring: KeyRing::new(hs_key()),
        jwks: hs_jwks(&[hs_key()]),
        at: START,
        expect,
    }
}

fn attack_cases() -> Vec<Case> {
    let p = || payload(START);
    let h = valid_header;
    let typ = tessera::infrastructure::SESSION_TOKEN_TYPE;
    let unsigned = |header: &Value| {
        format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(p().to_string().as_bytes())
        )
    };
    let none = json!({"alg": "none", "typ": typ});

    let mut cases = vec![
        case("a correctly forged token", forged(&h(), &p()), None),
        case("alg none", unsigned(&none), Some("algorithm_rejected")),
        case(
            "alg none with a signature",
            format!("{}AAAA", unsigned(&none)),
            Some("algorithm_rejected"),
        ),
        case(
            "unknown kid",
            forged(&with(h(), "kid", json!("someone-elses")), &p()),
            Some("unknown_kid"),
        ),
        case(
            "typ JWT",
            forged(&with(h(), "typ", json!("JWT")), &p()),
            Some("wrong_typ"),
        ),
        case(
            "typ at+jwt",
            forged(&with(h(), "typ", json!("at+jwt")), &p()),
            Some("wrong_typ"),
        ),
        case(
            "typ not a string",
            forged(&with(h(), "typ", json!(5)), &p()),
            Some("token_malformed"),
        ),
        case(
            "typ missing",
            forged(&without(h(), "typ"), &p()),
            Some("wrong_typ"),
        ),
        case(
            "an identity provider's token",
            forged(&json!({"alg": "HS256", "kid": "hs1", "typ": "JWT"}), &p()),
            Some("wrong_typ"),
        ),
        case(
            "wrong issuer",
            forged(&h(), &with(p(), "iss", json!("https://evil.example"))),
            Some("wrong_issuer"),
        ),
        case(
            "wrong audience",
            forged(&h(), &with(p(), "aud", json!("admin-api"))),
            Some("wrong_audience"),
        ),
        case(
            "wrong audiences",
            forged(&h(), &with(p(), "aud", json!(["admin-api", "mobile"]))),
            Some("wrong_audience"),
        ),
        case(
            "one of several audiences",
            forged(&h(), &with(p(), "aud", json!(["mobile", AUDIENCE]))),
            None,
        ),
        case(
            "nbf beyond leeway",
            forged(&h(), &with(p(), "nbf", json!(START + 31))),
            Some("not_yet_valid"),
        ),
        case(
            "nbf within leeway",
            forged(&h(), &with(p(), "nbf", json!(START + 30))),
            None,
        ),
        case(
            "iat in the future",
            forged(&h(), &payload(START + 31)),
            Some("issued_in_future"),
        ),
        case(
            "exp equal to iat",
            forged(&h(), &with(p(), "exp", json!(START))),
            Some("invalid_claim"),
        ),
        case(
            "exp before iat",
            forged(&h(), &with(p(), "exp", json!(START - 1))),
            Some("invalid_claim"),
        ),
        case(
            "lifetime longer than configured",
            forged(&h(), &with(p(), "exp", json!(START + 901))),
            Some("lifetime_too_long"),
        ),
        case(
            "empty role",
            forged(&h(), &with(p(), "role", json!(""))),
            Some("invalid_claim"),
        ),
        case(
            "oversized token",
            forged(&h(), &with(p(), "padding", json!("x".repeat(9000)))),
            Some("token_too_large"),
        ),
        case(
            "crit header",
            forged(&with(h(), "crit", json!(["exp-by-cosmic-ray"])), &p()),
            Some("critical_header"),
        ),
        case(
            "duplicate role in the payload",
            forge(
                &h().to_string(),
                &p().to_string().replacen('{', r#"{"role":"admin","#, 1),
                &hs_key(),
            ),
            Some("invalid_claim"),
        ),
        case(
            "duplicate alg in the header",
            forge(
                &h().to_string().replacen('{', r#"{"alg":"none","#, 1),
                &p().to_string(),
                &hs_key(),
            ),
            Some("token_malformed"),
        ),
        case(
            "session past its absolute lifetime",
            forged(&h(), &with(p(), "auth_time", json!(START - 3631))),
            Some("absolute_lifetime_exceeded"),
        ),
    ];
    for sub in [
        json!("alice"),
        json!("00000000-0000-0000-0000-000000000000"),
        json!(42),
    ] {
        cases.push(case(
            "sub not a UUID",
            forged(&h(), &with(p(), "sub", sub)),
            Some("invalid_claim"),
        ));
    }
    for role in ["superadmin", "Admin", "ADMIN", "admin "] {
        cases.push(case(
            "unknown role",
            forged(&h(), &with(p(), "role", json!(role))),
            Some("invalid_claim"),
        ));
    }
    let token = forged(&h(), &p());
    for cut in [1, 4, 10, 43] {
        let mut truncated = case(
            "truncated signature",
            token[..token.len() - cut].to_owned(),
            None,
        );
        // Which of the two depends on where the cut falls in base64.
        truncated.expect = library_verdict(&truncated);
        assert!(
            matches!(
                truncated.expect,
                Some("invalid_signature" | "token_malformed")
            ),
            "cut {cut}: {:?}",
            truncated.expect
        );
        cases.push(truncated);
    }

    // Expiry, reproduced with --now: valid 29 s past exp (leeway 30 s), not 30 s.
    let old = forged(&h(), &payload(START - 900));
    cases.push(Case {
        at: START + 29,
        ..case("expired, within leeway", old.clone(), None)
    });
    cases.push(Case {
        at: START + 30,
        ..case("expired after leeway", old, Some("expired"))
    });

    // Algorithm confusion: HS256 keyed with the RSA public key's PEM.
    let rsa = VerificationKey::from_pem(JwsAlgorithm::Rs256, Some("rsa1"), RSA_PUBLIC).unwrap();
    let confused_header = json!({"alg": "HS256", "kid": "rsa1", "typ": typ});
    let input = format!(
        "{}.{}",
        b64(confused_header.to_string().as_bytes()),
        b64(p().to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, RSA_PUBLIC);
    let signature = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    cases.push(Case {
        ring: KeyRing::verify_only(vec![rsa.clone()]).unwrap(),
        jwks:
            json!({"keys": [serde_json::from_str::<Value>(&rsa.to_public_jwk().unwrap()).unwrap()]})
                .to_string(),
        ..case(
            "HS256 signed with the RSA public key as secret",
            format!("{input}.{}", b64(signature.as_ref())),
            Some("algorithm_rejected"),
        )
    });

    // A ring of several keys needs the kid.
    let hs2 = SigningKey::hmac_sha256("hs2", &[9u8; 32]).unwrap();
    cases.push(Case {
        ring: KeyRing::new(hs_key())
            .with_signing_key(hs2.clone())
            .unwrap(),
        jwks: hs_jwks(&[hs_key(), hs2]),
        ..case(
            "missing kid with several keys",
            forged(&json!({"alg": "HS256", "typ": typ}), &p()),
            Some("missing_kid"),
        )
    });
    cases
}

/// The library's verdict on `case`, as the attack tests wire it.
fn library_verdict(case: &Case) -> Option<&'static str> {
    let app = spawn_app(case.ring.clone());
    app.clock.advance(case.at - START);
    app.sessions
        .verify()
        .execute(&case.token)
        .err()
        .map(|e: VerifyError| e.code())
}

/// `verify` with `keys` and the test issuer and audience, then `rest`.
fn verify_with<'a>(keys: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "verify",
        "--keys",
        keys,
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
    ];
    args.extend_from_slice(rest);
    args
}

fn verify_args<'a>(keys: &'a str, now: &'a str) -> Vec<&'a str> {
    verify_with(
        keys,
        // The lifetimes the attack tests' app runs with.
        &[
            "--max-lifetime",
            "900",
            "--absolute-lifetime",
            "1h",
            "--leeway",
            "30",
            "--now",
            now,
        ],
    )
}

#[test]
fn verify_gives_the_librarys_verdict_and_code_for_every_attack() {
    let dir = TempDir::new();
    for (i, case) in attack_cases().iter().enumerate() {
        let keys = dir.write(&format!("keys-{i}.json"), &case.jwks);
        let now = case.at.to_string();
        assert_eq!(library_verdict(case), case.expect, "library: {}", case.name);

        // --json: the verdict on stdout; the token through stdin (`-`).
        let mut args = verify_args(&keys, &now);
        args.extend(["--json", "-"]);
        let run = tessera_with_stdin(&args, Some(&format!("{}\n", case.token)));
        let out = run.json();
        match case.expect {
            None => {
                assert_eq!(run.code, 0, "{}: {}", case.name, run.stdout);
                assert_eq!(out["valid"], true, "{}", case.name);
            }
            Some(code) => {
                assert_eq!(run.code, 1, "{}: {}", case.name, run.stdout);
                assert_eq!(out["code"], code, "{}", case.name);
                assert_eq!(out["valid"], false, "{}", case.name);
                assert!(!out["rule"].as_str().unwrap().is_empty(), "{}", case.name);
            }
        }

        // Text: the rule in words and the code on stderr, nothing on stdout.
        let mut args = verify_args(&keys, &now);
        args.push(&case.token);
        let run = tessera(&args);
        match case.expect {
            None => {
                assert_eq!(run.code, 0, "{}: {}", case.name, run.stderr);
                assert!(run.stderr.starts_with("VALID at "), "{}", case.name);
            }
            Some(code) => {
                assert_eq!(run.code, 1, "{}", case.name);
                assert!(run.stdout.is_empty(), "{}: {}", case.name, run.stdout);
                assert!(
                    run.stderr.starts_with(&format!("REJECTED [{code}]: ")),
                    "{}: {}",
                    case.name,
                    run.stderr
                );
                assert!(run.stderr.contains("\n  rule: "), "{}", case.name);
            }
        }
    }
}

#[test]
fn rejections_name_the_values_that_break_the_rule() {
    let dir = TempDir::new();
    let keys = dir.write("keys.json", &hs_jwks(&[hs_key()]));
    let check = |token: &str, now: i64, needles: &[&str]| {
        let now = now.to_string();
        let mut args = verify_args(&keys, &now);
        args.push(token);
        let run = tessera(&args);
        assert_eq!(run.code, 1);
        for needle in needles {
            assert!(run.stderr.contains(needle), "{needle:?} in {}", run.stderr);
        }
    };
    check(
        &forged(&valid_header(), &payload(START - 900)),
        START + 7_200,
        &[
            "token has expired",
            "exp 2027-01-15T08:00:00Z (1800000000): expired 2h ago",
            "now 2027-01-15T10:00:00Z (1800007200), leeway 30s",
        ],
    );
    check(
        &forged(&with(valid_header(), "kid", json!("k9")), &payload(START)),
        START,
        &["kid \"k9\"", "the key set holds hs1 (HS256)"],
    );
    check(
        &forged(
            &valid_header(),
            &with(payload(START), "sub", json!("alice")),
        ),
        START,
        &["claim `sub` is invalid", "sub \"alice\""],
    );
    check(
        &forged(
            &valid_header(),
            &with(payload(START), "exp", json!(START + 3_600)),
        ),
        START,
        &["exp - iat = 1h (3600s)", "--max-lifetime 15m (900s)"],
    );
}

// ----- verify: bad usage and unreadable keys ------------------------------------

#[test]
fn unreadable_keys_exit_2_without_a_verdict() {
    let dir = TempDir::new();
    let token = forged(&valid_header(), &payload(START));
    let encryption =
        json!({"keys": [{"kty": "oct", "kid": "e", "use": "enc", "k": b64(&[1; 32])}]});
    let keys_files = [
        dir.file("missing.json"),
        dir.write("garbage.json", "not json at all"),
        dir.write("empty.json", r#"{"keys": []}"#),
        dir.write(
            "weak.json",
            r#"{"keys": [{"kty": "oct", "kid": "w", "k": "AAAA"}]}"#,
        ),
        dir.write("enc.json", &encryption.to_string()),
        dir.file(""),
    ];
    for keys in &keys_files {
        let run = tessera(&verify_with(keys, &[&token]));
        assert_eq!(run.code, 2, "{keys}: {}", run.stderr);
        assert!(
            run.stderr.contains("[unreadable_keys]"),
            "{keys}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());

        let run = tessera(&verify_with(keys, &["--json", &token]));
        assert_eq!(run.code, 2);
        assert_eq!(run.json()["code"], "unreadable_keys");
    }
    // A single private JWK is a usable key file too.
    let single = dir.write(
        "single.json",
        hs_key().to_private_jwk().unwrap().expose_secret(),
    );
    let now = START.to_string();
    let run = tessera(&verify_with(&single, &["--now", &now, &token]));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn bad_usage_exits_2() {
    let dir = TempDir::new();
    let keys = dir.write("keys.json", &hs_jwks(&[hs_key()]));
    let token = forged(&valid_header(), &payload(START));
    let cases: [Vec<&str>; 6] = [
        vec!["verify", "--keys", &keys, "--issuer", ISSUER, &token],
        verify_with(&keys, &["--now", "soon", &token]),
        verify_with(&keys, &["--leeway", "-1", &token]),
        verify_with(&keys, &["--max-lifetime", "0", &token]),
        vec!["frobnicate"],
        vec![],
    ];
    for args in cases {
        let run = tessera(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty(), "{args:?}");

        let mut json_args = args.clone();
        json_args.push("--json");
        let run = tessera(&json_args);
        assert_eq!(run.code, 2, "{args:?} --json");
        let out = run.json();
        assert_eq!(out["ok"], false);
        assert!(
            ["usage", "invalid_lifetimes"].contains(&out["code"].as_str().unwrap()),
            "{out}"
        );
    }
}

// ----- mint -------------------------------------------------------------------------

#[test]
fn mint_refuses_bad_keys_and_arguments_with_exit_2() {
    let dir = TempDir::new();
    let private = dir.write(
        "private.json",
        SigningKey::generate(JwsAlgorithm::EdDsa, "ed")
            .unwrap()
            .to_private_jwk()
            .unwrap()
            .expose_secret(),
    );
    let public = dir.write(
        "public.json",
        &SigningKey::generate(JwsAlgorithm::EdDsa, "ed")
            .unwrap()
            .to_public_jwk()
            .unwrap(),
    );
    let mint = |key: &str, sub: &str, role: &str, extra: &[&str]| {
        let mut args = vec![
            "mint",
            "--key",
            key,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--sub",
            sub,
            "--role",
            role,
        ];
        args.extend_from_slice(extra);
        tessera(&args)
    };
    let sub = alice_sub();
    let missing = dir.file("missing.json");
    assert_eq!(mint(&private, &sub, "user", &[]).code, 0);
    for (key, sub, role, extra, needle) in [
        (
            public.as_str(),
            sub.as_str(),
            "user",
            &[][..],
            "[unreadable_key]",
        ),
        (&missing, &sub, "user", &[], "[unreadable_key]"),
        (&private, &sub, "root", &[], "tessera's default roles"),
        (&private, "alice", "user", &[], "--sub"),
        (
            &private,
            &sub,
            "user",
            &["--capability", "has space"],
            "--capability",
        ),
        (
            &private,
            &sub,
            "user",
            &["--ttl", "0"],
            "[invalid_lifetimes]",
        ),
        (
            &private,
            &sub,
            "user",
            &["--ttl", "2d", "--absolute-lifetime", "1d"],
            "[invalid_lifetimes]",
        ),
        (
            &private,
            &sub,
            "user",
            &["--auth-time", "1", "--now", "1800000000"],
            "[mint_failed]",
        ),
    ] {
        let run = mint(key, sub, role, extra);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{needle} in {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn minted_token_is_what_establish_session_issues() {
    let dir = TempDir::new();
    let key = SigningKey::generate(JwsAlgorithm::Es256, "es").unwrap();
    let private = dir.write("es.json", key.to_private_jwk().unwrap().expose_secret());
    let (sub, start, auth) = (alice_sub(), START.to_string(), (START - 600).to_string());
    let run = tessera(&[
        "mint",
        "--key",
        &private,
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        "--sub",
        &sub,
        "--role",
        "admin",
        "--ttl",
        "15m",
        "--now",
        &start,
        "--auth-time",
        &auth,
        "--absolute-lifetime",
        "1h",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.trim();
    assert!(run.stderr.contains("expires in 15m"), "{}", run.stderr);

    let app = spawn_app(KeyRing::new(key));
    let session = app.sessions.verify().execute(token).unwrap().into_session();
    assert_eq!(session.issued_at(), at(START));
    assert_eq!(session.authenticated_at(), at(START - 600));
    assert_eq!(session.expires_at(), at(START + 900));
    let claims = tessera_with_stdin(&["inspect", "--json", "-"], Some(token)).json();
    assert_eq!(
        claims["header"]["typ"],
        tessera::infrastructure::SESSION_TOKEN_TYPE
    );
    assert_eq!(claims["header"]["kid"], "es");
}

// ----- inspect -----------------------------------------------------------------------

#[test]
fn inspect_shows_an_unverified_token_with_utc_and_relative_times() {
    let token = forged(&valid_header(), &payload(START));
    let now = (START + 60).to_string();
    let run = tessera(&["inspect", "--now", &now, &token]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("UNVERIFIED"), "{}", run.stdout);
    for needle in [
        "\"sub\": \"0190b5a4-7c2e-7d3a-9f00-00000000a11c\"",
        "\"kid\": \"hs1\"",
        "iat        2027-01-15T08:00:00Z  issued 1m ago",
        "exp        2027-01-15T08:15:00Z  expires in 14m",
        "signature: 32 bytes",
    ] {
        assert!(run.stdout.contains(needle), "{needle:?} in {}", run.stdout);
    }

    let later = (START + 900 + 7_200).to_string();
    let out = tessera(&["inspect", "--json", "--now", &later, &token]).json();
    assert_eq!(out["verified"], false);
    assert!(out["warning"].as_str().unwrap().starts_with("UNVERIFIED"));
    assert_eq!(out["claims"]["role"], "user");
    assert_eq!(out["times"]["exp"]["utc"], "2027-01-15T08:15:00Z");
    assert_eq!(out["times"]["exp"]["relative"], "expired 2h ago");
    assert_eq!(out["lifetime_seconds"], 900);

    // A token signed by nobody we know still inspects: nothing is verified.
    let stranger = SigningKey::generate(JwsAlgorithm::EdDsa, "x").unwrap();
    let foreign = forge(
        &header(&stranger).to_string(),
        &payload(START).to_string(),
        &stranger,
    );
    assert_eq!(tessera(&["inspect", &foreign]).code, 0);
}

#[test]
fn inspect_on_malformed_input_exits_2_with_a_clear_message() {
    let header = b64(valid_header().to_string().as_bytes());
    let payload = b64(payload(START).to_string().as_bytes());
    let inputs = [
        ("", "the token is empty"),
        ("   ", "the token is empty"),
        ("not-a-token", "1 dot-separated part(s)"),
        ("a.b", "2 dot-separated part(s)"),
        ("a.b.c.d.e", "encrypted JWE"),
        ("....", "5 dot-separated parts"),
        (&format!("!!!.{payload}.sig"), "the header is not base64url"),
        (
            &format!("{}.{payload}.", b64(b"[1,2]")),
            "the header is JSON but not an object",
        ),
        (
            &format!("{}.{payload}.", b64(b"{\"alg\":")),
            "the header is not JSON",
        ),
        (
            &format!("{header}.{}.", b64(b"\xff\xfe")),
            "the payload is not JSON",
        ),
        (
            &format!("{header}.{payload}.###"),
            "the signature is not base64url",
        ),
        ("é.é.é", "the header is not base64url"),
    ];
    for (input, reason) in inputs {
        let run = tessera(&["inspect", input]);
        assert_eq!(run.code, 2, "{input:?}: {}", run.stderr);
        assert!(
            run.stderr
                .starts_with("tessera: error [malformed_token]: cannot decode: "),
            "{input:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(reason), "{reason:?} in {}", run.stderr);
        assert!(run.stdout.is_empty());

        let run = tessera_with_stdin(&["inspect", "--json", "-"], Some(input));
        assert_eq!(run.code, 2, "{input:?} from stdin");
        assert_eq!(run.json()["code"], "malformed_token");
    }
    // Large garbage on stdin: an error, not a hang or a panic.
    let run = tessera_with_stdin(&["inspect", "-"], Some(&"x.".repeat(600_000)));
    assert_eq!(run.code, 2);
}

// ----- help --------------------------------------------------------------------------

#[test]
fn every_command_explains_its_flags() {
    let expected: [(&str, &[&str]); 4] = [
        (
            "keygen",
            &[
                "--alg",
                "--kid",
                "--out-private",
                "--out-public",
                "0600",
                "--json",
            ],
        ),
        (
            "mint",
            &[
                "--key",
                "--issuer",
                "--audience",
                "--sub",
                "--role",
                "--capability",
                "--tenant",
                "--ttl",
            ],
        ),
        ("inspect", &["UNVERIFIED", "--now", "stdin"]),
        (
            "verify",
            &[
                "--keys",
                "--issuer",
                "--audience",
                "--leeway",
                "--now",
                "--max-lifetime",
                "revocation",
                "Exit",
            ],
        ),
    ];
    for (command, flags) in expected {
        let run = tessera(&[command, "--help"]);
        assert_eq!(run.code, 0, "{command}");
        for flag in flags {
            assert!(
                run.stdout.to_lowercase().contains(&flag.to_lowercase()),
                "{command} --help mentions {flag}: {}",
                run.stdout
            );
        }
    }
    let run = tessera(&["--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Exit codes: 0 success; 1"));
}
