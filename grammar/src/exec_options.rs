//! Options whose value is a command the program runs: `rsync -e CMD`, `tar -I PROG`,
//! `zip -TT CMD`, `git -c core.pager=CMD`, `ssh -o ProxyCommand=CMD`, ...
//!
//! The knowledge is data (`knowledge/exec_options.toml`, each option with cases that run
//! and cases that do not); this module finds such values in a command line and hands each
//! one back as a payload, re-parsed one level deeper like `bash -c`'s, so that what it runs
//! is judged as a command of its own. A value that is not literal (`rsync -e "$RSH"`)
//! becomes a dynamic command, which no rule that needs to know the program allows.

use crate::error::KnowledgeError;
use crate::words::Decoded;
use crate::FastMap;
use serde::Deserialize;
use std::collections::HashMap;

/// What an option's value (or a key's value) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueIs {
    /// A command line (`rsync -e 'ssh -p 22'`), or a program with arguments (`tar -I 'zstd
    /// -19'`): run through a shell or split into words, both judged as a script.
    Command,
    /// A command only when it starts with `!` (git aliases and credential helpers) or is
    /// an absolute path; otherwise a name the program resolves itself.
    Bang,
    /// Names code that runs from elsewhere (a hooks directory, an included config file):
    /// never judgeable, always a dynamic command.
    Code,
}

/// One key of a `KEY=VALUE` option (`*` matches any run of characters; case-insensitive
/// where the program is).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// The key pattern (`core.pager`, `alias.*`, `ProxyCommand`).
    pub key: String,
    /// What its value is.
    pub value: ValueIs,
}

/// A case: a script and the programs its commands run, in order (`(dynamic)` for one that
/// cannot be known).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The script.
    pub script: String,
    /// The programs (entity ids) of the commands extracted, in order.
    pub runs: Vec<String>,
}

/// One rule: options of some programs whose value runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Program base names.
    pub programs: Vec<String>,
    /// The options (`-e`, `--rsh`; a long one also as `--rsh=VALUE`, a short one also
    /// attached or last in a cluster: `-eCMD`, `-avze CMD`).
    pub names: Vec<String>,
    /// What the value is, when the whole value runs.
    #[serde(default)]
    pub value: Option<ValueIs>,
    /// For `KEY=VALUE` options: the keys whose value runs (others are ignored).
    #[serde(default)]
    pub keys: Vec<Key>,
    /// Keys compare case-insensitively (ssh's do).
    #[serde(default)]
    pub keys_ignore_case: bool,
    /// `KEY VALUE` (a space) is accepted as well as `KEY=VALUE` (ssh's `-o`).
    #[serde(default)]
    pub key_space: bool,
    /// The options count only before the first positional (`git -c x=y log`: `git log -c`
    /// means something else).
    #[serde(default)]
    pub before_positional: bool,
    /// The options count only for these subcommands, the first positional (`git clone -u
    /// CMD`: `-u` is `--upload-pack` there, and `git add -u` something else).
    #[serde(default)]
    pub subcommands: Vec<String>,
    /// Options of the program that take a value (skipped while looking for the first
    /// positional).
    #[serde(default)]
    pub value_options: Vec<String>,
    /// Single-letter options do not cluster (`gdb -nx` is not `-n -x`).
    #[serde(default)]
    pub no_clusters: bool,
    /// Values that run nothing (regular expressions matched against the whole value, e.g.
    /// vim's `-c 'set nu'`): an allowlist, so that anything else stays code.
    #[serde(default)]
    pub harmless: Vec<String>,
    /// Cases: scripts that run something through the option, and scripts that do not.
    pub cases: Vec<Case>,
}

/// Arguments that are code in the program's own language (awk programs, sed scripts,
/// sqlite3 dot-commands, vim `+CMD`, make `SHELL=`) and spawn commands when they contain
/// one of the patterns: such an argument is a dynamic command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// Program base names.
    pub programs: Vec<String>,
    /// Regular expressions; an argument matching any of them runs a command.
    pub patterns: Vec<String>,
    /// When given, only these options' values are code (`python3 -c CODE`): other words
    /// (`python3 -m pip install requests`) are not matched. Literal code read from stdin
    /// is matched too.
    #[serde(default)]
    pub options: Vec<String>,
    /// Cases, as for options.
    pub cases: Vec<Case>,
}

/// An interpreter that reads its code from stdin when given no script (`python3`,
/// `perl -`, `sqlite3 DB`): computed text piped or redirected into it is a dynamic command.
/// (Shells are handled by the shell wrapper, which parses literal text as a payload.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinRule {
    /// Program base names.
    pub programs: Vec<String>,
    /// Options that give the code another way (`-c`, `-e`, `-m`): stdin is then data.
    #[serde(default)]
    pub code_options: Vec<String>,
    /// Options that take a value.
    #[serde(default)]
    pub value_options: Vec<String>,
    /// With up to this many positional words, stdin is the code (`sqlite3 DB`: 1). A `-`
    /// positional always means stdin.
    #[serde(default)]
    pub positionals: usize,
    /// Cases, as for options.
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    #[serde(rename = "option")]
    rules: Vec<Rule>,
    #[serde(rename = "marker", default)]
    markers: Vec<Marker>,
    #[serde(rename = "stdin", default)]
    stdin: Vec<StdinRule>,
}

/// The exec-capable options, by program.
#[derive(Debug, Default)]
pub struct ExecOptions {
    rules: Vec<Rule>,
    by_program: FastMap<String, Vec<usize>>,
    /// Per rule: its `harmless` values, anchored, as one set.
    harmless: Vec<Option<regex::RegexSet>>,
    markers: Vec<Marker>,
    /// Per program: one regex set of all its markers' patterns (markers without options).
    marker_sets: HashMap<String, regex::RegexSet>,
    /// Per program: markers that apply to some options' values only (the options as a
    /// rule, for finding their values) and their patterns.
    option_markers: HashMap<String, Vec<(Rule, regex::RegexSet)>>,
    stdin: Vec<StdinRule>,
}

/// A value found: literal text to parse, or the raw text of a value that is not literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Found {
    /// Run as a script.
    Script(String),
    /// Cannot be known.
    Dynamic(String),
}

impl Found {
    fn text(&self) -> &str {
        match self {
            Found::Script(t) | Found::Dynamic(t) => t,
        }
    }
}

impl ExecOptions {
    /// Parses and checks the data file.
    pub fn from_toml(text: &str) -> Result<ExecOptions, KnowledgeError> {
        let file: File =
            toml::from_str(text).map_err(|e| KnowledgeError::ExecOptions(e.to_string()))?;
        let mut by_program: FastMap<String, Vec<usize>> = FastMap::default();
        for (i, r) in file.rules.iter().enumerate() {
            let what = format!("{:?} {:?}", r.programs, r.names);
            if r.cases.len() < 2 {
                return Err(KnowledgeError::ExecOptions(format!(
                    "{what}: needs a case that runs something and one that does not"
                )));
            }
            if r.value.is_some() != r.keys.is_empty() {
                return Err(KnowledgeError::ExecOptions(format!(
                    "{what}: give either `value` or `keys`"
                )));
            }
            for p in &r.programs {
                by_program.entry(p.clone()).or_default().push(i);
            }
        }
        let mut harmless = Vec::new();
        for r in &file.rules {
            if r.harmless.is_empty() {
                harmless.push(None);
                continue;
            }
            let anchored = r.harmless.iter().map(|h| format!("^(?:{h})$"));
            let set = regex::RegexSet::new(anchored).map_err(|e| {
                KnowledgeError::ExecOptions(format!("harmless values of {:?}: {e}", r.names))
            })?;
            harmless.push(Some(set));
        }
        let mut patterns: HashMap<String, Vec<String>> = HashMap::new();
        let mut option_markers: HashMap<String, Vec<(Rule, regex::RegexSet)>> = HashMap::new();
        for m in &file.markers {
            if m.cases.len() < 2 || m.patterns.is_empty() {
                return Err(KnowledgeError::ExecOptions(format!(
                    "marker {:?}: needs patterns, and cases that run something and not",
                    m.programs
                )));
            }
            if !m.options.is_empty() {
                let set = regex::RegexSet::new(&m.patterns).map_err(|e| {
                    KnowledgeError::ExecOptions(format!("marker patterns of {:?}: {e}", m.programs))
                })?;
                let rule = Rule {
                    programs: m.programs.clone(),
                    names: m.options.clone(),
                    value: Some(ValueIs::Code),
                    keys: Vec::new(),
                    keys_ignore_case: false,
                    key_space: false,
                    before_positional: false,
                    subcommands: Vec::new(),
                    value_options: Vec::new(),
                    no_clusters: false,
                    harmless: Vec::new(),
                    cases: Vec::new(),
                };
                for p in &m.programs {
                    option_markers
                        .entry(p.clone())
                        .or_default()
                        .push((rule.clone(), set.clone()));
                }
                continue;
            }
            for p in &m.programs {
                patterns
                    .entry(p.clone())
                    .or_default()
                    .extend(m.patterns.clone());
            }
        }
        let mut marker_sets = HashMap::new();
        for (program, pats) in patterns {
            let set = regex::RegexSet::new(&pats).map_err(|e| {
                KnowledgeError::ExecOptions(format!("marker patterns of `{program}`: {e}"))
            })?;
            marker_sets.insert(program, set);
        }
        Ok(ExecOptions {
            rules: file.rules,
            by_program,
            harmless,
            markers: file.markers,
            marker_sets,
            option_markers,
            stdin: file.stdin,
        })
    }

    /// Every stdin rule (for the tests of their cases).
    pub fn stdin_rules(&self) -> &[StdinRule] {
        &self.stdin
    }

    /// True if `program` with `argv` reads its code from stdin.
    pub(crate) fn reads_code_from_stdin(&self, program: &str, argv: &[Decoded]) -> bool {
        let Some(rule) = self
            .stdin
            .iter()
            .find(|r| r.programs.iter().any(|p| p == program))
        else {
            return false;
        };
        let mut positionals = 0;
        let mut i = 1;
        while i < argv.len() {
            let Some(w) = argv[i].literal_value() else {
                positionals += 1;
                i += 1;
                continue;
            };
            if w == "-" {
                return true;
            }
            if w == "--" {
                positionals += argv.len() - i - 1;
                break;
            }
            if w.starts_with('-') {
                let gives_code = rule.code_options.iter().any(|o| {
                    w == *o
                        || (o.starts_with("--") && w.starts_with(&format!("{o}=")))
                        || (o.len() == 2 && !w.starts_with("--") && w.starts_with(o.as_str()))
                });
                if gives_code {
                    return false;
                }
                if rule.value_options.contains(&w) {
                    i += 1;
                }
            } else {
                positionals += 1;
            }
            i += 1;
        }
        positionals <= rule.positionals
    }

    /// True if literal code `text` for `program` matches one of its markers (`.shell`).
    pub(crate) fn marks(&self, program: &str, text: &str) -> bool {
        self.marker_sets
            .get(program)
            .is_some_and(|s| s.is_match(text))
            || self
                .option_markers
                .get(program)
                .is_some_and(|ms| ms.iter().any(|(_, s)| s.is_match(text)))
    }

    /// Every marker rule (for the tests of their cases).
    pub fn markers(&self) -> &[Marker] {
        &self.markers
    }

    /// Every rule (for the tests of their cases).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True if some option of `program` can run a command.
    pub(crate) fn knows(&self, program: &str) -> bool {
        self.by_program.contains_key(program)
            || self.marker_sets.contains_key(program)
            || self.option_markers.contains_key(program)
            || self
                .stdin
                .iter()
                .any(|r| r.programs.iter().any(|p| p == program))
    }

    /// The values of `argv` (program first) that run, in order.
    pub(crate) fn found(&self, program: &str, argv: &[Decoded]) -> Vec<Found> {
        let mut out = Vec::new();
        for &i in self.by_program.get(program).into_iter().flatten() {
            let rule = &self.rules[i];
            if !rule.subcommands.is_empty() && !has_subcommand(rule, argv) {
                continue;
            }
            for value in option_values(rule, argv) {
                let is_harmless =
                    |v: &String| self.harmless[i].as_ref().is_some_and(|h| h.is_match(v));
                if value.as_ref().is_some_and(is_harmless) {
                    continue;
                }
                if let Some(f) = judge(rule, value) {
                    out.push(f);
                }
            }
        }
        for (rule, set) in self.option_markers.get(program).into_iter().flatten() {
            for value in option_values(rule, argv) {
                let f = match value {
                    Some(v) if set.is_match(&v) => Found::Dynamic(v),
                    Some(_) => continue,
                    None => Found::Dynamic("(computed code)".into()),
                };
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        if let Some(set) = self.marker_sets.get(program) {
            // A value an option already handed back, or a word given twice, is not counted
            // twice; looked up by hash (a command may hold tens of thousands of words).
            let mut seen: std::collections::HashSet<Found, foldhash::fast::RandomState> =
                out.iter().cloned().collect();
            for w in argv.iter().skip(1).filter_map(Decoded::literal_value) {
                let f = Found::Dynamic(w);
                if set.is_match(f.text()) && seen.insert(f.clone()) {
                    out.push(f);
                }
            }
        }
        out
    }
}

/// True if the first positional of `argv` (options and the rule's value options skipped)
/// is one of the rule's subcommands.
fn has_subcommand(rule: &Rule, argv: &[Decoded]) -> bool {
    let mut i = 1;
    while i < argv.len() {
        let Some(w) = argv[i].literal_value() else {
            // A subcommand that cannot be known could be any of them.
            return true;
        };
        if w.starts_with('-') && w != "-" {
            if rule.value_options.contains(&w) {
                i += 1;
            }
            i += 1;
            continue;
        }
        return rule.subcommands.contains(&w);
    }
    false
}

/// The values given to the rule's options (`None` for a word that is not literal).
fn option_values(rule: &Rule, argv: &[Decoded]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let Some(w) = argv[i].literal_value() else {
            // `--rsh="$X"`, `-e"$X"`: one of the options, with a value that cannot be known.
            let raw = argv[i].raw.as_str();
            if rule.names.iter().any(|n| raw.starts_with(n.as_str())) {
                out.push(None);
            } else if rule.before_positional {
                break;
            }
            i += 1;
            continue;
        };
        if w == "--" {
            break;
        }
        if !w.starts_with('-') || w == "-" {
            if rule.before_positional {
                break;
            }
            i += 1;
            continue;
        }
        let next = |j: usize| argv.get(j).map(Decoded::literal_value);
        let mut matched = false;
        for n in &rule.names {
            if w == *n {
                out.push(next(i + 1).unwrap_or(Some(String::new())));
                i += 1;
                matched = true;
                break;
            }
            if n.starts_with("--") {
                if let Some(v) = w.strip_prefix(n.as_str()).and_then(|r| r.strip_prefix('=')) {
                    out.push(Some(v.to_string()));
                    matched = true;
                    break;
                }
            } else if n.len() == 2 && !w.starts_with("--") && !rule.no_clusters {
                // A short option in a cluster: last (`-avze CMD`) or with its value
                // attached (`-eCMD`, `-oProxyCommand=x`).
                let letter = n.as_bytes()[1] as char;
                if let Some(at) = w[1..].find(letter) {
                    let rest = &w[1 + at + 1..];
                    let before = &w[1..1 + at];
                    if before.chars().all(|c| c.is_ascii_alphanumeric()) {
                        if rest.is_empty() {
                            out.push(next(i + 1).unwrap_or(Some(String::new())));
                            i += 1;
                        } else {
                            out.push(Some(rest.to_string()));
                        }
                        matched = true;
                        break;
                    }
                }
            }
        }
        if !matched && rule.value_options.contains(&w) {
            i += 1;
        }
        i += 1;
    }
    out
}

/// What one value runs, if anything.
fn judge(rule: &Rule, value: Option<String>) -> Option<Found> {
    let Some(v) = value else {
        return Some(Found::Dynamic("(computed option value)".into()));
    };
    if let Some(kind) = rule.value {
        return run(kind, &v);
    }
    // `KEY=VALUE` (or `KEY VALUE`: the key ends at the first `=` or blank).
    let end = if rule.key_space {
        v.find(|c: char| c == '=' || c.is_ascii_whitespace())
    } else {
        v.find('=')
    };
    let (key, val) = match end {
        Some(at) => (&v[..at], &v[at + 1..]),
        None => (v.as_str(), ""),
    };
    let key = key.trim();
    let k = rule.keys.iter().find(|k| {
        if rule.keys_ignore_case {
            glob(&k.key.to_ascii_lowercase(), &key.to_ascii_lowercase())
        } else {
            glob(&k.key, key)
        }
    })?;
    run(k.value, val.trim_start())
}

fn run(kind: ValueIs, v: &str) -> Option<Found> {
    // A TOML value (`cargo --config 'k="sh -c id"'`) is quoted; an array is not judgeable.
    let v = v.trim();
    if v.starts_with('[') {
        return Some(Found::Dynamic(v.to_string()));
    }
    let v = ['"', '\'']
        .iter()
        .find_map(|q| v.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
        .unwrap_or(v);
    match kind {
        ValueIs::Command if v.trim().is_empty() => None,
        ValueIs::Command => Some(Found::Script(v.to_string())),
        ValueIs::Bang => match v.strip_prefix('!') {
            Some(cmd) => Some(Found::Script(cmd.to_string())),
            None if v.starts_with('/') => Some(Found::Script(v.to_string())),
            None => None,
        },
        ValueIs::Code => Some(Found::Dynamic(v.to_string())),
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn key_patterns() {
        assert!(glob("alias.*", "alias.co"));
        assert!(glob("filter.*.clean", "filter.lfs.clean"));
        assert!(!glob("filter.*.clean", "filter.lfs.smudge"));
        assert!(glob("core.pager", "core.pager"));
        assert!(!glob("core.pager", "core.pagerx"));
    }
}
