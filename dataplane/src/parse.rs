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

/// The parsed headers of an IPv4 frame, as offsets and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Length of the Ethernet header (14, or 18 with an 802.1Q tag): where IP starts.
    pub l3: usize,
    pub ihl: usize,
    /// IP total length (the frame may carry Ethernet padding after it).
    pub ip_len: usize,
    pub proto: u8,
    pub tos: u8,
    pub ttl: u8,
    pub df: bool,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub fragment: Fragment,
    /// Where the L4 header starts, when this packet has one.
    pub l4: Option<usize>,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
}

/// What a frame is, at the first level the pipeline cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Arp,
    Ipv4(Parsed),
}

/// Parse a frame; malformed input becomes the drop reason that names what was wrong.
#[inline]
pub fn parse(frame: &[u8]) -> Result<Frame, DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    match eth.ethertype() {
        wire::ETHERTYPE_IPV4 => {}
        wire::ETHERTYPE_ARP => return Ok(Frame::Arp),
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
        l3,
        ihl,
        ip_len: ip.total_len(),
        proto: ip.protocol(),
        tos: ip.tos(),
        ttl: ip.ttl(),
        df: ip.dont_fragment(),
        src: ip.src(),
        dst: ip.dst(),
        fragment,
        l4: None,
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
            p.l4 = Some(l3 + ihl);
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
            p.l4 = Some(l3 + ihl);
        }
        ipv4::PROTO_ICMP => {
            if payload.len() < wire::icmp::HEADER_LEN {
                return Err(DropReason::MalformedL4);
            }
            p.l4 = Some(l3 + ihl);
        }
        _ => {}
    }
    Ok(Frame::Ipv4(p))
}
