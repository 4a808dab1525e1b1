//! From commands to facts: one fact per thing a command does that a policy can judge.
//!
//! `exec` per simple command (and per candidate cwd), `path_arg` per path-like argument,
//! `write_path`/`read_path` per redirect target, `chdir` per `cd`/`pushd` target, and
//! `connect` per network destination. Each fact becomes one Cedar request.

use crate::fast_hash::{FastSet, SmallOrderedSet};
use crate::network::{self, Destination};
use execkit_grammar::knowledge::{Catalog, Trait};
use execkit_grammar::{Command, Cwd, PathRef, RedirectKind, Script};

/// The actions of the execkit schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Run a program.
    Exec,
    /// Name a path as an argument.
    PathArg,
    /// Write or append to a path through a redirect.
    WritePath,
    /// Read a path through a redirect.
    ReadPath,
    /// Change directory.
    Chdir,
    /// Open a network connection.
    Connect,
    /// Open a session on a target (local, an SSH host, a Docker container or image).
    SessionOpen,
}

impl Action {
    /// The Cedar action id.
    pub fn name(self) -> &'static str {
        match self {
            Action::Exec => "exec",
            Action::PathArg => "path_arg",
            Action::WritePath => "write_path",
            Action::ReadPath => "read_path",
            Action::Chdir => "chdir",
            Action::Connect => "connect",
            Action::SessionOpen => "session_open",
        }
    }

    /// Every action.
    pub const ALL: [Action; 7] = [
        Action::Exec,
        Action::PathArg,
        Action::WritePath,
        Action::ReadPath,
        Action::Chdir,
        Action::Connect,
        Action::SessionOpen,
    ];
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a fact is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Program,
    Path(PathRef),
    Host(Destination),
}

/// One thing a command does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Fact {
    pub action: Action,
    /// Index into the script's commands.
    pub cmd: usize,
    pub target: Target,
    /// The cwd candidate this fact assumes (`None`: unknown).
    pub cwd: Option<String>,
    /// `arg`, `source`, `write`, `append`, `readwrite`, `read`, `chdir`, `exec`, `connect`.
    pub mode: &'static str,
    /// The word as written.
    pub raw: String,
}

/// The exact paths and glob-bounding directories of path facts, and the directory of
/// each exact path (for programs that act on a symlink itself), deduplicated.
pub(crate) fn literal_paths(facts: &[Fact]) -> Vec<String> {
    let mut out: SmallOrderedSet<String> = SmallOrderedSet::default();
    let mut add = |p: &str| {
        if !out.contains(p) {
            out.insert(p.to_string());
        }
    };
    for f in facts {
        match &f.target {
            Target::Path(PathRef::Exact(p)) => {
                add(p);
                if let Some((parent, _)) = p.rsplit_once('/') {
                    add(if parent.is_empty() { "/" } else { parent });
                }
            }
            Target::Path(PathRef::Under(p)) => add(p),
            _ => {}
        }
    }
    out.into_vec()
}

/// Words that climb with `..`, as the kernel reads them: (command index, the word as
/// written, the cwd joined with its value and `..` kept). The kernel resolves each symlink
/// before the `..` after it (`l/../x`, with `l` a link to `/home/u/sub`, is `/home/u/x`,
/// not the lexical `./x`), so a live session resolves these on the target as they are.
pub(crate) fn physical_paths(script: &Script) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, c) in script.commands.iter().enumerate() {
        let Some(cwd) = c.cwd.primary() else {
            continue;
        };
        for w in c.args.iter().chain(c.redirects.iter().map(|r| &r.target)) {
            let climbs = w.value.split('/').any(|part| part == "..");
            let plain = !w.value.starts_with('-') && !w.value.contains('=');
            if !climbs || !plain || !w.is_literal() || w.paths.is_empty() {
                continue;
            }
            let physical = if w.value.starts_with('/') {
                w.value.clone()
            } else {
                format!("{}/{}", cwd.trim_end_matches('/'), w.value)
            };
            out.push((i, w.raw.clone(), physical));
        }
    }
    out
}

/// Programs that act on a symlink itself, not on what it points to (`rm link`): for them
/// only the directories leading to the last name are resolved, unless the word ends in `/`.
const ACT_ON_LINKS: [&str; 5] = ["rm", "unlink", "mv", "ln", "readlink"];

/// For each path fact whose path really lies elsewhere (a symlink on the way), the same
/// fact at the real path, so that both places are judged.
pub(crate) fn add_real_paths(
    facts: &mut Vec<Fact>,
    script: &Script,
    real: &std::collections::BTreeMap<String, String>,
) {
    if real.is_empty() {
        return;
    }
    let real_of = |p: &str, on_link: bool| -> Option<String> {
        if !on_link {
            return real.get(p).cloned();
        }
        let (parent, name) = p.rsplit_once('/')?;
        let parent = if parent.is_empty() { "/" } else { parent };
        let dir = real.get(parent)?;
        Some(format!("{}/{name}", dir.trim_end_matches('/')))
    };
    // Facts already there, hashed: a script may hold many thousands, and comparing each
    // new fact with all before it would grow with the square of the script.
    let known: FastSet<&Fact> = facts.iter().collect();
    let mut extra: SmallOrderedSet<Fact> = SmallOrderedSet::default();
    for f in facts.iter() {
        let on_link = f.action == Action::PathArg
            && !f.raw.ends_with('/')
            && script
                .commands
                .get(f.cmd)
                .is_some_and(|c| ACT_ON_LINKS.contains(&c.program.base_name()));
        let moved = match &f.target {
            Target::Path(PathRef::Exact(p)) => real_of(p, on_link).map(PathRef::Exact),
            Target::Path(PathRef::Under(p)) => real.get(p).cloned().map(PathRef::Under),
            _ => None,
        };
        if let Some(target) = moved {
            let mut g = f.clone();
            g.raw = format!("{} (really {})", f.raw, target_text(&target));
            g.target = Target::Path(target);
            if g.target != f.target && !known.contains(&g) {
                extra.insert(g);
            }
        }
    }
    // Words with `..`, resolved the kernel's way: the same facts at the real path.
    for (cmd, raw, physical) in physical_paths(script) {
        let Some(r) = real.get(&physical) else {
            continue;
        };
        for f in facts.iter().filter(|f| f.cmd == cmd && f.raw == raw) {
            let mut g = f.clone();
            g.raw = format!("{} (really {r})", f.raw);
            g.target = Target::Path(PathRef::Exact(r.clone()));
            if g.target != f.target && !known.contains(&g) {
                extra.insert(g);
            }
        }
    }
    facts.extend(extra.into_vec());
}

fn target_text(p: &PathRef) -> String {
    match p {
        PathRef::Exact(p) => p.clone(),
        PathRef::Under(p) => format!("{p}/*"),
        PathRef::Anywhere => "*".into(),
    }
}

/// A path of `knowledge/effects.toml` as a fact: `~/` is `home`, `{cwd}` the command's
/// directory (anywhere when unknown), and a `*` means anything below the directory before
/// it.
fn implicit_path(pattern: &str, home: &str, cwd: Option<&str>) -> PathRef {
    let full = if let Some(rest) = pattern.strip_prefix("~/") {
        format!("{}/{rest}", home.trim_end_matches('/'))
    } else if let Some(rest) = pattern.strip_prefix("{cwd}") {
        match cwd {
            Some(c) => format!("{}{rest}", c.trim_end_matches('/')),
            None => return PathRef::Anywhere,
        }
    } else {
        pattern.to_string()
    };
    match full.find('*') {
        Some(at) => {
            let dir = full[..at].rsplit_once('/').map_or("/", |(d, _)| d);
            PathRef::Under(execkit_grammar::resolve_path(
                "/",
                if dir.is_empty() { "/" } else { dir },
            ))
        }
        None => PathRef::Exact(execkit_grammar::resolve_path("/", &full)),
    }
}

fn cwd_candidates(c: &Cwd) -> Vec<Option<String>> {
    match c {
        Cwd::Known(v) if !v.is_empty() => v.iter().cloned().map(Some).collect(),
        _ => vec![None],
    }
}

/// Extracts every fact of a script, deduplicated, in source order.
pub(crate) fn extract(script: &Script, home: &str, k: &Catalog) -> Vec<Fact> {
    let mut out: SmallOrderedSet<Fact> = SmallOrderedSet::default();
    let mut push = |f: Fact| {
        out.insert(f);
    };
    for (i, c) in script.commands.iter().enumerate() {
        let primary = c.cwd.primary().map(str::to_string);
        for cwd in cwd_candidates(&c.cwd) {
            push(Fact {
                action: Action::Exec,
                cmd: i,
                target: Target::Program,
                cwd,
                mode: "exec",
                raw: c.argv0.raw.clone(),
            });
        }
        let prog = c.program.base_name();
        let is_cd = c.program.is("cd") || c.program.is("pushd");
        if is_cd {
            let target = c.args.iter().find(|a| {
                execkit_grammar::is_stack_entry(&a.value)
                    || !(a.value.starts_with('-') && a.value.len() > 1 && a.is_literal())
            });
            match target {
                None => push(Fact {
                    action: Action::Chdir,
                    cmd: i,
                    target: Target::Path(PathRef::Exact(home.to_string())),
                    cwd: primary.clone(),
                    mode: "chdir",
                    raw: String::new(),
                }),
                Some(a)
                    if a.value == "-"
                        || (c.program.is("pushd") && execkit_grammar::is_stack_entry(&a.value)) =>
                {
                    push(Fact {
                        action: Action::Chdir,
                        cmd: i,
                        target: Target::Path(PathRef::Anywhere),
                        cwd: primary.clone(),
                        mode: "chdir",
                        raw: a.raw.clone(),
                    });
                }
                Some(a) => {
                    for p in &a.paths {
                        push(Fact {
                            action: Action::Chdir,
                            cmd: i,
                            target: Target::Path(p.clone()),
                            cwd: primary.clone(),
                            mode: "chdir",
                            raw: a.raw.clone(),
                        });
                    }
                }
            }
        }
        let path_args: Vec<usize> = (0..c.args.len())
            .filter(|&j| !c.args[j].paths.is_empty())
            .collect();
        let target_dir = c.flags.contains("-t") || c.flags.contains("--target-directory");
        let copy_like = k.has(prog, Trait::CopyLike) && !target_dir;
        for (n, &j) in path_args.iter().enumerate() {
            if is_cd {
                continue;
            }
            let a = &c.args[j];
            let mode = if written_by_option(k, prog, &c.args, j) {
                "write"
            } else if copy_like && n + 1 < path_args.len() {
                "source"
            } else {
                "arg"
            };
            for p in &a.paths {
                push(Fact {
                    action: Action::PathArg,
                    cmd: i,
                    target: Target::Path(p.clone()),
                    cwd: primary.clone(),
                    mode,
                    raw: a.raw.clone(),
                });
            }
        }
        // Paths listed in a file or on stdin (`tar -T -`): any path at all.
        for (j, a) in c.args.iter().enumerate() {
            let attached = a
                .value
                .split_once('=')
                .is_some_and(|(flag, _)| flag.starts_with("--") && k.lists_paths(prog, flag));
            let detached = j > 0 && k.lists_paths(prog, &c.args[j - 1].value);
            if attached || detached {
                push(Fact {
                    action: Action::PathArg,
                    cmd: i,
                    target: Target::Path(PathRef::Anywhere),
                    cwd: primary.clone(),
                    mode: "arg",
                    raw: format!("the paths listed in {}", a.raw),
                });
            }
        }
        // Files the program touches without naming them (`gh auth token`, `npm config set`).
        for rule in k.effects().matching(prog, &c.positionals, &c.flags) {
            let cmd_cwd = primary.as_deref();
            let touched = rule
                .reads
                .iter()
                .map(|p| (Action::ReadPath, "implicit-read", p))
                .chain(
                    rule.writes
                        .iter()
                        .map(|p| (Action::WritePath, "implicit-write", p)),
                );
            for (action, mode, pattern) in touched {
                push(Fact {
                    action,
                    cmd: i,
                    target: Target::Path(implicit_path(pattern, home, cmd_cwd)),
                    cwd: primary.clone(),
                    mode,
                    raw: rule.why.clone(),
                });
            }
        }
        for r in &c.redirects {
            if network::dev_tcp(&r.target.value).is_some() {
                continue;
            }
            let (action, mode) = match r.kind {
                RedirectKind::Write => (Action::WritePath, "write"),
                RedirectKind::Append => (Action::WritePath, "append"),
                RedirectKind::ReadWrite => (Action::WritePath, "readwrite"),
                RedirectKind::Read => (Action::ReadPath, "read"),
                _ => continue,
            };
            for p in &r.target.paths {
                push(Fact {
                    action,
                    cmd: i,
                    target: Target::Path(p.clone()),
                    cwd: primary.clone(),
                    mode,
                    raw: r.target.raw.clone(),
                });
            }
        }
        for d in crate::destinations(c, k) {
            let raw = d.raw.clone();
            push(Fact {
                action: Action::Connect,
                cmd: i,
                target: Target::Host(d),
                cwd: primary.clone(),
                mode: "connect",
                raw,
            });
        }
    }
    out.into_vec()
}

/// The command a fact came from.
pub(crate) fn command<'s>(script: &'s Script, f: &Fact) -> &'s Command {
    &script.commands[f.cmd]
}

/// Whether argument `j` is the value of one of the program's output options
/// (`sort -o FILE`, `git log --output=FILE`): a file it writes, whatever else it reads.
fn written_by_option(
    k: &execkit_grammar::knowledge::Catalog,
    prog: &str,
    args: &[execkit_grammar::Word],
    j: usize,
) -> bool {
    use execkit_grammar::knowledge::ValueKind;
    let output = |flag: &str| k.value_option(prog, flag) == Some(ValueKind::Output);
    let attached = args[j]
        .value
        .split_once('=')
        .is_some_and(|(flag, _)| flag.starts_with("--") && output(flag));
    let detached = j > 0 && output(&args[j - 1].value);
    attached || detached
}
