//! Implicit reads and writes: files a command touches without naming
//! them. `gh auth token` reads `~/.config/gh/hosts.yml`; `npm config set` writes
//! `~/.npmrc`; `git config --global` writes `~/.gitconfig`; `csplit` writes `xx00...` in
//! the directory it runs in. The knowledge is data (`knowledge/effects.toml`); the engine
//! turns each matching entry into read/write facts, so credential and system-path policies
//! apply to them like to any named path.

use crate::error::KnowledgeError;
use serde::Deserialize;
use std::collections::BTreeSet;

/// A case: a script and the paths it must read and write implicitly (resolved with home
/// `/home/agent` and cwd `/work`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectCase {
    /// The script (one command).
    pub script: String,
    /// Paths read, as facts (`/home/agent/.npmrc`, `/work/*` for "below /work").
    #[serde(default)]
    pub reads: Vec<String>,
    /// Paths written, as facts.
    #[serde(default)]
    pub writes: Vec<String>,
}

/// One entry: when a program with these leading words and flags runs, it reads and writes
/// these paths.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectRule {
    /// Program base names.
    pub programs: Vec<String>,
    /// The positional words the command starts with (`["auth", "token"]`), in order;
    /// `a|b` accepts either.
    #[serde(default)]
    pub words: Vec<String>,
    /// At least one of these flags must be present (empty: no condition).
    #[serde(default)]
    pub flags_any: Vec<String>,
    /// None of these flags may be present (`wget -O FILE` names its output itself).
    #[serde(default)]
    pub flags_none: Vec<String>,
    /// Some positional word must match this regular expression (BSD-style option words:
    /// `ps auxeww` holds `e`: show the environment).
    #[serde(default)]
    pub any_word: Option<String>,
    /// Paths read: `~/` is the home, `{cwd}` the command's directory, a `*` means "below".
    #[serde(default)]
    pub reads: Vec<String>,
    /// Paths written, in the same form.
    #[serde(default)]
    pub writes: Vec<String>,
    /// Why (shown as the fact's raw word).
    pub why: String,
    /// Cases: at least one that matches and one that does not.
    pub cases: Vec<EffectCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    #[serde(rename = "effect")]
    rules: Vec<EffectRule>,
}

/// The implicit effects of programs.
#[derive(Debug, Default)]
pub struct Effects {
    rules: Vec<EffectRule>,
    /// Per rule: its `any_word` pattern, compiled.
    any_word: Vec<Option<regex::Regex>>,
}

impl Effects {
    /// Parses and checks the data file.
    pub fn from_toml(text: &str) -> Result<Effects, KnowledgeError> {
        let f: File = toml::from_str(text).map_err(|e| KnowledgeError::Effects(e.to_string()))?;
        for r in &f.rules {
            if r.cases.len() < 2 || (r.reads.is_empty() && r.writes.is_empty()) {
                return Err(KnowledgeError::Effects(format!(
                    "{:?} {:?}: needs paths, and a case that matches and one that does not",
                    r.programs, r.words
                )));
            }
        }
        let mut any_word = Vec::new();
        for r in &f.rules {
            any_word.push(match &r.any_word {
                Some(p) => Some(regex::Regex::new(p).map_err(|e| {
                    KnowledgeError::Effects(format!("{:?} any_word: {e}", r.programs))
                })?),
                None => None,
            });
        }
        Ok(Effects {
            rules: f.rules,
            any_word,
        })
    }

    /// Every rule (for the tests of their cases).
    pub fn rules(&self) -> &[EffectRule] {
        &self.rules
    }

    /// The rules that apply to `program` with these positionals and flags.
    pub fn matching<'a>(
        &'a self,
        program: &'a str,
        positionals: &'a [String],
        flags: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = &'a EffectRule> + 'a {
        self.rules
            .iter()
            .zip(&self.any_word)
            .filter_map(move |(r, any)| {
                let word_ok = any
                    .as_ref()
                    .is_none_or(|re| positionals.iter().any(|p| re.is_match(p)));
                (word_ok
                    && r.programs.iter().any(|p| p == program)
                    && r.words.len() <= positionals.len()
                    && r.words
                        .iter()
                        .zip(positionals)
                        .all(|(w, p)| w.split('|').any(|alt| alt == p))
                    && (r.flags_any.is_empty() || r.flags_any.iter().any(|f| flags.contains(f)))
                    && !r.flags_none.iter().any(|f| flags.contains(f)))
                .then_some(r)
            })
    }
}
