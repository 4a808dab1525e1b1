//! `execkit policy trace`: run commands in the exec oracle's throwaway sandbox and print
//! what they really did next to what the facts predicted.

use crate::policy_cmd::engine_for;
use anyhow::Context as _;
use clap::Args;
use execkit_engine::{DecisionEnv, Verdict};
use execkit_oracle::{Oracle, Report};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `execkit policy trace`.
#[derive(Args)]
pub struct TraceArgs {
    /// Policy directory (default: the embedded default set).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// The workspace path inside the sandbox (a fresh fixture repository is mounted there).
    #[arg(long, default_value = "/work")]
    workspace: String,
    /// Home directory inside the sandbox (empty).
    #[arg(long, default_value = "/home/agent")]
    home: String,
    /// Directory the command starts in (default: the workspace).
    #[arg(long)]
    cwd: Option<String>,
    /// Seconds before a run is killed.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// Trace every line of this file as a command (`#` starts a comment line).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Print only divergences.
    #[arg(long)]
    quiet: bool,
    /// The command.
    #[arg(last = true)]
    command: Vec<String>,
}

/// Runs `execkit policy trace`. Exit code: 0 no divergence, 2 divergences, 1 error.
pub fn trace(a: TraceArgs) -> anyhow::Result<ExitCode> {
    let (engine, _) = engine_for(a.policies.as_deref())?;
    let oracle = Oracle::new(Duration::from_secs(a.timeout.max(1)))?;
    let mut env = DecisionEnv::local(&a.workspace, &a.home);
    if let Some(c) = &a.cwd {
        env.cwd = Some(execkit_grammar::resolve_path(&env.workspace, c));
    }
    let mut commands: Vec<String> = Vec::new();
    if let Some(f) = &a.file {
        let text = std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
        commands.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(str::to_string),
        );
    }
    if !a.command.is_empty() {
        commands.push(a.command.join(" "));
    }
    anyhow::ensure!(!commands.is_empty(), "give a command after `--`, or --file");
    let mut diverged = 0;
    for command in &commands {
        let d = engine.decide(command, &env);
        let report = oracle
            .trace(command, &d, &env)
            .with_context(|| format!("tracing `{command}`"))?;
        if !report.divergences.is_empty() {
            diverged += 1;
        }
        if a.quiet && report.divergences.is_empty() {
            continue;
        }
        print_report(command, d.verdict, &report);
    }
    if commands.len() > 1 {
        crate::outln!(
            "{} commands traced, {diverged} with divergences",
            commands.len()
        );
    }
    Ok(ExitCode::from(if diverged == 0 { 0 } else { 2 }))
}

fn print_report(command: &str, verdict: Verdict, r: &Report) {
    crate::outln!("$ {command}");
    crate::outln!("  decision: {}", verdict.as_str().to_uppercase());
    let p = &r.predicted;
    crate::outln!("  predicted programs: {}", p.programs.join(", "));
    crate::outln!("  predicted paths:    {}", p.paths.join(", "));
    crate::outln!("  predicted hosts:    {}", p.hosts.join(", "));
    let status = match (r.timed_out, r.exit) {
        (true, _) => "killed at the time limit".to_string(),
        (false, Some(c)) => format!("exit {c}"),
        (false, None) => "killed by a signal".to_string(),
    };
    crate::outln!("  ran: {status}; {} effects observed", r.observed.len());
    for o in &r.observed {
        let diverges = r
            .divergences
            .iter()
            .any(|d| d.effect == o.effect && d.line == o.line);
        crate::outln!("  {} {}", if diverges { "!!" } else { "  " }, o.effect);
    }
    for line in &r.unreadable {
        crate::outln!("  ?? unreadable trace line: {line}");
    }
    if r.divergences.is_empty() {
        crate::outln!("  divergences: 0");
    } else {
        crate::outln!("  divergences: {}", r.divergences.len());
        for d in &r.divergences {
            crate::outln!("    {}\n      trace: {}", d.effect, d.line);
        }
    }
}
