//! Live-session truth: just before deciding, every literal path a
//! command names is resolved through symlinks *on the target*, so a workspace symlink to
//! `/etc` is judged as `/etc` too; and every program name is looked up in the shell's
//! real `PATH` (as the framing reported it after the last command), so `jest` found in
//! `./node_modules/.bin` is judged as that file. Over SSH and Docker no kernel sandbox stands
//! behind the policy, so this is what keeps `ln -s /etc cfg; cat cfg/shadow` from passing
//! as a workspace read.
//!
//! Local sessions resolve on this machine (the sandbox sees the same tree); remote ones ask
//! the target through the control channel with `realpath -m` and `command -v`. When the
//! target cannot answer (no GNU `realpath`), paths stay lexical, as in a dry run.

use crate::remote::Control;
use std::collections::BTreeMap;

use crate::local_paths::MAX_PATHS;

pub(crate) use crate::local_paths::local;

/// Where `PATH` (or the default) finds each of `names`, on this machine; relative PATH
/// entries count from `cwd`.
pub(crate) fn local_programs(
    names: &[String],
    path_var: Option<&str>,
    cwd: &str,
) -> BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let path_var = path_var.unwrap_or(crate::config::DEFAULT_PATH);
    let mut out = BTreeMap::new();
    for name in names.iter().take(MAX_PATHS) {
        for dir in path_var.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let candidate = execkit_grammar::resolve_path(cwd, &format!("{dir}/{name}"));
            let executable = std::fs::metadata(&candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if executable {
                out.insert(name.clone(), candidate);
                break;
            }
        }
    }
    out
}

/// Resolves `paths` through symlinks and `programs` through the shell's PATH on the
/// target, in one control command.
pub(crate) async fn remote(
    control: &Control,
    paths: &[String],
    programs: &[String],
    path_var: Option<&str>,
    cwd: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let paths: Vec<&String> = paths.iter().take(MAX_PATHS).collect();
    let programs: Vec<&String> = programs.iter().take(MAX_PATHS).collect();
    if paths.is_empty() && programs.is_empty() {
        return Default::default();
    }
    let q = |v: &[&String]| -> String {
        v.iter()
            .map(|p| crate::frame::single_quote(p))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let set_path = path_var
        .map(|p| format!("PATH={}; ", crate::frame::single_quote(p)))
        .unwrap_or_default();
    // `command -v` from the session's cwd (relative PATH entries), its PATH, for names only.
    let script = format!(
        "cd {cwd} 2>/dev/null; for p in {paths}; do r=$(realpath -m -- \"$p\" 2>/dev/null) || r=; printf '%s\\037' \"$r\"; done; printf '\\036'; {set_path}for n in {progs}; do r=$(command -v -- \"$n\" 2>/dev/null) || r=; printf '%s\\037' \"$r\"; done",
        cwd = crate::frame::single_quote(cwd),
        paths = q(&paths),
        progs = q(&programs),
    );
    let Some((_, out)) = control.run(&script).await else {
        return Default::default();
    };
    let Some((path_part, prog_part)) = out.split_once('\u{1e}') else {
        return Default::default();
    };
    let answers = |part: &str, n: usize| -> Option<Vec<String>> {
        let v: Vec<String> = part.split('\u{1f}').map(str::to_string).collect();
        // One answer per question and a trailing empty piece; anything else is not trusted.
        (v.len() == n + 1).then_some(v)
    };
    let mut real_paths = BTreeMap::new();
    if let Some(a) = answers(path_part, paths.len()) {
        for (p, r) in paths.iter().zip(a) {
            if r.starts_with('/') && r != **p {
                real_paths.insert((*p).clone(), r);
            }
        }
    }
    let mut real_programs = BTreeMap::new();
    if let Some(a) = answers(prog_part, programs.len()) {
        for (n, r) in programs.iter().zip(a) {
            if r.starts_with('/') {
                real_programs.insert((*n).clone(), execkit_grammar::resolve_path("/", &r));
            }
        }
    }
    (real_paths, real_programs)
}
