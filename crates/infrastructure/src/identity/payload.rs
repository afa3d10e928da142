//! One pass over a provider token's JSON payload that picks out the
//! standard claims and the configured paths, and skips everything else
//! without building a JSON tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::claim_path::{ClaimPath, MappingConfigError};

/// A value found at a wanted path; strings borrow from the payload unless
/// they hold escapes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Leaf<'a> {
    Str(Cow<'a, str>),
    Strings(Vec<Cow<'a, str>>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// An object, or an array that is not all strings.
    Other,
}

impl Leaf<'_> {
    /// The string, owned, when this is one.
    pub(crate) fn to_owned_string(&self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s.as_ref().to_owned()),
            _ => None,
        }
    }
}

struct Node {
    children: Vec<(Box<str>, usize)>,
    slot: Option<usize>,
}

/// The most distinct paths a trie holds: the standard claims (11, `acr`,
/// `amr` and `client_id` included) and, for each token profile, its
/// mapping's role, email and name, its machine claims and its required
/// claims (profiles share the paths they have in common); or a provider
/// user's profile and disabled flag.
pub(crate) const MAX_PATHS: usize = 32;

/// The values found, by slot; on the stack.
pub(crate) type Found<'p> = [Option<Leaf<'p>>; MAX_PATHS];

/// The wanted paths as a trie; slot `i` of the output is the value at the
/// `i`-th path added.
pub(crate) struct PathTrie {
    nodes: Vec<Node>,
    slots: usize,
}

impl fmt::Debug for PathTrie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathTrie")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl PathTrie {
    pub(crate) fn new() -> Self {
        Self {
            nodes: vec![Node {
                children: Vec::new(),
                slot: None,
            }],
            slots: 0,
        }
    }

    /// Adds a path and returns its slot; a path added before keeps its
    /// slot, so that readers of one claim share it.
    pub(crate) fn add(&mut self, path: &ClaimPath) -> Result<usize, MappingConfigError> {
        let collision = || MappingConfigError::PathCollision(path.as_str().to_owned());
        let mut node = 0;
        for segment in path.segments() {
            let current = self.nodes.get(node).ok_or_else(collision)?;
            if current.slot.is_some() {
                return Err(collision());
            }
            node = match current.children.iter().find(|(name, _)| &**name == segment) {
                Some((_, child)) => *child,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(Node {
                        children: Vec::new(),
                        slot: None,
                    });
                    self.nodes
                        .get_mut(node)
                        .ok_or_else(collision)?
                        .children
                        .push((segment.into(), child));
                    child
                }
            };
        }
        let leaf = self.nodes.get_mut(node).ok_or_else(collision)?;
        if let Some(slot) = leaf.slot {
            return Ok(slot);
        }
        if !leaf.children.is_empty() || node == 0 {
            return Err(collision());
        }
        if self.slots == MAX_PATHS {
            return Err(MappingConfigError::TooManyPaths(MAX_PATHS));
        }
        leaf.slot = Some(self.slots);
        self.slots += 1;
        Ok(self.slots - 1)
    }

    /// Reads `payload`, which must be a JSON object. A wanted member that
    /// appears twice makes the payload malformed.
    pub(crate) fn extract<'p>(&self, payload: &'p [u8]) -> Result<Found<'p>, serde_json::Error> {
        let mut out: Found<'p> = std::array::from_fn(|_| None);
        // UTF-8 checked once for the whole payload (the fast ASCII path),
        // rather than string by string as `from_slice` would.
        let text = std::str::from_utf8(payload)
            .map_err(|_| <serde_json::Error as serde::de::Error>::custom("payload is not UTF-8"))?;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        NodeSeed {
            trie: self,
            node: 0,
            out: &mut out,
        }
        .deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(out)
    }
}

struct NodeSeed<'a, 'de> {
    trie: &'a PathTrie,
    node: usize,
    out: &'a mut [Option<Leaf<'de>>],
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.node == 0 {
            deserializer.deserialize_map(self)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let children = self
            .trie
            .nodes
            .get(self.node)
            .map(|n| n.children.as_slice())
            .unwrap_or_default();
        while let Some(child) = map.next_key_seed(KeySeed(children))? {
            let Some(child) = child else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            match self.trie.nodes.get(child).and_then(|n| n.slot) {
                Some(slot) => {
                    let leaf = map.next_value::<Leaf<'de>>()?;
                    let place = self
                        .out
                        .get_mut(slot)
                        .ok_or_else(|| de::Error::custom("slot out of range"))?;
                    if place.is_some() {
                        return Err(de::Error::custom("a claim appears twice"));
                    }
                    *place = Some(leaf);
                }
                None => map.next_value_seed(NodeSeed {
                    trie: self.trie,
                    node: child,
                    out: &mut *self.out,
                })?,
            }
        }
        Ok(())
    }

    // Inside the payload, a path that runs into a non-object finds nothing.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// Matches a member name against a node's children without allocating.
struct KeySeed<'a>(&'a [(Box<str>, usize)]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        // Most member names differ from a wanted one in length or first
        // byte; those are told apart without a call to compare bytes.
        let first = key.as_bytes().first();
        Ok(self
            .0
            .iter()
            .find(|(name, _)| {
                name.len() == key.len() && name.as_bytes().first() == first && &**name == key
            })
            .map(|(_, child)| *child))
    }
}

impl<'de> de::Deserialize<'de> for Leaf<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LeafVisitor)
    }
}

struct LeafVisitor;

impl<'de> Visitor<'de> for LeafVisitor {
    type Value = Leaf<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Leaf<'de>, E> {
        Ok(i64::try_from(v).map_or(Leaf::Float(v as f64), Leaf::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Leaf<'de>, A::Error> {
        let mut strings = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(16));
        let mut all_strings = true;
        while let Some(element) = seq.next_element::<Leaf<'de>>()? {
            match element {
                Leaf::Str(s) if all_strings => strings.push(s),
                _ => all_strings = false,
            }
        }
        Ok(if all_strings {
            Leaf::Strings(strings)
        } else {
            Leaf::Other
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Leaf<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Leaf::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(paths: &[&str]) -> PathTrie {
        let mut trie = PathTrie::new();
        for p in paths {
            trie.add(&ClaimPath::parse(p).unwrap()).unwrap();
        }
        trie
    }

    #[test]
    fn nested_paths_strings_and_arrays_are_found_and_the_rest_skipped() {
        let t = trie(&["sub", "o.rol", "metadata.roles", "metadata.name", "exp"]);
        let out = t
            .extract(
                br#"{"sub":"u1","o":{"rol":"admin","x":[1,{"y":2}]},"metadata":{"roles":["a","b"],"name":"N"},"exp":5,"junk":{"deep":[[[]]]}}"#,
            )
            .unwrap();
        assert_eq!(
            out[..5],
            [
                Some(Leaf::Str("u1".into())),
                Some(Leaf::Str("admin".into())),
                Some(Leaf::Strings(vec!["a".into(), "b".into()])),
                Some(Leaf::Str("N".into())),
                Some(Leaf::Int(5)),
            ]
        );
    }

    #[test]
    fn a_wanted_member_twice_is_malformed_and_an_unwanted_one_is_not() {
        let t = trie(&["sub", "o.rol"]);
        assert!(t.extract(br#"{"sub":"a","sub":"b"}"#).is_err());
        assert!(t.extract(br#"{"o":{"rol":"a","rol":"b"}}"#).is_err());
        assert!(t.extract(br#"{"x":1,"x":2,"sub":"a"}"#).is_ok());
    }

    #[test]
    fn a_path_through_a_non_object_finds_nothing() {
        let t = trie(&["o.rol"]);
        assert_eq!(t.extract(br#"{"o":"flat"}"#).unwrap()[0], None);
        assert_eq!(t.extract(br#"{"o":[{"rol":"x"}]}"#).unwrap()[0], None);
    }

    #[test]
    fn the_payload_must_be_a_single_json_object() {
        let t = trie(&["sub"]);
        for bad in [&b"[]"[..], b"\"x\"", b"{} {}", b"{", b""] {
            assert!(t.extract(bad).is_err());
        }
    }

    #[test]
    fn a_trie_holds_at_most_max_paths() {
        let names: Vec<String> = (0..MAX_PATHS).map(|i| format!("c{i}")).collect();
        let mut t = trie(&names.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            t.add(&ClaimPath::parse("one_more").unwrap()),
            Err(MappingConfigError::TooManyPaths(MAX_PATHS))
        );
        let payload = format!("{{\"c{}\":1}}", MAX_PATHS - 1);
        assert_eq!(
            t.extract(payload.as_bytes()).unwrap()[MAX_PATHS - 1],
            Some(Leaf::Int(1))
        );
    }

    #[test]
    fn colliding_paths_are_refused_and_a_path_added_again_keeps_its_slot() {
        let mut t = trie(&["sub", "o.rol"]);
        assert!(t.add(&ClaimPath::parse("o").unwrap()).is_err());
        assert!(t.add(&ClaimPath::parse("o.rol.x").unwrap()).is_err());
        assert!(t.add(&ClaimPath::parse("sub.x").unwrap()).is_err());
        assert_eq!(t.add(&ClaimPath::parse("o.rol").unwrap()), Ok(1));
        assert_eq!(t.add(&ClaimPath::parse("sub").unwrap()), Ok(0));
        assert_eq!(t.add(&ClaimPath::parse("o.x").unwrap()), Ok(2));
    }
}
