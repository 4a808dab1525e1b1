//! A policy's condition specialized for one action, before any request arrives.
//!
//! Why: Cedar's evaluator walks a policy's whole condition for every request, scope
//! included: on a fresh decision about half the time is spent there, ~60 ns a node, and a
//! condition like `deny-dynamic-command` has nine nodes of which one depends on the request
//! (`principal` → `true`, `action == Action::"exec"`, `resource` → `true`, the `&&`s and
//! their source locations, cloned and dropped at every node). The engine already evaluates
//! a request only against the policies of its action (`Engine::applicable_idx`), so for
//! each policy and action the condition can be rewritten once:
//!
//! - `action` becomes the action's literal uid (exact: a request of that action evaluates
//!   `action` to exactly that value);
//! - `principal is Agent` becomes `true` (every request's principal is built as an `Agent`
//!   by the engine, whatever the identity);
//! - a subexpression without variables, slots or unknowns that dereferences no entity but
//!   an action (`Action::"exec" == Action::"exec"`, `Action::"path_arg" in
//!   [Action::"write_path", Action::"path_arg"]`) is evaluated once, by Cedar's own
//!   evaluator over the loaded store; only a primitive literal result replaces it (an error
//!   or a set is left in place to happen, or be built, at run time). Entities a
//!   request creates (paths, programs, hosts, groups named in the configuration) are never
//!   dereferenced here, so no result depends on a request;
//! - `&&`, `||`, `!` and `if` with a literal operand are simplified: `false && x` is
//!   `false`, `true && x` is `x`, `x && true` is `x`, `true || x` is `true`, `false || x` is
//!   `x`, `x || false` is `x`. Dropping a `true &&` is exact because the engine loads only
//!   strict-validated policies, in which every operand of `&&`/`||` is a boolean (Cedar's
//!   validator is sound: a validated policy never meets a type error). `x && false` and
//!   `x || true` are kept: `x` could still raise an evaluation error, which must deny;
//! - source locations are dropped (only error messages used them, and the engine words
//!   its own).
//!
//! The reference decision path evaluates the original conditions with Cedar's authorizer,
//! and the differential test compares both paths' verdicts and determining policies on
//! every case file entry and on fuzzed commands.

use crate::facts::Action;
use cedar_policy_core::ast::{
    BinaryOp, Context, EntityType, EntityUID, Expr, ExprKind, Literal, Request, UnaryOp, Value,
    ValueKind, Var,
};
use cedar_policy_core::entities::Entities;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;
use std::collections::HashMap;

/// Rewrites conditions for one action (see the module docs).
pub(crate) struct Folder<'a> {
    action: EntityUID,
    agent: EntityType,
    eval: Evaluator<'a>,
}

impl<'a> Folder<'a> {
    /// A folder for requests of `action`, evaluating closed subexpressions over `store`
    /// (the loaded entities, which hold the schema's actions).
    pub(crate) fn new(action: Action, store: &'a Entities) -> Option<Folder<'a>> {
        let action: EntityUID = crate::load::action_uid(action).as_ref().clone();
        let agent: EntityType = "Agent".parse().ok()?;
        let dummy: EntityUID = r#"Agent::"(fold)""#.parse().ok()?;
        let request = Request::new_unchecked(
            cedar_policy_core::ast::EntityUIDEntry::known(dummy.clone(), None),
            cedar_policy_core::ast::EntityUIDEntry::known(action.clone(), None),
            cedar_policy_core::ast::EntityUIDEntry::known(dummy, None),
            Some(Context::empty()),
        );
        Some(Folder {
            action,
            agent,
            eval: Evaluator::new(request, store, Extensions::all_available()),
        })
    }

    /// `e` specialized for this folder's action, without source locations.
    pub(crate) fn fold(&self, e: &Expr) -> Expr {
        let folded = match e.expr_kind() {
            ExprKind::Lit(l) => Expr::val(l.clone()),
            ExprKind::Var(Var::Action) => Expr::val(self.action.clone()),
            ExprKind::Var(v) => Expr::var(*v),
            ExprKind::Slot(s) => Expr::slot(*s),
            ExprKind::Unknown(u) => Expr::unknown(u.clone()),
            ExprKind::If {
                test_expr,
                then_expr,
                else_expr,
            } => {
                let t = self.fold(test_expr);
                match as_bool(&t) {
                    Some(true) => return self.fold(then_expr),
                    Some(false) => return self.fold(else_expr),
                    None => Expr::ite(t, self.fold(then_expr), self.fold(else_expr)),
                }
            }
            ExprKind::And { left, right } => return self.fold_junction(left, right, false),
            ExprKind::Or { left, right } => return self.fold_junction(left, right, true),
            ExprKind::UnaryApp { op, arg } => {
                let a = self.fold(arg);
                match (op, as_bool(&a)) {
                    (UnaryOp::Not, Some(b)) => return Expr::val(!b),
                    _ => Expr::unary_app(*op, a),
                }
            }
            ExprKind::BinaryApp { op, arg1, arg2 } => {
                Expr::binary_app(*op, self.fold(arg1), self.fold(arg2))
            }
            ExprKind::ExtensionFunctionApp { fn_name, args } => Expr::call_extension_fn(
                fn_name.clone(),
                args.iter().map(|a| self.fold(a)).collect(),
            ),
            ExprKind::GetAttr { expr, attr } => Expr::get_attr(self.fold(expr), attr.clone()),
            ExprKind::HasAttr { expr, attr } => Expr::has_attr(self.fold(expr), attr.clone()),
            ExprKind::ExtHasAttr { expr, attrs } => {
                Expr::extended_has_attr(self.fold(expr), attrs.clone())
            }
            ExprKind::Like { expr, pattern } => Expr::like(self.fold(expr), pattern.clone()),
            ExprKind::Is { expr, entity_type } => {
                if matches!(expr.expr_kind(), ExprKind::Var(Var::Principal))
                    && *entity_type == self.agent
                {
                    return Expr::val(true);
                }
                Expr::is_entity_type(self.fold(expr), entity_type.clone())
            }
            ExprKind::Set(items) => Expr::set(items.iter().map(|i| self.fold(i))),
            ExprKind::Record(fields) => {
                let folded: Vec<_> = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.fold(v)))
                    .collect();
                match Expr::record(folded) {
                    Ok(r) => r,
                    // Keys come from a map, so they are distinct; keep the original anyway.
                    Err(_) => return e.clone(),
                }
            }
            // A kind this version does not know: left exactly as written.
            #[allow(unreachable_patterns)]
            _ => return e.clone(),
        };
        self.evaluate_closed(folded)
    }

    /// `left && right` (`absorbing` is `false`) or `left || right` (`true`), simplified:
    /// a left operand equal to `absorbing` decides it, one equal to the other value drops
    /// out. A right operand equal to `absorbing` is kept with the left, which may error.
    fn fold_junction(&self, left: &Expr, right: &Expr, absorbing: bool) -> Expr {
        let l = self.fold(left);
        if as_bool(&l) == Some(absorbing) {
            return Expr::val(absorbing);
        }
        let r = self.fold(right);
        match (as_bool(&l), as_bool(&r)) {
            (Some(b), _) if b != absorbing => r,
            (_, Some(b)) if b != absorbing => l,
            _ if absorbing => self.evaluate_closed(Expr::or(l, r)),
            _ => self.evaluate_closed(Expr::and(l, r)),
        }
    }

    /// `e` replaced by its value when it is closed, dereferences only actions and gives a
    /// primitive literal without error; otherwise `e` itself.
    fn evaluate_closed(&self, e: Expr) -> Expr {
        if matches!(e.expr_kind(), ExprKind::Lit(_)) || !closed_and_pure(&e) {
            return e;
        }
        match self.eval.interpret(&e, &HashMap::new()) {
            Ok(v) => match literal(v) {
                Some(l) => Expr::val(l),
                None => e,
            },
            Err(_) => e,
        }
    }
}

fn as_bool(e: &Expr) -> Option<bool> {
    match e.expr_kind() {
        ExprKind::Lit(Literal::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn literal(v: Value) -> Option<Literal> {
    match v.value_kind() {
        ValueKind::Lit(l) => Some(l.clone()),
        _ => None,
    }
}

/// No variable, slot or unknown, and no entity dereferenced except an action's: attribute
/// and tag access and `in` on anything but an action literal are refused, because a request
/// may create those entities (and their attributes and ancestors).
fn closed_and_pure(e: &Expr) -> bool {
    match e.expr_kind() {
        ExprKind::Lit(_) => true,
        ExprKind::Var(_) | ExprKind::Slot(_) | ExprKind::Unknown(_) => false,
        ExprKind::GetAttr { .. } | ExprKind::HasAttr { .. } | ExprKind::ExtHasAttr { .. } => false,
        ExprKind::BinaryApp { op, arg1, arg2 } => {
            let derefs = matches!(op, BinaryOp::In | BinaryOp::GetTag | BinaryOp::HasTag);
            (!derefs || is_action_literal(arg1)) && closed_and_pure(arg1) && closed_and_pure(arg2)
        }
        ExprKind::If {
            test_expr,
            then_expr,
            else_expr,
        } => closed_and_pure(test_expr) && closed_and_pure(then_expr) && closed_and_pure(else_expr),
        ExprKind::And { left, right } | ExprKind::Or { left, right } => {
            closed_and_pure(left) && closed_and_pure(right)
        }
        ExprKind::UnaryApp { arg, .. } => closed_and_pure(arg),
        ExprKind::ExtensionFunctionApp { args, .. } => args.iter().all(closed_and_pure),
        ExprKind::Like { expr, .. } | ExprKind::Is { expr, .. } => closed_and_pure(expr),
        ExprKind::Set(items) => items.iter().all(closed_and_pure),
        ExprKind::Record(fields) => fields.values().all(closed_and_pure),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

fn is_action_literal(e: &Expr) -> bool {
    match e.expr_kind() {
        ExprKind::Lit(Literal::EntityUID(u)) => u.entity_type().is_action(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn store() -> cedar_policy::Entities {
        let schema = cedar_policy::Schema::from_cedarschema_str(execkit_policies::SCHEMA)
            .unwrap()
            .0;
        cedar_policy::Entities::empty()
            .add_entities(schema.action_entities().unwrap(), None)
            .unwrap()
    }

    fn folded(action: Action, src: &str) -> String {
        let s = store();
        let f = Folder::new(action, s.as_ref()).unwrap();
        f.fold(&src.parse::<Expr>().unwrap()).to_string()
    }

    #[test]
    fn the_scope_folds_away_for_the_partitions_action() {
        let c = r#"true && action == Action::"exec" && true && context.structure.dynamic_command"#;
        assert_eq!(folded(Action::Exec, c), "context.structure.dynamic_command");
        assert_eq!(folded(Action::PathArg, c), "false");
        let c = r#"principal is Agent && action in Action::"filesystem" && resource in principal.workspace"#;
        assert_eq!(
            folded(Action::PathArg, c),
            "resource in principal.workspace"
        );
        assert_eq!(folded(Action::Exec, c), "false");
        let c = r#"action in [Action::"write_path", Action::"path_arg"] && context.x"#;
        assert_eq!(folded(Action::WritePath, c), "context.x");
        assert_eq!(folded(Action::Chdir, c), "false");
    }

    #[test]
    fn what_could_error_or_depends_on_a_request_is_kept() {
        // `x || true` and `x && false` keep `x`: it may error, and errors deny.
        assert_eq!(
            folded(Action::Exec, "context.a || true"),
            "context.a || true"
        );
        assert_eq!(
            folded(Action::Exec, "context.a && false"),
            "context.a && false"
        );
        // An overflow is left to happen at run time.
        assert_eq!(
            folded(Action::Exec, "9223372036854775807 + 1 > 0"),
            "!((9223372036854775807 + 1) <= 0)"
        );
        // `in` on entities a request may create is not evaluated here.
        assert_eq!(
            folded(Action::Exec, r#"Path::"/tmp/x" in Path::"/tmp""#),
            r#"Path::"/tmp/x" in Path::"/tmp""#
        );
        // `principal is` another type stays.
        assert_eq!(
            folded(Action::Exec, "principal is Operator"),
            "principal is Operator"
        );
        assert_eq!(folded(Action::Exec, "principal is Agent"), "true");
        // Closed arithmetic and comparisons fold.
        assert_eq!(
            folded(Action::Exec, r#"1 + 2 == 3 && "a" like "a*""#),
            "true"
        );
    }
}
