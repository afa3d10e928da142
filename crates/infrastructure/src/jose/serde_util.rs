//! Serde helpers shared by the header and JWK parsers.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Deserializes `T` from a JSON object only.
///
/// A derived `Deserialize` for a struct also accepts a JSON array (fields by
/// position); JOSE headers and JWKs are objects, so arrays are refused here.
/// Derived structs still reject a repeated member they know.
pub(crate) struct ObjectOnly<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(ObjectOnly)
    }
}

/// A string that borrows from the input when it has no escapes: serde's
/// `#[serde(borrow)]` only borrows a bare `Cow` field, not one inside an
/// `Option` or a `Vec`, so those deserialize through this.
#[derive(Deserialize)]
pub(crate) struct Borrowed<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// `Option<Cow<str>>`, borrowing as [`Borrowed`] does.
pub(crate) fn borrowed_opt_str<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    Option::<Borrowed<'de>>::deserialize(deserializer).map(|value| value.map(|b| b.0))
}

/// `true` when the member is present, whatever its value.
pub(crate) fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}
