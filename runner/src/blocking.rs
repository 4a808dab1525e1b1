//! A blocking wrapper for callers without an async runtime: the same builder and calls as
//! [`Session`], each run to completion on a small private runtime.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let ws = std::env::temp_dir().join(format!("execkit-doc-blocking-{}", std::process::id()));
//! # std::fs::create_dir_all(&ws)?;
//! use execkit_runner::blocking::BlockingSession;
//! let s = BlockingSession::builder().workspace(&ws).local()?;
//! let r = s.exec("echo hi", &Default::default())?;
//! assert_eq!(r.stdout, "hi\n");
//! # std::fs::remove_dir_all(&ws)?;
//! # Ok(()) }
//! ```

use crate::{
    ExecError, ExecOptions, ExecResult, Session, SessionBuilder, SessionConfig, SessionError,
    SessionInfo,
};

/// A [`Session`] with its own small runtime.
pub struct BlockingSession {
    session: Option<Session>,
    rt: tokio::runtime::Runtime,
}

/// [`SessionBuilder`] for a [`BlockingSession`].
#[must_use = "a builder does nothing until `local` is called"]
pub struct BlockingBuilder(SessionBuilder);

impl BlockingBuilder {
    /// Sets everything else through the async builder's methods.
    pub fn configure(self, f: impl FnOnce(SessionBuilder) -> SessionBuilder) -> Self {
        BlockingBuilder(f(self.0))
    }

    /// The agent's workspace (see [`SessionBuilder::workspace`]).
    pub fn workspace(self, path: impl Into<std::path::PathBuf>) -> Self {
        BlockingBuilder(self.0.workspace(path))
    }

    /// Policies from a directory (see [`SessionBuilder::policies`]).
    pub fn policies(self, dir: impl Into<std::path::PathBuf>) -> Self {
        BlockingBuilder(self.0.policies(dir))
    }

    /// The sandbox profile (see [`SessionBuilder::profile`]).
    pub fn profile(self, profile: crate::sandbox::Profile) -> Self {
        BlockingBuilder(self.0.profile(profile))
    }

    /// Starts the session.
    pub fn local(self) -> Result<BlockingSession, SessionError> {
        BlockingSession::local(self.0.build()?)
    }
}

impl BlockingSession {
    /// A builder, as [`Session::builder`].
    pub fn builder() -> BlockingBuilder {
        BlockingBuilder(SessionBuilder::new())
    }

    /// Starts a local session from a built configuration.
    pub fn local(config: SessionConfig) -> Result<BlockingSession, SessionError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SessionError::Spawn)?;
        let session = rt.block_on(Session::local(config))?;
        Ok(BlockingSession {
            session: Some(session),
            rt,
        })
    }

    /// Opens a session on an SSH host ([`Session::ssh`]).
    pub fn ssh(
        target: &crate::ssh::SshTarget,
        settings: &crate::ssh::SshSettings,
        config: SessionConfig,
    ) -> Result<BlockingSession, SessionError> {
        let rt = remote_runtime()?;
        let session = rt.block_on(Session::ssh(target, settings, config))?;
        Ok(BlockingSession {
            session: Some(session),
            rt,
        })
    }

    /// Opens a session in a Docker container ([`Session::docker`]).
    pub fn docker(
        target: &crate::docker::DockerTarget,
        settings: &crate::docker::DockerSettings,
        config: SessionConfig,
    ) -> Result<BlockingSession, SessionError> {
        let rt = remote_runtime()?;
        let session = rt.block_on(Session::docker(target, settings, config))?;
        Ok(BlockingSession {
            session: Some(session),
            rt,
        })
    }

    fn s(&self) -> Result<&Session, ExecError> {
        self.session.as_ref().ok_or(ExecError::Closed)
    }

    /// Runs one command (see [`Session::exec`]).
    pub fn exec(&self, command: &str, opts: &ExecOptions) -> Result<ExecResult, ExecError> {
        self.rt.block_on(self.s()?.exec(command, opts))
    }

    /// Starts a new shell in place of the old one, with its cwd and exported variables.
    pub fn restart(&self) -> Result<crate::RestartReport, SessionError> {
        match &self.session {
            Some(s) => self.rt.block_on(s.restart()),
            None => Err(SessionError::NotReady("the session is closed".into())),
        }
    }

    /// What the session is, or `None` once closed.
    pub fn info(&self) -> Option<SessionInfo> {
        self.session.as_ref().map(|s| self.rt.block_on(s.info()))
    }

    /// Ends the session.
    pub fn close(mut self) {
        if let Some(s) = self.session.take() {
            self.rt.block_on(s.close());
        }
    }
}

impl Drop for BlockingSession {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.rt.block_on(s.close());
        }
    }
}

/// A runtime for a remote session: one worker thread that keeps running between calls, so
/// the connection's keepalives and the helper's pings go on while the caller is busy
/// elsewhere (the helper ends a session it has not heard from in 90 s).
fn remote_runtime() -> Result<tokio::runtime::Runtime, SessionError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(SessionError::Spawn)
}
