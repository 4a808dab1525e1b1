//! The names an assignment is reported under in `context.env_assignments`: the name as
//! each consumer of the variable reads it, so that a forbid listing a name cannot be
//! side-stepped by a spelling the consumer also accepts, and the everyday values that load
//! nothing under their own names.
//!
//! - `PATH` that only adds workspace directories is `PATH+workspace` (see
//!   [`crate::path_var`]); a literal value that loads no code is `NAME+inert` (see
//!   `execkit_grammar::env_values`).
//! - bash imports `BASH_FUNC_name%%` as function `name` in every bash it starts: such a
//!   name is also reported as `BASH_FUNC_*`.
//! - npm reads its `npm_config_*` variables whatever their case: `Npm_Config_Script_Shell`
//!   is also reported as `npm_config_script_shell`.

use execkit_grammar::knowledge::Catalog;
use execkit_grammar::{Assignment, Command};

/// Prefix of the variables bash imports as functions.
const BASH_FUNCTION_PREFIX: &str = "BASH_FUNC_";
/// The name every imported function is also reported under.
const BASH_FUNCTION: &str = "BASH_FUNC_*";
/// Prefix of npm's configuration variables, which npm reads in any case.
const NPM_CONFIG_PREFIX: &str = "npm_config_";

/// The names assignment `a` of `cmd` is reported under (one or two): `env
/// Npm_Config_Script_Shell=/tmp/x npm test` reports `Npm_Config_Script_Shell` and
/// `npm_config_script_shell` (cases in the `default` set's `attacks.toml`).
pub(crate) fn policy_names(
    cmd: &Command,
    a: &Assignment,
    cwd: &str,
    home: &str,
    workspace: &str,
    k: &Catalog,
) -> Vec<String> {
    if a.name == "PATH"
        && crate::path_var::adds_only_workspace_dirs(&a.value.raw, cwd, home, workspace)
    {
        return vec!["PATH+workspace".to_string()];
    }
    if k.env_values().inert_assignment(cmd, a) {
        return vec![format!("{}+inert", a.name)];
    }
    let mut names = vec![a.name.clone()];
    if a.name.starts_with(BASH_FUNCTION_PREFIX) {
        names.push(BASH_FUNCTION.to_string());
    }
    let lower = a.name.to_ascii_lowercase();
    if lower.starts_with(NPM_CONFIG_PREFIX) && lower != a.name {
        names.push(lower);
    }
    names
}
