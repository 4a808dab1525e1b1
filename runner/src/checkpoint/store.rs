//! The private git store of one session's checkpoints (libgit2).

use super::{
    CheckpointConfig, CheckpointError, CheckpointInfo, DiffCounts, DiffSummary, RestoreReport,
    MAX_LISTED,
};
use git2::{Delta, DiffFormat, Oid, Repository, Signature, Tree};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Refs of checkpoints: `refs/execkit/cp-N`.
const REF_PREFIX: &str = "refs/execkit/";
/// Bytes of unified diff returned at most.
const MAX_DIFF_BYTES: usize = 64 * 1024;
/// Attributes for every path: no text conversion, no `ident`, no filter drivers, so the
/// bytes stored are the bytes on disk and come back unchanged.
const ATTRIBUTES: &str = "* -text -ident -filter -eol -working-tree-encoding\n";

/// What a checkpoint commit records besides the tree.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    #[serde(default)]
    label: Option<String>,
    created_unix_ms: u64,
    files: u64,
    bytes: u64,
    changed: u64,
    #[serde(default)]
    empty_dirs: Vec<String>,
    #[serde(default)]
    automatic: Option<String>,
}

/// One session's store.
pub(crate) struct Store {
    repo: Repository,
    workspace: PathBuf,
    config: CheckpointConfig,
    next: u64,
    /// When `.gitignore` is not honoured, the operator's excludes still are: this empty
    /// repository's `info/exclude` holds them alone (no `.gitignore` can exist in its
    /// empty work tree), so it answers "does the operator exclude this path?".
    operator_excludes: Option<Repository>,
}

/// An empty file: the store's `core.excludesFile`, so the server user's global excludes
/// never decide what a checkpoint captures.
const NO_GLOBAL_EXCLUDES: &str = "info/no-global-excludes";

impl Store {
    /// Opens (or creates) the store at `dir` for `workspace`.
    pub fn open(
        dir: &Path,
        workspace: &Path,
        config: &CheckpointConfig,
    ) -> Result<Store, CheckpointError> {
        if workspace.starts_with(dir) || dir.starts_with(workspace) {
            return Err(CheckpointError::Unsupported(
                "the checkpoint store must lie outside the workspace".into(),
            ));
        }
        let repo = match Repository::open_bare(dir) {
            Ok(r) => r,
            Err(_) => {
                std::fs::create_dir_all(dir)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
                Repository::init_bare(dir)?
            }
        };
        {
            let mut cfg = repo.config()?;
            cfg.set_bool("core.filemode", true)?;
            cfg.set_bool("core.symlinks", true)?;
            cfg.set_bool("core.autocrlf", false)?;
            cfg.set_bool("core.ignorecase", false)?;
            cfg.set_str(
                "core.excludesFile",
                &dir.join(NO_GLOBAL_EXCLUDES).to_string_lossy(),
            )?;
        }
        std::fs::create_dir_all(dir.join("info"))?;
        std::fs::write(dir.join(NO_GLOBAL_EXCLUDES), "")?;
        let operator_excludes = if config.honour_gitignore || config.excludes.is_empty() {
            None
        } else {
            Some(operator_matcher(
                &dir.join("operator-excludes"),
                &config.excludes,
            )?)
        };
        std::fs::write(dir.join("info/attributes"), ATTRIBUTES)?;
        repo.set_workdir(workspace, false)?;
        let next = repo
            .references_glob(&format!("{REF_PREFIX}cp-*"))?
            .flatten()
            .filter_map(|r| {
                r.name()?
                    .strip_prefix(REF_PREFIX)?
                    .strip_prefix("cp-")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
            + 1;
        let mut s = Store {
            repo,
            workspace: workspace.to_path_buf(),
            config: config.clone(),
            next,
            operator_excludes,
        };
        s.write_excludes(&[])?;
        Ok(s)
    }

    /// `info/exclude`: the operator's patterns and the nested repositories found.
    fn write_excludes(&mut self, nested: &[String]) -> Result<(), CheckpointError> {
        let mut text = String::new();
        for p in &self.config.excludes {
            text.push_str(p);
            text.push('\n');
        }
        for n in nested {
            text.push('/');
            text.push_str(&glob_escape(n));
            text.push_str("/\n");
        }
        std::fs::write(self.repo.path().join("info/exclude"), text)?;
        Ok(())
    }

    /// Empty directories and nested repositories under the workspace (skipping ignored
    /// directories), relative paths.
    fn walk_dirs(&self) -> (Vec<String>, Vec<String>) {
        let mut empty = Vec::new();
        let mut nested = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(self.workspace.join(&rel)) else {
                continue;
            };
            let mut any = false;
            for e in rd.flatten() {
                any = true;
                let Ok(ft) = e.file_type() else { continue };
                if !ft.is_dir() {
                    continue;
                }
                let name = e.file_name();
                if name == ".git" {
                    continue;
                }
                let child = rel.join(&name);
                let text = child.to_string_lossy().into_owned();
                // Nested repositories first: they are excluded through `info/exclude`, so
                // from the second walk on they also look ignored.
                if self.workspace.join(&child).join(".git").exists() {
                    nested.push(text);
                    continue;
                }
                // A trailing slash tells the matcher (whose work tree is empty) that this
                // is a directory, for directory-only patterns (`cache/`, `!/keep/`).
                if (self.config.honour_gitignore
                    && self.repo.is_path_ignored(&child).unwrap_or(false))
                    || self.operator_excluded(&child.join(""))
                {
                    continue;
                }
                stack.push(child);
            }
            if !any && !rel.as_os_str().is_empty() {
                empty.push(rel.to_string_lossy().into_owned());
            }
        }
        empty.sort();
        nested.sort();
        (empty, nested)
    }

    /// Whether the operator excludes `path` while `.gitignore` is not honoured (when it
    /// is, `info/exclude` already keeps the path out).
    fn operator_excluded(&self, path: &Path) -> bool {
        self.operator_excludes
            .as_ref()
            .is_some_and(|m| m.is_path_ignored(path).unwrap_or(true))
    }

    /// Brings the store's index to the workspace as it is now and writes its tree.
    /// Refuses past the size cap before reading the file that crosses it.
    fn snapshot(&mut self) -> Result<(Oid, u64, u64, Vec<String>), CheckpointError> {
        let (empty, nested) = self.walk_dirs();
        self.write_excludes(&nested)?;
        let mut index = self.repo.index()?;
        let mut total: u64 = index.iter().map(|e| u64::from(e.file_size)).sum();
        // What unchanged entries already capture.
        let mut kept = total;
        let cap = self.config.max_bytes;
        // One scan of the work tree against the index (its stat cache answers for files
        // that did not change), then only what changed is hashed.
        let mut opts = git2::DiffOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_typechange(true)
            .update_index(true);
        if !self.config.honour_gitignore {
            opts.include_ignored(true).recurse_ignored_dirs(true);
        }
        let mut changes: Vec<(bool, PathBuf)> = Vec::new();
        {
            let diff = self
                .repo
                .diff_index_to_workdir(Some(&index), Some(&mut opts))?;
            for d in diff.deltas() {
                let (Some(path), old) = (
                    d.new_file().path().or(d.old_file().path()),
                    d.old_file().size(),
                ) else {
                    continue;
                };
                if nested.iter().any(|n| path.starts_with(n)) || self.operator_excluded(path) {
                    continue;
                }
                kept = kept.saturating_sub(old);
                if d.status() == Delta::Deleted {
                    total = total.saturating_sub(old);
                    changes.push((false, path.to_path_buf()));
                } else {
                    let size = std::fs::symlink_metadata(self.workspace.join(path))
                        .map(|m| m.len())
                        .unwrap_or(0);
                    total = total.saturating_sub(old).saturating_add(size);
                    changes.push((true, path.to_path_buf()));
                }
            }
        }
        if total > cap {
            return Err(CheckpointError::TooLarge { bytes: total, cap });
        }
        super::stage::stage(&self.repo, &mut index, &self.workspace, &changes, kept, cap)?;
        index.write()?;
        let files = index.len() as u64;
        let bytes = index.iter().map(|e| u64::from(e.file_size)).sum();
        let tree = index.write_tree()?;
        Ok((tree, files, bytes, empty))
    }

    fn commit_of(&self, id: &str) -> Result<git2::Commit<'_>, CheckpointError> {
        let valid = id
            .strip_prefix("cp-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return Err(CheckpointError::Unknown(id.chars().take(64).collect()));
        }
        let r = self
            .repo
            .find_reference(&format!("{REF_PREFIX}{id}"))
            .map_err(|_| CheckpointError::Unknown(id.to_string()))?;
        Ok(r.peel_to_commit()?)
    }

    fn meta_of(c: &git2::Commit<'_>) -> Meta {
        c.message()
            .and_then(|m| m.split_once("\n\n"))
            .and_then(|(_, json)| serde_json::from_str(json).ok())
            .unwrap_or_default()
    }

    fn latest(&self) -> Option<git2::Commit<'_>> {
        (1..self.next)
            .rev()
            .find_map(|n| self.commit_of(&format!("cp-{n}")).ok())
    }

    /// Takes a checkpoint.
    pub fn checkpoint(
        &mut self,
        label: Option<&str>,
        automatic: Option<&str>,
    ) -> Result<CheckpointInfo, CheckpointError> {
        let (tree_id, files, bytes, empty_dirs) = self.snapshot()?;
        let (id, meta) = {
            let tree = self.repo.find_tree(tree_id)?;
            let parent = self.latest();
            let changed = match &parent {
                Some(p) => self
                    .repo
                    .diff_tree_to_tree(Some(&p.tree()?), Some(&tree), None)?
                    .deltas()
                    .len() as u64,
                None => files,
            };
            let id = format!("cp-{}", self.next);
            let meta = Meta {
                label: label.map(|l| l.chars().take(200).collect()),
                created_unix_ms: super::now_ms(),
                files,
                bytes,
                changed,
                empty_dirs,
                automatic: automatic.map(|a| a.chars().take(200).collect()),
            };
            let message = format!(
                "{id}\n\n{}",
                serde_json::to_string(&meta).unwrap_or_default()
            );
            let sig = Signature::new(
                "execkit",
                "execkit@localhost",
                &git2::Time::new((meta.created_unix_ms / 1000) as i64, 0),
            )?;
            let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
            self.repo.commit(
                Some(&format!("{REF_PREFIX}{id}")),
                &sig,
                &sig,
                &message,
                &tree,
                &parents,
            )?;
            (id, meta)
        };
        self.next += 1;
        self.prune()?;
        Ok(info(&id, &meta))
    }

    /// Drops the oldest checkpoints past the operator's `keep`.
    fn prune(&mut self) -> Result<(), CheckpointError> {
        let keep = self.config.keep.max(1) as u64;
        if self.next <= keep + 1 {
            return Ok(());
        }
        for n in 1..self.next - keep {
            if let Ok(mut r) = self.repo.find_reference(&format!("{REF_PREFIX}cp-{n}")) {
                r.delete()?;
            }
        }
        Ok(())
    }

    /// Every checkpoint kept, oldest first.
    pub fn list(&self) -> Vec<CheckpointInfo> {
        (1..self.next)
            .filter_map(|n| {
                let id = format!("cp-{n}");
                let c = self.commit_of(&id).ok()?;
                Some(info(&id, &Self::meta_of(&c)))
            })
            .collect()
    }

    /// Puts the workspace back as it was at checkpoint `id`.
    pub fn restore(&mut self, id: &str) -> Result<RestoreReport, CheckpointError> {
        let (target_id, meta) = {
            let c = self.commit_of(id)?;
            (c.tree_id(), Self::meta_of(&c))
        };
        let (now_id, ..) = self.snapshot()?;
        let target = self.repo.find_tree(target_id)?;
        let now = self.repo.find_tree(now_id)?;
        let mut report = RestoreReport {
            id: id.to_string(),
            written: 0,
            created: 0,
            deleted: 0,
            paths: Vec::new(),
            paths_truncated: false,
        };
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&now), Some(&target), None)?;
        for d in diff.deltas() {
            let (tag, path) = match d.status() {
                Delta::Added => {
                    report.created += 1;
                    ("A", d.new_file().path())
                }
                Delta::Deleted => {
                    report.deleted += 1;
                    ("D", d.old_file().path())
                }
                _ => {
                    report.written += 1;
                    ("M", d.new_file().path())
                }
            };
            if report.paths.len() < MAX_LISTED {
                let p = path.map(|p| p.display().to_string()).unwrap_or_default();
                report.paths.push(format!("{tag} {p}"));
            } else {
                report.paths_truncated = true;
            }
        }
        // Files the checkpoint does not have go first (what the index has now and the
        // target lacks), then the differing paths of the target are written. Only those
        // paths are touched (nested repositories and ignored files never), and every write
        // goes through `beneath`: no link the agent planted is followed out of the
        // workspace.
        for d in diff.deltas() {
            if d.status() == Delta::Deleted {
                if let Some(p) = d.old_file().path() {
                    super::beneath::remove(&self.workspace, p)?;
                }
            }
        }
        for d in diff.deltas() {
            if d.status() == Delta::Deleted {
                continue;
            }
            let f = d.new_file();
            let Some(p) = f.path() else { continue };
            let blob = self.repo.find_blob(f.id())?;
            let entry = match f.mode() {
                git2::FileMode::Link => super::beneath::Entry::Link(blob.content()),
                git2::FileMode::BlobExecutable => super::beneath::Entry::File(blob.content(), true),
                git2::FileMode::Blob => super::beneath::Entry::File(blob.content(), false),
                // Gitlinks and trees are never captured (nested repositories are excluded).
                _ => continue,
            };
            super::beneath::write(&self.workspace, p, entry)?;
        }
        // Only the touched paths change in the index, so the stat cache of every other
        // file stays valid for the next snapshot.
        let mut index = self.repo.index()?;
        let touched: Vec<(bool, PathBuf)> = diff
            .deltas()
            .filter_map(
                |d| match (d.status(), d.old_file().path(), d.new_file().path()) {
                    (Delta::Deleted, Some(p), _) => Some((false, p.to_path_buf())),
                    (_, _, Some(p)) => Some((true, p.to_path_buf())),
                    _ => None,
                },
            )
            .collect();
        // What was just written comes from a checkpoint already within the cap.
        super::stage::stage(
            &self.repo,
            &mut index,
            &self.workspace,
            &touched,
            0,
            u64::MAX,
        )?;
        index.write()?;
        for d in &meta.empty_dirs {
            super::beneath::make_dir(&self.workspace, Path::new(d))?;
        }
        Ok(report)
    }

    /// What changed since checkpoint `id`, with a unified diff of text files passed
    /// through `redact` and capped.
    pub fn diff(
        &mut self,
        id: &str,
        redact: &dyn Fn(&str) -> String,
    ) -> Result<DiffSummary, CheckpointError> {
        let then_id = self.commit_of(id)?.tree_id();
        let (now_id, ..) = self.snapshot()?;
        let then: Tree<'_> = self.repo.find_tree(then_id)?;
        let now = self.repo.find_tree(now_id)?;
        let diff = self.repo.diff_tree_to_tree(Some(&then), Some(&now), None)?;
        let mut out = DiffSummary {
            id: id.to_string(),
            changed: Vec::new(),
            added: Vec::new(),
            deleted: Vec::new(),
            counts: DiffCounts::default(),
            diff: String::new(),
            diff_truncated: false,
        };
        for d in diff.deltas() {
            let (list, count, file) = match d.status() {
                Delta::Added => (&mut out.added, &mut out.counts.added, d.new_file()),
                Delta::Deleted => (&mut out.deleted, &mut out.counts.deleted, d.old_file()),
                _ => (&mut out.changed, &mut out.counts.changed, d.new_file()),
            };
            *count += 1;
            if list.len() < MAX_LISTED {
                list.push(
                    file.path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                );
            }
        }
        let mut patch = String::new();
        let mut truncated = false;
        diff.print(DiffFormat::Patch, |_, _, line| {
            if patch.len() >= MAX_DIFF_BYTES {
                truncated = true;
                return true;
            }
            let text = String::from_utf8_lossy(line.content());
            match line.origin() {
                '+' | '-' | ' ' => patch.push(line.origin()),
                _ => {}
            }
            patch.push_str(&text);
            true
        })?;
        out.diff = redact(&patch);
        out.diff_truncated = truncated;
        Ok(out)
    }
}

/// An empty repository at `dir` whose only ignore rules are `patterns`.
fn operator_matcher(dir: &Path, patterns: &[String]) -> Result<Repository, CheckpointError> {
    let repo = match Repository::open(dir) {
        Ok(r) => r,
        Err(_) => Repository::init(dir)?,
    };
    let git_dir = repo.path().to_path_buf();
    std::fs::create_dir_all(git_dir.join("info"))?;
    std::fs::write(git_dir.join(NO_GLOBAL_EXCLUDES), "")?;
    repo.config()?.set_str(
        "core.excludesFile",
        &git_dir.join(NO_GLOBAL_EXCLUDES).to_string_lossy(),
    )?;
    let text: String = patterns.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(git_dir.join("info/exclude"), text)?;
    Ok(repo)
}

fn info(id: &str, m: &Meta) -> CheckpointInfo {
    CheckpointInfo {
        id: id.to_string(),
        label: m.label.clone(),
        created_unix_ms: m.created_unix_ms,
        files: m.files,
        bytes: m.bytes,
        changed_since_previous: m.changed,
        automatic: m.automatic.clone(),
    }
}

/// A path as a gitignore pattern matching exactly it.
fn glob_escape(p: &str) -> String {
    p.chars()
        .flat_map(|c| {
            if "*?[]\\!#".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}
