//! Lexical path resolution.
//!
//! Resolution is purely textual: `.` and empty components vanish and `..` removes the
//! previous component (never climbing above `/`). Symlinks are not followed because the
//! grammar does no I/O and the command may run on another host; the sandbox (Landlock) is
//! what enforces the real filesystem boundary. `/work/link/../x` therefore resolves to
//! `/work/x` here even if `link` is a symlink, exactly as the shell's own logical `cd` does.

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
}
