//! The three DSR rewrites, the ICMP "fragmentation needed" reply, and inline routing.
//! Each works in place on a packet buffer whose headers `parse` has already validated.
//!
//! `to_backend` is the one place a DSR mode is applied: the workers call it for client packets
//! and the control core for its health probes, so a probe travels exactly the path a client's
//! packet does.

use crate::buf::{PacketBuf, PacketSink};
use crate::checksum;
use crate::parse::Parsed;
use crate::snapshot::{Forward, ForwardMode};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{be16, ethernet, fixed, icmp, ipv4, l4};

/// Bytes IP-in-IP adds.
pub const IPIP_OVERHEAD: usize = ipv4::MIN_HEADER_LEN;
/// TTL of the outer header we build.
pub const OUTER_TTL: u8 = 64;
/// How much of the offending packet a "fragmentation needed" quotes (RFC 1812: up to 576 bytes).
pub const ICMP_QUOTE_MAX: usize = 576 - ipv4::MIN_HEADER_LEN - icmp::HEADER_LEN;

/// Rewrite a client→VIP packet (or a probe shaped like one) for `mode`, toward the backend `f`.
/// `ident` is the sender's IPv4 identification counter, advanced when an outer header is made.
#[inline(always)]
pub fn to_backend<B: PacketBuf, S: PacketSink<B>>(
    pkt: &mut B,
    p: &Parsed,
    mode: ForwardMode,
    f: &Forward,
    ident: &mut u16,
    sink: &mut S,
) -> EncapResult {
    match mode {
        // A packet the egress cannot carry is refused here, not by the device (which would
        // also lose the frames queued behind it); these modes do not fragment.
        ForwardMode::L2 | ForwardMode::Dscp(_) if p.ip_len() > f.mtu as usize => {
            if p.df {
                EncapResult::TooBig { mtu: f.mtu }
            } else {
                EncapResult::CannotFragment
            }
        }
        ForwardMode::L2 => {
            rewrite_l2(pkt.data_mut(), f.macs);
            EncapResult::Done
        }
        ForwardMode::Dscp(code) => {
            rewrite_dscp(pkt.data_mut(), p, code, f.real_ip, f.macs);
            EncapResult::Done
        }
        ForwardMode::Ipip => {
            *ident = ident.wrapping_add(1);
            let prm = IpipParams {
                outer_src: f.outer_src,
                real_ip: f.real_ip,
                macs: f.macs,
                mtu: f.mtu as usize,
                ident: *ident,
                egress_port: f.port,
            };
            encap_ipip(pkt, p, &prm, f, sink)
        }
    }
}

/// `l2`: destination MAC := server MAC, source MAC := egress port MAC; nothing else changes.
#[inline]
pub fn rewrite_l2(frame: &mut [u8], macs: [u8; 12]) {
    ethernet::set_mac_pair(frame, macs);
}

/// `dscp`: DSCP := `code` (ECN kept), destination := server real IP, IP and TCP/UDP checksums
/// updated incrementally; Ethernet to the next hop.
#[inline]
pub fn rewrite_dscp(frame: &mut [u8], p: &Parsed, code: u8, real_ip: [u8; 4], macs: [u8; 12]) {
    let at = DscpAt { l3: p.l3(), l4: p.l4(), proto: p.proto, tos: p.tos };
    rewrite_dscp_at(frame, at, code, real_ip, checksum::delta32_le(p.dst, real_ip), macs);
}

/// What `rewrite_dscp` reads of a packet's parse: where its headers are, and the fields it
/// changes.
#[derive(Debug, Clone, Copy)]
pub struct DscpAt {
    pub l3: usize,
    /// Where the L4 header starts, when the packet has one.
    pub l4: Option<usize>,
    pub proto: u8,
    pub tos: u8,
}

/// `rewrite_dscp` from what it needs of the parse alone (the established-flow path has those
/// fields at hand and no `Parsed`), and `dst_delta`, the checksum delta of the destination's
/// change to `real_ip` (`checksum::delta32_le`; `Forward::csum_base` holds it for the VIP).
#[inline(always)]
pub fn rewrite_dscp_at(
    frame: &mut [u8],
    p: DscpAt,
    code: u8,
    real_ip: [u8; 4],
    dst_delta: u32,
    macs: [u8; 12],
) {
    let ip = p.l3;
    let Some(h) = frame.get_mut(ip..ip + ipv4::MIN_HEADER_LEN) else { return };
    // Both checksums are updated in the byte order the CPU loads them in (`delta32_le`): the
    // destination's change is shared by the IP checksum and the L4 pseudo-header.
    let tos = (code << 2) | (p.tos & 0x03);
    // The TOS is the second byte of word 0: its high byte, read little-endian.
    let tos_delta = checksum::delta16((p.tos as u16) << 8, (tos as u16) << 8);
    h[ipv4::field::TOS] = tos;
    let csum = checksum::apply(u16::from_le_bytes(fixed(h, ipv4::field::CHECKSUM)), tos_delta + dst_delta);
    h[ipv4::field::CHECKSUM..ipv4::field::CHECKSUM + 2].copy_from_slice(&csum.to_le_bytes());
    h[ipv4::field::DST..ipv4::field::DST + 4].copy_from_slice(&real_ip);
    // The L4 checksum covers the destination through the pseudo-header (later fragments carry
    // no L4 header, and ICMP has no pseudo-header).
    if let Some(l4_off) = p.l4 {
        let at = match p.proto {
            ipv4::PROTO_TCP => Some(l4_off + l4::TCP_CHECKSUM),
            ipv4::PROTO_UDP => Some(l4_off + l4::UDP_CHECKSUM),
            _ => None,
        };
        if let Some(at) = at {
            let Some(c) = frame.get_mut(at..at + 2) else { return };
            let old = u16::from_le_bytes(fixed(c, 0));
            // UDP checksum 0 means "none": it stays 0 (0 and all ones read the same either way).
            if !(p.proto == ipv4::PROTO_UDP && old == 0) {
                let mut new = checksum::apply(old, dst_delta);
                if p.proto == ipv4::PROTO_UDP && new == 0 {
                    new = 0xffff; // a computed zero is sent as all ones (RFC 768)
                }
                c.copy_from_slice(&new.to_le_bytes());
            }
        }
    }
    ethernet::set_mac_pair(frame, macs);
}

/// What the `ipip` encapsulation needs besides the packet.
#[derive(Debug, Clone, Copy)]
pub struct IpipParams {
    pub outer_src: [u8; 4],
    pub real_ip: [u8; 4],
    /// The next hop's MAC, then the egress port's (`Forward::macs`).
    pub macs: [u8; 12],
    /// IP MTU of the egress port.
    pub mtu: usize,
    pub ident: u16,
    pub egress_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapResult {
    /// Encapsulated in one packet.
    Done,
    /// Encapsulated and split into this many outer fragments (the first stays in the buffer).
    Fragmented(usize),
    /// Too big with DF set: the client must be told (nothing was changed).
    TooBig { mtu: u16 },
    /// No headroom or no buffer for a fragment (packet unusable).
    NoBuffer,
    /// Too big for the egress MTU, DF clear, in a mode that does not fragment (l2, dscp).
    CannotFragment,
}

/// `ipip`: prepend an outer IPv4 header (src LB, dst server, protocol 4, TTL 64, TOS and DF from
/// the inner header, fresh ID); Ethernet to the next hop. Oversized: DF set → `TooBig`; DF clear
/// → the outer packet is fragmented, extra fragments go to `sink`. A backend with an IPv6
/// address gets 4in6 instead. Out of line: inlined into the pipeline, its size cost every
/// mode's path registers (docs/performance.md).
#[inline(never)]
pub fn encap_ipip<B: PacketBuf, S: PacketSink<B>>(
    pkt: &mut B,
    p: &Parsed,
    prm: &IpipParams,
    f: &Forward,
    sink: &mut S,
) -> EncapResult {
    if f.real_v6 {
        return crate::rewrite6::encap_4in6(pkt, p, f);
    }
    let inner_len = p.ip_len();
    let outer_len = inner_len + IPIP_OVERHEAD;
    if outer_len > prm.mtu && p.df {
        let mtu = prm.mtu.saturating_sub(IPIP_OVERHEAD).min(u16::MAX as usize) as u16;
        return EncapResult::TooBig { mtu };
    }
    let l2 = p.l3();
    // Drop Ethernet padding after the inner datagram so the outer length is exact.
    if !pkt.set_len(l2 + inner_len) || !pkt.prepend(IPIP_OVERHEAD) {
        return EncapResult::NoBuffer;
    }
    let d = pkt.data_mut();
    d.copy_within(IPIP_OVERHEAD..IPIP_OVERHEAD + l2, 0);
    ethernet::set_mac_pair(d, prm.macs);
    if outer_len <= prm.mtu {
        outer_header(p, prm, inner_len, false, 0).emit(&mut d[l2..l2 + IPIP_OVERHEAD]);
        return EncapResult::Done;
    }
    fragment_outer(pkt, p, prm, sink)
}

/// `encap_ipip` of an untagged IPv4 packet whose encapsulation fits the egress MTU, toward an
/// IPv4 backend, from what it needs of the parse: where the inner datagram ends (`inner_len`
/// after the 14-byte Ethernet header) and its TOS and DF. The same bytes as `encap_ipip` (the
/// established-flow path's property test holds them equal); `false`, with nothing changed, when
/// the buffer has no room.
#[inline(always)]
pub fn encap_ipip_untagged<B: PacketBuf>(
    pkt: &mut B,
    inner_len: usize,
    tos: u8,
    df: bool,
    f: &Forward,
    ident: u16,
) -> bool {
    const L3: usize = ethernet::HEADER_LEN;
    if !pkt.set_len(L3 + inner_len) || !pkt.prepend(IPIP_OVERHEAD) {
        return false;
    }
    let Some(d) = pkt.data_mut().first_chunk_mut::<{ L3 + IPIP_OVERHEAD }>() else { return false };
    // The Ethernet header moves to the new front: new addresses, the same (IPv4) type.
    let mut eth = [0u8; L3];
    eth[..12].copy_from_slice(&f.macs);
    eth[12..].copy_from_slice(&crate::wire::ETHERTYPE_IPV4.to_be_bytes());
    d[..L3].copy_from_slice(&eth);
    Ipv4Repr { tos, ident, dont_fragment: df, ..outer_ipip(f.outer_src, f.real_ip, inner_len as u16) }
        .emit_with_fixed_sum(&mut d[L3..], f.csum_base);
    true
}

/// The outer header of an IPIP packet from `src` to `dst` carrying `payload_len` bytes, before
/// the fields taken from the inner packet (TOS, DF) and the identification.
#[inline(always)]
pub fn outer_ipip(src: [u8; 4], dst: [u8; 4], payload_len: u16) -> Ipv4Repr {
    Ipv4Repr::new(ipv4::PROTO_IPIP, src, dst, payload_len, OUTER_TTL)
}

/// The outer header of an IPIP packet (or of one of its fragments) carrying `payload_len` bytes.
#[inline(always)]
fn outer_header(p: &Parsed, prm: &IpipParams, payload_len: usize, more: bool, offset: usize) -> Ipv4Repr {
    Ipv4Repr {
        tos: p.tos,
        ident: prm.ident,
        dont_fragment: p.df,
        more_fragments: more,
        frag_offset: offset as u16,
        ..outer_ipip(prm.outer_src, prm.real_ip, payload_len as u16)
    }
}

/// Split an encapsulated packet (DF clear) into outer fragments of at most `mtu` bytes.
fn fragment_outer<B: PacketBuf, S: PacketSink<B>>(
    pkt: &mut B,
    p: &Parsed,
    prm: &IpipParams,
    sink: &mut S,
) -> EncapResult {
    let l2 = p.l3();
    let inner_len = p.ip_len();
    let chunk = (prm.mtu - IPIP_OVERHEAD) & !7;
    if chunk == 0 {
        return EncapResult::NoBuffer;
    }
    let payload_at = l2 + IPIP_OVERHEAD;
    let mut made = 1;
    let mut off = chunk;
    while off < inner_len {
        let len = chunk.min(inner_len - off);
        let Some(mut frag) = sink.alloc() else {
            return EncapResult::NoBuffer;
        };
        if !frag.set_len(l2 + IPIP_OVERHEAD + len) {
            return EncapResult::NoBuffer;
        }
        let src = pkt.data();
        let out = frag.data_mut();
        out[..l2].copy_from_slice(&src[..l2]);
        out[l2 + IPIP_OVERHEAD..].copy_from_slice(&src[payload_at + off..payload_at + off + len]);
        outer_header(p, prm, len, off + len < inner_len, off).emit(&mut out[l2..l2 + IPIP_OVERHEAD]);
        sink.emit(prm.egress_port, frag);
        made += 1;
        off += len;
    }
    pkt.set_len(payload_at + chunk);
    outer_header(p, prm, chunk, true, 0).emit(&mut pkt.data_mut()[l2..payload_at]);
    EncapResult::Fragmented(made)
}

/// Turn the packet in place into an ICMP "fragmentation needed" (type 3 code 4) back to its
/// sender, quoting its IP header and as much payload as fits in 576 bytes. The frame keeps its
/// L2 header (and VLAN tag); the MACs are swapped toward the sender.
pub fn make_frag_needed<B: PacketBuf>(
    pkt: &mut B,
    p: &Parsed,
    from: [u8; 4],
    port_mac: [u8; 6],
    mtu: u16,
) -> bool {
    let l2 = p.l3();
    let quote = p.ip_len().min(ICMP_QUOTE_MAX);
    let icmp_at = l2 + ipv4::MIN_HEADER_LEN;
    let quote_at = icmp_at + icmp::HEADER_LEN;
    let total = quote_at + quote;
    // One length change first: the quote's source (l2..l2 + quote) lies inside the new length.
    if !pkt.set_len(total) {
        return false;
    }
    let d = pkt.data_mut();
    let sender_mac = [d[6], d[7], d[8], d[9], d[10], d[11]];
    d.copy_within(l2..l2 + quote, quote_at);
    ethernet::set_macs(d, sender_mac, port_mac);
    let icmp_len = icmp::HEADER_LEN + quote;
    // Precedence "internetwork control" (0xc0), as routers mark their ICMP errors.
    Ipv4Repr {
        tos: 0xc0,
        dont_fragment: true,
        ..Ipv4Repr::new(ipv4::PROTO_ICMP, from, p.src, icmp_len as u16, 64)
    }
    .emit(&mut d[l2..icmp_at]);
    let m = &mut d[icmp_at..quote_at];
    m[0] = icmp::DEST_UNREACHABLE;
    m[1] = icmp::CODE_FRAG_NEEDED;
    m[2..6].fill(0);
    m[6..8].copy_from_slice(&mtu.to_be_bytes());
    let c = checksum::checksum(&d[icmp_at..total]);
    d[icmp_at + 2..icmp_at + 4].copy_from_slice(&c.to_be_bytes());
    true
}

/// Inline mode, server side → client side: new L2 addresses, TTL − 1, IP checksum updated;
/// addresses, ports and payload untouched. `false` if the TTL is spent.
#[inline]
pub fn route_forward(frame: &mut [u8], p: &Parsed, next_hop: [u8; 6], port_mac: [u8; 6]) -> bool {
    if p.ttl <= 1 {
        return false;
    }
    let at = p.l3() + ipv4::field::TTL;
    let old = be16(frame, at);
    frame[at] = p.ttl - 1;
    let new = be16(frame, at);
    let ck = p.l3() + ipv4::field::CHECKSUM;
    let c = checksum::update16(be16(frame, ck), old, new);
    frame[ck..ck + 2].copy_from_slice(&c.to_be_bytes());
    ethernet::set_macs(frame, next_hop, port_mac);
    true
}
