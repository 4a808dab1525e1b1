//! # execkit-grammar: bash text → command IR
//!
//! execkit authorizes what a command *does*, not how it is spelled. This crate turns a bash
//! script into a flat list of [`Command`]s — one for every simple command wherever it occurs
//! (lists, pipelines, subshells, `{ }` groups, `if`/`while`/`for`/`case` bodies, function
//! bodies, `$( )`, backticks, `<( )`, `>( )`, here-documents, background jobs, negation),
//! with wrappers (`sudo`, `env`, `xargs`, `find -exec`, `timeout`, ...) unwrapped and string
//! payloads (`bash -c`, `eval`, `su -c`, `ssh host CMD`, `watch`, `alias`, `trap`) re-parsed.
//!
//! Words are decoded the way bash decodes them (`\rm`, `r''m`, `"rm"` and `$'\x72m'` are
//! all `rm`), flags are normalized, and path-like words are resolved lexically against a
//! tracked working directory. Anything the parser cannot read — a syntax error, a control
//! character, an unknown construct — is a [`ParseError`], which callers must treat as deny.
//!
//! The crate is pure: no I/O, no environment lookups. The caller says what the cwd and home
//! directory are.
//!
//! ```
//! use execkit_grammar::{parse, ParseOptions, PathRef};
//!
//! let opts = ParseOptions::new(Some("/work"), "/home/agent");
//! let script = parse(r#"cd src && sudo -u root \rm -rf ../build "$OUT""#, &opts).unwrap();
//! let rm = script.commands.iter().find(|c| c.program.is("rm")).unwrap();
//! assert!(rm.flags.contains("-r") && rm.flags.contains("-f"));
//! assert_eq!(rm.structure.wrappers, vec!["sudo"]);
//! assert_eq!(rm.structure.run_as.as_deref(), Some("root"));
//! assert_eq!(rm.args[1].paths, vec![PathRef::Exact("/work/build".into())]);
//! assert_eq!(rm.args[2].paths, vec![PathRef::Anywhere]); // "$OUT" could be anything
//! ```

#![warn(missing_docs)]

mod command;
pub mod destinations;
pub mod effects;
pub mod env_values;
mod error;
pub mod exec_options;
mod ir;
mod kinds;
pub mod knowledge;
mod paths;
mod program;
mod proto;
pub mod readonly;
mod set_vars;
mod stdin;
mod walk;
mod words;
mod wrappers;

/// A `HashMap` with foldhash's seeded hasher, for the tables looked up for every word of
/// every command (SipHash would cost a tenth of a decision).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub use command::is_stack_entry;
pub use error::ParseError;
pub use ir::{
    Assignment, Command, Cwd, Definitions, Dynamic, PathRef, Program, Redirect, RedirectKind,
    Script, Span, Structure, Word,
};
pub use knowledge::is_url;
pub use paths::{ancestors, resolve as resolve_path};
pub use program::program_at;

/// What the parser needs to know about where the script will run.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Canonical absolute cwd the script starts in, or `None` if unknown.
    pub cwd: Option<String>,
    /// The target's home directory (for `~`, `~/x`, `$HOME`).
    pub home: String,
    /// Largest script accepted, in bytes.
    pub max_len: usize,
    /// Deepest syntax nesting accepted (guards the recursive walk).
    pub max_depth: usize,
    /// Deepest payload re-parsing accepted (`bash -c "bash -c '...'"`).
    pub max_nesting: usize,
    /// Largest pipeline accepted, as `(commands + parts) × distinct programs` (see
    /// [`ParseError::PipelineTooLarge`]).
    pub max_pipeline_pairs: usize,
    /// Longest chain of wrappers accepted around one command (`sudo env nice … cmd`, with
    /// the re-parsed payloads' wrappers): each command of the chain carries the wrappers
    /// outside it, so the work grows with the square of the chain.
    pub max_wrappers: usize,
    /// Most commands accepted in one script, payloads' and wrapped ones included (see
    /// [`ParseError::TooManyCommands`]).
    pub max_commands: usize,
    /// Most words in all the script's commands together (see [`ParseError::TooManyWords`]).
    pub max_words: usize,
    /// Most bytes the parser may re-read finding columns in long lines (each `$`,
    /// backquote or backslash times its line's length; see [`ParseError::LinesTooDense`]).
    pub max_line_work: u64,
    /// Most parser steps spent reading a script and its payloads (tree-sitter's progress
    /// reports, one about every hundred operations; see [`ParseError::TooComplex`]).
    pub max_parse_steps: usize,
    /// Aliases and functions the session defined in earlier commands: a command named by
    /// one of those aliases is read as its expansion, and a call of one of those functions
    /// is marked as such (`calls_function`).
    pub known: Definitions,
}

impl ParseOptions {
    /// Options with default limits (1 MiB, depth 200, 8 re-parse levels, pipelines of 16,384
    /// command-program pairs: 90 distinct commands, or 8,192 parts of one program; 32
    /// wrappers around a command; 4,096 commands; 65,536 words in them; 8,192 parser
    /// steps, about 800,000 tree-sitter operations; 64 Mi bytes re-read in dense lines).
    pub fn new(cwd: Option<&str>, home: &str) -> Self {
        ParseOptions {
            cwd: cwd.map(|c| resolve_path("/", c)),
            home: resolve_path("/", home),
            max_len: 1 << 20,
            max_depth: 200,
            max_nesting: 8,
            max_pipeline_pairs: 1 << 14,
            max_wrappers: 32,
            max_commands: 4096,
            max_words: 1 << 16,
            max_line_work: 1 << 26,
            max_parse_steps: 8192,
            known: Definitions::default(),
        }
    }
}

/// Parses a script into the commands it can run.
///
/// Fails closed: any syntax error, control character or construct the extractor does not
/// understand is an error, never a partial result.
pub fn parse(script: &str, opts: &ParseOptions) -> Result<Script, ParseError> {
    if script.len() > opts.max_len {
        return Err(ParseError::TooLarge {
            len: script.len(),
            max: opts.max_len,
        });
    }
    let cwd = match &opts.cwd {
        Some(c) => Cwd::Known([c.clone()].into()),
        None => Cwd::Unknown,
    };
    let mut w = walk::Walker::new(opts)?;
    let frame = proto::Frame {
        structure: Structure {
            pipeline_length: 1,
            ..Structure::default()
        },
        ..proto::Frame::default()
    };
    w.script(script, &cwd, &frame)?;
    Ok(Script {
        commands: std::mem::take(&mut w.out),
        definitions: std::mem::take(&mut w.defined),
    })
}
