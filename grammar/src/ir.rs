//! The command IR: what the rest of execkit knows about a script.
//!
//! A script becomes a flat list of [`Command`]s, one per simple command wherever it occurs
//! (lists, pipelines, subshells, bodies, substitutions, wrapper payloads, `bash -c` strings).
//! Every command carries enough structure (pipeline neighbours, wrappers, nesting, dynamic
//! parts) for a policy to judge it on its own, because Cedar sees one fact at a time.

use serde::Serialize;
use std::collections::BTreeSet;

/// A parsed script: every simple command it can run, in source order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Script {
    /// Every simple command, including those nested in substitutions and wrapper payloads.
    pub commands: Vec<Command>,
    /// The aliases and functions the script defines, for a session to know in its later
    /// commands.
    pub definitions: Definitions,
}

/// Aliases (with their literal bodies) and function names a script defines, or a session
/// knows from its earlier commands.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, Hash)]
pub struct Definitions {
    /// `alias NAME='BODY'`, by name.
    pub aliases: std::collections::BTreeMap<String, String>,
    /// `NAME() { … }`.
    pub functions: BTreeSet<String>,
}

impl Definitions {
    /// Adds `later`'s definitions (a later alias of a name replaces the earlier one).
    pub fn extend(&mut self, later: &Definitions) {
        for (k, v) in &later.aliases {
            self.aliases.insert(k.clone(), v.clone());
        }
        self.functions.extend(later.functions.iter().cloned());
    }
}

/// Byte range in the top-level script text.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// The working directory a command will run in, as far as the text can tell.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", content = "paths", rename_all = "snake_case")]
pub enum Cwd {
    /// One of these canonical absolute directories (more than one when an earlier `cd` may
    /// have failed, e.g. `cd /x; cmd` runs `cmd` in `/x` or where it started).
    ///
    /// Shared: a cwd is copied into every command, outcome and frame of a script.
    Known(std::sync::Arc<[String]>),
    /// Unknowable from the text (`cd "$DIR"`, `cd -`, inside a function body, ...).
    Unknown,
}

impl Cwd {
    /// The first candidate directory, if any is known.
    pub fn primary(&self) -> Option<&str> {
        match self {
            Cwd::Known(v) => v.first().map(String::as_str),
            Cwd::Unknown => None,
        }
    }
}

/// What a path-like word can refer to once resolved against the tracked cwd.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum PathRef {
    /// Exactly this canonical absolute path.
    Exact(String),
    /// Some path strictly below this canonical directory (a glob or brace in the tail).
    Under(String),
    /// Could be anything: a variable or substitution decides it, or the cwd is unknown.
    Anywhere,
}

/// Which kinds of expansion a word contains that the parser cannot evaluate.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Dynamic {
    /// `$VAR`, `${...}` (other than `$HOME`/`$PWD`, which are resolved).
    pub variable: bool,
    /// `$(...)`, backticks, `<(...)`, `>(...)`.
    pub substitution: bool,
    /// `$((...))`.
    pub arithmetic: bool,
    /// Unquoted `*`, `?`, `[...]` or an extglob.
    pub glob: bool,
    /// Unquoted `{a,b}` or `{1..3}`.
    pub brace: bool,
    /// `~user`, `~+`, `~-` (plain `~` and `~/` resolve to the target's home).
    pub tilde: bool,
}

impl Dynamic {
    /// True if any part of the word is not a literal.
    pub fn any(&self) -> bool {
        self.variable
            || self.substitution
            || self.arithmetic
            || self.glob
            || self.brace
            || self.tilde
    }

    /// True if the word's value can be anything at all (not merely a pattern).
    pub fn unbounded(&self) -> bool {
        self.variable || self.substitution || self.arithmetic || self.tilde
    }

    pub(crate) fn merge(&mut self, o: Dynamic) {
        self.variable |= o.variable;
        self.substitution |= o.substitution;
        self.arithmetic |= o.arithmetic;
        self.glob |= o.glob;
        self.brace |= o.brace;
        self.tilde |= o.tilde;
    }
}

/// One word of a command after quote removal and escape decoding.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Word {
    /// Source text exactly as written.
    pub raw: String,
    /// Value after quote removal, escape decoding, `~`/`$HOME`/`$PWD` resolution; dynamic parts
    /// are kept as their source text.
    pub value: String,
    /// What is not literal in it.
    pub dynamic: Dynamic,
    /// Where it points if it is path-like (one entry per cwd candidate, deduplicated).
    pub paths: Vec<PathRef>,
}

impl Word {
    /// True if the word has no dynamic part.
    pub fn is_literal(&self) -> bool {
        !self.dynamic.any()
    }
}

/// `NAME=value` given as a prefix, via `env`, or by `export`/`declare`/a bare assignment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Assignment {
    /// Variable name.
    pub name: String,
    /// Value as a word (may be dynamic).
    pub value: Word,
}

/// How a redirection uses its target.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RedirectKind {
    /// `>`, `>|`, `&>`, `>&file`.
    Write,
    /// `>>`, `&>>`.
    Append,
    /// `<`.
    Read,
    /// `<>`.
    ReadWrite,
    /// `2>&1`, `>&2`, `<&0`, `>&-`: duplicates or closes a descriptor, no path involved.
    Dup,
    /// `<<EOF`: a here-document (its text is the input).
    Heredoc,
    /// `<<<word`: a here-string.
    Herestring,
}

/// One redirection attached to a command (or to the compound statement around it).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Redirect {
    /// Operator as written: `>`, `>>`, `<`, `2>`, `&>`, `<<`, ...
    pub op: String,
    /// Explicit descriptor number before the operator, if any.
    pub fd: Option<u32>,
    /// Classification of the operator.
    pub kind: RedirectKind,
    /// The target word (a path, a descriptor number, a here-string, or the heredoc body).
    pub target: Word,
}

/// Where a command sits in the script, and what surrounds it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, Hash)]
pub struct Structure {
    /// 0-based position in its pipeline.
    pub pipeline_index: usize,
    /// 1 when not in a pipeline.
    pub pipeline_length: usize,
    /// Programs whose stdout reaches this command's stdin through `|`.
    pub upstream: BTreeSet<String>,
    /// Programs reading this command's stdout through `|`.
    pub downstream: BTreeSet<String>,
    /// `upstream` plus programs inside substitutions in its args/redirects, plus the program
    /// that produced the text for a re-parsed payload.
    pub input_sources: BTreeSet<String>,
    /// Inside `( ... )`.
    pub in_subshell: bool,
    /// This command itself runs inside `$(..)`, backticks, `<(..)` or `>(..)`.
    pub in_substitution: bool,
    /// Inside a function body (runs when called, in the caller's cwd).
    pub in_function: bool,
    /// The command calls a shell function defined earlier in the script or in the session
    /// (its body was judged where it was defined; a function shadows a program of its name).
    pub calls_function: bool,
    /// Some argument or redirect target contains a command substitution.
    pub args_have_substitution: bool,
    /// Some argument or redirect target has a dynamic part.
    pub dynamic_args: bool,
    /// Some argument or redirect target has a part whose value is unbounded: a variable,
    /// substitution, arithmetic or `~user` (globs and braces are bounded by their literal
    /// directory and do not count).
    pub unbounded_args: bool,
    /// The command name is not a literal word.
    pub dynamic_command: bool,
    /// Runs in the background (`&`).
    pub background: bool,
    /// Negated with `!`.
    pub negated: bool,
    /// Wrapper programs stripped to reach this command, outermost first (`sudo`, `env`, `xargs`,
    /// `find -exec`, `bash -c`, `eval`, ...).
    pub wrappers: Vec<String>,
    /// Reached through `sudo`, `doas`, `su`, `pkexec` or `run0`.
    pub sudo: bool,
    /// Target user of `sudo -u` / `doas -u` / `su USER`.
    pub run_as: Option<String>,
    /// 0 at top level; +1 for each re-parse (`bash -c`, `eval`, `ssh host CMD`, `watch`, ...).
    pub nesting_depth: usize,
}

/// What runs: the identity of a command's program.
///
/// ```
/// use execkit_grammar::Program;
/// assert_eq!(Program::Literal("rm".into()).base_name(), "rm");
/// assert_eq!(Program::Path("/work/bin/cat".into()).base_name(), "cat");
/// assert_eq!(Program::Path("/work/bin/cat".into()).entity_id(), "path:/work/bin/cat");
/// assert_eq!(Program::Dynamic.entity_id(), "(dynamic)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Program {
    /// A name looked up in `PATH`, or a program in a system bin dir (`/usr/bin/rm` is `rm`).
    Literal(String),
    /// A program named by another path: canonical absolute when the cwd is known, as written
    /// otherwise (`./node_modules/.bin/jest`).
    Path(String),
    /// The command word is not a literal (`$CMD`, `$(which x)`): unknowable.
    Dynamic,
    /// No command at all: a bare assignment (`X=1`) or redirections alone.
    Assignment,
}

impl Program {
    /// The program's file name: the literal name, the last component of a path, `""` for a
    /// dynamic command and `(assignment)` for a bare assignment. Program knowledge is keyed
    /// by this name.
    pub fn base_name(&self) -> &str {
        match self {
            Program::Literal(n) => n,
            Program::Path(p) => p.rsplit('/').next().unwrap_or(p),
            Program::Dynamic => "",
            Program::Assignment => "(assignment)",
        }
    }

    /// The id of its Cedar `Program` entity: `ls`, `path:/abs/prog`, `(dynamic)` or
    /// `(assignment)`.
    pub fn entity_id(&self) -> String {
        match self {
            Program::Dynamic => "(dynamic)".to_string(),
            other => other.to_string(),
        }
    }

    /// True for a non-literal command word.
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Program::Dynamic)
    }

    /// True if this is the shell builtin or PATH program `name` (not a path to one).
    pub fn is(&self, name: &str) -> bool {
        matches!(self, Program::Literal(n) if n == name)
    }
}

/// `ls`, `path:/abs/prog`, the empty string for a dynamic command, `(assignment)`.
impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Program::Literal(n) => f.write_str(n),
            Program::Path(p) => write!(f, "path:{p}"),
            Program::Dynamic => Ok(()),
            Program::Assignment => f.write_str("(assignment)"),
        }
    }
}

impl Serialize for Program {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One simple command, with its words decoded and its context attached.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Command {
    /// Where it is in the top-level script (for a re-parsed payload: the payload's word).
    pub span: Span,
    /// Source text of the command as written.
    pub text: std::sync::Arc<str>,
    /// The command word, decoded (e.g. `./node_modules/.bin/jest`).
    pub argv0: Word,
    /// What runs (see [`Program`]).
    pub program: Program,
    /// `argv[1..]`, decoded.
    pub args: Vec<Word>,
    /// Normalized flags: `-rf` gives `-rf`, `-r`, `-f`; `--out=x` gives `--out`.
    pub flags: BTreeSet<String>,
    /// Arguments that are not flags, in order (`--` ends flags).
    pub positionals: Vec<String>,
    /// First positional (e.g. git `push`, docker `run`).
    pub subcommand: Option<String>,
    /// Assignments in effect for this command (`X=1 cmd`, `env X=1 cmd`, `export X=1`).
    pub env: Vec<Assignment>,
    /// `env -i` was used.
    pub env_cleared: bool,
    /// Redirections on the command and on compound statements around it.
    pub redirects: Vec<Redirect>,
    /// Where it runs.
    pub cwd: Cwd,
    /// Its place in the script.
    pub structure: Structure,
}
