//! What the extractor knows about particular programs' command lines, loaded from
//! `grammar/knowledge/programs.toml` (embedded at build time, parsed once per process).
//!
//! Knowledge is data so that a security reviewer can read and extend it without touching
//! the walker: per program, which options take a value (and whether that value is program
//! text), and its traits (subcommand-first, pattern-first, a shell, fetches URLs, reads
//! recursively, ...). Every entry carries examples that the grammar's and the engine's
//! tests check.
//!
//! Everything here errs toward *more* facts: a word wrongly taken for a path yields an extra
//! check (at worst a false denial); a path wrongly taken for something else would be a
//! missed check. If the file does not load, [`catalog`] returns the error and every parse
//! fails: commands are denied, never run with less knowledge.

use crate::FastMap;
use serde::Deserialize;
use std::sync::LazyLock;

/// The knowledge file as shipped.
const PROGRAMS_TOML: &str = include_str!("../knowledge/programs.toml");
const EXEC_OPTIONS_TOML: &str = include_str!("../knowledge/exec_options.toml");
const EFFECTS_TOML: &str = include_str!("../knowledge/effects.toml");
const DESTINATIONS_TOML: &str = include_str!("../knowledge/destinations.toml");
const ENV_VALUES_TOML: &str = include_str!("../knowledge/env_values.toml");
const READONLY_TOML: &str = include_str!("../knowledge/readonly.toml");

/// A property of a program that changes which words are paths, hosts or code.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trait {
    /// Arguments are never file names (redirects still are checked).
    NoPathArgs,
    /// The first positional is a subcommand (`git status`).
    Subcommand,
    /// The first positional is a pattern or program text unless a pattern flag gave it.
    PatternFirst,
    /// The first positional is a mode, owner, count or duration (`chmod 600 f`).
    FirstIsNotPath,
    /// Names remote hosts as `[user@]host:path`.
    RemoteSpec,
    /// Single-dash long options (`find -delete`): flags are not split into letters.
    SingleDashLong,
    /// Positionals before the first option are paths, later ones expression operands.
    StartPoints,
    /// A shell: `-c` runs its argument as a script.
    Shell,
    /// A shell builtin (the `builtin` attribute policies see).
    Builtin,
    /// URL arguments are fetched or pushed to.
    FetchesUrls,
    /// Every bare positional that looks like a host is one (`curl example.com`).
    HostsPositional,
    /// The first bare positional is a host (`ping example.com`).
    HostFirst,
    /// Every path operand but the last is only read (unless a target directory is given).
    CopyLike,
    /// Reads everything below a directory argument.
    ReadsRecursively,
    /// Makes links (`ln`): every path operand but the last is a link target; later
    /// commands of the script that name a path through the link name the target.
    Links,
}

impl Trait {
    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// How an option's value should be treated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueKind {
    /// A value that is a path if it looks like one.
    Value,
    /// A file the program writes (`sort -o FILE`, `git log --output=FILE`): a path, written.
    Output,
    /// Program text (`python -c`, `node -e`): never a path.
    Code,
}

pub use crate::error::KnowledgeError;

/// One example of an entry: a script and what must be extracted from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// The script.
    pub script: String,
    /// The words (decoded) taken as path arguments, in order, across the script's commands.
    pub paths: Vec<String>,
    /// Network destinations the engine extracts (`host` or `host:port`), if checked.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    names: Vec<String>,
    #[serde(default)]
    traits: Vec<Trait>,
    #[serde(default)]
    value_options: Vec<String>,
    #[serde(default)]
    code_options: Vec<String>,
    #[serde(default)]
    output_options: Vec<String>,
    #[serde(default)]
    chdir_options: Vec<String>,
    #[serde(default)]
    link_flags: Vec<String>,
    #[serde(default)]
    path_list_options: Vec<String>,
    #[serde(default)]
    recursive_flags: Vec<String>,
    #[serde(default)]
    leading_flags: Vec<String>,
    #[serde(default)]
    examples: Vec<Example>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    system_bin_dirs: Vec<String>,
    common_value_options: Vec<String>,
    pattern_flags: Vec<String>,
    recursive_flags: Vec<String>,
    #[serde(rename = "program")]
    programs: Vec<Entry>,
}

/// What is known about one program.
#[derive(Debug, Default)]
pub struct ProgramInfo {
    names: Vec<String>,
    traits: u32,
    options: FastMap<String, ValueKind>,
    chdir_options: Vec<String>,
    link_flags: Vec<String>,
    path_list_options: Vec<String>,
    recursive_flags: Vec<String>,
    leading_flags: Vec<String>,
    examples: Vec<Example>,
}

impl ProgramInfo {
    /// True if the program has `t`.
    pub fn has(&self, t: Trait) -> bool {
        self.traits & t.bit() != 0
    }

    /// The names sharing this entry.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The entry's examples.
    pub fn examples(&self) -> &[Example] {
        &self.examples
    }
}

/// Program knowledge, keyed by base name.
#[derive(Debug)]
pub struct Catalog {
    by_name: FastMap<String, usize>,
    entries: Vec<ProgramInfo>,
    system_bin_dirs: Vec<String>,
    common_value_options: Vec<String>,
    pattern_flags: Vec<String>,
    recursive_flags: Vec<String>,
    /// Options whose value is a command the program runs.
    exec_options: crate::exec_options::ExecOptions,
    /// Files programs read or write without naming them.
    effects: crate::effects::Effects,
    /// Destinations set by options and environment variables.
    destinations: crate::destinations::Destinations,
    /// Literal values of code-loading variables that load no code.
    env_values: crate::env_values::EnvValues,
    /// Options that keep read-only tools read-only.
    readonly: crate::readonly::ReadonlyOptions,
}

impl Catalog {
    /// The options whose value is a command the program runs
    /// (`knowledge/exec_options.toml`).
    pub fn exec_options(&self) -> &crate::exec_options::ExecOptions {
        &self.exec_options
    }

    /// Files programs read or write without naming them (`knowledge/effects.toml`).
    pub fn effects(&self) -> &crate::effects::Effects {
        &self.effects
    }

    /// Options that keep read-only tools read-only (`knowledge/readonly.toml`).
    pub fn readonly(&self) -> &crate::readonly::ReadonlyOptions {
        &self.readonly
    }

    /// Destinations set by options and environment variables
    /// (`knowledge/destinations.toml`).
    pub fn destinations(&self) -> &crate::destinations::Destinations {
        &self.destinations
    }

    /// Literal values of code-loading variables that load no code
    /// (`knowledge/env_values.toml`).
    pub fn env_values(&self) -> &crate::env_values::EnvValues {
        &self.env_values
    }

    /// Parses and checks a knowledge file.
    ///
    /// ```
    /// use execkit_grammar::knowledge::{Catalog, Trait};
    /// let k = Catalog::from_toml(r#"
    ///     about = "one program"
    ///     system_bin_dirs = ["/usr/bin"]
    ///     common_value_options = []
    ///     pattern_flags = []
    ///     recursive_flags = []
    ///     [[program]]
    ///     names = ["tool"]
    ///     traits = ["subcommand"]
    ///     examples = [{ script = "tool run x", paths = ["x"] }]
    /// "#).unwrap();
    /// assert!(k.has("tool", Trait::Subcommand));
    /// assert!(!k.has("other", Trait::Subcommand));
    /// ```
    pub fn from_toml(text: &str) -> Result<Catalog, KnowledgeError> {
        let file: File = toml::from_str(text).map_err(|e| KnowledgeError::Toml(e.to_string()))?;
        let mut by_name = FastMap::default();
        let mut entries = Vec::with_capacity(file.programs.len());
        for e in file.programs {
            let first = e.names.first().cloned().unwrap_or_default();
            if e.examples.is_empty() {
                return Err(KnowledgeError::NoExample(first));
            }
            let mut options = FastMap::default();
            for (list, kind) in [
                (&e.value_options, ValueKind::Value),
                (&e.output_options, ValueKind::Output),
                (&e.code_options, ValueKind::Code),
                (&e.chdir_options, ValueKind::Value),
                (&e.path_list_options, ValueKind::Value),
            ] {
                for o in list {
                    if options.insert(o.clone(), kind).is_some() {
                        return Err(KnowledgeError::DuplicateOption {
                            program: first.clone(),
                            option: o.clone(),
                        });
                    }
                }
            }
            let index = entries.len();
            for n in &e.names {
                if by_name.insert(n.clone(), index).is_some() {
                    return Err(KnowledgeError::DuplicateName(n.clone()));
                }
            }
            entries.push(ProgramInfo {
                names: e.names,
                traits: e.traits.iter().fold(0, |acc, t| acc | t.bit()),
                options,
                chdir_options: e.chdir_options,
                link_flags: e.link_flags,
                path_list_options: e.path_list_options,
                recursive_flags: e.recursive_flags,
                leading_flags: e.leading_flags,
                examples: e.examples,
            });
        }
        Ok(Catalog {
            by_name,
            entries,
            system_bin_dirs: file.system_bin_dirs,
            common_value_options: file.common_value_options,
            pattern_flags: file.pattern_flags,
            recursive_flags: file.recursive_flags,
            exec_options: Default::default(),
            effects: Default::default(),
            destinations: Default::default(),
            env_values: Default::default(),
            readonly: Default::default(),
        })
    }

    /// What is known about the program with this base name.
    pub fn program(&self, base: &str) -> Option<&ProgramInfo> {
        self.by_name.get(base).map(|&i| &self.entries[i])
    }

    /// True if the program with this base name has `t`.
    pub fn has(&self, base: &str, t: Trait) -> bool {
        self.program(base).is_some_and(|p| p.has(t))
    }

    /// Whether `flag` of `base` consumes the next word, and as what.
    /// True if `flag` of `base` takes a file listing more paths (`tar -T FILE`).
    pub fn lists_paths(&self, base: &str, flag: &str) -> bool {
        self.program(base)
            .is_some_and(|p| p.path_list_options.iter().any(|o| o == flag))
    }

    /// True if `base` with these flags makes links (`ln`, `cp -s`, `cp -l`).
    pub fn makes_links(&self, base: &str, flags: &std::collections::BTreeSet<String>) -> bool {
        self.program(base).is_some_and(|p| {
            p.traits & Trait::Links.bit() != 0 || p.link_flags.iter().any(|f| flags.contains(f))
        })
    }

    /// Options of `base` that make it run in another directory (`git -C DIR`, `make
    /// --directory=DIR`): its relative paths and its cwd are there.
    pub fn chdir_options(&self, base: &str) -> &[String] {
        self.program(base)
            .map_or(&[], |p| p.chdir_options.as_slice())
    }

    /// The kind of value `flag` of `base` takes, if it takes one.
    pub fn value_option(&self, base: &str, flag: &str) -> Option<ValueKind> {
        self.program(base)
            .and_then(|p| p.options.get(flag).copied())
            .or_else(|| {
                self.common_value_options
                    .iter()
                    .any(|o| o == flag)
                    .then_some(ValueKind::Value)
            })
    }

    /// True if `dir` is a system bin directory (its programs are identified by base name).
    /// A component of an entry may hold one `*` (`/usr/lib/gcc/*/*`, `/usr/lib/llvm-*/bin`).
    pub fn is_system_bin_dir(&self, dir: &str) -> bool {
        self.system_bin_dirs.iter().any(|d| dir_matches(d, dir))
    }

    /// True if `flag` means a pattern-first program's pattern came from a flag.
    pub fn is_pattern_flag(&self, flag: &str) -> bool {
        self.pattern_flags.iter().any(|f| f == flag)
    }

    /// True if `flag` makes `base` read everything below a directory argument.
    pub fn is_recursive_flag(&self, base: &str, flag: &str) -> bool {
        self.recursive_flags.iter().any(|f| f == flag)
            || self
                .program(base)
                .is_some_and(|p| p.recursive_flags.iter().any(|f| f == flag))
    }

    /// True if `flag` of a `start_points` program may come before the start points (`find
    /// -L . ...`). A listed flag ending in `*` matches every flag with that prefix (`-O*`).
    pub fn is_leading_flag(&self, base: &str, flag: &str) -> bool {
        self.program(base).is_some_and(|p| {
            p.leading_flags.iter().any(|l| match l.strip_suffix('*') {
                Some(prefix) => flag.starts_with(prefix),
                None => l == flag,
            })
        })
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[ProgramInfo] {
        &self.entries
    }
}

static CATALOG: LazyLock<Result<Catalog, KnowledgeError>> = LazyLock::new(|| {
    let mut c = Catalog::from_toml(PROGRAMS_TOML)?;
    c.exec_options = crate::exec_options::ExecOptions::from_toml(EXEC_OPTIONS_TOML)?;
    c.effects = crate::effects::Effects::from_toml(EFFECTS_TOML)?;
    c.destinations = crate::destinations::Destinations::from_toml(DESTINATIONS_TOML)?;
    c.env_values = crate::env_values::EnvValues::from_toml(ENV_VALUES_TOML)?;
    c.readonly = crate::readonly::ReadonlyOptions::from_toml(READONLY_TOML)?;
    Ok(c)
});

/// The shipped program knowledge, parsed on first use.
///
/// ```
/// use execkit_grammar::knowledge::{catalog, Trait};
/// let k = catalog().unwrap();
/// assert!(k.has("bash", Trait::Shell));
/// assert!(k.has("cd", Trait::Builtin));
/// ```
pub fn catalog() -> Result<&'static Catalog, KnowledgeError> {
    CATALOG.as_ref().map_err(Clone::clone)
}

/// True if `word` is a URL (`scheme://...`, or a special scheme such as `https:` however
/// many slashes follow it).
pub fn is_url(word: &str) -> bool {
    // The special schemes parse leniently (`https:/host`, `https:host`, `https:\\host` all
    // reach `host`), so any of them counts.
    let lower = word.get(..6).unwrap_or(word).to_ascii_lowercase();
    if ["http:", "https:", "ftp:", "ws:", "wss:"]
        .iter()
        .any(|s| lower.starts_with(s))
    {
        return true;
    }
    let Some(i) = word.find("://") else {
        return false;
    };
    let scheme = &word[..i];
    !scheme.is_empty()
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
}

/// True if `word` is an scp-style remote (`[user@]host:path`) for programs that take those.
pub(crate) fn is_remote_spec(k: &Catalog, program: &str, word: &str) -> bool {
    if !k.has(program, Trait::RemoteSpec) {
        return false;
    }
    match word.find(':') {
        Some(i) if i > 0 => !word[..i].contains('/'),
        _ => false,
    }
}

/// True if a word looks like a path wherever it appears.
pub(crate) fn looks_like_path(word: &str) -> bool {
    word.starts_with('/')
        || word.starts_with("./")
        || word.starts_with("../")
        || word == "."
        || word == ".."
        || word.contains('/')
}

/// `pattern` (components separated by `/`, each with at most one `*`) against `dir`.
fn dir_matches(pattern: &str, dir: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let d: Vec<&str> = dir.split('/').collect();
    p.len() == d.len()
        && p.iter().zip(&d).all(|(p, d)| match p.split_once('*') {
            None => p == d,
            Some((pre, post)) => {
                d.len() >= pre.len() + post.len() && d.starts_with(pre) && d.ends_with(post)
            }
        })
}

#[cfg(test)]
mod dir_tests {
    use super::dir_matches;

    #[test]
    fn one_star_per_component() {
        assert!(dir_matches("/usr/bin", "/usr/bin"));
        assert!(dir_matches(
            "/usr/lib/gcc/*/*",
            "/usr/lib/gcc/x86_64-linux-gnu/12"
        ));
        assert!(dir_matches("/usr/lib/llvm-*/bin", "/usr/lib/llvm-16/bin"));
        assert!(!dir_matches(
            "/usr/lib/gcc/*/*",
            "/usr/lib/gcc/x86_64-linux-gnu"
        ));
        assert!(!dir_matches("/usr/lib/gcc/*/*", "/usr/lib/gcc/a/b/c"));
        assert!(!dir_matches("/usr/lib/llvm-*/bin", "/usr/lib/lvm-16/bin"));
        assert!(!dir_matches("/usr/bin", "/usr/local/bin"));
    }
}
