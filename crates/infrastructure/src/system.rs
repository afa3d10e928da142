//! The system clock and the UUID v7 session id generator.

use tessera_application::ports::{Clock, IdGenerator};
use tessera_domain::SessionId;
use time::OffsetDateTime;
use uuid::Uuid;

/// The operating system's wall clock, in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Session ids as UUID v7: time-ordered (friendly to database indexes) with
/// 74 random bits from the operating system's generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7SessionIds;

impl IdGenerator for UuidV7SessionIds {
    fn session_id(&self) -> SessionId {
        loop {
            // A v7 UUID carries the time and version bits, so it is never nil;
            // the loop only satisfies the type.
            if let Ok(id) = SessionId::from_uuid(Uuid::now_v7()) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_distinct_v7_uuids() {
        let ids = UuidV7SessionIds;
        let a = ids.session_id();
        let b = ids.session_id();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn system_clock_is_utc_now() {
        let before = OffsetDateTime::now_utc();
        let now = SystemClock.now();
        assert!(now >= before && now.offset().is_utc());
    }
}
