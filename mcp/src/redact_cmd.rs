//! `execkit redact`: the output-protection pipeline over files or stdin.
//!
//! The protected text goes to stdout, a JSON report (redactions per rule, totals) to
//! stderr. Without a budget the whole input is scrubbed and streamed out (memory stays
//! bounded); with one, the output is shaped exactly as a command's output would be.

use anyhow::Context as _;
use clap::Args;
use execkit_protect::{
    Budget, BudgetMode, CaptureLimits, KnownSecrets, Protector, Redactor, SecretEnvPolicy,
    StreamProtector,
};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `execkit redact`.
#[derive(Debug, Args)]
pub struct RedactArgs {
    /// Files to read, in order, as one stream (stdin when none, or for `-`).
    files: Vec<PathBuf>,
    /// Keep only the first N lines.
    #[arg(long, value_name = "N", conflicts_with_all = ["tail", "grep"])]
    head: Option<usize>,
    /// Keep only the last N lines (with --head: both ends).
    #[arg(long, value_name = "N", conflicts_with = "grep")]
    tail: Option<usize>,
    /// Keep only lines matching this regex.
    #[arg(long, value_name = "REGEX")]
    grep: Option<String>,
    /// Lines of context around each --grep match.
    #[arg(
        short = 'C',
        long,
        value_name = "N",
        default_value_t = 0,
        requires = "grep"
    )]
    context: usize,
    /// Cap the output at N characters.
    #[arg(long, value_name = "N")]
    max_chars: Option<usize>,
    /// Bytes kept from the start when a budget applies.
    #[arg(long, value_name = "BYTES", default_value_t = CaptureLimits::default().head_bytes)]
    head_bytes: usize,
    /// Bytes kept from the end when a budget applies.
    #[arg(long, value_name = "BYTES", default_value_t = CaptureLimits::default().tail_bytes)]
    tail_bytes: usize,
    /// Shape like command output (head/tail bytes) even without a line budget.
    #[arg(long)]
    bounded: bool,
    /// A file of known secret values (one per line, or NAME=value lines).
    #[arg(long = "secret-file", value_name = "FILE")]
    secret_files: Vec<PathBuf>,
    /// The value of this environment variable is a known secret.
    #[arg(long = "secret-env", value_name = "NAME")]
    secret_envs: Vec<String>,
    /// Treat the values of sensitive-looking environment variables (*TOKEN*, *SECRET*,
    /// AWS_*, …) as known secrets.
    #[arg(long)]
    env_secrets: bool,
}

impl RedactArgs {
    fn budget(&self) -> Option<Budget> {
        let mode = match (self.head, self.tail, &self.grep) {
            (_, _, Some(p)) => BudgetMode::Grep {
                pattern: p.clone(),
                context: self.context,
            },
            (Some(h), Some(t), None) => BudgetMode::HeadTail { head: h, tail: t },
            (Some(h), None, None) => BudgetMode::Head { lines: h },
            (None, Some(t), None) => BudgetMode::Tail { lines: t },
            (None, None, None) if self.bounded || self.max_chars.is_some() => BudgetMode::Full,
            (None, None, None) => return None,
        };
        Some(Budget {
            mode,
            max_chars: self.max_chars,
        })
    }

    fn known(&self) -> anyhow::Result<KnownSecrets> {
        let mut known = KnownSecrets::new();
        for f in &self.secret_files {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read secret file {}", f.display()))?;
            known.add_file_contents(&text);
        }
        for name in &self.secret_envs {
            match std::env::var(name) {
                Ok(v) => known.add(&v),
                Err(_) => anyhow::bail!("--secret-env {name}: variable is not set"),
            }
        }
        if self.env_secrets {
            let env: Vec<(String, String)> = std::env::vars().collect();
            known.add_env(
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                &SecretEnvPolicy::default(),
            );
        }
        Ok(known)
    }
}

/// Runs `execkit redact`; exit 0 on success, 1 on an error.
pub fn run(args: RedactArgs) -> ExitCode {
    match redact(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("execkit redact: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn redact(args: &RedactArgs) -> anyhow::Result<()> {
    let known = args.known()?;
    let limits = CaptureLimits {
        head_bytes: args.head_bytes,
        tail_bytes: args.tail_bytes,
        ..CaptureLimits::default()
    };
    let protector = Protector::new(Redactor::new(&known), limits);
    let budget = args.budget();
    let mut stream = match &budget {
        Some(b) => protector.stream(b)?,
        None => protector.passthrough(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let sources: Vec<Option<&PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|f| (f.as_os_str() != "-").then_some(f))
            .collect()
    };
    let mut pending = String::new();
    for src in sources {
        let mut reader: Box<dyn Read> = match src {
            Some(path) => Box::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            ),
            None => Box::new(std::io::stdin().lock()),
        };
        feed(&mut *reader, &mut stream, &mut pending, &mut out)?;
    }
    let result = stream.finish();
    pending.push_str(&result.text);
    out.write_all(pending.as_bytes())
        .and_then(|_| out.flush())
        .context("writing output")?;
    let report = serde_json::json!({
        "redactions": result.redactions,
        "redactions_total": result.redactions.values().sum::<u64>(),
        "stream": result.report,
        "known_values": known.len(),
        "rules": protector.redactor().rules().rules().len(),
    });
    eprintln!("{report}");
    Ok(())
}

fn feed(
    reader: &mut dyn Read,
    stream: &mut StreamProtector,
    pending: &mut String,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("reading input")),
        };
        stream.push(&buf[..n]);
        stream.drain(pending);
        if !pending.is_empty() {
            out.write_all(pending.as_bytes())
                .context("writing output")?;
            pending.clear();
        }
    }
}
