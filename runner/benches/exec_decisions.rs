//! What deciding every program at its start costs: a `make -j2` of a 200-file C project
//! and a `cargo build` of a small crate in a local session, with and without runtime
//! decisions (the same `make` over SSH with the helper when the test sshd runs), and the
//! cost of one `fork`+`exec`+`wait` of `/bin/true` — remembered (the same words each time)
//! and fresh (new words each time, a full policy decision) — as p50/p99 per start.
//! And what stopping every `connect` costs: one `socket`+`connect` to a Unix socket in
//! the workspace and to a TCP listener on the session's loopback (both the session's own,
//! made by the supervisor when decisions are on), p50/p99 per connection.
//! Prints; nothing here asserts a time.
//!
//! `cargo bench -p execkit-runner --bench exec_decisions` runs the full measurement (5
//! builds per mode, 2,000 starts); without `--bench` it runs one build and 200 starts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code: a failure is a failed run

use execkit_runner::{ExecOptions, Session};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "common/measure.rs"]
mod measure;
#[path = "../tests/support/ssh.rs"]
mod ssh_support;
use measure::{engine, engine_with_test_hosts, pct};

/// Times each of `n` `fork`+`exec`+`wait`s of `/bin/true` (`fresh`: with a new argument
/// each time) and prints the microseconds, one per line.
const EXEC_LOOP_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]), fresh = strcmp(argv[2], "fresh") == 0;
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "%d", i);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        pid_t p = fork();
        if (p == 0) {
            if (fresh) execl("/bin/true", "true", arg, (char *)0);
            else execl("/bin/true", "true", (char *)0);
            _exit(127);
        }
        int st;
        waitpid(p, &st, 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%ld\n", (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000L);
    }
    return 0;
}
"#;

/// Times each of `n` `socket`+`connect`s to a listener of its own — a Unix socket in the
/// cwd (`unix`) or TCP on 127.0.0.1 (`tcp`) — and prints the microseconds, one per line.
const CONNECT_LOOP_C: &str = r#"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]), unix_ = strcmp(argv[2], "unix") == 0;
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    struct sockaddr_in si = {.sin_family = AF_INET};
    socklen_t len;
    struct sockaddr *addr;
    int l;
    if (unix_) {
        strcpy(su.sun_path, "connloop.sock");
        unlink(su.sun_path);
        l = socket(AF_UNIX, SOCK_STREAM, 0);
        addr = (struct sockaddr *)&su; len = sizeof su;
    } else {
        si.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        l = socket(AF_INET, SOCK_STREAM, 0);
        addr = (struct sockaddr *)&si; len = sizeof si;
    }
    if (bind(l, addr, len) || listen(l, 128)) { perror("listen"); return 1; }
    getsockname(l, addr, &len);
    for (int i = 0; i < n; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int c = socket(unix_ ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
        if (connect(c, addr, len)) { perror("connect"); return 1; }
        clock_gettime(CLOCK_MONOTONIC, &b);
        close(accept(l, 0, 0));
        close(c);
        printf("%ld\n", (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000L);
    }
    if (unix_) unlink(su.sun_path);
    return 0;
}
"#;

/// A C project of `files` translation units and a Makefile with one recipe per object.
fn c_project(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let mut objs = Vec::new();
    let mut main = String::from("int main(void) { int s = 0;\n");
    for i in 0..files {
        std::fs::write(
            dir.join(format!("src/f{i}.c")),
            format!("int f{i}(int x) {{ int s = 0; for (int k = 0; k < x; k++) s += k * {i}; return s; }}\n"),
        )
        .unwrap();
        objs.push(format!("src/f{i}.o"));
        main = format!("int f{i}(int);\n{main} s += f{i}(3);\n");
    }
    main.push_str(" return s == -1; }\n");
    std::fs::write(dir.join("src/main.c"), main).unwrap();
    objs.push("src/main.o".into());
    std::fs::write(
        dir.join("Makefile"),
        format!(
            "OBJS = {}\napp: $(OBJS)\n\tcc -o app $(OBJS)\n%.o: %.c\n\tcc -O1 -c $< -o $@\nclean:\n\trm -f app $(OBJS)\n",
            objs.join(" ")
        ),
    )
    .unwrap();
}

/// A small crate: a library of a few modules and a binary, no dependencies.
fn small_crate(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"small\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
    )
    .unwrap();
    let mut lib = String::new();
    for m in 0..6 {
        lib.push_str(&format!("pub mod m{m};\n"));
        std::fs::write(
            dir.join(format!("src/m{m}.rs")),
            format!("pub fn f(v: &[u64]) -> u64 {{ v.iter().map(|x| x * {m} + 1).sum() }}\n#[derive(Debug, Clone)] pub struct S{m} {{ pub a: Vec<String> }}\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() { println!(\"{}\", small::m1::f(&[1, 2, 3])); }\n",
    )
    .unwrap();
}

async fn local_session(ws: &Path, decisions: bool) -> Session {
    let home = std::env::var("HOME").unwrap_or_default();
    Session::builder()
        .workspace(ws)
        .engine(engine())
        .exec_decisions(decisions)
        .env(
            "PATH",
            format!("{home}/.cargo/bin:/usr/local/bin:/usr/bin:/bin"),
        )
        .env("CARGO_TARGET_DIR", ws.join("target").display().to_string())
        .env("CARGO_NET_OFFLINE", "true")
        .local()
        .await
        .unwrap()
}

/// Median wall time of `runs` runs of `prepare` then `command` (only `command` is timed).
async fn time_builds(s: &Session, prepare: &str, command: &str, runs: usize) -> Duration {
    let opts = ExecOptions::timeout(Duration::from_secs(900));
    let mut times = Vec::new();
    for _ in 0..runs {
        let r = s.exec(prepare, &opts).await.unwrap();
        assert_eq!(r.exit_code, Some(0), "{prepare}: {}", r.stderr);
        let t = Instant::now();
        let r = s.exec(command, &opts).await.unwrap();
        times.push(t.elapsed());
        assert_eq!(
            r.exit_code,
            Some(0),
            "{command} (runtime decisions {}): {} {:?}",
            s.info().await.enforcement.exec_decisions,
            r.stderr,
            r.shell_exit_reason
        );
        assert!(
            r.runtime_denials.is_empty(),
            "{command}: {:?}",
            r.runtime_denials
        );
    }
    times.sort();
    times[times.len() / 2]
}

fn compare(label: &str, off: Duration, on: Duration) {
    println!(
        "{label:<44} without {:>8.3} s  with {:>8.3} s  overhead {:>+6.1}%",
        off.as_secs_f64(),
        on.as_secs_f64(),
        (on.as_secs_f64() / off.as_secs_f64() - 1.0) * 100.0
    );
}

/// p50/p99 of a loop program's microseconds (`./execloop N same`).
async fn exec_loop(s: &Session, n: usize, mode: &str) -> (u64, u64) {
    timed_loop(s, &format!("./execloop {n} {mode}"), n).await
}

/// p50/p99 of the microseconds `command` prints, `n` lines.
async fn timed_loop(s: &Session, command: &str, n: usize) -> (u64, u64) {
    let r = s
        .exec(command, &ExecOptions::timeout(Duration::from_secs(600)))
        .await
        .unwrap();
    let mut v: Vec<Duration> = r
        .stdout
        .lines()
        .filter_map(|l| l.parse().ok())
        .map(Duration::from_micros)
        .collect();
    assert_eq!(v.len(), n, "{}", r.stderr);
    v.sort();
    (
        pct(&v, 0.50).as_micros() as u64,
        pct(&v, 0.99).as_micros() as u64,
    )
}

/// One mode's figures: the builds' medians and the starts' (p50, p99) in µs.
struct Measured {
    make: Duration,
    cargo: Duration,
    same: (u64, u64),
    fresh: (u64, u64),
    unix: (u64, u64),
    tcp: (u64, u64),
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, starts) = if full { (5, 2000) } else { (1, 200) };
    let root = std::env::temp_dir().join(format!("execkit-bench-exec-{}", std::process::id()));
    let (cproj, crate_dir) = (root.join("c"), root.join("crate"));
    c_project(&cproj, 200);
    small_crate(&crate_dir);
    std::fs::write(root.join("execloop.c"), EXEC_LOOP_C).unwrap();
    std::fs::write(root.join("connloop.c"), CONNECT_LOOP_C).unwrap();

    let mut results: Vec<Measured> = Vec::new();
    for decisions in [false, true] {
        let s = local_session(&root, decisions).await;
        assert_eq!(s.info().await.enforcement.exec_decisions, decisions);
        let make = time_builds(
            &s,
            &format!("cd {} && make -s clean", cproj.display()),
            "make -s -j2",
            runs,
        )
        .await;
        let cargo = time_builds(
            &s,
            &format!("cd {} && cargo clean -q", crate_dir.display()),
            "cargo build -q",
            runs,
        )
        .await;
        let r = s
            .exec(
                &format!(
                    "cd {} && cc -O2 -o execloop execloop.c && cc -O2 -o connloop connloop.c",
                    root.display()
                ),
                &Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(r.exit_code, Some(0), "{}", r.stderr);
        let same = exec_loop(&s, starts, "same").await;
        let fresh = exec_loop(&s, starts, "fresh").await;
        let unix = timed_loop(&s, &format!("./connloop {starts} unix"), starts).await;
        let tcp = timed_loop(&s, &format!("./connloop {starts} tcp"), starts).await;
        results.push(Measured {
            make,
            cargo,
            same,
            fresh,
            unix,
            tcp,
        });
        s.close().await;
    }
    let (off, on) = (&results[0], &results[1]);
    println!("runtime decisions, local, {runs} run(s) each (median):");
    compare("make -j2, 200 C files", off.make, on.make);
    compare("cargo build, small crate", off.cargo, on.cargo);
    println!(
        "one fork+exec+wait of /bin/true ({starts}): remembered p50 {} µs p99 {} µs (without: {} / {}); fresh p50 {} µs p99 {} µs (without: {} / {})",
        on.same.0, on.same.1, off.same.0, off.same.1, on.fresh.0, on.fresh.1, off.fresh.0, off.fresh.1
    );
    println!(
        "one socket+connect ({starts}): Unix socket in the workspace p50 {} µs p99 {} µs (without: {} / {}); TCP on loopback p50 {} µs p99 {} µs (without: {} / {})",
        on.unix.0, on.unix.1, off.unix.0, off.unix.1, on.tcp.0, on.tcp.1, off.tcp.0, off.tcp.1
    );
    ssh_make(runs).await;
    let _ = std::fs::remove_dir_all(&root);
}

/// The same `make -j2` over SSH with the helper, with and without runtime decisions.
async fn ssh_make(runs: usize) {
    let Some((t, mut settings)) = ssh_support::ssh_fixture() else {
        println!("ssh: no test sshd (EXECKIT_TEST_SSHD_DIR), skipped");
        return;
    };
    let name = format!("bench-exec-{}", std::process::id());
    let home: PathBuf = ssh_support::ssh_home(&t.user);
    let dir = home.join(&name);
    c_project(&dir.join("c"), 200);
    let owner = std::fs::metadata(&home).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        let (uid, gid) = (owner.uid(), owner.gid());
        for e in walk(&dir) {
            std::os::unix::fs::chown(&e, Some(uid), Some(gid)).unwrap();
        }
    }
    settings.sandbox.workspace = Some(format!("~/{name}"));
    let mut times = Vec::new();
    for decisions in [false, true] {
        let config = Session::builder()
            .engine(engine_with_test_hosts())
            .exec_decisions(decisions)
            .build()
            .unwrap();
        let s = Session::ssh(&t, &settings, config).await.unwrap();
        assert_eq!(s.info().await.enforcement.exec_decisions, decisions);
        times.push(
            time_builds(
                &s,
                &format!("cd ~/{name}/c && make -s clean"),
                "make -s -j2",
                runs,
            )
            .await,
        );
        s.close().await;
    }
    println!("runtime decisions, SSH on loopback with the helper:");
    compare("make -j2, 200 C files", times[0], times[1]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
