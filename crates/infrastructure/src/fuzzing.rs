//! Entry points for the fuzz targets in the repository's `fuzz/` crate, for
//! code that is not public otherwise. Not part of the API: hidden from the
//! docs and free to change.

/// Reads a PostgreSQL revocation-change notification `payload` as the
/// listener does, and, when it is a change this version understands,
/// writes it again and reads that back. `false` when the round trip does
/// not give the same change: a bug for the fuzzer to report. Never panics.
#[cfg(feature = "postgres")]
#[must_use]
pub fn revocation_payload(payload: &str) -> bool {
    use crate::postgres::payload::{Message, decode, encode};
    match decode(payload) {
        Message::Change { origin, op, change } => {
            decode(&encode(origin, op, &change)) == (Message::Change { origin, op, change })
        }
        Message::Ping | Message::Resync => true,
    }
}
