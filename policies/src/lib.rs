//! # execkit-policies: the shipped Cedar schema and policy sets
//!
//! Everything here is data, embedded so that a fresh install works from any directory:
//! the schema, the `default` set (a coding agent in a workspace) and the `strict` set
//! (allow-list only, for regulated environments), each with its entities file and its case
//! files. The files themselves live next to this crate and are what security teams copy
//! and edit.

#![warn(missing_docs)]

/// File name and text.
pub type File = (&'static str, &'static str);

/// The Cedar schema every set is validated against.
pub const SCHEMA: &str = include_str!("../schema/execkit.cedarschema");

/// The schema's file name.
pub const SCHEMA_FILE: &str = "execkit.cedarschema";

/// One shipped policy set.
#[derive(Debug, Clone, Copy)]
pub struct PolicySetFiles {
    /// Set name (`default`, `strict`).
    pub name: &'static str,
    /// `.cedar` files.
    pub policies: &'static [File],
    /// `entities.json`.
    pub entities: &'static str,
    /// Case files (`cases/*.toml`).
    pub cases: &'static [File],
}

/// The `default` set.
pub const DEFAULT: PolicySetFiles = PolicySetFiles {
    name: "default",
    policies: &[
        ("permits.cedar", include_str!("../default/permits.cedar")),
        (
            "guardrails.cedar",
            include_str!("../default/guardrails.cedar"),
        ),
        (
            "approvals.cedar",
            include_str!("../default/approvals.cedar"),
        ),
        ("sessions.cedar", include_str!("../default/sessions.cedar")),
        (
            "checkpoints.cedar",
            include_str!("../default/checkpoints.cedar"),
        ),
    ],
    entities: include_str!("../default/entities.json"),
    cases: &[
        (
            "cases/benign.toml",
            include_str!("../default/cases/benign.toml"),
        ),
        (
            "cases/attacks.toml",
            include_str!("../default/cases/attacks.toml"),
        ),
        (
            "cases/transports.toml",
            include_str!("../default/cases/transports.toml"),
        ),
        (
            "cases/sessions.toml",
            include_str!("../default/cases/sessions.toml"),
        ),
        (
            "cases/hidden_commands.toml",
            include_str!("../default/cases/hidden_commands.toml"),
        ),
        (
            "cases/interpreter_stdin.toml",
            include_str!("../default/cases/interpreter_stdin.toml"),
        ),
        (
            "cases/process_control.toml",
            include_str!("../default/cases/process_control.toml"),
        ),
        (
            "cases/definitions.toml",
            include_str!("../default/cases/definitions.toml"),
        ),
        (
            "cases/everyday.toml",
            include_str!("../default/cases/everyday.toml"),
        ),
        (
            "cases/implicit_effects.toml",
            include_str!("../default/cases/implicit_effects.toml"),
        ),
        (
            "cases/network_destinations.toml",
            include_str!("../default/cases/network_destinations.toml"),
        ),
        (
            "cases/live_truth.toml",
            include_str!("../default/cases/live_truth.toml"),
        ),
        (
            "cases/closed_world.toml",
            include_str!("../default/cases/closed_world.toml"),
        ),
        (
            "cases/bash_evaluation.toml",
            include_str!("../default/cases/bash_evaluation.toml"),
        ),
        (
            "cases/assignments.toml",
            include_str!("../default/cases/assignments.toml"),
        ),
        (
            "cases/kernel_paths.toml",
            include_str!("../default/cases/kernel_paths.toml"),
        ),
        (
            "cases/egress.toml",
            include_str!("../default/cases/egress.toml"),
        ),
        (
            "cases/everyday_more.toml",
            include_str!("../default/cases/everyday_more.toml"),
        ),
    ],
};

/// The `strict` set.
pub const STRICT: PolicySetFiles = PolicySetFiles {
    name: "strict",
    policies: &[("strict.cedar", include_str!("../strict/strict.cedar"))],
    entities: include_str!("../strict/entities.json"),
    cases: &[(
        "cases/strict.toml",
        include_str!("../strict/cases/strict.toml"),
    )],
};

/// All shipped sets.
pub const SETS: &[PolicySetFiles] = &[DEFAULT, STRICT];

/// A shipped set by name.
pub fn by_name(name: &str) -> Option<PolicySetFiles> {
    SETS.iter().copied().find(|s| s.name == name)
}
