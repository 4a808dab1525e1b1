//! The helper binary this server carries (built static by `build.rs`), and its SHA-256,
//! which names it in remote caches and verifies it before every use.

use sha2::Digest;
use std::sync::OnceLock;

static BINARY: &[u8] = include_bytes!(env!("EXECKIT_HELPER_PATH"));

/// The bytes, or `None` in a build made without the helper (`EXECKIT_HELPER_BINARY=none`).
pub(crate) fn bytes() -> Option<&'static [u8]> {
    (!BINARY.is_empty()).then_some(BINARY)
}

/// Its SHA-256, lower-case hex.
pub(crate) fn sha256() -> &'static str {
    static SUM: OnceLock<String> = OnceLock::new();
    SUM.get_or_init(|| hex::encode(sha2::Sha256::digest(BINARY)))
}

/// The machine names (`uname -m`) the carried helper runs on.
pub(crate) fn runs_on(machine: &str) -> bool {
    match std::env::consts::ARCH {
        "x86_64" => machine == "x86_64",
        "aarch64" => matches!(machine, "aarch64" | "arm64"),
        other => machine == other,
    }
}

/// A copy on this machine (for bind mounts into ephemeral containers): in the user's
/// cache, named by the hash, owner-only, written once (to a temporary name, then renamed)
/// and checked against the hash whenever it is used.
pub(crate) fn local_copy() -> Result<std::path::PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let bytes = bytes().ok_or("this build carries no helper")?;
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("execkit");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)
        .map_err(|e| format!("{}: {e}", base.display()))?;
    let path = base.join(format!("helper-{}", sha256()));
    if let Ok(existing) = std::fs::read(&path) {
        if hex::encode(sha2::Sha256::digest(&existing)) == sha256() {
            return Ok(path);
        }
    }
    let tmp = base.join(format!(
        ".helper-{}",
        crate::frame::random_hex(6).map_err(|e| e.to_string())?
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o500)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(bytes).map_err(|e| e.to_string())?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
