//! The DSR rewrites for IPv6 packets, IPv4 packets tunnelled over IPv6 (4in6), ICMPv6 Packet
//! Too Big, and inline routing of IPv6.
//!
//! IPv6 is never fragmented on the way: what does not fit the egress MTU (after the outer
//! header, for a tunnel) is answered with Packet Too Big, whatever the mode.

use crate::buf::PacketBuf;
use crate::checksum;
use crate::flow::{fold16, mix64};
use crate::parse::{Fragment, Parsed};
use crate::parse6::Parsed6;
use crate::rewrite::{EncapResult, OUTER_TTL};
use crate::snapshot::{Forward, ForwardMode};
use crate::wire::ipv6::{self, Ipv6Repr};
use crate::wire::{be16, ethernet, icmpv6, l4};

/// Bytes an outer IPv6 header adds (ip6ip6, 4in6).
pub const IP6_OVERHEAD: usize = ipv6::HEADER_LEN;

/// Rewrite a client→VIP IPv6 packet (or a probe shaped like one) for `mode`, toward `f`.
#[inline]
pub fn to_backend6<B: PacketBuf>(pkt: &mut B, p: &Parsed6, mode: ForwardMode, f: &Forward) -> EncapResult {
    match mode {
        ForwardMode::L2 | ForwardMode::Dscp(_) if p.ip_len > f.mtu as usize => {
            EncapResult::TooBig { mtu: f.mtu }
        }
        ForwardMode::L2 => {
            ethernet::set_mac_pair(pkt.data_mut(), f.macs);
            EncapResult::Done
        }
        ForwardMode::Dscp(code) => {
            rewrite_dscp6(pkt.data_mut(), p, code, f.real_ip6, f.macs);
            EncapResult::Done
        }
        ForwardMode::Ipip => {
            let tunnel =
                Tunnel { nh: ipv6::NH_IPV6, traffic_class: p.traffic_class, flow_label: flow_label6(p) };
            encap_in6(pkt, p.l3, p.ip_len, tunnel, f)
        }
    }
}

/// `dscp` for IPv6: the DSCP bits of the traffic class := `code` (ECN and the flow label kept),
/// destination := the server's real address, the TCP/UDP/ICMPv6 checksum updated for the
/// pseudo-header's change (IPv6 has no header checksum); Ethernet to the next hop.
pub fn rewrite_dscp6(frame: &mut [u8], p: &Parsed6, code: u8, real_ip: [u8; 16], macs: [u8; 12]) {
    let ip = p.l3;
    let Some(h) = frame.get_mut(ip..ip + ipv6::HEADER_LEN) else { return };
    ipv6::set_traffic_class(h, (code << 2) | (p.traffic_class & 0x03));
    h[ipv6::field::DST..ipv6::field::DST + 16].copy_from_slice(&real_ip);
    if let Some(l4_at) = p.l4 {
        let at = match p.proto {
            ipv6::NH_TCP => Some(l4_at + l4::TCP_CHECKSUM),
            ipv6::NH_UDP => Some(l4_at + l4::UDP_CHECKSUM),
            ipv6::NH_ICMPV6 => Some(l4_at + 2),
            _ => None,
        };
        if let Some(at) = at.filter(|at| at + 2 <= frame.len()) {
            let mut delta = 0;
            for i in 0..4 {
                let w = |a: &[u8; 16]| [a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]];
                delta += checksum::delta32(w(&p.dst), w(&real_ip));
            }
            let old = be16(frame, at);
            let mut new = checksum::apply(old, delta);
            if p.proto == ipv6::NH_UDP && new == 0 {
                new = 0xffff;
            }
            frame[at..at + 2].copy_from_slice(&new.to_be_bytes());
        }
    }
    ethernet::set_mac_pair(frame, macs);
}

/// What an outer IPv6 header carries besides the addresses.
#[derive(Debug, Clone, Copy)]
pub struct Tunnel {
    /// 41 (IPv6 inside) or 4 (IPv4 inside).
    pub nh: u8,
    /// Copied from the inner packet, so the underlay's QoS sees the client's marking.
    pub traffic_class: u8,
    pub flow_label: u32,
}

/// Prepend an outer IPv6 header (LB → server, hop limit 64) to the IP packet at `l3` of
/// `inner_len` bytes; Ethernet to the next hop with EtherType IPv6. Too big for the egress MTU
/// → `TooBig` with the MTU the inner packet can have.
pub fn encap_in6<B: PacketBuf + ?Sized>(
    pkt: &mut B,
    l3: usize,
    inner_len: usize,
    t: Tunnel,
    f: &Forward,
) -> EncapResult {
    let mtu = f.mtu as usize;
    if inner_len + IP6_OVERHEAD > mtu {
        return EncapResult::TooBig { mtu: mtu.saturating_sub(IP6_OVERHEAD) as u16 };
    }
    if !pkt.set_len(l3 + inner_len) || !pkt.prepend(IP6_OVERHEAD) {
        return EncapResult::NoBuffer;
    }
    let d = pkt.data_mut();
    d.copy_within(IP6_OVERHEAD..IP6_OVERHEAD + l3, 0);
    ethernet::set_mac_pair(d, f.macs);
    d[l3 - 2..l3].copy_from_slice(&crate::wire::ETHERTYPE_IPV6.to_be_bytes());
    Ipv6Repr {
        traffic_class: t.traffic_class,
        flow_label: t.flow_label,
        payload_len: inner_len as u16,
        next_header: t.nh,
        hop_limit: OUTER_TTL,
        src: f.outer_src6,
        dst: f.real_ip6,
    }
    .emit(&mut d[l3..l3 + IP6_OVERHEAD]);
    EncapResult::Done
}

/// `ipip` of an IPv4 packet to a backend with an IPv6 address (4in6, as Katran does). An
/// IPv4 packet too big for the tunnel: DF set → `TooBig` (the client gets "fragmentation
/// needed"); DF clear → `CannotFragment` (an IPv6 outer header is not fragmented on the way).
/// Through `dyn`: one copy, out of the way of the IPv4 path's inlining.
#[inline(never)]
pub fn encap_4in6(pkt: &mut dyn PacketBuf, p: &Parsed, f: &Forward) -> EncapResult {
    let t = Tunnel { nh: ipv6::NH_IPV4, traffic_class: p.tos, flow_label: flow_label4(p) };
    match encap_in6(pkt, p.l3(), p.ip_len(), t, f) {
        EncapResult::TooBig { .. } if !p.df => EncapResult::CannotFragment,
        r => r,
    }
}

/// The outer flow label (RFC 6438): a hash of the inner flow, so an underlay that hashes on it
/// spreads flows and keeps each on one path. Fragments hash on the addresses only, as the
/// flow table does, so all of a datagram takes one path. Never 0 ("no label").
#[inline]
pub fn flow_label6(p: &Parsed6) -> u32 {
    let ports = if p.fragment == Fragment::Whole { ((p.sport as u64) << 16) | p.dport as u64 } else { 0 };
    label(mix64(fold16(p.src) ^ mix64(fold16(p.dst) ^ (ports << 8) ^ p.proto as u64)))
}

#[inline]
pub fn flow_label4(p: &Parsed) -> u32 {
    let ports = if p.fragment == Fragment::Whole { ((p.sport as u64) << 16) | p.dport as u64 } else { 0 };
    let addrs = ((u32::from_be_bytes(p.src) as u64) << 32) | u32::from_be_bytes(p.dst) as u64;
    label(mix64(addrs ^ mix64((ports << 8) ^ p.proto as u64)))
}

#[inline]
fn label(h: u64) -> u32 {
    let l = ((h >> 32) as u32 ^ h as u32) & 0x000f_ffff;
    l.max(1)
}

/// How much a Packet Too Big may be in all: the minimum MTU, so it reaches any sender (RFC 4443).
const PTB_MAX: usize = ipv6::MIN_MTU as usize;

/// Turn the packet in place into an ICMPv6 Packet Too Big (type 2) back to its sender from
/// `from`, quoting as much of it as fits in 1280 bytes. The frame keeps its L2 header; the MACs
/// are swapped toward the sender. `false` when the buffer cannot hold it.
pub fn make_packet_too_big<B: PacketBuf>(
    pkt: &mut B,
    p: &Parsed6,
    from: [u8; 16],
    port_mac: [u8; 6],
    mtu: u16,
) -> bool {
    let l2 = p.l3;
    let icmp_at = l2 + ipv6::HEADER_LEN;
    let quote_at = icmp_at + icmpv6::HEADER_LEN;
    let quote = p.ip_len.min(PTB_MAX - ipv6::HEADER_LEN - icmpv6::HEADER_LEN);
    let total = quote_at + quote;
    // Grow first (the quote is read from l2..l2 + quote, inside the new length either way).
    if !pkt.set_len(total.max(l2 + p.ip_len)) {
        return false;
    }
    let d = pkt.data_mut();
    let sender_mac = [d[6], d[7], d[8], d[9], d[10], d[11]];
    d.copy_within(l2..l2 + quote, quote_at);
    ethernet::set_macs(d, sender_mac, port_mac);
    let msg_len = icmpv6::HEADER_LEN + quote;
    Ipv6Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: msg_len as u16,
        next_header: ipv6::NH_ICMPV6,
        hop_limit: 64,
        src: from,
        dst: p.src,
    }
    .emit(&mut d[l2..icmp_at]);
    let m = &mut d[icmp_at..quote_at];
    m[0] = icmpv6::PACKET_TOO_BIG;
    m[1] = 0;
    m[4..8].copy_from_slice(&(mtu.max(ipv6::MIN_MTU) as u32).to_be_bytes());
    icmpv6::fill_checksum(&mut d[icmp_at..quote_at + quote], from, p.src);
    pkt.set_len(total)
}

/// Inline mode, server side → client side, IPv6: new L2 addresses, hop limit − 1. `false` if
/// the hop limit is spent.
pub fn route_forward6(frame: &mut [u8], p: &Parsed6, next_hop: [u8; 6], port_mac: [u8; 6]) -> bool {
    if p.hop_limit <= 1 {
        return false;
    }
    frame[p.l3 + ipv6::field::HOP_LIMIT] = p.hop_limit - 1;
    ethernet::set_macs(frame, next_hop, port_mac);
    true
}
