//! The JSON messages inside frames.

use execkit_sandbox::{Enforcement, Profile, Rlimits};
use serde::{Deserialize, Serialize};

/// The session's setup, sent once by the server. Everything here is the operator's (the
/// server builds it from its configuration, never from an agent's arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// The sandbox profile (`off`: no Landlock or seccomp; the lifetime and framing
    /// guarantees still hold).
    pub profile: Profile,
    /// The workspace on the target (`~/` means the remote account's home); the shell
    /// starts there and, unless the profile is `read-only`, may write there.
    pub workspace: String,
    /// Create the workspace (mode 0700) when it is missing.
    pub create_workspace: bool,
    /// Extra writable paths (`~/` allowed).
    pub writable: Vec<String>,
    /// Paths the shell may not read (`~/` allowed; missing ones are skipped).
    pub deny_read: Vec<String>,
    /// The account's home: closed but for the listed toolchains and caches, or open.
    pub home: execkit_sandbox::home::HomeAccess,
    /// Start without Landlock where the kernel has none (the report says so).
    pub allow_best_effort: bool,
    /// Give the shell PID and mount namespaces where the account may create them.
    pub namespaces: bool,
    /// Per-process limits (hard and soft) set before the shell starts.
    pub rlimits: Rlimits,
    /// The shell: `bash` (run as `bash --noprofile --norc`) or `sh`.
    pub shell: ShellKind,
    /// Variables set in the shell's environment (over the account's own).
    pub env: Vec<(String, String)>,
    /// With no frame from the server for this long, the helper takes the tree down
    /// (0: never; the end of its stdin still does).
    pub idle_secs: u64,
    /// The target is already a PID namespace of the session's own (an ephemeral container
    /// whose init is the helper's guard, which ends with the server): report it as the
    /// session's namespace when the helper cannot make one of its own.
    pub own_pid_namespace: bool,
    /// Stop every program the shell starts at `execve` and ask the server
    /// ([`crate::wire::Kind::ExecAsk`]) before it runs.
    pub exec_decisions: bool,
    /// Give the shell a network of its own (loopback only) where the account may create
    /// one, with the helper's egress broker in it as the only way out; needs
    /// `exec_decisions` (the server decides each connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerStart>,
}

/// The egress broker the helper holds in the shell's own network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerStart {
    /// The port it listens on at `127.0.0.1` inside the shell's network.
    pub port: u16,
    /// Variables that point the shell's clients at it (set only when the shell has the
    /// network of its own).
    pub env: Vec<(String, String)>,
    /// Names resolved to these addresses instead of by the target's resolver (the
    /// operator's `[sandbox.egress] hosts`).
    pub hosts: std::collections::BTreeMap<String, std::net::IpAddr>,
    /// The shell shares the helper's network, which is already its own (an ephemeral
    /// container's `none` network): the helper listens there and relays each client's
    /// bytes to the server, whose broker decides and dials (the helper dials nothing).
    #[serde(default)]
    pub relay: bool,
}

/// A client of the shell's network connected to the helper's relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelOpen {
    /// The executable of the process that connected ("" when unknown).
    pub program: String,
}

/// A connection the helper's broker was asked to open, as the server decides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectAsk {
    /// The host as the client named it (lower case, no trailing dot, no brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// `http` for a forwarded plain request; none for a tunnel.
    pub scheme: Option<String>,
    /// The address the broker resolved and will dial (none: the name's decision, before
    /// anything is resolved).
    pub address: Option<std::net::IpAddr>,
    /// The human who approved this connection's name, whose answer stands for the
    /// address's decision too.
    pub approved_by: Option<String>,
    /// What the broker could not read to decide (a tunnel's unreadable TLS hello): the
    /// server refuses and records it without asking the policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// Which shell the helper starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShellKind {
    /// `bash --noprofile --norc`.
    #[default]
    Bash,
    /// A POSIX `sh`.
    Sh,
}

impl ShellKind {
    /// The program's name, looked up on the account's `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            ShellKind::Bash => "bash",
            ShellKind::Sh => "sh",
        }
    }

    /// Its arguments.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            ShellKind::Bash => &["--noprofile", "--norc"],
            ShellKind::Sh => &[],
        }
    }
}

/// The shell runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// [`crate::version_line`] of the helper.
    pub version: String,
    /// The helper's pid on the target (what the server's operator sees in `ps` there).
    pub helper_pid: i32,
    /// The remote account's home.
    pub home: String,
    /// The workspace, resolved.
    pub workspace: String,
    /// The session's private directory (the shell's `TMPDIR`; removed at the end).
    pub private_dir: String,
    /// The remote machine (`uname -m`).
    pub machine: String,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// What the remote kernel enforces.
    pub enforcement: Enforcement,
    /// The environment the shell started with (for the server's secret redaction).
    pub env: Vec<(String, String)>,
}

/// A request to the helper. Process ids are as the shell sees them (in its PID namespace
/// where it has one); the helper translates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Call {
    /// Is the shell blocked reading its own stdin? Answered with [`Waiting`].
    Waiting,
    /// The shell's children and their process groups: `[[pid, pgid], …]`.
    Children,
    /// Signals process groups (`targets` > 0) or single processes (negated); answered with
    /// how many were delivered.
    Signal {
        /// Groups, or negated pids.
        targets: Vec<i32>,
        /// The signal.
        sig: i32,
    },
    /// Signals the shell itself.
    SignalShell {
        /// The signal.
        sig: i32,
    },
    /// New FIFOs for the shell's stdout and stderr: answered with [`Rotated`].
    Rotate,
    /// The shell's working directory as the kernel has it: answered with a string.
    Cwd,
    /// What the shell last wrote to the exported-variables file in the private
    /// directory (`.ek-exports`): answered with a string.
    Exports,
}

/// The answer to [`Call::Waiting`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The shell is blocked in `read(0, …)` on the socket the helper gave it.
    pub waiting: bool,
    /// Its children then (background jobs), as the shell numbers them.
    pub children: Vec<i32>,
    /// Its working directory then, as the kernel has it.
    pub cwd: Option<String>,
}

/// The answer to [`Call::Rotate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotated {
    /// The generation whose chunks now carry the shell's output.
    pub generation: u64,
    /// The stdout FIFO.
    pub stdout: String,
    /// The stderr FIFO.
    pub stderr: String,
}

/// A reply: the value, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The answer.
    Ok(serde_json::Value),
    /// The call failed.
    Err(String),
}

/// Why the shell ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exited {
    /// Its exit code, or 128 + the signal that killed it.
    pub code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

/// Setup failed; the helper exits after sending this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    /// Which step.
    pub stage: String,
    /// What went wrong.
    pub message: String,
}

/// A program stopped as it starts, as the decider is shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramStart {
    /// The program, as the caller named it (relative to `cwd` when not absolute).
    pub program: String,
    /// Its arguments, `argv[0]` first.
    pub argv: Vec<String>,
    /// The caller's working directory.
    pub cwd: String,
    /// The caller's parents up to the session's shell, nearest first (`pid name`).
    pub parents: Vec<String>,
    /// The caller's pid, as the session numbers it.
    pub pid: i32,
    /// The caller's executable: the program starting this one.
    #[serde(default)]
    pub caller: String,
}

/// Helper → server: decide this program (it waits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecAsk {
    /// Names the stopped call in the answer.
    pub id: u64,
    /// The program.
    pub start: ProgramStart,
    /// Set: not a program start but a connection by `start.program` to this Unix socket
    /// file (outside the workspace and the private directory), which waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Set: not a program start but a connection by `start.program` through the helper's
    /// egress broker, which waits (ids are the broker's own; see
    /// [`ExecVerdict::connection`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectAsk>,
    /// The `#!` interpreters the kernel will start in place of the script `start` runs,
    /// each as (program, argv): decided after it, all of them allowed or the start refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpreters: Vec<(String, Vec<String>)>,
}

/// Server → helper: the answer to an [`ExecAsk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecVerdict {
    /// The ask's id.
    pub id: u64,
    /// Let it run.
    pub allow: bool,
    /// The same program, arguments and cwd may be let run again without asking (a policy
    /// verdict; a human's approval is not remembered).
    pub remember: bool,
    /// The answer to a broker's [`ExecAsk::connection`] (whose ids are apart from the
    /// stopped calls').
    #[serde(default)]
    pub connection: bool,
    /// Why not (with the policies' advice), for the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The human who approved it, when the policies asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// What `execkit-helper probe` prints: what this kernel and account can give a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// [`crate::version_line`].
    pub version: String,
    /// `uname -m`.
    pub machine: String,
    /// `uname -r`.
    pub kernel: String,
    /// The Landlock ABI (0: none).
    pub landlock_abi: i32,
    /// A seccomp filter can be installed.
    pub seccomp: bool,
    /// PID and mount namespaces can be created (how: `root` or `user`), or why not.
    pub namespaces: Result<String, String>,
    /// The account's uid.
    pub uid: u32,
}
