//! The egress broker: the only way out of a session's own network.
//!
//! A sandboxed local session runs in a network namespace of its own (loopback only; see
//! `sandbox::namespaces`). The broker is a proxy this server holds *inside* that
//! namespace — its listening socket is made there by a thread that enters the namespace —
//! and dials *outside* it. The shell's environment points HTTP(S) clients at it
//! (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, pip's, npm's; `NO_PROXY` keeps the session's
//! own `localhost` direct). Programs that ignore proxies reach nothing: no route leaves the
//! namespace.
//!
//! Every connection is decided by the session's Cedar policies as it opens, as a `connect`
//! request on `Host::"<name as asked>"` with the program that opened it (found from the
//! client socket through `/proc`):
//!
//! 1. on the name, before it is resolved (a name made of a secret never reaches a
//!    resolver);
//! 2. on the address the broker resolved and will dial (`context.address`,
//!    `context.address_class`: loopback, private, link-local, metadata are refused by the
//!    shipped sets unless the host is in `HostGroup::"private-hosts"`). The broker dials
//!    the address it checked, so a name that changes its answer between check and connect
//!    gains nothing.
//!
//! A `CONNECT` tunnel whose client's TLS hello asks for another name than the tunnel's host
//! is decided on that name too, on the address already dialled, before any of the
//! client's bytes pass (the upstream's flow at once, for servers that speak first); an
//! unreadable hello is refused.
//!
//! An `ask` asks the session's runtime approver while the client waits. Refusals come
//! back to the client as `403` with the reason, into the running command's result
//! (`runtime_denials`, with `destination`) and, like every decision, into the audit log;
//! a connection whose record cannot be written is refused. There is no TLS interception:
//! a tunnel's bytes pass untouched.
//!
//! Trade-offs: the broker speaks HTTP proxying only (CONNECT and absolute-form requests;
//! no SOCKS yet), and names are resolved by the system resolver unless the operator maps
//! them (`EgressConfig::hosts`).

pub(crate) mod judge;
mod netns;
mod proxy;
pub(crate) mod tunnel;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub(crate) use proxy::Broker;

/// The port the broker listens on inside every session's own network.
pub const BROKER_PORT: u16 = 3128;

/// How a sandboxed session reaches the network (`[sandbox] network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NetworkMode {
    /// Its own loopback, and every other connection through the broker, decided by the
    /// policies. The default.
    #[default]
    Policy,
    /// Its own loopback only.
    Off,
}

/// The operator's egress settings (`[sandbox.egress]`).
///
/// ```
/// use execkit_runner::egress::EgressConfig;
/// let c: EgressConfig = toml::from_str("hosts = { \"pypi.internal\" = \"10.0.0.5\" }").unwrap();
/// assert_eq!(c.hosts["pypi.internal"].to_string(), "10.0.0.5");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Names the broker resolves to these addresses instead of asking the system's
    /// resolver (a registry mirror, a test registry on this machine).
    pub hosts: BTreeMap<String, IpAddr>,
}

/// The variables that point a session's clients at the broker.
pub(crate) fn proxy_environment() -> Vec<(&'static str, String)> {
    let url = format!("http://127.0.0.1:{BROKER_PORT}");
    let local = "localhost,127.0.0.1,::1".to_string();
    let mut out: Vec<(&'static str, String)> = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "npm_config_proxy",
        "npm_config_https_proxy",
        "PIP_PROXY",
        "CARGO_HTTP_PROXY",
    ]
    .into_iter()
    .map(|k| (k, url.clone()))
    .collect();
    out.push(("NO_PROXY", local.clone()));
    out.push(("no_proxy", local));
    out
}
