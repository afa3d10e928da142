//! Times as operators read them, and the pinned clock.

use tessera::application::ports::Clock;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// A clock stopped at one instant: every check of one command sees the
/// same "now", whether given with `--now` or read once from the system.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PinnedClock(pub(crate) OffsetDateTime);

impl Clock for PinnedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// Now, read once from the library's system clock, in whole seconds as
/// token times are: the `now` a command prints, passed back as `--now`,
/// reproduces its verdict exactly.
pub(crate) fn system_now() -> OffsetDateTime {
    let now = tessera::SystemClock.now();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// UTC in RFC 3339, for example `2026-11-22T20:16:28Z`.
pub(crate) fn utc(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| format!("{} (Unix seconds)", at.unix_timestamp()))
}

/// A claim's Unix seconds as a time, if in range.
pub(crate) fn from_unix(seconds: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// A duration's size in at most two units, for example `14m 3s`, `2h`,
/// `3d 4h`, `0s`. The sign is ignored.
pub(crate) fn span(duration: Duration) -> String {
    let total = duration.whole_seconds().unsigned_abs();
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::with_capacity(2);
    let mut rest = total;
    for (size, name) in units {
        let count = rest / size;
        rest %= size;
        if count > 0 {
            parts.push(format!("{count}{name}"));
        } else if !parts.is_empty() {
            // A zero after the first unit ends the reading: `2h`, not `2h 0m 1s`.
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

/// How `at` relates to `now`, worded for each claim.
pub(crate) fn relative(claim: &str, at: OffsetDateTime, now: OffsetDateTime) -> String {
    let delta = at - now;
    let past = delta.is_negative();
    let amount = span(delta);
    match (claim, past) {
        ("exp", _) if delta.is_zero() => "expires now".to_owned(),
        ("exp", false) => format!("expires in {amount}"),
        ("exp", true) => format!("expired {amount} ago"),
        ("nbf", false) if !delta.is_zero() => format!("valid in {amount}"),
        ("nbf", _) => format!("valid since {amount} ago"),
        ("iat", false) if !delta.is_zero() => format!("issued {amount} in the future"),
        ("iat", _) => format!("issued {amount} ago"),
        ("auth_time", false) if !delta.is_zero() => {
            format!("authenticated {amount} in the future")
        }
        ("auth_time", _) => format!("authenticated {amount} ago"),
        (_, false) => format!("in {amount}"),
        (_, true) => format!("{amount} ago"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_at_most_two_units() {
        assert_eq!(span(Duration::seconds(0)), "0s");
        assert_eq!(span(Duration::seconds(42)), "42s");
        assert_eq!(span(Duration::seconds(843)), "14m 3s");
        assert_eq!(span(Duration::seconds(-7_200)), "2h");
        assert_eq!(span(Duration::seconds(7_201)), "2h");
        assert_eq!(span(Duration::seconds(7_260)), "2h 1m");
        assert_eq!(span(Duration::seconds(90_000)), "1d 1h");
        assert_eq!(span(Duration::seconds(86_400 * 30)), "30d");
    }

    #[test]
    fn times_are_worded_relative_to_now() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let at = |delta: i64| now + Duration::seconds(delta);
        assert_eq!(relative("exp", at(843), now), "expires in 14m 3s");
        assert_eq!(relative("exp", at(-7_200), now), "expired 2h ago");
        assert_eq!(relative("exp", now, now), "expires now");
        assert_eq!(relative("iat", at(-60), now), "issued 1m ago");
        assert_eq!(relative("nbf", at(60), now), "valid in 1m");
        assert_eq!(
            relative("auth_time", at(-3_600), now),
            "authenticated 1h ago"
        );
        assert_eq!(utc(now), "2027-01-15T08:00:00Z");
    }
}
