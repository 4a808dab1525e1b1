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
