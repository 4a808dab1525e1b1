//! Loading a policy set: schema, policy files (re-id'd from `@id`), template links,
//! entities; strict validation; and the partition of policies by action and resource scope.

use crate::catalog::Catalog;
use crate::error::LoadError;
use crate::facts::Action;
use cedar_policy::{
    ActionConstraint, Effect, Entities, EntityUid, Policy, PolicyId, PolicySet, ResourceConstraint,
    Schema, SlotId, Template, ValidationMode, Validator,
};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

/// The texts that make up a policy set. No I/O: callers read the files.
#[derive(Debug, Clone, Default)]
pub struct PolicyBundle {
    /// `(file name, text)` of the `.cedarschema`.
    pub schema: (String, String),
    /// `(file name, text)` of every `.cedar` file.
    pub policies: Vec<(String, String)>,
    /// Text of `entities.json`.
    pub entities: String,
    /// Text of `links.json` (template links), if any.
    pub links: Option<String>,
}

impl PolicyBundle {
    /// A bundle from in-memory files: `(name, text)` of the schema and of each policy file,
    /// and the entities JSON. No template links.
    pub fn from_files(schema: (&str, &str), policies: &[(&str, &str)], entities: &str) -> Self {
        PolicyBundle {
            schema: (schema.0.to_string(), schema.1.to_string()),
            policies: policies
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
            entities: entities.to_string(),
            links: None,
        }
    }
}

/// What the engine keeps about one policy.
#[derive(Debug, Clone)]
pub(crate) struct PolicyInfo {
    pub id: PolicyId,
    /// `id` as Cedar displays it, formatted once (every decision reports its policies).
    pub id_text: String,
    pub effect: Effect,
    pub advice: Option<String>,
    pub severity: Option<String>,
    pub ask: bool,
    /// `@checkpoint`: the runner takes a workspace checkpoint before a command this
    /// policy permits.
    pub checkpoint: bool,
    pub source: PolicySource,
    /// Actions the scope can match.
    pub actions: Vec<Action>,
    /// `Some(e)`: applies only when the resource is `e` or a descendant of `e`.
    pub resource_key: Option<EntityUid>,
}

#[derive(Debug, Clone)]
pub(crate) enum PolicySource {
    Static(Box<Policy>),
    Linked {
        template: PolicyId,
        vals: HashMap<SlotId, EntityUid>,
    },
}

/// Everything loaded and checked.
pub(crate) struct Loaded {
    pub schema: Schema,
    pub policies: Vec<PolicyInfo>,
    pub templates: BTreeMap<PolicyId, Template>,
    pub entities: Entities,
    /// Parents named in `entities` but not defined there (see `new_entities`).
    pub dangling: crate::fast_hash::FastSet<cedar_policy_core::ast::EntityUID>,
    pub catalog: Catalog,
    pub full: PolicySet,
}

#[derive(serde::Deserialize)]
struct Link {
    template_id: String,
    link_id: String,
    args: HashMap<String, String>,
}

pub(crate) fn load(b: &PolicyBundle) -> Result<Loaded, LoadError> {
    let (schema, _warnings) =
        Schema::from_cedarschema_str(&b.schema.1).map_err(|e| LoadError::Schema {
            file: b.schema.0.clone(),
            message: format!("{e:?}"),
        })?;
    let mut full = PolicySet::new();
    let mut templates = BTreeMap::new();
    let mut statics = Vec::new();
    // Which file each policy id came from, to show where a validation error points.
    let mut seen: HashMap<String, (&str, &str)> = HashMap::new();
    for (file, text) in &b.policies {
        let set = PolicySet::from_str(text).map_err(|e| LoadError::Policy {
            file: file.clone(),
            message: render(&e, text),
        })?;
        let mut n = 0;
        for p in set.policies() {
            n += 1;
            let id = p
                .annotation("id")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{file}#{n}"));
            if seen.insert(id.clone(), (file, text)).is_some() {
                return Err(LoadError::DuplicateId(id));
            }
            let p = p.new_id(PolicyId::new(&id));
            full.add(p.clone()).map_err(|e| LoadError::Policy {
                file: file.clone(),
                message: e.to_string(),
            })?;
            statics.push(p);
        }
        for t in set.templates() {
            n += 1;
            let id = t
                .annotation("id")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{file}#{n}"));
            if seen.insert(id.clone(), (file, text)).is_some() {
                return Err(LoadError::DuplicateId(id));
            }
            let t = t.new_id(PolicyId::new(&id));
            full.add_template(t.clone())
                .map_err(|e| LoadError::Policy {
                    file: file.clone(),
                    message: e.to_string(),
                })?;
            templates.insert(PolicyId::new(&id), t);
        }
    }
    let mut linked = Vec::new();
    if let Some(links) = &b.links {
        let links: Vec<Link> =
            serde_json::from_str(links).map_err(|e| LoadError::Links(e.to_string()))?;
        for l in links {
            let mut vals = HashMap::new();
            for (k, v) in &l.args {
                let slot = match k.as_str() {
                    "?principal" => SlotId::principal(),
                    "?resource" => SlotId::resource(),
                    other => {
                        return Err(LoadError::Links(format!(
                            "unknown slot `{other}` in link `{}`",
                            l.link_id
                        )))
                    }
                };
                let uid = EntityUid::from_str(v)
                    .map_err(|e| LoadError::Links(format!("link `{}`: {e}", l.link_id)))?;
                vals.insert(slot, uid);
            }
            if seen.insert(l.link_id.clone(), ("links.json", "")).is_some() {
                return Err(LoadError::DuplicateId(l.link_id));
            }
            full.link(
                PolicyId::new(&l.template_id),
                PolicyId::new(&l.link_id),
                vals.clone(),
            )
            .map_err(|e| LoadError::Links(format!("link `{}`: {e}", l.link_id)))?;
            linked.push((
                PolicyId::new(&l.link_id),
                PolicyId::new(&l.template_id),
                vals,
            ));
        }
    }
    if statics.is_empty() && linked.is_empty() {
        return Err(LoadError::Empty);
    }
    let validation = Validator::new(schema.clone()).validate(&full, ValidationMode::Strict);
    if !validation.validation_passed() {
        let msgs = validation
            .validation_errors()
            .map(|e| {
                let id = e.policy_id().to_string();
                match seen.get(&id) {
                    Some((file, text)) => {
                        format!("  - {file}, policy `{id}`: {}", render(e, text))
                    }
                    None => format!("  - policy `{id}`: {e}"),
                }
            })
            .collect();
        return Err(LoadError::Validation(msgs));
    }
    let entities = Entities::from_json_str(&b.entities, Some(&schema))
        .map_err(|e| LoadError::Entities(e.to_string()))?;
    let catalog = Catalog::from_json(&b.entities)?;

    let action_parents = action_ancestors(&schema)?;
    let mut policies = Vec::new();
    for p in &statics {
        policies.push(info(
            p.id().clone(),
            p,
            PolicySource::Static(Box::new(p.clone())),
            &action_parents,
        ));
    }
    for (id, template, vals) in linked {
        let p = full
            .policy(&id)
            .ok_or_else(|| LoadError::Links(format!("link `{id}` vanished")))?
            .clone();
        policies.push(info(
            id,
            &p,
            PolicySource::Linked { template, vals },
            &action_parents,
        ));
    }
    let dangling = crate::new_entities::dangling_parents(&entities);
    Ok(Loaded {
        schema,
        policies,
        templates,
        dangling,
        entities,
        catalog,
        full,
    })
}

/// A Cedar diagnostic and those related to it, each with where in `src` it points: line,
/// column, the source line and a caret, as the cedar CLI shows them.
fn render(e: &dyn miette::Diagnostic, src: &str) -> String {
    let mut out = Vec::new();
    let related = e.related().into_iter().flatten();
    for d in std::iter::once(e).chain(related) {
        let mut text = d.to_string();
        for l in d.labels().into_iter().flatten() {
            let (line, column) = line_column(src, l.offset());
            text.push_str(&format!("\n  --> line {line}, column {column}"));
            if let Some(label) = l.label() {
                text.push_str(&format!(": {label}"));
            }
            let shown = src.lines().nth(line - 1).unwrap_or("");
            text.push_str(&format!(
                "\n   | {shown}\n   | {}{}",
                " ".repeat(column - 1),
                "^".repeat(
                    l.len()
                        .clamp(1, shown.len().saturating_sub(column - 1).max(1))
                )
            ));
        }
        if let Some(help) = d.help() {
            text.push_str(&format!("\n  help: {help}"));
        }
        out.push(text);
    }
    out.join("\n")
}

/// 1-based line and column (in characters) of byte `offset` of `src`.
fn line_column(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// For each of our actions, the action uids it is `in` (itself included).
fn action_ancestors(schema: &Schema) -> Result<HashMap<Action, Vec<EntityUid>>, LoadError> {
    let ents = schema.action_entities().map_err(|e| LoadError::Schema {
        file: "schema".into(),
        message: e.to_string(),
    })?;
    let mut out = HashMap::new();
    for a in Action::ALL {
        let uid = action_uid(a);
        let mut v = vec![uid.clone()];
        if let Some(anc) = ents.ancestors(&uid) {
            v.extend(anc.cloned());
        } else {
            return Err(LoadError::Schema {
                file: "schema".into(),
                message: format!("schema lacks action `{}`", a.name()),
            });
        }
        out.insert(a, v);
    }
    Ok(out)
}

/// The Cedar uid of an action (parsed once per process: every request needs one).
pub(crate) fn action_uid(a: Action) -> EntityUid {
    static UIDS: std::sync::OnceLock<HashMap<Action, EntityUid>> = std::sync::OnceLock::new();
    let uids = UIDS.get_or_init(|| {
        Action::ALL
            .into_iter()
            .map(|a| (a, parse_action_uid(a)))
            .collect()
    });
    uids.get(&a).cloned().unwrap_or_else(|| parse_action_uid(a))
}

fn parse_action_uid(a: Action) -> EntityUid {
    // The action names are fixed identifiers; this cannot fail.
    EntityUid::from_str(&format!("Action::\"{}\"", a.name())).unwrap_or_else(|_| unreachable!())
}

fn info(
    id: PolicyId,
    p: &Policy,
    source: PolicySource,
    action_parents: &HashMap<Action, Vec<EntityUid>>,
) -> PolicyInfo {
    let actions = Action::ALL
        .into_iter()
        .filter(|a| {
            let anc = &action_parents[a];
            match p.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(u) => anc[0] == u,
                ActionConstraint::In(us) => us.iter().any(|u| anc.contains(u)),
            }
        })
        .collect();
    let resource_key = match p.resource_constraint() {
        ResourceConstraint::Eq(u) | ResourceConstraint::In(u) | ResourceConstraint::IsIn(_, u) => {
            Some(u)
        }
        ResourceConstraint::Any | ResourceConstraint::Is(_) => None,
    };
    PolicyInfo {
        id_text: id.to_string(),
        id,
        effect: p.effect(),
        advice: p.annotation("advice").map(str::to_string),
        severity: p.annotation("severity").map(str::to_string),
        ask: p.annotation("ask").is_some_and(|v| v != "false"),
        checkpoint: p.annotation("checkpoint").is_some_and(|v| v != "false"),
        source,
        actions,
        resource_key,
    }
}
