//! What a decision says: the overall verdict and, for every fact, why.

use crate::facts::Action;
use serde::{Deserialize, Serialize};

/// The outcome of authorizing a command or a single fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Every fact is permitted.
    Allow,
    /// Permitted, but a permit carrying `@ask` applies: a human must confirm. Callers that
    /// cannot ask must treat this as [`Verdict::Deny`].
    Ask,
    /// At least one fact is denied (or the command could not be parsed).
    Deny,
}

impl Verdict {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Ask => "ask",
            Verdict::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a policy permits or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Effect {
    /// `permit(...)`.
    Permit,
    /// `forbid(...)`.
    Forbid,
    /// Cedar named a policy the engine did not load (never expected; reported, not trusted).
    Unknown,
}

impl Effect {
    /// `permit`, `forbid` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Permit => "permit",
            Effect::Forbid => "forbid",
            Effect::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy that determined a fact's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyHit {
    /// Policy id (from `@id`).
    pub id: String,
    /// Permit or forbid.
    pub effect: Effect,
    /// `@advice`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// `@severity`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// True if the policy carries `@ask`.
    pub ask: bool,
    /// True if the policy carries `@checkpoint`: the runner checkpoints the workspace
    /// before running a command it permits.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub checkpoint: bool,
}

impl Decision {
    /// A decision that could not be asked: deny, with why (as its `parse_error`).
    pub fn refused(why: impl Into<String>) -> Decision {
        Decision {
            verdict: Verdict::Deny,
            parse_error: Some(why.into()),
            entity_error: None,
            commands: 0,
            facts: Vec::new(),
        }
    }

    /// The ids of the permitting policies that ask for a checkpoint before the command
    /// runs (`@checkpoint`), on facts that are allowed.
    pub fn checkpoint_policies(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .facts
            .iter()
            .filter(|f| f.verdict != Verdict::Deny)
            .flat_map(|f| f.policies.iter())
            .filter(|p| p.checkpoint && p.effect == Effect::Permit)
            .map(|p| p.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// One fact and its decision.
#[derive(Debug, Clone, Serialize)]
pub struct FactDecision {
    /// The Cedar action.
    pub action: Action,
    /// The Cedar resource, e.g. `Program::"rm"` or `Path::"/etc/passwd"`.
    pub resource: String,
    /// Program of the command the fact belongs to.
    pub program: String,
    /// The command text the fact came from (shared by the command's facts).
    pub command: std::sync::Arc<str>,
    /// How the fact relates to the command (`exec`, `arg`, `write`, `chdir`, `connect`, ...).
    pub mode: &'static str,
    /// The word as written, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub raw: String,
    /// The cwd this fact assumed (absent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// This fact's verdict.
    pub verdict: Verdict,
    /// Policies that determined it (forbids for a denial, permits for an allow).
    pub policies: Vec<PolicyHit>,
    /// Evaluation errors (any error denies).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// One-line human explanation.
    pub reason: String,
    /// Policies whose scope matched and whose conditions held for this fact's request,
    /// determining or not (filled only in coverage mode, see `Engine::set_coverage`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub satisfied: Vec<String>,
}

/// The decision on a whole command line.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Decision {
    /// Overall verdict: Deny if any fact is denied, else Ask if any asks, else Allow.
    pub verdict: Verdict,
    /// The script could not be parsed (the verdict is then Deny).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// The entities for the requests could not be built (the verdict is then Deny).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_error: Option<String>,
    /// Number of simple commands found.
    pub commands: usize,
    /// Every fact, in source order.
    pub facts: Vec<FactDecision>,
}

impl Decision {
    /// Facts that were not allowed (denied or needing approval).
    pub fn blocking(&self) -> impl Iterator<Item = &FactDecision> {
        self.facts.iter().filter(|f| f.verdict != Verdict::Allow)
    }

    /// Ids of the policies that determined the non-allowed facts.
    pub fn blocking_policy_ids(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .blocking()
            .flat_map(|f| f.policies.iter().map(|p| p.id.as_str()))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}
