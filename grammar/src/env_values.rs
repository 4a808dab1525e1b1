//! Literal values of code-loading environment variables that load no code
//! (`knowledge/env_values.toml`): `GIT_PAGER=cat`, `NODE_OPTIONS=--max-old-space-size=4096`,
//! `IFS= read`. The shipped sets forbid such variables by name; the engine reports an
//! assignment whose literal value is listed here as `NAME+inert`, so the everyday forms pass
//! and every other value — a command, a hook, anything not literal — is still refused.
//!
//! Matching is deliberately small: whole values from a list, or space-separated options
//! each from a list; `*` stands for one run of characters without spaces or `/`. A value
//! the table does not describe keeps the plain name: the table can only narrow a refusal.

use crate::error::KnowledgeError;
use crate::ir::{Assignment, Command, Program, Word};
use serde::Deserialize;

/// A case: a script and the names its assignments report as inert.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvValueCase {
    /// The script.
    pub script: String,
    /// The variables reported as `NAME+inert`.
    pub inert: Vec<String>,
}

/// One variable rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    names: Vec<String>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    prefix_only: bool,
    cases: Vec<EnvValueCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)] // documentation in the file
    about: String,
    #[serde(rename = "variable")]
    rules: Vec<Rule>,
}

/// The inert values of code-loading variables.
#[derive(Debug, Default, Clone)]
pub struct EnvValues {
    rules: Vec<Rule>,
}

/// `pattern` (at most one `*`) matches `text`.
fn matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((pre, post)) => {
            text.len() >= pre.len() + post.len()
                && text.starts_with(pre)
                && text.ends_with(post)
                && !text[pre.len()..text.len() - post.len()].contains([' ', '/'])
        }
    }
}

impl EnvValues {
    /// Parses and checks the knowledge file: every rule says what makes a value inert,
    /// uses at most one `*` per pattern and has an inert case and one that is not.
    pub fn from_toml(text: &str) -> Result<EnvValues, KnowledgeError> {
        let f: File = toml::from_str(text).map_err(|e| KnowledgeError::EnvValues(e.to_string()))?;
        for r in &f.rules {
            let what = format!("{:?}", r.names);
            let err = |m: &str| Err(KnowledgeError::EnvValues(format!("{what}: {m}")));
            if r.values.is_empty() && r.options.is_empty() {
                return err("lists neither values nor options");
            }
            if r.values
                .iter()
                .chain(&r.options)
                .any(|p| p.matches('*').count() > 1)
            {
                return err("a pattern has more than one `*`");
            }
            let inert = r.cases.iter().any(|c| !c.inert.is_empty());
            let not = r.cases.iter().any(|c| c.inert.is_empty());
            if !(inert && not) {
                return err("needs a case that is inert and one that is not");
            }
        }
        Ok(EnvValues { rules: f.rules })
    }

    /// True when assigning `value` to `name` loads no code: a literal value the table
    /// lists. `prefix` says the assignment is a prefix of a command (not bare, not
    /// exported).
    pub fn inert(&self, name: &str, value: &Word, prefix: bool) -> bool {
        if !value.is_literal() {
            return false;
        }
        let v = value.value.as_str();
        self.rules
            .iter()
            .filter(|r| r.names.iter().any(|n| n == name))
            .any(|r| {
                (prefix || !r.prefix_only)
                    && (r.values.iter().any(|p| matches(p, v))
                        || (!r.options.is_empty()
                            && v.split(' ')
                                .filter(|o| !o.is_empty())
                                .all(|o| r.options.iter().any(|p| matches(p, o)))))
            })
    }

    /// [`EnvValues::inert`] for assignment `a` of command `cmd`: a prefix unless the
    /// command is a bare assignment or a builtin that sets shell variables (`export`,
    /// `declare`, `typeset`, `local`, `readonly`).
    pub fn inert_assignment(&self, cmd: &Command, a: &Assignment) -> bool {
        const SETTERS: [&str; 5] = ["export", "declare", "typeset", "local", "readonly"];
        let bare =
            matches!(cmd.program, Program::Assignment) || SETTERS.iter().any(|s| cmd.program.is(s));
        self.inert(&a.name, &a.value, !bare)
    }

    /// Every rule's cases.
    pub fn cases(&self) -> impl Iterator<Item = &EnvValueCase> {
        self.rules.iter().flat_map(|r| &r.cases)
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn a_star_is_one_run_without_spaces_or_slashes() {
        assert!(matches(
            "--max-old-space-size=*",
            "--max-old-space-size=4096"
        ));
        assert!(!matches(
            "--max-old-space-size=*",
            "--max-old-space-size=1 -r x"
        ));
        assert!(!matches("--x=*", "--x=./a/b"));
        assert!(matches("cat", "cat"));
        assert!(!matches("cat", "cat;id"));
        assert!(matches("a*", "a"));
    }
}
