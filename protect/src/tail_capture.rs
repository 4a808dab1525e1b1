//! Secret groups without running the capture engine over the whole match.
//!
//! A key-name rule's pattern reads `<boundary><key name><separator><value>`:
//! `(?:^|[^A-Za-z0-9])[\w.\-]*api[_\-.]?key["']?\s*(?:=>|:=|[:=])\s*(?:"(?P<s>…)"|…)`.
//! Finding where it matches is cheap (a lazy DFA); finding where its secret group lies
//! costs the capture engine a walk over the whole match with the key name's many
//! alternatives, which would be most of a secret-dense text's redaction.
//!
//! When the pattern splits into a head `H` and a tail `T` such that
//! - `H` is one element matching at most one byte (or only key bytes) followed by elements
//!   matching only *key bytes* `K` (the bytes any of them can match), `H` matches at least
//!   one byte and holds no group, and
//! - every match of `T` starts with a byte outside `K` (its first bytes, through nullable
//!   elements, avoid `K`) and `T` holds every group,
//!
//! then in any match `w` of the pattern the head ends exactly at the first byte at index
//! ≥ 1 of `w` that is not in `K`: the head's bytes after its first are all in `K`, and the
//! tail's first is not. The split is forced, so the pattern's leftmost-first match has its
//! tail part at that split, and the tail's own leftmost-first anchored match there (on the
//! same haystack, so look-arounds see the same text) takes the same path through the
//! tail's groups: the groups come out the same as the capture engine's on the whole
//! pattern. The split is derived from the pattern's syntax tree when the rule is
//! compiled; a pattern that does not split this way keeps the capture engine. A test
//! compares both on every rule example and on generated assignments.

use crate::assignment_tail::AssignmentTail;
use crate::tail_program::{Reading, TailProgram};
use regex_automata::meta::Regex;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input};
use regex_syntax::hir::{Class, Hir, HirKind};

/// A set of bytes.
pub(crate) type ByteSet = [bool; 256];

/// How many bytes from the start of `bytes` are in `set`: the length of a run such as a
/// token's value. Eight bytes are looked up at a time without a branch per byte (a
/// `position` loop costs ~6 instructions a byte; values are the bulk of what the walks and
/// tail readings read on secret-dense text), the rest one by one.
pub(crate) fn run_in(set: &ByteSet, bytes: &[u8]) -> usize {
    let mut n = 0;
    for chunk in bytes.chunks_exact(8) {
        if !chunk.iter().fold(true, |all, &b| all & set[usize::from(b)]) {
            break;
        }
        n += 8;
    }
    n + bytes[n..]
        .iter()
        .position(|&b| !set[usize::from(b)])
        .unwrap_or(bytes.len() - n)
}

/// The pattern's syntax tree, parsed as the rules compile (Unicode off, bytes).
pub(crate) fn parse(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

/// The tail of a pattern that splits (see the module docs).
#[derive(Debug)]
pub(crate) struct Tail {
    /// Bytes the head can consist of after its first.
    key_bytes: ByteSet,
    /// The tail, with the pattern's groups.
    re: Regex,
    /// Indices (in `re`) of the groups whose names start with `s`, in order.
    secret_groups: Vec<usize>,
    /// The tail read by hand, when it has the assignment shape.
    by_hand: Option<AssignmentTail>,
    /// Otherwise the tail walked over its syntax tree, when every part can be.
    walked: Option<TailProgram>,
}

/// A pattern cut into a head (the key name) and a tail that meet the conditions in the
/// module docs.
pub(crate) struct Split {
    /// The head, with no group.
    pub(crate) head: Hir,
    /// The tail, with every group.
    pub(crate) tail: Hir,
    /// The bytes the head consists of after its first.
    pub(crate) key_bytes: ByteSet,
    /// The bytes a match of the tail can start with (none of them a key byte).
    pub(crate) tail_starts: ByteSet,
}

/// The splits of the pattern `hir` that meet the conditions, the longest head first.
pub(crate) fn splits(hir: &Hir) -> impl Iterator<Item = Split> + '_ {
    let parts: &[Hir] = match hir.kind() {
        HirKind::Concat(parts) => parts,
        _ => &[],
    };
    let first_group = parts
        .iter()
        .position(|p| p.properties().explicit_captures_len() > 0)
        .unwrap_or(0);
    (1..=first_group).rev().filter_map(|m| split_at(parts, m))
}

/// The split before `parts[m]`, if it meets the conditions.
fn split_at(parts: &[Hir], m: usize) -> Option<Split> {
    let (head, tail) = parts.split_at(m);
    let mut key_bytes = [false; 256];
    for p in &head[1..] {
        bytes_of(p, &mut key_bytes)?;
    }
    let mut first = [false; 256];
    let first_ok = head[0].properties().maximum_len().is_some_and(|n| n <= 1)
        || (bytes_of(&head[0], &mut first).is_some() && subset(&first, &key_bytes));
    let head_len: usize = head
        .iter()
        .map(|p| p.properties().minimum_len().unwrap_or(0))
        .sum();
    let tail_hir = Hir::concat(tail.to_vec());
    let (tail_starts, nullable) = first_bytes(&tail_hir)?;
    let disjoint = (0..256).all(|b| !(tail_starts[b] && key_bytes[b]));
    if !first_ok || head_len == 0 || nullable || !disjoint {
        return None;
    }
    Some(Split {
        head: Hir::concat(head.to_vec()),
        tail: tail_hir,
        key_bytes,
        tail_starts,
    })
}

impl Tail {
    /// The tail of the pattern `hir` (see [`parse`]), if it splits: the longest head that
    /// works (the smaller the tail, the less the engine walks).
    pub(crate) fn split(hir: &Hir) -> Option<Tail> {
        splits(hir).find_map(Self::of)
    }

    /// The tail of `split`, if its engine builds.
    fn of(split: Split) -> Option<Tail> {
        let Split {
            tail: tail_hir,
            key_bytes,
            ..
        } = split;
        let re = regex_builder().build_from_hir(&tail_hir).ok()?;
        let secret_groups = re
            .group_info()
            .pattern_names(regex_automata::PatternID::ZERO)
            .enumerate()
            .filter(|(_, n)| n.is_some_and(|n| n.starts_with('s')))
            .map(|(i, _)| i)
            .collect();
        let by_hand = AssignmentTail::recognize(&tail_hir);
        let walked = match by_hand {
            Some(_) => None,
            None => TailProgram::compile(&tail_hir),
        };
        Some(Tail {
            key_bytes,
            re,
            secret_groups,
            by_hand,
            walked,
        })
    }

    /// Whether the tail is read by hand (it has the assignment shape).
    #[cfg(test)]
    pub(crate) fn reads_by_hand(&self) -> bool {
        self.by_hand.is_some()
    }

    /// The reading by hand or by walk alone (no engine behind it) of a match `whole` of the
    /// full pattern.
    pub(crate) fn hand_reading(&self, hay: &[u8], whole: (usize, usize)) -> Reading {
        let (start, end) = whole;
        let Some(split) = (start + 1..end).find(|&i| !self.key_bytes[usize::from(hay[i])]) else {
            return Reading::NoWay;
        };
        match (&self.by_hand, &self.walked) {
            // `None` there is "ask the engine" (no way, or too many spaces to try).
            (Some(t), _) => t
                .secret(hay, split, end)
                .map_or(Reading::Engine, Reading::Group),
            (None, Some(walk)) => walk.secret(hay, split, end).into(),
            (None, None) => Reading::Engine,
        }
    }

    /// Whether the tail is walked over its syntax tree.
    #[cfg(test)]
    pub(crate) fn is_walked(&self) -> bool {
        self.walked.is_some()
    }

    /// Slots for [`Tail::secret`], reused across calls.
    pub(crate) fn slots(&self) -> Vec<Option<NonMaxUsize>> {
        vec![None; self.re.group_info().slot_len()]
    }

    /// For a match `whole` of the full pattern in `hay`: the first secret group that took
    /// part, as the capture engine would report it (`Some(None)`: none did). `None` if the
    /// tail does not match as the split says it must (a defect: callers fall back to the
    /// capture engine).
    pub(crate) fn secret(
        &self,
        hay: &[u8],
        whole: (usize, usize),
        slots: &mut [Option<NonMaxUsize>],
    ) -> Option<Option<(usize, usize)>> {
        match self.hand_reading(hay, whole) {
            Reading::Group(found) => return Some(found),
            // Both readings follow the engine exactly: no way means none.
            Reading::NoWay => return None,
            Reading::Engine => {}
        }
        let (start, end) = whole;
        let split = (start + 1..end).find(|&i| !self.key_bytes[usize::from(hay[i])])?;
        let input = Input::new(hay).range(split..).anchored(Anchored::Yes);
        self.re.search_slots(&input, slots)?;
        let found_end = slots.get(1).copied().flatten()?.get();
        if found_end != end {
            return None;
        }
        Some(self.secret_groups.iter().find_map(|&g| {
            let (s, e) = (slots.get(2 * g)?.as_ref()?, slots.get(2 * g + 1)?.as_ref()?);
            Some((s.get(), e.get()))
        }))
    }
}

/// A regex builder set up as the rules compile (Unicode off, bytes, empty matches
/// anywhere).
pub(crate) fn regex_builder() -> regex_automata::meta::Builder {
    let mut b = Regex::builder();
    b.syntax(
        regex_automata::util::syntax::Config::new()
            .unicode(false)
            .utf8(false),
    )
    .configure(Regex::config().utf8_empty(false));
    b
}

/// One byte set per byte of a literal.
pub(crate) fn literal_sets(bytes: &[u8]) -> Vec<ByteSet> {
    bytes
        .iter()
        .map(|&b| {
            let mut set = [false; 256];
            set[usize::from(b)] = true;
            set
        })
        .collect()
}

fn subset(a: &ByteSet, b: &ByteSet) -> bool {
    (0..256).all(|i| !a[i] || b[i])
}

fn add_range(set: &mut ByteSet, start: u8, end: u8) {
    for b in start..=end {
        set[usize::from(b)] = true;
    }
}

/// Adds every byte `h` can match to `set`; `None` for a class this cannot tell.
pub(crate) fn bytes_of(h: &Hir, set: &mut ByteSet) -> Option<()> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(()),
        HirKind::Literal(l) => {
            for &b in l.0.iter() {
                set[usize::from(b)] = true;
            }
            Some(())
        }
        HirKind::Class(c) => class_bytes(c, set),
        HirKind::Repetition(r) => bytes_of(&r.sub, set),
        HirKind::Capture(c) => bytes_of(&c.sub, set),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().try_for_each(|p| bytes_of(p, set)),
    }
}

/// Adds the bytes of class `c` to `set`; `None` for a class this cannot tell.
pub(crate) fn class_bytes(c: &Class, set: &mut ByteSet) -> Option<()> {
    match c {
        Class::Bytes(c) => {
            for r in c.ranges() {
                add_range(set, r.start(), r.end());
            }
            Some(())
        }
        // Unicode off: only ASCII classes can appear; anything else is not judged.
        Class::Unicode(c) => {
            for r in c.ranges() {
                let (s, e) = (u8::try_from(r.start()).ok()?, u8::try_from(r.end()).ok()?);
                if e > 0x7f {
                    return None;
                }
                add_range(set, s, e);
            }
            Some(())
        }
    }
}

/// The bytes a match of `h` can start with, and whether `h` matches the empty string
/// (look-arounds are empty: they consume nothing).
fn first_bytes(h: &Hir) -> Option<(ByteSet, bool)> {
    Some(match h.kind() {
        HirKind::Empty | HirKind::Look(_) => ([false; 256], true),
        HirKind::Literal(l) => {
            let mut set = [false; 256];
            match l.0.first() {
                Some(&b) => {
                    set[usize::from(b)] = true;
                    (set, false)
                }
                None => (set, true),
            }
        }
        HirKind::Class(c) => {
            let mut set = [false; 256];
            class_bytes(c, &mut set)?;
            (set, false)
        }
        HirKind::Repetition(r) => {
            let (set, nullable) = first_bytes(&r.sub)?;
            (set, nullable || r.min == 0)
        }
        HirKind::Capture(c) => first_bytes(&c.sub)?,
        HirKind::Concat(v) => {
            let mut set = [false; 256];
            for p in v {
                let (s, nullable) = first_bytes(p)?;
                for b in 0..256 {
                    set[b] |= s[b];
                }
                if !nullable {
                    return Some((set, false));
                }
            }
            (set, true)
        }
        HirKind::Alternation(v) => {
            let mut set = [false; 256];
            let mut any_nullable = false;
            for p in v {
                let (s, nullable) = first_bytes(p)?;
                for b in 0..256 {
                    set[b] |= s[b];
                }
                any_nullable |= nullable;
            }
            (set, any_nullable)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `run_in` counts as a byte-by-byte `position` does, whatever the run's length
        /// against the chunks of eight and wherever the first byte outside the set is.
        #[test]
        fn a_run_counts_as_position_does(
            members in proptest::collection::vec(any::<u8>(), 0..40),
            bytes in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'0'), any::<u8>()], 0..70),
        ) {
            let mut set = [false; 256];
            for m in members.iter().chain(b"ab0") {
                set[usize::from(*m)] = true;
            }
            let want = bytes.iter().position(|&b| !set[usize::from(b)]).unwrap_or(bytes.len());
            prop_assert_eq!(run_in(&set, &bytes), want);
        }
    }
}
