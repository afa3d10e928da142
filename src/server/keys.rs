//! The signing keys of `tessera serve`: private JWK files, a key directory
//! (a key generated into it when it has none, and with
//! `rotate_every_seconds` a [`Schedule`] of keys), or a key generated in
//! memory.
//!
//! In a scheduled directory a key's activation time is in its file name,
//! `<alg>-<YYYYMMDDhhmmss, UTC>[-<anything>].json`: the ring at a time is a
//! function of the files and the time only, so a restart, and every
//! instance sharing the directory and checking at the same time (clocks in
//! sync, within a minute), lands on the same ring. The first key and each
//! next key are created with create-new semantics under a name made of
//! their activation time; an instance that finds one already there reads
//! it. A retired key's file is deleted.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use tessera_domain::SessionLifetimes;
use tessera_infrastructure::{JwsAlgorithm, KeyRing, SigningKey};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::config::{ConfigError, KeysConfig, invalid};
use super::schedule::Schedule;

/// Where the keys of `[keys]` come from.
#[derive(Debug)]
pub enum KeySource {
    /// One key generated in memory.
    Memory(KeyRing),
    /// Private JWK files: the first signs.
    Files(Vec<PathBuf>),
    /// A key directory, on a schedule or not.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The algorithm of generated keys.
        algorithm: JwsAlgorithm,
        /// When keys rotate; `None`: the newest name signs.
        schedule: Option<Schedule>,
    },
}

impl KeySource {
    /// The source `[keys]` describes; tokens live by `lifetimes`, which
    /// says how long a retired key still verifies.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for an unknown algorithm, both `dir` and
    /// `files`, a schedule without `dir` or that cannot publish ahead.
    pub fn new(config: &KeysConfig, lifetimes: SessionLifetimes) -> Result<Self, ConfigError> {
        let algorithm = JwsAlgorithm::from_name(&config.algorithm)
            .ok_or_else(|| invalid("keys.algorithm", "unknown algorithm"))?;
        let schedule = config
            .rotate_every_seconds
            .map(|every| {
                Schedule::new(
                    Duration::seconds(every),
                    Duration::seconds(config.publish_ahead_seconds),
                    lifetimes.token().saturating_add(lifetimes.leeway()),
                )
            })
            .transpose()?;
        match (&config.dir, config.files.is_empty(), schedule) {
            (Some(_), false, _) => Err(invalid("keys", "set dir or files, not both")),
            (Some(dir), true, schedule) => Ok(Self::Dir {
                dir: dir.clone(),
                algorithm,
                schedule,
            }),
            (None, _, Some(_)) => Err(invalid("keys.rotate_every_seconds", "needs keys.dir")),
            (None, false, None) => Ok(Self::Files(config.files.clone())),
            (None, true, None) => {
                let key = SigningKey::generate(algorithm, &new_kid(algorithm, now_utc()))
                    .map_err(|error| invalid("keys.algorithm", error))?;
                Ok(Self::Memory(KeyRing::new(key)))
            }
        }
    }

    /// Whether the ring changes with time (a scheduled directory).
    #[must_use]
    pub fn is_scheduled(&self) -> bool {
        matches!(
            self,
            Self::Dir {
                schedule: Some(_),
                ..
            }
        )
    }

    /// The key ring at `now`: the signing key first, the other keys
    /// verifying only. A directory gets a key when it has none; a scheduled
    /// one gets its next key when due, and loses the files of retired keys.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a file that cannot be read, written or
    /// is not a private JWK, or, in a scheduled directory, a file whose name
    /// carries no activation time.
    pub fn ring_at(&self, now: OffsetDateTime) -> Result<KeyRing, ConfigError> {
        match self {
            Self::Memory(ring) => Ok(ring.clone()),
            Self::Files(files) => ring_of(files),
            Self::Dir {
                dir,
                algorithm,
                schedule: None,
            } => {
                // Named by the day: instances starting together on an
                // empty directory create one key, not one each.
                let today = now.replace_time(time::Time::MIDNIGHT);
                first_key(dir, *algorithm, &dated_kid(*algorithm, today))?;
                let mut files = files_in(dir)?;
                files.sort();
                files.reverse();
                ring_of(&files)
            }
            Self::Dir {
                dir,
                algorithm,
                schedule: Some(schedule),
            } => scheduled_ring(dir, *algorithm, schedule, now),
        }
    }
}

/// A key of a scheduled directory, read.
struct DatedKey {
    path: PathBuf,
    activation: OffsetDateTime,
    key: SigningKey,
}

/// The ring of a scheduled directory at `now`, after generating the next
/// key when due and deleting the retired ones.
fn scheduled_ring(
    dir: &Path,
    algorithm: JwsAlgorithm,
    schedule: &Schedule,
    now: OffsetDateTime,
) -> Result<KeyRing, ConfigError> {
    first_key(
        dir,
        algorithm,
        &dated_kid(algorithm, schedule.period_start(now)),
    )?;
    let mut keys = dated_keys(dir)?;
    let activations = |keys: &[DatedKey]| keys.iter().map(|key| key.activation).collect::<Vec<_>>();
    if let Some(activation) = schedule
        .plan(&activations(&keys), now)
        .and_then(|plan| plan.generate)
    {
        generate_into(dir, algorithm, &dated_kid(algorithm, activation))?;
        keys = dated_keys(dir)?;
    }
    let plan = schedule
        .plan(&activations(&keys), now)
        .ok_or_else(|| invalid("keys.dir", "no key file"))?;
    for path in plan
        .retired
        .iter()
        .filter_map(|&index| keys.get(index))
        .map(|key| &key.path)
    {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(path = %path.display(), "deleted a retired signing key"),
            // Another instance deleted it first.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(path = %path.display(), %error, "retired key not deleted"),
        }
    }
    let others = plan
        .published
        .iter()
        .filter(|&&index| index != plan.signing);
    let signing_first = std::iter::once(&plan.signing).chain(others);
    ring_from(
        "keys.dir",
        signing_first.map(|&index| {
            keys.get(index)
                .map(|dated| dated.key.clone())
                .ok_or_else(|| invalid("keys.dir", "no key file"))
        }),
    )
}

/// The keys of a scheduled directory, by activation time then name (so
/// that every instance orders them alike). A file another instance deleted
/// since the listing (a retired key) is skipped.
fn dated_keys(dir: &Path) -> Result<Vec<DatedKey>, ConfigError> {
    let mut files = files_in(dir)?;
    files.sort();
    let mut keys = Vec::with_capacity(files.len());
    for path in files {
        let activation = activation_of(&path).ok_or_else(|| {
            invalid(
                "keys.dir",
                format!(
                    "{}: a scheduled key's name is <alg>-<YYYYMMDDhhmmss>[-…].json",
                    path.display()
                ),
            )
        })?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(invalid("keys", format!("{}: {error}", path.display()))),
        };
        let key = parse_key(&path, &text)?;
        keys.push(DatedKey {
            path,
            activation,
            key,
        });
    }
    keys.sort_by_key(|key| key.activation);
    Ok(keys)
}

/// A key named `kid` generated into `dir` when it holds none.
fn first_key(dir: &Path, algorithm: JwsAlgorithm, kid: &str) -> Result<(), ConfigError> {
    if files_in(dir)?.is_empty() {
        generate_into(dir, algorithm, kid)?;
    }
    Ok(())
}

/// The ring of `files`: the first signs, the others verify.
fn ring_of(files: &[PathBuf]) -> Result<KeyRing, ConfigError> {
    ring_from("keys.files", files.iter().map(|path| read_key(path)))
}

/// The ring of `keys`: the first signs, the others verify; `field` names
/// the setting when there is none.
fn ring_from(
    field: &str,
    keys: impl IntoIterator<Item = Result<SigningKey, ConfigError>>,
) -> Result<KeyRing, ConfigError> {
    let mut keys = keys.into_iter();
    let signing = keys.next().ok_or_else(|| invalid(field, "no key file"))??;
    keys.try_fold(KeyRing::new(signing), |ring, key| {
        ring.with_verification_key(key?.verification_key())
            .map_err(|error| invalid("keys", error))
    })
}

/// The private JWKs (`*.json`) in `dir`, which is created when missing.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let field = "keys.dir";
    std::fs::create_dir_all(dir).map_err(|error| invalid(field, error))?;
    std::fs::read_dir(dir)
        .map_err(|error| invalid(field, error))?
        .map(|entry| entry.map(|entry| entry.path()))
        .filter(|path| {
            path.as_ref().map_or(true, |path| {
                path.extension().is_some_and(|ext| ext == "json")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(field, error))
}

/// A new key written to `dir` as `<kid>.json`, permissions 0600; when the
/// file already exists (another instance wrote it), that one. The key is
/// written to a temporary name first and linked to its own, so that no
/// instance ever reads a half-written key.
fn generate_into(dir: &Path, algorithm: JwsAlgorithm, kid: &str) -> Result<PathBuf, ConfigError> {
    let field = "keys.dir";
    let failed =
        |path: &Path, error: std::io::Error| invalid(field, format!("{}: {error}", path.display()));
    let key = SigningKey::generate(algorithm, kid).map_err(|error| invalid(field, error))?;
    let jwk = key
        .to_private_jwk()
        .map_err(|error| invalid(field, error))?;
    let path = dir.join(format!("{kid}.json"));
    let temporary = dir.join(format!(".{kid}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(jwk.expose_secret().as_bytes())?;
            file.sync_all()
        })
        .map_err(|error| failed(&temporary, error))?;
    let linked = std::fs::hard_link(&temporary, &path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => tracing::info!(path = %path.display(), kid, "generated a signing key"),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(failed(&path, error)),
    }
    Ok(path)
}

/// The private JWK in `path`.
fn read_key(path: &Path) -> Result<SigningKey, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| invalid("keys", format!("{}: {error}", path.display())))?;
    parse_key(path, &text)
}

/// The private JWK `text`, read from `path`.
fn parse_key(path: &Path, text: &str) -> Result<SigningKey, ConfigError> {
    SigningKey::from_jwk(text.trim())
        .map_err(|error| invalid("keys", format!("{}: {error}", path.display())))
}

/// The activation time in a key file's name: `<alg>-<YYYYMMDDhhmmss>…`.
fn activation_of(path: &Path) -> Option<OffsetDateTime> {
    let stem = path.file_stem()?.to_str()?;
    let (_, rest) = stem.split_once('-')?;
    let digits = rest.get(..14)?;
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u16>().ok();
    let month = u8::try_from(number(4..6)?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::from(number(0..4)?),
        time::Month::try_from(month).ok()?,
        u8::try_from(number(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(number(8..10)?).ok()?,
        u8::try_from(number(10..12)?).ok()?,
        u8::try_from(number(12..14)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, clock).assume_utc())
}

/// `alg-YYYYMMDDhhmmss`: the kid, and file name, of the key activating at
/// `at`.
fn dated_kid(algorithm: JwsAlgorithm, at: OffsetDateTime) -> String {
    format!(
        "{}-{:04}{:02}{:02}{:02}{:02}{:02}",
        algorithm.name().to_ascii_lowercase(),
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `alg-YYYYMMDDhhmmss-random`: ordered by creation, unique.
fn new_kid(algorithm: JwsAlgorithm, now: OffsetDateTime) -> String {
    let random = uuid::Uuid::now_v7().simple().to_string();
    let tail = random
        .get(random.len().saturating_sub(8)..)
        .unwrap_or_default();
    format!("{}-{tail}", dated_kid(algorithm, now))
}

/// The system's time, for a key that lives in memory only.
fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tessera-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn key_ring(config: &KeysConfig) -> Result<KeyRing, ConfigError> {
        KeySource::new(config, SessionLifetimes::default())?.ring_at(now_utc())
    }

    fn kid(ring: &KeyRing) -> String {
        ring.signing_key().unwrap().kid().to_owned()
    }

    fn kids(ring: &KeyRing) -> Vec<String> {
        ring.verification_keys()
            .iter()
            .map(|key| key.kid().unwrap().to_owned())
            .collect()
    }

    /// 2026-01-07 00:00 UTC, the start of a 30-day period.
    fn first() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_744_000).unwrap()
    }

    /// A directory rotating every 30 days, publishing a day ahead, tokens
    /// of 15 minutes with 30 seconds of leeway.
    fn scheduled(dir: &Path) -> KeySource {
        let config = KeysConfig {
            dir: Some(dir.to_owned()),
            rotate_every_seconds: Some(30 * 86_400),
            ..KeysConfig::default()
        };
        KeySource::new(&config, SessionLifetimes::default()).unwrap()
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
    fn a_scheduled_directory_publishes_the_next_key_switches_and_deletes_the_old_one() {
        let dir = temp_dir("schedule");
        let source = scheduled(&dir);
        let start = source.ring_at(first()).unwrap();
        assert_eq!(kids(&start), [kid(&start)]);
        let old = kid(&start);

        // A day and a check before the 30 days, the next key is published.
        let due = first() + Duration::days(29) - super::super::schedule::CHECK_EVERY;
        let published = source.ring_at(due).unwrap();
        assert_eq!(kid(&published), old, "the old key still signs");
        assert_eq!(
            kids(&published),
            [old.clone(), "eddsa-20260206000000".to_owned()]
        );

        // From its activation it signs; the old key verifies through its
        // last token's expiry (15 minutes and 30 seconds), then goes.
        let switch = first() + Duration::days(30);
        let switched = source.ring_at(switch).unwrap();
        assert_eq!(kid(&switched), "eddsa-20260206000000");
        assert_eq!(kids(&switched).len(), 2);
        let last = source.ring_at(switch + Duration::seconds(1050)).unwrap();
        assert!(kids(&last).contains(&old));
        let gone = source.ring_at(switch + Duration::seconds(1051)).unwrap();
        assert_eq!(kids(&gone), ["eddsa-20260206000000"]);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "old file deleted"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_restart_or_another_instance_on_the_directory_gets_the_same_ring() {
        let dir = temp_dir("restart");
        let running = scheduled(&dir);
        let steps = [0, 29, 30, 31, 59, 60].map(|days| first() + Duration::days(days));
        for at in steps {
            let ring = running.ring_at(at).unwrap();
            // A fresh load (a restart, a second instance) at the same time.
            let restarted = scheduled(&dir).ring_at(at).unwrap();
            assert_eq!(kid(&restarted), kid(&ring), "at {at}");
            assert_eq!(kids(&restarted), kids(&ring), "at {at}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn instances_starting_on_an_empty_directory_in_one_period_name_the_same_first_key() {
        let dir = temp_dir("first");
        let one = scheduled(&dir)
            .ring_at(first() + Duration::hours(5))
            .unwrap();
        let other = scheduled(&dir)
            .ring_at(first() + Duration::days(3))
            .unwrap();
        assert_eq!(kid(&one), "eddsa-20260107000000");
        assert_eq!(kids(&other), [kid(&one)]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_next_key_another_instance_wrote_is_read_not_replaced() {
        let dir = temp_dir("race");
        let source = scheduled(&dir);
        source.ring_at(first()).unwrap();
        let theirs = generate_into(&dir, JwsAlgorithm::EdDsa, "eddsa-20260206000000").unwrap();
        let written = std::fs::read_to_string(&theirs).unwrap();
        let ring = source.ring_at(first() + Duration::days(29)).unwrap();
        assert_eq!(kids(&ring).len(), 2, "no second next key");
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), written);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "no temporary left"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_scheduled_directory_refuses_an_undated_key_file() {
        let dir = temp_dir("undated");
        std::fs::create_dir_all(&dir).unwrap();
        generate_into(&dir, JwsAlgorithm::EdDsa, "signing").unwrap();
        let error = scheduled(&dir).ring_at(first()).unwrap_err().to_string();
        assert!(error.contains("signing.json"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_key_generated_into_an_empty_directory_is_named_by_its_day() {
        let dir = temp_dir("day");
        let config = KeysConfig {
            dir: Some(dir.clone()),
            ..KeysConfig::default()
        };
        let source = KeySource::new(&config, SessionLifetimes::default()).unwrap();
        let ring = source.ring_at(first() + Duration::hours(5)).unwrap();
        // Another instance starting the same day would create this very
        // file (create-new), and read the key instead.
        assert_eq!(kid(&ring), "eddsa-20260107000000");
        assert!(dir.join("eddsa-20260107000000.json").is_file());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn key_files_sign_with_the_first_and_verify_with_the_others() {
        let dir = temp_dir("files");
        std::fs::create_dir_all(&dir).unwrap();
        let previous = generate_into(&dir, JwsAlgorithm::Es256, "previous").unwrap();
        let current = generate_into(&dir, JwsAlgorithm::EdDsa, "current").unwrap();
        let config = KeysConfig {
            files: vec![current, previous],
            ..KeysConfig::default()
        };
        let ring = key_ring(&config).unwrap();
        assert_eq!(kid(&ring), "current");
        assert_eq!(kids(&ring), ["current", "previous"]);
        let missing = KeysConfig {
            files: vec![dir.join("nowhere.json")],
            ..KeysConfig::default()
        };
        let error = key_ring(&missing).unwrap_err().to_string();
        assert!(error.contains("nowhere.json"), "{error}");
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
        let undirected = KeysConfig {
            rotate_every_seconds: Some(30 * 86_400),
            ..KeysConfig::default()
        };
        assert!(
            key_ring(&undirected)
                .unwrap_err()
                .to_string()
                .contains("needs keys.dir")
        );
    }
}
