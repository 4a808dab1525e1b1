//! The types the walk, the command builder and the wrapper unwrapping share: a command
//! whose words are decoded but not yet finished ([`Proto`]), what flows down the tree
//! ([`Frame`]), how a statement leaves the cwd ([`Outcome`]) and what unwrapping a wrapper
//! yields ([`Unwrapped`]). Kept in this leaf module so that `walk` → `wrappers` →
//! `command` depend on it and on each other one way only.

use crate::ir::{Cwd, PathRef, RedirectKind, Span, Structure};
use crate::words::Decoded;
use std::collections::BTreeSet;
use tree_sitter::Node;

const MAX_CWD_CANDIDATES: usize = 4;

pub(crate) fn join(a: &Cwd, b: &Cwd) -> Cwd {
    match (a, b) {
        (Cwd::Known(x), Cwd::Known(y)) => {
            if x.len() <= MAX_CWD_CANDIDATES && y.iter().all(|p| x.contains(p)) {
                return a.clone();
            }
            let mut v = x.to_vec();
            for p in y.iter() {
                if !v.contains(p) {
                    v.push(p.clone());
                }
            }
            if v.len() > MAX_CWD_CANDIDATES {
                Cwd::Unknown
            } else {
                Cwd::Known(v.into())
            }
        }
        _ => Cwd::Unknown,
    }
}

/// A redirect whose target is decoded but not yet resolved.
#[derive(Debug, Clone)]
pub(crate) struct ProtoRedirect {
    pub op: String,
    pub fd: Option<u32>,
    pub kind: RedirectKind,
    pub target: Decoded,
    /// Programs run by substitutions inside the target.
    pub sub_programs: BTreeSet<String>,
}

/// A command whose words are decoded, before wrappers are stripped.
#[derive(Debug, Clone)]
pub(crate) struct Proto {
    pub span: Span,
    pub text: std::sync::Arc<str>,
    pub argv: Vec<Decoded>,
    /// Per-argv-index paths decided by a wrapper (e.g. `find -exec rm {}`: under the start points).
    pub fixed_paths: Vec<(usize, Vec<PathRef>)>,
    pub env: Vec<(String, Decoded)>,
    pub env_cleared: bool,
    pub redirects: Vec<ProtoRedirect>,
    pub cwd: Cwd,
    pub structure: Structure,
    pub sub_programs: BTreeSet<String>,
    /// What arrives on stdin through a pipe, when known (redirects are in `redirects`).
    pub stdin: Option<Stdin>,
}

/// What a command's standard input carries through a pipe.
#[derive(Debug, Clone)]
pub(crate) enum Stdin {
    /// Text written literally in the script (`echo 'ls -la' | sh`).
    Literal(String),
    /// Output the grammar cannot read (`base64 -d x | sh`, `cat f | python3`): a label for
    /// where it comes from.
    Computed(String),
    /// Paths below known roots, one per line (`find src -name '*.o' | ...`): each word is a
    /// root followed by a glob. Still computed text for an interpreter.
    Paths(String, Vec<crate::words::Decoded>),
}

impl Proto {
    pub fn new(node: Node, src: &str, cwd: &Cwd, frame: &Frame) -> Self {
        let span = frame.span_override.unwrap_or(Span {
            start: node.start_byte(),
            end: node.end_byte(),
        });
        let mut structure = frame.structure.clone();
        structure
            .input_sources
            .extend(frame.payload_sources.iter().cloned());
        if structure.pipeline_length == 0 {
            structure.pipeline_length = 1;
        }
        Proto {
            span,
            text: std::sync::Arc::from(&src[node.byte_range()]),
            argv: Vec::new(),
            fixed_paths: Vec::new(),
            env: Vec::new(),
            env_cleared: false,
            redirects: frame.redirects.clone(),
            cwd: cwd.clone(),
            structure,
            sub_programs: BTreeSet::new(),
            stdin: frame.stdin.clone(),
        }
    }

    /// Its words as the script's word budget counts them: arguments, environment
    /// assignments, redirects (each command carries its own copy).
    pub fn weight(&self) -> usize {
        self.argv.len() + self.env.len() + self.redirects.len()
    }

    /// The literal name of `argv[0]`, if literal.
    pub fn name(&self) -> Option<String> {
        self.argv.first().and_then(Decoded::literal_value)
    }

    /// A copy carrying the same context but a different argv.
    pub fn with_argv(&self, argv: Vec<Decoded>) -> Proto {
        // Field by field: `..self.clone()` would copy the old argv too, only to drop it (a
        // command of n words hiding n commands would cost the square of its words).
        Proto {
            span: self.span,
            text: self.text.clone(),
            argv,
            fixed_paths: Vec::new(),
            env: self.env.clone(),
            env_cleared: self.env_cleared,
            redirects: self.redirects.clone(),
            cwd: self.cwd.clone(),
            structure: self.structure.clone(),
            sub_programs: self.sub_programs.clone(),
            stdin: self.stdin.clone(),
        }
    }
}

/// How a statement can leave the cwd: if it succeeded, and if it failed.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub ok: Cwd,
    pub err: Cwd,
}

impl Outcome {
    pub(crate) fn same(c: &Cwd) -> Self {
        Outcome {
            ok: c.clone(),
            err: c.clone(),
        }
    }
    pub(crate) fn any(&self) -> Cwd {
        join(&self.ok, &self.err)
    }
}

/// What flows down the tree: where we are and what surrounds us.
#[derive(Debug, Clone, Default)]
pub(crate) struct Frame {
    pub structure: Structure,
    pub redirects: Vec<ProtoRedirect>,
    /// For re-parsed payloads: the span of the payload word in the top-level script.
    pub span_override: Option<Span>,
    /// Programs that produced the text being re-parsed (they become input sources).
    pub payload_sources: BTreeSet<String>,
    /// What stdin carries here (inherited by everything inside, replaced by a pipe).
    pub stdin: Option<Stdin>,
}

/// A string to parse as a script one level deeper.
pub(crate) struct Payload {
    pub text: String,
    pub span: Span,
    pub cwd: Cwd,
    pub frame: Frame,
}

/// The result of looking at a command's name.
pub(crate) enum Unwrapped {
    /// Not a wrapper.
    Plain(Proto),
    /// A wrapper: the wrapper itself, the commands it runs, and strings it runs as scripts.
    Split {
        outer: Proto,
        inners: Vec<Proto>,
        payloads: Vec<Payload>,
    },
}
