//! Why a script was rejected. Every variant means "deny": the engine never guesses.

use thiserror::Error;

/// A script the grammar refuses to turn into commands.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// `\r`, NUL or another C0 control character (tab and newline are allowed). Terminals and
    /// logs render these differently from how bash reads them, so they are never accepted.
    #[error("control character {byte:#04x} at byte {offset} is not allowed in commands")]
    ControlChar {
        /// Byte offset in the script.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// tree-sitter found an `ERROR` or `MISSING` node.
    #[error("syntax error at line {line}, column {column} (bytes {start}..{end}): {message}")]
    Syntax {
        /// First byte of the offending node.
        start: usize,
        /// One past its last byte.
        end: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column (in bytes).
        column: usize,
        /// What was wrong, with a snippet.
        message: String,
    },
    /// A construct the extractor does not understand; refusing is safer than guessing.
    #[error("unsupported construct `{kind}` at bytes {start}..{end}: {snippet}")]
    Unsupported {
        /// tree-sitter node kind.
        kind: String,
        /// First byte.
        start: usize,
        /// One past the last byte.
        end: usize,
        /// Up to 60 characters of the source.
        snippet: String,
    },
    /// A redirection names a descriptor of 10 or above, a computed one, or a named one
    /// (`{var}>`). Bash keeps its own descriptors there (the saved input of the session
    /// among them), so a command that reaches them could read or forge what the session
    /// alone may send the shell.
    #[error("file descriptor `{descriptor}` at bytes {start}..{end} is not available to commands (descriptors 10 and above, computed and named ones are the shell's own): {snippet}")]
    ReservedDescriptor {
        /// The descriptor as written.
        descriptor: String,
        /// First byte.
        start: usize,
        /// One past the last byte.
        end: usize,
        /// Up to 60 characters of the source.
        snippet: String,
    },
    /// The script is larger than the configured maximum.
    #[error("script is {len} bytes, more than the maximum of {max} (the operator's `[limits] max_script_bytes`)")]
    TooLarge {
        /// Script length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Nesting (syntax, `bash -c` re-parses, or wrappers around one command) deeper than the
    /// maximum.
    #[error("script nests deeper than {max} levels")]
    TooDeep {
        /// Limit.
        max: usize,
    },
    /// A pipeline too large to analyse: each of its commands is told the programs up- and
    /// downstream of it, so the work (and the commands' structure) grows with its commands
    /// times its distinct programs; past the maximum it is refused, not analysed for minutes
    /// (a megabyte of `a0 | a1 | …` would take hours).
    #[error("pipeline of {commands} commands in {elements} parts with {programs} distinct programs is too large to analyse ({pairs} command-program pairs, more than the maximum of {max})")]
    PipelineTooLarge {
        /// Commands in the pipeline, nested ones included.
        commands: usize,
        /// Its parts (the commands and groups between the `|`s).
        elements: usize,
        /// Distinct program names in it.
        programs: usize,
        /// `(commands + elements) × programs`: the analysis's work.
        pairs: usize,
        /// Limit.
        max: usize,
    },
    /// More commands than the maximum (those of `bash -c` payloads and wrappers' inner
    /// commands included): each is judged on its own, so the decision's work grows with
    /// them.
    #[error("script has more than {max} commands, the most one decision judges (the operator's `[limits] max_script_commands`)")]
    TooManyCommands {
        /// Limit.
        max: usize,
    },
    /// More words in the script's commands than the maximum: arguments, environment
    /// assignments and redirects, counted for each command they apply to (commands a
    /// command runs carry its environment and redirects again).
    #[error("script has more than {max} words in its commands (arguments, assignments and redirects, counted for each command they apply to)")]
    TooManyWords {
        /// Limit.
        max: usize,
    },
    /// Lines too long and too full of `$`, backquotes or backslashes to read: the parser
    /// re-reads a here-document's line from its start at each of them.
    #[error("script's lines are too long and hold too many `$`, backquotes or backslashes to read (more than {max} bytes re-read)")]
    LinesTooDense {
        /// Limit: such bytes times their line's length, summed.
        max: u64,
    },
    /// The script takes the parser more work to read than the maximum (counted in its
    /// progress reports, one about every hundred operations): a dense script of many tiny
    /// tokens is refused before its parse costs seconds and gigabytes.
    #[error("script is too complex to read (more than {max_steps} parser steps; the operator's `[limits] max_parse_steps`)")]
    TooComplex {
        /// Limit.
        max_steps: usize,
    },
    /// The parser produced no tree (cancelled or out of memory).
    #[error("the bash parser produced no syntax tree")]
    NoTree,
    /// The program knowledge file did not load: without it nothing can be judged.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
}

pub(crate) fn snippet(src: &str, start: usize, end: usize) -> String {
    let s = src.get(start..end.min(src.len())).unwrap_or("");
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

impl ParseError {
    pub(crate) fn reserved_descriptor(
        descriptor: &str,
        start: usize,
        end: usize,
        src: &str,
    ) -> Self {
        ParseError::ReservedDescriptor {
            descriptor: descriptor.to_string(),
            start,
            end,
            snippet: snippet(src, start, end),
        }
    }

    pub(crate) fn unsupported(kind: &str, start: usize, end: usize, src: &str) -> Self {
        ParseError::Unsupported {
            kind: kind.to_string(),
            start,
            end,
            snippet: snippet(src, start, end),
        }
    }
}

/// Why the knowledge file did not load.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KnowledgeError {
    /// The file is not valid TOML or does not have the expected shape.
    #[error("program knowledge (programs.toml) does not parse: {0}")]
    Toml(String),
    /// Two entries name the same program.
    #[error("program knowledge (programs.toml) names `{0}` in two entries")]
    DuplicateName(String),
    /// An option is listed both as taking a value and as taking code.
    #[error("program knowledge (programs.toml): option `{option}` of `{program}` is listed twice")]
    DuplicateOption {
        /// The program entry (its first name).
        program: String,
        /// The option.
        option: String,
    },
    /// An entry has no example.
    #[error("program knowledge (programs.toml): the entry for `{0}` has no example")]
    NoExample(String),
    /// The exec-capable options do not load.
    #[error("exec-option knowledge (exec_options.toml): {0}")]
    ExecOptions(String),
    /// The implicit effects do not load.
    #[error("implicit-effect knowledge (effects.toml): {0}")]
    Effects(String),
    /// The destination knowledge does not load.
    #[error("destination knowledge (destinations.toml): {0}")]
    Destinations(String),
    /// The inert variable values do not load.
    #[error("environment value knowledge (env_values.toml): {0}")]
    EnvValues(String),
    /// The read-only option table does not load.
    #[error("read-only option knowledge (readonly.toml): {0}")]
    Readonly(String),
}
