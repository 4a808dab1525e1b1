//! Predicted facts against observed effects.
//!
//! An effect is *predicted* when a fact of the decision names it (an exec fact for the
//! program, a path fact at or above the path written, a connect fact for a network
//! connection), or when `implicit.toml` declares it for a program the facts name. Every
//! other effect is a divergence: the grammar missed something the command really did.

use crate::effects::{Effect, Observed};
use crate::OracleError;
use execkit_engine::{Action, Decision};
use serde::Deserialize;
use wildmatch::WildMatch;

const IMPLICIT_TOML: &str = include_str!("implicit.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    names: Vec<String>,
    #[serde(default)]
    children: Vec<String>,
    #[serde(default)]
    writes: Vec<String>,
    #[serde(default)]
    unix: Vec<String>,
    #[serde(default)]
    network: bool,
    #[serde(default)]
    opaque: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    #[serde(rename = "program")]
    entries: Vec<Entry>,
}

/// The implicit effects of programs (`implicit.toml`).
#[derive(Debug)]
pub struct Implicit {
    entries: Vec<Entry>,
}

impl Implicit {
    /// The shipped declarations.
    pub fn shipped() -> Result<Implicit, OracleError> {
        let f: File = toml::from_str(IMPLICIT_TOML)
            .map_err(|e| OracleError::Setup(format!("implicit.toml: {e}")))?;
        Ok(Implicit { entries: f.entries })
    }

    /// True if one of `predicted`'s programs runs code no fact can describe: a script or
    /// inline code of an interpreter, a project's recipes, or a file named by path
    /// (workspace code). Their effects are judged by where they run, not by facts.
    pub fn runs_unseen_code(&self, predicted: &Predicted) -> bool {
        predicted.programs.iter().any(|p| p.starts_with("path:"))
            || self
                .for_programs(&predicted.bases())
                .any(|e| e.opaque && !e.names.iter().any(|n| n == "*"))
    }

    fn for_programs<'a>(&'a self, programs: &'a [String]) -> impl Iterator<Item = &'a Entry> {
        self.entries.iter().filter(move |e| {
            e.names
                .iter()
                .any(|n| n == "*" || programs.iter().any(|p| p == n))
        })
    }
}

/// What the decision predicts.
#[derive(Debug, Default)]
pub struct Predicted {
    /// Program entity ids (`git`, `path:/work/run.sh`, `(dynamic)`).
    pub programs: Vec<String>,
    /// Absolute paths named by any path fact.
    pub paths: Vec<String>,
    /// Destinations of connect facts.
    pub hosts: Vec<String>,
    /// Working directories the facts assume.
    pub cwds: Vec<String>,
}

/// The id inside `Type::"id"`.
fn entity_id(resource: &str) -> Option<String> {
    let start = resource.find("::\"")? + 3;
    let inner = resource[start..].strip_suffix('"')?;
    Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

impl Predicted {
    /// The facts of `d`.
    pub fn of(d: &Decision) -> Predicted {
        let mut p = Predicted::default();
        for f in &d.facts {
            let Some(id) = entity_id(&f.resource) else {
                continue;
            };
            let list = match f.action {
                Action::Exec => &mut p.programs,
                Action::PathArg | Action::WritePath | Action::ReadPath | Action::Chdir => {
                    &mut p.paths
                }
                Action::Connect => &mut p.hosts,
                _ => continue,
            };
            if !list.contains(&id) {
                list.push(id);
            }
            if let Some(c) = &f.cwd {
                if !p.cwds.contains(c) {
                    p.cwds.push(c.clone());
                }
            }
        }
        p
    }

    /// Base names of the programs (`path:/work/run.sh` → `run.sh`).
    fn bases(&self) -> Vec<String> {
        self.programs
            .iter()
            .map(|p| base(p.strip_prefix("path:").unwrap_or(p)).to_string())
            .collect()
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// `p` is `q` or below it; a `q` with a glob (`/work/*` for `*.o`) matches as a pattern.
fn at_or_below(p: &str, q: &str) -> bool {
    if q.contains(['*', '?']) {
        return WildMatch::new(q).matches(p) || WildMatch::new(&format!("{q}/*")).matches(p);
    }
    p == q || q == "/" || p.strip_prefix(q).is_some_and(|r| r.starts_with('/'))
}

/// An effect no fact predicted.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// What happened.
    pub effect: Effect,
    /// The trace line.
    pub line: String,
}

/// Where the command ran.
pub struct Where<'a> {
    /// The workspace path.
    pub workspace: &'a str,
    /// The home directory.
    pub home: &'a str,
    /// The starting directory.
    pub cwd: &'a str,
}

/// Every observed effect that `predicted` (with `implicit`) does not cover.
pub fn divergences(
    observed: &[Observed],
    predicted: &Predicted,
    implicit: &Implicit,
    at: &Where<'_>,
) -> Vec<Divergence> {
    let bases = predicted.bases();
    let user_home = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir.display().to_string())
        .unwrap_or_else(|| "/nonexistent".into());
    let declared: Vec<&Entry> = implicit.for_programs(&bases).collect();
    let mut cwds: Vec<String> = predicted.cwds.clone();
    cwds.push(at.cwd.to_string());
    let expand = |pattern: &str| -> Vec<String> {
        let mut out = vec![pattern
            .replace("{workspace}", at.workspace)
            .replace("{user_home}", &user_home)
            .replace("{home}", at.home)];
        if pattern.contains("{cwd}") {
            out = cwds.iter().map(|c| out[0].replace("{cwd}", c)).collect();
        }
        if pattern.contains("{pathdirs}") {
            // Every ancestor of every named path (`mkdir -p`, temporary siblings).
            let mut dirs: Vec<String> = Vec::new();
            for p in &predicted.paths {
                let mut d = p.as_str();
                while let Some((parent, _)) = d.rsplit_once('/') {
                    let parent = if parent.is_empty() { "/" } else { parent };
                    if !dirs.iter().any(|x| x == parent) {
                        dirs.push(parent.to_string());
                    }
                    if parent == "/" {
                        break;
                    }
                    d = parent;
                }
            }
            out = dirs
                .iter()
                .map(|d| out[0].replace("{pathdirs}", d.trim_end_matches('/')))
                .collect();
        }
        out
    };
    let matches_any = |patterns: &[String], text: &str| {
        patterns
            .iter()
            .flat_map(|p| expand(p))
            .any(|p| WildMatch::new(&p).matches(text))
    };
    let mut out = Vec::new();
    for o in observed {
        let covered = match &o.effect {
            Effect::Exec { path, argv0 } => {
                let names = [base(path), base(argv0)];
                predicted
                    .programs
                    .iter()
                    .any(|p| match p.strip_prefix("path:") {
                        Some(abs) => abs == path,
                        None => names.contains(&p.as_str()),
                    })
                    || declared
                        .iter()
                        .any(|e| names.iter().any(|n| matches_any(&e.children, n)))
            }
            Effect::Write { path, .. } => {
                predicted.paths.iter().any(|q| at_or_below(path, q))
                    || declared.iter().any(|e| matches_any(&e.writes, path))
                    || (path == "/"
                        && declared
                            .iter()
                            .any(|e| e.writes.iter().any(|w| w == "{pathdirs}")))
            }
            Effect::Connect { .. } => {
                !predicted.hosts.is_empty() || declared.iter().any(|e| e.network)
            }
            Effect::UnixConnect { path } => {
                predicted.paths.iter().any(|q| at_or_below(path, q))
                    || declared.iter().any(|e| matches_any(&e.unix, path))
            }
        };
        if !covered {
            out.push(Divergence {
                effect: o.effect.clone(),
                line: o.line.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids() {
        assert_eq!(entity_id("Path::\"/work/a\"").as_deref(), Some("/work/a"));
        assert_eq!(entity_id("Program::\"git\"").as_deref(), Some("git"));
        assert_eq!(entity_id("Path::\"/a\\\"b\"").as_deref(), Some("/a\"b"));
        assert!(at_or_below("/work/a/b", "/work/a"));
        assert!(!at_or_below("/work/ab", "/work/a"));
    }

    #[test]
    fn an_unnamed_exec_and_write_diverge() {
        let implicit = Implicit::shipped().unwrap_or_else(|e| panic!("{e}"));
        let predicted = Predicted {
            programs: vec!["awk".into()],
            paths: vec!["/work/notes.txt".into()],
            hosts: vec![],
            cwds: vec!["/work".into()],
        };
        let obs = |effect| Observed {
            effect,
            line: String::new(),
        };
        let observed = [
            obs(Effect::Exec {
                path: "/usr/bin/awk".into(),
                argv0: "awk".into(),
            }),
            obs(Effect::Exec {
                path: "/bin/sh".into(),
                argv0: "sh".into(),
            }),
            obs(Effect::Write {
                path: "/etc/y".into(),
                how: "openat".into(),
            }),
            obs(Effect::Write {
                path: "/dev/null".into(),
                how: "openat".into(),
            }),
        ];
        let at = Where {
            workspace: "/work",
            home: "/home/agent",
            cwd: "/work",
        };
        let d = divergences(&observed, &predicted, &implicit, &at);
        let got: Vec<String> = d.iter().map(|d| d.effect.to_string()).collect();
        assert_eq!(got, ["exec /bin/sh (argv0 sh)", "write /etc/y (openat)"]);
    }
}
