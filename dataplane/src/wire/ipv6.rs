//! IPv6: the fixed header, its typed form to write one, the extension headers dsrlb walks, and
//! addresses with a prefix as they appear in configuration files.

use super::{be16, WireError};

pub const HEADER_LEN: usize = 40;
/// The smallest MTU every IPv6 link carries (RFC 8200): a Packet Too Big never says less.
pub const MIN_MTU: u16 = 1280;

/// Next-header values.
pub const NH_HOP_BY_HOP: u8 = 0;
pub const NH_IPV4: u8 = 4;
pub const NH_TCP: u8 = 6;
pub const NH_UDP: u8 = 17;
pub const NH_IPV6: u8 = 41;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_ESP: u8 = 50;
pub const NH_AH: u8 = 51;
pub const NH_ICMPV6: u8 = 58;
pub const NH_NONE: u8 = 59;
pub const NH_DEST_OPTS: u8 = 60;

/// Byte offsets of the fixed header's fields.
pub mod field {
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VTC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// A fixed IPv6 header. `new_checked` guarantees the header and the payload length it declares
/// both fit in the buffer (a jumbogram's zero length is refused: no link here carries one).
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Header<'a> {
    buf: &'a [u8],
}

impl<'a> Ipv6Header<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if buf[0] >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        if HEADER_LEN + be16(buf, field::PAYLOAD_LEN) as usize > buf.len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(Ipv6Header { buf })
    }

    pub fn traffic_class(&self) -> u8 {
        ((be16(self.buf, 0) >> 4) & 0xff) as u8
    }

    pub fn flow_label(&self) -> u32 {
        u32::from_be_bytes([0, self.buf[1] & 0x0f, self.buf[2], self.buf[3]])
    }

    pub fn payload_len(&self) -> usize {
        be16(self.buf, field::PAYLOAD_LEN) as usize
    }

    /// Header and payload, without the link's padding.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    pub fn next_header(&self) -> u8 {
        self.buf[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buf[field::HOP_LIMIT]
    }

    pub fn src(&self) -> [u8; 16] {
        ip16(self.buf, field::SRC)
    }

    pub fn dst(&self) -> [u8; 16] {
        ip16(self.buf, field::DST)
    }

    /// What follows the fixed header, up to the payload length.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..self.total_len()]
    }
}

/// An address at `at` (the caller has checked the length).
#[inline]
pub fn ip16(b: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    a
}

/// A fixed header to write: what the encapsulation, Packet Too Big and the control core's
/// frames put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub traffic_class: u8,
    /// The low 20 bits count.
    pub flow_label: u32,
    pub payload_len: u16,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

impl Ipv6Repr {
    pub fn emit(&self, out: &mut [u8]) {
        let w = (6u32 << 28) | ((self.traffic_class as u32) << 20) | (self.flow_label & 0x000f_ffff);
        out[0..4].copy_from_slice(&w.to_be_bytes());
        out[field::PAYLOAD_LEN..field::PAYLOAD_LEN + 2].copy_from_slice(&self.payload_len.to_be_bytes());
        out[field::NEXT_HEADER] = self.next_header;
        out[field::HOP_LIMIT] = self.hop_limit;
        out[field::SRC..field::SRC + 16].copy_from_slice(&self.src);
        out[field::DST..field::DST + 16].copy_from_slice(&self.dst);
    }
}

/// Set the traffic class of the header at `h` (version and flow label kept).
#[inline]
pub fn set_traffic_class(h: &mut [u8], tc: u8) {
    h[0] = 0x60 | (tc >> 4);
    h[1] = (tc << 4) | (h[1] & 0x0f);
}

/// An IPv6 address with a prefix length, written `2001:db8::2/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Cidr {
    pub addr: std::net::Ipv6Addr,
    pub prefix: u8,
}

impl Ipv6Cidr {
    pub fn new(addr: std::net::Ipv6Addr, prefix: u8) -> Option<Ipv6Cidr> {
        (prefix <= 128).then_some(Ipv6Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::Ipv6Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix as u32) };
        (u128::from(self.addr) & mask) == (u128::from(ip) & mask)
    }
}

impl std::fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Ipv6Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX"))?;
        let addr: std::net::Ipv6Addr = a.parse().map_err(|_| format!("{a:?}: not an IPv6 address"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("{p:?}: not a prefix length"))?;
        Ipv6Cidr::new(addr, prefix).ok_or_else(|| format!("prefix /{prefix} longer than 128"))
    }
}

/// The solicited-node multicast address of `a` (ff02::1:ffXX:XXXX), where neighbour
/// solicitations for it go.
pub fn solicited_node(a: [u8; 16]) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0] = 0xff;
    m[1] = 0x02;
    m[11] = 0x01;
    m[12] = 0xff;
    m[13..16].copy_from_slice(&a[13..16]);
    m
}

/// The Ethernet address an IPv6 multicast address maps to (33:33 and its last four bytes).
pub fn multicast_mac(a: [u8; 16]) -> [u8; 6] {
    [0x33, 0x33, a[12], a[13], a[14], a[15]]
}

/// Whether `a` is multicast (ff00::/8).
#[inline]
pub fn is_multicast(a: [u8; 16]) -> bool {
    a[0] == 0xff
}

/// Whether `a` is link-local unicast (fe80::/10).
#[inline]
pub fn is_link_local(a: [u8; 16]) -> bool {
    a[0] == 0xfe && a[1] & 0xc0 == 0x80
}

/// The link-local address made from a MAC by modified EUI-64 (RFC 4291), as hosts make theirs.
pub fn link_local_from_mac(mac: [u8; 6]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8] = mac[0] ^ 0x02;
    a[9] = mac[1];
    a[10] = mac[2];
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13] = mac[3];
    a[14] = mac[4];
    a[15] = mac[5];
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let r = Ipv6Repr {
            traffic_class: 0xb9,
            flow_label: 0xabcde,
            payload_len: 8,
            next_header: NH_UDP,
            hop_limit: 64,
            src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            dst: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        };
        let mut b = [0u8; 48];
        r.emit(&mut b);
        let h = Ipv6Header::new_checked(&b).unwrap();
        assert_eq!((h.traffic_class(), h.flow_label(), h.payload_len()), (0xb9, 0xabcde, 8));
        assert_eq!((h.next_header(), h.hop_limit(), h.src(), h.dst()), (NH_UDP, 64, r.src, r.dst));
        set_traffic_class(&mut b, 0x1d);
        let h = Ipv6Header::new_checked(&b).unwrap();
        assert_eq!((h.traffic_class(), h.flow_label()), (0x1d, 0xabcde), "flow label kept");
        assert!(Ipv6Header::new_checked(&b[..47]).is_err(), "payload longer than the buffer");
        b[0] = 0x45;
        assert_eq!(Ipv6Header::new_checked(&b).err(), Some(WireError::BadVersion));
    }

    #[test]
    fn cidr_and_addresses() {
        let c: Ipv6Cidr = "2001:db8:f::2/64".parse().unwrap();
        assert!(c.contains("2001:db8:f::11".parse().unwrap()));
        assert!(!c.contains("2001:db8:e::11".parse().unwrap()));
        assert_eq!(c.to_string(), "2001:db8:f::2/64");
        assert!("2001:db8::/129".parse::<Ipv6Cidr>().is_err());
        let a: std::net::Ipv6Addr = "2001:db8::1:2:3".parse().unwrap();
        let sn = solicited_node(a.octets());
        assert_eq!(std::net::Ipv6Addr::from(sn), "ff02::1:ff02:3".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(multicast_mac(sn), [0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
        let ll = link_local_from_mac([0x02, 0, 0, 0, 0, 0x02]);
        assert_eq!(std::net::Ipv6Addr::from(ll), "fe80::ff:fe00:2".parse::<std::net::Ipv6Addr>().unwrap());
        assert!(is_link_local(ll) && !is_multicast(ll) && is_multicast(sn));
    }
}
