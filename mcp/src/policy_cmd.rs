//! `execkit policy check|validate|test|explain|open` (and the subcommands in their own
//! modules: `trace`, `replay`, `prove`).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use execkit_engine::policy_dir;
use execkit_engine::{Decision, DecisionEnv, Engine, Transport, Verdict};
use execkit_grammar::{parse, ParseOptions};
use execkit_runner::egress::NetworkMode;
use execkit_runner::kernel_prediction;
use execkit_runner::sandbox::Profile;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `execkit policy ...`.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Dry-run a command: print every fact, its decision and the determining policies.
    /// Exit code: 0 allow, 2 deny, 3 ask, 1 error.
    Check(CheckArgs),
    /// Strict-validate a policy directory (default: the embedded default set).
    Validate {
        /// Policy directory.
        dir: Option<PathBuf>,
    },
    /// Run the case files of a policy directory (default: the embedded sets' own cases).
    Test {
        /// Policy directory.
        dir: Option<PathBuf>,
        /// Print every case, not only failures.
        #[arg(long)]
        verbose: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show the command IR the grammar extracts (no policies involved).
    Explain(ExplainArgs),
    /// Dry-run opening a session on a target (`local`, `ssh:USER@HOST:PORT`,
    /// `docker:container:NAME`, `docker:image:IMAGE`): the `session_open` decision.
    /// Exit code: 0 allow, 2 deny, 3 ask, 1 error.
    Open(OpenArgs),
    /// Dry-run a connection as a session's egress broker decides it: by the host's name
    /// and the program that opens it, then (with `--address`) by the address it resolved
    /// to. Exit code: 0 allow, 2 deny, 3 ask, 1 error.
    Connect(ConnectArgs),
    /// Run commands for real in a throwaway sandbox (bwrap + strace) and print what they
    /// did next to what the facts predicted; an effect no fact names is a divergence.
    /// Exit code: 0 no divergence, 2 divergences, 1 error.
    Trace(crate::policy_trace::TraceArgs),
    /// Decide every command of an audit log again under a policy set and list what
    /// changes: newly denied, newly allowed, newly asked, with the determining policies.
    /// Exit code: 0 nothing changed, 2 something changed, 1 error or not all replayed.
    Replay(crate::policy_replay::ReplayArgs),
    /// Prove or refute invariants of a policy set (a properties file) with Cedar's
    /// symbolic compiler and the cvc5 solver; a refuted property shows a counterexample.
    /// Exit code: 0 all proven, 2 one refuted, 1 error or not checkable.
    Prove(crate::policy_prove::ProveArgs),
}

/// `execkit policy open`.
#[derive(Args)]
pub struct OpenArgs {
    /// Policy directory (default: the embedded default set).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Agent entity id of the principal.
    #[arg(long, default_value = "agent")]
    identity: String,
    /// Extra Group of the agent (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
    /// The target, as a SessionTarget id.
    target: String,
}

/// `execkit policy connect`.
#[derive(Args)]
pub struct ConnectArgs {
    /// Policy directory (default: the embedded default set).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Agent entity id of the principal.
    #[arg(long, default_value = "agent")]
    identity: String,
    /// The executable that opens the connection (`/usr/bin/pip`, `/usr/bin/git`).
    #[arg(long, default_value = "")]
    program: String,
    /// The address the name resolved to (the broker's second question).
    #[arg(long)]
    address: Option<std::net::IpAddr>,
    /// JSON output.
    #[arg(long)]
    json: bool,
    /// `HOST:PORT` (`[v6]:PORT` for an IPv6 literal).
    destination: String,
}

/// Where a dry run pretends the command runs. Relative paths are taken from the current
/// directory, as a shell would; `--cwd` never moves the workspace.
#[derive(Args)]
pub struct EnvArgs {
    /// Directory the command starts in (default: the workspace).
    #[arg(long)]
    cwd: Option<String>,
    /// The agent's workspace (default: the current directory).
    #[arg(long)]
    workspace: Option<String>,
    /// Home directory on the target (default: $HOME).
    #[arg(long)]
    home: Option<String>,
}

/// `execkit policy check`.
#[derive(Args)]
pub struct CheckArgs {
    /// Policy directory (default: the configuration's policies, else the embedded default
    /// set).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// The server's configuration file: decide as `execkit-mcp` would with it (its
    /// policies, entities, identity and `[limits]`, with the same `EXECKIT_*` overrides).
    /// `--policies`, `--identity` and `--group` still override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    env: EnvArgs,
    /// Transport: local, ssh or docker.
    #[arg(long, default_value = "local")]
    transport: String,
    /// SSH host or Docker daemon host for the target.
    #[arg(long)]
    host: Option<String>,
    /// The local session's sandbox profile (default: the configuration's, else
    /// `workspace`): a write it certainly refuses is refused here too, with advice.
    #[arg(long)]
    profile: Option<String>,
    /// The local session's network: `policy` (each connection through the egress broker)
    /// or `off` (its own loopback only). Default: the configuration's, else `policy`. A
    /// connection the session cannot make is refused here too, with advice.
    #[arg(long, value_enum)]
    network: Option<NetworkArg>,
    /// Agent entity id of the principal (default: the configuration's, else `agent`).
    #[arg(long)]
    identity: Option<String>,
    /// Extra Group of the agent (repeatable; default: the configuration's).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
    /// Read the command from this file (`-`: standard input) instead of after `--`: a
    /// script of any length, newlines included.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    file: Option<PathBuf>,
    /// The command.
    #[arg(last = true, required_unless_present = "file")]
    command: Vec<String>,
}

/// `--network` of `policy check`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum NetworkArg {
    /// Each connection through the egress broker, decided by the policies.
    Policy,
    /// The session's own loopback only.
    Off,
}

impl From<NetworkArg> for NetworkMode {
    fn from(n: NetworkArg) -> NetworkMode {
        match n {
            NetworkArg::Policy => NetworkMode::Policy,
            NetworkArg::Off => NetworkMode::Off,
        }
    }
}

/// `execkit policy explain`.
#[derive(Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// The command.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs a policy subcommand and returns its exit code.
pub fn run(cmd: PolicyCommand) -> ExitCode {
    let r = match cmd {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Validate { dir } => validate(dir.as_deref()),
        PolicyCommand::Test { dir, verbose, json } => test(dir.as_deref(), verbose, json),
        PolicyCommand::Explain(a) => explain(a),
        PolicyCommand::Open(a) => open(a),
        PolicyCommand::Connect(a) => connect(a),
        PolicyCommand::Trace(a) => crate::policy_trace::trace(a),
        PolicyCommand::Replay(a) => crate::policy_replay::run(a),
        PolicyCommand::Prove(a) => crate::policy_prove::run(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("execkit: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn env_of(a: &EnvArgs) -> anyhow::Result<DecisionEnv> {
    let here = std::env::current_dir()
        .context("the current directory")?
        .display()
        .to_string();
    // A path as a shell would take it: relative to the current directory. Empty is an
    // error, never `/`.
    let absolute = |flag: &str, v: &str| -> anyhow::Result<String> {
        anyhow::ensure!(!v.trim().is_empty(), "--{flag} is empty: give a directory");
        Ok(execkit_grammar::resolve_path(&here, v))
    };
    let workspace = match &a.workspace {
        Some(w) => absolute("workspace", w)?,
        None => here.clone(),
    };
    let home = match &a.home {
        Some(h) => absolute("home", h)?,
        None => std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
    };
    let mut env = DecisionEnv::local(&workspace, &home);
    if let Some(c) = &a.cwd {
        env.cwd = Some(absolute("cwd", c)?);
    }
    Ok(env)
}

/// The command to dry-run: the words after `--`, or a file's text (`-`: standard input).
/// An empty one is an error: there is nothing to decide.
fn command_of(words: &[String], file: Option<&Path>) -> anyhow::Result<String> {
    let command = match file {
        Some(f) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("reading the command from standard input")?;
            s
        }
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the command from {}", f.display()))?,
        None => words.join(" "),
    };
    anyhow::ensure!(
        !command.trim().is_empty(),
        "the command is empty: nothing to decide"
    );
    Ok(command)
}

/// The engine for `--policies DIR`, or for the embedded default set.
pub fn engine_for(dir: Option<&Path>) -> anyhow::Result<(Engine, policy_dir::PolicyDir)> {
    let src = policy_dir::resolve(dir)?;
    let engine = Engine::new(&src.bundle).with_context(|| src.name.clone())?;
    Ok((engine, src))
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut env = env_of(&a.env)?;
    let command = command_of(&a.command, a.file.as_deref())?;
    let (mut profile, mut writable) = (Profile::Workspace, Vec::new());
    let mut network = NetworkMode::default();
    let engine = match &a.config {
        Some(path) => {
            let config = crate::config::OperatorConfig::load(Some(path))?;
            env.identity = config.identity.identity();
            (profile, writable) = (config.sandbox.profile, config.sandbox.writable.clone());
            network = config.sandbox.network;
            crate::operator::engine_of(&config, a.policies.as_deref())?.0
        }
        None => engine_for(a.policies.as_deref())?.0,
    };
    if let Some(p) = &a.profile {
        profile = p.parse()?;
    }
    if let Some(n) = a.network {
        network = n.into();
    }
    env.target.transport = a.transport.parse::<Transport>()?;
    env.target.host = a.host.clone();
    if let Some(agent) = &a.identity {
        env.identity.agent = agent.clone();
    }
    if !a.groups.is_empty() {
        env.identity.groups = a.groups.clone();
    }
    let mut d = engine.decide(&command, &env);
    if env.target.transport == Transport::Local {
        let ws = std::path::Path::new(&env.workspace);
        if let Some(roots) = kernel_prediction::dry_run_roots(profile, ws, &writable) {
            kernel_prediction::refuse_outside(&mut d, &roots, None);
        }
        kernel_prediction::refuse_unreachable_dry_run(&mut d, profile, network);
    }
    report(&d, a.json)
}

fn open(a: OpenArgs) -> anyhow::Result<ExitCode> {
    let (engine, _) = engine_for(a.policies.as_deref())?;
    let target = execkit_engine::OpenTarget::parse(&a.target).with_context(|| {
        format!(
            "`{}` is not a session target (local, ssh:USER@HOST:PORT, docker:container:NAME, docker:image:IMAGE)",
            a.target
        )
    })?;
    let mut env = here_env();
    env.identity.agent = a.identity.clone();
    env.identity.groups = a.groups.clone();
    let d = engine.decide_open(&target, &env);
    report(&d, a.json)
}

fn connect(a: ConnectArgs) -> anyhow::Result<ExitCode> {
    let (engine, _) = engine_for(a.policies.as_deref())?;
    let (host, port) = a
        .destination
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_matches(['[', ']']).to_ascii_lowercase(),
                p.parse::<u16>().ok()?,
            ))
        })
        .with_context(|| format!("`{}` is not HOST:PORT", a.destination))?;
    let mut env = here_env();
    env.identity.agent = a.identity.clone();
    let c = execkit_engine::Connection {
        host,
        port,
        scheme: None,
        program: a.program,
        address: a.address,
    };
    let d = engine.decide_connection(&c, &env);
    report(&d, a.json)
}

/// A dry run's environment: the current directory as workspace, `HOME` as home.
fn here_env() -> DecisionEnv {
    let here = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/".into());
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    DecisionEnv::local(&here, &home)
}

/// Prints a decision (JSON or readable) and gives its exit code: 0 allow, 3 ask, 2 deny.
fn report(d: &Decision, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(d)?);
    } else {
        print_decision(d);
    }
    Ok(ExitCode::from(match d.verdict {
        Verdict::Allow => 0,
        Verdict::Ask => 3,
        _ => 2,
    }))
}

fn print_decision(d: &Decision) {
    crate::out!("{}", crate::human::decision(d));
}

fn validate(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (engine, src) = engine_for(dir)?;
    crate::outln!(
        "{}: {} policies, strict validation passed",
        src.name,
        engine.policy_count()
    );
    Ok(ExitCode::SUCCESS)
}

fn test(dir: Option<&Path>, verbose: bool, json: bool) -> anyhow::Result<ExitCode> {
    let sources = match dir {
        Some(d) => vec![policy_dir::from_dir(d)?],
        None => execkit_policies::SETS
            .iter()
            .map(|s| policy_dir::embedded(s.name))
            .collect::<Result<_, _>>()?,
    };
    let mut all = Vec::new();
    let mut coverage = Vec::new();
    for src in &sources {
        let mut engine = Engine::new(&src.bundle).with_context(|| src.name.clone())?;
        engine.set_coverage(true);
        if src.cases.is_empty() {
            anyhow::bail!("{} has no case files (cases/*.toml)", src.name);
        }
        let mut results = Vec::new();
        for (file, text) in &src.cases {
            results.extend(execkit_engine::cases::run_case_file(&engine, file, text)?);
        }
        coverage.push((
            src.name.clone(),
            execkit_engine::cases::coverage(&engine, &results),
        ));
        all.extend(results);
    }
    let failed = all.iter().filter(|r| !r.pass).count();
    if json {
        let cov: Vec<serde_json::Value> = coverage
            .iter()
            .map(|(name, c)| serde_json::json!({ "set": name, "coverage": c }))
            .collect();
        let out = serde_json::json!({ "cases": all, "coverage": cov });
        crate::outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        crate::outln!(
            "{:<6} {:<6} {:<6} {:<30} command",
            "result",
            "expect",
            "actual",
            "file:case"
        );
        for r in &all {
            if verbose || !r.pass {
                let loc = format!("{}:{}", r.file, r.index);
                crate::outln!(
                    "{:<6} {:<6} {:<6} {:<30} {}",
                    if r.pass { "pass" } else { "FAIL" },
                    r.expected,
                    r.actual,
                    loc,
                    r.command
                );
                if !r.pass {
                    crate::outln!("       {}", r.detail);
                }
            }
        }
        for (name, c) in &coverage {
            crate::outln!(
                "coverage of {name}: {} policies, {} determine some case",
                c.policies,
                c.policies - c.not_exercised.len() - c.shadowed.len()
            );
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(", ")
                }
            };
            crate::outln!("  not exercised by any case: {}", list(&c.not_exercised));
            crate::outln!(
                "  exercised but never determining (dead in the cases): {}",
                list(&c.shadowed)
            );
        }
        crate::outln!("{} passed, {} failed", all.len() - failed, failed);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let env = env_of(&a.env)?;
    let command = command_of(&a.command, None)?;
    let opts = ParseOptions::new(env.cwd.as_deref(), &env.home);
    match parse(&command, &opts) {
        Ok(script) => {
            crate::outln!("{}", serde_json::to_string_pretty(&script)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            crate::outln!("rejected: {e}");
            Ok(ExitCode::from(2))
        }
    }
}
