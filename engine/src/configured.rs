//! Destinations a command reaches through its options or environment rather than its
//! URL: proxies, resolution overrides, jump hosts, registries, DNS servers and the names a
//! DNS tool resolves (knowledge in `grammar/knowledge/destinations.toml`).
//!
//! A value that is not literal is a destination nobody can name, `(dynamic)`, which no host
//! allowlist matches.

use crate::network::Destination;
use execkit_grammar::destinations::{glob, Format, OptionRule};
use execkit_grammar::knowledge::Catalog;
use execkit_grammar::{is_url, Command, Word};

/// Programs that set variables for later commands of the session.
const SETTERS: [&str; 5] = ["export", "declare", "typeset", "readonly", "local"];

/// Every destination `cmd` configures.
pub(crate) fn destinations(cmd: &Command, k: &Catalog) -> Vec<Destination> {
    let d = k.destinations();
    let prog = cmd.program.base_name();
    let mut out = Vec::new();
    for rule in d
        .options
        .iter()
        .filter(|r| r.programs.iter().any(|p| p == prog))
    {
        for value in option_values(rule, &cmd.args) {
            match value {
                Some(v) => out.extend(parse(rule.format, &v, Some(rule))),
                None => out.push(dynamic("(option value)")),
            }
        }
    }
    // Assignments: before the command, bare, or through export/declare (kept for later).
    let mut assigned: Vec<(String, Option<String>)> = cmd
        .env
        .iter()
        .map(|a| (a.name.clone(), literal(&a.value)))
        .collect();
    if SETTERS.contains(&prog) {
        for a in &cmd.args {
            if let Some((name, value)) = a.value.split_once('=') {
                assigned.push((name.to_string(), a.is_literal().then(|| value.to_string())));
            }
        }
    }
    for (name, value) in assigned {
        for rule in d.env.iter().filter(|r| r.names.contains(&name)) {
            match &value {
                Some(v) => out.extend(parse(rule.format, v, None)),
                None => out.push(dynamic(&name)),
            }
        }
    }
    if let Some(rule) = d.dns.iter().find(|r| r.programs.iter().any(|p| p == prog)) {
        let server_second = rule.server_positional.iter().any(|p| p == prog);
        for (i, w) in cmd.positionals.iter().enumerate() {
            if let Some(server) = w.strip_prefix('@') {
                out.extend(host(server, Some(53)));
            } else if server_second && i == 1 {
                out.extend(host(w, Some(53)));
            } else if !w.starts_with(['-', '+']) {
                // The name resolved: its domain's servers receive it.
                out.extend(host(w, None));
            }
        }
    }
    out
}

fn literal(w: &Word) -> Option<String> {
    w.is_literal().then(|| w.value.clone())
}

fn dynamic(raw: &str) -> Destination {
    Destination {
        host: "(dynamic)".into(),
        port: None,
        scheme: None,
        raw: raw.to_string(),
    }
}

/// The values given to the rule's options (`None` for one that is not literal).
fn option_values(rule: &OptionRule, args: &[Word]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let w = &args[i];
        let v = w.value.as_str();
        for n in &rule.names {
            let next = || args.get(i + 1).map(literal).unwrap_or(None);
            if v == n {
                out.push(next());
                i += 1;
                break;
            }
            let attached = if n.starts_with("--") {
                v.strip_prefix(n.as_str()).and_then(|r| r.strip_prefix('='))
            } else if n.len() == 2 && !v.starts_with("--") {
                v.strip_prefix(n.as_str()).filter(|r| !r.is_empty())
            } else {
                None
            };
            if let Some(a) = attached {
                out.push(w.is_literal().then(|| a.to_string()));
                break;
            }
        }
        i += 1;
    }
    out
}

/// The destinations in one value.
fn parse(format: Format, v: &str, rule: Option<&OptionRule>) -> Vec<Destination> {
    match format {
        Format::UrlOrHost => host(v, None).into_iter().collect(),
        Format::HostList => v
            .split([',', '|'])
            .filter(|p| !matches!(p.trim(), "" | "direct" | "off"))
            .flat_map(|p| host(p.trim(), None))
            .collect(),
        Format::ResolvePin => {
            // HOST:PORT:ADDR[,ADDR] (an IPv6 address is bracketed).
            let mut parts = v.splitn(3, ':');
            let (_, port, addrs) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
            let port = port.and_then(|p| p.parse().ok());
            addrs
                .split(',')
                .filter_map(|a| host(a.trim_start_matches('+'), port))
                .collect()
        }
        Format::ConnectTo => {
            let parts: Vec<&str> = v.split(':').collect();
            match parts.as_slice() {
                [_, _, h2, p2] if !h2.is_empty() => host(h2, p2.parse().ok()).into_iter().collect(),
                _ => Vec::new(),
            }
        }
        Format::KeyValue => {
            let Some(rule) = rule else { return Vec::new() };
            let at = if rule.key_space {
                v.find(|c: char| c == '=' || c.is_ascii_whitespace())
            } else {
                v.find('=')
            };
            let Some(at) = at else { return Vec::new() };
            let (key, value) = (&v[..at], v[at + 1..].trim());
            if !rule.keys.iter().any(|k| glob(k, key)) {
                return Vec::new();
            }
            if let Some(prefix) = &rule.url_key_prefix {
                if let Some(middle) = key.strip_prefix(prefix.as_str()) {
                    // `url.<base>.insteadOf=<prefix>`: requests go to <base>.
                    let base = middle.rsplit_once('.').map_or(middle, |(b, _)| b);
                    return host(base, None).into_iter().collect();
                }
            }
            parse(Format::HostList, value, None)
        }
    }
}

/// A URL or `[user@]host[:port]` as a destination; `port` when the word has none.
fn host(word: &str, port: Option<i64>) -> Option<Destination> {
    let word = word.trim();
    if word.is_empty() {
        return None;
    }
    let d = if is_url(word) {
        crate::network::from_url(word)
    } else if word.contains("://") {
        // socks5://h, socks5h://h: schemes the URL check may not know.
        let rest = word.split_once("://").map_or(word, |(_, r)| r);
        crate::network::from_host_word(rest.split('/').next().unwrap_or(rest), None)
    } else {
        crate::network::from_host_word(word, None)
    };
    d.map(|mut d| {
        if d.port.is_none() {
            d.port = port;
        }
        d
    })
}
