//! Shared helpers: policy engines, workspaces, sessions.

use execkit_engine::{Engine, PolicyBundle};
use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecOptions, ExecResult, Session, SessionConfig};
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

pub fn config(ws: &Workspace, engine: Arc<Engine>, profile: Profile) -> SessionConfig {
    let mut c = SessionConfig::new(ws.path(), engine);
    c.sandbox.profile = profile;
    c
}

pub async fn session(ws: &Workspace, profile: Profile) -> Session {
    Session::local(config(ws, permit_all(), profile))
        .await
        .expect("session starts")
}

pub async fn run(s: &Session, cmd: &str) -> ExecResult {
    s.exec(cmd, &ExecOptions::default())
        .await
        .unwrap_or_else(|e| panic!("`{cmd}` failed: {e}"))
}

/// Runs and asserts exit 0.
pub async fn ok(s: &Session, cmd: &str) -> ExecResult {
    let r = run(s, cmd).await;
    assert_eq!(r.exit_code, Some(0), "`{cmd}`: {r:?}");
    r
}

/// Processes in the shell's session (including zombies).
pub fn session_members(sid: i32) -> Vec<execkit_runner::procs::Stat> {
    execkit_runner::procs::all()
        .into_iter()
        .filter(|s| s.sid == sid)
        .collect()
}
