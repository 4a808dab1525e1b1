//! Live-session truth for paths (issue 15, class 6): just before deciding, every literal
//! path a command names is resolved through symlinks *on the target*, so a workspace
//! symlink to `/etc` is judged as `/etc` too. Over SSH and Docker no kernel sandbox stands
//! behind the policy, so this is what keeps `ln -s /etc cfg; cat cfg/shadow` from passing
//! as a workspace read.
//!
//! Local sessions resolve on this machine (the sandbox sees the same tree); remote ones ask
//! the target through the control channel with `realpath -m`. When the target cannot
//! answer (no GNU `realpath`), paths stay lexical, as in a dry run.

use crate::remote::Control;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Most paths resolved per command (a command naming more is judged lexically beyond it).
const MAX_PATHS: usize = 256;

/// The real location of an absolute lexical path: the longest existing ancestor resolved
/// through symlinks, the rest appended. `None` when nothing along it is a symlink.
pub(crate) fn resolve_local(lexical: &str) -> Option<String> {
    let path = Path::new(lexical);
    let mut existing = PathBuf::from("/");
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) if rest.is_empty() => {
                let next = existing.join(n);
                if std::fs::symlink_metadata(&next).is_ok() {
                    existing = next;
                } else {
                    rest.push(n);
                }
            }
            Component::Normal(n) => rest.push(n),
            _ => {}
        }
    }
    let mut real = std::fs::canonicalize(&existing).ok()?;
    for n in rest {
        real.push(n);
    }
    let real = real.to_string_lossy().into_owned();
    (real != lexical).then_some(real)
}

/// Resolves `paths` on this machine.
pub(crate) fn local(paths: &[String]) -> BTreeMap<String, String> {
    paths
        .iter()
        .take(MAX_PATHS)
        .filter_map(|p| resolve_local(p).map(|r| (p.clone(), r)))
        .collect()
}

/// Resolves `paths` on the target through its control channel.
pub(crate) async fn remote(control: &Control, paths: &[String]) -> BTreeMap<String, String> {
    let paths: Vec<&String> = paths.iter().take(MAX_PATHS).collect();
    if paths.is_empty() {
        return BTreeMap::new();
    }
    let quoted: Vec<String> = paths
        .iter()
        .map(|p| crate::frame::single_quote(p))
        .collect();
    let script = format!(
        "command -v realpath >/dev/null || exit 3; for p in {}; do r=$(realpath -m -- \"$p\" 2>/dev/null) || r=; printf '%s\\037' \"$r\"; done",
        quoted.join(" ")
    );
    let Some((Some(0), out)) = control.run(&script).await else {
        return BTreeMap::new();
    };
    let answers: Vec<&str> = out.split('\u{1f}').collect();
    // One answer per path and a trailing empty piece; anything else is not trusted.
    if answers.len() != paths.len() + 1 {
        return BTreeMap::new();
    }
    paths
        .iter()
        .zip(answers)
        .filter(|(p, r)| r.starts_with('/') && r != *p)
        .map(|(p, r)| ((*p).clone(), r.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::resolve_local;

    #[test]
    fn resolves_through_a_symlink_and_keeps_the_missing_rest() {
        let dir = std::env::temp_dir().join(format!("ek-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real/sub")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link"))
            .unwrap_or_else(|e| panic!("{e}"));
        let lexical = format!("{}/link/sub/missing.txt", dir.display());
        let want = format!("{}/real/sub/missing.txt", dir.display());
        assert_eq!(resolve_local(&lexical).as_deref(), Some(want.as_str()));
        let plain = format!("{}/real/sub", dir.display());
        assert_eq!(resolve_local(&plain), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
