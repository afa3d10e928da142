//! The signing-key schedule of a key directory, as a pure function of the
//! keys' activation times and the time: which keys are published (and
//! verify), which one signs, which are retired, and whether the next key is
//! due to be generated.
//!
//! - The signing key is the one with the latest activation time at or
//!   before now (the earliest, if every key is still to come).
//! - A key that has stopped signing (its successor is active) keeps
//!   verifying, and stays published, until the last token it signed has
//!   expired: `retire_after` after its successor's activation, inclusive,
//!   which is one token lifetime plus the leeway plus two checks (an
//!   instance switches at its first check after the activation, up to one
//!   [`CHECK_EVERY`] late, and another minute covers clocks that differ).
//!   Then it is retired.
//! - The next key is due once the signing key is older than `rotate_every -
//!   publish_ahead` (less one [`CHECK_EVERY`], so that a check running late
//!   still publishes it a whole `publish_ahead` before it signs). It
//!   activates `rotate_every` after the signing key did, or, after a long
//!   stop, at the first multiple of `rotate_every` after that which leaves
//!   `publish_ahead`: the time depends on the files and on the period of
//!   `now` only, so instances checking at once name the same key. Other
//!   instances read it at their next check, at most one [`CHECK_EVERY`]
//!   later, which is why `publish_ahead` must exceed the JWKS cache time
//!   by two checks.
//! - A directory's first key activates at the start of the current period
//!   ([`Schedule::period_start`]), so that instances starting together on
//!   an empty directory name the same file.

use time::{Duration, OffsetDateTime};

use super::config::{ConfigError, invalid};

/// How often a running server applies the schedule.
pub const CHECK_EVERY: Duration = Duration::seconds(60);

/// How long verifiers may cache `/.well-known/jwks.json` (its
/// `Cache-Control: max-age`).
pub const JWKS_MAX_AGE: Duration = Duration::seconds(300);

/// The least `publish_ahead`: the JWKS cache time, and two checks (the
/// instance that generates the next key may check one late, the others
/// read it up to one later).
pub const MIN_PUBLISH_AHEAD: Duration = Duration::seconds(300 + 2 * 60);

/// The longest `rotate_every` (ten years).
pub const MAX_ROTATE_EVERY: Duration = Duration::days(3650);

/// When keys are generated, start signing and are retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rotate_every: Duration,
    publish_ahead: Duration,
    retire_after: Duration,
}

/// What the schedule says at one time, as indexes into the activation
/// times it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The key that signs.
    pub signing: usize,
    /// The keys published and verifying, the signing key included, by
    /// activation time.
    pub published: Vec<usize>,
    /// The keys whose last token has expired.
    pub retired: Vec<usize>,
    /// The activation time of a next key to generate now, when one is due.
    pub generate: Option<OffsetDateTime>,
}

impl Schedule {
    /// A schedule: a new signing key every `rotate_every`, published
    /// `publish_ahead` before it signs, the previous one retired once
    /// `token_life` (a token's lifetime and the leeway) and two checks
    /// have passed since it stopped signing.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting when `publish_ahead` is
    /// shorter than [`MIN_PUBLISH_AHEAD`], `rotate_every` longer than
    /// [`MAX_ROTATE_EVERY`] or not more than one [`CHECK_EVERY`] longer than
    /// `publish_ahead`, or `token_life` beyond `rotate_every`'s range.
    pub fn new(
        rotate_every: Duration,
        publish_ahead: Duration,
        token_life: Duration,
    ) -> Result<Self, ConfigError> {
        if publish_ahead < MIN_PUBLISH_AHEAD {
            return Err(invalid(
                "keys.publish_ahead_seconds",
                format!(
                    "must be at least {} (how long verifiers cache the JWKS, and two checks)",
                    MIN_PUBLISH_AHEAD.whole_seconds()
                ),
            ));
        }
        if rotate_every > MAX_ROTATE_EVERY {
            return Err(invalid(
                "keys.rotate_every_seconds",
                format!("must be at most {}", MAX_ROTATE_EVERY.whole_seconds()),
            ));
        }
        let retire_after = token_life
            .max(Duration::ZERO)
            .min(MAX_ROTATE_EVERY)
            .saturating_add(CHECK_EVERY.saturating_mul(2));
        if publish_ahead > rotate_every || rotate_every <= publish_ahead + CHECK_EVERY {
            return Err(invalid(
                "keys.rotate_every_seconds",
                format!(
                    "must exceed publish_ahead_seconds ({}) by more than {}",
                    publish_ahead.whole_seconds(),
                    CHECK_EVERY.whole_seconds()
                ),
            ));
        }
        Ok(Self {
            rotate_every,
            publish_ahead,
            retire_after,
        })
    }

    /// The start of the period of `rotate_every` that `now` falls in,
    /// counted from the Unix epoch: a first key's activation time.
    #[must_use]
    pub fn period_start(&self, now: OffsetDateTime) -> OffsetDateTime {
        let period = self.rotate_every.whole_seconds().max(1);
        let start = now
            .unix_timestamp()
            .div_euclid(period)
            .saturating_mul(period);
        OffsetDateTime::from_unix_timestamp(start).unwrap_or(now)
    }

    /// The plan at `now` for keys activated at `active_from`; `None` when
    /// there is no key.
    #[must_use]
    pub fn plan(&self, active_from: &[OffsetDateTime], now: OffsetDateTime) -> Option<Plan> {
        let mut order: Vec<usize> = (0..active_from.len()).collect();
        order.sort_by_key(|&index| active_from.get(index).copied());
        let at = |position: usize| {
            order
                .get(position)
                .and_then(|&index| active_from.get(index).copied())
        };
        let signing_position = order
            .iter()
            .rposition(|&index| active_from.get(index).is_some_and(|&from| from <= now))
            .unwrap_or(0);
        let signing = *order.get(signing_position)?;
        let signing_from = at(signing_position)?;
        let (mut published, mut retired) = (Vec::new(), Vec::new());
        for (position, &index) in order.iter().enumerate() {
            let retires = at(position + 1)
                .filter(|_| position < signing_position)
                .and_then(|stopped| stopped.checked_add(self.retire_after));
            match retires {
                Some(retires) if now > retires => retired.push(index),
                _ => published.push(index),
            }
        }
        let has_next = signing_position + 1 < order.len();
        let generate = signing_from
            .checked_add(self.rotate_every)
            .zip(now.checked_add(self.publish_ahead))
            .filter(|&(due, ahead)| {
                !has_next
                    && ahead
                        .checked_add(CHECK_EVERY)
                        .is_some_and(|late| late >= due)
            })
            .and_then(|(due, ahead)| self.activation_after(due, ahead));
        Some(Plan {
            signing,
            published,
            retired,
            generate,
        })
    }

    /// `due`, or the first multiple of `rotate_every` after it that is not
    /// before `earliest`; `None` off the calendar.
    fn activation_after(
        &self,
        due: OffsetDateTime,
        earliest: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        if earliest <= due {
            return Some(due);
        }
        let late = (earliest - due).whole_seconds();
        let period = self.rotate_every.whole_seconds().max(1);
        let periods = late.div_euclid(period) + i64::from(late.rem_euclid(period) != 0);
        due.checked_add(Duration::seconds(periods.saturating_mul(period)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::days(1);
    /// 15 minutes of token lifetime and 30 seconds of leeway.
    const TOKEN_LIFE: Duration = Duration::seconds(930);
    /// The token life and two checks.
    const RETIRE_AFTER: Duration = Duration::seconds(930 + 120);

    fn schedule() -> Schedule {
        Schedule::new(Duration::days(30), DAY, TOKEN_LIFE).unwrap()
    }

    /// 2026-01-01 00:00 UTC.
    fn first() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
    }

    #[test]
    fn a_young_key_signs_alone_and_nothing_is_generated() {
        let plan = schedule().plan(&[first()], first() + DAY).unwrap();
        assert_eq!(
            plan,
            Plan {
                signing: 0,
                published: vec![0],
                retired: vec![],
                generate: None
            }
        );
        assert_eq!(schedule().plan(&[], first()), None);
    }

    #[test]
    fn the_next_key_is_due_publish_ahead_and_one_check_before_it_activates() {
        let due = first() + Duration::days(30);
        let just_before = due - DAY - CHECK_EVERY - Duration::SECOND;
        assert_eq!(
            schedule().plan(&[first()], just_before).unwrap().generate,
            None
        );
        let plan = schedule()
            .plan(&[first()], due - DAY - CHECK_EVERY)
            .unwrap();
        assert_eq!(plan.generate, Some(due));
        // A check running late still names the same key.
        let late = schedule().plan(&[first()], due - DAY).unwrap();
        assert_eq!(late.generate, Some(due));
    }

    #[test]
    fn the_next_key_is_published_before_it_signs_then_signs_at_its_activation() {
        let next = first() + Duration::days(30);
        let before = schedule().plan(&[next, first()], next - DAY).unwrap();
        assert_eq!(before.signing, 1, "the old key still signs");
        assert_eq!(before.published, vec![1, 0], "the next key is published");
        assert_eq!(before.generate, None, "the next key exists");
        let last_second = schedule().plan(&[next, first()], next - Duration::SECOND);
        assert_eq!(last_second.unwrap().signing, 1);
        let at = schedule().plan(&[next, first()], next).unwrap();
        assert_eq!(at.signing, 0);
        assert_eq!(at.published, vec![1, 0]);
    }

    #[test]
    fn the_old_key_verifies_exactly_until_its_last_token_has_expired() {
        let next = first() + Duration::days(30);
        let kept = schedule()
            .plan(&[first(), next], next + RETIRE_AFTER)
            .unwrap();
        assert_eq!(kept.published, vec![0, 1]);
        assert!(kept.retired.is_empty());
        let dropped = schedule()
            .plan(&[first(), next], next + RETIRE_AFTER + Duration::SECOND)
            .unwrap();
        assert_eq!(dropped.published, vec![1]);
        assert_eq!(dropped.retired, vec![0]);
        assert_eq!(dropped.signing, 1);
    }

    #[test]
    fn after_a_long_stop_the_next_key_is_still_published_ahead_on_the_same_rhythm() {
        let now = first() + Duration::days(95);
        let plan = schedule().plan(&[first()], now).unwrap();
        assert_eq!(plan.signing, 0, "no key signs before it is published");
        let activation = plan.generate.unwrap();
        assert_eq!(activation, first() + Duration::days(120));
        assert!(activation >= now + DAY);
        // Any instance checking in the same period names the same key.
        let later = schedule()
            .plan(&[first()], now + Duration::days(3))
            .unwrap();
        assert_eq!(later.generate, Some(activation));
    }

    #[test]
    fn keys_all_in_the_future_sign_with_the_earliest() {
        let plan = schedule()
            .plan(&[first() + DAY, first() + Duration::hours(1)], first())
            .unwrap();
        assert_eq!(plan.signing, 1);
        assert_eq!(plan.published, vec![1, 0]);
    }

    #[test]
    fn a_schedule_that_cannot_publish_ahead_is_refused() {
        let short = Schedule::new(Duration::days(30), Duration::seconds(419), TOKEN_LIFE);
        assert!(
            short
                .unwrap_err()
                .to_string()
                .contains("keys.publish_ahead_seconds")
        );
        let overlapping = Schedule::new(DAY, DAY, TOKEN_LIFE);
        assert!(
            overlapping
                .unwrap_err()
                .to_string()
                .contains("keys.rotate_every_seconds")
        );
    }

    #[test]
    fn extreme_settings_are_refused_or_bounded_never_a_panic() {
        let huge = Duration::seconds(i64::MAX);
        let error = Schedule::new(huge, DAY, TOKEN_LIFE)
            .unwrap_err()
            .to_string();
        assert!(error.contains("keys.rotate_every_seconds"), "{error}");
        let error = Schedule::new(Duration::days(30), huge, TOKEN_LIFE)
            .unwrap_err()
            .to_string();
        assert!(error.contains("keys.rotate_every_seconds"), "{error}");
        let long_lived = Schedule::new(Duration::days(30), DAY, huge).unwrap();
        let late = OffsetDateTime::from_unix_timestamp(253_402_300_000).unwrap();
        let plan = long_lived.plan(&[first(), late], late).unwrap();
        assert_eq!((plan.signing, plan.generate), (1, None), "off the calendar");
        assert!(plan.retired.is_empty());
    }

    #[test]
    fn a_first_key_activates_at_the_start_of_the_current_period() {
        let every = Schedule::new(Duration::days(30), DAY, TOKEN_LIFE).unwrap();
        let start = every.period_start(first());
        assert!(start <= first() && first() - start < Duration::days(30));
        assert_eq!(every.period_start(start + Duration::days(29)), start);
        assert_eq!(start.unix_timestamp() % (30 * 86_400), 0);
        assert_eq!(
            every.period_start(start + Duration::days(30)),
            start + Duration::days(30)
        );
    }
}
