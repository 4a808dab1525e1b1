//! Private session directories, named after the server process that owns them so that the
//! next server can remove what a dead one left behind (`kill -9` gives no chance to clean
//! up).
//!
//! A directory is `execkit-session-<pid>.<start>-<id>`: the owner's pid and its start time
//! (clock ticks since boot, from `/proc/PID/stat`), which together name one process even
//! after its pid is reused. A directory is stale when no live process has that pid and
//! start time; only directories owned by this user are touched.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PREFIX: &str = "execkit-session-";

/// The start time of a process (field 22 of `/proc/PID/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// This process's owner tag: `<pid>.<start>`.
fn owner_tag() -> String {
    let pid = std::process::id();
    format!("{pid}.{}", start_time(pid).unwrap_or(0))
}

/// The directory name for a new session of this process.
pub(crate) fn session_dir_name(id: &str) -> String {
    format!("{PREFIX}{}-{id}", owner_tag())
}

/// True if the owner a directory name records is no longer running.
pub(crate) fn is_stale(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let Some((tag, _id)) = rest.split_once('-') else {
        return false;
    };
    let Some((pid, start)) = tag.split_once('.') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) != Some(start)
}

/// This machine's boot id (`/proc/sys/kernel/random/boot_id`): a process tag means
/// nothing after a reboot.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A label naming this server process for resources outside this machine's filesystem
/// (ephemeral containers): `<uid>:<boot id>:<pid>.<start>`.
pub(crate) fn owner_label() -> String {
    format!(
        "{}:{}:{}",
        nix::unistd::geteuid().as_raw(),
        boot_id(),
        owner_tag()
    )
}

/// Whether an [`owner_label`] names a server of this user that is gone (a label of
/// another user, or unreadable, is never stale: it is not ours to remove).
pub(crate) fn owner_label_is_stale(label: &str) -> bool {
    let mut f = label.splitn(3, ':');
    let (Some(uid), Some(boot), Some(tag)) = (f.next(), f.next(), f.next()) else {
        return false;
    };
    if uid != nix::unistd::geteuid().as_raw().to_string() {
        return false;
    }
    if boot != boot_id() {
        return true;
    }
    let Some((pid, start)) = tag.split_once('.') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) != Some(start)
}

/// Removes the session directories under `base` whose server is gone; once per base per
/// process. Returns how many were removed.
pub(crate) fn sweep_stale(base: &Path) -> usize {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    {
        let Ok(mut swept) = SWEPT.lock() else {
            return 0;
        };
        if !swept
            .get_or_insert_with(HashSet::new)
            .insert(base.to_path_buf())
        {
            return 0;
        }
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    let me = nix::unistd::geteuid().as_raw();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let owned = e
            .path()
            .symlink_metadata()
            .is_ok_and(|m| m.is_dir() && m.uid() == me);
        if owned && is_stale(name) && std::fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_record_a_live_owner_and_dead_owners_are_stale() {
        let name = session_dir_name("abc");
        assert!(name.starts_with(PREFIX));
        assert!(!is_stale(&name), "this process is alive: {name}");
        let me = std::process::id();
        assert!(is_stale(&format!("{PREFIX}{me}.1-abc")), "wrong start time");
        assert!(
            is_stale(&format!("{PREFIX}{}.5-abc", i32::MAX)),
            "no such pid"
        );
        assert!(!is_stale("execkit-other-1.2-x"), "not ours");
        assert!(!is_stale(&format!("{PREFIX}garbage")));
    }

    #[test]
    fn owner_labels_are_stale_only_for_this_user_s_dead_servers() {
        let mine = owner_label();
        assert!(!owner_label_is_stale(&mine), "{mine}");
        let (uid_boot, _) = mine.rsplit_once(':').unwrap();
        assert!(owner_label_is_stale(&format!("{uid_boot}:{}.5", i32::MAX)));
        let (uid, rest) = mine.split_once(':').unwrap();
        let (_, tag) = rest.split_once(':').unwrap();
        assert!(owner_label_is_stale(&format!("{uid}:another-boot:{tag}")));
        let other = uid.parse::<u32>().unwrap() + 1;
        assert!(!owner_label_is_stale(&format!("{other}:x:{}.5", i32::MAX)));
        assert!(!owner_label_is_stale("garbage"));
    }
}
