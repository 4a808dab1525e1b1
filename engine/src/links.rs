//! Links made earlier in the same script.
//!
//! `ln -s ~ h; rm -rf h/` removes the home, yet `h/` lexically lies in the workspace, and a
//! live session cannot resolve a link that does not exist yet when the script is judged.
//! So each link a command makes (`ln`, `ln -s`, `cp -s`, `cp -l`) is remembered, and every
//! path fact of a *later* command that lies through the link gets a twin fact at the
//! link's target: both places are judged. A symbolic link's relative target counts from
//! the link's directory, as the kernel reads it; a link whose name or target cannot be
//! known makes every path through its possible names "anywhere".
//!
//! Trade-off: when the last operand may be an existing directory (`ln -s T dir`), both
//! readings (`dir` is the link, or `dir/T`'s base name is) are remembered: an extra twin is
//! at worst an extra check.

use crate::facts::{Fact, Target};
use execkit_grammar::knowledge::Catalog;
use execkit_grammar::{resolve_path, Command, PathRef, Script, Word};

/// One link: made by command `cmd`, at `at`, pointing to `to`.
struct Link {
    cmd: usize,
    at: String,
    to: PathRef,
}

/// Adds, for each path fact through a link made by an earlier command, the same fact at
/// the link's target.
pub(crate) fn follow(facts: &mut Vec<Fact>, script: &Script, k: &Catalog) {
    let links: Vec<Link> = script
        .commands
        .iter()
        .enumerate()
        .filter(|(_, c)| k.makes_links(c.program.base_name(), &c.flags))
        .flat_map(|(i, c)| made_by(i, c))
        .collect();
    if links.is_empty() {
        return;
    }
    // Hashed: a script may hold many thousands of facts.
    let known: std::collections::HashSet<&Fact> = facts.iter().collect();
    let mut extra: Vec<Fact> = Vec::new();
    let mut added: std::collections::HashSet<Fact> = std::collections::HashSet::new();
    for f in facts.iter() {
        let Target::Path(p) = &f.target else {
            continue;
        };
        for l in links.iter().filter(|l| l.cmd < f.cmd) {
            if let Some(through) = through(p, l) {
                let mut g = f.clone();
                g.raw = format!("{} (through the link {})", f.raw, l.at);
                g.target = Target::Path(through);
                if !known.contains(&g) && added.insert(g.clone()) {
                    extra.push(g);
                }
            }
        }
    }
    facts.extend(extra);
}

/// `p` reached through link `l`, when it lies at or below the link.
fn through(p: &PathRef, l: &Link) -> Option<PathRef> {
    let (path, under) = match p {
        PathRef::Exact(p) => (p, false),
        PathRef::Under(p) => (p, true),
        PathRef::Anywhere => return None,
    };
    let rest = if path == &l.at {
        ""
    } else {
        path.strip_prefix(&l.at)?.strip_prefix('/')?
    };
    let (target, to_under) = match &l.to {
        PathRef::Exact(t) => (t, false),
        PathRef::Under(t) => (t, true),
        PathRef::Anywhere => return Some(PathRef::Anywhere),
    };
    let joined = if rest.is_empty() {
        target.clone()
    } else {
        resolve_path(target, rest)
    };
    Some(if under || to_under {
        PathRef::Under(joined)
    } else {
        PathRef::Exact(joined)
    })
}

/// The links command `c` (number `i`) makes.
fn made_by(i: usize, c: &Command) -> Vec<Link> {
    let Some(cwd) = c.cwd.primary() else {
        return Vec::new();
    };
    let symbolic = ["-s", "--symbolic", "--symbolic-link"]
        .iter()
        .any(|f| c.flags.contains(*f));
    let mut target_dir: Option<&Word> = None;
    let mut operands: Vec<&Word> = Vec::new();
    let mut args = c.args.iter();
    while let Some(a) = args.next() {
        match a.value.as_str() {
            "-t" | "--target-directory" => target_dir = args.next(),
            "-S" | "--suffix" => {
                args.next();
            }
            "--" => operands.extend(args.by_ref()),
            v if v.starts_with("--target-directory=") => target_dir = Some(a),
            v if v.starts_with('-') && v.len() > 1 && a.is_literal() => {}
            _ => operands.push(a),
        }
    }
    let name = |w: &Word| -> Option<String> {
        let v = w.value.trim_end_matches('/');
        w.is_literal()
            .then(|| v.rsplit('/').next().unwrap_or(v).to_string())
    };
    let place = |w: &Word| -> Option<String> {
        let v = w
            .value
            .strip_prefix("--target-directory=")
            .unwrap_or(&w.value);
        w.is_literal().then(|| resolve_path(cwd, v))
    };
    // (link place, target word) pairs; a place `None` cannot be known.
    let mut made: Vec<(Option<String>, &Word)> = Vec::new();
    match (target_dir, operands.as_slice()) {
        (Some(d), targets) => {
            for t in targets {
                let at = place(d).zip(name(t)).map(|(d, n)| format!("{d}/{n}"));
                made.push((at, t));
            }
        }
        (None, [t]) => made.push((name(t).map(|n| resolve_path(cwd, &n)), t)),
        (None, [targets @ .., last]) => {
            for t in targets {
                let at = place(last);
                let inside = at.clone().zip(name(t)).map(|(d, n)| format!("{d}/{n}"));
                made.push((at, t));
                made.push((inside, t));
            }
        }
        (None, []) => {}
    }
    made.into_iter()
        .filter_map(|(at, t)| {
            // A link whose place cannot be known could be any path: nothing to follow
            // (its own facts are judged as they are).
            let at = at?;
            let to = if !t.is_literal() {
                PathRef::Anywhere
            } else if symbolic && !t.value.starts_with('/') {
                let dir = at
                    .rsplit_once('/')
                    .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
                PathRef::Exact(resolve_path(dir, &t.value))
            } else {
                PathRef::Exact(resolve_path(cwd, &t.value))
            };
            Some(Link { cmd: i, at, to })
        })
        .collect()
}
