//! One pass over the headers of an IPv6 frame: the fixed header, a bounded walk over the
//! extension headers, and the TCP/UDP ports or the ICMPv6 type behind them.
//!
//! What cannot be handled safely is refused with the reason: a routing header with segments
//! left (the packet is not for its destination address yet), a hop-by-hop header anywhere but
//! first, a second fragment header, more extension headers than `MAX_EXTENSION_HEADERS`, or a
//! first fragment that does not carry the whole upper-layer header (RFC 7112). A fragment
//! header of an unfragmented packet (an "atomic fragment", RFC 6946) is read as whole.

use crate::counters::DropReason;
use crate::parse::Fragment;
use crate::wire::{self, ipv6, l4, EthernetFrame, Ipv6Header};

/// Extension headers walked before a packet is refused: real traffic carries one or two.
pub const MAX_EXTENSION_HEADERS: usize = 6;

/// The parsed headers of an IPv6 frame, as offsets and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed6 {
    /// Where the IPv6 header starts (14, or 18 with an 802.1Q tag).
    pub l3: usize,
    /// Header, extension headers and payload: the bytes that count (the frame may be padded).
    pub ip_len: usize,
    /// Where the upper-layer header starts, when this packet carries one we read.
    pub l4: Option<usize>,
    /// The upper-layer protocol, after the extension headers.
    pub proto: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub fragment: Fragment,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
}

/// Parse the IPv6 packet of a frame whose EtherType is IPv6.
pub fn parse6(frame: &[u8]) -> Result<Parsed6, DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    if eth.ethertype() != wire::ETHERTYPE_IPV6 {
        return Err(DropReason::UnsupportedEthertype);
    }
    let l3 = eth.header_len();
    let ip = Ipv6Header::new_checked(eth.payload()).map_err(|_| DropReason::MalformedIpv6)?;
    let mut p = Parsed6 {
        l3,
        ip_len: ip.total_len(),
        l4: None,
        proto: ip.next_header(),
        traffic_class: ip.traffic_class(),
        flow_label: ip.flow_label(),
        hop_limit: ip.hop_limit(),
        src: ip.src(),
        dst: ip.dst(),
        fragment: Fragment::Whole,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
    };
    let payload = ip.payload();
    let mut at = 0usize;
    let mut seen_fragment = false;
    for n in 0..=MAX_EXTENSION_HEADERS {
        let h = &payload[at.min(payload.len())..];
        let len = match p.proto {
            ipv6::NH_HOP_BY_HOP if n > 0 => return Err(DropReason::Ipv6ExtensionHeader),
            ipv6::NH_HOP_BY_HOP | ipv6::NH_DEST_OPTS | ipv6::NH_ROUTING => {
                if h.len() < 8 {
                    return Err(DropReason::MalformedIpv6);
                }
                // Segments left ≠ 0: the destination is a waypoint, not the final address.
                if p.proto == ipv6::NH_ROUTING && h[3] != 0 {
                    return Err(DropReason::Ipv6ExtensionHeader);
                }
                (h[1] as usize + 1) * 8
            }
            ipv6::NH_FRAGMENT => {
                if h.len() < 8 {
                    return Err(DropReason::MalformedIpv6);
                }
                if seen_fragment {
                    return Err(DropReason::Ipv6ExtensionHeader);
                }
                seen_fragment = true;
                let off_m = wire::be16(h, 2);
                let (offset, more) = (off_m >> 3, off_m & 1 != 0);
                p.fragment = match (offset, more) {
                    (0, false) => Fragment::Whole,
                    (0, true) => Fragment::First,
                    _ => Fragment::Later,
                };
                8
            }
            _ => break,
        };
        if n == MAX_EXTENSION_HEADERS {
            return Err(DropReason::Ipv6ExtensionHeader);
        }
        if len > h.len() {
            return Err(DropReason::MalformedIpv6);
        }
        p.proto = h[0];
        at += len;
    }
    if p.fragment == Fragment::Later {
        return Ok(p);
    }
    let l4_at = l3 + ipv6::HEADER_LEN + at;
    let upper = &payload[at.min(payload.len())..];
    match p.proto {
        ipv6::NH_TCP => {
            let t = l4::TcpHeader::new_checked(upper).map_err(|_| DropReason::MalformedL4)?;
            p.sport = t.src_port();
            p.dport = t.dst_port();
            p.tcp_flags = t.flags();
            p.l4 = Some(l4_at);
        }
        ipv6::NH_UDP => {
            if upper.len() < l4::UDP_LEN {
                return Err(DropReason::MalformedL4);
            }
            if p.fragment == Fragment::Whole {
                l4::UdpHeader::new_checked(upper).map_err(|_| DropReason::MalformedL4)?;
            }
            p.sport = wire::be16(upper, 0);
            p.dport = wire::be16(upper, 2);
            p.l4 = Some(l4_at);
        }
        ipv6::NH_ICMPV6 => {
            if upper.len() < wire::icmpv6::HEADER_LEN {
                return Err(DropReason::MalformedL4);
            }
            p.l4 = Some(l4_at);
        }
        _ => {}
    }
    Ok(p)
}

/// Bytes of a common-shape IPv6 frame read at fixed offsets: Ethernet, the fixed header, and the
/// first eight bytes of TCP or UDP.
pub(crate) const COMMON6_LEN: usize = COMMON6_L4 + l4::UDP_LEN;
/// The first `COMMON6_LEN` bytes of a common-shape IPv6 frame.
pub(crate) type CommonHeader6 = [u8; COMMON6_LEN];
/// Where a common-shape IPv6 frame's TCP or UDP header starts.
pub(crate) const COMMON6_L4: usize = wire::ethernet::HEADER_LEN + ipv6::HEADER_LEN;
/// Where a common-shape IPv6 frame's TCP flags are.
pub(crate) const COMMON6_TCP_FLAGS_AT: usize = COMMON6_L4 + 13;

/// Whether `f` has the IPv6 shape almost all load-balanced traffic has — untagged, TCP or UDP
/// right behind the fixed header — with every check `parse6` makes of such a frame: its first
/// bytes and its TCP flags (0 for UDP). What this accepts, `parse6` reads as `write_common6`
/// does (a property test compares the two).
#[inline(always)]
pub(crate) fn common_header6(f: &[u8]) -> Option<(&CommonHeader6, u8)> {
    const L3: usize = wire::ethernet::HEADER_LEN;
    const L4: usize = COMMON6_L4;
    let h: &CommonHeader6 = f.first_chunk()?;
    if wire::be16(h, L3 - 2) != wire::ETHERTYPE_IPV6 || h[L3] >> 4 != 6 {
        return None;
    }
    let payload_len = wire::be16(h, L3 + ipv6::field::PAYLOAD_LEN) as usize;
    if ipv6::HEADER_LEN + payload_len > f.len() - L3 {
        return None;
    }
    // IPv6 numbers TCP and UDP as IPv4 does.
    let tcp_flags = crate::parse::whole_l4(f, h, L4, h[L3 + ipv6::field::NEXT_HEADER], payload_len)?;
    Some((h, tcp_flags))
}

/// What `parse6` reads of a frame `common_header6` accepted.
#[inline(always)]
pub(crate) fn write_common6(h: &CommonHeader6, tcp_flags: u8) -> Parsed6 {
    const L3: usize = wire::ethernet::HEADER_LEN;
    const L4: usize = COMMON6_L4;
    Parsed6 {
        l3: L3,
        ip_len: ipv6::HEADER_LEN + wire::be16(h, L3 + ipv6::field::PAYLOAD_LEN) as usize,
        l4: Some(L4),
        proto: h[L3 + ipv6::field::NEXT_HEADER],
        traffic_class: ((wire::be16(h, L3) >> 4) & 0xff) as u8,
        flow_label: u32::from_be_bytes([0, h[L3 + 1] & 0x0f, h[L3 + 2], h[L3 + 3]]),
        hop_limit: h[L3 + ipv6::field::HOP_LIMIT],
        src: ipv6::ip16(h, L3 + ipv6::field::SRC),
        dst: ipv6::ip16(h, L3 + ipv6::field::DST),
        fragment: Fragment::Whole,
        sport: wire::be16(h, L4),
        dport: wire::be16(h, L4 + 2),
        tcp_flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::v6;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]
        /// Whatever the common shape accepts, `parse6` reads identically; corrupting bytes of
        /// valid frames (and cutting them short) reaches both sides of every check.
        #[test]
        fn common_shape_agrees_with_parse6(
            tcp in any::<bool>(),
            payload in 0usize..24,
            edits in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
            cut in 0usize..12,
        ) {
            let mut f = if tcp {
                v6::tcp(v6::CLIENT, v6::VIP, 40000, 80, l4::TCP_SYN | l4::TCP_ACK, payload)
            } else {
                v6::udp(v6::CLIENT, v6::VIP, 5000, 53, payload)
            };
            for (at, byte) in edits {
                if at < f.len() {
                    f[at] = byte;
                }
            }
            f.truncate(f.len().saturating_sub(cut));
            if let Some((h, flags)) = common_header6(&f) {
                prop_assert_eq!(Ok(write_common6(h, flags)), parse6(&f));
            }
        }
    }

    #[test]
    fn tcp_udp_and_icmpv6_are_read() {
        let f = v6::tcp(v6::CLIENT, v6::VIP, 40000, 80, l4::TCP_SYN, 0);
        let p = parse6(&f).unwrap();
        assert_eq!((p.proto, p.sport, p.dport, p.tcp_flags), (ipv6::NH_TCP, 40000, 80, l4::TCP_SYN));
        assert_eq!((p.l3, p.l4, p.ip_len, p.fragment), (14, Some(54), 60, Fragment::Whole));
        assert_eq!((p.src, p.dst), (v6::CLIENT, v6::VIP));
        let p = parse6(&v6::udp(v6::CLIENT, v6::VIP, 5000, 53, 10)).unwrap();
        assert_eq!((p.proto, p.dport, p.ip_len), (ipv6::NH_UDP, 53, 58));
        let p = parse6(&v6::echo_request(v6::CLIENT, v6::VIP)).unwrap();
        assert_eq!((p.proto, p.l4), (ipv6::NH_ICMPV6, Some(54)));
    }

    #[test]
    fn extension_headers_are_walked_and_bounded() {
        let base = v6::tcp(v6::CLIENT, v6::VIP, 40000, 80, l4::TCP_ACK, 4);
        // Hop-by-hop then destination options: walked to the TCP header.
        let f = v6::with_extensions(&base, &[ipv6::NH_HOP_BY_HOP, ipv6::NH_DEST_OPTS]);
        let p = parse6(&f).unwrap();
        assert_eq!((p.proto, p.dport, p.l4), (ipv6::NH_TCP, 80, Some(54 + 16)));
        // Hop-by-hop anywhere but first, too many headers: refused.
        let f = v6::with_extensions(&base, &[ipv6::NH_DEST_OPTS, ipv6::NH_HOP_BY_HOP]);
        assert_eq!(parse6(&f), Err(DropReason::Ipv6ExtensionHeader));
        let f = v6::with_extensions(&base, &[ipv6::NH_DEST_OPTS; MAX_EXTENSION_HEADERS + 1]);
        assert_eq!(parse6(&f), Err(DropReason::Ipv6ExtensionHeader));
        let f = v6::with_extensions(&base, &[ipv6::NH_DEST_OPTS; MAX_EXTENSION_HEADERS]);
        assert!(parse6(&f).is_ok(), "the bound itself is allowed");
        // A routing header with segments left is refused; with none left it is skipped.
        let mut f = v6::with_extensions(&base, &[ipv6::NH_ROUTING]);
        assert!(parse6(&f).is_ok());
        f[54 + 3] = 1;
        assert_eq!(parse6(&f), Err(DropReason::Ipv6ExtensionHeader));
        // An extension header longer than the packet.
        let mut f = v6::with_extensions(&base, &[ipv6::NH_DEST_OPTS]);
        f[54 + 1] = 200;
        assert_eq!(parse6(&f), Err(DropReason::MalformedIpv6));
    }

    #[test]
    fn fragments_are_told_apart() {
        let base = v6::udp(v6::CLIENT, v6::VIP, 5000, 53, 40);
        let first = v6::fragment(&base, 0, true, 7);
        let p = parse6(&first).unwrap();
        assert_eq!((p.fragment, p.dport, p.proto), (Fragment::First, 53, ipv6::NH_UDP));
        let later = v6::fragment(&base, 6, false, 7);
        let p = parse6(&later).unwrap();
        assert_eq!((p.fragment, p.l4, p.dport), (Fragment::Later, None, 0));
        let atomic = v6::fragment(&base, 0, false, 7);
        assert_eq!(parse6(&atomic).unwrap().fragment, Fragment::Whole);
        // Two fragment headers.
        let twice = v6::fragment(&first, 0, true, 8);
        assert_eq!(parse6(&twice), Err(DropReason::Ipv6ExtensionHeader));
    }

    #[test]
    fn malformed_frames_are_refused_with_their_reason() {
        let f = v6::tcp(v6::CLIENT, v6::VIP, 40000, 80, l4::TCP_SYN, 0);
        assert_eq!(parse6(&f[..40]), Err(DropReason::MalformedIpv6));
        let mut long = f.clone();
        long[18..20].copy_from_slice(&500u16.to_be_bytes());
        assert_eq!(parse6(&long), Err(DropReason::MalformedIpv6), "payload length past the frame");
        let mut v = f.clone();
        v[14] = 0x45;
        assert_eq!(parse6(&v), Err(DropReason::MalformedIpv6));
        let mut short = f.clone();
        short[18..20].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(parse6(&short), Err(DropReason::MalformedL4), "a TCP header cut by the length");
    }
}
