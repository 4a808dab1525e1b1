//! The tail of a key-name pattern, `<operator><spaces><value>`, matched by hand.
//!
//! After [`crate::tail_capture`] has found where a key-name pattern's key ends, what is
//! left is most often `(?:=>|:=|[:=])\s*(?:"(?P<s>[^"\n]{8,})"|'(?P<s2>…)'|(?P<s3>…))`.
//! The capture engine walks every byte of the value through a repetition unrolled `{8,}`
//! times, about 2,000 instructions for a 40-byte token; the match's end is already known
//! (the lazy DFA found it), so the few ways the tail can be read can simply be tried in
//! the engine's own order of preference, each checked with one pass over the value.
//!
//! The shape is recognised on the tail's syntax tree: a choice of fixed byte sequences
//! (the operator), optionally a greedy repetition of one byte class (the spaces), then a
//! choice of values, each a fixed opening, one group around a greedy repetition of one
//! byte class, and a fixed closing. Anything else keeps the capture engine.
//!
//! Why the result is the engine's: the engine reports the first way to read the tail, in
//! its order of preference (alternatives left to right, greedy repetitions longest
//! first), that reaches a match; that way ends where the match ends, and every way
//! preferred to it reaches no match at all. So the first way in the same order that ends
//! exactly at the known end is the engine's way, and its group is the engine's group. A
//! test compares both on every rule example and on generated assignments.

use crate::tail_capture::{class_bytes, literal_sets, ByteSet};
use regex_syntax::hir::{Hir, HirKind};

/// A fixed-length sequence of byte classes (a literal is one byte per class).
type Fixed = Vec<ByteSet>;

/// One way the value may be written.
#[derive(Debug)]
struct Value {
    open: Fixed,
    body: ByteSet,
    min: usize,
    max: Option<usize>,
    close: Fixed,
    /// Whether the group is a secret one (its name starts with `s`).
    secret: bool,
}

/// A tail of the assignment shape.
#[derive(Debug)]
pub(crate) struct AssignmentTail {
    operators: Vec<Fixed>,
    spaces: Option<ByteSet>,
    values: Vec<Value>,
}

/// More spaces than this between operator and value: left to the capture engine (each
/// count of them is tried, each try scans the value).
const MAX_SPACES: usize = 64;

impl AssignmentTail {
    /// The shape of `tail`, if it has it.
    pub(crate) fn recognize(tail: &Hir) -> Option<AssignmentTail> {
        let parts: &[Hir] = match tail.kind() {
            HirKind::Concat(parts) => parts,
            _ => return None,
        };
        let (operator, spaces, value) = match parts {
            [o, v] => (o, None, v),
            [o, s, v] => (o, Some(s), v),
            _ => return None,
        };
        let operators = alternatives(operator)
            .iter()
            .map(fixed)
            .collect::<Option<Vec<_>>>()?;
        let spaces = match spaces {
            None => None,
            Some(s) => {
                let HirKind::Repetition(r) = s.kind() else {
                    return None;
                };
                if r.min != 0 || r.max.is_some() || !r.greedy {
                    return None;
                }
                Some(class(&r.sub)?)
            }
        };
        let values = alternatives(value)
            .iter()
            .map(value_of)
            .collect::<Option<Vec<_>>>()?;
        Some(AssignmentTail {
            operators,
            spaces,
            values,
        })
    }

    /// The secret group of the tail's match starting at `from` and ending at `end`
    /// (`Some(None)`: the group that took part is not a secret one); `None` when no way
    /// to read it ends there, or it has too many spaces to try.
    pub(crate) fn secret(
        &self,
        hay: &[u8],
        from: usize,
        end: usize,
    ) -> Option<Option<(usize, usize)>> {
        // On the text cut at `end`, the first way that ends there: a way that ends sooner
        // is passed over as the engine would (it did not reach the match's end).
        let hay = hay.get(..end)?;
        match self.first_way(hay, from, |e| e == end) {
            Ok(Some((_, group))) => Some(group),
            _ => None,
        }
    }
}

/// The outcome of [`AssignmentTail::match_at`]: the match's end and its secret group
/// (`None`: the group that took part is not a secret one).
pub(crate) type TailMatch = (usize, Option<(usize, usize)>);

impl AssignmentTail {
    /// The tail's leftmost-first anchored match at `from`, without a known end: the first
    /// way, in the engine's order of preference, to read an operator, spaces and a value
    /// (the tail ends with the value's closing). `Ok(None)`: no match starts at `from`;
    /// `Err(())`: too many spaces to try (the caller asks the engine).
    pub(crate) fn match_at(&self, hay: &[u8], from: usize) -> Result<Option<TailMatch>, ()> {
        self.first_way(hay, from, |_| true)
    }

    /// The first way, in the engine's order of preference, whose end `accept` takes.
    fn first_way(
        &self,
        hay: &[u8],
        from: usize,
        accept: impl Fn(usize) -> bool,
    ) -> Result<Option<TailMatch>, ()> {
        for op in &self.operators {
            if !fixed_at(hay, from, op) {
                continue;
            }
            let after_op = from + op.len();
            let most = match &self.spaces {
                Some(set) => hay[after_op..]
                    .iter()
                    .position(|&b| !set[usize::from(b)])
                    .unwrap_or(hay.len() - after_op),
                None => 0,
            };
            if most > MAX_SPACES {
                return Err(());
            }
            for spaces in (0..=most).rev() {
                for v in &self.values {
                    match v.first_at(hay, after_op + spaces) {
                        Some((end, group)) if accept(end) => {
                            return Ok(Some((end, v.secret.then_some(group))));
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(None)
    }
}

impl Value {
    /// The value's leftmost-first anchored match at `at` without a known end: its end and
    /// the group's span (the body greedy: its longest run first, shorter ones only while
    /// the closing does not follow).
    fn first_at(&self, hay: &[u8], at: usize) -> Option<(usize, (usize, usize))> {
        if !fixed_at(hay, at, &self.open) {
            return None;
        }
        let start = at + self.open.len();
        let room = self
            .max
            .map_or(hay.len() - start, |m| m.min(hay.len() - start));
        let run = crate::tail_capture::run_in(&self.body, &hay[start..start + room]);
        (self.min..=run)
            .rev()
            .find(|&n| fixed_at(hay, start + n, &self.close))
            .map(|n| (start + n + self.close.len(), (start, start + n)))
    }
}

/// Whether `seq` matches at `hay[at..]`.
fn fixed_at(hay: &[u8], at: usize, seq: &Fixed) -> bool {
    hay.get(at..at + seq.len())
        .is_some_and(|s| s.iter().zip(seq).all(|(&b, set)| set[usize::from(b)]))
}

/// The alternatives of `h`, in order (`h` itself if it is no alternation).
fn alternatives(h: &Hir) -> &[Hir] {
    match h.kind() {
        HirKind::Alternation(v) => v,
        _ => std::slice::from_ref(h),
    }
}

/// `h` as a fixed sequence of byte classes (literals, classes and their concatenation).
fn fixed(h: &Hir) -> Option<Fixed> {
    match h.kind() {
        HirKind::Empty => Some(Vec::new()),
        HirKind::Literal(l) => Some(literal_sets(&l.0)),
        HirKind::Class(_) => Some(vec![class(h)?]),
        HirKind::Concat(v) => {
            let mut out = Vec::new();
            for p in v {
                out.extend(fixed(p)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// `h` as a one-byte class.
fn class(h: &Hir) -> Option<ByteSet> {
    let mut set = [false; 256];
    match h.kind() {
        HirKind::Class(c) => class_bytes(c, &mut set)?,
        HirKind::Literal(l) if l.0.len() == 1 => set[usize::from(l.0[0])] = true,
        _ => return None,
    }
    Some(set)
}

/// `h` as a value: a fixed opening, one group around a greedy class repetition, a fixed
/// closing.
fn value_of(h: &Hir) -> Option<Value> {
    let parts: &[Hir] = match h.kind() {
        HirKind::Concat(v) => v,
        _ => std::slice::from_ref(h),
    };
    let g = parts
        .iter()
        .position(|p| matches!(p.kind(), HirKind::Capture(_)))?;
    let HirKind::Capture(cap) = parts[g].kind() else {
        return None;
    };
    let HirKind::Repetition(r) = cap.sub.kind() else {
        return None;
    };
    if !r.greedy {
        return None;
    }
    let mut open = Vec::new();
    for p in &parts[..g] {
        open.extend(fixed(p)?);
    }
    let mut close = Vec::new();
    for p in &parts[g + 1..] {
        close.extend(fixed(p)?);
    }
    Some(Value {
        open,
        body: class(&r.sub)?,
        min: usize::try_from(r.min).ok()?,
        max: r.max.map(usize::try_from).transpose().ok()?,
        close,
        secret: cap.name.as_deref().is_some_and(|n| n.starts_with('s')),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(pattern: &str) -> Option<AssignmentTail> {
        let hir = crate::tail_capture::parse(pattern).unwrap_or_else(|| panic!("{pattern}"));
        AssignmentTail::recognize(&hir)
    }

    #[test]
    fn reads_as_the_engine_prefers() {
        let t = tail(r#"(?:=>|:=|[:=])\s*(?:"(?P<s>[^"\n]{8,})"|'(?P<s2>[^'\n]{8,})'|(?P<s3>[^\s"',;&]{8,}))"#)
            .unwrap_or_else(|| panic!("recognized"));
        let at = |hay: &str| t.secret(hay.as_bytes(), 0, hay.len());
        // `=>` is preferred to `=`, unless only `=` leaves a long enough value.
        assert_eq!(at("=>abcdefgh"), Some(Some((2, 10))));
        assert_eq!(at("=>abcdefg"), Some(Some((1, 9))));
        assert_eq!(at(r#"= "abcdefgh""#), Some(Some((3, 11))));
        assert_eq!(at("=  abc"), None);
        // Too many spaces to try: left to the engine.
        assert_eq!(at(&format!("={}abcdefgh", " ".repeat(65))), None);
    }

    /// Tails of the assignment shape, some with value classes that take spaces or the
    /// operator's bytes (where the order of trying matters most).
    const SHAPES: &[&str] = &[
        r#"(?:=>|:=|[:=])\s*(?:"(?P<s>[^"\n]{3,})"|'(?P<s2>[^'\n]{3,})'|(?P<s3>[^\s"',;&]{3,}))"#,
        r#"(?:=>|:=|[:=])\s*(?:"(?P<s>[^"\n]+)"|(?P<s3>[^\n]+))"#,
        r"=\s*(?P<s>[^\n]{2,4})",
        r#"[:=]\s*(?:(?P<x>[a-z]+)|"(?P<s>[^"]*)"|(?P<s2>[ =>a-z"]{2,}))"#,
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// The hand readings agree with the engine's anchored match: with its end known,
        /// the same group; without, the same end and group, or none where it finds none.
        #[test]
        fn agrees_with_the_engine(
            shape in 0..SHAPES.len(),
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "=", ">", ":", " ", "\"", "'", "a", "b", ";", "&", "\n",
            ]), 0..12),
        ) {
            use regex_automata::{meta::Regex, Anchored, Input};
            let pattern = SHAPES[shape];
            let hand = tail(pattern).unwrap_or_else(|| panic!("{pattern} recognized"));
            let re = Regex::new(pattern).unwrap_or_else(|e| panic!("{e}"));
            let text: String = pieces.concat();
            let hay = text.as_bytes();
            let mut caps = re.create_captures();
            re.search_captures(&Input::new(hay).anchored(Anchored::Yes), &mut caps);
            let names: Vec<Option<&str>> = re.group_info().pattern_names(regex_automata::PatternID::ZERO).collect();
            let engine = caps.get_match().map(|m| {
                let group = names.iter().enumerate().find_map(|(g, n)| {
                    n.filter(|n| n.starts_with('s'))
                        .and_then(|_| caps.get_group(g))
                        .map(|s| (s.start, s.end))
                });
                (m.end(), group)
            });
            if text.bytes().filter(|&b| b == b' ').count() <= MAX_SPACES {
                proptest::prop_assert_eq!(hand.match_at(hay, 0), Ok(engine), "{} on {:?}", pattern, text);
            }
            if let Some((end, group)) = engine.filter(|&(end, _)| end == hay.len()) {
                proptest::prop_assert_eq!(hand.secret(hay, 0, end), Some(group), "{} on {:?}", pattern, text);
            }
        }
    }

    #[test]
    fn other_shapes_are_not_recognized() {
        assert!(tail(r"=(?P<s>[a-z]+?)").is_none(), "lazy");
        assert!(
            tail(r"=(?P<s>\S[^\n]*)").is_none(),
            "two parts in the group"
        );
        assert!(tail(r"=\s+(?P<s>[a-z]+)").is_none(), "spaces required");
        assert!(
            tail(r"(?P<k>a)=(?P<s>[a-z]+)").is_none(),
            "a group in the operator"
        );
    }
}
