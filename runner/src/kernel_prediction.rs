//! What the kernel sandbox will refuse of a command the policies allow, said before the
//! command runs: a write to a path outside the session's writable roots (`/tmp/x` when only
//! the private tmp is writable, a file in the closed home) is refused as a decision, with the
//! roots and advice, instead of failing later with a bare `EACCES`.
//!
//! Only what the kernel certainly refuses is turned into a refusal: an exact path (not a
//! glob's bound), outside every writable root, and not a device or `/proc` file (the device
//! files a session writes are granted by Landlock rules of their own). A symlink the command
//! writes through is the kernel's to follow, and stays the kernel's to refuse.
//!
//! Likewise a connection the policies allow in a session that reaches no network (no egress
//! broker, no host network): refused as a decision that says why, instead of a bare
//! `EPERM` or `ENETUNREACH`. Unix socket files are decided as they are connected, and the
//! session's own loopback stays its own.

use execkit_engine::{Action, Decision, FactDecision, Verdict};
use execkit_sandbox::{Enforcement, Profile};
use std::path::{Path, PathBuf};

/// Turns each allowed write the sandbox of `enforcement` will refuse into a denied fact, and
/// the decision into a denial when one is.
pub fn refuse_unwritable(decision: &mut Decision, enforcement: &Enforcement) {
    if !enforcement.filesystem || enforcement.profile == Profile::Off {
        return;
    }
    // The private tmp is the first writable root (see `execkit_sandbox::prepared`).
    let tmp = enforcement.writable.first().map(PathBuf::as_path);
    refuse_outside(decision, &enforcement.writable, tmp);
}

/// Turns each allowed connection the session of `enforcement` cannot make into a denied
/// fact (see the module's documentation).
pub fn refuse_unreachable(decision: &mut Decision, enforcement: &Enforcement) {
    let p = enforcement.profile;
    if p == Profile::Off || p.network() || enforcement.egress_broker {
        return;
    }
    let mut refused = false;
    for fact in decision.facts.iter_mut() {
        if fact.verdict == Verdict::Deny || fact.action != Action::Connect {
            continue;
        }
        let host = fact
            .resource
            .strip_prefix("Host::\"")
            .and_then(|h| h.strip_suffix('"'));
        let own = enforcement.private_network
            && host.is_some_and(|h| ["localhost", "127.0.0.1", "::1"].contains(&h));
        if own || host.is_some_and(|h| h.starts_with("unix:")) {
            continue;
        }
        fact.verdict = Verdict::Deny;
        fact.policies.clear();
        fact.reason = no_network_reason(enforcement.private_network);
        refused = true;
    }
    if refused {
        decision.verdict = Verdict::Deny;
    }
}

/// [`refuse_unreachable`] for a dry run of a local session with `profile` and `network`,
/// before any session exists: a sandboxed profile without the host's network has a
/// network of its own, and the broker only where `network` is `policy`.
pub fn refuse_unreachable_dry_run(
    decision: &mut Decision,
    profile: Profile,
    network: crate::egress::NetworkMode,
) {
    let mut e = crate::remote::no_sandbox_here();
    e.profile = profile;
    e.private_network = profile != Profile::Off && !profile.network();
    e.egress_broker = e.private_network && network == crate::egress::NetworkMode::Policy;
    refuse_unreachable(decision, &e);
}

fn no_network_reason(private_network: bool) -> String {
    let what = if private_network {
        "its own loopback only (`network = \"off\"`, or no egress broker)"
    } else {
        "no network: no namespace of its own for an egress broker, so sockets other than Unix ones are refused"
    };
    format!(
        "the session reaches {what}, so the kernel would refuse this connection. Ask the operator for `network = \"policy\"` with the host listed"
    )
}

/// The writable roots a dry run of a local session with `profile` knows: the workspace
/// (unless read-only) and the operator's extra roots; the session's private tmp has no
/// name before the session exists (a write to `$TMPDIR/…` is not exact, and stays allowed).
/// `None` for `off`: nothing is refused by the kernel.
pub fn dry_run_roots(
    profile: Profile,
    workspace: &Path,
    extra: &[PathBuf],
) -> Option<Vec<PathBuf>> {
    let mut roots = match profile {
        Profile::Off => return None,
        Profile::ReadOnly => Vec::new(),
        _ => vec![workspace.to_path_buf()],
    };
    roots.extend(extra.iter().cloned());
    Some(roots)
}

/// Turns each allowed write to an exact path outside `roots` into a denied fact, and the
/// decision into a denial when one is; the advice names the session's `tmp` when known.
pub fn refuse_outside(decision: &mut Decision, roots: &[PathBuf], tmp: Option<&Path>) {
    let mut refused = false;
    for fact in decision.facts.iter_mut() {
        if fact.verdict == Verdict::Deny || fact.action != Action::WritePath {
            continue;
        }
        if let Some(path) = exact_path(fact) {
            if !writable(&path, roots) {
                refuse(fact, &path, roots, tmp);
                refused = true;
            }
        }
    }
    if refused {
        decision.verdict = Verdict::Deny;
    }
}

/// The path of a `Path::"/abs"` resource, when it is exact and quoted as itself.
fn exact_path(fact: &FactDecision) -> Option<PathBuf> {
    let id = fact.resource.strip_prefix("Path::\"")?.strip_suffix('"')?;
    let exact = id.starts_with('/') && !id.contains('\\') && !id.ends_with("/*");
    exact.then(|| PathBuf::from(id))
}

/// Whether the sandbox lets the session write `path`.
fn writable(path: &Path, roots: &[PathBuf]) -> bool {
    path.starts_with("/dev")
        || path.starts_with("/proc")
        || roots.iter().any(|r| path.starts_with(r))
}

fn refuse(fact: &mut FactDecision, path: &Path, roots: &[PathBuf], tmp: Option<&Path>) {
    let mut shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    if tmp.is_none() {
        shown.push("its private tmp ($TMPDIR)".into());
    }
    let scratch = match tmp {
        Some(t) => format!("in the session's tmp, {}", t.display()),
        None => "in the session's private tmp".into(),
    };
    fact.verdict = Verdict::Deny;
    fact.policies.clear();
    fact.reason = format!(
        "the session's sandbox writes only in {}: {} is outside, so the kernel would refuse it. Write scratch files {scratch}, results in the workspace",
        shown.join(", "),
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use execkit_engine::{DecisionEnv, Engine, PolicyBundle};

    /// (command, whether it runs) under a permit-all policy and a sandbox writing only in
    /// `/w` and `/t`: the writes the kernel would refuse are refused before they run.
    #[test]
    fn writes_outside_the_roots_are_refused_before_they_run() {
        let (engine, env) = permit_all();
        let cases = [
            ("echo x > /w/out.txt", true),
            ("echo x > /t/scratch", true),
            ("echo x > /tmp/x", false),
            ("echo x >> /home/agent/.bashrc", false),
            ("echo x > /dev/null", true),
            ("cat /tmp/x > /w/y", true),
            ("cd /tmp && echo x > rel", false),
        ];
        for (command, runs) in cases {
            let mut d = engine.decide(command, &env);
            assert_eq!(d.verdict, Verdict::Allow, "{command}: {d:?}");
            refuse_unwritable(&mut d, &enforcement());
            let want = if runs { Verdict::Allow } else { Verdict::Deny };
            assert_eq!(d.verdict, want, "{command}: {d:?}");
            if !runs {
                let f = d.facts.iter().find(|f| f.verdict == Verdict::Deny).unwrap();
                assert!(f.reason.contains("session's tmp, /t"), "{}", f.reason);
            }
        }
    }

    /// (command, whether it runs) under a permit-all policy, in a session with its own
    /// loopback and no broker, then with one.
    #[test]
    fn connections_a_session_without_network_cannot_make_are_refused_before_they_run() {
        let (engine, env) = permit_all();
        let cases = [
            ("curl -sS https://pypi.org/simple/", false),
            ("git clone https://github.com/x/y", false),
            ("curl -sS http://localhost:8000/", true),
            ("curl -sS http://127.0.0.1:8000/", true),
            ("echo hi", true),
        ];
        let mut e = enforcement();
        e.private_network = true;
        for (command, runs) in cases {
            let mut d = engine.decide(command, &env);
            assert_eq!(d.verdict, Verdict::Allow, "{command}: {d:?}");
            refuse_unreachable(&mut d, &e);
            let want = if runs { Verdict::Allow } else { Verdict::Deny };
            assert_eq!(d.verdict, want, "{command}: {d:?}");
        }
        e.egress_broker = true;
        let mut d = engine.decide("curl -sS https://pypi.org/simple/", &env);
        refuse_unreachable(&mut d, &e);
        assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    }

    #[test]
    fn a_dry_run_predicts_the_network_the_operator_chose() {
        use crate::egress::NetworkMode;
        let (engine, env) = permit_all();
        let cases = [
            (Profile::Workspace, NetworkMode::Policy, Verdict::Allow),
            (Profile::Workspace, NetworkMode::Off, Verdict::Deny),
            (Profile::ReadOnly, NetworkMode::Off, Verdict::Deny),
            (Profile::WorkspaceNet, NetworkMode::Off, Verdict::Allow),
            (Profile::Off, NetworkMode::Off, Verdict::Allow),
        ];
        for (profile, network, want) in cases {
            let mut d = engine.decide("curl -sS https://pypi.org/simple/", &env);
            refuse_unreachable_dry_run(&mut d, profile, network);
            assert_eq!(d.verdict, want, "{profile:?} {network:?}: {d:?}");
            let mut d = engine.decide("curl -sS http://localhost:8000/", &env);
            refuse_unreachable_dry_run(&mut d, profile, network);
            assert_eq!(d.verdict, Verdict::Allow, "{profile:?} {network:?}: {d:?}");
        }
    }

    /// A permit-all engine and a local decision environment in `/w`.
    fn permit_all() -> (Engine, DecisionEnv) {
        let bundle = PolicyBundle::from_files(
            (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
            &[("all.cedar", "permit(principal, action, resource);")],
            "[]",
        );
        let engine = Engine::new(&bundle).unwrap();
        (engine, DecisionEnv::local("/w", "/home/agent"))
    }

    fn enforcement() -> Enforcement {
        let mut e = crate::remote::no_sandbox_here();
        e.profile = Profile::Workspace;
        e.filesystem = true;
        e.writable = vec!["/t".into(), "/w".into()];
        e
    }
}
