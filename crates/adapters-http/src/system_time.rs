//! The system clock, for verifiers built without one.

use tessera_application::ports::Clock;
use time::OffsetDateTime;

/// The system clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SystemTime;

impl Clock for SystemTime {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
