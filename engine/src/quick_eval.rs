//! Conditions answered without Cedar's interpreter, exactly as Cedar answers them.
//!
//! Why: after the per-action folding, a request still evaluated ~7 conditions, and Cedar's
//! interpreter spends a few thousand instructions on each (a stack check, a cloned value
//! and often an allocation per node) around the few lookups that decide it; that
//! interpretive overhead is about two thirds of Cedar's share of a decision. [`decide`]
//! evaluates the part of Cedar's language the shipped policies and
//! most hand-written ones use, on the same request and the same entity store:
//!
//! - literals; `principal`, `action`, `resource`, `context`;
//! - `.attr` and `has attr` on records and on entities (looked up in the store);
//! - `==` (Cedar's value equality: values of different kinds are unequal, no error),
//!   `in` (an entity, or a set of entities, with Cedar's `eval_in`: equal or an ancestor in
//!   the store), `.contains(v)`, `.containsAny([literals])`, `is`, `like`;
//! - `!`, `isEmpty`, and `&&` / `||` left to right with Cedar's short-circuits.
//!
//! Anything else — a slot, `if`, arithmetic, a set or record built by the condition, an
//! extension function, a missing field or entity, an operand of the wrong type (each of
//! which Cedar evaluates to a value or to an error) — answers `None`, and Cedar's evaluator
//! takes the whole condition. So `Some(b)` is exactly what Cedar's evaluation returns,
//! `Ok(b)` without an error: `false && x` is false whatever `x` would do, because Cedar
//! never evaluates `x` either. The decision oracle (`tests/tests/oracle.rs`) compares the
//! fast path with Cedar's authorizer on every case file entry and on fuzzed commands, and
//! this module's tests compare [`decide`] with Cedar's evaluator on generated conditions,
//! contexts, requests and entity hierarchies.

use cedar_policy_core::ast::{
    BinaryOp, Entity, EntityUID, Expr, ExprKind, Literal, PartialValue, Request, UnaryOp, Value,
    ValueKind, Var,
};
use cedar_policy_core::entities::{Dereference, Entities};
use smol_str::SmolStr;
use std::collections::BTreeMap;

/// A request's context: Cedar's record of its fields.
pub(crate) type ContextRecord = BTreeMap<SmolStr, Value>;

/// Comparisons past which `contains` and `containsAny` are left to Cedar (they compare
/// element by element here; Cedar hashes).
const MAX_PAIRS: usize = 4096;

/// What a condition is evaluated against.
#[derive(Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub request: &'a Request,
    pub context: &'a ContextRecord,
    pub entities: &'a Entities,
    /// The entities this request's conditions looked up so far.
    pub seen: &'a Seen<'a>,
}

/// Entities looked up while evaluating one request's conditions, by the address of the
/// uid asked for: the same few (the principal, the resource, the cwd, the program) are
/// asked for by most conditions, and Cedar's store hashes a uid with SipHash on every
/// lookup. A uid at another address is looked up in the store (and remembered too).
///
/// It also holds the context's fields as a list, made at the first lookup: a context has
/// ~16 fields, and its tree's search compares names by their bytes (a `memcmp` call a
/// step, ~270 instructions a lookup and a dozen lookups a request), where the list is
/// walked comparing lengths first.
#[derive(Default)]
pub(crate) struct Seen<'a> {
    uids: std::cell::RefCell<Vec<(&'a EntityUID, Option<&'a Entity>)>>,
    fields: std::cell::OnceCell<Vec<(&'a str, &'a Value)>>,
}

/// Uids remembered per request at most.
const SEEN: usize = 8;

impl<'a> Seen<'a> {
    /// `uid`'s entity in `entities` (`None` if the store has none), `Err` for a residual.
    fn entity(&self, uid: &'a EntityUID, entities: &'a Entities) -> Result<Option<&'a Entity>, ()> {
        if let Ok(seen) = self.uids.try_borrow() {
            if let Some((_, e)) = seen.iter().find(|(u, _)| std::ptr::eq(*u, uid)) {
                return Ok(*e);
            }
            // The same uid at another address (a policy's literal, a context value):
            // comparing a few uids costs less than one SipHash of the store's lookup.
            if let Some((_, e)) = seen.iter().find(|(u, _)| *u == uid) {
                return Ok(*e);
            }
        }
        let found = match entities.entity(uid) {
            Dereference::Data(e) => Some(e),
            Dereference::NoSuchEntity => None,
            Dereference::Residual(_) => return Err(()),
        };
        if let Ok(mut seen) = self.uids.try_borrow_mut() {
            if seen.len() < SEEN {
                seen.push((uid, found));
            }
        }
        Ok(found)
    }

    /// The context's field `attr`, as `context.get(attr)` finds it.
    fn field(&self, context: &'a ContextRecord, attr: &str) -> Option<&'a Value> {
        self.fields
            .get_or_init(|| context.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .iter()
            .find(|(name, _)| name.len() == attr.len() && *name == attr)
            .map(|(_, v)| *v)
    }
}

/// What a sub-expression evaluated to, borrowed from the condition, the request or the
/// store.
#[derive(Clone, Copy)]
enum Known<'a> {
    /// The whole context record.
    Context,
    /// A value in the context or an entity attribute.
    Value(&'a Value),
    /// A literal of the condition.
    Lit(&'a Literal),
    /// The principal, action or resource.
    Uid(&'a EntityUID),
    /// The result of a boolean operator.
    Bool(bool),
}

/// A known value as `==` compares it.
enum Cmp<'a> {
    Bool(bool),
    Uid(&'a EntityUID),
    Lit(&'a Literal),
    Other(&'a Value),
}

impl<'a> Known<'a> {
    /// The boolean this is, `None` for any other type (Cedar's type error).
    fn as_bool(self) -> Option<bool> {
        match self.cmp()? {
            Cmp::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The entity this is, `None` for any other type.
    fn as_uid(self) -> Option<&'a EntityUID> {
        match self.cmp()? {
            Cmp::Uid(u) => Some(u),
            _ => None,
        }
    }

    /// The value, if this is a value of the context or the store.
    fn as_value(self) -> Option<&'a Value> {
        match self {
            Known::Value(v) => Some(v),
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

    /// This as `==` sees it (`None` for the whole context, never written in a policy).
    fn cmp(self) -> Option<Cmp<'a>> {
        let lit = |l: &'a Literal| match l {
            Literal::Bool(b) => Cmp::Bool(*b),
            Literal::EntityUID(u) => Cmp::Uid(u.as_ref()),
            other => Cmp::Lit(other),
        };
        Some(match self {
            Known::Context => return None,
            Known::Bool(b) => Cmp::Bool(b),
            Known::Uid(u) => Cmp::Uid(u),
            Known::Lit(l) => lit(l),
            Known::Value(v) => match v.value_kind() {
                ValueKind::Lit(l) => lit(l),
                _ => Cmp::Other(v),
            },
        })
    }
}

/// Cedar's `==`: equal values; values of different kinds are unequal.
fn equal(a: Known<'_>, b: Known<'_>) -> Option<bool> {
    Some(match (a.cmp()?, b.cmp()?) {
        (Cmp::Bool(x), Cmp::Bool(y)) => x == y,
        (Cmp::Uid(x), Cmp::Uid(y)) => x == y,
        (Cmp::Lit(x), Cmp::Lit(y)) => x == y,
        (Cmp::Other(x), Cmp::Other(y)) => x == y,
        _ => false,
    })
}

/// Whether a set's element equals a known value (Cedar's value equality).
fn element_is(v: &Value, k: Known<'_>) -> Option<bool> {
    equal(Known::Value(v), k)
}

/// Cedar's `in` (`eval_in`): `uid1` equals, or has as an ancestor in the store, the entity
/// `rhs` is or one of the entities the set `rhs` holds.
fn eval_in<'a>(uid1: &'a EntityUID, rhs: Known<'_>, s: Subject<'a>) -> Option<bool> {
    let entity1 = s.seen.entity(uid1, s.entities).ok()?;
    let within = |u2: &EntityUID| uid1 == u2 || entity1.is_some_and(|e| descends(e, u2));
    if let Some(u2) = rhs.as_uid() {
        return Some(within(u2));
    }
    match rhs.as_value()?.value_kind() {
        ValueKind::Set(set) => {
            // Every element must be an entity (else Cedar's type error), checked before
            // any answer, as Cedar collects them all first.
            let uids: Option<Vec<&EntityUID>> = set
                .iter()
                .map(|v| match v.value_kind() {
                    ValueKind::Lit(Literal::EntityUID(u)) => Some(u.as_ref()),
                    _ => None,
                })
                .collect();
            Some(uids?.into_iter().any(within))
        }
        _ => None,
    }
}

/// Ancestors compared one by one at most; past them Cedar's hashed sets answer.
const LINEAR_ANCESTORS: usize = 16;

/// Whether `uid` is among `e`'s ancestors, as [`Entity::is_descendant_of`] answers. That
/// hashes `uid` with SipHash twice (parents, then indirect ancestors), ~600 instructions;
/// most entities here have a handful of ancestors, and comparing uids is a few dozen each.
fn descends(e: &Entity, uid: &EntityUID) -> bool {
    for (i, a) in e.ancestors().enumerate() {
        if i == LINEAR_ANCESTORS {
            return e.is_descendant_of(uid);
        }
        if a == uid {
            return true;
        }
    }
    false
}

/// The literals a set written in the condition holds, if it holds nothing else.
fn literals(items: &[Expr]) -> Option<Vec<&Literal>> {
    items
        .iter()
        .map(|e| match e.expr_kind() {
            ExprKind::Lit(l) => Some(l),
            _ => None,
        })
        .collect()
}

/// `expr` evaluated where that is certain; `None` leaves it to Cedar.
fn eval<'a>(expr: &'a Expr, s: Subject<'a>) -> Option<Known<'a>> {
    match expr.expr_kind() {
        ExprKind::Lit(l) => Some(Known::Lit(l)),
        ExprKind::Var(Var::Context) => Some(Known::Context),
        ExprKind::Var(Var::Principal) => s.request.principal().uid().map(Known::Uid),
        ExprKind::Var(Var::Action) => s.request.action().uid().map(Known::Uid),
        ExprKind::Var(Var::Resource) => s.request.resource().uid().map(Known::Uid),
        ExprKind::GetAttr { expr, attr } => {
            let k = eval(expr, s)?;
            if let Known::Context = k {
                return s.seen.field(s.context, attr).map(Known::Value);
            }
            if let Some(r) = k.record(s.context) {
                return r.get(attr).map(Known::Value);
            }
            match s.seen.entity(k.as_uid()?, s.entities).ok()??.get(attr)? {
                PartialValue::Value(v) => Some(Known::Value(v)),
                PartialValue::Residual(_) => None,
            }
        }
        ExprKind::HasAttr { expr, attr } => {
            let k = eval(expr, s)?;
            if let Known::Context = k {
                return Some(Known::Bool(s.seen.field(s.context, attr).is_some()));
            }
            if let Some(r) = k.record(s.context) {
                return Some(Known::Bool(r.contains_key(attr)));
            }
            match s.seen.entity(k.as_uid()?, s.entities).ok()? {
                Some(e) => Some(Known::Bool(e.get(attr).is_some())),
                None => Some(Known::Bool(false)),
            }
        }
        ExprKind::And { left, right } => match eval(left, s)?.as_bool()? {
            false => Some(Known::Bool(false)),
            true => eval(right, s)?.as_bool().map(Known::Bool),
        },
        ExprKind::Or { left, right } => match eval(left, s)?.as_bool()? {
            true => Some(Known::Bool(true)),
            false => eval(right, s)?.as_bool().map(Known::Bool),
        },
        ExprKind::UnaryApp {
            op: UnaryOp::Not,
            arg,
        } => eval(arg, s)?.as_bool().map(|b| Known::Bool(!b)),
        ExprKind::UnaryApp {
            op: UnaryOp::IsEmpty,
            arg,
        } => match eval(arg, s)?.as_value()?.value_kind() {
            ValueKind::Set(set) => Some(Known::Bool(set.is_empty())),
            _ => None,
        },
        ExprKind::BinaryApp {
            op: BinaryOp::ContainsAny,
            arg1,
            arg2,
        } => {
            let set = match eval(arg1, s)?.as_value()?.value_kind() {
                ValueKind::Set(set) => set,
                _ => return None,
            };
            // Only a set of literals written in the condition (evaluating it cannot fail).
            let ExprKind::Set(items) = arg2.expr_kind() else {
                return None;
            };
            let lits = literals(items)?;
            if set.len().saturating_mul(lits.len()) > MAX_PAIRS {
                return None;
            }
            let mut any = false;
            for v in set.iter() {
                for l in &lits {
                    any |= element_is(v, Known::Lit(l))?;
                }
            }
            Some(Known::Bool(any))
        }
        ExprKind::BinaryApp {
            op: BinaryOp::In,
            arg1,
            arg2,
        } if matches!(arg2.expr_kind(), ExprKind::Set(_)) => {
            // `x in [E1, E2]` with entity literals (evaluating them cannot fail).
            let uid1 = eval(arg1, s)?.as_uid()?;
            let ExprKind::Set(items) = arg2.expr_kind() else {
                return None;
            };
            let mut any = false;
            for e in items.iter() {
                let ExprKind::Lit(l @ Literal::EntityUID(_)) = e.expr_kind() else {
                    return None;
                };
                any |= eval_in(uid1, Known::Lit(l), s)?;
            }
            Some(Known::Bool(any))
        }
        ExprKind::BinaryApp {
            op: BinaryOp::Contains,
            arg1,
            arg2,
        } if matches!(arg1.expr_kind(), ExprKind::Set(_)) => {
            // `[literals].contains(x)` (evaluating the literals cannot fail).
            let ExprKind::Set(items) = arg1.expr_kind() else {
                return None;
            };
            let lits = literals(items)?;
            let b = eval(arg2, s)?;
            let mut found = false;
            for l in lits {
                found |= equal(Known::Lit(l), b)?;
            }
            Some(Known::Bool(found))
        }
        ExprKind::BinaryApp { op, arg1, arg2 } => {
            // Cedar evaluates both operands, left first, before applying the operator.
            let a = eval(arg1, s)?;
            let b = eval(arg2, s)?;
            match op {
                BinaryOp::Eq => equal(a, b).map(Known::Bool),
                BinaryOp::In => eval_in(a.as_uid()?, b, s).map(Known::Bool),
                BinaryOp::Contains => match a.as_value()?.value_kind() {
                    ValueKind::Set(set) if set.len() <= MAX_PAIRS => {
                        let mut found = false;
                        for v in set.iter() {
                            found |= element_is(v, b)?;
                        }
                        Some(Known::Bool(found))
                    }
                    _ => None,
                },
                _ => None,
            }
        }
        ExprKind::Is { expr, entity_type } => {
            let u = eval(expr, s)?.as_uid()?;
            Some(Known::Bool(u.entity_type() == entity_type))
        }
        ExprKind::Like { expr, pattern } => match eval(expr, s)?.cmp()? {
            Cmp::Lit(Literal::String(text)) => Some(Known::Bool(pattern.wildcard_match(text))),
            _ => None,
        },
        _ => None,
    }
}

/// Whether [`decide`] can answer for `condition` at all: its first operands are of the
/// kinds it evaluates. Computed once per condition at load, so conditions it could never
/// answer are not walked for every request.
pub(crate) fn may_decide(condition: &Expr) -> bool {
    match condition.expr_kind() {
        ExprKind::Lit(_) | ExprKind::Var(_) => true,
        ExprKind::GetAttr { expr, .. }
        | ExprKind::HasAttr { expr, .. }
        | ExprKind::Is { expr, .. }
        | ExprKind::Like { expr, .. } => may_decide(expr),
        ExprKind::And { left, .. } | ExprKind::Or { left, .. } => may_decide(left),
        ExprKind::UnaryApp {
            op: UnaryOp::Not | UnaryOp::IsEmpty,
            arg,
        } => may_decide(arg),
        ExprKind::BinaryApp {
            op: BinaryOp::ContainsAny,
            arg1,
            ..
        } => may_decide(arg1),
        ExprKind::BinaryApp {
            op: BinaryOp::In,
            arg1,
            arg2,
        } if matches!(arg2.expr_kind(), ExprKind::Set(_)) => may_decide(arg1),
        ExprKind::BinaryApp {
            op: BinaryOp::Contains,
            arg1,
            arg2,
        } if matches!(arg1.expr_kind(), ExprKind::Set(_)) => may_decide(arg2),
        ExprKind::BinaryApp {
            op: BinaryOp::Eq | BinaryOp::In | BinaryOp::Contains,
            arg1,
            arg2,
        } => may_decide(arg1) && may_decide(arg2),
        _ => false,
    }
}

/// What Cedar's evaluation of `condition` for `subject` returns, when this module can
/// tell: `Some(b)` means Cedar gives `Ok(b)` (no error), `None` that Cedar must evaluate
/// it.
pub(crate) fn decide<'a>(condition: &'a Expr, subject: Subject<'a>) -> Option<bool> {
    eval(condition, subject)?.as_bool()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use cedar_policy_core::ast::{Context, RequestSchemaAllPass, SlotEnv};
    use cedar_policy_core::entities::{EntityJsonParser, NoEntitiesSchema, TCComputation};
    use cedar_policy_core::evaluator::Evaluator;
    use cedar_policy_core::extensions::Extensions;
    use proptest::prelude::*;
    use std::str::FromStr;
    use std::sync::Arc;

    /// A hierarchy like the engine's: an agent with a workspace, paths below it, a program
    /// in a group. `Path::"/gone"` is named (as a parent) but not defined.
    const STORE: &str = r#"[
      {"uid": {"type": "Agent", "id": "a"}, "parents": [{"type": "Group", "id": "g"}],
       "attrs": {"workspace": {"__entity": {"type": "Path", "id": "/w"}}, "kind": "agent"}},
      {"uid": {"type": "Path", "id": "/w"}, "parents": [{"type": "PathGroup", "id": "pg"}], "attrs": {}},
      {"uid": {"type": "Path", "id": "/w/x"}, "parents": [{"type": "Path", "id": "/w"}, {"type": "Path", "id": "/gone"}], "attrs": {}},
      {"uid": {"type": "Program", "id": "rm"}, "parents": [{"type": "ProgramGroup", "id": "destructive"}],
       "attrs": {"builtin": false}},
      {"uid": {"type": "PathGroup", "id": "pg"}, "parents": [], "attrs": {}}
    ]"#;

    fn store() -> Entities {
        let parser = EntityJsonParser::new(
            None::<&NoEntitiesSchema>,
            Extensions::all_available(),
            TCComputation::ComputeNow,
        );
        parser.from_json_str(STORE).expect("store parses")
    }

    fn parse_expr(text: &str) -> Result<Expr, String> {
        Expr::from_str(text).map_err(|e| e.to_string())
    }

    fn uid(text: &str) -> EntityUID {
        EntityUID::from_str(text).expect("uid parses")
    }

    fn request(resource: &str, ctx: &ContextRecord) -> Request {
        Request::new(
            (uid(r#"Agent::"a""#), None),
            (uid(r#"Action::"exec""#), None),
            (uid(resource), None),
            Context::Value(Arc::new(ctx.clone())),
            None::<&RequestSchemaAllPass>,
            Extensions::all_available(),
        )
        .expect("request")
    }

    /// Cedar's own evaluation of `condition`.
    fn cedar(condition: &Expr, r: &Request, store: &Entities) -> Result<Value, String> {
        let ev = Evaluator::new(r.clone(), store, Extensions::all_available());
        ev.interpret(condition, &SlotEnv::new())
            .map_err(|e| e.to_string())
    }

    /// Cedar's answer as a boolean, or its error.
    fn cedar_bool(condition: &Expr, r: &Request, store: &Entities) -> Result<bool, String> {
        match cedar(condition, r, store)?.value_kind() {
            ValueKind::Lit(Literal::Bool(b)) => Ok(*b),
            other => Err(format!("not a boolean: {other:?}")),
        }
    }

    /// A context shaped like the engine's: a flag record, a program, a cwd, a target,
    /// sets of strings and of entities.
    fn context(
        sudo: bool,
        program: &str,
        transport: &str,
        envs: &[&str],
        cwd: &str,
    ) -> ContextRecord {
        let text = format!(
            r#"{{"structure": {{"sudo": {sudo}, "dynamic_command": false, "depth": 2}},
                "program": Program::"{program}", "mode": "read", "cwd": Path::"{cwd}",
                "target": {{"transport": Transport::"{transport}"}},
                "env_assignments": [{}], "flags": ["-r", "-f"], "argc": 3,
                "could_be_in": [PathGroup::"pg"], "mixed": [PathGroup::"pg", "s"]}}"#,
            envs.iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let e = parse_expr(&text).expect("context parses");
        let r = request(r#"Program::"x""#, &ContextRecord::new());
        match cedar(&e, &r, &store()).expect("a record").value_kind() {
            ValueKind::Record(m) => m.as_ref().clone(),
            other => panic!("not a record: {other:?}"),
        }
    }

    /// `decide` on `text`, checked against Cedar whenever it answers.
    fn check(text: &str, resource: &str, ctx: &ContextRecord) -> Option<bool> {
        let e = parse_expr(text).expect("condition parses");
        let store = store();
        let r = request(resource, ctx);
        let seen = Seen::default();
        let s = Subject {
            request: &r,
            context: ctx,
            entities: &store,
            seen: &seen,
        };
        let ours = decide(&e, s);
        if let Some(b) = ours {
            assert!(may_decide(&e), "decided but not marked decidable: {text}");
            assert_eq!(cedar_bool(&e, &r, &store), Ok(b), "{text}");
        }
        ours
    }

    #[test]
    fn what_it_answers_is_cedars_answer_and_the_rest_is_left_to_cedar() {
        let local = context(false, "ls", "local", &[], "/w/x");
        let ssh = context(true, "rm", "ssh", &["PATH"], "/tmp");
        let res = r#"Path::"/w/x""#;
        for (text, on_local, on_ssh) in [
            ("context.structure.sudo", false, true),
            ("context.target.transport == Transport::\"ssh\" && context.argc == 3", false, true),
            ("(context.program == Program::\"rm\" && principal.kind == \"agent\") || context.program == Program::\"shred\"", false, true),
            ("!context.env_assignments.isEmpty() && context.env_assignments.containsAny([\"PATH\", \"X\"])", false, true),
            ("context has program && context.mode == \"read\"", true, true),
            ("context.structure has run_as", false, false),
            ("context.argc == \"3\"", false, false),
            ("context.structure == context.structure", true, true),
            ("context.cwd in principal.workspace || context.cwd in Path::\"/tmp\"", true, true),
            ("resource in principal.workspace && resource != principal.workspace", true, true),
            ("resource in PathGroup::\"pg\"", true, true),
            ("resource in [PathGroup::\"nope\", Path::\"/w\"]", true, true),
            ("context.program in ProgramGroup::\"destructive\"", false, true),
            ("context.could_be_in.contains(PathGroup::\"pg\")", true, true),
            ("context.flags.containsAny([\"-i\", \"-f\"])", true, true),
            ("context.flags.contains(\"-x\")", false, false),
            ("principal is Agent && resource is Path", true, true),
            ("principal in Group::\"g\"", true, true),
            ("principal has workspace && !(resource has workspace)", true, true),
            ("Path::\"/nope\" has x", false, false),
            ("context.mode like \"re*\"", true, true),
            ("[\"push\", \"read\"].contains(context.mode)", true, true),
            ("[1].contains(1)", true, true),
            ("true", true, true),
        ] {
            assert_eq!(check(text, res, &local), Some(on_local), "{text} on local");
            assert_eq!(check(text, res, &ssh), Some(on_ssh), "{text} on ssh");
        }
        // Left to Cedar: errors (missing fields and entities, wrong types), and what it
        // does not evaluate.
        for text in [
            "context.missing",
            "context.structure.missing && false",
            "context.argc && false",
            "context.program.attr",
            "Path::\"/nope\".x",
            "principal.nope",
            "resource in context.mixed",
            "context.argc in PathGroup::\"pg\"",
            "resource in context.argc",
            "context.argc.isEmpty()",
            "context.argc like \"3\"",
            "context.argc is Path",
            "context.argc has x",
            "context.flags.containsAny(context.flags)",
            "context.argc.contains(1)",
            "false || context.missing",
            "true && context.missing",
            "context.argc + 1 == 4",
            "if true then true else false",
            "[1, context.argc].contains(1)",
            "[1].contains(context.missing)",
            "resource in [Path::\"/w\", 3]",
        ] {
            assert_eq!(check(text, res, &local), None, "{text}");
        }
    }

    /// Conditions built from the kinds of expressions policies use, over fields that exist
    /// and fields that do not, values of every type, and entities in, out of and missing
    /// from the store.
    fn condition() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("context.structure.sudo"),
            Just("context.structure.depth"),
            Just("context.structure.nope"),
            Just("context.argc"),
            Just("context.mode"),
            Just("context.program"),
            Just("context.cwd"),
            Just("context.target"),
            Just("context.target.transport"),
            Just("context.env_assignments"),
            Just("context.env_assignments.isEmpty()"),
            Just("context.program.isEmpty()"),
            Just("context.flags"),
            Just("context.could_be_in"),
            Just("context.mixed"),
            Just("context has mode"),
            Just("context.target has host"),
            Just("context.program has builtin"),
            Just("context.program.builtin"),
            Just("principal"),
            Just("resource"),
            Just("principal.workspace"),
            Just("principal.kind"),
            Just("principal.nope"),
            Just("Path::\"/w\""),
            Just("Path::\"/gone\""),
            Just("PathGroup::\"pg\""),
            Just("ProgramGroup::\"destructive\""),
            Just("Group::\"g\""),
            Just("Program::\"rm\""),
            Just("Transport::\"ssh\""),
            Just("[PathGroup::\"pg\", Path::\"/w\"]"),
            Just("true"),
            Just("false"),
            Just("3"),
            Just("\"read\""),
            Just("\"-r\""),
        ]
        .prop_map(|l| format!("({l})"));
        leaf.prop_recursive(4, 24, 2, |inner| {
            // `(a OP b)` and `PRE a POST`, as (before, between, after) and (before, after).
            static BINARY: [(&str, &str, &str); 5] = [
                ("(", " && ", ")"),
                ("(", " || ", ")"),
                ("(", " == ", ")"),
                ("(", " in ", ")"),
                ("(", ".contains(", "))"),
            ];
            static UNARY: [(&str, &str); 10] = [
                ("(", ".containsAny([\"-r\", PathGroup::\"pg\", 3]))"),
                ("(", " in [PathGroup::\"nope\", Path::\"/w\"])"),
                ("(", " in [Path::\"/w\", 3])"),
                ("([\"read\", 3, Path::\"/w\"].contains(", "))"),
                ("([\"read\", context.mode].contains(", "))"),
                ("(", " is Path)"),
                ("(", " like \"re*\")"),
                ("(", " has workspace)"),
                ("(", ".workspace)"),
                ("(!", ")"),
            ];
            prop_oneof![
                5 => (inner.clone(), inner.clone(), proptest::sample::select(&BINARY[..]))
                    .prop_map(|(a, b, (pre, mid, post))| format!("{pre}{a}{mid}{b}{post}")),
                10 => (inner, proptest::sample::select(&UNARY[..]))
                    .prop_map(|(a, (pre, post))| format!("{pre}{a}{post}")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn whatever_decide_answers_cedar_answers(
            text in condition(),
            sudo in any::<bool>(),
            rm in any::<bool>(),
            ssh in any::<bool>(),
            env in any::<bool>(),
            cwd in prop_oneof![Just("/w"), Just("/w/x"), Just("/tmp"), Just("/gone")],
            resource in prop_oneof![
                Just(r#"Path::"/w/x""#), Just(r#"Path::"/w""#), Just(r#"Path::"/nope""#),
                Just(r#"Program::"rm""#), Just(r#"PathGroup::"pg""#),
            ],
        ) {
            let ctx = context(
                sudo,
                if rm { "rm" } else { "ls" },
                if ssh { "ssh" } else { "local" },
                if env { &["PATH"] } else { &[] },
                cwd,
            );
            let e = parse_expr(&text).expect("condition parses");
            let store = store();
            let r = request(resource, &ctx);
            let seen = Seen::default();
            let s = Subject { request: &r, context: &ctx, entities: &store, seen: &seen };
            if let Some(b) = decide(&e, s) {
                prop_assert!(may_decide(&e), "decided but not marked decidable: {}", text);
                prop_assert_eq!(cedar_bool(&e, &r, &store), Ok(b), "{}", text);
            }
        }
    }
}
