//! Lexical path resolution.
//!
//! Resolution is purely textual: `.` and empty components vanish and `..` removes the
//! previous component (never climbing above `/`). Symlinks are not followed because the
//! grammar does no I/O and the command may run on another host. The kernel resolves
//! symlinks before `..`, so a live session also resolves each path that holds `..` the
//! kernel's way on the target (the runner's live paths), and the sandbox (Landlock) bounds
//! what is left.
//!
//! One kind of symlink is known without I/O: the kernel's magic links (`/proc/PID/cwd`,
//! `/proc/PID/root`, `/proc/PID/fd/N`, `/dev/fd/N`), which lead anywhere. A `..` right
//! after one does not climb back into `/proc`: the path stays at the link
//! (`/proc/self/cwd/../../etc` is `/proc/self/cwd`), which policies treat as a descriptor.

/// Resolves `path` against the absolute directory `base` into a canonical absolute path.
///
/// ```
/// assert_eq!(execkit_grammar::resolve_path("/work", "src/../x//y/."), "/work/x/y");
/// assert_eq!(execkit_grammar::resolve_path("/work", "../../../etc"), "/etc");
/// assert_eq!(execkit_grammar::resolve_path("/work", "/tmp/"), "/tmp");
/// ```
pub fn resolve(base: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined_base = if path.starts_with('/') { "" } else { base };
    for comp in joined_base.split('/').chain(path.split('/')) {
        match comp {
            "" | "." => {}
            ".." if is_magic_link(&parts) => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::with_capacity(path.len() + base.len() + 1);
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// True if `parts` (components from `/`) name a magic link of the kernel, whose target is
/// not below it: `/proc/PID/{cwd,root,exe}`, `/proc/PID/fd/N`, `/proc/PID/map_files/R`,
/// the same under `/proc/PID/task/TID`, and `/dev/fd/N`.
fn is_magic_link(parts: &[&str]) -> bool {
    let links = |rest: &[&str]| matches!(rest, ["cwd" | "root" | "exe"] | ["fd" | "map_files", _]);
    match parts {
        ["dev", "fd", _] => true,
        ["proc", _, "task", _, rest @ ..] => links(rest),
        ["proc", _, rest @ ..] => links(rest),
        _ => false,
    }
}

/// The canonical absolute ancestors of a canonical absolute path, nearest first, ending
/// with `/`. The path itself is not included.
///
/// ```
/// assert_eq!(execkit_grammar::ancestors("/a/b/c"), vec!["/a/b", "/a", "/"]);
/// assert!(execkit_grammar::ancestors("/").is_empty());
/// ```
pub fn ancestors(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut p = path;
    while p != "/" && !p.is_empty() {
        match p.rfind('/') {
            Some(0) => {
                p = "/";
            }
            Some(i) => p = &p[..i],
            None => break,
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_is_canonical() {
        assert_eq!(resolve("/", ""), "/");
        assert_eq!(resolve("/work", ""), "/work");
        assert_eq!(resolve("/work", "./a/./b/"), "/work/a/b");
        assert_eq!(resolve("/work", "/work/../etc/passwd"), "/etc/passwd");
        assert_eq!(resolve("/work", "a/../../.."), "/");
        assert_eq!(resolve("/work", "//etc//x"), "/etc/x");
    }

    #[test]
    fn dot_dot_does_not_climb_out_of_a_magic_link() {
        assert_eq!(
            resolve("/work", "/proc/self/cwd/../../home/u/.ssh/id_rsa"),
            "/proc/self/cwd/home/u/.ssh/id_rsa"
        );
        assert_eq!(resolve("/", "/proc/1/root/.."), "/proc/1/root");
        assert_eq!(
            resolve("/", "/proc/self/task/7/cwd/../x"),
            "/proc/self/task/7/cwd/x"
        );
        assert_eq!(resolve("/", "/dev/fd/3/../.."), "/dev/fd/3");
        assert_eq!(
            resolve("/", "/proc/self/fd/../environ"),
            "/proc/self/environ"
        );
        assert_eq!(
            resolve("/", "/proc/self/status/../cmdline"),
            "/proc/self/cmdline"
        );
    }
}
