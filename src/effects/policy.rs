//! Which addresses a machine's `fetch` may connect to.
//!
//! The host name of every request (and of every redirect) is resolved by the host, each
//! resolved address is judged here, and only the addresses this policy lets through are dialled,
//! by IP, so a DNS answer that changes between the check and the connection cannot sneak a
//! private address in. Public unicast addresses pass; the blocks of [`super::ranges`] are
//! refused unless an entry of `effects.fetch.allow` names them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::ranges::{self, IpNet, Restricted};

/// One entry of `effects.fetch.allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// An address or a CIDR block (`127.0.0.1`, `10.0.0.0/8`, `::1`), optionally on one port
    /// only (`127.0.0.1:8080`, `[::1]:8080`).
    Net { net: IpNet, port: Option<u16> },
    /// A host name as written in request URLs (`localhost`, `api.internal:8443`): every
    /// address it resolves to is allowed, on the given port or any.
    Name { host: String, port: Option<u16> },
}

impl AllowEntry {
    /// Parses one entry; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<AllowEntry, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty entry".to_owned());
        }
        if text.contains('/') {
            let net = IpNet::parse(text)
                .ok_or_else(|| format!("{text:?} is not a CIDR block such as 10.0.0.0/8"))?;
            return Ok(AllowEntry::Net { net, port: None });
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(AllowEntry::Net {
                net: single(addr),
                port: None,
            });
        }
        let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
        if let Some(Ok(addr)) = bare.map(str::parse::<IpAddr>) {
            return Ok(AllowEntry::Net {
                net: single(addr),
                port: None,
            });
        }
        if let Ok(sock) = text.parse::<SocketAddr>() {
            return Ok(AllowEntry::Net {
                net: single(sock.ip()),
                port: Some(sock.port()),
            });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("{text:?} has a port that is not a number 0-65535"))?;
                (host, Some(port))
            }
            None => (text, None),
        };
        if !is_host_name(host) {
            return Err(format!(
                "{text:?} is neither an address, a CIDR block nor a host[:port] name"
            ));
        }
        Ok(AllowEntry::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn allows(&self, host: &str, port: u16, addr: IpAddr) -> bool {
        match self {
            AllowEntry::Net { net, port: p } => {
                p.is_none_or(|p| p == port) && (net.contains(addr) || net.contains(canonical(addr)))
            }
            AllowEntry::Name { host: h, port: p } => {
                p.is_none_or(|p| p == port) && h.eq_ignore_ascii_case(host)
            }
        }
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowEntry::Net { net, port: None } => write!(f, "{net}"),
            AllowEntry::Net { net, port: Some(p) } => write!(f, "{net} port {p}"),
            AllowEntry::Name { host, port: None } => f.write_str(host),
            AllowEntry::Name {
                host,
                port: Some(p),
            } => write!(f, "{host}:{p}"),
        }
    }
}

fn single(addr: IpAddr) -> IpNet {
    let prefix = if addr.is_ipv4() { 32 } else { 128 };
    IpNet::new(addr, prefix).expect("a full-length prefix is valid")
}

/// The IPv4 address behind an IPv4-mapped IPv6 address, else the address itself.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Letters, digits, hyphens and dots, as DNS names (and `localhost`) are written in URLs.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// A refused address, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    pub address: IpAddr,
    pub kind: Restricted,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.address, self.kind)?;
        if let IpAddr::V6(v6) = self.address {
            if let Some(inner) = ranges::embedded_v4(v6) {
                write!(f, " (it carries {inner})")?;
            }
        }
        Ok(())
    }
}

/// The address policy built from `effects.fetch.allow`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<AllowEntry>,
}

impl AddressPolicy {
    /// Parses every entry; the error names the first bad one.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<AddressPolicy, String> {
        let allow = entries
            .iter()
            .map(|e| AllowEntry::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(AddressPolicy { allow })
    }

    pub fn entries(&self) -> &[AllowEntry] {
        &self.allow
    }

    /// Whether a request to `host` (as written in the URL, without brackets) on `port` may
    /// connect to `addr`, one of the addresses `host` resolved to.
    pub fn check(&self, host: &str, port: u16, addr: IpAddr) -> Result<(), Denial> {
        let Some(kind) = ranges::classify(addr) else {
            return Ok(());
        };
        if self.allow.iter().any(|e| e.allows(host, port, addr)) {
            return Ok(());
        }
        Err(Denial {
            address: addr,
            kind,
        })
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
