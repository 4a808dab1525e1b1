//! A human's approval of one command whose decision was Ask: the exact command and the
//! facts shown to the human, so that a run with it can check that the decision at run
//! time still asks about nothing else.

use execkit_engine::{Decision, Verdict};

/// A human's approval of one command whose decision was Ask.
///
/// It names the exact command and the facts that were shown to the human;
/// [`Session::exec`] with it refuses any other command, and refuses this one if the
/// decision at run time asks about anything else (for example because the cwd changed in
/// between).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Who approved (an `Operator` entity id; policies see it as `identity.approved_by`).
    pub approver: String,
    /// The command line approved, exactly.
    pub command: String,
    /// `(action, resource)` of every fact that needed approval when the human was asked.
    pub facts: Vec<(String, String)>,
}

impl Approval {
    /// The approval of `command`, covering every fact of `decision` (its decision) that
    /// needs one.
    pub fn of(approver: &str, command: &str, decision: &Decision) -> Approval {
        Approval {
            approver: approver.to_string(),
            command: command.to_string(),
            facts: asking_facts(decision),
        }
    }
}

/// `(action, resource)` of the facts whose verdict is Ask.
pub(crate) fn asking_facts(decision: &Decision) -> Vec<(String, String)> {
    decision
        .facts
        .iter()
        .filter(|f| f.verdict == Verdict::Ask)
        .map(|f| (f.action.to_string(), f.resource.clone()))
        .collect()
}
