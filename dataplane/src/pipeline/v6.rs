//! The IPv6 path of a worker: the same stages as IPv4 (classify, find or schedule the flow,
//! rewrite for the mode), on the IPv6 flow and persistence tables. Reached out of line from
//! the IPv4 path, so IPv4's instruction count does not pay for it.

use std::net::{IpAddr, Ipv6Addr};

use super::{change_state, punt, refresh, BurstCx, Punt, State, Verdict};
use crate::buf::{PacketBuf, PacketSink};
use crate::counters::DropReason;
use crate::flow::{hash_addr6, FlowKey6, FlowSlot6};
use crate::parse::Fragment;
use crate::parse6::{parse6, Parsed6};
use crate::persist::persisted_addr;
use crate::rewrite::EncapResult;
use crate::rewrite6;
use crate::sched;
use crate::snapshot::{Forward, PortRole, ServiceInfo, Snapshot};
use crate::table::{self, Insert, Millis};
use crate::wire::{be16, ethernet, icmpv6, ipv6, l4};

/// Run one IPv6 frame (counted as received by the caller); `peeked` is what `peek_hash` made
/// of it in the first pass.
pub(super) fn run6<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    peeked: u64,
) -> Verdict {
    let p = match parse6(pkt.data()) {
        Ok(p) => p,
        Err(r) => return Verdict::Drop(r),
    };
    let frame = pkt.data();
    let icmp_type = match (p.proto, p.l4) {
        (ipv6::NH_ICMPV6, Some(at)) => frame.get(at).copied(),
        _ => None,
    };
    // As for IPv4, only frames for this port's MAC take the IP path; multicast is taken for
    // neighbour discovery alone (solicitations go to a solicited-node group).
    if !ethernet::dst_is(frame, cx.port_mac) {
        let multicast = frame[0] == 0x33 && frame[1] == 0x33 && ipv6::is_multicast(p.dst);
        return match icmp_type {
            Some(t) if multicast && is_nd(t) => neighbor_discovery(cx, st, &p, t),
            _ => Verdict::Drop(DropReason::NotOurMac),
        };
    }
    let snap = cx.snap;
    if p.proto == ipv6::NH_TCP || p.proto == ipv6::NH_UDP {
        let svc = match p.fragment {
            Fragment::Whole => st.last_service6.find(snap, p.dst, p.proto, p.dport),
            Fragment::First => st
                .last_service6
                .find(snap, p.dst, p.proto, p.dport)
                .map(|by_port| snap.fragment_service6(p.dst, p.proto).unwrap_or(by_port)),
            Fragment::Later => snap.fragment_service6(p.dst, p.proto),
        };
        if let Some(svc) = svc {
            // The common shape's hash was taken in the first pass: the same key, read at the
            // same offsets.
            let hash = if p.l4 == Some(PEEK_L4) && p.fragment == Fragment::Whole {
                peeked
            } else {
                flow_key6(&p).hash()
            };
            return forward6(cx, st, pkt, &p, svc, hash);
        }
    }
    if let Some(t) = icmp_type.filter(|&t| is_nd(t)) {
        return neighbor_discovery(cx, st, &p, t);
    }
    if snap.is_vip6(p.dst) {
        return match p.proto {
            ipv6::NH_ICMPV6 => icmp6_to_vip(cx, st, pkt, &p),
            ipv6::NH_TCP | ipv6::NH_UDP if p.fragment == Fragment::Later => {
                Verdict::Drop(DropReason::FragmentWithoutService)
            }
            _ => Verdict::Drop(DropReason::NoService),
        };
    }
    if snap.lb_addr_port6(p.dst).is_some() || p.dst == ipv6::link_local_from_mac(cx.port_mac) {
        // A DSR health-check answer comes from a VIP; an ICMPv6 probe's is an echo reply.
        let src_mac: [u8; 6] = frame.get(6..12).and_then(|m| m.try_into().ok()).unwrap_or([0; 6]);
        let from_peer = snap.is_peer(cx.in_port, IpAddr::V6(Ipv6Addr::from(p.src)), src_mac);
        let priority = snap.is_vip6(p.src) || icmp_type == Some(icmpv6::ECHO_REPLY) || from_peer;
        return punt(cx, st, if priority { Punt::Priority } else { Punt::Other });
    }
    if let Some(client) = snap.client_port {
        if snap.ports.get(cx.in_port as usize).map(|x| x.role) == Some(PortRole::Server) {
            return route_to_client6(snap, st, pkt, &p, client);
        }
    }
    Verdict::Drop(DropReason::NotForUs)
}

/// Where the common shape's TCP/UDP header starts.
const PEEK_L4: usize = crate::wire::ethernet::HEADER_LEN + ipv6::HEADER_LEN;

/// The flow hash of an IPv6 frame of the common shape (untagged, TCP or UDP right behind the
/// fixed header), read at fixed offsets for the first pass's prefetch; 0 for any other shape
/// (its prefetch is then wasted, nothing else). `forward6` computes the same from the parse.
#[inline(never)]
pub(super) fn peek_hash(f: &[u8]) -> u64 {
    const L3: usize = crate::wire::ethernet::HEADER_LEN;
    const L4: usize = PEEK_L4;
    let Some(h) = f.get(..L4 + 4) else { return 0 };
    let proto = h[L3 + ipv6::field::NEXT_HEADER];
    if be16(h, L3 - 2) != crate::wire::ETHERTYPE_IPV6 || (proto != ipv6::NH_TCP && proto != ipv6::NH_UDP) {
        return 0;
    }
    let (src, dst) = (ipv6::ip16(h, L3 + ipv6::field::SRC), ipv6::ip16(h, L3 + ipv6::field::DST));
    FlowKey6::new(proto, src, dst, be16(h, L4), be16(h, L4 + 2)).hash()
}

fn is_nd(icmp_type: u8) -> bool {
    (icmpv6::ROUTER_SOLICIT..=icmpv6::REDIRECT).contains(&icmp_type)
}

/// Neighbour solicitations and advertisements go to the control core on the ARP lane, if a
/// neighbour can have sent them (hop limit 255: not routed from off the link). Router
/// discovery and redirects are refused: the LB's routes are configured, never learnt.
fn neighbor_discovery<S>(cx: &BurstCx<'_, S>, st: &mut State, p: &Parsed6, icmp_type: u8) -> Verdict {
    let ns_or_na = icmp_type == icmpv6::NEIGHBOR_SOLICIT || icmp_type == icmpv6::NEIGHBOR_ADVERT;
    if !ns_or_na || p.hop_limit != icmpv6::ND_HOP_LIMIT || p.fragment != Fragment::Whole {
        return Verdict::Drop(DropReason::NeighborDiscoveryRefused);
    }
    punt(cx, st, Punt::Arp)
}

/// The flow an IPv6 client→VIP packet belongs to (addresses only for fragments, as for IPv4).
#[inline]
fn flow_key6(p: &Parsed6) -> FlowKey6 {
    if p.fragment == Fragment::Whole {
        FlowKey6::new(p.proto, p.src, p.dst, p.sport, p.dport)
    } else {
        FlowKey6::new(p.proto, p.src, p.dst, 0, 0)
    }
}

/// A packet for service position `svc`, as `forward_service` for IPv4.
fn forward6<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed6,
    svc: usize,
    hash: u64,
) -> Verdict {
    let (snap, now) = (cx.snap, cx.now);
    let s = &snap.services[svc];
    let id = flow_key6(p).id(s.id);
    let tcp = p.proto == ipv6::NH_TCP;
    let closing = tcp && p.tcp_flags & (l4::TCP_FIN | l4::TCP_RST) != 0;
    let idle = if tcp { s.tcp_idle_ms } else { s.udp_idle_ms };
    let existing = st.flows6.get_mut(&id, hash, now).map(|e| {
        if closing || e.flags & (table::FLAG_CLOSING | table::FLAG_EMBRYONIC) != 0 {
            change_state(&mut e.flags, &mut e.expires, p.tcp_flags, s, closing, idle, now);
        } else {
            refresh(&mut e.expires, idle, now);
        }
        e.backend
    });
    if let Some((backend, f)) =
        existing.and_then(|b| snap.forward(svc, b).filter(|f| f.keeps_flows).map(|f| (b, f)))
    {
        return send6(cx, st, pkt, p, s, f, backend);
    }
    let opening =
        !tcp || p.tcp_flags & (l4::TCP_SYN | l4::TCP_ACK | l4::TCP_RST | l4::TCP_FIN) == l4::TCP_SYN;
    let backend = match existing {
        Some(_) => {
            let Some(nb) = pick_new6(snap, st, svc, p, hash, now, opening) else {
                return Verdict::Drop(DropReason::NoHealthyBackend);
            };
            st.flows6.reassign(&id, hash, now, nb);
            st.counters.rescheduled += 1;
            nb
        }
        None => match new_flow6(snap, st, svc, p, hash, now, opening, closing, idle) {
            Ok(nb) => nb,
            Err(r) => return Verdict::Drop(r),
        },
    };
    let Some(f) = snap.forward(svc, backend) else {
        return Verdict::Drop(DropReason::NoHealthyBackend);
    };
    send6(cx, st, pkt, p, s, f, backend)
}

/// A flow this worker holds no state for, as `new_flow` for IPv4.
#[allow(clippy::too_many_arguments)]
fn new_flow6(
    snap: &Snapshot,
    st: &mut State,
    svc: usize,
    p: &Parsed6,
    hash: u64,
    now: Millis,
    opening: bool,
    closing: bool,
    idle: u32,
) -> Result<u32, DropReason> {
    if martian6(snap, p.src) {
        return Err(DropReason::MartianSource);
    }
    if p.hop_limit == 0 {
        return Err(DropReason::TtlExceeded);
    }
    let s = &snap.services[svc];
    let mut nb = pick_new6(snap, st, svc, p, hash, now, opening).ok_or(DropReason::NoHealthyBackend)?;
    if !opening && !snap.settled {
        st.counters.midflow_without_state += 1;
        return Ok(nb);
    }
    let (flags, ttl) = if closing {
        (table::FLAG_CLOSING, s.closing_ms.min(idle))
    } else if p.proto == ipv6::NH_TCP && opening {
        (table::FLAG_EMBRYONIC, s.syn_ms.min(idle))
    } else {
        (0, idle)
    };
    let id = flow_key6(p).id(s.id);
    match st.flows6.insert(FlowSlot6::new(id, nb, flags, now.wrapping_add(ttl)), hash, now) {
        Insert::Stored => {}
        Insert::Reclaimed(old) => {
            st.counters.reclaimed_on_insert += 1;
            if old.flags & table::FLAG_EMBRYONIC != 0 {
                st.counters.embryonic_expired += 1;
            }
        }
        Insert::Full => {
            if opening {
                st.counters.stateless_fallbacks += 1;
                if s.persistence.is_none() {
                    nb = sched::consistent6(snap, svc, p.src, p.dst, hash).unwrap_or(nb);
                }
            }
        }
    }
    if opening {
        st.counters.services[s.id as usize].new_flows += 1;
        st.counters.backends[nb as usize].new_flows += 1;
    } else {
        st.counters.midflow_without_state += 1;
    }
    Ok(nb)
}

/// Whether a new flow's source is one no client beyond the link can have: unspecified,
/// loopback, multicast, link-local, IPv4-mapped, or one of our own VIPs and addresses.
fn martian6(snap: &Snapshot, src: [u8; 16]) -> bool {
    let a = Ipv6Addr::from(src);
    a.is_unspecified()
        || a.is_loopback()
        || ipv6::is_multicast(src)
        || ipv6::is_link_local(src)
        || a.to_ipv4_mapped().is_some()
        || snap.is_vip6(src)
        || snap.lb_addr_port6(src).is_some()
}

#[inline]
fn pick_new6(
    snap: &Snapshot,
    st: &mut State,
    svc: usize,
    p: &Parsed6,
    hash: u64,
    now: Millis,
    opening: bool,
) -> Option<u32> {
    if let Some(per) = snap.services[svc].persistence {
        return st.persist6.pick(snap, svc, per, persisted_addr(per.by, p.src, p.dst), now);
    }
    if !opening {
        return sched::consistent6(snap, svc, p.src, p.dst, hash);
    }
    sched::pick6(snap, svc, p, hash, &mut st.wrr[svc], &st.flows6)
}

/// Count the packet and rewrite it for the service's mode; too big for the egress (after the
/// outer header, for ip6ip6) becomes a Packet Too Big to its sender.
fn send6<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed6,
    s: &ServiceInfo,
    f: &Forward,
    backend: u32,
) -> Verdict {
    st.counters.add_traffic(s.id, backend, 1, pkt.len() as u64);
    rewrite6_to(cx, st, pkt, p, s, f)
}

/// Rewrite an IPv6 packet (counted for its service and backend) for the service's mode
/// toward `f`.
#[inline(always)]
pub(super) fn rewrite6_to<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed6,
    s: &ServiceInfo,
    f: &Forward,
) -> Verdict {
    match rewrite6::to_backend6(pkt, p, s.mode, f) {
        EncapResult::Done | EncapResult::Fragmented(_) => Verdict::Tx(f.port),
        EncapResult::NoBuffer => Verdict::Drop(DropReason::NoBuffer),
        EncapResult::TooBig { mtu } => packet_too_big(cx, st, pkt, p, mtu),
        EncapResult::CannotFragment => Verdict::Drop(DropReason::TooBig),
    }
}

/// Answer with ICMPv6 Packet Too Big, rate-limited with "fragmentation needed" (one budget
/// for both: they are the same answer).
#[cold]
fn packet_too_big<B: PacketBuf, S>(
    cx: &BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed6,
    mtu: u16,
) -> Verdict {
    if !st.frag_needed.take(cx.now) {
        st.counters.frag_needed_rate_limited += 1;
        return Verdict::Drop(DropReason::TooBigDontFragment);
    }
    let snap = cx.snap;
    let in_p = &snap.ports[(cx.in_port as usize).min(snap.ports.len() - 1)];
    let from = in_p.addr6().unwrap_or(p.dst);
    if rewrite6::make_packet_too_big(pkt, p, from, in_p.mac, mtu) {
        st.counters.frag_needed_sent += 1;
        Verdict::Reply(cx.in_port)
    } else {
        Verdict::Drop(DropReason::TooBigDontFragment)
    }
}

/// ICMPv6 to a VIP: echo goes to the control core; an error about a server's reply (Packet Too
/// Big from a router above all) goes to the server that owns the flow it quotes.
fn icmp6_to_vip<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed6,
) -> Verdict {
    let (snap, now) = (cx.snap, cx.now);
    let Some(l4_at) = p.l4 else {
        return Verdict::Drop(DropReason::IcmpUnsupported);
    };
    let d = pkt.data();
    let end = (p.l3 + p.ip_len).min(d.len());
    let Ok(m) = icmpv6::Icmpv6Message::new_checked(&d[l4_at.min(end)..end]) else {
        return Verdict::Drop(DropReason::MalformedL4);
    };
    if m.msg_type() == icmpv6::ECHO_REQUEST {
        return punt(cx, st, Punt::Other);
    }
    if !m.is_error() {
        return Verdict::Drop(DropReason::IcmpUnsupported);
    }
    // The quoted packet is the server's reply: VIP:vport → client:cport, TCP or UDP right
    // behind the fixed header (a quote with extension headers is not matched).
    let e = m.embedded();
    if e.len() < ipv6::HEADER_LEN + 4 || e[0] >> 4 != 6 {
        return Verdict::Drop(DropReason::IcmpErrorUnmatched);
    }
    let proto = e[ipv6::field::NEXT_HEADER];
    let (vip, client) = (ipv6::ip16(e, ipv6::field::SRC), ipv6::ip16(e, ipv6::field::DST));
    let (vport, cport) = (be16(e, ipv6::HEADER_LEN), be16(e, ipv6::HEADER_LEN + 2));
    let found = (proto == ipv6::NH_TCP || proto == ipv6::NH_UDP)
        .then(|| snap.find_service6(vip, proto, vport))
        .flatten();
    let Some(svc) = found else {
        return Verdict::Drop(DropReason::IcmpErrorUnmatched);
    };
    let key = FlowKey6::new(proto, client, vip, cport, vport);
    let hash = key.hash();
    let id = key.id(snap.services[svc].id);
    let owner = st.flows6.get_mut(&id, hash, now).map(|e| e.backend).filter(|b| snap.keeps_flows(svc, *b));
    let owner = owner.or_else(|| match snap.services[svc].persistence {
        Some(per) => snap.maglev(svc).lookup(hash_addr6(persisted_addr(per.by, client, vip))),
        None => sched::consistent6(snap, svc, client, vip, hash),
    });
    let Some(backend) = owner else {
        return Verdict::Drop(DropReason::NoHealthyBackend);
    };
    let Some(f) = snap.forward(svc, backend) else {
        return Verdict::Drop(DropReason::NoHealthyBackend);
    };
    st.counters.icmp_errors_steered += 1;
    send6(cx, st, pkt, p, &snap.services[svc], f, backend)
}

/// Inline mode: IPv6 from the server side not for us goes to the client side's IPv6 gateway.
fn route_to_client6<B: PacketBuf>(
    snap: &Snapshot,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed6,
    client: u16,
) -> Verdict {
    let port = &snap.ports[client as usize];
    let Some(gw) = port.gateway6_mac else {
        return Verdict::Drop(DropReason::GatewayUnresolved);
    };
    if !rewrite6::route_forward6(pkt.data_mut(), p, gw, port.mac) {
        return Verdict::Drop(DropReason::TtlExceeded);
    }
    st.counters.inline_routed += 1;
    Verdict::Tx(client)
}
