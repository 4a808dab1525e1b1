//! Checkpoints on an SSH host or in a container: the same store, driven with the `git`
//! there through the session's control channel.
//!
//! The store is a bare git directory in the session's private directory on the remote side
//! (outside the workspace, removed when the session closes), with the workspace as work
//! tree. Every `git` runs with the user's and the system's configuration ignored
//! (`GIT_CONFIG_GLOBAL=/dev/null`, `GIT_CONFIG_NOSYSTEM=1`), hooks pointed at `/dev/null`,
//! no fsmonitor, and the store's `info/attributes` turning filters and conversions off, so
//! nothing of the user's runs and bytes come back exactly. A target without `git` gets a
//! clear error. Restore is one `git read-tree -m -u NOW TARGET`: it rewrites what differs
//! and deletes what the target does not have, and leaves ignored files alone.

use super::{
    CheckpointConfig, CheckpointError, CheckpointInfo, DiffCounts, DiffSummary, RestoreReport,
    MAX_LISTED,
};
use crate::remote::Control;

/// Bytes of unified diff returned at most.
const MAX_DIFF_BYTES: usize = 64 * 1024;
/// Marks the end of a control command's part of the output.
const SEP: &str = "\u{1e}EKSEP";

/// One session's remote store.
pub(crate) struct RemoteStore {
    control: Control,
    dir: String,
    workspace: String,
    config: CheckpointConfig,
    next: u64,
}

/// Single-quoted for a POSIX shell.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl RemoteStore {
    /// Creates the store in `private_dir` for `workspace` on the remote side.
    pub async fn open(
        control: Control,
        private_dir: &str,
        workspace: &str,
        config: &CheckpointConfig,
    ) -> Result<RemoteStore, CheckpointError> {
        let dir = format!("{private_dir}/checkpoints.git");
        let s = RemoteStore {
            control,
            dir,
            workspace: workspace.to_string(),
            config: config.clone(),
            next: 1,
        };
        let excludes: String = config.excludes.iter().map(|e| format!("{e}\n")).collect();
        let out = s
            .run(&format!(
                "command -v git >/dev/null 2>&1 || {{ echo NOGIT; exit 0; }}; \
                 [ -d {d} ] || git init -q --bare --template= {d} || exit 1; \
                 mkdir -p {d}/info && printf '%s' {attrs} > {d}/info/attributes && printf '%s' {ex} > {d}/info/base-exclude && echo OK",
                d = q(&s.dir),
                attrs = q("* -text -ident -filter -eol -working-tree-encoding\n"),
                ex = q(&excludes),
            ))
            .await?;
        match out.trim() {
            "OK" => Ok(s),
            "NOGIT" => Err(CheckpointError::Unsupported(
                "checkpoints on this target need `git` there, and it has none".into(),
            )),
            other => Err(CheckpointError::Unsupported(format!(
                "could not create the checkpoint store on the target: {}",
                other.chars().take(200).collect::<String>()
            ))),
        }
    }

    async fn run(&self, script: &str) -> Result<String, CheckpointError> {
        match self.control.run(script).await {
            Some((_, out)) => Ok(out),
            None => Err(CheckpointError::Unsupported(
                "the target does not answer control commands".into(),
            )),
        }
    }

    /// The `git` every command uses: no user or system configuration, no hooks.
    fn git(&self) -> String {
        format!(
            "env GIT_DIR={d} GIT_WORK_TREE={w} GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 GIT_AUTHOR_NAME=execkit GIT_AUTHOR_EMAIL=execkit@localhost GIT_COMMITTER_NAME=execkit GIT_COMMITTER_EMAIL=execkit@localhost git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.autocrlf=false -c core.symlinks=true -c core.filemode=true -c core.quotepath=false -c core.excludesFile={d}/info/base-exclude",
            d = q(&self.dir),
            w = q(&self.workspace),
        )
    }

    /// Shell code that brings the store's index to the work tree and sets `$now` to its
    /// tree. Nested repositories are excluded first; the bytes to capture are summed from
    /// the files' sizes and refused past the cap before anything is hashed (where the
    /// target has `xargs` and `stat`; the tree's size is checked after either way); `.gitignore`
    /// is honoured unless the operator turned it off (`-f`), and the operator's excludes
    /// and the nested repositories stay out either way. A file that vanishes while `git add`
    /// reads the tree (something else is writing there) gets the add one more try; a second
    /// failure refuses the checkpoint with git's own words.
    fn snapshot_script(&self) -> String {
        let g = self.git();
        let d = q(&self.dir);
        let (force, listed, unforce) = if self.config.honour_gitignore {
            ("", "--exclude-standard".to_string(), String::new())
        } else {
            (
                " -f",
                format!("-X {d}/info/base-exclude -X {d}/info/exclude"),
                format!(
                    "{g} ls-files -z -c -i -X {d}/info/base-exclude -X {d}/info/exclude > {d}/excluded.list && {{ [ ! -s {d}/excluded.list ] || {g} rm -q -r --cached --ignore-unmatch --pathspec-from-file={d}/excluded.list --pathspec-file-nul >/dev/null 2>&1; }} || {{ echo {SEP}ADDFAIL; exit 0; }};"
                ),
            )
        };
        format!(
            "cd {w} || exit 1; find . -mindepth 2 -name .git -prune 2>/dev/null | sed -e 's|^\\./|/|' -e 's|/\\.git$|/|' > {d}/info/exclude; \
             pre=0; if command -v xargs >/dev/null && command -v stat >/dev/null; then pre=$({g} ls-files -z -c -o {listed} -- . | xargs -0 -r stat -c %s -- 2>/dev/null | {{ b=0; while read -r s; do b=$((b+s)); done; echo $b; }}); fi; \
             if [ \"${{pre:-0}}\" -gt {cap} ]; then echo \"{SEP}TOOBIG $pre\"; exit 0; fi; \
             {g} add -A{force} -- . >/dev/null 2>{d}/add.err || {g} add -A{force} -- . >/dev/null 2>{d}/add.err || {{ echo \"{SEP}ADDFAIL $(head -c 300 {d}/add.err | tr '\\n' ' ')\"; exit 0; }}; {unforce} now=$({g} write-tree) || exit 1;",
            w = q(&self.workspace),
            cap = self.config.max_bytes,
        )
    }

    /// The error a snapshot's output reports, if any.
    fn snapshot_error(&self, out: &str) -> Option<CheckpointError> {
        if let Some(rest) = out.split(&format!("{SEP}TOOBIG ")).nth(1) {
            let bytes = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(self.config.max_bytes.saturating_add(1));
            return Some(CheckpointError::TooLarge {
                bytes,
                cap: self.config.max_bytes,
            });
        }
        let rest = out.split(&format!("{SEP}ADDFAIL")).nth(1)?;
        let why = rest.lines().next().unwrap_or("").trim();
        Some(CheckpointError::Unsupported(if why.is_empty() {
            "git on the target could not read the workspace".into()
        } else {
            format!("git on the target could not read the workspace: {why}")
        }))
    }

    /// Takes a checkpoint.
    pub async fn checkpoint(
        &mut self,
        label: Option<&str>,
        automatic: Option<&str>,
    ) -> Result<CheckpointInfo, CheckpointError> {
        let g = self.git();
        let id = format!("cp-{}", self.next);
        let prev = format!("refs/execkit/cp-{}", self.next.saturating_sub(1));
        // Files and bytes of the new tree, and how many paths differ from the previous.
        let out = self
            .run(&format!(
                "{snap} {g} ls-tree -r -l $now | while read -r m t o s p; do echo \"$s\"; done | {{ n=0; b=0; while read -r s; do n=$((n+1)); case $s in ''|*[!0-9]*) ;; *) b=$((b+s));; esac; done; echo \"$n $b\"; }}; echo {SEP}; \
                 if {g} rev-parse -q --verify {prev} >/dev/null; then {g} diff-tree -r --name-only {prev} $now | wc -l; else echo all; fi; echo {SEP}; echo $now; echo {SEP}; \
                 cat {d}/info/exclude; echo {SEP}; find . -mindepth 1 -name .git -prune -o -type d -empty -print | sed 's|^\\./||' {ignored}",
                snap = self.snapshot_script(),
                prev = q(&prev),
                d = q(&self.dir),
                // Empty directories `.gitignore` ignores are not captured (as locally).
                ignored = if self.config.honour_gitignore {
                    format!("| {g} check-ignore --stdin -v -n | grep '^::' | cut -f 2-")
                } else {
                    String::new()
                },
            ))
            .await?;
        if let Some(e) = self.snapshot_error(&out) {
            return Err(e);
        }
        let mut parts = out.split(SEP);
        let counts = parts.next().unwrap_or("").trim().to_string();
        let changed = parts.next().unwrap_or("").trim().to_string();
        let tree = parts.next().unwrap_or("").trim().to_string();
        let nested: Vec<&str> = parts
            .next()
            .unwrap_or("")
            .lines()
            .map(|l| l.trim_matches('/'))
            .filter(|l| !l.is_empty())
            .collect();
        let empty_dirs: Vec<String> = parts
            .next()
            .unwrap_or("")
            .lines()
            .filter(|d| plain_relative(d))
            .filter(|d| {
                !nested
                    .iter()
                    .any(|n| d == n || d.starts_with(&format!("{n}/")))
            })
            .map(str::to_string)
            .collect();
        let mut c = counts.split_whitespace();
        let files: u64 = c.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let bytes: u64 = c.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        if !tree.bytes().all(|b| b.is_ascii_hexdigit()) || tree.len() < 40 {
            return Err(CheckpointError::Unsupported(format!(
                "git on the target gave no tree: {}",
                out.chars().take(200).collect::<String>()
            )));
        }
        if bytes > self.config.max_bytes {
            return Err(CheckpointError::TooLarge {
                bytes,
                cap: self.config.max_bytes,
            });
        }
        let changed = if changed == "all" {
            files
        } else {
            changed.parse().unwrap_or(0)
        };
        let info = CheckpointInfo {
            id: id.clone(),
            label: label.map(|l| l.chars().take(200).collect()),
            created_unix_ms: super::now_ms(),
            files,
            bytes,
            changed_since_previous: changed,
            automatic: automatic.map(|a| a.chars().take(200).collect()),
        };
        let meta = serde_json::json!({
            "label": info.label, "created_unix_ms": info.created_unix_ms, "files": files,
            "bytes": bytes, "changed": changed, "automatic": info.automatic,
            "empty_dirs": empty_dirs,
        });
        let message = format!("{id}\n\n{meta}");
        let parent = if self.next > 1 {
            format!("-p {}", q(&prev))
        } else {
            String::new()
        };
        let out = self
            .run(&format!(
                "c=$(printf '%s' {msg} | {g} commit-tree {tree} {parent}) && {g} update-ref {r} \"$c\" && echo DONE",
                msg = q(&message),
                r = q(&format!("refs/execkit/{id}")),
            ))
            .await?;
        if out.trim() != "DONE" {
            return Err(CheckpointError::Unsupported(format!(
                "git on the target could not record the checkpoint: {}",
                out.chars().take(200).collect::<String>()
            )));
        }
        self.next += 1;
        let keep = self.config.keep.max(1) as u64;
        if self.next > keep + 1 {
            let old = self.next - keep - 1;
            let _ = self
                .run(&format!(
                    "{g} update-ref -d {} 2>/dev/null",
                    q(&format!("refs/execkit/cp-{old}"))
                ))
                .await;
        }
        Ok(info)
    }

    fn check_id(&self, id: &str) -> Result<String, CheckpointError> {
        let ok = id
            .strip_prefix("cp-")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 1 && n < self.next);
        if !ok {
            return Err(CheckpointError::Unknown(id.chars().take(64).collect()));
        }
        Ok(format!("refs/execkit/{id}"))
    }

    /// Every checkpoint kept, oldest first.
    pub async fn list(&self) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        let out = self
            .run(&format!(
                "{} for-each-ref --sort=creatordate --format='%(refname:strip=2)%09%(contents:body)' refs/execkit/",
                self.git()
            ))
            .await?;
        let mut list: Vec<CheckpointInfo> = out
            .lines()
            .filter_map(|l| {
                let (id, json) = l.split_once('\t')?;
                let m: serde_json::Value = serde_json::from_str(json).ok()?;
                Some(CheckpointInfo {
                    id: id.to_string(),
                    label: m["label"].as_str().map(str::to_string),
                    created_unix_ms: m["created_unix_ms"].as_u64().unwrap_or(0),
                    files: m["files"].as_u64().unwrap_or(0),
                    bytes: m["bytes"].as_u64().unwrap_or(0),
                    changed_since_previous: m["changed"].as_u64().unwrap_or(0),
                    automatic: m["automatic"].as_str().map(str::to_string),
                })
            })
            .collect();
        list.sort_by_key(|c| {
            c.id.strip_prefix("cp-")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        });
        Ok(list)
    }

    /// Puts the workspace back as it was at checkpoint `id`.
    pub async fn restore(&mut self, id: &str) -> Result<RestoreReport, CheckpointError> {
        let r = q(&self.check_id(id)?);
        let g = self.git();
        // The empty directories the checkpoint recorded, made again after the files (only
        // plain relative paths: the store on the target is not beyond the agent's reach).
        let body = self.run(&format!("{g} log -1 --format=%b {r}")).await?;
        let mkdirs: String = serde_json::from_str::<serde_json::Value>(body.trim())
            .ok()
            .and_then(|m| m["empty_dirs"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.as_str())
            .filter(|d| plain_relative(d))
            .map(|d| format!(" {};", make_dir_script(d)))
            .collect();
        let mkdirs = if mkdirs.is_empty() {
            String::new()
        } else {
            format!(" && {{{mkdirs} true; }}")
        };
        let out = self
            .run(&format!(
                "{snap} {g} diff-tree -r --no-renames --name-status $now {r}; echo {SEP}; {g} read-tree -m -u $now {r} 2>&1{mkdirs} && echo RESTORED",
                snap = self.snapshot_script(),
            ))
            .await?;
        if let Some(e) = self.snapshot_error(&out) {
            return Err(e);
        }
        let (status, tail) = out.split_once(SEP).unwrap_or((&out, ""));
        if !tail.trim_end().ends_with("RESTORED") {
            return Err(CheckpointError::Unsupported(format!(
                "git on the target could not restore: {}",
                tail.trim().chars().take(300).collect::<String>()
            )));
        }
        let mut report = RestoreReport {
            id: id.to_string(),
            written: 0,
            created: 0,
            deleted: 0,
            paths: Vec::new(),
            paths_truncated: false,
        };
        for line in status.lines() {
            let Some((tag, path)) = line.split_once('\t') else {
                continue;
            };
            match tag {
                "A" => report.created += 1,
                "D" => report.deleted += 1,
                _ => report.written += 1,
            }
            if report.paths.len() < MAX_LISTED {
                report.paths.push(format!("{} {path}", &tag[..1]));
            } else {
                report.paths_truncated = true;
            }
        }
        Ok(report)
    }

    /// What changed since checkpoint `id`; the caller redacts the patch.
    pub async fn diff(&mut self, id: &str) -> Result<DiffSummary, CheckpointError> {
        let r = q(&self.check_id(id)?);
        let g = self.git();
        let out = self
            .run(&format!(
                "{snap} {g} diff-tree -r --no-renames --name-status {r} $now; echo {SEP}; {g} diff-tree -r -p --no-renames --no-color {r} $now | head -c {max}",
                snap = self.snapshot_script(),
                max = MAX_DIFF_BYTES + 1,
            ))
            .await?;
        if let Some(e) = self.snapshot_error(&out) {
            return Err(e);
        }
        let (status, patch) = out.split_once(SEP).unwrap_or((&out, ""));
        let patch = patch.strip_prefix('\n').unwrap_or(patch);
        let mut d = DiffSummary {
            id: id.to_string(),
            changed: Vec::new(),
            added: Vec::new(),
            deleted: Vec::new(),
            counts: DiffCounts::default(),
            diff: String::new(),
            diff_truncated: patch.len() > MAX_DIFF_BYTES,
        };
        for line in status.lines() {
            let Some((tag, path)) = line.split_once('\t') else {
                continue;
            };
            let (list, count) = match tag {
                "A" => (&mut d.added, &mut d.counts.added),
                "D" => (&mut d.deleted, &mut d.counts.deleted),
                _ => (&mut d.changed, &mut d.counts.changed),
            };
            *count += 1;
            if list.len() < MAX_LISTED {
                list.push(path.to_string());
            }
        }
        let cut = execkit_protect::floor_boundary(patch, MAX_DIFF_BYTES);
        d.diff = patch[..cut].to_string();
        Ok(d)
    }
}

/// Shell code that makes directory `rel` one component at a time, giving up at a link
/// (`mkdir -p` would follow a link the agent put where the checkpoint has a directory, and
/// make the directory outside the workspace).
fn make_dir_script(rel: &str) -> String {
    let mut prefix = String::new();
    let steps: Vec<String> = rel
        .split('/')
        .map(|c| {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            let p = q(&prefix);
            format!("[ ! -L {p} ] && {{ [ -d {p} ] || mkdir {p} 2>/dev/null; }}")
        })
        .collect();
    format!("{{ {}; }}", steps.join(" && "))
}

/// A path of plain components only (no `..`, no root, nothing empty, no `.git`).
fn plain_relative(p: &str) -> bool {
    !p.is_empty()
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && c != ".git")
}
