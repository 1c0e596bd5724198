//! Zero-copy views of the headers dsrlb reads, each validated once by `new_checked` so its
//! accessors cannot panic afterwards (the shape of smoltcp's `wire` module), plus the offsets
//! the rewrites use to change fields in place.

pub mod arp;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod l4;

pub use arp::{ArpPacket, ArpRepr};
pub use ethernet::{EthernetFrame, MacAddr, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};
pub use icmp::IcmpMessage;
pub use icmpv6::{Icmpv6Message, NdRepr};
pub use ipv4::{Ipv4Cidr, Ipv4Header, Ipv4Repr, PROTO_ICMP, PROTO_IPIP, PROTO_TCP, PROTO_UDP};
pub use ipv6::{Ipv6Cidr, Ipv6Header, Ipv6Repr};
pub use l4::{TcpHeader, UdpHeader};

/// An address of either family with its prefix length, as a port's addresses are written:
/// `10.0.0.2/24` or `2001:db8:f::2/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpCidr {
    V4(Ipv4Cidr),
    V6(Ipv6Cidr),
}

impl IpCidr {
    pub fn addr(&self) -> std::net::IpAddr {
        match self {
            IpCidr::V4(c) => c.addr.into(),
            IpCidr::V6(c) => c.addr.into(),
        }
    }

    pub fn prefix(&self) -> u8 {
        match self {
            IpCidr::V4(c) => c.prefix,
            IpCidr::V6(c) => c.prefix,
        }
    }

    /// Whether `ip` is on this subnet (never across families).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        match (self, ip) {
            (IpCidr::V4(c), std::net::IpAddr::V4(a)) => c.contains(a),
            (IpCidr::V6(c), std::net::IpAddr::V6(a)) => c.contains(a),
            _ => false,
        }
    }

    pub fn is_v6(&self) -> bool {
        matches!(self, IpCidr::V6(_))
    }
}

impl std::fmt::Display for IpCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpCidr::V4(c) => c.fmt(f),
            IpCidr::V6(c) => c.fmt(f),
        }
    }
}

impl std::str::FromStr for IpCidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains(':') {
            s.parse().map(IpCidr::V6)
        } else {
            s.parse().map(IpCidr::V4)
        }
    }
}

/// Why a header could not be read. Each becomes a drop reason in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    Truncated,
    BadVersion,
    BadHeaderLength,
    BadTotalLength,
}

/// Serialize a wire type as its text form (`Display`) and read it back with `FromStr`, so that
/// configuration files and JSON carry `02:00:00:00:00:01` and `10.0.0.2/24`.
#[cfg(feature = "serde")]
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
#[cfg(feature = "serde")]
serde_as_text!(MacAddr);
#[cfg(feature = "serde")]
serde_as_text!(Ipv4Cidr);
#[cfg(feature = "serde")]
serde_as_text!(Ipv6Cidr);
#[cfg(feature = "serde")]
serde_as_text!(IpCidr);

// Each helper reads a fixed-size array in one bounds check and one load; callers have checked
// the length already (`new_checked`), so the check never fails and the compiler often drops it.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(fixed(b, at))
}

#[inline]
pub(crate) fn ip4(b: &[u8], at: usize) -> [u8; 4] {
    fixed(b, at)
}

#[inline]
pub(crate) fn mac(b: &[u8], at: usize) -> [u8; 6] {
    fixed(b, at)
}

/// `N` bytes at `at`, as an array (read as a word when `N` is a word's size).
#[inline]
pub(crate) fn fixed<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}
