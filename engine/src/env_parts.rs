//! What a decision's environment contributes to its requests, built once per environment.
//!
//! Why: rebuilding the principal, its operator and groups, the workspace and cwd paths,
//! the target host and the `identity`/`target` context records from the [`DecisionEnv`]
//! for every decision, and adding them to a copy of the loaded store with their
//! transitive closure, costs about a sixth of a simple command's decision. They
//! depend only on the identity, the target, the workspace, the cwd and the home
//! directory, which a session changes rarely (the cwd on `cd`). The fast path keeps the
//! last [`SLOTS`] environments' parts: the store with those entities added and closed, and
//! what the request builder needs to know about them.
//!
//! The store is exact for the same reason `new_entities::add_fast` is: a command's
//! entities are added on top of it with their closure computed from the store's (already
//! closed) ancestors, unless one of them defines a parent that an entity of the store names
//! without it being defined ([`EnvParts::dangling`], e.g. `Path::"/"`, the parent of the
//! workspace path), in which case Cedar recomputes the whole closure. The reference path
//! builds everything for every decision; the differential test compares both.

use crate::context::{DecisionEnv, Identity, Target};
use crate::fast_hash::{FastMap, FastSet};
use cedar_policy::{Entities, EntityUid};
use cedar_policy_core::ast::{EntityUID, Value};
use std::sync::{Arc, RwLock};

/// How many environments are remembered (a server's concurrent sessions each have one).
const SLOTS: usize = 64;
/// Environments whose workspace, cwd and home together are longer are built for every
/// decision instead of remembered: a path's entities grow with the square of its depth,
/// and an agent can `cd` deep.
const MAX_PATHS: usize = 4096;

/// The environment's entities and context records (see the module docs).
pub(crate) struct EnvParts {
    /// The loaded store with the environment's entities added, closure computed.
    pub store: Entities,
    /// Parents named in `store` but not defined there.
    pub dangling: FastSet<EntityUID>,
    /// The uids of the environment's entities.
    pub seen: FastSet<EntityUid>,
    /// Partition keys (the uid and its ancestors) of the environment's resources.
    pub keys: FastMap<EntityUid, Arc<[EntityUid]>>,
    pub identity: Value,
    pub target: Value,
    pub principal: EntityUid,
    pub record_shape: u64,
}

/// The fields of a [`DecisionEnv`] the parts depend on.
struct EnvKey {
    identity: Identity,
    target: Target,
    workspace: String,
    cwd: Option<String>,
    home: String,
}

impl EnvKey {
    fn matches(&self, env: &DecisionEnv) -> bool {
        self.identity == env.identity
            && self.target == env.target
            && self.workspace == env.workspace
            && self.cwd == env.cwd
            && self.home == env.home
    }

    fn of(env: &DecisionEnv) -> EnvKey {
        EnvKey {
            identity: env.identity.clone(),
            target: env.target.clone(),
            workspace: env.workspace.clone(),
            cwd: env.cwd.clone(),
            home: env.home.clone(),
        }
    }
}

/// The remembered environments, most recent last.
#[derive(Default)]
pub(crate) struct EnvCache {
    slots: RwLock<Vec<(EnvKey, Arc<EnvParts>)>>,
}

impl EnvCache {
    /// The parts of `env`, built with `build` when they are not remembered. `None` when
    /// `build` fails or the environment is too large to remember (the caller then builds
    /// everything itself, and meets the same error).
    pub(crate) fn get_or_build(
        &self,
        env: &DecisionEnv,
        build: impl FnOnce() -> Option<EnvParts>,
    ) -> Option<Arc<EnvParts>> {
        let paths = env.workspace.len() + env.home.len() + env.cwd.as_ref().map_or(0, String::len);
        if paths > MAX_PATHS {
            return None;
        }
        if let Ok(slots) = self.slots.read() {
            if let Some((_, p)) = slots.iter().rev().find(|(k, _)| k.matches(env)) {
                return Some(p.clone());
            }
        }
        let parts = Arc::new(build()?);
        if let Ok(mut slots) = self.slots.write() {
            if slots.len() >= SLOTS {
                slots.remove(0);
            }
            slots.push((EnvKey::of(env), parts.clone()));
        }
        Some(parts)
    }
}
