//! Revocation change notifications as the PostgreSQL store's listener reads
//! them (through `tessera_infrastructure::fuzzing`, the payload decoder
//! being internal): any payload is a change, a ping or a resync, never a
//! panic, and a change reads back the same once written again.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = std::str::from_utf8(data) {
        assert!(tessera_infrastructure::fuzzing::revocation_payload(payload));
    }
});
