//! A blocking wrapper for callers without an async runtime.
//!
//! ```no_run
//! # fn demo(engine: std::sync::Arc<execkit_engine::Engine>) -> Result<(), Box<dyn std::error::Error>> {
//! use execkit_runner::{blocking::BlockingSession, ExecOptions, SessionConfig};
//! let s = BlockingSession::local(SessionConfig::new("/work/project", engine))?;
//! let r = s.exec("echo hi", &ExecOptions::default())?;
//! assert_eq!(r.stdout, "hi\n");
//! # Ok(()) }
//! ```

use crate::{
    ExecError, ExecOptions, ExecResult, Session, SessionConfig, SessionError, SessionInfo,
};

/// A [`Session`] with its own small runtime.
pub struct BlockingSession {
    session: Option<Session>,
    rt: tokio::runtime::Runtime,
}

impl BlockingSession {
    /// Starts a local session.
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

    fn s(&self) -> &Session {
        self.session.as_ref().expect("session present until drop")
    }

    /// Runs one command.
    pub fn exec(&self, command: &str, opts: &ExecOptions) -> Result<ExecResult, ExecError> {
        self.rt.block_on(self.s().exec(command, opts))
    }

    /// Starts a new shell after the old one ended.
    pub fn restart(&self) -> Result<(), SessionError> {
        self.rt.block_on(self.s().restart())
    }

    /// What the session is.
    pub fn info(&self) -> SessionInfo {
        self.rt.block_on(self.s().info())
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
