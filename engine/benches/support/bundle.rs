//! The policy set the decision benches and `examples/decide_loop.rs` measure: the shipped
//! default set plus `extra` resource-scoped policies (half program permits, half path
//! forbids), which the partitioning keeps out of unrelated requests.

use execkit_engine::PolicyBundle;

/// The default set plus `extra` resource-scoped policies.
pub fn bundle(extra: usize) -> PolicyBundle {
    let set = execkit_policies::DEFAULT;
    let mut policies: Vec<(String, String)> = set
        .policies
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let mut text = String::new();
    for i in 0..extra {
        if i % 2 == 0 {
            text.push_str(&format!(
                "@id(\"extra-tool-{i}\") permit(principal is Agent, action == Action::\"exec\", resource == Program::\"tool-{i}\") unless {{ context.structure.dynamic_command }};\n"
            ));
        } else {
            text.push_str(&format!(
                "@id(\"extra-tenant-{i}\") forbid(principal, action in Action::\"filesystem\", resource in Path::\"/srv/tenant-{i}\") when {{ context.mode != \"read\" }};\n"
            ));
        }
    }
    if extra > 0 {
        policies.push(("extra.cedar".into(), text));
    }
    PolicyBundle {
        schema: (
            execkit_policies::SCHEMA_FILE.into(),
            execkit_policies::SCHEMA.into(),
        ),
        policies,
        entities: set.entities.into(),
        links: None,
    }
}
