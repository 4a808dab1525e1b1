//! SSH and Docker sessions through the MCP server, against the test sshd and dockerd that
//! `scripts/test.sh` starts: created with operator settings only, decided by policy before
//! anything connects, and usable like local sessions.

use super::common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

fn dirs() -> Option<(PathBuf, PathBuf)> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match (
        std::env::var_os("EXECKIT_TEST_SSHD_DIR").map(PathBuf::from),
        std::env::var_os("EXECKIT_TEST_DOCKER_DIR").map(PathBuf::from),
    ) {
        (Some(s), Some(d)) => Some((s, d)),
        _ => {
            assert!(
                !ci,
                "CI=true but no test sshd/dockerd (scripts/test.sh starts them)"
            );
            None
        }
    }
}

/// `[ssh]` and `[docker]` sections for the test servers (files under `root`).
fn remote_config(
    root: &std::path::Path,
    sshd: &std::path::Path,
    dockerd: &std::path::Path,
) -> String {
    std::fs::create_dir_all(root).unwrap();
    let key = root.join("id");
    std::fs::copy(sshd.join("user_key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = std::fs::read_to_string(sshd.join("port")).unwrap();
    let host = std::fs::read_to_string(sshd.join("host_ed25519_key.pub")).unwrap();
    let kh = root.join("known_hosts");
    std::fs::write(&kh, format!("[127.0.0.1]:{} {host}", port.trim())).unwrap();
    let user = std::fs::read_to_string(sshd.join("user")).unwrap();
    format!(
        "[ssh]\nknown_hosts = {:?}\nidentity_files = [{:?}]\nuser = {:?}\n[docker]\nendpoint = {:?}\n",
        kh.display().to_string(),
        key.display().to_string(),
        user.trim(),
        format!("unix://{}", dockerd.join("docker.sock").display())
    )
}

fn sshd_connections(sshd: &std::path::Path) -> usize {
    std::fs::read_to_string(sshd.join("sshd.log"))
        .unwrap_or_default()
        .matches("Connection from")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_sessions_run_commands_through_mcp() {
    let Some((sshd, dockerd)) = dirs() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("execkit-mcp-remote-{}", std::process::id()));
    let extra = permit_all_policies(&root) + &remote_config(&root, &sshd, &dockerd);
    let s = Setup::new(&extra);
    // Bound at /work in ephemeral containers, written by the image's user.
    std::os::unix::fs::chown(&s.workspace, Some(1000), Some(1000)).unwrap();
    let c = s.connect(Human::Absent).await;
    let port: u16 = std::fs::read_to_string(sshd.join("port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for (args, expect_user) in [
        (
            json!({"transport": "ssh", "host": "127.0.0.1", "port": port}),
            Some(
                std::fs::read_to_string(sshd.join("user"))
                    .unwrap()
                    .trim()
                    .to_string(),
            ),
        ),
        (
            json!({"transport": "docker", "image": "execkit-test:latest"}),
            None,
        ),
    ] {
        let r = call(&c, "session_create", args.clone()).await;
        assert!(!is_error(&r), "{args}: {}", text(&r));
        let v = structured(&r);
        // The remote helper holds the shell under the sandbox on the target.
        assert_ne!(v["sandbox"]["level"], "none", "{v}");
        assert_eq!(v["sandbox"]["seccomp"], true, "{v}");
        let id = v["session_id"].as_str().unwrap().to_string();
        let out = exec(&c, &id, "cd /tmp && export Y=7").await;
        assert_eq!(out["exit_code"], 0);
        let out = exec(&c, &id, "echo $Y; pwd; id -un 2>/dev/null || id -u").await;
        let stdout = out["stdout"].as_str().unwrap();
        assert!(stdout.starts_with("7\n/tmp\n"), "{args}: {out}");
        if let Some(u) = &expect_user {
            assert!(stdout.ends_with(&format!("{u}\n")), "{out}");
        }
        if expect_user.is_none() {
            // The operator's workspace is the container's /work.
            let out = exec(&c, &id, "cd /work && echo bound > from-mcp && pwd").await;
            assert_eq!(out["stdout"], "/work\n", "{out}");
            assert_eq!(
                std::fs::read_to_string(s.workspace.join("from-mcp")).unwrap(),
                "bound\n"
            );
        }
        let listed = call(&c, "session_list", json!({})).await;
        assert!(structured(&listed).to_string().contains(&id));
        let r = call(&c, "session_destroy", json!({"session_id": id})).await;
        assert!(!is_error(&r), "{}", text(&r));
    }
    c.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_ssh_target_never_reaches_sshd() {
    let Some((sshd, dockerd)) = dirs() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("execkit-mcp-denied-{}", std::process::id()));
    // The default policies: SSH targets only from TargetGroup::"ssh-allowed" (empty).
    let s = Setup::new(&remote_config(&root, &sshd, &dockerd));
    let c = s.connect(Human::Absent).await;
    let port: u16 = std::fs::read_to_string(sshd.join("port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let before = sshd_connections(&sshd);
    let r = call(
        &c,
        "session_create",
        json!({"transport": "ssh", "host": "127.0.0.1", "port": port}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(structured(&r)["denied"], true, "{}", text(&r));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        sshd_connections(&sshd),
        before,
        "a denied target reached sshd"
    );
    c.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

fn docker_cli(dockerd: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("docker")
        .args(args)
        .env(
            "DOCKER_HOST",
            format!("unix://{}", dockerd.join("docker.sock").display()),
        )
        .output()
        .unwrap()
}

/// Waits until no live process holds `marker`, at most `limit` after `since`.
async fn none_left(marker: &str, since: std::time::Instant, limit: std::time::Duration) {
    loop {
        let left = live_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            since.elapsed() < limit,
            "processes {left:?} with `{marker}` survived the server by {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `kill -9` of the server mid-command: nothing it started runs on, on an SSH host, in an
/// attached container or in an ephemeral one (which is removed); a container the operator
/// attached to is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_server_leaves_nothing_on_remote_targets() {
    use std::time::{Duration, Instant};
    let Some((sshd, dockerd)) = dirs() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("execkit-mcp-kill9-{}", std::process::id()));
    let extra = permit_all_policies(&root) + &remote_config(&root, &sshd, &dockerd);
    let s = Setup::new(&extra);
    // The workspace bound into ephemeral containers is written by the image's user.
    std::os::unix::fs::chown(&s.workspace, Some(1000), Some(1000)).unwrap();
    let attached = format!("ek-attached-{}", std::process::id());
    let o = docker_cli(
        &dockerd,
        &[
            "run",
            "-d",
            "--name",
            &attached,
            "execkit-test:latest",
            "sleep",
            "100000",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (c, server) = s.connect_with_pid(Human::Absent).await;
    let port: u16 = std::fs::read_to_string(sshd.join("port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let m = format!("{}", std::process::id() % 100_000);
    let mut running = Vec::new();
    for (n, create_args) in [
        json!({"transport": "ssh", "host": "127.0.0.1", "port": port}),
        json!({"transport": "docker", "container": attached}),
        json!({"transport": "docker", "image": "execkit-test:latest"}),
    ]
    .into_iter()
    .enumerate()
    {
        let r = call(&c, "session_create", create_args.clone()).await;
        assert!(!is_error(&r), "{create_args}: {}", text(&r));
        let id = structured(&r)["session_id"].as_str().unwrap().to_string();
        let peer = c.peer().clone();
        // (The test image has no `setsid`: a double fork escapes the group there.)
        let command = format!(
            "sleep 102{n}.{m} & {{ setsid sleep 103{n}.{m} || (sleep 103{n}.{m} &); }} & (sleep 104{n}.{m} &); sleep 105{n}.{m}"
        );
        running.push(tokio::spawn(async move {
            peer.call_tool(
                rmcp::model::CallToolRequestParams::new("session_exec".to_string())
                    .with_arguments(args(json!({"session_id": id, "command": command}))),
            )
            .await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while live_with(&format!(".{m}")).len() < 12 {
        assert!(
            Instant::now() < deadline,
            "the sessions' processes never all started: {:?}",
            live_with(&format!(".{m}"))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ephemeral = String::from_utf8_lossy(
        &docker_cli(
            &dockerd,
            &[
                "ps",
                "--filter",
                "label=execkit.session=ephemeral",
                "--format",
                "{{.Names}} {{.Label \"execkit.owner\"}}",
            ],
        )
        .stdout,
    )
    .lines()
    .find(|l| l.contains(&format!(":{server}.")))
    .map(|l| l.split_whitespace().next().unwrap().to_string())
    .expect("the server's ephemeral container");
    let st = std::process::Command::new("kill")
        .args(["-9", &server.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let killed = Instant::now();
    none_left(&format!(".{m}"), killed, Duration::from_secs(10)).await;
    loop {
        let names = String::from_utf8_lossy(
            &docker_cli(&dockerd, &["ps", "-a", "--format", "{{.Names}}"]).stdout,
        )
        .into_owned();
        if !names.contains(&ephemeral) {
            assert!(
                names.contains(&attached),
                "the attached container was removed"
            );
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "the ephemeral container {ephemeral} outlived its server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let inside = docker_cli(&dockerd, &["exec", &attached, "ps", "-e", "-o", "comm="]);
    let left: Vec<String> = String::from_utf8_lossy(&inside.stdout)
        .lines()
        .filter(|l| !matches!(l.trim(), "sleep" | "ps"))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "left in the attached container: {left:?}");
    for r in running {
        r.abort();
    }
    drop(c);
    let _ = docker_cli(&dockerd, &["rm", "-f", &attached]);
    let _ = std::fs::remove_dir_all(&root);
}

/// `kill -9` of `execkit session --ssh` mid-command: the remote tree is gone with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_cli_leaves_nothing_on_the_ssh_host() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let Some((sshd, dockerd)) = dirs() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("execkit-cli-kill9-{}", std::process::id()));
    permit_all_policies(&root);
    remote_config(&root, &sshd, &dockerd);
    let port = std::fs::read_to_string(sshd.join("port")).unwrap();
    let user = std::fs::read_to_string(sshd.join("user")).unwrap();
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_execkit"))
        .args(["session", "--policies"])
        .arg(root.join("permit-all"))
        .arg("--ssh")
        .arg(format!("{}@127.0.0.1:{}", user.trim(), port.trim()))
        .arg("--known-hosts")
        .arg(root.join("known_hosts"))
        .arg("--identity")
        .arg(root.join("id"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let m = format!("{}", std::process::id() % 100_000 + 7);
    writeln!(
        cli.stdin.as_mut().unwrap(),
        "sleep 1060.{m} & setsid sleep 1061.{m} & sleep 1062.{m}"
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while live_with(&format!(".{m}")).len() < 3 {
        assert!(Instant::now() < deadline, "the remote sleeps never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cli.kill().unwrap();
    let _ = cli.wait();
    none_left(&format!(".{m}"), Instant::now(), Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&root);
}

/// `execkit exec --docker-image … --workspace DIR` binds DIR at /work.
#[test]
fn the_cli_binds_its_workspace_into_an_ephemeral_container() {
    let Some((_, dockerd)) = dirs() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("execkit-cli-docker-ws-{}", std::process::id()));
    permit_all_policies(&root);
    let ws = root.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::os::unix::fs::chown(&ws, Some(1000), Some(1000)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_execkit"))
        .args(["exec", "--policies"])
        .arg(root.join("permit-all"))
        .args(["--docker-image", "execkit-test:latest", "--docker-endpoint"])
        .arg(format!("unix://{}", dockerd.join("docker.sock").display()))
        .arg("--workspace")
        .arg(&ws)
        .args(["--", "echo from-cli > /work/f && pwd"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["stdout"], "/work\n", "{v}");
    assert_eq!(std::fs::read_to_string(ws.join("f")).unwrap(), "from-cli\n");
    let _ = std::fs::remove_dir_all(&root);
}

/// `execkit doctor --ssh …` probes the host: what its kernel enforces under the helper.
#[test]
fn doctor_probes_what_an_ssh_hosts_kernel_enforces() {
    let Some((sshd, dockerd)) = dirs() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("execkit-doctor-ssh-{}", std::process::id()));
    remote_config(&root, &sshd, &dockerd);
    let port = std::fs::read_to_string(sshd.join("port")).unwrap();
    let user = std::fs::read_to_string(sshd.join("user")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_execkit"))
        .args(["doctor", "--json", "--ssh"])
        .arg(format!("{}@127.0.0.1:{}", user.trim(), port.trim()))
        .arg("--known-hosts")
        .arg(root.join("known_hosts"))
        .arg("--identity")
        .arg(root.join("id"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["enforcement"]["level"], "full", "{v:#}");
    let notes = v["enforcement"]["notes"].to_string();
    assert!(
        notes.contains("enforced on the target by execkit-helper"),
        "{notes}"
    );
    let outside = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "write_outside_workspace")
        .unwrap();
    assert_eq!(outside["ok"], true, "{outside}");
    assert!(
        outside["detail"].as_str().unwrap().contains("was refused"),
        "{outside}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
