//! Getting the helper onto a target and the line that starts it there.
//!
//! - **SSH, bundled**: the remote machine is checked first (`uname -m` must be one the
//!   carried helper runs on: a target it cannot run on is reported, not guessed). The
//!   helper lives in the account's cache as `…/execkit/helper-<sha256>`; it is uploaded
//!   when missing (to a temporary name in the owner-only cache directory, checked, then
//!   renamed: never overwritten in place). Every start checks that the file and its
//!   directory are the account's own and writable by nobody else, and that its SHA-256 is
//!   the one this server carries, in the same command that then executes it.
//! - **SSH, installed**: the operator's path must be executable, writable by nobody but
//!   its owner, and speak this server's protocol (`--version`).
//! - **Docker**: an ephemeral container has the helper bind-mounted read-only at
//!   [`CONTAINER_HELPER`](crate::docker::CONTAINER_HELPER); an attached one gets a copy through the Docker API in `/tmp`
//!   (or `/dev/shm`), removed once the helper runs.

use crate::docker::CONTAINER_HELPER;
use crate::frame::single_quote;
use crate::helper_binary;
use crate::remote::Control;
use crate::remote_sandbox::HelperSource;

/// How to start the helper on a target.
pub(crate) enum Launch {
    /// A command line for an SSH exec channel.
    Ssh(String),
    /// The argv of a `docker exec`, and a file to remove once the helper runs.
    Docker(Vec<String>, Option<String>),
}

/// Puts the helper in place (if needed) and returns how to start it with `nonce`; or why
/// there is no helper on this target.
pub(crate) async fn prepare(
    control: &Control,
    source: &HelperSource,
    nonce: &str,
) -> Result<Launch, String> {
    match (control, source) {
        (_, HelperSource::Off) => Err("the operator turned the helper off".into()),
        (Control::Ssh(_), HelperSource::Bundled) => ssh_bundled(control, nonce).await,
        (Control::Docker(d), HelperSource::Bundled) => {
            if d.helper_mounted() {
                return Ok(Launch::Docker(
                    vec![CONTAINER_HELPER.into(), "shell".into(), nonce.into()],
                    None,
                ));
            }
            docker_copy(control, d, nonce).await
        }
        (_, HelperSource::Installed(path)) => installed(control, path, nonce).await,
    }
}

fn machine_check(machine: &str) -> Result<(), String> {
    if helper_binary::runs_on(machine) {
        Ok(())
    } else {
        Err(format!(
            "the target is `{machine}`; this server carries a helper for {} only",
            std::env::consts::ARCH
        ))
    }
}

/// A shell function that fails unless `$1` is ours and writable by nobody else.
const OWNER_ONLY: &str = "owner_only() { [ -O \"$1\" ] || return 1; m=$(stat -c %a \"$1\") || return 1; case \"$m\" in *[2367][0-7]|*[0-7][2367]) return 1;; esac; }";

async fn ssh_bundled(control: &Control, nonce: &str) -> Result<Launch, String> {
    let Control::Ssh(conn) = control else {
        return Err("not an SSH target".into());
    };
    let bytes = helper_binary::bytes().ok_or("this server was built without the helper")?;
    let sha = helper_binary::sha256();
    // A cached copy counts only if it is the account's, writable by nobody else, and
    // hashes right; anything else is replaced by a fresh upload.
    let (_, out) = control
        .run(&format!(
            "uname -m; if command -v sha256sum >/dev/null 2>&1; then echo sha256sum; else echo none; fi; d=\"${{XDG_CACHE_HOME:-$HOME/.cache}}/execkit\"; echo \"$d\"; f=\"$d/helper-{sha}\"; {OWNER_ONLY}; if [ -f \"$f\" ] && owner_only \"$f\" && owner_only \"$d\" && h=$(sha256sum < \"$f\") && [ \"${{h%% *}}\" = {sha} ]; then echo present; else echo absent; fi"
        ))
        .await
        .ok_or("the target does not answer control commands")?;
    let mut lines = out.lines().map(str::trim);
    let machine = lines.next().unwrap_or_default().to_string();
    machine_check(&machine)?;
    if lines.next() != Some("sha256sum") {
        return Err("the target has no `sha256sum` to verify the helper with".into());
    }
    let dir = lines
        .next()
        .filter(|d| d.starts_with('/'))
        .ok_or("the target's cache directory is unknown (no $HOME?)")?
        .to_string();
    let qdir = single_quote(&dir);
    if lines.next() != Some("present") {
        let upload = format!(
            "umask 077; d={qdir}; mkdir -p \"$d\" && chmod 700 \"$d\" && t=$(mktemp \"$d/.upload-XXXXXXXX\") || exit 1; if cat > \"$t\" && chmod 500 \"$t\" && h=$(sha256sum < \"$t\") && [ \"${{h%% *}}\" = {sha} ]; then mv -f \"$t\" \"$d/helper-{sha}\"; else rm -f \"$t\"; exit 1; fi"
        );
        let r = conn
            .run_with_input(&upload, bytes)
            .await
            .map_err(|e| format!("uploading the helper: {e}"))?;
        if r.exit_status != Some(0) {
            return Err(format!(
                "uploading the helper to {dir} failed: {}",
                String::from_utf8_lossy(&r.stderr).trim()
            ));
        }
    }
    Ok(Launch::Ssh(format!(
        "d={qdir}; f=\"$d/helper-{sha}\"; {OWNER_ONLY}; if ! owner_only \"$f\" || ! owner_only \"$d\"; then echo \"execkit: the helper cache $d is not owner-only\" >&2; exit 97; fi; h=$(sha256sum < \"$f\") && [ \"${{h%% *}}\" = {sha} ] || {{ echo \"execkit: $f does not match the server's helper\" >&2; exit 98; }}; exec \"$f\" shell {nonce}"
    )))
}

async fn installed(control: &Control, path: &str, nonce: &str) -> Result<Launch, String> {
    let q = single_quote(path);
    let (_, out) = control
        .run(&format!(
            "p={q}; if [ ! -f \"$p\" ] || [ ! -x \"$p\" ]; then echo missing; exit 0; fi; m=$(stat -c '%a %u' \"$p\"); echo \"$m $(id -u)\"; \"$p\" --version 2>&1"
        ))
        .await
        .ok_or("the target does not answer control commands")?;
    let mut lines = out.lines().map(str::trim);
    let perms = lines.next().unwrap_or_default();
    if perms == "missing" {
        return Err(format!(
            "the installed helper {path} is missing or not executable"
        ));
    }
    let f: Vec<&str> = perms.split_whitespace().collect();
    let writable_by_others = f
        .first()
        .and_then(|m| u32::from_str_radix(m, 8).ok())
        .is_none_or(|m| m & 0o022 != 0);
    let owner_ok = matches!(f.as_slice(), [_, owner, me] if *owner == "0" || owner == me);
    if writable_by_others || !owner_ok {
        return Err(format!(
            "the installed helper {path} must be owned by root or the account and writable by nobody else ({perms})"
        ));
    }
    let version = lines.next().unwrap_or_default();
    let want = format!("protocol {}", execkit_helper::PROTOCOL);
    if !version.starts_with("execkit-helper ") || !version.contains(&want) {
        return Err(format!(
            "the installed helper {path} says `{version}`; this server needs {want}"
        ));
    }
    Ok(match control {
        Control::Ssh(_) => Launch::Ssh(format!("exec {q} shell {nonce}")),
        Control::Docker(_) => Launch::Docker(vec![path.into(), "shell".into(), nonce.into()], None),
    })
}

async fn docker_copy(
    control: &Control,
    conn: &crate::docker::DockerConnection,
    nonce: &str,
) -> Result<Launch, String> {
    let bytes = helper_binary::bytes().ok_or("this server was built without the helper")?;
    let (_, out) = control
        .run("uname -m")
        .await
        .ok_or("the container does not answer")?;
    machine_check(out.trim())?;
    let name = format!(
        ".execkit-helper-{}",
        crate::frame::random_hex(8).map_err(|e| e.to_string())?
    );
    let mut why = Vec::new();
    for dir in ["/tmp", "/dev/shm"] {
        match conn.upload_file(dir, &name, bytes).await {
            Ok(()) => {
                let path = format!("{dir}/{name}");
                return Ok(Launch::Docker(
                    vec![path.clone(), "shell".into(), nonce.into()],
                    Some(path),
                ));
            }
            Err(e) => why.push(format!("{dir}: {e}")),
        }
    }
    Err(format!(
        "cannot copy the helper into the container ({})",
        why.join("; ")
    ))
}
