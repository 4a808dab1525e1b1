//! Starts through a descriptor are decided starts with their own record: a program written
//! into a `memfd` and run with `fexecve` (`execveat(fd, "", AT_EMPTY_PATH)`) or through
//! `/proc/self/fd/N` names no file and is refused as `(fileless)` by
//! `deny-fileless-programs`, locally and over SSH; a real program run through a
//! descriptor is decided as its path and runs.

use crate::common::*;
use crate::runtime_decisions::{session_in, Place};
use execkit_runner::{Session, Verdict};

const PROBE: &str = r#"import os
def run(how, exe):
    pid = os.fork()
    if pid == 0:
        try:
            exe()
        except OSError as e:
            os._exit(e.errno)
    _, st = os.waitpid(pid, 0)
    print(how, os.waitstatus_to_exitcode(st))
mem = os.memfd_create("payload")
os.write(mem, open("/bin/true", "rb").read())
run("fexecve-memfd", lambda: os.execve(mem, ["a"], {}))
run("proc-fd-memfd", lambda: os.execv(f"/proc/self/fd/{mem}", ["b"]))
real = os.open("/bin/true", os.O_RDONLY)
run("fexecve-real", lambda: os.execve(real, ["true"], {}))
"#;

/// Runs the probe (written into `ws`, the session's workspace here) in `s`.
async fn descriptors_are_decided(name: &str, s: &Session, ws: &std::path::Path) {
    std::fs::write(ws.join("fd_starts.py"), PROBE).unwrap();
    let r = ok(s, "python3 fd_starts.py").await;
    // EACCES (13) for both memfd starts; the real program runs (0).
    for line in ["fexecve-memfd 13", "proc-fd-memfd 13", "fexecve-real 0"] {
        assert!(r.stdout.contains(line), "{name}: {line}: {r:?}");
    }
    let memfd: Vec<_> = r
        .runtime_denials
        .iter()
        .filter(|d| d.program == "(fileless)")
        .collect();
    assert_eq!(memfd.len(), 2, "{name}: {:?}", r.runtime_denials);
    for d in memfd {
        assert_eq!(d.verdict, Verdict::Deny, "{name}: {d:?}");
        assert_eq!(d.policies, ["deny-fileless-programs"], "{name}: {d:?}");
    }
    assert_eq!(
        r.runtime_denials.len(),
        2,
        "{name}: {:?}",
        r.runtime_denials
    );
}

#[tokio::test]
async fn starts_through_a_descriptor_are_decided_locally() {
    let p = Place::new("fd-starts");
    let s = session_in(&p).await;
    descriptors_are_decided("local", &s, &p.ws()).await;
    s.close().await;
}

#[tokio::test]
async fn starts_through_a_descriptor_are_decided_over_ssh() {
    let Some((s, ws)) = crate::remote_runtime::ssh_session().await else {
        return;
    };
    descriptors_are_decided("ssh", &s, &ws).await;
    s.close().await;
    let _ = std::fs::remove_dir_all(ws);
}
