//! `execkit session`, `execkit exec` and `execkit doctor`: local sessions for humans and
//! scripts. One JSON result per command, in one persistent session.

use crate::policy_cmd::engine_for;
use anyhow::Context as _;
use execkit_runner::sandbox::{Profile, SandboxConfig};
use execkit_runner::{ExecError, Limits, RunAs, Session, SessionBuilder};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Operator settings shared by `session`, `exec` and `doctor`.
#[derive(clap::Args, Debug, Clone)]
pub struct SessionArgs {
    /// Policy directory (default: the embedded `default` set).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Sandbox profile: read-only, workspace, workspace-net or off.
    #[arg(long, default_value = "workspace")]
    profile: Profile,
    /// The workspace (default: the current directory).
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Default timeout per command, in milliseconds (also the maximum).
    #[arg(long, default_value_t = 120_000)]
    timeout_ms: u64,
    /// Run the shell as this user (the server must run as root).
    #[arg(long)]
    run_as: Option<String>,
    /// Start even if the kernel cannot enforce the sandbox.
    #[arg(long)]
    allow_best_effort: bool,
    /// Append every decision and command to this hash-chained audit log (JSON Lines).
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Also keep each command's output (as returned: redacted, bounded), up to this many
    /// bytes per command, in the audit log as `transcript` records, for viewers and
    /// reviewers. 0 keeps none.
    #[arg(long, value_name = "BYTES", default_value_t = 0, requires = "audit")]
    transcript_bytes: usize,
}

/// Where `session` and `exec` run: locally (default), over SSH or in Docker.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Run on an SSH host: `USER@HOST[:PORT]` (no local sandbox; the policies decide).
    #[arg(long, value_name = "USER@HOST[:PORT]", conflicts_with_all = ["docker_image", "docker_container"])]
    ssh: Option<String>,
    /// The known_hosts file the SSH host key must be in.
    #[arg(long, requires = "ssh")]
    known_hosts: Option<PathBuf>,
    /// A private key file for SSH (repeatable; owner-only).
    #[arg(long = "identity", requires = "ssh")]
    identities: Vec<PathBuf>,
    /// Trust an SSH host not in known_hosts and append its key.
    #[arg(long, requires = "ssh")]
    trust_on_first_use: bool,
    /// Run in an ephemeral, hardened container from this image.
    #[arg(long, conflicts_with = "docker_container")]
    docker_image: Option<String>,
    /// Run in this running container.
    #[arg(long)]
    docker_container: Option<String>,
    /// The Docker daemon's socket.
    #[arg(long, default_value = "unix:///var/run/docker.sock")]
    docker_endpoint: String,
    /// The remote helper for SSH and Docker sessions: `bundled` (default: the one this
    /// binary carries), `off`, or the path of a helper installed on the target.
    #[arg(long, default_value = "bundled")]
    helper: String,
    /// Refuse an SSH or Docker session that cannot get the whole sandbox on the target.
    #[arg(long)]
    require_sandbox: bool,
    /// The workspace on an SSH host or in an attached container (default: `~/execkit-work`
    /// over SSH, the container's working directory; ephemeral containers bind
    /// `--workspace` at `/work`).
    #[arg(long, value_name = "PATH")]
    remote_workspace: Option<String>,
}

impl TargetArgs {
    /// An SSH host or a container is named.
    fn is_remote(&self) -> bool {
        self.ssh.is_some() || self.docker_image.is_some() || self.docker_container.is_some()
    }

    /// The sandbox on the target these flags ask for, with the session's `profile`.
    fn remote_sandbox(&self, profile: Profile) -> execkit_runner::remote_sandbox::RemoteSandbox {
        use execkit_runner::remote_sandbox::{HelperSource, RemoteSandbox};
        let mut s = RemoteSandbox::default();
        s.helper = HelperSource::from(self.helper.clone());
        s.require = self.require_sandbox;
        s.workspace = self.remote_workspace.clone();
        s.profile = profile;
        s
    }
}

/// `execkit session`.
#[derive(clap::Args, Debug)]
pub struct SessionCmd {
    #[command(flatten)]
    args: SessionArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Commands are separated by NUL bytes instead of newlines (so they may span lines).
    #[arg(short = '0', long = "null")]
    null: bool,
    /// Each input line is a JSON operation (`{"op":"exec",…}`, `{"op":"process_start",…}`,
    /// `process_read`, `process_write`, `process_signal`, `process_wait`, `process_list`,
    /// `checkpoint`, `restore`, `checkpoints`, `diff`) instead of a command line.
    #[arg(long)]
    ops: bool,
    /// Human-readable results instead of JSON: each command's output on its own streams,
    /// execkit's status, limits and refusals on standard error.
    #[arg(long, conflicts_with = "ops")]
    human: bool,
}

/// `execkit exec`.
#[derive(clap::Args, Debug)]
pub struct ExecCmd {
    #[command(flatten)]
    args: SessionArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Human-readable result instead of JSON: the command's output on its own streams,
    /// execkit's status, limits and refusals on standard error.
    #[arg(long)]
    human: bool,
    /// The command (after `--`).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// `execkit doctor`.
#[derive(clap::Args, Debug)]
pub struct DoctorCmd {
    #[command(flatten)]
    args: SessionArgs,
    /// Probe an SSH host or a container instead of this machine: what its kernel enforces
    /// under the remote helper.
    #[command(flatten)]
    target: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn config(a: &SessionArgs) -> anyhow::Result<SessionBuilder> {
    let (engine, _) = engine_for(a.policies.as_deref())?;
    let workspace = match &a.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir().context("current directory")?,
    };
    let mut limits = Limits::default();
    limits.default_timeout = std::time::Duration::from_millis(a.timeout_ms);
    limits.max_timeout = limits.default_timeout;
    let mut b = Session::builder()
        .workspace(workspace)
        .engine(Arc::new(engine))
        .sandbox(SandboxConfig {
            profile: a.profile,
            allow_best_effort: a.allow_best_effort,
            ..SandboxConfig::default()
        })
        .limits(limits);
    if let Some(u) = &a.run_as {
        b = b.run_as(RunAs::lookup(u)?);
    }
    if let Some(path) = &a.audit {
        let log = execkit_runner::audit::AuditLog::open(path, Default::default())
            .with_context(|| format!("audit log {}", path.display()))?;
        b = b.audit(Arc::new(std::sync::Mutex::new(log)));
        b = b.transcripts(execkit_runner::Transcripts {
            max_bytes: a.transcript_bytes,
            in_audit: true,
        });
    }
    Ok(b)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Opens the session where `t` says: `session_open` is decided first, then the local
/// sandbox, an SSH host or a container.
async fn open(config: SessionBuilder, t: &TargetArgs, profile: Profile) -> anyhow::Result<Session> {
    use execkit_runner::{docker, ssh, OpenTarget};
    let (target, how) = if let Some(spec) = &t.ssh {
        let (user, hostport) = spec
            .split_once('@')
            .with_context(|| format!("--ssh `{spec}`: expected USER@HOST[:PORT]"))?;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().with_context(|| format!("--ssh: port `{p}`"))?),
            None => (hostport, 22),
        };
        (OpenTarget::ssh(host, Some(port), Some(user)), 1)
    } else if let Some(i) = &t.docker_image {
        (OpenTarget::docker_image(i), 2)
    } else if let Some(c) = &t.docker_container {
        (OpenTarget::docker_container(c), 2)
    } else {
        (OpenTarget::local(), 0)
    };
    let config = config.build()?;
    let mut env = execkit_runner::DecisionEnv::local(
        &config.workspace().display().to_string(),
        &std::env::var("HOME").unwrap_or_else(|_| "/".into()),
    );
    env.identity = config.identity().clone();
    let d = config.engine().decide_open(&target, &env);
    if d.verdict != execkit_runner::Verdict::Allow {
        let why = d
            .facts
            .first()
            .map(|f| f.reason.clone())
            .or(d.parse_error.clone())
            .unwrap_or_default();
        anyhow::bail!(
            "the policies do not allow a session on `{}`: {why}",
            target.id()
        );
    }
    Ok(match how {
        1 => {
            let known_hosts = t.known_hosts.clone().context("--ssh needs --known-hosts")?;
            let mut s = ssh::SshSettings::new(known_hosts);
            s.identity_files = t.identities.clone();
            s.sandbox = t.remote_sandbox(profile);
            if t.trust_on_first_use {
                s.unknown_hosts = ssh::UnknownHosts::TrustOnFirstUse;
            }
            let st = ssh::SshTarget {
                host: target.host.clone().unwrap_or_default(),
                port: target.port.unwrap_or(22),
                user: target.user.clone().unwrap_or_default(),
            };
            Session::ssh(&st, &s, config).await?
        }
        2 => {
            let mut s = docker::DockerSettings::new(&t.docker_endpoint);
            // The workspace (`--workspace`, else the current directory) is bound at /work
            // in an ephemeral container.
            s.workspace = Some(config.workspace().to_path_buf());
            s.sandbox = t.remote_sandbox(profile);
            let dt = match (&t.docker_image, &t.docker_container) {
                (Some(i), _) => docker::DockerTarget::Image(i.clone()),
                (None, Some(c)) => docker::DockerTarget::Container(c.clone()),
                (None, None) => anyhow::bail!("no Docker target"),
            };
            Session::docker(&dt, &s, config).await?
        }
        _ => Session::local(config).await?,
    })
}

/// One command's JSON line and the exit code `exec` would use.
/// Runs `command` and shows its result for a human (see [`crate::human`]); the exit code
/// is [`one`]'s.
async fn one_human(session: &Session, command: &str) -> u8 {
    match session.exec(command, &Default::default()).await {
        Ok(r) => {
            crate::out!("{}", r.stdout);
            eprint!("{}{}", r.stderr, crate::human::summary(&r));
            0
        }
        Err(ExecError::Denied(d)) => {
            eprint!("{}", crate::human::decision(&d.decision));
            if d.verdict == execkit_engine::Verdict::Ask {
                3
            } else {
                2
            }
        }
        Err(e) => {
            eprintln!("execkit: {e}");
            1
        }
    }
}

pub(crate) async fn one(session: &Session, command: &str) -> (serde_json::Value, u8) {
    match session.exec(command, &Default::default()).await {
        Ok(r) => (
            serde_json::to_value(&r).unwrap_or_else(|e| json!({"error": e.to_string()})),
            0,
        ),
        Err(ExecError::Denied(d)) => {
            let code = if d.verdict == execkit_engine::Verdict::Ask {
                3
            } else {
                2
            };
            (
                json!({"denied": true, "verdict": d.verdict, "reason": d.reason, "decision": d.decision}),
                code,
            )
        }
        Err(e) => (json!({"error": e.to_string()}), 1),
    }
}

/// `execkit session`: reads commands from stdin, writes one JSON result per line.
pub fn session(cmd: SessionCmd) -> ExitCode {
    let go = || -> anyhow::Result<()> {
        let config = config(&cmd.args)?;
        let rt = runtime()?;
        rt.block_on(async {
            let session = open(config, &cmd.target, cmd.args.profile).await?;
            let max_timeout = std::time::Duration::from_millis(cmd.args.timeout_ms);
            // Read asynchronously, so background processes keep being pumped while the
            // next line is awaited.
            let mut input = tokio::io::BufReader::new(tokio::io::stdin());
            let sep = if cmd.null { 0u8 } else { b'\n' };
            let mut buf = Vec::new();
            let mut out = std::io::stdout().lock();
            loop {
                buf.clear();
                let n = tokio::io::AsyncBufReadExt::read_until(&mut input, sep, &mut buf)
                    .await
                    .context("stdin")?;
                if n == 0 {
                    break;
                }
                if buf.last() == Some(&sep) {
                    buf.pop();
                }
                let command = String::from_utf8_lossy(&buf).into_owned();
                if command.trim().is_empty() {
                    continue;
                }
                if cmd.human {
                    one_human(&session, &command).await;
                    continue;
                }
                let line = if cmd.ops {
                    crate::session_ops::run(&session, &command, max_timeout).await
                } else {
                    one(&session, &command).await.0
                };
                writeln!(out, "{line}").context("stdout")?;
                out.flush().context("stdout")?;
            }
            session.close().await;
            Ok(())
        })
    };
    match go() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("execkit session: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `execkit exec -- CMD`: exit 0 when it ran (its status is in the JSON), 2 denied, 3
/// needs approval, 1 error.
pub fn exec(cmd: ExecCmd) -> ExitCode {
    let go = || -> anyhow::Result<u8> {
        let config = config(&cmd.args)?;
        let rt = runtime()?;
        rt.block_on(async {
            let session = open(config, &cmd.target, cmd.args.profile).await?;
            let command = cmd.command.join(" ");
            let code = if cmd.human {
                one_human(&session, &command).await
            } else {
                let (line, code) = one(&session, &command).await;
                // A closed stdout (`| head`) is not worth a panic.
                let _ = writeln!(std::io::stdout(), "{line}");
                code
            };
            session.close().await;
            Ok(code)
        })
    };
    match go() {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            eprintln!("execkit exec: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `execkit doctor`: what this machine can enforce, proven by starting a session and
/// probing it (the same doctor as `execkit-mcp doctor`, without the operator checks).
/// Exit 0 when every check passes, 1 otherwise.
pub fn doctor(cmd: DoctorCmd) -> ExitCode {
    let go = || -> anyhow::Result<crate::doctor::Report> {
        let profile = cmd.args.profile;
        let strict = profile != Profile::Off && !cmd.args.allow_best_effort;
        let mut report = crate::doctor::Report::kernel(strict);
        let builder = config(&cmd.args)?;
        if cmd.target.is_remote() {
            let engine = Arc::new(crate::doctor::permit_all()?);
            let rt = runtime()?;
            rt.block_on(async {
                let opened = open(builder.engine(engine), &cmd.target, profile).await;
                report.probe_remote(opened, profile, strict).await;
            });
        } else {
            runtime()?.block_on(report.probe_session(builder, profile, strict));
        }
        Ok(report)
    };
    match go() {
        Ok(report) => {
            if cmd.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(j) => crate::outln!("{j}"),
                    Err(e) => {
                        eprintln!("execkit doctor: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                crate::out!("{}", report.render());
            }
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("execkit doctor: {e:#}");
            ExitCode::from(1)
        }
    }
}
