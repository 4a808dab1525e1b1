//! The loaded policies with their conditions built once, evaluated as Cedar evaluates them.
//!
//! Cedar's authorizer rebuilds every policy's condition (the scope constraints and-ed with
//! the `when` and `unless` clauses, a tree of fresh allocations) for every request before
//! evaluating it; on a fresh decision that is about a tenth of the time. Here each
//! condition is built once, when the set loads, and each request evaluates the prebuilt
//! expressions with Cedar's own [`Evaluator`], so what a policy means is still decided by
//! Cedar. The combination is Cedar's too: a satisfied `forbid` denies, else a satisfied
//! `permit` allows, else the default deny; the determining policies are the satisfied
//! forbids if there is one, else the satisfied permits; a policy whose evaluation errors
//! is reported as an error (and the engine denies on any error).
//!
//! Each condition is also specialized once per action ([`crate::fold`]): the scope
//! constraints that the request's action already decides are folded away, so a request
//! evaluates only what depends on it. A folded condition is first given to
//! [`crate::quick_eval`], which answers what it can exactly as Cedar's evaluator would
//! (and never an error); Cedar's evaluator is built, once per request, only for the
//! conditions it leaves.
//!
//! The reference decision path keeps Cedar's `Authorizer`, and the differential test
//! (`tests/tests/oracle.rs`) checks both give the same verdicts and determining policies on
//! every case file entry and on fuzzed commands.

use crate::facts::Action;
use cedar_policy_core::ast::{
    Context, Effect, EntityUID, Expr, ExprKind, Literal, PolicyID, Request, SlotEnv, Value,
    ValueKind,
};
use cedar_policy_core::entities::Entities;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

/// One policy, ready to evaluate.
struct CompiledPolicy {
    id: PolicyID,
    effect: Effect,
    condition: Expr,
    /// The condition specialized for each action, in [`Action::ALL`] order.
    by_action: Vec<Expr>,
    /// Whether [`crate::quick_eval`] may answer each of `by_action`, and the unfolded
    /// condition (last).
    quick: Vec<bool>,
    slots: SlotEnv,
}

/// The loaded policies in the engine's order (index `i` is `Loaded::policies[i]`).
pub(crate) struct Compiled {
    policies: Vec<CompiledPolicy>,
    /// The uid of each action, in [`Action::ALL`] order.
    actions: Vec<EntityUID>,
}

fn action_index(a: Action) -> usize {
    Action::ALL.iter().position(|&x| x == a).unwrap_or(0)
}

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
    /// The policies `ids` name, looked up in `set`, their conditions folded per action
    /// over `store` (the loaded entities); `None` if one is missing (the engine then keeps
    /// Cedar's authorizer for every request).
    pub(crate) fn new<'a>(
        set: &cedar_policy::PolicySet,
        ids: impl Iterator<Item = &'a cedar_policy::PolicyId>,
        store: &cedar_policy::Entities,
    ) -> Option<Compiled> {
        let core: &cedar_policy_core::ast::PolicySet = set.as_ref();
        let folders = Action::ALL
            .iter()
            .map(|&a| crate::fold::Folder::new(a, store.as_ref()))
            .collect::<Option<Vec<_>>>()?;
        let policies = ids
            .map(|id| {
                core.get(id.as_ref()).map(|p| {
                    let condition = p.condition();
                    let by_action: Vec<Expr> = folders.iter().map(|f| f.fold(&condition)).collect();
                    let quick = by_action
                        .iter()
                        .chain([&condition])
                        .map(crate::quick_eval::may_decide)
                        .collect();
                    CompiledPolicy {
                        id: p.id().clone(),
                        effect: p.effect(),
                        by_action,
                        quick,
                        condition,
                        slots: p.env().clone(),
                    }
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let actions = Action::ALL
            .iter()
            .map(|&a| crate::load::action_uid(a).as_ref().clone())
            .collect();
        Some(Compiled { policies, actions })
    }

    /// Evaluates `request`, of `action`, against the policies `idx` (sorted, each at most
    /// once).
    pub(crate) fn evaluate(
        &self,
        request: &Request,
        action: Action,
        entities: &Entities,
        idx: &[usize],
    ) -> Outcome {
        let ai = action_index(action);
        // The folded conditions assume the request's action; on any other, the originals.
        let folded = request.action().uid() == self.actions.get(ai);
        let context = match request.context() {
            Some(Context::Value(map)) => Some(map.as_ref()),
            _ => None,
        };
        let seen = crate::quick_eval::Seen::default();
        // Cedar's evaluator, built for the first condition `quick_eval` leaves to it.
        let mut cedar: Option<Evaluator<'_>> = None;
        let mut permits = Vec::new();
        let mut forbids = Vec::new();
        let mut errors = Vec::new();
        for &i in idx {
            let Some(p) = self.policies.get(i) else {
                errors.push(format!("policy index {i} is not loaded"));
                continue;
            };
            let (condition, quick) = match p.by_action.get(ai) {
                Some(c) if folded => (c, p.quick.get(ai)),
                _ => (&p.condition, p.quick.last()),
            };
            if matches!(condition.expr_kind(), ExprKind::Lit(Literal::Bool(false))) {
                continue;
            }
            // What `quick_eval` answers is Cedar's answer, without an error.
            let known = match (context, quick) {
                (Some(context), Some(true)) => crate::quick_eval::decide(
                    condition,
                    crate::quick_eval::Subject {
                        request,
                        context,
                        entities,
                        seen: &seen,
                    },
                ),
                _ => None,
            };
            let value = match known {
                Some(b) => Ok(Value::from(b)),
                None => cedar
                    .get_or_insert_with(|| {
                        Evaluator::new(request.clone(), entities, Extensions::all_available())
                    })
                    .interpret(condition, &p.slots),
            };
            match value {
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
