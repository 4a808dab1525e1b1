//! Conditions the request's context decides on its own, answered before Cedar's evaluator.
//!
//! Why: on a typical command about half the (already per-action folded) conditions a
//! request evaluates are false because of one context field — `context.structure.sudo`,
//! `context.target.transport == Transport::"ssh" && …`, `context.program ==
//! Program::"rm" && …`, `!context.env_assignments.isEmpty() && …` — and Cedar's evaluator
//! spends a few thousand instructions on each (a stack check, a cloned value and an
//! allocation per node). [`decide`] evaluates the small part of Cedar it knows directly on
//! the context record:
//!
//! - literals, the `context` variable, `.attr` and `has attr` on records,
//! - `==` (Cedar's own value equality: values of different types are unequal, no error),
//! - `!`, `isEmpty`, and `&&` / `||` left to right with Cedar's short-circuits.
//!
//! Anything else — another variable, an entity's attribute, `in`, a slot, a missing field,
//! an operand of the wrong type (each of which Cedar would evaluate to a value or to an
//! error) — answers `None`, and Cedar evaluates the condition as before. So `Some(b)` is
//! exactly what Cedar's evaluation returns, `Ok(b)` without an error: `false && x` is false
//! whatever `x` would do, because Cedar never evaluates `x` either. The decision oracle
//! (`tests/tests/oracle.rs`) compares the fast path with Cedar's authorizer on every case
//! file entry and on fuzzed commands, and this module's tests compare [`decide`] with
//! Cedar's evaluator on generated conditions and contexts.

use cedar_policy_core::ast::{BinaryOp, Expr, ExprKind, Literal, UnaryOp, Value, ValueKind, Var};
use smol_str::SmolStr;
use std::collections::BTreeMap;

/// A request's context: Cedar's record of its fields.
pub(crate) type ContextRecord = BTreeMap<SmolStr, Value>;

/// What a sub-expression evaluated to, borrowed from the condition or the context.
#[derive(Clone, Copy)]
enum Known<'a> {
    /// The whole context record.
    Context,
    /// A value in the context.
    Value(&'a Value),
    /// A literal of the condition.
    Lit(&'a Literal),
    /// The result of a boolean operator.
    Bool(bool),
}

impl<'a> Known<'a> {
    /// The boolean this is, `None` for any other type (Cedar's type error).
    fn as_bool(self) -> Option<bool> {
        match self {
            Known::Bool(b) => Some(b),
            Known::Lit(Literal::Bool(b)) => Some(*b),
            Known::Value(v) => match v.value_kind() {
                ValueKind::Lit(Literal::Bool(b)) => Some(*b),
                _ => None,
            },
            _ => None,
        }
    }

    /// The fields, if this is a record.
    fn record(self, ctx: &'a ContextRecord) -> Option<&'a ContextRecord> {
        match self {
            Known::Context => Some(ctx),
            Known::Value(v) => match v.value_kind() {
                ValueKind::Record(r) => Some(r.as_ref()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The literal a known value is, if it is one (records and sets are not).
fn literal<'a>(k: Known<'a>, owned: &'a mut Option<Literal>) -> Option<&'a Literal> {
    match k {
        Known::Lit(l) => Some(l),
        Known::Value(v) => match v.value_kind() {
            ValueKind::Lit(l) => Some(l),
            _ => None,
        },
        Known::Bool(b) => Some(owned.insert(Literal::Bool(b))),
        Known::Context => None,
    }
}

/// Cedar's `==`: equal values; values of different kinds are unequal. `None` when one
/// side is the whole context (never written in a policy; left to Cedar).
fn equal(a: Known<'_>, b: Known<'_>) -> Option<bool> {
    if let (Known::Value(x), Known::Value(y)) = (a, b) {
        return Some(x == y);
    }
    if matches!(a, Known::Context) || matches!(b, Known::Context) {
        return None;
    }
    let (mut oa, mut ob) = (None, None);
    match (literal(a, &mut oa), literal(b, &mut ob)) {
        (Some(x), Some(y)) => Some(x == y),
        // A literal against a set or a record.
        _ => Some(false),
    }
}

/// `expr` evaluated on `ctx` where that is certain; `None` leaves it to Cedar.
fn eval<'a>(expr: &'a Expr, ctx: &'a ContextRecord) -> Option<Known<'a>> {
    match expr.expr_kind() {
        ExprKind::Lit(l) => Some(Known::Lit(l)),
        ExprKind::Var(Var::Context) => Some(Known::Context),
        ExprKind::GetAttr { expr, attr } => {
            eval(expr, ctx)?.record(ctx)?.get(attr).map(Known::Value)
        }
        ExprKind::HasAttr { expr, attr } => Some(Known::Bool(
            eval(expr, ctx)?.record(ctx)?.contains_key(attr),
        )),
        ExprKind::And { left, right } => match eval(left, ctx)?.as_bool()? {
            false => Some(Known::Bool(false)),
            true => eval(right, ctx)?.as_bool().map(Known::Bool),
        },
        ExprKind::Or { left, right } => match eval(left, ctx)?.as_bool()? {
            true => Some(Known::Bool(true)),
            false => eval(right, ctx)?.as_bool().map(Known::Bool),
        },
        ExprKind::UnaryApp {
            op: UnaryOp::Not,
            arg,
        } => eval(arg, ctx)?.as_bool().map(|b| Known::Bool(!b)),
        ExprKind::UnaryApp {
            op: UnaryOp::IsEmpty,
            arg,
        } => match eval(arg, ctx)? {
            Known::Value(v) => match v.value_kind() {
                ValueKind::Set(s) => Some(Known::Bool(s.is_empty())),
                _ => None,
            },
            _ => None,
        },
        ExprKind::BinaryApp {
            op: BinaryOp::Eq,
            arg1,
            arg2,
        } => {
            let a = eval(arg1, ctx)?;
            let b = eval(arg2, ctx)?;
            equal(a, b).map(Known::Bool)
        }
        _ => None,
    }
}

/// Whether [`decide`] can answer for `condition` on some context: its first operands are
/// of the kinds it evaluates. Computed once per condition at load, so the conditions that
/// begin with `resource in …` or `principal …` are not walked for every request.
pub(crate) fn may_decide(condition: &Expr) -> bool {
    match condition.expr_kind() {
        ExprKind::Lit(_) | ExprKind::Var(Var::Context) => true,
        ExprKind::GetAttr { expr, .. } | ExprKind::HasAttr { expr, .. } => may_decide(expr),
        ExprKind::And { left, .. } | ExprKind::Or { left, .. } => may_decide(left),
        ExprKind::UnaryApp {
            op: UnaryOp::Not | UnaryOp::IsEmpty,
            arg,
        } => may_decide(arg),
        ExprKind::BinaryApp {
            op: BinaryOp::Eq,
            arg1,
            arg2,
        } => may_decide(arg1) && may_decide(arg2),
        _ => false,
    }
}

/// What Cedar's evaluation of `condition` with context `ctx` returns, when the context
/// alone decides it: `Some(b)` means Cedar gives `Ok(b)` (no error), `None` that Cedar must
/// evaluate it.
pub(crate) fn decide(condition: &Expr, ctx: &ContextRecord) -> Option<bool> {
    eval(condition, ctx)?.as_bool()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use cedar_policy_core::ast::{Context, EntityUID, Request, RequestSchemaAllPass, SlotEnv};
    use cedar_policy_core::entities::Entities;
    use cedar_policy_core::evaluator::Evaluator;
    use cedar_policy_core::extensions::Extensions;
    use proptest::prelude::*;
    use std::str::FromStr;
    use std::sync::Arc;

    fn parse_expr(text: &str) -> Result<Expr, String> {
        Expr::from_str(text).map_err(|e| e.to_string())
    }

    /// Cedar's own evaluation of `condition` with context `ctx`.
    fn cedar(condition: &Expr, ctx: &ContextRecord) -> Result<Value, String> {
        let uid = |t: &str| EntityUID::with_eid_and_type(t, "x").expect("uid");
        let r = Request::new(
            (uid("Agent"), None),
            (uid("Action"), None),
            (uid("Program"), None),
            Context::Value(Arc::new(ctx.clone())),
            None::<&RequestSchemaAllPass>,
            Extensions::all_available(),
        )
        .expect("request");
        let store = Entities::new();
        let ev = Evaluator::new(r, &store, Extensions::all_available());
        ev.interpret(condition, &SlotEnv::new())
            .map_err(|e| e.to_string())
    }

    /// Cedar's answer as a boolean, or its error.
    fn cedar_bool(condition: &Expr, ctx: &ContextRecord) -> Result<bool, String> {
        match cedar(condition, ctx)?.value_kind() {
            ValueKind::Lit(Literal::Bool(b)) => Ok(*b),
            other => Err(format!("not a boolean: {other:?}")),
        }
    }

    /// A context shaped like the engine's: a flag record, a program, a target, sets.
    fn context(sudo: bool, program: &str, transport: &str, envs: &[&str]) -> ContextRecord {
        let text = format!(
            r#"{{"structure": {{"sudo": {sudo}, "dynamic_command": false, "depth": 2}},
                "program": Program::"{program}", "mode": "read",
                "target": {{"transport": Transport::"{transport}"}},
                "env_assignments": [{}], "argc": 3}}"#,
            envs.iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let e = parse_expr(&text).expect("context parses");
        match cedar(&e, &ContextRecord::new())
            .expect("a record")
            .value_kind()
        {
            ValueKind::Record(m) => m.as_ref().clone(),
            other => panic!("not a record: {other:?}"),
        }
    }

    fn check(text: &str, ctx: &ContextRecord) -> Option<bool> {
        let e = parse_expr(text).expect("condition parses");
        let ours = decide(&e, ctx);
        if let Some(b) = ours {
            assert_eq!(cedar_bool(&e, ctx), Ok(b), "{text}");
        }
        ours
    }

    #[test]
    fn the_context_decides_what_it_can_and_leaves_the_rest_to_cedar() {
        let local = context(false, "ls", "local", &[]);
        let ssh = context(true, "rm", "ssh", &["PATH"]);
        // Decided, as Cedar decides.
        for (text, on_local, on_ssh) in [
            ("context.structure.sudo", false, true),
            ("context.target.transport == Transport::\"ssh\" && resource in Group::\"g\"", false, false),
            ("context.program == Program::\"rm\" && context.argc > 2", false, false),
            ("(context.program == Program::\"rm\" && principal.x) || context.program == Program::\"shred\"", false, false),
            ("!context.env_assignments.isEmpty() && context.env_assignments.containsAny([\"X\"])", false, false),
            ("context has program && context.mode == \"read\"", true, true),
            ("context.structure has run_as", false, false),
            ("context.argc == \"3\"", false, false),
            ("context.structure == context.structure", true, true),
            ("true", true, true),
        ] {
            // Where the first operand alone does not decide, the rest may be Cedar's.
            let l = check(text, &local);
            let s = check(text, &ssh);
            if l.is_some() {
                assert_eq!(l, Some(on_local), "{text} on local");
            }
            if s.is_some() {
                assert_eq!(s, Some(on_ssh), "{text} on ssh");
            }
        }
        assert_eq!(check("context.structure.sudo", &local), Some(false));
        assert_eq!(
            check(
                "context.target.transport == Transport::\"ssh\" && resource in Group::\"g\"",
                &local
            ),
            Some(false)
        );
        assert_eq!(
            check(
                "context.target.transport == Transport::\"ssh\" && resource in Group::\"g\"",
                &ssh
            ),
            None,
            "true && (in): Cedar decides"
        );
        // Left to Cedar: errors, other variables, entity attributes, `in`.
        for text in [
            "context.missing",
            "context.structure.missing && false",
            "context.argc && false",
            "context.program.attr",
            "principal == principal",
            "resource in Group::\"g\"",
            "context.structure.depth",
            "!context.argc",
            "context.argc.isEmpty()",
            "context.program has x",
            "false || context.missing",
            "true && context.missing",
        ] {
            assert_eq!(check(text, &local), None, "{text}");
        }
    }

    /// Generated conditions over the context's fields (including missing ones and wrong
    /// types): whenever `decide` answers, Cedar's evaluator gives that answer and no error.
    fn condition() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("context.structure.sudo".to_string()),
            Just("context.structure.dynamic_command".to_string()),
            Just("context.structure.depth".to_string()),
            Just("context.structure.nope".to_string()),
            Just("context.argc".to_string()),
            Just("context.mode".to_string()),
            Just("context.program".to_string()),
            Just("context.target".to_string()),
            Just("context.target.transport".to_string()),
            Just("context.env_assignments".to_string()),
            Just("context.env_assignments.isEmpty()".to_string()),
            Just("context.program.isEmpty()".to_string()),
            Just("context has mode".to_string()),
            Just("context.target has host".to_string()),
            Just("context.program has x".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            Just("3".to_string()),
            Just("\"read\"".to_string()),
            Just("Program::\"rm\"".to_string()),
            Just("Transport::\"ssh\"".to_string()),
            Just("principal".to_string()),
            Just("resource in Group::\"g\"".to_string()),
        ]
        .prop_map(|l| format!("({l})"));
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} == {b})")),
                inner.clone().prop_map(|a| format!("(!{a})")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn whatever_decide_answers_cedar_answers(
            text in condition(),
            sudo in any::<bool>(),
            rm in any::<bool>(),
            ssh in any::<bool>(),
            env in any::<bool>(),
        ) {
            let ctx = context(
                sudo,
                if rm { "rm" } else { "ls" },
                if ssh { "ssh" } else { "local" },
                if env { &["PATH"] } else { &[] },
            );
            let e = parse_expr(&text).expect("condition parses");
            if let Some(b) = decide(&e, &ctx) {
                prop_assert!(may_decide(&e), "decided but not marked decidable: {}", text);
                prop_assert_eq!(cedar_bool(&e, &ctx), Ok(b), "{}", text);
            }
        }
    }
}
