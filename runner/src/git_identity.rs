//! The session's own global git config. git reads `~/.gitconfig` at every start and stops
//! ("fatal: unknown error occurred while reading the configuration files") when the file
//! exists but the closed home makes it unreadable. A session whose home is closed gets a
//! global config in its private tmp dir instead (`GIT_CONFIG_GLOBAL`), holding only the
//! identity of the account's own config (`user.name`, `user.email`), read here outside the
//! sandbox: what git needs to commit, and none of the credentials a config can hold
//! (`http.extraHeader`, `url.<token>@….insteadOf`, credential helpers).

use std::path::{Path, PathBuf};

/// The identity keys copied.
const KEYS: &[&str] = &["user.name", "user.email"];

/// The account's global configs, in git's order (the later wins).
fn sources(home: &Path) -> [PathBuf; 2] {
    [home.join(".config/git/config"), home.join(".gitconfig")]
}

/// The session's global config path in `tmp`.
pub(crate) fn path(tmp: &Path) -> PathBuf {
    tmp.join(".gitconfig")
}

/// Writes the session's global config (identity only) into `tmp`, owned by `owner`.
pub(crate) fn write(home: &Path, tmp: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let target = path(tmp);
    std::fs::write(&target, "")?;
    let mut out = git2::Config::open(&target).map_err(std::io::Error::other)?;
    for src in sources(home).iter().filter(|p| p.is_file()) {
        let Ok(cfg) = git2::Config::open(src) else {
            continue;
        };
        for key in KEYS {
            if let Ok(v) = cfg.get_string(key) {
                out.set_str(key, &v).map_err(std::io::Error::other)?;
            }
        }
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&target, Some(uid), Some(gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_identity_is_copied() {
        let dir = std::env::temp_dir().join(format!("ek-gitid-{}", std::process::id()));
        let (home, tmp) = (dir.join("home"), dir.join("tmp"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Ada\n\temail = ada@example.com\n[http]\n\textraHeader = AUTHORIZATION: bearer s3cr3t\n[credential]\n\thelper = store\n",
        )
        .unwrap();
        write(&home, &tmp, None).unwrap();
        let text = std::fs::read_to_string(path(&tmp)).unwrap();
        assert!(
            text.contains("Ada") && text.contains("ada@example.com"),
            "{text}"
        );
        assert!(
            !text.contains("s3cr3t") && !text.contains("store"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
