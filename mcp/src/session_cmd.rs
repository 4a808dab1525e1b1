//! `execkit session`, `execkit exec` and `execkit doctor`: local sessions for humans and
//! scripts. One JSON result per command, in one persistent session.

use crate::policy_cmd::engine_for;
use execkit_runner::sandbox::{kernel_landlock_abi, Level, Profile, SandboxConfig};
use execkit_runner::{ExecError, Limits, RunAs, Session, SessionBuilder};
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Operator settings shared by `session`, `exec` and `doctor`.
#[derive(clap::Args, Debug, Clone)]
pub struct SessionArgs {
    /// Policy directory (default: the embedded `default` set).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Sandbox profile: read-only, workspace, workspace-net or off.
    #[arg(long, default_value = "workspace")]
    profile: Profile,
    /// The workspace (default: the current directory).
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Default timeout per command, in milliseconds (also the maximum).
    #[arg(long, default_value_t = 120_000)]
    timeout_ms: u64,
    /// Run the shell as this user (the server must run as root).
    #[arg(long)]
    run_as: Option<String>,
    /// Start even if the kernel cannot enforce the sandbox.
    #[arg(long)]
    allow_best_effort: bool,
}

/// `execkit session`.
#[derive(clap::Args, Debug)]
pub struct SessionCmd {
    #[command(flatten)]
    args: SessionArgs,
    /// Commands are separated by NUL bytes instead of newlines (so they may span lines).
    #[arg(short = '0', long = "null")]
    null: bool,
}

/// `execkit exec`.
#[derive(clap::Args, Debug)]
pub struct ExecCmd {
    #[command(flatten)]
    args: SessionArgs,
    /// The command (after `--`).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// `execkit doctor`.
#[derive(clap::Args, Debug)]
pub struct DoctorCmd {
    #[command(flatten)]
    args: SessionArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn config(a: &SessionArgs) -> Result<SessionBuilder, String> {
    let (engine, _) = engine_for(a.policies.as_deref())?;
    let workspace = match &a.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
    };
    let mut limits = Limits::default();
    limits.default_timeout = std::time::Duration::from_millis(a.timeout_ms);
    limits.max_timeout = limits.default_timeout;
    let mut b = Session::builder()
        .workspace(workspace)
        .engine(Arc::new(engine))
        .sandbox(SandboxConfig {
            profile: a.profile,
            allow_best_effort: a.allow_best_effort,
            ..SandboxConfig::default()
        })
        .limits(limits);
    if let Some(u) = &a.run_as {
        b = b.run_as(RunAs::lookup(u).map_err(|e| e.to_string())?);
    }
    Ok(b)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// One command's JSON line and the exit code `exec` would use.
async fn one(session: &Session, command: &str) -> (serde_json::Value, u8) {
    match session.exec(command).await {
        Ok(r) => (
            serde_json::to_value(&r).unwrap_or_else(|e| json!({"error": e.to_string()})),
            0,
        ),
        Err(ExecError::Denied(d)) => {
            let code = if d.verdict == execkit_engine::Verdict::Ask {
                3
            } else {
                2
            };
            (
                json!({"denied": true, "verdict": d.verdict, "reason": d.reason, "decision": d.decision}),
                code,
            )
        }
        Err(e) => (json!({"error": e.to_string()}), 1),
    }
}

/// `execkit session`: reads commands from stdin, writes one JSON result per line.
pub fn session(cmd: SessionCmd) -> ExitCode {
    let go = || -> Result<(), String> {
        let config = config(&cmd.args)?;
        let rt = runtime()?;
        rt.block_on(async {
            let session = config.local().await.map_err(|e| e.to_string())?;
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            let sep = if cmd.null { 0u8 } else { b'\n' };
            let mut buf = Vec::new();
            let mut out = std::io::stdout().lock();
            loop {
                buf.clear();
                let n = input
                    .read_until(sep, &mut buf)
                    .map_err(|e| format!("stdin: {e}"))?;
                if n == 0 {
                    break;
                }
                if buf.last() == Some(&sep) {
                    buf.pop();
                }
                let command = String::from_utf8_lossy(&buf).into_owned();
                if command.trim().is_empty() {
                    continue;
                }
                let (line, _) = one(&session, &command).await;
                writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))?;
                out.flush().map_err(|e| format!("stdout: {e}"))?;
            }
            session.close().await;
            Ok(())
        })
    };
    match go() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("execkit session: {e}");
            ExitCode::from(1)
        }
    }
}

/// `execkit exec -- CMD`: exit 0 when it ran (its status is in the JSON), 2 denied, 3
/// needs approval, 1 error.
pub fn exec(cmd: ExecCmd) -> ExitCode {
    let go = || -> Result<u8, String> {
        let config = config(&cmd.args)?;
        let rt = runtime()?;
        rt.block_on(async {
            let session = config.local().await.map_err(|e| e.to_string())?;
            let (line, code) = one(&session, &cmd.command.join(" ")).await;
            println!("{line}");
            session.close().await;
            Ok(code)
        })
    };
    match go() {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            eprintln!("execkit exec: {e}");
            ExitCode::from(1)
        }
    }
}

/// `execkit doctor`: what this machine can enforce, proven by starting a session and
/// probing it. Exit 0 when the profile is fully enforced, 1 otherwise.
pub fn doctor(cmd: DoctorCmd) -> ExitCode {
    let go = || -> Result<(serde_json::Value, bool), String> {
        let mut args = cmd.args.clone();
        let ws = std::env::temp_dir().join(format!("execkit-doctor-{}", std::process::id()));
        std::fs::create_dir_all(&ws).map_err(|e| e.to_string())?;
        args.workspace.get_or_insert(ws.clone());
        // Probes run under a permit-everything view: this checks the kernel, not policies.
        let config = config(&args)?.engine(Arc::new(permit_all()?));
        let rt = runtime()?;
        let report = rt.block_on(async {
            let session = config.local().await.map_err(|e| e.to_string())?;
            let info = session.info().await;
            let mut probes = serde_json::Map::new();
            for (name, cmd, expect_ok) in [
                ("write_outside_workspace_refused", "echo x > /etc/.execkit-doctor", false),
                ("workspace_writable", "echo x > .execkit-doctor && rm .execkit-doctor", true),
                ("no_new_privs", "grep -q 'NoNewPrivs:\t1' /proc/self/status", true),
                ("network_refused", "echo > /dev/tcp/127.0.0.1/9", false),
            ] {
                let r = session.exec(cmd).await;
                let ran_ok = matches!(&r, Ok(r) if r.exit_code == Some(0));
                probes.insert(name.into(), json!(ran_ok == expect_ok));
            }
            session.close().await;
            Ok::<_, String>(json!({
                "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
                "landlock_abi": kernel_landlock_abi(),
                "session": info,
                "probes": probes,
            }))
        });
        let _ = std::fs::remove_dir_all(&ws);
        let report = report?;
        let full = report["session"]["enforcement"]["level"] == json!(Level::Full);
        Ok((report, full))
    };
    match go() {
        Ok((report, full)) => {
            if cmd.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                let e = &report["session"]["enforcement"];
                println!(
                    "kernel {}  Landlock ABI {}",
                    report["kernel"].as_str().unwrap_or("?"),
                    report["landlock_abi"]
                );
                println!(
                    "profile {}  enforcement {}",
                    e["profile"].as_str().unwrap_or("?"),
                    e["level"].as_str().unwrap_or("?")
                );
                println!(
                    "  filesystem rules {}  TCP rules {}  scopes {}  seccomp {}  no_new_privs {}",
                    e["filesystem"],
                    e["landlock_network"],
                    e["scopes"],
                    e["seccomp"],
                    e["no_new_privs"]
                );
                for n in e["notes"].as_array().into_iter().flatten() {
                    println!("  note: {}", n.as_str().unwrap_or(""));
                }
                if let Some(p) = report["probes"].as_object() {
                    for (k, v) in p {
                        println!(
                            "  probe {k}: {}",
                            if v == &json!(true) { "ok" } else { "FAILED" }
                        );
                    }
                }
            }
            if full || cmd.args.profile == Profile::Off {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("execkit doctor: {e}");
            ExitCode::from(1)
        }
    }
}

fn permit_all() -> Result<execkit_engine::Engine, String> {
    let bundle = execkit_engine::PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        &[(
            "doctor.cedar",
            "@id(\"doctor-probe\") permit(principal, action, resource);",
        )],
        "[]",
    );
    execkit_engine::Engine::new(&bundle).map_err(|e| e.to_string())
}
