//! Network destinations a command names: URLs, `[user@]host:path` remotes, `ssh host`,
//! `nc host port`, `/dev/tcp/host/port`, database `-h host`.
//!
//! Only what the text states can be extracted; named git remotes (`git push origin`) and
//! registries that package managers contact implicitly are not visible here. The sandbox's
//! network rules are the enforcement for those.

use crate::fast_hash::SmallOrderedSet;
use execkit_grammar::knowledge::{Catalog, Trait};
use execkit_grammar::{is_url, Command};

/// A network destination named by a command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// Lower-cased host name or address (IPv6 without brackets).
    pub host: String,
    /// Port if stated or implied by the scheme.
    pub port: Option<i64>,
    /// URL scheme (`https`, `ssh`, `git`, `tcp`, ...).
    pub scheme: Option<String>,
    /// The URL or word it came from.
    pub raw: String,
}

fn default_port(scheme: &str) -> Option<i64> {
    Some(match scheme {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "ssh" | "git+ssh" | "ssh+git" | "sftp" | "scp" => 22,
        "git" => 9418,
        "ftp" => 21,
        "rsync" => 873,
        _ => return None,
    })
}

pub(crate) fn from_url(word: &str) -> Option<Destination> {
    let u = url::Url::parse(word).ok()?;
    let host = u
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let scheme = u.scheme().to_string();
    let port = u.port().map(i64::from).or_else(|| default_port(&scheme));
    Some(Destination {
        host,
        port,
        scheme: Some(scheme),
        raw: word.to_string(),
    })
}

/// `[user@]host[:port]` without a scheme.
pub(crate) fn from_host_word(word: &str, scheme: Option<&str>) -> Option<Destination> {
    let w = word.rsplit('@').next()?;
    let (host, port) = match w.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            (h, p.parse::<i64>().ok())
        }
        _ => (w.split('/').next()?, None),
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        && (host.contains('.') || host.contains(':') || host == "localhost");
    if !valid {
        return None;
    }
    let port = port.or_else(|| scheme.and_then(default_port));
    Some(Destination {
        host,
        port,
        scheme: scheme.map(str::to_string),
        raw: word.to_string(),
    })
}

/// `/dev/tcp/host/port` or `/dev/udp/host/port` (bash opens a socket for these).
pub fn dev_tcp(path: &str) -> Option<Destination> {
    let rest = path
        .strip_prefix("/dev/tcp/")
        .map(|r| ("tcp", r))
        .or_else(|| path.strip_prefix("/dev/udp/").map(|r| ("udp", r)))?;
    let (scheme, rest) = rest;
    let mut parts = rest.splitn(2, '/');
    let host = parts.next()?.to_ascii_lowercase();
    let port = parts.next().and_then(|p| p.parse::<i64>().ok());
    if host.is_empty() {
        return None;
    }
    Some(Destination {
        host,
        port,
        scheme: Some(scheme.into()),
        raw: path.to_string(),
    })
}

/// Every destination the command names, with those its options and environment configure
/// (`configured`, from [`crate::configured::destinations`]), each once.
pub(crate) fn destinations(
    cmd: &Command,
    k: &Catalog,
    configured: Vec<Destination>,
) -> Vec<Destination> {
    let prog = cmd.program.base_name();
    // Deduplicated by hash once many: `curl URL URL …` may name tens of thousands.
    let mut out: SmallOrderedSet<Destination> = SmallOrderedSet::default();
    let mut push = |d: Destination| out.insert(d);
    let literal_args: Vec<&str> = cmd
        .args
        .iter()
        .filter(|a| a.is_literal())
        .map(|a| a.value.as_str())
        .collect();
    if k.has(prog, Trait::FetchesUrls) {
        for a in &literal_args {
            let candidate = a
                .split_once('=')
                .map(|(_, v)| v)
                .filter(|v| is_url(v))
                .or_else(|| embedded_url(a))
                .unwrap_or(a);
            let candidate = candidate.strip_prefix("git+").unwrap_or(candidate);
            if is_url(candidate) {
                if let Some(d) = from_url(candidate) {
                    push(d);
                }
            }
        }
        for d in package_sources(prog, cmd) {
            push(d);
        }
    } else if unknown_program(prog, k) {
        // A program the knowledge does not describe may fetch any URL it is given: each is
        // a destination. (Words like `a:b` are too common to read as hosts without a
        // scheme; an interpreter's words are data for its script, which the runtime
        // decisions follow.)
        for a in &literal_args {
            let url = if is_url(a) { Some(*a) } else { embedded_url(a) };
            if let Some(d) = url.and_then(|u| from_url(u.strip_prefix("git+").unwrap_or(u))) {
                push(d);
            }
        }
    }
    let first_pos = cmd.positionals.first().map(String::as_str);
    match prog {
        p if k.has(p, Trait::HostsPositional) || k.has(p, Trait::HostFirst) => {
            // Without a scheme, the bare positionals that look like hosts.
            let take = if k.has(p, Trait::HostsPositional) {
                cmd.positionals.len()
            } else {
                1
            };
            for w in cmd.positionals.iter().take(take) {
                if !is_url(w) && !w.starts_with('/') && !w.starts_with('.') {
                    // A single-label name is resolved too (`wget intranet`, search
                    // domains).
                    let single_label = || {
                        let host = w.split(['/', '?', '#']).next().unwrap_or(w);
                        bare_host(host, "http")
                    };
                    if let Some(d) = from_host_word(w, None).or_else(single_label) {
                        push(d);
                    }
                }
            }
        }
        "ssh" | "mosh" => {
            if let Some(h) = first_pos {
                let port = flag_value(cmd, &["-p"])
                    .and_then(|p| p.parse().ok())
                    .or(Some(22));
                if let Some(mut d) = from_url(h)
                    .or_else(|| from_host_word(h, Some("ssh")).or_else(|| bare_host(h, "ssh")))
                {
                    d.port = port;
                    push(d);
                }
            }
        }
        "scp" | "rsync" | "sftp" | "git" | "rclone" => {
            for w in &cmd.positionals {
                if is_url(w) || w.chars().any(char::is_whitespace) {
                    continue;
                }
                if let Some((hostpart, _)) = w.split_once(':') {
                    // git also takes `fix: message`-like words; its remotes look like
                    // `user@host:path` or `host.domain:path`.
                    let plausible =
                        prog != "git" || hostpart.contains('@') || hostpart.contains('.');
                    if plausible && !hostpart.is_empty() && !hostpart.contains('/') {
                        if let Some(d) = from_host_word(hostpart, Some("ssh"))
                            .or_else(|| bare_host(hostpart, "ssh"))
                        {
                            push(d);
                        }
                    }
                }
            }
        }
        "nc" | "ncat" | "netcat"
            if !cmd.flags.contains("-l") && !cmd.flags.contains("--listen") =>
        {
            if let Some(h) = first_pos {
                let port = cmd.positionals.get(1).and_then(|p| p.parse().ok());
                if let Some(mut d) = from_host_word(h, None).or_else(|| bare_host(h, "tcp")) {
                    d.port = port;
                    d.scheme = Some("tcp".into());
                    push(d);
                }
            }
        }
        "socat" => {
            for w in &cmd.positionals {
                let up = w.to_ascii_uppercase();
                for prefix in [
                    "TCP:",
                    "TCP4:",
                    "TCP6:",
                    "UDP:",
                    "OPENSSL:",
                    "SSL:",
                    "TCP-CONNECT:",
                ] {
                    if let Some(rest) = up.strip_prefix(prefix) {
                        let orig = &w[w.len() - rest.len()..];
                        let hp = orig.split(',').next().unwrap_or(orig);
                        if let Some(mut d) = from_host_word(hp, None)
                            .or_else(|| bare_host(hp.split(':').next().unwrap_or(""), "tcp"))
                        {
                            d.scheme = Some("tcp".into());
                            push(d);
                        }
                    }
                }
            }
        }
        "psql" | "mysql" | "redis-cli" | "mongo" | "mongosh" | "pg_dump" | "mysqldump" => {
            if let Some(h) = flag_value(cmd, &["-h", "--host"]) {
                if let Some(d) = from_host_word(&h, None).or_else(|| bare_host(&h, "tcp")) {
                    push(d);
                }
            }
        }
        _ => {}
    }
    for a in &cmd.args {
        if let Some(d) = dev_tcp(&a.value) {
            push(d);
        }
    }
    for r in &cmd.redirects {
        if let Some(d) = dev_tcp(&r.target.value) {
            push(d);
        }
    }
    // Proxies, resolution overrides, jump hosts, registries, DNS servers.
    for d in configured {
        push(d);
    }
    out.into_vec()
}

/// True if nothing in the knowledge describes `prog`: no program entry, no exec option or
/// marker, not an interpreter that reads code.
fn unknown_program(prog: &str, k: &Catalog) -> bool {
    k.program(prog).is_none()
        && !k
            .exec_options()
            .stdin_rules()
            .iter()
            .any(|r| r.programs.iter().any(|p| p == prog))
        && !k
            .exec_options()
            .rules()
            .iter()
            .any(|r| r.programs.iter().any(|p| p == prog))
        && !k
            .exec_options()
            .markers()
            .iter()
            .any(|m| m.programs.iter().any(|p| p == prog))
}

/// A URL inside a word, after text that is not part of it: pip's direct references
/// (`pkg @ https://host/p.tar.gz`, `pkg@git+https://host/r`), `-egit+https://…`.
fn embedded_url(word: &str) -> Option<&str> {
    let at = word.find("://")?;
    let start = word[..at]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .map_or(0, |i| i + 1);
    let url = &word[start..];
    let url = url.split(char::is_whitespace).next().unwrap_or(url);
    (start > 0).then_some(url)
}

/// Package managers' shorthands for sources that are not the registry: `npm install
/// github:o/r`, `gitlab:o/r`, `bitbucket:o/r`, `gist:id`, and `o/r` (GitHub); `npx o/r`.
fn package_sources(prog: &str, cmd: &Command) -> Vec<Destination> {
    const INSTALLS: [&str; 10] = [
        "install", "i", "in", "isntall", "add", "update", "up", "upgrade", "dlx", "x",
    ];
    let specs: &[String] = match prog {
        // The package is the first positional; the rest are its arguments.
        "npx" | "bunx" => cmd.positionals.get(..1).unwrap_or(&[]),
        "npm" | "pnpm" | "yarn" | "bun" => match cmd.positionals.split_first() {
            Some((sub, rest)) if INSTALLS.contains(&sub.as_str()) => rest,
            _ => &[],
        },
        _ => &[],
    };
    let mut out = Vec::new();
    for spec in specs {
        let host = if let Some((kind, _)) = spec.split_once(':') {
            match kind {
                "github" => "github.com",
                "gitlab" => "gitlab.com",
                "bitbucket" => "bitbucket.org",
                "gist" => "gist.github.com",
                _ => continue,
            }
        } else {
            let mut parts = spec.split('#').next().unwrap_or(spec).split('/');
            let shorthand = matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some(o), Some(r), None) if !o.is_empty() && !r.is_empty()
                    && !o.starts_with(['@', '.', '~'])
                    && !r.ends_with(".tgz") && !r.ends_with(".tar.gz")
                    && o.chars().chain(r.chars()).all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            );
            if !shorthand {
                continue;
            }
            "github.com"
        };
        out.push(Destination {
            host: host.to_string(),
            port: Some(443),
            scheme: Some("https".into()),
            raw: spec.clone(),
        });
    }
    out
}

/// A single-label host such as `db` or `staging-1`.
fn bare_host(h: &str, scheme: &str) -> Option<Destination> {
    let host = h.rsplit('@').next()?.to_ascii_lowercase();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return None;
    }
    Some(Destination {
        host,
        port: default_port(scheme),
        scheme: Some(scheme.into()),
        raw: h.to_string(),
    })
}

fn flag_value(cmd: &Command, names: &[&str]) -> Option<String> {
    let mut it = cmd.args.iter();
    while let Some(a) = it.next() {
        for n in names {
            if a.value == *n {
                return it.next().map(|w| w.value.clone());
            }
            if let Some(v) = a.value.strip_prefix(&format!("{n}=")) {
                return Some(v.to_string());
            }
            if n.len() == 2
                && a.value.starts_with(n)
                && a.value.len() > 2
                && !a.value.starts_with("--")
            {
                return Some(a.value[2..].to_string());
            }
        }
    }
    None
}
