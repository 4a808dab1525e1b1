//! A session's processes: the caps checked before a start, lookup, and the reaper that
//! enforces the operator's lifetime and idle TTL.

use super::state::{ProcessHandle, LIVE};
use super::{ProcessError, ProcessInfo, ProcessLimits};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often the reaper looks.
const REAP_EVERY: Duration = Duration::from_millis(500);

/// The processes of one session.
pub(crate) struct ProcessTable {
    procs: Mutex<Vec<ProcessHandle>>,
    limits: ProcessLimits,
}

impl ProcessTable {
    /// An empty table and its reaper (which ends when the table is dropped).
    pub fn new(limits: ProcessLimits) -> Arc<ProcessTable> {
        let t = Arc::new(ProcessTable {
            procs: Mutex::new(Vec::new()),
            limits,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(reaper(Arc::downgrade(&t)));
        }
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ProcessHandle>> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses a start past the session's or the server's cap.
    pub fn check_caps(&self) -> Result<(), ProcessError> {
        let running = self.lock().iter().filter(|p| !p.state().exited()).count();
        if running >= self.limits.per_session {
            return Err(ProcessError::Cap {
                running,
                cap: self.limits.per_session,
                scope: "per session",
            });
        }
        let live = LIVE.load(Ordering::SeqCst);
        if live >= self.limits.per_server {
            return Err(ProcessError::Cap {
                running: live,
                cap: self.limits.per_server,
                scope: "per server",
            });
        }
        Ok(())
    }

    /// Adds a started process.
    pub fn add(&self, p: ProcessHandle) {
        self.lock().push(p);
    }

    /// The process with this id.
    pub fn get(&self, id: &str) -> Result<ProcessHandle, ProcessError> {
        self.lock()
            .iter()
            .find(|p| p.id() == id)
            .cloned()
            .ok_or_else(|| ProcessError::Unknown(id.chars().take(64).collect()))
    }

    /// Every process still known.
    pub fn list(&self) -> Vec<ProcessInfo> {
        self.lock().iter().map(ProcessHandle::info).collect()
    }

    /// Every process still known, as handles.
    pub fn handles(&self) -> Vec<ProcessHandle> {
        self.lock().clone()
    }

    /// Kills every process group (closing the session) and forgets them.
    pub async fn kill_all(&self, reason: &str) {
        let all = std::mem::take(&mut *self.lock());
        for p in &all {
            if !p.done() {
                p.kill_now().await;
                p.audit_reaped(reason);
            }
        }
    }

    /// One reaper pass: terminates processes past their lifetime, forgets exited ones
    /// past the idle TTL.
    async fn reap(&self) {
        let now = std::time::Instant::now();
        let all = self.handles();
        for p in all {
            let over_lifetime = self.limits.max_lifetime.is_some_and(|l| p.age() > l);
            if over_lifetime && !p.state().exited() {
                p.audit_reaped("maximum lifetime reached");
                p.terminate().await;
            }
            let idle = p
                .exited_at()
                .is_some_and(|t| now.duration_since(t) > self.limits.idle_ttl);
            if idle && p.done() {
                p.audit_reaped("idle TTL after exit");
                self.lock().retain(|q| q.id() != p.id());
            }
        }
    }
}

async fn reaper(table: Weak<ProcessTable>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        let Some(t) = table.upgrade() else { return };
        t.reap().await;
    }
}
