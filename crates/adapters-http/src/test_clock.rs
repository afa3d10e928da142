//! A clock the unit tests set by hand (gateway freshness, webhook
//! tolerance).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tessera_application::ports::Clock;
use time::OffsetDateTime;

/// The time the tests start at.
pub(crate) const NOW: i64 = 1_700_000_000;

/// A clock reading the Unix second it holds.
#[derive(Debug)]
pub(crate) struct Pinned(pub(crate) AtomicI64);

impl Clock for Pinned {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

/// A clock at [`NOW`].
pub(crate) fn pinned() -> Arc<Pinned> {
    Arc::new(Pinned(AtomicI64::new(NOW)))
}
