//! A connection as it opens: the runtime's `connect` fact.
//!
//! The text layer finds destinations written in a command (`curl https://x`); a session's
//! egress broker sees every connection a program really opens, whatever wrote it (a
//! script's `urllib`, a package manager's registry). Both are one Cedar `connect` request
//! on the same `Host` entity, so one policy decides both. The broker asks twice: once on
//! the name before it is resolved (a name made of a secret must not reach a resolver),
//! then on the address it will dial, with [`AddressClass`] in the context so that policies
//! can refuse loopback, private, link-local and cloud-metadata addresses a public name
//! resolves to.

use std::net::IpAddr;

/// What kind of address a name resolved to, as policies see it (`context.address_class`).
///
/// ```
/// use execkit_engine::AddressClass;
/// use std::net::IpAddr;
/// let class = |a: &str| AddressClass::of(a.parse::<IpAddr>().unwrap()).as_str();
/// assert_eq!(class("151.101.0.223"), "public");
/// assert_eq!(class("127.0.0.1"), "loopback");
/// assert_eq!(class("10.1.2.3"), "private");
/// assert_eq!(class("169.254.169.254"), "metadata");
/// assert_eq!(class("fd00:ec2::254"), "metadata");
/// assert_eq!(class("::ffff:127.0.0.1"), "loopback");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// Anything not below.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918, `100.64.0.0/10` (shared), `fc00::/7` (unique local), benchmarking.
    Private,
    /// `169.254.0.0/16` and `fe80::/10`, except the metadata addresses.
    LinkLocal,
    /// Cloud instance metadata: `169.254.169.254`, `169.254.170.2`, `fd00:ec2::254`.
    Metadata,
    /// `0.0.0.0/8`, `::`, broadcast, multicast, documentation and reserved ranges.
    Reserved,
}

/// Cloud metadata services' addresses (AWS, GCP, Azure, ECS task metadata, AWS IPv6).
const METADATA: &[&str] = &["169.254.169.254", "169.254.170.2", "fd00:ec2::254"];

impl AddressClass {
    /// The class of `ip` (an IPv4-mapped IPv6 address is judged as its IPv4 address).
    pub fn of(ip: IpAddr) -> AddressClass {
        if METADATA
            .iter()
            .any(|m| m.parse::<IpAddr>().ok() == Some(ip))
        {
            return AddressClass::Metadata;
        }
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::of(IpAddr::V4(v4)),
                None => Self::of_v6(v6),
            },
        }
    }

    fn of_v4(ip: std::net::Ipv4Addr) -> AddressClass {
        let [a, b, ..] = ip.octets();
        if ip.is_loopback() {
            AddressClass::Loopback
        } else if ip.is_private()
            || (a == 100 && (64..128).contains(&b))
            || (a == 198 && (b == 18 || b == 19))
        {
            AddressClass::Private
        } else if ip.is_link_local() {
            AddressClass::LinkLocal
        } else if ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_documentation()
            || a == 0
            || a >= 240
        {
            AddressClass::Reserved
        } else {
            AddressClass::Public
        }
    }

    fn of_v6(ip: std::net::Ipv6Addr) -> AddressClass {
        let first = ip.segments()[0];
        if ip.is_loopback() {
            AddressClass::Loopback
        } else if first & 0xfe00 == 0xfc00 {
            AddressClass::Private
        } else if first & 0xffc0 == 0xfe80 {
            AddressClass::LinkLocal
        } else if ip.is_unspecified()
            || ip.is_multicast()
            || first == 0x2001 && ip.segments()[1] == 0xdb8
        {
            AddressClass::Reserved
        } else {
            AddressClass::Public
        }
    }

    /// The name policies compare with.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link_local",
            AddressClass::Metadata => "metadata",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// One connection a program opens, as the broker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The host as asked (CONNECT authority, absolute URI), lower-cased, no brackets.
    pub host: String,
    /// The port.
    pub port: u16,
    /// `http` for a forwarded plain request; `None` for a tunnel.
    pub scheme: Option<String>,
    /// The executable of the process that opened it (`/usr/bin/python3.11`); empty when it
    /// could not be found.
    pub program: String,
    /// The address the broker will dial, once resolved.
    pub address: Option<IpAddr>,
}

impl Connection {
    /// A connection to a Unix socket file: `Host::"unix:/run/docker.sock"`, scheme
    /// `unix`, no port and no address.
    pub fn unix(path: &str, program: String) -> Connection {
        Connection {
            host: format!("unix:{path}"),
            port: 0,
            scheme: Some("unix".into()),
            program,
            address: None,
        }
    }

    /// Whether this is a connection to a Unix socket file.
    pub fn is_unix(&self) -> bool {
        self.scheme.as_deref() == Some("unix")
    }

    /// `host:port`, IPv6 hosts bracketed; a Unix socket's `unix:/path`.
    pub fn authority(&self) -> String {
        if self.is_unix() {
            self.host.clone()
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (address, class) — the table the broker's refusals rest on.
    const CASES: &[(&str, AddressClass)] = &[
        ("8.8.8.8", AddressClass::Public),
        ("2a04:4e42::223", AddressClass::Public),
        ("127.0.0.1", AddressClass::Loopback),
        ("127.1.2.3", AddressClass::Loopback),
        ("::1", AddressClass::Loopback),
        ("::ffff:127.0.0.1", AddressClass::Loopback),
        ("10.0.0.1", AddressClass::Private),
        ("172.16.5.4", AddressClass::Private),
        ("192.168.1.1", AddressClass::Private),
        ("100.64.0.1", AddressClass::Private),
        ("fd12:3456::1", AddressClass::Private),
        ("::ffff:10.0.0.1", AddressClass::Private),
        ("169.254.1.1", AddressClass::LinkLocal),
        ("fe80::1", AddressClass::LinkLocal),
        ("169.254.169.254", AddressClass::Metadata),
        ("::ffff:169.254.169.254", AddressClass::Metadata),
        ("169.254.170.2", AddressClass::Metadata),
        ("fd00:ec2::254", AddressClass::Metadata),
        ("0.0.0.0", AddressClass::Reserved),
        ("::", AddressClass::Reserved),
        ("255.255.255.255", AddressClass::Reserved),
        ("224.0.0.1", AddressClass::Reserved),
        ("192.0.2.1", AddressClass::Reserved),
        ("2001:db8::1", AddressClass::Reserved),
    ];

    #[test]
    fn addresses_are_classed_as_the_table_says() {
        for (a, want) in CASES {
            assert_eq!(AddressClass::of(a.parse().unwrap()), *want, "{a}");
        }
    }
}
