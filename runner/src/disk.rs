//! Workspace disk use against the operator's cap (`Resources::workspace_bytes`).
//!
//! Measured after each command by walking the workspace (allocated blocks, not apparent
//! sizes, so sparse files count for what they use; hard links once; other filesystems
//! mounted inside are skipped), stopping as soon as the cap is passed so a huge workspace
//! costs no more than the cap's worth of walking. While the workspace is over its cap, the
//! session refuses every command except the ones that look at or free space
//! ([`CLEANUP_PROGRAMS`]), so the agent can recover without the operator.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Programs a session over its workspace cap may still run.
pub(crate) const CLEANUP_PROGRAMS: &[&str] = &[
    "rm", "rmdir", "unlink", "truncate", "du", "df", "ls", "pwd", "cd", "echo", "true",
];

/// Bytes allocated under `dir`, or `None` once more than `cap` were found.
pub(crate) fn used_within(dir: &Path, cap: u64) -> Option<u64> {
    let Ok(top) = dir.symlink_metadata() else {
        return Some(0);
    };
    let dev = top.dev();
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.dev() != dev {
                continue;
            }
            if m.nlink() > 1 && !seen.insert(m.ino()) {
                continue;
            }
            total += m.blocks() * 512;
            if total > cap {
                return None;
            }
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_allocated_bytes_and_stops_past_the_cap() {
        let dir = std::env::temp_dir().join(format!("ek-disk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a"), vec![1u8; 1 << 20]).unwrap();
        let used = used_within(&dir, 1 << 30).unwrap();
        assert!(used >= 1 << 20, "{used}");
        assert_eq!(used_within(&dir, 4096), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
