//! Shared helpers: policy engines, workspaces, sessions.

use execkit_engine::{Engine, PolicyBundle};
use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecResult, Session, SessionBuilder};
use std::path::PathBuf;
use std::sync::Arc;

/// An engine that permits everything: the sandbox alone must hold.
pub fn permit_all() -> Arc<Engine> {
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        &[(
            "all.cedar",
            "@id(\"permit-all\") permit(principal, action, resource);",
        )],
        "[]",
    );
    Arc::new(Engine::new(&bundle).expect("permit-all engine"))
}

/// The shipped default set.
pub fn default_policies() -> Arc<Engine> {
    let set = execkit_policies::DEFAULT;
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        set.policies,
        set.entities,
    );
    Arc::new(Engine::new(&bundle).expect("default engine"))
}

#[path = "../support/test_hosts.rs"]
mod test_hosts;
pub use test_hosts::default_policies_with_test_hosts;

/// A fresh workspace directory, removed on drop.
pub struct Workspace(pub PathBuf);

impl Workspace {
    pub fn new(tag: &str) -> Workspace {
        let n: u64 = rand_u64();
        let p = std::env::temp_dir().join(format!("ek-test-{tag}-{n:x}"));
        std::fs::create_dir_all(&p).unwrap();
        Workspace(p.canonicalize().unwrap())
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

pub fn config(ws: &Workspace, engine: Arc<Engine>, profile: Profile) -> SessionBuilder {
    Session::builder()
        .workspace(ws.path())
        .engine(engine)
        .profile(profile)
}

pub async fn session(ws: &Workspace, profile: Profile) -> Session {
    config(ws, permit_all(), profile)
        .local()
        .await
        .expect("session starts")
}

pub async fn run(s: &Session, cmd: &str) -> ExecResult {
    s.exec(cmd, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("`{cmd}` failed: {e}"))
}

/// Runs and asserts exit 0.
pub async fn ok(s: &Session, cmd: &str) -> ExecResult {
    let r = run(s, cmd).await;
    assert_eq!(r.exit_code, Some(0), "`{cmd}`: {r:?}");
    r
}

/// One process as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub sid: i32,
}

/// `/proc/PID/stat` of one process, if it exists.
pub fn proc_stat(pid: i32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        pid,
        sid: f.get(3)?.parse().ok()?,
    })
}

/// Processes in the shell's session (including zombies).
pub fn session_members(sid: i32) -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .filter(|s| s.sid == sid)
        .collect()
}

/// `command` run from a script the session writes first, so that the decision on the text
/// sees only `sh` starting a workspace file: what is left to stop it is the kernel.
pub fn hidden(command: &str) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(command);
    format!("echo {b} | base64 -d > hidden.sh && sh hidden.sh")
}

/// Asserts that the decision refuses `command` because the kernel sandbox would.
pub async fn predicted_refusal(s: &Session, command: &str) {
    let e = s.exec(command, &Default::default()).await;
    let msg = format!("{e:?}");
    assert!(
        msg.contains("the kernel would refuse"),
        "`{command}`: {msg}"
    );
}

/// The refusal of the connection to `destination` (`host:port`) a command's result
/// reports; the test fails when there is none.
pub fn refused_at<'a>(
    r: &'a execkit_runner::ExecResult,
    destination: &str,
) -> &'a execkit_runner::RuntimeDenial {
    r.runtime_denials
        .iter()
        .find(|d| d.destination.as_deref() == Some(destination))
        .unwrap_or_else(|| panic!("no refusal of {destination}: {r:?}"))
}
