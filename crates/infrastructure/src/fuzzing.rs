//! Entry points for the fuzz targets in the repository's `fuzz/` crate, for
//! code that is not public otherwise. Not part of the API: hidden from the
//! docs and free to change.

/// Reads `input` as a shared store's revocation changes are read, and writes
/// back what it understood: `false` when that round trip does not give the
/// same change (a bug for the fuzzer to report). Never panics.
///
/// - PostgreSQL (feature `postgres`): the first three lines are a log row's
///   `scope`, `subject` and `kind` columns;
/// - Redis (feature `redis`): the whole input is a stream entry's text.
#[must_use]
pub fn revocation_payload(input: &str) -> bool {
    postgres_columns(input) && redis_entry(input)
}

#[cfg(feature = "postgres")]
fn postgres_columns(input: &str) -> bool {
    use crate::postgres::log::{kind_name, parse_kind, parse_scope, scope_columns};
    let mut lines = input.split('\n');
    let (scope, subject, kind) = (
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
    );
    let scope_round_trips = parse_scope(scope, subject).is_none_or(|parsed| {
        let (name, subject) = scope_columns(&parsed);
        parse_scope(name, &subject) == Some(parsed)
    });
    let kind_round_trips =
        parse_kind(kind).is_none_or(|parsed| parse_kind(kind_name(parsed)) == Some(parsed));
    scope_round_trips && kind_round_trips
}

#[cfg(not(feature = "postgres"))]
fn postgres_columns(_: &str) -> bool {
    true
}

#[cfg(feature = "redis")]
fn redis_entry(input: &str) -> bool {
    use crate::redis::stream::Entry;
    use crate::redis::stream::{decode, encode};
    match decode(input) {
        Some(Entry::Change(change)) => decode(&encode(&change)) == Some(Entry::Change(change)),
        Some(Entry::Resync) | None => true,
    }
}

#[cfg(not(feature = "redis"))]
fn redis_entry(_: &str) -> bool {
    true
}
