//! A key-name pattern's tail (or a whole pattern that does not split) read by a small
//! backtracking walk over its syntax tree.
//!
//! [`crate::assignment_tail`] reads the common `<operator><spaces><value>` tails by hand;
//! the tails that do not have that shape (the authorization header's scheme word and auth
//! parameters, `Bearer\s+<token>`, a URL's `://user:<password>@`) are read here. The
//! capture engine's bounded backtracker costs about 4,500 instructions per such match, a
//! tenth of secret-dense redaction.
//!
//! The tail's match is already known to start at the split and end where the lazy DFA
//! said the whole pattern ends. The engine reports the first way to read the tail, in its
//! order of preference (alternatives left to right, greedy repetitions longest first, lazy
//! ones shortest first), that reaches a match; that way ends where the match ends, and
//! every way preferred to it reaches no match at all. So walking the tree in the same
//! order and taking the first way that ends exactly at the known end gives the engine's
//! way, and its groups (a group in a repetition keeps its last iteration, a group on a
//! path given up is restored) are the engine's groups.
//!
//! Only what the walk can follow exactly is compiled: literals, ASCII byte classes,
//! `^`/`$`/`\b`/`\B` (ASCII, whole haystack), concatenations, alternations, groups and
//! repetitions whose body cannot match the empty string. A tail with anything else is
//! not compiled. The tree is lowered to a flat program run with an explicit stack
//! ([`crate::walk_vm`]); a run that takes more than [`LIMITS`]' steps or reads more than
//! its bytes gives up: the capture engine decides then, so crafted text costs
//! at most the walk's budget more.
//!
//! A pattern every match of which starts with a keyword is walked whole from each of the
//! keyword's occurrences without a known end ([`TailProgram::match_at`], used by
//! [`crate::led_search`]): the first way to reach the program's end is then the engine's
//! match.
//!
//! A pattern with secret groups that does not split (`\b(?:postgres|…)://…:(?P<s>…)@`) is
//! walked whole the same way, from where the lazy DFA says its match starts. Tests compare
//! the walk with the capture engine on every rule example and on generated text, and the
//! `hand_readings` fuzz target on any text.

use crate::tail_capture::{class_bytes, literal_sets, ByteSet};
use crate::walk_vm::{Limits, Look, Program, Shape, Stop};
use regex_syntax::hir::{Hir, HirKind, Look as HirLook};

/// Steps (instructions run, repetition counts tried) and bytes the walk's runs may look
/// at in all (each entry scans its run afresh: steps alone would let 2,048 entries each
/// scan a 4 KiB window) before a walk gives up.
const LIMITS: Limits = Limits {
    steps: 2048,
    scan: 64 * 1024,
};
/// Capture groups a compiled tail may have (their slots live on the stack).
pub(crate) const MAX_GROUPS: usize = 16;

#[derive(Debug)]
enum Node {
    /// One byte from each set in turn (a literal, consecutive classes).
    Fixed(Vec<ByteSet>),
    /// A repetition of one byte from the set.
    Bytes {
        set: Box<ByteSet>,
        min: usize,
        max: Option<usize>,
        greedy: bool,
    },
    Assert(Look),
    Seq(Vec<Node>),
    /// Alternatives in order of preference.
    Alt(Vec<Node>),
    /// Capture group `index` (0 is the whole match).
    Group(usize, Box<Node>),
    /// A repetition of a body that matches at least one byte.
    Repeat {
        body: Box<Node>,
        min: usize,
        max: Option<usize>,
        greedy: bool,
    },
}

/// A compiled tail.
#[derive(Debug)]
pub(crate) struct TailProgram {
    root: Node,
    /// The tree lowered for running (see [`crate::walk_vm`]).
    program: Program,
    /// Group indices whose names start with `s`, in order.
    secret_groups: Vec<usize>,
}

/// Why a walk found no group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// No way to read the tail ends at the known end.
    NoWay,
    /// The walk took too many steps, nested too deep or read too much.
    GaveUp,
}

/// What a reading of a match's secret group without the capture engine (by hand, or by a
/// walk) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The engine's group (`None`: no secret group took part).
    Group(Option<(usize, usize)>),
    /// No way to read the match ends where it ends: a defect; the engine decides.
    NoWay,
    /// Not read (the walk gave up, or the shape is not one read here): the engine decides.
    Engine,
}

impl From<Stop> for NoAnswer {
    fn from(s: Stop) -> NoAnswer {
        match s {
            Stop::NoWay => NoAnswer::NoWay,
            Stop::GaveUp => NoAnswer::GaveUp,
        }
    }
}

impl From<Result<Option<(usize, usize)>, NoAnswer>> for Reading {
    fn from(walk: Result<Option<(usize, usize)>, NoAnswer>) -> Reading {
        match walk {
            Ok(group) => Reading::Group(group),
            Err(NoAnswer::NoWay) => Reading::NoWay,
            Err(NoAnswer::GaveUp) => Reading::Engine,
        }
    }
}

impl TailProgram {
    /// The program for `tail`, if every part of it can be walked exactly.
    pub(crate) fn compile(tail: &Hir) -> Option<TailProgram> {
        let mut secret_groups = Vec::new();
        let mut groups = 1;
        let root = node(tail, &mut secret_groups, &mut groups)?;
        if groups > MAX_GROUPS {
            return None;
        }
        secret_groups.sort_unstable();
        let program = Program::lower(&shape(&root), 2 * groups)?;
        Some(TailProgram {
            root,
            program,
            secret_groups,
        })
    }

    /// The first secret group that took part in the tail's match starting at `from` and
    /// ending at `end` of `hay` (`Ok(None)`: none did).
    pub(crate) fn secret(
        &self,
        hay: &[u8],
        from: usize,
        end: usize,
    ) -> Result<Option<(usize, usize)>, NoAnswer> {
        if from > end || end > hay.len() {
            return Err(NoAnswer::NoWay);
        }
        let mut found = None;
        self.program
            .run(
                hay,
                from,
                end,
                |at| at == end,
                LIMITS,
                |slots| {
                    found = Some(self.first_secret(slots));
                },
            )
            .map_err(NoAnswer::from)?;
        found.ok_or(NoAnswer::NoWay)
    }

    /// The engine's anchored leftmost-first match at `from` in `hay`, found without
    /// knowing where it ends: its end and the first secret group that took part.
    /// `Ok(None)`: no match starts at `from`. The first way, in the engine's order of
    /// preference, that reaches the program's end is the engine's match (a backtracking
    /// search is leftmost-first by construction); the walk takes exactly that way.
    pub(crate) fn match_at(&self, hay: &[u8], from: usize) -> Result<Option<Found>, NoAnswer> {
        if from > hay.len() {
            return Ok(None);
        }
        let mut group = None;
        match self.program.run(
            hay,
            from,
            hay.len(),
            |_| true,
            LIMITS,
            |slots| {
                group = self.first_secret(slots);
            },
        ) {
            Ok(end) => Ok(Some((end, group))),
            Err(Stop::NoWay) => Ok(None),
            Err(Stop::GaveUp) => Err(NoAnswer::GaveUp),
        }
    }

    /// The first secret group that took part on the way taken (`slots` as the run left
    /// them).
    fn first_secret(&self, slots: &[usize]) -> Option<(usize, usize)> {
        self.secret_groups.iter().find_map(|&g| {
            let (s, e) = (*slots.get(2 * g)?, *slots.get(2 * g + 1)?);
            (s != usize::MAX && e != usize::MAX).then_some((s, e))
        })
    }

    /// Keywords (by id) one of which every match of the program starts with, from
    /// `keywords` (id, lower-case text): every way to match begins with a literal (or
    /// ASCII case-folded classes) that folds to one of them, after zero-width assertions
    /// only. `None` when some way does not (a class, a repetition, an empty choice).
    pub(crate) fn lead_keywords(&self, keywords: &[(usize, &[u8])]) -> Option<Vec<usize>> {
        let mut ids = Vec::new();
        leads(&self.root, keywords, &mut ids)?;
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }
}

/// The end of a match and its first secret group that took part.
pub(crate) type Found = (usize, Option<(usize, usize)>);

/// Adds to `ids` a keyword each way through `n` starts with (see
/// [`TailProgram::lead_keywords`]).
fn leads(n: &Node, keywords: &[(usize, &[u8])], ids: &mut Vec<usize>) -> Option<()> {
    match n {
        Node::Fixed(sets) => {
            let (id, _) = keywords.iter().find(|(_, k)| folds_to(sets, k))?;
            ids.push(*id);
            Some(())
        }
        Node::Seq(parts) => leads(
            parts.iter().find(|p| !matches!(p, Node::Assert(_)))?,
            keywords,
            ids,
        ),
        Node::Alt(choices) => choices.iter().try_for_each(|c| leads(c, keywords, ids)),
        Node::Group(_, body) => leads(body, keywords, ids),
        Node::Bytes { .. } | Node::Assert(_) | Node::Repeat { .. } => None,
    }
}

/// Whether every run of bytes `sets` matches starts with `keyword` (lower case), ASCII
/// case folded.
fn folds_to(sets: &[ByteSet], keyword: &[u8]) -> bool {
    !keyword.is_empty()
        && keyword.len() <= sets.len()
        && sets.iter().zip(keyword).all(|(set, &k)| {
            let mut bytes = (0..=255u8).filter(|&b| set[usize::from(b)]);
            bytes.clone().next().is_some() && bytes.all(|b| b.to_ascii_lowercase() == k)
        })
}

/// Compiles `h`; `None` for anything the walk does not follow exactly.
fn node(h: &Hir, secret: &mut Vec<usize>, groups: &mut usize) -> Option<Node> {
    Some(match h.kind() {
        HirKind::Empty => Node::Seq(Vec::new()),
        HirKind::Literal(l) => Node::Fixed(literal_sets(&l.0)),
        HirKind::Class(c) => {
            let mut set = [false; 256];
            class_bytes(c, &mut set)?;
            Node::Fixed(vec![set])
        }
        HirKind::Look(l) => Node::Assert(match l {
            HirLook::Start => Look::Start,
            HirLook::End => Look::End,
            HirLook::WordAscii => Look::WordBoundary,
            HirLook::WordAsciiNegate => Look::NotWordBoundary,
            _ => return None,
        }),
        HirKind::Repetition(r) => {
            let max = r.max.map(|m| m as usize);
            let min = r.min as usize;
            match node(&r.sub, secret, groups)? {
                Node::Fixed(sets) if sets.len() == 1 => Node::Bytes {
                    set: Box::new(sets[0]),
                    min,
                    max,
                    greedy: r.greedy,
                },
                body => {
                    // An iteration that can match nothing repeats differently in the
                    // engine; leave those to it.
                    if r.sub.properties().minimum_len().is_none_or(|n| n == 0) {
                        return None;
                    }
                    Node::Repeat {
                        body: Box::new(body),
                        min,
                        max,
                        greedy: r.greedy,
                    }
                }
            }
        }
        HirKind::Capture(c) => {
            let index = c.index as usize;
            *groups = (*groups).max(index + 1);
            if c.name.as_deref().is_some_and(|n| n.starts_with('s')) {
                secret.push(index);
            }
            Node::Group(index, Box::new(node(&c.sub, secret, groups)?))
        }
        HirKind::Concat(v) => seq_of(
            v.iter()
                .map(|p| node(p, secret, groups))
                .collect::<Option<_>>()?,
        ),
        HirKind::Alternation(v) => Node::Alt(
            v.iter()
                .map(|p| node(p, secret, groups))
                .collect::<Option<_>>()?,
        ),
    })
}

/// A sequence with nested sequences flattened and consecutive [`Node::Fixed`] parts
/// merged into one (matched in one loop instead of one step per byte).
fn seq_of(parts: Vec<Node>) -> Node {
    let mut out: Vec<Node> = Vec::new();
    let flat = parts.into_iter().flat_map(|p| match p {
        Node::Seq(inner) => inner,
        other => vec![other],
    });
    for n in flat {
        match (out.last_mut(), n) {
            (Some(Node::Fixed(prev)), Node::Fixed(more)) => prev.extend(more),
            (_, n) => out.push(n),
        }
    }
    match out.len() {
        1 => out.pop().unwrap_or(Node::Seq(Vec::new())),
        _ => Node::Seq(out),
    }
}

/// The tree as the program's lowering reads it.
fn shape(n: &Node) -> Shape<'_> {
    match n {
        Node::Fixed(sets) => Shape::Fixed(sets),
        Node::Bytes {
            set,
            min,
            max,
            greedy,
        } => Shape::Run {
            set,
            min: *min,
            max: *max,
            greedy: *greedy,
        },
        Node::Assert(l) => Shape::Look(*l),
        Node::Seq(parts) => Shape::Seq(parts.iter().map(shape).collect()),
        Node::Alt(choices) => Shape::Alt(choices.iter().map(shape).collect()),
        Node::Group(index, body) => Shape::Group(*index, Box::new(shape(body))),
        Node::Repeat {
            body,
            min,
            max,
            greedy,
        } => Shape::Repeat {
            body: Box::new(shape(body)),
            min: *min,
            max: *max,
            greedy: *greedy,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::{Anchored, Input};

    fn parse(p: &str) -> Hir {
        crate::tail_capture::parse(p).unwrap_or_else(|| panic!("{p} parses"))
    }

    /// The capture engine's anchored match of `p` at `from`: its end and first `s` group.
    fn engine(p: &str, hay: &[u8], from: usize) -> Option<(usize, Option<(usize, usize)>)> {
        let re = crate::tail_capture::regex_builder()
            .build(p)
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        let mut caps = re.create_captures();
        re.search_captures(
            &Input::new(hay).range(from..).anchored(Anchored::Yes),
            &mut caps,
        );
        let m = caps.get_match()?;
        let group = re
            .group_info()
            .pattern_names(regex_automata::PatternID::ZERO)
            .enumerate()
            .filter(|(_, n)| n.is_some_and(|n| n.starts_with('s')))
            .find_map(|(g, _)| caps.get_group(g).map(|s| (s.start, s.end)));
        Some((m.end(), group))
    }

    /// From every position where the engine's anchored match exists, the walk to where
    /// it ends finds the engine's group. Returns how many were compared.
    fn agree(p: &str, text: &str) -> usize {
        let prog = TailProgram::compile(&parse(p)).unwrap_or_else(|| panic!("{p} compiles"));
        let hay = text.as_bytes();
        let mut compared = 0;
        for from in 0..=hay.len() {
            if let Some((end, group)) = engine(p, hay, from) {
                assert_eq!(
                    prog.secret(hay, from, end),
                    Ok(group),
                    "{p} on {text:?} from {from}"
                );
                compared += 1;
            }
        }
        compared
    }

    #[test]
    fn walks_choose_as_the_engine_does() {
        for (p, texts) in [
            (
                r#"["']?\s*[:=]\s*["']?(?:(?:Bearer|Basic|Token)\s+)?(?P<s>[A-Za-z0-9._~+/=\-]{6,}(?:[, ]+[A-Za-z]+=[^\s,]+)*)"#,
                &[
                    ": Bearer abcdefgh123",
                    "=Basic dXNlcjpwYXNz, realm=x",
                    ": Token Token1234",
                    "=\"Bearer\" x",
                ][..],
            ),
            (
                r"(?i)\s+(?P<s>[a-z0-9]{4,}=*)",
                &["  abcd==", " ab", "\tABCDEFG="],
            ),
            (r"(?:a|ab)(?P<s>b+?)(?P<s2>b*)c", &["abbbc", "abc", "ac"]),
            (r"(?:(?P<s>x)|y)+z\b", &["xyz", "yxz", "yyz ", "xz_"]),
            // Where the end alone does not decide: greedy takes most, lazy least.
            (r"(?P<s>[a-z]+)(?P<s2>[a-z0-9]*)!", &["abc1!", "ab!", "a!"]),
            (r"(?P<s>[a-z]+?)(?P<s2>[a-z0-9]*)!", &["abc1!", "ab!"]),
            (r"(?:(?P<s>ab)+)(?P<s2>(?:ab)*)!", &["ababab!", "ab!"]),
            (r"(?:(?P<s>ab)+?)(?P<s2>(?:ab)*)!", &["ababab!", "ab!"]),
            (r"(?:(?P<s>a)|(?P<s2>a))b", &["ab", "xab"]),
            (r"^a\B(?P<s>b{2,3})$", &["abbb", "abb", "abbbb"]),
        ] {
            let compared: usize = texts.iter().map(|t| agree(p, t)).sum();
            assert!(compared > 1, "{p}: {compared} matches compared");
        }
    }

    #[test]
    fn what_the_walk_cannot_follow_is_not_compiled() {
        for p in [r"(?m)^a", r"(?:a*)*b", r"(?:a|)+b", r"(?-u:\b)?"] {
            let h = parse(p);
            assert!(TailProgram::compile(&h).is_none(), "{p}");
        }
    }

    #[test]
    fn a_walk_that_would_read_too_much_gives_up() {
        // Few steps (each alternative tries at most ten counts), each scanning most of a
        // 10 KB run again: 70 KB read in all.
        let prog = TailProgram::compile(&parse(
            r"(?:a|aa|aaa|aaaa|aaaaa|aaaaaa|aaaaaaa)(?P<s>[a-z]{9990,})!",
        ))
        .unwrap_or_else(|| panic!("compiles"));
        let hay = "a".repeat(10_000);
        assert_eq!(
            prog.secret(hay.as_bytes(), 0, hay.len()),
            Err(NoAnswer::GaveUp)
        );
        let found = format!("{}!", "a".repeat(9_991));
        assert_eq!(
            prog.secret(found.as_bytes(), 0, found.len()),
            Ok(Some((1, 9_991)))
        );
    }

    #[test]
    fn a_walk_that_would_take_too_long_gives_up() {
        let prog = TailProgram::compile(&parse(r"(?:a+)+b")).unwrap_or_else(|| panic!("compiles"));
        let hay = "a".repeat(40);
        assert_eq!(
            prog.secret(hay.as_bytes(), 0, hay.len()),
            Err(NoAnswer::GaveUp)
        );
    }
}
