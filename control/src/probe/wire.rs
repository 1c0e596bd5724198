//! A probe onto the wire: an IPv4 packet from the LB to the VIP, framed and then rewritten by
//! the dataplane's own `to_backend` for the service's mode — the same code that rewrites client
//! packets, so a probe follows exactly the path a client's packet does.

use dataplane::parse::{parse_into, Kind, Parsed};
use dataplane::rewrite::{self, EncapResult};
use dataplane::snapshot::{Forward, ForwardMode};
use std::net::IpAddr;

use dataplane::wire::{ipv4, EthernetFrame, Ipv4Header, Ipv6Header, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dataplane::{checksum, PacketBuf, PacketSink, VecPacket};

/// Probes are small: they never need an extra buffer (an outer fragment).
struct NoSink;

impl PacketSink<VecPacket> for NoSink {
    fn alloc(&mut self) -> Option<VecPacket> {
        None
    }
    fn emit(&mut self, _: u16, _: VecPacket) {}
}

/// Frame the IPv4 packet `ip` (LB → VIP, checksums correct) and rewrite it for `mode` toward
/// the backend `f`; `None` if the dataplane refuses it (which a well-formed probe never is).
pub fn onto_wire(ip: &[u8], mode: ForwardMode, f: &Forward, ident: &mut u16) -> Option<Vec<u8>> {
    let mut frame = Vec::with_capacity(14 + ip.len());
    frame.extend_from_slice(&f.next_hop());
    frame.extend_from_slice(&f.port_mac());
    frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(ip);
    let mut pkt = VecPacket::from_bytes(&frame);
    let mut p = Parsed::EMPTY;
    if parse_into(pkt.data(), &mut p) != Ok(Kind::Ipv4) {
        return None;
    }
    match rewrite::to_backend(&mut pkt, &p, mode, f, ident, &mut NoSink) {
        EncapResult::Done => Some(pad(pkt.data().to_vec())),
        _ => None,
    }
}

/// Ethernet's minimum frame (60 bytes without the FCS).
pub fn pad(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

/// Finish an IPv4 packet in place: total length, header checksum, and the TCP/UDP/ICMP
/// checksum computed from scratch.
pub fn finish_ipv4(pkt: &mut [u8]) {
    let ihl = ((pkt[0] & 0x0f) as usize) * 4;
    let total = pkt.len();
    pkt[ipv4::field::TOTAL_LEN..ipv4::field::TOTAL_LEN + 2].copy_from_slice(&(total as u16).to_be_bytes());
    pkt[ipv4::field::CHECKSUM..ipv4::field::CHECKSUM + 2].fill(0);
    let c = checksum::checksum(&pkt[..ihl]);
    pkt[ipv4::field::CHECKSUM..ipv4::field::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    let proto = pkt[ipv4::field::PROTOCOL];
    let mut src = [0u8; 4];
    let mut dst = [0u8; 4];
    src.copy_from_slice(&pkt[ipv4::field::SRC..ipv4::field::SRC + 4]);
    dst.copy_from_slice(&pkt[ipv4::field::DST..ipv4::field::DST + 4]);
    let l4 = &mut pkt[ihl..];
    let at = match proto {
        ipv4::PROTO_TCP if l4.len() >= 20 => dataplane::wire::l4::TCP_CHECKSUM,
        ipv4::PROTO_UDP if l4.len() >= 8 => dataplane::wire::l4::UDP_CHECKSUM,
        ipv4::PROTO_ICMP if l4.len() >= 8 => 2,
        _ => return,
    };
    l4[at..at + 2].fill(0);
    let acc =
        if proto == ipv4::PROTO_ICMP { 0 } else { checksum::pseudo_header(src, dst, proto, l4.len() as u16) };
    let mut c = checksum::finish(checksum::sum(l4, acc));
    if proto == ipv4::PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// The IPv4 packet of a frame (after the Ethernet header and any tag).
pub fn ip_of(frame: &[u8]) -> Option<&[u8]> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    (eth.ethertype() == ETHERTYPE_IPV4).then(|| eth.payload())
}

/// The IPv6 packet of a frame.
pub fn ip6_of(frame: &[u8]) -> Option<&[u8]> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    (eth.ethertype() == ETHERTYPE_IPV6).then(|| eth.payload())
}

/// The destination address of a frame's IP packet, of either family.
pub fn dst_of(frame: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = ip_of(frame) {
        return Ipv4Header::new_checked(ip).ok().map(|h| IpAddr::from(h.dst()));
    }
    Ipv6Header::new_checked(ip6_of(frame)?).ok().map(|h| IpAddr::from(h.dst()))
}

/// Frame the IPv6 packet `ip` (LB → VIP, checksums correct) and rewrite it for `mode` toward
/// the backend `f`, as `onto_wire` does for IPv4.
pub fn onto_wire6(ip: &[u8], mode: ForwardMode, f: &Forward) -> Option<Vec<u8>> {
    let mut frame = Vec::with_capacity(14 + ip.len());
    frame.extend_from_slice(&f.next_hop());
    frame.extend_from_slice(&f.port_mac());
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    frame.extend_from_slice(ip);
    let p = dataplane::parse6::parse6(&frame).ok()?;
    let mut pkt = VecPacket::from_bytes(&frame);
    match dataplane::rewrite6::to_backend6(&mut pkt, &p, mode, f) {
        EncapResult::Done => Some(pad(pkt.data().to_vec())),
        _ => None,
    }
}

/// Finish an IPv6 packet in place: payload length, and the TCP/UDP/ICMPv6 checksum (of the
/// header right behind the fixed one) computed from scratch.
pub fn finish_ipv6(pkt: &mut [u8]) {
    use dataplane::wire::ipv6;
    let plen = pkt.len() - ipv6::HEADER_LEN;
    pkt[ipv6::field::PAYLOAD_LEN..ipv6::field::PAYLOAD_LEN + 2].copy_from_slice(&(plen as u16).to_be_bytes());
    let nh = pkt[ipv6::field::NEXT_HEADER];
    let (src, dst) = (ipv6::ip16(pkt, ipv6::field::SRC), ipv6::ip16(pkt, ipv6::field::DST));
    let l4 = &mut pkt[ipv6::HEADER_LEN..];
    let at = match nh {
        ipv6::NH_TCP if l4.len() >= 20 => dataplane::wire::l4::TCP_CHECKSUM,
        ipv6::NH_UDP if l4.len() >= 8 => dataplane::wire::l4::UDP_CHECKSUM,
        ipv6::NH_ICMPV6 if l4.len() >= 8 => 2,
        _ => return,
    };
    l4[at..at + 2].fill(0);
    let acc = dataplane::wire::icmpv6::pseudo_header(src, dst, nh, l4.len() as u32);
    let mut c = checksum::finish(checksum::sum(l4, acc));
    if nh == ipv6::NH_UDP && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}
