//! `tessera keygen`: a new key as a private JWK and the verifiers' JWK set.

use std::path::Path;

use serde_json::Value;
use tessera::{JwsAlgorithm, KeyRing, SigningKey};
use zeroize::Zeroizing;

use crate::args::KeygenArgs;
use crate::failure::Failure;
use crate::files;
use crate::output::Output;
use crate::times;

pub(crate) fn run(args: &KeygenArgs, output: &Output) -> Result<(), Failure> {
    if let (Some(private), Some(public)) = (&args.out_private, &args.out_public)
        && private == public
    {
        return Err(Failure::usage(
            "--out-private and --out-public must be different files",
        ));
    }
    let alg = JwsAlgorithm::from(args.alg);
    let kid = args.kid.clone().unwrap_or_else(|| default_kid(alg));
    let key = SigningKey::generate(alg, &kid)
        .map_err(|error| Failure::caused("key_generation", "cannot generate the key", &error))?;
    let private = key
        .to_private_jwk()
        .map_err(|error| Failure::caused("key_generation", "cannot export the key", &error))?;
    // HS256 verifiers hold the secret itself; the others the public key.
    let jwks = if alg.is_symmetric() {
        secret_jwk_set(private.expose_secret())
    } else {
        Zeroizing::new(
            KeyRing::new(key.clone())
                .to_public_jwk_set()
                .map_err(|error| {
                    Failure::caused("key_generation", "cannot export the key", &error)
                })?,
        )
    };

    let what = format!("{} key {kid:?}", alg.name());
    if let Some(path) = &args.out_private {
        files::write_file(path, &[private.expose_secret()], true, args.force)?;
        output.note(&format!(
            "private JWK of {what}: {} (0600; keep it secret)",
            path.display()
        ));
    }
    if let Some(path) = &args.out_public {
        files::write_file(path, &[&jwks], alg.is_symmetric(), args.force)?;
        let mode = if alg.is_symmetric() {
            "0600: HS256 verifiers share the secret, keep it secret"
        } else {
            "publish it to verifiers"
        };
        output.note(&format!("JWK set of {what}: {} ({mode})", path.display()));
    }

    if output.is_json() {
        let head = format!(
            r#"{{"ok":true,"alg":{},"kid":{},"#,
            Value::from(alg.name()),
            Value::from(kid.as_str())
        );
        let private_file = args
            .out_private
            .as_deref()
            .map(|path| file_member("private_jwk_file", path));
        let jwks_file = args
            .out_public
            .as_deref()
            .map(|path| file_member("jwks_file", path));
        // Written in pieces, so that the secret is not copied again.
        let mut parts = vec![head.as_str()];
        match &private_file {
            Some(member) => parts.push(member),
            None => parts.extend([r#""private_jwk":"#, private.expose_secret()]),
        }
        parts.push(",");
        match &jwks_file {
            Some(member) => parts.push(member),
            None => parts.extend([r#""jwks":"#, jwks.as_str()]),
        }
        parts.push("}");
        return output.stdout(&parts);
    }
    if args.out_private.is_none() {
        output.note(&format!(
            "private JWK of {what} (keep it secret; `tessera mint --key` reads it):"
        ));
        output.stdout(&[private.expose_secret()])?;
    }
    if args.out_public.is_none() {
        let note = if alg.is_symmetric() {
            "(it holds the shared secret; `tessera verify --keys` reads it)"
        } else {
            "(publish it to verifiers; `tessera verify --keys` reads it)"
        };
        output.note(&format!("JWK set of {what} {note}:"));
        output.stdout(&[&jwks])?;
    }
    Ok(())
}

/// `{"keys":[JWK]}` for a secret JWK, in memory wiped when dropped.
pub(crate) fn secret_jwk_set(jwk: &str) -> Zeroizing<String> {
    let mut set = Zeroizing::new(String::with_capacity(jwk.len() + 12));
    set.push_str(r#"{"keys":["#);
    set.push_str(jwk);
    set.push_str("]}");
    set
}

fn file_member(name: &str, path: &Path) -> String {
    format!(r#""{name}":{}"#, Value::from(path.display().to_string()))
}

/// `alg-date-random`, for example `eddsa-2026-11-22-3f9c0a1b`: readable,
/// ordered by date, and unique enough that two keys never share a `kid`.
fn default_kid(alg: JwsAlgorithm) -> String {
    let random = uuid::Uuid::now_v7().simple().to_string();
    let tail = random
        .get(random.len().saturating_sub(8)..)
        .unwrap_or_default();
    format!(
        "{}-{}-{tail}",
        alg.name().to_ascii_lowercase(),
        times::system_now().date()
    )
}
