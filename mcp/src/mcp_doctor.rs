//! `execkit-mcp doctor`: can this machine run the server as configured? It checks the
//! kernel (Landlock ABI, seccomp), the policy set (loaded and validated strictly), the
//! audit path (writable, without writing a record) and starts a real session with the
//! operator's settings to report the enforcement it actually gets.

use crate::config::OperatorConfig;
use crate::operator::Operator;
use execkit_runner::sandbox::{kernel_landlock_abi, Level, Profile};
use serde::Serialize;
use std::path::Path;

/// One check.
#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// Every check, in order.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
    /// All needed checks passed.
    pub ok: bool,
}

#[allow(unsafe_code)] // one prctl query, see SAFETY below
fn seccomp_supported() -> (bool, String) {
    // PR_GET_SECCOMP answers 0 (not filtered) or 2 (filtered) where seccomp exists.
    // SAFETY: prctl with constant arguments.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let filter_line = status.lines().any(|l| l.starts_with("Seccomp_filters:"));
    (
        mode >= 0 && filter_line,
        format!(
            "PR_GET_SECCOMP={mode}, filters {}",
            if filter_line {
                "supported"
            } else {
                "not reported"
            }
        ),
    )
}

fn audit_writable(p: &Path) -> Result<String, String> {
    if p.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(p)
            .map(|_| format!("{} exists and is writable", p.display()))
            .map_err(|e| format!("{}: {e}", p.display()))
    } else {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let probe = parent.join(format!(".execkit-doctor-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .map_err(|e| format!("cannot create files in {}: {e}", parent.display()))?;
        let _ = std::fs::remove_file(&probe);
        Ok(format!("{} will be created", p.display()))
    }
}

/// Runs every check.
pub async fn run(config: OperatorConfig) -> Report {
    let mut checks = Vec::new();
    let abi = kernel_landlock_abi();
    let profile = config.sandbox.profile;
    let needs_kernel = profile != Profile::Off && !config.sandbox.allow_best_effort;
    checks.push(Check {
        name: "landlock",
        ok: abi >= 1 || !needs_kernel,
        detail: format!("kernel Landlock ABI {abi} (rules target ABI 6; 0 = unavailable)"),
    });
    let (sc_ok, sc_detail) = seccomp_supported();
    checks.push(Check {
        name: "seccomp",
        ok: sc_ok || !needs_kernel,
        detail: sc_detail,
    });
    if let Some(p) = &config.audit.path {
        let r = audit_writable(p);
        checks.push(Check {
            name: "audit",
            ok: r.is_ok(),
            detail: r.unwrap_or_else(|e| e),
        });
    } else {
        checks.push(Check {
            name: "audit",
            ok: true,
            detail: "no audit path configured (set [audit] path or EXECKIT_AUDIT_PATH)".into(),
        });
    }
    let mut probe_config = config.clone();
    probe_config.audit.path = None;
    match Operator::new(probe_config) {
        Err(e) => checks.push(Check {
            name: "policies",
            ok: false,
            detail: e.to_string(),
        }),
        Ok(op) => {
            checks.push(Check {
                name: "policies",
                ok: true,
                detail: format!("{} loaded and validated", op.policy_set),
            });
            let ws = op.default_workspace.clone();
            match op.session_config(ws.clone()).local().await {
                Ok(s) => {
                    let e = s.info().await.enforcement;
                    let pass = e.level == Level::Full || !needs_kernel;
                    let mut detail = format!(
                        "a session in {} gets profile {:?} at level {:?} (filesystem {}, network rules {}, scopes {}, seccomp {}, no_new_privs {})",
                        ws.display(), e.profile, e.level, e.filesystem, e.landlock_network, e.scopes, e.seccomp, e.no_new_privs
                    );
                    for n in &e.notes {
                        detail.push_str("; ");
                        detail.push_str(n);
                    }
                    s.close().await;
                    checks.push(Check {
                        name: "sandbox",
                        ok: pass,
                        detail,
                    });
                }
                Err(e) => checks.push(Check {
                    name: "sandbox",
                    ok: false,
                    detail: format!("a session cannot start: {e}"),
                }),
            }
        }
    }
    let ok = checks.iter().all(|c| c.ok);
    Report { checks, ok }
}

impl Report {
    /// One line per check.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            s.push_str(&format!(
                "{:<9} {}  {}\n",
                c.name,
                if c.ok { "ok  " } else { "FAIL" },
                c.detail
            ));
        }
        s.push_str(if self.ok {
            "ready\n"
        } else {
            "NOT READY: fix the failed checks above\n"
        });
        s
    }
}
