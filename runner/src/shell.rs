//! One running bash: spawning it sandboxed, its stdin, and the tasks that read its output.
//!
//! Output arrives as [`Chunk`]s tagged with a *generation*. When a command leaves
//! background processes behind, the next command gets fresh stdout/stderr pipes (FIFOs in
//! the private tmp dir, opened by the shell with `exec 1>|… 2>|…`) and the generation
//! moves on; whatever the old processes write later lands on the old pipes and is
//! dropped, never attributed to a later command.

use crate::config::SessionConfig;
use crate::frame;
use crate::procs;
use crate::sandbox::cgroup::{self, Counters, SessionCgroup, Wanted};
use crate::sandbox::{self, namespaces, Enforcement};
use crate::SessionError;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Bytes read per chunk.
const CHUNK: usize = 64 * 1024;

/// A piece of output (or the end of a stream: `data == None`).
#[derive(Debug)]
pub struct Chunk {
    /// Pipe generation.
    pub gen: u64,
    /// From stderr.
    pub err: bool,
    /// The bytes; `None` at end of stream.
    pub data: Option<Vec<u8>>,
}

/// A live shell.
pub struct Shell {
    pub child: Child,
    pub pid: i32,
    stdin: ChildStdin,
    stdin_pipe: String,
    pub rx: mpsc::Receiver<Chunk>,
    tx: mpsc::Sender<Chunk>,
    current: Arc<AtomicU64>,
    pub token: String,
    pub seq: u64,
    /// Set when the last command left children behind: rotate pipes before the next one.
    pub rotate: bool,
    /// FIFOs of the current generation, unlinked once the command using them is done.
    fifos: Vec<PathBuf>,
    tmp: PathBuf,
    run_as: Option<(u32, u32)>,
    /// The shell's children when the last command ended (background jobs).
    pub background: Vec<i32>,
    /// The session's cgroup (removed when the shell is dropped).
    pub cgroup: Option<SessionCgroup>,
}

/// The clean environment a shell starts with.
pub fn environment(config: &SessionConfig, home: &Path, tmp: &Path) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("PATH", crate::config::DEFAULT_PATH),
        ("LANG", "C.UTF-8"),
        ("TERM", "dumb"),
        ("PAGER", "cat"),
        ("GIT_PAGER", "cat"),
        ("MANPAGER", "cat"),
        ("SYSTEMD_PAGER", ""),
        ("LESS", "-FRX"),
        ("NO_COLOR", "1"),
        ("CLICOLOR", "0"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("DEBIAN_FRONTEND", "noninteractive"),
        ("SHELL", "/bin/bash"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    env.insert("HOME".into(), home.display().to_string());
    env.insert("TMPDIR".into(), tmp.display().to_string());
    for (k, v) in &config.env {
        env.insert(k.clone(), v.clone());
    }
    env
}

impl Shell {
    /// Spawns bash under the sandbox and waits until it has run the init script.
    pub async fn spawn(
        config: &SessionConfig,
        home: &Path,
        tmp: &Path,
    ) -> Result<(Shell, Enforcement), SessionError> {
        let prepared = sandbox::prepare(&config.sandbox, &config.workspace, tmp)?;
        let mut enforcement = prepared.enforcement.clone();
        // The session's cgroup (named after its directory, plus a spawn counter so a
        // restarted shell gets a fresh group) and the rlimits that complete it.
        let res = config.limits.resources;
        let group_name = format!(
            "{}-{}",
            tmp.parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("execkit-session"),
            frame::random_hex(4).map_err(SessionError::Spawn)?
        );
        let cgroup = match SessionCgroup::create(
            &group_name,
            Wanted {
                processes: res.processes,
                memory_bytes: res.memory_bytes,
                cpu_percent: res.cpu_percent,
            },
        ) {
            Ok(g) => g,
            Err(e) => {
                enforcement
                    .notes
                    .push(format!("no session cgroup ({e}): falling back to rlimits"));
                None
            }
        };
        let (rlimits, report, notes) =
            sandbox::rlimits::plan(&res, cgroup.as_ref(), config.run_as.is_some());
        enforcement.resources = report;
        enforcement.notes.extend(notes);
        let cgroup_fds = cgroup.as_ref().map(|g| g.procs_fds()).unwrap_or_default();
        let mut cmd = Command::new(&config.shell);
        cmd.arg("--noprofile")
            .arg("--norc")
            .env_clear()
            .envs(environment(config, home, tmp))
            .current_dir(&config.workspace)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let namespaces = prepared.namespaces;
        let creds = config.run_as.as_ref().map(|r| (r.uid, r.gid));
        if !namespaces {
            // With namespaces the user is switched after mounting `/proc` (see below).
            if let Some((uid, gid)) = creds {
                cmd.uid(uid).gid(gid);
            }
        }
        let prepared = Arc::new(prepared);
        let p = prepared.clone();
        // SAFETY: the closure only makes async-signal-safe system calls (setsid, unshare,
        // fork, mount, setuid, prctl, landlock_restrict_self, seccomp) on data built before
        // fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                cgroup::join_in_child(&cgroup_fds)?;
                rlimits.apply_in_child()?;
                if namespaces {
                    namespaces::enter(creds)?;
                } else {
                    namespaces::die_with_parent()?;
                }
                p.apply_in_child()
            });
        }
        let mut child = cmd.spawn().map_err(SessionError::Spawn)?;
        drop(prepared);
        let spawned = child
            .id()
            .map(|p| p as i32)
            .ok_or_else(|| SessionError::NotReady("the shell exited at once".into()))?;
        // With namespaces our child is the keeper and the shell its only child (forked
        // before `spawn` returned: the keeper closes the exec-error pipe after forking).
        let pid = if namespaces {
            *procs::children(spawned).first().ok_or_else(|| {
                SessionError::NotReady("the shell exited at once (no namespace)".into())
            })?
        } else {
            spawned
        };
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| SessionError::NotReady("no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| SessionError::NotReady("no stdout".into()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| SessionError::NotReady("no stderr".into()))?;
        let ino = {
            use std::os::fd::AsRawFd;
            let fd = stdin.as_raw_fd();
            let f = std::mem::ManuallyDrop::new(unsafe {
                // SAFETY: borrowed only to fstat; ManuallyDrop keeps the fd open.
                <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
            });
            f.metadata().map_err(SessionError::Spawn)?.ino()
        };
        let (tx, rx) = mpsc::channel(64);
        let current = Arc::new(AtomicU64::new(0));
        tokio::spawn(read_loop(stdout, 0, false, current.clone(), tx.clone()));
        tokio::spawn(read_loop(stderr, 0, true, current.clone(), tx.clone()));
        let token = frame::random_hex(8).map_err(SessionError::Spawn)?;
        let mut shell = Shell {
            child,
            pid,
            stdin,
            stdin_pipe: format!("pipe:[{ino}]"),
            rx,
            tx,
            current,
            token,
            seq: 0,
            rotate: false,
            fifos: Vec::new(),
            tmp: tmp.to_path_buf(),
            run_as: config.run_as.as_ref().map(|r| (r.uid, r.gid)),
            background: Vec::new(),
            cgroup,
        };
        shell.wait_ready().await?;
        Ok((shell, enforcement))
    }

    async fn wait_ready(&mut self) -> Result<(), SessionError> {
        let init = frame::init_script(&self.token);
        self.write(init.as_bytes())
            .await
            .map_err(|e| SessionError::NotReady(format!("cannot write to the shell: {e}")))?;
        let mut split = frame::Splitter::new(frame::ready_marker(&self.token));
        let mut errors = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let chunk = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .map_err(|_| {
                    SessionError::NotReady("no answer from the shell within 10 s".into())
                })?;
            match chunk {
                Some(Chunk {
                    err: true,
                    data: Some(d),
                    ..
                }) => errors.extend(d),
                Some(Chunk {
                    err: false,
                    data: Some(d),
                    ..
                }) => {
                    if let frame::Split::Found { .. } = split.push(&d) {
                        return Ok(());
                    }
                }
                _ => {
                    let status = self.child.wait().await.ok();
                    return Err(SessionError::NotReady(format!(
                        "the shell exited ({}): {}",
                        status.map(|s| s.to_string()).unwrap_or_default(),
                        String::from_utf8_lossy(&errors).trim()
                    )));
                }
            }
        }
    }

    /// The cgroup's limit counters now (zero without a cgroup).
    pub fn counters(&self) -> Counters {
        self.cgroup
            .as_ref()
            .map(SessionCgroup::counters)
            .unwrap_or_default()
    }

    /// The generation of the current pipes.
    pub fn generation(&self) -> u64 {
        self.current.load(Ordering::SeqCst)
    }

    /// Writes to the shell's stdin.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stdin.write_all(bytes).await?;
        self.stdin.flush().await
    }

    /// True if the shell is blocked reading its stdin from us: the command is over.
    pub fn waiting_for_input(&self) -> bool {
        procs::blocked_reading_stdin(self.pid)
            && procs::fd_target(self.pid, 0)
                .is_some_and(|t| t.as_os_str() == self.stdin_pipe.as_str())
    }

    /// Prepares fresh pipes for the next command and returns the shell code that
    /// switches to them.
    pub fn rotate_pipes(&mut self) -> std::io::Result<String> {
        let name = frame::random_hex(8)?;
        let out = self.tmp.join(format!(".ek-{name}-out"));
        let err = self.tmp.join(format!(".ek-{name}-err"));
        for p in [&out, &err] {
            mkfifo(p)?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
            }
        }
        let gen = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        for (p, is_err) in [(&out, false), (&err, true)] {
            let path = p.clone();
            let tx = self.tx.clone();
            let current = self.current.clone();
            tokio::spawn(async move {
                // Blocks until the shell opens the write end, so we never see an early EOF.
                let opened = tokio::task::spawn_blocking(move || std::fs::File::open(path)).await;
                let receiver = match opened {
                    Ok(Ok(file)) => tokio::net::unix::pipe::Receiver::from_file(file).ok(),
                    _ => None,
                };
                match receiver {
                    Some(r) => read_loop(r, gen, is_err, current, tx).await,
                    // Could not read the new FIFO: report the stream as closed.
                    None => {
                        let _ = tx
                            .send(Chunk {
                                gen,
                                err: is_err,
                                data: None,
                            })
                            .await;
                    }
                }
            });
        }
        self.fifos = vec![out.clone(), err.clone()];
        self.rotate = false;
        Ok(format!(
            "exec 1>|{} 2>|{}; ",
            frame::ansi_c_quote(&out.display().to_string()),
            frame::ansi_c_quote(&err.display().to_string())
        ))
    }

    /// Removes this generation's FIFO names (the open pipes stay).
    pub fn unlink_fifos(&mut self) {
        for p in self.fifos.drain(..) {
            // Wake a reader still blocked in open (the shell never opened it).
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&p);
            let _ = std::fs::remove_file(&p);
        }
    }

    /// Kills the shell and everything it started.
    pub fn kill_all(&mut self) {
        self.unlink_fifos();
        procs::kill_tree(self.pid, self.pid, 50);
        let _ = self.child.start_kill();
    }
}

fn mkfifo(p: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("NUL in FIFO path"))?;
    // SAFETY: a valid C string and mode.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    gen: u64,
    err: bool,
    current: Arc<AtomicU64>,
    tx: mpsc::Sender<Chunk>,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx
                    .send(Chunk {
                        gen,
                        err,
                        data: None,
                    })
                    .await;
                return;
            }
            Ok(n) => {
                // A stale generation keeps draining (so late writers never block) but
                // nothing it reads is passed on.
                if current.load(Ordering::SeqCst) != gen {
                    continue;
                }
                if tx
                    .send(Chunk {
                        gen,
                        err,
                        data: Some(buf[..n].to_vec()),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
