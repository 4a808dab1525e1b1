//! The server's open sessions: the cap, idle reaping and per-session serialization.
//!
//! A session runs one command at a time; calls that arrive together queue on the
//! session's `exec_lock` in arrival order. The lock is what makes a cancellation hit the
//! call it was meant for: while a call holds it, the command running is that call's.

use execkit_protect::Budget;
use execkit_runner::Session;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One open session.
pub struct Entry {
    /// The runner's session.
    pub session: Session,
    /// `local`.
    pub transport: &'static str,
    /// The workspace.
    pub workspace: PathBuf,
    /// The session's default budget.
    pub budget: Option<Budget>,
    /// When it was created.
    pub created: Instant,
    /// Held by the call whose command runs (or waits for approval).
    pub exec_lock: tokio::sync::Mutex<()>,
    /// The client asked about programs an `@ask` stops at their start.
    pub asks: Arc<super::runtime_asks::AskSlot>,
    /// The identity that created it (`None`: the stdio client); only it may use it.
    pub owner: Option<String>,
    activity: Mutex<Activity>,
}

struct Activity {
    last_used: Instant,
    running: Option<String>,
}

impl Entry {
    /// A new entry, just used.
    pub fn new(
        session: Session,
        transport: &'static str,
        workspace: PathBuf,
        budget: Option<Budget>,
        asks: Arc<super::runtime_asks::AskSlot>,
        owner: Option<String>,
    ) -> Entry {
        Entry {
            session,
            transport,
            workspace,
            budget,
            created: Instant::now(),
            exec_lock: tokio::sync::Mutex::new(()),
            asks,
            owner,
            activity: Mutex::new(Activity {
                last_used: Instant::now(),
                running: None,
            }),
        }
    }

    fn activity(&self) -> std::sync::MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a command (redacted text) as running, or none.
    pub fn set_running(&self, command: Option<String>) {
        let mut a = self.activity();
        a.running = command;
        a.last_used = Instant::now();
    }

    /// The running command, if any.
    pub fn running(&self) -> Option<String> {
        self.activity().running.clone()
    }

    /// Time since the last use.
    pub fn idle(&self) -> Duration {
        self.activity().last_used.elapsed()
    }

    /// Marks the session as used now.
    pub fn touch(&self) {
        self.activity().last_used = Instant::now();
    }
}

/// Why a session could not be added.
#[derive(Debug, thiserror::Error)]
#[error("the operator's limit of {max} open sessions{scope} is reached; destroy one with session_destroy (idle sessions are closed after {idle_ttl_secs} s)")]
pub struct Full {
    /// The cap.
    pub max: usize,
    /// `""` for the server's cap, `" per identity"` for one identity's.
    pub scope: &'static str,
    /// The idle TTL.
    pub idle_ttl_secs: u64,
}

/// The open sessions.
pub struct Table {
    inner: Mutex<Inner>,
    max: usize,
    idle_ttl: Duration,
}

struct Inner {
    entries: HashMap<String, Arc<Entry>>,
    /// Slots held by sessions being created, per owner.
    reserved: HashMap<Option<String>, usize>,
}

impl Inner {
    fn reserved_total(&self) -> usize {
        self.reserved.values().sum()
    }

    fn release(&mut self, owner: &Option<String>) {
        if let Some(n) = self.reserved.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.reserved.remove(owner);
            }
        }
    }
}

/// A slot held while a session starts; dropping it without [`Table::insert`] frees it.
pub struct Reservation<'a> {
    table: &'a Table,
    owner: Option<String>,
    used: bool,
}

impl Reservation<'_> {
    /// The identity the slot is held for.
    pub fn owner(&self) -> Option<String> {
        self.owner.clone()
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.table.lock().release(&self.owner);
        }
    }
}

impl Table {
    /// An empty table.
    pub fn new(max: usize, idle_ttl: Duration) -> Table {
        Table {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                reserved: HashMap::new(),
            }),
            max,
            idle_ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Holds a slot for a session `owner` is about to start, or says which cap is
    /// reached: the server's, or `per_owner` (the sessions one identity may have).
    pub fn reserve(&self, owner: Option<&str>, per_owner: usize) -> Result<Reservation<'_>, Full> {
        let mut g = self.lock();
        let full = |max, scope| Full {
            max,
            scope,
            idle_ttl_secs: self.idle_ttl.as_secs(),
        };
        if g.entries.len() + g.reserved_total() >= self.max {
            return Err(full(self.max, ""));
        }
        let owner = owner.map(str::to_string);
        let own = g.entries.values().filter(|e| e.owner == owner).count()
            + g.reserved.get(&owner).copied().unwrap_or(0);
        if own >= per_owner {
            return Err(full(per_owner, " per identity"));
        }
        *g.reserved.entry(owner.clone()).or_default() += 1;
        Ok(Reservation {
            table: self,
            owner,
            used: false,
        })
    }

    /// Adds a started session in its reserved slot.
    pub fn insert(&self, mut slot: Reservation<'_>, entry: Arc<Entry>) {
        slot.used = true;
        let mut g = self.lock();
        g.release(&slot.owner);
        g.entries.insert(entry.session.id().to_string(), entry);
    }

    /// The session with this id, marked as used now (so a call waiting for its turn is
    /// not reaped as idle).
    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        let e = self.lock().entries.get(id).cloned()?;
        e.touch();
        Some(e)
    }

    /// Removes a session (the caller closes it).
    pub fn remove(&self, id: &str) -> Option<Arc<Entry>> {
        self.lock().entries.remove(id)
    }

    /// All sessions, oldest first.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        let mut v: Vec<Arc<Entry>> = self.lock().entries.values().cloned().collect();
        v.sort_by_key(|e| e.created);
        v
    }

    /// Removes and returns the sessions idle longer than the TTL whose turn is free (no
    /// command running or waiting for approval).
    pub fn take_idle(&self) -> Vec<Arc<Entry>> {
        let mut g = self.lock();
        let idle: Vec<String> = g
            .entries
            .iter()
            .filter(|(_, e)| e.idle() >= self.idle_ttl && e.exec_lock.try_lock().is_ok())
            .map(|(id, _)| id.clone())
            .collect();
        idle.iter().filter_map(|id| g.entries.remove(id)).collect()
    }

    /// Removes every session (at shutdown).
    pub fn drain(&self) -> Vec<Arc<Entry>> {
        self.lock().entries.drain().map(|(_, e)| e).collect()
    }
}
