//! One doctor for `execkit doctor` and `execkit-mcp doctor`: can this machine enforce the
//! sandbox a session is configured with? It reads the kernel (Landlock ABI, seccomp),
//! starts a real session with the given settings under a permit-everything policy (this
//! checks the kernel, not policies) and runs probes whose expected outcome follows from
//! the profile: a write outside the workspace refused, the workspace writable unless the
//! profile is read-only, `no_new_privs` set, the network refused unless the profile allows
//! it. The MCP doctor adds its operator checks (policies, audit path) to the same report.

use anyhow::Context as _;
use execkit_runner::sandbox::{kernel_landlock_abi, Enforcement, Level, Profile};
use execkit_runner::{Engine, ExecResult, PolicyBundle, SessionBuilder};
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The kernel's Landlock ABI.
    Landlock,
    /// seccomp filters.
    Seccomp,
    /// The operator's policy set loads and validates.
    Policies,
    /// The operator's audit path is writable.
    Audit,
    /// A session starts at the expected enforcement level.
    Sandbox,
    /// Probe: a write outside the workspace is refused.
    WriteOutsideWorkspace,
    /// Probe: the workspace is writable (refused under `read-only`).
    WorkspaceWrite,
    /// Probe: `no_new_privs` is set in the session.
    NoNewPrivs,
    /// Probe: a TCP connection (refused unless the profile has network).
    Network,
    /// The SSH known_hosts file parses.
    SshKnownHosts,
    /// An SSH key file is usable (exists, owner-only).
    SshKey,
    /// The operator's ssh-agent answers.
    SshAgent,
    /// The Docker endpoint answers.
    Docker,
}

impl CheckKind {
    fn label(self) -> &'static str {
        match self {
            CheckKind::Landlock => "landlock",
            CheckKind::Seccomp => "seccomp",
            CheckKind::Policies => "policies",
            CheckKind::Audit => "audit",
            CheckKind::Sandbox => "sandbox",
            CheckKind::WriteOutsideWorkspace => "probe: write outside workspace",
            CheckKind::WorkspaceWrite => "probe: write in workspace",
            CheckKind::NoNewPrivs => "probe: no_new_privs",
            CheckKind::Network => "probe: network",
            CheckKind::SshKnownHosts => "ssh known_hosts",
            CheckKind::SshKey => "ssh key",
            CheckKind::SshAgent => "ssh agent",
            CheckKind::Docker => "docker endpoint",
        }
    }
}

/// One check and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub kind: CheckKind,
    /// Passed (or did not matter for this configuration).
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// Every check, in order, and what the session got.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `uname -r`.
    pub kernel: String,
    /// The kernel's Landlock ABI (0: none).
    pub landlock_abi: i32,
    /// The enforcement a probe session got, when one started.
    pub enforcement: Option<Enforcement>,
    /// The checks.
    pub checks: Vec<Check>,
    /// Every check passed.
    pub ok: bool,
}

impl Report {
    /// Adds a check (a failed one makes the report fail).
    pub fn push(&mut self, kind: CheckKind, ok: bool, detail: impl Into<String>) {
        self.ok &= ok;
        self.checks.push(Check {
            kind,
            ok,
            detail: detail.into(),
        });
    }

    /// One line per check, then the verdict.
    pub fn render(&self) -> String {
        let mut s = format!(
            "kernel {}  Landlock ABI {}\n",
            self.kernel, self.landlock_abi
        );
        for c in &self.checks {
            let _ = writeln!(
                s,
                "{:<31} {}  {}",
                c.kind.label(),
                if c.ok { "ok  " } else { "FAIL" },
                c.detail
            );
        }
        if let Some(e) = &self.enforcement {
            for n in &e.notes {
                let _ = writeln!(s, "  note: {n}");
            }
        }
        s.push_str(if self.ok {
            "ready\n"
        } else {
            "NOT READY: fix the failed checks above\n"
        });
        s
    }
}

#[allow(unsafe_code)] // one prctl query, see SAFETY below
fn seccomp_supported() -> (bool, String) {
    // PR_GET_SECCOMP answers 0 (not filtered) or 2 (filtered) where seccomp exists.
    // SAFETY: prctl with constant arguments reads a flag of this process only.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let filter_line = status.lines().any(|l| l.starts_with("Seccomp_filters:"));
    let seen = if filter_line {
        "supported"
    } else {
        "not reported"
    };
    (
        mode >= 0 && filter_line,
        format!("PR_GET_SECCOMP={mode}, filters {seen}"),
    )
}

/// A policy that permits everything, so probes test the kernel and not the policies.
pub(crate) fn permit_all() -> anyhow::Result<Engine> {
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        &[(
            "doctor.cedar",
            "@id(\"doctor-probe\") permit(principal, action, resource);",
        )],
        "[]",
    );
    Engine::new(&bundle).context("the doctor's permit-all policy does not load")
}

/// A probe: a command, how to tell whether the session let it through, and whether the
/// profile should.
struct Probe {
    kind: CheckKind,
    command: &'static str,
    permitted: fn(&ExecResult) -> bool,
    permitted_under: fn(Profile) -> bool,
}

fn succeeded(r: &ExecResult) -> bool {
    r.exit_code == Some(0)
}

/// Nothing listens on port 9 here: a "Connection refused" means the connect reached the
/// network stack (permitted); a sandbox refusal is EPERM/EACCES.
fn reached_network(r: &ExecResult) -> bool {
    r.exit_code == Some(0) || r.stderr.contains("Connection refused")
}

/// `command` run from a script in the session's tmp: the decision on the text sees only
/// `sh` starting it (a write it names outside the writable roots would be refused there,
/// before the kernel is asked), so the probe measures the kernel. `command` has no `'`.
fn kernel_only(command: &str) -> String {
    format!("printf '%s\\n' '{command}' > \"$TMPDIR/.execkit-doctor.sh\" && sh \"$TMPDIR/.execkit-doctor.sh\"")
}

const PROBES: &[Probe] = &[
    Probe {
        kind: CheckKind::WriteOutsideWorkspace,
        command: "echo x > /etc/.execkit-doctor && rm -f /etc/.execkit-doctor",
        permitted: succeeded,
        permitted_under: |p| p == Profile::Off,
    },
    Probe {
        kind: CheckKind::WorkspaceWrite,
        command: "echo x > .execkit-doctor && rm .execkit-doctor",
        permitted: succeeded,
        permitted_under: |p| p != Profile::ReadOnly,
    },
    Probe {
        kind: CheckKind::NoNewPrivs,
        command: "grep -q 'NoNewPrivs:\t1' /proc/self/status",
        permitted: succeeded,
        permitted_under: |p| p != Profile::Off,
    },
    Probe {
        kind: CheckKind::Network,
        command: "echo > /dev/tcp/127.0.0.1/9",
        permitted: reached_network,
        permitted_under: |p| matches!(p, Profile::WorkspaceNet | Profile::Off),
    },
];

impl Report {
    /// The kernel checks (Landlock, seccomp). `strict` is true when partial enforcement is
    /// not acceptable (a sandboxing profile without best effort).
    pub fn kernel(strict: bool) -> Report {
        let abi = kernel_landlock_abi();
        let mut report = Report {
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            landlock_abi: abi,
            enforcement: None,
            checks: Vec::new(),
            ok: true,
        };
        report.push(
            CheckKind::Landlock,
            abi >= 1 || !strict,
            format!("kernel Landlock ABI {abi} (rules target ABI 6; 0 = unavailable)"),
        );
        let (sc_ok, sc_detail) = seccomp_supported();
        report.push(CheckKind::Seccomp, sc_ok || !strict, sc_detail);
        report
    }

    /// Starts a probe session from `builder` under a permit-everything policy and runs the
    /// probes. Its workspace is a throw-away directory made here and removed afterwards.
    pub async fn probe_session(&mut self, builder: SessionBuilder, profile: Profile, strict: bool) {
        let ws = std::env::temp_dir().join(format!("execkit-doctor-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&ws) {
            self.push(
                CheckKind::Sandbox,
                false,
                format!("cannot make a probe workspace {}: {e}", ws.display()),
            );
            return;
        }
        self.probe_in(builder.workspace(ws.clone()), profile, strict)
            .await;
        let _ = std::fs::remove_dir_all(&ws);
    }

    async fn probe_in(&mut self, builder: SessionBuilder, profile: Profile, strict: bool) {
        let engine = match permit_all() {
            Ok(e) => Arc::new(e),
            Err(e) => {
                self.push(CheckKind::Sandbox, false, format!("{e:#}"));
                return;
            }
        };
        let session = match builder.engine(engine).local().await {
            Ok(s) => s,
            Err(e) => {
                self.push(
                    CheckKind::Sandbox,
                    false,
                    format!("a session cannot start: {e}"),
                );
                return;
            }
        };
        self.probe_opened(session, profile, strict, false).await;
    }

    /// Runs the probes in a session opened on an SSH host or in a container (under a
    /// permit-everything policy): what the target's kernel enforces there.
    pub async fn probe_remote(
        &mut self,
        opened: anyhow::Result<execkit_runner::Session>,
        profile: Profile,
        strict: bool,
    ) {
        match opened {
            Ok(s) => self.probe_opened(s, profile, strict, true).await,
            Err(e) => self.push(
                CheckKind::Sandbox,
                false,
                format!("a session on the target cannot start: {e:#}"),
            ),
        }
    }

    async fn probe_opened(
        &mut self,
        session: execkit_runner::Session,
        profile: Profile,
        strict: bool,
        remote: bool,
    ) {
        let info = session.info().await;
        let e = &info.enforcement;
        self.push(
            CheckKind::Sandbox,
            e.level == Level::Full || !strict,
            format!(
                "profile {} at level {:?} (filesystem {}, network rules {}, own network {}, scopes {}, seccomp {}, no_new_privs {}, pid namespace {}, home closed {})",
                e.profile.as_str(), e.level, e.filesystem, e.landlock_network, e.private_network, e.scopes, e.seccomp, e.no_new_privs, e.pid_namespace,
                e.closed_home.as_ref().map_or("no".to_string(), |h| h.display().to_string())
            ),
        );
        self.enforcement = Some(e.clone());
        // Locally the network probe connects to a listener of this process: a session
        // with a network of its own reaches nothing here (its loopback is its own).
        let listener = (!remote)
            .then(|| std::net::TcpListener::bind("127.0.0.1:0").ok())
            .flatten();
        let here = listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| format!("echo > /dev/tcp/127.0.0.1/{}", a.port()));
        for p in PROBES {
            // On a target, the account's home is outside the workspace and its own to
            // write: a refusal there is the sandbox's.
            let (command, permitted) = match (remote, p.kind, &here) {
                (true, CheckKind::WriteOutsideWorkspace, _) => (
                    "echo x > \"$HOME/.execkit-doctor\" && rm -f \"$HOME/.execkit-doctor\"",
                    p.permitted,
                ),
                (false, CheckKind::Network, Some(c)) => {
                    (c.as_str(), succeeded as fn(&ExecResult) -> bool)
                }
                // A target's shell in a network of its own: "refused" from its own
                // loopback is no way out; only a connection made would be.
                (true, CheckKind::Network, _) if e.private_network => {
                    (p.command, succeeded as fn(&ExecResult) -> bool)
                }
                _ => (p.command, p.permitted),
            };
            let scripted;
            let writes = matches!(
                p.kind,
                CheckKind::WriteOutsideWorkspace | CheckKind::WorkspaceWrite
            );
            let command = if writes {
                scripted = kernel_only(command);
                scripted.as_str()
            } else {
                command
            };
            let ran_ok = match session.exec(command, &Default::default()).await {
                Ok(r) => permitted(&r),
                Err(e) => {
                    self.push(p.kind, false, format!("`{command}` did not run: {e}"));
                    continue;
                }
            };
            let expected = (p.permitted_under)(profile);
            let what = if ran_ok {
                "was permitted"
            } else {
                "was refused"
            };
            let want = if expected { "permit it" } else { "refuse it" };
            self.push(
                p.kind,
                ran_ok == expected || !strict,
                format!(
                    "`{command}` {what} (profile {} should {want})",
                    profile.as_str()
                ),
            );
        }
        session.close().await;
    }
}
