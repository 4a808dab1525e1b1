//! The walk of [`crate::tail_program`] as a flat program run with an explicit stack.
//!
//! The walk was first written as continuation passing over the syntax tree: each node
//! called the rest of the pattern through a closure. That is the engine's order of
//! preference by construction, but every node cost a call through a trait object, a new
//! closure and the step and depth checks, about 100 instructions: on secret-dense text the
//! walks were the largest share of redaction (issue 18, ~26 instructions a byte).
//!
//! Here the tree is lowered once, when the rules compile, to instructions of a
//! backtracking machine (as in a backtracking regex engine): byte runs and fixed bytes,
//! assertions, `Split` (try the first branch, remember the second), `Jump`, `Save` (a
//! group's bound, undone on backtracking) and `Match`. Counted repetitions of a body are
//! unrolled (the body `min` times, then optional copies, or a loop when unbounded), a
//! byte-class repetition is one instruction that remembers the counts it has not tried.
//! Running it tries the same ways in the same order as the tree walk: alternatives left to
//! right, greedy repetitions longest first, lazy ones shortest first; a group keeps its
//! last bound on the way taken and gets back its earlier one on a way given up. The tree
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
    /// Between `min` and `max` bytes of set `set`, greedy or lazy.
    Run {
        set: u32,
        min: u32,
        max: u32,
        greedy: bool,
    },
    Look(Look),
    /// Go on at `first`; on failure, at `second`.
    Split {
        first: u32,
        second: u32,
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

    /// Sets `insts[at]`'s branch targets.
    fn patch(&mut self, at: u32, first: u32, second: u32) {
        if let Some(i) = self.insts.get_mut(at as usize) {
            *i = Inst::Split { first, second };
        }
    }

    fn emit(&mut self, s: &Shape) -> Option<()> {
        match s {
            Shape::Fixed(sets) => {
                let first = u32::try_from(self.sets.len()).ok()?;
                self.sets.extend_from_slice(sets);
                let len = u32::try_from(sets.len()).ok()?;
                self.push(Inst::Fixed { first, len })?;
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
                        let split = self.push(Inst::Split {
                            first: 0,
                            second: 0,
                        })?;
                        let body = self.here()?;
                        self.emit(c)?;
                        jumps.push(self.push(Inst::Jump(0))?);
                        let next = self.here()?;
                        self.patch(split, body, next);
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
                        let split = self.push(Inst::Split {
                            first: 0,
                            second: 0,
                        })?;
                        let b = self.here()?;
                        self.emit(body)?;
                        self.push(Inst::Jump(split))?;
                        let out = self.here()?;
                        self.split_to(split, b, out, *greedy);
                    }
                    Some(max) => {
                        // Each optional copy: Split(body, out) body …, all outs to the end.
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.push(Inst::Split {
                                first: 0,
                                second: 0,
                            })?);
                            self.emit(body)?;
                        }
                        let out = self.here()?;
                        for s in splits {
                            self.split_to(s, s + 1, out, *greedy);
                        }
                    }
                }
            }
        }
        Some(())
    }

    /// Makes `split` prefer `body` (greedy) or `out` (lazy).
    fn split_to(&mut self, split: u32, body: u32, out: u32, greedy: bool) {
        if greedy {
            self.patch(split, body, out);
        } else {
            self.patch(split, out, body);
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
                Some(&Inst::Run {
                    set,
                    min,
                    max,
                    greedy,
                }) => {
                    let set = &self.sets[set as usize];
                    let room = (end - at).min(max as usize);
                    let run = &hay[at..at + room];
                    let most = run
                        .iter()
                        .position(|&b| !set[usize::from(b)])
                        .unwrap_or(run.len());
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
                Some(&Inst::Split { first, second }) => {
                    stack.push(Frame::Branch { pc: second, at });
                    pc = first;
                    true
                }
                Some(&Inst::Jump(to)) => {
                    pc = to;
                    true
                }
                Some(&Inst::Save(slot)) => {
                    let s = slot as usize;
                    stack.push(Frame::Restore {
                        slot,
                        old: slots[s],
                    });
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
