//! The time window of a token: one rule for `iat`, `nbf` and `exp` with
//! clock-skew leeway, shared by tessera's session tokens and identity
//! providers' tokens.

use time::{Duration, OffsetDateTime};

/// Which bound of a [`TimeWindow`] `now` lies outside of.
// Not `#[non_exhaustive]`: a window has these three bounds and no other,
// and the verifiers of both kinds of token match them exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeWindowError {
    /// `iat` is later than now plus the leeway.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `nbf` is later than now plus the leeway.
    #[error("token is not valid yet")]
    NotYetValid,
    /// Now is at or after `exp` plus the leeway.
    #[error("token has expired")]
    Expired,
}

/// The times a token claims: when it was issued (`iat`), when it starts to
/// be valid (`nbf`, optional) and when it expires (`exp`).
///
/// The rule ([`TimeWindow::check`]), with `L` the clock-skew leeway:
///
/// - issued in the future when `iat > now + L`;
/// - not valid yet when `nbf > now + L`: valid **from** `nbf`
///   (RFC 7519 §4.1.5, "MUST NOT be accepted for processing before");
/// - expired when `now >= exp + L`: valid **until** `exp`, exclusive
///   (RFC 7519 §4.1.4, "MUST NOT be accepted for processing on or
///   after"), so that with no leeway a token is refused at the very
///   instant its `exp` names.
///
/// So a token is accepted exactly while `nbf - L <= now < exp + L` (and
/// `iat <= now + L`). JWT times are whole seconds and `now` is not: the
/// comparison is exact, so at `exp + L` plus any fraction of a second the
/// token is expired, and a second earlier it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `nbf`, when the token has one.
    pub not_before: Option<OffsetDateTime>,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

impl TimeWindow {
    /// Checks `now` against the window, allowing `leeway` for clock skew
    /// either way, in the order `iat`, `nbf`, `exp`. Arithmetic saturates
    /// at the ends of the representable range, so no claim value can make
    /// it panic.
    ///
    /// # Errors
    ///
    /// [`TimeWindowError`] naming the first bound `now` lies outside of.
    pub fn check(&self, now: OffsetDateTime, leeway: Duration) -> Result<(), TimeWindowError> {
        let horizon = now.saturating_add(leeway);
        if self.issued_at > horizon {
            return Err(TimeWindowError::IssuedInFuture);
        }
        if self.not_before.is_some_and(|nbf| nbf > horizon) {
            return Err(TimeWindowError::NotYetValid);
        }
        if is_expired(self.expires_at, now, leeway) {
            return Err(TimeWindowError::Expired);
        }
        Ok(())
    }
}

/// Whether a token expiring at `expires_at` is expired at `now`, allowing
/// `leeway`: `now >= expires_at + leeway` (see [`TimeWindow`]).
#[must_use]
pub(crate) fn is_expired(
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
    leeway: Duration,
) -> bool {
    now >= expires_at.saturating_add(leeway)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    fn window(iat: i64, nbf: Option<i64>, exp: i64) -> TimeWindow {
        TimeWindow {
            issued_at: at(iat),
            not_before: nbf.map(at),
            expires_at: at(exp),
        }
    }

    const NS: Duration = Duration::nanoseconds(1);

    #[test]
    fn a_token_is_expired_on_exp_plus_leeway_and_not_a_nanosecond_before() {
        let w = window(T - 100, None, T);
        for leeway in [Duration::ZERO, Duration::seconds(30)] {
            let edge = at(T) + leeway;
            assert_eq!(w.check(edge, leeway), Err(TimeWindowError::Expired));
            assert_eq!(w.check(edge + NS, leeway), Err(TimeWindowError::Expired));
            assert_eq!(w.check(edge - NS, leeway), Ok(()));
        }
    }

    #[test]
    fn a_token_is_valid_from_nbf_minus_leeway_and_not_a_nanosecond_before() {
        let w = window(T - 100, Some(T), T + 100);
        for leeway in [Duration::ZERO, Duration::seconds(30)] {
            let edge = at(T) - leeway;
            assert_eq!(w.check(edge, leeway), Ok(()));
            assert_eq!(
                w.check(edge - NS, leeway),
                Err(TimeWindowError::NotYetValid)
            );
        }
    }

    #[test]
    fn a_token_issued_up_to_the_leeway_ahead_is_accepted_and_no_later() {
        let w = window(T, None, T + 100);
        for leeway in [Duration::ZERO, Duration::seconds(30)] {
            let edge = at(T) - leeway;
            assert_eq!(w.check(edge, leeway), Ok(()));
            assert_eq!(
                w.check(edge - NS, leeway),
                Err(TimeWindowError::IssuedInFuture)
            );
        }
    }

    #[test]
    fn the_bounds_are_checked_in_the_order_iat_nbf_exp() {
        let w = window(T + 10, Some(T + 10), T - 10);
        assert_eq!(
            w.check(at(T), Duration::ZERO),
            Err(TimeWindowError::IssuedInFuture)
        );
        let w = window(T - 20, Some(T + 10), T - 10);
        assert_eq!(
            w.check(at(T), Duration::ZERO),
            Err(TimeWindowError::NotYetValid)
        );
    }

    #[test]
    fn extreme_times_and_leeways_saturate_instead_of_panicking() {
        let w = TimeWindow {
            issued_at: OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT),
            not_before: None,
            expires_at: OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX),
        };
        assert_eq!(w.check(at(T), Duration::MAX), Ok(()));
        assert!(w.check(at(T), Duration::MIN).is_err());
    }
}
