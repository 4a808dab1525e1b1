//! A sandbox built in the parent and applied in the child: `no_new_privs`, Landlock (failing
//! unless the kernel enforces what was expected), then seccomp — so a failure fails the
//! spawn instead of running unconfined.

use crate::{
    kernel_landlock_abi, landlock_rules, seccomp_filter, Enforcement, Level, Profile,
    ResourceReport, SandboxError,
};
use std::path::{Path, PathBuf};

/// Set in the shell's process (after the fork, so per session) when it has a devpts
/// instance of its own: then, and only then, the sandbox lets it open `/dev/ptmx` and
/// `/dev/pts/*` (background processes in PTY mode), which hold only its own terminals.
pub static PRIVATE_PTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set in the shell's process when it mounted a tmpfs of its own on `/dev/shm` (so POSIX
/// shared memory is the session's alone, not a channel to the host that outlives it):
/// then the sandbox grants that mount.
pub static PRIVATE_SHM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A sandbox ready to be applied in a child.
pub struct Prepared {
    /// The shell gets its own PID and mount namespaces.
    pub namespaces: bool,
    /// The shell gets a network namespace of its own (loopback only): sockets are not
    /// refused, nothing routes out.
    pub private_network: bool,
    /// Add a read rule for the session's own `/proc` in the child (see
    /// [`landlock_rules::add_own_proc`]).
    own_proc_rule: bool,
    ruleset: std::sync::Mutex<Option<landlock::RulesetCreated>>,
    expect_landlock: bool,
    bpf: Option<seccompiler::BpfProgram>,
    /// What will be enforced.
    pub enforcement: Enforcement,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("enforcement", &self.enforcement)
            .finish_non_exhaustive()
    }
}

/// What a shell's sandbox is to be.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The operator's profile.
    pub profile: Profile,
    /// The shell's workspace (writable unless the profile is `read-only`).
    pub workspace: &'a Path,
    /// The session's private tmp dir (always writable).
    pub private_tmp: &'a Path,
    /// Extra writable paths.
    pub writable: &'a [PathBuf],
    /// Paths made unreadable.
    pub deny_read: &'a [PathBuf],
    /// The home to close (all but its toolchains and caches unreadable), if any.
    pub home: Option<crate::home::ClosedHome<'a>>,
    /// Start without Landlock where the kernel has none.
    pub allow_best_effort: bool,
    /// The shell will get PID and mount namespaces of its own.
    pub namespaces: bool,
    /// The caller can put the shell in a network namespace of its own (where the profile
    /// has no network): then TCP and sockets are not refused, and only the session's own
    /// loopback answers.
    pub private_network: bool,
    /// Why it will not, for the report (when `namespaces` is false).
    pub no_namespace_note: &'a str,
}

/// Builds the sandbox for a shell (in the parent, before `fork`).
pub fn prepare(req: &Request<'_>) -> Result<Prepared, SandboxError> {
    let abi = kernel_landlock_abi();
    let profile = req.profile;
    let ns = req.namespaces;
    let ns_note = || req.no_namespace_note.to_string();
    if profile == Profile::Off {
        let mut notes = vec!["sandbox profile `off`: the operator opted out".to_string()];
        if !ns {
            notes.push(ns_note());
        }
        return Ok(Prepared {
            namespaces: ns,
            private_network: false,
            own_proc_rule: false,
            ruleset: std::sync::Mutex::new(None),
            expect_landlock: false,
            bpf: None,
            enforcement: Enforcement {
                profile,
                level: Level::None,
                landlock_abi: abi,
                filesystem: false,
                landlock_network: false,
                scopes: false,
                seccomp: false,
                no_new_privs: false,
                pid_namespace: ns,
                private_network: false,
                egress_broker: false,
                exec_decisions: false,
                resources: ResourceReport::default(),
                writable: Vec::new(),
                closed_home: None,
                notes,
            },
        });
    }
    if abi < 1 && !req.allow_best_effort {
        return Err(SandboxError::NoLandlock(profile.as_str()));
    }
    let mut writable: Vec<PathBuf> = vec![req.private_tmp.to_path_buf()];
    if profile != Profile::ReadOnly {
        writable.push(req.workspace.to_path_buf());
    }
    writable.extend(req.writable.iter().cloned());
    for p in &writable {
        if !p.exists() {
            return Err(SandboxError::Path {
                path: p.clone(),
                message: "does not exist".into(),
            });
        }
    }
    let mut notes = Vec::new();
    for d in req.deny_read {
        if let Some(w) = writable.iter().find(|w| d.starts_with(w)) {
            notes.push(format!(
                "{} stays readable: it is inside the writable {} (Landlock rules only add access)",
                d.display(),
                w.display()
            ));
        }
    }
    let closed = closed_home(req, &writable, &mut notes);
    let unreadable = landlock_rules::Unreadable {
        denied: req.deny_read,
        home: closed.as_ref().map(|(h, _)| h.as_path()),
        reopened: closed.as_ref().map_or(&[][..], |(_, o)| o.as_slice()),
    };
    let private_net = req.private_network && !profile.network();
    let block_net = !profile.network() && !private_net;
    let (ruleset, applied) = if abi >= 1 {
        let built = landlock_rules::build(abi, &writable, unreadable, block_net)?;
        (Some(built.ruleset), built.applied)
    } else {
        notes.push("no Landlock on this kernel: filesystem and TCP rules are not enforced".into());
        (None, landlock_rules::Applied::default())
    };
    let bpf = seccomp_filter::build(block_net)?;
    let full = applied.filesystem && applied.scopes && (!block_net || applied.network) && ns;
    if !ns {
        notes.push(ns_note());
    }
    if abi >= 1 && !applied.network && block_net {
        notes.push(format!(
            "Landlock ABI {abi} has no TCP rules; network is blocked by seccomp alone"
        ));
    }
    if abi >= 1 && !applied.scopes {
        notes.push(format!(
            "Landlock ABI {abi} has no signal/abstract-socket scoping"
        ));
    }
    Ok(Prepared {
        namespaces: ns,
        private_network: private_net,
        own_proc_rule: ns && ruleset.is_some() && landlock_rules::proc_not_denied(req.deny_read),
        expect_landlock: ruleset.is_some(),
        ruleset: std::sync::Mutex::new(ruleset),
        bpf: Some(bpf),
        enforcement: Enforcement {
            profile,
            level: if full {
                Level::Full
            } else if applied.filesystem {
                Level::Partial
            } else {
                Level::None
            },
            landlock_abi: abi,
            filesystem: applied.filesystem,
            landlock_network: applied.network,
            scopes: applied.scopes,
            seccomp: true,
            no_new_privs: true,
            pid_namespace: ns,
            private_network: private_net,
            egress_broker: false,
            exec_decisions: false,
            resources: ResourceReport::default(),
            writable,
            closed_home: closed.map(|(h, _)| h),
            notes,
        },
    })
}

/// The home to close and the paths in it read again, or a note saying why it stays open.
fn closed_home(
    req: &Request<'_>,
    writable: &[PathBuf],
    notes: &mut Vec<String>,
) -> Option<(PathBuf, Vec<PathBuf>)> {
    match crate::home::plan(req.home.as_ref()?, writable) {
        crate::home::Plan::Close { home, open } => Some((home, open)),
        crate::home::Plan::Skip(why) => {
            notes.push(why);
            None
        }
    }
}

impl Prepared {
    /// Applies the sandbox to the calling process. Only for a forked child before `exec`.
    ///
    /// Sets `no_new_privs`, restricts with Landlock (failing unless the kernel enforces
    /// what the parent expected) and installs the seccomp filter.
    pub fn apply_in_child(&self) -> std::io::Result<()> {
        if self.bpf.is_none() && !self.expect_landlock {
            return Ok(());
        }
        // SAFETY: prctl with constant arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: raw system calls in the forked child.
        unsafe { crate::capabilities::drop_all()? };
        let ruleset = match self.ruleset.lock() {
            Ok(mut g) => g.take(),
            Err(_) => return Err(std::io::Error::other("sandbox ruleset lock poisoned")),
        };
        if let Some(mut ruleset) = ruleset {
            if self.own_proc_rule {
                ruleset = landlock_rules::add_own_proc(ruleset)?;
            }
            if PRIVATE_PTS.load(std::sync::atomic::Ordering::SeqCst) {
                ruleset = landlock_rules::add_own_pts(ruleset)?;
            }
            if PRIVATE_SHM.load(std::sync::atomic::Ordering::SeqCst) {
                ruleset = landlock_rules::add_own_shm(ruleset)?;
            }
            let status = ruleset
                .restrict_self()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if status.ruleset == landlock::RulesetStatus::NotEnforced {
                return Err(std::io::Error::other("Landlock was not enforced"));
            }
        } else if self.expect_landlock {
            return Err(std::io::Error::other("Landlock ruleset already used"));
        }
        if let Some(bpf) = &self.bpf {
            seccompiler::apply_filter(bpf).map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(())
    }
}
