//! Which options keep a read-only tool read-only (`knowledge/readonly.toml`).
//!
//! Read-only is a property of a use, not of a program: `tree .` reads, `tree -o FILE .`
//! writes. An entry lists the options (or `"*"`: all of them) with which a program still
//! only reads, and how many operands it may have (`uniq IN OUT` writes OUT). A program
//! without an entry is read-only only when given no options: an option the knowledge does
//! not list is taken to do anything (the closed world). Policies see the answer as
//! `context.options_listed`.

use crate::error::KnowledgeError;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

/// A case: a command and whether it is a listed (read-only) use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadonlyCase {
    /// The script (one command).
    pub script: String,
    /// True if every option (and the operand count) is listed.
    pub listed: bool,
}

/// The options of an entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Options {
    /// `"*"`: every option.
    All(String),
    /// The options, as written (`-l`, `--color`).
    Listed(Vec<String>),
}

/// One entry of the data file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadonlyTool {
    /// Program base names.
    pub programs: Vec<String>,
    options: Options,
    /// The most operands a read-only use has.
    #[serde(default)]
    pub operands: Option<usize>,
    /// Cases: at least one listed use and, for a restricted entry, one that is not.
    pub cases: Vec<ReadonlyCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    #[serde(rename = "tool")]
    tools: Vec<ReadonlyTool>,
}

/// What one program keeps read-only.
#[derive(Debug, Clone, Default)]
struct Entry {
    /// `None`: every option.
    options: Option<BTreeSet<String>>,
    operands: Option<usize>,
}

/// The read-only option table.
#[derive(Debug, Default)]
pub struct ReadonlyOptions {
    tools: Vec<ReadonlyTool>,
    by_program: HashMap<String, Entry>,
}

impl ReadonlyOptions {
    /// Parses and checks the data file.
    pub fn from_toml(text: &str) -> Result<ReadonlyOptions, KnowledgeError> {
        let f: File = toml::from_str(text).map_err(|e| KnowledgeError::Readonly(e.to_string()))?;
        let mut by_program = HashMap::new();
        for t in &f.tools {
            let restricted = matches!(t.options, Options::Listed(_)) || t.operands.is_some();
            let has = |listed: bool| t.cases.iter().any(|c| c.listed == listed);
            if !has(true) || (restricted && !has(false)) {
                return Err(KnowledgeError::Readonly(format!(
                    "{:?}: needs a listed case, and one that is not when options or operands are restricted",
                    t.programs
                )));
            }
            let options = match &t.options {
                Options::All(s) if s == "*" => None,
                Options::All(s) => {
                    return Err(KnowledgeError::Readonly(format!(
                        "{:?}: options are \"*\" or a list, not {s:?}",
                        t.programs
                    )))
                }
                Options::Listed(v) => Some(v.iter().cloned().collect()),
            };
            for p in &t.programs {
                let entry = Entry {
                    options: options.clone(),
                    operands: t.operands,
                };
                if by_program.insert(p.clone(), entry).is_some() {
                    return Err(KnowledgeError::Readonly(format!("`{p}` has two entries")));
                }
            }
        }
        Ok(ReadonlyOptions {
            tools: f.tools,
            by_program,
        })
    }

    /// Every entry (for the tests of their cases).
    pub fn tools(&self) -> &[ReadonlyTool] {
        &self.tools
    }

    /// True if `program` with these normalized flags (`-la` also as `-l`, `-a`;
    /// `--color=auto` as `--color`) and this many operands is a use its entry lists; a
    /// program without an entry only with no flags.
    pub fn listed(&self, program: &str, flags: &BTreeSet<String>, operands: usize) -> bool {
        let Some(entry) = self.by_program.get(program) else {
            return flags.is_empty();
        };
        if entry.operands.is_some_and(|max| operands > max) {
            return false;
        }
        let Some(options) = &entry.options else {
            return true;
        };
        flags.iter().all(|f| {
            // A short cluster counts by its letters, which are in the set too.
            let cluster = !f.starts_with("--") && f.len() > 2 && !options.contains(f);
            cluster || options.contains(f)
        })
    }
}
