//! Address blocks a machine's `fetch` may not reach unless the operator allows them.
//!
//! Public unicast addresses are reachable; everything that names this host, a private
//! network, a link, a group of hosts or nothing at all is not. IPv6 forms that carry an IPv4
//! address (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`)
//! are judged by the IPv4 address inside them, so no spelling of a private address passes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not reachable by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restricted {
    Loopback,
    Private,
    LinkLocal,
    Unspecified,
    ThisNetwork,
    Multicast,
    Broadcast,
    SharedCgnat,
    Documentation,
    Reserved,
}

impl Restricted {
    /// The phrase that follows "is" in a refusal: "127.0.0.1 is a loopback address".
    pub fn phrase(self) -> &'static str {
        match self {
            Restricted::Loopback => "a loopback address",
            Restricted::Private => "a private address",
            Restricted::LinkLocal => "a link-local address",
            Restricted::Unspecified => "an unspecified address",
            Restricted::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            Restricted::Multicast => "a multicast address",
            Restricted::Broadcast => "the broadcast address",
            Restricted::SharedCgnat => "a shared (carrier-grade NAT) address",
            Restricted::Documentation => "a documentation address",
            Restricted::Reserved => "a reserved address",
        }
    }
}

impl fmt::Display for Restricted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phrase())
    }
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    base: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network `addr/prefix`; `None` when the prefix is longer than the address. Host bits
    /// of `addr` are ignored.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix <= max).then_some(IpNet { base: addr, prefix })
    }

    /// Parses `a.b.c.d/n` or `x::y/n`.
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: IpAddr = addr.trim().parse().ok()?;
        let prefix: u8 = prefix.trim().parse().ok()?;
        IpNet::new(addr, prefix)
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.base, addr) {
            (IpAddr::V4(base), IpAddr::V4(a)) => {
                prefix_eq(&base.octets(), &a.octets(), self.prefix)
            }
            (IpAddr::V6(base), IpAddr::V6(a)) => {
                prefix_eq(&base.octets(), &a.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Whether the first `bits` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> (Ipv4Addr, u8) {
    (Ipv4Addr::new(a, b, c, d), prefix)
}

/// IPv4 blocks, most specific first (the broadcast address sits inside 240.0.0.0/4).
const V4_BLOCKS: &[((Ipv4Addr, u8), Restricted)] = &[
    (v4(0, 0, 0, 0, 32), Restricted::Unspecified),
    (v4(255, 255, 255, 255, 32), Restricted::Broadcast),
    (v4(0, 0, 0, 0, 8), Restricted::ThisNetwork),
    (v4(10, 0, 0, 0, 8), Restricted::Private),
    (v4(100, 64, 0, 0, 10), Restricted::SharedCgnat),
    (v4(127, 0, 0, 0, 8), Restricted::Loopback),
    (v4(169, 254, 0, 0, 16), Restricted::LinkLocal),
    (v4(172, 16, 0, 0, 12), Restricted::Private),
    (v4(192, 0, 0, 0, 24), Restricted::Reserved),
    (v4(192, 0, 2, 0, 24), Restricted::Documentation),
    (v4(192, 168, 0, 0, 16), Restricted::Private),
    (v4(198, 18, 0, 0, 15), Restricted::Reserved),
    (v4(198, 51, 100, 0, 24), Restricted::Documentation),
    (v4(203, 0, 113, 0, 24), Restricted::Documentation),
    (v4(224, 0, 0, 0, 4), Restricted::Multicast),
    (v4(240, 0, 0, 0, 4), Restricted::Reserved),
];

/// Why `addr` is not reachable by default, or `None` for a public unicast address.
pub fn classify(addr: IpAddr) -> Option<Restricted> {
    match addr {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn classify_v4(addr: Ipv4Addr) -> Option<Restricted> {
    let bits = u32::from(addr);
    V4_BLOCKS.iter().find_map(|&((base, prefix), kind)| {
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        (bits & mask == u32::from(base) & mask).then_some(kind)
    })
}

fn classify_v6(addr: Ipv6Addr) -> Option<Restricted> {
    if let Some(inner) = embedded_v4(addr) {
        return classify_v4(inner);
    }
    let s = addr.segments();
    if addr.is_unspecified() {
        Some(Restricted::Unspecified)
    } else if addr.is_loopback() {
        Some(Restricted::Loopback)
    } else if s[0..6] == [0; 6] {
        // The rest of ::/96: the deprecated IPv4-compatible form, never routed today.
        Some(Restricted::Reserved)
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        // Unique local fc00::/7, and the deprecated site-local fec0::/10.
        Some(Restricted::Private)
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some(Restricted::LinkLocal)
    } else if s[0] & 0xff00 == 0xff00 {
        Some(Restricted::Multicast)
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some(Restricted::Documentation)
    } else if s[0..4] == [0x0100, 0, 0, 0] {
        // 100::/64, the discard-only block.
        Some(Restricted::Reserved)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:0:0/96`), NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`).
pub fn embedded_v4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = addr.segments();
    let o = addr.octets();
    if s[0..6] == [0, 0, 0, 0, 0, 0xffff] || s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

#[cfg(test)]
#[path = "ranges_tests.rs"]
mod tests;
