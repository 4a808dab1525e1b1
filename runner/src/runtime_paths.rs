//! Runtime decisions of a local session's program starts see paths the kernel's way: a
//! path an argument names through a symlink the session could have planted (in the
//! workspace, its home or the shared tmp directories) is decided as where it leads, as the
//! decision on the command text does in live sessions (`crate::live_paths`). `ln -s ~/.ssh
//! k` then a script's `cat k/id_rsa` is the `cat` of the key.
//!
//! Trade-offs: only paths below those directories are resolved (nothing else can hold a
//! link the session made), and a start whose arguments reach through a link is decided
//! each time, never remembered, since the link can change between two identical starts.
//! Remote sessions stay lexical here: their files are the target's, and the kernel's
//! closed home bounds what a link reaches there.

use execkit_engine::{Decision, DecisionEnv, Engine};
use execkit_helper::msg::ProgramStart;
use std::path::Path;

/// The directories a session can make links in: `workspace`, `home` and the shared tmps.
fn own_dirs(env: &DecisionEnv) -> [&str; 4] {
    [
        env.workspace.as_str(),
        env.home.as_str(),
        "/tmp",
        "/var/tmp",
    ]
}

fn below(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    !dir.is_empty() && (path == dir || path.starts_with(&format!("{dir}/")))
}

/// The words of `start` that may name paths: its arguments, and the values of
/// `--option=value` arguments.
fn path_words(start: &ProgramStart) -> impl Iterator<Item = &str> {
    start.argv.iter().skip(1).filter_map(|w| {
        if let Some((_, v)) = w.split_once('=').filter(|_| w.starts_with('-')) {
            Some(v)
        } else {
            (!w.starts_with('-')).then_some(w.as_str())
        }
    })
}

/// True if a component of `path` below `dir` is a symbolic link.
fn has_link_below(path: &str, dir: &str) -> bool {
    let mut at = Path::new(dir.trim_end_matches('/')).to_path_buf();
    let rest = path[dir.trim_end_matches('/').len()..].trim_start_matches('/');
    for part in rest.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return true; // resolved by the engine's live pass: decide afresh
        }
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// True if an argument of `start` names a path through a link below the session's own
/// directories (or the directory it runs in is reached through one).
pub(crate) fn through_links(start: &ProgramStart, env: &DecisionEnv) -> bool {
    let dirs = own_dirs(env);
    let reaches = |word: &str| {
        let p = execkit_grammar::resolve_path(&start.cwd, word);
        dirs.iter().any(|d| below(&p, d) && has_link_below(&p, d))
    };
    path_words(start).any(reaches) || reaches(".")
}

/// `engine`'s decision on `command` with the real locations of the paths it names below
/// the session's own directories (the live pass of the text's decision, on this machine).
pub(crate) fn decide_live(engine: &Engine, command: &str, mut env: DecisionEnv) -> Decision {
    let prepared = engine.prepare(command, &env);
    let queries = engine.live_queries(&prepared, &env);
    let dirs = own_dirs(&env);
    let paths: Vec<String> = queries
        .paths
        .into_iter()
        .filter(|p| dirs.iter().any(|d| below(p, d)))
        .collect();
    env.real_paths = crate::local_paths::local(&paths);
    engine.decide_prepared(command, &prepared, &env)
}
