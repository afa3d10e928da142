//! Step-up requirements (RFC 9470): how recently, and how strongly, the
//! user of a session must have authenticated for a route.

use time::{Duration, OffsetDateTime};

use crate::ids::Acr;
use crate::role::Role;
use crate::session::SessionEntity;

/// What a route asks of the user's authentication event, on top of its
/// [`Requirement`](super::Requirement): authenticated at most
/// [`max_age`](Self::max_age) ago (against the session's `auth_time`),
/// and at one of the [`acr_values`](Self::acr_values) (the session's
/// `acr`). Set with [`RouteRule::max_age`](super::RouteRule::max_age) and
/// [`RouteRule::acr`](super::RouteRule::acr); the default asks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepUp {
    max_age: Option<Duration>,
    acr_values: Box<[Acr]>,
}

impl StepUp {
    pub(super) fn new(max_age: Option<Duration>, acr_values: Vec<Acr>) -> Self {
        Self {
            max_age,
            acr_values: acr_values.into_boxed_slice(),
        }
    }

    /// The longest time since the user authenticated, if the route sets one.
    #[must_use]
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The accepted authentication levels, in order of preference; empty
    /// when any (or none) will do.
    #[must_use]
    pub fn acr_values(&self) -> &[Acr] {
        &self.acr_values
    }

    /// Whether the route asks anything of the authentication.
    #[must_use]
    pub fn is_required(&self) -> bool {
        self.max_age.is_some() || !self.acr_values.is_empty()
    }

    /// What `session` lacks at `now`, if anything: an authentication level
    /// not among the accepted ones (a session without `acr` has none), or
    /// an authentication longer ago than `max_age` (a session authenticated
    /// exactly `max_age` ago still passes). No leeway: this is a bound the
    /// application chose, not a clock comparison between two parties.
    #[must_use]
    pub fn challenge<R: Role>(
        &self,
        session: &SessionEntity<R>,
        now: OffsetDateTime,
    ) -> Option<StepUpChallenge> {
        let level = !self.acr_values.is_empty()
            && !session
                .authentication()
                .acr()
                .is_some_and(|acr| self.acr_values.contains(acr));
        let recency = self
            .max_age
            .is_some_and(|max_age| session.session_age(now) > max_age);
        (level || recency).then(|| StepUpChallenge {
            reason: if level {
                StepUpReason::Level
            } else {
                StepUpReason::Recency
            },
            asked: self.clone(),
        })
    }

    /// [`max_age`](Self::max_age) in whole seconds, as RFC 9470 and
    /// OpenID Connect write it.
    #[must_use]
    pub fn max_age_seconds(&self) -> Option<i64> {
        self.max_age.map(Duration::whole_seconds)
    }

    /// [`acr_values`](Self::acr_values) as one space-separated string, as
    /// RFC 9470 and OpenID Connect write it; `None` when the route asks
    /// for no level.
    #[must_use]
    pub fn acr_values_text(&self) -> Option<String> {
        (!self.acr_values.is_empty()).then(|| {
            self.acr_values
                .iter()
                .map(Acr::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
    }
}

/// Why a session's authentication falls short of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepUpReason {
    /// The authentication level (`acr`) is not one the route accepts
    /// (whatever its age).
    Level,
    /// The level is fine (or not asked), but the authentication is older
    /// than the route's `max_age`.
    Recency,
}

/// What a new authentication must meet for the route (RFC 9470 §3): the
/// route's [`StepUp`], all of it, whichever part the session missed, so
/// that one new authentication satisfies the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpChallenge {
    reason: StepUpReason,
    asked: StepUp,
}

impl StepUpChallenge {
    /// What the session missed.
    #[must_use]
    pub fn reason(&self) -> StepUpReason {
        self.reason
    }

    /// What the route asks: its `max_age` and `acr_values`.
    #[must_use]
    pub fn asked(&self) -> &StepUp {
        &self.asked
    }

    /// A human-readable description for the challenge's
    /// `error_description`.
    #[must_use]
    pub fn description(&self) -> &'static str {
        match self.reason {
            StepUpReason::Level => "A different authentication level is required",
            StepUpReason::Recency => "More recent authentication is required",
        }
    }
}
