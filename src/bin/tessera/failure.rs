//! What went wrong, with the exit code and stable code it is reported with.

use std::error::Error;
use std::fmt::Write as _;

/// Exit code: `verify` rejected the token.
pub(crate) const REJECTED: u8 = 1;
/// Exit code: bad usage, unreadable input or keys, or any other failure.
pub(crate) const USAGE: u8 = 2;

/// A failed command.
#[derive(Debug)]
pub(crate) struct Failure {
    /// [`REJECTED`] or [`USAGE`].
    pub(crate) exit: u8,
    /// A stable machine-readable code: `VerifyError::code` for rejections,
    /// the CLI's own (`usage`, `unreadable_keys`, ...) otherwise.
    pub(crate) code: &'static str,
    /// What failed, in words.
    pub(crate) message: String,
    /// For rejections: the rule the token breaks.
    pub(crate) rule: Option<String>,
    /// For rejections: the values that break it, as far as they are known.
    pub(crate) seen: Vec<String>,
}

impl Failure {
    /// A failure reported with exit code 2.
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            exit: USAGE,
            code,
            message: message.into(),
            rule: None,
            seen: Vec::new(),
        }
    }

    /// Bad usage (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", message)
    }

    /// A failure caused by `error`: `context: error: its sources...`.
    pub(crate) fn caused(code: &'static str, context: &str, error: &dyn Error) -> Self {
        Self::new(code, format!("{context}: {}", chain(error)))
    }

    /// A token `verify` refused (exit code 1).
    pub(crate) fn rejected(
        code: &'static str,
        message: String,
        rule: String,
        seen: Vec<String>,
    ) -> Self {
        Self {
            exit: REJECTED,
            code,
            message,
            rule: Some(rule),
            seen,
        }
    }
}

/// An error and its sources, joined by `: `, skipping a source whose text
/// the error's own message already ends with (transparent wrappers).
pub(crate) fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}
