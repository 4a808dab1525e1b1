//! From syscalls to effects: programs executed, paths written, connections opened.
//!
//! Only the process tree below the traced shell counts (the sandbox's own setup is not the
//! command). Relative paths are resolved against each process's own working directory,
//! followed through `chdir`/`fchdir` and inherited on `clone`/`fork`. A write is any
//! *attempt* (a read-only root turns writes outside the workspace into EROFS, which is
//! exactly what the oracle must still see).

use crate::strace::{fd_path, string, strings, Syscall};
use std::collections::HashMap;

/// One thing a command did.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    /// A program was executed (`execve` returned 0): the path as given and `argv[0]`.
    Exec {
        /// The path passed to execve.
        path: String,
        /// `argv[0]`.
        argv0: String,
    },
    /// A path was written, created, removed, renamed, linked or had its mode changed.
    Write {
        /// Absolute, lexically normalized.
        path: String,
        /// The syscall.
        how: String,
    },
    /// A network connection was attempted (IPv4/IPv6).
    Connect {
        /// The address as strace printed it.
        address: String,
    },
    /// A Unix socket was connected to.
    UnixConnect {
        /// The socket path.
        path: String,
    },
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Exec { path, argv0 } => write!(f, "exec {path} (argv0 {argv0})"),
            Effect::Write { path, how } => write!(f, "write {path} ({how})"),
            Effect::Connect { address } => write!(f, "connect {address}"),
            Effect::UnixConnect { path } => write!(f, "connect unix:{path}"),
        }
    }
}

/// An effect with the trace line it came from.
#[derive(Debug, Clone)]
pub struct Observed {
    /// What happened.
    pub effect: Effect,
    /// The syscall, as a line for humans.
    pub line: String,
}

/// The effects of the process tree rooted at the first successful `execve` of `root_exe`
/// (the shell the sandbox started), which starts in `cwd`.
pub fn effects(calls: &[Syscall], root_exe: &str, cwd: &str) -> Vec<Observed> {
    let mut tree: HashMap<u32, String> = HashMap::new();
    let mut out = Vec::new();
    let mut root_seen = false;
    for c in calls {
        if !root_seen {
            if c.name == "execve"
                && c.succeeded()
                && c.args.first().and_then(|a| string(a)).as_deref() == Some(root_exe)
            {
                root_seen = true;
                tree.insert(c.pid, cwd.to_string());
            }
            continue;
        }
        let Some(here) = tree.get(&c.pid).cloned() else {
            continue;
        };
        let line = format!("{} {}({}) = {}", c.pid, c.name, c.args.join(", "), c.ret);
        let mut push = |effect: Effect| {
            out.push(Observed {
                effect,
                line: line.clone(),
            })
        };
        let at = |dirfd: &str, p: &str| -> String {
            let base = fd_path(dirfd).unwrap_or_else(|| here.clone());
            join(&base, p)
        };
        let arg = |i: usize| c.args.get(i).map(String::as_str).unwrap_or("");
        match c.name.as_str() {
            "clone" | "clone3" | "fork" | "vfork" => {
                if let Some(child) = c.child_pid().filter(|_| c.succeeded()) {
                    tree.insert(child, here.clone());
                }
            }
            "chdir" if c.succeeded() => {
                if let Some(p) = string(arg(0)) {
                    tree.insert(c.pid, join(&here, &p));
                }
            }
            "fchdir" if c.succeeded() => {
                if let Some(p) = fd_path(arg(0)) {
                    tree.insert(c.pid, p);
                }
            }
            "execve" | "execveat" if c.succeeded() => {
                let (p, argv) = if c.name == "execve" {
                    (string(arg(0)).map(|p| join(&here, &p)), strings(arg(1)))
                } else {
                    (string(arg(1)).map(|p| at(arg(0), &p)), strings(arg(2)))
                };
                if let Some(path) = p {
                    push(Effect::Exec {
                        path,
                        argv0: argv.first().cloned().unwrap_or_default(),
                    });
                }
            }
            "open" | "openat" => {
                let (p, flags) = if c.name == "open" {
                    (string(arg(0)).map(|p| join(&here, &p)), arg(1))
                } else {
                    (string(arg(1)).map(|p| at(arg(0), &p)), arg(2))
                };
                let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"];
                if let Some(path) = p.filter(|_| writes.iter().any(|w| flags.contains(w))) {
                    push(Effect::Write {
                        path,
                        how: c.name.clone(),
                    });
                }
            }
            "creat" | "truncate" | "unlink" | "rmdir" | "mkdir" | "chmod" | "chown" | "lchown" => {
                if let Some(p) = string(arg(0)) {
                    push(Effect::Write {
                        path: join(&here, &p),
                        how: c.name.clone(),
                    });
                }
            }
            "unlinkat" | "mkdirat" | "fchmodat" | "fchownat" | "utimensat" | "mknodat" => {
                // `utimensat(fd, NULL, ...)` touches an open file: no path to name.
                if let Some(p) = string(arg(1)) {
                    push(Effect::Write {
                        path: at(arg(0), &p),
                        how: c.name.clone(),
                    });
                }
            }
            "rename" | "link" => {
                for i in [0, 1] {
                    if let Some(p) = string(arg(i)) {
                        push(Effect::Write {
                            path: join(&here, &p),
                            how: c.name.clone(),
                        });
                    }
                }
            }
            "renameat" | "renameat2" | "linkat" => {
                for (d, i) in [(0, 1), (2, 3)] {
                    if let Some(p) = string(arg(i)) {
                        push(Effect::Write {
                            path: at(arg(d), &p),
                            how: c.name.clone(),
                        });
                    }
                }
            }
            "symlink" => {
                if let Some(p) = string(arg(1)) {
                    push(Effect::Write {
                        path: join(&here, &p),
                        how: c.name.clone(),
                    });
                }
            }
            "symlinkat" => {
                if let Some(p) = string(arg(2)) {
                    push(Effect::Write {
                        path: at(arg(1), &p),
                        how: c.name.clone(),
                    });
                }
            }
            "connect" => {
                let a = arg(1);
                if a.contains("AF_UNIX") {
                    if let Some(p) = string(a).filter(|p| !p.is_empty()) {
                        push(Effect::UnixConnect {
                            path: join(&here, &p),
                        });
                    }
                } else if a.contains("AF_INET") {
                    push(Effect::Connect {
                        address: a.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// `base` joined with `p`, normalized lexically (`.`, `..`, repeated slashes).
pub fn join(base: &str, p: &str) -> String {
    let full = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{base}/{p}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in full.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strace::parse;

    #[test]
    fn follows_the_tree_and_the_cwd() {
        let t = r#"1 execve("/usr/bin/bwrap", ["bwrap"], 0x1 /* 1 vars */) = 0
1 openat(AT_FDCWD, "/newroot/x", O_WRONLY|O_CREAT, 0666) = 3
2 execve("/bin/bash", ["/bin/bash", "-c", "cd sub && touch x"], 0x1 /* 1 vars */) = 0
2 chdir("/work/sub") = 0
2 clone(child_stack=NULL, flags=SIGCHLD) = 3 /* 9 in strace's PID NS */
9 execve("/usr/bin/touch", ["touch", "x"], 0x1 /* 1 vars */) = 0
9 openat(AT_FDCWD, "x", O_WRONLY|O_CREAT|O_NOCTTY|O_NONBLOCK, 0666) = 3</work/sub/x>
9 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
9 renameat2(AT_FDCWD, "a", 4</tmp>, "../b", RENAME_NOREPLACE) = 0
9 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.1")}, 16) = -1 ENETUNREACH (Network is unreachable)
9 connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
"#;
        let (calls, bad) = parse(t);
        assert!(bad.is_empty(), "{bad:?}");
        let got: Vec<Effect> = effects(&calls, "/bin/bash", "/work")
            .into_iter()
            .map(|o| o.effect)
            .collect();
        let w = |p: &str, how: &str| Effect::Write {
            path: p.into(),
            how: how.into(),
        };
        assert_eq!(
            got,
            [
                Effect::Exec {
                    path: "/usr/bin/touch".into(),
                    argv0: "touch".into()
                },
                w("/work/sub/x", "openat"),
                w("/work/sub/a", "renameat2"),
                w("/b", "renameat2"),
                Effect::Connect {
                    address:
                        "{sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr(\"10.0.0.1\")}"
                            .into()
                },
                Effect::UnixConnect {
                    path: "/var/run/nscd/socket".into()
                },
            ]
        );
    }
}
