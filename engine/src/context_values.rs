//! Two ways to build a request's context, behind one trait.
//!
//! Why: built through the public API, about two thirds of a fresh decision is spent in
//! `Context::from_pairs`, which re-evaluates every restricted expression (the
//! 17-field `structure` record, `identity`, `target`, every argument set) for every fact.
//! [`Direct`] builds Cedar's values themselves (`cedar-policy-core`, pinned to the exact
//! version `cedar-policy` uses) so the shared records are built once per decision and only
//! cloned (reference-counted) per fact. [`Restricted`] is the public-API way, kept as the
//! reference path: the differential oracle (`same_on_both_paths`) checks that both give the
//! same verdicts and determining policies on every case file entry and on fuzzed commands.

use cedar_policy::{Context, EntityUid, RestrictedExpression};
use cedar_policy_core::ast::{Context as CoreContext, Literal, Value};
use smol_str::SmolStr;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a context could not be built (the request is then denied).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextBuildError {
    /// Cedar refused the context.
    #[error(transparent)]
    Cedar(#[from] Box<cedar_policy::ContextCreationError>),
    /// The same key twice (a programming error, denied rather than trusted).
    #[error("duplicate context key `{0}`")]
    DuplicateKey(String),
}

/// A way to build context values and the context itself.
pub(crate) trait ContextValues {
    /// The fast path: it also adds a request's entities without recomputing the store's
    /// closure (`new_entities::add_fast`); the reference path lets Cedar do it.
    const FAST: bool;
    /// One value.
    type V: Clone;
    /// A string.
    fn string(v: &str) -> Self::V;
    /// A string the caller already holds shared: the fast path shares its allocation
    /// instead of copying it. Every command hidden in one command's words (`awk
    /// 'system(…)'`, `find -exec`) carries that command's whole text as `raw`; copied, a
    /// script at the command limit would copy it thousands of times.
    fn shared_string(v: &Arc<str>) -> Self::V {
        Self::string(v)
    }
    /// A boolean.
    fn boolean(v: bool) -> Self::V;
    /// A long (saturating).
    fn long(v: i64) -> Self::V;
    /// An entity reference.
    fn entity(u: &EntityUid) -> Self::V;
    /// A set.
    fn set(items: Vec<Self::V>) -> Self::V;
    /// A record with fixed field names (distinct by construction), listed in key order
    /// (any order is correct; in order is cheapest, and debug builds check it).
    fn record(fields: Vec<(&'static str, Self::V)>) -> Self::V;
    /// The context, its pairs listed in key order (as for `record`).
    fn context(pairs: Vec<(&'static str, Self::V)>) -> Result<Context, ContextBuildError>;
    /// A value of the fast path's kind, if this is that kind (the environment's remembered
    /// records, see `env_parts`).
    fn from_direct(v: &Value) -> Option<Self::V>;

    /// A set of strings.
    fn strings<'a, S: AsRef<str> + ?Sized + 'a>(items: impl IntoIterator<Item = &'a S>) -> Self::V {
        Self::set(
            items
                .into_iter()
                .map(|v| Self::string(v.as_ref()))
                .collect(),
        )
    }
    /// A count as a long.
    fn count(v: usize) -> Self::V {
        Self::long(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// Cedar's public API: restricted expressions, evaluated by `Context::from_pairs`.
pub(crate) struct Restricted;

impl ContextValues for Restricted {
    const FAST: bool = false;
    type V = RestrictedExpression;
    fn string(v: &str) -> Self::V {
        RestrictedExpression::new_string(v.to_string())
    }
    fn boolean(v: bool) -> Self::V {
        RestrictedExpression::new_bool(v)
    }
    fn long(v: i64) -> Self::V {
        RestrictedExpression::new_long(v)
    }
    fn entity(u: &EntityUid) -> Self::V {
        RestrictedExpression::new_entity_uid(u.clone())
    }
    fn set(items: Vec<Self::V>) -> Self::V {
        RestrictedExpression::new_set(items)
    }
    fn record(fields: Vec<(&'static str, Self::V)>) -> Self::V {
        RestrictedExpression::new_record(fields.into_iter().map(|(k, v)| (k.to_string(), v)))
            .unwrap_or_else(|_| unreachable!("field names are fixed and distinct"))
    }
    fn from_direct(_: &Value) -> Option<Self::V> {
        None
    }
    fn context(pairs: Vec<(&'static str, Self::V)>) -> Result<Context, ContextBuildError> {
        Ok(
            Context::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_string(), v)))
                .map_err(Box::new)?,
        )
    }
}

/// Cedar's values, built directly (no evaluation).
pub(crate) struct Direct;

impl ContextValues for Direct {
    const FAST: bool = true;
    type V = Value;
    fn string(v: &str) -> Self::V {
        Value::from(Literal::String(SmolStr::new(v)))
    }
    fn shared_string(v: &Arc<str>) -> Self::V {
        Value::from(Literal::String(SmolStr::from(Arc::clone(v))))
    }
    fn boolean(v: bool) -> Self::V {
        Value::from(Literal::Bool(v))
    }
    fn long(v: i64) -> Self::V {
        Value::from(Literal::Long(v))
    }
    fn entity(u: &EntityUid) -> Self::V {
        let core: &cedar_policy_core::ast::EntityUID = u.as_ref();
        Value::from(Literal::EntityUID(Arc::new(core.clone())))
    }
    fn set(items: Vec<Self::V>) -> Self::V {
        if items.is_empty() {
            // Most sets of a request are empty (no env assignments, no redirects, no
            // wrappers...): one shared empty set instead of two new collections each.
            thread_local! {
                static EMPTY: Value = Value::set(Vec::new(), None);
            }
            return EMPTY.with(Value::clone);
        }
        Value::set(items, None)
    }
    fn record(fields: Vec<(&'static str, Self::V)>) -> Self::V {
        let map = sorted_map(fields)
            .unwrap_or_else(|k| unreachable!("field names are fixed and distinct: {k}"));
        Value::record_arc(Arc::new(map), None)
    }
    fn from_direct(v: &Value) -> Option<Self::V> {
        Some(v.clone())
    }
    fn context(pairs: Vec<(&'static str, Self::V)>) -> Result<Context, ContextBuildError> {
        let map =
            templated_map(pairs).map_err(|k| ContextBuildError::DuplicateKey(k.to_string()))?;
        Ok(Context::from(CoreContext::Value(map)))
    }
}

/// Context maps remembered per thread as templates, at most.
const TEMPLATES: usize = 32;

/// A context's keys, in order, and the map last built with them: while a request holds it
/// the map has that request's values; after [`recycle`] only placeholders.
struct Template {
    keys: Vec<&'static str>,
    map: Arc<BTreeMap<SmolStr, Value>>,
    /// The map holds a request's values (not yet recycled).
    filled: bool,
}

thread_local! {
    /// One map per key list seen (a request shape).
    static CONTEXT_TEMPLATES: std::cell::RefCell<Vec<Template>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A map of `fields` like [`sorted_map`], reusing the map built before on this thread with
/// the same keys. Why: a context has 10 to 17 fields; collecting them into a `BTreeMap`
/// sorts them again, deduplicates through a peeking iterator and moves each entry several
/// times, and freeing the map after the request walks and frees every node again — about
/// a tenth of a decision. A map whose request has ended (see [`recycle`]) only
/// gets the new values put in place in key order; one still held by a request is copied
/// (and the template follows the copy). The keys are compared in full before a template
/// is used.
fn templated_map(
    mut fields: Vec<(&'static str, Value)>,
) -> Result<Arc<BTreeMap<SmolStr, Value>>, &'static str> {
    // A template's keys are in order and distinct: fields with the same keys, in the same
    // order, are too. The same literal is usually at the same address.
    let same_keys = |keys: &[&'static str], fields: &[(&'static str, Value)]| {
        keys.len() == fields.len()
            && keys
                .iter()
                .zip(fields)
                .all(|(a, (b, _))| std::ptr::eq(*a, *b) || a == b)
    };
    let reused = CONTEXT_TEMPLATES.with(|t| {
        let mut t = t.try_borrow_mut().ok()?;
        let i = t.iter().position(|tp| same_keys(&tp.keys, &fields))?;
        // Still held by a request: a copy, which the template follows from now on.
        let map = Arc::make_mut(&mut t[i].map);
        // Both in key order, the same keys: each value goes to its own key.
        for ((_, v), (_, new)) in map.iter_mut().zip(fields.drain(..)) {
            *v = new;
        }
        t[i].filled = true;
        Some(Arc::clone(&t[i].map))
    });
    if let Some(map) = reused {
        return Ok(map);
    }
    if !fields.is_sorted_by_key(|(k, _)| *k) {
        fields.sort_by_key(|(k, _)| *k);
    }
    if let Some(w) = fields.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(w[0].0);
    }
    let keys: Vec<&'static str> = fields.iter().map(|(k, _)| *k).collect();
    let map = Arc::new(sorted_map(fields)?);
    CONTEXT_TEMPLATES.with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            if t.len() < TEMPLATES {
                t.push(Template {
                    keys,
                    map: Arc::clone(&map),
                    filled: true,
                });
            }
        }
    });
    Ok(map)
}

/// Ends the requests whose contexts were built on this thread: each filled template's
/// map gets placeholders instead of a request's values, so that a template never keeps an
/// agent's (possibly large) command text alive, and is ready for the next request of its
/// shape. A map some request still holds is let go instead (the next request of its shape
/// copies it). Call after the request is dropped; see [`RecycleContext`].
pub(crate) fn recycle() {
    CONTEXT_TEMPLATES.with(|t| {
        let Ok(mut t) = t.try_borrow_mut() else {
            return;
        };
        for tp in t.iter_mut().filter(|tp| tp.filled) {
            tp.filled = false;
            // A map still held is copied, and the copy (not the holder's) cleared.
            for v in Arc::make_mut(&mut tp.map).values_mut() {
                *v = Value::from(false);
            }
        }
    });
}

/// Calls [`recycle`] when dropped: declared before the request it follows, it runs after
/// the request is dropped, on every way out of the scope.
pub(crate) struct RecycleContext;

impl Drop for RecycleContext {
    fn drop(&mut self) {
        recycle();
    }
}

/// A map of `fields` built in one pass from sorted keys (a `BTreeMap` collected from a
/// sorted vector is built bottom-up; inserting one key at a time searched and split nodes
/// for each), or the key given twice.
fn sorted_map(
    mut fields: Vec<(&'static str, Value)>,
) -> Result<BTreeMap<SmolStr, Value>, &'static str> {
    // Sorting what is already in order takes one comparison per key: callers list their
    // keys in order (checked in debug builds), the sort keeps any other order correct.
    debug_assert!(fields.is_sorted_by_key(|(k, _)| *k), "keys in order");
    fields.sort_by_key(|(k, _)| *k);
    if let Some(w) = fields.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(w[0].0);
    }
    Ok(fields
        .into_iter()
        .map(|(k, v)| (SmolStr::new_static(k), v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy_core::ast::ValueKind;
    use std::str::FromStr;

    fn both(pairs: impl Fn() -> Vec<(&'static str, bool)>) -> (Context, Context) {
        let r = Restricted::context(
            pairs()
                .into_iter()
                .map(|(k, v)| (k, Restricted::boolean(v)))
                .collect(),
        );
        let d = Direct::context(
            pairs()
                .into_iter()
                .map(|(k, v)| (k, Direct::boolean(v)))
                .collect(),
        );
        (r.expect("restricted"), d.expect("direct"))
    }

    #[test]
    fn both_ways_build_equal_contexts() {
        let u = EntityUid::from_str(r#"Path::"/work/a b""#).expect("uid");
        let build = |s: &str| -> (Context, Context) {
            // Keys in order, as the engine lists them (debug builds check it).
            let r = Restricted::context(vec![
                ("e", Restricted::entity(&u)),
                ("n", Restricted::count(usize::MAX)),
                (
                    "r",
                    Restricted::record(vec![
                        ("empty", Restricted::set(Vec::new())),
                        ("neg", Restricted::long(-3)),
                        (
                            "set",
                            Restricted::strings(&["b".to_string(), "a".to_string()]),
                        ),
                    ]),
                ),
                ("s", Restricted::string(s)),
            ]);
            let d = Direct::context(vec![
                ("e", Direct::entity(&u)),
                ("n", Direct::count(usize::MAX)),
                (
                    "r",
                    Direct::record(vec![
                        ("empty", Direct::set(Vec::new())),
                        ("neg", Direct::long(-3)),
                        ("set", Direct::strings(&["b".to_string(), "a".to_string()])),
                    ]),
                ),
                ("s", Direct::string(s)),
            ]);
            (r.expect("restricted"), d.expect("direct"))
        };
        for s in ["", "plain", "quo\"te\\ and \u{1F600} and \0 nul"] {
            let (r, d) = build(s);
            assert_eq!(r, d, "for {s:?}");
        }
        let (r, d) = both(|| vec![("f", false), ("t", true)]);
        assert_eq!(r, d);
    }

    #[test]
    fn a_context_from_a_template_equals_one_built_from_scratch() {
        // The same keys again (a reused map), other keys, keys out of order, other values,
        // maps still held by a request when the next one is built and maps recycled
        // first: each equals the map collected directly, and a held map keeps its own
        // values.
        let shapes: [&[&'static str]; 4] = [
            &["argc", "cwd", "flags", "raw"],
            &["argc", "cwd", "flags", "raw"],
            &["cwd", "mode", "program"],
            &["raw", "argc", "cwd", "flags"],
        ];
        let mut held = Vec::new();
        for round in 0..4i64 {
            for (i, keys) in shapes.iter().enumerate() {
                let fields = || -> Vec<(&'static str, Value)> {
                    keys.iter()
                        .enumerate()
                        .map(|(j, k)| (*k, Direct::long(round * 100 + (i * 10 + j) as i64)))
                        .collect()
                };
                let mut sorted = fields();
                sorted.sort_by_key(|(k, _)| *k);
                let expected: BTreeMap<SmolStr, Value> = sorted
                    .into_iter()
                    .map(|(k, v)| (SmolStr::new_static(k), v))
                    .collect();
                let map = templated_map(fields()).unwrap();
                assert_eq!(*map, expected, "{keys:?}");
                match round {
                    // Held across the next builds (as several built requests would be).
                    0 | 2 => held.push((map, expected)),
                    // Recycled as an evaluation ends.
                    _ => {
                        drop(map);
                        recycle();
                    }
                }
            }
        }
        for (map, expected) in &held {
            assert_eq!(
                **map, *expected,
                "a held map was changed by a later request"
            );
        }
        assert_eq!(
            templated_map(vec![
                ("k", Direct::boolean(true)),
                ("k", Direct::boolean(false))
            ]),
            Err("k")
        );
    }

    /// The values the template for `keys` keeps on this thread.
    fn template_values(keys: &[&str]) -> Vec<Value> {
        CONTEXT_TEMPLATES.with(|t| {
            t.borrow()
                .iter()
                .find(|tp| tp.keys == keys)
                .map(|tp| tp.map.values().cloned().collect())
                .unwrap()
        })
    }

    #[test]
    fn a_shared_string_is_not_copied_and_not_kept() {
        // The fast path shares a command's text with its `raw` value (one allocation for
        // every command hidden in it); the reference path copies. Equal either way, and
        // nothing holds the text once the request's values are gone.
        let text: Arc<str> = Arc::from("awk 'system(x)' ".repeat(64));
        let shared = Direct::shared_string(&text);
        assert_eq!(shared, Direct::string(&text));
        let ValueKind::Lit(Literal::String(held)) = shared.value_kind() else {
            panic!("not a string: {shared:?}")
        };
        assert_eq!(held.as_ptr(), text.as_ptr(), "the text was copied");
        assert_eq!(Arc::strong_count(&text), 2);
        {
            let _end = RecycleContext;
            let map =
                templated_map(vec![("a_big_raw", shared), ("b_other", Direct::long(7))]).unwrap();
            assert_eq!(map.get("a_big_raw"), Some(&Direct::string(&text)));
        }
        assert_eq!(Arc::strong_count(&text), 1, "a template kept the text");
        // Short texts live inline; still equal.
        let short: Arc<str> = Arc::from("ls");
        assert_eq!(Direct::shared_string(&short), Direct::string("ls"));
    }

    #[test]
    fn a_template_keeps_no_value_of_the_request_it_came_from() {
        // An agent's 1 MiB command must not stay alive in a per-thread template once its
        // request has ended, whether the map was new, reused, or still held at the end.
        let big = "x".repeat(1 << 20);
        let keys = ["a_big_raw", "b_other"];
        let fields = || {
            vec![
                ("a_big_raw", Direct::string(&big)),
                ("b_other", Direct::long(7)),
            ]
        };
        let placeholders = vec![Value::from(false), Value::from(false)];
        for _ in 0..2 {
            let _end = RecycleContext;
            let map = templated_map(fields()).unwrap();
            assert_eq!(map.get("a_big_raw"), Some(&Direct::string(&big)));
            drop(map);
        }
        assert_eq!(template_values(&keys), placeholders);
        // Still held when its evaluation ends: the template lets the map go.
        let held = templated_map(fields()).unwrap();
        recycle();
        assert_eq!(template_values(&keys), placeholders);
        assert_eq!(held.get("a_big_raw"), Some(&Direct::string(&big)));
        // And the next map of that shape carries its own request's values.
        let again = templated_map(vec![
            ("a_big_raw", Direct::string("small")),
            ("b_other", Direct::long(8)),
        ])
        .unwrap();
        assert_eq!(again.get("a_big_raw"), Some(&Direct::string("small")));
        assert_eq!(held.get("a_big_raw"), Some(&Direct::string(&big)));
    }

    #[test]
    fn contexts_built_before_either_request_ends_are_both_recycled() {
        // Two requests of different shapes built, then ended one after the other: neither
        // template keeps its request's values.
        let secret = "z".repeat(4096);
        let first = templated_map(vec![("i_one", Direct::string(&secret))]).unwrap();
        let second = templated_map(vec![("j_two", Direct::string(&secret))]).unwrap();
        drop(first);
        recycle();
        assert_eq!(template_values(&["i_one"]), vec![Value::from(false)]);
        drop(second);
        recycle();
        assert_eq!(template_values(&["j_two"]), vec![Value::from(false)]);
    }

    #[test]
    fn after_a_decision_no_template_keeps_the_commands_values() {
        // The engine recycles each context as its evaluation ends (the guard in
        // `Engine::evaluate`): a big argument is not kept alive by this thread's templates.
        let big = "y".repeat(1 << 16);
        let engine = crate::Engine::default_set().expect("default set");
        let env = crate::DecisionEnv::local("/work", "/home/agent");
        for command in [
            format!("ls -la {big}"),
            format!("cd /app && echo {big} | tee b.log"),
        ] {
            let d = engine.decide(&command, &env);
            assert!(!d.facts.is_empty(), "{command:.20}");
            let values: Vec<Value> = CONTEXT_TEMPLATES.with(|t| {
                t.borrow()
                    .iter()
                    .flat_map(|tp| tp.map.values().cloned().collect::<Vec<_>>())
                    .collect()
            });
            assert!(
                !values.is_empty(),
                "the fast path built its contexts from templates"
            );
            assert!(
                values.iter().all(|v| *v == Value::from(false)),
                "a template kept a request's values"
            );
        }
    }

    #[test]
    fn a_duplicate_key_is_an_error_on_both_ways() {
        assert!(Restricted::context(vec![
            ("k", Restricted::boolean(true)),
            ("k", Restricted::boolean(false)),
        ])
        .is_err());
        assert!(matches!(
            Direct::context(vec![
                ("k", Direct::boolean(true)),
                ("k", Direct::boolean(false)),
            ]),
            Err(ContextBuildError::DuplicateKey(k)) if k == "k"
        ));
    }
}
