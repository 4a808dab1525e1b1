//! The exec oracle: run a command for real in a throwaway sandbox, trace what it does, and
//! compare that with the facts the grammar predicted.
//!
//! The policy can only judge what the facts name. Over SSH and Docker there is no kernel
//! sandbox behind it, so every effect a command has that no fact names is a hole. Reading
//! code finds some of them; this finds the rest by machine: an `execve` of a program with
//! no exec fact, a write to a path with no path fact, or a network connection with no
//! connect fact is a [`Divergence`], printed with the trace line that shows it. Effects a
//! program has on its own (git's helpers, a compiler's temporary files) are declared in
//! `implicit.toml`, never ignored silently.
//!
//! Needs `bwrap` (bubblewrap) and `strace`, and root or unprivileged user namespaces.

mod compare;
mod effects;
mod strace;
mod throwaway;

pub use compare::{Divergence, Implicit, Predicted};
pub use effects::{Effect, Observed};

use execkit_engine::{Decision, DecisionEnv};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use thiserror::Error;

/// Why the oracle could not run a command.
#[derive(Debug, Error)]
pub enum OracleError {
    /// A tool is missing or the environment cannot be built.
    #[error("exec oracle: {0}")]
    Setup(String),
    /// A file operation failed.
    #[error("exec oracle: {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The command's directory cannot exist in the throwaway root.
    #[error("exec oracle: cannot start in `{0}` (only the workspace, the home, /tmp and read-only host directories exist there)")]
    Unplaceable(String),
}

impl OracleError {
    fn io(path: &Path, source: std::io::Error) -> OracleError {
        OracleError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// What a traced run showed.
#[derive(Debug)]
pub struct Report {
    /// Every effect observed, in order.
    pub observed: Vec<Observed>,
    /// The effects no fact predicted.
    pub divergences: Vec<Divergence>,
    /// What the facts predicted.
    pub predicted: Predicted,
    /// The shell's exit code (`None` when killed).
    pub exit: Option<i32>,
    /// True if the run hit the time limit and was killed.
    pub timed_out: bool,
    /// The start of the command's output (stdout and stderr).
    pub output: String,
    /// Trace lines the parser could not read (each may hide an effect).
    pub unreadable: Vec<String>,
}

/// A throwaway sandbox with its fixture workspace, ready to trace commands.
pub struct Oracle {
    fixture: throwaway::Scratch,
    implicit: Implicit,
    limit: Duration,
}

fn tool_works(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Oracle {
    /// Checks that `bwrap` and `strace` run, and writes the fixture workspace; each run
    /// is killed after `limit`.
    pub fn new(limit: Duration) -> Result<Oracle, OracleError> {
        for (tool, arg, package) in [
            ("bwrap", "--version", "bubblewrap"),
            ("strace", "-V", "strace"),
        ] {
            if !tool_works(tool, arg) {
                return Err(OracleError::Setup(format!(
                    "`{tool}` is not installed or does not run (apt install {package})"
                )));
            }
        }
        let fixture = throwaway::Scratch::new()?;
        throwaway::write_fixture(fixture.path())?;
        Ok(Oracle {
            fixture,
            implicit: Implicit::shipped()?,
            limit,
        })
    }

    /// Runs `command` as `env` places it (workspace, home, cwd) and compares its effects
    /// with `decision`'s facts. The command runs whatever the decision was: the sandbox
    /// is where a denied command can be looked at safely.
    pub fn trace(
        &self,
        command: &str,
        decision: &Decision,
        env: &DecisionEnv,
    ) -> Result<Report, OracleError> {
        let cwd = env.cwd.clone().unwrap_or_else(|| env.workspace.clone());
        let in_workspace = cwd == env.workspace || cwd.starts_with(&format!("{}/", env.workspace));
        let at = throwaway::Placement {
            workspace: &env.workspace,
            home: &env.home,
            cwd: &cwd,
        };
        let fixture = if in_workspace && cwd != env.workspace {
            // A subdirectory of the workspace: give this run a fixture that has it.
            let copy = throwaway::Scratch::new()?;
            throwaway::copy_tree(self.fixture.path(), copy.path())?;
            let sub = copy.path().join(&cwd[env.workspace.len() + 1..]);
            std::fs::create_dir_all(&sub).map_err(|e| OracleError::io(&sub, e))?;
            Some(copy)
        } else {
            None
        };
        let in_tmp = cwd.starts_with("/tmp/");
        if !in_workspace && !in_tmp && cwd != env.home && !Path::new(&cwd).is_dir() {
            return Err(OracleError::Unplaceable(cwd));
        }
        let fixture_path = fixture.as_ref().map_or(self.fixture.path(), |f| f.path());
        let run = throwaway::run(command, fixture_path, &at, self.limit)?;
        let (calls, bad) = strace::parse(&run.trace);
        let observed = effects::effects(&calls, throwaway::SHELL, &cwd);
        let predicted = Predicted::of(decision);
        let divergences = compare::divergences(
            &observed,
            &predicted,
            &self.implicit,
            &compare::Where {
                workspace: &env.workspace,
                home: &env.home,
                cwd: &cwd,
            },
        );
        Ok(Report {
            observed,
            divergences,
            predicted,
            exit: run.exit,
            timed_out: run.timed_out,
            output: run.output,
            unreadable: bad.into_iter().map(|b| b.line).collect(),
        })
    }
}
