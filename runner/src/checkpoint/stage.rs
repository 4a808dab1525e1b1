//! Staging changed workspace paths into the store: blobs and index entries.
//!
//! libgit2's `Index::add_path` reads a path as a whole (a directory the agent swapped for a
//! link is followed) and writes every new blob as its own loose object file. So staging
//! reads each path through [`beneath::read`] (nothing outside the workspace, no FIFO) and
//! gives the index entry the status of the very file read, so the next scan's stat cache
//! answers for it. When many blobs are new (the first checkpoint), they are hashed and
//! compressed on every core and written as packs ([`super::pack`]), not one file each.

use super::beneath::{self, Found};
use super::pack::{blob_id, PackBatch};
use super::CheckpointError;
use git2::{Index, IndexEntry, IndexTime, ObjectType, Oid, Repository};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// From this many changed paths on, new blobs go into packs rather than loose objects.
const PACK_FROM: usize = 64;
/// From this many changed paths on, the work is shared among threads.
const PARALLEL_FROM: usize = 512;
/// At most this many threads.
const MAX_THREADS: usize = 4;
/// A pack is written once its compressed objects reach this size (memory bound per
/// thread).
const PACK_BYTES: usize = 64 << 20;

/// Stages `changes` (present or gone) from `workspace` into `index`. `kept` bytes are
/// already captured by unchanged entries; content read past `cap` in all is refused.
pub(crate) fn stage(
    repo: &Repository,
    index: &mut Index,
    workspace: &Path,
    changes: &[(bool, PathBuf)],
    kept: u64,
    cap: u64,
) -> Result<(), CheckpointError> {
    let present: Vec<&Path> = changes
        .iter()
        .filter(|(p, _)| *p)
        .map(|(_, p)| p.as_path())
        .collect();
    let job = Job {
        store: repo.path(),
        workspace,
        packed: present.len() >= PACK_FROM,
        budget: AtomicU64::new(cap.saturating_sub(kept)),
        cap,
    };
    let threads = if present.len() >= PARALLEL_FROM {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    } else {
        1
    };
    let mut staged: Vec<Option<IndexEntry>> = Vec::with_capacity(present.len());
    if threads == 1 {
        staged = job.run(repo, &present)?;
    } else {
        let chunk = present.len().div_ceil(threads);
        let results: Vec<Result<Vec<Option<IndexEntry>>, CheckpointError>> =
            std::thread::scope(|s| {
                let handles: Vec<_> = present
                    .chunks(chunk)
                    .map(|part| {
                        let job = &job;
                        s.spawn(move || {
                            // A handle of its own: libgit2 handles are not shared across
                            // threads.
                            let repo = Repository::open_bare(job.store)?;
                            job.run(&repo, part)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(CheckpointError::Unsupported(
                                "a staging thread panicked".into(),
                            ))
                        })
                    })
                    .collect()
            });
        for r in results {
            staged.extend(r?);
        }
    }
    // New packs are on disk: have libgit2 see them before the index checks each entry's
    // object exists.
    if job.packed {
        repo.odb()?.refresh()?;
    }
    let mut staged = staged.into_iter();
    for (is_present, path) in changes {
        let entry = if *is_present {
            staged.next().flatten()
        } else {
            None
        };
        match entry {
            Some(e) => index.add(&e)?,
            // Gone, or nothing a checkpoint captures stands there now.
            None => {
                if index.get_path(path, 0).is_some() {
                    index.remove_path(path)?;
                }
            }
        }
    }
    Ok(())
}

/// What every staging thread shares.
struct Job<'a> {
    store: &'a Path,
    workspace: &'a Path,
    packed: bool,
    /// Bytes of content that may still be read.
    budget: AtomicU64,
    cap: u64,
}

impl Job<'_> {
    /// Reads, hashes and stores the blobs of `paths`; for each, in order, its index entry
    /// (`None`: nothing a checkpoint captures stands there now).
    fn run(
        &self,
        repo: &Repository,
        paths: &[&Path],
    ) -> Result<Vec<Option<IndexEntry>>, CheckpointError> {
        let odb = repo.odb()?;
        let pack_dir = self.store.join("objects/pack");
        let mut batch = PackBatch::default();
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            let limit = self.budget.load(Ordering::Relaxed);
            let found = beneath::read(self.workspace, path, limit).map_err(|e| match e.kind() {
                // Grown since the scan: at least one byte past the cap.
                std::io::ErrorKind::FileTooLarge => self.too_large(),
                _ => CheckpointError::Io(e),
            })?;
            let Some(found) = found else {
                out.push(None);
                continue;
            };
            let len = found.content.len() as u64;
            if self
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(len))
                .is_err()
            {
                return Err(self.too_large());
            }
            let Some(id) = blob_id(&found.content) else {
                return Err(CheckpointError::Unsupported(format!(
                    "{} carries a SHA-1 collision attack; it cannot be checkpointed",
                    path.display()
                )));
            };
            if !odb.exists(id) {
                if self.packed {
                    batch.add(id, &found.content)?;
                    if batch.bytes() >= PACK_BYTES {
                        batch.write(&pack_dir)?;
                    }
                } else if odb.write(ObjectType::Blob, &found.content)? != id {
                    return Err(CheckpointError::Unsupported(
                        "the store hashed a blob differently".into(),
                    ));
                }
            }
            out.push(Some(entry(path, &found, id)));
        }
        batch.write(&pack_dir)?;
        Ok(out)
    }

    fn too_large(&self) -> CheckpointError {
        CheckpointError::TooLarge {
            bytes: self.cap.saturating_add(1),
            cap: self.cap,
        }
    }
}

/// The index entry of `found` at `path`: git's canonical mode and the file's status.
fn entry(path: &Path, found: &Found, id: Oid) -> IndexEntry {
    use std::os::unix::ffi::OsStrExt;
    let st = &found.stat;
    let mode = if found.link {
        0o120000
    } else if st.st_mode & 0o100 != 0 {
        0o100755
    } else {
        0o100644
    };
    // The index stores 32-bit fields (git truncates the same way).
    IndexEntry {
        ctime: IndexTime::new(st.st_ctime as i32, st.st_ctime_nsec as u32),
        mtime: IndexTime::new(st.st_mtime as i32, st.st_mtime_nsec as u32),
        dev: st.st_dev as u32,
        ino: st.st_ino as u32,
        mode,
        uid: st.st_uid,
        gid: st.st_gid,
        file_size: st.st_size as u32,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_os_str().as_bytes().to_vec(),
    }
}
