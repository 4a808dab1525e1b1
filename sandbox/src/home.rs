//! The closed home: the session's home directory (the run-as account's passwd home, or
//! the remote account's) is unreadable to the shell except for the directories listed
//! here, where toolchains and package caches live, and except for the workspace and
//! other writable roots inside it.
//!
//! Credentials live in more places than any deny list names (`~/.cache/huggingface/token`,
//! `~/.aws/cli/cache/*.json`, `~/.config/*/…`), so the kernel closes the whole home and
//! opens what builds need to read. The list is data: each entry says what it holds and why
//! it carries no credentials; the operator replaces it (`[sandbox] home_open`). Parents of
//! credential files are never listed whole (`~/.cargo` holds `credentials.toml`: only its
//! `bin`, `registry` and `git` are open; `~/.m2` holds `settings.xml`: only `repository`).
//!
//! Trade-off: Landlock rules only add access, so the closure is made by carving (every
//! other child of each ancestor is granted instead) at session start. A file created later
//! directly in a carved ancestor of the home (`/home/newfile`) is unreadable to the
//! session too; nothing is ever readable that should not be.

use std::path::{Path, PathBuf};

/// A directory (or file) in the home that stays readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenDir {
    /// Relative to the home.
    pub path: &'static str,
    /// What it holds.
    pub holds: &'static str,
}

/// The shipped list of home paths left readable.
pub const HOME_OPEN: &[OpenDir] = &[
    OpenDir {
        path: ".rustup",
        holds: "Rust toolchains (rustup)",
    },
    OpenDir {
        path: ".cargo/bin",
        holds: "cargo-installed programs",
    },
    OpenDir {
        path: ".cargo/registry",
        holds: "crates.io sources and index cache",
    },
    OpenDir {
        path: ".cargo/git",
        holds: "git dependencies' checkouts",
    },
    OpenDir {
        path: ".npm/_cacache",
        holds: "npm's content cache",
    },
    OpenDir {
        path: ".cache/pip",
        holds: "pip's wheel and HTTP cache",
    },
    OpenDir {
        path: ".cache/go-build",
        holds: "Go's build cache",
    },
    OpenDir {
        path: "go/pkg",
        holds: "Go module cache",
    },
    OpenDir {
        path: ".m2/repository",
        holds: "Maven's local repository (not settings.xml)",
    },
    OpenDir {
        path: ".gradle/caches",
        holds: "Gradle's dependency cache (not gradle.properties)",
    },
    OpenDir {
        path: ".gradle/wrapper",
        holds: "Gradle wrapper distributions",
    },
    OpenDir {
        path: ".local/bin",
        holds: "user-installed programs (pip --user, pipx)",
    },
    OpenDir {
        path: ".local/lib",
        holds: "user-installed Python packages",
    },
    OpenDir {
        path: ".nvm/versions",
        holds: "Node versions (nvm)",
    },
    OpenDir {
        path: ".pyenv/versions",
        holds: "Python versions (pyenv)",
    },
    OpenDir {
        path: ".rbenv/versions",
        holds: "Ruby versions (rbenv)",
    },
    OpenDir {
        path: ".sdkman/candidates",
        holds: "JDKs and build tools (SDKMAN!)",
    },
    OpenDir {
        path: ".deno/bin",
        holds: "Deno",
    },
    OpenDir {
        path: ".bun/bin",
        holds: "Bun",
    },
];

/// The home paths the shipped list opens, relative to the home.
pub fn shipped_open() -> Vec<String> {
    HOME_OPEN.iter().map(|d| d.path.to_string()).collect()
}

/// The operator's setting for the home: closed (the default) with the shipped list open,
/// or another list, or left open.
///
/// ```
/// use execkit_sandbox::home::HomeAccess;
/// let h: HomeAccess = serde_json::from_str(r#"{"open": [".rustup", ".cache/bazel"]}"#).unwrap();
/// assert!(h.close);
/// assert_eq!(h.open, [".rustup", ".cache/bazel"]);
/// assert!(HomeAccess::default().open.contains(&".cargo/registry".to_string()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomeAccess {
    /// Close the home (everything in it unreadable but `open`, the workspace and the
    /// other writable roots).
    pub close: bool,
    /// Paths relative to the home that stay readable (default: [`HOME_OPEN`]).
    pub open: Vec<String>,
}

impl Default for HomeAccess {
    fn default() -> Self {
        HomeAccess {
            close: true,
            open: shipped_open(),
        }
    }
}

impl HomeAccess {
    /// The home left as it is (readable where the rest of the filesystem is).
    pub fn open_home() -> HomeAccess {
        HomeAccess {
            close: false,
            open: Vec::new(),
        }
    }

    /// The closure of `home` this setting asks for, if any.
    pub fn closing<'a>(&'a self, home: &'a Path) -> Option<ClosedHome<'a>> {
        self.close.then_some(ClosedHome {
            home,
            open: &self.open,
        })
    }
}

/// A home to close, and what stays open inside it.
#[derive(Debug, Clone, Copy)]
pub struct ClosedHome<'a> {
    /// The home directory (absolute).
    pub home: &'a Path,
    /// Paths relative to the home (`.rustup`) or absolute beneath it, left readable.
    pub open: &'a [String],
}

/// Why a home is not closed (for the report), or the paths to carve and to open again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Close `home`; `open` (existing paths beneath it) stay readable.
    Close {
        /// The home.
        home: PathBuf,
        /// Existing paths beneath it that stay readable.
        open: Vec<PathBuf>,
    },
    /// Left as it is, with the reason.
    Skip(String),
}

/// What to do with `closed`, given the paths the shell writes (the workspace among them).
pub fn plan(closed: &ClosedHome<'_>, writable: &[PathBuf]) -> Plan {
    let home = closed.home;
    if !home.is_absolute() || home == Path::new("/") {
        return Plan::Skip(format!(
            "the home {} is not closed: it is not a directory below /",
            home.display()
        ));
    }
    let Ok(home) = home.canonicalize() else {
        return Plan::Skip(format!(
            "the home {} does not exist: nothing to close",
            home.display()
        ));
    };
    if let Some(w) = writable.iter().find(|w| home.starts_with(w)) {
        return Plan::Skip(format!(
            "the home {} is inside the writable {}: it stays readable",
            home.display(),
            w.display()
        ));
    }
    Plan::Close {
        open: open_paths(&home, closed.open),
        home,
    }
}

/// The listed paths that exist beneath `home` as written: a path with a symlink anywhere
/// in it opens nothing (`~/.bun/bin -> ~/.ssh` would open the keys).
fn open_paths(home: &Path, open: &[String]) -> Vec<PathBuf> {
    open.iter()
        .map(|p| home.join(p.trim_start_matches("~/")))
        .filter(|p| p.canonicalize().is_ok_and(|real| real == *p))
        .filter(|p| {
            p.starts_with(home)
                && p != home
                && !p.components().any(|c| c == std::path::Component::ParentDir)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ek-home-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.canonicalize().unwrap()
    }

    #[test]
    fn no_listed_path_is_a_credential_parent() {
        for d in HOME_OPEN {
            for secret in [
                ".ssh", ".aws", ".gnupg", ".config", ".kube", ".docker", ".cache",
            ] {
                assert_ne!(d.path, secret, "{} opens a credential directory", d.path);
            }
            assert!(![".cargo", ".m2", ".gradle", ".npm", ".local"].contains(&d.path));
            assert!(
                !d.path.starts_with('/') && !d.path.contains(".."),
                "{}",
                d.path
            );
        }
    }

    #[test]
    fn existing_open_paths_are_kept_and_links_out_are_not() {
        let home = scratch("open");
        std::fs::create_dir_all(home.join(".rustup")).unwrap();
        std::os::unix::fs::symlink("/etc", home.join(".cargo-bin-link")).unwrap();
        // An open path that is a link into a closed directory opens nothing.
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(home.join(".bun")).unwrap();
        std::os::unix::fs::symlink(home.join(".ssh"), home.join(".bun/bin")).unwrap();
        let open = vec![
            ".rustup".to_string(),
            ".cargo-bin-link".into(),
            ".missing".into(),
            ".bun/bin".into(),
            ".rustup/../.ssh".into(),
        ];
        let got = plan(
            &ClosedHome {
                home: &home,
                open: &open,
            },
            &[],
        );
        assert_eq!(
            got,
            Plan::Close {
                home: home.clone(),
                open: vec![home.join(".rustup")]
            }
        );
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn a_home_inside_the_workspace_stays_open() {
        let ws = scratch("ws");
        let home = ws.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let got = plan(
            &ClosedHome {
                home: &home,
                open: &[],
            },
            std::slice::from_ref(&ws),
        );
        assert!(matches!(got, Plan::Skip(ref why) if why.contains("inside the writable")));
        std::fs::remove_dir_all(&ws).unwrap();
    }

    #[test]
    fn a_missing_or_root_home_is_not_closed() {
        let missing = Path::new("/nonexistent-execkit-home");
        assert!(matches!(
            plan(
                &ClosedHome {
                    home: missing,
                    open: &[]
                },
                &[]
            ),
            Plan::Skip(_)
        ));
        assert!(matches!(
            plan(
                &ClosedHome {
                    home: Path::new("/"),
                    open: &[]
                },
                &[]
            ),
            Plan::Skip(_)
        ));
    }
}
