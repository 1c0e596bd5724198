//! IPv6 on the LB's own account, as `responder` is for IPv4: neighbour discovery (RFC 4861) for
//! the VIPs and the LB's addresses, the solicitations that resolve backends and gateways,
//! unsolicited advertisements when an address appears, and ICMPv6 echo. Pure functions: frames
//! in, frames out.
//!
//! Neighbour discovery is taken only as RFC 4861 says a neighbour sends it: hop limit 255 (not
//! routed from off the link), ICMP code 0, a correct checksum, no extension headers; and it
//! gets the same protections as ARP (`neigh`): a MAC only from a solicited advertisement by
//! the host it names.

use std::net::{IpAddr, Ipv6Addr};

use dataplane::wire::icmpv6::{self, NdRepr};
use dataplane::wire::ipv6::{self, Ipv6Repr};
use dataplane::wire::{arp, EthernetFrame, Ipv6Header, MacAddr, ETHERTYPE_IPV6};

use super::responder::tagged;
use crate::neigh::Heard;
use crate::runtime::Runtime;

/// A neighbour solicitation or advertisement as it arrived, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdIn {
    pub vlan: Option<u16>,
    pub eth_src: MacAddr,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub nd: NdRepr,
}

/// Read a frame as neighbour discovery, if it is a well-formed solicitation or advertisement
/// that a neighbour can have sent.
pub fn parse(frame: &[u8]) -> Option<NdIn> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != ETHERTYPE_IPV6 {
        return None;
    }
    let ip = Ipv6Header::new_checked(eth.payload()).ok()?;
    if ip.next_header() != ipv6::NH_ICMPV6 || ip.hop_limit() != icmpv6::ND_HOP_LIMIT {
        return None;
    }
    let msg = ip.payload();
    if !icmpv6::checksum_ok(msg, ip.src(), ip.dst()) {
        return None;
    }
    let nd = NdRepr::parse(msg).ok()?;
    Some(NdIn { vlan: eth.vlan_tci(), eth_src: MacAddr(eth.src()), src: ip.src(), dst: ip.dst(), nd })
}

/// What the neighbour table hears in an advertisement: the target's MAC, from its target
/// link-layer option (or the frame's source when the option is left out, as a reply to a
/// unicast solicitation may). Solicited advertisements answer; others announce.
pub fn heard(port: u16, m: &NdIn) -> Option<Heard> {
    if m.nd.msg_type != icmpv6::NEIGHBOR_ADVERT {
        return None;
    }
    let solicited = m.nd.flags & icmpv6::NA_SOLICITED != 0;
    Some(Heard {
        port,
        eth_src: m.eth_src,
        operation: if solicited { arp::OP_REPLY } else { arp::OP_REQUEST },
        sender_mac: m.nd.link_addr.map(MacAddr).unwrap_or(m.eth_src),
        sender_ip: IpAddr::V6(Ipv6Addr::from(m.nd.target)),
    })
}

/// An IPv6 frame carrying the ICMPv6 message `msg` (checksum filled in here).
fn icmp6_frame(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    vlan: Option<u16>,
    src: [u8; 16],
    dst: [u8; 16],
    hop_limit: u8,
    mut msg: Vec<u8>,
) -> Vec<u8> {
    icmpv6::fill_checksum(&mut msg, src, dst);
    let mut ip = vec![0u8; ipv6::HEADER_LEN];
    Ipv6Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: msg.len() as u16,
        next_header: ipv6::NH_ICMPV6,
        hop_limit,
        src,
        dst,
    }
    .emit(&mut ip);
    ip.extend_from_slice(&msg);
    tagged(dst_mac, src_mac, vlan, ETHERTYPE_IPV6, &ip)
}

fn nd_message(nd: NdRepr) -> Vec<u8> {
    let mut m = vec![0u8; nd.len()];
    nd.emit(&mut m);
    m
}

/// The answer to a solicitation that arrived on `port`: for a VIP on a port where VIPs live,
/// or for the LB's own address on its port — for nothing else (the servers hold the VIPs too
/// and must not answer). Not for duplicate address detection (unspecified source): a host
/// probing for one of our addresses learns it is taken from our own advertisements.
pub fn advert(rt: &Runtime, port: u16, m: &NdIn) -> Option<Vec<u8>> {
    if m.nd.msg_type != icmpv6::NEIGHBOR_SOLICIT || m.src == [0; 16] {
        return None;
    }
    let target = IpAddr::V6(Ipv6Addr::from(m.nd.target));
    let ours_here = rt.is_lb_addr_on(port, target);
    let vip_here = rt.vip_ports().contains(&port) && rt.is_vip(target);
    if !(ours_here || vip_here) {
        return None;
    }
    let port_mac = *rt.port_macs.get(port as usize)?;
    let to = m.nd.link_addr.map(MacAddr).unwrap_or(m.eth_src);
    let na = NdRepr {
        msg_type: icmpv6::NEIGHBOR_ADVERT,
        flags: icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE,
        target: m.nd.target,
        link_addr: Some(port_mac.0),
    };
    Some(icmp6_frame(to, port_mac, m.vlan, m.nd.target, m.src, icmpv6::ND_HOP_LIMIT, nd_message(na)))
}

/// Who has `target`? From `src` (our address on the port), to the target's solicited-node
/// group — or straight to the MAC it had (to see whether it still answers).
pub fn solicit(port_mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr, to: Option<MacAddr>) -> Vec<u8> {
    let t = target.octets();
    let group = ipv6::solicited_node(t);
    let (dst_mac, dst) = match to {
        Some(m) => (m, t),
        None => (MacAddr(ipv6::multicast_mac(group)), group),
    };
    let ns = NdRepr { msg_type: icmpv6::NEIGHBOR_SOLICIT, flags: 0, target: t, link_addr: Some(port_mac.0) };
    icmp6_frame(dst_mac, port_mac, None, src.octets(), dst, icmpv6::ND_HOP_LIMIT, nd_message(ns))
}

/// All nodes: `addr` is at `port_mac` now (IPv6's gratuitous ARP), so neighbours update their
/// caches when a VIP appears or moves.
pub fn unsolicited_advert(port_mac: MacAddr, addr: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets();
    let na = NdRepr {
        msg_type: icmpv6::NEIGHBOR_ADVERT,
        flags: icmpv6::NA_OVERRIDE,
        target: addr.octets(),
        link_addr: Some(port_mac.0),
    };
    let dst_mac = MacAddr(ipv6::multicast_mac(all_nodes));
    icmp6_frame(dst_mac, port_mac, None, addr.octets(), all_nodes, icmpv6::ND_HOP_LIMIT, nd_message(na))
}

/// The reply to an ICMPv6 echo request for a VIP or an LB address, or `None` if the frame is
/// not a well-formed one (checksum included) for one of them.
pub fn echo_reply(rt: &Runtime, port: u16, frame: &[u8]) -> Option<Vec<u8>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != ETHERTYPE_IPV6 {
        return None;
    }
    let ip = Ipv6Header::new_checked(eth.payload()).ok()?;
    let dst = IpAddr::V6(Ipv6Addr::from(ip.dst()));
    if ip.next_header() != ipv6::NH_ICMPV6 || !(rt.is_vip(dst) || rt.is_lb_addr(dst)) {
        return None;
    }
    let msg = ip.payload();
    if msg.len() < icmpv6::HEADER_LEN
        || msg[0] != icmpv6::ECHO_REQUEST
        || !icmpv6::checksum_ok(msg, ip.src(), ip.dst())
        || ipv6::is_multicast(ip.src())
    {
        return None;
    }
    let mut reply = msg.to_vec();
    reply[0] = icmpv6::ECHO_REPLY;
    let port_mac = *rt.port_macs.get(port as usize)?;
    Some(icmp6_frame(MacAddr(eth.src()), port_mac, eth.vlan_tci(), ip.dst(), ip.src(), 64, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use dataplane::testkit::v6;

    const LB_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
    const ASKER: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x01]);
    const ROUTER_LL: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    fn rt() -> Runtime {
        let cfg = Config::parse(
            r#"(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24", "2001:db8::2/64"])],
    services: [(vip: "2001:db8::64", port: 80, mode: l2, backends: [(ip: "2001:db8::11")])],
)"#,
        )
        .unwrap();
        Runtime::new(cfg, vec![LB_MAC])
    }

    fn ns(target: [u8; 16]) -> Vec<u8> {
        v6::neighbor_solicit(ROUTER_LL, ASKER.0, target)
    }

    #[test]
    fn solicitations_answered_for_the_vip_and_the_lb_address_only() {
        let rt = rt();
        for target in [v6::VIP, v6::LB_IP6] {
            let m = parse(&ns(target)).expect("a valid solicitation");
            let r = advert(&rt, 0, &m).expect("answered");
            assert_eq!((&r[0..6], &r[6..12]), (&ASKER.0[..], &LB_MAC.0[..]), "to the asker's link address");
            let a = parse(&r).expect("a valid advertisement");
            assert_eq!(a.src, target);
            assert_eq!(a.dst, ROUTER_LL);
            assert_eq!(a.nd.flags, icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE);
            assert_eq!(a.nd.link_addr, Some(LB_MAC.0));
        }
        let backend = v6::server_ip6(1);
        assert_eq!(parse(&ns(backend)).and_then(|m| advert(&rt, 0, &m)), None, "a backend");
        // Routed from off the link (hop limit 64), a broken checksum, duplicate address
        // detection: not taken.
        let mut routed = ns(v6::VIP);
        routed[21] = 64;
        assert_eq!(parse(&routed), None);
        let mut broken = ns(v6::VIP);
        broken[70] ^= 1;
        assert_eq!(parse(&broken), None);
        let dad = v6::neighbor_solicit([0; 16], ASKER.0, v6::VIP);
        assert_eq!(parse(&dad).and_then(|m| advert(&rt, 0, &m)), None);
    }

    #[test]
    fn solicitations_resolve_and_advertisements_are_heard() {
        let target: Ipv6Addr = "2001:db8::11".parse().unwrap();
        let f = solicit(LB_MAC, "2001:db8::2".parse().unwrap(), target, None);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0, 0, 0x11], "to the solicited-node group's MAC");
        let m = parse(&f).expect("valid");
        assert_eq!(
            (m.nd.msg_type, m.nd.target, m.nd.link_addr),
            (icmpv6::NEIGHBOR_SOLICIT, target.octets(), Some(LB_MAC.0))
        );
        // The server's answer, as the neighbour table hears it.
        let na = NdRepr {
            msg_type: icmpv6::NEIGHBOR_ADVERT,
            flags: icmpv6::NA_SOLICITED,
            target: target.octets(),
            link_addr: Some(ASKER.0),
        };
        let r = icmp6_frame(
            LB_MAC,
            ASKER,
            None,
            target.octets(),
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            255,
            nd_message(na),
        );
        let h = heard(0, &parse(&r).unwrap()).unwrap();
        assert_eq!((h.operation, h.sender_mac, h.sender_ip), (arp::OP_REPLY, ASKER, IpAddr::V6(target)));
        let u = unsolicited_advert(LB_MAC, target);
        let h = heard(0, &parse(&u).unwrap()).unwrap();
        assert_eq!(h.operation, arp::OP_REQUEST, "an announcement, not an answer");
    }

    #[test]
    fn echo_answered_for_the_vip_and_the_lb_address_only() {
        let rt = rt();
        for dst in [v6::VIP, v6::LB_IP6] {
            let r = echo_reply(&rt, 0, &v6::echo_request(v6::CLIENT, dst)).expect("answered");
            assert_eq!(&r[22..38], &dst);
            assert_eq!(&r[38..54], &v6::CLIENT);
            assert_eq!(r[54], icmpv6::ECHO_REPLY);
            v6::assert_ip6_valid(&r, 14);
        }
        assert_eq!(echo_reply(&rt, 0, &v6::echo_request(v6::CLIENT, v6::server_ip6(1))), None);
    }
}
