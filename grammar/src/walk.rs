//! The AST walk: finds every simple command, wherever it sits, and tracks the cwd.
//!
//! The cwd is a *may* analysis: after `cd /x; cmd`, `cmd` may run in `/x` or, if the `cd`
//! failed, where the script started, so both are candidates and every path fact is checked
//! against each. `cd /x && cmd` has one candidate. Loops that change directory, function
//! bodies and non-literal `cd`s make the cwd unknown.

use crate::command;
use crate::error::{snippet, ParseError};
use crate::ir::{Command, Cwd, RedirectKind, Structure};
use crate::kinds::{Fields, KindName};
use crate::proto::{join, Frame, Outcome, Payload, Proto, ProtoRedirect, Unwrapped};
use crate::words::{self, Decoded, WordEnv};
use crate::ParseOptions;
use std::collections::BTreeSet;
use tree_sitter::{Node, Parser, Tree};

pub(crate) struct Walker<'o> {
    pub opts: &'o ParseOptions,
    /// Program knowledge (loaded once per process).
    pub knowledge: &'static crate::knowledge::Catalog,
    pub out: Vec<Command>,
    /// Taken from this thread's pool and given back on drop (`Some` while walking).
    parser: Option<Parser>,
    depth: usize,
    /// Functions defined so far and the commands their bodies run (to refuse recursion).
    functions: std::collections::HashMap<String, BTreeSet<String>>,
    /// Loop variables bound inside their loop's body (innermost last).
    bound: Vec<(String, Vec<crate::words::Seg>)>,
    /// The parser's progress reports so far, payloads' parses included (see [`parse_tree`]).
    parse_steps: usize,
    /// Words of the commands emitted so far (see [`Walker::room_for_a_command`]).
    words: usize,
    /// Bytes the parser may re-read in dense lines so far (see [`check_line_work`]).
    line_work: u64,
    /// Aliases and functions this script defined so far (given back with the script).
    pub defined: crate::ir::Definitions,
    /// Aliases being expanded (bash does not expand an alias inside its own expansion).
    expanding: Vec<String>,
}

thread_local! {
    /// Parsers with the bash language set, reused across parses on this thread: creating
    /// one and loading the grammar cost more than parsing a short command.
    static PARSERS: std::cell::RefCell<Vec<Parser>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Parsers kept per thread at most (a walk holds one; nested walks none).
const POOLED: usize = 4;

fn pooled_parser() -> Result<Parser, ParseError> {
    if let Some(p) = PARSERS.with(|v| v.borrow_mut().pop()) {
        return Ok(p);
    }
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .map_err(|_| ParseError::NoTree)?;
    Ok(parser)
}

impl Drop for Walker<'_> {
    fn drop(&mut self) {
        if let Some(mut p) = self.parser.take() {
            p.reset();
            PARSERS.with(|v| {
                let mut v = v.borrow_mut();
                if v.len() < POOLED {
                    v.push(p);
                }
            });
        }
    }
}

/// `src` ended by a newline, when it has a pipe, does not end with a newline already, and
/// the newline changes nothing bash runs. Why: tree-sitter-bash reaches the end of input
/// after a pipeline of three or more commands (`sort f | uniq -c | head`) through error
/// recovery on a losing branch, which costs about 0.6 M instructions a parse (a fifth of a
/// 20-command script's decision); after a newline it does not. Elsewhere the
/// newline costs a little, so text without a `|` is left alone. The runner runs a command
/// as `eval` of its text, where a final newline is a no-op — except after a backslash,
/// which it would turn into a line continuation (`echo a \` prints the backslash): that
/// text is parsed as it is.
fn with_final_newline(src: &str) -> Option<String> {
    if !src.contains('|') || src.ends_with('\n') || src.ends_with('\\') {
        return None;
    }
    let mut t = String::with_capacity(src.len() + 1);
    t.push_str(src);
    t.push('\n');
    Some(t)
}

/// Parses `src`, counting tree-sitter's progress reports into `steps` (one about every
/// hundred parser operations) and cancelling the parse once they pass `max_steps`.
///
/// Why a budget: the parser's work and memory grow with the tokens, not the bytes, and a
/// dense script is refused only after it is parsed whole (too many commands, too large a
/// pipeline). Unbounded, a megabyte of `a|a|…` takes tree-sitter 8 seconds and 1.6 GB; a
/// megabyte of `a;a;…` 1 second and 280 MB. The count is the parser's own and
/// deterministic for a given script and grammar version (not a clock, so a verdict does not
/// depend on the machine's load).
pub(crate) fn parse_tree(
    parser: &mut Parser,
    src: &str,
    steps: &mut usize,
    max_steps: usize,
) -> Result<Tree, ParseError> {
    let mut progress = |_: &tree_sitter::ParseState| {
        *steps += 1;
        *steps > max_steps
    };
    let bytes = src.as_bytes();
    let tree = parser.parse_with_options(
        &mut |at, _| bytes.get(at..).unwrap_or_default(),
        None,
        Some(tree_sitter::ParseOptions::new().progress_callback(&mut progress)),
    );
    if *steps > max_steps {
        // A cancelled parse leaves the parser mid-way: it must start afresh next time.
        parser.reset();
        return Err(ParseError::TooComplex { max_steps });
    }
    let tree = tree.ok_or(ParseError::NoTree)?;
    let root = tree.root_node();
    if root.has_error() {
        return Err(first_error(root, src));
    }
    Ok(tree)
}

fn first_error(root: Node, src: &str) -> ParseError {
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if n.is_error() || n.is_missing() {
            let (start, end) = (n.start_byte(), n.end_byte());
            let pos = n.start_position();
            let message = if n.is_missing() {
                format!(
                    "missing `{}` before {:?}",
                    n.kind_name(),
                    snippet(src, start, start + 20)
                )
            } else {
                format!("cannot parse {:?}", snippet(src, start, end.max(start + 1)))
            };
            return ParseError::Syntax {
                start,
                end,
                line: pos.row + 1,
                column: pos.column + 1,
                message,
            };
        }
        let mut c = n.walk();
        let kids: Vec<_> = n
            .children(&mut c)
            .filter(|k| k.has_error() || k.is_missing())
            .collect();
        stack.extend(kids.into_iter().rev());
    }
    let pos = root.start_position();
    ParseError::Syntax {
        start: 0,
        end: src.len(),
        line: pos.row + 1,
        column: 1,
        message: "unparseable script".into(),
    }
}

/// Refuses a script whose long lines are full of `$`, backquotes or backslashes: in a
/// here-document each of them ends a token, and tree-sitter-bash's scanner asks for the
/// column at the start of the next, which tree-sitter finds by reading the line again from
/// its start. A line of n such tokens costs the square of its length (one 24 KB line of
/// `$x $x …` takes 0.5 s, a megabyte would take many minutes) while the parser's own step
/// count grows only with the tokens. The bound is on what that reading can cost: each such
/// byte times its line's length, summed. Ordinary scripts are far below it (a megabyte of
/// 100-byte lines, every tenth byte a `$`: 10 million).
///
/// Only lines after the first `<<` can be a here-document's, so only they count (a long
/// single-quoted line of `$` or `\"`, as `echo '…' > f` writes minified code, is read in
/// one token and is not refused).
///
/// `work` carries the sum over the script and the payloads re-parsed from it.
pub(crate) fn check_line_work(src: &str, work: &mut u64, max: u64) -> Result<(), ParseError> {
    let b = src.as_bytes();
    let Some(first) = memchr::memmem::find(b, b"<<") else {
        return Ok(());
    };
    let bodies = b[first..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(&[][..], |nl| &b[first + nl + 1..]);
    for line in bodies.split(|&b| b == b'\n') {
        let ends = line
            .iter()
            .filter(|&&b| matches!(b, b'$' | b'`' | b'\\'))
            .count();
        *work = work.saturating_add((ends as u64).saturating_mul(line.len() as u64));
        if *work > max {
            return Err(ParseError::LinesTooDense { max });
        }
    }
    Ok(())
}

pub(crate) fn check_control_chars(src: &str) -> Result<(), ParseError> {
    for (offset, &byte) in src.as_bytes().iter().enumerate() {
        if (byte < 0x20 && byte != b'\t' && byte != b'\n') || byte == 0x7f {
            return Err(ParseError::ControlChar { offset, byte });
        }
    }
    Ok(())
}

impl<'o> Walker<'o> {
    pub fn new(opts: &'o ParseOptions) -> Result<Self, ParseError> {
        let parser = Some(pooled_parser()?);
        let knowledge = crate::knowledge::catalog()?;
        Ok(Walker {
            opts,
            knowledge,
            out: Vec::new(),
            parser,
            depth: 0,
            functions: Default::default(),
            bound: Vec::new(),
            parse_steps: 0,
            words: 0,
            line_work: 0,
            defined: Default::default(),
            expanding: Vec::new(),
        })
    }

    /// Parses `src` (top level or a re-parsed payload) and walks it.
    pub fn script(&mut self, src: &str, cwd: &Cwd, frame: &Frame) -> Result<Outcome, ParseError> {
        if frame.structure.nesting_depth > self.opts.max_nesting {
            return Err(ParseError::TooDeep {
                max: self.opts.max_nesting,
            });
        }
        check_control_chars(src)?;
        check_line_work(src, &mut self.line_work, self.opts.max_line_work)?;
        let terminated;
        let src = match with_final_newline(src) {
            Some(t) => {
                terminated = t;
                terminated.as_str()
            }
            None => src,
        };
        let parser = self.parser.as_mut().ok_or(ParseError::NoTree)?;
        let tree = parse_tree(
            parser,
            src,
            &mut self.parse_steps,
            self.opts.max_parse_steps,
        )?;
        self.statements(tree.root_node(), src, cwd, frame)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.opts.max_depth {
            return Err(ParseError::TooDeep {
                max: self.opts.max_depth,
            });
        }
        Ok(())
    }

    /// A sequence of statements (program, `{ }`, bodies): each starts where the previous may
    /// have left the cwd; a statement followed by `&` runs in the background and leaves it.
    fn statements(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        let mut cur = cwd.clone();
        let mut last = Outcome::same(cwd);
        let mut c = node.walk();
        let kids: Vec<Node> = node.children(&mut c).collect();
        for (i, k) in kids.iter().enumerate() {
            if !k.is_named() || is_trivia(k.kind_name()) {
                continue;
            }
            let background = kids
                .get(i + 1)
                .is_some_and(|n| !n.is_named() && n.kind_name() == "&");
            if background {
                let mut f = frame.clone();
                f.structure.background = true;
                self.stmt(*k, src, &cur, &f)?;
                last = Outcome::same(&cur);
            } else {
                last = self.stmt(*k, src, &cur, frame)?;
                cur = last.any();
            }
        }
        Ok(last)
    }

    /// Union of all paths through a set of statements (if/case/loop bodies).
    fn may_statements(
        &mut self,
        nodes: &[Node],
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Cwd, ParseError> {
        let mut cur = cwd.clone();
        for n in nodes {
            let o = self.stmt(*n, src, &cur, frame)?;
            cur = join(&cur, &o.any());
        }
        Ok(cur)
    }

    pub fn stmt(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        self.stmt_tail(node, src, cwd, frame, &[])
    }

    /// Walks a statement; `tail` are redirect nodes that belong to its *last* simple
    /// command. tree-sitter-bash attaches `a && b 2>&1` redirects to the whole list (and
    /// `a | b > f` ones to the whole pipeline), but bash binds them to `b`: they are moved
    /// to where bash applies them and resolved against the cwd there.
    fn stmt_tail(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
        tail: &[Node],
    ) -> Result<Outcome, ParseError> {
        self.enter()?;
        let r = match node.kind_name() {
            "list" => self.list(node, src, cwd, frame, tail),
            "pipeline" => self.pipeline(node, src, cwd, frame, tail),
            _ if !tail.is_empty() => {
                let mut f = frame.clone();
                for t in tail {
                    if self
                        .redirect(*t, src, cwd, frame, &mut f.redirects)?
                        .is_some()
                    {
                        return Err(ParseError::unsupported(
                            "pipeline after a here-document",
                            t.start_byte(),
                            t.end_byte(),
                            src,
                        ));
                    }
                }
                self.stmt_inner(node, src, cwd, &f)
            }
            _ => self.stmt_inner(node, src, cwd, frame),
        };
        self.depth -= 1;
        r
    }

    fn stmt_inner(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        match node.kind_name() {
            "program" | "do_group" | "else_clause" => self.statements(node, src, cwd, frame),
            "compound_statement" => {
                if node.child(0).is_some_and(|c| c.kind_name() == "((") {
                    self.subs_in(node, src, cwd, frame)?;
                    return Ok(Outcome::same(cwd));
                }
                self.statements(node, src, cwd, frame)
            }
            "command" => self.command(node, src, cwd, frame),
            "list" => self.list(node, src, cwd, frame, &[]),
            "pipeline" => self.pipeline(node, src, cwd, frame, &[]),
            "subshell" => {
                let mut f = frame.clone();
                f.structure.in_subshell = true;
                self.statements(node, src, cwd, &f)?;
                Ok(Outcome::same(cwd))
            }
            "redirected_statement" => self.redirected(node, src, cwd, frame),
            "negated_command" => {
                let mut f = frame.clone();
                f.structure.negated = !f.structure.negated;
                let o = self.statements(node, src, cwd, &f)?;
                Ok(Outcome {
                    ok: o.err,
                    err: o.ok,
                })
            }
            "function_definition" => {
                let mut f = frame.clone();
                f.structure.in_function = true;
                f.structure.background = false;
                // Redirects on a function definition (`f() { cat; } > out`) apply to every
                // command of its body each time it is called, in the caller's cwd, which
                // is unknown here: they are attached to the body's commands.
                let mut c = node.walk();
                let redirects: Vec<Node> = node.field_children("redirect", &mut c).collect();
                let mut rs = f.redirects.clone();
                for r in redirects {
                    if self.redirect(r, src, &Cwd::Unknown, &f, &mut rs)?.is_some() {
                        return Err(ParseError::unsupported(
                            "pipeline after a here-document",
                            r.start_byte(),
                            r.end_byte(),
                            src,
                        ));
                    }
                }
                f.redirects = rs;
                let first = self.out.len();
                let mut c = node.walk();
                for k in node.field_children("body", &mut c) {
                    self.stmt(k, src, &Cwd::Unknown, &f)?;
                }
                // A function that calls itself, directly or through others, is a fork bomb
                // (`:(){ :|:& };:`) in most spellings an agent would send: refused.
                if let Some(name) = node.field_child("name") {
                    let name = src[name.byte_range()].to_string();
                    let calls: BTreeSet<String> =
                        self.out[first..].iter().map(display_name).collect();
                    self.functions.insert(name.clone(), calls);
                    self.defined.functions.insert(name.clone());
                    if self.reaches(&name, &name) {
                        return Err(ParseError::unsupported(
                            "a function that calls itself (the shape of a fork bomb)",
                            node.start_byte(),
                            node.end_byte(),
                            src,
                        ));
                    }
                }
                Ok(Outcome::same(cwd))
            }
            "if_statement" | "elif_clause" => self.branches(node, src, cwd, frame),
            "while_statement" | "for_statement" | "c_style_for_statement" => {
                self.looped(node, src, cwd, frame)
            }
            "case_statement" => {
                let mut result = cwd.clone();
                let mut c = node.walk();
                for k in node.children(&mut c) {
                    match k.kind_name() {
                        "case_item" => {
                            let mut cc = k.walk();
                            let stmts: Vec<Node> = k
                                .children(&mut cc)
                                .filter(|n| n.is_named() && !is_trivia(n.kind_name()))
                                .filter(|n| k.field_child("value") != Some(*n))
                                .collect();
                            let mut vc = k.walk();
                            for v in k.field_children("value", &mut vc) {
                                self.subs_in(v, src, cwd, frame)?;
                            }
                            let end = self.may_statements(&stmts, src, cwd, frame)?;
                            result = join(&result, &end);
                        }
                        _ if k.is_named() && !is_trivia(k.kind_name()) => {
                            self.subs_in(k, src, cwd, frame)?;
                        }
                        _ => {}
                    }
                }
                Ok(Outcome::same(&result))
            }
            "variable_assignment"
            | "variable_assignments"
            | "declaration_command"
            | "unset_command" => self.assignment_like(node, src, cwd, frame),
            "test_command" => {
                self.subs_in(node, src, cwd, frame)?;
                // The brackets of the test itself are not a subscript.
                let text = src[node.byte_range()].trim();
                let inner = text
                    .strip_prefix("[[")
                    .or_else(|| text.strip_prefix('['))
                    .unwrap_or(text);
                let inner = inner
                    .strip_suffix("]]")
                    .or_else(|| inner.strip_suffix(']'))
                    .unwrap_or(inner);
                self.latent_subscript(inner, node, src, cwd, frame)?;
                Ok(Outcome::same(cwd))
            }
            other => Err(ParseError::unsupported(
                other,
                node.start_byte(),
                node.end_byte(),
                src,
            )),
        }
    }

    fn list(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
        tail: &[Node],
    ) -> Result<Outcome, ParseError> {
        // tree-sitter-bash nests `a && b && c` to the left, one level per link: walked
        // recursively, a generated chain of 200 links would be refused as too deep. The
        // left spine is followed in a loop instead, and the links are walked left to right
        // as a recursion would (each inner list's right side without the tail, which
        // belongs to the last command).
        let (first, links) = list_spine(node, src)?;
        let acc = self.stmt(first, src, cwd, frame)?;
        self.links(acc, &links, src, frame, tail)
    }

    /// Walks a list's links (see [`list_spine`]) after its first command's `acc`, left to
    /// right; `tail` belongs to the last command.
    fn links(
        &mut self,
        mut acc: Outcome,
        links: &[(String, Node)],
        src: &str,
        frame: &Frame,
        tail: &[Node],
    ) -> Result<Outcome, ParseError> {
        for (i, (op, right)) in links.iter().enumerate().rev() {
            let start = after_op(op, &acc);
            let t = if i == 0 { tail } else { &[] };
            let r = self.stmt_tail(*right, src, &start, frame, t)?;
            acc = combine(op, &acc, r);
        }
        Ok(acc)
    }

    fn pipeline(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
        tail: &[Node],
    ) -> Result<Outcome, ParseError> {
        let mut c = node.walk();
        let elems: Vec<Node> = node
            .children(&mut c)
            .filter(|k| k.is_named() && !is_trivia(k.kind_name()))
            .collect();
        // tree-sitter-bash parses `a | b | c && d` as `a | (b | c && d)`; bash runs
        // `(a | b | c) && d`. Undo that here (a plain list last, the first not a list).
        if let (Some(last), Some(first)) = (elems.last(), elems.first()) {
            if elems.len() > 1 && last.kind_name() == "list" && !is_list(first) {
                return self.pipeline_then_list(&elems, src, cwd, frame, tail);
            }
        }
        no_list_after_first(&elems, src)?;
        // tree-sitter-bash parses `a && b 2>&1 | c` as `(a && b 2>&1) | c`; bash runs
        // `a && (b 2>&1 | c)`. Undo that here.
        if let Some(first) = elems.first() {
            let (list, redirs) = match first.kind_name() {
                "list" => (Some(*first), Vec::new()),
                "redirected_statement" => match body_of(*first) {
                    Some(b) if b.kind_name() == "list" => (Some(b), redirect_nodes(*first)),
                    _ => (None, Vec::new()),
                },
                _ => (None, Vec::new()),
            };
            if let Some(list) = list {
                let (left, op, right) = list_parts(list, src)?;
                let l = self.stmt(left, src, cwd, frame)?;
                let start = after_op(&op, &l);
                let mut es = vec![(right, redirs)];
                es.extend(elems[1..].iter().map(|e| (*e, Vec::new())));
                let p = self.pipeline_elems(&es, src, &start, frame, tail)?;
                return Ok(combine(&op, &l, p));
            }
        }
        let es: Vec<(Node, Vec<Node>)> = elems.iter().map(|e| (*e, Vec::new())).collect();
        self.pipeline_elems(&es, src, cwd, frame, tail)
    }

    /// A pipeline whose last element tree-sitter-bash read as a list (`a | b && c`): the
    /// list's leftmost command (or pipeline) ends the pipeline, its links follow it.
    fn pipeline_then_list(
        &mut self,
        elems: &[Node],
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
        tail: &[Node],
    ) -> Result<Outcome, ParseError> {
        let Some((last, before)) = elems.split_last() else {
            return self.stmt_tail(elems[0], src, cwd, frame, tail);
        };
        let (leftmost, links) = list_spine(*last, src)?;
        let mut joined: Vec<Node> = before.to_vec();
        if leftmost.kind_name() == "pipeline" {
            let mut c = leftmost.walk();
            joined.extend(
                leftmost
                    .children(&mut c)
                    .filter(|k| k.is_named() && !is_trivia(k.kind_name())),
            );
        } else {
            joined.push(leftmost);
        }
        no_list_after_first(&joined, src)?;
        let es: Vec<(Node, Vec<Node>)> = joined.iter().map(|e| (*e, Vec::new())).collect();
        let acc = self.pipeline_elems(&es, src, cwd, frame, &[])?;
        self.links(acc, &links, src, frame, tail)
    }

    fn pipeline_elems(
        &mut self,
        elems: &[(Node, Vec<Node>)],
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
        tail: &[Node],
    ) -> Result<Outcome, ParseError> {
        let n = elems.len();
        let mut ranges = Vec::with_capacity(n);
        let mut f = frame.clone();
        if n > 1 {
            f.structure.in_subshell = true;
        }
        let mut last = Outcome::same(cwd);
        for (i, (e, own)) in elems.iter().enumerate() {
            let start = self.out.len();
            let mut t: Vec<Node> = own.clone();
            if i + 1 == n {
                t.extend(tail.iter().copied());
            }
            let mut f = f.clone();
            if let Some(prev) = ranges.last() {
                // What the previous element writes into the pipe.
                f.stdin = Some(crate::stdin::piped(&self.out[std::ops::Range::clone(prev)]));
            }
            let o = self.stmt_tail(*e, src, cwd, &f, &t)?;
            if n == 1 {
                last = o;
            }
            ranges.push(start..self.out.len());
        }
        if n == 1 {
            return Ok(last);
        }
        let names: Vec<BTreeSet<String>> = ranges
            .iter()
            .map(|r| self.out[r.clone()].iter().map(display_name).collect())
            .collect();
        // Every command is told every program up- and downstream of its part: refuse a
        // pipeline whose telling would cost more than the limit, before doing any of it.
        let commands = self.out.len() - ranges.first().map_or(self.out.len(), |r| r.start);
        let programs = names.iter().flatten().collect::<BTreeSet<_>>().len();
        let pairs = (commands + n).saturating_mul(programs.max(1));
        if pairs > self.opts.max_pipeline_pairs {
            return Err(ParseError::PipelineTooLarge {
                commands,
                elements: n,
                programs,
                pairs,
                max: self.opts.max_pipeline_pairs,
            });
        }
        // Upstream of part i: the programs of the parts before it, grown one part at a time
        // (a union per part, not one over all earlier parts: `a | a | …` stays linear).
        let mut ups: Vec<BTreeSet<String>> = Vec::with_capacity(n);
        let mut seen = BTreeSet::new();
        for ns in &names {
            ups.push(seen.clone());
            seen.extend(ns.iter().cloned());
        }
        let mut downs: Vec<BTreeSet<String>> = vec![BTreeSet::new(); n];
        let mut seen = BTreeSet::new();
        for (i, ns) in names.iter().enumerate().rev() {
            downs[i] = seen.clone();
            seen.extend(ns.iter().cloned());
        }
        for (i, r) in ranges.iter().enumerate() {
            let (up, down) = (&ups[i], &downs[i]);
            for cmd in &mut self.out[r.clone()] {
                let s = &mut cmd.structure;
                if s.pipeline_length <= 1 {
                    s.pipeline_index = i;
                    s.pipeline_length = n;
                }
                s.upstream.extend(up.iter().cloned());
                s.downstream.extend(down.iter().cloned());
                s.input_sources.extend(up.iter().cloned());
            }
        }
        Ok(Outcome::same(cwd))
    }

    fn branches(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        let mut c = node.walk();
        let stmts: Vec<Node> = node
            .children(&mut c)
            .filter(|k| k.is_named() && !is_trivia(k.kind_name()))
            .collect();
        let end = self.may_statements(&stmts, src, cwd, frame)?;
        Ok(Outcome::same(&join(cwd, &end)))
    }

    fn looped(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        // A body that may change directory runs an unknown number of times: unknown cwd.
        let start = if changes_dir(node, src) {
            Cwd::Unknown
        } else {
            cwd.clone()
        };
        let mut c = node.walk();
        let kids: Vec<Node> = node
            .children(&mut c)
            .filter(|k| k.is_named() && !is_trivia(k.kind_name()))
            .collect();
        let mut cur = start.clone();
        let first = self.out.len();
        self.loop_assignment(node, src, cwd, frame)?;
        let binding = self.loop_binding(node, src, cwd)?;
        for k in kids {
            match k.kind_name() {
                "do_group" | "compound_statement" => {
                    let bound = binding.is_some();
                    if let Some(b) = binding.clone() {
                        self.bound.push(b);
                    }
                    let o = self.stmt(k, src, &cur, frame);
                    if bound {
                        self.bound.pop();
                    }
                    cur = join(&cur, &o?.any());
                }
                "variable_name" => {}
                _ if node.kind_name() == "while_statement" => {
                    let o = self.stmt(k, src, &cur, frame)?;
                    cur = join(&cur, &o.any());
                }
                _ => {
                    self.subs_in(k, src, &cur, frame)?;
                }
            }
        }
        // An endless loop that starts background commands is a fork bomb in another
        // spelling (`while :; do sh & done`): refused. A bounded loop may (`for f in *.c;
        // do gcc -c "$f" & done`), and an endless one may poll in the foreground.
        if is_endless(node, src) && self.out[first..].iter().any(|c| c.structure.background) {
            return Err(ParseError::unsupported(
                "an endless loop that starts background commands (the shape of a fork bomb)",
                node.start_byte(),
                node.end_byte(),
                src,
            ));
        }
        Ok(Outcome::same(&join(cwd, &cur)))
    }

    /// Walks every command/process substitution below `node` as commands of their own.
    pub fn subs_in(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<BTreeSet<String>, ParseError> {
        let mut found = Vec::new();
        collect_nested_subs(node, &mut found);
        self.substitutions(&found, src, cwd, frame)
    }

    /// Walks substitution nodes; returns the programs they run.
    pub fn substitutions(
        &mut self,
        subs: &[Node],
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<BTreeSet<String>, ParseError> {
        let mut names = BTreeSet::new();
        for s in subs {
            let mut f = frame.clone();
            f.structure = Structure {
                in_substitution: true,
                in_subshell: true,
                in_function: frame.structure.in_function,
                wrappers: frame.structure.wrappers.clone(),
                sudo: frame.structure.sudo,
                run_as: frame.structure.run_as.clone(),
                nesting_depth: frame.structure.nesting_depth,
                background: frame.structure.background,
                pipeline_length: 1,
                ..Structure::default()
            };
            f.redirects = Vec::new();
            let start = self.out.len();
            if crate::words::is_prompt_expansion(s.kind_name(), &src[s.byte_range()]) {
                // The value's code cannot be known: a dynamic command.
                let mut p = Proto::new(*s, src, cwd, &f);
                p.argv = vec![Decoded::opaque(&src[s.byte_range()])];
                p.structure.wrappers.push("${…@P}".into());
                p.structure.dynamic_command = true;
                self.emit(p, src)?;
                names.extend(self.out[start..].iter().map(display_name));
                continue;
            }
            self.enter()?;
            let r = self.statements(*s, src, cwd, &f);
            self.depth -= 1;
            r?;
            names.extend(self.out[start..].iter().map(display_name));
        }
        Ok(names)
    }

    fn redirected(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        for (field, k) in node.fielded_children() {
            let known = matches!(field, Some("body") | Some("redirect"))
                || k.kind_name() == "herestring_redirect";
            if k.is_named() && !is_trivia(k.kind_name()) && !known {
                return Err(ParseError::unsupported(
                    k.kind_name(),
                    k.start_byte(),
                    k.end_byte(),
                    src,
                ));
            }
        }
        let redirs = redirect_nodes(node);
        for r in &redirs {
            // `exec {fd}>x`, `cat 12<x`: tree-sitter-bash leaves the descriptor in the
            // command's arguments; bash allocates or uses a descriptor of the shell's own.
            let word = preceding_word(src, r.start_byte());
            if let Some(fd) = descriptor_word(word) {
                if fd.is_none_or(|n| n > MAX_USER_DESCRIPTOR) {
                    return Err(ParseError::reserved_descriptor(
                        word,
                        r.start_byte() - word.len(),
                        r.end_byte(),
                        src,
                    ));
                }
            }
        }
        match body_of(node) {
            Some(body) => self.stmt_tail(body, src, cwd, frame, &redirs),
            None => {
                // Redirections alone (`> file`): a command with no name.
                let mut f = frame.clone();
                for r in &redirs {
                    if self
                        .redirect(*r, src, cwd, frame, &mut f.redirects)?
                        .is_some()
                    {
                        return Err(ParseError::unsupported(
                            "pipeline after a here-document",
                            r.start_byte(),
                            r.end_byte(),
                            src,
                        ));
                    }
                }
                let proto = Proto::new(node, src, cwd, &f);
                self.emit(proto, src)?;
                Ok(Outcome::same(cwd))
            }
        }
    }

    /// Decodes one redirect node into `out`, refusing descriptors the shell keeps for
    /// itself. Returns a pipeline node if a heredoc redirect carries one
    /// (`cat <<EOF | sh`), which the caller refuses.
    fn redirect<'t>(
        &mut self,
        node: Node<'t>,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
        out: &mut Vec<ProtoRedirect>,
    ) -> Result<Option<Node<'t>>, ParseError> {
        let before = out.len();
        let pipeline = self.decode_redirect(node, src, cwd, frame, out)?;
        for r in &out[before..] {
            check_descriptors(r, node, src)?;
        }
        Ok(pipeline)
    }

    fn decode_redirect<'t>(
        &mut self,
        node: Node<'t>,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
        out: &mut Vec<ProtoRedirect>,
    ) -> Result<Option<Node<'t>>, ParseError> {
        let bound = self.bound.clone();
        let env = WordEnv::new(src, &self.opts.home, cwd, &bound);
        let mut subs = Vec::new();
        let fd = node
            .field_child("descriptor")
            .and_then(|d| src[d.byte_range()].parse::<u32>().ok());
        let op = {
            let mut c = node.walk();
            let found = node
                .children(&mut c)
                .find(|k| !k.is_named())
                .map(|k| src[k.byte_range()].to_string());
            found.unwrap_or_default()
        };
        let mut pipeline = None;
        match node.kind_name() {
            "file_redirect" => {
                let mut c = node.walk();
                let dests: Vec<Node> = node.field_children("destination", &mut c).collect();
                if dests.is_empty() && matches!(op.as_str(), ">&-" | "<&-") {
                    // `2>&-`, `exec >&-`: closes a descriptor; no path, nothing to judge.
                    out.push(ProtoRedirect {
                        op,
                        fd,
                        kind: RedirectKind::Dup,
                        target: Decoded::literal(""),
                        sub_programs: BTreeSet::new(),
                    });
                    return Ok(pipeline);
                }
                let Some(target) = words::decode_joined(&dests, &env, &mut subs)? else {
                    return Err(ParseError::unsupported(
                        "redirect with several targets",
                        node.start_byte(),
                        node.end_byte(),
                        src,
                    ));
                };
                let kind = redirect_kind(&op, &target);
                out.push(ProtoRedirect {
                    op,
                    fd,
                    kind,
                    target,
                    sub_programs: BTreeSet::new(),
                });
            }
            "herestring_redirect" => {
                let mut c = node.walk();
                let word = node
                    .children(&mut c)
                    .find(|k| k.is_named() && k.kind_name() != "file_descriptor");
                let target = match word {
                    Some(w) => words::decode(w, &env, &mut subs)?,
                    None => Decoded::literal(""),
                };
                out.push(ProtoRedirect {
                    op,
                    fd,
                    kind: RedirectKind::Herestring,
                    target,
                    sub_programs: BTreeSet::new(),
                });
            }
            "heredoc_redirect" => {
                let mut body_text = String::new();
                let mut dynamic_body = false;
                let mut quoted = false;
                for (field, k) in node.fielded_children() {
                    match (field, k.kind_name()) {
                        (_, "heredoc_start") => {
                            let t = &src[k.byte_range()];
                            quoted = t.contains(['\'', '"', '\\']);
                        }
                        (_, "heredoc_body") => {
                            body_text = src[k.byte_range()].to_string();
                            if !quoted {
                                let mut kc = k.walk();
                                for part in k.children(&mut kc) {
                                    match part.kind_name() {
                                        "heredoc_content" => {}
                                        "command_substitution"
                                        | "expansion"
                                        | "simple_expansion" => {
                                            dynamic_body = true;
                                            if part.kind_name() == "command_substitution" {
                                                subs.push(part);
                                            } else {
                                                collect_nested_subs(part, &mut subs);
                                            }
                                        }
                                        _ if part.is_named() => dynamic_body = true,
                                        _ => {}
                                    }
                                }
                            }
                        }
                        (Some("redirect"), _) => {
                            self.redirect(k, src, cwd, frame, out)?;
                        }
                        (Some("argument"), _) => {
                            return Err(ParseError::unsupported(
                                "arguments after a here-document operator",
                                k.start_byte(),
                                k.end_byte(),
                                src,
                            ));
                        }
                        (_, "pipeline") => pipeline = Some(k),
                        (_, "heredoc_end") => {}
                        (_, kind) if k.is_named() && !is_trivia(kind) => {
                            return Err(ParseError::unsupported(
                                kind,
                                k.start_byte(),
                                k.end_byte(),
                                src,
                            ));
                        }
                        _ => {}
                    }
                }
                let mut target = Decoded::literal(&body_text);
                if dynamic_body {
                    target = Decoded::opaque(&body_text);
                }
                out.push(ProtoRedirect {
                    op,
                    fd,
                    kind: RedirectKind::Heredoc,
                    target,
                    sub_programs: BTreeSet::new(),
                });
            }
            other => {
                return Err(ParseError::unsupported(
                    other,
                    node.start_byte(),
                    node.end_byte(),
                    src,
                ))
            }
        }
        let names = self.substitutions(&subs, src, cwd, frame)?;
        if let Some(last) = out.last_mut() {
            last.sub_programs = names;
        }
        Ok(pipeline)
    }

    /// Text bash will evaluate as an array subscript (a value a later `$((x))`, `(( x ))`
    /// or `[[ x -eq 1 ]]` evaluates; a `[[ -v 'a[…]' ]]` operand) holding a substitution,
    /// as a dynamic command: evaluating `a[$(id)]` runs `id`.
    fn latent_subscript(
        &mut self,
        text: &str,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<(), ParseError> {
        if !crate::words::has_latent_subscript(text) {
            return Ok(());
        }
        let mut p = Proto::new(node, src, cwd, frame);
        p.argv = vec![Decoded::opaque(text)];
        p.structure.wrappers.push("a[…] evaluated".into());
        p.structure.dynamic_command = true;
        self.emit(p, src)
    }

    fn assignment_like(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        let bound = self.bound.clone();
        let env = WordEnv::new(src, &self.opts.home, cwd, &bound);
        let mut proto = Proto::new(node, src, cwd, frame);
        let mut subs = Vec::new();
        let keyword = match node.kind_name() {
            "variable_assignment" | "variable_assignments" => None,
            _ => node.child(0).map(|k| src[k.byte_range()].to_string()),
        };
        if let Some(k) = keyword {
            proto.argv.push(Decoded::literal(&k));
        }
        let mut items = Vec::new();
        if node.kind_name() == "variable_assignment" {
            items.push(node);
        } else {
            let mut c = node.walk();
            items.extend(
                node.children(&mut c)
                    .filter(|k| k.is_named() && !is_trivia(k.kind_name())),
            );
        }
        for k in items {
            if k.kind_name() == "variable_assignment" {
                let (name, value) = assignment(k, &env, &mut subs)?;
                proto.env.push((name, value));
            } else {
                proto.argv.push(words::decode(k, &env, &mut subs)?);
            }
        }
        proto.sub_programs = self.substitutions(&subs, src, cwd, frame)?;
        let latent: Vec<String> = proto.env.iter().map(|(_, v)| v.value()).collect();
        self.emit(proto, src)?;
        for v in latent {
            self.latent_subscript(&v, node, src, cwd, frame)?;
        }
        Ok(Outcome::same(cwd))
    }

    fn command(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        let bound = self.bound.clone();
        let env = WordEnv::new(src, &self.opts.home, cwd, &bound);
        let mut proto = Proto::new(node, src, cwd, frame);
        let mut subs = Vec::new();
        let mut redirects = Vec::new();
        let mut name_subs = Vec::new();
        // The last argument word, while it may still turn out to be a descriptor.
        let mut last_arg: Option<Node> = None;
        for (field, k) in node.fielded_children() {
            let previous = last_arg.take();
            match (field, k.kind_name()) {
                (Some("name"), _) => proto
                    .argv
                    .insert(0, words::decode(k, &env, &mut name_subs)?),
                (Some("argument"), _) => {
                    proto.argv.push(words::decode(k, &env, &mut subs)?);
                    last_arg = Some(k);
                }
                (Some("redirect"), _) => {
                    let piped_heredoc = self.redirect(k, src, cwd, frame, &mut redirects)?;
                    // tree-sitter-bash reads `cat 0<x` and `exec {fd}>x` as an argument
                    // followed by a redirection; bash reads a descriptor.
                    if let Some(arg) = previous.filter(|a| a.end_byte() == k.start_byte()) {
                        let text = &src[arg.byte_range()];
                        if let Some(fd) = descriptor_word(text) {
                            proto.argv.pop();
                            let Some(fd) = fd else {
                                return Err(ParseError::reserved_descriptor(
                                    text,
                                    arg.start_byte(),
                                    k.end_byte(),
                                    src,
                                ));
                            };
                            if let Some(r) = redirects.last_mut() {
                                r.fd = Some(fd);
                            }
                        }
                    }

                    if piped_heredoc.is_some() {
                        return Err(ParseError::unsupported(
                            "pipeline after a here-document",
                            k.start_byte(),
                            k.end_byte(),
                            src,
                        ));
                    }
                }
                (_, "variable_assignment") => {
                    let (n, v) = assignment(k, &env, &mut subs)?;
                    proto.env.push((n, v));
                }
                (_, kind) if k.is_named() && !is_trivia(kind) => {
                    return Err(ParseError::unsupported(
                        kind,
                        k.start_byte(),
                        k.end_byte(),
                        src,
                    ));
                }
                _ => {}
            }
        }
        if node.field_child("name").is_none() && !proto.argv.is_empty() {
            return Err(ParseError::unsupported(
                "command without a name",
                node.start_byte(),
                node.end_byte(),
                src,
            ));
        }
        let mut names = self.substitutions(&name_subs, src, cwd, frame)?;
        names.extend(self.substitutions(&subs, src, cwd, frame)?);
        for r in &redirects {
            names.extend(r.sub_programs.iter().cloned());
        }
        proto.sub_programs = names;
        proto.redirects.extend(redirects);
        if let Some(name_node) = node.field_child("name") {
            let written = &src[name_node.byte_range()];
            if let Some(body) = self.alias_body(written) {
                return self.expand_alias(node, name_node, written, body, src, cwd, frame);
            }
            if self.is_function(written) {
                proto.structure.calls_function = true;
            }
        }
        self.record_aliases(&proto);
        let result = command::cd_outcome(&proto, cwd, &self.opts.home);
        let latent: Vec<String> = proto.env.iter().map(|(_, v)| v.value()).collect();
        self.emit(proto, src)?;
        for v in latent {
            self.latent_subscript(&v, node, src, cwd, frame)?;
        }
        Ok(result)
    }

    /// The body of alias `written` (a plain word: a quoted or escaped name is not
    /// expanded), defined earlier in the script or in the session, unless it is being
    /// expanded already.
    fn alias_body(&self, written: &str) -> Option<String> {
        if self.expanding.iter().any(|e| e == written) {
            return None;
        }
        self.defined
            .aliases
            .get(written)
            .or_else(|| self.opts.known.aliases.get(written))
            .cloned()
    }

    /// True if `written` names a function defined earlier in the script or the session.
    fn is_function(&self, written: &str) -> bool {
        self.functions.contains_key(written) || self.opts.known.functions.contains(written)
    }

    /// `alias NAME='BODY' …` with literal words: remembered for the later commands.
    /// (`unalias NAME` forgets one.)
    fn record_aliases(&mut self, proto: &Proto) {
        let Some(name) = proto.argv.first().and_then(Decoded::literal_value) else {
            return;
        };
        for w in proto.argv.iter().skip(1) {
            let Some(v) = w.literal_value() else {
                continue;
            };
            match name.as_str() {
                "alias" => {
                    if let Some((n, body)) = v.split_once('=') {
                        self.defined.aliases.insert(n.to_string(), body.to_string());
                    }
                }
                "unalias" if !v.starts_with('-') => {
                    self.defined.aliases.remove(&v);
                }
                _ => return,
            }
        }
    }

    /// A command named by an alias, read as bash reads it: the alias's body in place of
    /// the name, the rest of the command as written.
    #[allow(clippy::too_many_arguments)]
    fn expand_alias(
        &mut self,
        node: Node,
        name_node: Node,
        written: &str,
        body: String,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<Outcome, ParseError> {
        let text = format!(
            "{}{}{}",
            &src[node.start_byte()..name_node.start_byte()],
            body,
            &src[name_node.end_byte()..node.end_byte()]
        );
        let mut f = frame.clone();
        f.structure.wrappers.push("alias".into());
        f.structure.nesting_depth += 1;
        f.span_override = frame.span_override.or(Some(crate::ir::Span {
            start: node.start_byte(),
            end: node.end_byte(),
        }));
        self.expanding.push(written.to_string());
        self.enter()?;
        let r = self.script(&text, cwd, &f);
        self.depth -= 1;
        self.expanding.pop();
        r
    }

    /// `for VAR in WORDS`: what `$VAR` stands for in the body, when the words are literal
    /// or globs and the body never assigns the variable itself (`read VAR`, `VAR=x`, ...).
    fn loop_binding(
        &self,
        node: Node,
        src: &str,
        cwd: &Cwd,
    ) -> Result<Option<(String, Vec<crate::words::Seg>)>, ParseError> {
        if node.kind_name() != "for_statement" {
            return Ok(None);
        }
        let Some(var) = node.field_child("variable") else {
            return Ok(None);
        };
        let name = src[var.byte_range()].to_string();
        let Some(body) = node.field_child("body") else {
            return Ok(None);
        };
        // Every mention of the name in the body must be an expansion of it.
        let text = &src[body.byte_range()];
        let mentions = count_word(text, &name, |_| true);
        let expansions = count_word(text, &name, |before| {
            before.ends_with('$') || before.ends_with("${")
        });
        if mentions != expansions {
            return Ok(None);
        }
        let bound = Vec::new();
        let env = WordEnv::new(src, &self.opts.home, cwd, &bound);
        let mut words = Vec::new();
        let mut c = node.walk();
        for v in node.field_children("value", &mut c) {
            let mut subs = Vec::new();
            words.push(words::decode(v, &env, &mut subs)?);
            if !subs.is_empty() {
                return Ok(None);
            }
        }
        Ok(crate::words::loop_binding(&words).map(|segs| (name, segs)))
    }

    /// `for NAME in WORDS` assigns `NAME` each word (`"$@"` without `in`): an assignment,
    /// judged like `NAME=word` (`for LD_PRELOAD in /tmp/x.so; do ls; done` preloads).
    fn loop_assignment(
        &mut self,
        node: Node,
        src: &str,
        cwd: &Cwd,
        frame: &Frame,
    ) -> Result<(), ParseError> {
        if node.kind_name() != "for_statement" {
            return Ok(());
        }
        let Some(var) = node.field_child("variable") else {
            return Ok(());
        };
        let name = src[var.byte_range()].to_string();
        let bound = self.bound.clone();
        let env = WordEnv::new(src, &self.opts.home, cwd, &bound);
        let mut proto = Proto::new(node, src, cwd, frame);
        let mut c = node.walk();
        let mut subs = Vec::new();
        for v in node.field_children("value", &mut c) {
            proto
                .env
                .push((name.clone(), words::decode(v, &env, &mut subs)?));
        }
        if proto.env.is_empty() {
            proto.env.push((name, Decoded::opaque("\"$@\"")));
        }
        // The words' substitutions are walked with the loop's other parts.
        self.emit(proto, src)
    }

    /// True if function `from` runs function `to`, directly or through other functions.
    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(f) = stack.pop() {
            for callee in self.functions.get(&f).into_iter().flatten() {
                if callee == to {
                    return true;
                }
                if seen.insert(callee.clone()) {
                    stack.push(callee.clone());
                }
            }
        }
        false
    }

    /// Emits a command after unwrapping wrappers and re-parsing payloads.
    pub fn emit(&mut self, proto: Proto, src: &str) -> Result<(), ParseError> {
        let _ = src;
        let mut pending = vec![proto];
        while let Some(p) = pending.pop() {
            // `sudo sudo … ls`: each command of a chain carries the wrappers outside it.
            if p.structure.wrappers.len() > self.opts.max_wrappers {
                return Err(ParseError::TooDeep {
                    max: self.opts.max_wrappers,
                });
            }
            let room = crate::wrappers::Room {
                commands: self.opts.max_commands.saturating_sub(self.out.len()),
                words: self.opts.max_words.saturating_sub(self.words),
            };
            match crate::wrappers::unwrap(p, self.knowledge, room).map_err(|r| self.refusal(r))? {
                Unwrapped::Plain(p) => {
                    self.room_for_a_command(&p)?;
                    self.out.push(command::finish(p, self.knowledge));
                }
                Unwrapped::Split {
                    outer,
                    inners,
                    payloads,
                } => {
                    self.room_for_a_command(&outer)?;
                    self.out.push(command::finish(outer, self.knowledge));
                    for pl in payloads {
                        self.payload(pl)?;
                    }
                    // Inner commands may be wrappers themselves; keep source order.
                    pending.extend(inners.into_iter().rev());
                }
            }
        }
        Ok(())
    }

    /// Refuses a command past [`ParseOptions::max_commands`]: each command becomes facts
    /// and Cedar requests, so a script's decision costs in proportion to its commands (a
    /// megabyte of `a;a;…` is half a million of them: seconds and a gigabyte to decide).
    ///
    /// Counts its words against [`ParseOptions::max_words`] too: a command's words, its
    /// environment assignments and its redirects, which each command it runs carries again
    /// (`V0=1 … V19999=1 awk 'system(…)' …` makes 4,000 commands of 20,000 assignments each:
    /// unbounded, 91 seconds and 15 GB to decide).
    fn room_for_a_command(&mut self, p: &Proto) -> Result<(), ParseError> {
        if self.out.len() >= self.opts.max_commands {
            return Err(self.refusal(crate::wrappers::NoRoom::Commands));
        }
        self.words += p.weight();
        if self.words > self.opts.max_words {
            return Err(self.refusal(crate::wrappers::NoRoom::Words));
        }
        Ok(())
    }

    /// The error for a script without room for more commands or words.
    fn refusal(&self, why: crate::wrappers::NoRoom) -> ParseError {
        match why {
            crate::wrappers::NoRoom::Commands => ParseError::TooManyCommands {
                max: self.opts.max_commands,
            },
            crate::wrappers::NoRoom::Words => ParseError::TooManyWords {
                max: self.opts.max_words,
            },
        }
    }

    /// Re-parses a literal payload (`bash -c STR`, `eval`, `ssh host CMD`, ...) one level deeper.
    fn payload(&mut self, p: Payload) -> Result<(), ParseError> {
        let mut f = p.frame;
        f.structure.nesting_depth += 1;
        f.span_override = Some(p.span);
        self.enter()?;
        let r = self.script(&p.text, &p.cwd, &f);
        self.depth -= 1;
        r.map(|_| ())
    }
}

fn body_of(node: Node) -> Option<Node> {
    node.field_child("body")
}

fn redirect_nodes(node: Node) -> Vec<Node> {
    let mut out = Vec::new();
    for (field, k) in node.fielded_children() {
        if field == Some("redirect") || k.kind_name() == "herestring_redirect" {
            out.push(k);
        }
    }
    out
}

/// A list (`a && b || c`, nested to the left by tree-sitter-bash) as its leftmost
/// statement and its links, `(operator, right side)`, last link first. Followed in a loop:
/// a generated chain of hundreds of links is not a recursion that deep.
fn list_spine<'t>(
    node: Node<'t>,
    src: &str,
) -> Result<(Node<'t>, Vec<(String, Node<'t>)>), ParseError> {
    let mut links = Vec::new();
    let mut cur = node;
    loop {
        let (left, op, right) = list_parts(cur, src)?;
        links.push((op, right));
        if left.kind_name() == "list" {
            cur = left;
        } else {
            return Ok((left, links));
        }
    }
}

/// A list, or a redirected one.
fn is_list(e: &Node) -> bool {
    e.kind_name() == "list"
        || (e.kind_name() == "redirected_statement"
            && body_of(*e).is_some_and(|b| b.kind_name() == "list"))
}

/// Refuses a list anywhere in a pipeline but its first element (which
/// [`Walker::pipeline`] reads as bash does).
fn no_list_after_first(elems: &[Node], src: &str) -> Result<(), ParseError> {
    match elems.iter().skip(1).find(|e| is_list(e)) {
        Some(e) => Err(ParseError::unsupported(
            "list inside a pipeline",
            e.start_byte(),
            e.end_byte(),
            src,
        )),
        None => Ok(()),
    }
}

fn list_parts<'t>(node: Node<'t>, src: &str) -> Result<(Node<'t>, String, Node<'t>), ParseError> {
    let mut c = node.walk();
    let kids: Vec<Node> = node
        .children(&mut c)
        .filter(|k| !is_trivia(k.kind_name()))
        .collect();
    match (kids.first(), kids.get(1), kids.get(2), kids.len()) {
        (Some(l), Some(op), Some(r), 3) => Ok((*l, op.kind_name().to_string(), *r)),
        _ => Err(ParseError::unsupported(
            "list",
            node.start_byte(),
            node.end_byte(),
            src,
        )),
    }
}

/// The cwd the right side of `l OP r` starts in.
fn after_op(op: &str, l: &Outcome) -> Cwd {
    match op {
        "&&" => l.ok.clone(),
        "||" => l.err.clone(),
        _ => l.any(),
    }
}

fn combine(op: &str, l: &Outcome, r: Outcome) -> Outcome {
    match op {
        "&&" => Outcome {
            ok: r.ok,
            err: join(&l.err, &r.err),
        },
        "||" => Outcome {
            ok: join(&l.ok, &r.ok),
            err: r.err,
        },
        _ => r,
    }
}

/// The command and process substitutions inside `node`, outermost only (what they hold is
/// walked when they are), in the order they are written.
fn collect_nested_subs<'t>(node: Node<'t>, subs: &mut Vec<Node<'t>>) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if matches!(
            n.kind_name(),
            "command_substitution" | "process_substitution"
        ) {
            subs.push(n);
            continue;
        }
        // Children pushed last first: substitutions come out in the order they are written.
        let mut c = n.walk();
        let kids: Vec<_> = n.children(&mut c).collect();
        stack.extend(kids.into_iter().rev());
    }
}

fn assignment<'t>(
    node: Node<'t>,
    env: &WordEnv,
    subs: &mut Vec<Node<'t>>,
) -> Result<(String, Decoded), ParseError> {
    let name_node = node.field_child("name");
    // `a[$(cmd)]=1`: a substitution in the subscript runs.
    if let Some(n) = name_node.filter(|n| n.kind_name() == "subscript") {
        words::collect_subs(n, subs);
    }
    let name = name_node
        .map(|n| env.src[n.byte_range()].to_string())
        .unwrap_or_default();
    let value = match node.field_child("value") {
        Some(v) => words::decode(v, env, subs)?,
        None => Decoded::literal(""),
    };
    Ok((name, value))
}

/// `Some(Some(n))` for a word of digits (a descriptor when it touches a redirection),
/// `Some(None)` for a named descriptor `{var}`, `None` for anything else.
fn descriptor_word(text: &str) -> Option<Option<u32>> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a descriptor: treat it as reserved.
        return Some(text.parse().ok());
    }
    let name = text.strip_prefix('{')?.strip_suffix('}')?;
    let ident = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    ident.then_some(None)
}

/// The word that ends right at byte `end` (no blank between), or "".
fn preceding_word(src: &str, end: usize) -> &str {
    let before = &src.as_bytes()[..end];
    let start = before
        .iter()
        .rposition(|b| b.is_ascii_whitespace() || b";&|()<>`\"'".contains(b))
        .map_or(0, |i| i + 1);
    &src[start..end]
}

/// The highest descriptor a command may name in a redirection. Bash keeps its own
/// descriptors at 10 and above (`F_DUPFD` from 10 when it saves one), the session's input
/// among them.
const MAX_USER_DESCRIPTOR: u32 = 9;

/// Refuses a redirection that names a descriptor the shell keeps for itself, or one that
/// is only known when it runs (`<&$fd`).
fn check_descriptors(r: &ProtoRedirect, node: Node, src: &str) -> Result<(), ParseError> {
    let refuse = |d: &str| {
        Err(ParseError::reserved_descriptor(
            d,
            node.start_byte(),
            node.end_byte(),
            src,
        ))
    };
    if let Some(fd) = r.fd.filter(|&fd| fd > MAX_USER_DESCRIPTOR) {
        return refuse(&fd.to_string());
    }
    if r.kind != RedirectKind::Dup {
        return Ok(());
    }
    match r.target.literal_value() {
        None => refuse(&r.target.raw),
        Some(t) => {
            let digits = t.strip_suffix('-').unwrap_or(&t);
            match digits.parse::<u64>() {
                Ok(n) if n > u64::from(MAX_USER_DESCRIPTOR) => refuse(&t),
                _ => Ok(()),
            }
        }
    }
}

fn redirect_kind(op: &str, target: &Decoded) -> RedirectKind {
    let t = target.literal_value();
    // `-` closes; `N` duplicates; `N-` moves (duplicates, then closes N).
    let is_fd = t.as_deref().is_some_and(|t| {
        let digits = t.strip_suffix('-').unwrap_or(t);
        t == "-" || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    });
    match op {
        ">>" | "&>>" => RedirectKind::Append,
        "<" => RedirectKind::Read,
        "<>" => RedirectKind::ReadWrite,
        "<&" | "<&-" | ">&-" => RedirectKind::Dup,
        ">&" if is_fd => RedirectKind::Dup,
        _ => RedirectKind::Write,
    }
}

fn is_trivia(kind: &str) -> bool {
    kind == "comment"
}

pub(crate) fn display_name(c: &Command) -> String {
    c.program.entity_id()
}

/// How many times `name` occurs in `text` as a whole identifier whose preceding text
/// satisfies `preceded`.
fn count_word(text: &str, name: &str, preceded: impl Fn(&str) -> bool) -> usize {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name)
        .filter(|(i, _)| {
            let before = text[..*i].chars().next_back();
            let after = text[i + name.len()..].chars().next();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident) && preceded(&text[..*i])
        })
        .count()
}

/// True if `node` is a loop that never ends by itself: `while true|:`, `until false`,
/// `for ((;;))`.
fn is_endless(node: Node, src: &str) -> bool {
    match node.kind_name() {
        "while_statement" => {
            let Some(cond) = node.field_child("condition") else {
                return false;
            };
            let text = src[cond.byte_range()].trim().trim_end_matches(';').trim();
            let until = src[node.byte_range()].trim_start().starts_with("until");
            if until {
                text == "false"
            } else {
                matches!(text, "true" | ":" | "[ 1 ]" | "[[ 1 ]]" | "((1))")
            }
        }
        "c_style_for_statement" => node.field_child("condition").is_none(),
        _ => false,
    }
}

/// True if a loop body may change directory (`cd`, `pushd`, `popd`, or something that can
/// hide one such as `eval`/`source`), outside subshells.
fn changes_dir(node: Node, src: &str) -> bool {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if matches!(
            n.kind_name(),
            "subshell" | "command_substitution" | "process_substitution"
        ) {
            continue;
        }
        if n.kind_name() == "command_name" {
            let t = src[n.byte_range()].replace(['\'', '"', '\\'], "");
            let t = t.as_str();
            if matches!(
                t,
                "cd" | "pushd" | "popd" | "eval" | "source" | "." | "builtin" | "command" | "exec"
            ) || t.starts_with('$')
            {
                return true;
            }
        }
        let mut c = n.walk();
        stack.extend(n.children(&mut c));
    }
    false
}
