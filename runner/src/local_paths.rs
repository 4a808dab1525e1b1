//! Paths resolved on this machine the kernel's way (symlinks before `..`): for a local
//! session's live decisions on the command text (`crate::live_paths`) and on its program
//! starts (`crate::runtime_paths`).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Most paths resolved per command (a command naming more is judged lexically beyond it).
pub(crate) const MAX_PATHS: usize = 256;

/// The real location of an absolute path: the longest existing ancestor resolved the
/// kernel's way (each symlink before the `..` after it), the rest appended with its `..`
/// taken lexically (nothing there exists to be a link). `None` when that is the path as
/// given.
pub(crate) fn resolve_local(given: &str) -> Option<String> {
    let path = Path::new(given);
    let mut existing = PathBuf::from("/");
    let mut rest: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::ParentDir if rest.is_empty() => {
                let next = existing.join(c);
                if std::fs::symlink_metadata(&next).is_ok() {
                    existing = next;
                } else {
                    rest.push(c);
                }
            }
            Component::Normal(_) | Component::ParentDir => rest.push(c),
            _ => {}
        }
    }
    let mut real = std::fs::canonicalize(&existing).ok()?;
    for c in rest {
        match c {
            Component::ParentDir => {
                real.pop();
            }
            c => real.push(c),
        }
    }
    let real = real.to_string_lossy().into_owned();
    (real != given).then_some(real)
}

/// Resolves `paths` on this machine.
pub(crate) fn local(paths: &[String]) -> BTreeMap<String, String> {
    paths
        .iter()
        .take(MAX_PATHS)
        .filter_map(|p| resolve_local(p).map(|r| (p.clone(), r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::resolve_local;

    #[test]
    fn resolves_symlinks_before_dot_dot_like_the_kernel() {
        let dir = std::env::temp_dir().join(format!("ek-live-phys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("elsewhere/deep")).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        std::fs::create_dir_all(dir.join("ws")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere/deep"), dir.join("ws/l")).unwrap();
        let given = format!("{}/ws/l/../secret", dir.display());
        // Lexically `ws/secret`; the kernel reads `elsewhere/secret`.
        assert_eq!(
            resolve_local(&given),
            Some(format!("{}/elsewhere/secret", dir.display()))
        );
        let missing = format!("{}/ws/none/../x", dir.display());
        assert_eq!(
            resolve_local(&missing),
            Some(format!("{}/ws/x", dir.display()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

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
