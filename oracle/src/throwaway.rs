//! A throwaway environment to run one command for real, traced.
//!
//! `bwrap` builds a root where nothing the command does matters: every top-level directory
//! of the host read-only except `/proc`, `/dev`, `/sys`, `/run`, `/root`, `/home` and the
//! workspace's and home's own top levels; a fresh tmpfs `/tmp`; a fresh copy of a fixture
//! workspace (a git repository with sources, logs and a Makefile) bound at the workspace
//! path; an empty home; every namespace unshared (no network interfaces, its own pids, so
//! a signal cannot reach a host process). `strace -f` runs *outside* the sandbox, so the
//! command cannot forge or reach the trace. The command gets `/dev/null` as stdin, a
//! minimal environment, and a wall-clock limit after which the whole tree is killed.

use crate::OracleError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The syscalls traced.
const TRACED: &str = "execve,execveat,open,openat,creat,truncate,unlink,unlinkat,rename,\
renameat,renameat2,mkdir,mkdirat,rmdir,chmod,fchmodat,chown,lchown,fchownat,symlink,\
symlinkat,link,linkat,mknodat,connect,chdir,fchdir,clone,clone3,fork,vfork";

/// The shell the sandbox starts; its first successful `execve` is the root of the tree.
pub(crate) const SHELL: &str = "/bin/bash";

/// Top-level host directories never shown to the command.
const HIDDEN: [&str; 10] = [
    "proc",
    "dev",
    "sys",
    "run",
    "tmp",
    "root",
    "home",
    "mnt",
    "media",
    "lost+found",
];

/// Files of the fixture workspace: path, content, executable.
const FIXTURE: &[(&str, &str, bool)] = &[
    ("notes.txt", "alpha\nbeta\nerror: one\ngamma\n", false),
    ("data.txt", "a 1 150 x\nb 2 50 y\nc 3 300 x\n", false),
    ("build.log", "ok\nerror: failed\nwarning: w\n", false),
    ("config.txt", "# comment\nkey=value\n\n", false),
    ("a.txt", "a\n", false),
    ("b.txt", "b\n", false),
    ("README.md", "# fixture\n", false),
    ("src/main.c", "int main(void) { return 0; }\n", false),
    ("src/lib.rs", "pub fn f() {}\n", false),
    ("src/app.py", "print('ok')\n", false),
    ("src/index.js", "console.log('ok')\n", false),
    ("tests/test_app.py", "def test_ok():\n    assert True\n", false),
    ("Makefile", "all:\n\t@echo built\ntest:\n\t@echo tested\n", false),
    ("package.json", "{\"name\":\"fixture\",\"version\":\"1.0.0\",\"scripts\":{\"build\":\"echo built\",\"test\":\"echo tested\"}}\n", false),
    ("run.sh", "#!/bin/sh\necho ran\n", true),
];

/// A host directory removed on drop.
pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub(crate) fn new() -> Result<Scratch, OracleError> {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| OracleError::Setup(format!("random: {e}")))?;
        let dir = std::env::temp_dir().join(format!("execkit-oracle-{}", hex::encode(r)));
        std::fs::create_dir_all(&dir).map_err(|e| OracleError::io(&dir, e))?;
        Ok(Scratch { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the fixture workspace into `dir` (and makes it a git repository when `git` is
/// installed, so that git commands have something to work on).
pub(crate) fn write_fixture(dir: &Path) -> Result<(), OracleError> {
    use std::os::unix::fs::PermissionsExt;
    for (rel, text, exec) in FIXTURE {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| OracleError::io(parent, e))?;
        }
        std::fs::write(&p, text).map_err(|e| OracleError::io(&p, e))?;
        if *exec {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| OracleError::io(&p, e))?;
        }
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args([
                "-c",
                "user.name=oracle",
                "-c",
                "user.email=oracle@localhost",
            ])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    // An archive for extraction commands (made before the repository, so it is tracked).
    let _ = Command::new("tar")
        .args(["-cf", "archive.tar", "notes.txt", "a.txt"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if git(&["init", "-q", "-b", "main"]) {
        git(&["add", "-A"]);
        git(&["commit", "-qm", "fixture"]);
    }
    Ok(())
}

/// Copies a directory tree (files, directories, symlinks).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), OracleError> {
    std::fs::create_dir_all(to).map_err(|e| OracleError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| OracleError::io(from, e))? {
        let entry = entry.map_err(|e| OracleError::io(from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let ty = entry.file_type().map_err(|e| OracleError::io(&src, e))?;
        if ty.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ty.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| OracleError::io(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| OracleError::io(&dst, e))?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| OracleError::io(&src, e))?;
        }
    }
    Ok(())
}

/// What one run produced.
pub(crate) struct Run {
    pub trace: String,
    pub exit: Option<i32>,
    pub timed_out: bool,
    pub output: String,
}

/// Where the command runs, as the decision saw it.
pub(crate) struct Placement<'a> {
    pub workspace: &'a str,
    pub home: &'a str,
    pub cwd: &'a str,
}

/// The first path component (`/work/a` → `work`).
fn top(p: &str) -> &str {
    p.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// The `bwrap` arguments for the root (without the command).
fn bwrap_args(fresh_ws: &Path, at: &Placement<'_>) -> Result<Vec<String>, OracleError> {
    let mut a: Vec<String> = vec!["--tmpfs".into(), "/".into()];
    let reserved = [top(at.workspace), top(at.home)];
    let root = std::fs::read_dir("/").map_err(|e| OracleError::io(Path::new("/"), e))?;
    let mut names: Vec<String> = root
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        if HIDDEN.contains(&n.as_str()) || reserved.contains(&n.as_str()) {
            continue;
        }
        let p = format!("/{n}");
        let meta = std::fs::symlink_metadata(&p).map_err(|e| OracleError::io(Path::new(&p), e))?;
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&p).map_err(|e| OracleError::io(Path::new(&p), e))?;
            a.extend(["--symlink".into(), t.to_string_lossy().into_owned(), p]);
        } else if meta.is_dir() {
            a.extend(["--ro-bind".into(), p.clone(), p]);
        }
    }
    a.extend(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"].map(String::from));
    a.extend(["--dir".into(), at.home.to_string()]);
    if at.cwd.starts_with("/tmp/") {
        // A directory of its own under the fresh /tmp.
        a.extend(["--dir".into(), at.cwd.to_string()]);
    }
    a.extend([
        "--bind".into(),
        fresh_ws.to_string_lossy().into_owned(),
        at.workspace.to_string(),
    ]);
    a.extend(
        [
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/local/bin:/usr/bin:/bin",
            "--setenv",
            "LANG",
            "C.UTF-8",
            "--setenv",
            "TERM",
            "dumb",
        ]
        .map(String::from),
    );
    a.extend(["--setenv".into(), "HOME".into(), at.home.to_string()]);
    a.extend(["--chdir".into(), at.cwd.to_string()]);
    Ok(a)
}

/// Runs `command` in a fresh copy of `fixture`, traced; kills it after `limit`.
pub(crate) fn run(
    command: &str,
    fixture: &Path,
    at: &Placement<'_>,
    limit: Duration,
) -> Result<Run, OracleError> {
    let scratch = Scratch::new()?;
    let ws = scratch.path().join("work");
    copy_tree(fixture, &ws)?;
    let trace_file = scratch.path().join("trace");
    let out_file = scratch.path().join("output");
    let out = std::fs::File::create(&out_file).map_err(|e| OracleError::io(&out_file, e))?;
    let err = out.try_clone().map_err(|e| OracleError::io(&out_file, e))?;
    let mut child = Command::new("strace")
        .args([
            "--pidns-translation",
            "-f",
            "-qq",
            "-y",
            "-s",
            "65536",
            "-e",
        ])
        .arg(format!("trace={TRACED}"))
        .arg("-e")
        .arg("signal=none")
        .arg("-o")
        .arg(&trace_file)
        .arg("bwrap")
        .args(bwrap_args(&ws, at)?)
        .args([SHELL, "-c", command])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| OracleError::Setup(format!("cannot start strace: {e}")))?;
    let deadline = Instant::now() + limit;
    let (exit, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(s)) => break (s.code(), false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break (None, true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(OracleError::Setup(format!("waiting for strace: {e}"))),
        }
    };
    let trace =
        std::fs::read_to_string(&trace_file).map_err(|e| OracleError::io(&trace_file, e))?;
    let mut output = String::new();
    if let Ok(f) = std::fs::File::open(&out_file) {
        let _ = f.take(64 * 1024).read_to_string(&mut output);
    }
    Ok(Run {
        trace,
        exit,
        timed_out,
        output,
    })
}
