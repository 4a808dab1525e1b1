//! Docker sessions against a real dockerd that `scripts/test.sh` starts
//! (`scripts/dockerd-for-tests.sh`, state in `$EXECKIT_TEST_DOCKER_DIR`) with a locally
//! built image (`execkit-test:latest`, no registry): the hardened ephemeral container
//! observed from inside, its removal on close, attaching to a running container, and clear
//! errors for what is missing.

use execkit_runner::docker::{DockerConnection, DockerError, DockerSettings, DockerTarget};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const IMAGE: &str = "execkit-test:latest";

/// The test daemon's socket, or `None` outside CI when none was started (CI fails instead).
fn dockerd() -> Option<String> {
    let Some(dir) = std::env::var_os("EXECKIT_TEST_DOCKER_DIR").map(PathBuf::from) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no test dockerd: scripts/test.sh starts one (EXECKIT_TEST_DOCKER_DIR)"
        );
        eprintln!("skipping: no test dockerd (run scripts/test.sh)");
        return None;
    };
    Some(format!("unix://{}", dir.join("docker.sock").display()))
}

fn docker_cli(endpoint: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", endpoint)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn ok(c: &DockerConnection, cmd: &str) -> String {
    let out = c.run(cmd).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "`{cmd}`: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn an_ephemeral_container_is_hardened_and_removed_on_close() {
    let Some(endpoint) = dockerd() else { return };
    let ws = std::env::temp_dir().join(format!("ek-docker-ws-{}", std::process::id()));
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut s = DockerSettings::new(&endpoint);
    s.pids_limit = 64;
    s.memory_bytes = 256 << 20;
    s.workspace = Some(ws.clone());
    let c = DockerConnection::open(&s, &DockerTarget::Image(IMAGE.into()))
        .await
        .unwrap();
    let name = c.container().to_string();
    // Not root; no capabilities; no new privileges.
    assert_eq!(ok(&c, "id -u").await, "1000\n");
    assert_eq!(
        ok(
            &c,
            "grep -E '^(CapPrm|CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '"
        )
        .await,
        "CapPrm: 0000000000000000\nCapEff: 0000000000000000\nNoNewPrivs: 1\n"
    );
    // Read-only root, writable /tmp and workspace only.
    let r = c.run("echo x > /etc/x").await.unwrap();
    assert_ne!(r.exit_code, Some(0));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("Read-only file system"),
        "{r:?}"
    );
    assert_eq!(ok(&c, "echo t > /tmp/t && cat /tmp/t").await, "t\n");
    assert_eq!(ok(&c, "echo w > /work/w && cat /work/w").await, "w\n");
    assert_eq!(std::fs::read_to_string(ws.join("w")).unwrap(), "w\n");
    // No network: only the loopback device.
    assert_eq!(
        ok(&c, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").await,
        "lo\n"
    );
    // The pids limit is the container's.
    let pids = ok(
        &c,
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    )
    .await;
    assert_eq!(pids, "64\n");
    // The daemon socket is nowhere inside.
    assert_ne!(
        c.run("test -S /var/run/docker.sock")
            .await
            .unwrap()
            .exit_code,
        Some(0)
    );
    assert_eq!(
        docker_cli(
            &endpoint,
            &["ps", "-q", "--filter", &format!("name={name}")]
        )
        .len(),
        12
    );
    c.close().await;
    assert_eq!(
        docker_cli(
            &endpoint,
            &["ps", "-aq", "--filter", &format!("name={name}")]
        ),
        ""
    );
    let _ = std::fs::remove_dir_all(&ws);
}

#[tokio::test]
async fn attaching_to_a_running_container_leaves_it_running() {
    let Some(endpoint) = dockerd() else { return };
    let name = format!("ek-attach-{}", std::process::id());
    docker_cli(
        &endpoint,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            IMAGE,
            "sleep",
            "300",
        ],
    );
    let s = DockerSettings::new(&endpoint);
    let c = DockerConnection::open(&s, &DockerTarget::Container(name.clone()))
        .await
        .unwrap();
    let out = c.run("echo hi; echo err >&2; exit 4").await.unwrap();
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, Some(4));
    c.close().await;
    assert_eq!(
        docker_cli(&endpoint, &["inspect", "-f", "{{.State.Running}}", &name]),
        "true"
    );
    // A session in it: closing kills everything the session started there (background
    // jobs, a double fork), and the container goes on running.
    let config = execkit_runner::Session::builder()
        .engine(crate::common::permit_all())
        .build()
        .unwrap();
    let session =
        execkit_runner::Session::docker(&DockerTarget::Container(name.clone()), &s, config)
            .await
            .unwrap();
    // The helper cannot make connections for the shell in a container it did not create
    // (Docker's profile refuses `pidfd_getfd` without `SYS_PTRACE`), and says so.
    let e = session.info().await.enforcement;
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("no connections from the shell")),
        "{e:?}"
    );
    let marker = "301.0517";
    let r = session
        .exec(
            &format!("sleep {marker} >/dev/null 2>&1 & (sleep {marker}1 >/dev/null 2>&1 &); true"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
    let count = || {
        docker_cli(&endpoint, &["exec", &name, "ps", "-eo", "args"])
            .lines()
            .filter(|l| l.contains(marker))
            .count()
    };
    // Both start in the background, each decided at its start by this runtime's tasks
    // (a current-thread runtime: the wait must yield to them, not block the thread).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the background sleeps did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count(), 2);
    session.close().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "processes survived close in the attached container"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        docker_cli(&endpoint, &["inspect", "-f", "{{.State.Running}}", &name]),
        "true"
    );
    docker_cli(&endpoint, &["rm", "-f", &name]);
}

#[tokio::test]
async fn missing_containers_images_and_endpoints_are_clear_errors() {
    let Some(endpoint) = dockerd() else { return };
    let s = DockerSettings::new(&endpoint);
    let e = DockerConnection::open(&s, &DockerTarget::Container("no-such-container".into()))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, DockerError::NotRunning(_)), "{e}");
    let e = DockerConnection::open(&s, &DockerTarget::Image("no-such-image:1".into()))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, DockerError::Image { .. }), "{e}");
    let e = DockerConnection::open(
        &DockerSettings::new("unix:///nonexistent/docker.sock"),
        &DockerTarget::Image(IMAGE.into()),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, DockerError::Endpoint { .. }), "{e}");
}
