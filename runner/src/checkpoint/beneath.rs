//! Reading, writing and removing files strictly beneath the workspace, for snapshots and
//! restores.
//!
//! Snapshots and restores run in the server, outside the sandbox. The agent controls the
//! workspace: it can replace a directory with a link to `/etc` (and hide the link from the
//! snapshot with `.gitignore`), or swap one in from a background process between the scan
//! and the read. So no path is resolved as a whole: every component is opened relative to
//! its parent with `O_NOFOLLOW`; a read takes only a regular file or a link found there
//! (never a FIFO, a device or what a link points to); and a link or file standing where
//! the checkpoint has a directory is removed (the link itself, never what it points to)
//! and replaced by the directory.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

fn cstr(name: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::other("NUL in a path"))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let c = cstr(root.as_os_str())?;
    // SAFETY: a valid C string; the descriptor is owned at once.
    let fd = check(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor no one else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_child_dir(dir: &OwnedFd, name: &CString) -> io::Result<OwnedFd> {
    // SAFETY: a valid directory descriptor and C string; the result is owned at once.
    let fd = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor no one else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The names of a relative path, refusing anything but plain components.
fn names(rel: &Path) -> io::Result<Vec<CString>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => cstr(n),
            _ => Err(io::Error::other("not a plain relative path")),
        })
        .collect()
}

/// Opens directory `rel` beneath `root`. With `create`, missing directories are made and a
/// link or file in the way is removed first; without, `None` when the path does not lead
/// through real directories.
fn open_dir(root: &Path, rel: &[CString], create: bool) -> io::Result<Option<OwnedFd>> {
    let mut dir = open_root(root)?;
    for name in rel {
        match open_child_dir(&dir, name) {
            Ok(next) => dir = next,
            Err(_) if !create => return Ok(None),
            Err(e) => {
                // ENOENT: make it. ELOOP/ENOTDIR: a link or a file stands there.
                if e.raw_os_error() != Some(libc::ENOENT) {
                    // SAFETY: a valid directory descriptor and C string; unlinks the
                    // entry itself (a link is never followed).
                    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })?;
                }
                // SAFETY: as above.
                check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) })?;
                dir = open_child_dir(&dir, name)?;
            }
        }
    }
    Ok(Some(dir))
}

/// What to put at a path.
pub(crate) enum Entry<'a> {
    /// A regular file, with the executable bit or not.
    File(&'a [u8], bool),
    /// A symbolic link to this target (written as given, never followed).
    Link(&'a [u8]),
}

/// Writes `entry` at `rel` beneath `root`, replacing whatever file or link is there.
pub(crate) fn write(root: &Path, rel: &Path, entry: Entry<'_>) -> io::Result<()> {
    let mut parts = names(rel)?;
    let name = parts
        .pop()
        .ok_or_else(|| io::Error::other("an empty path"))?;
    let dir = open_dir(root, &parts, true)?.ok_or_else(|| io::Error::other("no directory"))?;
    // SAFETY: a valid directory descriptor and C string; removes a file or link only.
    let gone = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
    if gone < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
        return Err(io::Error::last_os_error());
    }
    match entry {
        Entry::Link(target) => {
            let t = CString::new(target).map_err(|_| io::Error::other("NUL in a link"))?;
            // SAFETY: valid C strings and directory descriptor.
            check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })?;
        }
        Entry::File(data, executable) => {
            let mode: libc::c_uint = if executable { 0o755 } else { 0o644 };
            // SAFETY: valid C string and directory descriptor; O_EXCL|O_NOFOLLOW never
            // opens what another process put there meanwhile.
            let fd = check(unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    mode,
                )
            })?;
            // SAFETY: `fd` is a fresh descriptor no one else owns.
            let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            std::io::Write::write_all(&mut f, data)?;
        }
    }
    Ok(())
}

/// Makes directory `rel` beneath `root` (and its parents).
pub(crate) fn make_dir(root: &Path, rel: &Path) -> io::Result<()> {
    open_dir(root, &names(rel)?, true).map(|_| ())
}

/// Removes the file or link at `rel` beneath `root` (nothing when the path does not lead
/// through real directories), then the directories it leaves empty, up to the root.
pub(crate) fn remove(root: &Path, rel: &Path) -> io::Result<()> {
    let mut parts = names(rel)?;
    let Some(name) = parts.pop() else {
        return Ok(());
    };
    let Some(dir) = open_dir(root, &parts, false)? else {
        return Ok(());
    };
    // SAFETY: a valid directory descriptor and C string; a file or link only.
    let rc = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
    if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
        return Err(io::Error::last_os_error());
    }
    while let Some(name) = parts.pop() {
        let Some(parent) = open_dir(root, &parts, false)? else {
            break;
        };
        // SAFETY: as above; removes an empty directory only.
        let rc = unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
        if rc < 0 {
            break;
        }
    }
    Ok(())
}

/// What a read found at a path, with the status of that very file (for the index's stat
/// cache).
pub(crate) struct Found {
    pub stat: libc::stat,
    pub content: Vec<u8>,
    /// A link (`content` is its target) or a regular file.
    pub link: bool,
}

/// Reads the regular file or link at `rel` beneath `root`, at most `limit` bytes of
/// content (`Err(FileTooLarge)` past it). `None` when nothing readable is there (gone, a
/// directory, a FIFO, a device, or a path through a link).
pub(crate) fn read(root: &Path, rel: &Path, limit: u64) -> io::Result<Option<Found>> {
    let mut parts = names(rel)?;
    let Some(name) = parts.pop() else {
        return Ok(None);
    };
    let Some(dir) = open_dir(root, &parts, false)? else {
        return Ok(None);
    };
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid directory descriptor, C string and out pointer.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        return Ok(None);
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFLNK => {
            let mut buf = vec![0u8; (st.st_size.max(0) as usize).clamp(64, 1 << 16) + 1];
            // SAFETY: a valid directory descriptor and C string; `buf` is writable for
            // its length.
            let n = unsafe {
                libc::readlinkat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 || n as usize >= buf.len() {
                return Ok(None);
            }
            buf.truncate(n as usize);
            Ok(Some(Found {
                stat: st,
                content: buf,
                link: true,
            }))
        }
        libc::S_IFREG => {
            // SAFETY: a valid directory descriptor and C string. O_NOFOLLOW refuses a link
            // swapped in since the stat; O_NONBLOCK a FIFO; the type is checked again on
            // the descriptor.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_RDONLY
                        | libc::O_NOFOLLOW
                        | libc::O_NONBLOCK
                        | libc::O_NOCTTY
                        | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Ok(None);
            }
            // SAFETY: `fd` is a fresh descriptor no one else owns.
            let f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            // SAFETY: a valid descriptor and out pointer.
            check(unsafe { libc::fstat(f.as_raw_fd(), &mut st) })?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Ok(None);
            }
            let mut content = Vec::with_capacity((st.st_size.max(0) as u64).min(limit) as usize);
            f.take(limit.saturating_add(1)).read_to_end(&mut content)?;
            if content.len() as u64 > limit {
                return Err(io::Error::from(io::ErrorKind::FileTooLarge));
            }
            Ok(Some(Found {
                stat: st,
                content,
                link: false,
            }))
        }
        _ => Ok(None),
    }
}
