//! The signing keys of `tessera serve`: private JWK files, a key directory
//! (a key generated into it when it has none), or a key generated in
//! memory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use tessera_infrastructure::{JwsAlgorithm, KeyRing, SigningKey};

use super::config::{ConfigError, KeysConfig, invalid};

/// The key ring `[keys]` describes: the signing key first, the other keys
/// verifying only.
///
/// # Errors
///
/// [`ConfigError::Invalid`] for an unknown algorithm, both `dir` and
/// `files`, or a file that cannot be read, written or is not a private JWK.
pub fn key_ring(config: &KeysConfig) -> Result<KeyRing, ConfigError> {
    let algorithm = JwsAlgorithm::from_name(&config.algorithm)
        .ok_or_else(|| invalid("keys.algorithm", "unknown algorithm"))?;
    let files = match (&config.dir, config.files.is_empty()) {
        (Some(_), false) => return Err(invalid("keys", "set dir or files, not both")),
        (Some(dir), true) => files_in(dir, algorithm)?,
        (None, false) => config.files.clone(),
        (None, true) => {
            let key = SigningKey::generate(algorithm, &new_kid(algorithm))
                .map_err(|error| invalid("keys.algorithm", error))?;
            return Ok(KeyRing::new(key));
        }
    };
    let mut keys = files.iter().map(|path| read_key(path));
    let signing = keys
        .next()
        .ok_or_else(|| invalid("keys.files", "no key file"))??;
    keys.try_fold(KeyRing::new(signing), |ring, key| {
        ring.with_verification_key(key?.verification_key())
            .map_err(|error| invalid("keys", error))
    })
}

/// The private JWKs in `dir`, the newest name (kids are dated) first; one
/// generated into it when it has none.
fn files_in(dir: &Path, algorithm: JwsAlgorithm) -> Result<Vec<PathBuf>, ConfigError> {
    let field = "keys.dir";
    std::fs::create_dir_all(dir).map_err(|error| invalid(field, error))?;
    let mut files = std::fs::read_dir(dir)
        .map_err(|error| invalid(field, error))?
        .map(|entry| entry.map(|entry| entry.path()))
        .filter(|path| {
            path.as_ref().map_or(true, |path| {
                path.extension().is_some_and(|ext| ext == "json")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(field, error))?;
    if files.is_empty() {
        files.push(generate_into(dir, algorithm)?);
    }
    files.sort();
    files.reverse();
    Ok(files)
}

/// A new key written to `dir` as `<kid>.json`, permissions 0600.
fn generate_into(dir: &Path, algorithm: JwsAlgorithm) -> Result<PathBuf, ConfigError> {
    let field = "keys.dir";
    let kid = new_kid(algorithm);
    let key = SigningKey::generate(algorithm, &kid).map_err(|error| invalid(field, error))?;
    let jwk = key
        .to_private_jwk()
        .map_err(|error| invalid(field, error))?;
    let path = dir.join(format!("{kid}.json"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(&path)
        .and_then(|mut file| {
            file.write_all(jwk.expose_secret().as_bytes())?;
            file.sync_all()
        })
        .map_err(|error| invalid(field, format!("{}: {error}", path.display())))?;
    tracing::info!(path = %path.display(), kid, "generated a signing key");
    Ok(path)
}

/// The private JWK in `path`.
fn read_key(path: &Path) -> Result<SigningKey, ConfigError> {
    let field = "keys";
    let text = std::fs::read_to_string(path)
        .map_err(|error| invalid(field, format!("{}: {error}", path.display())))?;
    SigningKey::from_jwk(text.trim())
        .map_err(|error| invalid(field, format!("{}: {error}", path.display())))
}

/// `alg-YYYYMMDDhhmmss-random`: ordered by creation, unique.
fn new_kid(algorithm: JwsAlgorithm) -> String {
    let now = time::OffsetDateTime::now_utc();
    let random = uuid::Uuid::now_v7().simple().to_string();
    let tail = random
        .get(random.len().saturating_sub(8)..)
        .unwrap_or_default();
    format!(
        "{}-{:04}{:02}{:02}{:02}{:02}{:02}-{tail}",
        algorithm.name().to_ascii_lowercase(),
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tessera-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_empty_key_directory_gets_a_generated_key_that_is_reused() {
        let dir = temp_dir("reuse");
        let config = KeysConfig {
            dir: Some(dir.clone()),
            ..KeysConfig::default()
        };
        let first = key_ring(&config).unwrap();
        let second = key_ring(&config).unwrap();
        let kid = |ring: &KeyRing| ring.signing_key().unwrap().kid().to_owned();
        assert_eq!(kid(&first), kid(&second));
        assert!(kid(&first).starts_with("eddsa-"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
            assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_algorithms_and_dir_with_files_are_refused() {
        let unknown = KeysConfig {
            algorithm: "none".to_owned(),
            ..KeysConfig::default()
        };
        assert!(
            key_ring(&unknown)
                .unwrap_err()
                .to_string()
                .contains("keys.algorithm")
        );
        let both = KeysConfig {
            dir: Some(temp_dir("both")),
            files: vec![PathBuf::from("a.json")],
            ..KeysConfig::default()
        };
        assert!(
            key_ring(&both)
                .unwrap_err()
                .to_string()
                .contains("not both")
        );
    }
}
