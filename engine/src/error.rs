//! Why a policy set could not be loaded. The engine refuses to start on any of these.

use thiserror::Error;

/// A policy set that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The schema does not parse.
    #[error("schema {file}: {message}")]
    Schema {
        /// Schema file name.
        file: String,
        /// Parser message.
        message: String,
    },
    /// A policy file does not parse.
    #[error("policy file {file}: {message}")]
    Policy {
        /// Policy file name.
        file: String,
        /// Parser message.
        message: String,
    },
    /// Two policies share an `@id`.
    #[error("duplicate policy id `{0}` (ids come from @id annotations and must be unique)")]
    DuplicateId(String),
    /// Strict validation against the schema failed.
    #[error("policy set does not validate against the schema (strict mode):\n{}", .0.join("\n"))]
    Validation(Vec<String>),
    /// The entities file is invalid.
    #[error("entities: {0}")]
    Entities(String),
    /// A template link is invalid.
    #[error("template links: {0}")]
    Links(String),
    /// The set has no policies at all (everything would be denied; almost certainly a mistake).
    #[error("the policy set contains no policies")]
    Empty,
    /// A policy directory or one of its files cannot be read.
    #[error("cannot read the policy {what} {path}")]
    Io {
        /// What it is: `directory` or `file`.
        what: &'static str,
        /// The file or directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A policy directory holds no `.cedar` file.
    #[error("{0} contains no .cedar files")]
    NoPolicyFiles(String),
    /// No shipped set has this name.
    #[error("no embedded policy set named `{0}` (try default or strict)")]
    UnknownSet(String),
    /// The grammar's program knowledge did not load: nothing could be judged.
    #[error(transparent)]
    Knowledge(#[from] execkit_grammar::knowledge::KnowledgeError),
}
