//! `execkit-mcp` as an operator runs it: doctor, setup, bad configuration, secret sources.

use crate::common::*;
use serde_json::{json, Value};
use std::process::{Command, Output};

fn execkit_mcp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_execkit-mcp"))
        .args(args)
        .env_remove("EXECKIT_CONFIG")
        .output()
        .expect("run execkit-mcp")
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn doctor_passes_here_and_fails_on_a_broken_policy_dir() {
    let s = Setup::new("");
    let cfg = s.config.to_str().unwrap();
    let o = execkit_mcp(&["--config", cfg, "doctor"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    for check in ["landlock", "seccomp", "audit", "policies", "sandbox"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(check) && l.contains("ok")),
            "{check}: {text}"
        );
    }
    assert!(text.contains("level Full"), "{text}");
    for probe in ["probe: write outside workspace", "probe: network"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(probe) && l.contains("ok")),
            "{probe}: {text}"
        );
    }
    assert!(!s.audit.exists(), "doctor writes no audit record");

    let bad = s.root.join("bad-policies");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("p.cedar"),
        "permit(principal, action, resource) when { nonsense };",
    )
    .unwrap();
    let cfg2 = s.root.join("bad.toml");
    std::fs::write(
        &cfg2,
        format!("[policy]\ndir = {:?}\n", bad.display().to_string()),
    )
    .unwrap();
    let o = execkit_mcp(&["--config", cfg2.to_str().unwrap(), "doctor", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let policies = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "policies")
        .unwrap();
    assert_eq!(policies["ok"], false);
}

#[test]
fn a_bad_config_stops_the_server_with_the_key_named() {
    let s = Setup::new("[limits]\nmax_sesions = 3\n");
    let o = execkit_mcp(&["--config", s.config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("max_sesions"), "{}", out(&o));
    assert!(o.stdout.is_empty(), "nothing but protocol on stdout");
}

#[test]
fn setup_prints_this_binarys_absolute_path() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_execkit-mcp"))
        .canonicalize()
        .unwrap();
    for client in ["claude", "cursor", "codex", "gemini"] {
        let o = execkit_mcp(&["setup", client]);
        assert_eq!(o.status.code(), Some(0), "{client}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains(&exe.display().to_string()),
            "{client}: {text}"
        );
    }
    let o = execkit_mcp(&["setup", "vim"]);
    assert_ne!(o.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_secret_files_are_redacted_from_results_and_audit() {
    let s = Setup::new("");
    let secrets = s.root.join("secrets.txt");
    std::fs::write(&secrets, "# deploy key\nq7Zp-internal-deploy-value-93\n").unwrap();
    let mut cfg = std::fs::read_to_string(&s.config).unwrap();
    cfg.push_str(&format!(
        "[secrets]\nfiles = [{:?}]\n",
        secrets.display().to_string()
    ));
    std::fs::write(&s.config, cfg).unwrap();
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "echo key=q7Zp-internal-deploy-value-93"}),
    )
    .await;
    let v = structured(&r);
    assert!(
        !v["stdout"]
            .as_str()
            .unwrap()
            .contains("q7Zp-internal-deploy-value-93"),
        "{v}"
    );
    assert!(!text(&r).contains("q7Zp-internal-deploy-value-93"));
    c.cancel().await.unwrap();
    let log = std::fs::read_to_string(&s.audit).unwrap();
    assert!(
        !log.contains("q7Zp-internal-deploy-value-93"),
        "the audit log is redacted too"
    );
}

/// With `[ssh]` and `[docker]` configured, the doctor checks the known_hosts file, every key
/// file's permissions and the Docker endpoint (the test sshd's and dockerd's files).
#[test]
fn doctor_checks_ssh_and_docker_settings() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let (Some(sshd), Some(dockerd)) = (
        std::env::var_os("EXECKIT_TEST_SSHD_DIR").map(std::path::PathBuf::from),
        std::env::var_os("EXECKIT_TEST_DOCKER_DIR").map(std::path::PathBuf::from),
    ) else {
        assert!(
            !ci,
            "CI=true but no test sshd/dockerd (scripts/test.sh starts them)"
        );
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new("");
    let good = s.root.join("id_good");
    let loose = s.root.join("id_loose");
    for (k, mode) in [(&good, 0o600), (&loose, 0o644)] {
        std::fs::copy(sshd.join("user_key"), k).unwrap();
        std::fs::set_permissions(k, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let kh = s.root.join("known_hosts");
    let host = std::fs::read_to_string(sshd.join("host_ed25519_key.pub")).unwrap();
    std::fs::write(&kh, format!("[127.0.0.1]:2222 {host}")).unwrap();
    let text = std::fs::read_to_string(&s.config).unwrap()
        + &format!(
            "[ssh]\nknown_hosts = {:?}\nidentity_files = [{:?}, {:?}]\n[docker]\nendpoint = {:?}\n",
            kh.display().to_string(),
            good.display().to_string(),
            loose.display().to_string(),
            format!("unix://{}", dockerd.join("docker.sock").display())
        );
    std::fs::write(&s.config, text).unwrap();
    let o = execkit_mcp(&["--config", s.config.to_str().unwrap(), "doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let check = |kind: &str| -> Vec<serde_json::Value> {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == kind)
            .cloned()
            .collect()
    };
    assert_eq!(check("ssh_known_hosts")[0]["ok"], true, "{v}");
    let keys = check("ssh_key");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["ok"], true, "{v}");
    assert_eq!(keys[1]["ok"], false, "{v}");
    assert!(keys[1]["detail"].as_str().unwrap().contains("too open"));
    assert_eq!(check("docker")[0]["ok"], true, "{v}");
    // The loose key makes the whole report fail.
    assert_eq!(v["ok"], false);
    assert_eq!(o.status.code(), Some(1));
}

/// `chattr FLAG PATH`; false where it cannot (not root, no inode flags).
fn chattr(flag: &str, path: &std::path::Path) -> bool {
    Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn an_audit_log_that_cannot_record_refuses_through_the_real_server() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    std::fs::write(s.workspace.join("proof.txt"), "keep").unwrap();
    if !chattr("+i", &s.audit) {
        assert!(
            std::env::var("CI").is_err(),
            "cannot chattr +i the audit log (root and chattr are needed)"
        );
        eprintln!("skipping: cannot chattr +i");
        return;
    }
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "rm -f proof.txt"}),
    )
    .await;
    let refused = structured(&r).clone();
    let listed = call(&c, "session_list", json!({})).await;
    let second = call(&c, "session_create", json!({})).await;
    let doctor = execkit_mcp(&["--config", s.config.to_str().unwrap(), "doctor"]);
    chattr("-i", &s.audit);
    assert_eq!(doctor.status.code(), Some(1), "{}", out(&doctor));
    assert!(
        out(&doctor)
            .lines()
            .any(|l| l.starts_with("audit") && l.contains("not permitted")),
        "{}",
        out(&doctor)
    );
    assert!(is_error(&r), "{}", text(&r));
    assert_eq!(refused["error"], "audit_unavailable", "{refused}");
    assert!(text(&r).contains("audit"), "{}", text(&r));
    assert!(s.workspace.join("proof.txt").exists(), "ran unrecorded");
    let why = structured(&listed)["audit_unavailable"]
        .as_str()
        .unwrap_or("");
    assert!(why.contains("not permitted"), "{}", text(&listed));
    assert!(is_error(&second), "a session opened: {}", text(&second));
    assert_eq!(structured(&second)["error"], "audit_unavailable");

    // Writable again: the command runs, and the log verifies with the gap recorded.
    let v = exec(&c, &id, "rm -f proof.txt").await;
    assert_eq!(v["exit_code"], 0, "{v}");
    assert!(!s.workspace.join("proof.txt").exists());
    let listed = call(&c, "session_list", json!({})).await;
    assert!(structured(&listed).get("audit_unavailable").is_none());
    let kinds: Vec<Value> = audit_records(&s.audit)
        .into_iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert!(kinds.contains(&json!("recovery")), "{kinds:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_execkit"))
        .args(["audit", "verify"])
        .arg(&s.audit)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    c.cancel().await.unwrap();
}
