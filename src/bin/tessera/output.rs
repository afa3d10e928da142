//! Where results and failures go: stdout for results (one JSON document
//! with `--json`), stderr for notes and, without `--json`, failures.

use std::io::{self, Write as _};
use std::process::ExitCode;

use serde_json::{Map, Value, json};
use tessera::UserRole;
use tessera::domain::{Role as _, SessionEntity};

use crate::failure::{Failure, REJECTED};
use crate::times;

/// The output mode of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether `--json` was given.
    pub(crate) fn is_json(self) -> bool {
        self.json
    }

    /// Writes `parts` to stdout, then a newline. Parts are written one by
    /// one, so that a secret is never copied into a larger string.
    pub(crate) fn stdout(self, parts: &[&str]) -> Result<(), Failure> {
        let mut out = io::stdout().lock();
        parts
            .iter()
            .try_for_each(|part| out.write_all(part.as_bytes()))
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(|error| Failure::caused("io", "cannot write to stdout", &error))
    }

    /// A JSON document on stdout: one line with `--json`, indented without.
    pub(crate) fn document(self, value: &Value) -> Result<(), Failure> {
        let text = if self.json {
            value.to_string()
        } else {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        };
        self.stdout(&[&text])
    }

    /// A note for a person on stderr; nothing with `--json`.
    pub(crate) fn note(self, text: &str) {
        if !self.json {
            // Nowhere left to report a failing stderr.
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
    }

    /// Reports `failure` and returns its exit code.
    pub(crate) fn failure(self, failure: &Failure) -> ExitCode {
        if self.json {
            let mut document = Map::new();
            document.insert("ok".to_owned(), json!(false));
            document.insert("exit".to_owned(), json!(failure.exit));
            document.insert("code".to_owned(), json!(failure.code));
            document.insert("message".to_owned(), json!(failure.message));
            if failure.exit == REJECTED {
                document.insert("valid".to_owned(), json!(false));
                document.insert("rule".to_owned(), json!(failure.rule));
                document.insert("seen".to_owned(), json!(failure.seen));
            }
            // The exit code still tells a script what happened.
            let _ = self.document(&Value::Object(document));
        } else {
            let mut text = if failure.exit == REJECTED {
                format!("REJECTED [{}]: {}", failure.code, failure.message)
            } else {
                format!("tessera: error [{}]: {}", failure.code, failure.message)
            };
            if let Some(rule) = &failure.rule {
                text.push_str("\n  rule: ");
                text.push_str(rule);
            }
            for seen in &failure.seen {
                text.push_str("\n  seen: ");
                text.push_str(seen);
            }
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
        ExitCode::from(failure.exit)
    }
}

/// A session as JSON: ids, role, capabilities, tenant, and each time both
/// as UTC (`issued_at`, ...) and as the claim's Unix seconds (`iat`, ...).
pub(crate) fn session_json(session: &SessionEntity<UserRole>) -> Value {
    json!({
        "user_id": session.user_id().to_string(),
        "session_id": session.session_id().to_string(),
        "role": session.role().name(),
        "capabilities": session
            .capabilities()
            .iter()
            .map(|capability| capability.as_str())
            .collect::<Vec<_>>(),
        "tenant": session.tenant().map(|tenant| tenant.as_str()),
        "issued_at": times::utc(session.issued_at()),
        "expires_at": times::utc(session.expires_at()),
        "authenticated_at": times::utc(session.authenticated_at()),
        "iat": session.issued_at().unix_timestamp(),
        "exp": session.expires_at().unix_timestamp(),
        "auth_time": session.authenticated_at().unix_timestamp(),
    })
}
