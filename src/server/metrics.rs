//! Prometheus metrics of `tessera serve`, in the text exposition format.
//!
//! Hand-rolled over atomics and one small map: a handful of counters do not
//! warrant a metrics crate and its registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tessera_application::{Admission, CredentialUpdate, Verdict};
use tessera_domain::Role;

/// The counters of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Verdicts by `(outcome, reason)`.
    admissions: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    rotations: AtomicU64,
    sign_ins: AtomicU64,
    sign_outs: AtomicU64,
    revocations: AtomicU64,
    signing_key_rotations: AtomicU64,
    key_schedule_failures: AtomicU64,
}

impl Metrics {
    /// Counts one verdict: its outcome (`session`, `guest`, `refused`), the
    /// refusal's reason, and a rotation when the credential was renewed.
    pub fn admission<R: Role>(&self, admission: &Admission<R>) {
        let key = match &admission.verdict {
            Verdict::Session(_) => ("session", "ok"),
            Verdict::Guest { refused: false } => ("guest", "ok"),
            Verdict::Guest { refused: true } => ("guest", "invalid_token"),
            Verdict::Refuse(refusal) => ("refused", refusal.code().unwrap_or("redirect")),
        };
        *self
            .admissions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
        if matches!(admission.credential, CredentialUpdate::Renew { .. }) {
            self.rotations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a session established through sign-in.
    pub fn sign_in(&self) {
        self.sign_ins.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a sign-out.
    pub fn sign_out(&self) {
        self.sign_outs.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an administrative revocation (force-logout, permissions
    /// changed, one session).
    pub fn revocation(&self) {
        self.revocations.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a switch to the next signing key.
    pub fn signing_key_rotation(&self) {
        self.signing_key_rotations.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a key schedule that could not be applied (the key directory
    /// unreadable or unwritable).
    pub fn key_schedule_failure(&self) {
        self.key_schedule_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition; `sync_lag` is the revocation store's time since its
    /// last sync in seconds, when it has one (a shared store), and
    /// `provider_keys` the identity provider's key fetches, when there is
    /// one.
    #[must_use]
    pub fn render(
        &self,
        ready: bool,
        sync_lag: Option<f64>,
        provider_keys: Option<&KeyFetches>,
    ) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP tessera_admissions_total Forward-auth verdicts by outcome and reason.\n\
             # TYPE tessera_admissions_total counter\n",
        );
        let admissions = self
            .admissions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for ((outcome, reason), count) in admissions {
            let _ = writeln!(
                out,
                "tessera_admissions_total{{outcome=\"{outcome}\",reason=\"{reason}\"}} {count}"
            );
        }
        let counters = [
            (
                "tessera_rotations_total",
                "Sessions rotated by a verdict.",
                &self.rotations,
            ),
            (
                "tessera_sign_ins_total",
                "Sessions established by sign-in.",
                &self.sign_ins,
            ),
            ("tessera_sign_outs_total", "Sign-outs.", &self.sign_outs),
            (
                "tessera_revocations_total",
                "Administrative revocations recorded.",
                &self.revocations,
            ),
            (
                "tessera_signing_key_rotations_total",
                "Switches to the next signing key of the key schedule.",
                &self.signing_key_rotations,
            ),
            (
                "tessera_signing_key_schedule_failures_total",
                "Key schedules not applied: the key directory could not be read or written; the keys in use stay.",
                &self.key_schedule_failures,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tessera_revocation_state_trusted Whether the revocation state can be trusted (1) or verification fails closed (0).\n\
             # TYPE tessera_revocation_state_trusted gauge\n\
             tessera_revocation_state_trusted {}",
            u8::from(ready)
        );
        if let Some(lag) = sync_lag {
            let _ = writeln!(
                out,
                "# HELP tessera_revocation_sync_lag_seconds Time since the revocation store last synced with the shared store.\n\
                 # TYPE tessera_revocation_sync_lag_seconds gauge\n\
                 tessera_revocation_sync_lag_seconds {lag:.3}"
            );
        }
        if let Some(fetches) = provider_keys {
            let issuer = label(&fetches.issuer);
            let _ = writeln!(
                out,
                "# HELP tessera_provider_key_fetches_total Fetches of the identity provider's keys, by outcome.\n\
                 # TYPE tessera_provider_key_fetches_total counter\n\
                 tessera_provider_key_fetches_total{{issuer=\"{issuer}\",outcome=\"ok\"}} {}\n\
                 tessera_provider_key_fetches_total{{issuer=\"{issuer}\",outcome=\"error\"}} {}",
                fetches.succeeded, fetches.failed
            );
        }
        out
    }
}

/// An identity provider's key fetches so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFetches {
    /// The provider's issuer.
    pub issuer: String,
    /// Fetches of its key set that brought one.
    pub succeeded: u64,
    /// Fetches that failed.
    pub failed: u64,
}

/// `value` as a Prometheus label value: backslash, double quote and line
/// feed escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_key_fetches_are_split_by_outcome_and_the_issuer_label_escaped() {
        let fetches = KeyFetches {
            issuer: "https://idp.example/\"x\"\\\n".to_owned(),
            succeeded: 3,
            failed: 2,
        };
        let text = Metrics::default().render(true, None, Some(&fetches));
        let issuer = r#"issuer="https://idp.example/\"x\"\\\n""#;
        assert!(
            text.contains(&format!(
                "tessera_provider_key_fetches_total{{{issuer},outcome=\"ok\"}} 3\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "tessera_provider_key_fetches_total{{{issuer},outcome=\"error\"}} 2\n"
            )),
            "{text}"
        );
        assert!(
            !Metrics::default()
                .render(true, None, None)
                .contains("provider")
        );
    }
}
