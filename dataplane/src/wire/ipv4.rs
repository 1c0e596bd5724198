use super::{be16, ip4, WireError};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const MIN_HEADER_LEN: usize = 20;

pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;
pub const OFFSET_MASK: u16 = 0x1fff;

/// Byte offsets of the fields the rewrites change.
pub mod field {
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// An IPv4 header (options allowed). `new_checked` guarantees the header and the total length
/// it declares both fit in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Header<'a> {
    buf: &'a [u8],
}

impl<'a> Ipv4Header<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if buf[0] >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let ihl = ((buf[0] & 0x0f) as usize) * 4;
        if ihl < MIN_HEADER_LEN || ihl > buf.len() {
            return Err(WireError::BadHeaderLength);
        }
        let total = be16(buf, field::TOTAL_LEN) as usize;
        if total < ihl || total > buf.len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(Ipv4Header { buf })
    }

    pub fn header_len(&self) -> usize {
        ((self.buf[0] & 0x0f) as usize) * 4
    }

    pub fn total_len(&self) -> usize {
        be16(self.buf, field::TOTAL_LEN) as usize
    }

    pub fn tos(&self) -> u8 {
        self.buf[field::TOS]
    }

    pub fn dscp(&self) -> u8 {
        self.buf[field::TOS] >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.buf[field::TOS] & 0x03
    }

    pub fn ident(&self) -> u16 {
        be16(self.buf, field::IDENT)
    }

    pub fn dont_fragment(&self) -> bool {
        be16(self.buf, field::FLAGS_FRAG) & FLAG_DF != 0
    }

    pub fn more_fragments(&self) -> bool {
        be16(self.buf, field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        ((be16(self.buf, field::FLAGS_FRAG) & OFFSET_MASK) as usize) * 8
    }

    /// Part of a fragmented datagram (first or later).
    pub fn is_fragment(&self) -> bool {
        be16(self.buf, field::FLAGS_FRAG) & (FLAG_MF | OFFSET_MASK) != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buf[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buf[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf, field::CHECKSUM)
    }

    pub fn src(&self) -> [u8; 4] {
        ip4(self.buf, field::SRC)
    }

    pub fn dst(&self) -> [u8; 4] {
        ip4(self.buf, field::DST)
    }

    /// The payload as declared by the total length (padding after it is excluded).
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len()..self.total_len()]
    }
}

/// An IPv4 address with a prefix length (`10.0.0.2/24`): one of the LB's own addresses and
/// the subnet it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub addr: std::net::Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Whether `ip` is on this subnet.
    pub fn contains(&self, ip: std::net::Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix.min(32)) };
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX"))?;
        let addr = a.parse().map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("{p:?} is not a prefix length"))?;
        if prefix > 32 {
            return Err(format!("prefix length {prefix} is over 32"));
        }
        Ok(Ipv4Cidr { addr, prefix })
    }
}

/// The fields of an option-less IPv4 header, to be written with `emit` (smoltcp's `Repr` form):
/// named fields instead of nine positional numbers, and the checksum computed, not supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub tos: u8,
    /// Bytes after the 20-byte header (the total length is this plus 20).
    pub payload_len: u16,
    pub ident: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Ipv4Repr {
    /// A whole (unfragmented) datagram's header; `tos`, `ident` and DF left for the caller.
    #[inline]
    pub const fn new(protocol: u8, src: [u8; 4], dst: [u8; 4], payload_len: u16, ttl: u8) -> Self {
        Ipv4Repr {
            tos: 0,
            payload_len,
            ident: 0,
            dont_fragment: false,
            more_fragments: false,
            frag_offset: 0,
            ttl,
            protocol,
            src,
            dst,
        }
    }

    /// The flags and fragment-offset word as it goes on the wire.
    #[inline]
    pub fn flags_frag(&self) -> u16 {
        (if self.dont_fragment { FLAG_DF } else { 0 })
            | (if self.more_fragments { FLAG_MF } else { 0 })
            | ((self.frag_offset / 8) & OFFSET_MASK)
    }

    /// The one's-complement sum of the words a tunnel's outer header keeps for every packet to
    /// one address — version and header length, TTL and protocol, both addresses — folded to
    /// 16 bits, in the byte order the CPU loads them in (`emit_with_fixed_sum` adds the rest).
    pub fn fixed_sum(&self) -> u16 {
        // RFC 1071 2(B): the sum of byte-swapped words is the byte-swapped sum; 2(C): the
        // addresses as whole 32-bit words fold to the same sum.
        let le = |a: u8, b: u8| u16::from_le_bytes([a, b]) as u64;
        let sum = le(0x45, 0)
            + le(self.ttl, self.protocol)
            + u32::from_le_bytes(self.src) as u64
            + u32::from_le_bytes(self.dst) as u64;
        crate::checksum::fold16(crate::checksum::fold32(sum))
    }

    /// Write the header, with a correct checksum, into the first 20 bytes of `out`.
    #[inline(always)]
    pub fn emit(&self, out: &mut [u8]) {
        self.emit_with_fixed_sum(out, self.fixed_sum());
    }

    /// `emit`, given what `fixed_sum` returns for this header (a forwarding entry keeps it, so
    /// only the words that change per packet are summed here).
    #[inline(always)]
    pub fn emit_with_fixed_sum(&self, out: &mut [u8], fixed: u16) {
        let total_len = self.payload_len.wrapping_add(MIN_HEADER_LEN as u16);
        let flags_frag = self.flags_frag();
        let (tos, ttl, proto, src, dst) = (self.tos, self.ttl, self.protocol, self.src, self.dst);
        let [l0, l1] = total_len.to_be_bytes();
        let [i0, i1] = self.ident.to_be_bytes();
        let [f0, f1] = flags_frag.to_be_bytes();
        // Summed from the field values, not read back from the buffer, in the CPU's byte order
        // as `fixed_sum` is.
        let le = |a: u8, b: u8| u16::from_le_bytes([a, b]) as u32;
        // Five 16-bit terms: the sum fits 32 bits, and `finish` folds it.
        let sum = fixed as u32 + le(0, tos) + le(l0, l1) + le(i0, i1) + le(f0, f1);
        let [c0, c1] = crate::checksum::finish(sum).to_le_bytes();
        out[..MIN_HEADER_LEN].copy_from_slice(&[
            0x45, tos, l0, l1, i0, i1, f0, f1, ttl, proto, c0, c1, src[0], src[1], src[2], src[3], dst[0],
            dst[1], dst[2], dst[3],
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr() -> [u8; 24] {
        let mut h = [0u8; 24];
        let r = Ipv4Repr {
            tos: 0xb9,
            ident: 7,
            dont_fragment: true,
            ..Ipv4Repr::new(PROTO_UDP, [1, 2, 3, 4], [5, 6, 7, 8], 4, 64)
        };
        r.emit(&mut h);
        h
    }

    #[test]
    fn cidr_parses_and_contains() {
        let c: Ipv4Cidr = "10.0.0.2/24".parse().unwrap();
        assert!(c.contains("10.0.0.200".parse().unwrap()));
        assert!(!c.contains("10.0.1.1".parse().unwrap()));
        assert_eq!(c.to_string(), "10.0.0.2/24");
        assert!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().contains("192.0.2.1".parse().unwrap()));
        for bad in ["10.0.0.2", "10.0.0.2/33", "10.0.0/24", "10.0.0.2/x"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_and_offset_round_trip() {
        let mut h = [0u8; 20];
        let r = Ipv4Repr {
            more_fragments: true,
            frag_offset: 1480,
            ..Ipv4Repr::new(PROTO_IPIP, [1, 2, 3, 4], [5, 6, 7, 8], 0, 64)
        };
        r.emit(&mut h);
        let v = Ipv4Header::new_checked(&h).unwrap();
        assert!(v.more_fragments() && !v.dont_fragment());
        assert_eq!((v.frag_offset(), v.total_len(), v.protocol()), (1480, 20, PROTO_IPIP));
    }

    #[test]
    fn fields() {
        let b = hdr();
        let h = Ipv4Header::new_checked(&b).unwrap();
        assert_eq!(h.header_len(), 20);
        assert_eq!(h.dscp(), 0xb9 >> 2);
        assert_eq!(h.ecn(), 1);
        assert!(h.dont_fragment() && !h.is_fragment());
        assert_eq!(h.src(), [1, 2, 3, 4]);
        assert_eq!(h.payload().len(), 4);
        assert_eq!(crate::checksum::checksum(&b[..20]), 0, "a correct header sums to zero");
    }

    proptest::proptest! {
        /// `emit` sums in the CPU's byte order and whole addresses at a time: whatever the
        /// fields, the header it writes checks out under RFC 1071's plain 16-bit big-endian
        /// sum, and holds the fields as given.
        #[test]
        fn emitted_checksum_is_rfc1071s(
            tos: u8, payload_len in 0u16..=65515, ident: u16, df: bool, mf: bool,
            frag in 0u16..8192, ttl: u8, protocol: u8, src: [u8; 4], dst: [u8; 4],
        ) {
            let r = Ipv4Repr {
                tos, payload_len, ident, dont_fragment: df, more_fragments: mf,
                frag_offset: frag * 8, ttl, protocol, src, dst,
            };
            let mut h = [0u8; 20];
            r.emit(&mut h);
            proptest::prop_assert_eq!(crate::checksum::checksum(&h), 0);
            let mut zeroed = h;
            zeroed[10..12].fill(0);
            proptest::prop_assert_eq!(
                crate::checksum::checksum(&zeroed).to_be_bytes(), [h[10], h[11]],
                "the stored checksum is the plain one"
            );
            proptest::prop_assert_eq!((crate::wire::ip4(&h, field::SRC), crate::wire::ip4(&h, field::DST)), (src, dst));
            proptest::prop_assert_eq!((h[field::TTL], h[field::PROTOCOL], h[field::TOS]), (ttl, protocol, tos));
        }
    }

    #[test]
    fn rejects_malformed() {
        let mut b = hdr();
        assert_eq!(Ipv4Header::new_checked(&b[..19]).err(), Some(WireError::Truncated));
        b[0] = 0x65;
        assert_eq!(Ipv4Header::new_checked(&b).err(), Some(WireError::BadVersion));
        b[0] = 0x44;
        assert_eq!(Ipv4Header::new_checked(&b).err(), Some(WireError::BadHeaderLength));
        b[0] = 0x47; // 28-byte header in a 24-byte buffer
        assert_eq!(Ipv4Header::new_checked(&b).err(), Some(WireError::BadHeaderLength));
        b[0] = 0x45;
        b[2..4].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(Ipv4Header::new_checked(&b).err(), Some(WireError::BadTotalLength));
    }
}
