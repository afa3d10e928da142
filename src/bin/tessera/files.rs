//! Reading keys and tokens, writing key files.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::Path;

use zeroize::Zeroizing;

use crate::failure::Failure;

/// No key file or token the CLI reads is anywhere near this large.
const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Reads a file that may hold key material into memory that is wiped when
/// dropped (sized up front, so no copy is left behind by a reallocation).
pub(crate) fn read_secret(path: &Path, code: &'static str) -> Result<Zeroizing<String>, Failure> {
    let context = || format!("cannot read {}", path.display());
    let file = File::open(path).map_err(|error| Failure::caused(code, &context(), &error))?;
    let len = file
        .metadata()
        .map_err(|error| Failure::caused(code, &context(), &error))?
        .len();
    if len > MAX_INPUT_BYTES {
        return Err(Failure::new(
            code,
            format!("{}: larger than {MAX_INPUT_BYTES} bytes", context()),
        ));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(len).unwrap_or(0).saturating_add(1),
    ));
    file.take(MAX_INPUT_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|error| Failure::caused(code, &context(), &error))?;
    let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|error| {
        drop(Zeroizing::new(error.into_bytes()));
        Failure::new(code, format!("{}: not UTF-8 text", context()))
    })?;
    Ok(Zeroizing::new(text))
}

/// The token argument, or stdin for `-`, without surrounding whitespace.
pub(crate) fn read_token(argument: &str) -> Result<String, Failure> {
    if argument != "-" {
        return Ok(argument.trim().to_owned());
    }
    let mut text = String::new();
    io::stdin()
        .lock()
        .take(MAX_INPUT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|error| {
            Failure::caused(
                "unreadable_token",
                "cannot read the token from stdin",
                &error,
            )
        })?;
    if text.len() as u64 > MAX_INPUT_BYTES {
        return Err(Failure::new(
            "unreadable_token",
            format!("stdin holds more than {MAX_INPUT_BYTES} bytes; no token is that large"),
        ));
    }
    Ok(text.trim().to_owned())
}

/// Writes `parts` and a newline to a new file at `path`; with `force`, an
/// existing file is replaced. A `secret` file gets permissions 0600 (on
/// Unix), before anything is written to it.
pub(crate) fn write_file(
    path: &Path,
    parts: &[&str],
    secret: bool,
    force: bool,
) -> Result<(), Failure> {
    let context = || format!("cannot write {}", path.display());
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(|error| {
        if error.kind() == io::ErrorKind::AlreadyExists {
            Failure::new(
                "file_exists",
                format!("{}: it exists (pass --force to replace it)", context()),
            )
        } else {
            Failure::caused("io", &context(), &error)
        }
    })?;
    // A replaced file keeps its old mode unless it is set.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|error| Failure::caused("io", &context(), &error))?;
    }
    parts
        .iter()
        .try_for_each(|part| file.write_all(part.as_bytes()))
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|error| Failure::caused("io", &context(), &error))
}
