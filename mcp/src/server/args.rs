//! Tool arguments as agents send them. Every field can only narrow what the operator
//! configured; unknown fields are refused so a misspelt option is an error, not a no-op.

use execkit_protect::{Budget, BudgetMode};
use schemars::JsonSchema;
use serde::Deserialize;

/// `session_create`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    /// Where the session runs: `local` (the default), `ssh` or `docker`. Every target is
    /// authorized by the policies (`session_open`) before anything connects; `ssh` and
    /// `docker` need the operator's `[ssh]`/`[docker]` settings and have no local sandbox.
    #[serde(default)]
    pub transport: Option<String>,
    /// SSH: the host (name or address).
    #[serde(default)]
    pub host: Option<String>,
    /// SSH: the port (default 22).
    #[serde(default)]
    pub port: Option<u16>,
    /// SSH: the remote user (default: the operator's).
    #[serde(default)]
    pub user: Option<String>,
    /// Docker: an existing container to attach to.
    #[serde(default)]
    pub container: Option<String>,
    /// Docker: the image of an ephemeral container.
    #[serde(default)]
    pub image: Option<String>,
    /// The session's workspace (its starting directory and, under the `workspace` sandbox,
    /// the only writable tree). Relative paths are taken from the operator's default
    /// workspace; it must lie inside a workspace the operator allows.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Default output budget for this session's commands (a command's own `budget`
    /// replaces it).
    #[serde(default)]
    pub output_budget: Option<BudgetArg>,
}

/// `session_exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// The session, from `session_create`.
    pub session_id: String,
    /// A bash command line; cwd, variables and functions persist between calls.
    pub command: String,
    /// What to keep of stdout and stderr (default: the session's budget, else head and
    /// tail within the operator's caps).
    #[serde(default)]
    pub budget: Option<BudgetArg>,
    /// Timeout in milliseconds; capped by the operator's maximum.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// `session_destroy`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyArgs {
    /// The session to end (its shell and every process it started are killed).
    pub session_id: String,
}

/// `session_restart`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartArgs {
    /// The session whose shell is replaced (after it ended, or to start over).
    pub session_id: String,
}

/// `policy_check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckArgs {
    /// The command line to judge. Nothing runs.
    pub command: String,
    /// Judge it in this session's cwd and transport (default: a fresh local session in the
    /// default workspace).
    #[serde(default)]
    pub session_id: Option<String>,
}

/// Which part of the output to keep.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BudgetModeArg {
    /// The start and the end, within the operator's caps.
    Full,
    /// The first `lines` lines.
    Head,
    /// The last `lines` lines.
    Tail,
    /// The first `head` and the last `tail` lines.
    HeadTail,
    /// Lines matching `pattern`, with `context` lines around each.
    Grep,
}

/// An output budget.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetArg {
    /// `full`, `head`, `tail`, `head_tail` or `grep`.
    pub mode: BudgetModeArg,
    /// Lines, for `head` and `tail`.
    #[serde(default)]
    pub lines: Option<usize>,
    /// Lines from the start, for `head_tail`.
    #[serde(default)]
    pub head: Option<usize>,
    /// Lines from the end, for `head_tail`.
    #[serde(default)]
    pub tail: Option<usize>,
    /// A regex, for `grep`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Context lines around each match, for `grep`.
    #[serde(default)]
    pub context: Option<usize>,
    /// At most this many characters per stream (markers included; at least 64).
    #[serde(default)]
    pub max_chars: Option<usize>,
}

/// A budget argument that names a mode without the fields it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetArgError {
    /// `mode` needs `field`.
    #[error("budget mode `{mode}` needs `{field}`")]
    MissingField {
        /// The budget mode as the agent wrote it.
        mode: &'static str,
        /// The missing field.
        field: &'static str,
    },
}

impl BudgetArg {
    /// The engine's budget, or which field the mode needs and is missing.
    pub fn to_budget(&self) -> Result<Budget, BudgetArgError> {
        let need = |v: Option<usize>, field: &'static str| {
            v.ok_or(BudgetArgError::MissingField {
                mode: self.mode_name(),
                field,
            })
        };
        let mode = match self.mode {
            BudgetModeArg::Full => BudgetMode::Full,
            BudgetModeArg::Head => BudgetMode::Head {
                lines: need(self.lines, "lines")?,
            },
            BudgetModeArg::Tail => BudgetMode::Tail {
                lines: need(self.lines, "lines")?,
            },
            BudgetModeArg::HeadTail => BudgetMode::HeadTail {
                head: need(self.head, "head")?,
                tail: need(self.tail, "tail")?,
            },
            BudgetModeArg::Grep => BudgetMode::Grep {
                pattern: self.pattern.clone().ok_or(BudgetArgError::MissingField {
                    mode: "grep",
                    field: "pattern",
                })?,
                context: self.context.unwrap_or(0),
            },
        };
        Ok(Budget {
            mode,
            max_chars: self.max_chars,
        })
    }

    fn mode_name(&self) -> &'static str {
        match self.mode {
            BudgetModeArg::Full => "full",
            BudgetModeArg::Head => "head",
            BudgetModeArg::Tail => "tail",
            BudgetModeArg::HeadTail => "head_tail",
            BudgetModeArg::Grep => "grep",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_convert_and_name_missing_fields() {
        let b: BudgetArg =
            serde_json::from_str(r#"{"mode":"grep","pattern":"err","context":2}"#).unwrap();
        assert_eq!(
            b.to_budget().unwrap().mode,
            BudgetMode::Grep {
                pattern: "err".into(),
                context: 2
            }
        );
        let b: BudgetArg = serde_json::from_str(r#"{"mode":"head_tail","head":3}"#).unwrap();
        assert_eq!(
            b.to_budget().unwrap_err().to_string(),
            "budget mode `head_tail` needs `tail`"
        );
        assert!(serde_json::from_str::<BudgetArg>(r#"{"mode":"middle"}"#).is_err());
        assert!(serde_json::from_str::<BudgetArg>(r#"{"mode":"head","line":3}"#).is_err());
    }
}
