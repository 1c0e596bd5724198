//! One pass over the headers of a received frame: everything later stages need, validated once.

use crate::counters::DropReason;
use crate::wire::{self, ipv4, l4, EthernetFrame, Ipv4Header};

/// Where a packet stands in a fragmented datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    Whole,
    /// Offset 0, more fragments follow: it carries the L4 header.
    First,
    /// A later fragment: no L4 header.
    Later,
}

/// The parsed headers of an IPv4 frame, as offsets and values. Offsets are stored narrow (the
/// struct is 24 bytes, so a burst's worth stays in a few cache lines) and read through methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    l3: u8,
    ihl: u8,
    ip_len: u16,
    /// Where the L4 header starts, or 0 when this packet has none.
    l4: u8,
    pub proto: u8,
    pub tos: u8,
    pub ttl: u8,
    pub df: bool,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub fragment: Fragment,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
}

impl Parsed {
    /// A placeholder to parse into.
    pub const EMPTY: Parsed = Parsed {
        l3: 0,
        ihl: 0,
        ip_len: 0,
        l4: 0,
        proto: 0,
        tos: 0,
        ttl: 0,
        df: false,
        src: [0; 4],
        dst: [0; 4],
        fragment: Fragment::Whole,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
    };

    /// Length of the Ethernet header (14, or 18 with an 802.1Q tag): where IP starts.
    #[inline]
    pub fn l3(&self) -> usize {
        self.l3 as usize
    }

    /// IP header length (20 to 60).
    #[inline]
    pub fn ihl(&self) -> usize {
        self.ihl as usize
    }

    /// IP total length (the frame may carry Ethernet padding after it).
    #[inline]
    pub fn ip_len(&self) -> usize {
        self.ip_len as usize
    }

    /// Where the L4 header starts, when this packet has one.
    #[inline]
    pub fn l4(&self) -> Option<usize> {
        (self.l4 != 0).then_some(self.l4 as usize)
    }
}

/// What a frame is, at the first level the pipeline cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Arp,
    Ipv4(Parsed),
    /// IPv6: parsed apart (`parse6`), on its own path.
    Ipv6,
}

/// What a frame is, without its headers (those go to `parse_into`'s `out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Arp,
    Ipv4,
    /// IPv6, not parsed yet: `parse6` reads it on the IPv6 path.
    Ipv6,
}

/// Parse a frame, writing the headers of an IPv4 packet straight into `out` (its contents mean
/// something only after `Ok(Kind::Ipv4)`); malformed input becomes the drop reason that names
/// what was wrong. The pipeline parses a burst into a reused array this
/// way: building the struct elsewhere and copying it in costs store-forwarding stalls.
#[inline(always)]
pub fn parse_into(frame: &[u8], out: &mut Parsed) -> Result<Kind, DropReason> {
    if parse_common(frame, out) {
        return Ok(Kind::Ipv4);
    }
    match parse_any(frame)? {
        Frame::Arp => Ok(Kind::Arp),
        Frame::Ipv6 => Ok(Kind::Ipv6),
        Frame::Ipv4(p) => {
            *out = p;
            Ok(Kind::Ipv4)
        }
    }
}

/// The shape almost all load-balanced traffic has — untagged IPv4 without options or
/// fragmentation, carrying a whole TCP or UDP header — read at fixed offsets with one length
/// check, written field by field into `out`. `false` means "not this shape", never
/// "malformed": `parse_any` then decides. What this accepts, it reads exactly as `parse_any`
/// would (a property test compares the two).
#[inline(always)]
fn parse_common(f: &[u8], out: &mut Parsed) -> bool {
    match common_header(f) {
        Some((h, tcp_flags)) => {
            write_common(h, tcp_flags, out);
            true
        }
        None => false,
    }
}

/// Bytes of a common-shape frame read at fixed offsets: Ethernet, IPv4 without options, and the
/// first eight bytes of TCP or UDP (ports, and UDP's length and checksum).
pub(crate) const COMMON_LEN: usize = wire::ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + l4::UDP_LEN;
/// The first `COMMON_LEN` bytes of a common-shape frame.
pub(crate) type CommonHeader = [u8; COMMON_LEN];
/// Where a common-shape frame's TCP flags are.
pub(crate) const COMMON_TCP_FLAGS_AT: usize = wire::ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + 13;

/// Whether `f` has the common shape (`parse_common`'s): its first bytes and its TCP flags (0 for
/// UDP), with every check `parse_common` makes; nothing is written. The worker's first pass
/// keys a flow from these bytes alone, and its established-flow path reads them again.
#[inline(always)]
pub(crate) fn common_header(f: &[u8]) -> Option<(&CommonHeader, u8)> {
    const L3: usize = wire::ethernet::HEADER_LEN;
    const L4: usize = L3 + ipv4::MIN_HEADER_LEN;
    // One length check; with the array's length known, every read below is free of checks.
    let h: &CommonHeader = f.first_chunk()?;
    let flags_frag = wire::be16(h, L3 + ipv4::field::FLAGS_FRAG);
    if wire::be16(h, L3 - 2) != wire::ETHERTYPE_IPV4
        || h[L3] != 0x45
        || flags_frag & (ipv4::FLAG_MF | ipv4::OFFSET_MASK) != 0
    {
        return None;
    }
    let ip_len = wire::be16(h, L3 + ipv4::field::TOTAL_LEN);
    if ip_len as usize > f.len() - L3 {
        return None;
    }
    let l4_len = (ip_len as usize).checked_sub(ipv4::MIN_HEADER_LEN)?;
    let tcp_flags = whole_l4(f, h, L4, h[L3 + ipv4::field::PROTOCOL], l4_len)?;
    Some((h, tcp_flags))
}

/// The checks the parsers make of a whole TCP or UDP header at `at` in frame `f`, behind an IP
/// header that gives it `l4_len` bytes (IPv4 and IPv6 alike): the TCP flags (0 for UDP), or
/// `None` for another protocol or a header that does not fit. The common shapes' last check;
/// `h` is the frame's first bytes as the caller has them, which hold the UDP header whole.
#[inline(always)]
pub(crate) fn whole_l4<const N: usize>(
    f: &[u8],
    h: &[u8; N],
    at: usize,
    proto: u8,
    l4_len: usize,
) -> Option<u8> {
    match proto {
        ipv4::PROTO_TCP => {
            let t: &[u8; l4::TCP_MIN_LEN] = f.get(at..at + l4::TCP_MIN_LEN)?.try_into().ok()?;
            let off = ((t[12] >> 4) as usize) * 4;
            // A data offset of at least a header that fits in `l4_len` also says that a header
            // fits.
            if off < l4::TCP_MIN_LEN || off > l4_len {
                return None;
            }
            Some(t[13])
        }
        ipv4::PROTO_UDP => {
            // As for TCP: a UDP length of at least a header that fits says that a header fits.
            let len = wire::be16(h, at + 4) as usize;
            if len < l4::UDP_LEN || len > l4_len {
                return None;
            }
            Some(0)
        }
        _ => None,
    }
}

/// What `parse_any` reads of a frame `common_header` accepted, field by field into `out`.
#[inline(always)]
pub(crate) fn write_common(h: &CommonHeader, tcp_flags: u8, out: &mut Parsed) {
    const L3: usize = wire::ethernet::HEADER_LEN;
    const L4: usize = L3 + ipv4::MIN_HEADER_LEN;
    let flags_frag = wire::be16(h, L3 + ipv4::field::FLAGS_FRAG);
    out.l3 = L3 as u8;
    out.ihl = ipv4::MIN_HEADER_LEN as u8;
    out.ip_len = wire::be16(h, L3 + ipv4::field::TOTAL_LEN);
    out.l4 = L4 as u8;
    out.proto = h[L3 + ipv4::field::PROTOCOL];
    out.tos = h[L3 + ipv4::field::TOS];
    out.ttl = h[L3 + ipv4::field::TTL];
    out.df = flags_frag & ipv4::FLAG_DF != 0;
    out.src = wire::ip4(h, L3 + ipv4::field::SRC);
    out.dst = wire::ip4(h, L3 + ipv4::field::DST);
    out.fragment = Fragment::Whole;
    out.sport = wire::be16(h, L4);
    out.dport = wire::be16(h, L4 + 2);
    out.tcp_flags = tcp_flags;
}

/// Every frame `parse_common` does not take: VLAN tags, options, fragments, ARP, other
/// protocols and everything malformed.
#[inline(never)]
fn parse_any(frame: &[u8]) -> Result<Frame, DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    match eth.ethertype() {
        wire::ETHERTYPE_IPV4 => {}
        wire::ETHERTYPE_ARP => return Ok(Frame::Arp),
        wire::ETHERTYPE_IPV6 => return Ok(Frame::Ipv6),
        _ => return Err(DropReason::UnsupportedEthertype),
    }
    let l3 = eth.header_len();
    let ip = Ipv4Header::new_checked(eth.payload()).map_err(|_| DropReason::MalformedIpv4)?;
    let ihl = ip.header_len();
    let fragment = if !ip.is_fragment() {
        Fragment::Whole
    } else if ip.frag_offset() == 0 {
        Fragment::First
    } else {
        Fragment::Later
    };
    let mut p = Parsed {
        // Bounded by the checks above: l3 is 14 or 18, ihl at most 60, and the total length
        // came from a 16-bit field.
        l3: l3 as u8,
        ihl: ihl as u8,
        ip_len: ip.total_len() as u16,
        l4: 0,
        proto: ip.protocol(),
        tos: ip.tos(),
        ttl: ip.ttl(),
        df: ip.dont_fragment(),
        src: ip.src(),
        dst: ip.dst(),
        fragment,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
    };
    if fragment == Fragment::Later {
        return Ok(Frame::Ipv4(p));
    }
    let payload = ip.payload();
    match p.proto {
        ipv4::PROTO_TCP => {
            let t = l4::TcpHeader::new_checked(payload).map_err(|_| DropReason::MalformedL4)?;
            p.sport = t.src_port();
            p.dport = t.dst_port();
            p.tcp_flags = t.flags();
            p.l4 = (l3 + ihl) as u8;
        }
        ipv4::PROTO_UDP => {
            // A first fragment's UDP length covers the whole datagram, so check only the header.
            if payload.len() < l4::UDP_LEN {
                return Err(DropReason::MalformedL4);
            }
            if fragment == Fragment::Whole {
                l4::UdpHeader::new_checked(payload).map_err(|_| DropReason::MalformedL4)?;
            }
            p.sport = wire::be16(payload, 0);
            p.dport = wire::be16(payload, 2);
            p.l4 = (l3 + ihl) as u8;
        }
        ipv4::PROTO_ICMP => {
            if payload.len() < wire::icmp::HEADER_LEN {
                return Err(DropReason::MalformedL4);
            }
            p.l4 = (l3 + ihl) as u8;
        }
        _ => {}
    }
    Ok(Frame::Ipv4(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A valid untagged TCP or UDP frame, the shape `parse_common` is for.
    fn frame(proto: u8, payload: usize) -> Vec<u8> {
        let l4 = if proto == ipv4::PROTO_TCP { l4::TCP_MIN_LEN } else { l4::UDP_LEN };
        let mut f = vec![0u8; 34 + l4 + payload];
        f[12..14].copy_from_slice(&wire::ETHERTYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((20 + l4 + payload) as u16).to_be_bytes());
        f[20] = 0x40;
        f[22] = 64;
        f[23] = proto;
        f[26..34].copy_from_slice(&[192, 0, 2, 1, 10, 0, 0, 100]);
        f[34..38].copy_from_slice(&[0x9c, 0x40, 0, 80]);
        if proto == ipv4::PROTO_TCP {
            f[46] = 5 << 4;
            f[47] = l4::TCP_SYN;
        } else {
            f[38..40].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
        }
        f
    }

    #[test]
    fn common_shapes_take_the_fast_path() {
        for proto in [ipv4::PROTO_TCP, ipv4::PROTO_UDP] {
            let f = frame(proto, 6);
            let mut p = Parsed::EMPTY;
            assert!(parse_common(&f, &mut p), "fast path");
            assert_eq!(Ok(Frame::Ipv4(p)), parse_any(&f));
            assert_eq!((p.sport, p.dport, p.l4(), p.df), (40000, 80, Some(34), true));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]
        /// Whatever the fast path accepts, the full parser reads identically; corrupting bytes
        /// of valid frames (and cutting them short) reaches both sides of every check.
        #[test]
        fn fast_path_agrees_with_full_parser(
            tcp in any::<bool>(),
            payload in 0usize..24,
            edits in proptest::collection::vec((0usize..64, any::<u8>()), 0..4),
            cut in 0usize..70,
        ) {
            let mut f = frame(if tcp { ipv4::PROTO_TCP } else { ipv4::PROTO_UDP }, payload);
            for (at, byte) in edits {
                if at < f.len() {
                    f[at] = byte;
                }
            }
            f.truncate(f.len().saturating_sub(cut % 8));
            let mut p = Parsed::EMPTY;
            if parse_common(&f, &mut p) {
                prop_assert_eq!(Ok(Frame::Ipv4(p)), parse_any(&f));
            }
        }
    }
}
