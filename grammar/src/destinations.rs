//! Network destinations set by options and environment variables:
//! proxies, resolution overrides, jump hosts, registries, DNS servers. The knowledge is data
//! (`knowledge/destinations.toml`); the engine reads it to make connect facts for the real
//! destination.

use crate::error::KnowledgeError;
use serde::Deserialize;

/// How a value names destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `http://h:3128`, `h:3128`, `user@h`.
    UrlOrHost,
    /// Comma- or `|`-separated `url_or_host` values (`ssh -J a,b`, `GOPROXY`).
    HostList,
    /// `HOST:PORT:ADDR[,ADDR]` (curl `--resolve`): the addresses, on that port.
    ResolvePin,
    /// `H1:P1:H2:P2` (curl `--connect-to`): H2, on P2.
    ConnectTo,
    /// `KEY=VALUE` with the key among the rule's keys; the value as `host_list`.
    KeyValue,
}

/// A case: a script and the destinations its facts must connect to (`host` or
/// `host:port`), in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationCase {
    /// The script.
    pub script: String,
    /// The destinations.
    pub hosts: Vec<String>,
}

/// Options of programs whose values name destinations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionRule {
    /// Program base names.
    pub programs: Vec<String>,
    /// The options.
    pub names: Vec<String>,
    /// How the value names destinations.
    pub format: Format,
    /// For `key_value`: the keys (`*` matches any run of characters).
    #[serde(default)]
    pub keys: Vec<String>,
    /// For `key_value`: `KEY VALUE` is accepted too (ssh's `-o`).
    #[serde(default)]
    pub key_space: bool,
    /// For `key_value`: keys with this prefix carry the destination in the key itself
    /// (git's `url.<base>.insteadOf`).
    #[serde(default)]
    pub url_key_prefix: Option<String>,
    /// Cases.
    pub cases: Vec<DestinationCase>,
}

/// Environment variables whose values name destinations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvRule {
    /// Variable names.
    pub names: Vec<String>,
    /// How the value names destinations.
    pub format: Format,
    /// Cases.
    pub cases: Vec<DestinationCase>,
}

/// DNS tools: `@server` words, server positionals, and the names they resolve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRule {
    /// Program base names.
    pub programs: Vec<String>,
    /// Programs whose second positional is the server (`host NAME SERVER`).
    #[serde(default)]
    pub server_positional: Vec<String>,
    /// Cases.
    pub cases: Vec<DestinationCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    #[serde(rename = "option", default)]
    options: Vec<OptionRule>,
    #[serde(rename = "env", default)]
    env: Vec<EnvRule>,
    #[serde(rename = "dns", default)]
    dns: Vec<DnsRule>,
}

/// The destination knowledge.
#[derive(Debug, Default)]
pub struct Destinations {
    /// Option rules.
    pub options: Vec<OptionRule>,
    /// Environment rules.
    pub env: Vec<EnvRule>,
    /// DNS tools.
    pub dns: Vec<DnsRule>,
}

impl Destinations {
    /// Parses and checks the data file.
    pub fn from_toml(text: &str) -> Result<Destinations, KnowledgeError> {
        let f: File =
            toml::from_str(text).map_err(|e| KnowledgeError::Destinations(e.to_string()))?;
        let few = f
            .options
            .iter()
            .map(|r| (format!("{:?}", r.names), r.cases.len()));
        let few = few
            .chain(
                f.env
                    .iter()
                    .map(|r| (format!("{:?}", r.names), r.cases.len())),
            )
            .chain(
                f.dns
                    .iter()
                    .map(|r| (format!("{:?}", r.programs), r.cases.len())),
            );
        for (what, n) in few {
            if n < 2 {
                return Err(KnowledgeError::Destinations(format!(
                    "{what}: needs a case that names a destination and one that does not"
                )));
            }
        }
        for r in &f.options {
            if (r.format == Format::KeyValue) == r.keys.is_empty() {
                return Err(KnowledgeError::Destinations(format!(
                    "{:?}: `keys` go with format key_value, and only with it",
                    r.names
                )));
            }
        }
        Ok(Destinations {
            options: f.options,
            env: f.env,
            dns: f.dns,
        })
    }

    /// Every case, for the tests.
    pub fn cases(&self) -> impl Iterator<Item = &DestinationCase> {
        self.options
            .iter()
            .flat_map(|r| &r.cases)
            .chain(self.env.iter().flat_map(|r| &r.cases))
            .chain(self.dns.iter().flat_map(|r| &r.cases))
    }
}

/// `*` matches any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}
