//! The loaded policies with their conditions built once, evaluated by Cedar's evaluator.
//!
//! Cedar's authorizer rebuilds every policy's condition (the scope constraints and-ed with
//! the `when` and `unless` clauses, a tree of fresh allocations) for every request before
//! evaluating it; on a fresh decision that was about a tenth of the time. Here each
//! condition is built once, when the set loads, and each request evaluates the prebuilt
//! expressions with Cedar's own [`Evaluator`], so what a policy means is still decided by
//! Cedar. The combination is Cedar's too: a satisfied `forbid` denies, else a satisfied
//! `permit` allows, else the default deny; the determining policies are the satisfied
//! forbids if there is one, else the satisfied permits; a policy whose evaluation errors
//! is reported as an error (and the engine denies on any error).
//!
//! The reference decision path keeps Cedar's `Authorizer`, and the differential test
//! (`tests/tests/oracle.rs`) checks both give the same verdicts and determining policies on
//! every case file entry and on fuzzed commands.

use cedar_policy_core::ast::{Effect, Expr, Literal, PolicyID, Request, SlotEnv, ValueKind};
use cedar_policy_core::entities::Entities;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

/// One policy, ready to evaluate.
struct CompiledPolicy {
    id: PolicyID,
    effect: Effect,
    condition: Expr,
    slots: SlotEnv,
}

/// The loaded policies in the engine's order (index `i` is `Loaded::policies[i]`).
pub(crate) struct Compiled(Vec<CompiledPolicy>);

/// What evaluating one request against some policies gave.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Cedar's decision: a satisfied permit and no satisfied forbid.
    pub allow: bool,
    /// The determining policies (indices), in index order.
    pub determining: Vec<usize>,
    /// Evaluation errors, worded as Cedar's public API words them.
    pub errors: Vec<String>,
}

impl Compiled {
    /// The policies `ids` name, looked up in `set`; `None` if one is missing (the engine
    /// then keeps Cedar's authorizer for every request).
    pub(crate) fn new<'a>(
        set: &cedar_policy::PolicySet,
        ids: impl Iterator<Item = &'a cedar_policy::PolicyId>,
    ) -> Option<Compiled> {
        let core: &cedar_policy_core::ast::PolicySet = set.as_ref();
        ids.map(|id| {
            core.get(id.as_ref()).map(|p| CompiledPolicy {
                id: p.id().clone(),
                effect: p.effect(),
                condition: p.condition(),
                slots: p.env().clone(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .map(Compiled)
    }

    /// Evaluates `request` against the policies `idx` (sorted, each at most once).
    pub(crate) fn evaluate(
        &self,
        request: &Request,
        entities: &Entities,
        idx: &[usize],
    ) -> Outcome {
        let eval = Evaluator::new(request.clone(), entities, Extensions::all_available());
        let mut permits = Vec::new();
        let mut forbids = Vec::new();
        let mut errors = Vec::new();
        for &i in idx {
            let Some(p) = self.0.get(i) else {
                errors.push(format!("policy index {i} is not loaded"));
                continue;
            };
            match eval.interpret(&p.condition, &p.slots) {
                Ok(v) => match v.value_kind() {
                    ValueKind::Lit(Literal::Bool(true)) => match p.effect {
                        Effect::Permit => permits.push(i),
                        Effect::Forbid => forbids.push(i),
                    },
                    ValueKind::Lit(Literal::Bool(false)) => {}
                    // Strict validation makes every condition boolean; fail closed anyway.
                    _ => errors.push(format!(
                        "error while evaluating policy `{}`: the condition gave {v}, not a boolean",
                        p.id
                    )),
                },
                Err(e) => errors.push(format!("error while evaluating policy `{}`: {e}", p.id)),
            }
        }
        let allow = !permits.is_empty() && forbids.is_empty();
        Outcome {
            allow,
            determining: if forbids.is_empty() { permits } else { forbids },
            errors,
        }
    }
}
