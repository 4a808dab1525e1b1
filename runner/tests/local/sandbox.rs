//! The sandbox, for real on this kernel. Every test here runs under a policy set that
//! permits everything, so what is refused is refused by the kernel.

use crate::common::*;
use execkit_runner::sandbox::{kernel_landlock_abi, Level, Profile, SandboxConfig};
use execkit_runner::RunAs;
use std::io::{Read, Write};

#[tokio::test]
async fn enforcement_is_reported() {
    let ws = Workspace::new("report");
    let s = session(&ws, Profile::Workspace).await;
    let e = s.info().await.enforcement;
    assert_eq!(e.landlock_abi, kernel_landlock_abi());
    assert!(
        e.landlock_abi >= 6,
        "this suite expects a kernel with Landlock ABI >= 6"
    );
    assert_eq!(e.level, Level::Full);
    assert!(e.filesystem && e.scopes && e.seccomp && e.no_new_privs);
    // As root the session has a network of its own (no TCP rules needed: nothing routes
    // out); without namespaces Landlock refuses TCP.
    assert!(e.private_network || e.landlock_network, "{e:?}");
    s.close().await;
    let s = session(&ws, Profile::Off).await;
    assert_eq!(s.info().await.enforcement.level, Level::None);
    s.close().await;
}

#[tokio::test]
async fn filesystem_writes_stay_in_the_workspace() {
    let ws = Workspace::new("fs");
    let s = session(&ws, Profile::Workspace).await;
    // The policies permit everything: the decision predicts the kernel's refusal, with
    // advice, and hidden in a script the kernel refuses it.
    predicted_refusal(&s, "echo x > /etc/execkit-test-write").await;
    predicted_refusal(&s, "echo x > /tmp/execkit-test-write").await;
    let r = run(&s, &hidden("echo x > /etc/execkit-test-write")).await;
    assert_ne!(r.exit_code, Some(0));
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    assert!(!std::path::Path::new("/etc/execkit-test-write").exists());
    for cmd in [
        "touch /usr/execkit-x",
        "mkdir /var/execkit-x",
        "rm -f /etc/hostname",
        "cp /etc/hostname /root/execkit-x",
    ] {
        assert_ne!(run(&s, cmd).await.exit_code, Some(0), "{cmd} succeeded");
    }
    ok(
        &s,
        "echo inside > file && cat file && mkdir -p a/b && mv file a/b/ && rm -r a",
    )
    .await;
    ok(
        &s,
        "echo tmp > \"$TMPDIR/x\" && cat \"$TMPDIR/x\" && echo null > /dev/null",
    )
    .await;
    // Escapes by link or rename.
    ok(&s, "echo mine > f && ln -s /etc/passwd link").await;
    predicted_refusal(&s, "echo pwned >> link").await;
    assert_ne!(
        run(&s, &hidden("echo pwned >> link")).await.exit_code,
        Some(0)
    );
    assert_ne!(
        run(&s, &hidden("echo x > /tmp/execkit-test-write"))
            .await
            .exit_code,
        Some(0)
    );
    assert_ne!(run(&s, "mv f /tmp/execkit-moved").await.exit_code, Some(0));
    assert_ne!(run(&s, "ln /etc/hostname hard").await.exit_code, Some(0));
    assert_ne!(run(&s, "ln f /tmp/execkit-hard").await.exit_code, Some(0));
    assert!(!std::path::Path::new("/tmp/execkit-moved").exists());
    assert!(!std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .contains("pwned"));
    // Reading is allowed.
    ok(&s, "head -1 /etc/passwd").await;
    s.close().await;
}

#[tokio::test]
async fn read_only_profile_and_denied_paths() {
    let ws = Workspace::new("ro");
    let secret = Workspace::new("secret");
    std::fs::write(secret.path().join("key"), "k").unwrap();
    let s = config(&ws, permit_all(), Profile::ReadOnly)
        .sandbox(SandboxConfig {
            profile: Profile::ReadOnly,
            deny_read: vec![secret.path().to_path_buf()],
            ..SandboxConfig::default()
        })
        .local()
        .await
        .unwrap();
    assert_ne!(run(&s, "touch inside").await.exit_code, Some(0));
    ok(&s, "echo t > \"$TMPDIR/t\"").await;
    assert_ne!(
        run(&s, &format!("cat {}/key", secret.path().display()))
            .await
            .exit_code,
        Some(0)
    );
    ok(&s, "cat /etc/hostname >/dev/null").await;
    s.close().await;
    let s = session(&ws, Profile::Off).await;
    ok(&s, "touch /tmp/execkit-off-$$ && rm /tmp/execkit-off-$$").await;
    s.close().await;
}

/// A loopback server that answers `n` connections with a tiny HTTP response.
fn http_server(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut c, _)) = l.accept() else { return };
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        }
    });
    (port, h)
}

#[tokio::test]
async fn network_is_off_unless_the_profile_allows_it() {
    let ws = Workspace::new("net");
    let (port, server) = http_server(1);
    let s = session(&ws, Profile::Workspace).await;
    assert!(
        s.info().await.enforcement.private_network,
        "this suite runs as root"
    );
    // The host's loopback is another network: its server is not there.
    let curl = format!("curl -s --max-time 3 http://127.0.0.1:{port}/");
    assert_ne!(run(&s, &curl).await.exit_code, Some(0));
    let py =
        format!("python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)'");
    let r = run(&s, &py).await;
    assert_ne!(r.exit_code, Some(0));
    assert!(r.stderr.contains("ConnectionRefusedError"), "{}", r.stderr);
    // Nothing routes out: any other address is unreachable at once.
    let out = "python3 -c 'import socket; socket.create_connection((\"192.0.2.1\", 80), 2)'";
    let r = run(&s, out).await;
    assert!(r.stderr.contains("Network is unreachable"), "{}", r.stderr);
    assert_ne!(
        run(&s, &format!("echo hi > /dev/tcp/127.0.0.1/{port}"))
            .await
            .exit_code,
        Some(0)
    );
    // VSOCK would reach the hypervisor past the namespace: refused.
    let r = run(
        &s,
        "python3 -c 'import socket; socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)'",
    )
    .await;
    assert!(r.stderr.contains("PermissionError"), "{r:?}");
    // Unix sockets still work (python multiprocessing needs them).
    ok(
        &s,
        "python3 -c 'import socket; a, b = socket.socketpair(); a.send(b\"x\"); print(b.recv(1))'",
    )
    .await;
    s.close().await;
    let s = session(&ws, Profile::WorkspaceNet).await;
    let r = ok(&s, &curl).await;
    assert_eq!(r.stdout, "hello");
    s.close().await;
    server.join().unwrap();
}

#[tokio::test]
async fn a_dev_server_answers_its_own_session_only() {
    let ws = Workspace::new("devserver");
    std::fs::write(ws.path().join("index.html"), "from the session\n").unwrap();
    let s = session(&ws, Profile::Workspace).await;
    let port = 18000 + (std::process::id() % 1000) as u16;
    ok(
        &s,
        &format!("python3 -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 & for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:{port}/ && break; sleep 0.1; done"),
    )
    .await;
    let r = ok(&s, &format!("curl -s http://localhost:{port}/index.html")).await;
    assert_eq!(r.stdout.trim_end(), "from the session");
    // The host does not reach it: the port is the session's loopback's alone.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    s.close().await;
}

#[tokio::test]
async fn dangerous_syscalls_are_refused() {
    let ws = Workspace::new("sys");
    let s = session(&ws, Profile::Workspace).await;
    let r = ok(&s, "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status").await;
    assert!(r.stdout.contains("NoNewPrivs:\t1"), "{}", r.stdout);
    assert!(r.stdout.contains("Seccomp:\t2"), "{}", r.stdout);
    let probe = r#"python3 - <<'EOF'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(ret):
    return ctypes.get_errno() if ret == -1 else 0
print("ptrace", errno_of(libc.ptrace(0, 0, 0, 0)))
print("unshare", errno_of(libc.unshare(0x10000000)))
print("personality", errno_of(libc.syscall(135, 0xffffffff)))
print("x32", errno_of(libc.syscall(0x40000000 | 39)))
print("io_uring", errno_of(libc.syscall(425, 1, 0)))
print("bpf", errno_of(libc.syscall(321, 0, 0, 0)))
print("tiocsti", errno_of(libc.ioctl(0, 0x5412, ctypes.c_char_p(b"x"))))
print("getpid", errno_of(libc.getpid()))
EOF"#;
    let r = ok(&s, probe).await;
    for name in [
        "ptrace",
        "unshare",
        "personality",
        "x32",
        "io_uring",
        "bpf",
        "tiocsti",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == format!("{name} 1")),
            "{name} not EPERM: {}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("getpid 0"));
    // Multiprocessing still works.
    let mp = "python3 -c 'import multiprocessing as m\nwith m.Pool(2) as p: print(sum(p.map(abs, range(-10, 10))))'";
    assert_eq!(ok(&s, mp).await.stdout, "100\n");
    s.close().await;
}

/// A root session (no `run_as`) holds no capability, and no handle on the host's network:
/// a red team's shell took the server-made socket of its own shell (`pidfd_getfd`), asked
/// it for its network namespace (`SIOCGSKNS`, the host's) and added an interface there
/// with `CAP_NET_ADMIN`; it also renamed the host (`sethostname`, the UTS namespace is
/// shared), and opened a TCP connection without `connect` (Fast Open), which the broker
/// then attributed to another program.
#[tokio::test]
async fn a_root_session_holds_no_capability_and_no_handle_on_the_hosts_network() {
    let ws = Workspace::new("caps");
    let s = session(&ws, Profile::Workspace).await;
    let probe = r#"python3 - <<'EOF'
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
caps = dict(l.split()[:2] for l in open("/proc/self/status") if l.startswith("Cap"))
print("caps", *(caps[k] for k in ("CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:")))
mine = os.readlink("/proc/self/ns/net")
pidfd = libc.syscall(434, 1, 0)
handles = 0
for fd in os.listdir("/proc/1/fd"):
    got = libc.syscall(438, pidfd, int(fd), 0)
    if got < 0:
        continue
    ns = libc.ioctl(got, 0x894C)
    if ns >= 0 and os.readlink(f"/proc/self/fd/{ns}") != mine:
        handles += 1
print("host network handles", handles)
me = libc.syscall(434, os.getpid(), 0)
print("pidfd_getfd", 0 if libc.syscall(438, me, 0, 0) >= 0 else ctypes.get_errno())
name = socket.gethostname().encode()
print("sethostname", 0 if libc.sethostname(name, len(name)) == 0 else ctypes.get_errno())
# TCP Fast Open connects from sendto, past the connect the runtime guard stops.
try:
    socket.socket().sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", 9))
    print("fastopen sent")
except OSError as e:
    print("fastopen", e.errno)
EOF"#;
    let r = ok(&s, probe).await;
    let none = "0000000000000000";
    assert!(
        r.stdout
            .contains(&format!("caps {none} {none} {none} {none} {none}\n")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("host network handles 0\n"),
        "{}",
        r.stdout
    );
    // Not even its own descriptors through a pidfd (EPERM).
    assert!(r.stdout.contains("pidfd_getfd 1\n"), "{}", r.stdout);
    assert!(r.stdout.contains("sethostname 1\n"), "{}", r.stdout);
    assert!(r.stdout.contains("fastopen 1\n"), "{}", r.stdout);
    s.close().await;
}

#[tokio::test]
async fn run_as_an_unprivileged_user() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "this test needs root (CI runs as root)"
    );
    let ws = Workspace::new("runas");
    let s = config(&ws, permit_all(), Profile::Workspace)
        .run_as(RunAs::lookup("nobody").unwrap())
        .local()
        .await
        .unwrap();
    let r = ok(&s, "id -u; echo x > \"$TMPDIR/t\" && cat \"$TMPDIR/t\"").await;
    assert_eq!(r.stdout, "65534\nx\n");
    // PID 1 is the shell itself (the session's own PID namespace): nothing of root's.
    let r = ok(&s, "stat -c %u /proc/1; cat /proc/1/comm").await;
    assert_eq!(r.stdout, "65534\nbash\n");
    s.close().await;
}

/// A denied file outside the workspace does not cost the session its own `/proc` (the
/// read rules are carved around the denied path; the session's `/proc` is a mount made
/// after the rules were built).
#[tokio::test]
async fn deny_read_hides_the_file_and_keeps_proc_readable() {
    let ws = Workspace::new("deny-proc");
    let secret_dir = Workspace::new("deny-proc-secret");
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "x\n").unwrap();
    let s = config(&ws, permit_all(), Profile::Workspace)
        .sandbox(execkit_runner::sandbox::SandboxConfig {
            profile: Profile::Workspace,
            deny_read: vec![secret.clone()],
            ..Default::default()
        })
        .local()
        .await
        .unwrap();
    let r = run(&s, &format!("cat {}", secret.display())).await;
    assert_ne!(r.exit_code, Some(0), "{r:?}");
    let r = ok(
        &s,
        "ls /proc | grep -c '^[0-9]'; head -1 /proc/self/status; ls /dev/null",
    )
    .await;
    assert!(r.stdout.contains("Name:"), "{r:?}");
    s.close().await;
}

/// POSIX shared memory is the session's own: a file in `/dev/shm` is no channel to the
/// host or to a later session, and Python's multiprocessing (semaphores there) still works.
#[tokio::test]
async fn shared_memory_is_the_sessions_own() {
    let ws = Workspace::new("shm");
    let name = format!("execkit-shm-{}", rand_u64());
    let s = session(&ws, Profile::Workspace).await;
    ok(
        &s,
        &format!("echo x > /dev/shm/{name} && cat /dev/shm/{name}"),
    )
    .await;
    assert!(!std::path::Path::new("/dev/shm").join(&name).exists());
    let r = ok(
        &s,
        "python3 -c 'import multiprocessing as m; l = m.Lock(); print(m.Pool(2).map(abs, [-1, -2]))'",
    )
    .await;
    assert_eq!(r.stdout, "[1, 2]\n");
    s.close().await;
}
