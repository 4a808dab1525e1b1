//! The walk of [`crate::tail_program`] as a flat program run with an explicit stack.
//!
//! Why not continuation passing over the syntax tree, each node calling the rest of the
//! pattern through a closure: that is the engine's order of preference by construction,
//! but every node costs a call through a trait object, a new closure and the step and
//! depth checks, about 100 instructions, which on secret-dense text would make the walks
//! the largest share of redaction (~26 instructions a byte).
//!
//! Here the tree is lowered once, when the rules compile, to instructions of a
//! backtracking machine (as in a backtracking regex engine): byte runs and fixed bytes,
//! assertions, `Split` (try the first branch, remember the second), `Jump`, `Save` (a
//! group's bound, undone on backtracking) and `Match`. Counted repetitions of a body are
//! unrolled (the body `min` times, then optional copies, or a loop when unbounded), a
//! byte-class repetition is one instruction that remembers the counts it has not tried.
//! A split whose branch cannot start with the next byte (its first bytes, computed when
//! lowering, for a branch that cannot be empty) skips it without remembering it, and a
//! literal is compared as byte pairs (a letter either case where folded) rather than
//! through a 256-byte set per byte (about 4% fewer instructions a byte on the build log).
//! Running it tries the same ways in the same order as a tree walk: alternatives left to
//! right, greedy repetitions longest first, lazy ones shortest first; a group keeps its
//! last bound on the way taken and gets back its earlier one on a way given up. The
//! walk's tests (against the capture engine), the rule-set oracles and the `hand_readings`
//! fuzz target check it.

use crate::tail_capture::ByteSet;

/// Instructions a program may have once unrolled; a larger one is not compiled (the
/// engine reads those patterns).
const MAX_INSTS: usize = 4096;

/// An assertion (Unicode is off: word bytes are ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// `^` without multi-line: the haystack's start.
    Start,
    /// `$` without multi-line: the haystack's end.
    End,
    /// `\b`.
    WordBoundary,
    /// `\B`.
    NotWordBoundary,
}

impl Look {
    fn holds(self, hay: &[u8], at: usize) -> bool {
        let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
        let before = at > 0 && hay.get(at - 1).is_some_and(word);
        let after = hay.get(at).is_some_and(word);
        match self {
            Look::Start => at == 0,
            Look::End => at == hay.len(),
            Look::WordBoundary => before != after,
            Look::NotWordBoundary => before == after,
        }
    }
}

/// One instruction. Byte sets live in the program's table, by index.
#[derive(Debug, Clone, Copy)]
enum Inst {
    /// One byte from each of `len` sets from `first` on, in turn.
    Fixed {
        first: u32,
        len: u32,
    },
    /// One byte from each of `len` pairs from `first` on (in the program's pairs), in turn:
    /// a literal, its letters either case where folded (most literals; the pairs are read
    /// where the 256-byte sets would each touch cache lines of their own).
    Pairs {
        first: u32,
        len: u32,
    },
    /// Between `min` and `max` bytes of set `set`, greedy or lazy.
    Run {
        set: u32,
        min: u32,
        max: u32,
        greedy: bool,
    },
    Look(Look),
    /// Go on at `first`; on failure, at `second`. A branch whose guard (a set of first
    /// bytes, [`NO_GUARD`] for none) does not hold the next byte cannot match there and is
    /// not taken (nor remembered).
    Split {
        first: u32,
        second: u32,
        first_guard: u32,
        second_guard: u32,
    },
    Jump(u32),
    /// Record the position in slot `n` (undone on backtracking).
    Save(u32),
    Match,
}

/// A program's shape as the tree walk sees it, for lowering (see [`Program::lower`]).
#[derive(Debug)]
pub(crate) enum Shape<'a> {
    Fixed(&'a [ByteSet]),
    Run {
        set: &'a ByteSet,
        min: usize,
        max: Option<usize>,
        greedy: bool,
    },
    Look(Look),
    Seq(Vec<Shape<'a>>),
    Alt(Vec<Shape<'a>>),
    Group(usize, Box<Shape<'a>>),
    Repeat {
        body: Box<Shape<'a>>,
        min: usize,
        max: Option<usize>,
        greedy: bool,
    },
}

/// A lowered program.
#[derive(Debug)]
pub(crate) struct Program {
    insts: Vec<Inst>,
    sets: Vec<ByteSet>,
    pairs: Vec<[u8; 2]>,
    /// Slots (two per group) the program saves.
    slots: usize,
}

/// Why a run found nothing to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// No way reaches the end.
    NoWay,
    /// The run took too many steps or read too much.
    GaveUp,
}

/// The limits of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Instructions executed and counts tried.
    pub(crate) steps: usize,
    /// Bytes the runs of bytes may look at in all.
    pub(crate) scan: usize,
}

/// A way remembered for backtracking.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// Go on at `pc` from `at`.
    Branch { pc: u32, at: usize },
    /// A run's next count to try: `count` bytes from `base`, then `pc`; greedy counts go
    /// down to `min`, lazy ones up to `most`.
    Count {
        pc: u32,
        base: usize,
        count: usize,
        min: usize,
        most: usize,
        greedy: bool,
    },
    /// Give slot `slot` back its value.
    Restore { slot: u32, old: usize },
}

/// A slot not set.
const UNSET: usize = usize::MAX;

/// A [`Inst::Split`] branch without a guard.
const NO_GUARD: u32 = u32::MAX;

thread_local! {
    /// The ways remembered by a run, kept between runs (each run would otherwise
    /// allocate its own).
    static STACK: std::cell::RefCell<Vec<Frame>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Program {
    /// Lowers `shape` (groups up to `slots / 2`), if the program stays small enough.
    pub(crate) fn lower(shape: &Shape, slots: usize) -> Option<Program> {
        let mut p = Program {
            insts: Vec::new(),
            sets: Vec::new(),
            pairs: Vec::new(),
            slots,
        };
        p.emit(shape)?;
        p.push(Inst::Match)?;
        Some(p)
    }

    fn push(&mut self, i: Inst) -> Option<u32> {
        if self.insts.len() >= MAX_INSTS {
            return None;
        }
        self.insts.push(i);
        u32::try_from(self.insts.len() - 1).ok()
    }

    fn here(&self) -> Option<u32> {
        u32::try_from(self.insts.len()).ok()
    }

    /// Sets `insts[at]`'s branch targets and their guards (`None`: no guard).
    fn patch(&mut self, at: u32, (first, first_guard): Branch, (second, second_guard): Branch) {
        let mut guard = |g: Option<ByteSet>| match g {
            Some(set) => u32::try_from(self.sets.len())
                .ok()
                .inspect(|_| self.sets.push(set)),
            None => None,
        };
        let (first_guard, second_guard) = (
            guard(first_guard).unwrap_or(NO_GUARD),
            guard(second_guard).unwrap_or(NO_GUARD),
        );
        if let Some(i) = self.insts.get_mut(at as usize) {
            *i = Inst::Split {
                first,
                second,
                first_guard,
                second_guard,
            };
        }
    }

    /// A placeholder for a split patched later.
    fn split(&mut self) -> Option<u32> {
        self.push(Inst::Split {
            first: 0,
            second: 0,
            first_guard: NO_GUARD,
            second_guard: NO_GUARD,
        })
    }

    fn emit(&mut self, s: &Shape) -> Option<()> {
        match s {
            Shape::Fixed(sets) => {
                let len = u32::try_from(sets.len()).ok()?;
                match sets.iter().map(pair_of).collect::<Option<Vec<_>>>() {
                    Some(pairs) => {
                        let first = u32::try_from(self.pairs.len()).ok()?;
                        self.pairs.extend(pairs);
                        self.push(Inst::Pairs { first, len })?;
                    }
                    None => {
                        let first = u32::try_from(self.sets.len()).ok()?;
                        self.sets.extend_from_slice(sets);
                        self.push(Inst::Fixed { first, len })?;
                    }
                }
            }
            Shape::Run {
                set,
                min,
                max,
                greedy,
            } => {
                let index = u32::try_from(self.sets.len()).ok()?;
                self.sets.push(**set);
                self.push(Inst::Run {
                    set: index,
                    min: u32::try_from(*min).ok()?,
                    max: max.map_or(Some(u32::MAX), |m| u32::try_from(m).ok())?,
                    greedy: *greedy,
                })?;
            }
            Shape::Look(l) => {
                self.push(Inst::Look(*l))?;
            }
            Shape::Seq(parts) => {
                for p in parts {
                    self.emit(p)?;
                }
            }
            Shape::Alt(choices) => {
                // Split(c1, next) c1 Jump(end) next: Split(c2, next2) c2 Jump(end) … cn
                let mut jumps = Vec::new();
                for (i, c) in choices.iter().enumerate() {
                    if i + 1 < choices.len() {
                        let split = self.split()?;
                        let body = self.here()?;
                        self.emit(c)?;
                        jumps.push(self.push(Inst::Jump(0))?);
                        let next = self.here()?;
                        let rest = Shape::Alt(choices[i + 1..].iter().map(Shape::same).collect());
                        self.patch(split, (body, guard_of(c)), (next, guard_of(&rest)));
                    } else {
                        self.emit(c)?;
                    }
                }
                let end = self.here()?;
                for j in jumps {
                    if let Some(i) = self.insts.get_mut(j as usize) {
                        *i = Inst::Jump(end);
                    }
                }
            }
            Shape::Group(index, body) => {
                let start = u32::try_from(2 * index).ok()?;
                if 2 * index + 1 >= self.slots {
                    return None;
                }
                self.push(Inst::Save(start))?;
                self.emit(body)?;
                self.push(Inst::Save(start + 1))?;
            }
            Shape::Repeat {
                body,
                min,
                max,
                greedy,
            } => {
                for _ in 0..*min {
                    self.emit(body)?;
                }
                match max {
                    None => {
                        // loop: Split(body, out) body Jump(loop) out  (lazy: branches swapped)
                        let split = self.split()?;
                        let b = self.here()?;
                        self.emit(body)?;
                        self.push(Inst::Jump(split))?;
                        let out = self.here()?;
                        self.split_to(split, (b, guard_of(body)), out, *greedy);
                    }
                    Some(max) => {
                        // Each optional copy: Split(body, out) body …, all outs to the end.
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.split()?);
                            self.emit(body)?;
                        }
                        let out = self.here()?;
                        for s in splits {
                            self.split_to(s, (s + 1, guard_of(body)), out, *greedy);
                        }
                    }
                }
            }
        }
        Some(())
    }

    /// Makes `split` prefer `body` (greedy) or `out` (lazy).
    fn split_to(&mut self, split: u32, body: Branch, out: u32, greedy: bool) {
        if greedy {
            self.patch(split, body, (out, None));
        } else {
            self.patch(split, (out, None), body);
        }
    }

    /// Runs the program from `from` over `hay`, byte runs reading no further than `end`:
    /// the first way, in the engine's order of preference, that reaches `Match` at a
    /// position `accept` takes. Returns that position, and calls `report` with the slots
    /// as they are there (`usize::MAX` for a slot not set).
    pub(crate) fn run(
        &self,
        hay: &[u8],
        from: usize,
        end: usize,
        accept: impl Fn(usize) -> bool,
        limits: Limits,
        report: impl FnOnce(&[usize]),
    ) -> Result<usize, Stop> {
        // Most programs have a group or two: their slots fit a small array (set whole at
        // every run).
        const FEW: usize = 8;
        let (mut few, mut many) = ([UNSET; FEW], Vec::new());
        let slots = if self.slots <= FEW {
            &mut few[..self.slots]
        } else {
            many.resize(self.slots, UNSET);
            &mut many[..]
        };
        STACK.with_borrow_mut(|stack| {
            stack.clear();
            self.run_with(hay, (from, end), accept, limits, report, slots, stack)
        })
    }

    #[allow(clippy::too_many_arguments)] // one run's state, passed down once
    fn run_with(
        &self,
        hay: &[u8],
        (from, end): (usize, usize),
        accept: impl Fn(usize) -> bool,
        limits: Limits,
        report: impl FnOnce(&[usize]),
        slots: &mut [usize],
        stack: &mut Vec<Frame>,
    ) -> Result<usize, Stop> {
        let (mut pc, mut at) = (0u32, from);
        let (mut steps, mut scanned) = (0usize, 0usize);
        loop {
            steps += 1;
            if steps > limits.steps {
                return Err(Stop::GaveUp);
            }
            let ok = match self.insts.get(pc as usize) {
                Some(&Inst::Fixed { first, len }) => {
                    let (first, len) = (first as usize, len as usize);
                    let to = at + len;
                    let fits = to <= end
                        && hay[at..to]
                            .iter()
                            .zip(&self.sets[first..first + len])
                            .all(|(&b, set)| set[usize::from(b)]);
                    if fits {
                        at = to;
                        pc += 1;
                    }
                    fits
                }
                Some(&Inst::Pairs { first, len }) => {
                    let (first, len) = (first as usize, len as usize);
                    let to = at + len;
                    let fits = to <= end
                        && hay[at..to]
                            .iter()
                            .zip(&self.pairs[first..first + len])
                            .all(|(&b, &[x, y])| b == x || b == y);
                    if fits {
                        at = to;
                        pc += 1;
                    }
                    fits
                }
                Some(&Inst::Run {
                    set,
                    min,
                    max,
                    greedy,
                }) => {
                    let set = &self.sets[set as usize];
                    let room = (end - at).min(max as usize);
                    let run = &hay[at..at + room];
                    let most = crate::tail_capture::run_in(set, run);
                    scanned += most;
                    if scanned > limits.scan {
                        return Err(Stop::GaveUp);
                    }
                    let min = min as usize;
                    if most < min {
                        false
                    } else {
                        let count = if greedy { most } else { min };
                        if most > min {
                            stack.push(Frame::Count {
                                pc: pc + 1,
                                base: at,
                                count,
                                min,
                                most,
                                greedy,
                            });
                        }
                        at += count;
                        pc += 1;
                        true
                    }
                }
                Some(&Inst::Look(l)) => {
                    let holds = l.holds(hay, at);
                    pc += u32::from(holds);
                    holds
                }
                Some(&Inst::Split {
                    first,
                    second,
                    first_guard,
                    second_guard,
                }) => {
                    let next = hay.get(at).filter(|_| at < end).copied();
                    let may = |guard: u32| {
                        guard == NO_GUARD
                            || next.is_some_and(|b| self.sets[guard as usize][usize::from(b)])
                    };
                    match (may(first_guard), may(second_guard)) {
                        (true, true) => {
                            stack.push(Frame::Branch { pc: second, at });
                            pc = first;
                            true
                        }
                        (true, false) => {
                            pc = first;
                            true
                        }
                        (false, true) => {
                            pc = second;
                            true
                        }
                        (false, false) => false,
                    }
                }
                Some(&Inst::Jump(to)) => {
                    pc = to;
                    true
                }
                Some(&Inst::Save(slot)) => {
                    let s = slot as usize;
                    // The old bound is kept only for a way to go back to: with none
                    // remembered, a failure ends the run and the slots are not read. (A
                    // restore is pushed only onto a non-empty stack, so the bottom frame
                    // is always a way, and a non-empty stack always holds one.)
                    if !stack.is_empty() {
                        stack.push(Frame::Restore {
                            slot,
                            old: slots[s],
                        });
                    }
                    slots[s] = at;
                    pc += 1;
                    true
                }
                Some(Inst::Match) => {
                    if accept(at) {
                        report(slots);
                        return Ok(at);
                    }
                    false
                }
                None => return Err(Stop::GaveUp),
            };
            if ok {
                continue;
            }
            // Backtrack to the latest way remembered.
            loop {
                match stack.pop() {
                    None => return Err(Stop::NoWay),
                    Some(Frame::Restore { slot, old }) => slots[slot as usize] = old,
                    Some(Frame::Branch { pc: p, at: a }) => {
                        (pc, at) = (p, a);
                        break;
                    }
                    Some(Frame::Count {
                        pc: p,
                        base,
                        count,
                        min,
                        most,
                        greedy,
                    }) => {
                        steps += 1;
                        if steps > limits.steps {
                            return Err(Stop::GaveUp);
                        }
                        let next = if greedy { count - 1 } else { count + 1 };
                        if (greedy && next > min) || (!greedy && next < most) {
                            stack.push(Frame::Count {
                                pc: p,
                                base,
                                count: next,
                                min,
                                most,
                                greedy,
                            });
                        }
                        (pc, at) = (p, base + next);
                        break;
                    }
                }
            }
        }
    }
}

/// A branch target and the bytes a match of it must start with (`None`: any, or none).
type Branch = (u32, Option<ByteSet>);

/// A set of one or two bytes as the pair `[x, y]` (`x == y` for one byte).
fn pair_of(set: &ByteSet) -> Option<[u8; 2]> {
    let mut bytes = (0..=255u8).filter(|&b| set[usize::from(b)]);
    let x = bytes.next()?;
    match (bytes.next(), bytes.next()) {
        (None, _) => Some([x, x]),
        (Some(y), None) => Some([x, y]),
        _ => None,
    }
}

/// The bytes every match of `s` starts with, when it cannot match the empty string
/// (`None`: it can, so any next byte, or none, may do).
fn guard_of(s: &Shape) -> Option<ByteSet> {
    let (set, nullable) = first_bytes(s);
    (!nullable).then_some(set)
}

/// The bytes a match of `s` can start with, and whether it can be empty (assertions are:
/// they read no byte).
fn first_bytes(s: &Shape) -> (ByteSet, bool) {
    let union = |a: &mut ByteSet, b: &ByteSet| {
        for (x, y) in a.iter_mut().zip(b) {
            *x |= *y;
        }
    };
    match s {
        Shape::Fixed(sets) => match sets.first() {
            Some(first) => (*first, false),
            None => ([false; 256], true),
        },
        Shape::Run { set, min, .. } => (**set, *min == 0),
        Shape::Look(_) => ([false; 256], true),
        Shape::Seq(parts) => {
            let mut out = [false; 256];
            for p in parts {
                let (set, nullable) = first_bytes(p);
                union(&mut out, &set);
                if !nullable {
                    return (out, false);
                }
            }
            (out, true)
        }
        Shape::Alt(choices) => {
            let mut out = [false; 256];
            let mut any_nullable = false;
            for c in choices {
                let (set, nullable) = first_bytes(c);
                union(&mut out, &set);
                any_nullable |= nullable;
            }
            (out, any_nullable)
        }
        Shape::Group(_, body) => first_bytes(body),
        Shape::Repeat { body, min, .. } => {
            let (set, nullable) = first_bytes(body);
            (set, nullable || *min == 0)
        }
    }
}

impl Shape<'_> {
    /// The same shape, borrowed again (for a guard over some alternatives).
    fn same(&self) -> Shape<'_> {
        match self {
            Shape::Fixed(sets) => Shape::Fixed(sets),
            Shape::Run {
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
            Shape::Look(l) => Shape::Look(*l),
            Shape::Seq(parts) => Shape::Seq(parts.iter().map(Shape::same).collect()),
            Shape::Alt(choices) => Shape::Alt(choices.iter().map(Shape::same).collect()),
            Shape::Group(i, body) => Shape::Group(*i, Box::new(body.same())),
            Shape::Repeat {
                body,
                min,
                max,
                greedy,
            } => Shape::Repeat {
                body: Box::new(body.same()),
                min: *min,
                max: *max,
                greedy: *greedy,
            },
        }
    }
}
