//! `PATH` assignments that only add workspace directories:
//! `PATH=$PWD/node_modules/.bin:$PATH` is how projects run their own tools. In a live
//! session every program is then resolved through the shell's real PATH and judged as the
//! file it is, so such an assignment is reported to policies as `PATH+workspace` rather
//! than `PATH` (which the shipped sets forbid).

/// True if `raw` (an assignment's value as written) is `$PATH` with directories inside
/// `workspace` before or after it, and nothing else: each added directory is literal,
/// `$PWD/...`, `$HOME/...` or `~/...`, relative ones counting from `cwd`.
pub(crate) fn adds_only_workspace_dirs(raw: &str, cwd: &str, home: &str, workspace: &str) -> bool {
    workspace_dirs(raw, cwd, home, workspace).is_some()
}

/// The directories such a value adds (see [`adds_only_workspace_dirs`]), absolute, in
/// order; `None` when it is not of that form.
pub(crate) fn workspace_dirs(
    raw: &str,
    cwd: &str,
    home: &str,
    workspace: &str,
) -> Option<Vec<String>> {
    let v = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let mut saw_path = false;
    let mut added = Vec::new();
    for part in v.split(':') {
        if matches!(part, "$PATH" | "${PATH}") {
            if saw_path {
                return None;
            }
            saw_path = true;
            continue;
        }
        let expanded = if let Some(rest) = strip_var(part, "PWD") {
            format!("{cwd}{rest}")
        } else if let Some(rest) = strip_var(part, "HOME").or_else(|| part.strip_prefix('~')) {
            format!("{home}{rest}")
        } else {
            part.to_string()
        };
        if expanded.is_empty()
            || expanded.contains(['$', '`', '*', '?', '[', '\'', '"', '\\', '{', '}'])
        {
            return None;
        }
        let dir = execkit_grammar::resolve_path(cwd, &expanded);
        let ws = workspace.trim_end_matches('/');
        if dir != ws && !dir.starts_with(&format!("{ws}/")) {
            return None;
        }
        added.push(dir);
    }
    (saw_path && !added.is_empty()).then_some(added)
}

fn strip_var<'a>(part: &'a str, name: &str) -> Option<&'a str> {
    part.strip_prefix(&format!("${{{name}}}"))
        .or_else(|| part.strip_prefix(&format!("${name}")))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::adds_only_workspace_dirs as ok;

    #[test]
    fn only_workspace_dirs_around_path() {
        let (cwd, home, ws) = ("/work", "/home/agent", "/work");
        assert!(ok("$PWD/node_modules/.bin:$PATH", cwd, home, ws));
        assert!(ok("\"$PWD/node_modules/.bin:$PATH\"", cwd, home, ws));
        assert!(ok("./bin:${PATH}", cwd, home, ws));
        assert!(ok("$PATH:/work/tools/bin", cwd, home, ws));
        assert!(!ok("/tmp/bin:$PATH", cwd, home, ws));
        assert!(!ok("$HOME/bin:$PATH", cwd, home, ws));
        assert!(!ok("/work/bin", cwd, home, ws));
        assert!(!ok("$X:$PATH", cwd, home, ws));
        assert!(!ok("/work/../etc:$PATH", cwd, home, ws));
        assert!(!ok("$PWD/bin:$PATH:$PATH", cwd, home, ws));
        assert!(!ok("$PWDX/bin:$PATH", cwd, home, ws));
    }
}
