//! `execkit-mcp doctor`: can this machine run the server as configured? The shared doctor
//! ([`crate::doctor`]) checks the kernel and probes a real session with the operator's
//! sandbox settings; this adds the operator's own checks: the policy set (loaded and
//! validated strictly) and the audit path (writable, without writing a record).

use crate::config::OperatorConfig;
use crate::doctor::{CheckKind, Report};
use crate::operator::Operator;
use anyhow::Context as _;
use execkit_runner::sandbox::Profile;
use std::path::Path;

/// Bytes free below which the log is reported full: a decision record is about 2 KiB, and
/// a command whose record cannot be written does not run.
const AUDIT_MIN_FREE: u64 = 1 << 20;

/// Bytes available to this user on the filesystem holding `dir`.
#[allow(unsafe_code)] // one statvfs query, see SAFETY below
fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is written by statvfs on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| dir.display().to_string());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

fn audit_writable(p: &Path) -> anyhow::Result<String> {
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir.exists() {
        let free = free_bytes(dir)?;
        if free < AUDIT_MIN_FREE {
            anyhow::bail!(
                "only {free} bytes free on the filesystem of {}: commands are refused when their decision cannot be recorded",
                dir.display()
            );
        }
    }
    if p.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(p)
            .with_context(|| p.display().to_string())?;
        let report = execkit_audit::verify_file(p, &execkit_audit::VerifyOptions::default())
            .with_context(|| p.display().to_string())?;
        if let Some(problem) = report.problem {
            anyhow::bail!("{}: {problem}", p.display());
        }
        Ok(format!(
            "{} is writable and verifies ({} records)",
            p.display(),
            report.records
        ))
    } else {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let probe = parent.join(format!(".execkit-doctor-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .with_context(|| format!("cannot create files in {}", parent.display()))?;
        let _ = std::fs::remove_file(&probe);
        Ok(format!("{} will be created", p.display()))
    }
}

/// The SSH settings as far as they can be checked without connecting: known_hosts parses,
/// every key file exists and is owner-only.
fn ssh_checks(ssh: &crate::config::SshConfig, report: &mut Report) {
    let kh = match std::fs::read_to_string(&ssh.known_hosts) {
        Ok(t) => execkit_runner::known_hosts::KnownHosts::parse(&t)
            .map(|_| format!("{} parses", ssh.known_hosts.display()))
            .map_err(|e| format!("{}: {e}", ssh.known_hosts.display())),
        Err(e) => Err(format!("{}: {e}", ssh.known_hosts.display())),
    };
    match kh {
        Ok(d) => report.push(CheckKind::SshKnownHosts, true, d),
        Err(d) => report.push(CheckKind::SshKnownHosts, false, d),
    }
    for f in &ssh.identity_files {
        match execkit_runner::ssh::check_key_file(f) {
            Ok(()) => report.push(
                CheckKind::SshKey,
                true,
                format!("{} is owner-only", f.display()),
            ),
            Err(e) => report.push(CheckKind::SshKey, false, e.to_string()),
        }
    }
    for f in [&ssh.passphrase_file, &ssh.password_file]
        .into_iter()
        .flatten()
    {
        match execkit_runner::ssh::check_secret_file(f) {
            Ok(()) => report.push(
                CheckKind::SshKey,
                true,
                format!("{} is owner-only", f.display()),
            ),
            Err(e) => report.push(CheckKind::SshKey, false, e.to_string()),
        }
    }
    let settings = crate::operator::ssh_settings(ssh);
    match (
        &settings.agent_socket,
        ssh.use_agent || ssh.agent_socket.is_some(),
    ) {
        (Some(sock), _) => match std::os::unix::net::UnixStream::connect(sock) {
            Ok(_) => report.push(
                CheckKind::SshAgent,
                true,
                format!("ssh-agent answers at {}", sock.display()),
            ),
            Err(e) => report.push(
                CheckKind::SshAgent,
                false,
                format!("ssh-agent at {}: {e}", sock.display()),
            ),
        },
        (None, true) => report.push(
            CheckKind::SshAgent,
            false,
            "use_agent is set but the server has no SSH_AUTH_SOCK",
        ),
        (None, false) => {}
    }
}

/// Runs every check.
pub async fn run(config: OperatorConfig) -> Report {
    let profile = config.sandbox.profile;
    let strict = profile != Profile::Off && !config.sandbox.allow_best_effort;
    let mut report = Report::kernel(strict);
    match &config.audit.path {
        Some(p) => match audit_writable(p) {
            Ok(detail) => report.push(CheckKind::Audit, true, detail),
            Err(e) => report.push(CheckKind::Audit, false, format!("{e:#}")),
        },
        None => report.push(
            CheckKind::Audit,
            true,
            "no audit path configured (set [audit] path or EXECKIT_AUDIT_PATH)",
        ),
    }
    if let Some(ssh) = &config.ssh {
        ssh_checks(ssh, &mut report);
    }
    if let Some(d) = &config.docker {
        let settings = execkit_runner::docker::DockerSettings::new(&d.endpoint);
        match execkit_runner::docker::ping(&settings).await {
            Ok(version) => report.push(
                CheckKind::Docker,
                true,
                format!("{} answers (Docker {version})", d.endpoint),
            ),
            Err(e) => report.push(CheckKind::Docker, false, e.to_string()),
        }
    }
    let mut probe_config = config.clone();
    probe_config.audit.path = None;
    match Operator::new(probe_config) {
        Err(e) => report.push(CheckKind::Policies, false, e.to_string()),
        Ok(op) => {
            report.push(
                CheckKind::Policies,
                true,
                format!("{} loaded and validated", op.policy_set),
            );
            let builder = op.session_config(op.default_workspace.clone());
            report.probe_session(builder, profile, strict).await;
        }
    }
    report
}
