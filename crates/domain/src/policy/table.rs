//! The compiled rule table: a segment trie that finds the first declared
//! matching rule without scanning every rule.
//!
//! Each node stands for one sequence of pattern segments (literal text or a
//! parameter) and holds, in declaration order, the rules whose pattern ends
//! there, either exactly or with a trailing `*`, plus the smallest rule index
//! anywhere below it. A node at depth `d` can only be reached by consuming
//! the first `d` segments of the path, so a search visits every node at most
//! once, and skips any subtree whose smallest rule index cannot beat the best
//! match found so far.

use std::collections::BTreeMap;

use super::path::CanonicalPath;
use super::pattern::{Pattern, Segment};

/// The compiled table; see the module docs.
#[derive(Debug, Clone)]
pub(super) struct Table {
    root: Node,
    nodes: usize,
}

/// A literal segment's sort key: its length and first eight bytes, so that
/// a lookup mostly compares integers and reads the text only on a tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    len: usize,
    head: u64,
}

impl Key {
    fn of(text: &str) -> Self {
        let mut head = [0; 8];
        for (slot, byte) in head.iter_mut().zip(text.bytes()) {
            *slot = byte;
        }
        Self {
            len: text.len(),
            head: u64::from_be_bytes(head),
        }
    }
}

/// Orders literals by [`Key`], then by the bytes after the first eight.
fn compare(key: Key, text: &str, other_key: Key, other: &str) -> std::cmp::Ordering {
    key.cmp(&other_key)
        .then_with(|| text.as_bytes().get(8..).cmp(&other.as_bytes().get(8..)))
}

#[derive(Debug, Clone)]
struct Node {
    /// Literal children, sorted by [`compare`] for binary search.
    literals: Box<[(Key, Box<str>, Node)]>,
    param: Option<Box<Node>>,
    /// Rules whose pattern ends here without `*`, ascending.
    exact: Box<[usize]>,
    /// Rules whose pattern ends here with `*`, ascending.
    prefix: Box<[usize]>,
    /// The smallest rule index in this subtree; `usize::MAX` when empty.
    min_rule: usize,
}

#[derive(Default)]
struct BuildNode {
    literals: BTreeMap<Box<str>, BuildNode>,
    param: Option<Box<BuildNode>>,
    exact: Vec<usize>,
    prefix: Vec<usize>,
    min_rule: Option<usize>,
}

impl BuildNode {
    fn freeze(self, count: &mut usize) -> Node {
        *count += 1;
        let mut literals: Vec<_> = self
            .literals
            .into_iter()
            .map(|(text, child)| (Key::of(&text), text, child.freeze(count)))
            .collect();
        literals.sort_by(|(k1, t1, _), (k2, t2, _)| compare(*k1, t1, *k2, t2));
        Node {
            literals: literals.into(),
            param: self.param.map(|child| Box::new(child.freeze(count))),
            exact: self.exact.into(),
            prefix: self.prefix.into(),
            min_rule: self.min_rule.unwrap_or(usize::MAX),
        }
    }
}

impl Table {
    /// Compiles the patterns, rule `i` being the `i`-th item.
    pub(super) fn build<'p>(patterns: impl IntoIterator<Item = &'p Pattern>) -> Self {
        let mut root = BuildNode::default();
        for (rule, pattern) in patterns.into_iter().enumerate() {
            let mut node = &mut root;
            node.min_rule = Some(node.min_rule.map_or(rule, |m| m.min(rule)));
            for segment in pattern.segments() {
                node = match segment {
                    Segment::Literal(text) => node.literals.entry(text.clone()).or_default(),
                    Segment::Param(_) => node.param.get_or_insert_with(Box::default),
                };
                node.min_rule = Some(node.min_rule.map_or(rule, |m| m.min(rule)));
            }
            if pattern.is_prefix() {
                node.prefix.push(rule);
            } else {
                node.exact.push(rule);
            }
        }
        let mut nodes = 0;
        let root = root.freeze(&mut nodes);
        Self { root, nodes }
    }

    /// How many trie nodes the table holds.
    pub(super) fn node_count(&self) -> usize {
        self.nodes
    }

    /// The smallest index of a rule whose pattern matches `path` and that
    /// `accepts` (the method check).
    pub(super) fn find(
        &self,
        path: CanonicalPath<'_>,
        accepts: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut best = usize::MAX;
        search(&self.root, path.rest(), &accepts, &mut best);
        (best != usize::MAX).then_some(best)
    }
}

/// `rest` holds the segments not consumed yet (`a/b`), `None` once all are.
fn search(node: &Node, rest: Option<&str>, accepts: &impl Fn(usize) -> bool, best: &mut usize) {
    if node.min_rule >= *best {
        return;
    }
    first_accepted(&node.prefix, accepts, best);
    let Some(rest) = rest else {
        first_accepted(&node.exact, accepts, best);
        return;
    };
    // Segments are short: a plain scan beats `split_once`'s searcher.
    let (segment, tail) = match rest.bytes().position(|b| b == b'/') {
        Some(slash) => (rest.get(..slash).unwrap_or(rest), rest.get(slash + 1..)),
        None => (rest, None),
    };
    let key = Key::of(segment);
    let literal = node
        .literals
        .binary_search_by(|(k, text, _)| compare(*k, text, key, segment))
        .ok()
        .and_then(|i| node.literals.get(i))
        .map(|(_, _, child)| child);
    let param = node.param.as_deref();
    // Visit the more promising child first so the other is more often pruned.
    let (first, second) = match (literal, param) {
        (Some(l), Some(p)) if p.min_rule < l.min_rule => (Some(p), Some(l)),
        other => other,
    };
    for child in [first, second].into_iter().flatten() {
        search(child, tail, accepts, best);
    }
}

/// Lowers `best` to the first rule of `rules` (ascending) below it that
/// `accepts`.
fn first_accepted(rules: &[usize], accepts: &impl Fn(usize) -> bool, best: &mut usize) {
    for &rule in rules {
        if rule >= *best {
            return;
        }
        if accepts(rule) {
            *best = rule;
            return;
        }
    }
}
