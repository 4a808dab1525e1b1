//! `execkit-mcp` as an operator runs it: doctor, setup, bad configuration, secret sources.

use crate::common::*;
use serde_json::json;
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
