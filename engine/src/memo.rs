//! Decisions remembered for identical commands in identical environments.
//!
//! A decision is a pure function of the command text, the [`DecisionEnv`] (identity,
//! target, workspace, cwd, home and the live-session truths the runner looked up just
//! before) and the loaded policy set: parsing, fact extraction, entity building and Cedar
//! evaluation read nothing else. An engine holds one policy set for its life (another set
//! is another engine, with an empty memo), so it can answer the same pair again.
//! Agents repeat commands (`git status`, `cargo test`, `ls`) in the same directory all the
//! time. The key is the whole command and the whole environment, compared in full on a hit;
//! long commands are not remembered, and the memo is emptied when it fills.

use crate::context::DecisionEnv;
use crate::decision::Decision;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::RwLock;

/// Commands longer than this are decided every time (scripts rarely repeat).
const MAX_COMMAND: usize = 4096;

/// How many decisions the engine remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionMemo {
    /// None: every command is decided from scratch.
    Off,
    /// Up to this many (command, environment) pairs.
    Entries(usize),
}

impl Default for DecisionMemo {
    /// 1,024 entries.
    fn default() -> Self {
        DecisionMemo::Entries(1024)
    }
}

type Bucket = Vec<(String, DecisionEnv, Decision)>;

/// The remembered decisions.
#[derive(Default)]
pub(crate) struct Memo {
    hasher: std::collections::hash_map::RandomState,
    map: RwLock<(usize, HashMap<u64, Bucket>)>,
}

impl Memo {
    fn key(&self, command: &str, env: &DecisionEnv) -> u64 {
        let mut h = self.hasher.build_hasher();
        command.hash(&mut h);
        env.hash(&mut h);
        h.finish()
    }

    /// The remembered decision for exactly this command and environment.
    pub fn get(&self, command: &str, env: &DecisionEnv) -> Option<Decision> {
        if command.len() > MAX_COMMAND {
            return None;
        }
        let k = self.key(command, env);
        let m = self.map.read().ok()?;
        m.1.get(&k)?
            .iter()
            .find(|(c, e, _)| c == command && e == env)
            .map(|(_, _, d)| d.clone())
    }

    /// Remembers `decision` for this command and environment, within `limit` entries.
    pub fn put(&self, command: &str, env: &DecisionEnv, decision: &Decision, limit: usize) {
        if command.len() > MAX_COMMAND || limit == 0 {
            return;
        }
        let k = self.key(command, env);
        if let Ok(mut m) = self.map.write() {
            if m.0 >= limit {
                m.1.clear();
                m.0 = 0;
            }
            let bucket = m.1.entry(k).or_default();
            if bucket.iter().any(|(c, e, _)| c == command && e == env) {
                return;
            }
            bucket.push((command.to_string(), env.clone(), decision.clone()));
            m.0 += 1;
        }
    }
}
