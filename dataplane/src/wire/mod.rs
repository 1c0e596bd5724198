//! Zero-copy views of the headers dsrlb reads, each validated once by `new_checked` so its
//! accessors cannot panic afterwards (the shape of smoltcp's `wire` module), plus the offsets
//! the rewrites use to change fields in place.

pub mod arp;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod l4;

pub use arp::{ArpPacket, ArpRepr};
pub use ethernet::{EthernetFrame, MacAddr, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_VLAN};
pub use icmp::IcmpMessage;
pub use ipv4::{Ipv4Cidr, Ipv4Header, Ipv4Repr, PROTO_ICMP, PROTO_IPIP, PROTO_TCP, PROTO_UDP};
pub use l4::{TcpHeader, UdpHeader};

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

#[inline]
fn fixed<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}
