//! Deliveries: a verified message, reserved in the replay cache until it
//! is applied.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::replay::ReplayCache;

#[derive(Debug)]
pub(super) struct Deliveries {
    /// Ids applied or being applied, by their latest timestamp.
    pub(super) seen: ReplayCache<Box<str>>,
    /// Ids being applied.
    pub(super) in_flight: HashSet<Box<str>>,
}

/// A verified delivery.
#[derive(Debug)]
#[must_use = "a new delivery is forgotten unless completed"]
pub enum Delivery {
    /// Seen for the first time: apply it, then
    /// [`complete`](NewDelivery::complete) it.
    New(NewDelivery),
    /// The provider's redelivery (same id, new timestamp) of a message
    /// already applied: acknowledge it without applying it again.
    AlreadyApplied {
        /// The message id.
        id: Box<str>,
    },
}

/// A first delivery of a message, reserved in the replay cache.
///
/// [`complete`](Self::complete) it once applied; dropping it without doing
/// so forgets the id, so that the provider's retry is accepted.
#[derive(Debug)]
#[must_use = "a new delivery is forgotten unless completed"]
pub struct NewDelivery {
    pub(super) id: Box<str>,
    pub(super) timestamp: i64,
    pub(super) deliveries: Option<Arc<Mutex<Deliveries>>>,
}

impl NewDelivery {
    /// The message id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The delivery's timestamp, in Unix seconds.
    #[must_use]
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Records the message as applied: later deliveries of its id are not
    /// applied again while it is within the tolerance.
    pub fn complete(mut self) {
        if let Some(deliveries) = self.deliveries.take() {
            deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .in_flight
                .remove(&self.id);
        }
    }
}

impl Drop for NewDelivery {
    fn drop(&mut self) {
        if let Some(deliveries) = self.deliveries.take() {
            let mut deliveries = deliveries.lock().unwrap_or_else(PoisonError::into_inner);
            deliveries.in_flight.remove(&self.id);
            deliveries.seen.forget(&self.id);
        }
    }
}
